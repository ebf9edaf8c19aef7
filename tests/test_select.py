"""Packet filters (--since/--until, --component, --address, --vlan) on check, inspect and export-pcap.

The packets a filter should keep are counted independently: tests/reference_pktmon.py reads the snapshots
(dissect.etl records, etl-parser layouts) and this file reads their addresses and VLAN tags with plain
slicing. Real samples skip cleanly where they are absent.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import reference_pktmon
from samples import sample
from diag import api
from diag.errors import BadInputError
from diag.select import PacketFilter, parse_address, parse_time

DEMO = Path(__file__).parent / "data" / "pktmon-drops.etl"
REAL = ["microsoft__demikernel__PktMon.etl", "NeoChenjf__Finguard__PktMon.etl",
        "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl"]
FT_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)


def ft(moment: datetime) -> int:
    return round((moment - FT_EPOCH).total_seconds() * 10_000_000)


# -- parsing -------------------------------------------------------------------------------------------

def test_times_absolute_time_of_day_and_offsets():
    start = ft(datetime(2024, 5, 14, 23, 50, tzinfo=timezone.utc))
    assert parse_time("2024-05-14T23:55:00Z", "--since").filetime(start) == ft(datetime(2024, 5, 14, 23, 55, tzinfo=timezone.utc))
    assert parse_time("2024-05-14 23:55", "--since").filetime(start) == \
        ft(datetime(2024, 5, 14, 23, 55, tzinfo=timezone.utc))  # no zone: UTC, the trace's clock
    assert parse_time("2024-05-15T01:55:00+02:00", "--since").filetime(start) == \
        ft(datetime(2024, 5, 14, 23, 55, tzinfo=timezone.utc))
    assert parse_time("23:59:30", "--since").filetime(start) == ft(datetime(2024, 5, 14, 23, 59, 30, tzinfo=timezone.utc))
    # a time of day before the trace's start is the next day's (the trace crosses midnight)
    assert parse_time("0:10", "--until").filetime(start) == ft(datetime(2024, 5, 15, 0, 10, tzinfo=timezone.utc))
    assert parse_time("+90s", "--since").filetime(start) == start + 900_000_000
    assert parse_time("+1.5m", "--since").filetime(start) == start + 900_000_000
    assert parse_time("+250ms", "--since").filetime(start) == start + 2_500_000
    assert parse_time("+2h", "--since").filetime(start) == start + 72_000_000_000


@pytest.mark.parametrize("bad", ["yesterday", "25:00", "10:61", "+", "2024-13-01T00:00:00"])
def test_a_bad_time_is_one_line_naming_the_option(bad):
    with pytest.raises(BadInputError, match=r"^--since '.*' is not a time: give"):
        parse_time(bad, "--since")


def test_addresses_macs_and_subnets():
    assert parse_address("00:15:5d:0a:0b:0c") == ("mac", "00-15-5D-0A-0B-0C")
    assert parse_address("00155D0A0B0C") == ("mac", "00-15-5D-0A-0B-0C")
    assert parse_address("10.0.0.5") == ("ip", ipaddress.ip_network("10.0.0.5/32"))
    assert parse_address("10.0.0.7/24") == ("ip", ipaddress.ip_network("10.0.0.0/24"))
    assert parse_address("fe80::1") == ("ip", ipaddress.ip_network("fe80::1/128"))
    with pytest.raises(BadInputError, match="--address 'host7' is neither"):
        parse_address("host7")
    with pytest.raises(BadInputError, match="--vlan 5000 is not a VLAN id"):
        PacketFilter.from_options(vlans=[5000])


def test_an_empty_window_is_refused_and_an_empty_filter_is_inactive():
    with pytest.raises(BadInputError, match="--until 10:00:01 is before --since 10:00:02"):
        PacketFilter.from_options("10:00:02", "10:00:01").bind(ft(datetime(2024, 5, 14, 10, tzinfo=timezone.utc)))
    assert not PacketFilter.from_options().active


# -- a plain reading of what each snapshot is ----------------------------------------------------------

def tags_and_addresses(frame: bytes, packet_type: int) -> tuple[set[int], set[str], set[str]]:
    """VLAN ids, MACs (as "AA-BB-..") and IPs of an Ethernet or raw-IP frame, outer and VXLAN-inner."""
    vlans, macs, ips = set(), set(), set()
    if packet_type == 3:
        l3, kind = frame, (b"\x08\x00" if frame[:1] and frame[0] >> 4 == 4 else b"\x86\xdd")
    elif packet_type == 2 and len(frame) >= 24 and frame[0] & 0x0C == 0x08 and (
            frame[24 + (2 if frame[0] & 0x80 else 0) + (6 if frame[1] & 3 == 3 else 0):][:3] == b"\xaa\xaa\x03"
            or len(frame) <= 24 + (2 if frame[0] & 0x80 else 0) + 4):
        # an 802.11 data frame (pktmon labels Wi-Fi both these and Ethernet frames): destination and source
        # by the To-DS/From-DS bits (IEEE 802.11 address fields), then LLC/SNAP
        a1, a2, a3, a4 = frame[4:10], frame[10:16], frame[16:22], frame[24:30]
        ds = frame[1] & 3
        dst, src = {0: (a1, a2), 1: (a3, a2), 2: (a1, a3), 3: (a3, a4)}[ds]
        macs |= {"-".join(f"{b:02X}" for b in x) for x in (dst, src)}
        l3 = reference_pktmon.network_layer(frame, 2)
        kind, l3 = l3[:2], l3[2:]
    else:
        if len(frame) < 14:
            return vlans, macs, ips
        macs |= {"-".join(f"{b:02X}" for b in frame[i:i + 6]) for i in (0, 6)}
        at = 12
        while frame[at:at + 2] in (b"\x81\x00", b"\x88\xa8") and len(frame) >= at + 4:
            vlans.add(int.from_bytes(frame[at + 2:at + 4], "big") & 0x0FFF)
            at += 4
        kind, l3 = frame[at:at + 2], frame[at + 2:]
    if kind == b"\x08\x00" and len(l3) >= 20:
        ips |= {str(ipaddress.ip_address(l3[12:16])), str(ipaddress.ip_address(l3[16:20]))}
        l4 = l3[(l3[0] & 15) * 4:]
        if l3[9] == 17 and len(l4) >= 30 and l4[2:4] == b"\x12\xb5":  # VXLAN
            inner = tags_and_addresses(l4[16:], 1)
            vlans, macs, ips = vlans | inner[0], macs | inner[1], ips | inner[2]
    elif kind == b"\x86\xdd" and len(l3) >= 40:
        ips |= {str(ipaddress.ip_address(l3[8:24])), str(ipaddress.ip_address(l3[24:40]))}
    elif kind == b"\x08\x06" and len(l3) >= 28:
        macs.add("-".join(f"{b:02X}" for b in l3[8:14]))
        ips |= {str(ipaddress.ip_address(l3[14:18])), str(ipaddress.ip_address(l3[24:28]))}
    return vlans, macs, ips


def snapshots(path: Path):
    return reference_pktmon.read_snapshots(path)


def window(snaps) -> tuple[datetime, datetime]:
    """A window over the middle of the trace whose bounds fall in the middle of a gap of 100 µs or more between
    snapshots, so that no snapshot sits near a bound (the reference's times and ours, both converted from the
    trace's clock, differ by up to a few microseconds)."""
    times = sorted({s.time for s in snaps})

    def gap_after(i: int) -> datetime | None:
        for j in range(i, len(times) - 1):
            if times[j + 1] - times[j] >= timedelta(microseconds=100):
                return times[j] + (times[j + 1] - times[j]) / 2
        return None

    lo, hi = gap_after(len(times) // 3), gap_after(2 * len(times) // 3)
    if lo is None or hi is None or hi <= lo:
        pytest.skip("no gaps between snapshots to put a window's bounds in")
    return lo, hi


def inspect_kept(path: Path, select: PacketFilter) -> tuple[int, int]:
    p = api.inspect(path, select=select).pktmon
    return p.packets + p.malformed_packet_events, p.packet_events_left_out


def cases(path: Path):
    """(filter, the reference's predicate) pairs for one trace: a time window, its busiest component, its most
    frequent IP address and MAC, and a VLAN where it has tagged frames."""
    snaps = snapshots(path)
    if not snaps:
        pytest.skip(f"{path.name} has no pktmon packets")
    lo, hi = window(snaps)
    read = [(s, *tags_and_addresses(s.frame, s.packet_type)) for s in snaps]
    busiest = Counter(s.component for s in snaps).most_common(1)[0][0]
    out = [
        (PacketFilter.from_options(lo.isoformat(), hi.isoformat()), lambda s, v, m, i: lo <= s.time <= hi),
        (PacketFilter.from_options(components=[busiest]), lambda s, v, m, i: s.component == busiest),
    ]
    ip_counts = Counter(ip for _, _, _, ips in read for ip in ips)
    if ip_counts:
        ip = ip_counts.most_common(1)[0][0]
        out.append((PacketFilter.from_options(addresses=[ip]), lambda s, v, m, i: ip in i))
        subnet = ipaddress.ip_network(f"{ip}/{24 if ':' not in ip else 64}", strict=False)
        out.append((PacketFilter.from_options(addresses=[str(subnet)]),
                    lambda s, v, m, i: any(ipaddress.ip_address(x) in subnet for x in i
                                           if ipaddress.ip_address(x).version == subnet.version)))
    mac_counts = Counter(mac for _, _, macs, _ in read for mac in macs)
    if mac_counts:
        mac = mac_counts.most_common(2)[-1][0]
        out.append((PacketFilter.from_options(addresses=[mac.replace("-", ":").lower()]),
                    lambda s, v, m, i: mac in m))
    vlan_counts = Counter(v for _, vlans, _, _ in read for v in vlans)
    if vlan_counts:
        vlan = vlan_counts.most_common(1)[0][0]
        out.append((PacketFilter.from_options(vlans=[vlan], components=[busiest]),
                    lambda s, v, m, i: vlan in v and s.component == busiest))
    return read, out


@pytest.mark.parametrize("name", ["demo", *REAL])
def test_inspect_keeps_exactly_the_packets_the_reference_selects(name):
    path = DEMO if name == "demo" else sample(name)
    read, filters = cases(path)
    for select, predicate in filters:
        expected = sum(1 for s, v, m, i in read if predicate(s, v, m, i))
        kept, left_out = inspect_kept(path, select)
        assert (kept, left_out) == (expected, len(read) - expected), select.describe()
    if name == "demo":
        assert any(f.vlans for f, _ in filters)  # the demo has tagged frames: the VLAN case ran


def test_check_speaks_of_the_filtered_packets_and_never_reuses_an_unfiltered_run(tmp_path):
    db = tmp_path / "w.db"
    whole = api.check(DEMO, db_path=db, out_dir=tmp_path / "a", report_formats="md,txt,html")
    only3 = api.check(DEMO, db_path=db, out_dir=tmp_path / "b", report_formats="md,txt,html",
                      select=PacketFilter.from_options(components=[3]))
    assert not only3.reused and only3.run_id != whole.run_id
    drop_components = {row["component_id"] for f in only3.run.findings for row in f.evidence if "component_id" in row
                       and "reason_code" in row}
    assert drop_components == {3}  # the demo's drops at 2 and 5 are not looked at
    assert {row["component_id"] for f in whole.run.findings for row in f.evidence
            if "component_id" in row and "reason_code" in row} >= {2, 3, 5}
    left_out = only3.run.arguments["filter"]["packet_events_left_out"]
    assert left_out == sum(1 for s in snapshots(DEMO) if s.component != 3)
    for report in ("wnvdiag-report.md", "wnvdiag-report.txt", "wnvdiag-report.html"):
        text = " ".join((tmp_path / "b" / report).read_text().split())
        assert f"A filter kept packets at component 3; it left out {left_out} packet event(s)." in text, report
    again = api.check(DEMO, db_path=db, out_dir=tmp_path / "c", select=PacketFilter.from_options(components=[3]),
                      pcap_dir=tmp_path / "pcap")
    assert again.reused and again.run_id == only3.run_id
    # the evidence pcapng is filtered too: one interface (component 3), with packets
    assert again.pcaps and all(p.interfaces == 1 and p.packets for p in again.pcaps.values())


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
@pytest.mark.parametrize("name", ["demo", *REAL])
def test_export_pcap_writes_exactly_the_selected_packets(tmp_path, name):
    from diag.report.pcapng import PcapOptions, export_pcap

    path = DEMO if name == "demo" else sample(name)
    read, filters = cases(path)
    for n, (select, predicate) in enumerate(filters):
        if select.components:
            continue  # export-pcap's own --component (tested with the pcapng export)
        out = tmp_path / f"{n}.pcapng"
        summary = export_pcap(path, out, options=PcapOptions(select=select))
        expected = sum(1 for s, v, m, i in read if predicate(s, v, m, i))
        assert summary.packets + sum(summary.skipped.values()) == expected, select.describe()
        if expected and summary.packets:
            counted = subprocess.run([TSHARK, "-r", str(out), "-T", "fields", "-e", "frame.number"],
                                     capture_output=True, text=True, check=True).stdout.split()
            assert len(counted) == summary.packets
            comments = subprocess.run(["capinfos", "-k", str(out)], capture_output=True, text=True).stdout
            assert select.describe() in " ".join(comments.split())  # the file says what it holds
