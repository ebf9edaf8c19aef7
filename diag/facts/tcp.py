"""TCP resets and retransmissions per MAC pair, from the frames pktmon logged (one look per packet).

``TcpTracker.segment`` is called by the pktmon digest for the first snapshot of every packet whose
flow key says TCP. It reads the Ethernet (one 802.1Q tag; also on pktmon's Wi-Fi link, which carries
Ethernet frames on some builds) or raw-IP header, IPv4 (any IHL, first fragment) or IPv6 (no
extension headers) and the TCP header at fixed offsets (untagged IPv4 without options, the common
case, in one ``struct`` call); any other TCP frame (the inner frame of VXLAN/NVGRE, 802.11 frames,
IPv6 extension headers, a header cut short) is counted in ``not_parsed`` and left out.

Counts are kept per flow, with the (destination MAC, source MAC) of its first frame, and summed per
MAC pair when asked (``totals``), so a vmNIC's share is read at fact time by its MAC: frames it sent
carry it as source, frames it received as destination.

A retransmission is a data segment (payload > 0) whose (flow, seq, payload length) was already seen
in a different packet (another PktGroupId), at least ``min_gap`` ticks from the earliest and from the
latest copy seen. The copies pktmon logs of one packet at each component share a PktGroupId and reach
here once; a copy that some component re-logs with a new PktGroupId within microseconds is not a
retransmission. Trace order is not time order across processors, so gaps are taken either way. Each
flow remembers its last ``window`` segments: a retransmission of an older one is not seen (a stated
limit). Flows beyond ``max_flows`` are let go, the least recently seen first (their counts folded
into their MAC pair, their window lost), and MAC pairs beyond ``max_pairs`` are summed under
``OTHER_PAIR`` (counted in ``not_kept``); flows let go are counted in the facts (``host_flows_let_go``),
and every packet stays in the host totals.
"""

from __future__ import annotations

import struct

from diag.decode.frames import ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, LINK_ETHERNET, LINK_RAW_IP, LINK_WIFI
from diag.decode.wire import mac_text
from diag.facts.network import VPortTcp

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10
WINDOW = 64  # recent (seq, length) remembered per flow
MAX_FLOWS = 512
MAX_PAIRS = 1024
OTHER_PAIR = b""  # raw IP frames (no MACs) and pairs beyond the table
# a flow's record: these counters, then its MAC pair, its recent segments and when it was last seen (packet count)
PACKETS, SYNS, RESETS, DATA, RETRANSMISSIONS, MACS, RECENT, SEEN = range(8)
COUNTERS = 5
# From the EtherType of an untagged frame to the TCP flags, IPv4 without options: EtherType, version/IHL,
# total length, flags/fragment offset, protocol, TCP sequence number, data offset, TCP flags.
_IPV4_TCP = struct.Struct("!HBxH2xHxB2x8x4xI4xBB").unpack_from
_IPV4_TCP_END = 14 + 20 + 14
_SEQ_OFFSET_FLAGS = struct.Struct("!I4xBB").unpack_from  # sequence number, (ack), data offset, flags
_U16 = struct.Struct("!H").unpack_from


class TcpTracker:
    """TCP counters and the recent segments of each flow; totals per MAC pair. Bounded."""

    def __init__(self, min_gap: int | None, *, window: int = WINDOW, max_flows: int = MAX_FLOWS,
                 max_pairs: int = MAX_PAIRS) -> None:
        self.min_gap = min_gap  # raw ticks (1 ms); None without a clock: no retransmission is judged
        self.window = window
        self.max_flows = max_flows
        self.max_pairs = max_pairs
        self.flows: dict[tuple, list] = {}
        self.pairs: dict[bytes, list[int]] = {}  # counters of the flows let go, by MAC pair
        self.not_parsed = 0
        self.seen = 0  # TCP packets looked at: the flows' clock for letting the idlest go
        self.flows_forgotten = 0
        self.pairs_not_kept = 0  # flows let go whose MAC pair found the pair table full (summed under OTHER_PAIR)

    @property
    def not_kept(self) -> int:
        """Counts no longer told apart by MAC pair. (Flows let go keep their counts: the facts say how many.)"""
        return self.pairs_not_kept

    def segment(self, data: bytes, link: str, fkey: tuple, gid: int, ticks: int | None, size: int) -> None:
        """One TCP packet: ``data`` its frame (as logged), ``size`` the length it had."""
        if (link == LINK_ETHERNET or link == LINK_WIFI) and len(data) >= _IPV4_TCP_END:
            ether_type, version_ihl, total, fragment, proto, seq, offset, flags = _IPV4_TCP(data, 12)
            if ether_type == ETHERTYPE_IPV4 and version_ihl == 0x45 and proto == 6 and not fragment & 0x1FFF:
                payload = (total - 20 if total > 20 else size - 34) - (offset >> 4) * 4
            else:
                parsed = self._parse(data, link, size)
                if parsed is None:
                    return
                seq, flags, payload = parsed
        else:
            parsed = self._parse(data, link, size)
            if parsed is None:
                return
            seq, flags, payload = parsed
        flow = self.flows.get(fkey)
        if flow is None:
            flow = self._new_flow(fkey, data if link != LINK_RAW_IP else b"")
        self.seen += 1
        flow[SEEN] = self.seen
        flow[PACKETS] += 1
        if flags & TCP_RST:
            flow[RESETS] += 1
        elif flags & TCP_SYN and not flags & TCP_ACK:
            flow[SYNS] += 1
        if payload <= 0:
            return
        flow[DATA] += 1
        recent = flow[RECENT]
        segment = (seq << 24) | (payload & 0xFFFFFF)
        before = recent.get(segment)
        if before is None:
            recent[segment] = (gid, ticks, ticks)
            if len(recent) > self.window:
                del recent[next(iter(recent))]
            return
        first, last = before[1], before[2]
        if ticks is None or first is None:
            return
        if ticks < first:
            recent[segment] = (gid, ticks, last)
        else:
            recent[segment] = (gid, first, ticks if ticks > last else last)
        gap = self.min_gap
        if before[0] != gid and gap is not None and (ticks - last >= gap or first - ticks >= gap
                                                     or (first < ticks < last and ticks - first >= gap
                                                         and last - ticks >= gap)):
            flow[RETRANSMISSIONS] += 1

    def _parse(self, data: bytes, link: str, size: int) -> tuple[int, int, int] | None:
        """(seq, flags, payload length) of any other TCP frame this module reads; None (counted) otherwise."""
        if link == LINK_ETHERNET or link == LINK_WIFI:
            if len(data) < 14:
                self.not_parsed += 1
                return None
            l3, ether_type = 14, (data[12] << 8) | data[13]
            if ether_type == ETHERTYPE_VLAN and len(data) >= 18:
                ether_type, l3 = (data[16] << 8) | data[17], 18
        elif link == LINK_RAW_IP and data:
            l3 = 0
            ether_type = ETHERTYPE_IPV4 if data[0] >> 4 == 4 else ETHERTYPE_IPV6
        else:
            self.not_parsed += 1
            return None
        if ether_type == ETHERTYPE_IPV4 and len(data) >= l3 + 20 and data[l3] >> 4 == 4 and data[l3 + 9] == 6 \
                and not _U16(data, l3 + 6)[0] & 0x1FFF:
            ihl = (data[l3] & 0x0F) * 4
            l4, ip_payload = l3 + ihl, _U16(data, l3 + 2)[0] - ihl
        elif ether_type == ETHERTYPE_IPV6 and len(data) >= l3 + 40 and data[l3] >> 4 == 6 and data[l3 + 6] == 6:
            l4, ip_payload = l3 + 40, _U16(data, l3 + 4)[0]
        else:
            self.not_parsed += 1
            return None
        if len(data) < l4 + 14:
            self.not_parsed += 1
            return None
        if ip_payload <= 0:  # large sends log an IP length of 0: the frame's own length stands
            ip_payload = size - l4
        seq, offset, flags = _SEQ_OFFSET_FLAGS(data, l4 + 4)
        return seq, flags, ip_payload - (offset >> 4) * 4

    def _new_flow(self, fkey: tuple, frame: bytes) -> list:
        if len(self.flows) >= self.max_flows:
            self._forget_flows()
        flow = self.flows[fkey] = [0, 0, 0, 0, 0, frame[:12] if len(frame) >= 12 else OTHER_PAIR, {}, 0]
        return flow

    def _forget_flows(self) -> None:
        """Let the idler half of the flows go (least recently seen first), keeping their counts."""
        flows = self.flows
        drop = len(flows) - self.max_flows // 2
        for fkey, _flow in sorted(flows.items(), key=_last_seen)[:drop]:
            self._fold(self.pairs, flows.pop(fkey), count=True)
        self.flows_forgotten += drop

    def _fold(self, pairs: dict[bytes, list[int]], flow: list, count: bool = False) -> None:
        macs = flow[MACS]
        total = pairs.get(macs)
        if total is None:
            if len(pairs) >= self.max_pairs and macs != OTHER_PAIR:
                self.pairs_not_kept += count
                macs = OTHER_PAIR
                total = pairs.get(macs)
            if total is None:
                total = pairs[macs] = [0] * COUNTERS
        for i in range(COUNTERS):
            total[i] += flow[i]

    def totals(self) -> dict[bytes, list[int]]:
        """Counters per MAC pair (flows let go and flows still tracked), without changing the tracker."""
        pairs = {macs: list(counts) for macs, counts in self.pairs.items()}
        for flow in self.flows.values():
            self._fold(pairs, flow)
        return pairs


def _last_seen(item: tuple) -> int:
    return item[1][SEEN]


def mac_pair_text(macs: bytes) -> tuple[str, str] | None:
    """(source MAC, destination MAC) of a pair key as pktmon's PhysAddress spells them."""
    return (mac_text(macs[6:12]), mac_text(macs[0:6])) if len(macs) == 12 else None


def vport_tcp_facts(tracker: TcpTracker, vmnics: dict[str, tuple[int, str]]) -> list[VPortTcp]:
    """One fact per vmNIC (``vmnics``: MAC -> (component id, name)) that sent or received TCP."""
    pairs = tracker.totals()
    host = [sum(counts[i] for counts in pairs.values()) for i in range(COUNTERS)]
    sent: dict[str, list[int]] = {}
    received: dict[str, list[int]] = {}
    for macs, counts in pairs.items():
        pair = mac_pair_text(macs)
        if pair is None:
            continue
        for mac, side in zip(pair, (sent, received)):
            if mac in vmnics:
                total = side.setdefault(mac, [0, 0, 0, 0, 0])
                for i, n in enumerate(counts):
                    total[i] += n
    facts = []
    for mac, (comp_id, name) in sorted(vmnics.items(), key=lambda item: item[1][0]):
        out, into = sent.get(mac, [0] * 5), received.get(mac, [0] * 5)
        packets = out[PACKETS] + into[PACKETS]
        if not packets:
            continue
        resets, retransmissions = out[RESETS] + into[RESETS], out[RETRANSMISSIONS] + into[RETRANSMISSIONS]
        data = out[DATA] + into[DATA]
        facts.append(VPortTcp(
            component_id=comp_id, component_name=name, mac=mac, tcp_packets=packets,
            connection_attempts=out[SYNS] + into[SYNS], resets=resets, resets_sent=out[RESETS],
            resets_received=into[RESETS], data_segments=data, retransmissions=retransmissions,
            retransmissions_sent=out[RETRANSMISSIONS], retransmissions_received=into[RETRANSMISSIONS],
            retransmission_percent=_percent(retransmissions, data), reset_share_percent=_percent(resets, host[RESETS]),
            retransmission_share_percent=_percent(retransmissions, host[RETRANSMISSIONS]),
            host_tcp_packets=host[PACKETS], host_resets=host[RESETS], host_retransmissions=host[RETRANSMISSIONS],
            host_tcp_not_analysed=tracker.not_parsed, host_flows_let_go=tracker.flows_forgotten))
    return facts


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0
