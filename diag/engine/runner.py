"""``run_rules``: facts in, findings out, through durable_rules in a worker process.

The parent loads and validates the rules, gives every fact an id whose 32-bit engine key is
unique, starts one fresh worker process (spawn), and turns the worker's raw matches into
findings: deduplicated by (rule id, sorted fact ids), one ``Finding`` per rule. A worker that
crashes, exits non-zero, times out or returns nothing raises ``AnalysisFailed``; it is never
reported as "no findings".
"""

from __future__ import annotations

import multiprocessing
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict

from diag.engine import worker
from diag.engine.ids import IdAllocator
from diag.engine.rules import GATE_KIND, RESERVED_FIELDS, Rule, load_rules, resolve_column
from diag.errors import AnalysisFailed
from diag.facts.models import FACT_MODELS, Finding, RuleError, scalar_fields
from diag.resources import data_dir

RULESET = "wnvdiag"
SID = "1"

__all__ = ["EngineResult", "run_rules"]


class EngineResult(BaseModel):
    """What one check produced. ``complete`` is False if any rule or the engine reported an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    findings: list[Finding] = []
    rule_errors: list[RuleError] = []
    engine_errors: list[str] = []
    rules_loaded: list[str] = []
    rules_run: list[str] = []
    facts_asserted: int = 0
    facts_unmatched: int = 0
    matches: dict[str, int] = {}

    @property
    def complete(self) -> bool:
        return not self.rule_errors and not self.engine_errors


@dataclass(frozen=True)
class _Fact:
    id: str
    index: int
    data: dict[str, Any]  # every field, JSON-ready (what evidence shows)
    engine: dict[str, Any]  # scalar fields plus id and sid (what durable_rules sees)


def run_rules(
    facts: Sequence[BaseModel],
    rule_dirs: Sequence[Path] | None = None,
    *,
    timeout: float | None = None,
) -> EngineResult:
    """Check ``facts`` against every rule in ``rule_dirs`` (default: the shipped ``rules/``).

    Invalid rule files and rules whose action failed are reported in ``rule_errors``; the other
    rules still run. Raises ``AnalysisFailed`` if the worker process fails or takes longer than
    ``timeout`` seconds.
    """
    dirs = [Path(d) for d in rule_dirs] if rule_dirs is not None else [data_dir("rules")]
    rules, rule_errors = load_rules(dirs)
    prepared, gate = _prepare(facts)
    if not rules:
        return EngineResult(
            rule_errors=rule_errors,
            engine_errors=["no rule could be loaded, so nothing was checked"],
        )

    payload = {
        "ruleset": RULESET,
        "sid": SID,
        "rules": [
            {"id": r.id, "all": r.durable_patterns(), "aliases": r.aliases, "hook": r.hook()} for r in rules
        ],
        "facts": [f.engine for f in prepared],
        "gate": gate,
    }
    raw = _run_worker(payload, timeout)
    return _result(rules, rule_errors, prepared, raw)


def _prepare(facts: Sequence[BaseModel]) -> tuple[list[_Fact], dict[str, Any]]:
    ids = IdAllocator(SID)
    prepared: list[_Fact] = []
    for index, fact in enumerate(facts):
        if not isinstance(fact, BaseModel):
            raise TypeError(f"fact #{index} is a {type(fact).__name__}, not a pydantic model")
        data = fact.model_dump(mode="json")
        kind = data.get("kind")
        if not isinstance(kind, str) or not kind or kind == GATE_KIND:
            raise ValueError(f"fact #{index} ({type(fact).__name__}) needs a 'kind' other than {GATE_KIND!r}")
        reserved = RESERVED_FIELDS & data.keys()
        if reserved:
            raise ValueError(f"fact #{index} ({kind}) has field(s) reserved by the engine: {sorted(reserved)}")
        fact_id = ids.allocate(f"{kind}:{index}")
        engine = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
        engine.update(id=fact_id, sid=SID)
        prepared.append(_Fact(fact_id, index, data, engine))
    gate = {"kind": GATE_KIND, "id": ids.allocate(GATE_KIND), "sid": SID}
    return prepared, gate


def _run_worker(payload: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=worker.main, args=(sender, payload), name="wnvdiag-rules", daemon=True)
    try:
        process.start()
    except Exception as exc:
        raise AnalysisFailed(f"the rules worker process could not be started: {exc}") from exc
    finally:
        sender.close()
    result: dict[str, Any] | None = None
    try:
        if receiver.poll(timeout):
            result = receiver.recv()
        else:
            process.kill()
            process.join()
            raise AnalysisFailed(f"the rules worker did not finish within {timeout:g} s; it was stopped")
    except EOFError:
        result = None
    except AnalysisFailed:
        raise
    except Exception as exc:  # unpicklable or truncated result
        process.kill()
        process.join()
        raise AnalysisFailed(f"the result of the rules worker could not be read: {exc}") from exc
    finally:
        receiver.close()
    process.join(timeout=30)
    if process.exitcode is None:
        process.kill()
        process.join()
        raise AnalysisFailed("the rules worker did not exit after sending its result; it was stopped")
    if process.exitcode != 0:
        raise AnalysisFailed(f"the rules worker {_describe_exit(process.exitcode)}; its findings are unknown")
    if result is None:
        raise AnalysisFailed("the rules worker exited without returning a result; its findings are unknown")
    if "fatal" in result:
        raise AnalysisFailed(f"the rules could not be run: {result['fatal']}")
    return result


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _result(rules: list[Rule], rule_errors: list[RuleError], facts: list[_Fact], raw: dict[str, Any]) -> EngineResult:
    by_rule = {r.id: r for r in rules}
    errors = list(rule_errors)
    failed: set[str] = set(raw["skipped"])
    for rule_id, failure in raw["failures"].items():
        failed.add(rule_id)
        rule = by_rule[rule_id]
        count = failure["count"]
        detail = "; ".join(failure["messages"])
        more = f" (showing {len(failure['messages'])})" if count > len(failure["messages"]) else ""
        errors.append(
            RuleError(rule_id=rule_id, file=str(rule.path), message=f"the rule did not complete: {count} failure(s){more}: {detail}")
        )

    seen: set[tuple[str, tuple[str, ...]]] = set()
    grouped: dict[str, list[tuple[dict[str, str], dict[str, Any] | None]]] = {r.id: [] for r in rules}
    for rule_id, ids, extra in raw["matches"]:
        key = (rule_id, tuple(sorted(ids.values())))
        if key in seen:
            continue
        seen.add(key)
        grouped[rule_id].append((ids, extra))

    facts_by_id = {f.id: f for f in facts}
    findings: list[Finding] = []
    for rule in rules:
        if not grouped[rule.id]:
            continue
        finding, problem = _finding(rule, grouped[rule.id], facts_by_id)
        findings.append(finding)
        if problem:
            failed.add(rule.id)
            errors.append(RuleError(rule_id=rule.id, file=str(rule.path), message=problem))

    return EngineResult(
        findings=findings,
        rule_errors=errors,
        engine_errors=list(raw["engine_errors"]),
        rules_loaded=[r.id for r in rules],
        rules_run=[r.id for r in rules if r.id not in failed],
        facts_asserted=raw["asserted"],
        facts_unmatched=raw["unmatched"],
        matches={r.id: len(grouped[r.id]) for r in rules},
    )


def _finding(
    rule: Rule,
    matches: list[tuple[dict[str, str], dict[str, Any] | None]],
    facts: dict[str, _Fact],
) -> tuple[Finding, str | None]:
    """All matches of one rule as one finding; the second value is a problem to report, if any."""
    template = rule.meta.finding
    aliases = rule.aliases
    # assertion order first, then (stable) by rank_by, largest first; None ranks last
    ordered = sorted(matches, key=lambda m: [facts[m[0][a]].index for a in aliases])
    if template.rank_by:
        r_alias, r_field = resolve_column(rule, template.rank_by)

        def rank(m: tuple[dict[str, str], Any]) -> tuple[bool, Any]:
            value = facts[m[0][r_alias]].data.get(r_field)
            return (value is not None, value)

        try:
            ordered.sort(key=rank, reverse=True)
        except TypeError:
            ordered.sort(key=lambda m: (rank(m)[0], str(rank(m)[1])), reverse=True)

    if template.evidence:
        columns = [(c, *resolve_column(rule, c)) for c in template.evidence]
    else:
        columns = []
        for alias in aliases:
            for name in scalar_fields(FACT_MODELS[rule.kinds[alias]]):
                if name != "kind":
                    columns.append((name if len(aliases) == 1 else f"{alias}.{name}", alias, name))

    evidence: list[dict[str, Any]] = []
    fact_ids: dict[str, int] = {}
    for ids, extra in ordered:
        row = {label: facts[ids[alias]].data.get(name) for label, alias, name in columns}
        if extra:
            row.update(extra)
        evidence.append(row)
        for alias in aliases:
            fact_ids[ids[alias]] = facts[ids[alias]].index

    top_ids = ordered[0][0]
    context: dict[str, Any] = {alias: facts[top_ids[alias]].data for alias in aliases}
    context["top"] = context[aliases[0]]
    context["matches"] = len(ordered)
    first_facts = {ids[aliases[0]] for ids, _ in ordered}
    totals: dict[str, Any] = {}
    for fid in first_facts:
        for name, value in facts[fid].data.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[name] = totals.get(name, 0) + value
    context["total"] = totals

    problem = None
    try:
        summary = template.summary.format_map(context)
    except Exception as exc:  # noqa: BLE001 - a bad template must not lose the finding
        problem = f"the summary template failed ({type(exc).__name__}: {exc}); a plain summary was used"
        summary = f"{rule.meta.title}: {len(ordered)} match(es)."

    finding = Finding(
        rule_id=rule.id,
        title=rule.meta.title,
        severity=rule.meta.severity,
        confidence=rule.meta.confidence,
        summary=summary,
        evidence=evidence,
        remediation=rule.meta.remediation.strip(),
        references=list(rule.meta.references),
        fact_ids=sorted(fact_ids, key=fact_ids.__getitem__),
    )
    return finding, problem
