"""How fast ``wnvdiag synth`` makes big traces, and how well its LZXpress compressor does.

Run: ``python benchmarks/bench_synth.py [--size 1G] [--out DIR]`` (not part of the test suite).

Figures, each with its baseline measured in the same process:

1. ``--size`` runs (compressed and plain) of a scenario, against writing the same number of bytes
   of zeros to the same folder (the write floor; neither fsyncs) and against the record-by-record path
   (``EtlWriter.write_event`` + compressing every buffer) extrapolated from a smaller run;
2. the compressor on the buffers of a scenario trace: MB/s of input and the ratio it reaches;
3. with the real pktmon samples present (``../shared/etl-samples``): every compressed buffer of
   each sample decompressed with libfwnt and recompressed here, our size against Windows' size.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from pathlib import Path

import pyfwnt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diag.synth import pktmon as pm  # noqa: E402
from diag.synth.compress import compress  # noqa: E402
from diag.synth.etlwriter import EtlWriter  # noqa: E402
from diag.synth.generate import parse_size, synthesize  # noqa: E402

SCENARIO = "healthy-container-host"
SAMPLES = ROOT.parent / "shared" / "etl-samples"
HEADER = struct.Struct("<IIIiqqQHHIIHH")


def zeros_floor(folder: Path, size: int) -> float:
    path = folder / "zeros.bin"
    chunk = bytes(1 << 20)
    began = time.perf_counter()
    with path.open("wb") as fh:
        for _ in range(size // len(chunk)):
            fh.write(chunk)
    seconds = time.perf_counter() - began
    path.unlink()
    return seconds


def record_by_record(folder: Path, compressed: bool, seconds_budget: float = 3.0) -> float:
    """Bytes of file per second when every record is encoded and every buffer compressed."""
    frame = pm.tcp_frame("00-15-5d-00-00-01", "00-15-5d-00-00-02", "10.0.0.1", "10.0.0.2", 80, 50000,
                         payload=bytes(1400))
    path = folder / "per-record.etl"
    began = time.perf_counter()
    with EtlWriter(path, compressed=compressed, cpu_count=2) as w:
        n = 0
        while time.perf_counter() - began < seconds_budget:
            for _ in range(500):
                payload = pm.encode_packet(pkt_group_id=n, pkt_number=1, appearance=1, dir_tag=3, packet_type=1,
                                           component_id=1, edge_id=1, filter_id=0, frame=frame, logged_size_limit=0)
                pm.write_pktmon_event(w, 160, payload, timestamp=w.start_filetime + n * 100, cpu=n % 2)
                n += 1
    seconds = time.perf_counter() - began
    size = path.stat().st_size
    path.unlink()
    return size / seconds


def bench_size(folder: Path, size: int) -> None:
    print(f"1. {SCENARIO} --size {size / 1024**3:.2f} GiB, in {folder}")
    floor = zeros_floor(folder, size)
    print(f"   writing {size / 1e6:,.0f} MB of zeros (no fsync, as synth): {floor:.2f} s, "
          f"{size / floor / 1e6:,.0f} MB/s")
    for compressed in (True, False):
        label = "compressed" if compressed else "plain"
        path = folder / f"bulk-{label}.etl"
        began = time.perf_counter()
        result = synthesize(SCENARIO, path, size=size, compressed=compressed)
        seconds = time.perf_counter() - began
        actual = path.stat().st_size
        per_record = record_by_record(folder, compressed)
        print(f"   {label:10}: {seconds:6.2f} s for {actual / 1e6:,.0f} MB ({result.written.records:,} records, "
              f"{result.written.bytes_uncompressed / 1e6:,.0f} MB of records), {actual / seconds / 1e6:,.0f} MB/s; "
              f"{seconds / floor:.1f}x the zeros floor; record-by-record path {per_record / 1e6:.1f} MB/s, "
              f"would take {actual / per_record:,.0f} s ({actual / per_record / seconds:,.0f}x slower)")
        path.unlink()
        path.with_name(path.stem + ".truth.json").unlink()


def scenario_buffers(folder: Path) -> list[bytes]:
    result = synthesize(SCENARIO, folder / "plain.etl", compressed=False)
    data = result.trace.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        size, *_rest, filled, _flags, btype = HEADER.unpack_from(data, offset)
        if btype == 0:
            out.append(data[offset + 72:offset + filled])
        offset += size
    return out


def bench_compressor(folder: Path) -> None:
    buffers = scenario_buffers(folder)
    total = sum(len(b) for b in buffers)
    began = time.perf_counter()
    packed = sum(len(compress(b)) for b in buffers)
    seconds = time.perf_counter() - began
    began = time.perf_counter()
    for b in buffers:
        pyfwnt.lzxpress_decompress(compress(b), len(b))
    print(f"2. compressor on {len(buffers)} buffers of {SCENARIO} ({total / 1e6:.1f} MB): "
          f"{total / seconds / 1e6:.1f} MB/s, ratio {total / packed:.2f}")


def bench_against_windows() -> None:
    samples = sorted(SAMPLES.glob("*PktMon*.etl")) if SAMPLES.is_dir() else []
    if not samples:
        print(f"3. skipped: no real pktmon samples at {SAMPLES}")
        return
    print("3. real pktmon samples, buffers decompressed with libfwnt and recompressed here:")
    for path in samples:
        data = path.read_bytes()
        offset = ours = theirs = raw = 0
        seconds = 0.0
        while offset < len(data):
            size, *_rest, filled, flags, _btype = HEADER.unpack_from(data, offset)
            if flags & 0x40:
                packed = data[offset + 72:offset + size]
                plain = pyfwnt.lzxpress_decompress(packed, filled - 72)
                began = time.perf_counter()
                mine = compress(plain)
                seconds += time.perf_counter() - began
                ours, theirs, raw = ours + len(mine), theirs + len(packed), raw + len(plain)
            offset += size
        print(f"   {path.name}: {raw / 1e3:,.0f} kB of records; Windows {theirs / 1e3:,.0f} kB "
              f"(ratio {raw / theirs:.2f}), ours {ours / 1e3:,.0f} kB (ratio {raw / ours:.2f}, "
              f"{ours / theirs:.2f}x Windows' size) at {raw / seconds / 1e6:.1f} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G", help="target trace size (default 1G)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the big files (default: a temp folder)")
    args = parser.parse_args()
    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        folder = Path(tmp)
        bench_size(folder, size)
        bench_compressor(folder)
    bench_against_windows()


if __name__ == "__main__":
    main()
