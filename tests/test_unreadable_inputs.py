"""A damaged input chunk in the Python API ``forecast``: one line naming the time and the store."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xnowcast
from xnowcast.datasets import synthetic_radar
from xnowcast.forecast import FramesToRead, UnreadableInputError, forecast_block
from xnowcast.io.archive import frame_source


@pytest.fixture
def corrupt(tmp_path):
    """A zarr store of one frame per chunk whose frame 17 is corrupt, and the cube it held."""
    cube = synthetic_radar(n_times=20, size=16, seed=2)
    src = tmp_path / "in.zarr"
    cube.to_dataset().to_zarr(
        src, encoding={cube.name: {"chunks": (1, 16, 16)}}, consolidated=False
    )
    (chunk,) = glob.glob(str(src / cube.name / "c" / "17" / "*" / "*"))
    Path(chunk).write_bytes(b"not zstd at all" * 8)
    return src, cube


def _check_message(err: pytest.ExceptionInfo, src: Path, cube) -> None:
    text = str(err.value)
    assert len(text.splitlines()) == 1
    assert text.startswith(f"{src}: input frame {pd.Timestamp(cube.time.values[17])} ")
    assert "could not be read" in text and "damaged" in text


@pytest.mark.parametrize("init_times", ["latest", "one time"])
def test_one_init_time_names_the_frame_and_the_store(corrupt, init_times):
    src, cube = corrupt
    archive = xnowcast.open_archive(src)
    when = "latest" if init_times == "latest" else cube.time.values[18]
    with pytest.raises(UnreadableInputError) as err:
        xnowcast.forecast(archive, init_times=when, n_out=2)
    _check_message(err, src, cube)


def test_several_init_times_name_the_frame_and_the_store_when_computed(corrupt):
    src, cube = corrupt
    archive = xnowcast.open_archive(src)
    fc = xnowcast.forecast(archive, init_times="all", n_out=2, chunk_init_times=3)
    with pytest.raises(UnreadableInputError) as err:
        fc.compute()
    _check_message(err, src, cube)
    # init times whose windows avoid the damaged frame still forecast, equal to the cube's
    ok = xnowcast.forecast(archive, init_times=slice(None, cube.time.values[16]), n_out=2)
    expected = cube.nowcast.forecast(init_times=slice(None, cube.time.values[16]), n_out=2)
    np.testing.assert_array_equal(ok.values, expected.values)


def test_frames_are_read_inside_the_task_and_forecast_the_same(corrupt):
    src, cube = corrupt
    frames = xnowcast.open_archive(src).isel(time=slice(0, 15))
    model = xnowcast.get_model("persistence", n_out=2)
    lazy = forecast_block(FramesToRead(frames), np.array([11, 14]), model)
    eager = forecast_block(cube.values[:15], np.array([11, 14]), model)
    np.testing.assert_array_equal(lazy, eager)


def test_each_frame_of_a_file_archive_names_its_own_file(tmp_path):
    cube = synthetic_radar(n_times=4, size=8, seed=1)
    for i in range(4):
        cube.isel(time=[i]).to_dataset().to_netcdf(tmp_path / f"scan{i}.nc")
    archive = xnowcast.open_archive(str(tmp_path / "scan*.nc"))
    for i in range(4):
        assert frame_source(archive, cube.time.values[i]) == str(tmp_path / f"scan{i}.nc")
    one = xnowcast.open_archive(tmp_path / "scan2.nc")
    assert frame_source(one, cube.time.values[2]) == str(tmp_path / "scan2.nc")
