"""The CLI end to end on the shipped demo trace: real reader, real engine, real SQLite, real files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "pktmon-drops.etl"
TRUTH = json.loads((DEMO.parent / "pktmon-drops.truth.json").read_text())


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diag.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_check_finds_the_scenario_drops(tmp_path):
    db, out = tmp_path / "runs.db", tmp_path / "out"
    done = run_cli("check", str(DEMO), "--db", str(db), "--out", str(out), "--json")
    assert done.returncode == 1, done.stderr  # findings
    doc = json.loads(done.stdout)
    assert doc["verdict"] == "findings"
    (finding,) = [f for f in doc["run"]["findings"] if f["rule_id"] == "packets-dropped"]
    by_group = {(row["component_id"], row["reason_code"]): row["count"] for row in finding["evidence"]}
    assert by_group == {(d["component_id"], d["reason"]): d["count"] for d in TRUTH["drops"]}
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from runs").fetchone()[0] == 1
        assert conn.execute("select count(*) from findings").fetchone()[0] == len(doc["findings"])
    report = (out / "wnvdiag-report.md").read_text()
    for d in TRUTH["drops"]:  # in a table row, or in the field list of a single-row evidence
        assert f"| {d['component_id']} |" in report or f"- component id: {d['component_id']}\n" in report


def test_check_human_output_and_quiet(tmp_path):
    done = run_cli("check", str(DEMO), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path))
    assert done.returncode == 1
    assert "packets-dropped" in done.stdout and str(TRUTH["drop_count"]) in done.stdout
    quiet = run_cli("check", str(DEMO), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path), "--quiet")
    assert quiet.returncode == 1 and quiet.stdout == ""


def test_threshold_above_every_finding_exits_0(tmp_path):
    done = run_cli("check", str(DEMO), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path), "--threshold", "critical")
    assert done.returncode == 0, done.stderr


def test_inspect_text_and_json(tmp_path):
    text = run_cli("inspect", str(DEMO))
    assert text.returncode == 0, text.stderr
    assert "Microsoft-Windows-PktMon" in text.stdout and f"{TRUTH['record_count']} records" in text.stdout
    doc = json.loads(run_cli("inspect", str(DEMO), "--json").stdout)
    assert doc["read"]["records"] == TRUTH["record_count"]
    assert doc["pktmon"]["drops"] == TRUTH["drop_count"]


def test_missing_rules_directory_is_an_input_error(tmp_path):
    done = run_cli("check", str(DEMO), "--rules", str(tmp_path / "nope"), "--db", str(tmp_path / "a.db"))
    assert done.returncode == 2
    assert "nope" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.db").exists()


def test_wheel_carries_rules_knowledge_and_templates(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    if built.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip().splitlines()[-1:]}")
    (wheel,) = tmp_path.glob("wnvdiag-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("rules/packets-dropped.yaml", "knowledge/pktmon-drop-reasons.yaml", "reports/report.md.j2"):
        assert f"diag/_data/{shipped}" in names


def test_unusable_database_is_refused_before_the_analysis(tmp_path):
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("case notes, not SQLite\n")
    done = run_cli("check", str(DEMO), "--db", str(not_a_db), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert str(not_a_db) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not_a_db.read_text() == "case notes, not SQLite\n"
    assert not (tmp_path / "out").exists()


def test_only_and_skip_select_rules(tmp_path):
    done = run_cli("check", str(DEMO), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path),
                   "--only", "packets-dropped", "--json")
    assert done.returncode == 1, done.stderr
    assert {f["rule_id"] for f in json.loads(done.stdout)["findings"]} == {"packets-dropped"}
    skipped = run_cli("check", str(DEMO), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path),
                      "--skip", "packets-dropped", "--json")
    assert "packets-dropped" not in {f["rule_id"] for f in json.loads(skipped.stdout)["findings"]}
    typo = run_cli("check", str(DEMO), "--db", str(tmp_path / "b.db"), "--only", "packets-droped")
    assert typo.returncode == 2 and "packets-droped" in typo.stderr
    assert not (tmp_path / "b.db").exists()


def test_check_with_host_info_adds_its_compartments_as_facts(tmp_path):
    from diag.synth import synthesize

    made = synthesize("overlapping-compartments-hostinfo", tmp_path / "ovl.etl")
    truth = json.loads(made.truth.read_text())
    args = ["check", str(made.trace), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path), "--json"]
    without = json.loads(run_cli(*args).stdout)
    host_args = [a for p in made.host_info for a in ("--host-info", str(p))]
    with_info = run_cli(*args, *host_args)
    assert with_info.returncode in (0, 1), with_info.stderr
    doc = json.loads(with_info.stdout)
    assert doc["run"]["facts_asserted"] > without["run"]["facts_asserted"]  # the host-info text is the only source here
    assert doc["verdict"] != "failed" and truth["scenario"] == "overlapping-compartments-hostinfo"


def test_garbled_host_info_is_refused_with_file_and_line(tmp_path):
    bad = tmp_path / "ipconfig.txt"
    bad.write_text("Windows IP Configuration\n\n(this line is not ipconfig output)\n")
    done = run_cli("check", str(DEMO), "--host-info", str(bad), "--db", str(tmp_path / "a.db"))
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"wnvdiag: error: {bad}:3:") and "Traceback" not in done.stderr
    assert not (tmp_path / "a.db").exists()


def test_a_trace_that_cannot_answer_exits_3_whatever_the_threshold(tmp_path):
    # a trace of something else (one event of a provider nothing reads): "inconclusive", never "no findings"
    import uuid

    from diag.synth.etlwriter import EtlWriter

    trace = tmp_path / "other.etl"
    with EtlWriter(trace, os_build=20348) as w:
        w.write_event(uuid.UUID("a0c1853b-5c40-4b15-8766-3cf1c58f985a"), 4104, 1, b"\x01\x00\x00\x00")
    for threshold in ("low", "critical"):
        done = run_cli("check", str(trace), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path),
                       "--threshold", threshold)
        assert done.returncode == 3, done.stderr
        first = done.stdout.splitlines()[0]
        assert "inconclusive" in first and "no networking events" in first
    doc = json.loads(run_cli("check", str(trace), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path),
                             "--json").stdout)
    assert (doc["verdict"], doc["exit_code"], doc["findings_at_threshold"]) == ("inconclusive", 3, 0)
    assert "Verdict: inconclusive" in (tmp_path / "wnvdiag-report.md").read_text()


def test_a_run_whose_rules_did_not_all_load_is_never_exit_0(tmp_path):
    rules = tmp_path / "mine"
    rules.mkdir()
    (rules / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n")
    done = run_cli("check", str(DEMO), "--rules", str(rules), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path),
                   "--threshold", "critical")
    assert done.returncode == 3, (done.stdout, done.stderr)  # nothing at critical, but not every rule ran
    assert "incomplete" in done.stdout.splitlines()[0]
    found = run_cli("check", str(DEMO), "--rules", str(rules), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path))
    assert found.returncode == 1  # findings stand, with the rule error reported beside them
    assert "RULE ERROR" in found.stdout


def test_the_verdict_line_names_the_first_problem(tmp_path):
    done = run_cli("check", str(DEMO), "--db", str(tmp_path / "a.db"), "--out", str(tmp_path))
    first = done.stdout.splitlines()[0]
    shown = [line.split("]", 1)[1].split(":", 1)[0].strip() for line in done.stdout.splitlines()
             if line.startswith("  [")]
    assert first.endswith("]") and "first:" in first
    assert shown[0] in ("mac-spoofing-drops", "vlan-drops")  # high, specific: before the overview of all drops
    assert shown.index("packets-dropped") > shown.index("vlan-drops")
