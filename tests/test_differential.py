"""The differential test: the real engine against the plain-Python reference evaluator.

Hypothesis generates fact sets from the pydantic models with small value domains (so joins
collide); the reference computes the exact matches every rule must have; the engine must have
exactly those: 0 missed, 0 extra, over at least 200 sets per rule.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from diag.engine import load_rule, load_rules
from diag.engine.compile import DurableRule
from diag.engine.differential import (
    compare_with_reference,
    generate_fact_sets,
    regex_samples,
)

ROOT = Path(__file__).resolve().parent.parent
SETS = 200


def assert_exact(comparisons):
    report = [f"{c.rule_id}: {c.sets} sets, {c.expected} expected, {c.fired} fired, {c.missed} missed, "
              f"{c.extra} extra, errors {c.errors[:2]}, smallest failing set {c.example}"
              for c in comparisons if not c.passed]
    assert report == []
    assert all(c.sets >= SETS for c in comparisons)


def test_every_shipped_rule_matches_the_reference_exactly():
    rules, errors = load_rules([ROOT / "rules"])
    assert not errors
    comparisons = compare_with_reference(rules, SETS)
    assert_exact(comparisons)
    assert all(c.expected > 0 for c in comparisons), "a rule never fired on its generated sets: widen the domains"


def test_the_reproducers_shapes_match_the_reference_exactly():
    # equality and not-equal joins, a nested OR inside a join, negation with and without OR,
    # three patterns, text, regular expressions, times, arithmetic and an action (a Python rule)
    rules, errors = load_rules([ROOT / "tests" / "rules" / "shapes"])
    assert not errors and len(rules) == 7
    assert_exact(compare_with_reference(rules, SETS))


def test_the_harness_catches_the_engine_bugs_the_compiler_avoids():
    # Give durable_rules what the compiler never sends it: the nested OR inside the join as
    # written, and the negation without its gate. The comparison must see the losses.
    nested = load_rule(ROOT / "tests" / "rules" / "shapes" / "nested-or-join.yaml")
    raw_or = [{"a": {"kind": "pktmon_drop"}},
              {"b": {"$and": [{"kind": "pktmon_drop"},
                              {"$or": [{"$and": [{"component_id": {"a": "component_id"}},
                                                 {"reason_code": {"a": "reason_code"}}]},
                                       {"count": {"a": "count"}}]}]}}]
    negation = load_rule(ROOT / "tests" / "rules" / "shapes" / "negation.yaml")
    ungated = negation.engine_rules[0].all[1:]
    broken = [dataclasses.replace(nested, engine_rules=(DurableRule("nested-or-join#0", raw_or),)),
              dataclasses.replace(negation, engine_rules=(DurableRule("negation#0", ungated),))]
    by_id = {c.rule_id: c for c in compare_with_reference(broken, SETS)}
    assert by_id["nested-or-join"].missed > 0 and by_id["nested-or-join"].example["missed"]
    assert by_id["negation"].extra > 0


def test_generated_sets_are_reproducible_and_varied():
    rule = load_rule(ROOT / "rules" / "same-drop-reason-on-several-components.yaml")
    first, again = generate_fact_sets(rule, 50, seed=3), generate_fact_sets(rule, 50, seed=3)
    assert first == again
    assert len({len(s) for s in first}) > 5


@pytest.mark.parametrize("pattern", ["vm(sw|nic)[0-9]+", "mac.*", "a{2,3}b?", "[a-c]x|y"])
def test_regex_samples_are_accepted_by_their_pattern(pattern):
    import re

    assert any(re.fullmatch(pattern, s) for s in regex_samples(pattern))


def test_without_hypothesis_a_seeded_generator_draws_from_the_same_domains(monkeypatch):
    from diag.engine import differential

    def no_hypothesis(*args):
        raise ImportError("hypothesis is not installed")

    monkeypatch.setattr(differential, "_hypothesis_sets", no_hypothesis)
    rule = load_rule(ROOT / "rules" / "vlan-drops.yaml")
    sets = generate_fact_sets(rule, 100, seed=5)
    assert len(sets) == 100 and sets == generate_fact_sets(rule, 100, seed=5)
    allowed = differential.domains(rule)["pktmon_drop"]["reason_code"]
    assert {f.reason_code for s in sets for f in s} <= set(allowed)
    (comparison,) = compare_with_reference([rule], 100)
    assert comparison.passed and comparison.sets == 100
