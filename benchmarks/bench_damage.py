"""How fast damaged self-describing metadata is refused, against decoding the same events intact.

    python benchmarks/bench_garbled.py [--samples DIR] [--rounds 3000]

A refusal must cost no more than a decode: a garbled TraceLogging schema or payload that made the decoder
walk a huge count would show here as a ratio far above 1. Also the catalogue index (etl-parser's 800
provider modules listed without importing them) against importing the package once. Not part of the suite.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from diag.decode import tracelogging as tl  # noqa: E402
from diag.decode.tdh import TdhError  # noqa: E402
from diag.read import open_trace  # noqa: E402

SAMPLE = "microsoft__ebpf-for-windows__ebpforwindows.etl"
TRACELOGGING_SCHEMA_ITEM = 11


def corpus(samples: Path) -> list[tuple[bytes, bytes]]:
    pairs, seen = [], set()
    with open_trace(samples / SAMPLE) as trace:
        for record in trace.records():
            items = dict(record.extended_items())
            meta = items.get(TRACELOGGING_SCHEMA_ITEM)
            if meta is not None and bytes(meta) not in seen:
                seen.add(bytes(meta))
                pairs.append((bytes(meta), bytes(record.payload)))
    return pairs


def decode_all(pairs: list[tuple[bytes, bytes]], rounds: int, garble: bool) -> float:
    rng = random.Random(20240602)
    start = time.perf_counter()
    for _ in range(rounds):
        meta, payload = pairs[rng.randrange(len(pairs))]
        if garble:
            meta, payload = bytearray(meta), bytearray(payload)
            target = meta if rng.random() < 0.6 else payload
            for _ in range(rng.randint(1, 4)):
                if target:
                    target[rng.randrange(len(target))] = rng.randrange(256)
        try:
            tl.decode(bytes(meta), bytes(payload), 8)
        except TdhError:
            pass
    return time.perf_counter() - start


def resync(junk_mb: int) -> None:
    import os
    import tempfile

    from mutate import buffers

    from diag.inspect import inspect_trace
    from diag.synth.generate import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        intact = Path(tmp) / "intact.etl"
        synthesize("pktmon-drops", intact, compressed=True, size=f"{junk_mb}M")
        data = intact.read_bytes()
        offsets = [start for start, _ in buffers(data)]
        cut = offsets[len(offsets) // 2]
        for name, filler in (("random", os.urandom(junk_mb << 20)), ("zero", bytes(junk_mb << 20))):
            damaged = Path(tmp) / f"{name}.etl"
            damaged.write_bytes(data[:cut] + b"\xff" * 72 + filler + data[cut:])
            start = time.perf_counter()
            summary = inspect_trace(intact)
            read = time.perf_counter() - start
            start = time.perf_counter()
            hurt = inspect_trace(damaged)
            took = time.perf_counter() - start
            assert hurt.read.buffers_read == summary.read.buffers_read, "resync lost buffers"
            extra = max(took - read, 1e-9)
            print(f"resync over {junk_mb} MB of {name} bytes: {junk_mb / extra:.1f} MB/s; reading the intact "
                  f"{len(data) / 1e6:.1f} MB trace: {len(data) / 1e6 / read:.1f} MB/s; ratio "
                  f"{(junk_mb / extra) / (len(data) / 1e6 / read):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "etl-samples")
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--junk-mb", type=int, default=8)
    args = parser.parse_args()
    resync(args.junk_mb)
    pairs = corpus(args.samples)
    clean = decode_all(pairs, args.rounds, garble=False)
    garbled = decode_all(pairs, args.rounds, garble=True)
    print(f"TraceLogging, {len(pairs)} distinct schemas, {args.rounds} events: intact {clean:.3f} s, "
          f"garbled {garbled:.3f} s, ratio {garbled / clean:.2f}")
    code = "import time; t = time.perf_counter(); from diag.decode import catalogue; " \
           "n = len(catalogue.Catalogue().index()); print(n, time.perf_counter() - t)"
    base = "import time; t = time.perf_counter(); import etl.parsers.etw; print(0, time.perf_counter() - t)"
    providers, index = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                                      check=True).stdout.split()
    _, package = subprocess.run([sys.executable, "-c", base], capture_output=True, text=True, cwd=ROOT,
                                check=True).stdout.split()
    print(f"catalogue index of {providers} providers: {float(index) * 1000:.1f} ms; importing etl-parser's "
          f"package: {float(package) * 1000:.1f} ms; ratio {float(index) / float(package):.3f}")


if __name__ == "__main__":
    main()
