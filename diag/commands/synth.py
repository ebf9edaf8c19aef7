"""``wnvdiag synth``: synthesized traces with a known diagnosis, over ``diag.synth.generate``.

    wnvdiag synth list
    wnvdiag synth SCENARIO -o trace.etl [--size 1G] [--seed N] [--compressed/--plain] [--build 26100]
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from diag.errors import DiagError
from diag.commands.output import echo, fail

EXIT_ERROR = 2


class _ScenarioGroup(TyperGroup):
    """``synth SCENARIO ...`` runs the ``generate`` command: a first word that is not a command
    is a scenario name."""

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["generate", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_ScenarioGroup, no_args_is_help=True, add_completion=False,
                  help="Write synthetic traces whose diagnosis is known (SCENARIO, or `list`).")


def _fail(message: str) -> None:
    fail(message)


@app.command("list")
def list_scenarios() -> None:
    """The scenarios, with what each shows."""
    from diag.synth import generate

    scenarios = generate.registry()
    width = max(len(name) for name in scenarios)
    for name, s in scenarios.items():
        echo(f"{name.ljust(width)}  {s.title}")


@app.command("generate")
def generate_trace(
    scenario: str = typer.Argument(..., help="Scenario name (see `wnvdiag synth list`)."),
    out: Path = typer.Option(..., "--out", "-o", help="The trace to write (.etl); the ground truth goes beside it."),
    size: Optional[str] = typer.Option(None, "--size", help="Grow the trace to about this size (e.g. 1G, 500M)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: the scenario's own)."),
    compressed: Optional[bool] = typer.Option(None, "--compressed/--plain",
                                              help="LZXpress-compressed buffers as pktmon's relogger writes them, "
                                                   "or plain ones (default: the scenario's)."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Seconds of traffic."),
    rate: Optional[float] = typer.Option(None, "--rate", help="Packets per second of the scenario's traffic."),
    hosts: Optional[int] = typer.Option(None, "--hosts", help="Containers or VMs on the host."),
    build: Optional[int] = typer.Option(None, "--build",
                                        help="Windows build the trace claims (default: the scenario's). 26100 and "
                                             "later number every packet snapshot on its own, as pktmon there does."),
) -> None:
    """Write SCENARIO's trace to OUT and its ground truth to OUT's name + .truth.json."""
    from diag.synth import generate

    try:
        result = generate.synthesize(scenario, out, seed=seed, size=size, compressed=compressed, duration=duration,
                                     rate=rate, hosts=hosts, build=build)
    except DiagError as exc:
        _fail(str(exc))
        return
    w = result.written
    kind = "compressed" if w.compressed else "plain"
    echo(f"wrote {result.trace} ({w.file_size:,} bytes, {w.records:,} records, {w.buffers} {kind} buffers) "
               f"in {result.seconds:.2f} s")
    echo(f"ground truth: {result.truth}")
    for path in result.host_info:
        echo(f"host info: {path}")
    echo("expected findings: " + (", ".join(result.expect) or "none"))
