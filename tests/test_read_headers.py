"""Record header types the real samples do not contain, built byte by byte from the documented layouts.

The samples cover system32/64, perfinfo64, full32/64 and event32/64 headers (checked against
dissect.etl in test_read_samples.py); these cover the rest, plus extended data items.
"""

from __future__ import annotations

import struct
import uuid

from diag.read.clock import TraceClock
from diag.read.records import Record, RecordStats, record_spans

CLOCK = TraceClock(start_filetime=133_000_000_000_000_000, reference_ticks=1_000, ticks_per_second=10_000_000,
                   pointer_size=8)
PROVIDER = uuid.UUID("2f07e2ee-15db-40f1-90ef-9d7ba282188a")


def pad8(raw: bytes) -> bytes:
    return raw + b"\x00" * (-len(raw) % 8)


def compact64(opcode: int, group: int, payload: bytes) -> bytes:
    # Version u16, HeaderType 0x04, flags 0xC0, Size u16, Opcode u8, Group u8, ThreadId, ProcessId, TimeStamp
    size = 0x18 + len(payload)
    return struct.pack("<HBBHBBIIq", 2, 0x04, 0xC0, size, opcode, group, 11, 22, 5_000) + payload


def perfinfo32(opcode: int, group: int, payload: bytes) -> bytes:
    # Version u16, HeaderType 0x10, flags 0xC0, Size u16, HookId (opcode, group), TimeStamp at 8
    size = 0x10 + len(payload)
    return struct.pack("<HBBHBBq", 3, 0x10, 0xC0, size, opcode, group, 7_000) + payload


def instance64(opcode: int, version: int, payload: bytes) -> bytes:
    # Size, HeaderType 0x15, flags 0xC0, Type(opcode) u8, Level u8, Version u16, ThreadId, ProcessId,
    # TimeStamp, Guid, KernelTime, UserTime, InstanceId, ParentInstanceId, ParentGuid
    size = 0x48 + len(payload)
    head = struct.pack("<HBBBBHIIq16sIIII16s", size, 0x15, 0xC0, opcode, 4, version, 33, 44, 9_000,
                       PROVIDER.bytes_le, 0, 0, 1, 0, b"\x00" * 16)
    return head + payload


def message(payload: bytes) -> bytes:
    # WPP TRACE_MESSAGE: Size u16, flags 0x90xx, MessageNumber u16, EventProperty u16
    return struct.pack("<HHHH", 8 + len(payload), 0x9000, 17, 0) + payload


def event64_with_extended_items(payload: bytes) -> bytes:
    items = [
        (1, uuid.UUID(int=5).bytes_le),  # related activity id
        (3, struct.pack("<I", 2)),  # terminal session id
    ]
    ext = b""
    for i, (ext_type, data) in enumerate(items):
        item = struct.pack("<HHHH", 8 + len(pad8(data)), ext_type, 1 if i < len(items) - 1 else 0, len(data))
        ext += item + pad8(data)
    size = 0x50 + len(ext) + len(payload)
    head = struct.pack("<HBBHHIIq16sHBBBBHQQ16s", size, 0x13, 0xC0, 0x0001, 0, 55, 66, 12_000,
                       PROVIDER.bytes_le, 1127, 1, 0, 4, 0, 0, 0x80, 0, b"\x00" * 16)
    return head + ext + payload


def walk(blob: bytes):
    stats = RecordStats()
    spans = list(record_spans(blob, 0, stats))
    return [Record(blob, off, size, htype, 0, CLOCK) for htype, off, size in spans], stats


def test_each_header_type_is_sized_aligned_and_identified():
    parts = [compact64(36, 0x05, b"abc"), perfinfo32(46, 0x0F, b"\x01" * 12), instance64(10, 2, b"xyz12"),
             message(b"wpp-data"), event64_with_extended_items(b"PAYLOAD!")]
    blob = b"".join(pad8(p) for p in parts) + b"\xff" * 24
    records, stats = walk(blob)
    assert stats.corrupt_buffers == 0
    assert [r.size for r in records] == [len(p) for p in parts]
    compact, perfinfo, instance, msg, event = records

    assert compact.provider == "3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c"  # group 5: the Thread class
    assert (compact.event_id, compact.thread_id, compact.process_id) == (36, 11, 22)
    assert bytes(compact.payload) == b"abc"
    assert compact.filetime == CLOCK.start_filetime + (5_000 - 1_000)

    assert perfinfo.provider == "ce1dbfb4-137e-4da6-87b0-3f59aa102cbc"  # group 0x0F: PerfInfo
    assert perfinfo.event_id == 46 and perfinfo.pointer_size == 4
    assert bytes(perfinfo.payload) == b"\x01" * 12
    assert perfinfo.raw_timestamp == 7_000

    assert instance.provider == str(PROVIDER)
    assert (instance.event_id, instance.version, instance.process_id) == (10, 2, 44)
    assert bytes(instance.payload) == b"xyz12"

    assert msg.header_type == 0x0F and bytes(msg.raw) == parts[3]

    assert event.provider == str(PROVIDER)
    assert (event.event_id, event.version, event.keywords) == (1127, 1, 0x80)
    items = event.extended_items()
    assert [t for t, _ in items] == [1, 3]
    assert bytes(items[0][1]) == uuid.UUID(int=5).bytes_le
    assert bytes(event.payload) == b"PAYLOAD!"


def test_a_record_running_past_the_buffer_end_stops_the_walk_and_is_counted():
    good = pad8(compact64(1, 3, b"ok"))
    bad = struct.pack("<HBBHBBIIq", 2, 0x04, 0xC0, 400, 1, 3, 0, 0, 0)  # claims 400 bytes
    records, stats = walk(good + bad)
    assert len(records) == 1
    assert stats.corrupt_buffers == 1 and stats.bytes_unparsed == len(bad)
