"""The long fuzz run: many seeded mutants per category, through ``inspect`` and the facts (the check path
without the rules worker), with hangs and peak memory measured. Not part of the suite.

    python benchmarks/fuzz.py [--inputs 100000] [--first-seed 1000] [--samples DIR] [--hang-seconds 30]

Prints, per category: inputs tried, refused as not a trace (exit 2), crashes (any other exception), hangs
(an input taking longer than --hang-seconds), and at the end the peak RSS of the process. A crash prints
its source, category and seed: ``tests/mutate.py``'s ``mutant(original, category, seed)`` gives the bytes
back, for a regression test in ``tests/test_fuzz.py``. Seeds start past the ones the suite uses.
"""

from __future__ import annotations

import argparse
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from mutate import CATEGORIES, mutant  # noqa: E402
from diag import api  # noqa: E402
from diag.errors import DiagError  # noqa: E402
from diag.inspect import scan_trace  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def sources(samples: Path, work: Path) -> dict[str, bytes]:
    from diag.synth.generate import synthesize

    out = {"demo": (ROOT / "tests" / "data" / "pktmon-drops.etl").read_bytes()}
    for scenario in ("vfp-policy-block", "lossy-trace", "sdn-host-failures"):
        synthesize(scenario, work / f"{scenario}.etl", compressed=True)
        out[scenario] = (work / f"{scenario}.etl").read_bytes()
    for path in sorted(samples.glob("*.etl")) if samples.is_dir() else []:
        if path.stat().st_size <= 1 << 20:  # the larger samples cost seconds per mutant
            out[path.name] = path.read_bytes()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "etl-samples")
    parser.add_argument("--hang-seconds", type=int, default=30)
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    tried, refused, crashed, hung = Counter(), Counter(), Counter(), Counter()
    first_crash: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        originals = sources(args.samples, work)
        names = list(originals)
        target = work / "mutant.etl"
        n, seed = 0, args.first_seed
        while n < args.inputs:
            for category in CATEGORIES:
                name = names[seed % len(names)]
                target.write_bytes(mutant(originals[name], category, seed))
                tried[category] += 1
                signal.alarm(args.hang_seconds)
                try:
                    api.build_facts(scan_trace(target, facts=True))
                except DiagError:
                    refused[category] += 1
                except Hang:
                    hung[category] += 1
                    print(f"HANG  {name} {category} seed {seed}", flush=True)
                except Exception as exc:  # noqa: BLE001 - what this run looks for
                    crashed[category] += 1
                    key = f"{type(exc).__name__} at {exc.__traceback__.tb_frame.f_code.co_filename}"
                    if key not in first_crash:
                        first_crash[key] = f"{name} {category} seed {seed}: {type(exc).__name__}: {exc}"[:300]
                        print(f"CRASH {first_crash[key]}", flush=True)
                finally:
                    signal.alarm(0)
                n += 1
                if n >= args.inputs:
                    break
            seed += 1
    took = time.perf_counter() - started
    print(f"\n{'category':<20} {'tried':>8} {'refused':>8} {'crashes':>8} {'hangs':>6}")
    for category in CATEGORIES:
        print(f"{category:<20} {tried[category]:>8} {refused[category]:>8} {crashed[category]:>8} {hung[category]:>6}")
    print(f"{'all':<20} {sum(tried.values()):>8} {sum(refused.values()):>8} {sum(crashed.values()):>8} "
          f"{sum(hung.values()):>6}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{len(originals)} sources, {took:.0f} s ({sum(tried.values()) / took:.0f} inputs/s), peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
