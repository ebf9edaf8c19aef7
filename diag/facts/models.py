"""Fact and finding models.

A fact is what the decoders derive from a trace and what the rules match on. Every fact model is
frozen, forbids unknown fields and carries a ``kind`` literal: the fact type the rules select on.
Facts are aggregates (one per component, reason and direction, never one per packet): the rules
engine keeps about 8 KiB per fact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_origin

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "low", "medium", "high", "critical"]
Confidence = Literal["low", "medium", "high"]

SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
CONFIDENCES: tuple[Confidence, ...] = ("low", "medium", "high")

Scalar = Union[str, int, float, bool, None]
Count = Annotated[int, Field(ge=0)]


def severity_rank(severity: str) -> int:
    """0 for ``info`` … 4 for ``critical``."""
    return SEVERITIES.index(severity)  # type: ignore[arg-type]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Fact(_Frozen):
    """Base of every fact; subclasses set ``kind`` to a one-value ``Literal`` with that default."""

    kind: str


class PacketDropGroup(Fact):
    """pktmon drops of one component, for one drop reason and one direction."""

    kind: Literal["pktmon_drop"] = "pktmon_drop"
    component_id: int
    component_name: str
    component_type: str
    direction: str
    reason_code: int
    reason_name: str
    count: Annotated[int, Field(ge=1, description="drop events")]
    distinct_frames: Count = Field(0, description="frames first dropped in this group: the stack logs one dropped "
                                                  "packet several times (once per socket or check, maybe for other "
                                                  "reasons); each frame counts once, in the group of its first drop")
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    sample: Annotated[list[dict[str, Scalar]], Field(max_length=5)] = []
    destinations: str | None = Field(None, description="where the sample packets were going, e.g. '10.0.0.53 "
                                                       "(UDP 53), 10.0.0.1 (ICMP)'")


class BackgroundDropGroup(PacketDropGroup):
    """Drops of LAN background (knowledge/lan-background.yaml) of one component, reason, direction and kind of
    traffic: multicast and broadcast of link-local services, loopback probes. Kept apart from ``pktmon_drop``
    so that drop rules see the workload's drops only."""

    kind: Literal["background_drop"] = "background_drop"  # type: ignore[assignment]
    traffic: str


class TraceQuality(Fact):
    """How complete the trace is: what the session lost and what wnvdiag could not read."""

    kind: Literal["trace_quality"] = "trace_quality"
    events_lost: Count = 0
    buffers_lost: Count = 0
    records_undecoded: Count = 0
    buffers_skipped: Count = 0
    truncated: bool = False


# kind -> model; the engine and the rule validator use it to know which fields a fact type has.
FACT_MODELS: dict[str, type[Fact]] = {
    model.model_fields["kind"].default: model for model in (PacketDropGroup, BackgroundDropGroup, TraceQuality)
}


def fact_model(kind: str) -> type[Fact] | None:
    return FACT_MODELS.get(kind)


def scalar_fields(model: type[BaseModel]) -> list[str]:
    """Fields the rules engine sees: everything but lists and mappings (those stay with the fact)."""
    out = []
    for name, info in model.model_fields.items():
        origin = get_origin(info.annotation) or info.annotation
        if not (isinstance(origin, type) and issubclass(origin, (list, tuple, set, dict))):
            out.append(name)
    return out


class Finding(_Frozen):
    """One diagnosed problem: all matches of one rule, with the facts that support it."""

    rule_id: str
    title: str
    severity: Severity
    confidence: Confidence
    summary: str
    evidence: list[dict[str, Any]] = []
    remediation: str = ""
    references: list[str] = []
    fact_ids: list[str] = []
    impact: str = ""  # what the problem does to the workload, from the rule
    tags: list[str] = []
    # For each evidence row, the ids of the facts it came from (the facts point on at events and packets).
    evidence_fact_ids: list[list[str]] = []


class RuleError(_Frozen):
    """A rule that could not be loaded or did not run to completion.

    ``file`` is the rule file, followed by ``:line`` when the problem is on a known line
    (``rules/vlan-drops.yaml:12``), so that the one line printed for it names file and line.
    """

    rule_id: str
    file: str
    message: str
