"""The evidence pcapng in the tools its readers use: capinfos, reordercap, editcap, mergecap and tshark.

Expected values come from the real samples as the test-side reference reader rebuilds their packets
(tests/reference_pktmon.py: dissect.etl records, etl-parser layouts, plain slicing), from frames the
tests build themselves, or from the tools. Skips, saying why, where Wireshark's tools or the samples
are absent.
"""

from __future__ import annotations

import random
import shutil
import socket
import struct
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

import reference_pktmon
from samples import sample
from diag.decode import ndiscap
from diag.report.pcapng import PcapOptions, export_pcap
from diag.report.pcapngfile import PcapngFile, option
from diag.synth.etlwriter import EtlWriter

TOOLS = {name: shutil.which(name) for name in ("tshark", "capinfos", "reordercap", "editcap", "mergecap")}
needs_wireshark = pytest.mark.skipif(not all(TOOLS.values()), reason="Wireshark's command-line tools are not "
                                     "installed (apt-get install tshark)")
pytestmark = needs_wireshark

WITH_PACKETS = ["microsoft__demikernel__PktMon.etl", "NeoChenjf__Finguard__PktMon.etl",
                "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl"]
MODES = {"every": PcapOptions(), "first": PcapOptions(first_snapshot=True)}


def run(*args: object, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    if ok:
        assert done.returncode == 0, (args, done.stderr)
    return done


def fields(path: Path, *names: str, display: str | None = None) -> list[list[str]]:
    args = [TOOLS["tshark"], "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    args += [a for n in names for a in ("-e", n)] + (["-Y", display] if display else [])
    return [line.split("\t") for line in run(*args).stdout.splitlines()]


def strict_order(path: Path) -> bool:
    line = next(x for x in run(TOOLS["capinfos"], "-o", path).stdout.splitlines() if "Strict time order" in x)
    return line.split(":", 1)[1].strip() == "True"


@pytest.fixture(scope="module", params=[(s, m) for s in WITH_PACKETS for m in MODES], ids=lambda p: f"{p[0]}-{p[1]}")
def exported(request, tmp_path_factory):
    name, mode = request.param
    trace = sample(name)
    out = tmp_path_factory.mktemp("pcap") / f"{mode}.pcapng"
    return trace, mode, out, export_pcap(trace, out, options=MODES[mode])


def test_packets_are_in_time_order_with_every_interface_first(exported):
    _trace, _mode, out, summary = exported
    assert strict_order(out)
    # reordercap moves nothing, and stops at no IDB between packets
    done = run(TOOLS["reordercap"], out, out.with_suffix(".r.pcapng"))
    assert f"{summary.packets} frames, 0 out of order" in done.stdout + done.stderr
    assert len(fields(out.with_suffix(".r.pcapng"), "frame.number")) == summary.packets


def test_no_malformed_frames_on_the_real_samples(exported):
    _trace, _mode, out, _summary = exported
    assert fields(out, "frame.number", display="_ws.malformed || _ws.expert.severity == error") == []


def test_round_trips_through_editcap_mergecap_and_tshark_keep_every_packet_and_drop(exported):
    _trace, _mode, out, summary = exported
    comments = Counter(c[0].split(":", 1)[0] for c in fields(out, "frame.comment"))
    edited, merged, saved = (out.with_suffix(f".{x}.pcapng") for x in ("e", "m", "w"))
    run(TOOLS["editcap"], out, edited)
    run(TOOLS["mergecap"], "-w", merged, out, out)
    run(TOOLS["tshark"], "-r", out, "-w", saved)
    for copy, times in ((edited, 1), (merged, 2), (saved, 1)):
        again = Counter(c[0].split(":", 1)[0] for c in fields(copy, "frame.comment"))
        assert again == Counter({k: v * times for k, v in comments.items()}), copy.name
    assert sum(v for k, v in comments.items() if k.startswith("pktmon drop")) == summary.drops


def first_ipv4_pairs(trace: Path) -> Counter:
    """IPv4 address pair of every packet where it entered, as the reference reader rebuilds the packets."""
    packets, _repeats = reference_pktmon.rebuild(reference_pktmon.read_snapshots(trace))
    out: Counter = Counter()
    for packet in packets:
        first = packet.snapshots[0]
        l3 = reference_pktmon.network_layer(first.frame, first.packet_type)
        if first.packet_type == 3:
            kind, body = (b"\x08\x00" if l3[:1] and l3[0] >> 4 == 4 else b""), l3
        else:
            kind, body = l3[:2], l3[2:]
        if kind == b"\x08\x00" and len(body) >= 20:
            out[frozenset({socket.inet_ntoa(body[12:16]), socket.inet_ntoa(body[16:20])})] += 1
    return out


def conversations(path: Path) -> Counter:
    out: Counter = Counter()
    for line in run(TOOLS["tshark"], "-q", "-r", path, "-z", "conv,ip").stdout.splitlines():
        words = line.split()
        if len(words) > 9 and words[1] == "<->":
            out[frozenset({words[0], words[2]})] = int(words[9])  # total frames: after two "frames size unit"
    return out


@pytest.mark.parametrize("name", WITH_PACKETS)
def test_first_snapshot_conversations_count_each_packet_once(tmp_path, name):
    trace = sample(name)
    out = tmp_path / "first.pcapng"
    summary = export_pcap(trace, out, options=PcapOptions(first_snapshot=True))
    packets, _repeats = reference_pktmon.rebuild(reference_pktmon.read_snapshots(trace))
    assert summary.packets == len(packets)
    assert conversations(out) == first_ipv4_pairs(trace)
    comment = run(TOOLS["capinfos"], "-k", out).stdout
    assert "first snapshot of each packet" in comment


def test_dropped_packets_keep_their_drop_in_the_first_snapshot_comment(tmp_path):
    trace = sample("NeoChenjf__Finguard__PktMon.etl")
    packets, _repeats = reference_pktmon.rebuild(reference_pktmon.read_snapshots(trace))
    dropped = [p for p in packets if p.dropped_at is not None]
    out = export_pcap(trace, tmp_path / "f.pcapng", options=PcapOptions(first_snapshot=True)).path
    said = [c[0] for c in fields(out, "frame.comment") if c[0].startswith("pktmon drop")]
    assert len(said) == len(dropped)
    expected = Counter(next(s.reason for s in p.snapshots if s.dropped) for p in dropped)
    assert Counter(int(c.split("(reason ", 1)[1].split(",")[0]) for c in said) == expected


def test_one_component_only(tmp_path):
    trace = sample("nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl")
    snapshots = reference_pktmon.read_snapshots(trace)
    component, expected = Counter(s.component for s in snapshots).most_common(1)[0]
    out = export_pcap(trace, tmp_path / "c.pcapng", options=PcapOptions(components=frozenset({component}))).path
    rows = fields(out, "frame.interface_name")
    assert len(rows) == expected
    assert {r[0].split(":")[0] for r in rows} == {f"pktmon {component}"}
    assert f"at component(s) {component} only" in run(TOOLS["capinfos"], "-k", out).stdout


def test_the_verdict_is_there_when_asked_and_left_out_by_default(tmp_path):
    trace = sample("NeoChenjf__Finguard__PktMon.etl")
    drops = sum(1 for s in reference_pktmon.read_snapshots(trace) if s.dropped)
    plain = export_pcap(trace, tmp_path / "p.pcapng").path
    marked = export_pcap(trace, tmp_path / "v.pcapng", options=PcapOptions(verdict=True)).path
    assert fields(plain, "frame.number", display="frame.verdict") == []
    verdicts = fields(marked, "frame.verdict.hw", "frame.comment", display="frame.verdict")
    assert len(verdicts) == drops
    for hw, comment in verdicts:
        reason = int.from_bytes(bytes.fromhex(hw.replace(":", ""))[:4], "little")
        assert f"(reason {reason}," in comment


@pytest.mark.parametrize("name", ["NeoChenjf__Finguard__PktMon.etl",  # 802.11 frames (build 26200)
                                  "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl"])  # Ethernet
def test_wifi_labelled_frames_are_written_as_what_they_are(tmp_path, name):
    trace = sample(name)
    wifi = [s for s in reference_pktmon.read_snapshots(trace) if s.packet_type == 2]
    assert wifi, "the sample has Wi-Fi-labelled packets"
    is_80211 = sum(1 for s in wifi if s.frame[0] & 0x0C == 0x08 and s.frame[0] & 0x03 == 0
                   and reference_pktmon.network_layer(s.frame, 2) != s.frame[12:])
    out = export_pcap(trace, tmp_path / "w.pcapng").path
    encaps = Counter(r[0] for r in fields(out, "frame.encap_type"))
    assert encaps.get("20", 0) == is_80211  # WTAP_ENCAP_IEEE_802_11
    assert fields(out, "frame.number", display="_ws.malformed") == []


def test_a_trace_without_packets_writes_nothing_and_says_so(tmp_path):
    trace = sample("paul90317__Gobang__PktMon.etl")
    out = tmp_path / "none.pcapng"
    done = subprocess.run([sys.executable, "-m", "diag.cli", "export-pcap", str(trace), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "no packet to write" in done.stderr and str(trace) in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


# -- netsh trace (NDIS-PacketCapture) ------------------------------------------------------------------------

def tcp_frame(src: str, dst: str, sport: int, dport: int, seq: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), seq & 0xFFFF, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return bytes.fromhex("00155d0a0b0c00155d0a0b0d0800") + ip + tcp


def ndis_1001(frame: bytes, lower: int, miniport: int) -> bytes:
    return struct.pack("<III", miniport, lower, len(frame)) + frame + struct.pack("<QQ", 0, 0)


def test_netsh_trace_frames_are_exported(tmp_path):
    provider = uuid.UUID(ndiscap.PROVIDER)
    start_end = ndiscap.KW_PACKET_START | ndiscap.KW_PACKET_END | ndiscap.KW_ETHERNET
    frames = [tcp_frame("10.0.0.1", "10.0.0.2", 49152 + i, 443, i) for i in range(6)]
    path = tmp_path / "netsh.etl"
    with EtlWriter(path, logger_name="NetTrace", buffer_size=8192) as w:
        for i, frame in enumerate(frames[:4]):  # at the miniport (IfIndex 7) and a filter above it (9)
            w.write_event(provider, 1001, 0, ndis_1001(frame, 7 if i % 2 else 9, 7),
                          keywords=start_end | (ndiscap.KW_SEND if i < 2 else ndiscap.KW_RECEIVE),
                          timestamp=w.start_filetime + i * 10_000)
        # one packet in three fragments (Windows 8 and older), then a last fragment whose start is missing
        parts = [frames[4][:20], frames[4][20:40], frames[4][40:]]
        for j, (part, kw) in enumerate(zip(parts, (ndiscap.KW_PACKET_START, 0, ndiscap.KW_PACKET_END))):
            w.write_event(provider, 1001, 0, ndis_1001(part, 7, 7), keywords=kw | ndiscap.KW_ETHERNET | ndiscap.KW_SEND,
                          timestamp=w.start_filetime + (10 + j) * 10_000)
        w.write_event(provider, 1001, 0, ndis_1001(frames[5][30:], 9, 7),
                      keywords=ndiscap.KW_PACKET_END | ndiscap.KW_ETHERNET, timestamp=w.start_filetime + 20 * 10_000)
    out = tmp_path / "netsh.pcapng"
    summary = export_pcap(path, out)
    rows = fields(out, "tcp.srcport", "frame.interface_name", "frame.comment")
    assert sorted(int(r[0]) for r in rows) == [49152 + i for i in range(5)]
    assert {r[1] for r in rows} == {"ndis IfIndex 7", "ndis IfIndex 9 over IfIndex 7"}
    assert summary.skipped == Counter({"NDIS fragments of a packet whose first fragment is not in the trace": 1})
    assert strict_order(out)
    sent = fields(out, "tcp.srcport", display="frame.comment contains \"direction out\"")
    assert sorted(int(r[0]) for r in sent) == [49152, 49153, 49156]
    only = export_pcap(path, tmp_path / "nine.pcapng", options=PcapOptions(components=frozenset({9}))).path
    assert sorted(int(r[0]) for r in fields(only, "tcp.srcport")) == [49152, 49154]


# -- the writer itself ---------------------------------------------------------------------------------------

def test_spilled_runs_merge_into_time_order(tmp_path):
    rng = random.Random(7)
    out = tmp_path / "merge.pcapng"
    writer = PcapngFile(out, run_bytes=4096)  # about 40 packets per run: many runs
    sent = []
    try:
        iface = writer.interface("x", 1, "x", "x")
        for n in range(3000):
            ts = 1_700_000_000 * 10_000_000 + rng.randrange(0, 600 * 10_000_000)
            frame = tcp_frame("10.0.0.1", "10.0.0.2", 1024 + n % 60000, 80, n)
            writer.packet(iface, ts, frame, len(frame), option(1, f"n {n}".encode()))
            sent.append((ts, n))
        writer.finish("test", "test")
    finally:
        writer.discard()
    assert writer.runs > 10
    assert strict_order(out)
    got = [int(c[0].split()[1]) for c in fields(out, "frame.comment")]
    assert got == [n for _ts, n in sorted(sent)]  # stable: equal times keep the order they came in
