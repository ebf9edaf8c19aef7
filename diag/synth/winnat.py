"""Encoders for Microsoft-Windows-WinNat, from etl-parser's catalogue; messages: research notes §4.5.

* 1019 v1 "Created NAT instance %1 for RoutingDomainId %2 (CompartmentId %5) with ... prefix %4/%3":
  InstanceName wstr, InternalRoutingDomainId GUID, PrefixLength u32, AddressPrefix u32 (network
  order bytes), CompartmentId, ExternalInterfaceIndex, six timeouts/behaviours u32,
  UdpInboundRefresh (a 4-byte win:Boolean), InstanceType u32 (1: InternalPrefixInstance, the
  WINNATM_INSTANCE_TYPE_ValueMap of repnz's 17134 manifest: the prefix is the NAT network's);
  1023 v1 has the same fields (the instance rundown);
* 1030 "NAT dropped IPv4 %5 packet which arrived over %4 interface %3 in compartment %2 with reason
  %1" (ActionReason: value map UNCONFIRMED) with the captured IP and transport headers;
* 1033 "NAT instance %1 failed to allocate a %2 port dynamically because all ports in the
  instance's external address pool are in use." (InstanceName, TransportProtocol);
* 1031 "NAT detected a default route in compartment %1 interface %2. Default routes in internal
  compartments will prevent NAT operation for those compartments." (CompartmentId, InterfaceIndex;
  1032 has the same fields and message). Level: warning, assumed (UNCONFIRMED).
"""

from __future__ import annotations

import ipaddress
import uuid

from diag.synth import eventmetadata as em

PROVIDER = uuid.UUID("66c07ecd-6667-43fc-93f8-05cf07f446ec")
PROVIDER_NAME = "Microsoft-Windows-WinNat"
EVENT_INSTANCE_CREATED, EVENT_INSTANCE_RUNDOWN, EVENT_DROP, EVENT_PORT_POOL_EXHAUSTED = 1019, 1023, 1030, 1033
INSTANCE_INTERNAL_PREFIX = 1
EVENT_DEFAULT_ROUTE_IN_INTERNAL_COMPARTMENT = 1031

_F = em.Field
_U8, _U32 = em.IN_UINT8, em.IN_UINT32
_INSTANCE = (
    _F("InstanceName", em.IN_UNICODESTRING), _F("InternalRoutingDomainId", em.IN_GUID), _F("PrefixLength", _U32),
    _F("AddressPrefix", _U32, em.OUT_IPV4), _F("CompartmentId", _U32), _F("ExternalInterfaceIndex", _U32),
    _F("UdpIdleSessionTimeout", _U32), _F("TcpTransientConnectionTimeout", _U32),
    _F("TcpEstablishedConnectionTimeout", _U32), _F("IcmpQueryTimeout", _U32), _F("TcpFilteringBehavior", _U32),
    _F("UdpFilteringBehavior", _U32), _F("UdpInboundRefresh", _U32), _F("InstanceType", _U32),
)
_DROP = (
    _F("ActionReason", _U32), _F("ArrivalCompartmentId", _U32), _F("ArrivalInterfaceIndex", _U32),
    _F("ArrivalNetwork", _U32), _F("TransportProtocol", _U32), _F("ForwardCompartmentId", _U32),
    _F("ForwardInterfaceIndex", _U32), _F("PacketLength", _U32), _F("ContinuousLength", _U32),
    _F("CapturedIPHeaderLength", _U32), _F("CapturedTransportHeaderLength", _U32),
    _F("ICMPErrorTransportProtocol", _U32), _F("ICMPErrorCapturedIPHeaderLength", _U32),
    _F("ICMPErrorCapturedTransportHeaderLength", _U32),
    _F("IPHeader", em.IN_BINARY, length_field="CapturedIPHeaderLength"),
    _F("TransportHeader", em.IN_BINARY, length_field="CapturedTransportHeaderLength"),
    _F("ICMPErrorIPHeader", em.IN_BINARY, length_field="ICMPErrorCapturedIPHeaderLength"),
    _F("ICMPErrorTransportHeader", em.IN_BINARY, length_field="ICMPErrorCapturedTransportHeaderLength"),
)

LAYOUTS: dict[int, em.EventLayout] = {
    EVENT_INSTANCE_CREATED: em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_INSTANCE_CREATED, _INSTANCE, version=1),
    EVENT_INSTANCE_RUNDOWN: em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_INSTANCE_RUNDOWN, _INSTANCE, version=1),
    EVENT_DROP: em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_DROP, _DROP, level=5),
    EVENT_PORT_POOL_EXHAUSTED: em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_PORT_POOL_EXHAUSTED,
                                              (_F("InstanceName", em.IN_UNICODESTRING), _F("TransportProtocol", _U32)),
                                              level=3),
    EVENT_DEFAULT_ROUTE_IN_INTERNAL_COMPARTMENT: em.EventLayout(
        PROVIDER, PROVIDER_NAME, EVENT_DEFAULT_ROUTE_IN_INTERNAL_COMPARTMENT,
        (_F("CompartmentId", _U32), _F("InterfaceIndex", _U32)), level=3),
}


def version_of(event_id: int) -> int:
    return LAYOUTS[event_id].version


def level_of(event_id: int) -> int:
    return LAYOUTS[event_id].level


def encode_instance(event_id: int, *, name: str, routing_domain: uuid.UUID, prefix: str, compartment: int,
                    external_if_index: int) -> bytes:
    """1019 (created) or 1023 (rundown): a NAT instance, its internal prefix and its compartment."""
    net = ipaddress.IPv4Network(prefix)
    return em.encode_fields(LAYOUTS[event_id], {
        "InstanceName": name, "InternalRoutingDomainId": routing_domain, "PrefixLength": net.prefixlen,
        "AddressPrefix": int.from_bytes(net.network_address.packed, "little"), "CompartmentId": compartment,
        "ExternalInterfaceIndex": external_if_index, "UdpIdleSessionTimeout": 120,
        "TcpTransientConnectionTimeout": 120, "TcpEstablishedConnectionTimeout": 1800, "IcmpQueryTimeout": 30,
        "TcpFilteringBehavior": 1, "UdpFilteringBehavior": 1, "UdpInboundRefresh": 0,
        "InstanceType": INSTANCE_INTERNAL_PREFIX})


def encode_port_pool_exhausted(name: str, transport_protocol: int) -> bytes:
    """1033: the instance's external address pool has no free port for this protocol."""
    return em.encode_fields(LAYOUTS[EVENT_PORT_POOL_EXHAUSTED], {"InstanceName": name,
                                                                 "TransportProtocol": transport_protocol})


def encode_drop(*, reason: int, arrival_compartment: int, arrival_if_index: int, forward_compartment: int,
                forward_if_index: int, ip_packet: bytes, transport_protocol: int) -> bytes:
    """1030: a dropped IPv4 packet, with its IP and transport headers."""
    ihl = (ip_packet[0] & 0x0F) * 4
    transport = ip_packet[ihl:ihl + 20]
    return em.encode_fields(LAYOUTS[EVENT_DROP], {
        "ActionReason": reason, "ArrivalCompartmentId": arrival_compartment, "ArrivalInterfaceIndex": arrival_if_index,
        "ArrivalNetwork": 0, "TransportProtocol": transport_protocol, "ForwardCompartmentId": forward_compartment,
        "ForwardInterfaceIndex": forward_if_index, "PacketLength": len(ip_packet), "ContinuousLength": len(ip_packet),
        "ICMPErrorTransportProtocol": 0, "IPHeader": ip_packet[:ihl], "TransportHeader": transport,
        "ICMPErrorIPHeader": b"", "ICMPErrorTransportHeader": b""})


def encode_default_route(*, compartment: int, if_index: int) -> bytes:
    """1031: a default route in an internal compartment, on this interface."""
    return em.encode_fields(LAYOUTS[EVENT_DEFAULT_ROUTE_IN_INTERNAL_COMPARTMENT],
                            {"CompartmentId": compartment, "InterfaceIndex": if_index})
