"""The run database (SQLite): every run with its trace, quality, findings, evidence and errors.

This module is the only user of ``sqlite_utils``. Tables are created explicitly; a run is written
inside one transaction, so a failure part-way leaves nothing of that run behind. Writes go
straight to the file given; readers open it read-only and never create it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict

from diag.errors import BadInputError
from diag.report.model import RunReport

SCHEMA_VERSION = 1

__all__ = ["RunSummary", "SCHEMA_VERSION", "finding_id", "list_runs", "load_run", "save_run"]


class RunSummary(BaseModel):
    """One line of ``list_runs``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    started: datetime
    tool_version: str
    trace_path: str
    verdict: str
    findings: int


_TABLES: dict[str, dict[str, Any]] = {
    "runs": dict(
        columns={
            "id": str,
            "started": str,
            "finished": str,
            "tool_version": str,
            "arguments": str,  # JSON
            "trace_path": str,
            "trace_sha256": str,
            "trace_size": int,
            "verdict": str,
            "min_severity": str,
            "failure": str,
            "findings_count": int,
            "rules_loaded": str,  # JSON list
            "rules_run": str,  # JSON list
            "facts_asserted": int,
            "facts_unmatched": int,
            "engine_errors": str,  # JSON list
        },
        pk="id",
        not_null={"started", "tool_version", "trace_path", "verdict", "min_severity"},
    ),
    "traces": dict(
        columns={
            "run_id": str,
            "path": str,
            "sha256": str,
            "size": int,
            "format": str,
            "os_build": int,
            "start_time": str,
            "end_time": str,
            "records_read": int,
            "records_decoded": int,
            "header": str,  # JSON
            "events_lost": int,
            "buffers_lost": int,
            "records_undecoded": int,
            "buffers_skipped": int,
            "truncated": int,
        },
        pk="run_id",
        foreign_keys=[("run_id", "runs", "id")],
        not_null={"path"},
    ),
    "findings": dict(
        columns={
            "id": str,
            "run_id": str,
            "position": int,
            "rule_id": str,
            "title": str,
            "severity": str,
            "confidence": str,
            "summary": str,
            "remediation": str,
            "reference_urls": str,  # JSON list
            "fact_ids": str,  # JSON list
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        not_null={"run_id", "rule_id", "severity", "confidence"},
    ),
    "evidence": dict(
        columns={"id": int, "run_id": str, "finding_id": str, "position": int, "data": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("finding_id", "findings", "id")],
        not_null={"run_id", "finding_id", "data"},
    ),
    "rule_errors": dict(
        columns={"id": int, "run_id": str, "position": int, "rule_id": str, "file": str, "message": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        not_null={"run_id", "message"},
    ),
}

_INDEXES = [("findings", ["run_id"]), ("evidence", ["finding_id"]), ("rule_errors", ["run_id"])]


def finding_id(run_id: str, rule_id: str, fact_ids: list[str]) -> str:
    """Stable id of a finding: a hash over the run id, the rule id and the sorted fact ids."""
    text = "\x1f".join([run_id, rule_id, *sorted(fact_ids)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def save_run(db_path: str | Path, run: RunReport | Mapping[str, Any]) -> str:
    """Write ``run`` to the database at ``db_path`` (created if missing); return the run id.

    Everything is written in one transaction: on any error nothing of this run is kept, and the
    error is raised (``sqlite3.IntegrityError`` if a run with this id is already stored).
    """
    report = run if isinstance(run, RunReport) else RunReport.model_validate(run)
    data = report.model_dump(mode="json")
    run_id = report.run_id
    db = _open_for_write(Path(db_path))
    try:
        _ensure_schema(db, Path(db_path))
        conn = db.conn
        with conn:  # one transaction: commit at the end, roll back on any exception
            _insert(conn, "runs", _run_row(report, data))
            _insert(conn, "traces", _trace_row(run_id, data))
            for position, finding in enumerate(data["findings"]):
                fid = finding_id(run_id, finding["rule_id"], finding["fact_ids"])
                _insert(
                    conn,
                    "findings",
                    {
                        "id": fid,
                        "run_id": run_id,
                        "position": position,
                        "rule_id": finding["rule_id"],
                        "title": finding["title"],
                        "severity": finding["severity"],
                        "confidence": finding["confidence"],
                        "summary": finding["summary"],
                        "remediation": finding["remediation"],
                        "reference_urls": _json(finding["references"]),
                        "fact_ids": _json(finding["fact_ids"]),
                    },
                )
                for row_no, row in enumerate(finding["evidence"]):
                    _insert(
                        conn,
                        "evidence",
                        {"run_id": run_id, "finding_id": fid, "position": row_no, "data": _json(row)},
                    )
            for position, error in enumerate(data["rule_errors"]):
                _insert(conn, "rule_errors", {"run_id": run_id, "position": position, **error})
    finally:
        db.close()
    return run_id


def list_runs(db_path: str | Path) -> list[RunSummary]:
    """Every stored run, newest first; an empty list if the database does not exist yet."""
    path = Path(db_path)
    if not path.exists():
        return []
    db = _open_read_only(path)
    try:
        rows = db.query(
            "SELECT id, started, tool_version, trace_path, verdict, findings_count FROM runs "
            "ORDER BY started DESC, id DESC"
        )
        return [
            RunSummary(
                run_id=r["id"],
                started=r["started"],
                tool_version=r["tool_version"],
                trace_path=r["trace_path"],
                verdict=r["verdict"],
                findings=r["findings_count"],
            )
            for r in rows
        ]
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot read runs ({exc})", path) from None
    finally:
        db.close()


def load_run(db_path: str | Path, run_id: str) -> RunReport:
    """The stored run ``run_id``; ``BadInputError`` if the database or the run does not exist."""
    path = Path(db_path)
    if not path.exists():
        raise BadInputError("no such run database", path)
    db = _open_read_only(path)
    try:
        return _load(db, path, run_id)
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot read run {run_id} ({exc})", path) from None
    finally:
        db.close()


# ---------------------------------------------------------------------------------------------


def check_writable(db_path: str | Path) -> None:
    """Fail early, before a long analysis, if ``db_path`` cannot take a run. Creates nothing."""
    path = Path(db_path)
    _check_path(path)
    if path.exists() and path.stat().st_size > 0:
        _open_read_only(path).close()


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise BadInputError("is a directory, not a run database", path)
    if not path.parent.is_dir():
        raise BadInputError("the directory of the run database does not exist", path)


def _open_for_write(path: Path) -> sqlite_utils.Database:
    _check_path(path)
    try:
        conn = sqlite3.connect(str(path))
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot open the run database ({exc})", path) from None
    return sqlite_utils.Database(conn)


def _open_read_only(path: Path) -> sqlite_utils.Database:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot open the run database ({exc})", path) from None
    return sqlite_utils.Database(conn)


def _ensure_schema(db: sqlite_utils.Database, path: Path) -> None:
    try:
        version = db.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise BadInputError(
                f"was written by a newer wnvdiag (schema {version}; this one reads {SCHEMA_VERSION})", path
            )
        if version == SCHEMA_VERSION and set(_TABLES) <= set(db.table_names()):
            return
        if version == 0 and set(db.table_names()) - set(_TABLES):
            raise BadInputError("is an SQLite database, but not a wnvdiag run database", path)
        with db.conn:
            for name, spec in _TABLES.items():
                db[name].create(
                    spec["columns"],
                    pk=spec["pk"],
                    foreign_keys=spec.get("foreign_keys"),
                    not_null=spec.get("not_null"),
                    if_not_exists=True,
                )
            for table, columns in _INDEXES:
                db[table].create_index(columns, if_not_exists=True)
            db.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.DatabaseError as exc:
        raise BadInputError(f"is not a usable run database ({exc})", path) from None


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(f"[{c}]" for c in row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT INTO [{table}] ({columns}) VALUES ({marks})", list(row.values()))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def _run_row(report: RunReport, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": report.run_id,
        "started": data["started"],
        "finished": data["finished"],
        "tool_version": report.tool_version,
        "arguments": _json(data["arguments"]),
        "trace_path": report.trace.path,
        "trace_sha256": report.trace.sha256,
        "trace_size": report.trace.size,
        "verdict": report.verdict,
        "min_severity": report.min_severity,
        "failure": report.failure,
        "findings_count": len(report.findings),
        "rules_loaded": _json(report.rules_loaded),
        "rules_run": _json(report.rules_run),
        "facts_asserted": report.facts_asserted,
        "facts_unmatched": report.facts_unmatched,
        "engine_errors": _json(report.engine_errors),
    }


def _trace_row(run_id: str, data: dict[str, Any]) -> dict[str, Any]:
    trace, quality = data["trace"], data["quality"]
    return {
        "run_id": run_id,
        **{k: trace[k] for k in ("path", "sha256", "size", "format", "os_build", "start_time", "end_time")},
        "records_read": trace["records_read"],
        "records_decoded": trace["records_decoded"],
        "header": _json(trace["header"]),
        "events_lost": quality["events_lost"],
        "buffers_lost": quality["buffers_lost"],
        "records_undecoded": quality["records_undecoded"],
        "buffers_skipped": quality["buffers_skipped"],
        "truncated": int(quality["truncated"]),
    }


def _load(db: sqlite_utils.Database, path: Path, run_id: str) -> RunReport:
    runs = list(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    if not runs:
        raise BadInputError(f"no run {run_id!r} in this database", path)
    run = runs[0]
    trace = next(iter(db.query("SELECT * FROM traces WHERE run_id = ?", [run_id])), None)
    if trace is None:
        raise BadInputError(f"run {run_id!r} has no trace row (damaged database)", path)
    findings = []
    for f in db.query("SELECT * FROM findings WHERE run_id = ? ORDER BY position", [run_id]):
        evidence = [
            json.loads(e["data"])
            for e in db.query("SELECT data FROM evidence WHERE finding_id = ? ORDER BY position", [f["id"]])
        ]
        findings.append(
            {
                "rule_id": f["rule_id"],
                "title": f["title"],
                "severity": f["severity"],
                "confidence": f["confidence"],
                "summary": f["summary"],
                "evidence": evidence,
                "remediation": f["remediation"],
                "references": json.loads(f["reference_urls"]),
                "fact_ids": json.loads(f["fact_ids"]),
            }
        )
    rule_errors = [
        {"rule_id": e["rule_id"], "file": e["file"], "message": e["message"]}
        for e in db.query("SELECT * FROM rule_errors WHERE run_id = ? ORDER BY position", [run_id])
    ]
    return RunReport.model_validate(
        {
            "run_id": run["id"],
            "started": run["started"],
            "finished": run["finished"],
            "tool_version": run["tool_version"],
            "arguments": json.loads(run["arguments"]),
            "trace": {
                **{k: trace[k] for k in ("path", "sha256", "size", "format", "os_build", "start_time", "end_time")},
                "records_read": trace["records_read"],
                "records_decoded": trace["records_decoded"],
                "header": json.loads(trace["header"]),
            },
            "quality": {
                "events_lost": trace["events_lost"],
                "buffers_lost": trace["buffers_lost"],
                "records_undecoded": trace["records_undecoded"],
                "buffers_skipped": trace["buffers_skipped"],
                "truncated": bool(trace["truncated"]),
            },
            "min_severity": run["min_severity"],
            "findings": findings,
            "rule_errors": rule_errors,
            "engine_errors": json.loads(run["engine_errors"]),
            "rules_loaded": json.loads(run["rules_loaded"]),
            "rules_run": json.loads(run["rules_run"]),
            "facts_asserted": run["facts_asserted"],
            "facts_unmatched": run["facts_unmatched"],
            "failure": run["failure"],
        }
    )
