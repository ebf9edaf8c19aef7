"""The JSON report: the whole run, stable for scripts, described by ``reports/schemas/report.schema.json``.

Regenerate the schema with ``python -m diag.report.jsonout > reports/schemas/report.schema.json``;
a test fails when the published schema and this model drift apart.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

from diag.report.model import RunReport, Verdict

SCHEMA_ID = "wnvdiag.report/1"

__all__ = ["ReportDocument", "SCHEMA_ID", "report_document", "render_json"]


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


def _rename(doc: dict) -> dict:
    return {("schema" if k == "schema_" else k): v for k, v in doc.items()}


def render_json(run: RunReport, *, redacted: bool = False) -> str:
    doc = _rename(report_document(run, redacted=redacted).model_dump(mode="json"))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def json_schema() -> dict:
    schema = ReportDocument.model_json_schema(mode="serialization")
    schema["properties"] = _rename(schema["properties"])
    schema["properties"]["schema"]["title"] = "Schema"
    schema["required"] = ["schema", *[r for r in schema.get("required", []) if r != "schema_"]]
    schema["$id"] = "https://wnvdiag/schemas/report.schema.json"
    schema["title"] = "wnvdiag report (wnvdiag.report/1)"
    return schema


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
