"""ETL buffers: the fixed-size blocks an ETW session flushes to disk, one after another.

Every buffer starts with a 72-byte WMI_BUFFER_HEADER. Buffers flagged 0x40 hold LZXpress-compressed
records (pktmon writes them that way); their ``BufferSize`` is the compressed size on disk and
``Offset`` (the filled size) is the size once decompressed, header included.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import pyfwnt

HEADER_SIZE = 72
# BufferSize, SavedOffset, CurrentOffset, ReferenceCount, TimeStamp, SequenceNumber, ClockType/Frequency,
# ProcessorIndex, LoggerId, State, Offset (filled bytes), BufferFlag, BufferType
_HEADER = struct.Struct("<IIIiqqQHHIIHH")

FLAG_FLUSH_MARKER = 0x0001
FLAG_EVENTS_LOST = 0x0002
FLAG_BUFFER_LOST = 0x0004
FLAG_RTBACKUP_CORRUPT = 0x0008
FLAG_RTBACKUP = 0x0010
FLAG_PROC_INDEX = 0x0020
FLAG_COMPRESSED = 0x0040
FLAG_NAMES = {
    FLAG_FLUSH_MARKER: "flush-marker", FLAG_EVENTS_LOST: "events-lost", FLAG_BUFFER_LOST: "buffer-lost",
    FLAG_RTBACKUP_CORRUPT: "rt-backup-corrupt", FLAG_RTBACKUP: "rt-backup", FLAG_PROC_INDEX: "processor-index",
    FLAG_COMPRESSED: "compressed",
}
BUFFER_TYPES = {0: "generic", 1: "rundown", 2: "context-swap", 3: "reference-time", 4: "header",
                5: "batched", 6: "empty-marker", 7: "debug-info"}
TYPE_HEADER = 4

# ETW caps buffers at 16 MiB in memory (CurrentOffset of compressed buffers counts from 16 MiB).
MAX_BUFFER_SIZE = 64 * 1024 * 1024


@dataclass(slots=True)
class Buffer:
    index: int
    offset: int  # where the buffer starts in the file
    size: int  # bytes it occupies in the file
    filled: int  # bytes of header + records once decompressed
    flags: int
    type: int
    processor: int
    data: bytes  # the records area: everything after the 72-byte header, decompressed

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)


@dataclass(slots=True)
class BufferIssue:
    offset: int
    problem: str


@dataclass(slots=True)
class BufferStats:
    buffers_read: int = 0
    buffers_compressed: int = 0
    buffers_skipped: int = 0
    bytes_skipped: int = 0
    bytes_decompressed: int = 0
    flagged_events_lost: int = 0
    flagged_buffer_lost: int = 0
    truncated: bool = False
    issues: list[BufferIssue] = field(default_factory=list)


class NotAnEtlFile(ValueError):
    """The first buffer does not look like an ETL buffer at all."""


def _header_problem(size: int, filled: int, flags: int, btype: int) -> str | None:
    if size < HEADER_SIZE or size > MAX_BUFFER_SIZE:
        return f"buffer size {size} out of range"
    if filled < HEADER_SIZE or filled > MAX_BUFFER_SIZE:
        return f"filled size {filled} out of range"
    if not flags & FLAG_COMPRESSED and filled > size:
        return f"filled size {filled} exceeds buffer size {size}"
    if btype not in BUFFER_TYPES and btype != 8:
        return f"unknown buffer type {btype}"
    return None


def _records_area(raw: bytes, filled: int, flags: int) -> bytes:
    """Return the records area of one buffer, decompressing it when flagged."""
    if flags & FLAG_COMPRESSED:
        want = filled - HEADER_SIZE
        data = pyfwnt.lzxpress_decompress(raw, want)
        if len(data) != want:
            raise ValueError(f"decompressed to {len(data)} bytes, expected {want}")
        return data
    return raw[: filled - HEADER_SIZE]


def iter_buffers(fh: BinaryIO, file_size: int, stats: BufferStats) -> Iterator[Buffer]:
    """Yield the buffers of an ETL file in file order, reading one buffer at a time.

    A buffer whose header is implausible, whose data does not decompress, or that runs past the
    end of the file is skipped and recorded in ``stats``; reading resumes at the next buffer when
    its position can be known (fixed-size buffers) and stops otherwise.
    """
    offset = 0
    index = 0
    fixed_size: int | None = None
    while offset + HEADER_SIZE <= file_size:
        fh.seek(offset)
        head = fh.read(HEADER_SIZE)
        (size, _saved, _current, _refs, _ts, _seq, _clock, processor, _logger, _state, filled, flags,
         btype) = _HEADER.unpack_from(head)
        problem = _header_problem(size, filled, flags, btype)
        if problem is not None:
            if index == 0:
                raise NotAnEtlFile(problem)
            step = fixed_size or ((_next_plausible_buffer(fh, offset + 1, file_size) or file_size) - offset)
            _skip(stats, offset, min(step, file_size - offset), f"corrupt buffer header: {problem}")
            offset += step
            index += 1
            continue
        if offset + size > file_size:
            stats.truncated = True
            _skip(stats, offset, file_size - offset,
                  f"last buffer is truncated: {file_size - offset} of {size} bytes present")
            return
        if index == 0 and not flags & FLAG_COMPRESSED:
            fixed_size = size
        elif fixed_size is not None and (flags & FLAG_COMPRESSED or size != fixed_size):
            fixed_size = None  # compressed or mixed sizes: the next position is only known from this header
        raw = fh.read(size - HEADER_SIZE)
        try:
            data = _records_area(raw, filled, flags)
        except Exception as exc:  # pyfwnt raises IOError; anything else is equally fatal for this buffer
            _skip(stats, offset, size, f"buffer does not decompress: {exc}")
            offset += size
            index += 1
            continue
        stats.buffers_read += 1
        stats.bytes_decompressed += len(data)
        if flags & FLAG_COMPRESSED:
            stats.buffers_compressed += 1
        if flags & FLAG_EVENTS_LOST:
            stats.flagged_events_lost += 1
        if flags & FLAG_BUFFER_LOST:
            stats.flagged_buffer_lost += 1
        yield Buffer(index, offset, size, filled, flags, btype, processor, data)
        offset += size
        index += 1
    if 0 < file_size - offset:
        stats.truncated = True
        _skip(stats, offset, file_size - offset, f"{file_size - offset} trailing bytes do not hold a buffer")


_RESYNC_WINDOW = 1 << 20
_RESYNC_LIMIT = MAX_BUFFER_SIZE
# Where a plausible header can start, found by the regex engine rather than by unpacking at every byte:
# BufferSize and Offset (at 0 and 48) between 72 bytes and 64 MiB, BufferFlag (52) below 0x80 and
# BufferType (54) at most 8. Each candidate still gets the full check.
_SIZE_IN_RANGE = rb"(?:[\x48-\xff]\x00\x00\x00|[\x00-\xff][\x01-\xff]\x00\x00|[\x00-\xff]{2}[\x01-\xff]\x00|[\x00-\xff]{3}[\x01-\x03])"
# Matched at BufferFlag (52 bytes in), the rarest part, with the sizes looked back at: the engine
# rejects most positions on their first byte.
_FLAG_OFFSET = 52
_CANDIDATE = re.compile(rb"(?=[\x00-\x7f]\x00[\x00-\x08]\x00)(?<=" + _SIZE_IN_RANGE + rb"[\x00-\xff]{44}"
                        + _SIZE_IN_RANGE + rb")", re.DOTALL)


def _next_plausible_buffer(fh: BinaryIO, start: int, file_size: int) -> int | None:
    """Find where the next buffer starts after a corrupt header, when buffer sizes vary.

    Compressed buffers have no fixed size, so the corrupt header's own size cannot be trusted:
    scan forward for a header that is plausible and whose records area decodes to a record marker.
    """
    pos = start
    stop = min(file_size - HEADER_SIZE, start + _RESYNC_LIMIT)
    while pos <= stop:
        fh.seek(pos)
        window = fh.read(min(_RESYNC_WINDOW, file_size - pos))
        last = len(window) - HEADER_SIZE
        for rel in _candidates(window):
            if rel > last:
                break
            fields = _HEADER.unpack_from(window, rel)
            size, filled, flags, btype = fields[0], fields[10], fields[11], fields[12]
            if _header_problem(size, filled, flags, btype) is None and pos + rel + size <= file_size \
                    and _starts_with_record(fh, pos + rel, size, filled, flags):
                return pos + rel
        pos += max(1, len(window) - HEADER_SIZE + 1)
    return None


_ZERO_RUN = re.compile(rb"\x00{128,}")


def _candidates(window: bytes) -> Iterator[int]:
    """Offsets in ``window`` where a buffer header may start, in order. Inside a run of zero bytes none
    can (its BufferSize would be 0), so runs are jumped over rather than searched."""
    start = 0
    for run in (*_ZERO_RUN.finditer(window), None):
        end = len(window) if run is None else run.start() + 4  # a header may begin in a run's last 3 bytes
        first_anchor = max(0, start - 3) + _FLAG_OFFSET
        for match in _CANDIDATE.finditer(window, first_anchor, min(len(window), end + _FLAG_OFFSET + 4)):
            yield match.start() - _FLAG_OFFSET
        if run is not None:
            start = run.end()


def _starts_with_record(fh: BinaryIO, offset: int, size: int, filled: int, flags: int) -> bool:
    fh.seek(offset + HEADER_SIZE)
    try:
        data = _records_area(fh.read(size - HEADER_SIZE), filled, flags)
    except Exception:
        return False
    return len(data) >= 4 and data[3] == 0xC0


def _skip(stats: BufferStats, offset: int, nbytes: int, problem: str) -> None:
    stats.buffers_skipped += 1
    stats.bytes_skipped += nbytes
    stats.issues.append(BufferIssue(offset, problem))
