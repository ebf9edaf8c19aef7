"""VfpExt events → vfp_drop / vfp_rule / vfp_port facts, the join with pktmon's drops, and the decoder's
preference for a schema the trace carries.

Payloads are packed here field by field as Microsoft's NetMon parser (etl_vfpext.npl) lays the events
out, with ``struct``, independently of diag/decode and of the synthesizer's encoders.
"""

from __future__ import annotations

import ipaddress
import struct

from factscan import by_kind, scan_facts
from payloads import write_events
from diag.decode import Decoded, hns, vfp
from diag.facts.builder import FactBuilder
from diag.facts.models import PacketDropGroup
from diag.facts.vfp import VfpCollector
from diag.read import open_trace

PORT = "6B4A85CC-55A1-4C9F-8C85-44C2A33AAE4A"


def wstr(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


def ip(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def rule_match(port: bytes, rule: str, rule_type: int, src: str, dst: str, sport: int, dport: int,
               layer: str = "ACL_LAYER", group: str = "ACL_OUT") -> bytes:
    """101 V4RuleMatch: PortId, Direction, LayerId, GroupId, RuleId, RuleType, addresses, ports, protocol,
    IsTcpSyn (BOOL), Status."""
    return (port + bytes([0]) + wstr(layer) + wstr(group) + wstr(rule) + bytes([rule_type]) + ip(src) + ip(dst)
            + struct.pack(">HH", sport, dport) + bytes([6]) + struct.pack("<II", 1, 0))


def no_match(port: bytes, src: str, dst: str) -> bytes:
    """115 V4RuleNoMatch: PortId, Direction, LayerId, addresses, ports, protocol, IsTcpSyn."""
    return port + bytes([1]) + wstr("ACL_LAYER") + ip(src) + ip(dst) + struct.pack(">HH", 80, 50000) + bytes([6]) + \
        struct.pack("<I", 0)


def l4_drop(port: bytes, reason: int, src_mac: str, src: str, dst: str, sport: int) -> bytes:
    """55 L4V4Drop: PortId, Direction, Reason, SrcMacAddr, DstMacAddr, addresses, protocol, ports, IsTcpSyn."""
    return (port + bytes([0, reason]) + wstr(src_mac) + wstr("00-1D-D8-B7-1C-01") + ip(src) + ip(dst) + bytes([6])
            + struct.pack(">HH", sport, 443) + struct.pack("<I", 1))


def encap(port: bytes, vni: int) -> bytes:
    """154 Encap: PortId, Direction, SrcMacAddr, DstMacAddr, outer addresses, EncapType, GreKey."""
    return (port + bytes([0]) + wstr("00-15-5D-4A-00-01") + wstr("00-1D-D8-B7-1C-01") + ip("192.168.50.4")
            + ip("192.168.50.5") + bytes([4]) + struct.pack("<I", vni))


def nat_binding(port: bytes, action: int) -> bytes:
    """207 V4NatPortBinding: PortId, action, internal address and port, external address and port, Reference."""
    return port + bytes([action]) + ip("10.0.0.5") + struct.pack(">H", 50300) + ip("192.168.50.4") + \
        struct.pack(">H", 61000) + struct.pack("<I", 1)


def test_rule_drop_encap_and_nat_events_become_facts_per_port(tmp_path):
    named, numbered = wstr(PORT), struct.pack("<I", 7)
    events = [(101, 0, rule_match(named, "DenySql", 2, "10.0.0.5", "10.0.0.20", 50100 + n, 1433)) for n in range(3)]
    events += [(101, 0, rule_match(named, "Encap5001", 9, "10.0.0.5", "10.0.0.30", 50300, 443, layer="VNET"))]
    events += [(154, 0, encap(named, 5001)), (155, 0, named + bytes([1]))]
    events += [(101, 0, rule_match(numbered, "Encap5001", 9, "10.0.0.6", "10.0.0.30", 50400, 443, layer="VNET"))]
    events += [(115, 0, no_match(numbered, "10.0.0.30", "10.0.0.6"))]
    events += [(55, 0, l4_drop(numbered, 9, "00-15-5D-9C-21-07", "10.0.0.6", "10.0.0.30", 50700 + n)) for n in range(2)]
    events += [(207, 0, nat_binding(named, 0)), (207, 0, nat_binding(named, 1))]
    kinds = by_kind(scan_facts(write_events(tmp_path / "vfp.etl", vfp.PROVIDER, events)).facts)

    blocked = [r for r in kinds["vfp_rule"] if r.blocked]
    assert [(r.port, r.layer, r.group, r.rule, r.rule_type, r.count, r.direction) for r in blocked] == \
        [(PORT, "ACL_LAYER", "ACL_OUT", "DenySql", "Block", 3, "out")]
    assert blocked[0].destinations == "10.0.0.20 (TCP 1433)" and len(blocked[0].sample) == 3
    (missed,) = [r for r in kinds["vfp_rule"] if r.outcome == "no match"]
    assert (missed.port, missed.layer, missed.rule, missed.direction) == ("port 7", "ACL_LAYER", None, "in")
    (drop,) = kinds["vfp_drop"]
    assert (drop.port, drop.reason_code, drop.reason_name, drop.count, drop.pktmon_reason) == \
        ("port 7", 9, "MAC guard", 2, "709 Failed MAC guard")
    ports = {p.port: p for p in kinds["vfp_port"]}
    assert (ports[PORT].encap_rule_matches, ports[PORT].encapsulated, ports[PORT].decapsulated) == (1, 1, 1)
    assert (ports[PORT].encap_types, ports[PORT].isolation_ids, ports[PORT].outer_destinations) == \
        (["VXLAN"], [5001], ["192.168.50.5"])
    assert (ports[PORT].nat_bindings_created, ports[PORT].nat_bindings_deleted) == (1, 1)
    assert ports[PORT].nat_bindings[0]["external"] == "192.168.50.4:61000"
    assert (ports["port 7"].encap_rule_matches, ports["port 7"].encapsulated, ports["port 7"].drops) == (1, 0, 2)
    assert ports["port 7"].transform_logged  # the trace holds transforms (of the other port)

    (coverage,) = [c for c in kinds["provider"] if c.guid == vfp.PROVIDER]
    assert (coverage.decoded, coverage.failed) == (len(events), 0)
    named_events = sum(1 for _, _, payload in events if payload.startswith(named))
    assert coverage.layout_unsure == named_events and "unconfirmed" in coverage.layout_note


def test_an_event_that_fits_no_layout_is_counted_failed_and_an_unknown_id_not_decoded(tmp_path):
    good = rule_match(struct.pack("<I", 7), "DenySql", 2, "10.0.0.5", "10.0.0.20", 50100, 1433)
    events = [(101, 0, good), (101, 0, good + b"\x00\x00\x01"), (604, 0, good)]
    kinds = by_kind(scan_facts(write_events(tmp_path / "vfp.etl", vfp.PROVIDER, events)).facts)
    (coverage,) = [c for c in kinds["provider"] if c.guid == vfp.PROVIDER]
    assert (coverage.decoded, coverage.failed, coverage.not_decoded, coverage.status) == (1, 1, 1, "partly decoded")
    assert [r.count for r in kinds["vfp_rule"]] == [1]  # the misfit became no fact


def _drop_group(reason: int, samples: list[dict], count: int = 4) -> PacketDropGroup:
    return PacketDropGroup(component_id=2, component_name="vSwitch", component_type="VmsExtMiniport", direction="Tx",
                           reason_code=reason, reason_name="x", count=count, sample=samples)


class _Record:
    filetime, buffer_index, offset = 133_000_000_000_000_000, 0, 0


def test_the_join_with_pktmon_needs_the_same_packets_and_a_vfp_reason():
    collector = VfpCollector()
    flow = {"PortName": PORT, "Direction": 0, "Reason": 9, "SrcMacAddr": "00-15-5D-9C-21-07",
            "DstMacAddr": "00-1D-D8-B7-1C-01", "SrcIpv4Addr": "10.0.0.6", "DstIpv4Addr": "10.0.0.30",
            "IpProtocol": 6, "SrcPort": 50700, "DstPort": 443, "IsTcpSyn": True}
    collector.event(55, "L4V4Drop", flow, _Record())  # manifest names, as a trace's own schema spells them
    same = {"src": "10.0.0.6", "dst": "10.0.0.30", "protocol": "TCP", "sport": 50700, "dport": 443}
    other = {**same, "sport": 1}
    pktmon = [_drop_group(709, [same], 4), _drop_group(709, [other], 9), _drop_group(16, [same], 5)]
    (fact,) = [f for f in collector.facts(pktmon, 20348) if f.kind == "vfp_drop"]
    # only the VFP-reason group whose sample is this packet: not the other flow, not reason 16 (MAC spoofing)
    assert (fact.pktmon_drops, fact.pktmon_groups_compared, fact.pktmon_components) == (4, 2, "2 (vSwitch)")


def test_trace_schema_events_reach_the_vfp_facts_and_hns_nested_failures_count(tmp_path):
    with open_trace(write_events(tmp_path / "t.etl", vfp.PROVIDER, [(155, 0, struct.pack("<IB", 7, 0))])) as t:
        builder = FactBuilder(t.header)
        record = next(iter(t.records()))
    fields = {"PortName": PORT, "Direction": 0, "LayerId": "L", "GroupId": "G", "RuleId": "R", "RuleType": 2,
              "SrcIpv4Addr": "10.0.0.5", "DstIpv4Addr": "10.0.0.20", "SrcPort": 1, "DstPort": 1433,
              "IpProtocol": 6, "IsTcpSyn": True, "Status": 0}
    builder.event(Decoded(vfp.PROVIDER, vfp.NAME, 101, 0, "V4RuleMatch", fields, "trace-schema"), record)
    hns_guid = next(iter(hns.PROVIDERS))
    builder.event(Decoded(hns_guid, "HNS", 9, 0, "EndpointCreate", {"wilActivity": {"hresult": 0x80070490}},
                          "tracelogging"), record)
    builder.event(Decoded(hns_guid, "HNS", 9, 0, "EndpointCreate", {"wilActivity": {"hresult": 0}}, "tracelogging"),
                  record)
    kinds = by_kind(builder.facts(None))
    (rule,) = kinds["vfp_rule"]
    assert (rule.port, rule.blocked, rule.rule) == (PORT, True, "R")
    (failure,) = kinds["provider_event"]
    assert (failure.status, failure.count) == (0x80070490, 1)


def test_a_schema_the_trace_carries_wins_over_the_candidate_layouts(tmp_path):
    from diag.synth import vfp as synth_vfp
    from diag.synth.trace import TraceBuilder, TraceProfile

    builder = TraceBuilder(TraceProfile(compressed=False, cpu_count=1))
    builder.describe(synth_vfp.LAYOUTS.values())
    t = builder.profile.start_filetime + 10_000_000
    builder.add(t, synth_vfp.PROVIDER, 155, synth_vfp.encode_decap(port=PORT, direction=1))
    path = tmp_path / "schema.etl"
    builder.write(path)
    kinds = by_kind(scan_facts(path).facts)
    (coverage,) = [c for c in kinds["provider"] if c.guid == vfp.PROVIDER]
    assert (coverage.decoded, coverage.layout_unsure) == (1, 0)  # no candidate-layout note: the schema decoded it
    (port,) = kinds["vfp_port"]
    assert (port.port, port.decapsulated) == (PORT, 1)


def test_the_decoder_reads_the_port_id_form_before_the_port_name_form():
    numbered = struct.pack("<IB", 5, 1)  # port id 5 also reads as the one-character name "\x05"
    assert vfp.decode(155, 0, memoryview(numbered)) == {"port_id": 5, "direction": 1}
    named = vfp.decode(155, 0, memoryview(wstr(PORT) + bytes([1])))
    assert named["port_name"] == PORT and "unconfirmed" in named["layout_note"]


def test_vfp_state_events_that_fail_become_provider_events(tmp_path):
    # 355 SaveFailed: SrcPortId, Reason (u8), Ext1, Ext2; 304 IpSubscribe with a failing status; 358 SaveSucceeded
    save_failed = struct.pack("<IBII", 7, 3, 0, 0)
    subscribe = struct.pack("<IQIIII", 1, 0xFFFF0000, 0xC0000001, 3, 1, 1)
    saved = struct.pack("<III", 7, 4096, 0)
    path = write_events(tmp_path / "vfp.etl", vfp.PROVIDER, [(355, 0, save_failed), (304, 0, subscribe), (358, 0, saved)])
    kinds = by_kind(scan_facts(path).facts)
    got = sorted((e.event_name, e.status) for e in kinds["provider_event"])
    assert got == [("IpSubscribe", 0xC0000001), ("SaveFailed", None)]


def test_a_mapping_reads_its_ipv6_addresses_only_when_their_length_is_not_zero():
    # 251 AddMappingV4V4: PortId, SpaceId, MappingType, CustomerIpv4Addr, CustomerIpv6AddrLength, [CustomerIpv6Addr
    # when that length > 0], ProviderIpv4Addr, ProviderIpv6AddrLength, [ProviderIpv6Addr], MacAddr,
    # CustomerMacAddr, IsolationId, Flags, three BOOLs (the NetMon parser's switch on the lengths)
    def mapping(provider_v6: bytes) -> bytes:
        return (struct.pack("<I", 7) + wstr("space") + bytes([0]) + ip("10.0.0.5") + struct.pack("<I", 0)
                + ip("192.168.50.4") + struct.pack("<I", len(provider_v6)) + provider_v6 + wstr("00-15-5D-00-00-05")
                + wstr("00-15-5D-00-00-05") + struct.pack("<IIIII", 5001, 0, 1, 0, 0))
    without = vfp.decode(251, 0, memoryview(mapping(b"")))
    assert (without["customer_ipv6_addr"], without["provider_ipv6_addr"], without["isolation_id"]) == (None, None, 5001)
    v6 = ipaddress.IPv6Address("fd00::4")
    with_v6 = vfp.decode(251, 0, memoryview(mapping(v6.packed)))
    assert (with_v6["customer_ipv6_addr"], with_v6["provider_ipv6_addr"]) == (None, str(v6))


def test_flows_past_the_limit_of_a_group_are_counted_not_dropped_silently():
    from diag.facts.vfp import MAX_FLOWS

    collector = VfpCollector()
    extra = 3
    for n in range(MAX_FLOWS + extra):
        collector.event(101, "V4RuleMatch", {"port_name": PORT, "direction": 0, "layer_id": "L", "group_id": "G",
                                             "rule_id": "R", "rule_type": 2, "src_ipv4_addr": "10.0.0.5",
                                             "dst_ipv4_addr": "10.0.0.20", "src_port": 1024 + n, "dst_port": 1433,
                                             "ip_protocol": 6, "is_tcp_syn": True, "status": 0}, _Record())
    (rule,) = [f for f in collector.facts([]) if f.kind == "vfp_rule"]
    assert rule.count == MAX_FLOWS + extra and collector.cuts.count == extra
