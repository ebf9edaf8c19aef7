"""TCP trouble on two vmNICs of one container host, seen only in the frames pktmon logged.

* The service in the first container is not listening: clients' connection attempts to its port 8080
  (SYN in through the NIC, the vSwitch and the vmNIC) are refused with RST|ACK out of the vmNIC.
* The second container uploads to a server beyond the uplink, and a fifth of its data segments are
  not acknowledged: each is sent again, with the same sequence number and length, 300 ms later (a new
  packet, so a new PktGroupId).
Every container also has its healthy web and DNS traffic. The ground truth counts what the scenario
wrote: the RSTs and the repeated segments, for which vmNIC (component id and MAC).
"""

from __future__ import annotations

from diag.synth.frames import TCP_ACK, TCP_PSH, TCP_RST, TCP_SYN, tcp_frame
from diag.synth.scenarios.base import (
    GATEWAY_MAC, MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story, Workload,
)

REFUSED_PORT = 8080
UPLOAD_SERVER, UPLOAD_PORT = "198.51.100.20", 443
RETRANSMIT_AFTER = 300 * MS
SEGMENT = 1200


def refused_connections(host: ContainerHost, w: Workload, count: int) -> int:
    """``count`` SYNs in from clients, each answered by an RST|ACK from the container; returns RSTs written."""
    for n, t in enumerate(host.times(count)):
        client, sport = f"192.0.2.{20 + n % 50}", 51000 + n
        syn = tcp_frame(GATEWAY_MAC, w.mac, client, w.ip, sport, REFUSED_PORT, ident=0x2000 + n, seq=77000 + 991 * n,
                        flags=TCP_SYN)
        rst = tcp_frame(w.mac, GATEWAY_MAC, w.ip, client, REFUSED_PORT, sport, ident=0x3000 + n, seq=0,
                        ack=77001 + 991 * n, flags=TCP_RST | TCP_ACK, window=0)
        host.capture.packet(t, host.inbound_hops(w), syn, cpu=n % 2)
        host.capture.packet(t + 1 * MS, host.outbound_hops(w), rst, cpu=n % 2)
    return count


def lossy_upload(host: ContainerHost, w: Workload, segments: int, every: int) -> int:
    """An upload of ``segments`` data segments; every ``every``-th one is sent again later. Returns the repeats."""
    repeats = 0
    for n, t in enumerate(host.times(segments, end=host.end - 2 * RETRANSMIT_AFTER)):
        segment = tcp_frame(w.mac, GATEWAY_MAC, w.ip, UPLOAD_SERVER, 49700, UPLOAD_PORT, ident=0x5000 + n,
                            seq=300000 + SEGMENT * n, ack=4000, flags=TCP_ACK | TCP_PSH,
                            payload=bytes((n + k) & 0xFF for k in range(SEGMENT)))
        host.capture.packet(t, host.outbound_hops(w), segment, cpu=n % 2)
        if n % every == every - 1:
            host.capture.packet(t + RETRANSMIT_AFTER, host.outbound_hops(w), segment, cpu=n % 2)
            repeats += 1
    return repeats


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="l2bridge", subnet="10.70.0", host_ip="10.70.0.2")
    config = HostConfig(host)
    t = config.vmswitch_ports(host.start - 900 * MS)
    config.tcpip_state(t)
    refusing, uploading = host.workloads[0], host.workloads[1]
    packets = host.healthy_traffic()
    resets = refused_connections(host, refusing, max(24, int(params.rate * params.duration / 20)))
    segments = max(60, int(params.rate * params.duration / 10))
    retransmitted = lossy_upload(host, uploading, segments, 5)
    reset_finding = Finding("tcp-resets-on-vport", {
        "component_id": refusing.component.id, "mac": refusing.mac, "resets": resets, "resets_sent": resets,
        "resets_received": 0, "host_resets": resets})
    retransmission_finding = Finding("tcp-retransmissions-on-vport", {
        "component_id": uploading.component.id, "mac": uploading.mac, "retransmissions": retransmitted,
        "retransmissions_sent": retransmitted, "retransmissions_received": 0, "host_retransmissions": retransmitted})
    return host.story([reset_finding, retransmission_finding],
                      facts={"drops": [], "healthy_packets": packets, "upload_segments": segments})


SCENARIO = Scenario(
    name="tcp-resets-on-vport",
    title="One container refuses connections (TCP RST), another's upload retransmits",
    summary="pktmon frames only: SYNs to a container's port 8080 answered by RST from its vmNIC; a fifth of another "
            "container's upload segments sent again 300 ms later. Healthy traffic on every container.",
    build=build,
    seed=1717,
    hosts=3,
    min_hosts=2,
)
