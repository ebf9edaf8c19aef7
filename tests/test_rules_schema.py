"""rules/schema.json: generated from the fact models, so an editor flags in `when` what the loader refuses."""

from __future__ import annotations

import copy
import json
import types
import typing
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import yaml

from diag.engine import load_rule
from diag.engine.schema import render
from diag.facts.models import FACT_MODELS, scalar_fields

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "rules" / "schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
RULE_FILES = sorted(p for d in ("rules", "tests/rules/authoring", "tests/rules/shapes") for p in (ROOT / d).glob("*.yaml")
                    if not p.name.endswith(".cases.yaml"))


def test_the_published_schema_is_the_generated_one():
    assert (ROOT / "rules" / "schema.json").read_text(encoding="utf-8") == render(), \
        "regenerate: python -m diag.engine.schema > rules/schema.json"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_rule_that_loads_is_valid(path):
    load_rule(path)
    errors = [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))]
    assert errors == []


def _testable(annotation) -> bool:
    """A single type once None is taken out (what a rule can compare), written out independently."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] \
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) else [annotation]
    return len(args) == 1 and (args[0] in (int, float, bool, str, datetime) or typing.get_origin(args[0]) is typing.Literal)


def test_every_kind_lists_the_fields_of_its_model():
    for kind, model in FACT_MODELS.items():
        listed = {f for f in SCHEMA["$defs"][f"fact_{kind}"]["properties"] if not f.startswith("$")} - {"kind"}
        fields = {n for n in scalar_fields(model) if n != "kind" and _testable(model.model_fields[n].annotation)}
        assert listed == fields, kind


def _vlan_rule() -> dict:
    return yaml.safe_load((ROOT / "rules" / "vlan-drops.yaml").read_text(encoding="utf-8"))


def _pattern(rule: dict) -> dict:
    return rule["when"]["all"][0]["d"]


@pytest.mark.parametrize("change", [
    lambda p: p.update(cuont=3),                               # a typo of a field
    lambda p: p.update(kind="pktmon_dorp"),                    # a typo of a kind
    lambda p: p.update({"$gtt": {"count": 1}}),                # an unknown operator
    lambda p: p.update({"$gt": {"cuont": 1}}),                 # a typo inside an operator
    lambda p: p.update(direction="ingoing"),                   # a word direction never holds
    lambda p: p["$or"].append({"reason_cod": 3}),              # a typo inside $or
    lambda p: p.update(count="many"),                          # text for a number
])
def test_a_typo_inside_when_is_flagged_by_the_schema_and_the_loader(tmp_path, change):
    rule = _vlan_rule()
    change(_pattern(rule))
    assert list(VALIDATOR.iter_errors(rule)), "the schema let it through"
    path = tmp_path / "vlan-drops.yaml"
    path.write_text(yaml.safe_dump(rule), encoding="utf-8")
    with pytest.raises(Exception):
        load_rule(path)


def test_an_aggregate_block_is_checked_per_kind():
    rule = _vlan_rule()
    good = {"aggregate": {"kind": "pktmon_drop", "group_by": ["component_id"], "sum": "count", "window": "5m"},
            "$gt": {"value": 100}}
    rule["when"]["all"][0] = {"g": good}
    assert list(VALIDATOR.iter_errors(rule)) == []
    for key, value in (("sum", "reason_name"), ("group_by", ["cuont"]), ("window", "soon"), ("having", 3)):
        bad = copy.deepcopy(rule)
        bad["when"]["all"][0]["g"]["aggregate"][key] = value
        assert list(VALIDATOR.iter_errors(bad)), key
