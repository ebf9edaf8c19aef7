"""Microsoft-Windows-Hyper-V-Netvsc {152FBE4B-C7AD-4F68-BADA-A4FCC1464F6C} (netvsc.sys, the vmNIC miniport).

Layouts: etl-parser's generated catalogue (fields and order); event meanings: the netvsc.sys message
table (see knowledge/event-catalogue.yaml). 19 and 20 say, per NBL, whether it took the synthetic
(vmSwitch) path or the SR-IOV virtual function: they can be frequent, so they are unpacked with
one ``struct`` call. ``Pointer`` (the NBL address) is pointer-sized. Counted name strings are read
as characters first, as bytes if that does not fit (as for VmSwitch; no sample to confirm either).

Layouts are checked against the manifest's field lists per release (jdu2600, Windows 10 1511 to
Windows 11 24H2; tests/test_layout_sources.py). Three events grew without a version bump, so the
trace's OS build picks the revision: 4 gains ``UniqueEventValue`` (first seen in 1809's manifest),
15 gains the miniport name (1903), 39 gains ``VfSerialNumber``, ``LowestIfIndex`` and the
miniport name (24H2).
"""

from __future__ import annotations

import struct
from typing import Any

from diag.decode.fields import Layout, ProviderLayouts
from diag.decode.wire import WireError

PROVIDER = "152fbe4b-c7ad-4f68-bada-a4fcc1464f6c"
NAME = "Microsoft-Windows-Hyper-V-Netvsc"
EVENT_NBL_DROPPED, EVENT_NBL_SYNTHETIC, EVENT_NBL_VF = 18, 19, 20
DATA_PATH_EVENTS = {EVENT_NBL_SYNTHETIC: "synthetic", EVENT_NBL_VF: "vf"}

MINIPORT = (("miniport_name", "counted_wstr"),)
_VF_BIND = (("status", "u32"), ("failure_reason", "u32"))
WIN10_1809, WIN10_1903, WIN11_24H2 = 17763, 18362, 26100
_STATE_EVENTS = {6: "MiniportHalting", 7: "MiniportReset", 8: "MiniportHung", 9: "MiniportHalted",
                 10: "MiniportPaused", 11: "MiniportRestarted", 12: "MiniportConnected", 13: "MiniportDisconnected",
                 14: "MiniportNetworkChanged"}

LAYOUTS: dict[tuple[int, int], Layout | tuple[Layout, ...]] = {
    (1, 0): Layout("ProtocolNegotiated", (("version", "counted_wstr"), ("status", "u32"))),
    (2, 0): Layout("ProtocolNegotiationFailed", (("version", "counted_wstr"), ("status", "u32"))),
    (3, 0): Layout("MiniportInitialized", MINIPORT),
    (4, 0): (Layout("MiniportInitializeFailed", MINIPORT + (("status", "u32"),)),
             Layout("MiniportInitializeFailed", MINIPORT + (("status", "u32"), ("unique_event", "u32")), since=WIN10_1809)),
    (5, 0): Layout("MiniportConfigFailed", MINIPORT + (("subkey_name", "counted_wstr"), ("status", "u32"))),
    **{(event_id, 0): Layout(name, MINIPORT) for event_id, name in _STATE_EVENTS.items()},
    (15, 0): (Layout("MicroportInitializeFailed", (("status", "u32"),)),
              Layout("MicroportInitializeFailed", MINIPORT + (("status", "u32"), ("unique_event", "u32")),
                     since=WIN10_1903)),
    (16, 0): Layout("NblDropped", (("status", "u32"), ("operation", "u32"), ("drop_reason", "u32")) + MINIPORT),
    (17, 0): Layout("MicroportSendFailed", (("status", "u32"), ("drop_reason", "u32"))),
    (39, 0): (Layout("VfBindFailed", _VF_BIND),
              Layout("VfBindFailed", _VF_BIND + (("vf_serial_number", "u32"), ("lowest_if_index", "u32")) + MINIPORT,
                     since=WIN11_24H2)),
}

_PROVIDER = ProviderLayouts(LAYOUTS, NAME, string_units=("chars", "bytes"))
_NBL = {8: struct.Struct("<IQQI"), 4: struct.Struct("<IIQI")}  # Direction, Pointer, CorrelationId, IfIndex
_NBL_DROP = {8: struct.Struct("<IIIQQI"), 4: struct.Struct("<IIIIQI")}  # Status, Direction, DropReason, ...
_NAMES = {EVENT_NBL_DROPPED: "NblDroppedOnPath", EVENT_NBL_SYNTHETIC: "NblSyntheticPath", EVENT_NBL_VF: "NblVfPath"}
EVENT_NAMES = {**{event_id: _PROVIDER.event_name(event_id, version) for event_id, version in LAYOUTS}, **_NAMES}


def event_name(event_id: int, version: int) -> str | None:
    if version == 0 and event_id in _NAMES:
        return _NAMES[event_id]
    return _PROVIDER.event_name(event_id, version)


def _exact(layout: struct.Struct, payload: memoryview, event_id: int) -> tuple:
    if len(payload) != layout.size:
        raise WireError(f"{NAME} event {event_id}: payload of {len(payload)} bytes, layout needs {layout.size}")
    return layout.unpack_from(payload)


def decode(event_id: int, version: int, payload: memoryview, pointer_size: int = 8,
           os_build: int | None = None) -> dict[str, Any] | None:
    if version == 0 and event_id in DATA_PATH_EVENTS:
        direction, nbl, correlation_id, if_index = _exact(_NBL[pointer_size], payload, event_id)
        return {"direction": direction, "nbl": nbl, "correlation_id": correlation_id, "if_index": if_index,
                "data_path": DATA_PATH_EVENTS[event_id]}
    if version == 0 and event_id == EVENT_NBL_DROPPED:
        status, direction, reason, nbl, correlation_id, if_index = _exact(_NBL_DROP[pointer_size], payload, event_id)
        return {"status": status, "direction": direction, "drop_reason": reason, "nbl": nbl,
                "correlation_id": correlation_id, "if_index": if_index}
    return _PROVIDER.decode(event_id, version, payload, pointer_size, os_build)
