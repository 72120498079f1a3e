"""open_archive: per-scan netCDF archives, zarr stores, multi-time files, and bad archives."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xnowcast
from xnowcast.datasets import synthetic_radar
from xnowcast.io import open_archive, parse_time_from_name


def write_scans(tmp_path, cube, *, with_time=True, name="scan_%Y%m%d_%H%M.nc"):
    """Write a cube as one netCDF file per scan (no time dimension)."""
    paths = []
    for t in cube.time.values:
        frame = cube.sel(time=t).drop_vars("time").drop_vars(["lat", "lon"])
        ds = frame.to_dataset()
        if with_time:
            ds["valid_time"] = ((), t, {"standard_name": "time"})
        path = tmp_path / pd.Timestamp(t).strftime(name)
        ds.to_netcdf(path)
        paths.append(path)
    return paths


@pytest.fixture
def small():
    return synthetic_radar(n_times=6, size=16, seed=1)


def test_per_scan_files_time_from_variable(tmp_path, small):
    write_scans(tmp_path, small)
    cube = open_archive(str(tmp_path / "*.nc"))
    assert cube.dims == ("time", "y", "x") and cube.chunks is not None
    np.testing.assert_array_equal(cube.time.values, small.time.values)
    np.testing.assert_allclose(cube.values, small.values)
    # lat/lon derived from the grid mapping, the grid mapping kept.
    np.testing.assert_allclose(cube.lat.values, small.lat.values, atol=1e-5)
    assert cube.attrs["grid_mapping"] == "crs" and "grid_mapping_name" in cube.crs.attrs
    assert cube.attrs["units"] == "mm h-1"


def test_files_given_out_of_order_are_sorted(tmp_path, small):
    paths = write_scans(tmp_path, small)
    cube = open_archive(list(reversed(paths)))
    assert pd.DatetimeIndex(cube.time.values).is_monotonic_increasing


def test_time_from_file_name(tmp_path, small):
    write_scans(tmp_path, small, with_time=False)
    with pytest.raises(ValueError, match="no time found.*time='%Y%m%d_%H%M%S'"):
        open_archive(str(tmp_path / "*.nc"))
    cube = open_archive(str(tmp_path / "*.nc"), time="%Y%m%d_%H%M")
    np.testing.assert_array_equal(cube.time.values, small.time.values)


def test_parse_time_from_name_errors():
    with pytest.raises(ValueError, match="no part matching"):
        parse_time_from_name("radar_latest.nc", "%Y%m%d")


def test_duplicate_times_list_files(tmp_path, small):
    paths = write_scans(tmp_path, small)
    shutil.copy(paths[2], tmp_path / "copy_of_third.nc")
    with pytest.raises(ValueError, match="occur more than once.*copy_of_third.nc"):
        open_archive(str(tmp_path / "*.nc"))


def test_unreadable_files_are_listed(tmp_path, small):
    write_scans(tmp_path, small)
    (tmp_path / "broken.nc").write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="1 of 7 file.*broken.nc"):
        open_archive(str(tmp_path / "*.nc"))


def test_mixed_grids_are_listed(tmp_path, small):
    write_scans(tmp_path, small)
    other = synthetic_radar(n_times=1, size=20, start="2030-01-01")
    write_scans(tmp_path, other, name="odd_%Y%m%d_%H%M.nc")
    with pytest.raises(ValueError, match="different grids.*y=16.*y=20.*odd_20300101"):
        open_archive(str(tmp_path / "*.nc"))


def test_missing_input():
    with pytest.raises(FileNotFoundError, match="no files match"):
        open_archive("/nonexistent/*.nc")
    with pytest.raises(FileNotFoundError, match="no such file"):
        open_archive("/nonexistent/file.nc")


def test_wrong_variable_names_the_valid_ones(tmp_path, small):
    write_scans(tmp_path, small)
    with pytest.raises(ValueError, match="'rain' is not in the Dataset.*precip_intensity"):
        open_archive(str(tmp_path / "*.nc"), var="rain")


def test_zarr_store_and_multi_time_file(tmp_path, small):
    small.to_dataset().to_zarr(tmp_path / "cube.zarr")
    small.to_dataset().to_netcdf(tmp_path / "cube.nc")
    for path in (tmp_path / "cube.zarr", tmp_path / "cube.nc"):
        cube = open_archive(path)
        xr.testing.assert_allclose(cube.reset_coords(drop=True), small.reset_coords(drop=True))
        assert cube.chunks is not None


@pytest.mark.parametrize("source", ["scans", "cube.nc", "cube.zarr"])
def test_opened_archive_can_be_written_with_xarray(tmp_path, small, source):
    """grid_mapping in both attrs and encoding makes xarray refuse to_netcdf/to_zarr."""
    if source == "scans":
        write_scans(tmp_path, small)
        path = str(tmp_path / "*.nc")
    else:
        path = tmp_path / source
        getattr(small.to_dataset(), "to_zarr" if source.endswith("zarr") else "to_netcdf")(path)
    cube = open_archive(path)
    assert cube.attrs["grid_mapping"] == "crs"
    cube.to_dataset().to_netcdf(tmp_path / "copy.nc")
    cube.to_dataset().to_zarr(tmp_path / "copy.zarr")
    for copy in ("copy.nc", "copy.zarr"):
        back = open_archive(tmp_path / copy)
        assert back.attrs["grid_mapping"] == "crs" and "grid_mapping_name" in back.crs.attrs
        np.testing.assert_allclose(back.values, small.values)


@pytest.mark.slow
def test_bom_archive(bom_glob):
    start = time.perf_counter()
    cube = xnowcast.open_archive(bom_glob)
    elapsed = time.perf_counter() - start
    assert cube.sizes == {"time": 61, "y": 512, "x": 512}
    assert cube.chunks[0] == (1,) * 61  # lazy, one chunk per file
    assert cube.attrs["units"] == "kg m-2"
    assert str(cube.time.values[0])[:19] == "2018-06-16T10:00:00"
    assert (np.diff(cube.time.values) == np.timedelta64(6, "m")).all()
    # x/y are in km in the files: lat/lon come from the Albers grid mapping.
    assert cube.lat.shape == (512, 512)
    assert -39.2 < float(cube.lat.min()) < float(cube.lat.max()) < -36.5
    assert 143.0 < float(cube.lon.min()) < float(cube.lon.max()) < 146.5
    centre = cube.isel(y=256, x=256)
    assert abs(float(centre.lat) + 37.852) < 0.01 and abs(float(centre.lon) - 144.752) < 0.01
    assert elapsed < 60  # generous: the real number is in the docs


@pytest.mark.slow
def test_shared_cubes_open(radar_dir):
    for name, shape in (("mch-20150515.nc", (40, 640, 710)), ("knmi-201008.nc", (92, 765, 700))):
        cube = open_archive(radar_dir / name)
        assert cube.shape == shape and cube.attrs["grid_mapping"] == "crs"
        assert cube.nowcast.validate().step == np.timedelta64(5, "m")


def test_unreadable_file_and_plain_folder_are_one_line_each(tmp_path, small):
    """Backend errors can span lines (xarray's lists URLs); the report keeps one per file."""
    (tmp_path / "notes.txt").write_text("not radar data\n")
    with pytest.raises(ValueError, match="1 of 1 file.*notes.txt") as info:
        open_archive(tmp_path / "notes.txt")
    assert "\n" not in str(info.value)
    (tmp_path / "scans").mkdir()
    with pytest.raises(ValueError, match="a folder, not a zarr store.*'folder/\\*.nc'"):
        open_archive(tmp_path / "scans")


def test_paths_of_the_wrong_type_are_clear(cube):
    with pytest.raises(TypeError, match="paths must be a file, a zarr store, a glob"):
        open_archive(5)
    with pytest.raises(TypeError, match="pass the cube itself"):
        open_archive(cube)


def test_save_forecast_takes_a_dataset_of_one_forecast_and_refuses_arrays(cube, tmp_path):
    from xnowcast.io import open_forecast, save_forecast

    fc = cube.nowcast.forecast(model_params={"n_in": 2, "n_out": 2})
    save_forecast(fc.to_dataset(), tmp_path / "fc.nc")
    assert open_forecast(tmp_path / "fc.nc").sizes["lead_time"] == 2
    with pytest.raises(TypeError, match="expected an xarray DataArray or Dataset"):
        save_forecast(fc.values, tmp_path / "fc2.nc")
