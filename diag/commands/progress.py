"""Progress on stderr, as long reads show it elsewhere (pktmon, tshark): never on stdout, so that
``wnvdiag inspect big.etl > summary.txt`` gets the summary and nothing else, and never when stderr is
not a terminal or the command is quiet.

    with progress_bar("reading trace.etl", quiet) as bar:
        api.check(..., progress=bar.advance if bar else None, phase=bar.phase if bar else None)

``advance(done, total)`` moves the bar (bytes); ``phase(text)`` names the next phase (running the
rules, writing the reports) and shows it as a pulsing bar until ``advance`` is called again.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator


class Bar:
    def __init__(self, progress, task) -> None:
        self._progress = progress
        self._task = task

    def advance(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def phase(self, text: str) -> None:
        self._progress.update(self._task, description=text, completed=0, total=None)


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[Bar | None]:
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn, TimeElapsedColumn,
                               TimeRemainingColumn, TransferSpeedColumn)
    from rich.text import Text

    class WhileMeasured(ProgressColumn):
        """``inner`` only while bytes are counted: a phase without a size shows its elapsed time alone."""

        def __init__(self, inner: ProgressColumn) -> None:
            super().__init__()
            self.inner = inner

        def render(self, task):
            return self.inner.render(task) if task.total is not None else Text("")

    with Progress("[progress.description]{task.description}", BarColumn(), WhileMeasured(DownloadColumn()),
                  WhileMeasured(TransferSpeedColumn()), WhileMeasured(TimeRemainingColumn()), TimeElapsedColumn(),
                  transient=True, console=Console(stderr=True)) as progress:
        yield Bar(progress, progress.add_task(label, total=None))
