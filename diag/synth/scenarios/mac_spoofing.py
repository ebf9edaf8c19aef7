"""MAC spoofing protection drops: containers behind a transparent network inside a VM send frames
with their own MAC addresses, but the VM's vmNIC does not allow MAC spoofing, so the vSwitch drops
them (reason 16, "Spoofed MAC address is not allowed").

Evidence: pktmon drops 170 at the vSwitch with reason 16, the frames' source MAC differing from the
vmNIC's MAC (pktmon property 70); VmSwitch 89 port security with AllowMacSpoofing = 0 for that port.
"""

from __future__ import annotations

from diag.synth import pktmon as pm
from diag.synth.bulk import Hop
from diag.synth.frames import udp_frame
from diag.synth.scenarios.base import (GATEWAY_MAC, MS, NIC_ID, SWITCH_ID, TX, ContainerHost, Finding, HostConfig,
                                       Params, Scenario, Story)

DROP_LOCATION = 0xE0002A17
NESTED_MACS = ("00-15-5d-9c-21-01", "00-15-5d-9c-21-02")


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="External", subnet="10.20.0", host_ip="10.20.0.2")
    config = HostConfig(host)
    config.vmswitch_ports(host.start - 900 * MS, allow_mac_spoofing=False)
    vm = host.workloads[0]
    host.healthy_traffic()
    drops = max(4, int(params.rate * params.duration * 0.1))
    for n, t in enumerate(host.times(drops)):
        spoofed = NESTED_MACS[n % len(NESTED_MACS)]
        frame = udp_frame(spoofed, GATEWAY_MAC, f"10.20.1.{20 + n % 2}", "10.20.0.53", 49152 + n, 53, b"\x12\x34" * 8,
                          ident=0x7000 + n)
        host.capture.packet(t, [Hop(vm.component.id, TX), Hop(SWITCH_ID, TX, 1)], frame, cpu=n % 2,
                            drop_reason=pm.DropReason.MAC_SPOOFING, drop_location=DROP_LOCATION)
    finding = Finding("mac-spoofing", {
        "component_id": SWITCH_ID, "reason": 16, "count": drops, "vmnic": vm.component.description,
        "vmnic_mac": vm.mac, "source_macs": sorted(NESTED_MACS), "allow_mac_spoofing": False,
        "port": config.ports[vm.index]})
    dropped = Finding("packets-dropped", {"total": drops, "groups": [
        {"component_id": SWITCH_ID, "reason": 16, "direction": "Tx", "count": drops}]})
    return host.story([finding, dropped], facts={"drops": host.drops_json(), "nic_component": NIC_ID})


SCENARIO = Scenario(
    name="mac-spoofing",
    title="MAC spoofing protection drops (nested containers behind a VM's vmNIC)",
    summary="Frames with source MACs that are not the vmNIC's are dropped at the vSwitch with reason 16; "
            "VmSwitch 89 shows AllowMacSpoofing = 0 on the port.",
    build=build,
    seed=505,
    hosts=2,
)
