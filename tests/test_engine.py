"""The rules engine, end to end through the real durable_rules core in its worker process."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from diag.engine import IdAllocator, fnv1a32, load_rules, run_rules
from diag.engine.runner import _run_worker
from diag.errors import AnalysisFailed
from diag.facts import FACT_MODELS, PacketDropGroup, TraceQuality

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
CASE_FILES = sorted(RULES_DIR.glob("*.cases.yaml"))


def drop(component_id: int = 1, reason_code: int = 16, count: int = 1, direction: str = "In", **kw) -> PacketDropGroup:
    return PacketDropGroup(
        component_id=component_id,
        component_name=kw.pop("component_name", f"component {component_id}"),
        component_type=kw.pop("component_type", "VmsVmNic"),
        direction=direction,
        reason_code=reason_code,
        reason_name=kw.pop("reason_name", f"reason {reason_code}"),
        count=count,
        **kw,
    )


def write_rule(directory: Path, rule_id: str, when: str, *, summary: str = "{matches} match(es)", extra: str = "") -> Path:
    """A minimal valid rule file with the given ``when`` block (YAML text, indented under `when:`)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rule_id}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            id: {rule_id}
            title: Test rule {rule_id}
            severity: low
            confidence: medium
            description: A rule written by the tests.
            remediation: None needed.
            finding:
              summary: "{summary}"
            {extra}
            when:
            """
        )
        + textwrap.indent(textwrap.dedent(when), "  "),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def with_shipped(tmp_path: Path) -> Path:
    """A rules directory holding a copy of the shipped packets-dropped rule."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES_DIR / "packets-dropped.yaml", rules / "packets-dropped.yaml")
    return rules


def finding_for(result, rule_id):
    found = [f for f in result.findings if f.rule_id == rule_id]
    assert len(found) <= 1
    return found[0] if found else None


# --------------------------------------------------------------------------------------------
# ids


def test_fnv1a32_matches_the_published_test_vectors():
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


def test_allocator_never_hands_out_colliding_keys():
    # "costarring" and "liquid" have the same 32-bit FNV-1a hash, the only identity the engine checks.
    assert fnv1a32("costarring") == fnv1a32("liquid")
    ids = IdAllocator("7")
    first = ids.allocate("costarring")
    second = ids.allocate("liquid")
    assert first == "costarring"
    assert second != "liquid"
    assert fnv1a32(second) != fnv1a32(first)
    # the engine's own keys in the session are taken from the start
    assert ids.allocate("sid-7") != "sid-7"
    assert ids.allocate("$pulse") != "$pulse"


def test_a_colliding_id_is_an_engine_error_not_a_silent_miss(with_shipped):
    # Bypass the allocator: two facts whose ids collide. The engine refuses the second one as
    # "already observed"; the worker must report that rather than drop the fact quietly.
    rules, errors = load_rules([with_shipped])
    assert not errors
    rule = rules[0]
    base = {"kind": "pktmon_drop", "component_id": 1, "component_name": "a", "component_type": "t",
            "direction": "In", "reason_code": 1, "reason_name": "r", "sid": "1"}
    payload = {
        "ruleset": "t",
        "sid": "1",
        "rules": [{"id": rule.id, "all": rule.durable_patterns(), "aliases": rule.aliases, "hook": None}],
        "facts": [dict(base, id="costarring", count=1), dict(base, id="liquid", count=2)],
        "gate": {"kind": "gate", "id": "gate", "sid": "1"},
    }
    raw = _run_worker(payload, timeout=60)
    assert raw["asserted"] == 1
    assert len(raw["matches"]) == 1
    assert len(raw["engine_errors"]) == 1 and "liquid" in raw["engine_errors"][0]


# --------------------------------------------------------------------------------------------
# every rule's own cases, through the real engine


def _cases():
    for path in CASE_FILES:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for expectation in ("match", "no_match"):
            for case in doc.get(expectation) or []:
                yield pytest.param(doc["rule"], expectation, case, id=f"{doc['rule']}:{expectation}:{case['name']}")


def test_every_rule_has_cases():
    rules, errors = load_rules([RULES_DIR])
    assert not errors
    assert rules, "no rules shipped"
    for rule in rules:
        cases = RULES_DIR / f"{rule.id}.cases.yaml"
        assert cases.is_file(), f"{rule.id} has no cases file"
        doc = yaml.safe_load(cases.read_text(encoding="utf-8"))
        assert doc["rule"] == rule.id
        assert doc.get("match"), f"{rule.id}: no positive case"
        assert doc.get("no_match"), f"{rule.id}: no negative case"


@pytest.mark.parametrize(("rule_id", "expectation", "case"), list(_cases()))
def test_rule_cases(rule_id, expectation, case):
    facts = [FACT_MODELS[f["kind"]].model_validate(f) for f in case["facts"]]
    result = run_rules(facts, [RULES_DIR])
    assert result.complete, (result.rule_errors, result.engine_errors)
    assert rule_id in result.rules_run
    finding = finding_for(result, rule_id)
    if expectation == "match":
        assert finding is not None, f"{rule_id} did not fire"
        if "evidence_rows" in case:
            assert len(finding.evidence) == case["evidence_rows"]
    else:
        assert finding is None, f"{rule_id} fired: {finding.summary}"


# --------------------------------------------------------------------------------------------
# the shipped rule, in detail


def test_packets_dropped_evidence_lists_groups_largest_first():
    facts = [
        drop(component_id=3, reason_code=16, count=7, direction="In", component_name="port A",
             reason_name="Spoofed MAC address is not allowed"),
        TraceQuality(events_lost=1),
        drop(component_id=9, reason_code=402, count=40, direction="Tx", component_name="netvsc",
             reason_name="VF not ready"),
        drop(component_id=3, reason_code=16, count=2, direction="Out", component_name="port A",
             reason_name="Spoofed MAC address is not allowed"),
    ]
    result = run_rules(facts)
    assert result.rules_loaded == ["packets-dropped"]
    assert result.facts_asserted == 4
    assert result.facts_unmatched == 1  # the trace-quality fact
    finding = finding_for(result, "packets-dropped")
    assert finding.severity == "medium"
    assert [(r["component_id"], r["reason_code"], r["direction"], r["count"]) for r in finding.evidence] == [
        (9, 402, "Tx", 40),
        (3, 16, "In", 7),
        (3, 16, "Out", 2),
    ]
    assert finding.evidence[0]["reason_name"] == "VF not ready"
    assert "49 packet(s)" in finding.summary  # 7 + 40 + 2
    assert "3 component/reason/direction group(s)" in finding.summary
    assert "netvsc" in finding.summary
    assert "pktmon counters --drop-reason" in finding.remediation
    assert len(finding.fact_ids) == 3


def test_2000_matches_are_all_recorded():
    n = 2000
    facts = [drop(component_id=i % 50, reason_code=i, count=i % 7 + 1) for i in range(n)]
    result = run_rules(facts)
    assert result.complete
    assert result.facts_asserted == n
    assert result.facts_unmatched == 0
    assert result.matches["packets-dropped"] == n
    finding = finding_for(result, "packets-dropped")
    assert len(finding.evidence) == n
    assert len(set(finding.fact_ids)) == n
    assert {r["reason_code"] for r in finding.evidence} == set(range(n))
    assert f"{sum(i % 7 + 1 for i in range(n))} packet(s)" in finding.summary


# --------------------------------------------------------------------------------------------
# failures are reported, never swallowed


HOOKS = """\
import os
import signal
import time


def explode_on_13(facts):
    if facts["d"]["count"] == 13:
        raise ValueError("kaboom on 13")
    return {"checked": True}


def exit_139(facts):
    os._exit(139)


def segfault(facts):
    os.kill(os.getpid(), signal.SIGSEGV)


def sleep_long(facts):
    time.sleep(60)
"""


def _hook_rule(directory: Path, rule_id: str, function: str) -> None:
    (directory / "hooks.py").write_text(HOOKS, encoding="utf-8")
    write_rule(directory, rule_id, "all:\n  - d: {kind: pktmon_drop}\n", extra=f"action: hooks:{function}")


def test_an_action_that_raises_is_a_rule_error_and_other_rules_still_fire(with_shipped):
    _hook_rule(with_shipped, "fragile", "explode_on_13")
    write_rule(with_shipped, "lossy-trace", "all:\n  - q: {kind: trace_quality, $gt: {events_lost: 0}}\n")
    facts = [drop(count=5), drop(component_id=2, count=13), TraceQuality(events_lost=4)]
    result = run_rules(facts, [with_shipped])

    assert not result.complete
    (error,) = result.rule_errors
    assert error.rule_id == "fragile"
    assert error.file.endswith("fragile.yaml")
    assert "kaboom on 13" in error.message
    assert "fragile" not in result.rules_run
    assert set(result.rules_run) == {"packets-dropped", "lossy-trace"}
    # the other rules fired in full
    assert len(finding_for(result, "packets-dropped").evidence) == 2
    assert finding_for(result, "lossy-trace") is not None
    # the match whose action completed is kept, with what the action returned
    fragile = finding_for(result, "fragile")
    assert [(r["count"], r["checked"]) for r in fragile.evidence] == [(5, True)]


@pytest.mark.parametrize(("function", "expected"), [("exit_139", "exited with code 139"), ("segfault", "SIGSEGV")])
def test_a_crashing_worker_is_analysis_failed(with_shipped, function, expected):
    _hook_rule(with_shipped, "crasher", function)
    with pytest.raises(AnalysisFailed, match=expected):
        run_rules([drop(count=3)], [with_shipped])


def test_a_hung_worker_is_stopped_and_analysis_failed(with_shipped):
    _hook_rule(with_shipped, "sleeper", "sleep_long")
    with pytest.raises(AnalysisFailed, match="did not finish within"):
        run_rules([drop(count=3)], [with_shipped], timeout=3)


def test_an_action_that_cannot_be_imported_is_a_rule_error(with_shipped):
    write_rule(with_shipped, "no-module", "all:\n  - d: {kind: pktmon_drop}\n", extra="action: no_such_module_x:f")
    result = run_rules([drop(count=3)], [with_shipped])
    (error,) = result.rule_errors
    assert error.rule_id == "no-module" and "cannot be loaded" in error.message
    assert result.rules_run == ["packets-dropped"]
    assert finding_for(result, "packets-dropped") is not None


def test_no_rules_is_not_a_clean_result(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_rules([drop()], [empty])
    assert result.findings == []
    assert not result.complete
    assert result.engine_errors


# --------------------------------------------------------------------------------------------
# rule validation


BAD_RULES = {
    "joins-on-id": ("all:\n  - a: {kind: pktmon_drop}\n  - b: {kind: pktmon_drop, component_id: {a: id}}\n", "'id'"),
    "tests-sid": ("all:\n  - a: {kind: pktmon_drop, sid: '1'}\n", "'sid'"),
    "uses-any": ("any:\n  - a: {kind: pktmon_drop}\n", "'any'"),
    "uses-count": ("all:\n  - a: {kind: pktmon_drop}\ncount: 3\n", "count"),
    "too-many": ("all:\n" + "".join(f"  - a{i}: {{kind: pktmon_drop}}\n" for i in range(17)), "at most 16"),
    "unknown-kind": ("all:\n  - a: {kind: pktmon_dorp}\n", "unknown fact kind"),
    "no-kind": ("all:\n  - a: {$gt: {count: 1}}\n", "select a fact kind"),
    "unknown-field": ("all:\n  - a: {kind: pktmon_drop, $gt: {cuont: 1}}\n", "no field 'cuont'"),
    "nested-or-join": (
        "all:\n  - a: {kind: pktmon_drop}\n"
        "  - b: {kind: pktmon_drop, $or: [{component_id: {a: component_id}}, {reason_code: 1}]}\n",
        "no $or",
    ),
    "ungated-not": ("all:\n  - a: {kind: pktmon_drop}\n  - q$not: {kind: trace_quality}\n", "gate"),
    "bad-operator": ("all:\n  - a: {kind: pktmon_drop, $iall: {sample: 1}}\n", "not supported"),
}


@pytest.mark.parametrize("rule_id", sorted(BAD_RULES))
def test_invalid_rules_are_rejected_naming_the_file(tmp_path, rule_id):
    when, message = BAD_RULES[rule_id]
    path = write_rule(tmp_path, rule_id, when)
    rules, errors = load_rules([tmp_path])
    assert rules == []
    (error,) = errors
    assert error.file == str(path)
    assert error.rule_id == rule_id
    assert message in error.message


def test_bad_rule_files_do_not_stop_the_good_one(with_shipped):
    (with_shipped / "broken-yaml.yaml").write_text("id: broken-yaml\nwhen: {all: [\n", encoding="utf-8")
    write_rule(with_shipped, "joins-on-id", BAD_RULES["joins-on-id"][0])
    (with_shipped / "wrong-stem.yaml").write_text(
        (with_shipped / "packets-dropped.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    result = run_rules([drop(count=4)], [with_shipped])
    by_file = {Path(e.file).name: e.message for e in result.rule_errors}
    assert set(by_file) == {"broken-yaml.yaml", "joins-on-id.yaml", "wrong-stem.yaml"}
    assert "not valid YAML" in by_file["broken-yaml.yaml"]
    assert "file name stem" in by_file["wrong-stem.yaml"]
    assert result.rules_loaded == ["packets-dropped"]
    assert result.rules_run == ["packets-dropped"]
    assert finding_for(result, "packets-dropped") is not None


def test_summary_template_is_checked_on_load(tmp_path):
    write_rule(tmp_path, "bad-summary", "all:\n  - d: {kind: pktmon_drop}\n", summary="{d[cuont]} drops")
    write_rule(tmp_path, "attr-summary", "all:\n  - d: {kind: pktmon_drop}\n", summary="{d.__class__}")
    _, errors = load_rules([tmp_path])
    messages = {e.rule_id: e.message for e in errors}
    assert "no field 'cuont'" in messages["bad-summary"]
    assert "attribute access" in messages["attr-summary"]


# --------------------------------------------------------------------------------------------
# engine semantics the adapter has to get right


def test_several_tests_in_one_mapping_all_apply(tmp_path):
    # durable_rules itself would only evaluate the first key of {kind: …, $gt: …}
    write_rule(tmp_path, "big-drops", "all:\n  - d: {kind: pktmon_drop, $gt: {count: 5}, reason_code: 16}\n")
    facts = [drop(count=3), drop(component_id=2, count=9), drop(component_id=3, count=9, reason_code=17)]
    result = run_rules(facts, [tmp_path])
    finding = finding_for(result, "big-drops")
    assert [(r["component_id"], r["count"]) for r in finding.evidence] == [(2, 9)]


def test_a_fact_matching_both_branches_of_an_or_is_one_match(tmp_path):
    write_rule(tmp_path, "either", "all:\n  - d: {kind: pktmon_drop, $or: [{$gt: {count: 1}}, {reason_code: 16}]}\n")
    result = run_rules([drop(count=5, reason_code=16)], [tmp_path])
    assert result.matches["either"] == 1
    assert len(finding_for(result, "either").evidence) == 1


def test_join_on_own_fields(tmp_path):
    write_rule(
        tmp_path,
        "both-directions",
        "all:\n"
        "  - a: {kind: pktmon_drop, direction: In}\n"
        "  - b: {kind: pktmon_drop, direction: Out, component_id: {a: component_id}}\n",
        summary="component {a[component_id]}",
    )
    facts = [
        drop(component_id=1, direction="In"),
        drop(component_id=2, direction="In"),
        drop(component_id=1, direction="Out"),
        drop(component_id=3, direction="Out"),
    ]
    result = run_rules(facts, [tmp_path])
    finding = finding_for(result, "both-directions")
    assert [(r["a.component_id"], r["b.component_id"]) for r in finding.evidence] == [(1, 1)]
    assert finding.summary == "component 1"
    assert len(finding.fact_ids) == 2


def test_negation_waits_for_the_gate(tmp_path):
    # "drops seen but no trace-quality fact at all": the quality fact comes after the drop, so an
    # ungated negation would already have fired when the drop was asserted.
    write_rule(
        tmp_path,
        "no-quality",
        "all:\n  - g: {kind: gate}\n  - d: {kind: pktmon_drop}\n  - q$not: {kind: trace_quality}\n",
    )
    with_quality = run_rules([drop(), TraceQuality()], [tmp_path])
    assert finding_for(with_quality, "no-quality") is None
    without = run_rules([drop(), drop(component_id=2)], [tmp_path])
    assert len(finding_for(without, "no-quality").evidence) == 2
