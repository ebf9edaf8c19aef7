"""A Python rule (durable_rules DSL): arithmetic on the right-hand side of a join, and an action."""

from durable.lang import c, m, none, when_all

META = {
    "id": "arithmetic",
    "title": "Shape rule",
    "severity": "low",
    "confidence": "low",
    "description": "A rule shape from the durable_rules study, checked by the differential test.",
    "impact": "None; a test fixture.",
    "remediation": "None; a test fixture.",
    "finding": {"summary": "{matches}"},
}

WHEN = when_all(
    c.a << (m.kind == "pktmon_drop"),
    c.b << (m.kind == "pktmon_drop") & (m.component_id == c.a.component_id) & (m.count >= c.a.count * 2 - 1),
    none((m.kind == "trace_quality") & (m.events_lost == c.b.reason_code + 1)),
)


def action(match):
    return {"sum": match["a"]["count"] + match["b"]["count"]}
