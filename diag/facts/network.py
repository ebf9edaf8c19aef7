"""Facts about the host's network and what happened to its packets (issue 4).

Every model is a frozen ``Fact`` with a ``kind`` literal, registered in ``FACT_MODELS`` by
``diag/facts/__init__.py``. Counts are bounded by what the host has (components, ports,
compartments, addresses, flows kept, drop reasons), never by the number of packets. ``evidence``
points at the events a fact was built from: ``{"time", "provider", "event_id", "buffer",
"offset"}`` (the record's buffer index in the file and its offset in that buffer) and, for pktmon,
``pkt_group_id``. Field names avoid ``id`` and ``sid``, which the rules engine reserves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from diag.facts.models import Fact
from diag.facts.overlap import SubnetOverlap
from diag.facts.sriov import VfPair

Scalar = Union[str, int, float, bool, None]
Count = Annotated[int, Field(ge=0)]
Evidence = Annotated[list[dict[str, Scalar]], Field(max_length=8)]
Names = Annotated[list[str], Field(max_length=64)]


class TraceSpan(Fact):
    """The trace as a whole: when, from which build, and how much of it wnvdiag could read."""

    kind: Literal["trace"] = "trace"
    os_build: int
    os_version: str
    start: datetime | None = None
    end: datetime | None = None
    duration_seconds: float | None = None
    cpu_count: Count = 0
    pointer_size: int = 8
    providers: Count = 0
    providers_not_decoded: Count = 0
    packet_events: Count = 0
    packet_paths: Count = 0
    paths_split: Count = Field(0, description="packets whose snapshots were too far apart in the file to join one path")
    host_info_files: Count = 0
    events_not_used: Count = Field(0, description="events of modelled providers decoded only by a generic layer")
    event_errors: Count = Field(0, description="decoded events the fact builder could not use")
    first_error: str | None = None
    not_kept: Count = Field(0, description="objects (ports, addresses, flows, route packets...) beyond the size limits")
    circular: bool = Field(False, description="the session logged to a circular file (it may have wrapped)")
    first_packet_delay_seconds: float | None = Field(
        None, description="seconds from the session start to the earliest packet snapshot kept in the file")
    payload_truncated: Count = Field(0, description="packet snapshots logged shorter than the packet (--pkt-size)")
    logged_size: int | None = Field(None, description="the largest logged size of a truncated snapshot (the size limit)")
    payload_truncated_percent: float | None = Field(None, description="truncated snapshots, % of packet events")


class ProviderCoverage(Fact):
    """One provider present in the trace, and how much of it was decoded."""

    kind: Literal["provider"] = "provider"
    guid: str
    name: str
    status: Literal["decoded", "partly decoded", "present but not decoded"]
    events: Count
    decoded: Count
    not_decoded: Count
    failed: Count
    first_error: str | None = None


class Component(Fact):
    """A pktmon component (driver instance in a binding stack) with its rundown properties."""

    kind: Literal["component"] = "component"
    component_id: int
    name: str
    description: str | None = None
    component_type: str
    type_code: int | None = None
    if_index: int | None = None
    mac: str | None = None
    vmswitch_name: str | None = None
    vlan: int | None = None
    vsid: int | None = None
    compartment_id: int | None = None
    addresses: Names = []
    packets: Count = 0
    drops: Count = 0
    counted_drops_in: Count = 0
    counted_drops_out: Count = 0


class VSwitch(Fact):
    """A Hyper-V virtual switch, from VmSwitch events."""

    kind: Literal["vswitch"] = "vswitch"
    switch_name: str
    friendly_name: str | None = None
    state: str = "seen"
    ports: Count = 0
    nvgre_offload: bool | None = None
    vxlan_offload: bool | None = None
    forwarding_extension: bool | None = None
    team_members: Count = 0
    failures: Count = 0
    last_failure: str | None = None
    evidence: Evidence = []


class VPort(Fact):
    """A vSwitch port and the NIC connected to it, with its security, VLAN and offload settings."""

    kind: Literal["vport"] = "vport"
    port_name: str
    port_friendly_name: str | None = None
    switch_name: str | None = None
    nic_name: str | None = None
    nic_friendly_name: str | None = None
    vm_name: str | None = None
    state: str = "seen"
    allow_mac_spoofing: bool | None = None
    dhcp_guard: bool | None = None
    router_guard: bool | None = None
    virtual_subnet_id: int | None = None
    storm_limit: int | None = None
    acl_rules: Count = 0
    vmq_weight: int | None = None
    iov_weight: int | None = None
    vlan_failures: Count = 0
    failures: Count = 0
    last_failure: str | None = None
    evidence: Evidence = []


class VNic(Fact):
    """A vmNIC / host vNIC / external NIC seen by the vSwitch, and its state."""

    kind: Literal["vnic"] = "vnic"
    nic_name: str
    nic_friendly_name: str | None = None
    switch_name: str | None = None
    port_name: str | None = None
    operational: bool | None = None
    media_connected: bool | None = None
    macs_prevented: Count = 0
    vlan_filter_failures: Count = 0
    failures: Count = 0
    last_failure: str | None = None
    evidence: Evidence = []


class MacMove(Fact):
    """A MAC address seen on two vSwitch ports (moved, or pinned and refused)."""

    kind: Literal["mac_move"] = "mac_move"
    mac: str
    from_port: str
    to_port: str
    prevented: bool
    count: Annotated[int, Field(ge=1)]
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    evidence: Evidence = []


class ProviderDrop(Fact):
    """Drops a provider other than pktmon reported, per place, reason and direction."""

    kind: Literal["drop"] = "drop"
    provider: str
    where: str
    direction: str = "unknown"
    reason_code: int | None = None
    reason_name: str
    count: Annotated[int, Field(ge=1)]
    packets: Count = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    evidence: Evidence = []


class DropRate(Fact):
    """How pktmon drops of one (component, reason, direction) were spread over time."""

    kind: Literal["drop_rate"] = "drop_rate"
    component_id: int
    component_name: str
    reason_code: int
    direction: str
    drops: Count
    active_seconds: float
    peak_per_second: float
    mean_per_second: float
    bucket_seconds: float
    series: Annotated[list[int], Field(max_length=64)] = []


class PacketPath(Fact):
    """One packet (PktGroupId, PktNumber) followed across components: a sampled complete path."""

    kind: Literal["packet_path"] = "packet_path"
    pkt_group_id: int
    pkt_number: int
    hops: Annotated[list[dict[str, Scalar]], Field(max_length=64)] = []
    hop_count: Count
    first_component: str
    last_component: str
    last_component_id: int
    dropped: bool
    path: str | None = Field(None, description="the hops as one line: component (direction) > ... (for rules' evidence)")
    drop_component: str | None = None
    drop_reason_code: int | None = None
    drop_reason_name: str | None = None
    drop_location: int | None = None
    duration_us: float | None = None
    start: datetime | None = None
    protocol: str | None = None
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None


class PacketRoute(Fact):
    """All packets that crossed the same sequence of component edges (a route through the host).

    ``route`` is ``component:edge`` per hop; ``dropped`` counts the packets whose path ended in a
    drop. Packets that stopped at ``last_component_id`` without a drop were not seen further."""

    kind: Literal["packet_route"] = "packet_route"
    route: str
    component_ids: Annotated[list[int], Field(max_length=64)] = []
    hop_count: Count
    first_component: str
    last_component: str
    last_component_id: int
    last_edge_id: int
    packets: Count
    dropped: Count
    drop_reason_code: int | None = None
    mean_duration_us: float | None = None
    max_duration_us: float | None = None


class Flow(Fact):
    """A 5-tuple flow seen in captured frames (pktmon or ndiscap), innermost frame of an overlay."""

    kind: Literal["flow"] = "flow"
    source: str
    protocol: str
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    vlan: int | None = None
    packets: Count
    bytes: Count = 0
    drops: Count = 0
    reverse_seen: bool = False
    first_seen: datetime | None = None
    last_seen: datetime | None = None


class Compartment(Fact):
    """A network compartment (the seed's "VLAN inside Windows"): its interfaces and addresses."""

    kind: Literal["compartment"] = "compartment"
    compartment_id: int
    interfaces: Count = 0
    addresses: Names = []
    sources: Names = []
    default_gateways: Names = []
    nat_default_route: bool = False


class Interface(Fact):
    """An IP interface (IfIndex) with its compartment, alias, MAC and addresses."""

    kind: Literal["interface"] = "interface"
    if_index: int
    alias: str | None = None
    description: str | None = None
    compartment_id: int | None = None
    mac: str | None = None
    connected: bool | None = None
    addresses: Names = []
    sources: Names = []
    evidence: Evidence = []


class Address(Fact):
    """An IP address on an interface, with its subnet and compartment."""

    kind: Literal["address"] = "address"
    address: str
    family: Literal["IPv4", "IPv6"]
    prefix_length: int | None = None
    subnet: str | None = None
    if_index: int | None = None
    compartment_id: int | None = None
    state: str | None = None
    sources: Names = []
    evidence: Evidence = []


class Subnet(Fact):
    """A subnet (from an address and its prefix) and the compartments that have addresses in it."""

    kind: Literal["subnet"] = "subnet"
    subnet: str
    family: Literal["IPv4", "IPv6"]
    compartments: Annotated[list[int], Field(max_length=256)] = []
    compartment_count: Count = 0
    addresses: Count = 0
    overlaps: Names = []
    overlapping: bool = False


class Segment(Fact):
    """A layer-2 or overlay segment id seen in the trace: VLAN, virtual subnet (VSID) or VXLAN VNI."""

    kind: Literal["segment"] = "segment"
    segment_type: Literal["vlan", "vsid", "vni"]
    value: int
    seen_on: Names = []
    sources: Names = []
    packets: Count = 0


class Neighbor(Fact):
    """An IP neighbour (ARP/ND entry) and how reachable it was."""

    kind: Literal["neighbor"] = "neighbor"
    address: str
    mac: str | None = None
    if_index: int | None = None
    compartment_id: int | None = None
    state: str | None = None
    unreachable: Count = 0
    reachable: Count = 0
    evidence: Evidence = []


class DadFailure(Fact):
    """Duplicate address detection failed: another host answered for this address."""

    kind: Literal["dad_failure"] = "dad_failure"
    address: str
    if_index: int | None = None
    compartment_id: int | None = None
    conflicting_mac: str | None = None
    count: Annotated[int, Field(ge=1)]
    evidence: Evidence = []


class DataPath(Fact):
    """Synthetic (vmSwitch) versus SR-IOV VF data path of a vmNIC, from Netvsc per-NBL events."""

    kind: Literal["data_path"] = "data_path"
    if_index: int
    synthetic_nbls: Count = 0
    vf_nbls: Count = 0
    dropped_nbls: Count = 0
    switches: Count = 0
    current_path: str | None = None
    periods: Annotated[list[dict[str, Scalar]], Field(max_length=16)] = []
    vf_bind_failures: Count = 0
    evidence: Evidence = []


class Offload(Fact):
    """An offload setting or symptom: VMQ/IOV weights, encapsulation offload, LSO frames, RSC."""

    kind: Literal["offload"] = "offload"
    where: str
    offload: str
    value: Scalar = None
    enabled: bool | None = Field(None, description="value when it is a boolean (on/off settings): rules can test it")
    count: Count = 0
    source: str
    evidence: Evidence = []

    @model_validator(mode="after")
    def _enabled_from_value(self) -> "Offload":
        if self.enabled is None and isinstance(self.value, bool):
            object.__setattr__(self, "enabled", self.value)
        return self


class NatInstance(Fact):
    """A WinNAT instance: its internal prefix and compartment, sessions, drops and exhaustion."""

    kind: Literal["nat"] = "nat"
    instance_name: str
    prefix: str | None = None
    compartment_id: int | None = None
    external_if_index: int | None = None
    internal_addresses: Names = []
    sessions_created: Count = 0
    sessions_timed_out: Count = 0
    port_pool_exhausted: Count = 0
    errors: Count = 0
    evidence: Evidence = []


class WnvLookup(Fact):
    """Windows Network Virtualization (HNVv1) policy lookups of one outcome, reason and VSID."""

    kind: Literal["wnv_lookup"] = "wnv_lookup"
    outcome: Literal["failed", "succeeded"]
    reason_code: int | None = None
    reason_name: str | None = None
    virtual_subnet_id: int | None = None
    direction: str = "unknown"
    count: Annotated[int, Field(ge=1)]
    evidence: Evidence = []


class WnvPolicy(Fact):
    """WNV policy records the trace saw configured: routes, locator records and addresses."""

    kind: Literal["wnv_policy"] = "wnv_policy"
    virtual_routes: Count = 0
    physical_routes: Count = 0
    locator_records: Count = 0
    locator_addresses: Count = 0
    failures: Count = 0
    virtual_subnets: Annotated[list[int], Field(max_length=256)] = []


class PortExhaustion(Fact):
    """Ports ran out: TCPIP assigned weakly referenced ports, or a NAT pool was exhausted."""

    kind: Literal["port_exhaustion"] = "port_exhaustion"
    source: str
    where: str
    protocol: str | None = None
    count: Annotated[int, Field(ge=1)]
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    evidence: Evidence = []


class CapturePoint(Fact):
    """An NDIS-PacketCapture capture point: an interface layer or a vSwitch source port."""

    kind: Literal["capture_point"] = "capture_point"
    miniport_if_index: int
    lower_if_index: int
    source_port_id: int | None = None
    source_port_name: str | None = None
    nic_name: str | None = None
    nic_type: str | None = None
    link_type: str
    packets_in: Count = 0
    packets_out: Count = 0
    packets_unknown_direction: Count = 0
    bytes: Count = 0
    truncated: Count = 0
    large_send_frames: Count = 0
    vlans: Annotated[list[int], Field(max_length=64)] = []


class ProviderEvent(Fact):
    """Events of providers wnvdiag has no model for (HNS, VFP, LBFO) that report a failure."""

    kind: Literal["provider_event"] = "provider_event"
    provider: str
    event_name: str
    event_id: int
    status: int | None = None
    count: Annotated[int, Field(ge=1)]
    evidence: Evidence = []


MODELS: tuple[type[Fact], ...] = (
    TraceSpan, ProviderCoverage, Component, VSwitch, VPort, VNic, MacMove, ProviderDrop, DropRate, PacketPath,
    PacketRoute, Flow, Compartment, Interface, Address, Subnet, Segment, Neighbor, DadFailure, DataPath, Offload,
    NatInstance, WnvLookup, WnvPolicy, PortExhaustion, CapturePoint, ProviderEvent, SubnetOverlap, VfPair,
)
NETWORK_FACT_MODELS: dict[str, type[Fact]] = {model.model_fields["kind"].default: model for model in MODELS}
