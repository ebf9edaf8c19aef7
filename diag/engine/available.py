"""Whether durable_rules' C extension can run here: asked once, before a trace is read, so that a broken
install is one line at once and not an "analysis failed" after the read."""

from __future__ import annotations

from diag.errors import EngineUnavailable

# On CPython 3.13 durable-rules 2.0.28 builds, but its extension calls PyEval_CallObject, which 3.13
# removed: the import then fails on that symbol. The one compiler macro below fixes the build, unpatched.
REBUILD = ("CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject pip install --no-cache-dir --force-reinstall "
           "durable-rules==2.0.28")


def require_engine() -> None:
    try:
        import durable_rules_engine  # noqa: F401  (the C extension; durable.engine imports it first)
    except ImportError as exc:
        if "PyEval_CallObject" in str(exc):
            raise EngineUnavailable("the rules engine cannot load: durable-rules was built for Python 3.13 "
                                    f"without the macro it needs there; rebuild it with: {REBUILD}") from None
        raise EngineUnavailable(f"the rules engine cannot load: durable-rules is not usable ({exc})") from None
