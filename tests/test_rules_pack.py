"""The shipped rules pack: every rule loads, lints clean, and passes its own cases in the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from diag.engine import load_rules
from diag.engine.cases import load_cases, run_cases
from diag.engine.lint import lint

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
RULES, LOAD_ERRORS = load_rules([RULES_DIR])


def test_the_pack_loads_and_lints_clean():
    assert not LOAD_ERRORS
    assert len(RULES) >= 5
    assert [str(i) for i in lint([RULES_DIR]) if i.severity == "error"] == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_every_rule_has_positive_and_negative_cases(rule):
    cases = load_cases(rule.cases_path, rule.id)
    assert any(c.expect == "match" for c in cases), f"{rule.id}: no case that fires it"
    assert any(c.expect == "no_match" for c in cases), f"{rule.id}: no case that must not fire it"


def test_every_case_passes_in_the_engine_and_the_reference():
    cases = [c for rule in RULES for c in load_cases(rule.cases_path, rule.id)]
    failed = [f"{r.case.location}: {r.case.rule_id} {r.case.name!r}: {r.problems}" for r in run_cases(RULES, cases)
              if not r.passed]
    assert failed == []
