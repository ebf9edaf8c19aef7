"""LAN background: dropped packets a host discards by design (knowledge/lan-background.yaml).

``background_kind(frame, link, reason)`` names what a dropped frame was when it is background
(``"mDNS"``, ``"loopback"``, ...), else returns None. It reads the frame at fixed offsets, once per
drop event: Ethernet (VLAN tags), 802.11 + LLC/SNAP and raw IP, then IPv4 or IPv6 (no extension
headers) and the UDP ports or the ICMPv6 type.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from diag.decode.frames import ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, destination_mac, network_start
from diag.knowledge import load_model
from diag.resources import data_dir

FILE = "lan-background.yaml"
LOOPBACK = "loopback"
UNSUPPORTED = "broadcast of a protocol the host does not speak"
_LOOPBACK6 = bytes(15) + b"\x01"
Port = Annotated[int, Field(ge=0, le=65535)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReasonRange(_Strict):
    first: int
    last: int


class Service(_Strict):
    name: str
    protocol: Literal["udp"] | None = None
    port: Port | None = None
    source_port: Port | None = None
    ip_protocol: Annotated[int, Field(ge=0, le=255)] | None = None
    icmpv6_types: list[Annotated[int, Field(ge=0, le=255)]] = []
    source: str


class LinkGroup(_Strict):
    name: str
    mac: str
    prefix_bits: Annotated[int, Field(ge=1, le=48)]
    source: str

    @field_validator("mac")
    @classmethod
    def _mac(cls, value: str) -> str:
        if len(bytes.fromhex(value.replace("-", "").replace(":", ""))) != 6:
            raise ValueError(f"{value!r} is not a MAC address")
        return value


class Background(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    reasons: list[ReasonRange]
    unsupported_ethertype_reasons: list[int]
    services: list[Service]
    link_groups: list[LinkGroup]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _Lookups:
    """The tables in the shapes the classifier reads them."""

    def __init__(self, t: Background) -> None:
        self.reasons = [(r.first, r.last) for r in t.reasons]
        self.udp = {(s.port, s.source_port): s.name for s in t.services if s.protocol == "udp"}
        self.ip_protocols = {s.ip_protocol: s.name for s in t.services if s.ip_protocol is not None}
        self.icmpv6 = {kind: s.name for s in t.services for kind in s.icmpv6_types}
        self.groups = [(int(g.mac.replace("-", "").replace(":", ""), 16) >> (48 - g.prefix_bits), g.prefix_bits, g.name)
                       for g in t.link_groups]
        self.unsupported = frozenset(t.unsupported_ethertype_reasons)


@lru_cache(maxsize=1)
def tables() -> Background:
    return load_model(data_dir("knowledge") / FILE, Background)


@lru_cache(maxsize=1)
def _lookups() -> _Lookups:
    return _Lookups(tables())


def background_kind(frame: bytes, link: str, reason: int) -> str | None:
    """What the dropped ``frame`` was, if it is LAN background for drop ``reason``; None otherwise."""
    t = _lookups()
    if not any(first <= reason <= last for first, last in t.reasons):
        return None
    pos, ether_type = network_start(frame, link)
    dst_mac = destination_mac(frame, link)
    group_mac = None if dst_mac is None or len(dst_mac) < 6 else bool(dst_mac[0] & 0x01)
    if group_mac:
        value = int.from_bytes(dst_mac, "big")
        for prefix, bits, name in t.groups:
            if value >> (48 - bits) == prefix:
                return name
    if pos is None:
        return None
    if ether_type == ETHERTYPE_IPV4 and len(frame) >= pos + 20:
        src, dst = frame[pos + 12:pos + 16], frame[pos + 16:pos + 20]
        if src[0] == 127 and dst[0] == 127:
            return LOOPBACK
        group = group_mac if group_mac is not None else (224 <= dst[0] <= 239 or dst == b"\xff\xff\xff\xff")
        proto, l4 = frame[pos + 9], pos + (frame[pos] & 0x0F) * 4
        fragment = ((frame[pos + 6] & 0x1F) << 8) | frame[pos + 7]
    elif ether_type == ETHERTYPE_IPV6 and len(frame) >= pos + 40:
        src, dst = frame[pos + 8:pos + 24], frame[pos + 24:pos + 40]
        if src == _LOOPBACK6 and dst == _LOOPBACK6:
            return LOOPBACK
        group = group_mac if group_mac is not None else dst[0] == 0xFF
        proto, l4, fragment = frame[pos + 6], pos + 40, 0
    else:
        if group_mac and ether_type != ETHERTYPE_ARP and reason in t.unsupported:
            return UNSUPPORTED
        return None
    if not group:
        return None
    if proto in t.ip_protocols:
        return t.ip_protocols[proto]
    if fragment:
        return None
    if proto == 17 and len(frame) >= l4 + 4:
        sport, dport = (frame[l4] << 8) | frame[l4 + 1], (frame[l4 + 2] << 8) | frame[l4 + 3]
        return t.udp.get((dport, sport)) or t.udp.get((dport, None))
    if proto == 58 and len(frame) > l4:
        return t.icmpv6.get(frame[l4])
    return None
