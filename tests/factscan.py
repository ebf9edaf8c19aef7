"""The issue-4 wiring, prototyped for tests and benchmarks: ``diag.inspect._scan`` with a FactBuilder.

It does what diag/inspect.py and diag/api.py will do once integrated: the PktMon digest gets the
trace's clock, every event the layered decoder decodes is also given to ``FactBuilder.event``,
and ``FactBuilder.facts`` is called with the digest, the host information and the decode stats.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import diag.inspect as inspect_module
from diag.decode import EventDecoder, pktmon
from diag.facts.builder import FactBuilder
from diag.facts.pktmon import PktmonDigest
from diag.read import Trace


class FactScan(NamedTuple):
    facts: list
    scan: inspect_module.Scan
    builder: FactBuilder


def scan_facts(path: str | Path, host_info=None) -> FactScan:
    if "builder" in inspect_module.Scan._fields:  # wired into diag/inspect.py: use it
        scan = inspect_module.scan_trace(path, facts=True)
        facts = scan.builder.facts(scan.pktmon, host_info, stats=scan.decoder.stats,
                                   reason_names=scan.decoder.value_map(pktmon.PROVIDER, "DropReason"))
        return FactScan(facts, scan, scan.builder)
    with Trace(path) as trace:
        builder = FactBuilder(trace.header)

        class Decoder(EventDecoder):
            def decode(self, record):
                decoded = super().decode(record)
                if decoded is not None:
                    builder.event(decoded, record)
                return decoded

        saved = inspect_module.PktmonDigest, inspect_module.EventDecoder
        inspect_module.PktmonDigest = lambda *args, **kwargs: PktmonDigest(clock=trace.clock)
        inspect_module.EventDecoder = Decoder
        try:
            scan = inspect_module._scan(trace, None)
        finally:
            inspect_module.PktmonDigest, inspect_module.EventDecoder = saved
    facts = builder.facts(scan.pktmon, host_info, stats=scan.decoder.stats,
                          reason_names=scan.decoder.value_map(pktmon.PROVIDER, "DropReason"))
    return FactScan(facts, scan, builder)


def by_kind(facts: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for fact in facts:
        out.setdefault(fact.kind, []).append(fact)
    return out
