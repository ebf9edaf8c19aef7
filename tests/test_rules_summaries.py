"""What finding summaries say: true of every match, and never "None" for an empty field.

Run through the real engine (``diag.engine.run_rules``) with the shipped pack; the expected wording is what the
facts given here make true, counted here.
"""

from __future__ import annotations

from diag.engine import run_rules
from diag.facts.network import PacketPath
from rule_helpers import drop


def finding(result, rule_id):
    (f,) = [f for f in result.findings if f.rule_id == rule_id]
    return f


def test_a_shared_reason_summary_does_not_give_one_pair_s_reason_to_all():
    # the audit's case: 1 pair of components sharing 1204, 6 pairs sharing 1206, 1 pair sharing 1207
    facts = [drop(component_id=c, reason_code=1204, count=5) for c in (1, 2)]
    facts += [drop(component_id=c, reason_code=1206, count=3) for c in (3, 4, 5, 6)]
    facts += [drop(component_id=c, reason_code=1207, count=1) for c in (7, 8)]
    result = run_rules(facts, only=["same-drop-reason-on-several-components"])
    f = finding(result, "same-drop-reason-on-several-components")
    pairs = [(row["a.reason_code"], row["a.component_id"], row["b.component_id"]) for row in f.evidence]
    assert len(pairs) == 1 + 6 + 1 and {p[0] for p in pairs} == {1204, 1206, 1207}
    assert f.summary.startswith("8 pair(s) of components drop packets for a reason they share")
    assert "at 8 pair" not in f.summary
    top = f.evidence[0]  # ranked by count: the example is a pair of the busiest reason, named with its own reason
    assert top["a.reason_code"] == 1204 and "reason 1204 " in f.summary


def test_a_non_ip_sample_path_reads_as_its_ethertype_without_none():
    path = PacketPath(pkt_group_id=1, pkt_number=1, hop_count=10, first_component="Wi-Fi", last_component="Wi-Fi",
                      last_component_id=12, dropped=True, drop_component="Wi-Fi", drop_reason_code=9,
                      drop_reason_name="Filtered VLAN", protocol="EtherType 0x8300", packet="EtherType 0x8300")
    f = finding(run_rules([path], only=["drop-paths"]), "drop-paths")
    assert "EtherType 0x8300, 10 hop(s)" in f.summary and "None" not in f.summary


def test_an_empty_field_in_a_summary_reads_as_a_dash():
    facts = [drop(component_id=5, reason_code=922, count=3, distinct_frames=3)]  # no destinations known
    f = finding(run_rules(facts, only=["address-resolution-drops"]), "address-resolution-drops")
    assert "going to –." in f.summary and "None" not in f.summary
