"""The run database as a history of support cases: metadata, idempotent re-runs, killed writers,
queries (runs, findings, diff) and the schema-1 upgrade. Real SQLite files, real processes."""

from __future__ import annotations

import json
import re
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from diag import store
from diag.errors import BadInputError
from diag.report.model import HostInfoFile
from test_store import T0, count_rows, finding, report

DEMO = Path(__file__).parent / "data" / "pktmon-drops.etl"
TABLES = ("runs", "traces", "findings", "evidence", "rule_errors")


def consistent(db: Path) -> None:
    """Integrity and foreign keys hold, and every run has its trace and all its findings."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        for run_id, count in conn.execute("SELECT id, findings_count FROM runs"):
            assert conn.execute("SELECT count(*) FROM traces WHERE run_id = ?", [run_id]).fetchone()[0] == 1
            assert conn.execute("SELECT count(*) FROM findings WHERE run_id = ?", [run_id]).fetchone()[0] == count
        orphans = conn.execute("SELECT count(*) FROM findings WHERE run_id NOT IN (SELECT id FROM runs)").fetchone()
        assert orphans[0] == 0


def test_run_metadata_round_trips(tmp_path):
    db = tmp_path / "runs.db"
    run = report(
        "meta",
        case_id="CASE-2611-0042",
        rules_version="abcd1234abcd1234",
        host_info=[HostInfoFile(path="/cases/ipconfig.txt", sha256="11" * 32, size=812)],
        findings=[finding(impact="Guests cannot reach the gateway.", tags=["pktmon", "vlan"])],
    )
    store.save_run(db, run)
    back = store.load_run(db, "meta")
    assert back == run
    assert back.findings[0].impact == "Guests cannot reach the gateway."
    assert back.findings[0].tags == ["pktmon", "vlan"]
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT case_id, rules_version, host_info, arguments FROM runs").fetchone()
    assert row[0] == "CASE-2611-0042" and row[1] == "abcd1234abcd1234"
    assert json.loads(row[2])[0]["path"] == "/cases/ipconfig.txt"
    assert json.loads(row[3]) == {"trace": "C:/traces/a.etl", "min_severity": "low"}
    assert store.list_runs(db)[0].case_id == "CASE-2611-0042"


def test_fingerprint_follows_rule_file_contents(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text("id: a\n")
    first = store.fingerprint_files([rules])
    assert store.fingerprint_files([rules]) == first
    (rules / "a.yaml").write_text("id: a\nseverity: high\n")
    assert store.fingerprint_files([rules]) != first


def test_saving_the_same_analysis_again_is_idempotent(tmp_path):
    db = tmp_path / "runs.db"
    first = report("first", case_id="C1", rules_version="v1")
    assert store.save_run(db, first) == "first"
    # Same trace, rules, case and outcome, later and under another id: nothing new is stored.
    again = first.model_copy(update={"run_id": "again", "started": T0 + timedelta(hours=2)})
    assert store.save_run(db, again) == "first"
    assert [r.run_id for r in store.list_runs(db)] == ["first"]
    for table in TABLES:
        assert count_rows(db, table, "again") == 0
    # A different case, other rules or another outcome is another run.
    assert store.save_run(db, first.model_copy(update={"run_id": "case2", "case_id": "C2"})) == "case2"
    assert store.save_run(db, first.model_copy(update={"run_id": "rules2", "rules_version": "v2"})) == "rules2"
    assert store.save_run(db, report("other", case_id="C1", rules_version="v1", findings=[])) == "other"
    assert len(store.list_runs(db)) == 4


def test_a_failed_run_is_never_taken_for_a_done_one(tmp_path):
    db = tmp_path / "runs.db"
    failed = report("failed", findings=[], failure="worker crashed")
    store.save_run(db, failed)
    assert store.save_run(db, failed.model_copy(update={"run_id": "failed-again"})) == "failed-again"


def test_checking_the_same_trace_twice_keeps_one_run(tmp_path):
    db, out = tmp_path / "w.db", tmp_path / "out"
    cmd = [sys.executable, "-m", "diag.cli", "check", str(DEMO), "--db", str(db), "--out", str(out), "-q"]
    for _ in range(2):
        assert subprocess.run(cmd, capture_output=True, text=True).returncode == 1
    runs = store.list_runs(db)
    assert len(runs) == 1 and runs[0].findings >= 1
    consistent(db)


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from diag import store
    from diag.report.model import RunReport
    db = Path(sys.argv[1])
    done = RunReport.model_validate_json(Path(sys.argv[2]).read_text())
    store.save_run(db, done)
    big = RunReport.model_validate_json(Path(sys.argv[3]).read_text())
    real_insert, n = store._insert, [0]
    def slow_insert(conn, table, row):
        real_insert(conn, table, row)
        n[0] += 1
        if n[0] == 200:  # well inside the transaction: tell the parent, then keep writing slowly
            print("WRITING", flush=True)
        if n[0] >= 200:
            time.sleep(0.001)
    store._insert = slow_insert
    store.save_run(db, big)
    print("FINISHED", flush=True)
    """
)


def test_a_writer_killed_mid_save_leaves_a_consistent_database(tmp_path):
    db = tmp_path / "runs.db"
    done, big = tmp_path / "done.json", tmp_path / "big.json"
    done.write_text(report("done").model_dump_json())
    many = [finding(f"rule-{i}", [f"f:{i}"], rows=20) for i in range(100)]  # 2,100+ inserts
    big.write_text(report("killed", T0 + timedelta(hours=1), findings=many).model_dump_json())
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(done), str(big)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "WRITING"
    journal = Path(str(db) + "-journal")
    assert journal.exists(), "the write transaction should be open"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    # The hot journal is rolled back by the next connection; nothing of the killed run is visible.
    consistent(db)
    assert [r.run_id for r in store.list_runs(db)] == ["done"]
    for table in TABLES:
        assert count_rows(db, table, "killed") == 0, table
    assert store.load_run(db, "done") == report("done")
    # And the database still takes runs, the killed one included.
    assert store.save_run(db, report("killed", T0 + timedelta(hours=1), findings=many)) == "killed"
    consistent(db)
    assert count_rows(db, "evidence", "killed") == 100 * 20


CHECK_CHILD = textwrap.dedent(
    """
    import sys, time
    from diag import api, store
    real_insert, n = store._insert, [0]
    def paused_insert(conn, table, row):
        real_insert(conn, table, row)
        n[0] += 1
        if n[0] == 3:  # the run, its trace and a finding are written, the rest is not
            print("WRITING", flush=True)
            time.sleep(60)
    store._insert = paused_insert
    api.check(sys.argv[1], db_path=sys.argv[2], out_dir=sys.argv[3])
    """
)


def test_a_check_killed_while_saving_leaves_no_half_run(tmp_path):
    db, out = tmp_path / "w.db", tmp_path / "out"
    subprocess.run([sys.executable, "-m", "diag.cli", "check", str(DEMO), "--db", str(db), "--out",
                    str(tmp_path / "o1"), "-q"], check=False)
    before = store.list_runs(db)
    assert len(before) == 1
    with sqlite3.connect(db) as conn:  # make the next check a new run, neither a re-run nor a reuse of the first
        conn.execute("UPDATE runs SET run_key = 'older', input_key = NULL")
    child = subprocess.Popen([sys.executable, "-c", CHECK_CHILD, str(DEMO), str(db), str(out)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "WRITING"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    consistent(db)
    assert store.list_runs(db) == before
    assert not (out / "wnvdiag-report.md").exists()


def test_findings_queries(tmp_path):
    db = tmp_path / "runs.db"
    store.save_run(db, report("a", T0, findings=[finding("vlan", ["f:1"], severity="high"),
                                                  finding("mtu", ["f:2"], severity="low")]))
    store.save_run(db, report("b", T0 + timedelta(hours=1), findings=[finding("vlan", ["f:1"], severity="high")]))
    rows = store.list_findings(db)
    assert [(r.run_id, r.rule_id) for r in rows] == [("b", "vlan"), ("a", "vlan"), ("a", "mtu")]
    assert [r.rule_id for r in store.list_findings(db, "a")] == ["vlan", "mtu"]
    assert [r.run_id for r in store.list_findings(db, severity="medium")] == ["b", "a"]
    assert [r.run_id for r in store.list_findings(db, rule="mtu")] == ["a"]
    assert store.list_findings(db, "latest")[0].run_id == "b"
    assert rows[0].evidence_rows == 2
    with pytest.raises(BadInputError, match="unknown severity"):
        store.list_findings(db, severity="urgent")
    with pytest.raises(BadInputError, match="no run 'zz'"):
        store.list_findings(db, "zz")


def test_run_references(tmp_path):
    db = tmp_path / "runs.db"
    store.save_run(db, report("20240501-120000-aaaaaa", T0))
    store.save_run(db, report("20240501-130000-bbbbbb", T0 + timedelta(hours=1), findings=[]))
    assert store.resolve_run(db, "20240501-12") == "20240501-120000-aaaaaa"
    assert store.resolve_run(db, "latest") == "20240501-130000-bbbbbb"
    with pytest.raises(BadInputError, match="names 2 runs"):
        store.resolve_run(db, "20240501")


def test_diff_before_and_after_a_fix(tmp_path):
    db = tmp_path / "runs.db"
    vlan = finding("vlan", ["f:1"], severity="high")
    store.save_run(db, report("before", T0, findings=[vlan, finding("mac", ["f:2"]), finding("mtu", ["f:3"])]))
    mtu_after = finding("mtu", ["f:3"], summary="2 packets dropped", rows=1)
    store.save_run(db, report("after", T0 + timedelta(hours=1),
                              findings=[vlan, mtu_after, finding("nat", ["f:4"], severity="critical")]))
    diff = store.diff_runs(db, "before", "after")
    assert [f.rule_id for f in diff.appeared] == ["nat"]
    assert [f.rule_id for f in diff.disappeared] == ["mac"]
    assert diff.unchanged == ["vlan"]
    (change,) = diff.changed
    assert change.rule_id == "mtu"
    assert change.changes == {"summary": ("9 packets dropped", "2 packets dropped")}
    assert change.evidence_removed == [vlan.evidence[1]]  # the same rows finding() builds
    assert change.evidence_added == []
    assert diff.run_changes == {}


def test_a_schema_1_database_is_upgraded_in_place(tmp_path):
    db = tmp_path / "old.db"
    store.save_run(db, report("old"))
    with sqlite3.connect(db) as conn:  # what schema 1 had: none of the tables, views, columns later schemas added
        for kind, name in conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger') "
                                       "OR name IN ('evidence_fields', 'findings_fts')").fetchall():
            conn.execute(f"DROP {kind.upper()} {name}")
        added = [(table, column) for tables in store._ADDED_COLUMNS.values()
                 for table, columns in tables.items() for column in columns]
        for table, column in added:
            conn.execute(f"DROP INDEX IF EXISTS idx_{table}_{column}")
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("PRAGMA user_version = 1")
    store.save_run(db, report("new", T0 + timedelta(hours=1), case_id="C9", findings=[]))
    assert [r.run_id for r in store.list_runs(db)] == ["new", "old"]
    assert store.load_run(db, "old").findings[0].impact == ""
    assert store.load_run(db, "new").case_id == "C9"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM evidence_fields WHERE run_id = 'old'").fetchone()[0] > 0


def test_every_table_and_column_is_documented(tmp_path):
    """reports/database.md documents exactly the tables and columns the store creates."""
    doc = (Path(__file__).resolve().parents[1] / "reports" / "database.md").read_text(encoding="utf-8")
    documented: dict[str, set[str]] = {}
    table = None
    for line in doc.splitlines():
        heading = re.match(r"## `(\w+)`", line)
        if heading:
            table = heading.group(1)
            documented[table] = set()
        elif line.startswith("## "):
            table = None
        elif table and line.startswith("| `"):
            documented[table] |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    db = tmp_path / "runs.db"
    store.save_run(db, report())
    with sqlite3.connect(db) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        actual = {name: {row[1] for row in conn.execute(f"PRAGMA table_info([{name}])")}
                  for name in tables if not name.startswith("findings_fts")}  # the search index: its own section
        views = {name: {row[1] for row in conn.execute(f"PRAGMA table_info([{name}])")}
                 for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    assert documented == actual
    assert "findings_fts" in tables and "`findings_fts`" in doc
    section = doc.split("## Views", 1)[1].split("\n## ", 1)[0]
    documented_views = {m.group(1): set(re.findall(r"`(\w+)`", m.group(2)))
                        for m in re.finditer(r"^\| `(\w+)` \|[^|]*\|(.*)\|$", section, flags=re.M)}
    assert {name: columns for name, columns in views.items()} == documented_views


def test_facts_are_stored_with_the_run(tmp_path):
    db = tmp_path / "runs.db"
    facts = [{"id": "pktmon_drop:0", "kind": "pktmon_drop", "component_id": 3, "count": 7},
             {"id": "packet_path:1", "kind": "packet_path", "hops": [{"component_id": 1}, {"component_id": 3}]}]
    store.save_run(db, report("with-facts", facts=facts))
    assert store.load_run(db, "with-facts").facts == facts
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT fact_id, kind FROM facts WHERE run_id = 'with-facts' ORDER BY position").fetchall()
    assert rows == [("pktmon_drop:0", "pktmon_drop"), ("packet_path:1", "packet_path")]
