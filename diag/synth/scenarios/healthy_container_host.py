"""A healthy container host: one NAT network, its containers each in their own compartment, web
and DNS traffic flowing both ways, nothing dropped.

Every container's address is in the NAT network's subnet, each in its own compartment: that is
how Windows containers are plumbed (one compartment per endpoint), not an overlap of networks.
The control plane is in the trace too: vSwitch ports with port security (MAC spoofing off),
TCPIP interfaces and addresses with their compartments, the WinNat instance with its prefix.
A correct diagnosis reports nothing.
"""

from __future__ import annotations

from diag.synth.scenarios.base import MS, ContainerHost, HostConfig, Params, Scenario, Story

NAT_PREFIX = "172.20.0.0/20"


def build(params: Params) -> Story:
    host = ContainerHost(params, subnet="172.20.0")
    config = HostConfig(host)
    t = config.winnat_instance(host.start - 900 * MS, "ContainerNAT", NAT_PREFIX)
    t = config.vmswitch_ports(t)
    config.tcpip_state(t)
    packets = host.healthy_traffic()
    return host.story([], facts={"network": {"nat_prefix": NAT_PREFIX, "switch": host.switch_name,
                                             "containers": [{"ip": w.ip, "compartment": w.compartment}
                                                            for w in host.workloads]},
                                 "packets": packets, "drops": []})


SCENARIO = Scenario(
    name="healthy-container-host",
    title="Healthy container host (NAT network, no drops)",
    summary="Containers on one NAT network, each in its own compartment; traffic both ways; nothing wrong.",
    build=build,
    seed=101,
    hosts=3,
)
