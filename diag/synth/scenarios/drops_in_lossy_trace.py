"""Drops during a burst that the trace itself only half saw: in the middle of the capture a burst of
inbound traffic for the first container overloads the host. The vSwitch and the container's vmNIC
both run out of resources and drop packets with one reason (3, "Insufficient resources"), and the
pktmon session cannot keep up either: processor 1 loses its events for a while, packets and drops
alike. Every drop count the trace gives is a lower bound (pktmon's own counters, written at the
rundown, still count the lost drops).

Evidence: pktmon drop events (170) with reason 3 at the vSwitch (component 2, Rx) and at the
vmNIC (component 10, Rx); the logfile header's EventsLost and a buffer flagged events-lost on
processor 1 during the burst; the rundown's drop counters higher than the drop events.
"""

from __future__ import annotations

from diag.synth import pktmon as pm
from diag.synth.bulk import Hop
from diag.synth.scenarios.base import (NIC_ID, RX, SECOND, SWITCH_ID, ContainerHost, Finding, Params, Scenario,
                                       Story)

INSUFFICIENT_RESOURCES = 3  # Drop_Resources
BURST_SECONDS = 3
LOSS_SECONDS = 1  # of the burst during which processor 1's events are lost
LOST_CPU = 1


def build(params: Params) -> Story:
    host = ContainerHost(params, subnet="172.25.0", first_compartment=2)
    target = host.workloads[0]
    host.healthy_traffic()
    burst = host.start + max(0, host.end - host.start - BURST_SECONDS * SECOND) // 2  # centred in the capture
    burst_end = burst + BURST_SECONDS * SECOND
    lost_from, lost_to = burst + SECOND, burst + (1 + LOSS_SECONDS) * SECOND
    count = max(30, int(params.rate * BURST_SECONDS * 4))
    dropped: dict[int, tuple[int, int]] = {}  # PktGroupId -> (component, reason)
    for n, t in enumerate(host.times(count, burst, burst_end)):
        frame = host.web_request(target, 10_000 + n)
        hops = host.inbound_hops(target)
        if n % 3 == 0:  # the vSwitch has no buffer left for it
            at_switch = [Hop(NIC_ID, RX), Hop(SWITCH_ID, RX, 2)]
            group = host.capture.packet(t, at_switch, frame, cpu=n % 2, drop_reason=INSUFFICIENT_RESOURCES)
            dropped[group] = (SWITCH_ID, INSUFFICIENT_RESOURCES)
        elif n % 3 == 1:  # the container's receive queue is full
            group = host.capture.packet(t, hops, frame, cpu=n % 2, drop_reason=INSUFFICIENT_RESOURCES)
            dropped[group] = (target.component.id, INSUFFICIENT_RESOURCES)
        else:
            host.capture.packet(t, hops, frame, cpu=n % 2)
    # Processor 1 loses whole packets (every snapshot of them) during part of the burst.
    events = host.builder.events
    lost_groups = {_group(e.payload) for e in events if e.provider == pm.PROVIDER and e.cpu == LOST_CPU
                   and e.event_id in (pm.EVENT_PACKET, pm.EVENT_DROP) and lost_from <= e.filetime < lost_to}
    lost = [e for e in events if e.provider == pm.PROVIDER and e.event_id in (pm.EVENT_PACKET, pm.EVENT_DROP)
            and _group(e.payload) in lost_groups]
    gone = {id(e) for e in lost}
    host.builder.events = [e for e in events if id(e) not in gone]
    host.builder.lose_events(lost_from, len(lost), cpu=LOST_CPU)
    kept: dict[tuple[int, int], int] = {}
    for group, key in dropped.items():
        if group not in lost_groups:
            kept[key] = kept.get(key, 0) + 1
    if len(kept) != 2:
        raise ValueError("both components must keep drop events: use a higher --rate")
    groups = [{"component_id": c, "reason": r, "count": n, "direction": "Rx"} for (c, r), n in sorted(kept.items())]
    total = sum(kept.values())
    reason_name = pm.value_maps()["DropReason"][INSUFFICIENT_RESOURCES]
    expect = [
        Finding("packets-dropped", {"total": total, "groups": groups}),
        Finding("same-drop-reason-several-components", {
            "reason": INSUFFICIENT_RESOURCES, "reason_name": reason_name,
            "components": [{"component_id": g["component_id"], "count": g["count"]} for g in groups]}),
        Finding("drops-in-lossy-trace", {"events_lost": len(lost), "buffers_lost": 0, "groups": groups}),
        Finding("trace-events-lost", {"events_lost": len(lost), "cpu": LOST_CPU}),
    ]
    return host.story(expect, facts={
        "drops": [{"component_id": g["component_id"], "reason": g["reason"], "count": g["count"]} for g in groups],
        "drops_lost": len(dropped) - total, "drops_counted_by_pktmon": len(dropped),
        "lost_window_filetime": [lost_from, lost_to], "burst_filetime": [burst, burst_end]})


def _group(payload: bytes) -> int:
    return int.from_bytes(payload[:8], "little")  # PktGroupId, the first field of events 160/170


SCENARIO = Scenario(
    name="drops-in-lossy-trace",
    title="Drops with one reason at two components while the trace loses events",
    summary="A burst for one container: the vSwitch and its vmNIC drop for 'Insufficient resources' (reason 3) "
            "while processor 1 loses events; drop counts are lower bounds.",
    build=build,
    seed=1818,
    hosts=2,
)
