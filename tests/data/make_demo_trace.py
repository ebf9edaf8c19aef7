"""Make the demo pktmon trace ``pktmon-drops.etl`` and its ground truth ``pktmon-drops.truth.json``.

Scenario (deterministic: fixed seed, fixed timestamps): a Windows Server 2022 container host with an
l2bridge vSwitch. Components: the physical NIC miniport, the vSwitch extensible miniport, two container
vmNICs and the TCPIP protocol. 60 packets cross the stack (appearance 1, 2, 3 across components) and
13 of them are dropped:

* 7 x reason 9 (Filtered VLAN): frames tagged VLAN 20 for a container on VLAN 10, dropped at the
  inbound vmNIC of "Container NIC c337484d";
* 4 x reason 16 (MAC spoofing): frames from "Container NIC 5a1e0f92" with a source MAC that is not
  its own, dropped at the vSwitch;
* 2 x reason 1204 (transport endpoint not found): UDP to a closed port on the host, dropped at TCPIP.

The component rundown (events 20/30/73) is written at the end, as pktmon does when the capture stops.
The truth file is computed from this scenario definition, never by reading the trace back.

Run: ``python tests/data/make_demo_trace.py [OUT_DIR]`` (default: this file's folder).
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diag.synth import pktmon as pm  # noqa: E402
from diag.synth.etlwriter import EtlWriter, filetime_from_unix  # noqa: E402

SEED = 20240514
TRACE_NAME = "pktmon-drops.etl"
TRUTH_NAME = "pktmon-drops.truth.json"

OS_BUILD = 20348
CPU_COUNT = 2
BUFFER_SIZE = 4096
PERF_FREQ = 10_000_000
START = filetime_from_unix(1_715_680_800)  # 2024-05-14 10:00:00 UTC
PKTMON_PID, PKTMON_TID = 7312, 7316
SYSTEM_PID = 4
LOG_FILE = r"C:\Users\Administrator\PktMon.etl"


@dataclass(frozen=True)
class Component:
    id: int
    type: pm.ComponentType
    name: str
    description: str
    u32_properties: tuple[tuple[pm.PropertyType, int], ...] = ()
    wstr_properties: tuple[tuple[pm.PropertyType, str], ...] = ()


NIC, VSWITCH, VMNIC_A, VMNIC_B, TCPIP = 1, 2, 3, 4, 5

COMPONENTS = (
    Component(
        NIC,
        pm.ComponentType.MINIPORT,
        "mlx5.sys",
        "Mellanox ConnectX-5 Adapter",
        ((pm.PropertyType.IF_INDEX, 6),),
    ),
    Component(
        VSWITCH,
        pm.ComponentType.VMS_EXT_MINIPORT,
        "vmswitch.sys",
        "Hyper-V Virtual Switch Extension Adapter",
        ((pm.PropertyType.IF_INDEX, 9), (pm.PropertyType.LOWER_IF_INDEX, 6)),
        ((pm.PropertyType.VMSWITCH_NAME, "l2bridge"),),
    ),
    Component(
        VMNIC_A,
        pm.ComponentType.VMS_VMNIC,
        "vmswitch.sys",
        "Container NIC c337484d",
        (),
        ((pm.PropertyType.VMSWITCH_NAME, "l2bridge"),),
    ),
    Component(
        VMNIC_B,
        pm.ComponentType.VMS_VMNIC,
        "vmswitch.sys",
        "Container NIC 5a1e0f92",
        (),
        ((pm.PropertyType.VMSWITCH_NAME, "l2bridge"),),
    ),
    Component(
        TCPIP,
        pm.ComponentType.PROTOCOL,
        "tcpip.sys",
        "TCPIP",
        ((pm.PropertyType.LOWER_IF_INDEX, 9),),
    ),
)

# Addresses
MAC_GATEWAY = "00-1d-d8-b7-1c-01"
MAC_HOST = "00-15-5d-4a-00-02"
MAC_CONTAINER_A = "00-15-5d-4a-00-11"
MAC_CONTAINER_B = "00-15-5d-4a-00-12"
MAC_SPOOFED = "00-15-5d-4a-00-99"
IP_HOST, IP_CONTAINER_A, IP_CONTAINER_B = "10.10.0.2", "10.10.0.11", "10.10.0.12"
IP_CLIENT, IP_SERVER, IP_DNS, IP_PROBE = "192.0.2.10", "198.51.100.7", "192.0.2.53", "192.0.2.50"

# Packet kinds: (count, path of (component, edge), dir tag, drop reason, drop location)
KINDS = {
    "web_in": (20, (NIC, VSWITCH, VMNIC_A), pm.DirTag.RX, 0, 0),
    "tls_out": (17, (VMNIC_B, VSWITCH, NIC), pm.DirTag.TX, 0, 0),
    "dns_in": (10, (NIC, VSWITCH, TCPIP), pm.DirTag.RX, 0, 0),
    "vlan_drop": (7, (NIC, VSWITCH, VMNIC_A), pm.DirTag.RX, pm.DropReason.FILTERED_VLAN, 0xE0003C0D),
    "spoof_drop": (4, (VMNIC_B, VSWITCH), pm.DirTag.TX, pm.DropReason.MAC_SPOOFING, 0xE0002A17),
    "port_drop": (2, (NIC, VSWITCH, TCPIP), pm.DirTag.RX, pm.DropReason.INET_TRANSPORT_ENDPOINT_NOT_FOUND, 0xE0001007),
}


@dataclass(frozen=True)
class Event:
    """One record the scenario writes (time-ordered)."""

    timestamp: int
    cpu: int
    event_id: int
    payload: bytes
    pid: int
    tid: int


def _frame(kind: str, n: int, at_vmnic: bool, size: int) -> bytes:
    """The frame of the ``n``-th packet of ``kind`` (``size``: TLS payload bytes); VLAN tags are
    stripped at the vmNIC."""
    ident = 0x1000 + n
    if kind == "web_in":
        tag = None if at_vmnic else 10
        return pm.tcp_frame(
            MAC_GATEWAY, MAC_CONTAINER_A, IP_CLIENT, IP_CONTAINER_A, 50100 + n % 3, 80,
            vlan_id=tag, ident=ident, seq=1000 + 97 * n, ack=5000, flags=pm.TCP_ACK | pm.TCP_PSH,
            payload=b"GET /health HTTP/1.1\r\nHost: app\r\n\r\n" if n % 4 == 0 else b"",
        )
    if kind == "tls_out":
        tag = None if at_vmnic else 10
        return pm.tcp_frame(
            MAC_CONTAINER_B, MAC_GATEWAY, IP_CONTAINER_B, IP_SERVER, 49800, 443,
            vlan_id=tag, ident=ident, seq=70000 + 1400 * n, ack=9000, flags=pm.TCP_ACK | (pm.TCP_PSH if size else 0),
            payload=bytes((n + i) & 0xFF for i in range(size)),
        )
    if kind == "dns_in":
        answer = bytes.fromhex("8180000100010000000003617069076578616d706c6503636f6d0000010001c00c000100010000012c0004c0000205")
        return pm.udp_frame(MAC_GATEWAY, MAC_HOST, IP_DNS, IP_HOST, 53, 51000 + n, answer, ident=ident)
    if kind == "vlan_drop":
        return pm.tcp_frame(
            MAC_GATEWAY, MAC_CONTAINER_A, IP_CLIENT, IP_CONTAINER_A, 50200 + n, 80,
            vlan_id=20, ident=ident, seq=31000 + n, flags=pm.TCP_SYN, window=64240,
        )
    if kind == "spoof_drop":
        return pm.udp_frame(MAC_SPOOFED, MAC_GATEWAY, IP_CONTAINER_B, IP_SERVER, 40000 + n, 514, b"<14>spoofed syslog", ident=ident)
    if kind == "port_drop":
        return pm.udp_frame(MAC_GATEWAY, MAC_HOST, IP_PROBE, IP_HOST, 41000 + n, 161, b"\x30\x26\x02\x01\x01", ident=ident)
    raise ValueError(kind)


def build_events() -> list[Event]:
    """Every event of the scenario, in time order."""
    rng = random.Random(SEED)
    order = [kind for kind, (count, *_rest) in KINDS.items() for _ in range(count)]
    rng.shuffle(order)
    seen: Counter[str] = Counter()
    events: list[Event] = []
    t = START + 15_000_000  # first packet 1.5 s after the start
    for k, kind in enumerate(order):
        count, path, dir_tag, reason, location = KINDS[kind]
        n = seen[kind]
        seen[kind] += 1
        cpu = rng.randrange(CPU_COUNT)
        tid = 0x1C4 + cpu
        group = 0x4_0000 + k
        size = rng.choice((0, 0, 517, 1300)) if kind == "tls_out" else 0
        ts = t
        for appearance, component in enumerate(path, start=1):
            last = appearance == len(path)
            drop = bool(reason) and last
            frame = _frame(kind, n, component in (VMNIC_A, VMNIC_B), size)
            payload = pm.encode_packet(
                pkt_group_id=group, pkt_number=1, appearance=appearance, dir_tag=dir_tag,
                packet_type=pm.PacketType.ETHERNET, component_id=component, edge_id=1, filter_id=0,
                frame=frame, drop_reason=reason if drop else 0, drop_location=location if drop else 0,
            )
            events.append(Event(ts, cpu, pm.EVENT_DROP if drop else pm.EVENT_PACKET, payload, SYSTEM_PID, tid))
            ts += rng.randrange(30, 150)  # 3 to 15 us between snapshots
        t += rng.randrange(200_000, 600_000)  # 20 to 60 ms between packets
    t += 2_500_000  # rundown 250 ms after the last packet, when the capture stops
    for c in COMPONENTS:
        rundown = [(pm.EVENT_COMPONENT, pm.encode_component(c.id, c.type, c.name, c.description))]
        rundown += [(pm.EVENT_PROPERTY_U32, pm.encode_property_u32(c.id, p, v)) for p, v in c.u32_properties]
        rundown += [(pm.EVENT_PROPERTY_WSTR, pm.encode_property_wstr(c.id, p, v)) for p, v in c.wstr_properties]
        for event_id, payload in rundown:
            events.append(Event(t, 0, event_id, payload, PKTMON_PID, PKTMON_TID))
            t += 10
    return events


def end_time(events: list[Event]) -> int:
    return events[-1].timestamp + 12_000


def write_trace(path: Path, events: list[Event]) -> None:
    with EtlWriter(
        path,
        os_build=OS_BUILD,
        cpu_count=CPU_COUNT,
        buffer_size=BUFFER_SIZE,
        start_filetime=START,
        perf_freq=PERF_FREQ,
        logger_name="PktMon",
        log_file_name=LOG_FILE,
        controller_pid=PKTMON_PID,
        controller_tid=PKTMON_TID,
        end_filetime=end_time(events),
    ) as writer:
        for e in events:
            pm.write_pktmon_event(writer, e.event_id, e.payload, timestamp=e.timestamp, cpu=e.cpu, pid=e.pid, tid=e.tid)


def truth(events: list[Event]) -> dict:
    """Ground truth from the scenario definition."""
    by_id = Counter(e.event_id for e in events)
    drops: Counter[tuple[int, int]] = Counter()
    for kind, (count, path, _dir, reason, _loc) in KINDS.items():
        if reason:
            drops[(path[-1], int(reason))] += count
    packets = sum(count for count, *_ in KINDS.values())
    return {
        "generator": "tests/data/make_demo_trace.py",
        "seed": SEED,
        "provider": str(pm.PROVIDER),
        "os_build": OS_BUILD,
        "cpu_count": CPU_COUNT,
        "buffer_size": BUFFER_SIZE,
        "perf_freq": PERF_FREQ,
        "clock_type": 1,
        "start_filetime": START,
        "end_filetime": end_time(events),
        "record_count": len(events) + 1,
        "logfile_header_records": 1,
        "event_count": len(events),
        "events_by_id": {str(k): by_id[k] for k in sorted(by_id)},
        "packet_count": packets,
        "packet_event_count": by_id[pm.EVENT_PACKET] + by_id[pm.EVENT_DROP],
        "drop_count": sum(drops.values()),
        "drops": [
            {"component_id": comp, "reason": reason, "count": n} for (comp, reason), n in sorted(drops.items())
        ],
        "components": [
            {
                "id": c.id,
                "type": int(c.type),
                "type_name": c.type.name,
                "name": c.name,
                "description": c.description,
                "properties": {p.name: v for p, v in (*c.u32_properties, *c.wstr_properties)},
            }
            for c in COMPONENTS
        ],
        "first_packet_filetime": events[0].timestamp,
        "last_packet_filetime": max(e.timestamp for e in events if e.event_id >= pm.EVENT_PACKET),
        "events_lost": 0,
    }


def main(out_dir: Path | None = None) -> tuple[Path, Path]:
    out = Path(out_dir) if out_dir else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    events = build_events()
    trace_path, truth_path = out / TRACE_NAME, out / TRUTH_NAME
    write_trace(trace_path, events)
    truth_path.write_text(json.dumps(truth(events), indent=2) + "\n", encoding="utf-8")
    return trace_path, truth_path


if __name__ == "__main__":
    paths = main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    for p in paths:
        print(p, p.stat().st_size)
