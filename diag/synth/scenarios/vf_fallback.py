"""Inside a VM with SR-IOV: its traffic runs over the virtual function (VF), then the VF goes away
mid-trace (host servicing, a live migration, a driver reset) and the traffic falls back to the
synthetic path through netvsc and the host's vSwitch. The trace is the guest's own (pktmon plus
the Hyper-V-Netvsc provider).

Evidence: Netvsc 20 "NBL ... VF" for every NBL until the switch, Netvsc 19 "NBL ... Synthetic"
after it; pktmon packets crossing TCPIP, the netvsc miniport and the VF miniport, then only TCPIP
and netvsc.
"""

from __future__ import annotations

import random

from diag.synth import netvsc
from diag.synth import pktmon as pm
from diag.synth.bulk import Hop
from diag.synth.capture import Component, PktmonCapture
from diag.synth.frames import TCP_ACK, TCP_PSH, tcp_frame
from diag.synth.scenarios.base import MS, SECOND, START, Finding, Params, Scenario, Story, add_event
from diag.synth.trace import TraceBuilder, TraceProfile

NETVSC_ID, VF_ID, TCPIP_ID = 1, 2, 3
NETVSC_IF_INDEX, VF_IF_INDEX = 4, 7
VM_MAC, GATEWAY_MAC = "00-0d-3a-21-44-5e", "12-34-56-78-9a-bc"
VM_IP = "10.0.0.4"
RX, TX = pm.DirTag.RX, pm.DirTag.TX


def _frame(n: int, outbound: bool) -> bytes:
    client = f"10.0.1.{10 + n % 5}"
    if outbound:
        return tcp_frame(VM_MAC, GATEWAY_MAC, VM_IP, client, 1433, 50000 + n % 900, ident=n, seq=n * 900, ack=77,
                         flags=TCP_ACK | TCP_PSH, payload=bytes(800))
    return tcp_frame(GATEWAY_MAC, VM_MAC, client, VM_IP, 50000 + n % 900, 1433, ident=n, seq=77, ack=n * 900,
                     flags=TCP_ACK, payload=b"")


def build(params: Params) -> Story:
    rng = random.Random(params.seed)
    builder = TraceBuilder(TraceProfile(compressed=params.compressed, start_filetime=START, cpu_count=4,
                                        logger_name="Relogger" if params.compressed else "PktMon"))
    builder.describe(netvsc.LAYOUTS.values())
    capture = PktmonCapture(builder)
    capture.add(Component(NETVSC_ID, pm.ComponentType.NETVSC_MINIPORT, "netvsc.sys",
                          "Microsoft Hyper-V Network Adapter", if_index=NETVSC_IF_INDEX, mac=VM_MAC, compartment=1,
                          addresses=(VM_IP,)))
    capture.add(Component(VF_ID, pm.ComponentType.MINIPORT, "mlx5.sys",
                          "Mellanox ConnectX-4 Lx Virtual Ethernet Adapter", if_index=VF_IF_INDEX,
                          lower_if_index=VF_IF_INDEX, mac=VM_MAC))
    capture.add(Component(TCPIP_ID, pm.ComponentType.PROTOCOL, "tcpip.sys", "TCPIP", lower_if_index=NETVSC_IF_INDEX))
    start = START + 2 * SECOND
    end = start + int(params.duration * SECOND)
    switch_at = start + (end - start) * 2 // 3
    count = max(6, int(params.rate * params.duration))
    times = sorted(rng.randrange(start, end) for _ in range(count))
    vf = synthetic = 0
    for n, t in enumerate(times):
        outbound = n % 2 == 0
        on_vf = t < switch_at
        hops = [Hop(TCPIP_ID, TX), Hop(NETVSC_ID, TX)] if outbound else [Hop(NETVSC_ID, RX), Hop(TCPIP_ID, RX)]
        if on_vf:
            hops = hops + [Hop(VF_ID, TX)] if outbound else [Hop(VF_ID, RX)] + hops
        capture.packet(t, hops, _frame(n, outbound), cpu=n % 2)
        nbl = 0xFFFF_9A0C_3E10_0000 + n * 0x1A0
        add_event(builder, t + 20, netvsc, netvsc.EVENT_NBL_VF if on_vf else netvsc.EVENT_NBL_SYNTHETIC,
                  netvsc.encode_nbl_path(on_vf, netvsc.DIRECTION_SEND if outbound else netvsc.DIRECTION_RECEIVE, nbl,
                                         0x4000 + n, NETVSC_IF_INDEX), cpu=n % 2)
        vf += on_vf
        synthetic += not on_vf
    last_vf = max(t for t in times if t < switch_at)
    first_synthetic = min(t for t in times if t >= switch_at)
    finding = Finding("vf-fallback", {
        "if_index": NETVSC_IF_INDEX, "vf_nbls": vf, "synthetic_nbls": synthetic,
        "last_vf_filetime": last_vf + 20, "first_synthetic_filetime": first_synthetic + 20})
    bulk = [capture.filler_packet([Hop(TCPIP_ID, TX), Hop(NETVSC_ID, TX)], _frame(1, True)),
            capture.filler_packet([Hop(NETVSC_ID, RX), Hop(TCPIP_ID, RX)], _frame(2, False))]
    return Story(builder, [finding], bulk_packets=bulk, bulk_cpus=[2, 3], bulk_window=(switch_at, end),
                 capture=capture, rundown_at=end + 250 * MS, facts={"packets": count, "drops": [],
                                                                    "switch_filetime": switch_at})


SCENARIO = Scenario(
    name="vf-fallback",
    title="SR-IOV VF falls back to the synthetic path mid-trace (guest trace)",
    summary="Netvsc 20 (VF) for every NBL for the first two thirds of the trace, then Netvsc 19 (synthetic); pktmon "
            "paths lose the VF miniport at the same moment.",
    build=build,
    seed=808,
    hosts=1,
    max_hosts=1,
)
