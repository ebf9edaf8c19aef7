"""Two container networks in different compartments whose subnets overlap, on one host.

Network "nat" (NAT prefix 172.20.0.0/16) serves the container in compartment 2, network "nat2"
(NAT prefix 172.20.16.0/20, inside the first) the one in compartment 3. Both NAT instances are on
the same host and both vmNICs on the same vSwitch, so the overlap is a problem: WinNat supports
one internal prefix, and return traffic for 172.20.17.0/24 matches both. The compartments come
from the trace itself: TCPIP interface rundown and address events, pktmon's Compartment ID
property, and the WinNat instances' prefixes.
"""

from __future__ import annotations

from diag.synth.scenarios.base import MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story

NETWORKS = (("ContainerNAT", "172.20.0.0/16", "172.20.5", 2), ("ContainerNAT2", "172.20.16.0/20", "172.20.17", 3))


def overlapping_host(params: Params, *, trace_compartments: bool) -> tuple[ContainerHost, list[dict]]:
    """The host both overlap scenarios share; ``trace_compartments``: whether pktmon reports them."""
    host = ContainerHost(params, workloads=0)
    if not trace_compartments:
        host.host_vnic.compartment = None
    networks = []
    index = 0
    for name, prefix, subnet, compartment in NETWORKS:
        members = []
        for n in range(max(1, params.hosts // 2)):
            w = host.add_workload(index, f"{subnet}.{11 + n}", compartment)
            if not trace_compartments:
                w.component.compartment = None
                w.component.ip_if_index = None
            members.append(w)
            index += 1
        networks.append({"name": name, "prefix": prefix, "compartment": compartment,
                         "addresses": [w.ip for w in members], "vmnics": [w.component.description for w in members]})
    return host, networks


def build(params: Params) -> Story:
    host, networks = overlapping_host(params, trace_compartments=True)
    config = HostConfig(host)
    t = host.start - 900 * MS
    for net in networks:
        t = config.winnat_instance(t, net["name"], net["prefix"])
    t = config.vmswitch_ports(t)
    config.tcpip_state(t)
    packets = host.healthy_traffic()
    finding = Finding("overlapping-compartment-subnets", {
        "compartments": [n["compartment"] for n in networks],
        "prefixes": [n["prefix"] for n in networks],
        "overlap": "172.20.16.0/20",
        "meet_via": ["nat", "shared-vswitch"],
        "source": "trace",
    })
    return host.story([finding], facts={"networks": networks, "packets": packets, "drops": []})


SCENARIO = Scenario(
    name="overlapping-compartments",
    title="Two container networks in different compartments with overlapping subnets",
    summary="NAT networks 172.20.0.0/16 (compartment 2) and 172.20.16.0/20 (compartment 3) on one host and "
            "vSwitch; compartments from TCPIP, pktmon and WinNat events.",
    build=build,
    seed=202,
    hosts=2,
    min_hosts=2,
)
