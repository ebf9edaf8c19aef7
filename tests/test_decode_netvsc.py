"""Microsoft-Windows-Hyper-V-Netvsc: no real sample carries it; payloads packed byte by byte.

Layouts: etl-parser's generated catalogue; meanings: the netvsc.sys message table ("NBL %2
CorrelationID %3 on IfIndex %4 direction %1 Synthetic" for 19, "... VF" for 20, "VF adapter bind
failed" for 39). The NBL pointer is pointer-sized.
"""

from __future__ import annotations

import pytest

from factscan import by_kind, scan_facts
from payloads import counted, etl_parser_types, layout_as_etl_parser, u32, u64, write_events
from diag.decode import EventDecoder, netvsc
from diag.read import open_trace

P = netvsc.PROVIDER


def nbl(event_id: int, if_index: int, n: int) -> tuple:
    return (event_id, 0, u32(1) + u64(0xFFFFA00000001000 + n) + u64(n) + u32(if_index))


EVENTS = [nbl(19, 7, i) for i in range(3)] + [nbl(20, 7, i) for i in range(4)] + [nbl(19, 7, 9)] + [
    (39, 0, u32(0xC0000001) + u32(3)),
    (16, 0, u32(0xC000009A) + u32(1) + u32(5) + counted("Microsoft Hyper-V Network Adapter")),
    (18, 0, u32(0xC0000001) + u32(1) + u32(4) + u64(0xFFFFA000) + u64(77) + u32(7)),
]


def test_events_round_trip(tmp_path):
    with open_trace(write_events(tmp_path / "nvsc.etl", P, EVENTS)) as trace:
        decoder = EventDecoder(trace.header)
        fields = [decoder.decode(r).fields for r in trace.records() if r.provider == P]
    assert fields[0] == {"direction": 1, "nbl": 0xFFFFA00000001000, "correlation_id": 0, "if_index": 7,
                         "data_path": "synthetic"}
    assert fields[3]["data_path"] == "vf"
    assert fields[8] == {"status": 0xC0000001, "failure_reason": 3}
    assert (fields[9]["miniport_name"], fields[9]["drop_reason"]) == ("Microsoft Hyper-V Network Adapter", 5)
    assert (fields[10]["correlation_id"], fields[10]["if_index"], fields[10]["drop_reason"]) == (77, 7, 4)


def test_data_path_periods(tmp_path):
    kinds = by_kind(scan_facts(write_events(tmp_path / "nvsc.etl", P, EVENTS)).facts)
    (path,) = kinds["data_path"]
    assert (path.if_index, path.synthetic_nbls, path.vf_nbls, path.switches, path.current_path) == (7, 4, 4, 2, "synthetic")
    assert [(p["path"], p["nbls"]) for p in path.periods] == [("synthetic", 3), ("vf", 4), ("synthetic", 1)]
    assert path.vf_bind_failures == 1 and path.dropped_nbls == 1
    assert {d.reason_code for d in kinds["drop"]} == {5, 4}


def test_a_32_bit_producer_has_4_byte_pointers():
    payload = memoryview(u32(2) + u32(0xA0001000) + u64(5) + u32(9))
    assert netvsc.decode(19, 0, payload, pointer_size=4)["nbl"] == 0xA0001000


@pytest.mark.parametrize("key", sorted(netvsc.LAYOUTS))
def test_layouts_agree_with_etl_parser(key):
    """A second source for the versions etl-parser knows (its manifest predates some): one of our
    revisions is its layout. Every version and revision is checked against the per-release manifest
    field lists in test_layout_sources.py."""
    pytest.importorskip("etl.parsers.etw.Microsoft_Windows_Hyper_V_Netvsc")
    theirs = etl_parser_types("Microsoft_Windows_Hyper_V_Netvsc", *key)
    if theirs is None:
        pytest.skip(f"etl-parser's manifest has no netvsc {key}")
    layouts = netvsc.LAYOUTS[key]
    assert theirs in [layout_as_etl_parser(l.fields) for l in (layouts if isinstance(layouts, tuple) else (layouts,))]


def periods_by_sorting(events: list[tuple[int, str]]) -> list[tuple[str, int, int, int]]:
    """The reference: sort by time, then group consecutive NBLs of one path."""
    out: list[list] = []
    for t, path in sorted(events):
        if out and out[-1][0] == path:
            out[-1][2], out[-1][3] = t, out[-1][3] + 1
        else:
            out.append([path, t, t, 1])
    return [tuple(run) for run in out]


def interleaved_like_per_cpu_buffers(events: list[tuple[int, str]], cpus: int, buffer_events: int) -> list:
    """Events as a reader sees them: each processor's events in order, flushed in buffers, buffers interleaved."""
    per_cpu = [events[i::cpus] for i in range(cpus)]
    buffers = [chunk[k:k + buffer_events] for chunk in per_cpu for k in range(0, len(chunk), buffer_events)]
    buffers.sort(key=lambda b: b[-1][0])  # a buffer is written when it fills: by its last event
    return [e for b in buffers for e in b]


@pytest.mark.parametrize("switch_times", [[600], [300, 700], [100, 200, 800]])
@pytest.mark.parametrize("cpus,buffer_events", [(1, 50), (2, 64), (4, 30)])
def test_timeline_periods_do_not_depend_on_read_order(switch_times, cpus, buffer_events):
    from diag.facts.overlay import PathTimeline

    paths = ["vf", "synthetic"]
    events = [(t * 10, paths[sum(t >= s for s in switch_times) % 2]) for t in range(1000)]
    timeline = PathTimeline()
    for t, path in interleaved_like_per_cpu_buffers(events, cpus, buffer_events):
        timeline.add(t, path)
    expected = periods_by_sorting(events)
    assert [tuple(run[:4]) for run in timeline.runs] == expected
    assert timeline.switches == len(switch_times) and timeline.not_split == 0
    last_vf, first_synthetic = timeline.fallback()
    moves = [(a[2], b[1]) for a, b in zip(expected, expected[1:]) if (a[0], b[0]) == ("vf", "synthetic")]
    assert (last_vf, first_synthetic) == (moves[-1] if moves else (None, None))


def test_an_nbl_of_the_other_path_inside_a_period_splits_it():
    from diag.facts.overlay import PathTimeline

    timeline = PathTimeline()
    for t in (0, 10, 20, 30, 40):
        timeline.add(t, "vf")
    timeline.add(25, "synthetic")
    assert [(r[0], r[1], r[2]) for r in timeline.runs] == [("vf", 0, 25), ("synthetic", 25, 25), ("vf", 25, 40)]
    assert sum(r[3] for r in timeline.runs) == 6 and timeline.runs[0][4] and not timeline.runs[1][4]


def test_the_synthesizer_writes_vf_bind_failed_as_its_build_does():
    # 39 gains VfSerialNumber, LowestIfIndex and MiniportName on 24H2 (jdu2600's field lists of 21H2 and 24H2)
    from diag.decode.fields import LAYOUT_NOTE
    from diag.synth import netvsc as synth_netvsc

    old = synth_netvsc.encode_vf_bind_failed(status=0xC0000001, reason=3, build=22631)
    assert len(old) == 8
    new = synth_netvsc.encode_vf_bind_failed(status=0xC0000001, reason=3, build=26100, serial=7, lowest_if_index=21,
                                             miniport="Mellanox ConnectX-5 Virtual Adapter")
    fields = netvsc.decode(39, 0, memoryview(new), 8, 26100)
    assert LAYOUT_NOTE not in fields
    assert (fields["failure_reason"], fields["vf_serial_number"], fields["lowest_if_index"], fields["miniport_name"]) \
        == (3, 7, 21, "Mellanox ConnectX-5 Virtual Adapter")
    assert LAYOUT_NOTE not in netvsc.decode(39, 0, memoryview(old), 8, 22631)
