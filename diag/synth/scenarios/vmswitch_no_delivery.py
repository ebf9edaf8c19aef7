"""Packets that enter the vmSwitch and never reach the destination vmNIC, with no drop event: a
share of the inbound requests for one container are seen at the NIC and at both edges of the
vSwitch, and nowhere after. (A switch extension swallowing them, a vmNIC whose queue is stuck:
the trace cannot say which, only where they vanished.)

Evidence: pktmon packet paths (PktGroupId, appearances 1-3) that end at the vSwitch's upper edge
instead of going on to the vmNIC (appearance 4), without a 170 drop; the flow counters of the
vmNIC lower than the vSwitch's for the same traffic.
"""

from __future__ import annotations

from diag.synth.scenarios.base import SWITCH_ID, ContainerHost, Finding, Params, Scenario, Story


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="l2bridge", subnet="10.40.0", host_ip="10.40.0.2")
    target = host.workloads[-1]
    packets = host.healthy_traffic(workloads=host.workloads[:-1] or None)
    lost = 0
    delivered = 0
    count = max(8, int(params.rate * params.duration / 2))
    for n, t in enumerate(host.times(count)):
        hops = host.inbound_hops(target)
        if n % 4 == 1:
            host.capture.packet(t, hops[:-1], host.web_request(target, n), cpu=n % 2)
            lost += 1
        else:
            host.capture.packet(t, hops, host.web_request(target, n), cpu=n % 2)
            delivered += 1
    finding = Finding("packets-not-delivered", {
        "count": lost, "delivered": delivered, "last_component_id": SWITCH_ID, "last_edge_id": 1,
        "destination_vmnic": target.component.description, "destination_component_id": target.component.id,
        "destination_ip": target.ip, "destination_mac": target.mac})
    return host.story([finding], bulk_packets=host.bulk_packets(host.workloads[:-1] or None),
                      facts={"packets": packets + count, "drops": []})


SCENARIO = Scenario(
    name="vmswitch-no-delivery",
    title="Packets enter the vmSwitch and never reach the destination vmNIC",
    summary="A quarter of the requests for one container stop at the vSwitch's upper edge, with no drop event.",
    build=build,
    seed=909,
    hosts=2,
)
