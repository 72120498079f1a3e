"""The cube data model: finding dims and coordinates, and every validation error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xnowcast.conventions import (
    cell_size,
    find_latlon,
    grid_crs,
    grid_spacing,
    infer_time_step,
    normalize_cube,
)
from xnowcast.datasets import synthetic_radar


def make(dims=("time", "y", "x"), shape=(5, 4, 6), times=None, dtype="float32", **coords):
    data = np.arange(np.prod(shape), dtype="float64").reshape(shape).astype(dtype)
    if times is None:
        times = pd.date_range("2021-01-01", periods=shape[0], freq="5min")
    c = {dims[0]: times, **coords}
    return xr.DataArray(data, dims=dims, coords=c, name="rain")


def test_finds_standard_dims_and_step():
    _cube, info = normalize_cube(make())
    assert (info.time_dim, info.y_dim, info.x_dim) == ("time", "y", "x")
    assert info.step == np.timedelta64(5, "m")


@pytest.mark.parametrize(
    "dims", [("time", "lat", "lon"), ("time", "latitude", "longitude"), ("t", "rlat", "rlon")]
)
def test_finds_dims_by_name(dims):
    _, info = normalize_cube(make(dims=dims))
    assert info.spatial_dims == dims[1:]


def test_finds_dims_by_cf_attributes_not_names():
    da = make(dims=("time", "row", "col"))
    da = da.assign_coords(
        row=("row", np.arange(4.0), {"axis": "Y"}),
        col=("col", np.arange(6.0), {"standard_name": "projection_x_coordinate"}),
    )
    _, info = normalize_cube(da)
    assert info.spatial_dims == ("row", "col")


def test_transposes_to_time_y_x_without_changing_values():
    da = make().transpose("x", "time", "y")
    cube, _ = normalize_cube(da)
    assert cube.dims == ("time", "y", "x")
    xr.testing.assert_identical(cube.transpose(*da.dims), da)


def test_latlon_found_by_standard_name_and_units():
    da = make(dims=("time", "y", "x"))
    da = da.assign_coords(
        phi=(("y", "x"), np.zeros((4, 6)), {"standard_name": "latitude"}),
        lam=(("y", "x"), np.zeros((4, 6)), {"units": "degrees_east"}),
    )
    assert find_latlon(da) == ("phi", "lam")


def test_dataset_var_selection():
    ds = xr.Dataset({"a": make(), "b": make()})
    with pytest.raises(ValueError, match="several gridded variables.*var="):
        normalize_cube(ds)
    cube, _ = normalize_cube(ds, var="b")
    assert cube.name == "b"
    with pytest.raises(ValueError, match="'c' is not in the Dataset.*a, b"):
        normalize_cube(ds, var="c")


def test_not_xarray_is_type_error():
    with pytest.raises(TypeError, match="DataArray or Dataset"):
        normalize_cube(np.zeros((3, 4, 4)))


def test_missing_time_dim():
    da = xr.DataArray(np.zeros((4, 5)), dims=("y", "x"))
    with pytest.raises(ValueError, match="no time dimension.*expand_dims"):
        normalize_cube(da)


def test_non_datetime_time():
    da = make(times=np.arange(5.0))
    with pytest.raises(TypeError, match="datetime64.*float64"):
        normalize_cube(da)


def test_duplicate_times():
    t = pd.to_datetime(
        [
            "2021-01-01 00:00",
            "2021-01-01 00:05",
            "2021-01-01 00:05",
            "2021-01-01 00:10",
            "2021-01-01 00:15",
        ]
    )
    with pytest.raises(ValueError, match="duplicate times.*00:05.*drop_duplicates"):
        normalize_cube(make(times=t))


def test_non_increasing_times():
    t = pd.date_range("2021-01-01", periods=5, freq="5min")[[0, 1, 3, 2, 4]]
    with pytest.raises(ValueError, match="not increasing.*sortby"):
        normalize_cube(make(times=t))


def test_too_few_frames():
    with pytest.raises(ValueError, match="5 frame.*12 are needed"):
        normalize_cube(make(), min_frames=12)


def test_irregular_step_names_the_gap():
    t = pd.to_datetime(
        [
            "2021-01-01 00:00",
            "2021-01-01 00:05",
            "2021-01-01 00:10",
            "2021-01-01 00:17",
            "2021-01-01 00:20",
        ]
    )
    with pytest.raises(ValueError, match="irregular time step.*00:10:00 and .*00:17:00.*7"):
        normalize_cube(make(times=t))


def test_gaps_that_are_multiples_of_the_step_are_allowed():
    t = pd.date_range("2021-01-01", periods=6, freq="5min").delete(3)
    _, info = normalize_cube(make(times=t))
    assert info.step == np.timedelta64(5, "m")


def test_non_numeric_data():
    with pytest.raises(TypeError, match="real numbers.*astype"):
        normalize_cube(make().astype(str))


def test_extra_dims_are_refused_with_fix():
    da = make().expand_dims(member=2)
    with pytest.raises(ValueError, match="extra dims \\['member'\\].*isel"):
        normalize_cube(da)


def test_ambiguous_spatial_dims():
    da = xr.DataArray(
        np.zeros((3, 4, 5)),
        dims=("time", "a", "b"),
        coords={"time": pd.date_range("2021", periods=3, freq="h")},
    )
    with pytest.raises(ValueError, match="which of the dims.*rename"):
        normalize_cube(da)


def test_infer_step_uses_most_common_spacing():
    t = pd.date_range("2021-01-01", periods=10, freq="6min").delete([4, 5])
    assert infer_time_step(t) == np.timedelta64(6, "m")


def test_latlon_derived_from_grid_mapping_unit_aware():
    """x/y in km (as in the BOM files) are scaled to metres before projecting."""
    cube = synthetic_radar(n_times=2, size=16)
    expected_lat = cube.lat.values
    km = cube.drop_vars(["lat", "lon"]).assign_coords(
        x=("x", cube.x.values / 1000, {"standard_name": "projection_x_coordinate", "units": "km"}),
        y=("y", cube.y.values / 1000, {"standard_name": "projection_y_coordinate", "units": "km"}),
    )
    derived, info = normalize_cube(km)
    np.testing.assert_allclose(derived.lat.values, expected_lat, atol=1e-5)
    assert info.lat == "lat" and info.grid_mapping == "crs"
    # The radar is at the centre of the grid.
    assert abs(float(derived.lat[8, 8]) - 52.0) < 0.01


def test_grid_spacing_and_crs():
    cube = synthetic_radar(n_times=2, size=16, resolution_m=2000)
    dy, dx = grid_spacing(cube)
    assert (dy, dx) == (-2000.0, 2000.0)
    assert grid_crs(cube).to_cf()["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    assert grid_spacing(make(dims=("time", "lat", "lon"))) is None


def test_cell_size_of_projected_and_latitude_longitude_grids():
    """A projected grid's spacing as it is; a latitude-longitude grid's cells at its central
    latitude (0.01 degrees: 1112 m north-south, 1112 m x cos(lat) east-west); none without
    coordinates in metres or degrees."""
    from xnowcast.motion.api import pixel_speed_limit

    cube = synthetic_radar(n_times=2, size=16, resolution_m=2000)
    assert cell_size(cube) == grid_spacing(cube) == (-2000.0, 2000.0)
    lat = ("lat", [60.02, 60.01, 60.0, 59.99], {"units": "degrees_north"})
    lon = ("lon", np.linspace(10.0, 10.05, 6), {"units": "degrees_east"})
    geo = make(dims=("time", "lat", "lon"), lat=lat, lon=lon)
    dy, dx = cell_size(geo)
    assert dy == pytest.approx(-1111.95, abs=0.01)
    assert dx == pytest.approx(1111.95 * np.cos(np.deg2rad(60.005)), abs=0.01)  # 556 m
    # 100 m/s for 5 minutes is 30 km: 54 of these 556-m cells per step
    assert pixel_speed_limit(*normalize_cube(geo)) == pytest.approx(30_000 / dx)
    assert cell_size(make()) is None  # pixel indices: no size
    assert pixel_speed_limit(*normalize_cube(make())) is None


def test_grid_mapping_data_variable_is_kept_as_coordinate():
    """A Dataset opened without decode_coords='all' holds the grid mapping as a data variable."""
    cube = synthetic_radar(n_times=2, size=16)
    ds = cube.to_dataset().reset_coords("crs")
    assert "crs" in ds.data_vars
    da, info = normalize_cube(ds)
    assert info.grid_mapping == "crs" and da.attrs["grid_mapping"] == "crs"
    assert grid_crs(da) is not None


def test_latitude_longitude_dims_are_found_as_lat_lon_without_attributes():
    _, info = normalize_cube(
        make(
            dims=("time", "latitude", "longitude"),
            latitude=np.arange(4.0),
            longitude=np.arange(6.0),
        )
    )
    assert (info.lat, info.lon) == ("latitude", "longitude")


def test_unreadable_grid_mapping_warns_and_keeps_the_cube():
    cube = synthetic_radar(n_times=3, size=16).drop_vars(["lat", "lon"])
    cube = cube.assign_coords(crs=((), 0, {"grid_mapping_name": "no_such_projection"}))
    with pytest.warns(UserWarning, match="cannot read the grid mapping 'crs'.*no lat/lon"):
        out, info = normalize_cube(cube)
    assert info.lat is None and info.grid_mapping == "crs"
    xr.testing.assert_identical(out, cube)


# ------------------------------------------------------------- bad input (audit)
def test_timezone_aware_times_are_a_clear_type_error():
    cube = make(times=pd.date_range("2021-01-01", periods=5, freq="5min", tz="UTC"))
    with pytest.raises(TypeError, match=r"timezone-aware.*tz_convert\(None\)"):
        normalize_cube(cube)


def test_normalize_cube_leaves_the_users_dataset_as_it_is():
    """A file opened with decode_coords='all' keeps grid_mapping in the encoding only."""
    ds = synthetic_radar(n_times=3, size=16).to_dataset()
    del ds["precip_intensity"].attrs["grid_mapping"]
    ds["precip_intensity"].encoding["grid_mapping"] = "crs"
    before = dict(ds["precip_intensity"].attrs)
    cube, info = normalize_cube(ds)
    assert info.grid_mapping == "crs" and cube.attrs["grid_mapping"] == "crs"
    assert dict(ds["precip_intensity"].attrs) == before


def test_too_few_frames_names_what_the_caller_needs():
    with pytest.raises(ValueError, match=r"5 frame\(s\).*6 are needed \(n_flows=5 pairs\)"):
        normalize_cube(make(), min_frames=6, need="n_flows=5 pairs")


def test_as_times_refuses_numbers_timezones_and_non_dates():
    from xnowcast.conventions import as_times

    assert list(as_times(["2021-01-01 00:05", np.datetime64("2021-01-01T00:10")])) == [
        pd.Timestamp("2021-01-01 00:05"),
        pd.Timestamp("2021-01-01 00:10"),
    ]
    with pytest.raises(TypeError, match="expected times.*by position"):
        as_times(5, "init_times")
    with pytest.raises(TypeError, match="expected times"):
        as_times(None, "init_times")
    with pytest.raises(TypeError, match="timezone-aware"):
        as_times(pd.Timestamp("2021-01-01", tz="UTC"), "init_times")
    with pytest.raises(ValueError, match="expected times.*'soon'"):
        as_times("soon", "init_times")


@pytest.mark.parametrize("bad", [30, 30.0, "30", " 10 "])
def test_as_interval_refuses_bare_numbers(bad):
    """pandas reads a bare number as nanoseconds; a user means minutes or seconds."""
    from xnowcast.conventions import as_interval

    with pytest.raises(ValueError, match="with a unit.*bare number"):
        as_interval(bad, "every")
    assert as_interval("30min", "every") == pd.Timedelta(minutes=30)
