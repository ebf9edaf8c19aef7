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


def test_check_json_validates_and_has_the_report_json_shape(tmp_path):
    """The same run has one shape: check --json is the JSON report's document plus what the check did."""
    result = api.check(DEMO, db_path=tmp_path / "r.db", out_dir=tmp_path, report_formats="json,md")
    doc = json.loads(json.dumps(result.as_json()))
    jsonschema.validate(doc, schema("check.schema.json"))
    (written,) = tmp_path.glob("*.json")
    report = json.loads(written.read_text())
    extra = set(doc) - set(report)
    assert extra == {"run_id", "db", "reports", "pcaps", "threshold", "findings_at_threshold", "exit_code", "reused"}
    assert {k: v for k, v in doc.items() if k not in extra and k != "schema"} == \
        {k: v for k, v in report.items() if k != "schema"}
    assert doc["schema"] == "wnvdiag.check/2" and doc["exit_code"] == result.exit_code == 1
    assert sorted(doc["reports"]) == ["json", "md"] and doc["reports"]["json"] == [str(written)]
    # a stored run reported again keeps its shape, and says it was reused
    again = json.loads(json.dumps(api.check(DEMO, db_path=tmp_path / "r.db", out_dir=tmp_path,
                                            report_formats="json,md").as_json()))
    jsonschema.validate(again, schema("check.schema.json"))
    assert again["reused"] and again["run"] == doc["run"]


def test_the_schemas_reject_a_document_that_breaks_them():
    doc = json.loads(api.inspect(DEMO).model_dump_json(by_alias=True))
    doc["read"]["records"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema("inspect.schema.json"))
