"""The run database as people query it: the views, full-text search (sqlite-utils and datasette's
?_search), evidence fields whatever their names, foreign keys, and the redaction key kept out of it.
Every SQL block of reports/database.md runs here against a real check of the demo trace. Expected values
come from the demo trace's ground truth (tests/data/pktmon-drops.truth.json) or from the stored JSON
itself, read with Python's json module."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest
import sqlite_utils

from diag import api, store
from diag.errors import BadInputError
from test_store import finding, report

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "pktmon-drops.etl"
TRUTH = json.loads((DEMO.parent / "pktmon-drops.truth.json").read_text())
DROP_GROUPS = next(e["values"]["groups"] for e in TRUTH["expect"] if e["finding"] == "packets-dropped")
DOC = ROOT / "reports" / "database.md"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("db")
    api.check(DEMO, db_path=directory / "w.db", out_dir=directory)
    return directory / "w.db"


def test_drops_view_is_the_truth_by_component_and_reason(demo_db):
    db = sqlite_utils.Database(demo_db)
    got = sorted((r["component_id"], r["reason_code"], r["drops"])
                 for r in db.query("SELECT * FROM drops WHERE NOT background"))
    assert got == sorted((g["component_id"], g["reason"], g["count"]) for g in DROP_GROUPS)


def test_run_overview_counts_the_stored_findings_by_severity(demo_db):
    db = sqlite_utils.Database(demo_db)
    (row,) = db.query("SELECT * FROM run_overview")
    severities = [f["severity"] for f in db["findings"].rows]
    assert row["findings"] == len(severities) > 0
    for level in ("critical", "high", "medium", "low", "info"):
        assert row[level] == severities.count(level)


def test_finding_evidence_flattens_every_field_of_every_row(demo_db):
    db = sqlite_utils.Database(demo_db)
    expected = set()
    for e in db["evidence"].rows:
        for field, value in json.loads(e["data"]).items():
            shown = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value
            expected.add((e["finding_id"], e["position"], field, shown))
    got = set()
    for r in db.query("SELECT finding_id, row, field, value FROM finding_evidence"):
        value = r["value"]
        if isinstance(value, str) and value[:1] in "[{":
            value = json.dumps(json.loads(value), sort_keys=True)
        got.add((r["finding_id"], r["row"], r["field"], value))
    assert got == expected and expected
    # Numbers stay numbers: a comparison is numeric, not text ("9" > "13" would be true as text).
    big = {r["value"] for r in db.query("SELECT value FROM finding_evidence WHERE field = 'drop_reason_code' "
                                        "AND value > 100")}
    assert big == {1204}


def test_dotted_evidence_keys_are_queryable(tmp_path):
    """A join rule's evidence is keyed by alias ("a.component_id"), which $.a.component_id cannot name."""
    db_path = tmp_path / "w.db"
    row = {"a.component_id": 3, "a.reason_name": "Filtered VLAN", "b.component_id": 5, "b.count": 2}
    joined = finding("same-drop-reason").model_copy(update={"evidence": [row]})
    store.save_run(db_path, report(findings=[joined]))
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT json_extract(data, '$.a.component_id') FROM evidence").fetchone() == (None,)
        assert conn.execute("SELECT value FROM finding_evidence WHERE field = 'a.component_id'").fetchall() == [(3,)]
        assert conn.execute("SELECT field FROM evidence_fields ORDER BY id").fetchall() == [(k,) for k in row]


def test_full_text_search_on_findings(demo_db):
    db = sqlite_utils.Database(demo_db)
    titles = {f["rule_id"] for f in db["findings"].rows if "vlan" in (f["title"] + f["summary"]).lower()}
    assert {r["rule_id"] for r in db["findings"].search("vlan")} == titles and "vlan-drops" in titles


def test_datasette_serves_the_views_and_search(demo_db):
    datasette = pytest.importorskip("datasette.app", reason="datasette is not installed")
    ds = datasette.Datasette([str(demo_db)], settings={"default_page_size": 1000})
    name = demo_db.stem

    async def get(path: str) -> dict:
        response = await ds.client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        return response.json()

    async def everything() -> tuple[dict, dict, dict]:
        return (await get(f"/{name}/findings.json?_search=spoofed&_shape=objects"),
                await get(f"/{name}/drops.json?_shape=objects"),
                await get(f"/{name}.json"))

    searched, drops, tables = asyncio.run(everything())
    assert [r["rule_id"] for r in searched["rows"]] == ["mac-spoofing-drops"]
    assert len([r for r in drops["rows"] if not r["background"]]) == len(DROP_GROUPS)
    assert "meta" not in json.dumps(searched) and "redaction" not in json.dumps(tables)


def test_foreign_keys_are_declared_and_enforced(demo_db, tmp_path):
    db = sqlite_utils.Database(demo_db)
    assert {fk.other_table for fk in db["evidence_fields"].foreign_keys} == {"runs", "findings", "evidence"}
    assert {fk.other_table for fk in db["evidence"].foreign_keys} == {"runs", "findings"}
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # with foreign keys on, as every writer of ours has them, an orphan row is refused
    target = tmp_path / "w.db"
    store.save_run(target, report())
    conn = sqlite3.connect(target)
    conn.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO evidence (run_id, finding_id, position, data) VALUES ('run-1', 'nothing', 0, '{}')")
    conn.close()


def test_redaction_key_is_beside_the_database_not_in_it(tmp_path):
    db_path = tmp_path / "w.db"
    key = store.redaction_key(db_path)
    key_path = store.redaction_key_path(db_path)
    assert key_path == tmp_path / "w.db.key"
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert key_path.read_text().strip() == key.hex()
    assert store.redaction_key(db_path) == key  # the same key each time
    dump = "\n".join(sqlite3.connect(db_path).iterdump())
    assert key.hex() not in dump


def test_a_key_kept_in_meta_by_an_older_wnvdiag_moves_out_unchanged(tmp_path):
    db_path = tmp_path / "w.db"
    store.save_run(db_path, report())
    old = "ab" * 32
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO meta (name, value) VALUES ('redaction_key', ?)", [old])
    assert store.redaction_key(db_path) == bytes.fromhex(old)
    assert store.redaction_key_path(db_path).read_text().strip() == old
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM meta WHERE name = 'redaction_key'").fetchone() == (0,)


def test_a_damaged_key_file_is_one_error_naming_it(tmp_path):
    db_path = tmp_path / "w.db"
    store.redaction_key_path(db_path).write_text("not a key\n")
    with pytest.raises(BadInputError) as info:
        store.redaction_key(db_path)
    assert Path(info.value.path) == store.redaction_key_path(db_path) and "64 hex digits" in str(info.value)


def test_a_schema_3_database_gets_its_evidence_fields(tmp_path):
    db_path = tmp_path / "w.db"
    store.save_run(db_path, report())
    with sqlite3.connect(db_path) as conn:  # what schema 3 had: no evidence_fields, views or search
        for kind, name in conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger') "
                                       "OR name IN ('evidence_fields', 'findings_fts')").fetchall():
            conn.execute(f"DROP {kind.upper()} {name}")
        conn.execute("DROP INDEX idx_runs_input_key")
        conn.execute("ALTER TABLE runs DROP COLUMN input_key")
        conn.execute("PRAGMA user_version = 3")
    store.save_run(db_path, report("run-2", findings=[finding("mtu", ["f:9"], title="MTU too small", summary="tunnel MTU too small")]))
    db = sqlite_utils.Database(db_path)
    per_run = {r["run_id"]: r["n"] for r in db.query("SELECT run_id, count(*) AS n FROM evidence_fields GROUP BY run_id")}
    rows = {r["run_id"]: r["n"] for r in db.query("SELECT run_id, count(*) AS n FROM evidence GROUP BY run_id")}
    assert per_run == {run: n * 4 for run, n in rows.items()}  # finding() rows have 4 fields each
    assert {r["rule_id"] for r in db["findings"].search("dropped")} == {"packets-dropped"}
    assert {r["rule_id"] for r in db["findings"].search("MTU")} == {"mtu"}


def test_every_sql_example_of_the_documentation_runs(demo_db):
    """reports/database.md's examples are real queries: each runs on a real run and returns rows."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 4
    run_id = store.list_runs(demo_db)[0].run_id
    with sqlite3.connect(demo_db) as conn:
        for sql in blocks:
            rows = conn.execute(sql.replace(":run", f"'{run_id}'")).fetchall()
            assert rows, sql
