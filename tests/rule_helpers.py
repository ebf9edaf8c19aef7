"""Helpers for the engine and rule tests: facts and rule files written on the fly."""

from __future__ import annotations

import textwrap
from pathlib import Path

from diag.facts import PacketDropGroup

WHEN_LINE = 10  # the line of `when:` in a file written by write_rule; its patterns follow


def drop(component_id: int = 1, reason_code: int = 16, count: int = 1, direction: str = "In", **kw) -> PacketDropGroup:
    return PacketDropGroup(
        component_id=component_id,
        component_name=kw.pop("component_name", f"component {component_id}"),
        component_type=kw.pop("component_type", "VmsVmNic"),
        direction=direction,
        reason_code=reason_code,
        reason_name=kw.pop("reason_name", f"reason {reason_code}"),
        count=count,
        **kw,
    )


def write_rule(directory: Path, rule_id: str, when: str, *, summary: str = "{matches} match(es)") -> Path:
    """A minimal valid YAML rule with the given ``when`` block (indented under `when:`)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rule_id}.yaml"
    head = textwrap.dedent(f"""\
        id: {rule_id}
        title: Test rule {rule_id}
        severity: low
        confidence: medium
        description: A rule written by the tests.
        impact: None.
        remediation: None needed.
        finding:
          summary: "{summary}"
        when:
        """)
    path.write_text(head + textwrap.indent(textwrap.dedent(when), "  "), encoding="utf-8")
    return path
