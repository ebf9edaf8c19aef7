"""The console in the habits of tshark, pktmon and sqlite-utils: progress on stderr only, --version,
shell completion, readable help, findings by severity, every report path, a repeated check reusing its
stored run, WNVDIAG_DB / WNVDIAG_OUT. Run as the installed command runs (``python -m diag.cli``).
Expected values come from the demo trace's ground truth (tests/data/pktmon-drops.truth.json)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "pktmon-drops.etl"
TRUTH = json.loads((DEMO.parent / "pktmon-drops.truth.json").read_text())
EXPECT = {e["finding"]: e["values"] for e in TRUTH["expect"]}
SEVERITIES = ["info", "low", "medium", "high", "critical"]


def cli(*args: object, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diag.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**os.environ, **(env or {})})


def on_terminal(args: list, stdout: Path) -> bytes:
    """Run the command with stderr a terminal and stdout the file ``stdout``; what was drawn on the terminal."""
    main, terminal = pty.openpty()
    with open(stdout, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "diag.cli", *map(str, args)], stdout=fh,
                                stderr=terminal, cwd=ROOT)
        os.close(terminal)
        drawn = b""
        while True:
            ready, _, _ = select.select([main], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        assert proc.wait(timeout=300) == 0, drawn.decode(errors="replace")
    os.close(main)
    return drawn


def test_progress_goes_to_stderr_and_stdout_gets_only_the_summary(tmp_path):
    """stderr a terminal, stdout a file: the bar is drawn on the terminal, the file starts with the summary."""
    out = tmp_path / "summary.txt"
    drawn = on_terminal(["inspect", DEMO], out)
    text = out.read_text()
    assert text.split("\n", 1)[0].strip(), "stdout starts with a blank line"
    assert "\x1b[" not in text and "reading" not in text
    assert b"reading pktmon-drops.etl" in drawn


def test_export_pcap_and_rules_test_show_their_phases_on_stderr(tmp_path):
    """A bar for each long command, not only the reads: the export's second pass, the differential test."""
    out = tmp_path / "stdout.txt"
    drawn = on_terminal(["export-pcap", DEMO, "-o", tmp_path / "demo.pcapng"], out)
    assert b"pass 2 of 2" in drawn and "pass" not in out.read_text()
    assert out.read_text().startswith(str(tmp_path / "demo.pcapng"))
    rule = ROOT / "rules" / "background-drops.yaml"
    drawn = on_terminal(["rules", "test", rule, "--sets", "20"], out)
    assert b"differential test" in drawn and "differential test:" not in out.read_text()


def test_version_and_shell_completion():
    from diag import __version__

    assert cli("--version").stdout.strip() == f"wnvdiag {__version__}"
    script = cli("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_wnvdiag_completion" in script.stdout
    done = cli(env={"_WNVDIAG_COMPLETE": "complete_bash", "COMP_WORDS": "wnvdiag exp", "COMP_CWORD": "1"})
    assert done.stdout.split() == ["export-pcap"]


def _commands(command, path):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, [*path, name])


def test_help_shows_readable_types_and_never_breaks_a_word():
    from diag.cli import app, readable_help

    for path, command in _commands(readable_help(typer.main.get_command(app)), []):
        done = cli(*path, "--help", env={"COLUMNS": "64"})
        assert done.returncode == 0, (path, done.stderr)
        assert not re.search(r"<[a-z]|[{}]", done.stdout), (path, done.stdout)
        words = set()
        for param in command.params:
            words.update((param.help or "").split())
        words.update((command.help or "").split())
        for line in done.stdout.splitlines():
            for token in line.split():
                if token.isalpha() and len(token) > 3 and token.islower():
                    # every word of a wrapped help text is a whole word of the text it came from
                    assert any(token in w for w in words) or token in done.stdout.replace("\n", " "), (path, token)
        # the help texts come back in order, each as one run of words, whatever the wrapping
        flat = " ".join(done.stdout.split())
        for param in command.params:
            if param.help and not getattr(param, "hidden", False):
                assert " ".join(param.help.split()) in flat, (path, param.name)


def test_findings_most_severe_first_any_case_and_one_finding_with_its_evidence(tmp_path):
    db = tmp_path / "w.db"
    assert cli("check", DEMO, "--db", db, "--out", tmp_path, "-q").returncode == 1
    rows = json.loads(cli("findings", "--db", db, "--json").stdout)
    ranks = [SEVERITIES.index(r["severity"]) for r in rows]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) > 1
    high = json.loads(cli("findings", "--db", db, "--severity", "HIGH", "--json").stdout)
    assert high and {r["severity"] for r in high} <= {"high", "critical"}
    assert [r["finding_id"] for r in high] == [r["finding_id"] for r in rows if r["severity"] in ("high", "critical")]
    spoof = next(r for r in rows if r["rule_id"] == "mac-spoofing-drops")
    shown = cli("findings", "--db", db, "--finding", spoof["finding_id"][:8])
    assert shown.returncode == 0, shown.stderr
    truth = EXPECT["mac-spoofing"]
    assert f"reason_code={truth['reason']}" in shown.stdout and f"count={truth['count']}" in shown.stdout
    listed = json.loads(cli("findings", "--db", db, "--evidence", "--json").stdout)
    assert all("evidence" in r and len(r["evidence"]) == r["evidence_rows"] for r in listed)
    assert cli("findings", "--db", db, "--severity", "severe").returncode == 2


def test_check_names_every_report_and_hints_at_hidden_findings(tmp_path):
    done = cli("check", DEMO, "--db", tmp_path / "w.db", "--out", tmp_path / "r", "--report", "all")
    assert done.returncode == 1, done.stderr
    written = sorted(p.name for p in (tmp_path / "r").iterdir())
    printed = sorted(Path(line.split(": ", 1)[1]).name for line in done.stdout.splitlines()
                     if line.strip().startswith("Report ("))
    assert printed == written and len(written) >= 5
    runs = json.loads(cli("findings", "--db", tmp_path / "w.db", "--json").stdout)
    below = [r for r in runs if r["severity"] == "info"]
    assert below, "the demo trace has info findings"
    assert f"{len(below)} finding(s) below low not shown: --threshold info shows them" in done.stdout


def test_a_repeated_check_reuses_the_stored_run_and_fresh_reads_again(tmp_path):
    db = tmp_path / "w.db"
    first = cli("check", DEMO, "--db", db, "--out", tmp_path)
    run_id = first.stdout.split()[1].rstrip(":")
    again = cli("check", DEMO, "--db", db, "--out", tmp_path)
    assert again.returncode == first.returncode == 1
    assert f"Reused run {run_id}" in again.stdout
    fresh = cli("check", DEMO, "--db", db, "--out", tmp_path, "--fresh")
    assert fresh.returncode == 1 and "Reused run" not in fresh.stdout
    other = cli("check", DEMO, "--db", db, "--out", tmp_path, "--threshold", "high")  # another question
    assert "Reused run" not in other.stdout
    assert len(json.loads(cli("runs", "--db", db, "--json").stdout)) == 2  # the high-threshold run is its own


def test_database_and_report_folder_from_the_environment(tmp_path):
    env = {"WNVDIAG_DB": str(tmp_path / "env.db"), "WNVDIAG_OUT": str(tmp_path / "reports")}
    assert cli("check", DEMO, "-q", env=env, cwd=tmp_path).returncode == 1
    assert (tmp_path / "env.db").is_file() and (tmp_path / "reports" / "wnvdiag-report.md").is_file()
    assert not (tmp_path / "wnvdiag.db").exists()
    assert len(json.loads(cli("runs", "--json", env=env).stdout)) == 1
