"""Render a ``RunReport`` as plain text through ``reports/report.txt.j2``: for tickets and mail that show no
Markdown. Lines are wrapped at ``WIDTH`` columns (a word longer than that, a URL or a hash, stays whole so that
it can still be copied), tables are aligned in a monospaced font, and no markup characters are added.

Every string from the trace or the rules is printed through ``wrap`` or ``evidence_text``, which clean it (one
line, control characters shown escaped by ``for_terminal``) as the other formats do.
"""

from __future__ import annotations

import re
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from diag.report.content import (arrange, column_labels, diagnosis, evidence_layout, number, rate_caption,
                                 related_paths, related_rates, spaced_time, unanswered)
from diag.report.markdown import columns, size, value
from diag.report.model import RunReport, count_by_severity
from diag.terminal import for_terminal
from diag.resources import data_dir

TEMPLATE = "report.txt.j2"
WIDTH = 78
MAX_EVIDENCE_ROWS = 50

__all__ = ["WIDTH", "render_text"]


def render_text(run: RunReport, *, max_evidence_rows: int = MAX_EVIDENCE_ROWS, template_dir: Path | None = None) -> str:
    env = _environment(str(template_dir or data_dir("reports")))
    return env.get_template(TEMPLATE).render(run=run, arrangement=arrange(run), max_evidence_rows=max_evidence_rows,
                                             unanswered=unanswered(run))


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
    )
    env.filters.update(wrap=wrap, plain=plain, evidence=evidence_text, value=value, size=size,
                       rate_caption=rate_caption)
    env.globals.update(diagnosis=diagnosis, related_paths=related_paths, related_rates=related_rates,
                       severity_counts=count_by_severity, number=number)
    return env


def clean(raw: Any) -> str:
    """One line of trace- or rule-derived text: whitespace runs (line breaks too) as one space, no control
    characters."""
    return for_terminal(" ".join(str(raw).split()))


def plain(raw: Any) -> str:
    """A rule's Markdown as plain text: bold markers and code-span backticks dropped, links as "text (url)"."""
    text = clean(raw).replace("**", "")
    text = re.sub(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)", r"\1 (\2)", text)
    return re.sub(r"`([^`]*)`", r"\1", text)


def wrap(raw: Any, indent: int = 0, first: str = "", hang: int | None = None) -> str:
    """``raw`` wrapped at ``WIDTH``: ``indent`` spaces before every line, ``first`` before the first (a bullet,
    a label), continuation lines under the text (or at ``hang``)."""
    text = clean(raw)
    lead = " " * indent + first
    rest = " " * (len(lead) if hang is None else hang)
    return textwrap.fill(text, width=WIDTH, initial_indent=lead, subsequent_indent=rest, break_long_words=False,
                         break_on_hyphens=False) or lead.rstrip()


def evidence_text(rows: list[dict[str, Any]], indent: int = 6) -> str:
    """Evidence in a monospaced column: one row as "label: value" lines; several as an aligned table of the
    columns that fit on a line, the other fields listed under it by row number."""
    cols = columns(rows)
    labels = dict(zip(cols, column_labels(cols)))

    def shown(raw: Any) -> str:
        return clean(spaced_time(value(raw)))

    pad = " " * indent
    if len(rows) == 1:
        wide = max(len(labels[c]) for c in cols)
        return "\n".join(wrap(shown(rows[0].get(c)), indent, f"{labels[c] + ':':<{wide + 2}}") for c in cols)
    layout = evidence_layout(rows, cols, shown, WIDTH - indent - 4, cells_wrap=False)
    head = (["#"] if layout.listed else []) + [labels[c] for c in layout.table]
    body = [([str(i)] if layout.listed else []) + [shown(row.get(c)) for c in layout.table]
            for i, row in enumerate(rows, 1)]
    widths = [max(len(h), *(len(r[k]) for r in body)) for k, h in enumerate(head)]
    numeric = [all(r[k].replace(".", "", 1).lstrip("-").isdigit() or r[k] == "–" for r in body) for k in range(len(head))]

    def line(cells: list[str]) -> str:
        return pad + "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric)).rstrip()

    out = [line(head), pad + "  ".join("-" * w for w in widths)] + [line(r) for r in body]
    for i, row in enumerate(rows, 1):
        if layout.listed:
            fields = "; ".join(f"{labels[c]} {shown(row.get(c))}" for c in layout.listed)
            out.append(wrap(fields, indent, f"#{i}: "))
    return "\n".join(out)
