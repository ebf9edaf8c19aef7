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

- an aggregate pattern reads the groups of its facts, computed here from the plain facts by
  trying every window (not as ``diag.engine.aggregate`` does it); a match is told by the group's
  content (``match_key``), since the two computations give their results different ids.

It is slow (it tries every combination) and meant for the small fact sets of the tests.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator
from typing import Any

from datetime import datetime

from diag.engine.aggregate import AggregateSpec
from diag.engine.conditions import Arith, Condition, Expr, Own, Pattern, Ref, Test, engine_json

Fact = dict[str, Any]  # the engine's view of a fact: scalar fields, empty ones left out, and its "id"

_COMPARE = {"eq": operator.eq, "neq": operator.ne, "lt": operator.lt, "lte": operator.le,
            "gt": operator.gt, "gte": operator.ge}
_ARITHMETIC = {"$add": operator.add, "$sub": operator.sub, "$mul": operator.mul}
_MISSING = object()


def expected_matches(condition: Condition, facts: list[Fact]) -> set[tuple[str, ...]]:
    """Every match, one tuple per match, in the order of the positive aliases: the fact's id, or for an
    aggregate its ``match_key``. ``facts`` are the plain facts (no derived ones: they are computed here)."""
    facts = [f for f in facts if f.get("kind") != "aggregate"]
    seen: set[str] = set()
    for spec in condition.aggregates:
        if spec.key not in seen:
            seen.add(spec.key)
            facts = facts + aggregate_facts(spec, facts)
    found = set()
    for binding in _bindings(condition.positive, facts, {}):
        bound = {id(f) for f in binding.values()}
        if all(not _exists(p, facts, binding, bound) for p in condition.negated):
            found.add(tuple(str(binding[p.alias]["id"]) for p in condition.positive))
    return found


def match_key(fact: Fact) -> str:
    """What tells a derived fact: its whole content but the engine's own fields."""
    content = {k: v for k, v in fact.items() if k not in ("id", "sid", "_one")}
    return "aggregate:" + json.dumps(content, sort_keys=True)


def aggregate_facts(spec: AggregateSpec, facts: list[Fact]) -> list[Fact]:
    """The groups of ``spec`` over plain facts, each as the engine would see it, its id its ``match_key``."""
    groups: dict[str, list[Fact]] = {}
    for fact in facts:
        if fact.get("kind") == spec.kind and (spec.where is None or satisfies(spec.where, fact, {})):
            groups.setdefault(json.dumps([fact.get(g) for g in spec.group_by]), []).append(fact)
    out = []
    for members in groups.values():
        chosen, untimed = members, 0
        if spec.window is not None:
            timed = [f for f in members if _when(f.get(spec.time)) is not None]
            untimed = len(members) - len(timed)
            if not timed:
                continue
            windows = [[b for b in timed if 0 <= (_when(b[spec.time]) - _when(a[spec.time])).total_seconds()
                        <= spec.window] for a in timed]
            best = max(_result(spec, w) for w in windows)
            chosen = min((w for w in windows if _result(spec, w) == best),
                         key=lambda w: min(_when(f[spec.time]) for f in w))
        fact: Fact = {name: members[0][name] for name in spec.group_by if members[0].get(name) is not None}
        fact.update(kind="aggregate", aggregate=spec.key, value=_result(spec, chosen), facts=len(chosen),
                    untimed=untimed)
        field = spec.time or "first_seen"
        timed = [f for f in chosen if _when(f.get(field)) is not None]
        if timed:  # the times as the facts give them (the engine's text)
            fact["first_seen"] = min(timed, key=lambda f: _when(f[field]))[field]
            fact["last_seen"] = max(timed, key=lambda f: _when(f[field]))[field]
        fact["id"] = match_key(fact)
        out.append(fact)
    return out


def _result(spec: AggregateSpec, members: list[Fact]) -> Any:
    if spec.function == "count":
        return len(members)
    present = [f[spec.field] for f in members if spec.field in f]
    return len(set(present)) if spec.function == "count_distinct" else sum(present)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


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
    other = _operand(test.operand, binding, fact)
    if other is _MISSING:
        return False
    return bool(_COMPARE[test.op](_engine_value(value), _engine_value(other)))


def _operand(operand: Any, binding: dict[str, Fact], fact: Fact) -> Any:
    if isinstance(operand, Ref):
        return binding[operand.alias].get(operand.field, _MISSING)
    if isinstance(operand, Own):
        return fact.get(operand.field, _MISSING)
    if isinstance(operand, Arith):
        left, right = _operand(operand.left, binding, fact), _operand(operand.right, binding, fact)
        if left is _MISSING or right is _MISSING:
            return _MISSING
        return _ARITHMETIC[operand.op](left, right)
    return operand


def _engine_value(value: Any) -> Any:
    return engine_text(value) if isinstance(value, str) else value


engine_text = engine_json  # text as durable_rules stores it: the inside of its JSON string
