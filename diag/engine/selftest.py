"""``wnvdiag rules test``: the rules' own cases and the differential test, for any rule files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from diag.engine.cases import Case, CaseResult, load_cases, run_cases
from diag.engine.differential import RuleComparison, compare_with_reference
from diag.engine.lint import expand
from pydantic import BaseModel

from diag.engine.rules import Rule, load_rule, rule_error, rule_stem
from diag.engine.runner import EngineResult, as_limits, run_loaded_rules
from diag.engine.source import RuleFileError
from diag.facts.models import RuleError


@dataclass
class RulesTestReport:
    rules: list[Rule] = field(default_factory=list)
    load_errors: list[RuleError] = field(default_factory=list)  # rule and case files that did not load
    cases: list[CaseResult] = field(default_factory=list)
    comparisons: list[RuleComparison] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (not self.load_errors and bool(self.rules) and all(c.passed for c in self.cases)
                and all(c.passed for c in self.comparisons))


def test_rules(paths: Sequence[Path], sets_per_rule: int = 200, seed: int = 0,
               timeout: float | None = None, phase: Callable[[str], None] | None = None) -> RulesTestReport:
    """Load the rules at ``paths`` (files or directories), run their cases and the differential test.
    ``phase(text)`` is told each phase as it starts."""
    phase = phase or (lambda _text: None)
    report = RulesTestReport()
    phase("loading the rules")
    for path in expand(paths):
        try:
            report.rules.append(load_rule(path))
        except RuleFileError as exc:
            report.load_errors.append(rule_error(rule_stem(path), path, exc))
    if not report.rules:
        return report
    cases = _cases(report)
    phase(f"running {len(cases)} case(s) of {len(report.rules)} rule(s)")
    report.cases = run_cases(report.rules, cases, timeout) if cases else []
    report.comparisons = compare_with_reference(report.rules, sets_per_rule, seed, timeout, phase)
    return report


def run_on_facts(rules: list[Rule], facts: Sequence[BaseModel], timeout: float | None = None) -> EngineResult:
    """The rules on real facts (a trace's), in a worker as ``check`` runs them; nothing is stored."""
    return run_loaded_rules(rules, facts, as_limits(timeout))


test_rules.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def _cases(report: RulesTestReport) -> list[Case]:
    cases: list[Case] = []
    for rule in report.rules:
        if not rule.cases_path.is_file():
            report.load_errors.append(RuleError(rule_id=rule.id, file=str(rule.path),
                                                message=f"no test cases ({rule.cases_path.name})"))
            continue
        try:
            loaded = load_cases(rule.cases_path, rule.id)
        except RuleFileError as exc:
            report.load_errors.append(rule_error(rule.id, rule.cases_path, exc))
            continue
        for expect in ("match", "no_match"):
            if not any(c.expect == expect for c in loaded):
                report.load_errors.append(RuleError(rule_id=rule.id, file=str(rule.cases_path),
                                                    message=f"no '{expect}' case"))
        cases += loaded
    return cases
