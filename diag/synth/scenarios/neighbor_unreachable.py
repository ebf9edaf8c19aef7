"""A gateway that never answers ARP: on an l2bridge container network the default gateway
10.60.0.1 (a router on the physical network) was moved to another VLAN. Every container asks for
its MAC again and again; no reply comes, and TCPIP marks the neighbour unreachable each time.
The DNS server 10.60.0.53 on the same subnet is fine: the first container's first request for it
goes unanswered once (a lost reply), then it answers and stays reachable, so it is no finding.

Evidence: TCPIP 1324 v1 "neighbour state changed" for 10.60.0.1 on each container's interface,
Incomplete -> Unreachable (NeighborEvent Timeout) and again, never Reachable, no DLAddress; for
10.60.0.53 Incomplete -> Unreachable once, then Incomplete -> Reachable with its MAC; pktmon:
broadcast ARP requests for 10.60.0.1 leaving through the NIC with no reply, ARP requests and
replies and DNS over UDP for 10.60.0.53. Both the TCPIP view (neighbor-unreachable) and the frames'
view (arp-nd-unanswered) must report the gateway, each container once.
"""

from __future__ import annotations

from diag.synth import tcpip
from diag.synth.frames import ARP_REPLY, ARP_REQUEST, arp_frame, mac, udp_frame
from diag.synth.scenarios.base import (BULK_FLOWS, MS, SECOND, ContainerHost, Finding, HostConfig, Params, Scenario,
                                       Story, Workload, add_event, bulk_body)

GATEWAY = "10.60.0.1"
DNS_SERVER, DNS_MAC = "10.60.0.53", "00-1d-d8-b7-35-35"
ARP_TRIES = 3  # requests per resolution attempt before TCPIP gives up
ATTEMPT_EVERY = 4 * SECOND
DNS_QUERY = bytes.fromhex("0100000100000000000003617069076578616d706c6503636f6d0000010001")


def neighbor_state(host: ContainerHost, t: int, w: Workload, address: str, old: int, new: int, event: int,
                   neighbor_mac: str | None = None) -> None:
    add_event(host.builder, t, tcpip, tcpip.EVENT_NEIGHBOR_STATE, tcpip.encode_neighbor_state(
        interface=w.if_index, address=address, old_state=old, new_state=new, event=event, compartment=w.compartment,
        mac=mac(neighbor_mac) if neighbor_mac else b""))


def unanswered_resolution(host: ContainerHost, t: int, w: Workload, address: str, first: bool) -> None:
    """ARP requests for ``address`` with no reply, then TCPIP gives up: (Unreachable ->) Incomplete -> Unreachable."""
    if not first:
        neighbor_state(host, t, w, address, tcpip.NEIGHBOR_UNREACHABLE, tcpip.NEIGHBOR_INCOMPLETE,
                       tcpip.NEIGHBOR_EVENT_RESOLVE)
    for n in range(ARP_TRIES):
        host.capture.packet(t + n * SECOND, host.outbound_hops(w), arp_frame(ARP_REQUEST, w.mac, w.ip, address))
    neighbor_state(host, t + ARP_TRIES * SECOND, w, address, tcpip.NEIGHBOR_INCOMPLETE, tcpip.NEIGHBOR_UNREACHABLE,
                   tcpip.NEIGHBOR_EVENT_TIMEOUT)


def dns_exchange(host: ContainerHost, t: int, w: Workload, n: int) -> None:
    query = udp_frame(w.mac, DNS_MAC, w.ip, DNS_SERVER, 53000 + n % 1000, 53, (n & 0xFFFF).to_bytes(2, "big")
                      + DNS_QUERY, ident=0x6000 + n)
    answer = udp_frame(DNS_MAC, w.mac, DNS_SERVER, w.ip, 53, 53000 + n % 1000, (n & 0xFFFF).to_bytes(2, "big")
                       + DNS_QUERY, ident=0x7000 + n)
    host.capture.packet(t, host.outbound_hops(w), query, cpu=n % 2)
    host.capture.packet(t + 2 * MS, host.inbound_hops(w), answer, cpu=n % 2)


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="l2bridge", subnet="10.60.0", host_ip="10.60.0.2")
    config = HostConfig(host)
    t = config.vmswitch_ports(host.start - 900 * MS)
    config.tcpip_state(t)
    unreachable: dict[int, int] = {}
    for w in host.workloads:
        begin = host.start + w.index * 300 * MS
        attempts = range(begin, max(begin + 1, host.end - ARP_TRIES * SECOND), ATTEMPT_EVERY)
        for k, at in enumerate(attempts):
            unanswered_resolution(host, at, w, GATEWAY, first=k == 0)
        unreachable[w.index] = len(attempts)
    # the DNS server: the first reply is lost, the next request is answered
    first = host.workloads[0]
    unanswered_resolution(host, host.start + 100 * MS, first, DNS_SERVER, first=True)
    answered = host.start + (ARP_TRIES + 1) * SECOND
    neighbor_state(host, answered, first, DNS_SERVER, tcpip.NEIGHBOR_UNREACHABLE, tcpip.NEIGHBOR_INCOMPLETE,
                   tcpip.NEIGHBOR_EVENT_RESOLVE)
    host.capture.packet(answered, host.outbound_hops(first), arp_frame(ARP_REQUEST, first.mac, first.ip, DNS_SERVER))
    host.capture.packet(answered + 1 * MS, host.inbound_hops(first), arp_frame(
        ARP_REPLY, DNS_MAC, DNS_SERVER, first.ip, target_mac=first.mac))
    neighbor_state(host, answered + 2 * MS, first, DNS_SERVER, tcpip.NEIGHBOR_INCOMPLETE, tcpip.NEIGHBOR_REACHABLE,
                   tcpip.NEIGHBOR_EVENT_NA_CONFIRMS, DNS_MAC)
    queries = max(4, int(params.rate * (host.end - answered) / SECOND / 4))
    for n, at in enumerate(host.times(queries, answered + 10 * MS)):
        dns_exchange(host, at, first, n)
    never = [{"address": GATEWAY, "interface": w.if_index, "compartment": w.compartment,
              "unreachable": unreachable[w.index]} for w in host.workloads]
    finding = Finding("neighbor-unreachable", {"neighbors": never, "gateway": GATEWAY})
    # the frames' view of the same failure (rules/arp-nd-unanswered.yaml): ARP_TRIES requests per attempt, no reply
    frames_view = Finding("arp-nd-unanswered", {"unanswered": [
        {"protocol": "ARP", "target": GATEWAY, "requester_mac": w.mac, "component_id": w.component.id,
         "requests": ARP_TRIES * unreachable[w.index]} for w in host.workloads]})
    bulk = []
    for n in range(BULK_FLOWS):
        answer = udp_frame(DNS_MAC, first.mac, DNS_SERVER, first.ip, 53, 53000 + n, bulk_body(host.rng, 1200),
                           ident=0x7000 + n)
        bulk.append(host.capture.filler_packet(host.inbound_hops(first), answer))
    return host.story([finding, frames_view], bulk_packets=bulk, facts={
        "drops": [], "recovered": {"address": DNS_SERVER, "interface": first.if_index, "mac": DNS_MAC}})


SCENARIO = Scenario(
    name="neighbor-unreachable",
    title="The containers' gateway never answers ARP",
    summary="On an l2bridge network the gateway 10.60.0.1 never answers the containers' ARP requests: TCPIP 1324 "
            "Incomplete -> Unreachable on each container's interface, unanswered ARP in pktmon; the DNS server "
            "misses one reply and then answers (no finding).",
    build=build,
    seed=1515,
    hosts=2,
)
