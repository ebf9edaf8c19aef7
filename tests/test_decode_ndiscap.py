"""NDIS-PacketCapture (netsh trace capture=yes): payloads built from the documented layouts.

None of the real samples carries ndiscap events, so the expected values here are the ones each
test packs (field order from the provider manifest as reconstructed by TDH, see the knowledge notes).
"""

from __future__ import annotations

import struct
import uuid

from diag.decode import EventDecoder, ndiscap
from diag.inspect import inspect_trace
from diag.read import open_trace
from diag.synth.etlwriter import EtlWriter

PROVIDER = uuid.UUID(ndiscap.PROVIDER)
FRAME = bytes.fromhex("ffffffffffff00155d0a0b0c0806") + b"\x00" * 28  # a broadcast ARP frame
KW_SEND, KW_RECEIVE, KW_VMSWITCH, KW_START_END = 0x100000000, 0x200000000, 0x1000000, 0xC0000000


def utf16z(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


def fragment_1001(frame: bytes, miniport=7, lower=9, gft=True) -> bytes:
    out = struct.pack("<III", miniport, lower, len(frame)) + frame
    return out + (struct.pack("<QQ", 0x1111, 0x2222) if gft else b"")


def vmswitch_1003(frame: bytes, vlan: int, rss: int, dests: int = 2) -> bytes:
    oob = bytearray(8 * 12)
    struct.pack_into("<Q", oob, 8 * 4, (vlan << 4) | 0x3)  # 802.1Q info: priority 3, VlanId in bits 4-15
    struct.pack_into("<Q", oob, 8 * 8, rss)  # hash value slot
    return (struct.pack("<III", 7, 9, 42) + utf16z("8E4A-PORT") + utf16z("Container NIC c337484d")
            + utf16z("Synthetic") + struct.pack("<I", dests) + b"\x00" * (8 * dests)
            + struct.pack("<I", len(frame)) + frame + struct.pack("<I", len(oob)) + bytes(oob))


def write_trace(path, events):
    with EtlWriter(path, logger_name="NetTrace", buffer_size=8192) as w:
        for i, (event_id, payload, keywords) in enumerate(events):
            w.write_event(PROVIDER, event_id, 0, payload, keywords=keywords, timestamp=w.start_filetime + i * 10_000)


def test_fragments_decode_with_direction_link_and_vmswitch_fields(tmp_path):
    path = tmp_path / "ndiscap.etl"
    write_trace(path, [
        (1001, fragment_1001(FRAME), KW_SEND | KW_START_END | 0x1),
        (1001, fragment_1001(FRAME, gft=False), KW_RECEIVE | KW_START_END | 0x1),
        (1003, vmswitch_1003(FRAME, vlan=107, rss=0xDEADBEEF), KW_VMSWITCH | KW_RECEIVE | KW_START_END),
    ])
    with open_trace(path) as trace:
        decoder = EventDecoder(trace.header)
        decoded = [decoder.decode(r) for r in trace.records() if r.provider == ndiscap.PROVIDER]
    out, inbound, switch = decoded
    assert out.layer == "fast" and out.event_name == "PacketFragment"
    assert (out.fields["direction"], out.fields["link_type"]) == ("out", "ethernet")
    assert bytes(out.fields["frame"]) == FRAME and out.fields["gft_flow_entry_id"] == 0x1111
    assert inbound.fields["direction"] == "in" and "gft_flow_entry_id" not in inbound.fields
    f = switch.fields
    assert (f["source_port_id"], f["source_port_name"], f["source_nic_name"], f["source_nic_type"]) == \
        (42, "8E4A-PORT", "Container NIC c337484d", "Synthetic")
    assert (f["destination_count"], f["vlan_id"], f["rss_hash"]) == (2, 107, 0xDEADBEEF)
    assert bytes(f["frame"]) == FRAME


def test_inspect_counts_ndiscap_and_reports_a_bad_fragment(tmp_path):
    path = tmp_path / "ndiscap-bad.etl"
    bad = struct.pack("<III", 7, 9, 500) + FRAME  # claims 500 bytes of fragment, has 42
    write_trace(path, [(1001, fragment_1001(FRAME), KW_SEND), (1001, bad, KW_SEND)])
    summary = inspect_trace(path)
    (prov,) = [p for p in summary.providers if p.guid == ndiscap.PROVIDER]
    (event,) = prov.events
    assert (event.count, event.decoded, event.failed) == (2, 1, 1)
    assert "500" in event.first_error
    assert summary.decode.decode_errors == 1
