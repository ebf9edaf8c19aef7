"""What the library and the command share, in a module that imports nothing heavy: the exit codes,
the severity threshold, and the default limits of a rules worker. ``diag.api`` re-exports them; the
command reads them from here, so that ``wnvdiag --help`` starts without the library."""

from __future__ import annotations

from enum import Enum

from diag.engine.child import DEFAULT_MEMORY_MB

# exit codes of every command: stable, documented in the README
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_INTERNAL, EXIT_INTERRUPTED = 4, 130  # a bug of ours (never 0 or 1); Ctrl-C (128 + SIGINT, as shells do)

# A rule phase takes well under a second on real traces; a user's Python rule that hangs must not
# hang the check: past this the run is "analysis failed" (or, for the user's rules, "not run").
RULES_TIMEOUT = 600.0
RULES_MEMORY_MB = DEFAULT_MEMORY_MB


class Severity(str, Enum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)
