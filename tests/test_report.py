"""Markdown rendering through the real Jinja template."""

from __future__ import annotations

import re

from diag.engine import run_rules
from diag.facts import Finding, PacketDropGroup, RuleError, TraceQuality
from diag.report import RunReport, TraceInfo, render_markdown


def finding(title: str, severity: str, rows=None, **kw) -> Finding:
    return Finding(
        rule_id=kw.pop("rule_id", title.lower().replace(" ", "-")),
        title=title,
        severity=severity,
        confidence=kw.pop("confidence", "medium"),
        summary=kw.pop("summary", f"summary of {title}"),
        evidence=rows if rows is not None else [{"component": "nic", "count": 1}],
        remediation=kw.pop("remediation", f"fix {title}"),
        references=kw.pop("references", ["https://example.invalid/doc"]),
        fact_ids=kw.pop("fact_ids", ["f:1"]),
    )


def trace(**kw) -> TraceInfo:
    base = dict(path="/captures/host7.etl", size=2048, os_build=20348, records_read=5321, records_decoded=5300)
    base.update(kw)
    return TraceInfo(**base)


def run(**kw) -> RunReport:
    base = dict(trace=trace(), rules_loaded=["a", "b"], rules_run=["a", "b"], facts_asserted=12)
    base.update(kw)
    return RunReport(**base)


def section(text: str, heading: str) -> str:
    """The text of a `## heading` section, up to the next `## `."""
    start = text.index(f"## {heading}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def verdict_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("**Verdict"))


def test_verdict_counts_findings_by_severity_most_severe_first():
    findings = [
        finding("Medium one", "medium"),
        finding("High one", "high"),
        finding("Low one", "low"),
        finding("High two", "high"),
    ]
    text = render_markdown(run(findings=findings, min_severity="low"))
    # The three most important problems and where each is (every evidence row here is at "nic"), then the counts.
    assert verdict_line(text) == ("**Verdict: High one at nic; high two at nic; medium one at nic; and 1 more.** "
                                  "4 finding(s) at or above low: 2 high, 1 medium, 1 low.")
    titles = re.findall(r"^### \d+\. (.+)$", text, flags=re.M)
    assert titles == ["High one", "High two", "Medium one", "Low one"]
    assert text.index("**Verdict") < text.index("## Findings") < text.index("## Appendix A")


def test_each_finding_has_its_parts():
    f = finding(
        "Packets dropped",
        "medium",
        rows=[{"component_id": 4, "reason": "16 Spoofed MAC", "count": 120}, {"component_id": 9, "count": 3}],
        confidence="high",
        summary="123 packets dropped",
        remediation="Run `pktmon counters --drop-reason`.",
        references=["https://learn.microsoft.com/pktmon"],
    )
    text = section(render_markdown(run(findings=[f])), "Findings")
    assert "Severity **medium**, confidence **high**" in text
    assert "123 packets dropped" in text
    assert "| component id | reason | count |" in text
    assert "| 4 | 16 Spoofed MAC | 120 |" in text
    assert "| 9 | – | 3 |" in text  # a missing value
    assert "**Remediation:** Run `pktmon counters --drop-reason`." in text
    assert "- https://learn.microsoft.com/pktmon" in text


def test_no_findings_says_what_was_looked_at():
    text = render_markdown(
        run(
            min_severity="medium",
            findings=[finding("Minor", "low")],
            quality=TraceQuality(events_lost=7, buffers_lost=2, records_undecoded=21, buffers_skipped=1),
        )
    )
    assert verdict_line(text) == "**Verdict: no findings at or above medium.**"
    assert "1 finding(s) below medium are not shown." in text
    assert "5321 read, 5300 decoded, 21 not decoded" in text
    assert "7 event(s) lost, 2 buffer(s) lost, 1 buffer(s) skipped" in text
    assert "2 of 2 rule(s) ran to completion over 12 fact(s)" in text
    assert "part of the trace is missing" in text
    assert "## Findings" not in text


def test_an_empty_trace_is_flagged():
    text = render_markdown(run(trace=trace(records_read=0, records_decoded=0), facts_asserted=0))
    assert "no readable records" in text


def test_rule_errors_make_the_verdict_incomplete():
    errors = [RuleError(rule_id="bad", file="/home/u/rules/bad.yaml", message="when.all[0]: unknown fact kind")]
    text = render_markdown(run(rule_errors=errors, rules_loaded=["a"], rules_run=["a"]))
    assert verdict_line(text).startswith("**Verdict: no findings at or above info, but the analysis is incomplete.**")
    errors_section = section(text, "Rule and engine errors")
    assert "| bad | /home/u/rules/bad.yaml | when.all[0]: unknown fact kind |" in errors_section


def test_no_rules_loaded_is_not_a_clean_result():
    text = render_markdown(run(rules_loaded=[], rules_run=[]))
    assert "analysis is incomplete" in verdict_line(text)
    assert "No rule was loaded" in text


def test_a_failed_analysis_is_never_no_findings():
    text = render_markdown(run(failure="the rules worker was killed by SIGSEGV; its findings are unknown"))
    assert verdict_line(text).startswith("**Verdict: the analysis failed.**")
    assert "SIGSEGV" in text
    assert "no findings" not in text.lower()


def test_trace_strings_cannot_break_tables():
    nasty = "vm|nic `x` <b>\nsecond line"
    f = finding("Packets dropped", "high", rows=[{"component_name": nasty, "count": 1}, {"component_name": "b", "count": 2}])
    text = render_markdown(run(findings=[f], trace=trace(header={"session|name": "a`b"})))
    row = next(line for line in text.splitlines() if line.startswith("| vm"))
    # two columns -> three unescaped pipes
    assert len(re.findall(r"(?<!\\)\|", row)) == 3
    assert "\\`x\\`" in row and "&lt;b&gt;" in row and "second line" in row
    assert "| session\\|name | a\\`b |" in section(text, "Appendix A")


def test_long_evidence_is_cut_with_a_note():
    rows = [{"n": i} for i in range(60)]
    text = render_markdown(run(findings=[finding("Many", "high", rows=rows)]), max_evidence_rows=50)
    body = section(text, "Findings")
    assert "| 49 |" in body and "| 50 |" not in body
    assert "10 more evidence row(s) are not shown here; all 60 are stored with the run." in body


def test_appendix_has_trace_and_quality():
    text = render_markdown(
        run(
            trace=trace(sha256="ab" * 32, format="pktmon", header={"logger_name": "PktMon"}),
            quality=TraceQuality(truncated=True),
        )
    )
    a = section(text, "Appendix A")
    assert "| SHA-256 | " + "ab" * 32 + " |" in a
    assert "| OS build | 20348 |" in a
    assert "| Size | 2048 bytes (2.0 KiB) |" in a
    assert "| logger name | PktMon |" in a
    assert "| Truncated | yes |" in section(text, "Appendix B")


def test_engine_result_to_markdown_end_to_end():
    facts = [
        PacketDropGroup(component_id=5, component_name="Hyper-V port", component_type="VmsVmNic", direction="In",
                        reason_code=16, reason_name="Spoofed MAC address is not allowed", count=11),
        TraceQuality(),
    ]
    result = run_rules(facts, only=["packets-dropped"])
    text = render_markdown(RunReport.from_engine(result, trace=trace(), min_severity="medium"))
    assert verdict_line(text) == ("**Verdict: Packets dropped at Hyper-V port (component 5).** "
                                  "1 finding(s) at or above medium: 1 medium.")
    # One evidence row: a list of its fields, which no ticket column is too narrow for.
    assert ("- component id: 5\n- component name: Hyper-V port\n- component type: VmsVmNic\n- direction: In\n"
            "- reason code: 16\n- reason name: Spoofed MAC address is not allowed\n- count: 11\n") in text
