"""Shared test fixtures: location of ../shared data, skipping when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Without a GPU, the Triton kernels are checked on CPU tensors by the Triton
# interpreter. The variable must be set before any kernel module is imported
# (triton.jit reads it at decoration time); the kernels are imported lazily,
# so setting it here is early enough. An explicit TRITON_INTERPRET=0 wins.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

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
