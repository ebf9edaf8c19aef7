"""Microsoft-Windows-Wnv (HNVv1): no real sample carries it and etl-parser has no layout for it.

Payloads are packed byte by byte from Microsoft's NetMon parser for the provider (microsoft/SDN,
Diagnostics/etl_wnvinf.npl): AsciiString fields are NUL-terminated ANSI, UnicodeString NUL-terminated
UTF-16, BLOB(6) six bytes, BOOL four bytes, in the order the parser's structs declare them.
"""

from __future__ import annotations

from factscan import by_kind, scan_facts
from payloads import cstr, guid, mac, u8, u16, u32, u64, write_events, wstr
from diag.decode import EventDecoder, wnv
from diag.read import open_trace

P = wnv.PROVIDER
DOMAIN = "1d0f0a4c-5e6b-4a7d-8c9e-0f1a2b3c4d5e"


def lookup(failure: int, vsid: int, direction: int, event_id: int = 1010) -> tuple:
    return (event_id, 0, cstr("10.0.0.4") + cstr("10.0.0.9") + cstr("10.0.0.4") + cstr("") + cstr("10.0.0.1")
            + cstr("192.168.10.2") + u32(failure) + u32(direction) + mac("00-15-5D-01-00-04") + mac("00-15-5D-01-00-09")
            + bytes(6) + bytes(6) + cstr("192.168.10.1") + cstr("192.168.10.2") + u32(vsid))


def drop(reason: int, vsid: int) -> tuple:
    return (1012, 0, cstr("10.0.0.4") + cstr("10.0.0.9") + cstr("192.168.10.1") + cstr("192.168.10.2") + u32(reason)
            + u32(0x0800) + u8(6) + mac("00-15-5D-01-00-04") + mac("00-15-5D-01-00-09") + u32(1) + u32(vsid) + u32(1))


def record(customer: str, provider: str, vsid: int, event_id: int = 1006) -> tuple:
    return (event_id, 0, cstr(customer) + cstr(provider) + u32(vsid) + guid(DOMAIN) + mac("00-15-5D-01-00-04") + u32(0)
            + wstr("web-01") + u32(1) + u32(0) + u32(0) + u32(0) + u32(0))


EVENTS = [
    (1001, 0, wstr("10.0.0.0") + u32(24) + wstr("10.0.0.1") + guid(DOMAIN) + u32(5001) + u32(10) + u32(0) + u32(0)),
    (1004, 1, cstr("192.168.10.1") + u32(24) + u64(0x0006000000000001) + u16(100) + u32(0) + u32(0)
     + mac("00-15-5D-AA-00-01")),
    record("10.0.0.4", "192.168.10.1", 5001), record("10.0.0.9", "192.168.10.2", 5001),
    lookup(1, 5001, 1), lookup(1, 5001, 1), lookup(0, 5001, 0, event_id=1011),
    drop(2, 5001), drop(2, 5001), drop(1, 5001),
]


def test_events_round_trip(tmp_path):
    with open_trace(write_events(tmp_path / "wnv.etl", P, EVENTS)) as trace:
        decoder = EventDecoder(trace.header)
        decoded = [decoder.decode(r) for r in trace.records() if r.provider == P]
    assert all(d.layer == "fast" for d in decoded)
    route, address, rec = decoded[0].fields, decoded[1].fields, decoded[2].fields
    assert (route["destination_prefix"], route["prefix_length"], route["next_hop"], route["routing_domain_id"],
            route["virtual_subnet_id"], route["metric"]) == ("10.0.0.0", 24, "10.0.0.1", DOMAIN, 5001, 10)
    assert (address["locator_address"], address["vlan_id"], address["provider_mac"]) == \
        ("192.168.10.1", 100, "00-15-5D-AA-00-01")
    assert (rec["customer_address"], rec["provider_address"], rec["description"], rec["use_vm_mac"],
            rec["translation_method"]) == ("10.0.0.4", "192.168.10.1", "web-01", False, 1)
    failed = decoded[4].fields
    assert (failed["lookup_failure"], failed["direction"], failed["destination_ip_in_record"],
            failed["outer_destination_ip"], failed["virtual_subnet_id"]) == (1, 1, "", "192.168.10.2", 5001)
    dropped = decoded[7].fields
    assert (dropped["drop_reason"], dropped["transport_protocol"], dropped["gre_encap"], dropped["source_pa"]) == \
        (2, 6, True, "192.168.10.1")


def test_facts(tmp_path):
    kinds = by_kind(scan_facts(write_events(tmp_path / "wnv.etl", P, EVENTS)).facts)
    lookups = {(l.outcome, l.reason_code): l for l in kinds["wnv_lookup"]}
    failed = lookups[("failed", 1)]
    assert (failed.count, failed.reason_name, failed.direction, failed.virtual_subnet_id) == \
        (2, "Destination locator record missing", "out", 5001)
    assert lookups[("succeeded", None)].count == 1
    drops = {d.reason_name: d.count for d in kinds["drop"]}
    assert drops == {"No policy": 2, "MTU exceeded": 1}
    (policy,) = kinds["wnv_policy"]
    assert (policy.virtual_routes, policy.locator_records, policy.locator_addresses, policy.virtual_subnets) == \
        (1, 2, 1, [5001])
    assert [(s.segment_type, s.value) for s in kinds["segment"]] == [("vsid", 5001)]
