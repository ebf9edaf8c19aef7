"""A container stops while it is being served: its vmNIC loses its media connection and stops being
operational mid-trace, and a few seconds later its switch port is deleted (the container, and its
HNS endpoint, removed). Requests that keep arriving for it in between reach the vSwitch and are
dropped there with reason 33 ("Destination NIC is disabled"); once the port is gone no more
traffic is addressed to it (the endpoint has left HNS's load balancing). The other containers are
served throughout.

Evidence: VmSwitch 5/17/89 for every vmNIC at the start (created, bound to its port, port
security); then for the stopped one 22 MediaDisconnected and 24 NicNonOperational, 19 (the NIC
unbound from its port), 69 PortDeleted and 71 PortDeleteComplete; pktmon drops 170 at the vSwitch
(inbound, edge 1) with reason 33 for its requests between 24 and 69, and no packet for it after 71.

Not modelled: what the vSwitch does with a frame for a MAC whose port no longer exists (flooded or
dropped, and with which reason, is not something the public sources say), and whether pktmon's
component rundown at stop still lists the deleted vmNIC (here it does, as it was at the start).
"""

from __future__ import annotations

from diag.synth import pktmon as pm
from diag.synth import vmswitch
from diag.synth.scenarios.base import (MS, SECOND, SWITCH_ID, ContainerHost, Finding, HostConfig, Params, Scenario,
                                       Story, add_event, port_name)

DROP_LOCATION = 0xE0002A21
NOT_SERVED_SHARE = 0.5  # of the victim's share of the request rate that still arrives once its NIC is down


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="nat", subnet="172.24.0", host_ip="172.24.0.1")
    config = HostConfig(host)
    switch_guid = port_name(host.rng)
    config.vmswitch_ports(host.start - 900 * MS, switch_guid=switch_guid)
    victim, others = host.workloads[0], host.workloads[1:]
    span = host.end - host.start
    down_at = host.start + int(span * 0.4)
    gone_at = down_at + min(3 * SECOND, span // 4)

    per_workload = params.rate / len(host.workloads)
    host.healthy_traffic(workloads=others, rate=params.rate - per_workload)
    host.healthy_traffic(end=down_at, workloads=[victim], rate=per_workload)

    nic, port = config.nics[victim.index], config.ports[victim.index]
    friendly = victim.alias.removeprefix("vEthernet (").removesuffix(")")
    nic_names = {"NicName": nic, "NicFName": friendly}
    port_names = {"PortName": port, "PortFName": port, "SwitchName": switch_guid, "SwitchFName": host.switch_name}
    add_event(host.builder, down_at, vmswitch, vmswitch.EVENT_MEDIA_DISCONNECTED,
              vmswitch.encode(vmswitch.EVENT_MEDIA_DISCONNECTED, **nic_names))
    add_event(host.builder, down_at + 2 * MS, vmswitch, vmswitch.EVENT_NIC_NON_OPERATIONAL,
              vmswitch.encode(vmswitch.EVENT_NIC_NON_OPERATIONAL, **nic_names))

    drops = max(4, int(per_workload * NOT_SERVED_SHARE * (gone_at - down_at) / SECOND))
    for n, t in enumerate(host.times(drops, down_at + 5 * MS, gone_at)):
        host.capture.packet(t, host.inbound_hops(victim)[:3], host.web_request(victim, 10_000 + n), cpu=n % 2,
                            drop_reason=pm.DropReason.DESTINATION_NIC_DISABLED, drop_location=DROP_LOCATION)

    add_event(host.builder, gone_at, vmswitch, vmswitch.EVENT_NIC_DISCONNECTED,
              vmswitch.encode(vmswitch.EVENT_NIC_DISCONNECTED, **nic_names))
    for offset, event_id in ((10 * MS, vmswitch.EVENT_PORT_DELETED), (20 * MS, vmswitch.EVENT_PORT_DELETE_COMPLETE)):
        add_event(host.builder, gone_at + offset, vmswitch, event_id,
                  vmswitch.encode(event_id, **port_names, Flags=0, OwnerService=0))

    down = Finding("vmnic-disconnected", {
        "nics_down": 1, "nic_name": nic, "nic_friendly_name": friendly, "port_name": port, "switch_name": switch_guid,
        "media_connected": False, "operational": False, "down_filetime": down_at,
        "vmnic_component_id": victim.component.id, "ip": victim.ip, "mac": victim.mac})
    deleted = Finding("vport-deleted", {
        "ports_deleted": 1, "port_name": port, "switch_name": switch_guid, "nic_friendly_name": friendly,
        "deleted_filetime": gone_at + 10 * MS})
    dropped = Finding("packets-dropped", {"total": drops, "groups": [
        {"component_id": SWITCH_ID, "reason": int(pm.DropReason.DESTINATION_NIC_DISABLED), "direction": "Rx",
         "count": drops}]})
    return host.story([down, deleted, dropped], bulk_packets=host.bulk_packets(others),
                      facts={"drops": host.drops_json()})


SCENARIO = Scenario(
    name="vmnic-disconnected",
    title="A container's vmNIC goes down and its switch port is deleted mid-trace",
    summary="VmSwitch 22/24 for one container's vmNIC, then 69/71 for its port; requests for it in between are "
            "dropped at the vSwitch with reason 33 (destination NIC disabled).",
    build=build,
    seed=1212,
    hosts=3,
    min_hosts=2,
)
