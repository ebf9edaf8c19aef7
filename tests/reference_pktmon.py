"""A reference reading of a trace's pktmon packets, for tests: which snapshots are one packet, and which
drop events are one dropped frame. It shares no code with ``diag/``.

Records come from dissect.etl, payloads from etl-parser's generated PktMon layouts (160/170), frames are
read here with plain slicing. The rules it applies are what Windows does, as the real samples show it
(see diag/facts/snapshots.py for the account; this module is a second, deliberately plain reading of it):

- a snapshot with AppearanceCount >= 1 belongs to the packet of its (PktGroupId, PktNumber);
- a snapshot with AppearanceCount 0 (builds 26100+: every snapshot has its own id; the processor is in
  the id's upper 16 bits) continues the packet of an earlier snapshot of the same processor, at most 256
  ids and 10 ms before, with the same content, that has not crossed the same component edge in the same
  direction; the latest such packet when there are several. A drop event of a packet already dropped at
  that component edge is that drop logged again, not a packet;
- content: the innermost IP packet's version, addresses, protocol and length, and the transport header
  up to the checksum (TCP: ports, sequence, acknowledgement, flags, window; UDP: ports and length, then
  the payload's start), so that a rewritten link layer or IPv4 identification/TTL does not matter;
- one frame dropped several times at one component within 10 ms is one dropped frame.
"""

from __future__ import annotations

import collections
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

PKTMON = "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"
WINDOW_IDS = 256
WINDOW_SECONDS = 0.010


@dataclass
class Snapshot:
    gid: int
    number: int
    appearance: int
    direction: int
    packet_type: int
    component: int
    edge: int
    dropped: bool
    reason: int
    time: datetime
    frame: bytes

    @property
    def cpu(self) -> int:
        return self.gid >> 48

    @property
    def seq(self) -> int:
        return self.gid & ((1 << 48) - 1)


@dataclass
class Packet:
    snapshots: list[Snapshot] = field(default_factory=list)
    drop_events: int = 0
    dropped_at: tuple | None = None

    @property
    def route(self) -> tuple:
        return tuple((s.component, s.edge) for s in self.snapshots)


def pktmon_events(path: Path, event_ids: set[int] | None = None):
    """(event id, dissect.etl record header, fields by etl-parser's layout) of every PktMon event with a layout."""
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    from dissect.etl.headers.event import EventHeader
    from etl.parsers.etw import Microsoft_Windows_PktMon as layouts

    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            if not isinstance(h, EventHeader) or str(uuid.UUID(bytes_le=h.provider_id.bytes)) != PKTMON:
                continue
            event_id = h.descriptor.id
            layout = getattr(layouts, f"Microsoft_Windows_PktMon_{event_id}_0", None)
            if layout is None or (event_ids is not None and event_id not in event_ids):
                continue
            yield event_id, h, layout.pattern.parse(bytes(h.payload))


def read_snapshots(path: Path) -> list[Snapshot]:
    return [Snapshot(f.PktGroupId, f.PktNumber, f.AppearanceCount, f.DirTag, f.PacketType, f.ComponentId, f.EdgeId,
                     event_id == 170, f.DropReason, h.timestamp, bytes(f.Payload))
            for event_id, h, f in pktmon_events(path, {160, 170})]


def network_layer(frame: bytes, packet_type: int) -> bytes:
    """The frame from its network header on (b"" when there is none)."""
    if packet_type == 3:
        return frame
    if packet_type == 2 and len(frame) >= 24 and frame[0] & 0x0C == 0x08:  # an 802.11 data frame
        header = 24 + (6 if frame[1] & 3 == 3 else 0) + (2 if frame[0] & 0x80 else 0)
        if frame[header:header + 3] == b"\xaa\xaa\x03":
            return frame[header + 6:]  # from the SNAP EtherType on
        if len(frame) <= header + 4:
            return b""
    at = 12
    while frame[at:at + 2] in (b"\x81\x00", b"\x88\xa8"):
        at += 4
    return frame[at:]  # the EtherType, then the network header


def content(frame: bytes, packet_type: int) -> bytes:
    l3 = network_layer(frame, packet_type)
    if packet_type == 3:
        kind, body = (b"\x08\x00" if l3[:1] and l3[0] >> 4 == 4 else b"\x86\xdd"), l3
    else:
        kind, body = l3[:2], l3[2:]
    if kind == b"\x08\x00" and len(body) >= 20:
        ihl = (body[0] & 15) * 4
        l4 = body[ihl:]
        if body[9] == 17 and len(l4) >= 30 and l4[2:4] == b"\x12\xb5" and l4[8] & 8:  # VXLAN: the inner frame
            return content(l4[16:], 1)
        return b"4" + body[9:10] + body[12:20] + body[2:4] + _transport(body[9], l4)
    if kind == b"\x86\xdd" and len(body) >= 40:
        return b"6" + body[6:7] + body[8:40] + body[4:6] + _transport(body[6], body[40:])
    if kind == b"\x08\x06":
        return b"arp" + body[:28]
    return kind + body[:32]


def _transport(protocol: int, l4: bytes) -> bytes:
    if protocol == 6:
        return l4[:16]
    if protocol == 17:
        return l4[:6] + l4[8:18]
    return l4[:16]


def rebuild(snapshots: list[Snapshot]) -> tuple[list[Packet], int]:
    """The packets, and how many drop events only repeated a drop of a packet already dropped there."""
    packets: list[Packet] = []
    by_key: dict[tuple, Packet] = {}
    open_by_cpu: dict[int, list[tuple[Packet, Snapshot, bytes]]] = collections.defaultdict(list)
    repeats = 0
    numbered = [s for s in snapshots if s.appearance == 0]
    for s in snapshots:
        if s.appearance == 0:
            continue
        packet = by_key.get((s.gid, s.number))
        if packet is not None and packet.dropped_at == (s.component, s.edge) and s.dropped:
            packet.drop_events += 1
            repeats += 1
            continue
        if packet is None:
            packet = by_key[(s.gid, s.number)] = Packet()
            packets.append(packet)
        packet.snapshots.append(s)
        if s.dropped:
            packet.drop_events += 1
            packet.dropped_at = (s.component, s.edge)
    for s in sorted(numbered, key=lambda s: (s.cpu, s.seq, s.number)):
        here = content(s.frame, s.packet_type)
        hop = (s.component, s.edge, s.direction)
        chosen = None
        for packet, last, what in reversed(open_by_cpu[s.cpu]):
            if what != here or not 0 < s.seq - last.seq <= WINDOW_IDS:
                continue
            if abs((s.time - last.time).total_seconds()) > WINDOW_SECONDS:
                continue
            crossed = {(x.component, x.edge, x.direction) for x in packet.snapshots}
            if packet.dropped_at is not None:
                if s.dropped and hop in crossed:
                    chosen = ("repeat", packet)
                    break
                continue
            if hop not in crossed:
                chosen = ("join", packet)
                break
        if chosen and chosen[0] == "repeat":
            chosen[1].drop_events += 1
            repeats += 1
            open_by_cpu[s.cpu].append((chosen[1], s, here))
            continue
        packet = chosen[1] if chosen else Packet()
        if chosen is None:
            packets.append(packet)
        packet.snapshots.append(s)
        if s.dropped:
            packet.drop_events += 1
            packet.dropped_at = (s.component, s.edge)
        open_by_cpu[s.cpu].append((packet, s, here))
    for packet in packets:
        if all(s.appearance for s in packet.snapshots):
            packet.snapshots.sort(key=lambda s: s.appearance)
    return packets, repeats


def dropped_frames(snapshots: list[Snapshot]) -> dict[int, int]:
    """Component -> distinct frames dropped there (one frame dropped again within 10 ms counts once)."""
    first_seen: dict[tuple, datetime] = {}
    out: collections.Counter = collections.Counter()
    for s in sorted((s for s in snapshots if s.dropped), key=lambda s: s.time):
        key = (s.component, content(s.frame, s.packet_type))
        first = first_seen.get(key)
        if first is not None and (s.time - first).total_seconds() <= WINDOW_SECONDS:
            continue
        first_seen[key] = s.time
        out[s.component] += 1
    return dict(out)
