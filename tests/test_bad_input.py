"""Bad input: one line naming the file, exit code 2, no traceback; damaged traces are read around."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from samples import sample
from diag.errors import BadTraceError
from diag.read import open_trace

DEMO = Path(__file__).resolve().parent / "data" / "pktmon-drops.etl"
TRUTH = json.loads((DEMO.parent / "pktmon-drops.truth.json").read_text())


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diag.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).resolve().parents[1])


def _buffer_offsets(data: bytes) -> list[int]:
    offsets, off = [], 0
    while off + 72 <= len(data):
        offsets.append(off)
        off += struct.unpack_from("<I", data, off)[0]
    return offsets


@pytest.mark.parametrize("make, problem", [
    (lambda p: p.write_text("Network Information for Compartment 1\n" * 50), "not an ETL trace"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.mkdir(), "directory"),
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(os.urandom(100)), "not an ETL trace"),
    (lambda p: p.write_bytes(DEMO.read_bytes()[:50]), "not an ETL trace"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, make, problem):
    target = tmp_path / "input.etl"
    make(target)
    for command in ("inspect", "check"):
        done = run_cli(command, str(target), "--db", str(tmp_path / "x.db")) if command == "check" \
            else run_cli(command, str(target))
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert str(target) in lines[0] and problem in lines[0]
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.db").exists()  # nothing half-written


def test_library_raises_bad_trace_error(tmp_path):
    target = tmp_path / "empty.etl"
    target.write_bytes(b"")
    with pytest.raises(BadTraceError, match="empty"):
        open_trace(target)


def test_truncated_last_buffer_is_skipped_and_reported(tmp_path):
    data = DEMO.read_bytes()
    offsets = _buffer_offsets(data)
    cut = offsets[-1] + 100  # keep the first 100 bytes of the last buffer
    target = tmp_path / "truncated.etl"
    target.write_bytes(data[:cut])
    with open_trace(target) as trace:
        records = sum(1 for _ in trace.records())
        stats = trace.stats
    assert stats.buffers.truncated
    assert stats.buffers.buffers_skipped == 1
    assert stats.buffers.buffers_read == len(offsets) - 1
    assert 0 < records < TRUTH["record_count"]
    assert any("truncated" in w for w in stats.warnings)
    done = run_cli("inspect", str(target), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["read"]["truncated"] and summary["read"]["buffers_skipped"] == 1


def test_corrupt_middle_buffer_is_skipped_and_the_rest_read(tmp_path):
    data = bytearray(DEMO.read_bytes())
    offsets = _buffer_offsets(bytes(data))
    assert len(offsets) >= 4
    victim = offsets[2]
    data[victim:victim + 4] = b"\xff\xff\xff\x7f"  # an impossible buffer size
    target = tmp_path / "corrupt.etl"
    target.write_bytes(bytes(data))
    with open_trace(target) as trace:
        records = sum(1 for _ in trace.records())
        stats = trace.stats
    assert stats.buffers.buffers_skipped == 1
    assert stats.buffers.buffers_read == len(offsets) - 1
    assert 0 < records < TRUTH["record_count"]


def test_corrupt_compressed_buffer_resyncs_on_a_real_trace(tmp_path):
    src = sample("NeoChenjf__Finguard__PktMon.etl")
    data = bytearray(src.read_bytes())
    offsets = _buffer_offsets(bytes(data))
    data[offsets[2]:offsets[2] + 8] = b"\xde\xad\xbe\xef" * 2
    target = tmp_path / "corrupt-compressed.etl"
    target.write_bytes(bytes(data))
    with open_trace(target) as trace:
        list(trace.records())
        stats = trace.stats
    assert stats.buffers.buffers_skipped == 1
    assert stats.buffers.buffers_read == len(offsets) - 1  # every buffer after the corrupt one was found again


def test_garbage_inside_a_buffer_counts_unparsed_bytes(tmp_path):
    data = bytearray(DEMO.read_bytes())
    offsets = _buffer_offsets(bytes(data))
    first_record_of_buffer_2 = offsets[1] + 72
    data[first_record_of_buffer_2 + 2:first_record_of_buffer_2 + 4] = b"\x00\x11"  # break its marker
    target = tmp_path / "garbled.etl"
    target.write_bytes(bytes(data))
    with open_trace(target) as trace:
        records = sum(1 for _ in trace.records())
        stats = trace.stats
    assert stats.records.corrupt_buffers == 1 and stats.records.bytes_unparsed > 0
    assert records < TRUTH["record_count"]


@pytest.mark.parametrize("source", ["demo", "NeoChenjf__Finguard__PktMon.etl"])
def test_random_mutations_never_crash_or_hang(tmp_path, source):
    """Flip bytes anywhere (headers, compressed data, payloads): inspect either reads around the
    damage or refuses the file with BadTraceError; nothing else escapes."""
    import random

    from diag.inspect import inspect_trace

    original = DEMO.read_bytes() if source == "demo" else sample(source).read_bytes()
    rng = random.Random(7)
    for i in range(30):
        data = bytearray(original)
        for _ in range(rng.randint(1, 20)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        target = tmp_path / f"mutant{i}.etl"
        target.write_bytes(bytes(data))
        try:
            summary = inspect_trace(target)
        except BadTraceError:
            continue
        assert summary.read.records >= 0
    done = run_cli("inspect", str(target), timeout=60)
    assert done.returncode in (0, 2) and "Traceback" not in done.stderr
