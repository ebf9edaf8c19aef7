"""The full decode + fact-building pass (issue 4): packet events/s, MB/s, memory and fact counts.

Run: ``python benchmarks/bench_facts.py [--sizes 64M,512M] [--repeat 3] [--out DIR]`` (not a test).

Traces: the ``healthy-container-host`` scenario synthesized (diag/synth, uncompressed) at each size,
and, when present, ``benchmarks/data/pktmon-10mb.etl`` (compressed buffers of the real VPN sample,
repeated: its PktGroupIds repeat too, so its paths are not meaningful, only its speed is).

For each trace, in the same process, best of ``--repeat``:
  baseline  ``inspect`` as it is without issue 4: the PktMon digest without path/flow tracking;
  facts     the same pass with the digest tracking paths and flows (given the trace's clock), every
            decoded event given to ``FactBuilder.event``, then ``FactBuilder.facts``.
Then each is run once more in a fresh process to read its peak resident memory (VmHWM), to show
memory stays flat from the small trace to the large one. Fact counts are listed by kind.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import diag.inspect as inspect_module  # noqa: E402
from diag.facts.pktmon import PktmonDigest  # noqa: E402
from diag.read import Trace  # noqa: E402
from factscan import scan_facts  # noqa: E402

SCENARIO = "healthy-container-host"
REAL = ROOT / "benchmarks" / "data" / "pktmon-10mb.etl"


def baseline(path: Path) -> tuple[float, int, int]:
    with Trace(path) as trace:
        saved = inspect_module.PktmonDigest
        inspect_module.PktmonDigest = lambda *args, **kwargs: PktmonDigest(track=False)
        try:
            began = time.perf_counter()
            scan = inspect_module._scan(trace, None)
            seconds = time.perf_counter() - began
        finally:
            inspect_module.PktmonDigest = saved
    return seconds, scan.pktmon.packets, scan.summary.read.bytes_decompressed


def facts_pass(path: Path) -> tuple[float, int, Counter]:
    began = time.perf_counter()
    result = scan_facts(path)
    seconds = time.perf_counter() - began
    return seconds, result.scan.pktmon.packets, Counter(f.kind for f in result.facts)


def peak_memory(mode: str, path: Path) -> int:
    """VmHWM (kB) of a fresh process that runs one pass."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["vmhwm_kb"]


def child(mode: str, path: Path) -> None:
    (baseline if mode == "baseline" else facts_pass)(path)
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    print(json.dumps({"vmhwm_kb": hwm}))


def measure(label: str, path: Path, repeat: int) -> dict:
    base = min((baseline(path) for _ in range(repeat)), key=lambda r: r[0])
    full = min((facts_pass(path) for _ in range(repeat)), key=lambda r: r[0])
    size_mb = path.stat().st_size / 1e6
    row = {
        "trace": label, "file_mb": round(size_mb, 1), "decompressed_mb": round(base[2] / 1e6, 1), "packet_events": base[1],
        "baseline_s": round(base[0], 3), "facts_s": round(full[0], 3),
        "baseline_events_per_s": round(base[1] / base[0]), "facts_events_per_s": round(full[1] / full[0]),
        "facts_mb_per_s": round(base[2] / 1e6 / full[0], 1), "facts_vs_baseline": round(full[0] / base[0], 2),
        "baseline_vmhwm_mb": round(peak_memory("baseline", path) / 1024, 1),
        "facts_vmhwm_mb": round(peak_memory("facts", path) / 1024, 1),
        "facts": sum(full[2].values()), "facts_by_kind": dict(sorted(full[2].items())),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64M,512M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder for the synthesized traces (default: a temp dir)")
    args = parser.parse_args()
    from diag.synth.generate import synthesize

    out = args.out or Path(tempfile.mkdtemp(prefix="wnvdiag-bench-"))
    rows = []
    for size in args.sizes.split(","):
        path = out / f"{SCENARIO}-{size}.etl"
        if not path.exists():
            synthesize(SCENARIO, path, size=size, compressed=False)
        rows.append(measure(f"{SCENARIO} {size}", path, args.repeat))
    if REAL.exists():
        rows.append(measure("pktmon-10mb (real buffers, compressed)", REAL, args.repeat))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]))
    else:
        main()
