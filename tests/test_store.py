"""The run database: real SQLite files in tmp_path."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from diag import store
from diag.errors import BadInputError
from diag.facts import Finding, RuleError, TraceQuality
from diag.report import RunReport, TraceInfo

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def finding(rule_id: str = "packets-dropped", fact_ids=("pktmon_drop:0", "pktmon_drop:1"), rows: int = 2, **kw) -> Finding:
    return Finding(
        rule_id=rule_id,
        title=kw.pop("title", "Packets dropped"),
        severity=kw.pop("severity", "medium"),
        confidence=kw.pop("confidence", "high"),
        summary=kw.pop("summary", "9 packets dropped"),
        evidence=[{"component_id": i, "reason_code": 16, "count": i + 4, "component_name": f"nic|{i}"} for i in range(rows)],
        remediation="Check the port ACLs.",
        references=["https://example.invalid/pktmon"],
        fact_ids=list(fact_ids),
        **kw,
    )


def report(run_id: str = "run-1", started: datetime = T0, findings=None, **kw) -> RunReport:
    return RunReport(
        run_id=run_id,
        started=started,
        finished=started + timedelta(seconds=3),
        arguments={"trace": "C:/traces/a.etl", "min_severity": "low"},
        trace=TraceInfo(
            path="C:/traces/a.etl",
            sha256="0f" * 32,
            size=4096,
            format="pktmon",
            os_build=19041,
            start_time=started - timedelta(minutes=5),
            end_time=started - timedelta(minutes=1),
            records_read=1200,
            records_decoded=1100,
            header={"logger": "PktMon", "buffer_size": 65536},
        ),
        quality=TraceQuality(events_lost=3, buffers_lost=1, records_undecoded=100, buffers_skipped=0, truncated=True),
        findings=[finding()] if findings is None else findings,
        rule_errors=[RuleError(rule_id="broken", file="/rules/broken.yaml", message="not valid YAML")],
        engine_errors=["fact x could not be asserted"],
        rules_loaded=["packets-dropped"],
        rules_run=["packets-dropped"],
        facts_asserted=2,
        facts_unmatched=0,
        **kw,
    )


def count_rows(db_path, table: str, run_id: str) -> int:
    column = "run_id" if table != "runs" else "id"
    with sqlite3.connect(db_path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", [run_id]).fetchone()[0]


def test_round_trip_keeps_everything(tmp_path):
    db = tmp_path / "runs.db"
    original = report(findings=[finding(), finding("other-rule", ["trace_quality:5"], rows=1, severity="high")])
    assert store.save_run(db, original) == "run-1"
    assert db.is_file()
    assert store.load_run(db, "run-1") == original


def test_a_plain_dict_is_accepted(tmp_path):
    db = tmp_path / "runs.db"
    data = report(run_id="from-dict").model_dump(mode="json")
    assert store.save_run(db, data) == "from-dict"
    assert store.load_run(db, "from-dict").findings[0].evidence[1]["component_name"] == "nic|1"


def test_tables_are_real_and_hold_the_run(tmp_path):
    db = tmp_path / "runs.db"
    store.save_run(db, report(findings=[finding(rows=3)]))
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        run = conn.execute("SELECT trace_path, trace_sha256, trace_size, verdict FROM runs").fetchone()
        traces = conn.execute("SELECT os_build, events_lost, truncated FROM traces").fetchone()
    assert {"runs", "traces", "findings", "evidence", "rule_errors"} <= tables
    assert run == ("C:/traces/a.etl", "0f" * 32, 4096, "findings")
    assert traces == (19041, 3, 1)
    assert count_rows(db, "evidence", "run-1") == 3
    assert count_rows(db, "rule_errors", "run-1") == 1


def test_list_runs_newest_first(tmp_path):
    db = tmp_path / "runs.db"
    store.save_run(db, report("old", T0))
    store.save_run(db, report("new", T0 + timedelta(hours=1), findings=[]))
    runs = store.list_runs(db)
    assert [r.run_id for r in runs] == ["new", "old"]
    assert [r.findings for r in runs] == [0, 1]
    assert runs[0].verdict == "incomplete"  # no findings, but rule and engine errors
    assert runs[1].verdict == "findings"


def test_finding_ids_depend_on_run_rule_and_fact_set():
    a = store.finding_id("r1", "rule", ["f:1", "f:2"])
    assert a == store.finding_id("r1", "rule", ["f:2", "f:1"])
    assert a != store.finding_id("r2", "rule", ["f:1", "f:2"])
    assert a != store.finding_id("r1", "other", ["f:1", "f:2"])
    assert a != store.finding_id("r1", "rule", ["f:1"])


def test_a_failure_in_the_middle_leaves_nothing_of_that_run(tmp_path):
    db = tmp_path / "runs.db"
    store.save_run(db, report("kept"))
    # Two findings of one rule over the same facts get the same finding id: the second insert
    # fails after the run, the trace and the first finding with its evidence were written.
    duplicate = report("half", findings=[finding(), finding(summary="again")])
    with pytest.raises(sqlite3.IntegrityError):
        store.save_run(db, duplicate)
    for table in ("runs", "traces", "findings", "evidence", "rule_errors"):
        assert count_rows(db, table, "half") == 0, table
    assert [r.run_id for r in store.list_runs(db)] == ["kept"]
    assert store.load_run(db, "kept") == report("kept")


def test_an_exception_from_the_writer_rolls_back(tmp_path, monkeypatch):
    db = tmp_path / "runs.db"
    real_insert = store._insert

    def failing_insert(conn, table, row):
        if table == "rule_errors":  # the last table written
            raise RuntimeError("disk on fire")
        real_insert(conn, table, row)

    monkeypatch.setattr(store, "_insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save_run(db, report("doomed"))
    monkeypatch.undo()
    for table in ("runs", "traces", "findings", "evidence", "rule_errors"):
        assert count_rows(db, table, "doomed") == 0, table


def test_saving_the_same_run_id_with_other_content_fails_and_keeps_the_first(tmp_path):
    db = tmp_path / "runs.db"
    store.save_run(db, report("once"))
    with pytest.raises(sqlite3.IntegrityError):
        store.save_run(db, report("once", findings=[finding(summary="other")]))
    assert count_rows(db, "findings", "once") == 1
    assert count_rows(db, "evidence", "once") == 2


def test_missing_database_and_run(tmp_path):
    db = tmp_path / "nothing.db"
    with pytest.raises(BadInputError, match="no such run database"):  # a mistyped --db is not "no runs"
        store.list_runs(db)
    with pytest.raises(BadInputError, match="no such run database"):
        store.list_findings(db)
    assert not db.exists()  # reading never creates the file
    with pytest.raises(BadInputError, match="no such run database"):
        store.load_run(db, "x")
    store.save_run(db, report("r"))
    with pytest.raises(BadInputError, match="no run 'x'"):
        store.load_run(db, "x")


def test_unusable_paths_are_bad_input(tmp_path):
    not_db = tmp_path / "notes.db"
    not_db.write_text("this is not sqlite " * 100, encoding="utf-8")
    with pytest.raises(BadInputError) as exc:
        store.save_run(not_db, report())
    assert str(not_db) in str(exc.value)
    with pytest.raises(BadInputError, match="directory"):
        store.save_run(tmp_path / "no" / "such" / "dir.db", report())

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE recipes (name TEXT)")
    with pytest.raises(BadInputError, match="not a wnvdiag run database"):
        store.save_run(foreign, report())
