"""``render``: write a run's reports (HTML, Markdown, plain text, JSON, CSV) into a directory.

Every output of one call is made from the same ``RunReport`` (stamped with the case id and, with
``redact``, pseudonymized once), so all of them agree. Files are written atomically (a temporary
file renamed into place): a reader never sees half a report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from diag.errors import BadInputError
from diag.report.csvout import render_evidence_csv, render_findings_csv
from diag.report.html import render_html
from diag.report.jsonout import render_json
from diag.report.markdown import render_markdown
from diag.report.model import RunReport
from diag.report.redact import Redactor, redact_run
from diag.report.text import render_text

FORMATS = ("html", "md", "txt", "json", "csv")
FILE_NAMES = {
    "html": ["wnvdiag-report.html"],
    "md": ["wnvdiag-report.md"],
    "txt": ["wnvdiag-report.txt"],
    "json": ["wnvdiag-report.json"],
    "csv": ["wnvdiag-findings.csv", "wnvdiag-evidence.csv"],
}

__all__ = ["FILE_NAMES", "FORMATS", "parse_formats", "prepare", "render", "render_stored"]


def parse_formats(spec: str | Iterable[str]) -> list[str]:
    """``"html,md"`` or ``["html", "md"]`` → ``["html", "md"]``; ``all`` means every format."""
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    out: list[str] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        if item == "all":
            out += [f for f in FORMATS if f not in out]
        elif item in ("markdown", "text"):
            alias = "md" if item == "markdown" else "txt"
            out += [] if alias in out else [alias]
        elif item in FORMATS:
            out += [] if item in out else [item]
        else:
            raise BadInputError(f"unknown report format {item!r} (one of {', '.join(FORMATS)}, all)")
    if not out:
        raise BadInputError("no report format given")
    return out


def prepare(run: RunReport, *, case_id: str | None = None, redact: bool = False,
            redact_key: bytes | None = None) -> RunReport:
    """The run as the reports show it: stamped with ``case_id`` (if given), pseudonymized if ``redact``."""
    if case_id is not None:
        run = run.model_copy(update={"case_id": case_id})
    if redact:
        run = redact_run(run, redactor=Redactor(redact_key))
    return run


def render(
    run: RunReport,
    formats: str | Iterable[str] = ("md",),
    out_dir: str | Path = ".",
    *,
    case_id: str | None = None,
    redact: bool = False,
    redact_key: bytes | None = None,
) -> dict[str, list[Path]]:
    """Write the reports of ``run`` in ``formats`` to ``out_dir``; return format -> files written.

    ``case_id`` stamps every output; ``redact`` replaces IPs, MACs, names and paths with keyed
    pseudonyms (``redact_key``; a random one when not given: pass ``diag.store.redaction_key(db)``
    to keep pseudonyms stable across re-renders of the same database).
    """
    wanted = parse_formats(formats)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInputError("the report directory is not a directory", out)
    shown = prepare(run, case_id=case_id, redact=redact, redact_key=redact_key)
    texts: dict[str, str] = {}
    for fmt in wanted:
        if fmt == "html":
            texts["wnvdiag-report.html"] = render_html(shown)
        elif fmt == "md":
            texts["wnvdiag-report.md"] = render_markdown(shown)
        elif fmt == "txt":
            texts["wnvdiag-report.txt"] = render_text(shown)
        elif fmt == "json":
            texts["wnvdiag-report.json"] = render_json(shown, redacted=redact)
        elif fmt == "csv":
            texts["wnvdiag-findings.csv"] = render_findings_csv(shown)
            texts["wnvdiag-evidence.csv"] = render_evidence_csv(shown)
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = {name: _write_atomically(out / name, text) for name, text in texts.items()}
    except OSError as exc:
        raise BadInputError(f"cannot write reports ({exc.strerror or exc})", out) from None
    return {fmt: [written[name] for name in FILE_NAMES[fmt]] for fmt in wanted}


def render_stored(
    db_path: str | Path,
    run_ref: str,
    formats: str | Iterable[str] = ("md",),
    out_dir: str | Path = ".",
    *,
    case_id: str | None = None,
    redact: bool = False,
) -> dict[str, list[Path]]:
    """Re-render a stored run (id, unique prefix or ``latest``) without reading the trace again."""
    from diag import store

    run_id = store.resolve_run(db_path, run_ref)
    run = store.load_run(db_path, run_id)
    key = store.redaction_key(db_path) if redact else None
    return render(run, formats, out_dir, case_id=case_id, redact=redact, redact_key=key)


def _write_atomically(target: Path, text: str) -> Path:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", errors="backslashreplace", newline="") as fh:  # lone surrogates
        fh.write(text)
    os.replace(tmp, target)
    return target
