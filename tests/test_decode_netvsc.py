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
    pytest.importorskip("etl.parsers.etw.Microsoft_Windows_Hyper_V_Netvsc")
    theirs = etl_parser_types("Microsoft_Windows_Hyper_V_Netvsc", *key)
    assert theirs is not None
    assert layout_as_etl_parser(netvsc.LAYOUTS[key].fields) == theirs
