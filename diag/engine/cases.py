"""A rule's own tests: ``<id>.cases.yaml`` beside the rule, run through the real engine.

::

    rule: vlan-drops
    match:                    # each case's facts must make the rule fire
      - name: an unauthorized VLAN
        matches: 1            # optional: exactly this many distinct matches
        facts:
          - {kind: pktmon_drop, component_id: 3, ..., reason_code: 10, count: 7}
    no_match:                 # each case's facts must not make it fire
      - name: a MAC spoofing drop is not a VLAN drop
        facts: [...]

Every case is also checked with the reference evaluator, and the engine's matches must equal
the reference's exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from diag.engine.differential import comparable
from diag.engine.reference import expected_matches
from diag.engine.rules import CASES_SUFFIX, Rule
from diag.engine.runner import run_sessions
from diag.engine.source import DocPath, RuleFileError, load_yaml
from diag.facts.models import FACT_MODELS

EXPECTATIONS = ("match", "no_match")


@dataclass(frozen=True)
class Case:
    rule_id: str
    expect: Literal["match", "no_match"]
    name: str
    facts: list[BaseModel]
    matches: int | None  # exact number of distinct matches, when the case says
    path: Path
    line: int | None

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)


@dataclass
class CaseResult:
    case: Case
    engine: set[tuple[str, ...]] = field(default_factory=set)
    reference: set[tuple[str, ...]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def cases_path(rule: Rule) -> Path:
    return rule.path.with_name(rule.id + CASES_SUFFIX)


def load_cases(path: Path, rule_id: str) -> list[Case]:
    """The cases of one file; raises ``RuleFileError`` with the line of the first problem."""
    document = load_yaml(path)
    try:
        return _cases_from(document.data, path, rule_id, document.position)
    except RuleFileError as exc:
        raise exc.located(document) from None


def _cases_from(data: Any, path: Path, rule_id: str, position: Any) -> list[Case]:
    if not isinstance(data, dict):
        raise RuleFileError("a cases file is a mapping of rule, match and no_match")
    unknown = sorted(str(k) for k in data if k not in ("rule", *EXPECTATIONS))
    if unknown:
        raise RuleFileError(f"unknown key {unknown[0]!r} (allowed: rule, match, no_match)", (unknown[0],))
    if data.get("rule") != rule_id:
        raise RuleFileError(f"rule: must be {rule_id!r}, the rule these cases test", ("rule",))
    cases = []
    for expect in EXPECTATIONS:
        items = data.get(expect) or []
        if not isinstance(items, list):
            raise RuleFileError("must be a list of cases", (expect,))
        for index, item in enumerate(items):
            where = (expect, index)
            cases.append(_case(item, where, rule_id, expect, path, position(where)[0]))  # type: ignore[arg-type]
    return cases


def _case(item: Any, where: DocPath, rule_id: str, expect: Literal["match", "no_match"], path: Path,
          line: int | None) -> Case:
    if not isinstance(item, dict):
        raise RuleFileError("a case is a mapping of name, facts (and matches)", where)
    allowed = {"name", "facts", "matches"} if expect == "match" else {"name", "facts"}
    unknown = sorted(str(k) for k in item if k not in allowed)
    if unknown:
        raise RuleFileError(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})", (*where, unknown[0]))
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise RuleFileError("every case has a name", (*where, "name"))
    matches = item.get("matches")
    if matches is not None and (not isinstance(matches, int) or isinstance(matches, bool) or matches < 1):
        raise RuleFileError("matches: a number of matches, at least 1", (*where, "matches"))
    facts = item.get("facts")
    if not isinstance(facts, list):
        raise RuleFileError("facts: a list of facts (may be empty)", (*where, "facts"))
    return Case(rule_id, expect, name, [_fact(f, (*where, "facts", i)) for i, f in enumerate(facts)], matches,
                path, line)


def _fact(item: Any, where: DocPath) -> BaseModel:
    if not isinstance(item, dict) or item.get("kind") not in FACT_MODELS:
        known = ", ".join(sorted(FACT_MODELS))
        raise RuleFileError(f"a fact is a mapping with a kind ({known})", where)
    try:
        return FACT_MODELS[item["kind"]].model_validate(item)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise RuleFileError(f"not a valid {item['kind']} fact: {first['msg']}", (*where, *first["loc"])) from None


def run_cases(rules: list[Rule], cases: list[Case], timeout: float | None = None) -> list[CaseResult]:
    """Run every case through the engine (one session each, all in one worker) and judge it."""
    by_id = {r.id: r for r in rules}
    sessions, run = run_sessions(rules, [c.facts for c in cases], timeout)
    results = []
    for case, session, outcome in zip(cases, sessions, run.sessions):
        rule = by_id[case.rule_id]
        facts, fired = comparable(session, set(outcome.matches.get(rule.id, {})))
        result = CaseResult(case, fired, expected_matches(rule.condition, facts))
        result.problems = _judge(case, result) + [f"engine error: {e}" for e in outcome.errors]
        if rule.id in run.failures:
            result.problems.append(f"the rule failed: {'; '.join(run.failures[rule.id]['messages'])}")
        results.append(result)
    return results


def _judge(case: Case, result: CaseResult) -> list[str]:
    problems = []
    fired = len(result.engine)
    if case.expect == "match" and not fired:
        problems.append("the rule did not fire")
    if case.expect == "no_match" and fired:
        problems.append(f"the rule fired ({fired} match(es))")
    if case.matches is not None and fired != case.matches:
        problems.append(f"{fired} match(es), the case expects {case.matches}")
    if result.engine != result.reference:
        problems.append(f"the engine disagrees with the reference evaluator: missed "
                        f"{len(result.reference - result.engine)}, extra {len(result.engine - result.reference)}")
    return problems
