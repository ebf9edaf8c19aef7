"""decode layer 3, the etl-parser catalogue: against dissect.etl on real traces, and its edges.

The reference is dissect.etl: its reader gives each record's payload, id and version, and its
bundled XML manifest, compiled by its own generator into dissect.cstruct structures, decodes the
payload. dissect's end-to-end ``rec.event.event_values()`` yields no payload fields at all for these
two providers, for four reasons of its own, which the reference works around (and only those):
- ``EventHeader.provider_id`` uses ``UUID(bytes=)`` instead of ``bytes_le``, so no manifest is found;
- ``Event`` looks events up by (opcode, version) instead of (event id, version);
- ``event_values()`` reads ``_values``, which dissect.cstruct 4 renamed ``__values__``;
- (not for these two traces) the payload of an event with extended data items starts with them,
  and the generated ``EtwPointer.as_32bit`` lacks ``@classmethod``;
- neither manifest compiles: template names contain ``.``/``(``/``)`` (SyntaxError) and its field
  map has no ``win:Binary`` (KeyError). The reference renames templates to identifiers, and drops
  the templates that dissect's generator cannot read faithfully (a type it does not map, or a
  ``length``/``count`` attribute, which it ignores): those events have no reference decode.
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from diag.decode import catalogue
from diag.read import open_trace

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "etl-samples"
KERNEL_NETWORK = "7dd42a49-5329-4832-8dfd-43d979153a88"
POWERSHELL = "a0c1853b-5c40-4b15-8766-3cf1c58f985a"
TCPIP = "2f07e2ee-15db-40f1-90ef-9d7ba282188a"
LSASRV = "199fe037-2b82-40a9-82ac-e1d46c792b99"
MICROSOFT_IE = "9e3b3947-ca5d-4614-91a2-7b624e0e7244"
NS = "{http://schemas.microsoft.com/win/2004/08/events}"


def _sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"real ETL sample {name} is not available at {SAMPLES}")
    return path


@dataclass
class FakeRecord:
    """What ``catalogue.decode`` reads from a ``diag.read.Record``."""

    provider: str
    event_id: int
    version: int
    payload: bytes
    pointer_size: int = 8
    is_event_header: bool = True


def utf16z(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


# --------------------------------------------------------------------------------------------------
# the reference: dissect.etl's reader and its own manifest compiler


@dataclass
class Reference:
    fields: dict | None  # None: dissect has no usable template for this event
    bytes_left: int = 0
    error: str | None = None


class DissectManifest:
    """One provider's bundled dissect.etl manifest, compiled by dissect's own generator."""

    def __init__(self, guid: str) -> None:
        from dissect.etl import manifest

        self.guid = guid
        xml = (Path(manifest.__file__).parent / "manifests" / "xml" / f"{{{guid}}}.xml").read_text()
        root = ElementTree.fromstring(xml)
        known = set(manifest.FIELD_MAP) - {"Struct"}
        self.types: dict[str, dict[str, str]] = {}  # template -> field -> inType
        unusable = set()
        for template in root.iter(NS + "template"):
            fields = [d for d in template if d.tag == NS + "data"]
            for d in fields:
                in_type = d.get("inType", "").split(":")[-1]
                if not (in_type.lower() in manifest.c_parser.typedefs or in_type in known) or \
                        d.get("length") or d.get("count"):
                    unusable.add(template.get("tid"))
            self.types[_ident(template.get("tid"))] = {
                d.get("name"): d.get("inType", "").split(":")[-1] for d in fields}
        for parent in root.iter():
            for child in list(parent):
                if child.tag == NS + "template" and child.get("tid") in unusable:
                    parent.remove(child)
        self.without_reference = set()
        for event in root.iter(NS + "event"):
            tid = event.get("template")
            if tid in unusable:
                del event.attrib["template"]
                self.without_reference.add((int(event.get("value"), 0), int(event.get("version", "0"), 0)))
            elif tid:
                event.set("template", _ident(tid))
        for template in root.iter(NS + "template"):
            template.set("tid", _ident(template.get("tid")))
        self.module = manifest.compile_xml(uuid.UUID(guid), ElementTree.tostring(root, encoding="unicode"))

    def decode(self, event_id: int, version: int, payload: bytes, is_64bit: bool) -> Reference:
        event = self.module.EVENTS.get((event_id, version))
        if event is None:
            return Reference(None)
        if is_64bit:
            self.module.c_parser.EtwPointer.as_64bit()
        else:
            self.module.c_parser.EtwPointer.as_32bit(self.module.c_parser.EtwPointer)
        stream = io.BytesIO(payload)
        try:
            values = event.template(stream).__values__
        except Exception as exc:  # a payload dissect cannot read with its manifest
            return Reference(None, error=f"{type(exc).__name__}: {exc}")
        types = self.types.get(event.template.__name__, {})
        fields = {name: _normalise(value, types.get(name)) for name, value in values.items()}
        return Reference(fields, len(payload) - stream.tell())


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _normalise(value, in_type: str | None):
    """dissect.cstruct values in the catalogue's JSON-friendly forms."""
    if in_type == "GUID":
        return str(uuid.UUID(bytes_le=bytes(value)))
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, str):
        return value
    return int(value) if isinstance(value, int) else value


def dissect_records(path: Path, provider: str):
    """(event id, version, payload, is_64bit) of each of the provider's records, per dissect.etl."""
    from dissect.etl.etl import ETL
    from dissect.etl.headers.event import EventHeader

    out = []
    with open(path, "rb") as fh:
        for rec in ETL(fh):
            h = rec.header
            if not isinstance(h, EventHeader):
                continue
            if str(uuid.UUID(bytes_le=h.header.ProviderId)) != provider:
                continue
            d = h.descriptor
            out.append((d.id, d.version, _skip_extended_items(bytes(h.payload), h.header.Flags), bool(h.is_64bit)))
    return out


def _skip_extended_items(payload: bytes, flags: int) -> bytes:
    """dissect.etl's payload of an event with extended data items starts with those items."""
    pos = 0
    while flags & 0x0001 and pos + 8 <= len(payload):
        size, _type, linkage = struct.unpack_from("<HHH", payload, pos)
        if size < 8:
            break
        pos += size
        if not linkage & 1:
            break
    return payload[pos:]


@dataclass
class Comparison:
    records: int = 0
    reference_decodes: int = 0  # dissect decodes (any bytes left)
    reference_exact: int = 0  # ... and consumes the payload exactly
    strict_decoded: int = 0  # the catalogue, as shipped
    strict_undecodable: int = 0
    lenient_decoded: int = 0  # the catalogue with allow_trailing=True
    fields_compared: int = 0
    fields_equal: int = 0
    mismatches: list | None = None

    def line(self, name: str) -> str:
        return (f"{name}: {self.records} records; dissect decodes {self.reference_decodes} "
                f"({self.reference_exact} exactly); catalogue decodes {self.strict_decoded}, "
                f"undecodable {self.strict_undecodable} (lenient: {self.lenient_decoded}); "
                f"fields equal {self.fields_equal}/{self.fields_compared}")


def compare(path: Path, provider: str) -> Comparison:
    reference = DissectManifest(provider)
    theirs = dissect_records(path, provider)
    with open_trace(path) as trace:
        ours = [r for r in trace.records() if r.provider == provider]
    assert len(ours) == len(theirs), "the two readers disagree on the provider's records"

    strict = catalogue.Catalogue()
    lenient = catalogue.Catalogue(allow_trailing=True)
    cmp = Comparison(records=len(ours), mismatches=[])
    for rec, (event_id, version, payload, is_64bit) in zip(ours, theirs):
        assert (rec.event_id, rec.version, bytes(rec.payload)) == (event_id, version, payload)
        ref = reference.decode(event_id, version, payload, is_64bit)
        got = strict.decode(rec)
        loose = lenient.try_decode(rec)
        if isinstance(loose, catalogue.CatalogueResult):
            cmp.lenient_decoded += 1
            json.dumps(loose.fields)  # JSON-friendly values throughout
        if got is None:
            cmp.strict_undecodable += 1
        else:
            cmp.strict_decoded += 1
            assert got.bytes_left == 0
        if ref.fields is None:
            continue
        cmp.reference_decodes += 1
        cmp.reference_exact += ref.bytes_left == 0
        if not isinstance(loose, catalogue.CatalogueResult):
            cmp.mismatches.append((event_id, version, "catalogue cannot decode", loose.reason))
            continue
        if list(loose.fields) != list(ref.fields) or loose.bytes_left != ref.bytes_left:
            cmp.mismatches.append((event_id, version, "layout differs", list(loose.fields), list(ref.fields),
                                   loose.bytes_left, ref.bytes_left))
        for name, value in ref.fields.items():
            cmp.fields_compared += 1
            if loose.fields.get(name, object()) == value:
                cmp.fields_equal += 1
            elif len(cmp.mismatches) < 20:
                cmp.mismatches.append((event_id, version, name, loose.fields.get(name), value))
        # The strict catalogue decodes exactly those events dissect's manifest consumes exactly.
        assert (got is not None) == (ref.bytes_left == 0), (event_id, version, ref.bytes_left)
    # decodable / undecodable per provider, as the catalogue counts them
    stats = strict.stats
    assert stats.by_provider(provider) == (cmp.strict_decoded, cmp.strict_undecodable)
    return cmp


# --------------------------------------------------------------------------------------------------
# real traces


@pytest.fixture(scope="module")
def dissect_available():
    pytest.importorskip("dissect.etl.etl", reason="dissect.etl is the independent reference (test extra)")


def test_kernel_network_against_dissect(dissect_available):
    path = _sample("microsoft__Tx__KernelNetwork.etl")
    cmp = compare(path, KERNEL_NETWORK)
    print(cmp.line("Microsoft-Windows-Kernel-Network"))
    assert cmp.records > 0
    # Every event dissect decodes, the catalogue's layout decodes to the same fields and values.
    assert not cmp.mismatches, cmp.mismatches[:5]
    assert cmp.fields_equal == cmp.fields_compared > 0
    # Both layouts leave payload bytes on every event (connid is pointer-sized on this producer;
    # the IPv6 events' addresses are missing from etl-parser's layout and unsized in dissect's),
    # so the strict catalogue decodes what dissect decodes exactly: nothing here, and says so.
    assert cmp.strict_decoded == cmp.reference_exact
    assert cmp.strict_decoded + cmp.strict_undecodable == cmp.records


def test_powershell_against_dissect(dissect_available):
    path = _sample("microsoft__krabsetw__powershell.etl")
    cmp = compare(path, POWERSHELL)
    print(cmp.line("Microsoft-Windows-PowerShell"))
    assert cmp.records > 0
    assert not cmp.mismatches, cmp.mismatches[:5]
    assert cmp.fields_equal == cmp.fields_compared > 0
    assert cmp.strict_decoded == cmp.reference_exact == cmp.reference_decodes
    assert cmp.strict_decoded + cmp.strict_undecodable == cmp.records


def test_ipv6_events_with_dropped_fields_are_refused():
    """etl-parser drops Kernel-Network's length-less win:Binary address fields: refuse, don't shift."""
    path = _sample("microsoft__Tx__KernelNetwork.etl")
    cat = catalogue.Catalogue()
    seen = 0
    with open_trace(path) as trace:
        for rec in trace.records():
            if rec.provider == KERNEL_NETWORK and rec.event_id in (26, 27, 29, 59):
                seen += 1
                miss = cat.try_decode(rec)
                assert isinstance(miss, catalogue.Undecodable)
                assert miss.kind == catalogue.TRAILING
    assert seen


# --------------------------------------------------------------------------------------------------
# the index and loading


def test_index_loads_one_provider_at_a_time():
    """Behaviour only; the index's build time is measured in benchmarks/bench_damage.py."""
    had_package = "etl.parsers.etw" in sys.modules
    cat = catalogue.Catalogue()
    index = cat.index()
    assert len(index) > 700
    assert index[KERNEL_NETWORK] == "Microsoft_Windows_Kernel_Network"
    assert cat.provider_name(POWERSHELL) == "Microsoft-Windows-PowerShell"
    assert all(guid == guid.lower() for guid in index)

    layout = cat.lookup(KERNEL_NETWORK, 11, 0)
    assert layout is not None and layout.class_name == "Microsoft_Windows_Kernel_Network_11_0"
    assert cat.lookup(KERNEL_NETWORK, 11, 0) is layout  # cached per key
    if not had_package:  # the 800-module package __init__ never ran
        assert "etl.parsers.etw" not in sys.modules


def test_module_level_api():
    assert catalogue.lookup(POWERSHELL, 7937, 1) is not None
    assert catalogue.lookup(POWERSHELL, 7937, 99) is None
    assert catalogue.provider_name(POWERSHELL) == "Microsoft-Windows-PowerShell"
    rec = FakeRecord(POWERSHELL, 7937, 1, utf16z("ctx") + utf16z("") + utf16z("payload"))
    result = catalogue.decode(rec)
    assert result is not None
    assert result.fields == {"ContextInfo": "ctx", "UserData": "", "Payload": "payload"}
    assert result.provider_name == "Microsoft-Windows-PowerShell" and result.bytes_left == 0


# --------------------------------------------------------------------------------------------------
# what is not decoded, and why


def test_unknown_provider_is_none_and_counted():
    cat = catalogue.Catalogue()
    rec = FakeRecord("01234567-89ab-cdef-0123-456789abcdef", 1, 0, b"\x01\x00\x00\x00")
    assert cat.decode(rec) is None
    assert cat.try_decode(rec).kind == catalogue.NO_PROVIDER
    assert cat.stats.undecodable[(rec.provider, catalogue.NO_PROVIDER)] == 1
    assert cat.stats.by_provider(rec.provider) == (0, 1)


def test_classic_records_are_not_looked_up_by_opcode():
    cat = catalogue.Catalogue()
    rec = FakeRecord(KERNEL_NETWORK, 11, 0, bytes(28), is_event_header=False)
    assert cat.try_decode(rec).kind == catalogue.NOT_MANIFEST
    assert cat.decode(rec) is None


def test_real_record_of_a_provider_without_module_is_none():
    path = _sample("microsoft__krabsetw__powershell.etl")
    cat = catalogue.Catalogue()
    with open_trace(path) as trace:
        others = [r for r in trace.records() if r.provider not in cat.index()]
    assert others  # the trace header records (EventTraceGuid)
    assert all(cat.decode(r) is None for r in others)
    assert sum(n for (_p, kind), n in cat.stats.undecodable.items() if kind == catalogue.NO_PROVIDER) == len(others)


def test_truncated_payloads_are_none_with_a_reason():
    cat = catalogue.Catalogue()
    full = utf16z("ctx") + utf16z("user") + utf16z("payload")
    for cut in (0, 1, 7, len(full) - 1):
        miss = cat.try_decode(FakeRecord(POWERSHELL, 7937, 1, full[:cut]))
        assert isinstance(miss, catalogue.Undecodable), cut
        assert miss.kind == catalogue.TRUNCATED and miss.reason.startswith(catalogue.TRUNCATED)
    fixed = bytes(range(32))
    for cut in (0, 27):
        miss = cat.try_decode(FakeRecord(KERNEL_NETWORK, 11, 0, fixed[:cut]))
        assert miss.kind == catalogue.TRUNCATED, cut
    assert cat.decode(FakeRecord(KERNEL_NETWORK, 11, 0, fixed[:5])) is None
    assert cat.stats.undecodable[(KERNEL_NETWORK, catalogue.TRUNCATED)] == 1


def test_real_record_truncated():
    path = _sample("microsoft__krabsetw__powershell.etl")
    with open_trace(path) as trace:
        rec = next(r for r in trace.records() if r.provider == POWERSHELL and r.event_id == 7937)
    cat = catalogue.Catalogue()
    assert cat.decode(rec) is not None
    short = FakeRecord(rec.provider, rec.event_id, rec.version, bytes(rec.payload)[:-3], rec.pointer_size)
    assert cat.decode(short) is None
    assert cat.stats.samples and catalogue.TRUNCATED in cat.stats.samples[-1]


def test_no_lower_version_fallback():
    cat = catalogue.Catalogue()
    assert cat.versions(POWERSHELL, 7937) == [1]
    miss = cat.try_decode(FakeRecord(POWERSHELL, 7937, 2, utf16z("a") + utf16z("b") + utf16z("c")))
    assert miss.kind == catalogue.NO_VERSION and "v1" in miss.detail
    assert cat.try_decode(FakeRecord(POWERSHELL, 65000, 0, b"")).kind == catalogue.NO_EVENT


def test_trailing_bytes_refused_unless_allowed():
    payload = bytes(range(32))  # Kernel-Network 11 declares 28 bytes
    assert catalogue.Catalogue().try_decode(FakeRecord(KERNEL_NETWORK, 11, 0, payload)).kind == catalogue.TRAILING
    result = catalogue.Catalogue(allow_trailing=True).try_decode(FakeRecord(KERNEL_NETWORK, 11, 0, payload))
    assert result.bytes_left == 4 and result.fields["PID"] == 0x03020100 and result.fields["connid"] == 0x1B1A1918


def test_32bit_producers_and_pointer_sized_fields():
    """etl-parser types win:Pointer as Int64ul; a 32-bit producer writes 4 bytes for it."""
    from construct import Int32ul, Int64ul, Struct
    from etl.utils import WString

    cat = catalogue.Catalogue()
    head, tail = (5).to_bytes(4, "little"), (2).to_bytes(4, "little") + (4).to_bytes(4, "little")
    # TCPIP 1001: Status, Endpoint (a pointer), AddressFamily, Pid
    wide = cat.try_decode(FakeRecord(TCPIP, 1001, 0, head + (0xFFFF8000_12345678).to_bytes(8, "little") + tail))
    assert wide.fields["Endpoint"] == 0xFFFF8000_12345678
    narrow = cat.try_decode(FakeRecord(TCPIP, 1001, 0, head + (0x8123_4567).to_bytes(4, "little") + tail,
                                       pointer_size=4))
    assert isinstance(narrow, catalogue.CatalogueResult), narrow
    assert narrow.fields == {"Status": 5, "Endpoint": 0x8123_4567, "AddressFamily": 2, "Pid": 4}
    # A layout without Int64ul fields does not depend on the pointer size.
    assert cat.try_decode(FakeRecord(KERNEL_NETWORK, 11, 0, bytes(28), pointer_size=4)).fields["PID"] == 0

    class Mixed:  # one pointer and one true UInt64: neither reading fits a 32-bit producer's 16 bytes
        pattern = Struct("Ptr" / Int64ul, "Count" / Int64ul, "N" / Int32ul)

    class Stringy:  # a string after an Int64ul could absorb a wrong reading: refused outright
        pattern = Struct("Ptr" / Int64ul, "Name" / WString)

    types = catalogue._types()
    mixed = catalogue.Layout("p", None, 3, 0, Mixed, *types)
    assert cat.decode_payload(mixed, bytes(16), pointer_size=4).kind == catalogue.POINTER_32
    assert cat.decode_payload(mixed, bytes(20), pointer_size=8).fields["N"] == 0
    stringy = catalogue.Layout("p", None, 4, 0, Stringy, *types)
    miss = cat.decode_payload(stringy, bytes(4) + utf16z("ab"), pointer_size=4)
    assert miss.kind == catalogue.POINTER_32 and "variable-size" in miss.detail


def test_mangled_length_field_is_resolved():
    """etl-parser's ``Bytes(lambda this: this.__binLength)`` is name-mangled inside its class body."""
    cat = catalogue.Catalogue()
    payload = utf16z("Kerberos") + (3).to_bytes(4, "little") + b"\xde\xad\xbe"
    result = cat.try_decode(FakeRecord(LSASRV, 5000, 0, payload))
    assert isinstance(result, catalogue.CatalogueResult), result
    assert result.fields == {"Package": "Kerberos", "__binLength": 3, "Exception": "deadbe"}
    miss = cat.try_decode(FakeRecord(LSASRV, 5000, 0, payload[:-1]))
    assert miss.kind == catalogue.TRUNCATED


def test_double_is_little_endian():
    """construct's ``Double`` is big-endian; ETW payloads are little-endian."""
    cat = catalogue.Catalogue()
    result = cat.try_decode(FakeRecord(MICROSOFT_IE, 354, 0, struct.pack("<Id", 7, 42.5)))
    assert result.fields == {"MediaElementId": 7, "PositionInPercentage": 42.5}


def test_guid_sid_and_systemtime_values():
    from construct import Int32ul, Struct
    from etl.dtyp import Sid
    from etl.utils import CString, Guid, SystemTime

    class Fake:  # an etl-parser-style declaration
        pattern = Struct("Id" / Guid, "User" / Sid, "When" / SystemTime, "Name" / CString, "N" / Int32ul)

    cat = catalogue.Catalogue()
    layout = catalogue.Layout("p", None, 1, 0, Fake, *catalogue._types())
    guid = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")
    sid = bytes([1, 2, 0, 0, 0, 0, 0, 5]) + (32).to_bytes(4, "little") + (544).to_bytes(4, "little")
    when = b"".join(v.to_bytes(2, "little") for v in (2024, 5, 3, 17, 8, 9, 10, 11))
    payload = guid.bytes_le + sid + when + b"abc\x00" + (9).to_bytes(4, "little")
    result = cat.decode_payload(layout, payload)
    assert result.fields == {"Id": str(guid), "User": "S-1-5-32-544", "When": "2024-05-17T08:09:10.011",
                             "Name": "abc", "N": 9}
    bad_sid = payload[:16] + b"\x02" + payload[17:]
    assert cat.decode_payload(layout, bad_sid).kind == catalogue.BAD_VALUE


def test_construct_fallback_never_raises():
    """A layout the translator does not know is parsed by construct; its errors become reasons."""
    from construct import Array, Int16ul, Int32ul, Struct, this

    class Fake:
        pattern = Struct("Count" / Int16ul, "Items" / Array(this.Count, Int32ul))

    cat = catalogue.Catalogue()
    layout = catalogue.Layout("p", None, 2, 0, Fake, *catalogue._types())
    assert layout.steps is None
    ok = cat.decode_payload(layout, b"\x02\x00" + bytes(range(8)))
    assert ok.fields == {"Count": 2, "Items": [0x03020100, 0x07060504]}
    assert cat.decode_payload(layout, b"\x02\x00\x01").kind == catalogue.TRUNCATED
    assert cat.decode_payload(layout, b"\x02\x00" + bytes(10)).kind == catalogue.TRAILING
    # Untranslated layouts may hold pointer-sized fields: refused for 32-bit producers.
    assert cat.decode_payload(layout, b"\x02\x00" + bytes(8), pointer_size=4).kind == catalogue.POINTER_32


def test_version_survey_argues_against_fallback():
    """The measurement behind the exact-version policy (loads every module: a few seconds)."""
    survey = catalogue.Catalogue().version_prefix_survey()
    print("adjacent version pairs:", dict(survey))
    pairs = survey["identical"] + survey["appended"] + survey["changed"]
    assert pairs > survey["events"] > 0
    assert survey["changed"] > 0.2 * pairs  # a lower version is often not a prefix of the next one


def test_a_last_string_that_runs_to_the_payload_end_without_its_nul_is_read():
    # ETW writes an event's final string field without its NUL at times (HttpService 32 "Url" in a real trace);
    # only the last field may end so: a string with fields after it still needs its terminator
    from construct import Int64ul, Struct
    from etl.utils import WString

    class LastString:  # the shape of HttpService 32: UrlGroupId, Url
        pattern = Struct("UrlGroupId" / Int64ul, "Url" / WString)

    class StringThenNumber:
        pattern = Struct("Url" / WString, "UrlGroupId" / Int64ul)

    cat = catalogue.Catalogue()
    types = catalogue._types()
    url = "http://+:80/".encode("utf-16-le")
    result = cat.decode_payload(catalogue.Layout("h", None, 32, 0, LastString, *types), (9).to_bytes(8, "little") + url)
    assert isinstance(result, catalogue.CatalogueResult), result
    assert result.fields == {"UrlGroupId": 9, "Url": "http://+:80/"}
    inner = cat.decode_payload(catalogue.Layout("h", None, 33, 0, StringThenNumber, *types), url + bytes(8))
    assert not isinstance(inner, catalogue.CatalogueResult)
