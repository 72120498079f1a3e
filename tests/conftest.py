"""Shared fixtures: small synthetic cubes and the shared real radar data."""

from __future__ import annotations

from pathlib import Path

import dask
import matplotlib
import pytest

matplotlib.use("Agg")

import xnowcast
from xnowcast.datasets import synthetic_radar

SHARED_RADAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radar"


@pytest.fixture(scope="session")
def radar_dir() -> Path:
    """``../shared/data/radar`` beside the checkout (CI has it); skip when absent."""
    if not SHARED_RADAR.is_dir():
        pytest.skip(f"shared radar data not found at {SHARED_RADAR}")
    return SHARED_RADAR


@pytest.fixture(scope="session")
def bom_glob(radar_dir: Path) -> str:
    return str(radar_dir / "bom-2-20180616" / "*.nc")


@pytest.fixture(scope="session")
def bom_cube(bom_glob: str):
    return xnowcast.open_archive(bom_glob)


@pytest.fixture(scope="session")
def tiny_downscaler():
    """``tiny_downscaler(**options)``: a small, quick downscaling ``Trainer`` (x4, one epoch)."""

    def make(**options):
        defaults = dict(
            task="downscale",
            model="resnet-spc",
            scale=4,
            model_params={"filters": 4, "blocks": 1},
            epochs=1,
            crop=16,
            batch_size=4,
            progress=False,
        )
        return xnowcast.Trainer(**{**defaults, **options})

    return make


@pytest.fixture
def motionless(monkeypatch):
    """``motionless(model)``: a ``steps`` model whose motion is zero (its advection the
    identity, so its Lagrangian fields are its output), for this test."""
    import numpy as np

    def still(model):
        monkeypatch.setattr(
            model._motion, "motion", lambda frames: np.zeros((2, *frames.shape[1:]), "float32")
        )
        return model

    return still


@pytest.fixture
def cube():
    """A small synthetic radar cube (30 frames of 40x40, NaN outside range)."""
    return synthetic_radar(n_times=30, size=40, seed=3)


class CountingScheduler:
    """A dask scheduler that counts how often it is asked to compute."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, dsk, keys, **kwargs):
        self.calls += 1
        return dask.get(dsk, keys, **kwargs)


@pytest.fixture
def counting_scheduler() -> CountingScheduler:
    """A fresh :class:`CountingScheduler`; use it with ``dask.config.set(scheduler=...)``."""
    return CountingScheduler()
