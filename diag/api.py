"""The library surface of wnvdiag. The CLI is a thin layer over these functions.

    from diag import api
    summary = api.inspect("trace.etl")
    result = api.check("trace.etl", db_path="wnvdiag.db", out_dir="reports")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from diag.codes import (EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, EXIT_INCONCLUSIVE, EXIT_INTERNAL,  # noqa: F401
                        EXIT_INTERRUPTED, RULES_MEMORY_MB, RULES_TIMEOUT, Severity)
from diag.decode import pktmon
from diag.engine import load_rules, require_engine, run_rules, select_rules
from diag.engine.child import Limits
from diag.engine.quality_gate import apply_quality_gate
from diag.errors import AnalysisFailed, BadInputError
from diag.facts.models import TraceQuality
from diag.hostinfo import load_host_info
from diag.inspect import Scan, TraceSummary, scan_trace
from diag.report import HostInfoFile, RunReport, TraceInfo, parse_formats, render
from diag.report.content import packet_filter, where
from diag.report.model import fact_records, utc_now
from diag.report.jsonout import check_document
from diag.report.pcapng import export_finding_pcaps
from diag.report.redact import Redactor, redact_data, redact_run
from diag.select import PacketFilter
from diag.resources import data_dir
from diag.store import (can_create_in, check_writable, find_reusable, fingerprint_files, load_run, redaction_key,
                        resolve_run, save_run)

Progress = Callable[[int, int], None]

def inspect(path: str | Path, progress: Progress | None = None, *, redact: bool = False,
            redact_key: bytes | None = None, select: PacketFilter | None = None) -> TraceSummary:
    """Summarise a trace: header, providers/events, read and decode coverage, pktmon components and drops.

    ``redact`` pseudonymizes the file's path, the logger's name and file, and the components' names,
    addresses and properties as ``check --redact`` does (a random key unless ``redact_key``); provider,
    event and drop reason names are Windows' own and stay. ``select`` looks at the packets it keeps only
    (``diag.select``; the summary says what it kept and how many packet events it left out).
    """
    summary = scan_trace(path, progress, select=select).summary
    return redact_summary(summary, Redactor(redact_key)) if redact else summary


def redact_message(message: str, paths: list[str | Path] = ()) -> str:
    """An error message of a redacted run: the files it names (``paths``, and any absolute path) and any
    address become pseudonyms. (A fresh key: the message may come before any database is usable.)"""
    redactor = Redactor()
    for path in sorted(map(str, paths), key=len, reverse=True):
        if path:
            message = message.replace(path, redactor.path(path))
    return redact_data({"message": message}, redactor)["message"]


def redact_summary(summary: TraceSummary, redactor: Redactor) -> TraceSummary:
    data = summary.model_dump(mode="json", by_alias=True)
    providers = data.pop("providers")
    reasons = data["pktmon"].pop("drops_by_reason")
    data = redact_data(data, redactor)
    data["providers"], data["pktmon"]["drops_by_reason"] = providers, reasons
    return TraceSummary.model_validate(data)


def render_inspect_text(s: TraceSummary) -> str:
    """The human-readable form of ``inspect``: what ``pktmon etl2txt --stats-only`` gives, and more."""
    h, r, d, p = s.header, s.read, s.decode, s.pktmon
    lines = [
        f"Trace       {s.path}",
        f"Logger      {h.logger_name} ({', '.join(h.modes) or 'no mode flags'}{', circular' if h.circular else ''})",
        f"Windows     {h.os_version} build {h.os_build}, {h.cpu_count} CPUs, {h.pointer_size * 8}-bit",
        f"Time (UTC)  {_when(h.start)} → {_when(h.end)}"
        + (f"  ({h.duration_seconds:.3f} s)" if h.duration_seconds is not None else ""),
        f"Events      {_when(r.first_event)} → {_when(r.last_event)}",
        f"Clock       {h.clock}, buffers of {h.buffer_size} bytes"
        + (", compressed" if h.compressed_buffers else ""),
        "",
        f"Read        {r.records} records in {r.buffers_read} buffers "
        f"({_size(r.bytes_decompressed)} decompressed from a {_size(r.file_size)} file)",
        f"Lost        {h.events_lost} events, {h.buffers_lost} buffers (header); "
        f"{r.buffers_flagged_events_lost} buffers flagged events-lost",
        f"Skipped     {r.buffers_skipped} buffers ({r.bytes_skipped} bytes), "
        f"{r.buffers_with_broken_records} buffers with unreadable records ({r.bytes_unparsed} bytes)",
        f"Decoded     {d.decodable_records} records ("
        + ", ".join(f"{k} {v}" for k, v in sorted(d.by_layer.items()))
        + f"); {d.undecodable_records} with no layout (kept raw); {d.decode_errors} did not fit their layout",
    ]
    lines += [f"WARNING     {w}" for w in r.warnings]
    lines += ["", "Providers"]
    for prov in s.providers:
        lines.append(f"  {prov.records:>9}  {prov.name or '(unknown)'}  {{{prov.guid}}}")
        for e in prov.events:
            label = f" {e.name}" if e.name else ""
            how = e.decoder or "no layout: kept raw"
            if e.failed:
                how += f"; {e.failed} did not fit: {e.first_error}"
            if e.layout_unsure:
                how += f"; {e.layout_unsure} with the layout unsure: {e.layout_note}"
            lines.append(f"  {e.count:>9}    id {e.event_id} v{e.version}{label} [{how}]")
    if p.present:
        lines += ["", f"PktMon      {p.packets} packet events, {p.drops} drop events ({p.dropped_frames} distinct "
                      f"frames), {len(p.components)} components"]
        if p.filter:
            lines.append(f"FILTER      kept {p.filter}; {p.packet_events_left_out} packet events left out "
                         "(the counts below are of the packets kept)")
        if p.malformed_packet_events:
            lines.append(f"WARNING     {p.malformed_packet_events} malformed pktmon packet events")
        active = [c for c in p.components if c.packets or c.drops]
        lines.append(f"  Components that saw packets ({len(p.components) - len(active)} more without packets: see --json)")
        for c in active:
            lines.append(f"  {c.id:>5}  {c.type_name or c.type or '?':<16} {c.name or '?'}"
                         f"{' - ' + c.description if c.description else ''}  packets {c.packets}, drops {c.drops}")
        if p.drops_by_reason:
            lines.append(f"  Drops by reason (names from the {p.reason_names_from})")
            for reason in p.drops_by_reason:
                lines.append(f"  {reason.count:>9}  {reason.code:>5}  {reason.name}")
    return "\n".join(lines)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _when(value) -> str:
    return value.isoformat().replace("+00:00", "Z") if value else "?"


# -- check ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    run: RunReport  # as every output shows it: pseudonymized when the check was --redact (the database keeps it whole)
    run_id: str
    db_path: Path
    report_path: Path  # the Markdown report if written, else the first file written
    threshold: Severity
    reports: dict | None = None  # format -> files written
    pcaps: dict | None = None  # rule id -> ExportSummary of its evidence pcapng (check --pcap)
    reused: bool = False  # the run was stored already for the same trace, code, rules and options: not read again
    redacted: bool = False  # ``run`` is the redacted view

    @property
    def findings_at_threshold(self) -> list:
        """Problems found at or above the threshold (not the findings that say the trace could not answer)."""
        return [f for f in self.run.problem_findings if Severity(f.severity).rank >= self.threshold.rank]

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 1 findings at or above the threshold, 3 inconclusive (the trace could not answer,
        or not every rule ran and nothing was found), 0 we looked and found nothing."""
        if self.run.verdict == "inconclusive":
            return EXIT_INCONCLUSIVE
        if self.findings_at_threshold:
            return EXIT_FINDINGS
        return EXIT_CLEAN if self.run.complete else EXIT_INCONCLUSIVE

    def as_json(self) -> dict:
        """``check --json`` (``wnvdiag.check/2``, reports/schemas/check.schema.json): the JSON report's document
        of the run, and what this check did."""
        return check_document(
            self.run, redacted=self.redacted, db=str(self.db_path),
            reports={fmt: [str(p) for p in paths] for fmt, paths in (self.reports or {"md": [self.report_path]}).items()},
            pcaps={rule: str(summary.path) for rule, summary in (self.pcaps or {}).items()},
            threshold=self.threshold.value, findings_at_threshold=len(self.findings_at_threshold),
            exit_code=self.exit_code, reused=self.reused)


def check(
    path: str | Path,
    *,
    rule_dirs: list[Path] | tuple[Path, ...] = (),
    host_info: list[Path] | tuple[Path, ...] = (),
    only: list[str] | None = None,
    skip: list[str] | None = None,
    db_path: str | Path = "wnvdiag.db",
    out_dir: str | Path = ".",
    threshold: Severity = Severity.low,
    progress: Progress | None = None,
    arguments: list[str] | None = None,
    report_formats: str | list[str] = "md",
    case_id: str | None = None,
    redact: bool = False,
    pcap_dir: str | Path | None = None,
    rules_timeout: float | None = RULES_TIMEOUT,
    rules_memory_mb: int | None = RULES_MEMORY_MB,
    phase: Callable[[str], None] | None = None,
    reuse: bool = True,
    select: PacketFilter | None = None,
) -> CheckResult:
    """Read a trace, build facts, run the rules pack (plus ``rule_dirs``), store the run, write the report.

    ``only``/``skip`` select rules by id or tag. Each rules worker (the shipped pack's, and the one for
    ``rule_dirs``) may take ``rules_timeout`` seconds and ``rules_memory_mb`` MiB (None: unbounded). Raises ``BadTraceError``/``BadInputError`` for
    unusable input (nothing is stored), and ``AnalysisFailed`` when the rules could not run; that
    failed run is stored and reported first.

    ``reuse``: when the database holds a whole run of the same question (the same trace bytes, wnvdiag
    code and knowledge, rules, rule selection, host-info files, case, threshold and limits), that run is
    reported again without reading the trace (``CheckResult.reused``). ``phase(text)`` is told each
    phase as it starts; ``progress(done, total)`` the bytes read. ``select`` (``diag.select``) looks at the
    packets it keeps only; the run records the filter and what it left out, and every report says so.
    """
    phase = phase or _silent
    path, db_path, out_dir = Path(path), Path(db_path), Path(out_dir)
    for d in rule_dirs:
        if not Path(d).is_dir():
            raise BadInputError("rules directory does not exist", d)
    all_rule_dirs = [data_dir("rules"), *map(Path, rule_dirs)]
    if only or skip:  # refuse a typo in a rule id or tag before the long read
        select_rules(load_rules(all_rule_dirs)[0], only, skip)
    _check_out_dir(out_dir, "--out")
    if pcap_dir is not None:
        _check_out_dir(Path(pcap_dir), "--pcap")
    check_writable(db_path)
    formats = parse_formats(report_formats)  # a typo in --report: exit 2 before the long read
    if pcap_dir is not None and redact:
        raise BadInputError("--pcap writes the trace's real frames and cannot be redacted; leave out --pcap or --redact")
    info = load_host_info(list(map(Path, host_info))) if host_info else None  # bad files: exit 2 before the read
    trace_sha256 = _sha256(path) if path.is_file() else None
    select = select if select is not None and select.active else None
    input_key = _input_key(trace_sha256, all_rule_dirs, only, skip, host_info, case_id, threshold,
                           rules_timeout, rules_memory_mb, select) if trace_sha256 else None
    stored = find_reusable(db_path, input_key) if reuse and input_key else None
    if stored is not None:
        phase(f"reusing run {stored}: the same trace, rules and options were checked before")
        return _report_run(load_run(db_path, stored), path, db_path, out_dir, formats, threshold, redact, pcap_dir,
                           phase, progress, reused=True, select=select)
    require_engine()  # a broken install says so now, not after the read
    started = utc_now()
    scan = scan_trace(path, progress, facts=True, select=select)
    phase("building facts")
    facts = build_facts(scan, info)
    failure = None
    phase("running the rules")
    try:
        result = run_rules(facts, all_rule_dirs, only=only or None, skip=skip or None, timeout=Limits(rules_timeout, rules_memory_mb))
        result = result.model_copy(update={"findings": apply_quality_gate(result.findings)})
    except AnalysisFailed as exc:
        failure, result = str(exc), None
    notes = info.warnings if info is not None else []
    host_files = [HostInfoFile(path=str(p), sha256=_sha256(Path(p)), size=Path(p).stat().st_size,
                               warnings=[w for w in notes if w.startswith(f"{p}:")]) for p in host_info]
    recorded: dict = {"argv": arguments or []}
    if select is not None:
        recorded["filter"] = {"kept": scan.summary.pktmon.filter,
                              "packet_events_left_out": scan.summary.pktmon.packet_events_left_out}
    fields = dict(started=started, quality=_quality(scan), arguments=recorded,
                  case_id=case_id, rules_version=fingerprint_files(all_rule_dirs), host_info=host_files,
                  facts=fact_records(facts),
                  min_severity=threshold.value)
    trace_info = _trace_info(path, scan, trace_sha256)
    run = (RunReport.from_engine(result, trace=trace_info, **fields) if result is not None
           else RunReport(trace=trace_info, failure=failure, **fields))
    run = run.model_copy(update={"finished": utc_now()})
    phase("storing the run")
    run_id = save_run(db_path, run, input_key=input_key)
    if run_id != run.run_id:  # the same analysis is stored already: report that run
        run = load_run(db_path, run_id)
    return _report_run(run, path, db_path, out_dir, formats, threshold, redact, pcap_dir, phase, progress,
                       select=select)


def _report_run(run: RunReport, path: Path, db_path: Path, out_dir: Path, formats: list[str], threshold: Severity,
                redact: bool, pcap_dir: str | Path | None, phase: Callable[[str], None], progress: Progress | None,
                *, reused: bool = False, select: PacketFilter | None = None) -> CheckResult:
    run_id = run.run_id
    key = redaction_key(db_path) if redact else None
    phase("writing the reports")
    try:
        reports = render(run, formats, out_dir, redact=redact, redact_key=key)
    except BadInputError as exc:
        raise BadInputError(f"{exc.message}; the run itself was stored: {run_id} in {db_path} (write the reports "
                            f"again with: wnvdiag report {run_id} --db {db_path} --out DIR)", exc.path) from None
    report_path = (reports.get("md") or next(iter(reports.values())))[0]
    pcaps = export_finding_pcaps(path, run, pcap_dir, progress=progress, select=select,
                                 phase=lambda text: phase(f"evidence pcapng, {text}")) if pcap_dir is not None else {}
    shown = redact_run(run, redactor=Redactor(key)) if redact else run  # what stdout and stderr may say, too
    if run.failure is not None:
        raise AnalysisFailed(f"analysis failed, no conclusion (run {run_id} stored, report {report_path}): "
                             f"{shown.failure}", shown.trace.path)
    return CheckResult(shown, run_id, db_path, report_path, threshold, reports, pcaps, reused, redact)


def _silent(_text: str) -> None:
    """No one is told the phases."""


def _input_key(trace_sha256: str, rule_dirs: list[Path], only: list[str] | None, skip: list[str] | None,
               host_info: list[Path] | tuple[Path, ...], case_id: str | None, threshold: Severity,
               rules_timeout: float | None, rules_memory_mb: int | None, select: PacketFilter | None = None) -> str:
    """What a check is asked, before it reads the trace: two checks with the same key give the same run.
    The code and knowledge are fingerprinted by content, so an edited checkout never reuses a stale run."""
    import json

    import diag

    parts = {
        "trace": trace_sha256, "code": fingerprint_files([Path(diag.__file__).parent, data_dir("knowledge")]),
        "rules": fingerprint_files(rule_dirs), "only": sorted(only or []), "skip": sorted(skip or []),
        "host_info": [_sha256(Path(p)) for p in host_info], "case": case_id, "threshold": threshold.value,
        "limits": [rules_timeout, rules_memory_mb],
        "filter": repr(select) if select is not None else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _check_out_dir(directory: Path, option: str) -> None:
    """Refuse, before the long read, a directory that cannot take the files (it may not exist yet)."""
    if directory.exists() and not directory.is_dir():
        raise BadInputError(f"{option} is not a directory", directory)
    existing = next((p for p in (directory, *directory.absolute().parents) if p.exists()), None)
    if existing is not None and not can_create_in(existing):
        raise BadInputError(f"{option}: cannot write files here", directory)


def trace_facts(path: str | Path, host_info: list[str | Path] = (), progress: Progress | None = None) -> list:
    """The facts the rules would read for ``path`` (with its host-info files): what ``check`` builds,
    without running or storing anything (``rules test --trace``)."""
    info = load_host_info(list(map(Path, host_info))) if host_info else None
    return build_facts(scan_trace(Path(path), progress, facts=True), info)


def finding_facts(db_path: str | Path, ref: str) -> tuple[list[dict], str]:
    """The facts behind the first evidence row of a stored finding, ``RUN:RULE`` (RUN an id, a unique prefix
    or ``latest``), and a phrase naming it: what ``rules new --from-finding`` starts from."""
    run_ref, sep, rule_id = ref.rpartition(":")
    if not sep or not run_ref or not rule_id:
        raise BadInputError(f"--from-finding {ref}: write RUN:RULE, e.g. latest:vlan-drops")
    run = load_run(db_path, resolve_run(db_path, run_ref))
    finding = next((f for f in run.findings if f.rule_id == rule_id), None)
    if finding is None:
        fired = ", ".join(sorted({f.rule_id for f in run.findings})) or "none"
        raise BadInputError(f"run {run.run_id} has no finding of rule {rule_id!r} (its findings: {fired})", db_path)
    ids = finding.evidence_fact_ids[0] if finding.evidence_fact_ids else finding.fact_ids[:1]
    facts = [fact for fact in (run.fact(i) for i in ids) if fact is not None]
    return facts, f"finding {rule_id} of run {run.run_id}"


def build_facts(scan: Scan, host_info=None) -> list:
    """Facts for the rules: the host's network model from every provider (and host info), and the
    trace's quality. ``scan`` must come from ``scan_trace(..., facts=True)``."""
    reason_names = scan.decoder.value_map(pktmon.PROVIDER, "DropReason")
    model = scan.builder.facts(scan.pktmon, host_info, stats=scan.decoder.stats, reason_names=reason_names)
    return [*model, _quality(scan)]


def _quality(scan: Scan) -> TraceQuality:
    s = scan.summary
    return TraceQuality(
        events_lost=s.header.events_lost, buffers_lost=s.header.buffers_lost,
        records_undecoded=(s.decode.undecodable_records + s.decode.decode_errors + s.pktmon.malformed_packet_events
                           + s.read.records_bad_time),
        buffers_skipped=s.read.buffers_skipped + s.read.buffers_with_broken_records, truncated=s.read.truncated,
    )


def _trace_info(path: Path, scan: Scan, sha256: str | None = None) -> TraceInfo:
    s = scan.summary
    return TraceInfo(
        path=str(path), sha256=sha256 or _sha256(path), size=s.read.file_size,
        format="pktmon" if s.pktmon.present else "etl", os_build=s.header.os_build,
        start_time=s.header.start, end_time=s.header.end, records_read=s.read.records,
        records_decoded=s.decode.decodable_records,
        header=s.header.model_dump(mode="json", exclude={"start", "end"}),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verdict_line(result: CheckResult) -> str:
    """One line: the verdict, and what it rests on (the first problem, or why the trace cannot answer)."""
    run = result.run
    head = f"Run {result.run_id}: {run.verdict.replace('_', ' ')}"
    if run.verdict == "inconclusive":
        return f"{head}: {run.inconclusive[0].summary}"
    if run.verdict == "findings":
        top = run.problem_findings[0]
        place = where(top)
        return (f"{head} ({len(run.findings)} finding(s), {len(result.findings_at_threshold)} at or above "
                f"{result.threshold.value}); first: {top.title}{f' at {place}' if place else ''} [{top.severity}]")
    if run.verdict == "incomplete":
        return f"{head}: no findings at or above {result.threshold.value}, but not every rule ran"
    return f"{head} ({len(run.findings)} finding(s), none at or above {result.threshold.value})" if run.findings \
        else f"{head}"


def render_check_text(result: CheckResult) -> str:
    run = result.run
    lines = [verdict_line(result)]
    selected = packet_filter(run)
    if selected:
        lines.append(f"  FILTER: kept {selected['kept']}; {selected['packet_events_left_out']} packet event(s) left "
                     "out, so this speaks of the packets kept only")
    for f in run.shown_findings:
        lines.append(f"  [{f.severity}/{f.confidence}] {f.rule_id}: {f.title}")
        lines.append(f"      {f.summary}")
    q = run.quality
    if q.events_lost or q.buffers_lost or q.buffers_skipped or q.records_undecoded or q.truncated:
        lines.append(f"  Trace quality: {q.events_lost} events and {q.buffers_lost} buffers lost by the session, "
                     f"{q.buffers_skipped} buffers unreadable, {q.records_undecoded} records undecoded"
                     + (", file truncated" if q.truncated else ""))
    for h in run.host_info:
        lines += [f"  HOST INFO: {w}" for w in h.warnings]
    found = {f.rule_id for f in run.findings}
    for e in run.rule_errors:
        consequence = "its finding above may be incomplete" if e.rule_id in found else "this rule did not run"
        lines.append(f"  RULE ERROR {e.rule_id} ({e.file}): {e.message} - {consequence}")
    for e in run.engine_errors:
        lines.append(f"  ENGINE ERROR: {e}")
    shown = {id(f) for f in run.shown_findings}
    hidden = [f for f in run.findings if id(f) not in shown]
    if hidden:
        lowest = min((Severity(f.severity) for f in hidden), key=lambda s: s.rank)
        lines.append(f"  {len(hidden)} finding(s) below {run.min_severity} not shown: --threshold {lowest.value} "
                     "shows them")
    if result.reused:
        lines.append(f"  Reused run {result.run_id}, stored {_when(run.started.replace(microsecond=0))}: the same trace, rules and options "
                     "were checked then (--fresh reads the trace again)")
    lines.append(f"  Stored in {result.db_path}")
    for fmt, paths in (result.reports or {"md": [result.report_path]}).items():
        lines += [f"  Report ({fmt}): {p}" for p in paths]
    for rule_id, summary in (result.pcaps or {}).items():
        lines.append(f"  Evidence pcapng ({rule_id}): {summary.path}")
    return "\n".join(lines)
