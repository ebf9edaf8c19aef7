"""An SDN host where VFP, the switch extension, decides the packets' fate on three tenant VM ports:

* VM 1's outbound connections to a database (10.0.0.20:1433) match a Block rule of its ACL layer
  (``ACL_ENDPOINT_LAYER`` / ``ACL_ENDPOINT_GROUP_OUT`` / ``DenySqlOut``): VFP blocks them. Its web
  traffic matches an Allow rule and is encapsulated (VXLAN, VNI 5001) toward the remote host;
* VM 2 sends TCP from a MAC address its port does not own: VFP's MAC guard drops it (55, reason 9),
  and pktmon logs the same packets dropped at the vSwitch with reason 709 "Failed MAC guard";
* VM 3's packets match the port's MapEncap rule, but VFP never encapsulates them, while it does for VM 1
  (so the transform keyword was on): its overlay traffic leaves unencapsulated, or not at all.
VM 1's NAT port binding is created and released (facts only).

Evidence: VfpExt 101 (rule match: layer, group, rule, rule type Block / Allow / MapEncap), 55 (L4 drop,
MAC guard), 154/155 (encap / decap), 207 (NAT port binding), ports named by a string as current hosts
name them; pktmon drops (709) at the vSwitch. The VFP layouts are the NetMon parser's (2015) with the
port name in the port id's place (see ``diag.synth.vfp``): UNCONFIRMED against a real event.
"""

from __future__ import annotations

from diag.synth import vfp
from diag.synth.bulk import Hop
from diag.synth.frames import tcp_frame
from diag.synth.scenarios.base import (MS, SWITCH_ID, TX, ContainerHost, Finding, Params, Scenario, Story, add_event,
                                       port_name)

LOCAL_PA, REMOTE_PA = "192.168.50.4", "192.168.50.5"
PA_MAC, ROUTER_MAC = "00-15-5D-4A-00-01", "00-1D-D8-B7-1C-01"
VNI = 5001
DB = ("10.0.0.20", 1433)
WEB_PEER = "10.0.0.30"
ACL_LAYER, ACL_GROUP_OUT = "ACL_ENDPOINT_LAYER", "ACL_ENDPOINT_GROUP_OUT"
BLOCK_RULE, ALLOW_RULE = "DenySqlOut", "AllowWebOut"
VNET_LAYER, VNET_GROUP, ENCAP_RULE = "VNET_ENCAP_LAYER", "VNET_GROUP_OUT", "VnetEncap5001"
SPOOFED_MAC = "00-15-5D-9C-21-07"
MAC_GUARD_PKTMON = 709  # pktmon's Drop_MacGuard
DROP_LOCATION = 0xE0007A09


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="SDNSwitch", subnet="10.0.0", host_ip=LOCAL_PA)
    b = host.builder
    ports = {w.index: port_name(host.rng) for w in host.workloads}
    blocked_vm, guarded_vm, unencapsulated_vm = host.workloads[0], host.workloads[1], host.workloads[-1]
    host.healthy_traffic()
    total = max(6, int(params.rate * params.duration * 0.1))

    blocked = 0
    for n, t in enumerate(host.times(total)):
        add_event(b, t, vfp, vfp.EVENT_V4_RULE_MATCH, vfp.encode_rule_match(
            port=ports[blocked_vm.index], direction=vfp.OUTBOUND, layer=ACL_LAYER, group=ACL_GROUP_OUT,
            rule=BLOCK_RULE, rule_type=vfp.RULE_BLOCK, src=blocked_vm.ip, dst=DB[0], sport=50100 + n, dport=DB[1]),
            cpu=n % 2)
        blocked += 1
    for n, t in enumerate(host.times(total)):
        port = ports[blocked_vm.index]
        add_event(b, t, vfp, vfp.EVENT_V4_RULE_MATCH, vfp.encode_rule_match(
            port=port, direction=vfp.OUTBOUND, layer=ACL_LAYER, group=ACL_GROUP_OUT, rule=ALLOW_RULE,
            rule_type=vfp.RULE_ALLOW, src=blocked_vm.ip, dst=WEB_PEER, sport=50300 + n, dport=443), cpu=n % 2)
        add_event(b, t + 10, vfp, vfp.EVENT_V4_RULE_MATCH, vfp.encode_rule_match(
            port=port, direction=vfp.OUTBOUND, layer=VNET_LAYER, group=VNET_GROUP, rule=ENCAP_RULE,
            rule_type=vfp.RULE_MAP_ENCAP, src=blocked_vm.ip, dst=WEB_PEER, sport=50300 + n, dport=443), cpu=n % 2)
        add_event(b, t + 20, vfp, vfp.EVENT_ENCAP, vfp.encode_encap(
            port=port, direction=vfp.OUTBOUND, src_mac=PA_MAC, dst_mac=ROUTER_MAC, src=LOCAL_PA, dst=REMOTE_PA,
            encap_type=vfp.ENCAP_VXLAN, isolation_id=VNI), cpu=n % 2)
        add_event(b, t + 900, vfp, vfp.EVENT_DECAP, vfp.encode_decap(port=port, direction=vfp.INBOUND), cpu=n % 2)
    not_encapsulated = 0
    for n, t in enumerate(host.times(total)):
        add_event(b, t, vfp, vfp.EVENT_V4_RULE_MATCH, vfp.encode_rule_match(
            port=ports[unencapsulated_vm.index], direction=vfp.OUTBOUND, layer=VNET_LAYER, group=VNET_GROUP,
            rule=ENCAP_RULE, rule_type=vfp.RULE_MAP_ENCAP, src=unencapsulated_vm.ip, dst=WEB_PEER, sport=50500 + n,
            dport=443), cpu=n % 2)
        not_encapsulated += 1

    guard_drops = max(4, total // 2)
    for n, t in enumerate(host.times(guard_drops)):
        sport = 50700 + n
        frame = tcp_frame(SPOOFED_MAC, ROUTER_MAC, guarded_vm.ip, WEB_PEER, sport, 443, ident=0x7100 + n, flags=0x02)
        host.capture.packet(t, [Hop(guarded_vm.component.id, TX), Hop(SWITCH_ID, TX, 1)], frame, cpu=n % 2,
                            drop_reason=MAC_GUARD_PKTMON, drop_location=DROP_LOCATION)
        add_event(b, t + 15, vfp, vfp.EVENT_L4V4_DROP, vfp.encode_l4v4_drop(
            port=ports[guarded_vm.index], direction=vfp.OUTBOUND, reason=vfp.REASON_MAC_GUARD, src_mac=SPOOFED_MAC,
            dst_mac=ROUTER_MAC, src=guarded_vm.ip, dst=WEB_PEER, protocol=6, sport=sport, dport=443, syn=True),
            cpu=n % 2)

    t = host.start + 100 * MS
    for action in (vfp.BINDING_CREATING, vfp.BINDING_DELETING):
        add_event(b, t, vfp, vfp.EVENT_V4_NAT_PORT_BINDING, vfp.encode_nat_port_binding(
            port=ports[blocked_vm.index], action=action, internal=blocked_vm.ip, internal_port=50300,
            external=LOCAL_PA, external_port=61000))
        t += 400 * MS

    rule_blocked = Finding("vfp-rule-blocked", {
        "port": ports[blocked_vm.index], "layer": ACL_LAYER, "group": ACL_GROUP_OUT, "rule": BLOCK_RULE,
        "count": blocked, "destination": f"{DB[0]} (TCP {DB[1]})"})
    guard = Finding("vfp-port-drops", {
        "port": ports[guarded_vm.index], "reason": vfp.REASON_MAC_GUARD, "reason_name": "MAC guard",
        "count": guard_drops, "pktmon_drops": guard_drops, "pktmon_reason": f"{MAC_GUARD_PKTMON} Failed MAC guard"})
    missing = Finding("vfp-encap-missing", {
        "port": ports[unencapsulated_vm.index], "encap_rule_matches": not_encapsulated, "encapsulated": 0})
    dropped = Finding("packets-dropped", {"total": guard_drops, "groups": [
        {"component_id": SWITCH_ID, "reason": MAC_GUARD_PKTMON, "direction": "Tx", "count": guard_drops}]})
    return host.story([rule_blocked, guard, missing, dropped], facts={
        "drops": host.drops_json(), "vfp_ports": {str(k): v for k, v in ports.items()}})


SCENARIO = Scenario(
    name="vfp-policy-block",
    title="VFP blocks a VM's database connections, drops another's spoofed packets, and never encapsulates a third's",
    summary="VfpExt 101 with a Block rule (layer/group/rule named) for 10.0.0.20:1433, 55 MAC-guard drops joined to "
            "pktmon's 709 drops of the same packets, MapEncap matches without an Encap (154) on one port.",
    build=build,
    seed=2323,
    hosts=3,
    min_hosts=3,
)
