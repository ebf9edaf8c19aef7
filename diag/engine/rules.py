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
from diag.engine.conditions import Condition, parse_condition
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
    """Load, check and compile one rule file; raises ``RuleFileError`` (its first problem) with the line."""
    path = Path(path)
    document = None
    try:
        document = read_rule_document(path)
        rule, problems = _rule_from(document, path)
    except RuleFileError as exc:
        raise exc.located(document) from None
    if problems or rule is None:
        raise problems[0].located(document)
    return rule


def rule_problems(path: Path) -> list[RuleFileError]:
    """Every problem of one rule file (for ``rules lint``): the metadata, each pattern of ``when`` and each
    part of ``finding`` are checked even when another part is wrong."""
    path = Path(path)
    try:
        document = read_rule_document(path)
        _, problems = _rule_from(document, path)
    except RuleFileError as exc:
        return [exc]
    return [p.located(document) for p in problems]


def _rule_from(document: Document, path: Path) -> tuple[Rule | None, list[RuleFileError]]:
    """The rule, and every problem found; the rule is None when there is any."""
    data = document.data
    if not isinstance(data, dict):
        raise RuleFileError("a rule file is a mapping of id, title, ..., when, finding")
    if "action" in data and path.suffix == YAML_SUFFIX:
        raise RuleFileError("YAML rules have no action; write a Python rule (wnvdiag rules new NAME --python)",
                            ("action",))
    problems = _meta_problems(data)
    meta = None
    if not problems:
        meta = RuleMeta.model_validate({k: v for k, v in data.items() if k != "when"})
        try:
            _check_id(meta.id, path)
        except RuleFileError as exc:
            problems.append(exc)
    condition = None
    if "when" in data:
        found: list[RuleFileError] = []
        try:
            condition = parse_condition(data["when"], ("when",), found)
        except RuleFileError as exc:
            problems += [exc] + [p for p in found if p is not exc]
    if condition is not None and meta is None:  # the metadata is wrong: still check the finding against `when`
        try:
            template = FindingTemplate.model_validate(data.get("finding"))
        except ValidationError:
            template = None
        if template is not None:
            problems += finding_template_problems(condition, template)
    if condition is None or meta is None:
        return None, _distinct(problems)
    try:
        engine_rules = tuple(compile_condition(meta.id, condition))
    except RuleFileError as exc:
        return None, _distinct([*problems, exc])
    rule = Rule(meta, path, condition, engine_rules, "python" if path.suffix == PYTHON_SUFFIX else "yaml",
                is_shipped(path), path.suffix == PYTHON_SUFFIX and document.has_action)
    problems += finding_template_problems(condition, meta.finding)
    return (None if problems else rule), _distinct(problems)


def _distinct(problems: list[RuleFileError]) -> list[RuleFileError]:
    seen, out = set(), []
    for problem in problems:
        key = (tuple(map(str, problem.where)), problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


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
    return _resolve(rule.condition, column)


def _resolve(condition: Condition, column: str) -> tuple[str, str]:
    aliases = condition.aliases
    alias, _, name = column.rpartition(".")
    alias = alias or aliases[0]
    if alias not in aliases:
        raise RuleFileError(f"{column!r}: {alias!r} is not an alias of a pattern that is not negated "
                            f"(aliases: {', '.join(aliases)})")
    fields = condition.fields(alias)
    if name not in fields:
        raise RuleFileError(f"{column!r}: {_label(condition, alias)} has no field {name!r} "
                            f"(fields: {', '.join(n for n in fields if n != 'kind')})")
    return alias, name


def _label(condition: Condition, alias: str) -> str:
    spec = next((p.aggregate for p in condition.patterns if p.alias == alias), None)
    return f"the aggregate of {spec.kind} ({alias})" if spec else f"fact kind {condition.kinds[alias]!r}"


def finding_template_problems(condition: Condition, template: FindingTemplate) -> list[RuleFileError]:
    """Every problem of ``finding``: evidence columns, rank_by, the summary's placeholders."""
    columns = [(("finding", "evidence", i), c) for i, c in enumerate(template.evidence or [])]
    if template.rank_by is not None:
        columns.append((("finding", "rank_by"), template.rank_by))
    problems = []
    for where, column in columns:
        try:
            _resolve(condition, column)
        except RuleFileError as exc:
            problems.append(RuleFileError(exc.message, where))
    return problems + summary_problems(condition, template.summary)


LIST_NAMES = ("each", "count")  # {each[field]}: the distinct values over all matches; {count[field]}: how many


def summary_problems(condition: Condition, summary: str) -> list[RuleFileError]:
    """Every placeholder of the summary template that would not render."""
    where = ("finding", "summary")
    try:
        parsed = list(string.Formatter().parse(summary))
    except ValueError as exc:
        return [RuleFileError(f"{exc} (a literal brace is written {{{{ or }}}})", where)]
    problems = []
    for _, field_name, spec, _ in parsed:
        if field_name is None:
            continue
        try:
            _check_placeholder(condition, field_name, where)
            if spec and field_name.partition("[")[0] not in LIST_NAMES:
                format(0 if _is_number(condition, field_name) else "", spec)
        except RuleFileError as exc:
            problems.append(exc)
        except ValueError as exc:
            problems.append(RuleFileError(f"{{{field_name}:{spec}}}: {exc}", where))
    return problems


def _is_number(condition: Condition, field_name: str) -> bool:
    head, _, rest = field_name.partition("[")
    if head == "matches":
        return True
    alias = condition.aliases[0] if head in ("top", "total") else head
    field = condition.fields(alias).get(rest[:-1])
    return field is not None and field.category == "number"


def _check_placeholder(condition: Condition, field_name: str, where: tuple[str, ...]) -> None:
    head, bracket, rest = field_name.partition("[")
    label = f"{{{field_name}}}"
    names = [*condition.aliases, "top", "total", *LIST_NAMES]
    if "." in head:
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
    column = rest[:-1]
    if head in LIST_NAMES:
        try:
            _resolve(condition, column)
        except RuleFileError as exc:
            raise RuleFileError(f"{label}: {exc.message}", where) from None
        return
    if "." in column:
        raise RuleFileError(f"{label}: write {{{head}[field]}}; {{each[alias.field]}} lists the values of all "
                            "matches", where)
    alias = condition.aliases[0] if head in ("top", "total") else head
    if column not in condition.fields(alias):
        raise RuleFileError(f"{label}: {_label(condition, alias)} has no field {column!r}", where)
