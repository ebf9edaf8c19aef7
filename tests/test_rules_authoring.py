"""Writing one's own rules: aggregates, comparisons within a fact, vocabularies, every error at once.

The engine runs for real (a worker process, durable_rules); expected values come from the facts as
written here (the scenario's ground truth) or from the reference evaluator, never from our output.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from rule_helpers import WHEN_LINE, drop, write_rule

from diag.engine import aggregate, load_rule, load_rules, run_rules
from diag.engine.differential import compare_with_reference
from diag.engine.lint import lint
from diag.engine.vocabulary import PKTMON_DIRECTION_TAGS, vocabulary
from diag.facts import TraceQuality
from diag.facts.network import Component

ROOT = Path(__file__).resolve().parent.parent
AUTHORING = ROOT / "tests" / "rules" / "authoring"
P = WHEN_LINE + 2
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lint_errors(path: Path) -> list[str]:
    return [str(i) for i in lint([path]) if i.severity == "error"]


def findings_of(tmp_path: Path, facts: list) -> dict:
    result = run_rules(facts, [tmp_path])
    assert result.complete, (result.rule_errors, result.engine_errors)
    return {f.rule_id: f for f in result.findings}


# ---------------------------------------------------------------------------------------------
# the differential test covers every new shape


def test_aggregates_comparisons_and_words_match_the_reference_exactly():
    rules, errors = load_rules([AUTHORING])
    assert not errors and len(rules) == 6
    comparisons = compare_with_reference(rules, 200)
    report = [(c.rule_id, c.missed, c.extra, c.errors[:1], c.example) for c in comparisons if not c.passed]
    assert report == []
    assert all(c.expected > 0 and c.expected < c.sets * 20 for c in comparisons), \
        [(c.rule_id, c.expected) for c in comparisons]


def test_the_differential_test_sees_a_wrong_window(monkeypatch):
    # an aggregate computed with a window one fact too short must be caught: the reference computes windows itself
    rule = load_rule(AUTHORING / "agg-count-window.yaml")
    original = aggregate._busiest

    def short(spec, members, timed):
        return original(spec, members, timed)[:-1] or original(spec, members, timed)

    monkeypatch.setattr(aggregate, "_busiest", short)
    (comparison,) = compare_with_reference([rule], 200)
    assert comparison.missed + comparison.extra > 0


# ---------------------------------------------------------------------------------------------
# aggregates


def test_a_sum_over_directions_reaches_the_threshold(tmp_path):
    write_rule(tmp_path, "vlan-sum", (
        "all:\n  - g:\n      aggregate: {kind: pktmon_drop, where: {reason_code: 9}, group_by: [component_id], "
        "sum: count}\n      $gt: {value: 100}\n"), summary="{count[component_id]} component(s): {each[component_id]}")
    facts = [drop(3, 9, 60, "Rx"), drop(3, 9, 41, "Tx"), drop(4, 9, 100, "Rx"), drop(4, 16, 50, "Rx"),
             drop(5, 9, 101, "Tx")]
    finding = findings_of(tmp_path, facts)["vlan-sum"]
    assert sorted((row["component_id"], row["value"], row["facts"]) for row in finding.evidence) == [(3, 101, 2), (5, 101, 1)]
    assert finding.summary == "2 component(s): 3, 5"
    # the evidence names the facts each group was computed from, never the derived fact
    by_component = {row["component_id"]: ids for row, ids in zip(finding.evidence, finding.evidence_fact_ids)}
    assert by_component == {3: ["pktmon_drop:0", "pktmon_drop:1"], 5: ["pktmon_drop:4"]}


def test_a_window_finds_the_busiest_minute(tmp_path):
    write_rule(tmp_path, "burst", (
        "all:\n  - g:\n      aggregate: {kind: pktmon_drop, group_by: [component_id], sum: count, window: 1m}\n"
        "      $gte: {value: 8}\n"))
    facts = [drop(1, 9, 4, first_seen=at(0)), drop(1, 10, 4, first_seen=at(59)), drop(1, 11, 4, first_seen=at(61)),
             drop(2, 9, 6, first_seen=at(0)), drop(2, 10, 6, first_seen=at(61)),  # 12, but never within 60 s
             drop(2, 11, 50)]  # no time: left out of the window, and counted
    (row,) = findings_of(tmp_path, facts)["burst"].evidence  # component 2: at most 6 in a minute
    # 0 s .. 61 s spans 61 s: the busiest window is 0-59 (8) or 59-61 (8); the earliest wins
    assert (row["value"], row["facts"], row["first_seen"], row["last_seen"]) == (8, 2, "2024-05-01T10:00:00Z",
                                                                                "2024-05-01T10:00:59Z")


def test_window_untimed_facts_are_counted():
    spec = load_rule(AUTHORING / "agg-count-window.yaml").condition.aggregates[0]
    facts = [{"kind": "pktmon_drop", "component_id": 1}, {"kind": "pktmon_drop", "component_id": 1,
                                                          "first_seen": "2024-05-01T10:00:00Z"}]
    ((data, used),) = aggregate.derive(spec, facts, lambda f: True)
    assert (data["value"], data["untimed"], used) == (1, 1, [1])


def test_count_distinct_and_a_join_with_another_fact(tmp_path):
    write_rule(tmp_path, "many-reasons", (
        "all:\n  - g:\n      aggregate: {kind: pktmon_drop, group_by: [component_id], count_distinct: reason_code}\n"
        "      $gte: {value: 2}\n  - c: {kind: component, component_id: {g: component_id}}\n"),
        summary="{c[name]}: {g[value]} reasons")
    component = Component(component_id=7, name="web port", component_type="VmsVmNic")
    facts = [drop(7, 9, 1), drop(7, 9, 5, "Tx"), drop(7, 16, 1), drop(8, 9, 1), drop(8, 16, 1), component]
    finding = findings_of(tmp_path, facts)["many-reasons"]
    assert finding.summary == "web port: 2 reasons"
    assert len(finding.evidence) == 1


@pytest.mark.parametrize("block, message", [
    ("{kind: pktmon_drop, sum: count, count: facts}", "exactly one of"),
    ("{kind: pktmon_drop, sum: reason_name}", "not a number"),
    ("{kind: pktmon_drop, sum: cuont}", "no field 'cuont'"),
    ("{kind: pktmon_drop, group_by: [componant_id], count: facts}", "no field 'componant_id' to group by"),
    ("{kind: pktmon_drop, count: facts, window: soon}", "a window is a duration"),
    ("{kind: trace_quality, count: facts, window: 1m}", "no time field"),
    ("{kind: pktmon_drop, count: facts, window: 1m, time: component_name}", "first_seen, last_seen"),
    ("{kind: pktmon_dorp, count: facts}", "the kind of facts to aggregate"),
    ("{kind: pktmon_drop, count: facts, having: 3}", "unknown key 'having'"),
])
def test_aggregate_mistakes_are_named(tmp_path, block, message):
    path = write_rule(tmp_path, "bad-agg", f"all:\n  - g:\n      aggregate: {block}\n      $gt: {{value: 1}}\n")
    problems = lint_errors(path)
    assert any(message in p for p in problems), problems
    assert all(f"{path}:{P + 1}:" in p for p in problems if message in p)


# ---------------------------------------------------------------------------------------------
# comparisons within one fact


def test_two_fields_of_one_fact_are_compared(tmp_path):
    write_rule(tmp_path, "more-drops-than-packets", "all:\n  - c: {kind: component, $gt: {drops: {c: packets}}}\n")
    facts = [Component(component_id=i, name=f"c{i}", component_type="Miniport", packets=p, drops=d)
             for i, (p, d) in enumerate([(5, 6), (5, 5), (0, 1), (9, 2)])]
    rows = findings_of(tmp_path, facts)["more-drops-than-packets"].evidence
    assert sorted(r["component_id"] for r in rows) == [0, 2]


def test_the_engines_own_spelling_is_explained_in_rule_terms(tmp_path):
    path = write_rule(tmp_path, "dollar-m", "all:\n  - c: {kind: component, $gt: {drops: {$m: packets}}}\n")
    (problem,) = lint_errors(path)
    assert "write {c: field}, with this pattern's own alias" in problem
    assert "not supported" not in problem and "durable" not in problem


# ---------------------------------------------------------------------------------------------
# vocabularies


def test_every_pktmon_direction_tag_has_exactly_one_word():
    tags = yaml.safe_load((ROOT / "knowledge" / "pktmon-drop-reasons.yaml").read_text())["direction_tags"]
    words = [word for word, stored in PKTMON_DIRECTION_TAGS.items() for tag in stored]
    mapped = [tag for stored in PKTMON_DIRECTION_TAGS.values() for tag in stored]
    assert sorted(mapped) == sorted(str(t) for t in tags.values())
    assert len(words) == len(set(mapped))


def test_direction_in_matches_a_vmnics_rx_drops(tmp_path):
    # pktmon logs the tag the component registered: a vmNIC says Rx/Tx, a protocol In/Out
    write_rule(tmp_path, "inbound", "all:\n  - d: {kind: pktmon_drop, direction: In}\n")
    write_rule(tmp_path, "not-outbound", "all:\n  - d: {kind: pktmon_drop, $neq: {direction: out}}\n")
    facts = [drop(1, direction="Rx"), drop(2, direction="In"), drop(3, direction="Ingress"), drop(4, direction="Tx"),
             drop(5, direction="Out"), drop(6, direction="None")]
    found = findings_of(tmp_path, facts)
    assert sorted(r["component_id"] for r in found["inbound"].evidence) == [1, 2, 3]
    assert sorted(r["component_id"] for r in found["not-outbound"].evidence) == [1, 2, 3, 6]


@pytest.mark.parametrize("test, message", [
    ("direction: ingoing", "'ingoing' is never a value of 'direction'; it is one of in, out, unknown"),
    ("component_type: VmsExtProtocol", "it is one of NDIS, Miniport"),
    ("$gt: {direction: in}", "test it with direction: <value>"),
    ("$mt: {direction: 'Up.*'}", "matches no value direction can hold"),
])
def test_a_value_that_can_never_match_is_an_error(tmp_path, test, message):
    path = write_rule(tmp_path, "never", f"all:\n  - d: {{kind: pktmon_drop, {test}}}\n")
    problems = lint_errors(path)
    assert any(message in p and p.startswith(f"{path}:{P}:") for p in problems), problems


def test_closed_fields_of_the_models_are_vocabularies(tmp_path):
    assert vocabulary("address", "family").words == {"IPv4": ("IPv4",), "IPv6": ("IPv6",)}
    path = write_rule(tmp_path, "family", "all:\n  - a: {kind: address, family: ipv5}\n")
    (problem,) = lint_errors(path)
    assert "it is one of IPv4, IPv6" in problem
    rule = load_rule(write_rule(tmp_path / "ok", "family", "all:\n  - a: {kind: address, family: ipv6}\n"))
    assert rule.engine_rules[0].all == [{"a": {"$and": [{"kind": "address"}, {"family": "IPv6"}]}}]


# ---------------------------------------------------------------------------------------------
# lint reports everything


def test_lint_reports_every_problem_of_a_file_at_once(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(
        "id: many\n"                                          # 1
        "severity: severe\n"                                  # 2 bad severity; title etc. missing
        "confidence: high\n"                                  # 3
        "description: d\n"                                    # 4
        "impact: i\n"                                         # 5
        "remediation: r\n"                                    # 6
        "finding:\n"                                          # 7
        "  summary: '{d[cuont]}'\n"                           # 8
        "when:\n"                                             # 9
        "  all:\n"                                            # 10
        "    - d: {kind: pktmon_drp}\n"                       # 11 unknown kind
        "    - e: {kind: pktmon_drop, $gt: {cuont: 1}, direction: up}\n"  # 12 two problems
        "    - f: {kind: component, $gt: {drops: {$m: packets}}}\n",     # 13
        encoding="utf-8")
    problems = lint_errors(path)
    expected = [(2, "severity"), (None, "title: required"), (11, "unknown fact kind 'pktmon_drp'"),
                (12, "no field 'cuont'"), (12, "'up' is never a value of 'direction'"), (13, "own alias")]
    for line, text in expected:
        where = f"{path}:{line}:" if line else f"{path}"
        assert any(p.startswith(where) and text in p for p in problems), (line, text, problems)


def test_no_user_facing_message_speaks_of_the_engine(tmp_path):
    blocks = ["any:\n  - a: {kind: pktmon_drop}\n", "all:\n  - a: {kind: pktmon_drop}\ncount: 3\n",
              "all:\n  - a: {kind: pktmon_drop, $s: {x: 1}}\n", "all:\n  - a: {kind: pktmon_drop, id: x}\n",
              "all:\n  - a: {kind: pktmon_drop, $iany: {sample: 1}}\n",
              "all:\n  - a: {kind: pktmon_drop}\n  - b: {kind: pktmon_drop, $lt: {first_seen: {a: last_seen}}}\n",
              "all:\n  - a: {kind: pktmon_drop, count: {$div: {$l: {a: count}, $r: 2}}}\n",
              "all:\n  - a: {kind: pktmon_drop, $mt: {component_name: '.*(a|b).*'}}\n",
              "all:\n  - a: {kind: pktmon_drop, $zz: {count: 1}}\n"]
    for number, block in enumerate(blocks):
        path = write_rule(tmp_path, f"r{number}", block)
        for problem in (str(i) for i in lint([path]) if i.severity == "error"):
            assert "durable" not in problem and "error 3" not in problem and "operator $" not in problem, problem


def test_a_finding_whose_field_is_empty_reads_a_dash(tmp_path):
    write_rule(tmp_path, "dash", "all:\n  - d: {kind: pktmon_drop}\n", summary="since {d[first_seen]}, to {d[destinations]}")
    assert findings_of(tmp_path, [drop(1)])["dash"].summary == "since –, to –"


def test_summary_lists_are_shortened(tmp_path):
    write_rule(tmp_path, "listing", "all:\n  - d: {kind: pktmon_drop}\n",
               summary="{count[component_id]}: {each[component_id]}")
    facts = [drop(i) for i in range(8)]
    assert findings_of(tmp_path, facts)["listing"].summary == "8: 0, 1, 2, 3, 4 and 3 more"


def test_trace_quality_fact_is_unaffected_by_aggregates(tmp_path):
    # aggregates are added for the rules that read them; other rules see the facts as they were
    write_rule(tmp_path, "quality", "all:\n  - q: {kind: trace_quality, $gt: {events_lost: 0}}\n")
    write_rule(tmp_path, "agg", "all:\n  - g:\n      aggregate: {kind: pktmon_drop, count: facts}\n"
                                "      $gte: {value: 1}\n")
    found = findings_of(tmp_path, [TraceQuality(events_lost=2), drop(1), drop(2)])
    assert found["quality"].evidence == [{"events_lost": 2, "buffers_lost": 0, "records_undecoded": 0,
                                          "buffers_skipped": 0, "truncated": False}]
    assert [r["value"] for r in found["agg"].evidence] == [2]


# ---------------------------------------------------------------------------------------------
# on a real trace, and the commands


INBOUND_TAGS, OUTBOUND_TAGS = {1, 3, 5}, {2, 4, 6}  # PKTMON_DIRECTION: In, Rx, Ingress / Out, Tx, Egress


@pytest.mark.parametrize("word, tags", [("in", INBOUND_TAGS), ("out", OUTBOUND_TAGS)])
def test_an_aggregate_of_a_real_traces_drops_by_direction(tmp_path, word, tags):
    from collections import Counter

    from reference_pktmon import read_snapshots
    from samples import sample

    from diag.api import trace_facts
    from diag.engine.selftest import run_on_facts

    trace = sample("NeoChenjf__Finguard__PktMon.etl")
    expected = Counter(s.component for s in read_snapshots(trace) if s.dropped and s.direction in tags)
    for kind in ("pktmon_drop", "background_drop"):
        write_rule(tmp_path, f"per-component-{kind.replace('_', '-')}", (
            f"all:\n  - g:\n      aggregate: {{kind: {kind}, where: {{direction: {word}}}, group_by: [component_id], "
            "sum: count}\n      $gte: {value: 1}\n"))
    rules, errors = load_rules([tmp_path])
    assert not errors
    result = run_on_facts(rules, trace_facts(trace))
    assert result.complete
    found = Counter()
    for finding in result.findings:
        for row in finding.evidence:
            found[row["component_id"]] += row["value"]
    assert found == expected


def test_rules_test_on_a_trace_shows_what_matched(tmp_path):
    from samples import sample
    from typer.testing import CliRunner

    from diag.commands.rules import app

    trace = sample("microsoft__demikernel__PktMon.etl")
    write_rule(tmp_path, "vf-pairs", "all:\n  - v: {kind: vf_pair}\n", summary="{count[mac]} MAC(s): {each[mac]}")
    write_rule(tmp_path, "no-vlan-drops", "all:\n  - d: {kind: pktmon_drop, reason_code: 9}\n")
    done = CliRunner().invoke(app, ["test", str(tmp_path), "--sets", "5", "--trace", str(trace)])
    lines = done.stdout.splitlines()
    assert any(line.startswith("  vf-pairs: 1 match(es): 1 MAC(s): ") for line in lines), done.stdout
    assert "  no-vlan-drops: no match (it reads pktmon_drop 0)" in lines
    assert done.exit_code == 1  # the rules written here have no cases: `rules test` says so


def test_a_rule_started_from_a_stored_finding_finds_it_again(tmp_path):
    from samples import sample
    from typer.testing import CliRunner

    from diag.api import check, trace_facts
    from diag.commands.rules import app
    from diag.engine.selftest import run_on_facts

    trace = sample("microsoft__demikernel__PktMon.etl")
    db = tmp_path / "w.db"
    from diag.api import Severity

    result = check(trace, db_path=db, out_dir=tmp_path / "out", threshold=Severity.info)
    original = next(f for f in result.run.findings if f.rule_id == "sriov-vf-data-path")
    mine = tmp_path / "mine"
    done = CliRunner().invoke(app, ["new", "my-vf", "--dir", str(mine), "--db", str(db),
                                    "--from-finding", "latest:sriov-vf-data-path"])
    assert done.exit_code == 0, done.stdout + str(done.exception)
    assert [str(i) for i in lint([mine])] == []
    tested = CliRunner().invoke(app, ["test", str(mine), "--sets", "20"])
    assert tested.exit_code == 0, tested.stdout
    rules, _ = load_rules([mine])
    again = run_on_facts(rules, trace_facts(trace))
    (finding,) = again.findings
    assert finding.evidence_fact_ids == original.evidence_fact_ids[:1]
    bad = CliRunner().invoke(app, ["new", "x", "--dir", str(mine), "--db", str(db), "--from-finding", "latest:nope"])
    assert bad.exit_code == 2 and "has no finding of rule 'nope'" in bad.stderr


def test_lint_checks_the_finding_even_when_the_metadata_is_wrong(tmp_path):
    path = tmp_path / "y.yaml"
    path.write_text("id: y\nseverity: severe\nconfidence: high\ndescription: d\nimpact: i\nremediation: r\n"
                    "finding:\n  summary: '{d[cuont]}'\n  evidence: [d.nope]\nwhen:\n  all:\n    - d: {kind: pktmon_drop}\n",
                    encoding="utf-8")
    problems = [str(i) for i in lint([path])]
    for line, text in ((2, "severity"), (8, "no field 'cuont'"), (9, "no field 'nope'")):
        assert any(p.startswith(f"{path}:{line}:") and text in p for p in problems), (line, problems)
