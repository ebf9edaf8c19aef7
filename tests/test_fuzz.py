"""A bounded, seeded mutation fuzz: every damaged trace ends in a result or one line and exit code 2.

Mutations (``tests/mutate.py``): bit flips, runs of 0x00/0xFF, random integers in buffer headers and at
8-byte offsets (timestamps), truncation, buffer sizes changed, buffers duplicated or removed, the
compressed flag flipped, garbage inside compressed buffers. Sources: the real samples (where present), the
demo trace and synthesized compressed traces. The long run is ``benchmarks/fuzz.py``; a crash either finds
becomes a test here (the seeds below are fixed, so the same mutants come back on every run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mutate import CATEGORIES, mutant, mutants
from samples import SAMPLES_DIR
from diag import api
from diag.errors import DiagError
from diag.inspect import scan_trace

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "pktmon-drops.etl"
REAL = ["NeoChenjf__Finguard__PktMon.etl", "microsoft__demikernel__PktMon.etl",
        "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl", "paul90317__Gobang__PktMon.etl",
        "microsoft__krabsetw__powershell.etl", "microsoft__perfview__SelfDescribingSingleEvent.etl",
        "microsoft__perfview__smallEtlFile.etl"]
PER_CATEGORY = 5


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, bytes]:
    from diag.synth.generate import synthesize

    out = {"demo": DEMO.read_bytes()}
    work = tmp_path_factory.mktemp("fuzz-sources")
    for scenario in ("vfp-policy-block", "lossy-trace"):
        synthesize(scenario, work / f"{scenario}.etl", compressed=True)
        out[scenario] = (work / f"{scenario}.etl").read_bytes()
    for name in REAL:
        if (SAMPLES_DIR / name).is_file():
            out[name] = (SAMPLES_DIR / name).read_bytes()
    return out


def _facts_of(path: Path) -> None:
    scan = scan_trace(path, facts=True)
    api.build_facts(scan)


def test_mutants_through_inspect_and_the_facts_end_in_a_result_or_a_diag_error(sources, tmp_path):
    tried, refused, crashes = 0, 0, []
    for name, original in sources.items():
        for category, seed, data in mutants(original, PER_CATEGORY):
            target = tmp_path / "mutant.etl"
            target.write_bytes(data)
            tried += 1
            try:
                _facts_of(target)
            except DiagError:
                refused += 1
            except Exception as exc:  # noqa: BLE001 - the finding of this test
                crashes.append(f"{name} {category} seed {seed}: {type(exc).__name__}: {exc}"[:300])
    assert not crashes, "\n".join(crashes)
    assert tried == len(sources) * len(CATEGORIES) * PER_CATEGORY and refused < tried


def test_mutants_through_the_whole_check_end_in_a_run_or_one_error_line(sources, tmp_path):
    """The CLI end to end (rules engine, database, reports) on one mutant per category of the demo."""
    for category in CATEGORIES:
        target = tmp_path / f"{category}.etl"
        target.write_bytes(mutant(sources["demo"], category, 1))
        done = subprocess.run([sys.executable, "-m", "diag.cli", "check", str(target), "--db", str(tmp_path / "f.db"),
                               "--out", str(tmp_path / category), "--report", "all"],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert "Traceback" not in done.stderr, (category, done.stderr)
        assert done.returncode in (0, 1, 2, 3), (category, done.returncode, done.stderr)
        if done.returncode == 2:
            assert len(done.stderr.strip().splitlines()) == 1 and str(target) in done.stderr, done.stderr
        else:
            assert (tmp_path / category / "wnvdiag-report.md").is_file()


# -- regressions found by the fuzz (each the smallest damage that crashed) ------------------------------------

def test_an_out_of_range_timestamp_is_counted_and_the_run_goes_on(tmp_path):
    import struct

    data = bytearray(DEMO.read_bytes())
    struct.pack_into("<q", data, 9776, 2 ** 62)  # one drop event's timestamp
    target = tmp_path / "time.etl"
    target.write_bytes(bytes(data))
    summary = api.inspect(target)
    assert summary.read.records_bad_time == 1 and any("no date" in w for w in summary.read.warnings)
    clean = api.inspect(DEMO)
    assert summary.read.last_event == clean.read.last_event  # the damaged time is not taken as the last event
    result = api.check(target, db_path=tmp_path / "t.db", out_dir=tmp_path)
    assert result.run.quality.records_undecoded == 1


def test_a_property_whose_value_has_another_type_is_counted_not_used(tmp_path, sources):
    name = "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl"
    if name not in sources:
        pytest.skip("real sample not available")
    target = tmp_path / "prop.etl"
    target.write_bytes(mutant(sources[name], "bit-flips", 0))  # turns an interface-index property into a name's code
    summary = api.inspect(target)
    _facts_of(target)
    assert any("another type" in w for w in summary.read.warnings)


def test_a_rundown_event_decoded_without_its_fields_is_counted_not_a_crash(tmp_path, sources):
    name = "paul90317__Gobang__PktMon.etl"
    if name not in sources:
        pytest.skip("real sample not available")
    target = tmp_path / "rundown.etl"
    target.write_bytes(mutant(sources[name], "bit-flips", 1308))  # found by benchmarks/fuzz.py
    summary = api.inspect(target)
    _facts_of(target)
    assert any("rundown event(s) are damaged" in w for w in summary.read.warnings)
