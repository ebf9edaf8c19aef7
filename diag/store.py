"""The run database (SQLite): every run with its trace, quality, findings, evidence and errors.

This module is the only user of ``sqlite_utils``. Tables are created explicitly; a run is written
inside one transaction, so a failure part-way (an exception, or the process killed) leaves nothing
of that run behind. Writes go straight to the file given; readers open it read-only and never
create it. Saving a run whose trace, rules, host info, case and settings equal those of a stored,
not-failed run stores nothing and returns the stored run's id (``run_key``): re-runs are
idempotent. The tables are documented in ``reports/database.md``.

A database is checked before a long analysis (``check_writable``): ours (``APPLICATION_ID``, or an
older wnvdiag file with our tables only), a newer schema, or another application's file, which is
refused and left as it was. A new database is built aside and moved into place, so an interrupted
check never leaves an empty or half-made file. Every SQLite error becomes a one-line ``BadInputError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict

from diag.errors import BadInputError
from diag.report.model import RunReport

SCHEMA_VERSION = 4
# SQLite's header field for "which application's file is this" ("WNVD"): set on every database we create,
# so that someone else's SQLite file given as --db is recognised, refused and never modified.
APPLICATION_ID = 0x574E5644

__all__ = [
    "FindingRow", "RunDiff", "RunSummary", "SCHEMA_VERSION", "diff_runs", "fingerprint_files", "finding_id",
    "can_create_in", "list_findings", "list_runs", "load_finding", "load_run", "redaction_key", "redaction_key_path", "resolve_run", "run_key",
    "save_run", "find_reusable",
]


class RunSummary(BaseModel):
    """One line of ``list_runs``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    started: datetime
    tool_version: str
    trace_path: str
    verdict: str
    findings: int
    case_id: str | None = None
    rules_version: str | None = None


class FindingRow(BaseModel):
    """One line of ``list_findings``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    finding_id: str
    run_id: str
    started: datetime
    case_id: str | None
    rule_id: str
    title: str
    severity: str
    confidence: str
    summary: str
    evidence_rows: int


class FindingChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str
    title: str
    changes: dict[str, tuple[Any, Any]]  # field -> (in A, in B)
    evidence_added: list[dict[str, Any]] = []
    evidence_removed: list[dict[str, Any]] = []


class RunDiff(BaseModel):
    """What appeared, disappeared or changed between run A and run B (findings matched by rule id)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_a: str
    run_b: str
    appeared: list[FindingRow]
    disappeared: list[FindingRow]
    changed: list[FindingChange]
    unchanged: list[str]  # rule ids
    run_changes: dict[str, tuple[Any, Any]]  # verdict, trace, quality, rules version, ...


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
            "case_id": str,
            "rules_version": str,
            "host_info": str,  # JSON list of {path, sha256, size}
            "run_key": str,
            "input_key": str,  # what the run was asked (trace, code, rules, options): see find_reusable
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
            "impact": str,
            "tags": str,  # JSON list
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
        not_null={"run_id", "rule_id", "severity", "confidence"},
    ),
    "evidence": dict(
        columns={"id": int, "run_id": str, "finding_id": str, "position": int, "data": str, "fact_ids": str},
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

_TABLES["facts"] = dict(
    columns={"id": int, "run_id": str, "position": int, "fact_id": str, "kind": str, "data": str},
    pk="id",
    foreign_keys=[("run_id", "runs", "id")],
    not_null={"run_id", "fact_id", "kind", "data"},
)
# Every evidence row's fields, one row each: evidence keys differ by rule and some hold dots ("a.component_id")
# that a JSON path cannot name plainly, so a query filters on ``field`` instead.
_TABLES["evidence_fields"] = dict(
    # value: declared BLOB, i.e. no type affinity, so that numbers stay numbers ("value > 100" compares numbers)
    columns={"id": int, "run_id": str, "finding_id": str, "evidence_id": int, "row": int, "field": str,
             "value": bytes},
    pk="id",
    foreign_keys=[("run_id", "runs", "id"), ("finding_id", "findings", "id"), ("evidence_id", "evidence", "id")],
    not_null={"run_id", "finding_id", "evidence_id", "field"},
)
_TABLES["meta"] = dict(columns={"name": str, "value": str}, pk="name", not_null={"value"})
# The same statement fills evidence_fields for a new run and for the runs of a database written before it.
_FILL_EVIDENCE_FIELDS = (
    "INSERT INTO evidence_fields (run_id, finding_id, evidence_id, row, field, value) "
    "SELECT e.run_id, e.finding_id, e.id, e.position, j.key, j.value FROM evidence e, json_each(e.data) j "
    "WHERE {where} ORDER BY e.id, j.id"
)
_FTS_COLUMNS = ["rule_id", "title", "summary", "remediation", "impact"]
# Answers to the common questions in one query each (reports/database.md shows them in use).
_VIEWS = {
    "drops": """
        SELECT f.run_id, f.kind = 'background_drop' AS background,
               json_extract(f.data, '$.component_id') AS component_id,
               json_extract(f.data, '$.component_name') AS component_name,
               json_extract(f.data, '$.component_type') AS component_type,
               json_extract(f.data, '$.direction') AS direction,
               json_extract(f.data, '$.reason_code') AS reason_code,
               json_extract(f.data, '$.reason_name') AS reason_name,
               json_extract(f.data, '$.count') AS drops,
               json_extract(f.data, '$.distinct_frames') AS distinct_frames,
               json_extract(f.data, '$.first_seen') AS first_seen,
               json_extract(f.data, '$.last_seen') AS last_seen,
               json_extract(f.data, '$.destinations') AS destinations
        FROM facts f WHERE f.kind IN ('pktmon_drop', 'background_drop')""",
    "finding_evidence": """
        SELECT f.run_id, f.id AS finding_id, f.rule_id, f.severity, f.confidence, f.title, ef.row, ef.field,
               ef.value
        FROM evidence_fields ef JOIN findings f ON f.id = ef.finding_id""",
    "run_overview": """
        SELECT r.id AS run_id, r.started, r.case_id, r.trace_path, r.verdict, r.min_severity,
               count(f.id) AS findings,
               coalesce(sum(f.severity = 'critical'), 0) AS critical, coalesce(sum(f.severity = 'high'), 0) AS high,
               coalesce(sum(f.severity = 'medium'), 0) AS medium, coalesce(sum(f.severity = 'low'), 0) AS low,
               coalesce(sum(f.severity = 'info'), 0) AS info
        FROM runs r LEFT JOIN findings f ON f.run_id = r.id GROUP BY r.id""",
}

_INDEXES = [
    ("findings", ["run_id"]), ("evidence", ["finding_id"]), ("rule_errors", ["run_id"]), ("runs", ["run_key"]),
    ("runs", ["case_id"]), ("facts", ["run_id", "kind"]), ("runs", ["input_key"]),
    ("evidence_fields", ["finding_id"]), ("evidence_fields", ["field"]),
]
# Columns each schema version added, so that an older database is brought up to date in place.
_ADDED_COLUMNS = {
    2: {"runs": {"case_id": str, "rules_version": str, "host_info": str, "run_key": str},
        "findings": {"impact": str, "tags": str}},
    3: {"evidence": {"fact_ids": str}},  # the facts behind each evidence row
    4: {"runs": {"input_key": str}},  # also new in 4: evidence_fields, the views, findings_fts
}
_SEVERITY_ORDER = ["info", "low", "medium", "high", "critical"]


def fingerprint_files(paths: Iterable[str | Path]) -> str:
    """A short fingerprint of files' names and contents (directories: every file below them).

    Used as the rules version: the same rule files give the same fingerprint anywhere.
    """
    digest = hashlib.sha256()
    files: list[tuple[str, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += [(str(f.relative_to(p)), f) for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
        elif p.is_file():
            files.append((p.name, p))
    for name, f in sorted(files):
        digest.update(name.encode("utf-8") + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()[:16]


def run_key(run: RunReport) -> str | None:
    """What makes two runs the same: trace content, tool and rules versions, the rules that ran,
    host-info contents, case and threshold, and the same outcome (findings, facts, errors, quality), so
    that a re-run which came out differently is kept beside the first, never folded into it.
    ``None`` (never deduplicated) when the trace hash is unknown."""
    if not run.trace.sha256:
        return None
    parts = {
        "trace": run.trace.sha256,
        "tool": run.tool_version,
        "rules_version": run.rules_version,
        "rules": sorted(run.rules_loaded),
        "host_info": sorted(h.sha256 or h.path for h in run.host_info),
        "case": run.case_id,
        "min_severity": run.min_severity,
        "filter": run.arguments.get("filter"),
        "outcome": run.model_dump(
            mode="json",
            include={"findings": True, "facts": True, "rule_errors": True, "engine_errors": True, "quality": True,
                     "rules_run": True, "facts_asserted": True, "facts_unmatched": True, "trace": {"sha256", "size", "records_read", "records_decoded"}},
        ),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def finding_id(run_id: str, rule_id: str, fact_ids: list[str]) -> str:
    """Stable id of a finding: a hash over the run id, the rule id and the sorted fact ids."""
    text = "\x1f".join([run_id, rule_id, *sorted(fact_ids)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def find_reusable(db_path: str | Path, input_key: str) -> str | None:
    """The id of a stored run that answered the same question (``input_key``: the same trace bytes, code,
    rules and options), whose analysis ran whole: not failed, no engine error (a timeout or a crashed
    worker may not happen again). None when there is none, or no database yet."""
    path = Path(db_path)
    if not path.is_file():
        return None
    with _reading(path, "runs") as db:
        if "runs" not in db.table_names() or "input_key" not in {c.name for c in db["runs"].columns}:
            return None
        row = db.conn.execute(
            "SELECT id FROM runs WHERE input_key = ? AND failure IS NULL AND (engine_errors IS NULL OR "
            "engine_errors = '[]') ORDER BY started DESC LIMIT 1", [input_key]).fetchone()
    return row[0] if row else None


def save_run(db_path: str | Path, run: RunReport | Mapping[str, Any], *, input_key: str | None = None) -> str:
    """Write ``run`` to the database at ``db_path`` (created if missing); return the run id.

    Everything is written in one transaction: on any error (or if the process dies) nothing of
    this run is kept, and the error is raised (``sqlite3.IntegrityError`` if a different run with
    this id is already stored). If a not-failed run with the same ``run_key`` is stored already,
    nothing is written and that run's id is returned.
    """
    report = run if isinstance(run, RunReport) else RunReport.model_validate(run)
    data = report.model_dump(mode="json")
    run_id = report.run_id
    key = run_key(report)
    path = Path(db_path)
    db = _open_for_write(path)
    try:
        _ensure_schema(db, path)
        conn = db.conn
        conn.isolation_level = None  # explicit BEGIN IMMEDIATE: the duplicate check and the writes are one unit
        conn.execute("BEGIN IMMEDIATE")
        try:
            if key is not None and report.failure is None:
                same = conn.execute(
                    "SELECT id FROM runs WHERE run_key = ? AND failure IS NULL ORDER BY started LIMIT 1", [key]
                ).fetchone()
                if same is not None:
                    if input_key is not None:  # a run stored before input keys, or asked differently
                        conn.execute("UPDATE runs SET input_key = ? WHERE id = ? AND input_key IS NULL",
                                     [input_key, same[0]])
                    conn.execute("COMMIT")
                    return same[0]
            _write_run(conn, report, data, key, input_key)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    except sqlite3.IntegrityError:
        raise
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot store the run ({_sqlite_problem(exc)}); the database was left as it was",
                            path) from None
    finally:
        db.close()
    return run_id


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; a failing rollback must not hide the error that caused it
    (a full disk ends the transaction itself: "cannot rollback - no transaction is active")."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _sqlite_problem(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"{text}: another program held it for over {LOCK_WAIT_SECONDS} s"
    if "full" in text:
        return f"{text}: no space left for it"
    return text


def _write_run(conn: sqlite3.Connection, report: RunReport, data: dict[str, Any], key: str | None,
               input_key: str | None) -> None:
    run_id = report.run_id
    _insert(conn, "runs", {**_run_row(report, data), "run_key": key, "input_key": input_key})
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
                "impact": finding["impact"],
                "tags": _json(finding["tags"]),
            },
        )
        row_facts = finding.get("evidence_fact_ids") or []
        for row_no, row in enumerate(finding["evidence"]):
            _insert(
                conn,
                "evidence",
                {"run_id": run_id, "finding_id": fid, "position": row_no, "data": _json(row),
                 "fact_ids": _json(row_facts[row_no]) if row_no < len(row_facts) else None},
            )
    conn.execute(_FILL_EVIDENCE_FIELDS.format(where="e.run_id = ?"), [run_id])
    for position, error in enumerate(data["rule_errors"]):
        _insert(conn, "rule_errors", {"run_id": run_id, "position": position, **error})
    for position, fact in enumerate(data["facts"]):
        _insert(conn, "facts", {"run_id": run_id, "position": position, "fact_id": str(fact.get("id", position)),
                                "kind": str(fact.get("kind", "")), "data": _json(fact)})


def list_runs(db_path: str | Path) -> list[RunSummary]:
    """Every stored run, newest first (none in a database made but never written to)."""
    path = Path(db_path)
    with _reading(path, "runs") as db:
        if "runs" not in db.table_names():
            return []
        rows = db.query(
            "SELECT * FROM runs ORDER BY started DESC, id DESC"
        )
        return [
            RunSummary(
                run_id=r["id"],
                started=r["started"],
                tool_version=r["tool_version"],
                trace_path=r["trace_path"],
                verdict=r["verdict"],
                findings=r["findings_count"],
                case_id=r.get("case_id"),
                rules_version=r.get("rules_version"),
            )
            for r in rows
        ]


def load_run(db_path: str | Path, run_id: str) -> RunReport:
    """The stored run ``run_id``; ``BadInputError`` if the database or the run does not exist."""
    path = Path(db_path)
    with _reading(path, f"run {run_id}") as db:
        return _load(db, path, run_id)


def resolve_run(db_path: str | Path, ref: str) -> str:
    """The id of the run ``ref`` names: a full id, a unique prefix of one, or ``latest``."""
    path = Path(db_path)
    with _reading(path, "runs") as db:
        if ref in ("latest", "last"):
            row = db.conn.execute("SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT 1").fetchone()
            if row is None:
                raise BadInputError("no runs stored yet", path)
            return row[0]
        ids = [r[0] for r in db.conn.execute(
            "SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id", [len(ref), ref])]
    if ref in ids:
        return ref
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise BadInputError(f"no run {ref!r} in this database", path)
    raise BadInputError(f"{ref!r} names {len(ids)} runs ({', '.join(ids[:5])}); give more of the id", path)


def list_findings(
    db_path: str | Path, run: str | None = None, *, severity: str | None = None, rule: str | None = None
) -> list[FindingRow]:
    """Stored findings, newest run first, and in a run the most severe first: of run ``run`` (id, prefix
    or ``latest``) or of every run; ``severity`` (any case) keeps those at or above it, ``rule`` those of
    that rule id."""
    path = Path(db_path)
    severity = severity.lower() if severity is not None else None
    if severity is not None and severity not in _SEVERITY_ORDER:
        raise BadInputError(f"unknown severity {severity!r} (one of {', '.join(_SEVERITY_ORDER)})")
    if not path.exists():
        raise BadInputError("no such run database", path)
    with _reading(path, "findings") as db:
        if "findings" not in db.table_names():
            if run is not None:
                raise BadInputError("holds no runs yet", path)
            return []
    run_id = resolve_run(path, run) if run is not None else None
    where, params = [], []
    if run_id is not None:
        where.append("f.run_id = ?")
        params.append(run_id)
    if severity is not None:
        allowed = _SEVERITY_ORDER[_SEVERITY_ORDER.index(severity):]
        where.append(f"f.severity IN ({', '.join('?' for _ in allowed)})")
        params += allowed
    if rule is not None:
        where.append("f.rule_id = ?")
        params.append(rule)
    sql = (
        "SELECT f.id, f.run_id, r.started, r.case_id, f.rule_id, f.title, f.severity, f.confidence, f.summary, "
        "(SELECT count(*) FROM evidence e WHERE e.finding_id = f.id) AS evidence_rows "
        "FROM findings f JOIN runs r ON r.id = f.run_id"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY r.started DESC, r.id DESC, "
        + "CASE f.severity " + " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(_SEVERITY_ORDER))
        + " ELSE -1 END DESC, f.position"
    )
    with _reading(path, "findings") as db:
        return [
            FindingRow(
                finding_id=r["id"], run_id=r["run_id"], started=r["started"], case_id=r["case_id"],
                rule_id=r["rule_id"], title=r["title"], severity=r["severity"], confidence=r["confidence"],
                summary=r["summary"], evidence_rows=r["evidence_rows"],
            )
            for r in db.query(sql, params)
        ]


def diff_runs(db_path: str | Path, run_a: str, run_b: str) -> RunDiff:
    """What appeared, disappeared or changed from run A to run B (e.g. before and after a fix).

    Findings are matched by rule id. A matched finding has changed when its severity, confidence,
    title or summary differ, or when evidence rows were added or removed (rows compared whole).
    """
    a_id, b_id = resolve_run(db_path, run_a), resolve_run(db_path, run_b)
    a, b = load_run(db_path, a_id), load_run(db_path, b_id)
    rows = {row.finding_id: row for row in list_findings(db_path, a_id) + list_findings(db_path, b_id)}

    def by_rule(run: RunReport) -> dict[str, tuple[Any, FindingRow]]:
        return {
            f.rule_id: (f, rows[finding_id(run.run_id, f.rule_id, list(f.fact_ids))]) for f in run.findings
        }

    fa, fb = by_rule(a), by_rule(b)
    changed, unchanged = [], []
    for rule_id in [r for r in fa if r in fb]:
        (x, _), (y, _) = fa[rule_id], fb[rule_id]
        changes = {
            name: (getattr(x, name), getattr(y, name))
            for name in ("severity", "confidence", "title", "summary")
            if getattr(x, name) != getattr(y, name)
        }
        ex = [_json_key(r) for r in x.evidence]
        ey = [_json_key(r) for r in y.evidence]
        added = [json.loads(r) for r in ey if r not in ex]
        removed = [json.loads(r) for r in ex if r not in ey]
        if changes or added or removed:
            changed.append(FindingChange(rule_id=rule_id, title=y.title, changes=changes,
                                         evidence_added=added, evidence_removed=removed))
        else:
            unchanged.append(rule_id)
    run_changes = {}
    for name, va, vb in [
        ("verdict", a.verdict, b.verdict),
        ("trace_sha256", a.trace.sha256, b.trace.sha256),
        ("tool_version", a.tool_version, b.tool_version),
        ("rules_version", a.rules_version, b.rules_version),
        ("rules_run", sorted(a.rules_run), sorted(b.rules_run)),
        ("rule_errors", len(a.rule_errors), len(b.rule_errors)),
        ("events_lost", a.quality.events_lost, b.quality.events_lost),
        ("buffers_lost", a.quality.buffers_lost, b.quality.buffers_lost),
        ("buffers_skipped", a.quality.buffers_skipped, b.quality.buffers_skipped),
        ("truncated", a.quality.truncated, b.quality.truncated),
    ]:
        if va != vb:
            run_changes[name] = (va, vb)
    return RunDiff(
        run_a=a_id,
        run_b=b_id,
        appeared=[fb[r][1] for r in fb if r not in fa],
        disappeared=[fa[r][1] for r in fa if r not in fb],
        changed=changed,
        unchanged=unchanged,
        run_changes=run_changes,
    )


def _json_key(row: Any) -> str:
    return json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)



def redaction_key(db_path: str | Path) -> bytes:
    """The secret that keys ``--redact`` pseudonyms for runs of this database (made on first use),
    so that every output of a run, now or re-rendered later, uses the same pseudonyms.

    It is kept beside the database, in ``<db>.key`` (readable by its owner only), never in it: whoever
    browses or publishes the database (datasette) must not be able to reverse the pseudonyms. A key that
    an older wnvdiag kept in the ``meta`` table is moved there."""
    path = Path(db_path)
    key_path = redaction_key_path(path)
    db = _open_for_write(path)
    try:
        _ensure_schema(db, path)
        with db.conn:
            row = db.conn.execute("SELECT value FROM meta WHERE name = 'redaction_key'").fetchone()
            value = _read_key(key_path) if key_path.exists() else _write_key(key_path, row[0] if row else None)
            if row is not None:
                db.conn.execute("DELETE FROM meta WHERE name = 'redaction_key'")
        return bytes.fromhex(value)
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot use the run database ({exc})", path) from None
    finally:
        db.close()


def redaction_key_path(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".key")


def _read_key(key_path: Path) -> str:
    try:
        value = key_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read the redaction key ({getattr(exc, 'strerror', None) or exc})",
                            key_path) from None
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise BadInputError("is not a wnvdiag redaction key (64 hex digits); move it away to make a new one "
                            "(redacted reports made before then get other pseudonyms)", key_path)
    return value


def _write_key(key_path: Path, value: str | None) -> str:
    """Write ``value`` (a new key when None) to ``key_path``, mode 0600, whole or not at all; when another
    check wrote one meanwhile, theirs is the key."""
    value = value or secrets.token_hex(32)
    fd, temporary = tempfile.mkstemp(prefix=f".{key_path.name}.", suffix=".new", dir=key_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:  # mkstemp makes it 0600
            fh.write(value + "\n")
        try:
            os.link(temporary, key_path)
        except FileExistsError:
            return _read_key(key_path)
        except OSError:
            os.replace(temporary, key_path)  # a file system without hard links
    except OSError as exc:
        raise BadInputError(f"cannot write the redaction key ({exc.strerror or exc})", key_path) from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return value


def load_finding(db_path: str | Path, ref: str) -> tuple[RunReport, Any]:
    """The run and the finding whose id is ``ref`` (or a unique prefix of it)."""
    path = Path(db_path)
    with _reading(path, "findings") as db:
        rows = db.conn.execute("SELECT id, run_id FROM findings WHERE substr(id, 1, ?) = ?", [len(ref), ref]).fetchall()
    exact = [r for r in rows if r[0] == ref]
    rows = exact or rows
    if not rows:
        raise BadInputError(f"no finding {ref!r} in this database", path)
    if len(rows) > 1:
        raise BadInputError(f"{ref!r} names {len(rows)} findings; give more of the id", path)
    fid, run_id = rows[0]
    run = load_run(path, run_id)
    for f in run.findings:
        if finding_id(run_id, f.rule_id, list(f.fact_ids)) == fid:
            return run, f
    raise BadInputError(f"finding {fid} is listed but not loadable (damaged database)", path)



# ---------------------------------------------------------------------------------------------


def check_writable(db_path: str | Path) -> None:
    """Fail early, before a long analysis, if ``db_path`` cannot take a run. Creates nothing."""
    path = Path(db_path)
    _check_path(path)
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise BadInputError("cannot write the run database (permission denied)", path)
        if path.stat().st_size > 0:
            db = _open_read_only(path)
            try:
                _identify(db, path)
            finally:
                db.close()
    if not can_create_in(path.parent):  # also for an existing file: SQLite writes its journal beside it
        raise BadInputError("cannot write in the run database's directory", path)


def can_create_in(directory: Path) -> bool:
    """Whether a file can be made in ``directory`` now: tried, not guessed from permission bits (root, a
    read-only mount, a full quota all say otherwise)."""
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".wnvdiag-probe-"):
            return True
    except OSError:
        return False


def _check_path(path: Path) -> None:
    if path.is_dir():
        raise BadInputError("is a directory, not a run database", path)
    if not path.parent.is_dir():
        raise BadInputError("the directory of the run database does not exist", path)


LOCK_WAIT_SECONDS = 60  # another check writing: wait for it, not fail


def _open_for_write(path: Path) -> sqlite_utils.Database:
    _check_path(path)
    try:
        if not path.exists() or path.stat().st_size == 0:
            _create(path)
        conn = sqlite3.connect(str(path), timeout=LOCK_WAIT_SECONDS)
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot open the run database ({exc})", path) from None
    except OSError as exc:
        raise BadInputError(f"cannot create the run database ({exc.strerror or exc})", path) from None
    return sqlite_utils.Database(conn)


def _create(path: Path) -> None:
    """A new, complete, empty run database at ``path``: built aside, then linked into place (never over a
    file another check made meanwhile), so that no one ever sees a half-made one."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    try:
        db = sqlite_utils.Database(sqlite3.connect(temporary))
        try:
            _build_schema(db)
        finally:
            db.close()
        if path.exists() and path.stat().st_size == 0:
            path.unlink()  # left by an interrupted older wnvdiag, or by sqlite3 itself: empty, nothing to lose
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another check made it first: use theirs
        except OSError:
            os.replace(temporary, path)  # a file system without hard links
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextmanager
def _reading(path: Path, what: str) -> Iterator[sqlite_utils.Database]:
    """An existing run database, read-only; SQLite errors become one-line input errors naming it."""
    if not path.exists():
        raise BadInputError("no such run database", path)
    db = _open_read_only(path)
    try:
        _identify(db, path)
        yield db
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot read {what} ({exc})", path) from None
    finally:
        db.close()


def _open_read_only(path: Path) -> sqlite_utils.Database:
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise BadInputError(f"cannot open the run database ({exc})", path) from None
    return sqlite_utils.Database(conn)


def _identify(db: sqlite_utils.Database, path: Path) -> int:
    """The schema version of a database that is ours (0: empty), or ``BadInputError`` for one that is not."""
    try:
        app = db.conn.execute("PRAGMA application_id").fetchone()[0]
        version = db.conn.execute("PRAGMA user_version").fetchone()[0]
        tables = set(db.table_names())
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise BadInputError(f"cannot be used now ({_sqlite_problem(exc)}); the database was left as it was",
                                path) from None
        raise BadInputError(f"is not a usable run database ({exc})", path) from None
    except sqlite3.DatabaseError as exc:
        raise BadInputError(f"is not a usable run database ({exc})", path) from None
    if app not in (0, APPLICATION_ID):
        raise BadInputError("is another application's SQLite database; wnvdiag leaves it as it is", path)
    if app == 0 and tables and (version == 0 or not tables <= set(_TABLES) or "runs" not in tables):
        raise BadInputError("is an SQLite database, but not a wnvdiag run database; wnvdiag leaves it as it is",
                            path)
    if version > SCHEMA_VERSION:
        raise BadInputError(f"was written by a newer wnvdiag (schema {version}; this one reads {SCHEMA_VERSION})",
                            path)
    return version if tables else 0


def _ensure_schema(db: sqlite_utils.Database, path: Path) -> None:
    version = _identify(db, path)
    try:
        if version == SCHEMA_VERSION and set(_TABLES) <= set(db.table_names()):
            return
        with db.conn:
            for added_in, tables in sorted(_ADDED_COLUMNS.items()):
                if 0 < version < added_in:
                    _add_missing_columns(db, tables)
            had_fields = "evidence_fields" in db.table_names()
            _build_schema(db)
            if not had_fields:  # runs stored before schema 4
                db.conn.execute(_FILL_EVIDENCE_FIELDS.format(where="1"))
    except sqlite3.DatabaseError as exc:
        raise BadInputError(f"is not a usable run database ({exc})", path) from None


def _build_schema(db: sqlite_utils.Database) -> None:
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
    for name, select in _VIEWS.items():
        db.conn.execute(f"DROP VIEW IF EXISTS [{name}]")
        db.conn.execute(f"CREATE VIEW [{name}] AS {select.strip()}")
    if "findings_fts" not in db.table_names():  # datasette's ?_search, sqlite-utils' search; kept by triggers
        db["findings"].enable_fts(_FTS_COLUMNS, create_triggers=True)
    db.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.conn.commit()


def _add_missing_columns(db: sqlite_utils.Database, tables: dict[str, dict[str, type]]) -> None:
    for table, columns in tables.items():
        have = {c.name for c in db[table].columns}
        for column, kind in columns.items():
            if column not in have:
                db[table].add_column(column, kind)


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(f"[{c}]" for c in row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT INTO [{table}] ({columns}) VALUES ({marks})", [_storable(v) for v in row.values()])


def _storable(value: Any) -> Any:
    """SQLite keeps UTF-8: a lone surrogate (a file name that was not UTF-8, a JSON "\\ud800") is kept as its
    escape, not refused."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


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
        "case_id": report.case_id,
        "rules_version": report.rules_version,
        "host_info": _json(data["host_info"]),
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
        rows = list(db.query("SELECT data, fact_ids FROM evidence WHERE finding_id = ? ORDER BY position", [f["id"]]))
        evidence = [json.loads(e["data"]) for e in rows]
        # NULL: the finding was stored without per-row facts (older runs, hand-made reports)
        evidence_fact_ids = ([json.loads(e["fact_ids"] or "[]") for e in rows]
                             if any(e["fact_ids"] is not None for e in rows) else [])
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
                "evidence_fact_ids": evidence_fact_ids,
                "impact": f.get("impact") or "",
                "tags": json.loads(f.get("tags") or "[]"),
            }
        )
    rule_errors = [
        {"rule_id": e["rule_id"], "file": e["file"], "message": e["message"]}
        for e in db.query("SELECT * FROM rule_errors WHERE run_id = ? ORDER BY position", [run_id])
    ]
    facts = []
    if "facts" in db.table_names():
        facts = [json.loads(r["data"]) for r in db.query(
            "SELECT data FROM facts WHERE run_id = ? ORDER BY position", [run_id])]
    return RunReport.model_validate(
        {
            "facts": facts,
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
            "case_id": run.get("case_id"),
            "rules_version": run.get("rules_version"),
            "host_info": json.loads(run.get("host_info") or "[]"),
        }
    )
