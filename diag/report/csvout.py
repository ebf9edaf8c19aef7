"""CSV: one file of findings, one of evidence rows (wide: the union of the rows' columns).

Cells that a spreadsheet would take for a formula (a string starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return) get a leading apostrophe: trace-derived strings must not run in
Excel. Numbers are written as they are.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from diag.report.markdown import columns
from diag.report.model import RunReport
from diag.terminal import for_terminal

FINDINGS_COLUMNS = [
    "case_id", "run_id", "finding_id", "position", "shown", "severity", "confidence", "rule_id", "title", "summary",
    "impact", "remediation", "references", "tags", "evidence_rows",
]

__all__ = ["render_evidence_csv", "render_findings_csv"]


def cell(raw: Any) -> Any:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (int, float)):
        return raw
    if isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, (dict, list)):
        raw = json.dumps(raw, ensure_ascii=False, default=str)
    text = for_terminal(str(raw))  # ESC and other controls shown escaped: the file may be cat'ed
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _write(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[cell(v) for v in row] for row in rows])
    return buf.getvalue()


def render_findings_csv(run: RunReport) -> str:
    from diag.store import finding_id

    shown = {id(f) for f in run.shown_findings}
    rows = [
        [run.case_id, run.run_id, finding_id(run.run_id, f.rule_id, list(f.fact_ids)), i, id(f) in shown, f.severity,
         f.confidence, f.rule_id, f.title, f.summary, f.impact, f.remediation, " ".join(f.references),
         " ".join(f.tags), len(f.evidence)]
        for i, f in enumerate(run.findings)
    ]
    return _write(FINDINGS_COLUMNS, rows)


def render_evidence_csv(run: RunReport) -> str:
    from diag.store import finding_id

    cols = columns([row for f in run.findings for row in f.evidence])
    fixed = ["case_id", "run_id", "finding_id", "rule_id", "row"]
    rows = [
        [run.case_id, run.run_id, finding_id(run.run_id, f.rule_id, list(f.fact_ids)), f.rule_id, n,
         *[row.get(c) for c in cols]]
        for f in run.findings
        for n, row in enumerate(f.evidence)
    ]
    return _write(fixed + [c if c not in fixed else f"evidence_{c}" for c in cols], rows)
