"""Microsoft-Windows-Kernel-Network against an independent reading of the Tx sample (a 64-bit Windows 7 trace).

dissect.etl reads the records; etl-parser's generated layout (its manifest reading, connid as a UInt32, the IPv6
events without their address fields) decodes the fields it has. Those fields must come out the same, and every
payload must be exactly as long as the manifest's fields with a pointer-sized connid and 16-byte IPv6
addresses: what makes the whole sample decode, where the generated layouts refuse all 8,923 events.
"""

from __future__ import annotations

import ipaddress
import uuid

import pytest

from samples import sample
from diag.decode import kernelnetwork
from diag.inspect import inspect_trace

IPV6_EVENTS = {26, 27, 28, 29, 30, 31, 32, 34, 58, 59}


def test_every_event_of_the_sample_decodes_to_the_fields_etl_parser_reads():
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    from dissect.etl.headers.event import EventHeader
    from etl.parsers.etw import Microsoft_Windows_Kernel_Network as layouts

    path = sample("microsoft__Tx__KernelNetwork.etl")
    seen = 0
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            if not isinstance(h, EventHeader) or str(uuid.UUID(bytes_le=h.provider_id.bytes)) != kernelnetwork.PROVIDER:
                continue
            payload = bytes(h.payload)
            event_id = h.descriptor.id
            theirs = getattr(layouts, f"Microsoft_Windows_Kernel_Network_{event_id}_0").pattern
            declared = theirs.sizeof()
            addresses = 32 if event_id in IPV6_EVENTS else 0
            assert len(payload) == declared + 4 + addresses  # connid: 8 bytes, not the declared 4
            fields = kernelnetwork.decode(event_id, 0, memoryview(payload), 8)
            parsed = theirs.parse(payload)
            assert (fields["pid"], fields["size"]) == (parsed.PID, parsed.size)
            if addresses:
                assert fields["daddr"] == str(ipaddress.IPv6Address(payload[8:24]))
                assert fields["saddr"] == str(ipaddress.IPv6Address(payload[24:40]))
            else:
                assert fields["daddr"] == str(ipaddress.IPv4Address(parsed.daddr.to_bytes(4, "little")))
                assert fields["saddr"] == str(ipaddress.IPv4Address(parsed.saddr.to_bytes(4, "little")))
                assert fields["dport"] == int.from_bytes(parsed.dport.to_bytes(2, "little"), "big")
                assert fields["seqnum"] == parsed.seqnum
            seen += 1
    assert seen == 8923


def test_inspect_decodes_the_whole_sample():
    summary = inspect_trace(sample("microsoft__Tx__KernelNetwork.etl"))
    (provider,) = [p for p in summary.providers if p.guid == kernelnetwork.PROVIDER]
    assert provider.records == 8923 and all(e.decoder == "fast" and e.decoded == e.count for e in provider.events)
    assert summary.decode.decode_errors == 0


def test_a_32_bit_producer_has_a_4_byte_connid():
    payload = bytes(24) + (7).to_bytes(4, "little")  # event 11: pid, size, daddr, saddr, ports, seqnum, connid
    assert kernelnetwork.decode(11, 0, memoryview(payload), 4)["connid"] == 7
    with pytest.raises(ValueError):
        kernelnetwork.decode(11, 0, memoryview(payload), 8)
