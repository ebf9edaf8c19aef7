"""The demo trace that ships in tests/data (``pktmon-drops.etl``): a container host whose pktmon
capture shows drops for a VLAN mismatch, MAC spoofing and a closed UDP port.

A Windows Server 2022 container host with an l2bridge vSwitch. Components: the physical NIC
miniport, the vSwitch extensible miniport, two container vmNICs and the TCPIP protocol. 60 packets
cross the stack (appearance 1, 2, 3 across components) and 13 of them are dropped:

* 7 x reason 9 (Filtered VLAN): frames tagged VLAN 20 for a container on VLAN 10, dropped at the
  inbound vmNIC of "Container NIC c337484d";
* 4 x reason 16 (MAC spoofing): frames from "Container NIC 5a1e0f92" with a source MAC that is not
  its own, dropped at the vSwitch;
* 2 x reason 1204 (transport endpoint not found): UDP to a closed port on the host, dropped at TCPIP.

The file is a direct (uncompressed) session with 4 KiB buffers and no embedded schemas: the
first synthetic trace of the project, kept byte for byte. Only the seed (and --size) change it.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from diag.synth import pktmon as pm
from diag.synth.bulk import FillerPacket, Hop
from diag.synth.etlwriter import filetime_from_unix
from diag.synth.scenarios.base import Finding, Params, Scenario, Story
from diag.synth.trace import TraceBuilder, TraceProfile

SEED = 20240514
OS_BUILD = 20348
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
    Component(NIC, pm.ComponentType.MINIPORT, "mlx5.sys", "Mellanox ConnectX-5 Adapter",
              ((pm.PropertyType.IF_INDEX, 6),)),
    Component(VSWITCH, pm.ComponentType.VMS_EXT_MINIPORT, "vmswitch.sys", "Hyper-V Virtual Switch Extension Adapter",
              ((pm.PropertyType.IF_INDEX, 9), (pm.PropertyType.LOWER_IF_INDEX, 6)),
              ((pm.PropertyType.VMSWITCH_NAME, "l2bridge"),)),
    Component(VMNIC_A, pm.ComponentType.VMS_VMNIC, "vmswitch.sys", "Container NIC c337484d", (),
              ((pm.PropertyType.VMSWITCH_NAME, "l2bridge"),)),
    Component(VMNIC_B, pm.ComponentType.VMS_VMNIC, "vmswitch.sys", "Container NIC 5a1e0f92", (),
              ((pm.PropertyType.VMSWITCH_NAME, "l2bridge"),)),
    Component(TCPIP, pm.ComponentType.PROTOCOL, "tcpip.sys", "TCPIP", ((pm.PropertyType.LOWER_IF_INDEX, 9),)),
)

MAC_GATEWAY = "00-1d-d8-b7-1c-01"
MAC_HOST = "00-15-5d-4a-00-02"
MAC_CONTAINER_A = "00-15-5d-4a-00-11"
MAC_CONTAINER_B = "00-15-5d-4a-00-12"
MAC_SPOOFED = "00-15-5d-4a-00-99"
IP_HOST, IP_CONTAINER_A, IP_CONTAINER_B = "10.10.0.2", "10.10.0.11", "10.10.0.12"
IP_CLIENT, IP_SERVER, IP_DNS, IP_PROBE = "192.0.2.10", "198.51.100.7", "192.0.2.53", "192.0.2.50"

# Packet kinds: (count, path of components, dir tag, drop reason, drop location)
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
        return pm.tcp_frame(MAC_GATEWAY, MAC_CONTAINER_A, IP_CLIENT, IP_CONTAINER_A, 50100 + n % 3, 80,
                            vlan_id=None if at_vmnic else 10, ident=ident, seq=1000 + 97 * n, ack=5000,
                            flags=pm.TCP_ACK | pm.TCP_PSH,
                            payload=b"GET /health HTTP/1.1\r\nHost: app\r\n\r\n" if n % 4 == 0 else b"")
    if kind == "tls_out":
        return pm.tcp_frame(MAC_CONTAINER_B, MAC_GATEWAY, IP_CONTAINER_B, IP_SERVER, 49800, 443,
                            vlan_id=None if at_vmnic else 10, ident=ident, seq=70000 + 1400 * n, ack=9000,
                            flags=pm.TCP_ACK | (pm.TCP_PSH if size else 0),
                            payload=bytes((n + i) & 0xFF for i in range(size)))
    if kind == "dns_in":
        answer = bytes.fromhex("8180000100010000000003617069076578616d706c6503636f6d0000010001"
                               "c00c000100010000012c0004c0000205")
        return pm.udp_frame(MAC_GATEWAY, MAC_HOST, IP_DNS, IP_HOST, 53, 51000 + n, answer, ident=ident)
    if kind == "vlan_drop":
        return pm.tcp_frame(MAC_GATEWAY, MAC_CONTAINER_A, IP_CLIENT, IP_CONTAINER_A, 50200 + n, 80, vlan_id=20,
                            ident=ident, seq=31000 + n, flags=pm.TCP_SYN, window=64240)
    if kind == "spoof_drop":
        return pm.udp_frame(MAC_SPOOFED, MAC_GATEWAY, IP_CONTAINER_B, IP_SERVER, 40000 + n, 514, b"<14>spoofed syslog",
                            ident=ident)
    if kind == "port_drop":
        return pm.udp_frame(MAC_GATEWAY, MAC_HOST, IP_PROBE, IP_HOST, 41000 + n, 161, b"\x30\x26\x02\x01\x01",
                            ident=ident)
    raise ValueError(kind)


def build_events(seed: int = SEED) -> list[Event]:
    """Every event of the scenario, in time order."""
    rng = random.Random(seed)
    order = [kind for kind, (count, *_rest) in KINDS.items() for _ in range(count)]
    rng.shuffle(order)
    seen: Counter[str] = Counter()
    events: list[Event] = []
    t = START + 15_000_000  # first packet 1.5 s after the start
    for k, kind in enumerate(order):
        count, path, dir_tag, reason, location = KINDS[kind]
        n = seen[kind]
        seen[kind] += 1
        cpu = rng.randrange(2)
        tid = 0x1C4 + cpu
        group = 0x4_0000 + k
        size = rng.choice((0, 0, 517, 1300)) if kind == "tls_out" else 0
        ts = t
        for appearance, component in enumerate(path, start=1):
            drop = bool(reason) and appearance == len(path)
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


def legacy_truth(events: list[Event], seed: int) -> dict:
    """The truth keys the first demo generator wrote (tests read them)."""
    by_id = Counter(e.event_id for e in events)
    drops: Counter[tuple[int, int]] = Counter()
    for _kind, (count, path, _dir, reason, _loc) in KINDS.items():
        if reason:
            drops[(path[-1], int(reason))] += count
    return {
        "generator": "tests/data/make_demo_trace.py",
        "seed": seed,
        "provider": str(pm.PROVIDER),
        "os_build": OS_BUILD,
        "cpu_count": 2,
        "buffer_size": BUFFER_SIZE,
        "perf_freq": PERF_FREQ,
        "clock_type": 1,
        "start_filetime": START,
        "end_filetime": end_time(events),
        "record_count": len(events) + 1,
        "logfile_header_records": 1,
        "event_count": len(events),
        "events_by_id": {str(k): by_id[k] for k in sorted(by_id)},
        "packet_count": sum(count for count, *_ in KINDS.values()),
        "packet_event_count": by_id[pm.EVENT_PACKET] + by_id[pm.EVENT_DROP],
        "drop_count": sum(drops.values()),
        "drops": [{"component_id": comp, "reason": reason, "count": n} for (comp, reason), n in sorted(drops.items())],
        "components": [
            {"id": c.id, "type": int(c.type), "type_name": c.type.name, "name": c.name, "description": c.description,
             "properties": {p.name: v for p, v in (*c.u32_properties, *c.wstr_properties)}}
            for c in COMPONENTS
        ],
        "first_packet_filetime": events[0].timestamp,
        "last_packet_filetime": max(e.timestamp for e in events if e.event_id >= pm.EVENT_PACKET),
        "events_lost": 0,
    }


def _bulk() -> list[FillerPacket]:
    """``--size`` traffic: an acknowledgement in and a QUIC-like datagram out. Copies of the bulk repeat
    these frames with new packet ids, so no TCP data segment (it would read as a retransmission), and
    both fit pktmon's 128-byte default snapshot, so the bulk does not change how truncated the trace is."""
    web = _frame("web_in", 1, True, 0)
    tls = pm.udp_frame(MAC_CONTAINER_B, MAC_GATEWAY, IP_CONTAINER_B, IP_SERVER, 49800, 443,
                       bytes((1 + i) & 0xFF for i in range(64)), vlan_id=10, ident=0x1001)
    return [FillerPacket((Hop(NIC, pm.DirTag.RX), Hop(VSWITCH, pm.DirTag.RX), Hop(VMNIC_A, pm.DirTag.RX)), web),
            FillerPacket((Hop(VMNIC_B, pm.DirTag.TX), Hop(VSWITCH, pm.DirTag.TX), Hop(NIC, pm.DirTag.TX)), tls)]


def build(params: Params) -> Story:
    events = build_events(params.seed)
    profile = TraceProfile(
        os_build=OS_BUILD, cpu_count=4 if params.size else 2, compressed=params.compressed, buffer_size=BUFFER_SIZE,
        start_filetime=START, perf_freq=PERF_FREQ, logger_name="PktMon", log_file_name=LOG_FILE,
        controller_pid=PKTMON_PID, controller_tid=PKTMON_TID, self_describing=False)
    builder = TraceBuilder(profile)
    for e in events:
        builder.add(e.timestamp, pm.PROVIDER, e.event_id, e.payload, level=pm.LEVEL_INFO,
                    keywords=pm.keyword_for(e.event_id), cpu=e.cpu, pid=e.pid, tid=e.tid)
    drop_values = [{"component_id": c, "reason": r, "count": n} for c, r, n in
                   ((VMNIC_A, 9, 7), (VSWITCH, 16, 4), (TCPIP, 1204, 2))]
    expect = [
        Finding("packets-dropped", {"total": 13, "groups": drop_values}),
        Finding("vlan-mismatch", {"component": "Container NIC c337484d", "reason": 9, "count": 7, "frame_vlan": 20,
                                  "port_vlan": 10}),
        Finding("mac-spoofing", {"component": "Hyper-V Virtual Switch Extension Adapter", "reason": 16, "count": 4,
                                 "source_mac": MAC_SPOOFED, "vmnic": "Container NIC 5a1e0f92",
                                 "vmnic_mac": MAC_CONTAINER_B}),
    ]
    first, last = events[0].timestamp, max(e.timestamp for e in events if e.event_id >= pm.EVENT_PACKET)
    return Story(builder, expect, bulk_packets=_bulk(), bulk_cpus=[2, 3], bulk_window=(first, last),
                 end_filetime=end_time(events), facts=legacy_truth(events, params.seed) if not params.size else {
                     "drops": legacy_truth(events, params.seed)["drops"]})  # bulk adds no drops


SCENARIO = Scenario(
    name="pktmon-drops",
    title="Container host with VLAN, MAC-spoofing and closed-port drops (the demo trace)",
    summary="60 packets, 13 dropped: 7 Filtered VLAN at a vmNIC, 4 MAC spoofing at the vSwitch, 2 closed UDP port "
            "at TCPIP. Honours --seed and --size only.",
    build=build,
    seed=SEED,
    compressed=False,
    fixed=frozenset({"duration", "rate", "hosts"}),
)
