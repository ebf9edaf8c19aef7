"""RDMA on a host vNIC: a converged host gives its storage vNIC "vEthernet (SMB1)" an RDMA weight of
100, so SMB Direct (SMB over RDMA) between this host and its storage peers runs on the NIC's RDMA
engine (NDK): it never enters the host's TCP/IP stack or the vSwitch data path, and pktmon captures
none of it while the VMs' ordinary traffic is captured as usual. The missing SMB traffic is bypass
by design, not loss.

Evidence: VmSwitch 5 / 17 for the host vNIC and its port, 255 with RdmaWeight 100 and FailReason 0
for that port and NIC; pktmon packets for the VMs only, none to or from the storage address.
"""

from __future__ import annotations

from diag.synth import vmswitch
from diag.synth.scenarios.base import (MS, ContainerHost, Finding, HostConfig, Params, Scenario, Story, add_event,
                                       port_name)

SWITCH_FRIENDLY = "ConvergedSwitch"
SMB_VNIC = "SMB1"
SMB_ADDRESS = "10.71.1.11"  # the storage vNIC's address: no packet to or from it is captured
RDMA_WEIGHT = 100


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name=SWITCH_FRIENDLY, subnet="10.70.0", host_ip="10.70.0.2")
    config = HostConfig(host)
    t = config.vmswitch_ports(host.start - 900 * MS)
    switch = {"SwitchName": port_name(host.rng), "SwitchFName": SWITCH_FRIENDLY}
    nic, port = port_name(host.rng), port_name(host.rng)
    add_event(host.builder, t, vmswitch, vmswitch.EVENT_NIC_CREATED,
              vmswitch.encode(vmswitch.EVENT_NIC_CREATED, NicName=nic, NicFName=SMB_VNIC))
    add_event(host.builder, t + 10, vmswitch, vmswitch.EVENT_NIC_CONNECTED, vmswitch.encode(
        vmswitch.EVENT_NIC_CONNECTED, NicName=nic, NicFName=SMB_VNIC, PortName=port, PortFName=port, **switch))
    add_event(host.builder, t + 20, vmswitch, vmswitch.EVENT_PORT_RDMA_WEIGHT, vmswitch.encode(
        vmswitch.EVENT_PORT_RDMA_WEIGHT, Status=0, PortName=port, PortFName=port, NicName=nic, NicFName=SMB_VNIC,
        RdmaWeight=RDMA_WEIGHT, FailReason=0))
    packets = host.healthy_traffic()
    finding = Finding("rdma-offload-bypass", {
        "switch": SWITCH_FRIENDLY, "port": port, "nic": nic, "nic_friendly_name": SMB_VNIC,
        "rdma_weight": RDMA_WEIGHT, "smb_address": SMB_ADDRESS, "smb_direct_packets_captured": 0,
        "packets_captured": packets})
    return host.story([finding], facts={"packets": packets, "drops": []})


SCENARIO = Scenario(
    name="rdma-host-vnic",
    title="RDMA on a host vNIC: SMB Direct bypasses the host capture",
    summary="VmSwitch 255 shows RdmaWeight 100 on the SMB1 host vNIC's port; pktmon captures the VMs' traffic and "
            "none of the storage traffic, which runs over RDMA. Bypass, not loss.",
    build=build,
    seed=1103,
    hosts=2,
)
