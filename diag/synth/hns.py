"""Host Network Service (HNS) events for synthetic traces, with the schemas the trace embeds.

No public manifest gives HNS event ids, names or fields (research notes §4.4), so these layouts are
INVENTED for the scenarios: plausible operations (network and endpoint creation, policy
application) with an ``HResult`` as Windows components report them. wnvdiag reads HNS only from a
schema the trace carries (EventMetadata here) and only by event name and status
(diag/facts/builder.py), which is what these events exercise; nothing else is claimed about them.
The event names come from each layout's task name (the embedded TRACE_EVENT_INFO has no event
name, so decoders name the event after its task, as TDH does).
"""

from __future__ import annotations

import uuid

from diag.synth import eventmetadata as em

PROVIDER = uuid.UUID("0c885e0d-6eb6-476c-a048-2457eed3a5c1")
PROVIDER_NAME = "Microsoft-Windows-Host-Network-Service"
EVENT_NETWORK_CREATE, EVENT_ENDPOINT_CREATE, EVENT_POLICY_APPLY_FAILED = 1001, 1002, 1003
E_NOT_FOUND = 0x80070490  # HRESULT_FROM_WIN32(ERROR_NOT_FOUND), "Element not found."

_F = em.Field
_HRESULT = _F("HResult", em.IN_UINT32, em.OUT_HEXINT32)


def _layout(event_id: int, task: str, fields: tuple[em.Field, ...], level: int = 4) -> em.EventLayout:
    return em.EventLayout(PROVIDER, PROVIDER_NAME, event_id, fields, level=level, task=event_id, task_name=task)


LAYOUTS: dict[int, em.EventLayout] = {
    layout.event_id: layout
    for layout in (
        _layout(EVENT_NETWORK_CREATE, "NetworkCreate", (
            _F("NetworkId", em.IN_GUID), _F("NetworkName", em.IN_UNICODESTRING), _F("NetworkType", em.IN_UNICODESTRING),
            _HRESULT)),
        _layout(EVENT_ENDPOINT_CREATE, "EndpointCreate", (
            _F("EndpointId", em.IN_GUID), _F("NetworkId", em.IN_GUID), _F("IPAddress", em.IN_UNICODESTRING),
            _HRESULT)),
        _layout(EVENT_POLICY_APPLY_FAILED, "EndpointPolicyApplyFailed", (
            _F("EndpointId", em.IN_GUID), _F("PolicyType", em.IN_UNICODESTRING)), level=2),
    )
}


def event_name(event_id: int) -> str:
    return LAYOUTS[event_id].task_name or str(event_id)


def encode_network_create(*, network: uuid.UUID, name: str, network_type: str, hresult: int = 0) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_NETWORK_CREATE], {
        "NetworkId": network, "NetworkName": name, "NetworkType": network_type, "HResult": hresult})


def encode_endpoint_create(*, endpoint: uuid.UUID, network: uuid.UUID, address: str, hresult: int = 0) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_ENDPOINT_CREATE], {
        "EndpointId": endpoint, "NetworkId": network, "IPAddress": address, "HResult": hresult})


def encode_policy_apply_failed(*, endpoint: uuid.UUID, policy: str) -> bytes:
    return em.encode_fields(LAYOUTS[EVENT_POLICY_APPLY_FAILED], {"EndpointId": endpoint, "PolicyType": policy})
