"""What every command prints goes through here: made safe for the terminal, errors in one line."""

from __future__ import annotations

from typing import NoReturn

import typer

from diag.terminal import for_terminal

EXIT_ERROR = 2


def echo(text: str = "", err: bool = False) -> None:
    typer.echo(for_terminal(text), err=err)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """One line on stderr, ``wnvdiag: error: ...``, and the exit code (2 unless said)."""
    echo(f"wnvdiag: error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)
