"""The HTML report in a real headless Chromium: no console errors, no network requests, the charts
are drawn and the script ran. A screenshot (desktop and phone width) is kept as a test artifact in
``$TMPDIR/wnvdiag-test-artifacts/``. Skips, saying why, where Chromium is not installed."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from diag.report.html import render_html
from test_report_outputs import EVIL, make_run
from diag.facts import Finding
from diag.report.model import TraceInfo

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed (apt-get install chromium)")
ARTIFACTS = Path(tempfile.gettempdir()) / "wnvdiag-test-artifacts"
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--enable-logging=stderr", "--v=0",
]


def load(page: Path, work: Path, *extra: str) -> tuple[str, list[str], list[str]]:
    """Open ``page``; return the DOM after scripts ran, console messages, and the page's requests."""
    netlog = work / f"{page.stem}.netlog.json"
    proc = subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={work / 'profile'}", f"--log-net-log={netlog}", *extra,
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    requests = [
        e["params"]["url"] for e in log["events"]
        if names.get(e["type"]) == "URL_REQUEST_START_JOB" and "params" in e
        and e["params"].get("initiator") != "not an origin"  # the browser's own update/time checks
        and not e["params"].get("url", "file:").startswith("file:")
    ]
    return proc.stdout, console, requests


def screenshot(page: Path, work: Path, target: Path, width: int) -> tuple[int, int]:
    subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={work / 'profile'}", f"--window-size={width},2000",
                    f"--screenshot={target}", page.resolve().as_uri()], capture_output=True, timeout=60, check=True)
    head = target.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_the_harness_sees_errors_and_requests(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<p>x</p><img src="http://example.invalid/a.png">'
                   '<script>fetch("https://example.invalid/x"); notDefined();</script>')
    _, console, requests = load(bad, tmp_path)
    assert any("notDefined" in line for line in console)
    assert "http://example.invalid/a.png" in requests and "https://example.invalid/x" in requests


def test_the_report_renders_cleanly_in_chromium(tmp_path):
    from diag.report.examples import example_run

    run = example_run()
    page = tmp_path / "wnvdiag-report.html"
    page.write_text(render_html(run.model_copy(update={"case_id": "EXAMPLE-0001"})), encoding="utf-8")
    dom, console, requests = load(page, tmp_path)
    assert console == []
    assert requests == []
    assert 'data-script="ran"' in dom
    charts = re.findall(r'<svg class="chart[^"]*" data-chart="(\w+)"', dom)
    assert "severity" in charts
    with_counts = sum(1 for f in run.shown_findings if any("count" in row for row in f.evidence))
    assert charts.count("counts") == with_counts >= 2
    assert charts.count("timeline") >= 1
    # Packet paths drawn as hops, and drops over time, from the run's facts.
    dropped_paths = [f for f in run.facts if f["kind"] == "packet_path" and f["dropped"]]
    assert dropped_paths and charts.count("path") >= 1 and charts.count("rate") >= 1
    assert dom.count('class="hopbox drop"') >= 1
    assert len(re.findall(r"<rect ", dom)) >= len(run.shown_findings)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert screenshot(page, tmp_path, ARTIFACTS / "report-desktop.png", 1200)[0] == 1200
    assert screenshot(page, tmp_path, ARTIFACTS / "report-phone.png", 390)[0] == 390
    print(f"screenshots: {ARTIFACTS}")


def test_hostile_strings_neither_run_nor_fetch(tmp_path):
    evil = make_run(
        trace=TraceInfo(path=f"/cases/{EVIL}.etl"),
        findings=[Finding(rule_id="r", title=EVIL, severity="high", confidence="high", summary=EVIL,
                          evidence=[{"component_name": EVIL, "count": 3}], remediation=f"{EVIL} `{EVIL}`",
                          references=[EVIL, "javascript:alert(1)"], fact_ids=["f"])],
        case_id=EVIL,
    )
    page = tmp_path / "evil.html"
    page.write_text(render_html(evil), encoding="utf-8")
    dom, console, requests = load(page, tmp_path)
    assert console == [] and requests == []
    assert "<img" not in dom and dom.count("<script") == 1


NASTY = ("\x1b]0;owned\x07\x1b[2J[x](http://evil.example/)![](http://evil.example/t.png)\x00\u202eevil\ud800"
         "=HYPERLINK(\"http://evil.example\")")


def test_hostile_strings_of_every_kind_in_every_output(tmp_path):
    """Markup, Markdown links and images, CSV formulas, ANSI/OSC escapes, NUL, RTL override, a lone surrogate and
    a 1 MB name, in component, switch, host-info and file names: written to disk in every format, opened in the
    browser, and scanned as bytes."""
    from diag.report.render import render

    huge = "N" * (1 << 20)
    run = make_run(
        trace=TraceInfo(path=f"/cases/{NASTY}.etl"),
        host_info=[{"path": f"/cases/{NASTY}.txt", "warnings": [NASTY]}],
        findings=[Finding(rule_id="r", title=NASTY, severity="high", confidence="high", summary=NASTY + huge,
                          evidence=[{"component_name": NASTY + huge, "vswitch": NASTY, "count": 3}],
                          remediation=NASTY, references=[NASTY], fact_ids=["f"])],
    )
    written = render(run, "all", tmp_path / "out")
    page = written["html"][0]
    dom, console, requests = load(page, tmp_path)
    assert console == [] and requests == []
    assert dom.count("<script") == 1 and "<img" not in dom
    for files in written.values():
        for path in files:
            raw = path.read_bytes()
            raw.decode("utf-8")  # valid UTF-8: the surrogate is written as its escape
            assert b"\x1b" not in raw and b"\x00" not in raw, path.name
    md = written["md"][0].read_text()
    trace_text = [line for line in md.splitlines() if not line.startswith("**Remediation:**")]  # a rule's links stay
    assert not [line for line in trace_text if re.search(r"(?<!\\)\]\(http", line)]
    assert not re.search(r"(?<!\\)!\[", md)  # no image anywhere, not even from a rule
    for csv_file in written["csv"]:
        assert ",=HYPERLINK" not in csv_file.read_text() and "\n=HYPERLINK" not in csv_file.read_text()
