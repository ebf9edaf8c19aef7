"""PktMon facts: components, packets, drops, packet paths, routes and flows.

Real samples: everything is recomputed independently, reading records with dissect.etl and
decoding them with etl-parser's generated PktMon layouts (neither is on our runtime path).
The demo trace: the ground truth its scenario wrote. Bounded memory: a digest fed far more
packets than its window, flow table and route limits.
"""

from __future__ import annotations

import collections
import json
import struct
import uuid
from pathlib import Path

import pytest

import reference_pktmon as reference
from factscan import by_kind, scan_facts
from samples import sample_params
from diag.decode import pktmon
from diag.facts import pktmon as pktmon_facts
from diag.facts.pktmon import PktmonDigest

DEMO = Path(__file__).resolve().parent / "data" / "pktmon-drops.etl"
TRUTH = json.loads((DEMO.parent / "pktmon-drops.truth.json").read_text())
PKTMON_SAMPLES = [p for p in sample_params() if p.values[0] is None or "PktMon" in p.values[0].name]


def independent(path: Path) -> dict:
    """Components, drops and per-packet paths, from dissect.etl records and etl-parser's layouts."""
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    from dissect.etl.headers.event import EventHeader
    from etl.parsers.etw import Microsoft_Windows_PktMon as layouts

    out = {"components": {}, "properties": collections.defaultdict(dict), "drops": collections.Counter(),
           "snapshots": collections.defaultdict(list), "packets": 0}
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            if not isinstance(h, EventHeader) or str(uuid.UUID(bytes_le=h.provider_id.bytes)) != pktmon.PROVIDER:
                continue
            event_id, payload = h.descriptor.id, bytes(h.payload)
            if event_id == 20:
                f = layouts.Microsoft_Windows_PktMon_20_0.pattern.parse(payload)
                out["components"][f.Id] = f.Type
            elif event_id == 30:
                f = layouts.Microsoft_Windows_PktMon_30_0.pattern.parse(payload)
                out["properties"][f.ComponentId].setdefault(f.Type, f.Value)
            elif event_id in (160, 170):
                f = (layouts.Microsoft_Windows_PktMon_170_0 if event_id == 170 else
                     layouts.Microsoft_Windows_PktMon_160_0).pattern.parse(payload)
                out["packets"] += 1
                out["snapshots"][(f.PktGroupId, f.PktNumber)].append((f.AppearanceCount, (f.ComponentId, f.EdgeId),
                                                                       event_id == 170, f.DropReason))
                if event_id == 170:
                    out["drops"][(f.ComponentId, f.DropReason)] += 1
    return out


@pytest.mark.parametrize("path", PKTMON_SAMPLES)
def test_components_packets_drops_and_paths_match_an_independent_decode(path):
    truth = independent(path)
    snapshots = reference.read_snapshots(path)
    packets, repeats = reference.rebuild(snapshots)
    result = scan_facts(path)
    digest, kinds = result.scan.pktmon, by_kind(result.facts)
    assert digest.packets == truth["packets"] == len(snapshots)
    assert {k: t for k, t in ((c, comp.get("type")) for c, comp in digest.components.items()) if t is not None} == \
        truth["components"]
    drop_facts = kinds.get("pktmon_drop", []) + kinds.get("background_drop", [])
    drops: collections.Counter = collections.Counter()
    for d in drop_facts:
        drops[(d.component_id, d.reason_code)] += d.count
    assert drops == truth["drops"]
    # packets: the reference rebuild (per (PktGroupId, PktNumber), or per snapshot chain on builds 26100+)
    assert digest.paths == len(packets)
    assert digest.drop_repeats + digest.chains.repeats == repeats
    ours = {tuple((e >> 16, e & 0xFFFF) for e in route): r for route, r in digest.routes.items() if r.packets}
    assert {route: r.packets for route, r in ours.items()} == dict(collections.Counter(p.route for p in packets))
    dropped_routes = collections.Counter(p.route for p in packets if p.dropped_at is not None)
    assert {route: r.dropped for route, r in ours.items() if r.dropped} == dict(dropped_routes)
    assert sum(f[0] for f in digest.flows.values()) + digest.unparsed_frames == digest.paths
    # drop events and the distinct frames behind them
    frames = reference.dropped_frames(snapshots)
    assert digest.dropped_frames == sum(frames.values())
    by_component: collections.Counter = collections.Counter()
    for d in drop_facts:
        by_component[d.component_id] += d.distinct_frames
    assert dict(by_component) == frames


@pytest.mark.parametrize("path", PKTMON_SAMPLES)
def test_component_facts_carry_the_rundown_properties(path):
    truth = independent(path)
    kinds = by_kind(scan_facts(path).facts)
    for component in kinds.get("component", []):
        props = truth["properties"].get(component.component_id, {})
        assert component.compartment_id == props.get(17)
        assert component.if_index == props.get(1)
        assert component.type_code == truth["components"].get(component.component_id)


def test_compartments_from_pktmon_properties_on_a_vswitch_host():
    path = next((p.values[0] for p in PKTMON_SAMPLES if p.values[0] and "Gobang" in p.values[0].name), None)
    if path is None:
        pytest.skip("the Gobang sample is not available")
    truth = independent(path)
    kinds = by_kind(scan_facts(path).facts)
    expected = {v[17] for v in truth["properties"].values() if 17 in v}
    assert {c.compartment_id for c in kinds["compartment"]} == expected
    vswitch = [c for c in kinds["component"] if c.type_code in (5, 6, 7, 8)]
    assert vswitch and all(c.name == "vmswitch.sys" or c.type_code != 5 for c in vswitch)


def test_demo_trace_paths_and_drop_points_match_its_ground_truth():
    result = scan_facts(DEMO)
    digest, kinds = result.scan.pktmon, by_kind(result.facts)
    assert digest.paths == TRUTH["packet_count"]
    assert sum(r.packets for r in digest.routes.values()) == TRUTH["packet_count"]
    drop_points = {(p.last_component_id, p.drop_reason_code) for p in kinds["packet_path"] if p.dropped}
    assert drop_points == {(d["component_id"], d["reason"]) for d in TRUTH["drops"]}
    for p in kinds["packet_path"]:
        assert p.hop_count == len(p.hops) and p.duration_us is not None and p.duration_us >= 0
        assert [h["appearance"] for h in p.hops] == sorted(h["appearance"] for h in p.hops)
    rates = {(r.component_id, r.reason_code): r for r in kinds["drop_rate"]}
    for d in TRUTH["drops"]:
        rate = rates[(d["component_id"], d["reason"])]
        assert rate.drops == d["count"] and sum(rate.series) == d["count"] and rate.peak_per_second >= 1


# -- bounded memory -------------------------------------------------------------------------------------

_HEADER = pktmon.PACKET_HEADER


def snapshot(group: int, number: int, appearance: int, component: int, frame: bytes, dropped: bool = False) -> bytes:
    """An EVENT_HEADER-sized gap (the digest reads the timestamp there) followed by a 160/170 payload."""
    header = bytearray(0x50)
    struct.pack_into("<q", header, 0x10, 1_000_000 + group * 10 + appearance)
    payload = _HEADER.pack(group, number, appearance, 1, 1, component, 1, 0, 9 if dropped else 0, 0, len(frame),
                           len(frame)) + frame
    return bytes(header) + payload


def frame(i: int) -> bytes:
    src, dst = struct.pack("!I", 0x0A000000 + i % 5000), struct.pack("!I", 0x0A010001)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, src, dst)
    return bytes(6) + bytes(6) + b"\x08\x00" + ip + struct.pack("!HHIIBBHHH", 40000 + i % 7, 443, 0, 0, 0x50, 2, 0, 0, 0)


class Clock:
    start_filetime, reference_ticks, ticks_per_second = 133_000_000_000_000_000, 0, 10_000_000

    def to_filetime(self, ticks: int) -> int:
        return self.start_filetime + ticks


def test_memory_stays_bounded_whatever_the_number_of_packets():
    digest = PktmonDigest(Clock(), window=64, max_flows=100)
    for i in range(20_000):
        for hop in range(3):  # half the packets take one route, the others 1000 different ones
            data = snapshot(i, 1, hop + 1, [7, 8, 9][hop] if i % 2 else [7, 9, 10 + i % 1000][hop], frame(i))
            assert digest.passed(data, 0x50, len(data))
        assert len(digest.inflight) <= 2 * 64 and len(digest._order) <= 2 * 64
    digest.finish()
    assert digest.paths == 20_000 and digest.packets == 60_000
    assert len(digest.routes) <= pktmon_facts.MAX_ROUTES and digest.routes_overflow.packets > 0
    assert len(digest.flows) <= 2 * 100 and digest.flows_pruned > 0
    assert sum(r.packets for r in digest.routes.values()) + digest.routes_overflow.packets == 20_000
    facts = pktmon_facts.route_facts(digest) + pktmon_facts.flow_facts(digest) + \
        pktmon_facts.path_facts(digest, str)
    assert len(facts) <= pktmon_facts.MAX_ROUTES + pktmon_facts.MAX_FLOW_FACTS + pktmon_facts.MAX_PATH_FACTS


def test_a_path_the_window_let_go_is_joined_up_again_when_the_rest_comes():
    digest = PktmonDigest(Clock(), window=1)  # at most 2 in flight: the third packet pushes the first two out
    order = [(1, 1, 7), (2, 1, 7), (3, 1, 7), (1, 2, 8), (1, 3, 9)]  # packet 1's next snapshots come after 2 others
    for group, appearance, component in order:
        data = snapshot(group, 1, appearance, component, frame(group))
        digest.passed(data, 0x50, len(data))
    digest.finish()
    assert digest.paths == 3 and digest.paths_split == 1
    routes = {tuple(e >> 16 for e in key): r.packets for key, r in digest.routes.items() if r.packets}
    assert routes == {(7,): 2, (7, 8, 9): 1}  # no half path "7" for packet 1
    assert sum(f[0] for f in digest.flows.values()) == 3  # its flow counted once


def test_a_drop_ends_the_path_at_its_drop_point():
    digest = PktmonDigest(Clock())
    data = snapshot(5, 1, 1, 7, frame(5))
    digest.passed(data, 0x50, len(data))
    drop = snapshot(5, 1, 2, 8, frame(5), dropped=True)
    digest.packet(memoryview(drop)[0x50:], True, 133_000_000_000_000_500)
    assert not digest.inflight and digest.paths == 1
    (path,) = pktmon_facts.path_facts(digest, lambda code: f"reason {code}")
    assert (path.dropped, path.last_component_id, path.drop_reason_code, path.hop_count) == (True, 8, 9, 2)
    assert (path.src, path.dst, path.dport) == ("10.0.0.5", "10.1.0.1", 443)
