"""Every synthesized scenario's ground truth, matched exactly by ``diag.api.check`` with the shipped pack.

Each scenario is written with ``diag.synth.synthesize``; its ``<stem>.truth.json`` lists the findings a
correct diagnosis reports (``expect``, with key values) and the ones it must not (``must_not``).
The truth speaks in the catalogue's finding ids (``diag.synth.scenarios.FINDINGS``); ``RULE_FOR``
maps them to the pack's rule ids. Expected values come from the truth file only.

"No unexpected finding": a rule that maps to a truth id fires exactly when the truth expects it.
Rules outside the truth catalogue (coverage and correlation rules) are expected exactly where the
truth file or the scenario's design says so (``derived_expectations``), and nowhere else.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diag.api import check
from diag.engine import load_rules
from diag.synth import scenario_names, synthesize
from diag.synth.scenarios import FINDINGS

ROOT = Path(__file__).resolve().parent.parent

# truth finding id -> rule id of the pack
RULE_FOR = {
    "packets-dropped": "packets-dropped",
    "vlan-mismatch": "vlan-drops",
    "mac-spoofing": "mac-spoofing-drops",
    "overlapping-compartment-subnets": "overlapping-compartment-subnets",
    "mtu-encapsulation-overhead": "mtu-encapsulation-overhead",
    "sriov-offload-bypass": "sriov-offload-bypass",
    "vf-fallback": "vf-fallback",
    "packets-not-delivered": "packets-not-delivered",
    "nat-port-exhaustion": "nat-port-exhaustion",
    "tcp-port-exhaustion": "tcp-port-exhaustion",
    "duplicate-ip-address": "duplicate-ip-address",
    "wnv-lookup-failure": "wnv-lookup-failure",
    "trace-events-lost": "trace-incomplete",
    "trace-payload-truncated": "trace-payload-truncated",
    "trace-circular-wrapped": "trace-circular-wrapped",
}

VMSWITCH_GUID = "67dc0d66-3695-47c0-9642-33f76f7bd7ad"
# Scenarios whose host has container/VM vmNICs in pktmon's component list: every scenario built on
# diag.synth.scenarios.base.ContainerHost, and the demo trace (two container vmNICs, its docstring).
# vf-fallback is a guest-side trace (NetVsc and the VF, no vSwitch).
WITH_VMNICS = {name for name in scenario_names()} - {"vf-fallback"}
# Guest traces with an SR-IOV VF bonded to NetVsc (vf-fallback: "SR-IOV VF falls back to the synthetic
# path mid-trace (guest trace)": a Mellanox VF and the Hyper-V adapter with one MAC).
GUESTS_WITH_VF = {"vf-fallback"}
TCPIP_REASONS = [(601, 615), (901, 1002), (1200, 1232)]


def derived_expectations(name: str, truth: dict) -> set[str]:
    """Rules outside the truth catalogue that must fire, from the truth file and the scenario design."""
    out = set()
    providers = {g.lower() for g in truth["trace"]["events_by_provider"]}
    if name in WITH_VMNICS and VMSWITCH_GUID not in providers:
        out.add("vmswitch-provider-absent")
    if name in GUESTS_WITH_VF:
        out.add("sriov-vf-data-path")
    if truth.get("drops"):  # every drop group gets its rate, and a sample path to its drop point
        out |= {"drop-rate", "drop-paths"}
    if any(lo <= d["reason"] <= hi for d in truth.get("drops", []) for lo, hi in TCPIP_REASONS):
        out.add("tcpip-drops")
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    base = tmp_path_factory.mktemp("scenarios")
    out = {}
    for name in scenario_names():
        written = synthesize(name, base / f"{name}.etl")
        truth = json.loads(written.truth.read_text(encoding="utf-8"))
        run_dir = base / name
        run_dir.mkdir()
        result = check(written.trace, host_info=list(written.host_info), db_path=run_dir / "wnvdiag.db",
                       out_dir=run_dir)
        out[name] = (truth, {f.rule_id: f for f in result.run.findings}, result)
    return out


def test_every_truth_id_maps_to_a_shipped_rule():
    rules, errors = load_rules([ROOT / "rules"])
    assert not errors
    ids = {r.id for r in rules}
    assert set(RULE_FOR) == set(FINDINGS)
    assert set(RULE_FOR.values()) <= ids


@pytest.mark.parametrize("name", scenario_names())
def test_findings_are_exactly_the_truth(results, name):
    truth, findings, result = results[name]
    assert result.run.failure is None
    assert result.run.rule_errors == [] and result.run.engine_errors == []
    expected = {RULE_FOR[f["finding"]] for f in truth["expect"]} | derived_expectations(name, truth)
    forbidden = {RULE_FOR[f] for f in truth["must_not"]}
    assert not expected & forbidden
    assert set(findings) == expected, f"{name}: missing {expected - set(findings)}, unexpected {set(findings) - expected}"


def rows(finding) -> list[dict]:
    """Evidence rows with the alias prefix dropped (``d.count`` -> ``count``)."""
    return [{k.split(".", 1)[-1]: v for k, v in row.items()} for row in finding.evidence]


def has_row(finding, **values) -> bool:
    return any(all(str(r.get(k)).lower() == str(v).lower() for k, v in values.items()) for r in rows(finding))


def filetime_seconds(ft: int) -> float:
    return ft / 10_000_000


def check_values(finding_id: str, values: dict, finding) -> None:
    ev = rows(finding)
    if finding_id == "packets-dropped":
        assert sum(r["count"] for r in ev) == values["total"]
        got = sorted((r["component_id"], r["reason_code"], r["count"]) for r in ev)
        assert got == sorted((g["component_id"], g["reason"], g["count"]) for g in values["groups"])
        for g in values["groups"]:
            if "direction" in g:
                assert has_row(finding, component_id=g["component_id"], reason_code=g["reason"], direction=g["direction"])
    elif finding_id in ("vlan-mismatch", "mac-spoofing"):
        keys = dict(reason_code=values["reason"], count=values["count"])
        if "component_id" in values:
            keys["component_id"] = values["component_id"]
        if "component" in values:
            keys["component_name"] = values["component"]
        assert has_row(finding, **keys), (keys, ev)
    elif finding_id == "overlapping-compartment-subnets":
        (row,) = ev
        assert [row["compartment_a"], row["compartment_b"]] == values["compartments"]
        assert [row["prefix_a"], row["prefix_b"]] == values["prefixes"]
        assert row["overlap"] == values["overlap"]
        assert set(row["meet_via"].split(",")) == set(values["meet_via"])
        assert row["source"] == values["source"]
    elif finding_id == "mtu-encapsulation-overhead":
        assert has_row(finding, component_id=values["component_id"], reason_code=values["reason"], count=values["dropped"],
                       offload=f"{values['encapsulation'].lower()} encapsulation")
    elif finding_id == "sriov-offload-bypass":
        assert has_row(finding, component_id=values["vmnic_component_id"], port_name=values["port"],
                       iov_weight=values["iov_offload_weight"], packets=values["host_packets_for_vm"], mac=values["mac"])
    elif finding_id == "vf-fallback":
        assert has_row(finding, if_index=values["if_index"], vf_nbls=values["vf_nbls"],
                       synthetic_nbls=values["synthetic_nbls"], current_path="synthetic")
    elif finding_id == "packets-not-delivered":
        assert sum(r["packets"] for r in ev) == values["count"]
        assert has_row(finding, last_component_id=values["last_component_id"], last_edge_id=values["last_edge_id"])
    elif finding_id == "nat-port-exhaustion":
        assert has_row(finding, where=f"NAT instance {values['instance']}", protocol=values["protocol"], count=values["events"])
    elif finding_id == "tcp-port-exhaustion":
        assert sum(r["count"] for r in ev) == values["events"]
    elif finding_id == "duplicate-ip-address":
        assert has_row(finding, address=values["address"], if_index=values["interface"],
                       compartment_id=values["compartment"], conflicting_mac=values["conflicting_mac"])
    elif finding_id == "wnv-lookup-failure":
        assert has_row(finding, virtual_subnet_id=values["vsid"], count=values["count"], reason_code=values["reason"],
                       reason_name=values["reason_name"])
    elif finding_id == "trace-events-lost":
        assert has_row(finding, events_lost=values["events_lost"])
    elif finding_id == "trace-payload-truncated":
        assert has_row(finding, logged_size=values["logged_size"], payload_truncated=values["truncated_events"])
    elif finding_id == "trace-circular-wrapped":
        (row,) = ev
        assert row["circular"] is True
        # the truth's first_event_filetime is the cut (everything older was overwritten): the first kept
        # packet is at or after it, within a packet interval or so (the scenario sends 50 packets/s)
        cut = filetime_seconds(values["first_event_filetime"] - values["start_filetime"])
        assert cut - 1e-6 <= row["first_packet_delay_seconds"] < cut + 0.5
    else:  # a new truth id must get its key-value check here
        raise AssertionError(f"no key-value check for {finding_id}")


@pytest.mark.parametrize("name", scenario_names())
def test_expected_findings_carry_the_truths_key_values(results, name):
    truth, findings, _ = results[name]
    for expected in truth["expect"]:
        finding = findings[RULE_FOR[expected["finding"]]]
        check_values(expected["finding"], expected["values"], finding)


@pytest.mark.parametrize("name", [n for n in scenario_names()])
def test_drop_rate_and_paths_cover_every_drop_group_of_the_truth(results, name):
    truth, findings, _ = results[name]
    groups = {(d["component_id"], d["reason"]): d["count"] for d in truth.get("drops", [])}
    if not groups:
        assert "drop-rate" not in findings and "drop-paths" not in findings
        return
    rate = {(r["component_id"], r["reason_code"]): r for r in rows(findings["drop-rate"])}
    assert {k: r["count"] for k, r in rate.items()} == groups
    for row in rate.values():
        assert row["first_seen"] <= row["last_seen"] and row["peak_per_second"] >= row["mean_per_second"] > 0
        assert row["expected"] in ("suspicious", "expected (policy)", "expected (by design)")
    paths = rows(findings["drop-paths"])
    assert {p["drop_reason_code"] for p in paths} == {reason for _, reason in groups}
    for p in paths:
        assert p["path"].count(" > ") == p["hop_count"] - 1


def test_a_badly_captured_healthy_host_gets_only_trace_quality_findings(results):
    # lossy-trace: healthy traffic captured badly; its findings say what the trace cannot answer
    # and are not network problems
    _, findings, _ = results["lossy-trace"]
    assert findings
    for finding in findings.values():
        assert finding.severity == "info" and {"trace", "quality"} <= set(finding.tags), finding.rule_id
