"""Every hand-written layout against its public source, per Windows release (knowledge/layout-sources.yaml).

Two independent checks, both from the field lists in ../shared/research/manifests (read by the
test-side ``manifest_sources``, which shares nothing with diag/ or diag/synth):
* declared: each layout's fields have the source's names (or the renames the knowledge file
  declares), compatible types and the same order, for every release the source lists the event in,
  using the revision the decoder selects for that release's build;
* bytes: a payload built field by field from the source's list decodes, exactly, with every
  integer where its name says, at that build, with no note that another revision was needed.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest

import manifest_sources as ms
from diag.decode import FAST_PROVIDERS, netvsc, pktmon, tcpip, vfp, vmswitch, winnat, wnv
from diag.decode.fields import LAYOUT_NOTE, Layout, ProviderLayouts
from diag.facts.tables import load_layout_sources

needs_manifests = pytest.mark.skipif(not ms.available(), reason="../shared/research/manifests is absent")
JDU_MODULES = {"tcpip": tcpip, "netvsc": netvsc, "winnat": winnat}
NPL_MODULES = {"vmswitch": vmswitch, "wnv": wnv, "vfpext": vfp}


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def _ours_for(provider: str, source_name: str) -> str:
    """The name wnvdiag gives a source field (the counted string's length: the string's name + _len)."""
    renames = load_layout_sources().providers[provider].field_names
    if source_name in renames:
        return renames[source_name]
    if source_name.endswith("Len") and source_name[:-3] in renames:  # a counted string's length
        return renames[source_name[:-3]] + "_len"
    return source_name


def _expand(layout: Layout) -> list[tuple[str, str]]:
    """(kind, name) as the source lists them: a counted string is its length, then its characters."""
    out = []
    for field in layout.fields:
        if field[1] == "counted_wstr":
            out += [("u32", f"{field[0]}_len"), ("counted", field[0])]
        else:
            out.append((field[1], field[0]))
    return out


def _difference(provider: str, layout: Layout, source: list[ms.SourceField]) -> str | None:
    """None when ``layout`` is the source's list; else the first field that differs, named."""
    ours = _expand(layout)
    for i, (in_type, name, _length) in enumerate(source):
        if i >= len(ours):
            return f"field {i} {name} ({in_type}) is missing"
        kind, our_name = ours[i]
        if kind not in ms.kinds_for(source, i):
            return f"field {i} {our_name} is {kind}, the source has {name} {in_type}"
        if _norm(our_name) != _norm(_ours_for(provider, name)):
            return f"field {i} is {our_name}, the source calls it {name}"
    if len(ours) > len(source):
        return f"fields {[name for _, name in ours[len(source):]]} are not in the source"
    return None


def _layouts(module) -> dict[tuple[int, int], tuple[Layout, ...]]:
    return {key: value if isinstance(value, tuple) else (value,) for key, value in module.LAYOUTS.items()}


def test_every_fast_decoder_names_its_layout_source():
    sources = load_layout_sources()
    named = {entry.name for entry in sources.providers.values()}
    for module in FAST_PROVIDERS.values():
        assert module.NAME in named, module.NAME
    for entry in sources.providers.values():
        assert entry.status in ("confirmed", "differs-fixed", "partly-sourced", "no-public-source")


def test_releases_are_in_build_order():
    builds = list(load_layout_sources().releases.values())
    assert builds == sorted(builds)


@needs_manifests
@pytest.mark.parametrize("provider", sorted(JDU_MODULES))
def test_layouts_match_the_manifest_of_every_release(provider):
    module, entry = JDU_MODULES[provider], load_layout_sources().providers[provider]
    releases = ms.jdu_releases(entry.name)
    builds = load_layout_sources().releases
    assert releases, f"no jdu2600 files for {entry.name}"
    selector = ProviderLayouts(module.LAYOUTS, entry.name)
    problems = []
    for key, layouts in _layouts(module).items():
        listed = [release for release, events in releases.items() if key in events]
        if not listed:
            assert key[0] in entry.unsourced, f"{entry.name} {key}: in no release's manifest and not declared unsourced"
            continue
        for release in listed:
            due = selector.revision_for(*key, builds[release])
            differences = [_difference(provider, layout, releases[release][key]) for layout in due]
            if all(differences):
                problems.append(f"{entry.name} event {key[0]} v{key[1]} on {release}: {differences[0]}")
    assert not problems, "\n".join(problems)


@needs_manifests
@pytest.mark.parametrize("provider", sorted(JDU_MODULES))
def test_every_version_the_latest_manifest_declares_is_decoded(provider):
    module, entry = JDU_MODULES[provider], load_layout_sources().providers[provider]
    releases = ms.jdu_releases(entry.name)
    latest = releases[max(releases, key=lambda r: load_layout_sources().releases[r])]
    ours = set(module.LAYOUTS)
    missing = sorted(key for key in latest if key[0] in {e for e, _ in ours} and key not in ours)
    assert not missing, f"{entry.name}: versions the latest manifest declares and wnvdiag lacks: {missing}"


@needs_manifests
@pytest.mark.parametrize("provider", sorted(NPL_MODULES))
def test_layouts_match_the_netmon_parser(provider):
    module, entry = NPL_MODULES[provider], load_layout_sources().providers[provider]
    events = ms.npl_events(entry.files.split("/", 1)[1])
    problems = []
    for key, layouts in _layouts(module).items():
        if key not in events:
            assert key[0] in entry.unsourced, f"{entry.name} {key}: not in the parser and not declared unsourced"
            continue
        differences = [_difference(provider, layout, events[key]) for layout in layouts]
        if all(differences):
            problems.append(f"{entry.name} event {key[0]} v{key[1]}: {differences[0]}")
    assert not problems, "\n".join(problems)


def test_a_declared_difference_is_named():
    """The comparison itself: a wrong type, a renamed field and a missing field are each reported."""
    source = [("UInt32", "Interface", None), ("Pointer", "Route", None)]
    assert _difference("tcpip", Layout("x", (("interface", "u32"), ("route", "ptr"))), source) is None
    assert "route is u64" in _difference("tcpip", Layout("x", (("interface", "u32"), ("route", "u64"))), source)
    assert "the source calls it Route" in _difference("tcpip", Layout("x", (("interface", "u32"), ("rte", "ptr"))),
                                                      source)
    assert "missing" in _difference("tcpip", Layout("x", (("interface", "u32"),)), source)


# ---- bytes built from the source's field list ------------------------------------------------------------

_SIZED = 4  # every length field, counted string and binary field of a built payload has this size


def _build(fields: list[ms.SourceField], pointer_size: int) -> tuple[bytes, dict[str, int]]:
    """A payload laid out as ``fields`` say, and the integer written into each field, by source name."""
    out, values = bytearray(), {}
    for i, (in_type, name, _length) in enumerate(fields):
        value = 0x100 + i
        if name.endswith(("Len", "Length", "LoggedPayloadSize")) or in_type == "Boolean":
            value = _SIZED if in_type != "Boolean" else 1
        if in_type in ("UInt8",):
            out += struct.pack("<B", value & 0xFF)
            values[name] = value & 0xFF
        elif in_type == "UInt16":
            out += struct.pack("<H", value)
            values[name] = value
        elif in_type in ("UInt32", "Int32", "HexInt32", "Boolean"):
            out += struct.pack("<I", value)
            values[name] = value
        elif in_type in ("UInt64", "Int64", "HexInt64"):
            out += struct.pack("<Q", value << 32 | value)
            values[name] = value << 32 | value
        elif in_type == "Pointer":
            pointer = (value << 20 | value) & ((1 << 8 * pointer_size) - 1)
            out += pointer.to_bytes(pointer_size, "little")
            values[name] = pointer
        elif in_type == "GUID":
            out += bytes(range(16))
        elif in_type == "AnsiString":
            out += b"IPv4\x00"
        elif in_type == "UnicodeString":
            out += "abcd".encode("utf-16-le") + (b"" if ms.counted(fields, i) else b"\x00\x00")
        elif in_type == "Binary":
            out += bytes([10, 0, 0, i & 0xFF])
        else:
            raise AssertionError(f"no encoder for {in_type}")
    return bytes(out), values


def _found(provider: str, decoded: dict, source_name: str):
    ours = _norm(_ours_for(provider, source_name))
    return next((v for k, v in decoded.items() if _norm(k) == ours), None)


def _pktmon_decode(event_id: int, version: int, payload: bytes, pointer_size: int, build: int) -> dict | None:
    decoded = pktmon.decode(event_id, version, memoryview(payload))
    return decoded.as_dict() if hasattr(decoded, "as_dict") else decoded


_DECODERS = {**{p: m.decode for p, m in JDU_MODULES.items()}, "pktmon": _pktmon_decode}
_BYTE_EVENTS = {"pktmon": (160, 170)}  # pktmon's other events are decoded from the trace's own schema


def _byte_cases():
    if not ms.available():
        return []
    sources = load_layout_sources()
    cases = []
    for provider in _DECODERS:
        entry = sources.providers[provider]
        module = {**JDU_MODULES, "pktmon": pktmon}[provider]
        decoded_ids = set(_BYTE_EVENTS.get(provider, ())) or {e for e, _ in module.LAYOUTS} | (
            set(netvsc.DATA_PATH_EVENTS) | {netvsc.EVENT_NBL_DROPPED} if module is netvsc else set())
        for release, events in ms.jdu_releases(entry.name).items():
            for key in sorted(events):
                if key[0] in decoded_ids:
                    cases.append(pytest.param(provider, release, key, id=f"{provider}-{key[0]}v{key[1]}-{release}"))
    return cases


@needs_manifests
@pytest.mark.parametrize("provider,release,key", _byte_cases())
@pytest.mark.parametrize("pointer_size", [8, 4])
def test_a_payload_built_from_the_manifest_decodes_as_listed(provider, release, key, pointer_size):
    sources = load_layout_sources()
    build = sources.releases[release]
    fields = ms.jdu_releases(sources.providers[provider].name)[release][key]
    payload, values = _build(fields, pointer_size)
    decoded = _DECODERS[provider](*key, memoryview(payload), pointer_size, build)
    assert decoded is not None, f"{provider} {key}: no layout"
    assert LAYOUT_NOTE not in decoded, decoded[LAYOUT_NOTE]
    for name, value in values.items():
        got = _found(provider, decoded, name)
        if isinstance(got, bool):
            assert got == bool(value), name
        elif isinstance(got, int):
            assert got == value, f"{name}: {got:#x}, written {value:#x}"
        else:
            assert got is not None or name.endswith(("Len", "Length")), f"{name} not decoded"


@needs_manifests
def test_the_build_selects_the_revision_and_a_guess_is_said():
    """TCPIP 1145 v0 as 24H2 writes it: decoded silently on 24H2, with a note on 23H2 or an unknown build."""
    fields = ms.jdu_releases("Microsoft-Windows-TCPIP")["Windows_11_24H2"][(1145, 0)]
    payload = memoryview(_build(fields, 8)[0])
    assert LAYOUT_NOTE not in tcpip.decode(1145, 0, payload, 8, 26100)
    other = tcpip.decode(1145, 0, payload, 8, 22631)
    assert "26100+" in other[LAYOUT_NOTE] and "unicast_route_deletion_reason" in other
    assert "unknown" in tcpip.decode(1145, 0, payload, 8, None)[LAYOUT_NOTE]
    old = ms.jdu_releases("Microsoft-Windows-TCPIP")["Windows_11_23H2"][(1145, 0)]
    assert LAYOUT_NOTE not in tcpip.decode(1145, 0, memoryview(_build(old, 8)[0]), 8, 22631)


# ---- VfpExt: payloads built from the NetMon parser's field lists ------------------------------------------

def _build_npl(fields: list[ms.SourceField], port_name: str | None = None) -> tuple[bytes, dict]:
    """A payload laid out as the parser's ``fields`` say (``port_name``: the leading port id written as a
    NUL-terminated name, as current hosts do), and what was written into each field, by source name."""
    out, values = bytearray(), {}
    counts = {length for _, _, length in fields if length}  # fields that size a later one
    for i, (in_type, name, length) in enumerate(fields):
        value = 0x10 + i
        if name in counts:  # the length of a counted string: its characters, not recorded as a value
            out += struct.pack("<I", 3)
        elif i == 0 and port_name is not None and name.endswith("PortId"):
            out += port_name.encode("utf-16-le") + b"\x00\x00"
            values[name[:-2] + "Name"] = port_name
        elif in_type == "UINT8":
            out.append(value)
            values[name] = value
        elif in_type == "UINT16" and name.endswith("Port"):
            out += struct.pack(">H", 0x1000 + i)  # win:Port, network order
            values[name] = 0x1000 + i
        elif in_type == "UINT16":
            out += struct.pack("<H", 0x800 + i)
            values[name] = 0x800 + i
        elif in_type in ("UINT32", "NTSTATUS") and name.endswith("Len"):
            out += struct.pack("<I", 3)
            values[name] = 3
        elif in_type in ("UINT32", "NTSTATUS"):
            out += struct.pack("<I", 0xC0000000 + i)
            values[name] = 0xC0000000 + i
        elif in_type == "BOOL":
            out += struct.pack("<I", 1)
            values[name] = True
        elif in_type in ("UINT64", "INT64", "EtlPtr"):
            out += struct.pack("<Q", 0x1000_0000_0000 + i)
            values[name] = 0x1000_0000_0000 + i
        elif in_type == "UnicodeString" and length:
            out += "msg".encode("utf-16-le")  # counted: no terminator
            values[name] = "msg"
        elif in_type == "UnicodeString":
            text = f"{name}-{i}"
            out += text.encode("utf-16-le") + b"\x00\x00"
            values[name] = text
        elif in_type == "IPv4Address":
            out += bytes([10, 1, 2, i])
            values[name] = f"10.1.2.{i}"
        elif in_type == "IPv6Address":
            raw = bytes([0xFD] + [0] * 14 + [i])
            out += raw
            values[name] = str(ipaddress.IPv6Address(raw))
        elif in_type == "BLOB":
            out += b"\xAA\xBB\xCC"
            values[name] = "aabbcc"
        else:
            raise AssertionError(f"no encoder for {in_type} {name}")
    return bytes(out), values


_PORT_NAME = "6B4A85CC-55A1-4C9F-8C85-44C2A33AAE4A"


def _vfp_cases():
    if not ms.available():
        return []
    events = ms.npl_events("etl_vfpext.npl")
    cases = []
    for key in sorted(vfp.LAYOUTS):
        if key in events:
            cases.append(pytest.param(key, None, id=f"vfpext-{key[0]}"))
            if len(vfp.LAYOUTS[key]) > 1:  # the event starts with a port id: the port-name form too
                cases.append(pytest.param(key, _PORT_NAME, id=f"vfpext-{key[0]}-port-name"))
    return cases


@needs_manifests
@pytest.mark.parametrize("key,port_name", _vfp_cases())
def test_a_vfp_payload_built_from_the_netmon_parser_decodes_as_listed(key, port_name):
    fields = ms.npl_events("etl_vfpext.npl")[key]
    payload, values = _build_npl(fields, port_name)
    decoded = vfp.decode(*key, memoryview(payload), 8, 26100)
    assert (LAYOUT_NOTE in decoded) == (port_name is not None)
    for name, value in values.items():
        got = _found("vfpext", decoded, name)
        assert got == value, f"{name}: {got!r}, written {value!r}"


@needs_manifests
def test_a_vfp_payload_that_fits_no_layout_is_refused():
    from diag.decode.wire import WireError

    payload, _ = _build_npl(ms.npl_events("etl_vfpext.npl")[(101, 0)])
    with pytest.raises(WireError):
        vfp.decode(101, 0, memoryview(payload + b"\x00"), 8, 26100)
    assert vfp.decode(600, 0, memoryview(payload), 8, 26100) is None  # no public layout: not guessed


_STATUS_WORDS = {"confirmed": "confirmed", "differs-fixed": "differs, fixed", "partly-sourced": "partly sourced",
                 "no-public-source": "no public source"}


def test_the_readme_table_says_what_the_knowledge_file_says():
    """README "How far each provider's layouts are confirmed": one row names each provider, with its status."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### How far each provider's layouts are confirmed"):]
    section = section[:section.index("\n\n", section.index("| provider |"))]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| provider")]
    for key, entry in load_layout_sources().providers.items():
        short = entry.name.removeprefix("Microsoft-Windows-")
        named = [row for row in rows if short in row[0]]
        assert len(named) == 1, f"{key}: {len(named)} README rows name {short}"
        assert named[0][2] == _STATUS_WORDS[entry.status], f"{key}: README says {named[0][2]!r}, the file {entry.status}"
