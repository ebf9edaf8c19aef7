"""The host's IP model: compartments, interfaces, addresses, subnets, neighbours.

Filled from every source that knows a part of it: TCPIP events (addresses with compartment,
interface rundown, routes, neighbours, DAD), pktmon component properties (IP interface index,
compartment, addresses, MAC), WinNat (compartments of NAT instances) and the host information
files (ipconfig / Get-NetIPAddress). Each fact lists the ``sources`` it came from. Subnets come
from prefix lengths (host information), or from the on-link route of the interface that holds the
address (TCPIP route events); addresses whose prefix is unknown get no subnet.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from diag.facts.evidence import Bounded, Cuts, keep
from diag.facts.network import Address, Compartment, DadFailure, Interface, IpRoute, Neighbor, Subnet

MAX_ENTRIES = 4096
MAX_OVERLAP_FACTS = 256


def _family(address: str) -> str:
    return "IPv6" if ":" in address else "IPv4"


def _plain(address: str) -> str:
    """Drop a ``%scope`` suffix and normalise the text of an address."""
    return str(ipaddress.ip_address(address.split("%", 1)[0]))


class NetworkModel:
    def __init__(self) -> None:
        self.cuts = Cuts()  # what capped list fields of the facts left out
        self.interfaces: Bounded = Bounded(MAX_ENTRIES)
        self.compartments: Bounded = Bounded(MAX_ENTRIES)
        self.addresses: Bounded = Bounded(MAX_ENTRIES)
        self.routes: Bounded = Bounded(MAX_ENTRIES)  # (if_index, network) -> next hop
        self.prefixes: Bounded = Bounded(MAX_ENTRIES)  # network -> sources (prefixes known without an address)
        self.neighbors: Bounded = Bounded(MAX_ENTRIES)
        self.dad_failures: Bounded = Bounded(MAX_ENTRIES)

    # -- filling -----------------------------------------------------------------------------------
    def compartment(self, compartment_id: int | None, source: str) -> dict | None:
        if compartment_id is None:
            return None
        entry = self.compartments.slot(compartment_id, lambda: {"sources": set(), "gateways": set(), "nat_default": False})
        if entry is not None:
            entry["sources"].add(source)
        return entry

    def interface(self, if_index: int | None, source: str, *, compartment_id: int | None = None, alias: str | None = None,
                  description: str | None = None, mac: str | None = None, connected: bool | None = None,
                  evidence: dict | None = None) -> dict | None:
        if if_index is None:
            return None
        entry = self.interfaces.slot(if_index, lambda: {"compartment_id": None, "alias": None, "description": None,
                                                        "mac": None, "connected": None, "sources": set(), "evidence": []})
        if entry is None:
            return None
        entry["sources"].add(source)
        for key, value in (("compartment_id", compartment_id), ("alias", alias), ("description", description),
                           ("mac", mac), ("connected", connected)):
            if value is not None:
                entry[key] = value
        if evidence is not None:
            keep(entry["evidence"], evidence)
        self.compartment(compartment_id, source)
        return entry

    def address(self, address: str | None, source: str, *, if_index: int | None = None,
                compartment_id: int | None = None, prefix_length: int | None = None, state: str | None = None,
                evidence: dict | None = None) -> dict | None:
        if not address:
            return None
        try:
            text = _plain(address)
        except ValueError:
            return None
        entry = self.addresses.slot((text, if_index), lambda: {"prefix_length": None, "compartment_id": None,
                                                               "state": None, "sources": set(), "evidence": []})
        if entry is None:
            return None
        entry["sources"].add(source)
        for key, value in (("prefix_length", prefix_length), ("compartment_id", compartment_id), ("state", state)):
            if value is not None:
                entry[key] = value
        if evidence is not None:
            keep(entry["evidence"], evidence)
        self.compartment(compartment_id, source)
        return entry

    def route(self, if_index: int | None, prefix: str | None, prefix_length: int | None, next_hop: str | None) -> None:
        if if_index is None or not prefix or prefix_length is None:
            return
        try:
            network = ipaddress.ip_network(f"{_plain(prefix)}/{prefix_length}", strict=False)
        except ValueError:
            return
        self.routes.slot((if_index, network), lambda: next_hop)

    def prefix(self, prefix: str | None, source: str) -> None:
        """A prefix that addresses of the host belong to (a NAT internal prefix, an on-link route)."""
        try:
            network = ipaddress.ip_network(prefix, strict=False) if prefix else None
        except ValueError:
            return
        if network is not None and network.prefixlen:
            sources = self.prefixes.slot(network, set)
            if sources is not None:
                sources.add(source)

    def neighbor(self, address: str | None, *, if_index: int | None, compartment_id: int | None = None,
                 mac: str | None = None, state: str | None = None, reachable: bool | None = None,
                 evidence: dict | None = None) -> None:
        if not address:
            return
        entry = self.neighbors.slot((address, if_index), lambda: {"mac": None, "compartment_id": None, "state": None,
                                                                  "reachable": 0, "unreachable": 0, "evidence": []})
        if entry is None:
            return
        entry["mac"] = mac or entry["mac"]
        entry["compartment_id"] = compartment_id if compartment_id is not None else entry["compartment_id"]
        entry["state"] = state or entry["state"]
        if reachable is True:
            entry["reachable"] += 1
        elif reachable is False:
            entry["unreachable"] += 1
        if evidence is not None:
            keep(entry["evidence"], evidence)

    def dad_failure(self, address: str | None, *, if_index: int | None, compartment_id: int | None, mac: str | None,
                    evidence: dict) -> None:
        if not address:
            return
        entry = self.dad_failures.slot((address, if_index), lambda: {"mac": None, "compartment_id": None, "count": 0,
                                                                     "evidence": []})
        if entry is not None:
            entry["count"] += 1
            entry["mac"] = mac or entry["mac"]
            entry["compartment_id"] = compartment_id if compartment_id is not None else entry["compartment_id"]
            keep(entry["evidence"], evidence)

    # -- facts -------------------------------------------------------------------------------------
    def facts(self) -> list:
        addresses = self._address_facts()
        return [*self._compartment_facts(addresses), *self._interface_facts(addresses), *addresses,
                *self._subnet_facts(addresses), *self._route_facts(), *self._neighbor_facts()]

    def _route_facts(self) -> list[IpRoute]:
        out = []
        for (if_index, network), next_hop in sorted(self.routes.items(), key=lambda item: (item[0][0], str(item[0][1]))):
            hop = ipaddress.ip_address(next_hop) if next_hop else None
            gateway = str(hop) if hop is not None and not hop.is_unspecified else None
            iface = self.interfaces.get(if_index)
            out.append(IpRoute(destination=str(network), if_index=if_index, next_hop=gateway, on_link=gateway is None,
                               compartment_id=iface["compartment_id"] if iface else None))
        return out

    @staticmethod
    def _prefix(address: str, networks: list) -> int | None:
        """The longest on-link prefix (shorter than a host route) of the address's interface that contains it."""
        ip = ipaddress.ip_address(address)
        best = None
        for network in networks:
            if ip.version == network.version and ip in network and network.prefixlen < network.max_prefixlen:
                if best is None or network.prefixlen > best:
                    best = network.prefixlen
        return best

    def _address_facts(self) -> list[Address]:
        routes: dict[int, list] = {}
        for (route_if, network), next_hop in self.routes.items():
            if network.prefixlen and (not next_hop or ipaddress.ip_address(next_hop).is_unspecified):
                routes.setdefault(route_if, []).append(network)  # on-link routes only
        out = []
        for (address, if_index), entry in sorted(self.addresses.items(), key=lambda item: (str(item[0][1]), item[0][0])):
            compartment = entry["compartment_id"]
            if compartment is None and if_index is not None and if_index in self.interfaces:
                compartment = self.interfaces[if_index]["compartment_id"]
            prefix = entry["prefix_length"]
            if prefix is None and if_index in routes:
                prefix = self._prefix(address, routes[if_index])
            subnet = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False)) if prefix is not None else None
            if subnet is None and self.prefixes:  # the most specific declared prefix (a NAT network) holding it
                declared = self._prefix(address, list(self.prefixes))
                subnet = str(ipaddress.ip_network(f"{address}/{declared}", strict=False)) if declared else None
            out.append(Address(address=address, family=_family(address), prefix_length=prefix, subnet=subnet,
                               if_index=if_index, compartment_id=compartment, state=entry["state"],
                               sources=sorted(entry["sources"]), evidence=entry["evidence"]))
        return out

    def _interface_facts(self, addresses: list[Address]) -> list[Interface]:
        by_if: dict[int, list[str]] = {}
        for a in addresses:
            if a.if_index is not None:
                by_if.setdefault(a.if_index, []).append(a.address)
        out = []
        for if_index, entry in sorted(self.interfaces.items()):
            out.append(Interface(if_index=if_index, alias=entry["alias"], description=entry["description"],
                                 compartment_id=entry["compartment_id"], mac=entry["mac"], connected=entry["connected"],
                                 addresses=self.cuts.cap(by_if.get(if_index, [])), sources=sorted(entry["sources"]),
                                 evidence=entry["evidence"]))
        return out

    def _compartment_facts(self, addresses: list[Address]) -> list[Compartment]:
        by_compartment: dict[int, list[str]] = {}
        for a in addresses:
            if a.compartment_id is not None:
                by_compartment.setdefault(a.compartment_id, []).append(a.address)
        interfaces: dict[int, int] = {}
        for entry in self.interfaces.values():
            if entry["compartment_id"] is not None:
                interfaces[entry["compartment_id"]] = interfaces.get(entry["compartment_id"], 0) + 1
        out = []
        for compartment_id, entry in sorted(self.compartments.items()):
            out.append(Compartment(compartment_id=compartment_id, interfaces=interfaces.get(compartment_id, 0),
                                   addresses=self.cuts.cap(sorted(set(by_compartment.get(compartment_id, [])))),
                                   sources=sorted(entry["sources"]), default_gateways=self.cuts.cap(sorted(entry["gateways"])),
                                   nat_default_route=entry["nat_default"]))
        return out

    def _subnet_facts(self, addresses: list[Address]) -> list[Subnet]:
        """Every subnet an address lies in or a source declared, with the compartments of its addresses."""
        networks = {ipaddress.ip_network(a.subnet) for a in addresses if a.subnet} | set(self.prefixes)
        networks = self.cuts.cap(sorted((n for n in networks if not n.is_link_local and 0 < n.prefixlen < n.max_prefixlen),
                                        key=str), MAX_OVERLAP_FACTS)
        located = [(ipaddress.ip_address(a.address), a.compartment_id) for a in addresses]
        subnets: dict[str, dict[str, Any]] = {}
        for network in networks:
            inside = [c for ip, c in located if ip.version == network.version and ip in network]
            subnets[str(network)] = {"family": f"IPv{network.version}", "addresses": len(inside),
                                     "compartments": {c for c in inside if c is not None}}
        overlaps = self._overlaps(subnets, {s: ipaddress.ip_network(s) for s in subnets})
        return [Subnet(subnet=s, family=e["family"], compartments=sorted(e["compartments"]),
                       compartment_count=len(e["compartments"]), addresses=e["addresses"],
                       overlaps=self.cuts.cap(sorted(overlaps.get(s, set()))),
                       overlapping=len(e["compartments"]) > 1 or bool(overlaps.get(s)))
                for s, e in sorted(subnets.items())]

    @staticmethod
    def _overlaps(subnets: dict[str, dict], networks: dict[str, Any]) -> dict[str, set[str]]:
        """Other subnets that overlap this one where the two hold addresses of more than one compartment."""
        out: dict[str, set[str]] = {}
        names = sorted(subnets)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                na, nb = networks[a], networks[b]
                if na.version != nb.version or not na.overlaps(nb):
                    continue
                if len(subnets[a]["compartments"] | subnets[b]["compartments"]) > 1:
                    out.setdefault(a, set()).add(b)
                    out.setdefault(b, set()).add(a)
        return out

    def _neighbor_facts(self) -> list:
        out: list = []
        for (address, if_index), e in sorted(self.neighbors.items(), key=lambda item: (str(item[0][1]), item[0][0])):
            out.append(Neighbor(address=address, mac=e["mac"], if_index=if_index, compartment_id=e["compartment_id"],
                                state=e["state"], unreachable=e["unreachable"], reachable=e["reachable"],
                                evidence=e["evidence"]))
        for (address, if_index), e in sorted(self.dad_failures.items(), key=lambda item: (str(item[0][1]), item[0][0])):
            out.append(DadFailure(address=address, if_index=if_index, compartment_id=e["compartment_id"],
                                  conflicting_mac=e["mac"], count=e["count"], evidence=e["evidence"]))
        return out
