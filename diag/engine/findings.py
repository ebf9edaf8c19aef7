"""All matches of one rule -> one ``Finding``: summary, evidence rows, the facts behind it."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from diag.engine.rules import Rule, resolve_column
from diag.facts.models import Finding


EMPTY = "–"
MAX_LISTED = 5


class _SummaryFormatter(string.Formatter):
    """``str.format_map`` for summaries, except that an empty field reads "–", never "None"."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or value == "":
            return EMPTY
        return super().format_field(value, format_spec)


class _Values:
    """``{each[field]}``: the distinct values of a column over every match, in rank order ("a, b, c and 2
    more"); ``{count[field]}``: how many distinct values."""

    def __init__(self, rule: Rule, ordered: list[Match], facts: dict[str, PreparedFact], counting: bool) -> None:
        self.rule, self.ordered, self.facts, self.counting = rule, ordered, facts, counting

    def __getitem__(self, column: str) -> Any:
        alias, name = resolve_column(self.rule, column)
        position = self.rule.aliases.index(alias)
        values = list(dict.fromkeys(self.facts[m.fact_ids[position]].data.get(name) for m in self.ordered))
        values = [v for v in values if v is not None]
        if self.counting:
            return len(values)
        if not values:
            return None
        shown = ", ".join(str(v) for v in values[:MAX_LISTED])
        return shown if len(values) <= MAX_LISTED else f"{shown} and {len(values) - MAX_LISTED} more"


_SUMMARY = _SummaryFormatter()


@dataclass(frozen=True)
class PreparedFact:
    """A fact as the run knows it: its engine id, position, every field, and what the engine sees."""

    id: str
    index: int
    data: dict[str, Any]  # every field, JSON-ready (what evidence shows)
    engine: dict[str, Any]  # scalar fields that are set, plus id and sid (what durable_rules sees)
    sources: tuple[str, ...] = ()  # a derived fact (an aggregate): the ids of the facts it was computed from


@dataclass(frozen=True)
class Match:
    fact_ids: tuple[str, ...]  # in the order of the rule's aliases
    extra: dict[str, Any] | None  # what a Python rule's action added to the evidence row


def build_finding(rule: Rule, matches: list[Match], facts: dict[str, PreparedFact]) -> tuple[Finding, str | None]:
    """One finding for ``matches`` (distinct, at least one); the second value is a problem to report."""
    ordered = _ranked(rule, matches, facts)
    evidence, fact_ids, row_fact_ids = _evidence(rule, ordered, facts)
    summary, problem = _summary(rule, ordered, facts)
    finding = Finding(
        rule_id=rule.id,
        title=rule.meta.title,
        severity=rule.meta.severity,
        confidence=rule.meta.confidence,
        summary=summary,
        evidence=evidence,
        remediation=rule.meta.remediation.strip(),
        references=list(rule.meta.references),
        fact_ids=fact_ids,
        evidence_fact_ids=row_fact_ids,
        impact=rule.meta.impact.strip(),
        tags=list(rule.meta.tags),
    )
    return finding, problem


def _ranked(rule: Rule, matches: list[Match], facts: dict[str, PreparedFact]) -> list[Match]:
    """Assertion order first, then (stable) by ``rank_by``, largest first; empty values last."""
    ordered = sorted(matches, key=lambda m: [facts[i].index for i in m.fact_ids])
    if not rule.meta.finding.rank_by:
        return ordered
    alias, name = resolve_column(rule, rule.meta.finding.rank_by)
    position = rule.aliases.index(alias)

    def rank(m: Match) -> tuple[bool, Any]:
        value = facts[m.fact_ids[position]].data.get(name)
        return value is not None, value

    try:
        ordered.sort(key=rank, reverse=True)
    except TypeError:
        ordered.sort(key=lambda m: (rank(m)[0], str(rank(m)[1])), reverse=True)
    return ordered


def _columns(rule: Rule) -> list[tuple[str, int, str]]:
    """(label, alias position, field) of each evidence column."""
    aliases = rule.aliases
    if rule.meta.finding.evidence:
        out = []
        for column in rule.meta.finding.evidence:
            alias, name = resolve_column(rule, column)
            out.append((column, aliases.index(alias), name))
        return out
    return [(name if len(aliases) == 1 else f"{alias}.{name}", position, name)
            for position, alias in enumerate(aliases)
            for name in rule.condition.fields(alias) if name not in ("kind", "aggregate")]


def _evidence(rule: Rule, ordered: list[Match], facts: dict[str, PreparedFact]
              ) -> tuple[list[dict[str, Any]], list[str], list[list[str]]]:
    """Evidence rows, every fact id behind them (in assertion order), and each row's own fact ids."""
    columns = _columns(rule)
    rows, row_fact_ids = [], []
    fact_ids: dict[str, int] = {}
    for match in ordered:
        row = {label: facts[match.fact_ids[position]].data.get(name) for label, position, name in columns}
        row.update(match.extra or {})
        rows.append(row)
        own = [source for i in match.fact_ids for source in (facts[i].sources or (i,))]
        row_fact_ids.append(own)
        for fact_id in own:
            fact_ids[fact_id] = facts[fact_id].index
    return rows, sorted(fact_ids, key=fact_ids.__getitem__), row_fact_ids


def _summary(rule: Rule, ordered: list[Match], facts: dict[str, PreparedFact]) -> tuple[str, str | None]:
    aliases = rule.aliases
    top = ordered[0].fact_ids
    context: dict[str, Any] = {alias: facts[fact_id].data for alias, fact_id in zip(aliases, top)}
    context["top"] = context[aliases[0]]
    context["matches"] = len(ordered)
    totals: dict[str, Any] = {}
    for fact_id in {m.fact_ids[0] for m in ordered}:
        for name, value in facts[fact_id].data.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[name] = totals.get(name, 0) + value
    context["total"] = totals
    context["each"] = _Values(rule, ordered, facts, counting=False)
    context["count"] = _Values(rule, ordered, facts, counting=True)
    try:
        return _SUMMARY.vformat(rule.meta.finding.summary, (), context), None
    except Exception as exc:  # noqa: BLE001 - a bad template must not lose the finding
        problem = f"the summary template failed ({type(exc).__name__}: {exc}); a plain summary was used"
        return f"{rule.meta.title}: {len(ordered)} match(es).", problem
