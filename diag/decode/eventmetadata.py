"""Schemas the trace carries itself: the "EventMetadata" records pktmon (and relogged traces) embed.

Provider {BBCCF6C1-6CD1-48C4-80FF-839482E37671} (the kernel logger's EventMetadata class) writes
classic records (FULL_HEADER32/64; the record's opcode is the event id):

32, event info: the TDH ``TRACE_EVENT_INFO`` of one event, byte for byte as ``TdhGetEventInformation``
    returns it, strings included; every offset in it is relative to the start of the payload::

        0   GUID   ProviderGuid
        16  GUID   EventGuid                 (zero for manifest events)
        32  EVENT_DESCRIPTOR (Id u16, Version u8, Channel u8, Level u8, Opcode u8, Task u16, Keyword u64)
        48  u32    DecodingSource            (0 manifest, 1 WBEM/MOF, 2 WPP, 3 TraceLogging)
        52  u32    ProviderNameOffset, LevelNameOffset, ChannelNameOffset, KeywordsNameOffset,
                   TaskNameOffset, OpcodeNameOffset, EventMessageOffset, ProviderMessageOffset
        84  u32    BinaryXMLOffset, BinaryXMLSize
        92  u32    EventNameOffset, EventAttributesOffset   (0: none)
        100 u32    PropertyCount, TopLevelPropertyCount, Flags (TEMPLATE_FLAGS; bits 4+ tags)
        112 EVENT_PROPERTY_INFO[PropertyCount], 24 bytes each:
            u32 Flags (PROPERTY_FLAGS), u32 NameOffset,
            u16 InType, u16 OutType, u32 MapNameOffset   |  u16 StructStartIndex, u16 NumOfStructMembers, u32 -
            u16 count | countPropertyIndex, u16 length | lengthPropertyIndex, u32 Tags (28 bits)
        strings: UTF-16LE, NUL-terminated (offset 0: absent)

33, map info: the provider GUID, then an ``EVENT_MAP_INFO`` whose offsets are relative to its own
    start (payload offset 16)::

        0  u32 NameOffset, u32 Flag (MAP_FLAGS), u32 EntryCount, u32 MapEntryValueType | FormatStringOffset
        16 EVENT_MAP_ENTRY[EntryCount]: u32 OutputOffset, u32 Value (or InputOffset for string maps)

Pktmon writes one event-info record per event id that occurs in the trace (so a trace without
drops has no schema for 170) and one map-info record per value map those events use.

Order: each EventMetadata record is timestamped just before the first event that uses it, but a
trace is read buffer by buffer (per CPU), so in *file* order many events come before their schema
(1865 of the 2705 packets of the nathaniel-security sample; 12 of the 28 drops of the Finguard
one). Feed the registry every EventMetadata record of the trace before decoding with it (a
pre-scan: they are few), or read in time order.

``SchemaRegistry`` is fed every EventMetadata record of a trace (``add``) and answers
``lookup(provider, event_id, version)`` and ``value_map(provider, map_name)``. Parsed schemas are
cached by their bytes (every pktmon trace of one Windows build carries the same ones), and
``decode_with_schema`` runs a plan compiled once per schema and pointer size.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from diag.decode import tdh
from diag.decode.tdh import Compiled, FieldSpec, TdhError
from diag.read.guids import guid_from_bytes
from diag.read.records import Record

PROVIDER = "bbccf6c1-6cd1-48c4-80ff-839482e37671"
NAME = "EventMetadata"
EVENT_INFO, EVENT_MAP_INFO = 32, 33

# PROPERTY_FLAGS
PROPERTY_STRUCT, PROPERTY_PARAM_LENGTH, PROPERTY_PARAM_COUNT = 0x1, 0x2, 0x4
PROPERTY_WBEM_XML_FRAGMENT, PROPERTY_PARAM_FIXED_LENGTH, PROPERTY_PARAM_FIXED_COUNT = 0x8, 0x10, 0x20
PROPERTY_HAS_TAGS, PROPERTY_HAS_CUSTOM_SCHEMA = 0x40, 0x80
# DECODING_SOURCE
SOURCE_MANIFEST, SOURCE_WBEM, SOURCE_WPP, SOURCE_TRACELOGGING = 0, 1, 2, 3
# MAP_FLAGS
MAP_MANIFEST_VALUEMAP, MAP_MANIFEST_BITMAP, MAP_MANIFEST_PATTERNMAP = 0x1, 0x2, 0x4
MAP_WBEM_VALUEMAP, MAP_WBEM_BITMAP, MAP_WBEM_FLAG, MAP_WBEM_NO_MAP = 0x8, 0x10, 0x20, 0x40
MAP_VALUETYPE_ULONG, MAP_VALUETYPE_STRING = 0, 1
# TDH_OUTTYPE values that change how a value is presented.
OUT_BOOLEAN, OUT_PORT, OUT_IPV4, OUT_IPV6, OUT_XML, OUT_JSON, OUT_UTF8 = 13, 22, 23, 24, 28, 34, 35
_OUT_FORMATS = {
    OUT_BOOLEAN: tdh.FMT_BOOL, OUT_PORT: tdh.FMT_PORT, OUT_IPV4: tdh.FMT_IPV4, OUT_IPV6: tdh.FMT_IPV6,
    OUT_XML: tdh.FMT_UTF8, OUT_JSON: tdh.FMT_UTF8, OUT_UTF8: tdh.FMT_UTF8,
}
_STRING_TYPES = frozenset({tdh.IN_UNICODESTRING, tdh.IN_ANSISTRING})
_LENGTHED_TYPES = frozenset({
    tdh.IN_UNICODESTRING, tdh.IN_ANSISTRING, tdh.IN_BINARY, tdh.IN_NONNULLTERMINATEDSTRING,
    tdh.IN_NONNULLTERMINATEDANSISTRING, tdh.IN_HEXDUMP,
})

_TEI_HEAD = struct.Struct("<16s16sHBBBBHQ16I")  # TRACE_EVENT_INFO up to the property array
_PROPERTY = struct.Struct("<IIHHIHHI")  # EVENT_PROPERTY_INFO
_MAP_HEAD = struct.Struct("<IIII")  # EVENT_MAP_INFO up to the entry array
_MAP_ENTRY = struct.Struct("<II")
MAX_STRUCT_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Property:
    """One EVENT_PROPERTY_INFO. ``count_index``/``length_index`` are set when the count or length
    is the value of another property (its index in the event's property array)."""

    index: int
    name: str
    flags: int
    in_type: int  # 0 for a struct
    out_type: int
    map_name: str | None
    count: int  # fixed count (meaningless when count_index is set)
    count_index: int | None
    length: int  # fixed length: bytes, or characters for strings (meaningless when length_index is set)
    length_index: int | None
    struct_start: int
    struct_members: int
    tags: int
    members: tuple["Property", ...] = ()

    @property
    def is_struct(self) -> bool:
        return bool(self.flags & PROPERTY_STRUCT)

    @property
    def is_array(self) -> bool:
        return bool(self.flags & (PROPERTY_PARAM_COUNT | PROPERTY_PARAM_FIXED_COUNT)) or self.count > 1

    @property
    def in_type_name(self) -> str:
        return "STRUCT" if self.is_struct else tdh.INTYPE_NAMES.get(self.in_type, str(self.in_type))


@dataclass(slots=True, eq=False)
class EventSchema:
    """A TRACE_EVENT_INFO, parsed: the event's identity, its names, and its properties."""

    provider: str
    event_guid: str
    event_id: int
    version: int
    channel: int
    level: int
    opcode: int
    task: int
    keywords: int
    decoding_source: int
    provider_name: str | None
    level_name: str | None
    channel_name: str | None
    keyword_names: str | None
    task_name: str | None
    opcode_name: str | None
    message: str | None
    provider_message: str | None
    event_name: str | None
    event_attributes: str | None
    template_flags: int
    properties: tuple[Property, ...]  # top level, structs holding their members
    all_properties: tuple[Property, ...]  # the flat array, in index order
    _compiled: Compiled = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def name(self) -> str:
        """The event's symbolic name: its own, else Task[/Opcode], else ``Event<id>``."""
        if self.event_name:
            return self.event_name
        if self.task_name:
            if self.opcode and self.opcode_name:
                opcode = self.opcode_name[4:] if self.opcode_name.startswith("win:") else self.opcode_name
                return f"{self.task_name}/{opcode}"
            return self.task_name
        return f"Event{self.event_id}"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.provider, self.event_id, self.version)

    def decode(self, payload: bytes | memoryview, pointer_size: int = 8,
               exact: bool = False) -> tuple[dict[str, Any], int]:
        """``(fields, bytes consumed)``; ``exact``: bytes left after the last property raise ``TdhError``."""
        return self._compiled.plan(pointer_size).decode(payload, exact)


@dataclass(frozen=True, slots=True)
class ValueMap:
    """An EVENT_MAP_INFO: a value map, a bitmap, or (string valued) a pattern map."""

    provider: str
    name: str
    flags: int
    value_type: int
    entries: dict  # value (int; str for string-valued maps) -> name, surrounding blanks stripped

    @property
    def is_bitmap(self) -> bool:
        return bool(self.flags & (MAP_MANIFEST_BITMAP | MAP_WBEM_BITMAP))

    def label(self, value: Any) -> str | None:
        """The name of a value; for a bitmap, the names of its set bits joined with ``|``."""
        if not self.is_bitmap or not isinstance(value, int):
            return self.entries.get(value)
        names = [n for bit, n in self.entries.items() if isinstance(bit, int) and bit and value & bit == bit]
        return "|".join(names) if names else self.entries.get(value)


# -- parsing -----------------------------------------------------------------------------------
def _string(data: bytes, offset: int) -> str | None:
    if offset == 0:
        return None
    if offset >= len(data):
        raise TdhError(f"string offset {offset} outside the {len(data)}-byte metadata")
    return tdh.utf16z(data, offset, len(data))[0]


@lru_cache(maxsize=4096)
def parse_event_info(data: bytes) -> EventSchema:
    """Parse an event-info (id 32) payload; raises ``TdhError`` when it is not a sound TRACE_EVENT_INFO."""
    if len(data) < _TEI_HEAD.size:
        raise TdhError(f"event info of {len(data)} bytes is shorter than a TRACE_EVENT_INFO header")
    (provider_raw, event_guid_raw, event_id, version, channel, level, opcode, task, keywords,
     source, o_provider, o_level, o_channel, o_keywords, o_task, o_opcode, o_message, o_provider_message,
     _xml_offset, _xml_size, o_event_name, o_attributes, prop_count, top_count,
     template_flags) = _TEI_HEAD.unpack_from(data)
    if prop_count > (len(data) - _TEI_HEAD.size) // _PROPERTY.size or top_count > prop_count:
        raise TdhError(f"event info declares {prop_count} properties ({top_count} top level) in {len(data)} bytes")
    raw = []
    for i in range(prop_count):
        flags, o_name, a, b, c, count, length, tags = _PROPERTY.unpack_from(data, _TEI_HEAD.size + i * _PROPERTY.size)
        raw.append((flags, _string(data, o_name) or f"Property{i}", a, b, c, count, length, tags))
    referenced = set()
    for i, (flags, name, *_rest) in enumerate(raw):
        count, length = _rest[3], _rest[4]
        for flag, ref in ((PROPERTY_PARAM_COUNT, count), (PROPERTY_PARAM_LENGTH, length)):
            if flags & flag:
                if ref >= prop_count or ref == i or raw[ref][0] & PROPERTY_STRUCT:
                    what = "count" if flag == PROPERTY_PARAM_COUNT else "length"
                    raise TdhError(f"property {name!r} takes its {what} from property {ref}, which cannot hold one")
                referenced.add(ref)

    built: dict[int, Property] = {}

    def build(i: int, depth: int) -> Property:
        if depth > MAX_STRUCT_DEPTH:
            raise TdhError("event info structs nest too deeply (or refer to themselves)")
        flags, name, a, b, c, count, length, tags = raw[i]
        members: tuple[Property, ...] = ()
        if flags & PROPERTY_STRUCT:
            start, n = a, b
            if start <= i or start + n > prop_count:
                raise TdhError(f"struct property {name!r} has members {start}..{start + n - 1} of {prop_count}")
            members = tuple(build(j, depth + 1) for j in range(start, start + n))
            in_type, out_type, map_name = 0, 0, None
        else:
            start = n = 0
            in_type, out_type = a, b
            map_name = _string(data, c) if c and not flags & PROPERTY_HAS_CUSTOM_SCHEMA else None
            if in_type not in tdh.INTYPE_NAMES or in_type == tdh.IN_COUNTED_BINARY:
                raise TdhError(f"property {name!r} has an unknown in-type {in_type}")
        prop = Property(
            i, name, flags, in_type, out_type, map_name.strip() if map_name else None,
            count, count if flags & PROPERTY_PARAM_COUNT else None,
            length, length if flags & PROPERTY_PARAM_LENGTH else None, start, n, tags & 0x0FFFFFFF, members)
        built[i] = prop
        return prop

    top = tuple(build(i, 0) for i in range(top_count))
    flat = tuple(built.get(i) or build(i, 0) for i in range(prop_count))
    provider = guid_from_bytes(provider_raw)
    specs = _specs(top, referenced, top_level=True)
    return EventSchema(
        provider, guid_from_bytes(event_guid_raw), event_id, version, channel, level, opcode, task, keywords,
        source, *(_clean(_string(data, o)) for o in (o_provider, o_level, o_channel, o_keywords, o_task, o_opcode)),
        _clean(_string(data, o_message)), _clean(_string(data, o_provider_message)),
        _clean(_string(data, o_event_name)), _clean(_string(data, o_attributes)),
        template_flags, top, flat, Compiled(specs))


def _clean(text: str | None) -> str | None:
    """Manifest strings come with trailing blanks (``"In "``, messages end in a space)."""
    if text is None:
        return None
    text = text.rstrip()
    return text or None


def _specs(props: tuple[Property, ...], referenced: set[int], top_level: bool = False) -> list[FieldSpec]:
    specs = []
    seen: dict[str, int] = {}
    for k, p in enumerate(props):
        n = seen.get(p.name, 0)
        seen[p.name] = n + 1
        spec = FieldSpec(p.name if not n else f"{p.name}_{n + 1}", p.in_type, _OUT_FORMATS.get(p.out_type))
        if p.count_index is not None:
            spec.count_ref, spec.is_array = p.count_index, True
        elif p.flags & PROPERTY_PARAM_FIXED_COUNT or p.count > 1:
            spec.count, spec.is_array = p.count, True
        if p.is_struct:
            spec.members = _specs(p.members, referenced)
        elif p.length_index is not None:
            spec.length_ref = p.length_index
        elif p.in_type in _LENGTHED_TYPES and p.length:
            spec.length = p.length
        if p.index in referenced:
            spec.store = p.index
        # pktmon ends some events with a string it does not terminate (event 73 on 22621).
        spec.lenient = top_level and k == len(props) - 1 and p.in_type in _STRING_TYPES and not spec.is_array
        specs.append(spec)
    return specs


@lru_cache(maxsize=4096)
def parse_map_info(data: bytes) -> ValueMap:
    """Parse a map-info (id 33) payload: the provider GUID, then an EVENT_MAP_INFO."""
    if len(data) < 16 + _MAP_HEAD.size:
        raise TdhError(f"map info of {len(data)} bytes is shorter than its header")
    provider = guid_from_bytes(data[:16])
    info = data[16:]
    o_name, flags, count, value_type = _MAP_HEAD.unpack_from(info)
    if count > (len(info) - _MAP_HEAD.size) // _MAP_ENTRY.size:
        raise TdhError(f"map info declares {count} entries in {len(info)} bytes")
    name = _clean(_string(info, o_name))
    if name is None:
        raise TdhError("map info without a name")
    string_valued = bool(flags & MAP_MANIFEST_PATTERNMAP) or (value_type == MAP_VALUETYPE_STRING and not flags & (
        MAP_WBEM_VALUEMAP | MAP_WBEM_BITMAP))
    entries: dict = {}
    for i in range(count):
        o_out, value = _MAP_ENTRY.unpack_from(info, _MAP_HEAD.size + i * _MAP_ENTRY.size)
        text = _string(info, o_out)
        label = text.strip() if text is not None else ""
        if string_valued:
            entries[_string(info, value) or ""] = label
        else:
            entries[value] = label
    return ValueMap(provider, name, flags, MAP_VALUETYPE_STRING if string_valued else MAP_VALUETYPE_ULONG, entries)


def decode_with_schema(schema: EventSchema, payload: bytes | memoryview, pointer_size: int = 8,
                       exact: bool = False) -> dict[str, Any]:
    """Decode a payload with an embedded schema. Bytes left after the last property are ignored, as
    TDH ignores them, unless ``exact`` (then ``TdhError``); an overrun is always ``TdhError``."""
    return schema.decode(payload, pointer_size, exact)[0]


# -- the per-trace registry --------------------------------------------------------------------
class SchemaRegistry:
    """The schemas and value maps one trace embeds, fed its EventMetadata records in order."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, int, int], EventSchema] = {}
        self._maps: dict[tuple[str, str], ValueMap] = {}
        self.counts: Counter = Counter()  # "event info", "map info", "skipped", "malformed", "other"
        self.errors: list[str] = []  # the first few malformed records, described

    def add(self, record: Record) -> EventSchema | ValueMap | None:
        """Learn from one record (others than EventMetadata are ignored). Never raises for bad
        bytes: a malformed record is counted (``counts["malformed"]``) and described in ``errors``."""
        if record.provider != PROVIDER:
            return None
        kind = record.opcode if not record.is_event_header else record.event_id
        try:
            return self.add_payload(kind, record.payload)
        except TdhError as exc:
            self.counts["malformed"] += 1
            if len(self.errors) < 20:
                where = f"buffer {record.buffer_index} offset {record.offset}"
                self.errors.append(f"EventMetadata {kind} at {where}: {exc}")
            return None

    def add_payload(self, kind: int, payload: bytes | memoryview) -> EventSchema | ValueMap | None:
        """Learn from an EventMetadata payload of event ``kind`` (32 or 33); ``TdhError`` if malformed."""
        data = bytes(payload)
        if kind == EVENT_INFO:
            schema = parse_event_info(data)
            self.counts["event info"] += 1
            if schema.decoding_source == SOURCE_TRACELOGGING:
                # TraceLogging events decode from their own schema item; their ids are not unique keys.
                self.counts["skipped"] += 1
                return schema
            self._events[schema.key] = schema
            if schema.decoding_source == SOURCE_WBEM:
                # Classic MOF records carry the event class GUID and an opcode, not provider and id.
                self._events[(schema.event_guid, schema.opcode, schema.version)] = schema
            return schema
        if kind == EVENT_MAP_INFO:
            vmap = parse_map_info(data)
            self.counts["map info"] += 1
            self._maps[(vmap.provider, vmap.name)] = vmap
            return vmap
        self.counts["other"] += 1
        return None

    def lookup(self, provider: str, event_id: int, version: int) -> EventSchema | None:
        return self._events.get((provider, event_id, version))

    def value_map(self, provider: str, map_name: str) -> dict | None:
        """``{value: name}`` of a value map the trace embeds (e.g. pktmon's ``DropReason``), or None."""
        vmap = self._maps.get((provider, map_name))
        return None if vmap is None else vmap.entries

    def map_info(self, provider: str, map_name: str) -> ValueMap | None:
        return self._maps.get((provider, map_name))

    def map_for(self, schema: EventSchema, field_name: str) -> ValueMap | None:
        """The value map a top-level property of ``schema`` names, if the trace embeds it."""
        for p in schema.properties:
            if p.name == field_name and p.map_name:
                return self._maps.get((schema.provider, p.map_name))
        return None

    def schemas(self) -> list[EventSchema]:
        return list(dict.fromkeys(self._events.values()))

    def maps(self) -> list[ValueMap]:
        return list(self._maps.values())

    def __len__(self) -> int:
        return len(self._events)
