"""Address resolution that is never answered, seen only in the frames pktmon logged (no TCPIP events).

* The first container asks for a peer, 10.80.0.99 (down), by ARP: three broadcast requests a second
  apart, again every five seconds, and no reply ever comes.
* The second container asks for its IPv6 gateway fe80::1 with Neighbor Solicitations: three at a time,
  never advertised. Its ARP for the IPv4 gateway 10.80.0.1 is answered (no finding for it).
* The third container announces itself (gratuitous ARP) and probes its IPv6 address (duplicate address
  detection, source ::): neither expects an answer, so neither is a finding.
The ground truth lists each unanswered (requester, target) with the number of requests written.
"""

from __future__ import annotations

from diag.synth.frames import (
    ARP_REPLY, ARP_REQUEST, arp_frame, neighbor_solicitation_frame,
)
from diag.synth.scenarios.base import (
    GATEWAY_MAC, MS, SECOND, ContainerHost, Finding, HostConfig, Params, Scenario, Story, Workload,
)

PEER = "10.80.0.99"
GATEWAY_V4, GATEWAY_V6 = "10.80.0.1", "fe80::1"
TRIES = 3  # solicitations per attempt (RFC 4861 MAX_MULTICAST_SOLICIT)
ATTEMPT_EVERY = 5 * SECOND


def link_local(w: Workload) -> str:
    return f"fe80::215:5dff:fe4a:{0x1000 + w.index:x}"


def unanswered(host: ContainerHost, w: Workload, frame: bytes, first: int) -> int:
    """``TRIES`` requests a second apart every ``ATTEMPT_EVERY`` from ``first``; returns requests written."""
    written = 0
    for at in range(first, host.end - TRIES * SECOND, ATTEMPT_EVERY):
        for n in range(TRIES):
            host.capture.packet(at + n * SECOND, host.outbound_hops(w), frame, cpu=written % 2)
            written += 1
    return written


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="l2bridge", subnet="10.80.0", host_ip="10.80.0.2")
    config = HostConfig(host)
    t = config.vmswitch_ports(host.start - 900 * MS)
    config.tcpip_state(t)
    asking_peer, asking_gateway = host.workloads[0], host.workloads[1]
    packets = host.healthy_traffic()
    peer_requests = unanswered(host, asking_peer, arp_frame(ARP_REQUEST, asking_peer.mac, asking_peer.ip, PEER),
                               host.start + 200 * MS)
    ns = neighbor_solicitation_frame(asking_gateway.mac, link_local(asking_gateway), GATEWAY_V6)
    gateway_requests = unanswered(host, asking_gateway, ns, host.start + 700 * MS)
    answered_at = host.start + 1500 * MS
    host.capture.packet(answered_at, host.outbound_hops(asking_gateway),
                        arp_frame(ARP_REQUEST, asking_gateway.mac, asking_gateway.ip, GATEWAY_V4))
    host.capture.packet(answered_at + 1 * MS, host.inbound_hops(asking_gateway), arp_frame(
        ARP_REPLY, GATEWAY_MAC, GATEWAY_V4, asking_gateway.ip, target_mac=asking_gateway.mac))
    for w in host.workloads[2:]:
        host.capture.packet(host.start + 300 * MS, host.outbound_hops(w), arp_frame(ARP_REQUEST, w.mac, w.ip, w.ip))
        host.capture.packet(host.start + 400 * MS, host.outbound_hops(w),
                            neighbor_solicitation_frame(w.mac, "::", link_local(w)))
    finding = Finding("arp-nd-unanswered", {"unanswered": [
        {"protocol": "ARP", "target": PEER, "requester_mac": asking_peer.mac,
         "component_id": asking_peer.component.id, "requests": peer_requests},
        {"protocol": "ND", "target": GATEWAY_V6, "requester_mac": asking_gateway.mac,
         "component_id": asking_gateway.component.id, "requests": gateway_requests}]})
    return host.story([finding], facts={"drops": [], "healthy_packets": packets})


SCENARIO = Scenario(
    name="arp-unanswered",
    title="ARP and IPv6 neighbour discovery never answered (frames only)",
    summary="pktmon frames only: a container ARPs for a peer that is down, another sends Neighbor Solicitations for "
            "its IPv6 gateway, neither is answered; answered ARP, gratuitous ARP and DAD probes are not findings.",
    build=build,
    seed=1818,
    hosts=3,
    min_hosts=2,
)
