"""Whether durable_rules' C extension can run here: asked once, before a trace is read, so that a broken
install is one line at once and not an "analysis failed" after the read."""

from __future__ import annotations

import sys

from diag.errors import EngineUnavailable

# On CPython 3.13 durable-rules 2.0.28 builds, but its extension calls PyEval_CallObject, which 3.13
# removed: the import then fails on that symbol. The one compiler macro below fixes the build, unpatched.
REBUILD = ("CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject pip install --no-cache-dir --force-reinstall "
           "durable-rules==2.0.28")


# On CPython 3.12.1 durable-rules 2.0.28 segfaults on a two-fact join in a bare engine (tests/
# test_engine_regressions.py, pair_join: the shape that runs on 3.11 and 3.13), the cause unknown. wnvdiag's own
# suite passed there, but a run is not trusted on an engine that crashes on its plain use: refused, said why.
UNSUPPORTED = {(3, 12): "durable-rules 2.0.28 crashes (segfault) on a plain two-fact join on CPython 3.12; "
                        "use Python 3.11 or 3.13 (see the README)"}


def require_engine(version: tuple[int, int] | None = None) -> None:
    why = UNSUPPORTED.get(tuple(version or sys.version_info[:2]))
    if why:
        raise EngineUnavailable(f"the rules engine is not supported on this Python: {why}")
    try:
        import durable_rules_engine  # noqa: F401  (the C extension; durable.engine imports it first)
    except ImportError as exc:
        if "PyEval_CallObject" in str(exc):
            raise EngineUnavailable("the rules engine cannot load: durable-rules was built for Python 3.13 "
                                    f"without the macro it needs there; rebuild it with: {REBUILD}") from None
        raise EngineUnavailable(f"the rules engine cannot load: durable-rules is not usable ({exc})") from None
