"""A plain-Python evaluator of conditions: the independent answer the engine is checked against.

It reads the checked condition tree (before the compiler rewrites it) and enumerates, for a set
of facts, every tuple of facts that satisfies it. Its semantics are the ones the rule format
promises, written as directly as possible:

- the positive patterns bind distinct facts (no fact appears twice in one match);
- a test of a field that is empty (``None``, not given to the engine) is false, except ``$nex``;
- a negated pattern holds when no fact other than the match's own facts satisfies it;
- text is compared as durable_rules sees it: the JSON text Python's ``json.dumps`` sends it, so
  a quote, a backslash or a control character compares by its escaped form;
- regular expressions must match the whole value (``re.fullmatch``, ASCII case folding for $imt).

It is slow (it tries every combination) and meant for the small fact sets of the tests.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator
from typing import Any

from diag.engine.conditions import Arith, Condition, Expr, Pattern, Ref, Test

Fact = dict[str, Any]  # the engine's view of a fact: scalar fields, empty ones left out, and its "id"

_COMPARE = {"eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "lte": operator.le,
            "gt": operator.gt, "gte": operator.ge}
_ARITHMETIC = {"$add": operator.add, "$sub": operator.sub, "$mul": operator.mul}
_MISSING = object()


def expected_matches(condition: Condition, facts: list[Fact]) -> set[tuple[str, ...]]:
    """The fact ids of every match, one tuple per match, in the order of the positive aliases."""
    found = set()
    for binding in _bindings(condition.positive, facts, {}):
        bound = {id(f) for f in binding.values()}
        if all(not _exists(p, facts, binding, bound) for p in condition.negated):
            found.add(tuple(str(binding[p.alias]["id"]) for p in condition.positive))
    return found


def _bindings(patterns: list[Pattern], facts: list[Fact], binding: dict[str, Fact]) -> Iterator[dict[str, Fact]]:
    if not patterns:
        yield dict(binding)
        return
    first, rest = patterns[0], patterns[1:]
    used = {id(f) for f in binding.values()}
    for fact in facts:
        if id(fact) not in used and satisfies(first.expr, fact, binding):
            binding[first.alias] = fact
            yield from _bindings(rest, facts, binding)
            del binding[first.alias]


def _exists(pattern: Pattern, facts: list[Fact], binding: dict[str, Fact], bound: set[int]) -> bool:
    return any(id(f) not in bound and satisfies(pattern.expr, f, binding) for f in facts)


def satisfies(expr: Expr, fact: Fact, binding: dict[str, Fact]) -> bool:
    if isinstance(expr, Test):
        return _test(expr, fact, binding)
    results = (satisfies(item, fact, binding) for item in expr.items)
    return all(results) if expr.op == "and" else any(results)


def _test(test: Test, fact: Fact, binding: dict[str, Fact]) -> bool:
    value = fact.get(test.field, _MISSING)
    if test.op in ("ex", "nex"):
        return (value is not _MISSING) == (test.op == "ex")
    if value is _MISSING:
        return False
    if test.op in ("mt", "imt"):
        flags = re.IGNORECASE | re.ASCII if test.op == "imt" else 0
        return re.fullmatch(test.operand, engine_text(value), flags) is not None
    other = _operand(test.operand, binding)
    if other is _MISSING:
        return False
    return bool(_COMPARE[test.op](_engine_value(value), _engine_value(other)))


def _operand(operand: Any, binding: dict[str, Fact]) -> Any:
    if isinstance(operand, Ref):
        return binding[operand.alias].get(operand.field, _MISSING)
    if isinstance(operand, Arith):
        left, right = _operand(operand.left, binding), _operand(operand.right, binding)
        if left is _MISSING or right is _MISSING:
            return _MISSING
        return _ARITHMETIC[operand.op](left, right)
    return operand


def _engine_value(value: Any) -> Any:
    return engine_text(value) if isinstance(value, str) else value


def engine_text(text: str) -> str:
    """``text`` as durable_rules stores it: the inside of its JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]
