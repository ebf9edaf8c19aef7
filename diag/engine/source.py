"""Strict YAML for rule and case files: every value keeps its line, duplicate keys are errors.

PyYAML's ``safe_load`` silently keeps the last of two equal keys and forgets where things were.
Here the document is composed into PyYAML's node tree first, so that a duplicate key is refused
and every value of the resulting plain data can be traced back to its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# A value's place in a document: mapping keys and list indices from the top, e.g. ("when", "all", 0, "d").
DocPath = tuple[Any, ...]

# Bounds of a rule or case file. The largest shipped one is a few kB, 6 levels deep; a file past these is a
# mistake or an attack (a "billion laughs" of aliases grows without end), refused with its line.
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_VALUES = 200_000  # values once aliases are expanded


class RuleFileError(Exception):
    """Something wrong in a rule or case file, with the document path and line where known."""

    def __init__(self, message: str, where: DocPath = (), line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.line = line
        self.column = column

    def located(self, source: Document | None) -> RuleFileError:
        """This error with the line and column of ``where`` in ``source`` filled in."""
        if self.line is not None or source is None:
            return self
        line, column = source.position(self.where)
        return RuleFileError(self.message, self.where, line, column)

    def __str__(self) -> str:
        path = describe(self.where)
        text = f"{path}: {self.message}" if path else self.message
        return text if self.line is None else f"line {self.line}: {text}"


def describe(where: DocPath) -> str:
    """``("when", "all", 0, "d")`` -> ``when.all[0].d``."""
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Document:
    """Plain data (dicts, lists, scalars) and the line and column of every value in it."""

    data: Any
    positions: dict[DocPath, tuple[int, int]] = field(default_factory=dict)
    has_action: bool = False  # a Python rule file that defines action(match)

    def position(self, where: DocPath) -> tuple[int | None, int | None]:
        """Line and column (1-based) of ``where``, or of its nearest ancestor that has one."""
        for end in range(len(where), -1, -1):
            found = self.positions.get(tuple(where[:end]))
            if found is not None:
                return found
        return None, None


# libyaml's parser when PyYAML has it (every PyPI wheel does): 8x faster on the rules pack, and it refuses
# nesting past 1000 levels itself; the nodes, marks and constructors are the same as the pure-Python one's.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Document:
    """Parse one YAML document; raises ``RuleFileError`` (with the line) for bad YAML or a duplicate key."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
    except RecursionError:
        raise RuleFileError(f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        if "maximum nesting depth" in problem:  # libyaml's own bound, far past ours
            raise RuleFileError(f"nested too deeply (at most {MAX_DEPTH} levels)", line=_line(mark),
                                column=_column(mark)) from None
        raise RuleFileError(f"not valid YAML: {problem}", line=_line(mark), column=_column(mark)) from None
    except yaml.YAMLError as exc:
        raise RuleFileError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
    document = Document(data=None)
    if node is not None:
        document.positions[()] = (_line(node.start_mark), _column(node.start_mark))
        document.data = _Builder(loader, document.positions).build(node, ())
    return document


def load_yaml(path: Path) -> Document:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise RuleFileError(f"is larger than {MAX_FILE_BYTES >> 20} MiB; a rule or case file is a few kB")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"cannot be read ({exc})") from None
    return parse_yaml(text)


class _Builder:
    """Plain data from the node tree, with every value's position; bounded in depth and in values."""

    def __init__(self, loader: yaml.SafeLoader, positions: dict) -> None:
        self.loader = loader
        self.positions = positions
        self.values = 0

    def build(self, node: yaml.Node, where: DocPath) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise RuleFileError(f"holds more than {MAX_VALUES} values once its aliases are expanded", (),
                                _line(node.start_mark), _column(node.start_mark))
        if len(where) > MAX_DEPTH:
            raise RuleFileError(f"nested too deeply (at most {MAX_DEPTH} levels)", where[:1], _line(node.start_mark),
                                _column(node.start_mark))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, where)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.positions[(*where, index)] = (_line(item.start_mark), _column(item.start_mark))
                items.append(self.build(item, (*where, index)))
            return items
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise RuleFileError(f"bad value: {' '.join(str(exc).split())}", where,
                                _line(node.start_mark), _column(node.start_mark)) from None

    def _mapping(self, node: yaml.MappingNode, where: DocPath) -> dict:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line, column = _line(key_node.start_mark), _column(key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise RuleFileError("merge keys (<<) are not supported; write the keys out", where, line, column)
            key = self.build(key_node, where)
            if isinstance(key, (dict, list)):
                raise RuleFileError("a mapping key must be a plain value", where, line, column)
            if key in out:
                raise RuleFileError(f"duplicate key {key!r}", (*where, key), line, column)
            self.positions[(*where, key)] = (line, column)
            out[key] = self.build(value_node, (*where, key))
        return out


def _line(mark: Any) -> int | None:
    return None if mark is None else mark.line + 1


def _column(mark: Any) -> int | None:
    return None if mark is None else mark.column + 1
