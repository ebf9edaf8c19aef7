"""The rules pack on real pktmon traces (../shared/etl-samples): sensible results, checked against an
independent decode.

Expected values are computed here from the files with dissect.etl (records) and etl-parser's generated
PktMon layouts (payloads), neither of which is used by wnvdiag, never copied from our output:
- NeoChenjf__Finguard__PktMon.etl: every drop event is reported, exactly, broken down by reason and by
  component as the independent decode counts them; the TCP/IP drop rule covers exactly the TCP/IP reasons;
- microsoft__demikernel__PktMon.etl (an Azure VM with accelerated networking): the VF (mlx5 "Virtual
  Ethernet Adapter") and NetVsc components of its rundown are reported as a VF/synthetic pair, with the
  packets the VF carried;
- every pktmon sample: no finding above "low" on these healthy captures except the drop findings the
  decode supports and unanswered ARP exactly where the frames hold it (counted here with struct); the
  payload-truncation gate fires exactly when a quarter or more of the packet events were logged shorter
  than the packet, and the no-packets gate exactly on the rundown-only file.
The samples are absent in a user's clone: every test skips with a message then (tests/samples.py).
"""

from __future__ import annotations

import collections
import uuid
from pathlib import Path

import pytest

from samples import sample
from diag.api import check

PKTMON = "4d4f80d9-c8bd-4d73-bb5b-19c90402c5ac"
TCPIP_REASONS = [(601, 615), (901, 1002), (1200, 1232)]
PKTMON_SAMPLES = ["NeoChenjf__Finguard__PktMon.etl", "microsoft__demikernel__PktMon.etl", "paul90317__Gobang__PktMon.etl",
                  "nathaniel-security__microsoft-pktmon-VPN-capture-traffic__PktMon.etl"]


def _wstring(value) -> str:
    raw = bytes(value.string)
    return raw.decode("utf-16-le").rstrip("\x00")


def independent_decode(path: Path) -> dict:
    """Packets, drops by reason and component, truncated snapshots and the component rundown."""
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    pytest.importorskip("etl.parsers.etw.Microsoft_Windows_PktMon")
    from dissect.etl.headers.event import EventHeader
    from etl.parsers.etw import Microsoft_Windows_PktMon as layouts

    out = {"packets": 0, "truncated": 0, "drops": collections.Counter(), "by_component": collections.Counter(),
           "packets_by_component": collections.Counter(), "components": {}}
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            if not isinstance(h, EventHeader) or str(uuid.UUID(bytes_le=h.provider_id.bytes)) != PKTMON:
                continue
            event_id = h.descriptor.id
            if event_id in (160, 170):
                f = getattr(layouts, f"Microsoft_Windows_PktMon_{event_id}_0").pattern.parse(bytes(h.payload))
                out["packets"] += 1
                out["packets_by_component"][f.ComponentId] += 1
                if f.LoggedPayloadSize < f.OriginalPayloadSize:
                    out["truncated"] += 1
                if event_id == 170:
                    out["drops"][f.DropReason] += 1
                    out["by_component"][f.ComponentId] += 1
            elif event_id == 20:
                f = layouts.Microsoft_Windows_PktMon_20_0.pattern.parse(bytes(h.payload))
                out["components"][f.Id] = (_wstring(f.Name), _wstring(f.Description))
    return out


def run_check(path: Path, tmp_path: Path) -> dict:
    result = check(path, db_path=tmp_path / "wnvdiag.db", out_dir=tmp_path)
    assert result.run.failure is None and result.run.rule_errors == [] and result.run.engine_errors == []
    return {f.rule_id: f for f in result.run.findings}


def rows(finding) -> list[dict]:
    return [{k.split(".", 1)[-1]: v for k, v in row.items()} for row in finding.evidence]


def test_the_trace_with_28_drops_reports_every_drop_by_reason_and_component(tmp_path):
    path = sample("NeoChenjf__Finguard__PktMon.etl")
    decode = independent_decode(path)
    findings = run_check(path, tmp_path)
    assert sum(decode["drops"].values()) == 28  # the file's README, and the independent decode, agree
    dropped = rows(findings["packets-dropped"])
    by_reason, by_component = collections.Counter(), collections.Counter()
    for row in dropped:
        by_reason[row["reason_code"]] += row["count"]
        by_component[row["component_id"]] += row["count"]
    assert by_reason == decode["drops"]
    assert by_component == decode["by_component"]
    assert f"{sum(decode['drops'].values())} packet(s) dropped" in findings["packets-dropped"].summary

    tcpip = {r: n for r, n in decode["drops"].items() if any(lo <= r <= hi for lo, hi in TCPIP_REASONS)}
    assert tcpip  # 1204, 1210, 918, 1217: the host stack refused them
    got = collections.Counter()
    for row in rows(findings["tcpip-drops"]):
        got[row["reason_code"]] += row["count"]
    assert got == tcpip


def test_the_sriov_sample_shows_the_vf_and_its_synthetic_adapter(tmp_path):
    path = sample("microsoft__demikernel__PktMon.etl")
    decode = independent_decode(path)
    vfs = {cid for cid, (name, desc) in decode["components"].items()
           if name.lower() == "mlx5.sys" and "virtual" in desc.lower()}
    netvsc = {cid for cid, (name, _) in decode["components"].items() if name.lower() == "netvsc.sys"}
    assert vfs and netvsc
    findings = run_check(path, tmp_path)
    (pair,) = rows(findings["sriov-vf-data-path"])
    assert pair["vf_component_id"] in vfs
    assert pair["netvsc_component_id"] in netvsc
    assert pair["vf_packets"] == decode["packets_by_component"][pair["vf_component_id"]] > 0
    # a guest's VF traffic is not a problem: nothing above info
    assert {f.severity for f in findings.values()} == {"info"}


def unanswered_arp(path: Path) -> dict[tuple[str, str], int]:
    """(requester MAC, target IPv4) -> requests, for 3+ ARP requests whose target never sent an ARP reply: first
    snapshot of each packet, Ethernet frames, read here with struct from etl-parser's event 160/170 Payload."""
    dissect_etl = pytest.importorskip("dissect.etl.etl")
    from dissect.etl.headers.event import EventHeader
    from etl.parsers.etw import Microsoft_Windows_PktMon as layouts

    seen, requests, replied = set(), collections.Counter(), set()
    with open(path, "rb") as fh:
        for rec in dissect_etl.ETL(fh):
            h = rec.header
            if not isinstance(h, EventHeader) or str(uuid.UUID(bytes_le=h.provider_id.bytes)) != PKTMON \
                    or h.descriptor.id not in (160, 170):
                continue
            f = getattr(layouts, f"Microsoft_Windows_PktMon_{h.descriptor.id}_0").pattern.parse(bytes(h.payload))
            frame = bytes(f.Payload)
            if (f.PktGroupId, f.PktNumber) in seen or f.PacketType != 1 or frame[12:14] != b"\x08\x06":
                continue
            seen.add((f.PktGroupId, f.PktNumber))
            operation, sender_ip, target_ip = frame[20:22], frame[28:32], frame[38:42]
            if operation == b"\x00\x01" and sender_ip not in (target_ip, bytes(4)):
                requests[("-".join(f"{b:02X}" for b in frame[6:12]), ".".join(map(str, target_ip)))] += 1
            elif operation == b"\x00\x02":
                replied.add(".".join(map(str, sender_ip)))
    return {key: n for key, n in requests.items() if n >= 3 and key[1] not in replied}


@pytest.mark.parametrize("name", PKTMON_SAMPLES)
def test_healthy_samples_get_no_network_problem_findings(name, tmp_path):
    path = sample(name)
    decode = independent_decode(path)
    findings = run_check(path, tmp_path)
    drop_rules = {"packets-dropped", "tcpip-drops", "same-drop-reason-on-several-components"}
    assert ("packets-dropped" in findings) == bool(decode["drops"])
    serious = {r for r, f in findings.items() if f.severity in ("medium", "high", "critical") and r not in drop_rules}
    # ARP requests never answered in the capture are reported where the frames hold them (the VPN sample asks
    # 12 times for 192.168.153.2, a VMware NAT gateway address, and no reply is logged)
    unanswered = unanswered_arp(path)
    assert ("arp-nd-unanswered" in findings) == bool(unanswered)
    if unanswered:
        got = {(r["requester_mac"], r["target"]): r["requests"] for r in rows(findings["arp-nd-unanswered"])}
        assert got == unanswered
    assert serious - {"arp-nd-unanswered"} == set()
    # a rundown-only capture says so: its packet questions are unanswered, not negative
    assert ("trace-no-packets" in findings) == (decode["packets"] == 0 and bool(decode["components"]))
    share = decode["truncated"] / decode["packets"] if decode["packets"] else 0
    assert ("trace-payload-truncated" in findings) == (share >= 0.25)
    if "trace-payload-truncated" in findings:
        (row,) = rows(findings["trace-payload-truncated"])
        assert row["payload_truncated"] == decode["truncated"] and row["packet_events"] == decode["packets"]
