"""A default route inside a NAT network's internal compartment: halfway through the trace a second
default route (0.0.0.0/0 via 172.22.0.254, a VPN client or a static route pushed into the
container) appears on the interface of the container in compartment 3. WinNat notices it and
warns that NAT stops for that compartment; from then on only the other container's traffic
leaves through the NAT.

Evidence: WinNat 1019 (instance ContainerNAT, internal prefix 172.22.0.0/20); TCPIP 1202/1127
(the containers' interfaces, addresses and compartments); TCPIP 1145 (the new 0.0.0.0/0 route
on the container's interface); WinNat 1031 "NAT detected a default route in compartment 3
interface 21"; pktmon: the container's outbound traffic stops after it. What WinNat counts as an
internal compartment on a container host is UNCONFIRMED: the scenario follows the event's message.
"""

from __future__ import annotations

from diag.synth import tcpip, winnat
from diag.synth.scenarios.base import MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story, add_event

INSTANCE = "ContainerNAT"
NAT_PREFIX = "172.22.0.0/20"
ROGUE_GATEWAY = "172.22.0.254"


def build(params: Params) -> Story:
    host = ContainerHost(params, subnet="172.22.0", first_compartment=2)
    config = HostConfig(host)
    t = config.winnat_instance(host.start - 900 * MS, INSTANCE, NAT_PREFIX)
    t = config.vmswitch_ports(t)
    config.tcpip_state(t)
    victim = host.workloads[-1]
    others = host.workloads[:-1]
    at = host.start + (host.end - host.start) // 2
    packets = host.healthy_traffic(end=at)
    add_event(host.builder, at, tcpip, tcpip.EVENT_ROUTE_CREATED, tcpip.encode_route_created(
        interface=victim.if_index, prefix="0.0.0.0/0", next_hop=ROGUE_GATEWAY, compartment=victim.compartment,
        build=host.builder.profile.os_build))
    add_event(host.builder, at + 3 * MS, winnat, winnat.EVENT_DEFAULT_ROUTE_IN_INTERNAL_COMPARTMENT,
              winnat.encode_default_route(compartment=victim.compartment, if_index=victim.if_index))
    if others:
        packets += host.healthy_traffic(begin=at + 10 * MS, workloads=others)
    finding = Finding("nat-default-route", {
        "compartment": victim.compartment, "interface": victim.if_index, "interfaces_in_compartment": 1,
        "next_hop": ROGUE_GATEWAY, "instance": INSTANCE, "filetime": at + 3 * MS})
    return host.story([finding], bulk_packets=host.bulk_packets(others or None),
                      facts={"packets": packets, "drops": []})


SCENARIO = Scenario(
    name="nat-default-route",
    title="WinNat finds a default route inside a container's compartment",
    summary="A second default route appears on the interface of the NAT container in compartment 3: TCPIP 1145 "
            "0.0.0.0/0 and WinNat 1031 'default route in compartment 3 interface 21'; its traffic stops.",
    build=build,
    seed=1414,
    hosts=2,
    min_hosts=2,
)
