"""Bulk traffic for ``--size`` runs: a gigabyte of healthy pktmon packets in seconds, not hours.

Encoding and compressing every record in Python runs at a few MB/s. Instead, one template buffer
per filler processor is built once: packet snapshots (event 160) of the scenario's healthy flows,
filling the buffer. Two fields differ from one copy of a template to the next: each record's QPC
timestamp (record offset 0x10) and each packet's PktGroupId (payload offset 0). They are *holes*:
compressed as literals that stay whole (``compress_with_holes``), so their bytes sit at known
offsets of the compressed buffer and can be rewritten there.

A copy's hole values are the template's plus a constant per field (the time and group-id span of
one copy times the copy number), so the whole compressed buffer, read as one little-endian
integer, is ``base + k * delta`` where ``delta`` has the per-field increments at the holes'
offsets. No carry crosses a hole (every value stays below 2**64), so one big-integer
multiply-add and ``to_bytes`` make each copy, whatever the number of records in it.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass

from diag.synth import pktmon as pm
from diag.synth.compress import compress_with_holes
from diag.synth.etlwriter import BUFFER_HEADER_SIZE, EtlWriter, event_record
from diag.synth.trace import TraceProfile

# Per-snapshot numbering (builds 26100+): bulk copies count their processor's ids from here, a range apart from
# the scenario's own snapshots, which the trace builder numbers in time order from pm.FIRST_SNAPSHOT_ID.
BULK_FIRST_SNAPSHOT_ID = 1 << 40
TIMESTAMP_AT = 0x10  # in an EVENT_HEADER64 record
GROUP_ID_AT = 0x50  # the payload's first field, PktGroupId
HOLE = 8


@dataclass(frozen=True, slots=True)
class Hop:
    component_id: int
    dir_tag: int
    edge_id: int = 1


@dataclass(frozen=True, slots=True)
class FillerPacket:
    """One healthy packet: the frame and the components it crosses, in order."""

    hops: tuple[Hop, ...]
    frame: bytes
    logged_size_limit: int = pm.DEFAULT_LOGGED_SIZE

    @property
    def logged_bytes(self) -> int:
        return len(self.frame) if self.logged_size_limit == 0 else min(len(self.frame), self.logged_size_limit)


@dataclass
class _Template:
    cpu: int
    records: bytes  # the uncompressed records area (plain traces write it)
    image: bytes  # what a copy is made from: the compressed records, or the records themselves
    record_count: int
    packet_count: int
    timestamp_holes: list[int]  # offsets in ``image``
    group_holes: list[int]
    record_packets: list[int]  # for each record, which packet of the template it belongs to
    packets_per_flow: Counter  # FillerPacket index -> packets of it in one copy
    spacing: int = 1  # QPC ticks between records
    first_qpc: int = 0
    first_group: int = 0
    base: int = 0
    delta: int = 0


class Filler:
    """Copies of template buffers written between a scenario's own buffers, in time order."""

    def __init__(self, profile: TraceProfile, packets: list[FillerPacket], *, cpus: list[int], target_bytes: int,
                 begin_filetime: int, end_filetime: int, first_group: int, pid: int = 4, tid: int = 0) -> None:
        if not packets:
            raise ValueError("bulk traffic needs at least one packet")
        self.profile = profile
        self.packets = packets
        self.cpus = cpus
        self.per_snapshot = profile.numbering == "per-snapshot"
        self.pid, self.tid = pid, tid
        self.templates = [self._template(cpu, shift) for shift, cpu in enumerate(cpus)]
        per_set = sum(BUFFER_HEADER_SIZE + len(t.image) if profile.compressed else profile.buffer_size
                      for t in self.templates)
        self.copies = max(1, math.ceil(target_bytes / per_set))
        self._place(begin_filetime, end_filetime, first_group)
        self._next = [0] * len(self.templates)
        self.written: Counter[tuple[uuid.UUID, int]] = Counter()

    # -- the numbers the ground truth needs ----------------------------------------------------

    @property
    def packet_count(self) -> int:
        return self.copies * sum(t.packet_count for t in self.templates)

    @property
    def record_count(self) -> int:
        return self.copies * sum(t.record_count for t in self.templates)

    def flow_counts(self) -> Counter[tuple[int, int, int]]:
        """(component id, edge id, dir tag) -> (packets) the filler puts there, over all copies."""
        counts: Counter[tuple[int, int, int]] = Counter()
        for t in self.templates:
            for index, n in t.packets_per_flow.items():
                for hop in self.packets[index].hops:
                    counts[(hop.component_id, hop.edge_id, hop.dir_tag)] += n * self.copies
        return counts

    def flow_bytes(self) -> Counter[tuple[int, int, int]]:
        counts: Counter[tuple[int, int, int]] = Counter()
        for t in self.templates:
            for index, n in t.packets_per_flow.items():
                packet = self.packets[index]
                for hop in packet.hops:
                    counts[(hop.component_id, hop.edge_id, hop.dir_tag)] += n * self.copies * len(packet.frame)
        return counts

    # -- building ------------------------------------------------------------------------------

    def _template(self, cpu: int, shift: int) -> _Template:
        room = self.profile.buffer_size - BUFFER_HEADER_SIZE
        records = bytearray()
        ts_holes: list[int] = []
        group_holes: list[int] = []
        record_packets: list[int] = []
        per_flow: Counter = Counter()
        count = packets = 0
        index = shift % len(self.packets)
        while True:
            packet = self.packets[index]
            encoded = [self._record(packet, n, hop) for n, hop in enumerate(packet.hops, start=1)]
            if len(records) + sum(len(r) for r in encoded) > room:
                break
            for r in encoded:
                ts_holes.append(len(records) + TIMESTAMP_AT)
                group_holes.append(len(records) + GROUP_ID_AT)
                record_packets.append(packets)
                records += r
            count += len(encoded)
            packets += 1
            per_flow[index] += 1
            index = (index + 1) % len(self.packets)
        if not packets:
            raise ValueError("a bulk packet does not fit one buffer")
        raw = bytes(records)
        if self.profile.compressed:
            holes = sorted([(o, HOLE) for o in ts_holes] + [(o, HOLE) for o in group_holes])
            packed = compress_with_holes(raw, holes)
            where = dict(zip((o for o, _ in holes), packed.hole_offsets))
            return _Template(cpu, raw, packed.data, count, packets, [where[o] for o in ts_holes],
                             [where[o] for o in group_holes], record_packets, per_flow)
        return _Template(cpu, raw, raw, count, packets, ts_holes, group_holes, record_packets, per_flow)

    def _record(self, packet: FillerPacket, appearance: int, hop: Hop) -> bytes:
        if self.per_snapshot:
            appearance = 0
        payload = pm.encode_packet(
            pkt_group_id=0, pkt_number=1, appearance=appearance, dir_tag=hop.dir_tag,
            packet_type=pm.PacketType.ETHERNET, component_id=hop.component_id, edge_id=hop.edge_id, filter_id=0,
            frame=packet.frame, logged_size_limit=packet.logged_size_limit)
        return event_record(pm.PROVIDER, pm.EVENT_PACKET, 0, payload, 0, pid=self.pid, tid=self.tid,
                            level=pm.LEVEL_INFO, keywords=pm.KEYWORD_PAYLOAD)

    def _place(self, begin_filetime: int, end_filetime: int, first_group: int) -> None:
        """Spread each processor's copies over the time window; give each its own group ids."""
        p = self.profile
        begin_qpc = _qpc(p, begin_filetime)
        span = _qpc(p, end_filetime) - begin_qpc
        group = first_group
        for t in self.templates:
            t.spacing = span // (self.copies * t.record_count)
            if t.spacing < 1:
                raise ValueError("too many bulk records for the time window: lengthen --duration")
            t.first_qpc, t.first_group = begin_qpc, group
            group += self.copies * t.packet_count
            image = bytearray(t.image)
            delta = 0
            for i, at in enumerate(t.timestamp_holes):
                image[at:at + HOLE] = (t.first_qpc + i * t.spacing).to_bytes(HOLE, "little")
                delta += (t.record_count * t.spacing) << (8 * at)
            if self.per_snapshot:  # every snapshot the next id of its processor (diag/facts/snapshots.py)
                first = pm.snapshot_id(t.cpu, BULK_FIRST_SNAPSHOT_ID)
                for i, at in enumerate(t.group_holes):
                    image[at:at + HOLE] = (first + i).to_bytes(HOLE, "little")
                    delta += t.record_count << (8 * at)
            else:
                for at, packet in zip(t.group_holes, t.record_packets):
                    image[at:at + HOLE] = (t.first_group + packet).to_bytes(HOLE, "little")
                    delta += t.packet_count << (8 * at)
            t.base = int.from_bytes(image, "little")
            t.delta = delta

    # -- writing -------------------------------------------------------------------------------

    def _copy_start(self, k: int, t: _Template) -> int:
        return t.first_qpc + k * t.record_count * t.spacing

    def write_until(self, writer: EtlWriter, filetime: int | None) -> None:
        """Write every copy that starts before ``filetime`` (None: all that are left)."""
        limit = None if filetime is None else _qpc(self.profile, filetime)
        while True:
            best = None
            for i, t in enumerate(self.templates):
                k = self._next[i]
                if k < self.copies and (best is None or self._copy_start(k, t) < best[0]):
                    best = (self._copy_start(k, t), i)
            if best is None or (limit is not None and best[0] > limit):
                return
            self._write_copy(writer, best[1])

    def _write_copy(self, writer: EtlWriter, i: int) -> None:
        t = self.templates[i]
        k = self._next[i]
        self._next[i] += 1
        image = (t.base + k * t.delta).to_bytes(len(t.image), "little")
        last_qpc = self._copy_start(k, t) + (t.record_count - 1) * t.spacing
        if self.profile.compressed:
            writer.write_prepared_buffer(cpu=t.cpu, record_count=t.record_count, last_qpc=last_qpc,
                                         records_size=len(t.records), compressed_records=image)
        else:
            writer.write_prepared_buffer(cpu=t.cpu, record_count=t.record_count, last_qpc=last_qpc, records=image)
        self.written[(pm.PROVIDER, pm.EVENT_PACKET)] += t.record_count


def _qpc(profile: TraceProfile, filetime: int) -> int:
    start_qpc = profile.perf_freq * 3600  # EtlWriter's default: one hour of uptime at the start
    num = (filetime - profile.start_filetime) * profile.perf_freq
    return start_qpc + (2 * num + 10_000_000) // (2 * 10_000_000)
