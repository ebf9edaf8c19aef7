"""engine: durable_rules run safely: one ruleset, one fresh worker process per check.

``run_rules(facts)`` checks facts against the rules in ``rules/`` (plus user rule directories)
and returns an ``EngineResult``. ``diag.engine.rules`` describes the rule files,
``diag.engine.conditions`` the ``when:`` language, ``diag.engine.compile`` what durable_rules
receives, ``diag.engine.reference`` the plain-Python evaluator the engine is checked against.

The names below are imported on first use, so that the worker process
(``python -m diag.engine.worker``) starts without loading the rule machinery it does not need.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EngineResult": "diag.engine.runner",
    "run_rules": "diag.engine.runner",
    "run_sessions": "diag.engine.runner",
    "require_engine": "diag.engine.available",
    "IdAllocator": "diag.engine.ids",
    "fnv1a32": "diag.engine.ids",
    "Rule": "diag.engine.rules",
    "load_rule": "diag.engine.rules",
    "load_rules": "diag.engine.rules",
    "rule_problems": "diag.engine.rules",
    "select_rules": "diag.engine.rules",
    "RuleFileError": "diag.engine.source",
}

__all__ = [
    "EngineResult",
    "IdAllocator",
    "Rule",
    "RuleFileError",
    "fnv1a32",
    "load_rule",
    "load_rules",
    "require_engine",
    "rule_problems",
    "run_rules",
    "run_sessions",
    "select_rules",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diag.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
