"""Two tenants on one Hyper-V Network Virtualization host use the same customer subnet: Contoso
and Fabrikam both run 10.0.0.0/24, even the same addresses, in their own compartments (5 and 6).
Their vmNICs sit on the host's one virtual switch but carry different virtual subnet ids (5001 and
6001), and no NAT joins them: the overlap is by design (the seed's "Contoso can use 10.0.0.0/8,
Fabrikam can use 10.0.0.0/8, and the subnets will never overlap"). A correct diagnosis reports the
isolated overlap as expected and not as a problem.

Evidence: pktmon's vmNIC properties (compartment, VSID, address, vSwitch SDNSwitch); TCPIP 1202 and
1127 (interfaces and addresses with their compartments) and 1145 on-link routes 10.0.0.0/24 on
each tenant interface (the prefix); Hyper-V-VmSwitch port security with each port's
VirtualSubnetId; tenant traffic leaving NVGRE-encapsulated with the tenant's VSID as GRE key.
"""

from __future__ import annotations

from diag.synth import tcpip
from diag.synth.bulk import Hop
from diag.synth.frames import TCP_ACK, TCP_PSH, nvgre_frame, tcp_frame
from diag.synth.scenarios.base import (BULK_FLOWS, MS, NIC_ID, RX, SWITCH_ID, TX, ContainerHost, Finding, HostConfig,
                                       Params, Scenario, Story, Workload, add_event, bulk_body)

CUSTOMER_PREFIX = "10.0.0.0/24"
LOCAL_PA, PA_MAC, ROUTER_MAC = "192.168.50.4", "00-15-5d-4a-00-01", "00-1d-d8-b7-1c-01"
VIRTUAL_GATEWAY_MAC = "00-1d-d8-b7-1c-02"
# tenant, compartment, VSID, provider address of the tenant's remote VM (10.0.0.7 in both)
TENANTS = (("Contoso", 5, 5001, "192.168.50.5"), ("Fabrikam", 6, 6001, "192.168.50.6"))
REMOTE_CA = "10.0.0.7"


def tenant_packet(host: ContainerHost, t: int, w: Workload, vsid: int, remote_pa: str, n: int,
                  body: bytes | None = None) -> None:
    """One request to the tenant's remote VM or its answer; NVGRE between the switch and the NIC."""
    payload = body if body is not None else bytes((n + k) & 0xFF for k in range(200 + n % 700))
    if n % 2 == 0:
        inner = tcp_frame(w.mac, VIRTUAL_GATEWAY_MAC, w.ip, REMOTE_CA, 49000 + n % 1000, 443, ident=n, seq=n * 733,
                          ack=1, flags=TCP_ACK | TCP_PSH, payload=payload)
        outer = nvgre_frame(PA_MAC, ROUTER_MAC, LOCAL_PA, remote_pa, vsid, inner, flow_id=n & 0xFF, ident=n)
        hops = [Hop(w.component.id, TX), Hop(SWITCH_ID, TX, 1), Hop(SWITCH_ID, TX, 2), Hop(NIC_ID, TX)]
        host.capture.packet(t, hops, [inner, inner, outer, outer], cpu=n % 2)
    else:
        inner = tcp_frame(VIRTUAL_GATEWAY_MAC, w.mac, REMOTE_CA, w.ip, 443, 49000 + n % 1000, ident=n, seq=n * 911,
                          ack=1, flags=TCP_ACK | TCP_PSH, payload=payload)
        outer = nvgre_frame(ROUTER_MAC, PA_MAC, remote_pa, LOCAL_PA, vsid, inner, flow_id=n & 0xFF, ident=n)
        hops = [Hop(NIC_ID, RX), Hop(SWITCH_ID, RX, 2), Hop(SWITCH_ID, RX, 1), Hop(w.component.id, RX)]
        host.capture.packet(t, hops, [outer, outer, inner, inner], cpu=n % 2)


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="SDNSwitch", host_ip=LOCAL_PA, workloads=0)
    tenants = []
    index = 0
    for name, compartment, vsid, remote_pa in TENANTS:
        members = []
        for n in range(max(1, params.hosts // 2)):
            w = host.add_workload(index, f"10.0.0.{4 + n}", compartment)
            w.component.description = f"Network Adapter ({name.lower()}-vm{n + 1})"
            w.component.vsid = vsid
            members.append(w)
            index += 1
        tenants.append((name, compartment, vsid, remote_pa, members))
    config = HostConfig(host)
    t = config.vmswitch_ports(host.start - 900 * MS)
    t = config.tcpip_state(t)
    for _name, _compartment, _vsid, _pa, members in tenants:
        for w in members:
            add_event(host.builder, t, tcpip, tcpip.EVENT_ROUTE_CREATED,
                      tcpip.encode_route_created(interface=w.if_index, prefix=CUSTOMER_PREFIX,
                                                 compartment=w.compartment, build=host.builder.profile.os_build))
            t += 100
    count = max(len(host.workloads), int(params.rate * params.duration))
    for n, at in enumerate(host.times(count)):
        _name, _compartment, vsid, remote_pa, members = tenants[n % len(tenants)]
        tenant_packet(host, at, members[(n // len(tenants)) % len(members)], vsid, remote_pa, n)
    bulk = []
    for n in range(BULK_FLOWS):
        _name, _compartment, vsid, remote_pa, members = tenants[n % len(tenants)]
        w = members[0]
        inner = tcp_frame(w.mac, VIRTUAL_GATEWAY_MAC, w.ip, REMOTE_CA, 49500 + n, 443, payload=bulk_body(host.rng, 1200))
        outer = nvgre_frame(PA_MAC, ROUTER_MAC, LOCAL_PA, remote_pa, vsid, inner)
        bulk.append(host.capture.filler_packet([Hop(SWITCH_ID, TX, 2), Hop(NIC_ID, TX)], outer))
    finding = Finding("overlapping-subnets-isolated", {
        "compartments": [c for _n, c, *_rest in tenants], "prefixes": [CUSTOMER_PREFIX] * len(tenants),
        "overlap": CUSTOMER_PREFIX, "vsids": [v for _n, _c, v, *_rest in tenants], "source": "trace",
        "vswitch": host.switch_name})
    return host.story([finding], bulk_packets=bulk, facts={
        "drops": [], "packets": count,
        "tenants": [{"name": name, "compartment": c, "vsid": v, "addresses": [w.ip for w in members]}
                    for name, c, v, _pa, members in tenants]})


SCENARIO = Scenario(
    name="hnv-isolated-tenants",
    title="Two HNV tenants reuse one subnet in isolated virtual networks",
    summary="Contoso (compartment 5, VSID 5001) and Fabrikam (compartment 6, VSID 6001) both use 10.0.0.0/24 on one "
            "vSwitch, NVGRE-encapsulated: an expected, isolated overlap, not a conflict.",
    build=build,
    seed=1616,
    hosts=4,
    min_hosts=2,
)
