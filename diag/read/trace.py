"""Open an ETL file and stream its records, buffer by buffer."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from diag.errors import BadTraceError
from diag.read.buffers import Buffer, BufferStats, NotAnEtlFile, iter_buffers
from diag.read.clock import TraceClock
from diag.read.logfile import LogfileHeader, parse_logfile_header
from diag.read.records import POINTER_SIZE, Record, RecordStats, SYSTEM32, SYSTEM64, record_spans


@dataclass(slots=True)
class ReadStats:
    """What the reader saw and what it could not read: every skip is counted here."""

    buffers: BufferStats = field(default_factory=BufferStats)
    records: RecordStats = field(default_factory=RecordStats)

    @property
    def warnings(self) -> list[str]:
        out = [f"buffer at offset {i.offset}: {i.problem}" for i in self.buffers.issues]
        out += [f"buffer #{i.buffer_index}, record at +{i.offset}: {i.problem}" for i in self.records.issues]
        return out


class Trace:
    """An ETL file opened for streaming. Use as a context manager, or call ``close()``.

    ``header`` is the logfile header; ``buffers()`` and ``records()`` stream the file from the
    start each time they are called, holding one buffer in memory at a time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: BinaryIO = _open_checked(self.path)
        self.file_size = os.fstat(self._fh.fileno()).st_size
        self.header, self.clock = self._read_header()
        self.stats = ReadStats()

    def _read_header(self) -> tuple[LogfileHeader, TraceClock]:
        try:
            first = next(iter_buffers(self._fh, self.file_size, BufferStats()), None)
        except NotAnEtlFile as exc:
            raise BadTraceError(f"not an ETL trace ({exc})", self.path) from None
        if first is None:
            raise BadTraceError("not an ETL trace (no complete buffer)", self.path)
        span = next(record_spans(first.data, 0, RecordStats()), None)
        if span is None or span[0] not in (SYSTEM32, SYSTEM64):
            raise BadTraceError("not an ETL trace (the first record is not a logfile header)", self.path)
        htype, off, size = span
        probe = Record(first.data, off, size, htype, 0, None)
        if probe.opcode != 0 or first.data[off + 7] != 0:
            raise BadTraceError("not an ETL trace (the first record is not a logfile header)", self.path)
        pointer_size = POINTER_SIZE[htype]
        try:
            header = parse_logfile_header(probe.payload, pointer_size)
        except ValueError as exc:
            raise BadTraceError(f"unreadable logfile header ({exc})", self.path) from None
        clock = TraceClock(header.start_time, probe.raw_timestamp or 0, header.ticks_per_second, header.pointer_size)
        return header, clock

    def buffers(self) -> Iterator[Buffer]:
        self.stats = ReadStats()
        return iter_buffers(self._fh, self.file_size, self.stats.buffers)

    def records(self, progress: Callable[[int, int], None] | None = None) -> Iterator[Record]:
        """Every record of the file, in file order, as lazily decoded ``Record`` objects.
        ``progress(bytes_done, bytes_total)`` is called as each buffer is reached."""
        clock = self.clock
        for buf in self.buffers():
            if progress is not None:
                progress(buf.offset + buf.size, self.file_size)
            rstats = self.stats.records
            data, index = buf.data, buf.index
            for htype, off, size in record_spans(data, index, rstats):
                rstats.records += 1
                yield Record(data, off, size, htype, index, clock)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_checked(path: Path) -> BinaryIO:
    if not path.exists():
        raise BadTraceError("no such file", path)
    if path.is_dir():
        raise BadTraceError("is a directory, not an ETL trace", path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise BadTraceError(f"cannot be opened ({exc.strerror or exc})", path) from None
    if os.fstat(fh.fileno()).st_size == 0:
        fh.close()
        raise BadTraceError("is empty, not an ETL trace", path)
    return fh


def open_trace(path: str | os.PathLike[str]) -> Trace:
    return Trace(path)
