"""The ``wnvdiag`` command: a thin typer layer over ``diag.api``.

Exit codes are stable: 0 no findings at or above the threshold, 1 findings, 2 error, 3 inconclusive (the trace
or the rules could not answer).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Iterator

import typer

from diag import __version__, api
from diag.commands.rules import app as rules_app
from diag.commands.runs import register as register_run_commands
from diag.commands.synth import app as synth_app
from diag.errors import DiagError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Read Windows network-virtualization ETL traces and diagnose them.")
app.add_typer(rules_app, name="rules")
app.add_typer(synth_app, name="synth")
register_run_commands(app)


class Exit(IntEnum):
    CLEAN = api.EXIT_CLEAN
    FINDINGS = api.EXIT_FINDINGS
    ERROR = api.EXIT_ERROR
    INCONCLUSIVE = api.EXIT_INCONCLUSIVE


def _fail(message: str) -> None:
    typer.echo(f"wnvdiag: error: {message}", err=True)
    raise typer.Exit(Exit.ERROR)


@contextmanager
def _progress(path: Path, quiet: bool) -> Iterator[api.Progress | None]:
    """A rich progress bar on stderr for reads that take a while; nothing when quiet or piped."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), transient=True, console=None) as bar:
        task = bar.add_task(f"reading {path.name}", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wnvdiag {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                              help="Show the version and exit.")) -> None:
    """Read Windows network-virtualization ETL traces and diagnose them."""


@app.command()
def inspect(
    trace: Path = typer.Argument(..., help="ETL file from pktmon or netsh trace."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (schema wnvdiag.inspect/1)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """What is in a trace: header, providers and events, what could not be read, pktmon's view."""
    try:
        with _progress(trace, quiet or as_json) as progress:
            summary = api.inspect(trace, progress=progress)
    except DiagError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(summary.model_dump_json(by_alias=True, indent=2))
    else:
        typer.echo(api.render_inspect_text(summary))


@app.command()
def check(
    trace: Path = typer.Argument(..., help="ETL file from pktmon or netsh trace."),
    host_info: list[Path] = typer.Option(
        [], "--host-info", metavar="FILE",
        help="Output of 'ipconfig /allcompartments /all', 'Get-NetIPAddress -IncludeAllCompartments' or "
             "'Get-NetRoute -IncludeAllCompartments' (text or ConvertTo-Json) from the same host; repeat for several "
             "files."),
    rules: list[Path] = typer.Option([], "--rules", help="A directory of your own rules, added to the shipped pack."),
    only: list[str] = typer.Option([], "--only", help="Run only the rules with these ids or tags (repeatable)."),
    skip: list[str] = typer.Option([], "--skip", help="Leave out the rules with these ids or tags (skip wins over only)."),
    db: Path = typer.Option(Path("wnvdiag.db"), "--db", help="SQLite file that keeps every run."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for the report files."),
    threshold: api.Severity = typer.Option(api.Severity.low, "--threshold",
                                           help="Lowest severity that makes the exit code 1."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    report: str = typer.Option("md", "--report", help="Report formats, comma-separated: html, md, json, csv, or all."),
    case: str = typer.Option(None, "--case", help="Support case id: stored with the run and stamped on every report."),
    redact: bool = typer.Option(False, "--redact", help="Replace IPs, MACs, host/user/switch/adapter names and paths "
                                                        "in the reports with consistent pseudonyms."),
    pcap: Path = typer.Option(None, "--pcap", metavar="DIR", help="Write one evidence pcapng per finding with drops."),
) -> None:
    """Read the trace, run the rules, store the run and write the reports (Markdown by default)."""
    try:
        with _progress(trace, quiet or as_json) as progress:
            result = api.check(trace, rule_dirs=rules, host_info=host_info, only=only, skip=skip, db_path=db, out_dir=out, threshold=threshold,
                               progress=progress, arguments=sys.argv[1:],
                               report_formats=report, case_id=case, redact=redact, pcap_dir=pcap)
    except DiagError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2, default=str))
    elif not quiet:
        typer.echo(api.render_check_text(result))
    raise typer.Exit(result.exit_code)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("wnvdiag: interrupted", err=True)
        sys.exit(Exit.ERROR)


if __name__ == "__main__":
    main()
