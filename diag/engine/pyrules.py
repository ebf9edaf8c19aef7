"""Python rule files: conditions written with durable_rules' own DSL, for what YAML can't say.

A Python rule is ``<id>.py`` in a rules directory (files starting with ``_`` are skipped)::

    from durable.lang import c, m, none, when_all

    META = {"id": "...", "title": "...", "severity": "high", ..., "finding": {"summary": "..."}}
    WHEN = when_all(
        c.a << (m.kind == "pktmon_drop") & (m.direction == "In"),
        c.b << (m.kind == "pktmon_drop") & (m.component_id == c.a.component_id) & (m.count > c.a.count * 10),
    )

    def action(match):            # optional, called once per match in the worker
        return {"ratio": match["b"]["count"] / match["a"]["count"]}

``WHEN.define()`` is durable_rules' JSON form of the DSL; it is checked and compiled exactly like
a YAML ``when:``. ``action`` gets ``{alias: fact fields}`` and returns ``None`` or a dict of
scalar values added to that match's evidence row; an exception in it is reported for the rule.

A user's rule file is code: it is never imported in the process that runs ``check`` or ``rules``.
``read_python_rule`` has it imported in a bounded child (``diag.engine.pyloader``), which sends back
the META, the defined WHEN and whether there is an action; a file that hangs, exits or crashes at
import is a rule error of its own. Only the shipped pack's Python rules (our code) are imported here.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from diag.engine.source import Document, RuleFileError

ACTION_NAME = "action"
# (path, mtime, size) -> what reading it gave (the document, or why there is none), once per process
_LOADED: dict[tuple[str, int, int], Document | RuleFileError] = {}


def module_name(path: Path) -> str:
    """A module name unique to this file, so two rule directories never share a module."""
    return f"wnvdiag_rule_{zlib.crc32(str(Path(path).resolve()).encode()):08x}"


def import_rule_module(path: Path) -> ModuleType:
    """Execute the rule file as a fresh module; raises ``RuleFileError`` with the failing line."""
    name = module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuleFileError("cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - any failure of user code is a rule error
        sys.modules.pop(name, None)
        raise RuleFileError(f"cannot be imported: {type(exc).__name__}: {exc}", line=_failing_line(exc, path)) from None
    return module


def read_python_rule(path: Path, trusted: bool = False) -> Document:
    """The rule's ``META`` with ``when`` from ``WHEN.define()``, and the lines they are written on.

    ``trusted`` (the shipped pack) imports the file here; any other file is imported in a child.
    """
    key = _file_key(path)
    known = _LOADED.get(key) if key is not None else None
    if known is None:
        if trusted:
            try:
                known = document_of(path)
            except RuleFileError as exc:
                known = exc
        else:
            from diag.engine.pyloader import load_in_child

            known = load_in_child([Path(path)])[Path(path)]
        if key is not None:
            _LOADED[key] = known
    if isinstance(known, RuleFileError):
        raise known
    return known


def preload(paths: list[Path]) -> None:
    """Read many user rule files in one child (instead of one child per file), errors included."""
    from diag.engine.pyloader import load_in_child

    wanted = [Path(p) for p in paths if _file_key(p) is not None and _file_key(p) not in _LOADED]
    if wanted:
        for path, document in load_in_child(wanted).items():
            _LOADED[_file_key(path)] = document


def _file_key(path: Path) -> tuple[str, int, int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return str(Path(path).resolve()), st.st_mtime_ns, st.st_size


def document_of(path: Path) -> Document:
    """Import the file (in this process) and read META, WHEN and the action's presence."""
    module = import_rule_module(path)
    lines = _top_level_lines(path)
    positions = {(): (1, 1)}
    positions.update({key: (line, 1) for key, line in lines.items()})
    meta = getattr(module, "META", None)
    if not isinstance(meta, dict):
        raise RuleFileError("must define META = {...}: the rule's id, title, severity and the rest", line=1)
    when = getattr(module, "WHEN", None)
    if when is None:
        raise RuleFileError("must define WHEN = when_all(...) with durable_rules' DSL", line=1)
    defined = _define(when, positions.get(("when",), (1, 1))[0])
    action = getattr(module, ACTION_NAME, None)
    if action is not None and not callable(action):
        raise RuleFileError(f"{ACTION_NAME} must be a function", line=positions.get((ACTION_NAME,), (1, 1))[0])
    return Document(data={**meta, "when": defined}, positions=positions, has_action=action is not None)


def load_action(path: Path) -> Callable[[dict[str, dict[str, Any]]], Any] | None:
    """The rule's ``action`` (imports the file if this process has not yet)."""
    module = sys.modules.get(module_name(path)) or import_rule_module(path)
    return getattr(module, ACTION_NAME, None)


def _define(when: Any, line: int) -> Any:
    if isinstance(when, dict):
        return when
    define = getattr(when, "define", None)
    if not callable(define):
        raise RuleFileError("WHEN must be when_all(...) from durable.lang, or a dict", ("when",), line=line)
    try:
        defined = define()
    except Exception as exc:  # noqa: BLE001 - the DSL raises plain Exception
        raise RuleFileError(f"WHEN.define() failed: {exc}", ("when",), line=line) from None
    if isinstance(defined, dict) and "run" in defined:
        raise RuleFileError(f"WHEN must not carry an action; define a function named {ACTION_NAME}(match)",
                            ("when",), line=line)
    return defined


def _top_level_lines(path: Path) -> dict[Any, int]:
    """Lines of ``META`` (as ``("meta",)``), its literal keys, ``WHEN`` (``("when",)``) and ``action``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    lines: dict[Any, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == ACTION_NAME:
            lines[(ACTION_NAME,)] = node.lineno
        if not isinstance(node, ast.Assign):
            continue
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if "WHEN" in names:
            lines[("when",)] = node.lineno
        if "META" in names and isinstance(node.value, ast.Dict):
            for key in node.value.keys:
                if isinstance(key, ast.Constant):
                    lines[(key.value,)] = key.lineno
    return lines


def _failing_line(exc: BaseException, path: Path) -> int | None:
    target = str(Path(path).resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    if line is None and isinstance(exc, SyntaxError) and exc.lineno:
        line = exc.lineno
    return line
