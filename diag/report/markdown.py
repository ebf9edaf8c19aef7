"""Render a ``RunReport`` as Markdown through ``reports/report.md.j2``.

Autoescaping is off (this is Markdown, not HTML). Strings that come from the trace or the rules
go through ``cell`` (table cells: pipes, backticks, angle brackets, line breaks) or ``text``
(running text: backticks, angle brackets, line breaks) so they cannot break the layout.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from diag.report.content import (arrange, column_labels, diagnosis, evidence_layout, related_paths, related_rates,
                                 number, rate_caption, spaced_time, unanswered)
from diag.report.model import RunReport, count_by_severity
from diag.terminal import for_terminal
from diag.resources import data_dir

TEMPLATE = "report.md.j2"
MAX_EVIDENCE_ROWS = 50
# Characters a table may need before it overflows a ticket's column: GitHub's is about 780 px, its tables use
# 16 px text (about 8.5 px a character) with 13 px padding on each side of a cell.
TABLE_BUDGET = 88

__all__ = ["MAX_EVIDENCE_ROWS", "render_markdown"]


def render_markdown(
    run: RunReport,
    *,
    max_evidence_rows: int = MAX_EVIDENCE_ROWS,
    template_dir: Path | None = None,
) -> str:
    """The Markdown report of ``run``: verdict, findings, rule errors, trace appendix."""
    env = _environment(str(template_dir or data_dir("reports")))
    template = env.get_template(TEMPLATE)
    return template.render(run=run, max_evidence_rows=max_evidence_rows)


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(rate_caption=rate_caption, evidence=evidence_markdown, cell=cell, text=text, rule_markdown=rule_markdown, value=value, columns=columns, size=size)
    env.globals.update(table_row=table_row, table_rule=table_rule, related_paths=related_paths,
                       related_rates=related_rates, unanswered=unanswered, arrange=arrange, diagnosis=diagnosis,
                       severity_counts=count_by_severity, number=number)
    return env


def _plain(raw: Any) -> str:
    return " ".join(str(raw).split())


def text(raw: Any) -> str:
    """A trace- or rule-derived string for running text: one line, no code spans, no HTML, no links or
    images (``[x](http://…)``, ``![](http://…)`` stay text), no control characters; "–" when empty."""
    if raw is None:
        return "–"
    plain = for_terminal(_plain(raw))
    return (plain.replace("\\", "\\\\").replace("`", "\\`").replace("<", "&lt;").replace(">", "&gt;")
            .replace("](", "\\](").replace("][", "\\][").replace("![", "!\\["))


def rule_markdown(raw: Any) -> str:
    """A rule's own Markdown (remediation): links stay links, but no image is ever loaded (a remote image
    is a tracking pixel in whoever opens the report), and no control character gets through."""
    return for_terminal(str(raw)).replace("![", "!\\[")


def cell(raw: Any) -> str:
    """A value for a Markdown table cell."""
    return text(value(raw)).replace("|", "\\|")


def value(raw: Any) -> str:
    """Display form of a value: ``–`` for missing, ``yes``/``no``, JSON for containers."""
    if raw is None or raw == "":
        return "–"
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    if isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, (dict, list)):
        return json.dumps(raw, ensure_ascii=False, default=str)
    return str(raw)


def evidence_markdown(rows: list[dict[str, Any]]) -> str:
    """Evidence that fits a ticket's column: one row as a list of fields; several as a table of the columns
    that fit (``TABLE_BUDGET``), with every other field listed under it per row number."""
    cols = columns(rows)
    labels = dict(zip(cols, column_labels(cols)))

    def shown(raw: Any) -> str:
        return spaced_time(value(raw))

    if len(rows) == 1:
        return "\n".join(f"- {text(labels[c])}: {text(shown(rows[0].get(c)))}" for c in cols)
    layout = evidence_layout(rows, cols, shown, TABLE_BUDGET)
    numbered = bool(layout.listed)
    head = (["#"] if numbered else []) + [labels[c] for c in layout.table]
    lines = [table_row(head), table_rule(head)]
    for n, row in enumerate(rows, 1):
        lines.append(table_row(([n] if numbered else []) + [shown(row.get(c)) for c in layout.table]))
    if numbered:
        lines.append("")
        for n, row in enumerate(rows, 1):
            fields = "; ".join(f"{labels[c]} {shown(row.get(c))}" for c in layout.listed)
            lines.append(f"- #{n}: {text(fields)}")
    return "\n".join(lines)


def table_row(values: Any) -> str:
    """One Markdown table line; every value goes through ``cell``."""
    return "| " + " | ".join(cell(v) for v in values) + " |"


def table_rule(values: Any) -> str:
    return "|" + "---|" * len(list(values))


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def size(n: int | None) -> str:
    """``1234567 bytes (1.2 MiB)``."""
    if n is None:
        return "–"
    scaled, unit = float(n), "bytes"
    for next_unit in ("KiB", "MiB", "GiB", "TiB"):
        if scaled < 1024:
            break
        scaled, unit = scaled / 1024, next_unit
    return f"{n} bytes" if unit == "bytes" else f"{n} bytes ({scaled:.1f} {unit})"
