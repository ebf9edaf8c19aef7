"""The issue-4 knowledge files: providers, the WNV event catalogue and the NDIS OOB slots.

Each YAML file in ``knowledge/`` is validated with pydantic on first use and cached; a bad file
raises ``KnowledgeError`` naming the file and the key that is wrong. Every entry must name a
source, and event and value-map sources must be listed in the catalogue's ``sources``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from diag.knowledge import load_model
from diag.resources import data_dir

CATALOGUE_FILE, PROVIDERS_FILE, OOB_FILE = "event-catalogue.yaml", "providers.yaml", "ndis-oob-slots.yaml"
LAYOUT_SOURCES_FILE = "layout-sources.yaml"
NonEmpty = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventEntry(_Strict):
    name: NonEmpty
    versions: list[int]
    meaning: NonEmpty
    source: NonEmpty


class ValueMap(_Strict):
    source: NonEmpty
    values: dict[int, NonEmpty]
    notes: str | None = None


class ProviderEvents(_Strict):
    guid: NonEmpty
    name: NonEmpty
    events: dict[int, EventEntry]
    value_maps: dict[str, ValueMap]


def _require_known(sources: dict[str, str], named: list[tuple[str, str]]) -> None:
    """Every (where, source) names a key of ``sources``; the first that does not is the error."""
    for where, source in named:
        if source not in sources:
            raise ValueError(f"{where}: unknown source {source!r}")


class EventCatalogue(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    sources: dict[str, NonEmpty]
    providers: dict[str, ProviderEvents]
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _sources_known(self) -> "EventCatalogue":
        _require_known(self.sources, [
            *((f"providers.{key}.events.{event_id}", event.source)
              for key, provider in self.providers.items() for event_id, event in provider.events.items()),
            *((f"providers.{key}.value_maps.{name}", vmap.source)
              for key, provider in self.providers.items() for name, vmap in provider.value_maps.items())])
        return self


class LayoutSource(_Strict):
    name: NonEmpty
    decoder: NonEmpty
    source: NonEmpty
    files: NonEmpty
    status: Literal["confirmed", "differs-fixed", "partly-sourced", "no-public-source"]
    notes: NonEmpty
    field_names: dict[str, NonEmpty] = {}
    unsourced: dict[int, NonEmpty] = {}  # event id -> the only source it has ("none": no public one)


class LayoutSources(_Strict):
    """knowledge/layout-sources.yaml: where each provider's hand-written layouts come from."""

    schema_: Annotated[int, Field(alias="schema")]
    sources: dict[str, NonEmpty]
    releases: dict[str, int]
    providers: dict[str, LayoutSource]
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _sources_known(self) -> "LayoutSources":
        _require_known(self.sources, [(f"providers.{key}", source) for key, provider in self.providers.items()
                                      for source in (provider.source, *provider.unsourced.values())])
        return self


class ProviderEntry(_Strict):
    name: NonEmpty
    guid: NonEmpty
    records: NonEmpty
    decoder: Literal["fast", "catalogue", "self-describing", "none"]
    enabled_by: NonEmpty
    source: NonEmpty


class ProviderList(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    providers: dict[str, ProviderEntry]
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class OobSlot(_Strict):
    name: NonEmpty
    meaning: NonEmpty
    status: Literal["confirmed", "listed", "unknown"]
    source: NonEmpty


class OobSlots(_Strict):
    schema_: Annotated[int, Field(alias="schema")]
    slot_bytes: NonEmpty
    slots: dict[int, OobSlot]
    later_names: list[OobSlot]
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


@lru_cache(maxsize=4)
def load_catalogue(path: Path | None = None) -> EventCatalogue:
    return load_model(path or data_dir("knowledge") / CATALOGUE_FILE, EventCatalogue)


@lru_cache(maxsize=4)
def load_providers(path: Path | None = None) -> ProviderList:
    return load_model(path or data_dir("knowledge") / PROVIDERS_FILE, ProviderList)


@lru_cache(maxsize=4)
def load_layout_sources(path: Path | None = None) -> LayoutSources:
    return load_model(path or data_dir("knowledge") / LAYOUT_SOURCES_FILE, LayoutSources)


@lru_cache(maxsize=4)
def load_oob_slots(path: Path | None = None) -> OobSlots:
    return load_model(path or data_dir("knowledge") / OOB_FILE, OobSlots)


def value_name(provider: str, value_map: str, code: int | None) -> str:
    """The name of ``code`` in a provider's value map, or ``unknown (code N)``."""
    if code is None:
        return "unknown"
    entry = load_catalogue().providers.get(provider)
    vmap = entry.value_maps.get(value_map) if entry else None
    name = vmap.values.get(code) if vmap else None
    return name or f"unknown (code {code})"


@lru_cache(maxsize=256)
def provider_entry(guid: str) -> ProviderEntry | None:
    for entry in load_providers().providers.values():
        if entry.guid == guid.lower():
            return entry
    return None
