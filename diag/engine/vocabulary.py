"""The words a rule may use for enumerated fields, and the stored values each word stands for.

A field with a closed set of values has one documented vocabulary in the rule format. A rule's
value is looked up case-insensitively, among the words and their synonyms; the test becomes a
test of every stored value the word stands for. A value that no fact can hold is an error that
names the valid words, so that ``direction: inbound`` or ``family: ipv5`` is caught when the rule
loads instead of never matching.

- ``direction`` is ``in``, ``out`` or ``unknown`` on every fact kind. pktmon does not log a
  direction but the tag a component registered for the inbound or outbound side of an edge (WDK
  ``pktmonclntnpik.h``, ``PKTMON_EDGE_IN``: ``DirTagIn``, ``DirTagOut``; the tags are
  ``PKTMON_DIRECTION`` 0-6, knowledge/pktmon-drop-reasons.yaml ``direction_tags``). NICs and vmNICs
  register Rx/Tx, protocols In/Out, others Ingress/Egress, so a rule that says ``direction: In``
  would never see a vmNIC's drops. ``in`` stands for In, Rx and Ingress; ``out`` for Out, Tx and
  Egress; ``unknown`` for None. The facts keep pktmon's tag, which the evidence shows. VFP, WNV,
  Netvsc and the TCP/IP providers log inbound/outbound themselves (in, out, unknown).
- ``component_type`` is one of pktmon's component types (knowledge/pktmon-drop-reasons.yaml).
- Every field typed as a fixed set of values in the fact models (``family: IPv4 | IPv6``, a VFP
  rule's ``outcome``, ...) has those values as its words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from functools import cache
from typing import Any, Literal, get_args, get_origin

from diag.facts.models import FACT_MODELS

PKTMON_DIRECTION_KINDS = frozenset({"pktmon_drop", "background_drop", "drop_rate"})
DIRECTION_WORDS = ("in", "out", "unknown")
DIRECTION_SYNONYMS = {
    "in": ("inbound", "ingress", "rx", "receive"),
    "out": ("outbound", "egress", "tx", "send", "transmit"),
    "unknown": ("none",),
}
PKTMON_DIRECTION_TAGS = {"in": ("In", "Rx", "Ingress"), "out": ("Out", "Tx", "Egress"), "unknown": ("None",)}


@dataclass(frozen=True)
class Vocabulary:
    """The words of one field: each word -> the stored values it stands for."""

    field: str
    words: dict[str, tuple[str, ...]]
    synonyms: dict[str, str]  # lower-case spelling -> word
    note: str = ""

    def lookup(self, value: str) -> str | None:
        """The word ``value`` means (any case, a synonym), or None."""
        return self.synonyms.get(value.lower())

    @property
    def stored(self) -> list[str]:
        return [v for values in self.words.values() for v in values]

    def describe(self) -> str:
        text = ", ".join(self.words)
        return f"{text} ({self.note})" if self.note else text


def vocabulary(kind: str, field: str) -> Vocabulary | None:
    """The vocabulary of ``kind.field``, or None for a free field."""
    return _vocabularies(kind).get(field)


@cache
def _vocabularies(kind: str) -> dict[str, Vocabulary]:
    model = FACT_MODELS.get(kind)
    if model is None:
        return {}
    out: dict[str, Vocabulary] = {}
    for name, info in model.model_fields.items():
        if name == "kind":
            continue
        values = _closed_values(info.annotation)
        if values:
            out[name] = _plain(name, values)
    if "direction" in model.model_fields:
        out["direction"] = _direction(kind)
    if "component_type" in model.model_fields and kind in ("pktmon_drop", "background_drop", "component"):
        out["component_type"] = _component_types()
    return out


def _plain(field: str, values: list[str]) -> Vocabulary:
    return Vocabulary(field, {v: (v,) for v in values}, {v.lower(): v for v in values})


def _direction(kind: str) -> Vocabulary:
    synonyms = {word: word for word in DIRECTION_WORDS}
    synonyms.update({s: word for word, spellings in DIRECTION_SYNONYMS.items() for s in spellings})
    if kind in PKTMON_DIRECTION_KINDS:
        return Vocabulary("direction", dict(PKTMON_DIRECTION_TAGS), synonyms,
                          "in: pktmon's In, Rx, Ingress; out: Out, Tx, Egress; unknown: None")
    return Vocabulary("direction", {word: (word,) for word in DIRECTION_WORDS}, synonyms)


def _component_types() -> Vocabulary:
    from diag.knowledge import load_pktmon_knowledge

    names = list(dict.fromkeys([*load_pktmon_knowledge().component_types.values(), "unknown"]))
    return replace(_plain("component_type", names),
                   note="a type code pktmon's list lacks reads 'type N': test it with $mt")


def _closed_values(annotation: Any) -> list[str]:
    for arg in (annotation, *get_args(annotation)):
        if get_origin(arg) is Literal:
            values = [v for v in get_args(arg) if v is not None]
            return values if all(isinstance(v, str) for v in values) else []
        if isinstance(arg, type) and issubclass(arg, Enum):
            return [str(m.value) for m in arg]
    return []
