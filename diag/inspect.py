"""``wnvdiag inspect``: what is in a trace, how much of it we could read, and pktmon's view of it.

One streaming pass. PktMon events, the bulk of a pktmon trace, are recognised from their raw
header bytes and decoded in place (packets only as far as the digest needs). Every other record
goes through the layered ``EventDecoder``, which counts per kind of event what it decoded, what had
no layout and what did not fit its layout.
"""

from __future__ import annotations

import struct
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Callable, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from diag import knowledge
from diag.decode import LAYER_FAST, DecodeStats, EventDecoder, catalogue
from diag.decode import pktmon
from diag.decode.wire import WireError
from diag.facts.builder import FactBuilder
from diag.facts.pktmon import PktmonDigest
from diag.read import Trace
from diag.read.buffers import BUFFER_TYPES
from diag.read.clock import filetime_to_datetime
from diag.read.guids import provider_name
from diag.select import PacketFilter
from diag.read.records import EVENT_HEADER_TYPES, FLAG_EXTENDED_INFO, HEADER_TYPE_NAMES, Record, record_spans

SCHEMA = "wnvdiag.inspect/2"  # 2: drops_by_component is a list, as drops_by_reason is
_PKTMON_GUID = pktmon.PROVIDER
_PKTMON_ON_DISK = uuid.UUID(_PKTMON_GUID).bytes_le
_U16 = struct.Struct("<H").unpack_from
_I64 = struct.Struct("<q").unpack_from
# EVENT_HEADER TimeStamp (0x10), then EVENT_DESCRIPTOR Id and Version (0x28)
_TIME_ID_VERSION = struct.Struct("<16xq16xHB").unpack_from
_NO_TIME = 1 << 63


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TraceHeaderInfo(_Model):
    os_version: str
    os_build: int
    cpu_count: int
    pointer_size: int
    logger_name: str
    log_file_name: str
    log_file_mode: int
    modes: list[str]
    circular: bool
    compressed_buffers: bool
    clock: str
    timer_resolution_100ns: int
    buffer_size: int
    buffers_written: int
    events_lost: int
    buffers_lost: int
    start: datetime | None
    end: datetime | None
    duration_seconds: float | None


class ReadInfo(_Model):
    file_size: int
    buffers_read: int
    buffers_compressed: int
    buffers_skipped: int
    bytes_skipped: int
    bytes_decompressed: int
    buffers_flagged_events_lost: int
    buffers_flagged_buffer_lost: int
    buffer_types: dict[str, int]
    records: int
    records_by_header_type: dict[str, int]
    buffers_with_broken_records: int
    bytes_unparsed: int
    truncated: bool
    first_event: datetime | None
    last_event: datetime | None
    records_bad_time: int = 0  # timestamps that are no date (damaged records); their time is unknown
    warnings: list[str]


class EventCount(_Model):
    event_id: int
    version: int
    count: int
    name: str | None = None
    decoder: str | None = Field(None, description="the layer that decoded it: reader, fast, trace-schema, tracelogging, catalogue; null if none")
    decoded: int = 0
    failed: int = Field(0, description="events whose payload did not fit the layout")
    first_error: str | None = None
    layout_unsure: int = Field(0, description="events decoded by a layout revision the trace's OS build does not "
                                              "select (or, with the build unknown, chosen by length)")
    layout_note: str | None = None


class ProviderInfo(_Model):
    guid: str
    name: str | None
    records: int
    events: list[EventCount]


class DecodeInfo(_Model):
    decodable_records: int = Field(description="records whose payload was decoded")
    undecodable_records: int = Field(description="records no layer has a layout for (kept raw, counted)")
    decode_errors: int = Field(description="records with a layout whose payload did not fit it")
    by_layer: dict[str, int]
    undecodable: list[dict]


class ComponentInfo(_Model):
    id: int
    type: int | None
    type_name: str | None
    name: str | None
    description: str | None
    properties: dict[str, list]
    packets: int = 0
    drops: int = 0
    drop_counters: dict[str, int] | None = None


class DropReasonCount(_Model):
    code: int
    name: str
    count: int


class DropComponentCount(_Model):
    component_id: int
    name: str | None  # None: the trace has no rundown event for the component
    count: int


class PktmonInfo(_Model):
    present: bool
    components: list[ComponentInfo]
    packets: int
    drops: int = Field(description="drop events")
    dropped_frames: int = Field(0, description="distinct frames among the drop events: the stack logs one dropped "
                                               "packet several times; one frame at one component within 10 ms "
                                               "counts once")
    drops_by_reason: list[DropReasonCount]
    drops_by_component: list[DropComponentCount]
    malformed_packet_events: int
    reason_names_from: str
    filter: str | None = Field(None, description="what a filter (--since, --until, --component, --address, --vlan) "
                                                 "kept; null: every packet was looked at")
    packet_events_left_out: int = Field(0, description="packet events the filter did not keep: read, not counted")


class TraceSummary(_Model):
    schema_: str = Field(SCHEMA, alias="schema")
    path: str
    header: TraceHeaderInfo
    read: ReadInfo
    decode: DecodeInfo
    providers: list[ProviderInfo]
    pktmon: PktmonInfo


class Scan(NamedTuple):
    """One pass over a trace: the summary, the pktmon digest, the decoder, and (for ``check``) the
    fact builder that collected the other providers' events."""

    summary: TraceSummary
    pktmon: PktmonDigest
    decoder: EventDecoder
    builder: FactBuilder | None = None


def inspect_trace(path: str | Path, progress: Callable[[int, int], None] | None = None) -> TraceSummary:
    """Read the whole trace once and summarise it. ``progress(bytes_done, bytes_total)`` is called per buffer."""
    return scan_trace(path, progress).summary


def scan_trace(path: str | Path, progress: Callable[[int, int], None] | None = None, *, facts: bool = False,
               select: PacketFilter | None = None) -> Scan:
    """One pass over the trace; with ``facts`` it also tracks packet paths and flows and collects
    every decoded event into a ``FactBuilder`` (slower: ``check`` needs it, ``inspect`` does not).
    ``select`` keeps only the packet events it matches (``diag.select``); the others are counted."""
    with Trace(path) as trace:
        bound = select.bind(trace.clock.start_filetime) if select is not None and select.active else None
        return _scan(trace, progress, FactBuilder(trace.header) if facts else None, bound)


def _scan(trace: Trace, progress: Callable[[int, int], None] | None, builder: FactBuilder | None = None,
          select: PacketFilter | None = None) -> Scan:
    decoder = EventDecoder(trace.header)
    if builder is not None:
        decoder.retain = builder.SCHEMA_ONLY_PROVIDERS
    tally = PktmonDigest(clock=trace.clock, track=builder is not None)
    by_header_type: Counter[int] = Counter()
    buffer_types: Counter[int] = Counter()
    pktmon_ok: Counter[int] = Counter()  # PktMon events decoded on the hot path, by event id
    pktmon_bad: Counter[int] = Counter()
    pktmon_errors: dict[int, str] = {}  # first decode error per PktMon event id
    # The earliest and latest timestamp of any record, in the file's clock. Every record counts, not a
    # buffer's first and last: a relogged buffer's records are not in time order, and classic (MOF)
    # records carry times too. Zero (no time) is left out.
    first_raw, last_raw = _NO_TIME, 0
    clock = trace.clock
    raw_min, raw_max = clock.raw_min, clock.raw_max
    bad_time = 0  # records whose timestamp is no date at all (damaged): their time is unknown
    records = 0
    left_out = 0  # packet events the filter did not select
    keep = select.keep_pktmon if select is not None else None
    for buf in trace.buffers():
        buffer_types[buf.type] += 1
        data = buf.data
        spans = list(record_spans(data, buf.index, trace.stats.records))
        records += len(spans)
        for htype, off, size in spans:
            by_header_type[htype] += 1
            if (htype in EVENT_HEADER_TYPES and data[off + 0x18:off + 0x28] == _PKTMON_ON_DISK
                    and not _U16(data, off + 4)[0] & FLAG_EXTENDED_INFO):
                # PktMon without extended data: the hot path, decoded in place without a Record.
                ts, event_id, version = _TIME_ID_VERSION(data, off)
                if not raw_min <= ts <= raw_max:
                    if ts:
                        bad_time += 1
                else:
                    if ts > last_raw:
                        last_raw = ts
                    if 0 < ts < first_raw:
                        first_raw = ts
                if version != 0:  # layouts of other versions are unknown to the hand-written decoders
                    ok = None
                elif keep is not None and event_id in pktmon.PACKET_EVENTS and \
                        not keep(data, off + 0x50, off + size, clock.to_filetime(ts) if ts else None):
                    left_out += 1
                    pktmon_ok[event_id] += 1  # read and understood, then not selected
                    continue
                elif event_id == pktmon.EVENT_PACKET:
                    ok = tally.passed(data, off + 0x50, off + size)
                elif event_id == pktmon.EVENT_DROP:
                    ok = tally.packet(memoryview(data)[off + 0x50:off + size], True,
                                      clock.to_filetime(_I64(data, off + 0x10)[0]), (buf.index, off))
                elif event_id in pktmon.DECODERS:
                    ok = _pktmon_rundown(tally, event_id, memoryview(data)[off + 0x50:off + size], pktmon_errors)
                else:
                    ok = None
                if ok is not None:
                    (pktmon_ok if ok else pktmon_bad)[event_id] += 1
                    continue
            record = Record(data, off, size, htype, buf.index, clock)
            ts = record.raw_timestamp
            if ts:
                if not raw_min <= ts <= raw_max:
                    bad_time += 1
                else:
                    if ts > last_raw:
                        last_raw = ts
                    if 0 < ts < first_raw:
                        first_raw = ts
            decoder.learn(record)
            if record.provider == _PKTMON_GUID and record.event_id in pktmon.PACKET_EVENTS and record.version == 0:
                # packet events that carry extended data items: same digest, slower path
                if keep is not None and not keep(record.payload, 0, len(record.payload), record.filetime):
                    left_out += 1
                    pktmon_ok[record.event_id] += 1
                    continue
                ok = tally.packet(record.payload, record.event_id == pktmon.EVENT_DROP, record.filetime,
                                  (record.buffer_index, record.offset))
                (pktmon_ok if ok else pktmon_bad)[record.event_id] += 1
                continue
            decoded = decoder.decode(record)
            if decoded is not None and decoded.provider == _PKTMON_GUID:
                tally.rundown(decoded.event_id, decoded.fields)
            elif decoded is not None and builder is not None:
                builder.event(decoded, record)
            elif builder is not None:
                builder.undecoded(record)
        if progress is not None:
            progress(buf.offset + buf.size, trace.file_size)
    for event_id, n in pktmon_ok.items():
        decoder.count_decoded((_PKTMON_GUID, event_id, 0), LAYER_FAST, pktmon.EVENT_NAMES[event_id], n)
    for event_id, n in pktmon_bad.items():
        decoder.count_failed((_PKTMON_GUID, event_id, 0),
                             pktmon_errors.get(event_id, "packet event shorter than its header or logged size"), n)
    trace.stats.records.records = records
    stats = decoder.finish()
    if builder is not None:  # events read before the schema that describes them (per-CPU buffers)
        for decoded, record in decoder.replay():
            builder.event(decoded, record)
        builder.events_not_replayed(decoder.not_retained)
    providers, decode_info = _providers(stats)
    summary = TraceSummary(
        path=str(trace.path),
        header=_header_info(trace),
        read=_read_info(trace, buffer_types, by_header_type, records,
                        None if first_raw == _NO_TIME else clock.to_filetime(first_raw),
                        None if not last_raw else clock.to_filetime(last_raw), bad_time,
                        tally.properties_refused),
        decode=decode_info,
        providers=providers,
        pktmon=_pktmon_info(tally, decoder, trace.header.os_build, _PKTMON_GUID in {p.guid for p in providers}),
    )
    if select is not None:
        summary.pktmon.filter = select.describe()
        summary.pktmon.packet_events_left_out = left_out
    return Scan(summary, tally, decoder, builder)


def _pktmon_rundown(tally: PktmonDigest, event_id: int, payload: memoryview, errors: dict[int, str]) -> bool:
    try:
        fields = pktmon.DECODERS[event_id](payload)
    except (WireError, ValueError, struct.error) as exc:
        errors.setdefault(event_id, f"PktMon event {event_id}: {exc}")
        return False
    if not tally.rundown(event_id, fields):
        errors.setdefault(event_id, f"PktMon event {event_id}: property {fields['property']} holds a value of "
                                    f"another type ({type(fields['value']).__name__})")
        return False
    return True


def _providers(stats: DecodeStats) -> tuple[list[ProviderInfo], DecodeInfo]:
    """Providers and their events with the layer that decoded them, from the decoder's outcomes."""
    by_provider: dict[str, list[EventCount]] = {}
    layer_records: Counter[str] = Counter()
    undecodable = []
    for (guid, event_id, version), o in stats.outcomes.items():
        count = o.decoded + o.failed + o.no_layout
        by_provider.setdefault(guid, []).append(EventCount(
            event_id=event_id, version=version, count=count, name=o.name, decoder=o.layer,
            decoded=o.decoded, failed=o.failed, first_error=o.first_error, layout_unsure=o.layout_unsure,
            layout_note=o.layout_note))
        if o.decoded:
            layer_records[o.layer or "?"] += o.decoded
        if o.failed or o.no_layout:
            undecodable.append({"provider": guid, "event_id": event_id, "version": version,
                                "no_layout": o.no_layout, "failed": o.failed, "first_error": o.first_error})
    providers = [
        ProviderInfo(guid=guid,
                     name=provider_name(guid) or catalogue.provider_name(guid) or stats.provider_names.get(guid),
                     records=sum(e.count for e in events),
                     events=sorted(events, key=lambda e: (e.event_id, e.version)))
        for guid, events in by_provider.items()
    ]
    providers.sort(key=lambda p: (-p.records, p.guid))
    info = DecodeInfo(
        decodable_records=sum(layer_records.values()), undecodable_records=stats.undecodable,
        decode_errors=stats.errors, by_layer=dict(layer_records),
        undecodable=sorted(undecodable, key=lambda u: -(u["no_layout"] + u["failed"])),
    )
    return providers, info


def _header_info(trace: Trace) -> TraceHeaderInfo:
    h = trace.header
    start, end = filetime_to_datetime(h.start_time), filetime_to_datetime(h.end_time)
    return TraceHeaderInfo(
        os_version=f"{h.os_major}.{h.os_minor}", os_build=h.os_build, cpu_count=h.cpu_count,
        pointer_size=h.pointer_size, logger_name=h.logger_name, log_file_name=h.log_file_name,
        log_file_mode=h.log_file_mode, modes=h.modes, circular=h.circular,
        compressed_buffers=trace.stats.buffers.buffers_compressed > 0, clock=h.clock_name,
        timer_resolution_100ns=h.timer_resolution, buffer_size=h.buffer_size, buffers_written=h.buffers_written,
        events_lost=h.events_lost, buffers_lost=h.buffers_lost, start=start, end=end,
        duration_seconds=(end - start).total_seconds() if start and end and end >= start else None,
    )


def _read_info(trace, buffer_types, by_header_type, records, first_ts, last_ts, bad_time,
               properties_refused) -> ReadInfo:
    b, r = trace.stats.buffers, trace.stats.records
    return ReadInfo(
        file_size=trace.file_size, buffers_read=b.buffers_read, buffers_compressed=b.buffers_compressed,
        buffers_skipped=b.buffers_skipped, bytes_skipped=b.bytes_skipped, bytes_decompressed=b.bytes_decompressed,
        buffers_flagged_events_lost=b.flagged_events_lost, buffers_flagged_buffer_lost=b.flagged_buffer_lost,
        buffer_types={BUFFER_TYPES.get(t, str(t)): n for t, n in sorted(buffer_types.items())},
        records=records,
        records_by_header_type={HEADER_TYPE_NAMES.get(t, hex(t)): n for t, n in sorted(by_header_type.items())},
        buffers_with_broken_records=r.corrupt_buffers, bytes_unparsed=r.bytes_unparsed, truncated=b.truncated,
        first_event=filetime_to_datetime(first_ts) if first_ts else None,
        last_event=filetime_to_datetime(last_ts) if last_ts else None,
        records_bad_time=bad_time,
        warnings=trace.stats.warnings + ([f"{bad_time} record(s) carry a timestamp that is no date (damaged); "
                                          "their time is unknown"] if bad_time else [])
        + ([f"{properties_refused} pktmon rundown event(s) are damaged (a field missing, or a property value of "
            "another type than its code says); they were not used"] if properties_refused else []),
    )


def _pktmon_info(tally: PktmonDigest, decoder: EventDecoder, os_build: int, present: bool) -> PktmonInfo:
    embedded = decoder.value_map(_PKTMON_GUID, "DropReason")
    components = []
    for comp_id, comp in sorted(tally.components.items()):
        ctype = comp.get("type")
        components.append(ComponentInfo(
            id=comp_id, type=ctype, type_name=None if ctype is None else knowledge.component_type_name(ctype),
            name=comp.get("name"), description=comp.get("description"), properties=comp["properties"],
            packets=tally.by_component.get(comp_id, 0), drops=tally.drops_by_component.get(comp_id, 0),
            drop_counters=comp.get("drop_counters"),
        ))
    known = {c.id for c in components}
    for comp_id in sorted(set(tally.by_component) - known):  # packets from a component with no rundown
        components.append(ComponentInfo(id=comp_id, type=None, type_name=None, name=None, description=None,
                                        properties={}, packets=tally.by_component[comp_id],
                                        drops=tally.drops_by_component.get(comp_id, 0)))
    reasons = [
        DropReasonCount(code=code, count=n, name=(embedded or {}).get(code) or knowledge.drop_reason_label(code, os_build))
        for code, n in tally.drops_by_reason.most_common()
    ]
    return PktmonInfo(
        present=present, components=components, packets=tally.packets, drops=tally.drops,
        dropped_frames=tally.dropped_frames, drops_by_reason=reasons,
        drops_by_component=[DropComponentCount(component_id=k, name=tally.components.get(k, {}).get("name"), count=n)
                            for k, n in tally.drops_by_component.most_common()],
        malformed_packet_events=tally.malformed,
        reason_names_from="trace EventMetadata" if embedded else "wnvdiag knowledge table",
    )
