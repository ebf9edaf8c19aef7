"""pktmon started without ``--capture`` on a container host that also traced its vSwitch and TCP/IP.

``pktmon start --trace -p Microsoft-Windows-Hyper-V-VmSwitch -p Microsoft-Windows-TCPIP`` (no
``--capture``) logs pktmon's component list when it stops, and the providers' events, but no packet
snapshot. The trace answers questions about ports and addresses; packet questions (drops, paths,
flows) it cannot answer, and a correct diagnosis says so (trace-no-packets), without calling the
whole trace unanswerable.
"""

from __future__ import annotations

from diag.synth.scenarios.base import MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story


def build(params: Params) -> Story:
    host = ContainerHost(params, subnet="172.22.0")
    config = HostConfig(host)
    t = config.vmswitch_ports(host.start - 900 * MS)
    config.tcpip_state(t)
    return host.story([Finding("trace-no-packets")], bulk_packets=[], facts={"packets": 0, "drops": []})


SCENARIO = Scenario(
    name="capture-without-packets",
    title="pktmon ran without --capture beside VmSwitch and TCPIP events",
    summary="The component list and the switch and stack events, no packet: packet questions unanswered.",
    build=build,
    seed=131,
    hosts=2,
    fixed=frozenset({"rate"}),
)
