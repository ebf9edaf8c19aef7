"""Microsoft-Windows-WinNat {66C07ECD-6667-43FC-93F8-05CF07F446EC}: NAT instances, sessions, drops.

Layouts: the manifest's field lists (jdu2600, Windows 10 1703 and Windows 11 24H2; checked by
tests/test_layout_sources.py) and etl-parser's catalogue; meanings: the provider's message strings
(1001-1046); value maps (ActionReason, InstanceType): the manifest reconstructed by repnz (17134);
see knowledge/event-catalogue.yaml. Transport addresses (sessions, bindings) are SOCKADDR
structures sized by their length field; instance prefixes are an IPv4 address in network order
after its length; external/internal addresses (1024-1026, 1045, 1046) are bare IP addresses.
An instance event's v0 prefix is its external interface's (``external_interface_prefix``), not the
NAT network's; v1's ``prefix`` is internal or external as ``instance_type`` says.
"""

from __future__ import annotations

from diag.decode.fields import Layout, ProviderLayouts

PROVIDER = "66c07ecd-6667-43fc-93f8-05cf07f446ec"
NAME = "Microsoft-Windows-WinNat"

COMPARTMENT = (("compartment_id", "u32"),)
_SESSION = (("internal_length", "u32"), ("internal_source", "sockaddr", "internal_length"),
            ("internal_destination", "sockaddr", "internal_length"), ("external_length", "u32"),
            ("external_source", "sockaddr", "external_length"), ("external_destination", "sockaddr", "external_length"),
            ("transport_protocol", "u32"), ("lifetime", "u32"), ("tcp_state", "u32"))
_BINDING = (("internal_length", "u32"), ("internal", "sockaddr", "internal_length"), ("external_length", "u32"),
            ("external", "sockaddr", "external_length"), ("transport_protocol", "u32"), ("session_count", "u32"))

# v0 names the prefix of the NAT's *external* interface (ExternalIPInterfaceAddressPrefix); v1 names
# a prefix whose role InstanceType gives (WINNATM_INSTANCE_TYPE_ValueMap: 1 internal, 2 external).
def _instance_head(prefix: str) -> tuple:
    return (("instance_name", "wstr"), ("routing_domain_id", "guid"), (f"{prefix}_length", "u32"),
            (prefix, "ipv4"), ("compartment_id", "u32"), ("external_if_index", "u32"))


_TIMERS = (("udp_idle_timeout", "u32"), ("tcp_transient_timeout", "u32"), ("tcp_established_timeout", "u32"),
           ("icmp_query_timeout", "u32"), ("tcp_filtering", "u32"), ("udp_filtering", "u32"))
_PACKET = (("action_reason", "u32"), ("arrival_compartment_id", "u32"), ("arrival_if_index", "u32"),
           ("arrival_network", "u32"), ("transport_protocol", "u32"), ("forward_compartment_id", "u32"),
           ("forward_if_index", "u32"), ("packet_length", "u32"), ("contiguous_length", "u32"),
           ("ip_header_length", "u32"), ("transport_header_length", "u32"), ("icmp_error_protocol", "u32"),
           ("icmp_error_ip_header_length", "u32"), ("icmp_error_transport_header_length", "u32"),
           ("ip_header", "bin", "ip_header_length"), ("transport_header", "bin", "transport_header_length"),
           ("icmp_error_ip_header", "bin", "icmp_error_ip_header_length"),
           ("icmp_error_transport_header", "bin", "icmp_error_transport_header_length"))
_EXTERNAL_ADDRESS = (("instance_name", "wstr"), ("address_length", "u32"), ("address", "ip", "address_length"),
                     ("port_start", "u16"), ("port_end", "u16"))
_INTERNAL_ADDRESS = (("instance_name", "wstr"), ("address_length", "u32"), ("address", "ip", "address_length"),
                     ("if_index", "u32"))
_DEFAULT_ROUTE = (("compartment_id", "u32"), ("if_index", "u32"))


def _flag(name: str) -> tuple[tuple, tuple]:
    """A boolean etl-parser reads as one byte; a manifest win:Boolean is four. Both are tried."""
    return ((name, "bool8"),), ((name, "bool32"),)


def _sessions(event_id: int, name: str) -> dict:
    return {(event_id, 0): Layout(name, _SESSION), (event_id, 1): Layout(name, _SESSION + COMPARTMENT)}


def _bindings(event_id: int, name: str) -> dict:
    flags = _flag("configured")
    return {(event_id, 0): tuple(Layout(name, _BINDING + f) for f in flags),
            (event_id, 1): tuple(Layout(name, _BINDING + f + COMPARTMENT) for f in flags)}


def _instances(event_id: int, name: str, with_v1: bool = True) -> dict:
    flags = _flag("udp_inbound_refresh")
    out = {(event_id, 0): tuple(Layout(name, _instance_head("external_interface_prefix") + _TIMERS + f)
                                for f in flags)}
    if with_v1:
        out[(event_id, 1)] = tuple(Layout(name, _instance_head("prefix") + _TIMERS + f + (("instance_type", "u32"),))
                                   for f in flags)
    return out


LAYOUTS: dict[tuple[int, int], Layout | tuple[Layout, ...]] = {
    **_sessions(1001, "SessionCreated"), **_sessions(1002, "SessionLifetimeUpdated"),
    **_sessions(1003, "SessionStateUpdated"), **_sessions(1004, "SessionTimedOut"), **_sessions(1005, "SessionDeleted"),
    **_bindings(1006, "BindingCreated"), **_bindings(1007, "BindingDeleted"),
    **_bindings(1008, "BindingSessionCountUpdated"),
    **_instances(1019, "InstanceCreated"), **_instances(1020, "InstanceModified", False),
    **_instances(1021, "InstanceExternalInterface", False), **_instances(1022, "InstanceDeleted", False),
    **_instances(1023, "InstanceRundown"), **_instances(1037, "InstanceWithoutMatchingPrefix"),
    (1024, 0): Layout("ExternalAddressAdded", _EXTERNAL_ADDRESS),
    (1025, 0): Layout("ExternalAddressRemoved", _EXTERNAL_ADDRESS),
    (1026, 0): Layout("ExternalAddressRundown", _EXTERNAL_ADDRESS),
    (1030, 0): Layout("PacketDropped", _PACKET),
    (1031, 0): Layout("DefaultRouteInInternalCompartment", _DEFAULT_ROUTE),
    (1032, 0): Layout("DefaultRouteInInternalCompartment", _DEFAULT_ROUTE),
    (1033, 0): Layout("PortPoolExhausted", (("instance_name", "wstr"), ("transport_protocol", "u32"))),
    (1034, 0): Layout("PacketLeftToHostStack", _PACKET),
    (1035, 0): Layout("PacketForwarded", _PACKET),
    (1036, 0): Layout("NatError", (("error_id", "u32"), ("error_context", "wstr"), ("error_misc", "u32"),
                                   ("status", "u32"))),
    (1045, 0): Layout("InternalAddressAdded", _INTERNAL_ADDRESS),
    (1046, 0): Layout("InternalAddressRemoved", _INTERNAL_ADDRESS),
}
SESSION_EVENTS = frozenset(range(1001, 1006))
INSTANCE_EVENTS = frozenset({1019, 1020, 1021, 1023, 1037})
PACKET_EVENTS = {1030: "dropped", 1034: "left to host stack", 1035: "forwarded"}

_PROVIDER = ProviderLayouts(LAYOUTS, NAME)
EVENT_NAMES = {event_id: _PROVIDER.event_name(event_id, version) for event_id, version in LAYOUTS}


event_name = _PROVIDER.event_name
decode = _PROVIDER.decode  # (event id, version, payload, pointer size, OS build) -> fields, None, or WireError
