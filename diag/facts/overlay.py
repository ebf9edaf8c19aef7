"""Wnv (HNVv1) events → lookup outcomes, drops and policy counts; Netvsc events → data-path periods."""

from __future__ import annotations

from typing import Any

from diag.decode import netvsc, wnv
from diag.facts.evidence import Bounded, Span, iso, keep, pointer, when
from diag.facts.network import DataPath, ProviderDrop, Segment, WnvLookup, WnvPolicy
from diag.facts.tables import value_name

WNV_SOURCE, NETVSC_SOURCE = "Wnv", "Hyper-V-Netvsc"
_POLICY_COUNTERS = {1001: "virtual_routes", 1017: "physical_routes", 1004: "locator_addresses", 1006: "locator_records"}
_POLICY_REMOVED = {1002: "virtual_routes", 1018: "physical_routes", 1005: "locator_addresses", 1007: "locator_records"}
MAX_PERIODS = 16


class WnvCollector:
    def __init__(self) -> None:
        self.lookups: Bounded = Bounded(1024)
        self.drops: Bounded = Bounded(1024)
        self.policy = {"virtual_routes": 0, "physical_routes": 0, "locator_records": 0, "locator_addresses": 0,
                       "failures": 0}
        self.vsids: dict[int, set[str]] = {}

    def event(self, event_id: int, name: str, f: dict[str, Any], record: Any) -> None:
        ev = pointer(record, WNV_SOURCE, event_id, event=name)
        vsid = f.get("virtual_subnet_id")
        if vsid:
            self.vsids.setdefault(vsid, set()).add(name)
        if event_id in (wnv.EVENT_LOOKUP_FAILED, wnv.EVENT_LOOKUP_SUCCEEDED):
            self._lookup(event_id, f, record, ev)
        elif event_id == wnv.EVENT_PACKET_DROPPED:
            self._drop(f, record, ev)
        elif f.get("status") or f.get("failure_reason"):
            self.policy["failures"] += 1
        elif event_id in _POLICY_COUNTERS:
            self.policy[_POLICY_COUNTERS[event_id]] += 1
        elif event_id in _POLICY_REMOVED:
            key = _POLICY_REMOVED[event_id]
            self.policy[key] = max(0, self.policy[key] - 1)

    def _lookup(self, event_id: int, f: dict, record: Any, ev: dict) -> None:
        failed = event_id == wnv.EVENT_LOOKUP_FAILED
        code = f["lookup_failure"] if failed else None
        direction = wnv.DIRECTIONS.get(f["direction"], "unknown")
        entry = self.lookups.slot(("failed" if failed else "succeeded", code, f["virtual_subnet_id"], direction),
                                  lambda: (Span(), []))
        if entry is not None:
            entry[0].add(record.filetime)
            keep(entry[1], {**ev, "src": f["source_ip_in_packet"], "dst": f["destination_ip_in_packet"]})

    def _drop(self, f: dict, record: Any, ev: dict) -> None:
        reason = value_name("wnv", "drop_reason", f["drop_reason"])
        where = f"virtual subnet {f['virtual_subnet_id']}"
        direction = wnv.DIRECTIONS.get(f["direction"], "unknown")
        entry = self.drops.slot((where, direction, f["drop_reason"], reason), lambda: (Span(), []))
        if entry is not None:
            entry[0].add(record.filetime)
            keep(entry[1], {**ev, "src": f["source_ca"], "dst": f["destination_ca"], "outer_src": f["source_pa"],
                            "outer_dst": f["destination_pa"]})

    def facts(self) -> list:
        out: list = []
        for (outcome, code, vsid, direction), (span, evidence) in self.lookups.items():
            out.append(WnvLookup(outcome=outcome, reason_code=code,
                                 reason_name=value_name("wnv", "lookup_failure", code) if code is not None else None,
                                 virtual_subnet_id=vsid, direction=direction, count=span.count, evidence=evidence))
        for (where, direction, code, reason), (span, evidence) in self.drops.items():
            out.append(ProviderDrop(provider=WNV_SOURCE, where=where, direction=direction, reason_code=code,
                                    reason_name=reason, count=span.count, first_seen=when(span.first),
                                    last_seen=when(span.last), evidence=evidence))
        if any(self.policy.values()) or self.vsids:
            out.append(WnvPolicy(**self.policy, virtual_subnets=sorted(self.vsids)[:256]))
        return out

    def segments(self) -> list[Segment]:
        return [Segment(segment_type="vsid", value=vsid, seen_on=sorted(names)[:64], sources=[WNV_SOURCE])
                for vsid, names in sorted(self.vsids.items())]


class NetvscCollector:
    """Per-interface counts of NBLs on the synthetic and VF paths, and the periods between switches."""

    def __init__(self) -> None:
        self.interfaces: Bounded = Bounded(1024)
        self.drops: Bounded = Bounded(1024)
        self.vf_bind_failures = 0
        self.vf_bind_evidence: list = []

    def event(self, event_id: int, name: str, f: dict[str, Any], record: Any) -> None:
        if event_id in netvsc.DATA_PATH_EVENTS:
            self._path(f, record, event_id, name)
        elif event_id in (16, 17, netvsc.EVENT_NBL_DROPPED):
            ev = pointer(record, NETVSC_SOURCE, event_id, event=name)
            where = f.get("miniport_name") or (f"IfIndex {f['if_index']}" if "if_index" in f else "netvsc microport")
            key = (where, str(f.get("direction", "unknown")), f["drop_reason"])
            entry = self.drops.slot(key, lambda: (Span(), []))
            if entry is not None:
                entry[0].add(record.filetime)
                keep(entry[1], {**ev, "status": f.get("status")})
            if "if_index" in f:
                iface = self._iface(f["if_index"])
                if iface is not None:
                    iface["dropped"] += 1
        elif event_id == 39:
            self.vf_bind_failures += 1
            keep(self.vf_bind_evidence, pointer(record, NETVSC_SOURCE, event_id, event=name))

    def _iface(self, if_index: int) -> dict | None:
        return self.interfaces.slot(if_index, lambda: {"synthetic": 0, "vf": 0, "dropped": 0, "switches": 0,
                                                       "current": None, "since": None, "count": 0, "periods": [],
                                                       "evidence": []})

    def _path(self, f: dict, record: Any, event_id: int, name: str) -> None:
        iface = self._iface(f["if_index"])
        if iface is None:
            return
        path, filetime = f["data_path"], record.filetime
        iface[path] += 1
        if iface["current"] != path:
            if iface["current"] is not None:
                iface["switches"] += 1
                self._close(iface, filetime)
                keep(iface["evidence"], pointer(record, NETVSC_SOURCE, event_id, event=name))
            iface["current"], iface["since"], iface["count"] = path, filetime, 0
            if not iface["evidence"]:
                keep(iface["evidence"], pointer(record, NETVSC_SOURCE, event_id, event=name))
        iface["count"] += 1
        iface["last"] = filetime

    @staticmethod
    def _close(iface: dict, until: int | None) -> None:
        periods = iface["periods"]
        period = {"path": iface["current"], "start": iso(iface["since"]), "end": iso(until), "nbls": iface["count"]}
        if len(periods) >= MAX_PERIODS:
            periods.pop(1)  # keep the first period and the most recent ones
        periods.append(period)

    def facts(self) -> list:
        out: list = []
        for if_index, i in sorted(self.interfaces.items()):
            periods = list(i["periods"])
            if i["current"] is not None:
                periods.append({"path": i["current"], "start": iso(i["since"]), "end": iso(i.get("last")),
                                "nbls": i["count"]})
            out.append(DataPath(if_index=if_index, synthetic_nbls=i["synthetic"], vf_nbls=i["vf"],
                                dropped_nbls=i["dropped"], switches=i["switches"], current_path=i["current"],
                                periods=periods[-MAX_PERIODS:], vf_bind_failures=self.vf_bind_failures,
                                evidence=i["evidence"]))
        for (where, direction, code), (span, evidence) in self.drops.items():
            out.append(ProviderDrop(provider=NETVSC_SOURCE, where=where, direction=direction, reason_code=code,
                                    reason_name=f"netvsc drop reason {code}", count=span.count,
                                    first_seen=when(span.first), last_seen=when(span.last), evidence=evidence))
        if self.vf_bind_failures and not self.interfaces:
            out.append(DataPath(if_index=0, vf_bind_failures=self.vf_bind_failures, evidence=self.vf_bind_evidence))
        return out
