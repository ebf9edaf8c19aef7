"""A small, struct-based writer for Windows ETW trace files (.etl).

It writes what a Windows 10+ session writes to a sequential log file, uncompressed (a direct
session) or compressed (what the relogger makes of a pktmon capture, ``compressed=True``):

* buffer 0, ``BufferType`` 4 (header), holding the logfile header record: a SYSTEM64 trace header
  (hook id 0) followed by ``TRACE_LOGFILE_HEADER`` (64-bit pointer layout, 0x118 bytes) and the
  logger and log-file names as NUL-terminated UTF-16LE;
* then generic buffers (``BufferType`` 0), one open buffer per processor, each flushed to the file when
  the next record does not fit; records are ``EVENT_HEADER64`` (header type 0x13) records, 8-byte
  aligned, the alignment gap zero-filled, the unused tail of every buffer filled with 0xFF.

Uncompressed, every buffer occupies exactly ``buffer_size`` bytes in the file. Compressed, as in
the relogged pktmon samples: the header buffer is 1024 bytes, uncompressed, flags 0x1; every other
buffer is flagged 0x40 and holds its records LZXpress-compressed (``diag.synth.compress``), with
``BufferSize`` = 72 + the compressed length (its size in the file), ``SavedOffset`` = ``FilledBytes``
= 72 + the uncompressed length, ``CurrentOffset`` = 0x1000000 + that, ``TimeStamp`` the FILETIME of
the last record; the logfile header says ``BufferSize`` 16 MiB. Records fill a buffer up to
``buffer_size`` bytes before it is compressed and written.

Layout decisions, taken from the Windows 10/11 samples in ``shared/etl-samples`` (direct, uncompressed
sessions such as the krabsetw and PerfDiag files; the pktmon samples are relogged and compressed):

* clock: ``ReservedFlags`` = 1 (QPC) and ``PerfFreq`` = 10 MHz by default. Event timestamps are QPC
  ticks; the logfile header record carries the QPC value of ``StartTime``, so a reader computes
  ``FILETIME = StartTime + (ts - header_ts) * 10**7 / PerfFreq``.
* buffer flags: header buffer 0x21 (flush marker | processor index), generic buffers 0x20 (processor
  index), the last buffer written at close 0x21; 0x02 (events lost) / 0x04 (buffer lost) on the buffer
  that was open on that processor when :meth:`EtlWriter.lose_events` / :meth:`EtlWriter.lose_buffers`
  was called. ``BufferState`` 3, ``SavedOffset`` = ``CurrentOffset`` = ``FilledBytes`` (bytes used,
  header included), ``TimeStamp`` = QPC of the buffer's last record (0 for the header buffer),
  ``SequenceNumber`` in file order (0 for the header buffer). 0x20..0x27 and 0x38..0x47 (kernel
  pointers / reference time in real files) are written as zeros.
* event records: ``Flags`` 0 and ``EventProperty`` 0, as in every manifest-based record of the samples
  (64-bitness is carried by header type 0x13, not by flag 0x40); ``ProcessorTime`` and ``ActivityId``
  zero unless given.
* logfile header: version bytes 10.0.1.5 (direct Windows 10 session; relogged files say 10.0.2.0),
  ``ProviderVersion`` = OS build, ``LogFileMode`` 1 (sequential), ``TimerResolution`` 156250,
  ``StartBuffers`` 1, ``PointerSize`` 8, the LoggerName/LogFileName pointer fields 0, time zone UTC.
  ``BuffersWritten`` (all buffers, the header buffer included), ``EndTime``, ``EventsLost`` and
  ``BuffersLost`` are fixed up on close.

Records: ``EVENT_HEADER64`` (:meth:`EtlWriter.write_event`) and classic ``FULL_HEADER64``
(:meth:`EtlWriter.write_classic`, e.g. EventMetadata). :meth:`EtlWriter.write_prepared_buffer`
writes a records area built elsewhere (``diag.synth.bulk`` varies copies of one for --size runs).

Bad-input variants for reader tests: :meth:`EtlWriter.lose_events` (events-lost flag and count),
``truncate_at`` (cut the finished file at a byte offset, e.g. in the middle of a buffer), and
``corrupt_buffer`` / ``corrupt_mode`` (damage one buffer header after everything is written).
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from diag.synth.compress import compress

__all__ = [
    "BUFFER_HEADER_SIZE",
    "EVENT_HEADER_SIZE",
    "BufferFlag",
    "BufferInfo",
    "EtlWriter",
    "classic_record",
    "event_record",
    "filetime_from_unix",
]

BUFFER_HEADER_SIZE = 72
EVENT_HEADER_SIZE = 0x50
FULL_HEADER_SIZE = 0x30
SYSTEM_HEADER_SIZE = 32
LOGFILE_HEADER_SIZE = 0x118

# WMI_BUFFER_HEADER
_BUFFER_HEADER = struct.Struct("<IIIiqqQBBHIIHH16s")
# EVENT_HEADER (64-bit record form)
_EVENT_HEADER = struct.Struct("<HBBHHIIq16sHBBBBHQQ16s")
# EVENT_TRACE_HEADER (classic, 64-bit): Size, type, flags, Type/Level/Version, Tid, Pid, TimeStamp,
# Guid, KernelTime, UserTime
_FULL_HEADER = struct.Struct("<HBBBBHIIq16sII")
# SYSTEM_TRACE_HEADER (64-bit), used for the logfile header record
_SYSTEM_HEADER = struct.Struct("<HBBHHIIqII")
# TRACE_LOGFILE_HEADER up to the time zone, and from BootTime to the end
_LOGFILE_HEAD = struct.Struct("<I4BIIqIIIIIIIIQQ")
_LOGFILE_TAIL = struct.Struct("<QQqII")
_TIME_ZONE_SIZE = 172

HEADER_TYPE_SYSTEM64 = 0x02
HEADER_TYPE_EVENT_HEADER64 = 0x13
HEADER_TYPE_FULL_HEADER64 = 0x14
HEADER_FLAGS = 0xC0  # TRACE_HEADER_FLAG | TRACE_HEADER_EVENT_TRACE

BUFFER_TYPE_GENERIC = 0
BUFFER_TYPE_HEADER = 4
BUFFER_STATE_FLUSH = 3

CLOCK_QPC = 1  # TRACE_LOGFILE_HEADER.ReservedFlags
EVENT_TRACE_FILE_MODE_SEQUENTIAL = 0x00000001
EVENT_TRACE_FILE_MODE_CIRCULAR = 0x00000002
RELOGGED_LOG_FILE_MODE = 0x04010001  # what the relogged pktmon samples carry (compressed | sequential | ...)
RELOGGED_BUFFER_SIZE = 0x1000000  # the logfile header's BufferSize in relogged files
COMPRESSED_HEADER_BUFFER_SIZE = 1024
COMPRESSED_CURRENT_OFFSET_BASE = 0x1000000

FILETIME_TICKS_PER_SECOND = 10_000_000
_FILETIME_UNIX_EPOCH = 116_444_736_000_000_000

CORRUPT_MODES = ("zero_size", "filled_overflow", "garbage")


class BufferFlag:
    """``WMI_BUFFER_HEADER.BufferFlag`` bits."""

    FLUSH_MARKER = 0x0001
    EVENTS_LOST = 0x0002
    BUFFER_LOST = 0x0004
    PROCESSOR_INDEX = 0x0020
    COMPRESSED = 0x0040


def filetime_from_unix(seconds: float) -> int:
    """FILETIME (100 ns ticks since 1601-01-01 UTC) for a Unix time in seconds."""
    return _FILETIME_UNIX_EPOCH + round(seconds * FILETIME_TICKS_PER_SECOND)


# 2024-05-14 10:00:00 UTC
DEFAULT_START_FILETIME = filetime_from_unix(1_715_680_800)


@dataclass
class BufferInfo:
    """Where one buffer went in the file (for diagnostics and for building bad variants)."""

    offset: int
    size: int
    filled: int
    cpu: int
    sequence: int
    flags: int
    buffer_type: int
    records: int


@dataclass
class _OpenBuffer:
    cpu: int
    data: bytearray = field(default_factory=bytearray)
    records: int = 0
    last_qpc: int = 0
    last_filetime: int = 0
    flags: int = BufferFlag.PROCESSOR_INDEX


def _align8(n: int) -> int:
    return (n + 7) & ~7


def event_record(
    provider: uuid.UUID,
    event_id: int,
    version: int,
    payload: bytes,
    qpc: int,
    *,
    pid: int = 0,
    tid: int = 0,
    level: int = 4,
    opcode: int = 0,
    task: int = 0,
    keywords: int = 0,
    channel: int = 0,
    flags: int = 0,
    event_property: int = 0,
    processor_time: int = 0,
    activity_id: uuid.UUID | None = None,
) -> bytes:
    """One ``EVENT_HEADER64`` record, zero-padded to 8 bytes. The QPC timestamp is at offset 0x10
    and the payload starts at 0x50."""
    size = EVENT_HEADER_SIZE + len(payload)
    if size > 0xFFFF:
        raise ValueError(f"record of {size} bytes is longer than 65535")
    header = _EVENT_HEADER.pack(
        size, HEADER_TYPE_EVENT_HEADER64, HEADER_FLAGS, flags, event_property, tid, pid, qpc,
        provider.bytes_le, event_id, version, channel, level, opcode, task, keywords, processor_time,
        (activity_id or uuid.UUID(int=0)).bytes_le,
    )
    return header + payload + bytes(_align8(size) - size)


def classic_record(
    guid: uuid.UUID, opcode: int, payload: bytes, qpc: int, *, pid: int = 0, tid: int = 0, level: int = 0,
    version: int = 0,
) -> bytes:
    """One classic ``FULL_HEADER64`` record (a MOF-style event: class GUID and opcode), 8-aligned."""
    size = FULL_HEADER_SIZE + len(payload)
    if size > 0xFFFF:
        raise ValueError(f"record of {size} bytes is longer than 65535")
    header = _FULL_HEADER.pack(size, HEADER_TYPE_FULL_HEADER64, HEADER_FLAGS, opcode, level, version, tid, pid, qpc,
                               guid.bytes_le, 0, 0)
    return header + payload + bytes(_align8(size) - size)


def _utf16z(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


class EtlWriter:
    """Write an ETL file, one record at a time.

    Use as a context manager; the file is complete (header fixed up, open buffers flushed, variants
    applied) when the ``with`` block ends or :meth:`close` returns::

        with EtlWriter(path, cpu_count=2, buffer_size=8192) as w:
            w.write_event(provider, 160, 0, payload, timestamp=filetime, cpu=1, keywords=0x10)

    Parameters (all keyword-only besides ``path``):

    ``os_build``: OS build number (``ProviderVersion``). ``cpu_count``: ``NumberOfProcessors``; events
    may name processors ``0 .. cpu_count-1``. ``buffer_size``: bytes per buffer, a multiple of 8 and at
    least 1024 (compressed: how far records fill a buffer before it is compressed). ``compressed``:
    write LZXpress-compressed buffers as the relogger does. ``start_filetime``: session start
    (FILETIME). ``perf_freq``: QPC frequency. ``start_qpc``: QPC value at ``start_filetime`` (default:
    one hour of uptime), used for the header record and for ``BootTime``. ``logger_name`` /
    ``log_file_name``: the names after the header. ``end_filetime``: ``EndTime`` (default: the latest
    event timestamp, or the start). ``log_file_mode``: default sequential, or what relogged files
    carry when compressed.

    Bad-input variants: ``truncate_at`` cuts the finished file to that many bytes;
    ``corrupt_buffer`` (buffer index in file order, 0 = header buffer) with ``corrupt_mode``:
    ``"zero_size"`` (``BufferSize`` = 0), ``"filled_overflow"`` (``FilledBytes`` = ``BufferSize`` +
    4096) or ``"garbage"`` (all 72 header bytes 0xA5).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        os_build: int = 19041,
        cpu_count: int = 2,
        buffer_size: int = 65536,
        compressed: bool = False,
        start_filetime: int = DEFAULT_START_FILETIME,
        perf_freq: int = 10_000_000,
        start_qpc: int | None = None,
        logger_name: str = "PktMon",
        log_file_name: str = r"C:\Windows\system32\PktMon.etl",
        logger_id: int = 0,
        cpu_speed_mhz: int = 2400,
        controller_pid: int = 4242,
        controller_tid: int = 4243,
        log_file_mode: int | None = None,
        maximum_file_size_mb: int = 512,
        version: tuple[int, int, int, int] | None = None,
        timer_resolution: int = 156_250,
        end_filetime: int | None = None,
        truncate_at: int | None = None,
        corrupt_buffer: int | None = None,
        corrupt_mode: str = "filled_overflow",
    ) -> None:
        if buffer_size % 8 or buffer_size < 1024:
            raise ValueError("buffer_size must be a multiple of 8 and at least 1024")
        if compressed and buffer_size > RELOGGED_BUFFER_SIZE:
            raise ValueError("compressed buffers hold at most 16 MiB")
        if cpu_count < 1 or cpu_count > 256:
            raise ValueError("cpu_count must be 1..256")
        if perf_freq <= 0:
            raise ValueError("perf_freq must be positive")
        if corrupt_mode not in CORRUPT_MODES:
            raise ValueError(f"corrupt_mode must be one of {CORRUPT_MODES}")
        self.path = os.fspath(path)
        self.os_build = os_build
        self.cpu_count = cpu_count
        self.buffer_size = buffer_size
        self.compressed = compressed
        self.start_filetime = start_filetime
        self.perf_freq = perf_freq
        self.start_qpc = perf_freq * 3600 if start_qpc is None else start_qpc
        self.logger_name = logger_name
        self.log_file_name = log_file_name
        self.logger_id = logger_id
        self.cpu_speed_mhz = cpu_speed_mhz
        self.controller_pid = controller_pid
        self.controller_tid = controller_tid
        if log_file_mode is None:
            log_file_mode = RELOGGED_LOG_FILE_MODE if compressed else EVENT_TRACE_FILE_MODE_SEQUENTIAL
        self.log_file_mode = log_file_mode
        self.maximum_file_size_mb = maximum_file_size_mb
        self.version = version or ((10, 0, 2, 0) if compressed else (10, 0, 1, 5))
        self.timer_resolution = timer_resolution
        self.end_filetime = end_filetime
        self.truncate_at = truncate_at
        self.corrupt_buffer = corrupt_buffer
        self.corrupt_mode = corrupt_mode

        self.events_lost = 0
        self.buffers_lost = 0
        self.records_written = 1  # the logfile header record
        self.bytes_uncompressed = 0
        self.buffers: list[BufferInfo] = []
        self._open: dict[int, _OpenBuffer] = {}
        self._last_filetime = start_filetime
        self._max_filetime = start_filetime
        self._closed = False
        self._header_size = COMPRESSED_HEADER_BUFFER_SIZE if compressed else buffer_size
        self._file_end = self._header_size
        self._fh: BinaryIO = open(self.path, "wb+")  # noqa: SIM115 - closed in close()
        self._write_header_buffer()  # placeholder, rewritten by close()

    # -- public API ---------------------------------------------------------------------------

    def __enter__(self) -> EtlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def filetime_to_qpc(self, filetime: int) -> int:
        """QPC ticks for a FILETIME, rounded to the nearest tick."""
        num = (filetime - self.start_filetime) * self.perf_freq
        return self.start_qpc + (2 * num + FILETIME_TICKS_PER_SECOND) // (2 * FILETIME_TICKS_PER_SECOND)

    def qpc_to_filetime(self, qpc: int) -> int:
        """The FILETIME a reader computes for a QPC timestamp (rounded down)."""
        return self.start_filetime + (qpc - self.start_qpc) * FILETIME_TICKS_PER_SECOND // self.perf_freq

    @property
    def max_record_size(self) -> int:
        return self.buffer_size - BUFFER_HEADER_SIZE

    def write_event(
        self,
        provider: uuid.UUID,
        event_id: int,
        version: int,
        payload: bytes,
        *,
        timestamp: int | None = None,
        pid: int = 0,
        tid: int = 0,
        level: int = 4,
        opcode: int = 0,
        task: int = 0,
        keywords: int = 0,
        channel: int = 0,
        cpu: int = 0,
        flags: int = 0,
        event_property: int = 0,
        processor_time: int = 0,
        activity_id: uuid.UUID | None = None,
    ) -> None:
        """Append one ``EVENT_HEADER64`` record to ``cpu``'s buffer.

        ``timestamp`` is a FILETIME (default: the previous event's); it is stored as QPC ticks.
        Callers should write each processor's events in time order, as ETW does.
        """
        self._check_open()
        self._check_cpu(cpu)
        filetime, qpc = self._clock(timestamp)
        record = event_record(
            provider, event_id, version, payload, qpc, pid=pid, tid=tid, level=level, opcode=opcode, task=task,
            keywords=keywords, channel=channel, flags=flags, event_property=event_property,
            processor_time=processor_time, activity_id=activity_id,
        )
        self._append(cpu, record, qpc, filetime)

    def write_classic(
        self,
        guid: uuid.UUID,
        opcode: int,
        payload: bytes,
        *,
        timestamp: int | None = None,
        cpu: int = 0,
        pid: int = 0,
        tid: int = 0,
        level: int = 0,
        version: int = 0,
    ) -> None:
        """Append one classic ``FULL_HEADER64`` record (EventMetadata and other MOF-style events)."""
        self._check_open()
        self._check_cpu(cpu)
        filetime, qpc = self._clock(timestamp)
        record = classic_record(guid, opcode, payload, qpc, pid=pid, tid=tid, level=level, version=version)
        self._append(cpu, record, qpc, filetime)

    def write_prepared_buffer(self, *, cpu: int, record_count: int, last_qpc: int, records: bytes | None = None,
                              compressed_records: bytes | None = None, records_size: int | None = None) -> None:
        """Write a buffer whose records area is already built: ``records`` for a plain trace; for a
        compressed one ``compressed_records`` and the uncompressed ``records_size``.

        The buffers open on other processors stay open; ``cpu``'s open buffer is written first, so
        each processor's buffers stay in time order.
        """
        self._check_open()
        self._check_cpu(cpu)
        if self.compressed:
            if compressed_records is None or records_size is None:
                raise ValueError("a compressed trace needs compressed_records and records_size")
            size = records_size
        else:
            if records is None:
                raise ValueError("a plain trace needs the records")
            size = len(records)
        if BUFFER_HEADER_SIZE + size > self.buffer_size:
            raise ValueError(f"{size} bytes of records do not fit a {self.buffer_size}-byte buffer")
        self.flush(cpu)
        buf = _OpenBuffer(cpu, records=record_count, last_qpc=last_qpc, last_filetime=self.qpc_to_filetime(last_qpc))
        self._emit(buf, records, compressed_records, size)
        self.records_written += record_count
        self._max_filetime = max(self._max_filetime, buf.last_filetime)

    def lose_events(self, count: int, *, cpu: int = 0) -> None:
        """Record that ``count`` events were lost: ``EventsLost`` += count in the logfile header and
        the events-lost flag (0x02) on ``cpu``'s current buffer (the next one written for it)."""
        self._check_open()
        self.events_lost += count
        self._current(cpu).flags |= BufferFlag.EVENTS_LOST

    def lose_buffers(self, count: int, *, cpu: int = 0) -> None:
        """Record ``count`` lost buffers: ``BuffersLost`` += count and flag 0x04 on ``cpu``'s current buffer."""
        self._check_open()
        self.buffers_lost += count
        self._current(cpu).flags |= BufferFlag.BUFFER_LOST

    def flush(self, cpu: int | None = None) -> None:
        """Write out the open buffer of ``cpu`` (or of every processor, in processor order)."""
        self._check_open()
        for c in sorted(self._open) if cpu is None else [cpu]:
            if c in self._open and self._has_content(self._open[c]):
                self._emit(self._open.pop(c))

    def close(self) -> None:
        """Flush open buffers, fix up the logfile header, apply the bad-input variants, close."""
        if self._closed:
            return
        try:
            pending = [self._open[c] for c in sorted(self._open) if self._has_content(self._open[c])]
            for i, buf in enumerate(pending):
                if i == len(pending) - 1:
                    buf.flags |= BufferFlag.FLUSH_MARKER
                self._emit(buf)
            self._open.clear()
            self._write_header_buffer()
            if self.corrupt_buffer is not None:
                self._corrupt(self.corrupt_buffer, self.corrupt_mode)
            if self.truncate_at is not None:
                self._fh.truncate(self.truncate_at)
        finally:
            self._closed = True
            self._fh.close()

    @property
    def buffers_written(self) -> int:
        """Buffers in the file so far, the header buffer included."""
        return len(self.buffers)

    @property
    def file_size(self) -> int:
        return self._file_end

    # -- internals ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("EtlWriter is closed")

    def _check_cpu(self, cpu: int) -> None:
        if not 0 <= cpu < self.cpu_count:
            raise ValueError(f"cpu {cpu} outside 0..{self.cpu_count - 1}")

    def _clock(self, timestamp: int | None) -> tuple[int, int]:
        filetime = self._last_filetime if timestamp is None else int(timestamp)
        qpc = self.filetime_to_qpc(filetime)
        if qpc < 0:
            raise ValueError("timestamp before the QPC origin (boot time)")
        return filetime, qpc

    def _append(self, cpu: int, record: bytes, qpc: int, filetime: int) -> None:
        if len(record) > self.max_record_size:
            raise ValueError(f"record of {len(record)} bytes does not fit a {self.buffer_size}-byte buffer")
        buf = self._buffer_for(cpu, len(record))
        buf.data += record
        buf.records += 1
        buf.last_qpc = qpc
        buf.last_filetime = filetime
        self.records_written += 1
        self._last_filetime = filetime
        self._max_filetime = max(self._max_filetime, filetime)

    @staticmethod
    def _has_content(buf: _OpenBuffer) -> bool:
        # A buffer flagged as following a loss is written even when empty, so the flag survives.
        return bool(buf.records or buf.flags & (BufferFlag.EVENTS_LOST | BufferFlag.BUFFER_LOST))

    def _current(self, cpu: int) -> _OpenBuffer:
        self._check_cpu(cpu)
        if cpu not in self._open:
            self._open[cpu] = _OpenBuffer(cpu)
        return self._open[cpu]

    def _buffer_for(self, cpu: int, need: int) -> _OpenBuffer:
        buf = self._current(cpu)
        if buf.records and BUFFER_HEADER_SIZE + len(buf.data) + need > self.buffer_size:
            carry = buf.flags & ~(BufferFlag.EVENTS_LOST | BufferFlag.BUFFER_LOST)
            self._emit(self._open.pop(cpu))
            buf = self._current(cpu)
            buf.flags = carry
        return buf

    def _buffer_header(self, *, size: int, filled: int, current: int, cpu: int, sequence: int, timestamp: int,
                       flags: int, buffer_type: int) -> bytes:
        return _BUFFER_HEADER.pack(
            size,  # BufferSize
            filled,  # SavedOffset
            current,  # CurrentOffset
            0,  # ReferenceCount
            timestamp,  # TimeStamp (QPC, or FILETIME in relogged files)
            sequence,  # SequenceNumber
            0,  # ClockType/Frequency union (kernel pointer in real files)
            cpu,  # ETW_BUFFER_CONTEXT.ProcessorNumber
            0,  # ETW_BUFFER_CONTEXT.Alignment
            self.logger_id,
            BUFFER_STATE_FLUSH,
            filled,  # Offset / FilledBytes
            flags,
            buffer_type,
            bytes(16),  # padding / reference time
        )

    def _buffer_bytes(
        self, body: bytes, *, cpu: int, sequence: int, timestamp: int, flags: int, buffer_type: int
    ) -> bytes:
        """An uncompressed buffer: header, records, the unused tail filled with 0xFF."""
        filled = BUFFER_HEADER_SIZE + len(body)
        size = self._header_size if buffer_type == BUFFER_TYPE_HEADER else self.buffer_size
        current = 0 if self.compressed else filled
        header = self._buffer_header(size=size, filled=filled, current=current, cpu=cpu, sequence=sequence,
                                     timestamp=timestamp, flags=flags, buffer_type=buffer_type)
        return header + body + b"\xff" * (size - filled)

    def _compressed_buffer_bytes(self, records_size: int, packed: bytes, *, cpu: int, sequence: int, timestamp: int,
                                 flags: int) -> bytes:
        filled = BUFFER_HEADER_SIZE + records_size
        header = self._buffer_header(
            size=BUFFER_HEADER_SIZE + len(packed), filled=filled, current=COMPRESSED_CURRENT_OFFSET_BASE + filled,
            cpu=cpu, sequence=sequence, timestamp=timestamp, flags=flags | BufferFlag.COMPRESSED,
            buffer_type=BUFFER_TYPE_GENERIC)
        return header + packed

    def _emit(self, buf: _OpenBuffer, body: bytes | None = None, packed: bytes | None = None,
              size: int | None = None) -> None:
        if body is None and packed is None:
            body = bytes(buf.data)
        size = len(body) if body is not None else size
        assert size is not None
        offset = self._file_end
        sequence = len(self.buffers)
        if self.compressed:
            if packed is None:
                packed = compress(body)  # type: ignore[arg-type]
            data = self._compressed_buffer_bytes(
                size, packed, cpu=buf.cpu, sequence=sequence,
                timestamp=buf.last_filetime if buf.records else 0, flags=buf.flags)
        else:
            data = self._buffer_bytes(body, cpu=buf.cpu, sequence=sequence, timestamp=buf.last_qpc,  # type: ignore[arg-type]
                                      flags=buf.flags, buffer_type=BUFFER_TYPE_GENERIC)
        self._fh.seek(offset)
        self._fh.write(data)
        self._file_end += len(data)
        self.bytes_uncompressed += BUFFER_HEADER_SIZE + size
        self.buffers.append(
            BufferInfo(offset, len(data), BUFFER_HEADER_SIZE + size, buf.cpu, sequence,
                       buf.flags | (BufferFlag.COMPRESSED if self.compressed else 0), BUFFER_TYPE_GENERIC,
                       buf.records)
        )

    def _logfile_record(self) -> bytes:
        buffers_written = max(len(self.buffers), 1)
        end = self._max_filetime if self.end_filetime is None else self.end_filetime
        boot = self.start_filetime - self.start_qpc * FILETIME_TICKS_PER_SECOND // self.perf_freq
        head = _LOGFILE_HEAD.pack(
            RELOGGED_BUFFER_SIZE if self.compressed else self.buffer_size,
            *self.version,
            self.os_build,
            self.cpu_count,
            end,
            self.timer_resolution,
            self.maximum_file_size_mb,
            self.log_file_mode,
            buffers_written,
            1,  # StartBuffers
            8,  # PointerSize
            self.events_lost,
            self.cpu_speed_mhz,
            0,  # LoggerName pointer
            0,  # LogFileName pointer
        )
        tz = bytearray(_TIME_ZONE_SIZE)  # Bias 0 (UTC), no daylight saving
        name = "@tzres.dll,-932".encode("utf-16-le")  # "Coordinated Universal Time"
        tz[4 : 4 + len(name)] = name
        tail = _LOGFILE_TAIL.pack(boot, self.perf_freq, self.start_filetime, CLOCK_QPC, self.buffers_lost)
        payload = head + bytes(tz) + bytes(4) + tail + _utf16z(self.logger_name) + _utf16z(self.log_file_name)
        assert len(head) + _TIME_ZONE_SIZE + 4 + len(tail) == LOGFILE_HEADER_SIZE
        size = SYSTEM_HEADER_SIZE + len(payload)
        system = _SYSTEM_HEADER.pack(
            2,  # Version
            HEADER_TYPE_SYSTEM64,
            HEADER_FLAGS,
            size,
            0,  # HookId: group 0 (header), opcode 0
            self.controller_tid,
            self.controller_pid,
            self.start_qpc,
            0,  # KernelTime
            0,  # UserTime
        )
        record = system + payload
        return record + bytes(_align8(size) - size)

    def _write_header_buffer(self) -> None:
        record = self._logfile_record()
        if BUFFER_HEADER_SIZE + len(record) > self._header_size:
            raise ValueError("logger/log-file names too long for the header buffer")
        flags = BufferFlag.FLUSH_MARKER if self.compressed else BufferFlag.FLUSH_MARKER | BufferFlag.PROCESSOR_INDEX
        data = self._buffer_bytes(record, cpu=0, sequence=0, timestamp=0, flags=flags, buffer_type=BUFFER_TYPE_HEADER)
        self._fh.seek(0)
        self._fh.write(data)
        info = BufferInfo(0, self._header_size, BUFFER_HEADER_SIZE + len(record), 0, 0, flags, BUFFER_TYPE_HEADER, 1)
        if self.buffers:
            self.buffers[0] = info
        else:
            self.buffers.append(info)

    def _corrupt(self, index: int, mode: str) -> None:
        if not 0 <= index < len(self.buffers):
            raise ValueError(f"corrupt_buffer {index} outside 0..{len(self.buffers) - 1}")
        info = self.buffers[index]
        offset = info.offset
        if mode == "zero_size":
            self._fh.seek(offset)
            self._fh.write(struct.pack("<I", 0))
        elif mode == "filled_overflow":
            self._fh.seek(offset + 0x30)
            self._fh.write(struct.pack("<I", info.size + 4096))
        else:  # garbage
            self._fh.seek(offset)
            self._fh.write(b"\xa5" * BUFFER_HEADER_SIZE)
