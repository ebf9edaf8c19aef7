"""GUIDs as they appear in ETL files, and the names wnvdiag knows them by."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID

NULL_GUID = "00000000-0000-0000-0000-000000000000"


@lru_cache(maxsize=4096)
def guid_from_bytes(raw: bytes) -> str:
    """Windows stores GUIDs with the first three fields little-endian (uuid's ``bytes_le``)."""
    return str(UUID(bytes_le=bytes(raw)))


# Classic kernel ("system") events carry a hook id instead of a provider GUID: the high byte is the
# event group, and each group stands for one kernel event class GUID (MSDN "NT Kernel Logger
# Constants"; hook-id table on Geoff Chappell's ETW pages).
KERNEL_GROUP_GUIDS: dict[int, str] = {
    0x00: "68fdd900-4a3e-11d1-84f4-0000f80464e3",  # EventTrace (header, rundown markers)
    0x01: "3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c",  # DiskIo
    0x02: "3d6fa8d3-fe05-11d0-9dda-00c04fd7ba7c",  # PageFault
    0x03: "3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c",  # Process
    0x04: "90cbdc39-4a3e-11d1-84f4-0000f80464e3",  # FileIo
    0x05: "3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c",  # Thread
    0x06: "9a280ac0-c8e0-11d1-84e2-00c04fb998a2",  # TcpIp
    0x07: "3282fc76-feed-498e-8aa7-e70f459d430e",  # Job
    0x08: "bf3a50c5-a9c9-4988-a005-2df0b7c80f80",  # UdpIp
    0x09: "ae53722e-c863-11d2-8659-00c04fa321a1",  # Registry
    0x0A: "13976d09-a327-438c-950b-7f03192815c7",  # DbgPrint
    0x0B: "01853a65-418f-4f36-aefc-dc0f1d2fd235",  # EventTraceConfig (SystemConfig)
    0x0C: "99134383-5248-43fc-834b-529454e75df3",  # spare
    0x0D: "42695762-ea50-497a-9068-5cbbb35e0b95",  # Wnf
    0x0E: "0268a8b6-74fd-4302-9dd0-6e8f1795c0cf",  # Pool
    0x0F: "ce1dbfb4-137e-4da6-87b0-3f59aa102cbc",  # PerfInfo
    0x10: "222962ab-6180-4b88-a825-346b75f2a24a",  # Heap
    0x11: "89497f50-effe-4440-8cf2-ce6b1cdcaca7",  # Object
    0x12: "e43445e0-0903-48c3-b878-ff0fccebdd04",  # Power
    0x13: "a9152f00-3f58-4bee-92a1-70c7d079d5dd",  # ModBound
    0x14: "2cb15d1d-5fc1-11d2-abe1-00a0c911f518",  # ImageLoad
    0x15: "b2d14872-7c5b-463d-8419-ee9bf7d23e04",  # Dpc
    0x16: "7687a439-f752-45b8-b741-321aec0f8df9",  # Cc
    0x17: "3ac66736-cc59-4cff-8115-8df50e39816b",  # CritSec
    0x18: "def2fe46-7bd6-4b80-bd94-f57fe20d0ce3",  # StackWalk
    0x19: "9aec974b-5b8e-4118-9b92-3186d8002ce5",  # Ums
    0x1A: "45d8cccd-539f-4b72-a8b7-5c683142609a",  # ALPC
    0x1B: "d837ca92-12b9-44a5-ad6a-3a65b3578aa8",  # SplitIo
    0x1C: "c861d0e2-a2c1-4d36-9f9c-970bab943a12",  # ThreadPool
    0x1D: "7f2a405c-69b5-4bf9-a1f5-30e8f1afab5e",  # Hypervisor
    0x1E: "2ce9a149-effe-42f0-a635-a1d39e26c8f2",  # HypervisorX
}

# Group 3 opcode 10 (Process "Load image" in old kernels) is logged under the ImageLoad class.
_PROCESS_GROUP, _IMAGE_LOAD_OPCODE, _IMAGE_GROUP = 0x03, 10, 0x14


def kernel_guid(group: int, opcode: int) -> str:
    if group == _PROCESS_GROUP and opcode == _IMAGE_LOAD_OPCODE:
        group = _IMAGE_GROUP
    return KERNEL_GROUP_GUIDS.get(group, NULL_GUID)


KNOWN_PROVIDERS: dict[str, str] = {
    "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac": "Microsoft-Windows-PktMon",
    "2ed6006e-4729-4609-b423-3ee7bcd678ef": "Microsoft-Windows-NDIS-PacketCapture",
    "67dc0d66-3695-47c0-9642-33f76f7bd7ad": "Microsoft-Windows-Hyper-V-VmSwitch",
    "1f387cbc-6818-4530-9db6-5f1058cd7e86": "Microsoft.Windows.Hyper-V.VmSwitchWpp",
    "9f2660ea-cfe7-428f-9850-aeca612619b0": "Microsoft-Windows-Hyper-V-VfpExt",
    "0c885e0d-6eb6-476c-a048-2457eed3a5c1": "Microsoft-Windows-Host-Network-Service",
    "564368d6-577b-4af5-ad84-1c54464848e6": "Microsoft-Windows-Overlay-HNSPlugin",
    "80ce50de-d264-4581-950d-abadeee0d340": "Microsoft.Windows.HyperV.Compute",
    "6c28c7e5-331b-4437-9c69-5352a2f7f296": "Microsoft-Windows-Hyper-V-VmsIf",
    "152fbe4b-c7ad-4f68-bada-a4fcc1464f6c": "Microsoft-Windows-Hyper-V-Netvsc",
    "b72c6994-9fe0-45ad-83b3-8f5885f20e0e": "Microsoft-Windows-MsLbfoEventProvider",
    "387ed463-8b1b-42c9-9ef0-803fdfd5d94e": "Microsoft-Windows-MsLbfoSysEvtProvider",
    "66c07ecd-6667-43fc-93f8-05cf07f446ec": "Microsoft-Windows-WinNat",
    "2f07e2ee-15db-40f1-90ef-9d7ba282188a": "Microsoft-Windows-TCPIP",
    "cdead503-17f5-4a3e-b7ae-df8cc2902eb9": "Microsoft-Windows-NDIS",
    "d84521f7-2235-4237-a7c0-14e3a9676286": "Microsoft-Windows-Ras-NdisWanPacketCapture",
    "3ad15a04-74f1-4dca-b226-aff89085a05a": "Microsoft-Windows-Wnv",
    "bbccf6c1-6cd1-48c4-80ff-839482e37671": "EventMetadata",
    "9b79ee91-b5fd-41c0-a243-4248e266e9d0": "SystemConfigEx",
    "68fdd900-4a3e-11d1-84f4-0000f80464e3": "EventTrace (kernel header)",
    "01853a65-418f-4f36-aefc-dc0f1d2fd235": "SystemConfig (kernel)",
    "3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c": "Process (kernel)",
    "3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c": "Thread (kernel)",
    "2cb15d1d-5fc1-11d2-abe1-00a0c911f518": "ImageLoad (kernel)",
    "ce1dbfb4-137e-4da6-87b0-3f59aa102cbc": "PerfInfo (kernel)",
    "9a280ac0-c8e0-11d1-84e2-00c04fb998a2": "TcpIp (kernel)",
    "bf3a50c5-a9c9-4988-a005-2df0b7c80f80": "UdpIp (kernel)",
    "def2fe46-7bd6-4b80-bd94-f57fe20d0ce3": "StackWalk (kernel)",
}


def provider_name(guid: str) -> str | None:
    return KNOWN_PROVIDERS.get(guid)
