"""decode: turn a record's payload into named fields, by (provider GUID, event id, version).

Layers, tried in order:
1. ``fast``: hand-written decoders: PktMon, NDIS-PacketCapture, the network-virtualization
   providers (Hyper-V-VmSwitch, Hyper-V-Netvsc, TCPIP, WinNat, Wnv, VfpExt) and Kernel-Network
   (layouts declared as data). A provider whose layouts are only candidates (``PREFER_TRACE_SCHEMA``:
   VfpExt) yields to a schema the trace carries for it;
2. ``trace-schema`` / ``tracelogging``: schemas the trace carries itself (EventMetadata records
   that pktmon embeds; TraceLogging metadata in each event);
3. ``catalogue``: etl-parser's generated provider layouts, for the long tail.
An event no layer decodes is counted (``DecodeStats``) and stays available as raw bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any

from diag.decode import (
    catalogue, eventmetadata, kernelnetwork, ndiscap, netvsc, pktmon, tcpip, tracelogging, vfp, vmswitch, winnat, wnv,
)
from diag.decode.fields import LAYOUT_NOTE
from diag.decode.wire import WireError
from diag.read.logfile import LogfileHeader
from diag.read.records import EXT_EVENT_SCHEMA_TL, KERNEL_STYLE, Record

FAST_PROVIDERS = {pktmon.PROVIDER: pktmon, ndiscap.PROVIDER: ndiscap,
                  **{m.PROVIDER: m for m in (vmswitch, netvsc, tcpip, winnat, wnv, kernelnetwork, vfp)}}
LAYER_FAST, LAYER_TRACE_SCHEMA, LAYER_TRACELOGGING, LAYER_CATALOGUE = "fast", "trace-schema", "tracelogging", "catalogue"
LAYER_READER = "reader"  # the logfile header, which the reader itself decodes
EVENT_TRACE_CLASS = "68fdd900-4a3e-11d1-84f4-0000f80464e3"
_EVENTMETADATA_NAMES = {32: "EventInfo", 33: "MapInfo"}


@dataclass(slots=True)
class Decoded:
    provider: str
    provider_name: str | None
    event_id: int
    version: int
    event_name: str | None
    fields: dict[str, Any]
    layer: str


class DecodeFailed(ValueError):
    """A layout exists for the event but its payload does not fit it."""


@dataclass(slots=True)
class Outcome:
    """How the events of one (provider, event id, version) fared."""

    decoded: int = 0
    failed: int = 0
    no_layout: int = 0
    layer: str | None = None
    name: str | None = None
    first_error: str | None = None
    # decoded by a revision of the layout the trace's OS build did not select (or the build is unknown)
    layout_unsure: int = 0
    layout_note: str | None = None


@dataclass(slots=True)
class DecodeStats:
    outcomes: dict[tuple[str, int, int], Outcome] = field(default_factory=dict)
    # provider GUID -> the name its events gave (TraceLogging metadata, a schema the trace embeds)
    provider_names: dict[str, str] = field(default_factory=dict)

    def outcome(self, key: tuple[str, int, int]) -> Outcome:
        out = self.outcomes.get(key)
        if out is None:
            out = self.outcomes[key] = Outcome()
        return out

    @property
    def errors(self) -> int:
        return sum(o.failed for o in self.outcomes.values())

    @property
    def layout_unsure(self) -> int:
        return sum(o.layout_unsure for o in self.outcomes.values())

    @property
    def undecodable(self) -> int:
        return sum(o.no_layout for o in self.outcomes.values())

    @property
    def decoded_by_layer(self) -> Counter:
        out: Counter = Counter()
        for o in self.outcomes.values():
            if o.decoded:
                out[o.layer] += o.decoded
        return out


class EventDecoder:
    """Decodes the records of one trace and keeps count of how every kind of event fared.

    Schemas the trace embeds (EventMetadata records) can come after the events they describe, since
    buffers are written per CPU. An event seen before its schema is counted as "no layout" until
    ``finish()``; then, if the schema did arrive, the first such event (kept as a copy) is decoded to
    check the schema, and the rest are counted with it.

    A caller that needs those early events themselves (the fact builder, for providers only a trace
    schema describes) names their providers in ``retain``: copies of their undecoded events are kept,
    up to ``RETAIN_BYTES`` in all, and ``replay()`` decodes them after ``finish()``. Events past the
    budget are counted in ``not_retained``.
    """

    RETAIN_BYTES = 16 << 20

    def __init__(self, header: LogfileHeader | None = None) -> None:
        self.header = header
        self.os_build = header.os_build if header is not None and header.os_build else None
        self.schemas = eventmetadata.SchemaRegistry()
        self.stats = DecodeStats()
        self._early: dict[tuple[str, int, int], Record] = {}
        # Event kinds no layer had a layout for, and the schema generation at which that was found:
        # until the trace teaches a new schema the answer cannot change, so they are only counted.
        self._no_layout: dict[tuple[str, int, int], int] = {}
        self._generation = 0
        self.retain: frozenset[str] = frozenset()
        self._retained: list[Record] = []
        self._retained_bytes = 0
        self.not_retained = 0
        self._settled: dict[tuple[str, int, int], bool] = {}  # finish()'s verdict per early kind: decoded or failed

    def learn(self, record: Record) -> None:
        """Feed every record through here first: EventMetadata records teach later decodes."""
        if record.provider == eventmetadata.PROVIDER:
            self.schemas.add(record)
            self._generation += 1

    def layer_for(self, record: Record) -> tuple[str | None, str | None]:
        """Which layer would decode events like this one, and their name; (None, None) if none."""
        provider, event_id, version = record.provider, record.event_id, record.version
        if provider == eventmetadata.PROVIDER:
            return LAYER_TRACE_SCHEMA, _EVENTMETADATA_NAMES.get(event_id)
        if provider == EVENT_TRACE_CLASS and event_id == 0 and record.header_type in KERNEL_STYLE:
            return LAYER_READER, "Header"
        module = FAST_PROVIDERS.get(provider)
        schema = self.schemas.lookup(provider, event_id, version)
        if schema is not None and _prefers_schema(module):
            return LAYER_TRACE_SCHEMA, schema.name
        fast_name = _fast_name(module, event_id, version) if module is not None else None
        if fast_name is not None:
            return LAYER_FAST, fast_name
        if schema is not None:
            return LAYER_TRACE_SCHEMA, schema.name
        if record.is_event_header and _has_tracelogging_schema(record):
            return LAYER_TRACELOGGING, tracelogging.event_name(record)
        layout = catalogue.lookup(provider, event_id, version) if record.is_event_header else None
        if layout is not None:
            return LAYER_CATALOGUE, layout.name
        return None, None

    def decode(self, record: Record) -> Decoded | None:
        """Decode one record; None when no layer has a layout for it or its payload does not fit."""
        key = (record.provider, record.event_id, record.version)
        outcome = self.stats.outcome(key)
        if self._no_layout.get(key) == self._generation and not record.is_event_header:
            outcome.no_layout += 1  # classic/kernel records: nothing but a trace schema can decode them
            return None
        try:
            decoded = self._decode(record, *key)
        except (WireError, ValueError) as exc:
            outcome.failed += 1
            if outcome.first_error is None:
                outcome.first_error = str(exc)
            return None
        if decoded is None:
            outcome.no_layout += 1
            self._no_layout[key] = self._generation
            if key not in self._early:
                self._early[key] = record.detached()
            if record.provider in self.retain:
                self._retain(record)
            return None
        outcome.decoded += 1
        outcome.layer, outcome.name = decoded.layer, decoded.event_name
        note = decoded.fields.pop(LAYOUT_NOTE, None)
        if note is not None:
            outcome.layout_unsure += 1
            outcome.layout_note = outcome.layout_note or note
        if decoded.provider_name and decoded.provider not in self.stats.provider_names:
            self.stats.provider_names[decoded.provider] = decoded.provider_name
        return decoded

    def count_decoded(self, key: tuple[str, int, int], layer: str, name: str | None, n: int = 1) -> None:
        """Count events that a caller decoded on its own hot path (pktmon packets)."""
        outcome = self.stats.outcome(key)
        outcome.decoded += n
        outcome.layer, outcome.name = layer, name

    def count_failed(self, key: tuple[str, int, int], message: str, n: int = 1) -> None:
        outcome = self.stats.outcome(key)
        outcome.failed += n
        if outcome.first_error is None:
            outcome.first_error = message

    def finish(self) -> DecodeStats:
        """Settle events that were seen before the schema describing them; call after the last record."""
        for key, record in self._early.items():
            outcome = self.stats.outcomes[key]
            if not outcome.no_layout or self.layer_for(record)[0] is None:
                continue
            pending, outcome.no_layout = outcome.no_layout, 0
            try:
                decoded = self._decode(record, *key)
            except (WireError, ValueError) as exc:
                decoded, outcome.first_error = None, outcome.first_error or str(exc)
            if decoded is None:
                outcome.failed += pending
            else:
                outcome.decoded += pending
                outcome.layer, outcome.name = decoded.layer, decoded.event_name
            self._settled[key] = decoded is not None
        self._early.clear()
        return self.stats

    def _retain(self, record: Record) -> None:
        if self._retained_bytes + record.size > self.RETAIN_BYTES:
            self.not_retained += 1
            return
        self._retained.append(record.detached())
        self._retained_bytes += record.size

    def replay(self) -> Iterator[tuple[Decoded, Record]]:
        """The retained early events that decode now that every schema is known (after ``finish()``).
        ``finish`` counted each kind by its first event; an event that fares otherwise moves between
        decoded and failed here. Each is handed out once."""
        retained, self._retained, self._retained_bytes = self._retained, [], 0
        for record in retained:
            key = (record.provider, record.event_id, record.version)
            if key not in self._settled:  # still no layout: counted so by finish
                continue
            error = None
            try:
                decoded = self._decode(record, *key)
            except (WireError, ValueError) as exc:
                decoded, error = None, str(exc)
            outcome = self.stats.outcomes[key]
            if decoded is not None and not self._settled[key]:
                outcome.failed, outcome.decoded = outcome.failed - 1, outcome.decoded + 1
            elif decoded is None and self._settled[key]:
                outcome.decoded, outcome.failed = outcome.decoded - 1, outcome.failed + 1
                outcome.first_error = outcome.first_error or error or "the payload does not fit the trace's schema"
            if decoded is not None:
                yield decoded, record

    def _decode(self, record: Record, provider: str, event_id: int, version: int) -> Decoded | None:
        if provider == eventmetadata.PROVIDER:
            return Decoded(provider, "EventMetadata", event_id, version, _EVENTMETADATA_NAMES.get(event_id),
                           {"payload_bytes": len(record.payload)}, LAYER_TRACE_SCHEMA)
        if provider == EVENT_TRACE_CLASS and event_id == 0 and record.header_type in KERNEL_STYLE:
            return Decoded(provider, "EventTrace", event_id, version, "Header", {}, LAYER_READER)
        module = FAST_PROVIDERS.get(provider)
        if _prefers_schema(module) and self.schemas.lookup(provider, event_id, version) is not None:
            module = None
        if module is pktmon:
            fields = pktmon.decode(event_id, version, record.payload)
            if fields is not None:
                return Decoded(provider, pktmon.NAME, event_id, version, pktmon.EVENT_NAMES[event_id], fields, LAYER_FAST)
        elif module is ndiscap:
            fields = ndiscap.decode(event_id, version, record.payload, record.keywords, record.pointer_size)
            if fields is not None:
                return Decoded(provider, ndiscap.NAME, event_id, version, ndiscap.EVENT_NAMES[event_id], fields, LAYER_FAST)
        elif module is not None:  # the WNV providers: layouts keyed by (event id, version)
            fields = module.decode(event_id, version, record.payload, record.pointer_size, self.os_build)
            if fields is not None:
                return Decoded(provider, module.NAME, event_id, version, module.event_name(event_id, version),
                               fields, LAYER_FAST)
        schema = self.schemas.lookup(provider, event_id, version)
        if schema is not None:
            fields = eventmetadata.decode_with_schema(schema, record.payload, record.pointer_size)
            return Decoded(provider, schema.provider_name, event_id, version, schema.name, fields, LAYER_TRACE_SCHEMA)
        if record.is_event_header and _has_tracelogging_schema(record):
            name, fields, provider_name = tracelogging.decode_record(record)
            return Decoded(provider, provider_name, event_id, version, name, fields, LAYER_TRACELOGGING)
        if not record.is_event_header:
            return None  # the catalogue is keyed by manifest event ids, which classic records lack
        result = catalogue.try_decode(record)
        if isinstance(result, catalogue.CatalogueResult):
            return Decoded(provider, result.provider_name, event_id, version, result.name, result.fields, LAYER_CATALOGUE)
        if result.kind in _CATALOGUE_NO_LAYOUT:
            return None
        raise DecodeFailed(f"catalogue: {result.reason}")

    def value_map(self, provider: str, map_name: str) -> dict[int, str] | None:
        """A value map (e.g. pktmon's drop reason names) that the trace itself carries, if any."""
        return self.schemas.value_map(provider, map_name)


_CATALOGUE_NO_LAYOUT = frozenset({catalogue.NO_PROVIDER, catalogue.NO_EVENT, catalogue.NO_VERSION, catalogue.NOT_MANIFEST})


def _fast_name(module, event_id: int, version: int) -> str | None:
    if hasattr(module, "event_name"):  # version-aware layouts (VmSwitch, Netvsc, TCPIP, WinNat, WNV)
        return module.event_name(event_id, version)
    return module.EVENT_NAMES.get(event_id) if version == 0 else None


def _prefers_schema(module) -> bool:
    return getattr(module, "PREFER_TRACE_SCHEMA", False)


def _has_tracelogging_schema(record: Record) -> bool:
    return any(ext_type == EXT_EVENT_SCHEMA_TL for ext_type, _ in record.extended_items())


__all__ = ["Decoded", "DecodeStats", "EventDecoder"]
