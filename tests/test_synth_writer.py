"""The synthetic ETL writer, checked with an independent reader (dissect.etl) and plain struct.

Expected values come from the scenario (the truth file, or the events a test writes) and from the
on-disk format's arithmetic, never from reading our output back with our own code.
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("dissect.etl")
from dissect.etl.etl import ETL, Buffer  # noqa: E402

from diag.synth import pktmon as pm  # noqa: E402
from diag.synth.etlwriter import EtlWriter, filetime_from_unix  # noqa: E402

DATA = Path(__file__).parent / "data"
DEMO = DATA / "pktmon-drops.etl"
TRUTH = DATA / "pktmon-drops.truth.json"
PKTMON = uuid.UUID("4D4F80D9-C8BD-4D73-BB5B-19C90402C5AC")
OTHER = uuid.UUID("0a0b0c0d-1111-2222-3333-444455556666")
START = filetime_from_unix(1_700_000_000)
HEADER_LEN = 72  # WMI_BUFFER_HEADER
EVENT_HEADER_LEN = 0x50


# -- helpers (independent of the writer) -------------------------------------------------------


def open_etl(path: Path) -> tuple[ETL, object]:
    fh = path.open("rb")
    return ETL(fh), fh


def records(path: Path) -> list:
    etl, fh = open_etl(path)
    with fh:
        return [(etl, r.header) for r in etl]


def provider(header) -> uuid.UUID:
    # dissect builds EventHeader.provider_id with UUID(bytes=...): undo its byte-order bug.
    return uuid.UUID(bytes_le=header.provider_id.bytes)


def raw_buffers(path: Path) -> list[tuple[int, tuple, bytes]]:
    """(offset, header fields, whole buffer) for every buffer, parsed with struct."""
    data = path.read_bytes()
    out, off = [], 0
    while off < len(data):
        fields = struct.unpack_from("<IIIiqqQBBHIIHH", data, off)
        size = fields[0]
        out.append((off, fields, data[off : off + size]))
        off += size
    return out


def ipv4_checksum_ok(header: bytes) -> bool:
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def write_simple(path: Path, events: list[tuple[int, int, int]], **kwargs) -> None:
    """events: (cpu, event id, payload length); payload bytes are the event index repeated."""
    with EtlWriter(path, start_filetime=START, **kwargs) as w:
        for i, (cpu, event_id, length) in enumerate(events):
            w.write_event(
                PKTMON if event_id else OTHER,
                event_id,
                event_id % 3,
                bytes([i & 0xFF]) * length,
                timestamp=START + 1000 * (i + 1),
                cpu=cpu,
                pid=100 + i,
                tid=200 + i,
                level=4,
                keywords=0x10,
            )


# -- the demo trace ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(TRUTH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo() -> list:
    return records(DEMO)


def test_demo_trace_is_small_and_whole(truth):
    data = DEMO.read_bytes()
    assert len(data) < 64 * 1024
    assert len(data) % truth["buffer_size"] == 0


def test_demo_record_counts_match_truth(demo, truth):
    assert len(demo) == truth["record_count"]
    first = demo[0][1]
    assert type(first).__name__ == "SystemHeader" and first.hook_id == 0
    events = [h for _, h in demo[1:]]
    assert all(type(h).__name__ == "EventHeader" for h in events)
    assert {provider(h) for h in events} == {PKTMON}
    by_id = Counter(h.header.Id for h in events)
    assert {str(k): v for k, v in by_id.items()} == truth["events_by_id"]
    assert by_id[160] + by_id[170] == truth["packet_event_count"]
    assert by_id[170] == truth["drop_count"]
    assert all(h.header.Level == 4 and h.header.Version == 0 for h in events)
    assert {h.header.Keywords for h in events if h.header.Id >= 160} == {0x10}
    assert {h.header.Keywords for h in events if h.header.Id < 160} == {0x2}


def test_demo_drops_and_components_match_truth(demo, truth):
    drops: Counter = Counter()
    groups = set()
    components = []
    for _, h in demo[1:]:
        payload = bytes(h.payload)
        if h.header.Id in (160, 170):
            group, _num, appearance, _dir, ptype, comp, _edge, _filt, reason, _loc, orig, logged = struct.unpack_from(
                "<QHHHHHHHIIHH", payload
            )
            groups.add(group)
            assert appearance >= 1 and ptype == 1
            assert len(payload) == 34 + logged and logged == min(orig, 128)
            assert (reason != 0) == (h.header.Id == 170)
            if h.header.Id == 170:
                drops[(comp, reason)] += 1
            frame = payload[34:]
            ip_at = 18 if frame[12:14] == b"\x81\x00" else 14
            assert frame[ip_at - 2 : ip_at] == b"\x08\x00"
            ip = frame[ip_at : ip_at + 20]
            assert ip[0] == 0x45 and ipv4_checksum_ok(ip)
            assert orig == ip_at + struct.unpack("!H", ip[2:4])[0]
        elif h.header.Id == 20:
            comp, ctype = struct.unpack_from("<HH", payload)
            name, description, rest = payload[4:].decode("utf-16-le").split("\x00")
            assert rest == ""
            components.append({"id": comp, "type": ctype, "name": name, "description": description})
    assert len(groups) == truth["packet_count"]
    assert [{"component_id": c, "reason": r, "count": n} for (c, r), n in sorted(drops.items())] == truth["drops"]
    expected = [{k: c[k] for k in ("id", "type", "name", "description")} for c in truth["components"]]
    assert components == expected


def test_demo_logfile_header_and_times(demo, truth):
    etl, fh = open_etl(DEMO)
    with fh:
        lf = etl.logfile_header.header
        assert lf.ProviderVersion == truth["os_build"]
        assert lf.NumberOfProcessors == truth["cpu_count"]
        assert lf.PerfFreq == truth["perf_freq"] and lf.ReservedFlags == truth["clock_type"]
        assert lf.StartTime == truth["start_filetime"] and lf.EndTime == truth["end_filetime"]
        assert lf.BuffersWritten == DEMO.stat().st_size // truth["buffer_size"]
        assert lf.PointerSize == 8 and lf.EventsLost == 0 and lf.BufferLost == 0
        assert etl.logfile_header.logger_name == "PktMon"
        times = [etl.get_filetime_for_event(h.time_delta) for _, h in demo[1:]]
    packet_times = [t for t, (_, h) in zip(times, demo[1:]) if h.header.Id >= 160]
    assert min(packet_times) == truth["first_packet_filetime"]
    assert max(packet_times) == truth["last_packet_filetime"]
    assert truth["start_filetime"] <= min(times) and max(times) <= truth["end_filetime"]


def test_demo_trace_is_reproducible(tmp_path, truth):
    spec = importlib.util.spec_from_file_location("make_demo_trace", DATA / "make_demo_trace.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    try:
        spec.loader.exec_module(module)
        trace, truth_path = module.main(tmp_path)
    finally:
        del sys.modules[spec.name]
    assert trace.read_bytes() == DEMO.read_bytes()
    assert json.loads(truth_path.read_text(encoding="utf-8")) == truth


# -- fresh traces ------------------------------------------------------------------------------


@pytest.mark.parametrize("cpu_count", [1, 2, 4])
def test_records_ids_and_providers_round_trip(tmp_path, cpu_count):
    events = [(i % cpu_count, (0, 20, 160, 170)[i % 4], (i * 37) % 300) for i in range(150)]
    path = tmp_path / "t.etl"
    write_simple(path, events, cpu_count=cpu_count, buffer_size=4096)
    got = records(path)
    assert len(got) == 1 + len(events)
    # Buffers go out per processor, so the file order is not the write order: compare as multisets
    # keyed by the per-event pid, which the test set to 100 + index.
    seen = {}
    for _, h in got[1:]:
        seen[h.header.ProcessId - 100] = h
    assert sorted(seen) == list(range(len(events)))
    for i, (cpu, event_id, length) in enumerate(events):
        h = seen[i]
        assert provider(h) == (PKTMON if event_id else OTHER)
        assert h.header.Id == event_id and h.header.Version == event_id % 3
        assert h.header.ThreadId == 200 + i and h.header.Level == 4 and h.header.Keywords == 0x10
        assert h.size == EVENT_HEADER_LEN + length and bytes(h.payload) == bytes([i & 0xFF]) * length


@pytest.mark.parametrize("perf_freq", [10_000_000, 3_579_545, 24_000_000])
def test_timestamps_round_trip(tmp_path, perf_freq):
    stamps = [START + d for d in (0, 1, 7, 12_345, 10_000_000, 36_000_000_000, 123_456_789_012)]
    path = tmp_path / "t.etl"
    with EtlWriter(path, start_filetime=START, perf_freq=perf_freq, buffer_size=4096) as w:
        for i, t in enumerate(stamps):
            w.write_event(PKTMON, 160, 0, b"x" * 8, timestamp=t, pid=i)
    etl, fh = open_etl(path)
    with fh:
        assert etl.logfile_header.header.PerfFreq == perf_freq
        assert etl.logfile_header.header.ReservedFlags == 1
        got = {r.header.process_id: etl.get_filetime_for_event(r.header.time_delta) for r in list(etl)[1:]}
    tick = max(1, math.ceil(10_000_000 / perf_freq))  # one clock tick, in FILETIME units
    for i, t in enumerate(stamps):
        assert abs(got[i] - t) <= tick, (i, got[i] - t)


def test_buffer_layout(tmp_path):
    # 128-byte records (48-byte payloads): (4096 - 72) // 128 = 31 records per 4 KiB buffer.
    path = tmp_path / "t.etl"
    write_simple(path, [(0, 160, 48)] * 40 + [(1, 170, 48)] * 3, cpu_count=2, buffer_size=4096)
    bufs = raw_buffers(path)
    assert path.stat().st_size == 4 * 4096 and len(bufs) == 4
    # (BufferSize, FilledBytes, ProcessorNumber, BufferFlag, BufferType, SequenceNumber)
    shape = [(f[0], f[11], f[7], f[12], f[13], f[5]) for _, f, _ in bufs]
    assert shape[0][0] == 4096 and shape[0][3:5] == (0x21, 4)
    assert shape[1] == (4096, 72 + 31 * 128, 0, 0x20, 0, 1)
    assert shape[2] == (4096, 72 + 9 * 128, 0, 0x20, 0, 2)
    assert shape[3] == (4096, 72 + 3 * 128, 1, 0x21, 0, 3)
    for _, fields, raw in bufs:
        filled = fields[11]
        assert raw[filled:] == b"\xff" * (4096 - filled)
    etl, fh = open_etl(path)
    with fh:
        assert etl.logfile_header.header.BuffersWritten == 4
        counts = [sum(1 for _ in b) for b in etl.buffers()]
    assert counts == [1, 31, 9, 3]
    # the logfile header record: 32 + 0x118 + names, 8-byte aligned, zero padding
    hdr = bufs[0][2]
    size = struct.unpack_from("<H", hdr, HEADER_LEN + 4)[0]
    names = hdr[HEADER_LEN + 32 + 0x118 : HEADER_LEN + size].decode("utf-16-le")
    assert names == "PktMon\x00C:\\Windows\\system32\\PktMon.etl\x00"
    assert bufs[0][1][11] == HEADER_LEN + ((size + 7) & ~7)


def test_alignment_padding_is_zero(tmp_path):
    path = tmp_path / "t.etl"
    write_simple(path, [(0, 160, n) for n in range(1, 17)], cpu_count=1, buffer_size=4096)
    _, fields, raw = raw_buffers(path)[1]
    off, seen = HEADER_LEN, 0
    while off < fields[11]:
        size = struct.unpack_from("<H", raw, off)[0]
        assert raw[off + 2 : off + 4] == b"\x13\xc0"
        aligned = (size + 7) & ~7
        assert raw[off + size : off + aligned] == bytes(aligned - size)
        off, seen = off + aligned, seen + 1
    assert seen == 16 and off == fields[11]


def test_events_and_buffers_lost(tmp_path):
    path = tmp_path / "t.etl"
    with EtlWriter(path, start_filetime=START, cpu_count=2, buffer_size=4096) as w:
        w.write_event(PKTMON, 160, 0, b"a" * 10, timestamp=START + 10, cpu=0)
        w.write_event(PKTMON, 160, 0, b"b" * 10, timestamp=START + 20, cpu=1)
        w.lose_events(5, cpu=1)
        w.lose_events(2, cpu=1)
        w.lose_buffers(3, cpu=0)
        w.write_event(PKTMON, 160, 0, b"c" * 10, timestamp=START + 30, cpu=1)
    etl, fh = open_etl(path)
    with fh:
        lf = etl.logfile_header.header
        assert lf.EventsLost == 7 and lf.BufferLost == 3 and lf.BuffersWritten == 3
        flags = [(int(b.header.ProcessorIndex), int(b.header.BufferFlag)) for b in etl.buffers()]
        assert sum(1 for _ in etl) == 4
    # close() flushes processors in order: cpu 0's buffer, then cpu 1's (the last one: flush marker)
    assert flags == [(0, 0x21), (0, 0x20 | 0x04), (1, 0x21 | 0x02)]


def test_truncated_mid_buffer(tmp_path):
    # One processor, 128-byte records, 31 per buffer: 70 events fill buffers of 31, 31 and 8 records.
    # Cut 40 bytes into the 6th record of the last buffer (inside its 80-byte header).
    cut = 3 * 4096 + HEADER_LEN + 5 * 128 + 40
    whole, cut_path = tmp_path / "whole.etl", tmp_path / "cut.etl"
    events = [(0, 160, 48)] * 70
    write_simple(whole, events, cpu_count=1, buffer_size=4096)
    write_simple(cut_path, events, cpu_count=1, buffer_size=4096, truncate_at=cut)
    assert whole.stat().st_size == 4 * 4096
    assert cut_path.stat().st_size == cut
    assert cut_path.read_bytes() == whole.read_bytes()[:cut]
    etl, fh = open_etl(cut_path)
    with fh:
        assert etl.logfile_header.header.BuffersWritten == 4  # the header still claims the whole file
        complete, partial = [], 0
        for r in etl:
            try:
                r.header.header  # parses the fixed header; fails for a record cut inside it
                complete.append(r.header)
            except EOFError:
                partial += 1
    assert len(complete) == 1 + 31 + 31 + 5 and partial <= 1
    assert [h.process_id - 100 for h in complete[1:]] == list(range(67))


@pytest.mark.parametrize("mode", ["zero_size", "filled_overflow", "garbage"])
def test_corrupt_buffer_header(tmp_path, mode):
    events = [(0, 160, 48)] * 70
    good, bad = tmp_path / "good.etl", tmp_path / "bad.etl"
    write_simple(good, events, cpu_count=1, buffer_size=4096)
    write_simple(bad, events, cpu_count=1, buffer_size=4096, corrupt_buffer=2, corrupt_mode=mode)
    g, b = good.read_bytes(), bad.read_bytes()
    assert len(g) == len(b) == 4 * 4096
    at = 2 * 4096
    # nothing outside buffer 2's 72-byte header changed
    assert g[:at] == b[:at] and g[at + HEADER_LEN :] == b[at + HEADER_LEN :]
    assert g[at : at + HEADER_LEN] != b[at : at + HEADER_LEN]
    etl, fh = open_etl(bad)
    with fh:
        header = Buffer(etl, at).header
        if mode == "zero_size":
            assert header.BufferSize == 0 and header.FilledBytes == HEADER_LEN + 31 * 128
        elif mode == "filled_overflow":
            assert header.BufferSize == 4096 and header.FilledBytes == 4096 + 4096
        else:
            assert b[at : at + HEADER_LEN] == b"\xa5" * HEADER_LEN
            assert header.BufferSize == 0xA5A5A5A5
        # buffers before the damaged one still read normally
        assert sum(1 for _ in etl.buffer(1)) == 31


def test_writer_rejects_bad_input(tmp_path):
    with EtlWriter(tmp_path / "t.etl", cpu_count=2, buffer_size=4096) as w:
        with pytest.raises(ValueError):
            w.write_event(PKTMON, 160, 0, b"x" * 4096)
        with pytest.raises(ValueError):
            w.write_event(PKTMON, 160, 0, b"x", cpu=2)
    with pytest.raises(ValueError):
        w.write_event(PKTMON, 160, 0, b"x")
    with pytest.raises(ValueError):
        EtlWriter(tmp_path / "u.etl", buffer_size=1000)


def test_packet_encoder_truncates_to_logged_size():
    frame = pm.udp_frame("00-15-5d-00-00-01", "00-15-5d-00-00-02", "10.0.0.1", "10.0.0.2", 1, 2, b"z" * 300)
    assert len(frame) == 14 + 20 + 8 + 300
    payload = pm.encode_packet(
        pkt_group_id=7, pkt_number=1, appearance=2, dir_tag=3, packet_type=1,
        component_id=9, edge_id=1, filter_id=0, frame=frame, drop_reason=16, drop_location=0xE0000001,
    )
    fields = struct.unpack_from("<QHHHHHHHIIHH", payload)
    assert fields == (7, 1, 2, 3, 1, 9, 1, 0, 16, 0xE0000001, len(frame), 128)
    assert payload[34:] == frame[:128] and ipv4_checksum_ok(frame[14:34])
