"""vmSwitch drops for a VLAN mismatch: the container's vmNIC is an access port on VLAN 10, but its
traffic arrives from the physical network tagged VLAN 20 (the upstream switch port is in the
wrong VLAN for this workload). The vmNIC drops every such frame with reason 9 (Filtered VLAN).

Evidence in the trace: pktmon drops 170 at the vmNIC with reason 9 and the 802.1Q tag in the
frame; the vmNIC's VLAN property (pktmon 30, type 16) = 10; NDIS-PacketCapture 1003 at the
vSwitch with the VLAN in the NBL's out-of-band 802.1Q info; correctly tagged traffic for the
other containers is delivered.
"""

from __future__ import annotations

from diag.synth import ndiscap
from diag.synth import pktmon as pm
from diag.synth.frames import strip_vlan
from diag.synth.scenarios.base import SWITCH_ID, ContainerHost, Finding, Params, Scenario, Story

PORT_VLAN, WRONG_VLAN = 10, 20
DROP_LOCATION = 0xE0003C0D


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="l2bridge", subnet="10.10.0", vlan=PORT_VLAN, host_ip="10.10.0.2")
    victim = host.workloads[0]
    good = host.workloads[1:]
    if good:
        host.healthy_traffic(workloads=good)
    drops = max(3, int(params.rate * params.duration * 0.2))
    for n, t in enumerate(host.times(drops)):
        tagged = host.web_request(victim, n, vlan=WRONG_VLAN)
        hops = host.inbound_hops(victim)
        frames = [tagged, tagged, tagged, strip_vlan(tagged)]
        host.capture.packet(t, hops, frames, cpu=n % 2, drop_reason=pm.DropReason.FILTERED_VLAN,
                            drop_location=DROP_LOCATION)
        payload = ndiscap.encode_vmswitch_fragment(9, 9, 1, "ExternalPort", "Mellanox ConnectX-5 Adapter", "External",
                                                   strip_vlan(tagged), vlan_id=WRONG_VLAN, rss_hash=0x5A5A0000 + n)
        host.builder.add(t + 30, ndiscap.PROVIDER, ndiscap.EVENT_VMSWITCH_FRAGMENT, payload, level=ndiscap.LEVEL_INFO,
                         keywords=ndiscap.packet_keywords(False, vmswitch=True), cpu=n % 2)
    finding = Finding("vlan-mismatch", {
        "component": victim.component.description, "component_id": victim.component.id, "reason": 9,
        "count": drops, "port_vlan": PORT_VLAN, "frame_vlan": WRONG_VLAN})
    dropped = Finding("packets-dropped", {"total": drops, "groups": [
        {"component_id": victim.component.id, "reason": 9, "direction": "Rx", "count": drops}]})
    return host.story([finding, dropped], facts={"drops": host.drops_json(), "switch_component": SWITCH_ID,
                                                 "victim": {"ip": victim.ip, "mac": victim.mac}},
                      bulk_packets=host.bulk_packets(good or None))


SCENARIO = Scenario(
    name="vlan-mismatch",
    title="vmSwitch drops by VLAN mismatch (Filtered VLAN)",
    summary="A container vmNIC on access VLAN 10 receives frames tagged VLAN 20: pktmon drops with reason 9 at the "
            "vmNIC, ndiscap 1003 shows VLAN 20 in the NBL's OOB data.",
    build=build,
    seed=404,
    hosts=2,
)
