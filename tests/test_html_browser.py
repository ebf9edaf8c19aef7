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
    # Bars wherever a finding has two or more evidence rows with a count (plain or under a join alias).
    with_counts = sum(1 for f in run.shown_findings
                      if sum(1 for row in f.evidence if any(k.rsplit(".", 1)[-1] == "count" for k in row)) >= 2)
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


PROBE = Path(__file__).parent / "data" / "layout-probe.js"


def measure(html: str, work: Path, width: int) -> dict:
    """Lay ``html`` out at ``width`` CSS px in Chromium and measure it (``tests/data/layout-probe.js``).

    The page is opened in an iframe of that width (headless Chromium keeps its window at least 500 px wide),
    with the probe appended and the report's CSP removed so that the probe may run; the page under test is
    otherwise the report's own bytes."""
    probed = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html, count=1)
    assert probed != html
    probed = probed.replace("</body>", f"<script>{PROBE.read_text()}</script></body>")
    (work / "probed.html").write_text(probed, encoding="utf-8")
    frame = work / f"frame-{width}.html"
    frame.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe src="probed.html" style="border:0;width:{width}px;height:3000px"></iframe>'
        '<script>window.addEventListener("message", function (e) { var p = document.createElement("pre");'
        ' p.id = "measure"; p.textContent = e.data; document.body.appendChild(p); });</script></body></html>'
    )
    proc = subprocess.run(
        [BROWSER, *FLAGS, f"--user-data-dir={work / 'profile'}", "--virtual-time-budget=10000",
         "--window-size=1400,1000", "--dump-dom", frame.resolve().as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    found = re.search(r'<pre id="measure">(.*?)</pre>', proc.stdout, flags=re.S)
    assert found, f"the probe did not report: {proc.stderr[-1500:]}"
    import html as html_module

    return json.loads(html_module.unescape(found.group(1)))


def stress_run():
    """What makes pages overflow: a 90-character name with no space, a long reference URL, 30 evidence rows
    with 12 columns (dotted join keys among them), timestamps, big numbers, and two components whose names
    differ only after 50 characters."""
    from diag.facts import Finding

    long_name = "vmNIC-" + "0123456789abcdef" * 5 + "-tail"
    twin = "Hyper-V Virtual Switch Extension Adapter for the very long switch name "
    rows = [{"d.component_id": 1000 + i, "d.component_name": (twin + ("A" if i % 2 else "B")) if i < 4 else long_name,
             "d.direction": "Rx" if i % 2 else "Tx", "d.reason_code": 16, "d.reason_name": "Spoofed MAC address is not allowed",
             "d.count": 123456789 + i, "d.distinct_frames": 98765432, "d.first_seen": "2024-05-14T10:00:02.755375Z",
             "d.last_seen": "2024-05-14T10:00:03.708219Z", "r.peak_per_second": 12345.678, "cause": "x " * 40,
             "mac": "00-15-5D-AA-BB-CC"} for i in range(30)]
    url = "https://learn.microsoft.com/windows-server/networking/technologies/" + "very-long-path-segment/" * 6 + "x"
    return make_run(findings=[
        Finding(rule_id="stress", title="Packets dropped for their source MAC address at " + long_name,
                severity="high", confidence="high", summary="s " * 200 + long_name, evidence=rows,
                remediation=f"See [the docs]({url}) and run `Set-VMNetworkAdapter -VMName {long_name}`.",
                references=[url, "KB5034441"], fact_ids=["f:1"], impact="i " * 50),
    ], trace=TraceInfo(path=f"/cases/{long_name}/{long_name}.etl", start_time="2024-05-14T10:00:00Z",
                       end_time="2024-05-14T10:00:10Z", header={"log_file_name": "C:\\" + long_name + ".etl"}))


@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("which", ["example", "stress"])
def test_no_horizontal_overflow_and_charts_readable(tmp_path, width, which):
    """Phone and desktop: the page never scrolls sideways (wide tables and charts scroll inside their own box),
    chart text is drawn at 11 px or more and never cut off at the chart's edge, and the print style sheet
    appends no address to a link whose text is that address, and prints every hidden evidence row."""
    from diag.report.examples import example_run

    run = example_run() if which == "example" else stress_run()
    m = measure(render_html(run), tmp_path, width)
    assert m["viewport"] <= width and m["viewport"] >= width - 20  # the iframe's width, less a scrollbar
    assert m["scroll_width"] <= m["viewport"], m["overflowing"]
    assert m["overflowing"] == []
    assert "severity" in m["charts"] and ("counts" in m["charts"] or "path" in m["charts"])
    assert m["min_chart_text_px"] >= 11
    assert m["clipped_chart_text"] == []
    assert m["printed_twice"] == []
    assert m["extra_rows_in_print"] == "table-row"


def test_the_harness_sees_overflow_and_small_chart_text(tmp_path):
    """The measurement itself: a page that overflows and a chart scaled down to a third are reported."""
    page = ('<html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'"></head><body>'
            '<p style="width:900px">wide</p><svg class="chart" data-chart="t" viewBox="0 0 600 20" width="100%">'
            '<text x="550" y="12" style="font-size:12px">cut off here</text></svg></body></html>')
    m = measure(page, tmp_path, 390)
    assert m["scroll_width"] > m["viewport"] and any(o.startswith("p ") for o in m["overflowing"])
    assert m["min_chart_text_px"] < 11 and m["clipped_chart_text"] == ["cut off here"]


def pdf_pages(page: Path, work: Path) -> int:
    pdf = work / f"{page.stem}.pdf"
    subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={work / 'profile'}", "--no-pdf-header-footer",
                    f"--print-to-pdf={pdf}", page.resolve().as_uri()], capture_output=True, timeout=90, check=True)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", data))


def test_the_printed_report_is_compact(tmp_path):
    """On paper: a page for the summary, at most one per finding shown in full, and the appendix; findings that
    only restate others are left out (named in the summary). The demo run printed 17 pages before."""
    from diag.report.content import arrange
    from diag.report.examples import example_run

    run = example_run()
    page = tmp_path / "report.html"
    page.write_text(render_html(run), encoding="utf-8")
    primary = arrange(run).primary
    assert 2 <= pdf_pages(page, tmp_path) <= 1 + len(primary) + 2
    # 30 evidence rows, 20 of them hidden on screen, are printed: more pages than with the first 10 only.
    few = stress_run()
    few = few.model_copy(update={"findings": [few.findings[0].model_copy(update={"evidence": few.findings[0].evidence[:10]})]})
    short, full = tmp_path / "short.html", tmp_path / "full.html"
    short.write_text(render_html(few), encoding="utf-8")
    full.write_text(render_html(stress_run()), encoding="utf-8")
    assert pdf_pages(full, tmp_path) > pdf_pages(short, tmp_path)


# GitHub's rendering of Markdown tables (github-markdown-css): 16 px text, cells padded 6 px 13 px, and a table
# as wide as its content up to the column, then scrolling inside itself. 780 px is an issue comment's column.
GITHUB_CSS = """body { font: 16px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; margin: 0;
  word-wrap: break-word; } main { max-width: 780px; padding: 0; }
table { display: block; width: max-content; max-width: 100%; overflow: auto; border-spacing: 0; border-collapse: collapse; }
th, td { padding: 6px 13px; border: 1px solid #d0d7de; } code { font-size: 85%; }"""


@pytest.mark.parametrize("which", ["example", "stress"])
def test_markdown_tables_fit_a_ticket_column(tmp_path, which):
    """The Markdown report rendered as GitHub renders it (markdown-it, CommonMark with tables) in a 780 px column:
    no table needs to scroll, and nothing pokes out of the column. The stress run's 30 rows x 12 columns keep
    their short fields in the table and list the long ones by row number."""
    from markdown_it import MarkdownIt

    from diag.report.examples import example_run
    from diag.report.markdown import render_markdown

    run = example_run() if which == "example" else stress_run()
    if which == "stress":  # a path and a header value made of one 90-character word are not the layout's to fit
        run = run.model_copy(update={"trace": TraceInfo(path="/cases/host7.etl")})
    md = render_markdown(run)
    body = MarkdownIt("commonmark").enable("table").render(md)
    page = (f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
            f"<style>{GITHUB_CSS}</style></head><body><main>{body}</main></body></html>")
    m = measure(page, tmp_path, 800)
    assert body.count("<table") >= (3 if which == "example" else 4)
    assert m["scrolling_tables"] == []
    assert m["overflowing"] == []
