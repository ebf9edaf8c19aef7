"""Render a ``RunReport`` as one self-contained HTML file through ``reports/report.html.j2``.

Jinja autoescaping is on: every string from the trace, the rules or the host is escaped. Nothing
is loaded from the network (inline CSS, a few lines of inline JS, SVG charts drawn here), and a
Content-Security-Policy meta tag forbids any fetch, so the file is safe to open from a case system.
The one script (``reports/report.js``) is allowed by its SHA-256, not by "unsafe-inline": a script
that got into the page some other way would not run.
Remediation text (Markdown from the rules) is escaped first and then given a small safe subset of
Markdown: code spans, bold, paragraphs and http(s) links.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from diag.report.content import (arrange, column_labels, diagnosis, evidence_field, related_paths, related_rates,
                                 number, rate_caption, spaced_time, unanswered)
from diag.report.markdown import columns, size, value
from diag.report.model import RunReport, count_by_severity
from diag.terminal import for_terminal
from diag.resources import data_dir

TEMPLATE = "report.html.j2"
SCRIPT = "report.js"
MAX_EVIDENCE_ROWS = 200
SEVERITY_COLOURS = {"critical": "#7a0019", "high": "#c62828", "medium": "#ef6c00", "low": "#2e7d32", "info": "#546e7a"}

__all__ = ["render_html"]


def render_html(run: RunReport, *, max_evidence_rows: int = MAX_EVIDENCE_ROWS, template_dir: Path | None = None) -> str:
    directory = str(template_dir or data_dir("reports"))
    env = _environment(directory)
    script, script_hash = _script(directory)
    return env.get_template(TEMPLATE).render(
        run=run, arrangement=arrange(run), max_evidence_rows=max_evidence_rows, colours=SEVERITY_COLOURS,
        unanswered=unanswered(run), script=Markup(script), script_hash=script_hash,
    )


@lru_cache(maxsize=4)
def _script(directory: str) -> tuple[str, str]:
    """The report's script and its CSP source expression ('sha256-<base64>' of exactly those bytes)."""
    text = (Path(directory) / SCRIPT).read_text(encoding="utf-8")
    if "</" in text:
        raise ValueError(f"{SCRIPT} must not contain '</'")
    return text, "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_no_controls,
    )
    env.filters.update(value=value, columns=columns, column_labels=column_labels, size=size, markdown=safe_markdown,
                       link=safe_link, cell_class=cell_class, cell_value=cell_value, rate_caption=rate_caption)
    env.globals.update(severity_chart=severity_chart, count_chart=count_chart, timeline_chart=timeline_chart,
                       path_chart=path_chart, rate_chart=rate_chart, related_paths=related_paths,
                       related_rates=related_rates, diagnosis=diagnosis, severity_counts=count_by_severity)
    return env


def _no_controls(value: Any) -> Any:
    """Every value printed into the page: control characters and bidi overrides shown escaped (a browser
    would ignore most, but the file is also read with ``cat`` and ``grep``)."""
    if isinstance(value, Markup):
        return Markup(for_terminal(str(value)))
    return for_terminal(value) if isinstance(value, str) else value


def cell_class(raw: Any) -> Markup:
    """The class of an evidence cell: numbers never wrap, long text gets room to wrap at spaces."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Markup(' class="num"')
    text = value(raw)
    if len(text) > 40 and " " in text:
        return Markup(' class="long"')
    return Markup("")


def cell_value(raw: Any) -> str:
    """A value as an evidence cell shows it (a timestamp breaks between date and time, never inside a number)."""
    return spaced_time(value(raw))


_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")


def safe_link(url: Any) -> Markup:
    """An http(s) reference as a link, anything else as escaped text."""
    text = str(url)
    if re.fullmatch(r"https?://[^\s\"'<>]+", text):
        return Markup('<a class="bare" href="{0}" rel="noreferrer noopener">{0}</a>').format(text)
    return Markup("{0}").format(text)


def safe_markdown(raw: Any) -> Markup:
    """Escaped text with code spans, bold, http(s) links and paragraphs; no raw HTML survives."""
    paragraphs = [p for p in re.split(r"\n\s*\n", str(raw or "")) if p.strip()]
    out = []
    for para in paragraphs:
        parts = re.split(r"(`[^`]*`)", para)
        html = []
        for part in parts:
            if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
                html.append(str(Markup("<code>{0}</code>").format(part[1:-1])))
            else:
                text = str(escape(part))
                text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
                text = _LINK.sub(lambda m: f'<a href="{m.group(2)}" rel="noreferrer noopener">{m.group(1)}</a>', text)
                html.append(text)
        out.append("<p>" + "".join(html) + "</p>")
    return Markup("\n".join(out))


# -- charts: inline SVG, computed here so the template stays declarative ---------------------------------


def severity_chart(counts: dict[str, int]) -> Markup:
    """Horizontal bars: findings per severity."""
    if not counts:
        return Markup("")
    width, bar_h, label_w = 420, 22, 80
    top = max(counts.values())
    rows = []
    for i, (sev, n) in enumerate(counts.items()):
        w = max(2, int((width - label_w - 40) * n / top))
        y = i * (bar_h + 6)
        rows.append(Markup(
            '<text x="0" y="{y}" dy="15" class="lbl">{sev}</text>'
            '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{c}"><title>{n} {sev}</title></rect>'
            '<text x="{tx}" y="{y}" dy="15" class="val">{n}</text>'
        ).format(y=y, sev=sev, x=label_w, w=w, h=bar_h, c=SEVERITY_COLOURS.get(sev, "#555"), n=n, tx=label_w + w + 6))
    height = len(counts) * (bar_h + 6)
    return Markup(
        '<svg class="chart" data-chart="severity" role="img" aria-label="Findings by severity" '
        'viewBox="0 0 {w} {h}" width="{w}" height="{h}">{body}</svg>'
    ).format(w=width, h=height, body=Markup("").join(rows))


def _shorten(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _labels(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(line 1, line 2, full text) per evidence row: the component with its id, then direction and reason.
    Shortening keeps the id and the second line, and a row number is added where two labels would still read
    the same, so that different rows never look alike."""
    out = []
    for row in rows:
        name = next((str(evidence_field(row, k)) for k in ("component_name", "component", "name", "description")
                     if evidence_field(row, k) not in (None, "")), None)
        comp = evidence_field(row, "component_id")
        ident = f" #{comp}" if comp not in (None, "") else ""
        first = (_shorten(name, 38 - len(ident)) + ident) if name else (f"component{ident}" if ident else "row")
        second = " · ".join(str(evidence_field(row, k)) for k in ("direction", "reason_name") if evidence_field(row, k) not in (None, ""))
        full = " · ".join(p for p in ((name or "") + ident, second) if p)
        out.append((first, _shorten(second, 46), full or first))
    seen: dict[tuple[str, str], int] = {}
    for line in out:
        seen[line[:2]] = seen.get(line[:2], 0) + 1
    return [(f"{a} (row {i})" if seen[(a, b)] > 1 else a, b, full) for i, (a, b, full) in enumerate(out, 1)]


def _svg(kind: str, label: str, width: float, height: float, body: Any, extra_class: str = "") -> Markup:
    """A chart at its own size: text stays 12 px; a narrow screen scrolls the chart's box instead."""
    return Markup(
        '<svg class="chart{cls}" data-chart="{kind}" role="img" aria-label="{label}" viewBox="0 0 {w} {h}" '
        'width="{w}" height="{h}">{body}</svg>'
    ).format(cls=f" {extra_class}" if extra_class else "", kind=kind, label=label, w=round(width), h=round(height),
             body=body)


def count_chart(rows: list[dict[str, Any]], limit: int = 20) -> Markup:
    """Bars of the ``count`` column of evidence rows (packets per component, reason, direction); none for a
    single row, whose count the table beside it already says."""
    counted = [(r, n) for r, n in ((r, evidence_field(r, "count")) for r in rows)
               if isinstance(n, (int, float)) and not isinstance(n, bool)]
    if len(counted) < 2:
        return Markup("")
    total_rows = len(counted)
    counted = sorted(counted, key=lambda rn: -rn[1])[:limit]
    width, row_h, label_w = 640, 34, 300
    top = max(n for _, n in counted) or 1
    value_w = 12 + 7.5 * max(len(number(n)) for _, n in counted)  # the longest count beside its bar, 12 px digits
    body = []
    for i, ((r, n), (first, second, full)) in enumerate(zip(counted, _labels([r for r, _ in counted]))):
        y = i * row_h
        w = max(2, int((width - label_w - value_w) * n / top))
        body.append(Markup(
            '<text x="0" y="{y}" dy="13" class="lbl"><title>{full}</title>{first}</text>'
            '<text x="0" y="{y}" dy="27" class="lbl2">{second}</text>'
            '<rect x="{x}" y="{yb}" width="{w}" height="18" class="bar"><title>{full}: {n}</title></rect>'
            '<text x="{tx}" y="{yb}" dy="13" class="val">{n}</text>'
        ).format(y=y, yb=y + 4, full=full, first=first, second=second, x=label_w, w=w, n=number(n),
                 tx=label_w + w + 6))
    height = len(counted) * row_h
    if total_rows > len(counted):
        body.append(Markup('<text x="0" y="{y}" class="unit">the {n} largest of {total} rows; the table has them all</text>')
                    .format(y=height + 12, n=len(counted), total=total_rows))
        height += 18
    return _svg("counts", "Packets per evidence row", width, height, Markup("").join(body))


def _time(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def timeline_chart(rows: list[dict[str, Any]], start: Any = None, end: Any = None, limit: int = 20) -> Markup:
    """Drops over time: one line per evidence row from first to last seen, on the trace's time axis."""
    spans = [(r, _time(r.get("first_seen")), _time(r.get("last_seen"))) for r in rows]
    spans = [(r, a, b or a) for r, a, b in spans if a is not None]
    total_rows, spans = len(spans), spans[:limit]
    if not spans:
        return Markup("")
    t0 = _time(start) or min(a for _, a, _ in spans)
    t1 = _time(end) or max(b for _, _, b in spans)
    if t0.tzinfo is None or spans[0][1].tzinfo is None:
        t0, t1 = t0.replace(tzinfo=None), t1.replace(tzinfo=None)
        spans = [(r, a.replace(tzinfo=None), b.replace(tzinfo=None)) for r, a, b in spans]
    total = max((t1 - t0).total_seconds(), 1e-6)
    width, row_h, label_w = 640, 34, 300
    plot = width - label_w - 10
    body = []
    for i, ((r, a, b), (first, second, full)) in enumerate(zip(spans, _labels([r for r, _, _ in spans]))):
        y = i * row_h
        x0 = label_w + plot * max(0.0, (a - t0).total_seconds()) / total
        x1 = label_w + plot * min(total, (b - t0).total_seconds()) / total
        body.append(Markup(
            '<text x="0" y="{y}" dy="13" class="lbl"><title>{full}</title>{first}</text>'
            '<text x="0" y="{y}" dy="27" class="lbl2">{second}</text>'
            '<rect x="{x}" y="{y2}" width="{w}" height="10" class="span"><title>{full}: {a} → {b}</title></rect>'
        ).format(y=y, y2=y + 8, first=first, second=second, full=full, x=round(x0, 1),
                 w=round(max(3.0, x1 - x0), 1), a=a.isoformat(), b=b.isoformat()))
    height = len(spans) * row_h + 18
    axis = Markup(
        '<text x="{x0}" y="{y}" class="axis">{a}</text><text x="{x1}" y="{y}" class="axis" text-anchor="end">{b}</text>'
    ).format(x0=label_w, x1=width - 10, y=height - 4, a=f"{t0:%H:%M:%S}", b=f"+{total:.3f} s")
    if total_rows > len(spans):
        axis += Markup('<text x="0" y="{y}" class="unit">the first {n} of {total} rows; the table has them all</text>') \
            .format(y=height + 12, n=len(spans), total=total_rows)
        height += 18
    return _svg("timeline", "Drops over time", width, height, Markup("").join(body) + axis)


def path_chart(path: dict[str, Any]) -> Markup:
    """One packet's hops, top to bottom, as boxes joined by arrows; the drop in red, its reason in full below."""
    hops = list(path.get("hops") or [])
    if not hops:
        return Markup("")
    box_w, box_h, gap = 360, 34, 18
    width = box_w + 120  # room for the "+N µs" beside the arrows
    body = []
    for i, hop in enumerate(hops):
        y = i * (box_h + gap)
        last = i == len(hops) - 1
        dropped = last and path.get("dropped")
        name = str(hop.get("component") or f"component {hop.get('component_id')}")
        detail = f"#{hop.get('component_id')} edge {hop.get('edge')} · {hop.get('direction') or ''}"
        delta = hop.get("delta_us")
        body.append(Markup(
            '<rect x="0" y="{y}" width="{w}" height="{h}" rx="5" class="{cls}"><title>{name}</title></rect>'
            '<text x="8" y="{y}" dy="14" class="hop">{short}</text>'
            '<text x="8" y="{y}" dy="28" class="hopd">{detail}</text>'
        ).format(y=y, w=box_w, h=box_h, cls="hopbox drop" if dropped else "hopbox", name=name,
                 short=_shorten(name, 48), detail=detail))
        if isinstance(delta, (int, float)) and i:
            body.append(Markup('<text x="{x}" y="{y}" class="hopd">+{d} µs</text>').format(
                x=box_w / 2 + 10, y=y - 5, d=number(delta)))
        if not last:
            body.append(Markup('<path d="M{x} {y1} L{x} {y2}" class="arrow"/><path d="M{xl} {ya} L{x} {y2} L{xr} {ya}" '
                               'class="arrow"/>').format(x=box_w / 2, y1=y + box_h, y2=y + box_h + gap - 1,
                                                        xl=box_w / 2 - 5, xr=box_w / 2 + 5, ya=y + box_h + gap - 7))
    height = len(hops) * (box_h + gap) - gap + 2
    if path.get("dropped"):
        reason = f"✖ dropped: {path.get('drop_reason_name') or 'reason not named'} ({path.get('drop_reason_code')})"
        body.append(Markup('<text x="0" y="{y}" class="dropt">{r}</text>').format(y=height + 16, r=reason))
        height += 24
        width = max(width, 8 + 7.5 * len(reason))  # 12 px bold text, wider than its average glyph
    parts = (path.get("protocol"), path.get("src"), "→", path.get("dst"))
    what = path.get("packet") or " ".join(str(v) for v in parts if v is not None)
    label = f"packet {path.get('pkt_group_id')}/{path.get('pkt_number')}: {what}"
    return _svg("path", label, width, height, Markup("").join(body), "path")


def rate_chart(rate: dict[str, Any]) -> Markup:
    """Drops per time bucket of one (component, reason, direction); the y axis counts drops per bucket, as the
    caption does (``rate_caption``)."""
    series = [n for n in (rate.get("series") or []) if isinstance(n, (int, float))]
    if not series:
        return Markup("")
    width, height, pad, left = 640, 104, 16, 48
    plot_top = 18
    top = max(series) or 1
    bar_w = (width - left) / len(series)
    bucket = rate.get("bucket_seconds") or 1
    bars = []
    for i, n in enumerate(series):
        h = (height - pad - plot_top) * n / top
        bars.append(Markup('<rect x="{x}" y="{y}" width="{w}" height="{h}" class="bar"><title>{t}: {n} drop(s)</title></rect>')
                    .format(x=round(left + i * bar_w, 1), y=round(height - pad - h, 1), w=round(max(bar_w - 1, 1), 1),
                            h=round(max(h, 0.5), 1), t=f"{number(i * bucket)}–{number((i + 1) * bucket)} s", n=n))
    axis = Markup('<text x="0" y="11" class="unit">drops per {b} s</text>'
                  '<text x="{lx}" y="{yt}" class="axis" text-anchor="end">{top}</text>'
                  '<text x="{lx}" y="{y0}" class="axis" text-anchor="end">0</text>'
                  '<text x="{left}" y="{yb}" class="axis">0 s</text><text x="{xr}" y="{yb}" class="axis" '
                  'text-anchor="end">{end} s</text>').format(
        b=number(bucket), lx=left - 6, yt=plot_top + 10, top=number(top), y0=height - pad, left=left,
        yb=height - 2, xr=width, end=number(len(series) * bucket))
    return _svg("rate", "Drops over time", width, height, Markup("").join(bars) + axis)
