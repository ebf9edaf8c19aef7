"""The rules worker: runs in a fresh process (multiprocessing "spawn"), one per check.

It builds one durable_rules host with one ruleset holding every rule, asserts the facts one at a
time, asserts the gate fact last, and sends the raw matches back over a pipe. Everything it gets
and returns is plain data; building findings is the parent's job (``diag.engine.runner``).

Why a process of its own: durable_rules keeps C state for the life of the process (a real reset
needs a new process), crashes in its core take the whole process down (the parent turns that into
``AnalysisFailed``), and more than one ruleset per process triggers a known out-of-bounds read.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

SCALARS = (str, int, float, bool, type(None))
MAX_MESSAGES_PER_RULE = 3


def main(conn: Any, payload: dict[str, Any]) -> None:
    """Process entry point: run, send one result, exit without interpreter teardown."""
    try:
        result = run(payload)
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        result = {"fatal": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    code = 0
    try:
        conn.send(result)
        conn.close()
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip interpreter finalisation: the durable_rules C state is never freed, and a result
        # already sent must not be followed by a crash in teardown.
        os._exit(code)


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

    ruleset, sid = payload["ruleset"], payload["sid"]
    matches: list[tuple[str, dict[str, str], dict[str, Any] | None]] = []
    failures: dict[str, list[str]] = defaultdict(list)
    failure_counts: dict[str, int] = defaultdict(int)
    calls = [0]

    def fail(rule_id: str, message: str) -> None:
        failure_counts[rule_id] += 1
        if len(failures[rule_id]) < MAX_MESSAGES_PER_RULE:
            failures[rule_id].append(message)

    definition: dict[str, Any] = {}
    skipped: list[str] = []
    for rule in payload["rules"]:
        hook = None
        if rule["hook"] is not None:
            try:
                hook = _load_hook(rule["hook"])
            except Exception as exc:  # noqa: BLE001
                fail(rule["id"], f"action {rule['hook']['module']}:{rule['hook']['function']} cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}")
                skipped.append(rule["id"])
                continue
        definition[rule["id"]] = {
            "all": rule["all"],
            "run": _make_action(rule["id"], rule["aliases"], hook, matches, fail, calls),
        }

    engine_errors: list[str] = []
    asserted = unmatched = 0
    if definition:
        host = SyncHost()
        host.register_rulesets({ruleset: definition})
        for fact in payload["facts"]:
            try:
                host.assert_fact(ruleset, fact)
            except dr.MessageNotHandledException:
                unmatched += 1  # normal: most facts match no rule
            except dr.MessageObservedException:
                engine_errors.append(
                    f"fact {fact['id']} was refused as already observed (id hash collision); it was not checked"
                )
                continue
            except Exception as exc:  # noqa: BLE001
                engine_errors.append(f"fact {fact['id']} could not be asserted: {type(exc).__name__}: {exc}")
                continue
            asserted += 1

        try:
            host.assert_fact(ruleset, payload["gate"])
        except dr.MessageNotHandledException:
            pass  # no rule waits for the gate
        except Exception as exc:  # noqa: BLE001
            engine_errors.append(f"the gate fact could not be asserted: {type(exc).__name__}: {exc}")

        # Every action should have run inside its assert_fact; dispatch anything left (none expected).
        compiled = host.get_ruleset(ruleset)
        for _ in range(1000):
            before = calls[0]
            try:
                compiled.dispatch()
            except Exception as exc:  # noqa: BLE001
                engine_errors.append(f"dispatching pending actions failed: {type(exc).__name__}: {exc}")
                break
            if calls[0] == before:
                break
            engine_errors.append("actions were still pending after the last fact; they were run late")

        state = host.get_state(ruleset, sid)
        if isinstance(state, dict) and state.get("exception"):
            engine_errors.append(f"an action failed inside durable_rules: {state['exception']}")

    return {
        "matches": matches,
        "failures": {rule_id: {"count": failure_counts[rule_id], "messages": msgs} for rule_id, msgs in failures.items()},
        "skipped": skipped,
        "engine_errors": engine_errors,
        "asserted": asserted,
        "unmatched": unmatched,
        "actions": calls[0],
    }


def _make_action(
    rule_id: str,
    aliases: list[str],
    hook: Callable[[dict[str, dict[str, Any]]], Any] | None,
    matches: list[tuple[str, dict[str, str], dict[str, Any] | None]],
    fail: Callable[[str, str], None],
    calls: list[int],
) -> Callable[[Any], None]:
    """The durable_rules action of one rule: record the match, never let an exception escape.

    durable_rules would swallow an exception into the session state and carry on, so the rule
    would silently lose that match; here it is recorded against the rule instead.
    """

    def action(c: Any) -> None:
        calls[0] += 1
        try:
            message = c._m
            ids = {alias: str(message[alias]["id"]) for alias in aliases}
            extra = None
            if hook is not None:
                facts = {
                    alias: {k: v for k, v in message[alias].items() if k not in ("id", "sid")} for alias in aliases
                }
                extra = hook(facts)
                if extra is not None:
                    if not isinstance(extra, dict) or not all(
                        isinstance(k, str) and isinstance(v, SCALARS) for k, v in extra.items()
                    ):
                        raise TypeError("the action must return None or a dict of str -> scalar values")
                    extra = dict(extra)
            matches.append((rule_id, ids, extra))
        except BaseException as exc:  # noqa: BLE001 - recorded, not swallowed
            fail(rule_id, f"{type(exc).__name__}: {exc}")

    return action


def _load_hook(spec: dict[str, str]) -> Callable[..., Any]:
    """Import ``module:function``; a module file beside the rule file takes precedence."""
    module_name, function, directory = spec["module"], spec["function"], spec["directory"]
    candidate = Path(directory) / (module_name.replace(".", os.sep) + ".py")
    if candidate.is_file():
        unique = f"wnvdiag_rule_action_{zlib.crc32(str(candidate.resolve()).encode()):08x}"
        if unique in sys.modules:
            return _attribute(sys.modules[unique], module_name, function)
        module_spec = importlib.util.spec_from_file_location(unique, candidate)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {candidate}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[unique] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    return _attribute(module, module_name, function)


def _attribute(module: Any, module_name: str, function: str) -> Callable[..., Any]:
    fn = getattr(module, function)
    if not callable(fn):
        raise TypeError(f"{module_name}:{function} is not callable")
    return fn
