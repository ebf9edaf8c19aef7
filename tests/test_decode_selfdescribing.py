"""Decode layer 2: schemas the trace carries itself (TraceLogging metadata, embedded EventMetadata).

Real samples (skipped where ../shared/etl-samples is absent) check that every self-describing event
decodes and consumes its payload exactly; synthetic blobs check each in-type and the hostile cases
(truncated or garbled schema and payload bytes must raise ``TdhError``, never anything else, and
never hang).
"""

from __future__ import annotations

import random
import struct
import uuid
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from diag.decode import eventmetadata as em
from diag.decode import tdh
from diag.decode import tracelogging as tl
from diag.decode.tdh import TdhError
from diag.read import open_trace

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "etl-samples"
PKTMON = "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"
PKTMON_SAMPLES = [
    "microsoft__demikernel__PktMon.etl",
    "NeoChenjf__Finguard__PktMon.etl",
    "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl",
    "paul90317__Gobang__PktMon.etl",
]
TL_SAMPLES = {  # file: TraceLogging events in it
    "microsoft__ebpf-for-windows__ebpforwindows.etl": 13841,
    "microsoft__perfview__SelfDescribingSingleEvent.etl": 1,
}
NET_SAMPLE = "microsoft__perfview__net.4.5.2.x64.etl"
# The PktMon packet/drop layout (wnv-etw-knowledge.md §3.2, events 160 and 170), with TDH in-types.
PACKET_LAYOUT = [
    ("PktGroupId", tdh.IN_UINT64), ("PktNumber", tdh.IN_UINT16), ("AppearanceCount", tdh.IN_UINT16),
    ("DirTag", tdh.IN_UINT16), ("PacketType", tdh.IN_UINT16), ("ComponentId", tdh.IN_UINT16),
    ("EdgeId", tdh.IN_UINT16), ("FilterId", tdh.IN_UINT16), ("DropReason", tdh.IN_UINT32),
    ("DropLocation", tdh.IN_UINT32), ("OriginalPayloadSize", tdh.IN_UINT16),
    ("LoggedPayloadSize", tdh.IN_UINT16), ("Payload", tdh.IN_BINARY),
]


def _sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"real ETL sample {name} is not available at {SAMPLES}")
    return path


def _records(path: Path) -> list:
    with open_trace(path) as trace:
        return list(trace.records())


def _registry(records) -> em.SchemaRegistry:
    """All EventMetadata first: pktmon logs each just before the first event that uses it in
    *time*, but the per-CPU buffers put many events before it in *file* order."""
    registry = em.SchemaRegistry()
    for rec in records:
        registry.add(rec)
    return registry


# -- TraceLogging, real samples --------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TL_SAMPLES))
def test_every_tracelogging_event_decodes_exactly(name):
    records = _records(_sample(name))
    decoded, providers, names = 0, set(), Counter()
    for rec in records:
        if not any(t == 11 for t, _ in rec.extended_items()):
            continue
        event_name, fields, provider_name = tl.decode_record(rec)  # exact: no byte left, no overrun
        schema = tl.schema_of(rec)
        assert schema.decode(rec.payload, rec.pointer_size)[1] == len(rec.payload)
        assert event_name and isinstance(fields, dict)
        assert list(fields) == list(schema.field_names)
        providers.add(provider_name)
        names[event_name] += 1
        decoded += 1
    assert decoded == TL_SAMPLES[name]
    assert None not in providers and "" not in providers


def test_perfview_self_describing_event_values():
    rec = next(r for r in _records(_sample("microsoft__perfview__SelfDescribingSingleEvent.etl"))
               if any(t == 11 for t, _ in r.extended_items()))
    name, fields, provider = tl.decode_record(rec)
    assert (name, provider) == ("TestEvent", "MySource")
    assert fields == {"a": {"b": "Hello", "c": "World!"}}  # a STRUCT of two UTF-16 strings


def test_ebpf_event_values():
    records = _records(_sample("microsoft__ebpf-for-windows__ebpforwindows.etl"))
    providers, guids = set(), []
    for rec in records:
        if rec.is_event_header and any(t == 11 for t, _ in rec.extended_items()):
            name, fields, provider = tl.decode_record(rec)
            providers.add(provider)
            if "*guid1" in fields:
                guids.append(fields["*guid1"])
    assert providers == {"EbpfForWindowsProvider", "NetEbpfExtProvider"}
    assert guids and all(str(uuid.UUID(g)) == g for g in guids)


# -- EventMetadata (pktmon), real samples --------------------------------------------------------
@pytest.mark.parametrize("name", PKTMON_SAMPLES)
def test_pktmon_embedded_schemas_decode_every_event_exactly(name):
    records = _records(_sample(name))
    registry = _registry(records)
    assert registry.counts["malformed"] == 0 and registry.errors == []
    assert registry.counts["event info"] >= 11 and registry.counts["map info"] >= 5
    present = Counter(r.event_id for r in records if r.provider == PKTMON)
    for event_id in present:
        assert registry.lookup(PKTMON, event_id, 0) is not None, f"no embedded schema for PktMon {event_id}"
    decoded = 0
    for rec in records:
        if rec.provider != PKTMON:
            continue
        schema = registry.lookup(rec.provider, rec.event_id, rec.version)
        fields, used = schema.decode(rec.payload, rec.pointer_size, exact=True)
        assert used == len(rec.payload)
        assert list(fields) == list(schema.field_names)
        decoded += 1
    assert decoded == sum(present.values())
    for event_id in (160, 170):
        schema = registry.lookup(PKTMON, event_id, 0)
        if event_id in present:
            assert schema.provider_name == "Microsoft-Windows-PktMon"
            assert [(p.name, p.in_type) for p in schema.properties] == PACKET_LAYOUT
            payload = schema.properties[-1]
            assert payload.length_index == 11 and schema.all_properties[11].name == "LoggedPayloadSize"
            assert schema.properties[8].map_name == "DropReason"
        else:
            assert schema is None  # pktmon embeds schemas only for the events the trace holds


def test_pktmon_schema_for_drops_and_packets():
    records = _records(_sample("NeoChenjf__Finguard__PktMon.etl"))
    registry = _registry(records)
    assert registry.lookup(PKTMON, 160, 0) is not None and registry.lookup(PKTMON, 170, 0) is not None


def test_demikernel_has_21_eventmetadata_records():
    records = _records(_sample("microsoft__demikernel__PktMon.etl"))
    registry = _registry(records)
    assert (registry.counts["event info"], registry.counts["map info"]) == (12, 9)
    assert sum(1 for r in records if r.provider == em.PROVIDER) == 21


def test_drop_reason_value_map_names_the_drops():
    records = _records(_sample("NeoChenjf__Finguard__PktMon.etl"))
    registry = _registry(records)
    reasons = Counter()
    drop = registry.lookup(PKTMON, 170, 0)
    for rec in records:
        if rec.provider == PKTMON and rec.event_id == 170:
            reasons[em.decode_with_schema(drop, rec.payload, rec.pointer_size)["DropReason"]] += 1
    assert reasons == {1204: 12, 1210: 7, 918: 6, 204: 2, 1217: 1}
    names = registry.value_map(PKTMON, "DropReason")
    assert all(names.get(code) for code in reasons)
    assert names[1204] == "INET: transport endpoint was not found"
    assert names[1210] == "INET: received RST"
    assert names[918] == "Arbitration unhandled"
    schema = registry.lookup(PKTMON, 170, 0)
    assert registry.map_for(schema, "DropReason").label(1217) == "INET: duplicate segment"
    assert registry.value_map(PKTMON, "PacketDirectionTag") == {0: "None", 1: "In", 2: "Out", 3: "Rx", 4: "Tx",
                                                                 5: "Ingress", 6: "Egress"}


def test_pktmon_rundown_layouts_match_the_knowledge_base():
    registry = _registry(_records(_sample("microsoft__demikernel__PktMon.etl")))
    U16, U32, U64, WSTR = tdh.IN_UINT16, tdh.IN_UINT32, tdh.IN_UINT64, tdh.IN_UNICODESTRING
    expected = {
        20: [("Id", U16), ("Type", U16), ("Name", WSTR), ("Description", WSTR)],
        30: [("ComponentId", U16), ("Type", U16), ("Value", U32)],
        40: [("ComponentId", U16), ("Type", U16), ("Value", tdh.IN_GUID)],
        60: [("ComponentId", U16), ("Type", U16), ("Value", U16)],
        70: [("ComponentId", U16), ("Type", U16), ("Size", U32), ("Value", tdh.IN_BINARY)],
        75: [("ComponentId", U16), ("Type", U16), ("EtherType", U16)],
        80: [("ComponentId", U16), ("DirTagIn", U16), ("PacketsIn", U64), ("BytesIn", U64), ("DirTagOut", U16),
             ("PacketsOut", U64), ("BytesOut", U64)],
        90: [("ComponentId", U16), ("EdgeName", WSTR), ("EdgeId", U16), ("DirTagIn", U16), ("PacketsIn", U64),
             ("BytesIn", U64), ("DirTagOut", U16), ("PacketsOut", U64), ("BytesOut", U64)],
    }
    for event_id, layout in expected.items():
        schema = registry.lookup(PKTMON, event_id, 0)
        assert [(p.name, p.in_type) for p in schema.properties] == layout, event_id
    # 65/66 carry the address as IPv4 (UINT32, out-type IPV4) and IPv6 (16-byte binary, out-type IPV6).
    ipv4, ipv6 = registry.lookup(PKTMON, 65, 0).properties[2], registry.lookup(PKTMON, 66, 0).properties[2]
    assert (ipv4.name, ipv4.in_type, ipv4.out_type) == ("IpAddress", tdh.IN_UINT32, em.OUT_IPV4)
    assert (ipv6.name, ipv6.in_type, ipv6.out_type, ipv6.length) == ("IpAddress", tdh.IN_BINARY, em.OUT_IPV6, 16)


def test_net_trace_embedded_manifest_schemas():
    """A relogged .NET trace: structs, arrays counted by another property, 32- and 64-bit events."""
    records = _records(_sample(NET_SAMPLE))
    registry = _registry(records)
    assert registry.counts["malformed"] == 0 and len(registry) > 40
    decoded, short = 0, Counter()
    for rec in records:
        schema = registry.lookup(rec.provider, rec.event_id, rec.version)
        if schema is None or rec.provider == em.PROVIDER:
            continue
        fields, used = schema.decode(rec.payload, rec.pointer_size)
        if used != len(rec.payload):
            short[schema.name] += 1
        decoded += 1
    assert decoded > 60000
    # The CLR manifest declares CLRStackWalk's Stack with a fixed count="2"; FrameCount frames follow.
    assert set(short) == {"CLRStack/CLRStackWalk"}
    bulk = registry.lookup("e13c0d23-ccbc-4e12-931b-d9cc2eee27e4", 15, 0)
    values = bulk.properties[2]
    assert values.is_struct and values.count_index == 0 and [m.name for m in values.members][-1] == "TypeParameters"


# -- synthetic TraceLogging ----------------------------------------------------------------------
def _tl_field(name: str, in_type: int, out: int | None = None, tag: bytes = b"", count: int | None = None,
              custom: bytes | None = None) -> bytes:
    raw = name.encode() + b"\0"
    chained = out is not None or tag
    raw += bytes([in_type | (0x80 if chained else 0)])
    if chained:
        raw += bytes([(out or 0) | (0x80 if tag else 0)]) + tag
    if count is not None:
        raw += struct.pack("<H", count)
    if custom is not None:
        raw += struct.pack("<H", len(custom)) + custom
    return raw


def _tl_meta(name: str, *fields: bytes, extension: bytes = b"\0") -> bytes:
    body = extension + name.encode() + b"\0" + b"".join(fields)
    return struct.pack("<H", len(body) + 2) + body


def _w(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


GUID = "01234567-89ab-cdef-0123-456789abcdef"


def _all_types_event() -> tuple[bytes, bytes, dict]:
    meta = _tl_meta(
        "AllTypes",
        _tl_field("wz", 1), _tl_field("az", 2), _tl_field("i8", 3), _tl_field("u8", 4), _tl_field("i16", 5),
        _tl_field("u16", 6), _tl_field("i32", 7), _tl_field("u32", 8), _tl_field("i64", 9), _tl_field("u64", 10),
        _tl_field("f32", 11), _tl_field("f64", 12), _tl_field("b32", 13), _tl_field("bin", 14),
        _tl_field("guid", 15), _tl_field("ptr", 16), _tl_field("ft", 17), _tl_field("st", 18), _tl_field("sid", 19),
        _tl_field("h32", 20), _tl_field("h64", 21), _tl_field("cw", 22), _tl_field("ca", 23),
        _tl_field("cbin", 25), _tl_field("ip4", 8, out=8), _tl_field("port", 6, out=7), _tl_field("flag", 4, out=3),
        _tl_field("ip6", 14, out=9), _tl_field("tagged", 8, out=0, tag=b"\x81\x00"),
        _tl_field("fixed", 8 | 0x20, count=3), _tl_field("var", 6 | 0x40), _tl_field("strs", 1 | 0x40),
        _tl_field("pt", 24, out=2), _tl_field("x", 8), _tl_field("y", 8),  # struct of 2 members
        _tl_field("pts", 24 | 0x40, out=2), _tl_field("x", 8), _tl_field("y", 8),  # variable array of them
        _tl_field("outer", 24, out=2), _tl_field("name", 2), _tl_field("inner", 24, out=1), _tl_field("z", 6),
        _tl_field("cust", 4 | 0x60, custom=b"\x01\x02\x03"),
        _tl_field("u8", 4),  # a repeated name
        extension=b"\x81\x80\x00",
    )
    sid = bytes([1, 2, 0, 0, 0, 0, 0, 5]) + struct.pack("<II", 32, 544)
    payload = b"".join([
        _w("wide"), b"narrow\0", struct.pack("<bBhHiIqQfd", -1, 2, -3, 4, -5, 6, -7, 8, 1.5, 2.25),
        struct.pack("<i", 1), struct.pack("<H", 3) + b"\xaa\xbb\xcc", uuid.UUID(GUID).bytes_le,
        struct.pack("<Q", 0xFFFF800012345678), struct.pack("<Q", 132404548233564008),
        struct.pack("<8H", 2024, 5, 3, 9, 13, 14, 15, 16), sid, struct.pack("<IQ", 0xDEAD, 0xBEEF),
        struct.pack("<H", 4) + "hi".encode("utf-16-le"), struct.pack("<H", 2) + b"ok",
        struct.pack("<H", 2) + b"\x01\x02", bytes([10, 0, 0, 1]), struct.pack(">H", 443), b"\x01",
        struct.pack("<H", 16) + bytes(15) + b"\x01", struct.pack("<I", 7),
        struct.pack("<3I", 1, 2, 3), struct.pack("<H3H", 3, 7, 8, 9), struct.pack("<H", 2) + _w("a") + _w("bc"),
        struct.pack("<II", 10, 20), struct.pack("<H4I", 2, 1, 2, 3, 4), b"p\0" + struct.pack("<H", 5),
        struct.pack("<H", 3) + b"\x01\x02\x03", b"\x09",
    ])
    expected = {
        "wz": "wide", "az": "narrow", "i8": -1, "u8": 2, "i16": -3, "u16": 4, "i32": -5, "u32": 6, "i64": -7, "u64": 8,
        "f32": 1.5, "f64": 2.25, "b32": True, "bin": "aabbcc", "guid": GUID, "ptr": 0xFFFF800012345678,
        "ft": 132404548233564008, "st": "2024-05-09T13:14:15.016", "sid": "S-1-5-32-544", "h32": 0xDEAD, "h64": 0xBEEF,
        "cw": "hi", "ca": "ok", "cbin": "0102", "ip4": "10.0.0.1", "port": 443, "flag": True, "ip6": "::1",
        "tagged": 7, "fixed": [1, 2, 3], "var": [7, 8, 9], "strs": ["a", "bc"], "pt": {"x": 10, "y": 20},
        "pts": [{"x": 1, "y": 2}, {"x": 3, "y": 4}], "outer": {"name": "p", "inner": {"z": 5}},
        "cust": "010203", "u8_2": 9,
    }
    return meta, payload, expected


def test_tracelogging_in_types_arrays_structs_and_tags():
    meta, payload, expected = _all_types_event()
    schema = tl.compile_schema(meta)
    assert schema.name == "AllTypes" and schema.tags == 0x01 << 21  # left-aligned 28-bit tag
    assert next(f for f in schema.fields if f.name == "tagged").tag == 0x01 << 21
    fields, used = schema.decode(payload, 8)
    assert used == len(payload)
    assert fields == expected
    assert list(fields) == list(expected)  # field order kept
    assert schema is tl.compile_schema(bytes(meta))  # compiled once, cached by bytes
    assert tl.decode(meta, memoryview(payload)) == ("AllTypes", expected)


def test_tracelogging_struct_array_with_strings():
    meta = _tl_meta("E", _tl_field("pts", 24 | 0x40, out=2), _tl_field("x", 8), _tl_field("s", 2),
                    _tl_field("after", 6))
    payload = struct.pack("<HI", 2, 1) + b"a\0" + struct.pack("<I", 2) + b"bb\0" + struct.pack("<H", 9)
    assert tl.decode(meta, payload) == ("E", {"pts": [{"x": 1, "s": "a"}, {"x": 2, "s": "bb"}], "after": 9})


def test_tracelogging_pointer_size():
    meta = _tl_meta("P", _tl_field("p", 16), _tl_field("n", 6))
    assert tl.decode(meta, struct.pack("<IH", 0x1234, 5), pointer_size=4)[1] == {"p": 0x1234, "n": 5}
    assert tl.decode(meta, struct.pack("<QH", 0x1234, 5), pointer_size=8)[1] == {"p": 0x1234, "n": 5}
    with pytest.raises(TdhError):
        tl.decode(meta, struct.pack("<IH", 0x1234, 5), pointer_size=8)


def test_provider_traits():
    blob = struct.pack("<H", 2 + 4 + 19) + b"Abc\0" + struct.pack("<HB", 19, 1) + bytes(16)
    assert tl.provider_traits(blob) == ("Abc", ((1, bytes(16)),))
    assert tl.provider_name(b"\x05\x00") is None


# -- synthetic TRACE_EVENT_INFO ------------------------------------------------------------------
def _event_info(provider: str, event_id: int, version: int, props: list[dict], top: int,
                names: dict | None = None) -> bytes:
    """A TRACE_EVENT_INFO as TdhGetEventInformation lays it out (strings after the property array)."""
    strings = bytearray()
    base = 112 + 24 * len(props)

    def s(text: str | None) -> int:
        if text is None:
            return 0
        off = base + len(strings)
        strings.extend(_w(text))
        return off

    names = names or {}
    head_offsets = [s(names.get(k)) for k in ("provider", "level", "channel", "keywords", "task", "opcode",
                                              "message", "provider_message")]
    tail = [0, 0, s(names.get("event")), 0, len(props), top, 1]
    rows = []
    for p in props:
        if p.get("struct"):
            a, b, c = p["start"], p["members"], 0
        else:
            a, b, c = p["in"], p.get("out", 0), s(p.get("map"))
        rows.append(struct.pack("<IIHHIHHI", p.get("flags", 0), s(p["name"]), a, b, c, p.get("count", 1),
                                p.get("length", 0), 0))
    head = uuid.UUID(provider).bytes_le + bytes(16) + struct.pack("<HBBBBHQ", event_id, version, 0, 4, 1, 0, 0)
    head += struct.pack("<I8I", 0, *head_offsets) + struct.pack("<7I", *tail)
    assert len(head) == 112
    return head + b"".join(rows) + bytes(strings)


PROV = "11111111-2222-3333-4444-555555555555"


def _struct_schema() -> bytes:
    return _event_info(PROV, 7, 1, [
        {"name": "Count", "in": tdh.IN_UINT32},
        {"name": "Items", "struct": True, "start": 4, "members": 3, "count": 0,
         "flags": em.PROPERTY_STRUCT | em.PROPERTY_PARAM_COUNT},
        {"name": "Owner", "in": tdh.IN_SID},
        {"name": "Tail", "in": tdh.IN_ANSISTRING, "length": 4},
        {"name": "Len", "in": tdh.IN_UINT16},
        {"name": "Data", "in": tdh.IN_BINARY, "flags": em.PROPERTY_PARAM_LENGTH, "length": 4},
        {"name": "Where", "in": tdh.IN_POINTER},
    ], top=4, names={"provider": "Test-Provider", "task": "Work", "opcode": "win:Start", "message": "Hello %1 "})


def _struct_payload(pointer_size: int) -> bytes:
    ptr = "<I" if pointer_size == 4 else "<Q"
    items = [(b"\x01\x02", 0x10), (b"", 0x20), (b"\xff" * 3, 0x30)]
    raw = struct.pack("<I", len(items))
    for data, where in items:
        raw += struct.pack("<H", len(data)) + data + struct.pack(ptr, where)
    raw += bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18) + b"ab\0\0"
    return raw


def test_event_info_structs_counts_lengths_and_pointer_size():
    schema = em.parse_event_info(_struct_schema())
    assert schema.key == (PROV, 7, 1) and schema.provider_name == "Test-Provider"
    assert schema.name == "Work/Start" and schema.message == "Hello %1"
    assert schema.field_names == ("Count", "Items", "Owner", "Tail")
    items = schema.properties[1]
    assert items.is_struct and items.count_index == 0 and [m.name for m in items.members] == ["Len", "Data", "Where"]
    assert items.members[1].length_index == 4
    expected = {"Count": 3, "Items": [{"Len": 2, "Data": "0102", "Where": 0x10}, {"Len": 0, "Data": "", "Where": 0x20},
                                      {"Len": 3, "Data": "ffffff", "Where": 0x30}],
                "Owner": "S-1-5-18", "Tail": "ab"}
    for pointer_size in (4, 8):
        payload = _struct_payload(pointer_size)
        fields, used = schema.decode(payload, pointer_size, exact=True)
        assert (fields, used) == (expected, len(payload))
    assert em.parse_event_info(_struct_schema()) is schema  # parsed once, cached by bytes


def test_registry_and_value_maps():
    registry = em.SchemaRegistry()
    info = _struct_schema()
    rec = SimpleNamespace(provider=em.PROVIDER, is_event_header=False, opcode=32, event_id=32, payload=memoryview(info),
                          buffer_index=0, offset=0)
    assert registry.add(rec) is registry.lookup(PROV, 7, 1)
    vmap = _map_info(PROV, "Flags", em.MAP_MANIFEST_BITMAP, [(1, "Read "), (2, "Write "), (4, "Exec ")])
    registry.add(SimpleNamespace(provider=em.PROVIDER, is_event_header=False, opcode=33, event_id=33,
                                 payload=memoryview(vmap), buffer_index=0, offset=0))
    assert registry.value_map(PROV, "Flags") == {1: "Read", 2: "Write", 4: "Exec"}
    assert registry.map_info(PROV, "Flags").label(5) == "Read|Exec"
    assert registry.value_map(PROV, "Nope") is None and registry.lookup(PROV, 8, 1) is None
    # Garbage is counted, never raised.
    bad = SimpleNamespace(provider=em.PROVIDER, is_event_header=False, opcode=32, event_id=32,
                          payload=memoryview(b"\x01" * 50), buffer_index=3, offset=96)
    assert registry.add(bad) is None and registry.counts["malformed"] == 1 and "buffer 3" in registry.errors[0]


def _map_info(provider: str, name: str, flags: int, entries: list[tuple[int, str]]) -> bytes:
    strings = bytearray()
    base = 16 + 8 * len(entries)

    def s(text: str) -> int:
        off = base + len(strings)
        strings.extend(_w(text))
        return off
    name_off = s(name)
    rows = b"".join(struct.pack("<II", s(label), value) for value, label in entries)
    return uuid.UUID(provider).bytes_le + struct.pack("<IIII", name_off, flags, len(entries), 0) + rows + bytes(strings)


# -- hostile input -------------------------------------------------------------------------------
_ALLOWED = (TdhError,)


def _tl_corpus() -> list[tuple[bytes, bytes]]:
    pairs = [(_all_types_event()[0], _all_types_event()[1])]
    path = SAMPLES / "microsoft__ebpf-for-windows__ebpforwindows.etl"
    if path.is_file():
        seen = set()
        for rec in _records(path):
            items = dict(rec.extended_items())
            if 11 in items and bytes(items[11]) not in seen:
                seen.add(bytes(items[11]))
                pairs.append((bytes(items[11]), bytes(rec.payload)))
    return pairs


def test_truncated_tracelogging_schema_and_payload_raise_tdh_error():
    for meta, payload in _tl_corpus():
        for cut in range(len(meta)):
            try:
                tl.compile_schema(meta[:cut])
            except _ALLOWED:
                pass
        schema = tl.compile_schema(meta)
        for cut in range(len(payload)):  # every proper prefix: overrun, or bytes missing at the end
            with pytest.raises(TdhError):
                schema.decode(payload[:cut], 8)
        with pytest.raises(TdhError):
            schema.decode(payload + b"\0", 8)  # exact by default: a byte too many


def test_garbled_tracelogging_bytes_raise_only_tdh_error():
    """Behaviour only; how fast garbled bytes are refused is measured in benchmarks/bench_damage.py."""
    rng = random.Random(20240602)
    corpus = _tl_corpus()
    for _ in range(3000):
        meta, payload = corpus[rng.randrange(len(corpus))]
        meta, payload = bytearray(meta), bytearray(payload)
        target = meta if rng.random() < 0.6 else payload
        for _ in range(rng.randint(1, 4)):
            if target:
                target[rng.randrange(len(target))] = rng.randrange(256)
        try:
            tl.decode(bytes(meta), bytes(payload), rng.choice((4, 8)))
        except _ALLOWED:
            pass


def _pktmon_infos() -> list[tuple[bytes, list[bytes]]]:
    """(event-info payload, payloads of events it describes) from a real trace, or synthetic."""
    out = [(_struct_schema(), [_struct_payload(8)])]
    path = SAMPLES / "microsoft__demikernel__PktMon.etl"
    if path.is_file():
        records = _records(path)
        payloads: dict[int, list[bytes]] = {}
        for rec in records:
            if rec.provider == PKTMON and len(payloads.setdefault(rec.event_id, [])) < 3:
                payloads[rec.event_id].append(bytes(rec.payload))
        for rec in records:
            if rec.provider == em.PROVIDER and rec.opcode == 32:
                schema = em.parse_event_info(bytes(rec.payload))
                out.append((bytes(rec.payload), payloads.get(schema.event_id, [])))
    return out


def test_truncated_and_garbled_event_metadata_raise_only_tdh_error():
    rng = random.Random(7)
    corpus = _pktmon_infos()
    for info, payloads in corpus:
        for cut in range(0, len(info), 7):
            try:
                em.parse_event_info(info[:cut])
            except _ALLOWED:
                pass
        schema = em.parse_event_info(info)
        # A final string may end unterminated (pktmon event 73 does): then a cut inside it is valid.
        open_tail = schema.properties[-1].in_type in (tdh.IN_UNICODESTRING, tdh.IN_ANSISTRING)
        for payload in payloads:
            for cut in range(len(payload)):
                try:
                    schema.decode(payload[:cut], 8, exact=True)
                except _ALLOWED:
                    pass
                else:
                    assert open_tail, f"a {cut}-byte prefix of a {len(payload)}-byte payload decoded exactly"
    for _ in range(1500):
        info, payloads = corpus[rng.randrange(len(corpus))]
        garbled = bytearray(info)
        for _ in range(rng.randint(1, 6)):
            garbled[rng.randrange(len(garbled))] = rng.randrange(256)
        try:
            schema = em.parse_event_info(bytes(garbled))
            for payload in payloads:
                schema.decode(payload, rng.choice((4, 8)))
        except _ALLOWED:
            pass
        for payload in payloads[:1]:
            noisy = bytearray(payload)
            if noisy:
                noisy[rng.randrange(len(noisy))] = rng.randrange(256)
            try:
                em.parse_event_info(info).decode(bytes(noisy), 8)
            except _ALLOWED:
                pass
    for cut in range(0, 60):
        vmap = _map_info(PROV, "M", 1, [(1, "a"), (2, "b")])
        try:
            em.parse_map_info(vmap[:cut])
        except _ALLOWED:
            pass


def test_huge_counts_are_refused_before_any_element_is_read():
    # struct[65535] of struct[65535] of UINT8[0]: zero bytes per element, four billion elements. (Were they
    # walked, this test would not end: how fast the refusal is, is benchmarks/bench_damage.py's business.)
    meta = _tl_meta("Bomb", _tl_field("outer", 24 | 0x20, out=1, count=65535),
                    _tl_field("inner", 24 | 0x20, out=1, count=65535), _tl_field("x", 4 | 0x20, count=0))
    with pytest.raises(TdhError):
        tl.decode(meta, b"")
    # A variable count larger than the payload can hold.
    with pytest.raises(TdhError):
        tl.decode(_tl_meta("Big", _tl_field("v", 8 | 0x40)), b"\xff\xff" + bytes(8))
    # An event info claiming more properties than it has bytes for.
    info = bytearray(_struct_schema())
    struct.pack_into("<I", info, 100, 0xFFFFFFFF)
    with pytest.raises(TdhError):
        em.parse_event_info(bytes(info))


def test_bad_metadata_shapes():
    with pytest.raises(TdhError):  # a struct declaring more members than follow
        tl.compile_schema(_tl_meta("S", _tl_field("s", 24, out=3), _tl_field("a", 8)))
    with pytest.raises(TdhError):  # unknown in-type
        tl.compile_schema(_tl_meta("S", _tl_field("a", 30)))
    with pytest.raises(TdhError):  # unterminated 8-bit string in the payload
        tl.decode(_tl_meta("S", _tl_field("a", 2)), b"abc")
    with pytest.raises(TdhError):  # size field larger than the blob
        tl.compile_schema(b"\xff\x00\x00E\x00")
    # A struct whose members point back at itself.
    info = _event_info(PROV, 1, 0, [{"name": "S", "struct": True, "start": 0, "members": 1,
                                     "flags": em.PROPERTY_STRUCT}], top=1)
    with pytest.raises(TdhError):
        em.parse_event_info(info)
    # A count taken from a property that does not exist.
    info = _event_info(PROV, 1, 0, [{"name": "A", "in": tdh.IN_UINT8, "flags": em.PROPERTY_PARAM_COUNT,
                                     "count": 9}], top=1)
    with pytest.raises(TdhError):
        em.parse_event_info(info)


def test_cursor_overruns_raise_tdh_error():
    cur = tdh.Cursor(b"\x01\x02\x03")
    assert cur.u16() == 0x0201
    with pytest.raises(TdhError):
        cur.u32()
    with pytest.raises(TdhError):
        tdh.Cursor(b"a\x00b").wstr()
    assert tdh.Cursor(uuid.UUID(GUID).bytes_le).value(tdh.IN_GUID) == GUID
    assert issubclass(TdhError, ValueError)


def test_events_read_before_their_schema_still_become_facts(tmp_path):
    # Per-processor buffers: the schema of HNS EndpointCreate is written on processor 3 before its
    # first event there, but processor 0's buffer, holding three failures logged later, comes first
    # in the file. The failures are counted and must reach the facts.
    import uuid

    from factscan import scan_facts

    from diag.read import open_trace
    from diag.synth import hns
    from diag.synth.trace import TraceBuilder, TraceProfile

    builder = TraceBuilder(TraceProfile(compressed=True, cpu_count=4))
    builder.describe(hns.LAYOUTS.values())
    t, network = builder.profile.start_filetime + 10_000_000, uuid.UUID(int=7)
    builder.add(t, hns.PROVIDER, hns.EVENT_ENDPOINT_CREATE, hns.encode_endpoint_create(
        endpoint=uuid.UUID(int=1), network=network, address="10.0.0.5"), cpu=3)
    failures = 3
    for k in range(failures):
        builder.add(t + (k + 1) * 10_000_000, hns.PROVIDER, hns.EVENT_ENDPOINT_CREATE, hns.encode_endpoint_create(
            endpoint=uuid.UUID(int=2 + k), network=network, address="10.0.0.6", hresult=hns.E_NOT_FOUND), cpu=0)
    cut_short = hns.encode_endpoint_create(endpoint=uuid.UUID(int=9), network=network, address="10.0.0.7")[:-6]
    builder.add(t + 9 * 10_000_000, hns.PROVIDER, hns.EVENT_ENDPOINT_CREATE, cut_short, cpu=0)
    path = tmp_path / "early.etl"
    builder.write(path)
    with open_trace(path) as trace:  # the precondition, read independently of the decoder
        order = [r.provider for r in trace.records() if r.provider in (str(hns.PROVIDER), em.PROVIDER)]
    assert order.index(str(hns.PROVIDER)) < order.index(em.PROVIDER)
    facts = scan_facts(path).facts
    (failed,) = [f for f in facts if f.kind == "provider_event" and f.event_name == "EndpointCreate"]
    assert (failed.status, failed.count) == (hns.E_NOT_FOUND, failures)
    (coverage,) = [f for f in facts if f.kind == "provider" and f.guid == str(hns.PROVIDER)]
    # the event cut short, also read before the schema, is counted as failed, not as decoded
    assert (coverage.decoded, coverage.not_decoded, coverage.failed) == (failures + 1, 0, 1)
