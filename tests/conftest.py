"""Shared test fixtures: the reference-data folder and a private params file per test."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = REPO_ROOT.parent / "shared" / "reference"


@pytest.fixture
def reference() -> Path:
    """The shared real reference data; the test is skipped where it is absent."""
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference is absent")
    return REFERENCE
