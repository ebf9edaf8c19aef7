"""A durable-rules build that cannot load (on CPython 3.13 without the macro its build needs there) is one
line at once, naming the fix, before the trace is read and before anything is stored.

The broken build is stood in for by a module of the extension's name that fails to import with the
error a real build without the macro gives on 3.13 (seen on CPython 3.13.0: "undefined symbol:
PyEval_CallObject"); the CI run on 3.13 exercises the real, working build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "pktmon-drops.etl"
BROKEN = ('raise ImportError("/venv/lib/python3.13/site-packages/durable_rules_engine.cpython-313-x86_64-linux-gnu.so:'
          ' undefined symbol: PyEval_CallObject")\n')


def test_a_build_without_the_macro_is_refused_with_the_fix(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "durable_rules_engine.py").write_text(BROKEN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "diag.cli", "check", str(DEMO), "--db", str(tmp_path / "w.db"),
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject" in lines[0]
    assert not (tmp_path / "w.db").exists() and not list(tmp_path.glob("wnvdiag-report*"))


def test_this_interpreter_loads_the_engine():
    from diag.engine import require_engine

    require_engine()


def test_python_3_12_is_refused_with_the_reason():
    """Measured on CPython 3.12.1: a two-fact join in a bare durable-rules engine segfaults there
    (tests/test_engine_regressions.py's pair_join and second-ruleset canaries fail on 3.12 only)."""
    import pytest

    from diag.engine import require_engine
    from diag.errors import EngineUnavailable

    with pytest.raises(EngineUnavailable, match=r"not supported on this Python: durable-rules 2\.0\.28 crashes"):
        require_engine((3, 12))
    require_engine((3, 11))
