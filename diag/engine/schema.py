"""The JSON Schema of rule files: ``python -m diag.engine.schema > rules/schema.json``.

Editors with a YAML language server use it for completion and checks as one types
(``# yaml-language-server: $schema=schema.json`` at the top of a rule file). It is generated from
the same models the loader checks against: the metadata from ``RuleFile``, and for ``when`` every
fact kind with its fields, their types and words (``diag.engine.vocabulary``), the tests and the
aggregate block. The loader stays the authority (it also checks what a schema cannot say: that a
reference names an earlier alias, regular expressions, the engine's limits).
"""

from __future__ import annotations

import json
from typing import Any

from diag.engine import aggregate
from diag.engine.conditions import ARITHMETIC, COMPARISONS, EXISTENCE, REGEX, field_types
from diag.engine.rules import RuleFile
from diag.engine.vocabulary import vocabulary
from diag.facts.models import FACT_MODELS

ALIAS = "^[A-Za-z][A-Za-z0-9_]*$"
PATTERN_KEY = r"^[A-Za-z][A-Za-z0-9_]*(\$not)?$"


def rule_schema() -> dict[str, Any]:
    schema = RuleFile.model_json_schema()
    defs = schema.setdefault("$defs", {})
    schema["properties"]["when"] = {
        "description": "Patterns over facts, all of which must hold (see rules/README.md).",
        "type": "object",
        "properties": {"all": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/pattern"}}},
        "required": ["all"],
        "additionalProperties": False,
    }
    defs["pattern"] = {
        "description": "alias: tests on one fact (alias$not: no fact such that)",
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "patternProperties": {PATTERN_KEY: {"$ref": "#/$defs/pattern_body"}},
        "additionalProperties": False,
    }
    kinds = sorted(FACT_MODELS)
    defs["pattern_body"] = {
        "type": "object",
        "properties": {"kind": {"enum": kinds}},
        "anyOf": [{"required": ["kind"]}, {"required": ["aggregate"]}],
        "allOf": [{"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                   "then": {"$ref": f"#/$defs/fact_{kind}"}} for kind in kinds]
        + [{"if": {"required": ["aggregate"]}, "then": {"$ref": "#/$defs/aggregate_pattern"}}],
    }
    defs["reference"] = {
        "description": "{alias: field}: a field of this pattern's fact or of an earlier pattern's",
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "patternProperties": {ALIAS: {"type": "string"}}, "additionalProperties": False,
    }
    operand = {"anyOf": [{"type": "number"}, {"$ref": "#/$defs/reference"}, {"$ref": "#/$defs/arithmetic"}]}
    defs["arithmetic"] = {
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "properties": {op: {"type": "object", "properties": {"$l": operand, "$r": operand},
                            "required": ["$l", "$r"], "additionalProperties": False} for op in ARITHMETIC},
        "additionalProperties": False,
    }
    defs["number_value"] = operand
    defs["bool_value"] = {"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/reference"}]}
    defs["str_value"] = {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/reference"}]}
    for kind in kinds:
        defs[f"fact_{kind}"] = _tests(kind, field_types(kind), True, defs)
        defs[f"tests_{kind}"] = _tests(kind, field_types(kind), False, defs)
    defs["aggregate"] = _aggregate(kinds)
    defs["aggregate_pattern"] = {
        "type": "object",
        "properties": {"aggregate": {"$ref": "#/$defs/aggregate"}},
        "required": ["aggregate"],
        "not": {"required": ["kind"]},
    }
    return schema


def _value(kind: str, name: str, category: str, defs: dict[str, Any]) -> dict[str, Any]:
    """A reference to the schema of one field's values (shared by every kind with the same words)."""
    words = vocabulary(kind, name) if category == "str" else None
    if words is None:
        return {"$ref": f"#/$defs/{category}_value"}
    spellings = sorted({*words.words, *words.synonyms, *(s.capitalize() for s in words.synonyms),
                        *(s.upper() for s in words.synonyms), *words.stored})
    key = f"words_{name}_{'_'.join(sorted(words.words))}"[:80] if name != "direction" else \
        f"words_direction_{'pktmon' if 'Rx' in words.stored else 'plain'}"
    defs.setdefault(key, {"anyOf": [{"enum": spellings}, {"$ref": "#/$defs/reference"}],
                          "description": f"one of {words.describe()} (any case)"})
    return {"$ref": f"#/$defs/{key}"}


def _tests(kind: str, fields: dict[str, Any], top: bool, defs: dict[str, Any]) -> dict[str, Any]:
    names = [n for n in fields if n != "kind"]
    values = {n: _value(kind, n, fields[n].category, defs) for n in names}
    if f"compare_{kind}" not in defs:  # one definition per kind, shared by its operators
        defs[f"compare_{kind}"] = {"type": "object", "minProperties": 1, "properties": values,
                                   "additionalProperties": False}
        defs[f"present_{kind}"] = {"type": "object", "minProperties": 1, "additionalProperties": False,
                                   "properties": {n: {"enum": [1, True]} for n in names}}
        defs[f"regex_{kind}"] = {"type": "object", "minProperties": 1, "additionalProperties": False,
                                 "properties": {n: {"type": "string"} for n in names if fields[n].category == "str"}}
    properties: dict[str, Any] = dict(values)
    properties.update({op: {"$ref": f"#/$defs/compare_{kind}"} for op in COMPARISONS})
    properties.update({op: {"$ref": f"#/$defs/present_{kind}"} for op in EXISTENCE})
    properties.update({op: {"$ref": f"#/$defs/regex_{kind}"} for op in REGEX})
    for op in ("$or", "$and"):
        properties[op] = {"type": "array", "minItems": 1, "items": {"$ref": f"#/$defs/tests_{kind}"}}
    if top:
        properties = {"kind": {"const": kind}, **properties}
    return {"type": "object", "minProperties": 1, "properties": properties, "additionalProperties": False}


def _aggregate(kinds: list[str]) -> dict[str, Any]:
    branches = []
    for kind in kinds:
        fields = {n: t for n, t in field_types(kind).items() if n != "kind"}
        numbers = [n for n, t in fields.items() if t.category == "number"]
        model = FACT_MODELS[kind].model_fields
        times = [n for n in fields if "datetime" in str(model[n].annotation)]
        branches.append({"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]}, "then": {
            "properties": {
                "where": {"$ref": f"#/$defs/tests_{kind}"},
                "group_by": {"anyOf": [{"enum": list(fields)},
                                       {"type": "array", "items": {"enum": [n for n in fields
                                                                            if n not in aggregate.RESULT_FIELDS]}}]},
                "sum": {"enum": numbers},
                "count_distinct": {"enum": list(fields)},
                "time": {"enum": times},
            }}})
    return {
        "description": "facts of one kind grouped, counted or summed, optionally in a window (see rules/README.md)",
        "type": "object",
        "properties": {
            "kind": {"enum": kinds},
            "where": {"type": "object"},
            "group_by": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                        "maxItems": aggregate.MAX_GROUP_FIELDS}]},
            "count": {"enum": ["facts"]},
            "sum": {"type": "string"},
            "count_distinct": {"type": "string"},
            "window": {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                                 {"type": "string", "pattern": r"^\d+(\.\d+)?\s*(ms|s|m|h|d)$"}]},
            "time": {"type": "string"},
        },
        "required": ["kind"],
        "oneOf": [{"required": [f]} for f in aggregate.FUNCTIONS],
        "additionalProperties": False,
        "allOf": branches,
    }


def render() -> str:
    return json.dumps(rule_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
