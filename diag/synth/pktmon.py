"""Encoders for Microsoft-Windows-PktMon events, and the schemas pktmon embeds for them.

Payload layouts follow the research notes (wnv-etw-knowledge.md §3) and were checked against the
pktmon samples in ``shared/etl-samples`` (builds 19042, 20348, 22621, 26200); the same samples'
value maps give the property and component type numbers of newer builds (IP Address 13,
IpIfIndex 14, VSID 15, VLAN 16, Compartment ID 17; HTTP Protocol 10, Slbmux 12, IPSec 13, NetCx 14,
HTTP Message 15):

* 20  component rundown: Id u16, Type u16, Name wstr, Description wstr (both NUL-terminated;
  Name is the driver file, e.g. ``vmswitch.sys``, Description the friendly name).
* 30/40/60/65/66/70/73/75  property: ComponentId u16, Type u16, then the value: u32 (30; also VSID,
  VLAN and compartment), GUID (40), u16 (60), IPv4 (65) / IPv6 (66) address bytes, Size u32 + bytes
  (70, the MAC), wstr (73; *not* NUL-terminated in the 22621 sample, so not here either by
  default), EtherType u16 (75).
* 80  drop counters: ComponentId u16, DirTagIn u16, PacketsIn u64, BytesIn u64, DirTagOut u16,
  PacketsOut u64, BytesOut u64; 90 flow counters: ComponentId u16, EdgeName wstr, EdgeId u16, then
  the same six counters.
* 160 packet / 170 drop: PktGroupId u64, PktNumber u16, AppearanceCount u16, DirTag u16,
  PacketType u16, ComponentId u16, EdgeId u16, FilterId u16, DropReason u32, DropLocation u32,
  OriginalPayloadSize u16, LoggedPayloadSize u16, then LoggedPayloadSize bytes of the frame
  (34 fixed bytes before the frame).

All events are version 0, level 4 (informational), channel/opcode/task 0; keywords 0x2 for rundown
events and 0x10 for packet events, as in the samples. Rundown events are written when the capture
stops, after the packets (so they come last in time in real files).

``LAYOUTS`` declares every event above as data; :func:`value_maps` gives the value maps they name.
Together they are what a relogged pktmon file embeds as EventMetadata (``diag.synth.eventmetadata``).
"""

from __future__ import annotations

import ipaddress
import struct
import uuid
from dataclasses import replace
from enum import IntEnum

from diag import knowledge
from diag.synth import eventmetadata as em
from diag.synth.etlwriter import EtlWriter

PROVIDER = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")
PROVIDER_NAME = "Microsoft-Windows-PktMon"

EVENT_COMPONENT = 20
EVENT_PROPERTY_U32 = 30
EVENT_PROPERTY_GUID = 40
EVENT_PROPERTY_U16 = 60
EVENT_PROPERTY_IPV4 = 65
EVENT_PROPERTY_IPV6 = 66
EVENT_PROPERTY_BINARY = 70
EVENT_PROPERTY_WSTR = 73
EVENT_PROPERTY_ETHERTYPE = 75
EVENT_DROP_COUNTERS = 80
EVENT_FLOW_COUNTERS = 90
EVENT_PACKET = 160
EVENT_DROP = 170

KEYWORD_RUNDOWN = 0x2
KEYWORD_PAYLOAD = 0x10
LEVEL_INFO = 4

DEFAULT_LOGGED_SIZE = 128  # pktmon --pkt-size default

PACKET_HEADER = struct.Struct("<QHHHHHHHIIHH")  # 34 bytes before the frame
_COUNTERS = struct.Struct("<HQQHQQ")


class ComponentType(IntEnum):
    NDIS = 1
    MINIPORT = 2
    FILTER = 3
    PROTOCOL = 4
    VMS_VMNIC = 5
    VMS_MINIPORT = 6
    VMS_EXT_MINIPORT = 7
    VMS_PROTOCOL_NIC = 8
    NETVSC_MINIPORT = 9
    HTTP_PROTOCOL = 10
    SLBMUX = 12
    IPSEC = 13
    NETCX = 14
    HTTP_MESSAGE = 15


class PropertyType(IntEnum):
    IF_INDEX = 1
    MINIPORT_IF_INDEX = 2
    LOWER_IF_INDEX = 3
    IF_GUID = 4
    NDIS_MEDIUM = 5
    PHYS_ADDRESS = 6
    ETHER_TYPE = 7
    OPT_DATA_PATH = 8
    NDIS_OBJECT = 9
    VMSWITCH_NAME = 10
    VMS_EXT_IF_INDEX = 11
    LOWEST_IF_INDEX = 12
    IP_ADDRESS = 13
    IP_IF_INDEX = 14
    VSID = 15
    VLAN = 16
    COMPARTMENT_ID = 17


class DirTag(IntEnum):
    NONE = 0
    IN = 1
    OUT = 2
    RX = 3
    TX = 4
    INGRESS = 5
    EGRESS = 6


class PacketType(IntEnum):
    UNKNOWN = 0
    ETHERNET = 1
    WIFI = 2
    IP = 3


class DropReason(IntEnum):
    """The drop reasons the scenarios use (full table: knowledge/pktmon-drop-reasons.yaml)."""

    UNSPECIFIED = 0
    INVALID_DATA = 1
    FILTERED_VLAN = 9
    UNAUTHORIZED_VLAN = 10
    MAC_SPOOFING = 16
    VSID_MISMATCH = 20
    MTU_MISMATCH = 23
    WNV_ERROR = 29
    DESTINATION_NIC_DISABLED = 33
    VF_NOT_READY = 402
    DONT_FRAGMENT_MTU_EXCEEDED = 920
    INET_TRANSPORT_ENDPOINT_NOT_FOUND = 1204


# -- event payloads -----------------------------------------------------------------------------


def _wstr(text: str, nul: bool = True) -> bytes:
    return text.encode("utf-16-le") + (b"\x00\x00" if nul else b"")


def encode_component(component_id: int, component_type: int, name: str, description: str) -> bytes:
    """Event 20: component rundown."""
    return struct.pack("<HH", component_id, component_type) + _wstr(name) + _wstr(description)


def encode_property_u32(component_id: int, property_type: int, value: int) -> bytes:
    """Event 30: a u32 component property (IfIndex, MiniportIfIndex, VSID, VLAN, Compartment ID...)."""
    return struct.pack("<HHI", component_id, property_type, value)


def encode_property_guid(component_id: int, property_type: int, value: uuid.UUID) -> bytes:
    """Event 40: a GUID property (IfGuid)."""
    return struct.pack("<HH", component_id, property_type) + value.bytes_le


def encode_property_u16(component_id: int, property_type: int, value: int) -> bytes:
    """Event 60: a u16 property (NdisMedium)."""
    return struct.pack("<HHH", component_id, property_type, value)


def encode_property_ip(component_id: int, address: str, property_type: int = PropertyType.IP_ADDRESS) -> bytes:
    """Event 65 (IPv4) or 66 (IPv6) payload: the address bytes in network order."""
    return struct.pack("<HH", component_id, property_type) + ipaddress.ip_address(address).packed


def ip_property_event(address: str) -> int:
    return EVENT_PROPERTY_IPV4 if ipaddress.ip_address(address).version == 4 else EVENT_PROPERTY_IPV6


def encode_property_binary(component_id: int, property_type: int, value: bytes) -> bytes:
    """Event 70: a sized binary property (PhysAddress: the 6-byte MAC)."""
    return struct.pack("<HHI", component_id, property_type, len(value)) + value


def encode_property_wstr(component_id: int, property_type: int, value: str, *, nul_terminated: bool = False) -> bytes:
    """Event 73: a string component property (VMSwitchName, ...); unterminated like Windows writes it."""
    return struct.pack("<HH", component_id, property_type) + _wstr(value, nul_terminated)


def encode_property_ethertype(component_id: int, ether_type: int) -> bytes:
    """Event 75: an EtherType the component handles."""
    return struct.pack("<HHH", component_id, PropertyType.ETHER_TYPE, ether_type)


def encode_drop_counters(component_id: int, packets_in: int, bytes_in: int, packets_out: int, bytes_out: int) -> bytes:
    """Event 80: drop counters of a component, inbound (Rx) and outbound (Tx)."""
    counters = _COUNTERS.pack(DirTag.RX, packets_in, bytes_in, DirTag.TX, packets_out, bytes_out)
    return struct.pack("<H", component_id) + counters


def encode_flow_counters(
    component_id: int, edge_name: str, edge_id: int, packets_in: int, bytes_in: int, packets_out: int, bytes_out: int
) -> bytes:
    """Event 90: flow counters of one edge of a component."""
    return (struct.pack("<H", component_id) + _wstr(edge_name) + struct.pack("<H", edge_id)
            + _COUNTERS.pack(DirTag.RX, packets_in, bytes_in, DirTag.TX, packets_out, bytes_out))


# pktmon gives every snapshot its own PktGroupId from this build on (diag/facts/snapshots.py)
PER_SNAPSHOT_FROM_BUILD = 26100
FIRST_SNAPSHOT_ID = 0x100  # where a processor's snapshot ids start in the synthesized traces
_GROUP_AND_APPEARANCE = struct.Struct("<QHH")


def numbering(os_build: int) -> str:
    """How pktmon of ``os_build`` numbers packet snapshots: "per-packet" or "per-snapshot"."""
    return "per-snapshot" if os_build >= PER_SNAPSHOT_FROM_BUILD else "per-packet"


def snapshot_id(cpu: int, sequence: int) -> int:
    """A per-snapshot PktGroupId: the processor in the upper 16 bits, its count of snapshots below."""
    return (cpu << 48) | sequence


def number_snapshots(events: list, first: int = FIRST_SNAPSHOT_ID) -> list:
    """``events`` (``diag.synth.trace.Event``) with the packet snapshots (160/170) numbered as builds 26100 and
    later number them: in time order on each processor, every snapshot the next PktGroupId of its processor,
    AppearanceCount 0, PktNumber kept. Returns the new event list (events are frozen)."""
    ordered = sorted(range(len(events)), key=lambda i: (events[i].filetime, events[i].order))
    out = list(events)
    next_id: dict[int, int] = {}
    for i in ordered:
        e = events[i]
        if e.provider != PROVIDER or e.event_id not in (EVENT_PACKET, EVENT_DROP):
            continue
        seq = next_id.get(e.cpu, first)
        next_id[e.cpu] = seq + 1
        _group, number, _appearance = _GROUP_AND_APPEARANCE.unpack_from(e.payload)
        head = _GROUP_AND_APPEARANCE.pack(snapshot_id(e.cpu, seq), number, 0)
        out[i] = replace(e, payload=head + e.payload[_GROUP_AND_APPEARANCE.size:])
    return out


def encode_packet(
    *,
    pkt_group_id: int,
    pkt_number: int,
    appearance: int,
    dir_tag: int,
    packet_type: int,
    component_id: int,
    edge_id: int,
    filter_id: int,
    frame: bytes,
    drop_reason: int = 0,
    drop_location: int = 0,
    logged_size_limit: int = DEFAULT_LOGGED_SIZE,
) -> bytes:
    """Event 160 (packet) or 170 (drop) payload: the frame is logged up to ``logged_size_limit`` bytes
    (0: the whole frame, as ``pktmon start --pkt-size 0``)."""
    if len(frame) > 0xFFFF:
        raise ValueError("frame longer than 65535 bytes")
    logged = len(frame) if logged_size_limit == 0 else min(len(frame), logged_size_limit)
    head = PACKET_HEADER.pack(
        pkt_group_id,
        pkt_number,
        appearance,
        dir_tag,
        packet_type,
        component_id,
        edge_id,
        filter_id,
        drop_reason,
        drop_location,
        len(frame),
        logged,
    )
    return head + frame[:logged]


def write_pktmon_event(writer: EtlWriter, event_id: int, payload: bytes, **kwargs: object) -> None:
    """Write a PktMon event with the header values Windows uses (level 4, version 0, the keyword of
    its kind); ``kwargs`` go to :meth:`EtlWriter.write_event` (timestamp, cpu, pid, tid...)."""
    kwargs.setdefault("level", LEVEL_INFO)
    kwargs.setdefault("keywords", keyword_for(event_id))
    writer.write_event(PROVIDER, event_id, 0, payload, **kwargs)  # type: ignore[arg-type]


def keyword_for(event_id: int) -> int:
    return KEYWORD_PAYLOAD if event_id >= EVENT_PACKET else KEYWORD_RUNDOWN


# -- the schemas pktmon embeds ------------------------------------------------------------------

_F = em.Field
_U16, _U32, _U64 = em.IN_UINT16, em.IN_UINT32, em.IN_UINT64
_COMPONENT_AND_TYPE = (_F("ComponentId", _U16), _F("Type", _U16, map_name="PropertyType"))
_COUNTER_FIELDS = (
    _F("DirTagIn", _U16, map_name="PacketDirectionTag"), _F("PacketsIn", _U64), _F("BytesIn", _U64),
    _F("DirTagOut", _U16, map_name="PacketDirectionTag"), _F("PacketsOut", _U64), _F("BytesOut", _U64),
)
_PACKET_FIELDS = (
    _F("PktGroupId", _U64), _F("PktNumber", _U16), _F("AppearanceCount", _U16),
    _F("DirTag", _U16, map_name="PacketDirectionTag"), _F("PacketType", _U16, map_name="PacketType"),
    _F("ComponentId", _U16), _F("EdgeId", _U16), _F("FilterId", _U16),
    _F("DropReason", _U32, map_name="DropReason"), _F("DropLocation", _U32, em.OUT_HEXINT32),
    _F("OriginalPayloadSize", _U16), _F("LoggedPayloadSize", _U16),
    _F("Payload", em.IN_BINARY, length_field="LoggedPayloadSize"),
)
_PROPERTY_MESSAGE = "Property: Component %1, %2 = %3"


def _layout(event_id: int, fields: tuple[em.Field, ...], message: str) -> em.EventLayout:
    rundown = event_id < EVENT_PACKET
    return em.EventLayout(
        PROVIDER, PROVIDER_NAME, event_id, fields, level=LEVEL_INFO, keywords=keyword_for(event_id),
        keyword_name="Rundown" if rundown else "Payload", message=message)


LAYOUTS: dict[int, em.EventLayout] = {
    layout.event_id: layout
    for layout in (
        _layout(EVENT_COMPONENT, (_F("Id", _U16), _F("Type", _U16, map_name="ComponentType"),
                                  _F("Name", em.IN_UNICODESTRING), _F("Description", em.IN_UNICODESTRING)),
                "Component %1, Type %2, Name %3, %4"),
        _layout(EVENT_PROPERTY_U32, (*_COMPONENT_AND_TYPE, _F("Value", _U32)), _PROPERTY_MESSAGE),
        _layout(EVENT_PROPERTY_GUID, (*_COMPONENT_AND_TYPE, _F("Value", em.IN_GUID)), _PROPERTY_MESSAGE),
        _layout(EVENT_PROPERTY_U16, (*_COMPONENT_AND_TYPE, _F("Value", _U16)), _PROPERTY_MESSAGE),
        _layout(EVENT_PROPERTY_IPV4, (*_COMPONENT_AND_TYPE, _F("IpAddress", _U32, em.OUT_IPV4)), _PROPERTY_MESSAGE),
        _layout(EVENT_PROPERTY_IPV6, (*_COMPONENT_AND_TYPE, _F("IpAddress", em.IN_BINARY, em.OUT_IPV6, length=16)),
                _PROPERTY_MESSAGE),
        _layout(EVENT_PROPERTY_BINARY, (*_COMPONENT_AND_TYPE, _F("Size", _U32),
                                        _F("Value", em.IN_BINARY, length_field="Size")),
                "Property: Component %1, %2 = %4"),
        _layout(EVENT_PROPERTY_WSTR, (*_COMPONENT_AND_TYPE, _F("Value", em.IN_UNICODESTRING)), _PROPERTY_MESSAGE),
        _layout(EVENT_PROPERTY_ETHERTYPE, (*_COMPONENT_AND_TYPE, _F("EtherType", _U16, map_name="EtherType")),
                _PROPERTY_MESSAGE),
        _layout(EVENT_DROP_COUNTERS, (_F("ComponentId", _U16), *_COUNTER_FIELDS),
                "Drop Counters: Component %1, Direction In = %2, Packets In %3, Bytes In %4, "
                "Direction Out = %5, Packets Out %6, Bytes Out %7"),
        _layout(EVENT_FLOW_COUNTERS, (_F("ComponentId", _U16), _F("EdgeName", em.IN_UNICODESTRING),
                                      _F("EdgeId", _U16), *_COUNTER_FIELDS),
                "Flow Counters: Component %1, Edge %2, Edge Id %3, Direction In = %4, Packets In %5, "
                "Bytes In %6, Direction Out = %7, Packets Out %8, Bytes Out %9"),
        _layout(EVENT_PACKET, _PACKET_FIELDS,
                "PktGroupId %1, PktNumber %2, Appearance %3, Direction %4, Type %5, Component %6, Edge %7, "
                "Filter %8, OriginalSize %11, LoggedSize %12"),
        _layout(EVENT_DROP, _PACKET_FIELDS,
                "Drop: PktGroupId %1, PktNumber %2, Appearance %3, Direction %4, Type %5, Component %6, "
                "Edge %7, Filter %8, DropReason %9, DropLocation %10, OriginalSize %11, LoggedSize %12"),
    )
}

_ETHER_TYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x8100: "VLAN", 0x86DD: "IPv6", 0x88CC: "LLDP", 0x88D9: "LLTD"}
_NEWER_COMPONENT_TYPES = {10: "HTTP Protocol", 12: "Slbmux", 13: "IPSec", 14: "NetCx", 15: "HTTP Message"}
_NEWER_PROPERTY_TYPES = {13: "IP Address", 14: "IpIfIndex", 15: "VSID", 16: "VLAN", 17: "Compartment ID"}


def value_maps() -> dict[str, dict[int, str]]:
    """The value maps the layouts name, with the display names of knowledge/ (current numbering)."""
    k = knowledge.load_pktmon_knowledge()
    drop_reasons = {code: reason.name for code, reason in k.drop_reasons.current.codes.items()}
    return {
        "ComponentType": {**k.component_types, **_NEWER_COMPONENT_TYPES},
        "PropertyType": {**k.property_types, **_NEWER_PROPERTY_TYPES},
        "PacketDirectionTag": dict(k.direction_tags),
        "PacketType": {n: name for n, name in k.packet_types.items() if n <= 4},
        "EtherType": _ETHER_TYPES,
        "DropReason": drop_reasons,
    }


# -- frames (kept here for callers of the first version of this module) ----------------------------

from diag.synth.frames import (  # noqa: E402
    ETHERTYPE_IPV4,
    ETHERTYPE_VLAN,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    ethernet_frame,
    internet_checksum,
    ipv4_packet,
    mac,
    tcp_frame,
    tcp_segment,
    udp_datagram,
    udp_frame,
)

__all__ = [
    "ETHERTYPE_IPV4", "ETHERTYPE_VLAN", "IPPROTO_TCP", "IPPROTO_UDP", "TCP_ACK", "TCP_FIN", "TCP_PSH",
    "TCP_RST", "TCP_SYN", "ethernet_frame", "internet_checksum", "ipv4_packet", "mac", "tcp_frame",
    "tcp_segment", "udp_datagram", "udp_frame",
]
