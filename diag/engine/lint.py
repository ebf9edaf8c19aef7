"""``wnvdiag rules lint``: every problem of a set of rule files, each as ``file:line: message``.

Errors: a rule that does not load, cases that do not load, a rule without positive and negative
cases, two rules with one id. Warnings: cases without a rule, a stable rule without references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from diag.engine.cases import load_cases
from diag.engine.rules import (
    CASES_SUFFIX,
    Rule,
    load_rule,
    rule_files,
    rule_problems,
    rule_stem,
)
from diag.engine.source import RuleFileError, describe


@dataclass(frozen=True)
class LintIssue:
    path: Path
    line: int | None
    severity: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.severity}: {self.message}"


def expand(paths: Sequence[Path]) -> list[Path]:
    """Rule files named by ``paths``: a file as it is, a directory's rule files."""
    files: list[Path] = []
    for path in map(Path, paths):
        files += rule_files(path) if path.is_dir() else [path]
    return files


def lint(paths: Sequence[Path]) -> list[LintIssue]:
    issues: list[LintIssue] = []
    ids: dict[str, Path] = {}
    for path in expand(paths):
        if not path.is_file():
            issues.append(LintIssue(path, None, "error", "no such rule file"))
            continue
        problems = rule_problems(path)
        issues += [_issue(path, p) for p in problems]
        if problems:
            continue
        rule = load_rule(path)
        if rule.id in ids:
            issues.append(LintIssue(path, None, "error", f"rule id {rule.id!r} is already used by {ids[rule.id]}"))
        ids.setdefault(rule.id, path)
        issues += _metadata_issues(rule) + _cases_issues(rule)
    issues += _orphan_cases(paths)
    return issues


def _issue(path: Path, problem: RuleFileError) -> LintIssue:
    where = describe(problem.where)
    return LintIssue(path, problem.line, "error", f"{where}: {problem.message}" if where else problem.message)


def _metadata_issues(rule: Rule) -> list[LintIssue]:
    if rule.meta.status == "stable" and not rule.meta.references:
        return [LintIssue(rule.path, None, "warning", "a stable rule should give references")]
    return []


def _cases_issues(rule: Rule) -> list[LintIssue]:
    path = rule.cases_path
    if not path.is_file():
        return [LintIssue(rule.path, None, "error", f"no test cases: write {path.name} (wnvdiag rules new shows how)")]
    try:
        cases = load_cases(path, rule.id)
    except RuleFileError as exc:
        return [_issue(path, exc)]
    issues = []
    for expect in ("match", "no_match"):
        if not any(c.expect == expect for c in cases):
            issues.append(LintIssue(path, None, "error", f"no '{expect}' case: every rule needs facts that "
                                                         f"{'fire' if expect == 'match' else 'must not fire'} it"))
    return issues


def _orphan_cases(paths: Sequence[Path]) -> list[LintIssue]:
    issues = []
    for directory in (Path(p) for p in paths if Path(p).is_dir()):
        stems = {rule_stem(f) for f in rule_files(directory)}
        for cases in sorted(directory.glob(f"*{CASES_SUFFIX}")):
            if cases.name[: -len(CASES_SUFFIX)] not in stems:
                issues.append(LintIssue(cases, None, "warning", "test cases of a rule that does not exist"))
    return issues
