"""A pktmon capture on a synthetic host: components, packets crossing them, and the rundown.

:class:`PktmonCapture` keeps the component list and counts every snapshot it writes, so the
rundown written when the capture stops (components 20, properties 30-75, counters 80/90) agrees
with the packets in the trace, bulk traffic included.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field

from diag.synth import pktmon as pm
from diag.synth.bulk import FillerPacket, Hop
from diag.synth.frames import mac as mac_bytes
from diag.synth.trace import TraceBuilder

PKTMON_PID, PKTMON_TID = 6132, 6140
EDGE_NAMES = {1: "Upper", 2: "Lower"}


@dataclass
class Component:
    """One pktmon component and the properties its rundown reports."""

    id: int
    type: pm.ComponentType
    name: str
    description: str
    if_index: int | None = None
    miniport_if_index: int | None = None
    lower_if_index: int | None = None
    mac: str | None = None
    switch_name: str | None = None
    vlan: int | None = None
    vsid: int | None = None
    compartment: int | None = None
    ip_if_index: int | None = None
    addresses: tuple[str, ...] = ()
    if_guid: uuid.UUID | None = None
    edges: tuple[int, ...] = (1,)

    def properties(self) -> list[tuple[int, bytes]]:
        """(event id, payload) of each property event, in the order pktmon writes them."""
        out: list[tuple[int, bytes]] = []
        u32 = [(pm.PropertyType.IF_INDEX, self.if_index), (pm.PropertyType.MINIPORT_IF_INDEX, self.miniport_if_index),
               (pm.PropertyType.LOWER_IF_INDEX, self.lower_if_index), (pm.PropertyType.IP_IF_INDEX, self.ip_if_index),
               (pm.PropertyType.VSID, self.vsid), (pm.PropertyType.VLAN, self.vlan),
               (pm.PropertyType.COMPARTMENT_ID, self.compartment)]
        out += [(pm.EVENT_PROPERTY_U32, pm.encode_property_u32(self.id, kind, v)) for kind, v in u32 if v is not None]
        if self.if_guid is not None:
            guid = pm.encode_property_guid(self.id, pm.PropertyType.IF_GUID, self.if_guid)
            out.append((pm.EVENT_PROPERTY_GUID, guid))
        if self.mac is not None:
            out.append((pm.EVENT_PROPERTY_BINARY,
                        pm.encode_property_binary(self.id, pm.PropertyType.PHYS_ADDRESS, mac_bytes(self.mac))))
        out += [(pm.ip_property_event(a), pm.encode_property_ip(self.id, a)) for a in self.addresses]
        if self.switch_name is not None:
            out.append((pm.EVENT_PROPERTY_WSTR,
                        pm.encode_property_wstr(self.id, pm.PropertyType.VMSWITCH_NAME, self.switch_name)))
        return out


@dataclass
class _Counters:
    flow_packets: Counter = field(default_factory=Counter)  # (component, edge, dir tag)
    flow_bytes: Counter = field(default_factory=Counter)
    drop_packets: Counter = field(default_factory=Counter)  # (component, dir tag)
    drop_bytes: Counter = field(default_factory=Counter)


class PktmonCapture:
    """Writes pktmon events into a :class:`TraceBuilder` and keeps what the rundown must report."""

    def __init__(self, builder: TraceBuilder, *, logged_size_limit: int = 0, first_group: int = 0x1_0000) -> None:
        self.builder = builder
        self.logged_size_limit = logged_size_limit
        self.components: dict[int, Component] = {}
        self.counters = _Counters()
        self.next_group = first_group
        self.packets = 0
        self.drops: Counter = Counter()  # (component id, reason) -> packets
        builder.describe(pm.LAYOUTS.values(), pm.value_maps())

    def add(self, component: Component) -> Component:
        if component.id in self.components:
            raise ValueError(f"component {component.id} defined twice")
        self.components[component.id] = component
        return component

    def packet(self, filetime: int, hops: list[Hop], frames: bytes | list[bytes], *, cpu: int = 0,
               drop_reason: int = 0, drop_location: int = 0, hop_gap: int = 60, tid: int = 0) -> int:
        """One packet crossing ``hops`` (appearance 1, 2, ...), dropped at the last hop if
        ``drop_reason``; ``frames`` is the frame, or one frame per hop. Returns its PktGroupId."""
        per_hop = frames if isinstance(frames, list) else [frames] * len(hops)
        if len(per_hop) != len(hops):
            raise ValueError("one frame per hop")
        group = self.next_group
        self.next_group += 1
        self.packets += 1
        for appearance, (hop, frame) in enumerate(zip(hops, per_hop), start=1):
            if hop.component_id not in self.components:
                raise ValueError(f"packet crosses unknown component {hop.component_id}")
            dropped = bool(drop_reason) and appearance == len(hops)
            payload = pm.encode_packet(
                pkt_group_id=group, pkt_number=1, appearance=appearance, dir_tag=hop.dir_tag,
                packet_type=pm.PacketType.ETHERNET, component_id=hop.component_id, edge_id=hop.edge_id, filter_id=0,
                frame=frame, drop_reason=drop_reason if dropped else 0, drop_location=drop_location if dropped else 0,
                logged_size_limit=self.logged_size_limit)
            event_id = pm.EVENT_DROP if dropped else pm.EVENT_PACKET
            self.builder.add(filetime + (appearance - 1) * hop_gap, pm.PROVIDER, event_id, payload,
                             level=pm.LEVEL_INFO, keywords=pm.KEYWORD_PAYLOAD, cpu=cpu, tid=tid)
            self._count(hop, len(frame), dropped)
            if dropped:
                self.drops[(hop.component_id, drop_reason)] += 1
        return group

    def _count(self, hop: Hop, size: int, dropped: bool) -> None:
        c = self.counters
        if dropped:
            c.drop_packets[(hop.component_id, hop.dir_tag)] += 1
            c.drop_bytes[(hop.component_id, hop.dir_tag)] += size
        else:
            c.flow_packets[(hop.component_id, hop.edge_id, hop.dir_tag)] += 1
            c.flow_bytes[(hop.component_id, hop.edge_id, hop.dir_tag)] += size

    def filler_packet(self, hops: list[Hop], frame: bytes) -> FillerPacket:
        for hop in hops:
            if hop.component_id not in self.components:
                raise ValueError(f"bulk packet crosses unknown component {hop.component_id}")
        return FillerPacket(tuple(hops), frame, self.logged_size_limit or 0)

    def rundown(self, filetime: int, *, extra_packets: Counter | None = None, extra_bytes: Counter | None = None,
                cpu: int = 0) -> int:
        """Write components, properties and counters, 10 us apart from ``filetime``; returns the
        time after the last one."""
        t = filetime
        events: list[tuple[int, bytes]] = []
        for comp in self.components.values():
            events.append((pm.EVENT_COMPONENT, pm.encode_component(comp.id, comp.type, comp.name, comp.description)))
            events += comp.properties()
        packets = self.counters.flow_packets + (extra_packets or Counter())
        size = self.counters.flow_bytes + (extra_bytes or Counter())
        for comp in self.components.values():
            d = self.counters
            events.append((pm.EVENT_DROP_COUNTERS, pm.encode_drop_counters(
                comp.id, d.drop_packets[(comp.id, pm.DirTag.RX)], d.drop_bytes[(comp.id, pm.DirTag.RX)],
                d.drop_packets[(comp.id, pm.DirTag.TX)], d.drop_bytes[(comp.id, pm.DirTag.TX)])))
            for edge in comp.edges:
                events.append((pm.EVENT_FLOW_COUNTERS, pm.encode_flow_counters(
                    comp.id, EDGE_NAMES.get(edge, f"Edge{edge}"), edge,
                    packets[(comp.id, edge, pm.DirTag.RX)], size[(comp.id, edge, pm.DirTag.RX)],
                    packets[(comp.id, edge, pm.DirTag.TX)], size[(comp.id, edge, pm.DirTag.TX)])))
        for event_id, payload in events:
            self.builder.add(t, pm.PROVIDER, event_id, payload, level=pm.LEVEL_INFO, keywords=pm.KEYWORD_RUNDOWN,
                             cpu=cpu, pid=PKTMON_PID, tid=PKTMON_TID)
            t += 100
        return t
