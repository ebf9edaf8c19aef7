"""Wnv (HNVv1) events → lookup outcomes, drops and policy counts; Netvsc events → data-path periods."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from diag.decode import netvsc, wnv
from diag.facts.evidence import Bounded, Cuts, Span, iso, keep, pointer, when
from diag.facts.network import DataPath, ProviderDrop, Segment, WnvLookup, WnvPolicy
from diag.facts.tables import value_name

WNV_SOURCE, NETVSC_SOURCE = "Wnv", "Hyper-V-Netvsc"
_POLICY_COUNTERS = {1001: "virtual_routes", 1017: "physical_routes", 1004: "locator_addresses", 1006: "locator_records"}
_POLICY_REMOVED = {1002: "virtual_routes", 1018: "physical_routes", 1005: "locator_addresses", 1007: "locator_records"}
MAX_PERIODS = 16


class WnvCollector:
    def __init__(self) -> None:
        self.cuts = Cuts()  # what capped list fields of the facts left out
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
            out.append(WnvPolicy(**self.policy, virtual_subnets=self.cuts.cap(sorted(self.vsids), 256)))
        return out

    def segments(self) -> list[Segment]:
        return [Segment(segment_type="vsid", value=vsid, seen_on=self.cuts.cap(sorted(names)), sources=[WNV_SOURCE])
                for vsid, names in sorted(self.vsids.items())]


class PathTimeline:
    """The data-path periods of one interface, in time order whatever order the events come in.

    Events are read buffer by buffer, and per-processor buffers interleave: a VF NBL logged on one
    processor can be read after synthetic NBLs logged later on another. Each NBL event is placed on
    a timeline of non-overlapping runs (path, first, last, NBLs) sorted by time; neighbouring runs
    of one path merge. A period is a run; a switch is a boundary between two runs. Past ``limit``
    runs an event of the other path inside a run is counted in that run instead of splitting it
    (``not_split`` counts those).
    """

    __slots__ = ("starts", "runs", "limit", "not_split")

    def __init__(self, limit: int = 4096) -> None:
        self.starts: list[int] = []
        self.runs: list[list] = []  # [path, first filetime, last filetime, nbls, nbls estimated]
        self.limit = limit
        self.not_split = 0

    def add(self, filetime: int, path: str) -> None:
        starts, runs = self.starts, self.runs
        i = bisect_right(starts, filetime) - 1
        if i >= 0 and filetime <= runs[i][2]:  # inside run i
            run = runs[i]
            if run[0] == path or len(runs) + 2 > self.limit:
                self.not_split += run[0] != path
                run[3] += 1
                return
            tail = [run[0], filetime, run[2], 0, True]
            run[2] = filetime
            self._insert(i + 1, [path, filetime, filetime, 1, False])
            self._insert(i + 2, tail)
            self._split_count(run, tail)
            return
        before = runs[i] if i >= 0 else None
        after = runs[i + 1] if i + 1 < len(runs) else None
        if before is not None and before[0] == path:
            before[2], before[3] = filetime, before[3] + 1
            if after is not None and after[0] == path:
                self._merge(i)
        elif after is not None and after[0] == path:
            after[1], after[3] = filetime, after[3] + 1
            starts[i + 1] = filetime
        elif len(runs) < self.limit:
            self._insert(i + 1, [path, filetime, filetime, 1, False])
        else:
            self.not_split += 1
            (before or after)[3] += 1

    def _insert(self, index: int, run: list) -> None:
        self.starts.insert(index, run[1])
        self.runs.insert(index, run)

    def _merge(self, i: int) -> None:
        """Run i + 1 has run i's path: fold it into run i."""
        nxt = self.runs.pop(i + 1)
        self.starts.pop(i + 1)
        run = self.runs[i]
        run[2], run[3], run[4] = nxt[2], run[3] + nxt[3], run[4] or nxt[4]

    @staticmethod
    def _split_count(head: list, tail: list) -> None:
        """Share the NBLs of a run cut in two by the share of its span (a run keeps no per-event times):
        both halves say their count is an estimate."""
        total = head[3]
        head[4] = True
        span = max(1, tail[2] - head[1])
        tail[3] = total * (tail[2] - tail[1]) // span
        head[3] = total - tail[3]

    @property
    def switches(self) -> int:
        return max(0, len(self.runs) - 1)

    @property
    def current(self) -> str | None:
        return self.runs[-1][0] if self.runs else None

    def fallback(self) -> tuple[int | None, int | None]:
        """(last VF NBL, first synthetic NBL) of the last move from the VF to the synthetic path."""
        for before, after in zip(reversed(self.runs[:-1]), reversed(self.runs[1:])):
            if before[0] == "vf" and after[0] == "synthetic":
                return before[2], after[1]
        return None, None


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
            keep(self.vf_bind_evidence, {**pointer(record, NETVSC_SOURCE, event_id, event=name),
                                         "reason": value_name("netvsc", "vf_failure_reason", f.get("failure_reason")),
                                         "miniport": f.get("miniport_name")})

    def _iface(self, if_index: int) -> dict | None:
        return self.interfaces.slot(if_index, lambda: {"synthetic": 0, "vf": 0, "dropped": 0,
                                                       "timeline": PathTimeline(), "paths_seen": set(),
                                                       "evidence": []})

    def _path(self, f: dict, record: Any, event_id: int, name: str) -> None:
        iface = self._iface(f["if_index"])
        if iface is None:
            return
        path, filetime = f["data_path"], record.filetime
        iface[path] += 1
        if filetime is not None:
            iface["timeline"].add(filetime, path)
        if path not in iface["paths_seen"]:  # the first NBL on each path points into the trace
            iface["paths_seen"].add(path)
            keep(iface["evidence"], pointer(record, NETVSC_SOURCE, event_id, event=name))

    def facts(self) -> list:
        out: list = []
        for if_index, i in sorted(self.interfaces.items()):
            timeline = i["timeline"]
            runs = timeline.runs
            periods = [{"path": p, "start": iso(first), "end": iso(last), "nbls": n, "nbls_estimated": estimated}
                       for p, first, last, n, estimated in runs]
            if len(periods) > MAX_PERIODS:  # the first period and the most recent ones
                periods = periods[:1] + periods[-(MAX_PERIODS - 1):]
            last_vf, fell_back = timeline.fallback()
            out.append(DataPath(if_index=if_index, synthetic_nbls=i["synthetic"], vf_nbls=i["vf"],
                                dropped_nbls=i["dropped"], switches=timeline.switches, current_path=timeline.current,
                                periods=periods, periods_not_kept=max(0, len(runs) - MAX_PERIODS),
                                nbls_not_placed=timeline.not_split, last_vf_nbl=when(last_vf),
                                fell_back_at=when(fell_back), vf_bind_failures=self.vf_bind_failures,
                                evidence=i["evidence"]))
        for (where, direction, code), (span, evidence) in self.drops.items():
            out.append(ProviderDrop(provider=NETVSC_SOURCE, where=where, direction=direction, reason_code=code,
                                    reason_name=value_name("netvsc", "drop_reason", code), count=span.count,
                                    first_seen=when(span.first), last_seen=when(span.last), evidence=evidence))
        if self.vf_bind_failures and not self.interfaces:
            out.append(DataPath(if_index=0, vf_bind_failures=self.vf_bind_failures, evidence=self.vf_bind_evidence))
        return out
