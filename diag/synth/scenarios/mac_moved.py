"""One MAC address on two switch ports: two VMs cloned from one template keep its static MAC
address, and both run on this host. Each time the other clone sends, the vSwitch learns the
address on that clone's port and reports the move; inbound traffic for the address goes to
whichever port learned it last, so each clone loses the other's share of its replies.

Evidence: VmSwitch 25 MacAddressMoved (the MAC in its text form, the port it left and the port it
moved to) at every change of sender; pktmon frames with that source MAC on both vmNICs (both
components carry the same MAC property); inbound requests for it delivered to one vmNIC, then the
other. The MAC is written ``00-15-5D-..`` upper case, as the decoder test reads it (the driver's
exact text form is UNCONFIRMED), and the moves are 25, not 28 (a static MAC pinned to its port
would be "prevented" instead: UNCONFIRMED which one a host logs for two configured static MACs).
"""

from __future__ import annotations

from collections import Counter

from diag.synth import vmswitch
from diag.synth.scenarios.base import (MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story, add_event,
                                       port_name)

SHARED_MAC = "00-15-5d-4a-20-07"
BURST = 6  # frames a clone sends before the other one speaks again


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="External", subnet="10.70.0", host_ip="10.70.0.2", workloads=0)
    clones = [host.add_workload(i, f"10.70.0.{11 + i}", 2 + i, mac=SHARED_MAC) for i in range(2)]
    others = [host.add_workload(i, f"10.70.0.{11 + i}", 2 + i) for i in range(2, params.hosts)]
    config = HostConfig(host)
    switch_guid = port_name(host.rng)
    config.vmswitch_ports(host.start - 900 * MS, switch_guid=switch_guid)
    host.healthy_traffic(workloads=others)

    ports = [config.ports[c.index] for c in clones]
    mac_text = SHARED_MAC.upper()
    moves: Counter = Counter()
    owner = 0  # the first clone had the address when the trace started
    sends = max(4 * BURST, int(params.rate * params.duration / 2))
    for n, t in enumerate(host.times(sends)):
        sender = (n // BURST) % 2
        if sender != owner:
            add_event(host.builder, t + 100, vmswitch, vmswitch.EVENT_MAC_ON_TWO_PORTS, vmswitch.encode(
                vmswitch.EVENT_MAC_ON_TWO_PORTS, MacAddress=mac_text, Port1Name=ports[owner], Port1FName=ports[owner],
                Port2Name=ports[sender], Port2FName=ports[sender]))
            moves[(owner, sender)] += 1
            owner = sender
        clone = clones[sender]
        if n % 2:
            host.capture.packet(t, host.outbound_hops(clone), host.dns_query(clone, n), cpu=n % 2)
        else:
            host.capture.packet(t, host.outbound_hops(clone), host.web_response(clone, n), cpu=n % 2)
            # the client's next request follows the address to whichever port learned it last
            host.capture.packet(t + 2 * MS, host.inbound_hops(clone), host.web_request(clone, n + 1), cpu=n % 2)

    finding = Finding("mac-moved", {
        "mac": mac_text, "prevented": False,
        "moves": [{"from_port": ports[a], "to_port": ports[b], "count": count}
                  for (a, b), count in sorted(moves.items())],
        "vmnics": [c.component.description for c in clones], "vmnic_component_ids": [c.component.id for c in clones],
        "switch_name": switch_guid})
    return host.story([finding], bulk_packets=host.bulk_packets(others or None), facts={"drops": []})


SCENARIO = Scenario(
    name="mac-moved",
    title="A MAC address moves between two switch ports (cloned VMs with one static MAC)",
    summary="Two vmNICs send with the same MAC: VmSwitch 25 at every change of sender, pktmon frames from that MAC "
            "on both vmNICs.",
    build=build,
    seed=1414,
    hosts=3,
    min_hosts=2,
)
