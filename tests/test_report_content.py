"""What every report format says the same way: the verdict's diagnosis, findings folded under the ones they
restate, readable column headings, and the chart helpers' labels, units and numbers."""

from __future__ import annotations

import re

from diag.facts import Finding
from diag.report import RunReport, TraceInfo
from diag.report.content import arrange, column_labels, diagnosis, number, rate_caption, where
from diag.report.html import count_chart, path_chart, rate_chart


def drop_row(comp: int, reason: int, name: str = "", **extra) -> dict:
    return {"component_id": comp, "component_name": name or f"vmNIC {comp}", "reason_code": reason, "count": 3, **extra}


def finding(rule: str, severity: str, rows: list[dict], *, tags=(), title: str = "", fact_ids=("f:1",)) -> Finding:
    return Finding(rule_id=rule, title=title or f"Finding {rule}", severity=severity, confidence="medium",
                   summary=f"summary {rule}", evidence=rows, tags=list(tags), fact_ids=list(fact_ids))


def run(*findings: Finding, facts=(), min_severity="info") -> RunReport:
    return RunReport(trace=TraceInfo(path="t.etl"), findings=list(findings), facts=list(facts),
                     rules_loaded=["x"], rules_run=["x"], min_severity=min_severity)


def rules_of(findings) -> list[str]:
    return [f.rule_id for f in findings]


def test_an_overview_whose_drops_specific_findings_tell_is_folded_under_them():
    mac = finding("mac", "high", [drop_row(2, 16)])
    vlan = finding("vlan", "high", [drop_row(3, 9)])
    every = finding("all-drops", "medium", [drop_row(2, 16), drop_row(3, 9)], tags=["overview"])
    arranged = arrange(run(every, vlan, mac))
    assert rules_of(arranged.primary) == ["vlan", "mac"]  # shown order: both high, as given
    assert [(r.finding.rule_id, r.under) for r in arranged.restated] == [("all-drops", (1, 2))]


def test_an_overview_that_tells_one_more_drop_stays():
    mac = finding("mac", "high", [drop_row(2, 16)])
    every = finding("all-drops", "medium", [drop_row(2, 16), drop_row(5, 1204)], tags=["overview"])
    arranged = arrange(run(mac, every))
    assert rules_of(arranged.primary) == ["mac", "all-drops"] and arranged.restated == []


def test_an_overview_more_severe_than_what_restates_it_stays():
    low = finding("mac", "low", [drop_row(2, 16)])
    rate = finding("rate", "high", [drop_row(2, 16)], tags=["overview"])
    assert rules_of(arrange(run(low, rate)).primary) == ["rate", "mac"]


def test_specific_and_inconclusive_findings_are_never_folded():
    a = finding("mac", "high", [drop_row(2, 16)])
    b = finding("mac-again", "high", [drop_row(2, 16)])
    gate = finding("gate", "info", [drop_row(2, 16)], tags=["overview", "inconclusive"])
    arranged = arrange(run(a, b, gate))
    assert sorted(rules_of(arranged.primary)) == ["gate", "mac", "mac-again"] and arranged.restated == []


def test_an_overview_folds_under_a_narrower_overview_and_numbers_point_at_shown_findings():
    mac = finding("mac", "high", [drop_row(2, 16)])
    tcpip = finding("tcpip", "low", [drop_row(5, 1204)], tags=["overview"])
    every = finding("all-drops", "medium", [drop_row(2, 16), drop_row(5, 1204)], tags=["overview"])
    same = finding("tcpip-twice", "low", [drop_row(5, 1204)], tags=["overview"])
    arranged = arrange(run(mac, every, tcpip, same))
    assert rules_of(arranged.primary) == ["mac", "tcpip"]
    assert {r.finding.rule_id: r.under for r in arranged.restated} == {"all-drops": (1, 2), "tcpip-twice": (2,)}


def test_drops_are_read_from_join_aliases_and_from_cited_paths():
    mac = finding("mac", "high", [drop_row(2, 16)])
    rate = finding("rate", "low", [{"d.component_id": 2, "d.reason_code": 16, "r.peak_per_second": 3.0}],
                   tags=["overview"])
    path = {"id": "packet_path:0", "kind": "packet_path", "dropped": True, "last_component_id": 2,
            "drop_reason_code": 16}
    passed = {"id": "packet_path:1", "kind": "packet_path", "dropped": False, "last_component_id": 7}
    paths = finding("paths", "low", [{"drop_component": "vmNIC 2", "path": "a > b"}], tags=["overview"],
                    fact_ids=["packet_path:0"])
    untold = finding("paths-2", "low", [{"path": "a > b"}], tags=["overview"], fact_ids=["packet_path:1"])
    arranged = arrange(run(mac, rate, paths, untold, facts=[path, passed]))
    assert rules_of(arranged.primary) == ["mac", "paths-2"]  # a path that was not dropped tells no drop
    assert sorted(r.finding.rule_id for r in arranged.restated) == ["paths", "rate"]


def test_the_diagnosis_names_the_problems_and_where_they_are():
    findings = [
        finding("mac", "high", [drop_row(2, 16, "Hyper-V Virtual Switch Extension Adapter")],
                title="Packets dropped for their source MAC address"),
        finding("vlan", "high", [drop_row(3, 9, "Container NIC c337484d")], title="Packets dropped for their VLAN"),
        finding("team", "medium", [{"member_friendly_name": "NIC2", "switch_name": "ext"}], title="Team member down"),
        finding("tcp", "low", [{"compartment_id": 4}], title="TCP resets on a vPort"),
        finding("all", "low", [drop_row(2, 16), drop_row(3, 9)], tags=["overview"], title="Packets dropped"),
    ]
    said = diagnosis(run(*findings))
    assert said == ("Packets dropped for their source MAC address at Hyper-V Virtual Switch Extension Adapter "
                    "(component 2); packets dropped for their VLAN at Container NIC c337484d (component 3); "
                    "team member down at NIC2; and 1 more.")
    assert diagnosis(run(*findings[3:4])) == "TCP resets on a vPort at compartment 4."  # an acronym keeps its case
    assert where(finding("x", "low", [{"d.component_id": 9}])) == "component 9"
    assert where(finding("x", "low", [{"note": "nothing about a place"}])) is None


def test_the_verdict_is_the_diagnosis_in_html_and_markdown():
    from diag.report.html import render_html
    from diag.report.markdown import render_markdown

    report = run(finding("mac", "high", [drop_row(2, 16, "vSwitch port")], title="Packets dropped for their MAC"),
                 finding("all", "low", [drop_row(2, 16)], tags=["overview"], title="Packets dropped"))
    expected = "Packets dropped for their MAC at vSwitch port (component 2)."
    html = render_html(report)
    assert re.search(r'<p class="diagnosis">([^<]*)</p>', html).group(1) == expected
    assert "restates <a href=\"#finding-1\">#1</a>" in html
    md = render_markdown(report)
    assert f"**Verdict: {expected}** 1 finding(s) at or above info: 1 high. 1 more restate their drops." in md
    assert "- Packets dropped (low, rule `all`): restates #1" in md
    assert "### 2." not in md  # the restated finding is listed, not repeated in full


def test_column_headings_are_words_and_keep_aliases_only_where_needed():
    assert column_labels(["component_id", "d.reason_code", "r.count", "d.count"]) == \
        ["component id", "reason code", "r.count", "d.count"]


def test_chart_labels_of_different_rows_never_read_the_same():
    twin = "Hyper-V Virtual Switch Extension Adapter for the long switch name "
    rows = [{"component_name": twin + "A", "component_id": 7, "count": 5},
            {"component_name": twin + "B", "component_id": 8, "count": 4},
            {"component_name": "same", "direction": "Rx", "count": 3},
            {"component_name": "same", "direction": "Rx", "count": 2}]
    svg = str(count_chart(rows))
    firsts = re.findall(r'class="lbl"><title>[^<]*</title>([^<]*)</text>', svg)
    assert len(firsts) == 4 and len(set(firsts)) == 4
    assert firsts[0].endswith("#7") and firsts[1].endswith("#8")


def test_a_single_counted_row_gets_no_bar_chart():
    assert str(count_chart([{"component_name": "a", "count": 4}])) == ""


def test_more_rows_than_a_chart_draws_are_said():
    rows = [{"component_name": f"n{i}", "count": i + 1} for i in range(25)]
    assert "the 20 largest of 25 rows" in str(count_chart(rows))


def test_numbers_are_written_out():
    assert [number(n) for n in (123456789, 2.0, 2.5, 0.1 * 3, 1e-3)] == ["123456789", "2", "2.5", "0.3", "0.001"]


def test_the_rate_chart_and_its_caption_speak_of_the_same_unit():
    rate = {"series": [10, 630, 20], "bucket_seconds": 10.0}
    svg = str(rate_chart(rate))
    assert "drops per 10 s" in svg
    assert re.search(r'text-anchor="end">630</text>', svg)  # the axis top is the largest bucket's count
    assert rate_caption(rate) == ", at most 630 in one 10 s bucket (63/s)"


def test_the_drop_reason_of_a_path_is_never_cut():
    reason = "Spoofed MAC address is not allowed because the port's policy says so, in full"
    path = {"pkt_group_id": 1, "pkt_number": 1, "dropped": True, "drop_reason_name": reason, "drop_reason_code": 16,
            "hops": [{"component_id": 1, "component": "NIC", "edge": 1, "direction": "Rx"}]}
    svg = str(path_chart(path))
    assert f"✖ dropped: {reason} (16)" in svg.replace("&#39;", "'")
    width = int(re.search(r'viewBox="0 0 (\d+) ', svg).group(1))
    assert width >= 7 * len(f"✖ dropped: {reason} (16)")  # room for the text at 12 px (the browser test measures it)
