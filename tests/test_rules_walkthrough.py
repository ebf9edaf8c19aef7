"""rules/README.md: its example rules work as written, and FACTS.md is the generated reference."""

from __future__ import annotations

import re
from pathlib import Path

from diag.engine.factsdoc import render
from diag.engine.lint import lint
from diag.engine.selftest import test_rules as run_rule_tests
from diag.facts.models import FACT_MODELS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "rules" / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- file: (?P<name>[^ ]+) -->\n```(?:yaml|python)\n(?P<body>.*?)```", re.S)


def test_the_walkthrough_rules_lint_clean_and_pass_their_tests(tmp_path):
    files = {m["name"]: m["body"] for m in BLOCK.finditer(README)}
    assert len(files) == 8  # four rules, each with its cases
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    assert [str(i) for i in lint([tmp_path])] == []
    report = run_rule_tests([tmp_path], sets_per_rule=100)
    assert report.passed, [(c.case.name, c.problems) for c in report.cases if not c.passed] + \
        [(c.rule_id, c.missed, c.extra, c.errors[:1]) for c in report.comparisons if not c.passed]
    assert len(report.rules) == 4 and len(report.cases) == 10
    assert {r.id for r in report.rules if r.condition.aggregates} == {"vlan-drops-per-component", "drop-reasons-burst"}
    assert any(spec.window for r in report.rules for spec in r.condition.aggregates)


def test_the_facts_reference_is_generated_and_names_every_kind():
    published = (ROOT / "rules" / "FACTS.md").read_text(encoding="utf-8")
    assert published == render(), "regenerate: python -m diag.engine.factsdoc > rules/FACTS.md"
    for kind in FACT_MODELS:
        assert f"\n## {kind}\n" in published
