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
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from diag.api import check
from diag.engine import load_rules
from diag.facts.tables import value_name
from diag.synth import scenario_names, synthesize
from diag.synth.scenarios import FINDINGS
from test_rules_by_drop_reason import REASON_RULES

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
    "vmnic-disconnected": "vmnic-disconnected",
    "vport-deleted": "vport-deleted",
    "vport-policy-failure": "vport-policy-failures",
    "vswitch-operation-failure": "vswitch-operation-failures",
    "mac-moved": "mac-moved-between-ports",
    "trace-events-lost": "trace-incomplete",
    "trace-payload-truncated": "trace-payload-truncated",
    "trace-circular-wrapped": "trace-circular-wrapped",
    "nat-default-route": "nat-default-route-in-compartment",
    "neighbor-unreachable": "neighbor-unreachable",
    "overlapping-subnets-isolated": "overlapping-subnets-isolated",
    "provider-not-decoded": "provider-not-decoded",
    "sdn-provider-failure": "sdn-provider-failures",
    "same-drop-reason-several-components": "same-drop-reason-on-several-components",
    "drops-in-lossy-trace": "drops-in-lossy-trace",
    "team-member-flaps": "team-member-flaps",
    "team-member-down": "team-member-down",
    "rdma-offload-bypass": "rdma-offload-bypass",
    "tcp-resets-on-vport": "tcp-resets-on-vport",
    "tcp-retransmissions-on-vport": "tcp-retransmissions-on-vport",
    "arp-nd-unanswered": "arp-nd-unanswered",
    "trace-no-packets": "trace-no-packets",
    "vfp-rule-blocked": "vfp-rule-blocked",
    "vfp-port-drops": "vfp-port-drops",
    "vfp-encap-missing": "vfp-encap-missing",
}

VMSWITCH_GUID = "67dc0d66-3695-47c0-9642-33f76f7bd7ad"
PKTMON_GUID = "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"
# Scenarios whose host has container/VM vmNICs in pktmon's component list: every scenario built on
# diag.synth.scenarios.base.ContainerHost, and the demo trace (two container vmNICs, its docstring).
# vf-fallback is a guest-side trace (NetVsc and the VF, no vSwitch).
WITH_VMNICS = {name for name in scenario_names()} - {"vf-fallback"}
# Guest traces with an SR-IOV VF bonded to NetVsc (vf-fallback: "SR-IOV VF falls back to the synthetic
# path mid-trace (guest trace)": a Mellanox VF and the Hyper-V adapter with one MAC).
GUESTS_WITH_VF = {"vf-fallback"}
TCPIP_REASONS = [(601, 615), (901, 1002), (1200, 1232)]
DESTINATION_DOWN_REASONS = {5, 33, 35, 227, 719}  # media disconnected, NIC disabled, data flow off, vport down...
VFP_REASONS = (701, 719)  # pktmon's VFP range: vfp-policy-drops


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
    if any(d["reason"] in DESTINATION_DOWN_REASONS for d in truth.get("drops", [])):
        out.add("destination-down-drops")
    if any(VFP_REASONS[0] <= d["reason"] <= VFP_REASONS[1] for d in truth.get("drops", [])):
        out.add("vfp-policy-drops")
    pktmon_events = truth["trace"]["events_by_provider"].get(PKTMON_GUID, {})
    if truth["trace"]["packet_numbering"] == "per-snapshot" and (pktmon_events.get("160") or pktmon_events.get("170")):
        out.add("packet-paths-rebuilt")  # builds 26100+: every path is rebuilt from ids and content
    return out


def check_every_scenario(base, size=None, build=None) -> dict:
    """Each scenario written (at ``size``, claiming ``build``) and checked: name -> (truth, findings by rule id,
    result)."""
    out = {}
    for name in scenario_names():
        written = synthesize(name, base / f"{name}.etl", size=size, build=build)
        truth = json.loads(written.truth.read_text(encoding="utf-8"))
        run_dir = base / name
        run_dir.mkdir()
        result = check(written.trace, host_info=list(written.host_info), db_path=run_dir / "wnvdiag.db",
                       out_dir=run_dir)
        out[name] = (truth, {f.rule_id: f for f in result.run.findings}, result)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return check_every_scenario(tmp_path_factory.mktemp("scenarios"))


# Shipped rules no synthesized scenario fires, and the trace-level test that does fire them.
FIRED_ELSEWHERE = {
    "trace-cannot-answer": "tests/test_rules_samples.py (the real non-networking samples and the Gobang sample)",
    "background-drops": "tests/test_rules_samples.py (the real Finguard sample: loopback probes, a broadcast)",
    **{rule: "tests/test_rules_by_drop_reason.py" for rule in REASON_RULES},
}


def test_every_shipped_rule_fires_on_some_trace(results, per_snapshot_results):
    rules, _ = load_rules([ROOT / "rules"])
    fired = set().union(*(set(findings) for runs in (results, per_snapshot_results)
                          for _, findings, _ in runs.values()))
    assert {r.id for r in rules} - fired - set(FIRED_ELSEWHERE) == set()


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


SIZED = 3 << 20  # --size: the scenario's events plus healthy bulk copies


@pytest.fixture(scope="module")
def sized_results(tmp_path_factory):
    return check_every_scenario(tmp_path_factory.mktemp("sized"), size=SIZED)


@pytest.mark.parametrize("name", scenario_names())
def test_a_sized_scenario_still_has_exactly_its_truth(sized_results, name):
    # the healthy bulk --size adds (copies of a few packets with new ids and times) must not read as a
    # problem: no retransmissions, no drops, no undelivered packets
    truth, findings, result = sized_results[name]
    assert result.run.failure is None and result.run.rule_errors == []
    expected = {RULE_FOR[f["finding"]] for f in truth["expect"]} | derived_expectations(name, truth)
    assert set(findings) == expected, f"{name}: missing {expected - set(findings)}, unexpected {set(findings) - expected}"


PER_SNAPSHOT_BUILD = 26200  # Windows 11 25H2: pktmon gives every snapshot its own PktGroupId


@pytest.fixture(scope="module")
def per_snapshot_results(tmp_path_factory):
    return check_every_scenario(tmp_path_factory.mktemp("per-snapshot"), build=PER_SNAPSHOT_BUILD)


@pytest.mark.parametrize("name", scenario_names())
def test_a_scenario_numbered_per_snapshot_has_its_truth_and_its_values(per_snapshot_results, results, name):
    # the same scenario as builds 26100+ write it: paths, flows, TCP and ARP/ND counts must come out the same
    truth, findings, result = per_snapshot_results[name]
    assert result.run.failure is None and result.run.rule_errors == []
    assert truth["trace"]["os_build"] == PER_SNAPSHOT_BUILD and truth["trace"]["packet_numbering"] == "per-snapshot"
    expected = {RULE_FOR[f["finding"]] for f in truth["expect"]} | derived_expectations(name, truth)
    assert set(findings) == expected, f"{name}: missing {expected - set(findings)}, unexpected {set(findings) - expected}"
    for want in truth["expect"]:
        check_values(want["finding"], want["values"], findings[RULE_FOR[want["finding"]]])
    trace = next(f for f in result.run.facts if f["kind"] == "trace")
    assert trace["packet_numbering"] in (None, "per-snapshot")
    # as many packets as the writer wrote (the per-packet run keys them by the writer's own PktGroupIds)
    per_packet = next(f for f in results[name][2].run.facts if f["kind"] == "trace")
    assert trace["packet_paths"] == trace["paths_rebuilt"] == per_packet["packet_paths"]
    assert trace["path_links_ambiguous"] == 0


@pytest.mark.parametrize("build", [None, PER_SNAPSHOT_BUILD])
def test_a_healthy_host_large_enough_to_split_paths_reports_nothing(tmp_path, build):
    # 64 MB: the scenario's packets are far apart in the file from bulk buffers written between them, so the
    # tracking window lets some paths go before their last snapshot: each must be joined up again, not read
    # as a packet the vSwitch never delivered
    written = synthesize("healthy-container-host", tmp_path / "h.etl", size=64 << 20, build=build)
    truth = json.loads(written.truth.read_text(encoding="utf-8"))
    result = check(written.trace, db_path=tmp_path / "h.db", out_dir=tmp_path)
    trace = next(f for f in result.run.facts if f["kind"] == "trace")
    if build is None:
        assert trace["paths_split"] > 0  # the window did split paths: this size tests what it must
    expected = derived_expectations("healthy-container-host", truth)
    assert {f.rule_id for f in result.run.findings} == expected
    assert trace["packet_paths"] == truth["trace"]["pktmon_packets"]  # every packet one path, none split in two


def rows(finding) -> list[dict]:
    """Evidence rows with the alias prefix dropped (``d.count`` -> ``count``)."""
    return [{k.split(".", 1)[-1]: v for k, v in row.items()} for row in finding.evidence]


def has_row(finding, **values) -> bool:
    return any(all(str(r.get(k)).lower() == str(v).lower() for k, v in values.items()) for r in rows(finding))


def filetime_seconds(ft: int) -> float:
    return ft / 10_000_000


def utc_from_filetime(ft: int) -> datetime:
    """FILETIME (100 ns since 1601) to UTC, truncated to the microsecond as datetimes are."""
    return datetime(1601, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ft // 10)


def as_time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


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
        for route in values.get("routes", []):  # the route that joins them, named in the evidence
            assert f"{route['compartment']}: {route['prefix']} via {route['next_hop']}" in row["routes"]
    elif finding_id == "mtu-encapsulation-overhead":
        assert has_row(finding, component_id=values["component_id"], reason_code=values["reason"], count=values["dropped"],
                       offload=f"{values['encapsulation'].lower()} encapsulation")
    elif finding_id == "sriov-offload-bypass":
        assert has_row(finding, component_id=values["vmnic_component_id"], port_name=values["port"],
                       iov_weight_requested=values["iov_offload_weight"], packets=values["host_packets_for_vm"], mac=values["mac"])
    elif finding_id == "vf-fallback":
        assert has_row(finding, if_index=values["if_index"], vf_nbls=values["vf_nbls"],
                       synthetic_nbls=values["synthetic_nbls"], current_path="synthetic", switches=1)
        (row,) = ev  # when it switched: the truth's last VF NBL and first synthetic NBL, to the microsecond
        assert as_time(row["last_vf_nbl"]) == utc_from_filetime(values["last_vf_filetime"])
        assert as_time(row["fell_back_at"]) == utc_from_filetime(values["first_synthetic_filetime"])
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
    elif finding_id == "vmnic-disconnected":
        assert len(ev) == values["nics_down"]
        assert has_row(finding, nic_name=values["nic_name"], nic_friendly_name=values["nic_friendly_name"],
                       port_name=values["port_name"], switch_name=values["switch_name"],
                       media_connected=values["media_connected"], operational=values["operational"])
    elif finding_id == "vport-deleted":
        assert len(ev) == values["ports_deleted"]
        assert has_row(finding, port_name=values["port_name"], switch_name=values["switch_name"],
                       nic_friendly_name=values["nic_friendly_name"], state="deleted")
    elif finding_id == "vport-policy-failure":
        assert len(ev) == len(values["ports"])
        by_port = {r["port_name"]: r for r in ev}
        for port in values["ports"]:
            assert has_row(finding, port_name=port["port_name"], nic_friendly_name=port["nic_friendly_name"],
                           switch_name=port["switch_name"], failures=port["failures"],
                           vlan_failures=port["vlan_failures"]), (port, ev)
            last = by_port[port["port_name"]]["last_failure"]
            if "status" in port:
                assert f"0x{port['status']:08x}" in last.lower()
            if "fail_reason" in port:  # named by the shipped event catalogue (the NetMon parser's value map)
                assert value_name("vmswitch", "policy_fail_reason", port["fail_reason"]) in last
    elif finding_id == "vswitch-operation-failure":
        (row,) = ev
        assert (row["switch_name"], row["friendly_name"], row["failures"]) == \
            (values["switch_name"], values["friendly_name"], values["failures"])
        assert values["event"] in row["last_failure"] and f"0x{values['status']:08x}" in row["last_failure"].lower()
    elif finding_id == "mac-moved":
        assert len(ev) == len(values["moves"])
        for move in values["moves"]:
            assert has_row(finding, mac=values["mac"], from_port=move["from_port"], to_port=move["to_port"],
                           count=move["count"], prevented=values["prevented"]), (move, ev)
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
    elif finding_id == "nat-default-route":
        (row,) = ev  # only the compartment WinNat named
        assert (row["compartment_id"], row["interfaces"], row["nat_default_route"]) == \
            (values["compartment"], values["interfaces_in_compartment"], True)
    elif finding_id == "neighbor-unreachable":
        got = sorted((r["address"], r["if_index"], r["compartment_id"], r["unreachable"], r["reachable"], r["state"])
                     for r in ev)
        assert got == sorted((n["address"], n["interface"], n["compartment"], n["unreachable"], 0, "Unreachable")
                             for n in values["neighbors"]), ev
    elif finding_id == "overlapping-subnets-isolated":
        (row,) = ev
        assert [row["compartment_a"], row["compartment_b"]] == values["compartments"]
        assert [row["prefix_a"], row["prefix_b"]] == values["prefixes"] and row["overlap"] == values["overlap"]
        assert [row["vsids_a"], row["vsids_b"]] == [str(v) for v in values["vsids"]]
        assert row["source"] == values["source"]
    elif finding_id == "provider-not-decoded":
        keys = ("name", "guid", "status", "events", "decoded", "not_decoded")
        assert sorted(tuple(r[k] for k in keys) for r in ev) == sorted(tuple(p[k] for k in keys)
                                                                       for p in values["providers"]), ev
    elif finding_id == "sdn-provider-failure":
        keys = ("provider", "event_name", "event_id", "status", "count")
        assert sorted((tuple(r[k] for k in keys) for r in ev), key=str) == \
            sorted((tuple(e[k] for k in keys) for e in values["events"]), key=str), ev
    elif finding_id == "same-drop-reason-several-components":
        raw = finding.evidence  # a.* and b.* are the two components of a pair: keep the prefixes
        ids = sorted(c["component_id"] for c in values["components"])
        assert sorted((r["a.component_id"], r["b.component_id"]) for r in raw) == \
            [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
        assert {(r["a.reason_code"], r["a.reason_name"]) for r in raw} == {(values["reason"], values["reason_name"])}
        counts = {r["a.component_id"]: r["a.count"] for r in raw} | {r["b.component_id"]: r["b.count"] for r in raw}
        assert counts == {c["component_id"]: c["count"] for c in values["components"]}
    elif finding_id == "drops-in-lossy-trace":
        got = sorted((r["events_lost"], r["buffers_lost"], r["component_id"], r["reason_code"], r["count"]) for r in ev)
        assert got == sorted((values["events_lost"], values["buffers_lost"], g["component_id"], g["reason"], g["count"])
                             for g in values["groups"])
    elif finding_id in ("team-member-flaps", "team-member-down"):
        (row,) = [r for r in ev if r["member_name"] == values["member"]]
        assert (row["switch_friendly_name"], row["member_friendly_name"], row["net_cfg_instance_id"], row["team"]) == \
            (values["switch"], values["member_friendly_name"], values["net_cfg_instance_id"], "SET")
        assert (row["disconnects"], row["reconnects"], row["current_state"]) == \
            (values["disconnects"], values["reconnects"], values["current_state"])
        if finding_id == "team-member-flaps":
            assert as_time(row["first_change"]) == utc_from_filetime(values["first_change_filetime"])
            assert as_time(row["last_change"]) == utc_from_filetime(values["last_change_filetime"])
        else:
            assert as_time(row["last_change"]) == utc_from_filetime(values["down_since_filetime"])
    elif finding_id == "rdma-offload-bypass":
        assert has_row(finding, port_name=values["port"], nic_name=values["nic"],
                       nic_friendly_name=values["nic_friendly_name"], rdma_weight=values["rdma_weight"])
        assert all(r["packet_events"] > 0 for r in ev)
    elif finding_id in ("tcp-resets-on-vport", "tcp-retransmissions-on-vport"):
        # only the vmNIC the scenario wrote the resets / repeated segments for, with the counts it wrote
        assert [r["component_id"] for r in ev] == [values["component_id"]], ev
        assert has_row(finding, **values), (values, ev)
    elif finding_id == "trace-no-packets":
        (row,) = ev
        assert row["packet_events"] == 0 and row["events"] > 0 and row["status"] == "decoded"
    elif finding_id == "arp-nd-unanswered":
        got = sorted((r["protocol"], r["target"], r["requester_mac"].lower(), r["component_id"], r["requests"],
                      r["answers"]) for r in ev)
        assert got == sorted((u["protocol"], u["target"], u["requester_mac"].lower(), u["component_id"],
                              u["requests"], 0) for u in values["unanswered"]), ev
    elif finding_id == "vfp-rule-blocked":
        (row,) = ev
        assert (row["port"], row["layer"], row["group"], row["rule"], row["rule_type"], row["count"]) == \
            (values["port"], values["layer"], values["group"], values["rule"], "Block", values["count"])
        assert values["destination"] in row["destinations"]
    elif finding_id == "vfp-port-drops":
        (row,) = ev
        assert (row["port"], row["reason_code"], row["reason_name"], row["count"]) == \
            (values["port"], values["reason"], values["reason_name"], values["count"])
        assert (row["pktmon_drops"], row["pktmon_reason"]) == (values["pktmon_drops"], values["pktmon_reason"])
    elif finding_id == "vfp-encap-missing":
        (row,) = ev
        assert (row["port"], row["encap_rule_matches"], row["encapsulated"]) == \
            (values["port"], values["encap_rule_matches"], values["encapsulated"])
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


@pytest.mark.parametrize("name", scenario_names())
def test_no_report_shows_none(results, name, tmp_path):
    # every scenario's reports, all findings shown: an empty value reads "–" or is left out, never "None"
    import re

    from diag.report import render

    _, _, result = results[name]
    written = render(result.run.model_copy(update={"min_severity": "info"}), "md,html,csv", tmp_path)
    for files in written.values():
        for path in files:
            assert not re.search(r"\bNone\b", path.read_text(encoding="utf-8")), path.name
