"""User rules that attack the check: exit or hang at import, wreck the worker, eat memory, outlive the parent.

The shipped pack's findings are the reference: each is computed by a run with no user rules at all, and a
hostile user rule must leave them exactly as they are. Real engine, real child processes, the demo trace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from diag import api
from diag.engine import load_rules, run_rules
from diag.engine.child import Limits
from diag.inspect import scan_trace
from diag.resources import data_dir

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "pktmon-drops.etl"
SHIPPED = data_dir("rules")  # the installed pack: what is_shipped() trusts

RULE = '''\
{top}
from durable.lang import c, m, when_all

META = {{"id": "{rule_id}", "title": "t", "severity": "high", "confidence": "low", "description": "d",
        "impact": "i", "remediation": "r", "finding": {{"summary": "{{matches}}"}}}}
WHEN = when_all(c.d << (m.kind == "pktmon_drop"))
{action}
'''


def hostile(directory: Path, rule_id: str, top: str = "", action: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rule_id}.py"
    path.write_text(RULE.format(top=textwrap.dedent(top), rule_id=rule_id, action=textwrap.dedent(action)))
    return path


@pytest.fixture(scope="module")
def demo_facts():
    return api.build_facts(scan_trace(DEMO, facts=True))


@pytest.fixture(scope="module")
def shipped_alone(demo_facts):
    result = run_rules(demo_facts, timeout=120)
    assert result.complete and result.findings
    return {f.rule_id: f.model_dump(mode="json") for f in result.findings}


def shipped_findings(result) -> dict:
    shipped = {r.id for r in load_rules([SHIPPED])[0]}
    return {f.rule_id: f.model_dump(mode="json") for f in result.findings if f.rule_id in shipped}


def test_a_rule_file_that_exits_at_import_is_an_error_of_its_own_not_a_clean_check(tmp_path):
    mine = tmp_path / "mine"
    hostile(mine, "bye", top="import os\nos._exit(0)")
    hostile(mine, "fine")
    done = subprocess.run([sys.executable, "-m", "diag.cli", "check", str(DEMO), "--rules", str(mine),
                           "--db", str(tmp_path / "r.db"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr  # the demo's findings, and the run is incomplete
    assert "RULE ERROR bye" in done.stdout and "ended the loading process" in done.stdout
    assert "fine:" in done.stdout  # the file after it was still read, and ran
    assert (tmp_path / "r.db").stat().st_size > 0


def test_rules_list_survives_a_file_that_exits_at_import(tmp_path):
    mine = tmp_path / "mine"
    hostile(mine, "b-exit", top="import os\nos._exit(3)")
    hostile(mine, "c-fine")
    done = subprocess.run([sys.executable, "-m", "diag.cli", "rules", "list", "--rules", str(mine)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    text = done.stdout + done.stderr
    assert "c-fine" in text and "exited with code 3" in text, text


def test_a_file_that_hangs_at_import_is_stopped_and_the_others_load(tmp_path, monkeypatch):
    from diag.engine import pyloader

    monkeypatch.setattr(pyloader, "LOAD_LIMITS", Limits(timeout=3, memory_mb=None))
    mine = tmp_path / "mine"
    hostile(mine, "a-hang", top="while True:\n    pass")
    hostile(mine, "c-fine")
    rules, errors = load_rules([mine])
    assert [r.id for r in rules] == ["c-fine"]
    assert [e.rule_id for e in errors] == ["a-hang"] and "did not finish within 3 s" in errors[0].message


def test_the_parent_never_imports_a_user_rule(tmp_path):
    mine = tmp_path / "mine"
    marker = tmp_path / "imported-in"
    hostile(mine, "spy", top=f"import os\nopen({str(marker)!r}, 'a').write(str(os.getpid()) + '\\n')")
    rules, errors = load_rules([mine])
    assert [r.id for r in rules] == ["spy"] and not errors
    pids = marker.read_text().split()
    assert pids and str(os.getpid()) not in pids


@pytest.mark.parametrize("name, action", [
    ("wipe", """
        def action(match):
            import gc
            for o in gc.get_objects():
                if type(o).__name__ == "_Recorder":
                    for session in o.matches:
                        session.clear()
                    o.failures.clear()
        """),
    ("recurse", """
        def action(match):
            def down(n):
                return down(n + 1)
            return down(0)
        """),
    ("crash", """
        def action(match):
            import os, signal
            os.kill(os.getpid(), signal.SIGSEGV)
        """),
])
def test_a_user_rule_cannot_touch_the_shipped_findings(tmp_path, demo_facts, shipped_alone, name, action):
    mine = tmp_path / "mine"
    hostile(mine, name, action=action)
    result = run_rules(demo_facts, [SHIPPED, mine], timeout=120)
    assert shipped_findings(result) == shipped_alone
    assert any(e.rule_id == name for e in result.rule_errors) or name == "wipe"
    assert not result.complete or name == "wipe"


def test_a_user_action_past_the_memory_limit_is_a_rule_error(tmp_path, demo_facts, shipped_alone):
    mine = tmp_path / "mine"
    hostile(mine, "hog", action="""
        def action(match):
            hog = []
            while True:
                hog.append(bytearray(64 << 20))
        """)
    result = run_rules(demo_facts, [SHIPPED, mine], timeout=Limits(timeout=120, memory_mb=512))
    assert shipped_findings(result) == shipped_alone
    errors = [e.message for e in result.rule_errors if e.rule_id == "hog"]
    assert errors and ("MemoryError" in errors[0] or "memory" in errors[0]), result.rule_errors


def test_a_user_rule_that_hangs_is_stopped_at_the_limit(tmp_path, demo_facts, shipped_alone):
    mine = tmp_path / "mine"
    hostile(mine, "stuck", action="""
        def action(match):
            import time
            time.sleep(600)
        """)
    result = run_rules(demo_facts, [SHIPPED, mine], timeout=Limits(timeout=8, memory_mb=None))
    assert shipped_findings(result) == shipped_alone
    assert any(e.rule_id == "stuck" and "did not finish within 8 s" in e.message for e in result.rule_errors)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux's")
def test_workers_die_with_a_killed_parent(tmp_path):
    mine = tmp_path / "mine"
    hostile(mine, "stuck", action="""
        def action(match):
            import time
            time.sleep(600)
        """)
    parent = subprocess.Popen([sys.executable, "-m", "diag.cli", "check", str(DEMO), "--rules", str(mine),
                               "--db", str(tmp_path / "r.db"), "--out", str(tmp_path)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(workers) < 1:
        workers = _children(parent.pid)
        time.sleep(0.2)
    assert workers, "no rules worker was seen"
    time.sleep(1)
    workers = _children(parent.pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() and _state(w) != "Z" for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and _state(w) != "Z"]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
