"""`wnvdiag --help` and `--version` start without the library: no trace reader, engine, store or renderer
is imported for them (which is what makes them start in a tenth of a second)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("diag.api", "diag.inspect", "diag.engine.rules", "diag.engine.runner", "diag.store", "diag.report.render",
         "diag.facts.network", "diag.synth.generate", "sqlite_utils", "durable", "jinja2")

PROBE = """
import json, sys
sys.argv = ["wnvdiag", *json.loads(sys.argv[1])]
from diag.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["rules", "--help"], ["check", "--help"]])
def test_help_and_version_import_nothing_heavy(args):
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, timeout=60)
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert "Usage" in done.stdout or "wnvdiag" in done.stdout
    assert [name for name in HEAVY if name in loaded] == []


def test_a_command_still_finds_the_library(tmp_path):
    done = subprocess.run([sys.executable, "-m", "diag.cli", "inspect", str(tmp_path / "missing.etl")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "missing.etl" in done.stderr
