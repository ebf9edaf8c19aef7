"""Reader speed and memory, with dissect.etl's bare record iteration as the in-process baseline.

    python benchmarks/bench_read.py [--big-mb 600] [--samples DIR]

For each real sample and for large traces built from their buffers it prints, for one core:
- the bare record walk (buffers read and decompressed, every record header located): records/s, MB/s;
- ``inspect`` (also decodes the pktmon packets, components and counters): records/s, MB/s;
- how long dissect.etl takes merely to iterate the same records, and the ratio to ``inspect``;
- the peak resident memory of ``inspect`` in a fresh process on a ~10 MB and on the big trace.
MB/s are megabytes of decompressed record data. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diag.inspect import inspect_trace  # noqa: E402
from diag.read import open_trace  # noqa: E402
from diag.read.records import RecordStats, record_spans  # noqa: E402

DEFAULT_SAMPLES = ROOT.parent / "shared" / "etl-samples"
DATA = Path(__file__).resolve().parent / "data"
BUFFERS_WRITTEN_OFFSET = 72 + 32 + 0x24  # buffer header + SYSTEM64 record header + field offset


def bare_walk(path: Path) -> tuple[int, int]:
    records = 0
    with open_trace(path) as trace:
        stats = RecordStats()
        for buf in trace.buffers():
            for _ in record_spans(buf.data, buf.index, stats):
                records += 1
        return records, trace.stats.buffers.bytes_decompressed


def dissect_iterate(path: Path, limit_seconds: float) -> tuple[int, float, bool]:
    """Iterate records with dissect.etl (no payload decoding); stop after ``limit_seconds``."""
    from dissect.etl.etl import ETL

    count, start, finished = 0, time.perf_counter(), True
    with open(path, "rb") as fh:
        for _ in ETL(fh):
            count += 1
            if count % 2000 == 0 and time.perf_counter() - start > limit_seconds:
                finished = False
                break
    return count, time.perf_counter() - start, finished


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def build_big_trace(source: Path, target_mb: int, out: Path) -> Path:
    """Concatenate a sample's data buffers after its header buffer until the file reaches ``target_mb``."""
    if out.exists() and out.stat().st_size >= target_mb * 1_000_000:
        return out
    data = source.read_bytes()
    offsets, off = [], 0
    while off + 72 <= len(data):
        offsets.append(off)
        off += struct.unpack_from("<I", data, off)[0]
    header = data[:offsets[1]]
    body = data[offsets[1]:]
    per_copy = len(offsets) - 1
    copies = max(1, (target_mb * 1_000_000 - len(header)) // len(body) + 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:
        patched = bytearray(header)
        struct.pack_into("<I", patched, BUFFERS_WRITTEN_OFFSET, 1 + per_copy * copies)
        fh.write(patched)
        for _ in range(copies):
            fh.write(body)
    return out


def peak_rss_mb(path: Path) -> float:
    """Peak resident memory of ``inspect`` in a fresh process.

    Read from /proc/self/status VmHWM, which starts afresh with the new program; getrusage's
    ru_maxrss would carry over this (parent) process's peak through fork.
    """
    code = ("import sys; sys.path.insert(0, %r); from diag.inspect import inspect_trace; inspect_trace(%r); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
            ) % (str(ROOT), str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def row(name: str, path: Path, dissect_limit: float) -> None:
    (records, mb), walk_s = timed(bare_walk, path)
    summary, inspect_s = timed(inspect_trace, path)
    assert summary.read.records == records
    d_count, d_s, finished = dissect_iterate(path, dissect_limit)
    d_rate = d_count / d_s  # records/s
    ratio = (records / inspect_s) / d_rate
    note = "" if finished else f" (dissect timed over its first {d_count} records)"
    print(f"{name[:44]:<44} {records:>10} {mb / 1e6:>9.1f} "
          f"{records / walk_s / 1e6:>8.2f}M {mb / walk_s / 1e6:>8.1f} "
          f"{records / inspect_s / 1e6:>8.2f}M {mb / inspect_s / 1e6:>8.1f} "
          f"{d_rate / 1e3:>8.1f}k {ratio:>7.1f}x{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--big-mb", type=int, default=600, help="size of the large trace (file MB)")
    parser.add_argument("--dissect-seconds", type=float, default=30.0, help="cap on each dissect.etl run")
    args = parser.parse_args()
    samples = sorted(args.samples.glob("*.etl"))
    if not samples:
        sys.exit(f"no samples in {args.samples}")
    print(f"{'trace':<44} {'records':>10} {'MB':>9} {'walk r/s':>9} {'MB/s':>8} "
          f"{'insp r/s':>9} {'MB/s':>8} {'dissect':>9} {'vs dis.':>8}")
    for path in samples:
        row(path.name, path, args.dissect_seconds)
    pktmon = args.samples / "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl"
    kernel = args.samples / "microsoft__perfview__net.4.5.2.x64.etl"
    small = build_big_trace(pktmon, 10, DATA / "pktmon-10mb.etl")
    big = build_big_trace(pktmon, args.big_mb, DATA / f"pktmon-{args.big_mb}mb.etl")
    big_kernel = build_big_trace(kernel, args.big_mb, DATA / f"kernel-{args.big_mb}mb.etl")
    for path in (small, big, big_kernel):
        row(f"{path.name} ({path.stat().st_size / 1e6:.0f} MB file)", path, args.dissect_seconds)
    print()
    for path in (small, big):
        print(f"peak RSS of inspect on {path.name} ({path.stat().st_size / 1e6:.0f} MB file): "
              f"{peak_rss_mb(path):.0f} MB")


if __name__ == "__main__":
    main()
