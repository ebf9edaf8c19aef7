"""Scenario -> files: the trace, its ground truth (``NAME.truth.json``) and any host-info text.

This is what ``wnvdiag synth`` runs. Every problem with the arguments raises ``BadInputError``
with one line that names it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from diag.errors import BadInputError
from diag.synth.bulk import Filler
from diag.synth.compress import compress
from diag.synth.etlwriter import event_record
from diag.synth.scenarios import FINDINGS, Params, Scenario, Story, registry
from diag.synth.trace import WrittenTrace

TRUTH_SCHEMA = "wnvdiag.synth-truth/1"
MAX_SIZE = 64 * 1024**3
MAX_DURATION = 7 * 24 * 3600.0
MAX_RATE = 1_000_000.0
MIN_BUILD, MAX_BUILD = 10240, 99999
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SAMPLE_BYTES = 256 * 1024  # of scenario records compressed to estimate the scenario's share of the file


@dataclass
class SynthResult:
    scenario: str
    trace: Path
    truth: Path
    host_info: list[Path]
    written: WrittenTrace
    expect: list[str]
    bulk_packets: int
    seconds: float


def scenario_names() -> list[str]:
    return list(registry())


__all__ = ["SynthResult", "get_scenario", "parse_size", "registry", "scenario_names", "synthesize",
           "truth_path_for"]


def get_scenario(name: str) -> Scenario:
    scenarios = registry()
    if name not in scenarios:
        raise BadInputError(f"unknown scenario {name!r}; `wnvdiag synth list` shows the {len(scenarios)} there are")
    return scenarios[name]


def parse_size(text: str | int | None) -> int | None:
    """``"1G"``, ``"500M"``, ``"64K"`` or a byte count -> bytes (binary units)."""
    if text is None or isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*", text.upper())
    if not m:
        raise BadInputError(f"--size {text!r} is not a size (examples: 1G, 500M, 64K, 1048576)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def truth_path_for(trace: Path) -> Path:
    return trace.with_name(trace.stem + ".truth.json")


def synthesize(
    scenario: str,
    out: str | Path,
    *,
    seed: int | None = None,
    size: int | str | None = None,
    compressed: bool | None = None,
    duration: float | None = None,
    rate: float | None = None,
    hosts: int | None = None,
    build: int | None = None,
) -> SynthResult:
    """Write scenario ``scenario`` to ``out`` with its ground truth beside it.

    ``build``: the Windows build the trace claims (its logfile header), and so how pktmon numbers packet
    snapshots in it: one PktGroupId per packet before 26100, one per snapshot from 26100 on.
    """
    began = time.perf_counter()
    spec = get_scenario(scenario)
    params = _params(spec, seed=seed, size=parse_size(size), compressed=compressed, duration=duration, rate=rate,
                     hosts=hosts)
    if build is not None and not MIN_BUILD <= build <= MAX_BUILD:
        raise BadInputError(f"--build {build} is not a Windows 10/11 or Server build ({MIN_BUILD}..{MAX_BUILD})")
    trace = _output_path(out)
    story = spec.build(params)
    if build is not None:
        story.builder.profile = replace(story.builder.profile, os_build=build)
    filler = _filler(story, params)
    if story.capture is not None and story.rundown_at is not None:
        story.capture.rundown(
            story.rundown_at,
            extra_packets=filler.flow_counts() if filler else None,
            extra_bytes=filler.flow_bytes() if filler else None,
        )
    written = story.builder.write(trace, filler, end_filetime=story.end_filetime)
    host_files = _write_host_info(trace, story)
    truth_file = truth_path_for(trace)
    truth = _truth(spec, params, story, written, filler, host_files)
    truth_file.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return SynthResult(spec.name, trace, truth_file, host_files, written, [f.id for f in story.expect],
                       filler.packet_count if filler else 0, time.perf_counter() - began)


def _params(spec: Scenario, **given: Any) -> Params:
    for name in sorted(spec.fixed):
        if given.get(name) is not None:
            raise BadInputError(f"--{name} does not apply to {spec.name}: its traffic is fixed")
    p = spec.params(**given)
    if not MAX_DURATION >= p.duration > 0:
        raise BadInputError(f"--duration {p.duration:g} must be above 0 and at most {MAX_DURATION:g} seconds")
    if not MAX_RATE >= p.rate > 0:
        raise BadInputError(f"--rate {p.rate:g} must be above 0 and at most {MAX_RATE:g} packets per second")
    if not spec.min_hosts <= p.hosts <= spec.max_hosts:
        raise BadInputError(f"--hosts {p.hosts} must be {spec.min_hosts}..{spec.max_hosts} for {spec.name}")
    if p.seed < 0:
        raise BadInputError(f"--seed {p.seed} must not be negative")
    if p.size is not None and not 0 < p.size <= MAX_SIZE:
        raise BadInputError(f"--size {p.size} must be above 0 and at most {MAX_SIZE // 1024**3} GiB")
    return p


def _output_path(out: str | Path) -> Path:
    path = Path(out)
    if path.is_dir():
        raise BadInputError("is a directory; give the trace's file name", path)
    if not path.parent.is_dir():
        raise BadInputError(f"folder {path.parent} does not exist", path)
    if path.suffix.lower() != ".etl":
        raise BadInputError("the trace's file name must end in .etl", path)
    return path


def _filler(story: Story, params: Params) -> Filler | None:
    if params.size is None or not story.bulk_packets:
        return None
    remaining = params.size - _estimated_file_bytes(story)
    if remaining <= 0:
        return None
    first_group = (story.capture.next_group if story.capture else 1) + 0x100_0000
    begin, end = story.bulk_window
    try:
        return Filler(story.builder.profile, story.bulk_packets, cpus=story.bulk_cpus, target_bytes=remaining,
                      begin_filetime=begin, end_filetime=end, first_group=first_group)
    except ValueError as exc:
        raise BadInputError(f"--size {params.size}: {exc}") from None


def _estimated_file_bytes(story: Story) -> int:
    """What the scenario's own events will take in the file: their records, compressed like a
    sample of them when the trace is compressed."""
    raw = story.builder.uncompressed_record_bytes
    if not story.builder.profile.compressed or not story.builder.events:
        return raw
    sample = bytearray()
    for e in story.builder.events:
        sample += event_record(e.provider, e.event_id, e.version, e.payload, 0)
        if len(sample) >= _SAMPLE_BYTES:
            break
    return int(raw * len(compress(bytes(sample))) / len(sample))


def _write_host_info(trace: Path, story: Story) -> list[Path]:
    paths = []
    for suffix, text in story.host_info.items():
        path = trace.with_name(f"{trace.stem}.{suffix}")
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths


def _truth(spec: Scenario, params: Params, story: Story, written: WrittenTrace, filler: Filler | None,
           host_files: list[Path]) -> dict[str, Any]:
    expected = {f.id for f in story.expect}
    unknown = expected - set(FINDINGS)
    if unknown:
        raise ValueError(f"scenario {spec.name} expects unknown findings {sorted(unknown)}")
    profile = story.builder.profile
    capture = story.capture
    return {
        "schema": TRUTH_SCHEMA,
        "scenario": spec.name,
        "title": spec.title,
        "parameters": {"seed": params.seed, "duration_s": params.duration, "rate_pps": params.rate,
                       "hosts": params.hosts, "compressed": params.compressed, "size": params.size},
        "trace": {
            "file": Path(written.path).name,
            "compressed": written.compressed,
            "os_build": profile.os_build,
            "packet_numbering": profile.numbering,
            "cpu_count": profile.cpu_count,
            "start_filetime": written.start_filetime,
            "end_filetime": written.end_filetime,
            "records": written.records,
            "events_lost": written.events_lost,
            "events_by_provider": written.events_by_provider,
            "pktmon_packets": (capture.packets if capture else 0) + (filler.packet_count if filler else 0),
            "bulk_packets": filler.packet_count if filler else 0,
            "self_describing": profile.self_describing,
        },
        "host_info": [p.name for p in host_files],
        "expect": [f.as_json() for f in story.expect],
        "must_not": sorted(set(FINDINGS) - expected),
        **story.facts,
    }
