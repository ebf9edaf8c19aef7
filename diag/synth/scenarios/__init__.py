"""The scenario library: one module per scenario, each defining ``SCENARIO``.

The registry is built by scanning this package's modules, so adding a scenario is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from diag.synth.scenarios.base import Finding, Params, Scenario, Story
from diag.synth.scenarios.findings import FINDINGS

_NOT_SCENARIOS = frozenset({"base", "findings"})


@lru_cache(maxsize=1)
def registry() -> dict[str, Scenario]:
    """Every scenario by name, sorted by name."""
    found: dict[str, Scenario] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_SCENARIOS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        scenario = getattr(module, "SCENARIO", None)
        if not isinstance(scenario, Scenario):
            raise TypeError(f"scenario module {info.name} defines no SCENARIO")
        if scenario.name in found:
            raise ValueError(f"two scenarios are named {scenario.name!r}")
        found[scenario.name] = scenario
    return dict(sorted(found.items()))


__all__ = ["FINDINGS", "Finding", "Params", "Scenario", "Story", "registry"]
