"""TraceLogging: events that carry their own schema in an extended data item.

A TraceLogging event has two extended items: EVENT_HEADER_EXT_TYPE_EVENT_SCHEMA_TL (11), the event's
metadata, and EVENT_HEADER_EXT_TYPE_PROV_TRAITS (12), the provider's. Their layouts (from the
public TraceLoggingProvider.h encoding, confirmed on the ebpf-for-windows and PerfView samples):

Provider traits::

    UINT16 size           total, this field included
    char   name[]         UTF-8, NUL-terminated
    (UINT16 size, UINT8 type, data)*   traits (e.g. type 1 = provider group GUID)

Event metadata::

    UINT16 size           total, this field included
    UINT8  extension[]    1+ bytes; bit 0x80 chains another byte (event tags, 7 bits a byte)
    char   name[]         UTF-8, NUL-terminated
    fields, to the end:
        char   name[]     UTF-8, NUL-terminated
        UINT8  in_type    bits 0-4 type, 0x20/0x40/0x60 = const count / variable count / custom,
                          0x80 = an out-type byte follows
        UINT8  out_type   (if chained) bits 0-6; for STRUCT the number of member fields (1-127);
                          0x80 = field tag bytes follow (7 bits a byte, 0x80 chains)
        UINT16 count      (const count: the element count; custom: the size of the type info,
                          which follows)

The payload holds the values in field order: a variable-count array starts with a UINT16 element
count, BINARY (14) / COUNTEDBINARY (25) / custom values with a UINT16 byte count, counted strings
likewise; a STRUCT field has no data of its own, its member fields follow it. ``TlgIn`` 0-23 read
as the TDH in-types of the same number (16, POINTER, is "unsupported" in TraceLogging and is read
pointer-sized here).

Schemas are compiled once and cached by their bytes (``compile_schema``); decoding is per event.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from diag.decode import tdh
from diag.decode.tdh import Compiled, Cursor, FieldSpec, TdhError
from diag.read.records import EXT_EVENT_SCHEMA_TL, EXT_PROV_TRAITS, Record

# TlgIn values (bits 0-4) and flags.
TLG_IN_NULL, TLG_IN_BINARY, TLG_IN_POINTER, TLG_IN_STRUCT, TLG_IN_COUNTEDBINARY = 0, 14, 16, 24, 25
TLG_IN_TYPE_MASK, TLG_IN_FLAG_MASK = 0x1F, 0x60
TLG_IN_CCOUNT, TLG_IN_VCOUNT, TLG_IN_CUSTOM, TLG_IN_CHAIN = 0x20, 0x40, 0x60, 0x80
TLG_OUT_TYPE_MASK, TLG_OUT_CHAIN = 0x7F, 0x80
# TlgOut values that change how a value is presented (numbering differs from TDH_OUTTYPE).
TLG_OUT_BOOLEAN, TLG_OUT_PORT, TLG_OUT_IPV4, TLG_OUT_IPV6 = 3, 7, 8, 9
TLG_OUT_XML, TLG_OUT_JSON, TLG_OUT_UTF8 = 11, 12, 35

_OUT_FORMATS = {
    TLG_OUT_BOOLEAN: tdh.FMT_BOOL, TLG_OUT_PORT: tdh.FMT_PORT, TLG_OUT_IPV4: tdh.FMT_IPV4,
    TLG_OUT_IPV6: tdh.FMT_IPV6, TLG_OUT_XML: tdh.FMT_UTF8, TLG_OUT_JSON: tdh.FMT_UTF8, TLG_OUT_UTF8: tdh.FMT_UTF8,
}
MAX_DEPTH = 32  # struct nesting


class TlField:
    """One field of a TraceLogging event as its metadata declares it."""

    __slots__ = ("name", "in_type", "flags", "out_type", "tag", "count", "custom_schema", "members")

    def __init__(self, name: str, in_type: int, flags: int, out_type: int, tag: int, count: int,
                 custom_schema: bytes | None, members: tuple["TlField", ...] | None) -> None:
        self.name = name
        self.in_type = in_type  # TlgIn type (flags removed)
        self.flags = flags  # 0, TLG_IN_CCOUNT, TLG_IN_VCOUNT or TLG_IN_CUSTOM
        self.out_type = out_type
        self.tag = tag
        self.count = count  # const count (1 unless TLG_IN_CCOUNT)
        self.custom_schema = custom_schema
        self.members = members  # for STRUCT

    @property
    def is_struct(self) -> bool:
        return self.members is not None

    def __repr__(self) -> str:
        extra = f" members={list(self.members)}" if self.members is not None else ""
        return f"<TlField {self.name} in={self.in_type} flags=0x{self.flags:02x} out={self.out_type}{extra}>"


class TlSchema:
    """A compiled TraceLogging event schema: its name, tags, fields and decode plans."""

    __slots__ = ("name", "tags", "fields", "_compiled")

    def __init__(self, name: str, tags: int, fields: tuple[TlField, ...]) -> None:
        self.name = name
        self.tags = tags
        self.fields = fields
        self._compiled = Compiled([_spec(f) for f in fields])

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def decode(self, payload: bytes | memoryview, pointer_size: int = 8,
               exact: bool = True) -> tuple[dict[str, Any], int]:
        """``(fields, bytes consumed)``. ``exact``: bytes left after the last field raise ``TdhError``
        (a TraceLogging payload is exactly its fields; leftovers mean the schema was misread)."""
        return self._compiled.plan(pointer_size).decode(payload, exact)

    def __repr__(self) -> str:
        return f"<TlSchema {self.name} {list(self.fields)}>"


def _spec(f: TlField) -> FieldSpec:
    # A STRUCT's out-type byte is its member count, not a format.
    spec = FieldSpec(f.name, fmt=None if f.members is not None else _OUT_FORMATS.get(f.out_type))
    if f.flags == TLG_IN_CCOUNT:
        spec.count, spec.is_array = f.count, True
    elif f.flags == TLG_IN_VCOUNT:
        spec.count_inline, spec.is_array = True, True
    if f.members is not None:
        spec.members = [_spec(m) for m in f.members]
    elif f.flags == TLG_IN_CUSTOM or f.in_type in (TLG_IN_BINARY, TLG_IN_COUNTEDBINARY):
        spec.in_type = tdh.IN_COUNTED_BINARY
    else:
        spec.in_type = f.in_type  # 1-23 as TDH; 16 pointer-sized
    return spec


@lru_cache(maxsize=8192)
def compile_schema(blob: bytes) -> TlSchema:
    """Parse EVENT_SCHEMA_TL metadata bytes into a ``TlSchema``; raises ``TdhError`` if malformed."""
    cur = Cursor(blob)
    size = cur.u16()
    if size < 4 or size > len(blob):
        raise TdhError(f"TraceLogging metadata claims {size} bytes, {len(blob)} present")
    cur.end = size
    tags = _chained(cur)
    name = cur.cstr()
    flat: list[tuple[str, int, int, int, int, int, bytes | None]] = []
    while cur.remaining:
        fname = cur.cstr()
        raw_in = cur.u8()
        out_type = tag = 0
        if raw_in & TLG_IN_CHAIN:
            raw_out = cur.u8()
            out_type = raw_out & TLG_OUT_TYPE_MASK
            if raw_out & TLG_OUT_CHAIN:
                tag = _chained(cur)
        flags = raw_in & TLG_IN_FLAG_MASK
        count, custom = 1, None
        if flags == TLG_IN_CCOUNT:
            count = cur.u16()
        elif flags == TLG_IN_CUSTOM:
            custom = cur.take(cur.u16(), "custom type info")
        flat.append((fname, raw_in & TLG_IN_TYPE_MASK, flags, out_type, tag, count, custom))
    return TlSchema(name, tags, _nest(flat))


def _chained(cur: Cursor) -> int:
    """Tag bytes: 7 bits each, high bits first, 0x80 chains another byte. The 28-bit tag is
    left-aligned (one byte 0x01 is tag 0x200000); bytes past the fourth are read and ignored."""
    value = n = 0
    while True:
        b = cur.u8()
        if n < 4:
            value |= (b & 0x7F) << (21 - 7 * n)
        n += 1
        if not b & 0x80:
            return value


def _field_at(flat: list, i: int, depth: int) -> tuple[TlField, int]:
    """The field at ``flat[i]`` (a STRUCT with all its members, which follow it): ``(field, next i)``."""
    if i >= len(flat):
        raise TdhError("a TraceLogging struct declares more member fields than follow it")
    fname, in_type, flags, out_type, tag, count, custom = flat[i]
    i += 1
    members = None
    if in_type == TLG_IN_STRUCT and flags != TLG_IN_CUSTOM:
        if depth >= MAX_DEPTH:
            raise TdhError("TraceLogging structs nested too deeply")
        if out_type == 0:
            raise TdhError(f"TraceLogging struct {fname!r} declares no member fields")
        members = []
        for _ in range(out_type):
            member, i = _field_at(flat, i, depth + 1)
            members.append(member)
        members = tuple(_unique(members))
    elif flags != TLG_IN_CUSTOM and (in_type == TLG_IN_NULL or in_type > TLG_IN_COUNTEDBINARY):
        raise TdhError(f"TraceLogging field {fname!r} has an unknown in-type {in_type}")
    return TlField(fname, in_type, flags, out_type, tag, count, custom, members), i


def _nest(flat: list) -> tuple[TlField, ...]:
    fields, i = [], 0
    while i < len(flat):
        f, i = _field_at(flat, i, 0)
        fields.append(f)
    return tuple(_unique(fields))


def _unique(fields: list[TlField]) -> list[TlField]:
    """Field names within one struct (or the event) made unique: a repeat gets ``_2``, ``_3``..."""
    seen: dict[str, int] = {}
    for f in fields:
        k = seen.get(f.name, 0)
        seen[f.name] = k + 1
        if k:
            f.name = f"{f.name}_{k + 1}"
    return fields


@lru_cache(maxsize=1024)
def provider_traits(blob: bytes) -> tuple[str, tuple[tuple[int, bytes], ...]]:
    """Parse EVENT_HEADER_EXT_TYPE_PROV_TRAITS bytes: ``(provider name, ((trait type, data), ...))``."""
    cur = Cursor(blob)
    size = cur.u16()
    if size < 3 or size > len(blob):
        raise TdhError(f"provider traits claim {size} bytes, {len(blob)} present")
    cur.end = size
    name = cur.cstr()
    traits = []
    while cur.remaining >= 3:
        tsize = cur.u16()
        ttype = cur.u8()
        if tsize < 3:
            raise TdhError(f"provider trait of {tsize} bytes")
        traits.append((ttype, cur.take(tsize - 3, "provider trait")))
    return name, tuple(traits)


def provider_name(traits_blob: bytes | memoryview) -> str | None:
    try:
        return provider_traits(bytes(traits_blob))[0]
    except TdhError:
        return None


def _items(record: Record) -> tuple[memoryview | None, memoryview | None]:
    schema = traits = None
    for ext_type, data in record.extended_items():
        if ext_type == EXT_EVENT_SCHEMA_TL:
            schema = data
        elif ext_type == EXT_PROV_TRAITS:
            traits = data
    return schema, traits


def schema_of(record: Record) -> TlSchema | None:
    """The compiled schema of a TraceLogging record, None if it has none (``TdhError`` if malformed)."""
    schema, _ = _items(record)
    return None if schema is None else compile_schema(bytes(schema))


def event_name(record: Record) -> str | None:
    try:
        schema = schema_of(record)
    except TdhError:
        return None
    return None if schema is None else schema.name


def decode(schema_blob: bytes | memoryview, payload: bytes | memoryview, pointer_size: int = 8,
           exact: bool = True) -> tuple[str, dict[str, Any]]:
    """Decode a payload with EVENT_SCHEMA_TL bytes: ``(event name, fields)``."""
    schema = compile_schema(bytes(schema_blob))
    fields, _ = schema.decode(payload, pointer_size, exact)
    return schema.name, fields


def decode_record(record: Record, exact: bool = True) -> tuple[str, dict[str, Any], str | None]:
    """Decode a TraceLogging record: ``(event name, fields, provider name)``; ``TdhError`` if it
    has no schema item or the schema and payload do not fit together."""
    schema_blob, traits = _items(record)
    if schema_blob is None:
        raise TdhError("record has no TraceLogging schema item")
    schema = compile_schema(bytes(schema_blob))
    fields, _ = schema.decode(record.payload, record.pointer_size, exact)
    return schema.name, fields, (None if traits is None else provider_name(traits))
