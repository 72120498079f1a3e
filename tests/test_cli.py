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
    assert (
        main(
            [
                "forecast",
                str(src),
                "--out",
                str(out),
                "--init-times",
                "all",
                "--n-out",
                "3",
                "--every",
                "10min",
            ]
        )
        == 0
    )
    fc = open_forecast(out)
    assert fc.sizes["lead_time"] == 3
    assert all(np.datetime64(t, "m").astype(int) % 10 == 0 for t in fc.init_time.values)
    assert main(["forecast", str(src), "--out", str(tmp_path / "fc.nc"), "--param", "n_out=2"]) == 0
    assert open_forecast(tmp_path / "fc.nc").sizes["lead_time"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["forecast", "/nonexistent.nc", "--out", "x.nc"], "no such file"),
        (["forecast", "{src}", "--model", "nope", "--out", "x.nc"], "unknown model 'nope'"),
        (["forecast", "{src}", "--var", "nope", "--out", "x.nc"], "'nope' is not in the Dataset"),
        (["forecast", "{src}", "--out", "x.txt"], "end the name in .zarr or .nc"),
        # a bare number was read as nanoseconds: --every 30 thinned nothing, silently
        (
            ["forecast", "{src}", "--out", "x.nc", "--init-times", "all", "--every", "30"],
            "every must be a time interval with a unit",
        ),
        (
            ["forecast", "{src}", "--out", "x.nc", "--init-times", "abc..def"],
            "init_times slice bound: expected times",
        ),
        # OpenCV killed the process (SIGFPE) / printed a traceback on these
        (
            [
                "forecast",
                "{src}",
                "--out",
                "x.nc",
                "--model",
                "optical-flow",
                "--n-in",
                "3",
                "--param",
                "method=dis",
                "--param",
                "patch_size=0",
            ],
            "DIS option patch_size must be a whole number >= 1",
        ),
        (
            [
                "forecast",
                "{src}",
                "--out",
                "x.nc",
                "--model",
                "optical-flow",
                "--n-in",
                "3",
                "--param",
                "win_size=1",
            ],
            "Lucas-Kanade option win_size must be a whole number",
        ),
        (
            ["sequences", "{src}", "--out", "s.csv", "--max-gap", "10"],
            "max_gap must be a time interval with a unit",
        ),
        (
            ["demo", "--out", "d.nc", "--frames", "3", "--size", "16", "--model", "persistence"],
            "--frames 3 is fewer than the 12 input frames",
        ),
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
    result = subprocess.run(
        [sys.executable, "-m", "xnowcast.cli", "forecast", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--model" in result.stdout and "glob" in result.stdout


def test_every_option_is_on_the_cli_page_and_help_texts_are_formatted(capsys):
    """docs/cli.md lists every option of every command; no raw '%%' reaches --help."""
    import argparse
    from pathlib import Path

    from xnowcast.cli import build_parser

    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {opt}"
        for name, parser in sub.choices.items()
        for action in parser._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help" and opt not in page
    ]
    assert not missing, f"options missing from docs/cli.md: {missing}"
    helps = {}
    for name in sub.choices:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        helps[name] = " ".join(capsys.readouterr().out.split())
        assert "%%" not in helps[name], name
    assert "(default %Y%m%d%H%M)" in helps["sequences"]
    assert "'%Y%m%d_%H%M%S'" in helps["forecast"]


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


def test_forecast_cascade_options_as_json_params(tmp_path, cube):
    """Sub-component options reach the model as JSON ``--param`` values and land in the attrs."""
    import json

    src = tmp_path / "cube.nc"
    cube.to_dataset().to_netcdf(src)
    out = tmp_path / "fc.nc"
    argv = ["forecast", str(src), "--out", str(out), "--model", "optical-flow", "--n-out", "2"]
    kwargs = '{"n_levels": 4, "matching": "cdf"}'
    assert main([*argv, "--param", f"extrapolation_kwargs={kwargs}"]) == 0
    params = json.loads(open_forecast(out).attrs["xnowcast_model_params"])
    assert params["extrapolation"] == "cascade"
    assert params["extrapolation_kwargs"] == {"n_levels": 4, "ar_order": 2, "matching": "cdf"}
    plain = tmp_path / "plain.nc"
    argv[3] = str(plain)
    assert main([*argv, "--param", "extrapolation=advection"]) == 0
    assert json.loads(open_forecast(plain).attrs["xnowcast_model_params"])["extrapolation"] == (
        "advection"
    )


def test_multi_init_forecast_writes_no_progress_into_a_log(tmp_path, cube, capsys):
    """A computation long enough for a progress bar writes none into a captured stderr."""
    import time

    from xnowcast.models import register_model
    from xnowcast.models.persistence import Persistence

    class SlowPersistence(Persistence):
        name = "test-slow-persistence"

        def predict(self, inputs):
            time.sleep(0.3 * len(inputs))  # outlasts the 1 s a dask bar waits before drawing
            return super().predict(inputs)

    register_model("test-slow-persistence", SlowPersistence, overwrite=True)
    src = tmp_path / "cube.nc"
    cube.to_dataset().to_netcdf(src)
    args = ["forecast", str(src), "--model", "test-slow-persistence", "--init-times", "all"]
    assert main([*args, "--out", str(tmp_path / "fc.zarr")]) == 0
    assert "\r" not in capsys.readouterr().err  # stderr is captured here, not a terminal


@pytest.mark.parametrize(("fmt", "marker"), [("2", ".zgroup"), ("3", "zarr.json")])
def test_forecast_and_batch_write_the_zarr_format_asked_for(tmp_path, cube, fmt, marker):
    src = tmp_path / "cube.nc"
    cube.to_dataset().to_netcdf(src)
    one, job = tmp_path / "fc.zarr", tmp_path / "job.zarr"
    common = ["--model", "persistence", "--zarr-format", fmt]
    assert main(["forecast", str(src), "--out", str(one), *common]) == 0
    assert (
        main(["batch", str(src), "--out", str(job), "--every", "30min", *common, "--no-progress"])
        == 0
    )
    for store in (one, job):
        assert (store / marker).exists()
    assert open_forecast(one).sizes["lead_time"] == 24
