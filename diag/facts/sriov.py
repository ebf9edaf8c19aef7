"""SR-IOV Virtual Functions paired with their synthetic adapter, from pktmon's component list.

In a guest with SR-IOV (Azure accelerated networking), the NIC vendor's VF miniport and the Hyper-V
synthetic adapter (NetVsc) carry the same MAC address: NetVsc bonds them and sends over the VF while
it is there. One ``vf_pair`` fact per such pair (a join on the MAC, which rules cannot do: the
component's ``mac`` may be empty).
"""

from __future__ import annotations

import re
from typing import Literal

from diag.facts.evidence import Cuts
from diag.facts.models import Count, Fact

VF_DESCRIPTION = re.compile(r"virtual (ethernet adapter|function)", re.IGNORECASE)
MAX_PAIRS = 64


class VfPair(Fact):
    """A VF miniport and the NetVsc adapter with the same MAC address."""

    kind: Literal["vf_pair"] = "vf_pair"
    mac: str
    vf_component_id: int
    vf_name: str
    vf_description: str | None = None
    vf_packets: Count = 0
    netvsc_component_id: int
    netvsc_description: str | None = None
    netvsc_packets: Count = 0


def is_netvsc(component) -> bool:
    """The synthetic adapter's components: pktmon's NetVsc Miniport type, or the netvsc.sys miniport itself (the
    demikernel sample logs its traffic at the latter and none at the former)."""
    return component.component_type == "NetVsc Miniport" or (component.name or "").lower() == "netvsc.sys"


def vf_pair_facts(facts: list, cuts: Cuts | None = None) -> list[VfPair]:
    """One pair per VF: with the synthetic adapter component of the same MAC that carried the most packets.
    Pairs beyond ``MAX_PAIRS`` are counted in ``cuts``."""
    comps = [f for f in facts if getattr(f, "kind", None) == "component" and f.mac]
    netvsc = [f for f in comps if is_netvsc(f)]
    out = []
    for vf in comps:
        if is_netvsc(vf) or not VF_DESCRIPTION.search(vf.description or ""):
            continue
        same_mac = [n for n in netvsc if n.mac.lower() == vf.mac.lower()]
        if not same_mac:
            continue
        if len(out) >= MAX_PAIRS:
            if cuts is not None:
                cuts.count += 1
            continue
        n = max(same_mac, key=lambda c: (c.packets, c.component_type == "NetVsc Miniport", -c.component_id))
        out.append(VfPair(mac=vf.mac, vf_component_id=vf.component_id, vf_name=vf.name,
                          vf_description=vf.description, vf_packets=vf.packets,
                          netvsc_component_id=n.component_id, netvsc_description=n.description,
                          netvsc_packets=n.packets))
    return out
