"""Satellite cubes end to end on the shared SEVIRI cube: defaults from the quantity, maps, scores."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import xnowcast
from xnowcast.conventions import normalize_cube
from xnowcast.datasets import synthetic_radar
from xnowcast.models.optical_flow import warn_implausible_motion
from xnowcast.motion.api import DEFAULT_TRANSFORM, pixel_speed_limit
from xnowcast.transforms import continuous_transform, is_continuous

pytest.importorskip("cv2")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "satellite"
SEVIRI = DATA / "seviri-ir016-20200401.nc"
pytestmark = pytest.mark.skipif(not SEVIRI.exists(), reason="shared satellite data absent")


@pytest.fixture(scope="module")
def raw():
    return xnowcast.open_archive(SEVIRI).load()


@pytest.fixture(scope="module")
def cube(raw):
    return raw.where(raw > 0)  # the file writes missing data as 0 (docs/satellite.md)


def _params(fc) -> dict:
    return json.loads(fc.attrs["xnowcast_model_params"])


def test_the_cube_opens_validates_and_windows(cube):
    assert cube.dims == ("time", "y", "x") and cube.shape == (25, 298, 615)
    _, info = normalize_cube(cube)
    assert info.grid_mapping == "crs" and info.lat == "lat"
    assert cube["crs"].attrs["grid_mapping_name"] == "geostationary"
    assert is_continuous(cube) and not is_continuous(synthetic_radar(n_times=2, size=8))
    wins = cube.nowcast.windows(n_in=12, n_out=12)
    assert len(wins) == 2 and wins[0].targets.sizes["time"] == 12


def test_optical_flow_defaults_follow_the_quantity(cube):
    fc = xnowcast.forecast(cube, "optical-flow", init_times=cube.time.values[12], n_out=3)
    params = _params(fc)
    assert params["extrapolation"] == "advection" and params["extrapolation_kwargs"] == {}
    assert params["transform"] == {"name": "scale", "vmin": 0.0, "vmax": 800.0, "clip": False}
    assert fc.attrs["units"] == "1" and np.isfinite(fc.values).mean() > 0.8
    # what the user chose is kept
    chosen = xnowcast.forecast(
        cube, "optical-flow", init_times=cube.time.values[12], n_out=3, extrapolation="cascade"
    )
    assert _params(chosen)["extrapolation"] == "cascade"
    assert _params(chosen)["transform"]["name"] == "scale"
    dbr = xnowcast.forecast(
        cube, "optical-flow", init_times=cube.time.values[12], n_out=3, transform=DEFAULT_TRANSFORM
    )
    assert _params(dbr)["transform"] == DEFAULT_TRANSFORM
    assert _params(dbr)["extrapolation"] == "advection"


def test_radar_cubes_keep_the_radar_defaults_bit_for_bit():
    radar = synthetic_radar(n_times=14, size=48, seed=3)
    auto = xnowcast.forecast(radar, "optical-flow", n_out=3)
    explicit = xnowcast.forecast(
        radar, "optical-flow", n_out=3, transform=DEFAULT_TRANSFORM, extrapolation="cascade"
    )
    np.testing.assert_array_equal(auto.values, explicit.values)
    assert _params(auto) == _params(explicit)
    assert _params(auto)["transform"]["name"] == "dbr"


def test_the_default_forecast_beats_persistence(cube):
    init = slice(cube.time.values[3], cube.time.values[12])
    scores = {}
    for model in ("optical-flow", "persistence"):
        fc = xnowcast.forecast(cube, model, init_times=init, n_in=4, n_out=6).compute()
        scores[model] = xnowcast.verification.verify(
            fc, cube, ["mae", "ms_ssim"], data_range=1023, mean=True
        ).compute()
    flow, still = scores["optical-flow"], scores["persistence"]
    assert (flow.mae.values < still.mae.values).all(), (flow.mae.values, still.mae.values)
    assert (flow.ms_ssim.values > still.ms_ssim.values).all()


def test_motion_beyond_any_physical_speed_warns(raw, cube):
    _, info = normalize_cube(raw)
    assert pixel_speed_limit(raw, info) == pytest.approx(10.0, rel=0.01)  # 3 km, 5 min
    init = raw.time.values[12]  # frame 10 is 42 % zeros: they look like a fast motion
    # the model gives Lucas-Kanade that speed: it leaves out the vectors and, as they are
    # many (15 %), says so
    with pytest.warns(UserWarning, match="motion vectors were faster than max_speed=10 pix"):
        xnowcast.forecast(raw, "optical-flow", init_times=init, n_out=2)
    with pytest.warns(UserWarning, match="beyond any physical speed"):  # a dense method
        xnowcast.forecast(raw, "optical-flow", init_times=init, n_out=2, method="dis")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xnowcast.forecast(cube, "optical-flow", init_times=init, n_out=2)
    flow = np.zeros((2, 4, 4), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_implausible_motion(flow + 9.0 / np.sqrt(2), 10.0)  # 9 px: plausible


def test_continuous_transform_range():
    attrs = synthetic_radar(n_times=2, size=8).assign_attrs(units="K")
    assert continuous_transform(attrs, np.array([203.5, 298.0]))["vmin"] == 200.0
    assert continuous_transform(attrs, np.array([203.5, 298.0]))["vmax"] == 300.0
    with pytest.raises(ValueError, match="no valid_range"):
        continuous_transform(attrs, np.array([np.nan]))


def test_maps_in_the_geostationary_projection(cube):
    pytest.importorskip("cartopy")
    from cartopy.mpl.feature_artist import FeatureArtist

    from xnowcast.plotting import map_grid, plot_forecast

    fc = xnowcast.forecast(cube, "optical-flow", init_times=cube.time.values[12], n_out=2)
    grid = map_grid(fc)
    assert grid.kind == "projected" and "Geostationary" in grid.projection.to_wkt()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_forecast(fc, leads=[1, 2], obs=cube)
    ax = fig.axes[0]
    assert any(isinstance(a, FeatureArtist) for a in ax.get_children())  # coastlines
    norm = next(
        a.norm for a in ax.get_children() if hasattr(getattr(a, "norm", None), "boundaries")
    )
    assert norm.boundaries[0] == 0.0 and norm.boundaries[-1] == 800.0  # the field's range
    assert any(t.get_text().endswith("°N") for t in ax.texts)


def test_batch_jobs_use_the_same_defaults(cube, tmp_path):
    from xnowcast.batch import forecast_archive

    crop = cube.isel(y=slice(100, 164), x=slice(200, 296), time=slice(0, 9))
    job = forecast_archive(crop, "optical-flow", tmp_path / "sat.zarr", n_in=4, n_out=2)
    job.run(progress=False)
    stored = job.open()
    expected = xnowcast.forecast(crop, "optical-flow", init_times="all", n_in=4, n_out=2)
    assert _params(stored) == _params(expected)
    assert _params(stored)["transform"]["name"] == "scale"
    np.testing.assert_array_equal(stored.values, expected.values)


def test_motion_of_a_continuous_cube_uses_its_value_range(cube):
    uv = cube.nowcast.motion()
    assert uv.attrs["transform"] == str(
        {"name": "scale", "vmin": 0.0, "vmax": 800.0, "clip": False}
    )
    assert float(uv.speed.median()) < 30  # m/s: cloud motion, not the dBR saturation artefact
    radar = synthetic_radar(n_times=4, size=32)
    assert "dbr" in radar.nowcast.motion().attrs["transform"]
