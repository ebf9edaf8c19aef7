"""``--size``: bulk copies of template buffers must be whole traces to an independent reader: the
right number of records, timestamps in order on each processor, one PktGroupId per packet, and
pktmon counters that agree with the packets in the file."""

from __future__ import annotations

import struct
import uuid
from collections import Counter, defaultdict

import pytest

pytest.importorskip("dissect.etl")
from dissect.etl.etl import ETL  # noqa: E402

from diag.synth.generate import parse_size, synthesize  # noqa: E402

PKTMON = uuid.UUID("4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac")
SIZE = 4 * 1024 * 1024


@pytest.fixture(scope="module", params=[True, False], ids=["compressed", "plain"])
def big(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("bulk") / "big.etl"
    result = synthesize("healthy-container-host", path, size=SIZE, compressed=request.param)
    return result


def test_size_is_reached_without_overshooting_much(big):
    size = big.trace.stat().st_size
    assert SIZE <= size <= SIZE * 1.15
    assert big.bulk_packets > 0


def _pktmon_events(path):
    with path.open("rb") as fh:
        etl = ETL(fh)
        for buffer in etl.buffers():
            cpu = int(buffer.header.ProcessorIndex)
            for record in buffer:
                h = record.header
                if type(h).__name__ == "EventHeader" and uuid.UUID(bytes_le=h.provider_id.bytes) == PKTMON:
                    yield cpu, h


def test_records_times_and_packets_are_whole(big):
    truth = __import__("json").loads(big.truth.read_text(encoding="utf-8"))
    last_time: dict[int, int] = {}
    appearances: dict[int, list[int]] = defaultdict(list)
    packets_at: Counter = Counter()
    counters: dict[tuple[int, int], tuple[int, int]] = {}
    pktmon_events = 0
    for cpu, h in _pktmon_events(big.trace):
        pktmon_events += 1
        assert h.time_delta >= last_time.get(cpu, 0), "timestamps go back on one processor"
        last_time[cpu] = h.time_delta
        payload = bytes(h.payload)
        if h.header.Id in (160, 170):
            group, _n, appearance, direction, _t, component, edge = struct.unpack_from("<QHHHHHH", payload)
            appearances[group].append(appearance)
            packets_at[(component, edge, direction)] += 1
        elif h.header.Id == 90:
            component = struct.unpack_from("<H", payload)[0]
            end = payload.index(b"\0\0", 2)
            end += end % 2  # the UTF-16 terminator sits on an even offset
            edge, _in_tag, packets_in, _b, _out_tag, packets_out, _b2 = struct.unpack_from("<HHQQHQQ", payload, end + 2)
            counters[(component, edge)] = (packets_in, packets_out)
    by_provider = truth["trace"]["events_by_provider"][str(PKTMON)]
    assert pktmon_events == sum(by_provider.values())
    assert len(appearances) == truth["trace"]["pktmon_packets"]
    for seen in appearances.values():
        assert sorted(seen) == list(range(1, len(seen) + 1))
    for (component, edge), (packets_in, packets_out) in counters.items():
        assert packets_in == packets_at[(component, edge, 3)]  # Rx
        assert packets_out == packets_at[(component, edge, 4)]  # Tx


def test_size_arguments_are_checked(tmp_path):
    from diag.errors import BadInputError

    assert parse_size("1G") == 1024**3 and parse_size("64K") == 65536 and parse_size("1000") == 1000
    for bad in ("", "1T", "big", "-5M"):
        with pytest.raises(BadInputError):
            parse_size(bad)
    with pytest.raises(BadInputError, match="--duration"):
        synthesize("healthy-container-host", tmp_path / "x.etl", size="200M", duration=0.0001)
