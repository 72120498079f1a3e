"""The xnowcast command line: every subcommand, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from xnowcast.cli import main
from xnowcast.io import open_forecast


def test_models(capsys):
    assert main(["models"]) == 0
    assert "persistence" in capsys.readouterr().out.split()


def test_demo_writes_a_forecast(tmp_path, capsys):
    out = tmp_path / "demo.nc"
    assert main(["demo", "--out", str(out), "--size", "48", "--frames", "14"]) == 0
    fc = open_forecast(out)
    assert fc.dims == ("lead_time", "y", "x") and fc.sizes["lead_time"] == 24
    assert fc.attrs["xnowcast_model"] == "optical-flow"
    captured = capsys.readouterr()
    assert "wrote" not in captured.err
    # The demo scores its forecast against the generated truth and persistence.
    lines = captured.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("lead"))
    assert "MAE (persistence)" in lines[header] and "CSI" in lines[header]
    assert lines[header + 1].split()[:2] == ["5", "min"]


def test_forecast_glob_to_zarr_and_nc(tmp_path, cube):
    src = tmp_path / "cube.nc"
    cube.to_dataset().to_netcdf(src)
    out = tmp_path / "fc.zarr"
    assert main(["forecast", str(src), "--out", str(out), "--init-times", "all",
                 "--n-out", "3", "--every", "10min"]) == 0
    fc = open_forecast(out)
    assert fc.sizes["lead_time"] == 3
    assert all(np.datetime64(t, "m").astype(int) % 10 == 0 for t in fc.init_time.values)
    assert main(["forecast", str(src), "--out", str(tmp_path / "fc.nc"),
                 "--param", "n_out=2"]) == 0
    assert open_forecast(tmp_path / "fc.nc").sizes["lead_time"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["forecast", "/nonexistent.nc", "--out", "x.nc"], "no such file"),
        (["forecast", "{src}", "--model", "nope", "--out", "x.nc"], "unknown model 'nope'"),
        (["forecast", "{src}", "--var", "nope", "--out", "x.nc"], "'nope' is not in the Dataset"),
        (["forecast", "{src}", "--out", "x.txt"], "end the name in .zarr or .nc"),
    ],
)
def test_bad_input_one_line_error(tmp_path, cube, capsys, args, message):
    src = tmp_path / "cube.nc"
    cube.to_dataset().to_netcdf(src)
    args = [a.format(src=src) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "xnowcast.cli", "forecast", "--help"],
                            capture_output=True, text=True, check=True)
    assert "--model" in result.stdout and "glob" in result.stdout


def test_forecast_takes_several_files_as_from_an_unquoted_glob(tmp_path):
    """`xnowcast forecast radar/*.nc` (unquoted): the shell passes every file."""
    from xnowcast.datasets import synthetic_radar

    small = synthetic_radar(n_times=14, size=16, seed=1)
    paths = []
    for i in range(small.sizes["time"]):  # one file per scan, time in a scalar variable
        scan = small.isel(time=i).drop_vars(["time", "lat", "lon"]).to_dataset()
        scan["valid_time"] = ((), small.time.values[i], {"standard_name": "time"})
        paths.append(tmp_path / f"scan_{i:02d}.nc")
        scan.to_netcdf(paths[-1])
    out = tmp_path / "fc.nc"
    assert main(["forecast", *map(str, paths), "--out", str(out), "--n-out", "2"]) == 0
    fc = open_forecast(out)
    assert fc.init_time.values == small.time.values[-1]
    np.testing.assert_array_equal(fc.isel(lead_time=0).values, small.isel(time=-1).values)


def test_non_netcdf_input_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not radar\n")
    assert main(["forecast", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "x.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert "could not be read" in err and "notes.txt" in err and len(err.splitlines()) == 1
