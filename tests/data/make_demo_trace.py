"""Make the demo pktmon trace ``pktmon-drops.etl`` and its ground truth ``pktmon-drops.truth.json``.

The trace is the ``pktmon-drops`` scenario of the synthetic scenario library
(``diag/synth/scenarios/pktmon_drops.py``, where the scenario is described), written uncompressed
from its default seed; ``wnvdiag synth pktmon-drops -o pktmon-drops.etl`` makes the same file.
The truth file is computed from the scenario definition, never by reading the trace back.

Run: ``python tests/data/make_demo_trace.py [OUT_DIR]`` (default: this file's folder).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diag.synth.generate import synthesize  # noqa: E402

SCENARIO = "pktmon-drops"
TRACE_NAME = "pktmon-drops.etl"
TRUTH_NAME = "pktmon-drops.truth.json"


def main(out_dir: Path | None = None) -> tuple[Path, Path]:
    out = Path(out_dir) if out_dir else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    result = synthesize(SCENARIO, out / TRACE_NAME)
    return result.trace, result.truth


if __name__ == "__main__":
    paths = main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    for p in paths:
        print(p, p.stat().st_size)
