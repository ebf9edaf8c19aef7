"""The ``when:`` language: parsed into a small tree, checked against the fact models.

A condition is durable_rules' JSON pattern language (upstream ``docs/json/reference.md``) cut down
to what the stock 2.0.28 core evaluates correctly, and typed by the pydantic fact models::

    when:
      all:
        - a: {kind: pktmon_drop, direction: In}                    # alias: tests on one fact
        - b: {kind: pktmon_drop, component_id: {a: component_id},  # join: a field of an earlier alias
              $gt: {count: 100}}                                   # threshold
        - q$not: {kind: trace_quality, $gt: {events_lost: 0}}      # negation: no fact such that

The tree (``Test``, ``Group``, ``Pattern``, ``Condition``) is what the compiler
(``diag.engine.compile``) turns into durable_rules rules and what the reference evaluator
(``diag.engine.reference``) evaluates in plain Python; both start from the same checked tree.
"""

from __future__ import annotations

import json
import re
import types
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from diag.engine import aggregate as aggregates
from diag.engine.aggregate import AggregateSpec
from diag.engine.source import DocPath, RuleFileError
from diag.engine.vocabulary import Vocabulary, vocabulary
from diag.facts.models import FACT_MODELS, scalar_fields

with warnings.catch_warnings():  # deprecated names of the same modules; fine on 3.11 and 3.12
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants
    import sre_parse

GATE_KIND = "gate"
RESERVED_FIELDS = frozenset({"id", "sid"})
RESERVED_ALIASES = frozenset({"top", "total", "matches"})  # names the summary template uses

COMPARISONS = {"$lt": "lt", "$lte": "lte", "$gt": "gt", "$gte": "gte", "$neq": "neq"}
EXISTENCE = {"$ex": "ex", "$nex": "nex"}
REGEX = {"$mt": "mt", "$imt": "imt"}
GROUPS = {"$and": "and", "$or": "or"}
ARITHMETIC = ("$add", "$sub", "$mul")
DURABLE_OPERATOR = {v: k for k, v in {**COMPARISONS, **EXISTENCE, **REGEX}.items()}
REFUSED = {
    "$not": "write a negated pattern instead: an alias ending in $not",
    "$div": "division would round (3 / 2 == 1); multiply the other side instead",
    "$iall": "list fields (samples, hops) are kept with a fact for its evidence, but rules test single values",
    "$iany": "list fields (samples, hops) are kept with a fact for its evidence, but rules test single values",
    "$s": "a rule reads facts only",
}
OPERATORS_HELP = ("field: value, $neq, $lt, $lte, $gt, $gte, $ex, $nex, $mt, $imt, $or, $and (each as "
                  "{$gt: {field: value}})")
VALUES_HELP = ("a value is a number, text, true/false, {alias: field} (a field of this pattern's fact or of an "
               "earlier pattern's), or arithmetic: {$add|$sub|$mul: {$l: ..., $r: ...}}")
MAX_REGEX_REPEAT = 100  # durable_rules' regex MAX_INTERVAL

_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTERVAL = re.compile(r"\{(\d+)(?:,(\d+))?\}")

Category = Literal["number", "str", "bool"]


# ---------------------------------------------------------------------------------------------
# the tree


@dataclass(frozen=True)
class Ref:
    """A field of the fact bound to an earlier alias: ``{a: component_id}``."""

    alias: str
    field: str


@dataclass(frozen=True)
class Own:
    """Another field of the same fact: ``{d: packets}`` inside the pattern whose alias is ``d``."""

    field: str


@dataclass(frozen=True)
class Arith:
    """``{$mul: {$l: {a: count}, $r: 10}}``: arithmetic over numbers and references."""

    op: str  # $add | $sub | $mul
    left: Any  # number, Ref, Own or Arith
    right: Any


@dataclass(frozen=True)
class Test:
    """One test of a fact's field: ``op`` is eq, neq, lt, lte, gt, gte, ex, nex, mt or imt."""

    op: str
    field: str
    operand: Any  # a scalar, Ref, Own, Arith; None for ex/nex
    where: DocPath

    @property
    def is_join(self) -> bool:
        return bool(references(self.operand))

    def durable(self) -> dict[str, Any]:
        operand = _durable_operand(self.operand)
        if self.op == "eq":
            return {self.field: operand}
        if self.op in ("ex", "nex"):
            return {DURABLE_OPERATOR[self.op]: {self.field: 1}}
        return {DURABLE_OPERATOR[self.op]: {self.field: operand}}


@dataclass(frozen=True)
class Group:
    op: Literal["and", "or"]
    items: tuple[Expr, ...]
    where: DocPath


Expr = Union[Test, Group]


@dataclass(frozen=True)
class Pattern:
    alias: str
    negated: bool
    kind: str
    expr: Expr
    where: DocPath
    aggregate: AggregateSpec | None = None  # the pattern reads derived facts of this aggregate

    @property
    def fields(self) -> dict[str, FieldType]:
        return field_types(self.kind, self.aggregate)


@dataclass(frozen=True)
class Condition:
    patterns: tuple[Pattern, ...]
    where: DocPath

    @property
    def positive(self) -> list[Pattern]:
        return [p for p in self.patterns if not p.negated]

    @property
    def negated(self) -> list[Pattern]:
        return [p for p in self.patterns if p.negated]

    @property
    def aliases(self) -> list[str]:
        """The aliases whose facts a match reports, in order."""
        return [p.alias for p in self.positive]

    @property
    def kinds(self) -> dict[str, str]:
        return {p.alias: p.kind for p in self.positive}

    @property
    def aggregates(self) -> list[AggregateSpec]:
        return [p.aggregate for p in self.patterns if p.aggregate is not None]

    def fields(self, alias: str) -> dict[str, FieldType]:
        """The fields a rule can name on the facts bound to ``alias``."""
        return next(p for p in self.patterns if p.alias == alias).fields


def references(operand: Any) -> list[Ref]:
    if isinstance(operand, Ref):
        return [operand]
    if isinstance(operand, Arith):
        return references(operand.left) + references(operand.right)
    return []


def tests_of(expr: Expr) -> list[Test]:
    if isinstance(expr, Test):
        return [expr]
    return [t for item in expr.items for t in tests_of(item)]


def _durable_operand(operand: Any) -> Any:
    if isinstance(operand, Ref):
        return {operand.alias: operand.field}
    if isinstance(operand, Own):
        return {"$m": operand.field}
    if isinstance(operand, Arith):
        return {operand.op: {"$l": _durable_operand(operand.left), "$r": _durable_operand(operand.right)}}
    return operand


# ---------------------------------------------------------------------------------------------
# field types of the fact models


@dataclass(frozen=True)
class FieldType:
    category: Category
    optional: bool


def field_types(kind: str, aggregate: AggregateSpec | None = None) -> dict[str, FieldType]:
    """The fields a rule can test on facts of ``kind`` (or on the results of ``aggregate``): scalar fields
    with a usable type."""
    if kind == GATE_KIND:
        return {"kind": FieldType("str", False)}
    model = aggregate.model() if aggregate is not None else FACT_MODELS[kind]
    out = {}
    for name in scalar_fields(model):
        found = _field_type(model.model_fields[name].annotation)
        if found is not None:
            out[name] = found
    return out


def _field_type(annotation: Any) -> FieldType | None:
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        if len(args) != 1:
            return None
        annotation = args[0]
    category = _category(annotation)
    return None if category is None else FieldType(category, optional)


def _category(annotation: Any) -> Category | None:
    if get_origin(annotation) is Literal:
        values = get_args(annotation)
        return "str" if all(isinstance(v, str) for v in values) else None
    if annotation is bool:
        return "bool"
    if annotation in (int, float):
        return "number"
    if annotation in (str, datetime, date) or (isinstance(annotation, type) and issubclass(annotation, (str, Enum))):
        return "str"  # datetimes reach the engine as ISO-8601 text
    return None


def value_category(value: Any) -> Category | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


# ---------------------------------------------------------------------------------------------
# parsing


def parse_condition(when: Any, where: DocPath = ("when",), problems: list[RuleFileError] | None = None) -> Condition:
    """Parse and check a ``when:`` value; raises ``RuleFileError`` naming the offending part.

    With ``problems``, every problem found is appended there instead (a pattern with a problem is
    left out and the others are still checked), and the first is raised at the end."""
    collect: list[RuleFileError] = [] if problems is None else problems
    before = len(collect)
    items = _pattern_list(when, where)
    aliases: dict[str, Pattern] = {}  # positive patterns so far, by alias
    broken: set[str] = set()  # aliases of patterns with a problem: references to them are not checked
    seen: set[str] = set()
    patterns = []
    for index, item in enumerate(items):
        at = (*where, "all", index)
        try:
            pattern = _parse_pattern(item, at, aliases, seen, broken, collect)
        except RuleFileError as exc:
            collect.append(exc)
            alias = _alias_of(item)
            if alias:
                seen.add(alias)
                broken.add(alias)
            continue
        patterns.append(pattern)
        seen.add(pattern.alias)
        if not pattern.negated:
            aliases[pattern.alias] = pattern
    if len(collect) > before:
        raise collect[before]
    if not aliases:
        raise RuleFileError("at least one pattern must not be negated: a finding needs a fact to report", (*where, "all"))
    return Condition(tuple(patterns), where)


def _alias_of(item: Any) -> str | None:
    if isinstance(item, dict) and len(item) == 1:
        key = str(next(iter(item)))
        return key[: -len("$not")] if key.endswith("$not") else key
    return None


def _pattern_list(when: Any, where: DocPath) -> list[Any]:
    if not isinstance(when, dict):
        raise RuleFileError("must be a mapping with one key, all: [patterns]", where)
    if "any" in when:
        raise RuleFileError("'any' is not available: write one rule per alternative, or use $or inside a pattern",
                            (*where, "any"))
    for key in ("count", "cap", "pri", "dist"):
        if key in when:
            raise RuleFileError(f"'{key}' is not available: every match is reported; to count or sum facts, "
                                "write a pattern that reads an aggregate (aggregate: {kind: ..., group_by: ..., "
                                "sum: ...})", (*where, key))
    extra = sorted(str(k) for k in when if k != "all")
    if extra:
        raise RuleFileError(f"unknown key(s) {', '.join(extra)}; only 'all' is allowed", (*where, extra[0]))
    items = when.get("all")
    if not isinstance(items, list) or not items:
        raise RuleFileError("must be a non-empty list of patterns", (*where, "all"))
    return items


def _parse_pattern(item: Any, where: DocPath, aliases: dict[str, Pattern], seen: set[str], broken: set[str],
                   problems: list[RuleFileError]) -> Pattern:
    if not isinstance(item, dict) or len(item) != 1:
        raise RuleFileError("a pattern is a mapping with exactly one alias, e.g. {d: {kind: pktmon_drop}}", where)
    ((key, body),) = item.items()
    key = str(key)
    where = (*where, key)
    negated = key.endswith("$not")
    alias = key[: -len("$not")] if negated else key
    if not _ALIAS.match(alias):
        raise RuleFileError(f"alias {alias!r} must be a name (a letter, then letters, digits or '_')", where)
    if alias in RESERVED_ALIASES:
        raise RuleFileError(f"alias {alias!r} is reserved for the summary template", where)
    if alias in seen:
        raise RuleFileError(f"alias {alias!r} is used twice", where)
    spec = None
    if isinstance(body, dict) and "aggregate" in body:
        spec = _parse_aggregate(body["aggregate"], (*where, "aggregate"))
        body = {k: v for k, v in body.items() if k != "aggregate"}
        if "kind" in body:
            raise RuleFileError("a pattern reads either one kind of fact (kind:) or an aggregate (aggregate:), "
                                "not both; the aggregate names its kind inside", (*where, "kind"))
        kind_test = Test("eq", "kind", aggregates.KIND, (*where, "aggregate"))
        own = Test("eq", "aggregate", spec.key, (*where, "aggregate"))
        parts: list[Expr] = [kind_test, own] + ([_parse_expr(body, where, alias)] if body else [])
        expr: Expr = Group("and", tuple(_flatten("and", parts)), where)
        kind = aggregates.KIND
    else:
        expr = _parse_expr(body, where, alias)
        kind = _kind_of(expr, where)
    known = {a: p for a, p in aliases.items() if a not in broken}
    expr = _check_types(expr, kind, spec, alias, known, broken, problems)
    return Pattern(alias, negated, kind, expr, where, spec)


def _parse_expr(body: Any, where: DocPath, own: str | None) -> Expr:
    if not isinstance(body, dict) or not body:
        raise RuleFileError("must be a non-empty mapping of tests", where)
    parts = [_parse_entry(str(key), value, (*where, key), own) for key, value in body.items()]
    return parts[0] if len(parts) == 1 else Group("and", tuple(_flatten("and", parts)), where)


def _parse_entry(key: str, value: Any, where: DocPath, own: str | None) -> Expr:
    if key in GROUPS:
        if not isinstance(value, list) or not value:
            raise RuleFileError("must be a non-empty list of tests", where)
        items = [_parse_expr(item, (*where, i), own) for i, item in enumerate(value)]
        op = GROUPS[key]
        return items[0] if len(items) == 1 else Group(op, tuple(_flatten(op, items)), where)  # type: ignore[arg-type]
    if key in COMPARISONS or key in EXISTENCE or key in REGEX:
        return _parse_operator(key, value, where, own)
    if key == "aggregate":
        raise RuleFileError("aggregate: belongs at the top of a pattern, beside its tests", where)
    if key in REFUSED:
        raise RuleFileError(f"{key} is not available: {REFUSED[key]}", where)
    if key.startswith("$"):
        raise RuleFileError(f"unknown test {key}; the tests are: {OPERATORS_HELP}", where)
    return Test("eq", _field_name(key, where), _parse_operand(value, where, own), where)


def _flatten(op: str, items: list[Expr]) -> list[Expr]:
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, Group) and item.op == op else [item])
    return flat


def _parse_operator(key: str, value: Any, where: DocPath, own: str | None) -> Expr:
    if not isinstance(value, dict) or not value:
        raise RuleFileError(f"must map a field to a value, e.g. {{{key}: {{count: 0}}}}", where)
    tests = []
    for name, operand in value.items():
        at = (*where, name)
        name = _field_name(str(name), at)
        if key in EXISTENCE:
            if operand not in (1, True):
                raise RuleFileError(f"write {{{key}: {{{name}: 1}}}}", at)
            tests.append(Test(EXISTENCE[key], name, None, at))
        elif key in REGEX:
            tests.append(Test(REGEX[key], name, _regex(operand, at), at))
        else:
            tests.append(Test(COMPARISONS[key], name, _parse_operand(operand, at, own), at))
    return tests[0] if len(tests) == 1 else Group("and", tuple(tests), where)


def _field_name(name: str, where: DocPath) -> str:
    if name in RESERVED_FIELDS:
        raise RuleFileError(f"field {name!r} cannot be tested: it is the engine's identifier of a fact, not a fact "
                            "field (and tests on it give wrong answers); test the fact's own fields", where)
    if not _FIELD.match(name):
        raise RuleFileError(f"{name!r} is not a plain field name", where)
    return name


def _parse_operand(value: Any, where: DocPath, own: str | None) -> Any:
    if value is None:
        raise RuleFileError("null is not a value to compare with; test an empty field with {$nex: {field: 1}}", where)
    if isinstance(value, (list, tuple)):
        raise RuleFileError("a list is not a value; use $or for alternatives", where)
    if not isinstance(value, dict):
        if value_category(value) is None:
            raise RuleFileError(f"unsupported value {value!r}", where)
        return value
    if len(value) != 1:
        raise RuleFileError("a field of a fact is written {alias: field}, with one alias", where)
    ((key, inner),) = value.items()
    key = str(key)
    if key in ARITHMETIC:
        return _parse_arith(key, inner, (*where, key), own)
    if key == "$m":
        this = own or "d"
        raise RuleFileError(f"to compare with another field of the same fact, write {{{this}: field}}, with this "
                            "pattern's own alias", (*where, key))
    if key in REFUSED or key.startswith("$"):
        why = REFUSED.get(key, "")
        raise RuleFileError(f"{{{key}: ...}} is not a value{': ' + why if why else ''}; {VALUES_HELP}", (*where, key))
    if not isinstance(inner, str):
        raise RuleFileError("the field in {alias: field} must be a field name", (*where, key))
    field = _field_name(inner, (*where, key))
    return Own(field) if key == own else Ref(key, field)


def _parse_arith(op: str, value: Any, where: DocPath, own: str | None) -> Arith:
    if not isinstance(value, dict) or set(value) != {"$l", "$r"}:
        raise RuleFileError(f"write {{{op}: {{$l: ..., $r: ...}}}}", where)
    return Arith(op, _parse_operand(value["$l"], (*where, "$l"), own),
                 _parse_operand(value["$r"], (*where, "$r"), own))


def _parse_aggregate(block: Any, where: DocPath) -> AggregateSpec:
    """An ``aggregate:`` block (see ``diag.engine.aggregate``), checked against the fact models."""
    if not isinstance(block, dict):
        raise RuleFileError("an aggregate is a mapping: kind, group_by, and one of count, sum, count_distinct", where)
    allowed = {"kind", "where", "group_by", "window", "time", *aggregates.FUNCTIONS}
    extra = sorted(str(k) for k in block if k not in allowed)
    if extra:
        raise RuleFileError(f"unknown key {extra[0]!r} in an aggregate (keys: {', '.join(sorted(allowed))})",
                            (*where, extra[0]))
    kind = block.get("kind")
    if not isinstance(kind, str) or kind not in FACT_MODELS:
        raise RuleFileError(f"the kind of facts to aggregate: one of {', '.join(sorted(FACT_MODELS))}", (*where, "kind"))
    fields = field_types(kind)
    condition = None
    if "where" in block:
        condition = _parse_expr(block["where"], (*where, "where"), None)
        if any(t.field == "kind" for t in tests_of(condition)):
            raise RuleFileError("the kind is given by kind: of the aggregate", (*where, "where"))
        condition = _check_types(condition, kind, None, None, {}, set(), None)
    group_by = block.get("group_by", [])
    if isinstance(group_by, str):
        group_by = [group_by]
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise RuleFileError("group_by is a list of field names", (*where, "group_by"))
    if len(group_by) > aggregates.MAX_GROUP_FIELDS or len(set(group_by)) != len(group_by):
        raise RuleFileError(f"group_by names at most {aggregates.MAX_GROUP_FIELDS} distinct fields", (*where, "group_by"))
    for index, name in enumerate(group_by):
        if name not in fields or name == "kind":
            raise RuleFileError(f"fact kind {kind!r} has no field {name!r} to group by ({_listing(fields)})",
                                (*where, "group_by", index))
        if name in aggregates.RESULT_FIELDS:
            raise RuleFileError(f"{name!r} is also a field of the aggregate's result "
                                f"({', '.join(aggregates.RESULT_FIELDS)}); it cannot be a group field",
                                (*where, "group_by", index))
    chosen = [f for f in aggregates.FUNCTIONS if f in block]
    if len(chosen) != 1:
        raise RuleFileError("say what to compute, with exactly one of: count: facts, sum: FIELD, count_distinct: FIELD",
                            where)
    function = chosen[0]
    target = block[function]
    field = None
    if function == "count":
        if target not in ("facts", True, 1):
            raise RuleFileError("write count: facts (the number of facts in the group); to add up a field, write "
                                "sum: FIELD", (*where, "count"))
    else:
        if not isinstance(target, str) or target not in fields or target == "kind":
            raise RuleFileError(f"fact kind {kind!r} has no field {target!r} ({_listing(fields)})", (*where, function))
        if function == "sum" and fields[target].category != "number":
            raise RuleFileError(f"{target!r} is not a number; sum needs numbers (count_distinct counts values)",
                                (*where, function))
        field = target
    window = time_field = None
    if "window" in block:
        window = aggregates.parse_duration(block["window"])
        if window is None:
            raise RuleFileError("a window is a duration: 500ms, 60s, 5m, 1h, 2d, or a number of seconds",
                                (*where, "window"))
        times = [name for name in fields if _is_time_field(kind, name)]
        time_field = block.get("time", times[0] if times else None)
        if time_field is None:
            raise RuleFileError(f"fact kind {kind!r} has no time field, so it cannot be aggregated over a window",
                                (*where, "window"))
        if time_field not in times:
            raise RuleFileError(f"time: the time field the window reads; fact kind {kind!r} has "
                                f"{', '.join(times) or 'none'}", (*where, "time"))
    elif "time" in block:
        raise RuleFileError("time: names the field a window reads; give the window too", (*where, "time"))
    source = aggregates.canonical({k: block[k] for k in sorted(block)})
    return AggregateSpec(kind, condition, tuple(group_by), function, field, window, time_field, source)


def _is_time_field(kind: str, name: str) -> bool:
    annotation = FACT_MODELS[kind].model_fields[name].annotation
    return annotation is datetime or datetime in get_args(annotation)


def _listing(fields: dict[str, FieldType]) -> str:
    return "fields: " + ", ".join(n for n in fields if n != "kind")


def _regex(pattern: Any, where: DocPath) -> str:
    """Accept the regular expressions durable_rules and Python's ``re.fullmatch`` read alike."""
    if not isinstance(pattern, str) or not pattern:
        raise RuleFileError("a regular expression must be a non-empty string", where)
    for char, why in (("\\", "backslash escapes are not supported; write [.] for a literal '.'"),
                      ("^", "the whole value is always matched; anchors and negated classes are not supported"),
                      ("$", "the whole value is always matched; anchors are not supported")):
        if char in pattern:
            raise RuleFileError(f"regular expression {pattern!r}: {why}", where)
    for match in re.finditer(r"\{[^}]*\}?", pattern):
        bounds = _INTERVAL.fullmatch(match.group())
        low, high = (int(bounds.group(1)), int(bounds.group(2) or bounds.group(1))) if bounds else (1, 0)
        if not bounds or low > high or high > MAX_REGEX_REPEAT:
            raise RuleFileError(f"regular expression {pattern!r}: repeats are {{n}} or {{n,m}} with "
                                f"n <= m <= {MAX_REGEX_REPEAT}", where)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RuleFileError(f"regular expression {pattern!r}: {exc}", where) from None
    if _choice_between_open_repeats(sre_parse.parse(pattern)):
        raise RuleFileError(f"regular expression {pattern!r}: a choice (a|b, [ab]) between open repeats (.*, +) is "
                            "not supported, because it can miss matches ('.*(ab|cd).*' would not match 'abc'). Test "
                            "a true/false field instead, or write one rule per alternative", where)
    return pattern


def _choice_between_open_repeats(items: Any) -> bool:
    """The regex shapes durable_rules' DFA gets wrong (tests/test_engine_regressions.py shows it):
    after a full match, a character that starts another alternative makes it forget the match.
    Refused when a choice has an open repeat before and after it, or an alternative holds one."""
    items = list(items)
    for i, (op, arg) in enumerate(items):
        if op is sre_constants.BRANCH and any(_has_open_repeat(alt) for alt in arg[1]):
            return True
        if _has_choice(op, arg) and any(_has_open_repeat([e]) for e in items[:i]) and \
                any(_has_open_repeat([e]) for e in items[i:]):
            return True
        if op is sre_constants.SUBPATTERN and _choice_between_open_repeats(arg[-1]):
            return True
    return False


def _has_open_repeat(items: Any) -> bool:
    for op, arg in items:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            if arg[1] is sre_constants.MAXREPEAT or _has_open_repeat(arg[2]):
                return True
        elif op is sre_constants.SUBPATTERN and _has_open_repeat(arg[-1]):
            return True
        elif op is sre_constants.BRANCH and any(_has_open_repeat(alt) for alt in arg[1]):
            return True
    return False


def _has_choice(op: Any, arg: Any) -> bool:
    if op is sre_constants.BRANCH:
        return True
    if op is sre_constants.IN:
        return len(arg) > 1 or any(item_op is not sre_constants.LITERAL for item_op, _ in arg)
    if op is sre_constants.SUBPATTERN:
        return any(_has_choice(o, a) for o, a in arg[-1])
    if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
        return any(_has_choice(o, a) for o, a in arg[2])
    return False


# ---------------------------------------------------------------------------------------------
# kinds and types


def _kind_of(expr: Expr, where: DocPath) -> str:
    top = expr.items if isinstance(expr, Group) and expr.op == "and" else (expr,)
    kinds = [t for t in top if isinstance(t, Test) and t.field == "kind" and t.op == "eq"]
    nested = [t for t in tests_of(expr) if t.field == "kind" and not any(t is k for k in kinds)]
    if nested:
        raise RuleFileError("'kind' may only be tested as kind: <name> at the top of the pattern", nested[0].where)
    if len(kinds) != 1:
        raise RuleFileError("every pattern selects exactly one fact kind with kind: <name>, or reads an aggregate "
                            "(aggregate:)", where)
    kind = kinds[0].operand
    if not isinstance(kind, str) or kind not in FACT_MODELS:
        known = ", ".join(sorted(FACT_MODELS))
        raise RuleFileError(f"unknown fact kind {kind!r} (known: {known})", kinds[0].where)
    return kind


def _check_types(expr: Expr, kind: str, spec: AggregateSpec | None, alias: str | None, aliases: dict[str, Pattern],
                 broken: set[str], problems: list[RuleFileError] | None) -> Expr:
    """``expr`` checked against the fields of ``kind`` (or of ``spec``'s results), with every word of a
    vocabulary replaced by the stored values it stands for. Each test with a problem is reported to
    ``problems`` (or raised, without it); raises the first one once all are checked."""
    fields = field_types(kind, spec)
    found: list[RuleFileError] = []

    def check(node: Expr) -> Expr:
        if isinstance(node, Group):
            return Group(node.op, tuple(_flatten(node.op, [check(item) for item in node.items])), node.where)
        try:
            if node.field not in fields:
                raise RuleFileError(f"{_kind_label(kind, spec)} has no field {node.field!r} ({_listing(fields)})",
                                    node.where)
            if any(r.alias in broken for r in references(node.operand)):
                return node  # the pattern it refers to has a problem of its own, already reported
            _check_test(node, fields[node.field], kind, spec, fields, aliases)
            words = vocabulary(spec.kind, node.field) if spec and node.field in spec.group_by else \
                None if spec else vocabulary(kind, node.field)
            return _with_words(node, words)
        except RuleFileError as exc:
            found.append(exc)
            return node

    checked = check(expr)
    if found:
        if problems is not None:
            problems.extend(found[1:])
        raise found[0]
    return checked


def _kind_label(kind: str, spec: AggregateSpec | None) -> str:
    return f"an aggregate of {spec.kind}" if spec else f"fact kind {kind!r}"


def _with_words(test: Test, words: Vocabulary | None) -> Expr:
    """A test of a vocabulary field with a constant: the stored values its word stands for."""
    if words is None or test.op in ("ex", "nex") or isinstance(test.operand, (Ref, Own, Arith)):
        return test
    if test.op in ("mt", "imt"):
        flags = re.IGNORECASE | re.ASCII if test.op == "imt" else 0
        if not any(re.fullmatch(test.operand, engine_json(v), flags) for v in words.stored):
            raise RuleFileError(f"regular expression {test.operand!r} matches no value {test.field} can hold "
                                f"({', '.join(words.stored)})", test.where)
        return test
    if test.op not in ("eq", "neq"):
        raise RuleFileError(f"{test.field!r} holds one of {words.describe()}; test it with {test.field}: <value> or "
                            f"$neq", test.where)
    word = words.lookup(str(test.operand)) if isinstance(test.operand, str) else None
    if word is None:
        raise RuleFileError(f"{test.operand!r} is never a value of {test.field!r}; it is one of "
                            f"{words.describe()}", test.where)
    tests = tuple(Test(test.op, test.field, value, test.where) for value in words.words[word])
    return tests[0] if len(tests) == 1 else Group("or" if test.op == "eq" else "and", tests, test.where)


def engine_json(text: str) -> str:
    """``text`` as the engine stores it: the inside of its JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _check_test(test: Test, field_type: FieldType, kind: str, spec: AggregateSpec | None,
                fields: dict[str, FieldType], aliases: dict[str, Pattern]) -> None:
    category = field_type.category
    if test.op in ("ex", "nex"):
        return
    if test.op in ("mt", "imt"):
        if category != "str":
            raise RuleFileError(f"{test.field!r} is not text; a regular expression needs text", test.where)
        return
    if test.op in ("lt", "lte", "gt", "gte") and category == "bool":
        raise RuleFileError(f"{test.field!r} is true or false; compare it with {test.field}: true", test.where)
    compared = test.is_join or _owns(test.operand)
    if compared and field_type.optional:
        raise RuleFileError(f"{_kind_label(kind, spec)}: {test.field!r} may be empty, and an empty field cannot be "
                            "compared with another field; compare it with a value, or compare a field that is always "
                            "set", test.where)
    operand_category = _operand_category(test.operand, test.where, fields, aliases)
    if isinstance(test.operand, Arith) and category != "number":
        raise RuleFileError(f"{test.field!r} is not a number; arithmetic needs numbers", test.where)
    if operand_category != category:
        raise RuleFileError(f"{test.field!r} holds {_a(category)}, compared here with {_a(operand_category)}",
                            test.where)


def _owns(operand: Any) -> bool:
    if isinstance(operand, Own):
        return True
    return isinstance(operand, Arith) and (_owns(operand.left) or _owns(operand.right))


def _operand_category(operand: Any, where: DocPath, fields: dict[str, FieldType],
                      aliases: dict[str, Pattern]) -> Category:
    if isinstance(operand, Ref):
        return _ref_type(operand, where, aliases).category
    if isinstance(operand, Own):
        if operand.field not in fields:
            raise RuleFileError(f"this pattern's facts have no field {operand.field!r} ({_listing(fields)})", where)
        if fields[operand.field].optional:
            raise RuleFileError(f"{operand.field!r} may be empty, and an empty field cannot be compared with another "
                                "field", where)
        return fields[operand.field].category
    if isinstance(operand, Arith):
        if not references(operand) and not _owns(operand):
            raise RuleFileError("arithmetic needs a field of a fact ({alias: field}); write the number instead", where)
        for side in (operand.left, operand.right):
            if _operand_category(side, where, fields, aliases) != "number":
                raise RuleFileError("arithmetic works on numbers only", where)
        return "number"
    category = value_category(operand)
    assert category is not None  # _parse_operand refused everything else
    return category


def _ref_type(ref: Ref, where: DocPath, aliases: dict[str, Pattern]) -> FieldType:
    if ref.alias not in aliases:
        raise RuleFileError(f"{ref.alias!r} is not this pattern's alias, nor that of an earlier pattern that is not "
                            "negated", where)
    pattern = aliases[ref.alias]
    fields = pattern.fields
    if ref.field not in fields:
        raise RuleFileError(f"{_kind_label(pattern.kind, pattern.aggregate)} (alias {ref.alias}) has no field "
                            f"{ref.field!r}", where)
    if fields[ref.field].optional:
        raise RuleFileError(f"{pattern.kind}.{ref.field} may be empty, and an empty field cannot be compared with "
                            "another field; compare a field that is always set", where)
    return fields[ref.field]


def _a(category: str) -> str:
    return {"number": "a number", "str": "text", "bool": "true/false"}.get(category, category)
