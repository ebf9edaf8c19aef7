"""Hyper-V-VmSwitch: no real sample carries it, so payloads are packed here byte by byte.

Layouts: Microsoft's NetMon parser for the manifest (microsoft/SDN, etl_microsoft-windows-virtualization-
drivers-vmswitch.npl): ``<X>NameLen`` then ``UnicodeString(<X>NameLen)`` (a count of UTF-16 characters),
port-security flags as 4-byte BOOLs; etl-parser's later layouts add ``Flags``/``OwnerService`` to
switch and port lifecycle events and types the flags as one byte. Both readings are packed here.
"""

from __future__ import annotations

import pytest

from factscan import by_kind, scan_facts
from payloads import counted, etl_parser_types, guid, layout_as_etl_parser, u8, u32, write_events, wstr
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


def test_refused_settings_count_once_and_leave_the_port_as_it_was(tmp_path):
    """88 carries the settings that were refused: the port keeps the VirtualSubnetId 89 applied. 73 is a
    VLAN failure, not also a policy failure. 80 is a switch's failure."""
    path = write_events(tmp_path / "refused.etl", P, [
        (17, 0, NIC + PORT + SWITCH), (89, 0, PORT + SWITCH + security(0, 0, 0, 0)),
        (88, 0, PORT + SWITCH + security(0, 0, 0, 5001) + u32(31)),
        (73, 0, u32(0xC000000D) + PORT + SWITCH + u32(1)),
        (80, 0, u32(0xC00000BB) + SWITCH + bytes(range(16)) + bytes(range(16, 32)) + u32(1) + u32(1)),
    ])
    decoded, stats = decode_all(path)
    assert stats.errors == 0 and decoded[-1].event_name == "SwitchPolicyFailed"
    assert (decoded[-1].fields["status"], decoded[-1].fields["operation"]) == (0xC00000BB, 1)
    kinds = by_kind(scan_facts(path).facts)
    (port,) = kinds["vport"]
    assert (port.virtual_subnet_id, port.failures, port.vlan_failures) == (0, 1, 1)
    assert [s.value for s in kinds.get("segment", []) if s.segment_type == "vsid"] == []
    (switch,) = kinds["vswitch"]
    assert switch.failures == 1 and "0xc00000bb" in switch.last_failure


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


# -- team members (116/117, and the LBFO core's 184/185/187) and RDMA weights (255-257) ---------------

MEMBER_GUID = "0e2ffde1-4ea9-44d5-9a1b-17e231f1bf43"
SET_SWITCH = counted("SW-GUID") + counted("SETswitch")


def team_link(nic: str, friendly: str, nic_index: int, member_guid: str, status: int = 0) -> bytes:
    """116/117: SwitchName, SwitchFName, NicName, NicFName (counted), NicIndex, NetCfgInstanceId, Status."""
    return SET_SWITCH + counted(nic) + counted(friendly) + u32(nic_index) + guid(member_guid) + u32(status)


def member_nic(member: str) -> bytes:
    """184/185/187: DriverObject, Member, NUL-terminated UTF-16 (NetMon parser and etl-parser agree)."""
    return wstr(r"\Driver\vmswitch") + wstr(member)


def rdma_weight(weight: int, fail_reason: int = 0, status: int = 0, nic: str = "SMB1") -> bytes:
    """255-257 (etl-parser): Status, PortName, PortFName, NicName, NicFName, RdmaWeight, FailReason."""
    return u32(status) + PORT + counted(f"{nic}-NIC") + counted(nic) + u32(weight) + u32(fail_reason)


def test_team_member_and_rdma_events_decode(tmp_path):
    path = write_events(tmp_path / "team.etl", P, [
        (116, 0, team_link("NIC-A", "pNIC1", 6, MEMBER_GUID)),
        (117, 0, team_link("NIC-A", "pNIC1", 6, MEMBER_GUID, status=0xC000009D)),
        (185, 0, member_nic("{0E2FFDE1-4EA9-44D5-9A1B-17E231F1BF43}")),
        (187, 0, member_nic("{0E2FFDE1-4EA9-44D5-9A1B-17E231F1BF43}")),
        (256, 0, rdma_weight(100, fail_reason=3, status=1)),
    ])
    decoded, stats = decode_all(path)
    connected, disconnected, core, churn, rdma = (d.fields for d in decoded)
    assert [d.event_name for d in decoded] == ["TeamMemberConnected", "TeamMemberDisconnected", "MemberNicDisconnected",
                                        "MemberNicLacpChurnDetected", "PortRdmaWeight"]
    assert (connected["switch_friendly_name"], connected["nic_name"], connected["nic_friendly_name"],
            connected["nic_index"], connected["net_cfg_instance_id"], connected["status"]) == \
        ("SETswitch", "NIC-A", "pNIC1", 6, MEMBER_GUID, 0)
    assert disconnected["status"] == 0xC000009D
    assert (core["driver_object"], core["member"]) == (r"\Driver\vmswitch", "{0E2FFDE1-4EA9-44D5-9A1B-17E231F1BF43}")
    assert churn["member"] == core["member"]
    assert (rdma["status"], rdma["port_name"], rdma["nic_friendly_name"], rdma["rdma_weight"], rdma["fail_reason"]) == \
        (1, "5C0B8A4E-PORT", "SMB1", 100, 3)
    assert stats.errors == 0


def test_a_member_that_flaps_is_counted_once_per_change(tmp_path):
    up, down = team_link("NIC-A", "pNIC1", 6, MEMBER_GUID), team_link("NIC-A", "pNIC1", 6, MEMBER_GUID)
    core = "{" + MEMBER_GUID.upper() + "}"
    path = write_events(tmp_path / "flap.etl", P, [
        (116, 0, up), (116, 0, team_link("NIC-B", "pNIC2", 7, "11111111-2222-3333-4444-555555555555")),
        (117, 0, down), (185, 0, member_nic(core)),      # one change, reported by the switch and the LBFO core
        (116, 0, up), (184, 0, member_nic(core)),
        (117, 0, down), (116, 0, up),
        (187, 0, member_nic(core)),
        (185, 0, member_nic("{99999999-0000-0000-0000-000000000001}")),  # an LBFO member the switch never named
    ])
    members = {m.member_name: m for m in by_kind(scan_facts(path).facts)["team_member"]}
    assert set(members) == {"NIC-A", "NIC-B", "{99999999-0000-0000-0000-000000000001}"}
    a, b, lbfo = members["NIC-A"], members["NIC-B"], members["{99999999-0000-0000-0000-000000000001}"]
    assert (a.team, a.switch_friendly_name, a.member_friendly_name, a.net_cfg_instance_id, a.nic_index) == \
        ("SET", "SETswitch", "pNIC1", MEMBER_GUID, 6)
    assert (a.connects, a.disconnects, a.reconnects, a.state_changes, a.lacp_churn, a.current_state) == \
        (3, 2, 2, 4, 1, "up")
    # write_events puts event i at start + i seconds: the first change is event 2, the last event 7
    assert (a.last_change - a.first_change).total_seconds() == 5
    assert (b.connects, b.disconnects, b.reconnects, b.state_changes, b.current_state) == (1, 0, 0, 0, "up")
    assert b.first_change is None
    assert (lbfo.team, lbfo.switch_name, lbfo.disconnects, lbfo.current_state) == ("LBFO", None, 1, "down")


def test_rdma_weight_applied_is_an_offload_and_refused_is_a_port_failure(tmp_path):
    path = write_events(tmp_path / "rdma.etl", P, [(255, 0, rdma_weight(100))])
    kinds = by_kind(scan_facts(path).facts)
    (port,) = kinds["vport"]
    assert (port.nic_friendly_name, port.rdma_weight, port.failures) == ("SMB1", 100, 0)
    (offload,) = kinds["offload"]
    assert (offload.where, offload.offload, offload.value) == ("SMB1 (SMB1-NIC)", "rdma weight", 100)

    path = write_events(tmp_path / "refused.etl", P, [(257, 0, rdma_weight(100, fail_reason=3))])
    kinds = by_kind(scan_facts(path).facts)
    (port,) = kinds["vport"]
    assert (port.rdma_weight, port.failures) == (None, 1)
    assert port.last_failure == "RDMA weight 100 not applied: FailReason 3, status 0x00000000"
    assert "offload" not in kinds


def test_a_nic_connect_as_a_current_host_logs_it_ties_the_vmnic_to_its_port(tmp_path):
    # VmSwitch 232 from a Windows 11 host's System log (misc/real-event-text-samples.md): NicNameLen 74, an empty
    # NicFName, port and switch names of 36 characters, SwitchFName "WSL (Hyper-V firewall)" (22 characters)
    port, switch = "6B4A85CC-55A1-4C9F-8C85-44C2A33AAE4A", "790E58B4-7939-4434-9358-89AE7DDBE87E"
    nic = f"B944A522-3D6A-4950-A844-16DC623D891A--{port}"
    payload = b"".join(counted(text) for text in (nic, "", port, port, switch, "WSL (Hyper-V firewall)"))
    assert len(nic) == 74
    path = write_events(tmp_path / "t.etl", vmswitch.PROVIDER, [(232, 0, payload)])
    kinds = by_kind(scan_facts(path).facts)
    (vport,) = kinds["vport"]
    assert (vport.port_name, vport.nic_name, vport.switch_name, vport.state) == (port, nic, switch, "connected")
    (vswitch,) = kinds["vswitch"]
    assert vswitch.friendly_name == "WSL (Hyper-V firewall)"


def test_an_offload_policy_event_is_a_failure_whatever_its_reason(tmp_path):
    # 94 is "Failed to complete offload policy operation" (the NetMon parser's message); FailReason 0 is "Unknown"
    names = b"".join(counted(text) for text in ("P1", "p1", "S1", "s1"))
    offload = u32(0) + u32(100) + u32(100) + u32(4) + u32(1) + u32(0)
    kinds = by_kind(scan_facts(write_events(tmp_path / "t.etl", vmswitch.PROVIDER, [(94, 0, names + offload)])).facts)
    (vport,) = kinds["vport"]
    assert (vport.iov_weight_requested, vport.vmq_weight_requested, vport.failures) == (100, 100, 1)
    assert vport.last_failure == "offload policy (IovWeight 100, VmqWeight 100): Unknown"
    assert not [o for o in kinds.get("offload", []) if "iov" in o.offload]  # not an offload in effect
