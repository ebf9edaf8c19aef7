"""A Hyper-V Network Virtualization lookup failure: a tenant VM (virtual subnet 5001) sends to a
customer address for which the host has no lookup record (the record for 10.0.0.9 was never
pushed to this host). Network virtualization cannot find the provider address to encapsulate
to, logs a lookup failure and drops the packet; traffic to addresses it knows leaves NVGRE-
encapsulated.

Evidence: Microsoft-Windows-Wnv 1006 locator records for the known customer addresses, 1010
lookup failures ("Destination locator record missing") and 1012 drops for 10.0.0.5 -> 10.0.0.9;
pktmon drops at the vSwitch with reason 29 (Windows Network Virtualization error) and NVGRE
frames (GRE key = VSID) for the working flow. The Wnv layouts come from Microsoft's NetMon parser
(see ``diag.synth.wnv``) and are embedded as EventMetadata.
"""

from __future__ import annotations

import uuid

from diag.synth import pktmon as pm
from diag.synth import wnv
from diag.synth.bulk import Hop
from diag.synth.frames import mac, nvgre_frame, tcp_frame
from diag.synth.scenarios.base import (BULK_FLOWS, MS, NIC_ID, SWITCH_ID, TX, ContainerHost, Finding, Params,
                                       Scenario, Story, add_event, bulk_body)

VSID = 5001
LOCAL_PA, REMOTE_PA = "192.168.50.4", "192.168.50.5"
PA_MAC, ROUTER_MAC = "00-15-5d-4a-00-01", "00-1d-d8-b7-1c-01"
KNOWN_REMOTE = ("10.0.0.7", "00-1d-d8-f4-10-07")
MISSING_CA = "10.0.0.9"
VIRTUAL_GATEWAY_MAC = "00-1d-d8-b7-1c-02"
DROP_LOCATION = 0xE0005A21


def build(params: Params) -> Story:
    host = ContainerHost(params, switch_name="SDNSwitch", subnet="10.0.0", host_ip=LOCAL_PA)
    for w in host.workloads:
        w.component.description = f"Network Adapter (tenant-vm{w.index + 1})"
        w.component.vsid = VSID
        w.component.compartment = None
    host.builder.describe(wnv.LAYOUTS.values(), wnv.MAPS)
    customer = uuid.UUID(int=host.rng.getrandbits(128), version=4)
    t = host.start - 900 * MS
    for ca, ca_mac, pa in [(w.ip, w.mac, LOCAL_PA) for w in host.workloads] + [(*KNOWN_REMOTE, REMOTE_PA)]:
        add_event(host.builder, t, wnv, wnv.EVENT_LOCATOR_RECORD_CREATED, wnv.encode_locator_record(
            customer=ca, provider=pa, vsid=VSID, customer_id=customer, customer_mac=mac(ca_mac),
            description=f"Tenant {VSID}"))
        t += 100
    sender = host.workloads[0]
    total = max(8, int(params.rate * params.duration))
    failures = 0
    for n, t in enumerate(host.times(total)):
        hops = [Hop(sender.component.id, TX), Hop(SWITCH_ID, TX, 1), Hop(SWITCH_ID, TX, 2), Hop(NIC_ID, TX)]
        if n % 3 == 0:
            inner = tcp_frame(sender.mac, VIRTUAL_GATEWAY_MAC, sender.ip, MISSING_CA, 51000 + n, 445, ident=n,
                              seq=n, flags=0x02)
            host.capture.packet(t, hops[:2], inner, cpu=n % 2, drop_reason=pm.DropReason.WNV_ERROR,
                                drop_location=DROP_LOCATION)
            add_event(host.builder, t + 20, wnv, wnv.EVENT_LOOKUP_FAILURE, wnv.encode_lookup_failure(
                source=sender.ip, destination=MISSING_CA, vsid=VSID, source_mac=mac(sender.mac),
                destination_mac=mac(VIRTUAL_GATEWAY_MAC), source_record=sender.ip), cpu=n % 2)
            add_event(host.builder, t + 40, wnv, wnv.EVENT_PACKET_DROP, wnv.encode_packet_drop(
                source=sender.ip, destination=MISSING_CA, vsid=VSID, source_mac=mac(sender.mac),
                destination_mac=mac(VIRTUAL_GATEWAY_MAC), source_pa=LOCAL_PA), cpu=n % 2)
            failures += 1
        else:
            inner = tcp_frame(sender.mac, KNOWN_REMOTE[1], sender.ip, KNOWN_REMOTE[0], 51000 + n, 445, ident=n,
                              seq=n * 1000, payload=bytes(300))
            outer = nvgre_frame(PA_MAC, ROUTER_MAC, LOCAL_PA, REMOTE_PA, VSID, inner, flow_id=n & 0xFF, ident=n)
            host.capture.packet(t, hops, [inner, inner, outer, outer], cpu=n % 2)
    finding = Finding("wnv-lookup-failure", {
        "vsid": VSID, "source_ca": sender.ip, "destination_ca": MISSING_CA, "count": failures,
        "reason": wnv.LOOKUP_DESTINATION_RECORD_MISSING, "reason_name": "Destination locator record missing"})
    dropped = Finding("packets-dropped", {"total": failures, "groups": [
        {"component_id": SWITCH_ID, "reason": 29, "direction": "Tx", "count": failures}]})
    bulk = []
    for n in range(BULK_FLOWS):
        inner = tcp_frame(sender.mac, KNOWN_REMOTE[1], sender.ip, KNOWN_REMOTE[0], 51000 + n, 445,
                          payload=bulk_body(host.rng, 1200))
        outer = nvgre_frame(PA_MAC, ROUTER_MAC, LOCAL_PA, REMOTE_PA, VSID, inner)
        bulk.append(host.capture.filler_packet([Hop(SWITCH_ID, TX, 2), Hop(NIC_ID, TX)], outer))
    return host.story([finding, dropped], bulk_packets=bulk,
                      facts={"drops": host.drops_json(), "provider_addresses": [LOCAL_PA, REMOTE_PA]})


SCENARIO = Scenario(
    name="wnv-lookup-failure",
    title="Network virtualization lookup failure for a customer address",
    summary="Tenant VM 10.0.0.5 (VSID 5001) sends to 10.0.0.9, which has no lookup record on this host: Wnv 1010 "
            "and 1012, pktmon drops with reason 29; known addresses leave NVGRE-encapsulated.",
    build=build,
    seed=1212,
    hosts=2,
)
