"""L2-L4 frame decoding: frames packed here byte by byte from the protocol layouts (RFC 791, 8200,
793, 768, 826, 7348, 7637; IEEE 802.1Q, 802.2/SNAP, 802.11), then frames from the real pktmon samples
checked against invariants that do not depend on our decoder (IPv4 header checksums, flow symmetry)."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from samples import sample
from diag.decode import frames
from diag.decode.frames import decode, five_tuple, flow_key, key_text, original_length
from diag.read import open_trace

MAC_A, MAC_B = bytes.fromhex("00155d0a0b0c"), bytes.fromhex("00155d0d0e0f")
IP_A, IP_B = ipaddress.ip_address("10.0.0.5").packed, ipaddress.ip_address("10.0.1.9").packed


def checksum(data: bytes) -> int:
    data += b"\x00" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(proto: int, payload: bytes, src=IP_A, dst=IP_B, total=None, frag=0, options=b"") -> bytes:
    ihl = 5 + len(options) // 4
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total if total is not None else 4 * ihl + len(payload),
                       0x1234, frag, 64, proto, 0, src, dst) + options
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + payload


def ipv6(next_header: int, payload: bytes, src="fd00::1", dst="fd00::2") -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 255,
                       ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed) + payload


def tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ether(ether_type: int, payload: bytes, tags=()) -> bytes:
    out = MAC_B + MAC_A
    for tpid, vlan in tags:
        out += struct.pack("!HH", tpid, (3 << 13) | vlan)
    return out + struct.pack("!H", ether_type) + payload


def test_ethernet_with_stacked_tags_ipv4_tcp():
    frame = ether(0x0800, ipv4(6, tcp(49152, 443, 0x12)), tags=[(0x88A8, 100), (0x8100, 7)])
    f = decode(frame)
    assert (f.dst_mac, f.src_mac) == ("00-15-5D-0D-0E-0F", "00-15-5D-0A-0B-0C")
    assert f.vlans == (100, 7) and f.vlan == 100
    assert (f.src, f.dst, f.protocol_name, f.sport, f.dport) == ("10.0.0.5", "10.0.1.9", "TCP", 49152, 443)
    assert frames.tcp_flags_text(f.tcp_flags) == "SYN|ACK"
    assert f.ttl == 64 and f.ip_length == 40


def test_ipv4_options_and_non_first_fragment():
    with_options = decode(ether(0x0800, ipv4(17, udp(53, 5353), options=b"\x01\x01\x01\x00")))
    assert (with_options.sport, with_options.dport) == (53, 5353)
    fragment = decode(ether(0x0800, ipv4(17, b"\xde\xad" * 8, frag=0x00B9)))
    assert fragment.fragment and fragment.sport is None and fragment.protocol == 17


def test_8023_llc_snap_carries_the_ethertype():
    payload = ipv4(1, b"\x08\x00\x00\x00")  # ICMP echo request
    frame = MAC_B + MAC_A + struct.pack("!H", 8 + len(payload)) + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + payload
    f = decode(frame)
    assert f.ether_type == 0x0800 and (f.icmp_type, f.icmp_code) == (8, 0)


@pytest.mark.parametrize(("flags", "addresses", "expect"), [
    (0x01, [MAC_B, MAC_A, bytes(6)], ("00-00-00-00-00-00", "00-15-5D-0A-0B-0C")),  # ToDS: A3 is DA, A2 SA
    (0x02, [MAC_B, bytes(6), MAC_A], ("00-15-5D-0D-0E-0F", "00-15-5D-0A-0B-0C")),  # FromDS: A1 DA, A3 SA
])
def test_80211_qos_data_with_llc_snap(flags, addresses, expect):
    header = bytes([0x88, flags | 0x40]) + b"\x00\x00" + b"".join(addresses) + b"\x10\x00" + b"\x00\x00"  # QoS data, protected
    frame = header + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ipv4(17, udp(68, 67))
    for link in ("ieee802.11", "wifi"):
        f = decode(frame, link)
        assert f.link == "ieee802.11"
        assert (f.dst_mac, f.src_mac) == expect
        assert (f.protocol_name, f.sport, f.dport) == ("UDP", 68, 67)


def test_wifi_link_falls_back_to_ethernet_framing():
    f = decode(ether(0x0800, ipv4(6, tcp(1, 2, 0x10))), "wifi")
    assert f.link == "ethernet" and (f.sport, f.dport) == (1, 2)


def test_raw_ip_and_ipv6_extension_headers():
    hop_by_hop = bytes([44, 0]) + b"\x00" * 6  # next: fragment
    fragment = bytes([6, 0]) + struct.pack("!HI", 0, 7)  # offset 0: the first fragment, TCP follows
    f = decode(ipv6(0, hop_by_hop + fragment + tcp(1234, 80, 0x02)), "raw-ip")
    assert f.extension_headers == (0, 44) and not f.fragment
    assert (f.src, f.dst, f.protocol_name, f.sport, f.dport) == ("fd00::1", "fd00::2", "TCP", 1234, 80)
    later = decode(ipv6(44, bytes([6, 0]) + struct.pack("!HI", 0x0010, 7) + b"\x00" * 16), "raw-ip")
    assert later.fragment and later.sport is None


def test_arp_and_icmpv6():
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, IP_A, bytes(6), IP_B)
    f = decode(ether(0x0806, arp))
    assert (f.arp_op, f.arp_sender_ip, f.arp_target_ip, f.arp_sender_mac) == (1, "10.0.0.5", "10.0.1.9", "00-15-5D-0A-0B-0C")
    assert f.protocol_name == "ARP"
    ns = decode(ether(0x86DD, ipv6(58, bytes([135, 0, 0, 0]) + b"\x00" * 20)))
    assert (ns.protocol_name, ns.icmp_type) == ("ICMPv6", 135)


def test_vxlan_inner_frame():
    inner = ether(0x0800, ipv4(6, tcp(5000, 80, 0x18), src=bytes([192, 168, 1, 2]), dst=bytes([192, 168, 1, 3])))
    vxlan = struct.pack("!BBHI", 0x08, 0, 0, 5001 << 8)
    outer = ether(0x0800, ipv4(17, udp(61000, 4789, vxlan + inner)))
    f = decode(outer)
    assert (f.encapsulation, f.vni) == ("vxlan", 5001)
    assert (f.inner.src, f.inner.dst, f.inner.sport, f.inner.dport) == ("192.168.1.2", "192.168.1.3", 5000, 80)
    key = flow_key(outer)
    assert key_text(key) == {"protocol": "TCP", "src": "192.168.1.2", "dst": "192.168.1.3", "sport": 5000, "dport": 80}


def test_nvgre_inner_frame():
    inner = ether(0x0800, ipv4(17, udp(53, 53), src=bytes([172, 16, 0, 1]), dst=bytes([172, 16, 0, 2])))
    gre = struct.pack("!HHI", 0x2000, 0x6558, (6001 << 8) | 0x01)
    f = decode(ether(0x0800, ipv4(47, gre + inner)))
    assert (f.encapsulation, f.vni) == ("nvgre", 6001)
    assert (f.inner.src, f.inner.protocol_name) == ("172.16.0.1", "UDP")


def test_truncated_frames_stop_without_raising():
    full = ether(0x0800, ipv4(6, tcp(1, 2, 0x02)))
    for size in range(14 + 20 + 14):  # up to the TCP flags byte
        f = decode(full[:size])
        assert f.truncated and f.tcp_flags is None
    assert decode(b"\x45\x00", "raw-ip").truncated


def test_depth_limits_the_work_done():
    frame = ether(0x0800, ipv4(6, tcp(1, 2, 0x02)), tags=[(0x8100, 9)])
    link_only = decode(frame, depth=frames.DEPTH_LINK)
    assert link_only.vlan == 9 and link_only.src is None
    network = decode(frame, depth=frames.DEPTH_NETWORK)
    assert network.src == "10.0.0.5" and network.sport is None


def test_flow_key_fast_path_agrees_with_the_full_decode():
    cases = [ether(0x0800, ipv4(6, tcp(1, 2, 0))), ether(0x0800, ipv4(17, udp(3, 4)), tags=[(0x8100, 12)]),
             ipv4(1, b"\x00" * 8), ether(0x0800, ipv4(6, tcp(5, 6, 0), options=b"\x01" * 4))]
    for frame in cases:
        link = "raw-ip" if frame[0] == 0x45 else "ethernet"
        d = decode(frame, link)
        expect = {"protocol": d.protocol_name, "src": d.src, "dst": d.dst}
        expect.update({k: v for k, v in (("vlan", d.vlan), ("sport", d.sport), ("dport", d.dport)) if v is not None})
        assert key_text(flow_key(frame, link)) == expect
    assert five_tuple(cases[1]) == {"vlan": 12, "src": "10.0.0.5", "dst": "10.0.1.9", "protocol": "UDP", "sport": 3, "dport": 4}


def test_original_length_from_the_ip_header():
    lso = ether(0x0800, ipv4(6, tcp(1, 2, 0x10) + b"\x00" * 100, total=9000))
    assert original_length(lso) == 9014
    lso_v2 = ether(0x0800, ipv4(6, tcp(1, 2, 0x10) + b"\x00" * 4000, total=0))
    assert original_length(lso_v2) == len(lso_v2)
    assert original_length(ipv4(6, tcp(1, 2, 0), total=1500), "raw-ip") == 1500


# -- real frames -------------------------------------------------------------------------------------

def _pktmon_frames(name: str):
    from diag.decode import pktmon

    with open_trace(sample(name)) as trace:
        for record in trace.records():
            if record.provider == pktmon.PROVIDER and record.event_id in (160, 170):
                event = pktmon.PacketEvent(record.payload, record.event_id == 170)
                yield event.packet_type, event.direction, bytes(event.frame)


@pytest.mark.parametrize("name", ["nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl",
                                  "NeoChenjf__Finguard__PktMon.etl", "microsoft__demikernel__PktMon.etl"])
def test_real_frames_ip_header_checksums_verify_where_we_found_the_header(name):
    """The IPv4 header located by our link decoding must carry a valid checksum (received frames)."""
    checked = bad = 0
    for packet_type, direction, frame in _pktmon_frames(name):
        f = decode(frame, {1: "ethernet", 2: "wifi", 3: "raw-ip"}[packet_type], frames.DEPTH_NETWORK)
        if f.ip_version != 4 or direction not in (1, 3) or f.src.startswith("127."):
            continue  # received frames only (no checksum offload pending); loopback carries no checksum
        start = frame.index(ipaddress.ip_address(f.src).packed + ipaddress.ip_address(f.dst).packed) - 12
        header = frame[start:start + (frame[start] & 0x0F) * 4]
        checked += 1
        bad += checksum(header) != 0
    assert checked > 0 and bad == 0


def test_real_flows_pair_up_in_both_directions():
    keys = {flow_key(frame, {1: "ethernet", 2: "wifi", 3: "raw-ip"}[t])
            for t, _d, frame in _pktmon_frames("nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl")}
    tcp_keys = {k for k in keys if k and k[1] == 6}
    paired = {k for k in tcp_keys if (k[0], 6, k[3], k[2], k[5], k[4]) in tcp_keys}
    assert tcp_keys and len(paired) >= len(tcp_keys) // 2
