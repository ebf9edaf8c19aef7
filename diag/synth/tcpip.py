"""Encoders for Microsoft-Windows-TCPIP (tcpip.sys), from etl-parser's catalogue (generated from the
manifest); messages from the research notes §4.6. Versions with a CompartmentId are used:

* 1202 v3 interface rundown: IfIndex, link speed, IPProtocol, an address, PhysicalMediumType,
  CompartmentId, OldLinkSpeed, NetworkCategory, Metric, Connected, InternetConnectivityStatus, Flags;
* 1127 v1 / 1128 v1 "IP: Address addition / deletion. Address = %7 %9 %8, Interface = %1,
  Compartment = %10, Protocol = %2"; 1115 v1 "Address DAD failed" (DLAddress: the MAC of the host
  that answered for the address), with the same fields;
* 1214 transport drops, 1215 network-layer drops (Reason: assumed to be the pktmon NL/INET codes);
* 1195 "TCP: Portpool assigned port number %2 with weak references due to port exhaustion.";
* 1145 v0 IpRouteCreated: the route's interface, prefix length and (for IPv4) ``IPv4DestinationPrefix``
  and ``IPv4NextHopAddress``; the binary ``DestinationPrefix``/``NextHopAddress`` are left empty for
  IPv4, as for the address events (UNCONFIRMED);
* 1148 / 1149 v0 IpNeighborUnreachable / IpNeighborReachable (Interface, DlAddress, the address);
* 1324 v1 IpNeighborState: Interface, IPAddress (binary), DLAddress, Old/NewNeighborState
  (TCPIP_NEIGHBOR_STATE_ValueMap: 0 Unreachable, 1 Incomplete, ... 5 Reachable), NeighborEvent,
  CompartmentId. A neighbour that never resolved has no DLAddress here (length 0; UNCONFIRMED).

Per build (the manifest field lists of jdu2600/Windows10EtwEvents): from Windows 11 21H2 (22000) a
host writes 1202 v4 (+ IsolationId; v6 from 22H2 with NlMtu and ForwardingTag) and 1127 v2 (+
PrefixOrigin, SuffixOrigin); 1145 v0 gains IPUnicastroutedeletionreason on 24H2 (26100) and 25H2
(26200) has 1145 v1, reordered with CompartmentId. ``layout_for`` gives the layout of a build and
the encoders take ``build``; which version a host of that build writes is assumed to be the newest
its manifest declares.

Addresses (the version-0 manifest dissect.etl bundles agrees on the field order): ``IPv4Address``
is a ``win:IPAddrV4`` (4 bytes, network order) and ``IPv6Address`` a binary sized by
``IpAddrLength``; ``IPProtocol`` (4 or 6, the manifest's TCPIP_Protocol_ValueMap) says which one
holds the address. An IPv4 event here carries no IPv6 bytes (length 0); what Windows puts there is
UNCONFIRMED. Keywords are the manifest's for each event.
"""

from __future__ import annotations

import ipaddress
import struct
import uuid

from diag.synth import eventmetadata as em

PROVIDER = uuid.UUID("2f07e2ee-15db-40f1-90ef-9d7ba282188a")
PROVIDER_NAME = "Microsoft-Windows-TCPIP"
EVENT_DAD_FAILED, EVENT_ADDRESS_ADDED, EVENT_ADDRESS_DELETED = 1115, 1127, 1128
EVENT_PORT_EXHAUSTION, EVENT_INTERFACE_RUNDOWN = 1195, 1202
EVENT_TRANSPORT_DROP, EVENT_NETWORK_DROP = 1214, 1215
EVENT_ROUTE_CREATED, EVENT_NEIGHBOR_UNREACHABLE, EVENT_NEIGHBOR_REACHABLE, EVENT_NEIGHBOR_STATE = 1145, 1148, 1149, 1324
NEIGHBOR_UNREACHABLE, NEIGHBOR_INCOMPLETE, NEIGHBOR_PROBE, NEIGHBOR_STALE, NEIGHBOR_REACHABLE = 0, 1, 2, 4, 5
NEIGHBOR_EVENT_RESOLVE, NEIGHBOR_EVENT_TIMEOUT, NEIGHBOR_EVENT_NA_CONFIRMS = 9, 10, 4  # TCPIP_NEIGHBOR_EVENT_ValueMap
AF_INET, AF_INET6 = 2, 23  # address families (1214/1215, socket addresses)
IP_PROTOCOL_V4, IP_PROTOCOL_V6 = 4, 6  # TCPIP_Protocol_ValueMap (IPProtocol of address events)
KW_INTERFACE, KW_ROUTE, KW_DIAGNOSIS, KW_CS_DIAG = 0x10, 0x20, 0x80, 0x2000
KW_RECEIVE_PATH, KW_CONNECT_PATH, KW_GLOBAL = 0x200000000, 0x400000000, 0x8000000000
KW_DROPS, KW_ADDRESS = 0x10000000000, 0x80000000000
DAD_STATE_DUPLICATE, DAD_STATE_PREFERRED = 2, 4
MEDIUM_802_3 = 14  # NdisPhysicalMedium802_3

_F = em.Field
_U16, _U32, _U64 = em.IN_UINT16, em.IN_UINT32, em.IN_UINT64
_ADDRESS = (_F("IpAddrLength", _U32), _F("IPv4Address", _U32, em.OUT_IPV4),
            _F("IPv6Address", em.IN_BINARY, em.OUT_IPV6, length_field="IpAddrLength"))
_NEIGHBOR = (_F("Interface", _U32), _F("DlAddrLength", _U32), _F("DlAddress", em.IN_BINARY, length_field="DlAddrLength"),
             *_ADDRESS, _F("IPProtocol", _U32))
_ADDRESS_EVENT = (_F("Interface", _U32), _F("Protocol", em.IN_ANSISTRING), _F("DadState", _U32),
                  _F("DlAddrLength", _U32), _F("DLAddress", em.IN_BINARY, length_field="DlAddrLength"),
                  *_ADDRESS, _F("IPProtocol", _U32), _F("CompartmentId", _U32))


def _layout(event_id: int, version: int, fields: tuple[em.Field, ...], keywords: int, level: int = 4) -> em.EventLayout:
    return em.EventLayout(PROVIDER, PROVIDER_NAME, event_id, fields, version=version, level=level, keywords=keywords)


LAYOUTS: dict[int, em.EventLayout] = {
    layout.event_id: layout
    for layout in (
        _layout(EVENT_DAD_FAILED, 1, _ADDRESS_EVENT, KW_CS_DIAG | KW_GLOBAL | KW_ADDRESS, level=3),
        _layout(EVENT_ADDRESS_ADDED, 1, _ADDRESS_EVENT, KW_DIAGNOSIS | KW_CS_DIAG | KW_GLOBAL | KW_ADDRESS),
        _layout(EVENT_ADDRESS_DELETED, 1, _ADDRESS_EVENT, KW_DIAGNOSIS | KW_GLOBAL | KW_ADDRESS),
        _layout(EVENT_PORT_EXHAUSTION, 0, (_F("PortAcquirer", _U64, em.OUT_HEXINT64), _F("PortNumber", _U16),
                                           _F("WeakReference", _U32), _F("OriginalAcquirer", _U64, em.OUT_HEXINT64)),
                KW_DIAGNOSIS | KW_CONNECT_PATH),
        _layout(EVENT_INTERFACE_RUNDOWN, 3, (
            _F("IfIndex", _U32), _F("CurrLinkSpeed", _U64), _F("IPProtocol", _U32),
            _F("IPv4Address", _U32, em.OUT_IPV4), _F("IpAddrLength", _U32),
            _F("IPv6Address", em.IN_BINARY, em.OUT_IPV6, length_field="IpAddrLength"),
            _F("PhysicalMediumType", _U32), _F("CompartmentId", _U32), _F("OldLinkSpeed", _U64),
            _F("NetworkCategory", _U32), _F("Metric", _U32), _F("Connected", _U32),
            _F("InternetConnectivityStatus", _U32), _F("Flags", _U64, em.OUT_HEXINT64)),
                KW_INTERFACE | KW_DIAGNOSIS | KW_GLOBAL),
        _layout(EVENT_ROUTE_CREATED, 0, (
            _F("Route", _U64, em.OUT_HEXINT64), _F("Interface", _U32), _F("DestinationPrefixAddressLength", _U32),
            _F("NextHopAddressLength", _U32), _F("Protocol", em.IN_ANSISTRING), _F("DestinationPrefixLength", _U32),
            _F("DestinationPrefix", em.IN_BINARY, length_field="DestinationPrefixAddressLength"),
            _F("NextHopAddress", em.IN_BINARY, length_field="NextHopAddressLength"), _F("ValidLifetime", _U64),
            _F("PreferredLifetime", _U64), _F("Metric", _U32), _F("Loopback", _U32), _F("AutoconfigureAddress", _U32),
            _F("Publish", _U32), _F("Immortal", _U32), _F("IPv4DestinationPrefix", _U32),
            _F("IPv4NextHopAddress", _U32, em.OUT_IPV4), _F("IPProtocol", _U32)), KW_ROUTE | KW_DIAGNOSIS),
        _layout(EVENT_NEIGHBOR_UNREACHABLE, 0, _NEIGHBOR, KW_ROUTE | KW_DIAGNOSIS, level=5),
        _layout(EVENT_NEIGHBOR_REACHABLE, 0, _NEIGHBOR, KW_ROUTE, level=5),
        _layout(EVENT_NEIGHBOR_STATE, 1, (
            _F("Interface", _U32), _F("IpAddrLength", _U32), _F("IPAddress", em.IN_BINARY, length_field="IpAddrLength"),
            _F("DlAddrLength", _U32), _F("DLAddress", em.IN_BINARY, length_field="DlAddrLength"),
            _F("OldNeighborState", _U32), _F("NewNeighborState", _U32), _F("NeighborEvent", _U32),
            _F("CompartmentId", _U32)), KW_INTERFACE | KW_ROUTE),
        _layout(EVENT_TRANSPORT_DROP, 0, (
            _F("IPTransportProtocol", _U32), _F("AddressFamily", _U32), _F("LocalSockAddrLength", _U32),
            _F("LocalSockAddr", em.IN_BINARY, length_field="LocalSockAddrLength"), _F("RemoteSockAddrLength", _U32),
            _F("RemoteSockAddr", em.IN_BINARY, length_field="RemoteSockAddrLength"), _F("Reason", _U32),
            _F("PacketCount", _U32)), KW_DIAGNOSIS | KW_RECEIVE_PATH | KW_GLOBAL | KW_DROPS, level=5),
        _layout(EVENT_NETWORK_DROP, 0, (
            _F("IPTransportProtocol", _U32), _F("AddressFamily", _U32), _F("SourceIPv4Address", _U32, em.OUT_IPV4),
            _F("DestIPv4Address", _U32, em.OUT_IPV4), _F("IPv6SourceIpAddrLength", _U32),
            _F("IPv6SourceAddress", em.IN_BINARY, length_field="IPv6SourceIpAddrLength"),
            _F("IPv6DestIpAddrLength", _U32), _F("IPv6DestAddress", em.IN_BINARY, length_field="IPv6DestIpAddrLength"),
            _F("Reason", _U32), _F("PacketCount", _U32), _F("IPProtocol", _U32)),
                KW_DIAGNOSIS | KW_RECEIVE_PATH | KW_GLOBAL | KW_DROPS, level=5),
    )
}


DEFAULT_BUILD = 20348  # the synthesizer's default host (Windows Server 2022)
WIN11_21H2, WIN11_22H2, WIN11_24H2, WIN11_25H2 = 22000, 22621, 26100, 26200
_ROUTE_V1 = (
    _F("Route", _U64, em.OUT_HEXINT64), _F("Interface", _U32), _F("CompartmentId", _U32),
    _F("DestinationPrefixAddressLength", _U32),
    _F("DestinationPrefix", em.IN_BINARY, length_field="DestinationPrefixAddressLength"),
    _F("NextHopAddressLength", _U32), _F("NextHopAddress", em.IN_BINARY, length_field="NextHopAddressLength"),
    _F("DestinationPrefixLength", _U32), _F("ValidLifetime", _U64), _F("PreferredLifetime", _U64), _F("Metric", _U32),
    _F("Loopback", _U32), _F("AutoconfigureAddress", _U32), _F("Publish", _U32), _F("Immortal", _U32),
    _F("IPUnicastroutedeletionreason", _U32))
# fields a later build appends, with the value the synthesizer writes
_LATER_VALUES = {"IsolationId": 0, "NlMtu": 1500, "ForwardingTag": 0, "PrefixOrigin": 3, "SuffixOrigin": 3,
                 "IPUnicastroutedeletionreason": 0}


def _extended(event_id: int, version: int, names: tuple[str, ...]) -> em.EventLayout:
    base = LAYOUTS[event_id]
    return em.EventLayout(PROVIDER, PROVIDER_NAME, event_id, base.fields + tuple(_F(n, _U32) for n in names),
                          version=version, level=base.level, keywords=base.keywords)


def layout_for(event_id: int, build: int) -> em.EventLayout:
    """The layout a host of ``build`` writes for ``event_id``."""
    if event_id == EVENT_INTERFACE_RUNDOWN and build >= WIN11_22H2:
        return _extended(event_id, 6, ("IsolationId", "NlMtu", "ForwardingTag"))
    if event_id == EVENT_INTERFACE_RUNDOWN and build >= WIN11_21H2:
        return _extended(event_id, 4, ("IsolationId",))
    if event_id == EVENT_ADDRESS_ADDED and build >= WIN11_21H2:
        return _extended(event_id, 2, ("PrefixOrigin", "SuffixOrigin"))
    if event_id == EVENT_ROUTE_CREATED and build >= WIN11_25H2:
        base = LAYOUTS[event_id]
        return em.EventLayout(PROVIDER, PROVIDER_NAME, event_id, _ROUTE_V1, version=1, level=base.level,
                              keywords=base.keywords)
    if event_id == EVENT_ROUTE_CREATED and build >= WIN11_24H2:
        return _extended(event_id, 0, ("IPUnicastroutedeletionreason",))
    return LAYOUTS[event_id]


def _encode(event_id: int, build: int, values: dict[str, object]) -> bytes:
    layout = layout_for(event_id, build)
    names = {f.name for f in layout.fields}
    later = {k: v for k, v in _LATER_VALUES.items() if k in names and k not in values}
    return em.encode_fields(layout, {k: v for k, v in values.items() if k in names} | later)


def version_of(event_id: int) -> int:
    return LAYOUTS[event_id].version


def level_of(event_id: int) -> int:
    return LAYOUTS[event_id].level


def keywords_of(event_id: int) -> int:
    return LAYOUTS[event_id].keywords


def _address_fields(address: str) -> dict[str, object]:
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return {"IPv4Address": int.from_bytes(ip.packed, "little"), "IPv6Address": b""}
    return {"IPv4Address": 0, "IPv6Address": ip.packed}


def _family(address: str) -> int:
    return AF_INET if ipaddress.ip_address(address).version == 4 else AF_INET6


def _ip_protocol(address: str) -> int:
    return IP_PROTOCOL_V4 if ipaddress.ip_address(address).version == 4 else IP_PROTOCOL_V6


def encode_address_event(event_id: int, *, interface: int, address: str, mac: bytes, compartment: int,
                         dad_state: int = DAD_STATE_PREFERRED, build: int = DEFAULT_BUILD) -> bytes:
    """1127 (added), 1128 (deleted) or 1115 (DAD failed; ``mac`` is the conflicting host's)."""
    protocol = _ip_protocol(address)
    return _encode(event_id, build, {
        "Interface": interface, "Protocol": "IPv4" if protocol == IP_PROTOCOL_V4 else "IPv6", "DadState": dad_state,
        "DLAddress": mac, **_address_fields(address), "IPProtocol": protocol, "CompartmentId": compartment})


def encode_interface_rundown(*, if_index: int, address: str, compartment: int, link_speed: int = 10_000_000_000,
                             metric: int = 15, connected: bool = True, network_category: int = 1,
                             build: int = DEFAULT_BUILD) -> bytes:
    """1202 (v3, v4 or v6 by build): one interface of the host with one of its addresses and its compartment."""
    return _encode(EVENT_INTERFACE_RUNDOWN, build, {
        "IfIndex": if_index, "CurrLinkSpeed": link_speed, "IPProtocol": _ip_protocol(address),
        **_address_fields(address),
        "PhysicalMediumType": MEDIUM_802_3, "CompartmentId": compartment, "OldLinkSpeed": link_speed,
        "NetworkCategory": network_category, "Metric": metric, "Connected": int(connected),
        "InternetConnectivityStatus": 0, "Flags": 0})


def sockaddr(address: str, port: int) -> bytes:
    """SOCKADDR_IN / SOCKADDR_IN6 as Windows lays them out (family little-endian, port big-endian)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return struct.pack("<H", AF_INET) + struct.pack("!H", port) + ip.packed + bytes(8)
    return struct.pack("<H", AF_INET6) + struct.pack("!H", port) + bytes(4) + ip.packed + bytes(4)


def encode_transport_drop(*, protocol: int, local: tuple[str, int], remote: tuple[str, int], reason: int,
                          packets: int = 1) -> bytes:
    """1214: packets a transport (TCP 6 / UDP 17) dropped between two endpoints."""
    return em.encode_fields(LAYOUTS[EVENT_TRANSPORT_DROP], {
        "IPTransportProtocol": protocol, "AddressFamily": _family(local[0]), "LocalSockAddr": sockaddr(*local),
        "RemoteSockAddr": sockaddr(*remote), "Reason": reason, "PacketCount": packets})


def encode_port_exhaustion(*, port: int, acquirer: int, original_acquirer: int, weak_references: int = 1) -> bytes:
    """1195: a port handed out with weak references because the pool is exhausted."""
    return em.encode_fields(LAYOUTS[EVENT_PORT_EXHAUSTION], {
        "PortAcquirer": acquirer, "PortNumber": port, "WeakReference": weak_references,
        "OriginalAcquirer": original_acquirer})


def _ipv4_u32(address: str) -> int:
    """An IPv4 address as the u32 whose little-endian bytes are the address in network order."""
    return int.from_bytes(ipaddress.IPv4Address(address).packed, "little")


def encode_route_created(*, interface: int, prefix: str, next_hop: str = "0.0.0.0", metric: int = 256,
                         route: int = 0xFFFF_C30A_2000_0000, compartment: int = 1, build: int = DEFAULT_BUILD) -> bytes:
    """1145: an IPv4 route on ``interface``; ``next_hop`` 0.0.0.0 is an on-link route. Version 0 keeps the
    addresses in its IPv4 fields (the binary ones empty); version 1 (25H2) has only the binary ones."""
    net = ipaddress.IPv4Network(prefix)
    v1 = layout_for(EVENT_ROUTE_CREATED, build).version == 1
    return _encode(EVENT_ROUTE_CREATED, build, {
        "Route": route, "Interface": interface, "CompartmentId": compartment, "Protocol": "IPv4",
        "DestinationPrefixLength": net.prefixlen,
        "DestinationPrefix": net.network_address.packed if v1 else b"",
        "NextHopAddress": ipaddress.IPv4Address(next_hop).packed if v1 else b"",
        "ValidLifetime": 0xFFFF_FFFF, "PreferredLifetime": 0xFFFF_FFFF, "Metric": metric, "Loopback": 0,
        "AutoconfigureAddress": 0, "Publish": 0, "Immortal": 0,
        "IPv4DestinationPrefix": _ipv4_u32(str(net.network_address)), "IPv4NextHopAddress": _ipv4_u32(next_hop),
        "IPProtocol": IP_PROTOCOL_V4})


def encode_neighbor(event_id: int, *, interface: int, address: str, mac: bytes = b"") -> bytes:
    """1148 (unreachable) or 1149 (reachable): a neighbour of ``interface``."""
    return em.encode_fields(LAYOUTS[event_id], {
        "Interface": interface, "DlAddress": mac, **_address_fields(address), "IPProtocol": _ip_protocol(address)})


def encode_neighbor_state(*, interface: int, address: str, old_state: int, new_state: int, event: int,
                          compartment: int, mac: bytes = b"") -> bytes:
    """1324 v1: a neighbour's state changed (``mac`` empty while it is unresolved)."""
    return em.encode_fields(LAYOUTS[EVENT_NEIGHBOR_STATE], {
        "Interface": interface, "IPAddress": ipaddress.ip_address(address).packed, "DLAddress": mac,
        "OldNeighborState": old_state, "NewNeighborState": new_state, "NeighborEvent": event,
        "CompartmentId": compartment})
