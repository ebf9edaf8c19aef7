"""Microsoft-Windows-Hyper-V-VfpExt {9F2660EA-CFE7-428F-9850-AECA612619B0} (vfpext.sys, the Virtual
Filtering Platform: the SDN / HNS switch extension that holds port layers, groups and rules).

Layouts: the NetMon parser Microsoft published for ``vfpext.man`` (microsoft/SDN,
Diagnostics/VFP_VMSwitch_Parsers/etl_vfpext.npl, revision 2015-04-30): raw and parsed drops 51-57 with
their reason, rule match / no match 101-119 (layer, group, rule id, rule type, the flow's 5-tuple,
status), header rewrites and encap/decap 151-156, NAT ranges and port bindings 201-208, forwarding
351-354, rule audit 400-404, redirect failures 451; and its state events: CA/PA mappings 251-255 and
318-330, serialization, QoS queues and reservations, IP notifications, next-hop / ND mappings, PA routes
301-317 and 331-340, save / restore 355-364: every event the parser declares. Field names are the parser's, in snake case.

These are candidates, not confirmed layouts. No public trace carries the provider, and the parser is
from 2015: a current host names ports by a ``PortName`` string where the parser has a UINT32
``PortId`` (EventRecord XML of events 101, 110, 115 from a current host: see knowledge/
layout-sources.yaml), and writes ids 600-608 that the parser does not list. So:
* a layout is used only when the payload fits it exactly (``fields.decode_layout``);
* each layout that starts with a port id has a second form with a NUL-terminated port name in its
  place; that form is our reading of the XML, so every event decoded by it carries a layout note
  (counted as ``layout_unsure``);
* an event that fits neither is counted as failed, and one with no layout (600-608) as not decoded.
  Nothing is guessed;
* a schema the trace itself carries for this provider is preferred to all of these
  (``PREFER_TRACE_SCHEMA``).
"""

from __future__ import annotations

from typing import Any

from diag.decode.fields import Layout, ProviderLayouts
from diag.decode.wire import WireError

PROVIDER = "9f2660ea-cfe7-428f-9850-aeca612619b0"
NAME = "Microsoft-Windows-Hyper-V-VfpExt"
PROVIDERS = {PROVIDER: NAME}
PREFER_TRACE_SCHEMA = True  # our layouts are 2015 candidates: the trace's own schema, if any, is the authority
PORT_NAME_NOTE = ("port named by a string (current builds): the 2015 layout with PortName in PortId's place, "
                  "an unconfirmed reading")

_DIR = (("direction", "u8"),)
_PACKET = (("pkt_len", "u32"), ("pkt_contents", "bin", "pkt_len"))
_MACS = (("src_mac_addr", "wstr"), ("dst_mac_addr", "wstr"))
_V4 = (("src_ipv4_addr", "ipv4"), ("dst_ipv4_addr", "ipv4"))
_V6 = (("src_ipv6_addr", "ipv6"), ("dst_ipv6_addr", "ipv6"))
_PORTS = (("src_port", "port"), ("dst_port", "port"))
_L4_TAIL = (("ip_protocol", "u8"), ("is_tcp_syn", "bool32"))
_ICMP = (("ip_protocol", "u8"), ("icmp_type", "u8"))
_RULE = (("layer_id", "wstr"), ("group_id", "wstr"), ("rule_id", "wstr"), ("rule_type", "u8"))
_STATUS = (("status", "u32"),)
_FLOW_MATCH = (("layer_id", "wstr"), ("flow_type", "u8"))
_NAT_RANGE = (("nat_pool_id", "wstr"), ("nat_range_type", "u8"))
_NAT_RANGE_TAIL = (("start_port", "port"), ("end_port", "port"), ("ref_limit", "u32"))
_FORWARD = (("src_mac_addr", "wstr"), ("dst_mac_addr", "wstr"), ("type", "u16"), ("vlan", "u32"))


def _drop(tail: tuple) -> tuple:
    return _DIR + (("reason", "u8"),) + _MACS + tail


def _rule_match(address: tuple, flow: tuple) -> tuple:
    return _DIR + _RULE + address + flow + _STATUS


def _no_match(address: tuple, flow: tuple) -> tuple:
    return _DIR + (("layer_id", "wstr"),) + address + flow


def _flow_status(address: tuple, flow: tuple) -> tuple:
    return _DIR + _STATUS + address + flow


def _nat_binding(v6: bool) -> tuple:
    family = "ipv6" if v6 else "ipv4"
    return (("nat_port_binding_action", "u8"), (f"internal_{family}_addr", family), (f"internal_{family}_port", "port"),
            (f"external_{family}_addr", family), (f"external_{family}_port", "port"), ("reference", "u32"))


_TCP_UDP_V4, _TCP_UDP_V6 = _V4 + _PORTS, _V6 + _PORTS
_IP_SUBSCRIPTION = (("compartment_id", "u32"), ("subscriber_context", "ptr"), ("status", "u32"), ("flags", "u32"),
                    ("neighbor_changes_flags", "bool32"), ("route_changes_flags", "bool32"))
_QOS_LINE = (("switch_name", "wstr"), ("line_id", "u64"), ("failed_reason", "u32"), ("reservation_mode", "u32"),
             ("default_reservation", "u64"), ("link_speed_pct", "u32"), ("link_speed", "u64"),
             ("link_speed_guarantee_pct", "u32"), ("reservable_bw", "u64"), ("available_bw", "i64"))
_SAVE_FAILED = (("reason", "u8"), ("ext1", "u32"), ("ext2", "u32"))


def _address_pair(prefix: str) -> tuple:
    """An IPv4 address, then an IPv6 one present only when its length is not zero."""
    return ((f"{prefix}_ipv4_addr", "ipv4"), (f"{prefix}_ipv6_addr_length", "u32"),
            (f"{prefix}_ipv6_addr", "ipv6_if", f"{prefix}_ipv6_addr_length"))


_MAPPING = (("space_id", "wstr"), ("mapping_type", "u8")) + _address_pair("customer") + _address_pair("provider") + (
    ("mac_addr", "wstr"), ("customer_mac_addr", "wstr"), ("isolation_id", "u32"), ("flags", "u32"),
    ("permanent_flag", "bool32"), ("non_unique_pa_flag", "bool32"), ("mac_mapping_flag", "bool32"))
_PENDING_MAPPING = (("space_id", "wstr"), ("index_type", "u8"), ("ip_addr", "ipv6"), ("mac_addr", "wstr"),
                    ("mapping_type", "u8"))
_MAP_ENCAP_FLOW = ((("rule_context", "ptr"), ("original_dest_mac_addr", "wstr"), ("new_dest_mac_addr", "wstr"))
                   + _address_pair("src_customer") + _address_pair("dest_customer") + _address_pair("src_provider")
                   + _address_pair("dest_provider") + (("isolation_id", "u32"), ("flags", "u32"), ("encap_type", "u32"),
                                                       ("mac_lookup_flag", "bool32"), ("ca_route_flag", "bool32"),
                                                       ("use_mapping_isolation_id_flag", "bool32")))


def _next_hop(family: str) -> tuple:
    return (("ip_address", family), ("next_hop", family), ("interface_luid", "u64"), ("access_time", "u64"),
            ("status", "u32"))


def _nd_mapping(family: str) -> tuple:
    return (("next_hop", family), ("interface_luid", "u64"), ("access_time", "u64"), ("mac_addr", "wstr"),
            ("mapping_type", "u32"), ("status", "u32"))
_PORT_FIELDS = {"port_id": "port_name", "src_port_id": "src_port_name"}

# event id -> (name, the fields after the leading port id, the port id's name; None: no leading port)
_EVENTS: dict[int, tuple[str, tuple, str | None]] = {
    1: ("InterceptPacket", _DIR + (("type", "u8"),) + _PACKET, "port_id"),
    2: ("InjectPacket", _PACKET, "port_id"),
    51: ("RawDrop", _DIR + (("reason", "u8"),) + _PACKET, "port_id"),
    52: ("L2Drop", _drop((("type", "u16"),)), "port_id"),
    53: ("L3V4Drop", _drop(_V4 + (("ip_protocol", "u8"),)), "port_id"),
    54: ("L3V6Drop", _drop(_V6 + (("ip_protocol", "u8"),)), "port_id"),
    55: ("L4V4Drop", _drop(_V4 + (("ip_protocol", "u8"),) + _PORTS + (("is_tcp_syn", "bool32"),)), "port_id"),
    56: ("L4V6Drop", _drop(_V6 + (("ip_protocol", "u8"),) + _PORTS + (("is_tcp_syn", "bool32"),)), "port_id"),
    57: ("ArpDrop", _DIR + (("reason", "u8"), ("arp_type", "u16"), ("sender_mac_addr", "wstr"),
                           ("sender_ip_addr", "ipv4"), ("target_mac_addr", "wstr"), ("target_ip_addr", "ipv4")),
         "port_id"),
    101: ("V4RuleMatch", _rule_match(_TCP_UDP_V4, _L4_TAIL), "port_id"),
    102: ("V6RuleMatch", _rule_match(_TCP_UDP_V6, _L4_TAIL), "port_id"),
    103: ("V4IcmpRuleMatch", _rule_match(_V4, _ICMP), "port_id"),
    104: ("V6IcmpRuleMatch", _rule_match(_V6, _ICMP), "port_id"),
    105: ("V4GreRuleMatch", _rule_match(_V4, (("gre_key", "u32"),)), "port_id"),
    106: ("V4FlowMatch", _DIR + _FLOW_MATCH + _TCP_UDP_V4 + _L4_TAIL, "port_id"),
    107: ("V6FlowMatch", _DIR + _FLOW_MATCH + _TCP_UDP_V6 + _L4_TAIL, "port_id"),
    108: ("V4IcmpFlowMatch", _DIR + _FLOW_MATCH + _V4 + _ICMP, "port_id"),
    109: ("V6IcmpFlowMatch", _DIR + _FLOW_MATCH + _V6 + _ICMP, "port_id"),
    110: ("V4FlowStatus", _flow_status(_TCP_UDP_V4, _L4_TAIL), "port_id"),
    111: ("V6FlowStatus", _flow_status(_TCP_UDP_V6, _L4_TAIL), "port_id"),
    112: ("V4IcmpFlowStatus", _flow_status(_V4, _ICMP), "port_id"),
    113: ("V6IcmpFlowStatus", _flow_status(_V6, _ICMP), "port_id"),
    114: ("V4GreFlowStatus", _flow_status(_V4, (("gre_key", "u32"),)), "port_id"),
    115: ("V4RuleNoMatch", _no_match(_TCP_UDP_V4, _L4_TAIL), "port_id"),
    116: ("V6RuleNoMatch", _no_match(_TCP_UDP_V6, _L4_TAIL), "port_id"),
    117: ("V4IcmpRuleNoMatch", _no_match(_V4, _ICMP), "port_id"),
    118: ("V6IcmpRuleNoMatch", _no_match(_V6, _ICMP), "port_id"),
    119: ("V4GreRuleNoMatch", _no_match(_V4, (("gre_key", "u32"),)), "port_id"),
    151: ("L2Rewrite", _DIR + _MACS, "port_id"),
    152: ("L4V4Rewrite", _DIR + _TCP_UDP_V4, "port_id"),
    153: ("L4V6Rewrite", _DIR + _TCP_UDP_V6, "port_id"),
    154: ("Encap", _DIR + _MACS + _V4 + (("encap_type", "u8"), ("gre_key", "u32")), "port_id"),
    155: ("Decap", _DIR, "port_id"),
    156: ("DuplicatePacket", _DIR + _PACKET, "port_id"),
    201: ("V4DepositNatRange", _NAT_RANGE + (("ipv4_addr", "ipv4"),) + _NAT_RANGE_TAIL, "port_id"),
    202: ("V6DepositNatRange", _NAT_RANGE + (("ipv6_addr", "ipv6"),) + _NAT_RANGE_TAIL, "port_id"),
    203: ("V4WithdrawNatRange", _NAT_RANGE + (("ipv4_addr", "ipv4"),) + _NAT_RANGE_TAIL, "port_id"),
    204: ("V6WithdrawNatRange", _NAT_RANGE + (("ipv6_addr", "ipv6"),) + _NAT_RANGE_TAIL, "port_id"),
    205: ("V4RemoveNatRange", _NAT_RANGE + (("ipv4_addr", "ipv4"),) + _NAT_RANGE_TAIL, "port_id"),
    206: ("V6RemoveNatRange", _NAT_RANGE + (("ipv6_addr", "ipv6"),) + _NAT_RANGE_TAIL, "port_id"),
    207: ("V4NatPortBinding", _nat_binding(False), "port_id"),
    208: ("V6NatPortBinding", _nat_binding(True), "port_id"),
    351: ("ForwardDrop", (("reason", "u8"),) + _FORWARD, "src_port_id"),
    352: ("ForwardSuccess", (("dst_port_id", "u32"),) + _FORWARD + (("is_broadcast", "bool32"),
                                                                    ("inner_forwarding", "bool32")), "src_port_id"),
    353: ("ForwardSkipBcastDest", (("dst_port_id", "u32"),) + _FORWARD, "src_port_id"),
    354: ("ForwardInnerFwdFailed", (("out_src_mac_addr", "wstr"), ("out_dst_mac_addr", "wstr"), ("type", "u16"),
                                    ("inner_dst_mac_addr", "wstr"), ("vlan", "u32"), ("isolation_id", "u32")),
          "src_port_id"),
    400: ("V4RuleMatchAudit", _rule_match(_TCP_UDP_V4, _L4_TAIL), "port_id"),
    401: ("V6RuleMatchAudit", _rule_match(_TCP_UDP_V6, _L4_TAIL), "port_id"),
    402: ("V4IcmpRuleMatchAudit", _rule_match(_V4, _ICMP), "port_id"),
    403: ("V6IcmpRuleMatchAudit", _rule_match(_V6, _ICMP), "port_id"),
    404: ("V4GreRuleMatchAudit", _rule_match(_V4, (("gre_key", "u32"),)), "port_id"),
    451: ("RedirectFailed", (("reason", "u8"),), "port_id"),
    # CA/PA mappings (the IPv6 addresses exist only when their length is not zero)
    251: ("AddMappingV4V4", _MAPPING, "port_id"),
    252: ("RemoveMappingV4V4", _MAPPING, "port_id"),
    253: ("UpdateRemoveMappingV4V4", _MAPPING, "port_id"),
    254: ("CreatePendingMappingNotified", _PENDING_MAPPING, "port_id"),
    255: ("CreatePendingMappingMissed", _PENDING_MAPPING, "port_id"),
    **{event_id: (name, _MAPPING, "port_id") for event_id, name in (
        (318, "AddMappingV6V4"), (319, "RemoveMappingV6V4"), (320, "UpdateRemoveMappingV6V4"),
        (321, "AddMappingV4V6"), (322, "RemoveMappingV4V6"), (323, "UpdateRemoveMappingV4V6"),
        (324, "AddMappingV6V6"), (325, "RemoveMappingV6V6"), (326, "UpdateRemoveMappingV6V6"))},
    **{event_id: (name, _MAP_ENCAP_FLOW, None) for event_id, name in (
        (327, "MapEncapFlowMatchV4V4"), (328, "MapEncapFlowMatchV6V4"), (329, "MapEncapFlowMatchV4V6"),
        (330, "MapEncapFlowMatchV6V6"))},
    # state and control events: serialization, QoS queues, IP notifications, next-hop / ND mappings, PA routes,
    # QoS reservations, save / restore
    301: ("SerializeItem", (("serialization_action", "u8"), ("serialization_item_type", "u32"), ("item_size", "u64"),
                            ("item_reference", "u64"), ("item_version", "u64"), ("status", "u32"),
                            ("additional_context", "u64")), "port_id"),
    302: ("QosQueueItem", (("queue_name", "wstr"), ("qos_queue_action", "u8"), ("port_id", "u32"),
                           ("enforce_intra_host_limit", "bool32"), ("transmit_cap", "u32"),
                           ("transmit_reservation", "u32"), ("receive_cap", "u32"), ("transmit_max_queue", "u64"),
                           ("receive_max_queue", "u64")), None),
    303: ("MaxCapQueueItem", (("max_queue_pointer", "u64"), ("rate", "u64"), ("max_queue_action", "u8")), None),
    304: ("IpSubscribe", _IP_SUBSCRIPTION, None),
    305: ("IpUnsubscribe", _IP_SUBSCRIPTION, None),
    306: ("AddNextHopMappingV4", _next_hop("ipv4"), None),
    307: ("AddNextHopMappingV6", _next_hop("ipv6"), None),
    308: ("DeleteNextHopMappingV4", _next_hop("ipv4"), None),
    309: ("DeleteNextHopMappingV6", _next_hop("ipv6"), None),
    310: ("AddNDMappingV4", _nd_mapping("ipv4"), None),
    311: ("AddNDMappingV6", _nd_mapping("ipv6"), None),
    312: ("DeleteNDMappingV4", _nd_mapping("ipv4"), None),
    313: ("DeleteNDMappingV6", _nd_mapping("ipv6"), None),
    314: ("PARouteFlowMatchV4", (("rule_context", "ptr"), ("src_ip", "ipv4"), ("dst_ip", "ipv4"), ("next_hop", "ipv4"),
                                ("mac_addr", "wstr")), None),
    315: ("PARouteFlowMatchV6", (("rule_context", "ptr"), ("src_ip", "ipv6"), ("dst_ip", "ipv6"), ("next_hop", "ipv6"),
                                ("mac_addr", "wstr")), None),
    316: ("PARouteIpCallbackV4", (("rule_context", "ptr"), ("flags", "u32"), ("dst_ip", "ipv4"), ("mac_addr", "wstr")),
          None),
    317: ("PARouteIpCallbackV6", (("rule_context", "ptr"), ("flags", "u32"), ("dst_ip", "ipv6"), ("mac_addr", "wstr")),
          None),
    331: ("QosReservationLineConfigEventCreateLine", _QOS_LINE, None),
    332: ("QosReservationLineConfigEventUpdateLine", _QOS_LINE, None),
    333: ("QosReservationLineConfigEventDeleteLine", _QOS_LINE, None),
    334: ("QosReservationLineAvailBwChange", _QOS_LINE, None),
    335: ("QosReservationLineExternalNicEventConnect", _QOS_LINE, None),
    336: ("QosReservationLineExternalNicEventLinkState", _QOS_LINE, None),
    337: ("QosReservationLineExternalNicEventSpeedChange", _QOS_LINE, None),
    338: ("QosReservationLineRateAllocationEvent", (("line_id", "u64"), ("allocation_event", "u32")), None),
    339: ("QosReservationQueueEventAdd", (("switch_name", "wstr"), ("line_id", "u64"), ("queue_name", "wstr")), None),
    340: ("QosReservationQueueEventDelete", (("switch_name", "wstr"), ("line_id", "u64"), ("queue_name", "wstr")), None),
    355: ("SaveFailed", _SAVE_FAILED, "src_port_id"),
    356: ("SaveCompleteFailed", _SAVE_FAILED, "src_port_id"),
    357: ("RestoreFailed", _SAVE_FAILED, "src_port_id"),
    358: ("SaveSucceeded", (("save_data_size", "u32"), ("block_on_restore", "bool32")), "src_port_id"),
    359: ("SaveCompleteSucceeded", (("save_data_size", "u32"), ("block_on_restore", "bool32")), "src_port_id"),
    360: ("RestoreSucceeded", (("save_data_size", "u32"), ("block_on_restore", "bool32")), "src_port_id"),
    361: ("SaveBufferRequested", (("save_data_size", "u32"),), "src_port_id"),
    362: ("SaveSkipped", (("message", "counted_wstr"), ("reason", "u8")), "src_port_id"),
    363: ("RestoreSkipped", (("message", "counted_wstr"), ("reason", "u8")), "src_port_id"),
    364: ("RestoreFailureSuppressed", (("message", "counted_wstr"),), "src_port_id"),
}


def _forms(name: str, fields: tuple, port: str | None) -> tuple[Layout, ...]:
    """The parser's layout, and (for an event that starts with a port id) the same with the port named by a
    string (see the module notes)."""
    if port is None:
        return (Layout(name, fields),)
    return (Layout(name, ((port, "u32"),) + fields),
            Layout(name, ((_PORT_FIELDS[port], "wstr"),) + fields, note=PORT_NAME_NOTE))


_FORMS = {(event_id, 0): _forms(*spec) for event_id, spec in _EVENTS.items()}
LAYOUTS: dict[tuple[int, int], tuple[Layout, ...]] = dict(_FORMS)

DROP_EVENTS = frozenset({51, 52, 53, 54, 55, 56, 57, 351})
RULE_MATCH_EVENTS = frozenset({101, 102, 103, 104, 105})
RULE_AUDIT_EVENTS = frozenset({400, 401, 402, 403, 404})
RULE_NO_MATCH_EVENTS = frozenset({115, 116, 117, 118, 119})
EVENT_ENCAP, EVENT_DECAP = 154, 155
NAT_BINDING_EVENTS = frozenset({207, 208})
DIRECTIONS = {0: "out", 1: "in"}  # VFPEXT_MapPacketDirectionType: 0 outbound, 1 inbound

_PROVIDER = ProviderLayouts(LAYOUTS, NAME)
_BY_ID = ProviderLayouts({key: forms[0] for key, forms in _FORMS.items()}, NAME)
_BY_NAME = ProviderLayouts({key: forms[1] for key, forms in _FORMS.items() if len(forms) > 1}, NAME)
EVENT_NAMES = {event_id: _PROVIDER.event_name(event_id, version) for event_id, version in LAYOUTS}
event_name = _PROVIDER.event_name


def decode(event_id: int, version: int, payload: memoryview, pointer_size: int = 8,
           os_build: int | None = None) -> dict[str, Any] | None:
    """The fields by the port-name or the port-id form; None without a layout; WireError if neither fits.

    The name form is tried first, as current hosts write it. A port id below 65536 also reads as a one-character
    name: only for such a name is the id form tried as well, and it wins where both fit."""
    try:
        by_name = _BY_NAME.decode(event_id, version, payload, pointer_size, os_build)
    except WireError:
        by_name = None
    if by_name is not None and len(by_name.get("port_name") or by_name.get("src_port_name") or "") > 1:
        return by_name
    try:
        by_id = _BY_ID.decode(event_id, version, payload, pointer_size, os_build)
    except WireError:
        if by_name is None:
            raise
        return by_name
    return by_id
