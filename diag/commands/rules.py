"""``wnvdiag rules list|show|new|test|lint``: a thin typer layer over ``diag.engine``.

Exit codes: 0 fine, 1 problems found (broken rule files, failed tests, lint errors), 2 bad input.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer

from typing import TYPE_CHECKING

from diag.errors import BadInputError, DiagError
from diag.resources import data_dir
from diag.commands.output import echo, fail
from diag.commands.progress import progress_bar
from diag.commands.runs import DB_OPTION

if TYPE_CHECKING:  # the engine is imported by the commands that use it: `wnvdiag --help` starts without it
    from diag.engine.differential import RuleComparison
    from diag.engine.rules import Rule
    from diag.engine.runner import EngineResult
    from diag.engine.selftest import RulesTestReport

app = typer.Typer(add_completion=False, no_args_is_help=True, help="List, show, write, test and lint rules.")

RULES_OPTION = typer.Option([], "--rules", help="A directory of your own rules, added to the shipped pack.")


def _fail(message: str) -> None:
    fail(message)


def _pack(extra: list[Path]) -> tuple[list[Rule], list]:
    from diag.engine import load_rules

    for directory in extra:
        if not directory.is_dir():
            _fail(f"{directory}: rules directory does not exist")
    return load_rules([data_dir("rules"), *extra])


def _paths(paths: list[Path] | None) -> list[Path]:
    chosen = list(paths or [data_dir("rules")])
    for path in chosen:
        if not path.exists():
            _fail(f"{path}: no such file or directory")
    return chosen


@app.command("list")
def list_rules(rules: list[Path] = RULES_OPTION) -> None:
    """Every rule: id, status, severity, where it comes from, tags and title."""
    loaded, errors = _pack(rules)
    shipped = data_dir("rules")
    for rule in loaded:
        source = "shipped" if rule.shipped else str(rule.path.parent)
        echo(f"{rule.id:<40} {rule.meta.status:<12} {rule.meta.severity:<8} {source:<10} "
                   f"[{', '.join(rule.meta.tags)}] {rule.meta.title}")
    for error in errors:
        echo(f"{error.file}: error: {error.message} - this rule will not run", err=True)
    echo(f"{len(loaded)} rule(s) ({sum(r.shipped for r in loaded)} shipped in {shipped})"
               + (f", {len(errors)} file(s) with errors" if errors else ""))
    raise typer.Exit(1 if errors else 0)


@app.command()
def show(rule_id: str = typer.Argument(..., help="The rule's id."), rules: list[Path] = RULES_OPTION) -> None:
    """A rule's metadata, its file and cases, and the durable_rules rules it compiles to."""
    loaded, errors = _pack(rules)
    found = [r for r in loaded if r.id == rule_id]
    if not found:
        broken = [e for e in errors if e.rule_id == rule_id]
        _fail(f"{broken[0].file}: {broken[0].message}" if broken else f"no rule has the id {rule_id!r}")
    rule = found[0]
    meta = rule.meta
    lines = [
        f"{meta.id}: {meta.title}",
        f"  file        {rule.path} ({rule.language}{', shipped' if rule.shipped else ''})",
        f"  cases       {rule.cases_path if rule.cases_path.is_file() else 'none'}",
        f"  status      {meta.status}; severity {meta.severity}; confidence {meta.confidence}",
        f"  tags        {', '.join(meta.tags) or '-'}",
        f"  description {meta.description.strip()}",
        f"  impact      {meta.impact.strip()}",
        f"  remediation {meta.remediation.strip()}",
        *(f"  reference   {ref}" for ref in meta.references),
        f"  reports     aliases {', '.join(rule.aliases)}; summary: {meta.finding.summary.strip()}",
    ]
    for pattern in rule.condition.patterns:
        if pattern.aggregate is not None:
            lines.append(f"  aggregate   {pattern.alias}: {pattern.aggregate.source} (computed before the engine, "
                         f"as facts of kind aggregate with aggregate: {pattern.aggregate.key})")
    lines.append(f"Compiles to {len(rule.engine_rules)} durable_rules rule(s):")
    lines += [f"  {d.name}: {json.dumps({'all': d.all})}" for d in rule.engine_rules]
    echo("\n".join(lines))


@app.command()
def new(
    name: str = typer.Argument(..., help="The new rule's id: lower-case words joined by '-'."),
    directory: Path = typer.Option(Path("."), "--dir", help="Where to write the files."),
    python: bool = typer.Option(False, "--python", help="A Python rule (durable_rules DSL) instead of YAML."),
    from_finding: str | None = typer.Option(None, "--from-finding", metavar="RUN:RULE",
                                            help="Start from the facts of a stored finding (RUN: id, prefix or "
                                                 "'latest'), e.g. latest:vlan-drops."),
    db: Path = DB_OPTION,
) -> None:
    """Write a commented rule template and its test cases (or a rule started from a real finding's facts)."""
    from diag.api import finding_facts
    from diag.engine.scaffold import new_rule, new_rule_from_facts

    try:
        if from_finding is not None:
            if python:
                raise BadInputError("--from-finding writes a YAML rule; leave out --python")
            written = new_rule_from_facts(name, directory, *finding_facts(db, from_finding))
        else:
            written = new_rule(name, directory, python)
    except DiagError as exc:
        _fail(str(exc))
    for path in written:
        echo(f"wrote {path}")
    echo(f"next: edit them, then `wnvdiag rules lint {written[0]}` and `wnvdiag rules test {written[0]}`")


@app.command()
def test(
    paths: list[Path] | None = typer.Argument(None, help="Rule files or directories (default: the shipped pack)."),
    sets: int = typer.Option(200, "--sets", min=1, help="Generated fact sets per rule for the differential test."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fact-set generator."),
    trace: Path | None = typer.Option(None, "--trace", help="Also run the rules on the facts of this trace, and "
                                                            "show what matched."),
    host_info: list[Path] = typer.Option([], "--host-info", help="Host-info files read with --trace."),
) -> None:
    """Run the rules' own cases and the differential test (engine vs reference evaluator); with --trace, the
    rules on a real trace too."""
    from diag.api import trace_facts
    from diag.engine.selftest import run_on_facts, test_rules

    try:
        with progress_bar("testing the rules", quiet=False) as bar:
            report = test_rules(_paths(paths), sets, seed, phase=bar.phase if bar else None)
        on_trace = None
        if trace is not None and report.rules:
            with progress_bar(f"reading {trace.name}", quiet=False) as bar:
                facts = trace_facts(trace, host_info, bar)
            on_trace = (facts, run_on_facts(report.rules, facts))
    except DiagError as exc:
        _fail(str(exc))
    echo(_render_test_report(report))
    if on_trace is not None:
        echo(_render_trace_run(trace, report.rules, *on_trace))
    failed = on_trace is not None and not on_trace[1].complete
    raise typer.Exit(0 if report.passed and not failed else 1)


def _render_test_report(report: RulesTestReport) -> str:
    lines = [f"{e.file}: error: {e.message}" for e in report.load_errors]
    for result in report.cases:
        if not result.passed:
            case = result.case
            lines.append(f"{case.location}: FAIL {case.rule_id} {case.expect} case {case.name!r}: "
                         + "; ".join(result.problems))
    lines += [_render_comparison(c) for c in report.comparisons]
    passed = sum(r.passed for r in report.cases)
    lines.append(f"cases: {passed} passed, {len(report.cases) - passed} failed")
    good = sum(c.passed for c in report.comparisons)
    lines.append(f"differential: {good} passed, {len(report.comparisons) - good} failed")
    if not report.rules:
        lines.append("no rule could be loaded, so nothing was tested")
    return "\n".join(lines)


MAX_ROWS_SHOWN = 5


def _render_trace_run(trace: Path, rules: list[Rule], facts: list, result: EngineResult) -> str:
    kinds = Counter(f.kind for f in facts)
    lines = [f"on {trace}: {len(facts)} fact(s): " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))]
    findings = {f.rule_id: f for f in result.findings}
    for rule in rules:
        finding = findings.get(rule.id)
        if finding is None:
            read = sorted({p.aggregate.kind if p.aggregate else p.kind for p in rule.condition.positive})
            have = ", ".join(f"{k} {kinds.get(k, 0)}" for k in read)
            lines.append(f"  {rule.id}: no match (it reads {have})")
            continue
        lines.append(f"  {rule.id}: {result.matches.get(rule.id, 0)} match(es): {finding.summary}")
        for row in finding.evidence[:MAX_ROWS_SHOWN]:
            lines.append("      " + ", ".join(f"{k}={v}" for k, v in row.items()))
        if len(finding.evidence) > MAX_ROWS_SHOWN:
            lines.append(f"      ... {len(finding.evidence) - MAX_ROWS_SHOWN} more row(s)")
    lines += [f"  error: {e.file}: {e.message}" for e in result.rule_errors]
    lines += [f"  engine error: {e}" for e in result.engine_errors]
    return "\n".join(lines)


def _render_comparison(c: RuleComparison) -> str:
    verdict = "ok  " if c.passed else "FAIL"
    line = (f"{verdict} {c.rule_id}: {c.sets} fact sets, {c.expected} expected matches, {c.fired} fired, "
            f"{c.missed} missed, {c.extra} extra")
    if c.errors:
        line += f"; {len(c.errors)} error(s), first: {c.errors[0]}"
    if c.example:
        line += f"\n     smallest failing set: {json.dumps(c.example, default=str)}"
    return line


@app.command()
def lint(
    paths: list[Path] | None = typer.Argument(None, help="Rule files or directories (default: the shipped pack)."),
) -> None:
    """Check rule files and their cases; print each problem as file:line: message."""
    from diag.engine.lint import lint as lint_paths

    issues = lint_paths(_paths(paths))
    for issue in issues:
        echo(str(issue))
    errors = sum(i.severity == "error" for i in issues)
    echo(f"{errors} error(s), {len(issues) - errors} warning(s)")
    raise typer.Exit(1 if errors else 0)
