"""Encoders for Microsoft-Windows-Hyper-V-VfpExt {9F2660EA-CFE7-428F-9850-AECA612619B0} (vfpext.sys).

Layouts: Microsoft's NetMon parser for vfpext.man (microsoft/SDN, Diagnostics/VFP_VMSwitch_Parsers/
etl_vfpext.npl, 2015), with the port named by a NUL-terminated string where the parser has a UINT32
port id, as a current host's EventRecord XML names it (``PortName``). Both are UNCONFIRMED against a
real event; they are declared as data here, apart from the decoder, and not embedded in the traces
(hosts do not embed this provider's schema; wnvdiag decodes it from its own candidate layouts).

* 55 L4V4Drop: a port's guard dropped a TCP/UDP packet (reason 9: MAC guard, ...);
* 101 V4RuleMatch: a rule (layer, group, rule id, rule type) processed a flow's packets;
* 154 Encap / 155 Decap: packets encapsulated (encap type, isolation id) or decapsulated;
* 207 V4NatPortBinding: a NAT port binding created or deleted.
Addresses are network order (win:IPv4), ports big-endian (win:Port), BOOL 4 bytes.
"""

from __future__ import annotations

import ipaddress
import uuid

from diag.synth import eventmetadata as em

PROVIDER = uuid.UUID("9f2660ea-cfe7-428f-9850-aeca612619b0")
PROVIDER_NAME = "Microsoft-Windows-Hyper-V-VfpExt"
EVENT_L4V4_DROP, EVENT_V4_RULE_MATCH, EVENT_ENCAP, EVENT_DECAP, EVENT_V4_NAT_PORT_BINDING = 55, 101, 154, 155, 207
KW_GUARD, KW_RULE, KW_TRANSFORM, KW_NAT = 0x2, 0x4, 0x8, 0x10
OUTBOUND, INBOUND = 0, 1
REASON_MAC_GUARD = 9
RULE_ALLOW, RULE_BLOCK, RULE_MAP_ENCAP = 1, 2, 9
ENCAP_VXLAN = 4
BINDING_CREATING, BINDING_DELETING = 0, 1

_F = em.Field
_STR, _U8, _U16, _U32, _BOOL = em.IN_UNICODESTRING, em.IN_UINT8, em.IN_UINT16, em.IN_UINT32, em.IN_BOOLEAN
_IP, _PORT = (em.IN_BINARY, em.OUT_IPV4), (em.IN_BINARY, em.OUT_HEXBINARY)


def _event(event_id: int, fields: tuple, keywords: int, level: int = 4) -> em.EventLayout:
    return em.EventLayout(PROVIDER, PROVIDER_NAME, event_id, (_F("PortName", _STR), *fields), level=level,
                          keywords=keywords)


_FLOW = (_F("SrcIpv4Addr", *_IP, length=4), _F("DstIpv4Addr", *_IP, length=4))
_PORTS = (_F("SrcPort", *_PORT, length=2), _F("DstPort", *_PORT, length=2))

LAYOUTS: dict[int, em.EventLayout] = {
    EVENT_L4V4_DROP: _event(EVENT_L4V4_DROP, (
        _F("Direction", _U8), _F("Reason", _U8), _F("SrcMacAddr", _STR), _F("DstMacAddr", _STR), *_FLOW,
        _F("IpProtocol", _U8), *_PORTS, _F("IsTcpSyn", _BOOL)), KW_GUARD, level=3),
    EVENT_V4_RULE_MATCH: _event(EVENT_V4_RULE_MATCH, (
        _F("Direction", _U8), _F("LayerId", _STR), _F("GroupId", _STR), _F("RuleId", _STR), _F("RuleType", _U8),
        *_FLOW, *_PORTS, _F("IpProtocol", _U8), _F("IsTcpSyn", _BOOL), _F("Status", _U32)), KW_RULE),
    EVENT_ENCAP: _event(EVENT_ENCAP, (
        _F("Direction", _U8), _F("SrcMacAddr", _STR), _F("DstMacAddr", _STR), *_FLOW, _F("EncapType", _U8),
        _F("GreKey", _U32)), KW_TRANSFORM),
    EVENT_DECAP: _event(EVENT_DECAP, (_F("Direction", _U8),), KW_TRANSFORM),
    EVENT_V4_NAT_PORT_BINDING: _event(EVENT_V4_NAT_PORT_BINDING, (
        _F("NatPortBindingAction", _U8), _F("InternalIpv4Addr", *_IP, length=4),
        _F("InternalIpv4Port", *_PORT, length=2), _F("ExternalIpv4Addr", *_IP, length=4),
        _F("ExternalIpv4Port", *_PORT, length=2), _F("Reference", _U32)), KW_NAT),
}


def _ip(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def _port(number: int) -> bytes:
    return number.to_bytes(2, "big")


def encode_l4v4_drop(*, port: str, direction: int, reason: int, src_mac: str, dst_mac: str, src: str, dst: str,
                     protocol: int, sport: int, dport: int, syn: bool = False) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_L4V4_DROP], {
        "PortName": port, "Direction": direction, "Reason": reason, "SrcMacAddr": src_mac, "DstMacAddr": dst_mac,
        "SrcIpv4Addr": _ip(src), "DstIpv4Addr": _ip(dst), "IpProtocol": protocol, "SrcPort": _port(sport),
        "DstPort": _port(dport), "IsTcpSyn": int(syn)})


def encode_rule_match(*, port: str, direction: int, layer: str, group: str, rule: str, rule_type: int, src: str,
                      dst: str, sport: int, dport: int, protocol: int = 6, syn: bool = True, status: int = 0) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_V4_RULE_MATCH], {
        "PortName": port, "Direction": direction, "LayerId": layer, "GroupId": group, "RuleId": rule,
        "RuleType": rule_type, "SrcIpv4Addr": _ip(src), "DstIpv4Addr": _ip(dst), "SrcPort": _port(sport),
        "DstPort": _port(dport), "IpProtocol": protocol, "IsTcpSyn": int(syn), "Status": status})


def encode_encap(*, port: str, direction: int, src_mac: str, dst_mac: str, src: str, dst: str, encap_type: int,
                 isolation_id: int) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_ENCAP], {
        "PortName": port, "Direction": direction, "SrcMacAddr": src_mac, "DstMacAddr": dst_mac,
        "SrcIpv4Addr": _ip(src), "DstIpv4Addr": _ip(dst), "EncapType": encap_type, "GreKey": isolation_id})


def encode_decap(*, port: str, direction: int) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_DECAP], {"PortName": port, "Direction": direction})


def encode_nat_port_binding(*, port: str, action: int, internal: str, internal_port: int, external: str,
                            external_port: int, reference: int = 1) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_V4_NAT_PORT_BINDING], {
        "PortName": port, "NatPortBindingAction": action, "InternalIpv4Addr": _ip(internal),
        "InternalIpv4Port": _port(internal_port), "ExternalIpv4Addr": _ip(external),
        "ExternalIpv4Port": _port(external_port), "Reference": reference})
