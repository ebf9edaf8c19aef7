"""Evidence pcapng, read back by the real tshark. Expected values come from the demo trace's ground
truth (tests/data/pktmon-drops.truth.json, written by the generator), never from our output.
Skips, saying why, where tshark is not installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from diag import store
from diag.errors import BadInputError
from diag.report.pcapng import PcapOptions, export_pcap, matches_from_evidence

DATA = Path(__file__).parent / "data"
DEMO = DATA / "pktmon-drops.etl"
TRUTH = json.loads((DATA / "pktmon-drops.truth.json").read_text())
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")

EVENTS = TRUTH["trace"]["events_by_provider"]["4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"]
GROUPS = TRUTH["expect"][0]["values"]["groups"]  # [{component_id, reason, count}]
FIELDS = ["frame.interface_id", "frame.interface_name", "frame.packet_id", "frame.verdict.hw", "frame.comment",
          "eth.src", "frame.time_epoch"]


def tshark(path: Path) -> list[dict[str, str]]:
    proc = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f",
                           *[a for f in FIELDS for a in ("-e", f)]], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [dict(zip(FIELDS, line.split("\t"))) for line in proc.stdout.splitlines()]


@needs_tshark
def test_every_packet_with_drops_marked(tmp_path):
    out = tmp_path / "all.pcapng"
    summary = export_pcap(DEMO, out, options=PcapOptions(verdict=True))
    packets = tshark(out)
    assert len(packets) == EVENTS["160"] + EVENTS["170"] == summary.packets
    drops = [p for p in packets if p["frame.verdict.hw"]]
    assert len(drops) == EVENTS["170"]
    # Drop comments name reason and component; counts per (component, reason) are the truth's.
    seen = Counter()
    for p in drops:
        comment = p["frame.comment"]
        assert comment.startswith("pktmon drop: ")
        reason = int(comment.split("(reason ", 1)[1].split(",")[0])
        component = int(comment.split(" at component ", 1)[1].split(" ")[0])
        seen[(component, reason)] += 1
        verdict = bytes.fromhex(p["frame.verdict.hw"].replace(":", "").replace(" ", ""))  # after the type octet
        assert int.from_bytes(verdict[:4], "little") == reason
    assert seen == Counter({(g["component_id"], g["reason"]): g["count"] for g in GROUPS})
    assert "Filtered VLAN" in " ".join(p["frame.comment"] for p in drops)
    # Every packet carries its pktmon packet id; all hops of one packet share it.
    assert all(p["frame.packet_id"] for p in packets)
    assert len({p["frame.packet_id"] for p in packets}) < len(packets)
    # Components are interfaces, named after the components the truth names.
    names = {p["frame.interface_name"] for p in packets}
    assert len(names) == len({p["frame.interface_id"] for p in packets}) == summary.interfaces >= 3
    assert any("Container NIC c337484d" in n for n in names)
    assert any("Hyper-V Virtual Switch Extension Adapter" in n for n in names)
    # Times lie inside the trace.
    start, end = (TRUTH["trace"][k] / 1e7 - 11644473600 for k in ("start_filetime", "end_filetime"))
    assert all(start - 1e-6 <= float(p["frame.time_epoch"]) <= end + 1e-6 for p in packets)


@needs_tshark
def test_drops_only_and_one_finding(tmp_path):
    drops = tshark(export_pcap(DEMO, tmp_path / "d.pcapng", drops_only=True).path)
    assert len(drops) == EVENTS["170"] and all(p["frame.comment"].startswith("pktmon drop: ") for p in drops)
    spoof = next(e["values"] for e in TRUTH["expect"] if e["finding"] == "mac-spoofing")
    match = matches_from_evidence([{"component_id": 2, "reason_code": spoof["reason"], "direction": "Tx"}])
    packets = tshark(export_pcap(DEMO, tmp_path / "f.pcapng", match=match, drops_only=True).path)
    assert len(packets) == spoof["count"]
    assert {p["eth.src"].replace(":", "-") for p in packets} == {spoof["source_mac"]}
    # Without --drops-only, the whole path of each of those packets (more hops, same packet ids).
    paths = tshark(export_pcap(DEMO, tmp_path / "p.pcapng", match=match).path)
    assert len(paths) > len(packets)
    assert {p["frame.packet_id"] for p in paths} == {p["frame.packet_id"] for p in packets}


@needs_tshark
def test_export_pcap_command_for_a_stored_finding(tmp_path):
    db = tmp_path / "w.db"
    subprocess.run([sys.executable, "-m", "diag.cli", "check", str(DEMO), "--db", str(db), "--out", str(tmp_path), "-q"])
    (vlan,) = store.list_findings(db, rule="vlan-drops")
    import typer
    from typer.testing import CliRunner

    from diag.commands.runs import register

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    register(app)
    out = tmp_path / "vlan.pcapng"
    result = CliRunner().invoke(app, ["export-pcap", str(DEMO), "-o", str(out), "--finding", vlan.finding_id[:8],
                                      "--drops-only", "--db", str(db)])
    assert result.exit_code == 0, result.output
    expected = next(e["values"] for e in TRUTH["expect"] if e["finding"] == "vlan-mismatch")
    assert len(tshark(out)) == expected["count"]
    other = tmp_path / "other.etl"
    other.write_bytes(DEMO.read_bytes()[:-4096] + b"\0" * 4096)
    result = CliRunner().invoke(app, ["export-pcap", str(other), "-o", str(out), "--finding", vlan.finding_id,
                                      "--db", str(db)])
    assert result.exit_code == 2 and "SHA-256 differs" in result.output


def test_bad_output_paths_are_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="is a directory"):
        export_pcap(DEMO, tmp_path)
    with pytest.raises(BadInputError, match="does not exist"):
        export_pcap(DEMO, tmp_path / "no" / "x.pcapng")


@needs_tshark
def test_one_pcapng_per_finding_for_check(tmp_path, monkeypatch):
    from diag import api
    from diag.report import pcapng

    run = api.check(DEMO, db_path=tmp_path / "w.db", out_dir=tmp_path).run
    passes = []
    read_packets = pcapng._pktmon_events
    monkeypatch.setattr(pcapng, "_pktmon_events", lambda trace, progress=None, select=None: passes.append(1) or read_packets(trace, progress, select))
    written = pcapng.export_finding_pcaps(DEMO, run, tmp_path / "pcap")
    assert len(written) > 2 and len(passes) == 2  # every file from the same two passes over the trace
    assert {"vlan-drops", "mac-spoofing-drops"} <= set(written)
    for rule, truth in (("vlan-drops", "vlan-mismatch"), ("mac-spoofing-drops", "mac-spoofing")):
        expected = next(e["values"]["count"] for e in TRUTH["expect"] if e["finding"] == truth)
        packets = tshark(tmp_path / "pcap" / f"wnvdiag-{rule}.pcapng")
        assert len([p for p in packets if p["frame.comment"].startswith("pktmon drop: ")]) == expected
    # Findings without drop evidence get no file; nothing else is in the directory.
    assert sorted(p.name for p in (tmp_path / "pcap").iterdir()) == sorted(f"wnvdiag-{r}.pcapng" for r in written)


def test_a_bad_trace_is_one_error_naming_it(tmp_path):
    from diag.errors import DiagError

    notes = tmp_path / "notes.etl"
    notes.write_text("not a trace " * 1000)
    with pytest.raises(DiagError) as exc:
        export_pcap(notes, tmp_path / "x.pcapng")
    assert str(notes) in str(exc.value)
    assert not (tmp_path / "x.pcapng").exists()
