"""``wnvdiag runs | findings | report | diff``: the run database and stored reports, a thin layer
over ``diag.store`` and ``diag.report``. Registered on the main app with ``register(app)``.

    wnvdiag runs [--db PATH] [--case ID] [--json]
    wnvdiag findings [RUN] [--severity SEV] [--rule ID] [--db PATH] [--json]
    wnvdiag report RUN [--format html,md,txt,json,csv] [--out DIR] [--case ID] [--redact] [--db PATH]
    wnvdiag diff RUN_A RUN_B [--db PATH] [--json]
    wnvdiag export-pcap TRACE -o out.pcapng [--finding ID] [--drops-only] [--since T] [--until T] [--address A]
                        [--vlan N] [--db PATH]

RUN is a run id, a unique prefix of one, or ``latest``. Errors are one line and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from diag.errors import DiagError
from diag.commands.output import echo, fail
from diag.commands.filters import ADDRESS_OPTION, SINCE_OPTION, UNTIL_OPTION, VLAN_OPTION, packet_filter
from diag.commands.progress import progress_bar

EXIT_ERROR = 2
# Defaults a user can set once for a shell or a case folder: WNVDIAG_DB and WNVDIAG_OUT.
DB_OPTION = typer.Option(Path("wnvdiag.db"), "--db", envvar="WNVDIAG_DB", help="SQLite file that keeps every run.")
OUT_OPTION = typer.Option(Path("."), "--out", envvar="WNVDIAG_OUT", help="Directory for the report files.")


def _fail(message: str) -> None:
    fail(message)


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def runs(
    db: Path = DB_OPTION,
    case: Optional[str] = typer.Option(None, "--case", help="Only the runs of this support case."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON."),
) -> None:
    """The stored runs, newest first."""
    from diag import store

    try:
        rows = [r for r in store.list_runs(db) if case is None or r.case_id == case]
    except DiagError as exc:
        _fail(str(exc))
    if as_json:
        echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    if not rows:
        echo(f"No runs in {db}.")
        return
    echo(f"{'run':<24} {'started (UTC)':<20} {'verdict':<12} {'findings':>8}  {'case':<14} trace")
    for r in rows:
        echo(f"{r.run_id:<24} {r.started:%Y-%m-%d %H:%M:%S} {r.verdict:<12} {r.findings:>8}  "
                   f"{_short(r.case_id or '–', 14):<14} {r.trace_path}")


def findings(
    run: Optional[str] = typer.Argument(None, help="Run id, unique prefix or 'latest'; all runs when left out."),
    severity: Optional[str] = typer.Option(None, "--severity", help="Only findings at or above this severity "
                                                                    "(info, low, medium, high, critical)."),
    rule: Optional[str] = typer.Option(None, "--rule", help="Only findings of this rule id."),
    finding: Optional[str] = typer.Option(None, "--finding", metavar="ID",
                                          help="One finding (id or unique prefix) in full, with every evidence row."),
    evidence: bool = typer.Option(False, "--evidence", help="Print each finding's evidence rows too."),
    db: Path = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Stored findings, newest run first, the most severe first within a run."""
    from diag import store

    try:
        if finding is not None:
            return _one_finding(db, finding, as_json)
        rows = store.list_findings(db, run, severity=severity, rule=rule)
        shown = {r.finding_id: store.load_finding(db, r.finding_id)[1] for r in rows} if evidence else {}
    except DiagError as exc:
        _fail(str(exc))
    if as_json:
        docs = [r.model_dump(mode="json") for r in rows]
        for doc in docs:
            if doc["finding_id"] in shown:
                doc["evidence"] = shown[doc["finding_id"]].evidence
        echo(json.dumps(docs, indent=2, default=str))
        return
    if not rows:
        echo("No findings.")
        return
    for r in rows:
        echo(f"{r.run_id}  {r.finding_id}  [{r.severity}/{r.confidence}] {r.rule_id}: {r.title}")
        echo(f"    {_short(r.summary, 150)} ({r.evidence_rows} evidence row(s))")
        if r.finding_id in shown:
            _print_evidence(shown[r.finding_id].evidence, "      ")


def _one_finding(db: Path, ref: str, as_json: bool) -> None:
    from diag import store

    try:
        run, f = store.load_finding(db, ref)
    except DiagError as exc:
        _fail(str(exc))
    if as_json:
        echo(json.dumps({"run_id": run.run_id, **f.model_dump(mode="json")}, indent=2, default=str))
        return
    echo(f"[{f.severity}/{f.confidence}] {f.rule_id}: {f.title}  (run {run.run_id}, trace {run.trace.path})")
    echo(f"  {f.summary}")
    if f.remediation:
        echo(f"  Remediation: {f.remediation}")
    echo(f"  Evidence ({len(f.evidence)} row(s)):")
    _print_evidence(f.evidence, "    ")


def _print_evidence(rows: list[dict], indent: str) -> None:
    """Each evidence row on one line, ``key=value`` pairs in the row's own order (empty values as "–")."""
    for n, row in enumerate(rows, 1):
        pairs = "  ".join(f"{k}={'–' if v in (None, '', [], {}) else _short(v, 80)}" for k, v in row.items())
        echo(f"{indent}{n}. {pairs}")


def report(
    run: str = typer.Argument(..., help="Run id, unique prefix or 'latest'."),
    formats: str = typer.Option("md", "--format", "--report", help="Comma-separated: html, md, txt (plain text), json, csv, or all."),
    out: Path = OUT_OPTION,
    case: Optional[str] = typer.Option(None, "--case", help="Stamp the reports with this case id."),
    redact: bool = typer.Option(False, "--redact", help="Replace IPs, MACs, host/user/switch/adapter names and "
                                                        "paths with consistent pseudonyms."),
    db: Path = DB_OPTION,
) -> None:
    """Render a stored run again, without reading the trace."""
    from diag.report import render_stored

    try:
        written = render_stored(db, run, formats, out, case_id=case, redact=redact)
    except DiagError as exc:
        _fail(str(exc))
    for paths in written.values():
        for p in paths:
            echo(str(p))


def diff(
    run_a: str = typer.Argument(..., help="The earlier run (e.g. before a fix)."),
    run_b: str = typer.Argument(..., help="The later run."),
    db: Path = DB_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the difference as JSON."),
) -> None:
    """What appeared, disappeared or changed between two runs. Exit code 1 when anything differs."""
    from diag import store

    try:
        d = store.diff_runs(db, run_a, run_b)
    except DiagError as exc:
        _fail(str(exc))
    if as_json:
        echo(json.dumps(d.model_dump(mode="json"), indent=2))
    else:
        echo(f"{d.run_a} → {d.run_b}")
        for name, (a, b) in d.run_changes.items():
            echo(f"  run: {name}: {a} → {b}")
        for f in d.appeared:
            echo(f"  + [{f.severity}] {f.rule_id}: {_short(f.summary, 120)}")
        for f in d.disappeared:
            echo(f"  - [{f.severity}] {f.rule_id}: {_short(f.summary, 120)}")
        for c in d.changed:
            parts = [f"{k}: {a} → {b}" for k, (a, b) in c.changes.items()]
            if c.evidence_added or c.evidence_removed:
                parts.append(f"evidence +{len(c.evidence_added)} -{len(c.evidence_removed)} row(s)")
            echo(f"  ~ {c.rule_id}: " + "; ".join(_short(p, 120) for p in parts))
        if d.unchanged:
            echo(f"  = {len(d.unchanged)} finding(s) unchanged: {', '.join(d.unchanged)}")
    raise typer.Exit(1 if (d.appeared or d.disappeared or d.changed or d.run_changes) else 0)


def export_pcap(
    trace: Path = typer.Argument(..., help="ETL file from pktmon or netsh trace (capture=yes)."),
    out: Path = typer.Option(..., "-o", "--out", help="The pcapng file to write."),
    finding: Optional[str] = typer.Option(None, "--finding", help="Only the packets of this stored finding "
                                                                  "(id or unique prefix, see `wnvdiag findings`)."),
    drops_only: bool = typer.Option(False, "--drops-only", help="Only the drop events, not the packets' other hops."),
    first_snapshot: bool = typer.Option(False, "--first-snapshot",
                                        help="One copy per packet, where it entered, its drop named in its comment "
                                             "(for Wireshark's TCP analysis and conversation counts)."),
    component: list[int] = typer.Option([], "--component", metavar="ID",
                                        help="Only what this capture point saw (pktmon component id; for netsh, "
                                             "the NDIS IfIndex); repeatable."),
    verdict: bool = typer.Option(False, "--verdict", help="Also mark drops with the pcapng verdict option. Wireshark "
                                                          "4.0 cannot open a file it re-saved from such a one."),
    since: Optional[str] = SINCE_OPTION,
    until: Optional[str] = UNTIL_OPTION,
    address: list[str] = ADDRESS_OPTION,
    vlan: list[int] = VLAN_OPTION,
    db: Path = DB_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Write the trace's packets as pcapng, in time order: capture points as interfaces, the pktmon
    packet id on every packet, drops with their reason in the packet comment. Exit code 3 when there is
    no packet to write (no file is written then)."""
    from diag.api import EXIT_INCONCLUSIVE
    from diag.report.pcapng import PcapOptions, export_pcap as export, export_stored_finding

    try:
        options = PcapOptions(drops_only=drops_only, first_snapshot=first_snapshot,
                              components=frozenset(component) if component else None, verdict=verdict,
                              select=packet_filter(since, until, (), address, vlan))
    except DiagError as exc:
        _fail(str(exc))
    try:
        with progress_bar(f"reading {trace.name}", quiet) as bar:
            watch = dict(progress=bar.advance, phase=bar.phase) if bar else {}
            summary = (export_stored_finding(db, finding, trace, out, options=options, **watch) if finding
                       else export(trace, out, options=options, **watch))
    except DiagError as exc:
        _fail(str(exc))
    if not summary.written:
        echo(f"wnvdiag: {trace}: no packet to write ({summary.contents}); {out} was not written", err=True)
        for why, n in summary.skipped.items():
            echo(f"  not written: {n} packet(s): {why}", err=True)
        raise typer.Exit(EXIT_INCONCLUSIVE)
    if not quiet:
        echo(f"{out}: {summary.packets} packet(s), {summary.drops} drop(s), {summary.interfaces} interface(s); "
             f"{summary.contents}")
        for why, n in summary.skipped.items():
            echo(f"  not written: {n} packet(s): {why}")


def register(app: typer.Typer) -> None:
    """Add ``runs``, ``findings``, ``report``, ``diff`` and ``export-pcap`` to the main ``wnvdiag`` app."""
    app.command("export-pcap")(export_pcap)
    app.command("runs")(runs)
    app.command("findings")(findings)
    app.command("report")(report)
    app.command("diff")(diff)
