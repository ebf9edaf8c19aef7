"""The runs/findings/report/diff commands over a real database made by real checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from diag import store
from diag.commands.runs import register

DEMO = Path(__file__).parent / "data" / "pktmon-drops.etl"


@pytest.fixture(scope="module")
def app():
    app = typer.Typer(add_completion=False)

    @app.callback()
    def main() -> None:  # a group, as the real wnvdiag app is
        pass

    register(app)
    return app


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    db = tmp / "w.db"
    subprocess.run([sys.executable, "-m", "diag.cli", "check", str(DEMO), "--db", str(db), "--out", str(tmp), "-q"])
    return db


def invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_runs_findings_and_report(app, db, tmp_path):
    (run,) = store.list_runs(db)
    result = invoke(app, "runs", "--db", db)
    assert result.exit_code == 0 and run.run_id in result.output and "findings" in result.output
    result = invoke(app, "findings", "latest", "--severity", "high", "--db", db, "--json")
    rows = json.loads(result.output)
    assert rows and {r["severity"] for r in rows} <= {"high", "critical"}
    assert {r["rule_id"] for r in rows} >= {"mac-spoofing-drops"}
    result = invoke(app, "findings", "--rule", "mac-spoofing-drops", "--db", db)
    assert result.exit_code == 0 and "mac-spoofing-drops" in result.output
    result = invoke(app, "report", run.run_id[:15], "--format", "html,json", "--out", tmp_path, "--case", "C-1",
                    "--db", db)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "wnvdiag-report.html").is_file()
    assert json.loads((tmp_path / "wnvdiag-report.json").read_text())["case_id"] == "C-1"


def test_the_trace_is_not_read_again(app, db, tmp_path, monkeypatch):
    import diag.inspect

    def no_read(*a, **k):
        raise AssertionError("the trace was read")

    monkeypatch.setattr(diag.inspect, "scan_trace", no_read)
    assert invoke(app, "report", "latest", "--format", "md", "--out", tmp_path, "--db", db).exit_code == 0


def test_diff_of_a_run_with_itself_and_with_another(app, db, tmp_path):
    (run,) = store.list_runs(db)
    result = invoke(app, "diff", run.run_id, run.run_id, "--db", db)
    assert result.exit_code == 0 and "unchanged" in result.output
    other = store.load_run(db, run.run_id)
    other = other.model_copy(update={"run_id": "after-fix", "case_id": "C-2",
                                     "findings": [f for f in other.findings if f.rule_id != "vlan-drops"]})
    store.save_run(db, other)
    result = invoke(app, "diff", run.run_id, "after-fix", "--db", db, "--json")
    assert result.exit_code == 1
    d = json.loads(result.output)
    assert [f["rule_id"] for f in d["disappeared"]] == ["vlan-drops"] and d["appeared"] == []


def test_errors_are_one_line_and_exit_2(app, tmp_path):
    for args in (["findings", "x", "--db", tmp_path / "none.db"], ["report", "latest", "--db", tmp_path / "none.db"],
                 ["findings", "--severity", "urgent", "--db", tmp_path / "none.db"]):
        result = invoke(app, *args)
        assert result.exit_code == 2, args
        assert result.output.count("\n") == 1 and "error:" in result.output
