"""L2-L4 of a captured frame, decoded lazily and only as deep as the caller asks.

Links: Ethernet (with stacked 802.1Q / 802.1ad tags and 802.3 LLC/SNAP), 802.11 data frames with
LLC/SNAP, and raw IP. Then ARP, IPv4 and IPv6 (walking the extension header chain), TCP, UDP,
ICMP/ICMPv6, and the inner Ethernet frame of VXLAN (UDP 4789) and NVGRE (GRE key + 0x6558).

Two entry points:
    ``decode(frame, link, depth=...)``: a ``Frame`` with every field the requested depth reaches;
    ``flow_key(frame, link)``: the hot-path shortcut, a hashable (vlan, protocol, src, dst, sport,
        dport) tuple with addresses left as raw bytes, the innermost frame of an overlay.

Nothing raises: a frame cut short stops decoding where its bytes end (``Frame.truncated``) and a
header that cannot be right sets ``Frame.error``. Wi-Fi: pktmon's PacketType 2 carries 802.11
frames on some builds (26200 sample) and Ethernet frames on others (19042 sample), so the link
``"wifi"`` looks for an 802.11 data header followed by LLC/SNAP and falls back to Ethernet.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

LINK_ETHERNET, LINK_80211, LINK_RAW_IP, LINK_WIFI = "ethernet", "ieee802.11", "raw-ip", "wifi"
DEPTH_LINK, DEPTH_NETWORK, DEPTH_TRANSPORT, DEPTH_INNER = 2, 3, 4, 5

ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP = 0x0800, 0x86DD, 0x0806
ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD = 0x8100, 0x88A8, 0x9100
ETHERTYPE_TEB = 0x6558  # transparent Ethernet bridging: what NVGRE carries
VLAN_TAGS = frozenset({ETHERTYPE_VLAN, ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD})
PROTOCOLS = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 51: "AH", 58: "ICMPv6"}
IPV6_EXTENSIONS = frozenset({0, 43, 44, 60, 51, 135, 139, 140})  # hop-by-hop, routing, fragment, dest-opts, AH, ...
VXLAN_PORTS = frozenset({4789})
TCP_FLAG_NAMES = ((0x01, "FIN"), (0x02, "SYN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"), (0x20, "URG"),
                  (0x40, "ECE"), (0x80, "CWR"))
_SNAP = b"\xaa\xaa\x03"
_U16 = struct.Struct("!H").unpack_from
_PORTS = struct.Struct("!HH").unpack_from


@dataclass(slots=True)
class Frame:
    """What ``decode`` found; fields the requested depth did not reach stay None."""

    link: str
    dst_mac: str | None = None
    src_mac: str | None = None
    vlans: tuple[int, ...] = ()
    ether_type: int | None = None
    arp_op: int | None = None
    arp_sender_ip: str | None = None
    arp_target_ip: str | None = None
    arp_sender_mac: str | None = None
    ip_version: int | None = None
    src: str | None = None
    dst: str | None = None
    protocol: int | None = None
    ttl: int | None = None
    ip_length: int | None = None  # IPv4 TotalLength, IPv6 PayloadLength + 40
    extension_headers: tuple[int, ...] = ()
    fragment: bool = False  # a non-first fragment: no transport header
    sport: int | None = None
    dport: int | None = None
    tcp_flags: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    encapsulation: str | None = None  # "vxlan" or "nvgre"
    vni: int | None = None  # VXLAN VNI or NVGRE VSID
    inner: "Frame | None" = None
    truncated: bool = False
    error: str | None = None

    @property
    def vlan(self) -> int | None:
        return self.vlans[0] if self.vlans else None

    @property
    def protocol_name(self) -> str | None:
        if self.protocol is None:
            return "ARP" if self.ether_type == ETHERTYPE_ARP else None
        return PROTOCOLS.get(self.protocol, str(self.protocol))

    def tuple_dict(self) -> dict[str, object]:
        """vlan, src, dst, protocol, sport, dport: the fields a packet sample shows."""
        out: dict[str, object] = {}
        for name in ("vlan", "src", "dst", "protocol_name", "sport", "dport"):
            value = getattr(self, name)
            if value is not None:
                out["protocol" if name == "protocol_name" else name] = value
        if self.tcp_flags is not None:
            out["tcp_flags"] = tcp_flags_text(self.tcp_flags)
        if self.vni is not None:
            out.update(encapsulation=self.encapsulation, vni=self.vni)
        return out


def tcp_flags_text(flags: int) -> str:
    return "|".join(name for bit, name in TCP_FLAG_NAMES if flags & bit) or "none"


def mac(raw: bytes) -> str:
    return "-".join(f"{b:02X}" for b in raw)


def ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def decode(frame: bytes | memoryview, link: str = LINK_ETHERNET, depth: int = DEPTH_INNER,
           vxlan_ports: frozenset[int] = VXLAN_PORTS) -> Frame:
    """Decode ``frame`` down to ``depth`` (2 link, 3 network, 4 transport, 5 overlay inner frame)."""
    data = bytes(frame)
    out = Frame(link=link)
    l3 = _link(data, link, out)
    if l3 is None or depth < DEPTH_NETWORK:
        return out
    l4 = _network(data, l3, out)
    if l4 is None or depth < DEPTH_TRANSPORT:
        return out
    inner = _transport(data, l4, out, vxlan_ports)
    if inner is not None and depth >= DEPTH_INNER:
        out.inner = decode(data[inner:], LINK_ETHERNET, DEPTH_TRANSPORT, vxlan_ports)
    return out


def five_tuple(frame: bytes | memoryview, link: str = LINK_ETHERNET) -> dict[str, object] | None:
    """(vlan, src, dst, protocol, sport, dport) of a frame as a dict; None if it has none of them."""
    decoded = decode(frame, link, DEPTH_TRANSPORT)
    return decoded.tuple_dict() or None


# -- link layer ------------------------------------------------------------------------------------

def _link(data: bytes, link: str, out: Frame) -> int | None:
    """Fill the link fields; return where the network header starts (None: nothing more to decode)."""
    if link == LINK_RAW_IP:
        if not data:
            out.truncated = True
            return None
        version = data[0] >> 4
        out.ether_type = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version)
        if out.ether_type is None:
            out.error = f"raw IP frame with IP version {version}"
            return None
        return 0
    if link in (LINK_80211, LINK_WIFI):
        pos = _dot11(data, out)
        if pos is not None or link == LINK_80211 or out.link == LINK_80211:
            return pos
        out.link = LINK_ETHERNET
    return _ethernet(data, out)


def _ethernet(data: bytes, out: Frame) -> int | None:
    if len(data) < 14:
        out.truncated = True
        return None
    out.dst_mac, out.src_mac = mac(data[0:6]), mac(data[6:12])
    ether_type, pos = _U16(data, 12)[0], 14
    vlans = []
    while ether_type in VLAN_TAGS:
        if len(data) < pos + 4:
            out.truncated = True
            out.vlans = tuple(vlans)
            return None
        vlans.append(_U16(data, pos)[0] & 0x0FFF)
        ether_type, pos = _U16(data, pos + 2)[0], pos + 4
    out.vlans = tuple(vlans)
    if ether_type < 0x0600:  # an 802.3 length field: LLC follows, SNAP carries the EtherType
        if data[pos:pos + 3] != _SNAP:
            out.ether_type = None
            return None
        if len(data) < pos + 8:
            out.truncated = True
            return None
        ether_type, pos = _U16(data, pos + 6)[0], pos + 8
    out.ether_type = ether_type
    return pos


def _dot11_header(data: bytes) -> int | None:
    """The length of the 802.11 data-frame header ``data`` starts with; None if it is not one."""
    if len(data) < 24:
        return None
    fc0, flags = data[0], data[1]
    if (fc0 >> 2) & 0x3 != 2 or fc0 & 0x3:  # type 2 (data), protocol version 0
        return None
    pos = 30 if flags & 0x3 == 0x3 else 24  # ToDS and FromDS: a fourth address
    if (fc0 >> 4) & 0x8:  # QoS data subtypes carry a 2-byte QoS Control field
        pos += 2
        if flags & 0x80:  # +HTC: 4-byte HT Control
            pos += 4
    return pos


def _dot11_no_data(data: bytes, header: int) -> bool:
    """A Null or QoS-Null data frame (subtype bit 2: no frame body), as long as its header (+ FCS)."""
    return bool((data[0] >> 4) & 0x4) and header <= len(data) <= header + 4


def _dot11(data: bytes, out: Frame) -> int | None:
    """An 802.11 data frame followed by LLC/SNAP; None if ``data`` is not one.

    A frame with no body (Null, QoS-Null: a station's power-save signalling) is still 802.11: its
    addresses are set and it has no EtherType, so it is not read again as an Ethernet frame.
    """
    pos = _dot11_header(data)
    if pos is None:
        return None
    if _dot11_no_data(data, pos):
        _dot11_addresses(data, out)
        return None
    if data[pos:pos + 3] != _SNAP or len(data) < pos + 8:
        return None
    _dot11_addresses(data, out)
    out.ether_type = _U16(data, pos + 6)[0]
    return pos + 8


def wifi_link(frame: bytes) -> str:
    """The link a frame that pktmon labels Wi-Fi (PacketType 2) really has: ``LINK_80211`` for an 802.11
    data frame (LLC/SNAP body, or Null/QoS-Null), else ``LINK_ETHERNET`` (builds differ: module doc)."""
    header = _dot11_header(frame)
    if header is not None and (_dot11_no_data(frame, header)
                               or (frame[header:header + 3] == _SNAP and len(frame) >= header + 8)):
        return LINK_80211
    return LINK_ETHERNET


def _dot11_addresses(data: bytes, out: Frame) -> None:
    to_ds, from_ds = data[1] & 0x1, data[1] & 0x2
    a1, a2, a3 = data[4:10], data[10:16], data[16:22]
    if not to_ds and not from_ds:
        dst, src = a1, a2
    elif to_ds and not from_ds:
        dst, src = a3, a2
    elif from_ds and not to_ds:
        dst, src = a1, a3
    else:
        dst, src = a3, data[24:30]
    out.link = LINK_80211
    out.dst_mac, out.src_mac = mac(dst), mac(src)


# -- network layer ---------------------------------------------------------------------------------

def _network(data: bytes, pos: int, out: Frame) -> int | None:
    """Fill ARP or IP fields; return where the transport header starts (None: stop)."""
    ether_type = out.ether_type
    if ether_type == ETHERTYPE_ARP:
        _arp(data, pos, out)
        return None
    if ether_type == ETHERTYPE_IPV4:
        return _ipv4(data, pos, out)
    if ether_type == ETHERTYPE_IPV6:
        return _ipv6(data, pos, out)
    return None


def _arp(data: bytes, pos: int, out: Frame) -> None:
    if len(data) < pos + 8:
        out.truncated = True
        return
    hlen, plen = data[pos + 4], data[pos + 5]
    out.arp_op = _U16(data, pos + 6)[0]
    end = pos + 8 + 2 * (hlen + plen)
    if len(data) < end:
        out.truncated = True
        return
    sha = pos + 8
    spa = sha + hlen
    tpa = spa + plen + hlen
    out.arp_sender_mac = mac(data[sha:sha + hlen])
    if plen == 4:
        out.arp_sender_ip = ip_text(data[spa:spa + 4])
        out.arp_target_ip = ip_text(data[tpa:tpa + 4])


def _ipv4(data: bytes, pos: int, out: Frame) -> int | None:
    if len(data) < pos + 20:
        out.truncated = True
        return None
    version_ihl = data[pos]
    ihl = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or ihl < 20:
        out.error = f"not an IPv4 header (first byte 0x{version_ihl:02x})"
        return None
    out.ip_version = 4
    out.ip_length = _U16(data, pos + 2)[0]
    out.fragment = bool(_U16(data, pos + 6)[0] & 0x1FFF)
    out.ttl, out.protocol = data[pos + 8], data[pos + 9]
    out.src, out.dst = ip_text(data[pos + 12:pos + 16]), ip_text(data[pos + 16:pos + 20])
    if out.fragment:
        return None
    return pos + ihl


def _ipv6(data: bytes, pos: int, out: Frame) -> int | None:
    if len(data) < pos + 40:
        out.truncated = True
        return None
    if data[pos] >> 4 != 6:
        out.error = f"not an IPv6 header (first byte 0x{data[pos]:02x})"
        return None
    out.ip_version = 6
    out.ip_length = _U16(data, pos + 4)[0] + 40
    out.ttl = data[pos + 7]
    out.src, out.dst = ip_text(data[pos + 8:pos + 24]), ip_text(data[pos + 24:pos + 40])
    next_header, pos = data[pos + 6], pos + 40
    chain = []
    while next_header in IPV6_EXTENSIONS:
        if len(data) < pos + 8:
            out.truncated = True
            out.extension_headers, out.protocol = tuple(chain), next_header
            return None
        chain.append(next_header)
        if next_header == 44:  # fragment header: fixed 8 bytes
            if _U16(data, pos + 2)[0] & 0xFFF8:
                out.fragment = True
            size = 8
        elif next_header == 51:  # AH: length in 4-byte units, minus 2
            size = (data[pos + 1] + 2) * 4
        else:
            size = (data[pos + 1] + 1) * 8
        next_header, pos = data[pos], pos + size
    out.extension_headers, out.protocol = tuple(chain), next_header
    return None if out.fragment else pos


# -- transport layer -------------------------------------------------------------------------------

def _transport(data: bytes, pos: int, out: Frame, vxlan_ports: frozenset[int]) -> int | None:
    """Fill the transport fields; return where an overlay's inner Ethernet frame starts, if any."""
    proto = out.protocol
    if proto in (6, 17):
        if len(data) < pos + 4:
            out.truncated = True
            return None
        out.sport, out.dport = _PORTS(data, pos)
        if proto == 6:
            if len(data) < pos + 14:
                out.truncated = True
                return None
            out.tcp_flags = data[pos + 13]
            return None
        if out.dport in vxlan_ports and len(data) >= pos + 16 and data[pos + 8] & 0x08:
            out.encapsulation, out.vni = "vxlan", int.from_bytes(data[pos + 12:pos + 15], "big")
            return pos + 16
        return None
    if proto in (1, 58):
        if len(data) < pos + 2:
            out.truncated = True
            return None
        out.icmp_type, out.icmp_code = data[pos], data[pos + 1]
        return None
    if proto == 47:
        return _gre(data, pos, out)
    return None


def _gre(data: bytes, pos: int, out: Frame) -> int | None:
    """NVGRE: GRE with the key bit, protocol 0x6558; the key holds VSID (24 bits) and FlowID."""
    if len(data) < pos + 4:
        out.truncated = True
        return None
    flags, proto = _U16(data, pos)[0], _U16(data, pos + 2)[0]
    has_checksum, has_key, has_seq = flags & 0x8000, flags & 0x2000, flags & 0x1000
    key_at = pos + 4 + (4 if has_checksum else 0)
    end = key_at + (4 if has_key else 0) + (4 if has_seq else 0)
    if proto != ETHERTYPE_TEB or not has_key:
        return None
    if len(data) < end:
        out.truncated = True
        return None
    out.encapsulation, out.vni = "nvgre", int.from_bytes(data[key_at:key_at + 3], "big")
    return end


# -- hot path --------------------------------------------------------------------------------------

def flow_key(frame: bytes | memoryview, link: str = LINK_ETHERNET) -> tuple | None:
    """(vlan, protocol, src, dst, sport, dport) of the innermost IP packet, addresses as raw bytes.

    The cheap form used once per packet: Ethernet (one 802.1Q tag) and raw IP with IPv4 or IPv6
    (no extension headers) take a few slices; everything else goes through ``decode``.
    """
    data = bytes(frame)
    if link == LINK_ETHERNET and len(data) >= 34:
        ether_type, vlan, pos = (data[12] << 8) | data[13], None, 14
        if ether_type == ETHERTYPE_VLAN:
            vlan, ether_type, pos = ((data[14] << 8) | data[15]) & 0x0FFF, (data[16] << 8) | data[17], 18
        if ether_type == ETHERTYPE_IPV4 and len(data) >= pos + 20 and data[pos] == 0x45:
            return _ipv4_key(data, pos, vlan, link)
    elif link == LINK_RAW_IP and len(data) >= 20 and data[0] == 0x45:
        return _ipv4_key(data, 0, None, link)
    decoded = decode(data, link, DEPTH_INNER)
    while decoded.inner is not None:
        decoded = decoded.inner
    return _decoded_key(decoded)


def _decoded_key(decoded: Frame) -> tuple | None:
    if decoded.protocol is None or decoded.src is None:
        return None if decoded.ether_type is None else (decoded.vlan, decoded.ether_type, None, None, None, None)
    src, dst = ipaddress.ip_address(decoded.src).packed, ipaddress.ip_address(decoded.dst).packed
    return (decoded.vlan, decoded.protocol, src, dst, decoded.sport, decoded.dport)


def _ipv4_key(data: bytes, pos: int, vlan: int | None, link: str) -> tuple | None:
    proto = data[pos + 9]
    src, dst = data[pos + 12:pos + 16], data[pos + 16:pos + 20]
    if proto in (6, 17) and not ((data[pos + 6] << 8) | data[pos + 7]) & 0x1FFF and len(data) >= pos + 24:
        sport, dport = (data[pos + 20] << 8) | data[pos + 21], (data[pos + 22] << 8) | data[pos + 23]
        if proto == 17 and dport in VXLAN_PORTS:
            return _overlay_key(data, link)
        return (vlan, proto, src, dst, sport, dport)
    if proto == 47:
        return _overlay_key(data, link)
    return (vlan, proto, src, dst, None, None)


def _overlay_key(data: bytes, link: str) -> tuple | None:
    decoded = decode(data, link, DEPTH_INNER)
    return _decoded_key(decoded.inner or decoded)


def key_text(key: tuple) -> dict[str, object]:
    """A ``flow_key`` as JSON-friendly fields (addresses as text, protocol by name)."""
    vlan, proto, src, dst, sport, dport = key
    out: dict[str, object] = {"protocol": PROTOCOLS.get(proto, str(proto)) if src is not None
                              else _ethertype_name(proto)}
    for name, value in (("vlan", vlan), ("src", src), ("dst", dst), ("sport", sport), ("dport", dport)):
        if value is None:
            continue
        out[name] = ip_text(value) if isinstance(value, bytes) else value
    return out


def _ethertype_name(ether_type: int | None) -> str:
    names = {ETHERTYPE_ARP: "ARP", 0x88CC: "LLDP", 0x88D9: "LLTD", ETHERTYPE_IPV4: "IPv4", ETHERTYPE_IPV6: "IPv6"}
    return names.get(ether_type, f"EtherType 0x{ether_type:04x}" if ether_type is not None else "unknown")


def original_length(frame: bytes | memoryview, link: str = LINK_ETHERNET) -> int:
    """The length a captured frame had on the wire, inferred from its IP length field.

    The capture may keep only the start of a frame; IPv4 TotalLength (IPv6 PayloadLength + 40) plus
    the link header gives the whole. When that is not larger than what was captured (LSOv2 sends
    carry an IP length of 0; large-send frames are longer than the MTU), the captured length stands.
    """
    decoded = decode(frame, link, DEPTH_NETWORK)
    captured = len(frame)
    if decoded.ip_length is None or decoded.ip_version is None:
        return captured
    header = 0 if decoded.link == LINK_RAW_IP else 14 + 4 * len(decoded.vlans)
    inferred = decoded.ip_length + header
    return inferred if inferred > captured else captured


# -- packet identity -------------------------------------------------------------------------------

IDENTITY_L4_BYTES = 16
_NO_FRAGMENT = b"\x00\x00"


def identity(data: bytes, start: int = 0, end: int | None = None, link: str = LINK_ETHERNET) -> bytes:
    """What stays the same of one packet wherever the host's stack logs it: a hashable byte string.

    Two snapshots of one packet often differ in their bytes. The link header changes (a Wi-Fi
    filter turns 802.11 + LLC/SNAP into Ethernet, a switch port adds or strips an 802.1Q tag, an
    overlay wraps the frame in VXLAN or NVGRE), and the IP header is rewritten: forwarding lowers
    the TTL, and on the loopback path TCP/IP logs one segment under two IPv4 headers with other
    identification, flags, TTL and checksum (NeoChenjf__Finguard__PktMon.etl, build 26200).
    Checksums may be filled in on the way down (offload). So the identity is taken from the
    innermost IP packet: version, addresses, protocol, length, fragment offset, and the first
    ``IDENTITY_L4_BYTES`` bytes of the transport header without its checksum (TCP ports,
    sequence and acknowledgement numbers, flags, window; UDP ports, length and the start of the
    payload; ICMP type, code and the rest of its header). ARP: the whole ARP body. Any other
    frame: its EtherType and the first 32 bytes after the link header. A frame of no known link
    layer: its first 32 bytes.
    """
    if start or (end is not None and end < len(data)):
        data = data[start:end]  # the frame alone: every slice below then stops at its end by itself
    stop = len(data)
    if link == LINK_ETHERNET and stop >= 14 and data[12] != 0x81 and data[12] >= 0x06:  # the common case, inline
        pos, ether_type = 14, (data[12] << 8) | data[13]
    else:
        pos, ether_type = _network_at(data, 0, stop, link)
        if pos is None:
            return b"?" + data[:32]
    for _ in range(2):  # an overlay: the inner frame's identity, once
        if ether_type == ETHERTYPE_IPV4 and stop >= pos + 20:
            proto = data[pos + 9]
            l4 = pos + (data[pos] & 0x0F) * 4
            fragment = ((data[pos + 6] & 0x1F) << 8) | data[pos + 7]
            if fragment:
                return b"4" + data[pos + 2:pos + 4] + bytes((fragment >> 8, fragment & 0xFF)) + data[pos + 9:pos + 10] \
                    + data[pos + 12:pos + 20] + data[l4:l4 + IDENTITY_L4_BYTES]
            inner = _overlay_at(data, l4, stop, proto) if proto == 17 or proto == 47 else None
            if inner is not None:
                pos, ether_type = _network_at(data, inner, stop, LINK_ETHERNET)
                if pos is not None:
                    continue
            return b"4" + data[pos + 2:pos + 4] + _NO_FRAGMENT + data[pos + 9:pos + 10] + data[pos + 12:pos + 20] \
                + _transport_identity(data, l4, proto)
        if ether_type == ETHERTYPE_IPV6 and stop >= pos + 40:
            proto, l4 = data[pos + 6], pos + 40
            inner = _overlay_at(data, l4, stop, proto) if proto == 17 or proto == 47 else None
            if inner is not None:
                pos, ether_type = _network_at(data, inner, stop, LINK_ETHERNET)
                if pos is not None:
                    continue
            return b"6" + data[pos + 4:pos + 7] + data[pos + 8:pos + 40] + _transport_identity(data, l4, proto)
        if ether_type == ETHERTYPE_ARP:
            return b"a" + data[pos:pos + 28]
        break
    return b"e" + (ether_type or 0).to_bytes(2, "big") + data[pos:pos + 32]


def _network_at(data: bytes, pos: int, stop: int, link: str) -> tuple[int | None, int | None]:
    """(where the network header starts, its EtherType) for the frame at ``pos``; (None, None) when it has none."""
    if link == LINK_RAW_IP:
        if stop <= pos:
            return None, None
        version = data[pos] >> 4
        return pos, ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6 if version == 6 else None
    if link != LINK_ETHERNET:
        header = _dot11_header(data[pos:pos + 32])
        if header is not None:
            at = pos + header
            if data[at:at + 3] == _SNAP and stop >= at + 8:
                return at + 8, (data[at + 6] << 8) | data[at + 7]
            if link == LINK_80211 or _dot11_no_data(data[pos:stop], header):
                return None, None
    if stop < pos + 14:
        return None, None
    ether_type, at = (data[pos + 12] << 8) | data[pos + 13], pos + 14
    while ether_type in VLAN_TAGS and stop >= at + 4:
        ether_type, at = (data[at + 2] << 8) | data[at + 3], at + 4
    if ether_type < 0x0600:
        if data[at:at + 3] != _SNAP or stop < at + 8:
            return None, None
        ether_type, at = (data[at + 6] << 8) | data[at + 7], at + 8
    return at, ether_type


def network_start(frame: bytes, link: str = LINK_ETHERNET) -> tuple[int | None, int | None]:
    """(where the network header of ``frame`` starts, its EtherType); (None, None) when it has none."""
    return _network_at(frame, 0, len(frame), link)


def destination_mac(frame: bytes, link: str = LINK_ETHERNET) -> bytes | None:
    """The destination MAC of a frame (the 802.11 DA on an 802.11 link); None on raw IP or when cut short."""
    if link == LINK_RAW_IP:
        return None
    if link != LINK_ETHERNET:
        header = _dot11_header(frame[:32])
        if header is not None and (frame[header:header + 3] == _SNAP or link == LINK_80211
                                   or _dot11_no_data(frame, header)):
            return frame[16:22] if frame[1] & 0x1 else frame[4:10]  # ToDS: the DA is address 3
    return frame[0:6] if len(frame) >= 6 else None


def _overlay_at(data: bytes, l4: int, stop: int, proto: int) -> int | None:
    """Where the inner Ethernet frame of a VXLAN (UDP 4789) or NVGRE packet starts; None if it is not one."""
    if proto == 17 and stop >= l4 + 16 + 14 and ((data[l4 + 2] << 8) | data[l4 + 3]) in VXLAN_PORTS \
            and data[l4 + 8] & 0x08:
        return l4 + 16
    if proto == 47 and stop >= l4 + 8 and ((data[l4 + 2] << 8) | data[l4 + 3]) == ETHERTYPE_TEB and data[l4] & 0x20:
        at = l4 + 4 + (4 if data[l4] & 0x80 else 0) + 4 + (4 if data[l4] & 0x10 else 0)
        return at if stop >= at + 14 else None
    return None


def _transport_identity(data: bytes, l4: int, proto: int) -> bytes:
    """The first IDENTITY_L4_BYTES (+2 where the checksum is left out) of a transport header, without its checksum."""
    if proto == 6:  # the checksum is bytes 16-17: everything before it
        return data[l4:l4 + 16]
    if proto == 17:  # ports and length; the checksum (6-7) left out; then the payload
        return data[l4:l4 + 6] + data[l4 + 8:l4 + IDENTITY_L4_BYTES + 2]
    if proto == 1 or proto == 58:  # type and code; the checksum (2-3) left out
        return data[l4:l4 + 2] + data[l4 + 4:l4 + IDENTITY_L4_BYTES + 2]
    return data[l4:l4 + IDENTITY_L4_BYTES]
