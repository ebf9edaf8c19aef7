"""What a report says, whatever its format: the questions a trace could not answer, and the facts
behind a finding (packet paths, drop rates). The HTML and Markdown renderers both use these."""

from __future__ import annotations

from typing import Any

from diag.engine.quality_gate import is_gate
from diag.report.model import RunReport


def unanswered(run: RunReport) -> list[str]:
    """What this trace could not answer: losses, unreadable parts, rules that did not run."""
    q, t, out = run.quality, run.trace, []
    if run.failure:
        out.append("The analysis failed, so nothing can be concluded from this run.")
    if t.records_read == 0:
        out.append("The trace had no readable records.")
    if q.events_lost or q.buffers_lost:
        out.append(f"The ETW session lost {q.events_lost} event(s) and {q.buffers_lost} buffer(s); problems in them cannot be seen.")
    if q.buffers_skipped:
        out.append(f"{q.buffers_skipped} buffer(s) could not be read.")
    if q.truncated:
        out.append("The trace file is truncated.")
    if q.records_undecoded:
        out.append(f"{q.records_undecoded} record(s) could not be decoded (no public layout or malformed).")
    out += [f"{f.title}: {f.summary}" for f in run.findings if is_gate(f)]
    missing = sorted(set(run.rules_loaded) - set(run.rules_run))
    if missing:
        out.append(f"Rules that did not run to completion: {', '.join(missing)}.")
    if not run.rules_loaded and not run.failure:
        out.append("No rule was loaded, so nothing was checked.")
    if run.rule_errors:
        out.append(f"{len(run.rule_errors)} rule error(s): see the rule errors section.")
    if run.engine_errors:
        out.append(f"{len(run.engine_errors)} engine error(s).")
    return out


def _drop_keys(run: RunReport, finding: Any) -> set[tuple]:
    keys = set()
    for row in finding.evidence:
        comp, reason = row.get("component_id"), row.get("reason_code")
        if isinstance(comp, int) and isinstance(reason, int):
            keys.add((comp, reason))
    for fid in finding.fact_ids:
        fact = run.fact(fid)
        if fact and isinstance(fact.get("component_id"), int) and isinstance(fact.get("reason_code"), int):
            keys.add((fact["component_id"], fact["reason_code"]))
    return keys


def related_paths(run: RunReport, finding: Any, limit: int = 3) -> list[dict[str, Any]]:
    """Sample packet paths behind a finding: its own ``packet_path`` facts, else the dropped paths
    that ended at a (component, reason) of its evidence."""
    own = [f for f in (run.fact(i) for i in finding.fact_ids) if f and f.get("kind") == "packet_path"]
    if own:
        return own[:limit]
    keys = _drop_keys(run, finding)
    return [p for p in run.facts_of("packet_path")
            if p.get("dropped") and (p.get("last_component_id"), p.get("drop_reason_code")) in keys][:limit]


def related_rates(run: RunReport, finding: Any, limit: int = 6) -> list[dict[str, Any]]:
    """``drop_rate`` facts of the finding's (component, reason) pairs."""
    keys = _drop_keys(run, finding)
    own = [f for f in (run.fact(i) for i in finding.fact_ids) if f and f.get("kind") == "drop_rate"]
    return (own or [r for r in run.facts_of("drop_rate") if (r.get("component_id"), r.get("reason_code")) in keys])[:limit]
