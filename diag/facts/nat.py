"""WinNat events → NAT instances (prefix, compartment), sessions, drops, default routes, exhaustion."""

from __future__ import annotations

import ipaddress
from typing import Any

from diag.decode.frames import PROTOCOLS
from diag.facts.evidence import Bounded, Cuts, Span, keep, pointer, when
from diag.facts.netmodel import NetworkModel
from diag.facts.network import NatInstance, PortExhaustion, ProviderDrop
from diag.facts.tables import value_name

SOURCE = "WinNat"
INSTANCE_INTERNAL_PREFIX = 1  # WINNATM_INSTANCE_TYPE_ValueMap: 1 InternalPrefixInstance, 2 ExternalPrefixInstance


class NatCollector:
    def __init__(self, model: NetworkModel) -> None:
        self.cuts = Cuts()  # what capped list fields of the facts left out
        self.model = model
        self.instances: Bounded = Bounded(256)
        self.drops: Bounded = Bounded(1024)
        self.exhaustion: Bounded = Bounded(256)
        self.errors = 0

    def _instance(self, name: str) -> dict | None:
        return self.instances.slot(name, lambda: {"prefix": None, "external_prefix": None, "compartment_id": None,
                                                  "external_if_index": None,
                                                  "internal": set(), "created": 0, "timed_out": 0, "exhausted": 0,
                                                  "errors": 0, "evidence": []})

    def event(self, event_id: int, name: str, f: dict[str, Any], record: Any) -> None:
        ev = pointer(record, SOURCE, event_id, event=name)
        if "instance_name" in f:
            instance = self._instance(f["instance_name"])
            if instance is not None:
                keep(instance["evidence"], ev)
                self._instance_event(event_id, f, instance, record, ev)
        elif event_id in (1001, 1004) and "internal_source" in f:
            self.model.compartment(f.get("compartment_id"), SOURCE)
            key = "created" if event_id == 1001 else "timed_out"
            for instance in self._instances_for(f.get("compartment_id")):
                instance[key] += 1
        elif event_id in (1031, 1032):
            entry = self.model.compartment(f["compartment_id"], SOURCE)
            if entry is not None:
                entry["nat_default"] = True
        elif event_id == 1030:
            self._drop(f, record, ev)
        elif event_id == 1036:
            self.errors += 1

    def _instance_event(self, event_id: int, f: dict, instance: dict, record: Any, ev: dict) -> None:
        prefix, internal = _instance_prefix(f)
        if prefix is not None or "external_if_index" in f:
            if prefix is not None:
                instance["prefix" if internal else "external_prefix"] = prefix
            if internal:
                self.model.prefix(prefix, SOURCE)
            instance["compartment_id"] = f.get("compartment_id")
            instance["external_if_index"] = f.get("external_if_index")
            self.model.compartment(f.get("compartment_id"), SOURCE)
        if event_id in (1045, 1046) and f.get("address"):
            (instance["internal"].add if event_id == 1045 else instance["internal"].discard)(f["address"])
        if event_id == 1033:
            instance["exhausted"] += 1
            protocol = PROTOCOLS.get(f["transport_protocol"], str(f["transport_protocol"]))
            entry = self.exhaustion.slot((f["instance_name"], protocol), lambda: (Span(), []))
            if entry is not None:
                entry[0].add(record.filetime)
                keep(entry[1], ev)

    def _instances_for(self, compartment_id: int | None) -> list[dict]:
        return [i for i in self.instances.values() if compartment_id is not None and i["compartment_id"] == compartment_id]

    def _drop(self, f: dict, record: Any, ev: dict) -> None:
        where = f"compartment {f['arrival_compartment_id']} interface {f['arrival_if_index']}"
        reason = value_name("winnat", "action_reason", f["action_reason"])
        entry = self.drops.slot((where, f["action_reason"], reason), lambda: (Span(), []))
        if entry is not None:
            entry[0].add(record.filetime)
            keep(entry[1], {**ev, "protocol": PROTOCOLS.get(f["transport_protocol"], f["transport_protocol"]),
                            "length": f["packet_length"]})

    def facts(self) -> list:
        out: list = []
        for name, i in sorted(self.instances.items()):
            out.append(NatInstance(instance_name=name, prefix=i["prefix"], external_prefix=i["external_prefix"],
                                   compartment_id=i["compartment_id"],
                                   external_if_index=i["external_if_index"], internal_addresses=self.cuts.cap(sorted(i["internal"])),
                                   sessions_created=i["created"], sessions_timed_out=i["timed_out"],
                                   port_pool_exhausted=i["exhausted"], errors=i["errors"], evidence=i["evidence"]))
        for (where, code, reason), (span, evidence) in self.drops.items():
            out.append(ProviderDrop(provider=SOURCE, where=where, direction="in", reason_code=code, reason_name=reason,
                                    count=span.count, first_seen=when(span.first), last_seen=when(span.last),
                                    evidence=evidence))
        for (name, protocol), (span, evidence) in self.exhaustion.items():
            out.append(PortExhaustion(source=SOURCE, where=f"NAT instance {name}", protocol=protocol, count=span.count,
                                      first_seen=when(span.first), last_seen=when(span.last), evidence=evidence))
        return out


def _instance_prefix(f: dict) -> tuple[str | None, bool]:
    """The prefix an instance event names, and whether it is the NAT network's internal prefix."""
    if "external_interface_prefix" in f:
        address, length, internal = f["external_interface_prefix"], f["external_interface_prefix_length"], False
    elif "prefix" in f:
        address, length = f["prefix"], f["prefix_length"]
        internal = f.get("instance_type") == INSTANCE_INTERNAL_PREFIX
    else:
        return None, False
    try:
        return str(ipaddress.ip_network(f"{address}/{length}", strict=False)), internal
    except ValueError:
        return None, False
