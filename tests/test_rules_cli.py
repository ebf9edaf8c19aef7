"""``wnvdiag rules list|show|new|test|lint`` through typer's runner, on real files and the real engine."""

from __future__ import annotations

from pathlib import Path

from rule_helpers import WHEN_LINE, write_rule
from typer.testing import CliRunner

from diag.commands.rules import app

RUNNER = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: str):
    return RUNNER.invoke(app, list(args))


def test_list_shows_the_pack_and_a_broken_user_rule(tmp_path):
    write_rule(tmp_path, "broken", "all:\n  - a: {kind: pktmon_drop, $gt: {cuont: 1}}\n")
    write_rule(tmp_path, "mine", "all:\n  - a: {kind: pktmon_drop}\n")
    done = invoke("list", "--rules", str(tmp_path))
    assert done.exit_code == 1
    assert "vlan-drops" in done.stdout and "shipped" in done.stdout
    assert "mine" in done.stdout and str(tmp_path) in done.stdout
    assert f"{tmp_path / 'broken.yaml'}:{WHEN_LINE + 2}: error:" in done.stderr
    assert "this rule will not run" in done.stderr


def test_show_prints_metadata_and_the_compiled_rules():
    done = invoke("show", "vlan-drops")
    assert done.exit_code == 0
    assert "Compiles to 5 durable_rules rule(s)" in done.stdout and "vlan-drops#4" in done.stdout
    assert invoke("show", "no-such-rule").exit_code == 2


def test_new_writes_a_rule_that_tests_and_lints_clean(tmp_path):
    done = invoke("new", "big-drops", "--dir", str(tmp_path))
    assert done.exit_code == 0, done.stdout
    assert (tmp_path / "big-drops.yaml").is_file() and (tmp_path / "big-drops.cases.yaml").is_file()
    assert invoke("lint", str(tmp_path)).exit_code == 0
    tested = invoke("test", str(tmp_path / "big-drops.yaml"), "--sets", "50")
    assert tested.exit_code == 0, tested.stdout
    assert "cases: 2 passed, 0 failed" in tested.stdout and "0 missed, 0 extra" in tested.stdout
    again = invoke("new", "big-drops", "--dir", str(tmp_path))
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_test_fails_on_a_case_that_does_not_hold(tmp_path):
    invoke("new", "big-drops", "--dir", str(tmp_path))
    cases = tmp_path / "big-drops.cases.yaml"
    cases.write_text(cases.read_text().replace("count: 99}", "count: 100}"), encoding="utf-8")
    done = invoke("test", str(tmp_path), "--sets", "20")
    assert done.exit_code == 1
    assert f"{cases}:" in done.stdout and "FAIL big-drops no_match case" in done.stdout


def test_lint_prints_file_and_line_and_exits_1(tmp_path):
    bad = write_rule(tmp_path, "bad", "all:\n  - a: {kind: pktmon_drop, id: 1}\n")
    done = invoke("lint", str(bad))
    assert done.exit_code == 1
    assert done.stdout.startswith(f"{bad}:{WHEN_LINE + 2}: error: when.all[0].a.id: field 'id' cannot be tested")


def test_the_shipped_pack_passes_rules_test():
    # The command's path and verdicts; the exactness over 200 sets per rule is test_differential's (the same
    # comparison: running it twice cost the suite 100 s).
    done = invoke("test", "--sets", "25")
    assert done.exit_code == 0, done.stdout
    lines = done.stdout.splitlines()
    assert lines[-2].startswith("cases: ") and lines[-2].endswith(" passed, 0 failed")
    assert lines[-1].startswith("differential: ") and lines[-1].endswith(" passed, 0 failed")
    assert "FAIL" not in done.stdout
