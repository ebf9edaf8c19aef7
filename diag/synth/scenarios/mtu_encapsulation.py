"""The underlay MTU is too small for VXLAN's overhead: an overlay network (VNI 4096) whose pods send
full-size 1500-byte packets. Encapsulated, a 1514-byte inner frame becomes a 1564-byte outer frame
(14 + 20 + 8 + 8 = 50 bytes of outer Ethernet, IPv4, UDP and VXLAN headers), more than the
physical NIC's 1500-byte MTU allows, and the vSwitch drops it with reason 23 (MTU mismatch).
Smaller packets are encapsulated and leave fine.

Evidence: pktmon snapshots of the inner frame at the vmNIC and the vSwitch's upper edge, the outer
VXLAN frame (UDP 4789) at its lower edge and the NIC; drops 170 of 1564-byte outer frames with
reason 23; VmSwitch 230 with VxLanEnabled = 1.
"""

from __future__ import annotations

from diag.synth import pktmon as pm
from diag.synth import vmswitch
from diag.synth.bulk import Hop
from diag.synth.frames import VXLAN_OVERHEAD, tcp_frame, vxlan_frame
from diag.synth.scenarios.base import (BULK_FLOWS, MS, NIC_ID, SWITCH_ID, TX, ContainerHost, Finding, Params,
                                       Scenario, Story, add_event, port_name)

VNI = 4096
UNDERLAY_MTU = 1500
LOCAL_PA, REMOTE_PA = "192.168.100.4", "192.168.100.5"
LOCAL_PA_MAC, ROUTER_MAC = "00-15-5d-4a-00-01", "00-1d-d8-b7-1c-01"
REMOTE_POD, REMOTE_POD_MAC = "10.244.2.21", "00-15-5d-4b-00-21"
DROP_LOCATION = 0xE0004B11


def _inner(pod, n: int, size: int) -> bytes:
    return tcp_frame(pod.mac, REMOTE_POD_MAC, pod.ip, REMOTE_POD, 40000 + n % 1000, 8080, ident=n, seq=n * 1460,
                     ack=1, payload=bytes((n * 7 + k * (n | 1)) & 0xFF for k in range(size)))


def _outer(inner: bytes, n: int) -> bytes:
    return vxlan_frame(LOCAL_PA_MAC, ROUTER_MAC, LOCAL_PA, REMOTE_PA, VNI, inner, source_port=49152 + n % 16000,
                       ident=0x2000 + n)


def _hops(pod) -> list[Hop]:
    return [Hop(pod.component.id, TX), Hop(SWITCH_ID, TX, 1), Hop(SWITCH_ID, TX, 2), Hop(NIC_ID, TX)]


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="vxlan0", subnet="10.244.1", host_ip=LOCAL_PA)
    add_event(host.builder, host.start - 500 * MS, vmswitch, vmswitch.EVENT_ENCAP_OFFLOAD, vmswitch.encode(
        vmswitch.EVENT_ENCAP_OFFLOAD, SwitchName=port_name(host.rng), SwitchFriendlyName="vxlan0", NvgreEnabled=0,
        VxLanEnabled=1))
    total = max(10, int(params.rate * params.duration))
    dropped = 0
    largest = 0
    for n, t in enumerate(host.times(total)):
        pod = host.workloads[n % len(host.workloads)]
        full_size = n % 3 == 0
        inner = _inner(pod, n, 1460 if full_size else 200 + n % 300)
        outer = _outer(inner, n)
        if len(outer) - 14 > UNDERLAY_MTU:
            host.capture.packet(t, _hops(pod)[:3], [inner, inner, outer], cpu=n % 2,
                                drop_reason=pm.DropReason.MTU_MISMATCH, drop_location=DROP_LOCATION)
            dropped += 1
            largest = max(largest, len(inner))
        else:
            host.capture.packet(t, _hops(pod), [inner, inner, outer, outer], cpu=n % 2)
    # bulk: encapsulated frames leaving through the vSwitch's lower edge and the NIC
    bulk = [host.capture.filler_packet([Hop(SWITCH_ID, TX, 2), Hop(NIC_ID, TX)],
                                       _outer(_inner(host.workloads[n % len(host.workloads)], n, 1200), n))
            for n in range(BULK_FLOWS)]
    finding = Finding("mtu-encapsulation-overhead", {
        "encapsulation": "VXLAN", "overhead": VXLAN_OVERHEAD, "underlay_mtu": UNDERLAY_MTU,
        "inner_frame": largest, "outer_frame": largest + VXLAN_OVERHEAD, "dropped": dropped,
        "reason": int(pm.DropReason.MTU_MISMATCH), "component_id": SWITCH_ID,
        "largest_inner_mtu_that_fits": UNDERLAY_MTU - VXLAN_OVERHEAD})
    drops = Finding("packets-dropped", {"total": dropped, "groups": [
        {"component_id": SWITCH_ID, "reason": 23, "direction": "Tx", "count": dropped}]})
    return host.story([finding, drops], bulk_packets=bulk,
                      facts={"drops": host.drops_json(), "vni": VNI, "pa": [LOCAL_PA, REMOTE_PA]})


SCENARIO = Scenario(
    name="mtu-encapsulation",
    title="MTU too small for VXLAN encapsulation overhead",
    summary="Full-size pod packets grow by 50 bytes in VXLAN and exceed the 1500-byte underlay MTU: dropped at "
            "the vSwitch with reason 23; small packets leave encapsulated.",
    build=build,
    seed=606,
    hosts=2,
)
