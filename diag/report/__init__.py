"""report: render a run (``RunReport``) for people; Markdown for now."""

from diag.report.markdown import render_markdown
from diag.report.model import RunReport, TraceInfo

__all__ = ["RunReport", "TraceInfo", "render_markdown"]
