"""TCP resets/retransmissions per vmNIC and unanswered ARP/ND, counted from pktmon frames.

Frames are built with diag/synth/frames.py and fed to the real digest as packet snapshots (event 160
payloads from diag/synth/pktmon.py, with the raw timestamp in front of them). Expected values are what
each test wrote. A real sample with TCP is checked against an independent count made with
``diag.decode.frames.decode`` over dissect.etl's records.
"""

from __future__ import annotations

import collections
import struct
import uuid

import pytest

from factscan import by_kind, scan_facts
from samples import sample
from diag.decode import pktmon
from diag.facts import pktmon as pktmon_facts
from diag.facts.pktmon import PktmonDigest
from diag.facts.tcp import TcpTracker, vport_tcp_facts
from diag.synth import frames as f
from diag.synth import pktmon as pm

VMNIC_A, VMNIC_B, NIC = 10, 11, 1
MAC_A, MAC_B, MAC_GW = "00-15-5d-4a-10-00", "00-15-5d-4a-10-01", "00-1d-d8-b7-1c-01"
IP_A, IP_B, CLIENT = "172.20.0.11", "172.20.0.12", "192.0.2.10"
MS = 10_000  # ticks of the test clock (10 MHz)


class Clock:
    start_filetime, reference_ticks, ticks_per_second = 133_000_000_000_000_000, 0, 10_000_000

    def to_filetime(self, ticks: int) -> int:
        return self.start_filetime + ticks


def snapshot(group: int, appearance: int, component: int, frame: bytes, ticks: int) -> bytes:
    header = bytearray(0x50)
    struct.pack_into("<q", header, 0x10, ticks)
    return bytes(header) + pm.encode_packet(
        pkt_group_id=group, pkt_number=1, appearance=appearance, dir_tag=pm.DirTag.TX,
        packet_type=pm.PacketType.ETHERNET, component_id=component, edge_id=1, filter_id=0, frame=frame)


class Host:
    """A digest with two vmNICs and a NIC in its rundown; ``send`` logs a packet at ``hops`` components."""

    def __init__(self) -> None:
        self.digest = PktmonDigest(Clock())
        self.group = 100
        for comp, ctype, mac in ((VMNIC_A, 5, MAC_A), (VMNIC_B, 5, MAC_B), (NIC, 2, "00-15-5d-4a-00-01")):
            self.digest.rundown(pktmon.EVENT_COMPONENT, {"component_id": comp, "type": ctype, "name": f"c{comp}",
                                                         "description": f"Component {comp}"})
            self.digest.rundown(30, {"component_id": comp, "property": pktmon_facts.PROP_PHYS_ADDRESS,
                                     "value": mac.upper()})

    def send(self, frame: bytes, ticks: int, hops: tuple[int, ...] = (VMNIC_A, NIC), group: int | None = None) -> None:
        if group is None:
            self.group += 1
            group = self.group
        for appearance, comp in enumerate(hops, start=1):
            data = snapshot(group, appearance, comp, frame, ticks + appearance * 50)
            assert self.digest.passed(data, 0x50, len(data))

    def facts(self) -> dict:
        self.digest.finish()
        return {"tcp": {x.component_id: x for x in pktmon_facts.tcp_facts(self.digest)},
                "neighbors": pktmon_facts.neighbor_facts(self.digest)}


def segment(n: int, seq: int, payload: bytes = b"x" * 100, flags: int = f.TCP_ACK | f.TCP_PSH, src=(MAC_A, IP_A),
            dst=(MAC_GW, CLIENT), ports=(80, 50000)) -> bytes:
    return f.tcp_frame(src[0], dst[0], src[1], dst[1], *ports, ident=n, seq=seq, flags=flags, payload=payload)


def test_resets_syns_and_data_are_counted_per_vmnic_and_direction():
    host = Host()
    t = 0
    for n in range(7):  # SYN in to A, RST|ACK out of A
        host.send(segment(n, 5000 + n, b"", f.TCP_SYN, src=(MAC_GW, CLIENT), dst=(MAC_A, IP_A), ports=(50000 + n, 80)),
                  t, (NIC, VMNIC_A))
        host.send(segment(n, 0, b"", f.TCP_RST | f.TCP_ACK, ports=(80, 50000 + n)), t + MS)
        t += 10 * MS
    for n in range(3):  # B receives resets from a peer
        host.send(segment(n, 9, b"", f.TCP_RST, src=(MAC_GW, CLIENT), dst=(MAC_B, IP_B)), t, (NIC, VMNIC_B))
        t += MS
    for n in range(5):  # B sends data
        host.send(segment(n, 100 * n, src=(MAC_B, IP_B)), t, (VMNIC_B, NIC))
        t += MS
    tcp = host.facts()["tcp"]
    a, b = tcp[VMNIC_A], tcp[VMNIC_B]
    assert (a.tcp_packets, a.connection_attempts, a.resets, a.resets_sent, a.resets_received) == (14, 7, 7, 7, 0)
    assert (b.tcp_packets, b.resets, b.resets_sent, b.resets_received, b.data_segments) == (8, 3, 0, 3, 5)
    assert (a.host_resets, a.reset_share_percent, b.reset_share_percent) == (10, 70.0, 30.0)
    assert a.host_tcp_packets == 22 and a.retransmissions == b.retransmissions == 0


def test_a_retransmission_is_the_same_segment_in_another_packet_at_least_1_ms_apart():
    host = Host()
    written = 0
    t = 0
    for n in range(20):
        frame = segment(n, 1000 + 100 * n)
        host.send(frame, t)
        if n % 4 == 0:  # sent again 200 ms later: a retransmission
            host.send(frame, t + 200 * MS)
            written += 1
        if n % 5 == 1:  # re-logged with a new PktGroupId 30 µs later: not one
            host.send(frame, t + 300)
        t += 2 * MS
    early = segment(99, 50_000)
    host.send(early, t + 400 * MS)  # the retransmission comes first in the file (another processor's buffer)
    host.send(early, t)
    written += 1
    same_group = segment(98, 60_000)
    host.send(same_group, t, group=7)
    host.send(same_group, t + 500 * MS, group=7)  # the same packet (PktGroupId) seen again: not one
    a = host.facts()["tcp"][VMNIC_A]
    assert a.retransmissions == a.retransmissions_sent == a.host_retransmissions == written == 6
    assert a.data_segments == 20 + 5 + 4 + 2 + 1  # every packet (PktGroupId) with a payload, copies included
    assert a.retransmission_share_percent == 100.0


def test_payload_length_comes_from_the_ip_header_not_from_ethernet_padding():
    tracker = TcpTracker(10)
    ack = segment(1, 500, b"")  # 54 bytes: padded to the Ethernet minimum on the wire
    padded = ack + bytes(6)
    for n, frame in enumerate((ack, padded, ack)):
        tracker.segment(frame, "ethernet", ("flow",), n, n * 100, len(frame))
    assert sum(c[3] for c in tracker.totals().values()) == 0  # no data segments, so no retransmissions
    ipv6 = f.tcp_frame(MAC_A, MAC_GW, "2001:db8::11", "2001:db8::1", 80, 50000, seq=7, payload=b"y" * 300)
    for n in range(2):
        tracker.segment(ipv6, "ethernet", ("v6",), n, n * 100, len(ipv6))
    assert [c[3:] for c in tracker.totals().values()] == [[2, 1]]


def test_tcp_in_an_overlay_or_cut_short_is_counted_as_not_analysed():
    tracker = TcpTracker(10)
    inner = segment(1, 1, b"z" * 20)
    vxlan = f.vxlan_frame(MAC_A, MAC_GW, "10.0.0.1", "10.0.0.2", 5001, inner)
    tracker.segment(vxlan, "ethernet", ("x",), 1, 0, len(vxlan))
    tracker.segment(inner[:40], "ethernet", ("x",), 2, 0, len(inner))
    assert tracker.not_parsed == 2 and not tracker.totals()


def test_flow_and_pair_tables_are_bounded_and_what_they_turn_away_is_counted():
    tracker = TcpTracker(10, max_flows=8, max_pairs=3)
    for n in range(40):
        frame = segment(n, 10, src=(f"00-15-5d-00-00-{n:02x}", IP_A), ports=(80, 40000 + n))
        tracker.segment(frame, "ethernet", ("flow", n), n, 0, len(frame))
    assert len(tracker.flows) <= 8 and tracker.flows_forgotten == 40 - len(tracker.flows)
    # flows let go keep their counts under their MAC pair: 3 pairs, then the "other" bucket
    assert len(tracker.pairs) == 4 and tracker.pairs_not_kept == tracker.flows_forgotten - 3
    assert sum(c[0] for c in tracker.totals().values()) == 40  # every packet still in the host totals
    # counts no longer told apart by MAC pair are not kept; flows let go keep theirs (the facts say how many)
    assert tracker.not_kept == tracker.pairs_not_kept
    (fact,) = vport_tcp_facts(tracker, {"00-15-5D-00-00-00": (3, "Container NIC 0")})
    assert (fact.tcp_packets, fact.host_flows_let_go) == (1, tracker.flows_forgotten)


def test_unanswered_arp_and_nd_requests_and_what_is_not_a_request():
    host = Host()
    for n in range(4):
        host.send(f.arp_frame(f.ARP_REQUEST, MAC_A, IP_A, "172.20.0.99"), n * 1000 * MS)
    for n in range(3):
        host.send(f.neighbor_solicitation_frame(MAC_B, "fe80::215:5dff:fe4a:1001", "fe80::1"), n * 1000 * MS,
                  (VMNIC_B, NIC))
    host.send(f.arp_frame(f.ARP_REQUEST, MAC_B, IP_B, "172.20.0.1"), 0, (VMNIC_B, NIC))
    host.send(f.arp_frame(f.ARP_REPLY, MAC_GW, "172.20.0.1", IP_B, target_mac=MAC_B), MS, (NIC, VMNIC_B))
    host.send(f.neighbor_solicitation_frame(MAC_B, "fe80::215:5dff:fe4a:1001", "fe80::2"), 0, (VMNIC_B, NIC))
    host.send(f.neighbor_advertisement_frame(MAC_GW, "fe80::2", MAC_B, "fe80::215:5dff:fe4a:1001"), MS, (NIC, VMNIC_B))
    host.send(f.arp_frame(f.ARP_REQUEST, MAC_A, IP_A, IP_A), 0)  # gratuitous
    host.send(f.arp_frame(f.ARP_REQUEST, MAC_A, "0.0.0.0", IP_A), 0)  # probe
    host.send(f.neighbor_solicitation_frame(MAC_A, "::", "fe80::215:5dff:fe4a:1000"), 0)  # DAD
    host.send(f.arp_frame(f.ARP_REQUEST, "00-15-5d-99-99-99", "172.20.0.50", "172.20.0.51"), 0, (NIC,))
    facts = host.facts()["neighbors"]
    got = {(x.protocol, x.target, x.requester_mac, x.component_id, x.vmnic, x.requests, x.answers) for x in facts}
    assert got == {("ARP", "172.20.0.99", MAC_A.upper(), VMNIC_A, True, 4, 0),
                   ("ND", "fe80::1", MAC_B.upper(), VMNIC_B, True, 3, 0),
                   ("ARP", "172.20.0.1", MAC_B.upper(), VMNIC_B, True, 1, 1),
                   ("ND", "fe80::2", MAC_B.upper(), VMNIC_B, True, 1, 1),
                   ("ARP", "172.20.0.51", "00-15-5D-99-99-99", NIC, False, 1, 0)}  # not a vmNIC: where it was seen
    assert host.digest.neighbors.announcements == 3
    peer = next(x for x in facts if x.target == "172.20.0.99")
    assert peer.span_seconds == 3.0 and facts[0].answers == 0  # unanswered first
    assert host.digest.unparsed_frames == 0  # ARP frames have a flow key (EtherType 0x0806)


def test_neighbor_tables_are_bounded_and_counted():
    host = Host()
    host.digest.neighbors.max_requests = 5
    host.digest.neighbors.max_targets = 2
    for n in range(8):
        host.send(f.arp_frame(f.ARP_REQUEST, MAC_A, IP_A, f"172.20.1.{n}"), n * MS)
        reply = f.arp_frame(f.ARP_REPLY, MAC_GW, f"172.20.1.{n}", IP_A, target_mac=MAC_A)
        host.send(reply, n * MS + 10, (NIC, VMNIC_A))
    facts = host.facts()["neighbors"]
    tracker = host.digest.neighbors
    assert (tracker.requests_not_kept, tracker.answers_not_kept) == (3, 6)
    assert len(facts) == 5 and not any(x.answers_complete for x in facts)
    assert host.digest.frames_not_kept == 9


# -- a real sample ------------------------------------------------------------------------------------

def independent_tcp(path) -> collections.Counter:
    """TCP packets, SYNs and RSTs of each packet's first snapshot, with dissect.etl and the full frame decoder."""
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    from dissect.etl.headers.event import EventHeader
    from diag.decode.frames import decode

    out: collections.Counter = collections.Counter()
    seen = set()
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            if not isinstance(h, EventHeader) or str(uuid.UUID(bytes_le=h.provider_id.bytes)) != pktmon.PROVIDER:
                continue
            if h.descriptor.id not in (160, 170):
                continue
            event = pktmon.PacketEvent(memoryview(bytes(h.payload)), h.descriptor.id == 170)
            key = (event.pkt_group_id, event.pkt_number)
            if key in seen:
                continue
            seen.add(key)
            frame = decode(bytes(event.frame)[:256], {1: "ethernet", 2: "wifi", 3: "raw-ip"}.get(event.packet_type,
                                                                                                 "ethernet"))
            inner = frame.inner or frame
            if inner.protocol != 6 or inner.tcp_flags is None:
                continue
            if frame.link == "ieee802.11" or frame.inner is not None:
                out["not_analysed"] += 1
                continue
            out["packets"] += 1
            out["resets"] += bool(inner.tcp_flags & 0x04)
            out["syns"] += bool(inner.tcp_flags & 0x02 and not inner.tcp_flags & 0x10)
    return out


def test_real_sample_tcp_counts_match_an_independent_count():
    path = sample("nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl")
    expected = independent_tcp(path)
    result = scan_facts(path)
    tracker = result.scan.pktmon.tcp
    host = [sum(c[i] for c in tracker.totals().values()) for i in range(5)]
    assert expected["packets"] > 50 and expected["resets"] > 0  # the sample has TCP with resets
    assert (host[0], host[1], host[2]) == (expected["packets"], expected["syns"], expected["resets"])
    assert tracker.not_parsed == expected["not_analysed"]
    assert not by_kind(result.facts).get("vport_tcp")  # a laptop: no vmNICs


def test_the_same_packet_seen_again_after_its_path_was_split_is_not_a_retransmission():
    tracker = TcpTracker(10)
    frame = segment(1, 4242)
    tracker.segment(frame, "ethernet", ("flow",), 5, 0, len(frame))
    tracker.segment(frame, "ethernet", ("flow",), 5, 1000, len(frame))  # same PktGroupId, 100 ms later
    tracker.segment(frame, "ethernet", ("flow",), 6, 3000, len(frame))  # another packet: a retransmission
    assert [c[4] for c in tracker.totals().values()] == [1]


def test_a_busy_flow_outlives_many_short_ones_and_keeps_its_window():
    tracker = TcpTracker(10, max_flows=8)
    busy = segment(0, 777, src=(MAC_B, IP_B), ports=(443, 40000))
    tracker.segment(busy, "ethernet", ("busy",), 1, 0, len(busy))
    for n in range(100):  # short flows come and go; the busy flow sends an ACK now and then
        short = segment(n, 10, ports=(80, 41000 + n))
        tracker.segment(short, "ethernet", ("short", n), 100 + n, n, len(short))
        if n % 3 == 0:
            ack = segment(n, 2000, b"", src=(MAC_B, IP_B), ports=(443, 40000))
            tracker.segment(ack, "ethernet", ("busy",), 1000 + n, n, len(ack))
    tracker.segment(busy, "ethernet", ("busy",), 5000, 500, len(busy))  # its first segment, sent again
    assert ("busy",) in tracker.flows and tracker.flows_forgotten == 100 + 1 - len(tracker.flows)
    totals = tracker.totals()
    assert sum(c[4] for c in totals.values()) == 1 and sum(c[0] for c in totals.values()) == 1 + 100 + 34 + 1
