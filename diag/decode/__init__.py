"""decode: turn a record's payload into named fields, by (provider GUID, event id, version).

Layers, tried in order:
1. ``fast``: hand-written decoders for the hot providers (PktMon, NDIS-PacketCapture);
2. ``trace-schema`` / ``tracelogging``: schemas the trace carries itself (EventMetadata records
   that pktmon embeds; TraceLogging metadata in each event);
3. ``catalogue``: etl-parser's generated provider layouts, for the long tail.
An event no layer decodes is counted (``DecodeStats``) and stays available as raw bytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from diag.decode import catalogue, eventmetadata, ndiscap, pktmon, tracelogging
from diag.decode.wire import WireError
from diag.read.logfile import LogfileHeader
from diag.read.records import EXT_EVENT_SCHEMA_TL, EXT_PROV_TRAITS, Record

FAST_PROVIDERS = {pktmon.PROVIDER: pktmon, ndiscap.PROVIDER: ndiscap}
LAYER_FAST, LAYER_TRACE_SCHEMA, LAYER_TRACELOGGING, LAYER_CATALOGUE = "fast", "trace-schema", "tracelogging", "catalogue"


@dataclass(slots=True)
class Decoded:
    provider: str
    provider_name: str | None
    event_id: int
    version: int
    event_name: str | None
    fields: dict[str, Any]
    layer: str


@dataclass(slots=True)
class DecodeStats:
    decoded: Counter = field(default_factory=Counter)  # by layer
    undecodable: Counter = field(default_factory=Counter)  # by (provider, event id, version)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def failed(self, key: tuple[str, int, int], message: str) -> None:
        self.errors += 1
        self.undecodable[key] += 1
        if len(self.error_samples) < 20:
            self.error_samples.append(message)


class EventDecoder:
    """Decodes the records of one trace; learns the schemas the trace embeds as it goes."""

    def __init__(self, header: LogfileHeader | None = None) -> None:
        self.header = header
        self.schemas = eventmetadata.SchemaRegistry()
        self.stats = DecodeStats()

    def learn(self, record: Record) -> None:
        """Feed every record through here first: EventMetadata records teach later decodes."""
        if record.provider == eventmetadata.PROVIDER:
            self.schemas.add(record)

    def layer_for(self, record: Record) -> tuple[str | None, str | None]:
        """Which layer can decode events like this one, and their name; (None, None) if none."""
        provider, event_id, version = record.provider, record.event_id, record.version
        module = FAST_PROVIDERS.get(provider)
        if module is not None and version == 0 and event_id in module.EVENT_NAMES:
            return LAYER_FAST, module.EVENT_NAMES[event_id]
        schema = self.schemas.lookup(provider, event_id, version)
        if schema is not None:
            return LAYER_TRACE_SCHEMA, schema.name
        if record.is_event_header and _has_tracelogging_schema(record):
            return LAYER_TRACELOGGING, tracelogging.event_name(record)
        layout = catalogue.lookup(provider, event_id, version)
        if layout is not None:
            return LAYER_CATALOGUE, layout.name
        return None, None

    def decode(self, record: Record) -> Decoded | None:
        provider, event_id, version = record.provider, record.event_id, record.version
        key = (provider, event_id, version)
        try:
            decoded = self._decode(record, provider, event_id, version)
        except (WireError, ValueError) as exc:
            self.stats.failed(key, f"{provider} event {event_id} v{version}: {exc}")
            return None
        if decoded is None:
            self.stats.undecodable[key] += 1
        else:
            self.stats.decoded[decoded.layer] += 1
        return decoded

    def _decode(self, record: Record, provider: str, event_id: int, version: int) -> Decoded | None:
        module = FAST_PROVIDERS.get(provider)
        if module is pktmon:
            fields = pktmon.decode(event_id, version, record.payload)
            if fields is not None:
                return Decoded(provider, pktmon.NAME, event_id, version, pktmon.EVENT_NAMES[event_id], fields, LAYER_FAST)
        elif module is ndiscap:
            fields = ndiscap.decode(event_id, version, record.payload, record.keywords, record.pointer_size)
            if fields is not None:
                return Decoded(provider, ndiscap.NAME, event_id, version, ndiscap.EVENT_NAMES[event_id], fields, LAYER_FAST)
        schema = self.schemas.lookup(provider, event_id, version)
        if schema is not None:
            fields = eventmetadata.decode_with_schema(schema, record.payload, record.pointer_size)
            return Decoded(provider, schema.provider_name, event_id, version, schema.name, fields, LAYER_TRACE_SCHEMA)
        if record.is_event_header and _has_tracelogging_schema(record):
            name, fields, provider_name = tracelogging.decode_record(record)
            return Decoded(provider, provider_name, event_id, version, name, fields, LAYER_TRACELOGGING)
        result = catalogue.decode(record)
        if result is not None:
            return Decoded(provider, result.provider_name, event_id, version, result.name, result.fields, LAYER_CATALOGUE)
        return None

    def value_map(self, provider: str, map_name: str) -> dict[int, str] | None:
        """A value map (e.g. pktmon's drop reason names) that the trace itself carries, if any."""
        return self.schemas.value_map(provider, map_name)


def _has_tracelogging_schema(record: Record) -> bool:
    return any(ext_type == EXT_EVENT_SCHEMA_TL for ext_type, _ in record.extended_items())


__all__ = ["Decoded", "DecodeStats", "EventDecoder", "EXT_PROV_TRAITS"]
