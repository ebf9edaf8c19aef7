"""A container host whose Host Network Service fails: HNS creates the NAT network and the first
containers' endpoints, but the endpoint of the next container fails with "Element not found"
(HRESULT 0x80070490) three times as the runtime retries, and the port-mapping policy of the
first container's endpoint cannot be applied. The host's uplink is an LBFO team, whose provider
(Microsoft-Windows-MsLbfoEventProvider) logs events that no layer can decode: the trace carries no
schema for them and no public manifest exists.

Evidence: HNS events decoded from the EventMetadata schemas the trace embeds: NetworkCreate and
EndpointCreate with HResult 0, EndpointCreate with HResult 0x80070490 (x3),
EndpointPolicyApplyFailed (no status); LBFO events 10 and 11 with no schema anywhere; pktmon and
TCPIP show only the containers that got an endpoint. The HNS event ids, names and fields are
INVENTED (see diag/synth/hns.py); the LBFO ids are the message table's (10 "DriverEntry exiting", 11
"Member created": named, not troubled, so no provider event), their payloads invented. Only the
names, statuses and the LBFO events' being undecodable are what the diagnosis reads.
"""

from __future__ import annotations

import struct
import uuid

from diag.synth import hns
from diag.synth.scenarios.base import MS, SECOND, ContainerHost, Finding, HostConfig, Params, Scenario, Story

LBFO_PROVIDER = uuid.UUID("b72c6994-9fe0-45ad-83b3-8f5885f20e0e")
LBFO_PROVIDER_NAME = "Microsoft-Windows-MsLbfoEventProvider"
LBFO_EVENTS = {10: 3, 11: 2}  # event id (libyal's message table) -> events written
TEAM_NAME = "HostTeam"
RETRIES = 3
FAILED_POLICY = "PortMapping"


def lbfo_payload(event_id: int, n: int) -> bytes:
    """Opaque bytes: a team name and a member index, as an undocumented provider might log them."""
    return TEAM_NAME.encode("utf-16-le") + b"\0\0" + struct.pack("<II", event_id, n)


def build(params: Params) -> Story:
    host = ContainerHost(params, subnet="172.24.0", first_compartment=2, workloads=params.hosts - 1)
    host.builder.describe(hns.LAYOUTS.values())
    config = HostConfig(host)
    t = config.winnat_instance(host.start - 1900 * MS, "ContainerNAT", "172.24.0.0/20")
    t = config.vmswitch_ports(t)
    config.tcpip_state(t)
    rng, b = host.rng, host.builder
    network = uuid.UUID(int=rng.getrandbits(128), version=4)
    t = host.start - 2 * SECOND
    b.add(t, hns.PROVIDER, hns.EVENT_NETWORK_CREATE, hns.encode_network_create(
        network=network, name="nat", network_type="NAT"), level=4)
    endpoints = []
    for w in host.workloads:
        t += 50 * MS
        endpoints.append(uuid.UUID(int=rng.getrandbits(128), version=4))
        b.add(t, hns.PROVIDER, hns.EVENT_ENDPOINT_CREATE, hns.encode_endpoint_create(
            endpoint=endpoints[-1], network=network, address=w.ip), level=4)
    b.add(t + 20 * MS, hns.PROVIDER, hns.EVENT_POLICY_APPLY_FAILED, hns.encode_policy_apply_failed(
        endpoint=endpoints[0], policy=FAILED_POLICY), level=2)
    failing_ip = f"172.24.0.{11 + len(host.workloads)}"
    for k in range(RETRIES):
        b.add(host.start + (1 + 5 * k) * SECOND, hns.PROVIDER, hns.EVENT_ENDPOINT_CREATE, hns.encode_endpoint_create(
            endpoint=uuid.UUID(int=rng.getrandbits(128), version=4), network=network, address=failing_ip,
            hresult=hns.E_NOT_FOUND), level=2)
    for event_id, count in LBFO_EVENTS.items():
        for n, at in enumerate(host.times(count)):
            b.add(at, LBFO_PROVIDER, event_id, lbfo_payload(event_id, n), level=4)
    packets = host.healthy_traffic()
    failures = Finding("sdn-provider-failure", {"events": [
        {"provider": hns.PROVIDER_NAME, "event_name": hns.event_name(hns.EVENT_ENDPOINT_CREATE),
         "event_id": hns.EVENT_ENDPOINT_CREATE, "status": hns.E_NOT_FOUND, "count": RETRIES},
        {"provider": hns.PROVIDER_NAME, "event_name": hns.event_name(hns.EVENT_POLICY_APPLY_FAILED),
         "event_id": hns.EVENT_POLICY_APPLY_FAILED, "status": None, "count": 1}]})
    undecoded = Finding("provider-not-decoded", {"providers": [
        {"name": LBFO_PROVIDER_NAME, "guid": str(LBFO_PROVIDER), "status": "present but not decoded",
         "events": sum(LBFO_EVENTS.values()), "decoded": 0, "not_decoded": sum(LBFO_EVENTS.values())}]})
    return host.story([failures, undecoded], facts={
        "packets": packets, "drops": [], "failing_endpoint_address": failing_ip,
        "healthy_endpoints": [w.ip for w in host.workloads]})


SCENARIO = Scenario(
    name="sdn-host-failures",
    title="HNS fails to create a container endpoint; LBFO events cannot be decoded",
    summary="HNS (schema embedded) reports EndpointCreate failing with 0x80070490 three times and a port-mapping "
            "policy that could not be applied; the LBFO team provider logs events no layer can decode.",
    build=build,
    seed=1717,
    hosts=3,
    min_hosts=2,
)
