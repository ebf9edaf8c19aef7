"""Microsoft-Windows-PktMon {4D4F80D9-C8BD-4D73-BB5B-19C90402C5AC}: hand-written decoders.

Layouts were checked against the real pktmon samples (payload sizes consumed exactly) and agree
with the NetMon NPL parser and etl-parser's generated catalogue. Packet events (160 packet, 170
drop) are the hot path: one ``struct`` call each, and the frame bytes stay a lazy memoryview.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any, Callable
from uuid import UUID

from diag.decode.wire import WireError, mac_text, utf16z

PROVIDER = "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"
NAME = "Microsoft-Windows-PktMon"

EVENT_COMPONENT = 20
EVENT_PROPERTY_U32, EVENT_PROPERTY_GUID, EVENT_PROPERTY_HEX32, EVENT_PROPERTY_U16 = 30, 40, 50, 60
EVENT_PROPERTY_IPV4, EVENT_PROPERTY_IPV6 = 65, 66
EVENT_PROPERTY_BINARY, EVENT_PROPERTY_STRING, EVENT_PROPERTY_ETHERTYPE = 70, 73, 75
EVENT_DROP_COUNTERS, EVENT_FLOW_COUNTERS = 80, 90
EVENT_FILTER_V4, EVENT_FILTER_V6 = 100, 110
EVENT_PACKET, EVENT_DROP = 160, 170
PACKET_EVENTS = frozenset({EVENT_PACKET, EVENT_DROP})
PROPERTY_EVENTS = frozenset({30, 40, 50, 60, 65, 66, 70, 73, 75})

# PktGroupId, PktNumber, AppearanceCount, DirTag, PacketType, ComponentId, EdgeId, FilterId,
# DropReason, DropLocation, OriginalPayloadSize, LoggedPayloadSize; the frame follows.
PACKET_HEADER = struct.Struct("<QHHHHHHHIIHH")
PACKET_FIELDS = ("pkt_group_id", "pkt_number", "appearance", "direction", "packet_type", "component_id",
                 "edge_id", "filter_id", "drop_reason", "drop_location", "original_size", "logged_size")
_COUNTERS = struct.Struct("<HQQHQQ")
_U16 = struct.Struct("<H")
_U16x2 = struct.Struct("<HH")
_U32 = struct.Struct("<I")
_FILTER_V4 = struct.Struct("<6s6sHH4s4sBHHB")
_FILTER_V6 = struct.Struct("<6s6sHH16s16sBHHB")


class PacketEvent:
    """A pktmon packet snapshot (160) or drop (170), with the frame left undecoded."""

    __slots__ = PACKET_FIELDS + ("frame", "dropped")

    def __init__(self, payload: memoryview, dropped: bool) -> None:
        if len(payload) < PACKET_HEADER.size:
            raise WireError(f"pktmon packet event of {len(payload)} bytes is shorter than its header")
        (self.pkt_group_id, self.pkt_number, self.appearance, self.direction, self.packet_type,
         self.component_id, self.edge_id, self.filter_id, self.drop_reason, self.drop_location,
         self.original_size, self.logged_size) = PACKET_HEADER.unpack_from(payload)
        end = PACKET_HEADER.size + self.logged_size
        if end > len(payload):
            raise WireError(f"pktmon packet claims {self.logged_size} logged bytes, {len(payload) - 34} present")
        self.frame = payload[PACKET_HEADER.size:end]
        self.dropped = dropped

    def as_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in PACKET_FIELDS}
        out["frame"] = bytes(self.frame).hex()
        return out


def packet_event(payload: memoryview, event_id: int) -> PacketEvent:
    return PacketEvent(payload, event_id == EVENT_DROP)


def _component(p: memoryview) -> dict[str, Any]:
    comp_id, comp_type = _U16x2.unpack_from(p)
    name, pos = utf16z(p, 4)
    description, _ = utf16z(p, pos)
    return {"component_id": comp_id, "type": comp_type, "name": name, "description": description}


def _property(value_reader: Callable[[memoryview], Any]) -> Callable[[memoryview], dict[str, Any]]:
    def decode(p: memoryview) -> dict[str, Any]:
        comp_id, prop_type = _U16x2.unpack_from(p)
        return {"component_id": comp_id, "property": prop_type, "value": value_reader(p[4:])}
    return decode


def _fixed(view: memoryview, size: int) -> memoryview:
    if len(view) < size:
        raise WireError(f"property value of {len(view)} bytes, expected {size}")
    return view[:size]


def _binary_value(v: memoryview) -> str:
    (size,) = _U32.unpack_from(v)
    raw = bytes(_fixed(v[4:], size))
    return mac_text(raw) if size == 6 else raw.hex()


_PROPERTY_VALUES: dict[int, Callable[[memoryview], Any]] = {
    EVENT_PROPERTY_U32: lambda v: _U32.unpack_from(v)[0],
    EVENT_PROPERTY_GUID: lambda v: str(UUID(bytes_le=bytes(_fixed(v, 16)))),
    EVENT_PROPERTY_HEX32: lambda v: _U32.unpack_from(v)[0],
    EVENT_PROPERTY_U16: lambda v: _U16.unpack_from(v)[0],
    EVENT_PROPERTY_IPV4: lambda v: str(ipaddress.IPv4Address(bytes(_fixed(v, 4)))),
    EVENT_PROPERTY_IPV6: lambda v: str(ipaddress.IPv6Address(bytes(_fixed(v, 16)))),
    EVENT_PROPERTY_BINARY: _binary_value,
    EVENT_PROPERTY_STRING: lambda v: utf16z(v, 0)[0],
    EVENT_PROPERTY_ETHERTYPE: lambda v: _U16.unpack_from(v)[0],
}


def _drop_counters(p: memoryview) -> dict[str, Any]:
    comp_id = _U16.unpack_from(p)[0]
    dir_in, packets_in, bytes_in, dir_out, packets_out, bytes_out = _COUNTERS.unpack_from(p, 2)
    return {"component_id": comp_id, "direction_in": dir_in, "packets_in": packets_in, "bytes_in": bytes_in,
            "direction_out": dir_out, "packets_out": packets_out, "bytes_out": bytes_out}


def _flow_counters(p: memoryview) -> dict[str, Any]:
    comp_id = _U16.unpack_from(p)[0]
    edge_name, pos = utf16z(p, 2)
    edge_id = _U16.unpack_from(p, pos)[0]
    dir_in, packets_in, bytes_in, dir_out, packets_out, bytes_out = _COUNTERS.unpack_from(p, pos + 2)
    return {"component_id": comp_id, "edge_name": edge_name, "edge_id": edge_id, "direction_in": dir_in,
            "packets_in": packets_in, "bytes_in": bytes_in, "direction_out": dir_out,
            "packets_out": packets_out, "bytes_out": bytes_out}


def _filter(layout: struct.Struct, address: Callable[[bytes], Any]) -> Callable[[memoryview], dict[str, Any]]:
    def decode(p: memoryview) -> dict[str, Any]:
        filter_id = _U16.unpack_from(p)[0]
        name, pos = utf16z(p, 2)
        mac1, mac2, ether_type, vlan, ip1, ip2, proto, port1, port2, tcp_flags = layout.unpack_from(p, pos)
        return {"filter_id": filter_id, "name": name, "mac1": mac_text(mac1), "mac2": mac_text(mac2),
                "ether_type": ether_type, "vlan": vlan, "ip1": str(address(ip1)), "ip2": str(address(ip2)),
                "protocol": proto, "port1": port1, "port2": port2, "tcp_flags": tcp_flags}
    return decode


DECODERS: dict[int, Callable[[memoryview], dict[str, Any]]] = {
    EVENT_COMPONENT: _component,
    **{event_id: _property(reader) for event_id, reader in _PROPERTY_VALUES.items()},
    EVENT_DROP_COUNTERS: _drop_counters,
    EVENT_FLOW_COUNTERS: _flow_counters,
    EVENT_FILTER_V4: _filter(_FILTER_V4, ipaddress.IPv4Address),
    EVENT_FILTER_V6: _filter(_FILTER_V6, ipaddress.IPv6Address),
    EVENT_PACKET: lambda p: PacketEvent(p, False).as_dict(),
    EVENT_DROP: lambda p: PacketEvent(p, True).as_dict(),
}
EVENT_NAMES = {
    EVENT_COMPONENT: "ComponentRundown", **{e: "ComponentProperty" for e in PROPERTY_EVENTS},
    EVENT_DROP_COUNTERS: "DropCounters", EVENT_FLOW_COUNTERS: "FlowCounters",
    EVENT_FILTER_V4: "PacketFilterIPv4", EVENT_FILTER_V6: "PacketFilterIPv6",
    EVENT_PACKET: "Packet", EVENT_DROP: "PacketDrop",
}


def decode(event_id: int, version: int, payload: memoryview) -> dict[str, Any] | None:
    """Decode one PktMon event, or return None when no hand-written layout covers it."""
    decoder = DECODERS.get(event_id) if version == 0 else None
    if decoder is None:
        return None
    try:
        return decoder(payload)
    except (struct.error, ValueError) as exc:
        raise WireError(f"PktMon event {event_id}: {exc}") from None
