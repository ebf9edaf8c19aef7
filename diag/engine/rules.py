"""Rule files: load, validate and compile them to durable_rules' JSON ruleset format.

One YAML file per rule, ``rules/<id>.yaml`` (``*.cases.yaml`` beside it holds its test cases)::

    id: packets-dropped            # must equal the file stem; lower-case words joined by '-'
    title: Packets dropped
    status: stable                 # experimental (default) | stable | deprecated
    severity: medium               # info | low | medium | high | critical
    confidence: high               # low | medium | high
    description: ...
    remediation: ...               # Markdown
    references: [https://...]
    tags: [pktmon]
    when:                          # durable_rules JSON pattern list over facts
      all:
        - d: {kind: pktmon_drop, $gt: {count: 0}}
    finding:
      summary: "{total[count]} packets in {matches} group(s), largest at {top[component_name]}"
      rank_by: count               # optional: order matches by this field, largest first
      evidence: [component_id, count]   # optional: columns, "field" or "alias.field"
    action: module:function        # optional Python hook, see below

``when`` is checked against what the stock durable_rules 2.0.28 core evaluates correctly:

- only ``all`` (``any`` fires once per alternative and per combination), no ``count``/``cap``/
  ``pri``/``dist``, at most 16 patterns, at most 31 terms per pattern;
- every pattern selects a fact kind with ``kind: <name>``; fields must exist on that fact model;
- ``id`` and ``sid`` are never referenced (the core keeps dangling pointers for them);
- patterns that join other aliases (``{field: {alias: field}}``), and negated (``alias$not``)
  patterns, use plain conjunctions only: no ``$or`` and no nested groups (the core skips terms
  after a nested group);
- a rule with a negated pattern starts with the gate pattern ``{g: {kind: gate}}``: the gate fact
  is asserted after every other fact, so the rule fires only once the data is complete.

A mapping with several tests (``{kind: x, $gt: {count: 0}}``) is rewritten as an explicit
``$and``: the core silently evaluates only the first key of such a mapping.

All matches of a rule become one finding. The summary is ``str.format`` over: each positive alias
(the facts of the top-ranked match, ``{d[count]}``), ``top`` (the first alias of that match),
``total`` (sums of the numeric fields of the first alias over all matched facts) and ``matches``
(the number of distinct matches). Names and fields are checked on load.

``action`` names a function the worker calls once per match with ``{alias: fact fields}``; it may
return ``None`` or a dict of scalar values added to that match's evidence row. A module file
beside the rule file is preferred over an installed module. An exception in it is reported as a
``RuleError`` for the rule; a crash of the process is ``AnalysisFailed``.

A file that fails any check becomes a ``RuleError`` naming it; the other rules still load.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from diag.facts.models import FACT_MODELS, Confidence, RuleError, Severity, scalar_fields

RULE_SUFFIX = ".yaml"
CASES_SUFFIX = ".cases.yaml"
GATE_KIND = "gate"
MAX_PATTERNS = 16  # durable_rules MAX_MESSAGE_FRAMES
MAX_TERMS = 31  # durable_rules MAX_SEQUENCE_EXPRESSIONS minus one; group markers count too
RESERVED_FIELDS = frozenset({"id", "sid"})
CONTEXT_NAMES = frozenset({"top", "total", "matches"})

GROUPS = ("$and", "$or")
COMPARISONS = ("$lt", "$lte", "$gt", "$gte", "$neq")
EXISTENCE = ("$ex", "$nex")
REGEX = ("$mt", "$imt")
FIELD_OPERATORS = COMPARISONS + EXISTENCE + REGEX

_RULE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOOK = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


class RuleFileError(Exception):
    """A rule file is invalid; ``str()`` says where and why (without the file name)."""


NonEmpty = Annotated[str, Field(min_length=1)]


class FindingTemplate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    summary: NonEmpty
    evidence: list[NonEmpty] | None = None
    rank_by: NonEmpty | None = None


class RuleFile(BaseModel):
    """The YAML document of one rule file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: NonEmpty
    title: NonEmpty
    status: Literal["experimental", "stable", "deprecated"] = "experimental"
    severity: Severity
    confidence: Confidence
    description: NonEmpty
    remediation: NonEmpty
    references: list[NonEmpty] = []
    tags: list[NonEmpty] = []
    when: dict[str, Any]
    finding: FindingTemplate
    action: NonEmpty | None = None


@dataclass(frozen=True)
class Pattern:
    alias: str
    kind: str
    negated: bool
    is_gate: bool
    expression: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """A validated rule: its metadata, its compiled durable_rules patterns, and its source."""

    meta: RuleFile
    path: Path
    patterns: tuple[Pattern, ...]

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def aliases(self) -> list[str]:
        """Aliases whose facts a match reports: positive patterns other than the gate."""
        return [p.alias for p in self.patterns if not p.negated and not p.is_gate]

    @property
    def kinds(self) -> dict[str, str]:
        return {p.alias: p.kind for p in self.patterns}

    def durable_patterns(self) -> list[dict[str, Any]]:
        return [{(p.alias + "$not") if p.negated else p.alias: p.expression} for p in self.patterns]

    def hook(self) -> dict[str, str] | None:
        if self.meta.action is None:
            return None
        module, function = self.meta.action.split(":")
        return {"module": module, "function": function, "directory": str(self.path.parent)}


# ---------------------------------------------------------------------------------------------
# loading


def rule_files(rule_dirs: list[Path]) -> list[Path]:
    """Every rule file (``*.yaml`` but not ``*.cases.yaml``) of the directories, sorted per directory."""
    files: list[Path] = []
    for directory in rule_dirs:
        files += sorted(p for p in Path(directory).glob(f"*{RULE_SUFFIX}") if not p.name.endswith(CASES_SUFFIX))
    return files


def load_rules(rule_dirs: list[Path]) -> tuple[list[Rule], list[RuleError]]:
    """Load every rule of ``rule_dirs``; a bad file becomes a ``RuleError``, the rest still load.

    A missing directory is an error of its own; a rule id seen in an earlier directory wins.
    """
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: dict[str, Path] = {}
    for directory in rule_dirs:
        if not Path(directory).is_dir():
            errors.append(RuleError(rule_id="", file=str(directory), message="rules directory does not exist"))
    for path in rule_files([d for d in rule_dirs if Path(d).is_dir()]):
        stem = path.name[: -len(RULE_SUFFIX)]
        try:
            rule = load_rule(path)
        except RuleFileError as exc:
            errors.append(RuleError(rule_id=stem, file=str(path), message=str(exc)))
            continue
        if rule.id in seen:
            errors.append(
                RuleError(rule_id=rule.id, file=str(path), message=f"duplicate rule id, already defined in {seen[rule.id]}")
            )
            continue
        seen[rule.id] = path
        rules.append(rule)
    return rules, errors


def load_rule(path: Path) -> Rule:
    """Parse and validate one rule file; raises ``RuleFileError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleFileError(f"is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise RuleFileError("must be a YAML mapping")
    try:
        meta = RuleFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise RuleFileError(f"{where}: {first['msg']}{more}") from None
    stem = path.name[: -len(RULE_SUFFIX)]
    if not _RULE_ID.match(meta.id):
        raise RuleFileError(f"id: {meta.id!r} must be lower-case words joined by '-'")
    if meta.id != stem:
        raise RuleFileError(f"id: {meta.id!r} must equal the file name stem {stem!r}")
    if meta.action is not None and not _HOOK.match(meta.action):
        raise RuleFileError(f"action: {meta.action!r} must look like 'module:function'")
    patterns = compile_when(meta.when)
    rule = Rule(meta=meta, path=path, patterns=tuple(patterns))
    check_finding_template(rule)
    return rule


# ---------------------------------------------------------------------------------------------
# `when`: normalise, check, compile


@dataclass
class _Info:
    terms: int = 0
    groups: int = 0
    nested_group: bool = False
    has_or: bool = False
    kind: str | None = None
    fields: list[tuple[str, str]] = field(default_factory=list)  # (field, location)
    joins: list[tuple[str, str, str]] = field(default_factory=list)  # (alias, field, location)


def compile_when(when: dict[str, Any]) -> list[Pattern]:
    extra = sorted(set(when) - {"all"})
    if "any" in when:
        raise RuleFileError("when.any: 'any' rules are not supported (they fire once per alternative); write separate rules")
    if extra:
        raise RuleFileError(f"when: unsupported key(s) {', '.join(extra)}; only 'all' is allowed (no count/cap/pri/dist)")
    items = when.get("all")
    if not isinstance(items, list) or not items:
        raise RuleFileError("when.all: must be a non-empty list of patterns")
    if len(items) > MAX_PATTERNS:
        raise RuleFileError(f"when.all: {len(items)} patterns; at most {MAX_PATTERNS} are allowed")

    patterns: list[Pattern] = []
    infos: list[_Info] = []
    aliases: dict[str, str] = {}  # positive aliases defined so far -> kind
    for index, item in enumerate(items):
        loc = f"when.all[{index}]"
        if not isinstance(item, dict) or len(item) != 1:
            raise RuleFileError(f"{loc}: a pattern is a mapping with exactly one alias, e.g. {{d: {{kind: pktmon_drop}}}}")
        ((key, expr),) = item.items()
        key = str(key)
        negated = key.endswith("$not")
        alias = key[: -len("$not")] if negated else key
        loc = f"{loc}.{key}"
        if not _ALIAS.match(alias):
            raise RuleFileError(f"{loc}: alias must be a simple name (letters, digits, '_')")
        if alias in CONTEXT_NAMES:
            raise RuleFileError(f"{loc}: alias {alias!r} is reserved for the summary template")
        if alias in aliases or any(p.alias == alias for p in patterns):
            raise RuleFileError(f"{loc}: alias {alias!r} is used twice")
        normalized = _normalize(expr, loc)
        info = _Info()
        _walk(normalized, loc, info, depth=0, aliases=aliases)
        if info.kind is None:
            raise RuleFileError(f"{loc}: every pattern must select a fact kind with 'kind: <name>'")
        if info.kind != GATE_KIND and info.kind not in FACT_MODELS:
            known = ", ".join(sorted([*FACT_MODELS, GATE_KIND]))
            raise RuleFileError(f"{loc}: unknown fact kind {info.kind!r} (known: {known})")
        is_gate = info.kind == GATE_KIND
        if is_gate and (negated or normalized != {"kind": GATE_KIND}):
            raise RuleFileError(f"{loc}: the gate pattern must be exactly {{{alias}: {{kind: gate}}}}")
        if info.terms + 2 * info.groups > MAX_TERMS:
            raise RuleFileError(f"{loc}: too many terms ({info.terms + 2 * info.groups} counting groups); at most {MAX_TERMS}")
        if (info.joins or negated) and (info.has_or or info.nested_group):
            what = "negated pattern" if negated else "pattern that joins another alias"
            raise RuleFileError(
                f"{loc}: a {what} may only use a plain conjunction of tests (no $or, no nested groups); "
                "durable_rules 2.0.28 evaluates those wrongly"
            )
        _check_fields(info, info.kind, aliases)
        patterns.append(Pattern(alias=alias, kind=info.kind, negated=negated, is_gate=is_gate, expression=normalized))
        infos.append(info)
        if not negated:
            aliases[alias] = info.kind

    if any(p.negated for p in patterns) and not patterns[0].is_gate:
        raise RuleFileError("when.all: a rule with a negated pattern must start with the gate pattern {g: {kind: gate}}")
    if any(p.is_gate for p in patterns[1:]):
        raise RuleFileError("when.all: the gate pattern must be the first pattern")
    if not any(not p.negated and not p.is_gate for p in patterns):
        raise RuleFileError("when.all: at least one positive pattern must match a fact other than the gate")
    return patterns


def _normalize(expr: Any, loc: str) -> dict[str, Any]:
    """Rewrite several tests in one mapping as ``$and``, flatten same-operator groups."""
    if not isinstance(expr, dict) or not expr:
        raise RuleFileError(f"{loc}: must be a non-empty mapping of tests")
    if len(expr) > 1:
        return _normalize({"$and": [{k: v} for k, v in expr.items()]}, loc)
    ((key, value),) = expr.items()
    key = str(key)
    if key in GROUPS:
        if not isinstance(value, list) or not value:
            raise RuleFileError(f"{loc}.{key}: must be a non-empty list of tests")
        flat: list[dict[str, Any]] = []
        for i, item in enumerate(value):
            sub = _normalize(item, f"{loc}.{key}[{i}]")
            flat.extend(sub[key] if list(sub) == [key] else [sub])
        return {key: flat} if len(flat) > 1 else flat[0]
    if key in FIELD_OPERATORS:
        if not isinstance(value, dict) or not value:
            raise RuleFileError(f"{loc}.{key}: must map field names to values, e.g. {{{key}: {{count: 0}}}}")
        if len(value) > 1:
            return _normalize({"$and": [{key: {f: v}} for f, v in value.items()]}, loc)
        return {key: dict(value)}
    if key.startswith("$"):
        allowed = ", ".join(GROUPS + FIELD_OPERATORS)
        raise RuleFileError(f"{loc}: operator {key!r} is not supported (allowed: {allowed})")
    return {key: value}


def _walk(expr: dict[str, Any], loc: str, info: _Info, depth: int, aliases: dict[str, str], top_and: bool = True) -> None:
    """Check one normalised expression; ``top_and``: every enclosing group is the top-level ``$and``."""
    ((key, value),) = expr.items()
    if key in GROUPS:
        info.groups += 1
        info.has_or = info.has_or or key == "$or"
        info.nested_group = info.nested_group or depth > 0
        for i, sub in enumerate(value):
            _walk(sub, f"{loc}.{key}[{i}]", info, depth + 1, aliases, top_and and depth == 0 and key == "$and")
        return
    info.terms += 1
    if key in FIELD_OPERATORS:
        ((name, operand),) = value.items()
        where = f"{loc}.{key}.{name}"
    else:
        name, operand, where = key, value, f"{loc}.{key}"
    name = str(name)
    _check_field_name(name, where)
    info.fields.append((name, where))
    if key in EXISTENCE:
        return
    if key in REGEX:
        if not isinstance(operand, str):
            raise RuleFileError(f"{where}: a regular expression must be a string")
        return
    if isinstance(operand, dict):
        _join_reference(operand, where, info, aliases)
        return
    if isinstance(operand, list):
        raise RuleFileError(f"{where}: lists are not supported as values")
    if operand is not None and not isinstance(operand, (str, int, float, bool)):
        raise RuleFileError(f"{where}: unsupported value {operand!r}")
    if key == "kind" and top_and:
        if not isinstance(operand, str):
            raise RuleFileError(f"{where}: kind must be a string")
        if info.kind is not None and info.kind != operand:
            raise RuleFileError(f"{where}: the pattern selects two kinds ({info.kind!r} and {operand!r})")
        info.kind = operand


def _join_reference(operand: dict[str, Any], where: str, info: _Info, aliases: dict[str, str]) -> None:
    if len(operand) != 1:
        raise RuleFileError(f"{where}: a join reference is {{alias: field}} with one alias")
    ((other, other_field),) = operand.items()
    other = str(other)
    if other.startswith("$"):
        raise RuleFileError(f"{where}: operator {other!r} is not supported in a value")
    if other not in aliases:
        raise RuleFileError(f"{where}: {other!r} is not an alias of an earlier positive pattern")
    if not isinstance(other_field, str):
        raise RuleFileError(f"{where}: the field of a join reference must be a name")
    _check_field_name(other_field, f"{where}.{other}")
    info.joins.append((other, other_field, f"{where}.{other}"))


def _check_field_name(name: str, where: str) -> None:
    if name in RESERVED_FIELDS:
        raise RuleFileError(
            f"{where}: field {name!r} is reserved by durable_rules and must not be used in a condition; "
            "join on a fact's own fields instead"
        )
    if not _FIELD.match(name):
        raise RuleFileError(f"{where}: {name!r} is not a plain field name")


def _scalar_fields(kind: str) -> set[str]:
    return {"kind"} if kind == GATE_KIND else set(scalar_fields(FACT_MODELS[kind]))


def _check_fields(info: _Info, kind: str, aliases: dict[str, str]) -> None:
    known = _scalar_fields(kind)
    for name, where in info.fields:
        if name not in known:
            raise RuleFileError(f"{where}: fact kind {kind!r} has no field {name!r}")
    for other, other_field, where in info.joins:
        if other_field not in _scalar_fields(aliases[other]):
            raise RuleFileError(f"{where}: fact kind {aliases[other]!r} has no field {other_field!r}")


# ---------------------------------------------------------------------------------------------
# `finding`: the summary template and the evidence columns


def resolve_column(rule: Rule, column: str) -> tuple[str, str]:
    """``field`` (of the first alias) or ``alias.field`` -> (alias, field); raises ``RuleFileError``."""
    aliases = rule.aliases
    alias, _, name = column.rpartition(".")
    alias = alias or aliases[0]
    if alias not in aliases:
        raise RuleFileError(f"{column!r}: {alias!r} is not a positive alias of this rule")
    if name not in _scalar_fields(rule.kinds[alias]):
        raise RuleFileError(f"{column!r}: fact kind {rule.kinds[alias]!r} has no field {name!r}")
    return alias, name


def check_finding_template(rule: Rule) -> None:
    template = rule.meta.finding
    for i, column in enumerate(template.evidence or []):
        try:
            resolve_column(rule, column)
        except RuleFileError as exc:
            raise RuleFileError(f"finding.evidence[{i}]: {exc}") from None
    if template.rank_by is not None:
        try:
            resolve_column(rule, template.rank_by)
        except RuleFileError as exc:
            raise RuleFileError(f"finding.rank_by: {exc}") from None
    try:
        parsed = list(string.Formatter().parse(template.summary))
    except ValueError as exc:
        raise RuleFileError(f"finding.summary: {exc}") from None
    names = {alias: rule.kinds[alias] for alias in rule.aliases}
    names["top"] = rule.kinds[rule.aliases[0]]
    names["total"] = rule.kinds[rule.aliases[0]]
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        where = f"finding.summary: {{{field_name}}}"
        head, bracket, rest = field_name.partition("[")
        if "." in head or "." in rest:
            raise RuleFileError(f"{where}: attribute access is not allowed; write {{alias[field]}}")
        if head == "matches":
            if bracket:
                raise RuleFileError(f"{where}: 'matches' is a number")
            continue
        if head not in names:
            allowed = ", ".join(sorted([*names, "matches"]))
            raise RuleFileError(f"{where}: unknown name {head!r} (allowed: {allowed})")
        if not bracket or not rest.endswith("]") or "[" in rest:
            raise RuleFileError(f"{where}: write {{{head}[field]}}")
        name = rest[:-1]
        if name not in _scalar_fields(names[head]):
            raise RuleFileError(f"{where}: fact kind {names[head]!r} has no field {name!r}")
