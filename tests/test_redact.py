"""--redact: consistent pseudonyms across every output, subnets keep their shape, and no original
value survives anywhere (scanned in every file written)."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from diag import api, store
from diag.report import HostInfoFile, render
from diag.report.redact import Redactor, redact_run

IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
IPV6 = re.compile(r"(?<![0-9a-fA-F:])[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![0-9a-fA-F:])")
MAC = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])")


def originals_from_host_info(*files: Path) -> set[str]:
    """Every address, MAC and adapter/DNS name in the host-info text the test feeds in."""
    found: set[str] = set()
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        for ip in IPV4.findall(text):
            addr = ipaddress.ip_address(ip)
            if not (addr.is_unspecified or str(addr).startswith("255.") or addr.is_loopback):
                found.add(ip)
        for ip in IPV6.findall(text):
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                continue
            if not (addr.is_unspecified or addr.is_loopback):
                found.add(ip)
        found |= set(MAC.findall(text))
        found |= {m.strip() for m in re.findall(r"adapter (.+):\s*$", text, re.M)}
        found |= {m.strip() for m in re.findall(r"DNS Suffix[ .]*: (\S+)", text)}
    return {v for v in found if v}


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redact")
    trace = tmp / "HOST-SECRET-01.etl"
    subprocess.run([sys.executable, "-m", "diag.cli", "synth", "overlapping-compartments-hostinfo", "-o", str(trace)],
                   check=True, capture_output=True)
    host_info = [tmp / "HOST-SECRET-01.ipconfig.txt", tmp / "HOST-SECRET-01.Get-NetIPAddress.txt"]
    result = api.check(trace, host_info=host_info, db_path=tmp / "w.db", out_dir=tmp / "plain")
    from diag.hostinfo import load_host_info
    from diag.inspect import scan_trace
    from diag.report.model import fact_records

    facts = result.run.facts or fact_records(api.build_facts(scan_trace(trace, facts=True), load_host_info(host_info)))
    run = result.run.model_copy(update={
        "facts": facts,
        "host_info": [HostInfoFile(path=str(p), size=p.stat().st_size) for p in host_info],
        "arguments": {"argv": ["check", str(trace), "--host-info", str(host_info[0]), "--redact"]},
    })
    return tmp, trace, host_info, run


def test_no_original_value_in_any_output(case):
    tmp, trace, host_info, run = case
    originals = originals_from_host_info(*host_info)
    assert len([v for v in originals if IPV4.fullmatch(v)]) >= 4
    names = {"HOST-SECRET-01", str(tmp)}  # the trace's name and directory
    for f in run.findings:  # names the rules put in evidence (vSwitch, adapter descriptions)
        for row in f.evidence:
            names |= {str(v) for k, v in row.items() if isinstance(v, str) and re.search("name|description", k)}
    # Names shorter than 4 characters ("nat") are also ordinary words of the rule pack (tag "nat",
    # rule "nat-port-exhaustion"), so they are checked field by field below, not in the full text.
    short = {n for n in names if len(n) < 4}
    originals |= names - short
    # The unredacted report does contain them (so the scan below can see them at all).
    plain = render(run, "all", tmp / "unredacted")
    plain_text = "\n".join(p.read_text(encoding="utf-8") for ps in plain.values() for p in ps)
    assert short == {"nat"}
    assert {"HOST-SECRET-01", "Container NIC 081ab44d"} <= {o for o in originals if o in plain_text}
    # And every address the unredacted outputs show (the trace's own, e.g. MACs of components).
    originals |= set(MAC.findall(plain_text)) | {ip for ip in IPV4.findall(plain_text)
                                                  if not ipaddress.ip_address(ip).is_loopback
                                                  and ip not in ("0.0.0.0", "255.255.255.255")}
    assert "172.20.0.0" in originals

    out = render(run, "all", tmp / "redacted", redact=True, redact_key=b"k" * 32, case_id="CASE-1")
    files = [p for ps in out.values() for p in ps]
    from diag.report.render import FILE_NAMES

    assert sorted(p.name for p in files) == sorted(n for names in FILE_NAMES.values() for n in names)  # every format
    for p in files:
        text = p.read_text(encoding="utf-8")
        for value in originals:
            if IPV4.fullmatch(value):
                hit = re.search(rf"(?<![\d.]){re.escape(value)}(?![\d.])", text)
            else:
                hit = re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.I)
            assert hit is None, f"{value!r} survived in {p.name}"
        assert "CASE-1" in text
    doc = json.loads((tmp / "redacted" / "wnvdiag-report.json").read_text())
    values = [v for f in doc["run"]["findings"] for row in f["evidence"] for v in row.values() if isinstance(v, str)]
    assert not short & set(values)
    assert any(v.startswith("switch-") for v in values) and any(v.startswith("adapter-") for v in values)


def test_overlaps_still_read_correctly(case):
    *_, run = case
    redacted = redact_run(run, b"k" * 32)
    (plain,) = [f for f in run.findings if f.rule_id == "overlapping-compartment-subnets"]
    (masked,) = [f for f in redacted.findings if f.rule_id == "overlapping-compartment-subnets"]
    for before, after in zip(plain.evidence, masked.evidence):
        a, b, o = (ipaddress.ip_network(after[k]) for k in ("prefix_a", "prefix_b", "overlap"))
        a0, b0, o0 = (ipaddress.ip_network(before[k]) for k in ("prefix_a", "prefix_b", "overlap"))
        assert (a, b, o) != (a0, b0, o0)
        assert (a.prefixlen, b.prefixlen, o.prefixlen) == (a0.prefixlen, b0.prefixlen, o0.prefixlen)
        assert a.overlaps(b) == a0.overlaps(b0) and b.subnet_of(a) == b0.subnet_of(a0)
        assert o == (b if b0 == o0 else a)
        # The summary names the same pseudonymized prefixes as the evidence.
        assert str(a) in masked.summary and str(o) in masked.summary


def test_pseudonyms_are_consistent_and_keyed():
    r1, r2, other = Redactor(b"a" * 32), Redactor(b"a" * 32), Redactor(b"b" * 32)
    assert r1.addresses("10.1.2.3") == r2.addresses("10.1.2.3") != other.addresses("10.1.2.3")
    a, b = (ipaddress.ip_address(r1.addresses(x)) for x in ("10.1.2.3", "10.1.2.200"))
    assert a in ipaddress.ip_network("10.0.0.0/8") and (int(a) >> 8) == (int(b) >> 8)  # same /24, same /8
    c = ipaddress.ip_address(r1.addresses("10.1.3.3"))
    assert (int(a) >> 9) == (int(c) >> 9) and (int(a) >> 8) != (int(c) >> 8)  # share exactly 23 bits
    assert r1.addresses("10.0.1.0/24").endswith(".0/24")
    mac = r1.addresses("00-15-5D-4A-00-10")
    assert mac.startswith("00-15-5D-") and mac != "00-15-5D-4A-00-10" and mac == mac.upper()
    assert r1.addresses("at 10:00:02.755 build 10.0.20348") == "at 10:00:02.755 build 10.0.20348"
    six = r1.addresses("fe80::215:5dff:fe4a:10%20")
    assert six.startswith("fe") and six.endswith("%20") and "215:5dff" not in six
    assert ipaddress.ip_address(six.split("%")[0]) in ipaddress.ip_network("fe80::/10")


def test_stored_runs_rerender_with_the_same_pseudonyms(case, tmp_path):
    from diag.report import render_stored

    tmp, trace, host_info, run = case
    db = tmp_path / "w.db"
    run_id = store.save_run(db, run)
    first = render_stored(db, run_id, "json", tmp_path / "a", redact=True)
    second = render_stored(db, run_id, "json", tmp_path / "b", redact=True)
    assert first["json"][0].read_text() == second["json"][0].read_text()
    doc = json.loads(first["json"][0].read_text())
    assert doc["redacted"] is True and "HOST-SECRET" not in first["json"][0].read_text()
