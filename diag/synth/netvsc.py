"""Encoders for Microsoft-Windows-Hyper-V-Netvsc (netvsc.sys), from etl-parser's catalogue; messages
from the research notes §4.2:

* 16 "NBL %2 miniport NIC '%5' is dropped. Reason: %3. Status - %1." (Status, Operation, DropReason,
  MiniportNameLen + MiniportName, UTF-16LE bytes);
* 18 NBL dropped, with Direction, DropReason, the NBL pointer, CorrelationId and IfIndex;
* 19 "NBL %2 CorrelationID %3 on IfIndex %4 direction %1 Synthetic": the NBL took the vmSwitch path;
* 20 the same, "VF": the NBL went over the SR-IOV virtual function, bypassing the host switch;
* 39 "VF adapter bind failed. FailureReason: %2 MsgStatus: %1."; from Windows 11 24H2 on (jdu2600's field
  list of that release) it also carries VfSerialNumber, LowestIfIndex and the miniport's name, without a
  version bump: ``layout_for`` gives the layout a host of a build writes.
"""

from __future__ import annotations

import uuid

from diag.synth import eventmetadata as em

PROVIDER = uuid.UUID("152fbe4b-c7ad-4f68-bada-a4fcc1464f6c")
PROVIDER_NAME = "Microsoft-Windows-Hyper-V-Netvsc"
EVENT_MINIPORT_DROP, EVENT_NBL_DROP, EVENT_NBL_SYNTHETIC, EVENT_NBL_VF, EVENT_VF_BIND_FAILED = 16, 18, 19, 20, 39
DIRECTION_SEND, DIRECTION_RECEIVE = 0, 1  # the manifest's map is not public: 0 send, 1 receive is assumed

_F = em.Field
_U32, _U64 = em.IN_UINT32, em.IN_UINT64
_NBL_PATH = (_F("Direction", _U32), _F("Pointer", _U64, em.OUT_HEXINT64), _F("CorrelationId", _U64),
             _F("IfIndex", _U32))

LAYOUTS: dict[int, em.EventLayout] = {
    layout.event_id: layout
    for layout in (
        em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_MINIPORT_DROP,
                       (_F("Status", _U32, em.OUT_HEXINT32), _F("Operation", _U32), _F("DropReason", _U32),
                        _F("MiniportNameLen", _U32), _F("MiniportName", em.IN_BINARY, length_field="MiniportNameLen")),
                       level=3),
        em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_NBL_DROP,
                       (_F("Status", _U32, em.OUT_HEXINT32), _F("Direction", _U32), _F("DropReason", _U32),
                        _F("Pointer", _U64, em.OUT_HEXINT64), _F("CorrelationId", _U64), _F("IfIndex", _U32)),
                       level=3),
        em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_NBL_SYNTHETIC, _NBL_PATH, level=5),
        em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_NBL_VF, _NBL_PATH, level=5),
        em.EventLayout(PROVIDER, PROVIDER_NAME, EVENT_VF_BIND_FAILED,
                       (_F("Status", _U32, em.OUT_HEXINT32), _F("failureReason", _U32)), level=2),
    )
}


WIN11_24H2 = 26100
_VF_BIND_24H2 = em.EventLayout(
    PROVIDER, PROVIDER_NAME, EVENT_VF_BIND_FAILED,
    (_F("Status", _U32, em.OUT_HEXINT32), _F("failureReason", _U32), _F("VfSerialNumber", _U32),
     _F("LowestIfIndex", _U32), _F("MiniportNameLen", _U32),
     _F("MiniportName", em.IN_BINARY, length_field="MiniportNameLen")), level=2)


def layout_for(event_id: int, build: int) -> em.EventLayout:
    """The layout a host of ``build`` writes for ``event_id``."""
    if event_id == EVENT_VF_BIND_FAILED and build >= WIN11_24H2:
        return _VF_BIND_24H2
    return LAYOUTS[event_id]


def encode(event_id: int, **values: object) -> bytes:
    converted = {k: v.encode("utf-16-le") if isinstance(v, str) else v for k, v in values.items()}
    return em.encode_fields(LAYOUTS[event_id], converted)


def encode_vf_bind_failed(*, status: int, reason: int, build: int, serial: int = 0, lowest_if_index: int = 0,
                          miniport: str = "") -> bytes:
    """39 as a host of ``build`` writes it; the 24H2 fields only where that build has them. The name's length
    counts UTF-16 characters."""
    values: dict[str, object] = {"Status": status, "failureReason": reason}
    layout = layout_for(EVENT_VF_BIND_FAILED, build)
    if layout is _VF_BIND_24H2:
        values.update(VfSerialNumber=serial, LowestIfIndex=lowest_if_index, MiniportNameLen=len(miniport),
                      MiniportName=miniport.encode("utf-16-le"))
    return em.encode_fields(layout, values)


def encode_nbl_path(vf: bool, direction: int, nbl: int, correlation_id: int, if_index: int) -> bytes:
    """Event 20 (VF) or 19 (synthetic) payload for one NBL."""
    return encode(EVENT_NBL_VF if vf else EVENT_NBL_SYNTHETIC, Direction=direction, Pointer=nbl,
                  CorrelationId=correlation_id, IfIndex=if_index)
