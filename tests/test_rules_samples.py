"""The rules pack on every real trace in ../shared/etl-samples: which rules fire, which must not, and why.

``EXPECTED`` is the table the README carries ("The rules on the real samples"); a test checks that the two
agree, one test per row checks the run against it, and the tests below check why each finding is right,
from an independent reading of the file: dissect.etl for the records, etl-parser's generated layouts for
the payloads, frames read here with plain slicing (tests/reference_pktmon.py for packets and dropped
frames). Nothing here is copied from wnvdiag's output.

The samples are absent in a user's clone: every test skips with a message then (tests/samples.py).
"""

from __future__ import annotations

import collections
import re
import uuid
from pathlib import Path

import pytest

import reference_pktmon as reference
from samples import sample
from diag.api import Severity, check

ROOT = Path(__file__).resolve().parent.parent
PKTMON = "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"
KERNEL_NETWORK = "7dd42a49-5329-4832-8dfd-43d979153a88"
KERNEL_TCPIP, KERNEL_UDPIP = "9a280ac0-c8e0-11d1-84e2-00c04fb998a2", "bf3a50c5-a9c9-4988-a005-2df0b7c80f80"
# the providers whose events the rules judge a host's network by (README, "How the trace is read"); GUIDs as the
# providers register them (pktmon's docs, the SDN capture scripts, SdnDiagnostics)
MODELLED = {
    PKTMON,  # Microsoft-Windows-PktMon
    "2ed6006e-4729-4609-b423-3ee7bcd678ef",  # Microsoft-Windows-NDIS-PacketCapture
    "67dc0d66-3695-47c0-9642-33f76f7bd7ad",  # Microsoft-Windows-Hyper-V-VmSwitch
    "152fbe4b-c7ad-4f68-bada-a4fcc1464f6c",  # Microsoft-Windows-Hyper-V-Netvsc
    "2f07e2ee-15db-40f1-90ef-9d7ba282188a",  # Microsoft-Windows-TCPIP
    "66c07ecd-6667-43fc-93f8-05cf07f446ec",  # Microsoft-Windows-WinNat
    "3ad15a04-74f1-4dca-b226-aff89085a05a",  # Microsoft-Windows-Wnv
    "0c885e0d-6eb6-476c-a048-2457eed3a5c1",  # Microsoft-Windows-Host-Network-Service
    "9f2660ea-cfe7-428f-9850-aeca612619b0",  # Microsoft-Windows-Hyper-V-VfpExt
    "b72c6994-9fe0-45ad-83b3-8f5885f20e0e",  # Microsoft-Windows-MsLbfoEventProvider
}
TCPIP_REASONS = [(601, 615), (901, 1002), (1200, 1232)]

# sample -> (verdict at the default threshold, exit code of `wnvdiag check`, the rules that fire)
EXPECTED = {
    "NeoChenjf__Finguard__PktMon.etl": ("no_findings", 0, {"background-drops", "packet-paths-rebuilt",
                                                           "trace-payload-truncated"}),
    "microsoft__demikernel__PktMon.etl": ("no_findings", 0, {"sriov-vf-data-path"}),
    "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl": (
        "findings", 1, {"arp-nd-unanswered", "trace-payload-truncated"}),
    "paul90317__Gobang__PktMon.etl": ("inconclusive", 3, {"trace-cannot-answer", "vmswitch-provider-absent"}),
    "microsoft__Tx__KernelNetwork.etl": ("inconclusive", 3, {"trace-cannot-answer"}),
    "microsoft__perfview__net.4.5.2.x64.etl": ("inconclusive", 3, {"trace-cannot-answer", "provider-not-decoded"}),
    "airbus-cert__etl-parser__ShutdownPerfDiagLogger.etl": ("inconclusive", 3, {"trace-cannot-answer"}),
    "microsoft__krabsetw__powershell.etl": ("inconclusive", 3, {"trace-cannot-answer"}),
    "microsoft__ebpf-for-windows__ebpforwindows.etl": ("inconclusive", 3, {"trace-cannot-answer"}),
    "microsoft__perfview__smallEtlFile.etl": ("inconclusive", 3, {"trace-cannot-answer"}),
    "microsoft__perfview__SelfDescribingSingleEvent.etl": ("inconclusive", 3, {"trace-cannot-answer"}),
}
PKTMON_SAMPLES = [name for name in EXPECTED if "PktMon" in name]


def _wstring(value) -> str:
    raw = bytes(value.string)
    return raw.decode("utf-16-le").rstrip("\x00")


def providers(path: Path) -> collections.Counter:
    """Records per provider GUID, as dissect.etl reads them (its byte-order slip on modern GUIDs undone)."""
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    from dissect.etl.headers.event import EventHeader

    out: collections.Counter = collections.Counter()
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            guid = uuid.UUID(bytes_le=h.provider_id.bytes) if isinstance(h, EventHeader) else h.provider_id
            out[str(guid)] += 1
    return out


def independent_decode(path: Path) -> dict:
    """Packets, drops by reason and component, truncated snapshots and the component rundown."""
    out = {"packets": 0, "truncated": 0, "drops": collections.Counter(), "by_component": collections.Counter(),
           "packets_by_component": collections.Counter(), "components": {}, "macs": {}}
    for event_id, h, f in reference.pktmon_events(path, {20, 160, 170}):
        if event_id in (160, 170):
            out["packets"] += 1
            out["packets_by_component"][f.ComponentId] += 1
            if f.LoggedPayloadSize < f.OriginalPayloadSize:
                out["truncated"] += 1
            if event_id == 170:
                out["drops"][f.DropReason] += 1
                out["by_component"][f.ComponentId] += 1
        else:
            out["components"][f.Id] = (_wstring(f.Name), _wstring(f.Description), f.Type)
    for event_id, h, _ in reference.pktmon_events(path, {70}):
        payload = bytes(h.payload)  # ComponentId u16, Type u16 (6: PhysAddress), Size u32, the bytes
        if int.from_bytes(payload[2:4], "little") == 6:
            out["macs"][int.from_bytes(payload[0:2], "little")] = payload[8:14].hex()
    return out


def run_check(path: Path, tmp_path: Path, threshold: Severity = Severity.low):
    result = check(path, db_path=tmp_path / "wnvdiag.db", out_dir=tmp_path, threshold=threshold)
    assert result.run.failure is None and result.run.rule_errors == [] and result.run.engine_errors == []
    return result


def findings_of(result) -> dict:
    return {f.rule_id: f for f in result.run.findings}


def rows(finding) -> list[dict]:
    return [{k.split(".", 1)[-1]: v for k, v in row.items()} for row in finding.evidence]


# -- the table ---------------------------------------------------------------------------------------------

def readme_table() -> dict[str, tuple[str, int, set[str]]]:
    """The README's table of the rules on the real samples: sample -> (verdict, exit code, rules that fire)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### The rules on the real samples", 1)[1].split("\n#", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        verdict, code = re.fullmatch(r"(\w+), exit (\d)", cells[2]).groups()
        fired = set(re.findall(r"`([a-z0-9-]+)`", cells[3]))
        out[cells[0].strip("`")] = (verdict, int(code), fired)
    return out


def test_the_readme_table_is_what_these_tests_check():
    assert readme_table() == EXPECTED


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_real_sample_gets_its_verdict_and_exactly_its_findings(name, tmp_path):
    verdict, code, fired = EXPECTED[name]
    result = run_check(sample(name), tmp_path)
    assert set(findings_of(result)) == fired
    assert (result.run.verdict, result.exit_code) == (verdict, code)
    assert result.run.complete


# -- why each finding is right -------------------------------------------------------------------------------

def test_finguard_every_drop_is_lan_background_and_counted_by_event_and_by_frame(tmp_path):
    # build 26200, a laptop: the 28 drop events are loopback TCP (a program trying 127.0.0.1:6469, which nothing
    # listens on: SYN refused twice and by arbitration, the RST, one keep-alive) and a broadcast of EtherType
    # 0x8300 the host does not speak. None of it is a network problem.
    path = sample("NeoChenjf__Finguard__PktMon.etl")
    decode = independent_decode(path)
    snapshots = reference.read_snapshots(path)
    drops = [s for s in snapshots if s.dropped]
    assert len(drops) == sum(decode["drops"].values()) == 28
    for s in drops:
        l3 = reference.network_layer(s.frame, s.packet_type)
        loopback = s.packet_type == 3 and l3[0] >> 4 == 4 and l3[12] == 127 and l3[16] == 127
        broadcast = s.frame.startswith(b"\xff" * 6) and l3[:2] not in (b"\x08\x00", b"\x86\xdd", b"\x08\x06") and \
            s.reason == 204
        assert loopback or broadcast, s
    result = run_check(path, tmp_path, Severity.info)
    f = findings_of(result)
    assert not {"packets-dropped", "tcpip-drops", "drop-rate", "drop-paths"} & set(f)
    ev = rows(f["background-drops"])
    by_reason: collections.Counter = collections.Counter()
    for row in ev:
        by_reason[row["reason_code"]] += row["count"]
        assert row["traffic"] in ("loopback", "broadcast of a protocol the host does not speak")
    assert by_reason == decode["drops"]
    frames = reference.dropped_frames(snapshots)
    assert sum(row["distinct_frames"] for row in ev) == sum(frames.values()) < len(drops)
    assert f"{len(drops)} drop event(s) ({sum(frames.values())} distinct frame(s))" in f["background-drops"].summary


def test_finguard_loopback_syns_are_one_packet_each_with_their_three_drop_events(tmp_path):
    # the small case the issue asks to check by hand: a program tries closed loopback ports (6469, 28194, 8080),
    # retrying; every SYN is logged dropped three times in a row (1204, 1204 under another IPv4 header, then
    # 918). Each attempt is one packet, with three drop events
    path = sample("NeoChenjf__Finguard__PktMon.etl")
    snapshots = reference.read_snapshots(path)
    syns = [s for s in snapshots
            if s.packet_type == 3 and s.frame[9] == 6 and s.frame[12] == 127 and s.frame[33] & 0x02]
    attempts = {(s.frame[20:24], s.frame[24:28], round(s.time.timestamp(), 2)) for s in syns}  # ports, seq, when
    assert len(syns) == 3 * len(attempts) and len(attempts) == 6
    assert sorted(collections.Counter(s.reason for s in syns).items()) == [(918, 6), (1204, 12)]
    result = run_check(path, tmp_path)
    ports = {(int.from_bytes(p[:2], "big"), int.from_bytes(p[2:], "big")) for p, _, _ in attempts}
    flows = [f for f in result.run.facts_of("flow") if f["src"] == f["dst"] == "127.0.0.1"
             and (f["sport"], f["dport"]) in ports]
    assert sum(f["packets"] for f in flows) == len(attempts)  # packets, not drop events
    trace = result.run.facts_of("trace")[0]
    packets, repeats = reference.rebuild(snapshots)
    assert trace["packet_paths"] == trace["paths_rebuilt"] == len(packets) < len(snapshots)
    assert trace["packet_numbering"] == "per-snapshot" and all(s.appearance == 0 for s in snapshots)
    assert (trace["drop_events"], trace["dropped_frames"]) == (28, sum(reference.dropped_frames(snapshots).values()))


def test_finguard_the_broadcast_crosses_ten_component_edges_as_one_packet(tmp_path):
    # two 0x8300 broadcasts, each logged at 10 component edges (Wi-Fi miniport, three filters both edges, the
    # Ethernet side, two protocols) with consecutive ids, and dropped at the miniport: 2 packets of 10 hops
    path = sample("NeoChenjf__Finguard__PktMon.etl")
    snapshots = reference.read_snapshots(path)
    hops = [s for s in snapshots if reference.network_layer(s.frame, s.packet_type)[:2] == b"\x83\x00"]
    assert len(hops) == 20
    result = run_check(path, tmp_path)
    routes = [r for r in result.run.facts_of("packet_route") if r["dropped"] and r["hop_count"] == 10]
    assert [(r["packets"], r["last_component_id"]) for r in routes] == [(2, hops[-1].component)]
    assert {s.seq for s in hops if s.cpu == hops[0].cpu} >= set(range(hops[0].seq, hops[0].seq + 10))


def test_finguard_packet_paths_rebuilt_and_truncation(tmp_path):
    path = sample("NeoChenjf__Finguard__PktMon.etl")
    decode = independent_decode(path)
    packets, _ = reference.rebuild(reference.read_snapshots(path))
    f = findings_of(run_check(path, tmp_path, Severity.info))
    (row,) = rows(f["packet-paths-rebuilt"])
    assert (row["os_build"], row["packet_events"], row["paths_rebuilt"]) == (26200, decode["packets"], len(packets))
    (row,) = rows(f["trace-payload-truncated"])
    assert row["payload_truncated"] == decode["truncated"] and decode["truncated"] / decode["packets"] >= 0.25


def test_demikernel_the_vf_and_the_synthetic_adapter_that_carried_the_traffic(tmp_path):
    # an Azure VM with accelerated networking: the mlx5 VF and the Hyper-V adapter share a MAC. pktmon lists the
    # Hyper-V adapter twice (a "NetVsc Miniport" component and the netvsc.sys miniport); the traffic is logged at
    # the netvsc.sys one, and that is the one paired
    path = sample("microsoft__demikernel__PktMon.etl")
    decode = independent_decode(path)
    vfs = {cid for cid, (name, desc, _) in decode["components"].items()
           if name.lower() == "mlx5.sys" and "virtual" in desc.lower()}
    (vf,) = vfs
    synthetic = {cid for cid, (name, _, ctype) in decode["components"].items()
                 if (name.lower() == "netvsc.sys" or ctype == 9) and decode["macs"].get(cid) == decode["macs"][vf]}
    busiest = max(synthetic, key=lambda c: decode["packets_by_component"][c])
    f = findings_of(run_check(path, tmp_path, Severity.info))
    (pair,) = rows(f["sriov-vf-data-path"])
    assert pair["vf_component_id"] == vf and pair["netvsc_component_id"] == busiest
    assert pair["vf_packets"] == decode["packets_by_component"][vf] > 0
    assert pair["netvsc_packets"] == decode["packets_by_component"][busiest] > 0
    assert f["sriov-vf-data-path"].severity == "info"


def unanswered_arp(path: Path) -> dict[tuple[str, str], int]:
    """(requester MAC, target IPv4) -> requests, for 3+ ARP requests whose target never sent an ARP reply: one per
    packet (the reference rebuild), Ethernet frames, read here with slicing."""
    packets, _ = reference.rebuild(reference.read_snapshots(path))
    requests, replied = collections.Counter(), set()
    for packet in packets:
        first = packet.snapshots[0]
        frame = first.frame
        if first.packet_type != 1 or frame[12:14] != b"\x08\x06":
            continue
        operation, sender_ip, target_ip = frame[20:22], frame[28:32], frame[38:42]
        if operation == b"\x00\x01" and sender_ip not in (target_ip, bytes(4)):
            requests[("-".join(f"{b:02X}" for b in frame[6:12]), ".".join(map(str, target_ip)))] += 1
        elif operation == b"\x00\x02":
            replied.add(".".join(map(str, sender_ip)))
    return {key: n for key, n in requests.items() if n >= 3 and key[1] not in replied}


def test_vpn_capture_asks_twelve_times_for_an_address_that_never_answers(tmp_path):
    # 192.168.153.2, a VMware NAT gateway address, is asked for and no reply is logged
    path = sample("nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl")
    unanswered = unanswered_arp(path)
    assert unanswered
    f = findings_of(run_check(path, tmp_path))
    got = {(r["requester_mac"], r["target"]): r["requests"] for r in rows(f["arp-nd-unanswered"])}
    assert got == unanswered
    decode = independent_decode(path)
    (row,) = rows(f["trace-payload-truncated"])
    assert row["payload_truncated"] == decode["truncated"] and decode["truncated"] / decode["packets"] >= 0.25


@pytest.mark.parametrize("name", PKTMON_SAMPLES)
def test_no_pktmon_sample_has_workload_drops_or_undelivered_packets(name, tmp_path):
    # none of these captures drops workload traffic (Finguard's drops are all background, above) or holds a
    # path that ends inside a vSwitch: the drop and delivery rules must stay silent on all of them
    f = findings_of(run_check(sample(name), tmp_path, Severity.info))
    drop_rules = {"packets-dropped", "drop-rate", "drop-paths", "tcpip-drops", "packets-not-delivered",
                  "same-drop-reason-on-several-components", "address-resolution-drops"}
    assert not drop_rules & set(f)


def test_gobang_is_a_component_list_without_packets_so_it_cannot_answer(tmp_path):
    path = sample("paul90317__Gobang__PktMon.etl")
    decode = independent_decode(path)
    assert decode["packets"] == 0 and decode["components"]
    assert not (set(providers(path)) - {PKTMON}) & MODELLED  # nothing else the rules read
    result = run_check(path, tmp_path)
    (row,) = rows(findings_of(result)["trace-cannot-answer"])
    assert f"{len(decode['components'])} components but not one packet" in row["evidence_gap"]
    vmnics = [cid for cid, (_, _, ctype) in decode["components"].items() if ctype == 5]
    assert vmnics and "vmswitch-provider-absent" in findings_of(result)  # vmNICs listed, no VmSwitch events


@pytest.mark.parametrize("name", [n for n in EXPECTED if EXPECTED[n][0] == "inconclusive" and "PktMon" not in n])
def test_traces_without_the_providers_the_rules_read_are_inconclusive(name, tmp_path):
    path = sample(name)
    present = providers(path)
    assert not set(present) & MODELLED
    result = run_check(path, tmp_path, Severity.critical)  # inconclusive whatever the threshold
    assert (result.run.verdict, result.exit_code) == ("inconclusive", 3)
    (row,) = rows(findings_of(result)["trace-cannot-answer"])
    gap = row["evidence_gap"]
    if KERNEL_NETWORK in present:  # decoded (tests/test_decode_kernelnetwork.py), but no rule reads it
        assert "Kernel-Network" in gap and "no kind the rules read" in gap
    elif KERNEL_TCPIP in present:
        assert "could not be decoded" in gap and "TcpIp (kernel)" in gap and "UdpIp (kernel)" in gap
        not_decoded = {r["guid"] for r in rows(findings_of(result)["provider-not-decoded"])}
        assert not_decoded == {KERNEL_TCPIP, KERNEL_UDPIP}
    else:
        assert gap.startswith("it holds no networking events")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_no_report_of_a_real_sample_shows_none(name, tmp_path):
    # an empty value reads "–" or is left out: "None" (Python's) is never shown to a reader
    from diag.report import render

    result = run_check(sample(name), tmp_path, Severity.info)
    written = render(result.run.model_copy(update={"min_severity": "info"}), "md,html,csv", tmp_path / "out")
    for files in written.values():
        for path in files:
            assert not re.search(r"\bNone\b", path.read_text(encoding="utf-8")), path.name


def test_the_background_classifier_reads_real_discovery_frames():
    # the VPN capture logs mDNS and SSDP multicast (802.11 frames with LLC/SNAP, and Ethernet frames, on build
    # 19042): none was dropped there, but had the stack dropped them (1201, destination is multicast), each must
    # read as background of its service; a unicast frame of the same capture must not
    from diag.facts.background import background_kind
    from diag.facts.pktmon import LINKS

    snapshots = reference.read_snapshots(sample("nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl"))
    seen = collections.Counter()
    for s in snapshots:
        l3 = reference.network_layer(s.frame, s.packet_type)
        if l3[:2] != b"\x08\x00" or l3[11] != 17:
            continue
        ip = l3[2:]
        dst, dport = ip[16:20], int.from_bytes(ip[(ip[0] & 15) * 4 + 2:(ip[0] & 15) * 4 + 4], "big")
        kind = background_kind(s.frame, LINKS[s.packet_type], 1201)
        if (dst, dport) == (bytes([224, 0, 0, 251]), 5353):
            assert kind == "mDNS", s
            seen["mDNS"] += 1
        elif (dst, dport) == (bytes([239, 255, 255, 250]), 1900):
            assert kind == "SSDP", s
            seen["SSDP"] += 1
        else:
            dot11 = s.packet_type == 2 and s.frame[0] & 0x0C == 0x08
            da = (s.frame[16:22] if s.frame[1] & 1 else s.frame[4:10]) if dot11 else s.frame[0:6]
            if not da[0] & 1 and dst[0] < 224:  # IEEE 802 I/G bit clear: a unicast frame
                assert kind is None, s
                seen["unicast"] += 1
    assert seen["mDNS"] and seen["unicast"]
