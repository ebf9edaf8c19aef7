"""Where the shared real traces are, and a skip for machines that do not have them."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "shared" / "etl-samples"


def sample_files() -> list[Path]:
    return sorted(SAMPLES_DIR.glob("*.etl")) if SAMPLES_DIR.is_dir() else []


def sample(name: str) -> Path:
    path = SAMPLES_DIR / name
    if not path.is_file():
        pytest.skip(f"real ETL sample {name} is not available at {SAMPLES_DIR}")
    return path


def sample_params() -> list:
    files = sample_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no real ETL samples at {SAMPLES_DIR}"))]
    return [pytest.param(p, id=p.name) for p in files]
