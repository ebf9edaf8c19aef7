"""Encoders for Microsoft-Windows-Wnv {3AD15A04-74F1-4DCA-B226-AFF89085A05A} (wnv.sys, Hyper-V
Network Virtualization v1): locator records, packet-processing lookup failures and drops.

Layouts: the NetMon parser Microsoft published for this provider (microsoft/SDN,
Diagnostics/etl_wnvinf.npl, "Public References: wnvinf.man", 2013). Fields are in the order that
parser declares them (its message strings list them in another order); value maps and keywords
are its too. No public trace carries this provider, so these layouts are UNCONFIRMED against a
real event: they are *declared as data* (``LAYOUTS``, ``MAPS``) so that a confirmed layout
replaces them without touching the scenarios, and every synthesized trace embeds them as
EventMetadata, so a reader can decode these events from the trace alone.

* 1006 locator record created (CA -> PA mapping of a virtual subnet);
* 1010 packet-processing lookup failure (``Lookupfailure``: 1 destination locator record
  missing, ...);
* 1012 packet dropped (``Dropreason``: 2 no policy, ...).
AsciiString fields are NUL-terminated ANSI text; BOOL is 4 bytes.
"""

from __future__ import annotations

import uuid

from diag.synth import eventmetadata as em

PROVIDER = uuid.UUID("3ad15a04-74f1-4dca-b226-aff89085a05a")
PROVIDER_NAME = "Microsoft-Windows-Wnv"
EVENT_LOCATOR_RECORD_CREATED, EVENT_LOOKUP_FAILURE, EVENT_PACKET_DROP = 1006, 1010, 1012

KW_CONFIGURATION, KW_PACKET_PROCESSING, KW_DROPPED = 0x1, 0x4, 0x10000000000
DIRECTION_INBOUND, DIRECTION_OUTBOUND = 0, 1
LOOKUP_DESTINATION_RECORD_MISSING = 1
DROP_NO_POLICY = 2
TRANSLATION_ENCAPSULATION = 1
RECORD_STATIC = 0

MAPS: dict[str, dict[int, str]] = {
    "WnvPacketDirection": {0: "Inbound", 1: "Outbound"},
    "WnvLookupFailure": {
        0: "Source locator record missing", 1: "Destination locator record missing", 2: "Virtual route missing",
        3: "Physical route missing", 4: "Translation method mismatch", 5: "Source CA:PA mismatch",
        6: "Destination CA:PA mismatch", 7: "Source CA:Mac mismatch", 8: "Destination CA:Mac mismatch",
        9: "Destination CA on-link", 10: "Internal failure", 11: "Destination not unicast",
        12: "UseExternalRouter first lookup"},
    "WnvDropReason": {
        1: "MTU exceeded", 2: "No policy", 3: "ARP/Neighbor discovery failed", 4: "Unsupported ethernet frame type",
        5: "Malformed packet", 6: "IP checksum invalid", 7: "Internal error",
        8: "TTL/Hop limit expired while forwarding",
        9: "Ecn code point CE set on the outer header for a non-ECT inner packet"},
    "WnvFrameType": {0x0806: "ARP", 0x86DD: "IPv6", 0x0800: "IPv4"},
    "WnvTranslationMethod": {0: "NAT", 1: "Encapsulation"},
    "WnvConfigFailureReason": {0: "No failure", 12: "Not found"},
    "WnvLocatorRecordType": {0: "Static", 1: "Dynamic", 2: "GatewayWildcard", 3: "L2Only"},
}

_F = em.Field
_U32, _CSTR, _MAC = em.IN_UINT32, em.IN_ANSISTRING, (em.IN_BINARY, em.OUT_HEXBINARY)

LAYOUTS: dict[int, em.EventLayout] = {
    EVENT_LOCATOR_RECORD_CREATED: em.EventLayout(
        PROVIDER, PROVIDER_NAME, EVENT_LOCATOR_RECORD_CREATED,
        (_F("CustomerIpAddress", _CSTR), _F("ProviderIpAddress", _CSTR), _F("VirtualSubnetId", _U32),
         _F("CustomerGuid", em.IN_GUID), _F("CustomerMacAddress", *_MAC, length=6),
         _F("UseVmMACAddress", em.IN_BOOLEAN),
         _F("Description", em.IN_UNICODESTRING), _F("TranslationMethod", _U32, map_name="WnvTranslationMethod"),
         _F("Failurereason", _U32, map_name="WnvConfigFailureReason"), _F("Status", _U32, em.OUT_HEXINT32),
         _F("ModifyFlags", _U32), _F("Type", _U32, map_name="WnvLocatorRecordType")),
        keywords=KW_CONFIGURATION, keyword_name="KW_WNV_CONFIGURATION",
        message="Locator record create: CustomerIpAddress: %1, ProviderIpAddress: %2, VirtualSubnetId: %3"),
    EVENT_LOOKUP_FAILURE: em.EventLayout(
        PROVIDER, PROVIDER_NAME, EVENT_LOOKUP_FAILURE,
        (_F("SourceIPinPacket", _CSTR), _F("DestinationIPinPacket", _CSTR), _F("SourceIPinRecord", _CSTR),
         _F("DestinationIPinRecord", _CSTR), _F("CustomerNextHopIpAddress", _CSTR),
         _F("ProviderNextHopIpAddress", _CSTR), _F("Lookupfailure", _U32, map_name="WnvLookupFailure"),
         _F("Packetdirection", _U32, map_name="WnvPacketDirection"), _F("SourceCAMacAddress", *_MAC, length=6),
         _F("DestinationCAMacAddress", *_MAC, length=6), _F("SourceCAMacAddressinRecord", *_MAC, length=6),
         _F("DestinationCAMacAddressinRecord", *_MAC, length=6), _F("OuterSourceIP", _CSTR),
         _F("OuterDestinationIP", _CSTR), _F("VirtualSubnetId", _U32)),
        level=3, keywords=KW_PACKET_PROCESSING, keyword_name="KW_WNV_PACKET_PROCESSING",
        message="%8 packet processing lookup failure: Source IP in packet: %1, Destination IP in packet: %2, "
                "Failure Reason: %7, VirtualSubnetId: %15"),
    EVENT_PACKET_DROP: em.EventLayout(
        PROVIDER, PROVIDER_NAME, EVENT_PACKET_DROP,
        (_F("SourceCA", _CSTR), _F("DestinationCA", _CSTR), _F("SourcePA", _CSTR), _F("DestinationPA", _CSTR),
         _F("Dropreason", _U32, map_name="WnvDropReason"), _F("Frametype", _U32, map_name="WnvFrameType"),
         _F("TransportProtocol", em.IN_UINT8), _F("SourceCAMacAddress", *_MAC, length=6),
         _F("DestinationCAMacAddress", *_MAC, length=6), _F("Packetdirection", _U32, map_name="WnvPacketDirection"),
         _F("VirtualSubnetId", _U32), _F("GreEncap", em.IN_BOOLEAN)),
        level=3, keywords=KW_PACKET_PROCESSING | KW_DROPPED, keyword_name="KW_WNV_PACKET_PROCESSING KW_DROPPED",
        message="%10 %6 packet dropped: Inner source: %1, Inner destination: %2, VirtualSubnetId: %11, "
                "Drop reason: %5"),
}

NO_MAC = bytes(6)


def encode_locator_record(*, customer: str, provider: str, vsid: int, customer_id: uuid.UUID, customer_mac: bytes,
                          description: str = "") -> bytes:
    """1006: a CA -> PA mapping (encapsulation, static), created without failure."""
    return em.encode_fields(LAYOUTS[EVENT_LOCATOR_RECORD_CREATED], {
        "CustomerIpAddress": customer, "ProviderIpAddress": provider, "VirtualSubnetId": vsid,
        "CustomerGuid": customer_id, "CustomerMacAddress": customer_mac, "UseVmMACAddress": 0,
        "Description": description, "TranslationMethod": TRANSLATION_ENCAPSULATION, "Failurereason": 0,
        "Status": 0, "ModifyFlags": 0, "Type": RECORD_STATIC})


def encode_lookup_failure(*, source: str, destination: str, vsid: int, source_mac: bytes, destination_mac: bytes,
                          reason: int = LOOKUP_DESTINATION_RECORD_MISSING, direction: int = DIRECTION_OUTBOUND,
                          source_record: str = "", outer_source: str = "", outer_destination: str = "") -> bytes:
    """1010: no usable lookup record for a packet between two customer addresses."""
    return em.encode_fields(LAYOUTS[EVENT_LOOKUP_FAILURE], {
        "SourceIPinPacket": source, "DestinationIPinPacket": destination, "SourceIPinRecord": source_record,
        "DestinationIPinRecord": "", "CustomerNextHopIpAddress": "", "ProviderNextHopIpAddress": "",
        "Lookupfailure": reason, "Packetdirection": direction, "SourceCAMacAddress": source_mac,
        "DestinationCAMacAddress": destination_mac,
        "SourceCAMacAddressinRecord": source_mac if source_record else NO_MAC,
        "DestinationCAMacAddressinRecord": NO_MAC, "OuterSourceIP": outer_source,
        "OuterDestinationIP": outer_destination, "VirtualSubnetId": vsid})


def encode_packet_drop(*, source: str, destination: str, vsid: int, source_mac: bytes, destination_mac: bytes,
                       reason: int = DROP_NO_POLICY, transport_protocol: int = 6, frame_type: int = 0x0800,
                       direction: int = DIRECTION_OUTBOUND, source_pa: str = "", destination_pa: str = "",
                       gre: bool = True) -> bytes:
    """1012: a packet network virtualization dropped."""
    return em.encode_fields(LAYOUTS[EVENT_PACKET_DROP], {
        "SourceCA": source, "DestinationCA": destination, "SourcePA": source_pa, "DestinationPA": destination_pa,
        "Dropreason": reason, "Frametype": frame_type, "TransportProtocol": transport_protocol,
        "SourceCAMacAddress": source_mac, "DestinationCAMacAddress": destination_mac, "Packetdirection": direction,
        "VirtualSubnetId": vsid, "GreEncap": int(gre)})
