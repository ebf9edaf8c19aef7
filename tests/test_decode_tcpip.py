"""Microsoft-Windows-TCPIP: no real sample carries it; payloads packed byte by byte.

Layouts: the TCPIP manifest dissect.etl bundles (IpDadFailedArgs, IpInterfaceRundownArgs,
TcpipNetworkPacketDropsArgs, ... version 0) and etl-parser (later versions append CompartmentId etc.).
Address events carry IPv4Address (4 bytes) then IPv6Address sized by IpAddrLength; IPProtocol 4 or
6 says which holds the address (the manifest's TCPIP_Protocol_ValueMap).
"""

from __future__ import annotations

import pytest

from factscan import by_kind, scan_facts
from payloads import cstr, etl_parser_types, ip, layout_as_etl_parser, mac, sockaddr, u16, u32, u64, write_events
from diag.decode import EventDecoder, tcpip
from diag.read import open_trace

P = tcpip.PROVIDER


def address_event(interface: int, address: str, compartment: int, dad_state: int = 4, dl: str = "") -> bytes:
    v6 = ":" in address
    dl_bytes = mac(dl) if dl else b""
    return (u32(interface) + cstr("IPv6" if v6 else "IPv4") + u32(dad_state) + u32(len(dl_bytes)) + dl_bytes
            + u32(16 if v6 else 0) + (bytes(4) if v6 else ip(address)) + (ip(address) if v6 else b"")
            + u32(6 if v6 else 4) + u32(compartment))


def rundown_v3(if_index: int, address: str, compartment: int) -> bytes:
    return (u32(if_index) + u64(10_000_000_000) + u32(4) + ip(address) + u32(0) + u32(14) + u32(compartment)
            + u64(0) + u32(1) + u32(25) + u32(1) + u32(4) + u64(0))


def route(interface: int, prefix: str, length: int) -> bytes:
    return (u64(0xFFFF800012345678) + u32(interface) + u32(0) + u32(0) + cstr("IPv4") + u32(length)
            + u64(0xFFFFFFFF) + u64(0xFFFFFFFF) + u32(256) + u32(0) + u32(0) + u32(0) + u32(0)
            + ip(prefix) + ip("0.0.0.0") + u32(4))


EVENTS = [
    (1202, 3, rundown_v3(16, "172.23.181.37", 2)),
    (1127, 1, address_event(16, "172.23.181.37", 2)),
    (1127, 1, address_event(16, "fe80::297c:2597:40d2:59ab", 2)),
    (1145, 0, route(16, "172.23.176.0", 20)),
    (1115, 1, address_event(16, "172.23.181.40", 2, dad_state=2, dl="00-15-5D-AA-BB-CC")),
    (1215, 0, u32(17) + u32(2) + ip("10.1.1.1") + ip("172.23.181.37") + u32(0) + u32(0) + u32(7) + u32(3) + u32(4)),
    (1214, 0, u32(6) + u32(2) + u32(16) + sockaddr("172.23.181.37", 8080) + u32(16) + sockaddr("10.1.1.1", 50000)
     + u32(4) + u32(2)),
    (1324, 1, u32(16) + u32(4) + ip("172.23.176.1") + u32(6) + mac("00-15-5D-01-02-03") + u32(5) + u32(0) + u32(1)
     + u32(2)),
    (1195, 0, u64(1) + u16(50123) + u32(1) + u64(2)),
]


def test_events_round_trip(tmp_path):
    path = write_events(tmp_path / "tcpip.etl", P, EVENTS)
    with open_trace(path) as trace:
        decoder = EventDecoder(trace.header)
        rundown, v4, v6, rte, dad, net_drop, tr_drop, neigh, ports = [decoder.decode(r).fields for r in trace.records()
                                                                        if r.provider == P]
    assert (rundown["if_index"], rundown["address"], rundown["compartment_id"], rundown["metric"]) == \
        (16, "172.23.181.37", 2, 25)
    assert (v4["address"], v4["family"], v4["interface"], v4["compartment_id"]) == ("172.23.181.37", "IPv4", 16, 2)
    assert (v6["address"], v6["family"]) == ("fe80::297c:2597:40d2:59ab", "IPv6")
    assert (rte["address"], rte["destination_prefix_length"], rte["metric"]) == ("172.23.176.0", 20, 256)
    assert (dad["address"], dad["dl_address"], dad["dad_state"]) == ("172.23.181.40", "00-15-5D-AA-BB-CC", 2)
    assert (net_drop["reason"], net_drop["packet_count"], net_drop["source_ipv4"]) == (7, 3, "10.1.1.1")
    assert (tr_drop["local"], tr_drop["remote"]["port"]) == ({"address": "172.23.181.37", "port": 8080}, 50000)
    assert (neigh["ip_address"], neigh["dl_address"], neigh["old_state"], neigh["new_state"]) == \
        ("172.23.176.1", "00-15-5D-01-02-03", 5, 0)
    assert ports["port"] == 50123


def test_facts_build_the_compartment_model(tmp_path):
    kinds = by_kind(scan_facts(write_events(tmp_path / "tcpip.etl", P, EVENTS)).facts)
    (compartment,) = kinds["compartment"]
    assert compartment.compartment_id == 2 and compartment.interfaces == 1
    assert set(compartment.addresses) == {"172.23.181.37", "fe80::297c:2597:40d2:59ab"}
    (iface,) = kinds["interface"]
    assert (iface.if_index, iface.compartment_id, iface.connected) == (16, 2, True)
    v4 = next(a for a in kinds["address"] if a.address == "172.23.181.37")
    assert (v4.subnet, v4.prefix_length, v4.compartment_id) == ("172.23.176.0/20", 20, 2)  # from the on-link route
    (dad,) = kinds["dad_failure"]
    assert (dad.address, dad.conflicting_mac, dad.compartment_id) == ("172.23.181.40", "00-15-5D-AA-BB-CC", 2)
    drops = {d.reason_name: d for d in kinds["drop"]}
    assert drops["No route available"].packets == 3 and drops["No route available"].where == "network layer IPv4 UDP"
    (neighbor,) = kinds["neighbor"]
    assert (neighbor.state, neighbor.unreachable, neighbor.compartment_id) == ("Unreachable", 1, 2)
    (ports,) = kinds["port_exhaustion"]
    assert (ports.source, ports.count) == ("TCPIP", 1)


def neighbor_state(address: str, old: int, new: int, compartment: int = 2, dl: str = "") -> bytes:
    dl_bytes = mac(dl) if dl else b""
    return (u32(16) + u32(4) + ip(address) + u32(len(dl_bytes)) + dl_bytes + u32(old) + u32(new) + u32(9)
            + u32(compartment))


def test_a_neighbour_that_answers_later_is_counted_reachable(tmp_path):
    # TCPIP_NEIGHBOR_STATE_ValueMap: 1 Incomplete -> 0 Unreachable, then 1 -> 5 Reachable (with its MAC)
    events = [(1324, 1, neighbor_state("172.23.176.1", 1, 0)), (1324, 1, neighbor_state("172.23.176.1", 0, 1)),
              (1324, 1, neighbor_state("172.23.176.1", 1, 5, dl="00-15-5D-01-02-03")),
              (1324, 1, neighbor_state("172.23.176.9", 1, 0)), (1324, 1, neighbor_state("172.23.176.9", 0, 1)),
              (1324, 1, neighbor_state("172.23.176.9", 1, 0))]
    kinds = by_kind(scan_facts(write_events(tmp_path / "neighbours.etl", P, events)).facts)
    found = {n.address: (n.unreachable, n.reachable, n.state, n.mac) for n in kinds["neighbor"]}
    assert found == {"172.23.176.1": (1, 1, "Reachable", "00-15-5D-01-02-03"),
                     "172.23.176.9": (2, 0, "Unreachable", None)}


@pytest.mark.parametrize("key", sorted(tcpip.LAYOUTS))
def test_layouts_agree_with_etl_parser(key):
    """A second source for the versions etl-parser knows (its manifest predates some): one of our
    revisions is its layout. Every version and revision is checked against the per-release manifest
    field lists in test_layout_sources.py."""
    pytest.importorskip("etl.parsers.etw.Microsoft_Windows_TCPIP")
    theirs = etl_parser_types("Microsoft_Windows_TCPIP", *key)
    if theirs is None:
        pytest.skip(f"etl-parser's manifest has no tcpip {key}")
    layouts = tcpip.LAYOUTS[key]
    assert theirs in [layout_as_etl_parser(l.fields) for l in (layouts if isinstance(layouts, tuple) else (layouts,))]


@pytest.mark.parametrize(("event_id", "template"), [(1127, "IpDadFailedArgs"), (1202, "IpInterfaceRundownArgs"),
                                                    (1215, "TcpipNetworkPacketDropsArgs"),
                                                    (1214, "TcpipTransportPacketDropsArgs")])
def test_version_0_layouts_agree_with_the_manifest_dissect_bundles(event_id, template):
    """A second, independent description of version 0: the TDH-reconstructed manifest."""
    import re
    from pathlib import Path

    manifests = pytest.importorskip("dissect.etl.manifests")
    xml = (Path(manifests.__file__).parent / "xml" / f"{{{P}}}.xml").read_text()
    body = re.search(rf'<template tid="{template}">(.*?)</template>', xml, re.S).group(1)
    in_types = re.findall(r'inType="win:(\w+)"', body)
    width = {"UInt32": "u32", "UInt64": "u64", "UInt16": "u16", "IPAddrV4": "ipv4", "AnsiString": "cstr",
             "Binary": "bin"}
    ours = [f[1] for f in tcpip.LAYOUTS[(event_id, 0)].fields]
    ours = ["bin" if kind in ("mac", "ip", "sockaddr") else kind for kind in ours]
    assert ours == [width[t] for t in in_types]
