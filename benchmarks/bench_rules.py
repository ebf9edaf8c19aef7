"""The rule phase: its share of a check on a large trace, and its speed in facts/s.

    python benchmarks/bench_rules.py [--trace benchmarks/data/pktmon-600mb.etl] [--sizes 1000,10000,50000]

1. ``check`` on a large trace (build it with benchmarks/bench_read.py), with the rule phase
   (``run_rules``: rule loading, the worker process, the engine, the findings) timed inside it:
   its seconds and share of the whole check.
2. The rule phase with the full shipped pack over N synthetic facts (pktmon drop groups spread
   over components, reasons and directions, plus the trace-quality fact), in facts/s, against a
   baseline in this same process: the bare durable_rules core (one host, one ruleset with the
   same compiled rules, background threads off, a trivial action) asserting the same facts.
   The ratio is what the adapter costs on top of the engine (process start, ids, findings).
3. Loading the shipped pack (parse, check, compile every rule), with libyaml's parser (what wnvdiag
   uses when PyYAML has it) against PyYAML's pure-Python one in this same process.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diag import api
from diag.engine import load_rules, run_rules
from diag.engine.runner import prepare_session, session_ids
from diag.facts import PacketDropGroup, TraceQuality
from diag.resources import data_dir

DEFAULT_TRACE = ROOT / "benchmarks" / "data" / "pktmon-600mb.etl"


def check_share(trace: Path) -> None:
    timings: list[tuple[float, int]] = []
    real_run_rules = api.run_rules

    def timed_run_rules(facts, *args, **kwargs):
        start = time.perf_counter()
        try:
            return real_run_rules(facts, *args, **kwargs)
        finally:
            timings.append((time.perf_counter() - start, len(facts)))

    api.run_rules = timed_run_rules
    try:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            try:
                api.check(trace, db_path=Path(tmp) / "runs.db", out_dir=tmp)
            except api.AnalysisFailed as exc:
                print(f"check failed: {exc}")
            total = time.perf_counter() - start
    finally:
        api.run_rules = real_run_rules
    (rules_seconds, facts), = timings
    print(f"check {trace.name} ({trace.stat().st_size / 1e6:.0f} MB): {total:.2f} s; rule phase {rules_seconds:.3f} s "
          f"over {facts} fact(s) = {100 * rules_seconds / total:.2f} % of the check")


def synthetic_facts(n: int, seed: int = 1) -> list:
    """``n`` facts: the quality fact and distinct drop groups, four per component.

    Reasons are spread as on a real host: most groups have a reason few other components share
    (so the correlation rule finds about one pair per group), one in twenty a VLAN or MAC reason.
    """
    rnd = random.Random(seed)
    facts: list = [TraceQuality(events_lost=rnd.randint(0, 3))]
    for i in range(n - 1):
        component = i // 4
        reason = rnd.choice([9, 10, 11, 16, 36]) if rnd.random() < 0.05 else rnd.randint(1000, 1000 + n // 2)
        facts.append(PacketDropGroup(component_id=component, component_name=f"port {component}",
                                     component_type="VmsVmNic", direction=rnd.choice(["In", "Out"]),
                                     reason_code=reason, reason_name=f"reason {reason}", count=rnd.randint(1, 10_000)))
    return facts


class Baseline:
    """The bare engine in this process: one host, one ruleset, one session per measurement."""

    def __init__(self) -> None:
        from durable import engine

        class SyncHost(engine.Host):
            def _run(self) -> None:
                return None

        rules, errors = load_rules([data_dir("rules")])
        assert not errors, errors
        self.fired = 0

        def count(c) -> None:
            self.fired += 1

        definition = {d.name: {"all": d.all, "run": count} for r in rules for d in r.engine_rules}
        self.engine = engine
        self.host = SyncHost({"bench": definition})
        self.sids = iter(session_ids(100))

    def run(self, facts: list) -> float:
        session = prepare_session(facts, next(self.sids))  # not timed: the same ids the adapter uses
        start = time.perf_counter()
        for fact in session.facts:
            try:
                self.host.assert_fact("bench", fact.engine)
            except self.engine.MessageNotHandledException:
                pass
        try:
            self.host.assert_fact("bench", session.gate)
        except self.engine.MessageNotHandledException:
            pass
        return time.perf_counter() - start


def throughput(sizes: list[int]) -> None:
    baseline = Baseline()
    print(f"{'facts':>8} {'matches':>9} {'rule phase':>11} {'facts/s':>9} {'bare engine':>12} {'facts/s':>9} {'ratio':>6}")
    for n in sizes:
        facts = synthetic_facts(n)
        start = time.perf_counter()
        result = run_rules(facts)
        seconds = time.perf_counter() - start
        assert result.complete, (result.rule_errors, result.engine_errors)
        bare = baseline.run(facts)
        matches = sum(result.matches.values())
        print(f"{n:>8} {matches:>9} {seconds:>10.2f}s {n / seconds:>9.0f} {bare:>11.2f}s {n / bare:>9.0f} "
              f"{seconds / bare:>5.2f}x")


def rule_loading(repeats: int = 5) -> None:
    import yaml

    from diag.engine import source

    def best() -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            rules, errors = load_rules([data_dir("rules")])
            times.append(time.perf_counter() - start)
            assert rules and not errors
        return min(times)

    fast = best()
    chosen = source._LOADER
    source._LOADER = yaml.SafeLoader
    try:
        pure = best()
    finally:
        source._LOADER = chosen
    print(f"loading the shipped pack: {fast * 1000:.0f} ms with {chosen.__name__}, {pure * 1000:.0f} ms with the "
          f"pure-Python SafeLoader: {fast / pure:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_TRACE)
    parser.add_argument("--sizes", default="1000,10000,50000")
    args = parser.parse_args()
    if args.trace.is_file():
        check_share(args.trace)
    else:
        print(f"{args.trace} is missing: build it with benchmarks/bench_read.py; skipping the check share")
    throughput([int(s) for s in args.sizes.split(",")])
    rule_loading()


if __name__ == "__main__":
    main()
