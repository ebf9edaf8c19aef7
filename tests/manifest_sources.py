"""Test-side readers of the public event layouts in ../shared/research/manifests (nothing shared with diag/).

* jdu2600 TSVs: one file per provider and Windows release, each event as ``Name(Type Field, ...)``
  with manifest in-types;
* Microsoft's NetMon parsers (NPL): ``case N: ... STRUCT name;`` in the provider's switch, then
  ``Struct STRUCT = ... { TYPE[(length)] Field; ... }``.

Both give, per event, a list of ``(in_type, field_name, length_field)`` (for an NPL field inside
``switch { case X > 0 : ... }``, X: the field is there only when X is not zero); the tests compare the
decoders' layouts with these lists. The files are read, never copied into the project.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path

MANIFESTS = Path(__file__).resolve().parents[2] / "shared" / "research" / "manifests"

SourceField = tuple[str, str, str | None]  # in-type, name, the field holding its length (None: none)


def available() -> bool:
    return (MANIFESTS / "README.md").is_file()


def _signature(text: str) -> list[SourceField]:
    inner = text[text.index("(") + 1:text.rindex(")")].strip()
    if not inner:
        return []
    out = []
    for part in inner.split(","):
        in_type, name = part.split()
        out.append((in_type, name, None))
    return out


@lru_cache(maxsize=None)
def jdu_releases(provider_name: str) -> dict[str, dict[tuple[int, int], list[SourceField]]]:
    """{release: {(event id, version): fields}} for one provider, e.g. ``Microsoft-Windows-TCPIP``."""
    out: dict[str, dict[tuple[int, int], list[SourceField]]] = {}
    for path in sorted((MANIFESTS / "jdu2600").glob(f"{provider_name}.*.tsv")):
        release = path.name[len(provider_name) + 1:-len(".tsv")]
        with path.open(newline="", encoding="utf-8") as handle:
            events = {(int(row["event_id"]), int(row["version"])): _signature(row["event(fields)"])
                      for row in csv.DictReader(handle, delimiter="\t")}
        out[release] = events
    return out


_CASE = re.compile(r"^\s*case (\d+):(.*)$")
_STRUCT_REF = re.compile(r"\]\s*(\w+)\s+\w+;\s*$")
_STRUCT = re.compile(r"^Struct (\w+)\s*=.*?\n\{\n(.*?)\n\}", re.M | re.S)
_CONDITION = re.compile(r"^\s*case (\w+) > 0\s*:\s*$")
_FIELD = re.compile(r"^\s*(?:\[[^\]]*\])?\s*(\w+)(?:\((\w+)\))?\s+(\w+)\s*(?:=.*)?;\s*$")


@lru_cache(maxsize=None)
def npl_events(file_name: str) -> dict[tuple[int, int], list[SourceField]]:
    """{(event id, version): fields} from one NPL parser in microsoft-SDN/: the provider's switch on the
    event id, and the nested switches on the event version where an event has several."""
    text = (MANIFESTS / "microsoft-SDN" / file_name).read_text(encoding="utf-8", errors="replace")
    cases: dict[tuple[int, int], str] = {}
    event_id = None
    for line in text[:text.index("default:")].splitlines():
        match = _CASE.match(line)
        if not match:
            continue
        number, rest = int(match.group(1)), match.group(2)
        nested = line.startswith("\t\t\t")  # a version case inside an event's version switch
        if not nested:
            event_id = number
        ref = _STRUCT_REF.search(rest)
        if ref and event_id is not None:
            cases[(event_id, number if nested else 0)] = ref.group(1)
    structs: dict[str, list[SourceField]] = {}
    for name, body in _STRUCT.findall(text):
        fields, condition = [], None
        for line in body.splitlines():
            case = _CONDITION.match(line)
            if case:  # ``switch { case X > 0 : FIELD; }``: FIELD is there only when X is not zero
                condition = case.group(1)
                continue
            match = _FIELD.match(line)
            if match:
                in_type, length, field = match.groups()
                fields.append((in_type, field, length or condition))
                condition = None
        structs[name] = fields
    return {key: structs[struct] for key, struct in cases.items() if struct in structs}


# Which of the decoders' field kinds can stand for a source in-type (jdu2600 and NPL spellings).
COMPATIBLE = {
    "UInt8": {"u8", "bool8"}, "UINT8": {"u8", "bool8"},
    "UInt16": {"u16", "port"}, "UINT16": {"u16", "port"},
    "UInt32": {"u32", "i32", "bool32", "ipv4"}, "UINT32": {"u32", "i32", "bool32", "ipv4"},
    "HexInt32": {"u32"}, "NTSTATUS": {"u32", "i32"}, "Int32": {"i32"}, "INT32": {"i32", "u32"},
    "UInt64": {"u64", "i64"}, "UINT64": {"u64", "i64"}, "HexInt64": {"u64"}, "Int64": {"i64"}, "INT64": {"i64", "u64"},
    "Pointer": {"ptr"}, "EtlPtr": {"ptr"},
    "Boolean": {"bool32"}, "BOOL": {"bool32"},
    "GUID": {"guid"},
    "AnsiString": {"cstr"}, "AsciiString": {"cstr"},
    "UnicodeString": {"wstr", "counted"},
    "Binary": {"bin", "mac", "ip", "sockaddr", "ipv6", "mac6"}, "BLOB": {"bin", "mac", "ip", "sockaddr"},
    "IPv4Address": {"ipv4"}, "IPv6Address": {"ipv6"},
}


FIXED_BLOB = {4: {"ipv4"}, 6: {"mac6"}, 16: {"ipv6", "guid"}}


def kinds_for(fields: list[SourceField], index: int) -> set[str]:
    """The decoder field kinds that can stand for ``fields[index]``."""
    in_type, _name, length = fields[index]
    if in_type == "UnicodeString":
        return {"counted"} if counted(fields, index) else {"wstr"}
    if in_type == "IPv6Address" and length is not None:  # present only when ``length`` is not zero
        return {"ipv6_if"}
    if in_type == "BLOB" and length is not None and length.isdigit():
        return FIXED_BLOB.get(int(length), {"bin"})
    return COMPATIBLE.get(in_type, set())


def counted(fields: list[SourceField], index: int) -> bool:
    """A UnicodeString sized by a length field (NPL: ``UnicodeString(XLen)``; jdu2600: the field just
    before it is named ``<Name>Len``/``<Name>Length``), not NUL-terminated."""
    in_type, name, length = fields[index]
    if in_type != "UnicodeString":
        return False
    if length is not None:
        return True
    return index > 0 and fields[index - 1][1] in (f"{name}Len", f"{name}Length")
