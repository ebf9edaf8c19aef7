"""PktMon events → a digest (components, counts, drop groups, packet paths, flows) → facts.

The digest is filled in one streaming pass and stays bounded whatever the trace size:
- counters per component and per (component, reason, direction), with the first and last time
  of each drop group, its rate over time (``RateSeries``) and a few sample packets;
- packet paths: every snapshot of one packet (PktGroupId, PktNumber) joins an in-flight path; a
  path ends when the packet is dropped, when it is pushed out of the window of the ``window``
  most recent packets, or at the end of the trace. Ended paths are folded into per-route
  counters (the ordered component sequence); the first path of each route and of each drop group
  is kept whole as a sample. Between ``window`` and ``2 * window`` packets are in flight; snapshots
  of one packet further apart than ``window`` packets in file order may split its path in two
  (``paths_split`` counts those seen again after eviction);
- flows: the 5-tuple of each packet's first snapshot, in a table pruned to the busiest
  ``max_flows`` when it doubles (``flows_pruned`` counts what was let go).

``passed`` is the hot path for packet events (160): one ``struct`` call, a dict lookup and an
append per snapshot; the frame is read once per packet, for its flow. Snapshots keep the raw
timestamp (``filetime`` / ``microseconds`` convert with the trace's clock when facts are made).
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from diag import knowledge
from diag.decode import pktmon
from diag.decode.frames import (
    DEPTH_TRANSPORT, ETHERTYPE_ARP, LINK_ETHERNET, LINK_RAW_IP, LINK_WIFI, decode, flow_key, identity, key_text,
)
from diag.facts.background import background_kind
from diag.facts.evidence import Cuts, RateSeries, when
from diag.facts.models import BackgroundDropGroup, PacketDropGroup
from diag.facts.neighbors_seen import NeighborTracker, neighbor_request_facts
from diag.facts.neighbors_seen import facts_not_kept as neighbor_facts_not_kept
from diag.facts.network import Component, DropRate, Flow, NeighborRequests, PacketPath, PacketRoute, VPortTcp
from diag.facts.snapshots import RecentKeys, SnapshotChains
from diag.facts.tcp import TcpTracker, vport_tcp_facts
from diag.read.clock import filetime_to_datetime

SAMPLES_PER_GROUP = 5
PATH_WINDOW = 4096
MAX_ROUTES = 256
MAX_FLOWS = 2048
MAX_PATH_FACTS = 24
MAX_FLOW_FACTS = 64
FLOW_BYTES = 256  # enough frame for the flow key, VXLAN/NVGRE inner headers included
MAX_HOPS = 64  # a path this long is ended: a PktGroupId seen again (relogged or repeated buffers) must not grow it
_RUNDOWN_EVENTS = frozenset({pktmon.EVENT_COMPONENT, pktmon.EVENT_DROP_COUNTERS, *pktmon.PROPERTY_EVENTS})
_HEADER_SIZE = pktmon.PACKET_HEADER.size
_EVENT_TIMESTAMP = 0x40  # EVENT_HEADER.TimeStamp, counted back from the start of the payload
# From EVENT_HEADER.TimeStamp to the end of the packet header: TimeStamp, (rest of the header),
# PktGroupId, PktNumber, Appearance, DirTag, PacketType, ComponentId, EdgeId, (FilterId, DropReason,
# DropLocation), OriginalPayloadSize, LoggedPayloadSize: one call on the hot path.
_TIMED_HEADER = struct.Struct("<q56xQHHHHHH10xHH").unpack_from
# ComponentId, OriginalPayloadSize, LoggedPayloadSize: all that counting a packet needs (inspect).
_COUNTED_FIELDS = struct.Struct("<16xH12xHH").unpack_from
LINKS = {1: LINK_ETHERNET, 2: LINK_WIFI, 3: LINK_RAW_IP}
# Component property types (knowledge/pktmon-drop-reasons.yaml, confirmed by the value maps traces embed)
PROP_IF_INDEX, PROP_MINIPORT_IF_INDEX, PROP_PHYS_ADDRESS, PROP_VMSWITCH_NAME, PROP_IP_ADDRESS = 1, 2, 6, 10, 13
PROP_IP_IF_INDEX, PROP_VSID, PROP_VLAN, PROP_COMPARTMENT = 14, 15, 16, 17
# The fields each rundown event must have (as the hand-written decoder names them; a trace's own schema
# may name them otherwise, and is then not used for the digest).
_RUNDOWN_FIELDS = {pktmon.EVENT_COMPONENT: {"component_id", "type", "name", "description"},
                   pktmon.EVENT_DROP_COUNTERS: {"component_id", "packets_in", "bytes_in", "packets_out", "bytes_out"},
                   **{e: {"component_id", "property", "value"} for e in pktmon.PROPERTY_EVENTS}}
# What each property the facts use holds: a property event whose value has another type is damaged.
_PROPERTY_TYPES = {PROP_IF_INDEX: int, PROP_MINIPORT_IF_INDEX: int, PROP_PHYS_ADDRESS: str, PROP_VMSWITCH_NAME: str,
                   PROP_IP_ADDRESS: str, PROP_IP_IF_INDEX: int, PROP_VSID: int, PROP_VLAN: int, PROP_COMPARTMENT: int}
VSWITCH_COMPONENT_TYPES = frozenset({5, 6, 7, 8, 9})
VMNIC_COMPONENT_TYPE = 5  # VmsVmNic
DISTINCT_DROP_SECONDS = 0.010  # drop events of one frame at one component this close are one dropped frame
SAME_SOLICITATION_SECONDS = 0.010  # ARP/ND requests of one requester for one target this close are one request
# a path in flight: its flow key, hops, drop (component, reason, direction, location, background
# kind), whether its hops came out of order, and its id (the key of its first snapshot)
FLOW, HOPS, DROP, UNORDERED, PATH_ID = range(5)


@dataclass(slots=True)
class DropGroup:
    count: int = 0  # drop events
    distinct: int = 0  # frames first dropped here: a frame dropped again at the component within
    # DISTINCT_DROP_SECONDS (by another check, for another reason) counts in the group of its first drop
    first: int | None = None  # FILETIME
    last: int | None = None
    samples: list[dict] = field(default_factory=list)
    rate: RateSeries = field(default_factory=lambda: RateSeries(1024))


class Route:
    """Packets that crossed one component sequence."""

    __slots__ = ("index", "packets", "dropped", "reasons", "durations", "total_ticks", "max_ticks", "sample")

    def __init__(self, index: int = -1) -> None:
        self.index = index  # in the digest's _route_keys (-1: the overflow route)
        self.packets = self.dropped = self.durations = 0
        self.total_ticks = self.max_ticks = 0
        self.reasons: Counter[int] = Counter()
        self.sample: tuple | None = None


class PktmonDigest:
    """What a trace's PktMon events say, gathered incrementally.

    ``clock`` (the trace's ``TraceClock``) turns the raw timestamps of packet snapshots into time;
    without it paths have no timing. ``track=False`` keeps only the counters (no paths, no flows).
    """

    def __init__(self, clock: Any = None, *, track: bool = True, window: int = PATH_WINDOW,
                 max_flows: int = MAX_FLOWS) -> None:
        self.components: dict[int, dict] = {}
        self.drops = 0
        self.malformed = 0
        self.properties_refused = 0  # component properties whose value has another type than their code says
        self.by_component: Counter[int] = Counter()
        self.drops_by_component: Counter[int] = Counter()
        self.drops_by_reason: Counter[int] = Counter()
        self.drop_groups: dict[tuple[int, int, int, str | None], DropGroup] = {}
        self.clock = clock
        self.track = track
        self.cuts = Cuts()  # what capped list fields of its facts left out
        self.window = window
        self.max_flows = max_flows
        self.inflight: dict[int, list] = {}  # key -> [flow key, hops, drop or None]
        self._order: deque[int] = deque()
        self.routes: dict[tuple[int, ...], Route] = {}
        self.routes_overflow = Route()
        self.drop_paths: dict[tuple, tuple] = {}  # (component, reason, direction, background kind) -> sample
        self.paths = 0
        self.paths_split = 0  # packets the window let go before their last snapshot came (joined up again)
        # The paths let go lately, for _resumed: key -> their route's index in _route_keys (-1: the overflow), and
        # key -> their duration in ticks. Plain ints: thousands of tuples kept here would cost the cyclic GC more
        # than the whole fold (measured: 25 % of the facts pass on a 64 MB trace).
        self._evicted: dict[int, int] = {}
        self._evicted_ticks: dict[int, int] = {}
        self._route_keys: list[tuple[int, ...]] = []
        self._dropped_keys: dict[int, int] = {}  # key -> component/edge of its drop, for the drops ended lately
        self.drop_repeats = 0  # drop events of a packet already dropped there (per-packet numbering)
        self.dropped_frames = 0  # distinct frames dropped (one frame dropped at one component counts once)
        self._distinct = RecentKeys(int(DISTINCT_DROP_SECONDS * 10_000_000))
        self.chains = SnapshotChains(clock.ticks_per_second if clock is not None else None, self._end)
        self.flows: dict[tuple, list] = {}
        self.flows_pruned = 0
        self.flow_packets_pruned = 0
        self.unparsed_frames = 0  # frames with no EtherType: cut short, 802.3 LLC without SNAP (STP...)
        self.tcp = TcpTracker(clock.ticks_per_second // 1000 if clock is not None else None)  # 1 ms apart
        self.neighbors = NeighborTracker(
            same_within=int(clock.ticks_per_second * SAME_SOLICITATION_SECONDS) if clock is not None else None)
        self._tcp_segment = self.tcp.segment
        self.payload_truncated = 0  # snapshots logged shorter than the packet (pktmon --pkt-size)
        self.logged_size_max = 0  # the largest logged size of a truncated snapshot: the capture's size limit
        self.first_ticks: int | None = None  # earliest packet snapshot (raw ticks), when timed

    @property
    def packets(self) -> int:
        """Packet events counted (every valid snapshot, dropped or not)."""
        return sum(self.by_component.values())

    @property
    def numbering(self) -> str | None:
        """How the trace numbers snapshots (diag.facts.snapshots): per packet, per snapshot, or both."""
        if not self.track or not self.packets:
            return None
        per_snapshot = self.chains.snapshots
        if not per_snapshot:
            return "per-packet"
        return "per-snapshot" if per_snapshot >= self.packets else "mixed"

    @property
    def frames_not_kept(self) -> int:
        """TCP flows, MAC pairs, ARP/ND requesters and targets beyond their tables (and request facts beyond
        their limit)."""
        return self.tcp.not_kept + self.neighbors.not_kept + neighbor_facts_not_kept(self.neighbors)

    # -- packets -----------------------------------------------------------------------------------
    def passed(self, data: bytes, start: int, end: int) -> bool:
        """Count a packet snapshot (event 160) that was not dropped.

        ``data[start:end]`` is the payload of an EVENT_HEADER record (the raw timestamp is read from
        the header in front of it). Returns False (and counts it malformed) when the event is
        shorter than it says.
        """
        if end - start < _HEADER_SIZE:
            self.malformed += 1
            return False
        if self.track:
            ticks, gid, num, appearance, direction, ptype, comp, edge, size, logged = \
                _TIMED_HEADER(data, start - _EVENT_TIMESTAMP)
        else:
            comp, size, logged = _COUNTED_FIELDS(data, start)
        if _HEADER_SIZE + logged > end - start:
            self.malformed += 1
            return False
        self.by_component[comp] += 1
        if logged < size:
            self._truncated(logged)
        if self.track:
            key = (gid << 16) | num
            path = self.inflight.get(key)
            element = (comp << 16) | edge
            if path is None:
                path = self._first_of_key(data, start + _HEADER_SIZE, key, gid, appearance, direction, ptype, element,
                                          comp, size, logged, ticks)
            hops = path[1]  # HOPS; literal indexes on the hot path (a global lookup per snapshot shows)
            if hops and appearance < hops[-1][0]:
                path[3] = True  # UNORDERED
            hops.append((appearance, ticks, element, direction))
            if len(hops) >= MAX_HOPS:
                self._end_early(path, key, gid, data, start + _HEADER_SIZE, logged, ptype, appearance)
        return True

    def _first_of_key(self, data: bytes, frame: int, key: int, gid: int, appearance: int, direction: int, ptype: int,
                      element: int, comp: int, size: int, logged: int, ticks: int) -> list:
        """The path of a snapshot whose (PktGroupId, PktNumber) has no path in flight: the packet an earlier
        snapshot of it started (per-snapshot numbering), one the window let go, or a new one."""
        if appearance == 0:
            ident = identity(data, frame, frame + logged, LINKS.get(ptype, LINK_ETHERNET))
            hop = (element << 3) | direction
            path, _ = self.chains.join(gid, ident, ticks, hop, False)
            if path is None:
                path = self._new_path(key, data[frame:frame + min(logged, FLOW_BYTES)], ptype, size, ticks, comp)
                self.chains.open(gid, ident, ticks, hop, path)
            return path
        frame_bytes = data[frame:frame + min(logged, FLOW_BYTES)]
        return self._resumed(key, frame_bytes, ptype) or self._start(key, frame_bytes, ptype, size, ticks, comp)

    def packet(self, payload: memoryview, dropped: bool, filetime: int | None = None,
               where: tuple[int, int] | None = None) -> bool:
        """A packet event decoded from its payload: drops (170), and 160/170 with extended data items.

        ``where`` is the event's (buffer index, offset in the buffer's records area): drop samples keep
        it, so a finding can be followed back to the exact event in the trace.
        """
        try:
            event = pktmon.PacketEvent(payload, dropped)
        except ValueError:
            self.malformed += 1
            return False
        self.by_component[event.component_id] += 1
        if event.logged_size < event.original_size:
            self._truncated(event.logged_size)
        link = LINKS.get(event.packet_type, LINK_ETHERNET)
        frame = bytes(event.frame[:FLOW_BYTES])
        ident = identity(frame, 0, None, link) if dropped or (self.track and event.appearance == 0) else b""
        background = self._drop(event, frame, link, ident, filetime, where) if dropped else None
        if not self.track:
            return True
        key = (event.pkt_group_id << 16) | event.pkt_number
        ticks = self._ticks(filetime)
        element = (event.component_id << 16) | event.edge_id
        path = self.inflight.get(key)
        if path is None:
            if event.appearance == 0:
                hop = (element << 3) | event.direction
                path, repeat = self.chains.join(event.pkt_group_id, ident, ticks, hop, dropped)
                if repeat:
                    return True
                if path is None:
                    path = self._new_path(key, frame, event.packet_type, event.original_size, ticks,
                                          event.component_id)
                    self.chains.open(event.pkt_group_id, ident, ticks, hop, path)
            elif dropped and self._dropped_keys.get(key) == element:
                self.drop_repeats += 1
                return True
            else:
                path = self._resumed(key, frame, event.packet_type) or \
                    self._start(key, frame, event.packet_type, event.original_size, ticks, event.component_id)
        hops = path[HOPS]
        if hops and event.appearance < hops[-1][0]:
            path[UNORDERED] = True
        hops.append((event.appearance, ticks, element, event.direction))
        if dropped:
            path[DROP] = (event.component_id, event.drop_reason, event.direction, event.drop_location, background)
            if key in self.inflight:
                self._end(self.inflight.pop(key))
                self._remember_drop(key, element)
            else:
                self.chains.ended(event.pkt_group_id, ident, path)
                self._end(path)
        elif len(hops) >= MAX_HOPS:
            if key in self.inflight:
                self._end(self.inflight.pop(key))
            else:
                self.chains.ended(event.pkt_group_id, ident, path)
                self._end(path)
        return True

    def _end_early(self, path: list, key: int, gid: int, data: bytes, frame: int, logged: int, ptype: int,
                   appearance: int) -> None:
        """A path at ``MAX_HOPS`` hops ends: a PktGroupId seen again (relogged or repeated buffers) must not grow it."""
        if key in self.inflight:
            self._end(self.inflight.pop(key))
        elif appearance == 0:
            self.chains.ended(gid, identity(data, frame, frame + logged, LINKS.get(ptype, LINK_ETHERNET)), path)
            self._end(path)

    def _remember_drop(self, key: int, element: int) -> None:
        """Keep (a bounded number of) dropped packets' keys: the stack may log the same drop again."""
        dropped = self._dropped_keys
        dropped[key] = element
        if len(dropped) > 4 * self.window:
            for old in list(dropped)[:len(dropped) // 2]:
                del dropped[old]

    def _truncated(self, logged: int) -> None:
        self.payload_truncated += 1
        if logged > self.logged_size_max:
            self.logged_size_max = logged

    def _ticks(self, filetime: int | None) -> int | None:
        """The raw timestamp of a FILETIME (packet snapshots keep raw ticks; see ``filetime``)."""
        clock = self.clock
        if clock is None or filetime is None:
            return None
        return clock.reference_ticks + (filetime - clock.start_filetime) * clock.ticks_per_second // 10_000_000

    def filetime(self, ticks: int | None) -> int | None:
        return None if ticks is None or self.clock is None else self.clock.to_filetime(ticks)

    def microseconds(self, ticks: int | float) -> float | None:
        return None if self.clock is None else ticks * 1_000_000 / self.clock.ticks_per_second

    def _new_path(self, key: int, frame: Any, packet_type: int, size: int, ticks: int | None, comp: int) -> list:
        """A packet seen for the first time: its flow (and TCP, ARP/ND) counted once, here."""
        if ticks is not None and (self.first_ticks is None or ticks < self.first_ticks):
            self.first_ticks = ticks
        fkey = self._flow(frame, packet_type, size, ticks, key, comp)
        return [fkey, [], None, False, key]  # flow key, hops, drop, hops out of order, path id

    def _start(self, key: int, frame: Any, packet_type: int, size: int, ticks: int | None, comp: int) -> list:
        """A new path keyed by (PktGroupId, PktNumber), tracked in the window of paths in flight."""
        path = self._new_path(key, frame, packet_type, size, ticks, comp)
        self._track(key, path)
        return path

    def _track(self, key: int, path: list) -> None:
        self.inflight[key] = path
        self._order.append(key)
        if len(self._order) > 2 * self.window:
            self._evict()

    def _resumed(self, key: int, frame: bytes, packet_type: int) -> list | None:
        """The path of a packet the window let go before all its snapshots came, joined up again.

        Its first part was folded into a route; that count is taken back, and the path goes on from
        the hops of that route (their times are not kept), so the packet is one complete path. Its flow
        was counted with the first part: the key is read again from this snapshot's frame, not counted.
        """
        index = self._evicted.pop(key, None)
        if index is None:
            return None
        self.paths_split += 1
        self.paths -= 1
        ticks_taken = self._evicted_ticks.pop(key, None)
        route_key = self._route_keys[index] if index >= 0 else ()
        route = self.routes[route_key] if index >= 0 else self.routes_overflow
        route.packets -= 1
        if ticks_taken is not None:
            route.durations -= 1
            route.total_ticks -= ticks_taken
        if route.sample is not None and route.sample[0] == key:
            route.sample = None  # it showed the first part only
        try:
            fkey = flow_key(frame, LINKS.get(packet_type, LINK_ETHERNET))
        except (ValueError, IndexError):
            fkey = None
        path = [fkey, [(0, None, element, 0) for element in route_key], None, True, key]
        self._track(key, path)
        return path

    def _evict(self) -> None:
        """End the oldest paths until at most ``window`` are in flight (in one go: cheaper than one by one)."""
        order, inflight, evicted, evicted_ticks, end = (self._order, self.inflight, self._evicted, self._evicted_ticks,
                                                        self._end)
        while order and (len(inflight) > self.window or order[0] not in inflight):
            key = order.popleft()
            path = inflight.pop(key, None)
            if path is not None:
                index, ticks = end(path)
                evicted[key] = index
                if ticks is not None:
                    evicted_ticks[key] = ticks
        if len(evicted) > 4 * self.window:
            for old in list(evicted)[:len(evicted) - 2 * self.window]:
                del evicted[old]
                evicted_ticks.pop(old, None)

    def _flow(self, frame: Any, packet_type: int, size: int, ticks: int | None, key: int, comp: int) -> tuple | None:
        data = frame if type(frame) is bytes else bytes(frame)
        link = LINKS.get(packet_type, LINK_ETHERNET)
        try:
            fkey = flow_key(data, link)
        except (ValueError, IndexError):
            fkey = None
        if fkey is None:
            self.unparsed_frames += 1
            return None
        proto = fkey[1]
        if proto == 6:
            self._tcp_segment(data, link, fkey, key >> 16, ticks, size)
        elif link == LINK_ETHERNET and (proto == 58 or proto == ETHERTYPE_ARP):
            if proto == 58:
                self.neighbors.icmpv6(data, comp, ticks)
            else:
                self.neighbors.arp(data, comp, ticks)
        flows = self.flows
        flow = flows.get(fkey)
        if flow is None:
            if len(flows) >= 2 * self.max_flows:
                self._prune_flows()
            flow = self.flows[fkey] = [0, 0, 0, ticks, ticks]
        flow[0] += 1
        flow[1] += size
        if ticks is not None:
            if flow[3] is None or ticks < flow[3]:
                flow[3] = ticks
            if flow[4] is None or ticks > flow[4]:
                flow[4] = ticks
        return fkey

    def _prune_flows(self) -> None:
        keep = sorted(self.flows.items(), key=lambda item: -item[1][0])
        self.flows = dict(keep[:self.max_flows])
        for _key, flow in keep[self.max_flows:]:
            self.flows_pruned += 1
            self.flow_packets_pruned += flow[0]

    def _end(self, path: list) -> tuple[int, int | None]:
        """Fold one finished path into its route and (the first of each) the samples.

        Returns what ``_resumed`` needs to take the fold back: the route's index in ``_route_keys`` (-1: the
        overflow route) and the path's duration in ticks.
        """
        fkey, hops, drop, unordered, key = path
        if unordered:
            hops.sort(key=_hop_order)
        self.paths += 1
        route_key = tuple([hop[2] for hop in hops])  # component << 16 | edge, per hop
        route = self.routes.get(route_key)
        if route is None:
            if len(self.routes) >= MAX_ROUTES:
                route = self.routes_overflow
            else:
                route = self.routes[route_key] = Route(len(self._route_keys))
                self._route_keys.append(route_key)
        route.packets += 1
        first, last = (hops[0][1], hops[-1][1]) if hops else (None, None)  # resumed from the overflow route
        ticks = None
        if first is not None and last is not None:
            ticks = last - first
            route.durations += 1
            route.total_ticks += ticks
            if ticks > route.max_ticks:
                route.max_ticks = ticks
        if route.sample is None:
            route.sample = (key, fkey, hops, drop)
        if drop is not None:
            route.dropped += 1
            route.reasons[drop[1]] += 1
            group = (drop[0], drop[1], drop[2], drop[4])
            if group not in self.drop_paths:
                self.drop_paths[group] = route.sample if route.sample[3] is drop else (key, fkey, hops, drop)
            if fkey is not None and fkey in self.flows:
                self.flows[fkey][2] += 1
        return route.index, ticks

    def finish(self) -> None:
        """End every path still in flight (call once, after the last record)."""
        for key in list(self.inflight):
            self._end(self.inflight.pop(key))
        self._order.clear()
        self._evicted.clear()
        self._evicted_ticks.clear()
        self.chains.finish()

    def _drop(self, event: pktmon.PacketEvent, frame: bytes, link: str, ident: bytes, filetime: int | None,
              where: tuple[int, int] | None) -> str | None:
        """Count a drop event; return the kind of LAN background it dropped, if it is that."""
        self.drops += 1
        self.drops_by_component[event.component_id] += 1
        self.drops_by_reason[event.drop_reason] += 1
        background = background_kind(frame, link, event.drop_reason)
        key = (event.component_id, event.drop_reason, event.direction, background)
        group = self.drop_groups.get(key)
        if group is None:
            group = self.drop_groups[key] = DropGroup()
        group.count += 1
        if self._distinct.new((event.component_id, ident), filetime):
            group.distinct += 1
            self.dropped_frames += 1
        group.rate.add(filetime)
        if filetime is not None:
            group.first = filetime if group.first is None else min(group.first, filetime)
            group.last = filetime if group.last is None else max(group.last, filetime)
        if len(group.samples) < SAMPLES_PER_GROUP:
            sample = {"pkt_group_id": event.pkt_group_id, "drop_location": event.drop_location,
                      "original_size": event.original_size}
            decoded = decode(frame, link, DEPTH_TRANSPORT)
            sample.update(decoded.tuple_dict())
            if decoded.protocol is None and decoded.ether_type is not None:
                sample["ether_type"] = f"0x{decoded.ether_type:04x}"
            if decoded.src_mac is not None:
                sample.update(src_mac=decoded.src_mac, dst_mac=decoded.dst_mac)
            when = filetime_to_datetime(filetime) if filetime is not None else None
            if when is not None:
                sample["time"] = when.isoformat()
            if where is not None:
                sample["buffer"], sample["offset"] = where
            group.samples.append(sample)
        return background

    # -- rundown -----------------------------------------------------------------------------------
    def rundown(self, event_id: int, fields: dict) -> bool:
        """Component (20), property (30–75) and drop counter (80) rundown events; others are ignored.

        False for an event that is not what its id says (a damaged event: fields missing, or a property
        whose value cannot be what its code says): it is counted in ``properties_refused`` and not kept."""
        if event_id not in _RUNDOWN_EVENTS:
            return True
        if not _RUNDOWN_FIELDS[event_id] <= fields.keys() or type(fields["component_id"]) is not int or (
                event_id in pktmon.PROPERTY_EVENTS
                and type(fields["value"]) is not _PROPERTY_TYPES.get(fields["property"], type(fields["value"]))):
            self.properties_refused += 1
            return False
        comp = self.components.setdefault(fields["component_id"], {"properties": {}, "by_code": {}})
        if event_id == pktmon.EVENT_COMPONENT:
            comp.update(type=fields["type"], name=fields["name"], description=fields["description"])
        elif event_id == pktmon.EVENT_DROP_COUNTERS:
            comp["drop_counters"] = {"packets_in": fields["packets_in"], "bytes_in": fields["bytes_in"],
                                     "packets_out": fields["packets_out"], "bytes_out": fields["bytes_out"]}
        elif event_id in pktmon.PROPERTY_EVENTS:
            code = fields["property"]
            name = knowledge.property_type_name(code) or f"property {code}"
            for values in (comp["properties"].setdefault(name, []), comp.setdefault("by_code", {}).setdefault(code, [])):
                if fields["value"] not in values:
                    values.append(fields["value"])
        return True

    def component_label(self, comp_id: int) -> tuple[str, str]:
        """(name, type name) of a component, falling back to its id when the rundown is missing."""
        comp = self.components.get(comp_id, {})
        name = comp.get("description") or comp.get("name") or f"component {comp_id}"
        ctype = comp.get("type")
        type_name = (knowledge.component_type_name(ctype) if ctype is not None else None) or \
            (f"type {ctype}" if ctype is not None else "unknown")
        return name, type_name

    def property(self, comp_id: int, code: int) -> Any:
        values = self.components.get(comp_id, {}).get("by_code", {}).get(code)
        return values[0] if values else None


def _hop_order(hop: tuple) -> tuple:
    return (hop[0], hop[1] or 0)


def _hop(element: int) -> tuple[int, int]:
    """(component, edge) of a route element."""
    return element >> 16, element & 0xFFFF


# -- facts -------------------------------------------------------------------------------------------

def drop_facts(digest: PktmonDigest, os_build: int | None,
               reason_names: dict[int, str] | None = None) -> list[PacketDropGroup]:
    """One fact per (component, drop reason, direction): ``pktmon_drop`` for the workload's drops,
    ``background_drop`` per kind of LAN background; reason names from the trace when it has them."""
    facts: list[PacketDropGroup] = []
    for (comp_id, reason, direction, background), group in sorted(digest.drop_groups.items(), key=_group_order):
        name, type_name = digest.component_label(comp_id)
        fields = dict(
            component_id=comp_id, component_name=name, component_type=type_name,
            direction=knowledge.direction_name(direction) or f"direction {direction}",
            reason_code=reason,
            reason_name=(reason_names or {}).get(reason) or knowledge.drop_reason_label(reason, os_build),
            count=group.count, distinct_frames=group.distinct,
            first_seen=filetime_to_datetime(group.first) if group.first else None,
            last_seen=filetime_to_datetime(group.last) if group.last else None,
            sample=group.samples, destinations=destinations(group.samples),
        )
        facts.append(PacketDropGroup(**fields) if background is None
                     else BackgroundDropGroup(traffic=background, **fields))
    return facts


def destinations(samples: list[dict]) -> str | None:
    """Where sample packets went, each destination once: "10.0.0.53 (UDP 53), 10.0.0.1 (ICMP)"."""
    seen: dict[str, None] = {}
    for sample in samples:
        dst, protocol = sample.get("dst"), sample.get("protocol") or sample.get("ether_type")
        if dst is None:
            if protocol is not None:
                seen.setdefault(f"EtherType {protocol}" if sample.get("ether_type") else str(protocol), None)
            continue
        port = sample.get("dport")
        seen.setdefault(f"{dst} ({protocol} {port})" if port is not None else f"{dst} ({protocol})", None)
    return ", ".join(seen) or None


def _group_order(item: tuple) -> tuple:
    comp_id, reason, direction, background = item[0]
    return (comp_id, reason, direction, background or "")


def drop_rate_facts(digest: PktmonDigest) -> list[DropRate]:
    """The rate over time of each group of the workload's drops (background drops have no rate fact)."""
    facts = []
    for (comp_id, reason, direction, background), group in sorted(digest.drop_groups.items(), key=_group_order):
        if background is not None:
            continue
        summary = group.rate.summary()
        facts.append(DropRate(
            component_id=comp_id, component_name=digest.component_label(comp_id)[0], reason_code=reason,
            direction=knowledge.direction_name(direction) or f"direction {direction}", drops=group.count, **summary))
    return facts


def component_facts(digest: PktmonDigest) -> list[Component]:
    """Components that saw packets or drops, belong to a vSwitch, or carry compartment/VLAN/VSID."""
    facts = []
    for comp_id in sorted(set(digest.components) | set(digest.by_component)):
        comp = digest.components.get(comp_id, {})
        packets, drops = digest.by_component.get(comp_id, 0), digest.drops_by_component.get(comp_id, 0)
        counters = comp.get("drop_counters") or {}
        prop = digest.property
        interesting = (packets or drops or counters.get("packets_in") or counters.get("packets_out")
                       or comp.get("type") in VSWITCH_COMPONENT_TYPES
                       or any(prop(comp_id, c) is not None for c in (PROP_VSID, PROP_VLAN, PROP_VMSWITCH_NAME))
                       or (prop(comp_id, PROP_COMPARTMENT) or 1) != 1)
        if not interesting:
            continue
        name, type_name = digest.component_label(comp_id)
        addresses = comp.get("by_code", {}).get(PROP_IP_ADDRESS, [])
        facts.append(Component(
            component_id=comp_id, name=comp.get("name") or name, description=comp.get("description"),
            component_type=type_name, type_code=comp.get("type"), if_index=prop(comp_id, PROP_IF_INDEX),
            mac=prop(comp_id, PROP_PHYS_ADDRESS), vmswitch_name=prop(comp_id, PROP_VMSWITCH_NAME),
            vlan=prop(comp_id, PROP_VLAN), vsid=prop(comp_id, PROP_VSID), compartment_id=prop(comp_id, PROP_COMPARTMENT),
            addresses=digest.cuts.cap(str(a) for a in addresses), packets=packets, drops=drops,
            counted_drops_in=counters.get("packets_in", 0), counted_drops_out=counters.get("packets_out", 0)))
    return facts


def path_facts(digest: PktmonDigest, reason_label) -> list[PacketPath]:
    """Sampled complete paths: the first path of each drop group, then of the busiest routes."""
    chosen: list[tuple] = list(digest.drop_paths.values())
    seen = {id(s) for s in chosen}
    for route in sorted(digest.routes.values(), key=lambda r: -r.packets):
        if route.packets and route.sample is not None and id(route.sample) not in seen:
            chosen.append(route.sample)
            seen.add(id(route.sample))
    return [_path_fact(digest, sample, reason_label) for sample in chosen[:MAX_PATH_FACTS]]


def _path_fact(digest: PktmonDigest, sample: tuple, reason_label) -> PacketPath:
    key, fkey, hops, drop = sample
    label = digest.component_label
    start = next((hop[1] for hop in hops if hop[1] is not None), None)
    out_hops = []
    previous = start
    for appearance, ticks, element, direction in hops[:64]:
        comp, edge = _hop(element)
        delta = digest.microseconds(ticks - previous) if ticks is not None and previous is not None else None
        out_hops.append({"component_id": comp, "component": label(comp)[0], "edge": edge, "appearance": appearance,
                         "direction": knowledge.direction_name(direction) or str(direction), "delta_us": delta})
        previous = ticks if ticks is not None else previous
    flow = key_text(fkey) if fkey is not None else {}
    end = hops[-1][1]
    first_comp, last_comp = hops[0][2] >> 16, hops[-1][2] >> 16
    return PacketPath(
        pkt_group_id=key >> 16, pkt_number=key & 0xFFFF, hops=out_hops, hop_count=len(hops),
        path=" > ".join(f"{h['component']} ({h['direction']})" for h in out_hops),
        first_component=label(first_comp)[0], last_component=label(last_comp)[0], last_component_id=last_comp,
        dropped=drop is not None, drop_component=label(drop[0])[0] if drop else None,
        drop_reason_code=drop[1] if drop else None, drop_reason_name=reason_label(drop[1]) if drop else None,
        drop_location=drop[3] if drop else None, background=bool(drop and drop[4]),
        duration_us=digest.microseconds(end - start) if start is not None and end is not None else None,
        start=when(digest.filetime(start)), protocol=flow.get("protocol"), src=flow.get("src"), dst=flow.get("dst"),
        sport=flow.get("sport"), dport=flow.get("dport"), packet=packet_text(flow))


def packet_text(flow: dict) -> str:
    """A flow key's fields as a reader writes them: "TCP 10.0.0.5:49152 -> 10.0.0.9:443", "EtherType 0x8300"."""
    if not flow:
        return "a frame with no EtherType (802.3 LLC or cut short)"

    def end(address: str | None, port: int | None) -> str | None:
        if address is None:
            return None
        address = f"[{address}]" if ":" in address and port is not None else address
        return f"{address}:{port}" if port is not None else address

    src, dst = end(flow.get("src"), flow.get("sport")), end(flow.get("dst"), flow.get("dport"))
    text = str(flow.get("protocol"))
    if src and dst:
        text += f" {src} -> {dst}"
    if flow.get("vlan") is not None:
        text += f" (VLAN {flow['vlan']})"
    return text


def route_facts(digest: PktmonDigest) -> list[PacketRoute]:
    label = digest.component_label
    facts = []
    for route_key, route in sorted(digest.routes.items(), key=lambda item: -item[1].packets):
        if not route.packets:  # its only packet was a path the window had let go, joined up again elsewhere
            continue
        hops = [_hop(element) for element in route_key]
        (first, _), (last, last_edge) = hops[0], hops[-1]
        facts.append(PacketRoute(
            route=" > ".join(f"{c}:{e}" for c, e in hops), component_ids=[c for c, _ in hops[:64]],
            hop_count=len(hops), first_component=label(first)[0], last_component=label(last)[0],
            last_component_id=last, last_edge_id=last_edge, packets=route.packets,
            dropped=route.dropped, drop_reason_code=route.reasons.most_common(1)[0][0] if route.reasons else None,
            mean_duration_us=digest.microseconds(route.total_ticks / route.durations) if route.durations else None,
            max_duration_us=digest.microseconds(route.max_ticks) if route.durations else None))
    return facts


def flow_facts(digest: PktmonDigest, limit: int = MAX_FLOW_FACTS) -> list[Flow]:
    """The ``limit`` busiest flows; the others are counted in the trace fact's ``not_kept``."""
    facts = []
    busiest = digest.cuts.cap(sorted(digest.flows.items(), key=lambda item: -item[1][0]), limit)
    for fkey, (packets, size, drops, first, last) in busiest:
        vlan, proto, src, dst, sport, dport = fkey
        reverse = (vlan, proto, dst, src, dport, sport) in digest.flows
        text = key_text(fkey)
        facts.append(Flow(
            source="pktmon", protocol=str(text["protocol"]), src=text.get("src"), dst=text.get("dst"),
            sport=sport, dport=dport, vlan=vlan, packets=packets, bytes=size, drops=drops, reverse_seen=reverse,
            first_seen=when(digest.filetime(first)), last_seen=when(digest.filetime(last))))
    return facts


def vmnic_macs(digest: PktmonDigest) -> dict[str, tuple[int, str]]:
    """MAC (PhysAddress, as pktmon spells it) -> (component id, name) of every VmsVmNic component."""
    out = {}
    for comp_id, comp in sorted(digest.components.items()):
        mac = digest.property(comp_id, PROP_PHYS_ADDRESS)
        if comp.get("type") == VMNIC_COMPONENT_TYPE and isinstance(mac, str):
            out.setdefault(mac.upper(), (comp_id, digest.component_label(comp_id)[0]))
    return out


def tcp_facts(digest: PktmonDigest) -> list[VPortTcp]:
    return vport_tcp_facts(digest.tcp, vmnic_macs(digest))


def neighbor_facts(digest: PktmonDigest) -> list[NeighborRequests]:
    return neighbor_request_facts(digest.neighbors, vmnic_macs(digest), lambda c: digest.component_label(c)[0],
                                  digest.filetime)
