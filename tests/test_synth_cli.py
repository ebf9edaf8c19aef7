"""``wnvdiag synth``: the sub-app, mounted on a root app the way diag/cli.py mounts it."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from diag.commands.synth import app as synth_app
from diag.synth.generate import scenario_names

root = typer.Typer()


@root.callback()
def _root() -> None:
    """wnvdiag"""


root.add_typer(synth_app, name="synth")
runner = CliRunner()


def run(*args: str):
    return runner.invoke(root, ["synth", *args])


def test_list_names_every_scenario():
    result = run("list")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines()]
    assert listed == scenario_names()


def test_generate_writes_the_trace_and_says_where_the_truth_is(tmp_path):
    out = tmp_path / "dad.etl"
    result = run("dad-failure", "-o", str(out), "--seed", "9", "--plain")
    assert result.exit_code == 0, result.output
    truth = tmp_path / "dad.truth.json"
    assert out.is_file() and truth.is_file()
    assert f"ground truth: {truth}" in result.output
    assert "expected findings: duplicate-ip-address" in result.output
    data = json.loads(truth.read_text(encoding="utf-8"))
    assert data["parameters"]["seed"] == 9 and data["trace"]["compressed"] is False


def test_host_info_files_are_announced(tmp_path):
    result = run("overlapping-compartments-hostinfo", "-o", str(tmp_path / "o.etl"))
    assert result.exit_code == 0
    assert result.output.count("host info: ") == 2


@pytest.mark.parametrize("args, problem", [
    (("no-such-scenario",), "unknown scenario 'no-such-scenario'"),
    (("vlan-mismatch", "--size", "lots"), "--size 'lots' is not a size"),
    (("vlan-mismatch", "--hosts", "0"), "--hosts 0 must be"),
    (("vlan-mismatch", "--duration", "-1"), "--duration -1 must be above 0"),
    (("vlan-mismatch", "--rate", "0"), "--rate 0 must be above 0"),
    (("vlan-mismatch", "--seed", "-3"), "--seed -3 must not be negative"),
    (("pktmon-drops", "--duration", "5"), "--duration does not apply to pktmon-drops"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, args, problem):
    result = run(args[0], "-o", str(tmp_path / "x.etl"), *args[1:])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and problem in lines[0] and lines[0].startswith("wnvdiag: error: ")


def test_bad_output_paths(tmp_path):
    assert "is a directory" in run("vlan-mismatch", "-o", str(tmp_path)).output
    assert "does not exist" in run("vlan-mismatch", "-o", str(tmp_path / "no" / "x.etl")).output
    assert "must end in .etl" in run("vlan-mismatch", "-o", str(tmp_path / "x.txt")).output
