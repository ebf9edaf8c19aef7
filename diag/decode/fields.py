"""Event layouts declared as data, for the hand-written provider decoders (VmSwitch, TCPIP, ...).

A layout is a name and a tuple of fields ``(name, kind)`` or ``(name, kind, length_field)``, in
payload order, compiled once into a list of readers. Kinds:

    u8 u16 u32 u64 i32 i64     little-endian integers
    ptr                         a pointer: 4 or 8 bytes, as the trace's producer was 32- or 64-bit
    bool32 / bool8              a 4-byte BOOL (win:Boolean) / a one-byte flag, as ``bool``
    guid                        16 bytes, little-endian GUID, as text
    wstr / cstr                 NUL-terminated UTF-16LE / ANSI string
    counted_wstr                a u32 count, then that many UTF-16 code units (``units="bytes"``:
                                that many bytes), trailing NULs dropped
    ipv4 / ipv6                 4 / 16 bytes in network order (win:IPAddrV4, a 16-byte address), as text
    port                        2 bytes big-endian (win:Port)
    mac6                        6 bytes, as ``AA-BB-CC-DD-EE-FF``
    bin / mac / ip / sockaddr   bytes sized by an earlier field (``length_field``): hex text, a MAC,
                                an IP address (4 or 16 bytes; empty: None), a SOCKADDR_IN/IN6 as
                                ``{"address", "port"}``
    ipv6_if                     16 bytes as an IPv6 address when an earlier field (``length_field``) is
                                not zero, else absent (None): NetMon's ``switch { case X > 0: ... }``

``decode_layout`` insists that the layout consumes the payload exactly: a payload with bytes left
over, or too short, raises ``WireError`` (a wrong layout must not produce plausible values).

One (event id, version) may have several revisions: Windows appends fields to an event in a later
release without raising its version (TCPIP 1145 v0 gains a trailing field on 24H2). ``Layout.since``
is the first OS build whose manifest has that revision; the trace header's build picks it. When the
build is unknown, or the payload fits another revision than the build's, the event is decoded by the
revision that fits and the decoder says so (``LAYOUT_NOTE``), so the statistics can show it.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Any, Callable
from uuid import UUID

from diag.decode.wire import WireError, mac_text, utf16z

_FIXED = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i32": "i", "i64": "q", "bool32": "I", "bool8": "B"}
_U32 = struct.Struct("<I")
_AF_INET, _AF_INET6 = 2, 23


_UNPLANNED = object()
LAYOUT_NOTE = "layout_note"  # set in a decoded event's fields when its revision was not chosen by the build


@dataclass(frozen=True, slots=True)
class Layout:
    name: str
    fields: tuple[tuple, ...]
    since: int = 0  # first OS build whose manifest has this revision of the event
    note: str | None = None  # said of every event this layout decodes: a reading no public source confirms


Reader = Callable[[memoryview, int, dict, str], int]


def _fixed(name: str, kind: str) -> Reader:
    fmt = struct.Struct("<" + _FIXED[kind])
    as_bool = kind in ("bool32", "bool8")

    def read(p: memoryview, pos: int, out: dict, _units: str) -> int:
        if pos + fmt.size > len(p):
            raise WireError(f"field {name} ({kind}) runs past the end of the payload")
        value = fmt.unpack_from(p, pos)[0]
        out[name] = bool(value) if as_bool else value
        return pos + fmt.size
    return read


def _need(p: memoryview, pos: int, size: int, name: str) -> None:
    if size < 0 or pos + size > len(p):
        raise WireError(f"field {name} needs {size} bytes at offset {pos}, the payload has {len(p)}")


def _guid(name: str) -> Reader:
    def read(p: memoryview, pos: int, out: dict, _units: str) -> int:
        _need(p, pos, 16, name)
        out[name] = str(UUID(bytes_le=bytes(p[pos:pos + 16])))
        return pos + 16
    return read


def _wstr(name: str) -> Reader:
    def read(p: memoryview, pos: int, out: dict, _units: str) -> int:
        out[name], end = utf16z(p, pos)
        return end
    return read


def _cstr(name: str) -> Reader:
    def read(p: memoryview, pos: int, out: dict, _units: str) -> int:
        end = p.find(b"\x00", pos)
        if end < 0:
            raise WireError(f"field {name}: ANSI string without a terminating NUL")
        out[name] = p[pos:end].decode("latin-1")
        return end + 1
    return read


def _counted_wstr(name: str) -> Reader:
    def read(p: memoryview, pos: int, out: dict, units: str) -> int:
        _need(p, pos, 4, name)
        count = _U32.unpack_from(p, pos)[0]
        size = count * 2 if units == "chars" else count
        _need(p, pos + 4, size, name)
        if size % 2:
            raise WireError(f"field {name}: odd byte count {size} for a UTF-16 string")
        out[name] = bytes(p[pos + 4:pos + 4 + size]).decode("utf-16-le", "replace").rstrip("\x00")
        return pos + 4 + size
    return read


def _bytes_as(size: int, convert: Callable[[bytes], Any]) -> Callable[[str], Reader]:
    """A reader of ``size`` bytes shown as ``convert`` makes them."""
    def reader(name: str) -> Reader:
        def read(p: memoryview, pos: int, out: dict, _units: str) -> int:
            _need(p, pos, size, name)
            out[name] = convert(bytes(p[pos:pos + size]))
            return pos + size
        return read
    return reader


_ipv4 = _bytes_as(4, socket.inet_ntoa)
_ipv6 = _bytes_as(16, lambda raw: str(ipaddress.IPv6Address(raw)))
_port = _bytes_as(2, lambda raw: int.from_bytes(raw, "big"))
_mac6 = _bytes_as(6, mac_text)


def ip_from_bytes(raw: bytes) -> str | None:
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    return None


def sockaddr(raw: bytes) -> dict[str, Any] | None:
    """SOCKADDR_IN (family 2) or SOCKADDR_IN6 (family 23): address and port; None if neither."""
    if len(raw) >= 8 and raw[0] | (raw[1] << 8) == _AF_INET:
        return {"address": str(ipaddress.IPv4Address(raw[4:8])), "port": int.from_bytes(raw[2:4], "big")}
    if len(raw) >= 24 and raw[0] | (raw[1] << 8) == _AF_INET6:
        return {"address": str(ipaddress.IPv6Address(raw[8:24])), "port": int.from_bytes(raw[2:4], "big")}
    return None


_SIZED = {
    "bin": lambda raw: raw.hex(),
    "mac": lambda raw: mac_text(raw) if raw else None,
    "ip": ip_from_bytes,
    "sockaddr": sockaddr,
}


def _sized(name: str, kind: str, length_field: str) -> Reader:
    convert = _SIZED[kind]

    def read(p: memoryview, pos: int, out: dict, _units: str) -> int:
        size = out[length_field]
        _need(p, pos, size, name)
        out[name] = convert(bytes(p[pos:pos + size]))
        return pos + size
    return read


def _ipv6_if(name: str, length_field: str) -> Reader:
    def read(p: memoryview, pos: int, out: dict, _units: str) -> int:
        if not out[length_field]:
            out[name] = None
            return pos
        _need(p, pos, 16, name)
        out[name] = str(ipaddress.IPv6Address(bytes(p[pos:pos + 16])))
        return pos + 16
    return read


_SIMPLE = {"guid": _guid, "wstr": _wstr, "cstr": _cstr, "counted_wstr": _counted_wstr, "ipv4": _ipv4,
           "ipv6": _ipv6, "port": _port, "mac6": _mac6}


def compile_layout(layout: Layout, pointer_size: int = 8) -> list[Reader]:
    readers = []
    for field in layout.fields:
        name, kind = field[0], field[1]
        if kind == "ptr":
            readers.append(_fixed(name, "u64" if pointer_size == 8 else "u32"))
        elif kind in _FIXED:
            readers.append(_fixed(name, kind))
        elif kind in _SIMPLE:
            readers.append(_SIMPLE[kind](name))
        elif kind in _SIZED:
            readers.append(_sized(name, kind, field[2]))
        elif kind == "ipv6_if":
            readers.append(_ipv6_if(name, field[2]))
        else:
            raise ValueError(f"layout {layout.name}: unknown field kind {kind!r}")
    return readers


def decode_layout(readers: list[Reader], payload: memoryview | bytes, units: str = "chars") -> dict[str, Any]:
    out: dict[str, Any] = {}
    pos = 0
    payload = bytes(payload)  # one copy per event: the readers then slice and search it in place
    try:
        for read in readers:
            pos = read(payload, pos, out, units)
    except (struct.error, ValueError) as exc:
        raise WireError(str(exc)) from None
    if pos != len(payload):
        raise WireError(f"layout leaves {len(payload) - pos} payload bytes unread")
    return out


class ProviderLayouts:
    """The layouts of one provider, keyed by (event id, version), compiled on first use.

    A key may map to several layouts, tried in order, the first that consumes the payload exactly
    winning: revisions from different releases (``Layout.since``; the trace's build says which is
    due, see the module notes), or alternatives where two sources disagree on a field's width (same
    ``since``). ``string_units`` likewise lists how counted strings may be sized; the unit that made
    the event fit is reported as ``string_units``.
    """

    def __init__(self, layouts: dict[tuple[int, int], Layout | tuple[Layout, ...]], provider_name: str,
                 string_units: tuple[str, ...] = ("chars",)) -> None:
        self.layouts = {k: v if isinstance(v, tuple) else (v,) for k, v in layouts.items()}
        self.provider_name = provider_name
        self.string_units = string_units
        self._plans: dict[tuple, tuple[list[tuple], int] | None] = {}

    def event_name(self, event_id: int, version: int) -> str | None:
        layouts = self.layouts.get((event_id, version))
        return layouts[0].name if layouts else None

    def revision_for(self, event_id: int, version: int, os_build: int | None) -> tuple[Layout, ...]:
        """The layouts due on ``os_build`` (all of them when the build is unknown)."""
        layouts = self.layouts.get((event_id, version), ())
        if not os_build:
            return layouts
        due = max((layout.since for layout in layouts if layout.since <= os_build), default=None)
        return tuple(layout for layout in layouts if layout.since == due)

    def _plan(self, event_id: int, version: int, pointer_size: int, os_build: int | None):
        """How to decode one kind of event on one build, compiled once: the layouts in the order they are tried
        (the build's revision first; the others only if it does not fit, and then the note says so), each with
        its readers, the string units to try, whether the build selects it, and whether it has counted strings;
        and how many revisions there are. None when no layout covers (event id, version)."""
        layouts = self.layouts.get((event_id, version))
        plan = None
        if layouts is not None:
            due = self.revision_for(event_id, version, os_build)
            ordered = []
            for layout in sorted(layouts, key=lambda item: item not in due):
                has_counted = any(field[1] == "counted_wstr" for field in layout.fields)
                units = self.string_units if has_counted else self.string_units[:1]
                ordered.append((layout, compile_layout(layout, pointer_size), units, layout in due, has_counted))
            plan = (ordered, len({layout.since for layout in layouts}))
        self._plans[(event_id, version, pointer_size, os_build)] = plan
        return plan

    def decode(self, event_id: int, version: int, payload: memoryview, pointer_size: int = 8,
               os_build: int | None = None) -> dict[str, Any] | None:
        """The event's fields; None when no layout covers (event id, version); WireError if none fits."""
        plan = self._plans.get((event_id, version, pointer_size, os_build), _UNPLANNED)
        if plan is _UNPLANNED:
            plan = self._plan(event_id, version, pointer_size, os_build)
        if plan is None:
            return None
        ordered, revisions = plan
        first_error = None
        for layout, readers, units_tried, is_due, has_counted in ordered:
            for units in units_tried:
                try:
                    out = decode_layout(readers, payload, units)
                except WireError as exc:
                    first_error = first_error or exc
                    continue
                if has_counted and len(self.string_units) > 1:
                    out["string_units"] = units
                if layout.note is not None:
                    out[LAYOUT_NOTE] = layout.note
                elif revisions > 1 and not os_build:
                    out[LAYOUT_NOTE] = f"OS build unknown: the revision of {_since(layout)} fitted by length"
                elif not is_due:
                    out[LAYOUT_NOTE] = (f"build {os_build}: the payload fits the revision of {_since(layout)}, "
                                        f"not the one its build writes")
                return out
        raise WireError(f"{self.provider_name} event {event_id} v{version}: {first_error}")


def _since(layout: Layout) -> str:
    return f"builds {layout.since}+" if layout.since else "earlier builds"
