"""What a scenario is: parameters in, a trace and its expected diagnosis out.

A scenario module defines ``SCENARIO = Scenario(...)`` whose ``build(params)`` returns a
:class:`Story`: the events (in a :class:`TraceBuilder`), the findings a correct diagnosis must
report with their key values, the healthy packets that ``--size`` multiplies, and any host-info
text. ``diag.synth.generate`` turns a story into files.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from diag.synth import pktmon as pm
from diag.synth import tcpip, vmswitch, winnat
from diag.synth.bulk import FillerPacket, Hop
from diag.synth.capture import Component, PktmonCapture
from diag.synth.etlwriter import FILETIME_TICKS_PER_SECOND, filetime_from_unix
from diag.synth.frames import TCP_ACK, TCP_PSH, tcp_frame, udp_frame
from diag.synth.frames import mac as mac_bytes
from diag.synth.hostinfo import HostAddress
from diag.synth.trace import TraceBuilder, TraceProfile

START = filetime_from_unix(1_767_261_600)  # 2026-01-01 10:00:00 UTC
MS = FILETIME_TICKS_PER_SECOND // 1000
SECOND = FILETIME_TICKS_PER_SECOND


@dataclass(frozen=True)
class Params:
    """What a user can change. ``size``: target file size in bytes (None: the scenario's own)."""

    seed: int
    duration: float
    rate: float
    hosts: int
    compressed: bool
    size: int | None = None


@dataclass(frozen=True)
class Finding:
    """One finding a correct diagnosis reports, with the values that identify it."""

    id: str
    values: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"finding": self.id, "values": self.values}


@dataclass
class Story:
    """A built scenario, ready to be written."""

    builder: TraceBuilder
    expect: list[Finding]
    bulk_packets: list[FillerPacket] = field(default_factory=list)
    bulk_cpus: list[int] = field(default_factory=list)
    bulk_window: tuple[int, int] = (0, 0)
    capture: PktmonCapture | None = None
    rundown_at: int | None = None  # when the pktmon capture stops (its rundown)
    host_info: dict[str, str] = field(default_factory=dict)  # file suffix -> text
    facts: dict[str, Any] = field(default_factory=dict)  # scenario-specific truth (addresses, counts...)
    end_filetime: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    summary: str
    build: Callable[[Params], Story]
    seed: int = 1
    duration: float = 20.0
    rate: float = 50.0
    hosts: int = 2
    compressed: bool = True
    min_hosts: int = 1
    max_hosts: int = 64
    fixed: frozenset[str] = frozenset()  # parameters this scenario does not take (its traffic is fixed)

    def params(self, *, seed: int | None = None, duration: float | None = None, rate: float | None = None,
               hosts: int | None = None, compressed: bool | None = None, size: int | None = None) -> Params:
        return Params(
            seed=self.seed if seed is None else seed,
            duration=self.duration if duration is None else duration,
            rate=self.rate if rate is None else rate,
            hosts=self.hosts if hosts is None else hosts,
            compressed=self.compressed if compressed is None else compressed,
            size=size,
        )


# -- a container host, the common stage ---------------------------------------------------------

NIC_ID, SWITCH_ID, HOST_VNIC_ID, TCPIP_ID, FIRST_VMNIC_ID = 1, 2, 3, 4, 10
GATEWAY_MAC = "00-1d-d8-b7-1c-01"
BULK_FLOWS = 24


def bulk_body(rng: random.Random, size: int) -> bytes:
    """A payload half random, half repeated text: compresses like typical captured traffic."""
    head = rng.randbytes(size // 2)
    return head + (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * (size // 40 + 1))[:size - len(head)]
RX, TX = pm.DirTag.RX, pm.DirTag.TX


@dataclass
class Workload:
    """A container (or VM) behind a vmNIC."""

    index: int
    component: Component
    mac: str
    ip: str
    compartment: int
    if_index: int
    alias: str


class ContainerHost:
    """A Hyper-V host with a vSwitch, the host vNIC, TCPIP and ``hosts`` container vmNICs, seen by
    pktmon. Scenarios add what is special about them."""

    def __init__(self, params: Params, *, profile: TraceProfile | None = None, switch_name: str = "nat",
                 subnet: str = "172.20.0", first_compartment: int = 2, vlan: int | None = None,
                 host_ip: str = "10.1.0.4", logged_size_limit: int = 0, shared_compartment: int | None = None,
                 workloads: int | None = None) -> None:
        self.params = params
        self.rng = random.Random(params.seed)
        self.profile = profile or TraceProfile(compressed=params.compressed, start_filetime=START,
                                               logger_name="Relogger" if params.compressed else "PktMon")
        self.builder = TraceBuilder(self.profile)
        self.capture = PktmonCapture(self.builder, logged_size_limit=logged_size_limit)
        self.switch_name = switch_name
        self.host_ip = host_ip
        self.start = START + 2 * SECOND
        self.end = self.start + int(params.duration * SECOND)
        self.healthy_sent = 0  # packets healthy_traffic wrote so far: later calls number their frames on
        c = self.capture
        self.nic = c.add(Component(NIC_ID, pm.ComponentType.MINIPORT, "mlx5.sys", "Mellanox ConnectX-5 Adapter",
                                   if_index=6, mac="00-15-5d-4a-00-01"))
        self.switch = c.add(Component(SWITCH_ID, pm.ComponentType.VMS_EXT_MINIPORT, "vmswitch.sys",
                                      "Hyper-V Virtual Switch Extension Adapter", if_index=9, lower_if_index=6,
                                      switch_name=switch_name, edges=(1, 2)))
        self.host_vnic = c.add(Component(HOST_VNIC_ID, pm.ComponentType.VMS_MINIPORT, "vmswitch.sys",
                                         f"Hyper-V Virtual Ethernet Adapter #{2}", if_index=12,
                                         mac="00-15-5d-4a-00-02", switch_name=switch_name, compartment=1,
                                         addresses=(host_ip,)))
        self.tcpip = c.add(Component(TCPIP_ID, pm.ComponentType.PROTOCOL, "tcpip.sys", "TCPIP", lower_if_index=12))
        self.workloads: list[Workload] = []
        for i in range(params.hosts if workloads is None else workloads):
            compartment = shared_compartment if shared_compartment is not None else first_compartment + i
            self.add_workload(i, f"{subnet}.{11 + i}", compartment, vlan=vlan)

    def add_workload(self, i: int, ip: str, compartment: int, *, vlan: int | None = None,
                     mac: str | None = None) -> Workload:
        name = f"{self.rng.getrandbits(32):08x}"
        mac = mac or f"00-15-5d-4a-{0x10 + i // 256:02x}-{i % 256:02x}"
        if_index = 20 + i
        comp = self.capture.add(Component(
            FIRST_VMNIC_ID + i, pm.ComponentType.VMS_VMNIC, "vmswitch.sys", f"Container NIC {name}", mac=mac,
            switch_name=self.switch_name, vlan=vlan, compartment=compartment, ip_if_index=if_index, addresses=(ip,)))
        w = Workload(i, comp, mac, ip, compartment, if_index, f"vEthernet (Container NIC {name})")
        self.workloads.append(w)
        return w

    # -- paths and frames -----------------------------------------------------------------------

    def inbound_hops(self, w: Workload) -> list[Hop]:
        return [Hop(NIC_ID, RX), Hop(SWITCH_ID, RX, 2), Hop(SWITCH_ID, RX, 1), Hop(w.component.id, RX)]

    def outbound_hops(self, w: Workload) -> list[Hop]:
        return [Hop(w.component.id, TX), Hop(SWITCH_ID, TX, 1), Hop(SWITCH_ID, TX, 2), Hop(NIC_ID, TX)]

    def web_request(self, w: Workload, n: int, client: str = "192.0.2.10", vlan: int | None = None) -> bytes:
        return tcp_frame(GATEWAY_MAC, w.mac, client, w.ip, 50000 + n % 1000, 80, vlan_id=vlan, ident=n,
                         seq=1000 + 517 * n, ack=7000, flags=TCP_ACK | TCP_PSH,
                         payload=b"GET /health HTTP/1.1\r\nHost: app\r\n\r\n")

    def web_response(self, w: Workload, n: int, client: str = "192.0.2.10", size: int = 1200,
                     body: bytes | None = None) -> bytes:
        body = bytes((n + k) & 0xFF for k in range(size)) if body is None else body
        return tcp_frame(w.mac, GATEWAY_MAC, w.ip, client, 80, 50000 + n % 1000, ident=0x4000 + n,
                         seq=9000 + size * n, ack=1037, flags=TCP_ACK | TCP_PSH, payload=body)

    def dns_query(self, w: Workload, n: int) -> bytes:
        query = bytes.fromhex("0100000100000000000003617069076578616d706c6503636f6d0000010001")
        return udp_frame(w.mac, GATEWAY_MAC, w.ip, "10.1.0.53", 53000 + n % 1000, 53, (n & 0xFFFF).to_bytes(2, "big")
                         + query, ident=0x6000 + n)

    # -- traffic ------------------------------------------------------------------------------

    def times(self, count: int, begin: int | None = None, end: int | None = None) -> list[int]:
        """``count`` sorted random times in [begin, end)."""
        b = self.start if begin is None else begin
        e = self.end if end is None else end
        return sorted(self.rng.randrange(b, max(b + 1, e)) for _ in range(count))

    def healthy_traffic(self, *, begin: int | None = None, end: int | None = None, rate: float | None = None,
                        workloads: list[Workload] | None = None) -> int:
        """Requests in, responses out and DNS queries for each workload; returns packets written."""
        targets = self.workloads if workloads is None else workloads
        if not targets:
            return 0
        b = self.start if begin is None else begin
        e = self.end if end is None else end
        count = max(1, int((rate or self.params.rate) * (e - b) / SECOND))
        # frames are numbered across calls: a second call repeating a first call's (flow, seq) would be a
        # TCP retransmission in the trace
        first, self.healthy_sent = self.healthy_sent, self.healthy_sent + count
        for n, t in enumerate(self.times(count, b, e)):
            w = targets[n % len(targets)]
            kind = n % 5
            cpu = n % 2
            if kind < 2:
                self.capture.packet(t, self.inbound_hops(w), self.web_request(w, first + n), cpu=cpu)
            elif kind < 4:
                self.capture.packet(t, self.outbound_hops(w), self.web_response(w, first + n), cpu=cpu)
            else:
                self.capture.packet(t, self.outbound_hops(w), self.dns_query(w, first + n), cpu=cpu)
        return count

    def bulk_packets(self, workloads: list[Workload] | None = None) -> list[FillerPacket]:
        """Healthy packets for ``--size``: full-size datagrams out (QUIC-like, UDP 443) and TCP
        acknowledgements in. Half of each datagram is random, so bulk buffers compress about as well
        as real pktmon ones. Every copy of the bulk repeats these frames with new packet ids: a TCP
        data segment there would read as a retransmission, so TCP carries no payload in the bulk."""
        targets = self.workloads if workloads is None else workloads
        out = []
        for n in range(BULK_FLOWS):
            w = targets[n % len(targets)]
            out.append(self.capture.filler_packet(self.outbound_hops(w), udp_frame(
                w.mac, GATEWAY_MAC, w.ip, "192.0.2.10", 443, 50000 + n, bulk_body(self.rng, 1400), ident=0x5000 + n)))
            out.append(self.capture.filler_packet(self.inbound_hops(w), tcp_frame(
                GATEWAY_MAC, w.mac, "192.0.2.10", w.ip, 51000 + n, 80, ident=n, seq=1000 + 517 * n, ack=7000,
                flags=TCP_ACK)))
        return out

    def story(self, expect: list[Finding], **kwargs: Any) -> Story:
        """The story of this host: pktmon's rundown when the capture stops, bulk on processors 2-3."""
        kwargs.setdefault("bulk_packets", self.bulk_packets())
        return Story(self.builder, expect, bulk_cpus=[2, 3], bulk_window=(self.start, self.end),
                     capture=self.capture, rundown_at=self.end + 250 * MS, **kwargs)

    def drops_json(self) -> list[dict[str, int]]:
        return [{"component_id": c, "reason": r, "count": n} for (c, r), n in sorted(self.capture.drops.items())]


# -- other providers on the same host ---------------------------------------------------------------

def add_event(builder: TraceBuilder, t: int, provider_module: Any, event_id: int, payload: bytes, *,
              cpu: int = 0, keywords: int | None = None) -> None:
    """An event of one of the manifest providers (TCPIP, WinNat, VmSwitch, Netvsc, Wnv), with the
    version, level and keywords its layout declares."""
    layout = (provider_module.layout_for(event_id, builder.profile.os_build) if hasattr(provider_module, "layout_for")
              else provider_module.LAYOUTS[event_id])
    builder.add(t, layout.provider, event_id, payload, version=layout.version, level=layout.level,
                keywords=layout.keywords if keywords is None else keywords, cpu=cpu)


def port_name(rng: random.Random) -> str:
    """vmswitch's internal port / NIC names are GUIDs in upper case."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


class HostConfig:
    """Control-plane events of a :class:`ContainerHost`: vSwitch ports, TCPIP and WinNat state."""

    def __init__(self, host: ContainerHost) -> None:
        self.host = host
        self.ports: dict[int, str] = {w.index: port_name(host.rng) for w in host.workloads}
        self.nics: dict[int, str] = {}  # vmswitch's NIC name per workload, once vmswitch_ports wrote it

    def vmswitch_ports(self, t: int, *, allow_mac_spoofing: bool = False, iov_weight: dict[int, int] | None = None,
                       switch_guid: str | None = None) -> int:
        """NIC created, connected to its port, port security (and offload) per workload.
        ``switch_guid``: the switch's internal name on every port (default: a new one per port).

        No event 33: Microsoft's NetMon parser for vmswitch names it "IP spoofed packets dropped",
        not the NIC/port association the research notes guessed, and the decoder follows the parser.
        """
        h = self.host
        for w in h.workloads:
            nic = self.nics[w.index] = port_name(h.rng)
            port = self.ports[w.index]
            friendly = w.alias.removeprefix("vEthernet (").removesuffix(")")
            names = {"SwitchName": switch_guid or port_name(h.rng), "SwitchFName": h.switch_name}
            add_event(h.builder, t, vmswitch, vmswitch.EVENT_NIC_CREATED,
                      vmswitch.encode(vmswitch.EVENT_NIC_CREATED, NicName=nic, NicFName=friendly))
            add_event(h.builder, t + 10, vmswitch, vmswitch.EVENT_NIC_CONNECTED, vmswitch.encode(
                vmswitch.EVENT_NIC_CONNECTED, NicName=nic, NicFName=friendly, PortName=port, PortFName=port, **names))
            add_event(h.builder, t + 30, vmswitch, vmswitch.EVENT_PORT_SECURITY, vmswitch.encode(
                vmswitch.EVENT_PORT_SECURITY, PortName=port, PortFName=port, **names,
                AllowMacSpoofing=int(allow_mac_spoofing), VirtualSubnetId=w.component.vsid or 0))
            if iov_weight and w.index in iov_weight:
                add_event(h.builder, t + 40, vmswitch, vmswitch.EVENT_PORT_OFFLOAD, vmswitch.encode(
                    vmswitch.EVENT_PORT_OFFLOAD, PortName=port, PortFName=port, **names, IPSecOffloadLimit=0,
                    VMQOffloadWeight=100, IovOffloadWeight=iov_weight[w.index], QueuePairs=4,
                    InterruptModeration=1, FailReason=0))
            t += 1000
        return t

    def tcpip_state(self, t: int, *, compartments: bool = True) -> int:
        """Interface rundown (1202) and address additions (1127) for the host vNIC and every workload."""
        h = self.host
        rows = [(h.host_vnic.if_index or 12, h.host_ip, 1, h.host_vnic.mac)]
        rows += [(w.if_index, w.ip, w.compartment, w.mac) for w in h.workloads]
        for if_index, ip, compartment, mac in rows:
            add_event(h.builder, t, tcpip, tcpip.EVENT_INTERFACE_RUNDOWN,
                      tcpip.encode_interface_rundown(if_index=if_index, address=ip, compartment=compartment,
                                                     build=h.builder.profile.os_build))
            add_event(h.builder, t + 10, tcpip, tcpip.EVENT_ADDRESS_ADDED, tcpip.encode_address_event(
                tcpip.EVENT_ADDRESS_ADDED, interface=if_index, address=ip, mac=mac_bytes(mac or "00-00-00-00-00-00"),
                compartment=compartment, build=h.builder.profile.os_build))
            t += 100
        return t

    def winnat_instance(self, t: int, name: str, prefix: str, compartment: int = 1) -> int:
        h = self.host
        add_event(h.builder, t, winnat, winnat.EVENT_INSTANCE_CREATED, winnat.encode_instance(
            winnat.EVENT_INSTANCE_CREATED, name=name, routing_domain=uuid.UUID(int=h.rng.getrandbits(128), version=4),
            prefix=prefix, compartment=compartment, external_if_index=6))
        return t + 100


def workload_host_info(host: ContainerHost, prefix_length: dict[int, int],
                       gateway: dict[int, str]) -> list[HostAddress]:
    """Host-info rows for the host vNIC and every workload."""
    rows = [HostAddress(1, "vEthernet (Ethernet)", host.host_vnic.if_index or 12, host.host_ip, 24, "10.1.0.1",
                        "contoso.com")]
    for w in host.workloads:
        rows.append(HostAddress(w.compartment, w.alias, w.if_index, w.ip, prefix_length[w.index], gateway[w.index],
                                "", f"fe80::{0x215 + w.index:x}:5dff:fe4a:{0x10 + w.index:x}"))
    return rows
