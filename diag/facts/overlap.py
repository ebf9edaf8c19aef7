"""Overlapping compartment subnets, pair by pair, with what makes the two compartments meet.

Built after every other fact (it reads the finished address, component and NAT facts): one
``subnet_overlap`` fact per pair of compartments whose IP subnets overlap. ``meet_via`` says what
joins them on this host:

* ``nat``: a WinNat instance whose internal prefix overlaps the overlapping range (NAT translates
  for both, so the host cannot tell the two apart);
* ``shared-vswitch``: a vmNIC of each compartment sits on the same virtual switch, and their virtual
  subnet ids do not keep them apart (one switch carries many HNV/SDN tenants: vmNICs with different
  VSIDs on it never exchange frames);
* ``route``: one of the two compartments routes part of the overlapping range through a gateway
  (TCPIP 1145), with a route at least as specific as its own prefix there: its traffic for those
  addresses leaves for another network, where the other compartment has the same addresses.

Two compartments with the same prefix on one vSwitch or NAT are one network (containers of one
NAT network): ``same_network``, not an overlap.

``isolated`` is true when nothing makes them meet and the vmNICs of both carry different virtual
subnet ids (HNV/SDN isolation): overlapping there is by design.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field

from diag.facts.evidence import Cuts
from diag.facts.models import Fact

MAX_PAIRS = 256
MAX_LISTED = 16  # interfaces, switches, NAT instances named per side


class SubnetOverlap(Fact):
    """Two compartments whose subnets overlap, side by side."""

    kind: Literal["subnet_overlap"] = "subnet_overlap"
    family: Literal["IPv4", "IPv6"]
    compartment_a: int
    compartment_b: int
    prefix_a: str
    prefix_b: str
    overlap: str
    meet_via: str = Field("", description="comma-separated: nat, shared-vswitch, route; empty when nothing joins them")
    meets: bool = False
    isolated: bool = False
    same_network: bool = Field(False, description="one prefix, joined by a vSwitch or NAT: one network, not an overlap")
    source: Literal["trace", "host-info"] = "trace"
    interfaces_a: str = Field("", description="interface indexes of compartment a holding the prefix, comma-separated")
    interfaces_b: str = Field("", description="interface indexes of compartment b holding the prefix, comma-separated")
    vswitches: str = Field("", description="virtual switches with vmNICs of both compartments, comma-separated")
    nat_instances: str = Field("", description="WinNat instances whose prefix overlaps the overlap, comma-separated")
    routes: str = Field("", description="routes through a gateway into the overlap: 'compartment: prefix via hop (if n)'")
    vsids_a: str = Field("", description="virtual subnet ids of compartment a's vmNICs, comma-separated")
    vsids_b: str = Field("", description="virtual subnet ids of compartment b's vmNICs, comma-separated")


def overlap_facts(facts: list, cuts: Cuts | None = None) -> list[SubnetOverlap]:
    """Every overlapping pair, up to ``MAX_PAIRS`` (the rest counted in ``cuts``)."""
    by_comp: dict[int, dict[str, set]] = {}  # compartment -> subnet -> sources
    ifaces: dict[tuple[int, str], set[int]] = {}  # (compartment, subnet) -> interface indexes
    addr_comp: dict[str, int] = {}
    for f in facts:
        if getattr(f, "kind", None) == "address" and f.subnet and f.compartment_id is not None:
            by_comp.setdefault(f.compartment_id, {}).setdefault(f.subnet, set()).update(f.sources)
            addr_comp[f.address] = f.compartment_id
            if f.if_index is not None:
                ifaces.setdefault((f.compartment_id, f.subnet), set()).add(f.if_index)
    switches: dict[int, set[str]] = {}
    vsids: dict[int, set[int]] = {}
    for f in facts:
        if getattr(f, "kind", None) != "component" or f.component_type not in ("VmsVmNic", "VmsMiniport"):
            continue
        comps = {f.compartment_id} if f.compartment_id is not None else {addr_comp[a] for a in f.addresses
                                                                         if a in addr_comp}
        for c in comps:
            if f.vmswitch_name:
                switches.setdefault(c, set()).add(f.vmswitch_name)
            if f.vsid:
                vsids.setdefault(c, set()).add(f.vsid)
    nats = [(f.instance_name, ipaddress.ip_network(f.prefix, strict=False)) for f in facts
            if getattr(f, "kind", None) == "nat" and f.prefix]
    gateway_routes: dict[int, list] = {}
    for f in facts:
        if getattr(f, "kind", None) == "ip_route" and not f.on_link and f.compartment_id is not None:
            destination = ipaddress.ip_network(f.destination, strict=False)
            if destination.prefixlen:  # a default route leaves the on-link prefix in charge of the overlap
                gateway_routes.setdefault(f.compartment_id, []).append((destination, f))
    out: list[SubnetOverlap] = []
    comps = sorted(by_comp)
    for i, a in enumerate(comps):
        for b in comps[i + 1:]:
            for pa, sa in sorted(by_comp[a].items()):
                for pb, sb in sorted(by_comp[b].items()):
                    na, nb = ipaddress.ip_network(pa, strict=False), ipaddress.ip_network(pb, strict=False)
                    if na.version != nb.version or not na.overlaps(nb):
                        continue
                    if len(out) >= MAX_PAIRS:  # counted, not described
                        if cuts is not None:
                            cuts.count += 1
                        continue
                    overlap = na if na.prefixlen >= nb.prefixlen else nb
                    via, nat_names = [], sorted(n for n, p in nats if p.version == overlap.version and p.overlaps(overlap))
                    if nat_names:
                        via.append("nat")
                    routed = [f"{c}: {d} via {r.next_hop} (if {r.if_index})" for c, own in ((a, na), (b, nb))
                              for d, r in gateway_routes.get(c, ())
                              if d.version == overlap.version and d.overlaps(overlap) and d.prefixlen >= own.prefixlen]
                    if routed:
                        via.append("route")
                    differ = bool(vsids.get(a)) and bool(vsids.get(b)) and not (vsids[a] & vsids[b])
                    shared = sorted(switches.get(a, set()) & switches.get(b, set()))
                    if shared and not differ:
                        via.append("shared-vswitch")
                    isolated = not via and differ
                    same = pa == pb and bool(nat_names or "shared-vswitch" in via) and not differ
                    sources = sa | sb
                    out.append(SubnetOverlap(
                        family="IPv4" if na.version == 4 else "IPv6", compartment_a=a, compartment_b=b,
                        prefix_a=pa, prefix_b=pb, overlap=str(overlap), meet_via=",".join(via), meets=bool(via),
                        isolated=isolated, same_network=same, source="host-info" if sources == {"host-info"} else "trace",
                        interfaces_a=_listed(ifaces.get((a, pa), ())), interfaces_b=_listed(ifaces.get((b, pb), ())),
                        vswitches=_listed(shared), nat_instances=_listed(nat_names), routes=_listed(routed),
                        vsids_a=_listed(vsids.get(a, ())), vsids_b=_listed(vsids.get(b, ()))))
    return out


def _listed(items) -> str:
    items = sorted(items)
    text = ",".join(str(i) for i in items[:MAX_LISTED])
    return text + (f",+{len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")
