"""WinNat port exhaustion: containers behind a NAT network open outbound connections faster than
NAT sessions time out, until the instance's external address pool has no free TCP port. New
connections fail; on the host, TCPIP also starts handing out ports with weak references.

Evidence: WinNat 1019 (the instance, its prefix), WinNat 1033 "failed to allocate a TCP port
dynamically because all ports ... are in use" repeated, TCPIP 1195 "assigned port number ... with
weak references due to port exhaustion"; a burst of outbound SYNs in pktmon.
"""

from __future__ import annotations

from diag.synth import tcpip, winnat
from diag.synth.frames import IPPROTO_TCP, TCP_SYN, tcp_frame
from diag.synth.scenarios.base import (GATEWAY_MAC, MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story,
                                       add_event)

INSTANCE = "ContainerNAT"
NAT_PREFIX = "172.21.0.0/20"


def build(params: Params) -> Story:
    host = ContainerHost(params, subnet="172.21.0", first_compartment=2)
    config = HostConfig(host)
    t = config.winnat_instance(host.start - 900 * MS, INSTANCE, NAT_PREFIX)
    t = config.vmswitch_ports(t)
    config.tcpip_state(t)
    packets = host.healthy_traffic()
    exhaustion_starts = host.start + (host.end - host.start) // 2
    syns = max(20, int(params.rate * params.duration / 2))
    nat_failures = weak_ports = 0
    for n, t in enumerate(host.times(syns, exhaustion_starts)):
        w = host.workloads[n % len(host.workloads)]
        frame = tcp_frame(w.mac, GATEWAY_MAC, w.ip, "203.0.113.80", 30000 + n, 443, ident=n, seq=n * 7919,
                          flags=TCP_SYN)
        host.capture.packet(t, host.outbound_hops(w), frame, cpu=n % 2)
        if n % 2 == 0:
            add_event(host.builder, t + 50, winnat, winnat.EVENT_PORT_POOL_EXHAUSTED,
                      winnat.encode_port_pool_exhausted(INSTANCE, IPPROTO_TCP), cpu=n % 2)
            nat_failures += 1
        if n % 5 == 0:
            add_event(host.builder, t + 80, tcpip, tcpip.EVENT_PORT_EXHAUSTION, tcpip.encode_port_exhaustion(
                port=49152 + n, acquirer=0xFFFF_C30A_1B20_0000 + n * 0x40, original_acquirer=0xFFFF_C30A_1A00_0000),
                cpu=n % 2)
            weak_ports += 1
    nat = Finding("nat-port-exhaustion", {"instance": INSTANCE, "protocol": "TCP", "transport_protocol": IPPROTO_TCP,
                                          "events": nat_failures, "prefix": NAT_PREFIX})
    tcp = Finding("tcp-port-exhaustion", {"events": weak_ports})
    return host.story([nat, tcp], facts={"packets": packets + syns, "drops": [],
                                         "exhaustion_starts_filetime": exhaustion_starts})


SCENARIO = Scenario(
    name="winnat-port-exhaustion",
    title="WinNat port-pool exhaustion",
    summary="A burst of outbound connections from NAT containers: WinNat 1033 (no free TCP port in the pool) and "
            "TCPIP 1195 (ports with weak references) in the second half of the trace.",
    build=build,
    seed=1010,
    hosts=3,
)
