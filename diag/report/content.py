"""What a report says, whatever its format: the questions a trace could not answer, and the facts
behind a finding (packet paths, drop rates). The HTML and Markdown renderers both use these."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from diag.engine.quality_gate import is_gate
from diag.facts.models import Finding, severity_rank
from diag.report.model import INCONCLUSIVE_TAG, OVERVIEW_TAG, RunReport


def unanswered(run: RunReport) -> list[str]:
    """What this trace could not answer: losses, unreadable parts, rules that did not run."""
    q, t, out = run.quality, run.trace, []
    if run.failure:
        out.append("The analysis failed, so nothing can be concluded from this run.")
    selected = packet_filter(run)
    if selected:
        out.append(f"A filter kept {selected['kept']}; it left out {selected['packet_events_left_out']} packet "
                   f"event(s). What is said here, and what is not found, is about the packets kept only.")
    if t.records_read == 0:
        out.append("The trace had no readable records.")
    if q.events_lost or q.buffers_lost:
        out.append(f"The ETW session lost {q.events_lost} event(s) and {q.buffers_lost} buffer(s); problems in them cannot be seen.")
    if q.buffers_skipped:
        out.append(f"{q.buffers_skipped} buffer(s) could not be read.")
    if q.truncated:
        out.append("The trace file is truncated.")
    if q.records_undecoded:
        out.append(f"{q.records_undecoded} record(s) could not be decoded (no public layout or malformed).")
    out += [f"{f.title}: {f.summary}" for f in run.findings if is_gate(f)]
    missing = sorted(set(run.rules_loaded) - set(run.rules_run))
    if missing:
        out.append(f"Rules that did not run to completion: {', '.join(missing)}.")
    if not run.rules_loaded and not run.failure:
        out.append("No rule was loaded, so nothing was checked.")
    if run.rule_errors:
        out.append(f"{len(run.rule_errors)} rule error(s): see the rule errors section.")
    if run.engine_errors:
        out.append(f"{len(run.engine_errors)} engine error(s).")
    return out


def packet_filter(run: RunReport) -> dict[str, Any] | None:
    """The packet filter a run was checked with (``check --since/--until/--component/--address/--vlan``):
    ``{"kept": "packets from ...", "packet_events_left_out": N}``, or None."""
    selected = run.arguments.get("filter") if isinstance(run.arguments, dict) else None
    return selected if isinstance(selected, dict) and selected.get("kept") else None


def _plain_key(key: str) -> str:
    """``d.component_id`` (a join rule's alias) → ``component_id``."""
    return key.rsplit(".", 1)[-1]


def evidence_field(row: dict[str, Any], name: str) -> Any:
    """A field of an evidence row, under its own name or a join rule's alias (``d.count``)."""
    if name in row:
        return row[name]
    return next((v for k, v in row.items() if _plain_key(k) == name), None)


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in row.items():
        out.setdefault(_plain_key(key), val)
    return out


def _drop_key(record: dict[str, Any]) -> tuple[int, int] | None:
    comp = record.get("component_id", record.get("last_component_id"))
    reason = record.get("reason_code", record.get("drop_reason_code"))
    if isinstance(comp, int) and isinstance(reason, int) and not isinstance(comp, bool):
        return comp, reason
    return None


def _drop_keys(run: RunReport, finding: Any) -> set[tuple]:
    """The (component, reason) pairs of the drops a finding is about: from its evidence rows (join aliases
    stripped) and from the facts it cites (drop groups, drop rates, dropped packet paths)."""
    keys = set()
    for row in finding.evidence:
        key = _drop_key(_plain_row(row))
        if key:
            keys.add(key)
    for fid in finding.fact_ids:
        fact = run.fact(fid)
        if fact and (fact.get("kind") != "packet_path" or fact.get("dropped")):
            key = _drop_key(fact)
            if key:
                keys.add(key)
    return keys


@dataclass(frozen=True)
class Restated:
    """An overview finding whose drops are all told by more specific findings: shown folded under them."""

    finding: Finding
    under: tuple[int, ...]  # 1-based numbers of the findings (in ``Arrangement.primary``) that tell its drops


@dataclass(frozen=True)
class Arrangement:
    primary: list[Finding] = field(default_factory=list)
    restated: list[Restated] = field(default_factory=list)


def arrange(run: RunReport) -> Arrangement:
    """The shown findings, with the overviews that only restate other findings' drops folded under them.

    An overview (all drops, their rates, their paths) is folded when every (component, reason) of its drops is
    in a finding that stays shown, is about no more drop kinds than it, and is at least as severe. A specific
    diagnosis, a finding that makes the run inconclusive, and an overview that says something no other finding
    says all stay shown. Nothing is dropped: the folded findings are listed with the numbers they restate."""
    shown = run.shown_findings
    keys = [_drop_keys(run, f) for f in shown]
    foldable = [i for i, f in enumerate(shown)
                if OVERVIEW_TAG in f.tags and INCONCLUSIVE_TAG not in f.tags and keys[i]]
    kept = [i for i in range(len(shown)) if i not in foldable]
    folded: dict[int, list[int]] = {}
    for i in sorted(foldable, key=lambda i: (len(keys[i]), i)):
        covers = [j for j in kept if keys[j] & keys[i] and len(keys[j]) <= len(keys[i])]
        told = set().union(*(keys[j] for j in covers)) if covers else set()
        if covers and keys[i] <= told and \
                severity_rank(shown[i].severity) <= max(severity_rank(shown[j].severity) for j in covers):
            folded[i] = covers
        else:
            kept.append(i)
    primary = [i for i in range(len(shown)) if i not in folded]
    number = {i: n for n, i in enumerate(primary, 1)}
    return Arrangement(
        primary=[shown[i] for i in primary],
        restated=[Restated(shown[i], tuple(sorted(number[j] for j in folded[i]))) for i in sorted(folded)],
    )


_WHERE = (  # evidence fields that name where a problem is, most telling first
    "component_name", "component", "drop_component", "port_friendly_name", "nic_friendly_name", "port_name", "nic_name",
    "member_friendly_name", "member_name", "vm_name", "switch_friendly_name", "switch_name", "vmswitch_name",
    "description", "address", "mac", "subnet",
)


def where(finding: Finding) -> str | None:
    """Where a finding's first evidence row says the problem is: "Container NIC c337484d (component 3)",
    "compartment 2", an address... None when the evidence names no place."""
    if not finding.evidence:
        return None
    row = _plain_row(finding.evidence[0])
    comp = row.get("component_id")
    for key in _WHERE:
        val = row.get(key)
        if val not in (None, "", []):
            place = ", ".join(map(str, val)) if isinstance(val, list) else str(val)
            if key in ("component_name", "description") and isinstance(comp, int):
                place += f" (component {comp})"
            return place
    if isinstance(comp, int):
        return f"component {comp}"
    if isinstance(row.get("compartment_id"), int):
        return f"compartment {row['compartment_id']}"
    return None


def _sentence_case(title: str, first: bool) -> str:
    if first or len(title) < 2 or not title[1].islower():
        return title
    return title[0].lower() + title[1:]


def diagnosis(run: RunReport, arrangement: Arrangement | None = None, most: int = 3) -> str:
    """The verdict of a run with findings as one sentence: the most important problems and where they are.
    ``"Packets dropped for their source MAC address at X (component 2); packets dropped for their VLAN at Y
    (component 3); and 2 more."``"""
    arrangement = arrangement or arrange(run)
    problems = [f for f in arrangement.primary if INCONCLUSIVE_TAG not in f.tags]
    parts = []
    for n, f in enumerate(problems[:most]):
        place = where(f)
        parts.append(_sentence_case(f.title, n == 0) + (f" at {place}" if place else ""))
    rest = len(problems) - len(parts)
    if rest:
        parts.append(f"and {rest} more")
    return "; ".join(parts) + "." if parts else ""


def related_paths(run: RunReport, finding: Any, limit: int = 3) -> list[dict[str, Any]]:
    """Sample packet paths behind a finding: its own ``packet_path`` facts, else the dropped paths
    that ended at a (component, reason) of its evidence."""
    own = [f for f in (run.fact(i) for i in finding.fact_ids) if f and f.get("kind") == "packet_path"]
    if own:
        return own[:limit]
    keys = _drop_keys(run, finding)
    return [p for p in run.facts_of("packet_path")
            if p.get("dropped") and (p.get("last_component_id"), p.get("drop_reason_code")) in keys][:limit]


def related_rates(run: RunReport, finding: Any, limit: int = 6) -> list[dict[str, Any]]:
    """``drop_rate`` facts of the finding's (component, reason) pairs."""
    keys = _drop_keys(run, finding)
    own = [f for f in (run.fact(i) for i in finding.fact_ids) if f and f.get("kind") == "drop_rate"]
    return (own or [r for r in run.facts_of("drop_rate") if (r.get("component_id"), r.get("reason_code")) in keys])[:limit]


def column_labels(columns: list[str]) -> list[str]:
    """Readable headings for evidence columns: ``reason_code`` → "reason code", and a join rule's alias
    (``d.reason_code``) left out where no other column has the same field."""
    plain = [_plain_key(c) for c in columns]
    return [(p if plain.count(p) == 1 else c).replace("_", " ") for c, p in zip(columns, plain)]


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def spaced_time(text: str) -> str:
    """An ISO timestamp with a space for the T (RFC 3339 allows it), so that a narrow column breaks it between
    date and time; any other text unchanged."""
    return text.replace("T", " ", 1) if _TIMESTAMP.match(text) else text


@dataclass(frozen=True)
class EvidenceLayout:
    """Evidence split for a narrow page: the columns of a table that fits, the rest listed per row."""

    table: list[str]
    listed: list[str]


def evidence_layout(rows: list[dict[str, Any]], columns: list[str], display: Any, budget: float, *,
                    cells_wrap: bool = True) -> EvidenceLayout:
    """Which evidence columns fit in a table of ``budget`` characters, taken in their own order; the others go
    to a list under the table. A column needs its longest unbreakable word (its whole longest text where cells
    do not wrap, as in plain text), in its heading or any value shown by ``display``, plus 3 for padding and
    rule. A row number column is counted when some are listed."""
    labels = dict(zip(columns, column_labels(columns)))

    def need(col: str) -> int:
        texts = [labels[col]] + [display(row.get(col)) for row in rows]
        words = [w for t in texts for w in t.split()] if cells_wrap else texts
        return 3 + max((len(w) for w in words), default=1)

    needs = {col: need(col) for col in columns}
    if sum(needs.values()) > budget:
        budget -= 5  # the "#" column that ties a listed row to its table row
    table: list[str] = []
    listed: list[str] = []
    used = 0.0
    for col in columns:
        if used + needs[col] <= budget:
            table.append(col)
            used += needs[col]
        else:
            listed.append(col)
    return EvidenceLayout(table, listed)


def number(n: float) -> str:
    """A count or a measure as people write it: ``123456789``, ``2.5``, ``0.001``; never ``1.23457e+08``."""
    if isinstance(n, int) or float(n).is_integer():
        return str(int(n))
    return f"{n:.6f}".rstrip("0").rstrip(".")


def rate_caption(rate: dict[str, Any]) -> str:
    """The caption of a rate chart in the chart's own unit (drops per bucket), with the rate it means."""
    series = [n for n in (rate.get("series") or []) if isinstance(n, (int, float))]
    bucket = rate.get("bucket_seconds") or 1
    if not series:
        return ""
    return f", at most {number(max(series))} in one {number(bucket)} s bucket ({number(max(series) / bucket)}/s)"
