"""A trace that cannot tell the whole story: pktmon ran with ``--log-mode circular`` and the log
wrapped (the first minute is gone: packets show up mid-path, appearance 3 without 1 and 2), the
session lost events under load (EventsLost in the header, a buffer flagged events-lost), and the
default ``--pkt-size 128`` cut every larger frame to 128 bytes. Otherwise the host is healthy.
A correct diagnosis reports the three trace-quality problems and no network problem.
"""

from __future__ import annotations

from diag.synth import pktmon as pm
from diag.synth.etlwriter import EVENT_TRACE_FILE_MODE_CIRCULAR, RELOGGED_LOG_FILE_MODE
from diag.synth.scenarios.base import SECOND, START, ContainerHost, Finding, Params, Scenario, Story
from diag.synth.trace import TraceProfile

LOGGED_SIZE = 128
WRAPPED_SECONDS = 60  # of capture overwritten before the file was closed
LOST_EVENTS = 137


def build(params: Params) -> Story:
    mode = (RELOGGED_LOG_FILE_MODE & ~1 if params.compressed else 0) | EVENT_TRACE_FILE_MODE_CIRCULAR
    profile = TraceProfile(compressed=params.compressed, start_filetime=START, log_file_mode=mode,
                           logger_name="Relogger" if params.compressed else "PktMon")
    host = ContainerHost(params, profile=profile, logged_size_limit=LOGGED_SIZE)
    host.start = START + WRAPPED_SECONDS * SECOND
    host.end = host.start + int(params.duration * SECOND)
    host.healthy_traffic()
    events = host.builder.events
    # The log wrapped: the oldest events were overwritten; cut a few packets in the middle of their path.
    first_kept = sorted(e.filetime for e in events)[len(events) // 50 + 3] + 1
    overwritten = [e for e in events if e.filetime < first_kept]
    # Events lost under load on processor 1, half way through.
    lost_at = host.start + (host.end - host.start) // 2
    later_on_cpu1 = [e for e in events if e.cpu == 1 and e.filetime >= lost_at][:LOST_EVENTS]
    gone = {id(e) for e in overwritten + later_on_cpu1}
    host.builder.events = [e for e in events if id(e) not in gone]
    host.builder.lose_events(lost_at, len(later_on_cpu1), cpu=1)
    kept = [e for e in host.builder.events if e.provider == pm.PROVIDER and e.event_id == pm.EVENT_PACKET]
    truncated = sum(1 for e in kept if int.from_bytes(e.payload[30:32], "little") > LOGGED_SIZE)
    partial_paths = len({int.from_bytes(e.payload[:8], "little") for e in overwritten}
                        & {int.from_bytes(e.payload[:8], "little") for e in kept})
    expect = [
        Finding("trace-events-lost", {"events_lost": len(later_on_cpu1), "cpu": 1}),
        Finding("trace-payload-truncated", {"logged_size": LOGGED_SIZE, "truncated_events": truncated}),
        Finding("trace-circular-wrapped", {"log_file_mode": mode, "first_event_filetime": first_kept,
                                           "start_filetime": START, "partial_paths": partial_paths}),
    ]
    return host.story(expect, facts={"drops": [], "overwritten_events": len(overwritten),
                                     "lost_events": len(later_on_cpu1)})


SCENARIO = Scenario(
    name="lossy-trace",
    title="Lossy trace: events lost, 128-byte truncation, a wrapped circular log",
    summary="Healthy traffic captured badly: circular log that wrapped, 137 events lost on CPU 1, frames cut to "
            "128 bytes. Only trace-quality findings.",
    build=build,
    seed=1313,
    hosts=2,
)
