"""Rule files: load, check and compile them; pick the rules a run uses.

A rule is one file in a rules directory: ``<id>.yaml`` (the main format) or ``<id>.py`` (durable
DSL, see ``diag.engine.pyrules``), with its test cases beside it in ``<id>.cases.yaml``::

    id: vlan-drops                 # equals the file name stem; lower-case words joined by '-'
    title: Packets dropped for their VLAN
    status: stable                 # stable | test | experimental (default)
    severity: high                 # info | low | medium | high | critical
    confidence: high               # low | medium | high
    description: What the rule looks for, in a few sentences.
    impact: What the problem does to the workload.
    remediation: What to check and change (Markdown).
    references: [https://...]
    tags: [pktmon, vlan]
    when:                          # see diag.engine.conditions
      all:
        - d: {kind: pktmon_drop, $or: [{reason_code: 9}, {reason_code: 10}]}
    finding:
      summary: "{total[count]} packets in {matches} group(s), largest at {top[component_name]}"
      rank_by: count               # optional: order matches by this field, largest first
      evidence: [component_id, count]   # optional columns: "field" (first alias) or "alias.field"

A file that fails any check is a ``RuleError`` naming the file and line; the other rules load.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from diag.engine.compile import DurableRule, compile_condition
from diag.engine.conditions import Condition, field_types, parse_condition
from diag.engine.pyrules import preload, read_python_rule
from diag.engine.source import Document, RuleFileError, describe, load_yaml
from diag.errors import BadInputError
from diag.facts.models import Confidence, RuleError, Severity
from diag.resources import data_dir

YAML_SUFFIX = ".yaml"
PYTHON_SUFFIX = ".py"
CASES_SUFFIX = ".cases.yaml"
STATUSES = ("stable", "test", "experimental")

_RULE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

NonEmpty = Annotated[str, Field(min_length=1)]


class FindingTemplate(BaseModel):
    """What a finding says (``summary``) and which fields of its facts are the evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    summary: NonEmpty
    evidence: list[NonEmpty] | None = None
    rank_by: NonEmpty | None = None


class RuleMeta(BaseModel):
    """Everything in a rule file but ``when``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: NonEmpty
    title: NonEmpty
    status: Literal["stable", "test", "experimental"] = "experimental"
    severity: Severity
    confidence: Confidence
    description: NonEmpty
    impact: NonEmpty
    remediation: NonEmpty
    references: list[NonEmpty] = []
    tags: list[NonEmpty] = []
    finding: FindingTemplate


class RuleFile(RuleMeta):
    """A whole rule file; ``rules/schema.json`` is generated from this model."""

    when: dict[str, Any] = Field(description="Patterns over facts; see the README's rule format.")


@dataclass(frozen=True)
class Rule:
    """A checked rule: metadata, condition, the durable rules it compiles to, and where it came from."""

    meta: RuleMeta
    path: Path
    condition: Condition
    engine_rules: tuple[DurableRule, ...]
    language: Literal["yaml", "python"]
    shipped: bool
    has_action: bool = False

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def aliases(self) -> list[str]:
        return self.condition.aliases

    @property
    def kinds(self) -> dict[str, str]:
        return self.condition.kinds

    @property
    def cases_path(self) -> Path:
        return self.path.with_name(self.id + CASES_SUFFIX)


# ---------------------------------------------------------------------------------------------
# files


def rule_files(directory: Path) -> list[Path]:
    """The rule files of one directory: ``*.yaml`` but not ``*.cases.yaml``, and ``*.py`` not starting with ``_``."""
    found = [p for p in Path(directory).iterdir() if p.is_file() and _is_rule_file(p)]
    return sorted(found)


def _is_rule_file(path: Path) -> bool:
    if path.name.endswith(CASES_SUFFIX):
        return False
    return path.suffix == YAML_SUFFIX or (path.suffix == PYTHON_SUFFIX and not path.name.startswith("_"))


def rule_stem(path: Path) -> str:
    return path.name[: -len(path.suffix)]


def is_shipped(path: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(data_dir("rules").resolve())
    except FileNotFoundError:
        return False


def read_rule_document(path: Path) -> Document:
    return read_python_rule(path, trusted=is_shipped(path)) if path.suffix == PYTHON_SUFFIX else load_yaml(path)


def load_rule(path: Path) -> Rule:
    """Load, check and compile one rule file; raises ``RuleFileError`` with the line."""
    path = Path(path)
    document = None
    try:
        document = read_rule_document(path)
        return _rule_from(document, path)
    except RuleFileError as exc:
        raise exc.located(document) from None


def rule_problems(path: Path) -> list[RuleFileError]:
    """Every problem of one rule file that can be found in one pass (for ``rules lint``)."""
    path = Path(path)
    try:
        document = read_rule_document(path)
    except RuleFileError as exc:
        return [exc]
    data = document.data if isinstance(document.data, dict) else {}
    problems = _meta_problems(data)
    try:
        _rule_from(document, path)
    except RuleFileError as exc:
        if not any(p.where == exc.where and p.message == exc.message for p in problems):
            problems.append(exc)
    return [p.located(document) for p in problems]


def _rule_from(document: Document, path: Path) -> Rule:
    data = document.data
    if not isinstance(data, dict):
        raise RuleFileError("a rule file is a mapping of id, title, ..., when, finding")
    if "action" in data and path.suffix == YAML_SUFFIX:
        raise RuleFileError("YAML rules have no action; write a Python rule (wnvdiag rules new NAME --python)",
                            ("action",))
    problems = _meta_problems(data)
    if problems:
        raise problems[0]
    meta = RuleMeta.model_validate({k: v for k, v in data.items() if k != "when"})
    _check_id(meta.id, path)
    condition = parse_condition(data["when"], ("when",))
    engine_rules = tuple(compile_condition(meta.id, condition))
    rule = Rule(meta, path, condition, engine_rules, "python" if path.suffix == PYTHON_SUFFIX else "yaml",
                is_shipped(path), path.suffix == PYTHON_SUFFIX and document.has_action)
    check_finding_template(rule)
    return rule


def _meta_problems(data: dict[str, Any]) -> list[RuleFileError]:
    try:
        RuleFile.model_validate(data)
    except ValidationError as exc:
        return [RuleFileError(_pydantic_message(e), tuple(e["loc"])) for e in exc.errors()]
    return []


def _pydantic_message(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "required, but missing"
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return str(error["msg"])


def _check_id(rule_id: str, path: Path) -> None:
    if not _RULE_ID.match(rule_id):
        raise RuleFileError(f"{rule_id!r} must be lower-case words joined by '-'", ("id",))
    if rule_id != rule_stem(path):
        raise RuleFileError(f"{rule_id!r} must equal the file name stem {rule_stem(path)!r}", ("id",))


# ---------------------------------------------------------------------------------------------
# a pack of rules


def load_rules(rule_dirs: Sequence[Path]) -> tuple[list[Rule], list[RuleError]]:
    """Every rule of ``rule_dirs``; a bad file becomes a ``RuleError`` and the others still load.

    A missing directory is an error of its own; a rule id seen in an earlier file wins.
    """
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: dict[str, Path] = {}
    preload([p for d in map(Path, rule_dirs) if d.is_dir() for p in rule_files(d)
             if p.suffix == PYTHON_SUFFIX and not is_shipped(p)])
    for directory in map(Path, rule_dirs):
        if not directory.is_dir():
            errors.append(RuleError(rule_id="", file=str(directory), message="rules directory does not exist"))
            continue
        for path in rule_files(directory):
            try:
                rule = load_rule(path)
            except RuleFileError as exc:
                errors.append(rule_error(rule_stem(path), path, exc))
                continue
            except (RecursionError, MemoryError, ValueError, TypeError) as exc:  # a file no check foresaw
                errors.append(RuleError(rule_id=rule_stem(path), file=str(path),
                                        message=f"cannot be checked ({type(exc).__name__}: {str(exc)[:200]})"))
                continue
            if rule.id in seen:
                errors.append(RuleError(rule_id=rule.id, file=str(path),
                                        message=f"duplicate rule id, already defined in {seen[rule.id]}"))
                continue
            seen[rule.id] = path
            rules.append(rule)
    return rules, errors


def rule_error(rule_id: str, path: Path, exc: RuleFileError) -> RuleError:
    """A ``RuleError`` whose ``file`` is ``path:line`` when the line is known."""
    where = describe(exc.where)
    location = f"{path}:{exc.line}" if exc.line is not None else str(path)
    return RuleError(rule_id=rule_id, file=location, message=f"{where}: {exc.message}" if where else exc.message)


def select_rules(
    rules: list[Rule],
    only: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
    also_known: Sequence[str] = (),
) -> tuple[list[Rule], list[str]]:
    """(the rules to run, the ids left out). A selector is a rule id or a tag.

    ``only``: run just the rules with one of these ids or tags; ``skip``: leave these out (skip
    wins over only). A selector that names no rule is a ``BadInputError``: a typo must not quietly
    run nothing. ``also_known`` are ids of rule files that failed to load, valid to name.
    """
    names = {r.id for r in rules} | {t for r in rules for t in r.meta.tags} | set(also_known)
    for option, selectors in (("--only", only or ()), ("--skip", skip or ())):
        for selector in selectors:
            if selector not in names:
                raise BadInputError(f"{option} {selector}: no rule has this id or tag")

    def named(rule: Rule, selectors: Sequence[str]) -> bool:
        return rule.id in selectors or any(t in selectors for t in rule.meta.tags)

    chosen = [r for r in rules if (not only or named(r, only)) and not (skip and named(r, skip))]
    left_out = [r.id for r in rules if r not in chosen]
    return chosen, left_out


# ---------------------------------------------------------------------------------------------
# `finding`: the summary template and the evidence columns


def resolve_column(rule: Rule, column: str) -> tuple[str, str]:
    """``field`` (of the first alias) or ``alias.field`` -> (alias, field); raises ``RuleFileError``."""
    aliases = rule.aliases
    alias, _, name = column.rpartition(".")
    alias = alias or aliases[0]
    if alias not in aliases:
        raise RuleFileError(f"{column!r}: {alias!r} is not an alias of a pattern that is not negated")
    if name not in field_types(rule.kinds[alias]):
        raise RuleFileError(f"{column!r}: fact kind {rule.kinds[alias]!r} has no field {name!r}")
    return alias, name


def check_finding_template(rule: Rule) -> None:
    template = rule.meta.finding
    columns = [(("finding", "evidence", i), c) for i, c in enumerate(template.evidence or [])]
    if template.rank_by is not None:
        columns.append((("finding", "rank_by"), template.rank_by))
    for where, column in columns:
        try:
            resolve_column(rule, column)
        except RuleFileError as exc:
            raise RuleFileError(exc.message, where) from None
    _check_summary(rule, template.summary)


def _check_summary(rule: Rule, summary: str) -> None:
    where = ("finding", "summary")
    try:
        parsed = list(string.Formatter().parse(summary))
    except ValueError as exc:
        raise RuleFileError(str(exc), where) from None
    names = {alias: rule.kinds[alias] for alias in rule.aliases}
    names["top"] = names["total"] = rule.kinds[rule.aliases[0]]
    for _, field_name, _, _ in parsed:
        if field_name is not None:
            _check_placeholder(field_name, names, where)


def _check_placeholder(field_name: str, names: dict[str, str], where: tuple[str, ...]) -> None:
    head, bracket, rest = field_name.partition("[")
    label = f"{{{field_name}}}"
    if "." in head or "." in rest:
        raise RuleFileError(f"{label}: attribute access is not allowed; write {{alias[field]}}", where)
    if head == "matches":
        if bracket:
            raise RuleFileError(f"{label}: 'matches' is a number", where)
        return
    if head not in names:
        allowed = ", ".join(sorted([*names, "matches"]))
        raise RuleFileError(f"{label}: unknown name {head!r} (allowed: {allowed})", where)
    if not bracket or not rest.endswith("]") or "[" in rest:
        raise RuleFileError(f"{label}: write {{{head}[field]}}", where)
    if rest[:-1] not in field_types(names[head]):
        raise RuleFileError(f"{label}: fact kind {names[head]!r} has no field {rest[:-1]!r}", where)
