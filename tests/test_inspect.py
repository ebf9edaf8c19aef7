"""``inspect`` against independent sources.

Real samples: packet and drop counts and the drop-reason breakdown are recomputed by reading the
records with dissect.etl and decoding them with etl-parser's generated PktMon layout (neither is
on our runtime path). The demo trace: the scenario's ground truth.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

import reference_pktmon as reference
from samples import sample_params
from diag import knowledge
from diag.inspect import inspect_trace

DEMO = Path(__file__).resolve().parent / "data" / "pktmon-drops.etl"
TRUTH = json.loads((DEMO.parent / "pktmon-drops.truth.json").read_text())
PKTMON = "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"


def independent_pktmon_counts(path: Path):
    packets = drops = 0
    by_reason: collections.Counter[int] = collections.Counter()
    by_component: collections.Counter[int] = collections.Counter()
    for event_id, _header, fields in reference.pktmon_events(path, {160, 170}):
        packets += 1
        if event_id == 170:
            drops += 1
            by_reason[fields.DropReason] += 1
            by_component[fields.ComponentId] += 1
    return packets, drops, by_reason, by_component


@pytest.mark.parametrize("path", sample_params())
def test_pktmon_counts_match_an_independent_decode(path):
    summary = inspect_trace(path)
    packets, drops, by_reason, by_component = independent_pktmon_counts(path)
    p = summary.pktmon
    assert p.packets == packets
    assert p.drops == drops
    assert {r.code: r.count for r in p.drops_by_reason} == dict(by_reason)
    assert {c.component_id: c.count for c in p.drops_by_component} == dict(by_component)
    assert p.malformed_packet_events == 0


@pytest.mark.parametrize("path", sample_params())
def test_record_and_provider_totals_are_consistent(path):
    summary = inspect_trace(path)
    assert sum(p.records for p in summary.providers) == summary.read.records
    d = summary.decode
    assert d.decodable_records + d.undecodable_records + d.decode_errors == summary.read.records


def test_demo_trace_against_its_ground_truth():
    s = inspect_trace(DEMO)
    assert s.read.records == TRUTH["record_count"]
    assert s.header.os_build == TRUTH["os_build"]
    assert s.header.cpu_count == TRUTH["cpu_count"]
    assert s.pktmon.packets == TRUTH["packet_event_count"]
    assert s.pktmon.drops == TRUTH["drop_count"]
    expected_reasons = collections.Counter()
    for d in TRUTH["drops"]:
        expected_reasons[d["reason"]] += d["count"]
    assert {r.code: r.count for r in s.pktmon.drops_by_reason} == dict(expected_reasons)
    assert {r.code: r.name for r in s.pktmon.drops_by_reason} == {
        code: knowledge.drop_reason_label(code, TRUTH["os_build"]) for code in expected_reasons}
    truth_components = {c["id"]: c for c in TRUTH["components"]}
    ours = {c.id: c for c in s.pktmon.components}
    assert set(ours) == set(truth_components)
    for comp_id, comp in truth_components.items():
        assert ours[comp_id].name == comp["name"]
        assert ours[comp_id].type == comp["type"]
    pktmon = next(p for p in s.providers if p.guid == PKTMON)
    assert {e.event_id: e.count for e in pktmon.events} == {int(k): v for k, v in TRUTH["events_by_id"].items()}
    assert all(e.decoder == "fast" for e in pktmon.events)


def test_inspect_json_is_stable_and_documented(tmp_path):
    s = inspect_trace(DEMO)
    doc = json.loads(s.model_dump_json(by_alias=True))
    assert doc["schema"] == "wnvdiag.inspect/2"
    assert set(doc) == {"schema", "path", "header", "read", "decode", "providers", "pktmon"}


def test_published_json_schema_is_current_and_validates_output():
    """reports/schemas/inspect.schema.json is what scripts rely on: it must match the model."""
    from diag.inspect import TraceSummary
    from diag.resources import data_dir

    published = json.loads((data_dir("reports") / "schemas" / "inspect.schema.json").read_text())
    assert published == json.loads(json.dumps(TraceSummary.model_json_schema(by_alias=True))), \
        "regenerate reports/schemas/inspect.schema.json (see README, 'inspect --json')"
    doc = json.loads(inspect_trace(DEMO).model_dump_json(by_alias=True))
    assert set(published["required"]) <= set(doc) <= set(published["properties"])


@pytest.mark.parametrize("path", sample_params())
def test_first_and_last_event_times_are_those_of_any_record(path):
    # every record counts: a buffer's last record is not always its latest (relogged buffers, classic records)
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    times = []
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            try:
                stamp = rec.header.timestamp
            except Exception:  # headers without a timestamp (message records)
                continue
            if stamp is not None and stamp.year > 1601:
                times.append(stamp)
    read = inspect_trace(path).read
    # within a few microseconds: dissect.etl rounds the logfile header record's time its own way
    assert abs((read.last_event - max(times)).total_seconds()) < 1e-5
    assert abs((read.first_event - min(times)).total_seconds()) < 1e-5
