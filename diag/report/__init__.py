"""report: render a run (``RunReport``) for people and scripts: HTML, Markdown, JSON, CSV."""

from diag.report.markdown import render_markdown
from diag.report.model import HostInfoFile, RunReport, TraceInfo
from diag.report.render import FORMATS, parse_formats, render, render_stored

__all__ = ["FORMATS", "HostInfoFile", "RunReport", "TraceInfo", "parse_formats", "render", "render_markdown",
           "render_stored"]
