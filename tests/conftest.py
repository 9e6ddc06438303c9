"""Shared fixtures. Tests (and .ci/run) may fall back to ../shared/data; the product never does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

torch.set_num_threads(min(2, torch.get_num_threads()))  # CI has 2 cores


def _mnist_root() -> Path:
    root = Path(os.environ.get("MNIST_ROOT") or SHARED_DATA)
    if not (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file():
        pytest.skip(f"MNIST not found under {root} (set MNIST_ROOT)")
    return root


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Folder that holds MNIST/raw: $MNIST_ROOT, else ../shared/data."""
    return _mnist_root()


@pytest.fixture(scope="session")
def hymenoptera_root() -> Path:
    """The ants/bees folder: $HYMENOPTERA_ROOT, else ../shared/data/hymenoptera_data."""
    root = Path(os.environ.get("HYMENOPTERA_ROOT") or SHARED_DATA / "hymenoptera_data")
    if not (root / "train").is_dir():
        pytest.skip(f"ants/bees data not found under {root} (set HYMENOPTERA_ROOT)")
    return root


@pytest.fixture
def results_dir(tmp_path, monkeypatch) -> Path:
    """A private results folder, so tests never touch the committed results/."""
    d = tmp_path / "results"
    d.mkdir()
    monkeypatch.setenv("NAS_RESULTS", str(d))
    monkeypatch.setattr("benchmarks.harness.results.RESULTS_DIR", d)
    return d
