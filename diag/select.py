"""Packet filters: look at part of a trace (``--since``/``--until``, ``--component``, ``--address``, ``--vlan``).

A filter selects packet events (pktmon snapshots and drops, and netsh's captured frames in ``export-pcap``),
as pktmon's own capture filters do. Everything else the trace says about the host (component rundown,
vSwitch, VFP, TCP/IP and the other providers' events) is read whole: it describes the configuration the
packets met, and a time window must not hide a port created a minute before it. What a filter leaves out is
counted, and every report says that the run looked at the selected packets only.

Times: an ISO date and time (``2024-05-14T10:00:02.5Z``; without a zone it is UTC, the trace's own clock), a
time of day (``10:00:02``: its first occurrence at or after the trace's start), or an offset from the trace's
start (``+90s``, ``+2m``, ``+1.5h``, ``+250ms``). Addresses: an IPv4 or IPv6 address, a subnet
(``10.0.0.0/24``), or a MAC (``00-15-5D-01-02-03`` or with colons). A packet matches an address when its
Ethernet, ARP, IP or overlay-inner addresses include it; a VLAN when any of its 802.1Q tags (outer or inner)
is it. Values of one option are alternatives (or); different options must all match (and).
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Iterable

from diag.decode.frames import DEPTH_INNER, Frame, decode
from diag.errors import BadInputError

__all__ = ["PacketFilter", "TimeBound", "parse_address", "parse_time"]

_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_OFFSET = re.compile(r"\+\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_MAC = re.compile(r"[0-9A-Fa-f]{2}([-:]?)(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}")
_PACKET_HEAD = struct.Struct("<14xHH14xH").unpack_from  # PacketType, ComponentId, then LoggedSize (diag.decode.pktmon)
_HEAD_SIZE = 34
_LINKS = {1: "ethernet", 2: "wifi", 3: "raw-ip"}  # pktmon PacketType (diag.facts.pktmon.LINKS)


def _filetime(moment: datetime) -> int:
    return round((moment - _EPOCH).total_seconds() * 10_000_000)


def _from_filetime(ft: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ft // 10)


@dataclass(frozen=True)
class TimeBound:
    """A ``--since``/``--until`` value, resolved against the trace's start once it is known."""

    text: str
    moment: datetime | None = None  # an absolute time
    time_of_day: time | None = None
    offset: float | None = None  # seconds after the trace's start

    def filetime(self, trace_start: int | None) -> int:
        if self.moment is not None:
            return _filetime(self.moment)
        if trace_start is None:
            raise BadInputError(f"{self.text!r} is relative to the trace's start, which this trace does not record; "
                                f"give a date and time")
        start = _from_filetime(trace_start)
        if self.offset is not None:
            return trace_start + round(self.offset * 10_000_000)
        candidate = datetime.combine(start.date(), self.time_of_day, tzinfo=timezone.utc)
        if candidate < start.replace(microsecond=0):
            candidate += timedelta(days=1)
        return _filetime(candidate)


def parse_time(text: str, option: str) -> TimeBound:
    """``--since``/``--until``: see the module doc; a value that is none of those is one line naming the option."""
    raw = text.strip()
    offset = _OFFSET.fullmatch(raw)
    if offset:
        return TimeBound(raw, offset=float(offset.group(1)) * _UNIT_SECONDS[(offset.group(2) or "s").lower()])
    try:
        if re.fullmatch(r"\d{1,2}:\d\d(:\d\d(\.\d+)?)?", raw):
            return TimeBound(raw, time_of_day=time.fromisoformat(raw.zfill(len(raw) + (raw.index(":") == 1))))
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None:
        raise BadInputError(f"{option} {text!r} is not a time: give 2024-05-14T10:00:02Z, a time of day such as "
                            f"10:00:02, or an offset from the trace's start such as +90s")
    return TimeBound(raw, moment=moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


def parse_address(text: str) -> tuple[str, object]:
    """``("mac", "00-15-5D-01-02-03")`` or ``("ip", ip_network)`` (one address is a /32 or /128 network)."""
    raw = text.strip()
    if _MAC.fullmatch(raw):
        digits = re.sub(r"[-:]", "", raw).upper()
        return "mac", "-".join(digits[i:i + 2] for i in range(0, 12, 2))
    try:
        return "ip", ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise BadInputError(f"--address {text!r} is neither an IP address, a subnet (10.0.0.0/24) nor a MAC "
                            f"(00-15-5D-01-02-03)") from None


@dataclass(frozen=True)
class PacketFilter:
    """Which packet events a run looks at. An empty filter keeps everything (and costs nothing)."""

    since: TimeBound | None = None
    until: TimeBound | None = None
    components: frozenset[int] = frozenset()
    macs: frozenset[str] = frozenset()
    networks: tuple = ()
    vlans: frozenset[int] = frozenset()
    # resolved against the trace (``bind``): FILETIME bounds, inclusive
    start_ft: int | None = field(default=None, compare=False)
    end_ft: int | None = field(default=None, compare=False)

    @classmethod
    def from_options(cls, since: str | None = None, until: str | None = None, components: Iterable[int] = (),
                     addresses: Iterable[str] = (), vlans: Iterable[int] = ()) -> "PacketFilter":
        parsed = [parse_address(a) for a in addresses]
        for v in vlans:
            if not 0 <= v <= 4095:
                raise BadInputError(f"--vlan {v} is not a VLAN id (0-4095)")
        return cls(since=parse_time(since, "--since") if since else None,
                   until=parse_time(until, "--until") if until else None,
                   components=frozenset(components), macs=frozenset(v for k, v in parsed if k == "mac"),
                   networks=tuple(v for k, v in parsed if k == "ip"), vlans=frozenset(vlans))

    @property
    def active(self) -> bool:
        return bool(self.since or self.until or self.components or self.macs or self.networks or self.vlans)

    @property
    def frames_needed(self) -> bool:
        return bool(self.macs or self.networks or self.vlans)

    def bind(self, trace_start: int | None) -> "PacketFilter":
        """The filter with its times resolved against the trace's start (FILETIME); refuses an empty window."""
        start = self.since.filetime(trace_start) if self.since else None
        end = self.until.filetime(trace_start) if self.until else None
        if start is not None and end is not None and end < start:
            raise BadInputError(f"--until {self.until.text} is before --since {self.since.text}")
        return PacketFilter(self.since, self.until, self.components, self.macs, self.networks, self.vlans, start, end)

    def describe(self) -> str:
        """What the filter keeps, for reports: "packets from 2024-05-14T10:00:02Z, at component 3 or 5"."""
        parts = []
        if self.since:
            parts.append("from " + (_from_filetime(self.start_ft).isoformat() if self.start_ft is not None
                                    else self.since.text))
        if self.until:
            parts.append("until " + (_from_filetime(self.end_ft).isoformat() if self.end_ft is not None
                                     else self.until.text))
        if self.components:
            parts.append("at component " + " or ".join(map(str, sorted(self.components))))
        addresses = sorted(self.macs) + [str(n.network_address) if n.num_addresses == 1 else str(n)
                                         for n in self.networks]
        if addresses:
            parts.append("to or from " + " or ".join(addresses))
        if self.vlans:
            parts.append("on VLAN " + " or ".join(map(str, sorted(self.vlans))))
        return "packets " + ", ".join(parts) if parts else "every packet"

    # -- matching --------------------------------------------------------------------------------------
    def keep_time(self, filetime: int | None) -> bool:
        if filetime is None:
            return self.start_ft is None and self.end_ft is None
        return (self.start_ft is None or filetime >= self.start_ft) and (self.end_ft is None or filetime <= self.end_ft)

    def keep_pktmon(self, data: bytes | memoryview, start: int, end: int, filetime: int | None) -> bool:
        """A pktmon packet event's payload ``data[start:end]``: kept? A payload too short to say is kept, so that
        the reader counts it malformed as it would without a filter."""
        if not self.keep_time(filetime):
            return False
        if end - start < _HEAD_SIZE:
            return True
        packet_type, component, logged = _PACKET_HEAD(data, start)
        if self.components and component not in self.components:
            return False
        if not self.frames_needed:
            return True
        frame_end = min(end, start + _HEAD_SIZE + logged)
        return self.keep_frame(bytes(data[start + _HEAD_SIZE:frame_end]), _LINKS.get(packet_type, "ethernet"))

    def keep_frame(self, frame: bytes, link: str) -> bool:
        """Addresses and VLANs of one frame (``--address``, ``--vlan``)."""
        if not (self.macs or self.networks or self.vlans):
            return True
        decoded = decode(frame, link, DEPTH_INNER)
        layers: list[Frame] = []
        while decoded is not None:
            layers.append(decoded)
            decoded = decoded.inner
        if self.vlans and not any(v in self.vlans for f in layers for v in f.vlans):
            return False
        if not (self.macs or self.networks):
            return True
        # --address values are alternatives, MACs and IPs alike
        if any(m in self.macs for f in layers for m in (f.src_mac, f.dst_mac, f.arp_sender_mac) if m):
            return True
        ips = [ipaddress.ip_address(ip) for f in layers for ip in (f.src, f.dst, f.arp_sender_ip, f.arp_target_ip)
               if ip]
        return any(ip in n for ip in ips for n in self.networks if ip.version == n.version)
