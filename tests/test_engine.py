"""The adapter around durable_rules, end to end through the real core in its worker process.

One test (or a few) per point of the safe-usage checklist in FINDINGS §9; expected values come
from the tests' own inputs, never from the engine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rule_helpers import drop, write_rule

from diag.engine import IdAllocator, fnv1a32, load_rules, run_rules
from diag.engine.runner import engine_payload, prepare_session, run_payload, run_worker
from diag.errors import AnalysisFailed, BadInputError
from diag.facts import TraceQuality

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"


PY_RULE = '''\
import os, signal, time
from durable.lang import c, m, when_all

META = {{"id": "{rule_id}", "title": "t", "severity": "low", "confidence": "low", "description": "d",
        "impact": "i", "remediation": "r", "finding": {{"summary": "{{matches}}"}}}}
WHEN = when_all(c.d << (m.kind == "pktmon_drop"))


def action(match):
{body}
'''

ACTIONS = {
    "explode-on-13": '    if match["d"]["count"] == 13:\n        raise ValueError("kaboom on 13")\n    return {"checked": True}',
    "exit-139": "    os._exit(139)",
    "segfault": "    os.kill(os.getpid(), signal.SIGSEGV)",
    "sleep-long": "    time.sleep(60)",
}


def python_rule(directory: Path, rule_id: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rule_id}.py"
    path.write_text(PY_RULE.format(rule_id=rule_id, body=ACTIONS[rule_id]), encoding="utf-8")
    return path


@pytest.fixture
def copy_of_pack(tmp_path: Path) -> Path:
    """A user directory holding a copy of the shipped packets-dropped rule (not "shipped" itself)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES_DIR / "packets-dropped.yaml", rules / "packets-dropped.yaml")
    return rules


def finding_for(result, rule_id):
    found = [f for f in result.findings if f.rule_id == rule_id]
    assert len(found) <= 1
    return found[0] if found else None


# --------------------------------------------------------------------------------------------
# §9.4 ids: unique 32-bit keys per session


def test_fnv1a32_matches_the_published_test_vectors():
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


def test_allocator_never_hands_out_colliding_keys():
    # "costarring" and "liquid" have the same 32-bit FNV-1a hash, the only identity the engine checks.
    assert fnv1a32("costarring") == fnv1a32("liquid")
    ids = IdAllocator("7")
    first, second = ids.allocate("costarring"), ids.allocate("liquid")
    assert first == "costarring" and second != "liquid" and fnv1a32(second) != fnv1a32(first)
    # the engine's own keys in the session are taken from the start
    assert ids.allocate("sid-7") != "sid-7"
    assert ids.allocate("$pulse") != "$pulse"


def test_every_fact_and_the_gate_get_distinct_keys():
    session = prepare_session([drop(component_id=i) for i in range(3000)], "1")
    keys = [fnv1a32(f.engine["id"]) for f in session.facts] + [fnv1a32(session.gate["id"])]
    assert len(set(keys)) == 3001
    assert fnv1a32("sid-1") not in keys


def test_a_colliding_id_is_an_engine_error_not_a_silent_miss():
    # Bypass the allocator: two facts whose ids collide. The engine refuses the second as "already
    # observed"; the worker must say so rather than drop the fact quietly.
    rules, _ = load_rules([RULES_DIR])
    session = prepare_session([drop(count=1), drop(count=2)], "1")
    session.facts[0].engine["id"], session.facts[1].engine["id"] = "costarring", "liquid"
    raw = run_payload(engine_payload([r for r in rules if r.id == "packets-dropped"], [session]), timeout=60)
    outcome = raw["sessions"][0]
    assert outcome["asserted"] == 1
    assert len(outcome["matches"]) == 1
    assert len(outcome["errors"]) == 1 and "liquid" in outcome["errors"][0]


# --------------------------------------------------------------------------------------------
# §9.1, §9.2, §9.3: synchronous dispatch, one process and one ruleset per check


def test_one_fresh_process_one_ruleset_no_background_threads():
    rules, _ = load_rules([RULES_DIR, ROOT / "tests" / "rules" / "shapes"])
    first = run_worker(rules, [prepare_session([drop()], "1")], timeout=60).engine
    second = run_worker(rules, [prepare_session([drop()], "1")], timeout=60).engine
    assert first["pid"] != second["pid"] and os.getpid() not in (first["pid"], second["pid"])
    assert first["rulesets"] == 1  # every rule, every variant, in one ruleset
    assert first["threads"] == 1  # the host started no dispatch or timer thread
    assert first["late_actions"] == 0  # every action ran inside the assert_fact that caused it


def test_2000_matches_are_all_recorded_when_the_call_returns():
    n = 2000
    facts = [drop(component_id=i % 50, reason_code=100 + i, count=i % 7 + 1) for i in range(n)]
    result = run_rules(facts, only=["packets-dropped"])
    assert result.complete
    assert result.facts_asserted == n and result.facts_unmatched == 0
    assert result.matches["packets-dropped"] == n
    finding = finding_for(result, "packets-dropped")
    assert len(finding.evidence) == n and len(set(finding.fact_ids)) == n
    assert f"{sum(i % 7 + 1 for i in range(n))} drop event(s)" in finding.summary


# --------------------------------------------------------------------------------------------
# §9.5 one fact at a time: an unmatched fact suppresses nothing


def test_unmatched_facts_between_matched_ones_suppress_nothing():
    facts = []
    for i in range(30):
        facts += [TraceQuality(), drop(component_id=i, reason_code=16, count=i + 1)]
    result = run_rules(facts, only=["mac-spoofing-drops"])
    assert result.facts_unmatched == 30
    assert result.matches["mac-spoofing-drops"] == 30


# --------------------------------------------------------------------------------------------
# §9.7 negation decided over complete data


def test_negation_waits_for_all_data(tmp_path):
    # "a drop with no trace-quality fact at all": the quality fact comes after the drop, so an
    # ungated negation would already have fired when the drop was asserted.
    write_rule(tmp_path, "no-quality", "all:\n  - d: {kind: pktmon_drop}\n  - q$not: {kind: trace_quality}\n")
    with_quality = run_rules([drop(), TraceQuality()], [tmp_path])
    assert finding_for(with_quality, "no-quality") is None
    without = run_rules([drop(), drop(component_id=2)], [tmp_path])
    assert len(finding_for(without, "no-quality").evidence) == 2


# --------------------------------------------------------------------------------------------
# §8 dedupe: by rule and fact ids


def test_a_fact_meeting_several_alternatives_is_one_match(tmp_path):
    write_rule(tmp_path, "either", "all:\n  - d: {kind: pktmon_drop, $or: [{$gt: {count: 1}}, {reason_code: 16}]}\n")
    rules, _ = load_rules([tmp_path])
    session = prepare_session([drop(count=5, reason_code=16)], "1")
    raw = run_payload(engine_payload(rules, [session]), timeout=60)
    assert len(rules[0].engine_rules) == 2  # one durable rule per alternative: both fire
    assert [m[1] for m in raw["sessions"][0]["matches"]] == [[session.facts[0].id]] * 2
    result = run_rules([drop(count=5, reason_code=16)], [tmp_path])
    assert result.matches["either"] == 1
    assert len(finding_for(result, "either").evidence) == 1


def test_both_orders_of_a_symmetric_join_are_distinct_matches(tmp_path):
    write_rule(tmp_path, "pair", "all:\n  - a: {kind: pktmon_drop}\n  - b: {kind: pktmon_drop, reason_code: {a: reason_code}}\n")
    result = run_rules([drop(component_id=1), drop(component_id=2)], [tmp_path])
    rows = [(r["a.component_id"], r["b.component_id"]) for r in finding_for(result, "pair").evidence]
    assert sorted(rows) == [(1, 2), (2, 1)]


# --------------------------------------------------------------------------------------------
# §9.9 exceptions in actions are captured; a failed worker is AnalysisFailed


def test_an_action_that_raises_is_a_rule_error_and_other_rules_still_fire(copy_of_pack):
    python_rule(copy_of_pack, "explode-on-13")
    write_rule(copy_of_pack, "lossy-trace", "all:\n  - q: {kind: trace_quality, $gt: {events_lost: 0}}\n")
    result = run_rules([drop(count=5), drop(component_id=2, count=13), TraceQuality(events_lost=4)], [copy_of_pack])

    assert not result.complete
    (error,) = result.rule_errors
    assert error.rule_id == "explode-on-13" and error.file.endswith("explode-on-13.py")
    assert "kaboom on 13" in error.message
    assert set(result.rules_run) == {"packets-dropped", "lossy-trace"}
    assert len(finding_for(result, "packets-dropped").evidence) == 2
    assert finding_for(result, "lossy-trace") is not None
    # both matches are kept; the one whose action completed carries what it returned
    rows = finding_for(result, "explode-on-13").evidence
    assert [(r["count"], r.get("checked")) for r in rows] == [(5, True), (13, None)]


@pytest.mark.parametrize(("rule_id", "expected"), [("exit-139", "exited with code 139"), ("segfault", "SIGSEGV")])
def test_a_crashing_worker_is_analysis_failed(copy_of_pack, rule_id, expected):
    python_rule(copy_of_pack, rule_id)
    with pytest.raises(AnalysisFailed, match=expected):
        run_rules([drop(count=3)], [copy_of_pack])


def test_a_hung_worker_is_stopped_and_analysis_failed(copy_of_pack):
    python_rule(copy_of_pack, "sleep-long")
    with pytest.raises(AnalysisFailed, match="did not finish within"):
        run_rules([drop(count=3)], [copy_of_pack], timeout=2)


def test_a_user_rule_that_crashes_the_worker_does_not_stop_the_shipped_rules(tmp_path):
    python_rule(tmp_path / "mine", "segfault")
    result = run_rules([drop(count=3)], [RULES_DIR, tmp_path / "mine"])
    assert finding_for(result, "packets-dropped") is not None
    (error,) = result.rule_errors
    assert error.rule_id == "segfault" and "did not run" in error.message and "SIGSEGV" in error.message
    assert "segfault" not in result.rules_loaded and "segfault" not in result.rules_run


def test_no_rules_is_not_a_clean_result(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_rules([drop()], [tmp_path / "empty"])
    assert result.findings == [] and not result.complete and result.engine_errors


def test_bad_rule_files_do_not_stop_the_good_ones(copy_of_pack):
    (copy_of_pack / "broken-yaml.yaml").write_text("id: broken-yaml\nwhen: {all: [\n", encoding="utf-8")
    write_rule(copy_of_pack, "joins-on-id", "all:\n  - a: {kind: pktmon_drop}\n  - b: {kind: pktmon_drop, component_id: {a: id}}\n")
    result = run_rules([drop(count=4)], [copy_of_pack])
    by_stem = {e.rule_id: e for e in result.rule_errors}
    assert set(by_stem) == {"broken-yaml", "joins-on-id"}
    assert by_stem["joins-on-id"].file == f"{copy_of_pack / 'joins-on-id.yaml'}:13"
    assert "'id' cannot be tested" in by_stem["joins-on-id"].message
    assert result.rules_loaded == result.rules_run == ["packets-dropped"]
    assert finding_for(result, "packets-dropped") is not None


# --------------------------------------------------------------------------------------------
# --only / --skip


def test_only_and_skip_select_by_id_or_tag():
    facts = [drop(reason_code=16), drop(component_id=2, reason_code=9), TraceQuality(events_lost=1)]
    pack, _ = load_rules([RULES_DIR])
    tagged = {tag: sorted(r.id for r in pack if tag in r.meta.tags) for tag in ("vswitch", "drops")}
    assert {"mac-spoofing-drops", "vlan-drops"} <= set(tagged["vswitch"]) and "packets-dropped" not in tagged["vswitch"]
    vswitch = run_rules(facts, only=["vswitch"])
    assert sorted(vswitch.rules_loaded) == tagged["vswitch"]
    assert {f.rule_id for f in vswitch.findings} == {"mac-spoofing-drops", "vlan-drops"}
    assert "packets-dropped" in vswitch.rules_deselected
    rest = run_rules(facts, skip=["drops"])
    assert sorted(rest.rules_loaded) == sorted(r.id for r in pack if "drops" not in r.meta.tags)
    assert [f.rule_id for f in rest.findings] == ["trace-incomplete"]
    both = run_rules(facts, only=["drops"], skip=["vlan-drops"])
    assert "vlan-drops" not in both.rules_loaded and "mac-spoofing-drops" in both.rules_loaded


def test_a_selector_that_names_no_rule_is_an_input_error():
    with pytest.raises(BadInputError, match="--only vlan-drop: no rule has this id or tag"):
        run_rules([drop()], only=["vlan-drop"])


def test_run_rules_works_from_a_script_without_a_main_guard(tmp_path):
    # multiprocessing's spawn would import the caller's __main__ again in the worker; the
    # worker is a plain `python -m diag.engine.worker`, so a script fed on stdin works.
    import subprocess
    import sys

    script = ("from diag.engine import run_rules\nfrom diag.facts import TraceQuality\n"
              "print(run_rules([TraceQuality(events_lost=2)]).matches['trace-incomplete'])\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
