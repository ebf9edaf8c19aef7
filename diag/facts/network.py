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
from diag.facts.vfp import VfpDrop, VfpPort, VfpRule

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
    packet_numbering: Literal["per-packet", "per-snapshot", "mixed"] | None = Field(
        None, description="how pktmon numbered the snapshots: one PktGroupId per packet (builds before 26100), or "
                          "one per snapshot (26100 and later: paths are rebuilt from consecutive ids and content)")
    paths_rebuilt: Count = Field(0, description="paths rebuilt from snapshots numbered one by one")
    path_links_ambiguous: Count = Field(
        0, description="snapshots that could have continued more than one packet of the same content")
    paths_split: Count = Field(0, description="packets whose snapshots were so far apart in the file that the tracking "
                                              "window let their path go before the rest came (joined up again)")
    evidence_events: Count = Field(0, description="events the rules can judge the host's network by: packet "
                                                  "snapshots, and events of the providers wnvdiag models")
    evidence_gap: str | None = Field(None, description="when there are none: why this trace cannot answer")
    drop_events: Count = Field(0, description="pktmon drop events (170)")
    dropped_frames: Count = Field(0, description="distinct frames among the drop events: one frame dropped at one "
                                                 "component within 10 ms counts once")
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
    layout_unsure: Count = Field(0, description="events decoded by a layout revision the trace's OS build does not "
                                                "select (or with the build unknown, by length alone)")
    layout_note: str | None = None
    networking: bool = Field(False, description="a provider of the host's networking stack (LBFO, HNS, VFP, vSwitch, "
                                                "NetVsc, TCPIP, WinNat, WNV, NDIS, pktmon, VMMS, Kernel-Network, the "
                                                "kernel's TcpIp and UdpIp classes), by its name")


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
    vmq_weight_requested: int | None = Field(
        None, description="the VMQ weight of an offload policy operation the switch reported failed (VmSwitch 94, "
                          "'Failed to complete offload policy operation'): asked for, not applied")
    iov_weight_requested: int | None = Field(
        None, description="the SR-IOV (IovOffloadWeight) weight of that failed operation: asked for, not applied. No "
                          "public event reports the applied weight")
    rdma_weight: int | None = Field(None, description="RdmaWeight applied without a FailReason (VmSwitch 255-257)")
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


class TeamMember(Fact):
    """A NIC team member (SET member of a vSwitch, or a member NIC of the LBFO core) and its link changes.

    ``disconnects`` counts changes to down, ``reconnects`` changes from down back to up; an event that
    repeats the state the member is already in (two sources reporting one change) changes nothing."""

    kind: Literal["team_member"] = "team_member"
    member_name: str
    member_friendly_name: str | None = None
    switch_name: str | None = None
    switch_friendly_name: str | None = None
    team: Literal["SET", "LBFO"]
    net_cfg_instance_id: str | None = None
    nic_index: int | None = None
    connects: Count = Field(0, description="reports of the member coming up (the first may be its starting state)")
    disconnects: Count = 0
    reconnects: Count = 0
    state_changes: Count = 0
    lacp_churn: Count = Field(0, description="LACP churn detected on the member (VmSwitch 187)")
    first_change: datetime | None = None
    last_change: datetime | None = None
    current_state: Literal["up", "down", "unknown"] = "unknown"
    last_status: int | None = None
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
    background: bool = Field(False, description="the drop was of LAN background traffic (see background_drop)")
    duration_us: float | None = None
    start: datetime | None = None
    protocol: str | None = None
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    packet: str | None = Field(None, description="what the packet was, in words: protocol and endpoints, or EtherType")


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


class VPortTcp(Fact):
    """TCP in the frames of the flows one vmNIC carried (pktmon), and its share of the host's resets and
    retransmissions. A frame is the vmNIC's when its source MAC (sent) or destination MAC (received) is
    the vmNIC's PhysAddress. A retransmission is a data segment whose (flow, seq, length) another packet
    carried at least 1 ms apart, among the flow's last 64 segments (diag/facts/tcp.py)."""

    kind: Literal["vport_tcp"] = "vport_tcp"
    component_id: int
    component_name: str
    mac: str
    tcp_packets: Count
    connection_attempts: Count = Field(0, description="SYN without ACK")
    resets: Count = 0
    resets_sent: Count = 0
    resets_received: Count = 0
    data_segments: Count = 0
    retransmissions: Count = 0
    retransmissions_sent: Count = 0
    retransmissions_received: Count = 0
    retransmission_percent: float = Field(0.0, description="retransmissions, % of this vmNIC's data segments")
    reset_share_percent: float = Field(0.0, description="this vmNIC's resets, % of the host's")
    retransmission_share_percent: float = Field(0.0, description="this vmNIC's retransmissions, % of the host's")
    host_tcp_packets: Count = 0
    host_resets: Count = 0
    host_retransmissions: Count = 0
    host_tcp_not_analysed: Count = Field(0, description="TCP frames whose headers could not be read at fixed offsets "
                                                        "(overlay inner frames, IPv6 extension headers, cut short)")
    host_flows_let_go: Count = Field(0, description="TCP flows whose recent segments were let go (flow table full): "
                                                    "their counts are kept; a retransmission across that is not seen")


class NeighborRequests(Fact):
    """ARP requests or IPv6 Neighbor Solicitations for one target from one requester, seen in pktmon frames,
    and the answers (ARP replies / Neighbor Advertisements) seen for that target from anyone. Gratuitous
    ARP, ARP probes and DAD solicitations expect no answer and are not counted here."""

    kind: Literal["neighbor_requests"] = "neighbor_requests"
    protocol: Literal["ARP", "ND"]
    target: str
    requester_mac: str
    component_id: int = Field(description="the requester's vmNIC, else the component of the first request's "
                                          "first snapshot")
    component_name: str
    vmnic: bool = False
    requests: Annotated[int, Field(ge=1)]
    answers: Count = 0
    answers_complete: bool = Field(True, description="False when the table of answered targets was full")
    first_request: datetime | None = None
    last_request: datetime | None = None
    span_seconds: float | None = None


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


class IpRoute(Fact):
    """An IP route of a compartment (TCPIP 1145): destination prefix, interface and next hop."""

    kind: Literal["ip_route"] = "ip_route"
    destination: str
    if_index: int
    compartment_id: int | None = None
    next_hop: str | None = None
    on_link: bool = Field(True, description="no gateway: the destination is on the interface's own link")


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
    periods_not_kept: Count = Field(0, description="periods between the first and the 15 most recent, not listed")
    nbls_not_placed: Count = Field(0, description="NBLs counted in a period of the other path (timeline full)")
    last_vf_nbl: datetime | None = Field(None, description="the last VF NBL before the last move to the synthetic path")
    fell_back_at: datetime | None = Field(None, description="the first synthetic NBL after it")
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
    prefix: str | None = Field(None, description="the NAT network's internal prefix (only a v1 instance event of "
                                                 "InstanceType 1 names it)")
    external_prefix: str | None = Field(None, description="the prefix of the external interface, or an external "
                                                          "prefix instance's (v0 instance events, InstanceType 2)")
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
    """Events of providers wnvdiag has no model for (HNS, LBFO, and VFP events its layouts do not cover) that
    report a failure."""

    kind: Literal["provider_event"] = "provider_event"
    provider: str
    event_name: str
    event_id: int
    status: int | None = None
    count: Annotated[int, Field(ge=1)]
    evidence: Evidence = []


MODELS: tuple[type[Fact], ...] = (
    TraceSpan, ProviderCoverage, Component, VSwitch, VPort, VNic, TeamMember, MacMove, ProviderDrop, DropRate,
    PacketPath, PacketRoute, Flow, VPortTcp, NeighborRequests,
    Compartment, Interface, IpRoute, Address, Subnet, Segment, Neighbor, DadFailure, DataPath, Offload,
    NatInstance, WnvLookup, WnvPolicy, PortExhaustion, CapturePoint, ProviderEvent, SubnetOverlap, VfPair,
    VfpDrop, VfpRule, VfpPort,
)
NETWORK_FACT_MODELS: dict[str, type[Fact]] = {model.model_fields["kind"].default: model for model in MODELS}
