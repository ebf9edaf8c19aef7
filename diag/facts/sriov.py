"""SR-IOV Virtual Functions paired with their synthetic adapter, from pktmon's component list.

In a guest with SR-IOV (Azure accelerated networking), the NIC vendor's VF miniport and the Hyper-V
synthetic adapter (NetVsc) carry the same MAC address: NetVsc bonds them and sends over the VF while
it is there. One ``vf_pair`` fact per such pair (a join on the MAC, which rules cannot do: the
component's ``mac`` may be empty).
"""

from __future__ import annotations

import re
from typing import Literal

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


def vf_pair_facts(facts: list) -> list[VfPair]:
    comps = [f for f in facts if getattr(f, "kind", None) == "component" and f.mac]
    netvsc = [f for f in comps if f.component_type == "NetVsc Miniport"]
    out = []
    for vf in comps:
        if vf.component_type == "NetVsc Miniport" or not VF_DESCRIPTION.search(vf.description or ""):
            continue
        for n in netvsc:
            if n.mac.lower() == vf.mac.lower() and len(out) < MAX_PAIRS:
                out.append(VfPair(mac=vf.mac, vf_component_id=vf.component_id, vf_name=vf.name,
                                  vf_description=vf.description, vf_packets=vf.packets,
                                  netvsc_component_id=n.component_id, netvsc_description=n.description,
                                  netvsc_packets=n.packets))
    return out
