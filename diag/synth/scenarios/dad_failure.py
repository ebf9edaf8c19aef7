"""Duplicate address detection fails for a container's address: a VM on the same l2bridge network
was given the same static IP, and answers for it. TCPIP logs the DAD failure with the MAC of the
host that answered, in the container's compartment.

Evidence: TCPIP 1115 "Address DAD failed" (interface, IPv4 address, DLAddress = the other host's
MAC, CompartmentId); the address's 1127 addition just before; the other host's ARP reply in
pktmon (an ARP reply for the address from a MAC that is not the container's).
"""

from __future__ import annotations

from diag.synth import tcpip
from diag.synth.frames import ARP_REPLY, arp_frame, mac
from diag.synth.bulk import Hop
from diag.synth.scenarios.base import (MS, NIC_ID, RX, SWITCH_ID, ContainerHost, Finding, HostConfig, Params, Scenario,
                                       Story, add_event)

CONFLICTING_MAC = "00-15-5d-4a-77-77"


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="l2bridge", subnet="10.50.0", host_ip="10.50.0.2")
    config = HostConfig(host)
    t = config.vmswitch_ports(host.start - 900 * MS)
    config.tcpip_state(t)
    victim = host.workloads[-1]
    at = host.start + (host.end - host.start) // 3
    reply = arp_frame(ARP_REPLY, CONFLICTING_MAC, victim.ip, victim.ip, target_mac=victim.mac)
    host.capture.packet(at, [Hop(NIC_ID, RX), Hop(SWITCH_ID, RX, 2), Hop(SWITCH_ID, RX, 1),
                             Hop(victim.component.id, RX)], reply, cpu=0)
    add_event(host.builder, at + 2 * MS, tcpip, tcpip.EVENT_DAD_FAILED, tcpip.encode_address_event(
        tcpip.EVENT_DAD_FAILED, interface=victim.if_index, address=victim.ip, mac=mac(CONFLICTING_MAC),
        compartment=victim.compartment, dad_state=tcpip.DAD_STATE_DUPLICATE))
    packets = host.healthy_traffic(workloads=host.workloads[:-1] or None)
    finding = Finding("duplicate-ip-address", {
        "address": victim.ip, "interface": victim.if_index, "compartment": victim.compartment,
        "conflicting_mac": CONFLICTING_MAC, "own_mac": victim.mac, "filetime": at + 2 * MS})
    return host.story([finding], facts={"packets": packets + 1, "drops": []})


SCENARIO = Scenario(
    name="dad-failure",
    title="TCPIP duplicate address detection failure",
    summary="A container's static address is already used by another host on the l2bridge network: TCPIP 1115 with "
            "the other host's MAC, in the container's compartment.",
    build=build,
    seed=1111,
    hosts=2,
)
