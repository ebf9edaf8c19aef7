"""The rules worker: ``python -m diag.engine.worker``, a fresh process for each check.

It reads one pickled payload on stdin, builds one durable_rules host with ONE ruleset holding
every rule, and for each session (a sid with its facts; a check has one, the differential test
has hundreds) asserts the facts one at a time and then the gate fact. It writes one pickled
result on stdout and exits. Everything it gets and returns is plain data; building findings is
the parent's job (``diag.engine.runner``). What rule actions print goes to stderr.

Why a process of its own: durable_rules keeps C state for the life of the process (a real reset
needs a new process), a crash in its core takes the whole process down (the parent turns that
into ``AnalysisFailed``), and a second ruleset in one process triggers a known out-of-bounds read.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCALARS = (str, int, float, bool, type(None))
MAX_MESSAGES_PER_RULE = 3
MAX_LATE_DISPATCH_ROUNDS = 1000

Match = tuple[str, list[str], "dict[str, Any] | None"]  # rule id, fact ids in alias order, extra evidence


def main() -> None:
    """Read the payload, run, write one result, exit without interpreter teardown."""
    from diag.engine.child import harden

    harden()  # memory limit, and no life after the parent's
    faulthandler.enable()  # a crash in the C core leaves a Python traceback on stderr
    result_fd = os.dup(1)
    os.dup2(2, 1)  # print() in a rule action must not corrupt the result
    try:
        result = run(pickle.load(sys.stdin.buffer))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        result = {"fatal": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    code = 0
    try:
        with os.fdopen(result_fd, "wb") as out:
            pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip interpreter finalisation: the durable_rules C state is never freed, and a result
        # already sent must not be followed by a crash in teardown.
        os._exit(code)


class _Recorder:
    """Collects matches per session and failures per rule; every action reports here."""

    def __init__(self, sids: list[str]) -> None:
        self.session_of = {sid: index for index, sid in enumerate(sids)}
        self.matches: list[list[Match]] = [[] for _ in sids]
        self.failures: dict[str, list[str]] = defaultdict(list)
        self.failure_counts: dict[str, int] = defaultdict(int)
        self.calls = 0

    def fail(self, rule_id: str, message: str) -> None:
        self.failure_counts[rule_id] += 1
        if len(self.failures[rule_id]) < MAX_MESSAGES_PER_RULE:
            self.failures[rule_id].append(message)


def run(payload: dict[str, Any]) -> dict[str, Any]:
    from durable import engine as dr

    class SyncHost(dr.Host):
        """A host without the background dispatch and timer threads.

        ``Host.__init__`` starts daemon threads that call ``dispatch()`` every 0.2 s; they race the
        caller for the action lease, so actions may run after ``assert_fact`` has returned. With
        ``_run`` disabled every action runs inside the ``assert_fact`` call that caused it.
        """

        def _run(self) -> None:
            return None

    ruleset = payload["ruleset"]
    sessions = payload["sessions"]
    recorder = _Recorder([s["sid"] for s in sessions])
    definition, skipped = _definition(payload["rules"], recorder)
    session_results = [{"sid": s["sid"], "asserted": 0, "unmatched": 0, "unmatched_ids": [], "errors": []}
                       for s in sessions]
    host = None
    late = 0
    if definition:
        host = SyncHost()
        host.register_rulesets({ruleset: definition})
        for session, outcome in zip(sessions, session_results):
            _assert_session(host, ruleset, session, outcome, dr)
        late = _dispatch_leftovers(host.get_ruleset(ruleset), recorder, session_results)
        for session, outcome in zip(sessions, session_results):
            _check_state(host, ruleset, session["sid"], outcome)
    for outcome, matches in zip(session_results, recorder.matches):
        outcome["matches"] = matches
    return {
        "sessions": session_results,
        "failures": {rule_id: {"count": recorder.failure_counts[rule_id], "messages": messages}
                     for rule_id, messages in recorder.failures.items()},
        "skipped": skipped,
        "engine": {"pid": os.getpid(), "threads": threading.active_count(), "late_actions": late,
                   "rulesets": 0 if host is None else len(host._ruleset_list), "actions": recorder.calls},
    }


def _definition(rules: list[dict[str, Any]], recorder: _Recorder) -> tuple[dict[str, Any], list[str]]:
    """The one ruleset: every durable rule of every rule, each action bound to its rule id."""
    definition: dict[str, Any] = {}
    skipped: list[str] = []
    for rule in rules:
        action = None
        if rule["action_path"] is not None:
            try:
                action = _load_action(rule["action_path"])
            except Exception as exc:  # noqa: BLE001
                recorder.fail(rule["rule_id"], f"its action cannot be loaded: {type(exc).__name__}: {exc}")
                skipped.append(rule["rule_id"])
                continue
        run_action = _make_action(rule["rule_id"], rule["aliases"], action, recorder)
        for engine_rule in rule["engine_rules"]:
            definition[engine_rule["name"]] = {"all": engine_rule["all"], "run": run_action}
    return definition, skipped


def _load_action(path: str) -> Callable[..., Any] | None:
    from diag.engine.pyrules import load_action

    return load_action(Path(path))


def _assert_session(host: Any, ruleset: str, session: dict[str, Any], outcome: dict[str, Any], dr: Any) -> None:
    """Assert the facts one at a time, then the gate; every refusal is recorded, none ignored."""
    for fact in session["facts"]:
        try:
            host.assert_fact(ruleset, fact)
        except dr.MessageNotHandledException:
            outcome["unmatched"] += 1  # normal: most facts match no rule
            outcome["unmatched_ids"].append(fact["id"])
        except dr.MessageObservedException:
            outcome["errors"].append(f"fact {fact['id']} was refused as already observed (id hash collision); "
                                     "it was not checked")
            continue
        except Exception as exc:  # noqa: BLE001
            outcome["errors"].append(f"fact {fact['id']} could not be asserted: {type(exc).__name__}: {exc}")
            continue
        outcome["asserted"] += 1
    try:
        host.assert_fact(ruleset, session["gate"])
    except dr.MessageNotHandledException:
        pass  # no rule waits for the gate
    except Exception as exc:  # noqa: BLE001
        outcome["errors"].append(f"the gate fact could not be asserted: {type(exc).__name__}: {exc}")


def _dispatch_leftovers(compiled: Any, recorder: _Recorder, outcomes: list[dict[str, Any]]) -> int:
    """Every action should have run inside its assert_fact; run any left over and say so."""
    late = 0
    for _ in range(MAX_LATE_DISPATCH_ROUNDS):
        before = recorder.calls
        try:
            compiled.dispatch()
        except Exception as exc:  # noqa: BLE001
            outcomes[0]["errors"].append(f"dispatching pending actions failed: {type(exc).__name__}: {exc}")
            break
        if recorder.calls == before:
            break
        late += recorder.calls - before
    if late:
        outcomes[0]["errors"].append(f"{late} action(s) were still pending after the last fact; they were run late")
    return late


def _check_state(host: Any, ruleset: str, sid: str, outcome: dict[str, Any]) -> None:
    """durable_rules records an exception that escaped an action in the session state."""
    try:
        state = host.get_state(ruleset, sid)
    except Exception:  # noqa: BLE001 - a session no fact reached has no state
        return
    if isinstance(state, dict) and state.get("exception"):
        outcome["errors"].append(f"an action failed inside durable_rules: {state['exception']}")


def _make_action(
    rule_id: str,
    aliases: list[str],
    action: Callable[[dict[str, dict[str, Any]]], Any] | None,
    recorder: _Recorder,
) -> Callable[[Any], None]:
    """The durable_rules action of one rule: record the match, never let an exception escape.

    durable_rules would swallow an exception into the session state and carry on, so the rule
    would silently lose that match; here it is recorded against the rule instead.
    """

    def record(c: Any) -> None:  # exactly one parameter: durable_rules checks co_argcount
        recorder.calls += 1
        try:
            facts = [c._m[alias] for alias in aliases]
            matches = recorder.matches[recorder.session_of[facts[0]["sid"]]]
            ids = [str(f["id"]) for f in facts]
        except BaseException as exc:  # noqa: BLE001 - recorded, not swallowed
            recorder.fail(rule_id, f"the match could not be read: {type(exc).__name__}: {exc}")
            return
        extra = None
        if action is not None:
            try:
                extra = _run_action(action, aliases, facts)
            except BaseException as exc:  # noqa: BLE001 - the match is kept, the rule marked failed
                recorder.fail(rule_id, f"its action failed: {type(exc).__name__}: {exc}")
        matches.append((rule_id, ids, extra))

    return record


def _run_action(action: Callable[..., Any], aliases: list[str], facts: list[Any]) -> dict[str, Any] | None:
    match = {alias: {k: v for k, v in fact.items() if k not in ("id", "sid")} for alias, fact in zip(aliases, facts)}
    extra = action(match)
    if extra is None:
        return None
    if not isinstance(extra, dict) or not all(isinstance(k, str) and isinstance(v, SCALARS) for k, v in extra.items()):
        raise TypeError("the action must return None or a dict of str -> scalar values")
    return dict(extra)


if __name__ == "__main__":
    main()
