"""The trace-quality gate: what a trace could not show lowers the confidence of what it did show.

Rules about the trace itself (events lost, a wrapped circular log, truncated payloads, a missing
provider) carry ``affects-<tag>`` tags. Each finding such a rule produced lowers, by one step, the
confidence of every other finding carrying ``<tag>`` (``affects-all``: every other finding), and the
finding says why.
"""

from __future__ import annotations

from diag.facts.models import Finding

_PREFIX = "affects-"
_ONE_STEP_DOWN = {"high": "medium", "medium": "low", "low": "low"}


def affected_tags(finding: Finding) -> set[str]:
    return {tag[len(_PREFIX):] for tag in finding.tags if tag.startswith(_PREFIX)}


def is_gate(finding: Finding) -> bool:
    return bool(affected_tags(finding))


def apply_quality_gate(findings: list[Finding]) -> list[Finding]:
    """Return ``findings`` with the confidence of those a quality finding affects lowered one step."""
    gates = [f for f in findings if is_gate(f)]
    if not gates:
        return findings
    return [f if is_gate(f) else _lowered(f, [g for g in gates if _affects(g, f)]) for f in findings]


def _affects(gate: Finding, finding: Finding) -> bool:
    tags = affected_tags(gate)
    return "all" in tags or bool(tags & set(finding.tags))


def _lowered(finding: Finding, causes: list[Finding]) -> Finding:
    if not causes:
        return finding
    why = "; ".join(c.title for c in causes)
    return finding.model_copy(update={
        "confidence": _ONE_STEP_DOWN[finding.confidence],
        "summary": f"{finding.summary} (Confidence lowered from {finding.confidence}: {why}.)",
    })
