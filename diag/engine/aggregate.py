"""Aggregates: facts of one kind grouped by fields, counted or summed, optionally in a time window.

A pattern may read an aggregate instead of a fact (in the manner of Sigma's correlation rules)::

    - g:
        aggregate:
          kind: pktmon_drop                 # the facts to aggregate
          where: {reason_code: 9}           # optional: tests on each fact
          group_by: [component_id]          # one result per distinct value (tuple) of these
          sum: count                        # or count_distinct: FIELD, or count: facts
          window: 60s                       # optional: the busiest window of this length
          time: first_seen                  # optional: the time field the window reads
        $gt: {value: 100}                   # tests on the result, as on any fact

Aggregates are computed here, before the engine, as derived facts of kind ``aggregate``, one per
group: the group's fields, ``value`` (the count or sum), ``facts`` (how many facts it took),
``first_seen`` and ``last_seen`` (of those facts) and ``untimed`` (facts of the group with no time,
left out of a windowed aggregate). With a window, ``value`` is the largest over every window of
that length: the facts whose time is at most ``window`` after the window's first fact. The engine
then matches the derived facts like any other: the threshold is an ordinary test, and the pattern
can join other facts. Each derived fact carries ``aggregate``, a key of its specification, so a
rule sees only its own aggregates; two rules with the same specification share them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

KIND = "aggregate"
FUNCTIONS = ("count", "sum", "count_distinct")
RESULT_FIELDS = ("aggregate", "value", "facts", "first_seen", "last_seen", "untimed")
MAX_GROUP_FIELDS = 8

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class AggregateSpec:
    """A checked ``aggregate:`` block. ``where`` is a condition expression (``diag.engine.conditions``)."""

    kind: str
    where: Any  # Expr or None
    group_by: tuple[str, ...]
    function: Literal["count", "sum", "count_distinct"]
    field: str | None  # what sum / count_distinct read; None for count
    window: float | None  # seconds
    time: str | None  # the time field a window reads
    source: str  # the block as written, canonical JSON: the key and what `rules show` prints

    @property
    def key(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()[:12]

    def model(self) -> type[BaseModel]:
        return result_model(self)


def parse_duration(value: Any) -> float | None:
    """``60s``, ``5m``, ``1h``, ``500ms``, ``2d``, or a number of seconds; None if not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        found = _DURATION.match(value.strip())
        if found and float(found.group(1)) > 0:
            return float(found.group(1)) * _UNITS[found.group(2)]
    return None


def canonical(block: Any) -> str:
    return json.dumps(block, sort_keys=True, default=str, separators=(",", ":"))


@cache
def _result_model(kind: str, group: tuple[tuple[str, Any, bool], ...], value_type: Any) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "kind": (Literal["aggregate"], KIND),
        "aggregate": (str, ...),
    }
    for name, annotation, optional in group:
        fields[name] = (annotation, None) if optional else (annotation, ...)
    fields.update(value=(value_type, ...), facts=(int, ...), first_seen=(datetime | None, None),
                  last_seen=(datetime | None, None), untimed=(int, 0))
    return create_model(f"Aggregate_{kind}", __config__=ConfigDict(frozen=True, extra="forbid"), **fields)


def result_model(spec: AggregateSpec) -> type[BaseModel]:
    """The pydantic model of ``spec``'s derived facts (its fields are what a rule can test)."""
    from diag.facts.models import FACT_MODELS

    source = FACT_MODELS[spec.kind].model_fields
    group = tuple((name, source[name].annotation, not source[name].is_required()) for name in spec.group_by)
    if spec.function == "sum":
        annotation = source[spec.field].annotation  # type: ignore[index]
        value_type = float if float in (annotation, *getattr(annotation, "__args__", ())) else int
    else:
        value_type = int
    return _result_model(spec.kind, group, value_type)


# ---------------------------------------------------------------------------------------------
# computing them


Fact = dict[str, Any]  # a fact as the engine sees it: scalar fields that are set


def derive(spec: AggregateSpec, facts: Sequence[Fact], keep: Callable[[Fact], bool]) -> list[tuple[Fact, list[int]]]:
    """The derived facts of ``spec`` over ``facts`` (``keep`` says whether a fact passes ``where``), each with
    the positions of the facts it was computed from, in order of each group's first fact."""
    groups: dict[tuple, list[int]] = {}
    for position, fact in enumerate(facts):
        if fact.get("kind") == spec.kind and keep(fact):
            groups.setdefault(tuple(fact.get(name) for name in spec.group_by), []).append(position)
    out = []
    for values, members in groups.items():
        result = _reduce(spec, [facts[p] for p in members], members)
        if result is None:
            continue
        data, used = result
        data.update({name: value for name, value in zip(spec.group_by, values) if value is not None})
        data.update(kind=KIND, aggregate=spec.key)
        out.append((data, used))
    return out


def _reduce(spec: AggregateSpec, members: list[Fact], positions: list[int]) -> tuple[Fact, list[int]] | None:
    if spec.window is None:
        chosen = list(range(len(members)))
        untimed = 0
    else:
        timed = [(t, i) for i, t in ((i, _time(m.get(spec.time))) for i, m in enumerate(members))  # type: ignore[arg-type]
                 if t is not None]
        untimed = len(members) - len(timed)
        if not timed:
            return None
        chosen = _busiest(spec, members, sorted(timed))
    value = _value(spec, [members[i] for i in chosen])
    times = [t for t in (_time(members[i].get(spec.time or "first_seen")) for i in chosen) if t is not None]
    data: Fact = {"value": value, "facts": len(chosen), "untimed": untimed}
    if times:
        data["first_seen"], data["last_seen"] = min(times).isoformat(), max(times).isoformat()
    return data, [positions[i] for i in chosen]


def _busiest(spec: AggregateSpec, members: list[Fact], timed: list[tuple[datetime, int]]) -> list[int]:
    """The members of the window with the largest value (the earliest of equal ones): a window starts at a
    fact and holds every fact at most ``spec.window`` seconds later. Two pointers over the sorted times."""
    best: tuple[Any, list[int]] | None = None
    end = 0
    for start in range(len(timed)):
        while end < len(timed) and (timed[end][0] - timed[start][0]).total_seconds() <= spec.window:  # type: ignore[operator]
            end += 1
        window = [i for _, i in timed[start:end]]
        value = _value(spec, [members[i] for i in window])
        if best is None or value > best[0]:
            best = (value, window)
    assert best is not None
    return best[1]


def _value(spec: AggregateSpec, members: list[Fact]) -> Any:
    if spec.function == "count":
        return len(members)
    values = [m[spec.field] for m in members if m.get(spec.field) is not None]  # type: ignore[index]
    if spec.function == "count_distinct":
        return len(set(values))
    return sum(values)


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
