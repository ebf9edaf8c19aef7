"""The plain-text report: for tickets and mail that show no Markdown. Fits 78 columns, adds no markup, aligns
its tables, and loses no evidence field."""

from __future__ import annotations

import re

from diag.facts import Finding
from diag.report import RunReport, TraceInfo
from diag.report.text import WIDTH, evidence_text, render_text


def rows(n: int) -> list[dict]:
    return [{"component_id": 100 + i, "component_name": f"Hyper-V Virtual Switch Extension Adapter {i}",
             "direction": "Rx" if i % 2 else "Tx", "reason_code": 16, "reason_name": "Spoofed MAC address is not allowed",
             "count": 7 * (i + 1) ** 3, "first_seen": f"2024-05-14T10:00:0{i}.5Z"} for i in range(n)]


def report(findings, **kw) -> RunReport:
    return RunReport(trace=TraceInfo(path="/cases/host7.etl", size=4096, records_read=10, records_decoded=10),
                     findings=findings, rules_loaded=["a"], rules_run=["a"], **kw)


URL = "https://learn.microsoft.com/windows-server/networking/technologies/pktmon/pktmon-and-some-more-of-the-path"


def sample() -> RunReport:
    return report([
        Finding(rule_id="mac", title="Packets dropped for their source MAC address", severity="high",
                confidence="high", summary="word " * 60, evidence=rows(6),
                remediation="Run **this**: `Set-VMNetworkAdapter -MacAddressSpoofing On`, see [docs](https://x.example/d).",
                references=[URL], fact_ids=["f:1"], impact="Guests lose traffic."),
        Finding(rule_id="one", title="One row", severity="low", confidence="low", summary="s",
                evidence=rows(1), fact_ids=["f:2"]),
    ], case_id="CASE-7")


def test_lines_fit_78_columns_unless_one_word_cannot():
    text = render_text(sample())
    for line in text.splitlines():
        if len(line) > WIDTH:
            head, _, last = line.rstrip().rpartition(" ")
            assert len(head) < WIDTH and len(last) > WIDTH - len(head) - 1, line  # only an unbreakable word
    assert URL in text  # kept whole, so that it can be copied


def test_no_markup_is_added():
    text = render_text(sample())
    assert "**" not in text and "`" not in text and "|---" not in text and "](" not in text
    assert "Run this: Set-VMNetworkAdapter -MacAddressSpoofing On, see docs (https://x.example/d)." in \
        " ".join(text.split())
    assert text.startswith("wnvdiag report: /cases/host7.etl\nCase: CASE-7\n")


def test_a_table_is_aligned_and_every_field_of_every_row_is_somewhere():
    data = rows(6)
    text = evidence_text(data)
    lines = text.splitlines()
    rule = lines[1]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    heads = [lines[0][a:b].strip() for a, b in spans]
    assert heads[0] == "#" and "component id" in heads
    id_col = spans[heads.index("component id")]
    for i, row in enumerate(data):
        cells = lines[2 + i]
        assert cells[id_col[0]:id_col[1]] == str(row["component_id"]).rjust(id_col[1] - id_col[0])  # numbers right
    assert max(len(line) for line in lines[: 2 + len(data)]) <= WIDTH
    listed = {int(m.group(1)): m.group(2) for m in re.finditer(r"#(\d+): (.*?)(?=\n\s*#\d+: |\Z)", text, flags=re.S)}
    for i, row in enumerate(data, 1):
        table_line = lines[1 + i]
        rest = " ".join(listed.get(i, "").split())
        for key, val in row.items():
            shown = str(val).replace("T", " ", 1) if key == "first_seen" else str(val)
            assert shown in table_line or shown in rest, (i, key)


def test_one_row_is_a_field_list():
    text = evidence_text(rows(1))
    assert text.splitlines()[0].split() == ["component", "id:", "100"]
    assert "reason name:" in text and "Spoofed MAC address is not allowed" in text


def test_the_verdict_is_the_diagnosis():
    text = render_text(sample())
    verdict = text[text.index("VERDICT\n") + 8: text.index("\n\n", text.index("VERDICT"))]
    said = " ".join(verdict.split())
    assert said.startswith("Packets dropped for their source MAC address at Hyper-V Virtual Switch Extension "
                           "Adapter 0 (component 100); one row at Hyper-V Virtual Switch Extension Adapter 0 "
                           "(component 100).")
    assert "2 finding(s) at or above info: 1 high, 1 low." in said
