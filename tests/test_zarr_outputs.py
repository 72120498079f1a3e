"""Outputs open everywhere: consolidated zarr format 2 stores that plain xarray decodes cleanly."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xnowcast.batch import forecast_archive
from xnowcast.datasets import synthetic_radar
from xnowcast.io import open_forecast, save_forecast
from xnowcast.io.output import check_zarr_format, consolidate_store


@pytest.fixture(scope="module")
def fc():
    cube = synthetic_radar(n_times=15, size=16, seed=4)
    return cube.nowcast.forecast(n_out=3, init_times="all")


def _open_plain(path: Path, **kwargs) -> xr.Dataset:
    """``xr.open_zarr`` with every warning an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(path, **kwargs)


def _check_decoded(ds: xr.Dataset, fc: xr.DataArray) -> None:
    assert ds["lead_time"].dtype.kind == "m"
    assert ds["init_time"].dtype.kind == "M" and ds["valid_time"].dtype.kind == "M"
    assert {"lat", "lon", "valid_time", "crs"} <= set(ds.coords)
    np.testing.assert_array_equal(ds["valid_time"].values, fc["valid_time"].values)
    np.testing.assert_array_equal(ds[fc.name].values, fc.values)
    assert ds[fc.name].attrs["units"] == fc.attrs["units"]


def test_a_forecast_opens_with_plain_xarray_without_warnings(fc, tmp_path):
    path = save_forecast(fc, tmp_path / "fc.zarr")
    _check_decoded(_open_plain(path), fc)
    # the completion mark is written last and is in the consolidated metadata
    assert "xnowcast_complete" in _open_plain(path).attrs
    assert "xnowcast_complete" in xr.open_zarr(path, consolidated=True).attrs


def test_forecasts_are_zarr_v2_by_default_and_v3_on_request(fc, tmp_path):
    v2 = save_forecast(fc, tmp_path / "v2.zarr")
    assert (v2 / ".zgroup").exists() and (v2 / ".zmetadata").exists()
    assert (v2 / str(fc.name) / ".zarray").exists() and not (v2 / "zarr.json").exists()
    zmeta = json.loads((v2 / ".zmetadata").read_text())["metadata"]
    assert zmeta[f"{fc.name}/.zarray"]["zarr_format"] == 2
    _check_decoded(_open_plain(v2, zarr_format=2), fc)
    v3 = save_forecast(fc, tmp_path / "v3.zarr", zarr_format=3)
    assert (v3 / "zarr.json").exists() and not (v3 / ".zgroup").exists()
    assert "consolidated_metadata" in json.loads((v3 / "zarr.json").read_text())
    _check_decoded(_open_plain(v3), fc)
    xr.testing.assert_identical(open_forecast(v2), open_forecast(v3))


def test_zarr_format_is_checked():
    with pytest.raises(ValueError, match="zarr_format must be 2 or 3"):
        check_zarr_format(4)
    with pytest.raises(ValueError, match="zarr_format must be 2 or 3"):
        check_zarr_format(True)


def test_batch_stores_are_consolidated_v2_while_and_after_running(tmp_path):
    cube = synthetic_radar(n_times=16, size=16, seed=5)
    out = tmp_path / "batch.zarr"
    job = forecast_archive(cube, "persistence", out, n_out=2, chunk_init_times=2)
    assert (out / ".zgroup").exists() and (out / ".zmetadata").exists()
    assert int(_open_plain(out)["forecast_status"].sum()) == 0  # opens before any task ran
    before = (out / ".zmetadata").read_text()
    job.run(progress=False)
    assert (out / ".zmetadata").read_text() == before  # tasks change no metadata ...
    consolidate_store(out)
    assert json.loads((out / ".zmetadata").read_text()) == json.loads(before)  # ... so it holds
    ds = _open_plain(out, zarr_format=2)
    assert (ds["forecast_status"].values == 1).all()
    expected = cube.nowcast.forecast(n_out=2, init_times="all")
    np.testing.assert_array_equal(ds[cube.name].values, expected.values)
    assert ds["lead_time"].dtype.kind == "m"
