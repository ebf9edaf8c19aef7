"""Microsoft-Windows-WinNat: no real sample carries it; payloads packed byte by byte.

Layouts: etl-parser's generated catalogue; meanings: WinNat's message strings ("Created NAT instance %1
for RoutingDomainId %2 (CompartmentId %5) with external interface prefix %4/%3", ...). Session and
binding addresses are SOCKADDR_IN/IN6; the instance prefix is an IPv4 address in network order.
"""

from __future__ import annotations

import pytest

from factscan import by_kind, scan_facts
from payloads import etl_parser_types, guid, ip, layout_as_etl_parser, sockaddr, u8, u16, u32, write_events, wstr
from diag.decode import EventDecoder, winnat
from diag.read import open_trace

P = winnat.PROVIDER
DOMAIN = "6f2e7c7a-8b1d-4c9e-a5f3-0d4b2c1e9a77"


def instance(name: str, prefix: str, length: int, compartment: int, flag=u8(1)) -> bytes:
    return (wstr(name) + guid(DOMAIN) + u32(length) + ip(prefix) + u32(compartment) + u32(7)
            + u32(120) + u32(120) + u32(1800) + u32(60) + u32(0) + u32(0) + flag + u32(1))


def session(event_id: int, compartment: int) -> tuple:
    return (event_id, 1, u32(16) + sockaddr("172.30.16.5", 49200) + sockaddr("93.184.216.34", 443) + u32(16)
            + sockaddr("10.0.0.4", 61000) + sockaddr("93.184.216.34", 443) + u32(6) + u32(120) + u32(1) + u32(compartment))


def dropped(reason: int, compartment: int) -> bytes:
    return (u32(reason) + u32(compartment) + u32(12) + u32(1) + u32(17) + u32(0) + u32(0) + u32(76) + u32(76)
            + u32(20) + u32(8) + u32(0) + u32(0) + u32(0) + bytes(20) + bytes(8))


EVENTS = [
    (1019, 1, instance("ContainerNAT", "172.30.16.0", 20, 3)),
    (1023, 1, instance("ContainerNAT", "172.30.16.0", 20, 3, flag=u32(1))),  # a 4-byte BOOL reading
    session(1001, 3), session(1004, 3),
    (1045, 0, wstr("ContainerNAT") + u32(4) + ip("172.30.16.5") + u32(12)),
    (1031, 0, u32(3) + u32(12)),
    (1030, 0, dropped(9, 3)), (1030, 0, dropped(9, 3)),
    (1033, 0, wstr("ContainerNAT") + u32(17)),
    (1024, 0, wstr("ContainerNAT") + u32(4) + ip("10.0.0.4") + u16(1024) + u16(65535)),
]


def test_events_round_trip(tmp_path):
    with open_trace(write_events(tmp_path / "nat.etl", P, EVENTS)) as trace:
        decoder = EventDecoder(trace.header)
        fields = [decoder.decode(r).fields for r in trace.records() if r.provider == P]
    created, rundown, s1, _s2, internal, default_route, drop, _d2, exhausted, external = fields
    assert (created["instance_name"], created["routing_domain_id"], created["prefix"], created["prefix_length"],
            created["compartment_id"], created["instance_type"]) == ("ContainerNAT", DOMAIN, "172.30.16.0", 20, 3, 1)
    assert rundown["udp_inbound_refresh"] is True and created["udp_inbound_refresh"] is True
    assert s1["internal_source"] == {"address": "172.30.16.5", "port": 49200}
    assert (s1["external_source"]["port"], s1["compartment_id"], s1["tcp_state"]) == (61000, 3, 1)
    assert (internal["address"], internal["if_index"]) == ("172.30.16.5", 12)
    assert default_route == {"compartment_id": 3, "if_index": 12}
    assert (drop["action_reason"], drop["arrival_compartment_id"], drop["ip_header"]) == (9, 3, "00" * 20)
    assert exhausted["transport_protocol"] == 17
    assert (external["address"], external["port_start"], external["port_end"]) == ("10.0.0.4", 1024, 65535)


def test_facts(tmp_path):
    kinds = by_kind(scan_facts(write_events(tmp_path / "nat.etl", P, EVENTS)).facts)
    (nat,) = kinds["nat"]
    assert (nat.prefix, nat.compartment_id, nat.external_if_index, nat.internal_addresses) == \
        ("172.30.16.0/20", 3, 7, ["172.30.16.5"])
    assert (nat.sessions_created, nat.sessions_timed_out, nat.port_pool_exhausted) == (1, 1, 1)
    (compartment,) = kinds["compartment"]
    assert compartment.compartment_id == 3 and compartment.nat_default_route
    (drop,) = kinds["drop"]
    assert (drop.provider, drop.where, drop.count, drop.reason_code) == ("WinNat", "compartment 3 interface 12", 2, 9)
    (exhausted,) = kinds["port_exhaustion"]
    assert (exhausted.where, exhausted.protocol) == ("NAT instance ContainerNAT", "UDP")


@pytest.mark.parametrize("key", sorted(winnat.LAYOUTS))
def test_layouts_agree_with_etl_parser(key):
    pytest.importorskip("etl.parsers.etw.Microsoft_Windows_WinNat")
    theirs = etl_parser_types("Microsoft_Windows_WinNat", *key)
    assert theirs is not None
    layouts = winnat.LAYOUTS[key]
    assert theirs in [layout_as_etl_parser(l.fields) for l in (layouts if isinstance(layouts, tuple) else (layouts,))]
