"""The differential test: the engine against the reference evaluator on generated fact sets.

For each rule, fact sets are generated from the pydantic fact models with small value domains
(0, 1, 2, the rule's own constants and their neighbours, a few words, the strings its regular
expressions accept) so that joins collide and thresholds are met on both sides. Every set runs
in the real engine, one session each, hundreds per worker process and all rules in one ruleset;
the reference evaluator computes the exact set of matches each rule must have; any difference
is a missed or an extra match.

Hypothesis draws the sets when it is installed (the ``test`` extra); otherwise a seeded
``random.Random`` makes the same choices.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from diag.engine.aggregate import AggregateSpec
from diag.engine.conditions import Arith, Test, field_types, references, tests_of
from diag.engine.reference import expected_matches, match_key
from diag.engine.rules import Rule
from diag.engine.runner import Session, run_sessions
from diag.facts.models import FACT_MODELS

with warnings.catch_warnings():  # deprecated names of the same modules; fine on 3.11 and 3.12
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants
    import sre_parse

Choose = Callable[[Sequence[Any]], Any]  # picks one of the options

MAX_FACTS = 10
BASE_NUMBERS = (0, 1, 2)
BASE_WORDS = ("a", "b")
BASE_TIMES = (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))


@dataclass
class RuleComparison:
    """How the engine did on one rule's generated sets."""

    rule_id: str
    sets: int = 0
    expected: int = 0
    fired: int = 0
    missed: int = 0
    extra: int = 0
    errors: list[str] = field(default_factory=list)
    example: dict[str, Any] | None = None  # the smallest set with a difference

    @property
    def passed(self) -> bool:
        return not (self.missed or self.extra or self.errors)


# ---------------------------------------------------------------------------------------------
# value domains


def domains(rule: Rule) -> dict[str, dict[str, list[Any]]]:
    """kind -> field -> the values generated facts of that kind take. An aggregate's facts are generated
    as the facts it reads, with its thresholds (halved, so that two facts reach them) in the field it sums
    and times around its window."""
    tests = [t for p in rule.condition.patterns for t in tests_of(p.expr)]
    for spec in rule.condition.aggregates:
        tests += tests_of(spec.where) if spec.where is not None else []
        tests += _aggregate_hints(spec, [t for p in rule.condition.patterns if p.aggregate is spec
                                         for t in tests_of(p.expr)])
    kinds = {p.aggregate.kind if p.aggregate else p.kind for p in rule.condition.patterns}
    return {kind: _kind_domain(kind, tests) for kind in sorted(kinds)}


def _aggregate_hints(spec: AggregateSpec, tests: list[Test]) -> list[Test]:
    """Made-up tests whose constants steer the generated facts towards the aggregate's thresholds."""
    hints = []
    for test in tests:
        if test.field == "value" and isinstance(test.operand, (int, float)) and not isinstance(test.operand, bool) \
                and spec.field is not None and spec.function == "sum":
            half = test.operand // 2 if isinstance(test.operand, int) else test.operand / 2
            hints += [Test("eq", spec.field, value, test.where) for value in (test.operand, half)]
        elif test.field in spec.group_by and not references(test.operand) and test.op not in ("ex", "nex"):
            hints.append(Test("eq", test.field, test.operand, test.where))
    if spec.window is not None and spec.time is not None:
        start = BASE_TIMES[0]
        for seconds in (spec.window / 2, spec.window, spec.window + 1):
            hints.append(Test("eq", spec.time, start + timedelta(seconds=seconds), ()))
    return hints


def _kind_domain(kind: str, tests: list[Test]) -> dict[str, list[Any]]:
    fields = {name: _field_domain(kind, name, tests) for name in field_types(kind) if name != "kind"}
    for name, info in FACT_MODELS[kind].model_fields.items():
        if info.is_required() and not fields.get(name):
            raise ValueError(f"cannot generate {kind} facts: no valid value for its required field {name!r}")
    return fields


def _field_domain(kind: str, name: str, tests: list[Test]) -> list[Any]:
    info = FACT_MODELS[kind].model_fields[name]
    adapter = TypeAdapter(Annotated[info.annotation, *info.metadata]) if info.metadata else TypeAdapter(info.annotation)
    candidates = _literal_values(info.annotation) or _candidates(field_types(kind)[name].category, name, tests,
                                                                 _is_time(info.annotation))
    if field_types(kind)[name].optional:
        candidates.append(None)
    values = []
    for value in candidates:
        try:
            valid = adapter.validate_python(value)
        except ValidationError:
            continue
        if valid not in values:
            values.append(valid)
    return values


def _candidates(category: str, name: str, tests: list[Test], is_time: bool) -> list[Any]:
    constants = _constants(name, tests)
    if category == "bool":
        return [True, False]
    if category == "number":
        numbers = [n for c in constants if isinstance(c, (int, float)) for n in (c - 1, c, c + 1)]
        return [*BASE_NUMBERS, *numbers]
    if is_time:
        return [*BASE_TIMES, *constants]
    words = [s for t in tests if t.field == name and t.op in ("mt", "imt") for s in regex_samples(t.operand)]
    return [*BASE_WORDS, *constants, *words]


def _constants(name: str, tests: list[Test]) -> list[Any]:
    """Constants the rule compares ``name`` with, and the numbers in its arithmetic."""
    out: list[Any] = []
    for test in tests:
        if test.op in ("ex", "nex", "mt", "imt"):
            continue
        if test.field == name and not references(test.operand):
            out.append(test.operand)
        if isinstance(test.operand, Arith):
            out += _arith_numbers(test.operand)
    return out


def _arith_numbers(operand: Any) -> list[Any]:
    if isinstance(operand, Arith):
        return _arith_numbers(operand.left) + _arith_numbers(operand.right)
    return [operand] if isinstance(operand, (int, float)) and not isinstance(operand, bool) else []


def _literal_values(annotation: Any) -> list[Any]:
    """The allowed values of a ``Literal`` or ``Enum`` field (``None`` removed), else nothing."""
    for arg in (annotation, *get_args(annotation)):
        if get_origin(arg) is Literal:
            return list(get_args(arg))
        if isinstance(arg, type) and issubclass(arg, Enum):
            return [member.value for member in arg]
    return []


def _is_time(annotation: Any) -> bool:
    return datetime in getattr(annotation, "__args__", ()) or annotation is datetime


def regex_samples(pattern: str) -> list[str]:
    """A few strings the pattern accepts (shortest repeats, first alternatives) and variants."""
    out = []
    for pick in (0, 1):
        try:
            out.append(_sample(sre_parse.parse(pattern), pick))
        except (ValueError, TypeError, KeyError):
            continue
    return out + [s.upper() for s in out]


def _sample(parsed: Any, pick: int) -> str:
    text = ""
    for op, arg in parsed:
        if op is sre_constants.LITERAL:
            text += chr(arg)
        elif op is sre_constants.ANY:
            text += "x"
        elif op is sre_constants.IN:
            text += _class_char(arg, pick)
        elif op is sre_constants.SUBPATTERN:
            text += _sample(arg[-1], pick)
        elif op is sre_constants.BRANCH:
            branches = arg[1]
            text += _sample(branches[min(pick, len(branches) - 1)], pick)
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, inner = arg
            count = low + pick if high is sre_constants.MAXREPEAT or low + pick <= high else low
            text += "".join(_sample(inner, pick) for _ in range(count))
        else:
            raise ValueError(f"unsupported regex element {op}")
    return text


def _class_char(items: Any, pick: int) -> str:
    op, arg = items[min(pick, len(items) - 1)]
    if op is sre_constants.LITERAL:
        return chr(arg)
    if op is sre_constants.RANGE:
        return chr(arg[0] + pick if arg[0] + pick <= arg[1] else arg[0])
    raise ValueError(f"unsupported class element {op}")


# ---------------------------------------------------------------------------------------------
# fact sets


def fact_set(choose: Choose, rule_domains: dict[str, dict[str, list[Any]]]) -> list[BaseModel]:
    """One set of up to ``MAX_FACTS`` facts of the rule's kinds, every value from its domain."""
    kinds = sorted(rule_domains)
    facts = []
    for _ in range(choose(range(MAX_FACTS + 1))):
        kind = choose(kinds)
        values = {name: choose(options) for name, options in rule_domains[kind].items() if options}
        facts.append(FACT_MODELS[kind](**values))
    return facts


def generate_fact_sets(rule: Rule, count: int, seed: int = 0) -> list[list[BaseModel]]:
    """``count`` fact sets for ``rule``: drawn by hypothesis if installed, else by ``random``."""
    return _sets_for(rule.id, domains(rule), count, seed)


def _sets_for(rule_id: str, rule_domains: dict[str, dict[str, list[Any]]], count: int,
              seed: int) -> list[list[BaseModel]]:
    try:
        sets = _hypothesis_sets(rule_domains, count, seed)
    except ImportError:
        sets = []
    rnd = random.Random(f"{seed}:{rule_id}")
    while len(sets) < count:  # hypothesis may stop early on a small space; top up
        sets.append(fact_set(lambda options: rnd.choice(list(options)), rule_domains))
    return sets[:count]


Job = tuple[str, dict[str, dict[str, list[Any]]], int, int]  # rule id, domains, sets, seed


def _try_sets(job: Job) -> list[list[BaseModel]] | str:
    try:
        return _sets_for(*job)
    except ValueError as exc:  # a domain no model accepts: the rule's error, not the run's
        return str(exc)


def _generate_all(jobs: list[Job]) -> list[list[list[BaseModel]] | str]:
    """The sets of every job. Drawing them is most of the differential test's time (hypothesis builds
    every model), so with two cores or more a child (``python -m diag.engine.differential``) draws the
    second half meanwhile. The draws are seeded: the split changes nothing. A child that fails is
    replaced by drawing here."""
    import pickle

    from diag.engine.child import Child, Limits

    split = len(jobs) // 2 if (os.cpu_count() or 1) > 1 and len(jobs) > 1 else len(jobs)
    child = Child("diag.engine.differential", pickle.dumps(jobs[split:]), Limits(timeout=3600)) \
        if split < len(jobs) else None
    here = [_try_sets(job) for job in jobs[:split]]
    there: list[list[list[BaseModel]] | str] | None = None
    if child is not None:
        outcome = child.wait()
        try:
            there = pickle.loads(outcome.stdout) if outcome.returncode == 0 else None
        except Exception:  # noqa: BLE001 - garbled: draw them here
            there = None
        if there is None or len(there) != len(jobs) - split:
            there = [_try_sets(job) for job in jobs[split:]]
    return here + (there or [])


def main() -> None:
    """The child of ``_generate_all``: jobs in on stdin, their sets out on stdout."""
    import pickle
    import sys

    from diag.engine.child import harden

    harden()
    jobs = pickle.load(sys.stdin.buffer)
    sys.stdout.buffer.write(pickle.dumps([_try_sets(job) for job in jobs], protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.flush()


def _hypothesis_sets(rule_domains: dict[str, dict[str, list[Any]]], count: int, seed: int) -> list[list[BaseModel]]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis import strategies as st

    models = [st.builds(FACT_MODELS[kind], **{name: st.sampled_from(options) for name, options in fields.items() if options})
              for kind, fields in rule_domains.items()]
    sets: list[list[BaseModel]] = []

    @fixed_seed(seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.lists(st.one_of(models), max_size=MAX_FACTS))
    def collect(facts: list[BaseModel]) -> None:
        sets.append(facts)

    collect()
    return sets


# ---------------------------------------------------------------------------------------------
# the comparison


def compare_with_reference(rules: list[Rule], sets_per_rule: int = 200, seed: int = 0,
                           timeout: float | None = None, phase: Callable[[str], None] | None = None
                           ) -> list[RuleComparison]:
    """Run ``sets_per_rule`` generated sets per rule through the engine; compare with the reference.
    ``phase(text)`` is told each phase as it starts."""
    phase = phase or (lambda _text: None)
    phase(f"differential test: generating {sets_per_rule} fact set(s) per rule")
    results = {r.id: RuleComparison(r.id) for r in rules}
    owners: list[Rule] = []
    fact_sets: list[list[BaseModel]] = []
    jobs: list[Job] = []
    for rule in rules:
        try:
            jobs.append((rule.id, domains(rule), sets_per_rule, seed))
        except ValueError as exc:
            results[rule.id].errors.append(str(exc))
    by_id = {r.id: r for r in rules}
    for job, generated in zip(jobs, _generate_all(jobs)):
        if isinstance(generated, str):
            results[job[0]].errors.append(generated)
            continue
        owners += [by_id[job[0]]] * len(generated)
        fact_sets += generated
    phase(f"differential test: {len(fact_sets)} fact set(s) through the engine, then the reference evaluator")
    sessions, run = run_sessions(rules, fact_sets, timeout)
    for rule_id, failure in run.failures.items():
        results[rule_id].errors += [f"action failed: {m}" for m in failure["messages"]]
    for rule, session, outcome in zip(owners, sessions, run.sessions):
        _compare_one(results[rule.id], rule, session, set(outcome.matches.get(rule.id, {})), outcome.errors)
    return [results[r.id] for r in rules]


def comparable(session: Session, fired_ids: set[tuple[str, ...]]) -> tuple[list[dict[str, Any]], set[tuple[str, ...]]]:
    """What the reference reads (the plain facts: it computes the aggregates itself) and the engine's
    matches in the reference's terms (a derived fact is told by its content, not its id)."""
    facts = [f.engine for f in session.facts if not f.sources]
    derived = {f.id: match_key(f.engine) for f in session.facts if f.sources}
    return facts, {tuple(derived.get(i, i) for i in ids) for ids in fired_ids}


def _compare_one(result: RuleComparison, rule: Rule, session: Session, fired_ids: set[tuple[str, ...]],
                 errors: list[str]) -> None:
    facts, fired = comparable(session, fired_ids)
    expected = expected_matches(rule.condition, facts)
    missed, extra = expected - fired, fired - expected
    result.sets += 1
    result.expected += len(expected)
    result.fired += len(fired)
    result.missed += len(missed)
    result.extra += len(extra)
    result.errors += errors
    if (missed or extra or errors) and (result.example is None or len(facts) < len(result.example["facts"])):
        result.example = {"facts": facts, "missed": sorted(missed), "extra": sorted(extra), "errors": errors}


if __name__ == "__main__":
    main()
