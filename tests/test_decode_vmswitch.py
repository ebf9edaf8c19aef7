"""Hyper-V-VmSwitch: no real sample carries it, so payloads are packed here byte by byte.

Layouts: Microsoft's NetMon parser for the manifest (microsoft/SDN, etl_microsoft-windows-virtualization-
drivers-vmswitch.npl): ``<X>NameLen`` then ``UnicodeString(<X>NameLen)`` (a count of UTF-16 characters),
port-security flags as 4-byte BOOLs; etl-parser's later layouts add ``Flags``/``OwnerService`` to
switch and port lifecycle events and types the flags as one byte. Both readings are packed here.
"""

from __future__ import annotations

import pytest

from factscan import by_kind, scan_facts
from payloads import counted, etl_parser_types, layout_as_etl_parser, u8, u32, write_events
from diag.decode import EventDecoder, vmswitch
from diag.read import open_trace

P = vmswitch.PROVIDER
SWITCH = counted("8E4A9F22-1B7C-4D2E-9C0A-7E3B2A1D5F60") + counted("External vSwitch")
PORT = counted("5C0B8A4E-PORT") + counted("Dynamic Ethernet Switch Port")
NIC = counted("5C0B8A4E-NIC") + counted("Network Adapter")


def security(mac_spoofing: int, dhcp_guard: int, router_guard: int, vsid: int, width=u32) -> bytes:
    return (width(mac_spoofing) + width(dhcp_guard) + width(router_guard) + u32(0) + u32(0) + width(0) + u32(vsid)
            + width(0) + u32(1000) + u32(10) + width(0))


def decode_all(path):
    with open_trace(path) as trace:
        decoder = EventDecoder(trace.header)
        out = [decoder.decode(r) for r in trace.records() if r.provider == P]
        return out, decoder.finish()


def test_lifecycle_security_and_drops_round_trip(tmp_path):
    path = write_events(tmp_path / "vms.etl", P, [
        (9, 0, SWITCH + u32(1) + u32(2)),                      # switch created (later revision: flags)
        (67, 0, PORT + SWITCH),                                # port created (2015 revision: no flags)
        (17, 0, NIC + PORT + SWITCH),                          # NIC connected to the port
        (89, 0, PORT + SWITCH + security(0, 1, 1, 5001)),      # port security, 4-byte BOOLs
        (88, 0, PORT + SWITCH + security(1, 0, 0, 0, width=u8) + u32(5)),  # failed, one-byte flags
        (25, 0, counted("00-15-5D-00-11-22") + PORT + counted("OTHER") + counted("Other port")),
        (54, 0, NIC + SWITCH + u32(16)),                       # NBL from the NIC dropped: MAC spoofing
        (230, 0, SWITCH + u8(0) + u8(1)),
        (197, 0, u32(42) + NIC + u32(1)),
    ])
    decoded, stats = decode_all(path)
    assert [d.layer for d in decoded] == ["fast"] * 9
    created, port, connected, secure, failed, moved, drop, encap, vlan = (d.fields for d in decoded)
    assert (created["switch_name"], created["switch_friendly_name"], created["flags"], created["owner_service"]) == \
        ("8E4A9F22-1B7C-4D2E-9C0A-7E3B2A1D5F60", "External vSwitch", 1, 2)
    assert "flags" not in port and port["port_friendly_name"] == "Dynamic Ethernet Switch Port"
    assert (connected["nic_friendly_name"], connected["port_name"]) == ("Network Adapter", "5C0B8A4E-PORT")
    assert (secure["allow_mac_spoofing"], secure["enable_dhcp_guard"], secure["enable_router_guard"],
            secure["virtual_subnet_id"], secure["storm_limit"]) == (False, True, True, 5001, 1000)
    assert (failed["allow_mac_spoofing"], failed["fail_reason"]) == (True, 5)
    assert (moved["mac_address"], moved["port2_friendly_name"]) == ("00-15-5D-00-11-22", "Other port")
    assert drop["drop_reason"] == 16
    assert (encap["nvgre_enabled"], encap["vxlan_enabled"]) == (False, True)
    assert (vlan["vlan_id"], vlan["fail_reason"]) == (42, 1)
    assert stats.errors == 0


def test_names_sized_in_bytes_are_read_too(tmp_path):
    path = write_events(tmp_path / "bytes.etl", P, [(67, 0, counted("PORT-1", "bytes") + counted("Port 1", "bytes")
                                                     + counted("SW", "bytes") + counted("Switch", "bytes"))])
    (event,), _ = decode_all(path)
    assert (event.fields["port_name"], event.fields["switch_friendly_name"], event.fields["string_units"]) == \
        ("PORT-1", "Switch", "bytes")


def test_a_payload_that_fits_no_layout_is_counted_as_failed(tmp_path):
    path = write_events(tmp_path / "bad.etl", P, [(54, 0, NIC + SWITCH), (54, 0, NIC + SWITCH + u32(9))])
    decoded, stats = decode_all(path)
    assert decoded[0] is None and decoded[1].fields["drop_reason"] == 9
    outcome = stats.outcomes[(P, 54, 0)]
    assert (outcome.decoded, outcome.failed) == (1, 1) and "Hyper-V-VmSwitch event 54" in outcome.first_error


def test_facts_describe_switch_port_nic_and_drops(tmp_path):
    path = write_events(tmp_path / "facts.etl", P, [
        (9, 0, SWITCH), (67, 0, PORT + SWITCH), (17, 0, NIC + PORT + SWITCH),
        (89, 0, PORT + SWITCH + security(0, 1, 0, 5001)),
        *[(54, 0, NIC + SWITCH + u32(16))] * 3, (230, 0, SWITCH + u8(1) + u8(1)),
        (25, 0, counted("00-15-5D-00-11-22") + PORT + counted("OTHER") + counted("Other port")),
    ])
    kinds = by_kind(scan_facts(path).facts)
    (switch,) = kinds["vswitch"]
    assert (switch.friendly_name, switch.state, switch.ports, switch.nvgre_offload, switch.vxlan_offload) == \
        ("External vSwitch", "created", 1, True, True)
    (port,) = kinds["vport"]
    assert (port.nic_name, port.allow_mac_spoofing, port.dhcp_guard, port.virtual_subnet_id) == \
        ("5C0B8A4E-NIC", False, True, 5001)
    (drop,) = kinds["drop"]
    assert (drop.where, drop.direction, drop.reason_code, drop.reason_name, drop.count) == \
        ("Network Adapter (5C0B8A4E-NIC)", "in", 16, "Spoofed MAC address is not allowed", 3)
    assert drop.evidence[0]["event_id"] == 54 and drop.evidence[0]["provider"] == "Hyper-V-VmSwitch"
    (move,) = kinds["mac_move"]
    assert (move.mac, move.to_port, move.prevented) == ("00-15-5D-00-11-22", "Other port (OTHER)", False)
    assert [(s.segment_type, s.value) for s in kinds["segment"]] == [("vsid", 5001)]


@pytest.mark.parametrize("key", sorted(vmswitch.LAYOUTS))
def test_layouts_agree_with_etl_parser_where_it_has_the_event(key):
    """Field order and widths match etl-parser's generated layout (one byte for BOOL is its known bug)."""
    pytest.importorskip("etl.parsers.etw.Microsoft_Windows_Hyper_V_VmSwitch")
    theirs = etl_parser_types("Microsoft_Windows_Hyper_V_VmSwitch", *key)
    if theirs is None:
        pytest.skip(f"etl-parser has no layout for VmSwitch {key}")
    layouts = vmswitch.LAYOUTS[key]
    ours = [layout_as_etl_parser(l.fields) for l in (layouts if isinstance(layouts, tuple) else (layouts,))]
    assert theirs in ours
