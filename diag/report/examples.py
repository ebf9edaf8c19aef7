"""Write the example reports in ``reports/examples/`` from the README's example trace.

    python -m diag.report.examples [OUT_DIR]

The run is made by ``api.check`` on ``tests/data/pktmon-drops.etl``, then given a fixed run id,
times and arguments so that the files only change when the reports or the rules change (a test
rebuilds them and compares).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from diag.report.model import RunReport
from diag.report.render import FORMATS, render
from diag.resources import data_dir

TRACE = Path(__file__).resolve().parents[2] / "tests" / "data" / "pktmon-drops.etl"
CASE_ID = "EXAMPLE-0001"


def example_run(trace: Path = TRACE) -> RunReport:
    from diag import api

    from diag.inspect import scan_trace
    from diag.report.model import fact_records

    with tempfile.TemporaryDirectory() as tmp:
        result = api.check(trace, db_path=Path(tmp) / "w.db", out_dir=tmp)
    facts = result.run.facts or fact_records(api.build_facts(scan_trace(trace, facts=True)))
    fixed = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    return result.run.model_copy(update={
        "run_id": "20260101-120000-example",
        "started": fixed,
        "finished": fixed.replace(second=1),
        "arguments": {"argv": ["check", "tests/data/pktmon-drops.etl", "--report", "all", "--case", CASE_ID]},
        "trace": result.run.trace.model_copy(update={"path": "tests/data/pktmon-drops.etl"}),
        "facts": facts,
    })


def write_examples(out_dir: Path) -> dict[str, list[Path]]:
    return render(example_run(), FORMATS, out_dir, case_id=CASE_ID)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else data_dir("reports") / "examples"
    for files in write_examples(target).values():
        for f in files:
            print(f)
