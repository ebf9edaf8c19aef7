"""TDH in-type values: a small, fast reader shared by the self-describing decoders.

Two producers describe their payloads with TDH-style in-types, and this module reads both:

- manifest schemas that a trace embeds (``eventmetadata``: TRACE_EVENT_INFO, ``TDH_INTYPE_*``);
- TraceLogging metadata (``tracelogging``: ``TlgIn*``), whose numbering equals TDH's for 0-23
  (TlgIn 16, POINTER, is "unsupported" there) and differs from 24 on: TlgIn 24 is STRUCT and 25 is
  COUNTEDBINARY, where TDH has the reversed counted strings. TraceLogging's BINARY (14) carries a
  UINT16 byte count in the payload, where TDH's BINARY takes its length from the schema. The
  TraceLogging front end maps its in-types onto the codes here (``IN_COUNTED_BINARY`` for 14, 25
  and custom-serialised fields) before compiling.

Both front ends describe an event as a list of ``FieldSpec`` and call ``compile_fields`` once per
schema and pointer size. The result, a ``Plan``, is a list of small closures: runs of fixed-size
scalars become a single ``struct`` unpack, everything else a direct reader. Running a plan reads
the payload left to right with explicit bounds; any overrun, a missing terminator, a count that
cannot fit, raises ``TdhError`` (a ``ValueError``), never ``IndexError`` or ``struct.error``.

Values are JSON-friendly, like the catalogue layer's: ints, floats, bools, ``str`` for strings,
lower-case GUID strings, SIDs as ``S-1-...``, SYSTEMTIME as ``YYYY-MM-DDTHH:MM:SS.mmm``, FILETIME as
the raw integer, binary as a lower-case hex string; arrays are lists and structs dicts. A few
out-types change the value: IPv4 (UINT32) and IPv6 (16-byte binary) become address strings, PORT
(UINT16 in network order) becomes the port number, BOOLEAN on an integer becomes a bool.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from diag.decode.wire import WireError
from diag.read.guids import guid_from_bytes


class TdhError(WireError):
    """Schema or payload bytes that do not fit together (overrun, bad count, bad metadata)."""


# -- TDH_INTYPE --------------------------------------------------------------------------------
IN_NULL, IN_UNICODESTRING, IN_ANSISTRING = 0, 1, 2
IN_INT8, IN_UINT8, IN_INT16, IN_UINT16, IN_INT32, IN_UINT32, IN_INT64, IN_UINT64 = 3, 4, 5, 6, 7, 8, 9, 10
IN_FLOAT, IN_DOUBLE, IN_BOOLEAN, IN_BINARY, IN_GUID, IN_POINTER = 11, 12, 13, 14, 15, 16
IN_FILETIME, IN_SYSTEMTIME, IN_SID, IN_HEXINT32, IN_HEXINT64 = 17, 18, 19, 20, 21
IN_COUNTEDSTRING, IN_COUNTEDANSISTRING, IN_REVERSEDCOUNTEDSTRING, IN_REVERSEDCOUNTEDANSISTRING = 22, 23, 24, 25
IN_NONNULLTERMINATEDSTRING, IN_NONNULLTERMINATEDANSISTRING = 26, 27
IN_UNICODECHAR, IN_ANSICHAR, IN_SIZET, IN_HEXDUMP, IN_WBEMSID = 28, 29, 30, 31, 32
# Not a TDH code: a UINT16 byte count, then the bytes (TraceLogging BINARY / COUNTEDBINARY / custom).
IN_COUNTED_BINARY = 0x100

INTYPE_NAMES = {
    0: "NULL", 1: "UNICODESTRING", 2: "ANSISTRING", 3: "INT8", 4: "UINT8", 5: "INT16", 6: "UINT16",
    7: "INT32", 8: "UINT32", 9: "INT64", 10: "UINT64", 11: "FLOAT", 12: "DOUBLE", 13: "BOOLEAN",
    14: "BINARY", 15: "GUID", 16: "POINTER", 17: "FILETIME", 18: "SYSTEMTIME", 19: "SID",
    20: "HEXINT32", 21: "HEXINT64", 22: "COUNTEDSTRING", 23: "COUNTEDANSISTRING",
    24: "REVERSEDCOUNTEDSTRING", 25: "REVERSEDCOUNTEDANSISTRING", 26: "NONNULLTERMINATEDSTRING",
    27: "NONNULLTERMINATEDANSISTRING", 28: "UNICODECHAR", 29: "ANSICHAR", 30: "SIZET", 31: "HEXDUMP",
    32: "WBEMSID", IN_COUNTED_BINARY: "COUNTEDBINARY",
}

# Fixed-size in-types: struct code (pointer-sized ones are resolved per pointer size).
_FIXED_CODES = {
    IN_INT8: "b", IN_UINT8: "B", IN_INT16: "h", IN_UINT16: "H", IN_INT32: "i", IN_UINT32: "I",
    IN_INT64: "q", IN_UINT64: "Q", IN_FLOAT: "f", IN_DOUBLE: "d", IN_BOOLEAN: "i", IN_GUID: "16s",
    IN_FILETIME: "Q", IN_SYSTEMTIME: "16s", IN_HEXINT32: "I", IN_HEXINT64: "Q", IN_UNICODECHAR: "H",
    IN_ANSICHAR: "B",
}
_POINTER_TYPES = frozenset({IN_POINTER, IN_SIZET})
_INTEGER_TYPES = frozenset({IN_INT8, IN_UINT8, IN_INT16, IN_UINT16, IN_INT32, IN_UINT32, IN_INT64,
                            IN_UINT64, IN_HEXINT32, IN_HEXINT64, IN_POINTER, IN_SIZET})

# Value formats a front end may ask for (from its own out-type numbering).
FMT_IPV4, FMT_IPV6, FMT_PORT, FMT_BOOL, FMT_UTF8 = "ipv4", "ipv6", "port", "bool", "utf8"

# Array elements read per payload, all arrays together: every element that takes a byte or more is
# bounded by the payload's size; this bounds the ones that take none (empty structs, zero counts).
ZERO_SIZE_ELEMENTS = 1 << 16


def fixed_code(in_type: int, pointer_size: int) -> str | None:
    """The ``struct`` code of a fixed-size in-type, or None for variable-size ones."""
    if in_type in _POINTER_TYPES:
        return "Q" if pointer_size == 8 else "I"
    return _FIXED_CODES.get(in_type)


def fixed_size(in_type: int, pointer_size: int) -> int | None:
    code = fixed_code(in_type, pointer_size)
    return None if code is None else struct.calcsize("<" + code)


# -- value conversions ---------------------------------------------------------------------------
def guid_text(raw: bytes) -> str:
    return guid_from_bytes(bytes(raw))


def systemtime_text(raw: bytes) -> str:
    year, month, _dow, day, hour, minute, second, ms = struct.unpack("<8H", raw)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}"


def ansi_text(raw: bytes) -> str:
    """8-bit strings: UTF-8 when they are valid UTF-8 (all ASCII is), else Windows-1252."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _ipv4(value: int) -> str:
    # The address is stored in network order; read as a little-endian UINT32 its first octet is low.
    return f"{value & 0xFF}.{(value >> 8) & 0xFF}.{(value >> 16) & 0xFF}.{value >> 24}"


def _port(value: int) -> int:
    return ((value & 0xFF) << 8) | (value >> 8)


def _scalar_converter(in_type: int, fmt: str | None) -> Callable[[Any], Any] | None:
    """Post-processing for one fixed-size value as ``struct`` returns it, or None."""
    if in_type == IN_GUID:
        return guid_text
    if in_type == IN_SYSTEMTIME:
        return systemtime_text
    if in_type == IN_BOOLEAN:
        return bool
    if in_type == IN_UNICODECHAR:
        return chr
    if in_type == IN_ANSICHAR:
        return lambda v: bytes((v,)).decode("cp1252", "replace")
    if fmt == FMT_IPV4 and in_type in (IN_UINT32, IN_INT32, IN_HEXINT32):
        return lambda v: _ipv4(v & 0xFFFFFFFF)
    if fmt == FMT_PORT and in_type in (IN_UINT16, IN_INT16):
        return lambda v: _port(v & 0xFFFF)
    if fmt == FMT_BOOL and in_type in _INTEGER_TYPES:
        return bool
    return None


# -- a cursor, for metadata parsing and one-off reads --------------------------------------------
_U8 = struct.Struct("<B").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U16BE = struct.Struct(">H").unpack_from
_U32 = struct.Struct("<I").unpack_from


class Cursor:
    """Reads little-endian values from ``data[pos:end]``; any overrun raises ``TdhError``."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data if isinstance(data, bytes) else bytes(data)
        self.pos = pos
        self.end = len(self.data) if end is None else min(end, len(self.data))
        if not 0 <= pos <= self.end:
            raise TdhError(f"cursor position {pos} outside 0..{self.end}")

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def need(self, n: int, what: str = "value") -> int:
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise TdhError(f"{what} of {n} bytes at offset {pos} overruns the {self.end}-byte data")
        self.pos = pos + n
        return pos

    def take(self, n: int, what: str = "bytes") -> bytes:
        pos = self.need(n, what)
        return self.data[pos:pos + n]

    def unpack(self, st: struct.Struct, what: str = "value") -> tuple:
        return st.unpack_from(self.data, self.need(st.size, what))

    def u8(self) -> int:
        return _U8(self.data, self.need(1, "UINT8"))[0]

    def u16(self) -> int:
        return _U16(self.data, self.need(2, "UINT16"))[0]

    def u32(self) -> int:
        return _U32(self.data, self.need(4, "UINT32"))[0]

    def cstr(self) -> str:
        """A NUL-terminated 8-bit string (UTF-8 or, failing that, Windows-1252)."""
        value, self.pos = ansiz(self.data, self.pos, self.end)
        return value

    def wstr(self) -> str:
        value, self.pos = utf16z(self.data, self.pos, self.end)
        return value

    def value(self, in_type: int, pointer_size: int = 8, length: int | None = None, fmt: str | None = None) -> Any:
        """Read one value of a TDH in-type (``length``: bytes for binary, characters for strings)."""
        reader = value_reader(in_type, pointer_size, length, fmt)
        val, self.pos = reader(self.data, self.pos, self.end)
        return val


# -- low-level readers: (buf, pos, end) -> (value, new pos) --------------------------------------
Reader = Callable[[bytes, int, int], tuple[Any, int]]


def utf16z(buf: bytes, pos: int, end: int, lenient: bool = False) -> tuple[str, int]:
    """A NUL-terminated UTF-16LE string. ``lenient``: accept one that runs to ``end`` unterminated."""
    i = pos
    while True:
        j = buf.find(b"\x00\x00", i, end)
        if j < 0:
            if lenient and not (end - pos) & 1 and pos <= end:
                return buf[pos:end].decode("utf-16-le", "replace"), end
            raise TdhError(f"UTF-16 string at offset {pos} has no terminator before offset {end}")
        if not (j - pos) & 1:
            return buf[pos:j].decode("utf-16-le", "replace"), j + 2
        i = j + 1


def ansiz(buf: bytes, pos: int, end: int, lenient: bool = False, utf8: bool = False) -> tuple[str, int]:
    j = buf.find(b"\x00", pos, end)
    if j < 0:
        if lenient and pos <= end:
            raw = buf[pos:end]
            return (raw.decode("utf-8", "replace") if utf8 else ansi_text(raw)), end
        raise TdhError(f"8-bit string at offset {pos} has no terminator before offset {end}")
    raw = buf[pos:j]
    return (raw.decode("utf-8", "replace") if utf8 else ansi_text(raw)), j + 1


def _sid_at(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    if pos + 8 > end:
        raise TdhError(f"SID at offset {pos} overruns the payload")
    revision, count = buf[pos], buf[pos + 1]
    size = 8 + 4 * count
    if pos + size > end:
        raise TdhError(f"SID with {count} sub-authorities at offset {pos} overruns the payload")
    authority = int.from_bytes(buf[pos + 2:pos + 8], "big")
    subs = struct.unpack_from(f"<{count}I", buf, pos + 8)
    return "-".join(["S", str(revision), str(authority), *map(str, subs)]), pos + size


def _wbemsid_at(pointer_size: int) -> Reader:
    """A TOKEN_USER (SID pointer + attributes, two pointer-sized slots), then the SID itself.
    A null SID pointer means no SID follows: only the first 4 bytes are present."""
    def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        if pos + 4 > end:
            raise TdhError(f"WBEM SID at offset {pos} overruns the payload")
        if _U32(buf, pos)[0] == 0:
            return None, pos + 4
        return _sid_at(buf, pos + 2 * pointer_size, end)
    return read


def _counted(prefix: Callable, decode: Callable[[bytes], Any], what: str, per_unit: int = 1) -> Reader:
    def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        if pos + 2 > end:
            raise TdhError(f"{what} length at offset {pos} overruns the payload")
        n = prefix(buf, pos)[0] * per_unit
        start = pos + 2
        if start + n > end:
            raise TdhError(f"{what} of {n} bytes at offset {pos} overruns the payload")
        return decode(buf[start:start + n]), start + n
    return read


def _hexdump(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    if pos + 4 > end:
        raise TdhError(f"HEXDUMP length at offset {pos} overruns the payload")
    n = _U32(buf, pos)[0]
    if pos + 4 + n > end:
        raise TdhError(f"HEXDUMP of {n} bytes at offset {pos} overruns the payload")
    return buf[pos + 4:pos + 4 + n].hex(), pos + 4 + n


def _utf16_fixed(raw: bytes) -> str:
    text = raw.decode("utf-16-le", "replace")
    cut = text.find("\x00")
    return text if cut < 0 else text[:cut]


def _ansi_fixed(raw: bytes) -> str:
    cut = raw.find(b"\x00")
    return ansi_text(raw if cut < 0 else raw[:cut])


def _sized(n: int, decode: Callable[[bytes], Any], what: str) -> Reader:
    def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        if pos + n > end:
            raise TdhError(f"{what} of {n} bytes at offset {pos} overruns the payload")
        return decode(buf[pos:pos + n]), pos + n
    return read


def _rest(decode: Callable[[bytes], Any]) -> Reader:
    def read(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
        return decode(buf[pos:end]), end
    return read


def _hex(raw: bytes) -> str:
    return raw.hex()


def _ipv6_or_hex(raw: bytes) -> str:
    return str(ipaddress.IPv6Address(raw)) if len(raw) == 16 else raw.hex()


def value_reader(in_type: int, pointer_size: int, length: int | None = None, fmt: str | None = None,
                 lenient: bool = False) -> Reader:
    """A reader for one value whose size does not depend on other fields.

    ``length``: a fixed length from the schema (bytes for binary and 8-bit strings, UTF-16 code
    units for UTF-16 strings); None or 0 means the in-type's natural size (terminator, prefix, or
    the rest of the payload for the non-terminated strings). ``lenient``: a terminated string may
    run to the end of the payload unterminated (pktmon writes some final strings that way).
    """
    code = fixed_code(in_type, pointer_size)
    if code is not None:
        st = struct.Struct("<" + code)
        size, unpack = st.size, st.unpack_from
        conv = _scalar_converter(in_type, fmt)
        name = INTYPE_NAMES[in_type]

        def read_fixed(buf: bytes, pos: int, end: int) -> tuple[Any, int]:
            if pos + size > end:
                raise TdhError(f"{name} at offset {pos} overruns the {end}-byte payload")
            v = unpack(buf, pos)[0]
            return (conv(v) if conv else v), pos + size
        return read_fixed
    binary_decode = _ipv6_or_hex if fmt == FMT_IPV6 else _hex
    if length:  # counted strings and SIDs carry their own size: a schema length does not apply
        if in_type in (IN_UNICODESTRING, IN_NONNULLTERMINATEDSTRING):
            return _sized(2 * length, _utf16_fixed, "UTF-16 string")
        if in_type in (IN_ANSISTRING, IN_NONNULLTERMINATEDANSISTRING):
            return _sized(length, _ansi_fixed, "8-bit string")
        if in_type == IN_BINARY:
            return _sized(length, binary_decode, "binary")
    if in_type == IN_UNICODESTRING:
        return lambda buf, pos, end: utf16z(buf, pos, end, lenient)
    if in_type == IN_ANSISTRING:
        utf8 = fmt == FMT_UTF8
        return lambda buf, pos, end: ansiz(buf, pos, end, lenient, utf8)
    if in_type == IN_COUNTEDSTRING:
        return _counted(_U16, lambda raw: raw.decode("utf-16-le", "replace"), "counted UTF-16 string")
    if in_type == IN_COUNTEDANSISTRING:
        return _counted(_U16, (lambda raw: raw.decode("utf-8", "replace")) if fmt == FMT_UTF8 else ansi_text,
                        "counted 8-bit string")
    if in_type == IN_REVERSEDCOUNTEDSTRING:
        return _counted(_U16BE, lambda raw: raw.decode("utf-16-le", "replace"), "reversed counted UTF-16 string")
    if in_type == IN_REVERSEDCOUNTEDANSISTRING:
        return _counted(_U16BE, ansi_text, "reversed counted 8-bit string")
    if in_type == IN_COUNTED_BINARY:
        return _counted(_U16, binary_decode, "counted binary")
    if in_type == IN_NONNULLTERMINATEDSTRING:
        def read_rest16(buf: bytes, pos: int, end: int) -> tuple[str, int]:
            if (end - pos) & 1:
                raise TdhError(f"non-terminated UTF-16 string at offset {pos} has an odd byte count")
            return buf[pos:end].decode("utf-16-le", "replace"), end
        return read_rest16
    if in_type == IN_NONNULLTERMINATEDANSISTRING:
        return _rest(ansi_text)
    if in_type == IN_BINARY:  # no length in the schema: an empty value (TDH reads nothing either)
        return lambda buf, pos, end: ("", pos)
    if in_type == IN_SID:
        return _sid_at
    if in_type == IN_WBEMSID:
        return _wbemsid_at(pointer_size)
    if in_type == IN_HEXDUMP:
        return _hexdump
    if in_type == IN_NULL:
        return lambda buf, pos, end: (None, pos)
    raise TdhError(f"unsupported in-type {in_type}")


def _ref_length_reader(in_type: int, slot: int, fmt: str | None) -> Callable | None:
    """A reader whose length is the value of an earlier field (``ctx.ref[slot]``): characters for
    strings, bytes for binary. None for in-types whose size a length does not change."""
    if in_type in (IN_UNICODESTRING, IN_NONNULLTERMINATEDSTRING):
        unit, decode, what = 2, _utf16_fixed, "UTF-16 string"
    elif in_type in (IN_ANSISTRING, IN_NONNULLTERMINATEDANSISTRING):
        unit, decode, what = 1, _ansi_fixed, "8-bit string"
    elif in_type in (IN_BINARY, IN_HEXDUMP):
        unit, decode, what = 1, (_ipv6_or_hex if fmt == FMT_IPV6 else _hex), "binary"
    else:
        return None

    def read(buf: bytes, pos: int, end: int, ctx: "_Ctx") -> tuple[Any, int]:
        n = _ref_int(ctx, slot, "length") * unit
        if pos + n > end:
            raise TdhError(f"{what} of {n} bytes at offset {pos} overruns the {end}-byte payload")
        return decode(buf[pos:pos + n]), pos + n
    return read


# -- field specifications and compiled plans -----------------------------------------------------
@dataclass(slots=True)
class FieldSpec:
    """One field as a front end describes it, in TDH terms.

    Array: ``count`` (fixed), ``count_ref`` (a slot an earlier field stores its value in), or
    ``count_inline`` (a UINT16 count in the payload, TraceLogging's variable count); ``is_array``
    says whether the value is a list even with a count of 1. Length: ``length`` (fixed) or
    ``length_ref``. ``store`` names the slot this field's value is kept in for later references.
    A struct has ``members`` (its ``in_type`` is ignored).
    """

    name: str
    in_type: int = IN_NULL
    fmt: str | None = None
    count: int = 1
    count_ref: int | None = None
    count_inline: bool = False
    is_array: bool = False
    length: int = 0
    length_ref: int | None = None
    members: list["FieldSpec"] | None = None
    store: int | None = None
    lenient: bool = False  # a final string may be unterminated

    @property
    def is_struct(self) -> bool:
        return self.members is not None


class _Ctx:
    __slots__ = ("ref", "budget")

    def __init__(self, payload_size: int) -> None:
        self.ref: dict[int, Any] = {}
        self.budget = ZERO_SIZE_ELEMENTS + payload_size


def _ref_int(ctx: _Ctx, slot: int, what: str) -> int:
    v = ctx.ref.get(slot)
    if type(v) is not int or v < 0:
        raise TdhError(f"{what} comes from a field that holds {v!r}, not a count")
    return v


Step = Callable[[bytes, int, int, dict, _Ctx], int]


class Plan:
    """A compiled field list: ``run`` decodes ``buf[pos:end]`` into ``out`` and returns the end."""

    __slots__ = ("steps", "min_size")

    def __init__(self, steps: list[Step], min_size: int) -> None:
        self.steps = steps
        self.min_size = min_size

    def decode(self, payload: bytes | memoryview, exact: bool = False) -> tuple[dict[str, Any], int]:
        """Decode a whole payload: ``(fields, bytes consumed)``; ``exact``: leftover bytes are an error."""
        buf = payload if isinstance(payload, bytes) else bytes(payload)
        out: dict[str, Any] = {}
        end = len(buf)
        pos = self.run(buf, 0, end, out, _Ctx(end))
        if exact and pos != end:
            raise TdhError(f"{end - pos} payload bytes left after the last field")
        return out, pos

    def run(self, buf: bytes, pos: int, end: int, out: dict, ctx: _Ctx) -> int:
        for step in self.steps:
            pos = step(buf, pos, end, out, ctx)
        return pos


def compile_fields(fields: list[FieldSpec], pointer_size: int) -> Plan:
    """Compile a field list for one pointer size. Raises ``TdhError`` for an impossible schema."""
    steps: list[Step] = []
    run: list[tuple[FieldSpec, str]] = []
    min_size = 0

    def flush() -> None:
        if run:
            steps.append(_fixed_run_step(run, pointer_size))
            run.clear()

    for spec in fields:
        code = None if spec.is_struct or spec.is_array or spec.count != 1 or spec.count_ref is not None \
            or spec.count_inline else fixed_code(spec.in_type, pointer_size)
        if code is not None:
            run.append((spec, code))
            min_size += struct.calcsize("<" + code)
            continue
        flush()
        step, size = _field_step(spec, pointer_size)
        steps.append(step)
        min_size += size
    flush()
    return Plan(steps, min_size)


def _fixed_run_step(run: list[tuple[FieldSpec, str]], pointer_size: int) -> Step:
    st = struct.Struct("<" + "".join(code for _, code in run))
    size, unpack = st.size, st.unpack_from
    names = tuple(spec.name for spec, _ in run)
    convs = [(k, c) for k, (spec, _) in enumerate(run) if (c := _scalar_converter(spec.in_type, spec.fmt))]
    stores = [(k, spec.store) for k, (spec, _) in enumerate(run) if spec.store is not None]
    what = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"

    if not convs and not stores:
        def step(buf: bytes, pos: int, end: int, out: dict, ctx: _Ctx) -> int:
            if pos + size > end:
                raise TdhError(f"fields {what} ({size} bytes) at offset {pos} overrun the {end}-byte payload")
            out.update(zip(names, unpack(buf, pos)))
            return pos + size
        return step

    def step_conv(buf: bytes, pos: int, end: int, out: dict, ctx: _Ctx) -> int:
        if pos + size > end:
            raise TdhError(f"fields {what} ({size} bytes) at offset {pos} overrun the {end}-byte payload")
        values = list(unpack(buf, pos))
        for k, slot in stores:
            ctx.ref[slot] = values[k]
        for k, conv in convs:
            values[k] = conv(values[k])
        out.update(zip(names, values))
        return pos + size
    return step_conv


def _element(spec: FieldSpec, pointer_size: int) -> tuple[Callable, int]:
    """A reader ``(buf, pos, end, ctx) -> (value, pos)`` for one element, and its minimum size."""
    if spec.is_struct:
        plan = compile_fields(spec.members or [], pointer_size)

        def read_struct(buf: bytes, pos: int, end: int, ctx: _Ctx) -> tuple[dict, int]:
            sub: dict[str, Any] = {}
            pos = plan.run(buf, pos, end, sub, ctx)
            return sub, pos
        return read_struct, plan.min_size
    if spec.length_ref is not None:
        reader = _ref_length_reader(spec.in_type, spec.length_ref, spec.fmt)
        if reader is not None:
            return reader, 0
    plain = value_reader(spec.in_type, pointer_size, spec.length or None, spec.fmt, spec.lenient)
    return (lambda buf, pos, end, ctx: plain(buf, pos, end)), _min_size(spec, pointer_size)


def _min_size(spec: FieldSpec, pointer_size: int) -> int:
    size = fixed_size(spec.in_type, pointer_size)
    if size is not None:
        return size
    if spec.in_type in (IN_COUNTEDSTRING, IN_COUNTEDANSISTRING, IN_REVERSEDCOUNTEDSTRING,
                        IN_REVERSEDCOUNTEDANSISTRING, IN_COUNTED_BINARY):
        return 2
    if spec.in_type == IN_UNICODESTRING and not spec.lenient:
        return 2 if not spec.length else 2 * spec.length
    if spec.in_type == IN_ANSISTRING and not spec.lenient:
        return 1 if not spec.length else spec.length
    if spec.in_type == IN_SID:
        return 8
    if spec.in_type in (IN_HEXDUMP, IN_WBEMSID):
        return 4
    if spec.in_type == IN_BINARY:
        return spec.length
    return 0


def _field_step(spec: FieldSpec, pointer_size: int) -> tuple[Step, int]:
    name, slot = spec.name, spec.store
    element, elem_min = _element(spec, pointer_size)
    array = spec.is_array or spec.count != 1 or spec.count_ref is not None or spec.count_inline

    if not array:
        def step_one(buf: bytes, pos: int, end: int, out: dict, ctx: _Ctx) -> int:
            value, pos = element(buf, pos, end, ctx)
            out[name] = value
            if slot is not None:
                ctx.ref[slot] = value
            return pos
        return step_one, elem_min

    fixed_count, count_ref, inline = spec.count, spec.count_ref, spec.count_inline
    code = None if spec.is_struct or spec.length_ref is not None else fixed_code(spec.in_type, pointer_size)
    conv = _scalar_converter(spec.in_type, spec.fmt) if code else None
    esize = struct.calcsize("<" + code) if code else 0
    structs: dict[int, struct.Struct] = {}

    def step_array(buf: bytes, pos: int, end: int, out: dict, ctx: _Ctx) -> int:
        if inline:
            if pos + 2 > end:
                raise TdhError(f"array count of {name} at offset {pos} overruns the payload")
            n = _U16(buf, pos)[0]
            pos += 2
        elif count_ref is not None:
            n = _ref_int(ctx, count_ref, f"count of {name}")
        else:
            n = fixed_count
        if n * elem_min > end - pos:
            raise TdhError(f"{n} elements of {name} at offset {pos} cannot fit in the {end}-byte payload")
        ctx.budget -= n
        if ctx.budget < 0:
            raise TdhError("too many array elements in one payload")
        if code is not None:
            st = structs.get(n)
            if st is None:
                st = struct.Struct(f"<{n}{code}") if code != "16s" else struct.Struct("<" + "16s" * n)
                if len(structs) < 64:
                    structs[n] = st
            values = list(st.unpack_from(buf, pos))
            if conv is not None:
                values = [conv(v) for v in values]
            pos += n * esize
        else:
            values = []
            append = values.append
            for _ in range(n):
                value, pos = element(buf, pos, end, ctx)
                append(value)
        out[name] = values
        if slot is not None:
            ctx.ref[slot] = values
        return pos
    return step_array, (fixed_count * elem_min if not inline and count_ref is None else (2 if inline else 0))


@dataclass(slots=True)
class Compiled:
    """A schema's plans, compiled lazily per pointer size."""

    fields: list[FieldSpec]
    plans: dict[int, Plan] = field(default_factory=dict)

    def plan(self, pointer_size: int) -> Plan:
        plan = self.plans.get(pointer_size)
        if plan is None:
            plan = self.plans[pointer_size] = compile_fields(self.fields, pointer_size)
        return plan
