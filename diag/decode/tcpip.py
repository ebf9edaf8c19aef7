"""Microsoft-Windows-TCPIP {2F07E2EE-15DB-40F1-90EF-9D7BA282188A}: interfaces, compartments, addresses,
routes, neighbours, DAD, drops and port exhaustion.

Layouts: etl-parser's generated catalogue (all versions), checked field by field against the TDH
manifest that dissect.etl bundles (version 0 only): the address events carry an ``IPv4Address``
(4 bytes, network order) *and* an ``IPv6Address`` sized by ``IpAddrLength``, and ``IPProtocol``
(4 or 6, per the manifest's TCPIP_Protocol_ValueMap) says which one holds the address. Version 1 of
most events appends ``CompartmentId``. Each decoded event gets a unified ``address`` field.
"""

from __future__ import annotations

from typing import Any

from diag.decode.fields import Layout, ProviderLayouts

PROVIDER = "2f07e2ee-15db-40f1-90ef-9d7ba282188a"
NAME = "Microsoft-Windows-TCPIP"

COMPARTMENT = (("compartment_id", "u32"),)
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
_ROUTE = (("route", "u64"), ("interface", "u32"), ("destination_address_length", "u32"),
          ("next_hop_address_length", "u32"), ("protocol", "cstr"), ("destination_prefix_length", "u32"),
          ("destination_prefix", "ip", "destination_address_length"), ("next_hop", "ip", "next_hop_address_length"),
          ("valid_lifetime", "u64"), ("preferred_lifetime", "u64"), ("metric", "u32"), ("loopback", "u32"),
          ("autoconfigure_address", "u32"), ("publish", "u32"), ("immortal", "u32"),
          ("ipv4_destination_prefix", "ipv4"), ("ipv4_next_hop", "ipv4"), ("ip_protocol", "u32"))
_RUNDOWN_V0 = (("if_index", "u32"), ("link_speed", "u64"), ("ip_protocol", "u32"), ("ipv4_address", "ipv4"),
               ("ip_address_length", "u32"), ("ipv6_address", "ip", "ip_address_length"),
               ("physical_medium_type", "u32"))
_RUNDOWN_V1 = _RUNDOWN_V0 + COMPARTMENT + (("old_link_speed", "u64"),)
_RUNDOWN_V2 = _RUNDOWN_V1 + (("network_category", "u32"),)
_RUNDOWN_V3 = _RUNDOWN_V2 + (("metric", "u32"), ("connected", "u32"), ("internet_connectivity", "u32"),
                             ("flags", "u64"))
_INTERFACE_PROPERTY = (("interface", "u32"), ("advertise", "u32"), ("advertise_default_route", "u32"),
                       ("forward", "u32"), ("forward_multicast", "u32"), ("use_nud", "u32"),
                       ("advertising_enabled", "u32"))
_TRANSPORT_DROPS = (("transport_protocol", "u32"), ("address_family", "u32"), ("local_length", "u32"),
                    ("local", "sockaddr", "local_length"), ("remote_length", "u32"), ("remote", "sockaddr", "remote_length"),
                    ("reason", "u32"), ("packet_count", "u32"))
_NETWORK_DROPS = (("transport_protocol", "u32"), ("address_family", "u32"), ("source_ipv4", "ipv4"),
                  ("destination_ipv4", "ipv4"), ("source_ipv6_length", "u32"), ("source_ipv6", "ip", "source_ipv6_length"),
                  ("destination_ipv6_length", "u32"), ("destination_ipv6", "ip", "destination_ipv6_length"),
                  ("reason", "u32"), ("packet_count", "u32"), ("ip_protocol", "u32"))


def _versions(event_id: int, name: str, v0: tuple, v1_extra: tuple = COMPARTMENT) -> dict:
    return {(event_id, 0): Layout(name, v0), (event_id, 1): Layout(name, v0 + v1_extra)}


LAYOUTS: dict[tuple[int, int], Layout] = {
    **_versions(1106, "MediaDisconnected", _MEDIA),
    **_versions(1321, "MediaConnected", _MEDIA),
    **_versions(1114, "DadSucceeded", _ADDRESS),
    **_versions(1115, "DadFailed", _ADDRESS),
    **_versions(1116, "DadStarted", _ADDRESS),
    **_versions(1127, "AddressAdded", _ADDRESS),
    **_versions(1128, "AddressDeleted", _ADDRESS),
    **_versions(1144, "InterfacePropertyChanged", _INTERFACE_PROPERTY,
                (("weak_host_send", "u32"), ("weak_host_receive", "u32")) + COMPARTMENT + (("address_family", "u32"),)),
    (1145, 0): Layout("RouteCreated", _ROUTE),
    (1146, 0): Layout("RouteDeleted", _ROUTE),
    (1148, 0): Layout("NeighborUnreachable", _NEIGHBOUR),
    (1149, 0): Layout("NeighborReachable", _NEIGHBOUR),
    (1195, 0): Layout("PortExhaustionWeakReference", (("port_acquirer", "u64"), ("port", "u16"),
                                                      ("weak_reference", "u32"), ("original_acquirer", "u64"))),
    (1202, 0): Layout("InterfaceRundown", _RUNDOWN_V0),
    (1202, 1): Layout("InterfaceRundown", _RUNDOWN_V1),
    (1202, 2): Layout("InterfaceRundown", _RUNDOWN_V2),
    (1202, 3): Layout("InterfaceRundown", _RUNDOWN_V3),
    (1214, 0): Layout("TransportPacketsDropped", _TRANSPORT_DROPS),
    (1215, 0): Layout("NetworkPacketsDropped", _NETWORK_DROPS),
    **_versions(1324, "NeighborStateChanged", _NEIGHBOUR_STATE),
}
ADDRESS_EVENTS = frozenset({1114, 1115, 1116, 1127, 1128})
IP_PROTOCOL_V4, IP_PROTOCOL_V6 = 4, 6

_PROVIDER = ProviderLayouts(LAYOUTS, NAME)
EVENT_NAMES = {event_id: _PROVIDER.event_name(event_id, version) for event_id, version in LAYOUTS}


def event_name(event_id: int, version: int) -> str | None:
    return _PROVIDER.event_name(event_id, version)


def decode(event_id: int, version: int, payload: memoryview, pointer_size: int = 8) -> dict[str, Any] | None:
    fields = _PROVIDER.decode(event_id, version, payload)
    if fields is not None and "ip_protocol" in fields and ("ipv4_address" in fields or "destination_prefix" in fields):
        _unify(fields)
    return fields


def _unify(fields: dict[str, Any]) -> None:
    """``address``/``family`` from the IPv4/IPv6 pair, as the manifest's IPProtocol map says."""
    if fields["ip_protocol"] == IP_PROTOCOL_V6:
        v6 = fields.get("ipv6_address", fields.get("destination_prefix"))
        fields.update(address=v6, family="IPv6")
    elif fields["ip_protocol"] == IP_PROTOCOL_V4:
        fields.update(address=fields.get("ipv4_address", fields.get("ipv4_destination_prefix")), family="IPv4")
