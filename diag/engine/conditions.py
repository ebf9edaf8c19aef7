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

import re
import types
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

from diag.engine.source import DocPath, RuleFileError
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
    "$div": "durable_rules divides integers in C (3 / 2 == 1); multiply the other side instead",
    "$iall": "list fields are not given to the engine",
    "$iany": "list fields are not given to the engine",
    "$s": "session state is not used by wnvdiag rules",
}
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
class Arith:
    """``{$mul: {$l: {a: count}, $r: 10}}``: arithmetic over numbers and references."""

    op: str  # $add | $sub | $mul
    left: Any  # number, Ref or Arith
    right: Any


@dataclass(frozen=True)
class Test:
    """One test of a fact's field: ``op`` is eq, neq, lt, lte, gt, gte, ex, nex, mt or imt."""

    op: str
    field: str
    operand: Any  # a scalar, Ref, Arith; None for ex/nex
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
    if isinstance(operand, Arith):
        return {operand.op: {"$l": _durable_operand(operand.left), "$r": _durable_operand(operand.right)}}
    return operand


# ---------------------------------------------------------------------------------------------
# field types of the fact models


@dataclass(frozen=True)
class FieldType:
    category: Category
    optional: bool


def field_types(kind: str) -> dict[str, FieldType]:
    """The fields a rule can test on facts of ``kind``: scalar fields with a usable type."""
    if kind == GATE_KIND:
        return {"kind": FieldType("str", False)}
    model = FACT_MODELS[kind]
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


def parse_condition(when: Any, where: DocPath = ("when",)) -> Condition:
    """Parse and check a ``when:`` value; raises ``RuleFileError`` naming the offending part."""
    items = _pattern_list(when, where)
    aliases: dict[str, str] = {}  # positive aliases so far -> kind
    seen: set[str] = set()
    patterns = []
    for index, item in enumerate(items):
        pattern = _parse_pattern(item, (*where, "all", index), aliases, seen)
        patterns.append(pattern)
        seen.add(pattern.alias)
        if not pattern.negated:
            aliases[pattern.alias] = pattern.kind
    if not aliases:
        raise RuleFileError("at least one pattern must not be negated: a finding needs a fact to report", (*where, "all"))
    return Condition(tuple(patterns), where)


def _pattern_list(when: Any, where: DocPath) -> list[Any]:
    if not isinstance(when, dict):
        raise RuleFileError("must be a mapping with one key, all: [patterns]", where)
    if "any" in when:
        raise RuleFileError("'any' is not supported: durable_rules fires it once per alternative and per "
                            "combination; write one rule per alternative, or use $or", (*where, "any"))
    for key in ("count", "cap", "pri", "dist"):
        if key in when:
            raise RuleFileError(f"'{key}' is not supported: durable_rules has no aggregates and wnvdiag "
                                "reports every match", (*where, key))
    extra = sorted(str(k) for k in when if k != "all")
    if extra:
        raise RuleFileError(f"unknown key(s) {', '.join(extra)}; only 'all' is allowed", (*where, extra[0]))
    items = when.get("all")
    if not isinstance(items, list) or not items:
        raise RuleFileError("must be a non-empty list of patterns", (*where, "all"))
    return items


def _parse_pattern(item: Any, where: DocPath, aliases: dict[str, str], seen: set[str]) -> Pattern:
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
    expr = _parse_expr(body, where)
    kind = _kind_of(expr, where)
    _check_types(expr, kind, aliases)
    return Pattern(alias, negated, kind, expr, where)


def _parse_expr(body: Any, where: DocPath) -> Expr:
    if not isinstance(body, dict) or not body:
        raise RuleFileError("must be a non-empty mapping of tests", where)
    parts = [_parse_entry(str(key), value, (*where, key)) for key, value in body.items()]
    return parts[0] if len(parts) == 1 else Group("and", tuple(_flatten("and", parts)), where)


def _parse_entry(key: str, value: Any, where: DocPath) -> Expr:
    if key in GROUPS:
        if not isinstance(value, list) or not value:
            raise RuleFileError("must be a non-empty list of tests", where)
        items = [_parse_expr(item, (*where, i)) for i, item in enumerate(value)]
        op = GROUPS[key]
        return items[0] if len(items) == 1 else Group(op, tuple(_flatten(op, items)), where)  # type: ignore[arg-type]
    if key in COMPARISONS or key in EXISTENCE or key in REGEX:
        return _parse_operator(key, value, where)
    if key in REFUSED:
        raise RuleFileError(f"operator {key} is not supported: {REFUSED[key]}", where)
    if key.startswith("$"):
        allowed = ", ".join([*GROUPS, *COMPARISONS, *EXISTENCE, *REGEX])
        raise RuleFileError(f"unknown operator {key} (allowed: {allowed})", where)
    return Test("eq", _field_name(key, where), _parse_operand(value, where), where)


def _flatten(op: str, items: list[Expr]) -> list[Expr]:
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, Group) and item.op == op else [item])
    return flat


def _parse_operator(key: str, value: Any, where: DocPath) -> Expr:
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
            tests.append(Test(COMPARISONS[key], name, _parse_operand(operand, at), at))
    return tests[0] if len(tests) == 1 else Group("and", tuple(tests), where)


def _field_name(name: str, where: DocPath) -> str:
    if name in RESERVED_FIELDS:
        raise RuleFileError(f"field {name!r} is reserved by durable_rules and must not appear in a condition "
                            "(joins on it read freed memory); use a fact's own fields", where)
    if not _FIELD.match(name):
        raise RuleFileError(f"{name!r} is not a plain field name", where)
    return name


def _parse_operand(value: Any, where: DocPath) -> Any:
    if value is None:
        raise RuleFileError("null is not a value to compare with; test an empty field with {$nex: {field: 1}}", where)
    if isinstance(value, (list, tuple)):
        raise RuleFileError("a list is not a value; use $or for alternatives", where)
    if not isinstance(value, dict):
        if value_category(value) is None:
            raise RuleFileError(f"unsupported value {value!r}", where)
        return value
    if len(value) != 1:
        raise RuleFileError("a reference to another fact is {alias: field}, with one alias", where)
    ((key, inner),) = value.items()
    key = str(key)
    if key in ARITHMETIC:
        return _parse_arith(key, inner, (*where, key))
    if key in REFUSED or key.startswith("$"):
        reason = REFUSED.get(key, f"allowed in a value: {', '.join(ARITHMETIC)}")
        raise RuleFileError(f"operator {key} is not supported: {reason}", (*where, key))
    if not isinstance(inner, str):
        raise RuleFileError("the field of a reference must be a field name", (*where, key))
    return Ref(key, _field_name(inner, (*where, key)))


def _parse_arith(op: str, value: Any, where: DocPath) -> Arith:
    if not isinstance(value, dict) or set(value) != {"$l", "$r"}:
        raise RuleFileError(f"write {{{op}: {{$l: ..., $r: ...}}}}", where)
    return Arith(op, _parse_operand(value["$l"], (*where, "$l")), _parse_operand(value["$r"], (*where, "$r")))


def _regex(pattern: Any, where: DocPath) -> str:
    """Accept the regular expressions durable_rules and Python's ``re.fullmatch`` read alike."""
    if not isinstance(pattern, str) or not pattern:
        raise RuleFileError("a regular expression must be a non-empty string", where)
    for char, why in (("\\", "backslash escapes reach durable_rules doubled; write [.] for a literal '.'"),
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
        raise RuleFileError(f"regular expression {pattern!r}: durable_rules misses matches when a choice (a|b, [ab]) "
                            "sits between open repeats (.*, +): '.*(ab|cd).*' does not match 'abc'. Test a boolean "
                            "fact field instead, or write one rule per alternative", where)
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
        raise RuleFileError("every pattern selects exactly one fact kind with kind: <name>", where)
    kind = kinds[0].operand
    if not isinstance(kind, str) or kind not in FACT_MODELS:
        known = ", ".join(sorted(FACT_MODELS))
        raise RuleFileError(f"unknown fact kind {kind!r} (known: {known})", kinds[0].where)
    return kind


def _check_types(expr: Expr, kind: str, aliases: dict[str, str]) -> None:
    fields = field_types(kind)
    for test in tests_of(expr):
        if test.field not in fields:
            raise RuleFileError(f"fact kind {kind!r} has no field {test.field!r} (fields: {', '.join(fields)})",
                                test.where)
        _check_test(test, fields[test.field], kind, aliases)


def _check_test(test: Test, field_type: FieldType, kind: str, aliases: dict[str, str]) -> None:
    category = field_type.category
    if test.op in ("ex", "nex"):
        return
    if test.op in ("mt", "imt"):
        if category != "str":
            raise RuleFileError(f"{test.field!r} is not text; a regular expression needs text", test.where)
        return
    if test.op in ("lt", "lte", "gt", "gte") and category == "bool":
        raise RuleFileError(f"{test.field!r} is true or false; compare it with {test.field}: true", test.where)
    if test.is_join and field_type.optional:
        raise RuleFileError(f"{kind}.{test.field} may be empty, so it cannot be compared with another fact "
                            "(durable_rules 2.0.28 fails on such facts with error 311)", test.where)
    operand_category = _operand_category(test.operand, test.where, aliases)
    if isinstance(test.operand, Arith) and category != "number":
        raise RuleFileError(f"{test.field!r} is not a number; arithmetic needs numbers", test.where)
    if operand_category != category:
        raise RuleFileError(f"{test.field!r} holds {_a(category)}, compared here with {_a(operand_category)}",
                            test.where)


def _operand_category(operand: Any, where: DocPath, aliases: dict[str, str]) -> Category:
    if isinstance(operand, Ref):
        return _ref_type(operand, where, aliases).category
    if isinstance(operand, Arith):
        if not references(operand):
            raise RuleFileError("arithmetic needs a reference to another fact; write the number instead", where)
        for side in (operand.left, operand.right):
            if _operand_category(side, where, aliases) != "number":
                raise RuleFileError("arithmetic works on numbers only", where)
        return "number"
    category = value_category(operand)
    assert category is not None  # _parse_operand refused everything else
    return category


def _ref_type(ref: Ref, where: DocPath, aliases: dict[str, str]) -> FieldType:
    if ref.alias not in aliases:
        raise RuleFileError(f"{ref.alias!r} is not the alias of an earlier pattern that is not negated", where)
    kind = aliases[ref.alias]
    fields = field_types(kind)
    if ref.field not in fields:
        raise RuleFileError(f"fact kind {kind!r} (alias {ref.alias}) has no field {ref.field!r}", where)
    if fields[ref.field].optional:
        raise RuleFileError(f"{kind}.{ref.field} may be empty, so it cannot be compared with another fact "
                            "(durable_rules 2.0.28 fails on such facts with error 311)", where)
    return fields[ref.field]


def _a(category: str) -> str:
    return {"number": "a number", "str": "text", "bool": "true/false"}.get(category, category)
