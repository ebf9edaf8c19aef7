"""The trace-quality gate lowers the confidence of the findings a quality finding affects."""

from __future__ import annotations


from diag.engine.quality_gate import apply_quality_gate
from diag.facts.models import Finding


def finding(rule_id: str, confidence: str, tags: list[str]) -> Finding:
    return Finding(rule_id=rule_id, title=rule_id.replace("-", " "), severity="medium", confidence=confidence,
                   summary=f"{rule_id} summary", tags=tags)


def test_a_gate_lowers_only_the_findings_it_names_by_one_step():
    gate = finding("drops-in-lossy-trace", "high", ["trace", "affects-drops"])
    drops = finding("vlan-drops", "high", ["pktmon", "drops", "vlan"])
    other = finding("nat-port-exhaustion", "high", ["nat"])
    out = {f.rule_id: f for f in apply_quality_gate([gate, drops, other])}
    assert out["vlan-drops"].confidence == "medium"
    assert "drops in lossy trace" in out["vlan-drops"].summary
    assert out["nat-port-exhaustion"] == other
    assert out["drops-in-lossy-trace"] == gate  # a gate never lowers itself


def test_affects_all_reaches_every_finding_and_low_stays_low():
    gate = finding("trace-incomplete", "high", ["trace", "affects-all"])
    low = finding("tcpip-drops", "low", ["drops"])
    medium = finding("mac-moved-between-ports", "medium", ["vswitch"])
    out = {f.rule_id: f.confidence for f in apply_quality_gate([low, gate, medium])}
    assert out == {"tcpip-drops": "low", "trace-incomplete": "high", "mac-moved-between-ports": "low"}


def test_no_gate_leaves_findings_untouched():
    findings = [finding("vlan-drops", "high", ["drops"]), finding("packets-dropped", "high", ["drops"])]
    assert apply_quality_gate(findings) == findings


GATE_RULE = """\
id: drops-unreliable
title: Drop counts are unreliable
status: test
severity: info
confidence: high
description: A stand-in quality rule for this test; it fires whenever there are drops.
impact: Drop counts may be lower than what happened.
remediation: Nothing to do.
tags: [trace, quality, affects-drops]
when:
  all:
    - d: {kind: pktmon_drop}
finding:
  summary: "drop counts are unreliable"
"""


def test_check_lowers_the_confidence_of_drop_findings_when_a_gate_fires(tmp_path):
    """End to end: the real engine runs the shipped pack plus a user quality rule on the demo trace."""
    from pathlib import Path

    from diag import api

    demo = Path(__file__).resolve().parent / "data" / "pktmon-drops.etl"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "drops-unreliable.yaml").write_text(GATE_RULE)
    plain = api.check(demo, db_path=tmp_path / "a.db", out_dir=tmp_path / "a", only=["drops"])
    gated = api.check(demo, rule_dirs=[rules], db_path=tmp_path / "b.db", out_dir=tmp_path / "b",
                      only=["drops", "drops-unreliable"])
    before = {f.rule_id: f.confidence for f in plain.run.findings}
    after = {f.rule_id: f for f in gated.run.findings}
    assert "drops-unreliable" in after and before  # the gate fired; there were drop findings to lower
    step = {"high": "medium", "medium": "low", "low": "low"}
    for rule_id, confidence in before.items():
        assert after[rule_id].confidence == step[confidence]
        assert "Drop counts are unreliable" in after[rule_id].summary
