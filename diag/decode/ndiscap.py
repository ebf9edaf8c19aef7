"""Microsoft-Windows-NDIS-PacketCapture {2ED6006E-4729-4609-B423-3EE7BCD678EF} (ndiscap.sys).

What ``netsh trace start capture=yes`` records: 1001 packet fragments at an NDIS layer, 1002 media
metadata for the next fragment, 1003 fragments seen by the vmSwitch with the source port and NIC.
Direction, link type and truncation live in the event keywords, not in the payload.
"""

from __future__ import annotations

import struct
from typing import Any

from diag.decode.wire import WireError, utf16z

PROVIDER = "2ed6006e-4729-4609-b423-3ee7bcd678ef"
NAME = "Microsoft-Windows-NDIS-PacketCapture"
EVENT_FRAGMENT, EVENT_METADATA, EVENT_VMSWITCH_FRAGMENT = 1001, 1002, 1003
PACKET_EVENTS = frozenset({EVENT_FRAGMENT, EVENT_VMSWITCH_FRAGMENT})

KW_ETHERNET = 0x1
KW_WIRELESS_WAN = 0x200
KW_TUNNEL = 0x8000
KW_NATIVE_802_11 = 0x10000
KW_VMSWITCH = 0x1000000
KW_TRUNCATED = 0x2000000
KW_PACKET_START = 0x40000000
KW_PACKET_END = 0x80000000
KW_SEND = 0x100000000
KW_RECEIVE = 0x200000000

# NET_BUFFER_LIST_INFO slots in the OOB array (ndis.h): 802.1Q tag and RSS hash value.
OOB_SLOT_8021Q = 4
OOB_SLOT_HASH_VALUE = 8

_THREE_U32 = struct.Struct("<III")
_U32 = struct.Struct("<I")
_GFT = struct.Struct("<QQ")


def direction(keywords: int) -> str:
    if keywords & KW_SEND:
        return "out"
    if keywords & KW_RECEIVE:
        return "in"
    return "unknown"


def link_type(keywords: int) -> str:
    if keywords & KW_NATIVE_802_11:
        return "ieee802.11"
    if keywords & KW_WIRELESS_WAN:
        return "raw-ip"
    return "ethernet"


def _blob(p: memoryview, pos: int, what: str) -> tuple[memoryview, int]:
    (size,) = _U32.unpack_from(p, pos)
    start = pos + 4
    if start + size > len(p):
        raise WireError(f"{what} claims {size} bytes, {len(p) - start} present")
    return p[start:start + size], start + size


def fragment(p: memoryview) -> dict[str, Any]:
    miniport, lower, _size = _THREE_U32.unpack_from(p)
    frame, pos = _blob(p, 8, "Fragment")
    out: dict[str, Any] = {"miniport_if_index": miniport, "lower_if_index": lower, "frame": frame}
    if len(p) - pos >= _GFT.size:  # present from the 20H1-era schema on
        out["gft_flow_entry_id"], out["gft_offload_info"] = _GFT.unpack_from(p, pos)
    return out


def metadata(p: memoryview) -> dict[str, Any]:
    miniport, lower, _size = _THREE_U32.unpack_from(p)
    data, _ = _blob(p, 8, "Metadata")
    return {"miniport_if_index": miniport, "lower_if_index": lower, "metadata": data}


def vmswitch_fragment(p: memoryview, pointer_size: int = 8) -> dict[str, Any]:
    miniport, lower, port_id = _THREE_U32.unpack_from(p)
    port_name, pos = utf16z(p, 12)
    nic_name, pos = utf16z(p, pos)
    nic_type, pos = utf16z(p, pos)
    (dest_count,) = _U32.unpack_from(p, pos)
    pos += 4 + 8 * dest_count  # destination entries: 8 bytes each, content not documented
    frame, pos = _blob(p, pos, "Fragment")
    oob, _ = _blob(p, pos, "OOBData")
    return {"miniport_if_index": miniport, "lower_if_index": lower, "source_port_id": port_id,
            "source_port_name": port_name, "source_nic_name": nic_name, "source_nic_type": nic_type,
            "destination_count": dest_count, "frame": frame, "vlan_id": oob_vlan(oob, pointer_size),
            "rss_hash": oob_slot(oob, OOB_SLOT_HASH_VALUE, pointer_size)}


def oob_slot(oob: memoryview, slot: int, pointer_size: int) -> int | None:
    start = slot * pointer_size
    if start + pointer_size > len(oob):
        return None
    return int.from_bytes(oob[start:start + pointer_size], "little")


def oob_vlan(oob: memoryview, pointer_size: int) -> int | None:
    """VlanId from NDIS_NET_BUFFER_LIST_8021Q_INFO: UserPriority:3, CanonicalFormatId:1, VlanId:12."""
    value = oob_slot(oob, OOB_SLOT_8021Q, pointer_size)
    return None if value is None else (value >> 4) & 0xFFF


EVENT_NAMES = {EVENT_FRAGMENT: "PacketFragment", EVENT_METADATA: "PacketMetadata",
               EVENT_VMSWITCH_FRAGMENT: "VMSwitchPacketFragment"}


def decode(event_id: int, version: int, payload: memoryview, keywords: int, pointer_size: int) -> dict[str, Any] | None:
    try:
        if event_id == EVENT_FRAGMENT:
            out = fragment(payload)
        elif event_id == EVENT_METADATA:
            return metadata(payload)
        elif event_id == EVENT_VMSWITCH_FRAGMENT:
            out = vmswitch_fragment(payload, pointer_size)
        else:
            return None
    except struct.error as exc:
        raise WireError(f"NDIS-PacketCapture event {event_id}: {exc}") from None
    out["direction"] = direction(keywords)
    out["link_type"] = link_type(keywords)
    out["truncated"] = bool(keywords & KW_TRUNCATED)
    return out
