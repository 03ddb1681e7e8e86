"""Shared test fixtures: the reference-data folder and the params file of a stage test."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.params import write_params

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = REPO_ROOT.parent / "shared" / "reference"


@pytest.fixture
def reference() -> Path:
    """The shared real reference data; the test is skipped where it is absent."""
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference is absent")
    return REFERENCE


@pytest.fixture
def golden(reference: Path) -> Path:
    """The goldens of the published LGTM / TMR / T2M code (``lgtm_official/``); skipped where absent."""
    folder = reference / "lgtm_official"
    if not (folder / "lgtm_small_io.npz").is_file():
        pytest.skip("the official goldens (../shared/reference/lgtm_official) are absent")
    return folder


@pytest.fixture
def stage_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, Any]], Path]:
    """Work in ``tmp_path`` with a private params file: call it with dotted overrides of the real
    params.yaml (again to change them); stages read it through ``$LGTM_PARAMS``."""
    monkeypatch.chdir(tmp_path)

    def write(overrides: Mapping[str, Any]) -> Path:
        path = write_params(tmp_path, overrides)
        monkeypatch.setenv("LGTM_PARAMS", str(path))
        return path

    return write
