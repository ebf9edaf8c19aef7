"""Frames as NDIS hands them to ETW: Ethernet II (no FCS), 802.1Q, ARP, IPv4/IPv6, TCP/UDP/ICMP,
and VXLAN (RFC 7348) / NVGRE (RFC 7637) encapsulation around an inner frame.

Every length field and checksum is computed: IPv4 header checksums, TCP/UDP/ICMP checksums over
the IPv4 or IPv6 pseudo header, ICMPv6 over the IPv6 pseudo header. Addresses are given as text.
"""

from __future__ import annotations

import ipaddress
import struct

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_TEB = 0x6558  # transparent Ethernet bridging: what NVGRE carries

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_GRE = 47
IPPROTO_ICMPV6 = 58

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

VXLAN_PORT = 4789
ARP_REQUEST, ARP_REPLY = 1, 2
ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST = 0, 8
ICMP_DEST_UNREACHABLE, ICMP_FRAG_NEEDED = 3, 4
ICMPV6_ECHO_REQUEST = 128

ETHERNET_HEADER = 14
VLAN_TAG = 4
VXLAN_OVERHEAD = 14 + 20 + 8 + 8  # outer Ethernet, IPv4, UDP, VXLAN
NVGRE_OVERHEAD = 14 + 20 + 8  # outer Ethernet, IPv4, GRE with key


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


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# -- layer 3 --------------------------------------------------------------------------------------


def ipv4_packet(
    src: str, dst: str, protocol: int, payload: bytes, *, ident: int = 0, ttl: int = 128, dont_fragment: bool = True
) -> bytes:
    """IPv4 header (20 bytes, valid checksum) + payload."""
    total = 20 + len(payload)
    if total > 0xFFFF:
        raise ValueError("IPv4 packet longer than 65535 bytes")
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total,
        ident & 0xFFFF,
        0x4000 if dont_fragment else 0,
        ttl,
        protocol,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def ipv6_packet(
    src: str, dst: str, next_header: int, payload: bytes, *, hop_limit: int = 64, flow_label: int = 0
) -> bytes:
    """IPv6 header (40 bytes, no extension headers) + payload."""
    if len(payload) > 0xFFFF:
        raise ValueError("IPv6 payload longer than 65535 bytes")
    first = (6 << 28) | (flow_label & 0xFFFFF)
    return struct.pack(
        "!IHBB16s16s",
        first,
        len(payload),
        next_header,
        hop_limit,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    ) + payload


def ip_packet(src: str, dst: str, protocol: int, payload: bytes, *, ident: int = 0, ttl: int = 128) -> bytes:
    """An IPv4 or IPv6 packet, by the family of the addresses."""
    if _address(src).version == 4:
        return ipv4_packet(src, dst, protocol, payload, ident=ident, ttl=ttl)
    return ipv6_packet(src, dst, protocol, payload, hop_limit=ttl, flow_label=ident)


def pseudo_header(src: str, dst: str, protocol: int, length: int) -> bytes:
    """The pseudo header TCP, UDP and ICMPv6 checksums cover (RFC 793 / RFC 8200 §8.1)."""
    s, d = _address(src), _address(dst)
    if s.version == 4:
        return s.packed + d.packed + struct.pack("!BBH", 0, protocol, length)
    return s.packed + d.packed + struct.pack("!IxxxB", length, protocol)


# -- layer 4 --------------------------------------------------------------------------------------


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
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0)
    checksum = internet_checksum(pseudo_header(src, dst, IPPROTO_TCP, len(header) + len(payload)) + header + payload)
    return header[:16] + struct.pack("!H", checksum) + header[18:] + payload


def udp_datagram(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """UDP header (valid length and checksum) + payload."""
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    checksum = internet_checksum(pseudo_header(src, dst, IPPROTO_UDP, length) + header + payload) or 0xFFFF
    return header[:6] + struct.pack("!H", checksum) + payload


def icmp_message(icmp_type: int, code: int, rest: int, data: bytes = b"") -> bytes:
    """ICMPv4 message: type, code, checksum, the 4-byte rest of header, data."""
    body = struct.pack("!BBHI", icmp_type, code, 0, rest) + data
    return body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]


def icmpv6_message(src: str, dst: str, icmp_type: int, code: int, rest: int, data: bytes = b"") -> bytes:
    """ICMPv6 message, its checksum over the IPv6 pseudo header."""
    body = struct.pack("!BBHI", icmp_type, code, 0, rest) + data
    checksum = internet_checksum(pseudo_header(src, dst, IPPROTO_ICMPV6, len(body)) + body)
    return body[:2] + struct.pack("!H", checksum) + body[4:]


# -- layer 2 --------------------------------------------------------------------------------------


def ethernet_frame(
    dst_mac: str, src_mac: str, ethertype: int, payload: bytes, *, vlan_id: int | None = None, priority: int = 0
) -> bytes:
    """Ethernet II frame without FCS (as NDIS logs it), optionally 802.1Q-tagged."""
    tag = b"" if vlan_id is None else struct.pack("!HH", ETHERTYPE_VLAN, (priority & 7) << 13 | vlan_id & 0x0FFF)
    return mac(dst_mac) + mac(src_mac) + tag + struct.pack("!H", ethertype) + payload


def arp_packet(operation: int, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str) -> bytes:
    """ARP for IPv4 over Ethernet (RFC 826): 28 bytes."""
    return struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETHERTYPE_IPV4,
        6,
        4,
        operation,
        mac(sender_mac),
        ipaddress.IPv4Address(sender_ip).packed,
        mac(target_mac),
        ipaddress.IPv4Address(target_ip).packed,
    )


def _ethertype_for(ip: str) -> int:
    return ETHERTYPE_IPV4 if _address(ip).version == 4 else ETHERTYPE_IPV6


# -- whole frames -----------------------------------------------------------------------------------


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
    """Ethernet/IP/TCP frame; ``tcp`` goes to :func:`tcp_segment` (seq, ack, flags, window, payload)."""
    segment = tcp_segment(src_ip, dst_ip, sport, dport, **tcp)  # type: ignore[arg-type]
    packet = ip_packet(src_ip, dst_ip, IPPROTO_TCP, segment, ident=ident, ttl=ttl)
    return ethernet_frame(dst_mac, src_mac, _ethertype_for(src_ip), packet, vlan_id=vlan_id)


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
    """Ethernet/IP/UDP frame."""
    datagram = udp_datagram(src_ip, dst_ip, sport, dport, payload)
    packet = ip_packet(src_ip, dst_ip, IPPROTO_UDP, datagram, ident=ident, ttl=ttl)
    return ethernet_frame(dst_mac, src_mac, _ethertype_for(src_ip), packet, vlan_id=vlan_id)


def icmp_echo_frame(
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    *,
    identifier: int = 1,
    sequence: int = 1,
    reply: bool = False,
    data: bytes = b"abcdefghijklmnopqrstuvwabcdefghi",
    vlan_id: int | None = None,
    ident: int = 0,
) -> bytes:
    """Ethernet/IPv4/ICMP echo request (or reply), or the ICMPv6 one for IPv6 addresses."""
    rest = (identifier & 0xFFFF) << 16 | (sequence & 0xFFFF)
    if _address(src_ip).version == 4:
        message = icmp_message(ICMP_ECHO_REPLY if reply else ICMP_ECHO_REQUEST, 0, rest, data)
        packet = ipv4_packet(src_ip, dst_ip, IPPROTO_ICMP, message, ident=ident)
    else:
        message = icmpv6_message(src_ip, dst_ip, ICMPV6_ECHO_REQUEST + (1 if reply else 0), 0, rest, data)
        packet = ipv6_packet(src_ip, dst_ip, IPPROTO_ICMPV6, message)
    return ethernet_frame(dst_mac, src_mac, _ethertype_for(src_ip), packet, vlan_id=vlan_id)


def arp_frame(
    operation: int, sender_mac: str, sender_ip: str, target_ip: str, *, target_mac: str = "00-00-00-00-00-00",
    vlan_id: int | None = None,
) -> bytes:
    """An ARP request (broadcast) or reply (to ``target_mac``)."""
    dst = "ff-ff-ff-ff-ff-ff" if operation == ARP_REQUEST else target_mac
    body = arp_packet(operation, sender_mac, sender_ip, target_mac, target_ip)
    return ethernet_frame(dst, sender_mac, ETHERTYPE_ARP, body, vlan_id=vlan_id)


def vxlan_header(vni: int) -> bytes:
    """VXLAN header: flags with the I bit, 24-bit VNI (RFC 7348 §5)."""
    if not 0 <= vni < 1 << 24:
        raise ValueError("VNI must fit 24 bits")
    return struct.pack("!II", 0x08000000, vni << 8)


def vxlan_frame(
    outer_src_mac: str,
    outer_dst_mac: str,
    outer_src_ip: str,
    outer_dst_ip: str,
    vni: int,
    inner_frame: bytes,
    *,
    source_port: int = 49152,
    vlan_id: int | None = None,
    ident: int = 0,
) -> bytes:
    """An inner Ethernet frame in VXLAN over UDP 4789 (the UDP source port carries flow entropy)."""
    datagram = udp_datagram(outer_src_ip, outer_dst_ip, source_port, VXLAN_PORT, vxlan_header(vni) + inner_frame)
    packet = ip_packet(outer_src_ip, outer_dst_ip, IPPROTO_UDP, datagram, ident=ident, ttl=64)
    return ethernet_frame(outer_dst_mac, outer_src_mac, _ethertype_for(outer_src_ip), packet, vlan_id=vlan_id)


def nvgre_header(vsid: int, flow_id: int = 0) -> bytes:
    """GRE header with the key bit (RFC 2890) carrying VSID (24 bits) and FlowID (8 bits)."""
    if not 0 <= vsid < 1 << 24:
        raise ValueError("VSID must fit 24 bits")
    return struct.pack("!HHI", 0x2000, ETHERTYPE_TEB, vsid << 8 | (flow_id & 0xFF))


def nvgre_frame(
    outer_src_mac: str,
    outer_dst_mac: str,
    outer_src_ip: str,
    outer_dst_ip: str,
    vsid: int,
    inner_frame: bytes,
    *,
    flow_id: int = 0,
    vlan_id: int | None = None,
    ident: int = 0,
) -> bytes:
    """An inner Ethernet frame in NVGRE (GRE, IP protocol 47)."""
    gre = nvgre_header(vsid, flow_id) + inner_frame
    packet = ip_packet(outer_src_ip, outer_dst_ip, IPPROTO_GRE, gre, ident=ident, ttl=64)
    return ethernet_frame(outer_dst_mac, outer_src_mac, _ethertype_for(outer_src_ip), packet, vlan_id=vlan_id)


def strip_vlan(frame: bytes) -> bytes:
    """The frame without its 802.1Q tag (what a vmNIC sees once the switch removed it)."""
    if frame[12:14] != struct.pack("!H", ETHERTYPE_VLAN):
        return frame
    return frame[:12] + frame[16:]


ND_SOLICITATION, ND_ADVERTISEMENT = 135, 136
ND_SOLICITED, ND_OVERRIDE = 0x40000000, 0x20000000  # Neighbor Advertisement flags (RFC 4861 §4.4)


def solicited_node(target_ip: str) -> tuple[str, str]:
    """The solicited-node multicast address of ``target_ip`` and its Ethernet MAC (RFC 4291 §2.7.1, RFC 2464 §7)."""
    low = ipaddress.IPv6Address(target_ip).packed[-3:]
    group = ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + low)
    return str(group), "33-33-" + "-".join(f"{b:02x}" for b in group.packed[-4:])


def neighbor_solicitation_frame(src_mac: str, src_ip: str, target_ip: str, *, vlan_id: int | None = None) -> bytes:
    """An IPv6 Neighbor Solicitation for ``target_ip`` to its solicited-node group, with the source link-layer
    address option; ``src_ip`` "::" makes it a duplicate address detection probe (no option then)."""
    group, group_mac = solicited_node(target_ip)
    data = ipaddress.IPv6Address(target_ip).packed
    if src_ip != "::":
        data += b"\x01\x01" + mac(src_mac)
    message = icmpv6_message(src_ip, group, ND_SOLICITATION, 0, 0, data)
    return ethernet_frame(group_mac, src_mac, ETHERTYPE_IPV6, ipv6_packet(src_ip, group, IPPROTO_ICMPV6, message,
                                                                          hop_limit=255), vlan_id=vlan_id)


def neighbor_advertisement_frame(src_mac: str, target_ip: str, dst_mac: str, dst_ip: str, *,
                                 vlan_id: int | None = None) -> bytes:
    """A solicited Neighbor Advertisement: ``target_ip`` (the sender's address) is at ``src_mac``."""
    data = ipaddress.IPv6Address(target_ip).packed + b"\x02\x01" + mac(src_mac)
    message = icmpv6_message(target_ip, dst_ip, ND_ADVERTISEMENT, 0, ND_SOLICITED | ND_OVERRIDE, data)
    return ethernet_frame(dst_mac, src_mac, ETHERTYPE_IPV6, ipv6_packet(target_ip, dst_ip, IPPROTO_ICMPV6, message,
                                                                        hop_limit=255), vlan_id=vlan_id)
