"""A trace as a scenario describes it: events in time, on processors, then written in one go.

Scenarios add events in any order; :meth:`TraceBuilder.write` sorts them by time (each processor's
buffers must be in time order, as ETW writes them), inserts the EventMetadata records of the
providers the trace describes just before the first event that uses each schema (as the relogger
does), applies event losses, interleaves bulk filler buffers (``diag.synth.bulk``), and counts what
it wrote. Those counts are the ground truth of record counts: computed from what the scenario put
in, never by reading the file back.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from diag.synth import eventmetadata as em
from diag.synth import pktmon as pm
from diag.synth.etlwriter import DEFAULT_START_FILETIME, EtlWriter

if TYPE_CHECKING:
    from diag.synth.bulk import Filler

SYSTEM_PID = 4


@dataclass(frozen=True)
class TraceProfile:
    """How the file looks: the host, the clock, the session and the buffer format."""

    os_build: int = 20348
    cpu_count: int = 4
    compressed: bool = True
    buffer_size: int = 65536
    start_filetime: int = DEFAULT_START_FILETIME
    perf_freq: int = 10_000_000
    logger_name: str = "Relogger"
    log_file_name: str = r"C:\Windows\system32\PktMon.etl"
    controller_pid: int = 6132
    controller_tid: int = 6136
    log_file_mode: int | None = None
    self_describing: bool = True  # embed EventMetadata for the providers a scenario describes

    @property
    def numbering(self) -> str:
        """How pktmon of ``os_build`` numbers packet snapshots: "per-packet" or "per-snapshot"."""
        return pm.numbering(self.os_build)


@dataclass(frozen=True, slots=True)
class Event:
    filetime: int
    order: int
    cpu: int
    provider: uuid.UUID
    event_id: int
    version: int
    payload: bytes
    level: int
    keywords: int
    pid: int
    tid: int


@dataclass(frozen=True, slots=True)
class Loss:
    filetime: int
    cpu: int
    events: int


@dataclass
class WrittenTrace:
    """What :meth:`TraceBuilder.write` put in the file."""

    path: str
    file_size: int
    compressed: bool
    records: int
    buffers: int
    bytes_uncompressed: int
    events_lost: int
    start_filetime: int
    end_filetime: int
    first_event_filetime: int | None
    last_event_filetime: int | None
    events_by_provider: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, provider: uuid.UUID, event_id: int) -> int:
        return self.events_by_provider.get(str(provider), {}).get(str(event_id), 0)


class TraceBuilder:
    """Collects a scenario's events; writes them as an ETL file."""

    def __init__(self, profile: TraceProfile) -> None:
        self.profile = profile
        self.events: list[Event] = []
        self.losses: list[Loss] = []
        self._layouts: dict[tuple[uuid.UUID, int, int], em.EventLayout] = {}
        self._maps: dict[tuple[uuid.UUID, str], dict[int, str]] = {}

    def describe(self, layouts: Iterable[em.EventLayout], maps: dict[str, dict[int, str]] | None = None) -> None:
        """Embed these schemas (and the value maps they name) when the trace is self-describing."""
        for layout in layouts:
            self._layouts[layout.key] = layout
            for name in layout.map_names:
                if maps is None or name not in maps:
                    raise ValueError(f"event {layout.event_id} names value map {name!r}, which is not given")
                self._maps[(layout.provider, name)] = maps[name]

    def add(self, filetime: int, provider: uuid.UUID, event_id: int, payload: bytes, *, version: int = 0,
            level: int = 4, keywords: int = 0, cpu: int = 0, pid: int = SYSTEM_PID, tid: int = 0) -> None:
        if not 0 <= cpu < self.profile.cpu_count:
            raise ValueError(f"cpu {cpu} outside 0..{self.profile.cpu_count - 1}")
        self.events.append(Event(int(filetime), len(self.events), cpu, provider, event_id, version, payload, level,
                                 keywords, pid, tid))

    def lose_events(self, filetime: int, count: int, *, cpu: int = 0) -> None:
        """``count`` events lost at ``filetime`` on ``cpu``: the buffer written next is flagged."""
        self.losses.append(Loss(int(filetime), cpu, count))

    @property
    def uncompressed_record_bytes(self) -> int:
        """About how many bytes the events take in buffers (headers and alignment included)."""
        return sum(0x50 + ((len(e.payload) + 7) & ~7) for e in self.events)

    def last_filetime(self) -> int:
        return max((e.filetime for e in self.events), default=self.profile.start_filetime)

    def write(self, path: str | os.PathLike[str], filler: "Filler | None" = None,
              end_filetime: int | None = None) -> WrittenTrace:
        p = self.profile
        counts: Counter[tuple[uuid.UUID, int]] = Counter()
        events = self.events
        if p.numbering == "per-snapshot":
            events = pm.number_snapshots(events)
        ordered = sorted(events, key=lambda e: (e.filetime, e.order))
        losses = sorted(self.losses, key=lambda loss: loss.filetime)
        end = end_filetime if end_filetime is not None else self.last_filetime() + 10_000
        with EtlWriter(
            path, os_build=p.os_build, cpu_count=p.cpu_count, buffer_size=p.buffer_size, compressed=p.compressed,
            start_filetime=p.start_filetime, perf_freq=p.perf_freq, logger_name=p.logger_name,
            log_file_name=p.log_file_name, controller_pid=p.controller_pid, controller_tid=p.controller_tid,
            log_file_mode=p.log_file_mode, end_filetime=end,
        ) as writer:
            described: set[tuple[uuid.UUID, int, int]] = set()
            maps_written: set[tuple[uuid.UUID, str]] = set()
            for e in ordered:
                while losses and losses[0].filetime <= e.filetime:
                    loss = losses.pop(0)
                    writer.lose_events(loss.events, cpu=loss.cpu)
                if filler is not None:
                    filler.write_until(writer, e.filetime)
                key = (e.provider, e.event_id, e.version)
                if p.self_describing and key in self._layouts and key not in described:
                    described.add(key)
                    self._write_schema(writer, self._layouts[key], e, maps_written, counts)
                writer.write_event(e.provider, e.event_id, e.version, e.payload, timestamp=e.filetime, cpu=e.cpu,
                                   pid=e.pid, tid=e.tid, level=e.level, keywords=e.keywords)
                counts[(e.provider, e.event_id)] += 1
            for loss in losses:
                writer.lose_events(loss.events, cpu=loss.cpu)
            if filler is not None:
                filler.write_until(writer, None)
                for (provider, event_id), n in filler.written.items():
                    counts[(provider, event_id)] += n
        by_provider: dict[str, dict[str, int]] = {}
        for (provider, event_id), n in sorted(counts.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
            by_provider.setdefault(str(provider), {})[str(event_id)] = n
        times = [e.filetime for e in ordered]
        return WrittenTrace(
            path=os.fspath(path), file_size=writer.file_size, compressed=p.compressed, records=writer.records_written,
            buffers=writer.buffers_written, bytes_uncompressed=writer.bytes_uncompressed,
            events_lost=writer.events_lost, start_filetime=p.start_filetime, end_filetime=end,
            first_event_filetime=min(times, default=None), last_event_filetime=max(times, default=None),
            events_by_provider=by_provider,
        )

    def _write_schema(self, writer: EtlWriter, layout: em.EventLayout, before: Event,
                      maps_written: set[tuple[uuid.UUID, str]], counts: Counter) -> None:
        for name in layout.map_names:
            if (layout.provider, name) in maps_written:
                continue
            maps_written.add((layout.provider, name))
            payload = em.map_info(layout.provider, name, self._maps[(layout.provider, name)])
            writer.write_classic(em.PROVIDER, em.EVENT_MAP_INFO, payload, timestamp=before.filetime, cpu=before.cpu,
                                 pid=before.pid, tid=before.tid)
            counts[(em.PROVIDER, em.EVENT_MAP_INFO)] += 1
        writer.write_classic(em.PROVIDER, em.EVENT_INFO, em.event_info(layout), timestamp=before.filetime,
                             cpu=before.cpu, pid=before.pid, tid=before.tid)
        counts[(em.PROVIDER, em.EVENT_INFO)] += 1
