"""TCPIP events → the network model (interfaces, compartments, addresses, routes, neighbours, DAD),
transport/network drops and port exhaustion."""

from __future__ import annotations

from typing import Any

from diag.decode.frames import PROTOCOLS
from diag.facts.evidence import Bounded, Span, keep, pointer, when
from diag.facts.netmodel import NetworkModel
from diag.facts.network import PortExhaustion, ProviderDrop
from diag.facts.tables import value_name

SOURCE = "TCPIP"
ADDRESS_STATES = {1127: None, 1128: "deleted", 1114: None, 1116: "tentative"}
# TCPIP_NEIGHBOR_STATE_ValueMap: 0 Unreachable; 5 Reachable and 6 Permanent mean the neighbour answered
# (or needs no answer). Incomplete, Probe, Delay and Stale say neither.
NEIGHBOR_UNREACHABLE, NEIGHBOR_ANSWERED = 0, frozenset({5, 6})


class TcpipCollector:
    def __init__(self, model: NetworkModel) -> None:
        self.model = model
        self.drops: Bounded = Bounded(1024)
        self.port_exhaustion = Span()
        self.port_evidence: list = []

    def event(self, event_id: int, name: str, fields: dict[str, Any], record: Any) -> None:
        ev = pointer(record, SOURCE, event_id, event=name)
        handler = _HANDLERS.get(event_id)
        if handler is not None:
            handler(self, event_id, fields, record, ev)

    def facts(self) -> list:
        out: list = []
        for (where, direction, code, reason), (span, packets, evidence) in self.drops.items():
            out.append(ProviderDrop(provider=SOURCE, where=where, direction=direction, reason_code=code,
                                    reason_name=reason, count=span.count, packets=packets, first_seen=when(span.first),
                                    last_seen=when(span.last), evidence=evidence))
        if self.port_exhaustion.count:
            span = self.port_exhaustion
            out.append(PortExhaustion(source=SOURCE, where="TCP port pool", protocol="TCP", count=span.count,
                                      first_seen=when(span.first), last_seen=when(span.last),
                                      evidence=self.port_evidence))
        return out


def _address(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    model, compartment = self.model, f.get("compartment_id")
    model.interface(f["interface"], SOURCE, compartment_id=compartment, evidence=ev)
    if event_id == 1115:
        model.dad_failure(f.get("address"), if_index=f["interface"], compartment_id=compartment,
                          mac=f.get("dl_address"), evidence=ev)
        return
    state = ADDRESS_STATES.get(event_id) or value_name("tcpip", "dad_state", f.get("dad_state")).lower()
    model.address(f.get("address"), SOURCE, if_index=f["interface"], compartment_id=compartment, state=state,
                  evidence=ev)


def _media(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    self.model.interface(f["interface"], SOURCE, compartment_id=f.get("compartment_id"),
                         connected=event_id == 1321, evidence=ev)


def _rundown(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    self.model.interface(f["if_index"], SOURCE, compartment_id=f.get("compartment_id"),
                         connected=bool(f["connected"]) if "connected" in f else None, evidence=ev)
    address = f.get("address")
    if address and address not in ("0.0.0.0", "::"):
        self.model.address(address, SOURCE, if_index=f["if_index"], compartment_id=f.get("compartment_id"), evidence=ev)


def _property(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    self.model.interface(f["interface"], SOURCE, compartment_id=f.get("compartment_id"), evidence=ev)


def _route(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    if event_id == 1145:
        # v0 keeps an IPv4 next hop in its own field; v1 (25H2) has only the sized one
        v4_copy = f.get("family") == "IPv4" and "ipv4_next_hop" in f
        self.model.route(f["interface"], f.get("address"), f.get("destination_prefix_length"),
                         f["ipv4_next_hop"] if v4_copy else f.get("next_hop"))


def _neighbor(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    if event_id == 1324:
        state = value_name("tcpip", "neighbor_state", f["new_state"])
        self.model.neighbor(f.get("ip_address"), if_index=f["interface"], compartment_id=f.get("compartment_id"),
                            mac=f.get("dl_address"), state=state, reachable=_reachability(f["new_state"]), evidence=ev)
        return
    self.model.neighbor(f.get("address"), if_index=f["interface"], mac=f.get("dl_address"),
                        state="Reachable" if event_id == 1149 else "Unreachable", reachable=event_id == 1149,
                        evidence=ev)


def _reachability(new_state: int) -> bool | None:
    if new_state == NEIGHBOR_UNREACHABLE:
        return False
    return True if new_state in NEIGHBOR_ANSWERED else None


def _drops(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    proto = PROTOCOLS.get(f.get("transport_protocol"), str(f.get("transport_protocol")))
    if event_id == 1214:
        local, remote = f.get("local") or {}, f.get("remote") or {}
        where = f"transport {proto} {local.get('address', '?')}:{local.get('port', '?')}"
        reason = f"transport drop reason {f['reason']}"
        ev = {**ev, "remote": f"{remote.get('address')}:{remote.get('port')}" if remote else None}
    else:
        family = value_name("tcpip", "address_family", f.get("address_family"))
        where = f"network layer {family} {proto}"
        reason = value_name("tcpip", "network_drop_reason", f["reason"])
        src = f.get("source_ipv6") or f.get("source_ipv4")
        dst = f.get("destination_ipv6") or f.get("destination_ipv4")
        ev = {**ev, "src": src, "dst": dst}
    entry = self.drops.slot((where, "in", f["reason"], reason), lambda: [Span(), 0, []])
    if entry is not None:
        entry[0].add(record.filetime)
        entry[1] += f.get("packet_count") or 0
        keep(entry[2], ev)


def _ports(self: TcpipCollector, event_id: int, f: dict, record: Any, ev: dict) -> None:
    self.port_exhaustion.add(record.filetime)
    keep(self.port_evidence, {**ev, "port": f.get("port")})


_HANDLERS = {
    **{e: _address for e in (1114, 1115, 1116, 1127, 1128)},
    1106: _media, 1321: _media, 1202: _rundown, 1144: _property, 1145: _route, 1146: _route,
    1148: _neighbor, 1149: _neighbor, 1324: _neighbor, 1214: _drops, 1215: _drops, 1195: _ports,
}
