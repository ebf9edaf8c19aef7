"""A finding can be followed back to the events in the trace: evidence row -> facts -> event.

The event is looked up with dissect.etl, an independent reader, at the (buffer, offset) the fact
recorded, and must be the pktmon drop of the packet the fact names.
"""

from __future__ import annotations

import sqlite3
import json
import struct
import uuid
from pathlib import Path

import pytest

from diag import api
from diag.store import load_run

DEMO = Path(__file__).resolve().parent / "data" / "pktmon-drops.etl"
PKTMON = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")


def test_every_evidence_row_names_its_facts_and_drop_samples_name_their_events(tmp_path):
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    db = tmp_path / "runs.db"
    result = api.check(DEMO, db_path=db, out_dir=tmp_path, only=["packets-dropped"])
    (finding,) = result.run.findings
    assert len(finding.evidence_fact_ids) == len(finding.evidence) > 0

    stored = load_run(db, result.run_id).findings[0]
    assert stored.evidence_fact_ids == finding.evidence_fact_ids  # survives the round trip
    with sqlite3.connect(db) as conn:
        facts = {fid: json.loads(data) for fid, data in
                 conn.execute("SELECT fact_id, data FROM facts WHERE run_id = ?", [result.run_id])}

    checked = 0
    with open(DEMO, "rb") as fh:
        etl = dissect_etl.ETL(fh)
        for row, fact_ids in zip(finding.evidence, finding.evidence_fact_ids, strict=True):
            (drop,) = [facts[f] for f in fact_ids if facts[f]["kind"] == "pktmon_drop"]
            assert (drop["component_id"], drop["reason_code"], drop["count"]) == \
                (row["component_id"], row["reason_code"], row["count"])
            for sample in drop["sample"]:
                header = etl.buffer(sample["buffer"]).read_record(sample["offset"]).header
                assert uuid.UUID(bytes_le=header.provider_id.bytes) == PKTMON  # dissect's byte-order bug
                assert header.descriptor.id == 170
                pkt_group_id, = struct.unpack_from("<Q", bytes(header.payload))
                assert pkt_group_id == sample["pkt_group_id"]
                checked += 1
    assert checked > 0
