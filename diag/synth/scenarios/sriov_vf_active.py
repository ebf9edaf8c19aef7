"""SR-IOV: one VM's vmNIC has a virtual function (IovOffloadWeight 100), so its traffic goes from
the VM straight to the physical NIC's VF and never crosses the host's vSwitch. The host's pktmon
capture sees the other VMs' packets and none of this one's, though the VM is busy. That is bypass,
not loss: the host cannot see that traffic, and no drop happened.

Evidence: VmSwitch 17 (the VM's NIC on its port), 94 with IovOffloadWeight = 100 for that port,
pktmon's component for the vmNIC with no packets and zero counters; traffic for the others. 94 is
"Failed to complete offload policy operation" (Microsoft's NetMon parser), here with FailReason 0
("Unknown"): no public event reports an applied IovWeight, so the weight is the one the port asked
for, the operation is a policy failure, and the bypass verdict is given with low confidence.
"""

from __future__ import annotations

from diag.synth.scenarios.base import MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story, port_name

VM_NAMES = ("vm-sql01", "vm-web01", "vm-web02", "vm-app01")


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="External", subnet="10.30.0", host_ip="10.30.0.2")
    for w in host.workloads:
        w.component.description = f"Network Adapter ({VM_NAMES[w.index % len(VM_NAMES)]})"
        w.component.compartment = None
    config = HostConfig(host)
    vf_vm = host.workloads[0]
    names = {w.index: VM_NAMES[w.index % len(VM_NAMES)] for w in host.workloads}
    switch_guid = port_name(host.rng)
    config.vmswitch_ports(host.start - 900 * MS, iov_weight={vf_vm.index: 100}, switch_guid=switch_guid)
    others = host.workloads[1:]
    packets = host.healthy_traffic(workloads=others)
    finding = Finding("sriov-offload-bypass", {
        "vm": names[vf_vm.index], "vmnic_component_id": vf_vm.component.id, "port": config.ports[vf_vm.index],
        "iov_offload_weight": 100, "host_packets_for_vm": 0, "mac": vf_vm.mac, "ip": vf_vm.ip})
    policy = Finding("vport-policy-failure", {"ports": [
        {"port_name": config.ports[vf_vm.index], "nic_friendly_name": vf_vm.alias.removeprefix("vEthernet (")
         .removesuffix(")"), "switch_name": switch_guid, "failures": 1, "vlan_failures": 0, "fail_reason": 0}]})
    return host.story([finding, policy], bulk_packets=host.bulk_packets(others),
                      facts={"packets": packets, "drops": [], "vms": names})


SCENARIO = Scenario(
    name="sriov-vf-active",
    title="SR-IOV VF active: the host sees no NBLs for a VM's traffic",
    summary="VmSwitch 94 (an offload operation that failed) asks for IovOffloadWeight 100 on vm-sql01's port; pktmon "
            "on the host sees the other VMs' traffic and none of vm-sql01's: bypass or idle, not loss.",
    build=build,
    seed=707,
    hosts=3,
    min_hosts=2,
)
