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

from diag.report.content import related_paths, related_rates, unanswered
from diag.report.markdown import columns, size, value
from diag.report.model import RunReport
from diag.report.terminal import for_terminal
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
        run=run, max_evidence_rows=max_evidence_rows, colours=SEVERITY_COLOURS, unanswered=unanswered(run),
        script=Markup(script), script_hash=script_hash,
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
    env.filters.update(value=value, columns=columns, size=size, markdown=safe_markdown, link=safe_link)
    env.globals.update(severity_chart=severity_chart, count_chart=count_chart, timeline_chart=timeline_chart,
                       path_chart=path_chart, rate_chart=rate_chart, related_paths=related_paths,
                       related_rates=related_rates)
    return env


def _no_controls(value: Any) -> Any:
    """Every value printed into the page: control characters and bidi overrides shown escaped (a browser
    would ignore most, but the file is also read with ``cat`` and ``grep``)."""
    if isinstance(value, Markup):
        return Markup(for_terminal(str(value)))
    return for_terminal(value) if isinstance(value, str) else value


_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")


def safe_link(url: Any) -> Markup:
    """An http(s) reference as a link, anything else as escaped text."""
    text = str(url)
    if re.fullmatch(r"https?://[^\s\"'<>]+", text):
        return Markup('<a href="{0}" rel="noreferrer noopener">{0}</a>').format(text)
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


def _label(row: dict[str, Any]) -> str:
    for key in ("component_name", "component", "name", "component_id"):
        if row.get(key) not in (None, ""):
            label = str(row[key])
            extra = [str(row[k]) for k in ("direction", "reason_name") if row.get(k)]
            return " · ".join([label, *extra])
    return "row"


def count_chart(rows: list[dict[str, Any]], limit: int = 20) -> Markup:
    """Bars of the ``count`` column of evidence rows (packets per component, reason, direction)."""
    counted = [r for r in rows if isinstance(r.get("count"), (int, float)) and not isinstance(r.get("count"), bool)]
    if not counted:
        return Markup("")
    counted = sorted(counted, key=lambda r: -r["count"])[:limit]
    width, bar_h, label_w = 640, 18, 300
    top = max(r["count"] for r in counted) or 1
    body = []
    for i, r in enumerate(counted):
        y = i * (bar_h + 4)
        w = max(2, int((width - label_w - 60) * r["count"] / top))
        label = _label(r)
        short = label if len(label) <= 44 else label[:43] + "…"
        body.append(Markup(
            '<text x="0" y="{y}" dy="13" class="lbl"><title>{full}</title>{short}</text>'
            '<rect x="{x}" y="{y}" width="{w}" height="{h}" class="bar"><title>{full}: {n}</title></rect>'
            '<text x="{tx}" y="{y}" dy="13" class="val">{n}</text>'
        ).format(y=y, full=label, short=short, x=label_w, w=w, h=bar_h, n=r["count"], tx=label_w + w + 6))
    height = len(counted) * (bar_h + 4)
    return Markup(
        '<svg class="chart" data-chart="counts" role="img" aria-label="Packets per evidence row" '
        'viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet">{body}</svg>'
    ).format(w=width, h=height, body=Markup("").join(body))


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
    spans = [(r, a, b or a) for r, a, b in spans if a is not None][:limit]
    if not spans:
        return Markup("")
    t0 = _time(start) or min(a for _, a, _ in spans)
    t1 = _time(end) or max(b for _, _, b in spans)
    if t0.tzinfo is None or spans[0][1].tzinfo is None:
        t0, t1 = t0.replace(tzinfo=None), t1.replace(tzinfo=None)
        spans = [(r, a.replace(tzinfo=None), b.replace(tzinfo=None)) for r, a, b in spans]
    total = max((t1 - t0).total_seconds(), 1e-6)
    width, row_h, label_w = 640, 18, 300
    plot = width - label_w - 10
    body = []
    for i, (r, a, b) in enumerate(spans):
        y = i * (row_h + 4)
        x0 = label_w + plot * max(0.0, (a - t0).total_seconds()) / total
        x1 = label_w + plot * min(total, (b - t0).total_seconds()) / total
        label = _label(r)
        short = label if len(label) <= 44 else label[:43] + "…"
        body.append(Markup(
            '<text x="0" y="{y}" dy="13" class="lbl">{short}</text>'
            '<rect x="{x}" y="{y2}" width="{w}" height="10" class="span"><title>{full}: {a} → {b}</title></rect>'
        ).format(y=y, y2=y + 4, short=short, full=label, x=round(x0, 1), w=round(max(3.0, x1 - x0), 1),
                 a=a.isoformat(), b=b.isoformat()))
    height = len(spans) * (row_h + 4) + 18
    axis = Markup(
        '<text x="{x0}" y="{y}" class="axis">{a}</text><text x="{x1}" y="{y}" class="axis" text-anchor="end">{b}</text>'
    ).format(x0=label_w, x1=width - 10, y=height - 4, a=f"{t0:%H:%M:%S}", b=f"+{total:.3f} s")
    return Markup(
        '<svg class="chart" data-chart="timeline" role="img" aria-label="Drops over time" '
        'viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet">{body}{axis}</svg>'
    ).format(w=width, h=height, body=Markup("").join(body), axis=axis)


def path_chart(path: dict[str, Any]) -> Markup:
    """One packet's hops, top to bottom, as boxes joined by arrows; the drop in red."""
    hops = list(path.get("hops") or [])
    if not hops:
        return Markup("")
    box_w, box_h, gap, width = 360, 34, 18, 640
    body = []
    for i, hop in enumerate(hops):
        y = i * (box_h + gap)
        last = i == len(hops) - 1
        dropped = last and path.get("dropped")
        name = str(hop.get("component") or f"component {hop.get('component_id')}")
        short = name if len(name) <= 46 else name[:45] + "…"
        detail = f"#{hop.get('component_id')} edge {hop.get('edge')} · {hop.get('direction') or ''}"
        delta = hop.get("delta_us")
        body.append(Markup(
            '<rect x="0" y="{y}" width="{w}" height="{h}" rx="5" class="{cls}"><title>{name}</title></rect>'
            '<text x="8" y="{y}" dy="14" class="hop">{short}</text>'
            '<text x="8" y="{y}" dy="28" class="hopd">{detail}</text>'
        ).format(y=y, w=box_w, h=box_h, cls="hopbox drop" if dropped else "hopbox", name=name, short=short,
                 detail=detail))
        if isinstance(delta, (int, float)) and i:
            body.append(Markup('<text x="{x}" y="{y}" class="hopd">+{d} µs</text>').format(
                x=box_w / 2 + 10, y=y - 5, d=f"{delta:g}"))
        if not last:
            body.append(Markup('<path d="M{x} {y1} L{x} {y2}" class="arrow"/><path d="M{xl} {ya} L{x} {y2} L{xr} {ya}" '
                               'class="arrow"/>').format(x=box_w / 2, y1=y + box_h, y2=y + box_h + gap - 1,
                                                        xl=box_w / 2 - 5, xr=box_w / 2 + 5, ya=y + box_h + gap - 7))
        elif dropped:
            reason = f"dropped: {path.get('drop_reason_name') or ''} ({path.get('drop_reason_code')})"
            body.append(Markup('<text x="{x}" y="{y}" dy="22" class="dropt">✖ {r}</text>').format(
                x=box_w + 10, y=y, r=reason))
    height = len(hops) * (box_h + gap) - gap + 2
    parts = (path.get("protocol"), path.get("src"), "→", path.get("dst"))
    what = path.get("packet") or " ".join(str(v) for v in parts if v is not None)
    label = f"packet {path.get('pkt_group_id')}/{path.get('pkt_number')}: {what}"
    return Markup(
        '<svg class="chart path" data-chart="path" role="img" aria-label="{label}" viewBox="0 0 {w} {h}" '
        'width="100%" preserveAspectRatio="xMinYMin meet">{body}</svg>'
    ).format(label=label, w=width, h=height, body=Markup("").join(body))


def rate_chart(rate: dict[str, Any]) -> Markup:
    """Drops per time bucket of one (component, reason, direction)."""
    series = [n for n in (rate.get("series") or []) if isinstance(n, (int, float))]
    if not series:
        return Markup("")
    width, height, pad = 640, 90, 16
    top = max(series) or 1
    bar_w = (width - 40) / len(series)
    bucket = rate.get("bucket_seconds") or 1
    bars = []
    for i, n in enumerate(series):
        h = (height - pad - 14) * n / top
        bars.append(Markup('<rect x="{x}" y="{y}" width="{w}" height="{h}" class="bar"><title>{t}: {n} drop(s)</title></rect>')
                    .format(x=round(40 + i * bar_w, 1), y=round(height - pad - h, 1), w=round(max(bar_w - 1, 1), 1),
                            h=round(max(h, 0.5), 1), t=f"{i * bucket:g}–{(i + 1) * bucket:g} s", n=n))
    axis = Markup('<text x="0" y="12" class="axis">{top}</text><text x="0" y="{y}" class="axis">0</text>'
                  '<text x="40" y="{yb}" class="axis">0 s</text><text x="{xr}" y="{yb}" class="axis" '
                  'text-anchor="end">{end} s</text>').format(top=top, y=height - pad, yb=height - 2, xr=width,
                                                             end=f"{len(series) * bucket:g}")
    return Markup(
        '<svg class="chart" data-chart="rate" role="img" aria-label="Drops over time" viewBox="0 0 {w} {h}" '
        'width="100%" preserveAspectRatio="xMinYMin meet">{body}{axis}</svg>'
    ).format(w=width, h=height, body=Markup("").join(bars), axis=axis)
