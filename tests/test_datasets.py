"""Synthetic data generators."""

from __future__ import annotations

import numpy as np
import pytest

from xnowcast.conventions import normalize_cube
from xnowcast.datasets import moving_squares, synthetic_radar


def test_synthetic_radar_is_a_valid_realistic_cube():
    cube = synthetic_radar(n_times=12, size=(48, 64), seed=5)
    _cube2, info = normalize_cube(cube)
    assert cube.shape == (12, 48, 64) and info.step == np.timedelta64(5, "m")
    values = cube.values
    assert np.isnan(values).any() and np.isfinite(values).any()
    finite = values[np.isfinite(values)]
    assert finite.min() >= 0 and 0.02 < (finite > 0.1).mean() < 0.9  # rain covers part
    # Seeded: same seed same cube, other seed other cube.
    np.testing.assert_array_equal(values, synthetic_radar(n_times=12, size=(48, 64), seed=5).values)
    assert not np.array_equal(
        np.nan_to_num(values),
        np.nan_to_num(synthetic_radar(n_times=12, size=(48, 64), seed=6).values),
    )


def test_synthetic_radar_moves_with_the_wind():
    """Rain moves east with an eastward wind: the centre of mass shifts in +x."""
    cube = synthetic_radar(n_times=10, size=96, wind_ms=(20.0, 0.0), radar_range=None, seed=2)
    r = cube.fillna(0).values
    xs = np.arange(96)
    com = [(f.sum(axis=0) * xs).sum() / f.sum() for f in r]
    assert com[-1] > com[0]


def test_synthetic_radar_chunks_and_errors():
    assert synthetic_radar(n_times=4, size=16, chunks={"time": 2}).chunks[0] == (2, 2)
    with pytest.raises(ValueError, match="at least 8x8"):
        synthetic_radar(size=4)


def test_moving_squares_keras_layout():
    ds = moving_squares(n_samples=3, n_frames=8, size=24, seed=0)
    assert ds.movies.shape == (3, 8, 24, 24)
    # The target is the clean movie shifted by one frame.
    np.testing.assert_array_equal(ds.shifted_movies.values[:, :-1], ds.clean_movies.values[:, 1:])
    noise = ds.movies.values - ds.clean_movies.values
    assert np.abs(noise).max() <= 0.1 + 1e-6
    assert ds.clean_movies.values.max() == 1 and ds.clean_movies.values.min() == 0
    normalize_cube(ds.movies.isel(sample=0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_times": "3"}, TypeError, "n_times must be an integer"),
        ({"step": 5}, ValueError, "step must be a time interval with a unit"),  # was 5 ns
        ({"step": "often"}, ValueError, "step must be a time interval such as '5min'"),
        ({"start": "yesterday"}, ValueError, "start: expected times"),
        ({"resolution_m": 0}, ValueError, "resolution_m must be a positive number"),
        ({"n_cells": -1}, ValueError, "n_cells must be a non-negative integer"),
        ({"seed": "a"}, TypeError, "seed must be a non-negative integer"),
        ({"size": (8, 8, 8)}, ValueError, r"size must be an int or \(ny, nx\)"),
    ],
)
def test_synthetic_radar_bad_arguments_are_clear(kwargs, error, match):
    with pytest.raises(error, match=match):
        synthetic_radar(**{"n_times": 3, "size": 16, **kwargs})
