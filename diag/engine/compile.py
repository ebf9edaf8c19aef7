"""A checked condition -> durable_rules rules in forms the stock 2.0.28 core evaluates correctly.

- ``$or`` never reaches the engine. Each pattern is rewritten as an OR of plain conjunctions
  (disjunctive normal form). A positive pattern with k alternatives becomes k durable rules (one
  per combination across patterns); the runner deduplicates their matches by (rule, fact ids). A
  negated pattern "no fact such that A or B" becomes two negated patterns, "no A" and "no B".
  (A nested group inside a join makes the core skip the remaining alternatives; an OR at the
  alpha level fires twice for a fact that meets both branches.)
- A rule with a negated pattern gets the gate pattern first: the gate fact is asserted after all
  data, so the negation is decided once, over the complete data.
- Negated patterns go last, so they never match a fact the match itself uses (the core excludes
  the facts bound before the negation).
- Every conjunction that compares with other facts ends with an always-true comparison,
  ``_one == <alias>._one`` (every fact the engine gets carries ``_one: 1``). The core's
  ``reduceExpressionSequence`` reads past the end of the expression array whenever an AND fails
  on its LAST term; depending on the heap that is a wrong skip or a SIGSEGV (it crashed the
  worker on the `rules new --python` template). With the anchor last, an AND can only fail on
  an earlier term, where the skip stays inside the array.
- Limits are checked here, on what the core will actually see: at most 16 patterns per rule
  (``MAX_MESSAGE_FRAMES``, else error 304 in the middle of an assert) and at most 28 join tests
  per pattern (``MAX_SEQUENCE_EXPRESSIONS`` 32: 31 usable, less the group markers and the
  anchor, else error 113).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from diag.engine.conditions import GATE_KIND, Condition, Expr, Test, references
from diag.engine.source import RuleFileError

MAX_PATTERNS = 16
MAX_JOIN_TESTS = 28
ANCHOR_FIELD = "_one"  # pydantic models cannot have a field starting with "_": no clash
MAX_VARIANTS = 64  # durable rules one rule may expand into
GATE_ALIAS = "_gate"  # user aliases start with a letter, so these cannot collide
NEGATION_ALIAS = "_not{}"


@dataclass(frozen=True)
class DurableRule:
    """One rule as durable_rules receives it; ``name`` is ``<rule id>#<variant>``."""

    name: str
    all: list[dict[str, Any]]


def compile_condition(rule_id: str, condition: Condition) -> list[DurableRule]:
    """The durable rules for ``condition``; raises ``RuleFileError`` when a limit is exceeded."""
    positives = [(p.alias, _conjunctions(p.expr)) for p in condition.positive]
    negations = [conj for p in condition.negated for conj in _conjunctions(p.expr)]
    variants = 1
    for _, alternatives in positives:
        variants *= len(alternatives)
    if variants > MAX_VARIANTS:
        raise RuleFileError(f"the alternatives ($or, and words such as direction: in, which stand for several "
                            f"values) multiply into {variants} combinations; at most {MAX_VARIANTS} are allowed: "
                            "split the rule", condition.where)
    gate = [{GATE_ALIAS: {"kind": GATE_KIND}}] if negations else []
    count = len(gate) + len(positives) + len(negations)
    if count > MAX_PATTERNS:
        raise RuleFileError(f"the rule has {count} patterns once each alternative ($or) of a negated pattern is "
                            f"counted as a pattern of its own (and one more for the negation); at most {MAX_PATTERNS} "
                            "are allowed", condition.where)
    tail = [{NEGATION_ALIAS.format(i) + "$not": _durable(conj)} for i, conj in enumerate(negations)]
    rules = []
    for number, choice in enumerate(itertools.product(*(alternatives for _, alternatives in positives))):
        body = [{alias: _durable(conj)} for (alias, _), conj in zip(positives, choice)]
        rules.append(DurableRule(f"{rule_id}#{number}", gate + body + tail))
    return rules


def _conjunctions(expr: Expr) -> list[tuple[Test, ...]]:
    """``expr`` in disjunctive normal form: the alternatives, each a conjunction of tests."""
    alternatives = [_deduplicated(conj) for conj in _dnf(expr)]
    for conj in alternatives:
        joins = [t for t in conj if t.is_join]
        if len(joins) > MAX_JOIN_TESTS:
            raise RuleFileError(f"{len(joins)} tests compare with other facts in one pattern; at most "
                                f"{MAX_JOIN_TESTS} are allowed", joins[MAX_JOIN_TESTS].where)
    return alternatives


def _dnf(expr: Expr) -> list[tuple[Test, ...]]:
    if isinstance(expr, Test):
        return [(expr,)]
    parts = [_dnf(item) for item in expr.items]
    if expr.op == "or":
        return [conj for part in parts for conj in part]
    if _product_size(parts) > MAX_VARIANTS:
        raise RuleFileError(f"the alternatives ($or, and words that stand for several values) multiply into more "
                            f"than {MAX_VARIANTS} combinations; split the rule", expr.where)
    return [tuple(t for conj in combo for t in conj) for combo in itertools.product(*parts)]


def _product_size(parts: list[list[Any]]) -> int:
    size = 1
    for part in parts:
        size *= len(part)
    return size


def _deduplicated(conj: tuple[Test, ...]) -> tuple[Test, ...]:
    """The kind test first, then the others in order, each distinct test once."""
    seen: set[str] = set()
    ordered = sorted(conj, key=lambda t: t.field != "kind")
    out = []
    for test in ordered:
        key = repr(test.durable())
        if key not in seen:
            seen.add(key)
            out.append(test)
    return tuple(out)


def _durable(conj: tuple[Test, ...]) -> dict[str, Any]:
    tests = [t.durable() for t in conj]
    joins = [t for t in conj if t.is_join]
    if joins:
        anchor_alias = references(joins[0].operand)[0].alias
        tests.append({ANCHOR_FIELD: {anchor_alias: ANCHOR_FIELD}})
    return tests[0] if len(tests) == 1 else {"$and": tests}
