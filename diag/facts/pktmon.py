"""PktMon events → a digest (components, packet counts, drop groups) → facts.

The digest is filled in one streaming pass and stays small whatever the trace size: counters per
component and per (component, reason, direction), the first and last time of each drop group, and
at most a few sample packets each. ``inspect`` reports it; ``check`` turns it into facts.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field

from diag import knowledge
from diag.decode import pktmon
from diag.decode.frames import five_tuple
from diag.facts.models import PacketDropGroup
from diag.read.clock import filetime_to_datetime

SAMPLES_PER_GROUP = 5
_RUNDOWN_EVENTS = frozenset({pktmon.EVENT_COMPONENT, pktmon.EVENT_DROP_COUNTERS, *pktmon.PROPERTY_EVENTS})
_COMPONENT_AND_LOGGED = struct.Struct("<16xH14xH").unpack_from  # ComponentId, LoggedPayloadSize
_LINK = {1: "ethernet", 3: "raw-ip"}


@dataclass(slots=True)
class DropGroup:
    count: int = 0
    first: int | None = None  # FILETIME
    last: int | None = None
    samples: list[dict] = field(default_factory=list)


class PktmonDigest:
    """What a trace's PktMon events say, gathered incrementally."""

    def __init__(self) -> None:
        self.components: dict[int, dict] = {}
        self.packets = 0
        self.drops = 0
        self.malformed = 0
        self.by_component: Counter[int] = Counter()
        self.drops_by_component: Counter[int] = Counter()
        self.drops_by_reason: Counter[int] = Counter()
        self.drop_groups: dict[tuple[int, int, int], DropGroup] = {}

    def passed(self, data: bytes, start: int, end: int) -> bool:
        """Count a packet snapshot (event 160) that was not dropped: only its component matters here.

        This runs once per packet event, so it reads two fields in place instead of decoding.
        Returns False (and counts it malformed) when the event is shorter than it says.
        """
        if end - start < pktmon.PACKET_HEADER.size:
            self.malformed += 1
            return False
        component_id, logged = _COMPONENT_AND_LOGGED(data, start)
        if pktmon.PACKET_HEADER.size + logged > end - start:
            self.malformed += 1
            return False
        self.packets += 1
        self.by_component[component_id] += 1
        return True

    def packet(self, payload: memoryview, dropped: bool, filetime: int | None = None) -> bool:
        try:
            event = pktmon.PacketEvent(payload, dropped)
        except ValueError:
            self.malformed += 1
            return False
        self.packets += 1
        self.by_component[event.component_id] += 1
        if dropped:
            self._drop(event, filetime)
        return True


    def _drop(self, event: pktmon.PacketEvent, filetime: int | None) -> None:
        self.drops += 1
        self.drops_by_component[event.component_id] += 1
        self.drops_by_reason[event.drop_reason] += 1
        key = (event.component_id, event.drop_reason, event.direction)
        group = self.drop_groups.get(key)
        if group is None:
            group = self.drop_groups[key] = DropGroup()
        group.count += 1
        if filetime is not None:
            group.first = filetime if group.first is None else min(group.first, filetime)
            group.last = filetime if group.last is None else max(group.last, filetime)
        if len(group.samples) < SAMPLES_PER_GROUP:
            sample = {"pkt_group_id": event.pkt_group_id, "drop_location": event.drop_location,
                      "original_size": event.original_size}
            sample.update(five_tuple(event.frame, _LINK.get(event.packet_type, "ethernet")) or {})
            if filetime is not None:
                sample["time"] = filetime_to_datetime(filetime).isoformat()
            group.samples.append(sample)

    def rundown(self, event_id: int, fields: dict) -> None:
        """Component (20), property (30–75) and drop counter (80) rundown events; others are ignored."""
        if event_id not in _RUNDOWN_EVENTS:
            return
        comp = self.components.setdefault(fields["component_id"], {"properties": {}})
        if event_id == pktmon.EVENT_COMPONENT:
            comp.update(type=fields["type"], name=fields["name"], description=fields["description"])
        elif event_id == pktmon.EVENT_DROP_COUNTERS:
            comp["drop_counters"] = {"packets_in": fields["packets_in"], "bytes_in": fields["bytes_in"],
                                     "packets_out": fields["packets_out"], "bytes_out": fields["bytes_out"]}
        elif event_id in pktmon.PROPERTY_EVENTS:
            name = knowledge.property_type_name(fields["property"]) or f"property {fields['property']}"
            values = comp["properties"].setdefault(name, [])
            if fields["value"] not in values:
                values.append(fields["value"])

    def component_label(self, comp_id: int) -> tuple[str, str]:
        """(name, type name) of a component, falling back to its id when the rundown is missing."""
        comp = self.components.get(comp_id, {})
        name = comp.get("description") or comp.get("name") or f"component {comp_id}"
        ctype = comp.get("type")
        type_name = (knowledge.component_type_name(ctype) if ctype is not None else None) or \
            (f"type {ctype}" if ctype is not None else "unknown")
        return name, type_name


def drop_facts(digest: PktmonDigest, os_build: int | None, reason_names: dict[int, str] | None = None) -> list[PacketDropGroup]:
    """One fact per (component, drop reason, direction); reason names from the trace when it has them."""
    facts = []
    for (comp_id, reason, direction), group in sorted(digest.drop_groups.items()):
        name, type_name = digest.component_label(comp_id)
        facts.append(PacketDropGroup(
            component_id=comp_id, component_name=name, component_type=type_name,
            direction=knowledge.direction_name(direction) or f"direction {direction}",
            reason_code=reason,
            reason_name=(reason_names or {}).get(reason) or knowledge.drop_reason_label(reason, os_build),
            count=group.count,
            first_seen=filetime_to_datetime(group.first) if group.first else None,
            last_seen=filetime_to_datetime(group.last) if group.last else None,
            sample=group.samples,
        ))
    return facts
