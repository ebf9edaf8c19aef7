"""Encoders for Microsoft-Windows-NDIS-PacketCapture (ndiscap.sys): what ``netsh trace capture=yes``
records. Layouts: research notes §2.2, the TDH-reconstructed manifest, and ``diag/decode/ndiscap.py``.

* 1001 packet fragment: MiniportIfIndex u32, LowerIfIndex u32, FragmentSize u32, Fragment, then
  GftFlowEntryId u64 and GftOffloadInformation u64 (20H1 and later).
* 1002 packet metadata: MiniportIfIndex u32, LowerIfIndex u32, MetadataSize u32, Metadata.
* 1003 vmSwitch packet fragment: MiniportIfIndex u32, LowerIfIndex u32, SourcePortId u32,
  SourcePortName, SourceNicName, SourceNicType (wstr), DestinationCount u32, 8 bytes per destination
  (content undocumented: written as zeros), FragmentSize u32, Fragment, OOBDataSize u32, OOBData:
  the NBL's NET_BUFFER_LIST_INFO slots, pointer-sized; slot 4 holds the 802.1Q info (UserPriority:3,
  CanonicalFormatId:1, VlanId:12, LSB first) and slot 8 the RSS hash.

Direction, media and truncation are keywords, not payload: Ethernet 0x1, VMSwitch 0x1000000,
PacketTruncated 0x2000000, PacketStart 0x40000000, PacketEnd 0x80000000, SendPath 0x100000000,
ReceivePath 0x200000000; every packet event also carries 0x40000000000 (1001 also 0x20000000000).
Since Windows 8.1 each packet is one event with both PacketStart and PacketEnd.
"""

from __future__ import annotations

import struct
import uuid

PROVIDER = uuid.UUID("2ed6006e-4729-4609-b423-3ee7bcd678ef")
EVENT_FRAGMENT, EVENT_METADATA, EVENT_VMSWITCH_FRAGMENT = 1001, 1002, 1003
LEVEL_INFO = 4

KW_ETHERNET = 0x1
KW_VMSWITCH = 0x1000000
KW_TRUNCATED = 0x2000000
KW_PACKET_START = 0x40000000
KW_PACKET_END = 0x80000000
KW_SEND = 0x100000000
KW_RECEIVE = 0x200000000
KW_PACKET_DATA = 0x40000000000
KW_FRAGMENT_DATA = 0x20000000000

OOB_SLOTS = 12  # the classic NET_BUFFER_LIST_INFO slots (0..11)
OOB_SLOT_8021Q = 4
OOB_SLOT_HASH_VALUE = 8
POINTER_SIZE = 8


def packet_keywords(send: bool, *, vmswitch: bool = False, truncated: bool = False) -> int:
    """Keywords of a single-event packet on the send or receive path."""
    kw = KW_PACKET_START | KW_PACKET_END | KW_PACKET_DATA | (KW_SEND if send else KW_RECEIVE)
    kw |= KW_VMSWITCH if vmswitch else KW_ETHERNET | KW_FRAGMENT_DATA
    return kw | (KW_TRUNCATED if truncated else 0)


def _wstr(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\0\0"


def encode_fragment(miniport_if_index: int, lower_if_index: int, frame: bytes, *, gft_flow_entry_id: int = 0,
                    gft_offload_info: int = 0) -> bytes:
    """Event 1001."""
    return (struct.pack("<III", miniport_if_index, lower_if_index, len(frame)) + frame
            + struct.pack("<QQ", gft_flow_entry_id, gft_offload_info))


def encode_metadata(miniport_if_index: int, lower_if_index: int, metadata: bytes) -> bytes:
    """Event 1002."""
    return struct.pack("<III", miniport_if_index, lower_if_index, len(metadata)) + metadata


def oob_data(*, vlan_id: int = 0, priority: int = 0, rss_hash: int = 0) -> bytes:
    """The OOB slot array with the 802.1Q info and the RSS hash filled in."""
    oob = bytearray(POINTER_SIZE * OOB_SLOTS)
    struct.pack_into("<Q", oob, POINTER_SIZE * OOB_SLOT_8021Q, (vlan_id & 0xFFF) << 4 | (priority & 7))
    struct.pack_into("<Q", oob, POINTER_SIZE * OOB_SLOT_HASH_VALUE, rss_hash)
    return bytes(oob)


def encode_vmswitch_fragment(
    miniport_if_index: int,
    lower_if_index: int,
    source_port_id: int,
    source_port_name: str,
    source_nic_name: str,
    source_nic_type: str,
    frame: bytes,
    *,
    destination_count: int = 1,
    vlan_id: int = 0,
    priority: int = 0,
    rss_hash: int = 0,
) -> bytes:
    """Event 1003."""
    oob = oob_data(vlan_id=vlan_id, priority=priority, rss_hash=rss_hash)
    return (struct.pack("<III", miniport_if_index, lower_if_index, source_port_id) + _wstr(source_port_name)
            + _wstr(source_nic_name) + _wstr(source_nic_type) + struct.pack("<I", destination_count)
            + bytes(8 * destination_count) + struct.pack("<I", len(frame)) + frame
            + struct.pack("<I", len(oob)) + oob)
