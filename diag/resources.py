"""Locate the data directories (rules/, knowledge/, reports/) in a wheel or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the directory ``name`` (``rules``, ``knowledge`` or ``reports``).

    An installed wheel carries them under ``diag/_data``; a checkout or an editable install has
    them at the repository's top level, beside the package.
    """
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"wnvdiag data directory {name!r} is missing from this installation")
