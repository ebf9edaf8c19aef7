"""``wnvdiag rules new NAME``: a commented rule template and its test cases, ready to edit.

The templates load, and their cases pass, exactly as written (a test makes sure).
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from diag.engine.conditions import field_types
from diag.engine.rules import CASES_SUFFIX, PYTHON_SUFFIX, YAML_SUFFIX
from diag.errors import BadInputError
from diag.facts.models import FACT_MODELS

_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

YAML_TEMPLATE = string.Template('''\
# A wnvdiag rule. Check it with `wnvdiag rules lint $file` and test it with
# `wnvdiag rules test $file` (its cases are in $cases; the differential test
# runs too). Use it with `wnvdiag check TRACE --rules DIRECTORY-OF-THIS-FILE`.
id: $id                      # must equal the file name without .yaml
title: Large drop groups     # one line: what the finding says is wrong
status: experimental         # experimental, then test, then stable
severity: medium             # info | low | medium | high | critical
confidence: medium           # low | medium | high: how sure a match is the problem
description: >-
  What the rule looks for and why that is a problem, in a few sentences.
impact: >-
  What the problem does to the workload.
remediation: >-
  What to check and what to change (Markdown).
references: []               # links to documentation
tags: [custom]               # --only/--skip take ids and tags

# when: patterns over facts, all of which must hold. A pattern is `alias: {tests}` on one fact
# kind. Tests: `field: value` (equal), `$$gt/$$gte/$$lt/$$lte/$$neq: {field: value}`,
# `$$ex/$$nex: {field: 1}` (set / empty), `$$mt/$$imt: {field: regex}` (whole value; $$imt ignores
# case), `$$or: [{tests}, {tests}]`. A value may be `{alias: field}`: that field of the fact an
# EARLIER alias matched (a join). `alias$$not: {tests}` means "no other fact such that".
# Several tests in one mapping must all hold.
#
# Fact kinds and their fields:
$kinds
when:
  all:
    - d: {kind: pktmon_drop, $$gte: {count: 100}}
    # - o: {kind: pktmon_drop, component_id: {d: component_id}, $$neq: {direction: {d: direction}}}
    # - q$$not: {kind: trace_quality, $$gt: {events_lost: 0}}

# finding: one finding per rule with every match as an evidence row. The summary may use
# {alias[field]} (facts of the first match after ranking), {top[field]} (first alias of that
# match), {total[field]} (sum over the matches) and {matches} (how many).
finding:
  summary: "{matches} drop group(s) of 100 packets or more; the largest is {top[count]} packets at {top[component_name]}."
  rank_by: count             # optional: order the evidence by this field, largest first
  evidence: [component_id, component_name, direction, reason_code, reason_name, count]
''')

PYTHON_TEMPLATE = string.Template('''\
"""A wnvdiag rule written with durable_rules' DSL, for conditions YAML cannot express.

Check it with `wnvdiag rules lint $file` and test it with `wnvdiag rules test $file`
(its cases are in $cases). The condition is checked and compiled like a YAML rule's.
"""

from durable.lang import c, m, when_all

META = {
    "id": "$id",  # must equal the file name without .py
    "title": "Drops grow between directions",
    "status": "experimental",  # experimental | test | stable
    "severity": "medium",  # info | low | medium | high | critical
    "confidence": "low",  # low | medium | high
    "description": "A component drops at least ten times more packets in one direction than in the other.",
    "impact": "What the problem does to the workload.",
    "remediation": "What to check and what to change (Markdown).",
    "references": [],
    "tags": ["custom"],
    "finding": {
        "summary": "{matches} component(s) drop ten times more in one direction, e.g. {b[component_name]}.",
        "evidence": ["a.component_id", "a.direction", "a.count", "b.direction", "b.count"],
    },
}

# Fact kinds and their fields:
$kinds
# m is the fact being matched, c.<alias> an earlier one; `c.a << ...` names the pattern.
# Arithmetic on the right-hand side (c.a.count * 10) is what YAML cannot write.
WHEN = when_all(
    c.a << (m.kind == "pktmon_drop"),
    c.b << (m.kind == "pktmon_drop") & (m.component_id == c.a.component_id) & (m.count >= c.a.count * 10),
)


def action(match):
    """Optional: called once per match with {alias: fields}; may add scalar columns to its evidence row."""
    return {"ratio": match["b"]["count"] // match["a"]["count"]}
''')

YAML_CASES = string.Template('''\
# Test cases of $rule, run through the real engine by `wnvdiag rules test`.
# match: each case's facts must make the rule fire (matches: exactly that many matches);
# no_match: each case's facts must not.
rule: $id

match:
  - name: one large drop group
    matches: 1
    facts:
      - {kind: pktmon_drop, component_id: 4, component_name: vm1 port, component_type: VmsVmNic, direction: In, reason_code: 16, reason_name: Spoofed MAC address is not allowed, count: 150}

no_match:
  - name: small drop groups only
    facts:
      - {kind: pktmon_drop, component_id: 4, component_name: vm1 port, component_type: VmsVmNic, direction: In, reason_code: 16, reason_name: Spoofed MAC address is not allowed, count: 99}
''')

PYTHON_CASES = string.Template('''\
# Test cases of $rule, run through the real engine by `wnvdiag rules test`.
rule: $id

match:
  - name: ten times more inbound than outbound
    matches: 1
    facts:
      - {kind: pktmon_drop, component_id: 4, component_name: vm1 port, component_type: VmsVmNic, direction: Out, reason_code: 16, reason_name: Spoofed MAC address is not allowed, count: 3}
      - {kind: pktmon_drop, component_id: 4, component_name: vm1 port, component_type: VmsVmNic, direction: In, reason_code: 16, reason_name: Spoofed MAC address is not allowed, count: 30}

no_match:
  - name: balanced directions
    facts:
      - {kind: pktmon_drop, component_id: 4, component_name: vm1 port, component_type: VmsVmNic, direction: Out, reason_code: 16, reason_name: Spoofed MAC address is not allowed, count: 3}
      - {kind: pktmon_drop, component_id: 4, component_name: vm1 port, component_type: VmsVmNic, direction: In, reason_code: 16, reason_name: Spoofed MAC address is not allowed, count: 29}
''')


def kinds_comment() -> str:
    return "\n".join(f"#   {kind}: {', '.join(name for name in field_types(kind) if name != 'kind')}"
                     for kind in sorted(FACT_MODELS))


def new_rule(name: str, directory: Path, python: bool = False) -> list[Path]:
    """Write ``<name>.yaml`` (or ``.py``) and ``<name>.cases.yaml`` into ``directory``; never overwrite."""
    if not _NAME.match(name):
        raise BadInputError(f"rule name {name!r} must be lower-case words joined by '-' (e.g. my-drops)")
    directory = Path(directory)
    rule_path = directory / (name + (PYTHON_SUFFIX if python else YAML_SUFFIX))
    cases_path = directory / (name + CASES_SUFFIX)
    for path in (rule_path, cases_path):
        if path.exists():
            raise BadInputError("already exists; choose another name or remove it", path)
    values = {"id": name, "file": rule_path.name, "cases": cases_path.name, "rule": rule_path.name,
              "kinds": kinds_comment()}
    directory.mkdir(parents=True, exist_ok=True)
    rule_path.write_text((PYTHON_TEMPLATE if python else YAML_TEMPLATE).substitute(values), encoding="utf-8")
    cases_path.write_text((PYTHON_CASES if python else YAML_CASES).substitute(values), encoding="utf-8")
    return [rule_path, cases_path]
