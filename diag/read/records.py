"""Event records inside a buffer: header types, sizes, and lazily decoded header fields.

Each record starts with a 32-bit marker. For the standard headers its top byte is 0xC0
(TRACE_HEADER_FLAG | TRACE_HEADER_EVENT_TRACE) and its third byte is the header type; WPP
message records have the top bits 0x90 instead. Records are 8-byte aligned.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator

from diag.read.guids import guid_from_bytes, kernel_guid

SYSTEM32, SYSTEM64 = 0x01, 0x02
COMPACT32, COMPACT64 = 0x03, 0x04
FULL_HEADER32, INSTANCE32 = 0x0A, 0x0B
TIMED, ERROR, WNODE, MESSAGE = 0x0C, 0x0D, 0x0E, 0x0F
PERFINFO32, PERFINFO64 = 0x10, 0x11
EVENT_HEADER32, EVENT_HEADER64 = 0x12, 0x13
FULL_HEADER64, INSTANCE64 = 0x14, 0x15

HEADER_TYPE_NAMES = {
    SYSTEM32: "system32", SYSTEM64: "system64", COMPACT32: "compact32", COMPACT64: "compact64",
    FULL_HEADER32: "full32", INSTANCE32: "instance32", TIMED: "timed", ERROR: "error", WNODE: "wnode",
    MESSAGE: "message", PERFINFO32: "perfinfo32", PERFINFO64: "perfinfo64",
    EVENT_HEADER32: "event32", EVENT_HEADER64: "event64", FULL_HEADER64: "full64", INSTANCE64: "instance64",
}
# Kernel-style headers keep the record size at offset 4 (the low 16 bits of the marker are a version).
KERNEL_STYLE = frozenset({SYSTEM32, SYSTEM64, COMPACT32, COMPACT64, PERFINFO32, PERFINFO64})
HEADER_SIZES = {
    SYSTEM32: 0x20, SYSTEM64: 0x20, COMPACT32: 0x18, COMPACT64: 0x18, PERFINFO32: 0x10, PERFINFO64: 0x10,
    FULL_HEADER32: 0x30, FULL_HEADER64: 0x30, INSTANCE32: 0x48, INSTANCE64: 0x48,
    EVENT_HEADER32: 0x50, EVENT_HEADER64: 0x50, ERROR: 0x50, TIMED: 0x10, WNODE: 0x30, MESSAGE: 0x08,
}
POINTER_SIZE = {
    SYSTEM32: 4, COMPACT32: 4, PERFINFO32: 4, FULL_HEADER32: 4, INSTANCE32: 4, EVENT_HEADER32: 4,
    SYSTEM64: 8, COMPACT64: 8, PERFINFO64: 8, FULL_HEADER64: 8, INSTANCE64: 8, EVENT_HEADER64: 8,
}
EVENT_HEADER_TYPES = frozenset({EVENT_HEADER32, EVENT_HEADER64})
CLASSIC_TYPES = frozenset({FULL_HEADER32, FULL_HEADER64, INSTANCE32, INSTANCE64})

# EVENT_HEADER.Flags
FLAG_EXTENDED_INFO = 0x0001
FLAG_TRACE_MESSAGE = 0x0008
FLAG_32BIT_HEADER = 0x0020
FLAG_64BIT_HEADER = 0x0040
FLAG_CLASSIC_HEADER = 0x0100

# EVENT_HEADER_EXTENDED_DATA_ITEM types
EXT_RELATED_ACTIVITY_ID, EXT_SID, EXT_TS_ID, EXT_INSTANCE_INFO = 1, 2, 3, 4
EXT_STACK_TRACE32, EXT_STACK_TRACE64, EXT_PEBS_INDEX, EXT_PMC_COUNTERS = 5, 6, 7, 8
EXT_PSM_KEY, EXT_EVENT_KEY, EXT_EVENT_SCHEMA_TL, EXT_PROV_TRAITS, EXT_PROCESS_START_KEY = 9, 10, 11, 12, 13
EXT_CONTROL_GUID, EXT_QPC_DELTA, EXT_CONTAINER_ID, EXT_STACK_KEY32, EXT_STACK_KEY64 = 14, 15, 16, 17, 18

_U32 = struct.Struct("<I").unpack_from
_U16 = struct.Struct("<H").unpack_from
_I64 = struct.Struct("<q").unpack_from
# EVENT_HEADER from offset 4: Flags, EventProperty, ThreadId, ProcessId, TimeStamp
_EVENT_IDS = struct.Struct("<HHIIq")
# EVENT_DESCRIPTOR at 0x28: Id, Version, Channel, Level, Opcode, Task, Keyword
_DESCRIPTOR = struct.Struct("<HBBBBHQ")
# Kernel-style header from offset 0: Version, type, flags, Size, Opcode, Group
_KERNEL = struct.Struct("<HBBHBB")
# Classic (MOF) header from offset 4: Type (opcode), Level, Version
_CLASSIC = struct.Struct("<BBH")
_EXT_ITEM = struct.Struct("<HHHH")


@dataclass(slots=True)
class RecordIssue:
    buffer_index: int
    offset: int
    problem: str


@dataclass(slots=True)
class RecordStats:
    records: int = 0
    corrupt_buffers: int = 0  # buffers whose record chain broke before their filled end
    bytes_unparsed: int = 0
    issues: list[RecordIssue] = field(default_factory=list)


def record_spans(data: bytes, buffer_index: int, stats: RecordStats) -> Iterator[tuple[int, int, int]]:
    """Walk one buffer's records area, yielding ``(header_type, offset, size)`` for each record.

    This is the bare walk: it touches one 32-bit marker (and a 16-bit size for kernel-style
    headers) per record. A marker or size that cannot be right ends the walk of this buffer; the
    bytes left are counted as unparsed, never silently ignored.
    """
    off = 0
    end = len(data)
    u32 = _U32
    u16 = _U16
    kernel_style = KERNEL_STYLE
    while off + 4 <= end:
        marker = u32(data, off)[0]
        if marker == 0xFFFFFFFF:  # the unused tail of a buffer is filled with 0xFF
            return
        top = marker >> 24
        if top == 0xC0:
            htype = (marker >> 16) & 0xFF
            size = u16(data, off + 4)[0] if htype in kernel_style else marker & 0xFFFF
        elif top & 0xF0 == 0x90 or top & 0xF0 == 0xB0:
            htype = MESSAGE
            size = marker & 0xFFFF
        else:
            _broken(stats, buffer_index, off, end, f"unknown record marker 0x{marker:08x}")
            return
        minimum = HEADER_SIZES.get(htype)
        if minimum is None or size < minimum or off + size > end:
            _broken(stats, buffer_index, off, end,
                    f"record of type 0x{htype:02x} with size {size} does not fit")
            return
        yield htype, off, size
        off += (size + 7) & ~7


def _broken(stats: RecordStats, buffer_index: int, off: int, end: int, problem: str) -> None:
    stats.corrupt_buffers += 1
    stats.bytes_unparsed += end - off
    stats.issues.append(RecordIssue(buffer_index, off, problem))


class Record:
    """One event record, decoded lazily: nothing is unpacked until a property is read."""

    __slots__ = ("_data", "_at", "offset", "size", "header_type", "buffer_index", "_clock")

    def __init__(self, data: bytes, offset: int, size: int, header_type: int, buffer_index: int, clock) -> None:
        self._data = data
        self._at = offset  # where the record starts in ``_data``
        self.offset = offset  # where it is in its buffer's records area (what evidence points at)
        self.size = size
        self.header_type = header_type
        self.buffer_index = buffer_index
        self._clock = clock

    # -- identity ---------------------------------------------------------------------------------
    @property
    def is_event_header(self) -> bool:
        return self.header_type in EVENT_HEADER_TYPES

    @property
    def provider(self) -> str:
        """The provider GUID (lower case). Kernel events map their hook group to the class GUID."""
        ht = self.header_type
        if ht in EVENT_HEADER_TYPES or ht in CLASSIC_TYPES:
            return guid_from_bytes(self._data[self._at + 0x18:self._at + 0x28])
        if ht in KERNEL_STYLE:
            _v, _t, _f, _s, opcode, group = _KERNEL.unpack_from(self._data, self._at)
            return kernel_guid(group, opcode)
        return "00000000-0000-0000-0000-000000000000"

    @property
    def event_id(self) -> int:
        """EVENT_DESCRIPTOR.Id for manifest/TraceLogging events; the opcode (event type) otherwise."""
        ht = self.header_type
        if ht in EVENT_HEADER_TYPES:
            return _U16(self._data, self._at + 0x28)[0]
        return self.opcode

    @property
    def version(self) -> int:
        ht = self.header_type
        d, o = self._data, self._at
        if ht in EVENT_HEADER_TYPES:
            return d[o + 0x2A]
        if ht in CLASSIC_TYPES:
            return _CLASSIC.unpack_from(d, o + 4)[2]
        if ht in KERNEL_STYLE:
            return _U16(d, o)[0] & 0xFF
        return 0

    @property
    def opcode(self) -> int:
        ht = self.header_type
        d, o = self._data, self._at
        if ht in EVENT_HEADER_TYPES:
            return d[o + 0x2D]
        if ht in CLASSIC_TYPES:
            return d[o + 4]
        if ht in KERNEL_STYLE:
            return d[o + 6]
        return 0

    @property
    def descriptor(self) -> tuple[int, int, int, int, int, int, int]:
        """(id, version, channel, level, opcode, task, keywords) of an EVENT_HEADER record."""
        if self.header_type not in EVENT_HEADER_TYPES:
            return (self.event_id, self.version, 0, 0, self.opcode, 0, 0)
        return _DESCRIPTOR.unpack_from(self._data, self._at + 0x28)

    @property
    def level(self) -> int:
        return self.descriptor[3]

    @property
    def task(self) -> int:
        return self.descriptor[5]

    @property
    def keywords(self) -> int:
        return self.descriptor[6]

    @property
    def flags(self) -> int:
        """EVENT_HEADER.Flags (0 for other header types)."""
        if self.header_type in EVENT_HEADER_TYPES:
            return _U16(self._data, self._at + 4)[0]
        return 0

    @property
    def pointer_size(self) -> int:
        ht = self.header_type
        if ht in EVENT_HEADER_TYPES:
            flags = self.flags
            if flags & FLAG_32BIT_HEADER:
                return 4
            if flags & FLAG_64BIT_HEADER:
                return 8
        return POINTER_SIZE.get(ht, self._clock.pointer_size)

    # -- who and when -----------------------------------------------------------------------------
    @property
    def thread_id(self) -> int | None:
        ht = self.header_type
        if ht in EVENT_HEADER_TYPES or ht in CLASSIC_TYPES or ht in (SYSTEM32, SYSTEM64, COMPACT32, COMPACT64):
            return _U32(self._data, self._at + 8)[0]
        return None

    @property
    def process_id(self) -> int | None:
        ht = self.header_type
        if ht in EVENT_HEADER_TYPES or ht in CLASSIC_TYPES or ht in (SYSTEM32, SYSTEM64, COMPACT32, COMPACT64):
            return _U32(self._data, self._at + 12)[0]
        return None

    @property
    def raw_timestamp(self) -> int | None:
        """The timestamp in the file's clock units (QPC ticks, FILETIME or CPU cycles)."""
        ht = self.header_type
        if ht in (PERFINFO32, PERFINFO64):
            return _I64(self._data, self._at + 8)[0]
        if ht in HEADER_SIZES and ht not in (MESSAGE, TIMED, WNODE, ERROR):
            return _I64(self._data, self._at + 0x10)[0]
        return None

    @property
    def filetime(self) -> int | None:
        """The timestamp as a UTC FILETIME (100 ns since 1601)."""
        raw = self.raw_timestamp
        return None if raw is None else self._clock.to_filetime(raw)

    @property
    def time(self):
        ft = self.filetime
        return None if ft is None else self._clock.to_datetime(ft)

    # -- data -------------------------------------------------------------------------------------
    @property
    def header_size(self) -> int:
        ht = self.header_type
        if ht in KERNEL_STYLE:
            # The version word's high bits say how many 8-byte extension blocks follow the header.
            version = _U16(self._data, self._at)[0]
            extra = 8 if version & 0x8000 else 0
            extra += 8 * ((version & 0x0700) >> 8)
            return HEADER_SIZES[ht] + extra
        return HEADER_SIZES[ht]

    def extended_items(self) -> list[tuple[int, memoryview]]:
        """EVENT_HEADER extended data items as ``(ext_type, data)``, in file order."""
        if self.header_type not in EVENT_HEADER_TYPES or not self.flags & FLAG_EXTENDED_INFO:
            return []
        return self._walk_extended()[0]

    def _walk_extended(self) -> tuple[list[tuple[int, memoryview]], int]:
        """Each item: u16 total size (8-aligned), u16 type, u16 linkage (bit 0: another item
        follows), u16 data size, then the data. Returns the items and where the payload starts."""
        view = memoryview(self._data)
        pos = self._at + HEADER_SIZES[self.header_type]
        end = self._at + self.size
        items: list[tuple[int, memoryview]] = []
        while pos + 8 <= end:
            item_size, ext_type, linkage, data_size = _EXT_ITEM.unpack_from(self._data, pos)
            if item_size < 8 or pos + item_size > end or data_size > item_size - 8:
                break
            items.append((ext_type, view[pos + 8:pos + 8 + data_size]))
            pos += item_size
            if not linkage & 1:
                break
        return items, pos

    @property
    def payload(self) -> memoryview:
        """The user data of the event (after the header and any extended data items)."""
        start = self._at + self.header_size
        if self.header_type in EVENT_HEADER_TYPES and self.flags & FLAG_EXTENDED_INFO:
            start = self._walk_extended()[1]
        return memoryview(self._data)[start:self._at + self.size]

    @property
    def raw(self) -> memoryview:
        return memoryview(self._data)[self._at:self._at + self.size]

    def detached(self) -> "Record":
        """A copy that holds only this record's bytes, so the buffer it came from can be freed."""
        copy = Record(bytes(self.raw), 0, self.size, self.header_type, self.buffer_index, self._clock)
        copy.offset = self.offset
        return copy

    def __repr__(self) -> str:
        return (f"<Record {HEADER_TYPE_NAMES.get(self.header_type, self.header_type)} {self.provider} "
                f"id={self.event_id} v={self.version} size={self.size}>")
