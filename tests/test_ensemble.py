"""Ensemble reductions (probability, quantile), the accessor, probability maps and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xnowcast
from xnowcast.datasets import synthetic_radar
from xnowcast.ensemble import probability, quantile


def _ensemble(chunks=None):
    rng = np.random.default_rng(0)
    values = rng.gamma(0.6, 4.0, (5, 3, 6, 7)).astype("float32")
    values[0, 0, 0, 0] = np.nan
    values[:, 1, 2, 3] = np.nan  # every member missing here
    ens = xr.DataArray(
        values,
        dims=("member", "lead_time", "y", "x"),
        coords={"member": np.arange(5)},
        name="rain",
        attrs={"units": "mm h-1"},
    )
    return ens.chunk({"member": 2}) if chunks else ens


@pytest.fixture(scope="module")
def steps_ensemble():
    cube = synthetic_radar(n_times=8, size=32)
    return xnowcast.forecast(cube, "steps", members=4, seed=0, n_in=4, n_out=3)


@pytest.mark.parametrize("lazy", [False, True])
def test_probability_is_the_nan_aware_fraction_of_members_at_or_above(lazy):
    ens = _ensemble(lazy)
    values = ens.values
    p = probability(ens, 5.0)
    assert p.dims == ("lead_time", "y", "x") and (p.chunks is not None) == lazy
    valid = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        expected = ((values >= 5.0) & valid).sum(0) / valid.sum(0)
    np.testing.assert_allclose(p.values, expected, rtol=1e-6)
    assert np.isnan(p.values[1, 2, 3]) and p.attrs["threshold_rule"] == "value >= threshold"
    strict = probability(ens, float(values[1, 0, 0, 0]), compare=">")
    loose = probability(ens, float(values[1, 0, 0, 0]))
    assert float(loose[0, 0, 0] - strict[0, 0, 0]) == pytest.approx(1 / 4)


@pytest.mark.parametrize("lazy", [False, True])
def test_quantile_matches_numpy_nanquantile(lazy):
    ens = _ensemble(lazy)
    q = quantile(ens, [0.1, 0.5, 0.9])
    assert q.dims == ("quantile", "lead_time", "y", "x")
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore")
        expected = np.nanquantile(ens.values, [0.1, 0.5, 0.9], axis=0)
    np.testing.assert_allclose(q.values, expected, rtol=1e-5)
    assert quantile(ens, 0.5).dims == ("lead_time", "y", "x")
    with pytest.raises(ValueError, match="quantiles q must lie in 0..1"):
        quantile(ens, 1.5)


def test_accessor_forwards_to_the_functions(steps_ensemble):
    ens = steps_ensemble
    xr.testing.assert_identical(ens.nowcast.probability(threshold=1), probability(ens, 1))
    xr.testing.assert_identical(ens.nowcast.quantile([0.5]), quantile(ens, [0.5]))
    p = ens.nowcast.probability(threshold=1).values
    assert np.nanmin(p) >= 0 and np.nanmax(p) <= 1 and np.isfinite(p).any()
    as_dataset = ens.to_dataset(name="rain")
    np.testing.assert_array_equal(probability(as_dataset, 1).values, probability(ens, 1).values)


def test_probability_of_a_deterministic_forecast_names_the_fix():
    cube = synthetic_radar(n_times=6, size=16)
    fc = xnowcast.forecast(cube, "persistence", n_in=2, n_out=2)
    with pytest.raises(ValueError, match="model='steps', members=20"):
        fc.nowcast.probability(threshold=5)
    with pytest.raises(ValueError, match="'member' dimension"):
        fc.nowcast.quantile(0.5)
    with pytest.raises(TypeError, match="threshold must be"):
        probability(_ensemble(), "five")


def test_plot_probability_draws_saves_and_refuses_to_overwrite(tmp_path, steps_ensemble):
    pytest.importorskip("matplotlib")
    import warnings

    path = tmp_path / "p.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no Natural Earth files offline
        fig = steps_ensemble.nowcast.plot_probability(threshold=1, leads=[1, 3], path=path)
    assert len(fig.axes) == 3 and path.stat().st_size > 0
    assert "+5 min" in fig.axes[0].get_title()
    with pytest.raises(FileExistsError):
        steps_ensemble.nowcast.plot_probability(threshold=1, leads=[1], path=path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        steps_ensemble.nowcast.plot_probability(threshold=1, leads=[2], path=path, overwrite=True)
    cube = synthetic_radar(n_times=6, size=16)
    with pytest.raises(ValueError, match="'member' dimension"):
        xnowcast.forecast(cube, "persistence", n_in=2, n_out=2).nowcast.plot_probability(1)
