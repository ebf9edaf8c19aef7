"""The reader against an independent one: dissect.etl, on every real sample."""

from __future__ import annotations

import collections
import uuid
from datetime import timezone

import pytest

from samples import sample_params

dissect_etl = pytest.importorskip("dissect.etl.etl", reason="dissect.etl is the independent reader (test extra)")
from dissect.etl.headers.event import EventHeader  # noqa: E402
from dissect.etl.headers.system import SystemSpecificHeader  # noqa: E402

from diag.read import open_trace  # noqa: E402


def _dissect_records(path):
    """(provider, event id, version) per record as dissect.etl sees it, GUID byte order corrected."""
    keys, times = [], []
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            provider = h.provider_id
            if isinstance(h, EventHeader):
                # dissect.etl builds modern provider GUIDs with uuid(bytes=) instead of bytes_le.
                provider = uuid.UUID(bytes_le=provider.bytes)
                key = (str(provider), h.descriptor.id, h.descriptor.version)
            elif isinstance(h, SystemSpecificHeader):
                key = (str(provider), h.opcode, h.header.Version & 0xFF)
            else:
                key = (str(provider), None, None)
            keys.append(key)
            try:
                times.append(h.timestamp)
            except Exception:  # headers without a timestamp (message records)
                times.append(None)
    return keys, times


@pytest.fixture(scope="module", params=sample_params())
def pair(request):
    path = request.param
    with open_trace(path) as trace:
        ours = [(r.provider, r.event_id, r.version, r.time, r.header_type) for r in trace.records()]
        stats = trace.stats
    theirs, their_times = _dissect_records(path)
    return path, ours, stats, theirs, their_times


def test_record_count_equals_dissect(pair):
    path, ours, stats, theirs, _ = pair
    assert len(ours) == len(theirs), path.name
    assert stats.records.records == len(ours)
    assert stats.buffers.buffers_skipped == 0 and stats.records.corrupt_buffers == 0


def test_provider_guids_match_in_order(pair):
    _, ours, _, theirs, _ = pair
    assert [o[0] for o in ours] == [t[0] for t in theirs]


def test_event_ids_and_versions_match(pair):
    _, ours, _, theirs, _ = pair
    mismatches = [(o, t) for o, t in zip(ours, theirs) if t[1] is not None and (o[1], o[2]) != (t[1], t[2])]
    assert mismatches == []


def test_timestamps_match_within_rounding(pair):
    _, ours, _, _, their_times = pair
    compared = 0
    for o, t in zip(ours, their_times):
        if t is None or o[3] is None:
            continue
        delta = abs((o[3] - t.replace(tzinfo=timezone.utc) if t.tzinfo is None else o[3] - t).total_seconds())
        # dissect.etl truncates twice (float scale, then microseconds); we keep 100 ns ticks exactly.
        assert delta <= 3e-6
        compared += 1
    assert compared > 0


def test_provider_counts_match(pair):
    _, ours, _, theirs, _ = pair
    assert collections.Counter(o[0] for o in ours) == collections.Counter(t[0] for t in theirs)
