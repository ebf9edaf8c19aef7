"""Lookup tables from ``knowledge/``: pktmon drop reasons, component types, direction tags.

The YAML is validated with pydantic on first use and cached; an invalid file raises
``KnowledgeError`` naming the file and the key that is wrong. Lookups return ``None`` for values
the table does not know: callers show them as ``unknown (code N)`` rather than guess.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from diag.errors import DiagError
from diag.resources import data_dir

PKTMON_FILE = "pktmon-drop-reasons.yaml"
# libyaml's safe loader when PyYAML was built with it: the same safe subset, about 7x faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "DropRange",
    "DropReason",
    "KnowledgeError",
    "PktmonKnowledge",
    "component_type_name",
    "direction_name",
    "drop_reason",
    "drop_reason_label",
    "drop_reason_name",
    "drop_reason_range",
    "is_legacy_build",
    "load_model",
    "load_pktmon_knowledge",
    "packet_type_name",
    "property_type_name",
]


_M = TypeVar("_M", bound=BaseModel)


class KnowledgeError(DiagError):
    """A knowledge file is missing or does not match its schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


NonEmpty = Annotated[str, Field(min_length=1)]
Code = Annotated[int, Field(ge=0, le=0xFFFFFFFF)]


class DropReason(_Strict):
    symbol: NonEmpty
    name: NonEmpty


class DropRange(_Strict):
    first: Code
    last: Code
    layer: NonEmpty
    cause: NonEmpty

    @model_validator(mode="after")
    def _ordered(self) -> "DropRange":
        if self.last < self.first:
            raise ValueError(f"range {self.first}-{self.last}: last is below first")
        return self

    def __contains__(self, code: int) -> bool:
        return self.first <= code <= self.last


def _check_codes_in_ranges(codes: dict[int, DropReason], ranges: list[DropRange], extra: list[tuple[int, int]]) -> None:
    for code in codes:
        if not any(code in r for r in ranges) and not any(lo <= code <= hi for lo, hi in extra):
            raise ValueError(f"code {code} lies outside every range")


class CurrentNumbering(_Strict):
    description: NonEmpty
    ranges: list[DropRange]
    codes: dict[Code, DropReason]

    @model_validator(mode="after")
    def _consistent(self) -> "CurrentNumbering":
        _check_codes_in_ranges(self.codes, self.ranges, [])
        return self


class LegacyNumbering(_Strict):
    description: NonEmpty
    shared_ranges: list[tuple[Code, Code]]
    ranges: list[DropRange]
    codes: dict[Code, DropReason]

    @model_validator(mode="after")
    def _consistent(self) -> "LegacyNumbering":
        _check_codes_in_ranges(self.codes, self.ranges, self.shared_ranges)
        return self

    def shares(self, code: int) -> bool:
        return any(lo <= code <= hi for lo, hi in self.shared_ranges)


class DropReasonTables(_Strict):
    legacy_max_build: Annotated[int, Field(gt=0)]
    current: CurrentNumbering
    build_17763: LegacyNumbering


class PktmonKnowledge(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    drop_reasons: DropReasonTables
    component_types: dict[int, NonEmpty]
    property_types: dict[int, NonEmpty]
    direction_tags: dict[int, NonEmpty]
    packet_types: dict[int, NonEmpty]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _known_schema(self) -> "PktmonKnowledge":
        if self.schema_ != 1:
            raise ValueError(f"unsupported schema {self.schema_} (this wnvdiag reads schema 1)")
        return self


def _location(loc: tuple[object, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_model(path: Path, model: type[_M]) -> _M:
    """Read a knowledge YAML file and validate it as ``model``; errors name the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"cannot be read ({exc.strerror or exc})", path) from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"is not valid YAML ({exc})", path) from None
    if not isinstance(data, dict):
        raise KnowledgeError("must be a YAML mapping", path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise KnowledgeError(f"key {_location(first['loc'])}: {first['msg']}{more}", path) from None


@lru_cache(maxsize=8)
def _load(path: Path) -> PktmonKnowledge:
    return load_model(path, PktmonKnowledge)


def load_pktmon_knowledge(path: str | Path | None = None) -> PktmonKnowledge:
    """Load (once) and return the pktmon tables; ``path`` defaults to the shipped file."""
    if path is None:
        return _shipped()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _shipped() -> PktmonKnowledge:
    # Looked up in hot loops: resolve the shipped file's location once, not per call.
    return _load(data_dir("knowledge") / PKTMON_FILE)


def is_legacy_build(os_build: int | None) -> bool:
    """True if drop reasons of a trace from ``os_build`` use the 17763-era numbering."""
    tables = load_pktmon_knowledge().drop_reasons
    return os_build is not None and 0 < os_build <= tables.legacy_max_build


def drop_reason(code: int, os_build: int | None = None) -> DropReason | None:
    """The drop reason ``code`` means on ``os_build`` (``None``: a build after 17763)."""
    tables = load_pktmon_knowledge().drop_reasons
    if is_legacy_build(os_build):
        legacy = tables.build_17763
        if code in legacy.codes:
            return legacy.codes[code]
        if legacy.shares(code):
            return tables.current.codes.get(code)
        return None
    return tables.current.codes.get(code)


def drop_reason_name(code: int, os_build: int | None = None) -> str | None:
    """Display name of a drop reason, or ``None`` if the code is unknown for that build."""
    reason = drop_reason(code, os_build)
    return reason.name if reason else None


def drop_reason_label(code: int, os_build: int | None = None) -> str:
    """Display name, or ``unknown (code N)``."""
    return drop_reason_name(code, os_build) or f"unknown (code {code})"


def drop_reason_range(code: int, os_build: int | None = None) -> DropRange | None:
    """The range (layer and plain-language cause) a drop reason code belongs to, if known."""
    tables = load_pktmon_knowledge().drop_reasons
    if is_legacy_build(os_build):
        legacy = tables.build_17763
        for r in legacy.ranges:
            if code in r:
                return r
        if not legacy.shares(code):
            return None
    for r in tables.current.ranges:
        if code in r:
            return r
    return None


def component_type_name(n: int) -> str | None:
    return load_pktmon_knowledge().component_types.get(n)


def property_type_name(n: int) -> str | None:
    return load_pktmon_knowledge().property_types.get(n)


def direction_name(n: int) -> str | None:
    return load_pktmon_knowledge().direction_tags.get(n)


def packet_type_name(n: int) -> str | None:
    return load_pktmon_knowledge().packet_types.get(n)
