"""Every synthesized scenario (diag/synth, issue 3) read back into facts.

The scenarios encode their events with their own encoders (diag/synth/<provider>.py), written from
the same public layouts but separately from the decoders, and say in their ground truth what a
diagnosis must find. Here: every event decodes (no event without a layout, none that does not fit)
and the facts carry the values the truth names.
"""

from __future__ import annotations

import json

import pytest

from factscan import by_kind, scan_facts
from diag.hostinfo import load_host_info

generate = pytest.importorskip("diag.synth.generate", reason="the scenario library (issue 3) is not here")
INTERNAL = {"68fdd900-4a3e-11d1-84f4-0000f80464e3"}


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    out = {}
    folder = tmp_path_factory.mktemp("scenarios")
    for name in generate.scenario_names():
        result = generate.synthesize(name, folder / f"{name}.etl")
        truth = json.loads(result.truth.read_text())
        info = load_host_info(result.host_info) if result.host_info else None
        facts = scan_facts(result.trace, info)
        out[name] = (facts, {e["finding"]: e["values"] for e in truth["expect"]})
    return out


def values(scenarios, name: str, finding: str):
    if name not in scenarios:
        pytest.skip(f"no scenario {name!r}")
    facts, expect = scenarios[name]
    return by_kind(facts.facts), expect[finding]


def test_every_scenario_event_decodes(scenarios):
    """...but the events of a provider the truth says is not decoded (written with no layout on purpose)."""
    for name, (result, expect) in scenarios.items():
        decode = result.scan.summary.decode
        assert decode.decode_errors == 0, name
        meant = {p["guid"]: p["not_decoded"] for p in expect.get("provider-not-decoded", {}).get("providers", [])}
        undecodable: dict[str, int] = {}
        for u in decode.undecodable:
            if u["provider"] not in INTERNAL:
                undecodable[u["provider"]] = undecodable.get(u["provider"], 0) + u["no_layout"]
        assert undecodable == meant, name
        assert result.scan.summary.pktmon.malformed_packet_events == 0, name


def test_vmswitch_no_delivery_shows_where_packets_stopped(scenarios):
    kinds, v = values(scenarios, "vmswitch-no-delivery", "packets-not-delivered")
    stopped = [r for r in kinds["packet_route"] if (r.last_component_id, r.last_edge_id) == (v["last_component_id"],
                                                                                          v["last_edge_id"])]
    assert sum(r.packets for r in stopped) == v["count"] and not any(r.dropped for r in stopped)
    delivered = [r for r in kinds["packet_route"] if r.last_component_id == v["destination_component_id"]]
    assert sum(r.packets for r in delivered) == v["delivered"]


def test_overlapping_compartments_from_the_trace(scenarios):
    kinds, v = values(scenarios, "overlapping-compartments", "overlapping-compartment-subnets")
    subnets = {s.subnet: s for s in kinds["subnet"]}
    assert set(v["prefixes"]) <= set(subnets)
    assert subnets[v["overlap"]].overlapping
    assert set(v["compartments"]) <= {c for p in v["prefixes"] for c in subnets[p].compartments}


def test_overlapping_compartments_from_host_info(scenarios):
    kinds, v = values(scenarios, "overlapping-compartments-hostinfo", "overlapping-compartment-subnets")
    subnets = {s.subnet: s for s in kinds["subnet"]}
    assert set(v["prefixes"]) <= set(subnets) and subnets[v["overlap"]].overlapping
    assert {c for p in v["prefixes"] for c in subnets[p].compartments} == set(v["compartments"])
    assert any("host-info" in c.sources for c in kinds["compartment"])


def test_duplicate_address(scenarios):
    kinds, v = values(scenarios, "dad-failure", "duplicate-ip-address")
    (dad,) = kinds["dad_failure"]
    assert (dad.address, dad.if_index, dad.compartment_id, dad.conflicting_mac.lower()) == \
        (v["address"], v["interface"], v["compartment"], v["conflicting_mac"])


def test_nat_and_tcp_port_exhaustion(scenarios):
    kinds, v = values(scenarios, "winnat-port-exhaustion", "nat-port-exhaustion")
    by_source = {p.source: p for p in kinds["port_exhaustion"]}
    assert (by_source["WinNat"].count, by_source["WinNat"].protocol) == (v["events"], v["protocol"])
    (nat,) = [n for n in kinds["nat"] if n.instance_name == v["instance"]]
    assert (nat.prefix, nat.port_pool_exhausted) == (v["prefix"], v["events"])
    _, tcp = values(scenarios, "winnat-port-exhaustion", "tcp-port-exhaustion")
    assert by_source["TCPIP"].count == tcp["events"]


def test_wnv_lookup_failure(scenarios):
    kinds, v = values(scenarios, "wnv-lookup-failure", "wnv-lookup-failure")
    (lookup,) = [l for l in kinds["wnv_lookup"] if l.outcome == "failed"]
    assert (lookup.virtual_subnet_id, lookup.count, lookup.reason_code, lookup.reason_name) == \
        (v["vsid"], v["count"], v["reason"], v["reason_name"])
    assert (lookup.evidence[0]["src"], lookup.evidence[0]["dst"]) == (v["source_ca"], v["destination_ca"])


def test_vf_fallback(scenarios):
    kinds, v = values(scenarios, "vf-fallback", "vf-fallback")
    (path,) = [p for p in kinds["data_path"] if p.if_index == v["if_index"]]
    assert (path.vf_nbls, path.synthetic_nbls, path.current_path) == (v["vf_nbls"], v["synthetic_nbls"], "synthetic")


def test_sriov_weight_on_the_port_is_a_failed_request(scenarios):
    # VmSwitch 94 is "Failed to complete offload policy operation": the weight was asked for, and it is a failure
    kinds, v = values(scenarios, "sriov-vf-active", "sriov-offload-bypass")
    (port,) = [p for p in kinds["vport"] if p.port_name == v["port"]]
    assert port.iov_weight_requested == v["iov_offload_weight"] and port.failures == 1
    assert port.last_failure.startswith("offload policy") and port.last_failure.endswith("Unknown")


def test_mac_spoofing_evidence(scenarios):
    kinds, v = values(scenarios, "mac-spoofing", "mac-spoofing")
    (drop,) = [d for d in kinds["pktmon_drop"] if d.reason_code == v["reason"]]
    assert drop.count == v["count"]
    assert {s["src_mac"].lower() for s in drop.sample} <= set(v["source_macs"])
    (port,) = [p for p in kinds["vport"] if p.port_name == v["port"]]
    assert port.allow_mac_spoofing is v["allow_mac_spoofing"]


def test_vlan_mismatch_segments(scenarios):
    kinds, v = values(scenarios, "vlan-mismatch", "vlan-mismatch")
    segments = {(s.segment_type, s.value) for s in kinds["segment"]}
    assert {("vlan", v["port_vlan"]), ("vlan", v["frame_vlan"])} <= segments
    (component,) = [c for c in kinds["component"] if c.component_id == v["component_id"]]
    assert (component.vlan, component.drops) == (v["port_vlan"], v["count"])


def test_mtu_encapsulation(scenarios):
    kinds, v = values(scenarios, "mtu-encapsulation", "mtu-encapsulation-overhead")
    (drop,) = [d for d in kinds["pktmon_drop"] if d.reason_code == v["reason"]]
    assert (drop.component_id, drop.count) == (v["component_id"], v["dropped"])
    offloads = {(o.offload, o.value) for o in kinds["offload"]}
    assert ("vxlan encapsulation", True) in offloads
