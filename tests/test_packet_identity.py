"""Which snapshots are one packet, and which drop events are one dropped frame.

Frames are packed here byte by byte (RFC 791, 793, 768, 7348; IEEE 802.1Q, 802.2/SNAP, 802.11-2020 9.2.4.1
for the frame control field and the Null / QoS Null subtypes). The numbering pktmon uses from build 26100 on
is written here as the Finguard sample shows it (the processor in the PktGroupId's upper 16 bits, ids counting
up by one per snapshot, AppearanceCount 0); the real sample itself is checked in test_facts_pktmon.py and
test_rules_samples.py against tests/reference_pktmon.py.
"""

from __future__ import annotations

import struct

import pytest

from diag.decode import frames
from diag.decode.pktmon import PACKET_HEADER
from diag.facts import pktmon as pktmon_facts
from diag.facts.background import background_kind
from diag.facts.neighbors_seen import NeighborTracker
from diag.facts.pktmon import PktmonDigest
from test_frames import MAC_A, MAC_B, ether, ipv4, tcp, udp


class Clock:
    start_filetime, reference_ticks, ticks_per_second = 133_000_000_000_000_000, 0, 10_000_000

    def to_filetime(self, ticks: int) -> int:
        return self.start_filetime + ticks


def snapshot(gid: int, component: int, frame: bytes, *, ticks: int, appearance: int = 0, edge: int = 1,
             direction: int = 3, packet_type: int = 1, dropped: bool = False, reason: int = 0,
             number: int = 1) -> bytes:
    """An EVENT_HEADER-sized gap (the digest reads the timestamp at 0x10) and a 160/170 payload."""
    header = bytearray(0x50)
    struct.pack_into("<q", header, 0x10, ticks)
    payload = PACKET_HEADER.pack(gid, number, appearance, direction, packet_type, component, edge, 0,
                                 reason if dropped else 0, 0, len(frame), len(frame)) + frame
    return bytes(header) + payload


def feed(digest: PktmonDigest, data: bytes, dropped: bool = False) -> None:
    if dropped:
        ticks = struct.unpack_from("<q", data, 0x10)[0]
        assert digest.packet(memoryview(data)[0x50:], True, Clock().to_filetime(ticks))
    else:
        assert digest.passed(data, 0x50, len(data))


def cpu_id(cpu: int, seq: int) -> int:
    return (cpu << 48) | seq


def web(seq: int, ident: int = 0x1234, ttl: int = 64) -> bytes:
    packet = ipv4(6, struct.pack("!HHIIBBHHH", 50000, 443, seq, 7, 5 << 4, 0x18, 512, 0xBEEF, 0) + b"data")
    packet = packet[:4] + struct.pack("!H", ident) + packet[6:8] + bytes([ttl]) + packet[9:]
    return packet


# -- identity --------------------------------------------------------------------------------------------

def test_the_identity_stays_when_the_link_header_or_the_ip_header_is_rewritten():
    ip = web(1000)
    ethernet = ether(0x0800, ip)
    tagged = ether(0x0800, ip, tags=[(0x8100, 12)])
    dot11 = bytes([0x08, 0x02]) + b"\x00\x00" + MAC_B + MAC_A + MAC_A + b"\x10\x00" \
        + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + ip
    reheaded = ether(0x0800, web(1000, ident=0, ttl=1))  # the loopback path logs one segment under two headers
    vxlan = ether(0x0800, ipv4(17, udp(61000, 4789, struct.pack("!BBHI", 0x08, 0, 0, 5001 << 8) + ethernet)))
    ids = {frames.identity(ethernet), frames.identity(tagged), frames.identity(dot11, link=frames.LINK_WIFI),
           frames.identity(ip, link=frames.LINK_RAW_IP), frames.identity(reheaded), frames.identity(vxlan)}
    assert len(ids) == 1


def test_the_identity_tells_packets_apart():
    assert frames.identity(ether(0x0800, web(1000))) != frames.identity(ether(0x0800, web(2000)))  # another segment
    a = ether(0x0800, ipv4(17, udp(5353, 5353, b"query one")))
    b = ether(0x0800, ipv4(17, udp(5353, 5353, b"query two")))
    assert frames.identity(a) != frames.identity(b)
    arp = ether(0x0806, bytes.fromhex("0001080006040001") + MAC_A + bytes(4) + bytes(6) + bytes([10, 0, 0, 1]))
    assert frames.identity(arp) != frames.identity(a)


@pytest.mark.parametrize("subtype", [0x48, 0xC8])  # Null (4) and QoS Null (12) data subtypes
def test_80211_frames_without_a_body_are_not_read_again_as_ethernet(subtype):
    header = bytes([subtype, 0x01]) + b"\x00\x00" + MAC_B + MAC_A + MAC_B + b"\x10\x00"
    frame = header + (b"\x00\x00" if subtype == 0xC8 else b"")
    f = frames.decode(frame, frames.LINK_WIFI)
    assert f.link == frames.LINK_80211 and f.ether_type is None and f.protocol is None
    assert f.src_mac == "00-15-5D-0A-0B-0C"
    assert frames.flow_key(frame, frames.LINK_WIFI) is None  # no made-up EtherType, no flow
    assert frames.network_start(frame, frames.LINK_WIFI) == (None, None)


# -- rebuilding packets numbered per snapshot --------------------------------------------------------------

def test_consecutive_ids_of_one_packet_make_one_path_with_its_hop_times():
    digest = PktmonDigest(Clock())
    frame = ether(0x0800, web(1000))
    for i, comp in enumerate((12, 33, 33, 32, 74)):
        feed(digest, snapshot(cpu_id(2, 0x104 + i), comp, frame, ticks=1_000 + 20 * i, edge=1 + i % 2))
    digest.finish()
    assert digest.paths == 1 and digest.numbering == "per-snapshot" and digest.chains.linked == 4
    (path,) = pktmon_facts.path_facts(digest, str)
    assert path.hop_count == 5 and path.duration_us == pytest.approx(8.0)
    assert [h["delta_us"] for h in path.hops] == pytest.approx([0, 2, 2, 2, 2])


def test_interleaved_packets_on_one_processor_are_told_apart_by_their_content():
    digest = PktmonDigest(Clock())
    a, b = ether(0x0800, web(1000)), ether(0x0800, web(2000))
    seq = 0x298
    for hop, comp in enumerate((12, 33, 32)):
        for frame in (a, b):  # A, B, A, B...: a chain of two NBLs handed on together
            feed(digest, snapshot(cpu_id(3, seq), comp, frame, ticks=5_000 + seq))
            seq += 1
    digest.finish()
    routes = {tuple(e >> 16 for e in key): r.packets for key, r in digest.routes.items()}
    assert digest.paths == 2 and routes == {(12, 33, 32): 2}


def test_the_same_content_far_apart_in_ids_or_time_is_another_packet():
    digest = PktmonDigest(Clock())
    frame = ether(0x0800, web(1000))
    feed(digest, snapshot(cpu_id(1, 10), 12, frame, ticks=1_000))
    feed(digest, snapshot(cpu_id(1, 11), 33, frame, ticks=1_100))
    feed(digest, snapshot(cpu_id(1, 12), 12, frame, ticks=5_000_000))  # a retry, half a second on
    feed(digest, snapshot(cpu_id(1, 13), 33, frame, ticks=5_000_100))
    feed(digest, snapshot(cpu_id(1, 900), 32, frame, ticks=5_000_200))  # 887 ids on: not the same packet
    feed(digest, snapshot(cpu_id(2, 14), 32, frame, ticks=5_000_200))  # another processor's counter
    digest.finish()
    assert digest.paths == 4


def test_repeated_drop_events_of_one_packet_are_one_packet_and_one_frame():
    # the loopback SYN of the Finguard sample: dropped 1204, again 1204 under another IPv4 header, then 918
    digest = PktmonDigest(Clock())
    syn = ipv4(6, tcp(53165, 6469, 0x02), src=bytes([127, 0, 0, 1]), dst=bytes([127, 0, 0, 1]))
    other_header = syn[:4] + b"\x0e\x6c\x40\x00\x80" + syn[9:]
    for i, (frame, reason) in enumerate(((syn, 1204), (other_header, 1204), (syn, 918))):
        feed(digest, snapshot(cpu_id(7, 0x34 + i), 101, frame, ticks=100 + 30 * i, packet_type=3, edge=0,
                              dropped=True, reason=reason), dropped=True)
    digest.finish()
    assert digest.paths == 1 and digest.drops == 3 and digest.chains.repeats == 2
    assert digest.dropped_frames == 1
    facts = pktmon_facts.drop_facts(digest, 26200)
    assert {(f.kind, f.reason_code, f.count, f.distinct_frames, f.traffic) for f in facts} == {
        ("background_drop", 1204, 2, 1, "loopback"), ("background_drop", 918, 1, 0, "loopback")}


def test_a_packet_dropped_again_under_its_per_packet_id_is_not_another_packet():
    digest = PktmonDigest(Clock())
    frame = ether(0x0800, ipv4(17, udp(40000, 53, b"query"), dst=bytes([10, 0, 0, 53])))
    feed(digest, snapshot(77 << 16, 12, frame, ticks=100, appearance=1))
    for i in range(3):  # the same (PktGroupId, PktNumber) dropped three times at one component
        feed(digest, snapshot(77 << 16, 101, frame, ticks=200 + i, appearance=2 + i, dropped=True, reason=922),
             dropped=True)
    digest.finish()
    assert digest.paths == 1 and digest.drops == 3 and digest.drop_repeats == 2 and digest.dropped_frames == 1
    (group,) = pktmon_facts.drop_facts(digest, 20348)
    assert (group.kind, group.count, group.distinct_frames) == ("pktmon_drop", 3, 1)
    assert group.destinations == "10.0.0.53 (UDP 53)"


def test_one_frame_dropped_again_after_10_ms_is_another_frame():
    digest = PktmonDigest(Clock())
    frame = ether(0x0800, ipv4(17, udp(40000, 53, b"query"), dst=bytes([10, 0, 0, 53])))
    for i, ticks in enumerate((0, 50_000, 200_000)):  # 0, 5 ms, 20 ms
        feed(digest, snapshot(cpu_id(0, 10 + 300 * i), 101, frame, ticks=ticks, dropped=True, reason=907), dropped=True)
    assert (digest.drops, digest.dropped_frames) == (3, 2)


def test_flows_beyond_the_busiest_are_counted_as_not_kept():
    digest = PktmonDigest(Clock())
    for i in range(100):
        frame = ether(0x0800, ipv4(17, udp(40000 + i, 53, b"q"), dst=bytes([10, 0, 0, 53])))
        feed(digest, snapshot((i + 1) << 16, 12, frame, ticks=10 * i, appearance=1))
    digest.finish()
    before = digest.cuts.count
    flows = pktmon_facts.flow_facts(digest, limit=64)
    assert len(flows) == 64 and digest.cuts.count - before == 36


def test_one_solicitation_seen_twice_is_one_request():
    tracker = NeighborTracker(same_within=100_000)
    request = ether(0x0806, bytes.fromhex("0001080006040001") + MAC_A + bytes([10, 0, 0, 5]) + bytes(6)
                    + bytes([10, 0, 0, 1]))
    for ticks in (0, 50, 10_000_000, 10_000_020, 20_000_000):  # three retries a second apart, two seen twice
        tracker.arp(request, 3, ticks)
    ((_, record),) = tracker.requests.items()
    assert record[0] == 3 and tracker.repeats == 2


# -- LAN background ------------------------------------------------------------------------------------------

MULTICAST_MAC = bytes.fromhex("01005e0000fb")


def group_frame(ip: bytes, dst_mac: bytes = MULTICAST_MAC) -> bytes:
    return dst_mac + MAC_A + b"\x08\x00" + ip


@pytest.mark.parametrize(("ip", "kind"), [
    (ipv4(17, udp(5353, 5353, b"m"), dst=bytes([224, 0, 0, 251])), "mDNS"),          # RFC 6762
    (ipv4(17, udp(5355, 5355, b"l"), dst=bytes([224, 0, 0, 252])), "LLMNR"),         # RFC 4795
    (ipv4(17, udp(50000, 1900, b"s"), dst=bytes([239, 255, 255, 250])), "SSDP"),
    (ipv4(17, udp(137, 137, b"n"), dst=bytes([10, 0, 0, 255])), "NetBIOS name service"),
    (ipv4(17, udp(67, 68, b"o"), dst=bytes([255] * 4)), "DHCP server message for another host"),
    (ipv4(112, b"\x21\x01\x64\x01", dst=bytes([224, 0, 0, 18])), "VRRP"),           # RFC 5798
    (ipv4(2, b"\x16\x00\x00\x00", dst=bytes([224, 0, 0, 22])), "IGMP"),
])
def test_link_local_service_groups_dropped_by_the_stack_are_background(ip, kind):
    dst = b"\xff" * 6 if ip[16:20] in (bytes([255] * 4), bytes([10, 0, 0, 255])) else MULTICAST_MAC
    assert background_kind(group_frame(ip, dst), frames.LINK_ETHERNET, 1201) == kind


def test_what_is_not_background():
    mdns = group_frame(ipv4(17, udp(5353, 5353, b"m"), dst=bytes([224, 0, 0, 251])))
    for guard in (8, 12, 16, 17, 18, 20, 5, 701, 718):  # ACLs, MAC spoofing, guards, VSID, port down, VFP
        assert background_kind(mdns, frames.LINK_ETHERNET, guard) is None
    unicast_dns = MAC_B + MAC_A + b"\x08\x00" + ipv4(17, udp(53000, 53, b"q"))
    assert background_kind(unicast_dns, frames.LINK_ETHERNET, 922) is None
    app_multicast = group_frame(ipv4(17, udp(9000, 9000, b"x"), dst=bytes([239, 1, 2, 3])))
    assert background_kind(app_multicast, frames.LINK_ETHERNET, 1201) is None
    unicast_unknown = MAC_B + MAC_A + b"\x83\x00" + bytes(40)
    assert background_kind(unicast_unknown, frames.LINK_ETHERNET, 204) is None


def test_loopback_and_broadcasts_of_unknown_protocols_are_background():
    loopback = ipv4(6, tcp(53165, 6469, 0x02), src=bytes([127, 0, 0, 1]), dst=bytes([127, 0, 0, 1]))
    assert background_kind(loopback, frames.LINK_RAW_IP, 1204) == "loopback"
    vendor = b"\xff" * 6 + MAC_A + b"\x83\x00" + bytes(40)
    assert background_kind(vendor, frames.LINK_ETHERNET, 204) == "broadcast of a protocol the host does not speak"
    lldp = bytes.fromhex("0180c200000e") + MAC_A + b"\x88\xcc" + bytes(40)  # IEEE 802.1Q reserved group
    assert background_kind(lldp, frames.LINK_ETHERNET, 204) == "bridge protocol (STP/LLDP/LACP...)"


def test_a_flood_of_requests_is_not_taken_for_one_solicitation():
    # a request every 5 ms for 20 ms: repeats are judged from the last request counted, not chained from one
    # sighting to the next (which would fold the whole flood into one)
    tracker = NeighborTracker(same_within=100_000)
    request = ether(0x0806, bytes.fromhex("0001080006040001") + MAC_A + bytes([10, 0, 0, 5]) + bytes(6)
                    + bytes([10, 0, 0, 1]))
    for ticks in range(0, 200_001, 50_000):
        tracker.arp(request, 3, ticks)
    ((_, record),) = tracker.requests.items()
    assert (record[0], tracker.repeats) == (3, 2)
