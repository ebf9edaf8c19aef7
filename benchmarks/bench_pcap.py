"""Evidence pcapng export: seconds, packets/s and peak memory, against the bare read of the same packets.

Run: ``python benchmarks/bench_pcap.py [--size 64M] [--repeat 3] [--out DIR]`` (not a test).

Trace: the ``healthy-container-host`` scenario synthesized at ``--size`` (uncompressed). In the same
process, best of ``--repeat``:
  baseline  two passes over the trace that decode every pktmon packet event and do nothing with it
            (the export reads the trace twice: this is its floor);
  every     ``export_pcap`` of every snapshot, sorted into time order (spilled runs once past 16 MB);
  first     ``--first-snapshot``: packet identities rebuilt in both passes, one copy per packet;
  drops     ``--drops-only``.
Each mode then runs once more in a fresh process for its peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diag.read import Trace  # noqa: E402
from diag.report import pcapng  # noqa: E402

SCENARIO = "healthy-container-host"
MODES = {"every": pcapng.PcapOptions(), "first": pcapng.PcapOptions(first_snapshot=True),
         "drops": pcapng.PcapOptions(drops_only=True)}


def baseline(path: Path, _out: Path) -> int:
    events = 0
    with Trace(path) as trace:
        for _ in range(2):
            for _record, _ev in pcapng._pktmon_events(trace):
                events += 1
    return events // 2


def export(mode: str):
    def run(path: Path, out: Path) -> int:
        return pcapng.export_pcap(path, out, options=MODES[mode]).packets
    return run


def timed(fn, path: Path, out: Path) -> tuple[float, int]:
    began = time.perf_counter()
    n = fn(path, out)
    return time.perf_counter() - began, n


def peak_memory(mode: str, path: Path, out: Path) -> int:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", mode, str(path), str(out)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["vmhwm_kb"]


def child(mode: str, path: Path, out: Path) -> None:
    (baseline if mode == "baseline" else export(mode))(path, out)
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    print(json.dumps({"vmhwm_kb": hwm}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="64M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder for the trace and pcapng (default: a temp dir)")
    args = parser.parse_args()
    from diag.synth.generate import synthesize

    folder = args.out or Path(tempfile.mkdtemp(prefix="wnvdiag-bench-pcap-"))
    path = folder / f"{SCENARIO}-{args.size}.etl"
    if not path.exists():
        synthesize(SCENARIO, path, size=args.size, compressed=False)
    out = folder / "out.pcapng"
    fns = {"baseline": baseline, **{m: export(m) for m in MODES}}
    best = {name: min((timed(fn, path, out) for _ in range(args.repeat)), key=lambda r: r[0])
            for name, fn in fns.items()}
    base_s = best["baseline"][0]
    for name, (seconds, n) in best.items():
        print(json.dumps({"mode": name, "trace_mb": round(path.stat().st_size / 1e6, 1), "packets": n,
                          "seconds": round(seconds, 2), "packets_per_s": round(n / seconds),
                          "vs_baseline": round(seconds / base_s, 2),
                          "vmhwm_mb": round(peak_memory(name, path, out) / 1024, 1)}))


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
