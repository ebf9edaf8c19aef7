"""What scripts rely on: the JSON that inspect and check print validates against the published schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diag import api
from diag.resources import data_dir

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the published schemas (test extra)")
DEMO = Path(__file__).resolve().parent / "data" / "pktmon-drops.etl"


def schema(name: str) -> dict:
    return json.loads((data_dir("reports") / "schemas" / name).read_text())


def test_inspect_json_validates_against_its_schema():
    doc = json.loads(api.inspect(DEMO).model_dump_json(by_alias=True))
    jsonschema.validate(doc, schema("inspect.schema.json"))


def test_json_report_validates_against_its_schema(tmp_path):
    api.check(DEMO, db_path=tmp_path / "r.db", out_dir=tmp_path, report_formats="json")
    (report,) = tmp_path.glob("*.json")
    jsonschema.validate(json.loads(report.read_text()), schema("report.schema.json"))


def test_the_schemas_reject_a_document_that_breaks_them():
    doc = json.loads(api.inspect(DEMO).model_dump_json(by_alias=True))
    doc["read"]["records"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema("inspect.schema.json"))
