"""Rule files: what is refused (with file and line), what is rewritten, Python rules, templates."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from rule_helpers import WHEN_LINE, write_rule

from diag.engine import load_rule, load_rules, rule_problems
from diag.engine.cases import load_cases, run_cases
from diag.engine.lint import lint
from diag.engine.rules import RuleFile
from diag.engine.scaffold import new_rule
from diag.engine.source import RuleFileError, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
P = WHEN_LINE + 2  # the line of the first pattern in a rule written by write_rule

# rule id -> (when block, line of the problem, part of the message)
REFUSED = {
    "joins-on-id": ("all:\n  - a: {kind: pktmon_drop}\n  - b: {kind: pktmon_drop, component_id: {a: id}}\n",
                    P + 1, "'id' cannot be tested"),
    "tests-sid": ("all:\n  - a: {kind: pktmon_drop, sid: '1'}\n", P, "'sid' cannot be tested"),
    "uses-any": ("any:\n  - a: {kind: pktmon_drop}\n", P - 1, "'any' is not available"),
    "uses-count": ("all:\n  - a: {kind: pktmon_drop}\ncount: 3\n", P + 1, "'count' is not available"),
    "seventeen": ("all:\n" + "".join(f"  - a{i}: {{kind: pktmon_drop}}\n" for i in range(17)),
                  WHEN_LINE, "has 17 patterns"),
    "gate-makes-seventeen": ("all:\n" + "".join(f"  - a{i}: {{kind: pktmon_drop}}\n" for i in range(15))
                             + "  - q$not: {kind: trace_quality}\n", WHEN_LINE, "has 17 patterns"),
    "or-makes-seventeen": ("all:\n" + "".join(f"  - a{i}: {{kind: pktmon_drop}}\n" for i in range(13))
                           + "  - q$not: {kind: trace_quality, $or: [{truncated: true}, {events_lost: 1}]}\n"
                           + "  - r$not: {kind: trace_quality, buffers_lost: 2}\n",
                           WHEN_LINE, "has 17 patterns"),
    "too-many-joins": ("all:\n  - a: {kind: pktmon_drop}\n  - b:\n      kind: pktmon_drop\n      $and:\n"
                     + "".join(f"        - $neq: {{count: {{$add: {{$l: {{a: count}}, $r: {i}}}}}}}\n" for i in range(29)),
                     P + 32, "29 tests compare with other facts in one pattern; at most 28 are allowed"),
    "alternatives-explode": ("all:\n  - a: {kind: pktmon_drop, $or: [" + ", ".join(f"{{count: {i}}}" for i in range(9))
                             + "]}\n  - b: {kind: pktmon_drop, $or: [" + ", ".join(f"{{count: {i}}}" for i in range(8))
                             + "]}\n", WHEN_LINE, "72 combinations"),
    "unknown-kind": ("all:\n  - a: {kind: pktmon_dorp}\n", P, "unknown fact kind 'pktmon_dorp'"),
    "no-kind": ("all:\n  - a: {$gt: {count: 1}}\n", P, "exactly one fact kind"),
    "kind-in-or": ("all:\n  - a: {kind: pktmon_drop, $or: [{kind: trace_quality}, {count: 1}]}\n", P, "top of the pattern"),
    "unknown-field": ("all:\n  - a: {kind: pktmon_drop, $gt: {cuont: 1}}\n", P, "no field 'cuont'"),
    "text-vs-number": ("all:\n  - a: {kind: pktmon_drop, count: 'many'}\n", P, "holds a number, compared here with text"),
    "null-value": ("all:\n  - a: {kind: pktmon_drop, first_seen: null}\n", P, "$nex"),
    "optional-join": ("all:\n  - a: {kind: pktmon_drop}\n  - b: {kind: pktmon_drop, $lt: {first_seen: {a: last_seen}}}\n",
                      P + 1, "may be empty"),
    "forward-ref": ("all:\n  - a: {kind: pktmon_drop, count: {b: count}}\n  - b: {kind: pktmon_drop}\n", P,
                    "nor that of an earlier pattern"),
    "negated-ref": (("all:\n  - a: {kind: pktmon_drop}\n  - n$not: {kind: pktmon_drop}\n"
                     "  - b: {kind: pktmon_drop, count: {n: count}}\n"), P + 2, "nor that of an earlier"),
    "only-negated": ("all:\n  - n$not: {kind: pktmon_drop}\n", P - 1, "must not be negated"),
    "regex-escape": ("all:\n  - a: {kind: pktmon_drop, $mt: {component_name: 'a\\.b'}}\n", P, "backslash"),
    "regex-anchor": ("all:\n  - a: {kind: pktmon_drop, $mt: {component_name: '^ab'}}\n", P, "anchors"),
    "regex-choice-in-open-repeats": ("all:\n  - a: {kind: pktmon_drop, $imt: {component_name: '.*(vfp|lbfo).*'}}\n", P,
                                     "choice"),
    "regex-class-in-open-repeats": ("all:\n  - a: {kind: pktmon_drop, $mt: {component_name: '.*[lv]bf.*'}}\n", P,
                                    "choice"),
    "regex-on-number": ("all:\n  - a: {kind: pktmon_drop, $mt: {count: '1+'}}\n", P, "not text"),
    "divide": ("all:\n  - a: {kind: pktmon_drop}\n  - b: {kind: pktmon_drop, count: {$div: {$l: {a: count}, $r: 2}}}\n",
               P + 1, "division would round"),
    "bad-operator": ("all:\n  - a: {kind: pktmon_drop, $iall: {sample: 1}}\n", P, "list fields"),
    "alias-twice": ("all:\n  - a: {kind: pktmon_drop}\n  - a: {kind: trace_quality}\n", P + 1, "used twice"),
    "duplicate-key": ("all:\n  - a: {kind: pktmon_drop, count: 1, count: 2}\n", P, "duplicate key 'count'"),
}


@pytest.mark.parametrize("rule_id", sorted(REFUSED))
def test_refused_constructs_name_file_and_line(tmp_path, rule_id):
    when, line, message = REFUSED[rule_id]
    path = write_rule(tmp_path, rule_id, when)
    rules, errors = load_rules([tmp_path])
    assert rules == []
    (error,) = errors
    assert error.rule_id == rule_id
    assert error.file == f"{path}:{line}", error.message
    assert message in error.message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id: x\ntitle: a\ntitle: b\n", 3, "duplicate key 'title'"),
        ("id: x\nwhen: {all: [\n", 3, "not valid YAML"),
        ("base: &b {a: 1}\nother:\n  <<: *b\n", 3, "merge keys"),
    ],
)
def test_yaml_problems_have_lines(text, line, message):
    with pytest.raises(RuleFileError) as caught:
        parse_yaml(text)
    assert caught.value.line == line and message in str(caught.value)


def test_metadata_problems_point_at_their_key(tmp_path):
    path = write_rule(tmp_path, "meta", "all:\n  - a: {kind: pktmon_drop}\n")
    path.write_text(path.read_text().replace("severity: low", "severity: urgent").replace("impact: None.\n", ""))
    (error,) = load_rules([tmp_path])[1]
    assert error.file == f"{path}:3" and error.message.startswith("severity:")
    problems = {str(p) for p in rule_problems(path)}
    assert any("impact: required" in p for p in problems) and any(p.startswith("line 3: severity") for p in problems)


def test_summary_and_evidence_are_checked_on_load(tmp_path):
    write_rule(tmp_path, "bad-summary", "all:\n  - d: {kind: pktmon_drop}\n", summary="{d[cuont]} drops")
    write_rule(tmp_path, "attr-summary", "all:\n  - d: {kind: pktmon_drop}\n", summary="{d.__class__}")
    messages = {e.rule_id: e.message for e in load_rules([tmp_path])[1]}
    assert "no field 'cuont'" in messages["bad-summary"]
    assert "attribute access" in messages["attr-summary"]


# --------------------------------------------------------------------------------------------
# what the engine receives


def test_nested_or_in_a_join_becomes_separate_rules(tmp_path):
    write_rule(tmp_path, "nested", "all:\n  - a: {kind: pktmon_drop}\n  - b:\n      kind: pktmon_drop\n"
               "      $or: [{component_id: {a: component_id}, direction: {a: direction}}, {count: {a: count}}]\n")
    rule = load_rule(tmp_path / "nested.yaml")
    assert [r.name for r in rule.engine_rules] == ["nested#0", "nested#1"]
    texts = json.dumps([r.all for r in rule.engine_rules])
    assert "$or" not in texts
    anchor = {"_one": {"a": "_one"}}  # always true, last: the core never fails an AND on its last term
    assert rule.engine_rules[0].all[1] == {"b": {"$and": [{"kind": "pktmon_drop"}, {"component_id": {"a": "component_id"}},
                                                          {"direction": {"a": "direction"}}, anchor]}}
    assert rule.engine_rules[1].all[1] == {"b": {"$and": [{"kind": "pktmon_drop"}, {"count": {"a": "count"}}, anchor]}}


def test_negation_gets_the_gate_first_and_goes_last(tmp_path):
    write_rule(tmp_path, "neg", "all:\n  - q$not: {kind: trace_quality, $or: [{truncated: true}, {events_lost: 1}]}\n"
               "  - a: {kind: pktmon_drop}\n")
    (engine_rule,) = load_rule(tmp_path / "neg.yaml").engine_rules
    assert engine_rule.all == [
        {"_gate": {"kind": "gate"}},
        {"a": {"kind": "pktmon_drop"}},
        {"_not0$not": {"$and": [{"kind": "trace_quality"}, {"truncated": True}]}},
        {"_not1$not": {"$and": [{"kind": "trace_quality"}, {"events_lost": 1}]}},
    ]


def test_several_tests_in_one_mapping_all_reach_the_engine(tmp_path):
    # durable_rules itself evaluates only the first key of {kind: …, $gt: …}
    write_rule(tmp_path, "several", "all:\n  - d: {kind: pktmon_drop, $gt: {count: 5}, reason_code: 16}\n")
    (engine_rule,) = load_rule(tmp_path / "several.yaml").engine_rules
    assert engine_rule.all == [{"d": {"$and": [{"kind": "pktmon_drop"}, {"$gt": {"count": 5}}, {"reason_code": 16}]}}]


# --------------------------------------------------------------------------------------------
# Python rules


def test_a_python_rule_compiles_like_yaml():
    rule = load_rule(ROOT / "tests" / "rules" / "shapes" / "arithmetic.py")
    assert rule.language == "python" and rule.has_action
    assert rule.aliases == ["a", "b"]
    assert rule.engine_rules[0].all[2]["b"]["$and"][2:] == [
        {"$gte": {"count": {"$sub": {"$l": {"$mul": {"$l": {"a": "count"}, "$r": 2}}, "$r": 1}}}},
        {"_one": {"a": "_one"}}]


def py_meta(rule_id: str, severity: str = "low") -> str:
    """A META literal over lines 2-11 of the file, one key a line (severity on line 5)."""
    return (f"META = {{\n    'id': '{rule_id}',\n    'title': 't',\n    'severity': '{severity}',\n"
            "    'confidence': 'low',\n    'description': 'd',\n    'impact': 'i',\n    'remediation': 'r',\n"
            "    'finding': {'summary': '{matches}'},\n}\n")


DSL = "from durable.lang import c, m, when_all\n"
PY_BAD = {
    "import-fails": ("import no_such_module_x\nMETA = {}\n", 1, "cannot be imported: ModuleNotFoundError"),
    "raises": ("META = {}\n\n1 / 0\n", 3, "ZeroDivisionError"),
    "no-when": (DSL + py_meta("no-when"), 1, "WHEN"),
    "bad-meta": (DSL + py_meta("bad-meta", "loud") + "WHEN = when_all(m.kind == 'pktmon_drop')\n", 5, "severity"),
    "id-join": (DSL + py_meta("id-join") + "WHEN = when_all(c.a << (m.kind == 'pktmon_drop'),\n"
                "                c.b << (m.kind == 'pktmon_drop') & (m.count == c.a.id))\n", 12, "'id' cannot be tested"),
}


@pytest.mark.parametrize("rule_id", sorted(PY_BAD))
def test_python_rule_problems_name_file_and_line(tmp_path, rule_id):
    text, line, message = PY_BAD[rule_id]
    path = tmp_path / f"{rule_id}.py"
    path.write_text(text, encoding="utf-8")
    (error,) = load_rules([tmp_path])[1]
    assert error.file == f"{path}:{line}", error.message
    assert message in error.message


def test_helper_modules_are_not_rules(tmp_path):
    (tmp_path / "_helpers.py").write_text("raise RuntimeError('not a rule')\n", encoding="utf-8")
    assert load_rules([tmp_path]) == ([], [])


# --------------------------------------------------------------------------------------------
# the schema, the templates, lint


def test_the_published_schema_matches_the_model():
    # the metadata is the model's; `when` is generated from the fact models (tests/test_rules_schema.py)
    published = json.loads((ROOT / "rules" / "schema.json").read_text(encoding="utf-8"))
    model = RuleFile.model_json_schema()
    assert {k: v for k, v in published["properties"].items() if k != "when"} == \
        {k: v for k, v in model["properties"].items() if k != "when"}
    assert all(published["$defs"][name] == definition for name, definition in model.get("$defs", {}).items())
    assert published["required"] == model["required"]


@pytest.mark.parametrize("python", [False, True])
def test_new_rule_templates_load_and_their_cases_pass(tmp_path, python):
    rule_path, cases_path = new_rule("my-rule", tmp_path, python=python)
    rule = load_rule(rule_path)
    cases = load_cases(cases_path, rule.id)
    assert {c.expect for c in cases} == {"match", "no_match"}
    assert all(r.passed for r in run_cases([rule], cases)), [r.problems for r in run_cases([rule], cases)]
    assert lint([tmp_path]) == []


def test_lint_reports_every_problem_with_its_line(tmp_path):
    write_rule(tmp_path, "no-cases", "all:\n  - a: {kind: pktmon_drop}\n")
    bad = write_rule(tmp_path, "bad", "all:\n  - a: {kind: pktmon_drop, $gt: {cuont: 1}}\n")
    (tmp_path / "orphan.cases.yaml").write_text("rule: orphan\n", encoding="utf-8")
    cases = tmp_path / "bad-cases.cases.yaml"
    write_rule(tmp_path, "bad-cases", "all:\n  - a: {kind: pktmon_drop}\n")
    cases.write_text(textwrap.dedent("""\
        rule: bad-cases
        match:
          - name: a fact with a wrong field
            facts:
              - {kind: pktmon_drop, component_id: x}
        """), encoding="utf-8")
    issues = [str(i) for i in lint([tmp_path])]
    assert any(i.startswith(f"{bad}:{P}: error: when.all[0].a.$gt.cuont: fact kind 'pktmon_drop' has no field 'cuont'")
               for i in issues), issues
    assert any(i.startswith(f"{cases}:5: error:") and "not a valid pktmon_drop fact" in i for i in issues)
    assert any("no-cases.yaml: error: no test cases" in i for i in issues)
    assert any("orphan.cases.yaml: warning" in i for i in issues)
