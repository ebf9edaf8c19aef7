"""The overlapping container networks of ``overlapping-compartments``, but the trace does not say
which compartment anything is in: a plain pktmon capture (no TCPIP or WinNat provider, components
without a Compartment ID property). The compartments, prefixes and interfaces are only in the
host-info text captured beside it: ``ipconfig /allcompartments`` (TRACE.ipconfig.txt) and
``Get-NetIPAddress -IncludeAllCompartments`` (TRACE.Get-NetIPAddress.txt).
"""

from __future__ import annotations

import ipaddress

from diag.synth.hostinfo import get_netipaddress, ipconfig_allcompartments
from diag.synth.scenarios.base import Finding, Params, Scenario, Story, workload_host_info
from diag.synth.scenarios.overlapping_compartments import overlapping_host


def build(params: Params) -> Story:
    host, networks = overlapping_host(params, trace_compartments=False)
    packets = host.healthy_traffic()
    prefix_of = {}
    gateway_of = {}
    for net in networks:
        network = ipaddress.IPv4Network(net["prefix"])
        for w in host.workloads:
            if w.ip in net["addresses"]:
                prefix_of[w.index] = network.prefixlen
                gateway_of[w.index] = str(network.network_address + 1)
    rows = workload_host_info(host, prefix_of, gateway_of)
    finding = Finding("overlapping-compartment-subnets", {
        "compartments": [n["compartment"] for n in networks],
        "prefixes": [n["prefix"] for n in networks],
        "overlap": "172.20.16.0/20",
        "meet_via": ["shared-vswitch"],
        "source": "host-info",
    })
    return host.story([finding], facts={"networks": networks, "packets": packets, "drops": []},
                      host_info={"ipconfig.txt": ipconfig_allcompartments(rows),
                                 "Get-NetIPAddress.txt": get_netipaddress(rows)})


SCENARIO = Scenario(
    name="overlapping-compartments-hostinfo",
    title="Overlapping container networks, compartments only in the host-info text",
    summary="As overlapping-compartments, but the trace carries no compartments: ipconfig /allcompartments and "
            "Get-NetIPAddress -IncludeAllCompartments output are written beside it.",
    build=build,
    seed=303,
    hosts=2,
    min_hosts=2,
)
