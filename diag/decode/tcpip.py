"""Microsoft-Windows-TCPIP {2F07E2EE-15DB-40F1-90EF-9D7BA282188A}: interfaces, compartments, addresses,
routes, neighbours, DAD, drops and port exhaustion.

Layouts: the provider's manifest field lists per Windows release (jdu2600/Windows10EtwEvents, one
file per release from Windows 10 1511 to Windows 11 25H2; knowledge/event-catalogue.yaml names the
files), checked release by release by tests/test_layout_sources.py. Value maps: the manifest
reconstructed by repnz (Windows 10 18990) and the one dissect.etl bundles. The address events carry
an ``IPv4Address`` (4 bytes, network order) *and* an ``IPv6Address`` sized by ``IpAddrLength``;
``IPProtocol`` (4 or 6, TCPIP_Protocol_ValueMap) says which holds the address. Version 1 of most
events appends ``CompartmentId``. Each decoded address or route gets a unified ``address`` field.

Revisions without a version bump: 1145/1146 v0 end with ``IPUnicastroutedeletionreason`` from 24H2
(build 26100) on. 1145/1146 v1 (25H2) reorder the route (each address right after its length, the
compartment after the interface) and drop the IPv4 copies and ``IPProtocol``: the family is the
address length. ``Pointer`` fields follow the trace's pointer size.
"""

from __future__ import annotations

from typing import Any

from diag.decode.fields import Layout, ProviderLayouts

PROVIDER = "2f07e2ee-15db-40f1-90ef-9d7ba282188a"
NAME = "Microsoft-Windows-TCPIP"

COMPARTMENT = (("compartment_id", "u32"),)
WIN11_24H2 = 26100  # first build whose manifest has the trailing field of 1145/1146 v0
_ADDRESS = (("interface", "u32"), ("protocol", "cstr"), ("dad_state", "u32"), ("dl_address_length", "u32"),
            ("dl_address", "mac", "dl_address_length"), ("ip_address_length", "u32"), ("ipv4_address", "ipv4"),
            ("ipv6_address", "ip", "ip_address_length"), ("ip_protocol", "u32"))
_MEDIA = (("interface", "u32"), ("trace_string", "cstr"))
_NEIGHBOUR = (("interface", "u32"), ("dl_address_length", "u32"), ("dl_address", "mac", "dl_address_length"),
              ("ip_address_length", "u32"), ("ipv4_address", "ipv4"), ("ipv6_address", "ip", "ip_address_length"),
              ("ip_protocol", "u32"))
_NEIGHBOUR_STATE = (("interface", "u32"), ("ip_address_length", "u32"), ("ip_address", "ip", "ip_address_length"),
                    ("dl_address_length", "u32"), ("dl_address", "mac", "dl_address_length"),
                    ("old_state", "u32"), ("new_state", "u32"), ("neighbor_event", "u32"))
_ROUTE_FLAGS = (("valid_lifetime", "u64"), ("preferred_lifetime", "u64"), ("metric", "u32"), ("loopback", "u32"),
                ("autoconfigure_address", "u32"), ("publish", "u32"), ("immortal", "u32"))
_ROUTE = (("route", "ptr"), ("interface", "u32"), ("destination_address_length", "u32"),
          ("next_hop_address_length", "u32"), ("protocol", "cstr"), ("destination_prefix_length", "u32"),
          ("destination_prefix", "ip", "destination_address_length"), ("next_hop", "ip", "next_hop_address_length"),
          *_ROUTE_FLAGS, ("ipv4_destination_prefix", "ipv4"), ("ipv4_next_hop", "ipv4"), ("ip_protocol", "u32"))
_DELETION_REASON = (("unicast_route_deletion_reason", "u32"),)
_ROUTE_V1 = (("route", "ptr"), ("interface", "u32"), ("compartment_id", "u32"), ("destination_address_length", "u32"),
             ("destination_prefix", "ip", "destination_address_length"), ("next_hop_address_length", "u32"),
             ("next_hop", "ip", "next_hop_address_length"), ("destination_prefix_length", "u32"),
             *_ROUTE_FLAGS) + _DELETION_REASON
_RUNDOWN_V0 = (("if_index", "u32"), ("link_speed", "u64"), ("ip_protocol", "u32"), ("ipv4_address", "ipv4"),
               ("ip_address_length", "u32"), ("ipv6_address", "ip", "ip_address_length"),
               ("physical_medium_type", "u32"))
_RUNDOWN_V1 = _RUNDOWN_V0 + COMPARTMENT + (("old_link_speed", "u64"),)
_RUNDOWN_V2 = _RUNDOWN_V1 + (("network_category", "u32"),)
_RUNDOWN_V3 = _RUNDOWN_V2 + (("metric", "u32"), ("connected", "u32"), ("internet_connectivity", "u32"),
                             ("flags", "u64"))
_RUNDOWN_V4 = _RUNDOWN_V3 + (("isolation_id", "u32"),)
_RUNDOWN_V5 = _RUNDOWN_V4 + (("nl_mtu", "u32"),)
_RUNDOWN_V6 = _RUNDOWN_V5 + (("forwarding_tag", "u32"),)
_INTERFACE_PROPERTY = (("interface", "u32"), ("advertise", "u32"), ("advertise_default_route", "u32"),
                       ("forward", "u32"), ("forward_multicast", "u32"), ("use_nud", "u32"),
                       ("advertising_enabled", "u32"))
_INTERFACE_PROPERTY_V1 = _INTERFACE_PROPERTY + (("weak_host_send", "u32"), ("weak_host_receive", "u32")) + \
    COMPARTMENT + (("address_family", "u32"),)
_TRANSPORT_DROPS = (("transport_protocol", "u32"), ("address_family", "u32"), ("local_length", "u32"),
                    ("local", "sockaddr", "local_length"), ("remote_length", "u32"), ("remote", "sockaddr", "remote_length"),
                    ("reason", "u32"), ("packet_count", "u32"))
_NETWORK_DROPS = (("transport_protocol", "u32"), ("address_family", "u32"), ("source_ipv4", "ipv4"),
                  ("destination_ipv4", "ipv4"), ("source_ipv6_length", "u32"), ("source_ipv6", "ip", "source_ipv6_length"),
                  ("destination_ipv6_length", "u32"), ("destination_ipv6", "ip", "destination_ipv6_length"),
                  ("reason", "u32"), ("packet_count", "u32"), ("ip_protocol", "u32"))
_NETWORK_DROPS_V1 = _NETWORK_DROPS + (
    ("source_address_length", "u32"), ("source_address", "ip", "source_address_length"),
    ("destination_address_length", "u32"), ("destination_address", "ip", "destination_address_length"),
    ("if_index", "u32"), ("path_direction", "u32"))
_NETWORK_DROPS_V2 = _NETWORK_DROPS_V1 + (("nbl", "ptr"),)


def _versions(event_id: int, name: str, v0: tuple, v1_extra: tuple = COMPARTMENT) -> dict:
    return {(event_id, 0): Layout(name, v0), (event_id, 1): Layout(name, v0 + v1_extra)}


def _route(name: str) -> tuple[Layout, Layout]:
    return Layout(name, _ROUTE), Layout(name, _ROUTE + _DELETION_REASON, since=WIN11_24H2)


LAYOUTS: dict[tuple[int, int], Layout | tuple[Layout, ...]] = {
    **_versions(1106, "MediaDisconnected", _MEDIA),
    **_versions(1321, "MediaConnected", _MEDIA),
    **_versions(1114, "DadSucceeded", _ADDRESS),
    **_versions(1115, "DadFailed", _ADDRESS),
    **_versions(1116, "DadStarted", _ADDRESS),
    **_versions(1127, "AddressAdded", _ADDRESS),
    (1127, 2): Layout("AddressAdded", _ADDRESS + COMPARTMENT + (("prefix_origin", "u32"), ("suffix_origin", "u32"))),
    **_versions(1128, "AddressDeleted", _ADDRESS),
    **_versions(1144, "InterfacePropertyChanged", _INTERFACE_PROPERTY, _INTERFACE_PROPERTY_V1[len(_INTERFACE_PROPERTY):]),
    (1144, 2): Layout("InterfacePropertyChanged", _INTERFACE_PROPERTY_V1 + (("strict_source_forwarding", "u32"),)),
    (1145, 0): _route("RouteCreated"),
    (1145, 1): Layout("RouteCreated", _ROUTE_V1),
    (1146, 0): _route("RouteDeleted"),
    (1146, 1): Layout("RouteDeleted", _ROUTE_V1),
    (1148, 0): Layout("NeighborUnreachable", _NEIGHBOUR),
    (1149, 0): Layout("NeighborReachable", _NEIGHBOUR),
    (1195, 0): Layout("PortExhaustionWeakReference", (("port_acquirer", "ptr"), ("port", "u16"),
                                                      ("weak_reference", "u32"), ("original_acquirer", "ptr"))),
    (1202, 0): Layout("InterfaceRundown", _RUNDOWN_V0),
    (1202, 1): Layout("InterfaceRundown", _RUNDOWN_V1),
    (1202, 2): Layout("InterfaceRundown", _RUNDOWN_V2),
    (1202, 3): Layout("InterfaceRundown", _RUNDOWN_V3),
    (1202, 4): Layout("InterfaceRundown", _RUNDOWN_V4),
    (1202, 5): Layout("InterfaceRundown", _RUNDOWN_V5),
    (1202, 6): Layout("InterfaceRundown", _RUNDOWN_V6),
    (1214, 0): Layout("TransportPacketsDropped", _TRANSPORT_DROPS),
    (1215, 0): Layout("NetworkPacketsDropped", _NETWORK_DROPS),
    (1215, 1): Layout("NetworkPacketsDropped", _NETWORK_DROPS_V1),
    (1215, 2): Layout("NetworkPacketsDropped", _NETWORK_DROPS_V2),
    **_versions(1324, "NeighborStateChanged", _NEIGHBOUR_STATE),
}
ADDRESS_EVENTS = frozenset({1114, 1115, 1116, 1127, 1128})
IP_PROTOCOL_V4, IP_PROTOCOL_V6 = 4, 6

_PROVIDER = ProviderLayouts(LAYOUTS, NAME)
EVENT_NAMES = {event_id: _PROVIDER.event_name(event_id, version) for event_id, version in LAYOUTS}


def event_name(event_id: int, version: int) -> str | None:
    return _PROVIDER.event_name(event_id, version)


def decode(event_id: int, version: int, payload: memoryview, pointer_size: int = 8,
           os_build: int | None = None) -> dict[str, Any] | None:
    fields = _PROVIDER.decode(event_id, version, payload, pointer_size, os_build)
    if fields is None:
        return None
    if "ip_protocol" in fields and ("ipv4_address" in fields or "destination_prefix" in fields):
        _unify(fields)
    elif "destination_prefix" in fields:  # 1145/1146 v1: no IPProtocol, the address length says
        fields.update(address=fields["destination_prefix"],
                      family={4: "IPv4", 16: "IPv6"}.get(fields["destination_address_length"]))
    return fields


def _unify(fields: dict[str, Any]) -> None:
    """``address``/``family`` from the IPv4/IPv6 pair, as the manifest's IPProtocol map says."""
    if fields["ip_protocol"] == IP_PROTOCOL_V6:
        v6 = fields.get("ipv6_address", fields.get("destination_prefix"))
        fields.update(address=v6, family="IPv6")
    elif fields["ip_protocol"] == IP_PROTOCOL_V4:
        fields.update(address=fields.get("ipv4_address", fields.get("ipv4_destination_prefix")), family="IPv4")
