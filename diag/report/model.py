"""``RunReport``: everything one run produced, as the store saves it and the reports render it.

The CLI/API fills it (``RunReport.from_engine`` for the usual case); ``diag.store`` saves and loads
it; ``diag.report.markdown`` renders it.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from diag import __version__
from diag.facts.models import CONFIDENCES, SEVERITIES, Finding, RuleError, Severity, TraceQuality, severity_rank

if TYPE_CHECKING:
    from diag.engine.runner import EngineResult

Verdict = Literal["failed", "inconclusive", "findings", "incomplete", "no_findings"]
INCONCLUSIVE_TAG = "inconclusive"  # a finding with it says the trace could not answer: the verdict is inconclusive
OVERVIEW_TAG = "overview"  # broad summaries (all drops, their rates): ranked after specific diagnoses


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_run_id() -> str:
    """Sortable and short: UTC start time plus 6 random hex digits."""
    return f"{utc_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def count_by_severity(findings: "list[Finding]") -> dict[str, int]:
    """Findings per severity, most severe first, zero counts left out."""
    counts = {s: 0 for s in reversed(SEVERITIES)}
    for f in findings:
        counts[f.severity] += 1
    return {s: n for s, n in counts.items() if n}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TraceInfo(_Frozen):
    """The trace file and what the reader got out of it."""

    path: str
    sha256: str | None = None
    size: int | None = None
    format: str | None = None  # e.g. "pktmon", "netsh trace"
    os_build: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    records_read: int = 0
    records_decoded: int = 0
    header: dict[str, Any] = {}  # other logfile-header values worth showing, name -> value


def fact_records(facts: "list[BaseModel]") -> list[dict[str, Any]]:
    """Facts as the run keeps them: JSON-ready dicts with the id the rules engine gives the fact
    (``<kind>:<index>``; the engine may add ``~N`` on a rare hash collision, which
    ``RunReport.fact`` ignores)."""
    out = []
    for index, fact in enumerate(facts):
        data = fact.model_dump(mode="json")
        out.append({"id": f"{data['kind']}:{index}", **data})
    return out


class HostInfoFile(_Frozen):
    """A host-info file given with ``--host-info``: where it was, its SHA-256 and size, and what of it
    could not be used or is missing (``warnings``: "file:line: ...")."""

    path: str
    sha256: str | None = None
    size: int | None = None
    warnings: list[str] = []


class RunReport(_Frozen):
    run_id: str = Field(default_factory=new_run_id)
    started: datetime = Field(default_factory=utc_now)
    finished: datetime | None = None
    tool_version: str = __version__
    arguments: dict[str, Any] = {}
    trace: TraceInfo
    quality: TraceQuality = TraceQuality()
    min_severity: Severity = "info"
    findings: list[Finding] = []
    rule_errors: list[RuleError] = []
    engine_errors: list[str] = []
    rules_loaded: list[str] = []
    rules_run: list[str] = []
    facts_asserted: int = 0
    facts_unmatched: int = 0
    failure: str | None = None  # set when the analysis failed (AnalysisFailed): no conclusion
    case_id: str | None = None  # the support case this run belongs to (``--case``)
    rules_version: str | None = None  # fingerprint of the rule files loaded (``diag.store.fingerprint_files``)
    host_info: list[HostInfoFile] = []
    # The facts the rules saw, each {"id": "<kind>:<index>", "kind": ..., fields...} (``fact_records``):
    # the reports draw packet paths, drop rates, components and providers from them.
    facts: list[dict[str, Any]] = []

    @classmethod
    def from_engine(cls, result: "EngineResult", *, trace: TraceInfo, **fields: Any) -> "RunReport":
        """A report of ``result``; ``fields`` sets the rest (quality, arguments, min_severity, …)."""
        return cls(
            trace=trace,
            findings=result.findings,
            rule_errors=result.rule_errors,
            engine_errors=result.engine_errors,
            rules_loaded=result.rules_loaded,
            rules_run=result.rules_run,
            facts_asserted=result.facts_asserted,
            facts_unmatched=result.facts_unmatched,
            **fields,
        )

    def facts_of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.facts if f.get("kind") == kind]

    def fact(self, fact_id: str) -> dict[str, Any] | None:
        base = fact_id.split("~", 1)[0]
        return next((f for f in self.facts if f.get("id") == base), None)

    @property
    def complete(self) -> bool:
        """Rules were loaded, every one ran to completion, and the engine reported no error."""
        return (
            self.failure is None
            and not self.rule_errors
            and not self.engine_errors
            and bool(self.rules_loaded)
            and set(self.rules_run) == set(self.rules_loaded)
        )

    @property
    def shown_findings(self) -> list[Finding]:
        """Findings at or above ``min_severity`` (and whatever says the trace could not answer), in the order a
        reader should take them: what makes the run inconclusive first, then most severe first; within a severity,
        specific diagnoses before overviews (all drops, their rates), then by confidence (stable otherwise)."""
        floor = severity_rank(self.min_severity)
        shown = [f for f in self.findings if severity_rank(f.severity) >= floor or INCONCLUSIVE_TAG in f.tags]
        return sorted(shown, key=lambda f: (INCONCLUSIVE_TAG not in f.tags, -severity_rank(f.severity),
                                            OVERVIEW_TAG in f.tags, -CONFIDENCES.index(f.confidence)))

    @property
    def inconclusive(self) -> list[Finding]:
        """The findings that say this trace cannot answer (``inconclusive`` tag)."""
        return [f for f in self.findings if INCONCLUSIVE_TAG in f.tags]

    @property
    def problem_findings(self) -> list[Finding]:
        """Shown findings other than the ones that make the run inconclusive."""
        return [f for f in self.shown_findings if INCONCLUSIVE_TAG not in f.tags]

    @property
    def hidden_findings(self) -> int:
        return len(self.findings) - len(self.shown_findings)

    @property
    def severity_counts(self) -> dict[str, int]:
        """Shown findings per severity, most severe first, zero counts left out."""
        return count_by_severity(self.shown_findings)

    @property
    def verdict(self) -> Verdict:
        """failed (the rules could not run), inconclusive (the trace cannot answer), findings, incomplete (no
        findings, but not every rule ran: that is no clean result), no_findings (we looked and found none)."""
        if self.failure is not None:
            return "failed"
        if self.inconclusive:
            return "inconclusive"
        if self.problem_findings:
            return "findings"
        if not self.complete:
            return "incomplete"
        return "no_findings"
