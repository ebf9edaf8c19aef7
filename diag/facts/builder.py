"""``FactBuilder``: decoded events of one trace → the host's network model as facts.

    builder = FactBuilder(trace.header)
    builder.event(decoded, record)          # every decoded event not on the PktMon hot path
    facts = builder.facts(pktmon_digest, host_info, stats=decoder.stats)

Each provider has a collector (diag/facts/{vswitch,ipstack,nat,overlay,capture,vfp}.py); pktmon's
digest is built on the hot path by the caller and handed to ``facts``. The IP model
(compartments, interfaces, addresses, subnets) merges TCPIP events, pktmon component properties,
WinNat and the host-information files. Fact counts are bounded by what the host has, not by the
number of packets (see diag/facts/network.py).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from diag import knowledge
from diag.decode import LAYER_FAST, ndiscap, netvsc, pktmon, tcpip, vfp, vmswitch, winnat, wnv
from diag.decode import hns, lbfo
from diag.facts.capture import CaptureCollector
from diag.facts.evidence import Bounded, Cuts, keep, pointer, when
from diag.facts.ipstack import TcpipCollector
from diag.facts.nat import NatCollector
from diag.facts.netmodel import NetworkModel
from diag.facts.network import ProviderCoverage, ProviderEvent, Segment, TraceSpan
from diag.facts.overlap import overlap_facts
from diag.facts.sriov import vf_pair_facts
from diag.facts.overlay import NetvscCollector, WnvCollector
from diag.facts.pktmon import (
    PROP_COMPARTMENT, PROP_IF_INDEX, PROP_IP_ADDRESS, PROP_IP_IF_INDEX, PROP_MINIPORT_IF_INDEX, PROP_PHYS_ADDRESS, PROP_VLAN, PROP_VSID,
    PktmonDigest, component_facts, drop_facts, drop_rate_facts, flow_facts, neighbor_facts, path_facts, route_facts,
    tcp_facts,
)
from diag.facts.tables import load_catalogue, provider_entry
from diag.facts.vfp import MODELLED_EVENTS as VFP_MODELLED, VfpCollector
from diag.facts.vswitch import VSwitchCollector
from diag.read.logfile import LogfileHeader

__all__ = ["FactBuilder"]

OTHER_PROVIDERS = {**hns.PROVIDERS, **vfp.PROVIDERS, **lbfo.PROVIDERS}
_FAILURE_NAME = re.compile(r"fail|error", re.IGNORECASE)
# Told here rather than by a rule's regex: durable_rules' matcher misses `.*(ab|cd).*` matches (the rule loader
# refuses such patterns: diag/engine/conditions.py, _choice_between_open_repeats).
_NETWORKING_PROVIDER = re.compile(
    r"lbfo|ndisimplatform|hns|host-network-service|vfp|vmswitch|netvsc|tcpip|udpip|winnat|wnv|ndis|pktmon|vmms"
    r"|kernel-network", re.IGNORECASE)
# events of the providers known only by their messages (LBFO) whose name says the team is in trouble
_TROUBLE_NAME = re.compile(r"fail|drop|conflict|churn|disconnect", re.IGNORECASE)
_STATUS_FIELDS = ("status", "Status", "HResult", "hresult", "Result", "ErrorCode", "error", "failed_reason",
                  "FailedReason")
INTERNAL_PROVIDERS = frozenset({"68fdd900-4a3e-11d1-84f4-0000f80464e3", "bbccf6c1-6cd1-48c4-80ff-839482e37671"})


class FactBuilder:
    def __init__(self, header: LogfileHeader) -> None:
        self.header = header
        self.model = NetworkModel()
        self.vswitch = VSwitchCollector()
        self.tcpip = TcpipCollector(self.model)
        self.nat = NatCollector(self.model)
        self.wnv = WnvCollector()
        self.netvsc = NetvscCollector()
        self.capture = CaptureCollector()
        self.vfp = VfpCollector()
        self.other: Bounded = Bounded(256)
        self.named_only: Bounded = Bounded(256)  # (guid, provider, event id, name) -> [count, evidence]
        self.events = 0
        self.evidence_events = 0  # events that reached a collector: what the rules can judge the network by
        self.events_not_used = 0  # decoded by a generic layer (field names unknown to the collectors)
        self.cuts = Cuts()  # what capped list fields of the facts it makes itself left out
        self.event_errors = 0  # events a collector could not use; the first message is kept
        self.first_error: str | None = None
        self._collectors = {
            vmswitch.PROVIDER: self.vswitch, tcpip.PROVIDER: self.tcpip, winnat.PROVIDER: self.nat,
            wnv.PROVIDER: self.wnv, netvsc.PROVIDER: self.netvsc, ndiscap.PROVIDER: self.capture,
        }

    SCHEMA_ONLY_PROVIDERS = frozenset(OTHER_PROVIDERS)  # only a schema the trace carries describes them

    def events_not_replayed(self, count: int) -> None:
        """Events of those providers read before their schema and past the decoder's replay budget."""
        if count:
            self.event_errors += count
            if self.first_error is None:
                self.first_error = f"{count} HNS/VFP/LBFO events read before their schema were past the replay budget"

    def event(self, decoded: Any, record: Any) -> None:
        """One decoded event. PktMon events belong to the digest and are ignored here."""
        if decoded.provider == pktmon.PROVIDER:
            return
        self.events += 1
        collector = self._collectors.get(decoded.provider)
        if collector is not None:
            if decoded.layer != LAYER_FAST:
                self.events_not_used += 1
                return
            self.evidence_events += 1
            try:
                collector.event(decoded.event_id, decoded.event_name or str(decoded.event_id), decoded.fields, record)
            except (KeyError, TypeError, ValueError) as exc:
                self._collector_error(decoded, exc)
        elif decoded.provider == vfp.PROVIDER:
            self.evidence_events += 1
            if decoded.event_id in VFP_MODELLED:  # whichever layer decoded them
                try:
                    self.vfp.event(decoded.event_id, decoded.event_name or str(decoded.event_id), decoded.fields,
                                   record)
                except (KeyError, TypeError, ValueError) as exc:
                    self._collector_error(decoded, exc)
            else:  # its state events, and those no public layout describes (decoded from the trace's schema)
                self._other(decoded, record)
        elif decoded.provider in OTHER_PROVIDERS:
            self.evidence_events += 1
            self._other(decoded, record)

    def _collector_error(self, decoded: Any, exc: Exception) -> None:
        self.event_errors += 1
        if self.first_error is None:
            self.first_error = f"{decoded.provider_name} event {decoded.event_id}: {type(exc).__name__}: {exc}"

    def undecoded(self, record: Any) -> None:
        """An event no layer decoded. Of the providers known only by their message texts (LBFO), the troubled
        ones are counted by name: their fields stay unread, but that they happened is evidence."""
        names = _message_names().get(record.provider)
        name = names.get(record.event_id) if names else None
        if name is None or not _TROUBLE_NAME.search(name):
            return
        provider = OTHER_PROVIDERS.get(record.provider, record.provider)
        self.evidence_events += 1
        entry = self.named_only.slot((record.provider, provider, record.event_id, name), lambda: [0, []])
        if entry is not None:
            entry[0] += 1
            keep(entry[1], pointer(record, provider, record.event_id, event=name))

    def _other(self, decoded: Any, record: Any) -> None:
        """HNS / VFP / LBFO events decoded from a schema the trace carries: keep the ones that report a failure."""
        status = _status(decoded.fields)
        name = decoded.event_name or f"event {decoded.event_id}"
        if not (status or _FAILURE_NAME.search(name)):
            return
        provider = OTHER_PROVIDERS[decoded.provider]
        entry = self.other.slot((provider, decoded.event_id, name, status), lambda: [0, []])
        if entry is not None:
            entry[0] += 1
            keep(entry[1], pointer(record, provider, decoded.event_id, event=name))

    # -- facts ---------------------------------------------------------------------------------------
    def facts(self, pktmon_digest: PktmonDigest | None, host_info: Any = None, *, stats: Any = None,
              reason_names: dict[int, str] | None = None) -> list:
        """Every fact of the trace. ``stats``: the EventDecoder's ``DecodeStats`` (provider coverage);
        ``reason_names``: the pktmon drop-reason value map the trace embeds, if any."""
        digest = pktmon_digest or PktmonDigest(track=False)
        if digest.track:
            digest.finish()
        if digest.components:
            self._merge_pktmon(digest)
        if host_info is not None:
            self._merge_host_info(host_info)
        os_build = self.header.os_build
        label = (lambda code: (reason_names or {}).get(code) or knowledge.drop_reason_label(code, os_build))
        out: list = self._coverage(stats)
        out += drop_facts(digest, os_build, reason_names)
        out += drop_rate_facts(digest)
        out += component_facts(digest)
        out += route_facts(digest)
        out += path_facts(digest, label)
        out += flow_facts(digest)
        out += tcp_facts(digest) + neighbor_facts(digest)
        for collector in (self.vswitch, self.tcpip, self.nat, self.wnv, self.netvsc, self.capture):
            out += collector.facts()
        out += self.model.facts()
        out += self._segments(digest)
        out += self.vfp.facts([f for f in out if f.kind == "pktmon_drop"], os_build)
        out += [ProviderEvent(provider=p, event_name=n, event_id=e, status=s, count=c, evidence=ev)
                for (p, e, n, s), (c, ev) in self.other.items()]
        decoded_kinds = {(guid, event_id) for (guid, event_id, _v), o in (stats.outcomes.items() if stats else ())
                         if o.decoded}
        out += [ProviderEvent(provider=p, event_name=n, event_id=e, count=c, evidence=ev)
                for (guid, p, e, n), (c, ev) in self.named_only.items() if (guid, e) not in decoded_kinds]
        out += overlap_facts(out, self.cuts)
        out += vf_pair_facts(out, self.cuts)
        # last: what the trace fact says was not kept includes the list cuts made while building the others
        return [self._trace_span(digest, stats, host_info), *out]

    def _trace_span(self, digest: PktmonDigest, stats: Any, host_info: Any) -> TraceSpan:
        h = self.header
        start, end = when(h.start_time), when(h.end_time)
        coverage = self._coverage(stats)
        return TraceSpan(
            os_build=h.os_build, os_version=f"{h.os_major}.{h.os_minor}", start=start, end=end,
            duration_seconds=(end - start).total_seconds() if start and end and end >= start else None,
            cpu_count=h.cpu_count, pointer_size=h.pointer_size, providers=len(coverage),
            providers_not_decoded=sum(c.status != "decoded" for c in coverage), packet_events=digest.packets,
            packet_paths=digest.paths, packet_numbering=digest.numbering, paths_rebuilt=digest.chains.opened,
            path_links_ambiguous=digest.chains.ambiguous, paths_split=digest.paths_split,
            drop_events=digest.drops, dropped_frames=digest.dropped_frames,
            evidence_events=digest.packets + self.evidence_events,
            evidence_gap=None if digest.packets + self.evidence_events else self._evidence_gap(digest, coverage),
            host_info_files=len(getattr(host_info, "files", []) or []), events_not_used=self.events_not_used,
            event_errors=self.event_errors, first_error=self.first_error, not_kept=self._not_kept(digest),
            circular=h.circular, first_packet_delay_seconds=self._first_packet_delay(digest, start),
            payload_truncated=digest.payload_truncated,
            logged_size=digest.logged_size_max if digest.payload_truncated else None,
            payload_truncated_percent=(round(100 * digest.payload_truncated / digest.packets, 2) if digest.packets
                                       else None))

    @staticmethod
    def _evidence_gap(digest: PktmonDigest, coverage: list[ProviderCoverage]) -> str:
        """Why a trace with no evidence cannot answer, in one sentence."""
        def names(items: list[ProviderCoverage]) -> str:
            shown = ", ".join(f"{c.name} ({c.events} event{'s' if c.events != 1 else ''})" for c in items[:3])
            return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")

        networking = sorted((c for c in coverage if c.networking), key=lambda c: -c.events)
        if digest.components:
            return (f"pktmon logged its list of {len(digest.components)} components but not one packet (started "
                    "without --capture, or its filters matched nothing)")
        if not coverage:
            return "the file holds no event at all, only its header"
        if not networking:
            return f"it holds no networking events, only {names(sorted(coverage, key=lambda c: -c.events))}"
        if not any(c.decoded for c in networking):
            return f"its networking events could not be decoded: {names(networking)}"
        return f"its networking events ({names(networking)}) are of no kind the rules read"

    @staticmethod
    def _first_packet_delay(digest: PktmonDigest, start: Any) -> float | None:
        first = when(digest.filetime(digest.first_ticks)) if digest.first_ticks is not None else None
        return round((first - start).total_seconds(), 6) if first is not None and start is not None else None

    def _not_kept(self, digest: PktmonDigest) -> int:
        """Objects turned away by a full table (ports, addresses, flows, routes...) or left out of a capped
        list field of a fact: counted, never silent."""
        tables = [self.other, self.named_only, *self.model.__dict__.values()]
        for collector in (self.vswitch, self.tcpip, self.nat, self.wnv, self.netvsc, self.capture, self.vfp):
            tables += list(vars(collector).values())
        overflow = sum(t.overflow for t in tables if isinstance(t, Bounded))
        cut = sum(t.count for t in tables if isinstance(t, Cuts)) + self.cuts.count + digest.cuts.count
        return (overflow + cut + digest.flows_pruned + digest.routes_overflow.packets + self.capture.flows_pruned
                + digest.frames_not_kept)

    @staticmethod
    def _coverage(stats: Any) -> list[ProviderCoverage]:
        if stats is None:
            return []
        by_provider: dict[str, list] = {}
        for (guid, _event_id, _version), outcome in stats.outcomes.items():
            if guid not in INTERNAL_PROVIDERS:
                by_provider.setdefault(guid, []).append(outcome)
        out = []
        for guid, outcomes in sorted(by_provider.items()):
            decoded = sum(o.decoded for o in outcomes)
            failed = sum(o.failed for o in outcomes)
            missing = sum(o.no_layout for o in outcomes)
            status = ("decoded" if not failed and not missing else
                      "present but not decoded" if not decoded else "partly decoded")
            name = _provider_name(guid, stats.provider_names.get(guid))
            out.append(ProviderCoverage(guid=guid, name=name, status=status,
                                        events=decoded + failed + missing, decoded=decoded, not_decoded=missing,
                                        failed=failed, first_error=next((o.first_error for o in outcomes if o.first_error), None),
                                        layout_unsure=sum(o.layout_unsure for o in outcomes),
                                        layout_note=next((o.layout_note for o in outcomes if o.layout_note), None),
                                        networking=bool(_NETWORKING_PROVIDER.search(name))))
        return out

    def _merge_pktmon(self, digest: PktmonDigest) -> None:
        """Components with an IP interface index, compartment or addresses feed the IP model."""
        for comp_id, comp in digest.components.items():
            by_code = comp.get("by_code", {})
            if_index = digest.property(comp_id, PROP_IP_IF_INDEX)
            compartment = digest.property(comp_id, PROP_COMPARTMENT)
            addresses = by_code.get(PROP_IP_ADDRESS, [])
            if if_index is None and not addresses:
                continue
            if if_index is None:  # 19041-era traces: addresses sit on components with only (Miniport)IfIndex
                if_index = digest.property(comp_id, PROP_IF_INDEX) or digest.property(comp_id, PROP_MINIPORT_IF_INDEX)
            self.model.interface(if_index, "pktmon", compartment_id=compartment, description=comp.get("description"),
                                 mac=digest.property(comp_id, PROP_PHYS_ADDRESS))
            for address in addresses:
                self.model.address(str(address), "pktmon", if_index=if_index, compartment_id=compartment)

    def _merge_host_info(self, info: Any) -> None:
        for iface in info.interfaces:
            entry = self.model.interface(iface.if_index, "host-info", compartment_id=iface.compartment_id,
                                         alias=iface.alias, description=iface.description, mac=iface.mac,
                                         connected=False if iface.media_disconnected else None,
                                         evidence={"source": iface.source})
            if entry is None:
                self.model.compartment(iface.compartment_id, "host-info")
            compartment = self.model.compartment(iface.compartment_id, "host-info")
            if compartment is not None:
                compartment["gateways"].update(iface.gateways)
        for a in info.addresses:
            self.model.address(a.address, "host-info", if_index=a.if_index, compartment_id=a.compartment_id,
                               prefix_length=a.prefix_length, state=a.state.lower() if a.state else None,
                               evidence={"source": a.source})
        for r in info.routes:
            if r.compartment_id is not None:
                self.model.interface(r.if_index, "host-info", compartment_id=r.compartment_id,
                                     evidence={"source": r.source})
            destination, length = r.destination.split("/")
            self.model.route(r.if_index, destination, int(length), r.next_hop)

    def _segments(self, digest: PktmonDigest) -> list[Segment]:
        found: dict[tuple[str, int], dict] = {}

        def add(kind: str, value: int | None, where: str, source: str, packets: int = 0) -> None:
            if not value:
                return
            entry = found.setdefault((kind, value), {"where": set(), "sources": set(), "packets": 0})
            entry["where"].add(where)
            entry["sources"].add(source)
            entry["packets"] += packets

        for comp_id in digest.components:
            name = digest.component_label(comp_id)[0]
            add("vlan", digest.property(comp_id, PROP_VLAN), name, "pktmon")
            add("vsid", digest.property(comp_id, PROP_VSID), name, "pktmon")
        for (vlan, *_rest), flow in digest.flows.items():
            add("vlan", vlan, "802.1Q tag in frames", "pktmon", flow[0])
        for segment in (*self.vswitch.segments(), *self.wnv.segments(), *self.capture.segments()):
            for i, where in enumerate(segment.seen_on or ["?"]):
                add(segment.segment_type, segment.value, where, segment.sources[0], segment.packets if i == 0 else 0)
        return [Segment(segment_type=kind, value=value, seen_on=self.cuts.cap(sorted(e["where"])), sources=sorted(e["sources"]),
                        packets=e["packets"]) for (kind, value), e in sorted(found.items())]


@lru_cache(maxsize=1)
def _message_names() -> dict[str, dict[int, str]]:
    """Event names of the providers the catalogue knows by message texts only (no event has a layout)."""
    return {entry.guid: {event_id: event.name for event_id, event in entry.events.items()}
            for entry in load_catalogue().providers.values()
            if entry.events and not any(event.versions for event in entry.events.values())}


def _status(fields: dict, depth: int = 0) -> int | None:
    """The event's status: a top-level status field, else one in a nested struct (HNS reports failures in
    ``wilActivity.hresult``, WIL's activity struct); the first non-zero one found wins."""
    found = next((fields[k] for k in _STATUS_FIELDS if isinstance(fields.get(k), int)), None)
    if found or depth >= 4:
        return found
    for value in fields.values():
        if isinstance(value, dict):
            nested = _status(value, depth + 1)
            if nested:
                return nested
    return found


def _provider_name(guid: str, from_trace: str | None = None) -> str:
    entry = provider_entry(guid)
    if entry is not None:
        return entry.name
    from diag.decode import catalogue
    from diag.read.guids import provider_name
    return provider_name(guid) or catalogue.provider_name(guid) or from_trace or guid
