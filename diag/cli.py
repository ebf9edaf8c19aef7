"""The ``wnvdiag`` command: a thin typer layer over ``diag.api``.

Exit codes are stable: 0 no findings at or above the threshold, 1 findings, 2 error, 3 inconclusive (the trace
or the rules could not answer), 4 internal error (a bug: one line, details in a file), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from pathlib import Path

import click
import typer

from diag import __version__, codes
from diag.commands.rules import app as rules_app
from diag.commands.runs import register as register_run_commands
from diag.commands.synth import app as synth_app
from diag.errors import DiagError
from diag.commands.output import echo, fail
from diag.commands.filters import (ADDRESS_OPTION, COMPONENT_OPTION, SINCE_OPTION, UNTIL_OPTION, VLAN_OPTION,
                                   packet_filter)
from diag.commands.progress import progress_bar
from diag.commands.runs import DB_OPTION, OUT_OPTION

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Read Windows network-virtualization ETL traces and diagnose them.")
app.add_typer(rules_app, name="rules")
app.add_typer(synth_app, name="synth")
register_run_commands(app)


class Exit(IntEnum):
    CLEAN = codes.EXIT_CLEAN
    FINDINGS = codes.EXIT_FINDINGS
    ERROR = codes.EXIT_ERROR
    INCONCLUSIVE = codes.EXIT_INCONCLUSIVE
    INTERNAL = codes.EXIT_INTERNAL
    INTERRUPTED = codes.EXIT_INTERRUPTED


def _fail(message: str) -> None:
    fail(message)


def _reading(trace: Path, redact: bool) -> str:
    return "reading the trace" if redact else f"reading {trace.name}"


def _version(value: bool) -> None:
    if value:
        echo(f"wnvdiag {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                              help="Show the version and exit.")) -> None:
    """Read Windows network-virtualization ETL traces and diagnose them."""


@app.command()
def inspect(
    trace: Path = typer.Argument(..., help="ETL file from pktmon or netsh trace."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (schema wnvdiag.inspect/2)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    redact: bool = typer.Option(False, "--redact", help="Replace the path, the logger's name, and the components' "
                                                        "names, IPs and MACs with pseudonyms."),
    since: str = SINCE_OPTION,
    until: str = UNTIL_OPTION,
    component: list[int] = COMPONENT_OPTION,
    address: list[str] = ADDRESS_OPTION,
    vlan: list[int] = VLAN_OPTION,
) -> None:
    """What is in a trace: header, providers and events, what could not be read, pktmon's view."""
    from diag import api

    try:
        select = packet_filter(since, until, component, address, vlan)
        with progress_bar(_reading(trace, redact), quiet or as_json) as bar:
            summary = api.inspect(trace, progress=bar.advance if bar else None, redact=redact, select=select)
    except DiagError as exc:
        _fail(api.redact_message(str(exc), [trace]) if redact else str(exc))
    if as_json:
        echo(json.dumps(summary.model_dump(mode="json", by_alias=True), indent=2))  # ASCII: no raw controls
    else:
        echo(api.render_inspect_text(summary))


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
    db: Path = DB_OPTION,
    out: Path = OUT_OPTION,
    threshold: codes.Severity = typer.Option(codes.Severity.low, "--threshold",
                                           help="Lowest severity that makes the exit code 1."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (schema wnvdiag.check/2)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    report: str = typer.Option("md", "--report", help="Report formats, comma-separated: html, md, txt (plain text), json, csv, or all."),
    case: str = typer.Option(None, "--case", help="Support case id: stored with the run and stamped on every report."),
    redact: bool = typer.Option(False, "--redact", help="Replace IPs, MACs, host/user/switch/adapter names and paths "
                                                        "in the reports with consistent pseudonyms."),
    pcap: Path = typer.Option(None, "--pcap", metavar="DIR", help="Write one evidence pcapng per finding with drops."),
    rules_timeout: float = typer.Option(codes.RULES_TIMEOUT, "--rules-timeout", metavar="SECONDS", min=1,
                                        help="Stop a rules worker that runs longer (the run is then incomplete)."),
    rules_memory: int = typer.Option(codes.RULES_MEMORY_MB, "--rules-memory", metavar="MB", min=64,
                                     help="Address-space limit of each rules worker."),
    fresh: bool = typer.Option(False, "--fresh", help="Read the trace again even when the database holds a run of "
                                                      "the same trace, rules and options."),
    since: str = SINCE_OPTION,
    until: str = UNTIL_OPTION,
    component: list[int] = COMPONENT_OPTION,
    address: list[str] = ADDRESS_OPTION,
    vlan: list[int] = VLAN_OPTION,
) -> None:
    """Read the trace, run the rules, store the run and write the reports (Markdown by default)."""
    from diag import api

    try:
        select = packet_filter(since, until, component, address, vlan)
        with progress_bar(_reading(trace, redact), quiet or as_json) as bar:
            result = api.check(trace, rule_dirs=rules, host_info=host_info, only=only, skip=skip, db_path=db,
                               out_dir=out, threshold=threshold, arguments=sys.argv[1:],
                               report_formats=report, case_id=case, redact=redact, pcap_dir=pcap,
                               rules_timeout=rules_timeout, rules_memory_mb=rules_memory, reuse=not fresh,
                               select=select,
                               progress=bar.advance if bar else None, phase=bar.phase if bar else None)
    except DiagError as exc:
        _fail(api.redact_message(str(exc), [trace, *host_info]) if redact else str(exc))
    if as_json:
        echo(json.dumps(result.as_json(), indent=2, default=str))
    elif not quiet:
        echo(api.render_check_text(result))
    raise typer.Exit(result.exit_code)


def main() -> None:
    """The console entry point: every way out has its documented exit code, none is a bare traceback."""
    try:
        code = readable_help(typer.main.get_command(app)).main(prog_name="wnvdiag", standalone_mode=False)
        if code == Exit.INTERRUPTED:  # typer's own handling of Ctrl-C: it returns 130 and says nothing
            code = _interrupted()
    except (*_CLICK.Abort, KeyboardInterrupt):  # Ctrl-C
        code = _interrupted()
    except _CLICK.ClickException as exc:  # usage errors: click's own message, code 2
        exc.show()
        code = exc.exit_code
    except _CLICK.Exit as exc:  # typer turns Ctrl-C into Exit(130), silently
        code = _interrupted() if isinstance(exc.__cause__, KeyboardInterrupt) else exc.exit_code
    except OSError as exc:  # the environment: a file that cannot be written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        echo(f"wnvdiag: error: {where}{exc.strerror or exc}", err=True)
        code = Exit.ERROR
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line, details in a file, never code 0 or 1
        code = _internal_error(exc)
    sys.exit(code if isinstance(code, int) else 0)


def readable_help(command: click.Command) -> click.Command:
    """Metavars as click and most tools print them (TRACE, PATH, TEXT, N) in place of typer's Python types
    (``<list[Path]>``, ``{trace}``), on every command and sub-command."""
    ctx = command.context_class(command)
    for param in command.params:
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        if param.param_type_name == "argument":
            name = param.name.upper()
            param.metavar = name + ("..." if param.nargs != 1 else "")
            # typer's own rendering adds the Python type and braces: say the name once, as click does
            param.display_type_rich = lambda ctx: None
            param._usage_display_name = lambda p=param: p.metavar if p.required else f"[{p.metavar}]"
            continue
        shown = getattr(param, "display_type", None)
        label = str(shown(ctx) or "") if shown else ""
        label = label.strip("<>").removeprefix("list[").removesuffix("]")
        if "|" in label:
            param.metavar = f"[{label}]"
        else:
            kind = label.split(" ")[0].lower()
            param.metavar = {"path": "PATH", "int": "N", "float": "NUMBER"}.get(kind, "TEXT")
    command.context_class = _whole_words(command.context_class)
    for sub in getattr(command, "commands", {}).values():
        readable_help(sub)
    return command


_NO_BREAK_HYPHEN = "\u2011"


def _whole_words(context_class: type) -> type:
    """The command's context class, with a help formatter that wraps lines between words only: click's
    wrapper also breaks after a hyphen ("comma-" / "separated", "ConvertTo-" / "Json")."""
    base = context_class.formatter_class

    class WholeWordsFormatter(base):
        def write(self, string: str) -> None:
            super().write(string.replace(_NO_BREAK_HYPHEN, "-"))

        def write_text(self, text: str) -> None:
            super().write_text(text.replace("-", _NO_BREAK_HYPHEN))

        def write_dl(self, rows, *args, **kwargs) -> None:
            super().write_dl([(first, second.replace("-", _NO_BREAK_HYPHEN)) for first, second in rows],
                             *args, **kwargs)

    return type(context_class.__name__, (context_class,), {"formatter_class": WholeWordsFormatter})


def _classes(name: str) -> tuple[type, ...]:
    """click's exception class ``name``, and typer's own or its copy of click's, where they exist."""
    places = [click.exceptions, typer, getattr(getattr(typer, "_click", None), "exceptions", None)]
    return tuple({getattr(m, name) for m in places if m is not None and isinstance(getattr(m, name, None), type)})


class _CLICK:
    Abort = _classes("Abort")
    ClickException = _classes("ClickException")
    Exit = _classes("Exit")


def _interrupted() -> int:
    echo("wnvdiag: interrupted (a run is stored whole or not at all; reports are written whole or not at all)",
         err=True)
    return Exit.INTERRUPTED


def _internal_error(exc: Exception) -> int:
    import tempfile
    import traceback

    details = "".join(traceback.format_exception(exc))
    try:
        with tempfile.NamedTemporaryFile("w", prefix="wnvdiag-crash-", suffix=".txt", delete=False) as fh:
            fh.write(f"wnvdiag {__version__}\nargv: {sys.argv!r}\n\n{details}")
            where = f"details in {fh.name}"
    except OSError:
        where = "no file could be written for the details"
    echo(f"wnvdiag: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} ({where}); "
         "please report it", err=True)
    return Exit.INTERNAL


if __name__ == "__main__":
    main()
