"""``wnvdiag rules new NAME``: a commented rule template and its test cases, ready to edit.

The templates load, and their cases pass, exactly as written (a test makes sure).
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

from diag.engine.conditions import field_types
from diag.engine.rules import CASES_SUFFIX, PYTHON_SUFFIX, YAML_SUFFIX
from diag.engine.vocabulary import vocabulary
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

# when: patterns over facts, all of which must hold (rules/README.md of wnvdiag walks through
# four rules; rules/FACTS.md lists every kind and field). A pattern is `alias: {tests}` on one
# fact kind. Tests: `field: value` (equal), `$$gt/$$gte/$$lt/$$lte/$$neq: {field: value}`,
# `$$ex/$$nex: {field: 1}` (set / empty), `$$mt/$$imt: {field: regex}` (whole value; $$imt ignores
# case), `$$or: [{tests}, {tests}]`. A value may be `{alias: field}`: that field of the fact an
# EARLIER alias matched (a join), or of this pattern's own fact (`$$gt: {drops: {d: packets}}`).
# `alias$$not: {tests}` means "no other fact such that". direction is in, out or unknown on every
# kind (pktmon's Rx and Ingress are in, Tx and Egress out).
# An aggregate adds up facts: `g: {aggregate: {kind: pktmon_drop, group_by: [component_id],
# sum: count, window: 60s}, $$gt: {value: 100}}` (or count: facts, count_distinct: FIELD).
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
# match), {total[field]} (sum over the matches), {matches} (how many), {each[field]} (the
# distinct values of all matches) and {count[field]} (how many distinct values).
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


# ---------------------------------------------------------------------------------------------
# a rule started from a real finding


def new_rule_from_facts(name: str, directory: Path, facts: list[dict[str, Any]], origin: str) -> list[Path]:
    """Write a rule and its cases that start from real facts (the facts behind one evidence row of a stored
    finding, ``origin`` saying which): one pattern per fact, the first tested on one identifying field, the
    others joined to it by a field they share, every other field listed in a comment with its value. The
    match case is those facts; the no_match case the same facts with the tested field changed."""
    if not _NAME.match(name):
        raise BadInputError(f"rule name {name!r} must be lower-case words joined by '-' (e.g. my-drops)")
    facts = [_as_model_fact(f) for f in facts]
    if not facts:
        raise BadInputError(f"{origin}: the finding names no fact to start from")
    directory = Path(directory)
    rule_path, cases_path = directory / (name + YAML_SUFFIX), directory / (name + CASES_SUFFIX)
    for path in (rule_path, cases_path):
        if path.exists():
            raise BadInputError("already exists; choose another name or remove it", path)
    aliases = [chr(ord("a") + i) for i in range(len(facts))]
    field, value = _identifying_test(facts[0])
    patterns = []
    for alias, fact in zip(aliases, facts):
        tests: dict[str, Any] = {"kind": fact["kind"]}
        if alias == "a":
            tests[field] = value
        else:
            shared = _shared_field(facts[0], fact)
            if shared:
                tests[shared] = {"a": shared}
        listed = [f"        # {n}: {_yaml(v)}" for n, v in fact.items()
                  if n != "kind" and n not in tests and n in field_types(fact["kind"]) and v is not None]
        patterns.append(f"    - {alias}:\n" + "".join(f"        {k}: {_yaml(v)}\n" for k, v in tests.items())
                        + ("        # the other fields of this fact, as the finding had them:\n" if listed else "")
                        + "".join(line + "\n" for line in listed))
    first_fields = [n for n in field_types(facts[0]["kind"]) if n != "kind"][:6]
    rule_text = FROM_FINDING_TEMPLATE.substitute(
        id=name, file=rule_path.name, cases=cases_path.name, origin=origin, patterns="".join(patterns),
        field=field, evidence=", ".join(first_fields), kind=facts[0]["kind"])
    changed = dict(facts[0])
    changed[field] = _other_value(facts[0]["kind"], field, value)
    cases_text = FROM_FINDING_CASES.substitute(
        id=name, origin=origin, field=field,
        match="".join(f"      - {_flow(f)}\n" for f in facts),
        no_match="".join(f"      - {_flow(f)}\n" for f in [changed, *facts[1:]]))
    directory.mkdir(parents=True, exist_ok=True)
    rule_path.write_text(rule_text, encoding="utf-8")
    cases_path.write_text(cases_text, encoding="utf-8")
    return [rule_path, cases_path]


FROM_FINDING_TEMPLATE = string.Template('''\
# A wnvdiag rule started from $origin.
# Check it with `wnvdiag rules lint $file`, test it with `wnvdiag rules test $file`
# (cases in $cases), and try it on a trace with `--trace TRACE.etl`.
# The rule format is in rules/README.md of wnvdiag (and `wnvdiag rules new NAME` writes a commented template).
id: $id
title: Say in one line what is wrong
status: experimental
severity: medium
confidence: low
description: >-
  What the rule looks for and why that is a problem.
impact: >-
  What the problem does to the workload.
remediation: >-
  What to check and what to change (Markdown).
references: []
tags: [custom]

when:
  all:
$patterns
finding:
  summary: "{matches} $kind fact(s) with this $field, e.g. {a[$field]}."
  evidence: [$evidence]
''')

FROM_FINDING_CASES = string.Template('''\
# Test cases of $id, from $origin: the facts as the finding had them fire the rule;
# the same facts with another $field must not.
rule: $id

match:
  - name: the facts of the finding
    facts:
$match
no_match:
  - name: another $field
    facts:
$no_match''')

_IDENTIFYING = ("reason_code", "outcome", "state", "status", "event_name", "protocol", "family")


def _as_model_fact(fact: dict[str, Any]) -> dict[str, Any]:
    kind = fact.get("kind")
    model = FACT_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise BadInputError(f"a fact of kind {kind!r} is not one wnvdiag's rules read")
    return {k: v for k, v in fact.items() if k in model.model_fields}


def _identifying_test(fact: dict[str, Any]) -> tuple[str, Any]:
    fields = field_types(fact["kind"])
    usable = {n: fact[n] for n in fields if n != "kind" and fact.get(n) is not None}
    for name in _IDENTIFYING:
        if name in usable:
            return name, usable[name]
    for name, value in usable.items():
        if vocabulary(fact["kind"], name) is not None:
            return name, value
    for name, value in usable.items():
        if fields[name].category == "str" and not fields[name].optional:
            return name, value
    name = next(iter(usable), "kind")
    return name, usable.get(name, fact["kind"])


def _shared_field(first: dict[str, Any], other: dict[str, Any]) -> str | None:
    mine, theirs = field_types(first["kind"]), field_types(other["kind"])
    for name in mine:
        if name != "kind" and name in theirs and not mine[name].optional and not theirs[name].optional \
                and first.get(name) is not None and first.get(name) == other.get(name):
            return name
    return None


def _other_value(kind: str, field: str, value: Any) -> Any:
    words = vocabulary(kind, field)
    if words is not None:
        return next((v for v in words.stored if words.lookup(v) != words.lookup(str(value))), value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1000
    return f"{value} (another)"


def _yaml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _flow(fact: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in fact.items() if v is not None and v != []) + "}"
