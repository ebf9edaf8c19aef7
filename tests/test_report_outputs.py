"""HTML, JSON and CSV reports, case stamping and the example reports, through the real templates."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from diag.errors import BadInputError
from diag.facts import Finding, RuleError
from diag.report import RunReport, TraceInfo, parse_formats, render
from diag.report.csvout import render_evidence_csv
from diag.report.html import render_html, safe_markdown
from diag.report.jsonout import ReportDocument, json_schema
from diag.resources import data_dir
from diag.store import finding_id

ROOT = Path(__file__).resolve().parents[1]
EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def rows(n: int, name: str = "vNIC") -> list[dict]:
    return [
        {"component_id": i, "component_name": f"{name} {i}", "direction": "Rx", "reason_name": "Filtered VLAN",
         "count": 10 * (i + 1), "first_seen": f"2024-05-14T10:00:0{i % 10}Z", "last_seen": f"2024-05-14T10:00:0{i % 10}.5Z"}
        for i in range(n)
    ]


def make_run(**kw) -> RunReport:
    findings = kw.pop("findings", None) or [
        Finding(rule_id="vlan-drops", title="Packets dropped for their VLAN", severity="high", confidence="high",
                summary="30 packets", evidence=rows(3), remediation="Run `Get-VMNetworkAdapterVlan`.\n\nThen **fix** it.",
                references=["https://learn.microsoft.com/x"], fact_ids=["f:1"], impact="Guests lose traffic."),
        Finding(rule_id="mtu", title="MTU too small", severity="low", confidence="medium", summary="2 packets",
                evidence=[{"component_name": "ext", "count": 2}], fact_ids=["f:2"]),
    ]
    base = dict(
        run_id="run-x", trace=TraceInfo(path="/cases/host7.etl", size=4096, records_read=100, records_decoded=90,
                                        start_time="2024-05-14T10:00:00Z", end_time="2024-05-14T10:00:10Z"),
        findings=findings, rules_loaded=["vlan-drops", "mtu"], rules_run=["vlan-drops", "mtu"], facts_asserted=5,
    )
    base.update(kw)
    return RunReport(**base)


def test_html_is_one_self_contained_file_with_summary_first(tmp_path):
    html = render_html(make_run(case_id="CASE-42"))
    found = tags(html)
    assert not [t for t, a in found if t in ("link", "img", "iframe", "object", "embed")]
    assert not [a for _, a in found if "src" in a]  # nothing loaded, inline or not
    assert [t for t, _ in found].count("script") == 1 and [t for t, _ in found].count("style") == 1
    assert "default-src 'none'" in html
    hrefs = [a["href"] for t, a in found if t == "a"]
    assert all(h.startswith("#") or h == "https://learn.microsoft.com/x" for h in hrefs)
    # Summary (verdict, top findings, what could not be answered) comes before the findings.
    order = [html.index(s) for s in ('id="summary"', 'id="verdict"', 'id="top-findings"', "could not answer",
                                     'id="findings"', 'id="appendix"')]
    assert order == sorted(order)
    assert "10 record(s) could not be decoded" not in html  # records_undecoded is 0 here
    charts = re.findall(r'<svg class="chart" data-chart="(\w+)"', html)
    # Bars for the finding with 3 counted rows; none for the single row of the second (the table says it).
    assert charts == ["severity", "counts", "timeline"]
    assert "Case CASE-42" in html
    assert "<code>Get-VMNetworkAdapterVlan</code>" in html and "<strong>fix</strong>" in html


def test_html_escapes_every_trace_and_rule_string():
    evil = make_run(
        trace=TraceInfo(path=f"/cases/{EVIL}.etl", header={"logger_name": EVIL}),
        findings=[Finding(rule_id="r", title=EVIL, severity="high", confidence="high", summary=EVIL,
                          evidence=[{"component_name": EVIL, EVIL: 1, "count": 3}], remediation=EVIL,
                          references=["javascript:alert(1)", EVIL], fact_ids=["f"], impact=EVIL, tags=[EVIL])],
        rule_errors=[RuleError(rule_id=EVIL, file=EVIL, message=EVIL)], engine_errors=[EVIL], case_id=EVIL,
    )
    html = render_html(evil)
    found = tags(html)
    assert [t for t, _ in found].count("script") == 1  # only ours
    assert not [t for t, _ in found if t == "img"]
    assert not [a for _, a in found if any(k.startswith("on") for k in a)]
    assert not [a for t, a in found if t == "a" and "javascript" in a.get("href", "")]
    assert html.count("&lt;script&gt;") >= 10


def test_safe_markdown_keeps_no_raw_html():
    out = str(safe_markdown("a <b>x</b> `<i>` [t](https://e.x/?a=1&b=2) [j](javascript:x)"))
    assert "<b>" not in out and "<i>" not in out and "&lt;i&gt;" in out
    assert '<a href="https://e.x/?a=1&amp;b=2"' in out and "javascript:x" in out and 'href="javascript' not in out


def test_json_follows_the_published_schema(tmp_path):
    published = json.loads((data_dir("reports") / "schemas" / "report.schema.json").read_text())
    assert published == json.loads(json.dumps(json_schema())), \
        "regenerate: python -m diag.report.jsonout report > reports/schemas/report.schema.json"
    check_schema = json.loads((data_dir("reports") / "schemas" / "check.schema.json").read_text())
    assert check_schema == json.loads(json.dumps(json_schema("check"))), \
        "regenerate: python -m diag.report.jsonout check > reports/schemas/check.schema.json"
    run = make_run(case_id="C-7")
    files = render(run, "json", tmp_path)
    doc = json.loads(files["json"][0].read_text())
    assert set(published["required"]) <= set(doc) and set(doc) <= set(published["properties"])
    assert doc["schema"] == "wnvdiag.report/1" and doc["case_id"] == "C-7" and doc["verdict"] == "findings"
    assert [f["id"] for f in doc["findings"]] == [finding_id("run-x", "vlan-drops", ["f:1"]),
                                                  finding_id("run-x", "mtu", ["f:2"])]
    assert [f["shown"] for f in doc["findings"]] == [True, True]
    back = ReportDocument.model_validate({("schema_" if k == "schema" else k): v for k, v in doc.items()})
    assert back.run == run


def test_csv_has_every_finding_and_evidence_row(tmp_path):
    run = make_run(case_id="C-7")
    files = render(run, "csv", tmp_path)
    findings = list(csv.DictReader(io.StringIO(files["csv"][0].read_text(encoding="utf-8"))))
    evidence = list(csv.DictReader(io.StringIO(files["csv"][1].read_text(encoding="utf-8"))))
    assert [f["rule_id"] for f in findings] == ["vlan-drops", "mtu"]
    assert [f["evidence_rows"] for f in findings] == ["3", "1"]
    assert len(evidence) == 3 + 1
    assert [e["count"] for e in evidence] == ["10", "20", "30", "2"]
    assert {e["case_id"] for e in evidence} == {"C-7"}
    assert evidence[0]["component_name"] == "vNIC 0" and evidence[3]["direction"] == ""


def test_csv_cells_cannot_be_formulas():
    run = make_run(findings=[Finding(rule_id="r", title="t", severity="low", confidence="low", summary="s",
                                     evidence=[{"component_name": "=HYPERLINK(\"x\")", "count": -3}], fact_ids=[])])
    (row,) = list(csv.DictReader(io.StringIO(render_evidence_csv(run))))
    assert row["component_name"] == "'=HYPERLINK(\"x\")" and row["count"] == "-3"


def test_case_id_stamps_every_output(tmp_path):
    files = render(make_run(), "all", tmp_path, case_id="SR-2611-77")
    assert sorted(p.name for ps in files.values() for p in ps) == sorted(
        ["wnvdiag-report.html", "wnvdiag-report.md", "wnvdiag-report.txt", "wnvdiag-report.json", "wnvdiag-findings.csv",
         "wnvdiag-evidence.csv"])
    for paths in files.values():
        for p in paths:
            assert "SR-2611-77" in p.read_text(encoding="utf-8"), p.name


def test_formats_are_checked():
    assert parse_formats("html,md") == ["html", "md"]
    assert parse_formats("all") == ["html", "md", "txt", "json", "csv"]
    assert parse_formats("text,markdown") == ["txt", "md"]
    assert parse_formats(["md", "markdown", "json"]) == ["md", "json"]
    with pytest.raises(BadInputError, match="unknown report format 'pdf'"):
        parse_formats("html,pdf")


def test_an_unwritable_report_directory_is_bad_input(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInputError, match="not a directory"):
        render(make_run(), "md", tmp_path / "file")


def test_failed_and_empty_runs_render_in_every_format(tmp_path):
    failed = make_run(findings=[], failure="worker crashed", rules_run=[])
    render(failed, "all", tmp_path)
    html = (tmp_path / "wnvdiag-report.html").read_text()
    assert "The analysis failed" in html and "worker crashed" in html
    assert json.loads((tmp_path / "wnvdiag-report.json").read_text())["verdict"] == "failed"


def test_example_reports_are_current(tmp_path):
    from diag.report.examples import write_examples

    write_examples(tmp_path)
    shipped = ROOT / "reports" / "examples"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in shipped.iterdir())
    for name in names:
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes(), \
            f"reports/examples/{name} is stale: python -m diag.report.examples"
    # The example shows what the demo trace is known to contain (README: VLAN, MAC spoofing, closed port).
    md = (shipped / "wnvdiag-report.md").read_text()
    assert re.search(r"VLAN", md) and re.search(r"MAC", md)
