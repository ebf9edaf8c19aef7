"""EventMetadata records: the schemas a relogged trace carries for its own events.

Provider {BBCCF6C1-6CD1-48C4-80FF-839482E37671} writes classic ``FULL_HEADER64`` records whose
opcode says what the payload is:

* 32: one event's ``TRACE_EVENT_INFO`` as ``TdhGetEventInformation`` returns it: provider and event
  GUIDs, the ``EVENT_DESCRIPTOR``, the decoding source, offsets of the provider/level/keyword/
  message strings, the property array (24 bytes per ``EVENT_PROPERTY_INFO``), then the strings
  (UTF-16LE, NUL-terminated), every offset relative to the payload start;
* 33: the provider GUID, then one ``EVENT_MAP_INFO`` (name, flags, entry count, value type, the
  entries as (name offset, value) pairs, then the strings; offsets relative to the map start).

Event layouts are declared as data (:class:`EventLayout` of :class:`Field`); the same tables give the
payload encoders their field order, so a trace and the schema it carries cannot disagree.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

PROVIDER = uuid.UUID("bbccf6c1-6cd1-48c4-80ff-839482e37671")
EVENT_INFO, EVENT_MAP_INFO = 32, 33

# TDH in-types and out-types used by the layouts here
IN_UNICODESTRING, IN_ANSISTRING = 1, 2
IN_UINT8, IN_UINT16, IN_UINT32, IN_UINT64 = 4, 6, 8, 10
IN_BOOLEAN, IN_BINARY, IN_GUID = 13, 14, 15
OUT_NULL, OUT_STRING = 0, 1
OUT_BOOLEAN = 13
OUT_UNSIGNEDBYTE, OUT_UNSIGNEDSHORT, OUT_UNSIGNEDINT, OUT_UNSIGNEDLONG = 4, 6, 8, 10
OUT_GUID, OUT_HEXBINARY, OUT_HEXINT32, OUT_HEXINT64 = 14, 15, 18, 19
OUT_IPV4, OUT_IPV6 = 23, 24

DEFAULT_OUT = {IN_UINT8: OUT_UNSIGNEDBYTE, IN_UINT16: OUT_UNSIGNEDSHORT, IN_UINT32: OUT_UNSIGNEDINT,
               IN_UINT64: OUT_UNSIGNEDLONG, IN_UNICODESTRING: OUT_STRING, IN_ANSISTRING: OUT_STRING,
               IN_BINARY: OUT_HEXBINARY, IN_GUID: OUT_GUID, IN_BOOLEAN: OUT_BOOLEAN}

PROPERTY_PARAM_LENGTH = 0x2
PROPERTY_PARAM_FIXED_LENGTH = 0x10
TEMPLATE_EVENT_DATA = 0x1
SOURCE_MANIFEST = 0
MAP_MANIFEST_VALUEMAP = 0x1
MAP_VALUETYPE_ULONG = 0

_TEI_HEAD = struct.Struct("<16s16sHBBBBHQ16I")
_PROPERTY = struct.Struct("<IIHHIHHI")
_MAP_HEAD = struct.Struct("<IIII")
_MAP_ENTRY = struct.Struct("<II")

LEVEL_NAMES = {1: "win:Critical", 2: "win:Error", 3: "win:Warning", 4: "win:Informational", 5: "win:Verbose"}


@dataclass(frozen=True, slots=True)
class Field:
    """One property: its TDH in-type and out-type, value map, and length.

    ``length`` is a fixed byte length (binary) and ``length_field`` the name of an earlier field
    holding the length, as manifests declare ``length="..."``.
    """

    name: str
    in_type: int
    out_type: int | None = None
    map_name: str | None = None
    length: int = 0
    length_field: str | None = None

    @property
    def effective_out_type(self) -> int:
        return DEFAULT_OUT.get(self.in_type, OUT_NULL) if self.out_type is None else self.out_type


@dataclass(frozen=True, slots=True)
class EventLayout:
    """What a manifest says about one event: identity, names, and the ordered fields."""

    provider: uuid.UUID
    provider_name: str
    event_id: int
    fields: tuple[Field, ...]
    version: int = 0
    level: int = 4
    keywords: int = 0
    keyword_name: str | None = None
    task: int = 0
    task_name: str | None = None
    opcode: int = 0
    channel: int = 0
    message: str | None = None
    maps: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[uuid.UUID, int, int]:
        return (self.provider, self.event_id, self.version)

    @property
    def map_names(self) -> tuple[str, ...]:
        return tuple(f.map_name for f in self.fields if f.map_name)


class _Strings:
    """Collects NUL-terminated UTF-16LE strings after a fixed part; offsets from ``base``."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.data = bytearray()

    def add(self, text: str | None) -> int:
        if text is None:
            return 0
        offset = self.base + len(self.data)
        self.data += text.encode("utf-16-le") + b"\0\0"
        return offset


def event_info(layout: EventLayout) -> bytes:
    """The ``TRACE_EVENT_INFO`` payload (EventMetadata opcode 32) describing ``layout``."""
    index = {f.name: i for i, f in enumerate(layout.fields)}
    strings = _Strings(_TEI_HEAD.size + _PROPERTY.size * len(layout.fields))
    name_offsets = [
        strings.add(layout.provider_name),
        strings.add(LEVEL_NAMES.get(layout.level)),
        0,  # channel name
        strings.add(layout.keyword_name),
        strings.add(layout.task_name),
        0,  # opcode name
        strings.add(layout.message),
        0,  # provider message
    ]
    properties = bytearray()
    for f in layout.fields:
        flags, length = 0, f.length
        if f.length_field is not None:
            if index.get(f.length_field, len(layout.fields)) >= index[f.name]:
                raise ValueError(f"{f.name}: its length field {f.length_field!r} must come before it")
            flags, length = PROPERTY_PARAM_LENGTH, index[f.length_field]
        elif f.length and f.in_type == IN_BINARY:
            flags = PROPERTY_PARAM_FIXED_LENGTH
        properties += _PROPERTY.pack(flags, strings.add(f.name), f.in_type, f.effective_out_type,
                                     strings.add(f.map_name), 1, length, 0)
    head = _TEI_HEAD.pack(
        layout.provider.bytes_le, bytes(16), layout.event_id, layout.version, layout.channel, layout.level,
        layout.opcode, layout.task, layout.keywords, SOURCE_MANIFEST, *name_offsets,
        0, 0,  # binary XML offset and size
        0, 0,  # event name, event attributes
        len(layout.fields), len(layout.fields), TEMPLATE_EVENT_DATA,
    )
    return head + bytes(properties) + bytes(strings.data)


def map_info(provider: uuid.UUID, name: str, entries: dict[int, str]) -> bytes:
    """The EventMetadata opcode 33 payload: the provider GUID, then a manifest value map."""
    values = sorted(entries)
    strings = _Strings(_MAP_HEAD.size + _MAP_ENTRY.size * len(values))
    name_offset = strings.add(name)
    rows = b"".join(_MAP_ENTRY.pack(strings.add(entries[v]), v) for v in values)
    head = _MAP_HEAD.pack(name_offset, MAP_MANIFEST_VALUEMAP, len(values), MAP_VALUETYPE_ULONG)
    return provider.bytes_le + head + rows + bytes(strings.data)


# -- payloads from the same tables ----------------------------------------------------------------

_FIXED = {IN_UINT8: "B", IN_UINT16: "H", IN_UINT32: "I", IN_UINT64: "Q", IN_BOOLEAN: "I"}


def encode_fields(layout: EventLayout, values: dict[str, object]) -> bytes:
    """Pack ``values`` in the layout's field order: integers by their in-type, strings NUL-terminated
    (UTF-16LE or ANSI) unless a length field counts their characters, GUIDs as ``uuid.UUID``,
    binaries as bytes. A length field that is not given is filled from the value it describes
    (bytes of a binary, characters of a string). Every field must be given or derivable."""
    by_length_field = {f.length_field: f.name for f in layout.fields if f.length_field}
    missing = [f.name for f in layout.fields if f.name not in values and f.name not in by_length_field]
    if missing:
        raise ValueError(f"event {layout.event_id}: no value for {', '.join(missing)}")
    unknown = set(values) - {f.name for f in layout.fields}
    if unknown:
        raise ValueError(f"event {layout.event_id}: no field named {', '.join(sorted(unknown))}")
    out = bytearray()
    for f in layout.fields:
        value = values.get(f.name)
        if value is None and f.name in by_length_field:
            value = len(values[by_length_field[f.name]])  # type: ignore[arg-type]
        out += _encode_value(f, value)
    return bytes(out)


def _encode_value(f: Field, value: object) -> bytes:
    if f.in_type in _FIXED:
        return struct.pack("<" + _FIXED[f.in_type], value)
    terminator = not f.length_field
    if f.in_type == IN_UNICODESTRING:
        return str(value).encode("utf-16-le") + (b"\0\0" if terminator else b"")
    if f.in_type == IN_ANSISTRING:
        return str(value).encode("ascii") + (b"\0" if terminator else b"")
    if f.in_type == IN_GUID:
        return value.bytes_le  # type: ignore[union-attr]
    if f.in_type == IN_BINARY:
        raw = bytes(value)  # type: ignore[arg-type]
        if f.length and not f.length_field and len(raw) != f.length:
            raise ValueError(f"{f.name}: {len(raw)} bytes, the layout says {f.length}")
        return raw
    raise ValueError(f"{f.name}: in-type {f.in_type} is not supported by the encoder")
