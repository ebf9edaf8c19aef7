"""Microsoft-Windows-Hyper-V-VmSwitch {67DC0D66-3695-47C0-9642-33F76F7BD7AD} (vmswitch.sys).

Sources of the layouts and event names (no real sample carries this provider):
- the NetMon parser Microsoft published for this manifest (microsoft/SDN,
  Diagnostics/VFP_VMSwitch_Parsers/etl_microsoft-windows-virtualization-drivers-vmswitch.npl, 2015):
  event names and messages for ids 1-200, field order, ``UnicodeString(<X>NameLen)`` strings
  (the length counts UTF-16 characters) and ``BOOL`` (4-byte) port-security flags;
- etl-parser's layouts generated from a later manifest (270 events, ids 1-276): the same fields
  plus ``Flags``/``OwnerService`` on switch and port lifecycle events, and events after 200 (230
  NVGRE/VXLAN). It types the names as raw bytes and BOOLs as one byte.

Events 184-187 (a teaming member NIC connected / disconnected / LACP churn): the NetMon parser's
``SYS_EVENT_NIC_*`` structs (``UnicodeString DriverObject, Member``, NUL-terminated), which it lists
with the LBFO/LACP events 152-183 (172: "MsLbfoProvider driver is unloading"); etl-parser has the same
two ``WString`` fields. Event 232 (a NIC connected to a port: how a vmNIC's connect appears in the
System log of a current host, misc/real-event-text-samples.md) has etl-parser's layout, the same fields
as 17 (the parser's "protocol NIC bound to port"). Events 255-257 (a port's RDMA weight): etl-parser only (Status, port and NIC
names, RdmaWeight, FailReason); no public source names the three ids apart, so they share one name.
Not here: 152-183 (members by GUID or pointer only) and 206-214/229/231 (SET settings, no public
event names or messages): the catalogue layer decodes them from etl-parser.

Where the two disagree, both layouts are kept and the one that consumes the payload exactly is used
(``fields.ProviderLayouts``). Counted strings are read as characters first and, if the event does
not fit that way, as bytes (the unit that fitted is reported as ``string_units``).
"""

from __future__ import annotations

from diag.decode.fields import Layout, ProviderLayouts

PROVIDER = "67dc0d66-3695-47c0-9642-33f76f7bd7ad"
NAME = "Microsoft-Windows-Hyper-V-VmSwitch"


def _names(prefix: str) -> tuple[tuple[str, str], ...]:
    return ((f"{prefix}_name", "counted_wstr"), (f"{prefix}_friendly_name", "counted_wstr"))


NIC, PORT, SWITCH = _names("nic"), _names("port"), _names("switch")
SRC_NIC, DEST_NIC = _names("source_nic"), _names("destination_nic")
STATUS, UNIQUE = (("status", "u32"),), (("unique_event", "u32"),)
FLAGS = (("flags", "u32"), ("owner_service", "u32"))
MAC = (("mac_address", "counted_wstr"),)
PORT1, PORT2 = _names("port1"), _names("port2")
_SECURITY = ("allow_mac_spoofing", "enable_dhcp_guard", "enable_router_guard", "monitor_mode", "monitor_session",
             "allow_ieee_priority_tag", "virtual_subnet_id", "allow_teaming", "storm_limit",
             "dynamic_ip_address_limit", "enable_fix_speed_10g")
_BOOLS = {"allow_mac_spoofing", "enable_dhcp_guard", "enable_router_guard", "allow_ieee_priority_tag",
          "allow_teaming", "enable_fix_speed_10g"}


def _security(bool_kind: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, bool_kind if name in _BOOLS else "u32") for name in _SECURITY)


_ACL = (("direction", "u32"), ("applicability", "u32"), ("acl_type", "u32"), ("action", "u32"),
        ("local_address", "counted_wstr"), ("local_prefix_length", "u32"),
        ("remote_address", "counted_wstr"), ("remote_prefix_length", "u32"))
_OFFLOAD = (("ipsec_offload_limit", "u32"), ("vmq_offload_weight", "u32"), ("iov_offload_weight", "u32"),
            ("queue_pairs", "u32"), ("interrupt_moderation", "u32"))
_TEAM_MEMBER = SWITCH + NIC + (("nic_index", "u32"), ("net_cfg_instance_id", "guid"), ("status", "u32"))
_MEMBER_NIC = (("driver_object", "wstr"), ("member", "wstr"))
_RDMA_WEIGHT = STATUS + PORT + NIC + (("rdma_weight", "u32"), ("fail_reason", "u32"))


def _with_and_without(name: str, base: tuple, extra: tuple) -> tuple[Layout, Layout]:
    """Two revisions of one event: the later one appends ``extra``."""
    return Layout(name, base + extra), Layout(name, base)


LAYOUTS: dict[tuple[int, int], Layout | tuple[Layout, ...]] = {
    (1, 0): Layout("ConfigStoreRootOpenFailed", STATUS),
    (2, 0): Layout("InvalidSwitchNameInConfigStore", STATUS),
    (3, 0): Layout("FailedToRegisterControlDevice", STATUS),
    (4, 0): _with_and_without("DriverInitializeFailed", STATUS, UNIQUE),
    (5, 0): Layout("MiniportEnabled", NIC),
    (6, 0): Layout("MiniportEnableFailed", STATUS + NIC + UNIQUE),
    (7, 0): Layout("MiniportInitialized", NIC),
    (8, 0): Layout("MiniportInitializeFailed", STATUS + NIC + UNIQUE),
    (9, 0): _with_and_without("SwitchInitialized", SWITCH, FLAGS),
    (10, 0): Layout("SwitchInitializeFailed", STATUS + SWITCH + UNIQUE),
    (11, 0): Layout("SwitchConfigStoreFailed", STATUS + SWITCH + UNIQUE),
    (12, 0): Layout("PortConfigStoreFailed", STATUS + PORT + SWITCH + UNIQUE),
    (13, 0): Layout("NicConfigStoreFailed", STATUS + NIC + UNIQUE),
    (14, 0): Layout("SwitchConfigRestoreFailed", STATUS + SWITCH + UNIQUE),
    (15, 0): Layout("PortConfigRestoreFailed", STATUS + PORT + SWITCH + UNIQUE),
    (16, 0): Layout("NicConfigRestoreFailed", STATUS + NIC + UNIQUE),
    (17, 0): Layout("ProtocolNicBound", NIC + PORT + SWITCH),
    (18, 0): _with_and_without("NicConnectFailed", STATUS + NIC + PORT + SWITCH, UNIQUE),
    (19, 0): Layout("NicDisconnected", NIC),
    (20, 0): Layout("NicDisconnectFailed", STATUS + NIC + UNIQUE),
    (21, 0): Layout("MediaConnected", NIC),
    (22, 0): Layout("MediaDisconnected", NIC),
    (23, 0): Layout("NicOperational", NIC),
    (24, 0): Layout("NicNonOperational", NIC),
    (25, 0): Layout("MacAddressMoved", MAC + PORT1 + PORT2),
    (28, 0): Layout("MacAddressMovePrevented", MAC + PORT1 + PORT2),
    (29, 0): Layout("InvalidConfiguredMacAddress", MAC + NIC),
    (30, 0): Layout("MacAddressPreventedBySpoofingSetting", MAC + NIC),
    (31, 0): Layout("MacAddressOverriddenByVm", MAC + NIC),
    (32, 0): _with_and_without("NicPortConnectFailed", STATUS + NIC + PORT + SWITCH, UNIQUE),
    (33, 0): Layout("IpSpoofedPacketsDropped", (("vm_name", "counted_wstr"),) + NIC + PORT + SWITCH),
    (34, 0): Layout("PortCreateVetoed", STATUS + PORT + SWITCH + UNIQUE),
    (35, 0): _with_and_without("NicConnectVetoed", STATUS + NIC + PORT + SWITCH, UNIQUE),
    (36, 0): Layout("PortAclPacketDropped", PORT + SWITCH + (("acl_name", "counted_wstr"),)),
    (42, 0): _with_and_without("ForwardingExtensionEnabled", SWITCH, FLAGS),
    (43, 0): _with_and_without("ForwardingExtensionDisabled", SWITCH, FLAGS),
    (53, 0): Layout("QosPacketDropped", (("drop_reason", "u32"),)),
    (54, 0): Layout("NblDroppedFromNic", NIC + SWITCH + (("drop_reason", "u32"),)),
    (55, 0): Layout("NblDroppedToNic", NIC + SWITCH + (("drop_reason", "u32"),)),
    (59, 0): Layout("NblDeliveryVetoed", (("extension_name", "counted_wstr"),) + SRC_NIC + DEST_NIC + SWITCH),
    (60, 0): Layout("NblDroppedByExtension", SRC_NIC + SWITCH + (
        ("extension_id", "counted_wstr"), ("extension_friendly_name", "counted_wstr"), ("reason", "counted_wstr"))),
    (62, 0): _with_and_without("SwitchDeleted", SWITCH, FLAGS),
    (63, 0): Layout("SwitchDeleteFailed", STATUS + SWITCH + UNIQUE),
    (66, 0): _with_and_without("SwitchDeleteComplete", SWITCH, FLAGS),
    (67, 0): _with_and_without("PortCreated", PORT + SWITCH, FLAGS),
    (68, 0): Layout("PortCreateFailed", STATUS + PORT + SWITCH + UNIQUE),
    (69, 0): _with_and_without("PortDeleted", PORT + SWITCH, FLAGS),
    (70, 0): Layout("PortDeleteFailed", STATUS + PORT + SWITCH + UNIQUE),
    (71, 0): _with_and_without("PortDeleteComplete", PORT + SWITCH, FLAGS),
    (73, 0): Layout("PortVlanSetFailed", STATUS + PORT + SWITCH + UNIQUE),
    (80, 0): Layout("SwitchPolicyFailed", STATUS + SWITCH + (("property_id", "guid"), ("instance_id", "guid"))
                    + UNIQUE + (("operation", "u32"),)),
    (88, 0): (Layout("PortSecurityPolicyFailed", PORT + SWITCH + _security("bool32") + (("fail_reason", "u32"),)),
              Layout("PortSecurityPolicyFailed", PORT + SWITCH + _security("bool8") + (("fail_reason", "u32"),))),
    (89, 0): (Layout("PortSecurityPolicy", PORT + SWITCH + _security("bool32")),
              Layout("PortSecurityPolicy", PORT + SWITCH + _security("bool8"))),
    (90, 0): Layout("PortAclPolicyFailed", PORT + SWITCH + _ACL + (("fail_reason", "u32"),)),
    (91, 0): Layout("PortAclPolicy", PORT + SWITCH + _ACL),
    (94, 0): Layout("PortOffloadPolicyFailed", PORT + SWITCH + _OFFLOAD + (("fail_reason", "u32"),)),
    (95, 0): Layout("PortVlanInvalid", PORT + SWITCH + (("fail_reason", "u32"),)),
    (96, 0): Layout("PortVlanExternalNicNotEnabled", PORT + NIC),
    (98, 0): Layout("RequiredExtensionNotActive", (("extension_id", "guid"),) + NIC + PORT + SWITCH),
    (99, 0): Layout("RequiredExtensionMissing", NIC + PORT + SWITCH),
    (116, 0): Layout("TeamMemberConnected", _TEAM_MEMBER),
    (117, 0): Layout("TeamMemberDisconnected", _TEAM_MEMBER),
    (118, 0): Layout("TeamConfiguration", SWITCH + NIC + (("configuration_type", "u32"),)),
    (184, 0): Layout("MemberNicConnected", _MEMBER_NIC),
    (185, 0): Layout("MemberNicDisconnected", _MEMBER_NIC),
    (187, 0): Layout("MemberNicLacpChurnDetected", _MEMBER_NIC),
    (125, 0): Layout("MiniportMediaConnected", NIC),
    (126, 0): Layout("MiniportMediaDisconnected", NIC),
    (197, 0): Layout("MacVlanFilterFailed", (("vlan_id", "u32"),) + NIC + (("fail_reason", "u32"),)),
    (232, 0): Layout("NicConnected", NIC + PORT + SWITCH),
    (230, 0): (Layout("EncapsulationOffload", SWITCH + (("nvgre_enabled", "bool32"), ("vxlan_enabled", "bool32"))),
               Layout("EncapsulationOffload", SWITCH + (("nvgre_enabled", "bool8"), ("vxlan_enabled", "bool8")))),
    **{(event_id, 0): Layout("PortRdmaWeight", _RDMA_WEIGHT) for event_id in (255, 256, 257)},
}

_PROVIDER = ProviderLayouts(LAYOUTS, NAME, string_units=("chars", "bytes"))
EVENT_NAMES = {event_id: _PROVIDER.event_name(event_id, version) for event_id, version in LAYOUTS}


event_name = _PROVIDER.event_name
decode = _PROVIDER.decode  # (event id, version, payload, pointer size, OS build) -> fields, None, or WireError
