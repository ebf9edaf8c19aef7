"""The host's network model: host information merged with trace facts, subnets and their overlaps,
provider coverage, the knowledge files behind the decoders, and the fact registry."""

from __future__ import annotations

import uuid

import pytest
import yaml

from factscan import by_kind, scan_facts
from payloads import counted, write_events
from test_decode_tcpip import address_event
from test_hostinfo import ALL_COMPARTMENTS, NETROUTE, SEED_IPCONFIG, SEED_NETIP
from diag.decode import Decoded, hns, netvsc, tcpip, vfp, vmswitch, winnat, wnv
from diag.facts import FACT_MODELS, scalar_fields
from diag.facts.builder import FactBuilder
from diag.facts.network import NETWORK_FACT_MODELS
from diag.facts.tables import load_catalogue, load_oob_slots, load_providers
from diag.hostinfo import load_host_info
from diag.read import open_trace
from diag.resources import data_dir


def host_files(tmp_path, **texts):
    paths = []
    for name, text in texts.items():
        path = tmp_path / f"{name}.txt"
        path.write_text(text)
        paths.append(path)
    return load_host_info(paths)


def test_host_info_becomes_the_same_facts_as_the_trace(tmp_path):
    info = host_files(tmp_path, ipconfig=SEED_IPCONFIG, netip=SEED_NETIP)
    trace = write_events(tmp_path / "t.etl", tcpip.PROVIDER, [(1127, 1, address_event(16, "172.23.181.37", 2))])
    kinds = by_kind(scan_facts(trace, info).facts)
    (compartment,) = kinds["compartment"]
    assert (compartment.compartment_id, compartment.sources, compartment.default_gateways) == \
        (2, ["TCPIP", "host-info"], ["172.23.176.1"])
    (iface,) = kinds["interface"]
    assert (iface.if_index, iface.alias, iface.compartment_id, iface.sources) == \
        (16, "vEthernet (Container NIC c337484d)", 2, ["TCPIP", "host-info"])
    v4 = next(a for a in kinds["address"] if a.address == "172.23.181.37")
    assert (v4.subnet, v4.compartment_id, v4.sources, v4.state) == ("172.23.176.0/20", 2, ["TCPIP", "host-info"], "preferred")
    assert kinds["trace"][0].host_info_files == 2


def test_the_same_subnet_in_two_compartments_overlaps(tmp_path):
    overlapping = ALL_COMPARTMENTS.replace("172.30.16.5(Preferred)", "172.30.18.9(Preferred)")
    info = host_files(tmp_path, ipconfig=overlapping)
    trace = write_events(tmp_path / "empty.etl", tcpip.PROVIDER, [])
    subnets = {s.subnet: s for s in by_kind(scan_facts(trace, info).facts)["subnet"]}
    shared = subnets["172.30.16.0/20"]
    assert (shared.compartments, shared.compartment_count, shared.overlapping) == ([1, 3], 2, True)
    assert not subnets["10.20.30.0/24"].overlapping


def test_a_route_from_get_netroute_joins_overlapping_compartments(tmp_path):
    # compartments 1 and 3 both hold 172.30.16.0/20; compartment 3's container routes 172.30.24.0/21 (inside it,
    # more specific) via 172.30.16.1: host info alone says the two meet through that route
    overlapping = ALL_COMPARTMENTS.replace("172.30.16.5(Preferred)", "172.30.18.9(Preferred)")
    info = host_files(tmp_path, ipconfig=overlapping, routes=NETROUTE)
    trace = write_events(tmp_path / "empty.etl", tcpip.PROVIDER, [])
    facts = by_kind(scan_facts(trace, info).facts)
    (pair,) = [o for o in facts["subnet_overlap"] if {o.compartment_a, o.compartment_b} == {1, 3}]
    assert (pair.meet_via, pair.meets, pair.source) == ("route", True, "host-info")
    assert pair.routes == "3: 172.30.24.0/21 via 172.30.16.1 (if 23)"
    routes = {(r.compartment_id, r.destination, r.next_hop, r.on_link) for r in facts["ip_route"]}
    assert (3, "172.30.16.0/20", None, True) in routes and (1, "0.0.0.0/0", "172.30.16.254", False) in routes


def test_nested_subnets_of_different_compartments_overlap(tmp_path):
    text = SEED_IPCONFIG + "\nipconfig\n" + SEED_IPCONFIG.replace("Compartment 2", "Compartment 4").replace(
        "255.255.240.0", "255.255.255.0").replace("Container NIC c337484d", "Container NIC 77").replace("%16", "%40")
    info = host_files(tmp_path, ipconfig=text)
    trace = write_events(tmp_path / "empty.etl", tcpip.PROVIDER, [])
    subnets = {s.subnet: s for s in by_kind(scan_facts(trace, info).facts)["subnet"]}
    assert subnets["172.23.176.0/20"].overlaps == ["172.23.181.0/24"]
    assert subnets["172.23.181.0/24"].overlapping


def test_provider_coverage_reports_present_but_not_decoded(tmp_path):
    hns_guid = next(iter(hns.PROVIDERS))
    path = tmp_path / "mixed.etl"
    from diag.synth.etlwriter import EtlWriter

    with EtlWriter(path, logger_name="NetTrace") as w:
        w.write_event(uuid.UUID(hns_guid), 7, 0, b"\x01\x02\x03\x04")
        w.write_event(uuid.UUID(vmswitch.PROVIDER), 21, 0, counted("NIC") + counted("Adapter"))
        w.write_event(uuid.UUID(vmswitch.PROVIDER), 21, 0, b"\x00")
    coverage = {c.name: c for c in by_kind(scan_facts(path).facts)["provider"]}
    assert coverage["Microsoft-Windows-Host-Network-Service"].status == "present but not decoded"
    vms = coverage["Microsoft-Windows-Hyper-V-VmSwitch"]
    assert (vms.status, vms.decoded, vms.failed) == ("partly decoded", 1, 1)


def test_failure_events_of_self_describing_providers_become_facts(tmp_path):
    with open_trace(write_events(tmp_path / "t.etl", tcpip.PROVIDER, [(1127, 1, address_event(1, "10.0.0.1", 1))])) as t:
        builder = FactBuilder(t.header)
        record = next(r for r in t.records() if r.provider == tcpip.PROVIDER)
    guid = next(iter(hns.PROVIDERS))
    for name, fields in (("EndpointCreateFailed", {"Status": 0}), ("EndpointCreated", {"Status": 0}),
                         ("EndpointCreated", {"HResult": 0x80070490})):
        builder.event(Decoded(guid, "HNS", 12, 0, name, fields, "tracelogging"), record)
    events = {(e.event_name, e.status) for e in by_kind(builder.facts(None))["provider_event"]}
    assert events == {("EndpointCreateFailed", 0), ("EndpointCreated", 0x80070490)}


def test_every_network_fact_kind_is_registered_and_avoids_reserved_fields():
    for kind, model in NETWORK_FACT_MODELS.items():
        assert FACT_MODELS[kind] is model
        assert not {"id", "sid"} & set(model.model_fields), kind
        assert "kind" in scalar_fields(model)


def test_knowledge_files_validate_and_every_entry_has_a_source():
    catalogue, providers, slots = load_catalogue(), load_providers(), load_oob_slots()
    assert {"vmswitch", "netvsc", "tcpip", "winnat", "wnv"} <= set(catalogue.providers)
    for provider in providers.providers.values():
        assert provider.source
    for slot in [*slots.slots.values(), *slots.later_names]:
        assert slot.source
    assert slots.slots[4].status == "confirmed" and slots.slots[8].status == "confirmed"


@pytest.mark.parametrize("module", [vmswitch, netvsc, tcpip, winnat, wnv, vfp])
def test_the_event_catalogue_names_every_decoded_event_as_the_decoder_does(module):
    key = {vmswitch: "vmswitch", netvsc: "netvsc", tcpip: "tcpip", winnat: "winnat", wnv: "wnv", vfp: "vfpext"}[module]
    entry = load_catalogue().providers[key]
    assert entry.guid == module.PROVIDER and entry.name == module.NAME
    assert set(entry.events) == set(module.EVENT_NAMES)
    for event_id, event in entry.events.items():
        assert event.name == module.event_name(event_id, event.versions[0])


def test_knowledge_errors_name_the_file_and_key(tmp_path):
    from diag.facts.tables import load_providers as load
    from diag.knowledge import KnowledgeError

    broken = yaml.safe_load((data_dir("knowledge") / "providers.yaml").read_text())
    broken["providers"]["vmswitch"]["decoder"] = "magic"
    path = tmp_path / "providers.yaml"
    path.write_text(yaml.safe_dump(broken))
    with pytest.raises(KnowledgeError, match=r"providers\.yaml: key providers\.vmswitch\.decoder"):
        load(path)


def test_pktmon_property_types_confirmed_by_the_traces_own_value_maps():
    from diag import knowledge

    assert [knowledge.property_type_name(n) for n in (13, 14, 15, 16, 17)] == \
        ["IP Address", "IpIfIndex", "VSID", "VLAN", "Compartment ID"]
    assert knowledge.component_type_name(12) == "Slbmux"


def test_ndiscap_capture_points_vlans_flows_and_large_sends(tmp_path):
    from test_decode_ndiscap import KW_RECEIVE, KW_SEND, KW_START_END, KW_VMSWITCH, fragment_1001, vmswitch_1003
    from test_frames import ether, ipv4, tcp
    from diag.decode import ndiscap

    small = ether(0x0800, ipv4(6, tcp(49152, 443, 0x18) + b"\x00" * 10))
    large = ether(0x0800, ipv4(6, tcp(49152, 443, 0x10) + b"\x00" * 3000, total=0))  # LSOv2: IP length 0
    reply = ether(0x0800, ipv4(6, tcp(443, 49152, 0x10), src=bytes([10, 0, 1, 9]), dst=bytes([10, 0, 0, 5])))
    path = write_events(tmp_path / "cap.etl", ndiscap.PROVIDER, [
        (1001, 0, fragment_1001(small), KW_SEND | KW_START_END | 0x1),
        (1001, 0, fragment_1001(large), KW_SEND | KW_START_END | 0x1),
        (1003, 0, vmswitch_1003(reply, vlan=107, rss=1), KW_VMSWITCH | KW_RECEIVE | KW_START_END),
    ])
    kinds = by_kind(scan_facts(path).facts)
    points = {(p.lower_if_index, p.source_port_id): p for p in kinds["capture_point"]}
    nic = points[(9, None)]
    assert (nic.packets_out, nic.large_send_frames, nic.link_type) == (2, 1, "ethernet")
    port = points[(9, 42)]
    assert (port.source_port_name, port.nic_name, port.packets_in, port.vlans) == \
        ("8E4A-PORT", "Container NIC c337484d", 1, [107])
    (lso,) = kinds["offload"]
    assert (lso.offload, lso.count) == ("large send (LSO)", 1)
    flows = {(f.src, f.dst): f for f in kinds["flow"]}
    assert flows[("10.0.0.5", "10.0.1.9")].packets == 2 and flows[("10.0.0.5", "10.0.1.9")].reverse_seen
    assert [(s.segment_type, s.value, s.packets) for s in kinds["segment"]] == [("vlan", 107, 1)]


def test_events_the_builder_cannot_use_are_counted_not_fatal(tmp_path):
    with open_trace(write_events(tmp_path / "t.etl", tcpip.PROVIDER, [(1127, 1, address_event(1, "10.0.0.1", 1))])) as t:
        builder = FactBuilder(t.header)
        record = next(r for r in t.records() if r.provider == tcpip.PROVIDER)
    builder.event(Decoded(vmswitch.PROVIDER, vmswitch.NAME, 230, 0, "EncapsulationOffload", {"switch_name": "S"}, "fast"),
                  record)
    builder.event(Decoded(vmswitch.PROVIDER, vmswitch.NAME, 25, 1, None, {"MacAddress": "00"}, "catalogue"), record)
    (trace,) = by_kind(builder.facts(None))["trace"]
    assert (trace.event_errors, trace.events_not_used) == (1, 1)
    assert trace.first_error.startswith("Microsoft-Windows-Hyper-V-VmSwitch event 230: KeyError")


def test_a_capped_list_field_counts_what_it_left_out(tmp_path):
    # 70 addresses on one interface of compartment 2: the interface and compartment facts list 64 each,
    # and the trace fact's not_kept counts the 6 + 6 left out
    extra = 70
    events = [(1127, 1, address_event(21, f"10.9.{n // 200}.{n % 200 + 1}", 2)) for n in range(extra)]
    facts = by_kind(scan_facts(write_events(tmp_path / "many.etl", tcpip.PROVIDER, events)).facts)
    (iface,) = [i for i in facts["interface"] if i.if_index == 21]
    (compartment,) = [c for c in facts["compartment"] if c.compartment_id == 2]
    assert len(iface.addresses) == len(compartment.addresses) == 64
    assert len(facts["address"]) == extra
    (span,) = facts["trace"]
    assert span.not_kept == 2 * (extra - 64)


def test_lbfo_events_known_only_by_their_messages_are_named_and_the_troubled_ones_counted(tmp_path):
    # libyal's MsLbfoProvider.sys message table: 9 "Dropping NBLs on Member %1", 3 "Using Member %1 for load
    # balancing"; 16949 "Member Nic %2 Disconnected" (the System-log provider). Their fields have no public layout.
    lbfo, lbfo_sys = "b72c6994-9fe0-45ad-83b3-8f5885f20e0e", "387ed463-8b1b-42c9-9ef0-803fdfd5d94e"
    opaque = b"\x01\x02\x03\x04"
    path = write_events(tmp_path / "lbfo.etl", lbfo, [(9, 0, opaque), (9, 0, opaque), (3, 0, opaque)])
    kinds = by_kind(scan_facts(path).facts)
    (dropped,) = kinds["provider_event"]
    assert (dropped.provider, dropped.event_name, dropped.event_id, dropped.count, dropped.status) == \
        ("Microsoft-Windows-MsLbfoEventProvider", "MemberNblsDropped", 9, 2, None)
    assert dropped.evidence[0]["event"] == "MemberNblsDropped"
    (coverage,) = [c for c in kinds["provider"] if c.guid == lbfo]
    assert (coverage.status, coverage.not_decoded) == ("present but not decoded", 3)  # named is not decoded
    path = write_events(tmp_path / "sys.etl", lbfo_sys, [(16949, 0, opaque)])
    (down,) = by_kind(scan_facts(path).facts)["provider_event"]
    assert (down.provider, down.event_name) == ("Microsoft-Windows-MsLbfoSysEvtProvider", "MemberNicDisconnected")
