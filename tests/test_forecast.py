"""The forecast output contract, laziness, NaN handling and file round trips."""

from __future__ import annotations

import json

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xnowcast
from xnowcast.datasets import synthetic_radar
from xnowcast.io import open_forecast, save_forecast
from xnowcast.models import NowcastModel


def test_single_forecast_contract(cube):
    fc = cube.nowcast.forecast(model="persistence")
    assert fc.dims == ("lead_time", "y", "x")
    assert fc.sizes["lead_time"] == 24
    assert fc.lead_time.dtype.kind == "m"
    np.testing.assert_array_equal(fc.lead_time.values, np.arange(1, 25) * np.timedelta64(5, "m"))
    assert fc.lead_time.attrs["standard_name"] == "forecast_period"
    assert fc.init_time.values == cube.time.values[-1]
    assert fc.init_time.attrs["standard_name"] == "forecast_reference_time"
    np.testing.assert_array_equal(fc.valid_time.values, fc.init_time.values + fc.lead_time.values)
    for name in ("lat", "lon", "x", "y", "crs"):
        xr.testing.assert_identical(
            fc[name].reset_coords(drop=True), cube[name].reset_coords(drop=True)
        )
    assert fc.name == cube.name and fc.attrs["units"] == cube.attrs["units"]
    assert fc.attrs["grid_mapping"] == "crs"
    assert fc.attrs["xnowcast_model"] == "persistence"
    assert json.loads(fc.attrs["xnowcast_model_params"]) == {"n_in": 12, "n_out": 24}
    assert fc.attrs["xnowcast_version"] == xnowcast.__version__
    assert fc.chunks is None  # one init time is computed now


def test_persistence_values_and_nan_flow_through(cube):
    fc = cube.nowcast.forecast(model_params={"n_out": 3})
    last = cube.isel(time=-1).values
    for k in range(3):
        np.testing.assert_array_equal(fc.isel(lead_time=k).values, last.astype("float32"))
    # NaN outside radar range stays NaN, and only there.
    assert np.array_equal(np.isnan(fc.isel(lead_time=0).values), np.isnan(last))


def test_all_init_times_are_lazy_until_asked(counting_scheduler):
    lazy = synthetic_radar(n_times=30, size=32, chunks={"time": 6})
    counter = counting_scheduler
    with dask.config.set(scheduler=counter):
        fcs = lazy.nowcast.forecast(
            model="persistence", init_times="all", chunk_init_times=5, model_params={"n_out": 4}
        )
        assert counter.calls == 0
        assert fcs.dims == ("init_time", "lead_time", "y", "x")
        assert fcs.chunks[0] == (5, 5, 5, 4)
        values = fcs.values
    assert counter.calls == 1
    np.testing.assert_array_equal(values[3, 2], lazy.isel(time=14).values)


def test_numpy_cube_gives_dask_backed_multi_forecast(cube):
    fcs = cube.nowcast.forecast(init_times="all", model_params={"n_out": 2})
    assert fcs.chunks is not None
    np.testing.assert_array_equal(fcs.init_time.values, cube.time.values[11:])


def test_init_time_selections(cube):
    t = cube.time.values
    one = cube.nowcast.forecast(init_times=t[15], model_params={"n_out": 2})
    assert one.dims == ("lead_time", "y", "x") and one.init_time.values == t[15]
    several = cube.nowcast.forecast(init_times=[t[12], t[20]], model_params={"n_out": 2})
    assert list(several.init_time.values) == [t[12], t[20]]
    sliced = cube.nowcast.forecast(init_times=slice(t[12], t[14]), model_params={"n_out": 2})
    assert sliced.sizes["init_time"] == 3
    thinned = cube.nowcast.forecast(init_times="all", every="15min", model_params={"n_out": 2})
    assert all(pd.Timestamp(v).minute % 15 == 0 for v in thinned.init_time.values)


def test_forecasts_skip_windows_across_gaps(cube):
    fcs = cube.drop_isel(time=[15]).nowcast.forecast(init_times="all", model_params={"n_out": 2})
    assert fcs.sizes["init_time"] == (15 - 11) + (14 - 11)


def test_all_nan_input_is_a_clear_error(cube):
    nan_cube = cube.copy(data=np.full(cube.shape, np.nan, dtype="float32"))
    with pytest.raises(ValueError, match="all NaN"):
        nan_cube.nowcast.forecast()


def test_all_nan_window_in_multi_forecast_gives_nan(cube):
    data = cube.values.copy()
    data[:14] = np.nan
    fcs = (
        cube.copy(data=data).nowcast.forecast(init_times="all", model_params={"n_out": 2}).compute()
    )
    assert np.isnan(fcs.isel(init_time=[0, 1, 2]).values).all()
    assert np.isfinite(fcs.isel(init_time=3).values).any()


def test_too_few_frames_for_model(cube):
    with pytest.raises(ValueError, match="5 frame.*12 are needed"):
        cube.isel(time=slice(0, 5)).nowcast.forecast()


def test_dataset_input_and_var(cube):
    ds = xr.Dataset({"rain": cube, "other": cube * 2})
    fc = ds.nowcast.forecast(var="other", model_params={"n_out": 2})
    assert fc.name == "other"
    with pytest.raises(ValueError, match="var="):
        ds.nowcast.forecast()


def test_user_model_instance_and_contract_enforced(cube):
    class Broken(NowcastModel):
        name = "broken"

        def predict(self, inputs):
            return inputs[:, :1]

    with pytest.raises(RuntimeError, match="broke the array contract"):
        cube.nowcast.forecast(model=Broken(n_in=3, n_out=2))


def test_model_params_error(cube):
    with pytest.raises(TypeError, match="bad parameters for model 'persistence'"):
        cube.nowcast.forecast(model="persistence", model_params={"colour": "red"})
    with pytest.raises(ValueError, match="n_out must be a positive integer"):
        cube.nowcast.forecast(model="persistence", model_params={"n_out": 0})


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_round_trip_keeps_coords_and_attrs(cube, tmp_path, suffix):
    fcs = cube.nowcast.forecast(init_times="all", model_params={"n_out": 3})
    path = tmp_path / f"fc{suffix}"
    save_forecast(fcs, path)
    back = open_forecast(path).load()
    xr.testing.assert_allclose(back, fcs.compute())
    for name in ("init_time", "lead_time", "valid_time", "lat", "lon", "crs"):
        assert back[name].attrs == fcs[name].attrs, name
    assert back.attrs == fcs.attrs
    assert back.lead_time.dtype.kind == "m"
    with pytest.raises(FileExistsError, match="overwrite"):
        save_forecast(fcs, path)
    with pytest.raises(ValueError, match="end the name in .zarr or .nc"):
        save_forecast(fcs, tmp_path / "fc.txt")


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_opened_forecast_can_be_written_again(cube, tmp_path, suffix):
    save_forecast(cube.nowcast.forecast(model_params={"n_out": 2}), tmp_path / f"fc{suffix}")
    back = open_forecast(tmp_path / f"fc{suffix}")
    save_forecast(back, tmp_path / f"again{suffix}")
    again = open_forecast(tmp_path / f"again{suffix}")
    assert again.attrs["grid_mapping"] == "crs" and "grid_mapping_name" in again.crs.attrs
    xr.testing.assert_identical(again.load(), back.load())


def test_opened_zarr_forecast_of_a_large_grid_has_consistent_chunks(tmp_path):
    """zarr chunks 2-D lat/lon 256 x 256 on its own; the opened forecast must still verify."""
    cube = synthetic_radar(n_times=13, size=300, seed=1)
    save_forecast(
        cube.nowcast.forecast(init_times="all", model_params={"n_out": 1}), tmp_path / "fc.zarr"
    )
    back = open_forecast(tmp_path / "fc.zarr")
    assert back.chunksizes["y"] == back.lat.chunksizes["y"]
    scores = xnowcast.verify(back, cube, metrics=["mae"])
    assert scores.mae.sizes == {"init_time": 2, "lead_time": 1}
    np.testing.assert_allclose(
        scores.mae.values[:, 0],
        [float(abs(cube.isel(time=-1) - cube.isel(time=-2)).mean()), np.nan],
        rtol=1e-5,
    )


@pytest.mark.slow
def test_bom_archive_forecast_for_real(bom_cube):
    fc = bom_cube.nowcast.forecast(model="persistence")
    assert fc.sizes == {"lead_time": 24, "y": 512, "x": 512}
    assert str(fc.init_time.values)[:16] == "2018-06-16T16:00"
    assert fc.lead_time.values[0] == np.timedelta64(6, "m")
    assert fc.attrs["units"] == "kg m-2"
    np.testing.assert_array_equal(
        fc.isel(lead_time=-1).values, bom_cube.isel(time=-1).values.astype("float32")
    )
    fcs = bom_cube.nowcast.forecast(
        model="persistence", init_times="all", model_params={"n_out": 2}
    )
    assert fcs.sizes["init_time"] == 61 - 11
    assert float(fcs.isel(init_time=-1, lead_time=0).max()) > 0


def test_model_trained_on_another_step_warns(cube):
    from xnowcast.models.persistence import Persistence

    class SixMinute(Persistence):
        time_step = np.timedelta64(6, "m")

    with pytest.warns(UserWarning, match="trained on a 0 days 00:06:00 time step.*00:05:00"):
        cube.nowcast.forecast(model=SixMinute(n_out=2))


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_written_files_are_cf_coordinates_without_fill_value(cube, tmp_path, suffix):
    """CF allows no missing values in coordinate variables: no _FillValue on x/y/lat/lon."""
    path = tmp_path / f"fc{suffix}"
    save_forecast(cube.nowcast.forecast(model_params={"n_out": 2}), path)
    if suffix == ".nc":
        import netCDF4

        with netCDF4.Dataset(path) as nc:
            fills = {n: "_FillValue" in v.ncattrs() for n, v in nc.variables.items()}
            conventions = nc.getncattr("Conventions")
    else:
        import zarr

        group = zarr.open_group(str(path), mode="r")
        fills = {  # format 2 keeps the CF fill value in fill_value, format 3 in an attribute
            n: a.fill_value is not None and (a.metadata.zarr_format == 2 or "_FillValue" in a.attrs)
            for n, a in group.arrays()
        }
        conventions = group.attrs["Conventions"]
    assert conventions.startswith("CF-")
    assert not any(fills[name] for name in ("x", "y", "lat", "lon")), fills
    assert fills[cube.name]  # the forecast keeps its NaN fill value
    back = open_forecast(path)
    assert np.isnan(back.values).any() and not np.isnan(back.x.values).any()


@pytest.mark.parametrize(
    ("bad", "error"), [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_bad_chunk_init_times_is_refused_not_replaced(cube, bad, error):
    with pytest.raises(error, match=f"chunk_init_times must be a positive integer, got {bad}"):
        cube.nowcast.forecast(init_times="all", chunk_init_times=bad, model_params={"n_out": 2})
