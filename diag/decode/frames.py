"""Just enough L2–L4 to name a packet: addresses, protocol and ports (issue 4 deepens this).

Decodes lazily and only on demand: callers ask for the 5-tuple of the few packets they keep as
evidence, never of every packet.
"""

from __future__ import annotations

import ipaddress
import struct

ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_ARP, ETHERTYPE_VLAN = 0x0800, 0x86DD, 0x0806, 0x8100
PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 47: "GRE", 50: "ESP", 51: "AH"}
_PORTS = struct.Struct("!HH")


def five_tuple(frame: bytes | memoryview, link: str = "ethernet") -> dict[str, object] | None:
    """(vlan, src, dst, protocol, sport, dport) of an Ethernet or raw-IP frame; None if not IP/ARP."""
    frame = bytes(frame)
    out: dict[str, object] = {}
    pos = 0
    if link == "ethernet":
        if len(frame) < 14:
            return None
        ether_type = int.from_bytes(frame[12:14], "big")
        pos = 14
        if ether_type == ETHERTYPE_VLAN and len(frame) >= 18:
            out["vlan"] = int.from_bytes(frame[14:16], "big") & 0xFFF
            ether_type = int.from_bytes(frame[16:18], "big")
            pos = 18
        if ether_type == ETHERTYPE_ARP:
            out["protocol"] = "ARP"
            return out
    else:
        ether_type = ETHERTYPE_IPV4 if frame[:1] and frame[0] >> 4 == 4 else ETHERTYPE_IPV6
    if ether_type == ETHERTYPE_IPV4 and len(frame) >= pos + 20:
        ihl = (frame[pos] & 0x0F) * 4
        proto = frame[pos + 9]
        out["src"] = str(ipaddress.IPv4Address(frame[pos + 12:pos + 16]))
        out["dst"] = str(ipaddress.IPv4Address(frame[pos + 16:pos + 20]))
        l4 = pos + ihl
    elif ether_type == ETHERTYPE_IPV6 and len(frame) >= pos + 40:
        proto = frame[pos + 6]
        out["src"] = str(ipaddress.IPv6Address(frame[pos + 8:pos + 24]))
        out["dst"] = str(ipaddress.IPv6Address(frame[pos + 24:pos + 40]))
        l4 = pos + 40
    else:
        return out or None
    out["protocol"] = PROTOCOLS.get(proto, str(proto))
    if proto in (6, 17) and len(frame) >= l4 + 4:
        out["sport"], out["dport"] = _PORTS.unpack_from(frame, l4)
    return out
