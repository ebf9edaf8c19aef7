"""Configuration the vSwitch refuses: mid-trace a configuration run re-applies the switch's settings
and three of them fail. The first container's port is an access port on VLAN 10 and is given a
VirtualSubnetId as well, which vmswitch refuses (a port cannot have both); setting the second
container's VLAN fails with STATUS_INVALID_PARAMETER; and a switch-level policy set (a switch
property the installed extension does not support) fails with STATUS_NOT_SUPPORTED. Traffic keeps
flowing with the settings the ports already had: nothing is dropped.

Evidence: VmSwitch 88 PortSecurityPolicyFailed for port 1 (the settings it tried, VirtualSubnetId
5001, and FailReason 31), 73 PortVlanSetFailed for port 2 (Status 0xC000000D), 80
SwitchPolicyFailed for the switch (Operation 1 "Policy Set", Status 0xC00000BB); the vmNICs'
pktmon VLAN property is 10; 89 before the run shows the settings in force (no VirtualSubnetId).
"""

from __future__ import annotations

import uuid

from diag.synth import vmswitch
from diag.synth.scenarios.base import (MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story, add_event,
                                       port_name)

PORT_VLAN, REFUSED_VSID = 10, 5001
VSID_WITH_VLAN = 31  # FailReason: "A port cannot have a VirtualSubnetId and VLAN configured at the same time"
STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED = 0xC000000D, 0xC00000BB
POLICY_SET = 1


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="External", subnet="10.60.0", vlan=PORT_VLAN, host_ip="10.60.0.2")
    config = HostConfig(host)
    switch_guid = port_name(host.rng)
    config.vmswitch_ports(host.start - 900 * MS, switch_guid=switch_guid)
    host.healthy_traffic()
    first, second = host.workloads[0], host.workloads[1]
    at = host.start + (host.end - host.start) // 2

    def names(w) -> dict[str, str]:
        port = config.ports[w.index]
        return {"PortName": port, "PortFName": port, "SwitchName": switch_guid, "SwitchFName": host.switch_name}

    add_event(host.builder, at, vmswitch, vmswitch.EVENT_PORT_SECURITY_FAILED, vmswitch.encode(
        vmswitch.EVENT_PORT_SECURITY_FAILED, **names(first), VirtualSubnetId=REFUSED_VSID, FailReason=VSID_WITH_VLAN))
    add_event(host.builder, at + 40 * MS, vmswitch, vmswitch.EVENT_PORT_VLAN_FAILED, vmswitch.encode(
        vmswitch.EVENT_PORT_VLAN_FAILED, **names(second), Status=STATUS_INVALID_PARAMETER, UniqueEvent=1))
    add_event(host.builder, at + 90 * MS, vmswitch, vmswitch.EVENT_SWITCH_POLICY_FAILED, vmswitch.encode(
        vmswitch.EVENT_SWITCH_POLICY_FAILED, SwitchName=switch_guid, SwitchFName=host.switch_name,
        Status=STATUS_NOT_SUPPORTED,
        PropertyId=uuid.UUID(int=host.rng.getrandbits(128), version=4),
        InstanceId=uuid.UUID(int=host.rng.getrandbits(128), version=4), UniqueEvent=1, Operation=POLICY_SET))

    def nic_friendly(w) -> str:
        return w.alias.removeprefix("vEthernet (").removesuffix(")")

    port_failures = Finding("vport-policy-failure", {"ports": [
        {"port_name": config.ports[first.index], "nic_friendly_name": nic_friendly(first), "switch_name": switch_guid,
         "failures": 1, "vlan_failures": 0, "fail_reason": VSID_WITH_VLAN, "refused_vsid": REFUSED_VSID},
        {"port_name": config.ports[second.index], "nic_friendly_name": nic_friendly(second), "switch_name": switch_guid,
         "failures": 0, "vlan_failures": 1, "status": STATUS_INVALID_PARAMETER},
    ]})
    switch_failures = Finding("vswitch-operation-failure", {
        "switch_name": switch_guid, "friendly_name": host.switch_name, "failures": 1, "event": "SwitchPolicyFailed",
        "status": STATUS_NOT_SUPPORTED, "operation": POLICY_SET})
    return host.story([port_failures, switch_failures], facts={"drops": [], "port_vlan": PORT_VLAN})


SCENARIO = Scenario(
    name="vswitch-policy-failures",
    title="Port security, VLAN and switch policy settings the vSwitch refuses",
    summary="VmSwitch 88 (VirtualSubnetId on a VLAN port, FailReason 31), 73 (VLAN set, 0xC000000D) and 80 "
            "(switch policy set, 0xC00000BB) mid-trace; traffic is unaffected.",
    build=build,
    seed=1313,
    hosts=2,
    min_hosts=2,
)
