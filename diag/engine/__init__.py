"""engine: durable_rules run safely: one ruleset, one fresh worker process per check.

``run_rules(facts)`` checks facts against the YAML rules in ``rules/`` and returns an
``EngineResult``; see ``diag.engine.rules`` for the rule file format and its checks.
"""

from diag.engine.ids import IdAllocator, fnv1a32
from diag.engine.rules import Rule, RuleFileError, load_rule, load_rules
from diag.engine.runner import EngineResult, run_rules

__all__ = [
    "EngineResult",
    "IdAllocator",
    "Rule",
    "RuleFileError",
    "fnv1a32",
    "load_rule",
    "load_rules",
    "run_rules",
]
