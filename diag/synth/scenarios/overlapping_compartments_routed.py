"""Two container networks built from one template, each 10.0.0.0/24, on two vSwitches, and a route
that joins them: to reach network B's containers (10.0.0.128 and up) from network A, someone gave
A's container a more specific route, 10.0.0.128/25 via the router 10.0.0.1. Neither NAT nor a
shared vSwitch joins the two, the route does: A's traffic for .128-.255 leaves A for B, whose
containers have the same addresses as A's own could.

Evidence: TCPIP interface rundown and address events put 10.0.0.11 in compartment 2 and 10.0.0.140
in compartment 3; TCPIP 1145 gives both interfaces the on-link route 10.0.0.0/24, and compartment
2's interface the gateway route 10.0.0.128/25 via 10.0.0.1; pktmon shows the two vmNICs on two
vSwitches. No VmSwitch events (the capture did not include that provider).
"""

from __future__ import annotations

from diag.synth import tcpip
from diag.synth.scenarios.base import MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story, add_event

PREFIX = "10.0.0.0/24"
ROUTED, ROUTER = "10.0.0.128/25", "10.0.0.1"


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="l2bridge-a", host_ip="192.168.1.4", workloads=0)
    a = host.add_workload(0, "10.0.0.11", 2)
    b = host.add_workload(1, "10.0.0.140", 3)
    b.component.switch_name = "l2bridge-b"
    t = HostConfig(host).tcpip_state(host.start - 900 * MS)
    for w in (a, b):
        add_event(host.builder, t, tcpip, tcpip.EVENT_ROUTE_CREATED,
                  tcpip.encode_route_created(interface=w.if_index, prefix=PREFIX, compartment=w.compartment,
                                             build=host.builder.profile.os_build))
        t += 10
    add_event(host.builder, t, tcpip, tcpip.EVENT_ROUTE_CREATED,
              tcpip.encode_route_created(interface=a.if_index, prefix=ROUTED, next_hop=ROUTER,
                                         compartment=a.compartment, build=host.builder.profile.os_build))
    packets = host.healthy_traffic()
    finding = Finding("overlapping-compartment-subnets", {
        "compartments": [a.compartment, b.compartment], "prefixes": [PREFIX, PREFIX], "overlap": PREFIX,
        "meet_via": ["route"], "source": "trace",
        "routes": [{"compartment": a.compartment, "prefix": ROUTED, "next_hop": ROUTER, "if_index": a.if_index}]})
    return host.story([finding], facts={"packets": packets, "drops": []})


SCENARIO = Scenario(
    name="overlapping-compartments-routed",
    title="Two container networks with one subnet, joined by a route",
    summary="Compartments 2 and 3 both hold 10.0.0.0/24 on two vSwitches; compartment 2 routes 10.0.0.128/25 via "
            "10.0.0.1 toward the other network (TCPIP 1145).",
    build=build,
    seed=213,
    hosts=2,
    min_hosts=2,
    max_hosts=2,
    fixed=frozenset({"hosts"}),
)
