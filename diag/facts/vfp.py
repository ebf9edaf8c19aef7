"""VfpExt events → which VFP port, layer, group and rule dropped or blocked traffic; encapsulation and NAT per port.

Three facts, all bounded by what the host has (ports, rules, reasons), never by packets:
* ``vfp_drop``: packets a port's guards or forwarding dropped, per (port, direction, reason);
* ``vfp_rule``: packets a rule matched (or a layer matched no rule for), per (port, direction, layer,
  group, rule, rule type, outcome, status); ``blocked`` when the rule's type is Block;
* ``vfp_port``: per port, rule matches, encap-type rule matches, packets encapsulated and
  decapsulated (with encap types, isolation ids and outer destinations), NAT port bindings.

Where pktmon logged drops with VFP's reasons (701-719) in the same trace, each drop and rule group is
joined to them by the packets' addresses: a pktmon drop group whose sample packets are among the
flows (5-tuples, or MAC pairs for layer-2 drops) VFP reported for the group. Only pktmon's sample
packets (5 per group) can be compared, so a join found is certain and one not found is not proof
of absence: the fact says how many pktmon groups were compared.

Field names arrive as our decoder spells them or, from a schema the trace carries, as the manifest
does (``SrcIpv4Addr``); both are read through the same normalised names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Annotated, Literal

from pydantic import Field

from diag import knowledge
from diag.decode import vfp
from diag.decode.frames import PROTOCOLS
from diag.facts.evidence import Bounded, Cuts, Span, keep, pointer, when
from diag.facts.models import Count, Fact, Scalar
from diag.facts.tables import value_name

SOURCE = "Hyper-V-VfpExt"
MAX_FLOWS = 1024  # flows remembered per group, for the join with pktmon's drops
SAMPLES = 5
RULE_EVENTS = vfp.RULE_MATCH_EVENTS | vfp.RULE_AUDIT_EVENTS | vfp.RULE_NO_MATCH_EVENTS
ENCAP_RULE_TYPES = frozenset({9, 17})  # MapEncap, RouteEncap (VFPEXT_MapRuleType)
BLOCK_RULE_TYPE = 2
TRANSFORM_EVENTS = frozenset({151, 152, 153, 154, 155, 156})
# the events the collector reads; VfpExt's other events (state, QoS, save / restore) are judged by the fact
# builder as any SDN provider's are: by their status or a failure in their name
MODELLED_EVENTS = vfp.DROP_EVENTS | RULE_EVENTS | TRANSFORM_EVENTS | vfp.NAT_BINDING_EVENTS
Sample = Annotated[list[dict[str, Scalar]], Field(max_length=SAMPLES)]
Evidence = Annotated[list[dict[str, Scalar]], Field(max_length=8)]


class VfpDrop(Fact):
    """Packets VFP dropped on one port, in one direction, for one reason (its guards, limiters, forwarding)."""

    kind: Literal["vfp_drop"] = "vfp_drop"
    port: str
    direction: str = "unknown"
    event_name: str
    reason_code: int | None = None
    reason_name: str
    count: Annotated[int, Field(ge=1)]
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sample: Sample = []
    destinations: str | None = None
    pktmon_reason: str | None = Field(None, description="pktmon's drop reason of the same meaning, by name")
    pktmon_drops: Count = Field(0, description="pktmon drop events (VFP reasons 701-719) of groups whose sample "
                                               "packets are among this group's packets")
    pktmon_components: str | None = Field(None, description="where pktmon logged those drops")
    pktmon_groups_compared: Count = Field(0, description="pktmon drop groups with VFP reasons compared to this one")
    evidence: Evidence = []


class VfpRule(Fact):
    """Packets one VFP rule processed on one port (or a layer where no rule matched them)."""

    kind: Literal["vfp_rule"] = "vfp_rule"
    port: str
    direction: str = "unknown"
    layer: str
    group: str | None = None
    rule: str | None = None
    rule_type: str | None = None
    rule_type_code: int | None = None
    outcome: Literal["matched", "audited", "no match"]
    blocked: bool = Field(False, description="a Block rule matched: VFP dropped these packets by policy")
    status: int | None = None
    count: Annotated[int, Field(ge=1)]
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sample: Sample = []
    destinations: str | None = None
    pktmon_drops: Count = 0
    pktmon_components: str | None = None
    pktmon_groups_compared: Count = 0
    evidence: Evidence = []


class VfpPort(Fact):
    """One VFP port: what its rules matched, what it encapsulated, its NAT port bindings."""

    kind: Literal["vfp_port"] = "vfp_port"
    port: str
    rule_matches: Count = 0
    blocked: Count = 0
    encap_rule_matches: Count = Field(0, description="matches of MapEncap / RouteEncap rules (overlay policy)")
    encapsulated: Count = 0
    decapsulated: Count = 0
    encap_types: Annotated[list[str], Field(max_length=8)] = []
    isolation_ids: Annotated[list[int], Field(max_length=64)] = []
    outer_destinations: Annotated[list[str], Field(max_length=16)] = []
    transform_logged: bool = Field(False, description="the trace holds VFP header-transform events (151-156) of any "
                                                      "port: the keyword that logs encapsulation was on")
    nat_bindings_created: Count = 0
    nat_bindings_deleted: Count = 0
    nat_bindings: Sample = []
    drops: Count = 0
    evidence: Evidence = []


MODELS = (VfpDrop, VfpRule, VfpPort)


_NORMAL: dict[str, str] = {}  # field name -> its normalised spelling, computed once per name


def _norm(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in fields.items():
        normal = _NORMAL.get(key)
        if normal is None:
            normal = _NORMAL[key] = key.replace("_", "").lower()
        out[normal] = value
    return out


def _port(f: dict[str, Any]) -> str:
    name = f.get("portname") or f.get("srcportname")
    if name:
        return str(name)
    number = f.get("portid", f.get("srcportid"))
    return f"port {number}" if number is not None else "unknown port"


def _flow(f: dict[str, Any]) -> dict[str, Scalar]:
    """The packet's addresses as pktmon samples spell them (src, dst, protocol, sport, dport)."""
    out: dict[str, Scalar] = {}
    src = f.get("srcipv4addr") or f.get("srcipv6addr")
    dst = f.get("dstipv4addr") or f.get("dstipv6addr")
    if src is not None:
        out["src"], out["dst"] = src, dst
    protocol = f.get("ipprotocol")
    if isinstance(protocol, int):
        out["protocol"] = PROTOCOLS.get(protocol, str(protocol))
    if f.get("srcport") is not None:
        out["sport"], out["dport"] = f["srcport"], f.get("dstport")
    if f.get("srcmacaddr"):
        out["src_mac"], out["dst_mac"] = f["srcmacaddr"], f.get("dstmacaddr")
    return out


def _mac(text: Any) -> str | None:
    return "".join(ch for ch in str(text).lower() if ch in "0123456789abcdef") if text else None


def flow_key(sample: dict[str, Any]) -> tuple | None:
    """What two reports of one packet share: the 5-tuple, or for frames without IP the MAC pair."""
    if sample.get("src") is not None:
        return ("ip", sample.get("src"), sample.get("dst"), sample.get("protocol"), sample.get("sport"),
                sample.get("dport"))
    if sample.get("src_mac"):
        return ("mac", _mac(sample["src_mac"]), _mac(sample.get("dst_mac")))
    return None


def _destinations(samples: list[dict]) -> str | None:
    seen: dict[str, None] = {}
    for s in samples:
        if s.get("dst") is None:
            continue
        port = s.get("dport")
        seen.setdefault(f"{s['dst']} ({s.get('protocol')} {port})" if port is not None else
                        f"{s['dst']} ({s.get('protocol')})", None)
    return ", ".join(seen) or None


class _Group:
    __slots__ = ("span", "samples", "flows", "evidence")

    def __init__(self) -> None:
        self.span = Span()
        self.samples: list[dict] = []
        self.flows: set[tuple] = set()
        self.evidence: list[dict] = []

    def add(self, record: Any, flow: dict, ev: dict, cuts: Cuts) -> None:
        self.span.add(record.filetime)
        key = flow_key(flow)
        if key is not None and key not in self.flows:
            if len(self.flows) < MAX_FLOWS:
                self.flows.add(key)
                keep(self.samples, flow, SAMPLES)
            else:  # not remembered for the join with pktmon: counted in the trace's not_kept
                cuts.count += 1
        keep(self.evidence, ev)


class VfpCollector:
    def __init__(self) -> None:
        self.cuts = Cuts()
        self.drops: Bounded = Bounded(1024)
        self.rules: Bounded = Bounded(2048)
        self.ports: Bounded = Bounded(1024)
        self.transform_events = 0

    def event(self, event_id: int, name: str, fields: dict[str, Any], record: Any) -> None:
        f = _norm(fields)
        port = _port(f)
        direction = vfp.DIRECTIONS.get(f.get("direction"), "unknown")
        ev = pointer(record, SOURCE, event_id, event=name, port=port)
        state = self._port(port)
        if event_id in vfp.DROP_EVENTS:
            key = (port, direction, name, f.get("reason"))
            group = self.drops.slot(key, _Group)
            if group is not None:
                group.add(record, _flow(f), ev, self.cuts)
            if state is not None:
                state["drops"] += 1
        elif event_id in RULE_EVENTS:
            self._rule(event_id, f, port, direction, record, ev, state)
        elif event_id in TRANSFORM_EVENTS:
            self.transform_events += 1
            if state is not None:
                self._transform(event_id, f, state, ev)
        elif event_id in vfp.NAT_BINDING_EVENTS and state is not None:
            self._nat(f, state, ev)

    def _port(self, port: str) -> dict | None:
        return self.ports.slot(port, lambda: {"rule_matches": 0, "blocked": 0, "encap_rule_matches": 0,
                                              "encapsulated": 0, "decapsulated": 0, "encap_types": {},
                                              "isolation_ids": {}, "outer": {}, "created": 0, "deleted": 0,
                                              "bindings": [], "drops": 0, "evidence": []})

    def _rule(self, event_id: int, f: dict, port: str, direction: str, record: Any, ev: dict,
              state: dict | None) -> None:
        if event_id in vfp.RULE_NO_MATCH_EVENTS:
            outcome, group_id, rule_id, rule_type = "no match", None, None, None
        else:
            outcome = "audited" if event_id in vfp.RULE_AUDIT_EVENTS else "matched"
            group_id, rule_id, rule_type = f.get("groupid"), f.get("ruleid"), f.get("ruletype")
        key = (port, direction, f.get("layerid") or "unknown layer", group_id, rule_id, rule_type, outcome,
               f.get("status"))
        group = self.rules.slot(key, _Group)
        if group is not None:
            group.add(record, _flow(f), ev, self.cuts)
        if state is not None and outcome == "matched":
            state["rule_matches"] += 1
            state["blocked"] += rule_type == BLOCK_RULE_TYPE
            state["encap_rule_matches"] += rule_type in ENCAP_RULE_TYPES
            keep(state["evidence"], ev)

    @staticmethod
    def _transform(event_id: int, f: dict, state: dict, ev: dict) -> None:
        if event_id == vfp.EVENT_ENCAP:
            state["encapsulated"] += 1
            encap = value_name("vfpext", "encap_type", f.get("encaptype"))
            state["encap_types"][encap] = None
            if isinstance(f.get("grekey"), int) and len(state["isolation_ids"]) < 64:
                state["isolation_ids"][f["grekey"]] = None
            if f.get("dstipv4addr") and len(state["outer"]) < 16:
                state["outer"][f["dstipv4addr"]] = None
            keep(state["evidence"], ev)
        elif event_id == vfp.EVENT_DECAP:
            state["decapsulated"] += 1

    @staticmethod
    def _nat(f: dict, state: dict, ev: dict) -> None:
        action = f.get("natportbindingaction")
        if action == 0:
            state["created"] += 1
        elif action == 1:
            state["deleted"] += 1
        internal = f.get("internalipv4addr") or f.get("internalipv6addr")
        external = f.get("externalipv4addr") or f.get("externalipv6addr")
        keep(state["bindings"], {"action": value_name("vfpext", "nat_port_binding_action", action),
                                 "internal": f"{internal}:{f.get('internalipv4port', f.get('internalipv6port'))}",
                                 "external": f"{external}:{f.get('externalipv4port', f.get('externalipv6port'))}",
                                 "time": ev.get("time")})

    def facts(self, pktmon_drops: list, os_build: int | None = None) -> list:
        """The VFP facts, joined to ``pktmon_drops`` (the trace's ``pktmon_drop`` facts)."""
        vfp_reasons = [d for d in pktmon_drops if _is_vfp_reason(d.reason_code, os_build)]
        out: list = []
        for (port, direction, name, code), group in self.drops.items():
            join = _join(group.flows, vfp_reasons)
            out.append(VfpDrop(
                port=port, direction=direction, event_name=name, reason_code=code,
                reason_name=value_name("vfpext", "packet_drop_reason", code), count=group.span.count,
                first_seen=when(group.span.first), last_seen=when(group.span.last), sample=group.samples,
                destinations=_destinations(group.samples), pktmon_reason=_pktmon_reason(code), **join,
                evidence=group.evidence))
        for (port, direction, layer, group_id, rule_id, rule_type, outcome, status), group in self.rules.items():
            join = _join(group.flows, vfp_reasons)
            out.append(VfpRule(
                port=port, direction=direction, layer=layer, group=group_id, rule=rule_id,
                rule_type=value_name("vfpext", "rule_type", rule_type) if rule_type is not None else None,
                rule_type_code=rule_type, outcome=outcome,
                blocked=outcome == "matched" and rule_type == BLOCK_RULE_TYPE, status=status,
                count=group.span.count, first_seen=when(group.span.first), last_seen=when(group.span.last),
                sample=group.samples, destinations=_destinations(group.samples), **join, evidence=group.evidence))
        for port, s in sorted(self.ports.items()):
            out.append(VfpPort(
                port=port, rule_matches=s["rule_matches"], blocked=s["blocked"],
                encap_rule_matches=s["encap_rule_matches"], encapsulated=s["encapsulated"],
                decapsulated=s["decapsulated"], encap_types=self.cuts.cap(s["encap_types"], 8),
                isolation_ids=self.cuts.cap(s["isolation_ids"], 64), outer_destinations=self.cuts.cap(s["outer"], 16),
                transform_logged=self.transform_events > 0, nat_bindings_created=s["created"],
                nat_bindings_deleted=s["deleted"], nat_bindings=s["bindings"], drops=s["drops"],
                evidence=s["evidence"]))
        return out


def _is_vfp_reason(code: int, os_build: int | None) -> bool:
    span = knowledge.drop_reason_range(code, os_build)
    return span is not None and span.layer.startswith("VFP")


def _join(flows: set[tuple], pktmon_drops: list) -> dict[str, Any]:
    matched = [d for d in pktmon_drops if any(flow_key(s) in flows for s in d.sample)]
    components = dict.fromkeys(f"{d.component_id} ({d.component_name})" for d in matched)
    return {"pktmon_drops": sum(d.count for d in matched), "pktmon_components": ", ".join(components) or None,
            "pktmon_groups_compared": len(pktmon_drops)}


def _pktmon_reason(vfp_code: int | None) -> str | None:
    """pktmon's reason for a VFP drop reason: the catalogue names its symbol; the name is pktmon's."""
    symbol = value_name("vfpext", "pktmon_drop_reason", vfp_code)
    if symbol.startswith("unknown"):
        return None
    codes = knowledge.load_pktmon_knowledge().drop_reasons.current.codes
    code = next((c for c, reason in codes.items() if reason.symbol == symbol), None)
    return f"{code} {codes[code].name}" if code is not None else None
