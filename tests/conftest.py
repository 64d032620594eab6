"""Shared test fixtures: location of ../shared data, skipping when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
ERA5_DIR = SHARED / "data" / "era5"
HELDSUAREZ = SHARED / "data" / "heldsuarez" / "hs_train.zarr"


@pytest.fixture
def era5_dir() -> Path:
    if not ERA5_DIR.is_dir():
        pytest.skip(f"real ERA5 files not found at {ERA5_DIR} (../shared absent)")
    return ERA5_DIR


@pytest.fixture
def heldsuarez_store() -> Path:
    if not HELDSUAREZ.is_dir():
        pytest.skip(f"Held-Suarez store not found at {HELDSUAREZ} (../shared absent)")
    return HELDSUAREZ
