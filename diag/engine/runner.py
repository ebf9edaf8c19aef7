"""``run_rules``: facts in, findings out, through durable_rules in a worker process.

The parent loads and checks the rules, gives every fact an id whose 32-bit engine key is unique
in its session, starts fresh worker processes (``diag.engine.child``: bounded in time and memory),
and turns the workers' raw matches into findings: deduplicated by (rule id, fact ids), one
``Finding`` per rule. The shipped pack and the user's rules run in two workers of their own, side
by side, so that nothing a user's rule does can touch a shipped finding. The shipped worker failing
(crash, non-zero exit, time or memory limit, no result) raises ``AnalysisFailed``; it is never
reported as "no findings". The user worker failing marks the user's rules as not run.

``run_sessions`` runs many independent fact sets at once (one session each, many per worker):
the rule cases and the differential test use it.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from diag.engine import worker
from diag.engine.available import require_engine
from diag.engine.child import Child, Limits
from diag.engine.aggregate import AggregateSpec, derive
from diag.engine.compile import ANCHOR_FIELD
from diag.engine.conditions import GATE_KIND, RESERVED_FIELDS
from diag.engine.findings import Match, PreparedFact, build_finding
from diag.engine.ids import IdAllocator
from diag.engine.reference import satisfies
from diag.engine.rules import Rule, load_rules, select_rules
from diag.errors import AnalysisFailed
from diag.facts.models import Finding, RuleError
from diag.resources import data_dir

RULESET = "wnvdiag"
SID = "1"
MAX_SESSIONS_PER_WORKER = 1000  # durable_rules allows 1024 live sessions per ruleset

__all__ = ["EngineResult", "SessionResult", "run_loaded_rules", "run_rules", "run_sessions"]


class EngineResult(BaseModel):
    """What one check produced. ``complete`` is False if any rule or the engine reported an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    findings: list[Finding] = []
    rule_errors: list[RuleError] = []
    engine_errors: list[str] = []
    rules_loaded: list[str] = []  # the rules this run was meant to run (after --only/--skip)
    rules_run: list[str] = []  # those that ran to completion
    rules_deselected: list[str] = []  # left out by --only/--skip
    facts_asserted: int = 0
    facts_unmatched: int = 0
    matches: dict[str, int] = {}  # distinct matches per rule

    @property
    def complete(self) -> bool:
        return not self.rule_errors and not self.engine_errors


@dataclass(frozen=True)
class Session:
    sid: str
    facts: list[PreparedFact]
    gate: dict[str, Any]


@dataclass
class SessionResult:
    """What the engine did with one fact set: distinct matches per rule, in the order they came."""

    matches: dict[str, dict[tuple[str, ...], dict[str, Any] | None]] = field(default_factory=dict)
    asserted: int = 0
    unmatched: int = 0
    errors: list[str] = field(default_factory=list)
    unmatched_ids: set[str] = field(default_factory=set)


@dataclass
class WorkerRun:
    sessions: list[SessionResult]
    failures: dict[str, dict[str, Any]]  # rule id -> {"count", "messages"}
    skipped: list[str]  # rules whose Python action could not be loaded
    engine: dict[str, Any]  # pid, threads, rulesets, late_actions, actions


# ---------------------------------------------------------------------------------------------
# a check


def run_rules(
    facts: Sequence[BaseModel],
    rule_dirs: Sequence[Path] | None = None,
    *,
    timeout: float | Limits | None = None,
    only: Sequence[str] | None = None,
    skip: Sequence[str] | None = None,
) -> EngineResult:
    """Check ``facts`` against every rule in ``rule_dirs`` (default: the shipped ``rules/``).

    ``only``/``skip`` select rules by id or tag (``BadInputError`` for a name no rule has).
    Invalid rule files and rules whose action failed are reported in ``rule_errors``; the other
    rules still run. ``timeout`` is seconds, or ``Limits`` (time and memory) for each worker.
    Raises ``AnalysisFailed`` if the shipped rules' worker fails; a failure of the worker that runs
    the user's rules makes those rules "not run", and the shipped findings stand.
    """
    require_engine()
    limits = as_limits(timeout)
    dirs = [Path(d) for d in rule_dirs] if rule_dirs is not None else [data_dir("rules")]
    rules, rule_errors = load_rules(dirs)
    broken = [e.rule_id for e in rule_errors if e.rule_id]
    rules, deselected = select_rules(rules, only, skip, also_known=broken)
    return run_loaded_rules(rules, facts, limits, rule_errors, deselected)


def run_loaded_rules(rules: list[Rule], facts: Sequence[BaseModel], limits: Limits,
                     rule_errors: Sequence[RuleError] = (), deselected: Sequence[str] = ()) -> EngineResult:
    """``run_rules`` for rules already loaded (``rules test --trace``)."""
    require_engine()
    rule_errors, deselected = list(rule_errors), list(deselected)
    session = prepare_session(facts, SID, rules)
    if not rules:
        why = "--only/--skip left no rule to run" if deselected else "no rule could be loaded"
        return EngineResult(rule_errors=rule_errors, rules_deselected=deselected,
                            engine_errors=[f"{why}, so nothing was checked"])
    groups = [group for group in ([r for r in rules if r.shipped], [r for r in rules if not r.shipped]) if group]
    started = []
    try:
        for group in groups:
            started.append((group, start_payload(engine_payload(group, [session]), limits)))
        runs: list[tuple[list[Rule], WorkerRun]] = []
        for group, process in started:
            try:
                runs.append((group, _worker_run(payload_result(process))))
            except AnalysisFailed as exc:
                if group[0].shipped or len(groups) == 1:  # nothing else ran: the check has no answer
                    raise
                rule_errors = rule_errors + [_not_run(r, exc) for r in group]
    finally:
        for _, process in started:
            process.kill()
    ran = [r for group, _ in runs for r in group]
    return _engine_result(ran, rule_errors, deselected, session, _merge_side_by_side([run for _, run in runs]))


def _merge_side_by_side(runs: list[WorkerRun]) -> WorkerRun:
    """One check's result from its workers (each ran other rules on the same facts)."""
    if len(runs) == 1:
        return runs[0]
    outcome = SessionResult(asserted=max(r.sessions[0].asserted for r in runs))
    unmatched: set[str] | None = None
    for run in runs:
        session = run.sessions[0]
        outcome.matches.update(session.matches)
        outcome.errors += session.errors
        unmatched = session.unmatched_ids if unmatched is None else unmatched & session.unmatched_ids
    outcome.unmatched_ids = unmatched or set()
    outcome.unmatched = len(outcome.unmatched_ids)
    failures = {k: v for run in runs for k, v in run.failures.items()}
    return WorkerRun(sessions=[outcome], failures=failures, skipped=sorted({s for r in runs for s in r.skipped}),
                     engine={"workers": [r.engine for r in runs]})


def _not_run(rule: Rule, failure: AnalysisFailed) -> RuleError:
    return RuleError(rule_id=rule.id, file=str(rule.path),
                     message=f"did not run: the worker that runs your rules failed ({failure.message}); "
                             "the shipped rules ran in a worker of their own and are not affected")


def _engine_result(rules: list[Rule], rule_errors: list[RuleError], deselected: list[str],
                   session: Session, run: WorkerRun) -> EngineResult:
    errors = list(rule_errors)
    failed = set(run.skipped)
    for rule_id, failure in run.failures.items():
        failed.add(rule_id)
        errors.append(_failure_error(next(r for r in rules if r.id == rule_id), failure))
    outcome = run.sessions[0]
    facts = {f.id: f for f in session.facts}
    findings = []
    for rule in rules:
        matches = [Match(ids, extra) for ids, extra in outcome.matches.get(rule.id, {}).items()]
        if not matches:
            continue
        finding, problem = build_finding(rule, matches, facts)
        findings.append(finding)
        if problem:
            failed.add(rule.id)
            errors.append(RuleError(rule_id=rule.id, file=str(rule.path), message=problem))
    return EngineResult(
        findings=findings,
        rule_errors=errors,
        engine_errors=list(outcome.errors),
        rules_loaded=[r.id for r in rules],
        rules_run=[r.id for r in rules if r.id not in failed],
        rules_deselected=deselected,
        facts_asserted=outcome.asserted,
        facts_unmatched=outcome.unmatched,
        matches={r.id: len(outcome.matches.get(r.id, {})) for r in rules},
    )


def _failure_error(rule: Rule, failure: dict[str, Any]) -> RuleError:
    count, messages = failure["count"], failure["messages"]
    shown = f" (showing {len(messages)})" if count > len(messages) else ""
    return RuleError(rule_id=rule.id, file=str(rule.path),
                     message=f"the rule did not complete: {count} failure(s){shown}: {'; '.join(messages)}")


# ---------------------------------------------------------------------------------------------
# facts -> sessions


def prepare_session(facts: Sequence[BaseModel], sid: str, rules: Sequence[Rule] = ()) -> Session:
    """Give each fact an engine id unique in the session's 32-bit id space, then add the aggregates the
    ``rules`` read (derived facts, each knowing the facts it was computed from); the gate comes last."""
    ids = IdAllocator(sid)
    prepared = []
    for index, fact in enumerate(facts):
        prepared.append(_prepared(_fact_data(fact, index), index, sid, ids))
    specs = {spec.key: spec for rule in rules for spec in rule.condition.aggregates}
    engine_view = [p.engine for p in prepared]
    for spec in specs.values():
        model = spec.model()
        for data, positions in derive(spec, engine_view, _where(spec)):
            fact = model.model_validate(data).model_dump(mode="json")
            sources = tuple(prepared[p].id for p in positions)
            prepared.append(_prepared(fact, len(prepared), sid, ids, sources))
    gate = {"kind": GATE_KIND, "id": ids.allocate(GATE_KIND), "sid": sid, ANCHOR_FIELD: 1}
    return Session(sid, prepared, gate)


def _prepared(data: dict[str, Any], index: int, sid: str, ids: IdAllocator, sources: tuple[str, ...] = ()
              ) -> PreparedFact:
    fact_id = ids.allocate(f"{data['kind']}:{index}")
    engine = {k: v for k, v in data.items() if v is not None and not isinstance(v, (list, dict))}
    engine.update({"id": fact_id, "sid": sid, ANCHOR_FIELD: 1})
    return PreparedFact(fact_id, index, data, engine, sources)


def _where(spec: AggregateSpec) -> Callable[[dict[str, Any]], bool]:
    """The aggregate's ``where`` tests on one fact, by the plain evaluator of the rule format (the one the
    differential test holds the engine to on every pattern)."""
    if spec.where is None:
        return lambda _fact: True
    return lambda fact: satisfies(spec.where, fact, {})


def _fact_data(fact: BaseModel, index: int) -> dict[str, Any]:
    if not isinstance(fact, BaseModel):
        raise TypeError(f"fact #{index} is a {type(fact).__name__}, not a pydantic model")
    data = fact.model_dump(mode="json")
    kind = data.get("kind")
    if not isinstance(kind, str) or not kind or kind == GATE_KIND:
        raise ValueError(f"fact #{index} ({type(fact).__name__}) needs a 'kind' other than {GATE_KIND!r}")
    reserved = RESERVED_FIELDS & data.keys()
    if reserved:
        raise ValueError(f"fact #{index} ({kind}) has field(s) reserved by the engine: {sorted(reserved)}")
    return data


def session_ids(count: int) -> list[str]:
    """``count`` session ids whose 32-bit hashes differ (durable_rules finds a session by hash)."""
    allocator = IdAllocator("")
    return [allocator.allocate(f"s{n}") for n in range(count)]


# ---------------------------------------------------------------------------------------------
# many fact sets


def run_sessions(rules: list[Rule], fact_sets: Sequence[Sequence[BaseModel]], timeout: float | Limits | None = None
                 ) -> tuple[list[Session], WorkerRun]:
    """Run every fact set as its own session, up to ``MAX_SESSIONS_PER_WORKER`` per worker process, as many
    workers at a time as there are cores."""
    require_engine()
    limits = as_limits(timeout)
    sids = session_ids(min(len(fact_sets), MAX_SESSIONS_PER_WORKER))
    chunks = [[prepare_session(facts, sid, rules) for facts, sid in zip(fact_sets[start:start + MAX_SESSIONS_PER_WORKER], sids)]
              for start in range(0, len(fact_sets), MAX_SESSIONS_PER_WORKER)]
    parallel = max(1, min(len(chunks), os.cpu_count() or 1))
    runs: list[WorkerRun | None] = [None] * len(chunks)
    running: list[tuple[int, Child]] = []
    try:
        for index, chunk in enumerate(chunks):
            running.append((index, start_payload(engine_payload(rules, chunk), limits)))
            if len(running) >= parallel:
                done, process = running.pop(0)
                runs[done] = _worker_run(payload_result(process))
        for done, process in running:
            runs[done] = _worker_run(payload_result(process))
    finally:
        for _, process in running:
            process.kill()
    return [s for chunk in chunks for s in chunk], _merge([r for r in runs if r is not None])


def _merge(runs: list[WorkerRun]) -> WorkerRun:
    failures: dict[str, dict[str, Any]] = {}
    for run in runs:
        for rule_id, failure in run.failures.items():
            merged = failures.setdefault(rule_id, {"count": 0, "messages": []})
            merged["count"] += failure["count"]
            merged["messages"] += failure["messages"][: max(0, worker.MAX_MESSAGES_PER_RULE - len(merged["messages"]))]
    return WorkerRun(
        sessions=[s for run in runs for s in run.sessions],
        failures=failures,
        skipped=sorted({r for run in runs for r in run.skipped}),
        engine={"workers": [run.engine for run in runs]},
    )


# ---------------------------------------------------------------------------------------------
# the worker process


def engine_payload(rules: list[Rule], sessions: list[Session]) -> dict[str, Any]:
    return {
        "ruleset": RULESET,
        "rules": [
            {
                "rule_id": r.id,
                "engine_rules": [{"name": d.name, "all": d.all} for d in r.engine_rules],
                "aliases": r.aliases,
                "action_path": str(r.path) if r.has_action else None,
            }
            for r in rules
        ],
        "sessions": [{"sid": s.sid, "facts": [f.engine for f in s.facts], "gate": s.gate} for s in sessions],
    }


def run_worker(rules: list[Rule], sessions: list[Session], timeout: float | Limits | None) -> WorkerRun:
    return _worker_run(run_payload(engine_payload(rules, sessions), timeout))


def _worker_run(raw: dict[str, Any]) -> WorkerRun:
    return WorkerRun(
        sessions=[_session_result(s) for s in raw["sessions"]],
        failures=raw["failures"],
        skipped=raw["skipped"],
        engine=raw["engine"],
    )


def _session_result(raw: dict[str, Any]) -> SessionResult:
    """Matches deduplicated by (rule id, fact ids): the first of equal matches is kept."""
    result = SessionResult(asserted=raw["asserted"], unmatched=raw["unmatched"], errors=list(raw["errors"]),
                           unmatched_ids={str(i) for i in raw.get("unmatched_ids", ())})
    for rule_id, ids, extra in raw["matches"]:
        result.matches.setdefault(rule_id, {}).setdefault(tuple(ids), extra)
    return result


def start_payload(payload: dict[str, Any], limits: Limits) -> Child:
    """Start ``python -m diag.engine.worker`` on ``payload`` (from the main thread: see ``diag.engine.child``)."""
    try:
        return Child("diag.engine.worker", pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), limits)
    except OSError as exc:
        raise AnalysisFailed(f"the rules worker process could not be started: {exc}") from exc


def payload_result(worker_process: Child) -> dict[str, Any]:
    """The worker's result; any failure of the worker is ``AnalysisFailed``, never an empty result."""
    outcome = worker_process.wait()
    limits = worker_process.limits
    if outcome.timed_out:
        raise AnalysisFailed(f"the rules worker {outcome.describe(limits)}")
    if outcome.returncode != 0:
        raise AnalysisFailed(f"the rules worker {outcome.describe(limits)}{outcome.last_words()}; "
                             "its findings are unknown")
    try:
        result = pickle.loads(outcome.stdout)
    except Exception as exc:  # noqa: BLE001 - truncated or garbled, or nothing at all
        raise AnalysisFailed(f"the result of the rules worker could not be read ({exc}){outcome.last_words()}"
                             ) from None
    if not isinstance(result, dict):
        raise AnalysisFailed("the rules worker returned something other than its result")
    if "fatal" in result:
        raise AnalysisFailed(f"the rules could not be run: {result['fatal']}")
    return result


def run_payload(payload: dict[str, Any], timeout: float | Limits | None) -> dict[str, Any]:
    """Run the worker on ``payload`` and wait for it; any failure is ``AnalysisFailed``."""
    return payload_result(start_payload(payload, as_limits(timeout)))


def as_limits(limits: float | Limits | None) -> Limits:
    """A bare number is a timeout in seconds, with the default memory limit."""
    return limits if isinstance(limits, Limits) else Limits(timeout=limits)
