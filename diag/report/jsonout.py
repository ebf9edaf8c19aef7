"""The JSON report: the whole run, stable for scripts, described by ``reports/schemas/report.schema.json``;
and what ``check --json`` prints: the same document, with what the check did (``check.schema.json``).

Regenerate the schemas with ``python -m diag.report.jsonout report > reports/schemas/report.schema.json``
and ``python -m diag.report.jsonout check > reports/schemas/check.schema.json``; a test fails when a
published schema and its model drift apart.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from diag.report.model import RunReport, Verdict

SCHEMA_ID = "wnvdiag.report/1"
CHECK_SCHEMA_ID = "wnvdiag.check/2"

__all__ = ["CHECK_SCHEMA_ID", "CheckDocument", "ReportDocument", "SCHEMA_ID", "check_document", "json_schema",
           "report_document", "render_json"]


class FindingRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str  # as in the run database and the CSV files
    rule_id: str
    severity: str
    shown: bool  # at or above the run's minimum severity


class ReportDocument(BaseModel):
    """``schema`` names the format; ``run`` is everything the run produced (findings with their
    evidence rows, rule errors, trace and quality, metadata)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: Literal["wnvdiag.report/1"] = SCHEMA_ID  # serialized as "schema"
    case_id: str | None
    verdict: Verdict
    complete: bool
    redacted: bool
    severity_counts: dict[str, int]
    findings: list[FindingRef]
    run: RunReport


def report_document(run: RunReport, *, redacted: bool = False) -> ReportDocument:
    from diag.store import finding_id

    shown = {id(f) for f in run.shown_findings}
    return ReportDocument(
        case_id=run.case_id,
        verdict=run.verdict,
        complete=run.complete,
        redacted=redacted,
        severity_counts=run.severity_counts,
        findings=[
            FindingRef(id=finding_id(run.run_id, f.rule_id, list(f.fact_ids)), rule_id=f.rule_id,
                       severity=f.severity, shown=id(f) in shown)
            for f in run.findings
        ],
        run=run,
    )


class CheckDocument(ReportDocument):
    """``check --json``: the report document of the run (the same shape as the JSON report, so that one
    jq filter reads both), and what this check did: where it stored and wrote, and its exit code."""

    schema_: Literal["wnvdiag.check/2"] = CHECK_SCHEMA_ID  # type: ignore[assignment]
    run_id: str
    db: str
    reports: dict[str, list[str]]  # format -> files written
    pcaps: dict[str, str]  # rule id -> evidence pcapng written (check --pcap)
    threshold: str
    findings_at_threshold: int
    exit_code: int
    reused: bool  # a stored run of the same question, reported again without reading the trace


def check_document(run: RunReport, *, redacted: bool, db: str, reports: dict[str, list[str]], pcaps: dict[str, str],
                   threshold: str, findings_at_threshold: int, exit_code: int, reused: bool) -> dict:
    report = report_document(run, redacted=redacted)
    doc = CheckDocument(**{name: getattr(report, name) for name in ReportDocument.model_fields if name != "schema_"},
                        run_id=run.run_id, db=db, reports=reports, pcaps=pcaps, threshold=threshold,
                        findings_at_threshold=findings_at_threshold, exit_code=exit_code, reused=reused)
    return _rename(doc.model_dump(mode="json"))


def _rename(doc: dict) -> dict:
    return {("schema" if k == "schema_" else k): v for k, v in doc.items()}


def render_json(run: RunReport, *, redacted: bool = False) -> str:
    doc = _rename(report_document(run, redacted=redacted).model_dump(mode="json"))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def json_schema(kind: str = "report") -> dict:
    """The published JSON Schema of the report document (``report``) or of ``check --json`` (``check``)."""
    model, schema_id = {"report": (ReportDocument, SCHEMA_ID), "check": (CheckDocument, CHECK_SCHEMA_ID)}[kind]
    schema = model.model_json_schema(mode="serialization")
    schema["properties"] = _rename(schema["properties"])
    schema["properties"]["schema"]["title"] = "Schema"
    schema["required"] = ["schema", *[r for r in schema.get("required", []) if r != "schema_"]]
    schema["$id"] = f"https://wnvdiag/schemas/{kind}.schema.json"
    schema["title"] = f"wnvdiag {kind} ({schema_id})"
    return schema


if __name__ == "__main__":
    import sys

    print(json.dumps(json_schema(sys.argv[1] if len(sys.argv) > 1 else "report"), indent=2))
