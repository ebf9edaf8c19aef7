"""Every scenario of the library, written once, read back by two readers and checked against its
ground truth: dissect.etl (independent of this project) and our own reader must find the records,
providers and event ids the scenario wrote; every complete frame must have valid lengths and
checksums (checked here with an independent parser); the trace's own schemas must decode what our
fast decoders decode. Expected values come from the truth file (computed from the scenario
definition) and from the protocols' arithmetic, never from our reader's view of the output.
"""

from __future__ import annotations

import ipaddress
import json
import struct
import uuid
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("dissect.etl")
from dissect.etl.etl import ETL  # noqa: E402

from diag.decode import pktmon as fast_pktmon  # noqa: E402
from diag.decode.eventmetadata import SchemaRegistry  # noqa: E402
from diag.read import open_trace  # noqa: E402
from diag.synth.generate import scenario_names, synthesize  # noqa: E402
from diag.synth.scenarios import FINDINGS  # noqa: E402

PKTMON = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")
EVENTMETADATA = uuid.UUID("bbccf6c1-6cd1-48c4-80ff-839482e37671")
HEADER = "68fdd900-4a3e-11d1-84f4-0000f80464e3"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    out = tmp_path_factory.mktemp("scenarios")
    traces = {}
    for name in scenario_names():
        result = synthesize(name, out / f"{name}.etl")
        traces[name] = (result.trace, json.loads(result.truth.read_text(encoding="utf-8")))
    return traces


def dissect_records(path: Path) -> list:
    with path.open("rb") as fh:
        return [r.header for r in ETL(fh)]


def identity(header) -> tuple[str, int]:
    """(provider, event id) the way the scenario counts them, from dissect's view of a record."""
    kind = type(header).__name__
    if kind == "EventHeader":
        # dissect builds EventHeader.provider_id with UUID(bytes=...): undo its byte-order bug.
        return str(uuid.UUID(bytes_le=header.provider_id.bytes)), header.header.Id
    if kind == "EventTraceHeader":
        return str(header.provider_id), header.header.Version & 0xFF  # classic: the opcode
    return HEADER, header.hook_id


def expected_counts(truth: dict) -> Counter:
    counts: Counter = Counter({(HEADER, 0): 1})
    for provider, events in truth["trace"]["events_by_provider"].items():
        for event_id, n in events.items():
            counts[(provider, int(event_id))] = n
    return counts


def test_the_library_has_the_scenarios_the_issue_asks_for():
    names = set(scenario_names())
    assert len(names) >= 13
    assert {"healthy-container-host", "overlapping-compartments", "overlapping-compartments-hostinfo",
            "vlan-mismatch", "mac-spoofing", "mtu-encapsulation", "sriov-vf-active", "vf-fallback",
            "vmswitch-no-delivery", "winnat-port-exhaustion", "dad-failure", "wnv-lookup-failure",
            "lossy-trace", "pktmon-drops"} <= names


@pytest.mark.parametrize("name", scenario_names())
def test_dissect_reads_what_the_scenario_wrote(written, name):
    path, truth = written[name]
    headers = dissect_records(path)
    assert len(headers) == truth["trace"]["records"]
    assert Counter(identity(h) for h in headers) == expected_counts(truth)


@pytest.mark.parametrize("name", scenario_names())
def test_our_reader_reads_what_the_scenario_wrote(written, name):
    path, truth = written[name]
    with open_trace(path) as trace:
        counts = Counter((r.provider, r.event_id) for r in trace.records())
        assert trace.stats.warnings == []
        assert trace.header.events_lost == truth["trace"]["events_lost"]
        assert trace.header.os_build == truth["trace"]["os_build"]
    assert counts == expected_counts(truth)


@pytest.mark.parametrize("name", scenario_names())
def test_truth_names_known_findings_and_rules_out_the_rest(written, name):
    _, truth = written[name]
    expected = {f["finding"] for f in truth["expect"]}
    assert expected <= set(FINDINGS)
    assert set(truth["must_not"]) == set(FINDINGS) - expected
    assert truth["scenario"] == name and truth["schema"] == "wnvdiag.synth-truth/1"


# -- frames, parsed independently -------------------------------------------------------------------


def ones_complement(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def check_l4(proto: int, pseudo: bytes, segment: bytes, v6: bool) -> None:
    if proto in (6, 17):
        if proto == 17:
            assert struct.unpack("!H", segment[4:6])[0] == len(segment)
            if segment[6:8] == b"\0\0":
                return
        assert ones_complement(pseudo + segment) == 0xFFFF, "transport checksum"
    elif proto == 1:
        assert ones_complement(segment) == 0xFFFF, "ICMP checksum"
    elif proto == 58:
        assert ones_complement(pseudo + segment) == 0xFFFF, "ICMPv6 checksum"


def check_frame(frame: bytes, complete: bool, depth: int = 0) -> int:
    """Assert lengths and checksums; returns how many frames (outer and inner) were checked."""
    ether_type = struct.unpack("!H", frame[12:14])[0]
    pos = 14
    if ether_type == 0x8100:
        ether_type = struct.unpack("!H", frame[16:18])[0]
        pos = 18
    if ether_type == 0x0806:
        assert not complete or len(frame) - pos == 28
        return 1
    if ether_type == 0x0800:
        header = frame[pos:pos + 20]
        assert header[0] == 0x45 and ones_complement(header) == 0xFFFF, "IPv4 header checksum"
        if not complete:
            return 1
        total = struct.unpack("!H", header[2:4])[0]
        assert pos + total == len(frame), "IPv4 total length"
        proto, payload = header[9], frame[pos + 20:pos + total]
        pseudo = header[12:20] + struct.pack("!BBH", 0, proto, len(payload))
    elif ether_type == 0x86DD:
        header = frame[pos:pos + 40]
        if not complete:
            return 1
        assert pos + 40 + struct.unpack("!H", header[4:6])[0] == len(frame), "IPv6 payload length"
        proto, payload = header[6], frame[pos + 40:]
        pseudo = header[8:40] + struct.pack("!IxxxB", len(payload), proto)
    else:
        raise AssertionError(f"unexpected EtherType 0x{ether_type:04x}")
    check_l4(proto, pseudo, payload, ether_type == 0x86DD)
    checked = 1
    if proto == 17 and struct.unpack("!H", payload[2:4])[0] == 4789:
        assert payload[8] & 0x08, "VXLAN I flag"
        checked += check_frame(payload[16:], True, depth + 1)
    if proto == 47:
        flags, inner_type = struct.unpack("!HH", payload[:4])
        assert flags & 0x2000 and inner_type == 0x6558, "NVGRE key bit and TEB"
        checked += check_frame(payload[8:], True, depth + 1)
    return checked


@pytest.mark.parametrize("name", scenario_names())
def test_every_frame_has_valid_lengths_and_checksums(written, name):
    path, _ = written[name]
    frames = inner = 0
    for h in dissect_records(path):
        if identity(h) not in ((str(PKTMON), 160), (str(PKTMON), 170)):
            continue
        payload = bytes(h.payload)
        original, logged = struct.unpack_from("<HH", payload, 30)
        assert len(payload) == 34 + logged and logged <= original
        checked = check_frame(payload[34:], logged == original)
        frames += 1
        inner += checked - 1
    written_packets = sum(n for k, n in written[name][1]["trace"]["events_by_provider"].get(str(PKTMON), {}).items()
                          if k in ("160", "170"))
    assert frames == written_packets and (frames > 0 or name == "capture-without-packets")
    if name in ("mtu-encapsulation", "wnv-lookup-failure"):
        assert inner > 0  # encapsulated frames were opened and their inner frames checked


# -- scenario facts, seen through dissect -------------------------------------------------------------


@pytest.mark.parametrize("name", scenario_names())
def test_pktmon_drops_are_the_ones_the_truth_lists(written, name):
    path, truth = written[name]
    drops: Counter = Counter()
    for h in dissect_records(path):
        if identity(h) == (str(PKTMON), 170):
            _g, _n, _a, _d, _t, component, _e, _f, reason = struct.unpack_from("<QHHHHHHHI", bytes(h.payload))
            drops[(component, reason)] += 1
    listed = {(d["component_id"], d["reason"]): d["count"] for d in truth["drops"]}
    assert dict(drops) == listed
    packets_dropped = [f for f in truth["expect"] if f["finding"] == "packets-dropped"]
    assert bool(packets_dropped) == bool(drops)
    if packets_dropped:
        assert packets_dropped[0]["values"]["total"] == sum(drops.values())


def test_host_info_files_carry_the_compartments(written):
    path, truth = written["overlapping-compartments-hostinfo"]
    # read as bytes: the files keep Windows' CRLF line ends
    ipconfig = path.with_name(f"{path.stem}.ipconfig.txt").read_bytes().decode("utf-8")
    addresses = path.with_name(f"{path.stem}.Get-NetIPAddress.txt").read_bytes().decode("utf-8")
    for network in truth["networks"]:
        assert f"Network Information for Compartment {network['compartment']}" in ipconfig
        mask = str(ipaddress.IPv4Network(network["prefix"]).netmask)
        prefix_length = str(ipaddress.IPv4Network(network["prefix"]).prefixlen)
        for address in network["addresses"]:
            block = f"   IPv4 Address. . . . . . . . . . . : {address}\r\n   Subnet Mask . . . . . . . . . . . : {mask}"
            assert block in ipconfig
            assert f"IPAddress         : {address}\r\n" in addresses
        assert f"PrefixLength      : {prefix_length}\r\n" in addresses
    assert truth["host_info"] == [f"{path.stem}.ipconfig.txt", f"{path.stem}.Get-NetIPAddress.txt"]


def test_lossy_trace_header_and_flags(written):
    path, truth = written["lossy-trace"]
    lossy = {f["finding"]: f["values"] for f in truth["expect"]}
    with path.open("rb") as fh:
        etl = ETL(fh)
        header = etl.logfile_header.header
        assert header.EventsLost == lossy["trace-events-lost"]["events_lost"] == truth["trace"]["events_lost"]
        assert header.LogFileMode & 0x2 and header.LogFileMode == lossy["trace-circular-wrapped"]["log_file_mode"]
        assert any(int(b.header.BufferFlag) & 0x2 for b in etl.buffers())
    first = min(h.timestamp for h in dissect_records(path)[1:])
    assert first.timestamp() > 50 + (lossy["trace-circular-wrapped"]["start_filetime"] - 116444736000000000) / 1e7
    logged = [struct.unpack_from("<HH", bytes(h.payload), 30) for h in dissect_records(path)
              if identity(h) == (str(PKTMON), 160)]
    truncated = sum(1 for original, size in logged if original > size)
    assert truncated == lossy["trace-payload-truncated"]["truncated_events"]
    assert all(size <= 128 for _, size in logged)


# -- the trace describes itself ---------------------------------------------------------------------


SELF_DESCRIBED = [n for n in scenario_names() if n != "pktmon-drops"]


@pytest.mark.parametrize("name", SELF_DESCRIBED)
def test_embedded_schemas_decode_pktmon_events_like_the_fast_decoder(written, name):
    path, _ = written[name]
    registry = SchemaRegistry()
    with open_trace(path) as trace:
        records = list(trace.records())
        for r in records:
            registry.add(r)
        assert registry.counts["malformed"] == 0 and len(registry) > 0
        compared: Counter = Counter()
        for r in records:
            if r.provider != str(PKTMON) or r.event_id not in fast_pktmon.DECODERS or compared[r.event_id] >= 20:
                continue
            schema = registry.lookup(r.provider, r.event_id, r.version)
            assert schema is not None, f"no embedded schema for pktmon event {r.event_id}"
            fields = schema.decode(r.payload, 8, exact=True)[0]
            if r.event_id == 70:
                fields.pop("Size")  # the fast decoder gives the sized value alone
            by_schema = list(fields.values())
            by_hand = list(fast_pktmon.decode(r.event_id, 0, r.payload).values())
            assert _comparable(by_schema) == _comparable(by_hand), r.event_id
            compared[r.event_id] += 1
    assert compared[20] > 0 and (compared[160] > 0 or name == "capture-without-packets")  # that one has none
    maps = {m.name for m in registry.maps()}
    # maps come with the first event whose schema names them: no packet event, no DropReason map
    assert {"PropertyType", "ComponentType"} | ({"DropReason"} if compared[160] else set()) <= maps


def _comparable(values: list) -> list:
    """Values as plain comparable items: bytes as hex, MACs and hex strings normalised."""
    out = []
    for v in values:
        if isinstance(v, (bytes, bytearray, memoryview)):
            v = bytes(v).hex()
        if isinstance(v, str):
            v = v.replace("-", "").lower()
        out.append(v)
    return out


# -- reproducible ---------------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = synthesize("mac-spoofing", tmp_path / "a.etl", seed=42).trace.read_bytes()
    b = synthesize("mac-spoofing", tmp_path / "b.etl", seed=42).trace.read_bytes()
    c = synthesize("mac-spoofing", tmp_path / "c.etl", seed=43).trace.read_bytes()
    assert a == b and a != c


def test_demo_trace_is_the_pktmon_drops_scenario(tmp_path):
    demo = Path(__file__).parent / "data" / "pktmon-drops.etl"
    result = synthesize("pktmon-drops", tmp_path / "pktmon-drops.etl")
    assert result.trace.read_bytes() == demo.read_bytes()
    assert result.truth.read_text(encoding="utf-8") == demo.with_name("pktmon-drops.truth.json").read_text(
        encoding="utf-8")
