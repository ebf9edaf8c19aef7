"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class DiagError(Exception):
    """Base of every error wnvdiag reports to a user.

    ``str()`` is the one line the CLI prints: it names the file and what is wrong with it.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class BadTraceError(DiagError):
    """The input is not a readable ETL trace (missing, empty, a directory, wrong format)."""


class BadInputError(DiagError):
    """Some other input (host info, rules directory, option value) cannot be used."""


class AnalysisFailed(DiagError):
    """The rules could not run to completion; never to be reported as "no findings"."""


class EngineUnavailable(DiagError):
    """durable_rules cannot be imported in this Python: an install problem, said before any trace is read."""
