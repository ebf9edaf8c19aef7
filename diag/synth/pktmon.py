"""Encoders for Microsoft-Windows-PktMon events and the Ethernet frames they carry.

Payload layouts follow the research notes (wnv-etw-knowledge.md §3) and were checked against the
pktmon samples in ``shared/etl-samples`` (builds 19042, 20348, 22621, 26200):

* 20  component rundown: Id u16, Type u16, Name wstr, Description wstr (both NUL-terminated;
  Name is the driver file, e.g. ``vmswitch.sys``, Description the friendly name).
* 30  property (u32): ComponentId u16, Type u16, Value u32.
* 73  property (wstr): ComponentId u16, Type u16, Value wstr. In the 22621 sample the string is *not*
  NUL-terminated (it runs to the end of the payload); :func:`encode_property_wstr` does the same by
  default.
* 160 packet / 170 drop: PktGroupId u64, PktNumber u16, AppearanceCount u16, DirTag u16,
  PacketType u16, ComponentId u16, EdgeId u16, FilterId u16, DropReason u32, DropLocation u32,
  OriginalPayloadSize u16, LoggedPayloadSize u16, then LoggedPayloadSize bytes of the frame
  (34 fixed bytes before the frame).

All events are version 0, level 4 (informational), channel/opcode/task 0; keywords 0x2 for rundown
events and 0x10 for packet events, as in the samples. Rundown events are written when the capture
stops, after the packets (so they come last in time in real files).
"""

from __future__ import annotations

import ipaddress
import struct
import uuid
from enum import IntEnum

from diag.synth.etlwriter import EtlWriter

PROVIDER = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")

EVENT_COMPONENT = 20
EVENT_PROPERTY_U32 = 30
EVENT_PROPERTY_WSTR = 73
EVENT_PACKET = 160
EVENT_DROP = 170

KEYWORD_RUNDOWN = 0x2
KEYWORD_PAYLOAD = 0x10
LEVEL_INFO = 4

DEFAULT_LOGGED_SIZE = 128  # pktmon --pkt-size default

PACKET_HEADER = struct.Struct("<QHHHHHHHIIHH")  # 34 bytes before the frame


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
    """The few drop reasons the demo uses (full table: research notes §3.4)."""

    UNSPECIFIED = 0
    INVALID_DATA = 1
    FILTERED_VLAN = 9
    MAC_SPOOFING = 16
    INET_TRANSPORT_ENDPOINT_NOT_FOUND = 1204


# -- event payloads -----------------------------------------------------------------------------


def _wstr(text: str, nul: bool = True) -> bytes:
    return text.encode("utf-16-le") + (b"\x00\x00" if nul else b"")


def encode_component(component_id: int, component_type: int, name: str, description: str) -> bytes:
    """Event 20: component rundown."""
    return struct.pack("<HH", component_id, component_type) + _wstr(name) + _wstr(description)


def encode_property_u32(component_id: int, property_type: int, value: int) -> bytes:
    """Event 30: a u32 component property (IfIndex, MiniportIfIndex, ...)."""
    return struct.pack("<HHI", component_id, property_type, value)


def encode_property_wstr(component_id: int, property_type: int, value: str, *, nul_terminated: bool = False) -> bytes:
    """Event 73: a string component property (VMSwitchName, ...); unterminated like Windows writes it."""
    return struct.pack("<HH", component_id, property_type) + _wstr(value, nul_terminated)


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
    """Event 160 (packet) or 170 (drop) payload: the frame is logged up to ``logged_size_limit`` bytes."""
    if len(frame) > 0xFFFF:
        raise ValueError("frame longer than 65535 bytes")
    logged = min(len(frame), logged_size_limit)
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
    kwargs.setdefault("keywords", KEYWORD_PAYLOAD if event_id >= EVENT_PACKET else KEYWORD_RUNDOWN)
    writer.write_event(PROVIDER, event_id, 0, payload, **kwargs)  # type: ignore[arg-type]


# -- frames ---------------------------------------------------------------------------------------

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
IPPROTO_TCP = 6
IPPROTO_UDP = 17

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def mac(text: str) -> bytes:
    """``"00-15-5d-01-02-03"`` or ``"00:15:5d:01:02:03"`` -> 6 bytes."""
    raw = bytes.fromhex(text.replace("-", "").replace(":", ""))
    if len(raw) != 6:
        raise ValueError(f"bad MAC address {text!r}")
    return raw


def internet_checksum(data: bytes) -> int:
    """RFC 1071 ones'-complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_packet(src: str, dst: str, protocol: int, payload: bytes, *, ident: int = 0, ttl: int = 128) -> bytes:
    """IPv4 header (20 bytes, DF set, valid checksum) + payload."""
    total = 20 + len(payload)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total,
        ident,
        0x4000,
        ttl,
        protocol,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def _pseudo_header(src: str, dst: str, protocol: int, length: int) -> bytes:
    return ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed + struct.pack("!BBH", 0, protocol, length)


def tcp_segment(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = TCP_ACK,
    window: int = 64240,
    payload: bytes = b"",
) -> bytes:
    """TCP header (20 bytes, no options, valid checksum) + payload."""
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0)
    checksum = internet_checksum(_pseudo_header(src, dst, IPPROTO_TCP, len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", checksum) + header[18:] + payload


def udp_datagram(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """UDP header (valid length and checksum) + payload."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    checksum = internet_checksum(_pseudo_header(src, dst, IPPROTO_UDP, length) + header + payload) or 0xFFFF
    return header[:6] + struct.pack("!H", checksum) + payload


def ethernet_frame(dst_mac: str, src_mac: str, ethertype: int, payload: bytes, *, vlan_id: int | None = None) -> bytes:
    """Ethernet II frame without FCS (as pktmon logs it), optionally 802.1Q-tagged."""
    tag = b"" if vlan_id is None else struct.pack("!HH", ETHERTYPE_VLAN, vlan_id & 0x0FFF)
    return mac(dst_mac) + mac(src_mac) + tag + struct.pack("!H", ethertype) + payload


def tcp_frame(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    *,
    vlan_id: int | None = None,
    ident: int = 0,
    ttl: int = 128,
    **tcp: object,
) -> bytes:
    """Ethernet/IPv4/TCP frame; ``tcp`` goes to :func:`tcp_segment` (seq, ack, flags, window, payload)."""
    segment = tcp_segment(src_ip, dst_ip, sport, dport, **tcp)  # type: ignore[arg-type]
    packet = ipv4_packet(src_ip, dst_ip, IPPROTO_TCP, segment, ident=ident, ttl=ttl)
    return ethernet_frame(dst_mac, src_mac, ETHERTYPE_IPV4, packet, vlan_id=vlan_id)


def udp_frame(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    vlan_id: int | None = None,
    ident: int = 0,
    ttl: int = 128,
) -> bytes:
    """Ethernet/IPv4/UDP frame."""
    datagram = udp_datagram(src_ip, dst_ip, sport, dport, payload)
    packet = ipv4_packet(src_ip, dst_ip, IPPROTO_UDP, datagram, ident=ident, ttl=ttl)
    return ethernet_frame(dst_mac, src_mac, ETHERTYPE_IPV4, packet, vlan_id=vlan_id)
