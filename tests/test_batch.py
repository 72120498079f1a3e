"""Batch jobs: same values as forecast(), resume after SIGKILL, store checks, memory, failures."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xnowcast
from xnowcast.batch import BatchJob, StoreMismatchError, forecast_archive
from xnowcast.batch import tasks as batch_tasks
from xnowcast.batch.store import DONE, ERROR, FAILED, MISSING, SIGNATURE_ATTR, STATUS
from xnowcast.cli import main
from xnowcast.datasets import synthetic_radar
from xnowcast.io.archive import open_zarr_store
from xnowcast.models import NowcastModel, register_model

REPO = Path(__file__).resolve().parents[1]

SLOW_MODEL = '''
import os, time
from xnowcast.models import register_model
from xnowcast.models.persistence import Persistence


@register_model("slow-persistence", overwrite=True)
class SlowPersistence(Persistence):
    """Persistence, scaled, sleeping $XN_SLOW_SECONDS per call (crash tests)."""

    name = "slow-persistence"

    def predict(self, inputs):
        time.sleep(float(os.environ.get("XN_SLOW_SECONDS", "0")))
        return super().predict(inputs) * 1.5 + 0.25
'''


def _lazy_cube(n_times=40, size=48, seed=1, gap=True):
    cube = synthetic_radar(n_times=n_times, size=size, seed=seed, chunks={"time": 5})
    return cube.drop_isel(time=[22]) if gap else cube


def _open(path) -> xr.Dataset:
    return open_zarr_store(path, decode_coords="all")


def _assert_same_store(a, b):
    """Bit-for-bit equal data, completion record and coordinates (attrs but history)."""
    da, db = _open(a), _open(b)
    assert set(da.variables) == set(db.variables)
    for name in da.variables:
        va, vb = da[name].values, db[name].values
        if va.dtype.kind == "f":
            assert va.tobytes() == vb.tobytes(), name
        else:
            np.testing.assert_array_equal(va, vb, err_msg=name)
    for name in da.data_vars:
        ta = {k: v for k, v in da[name].attrs.items() if k != "history"}
        tb = {k: v for k, v in db[name].attrs.items() if k != "history"}
        assert json.dumps(ta, sort_keys=True, default=str) == json.dumps(
            tb, sort_keys=True, default=str
        )


@pytest.mark.parametrize("lazy", [True, False], ids=["dask-cube", "numpy-cube"])
def test_same_values_coords_and_attrs_as_forecast_all(tmp_path, lazy):
    cube = _lazy_cube()
    if not lazy:
        cube = cube.compute()
    job = forecast_archive(
        cube,
        "persistence",
        tmp_path / "fc.zarr",
        every="10min",
        chunk_init_times=3,
        model_params={"n_out": 3, "n_in": 4},
    )
    summary = job.run(progress=False)
    ref = xnowcast.forecast(
        cube,
        "persistence",
        init_times="all",
        every="10min",
        chunk_init_times=3,
        model_params={"n_out": 3, "n_in": 4},
    ).compute()
    assert summary.done == ref.sizes["init_time"] == len(job.init_times)
    assert summary.skipped == 0 and summary.failed == []
    got = job.open().compute()
    assert got.dims == ref.dims and got.name == ref.name
    assert got.values.tobytes() == ref.values.tobytes()
    for name in ("init_time", "lead_time", "valid_time", "lat", "lon", "x", "y", "crs"):
        xr.testing.assert_identical(
            got[name].reset_coords(drop=True), ref[name].reset_coords(drop=True)
        )
    assert {k: v for k, v in got.attrs.items() if k != "history"} == {
        k: v for k, v in ref.attrs.items() if k != "history"
    }
    ds = _open(job.store)
    assert (ds[STATUS].values == DONE).all() and (ds[ERROR].values == "").all()
    # Each task owns whole chunks along init_time.
    assert ds[ref.name].encoding["chunks"][0] == 3
    assert ds[STATUS].encoding["chunks"] == (3,)
    signature = json.loads(ds.attrs[SIGNATURE_ATTR])
    assert signature["model"] == "persistence" and signature["chunk_init_times"] == 3


def test_optical_flow_equals_forecast(tmp_path):
    if "optical-flow" not in xnowcast.list_models():
        pytest.skip("optical-flow is not registered")
    cube = _lazy_cube(n_times=24, size=48, gap=False)
    params = {"model_params": {"n_in": 3, "n_out": 2, "n_flows": 2}}
    job = forecast_archive(
        cube, "optical-flow", tmp_path / "of.zarr", every="15min", chunk_init_times=2, **params
    )
    assert job.run(progress=False).done == 7
    ref = xnowcast.forecast(
        cube, "optical-flow", init_times="all", every="15min", chunk_init_times=2, **params
    )
    assert job.open().values.tobytes() == ref.values.tobytes()
    # Resuming compares parameters such as fill=nan correctly.
    again = forecast_archive(
        cube, "optical-flow", tmp_path / "of.zarr", every="15min", chunk_init_times=2, **params
    )
    assert again.run(progress=False).skipped == 7


def test_resume_after_sigkill_recomputes_only_what_is_missing(tmp_path, monkeypatch):
    (tmp_path / "slowmodel.py").write_text(SLOW_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    import slowmodel  # noqa: F401  (registers "slow-persistence" here too)

    src = tmp_path / "radar.nc"
    _lazy_cube(n_times=40, size=40, gap=False).to_dataset().to_netcdf(src)
    out, clean = tmp_path / "killed.zarr", tmp_path / "clean.zarr"
    args = [
        "batch",
        str(src),
        "--model",
        "slow-persistence",
        "--n-in",
        "2",
        "--n-out",
        "2",
        "--chunk-init-times",
        "3",
        "--no-progress",
    ]
    code = "import sys, slowmodel; from xnowcast.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {
        **os.environ,
        "XN_SLOW_SECONDS": "0.4",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args, "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    total = 39
    try:
        deadline = time.monotonic() + 60
        recorded = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists():
                recorded = int((_open(out)[STATUS].values != MISSING).sum())
                if recorded >= 6:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    status = _open(out)[STATUS].values
    recorded = int((status != MISSING).sum())
    assert 6 <= recorded < total
    # A task killed between writing its data and its record leaves data without a record:
    # simulate it with garbage in a missing chunk; the rerun must replace it.
    first_missing = int(np.argmax(status == MISSING))
    start = first_missing - first_missing % 3
    garbage = xr.Dataset(
        {
            "precip_intensity": (
                ("init_time", "lead_time", "y", "x"),
                np.full((3, 2, 40, 40), 7.0, np.float32),
            )
        }
    )
    garbage.to_zarr(
        out, region={"init_time": slice(start, start + 3)}, mode="r+", consolidated=False
    )

    monkeypatch.setenv("XN_SLOW_SECONDS", "0")
    cube = xnowcast.open_archive(src)
    resumed = forecast_archive(
        cube, "slow-persistence", out, chunk_init_times=3, model_params={"n_in": 2, "n_out": 2}
    ).run(progress=False)
    assert resumed.skipped == recorded and resumed.done == total - recorded
    forecast_archive(
        cube, "slow-persistence", clean, chunk_init_times=3, model_params={"n_in": 2, "n_out": 2}
    ).run(progress=False)
    _assert_same_store(out, clean)
    assert not glob.glob(str(tmp_path / "*.partial-*"))


def test_task_threads_limit_the_libraries_of_a_worker_process(tmp_path):
    pytest.importorskip("cv2")
    pytest.importorskip("torch")
    code = textwrap.dedent("""
        import json, sys
        import cv2, torch, zarr
        import xnowcast
        from xnowcast.batch import forecast_archive
        cube = xnowcast.datasets.synthetic_radar(n_times=14, size=32)
        forecast_archive(cube, "optical-flow", sys.argv[1], model_params={"n_out": 2}, threads=1,
                         client="sync").run(progress=False)
        print(json.dumps([cv2.getNumThreads(), torch.get_num_threads(),
                          zarr.config.get("threading.max_workers")]))
    """)
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "fc.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [1, 1, 1]


def test_a_job_resumes_with_other_run_settings(tmp_path):
    """Run settings (batch size, device, threads) are not the job's identity (issue 14)."""
    pytest.importorskip("torch")
    from xnowcast.models.neural.checkpoint import save_checkpoint

    net = xnowcast.get_model("unet", n_in=3, n_out=2, depth=1, filters=4)
    meta = {"architecture": "unet", "model_params": {"depth": 1, "filters": 4}, "n_in": 3}
    path = save_checkpoint(tmp_path / "u.pt", net.module.state_dict(), {**meta, "n_out": 2})
    cube, out = _lazy_cube(n_times=20, size=32, gap=False), tmp_path / "fc.zarr"
    first = forecast_archive(cube, str(path), out, chunk_init_times=4, batch_size=8, device="cpu")
    first.run(progress=False)
    again = forecast_archive(cube, str(path), out, chunk_init_times=4, batch_size=16, threads=1)
    assert again.status().complete
    assert "batch_size" not in again.open().attrs["xnowcast_model_params"]


def test_checkpoint_path_of_a_neural_model(tmp_path):
    pytest.importorskip("torch")
    from xnowcast.models.neural.checkpoint import save_checkpoint

    net = xnowcast.get_model("unet", n_in=3, n_out=2, depth=1, filters=4)
    path = save_checkpoint(
        tmp_path / "unet.pt",
        net.module.state_dict(),
        {
            "architecture": "unet",
            "model_params": {"depth": 1, "filters": 4},
            "n_in": 3,
            "n_out": 2,
            "transform": {"name": "log"},
        },
    )
    cube = _lazy_cube(n_times=20, size=32, gap=False)
    # One thread: CPU convolutions may round differently when split over threads.
    run = {"device": "cpu", "threads": 1}
    job = forecast_archive(cube, str(path), tmp_path / "fc.zarr", chunk_init_times=4, **run)
    assert job.run(progress=False).done == 18
    ref = xnowcast.forecast(cube, str(path), init_times="all", chunk_init_times=4, **run)
    got = job.open()
    assert got.values.tobytes() == ref.values.tobytes()
    assert got.attrs["xnowcast_model"] == "unet"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": "other-model"}, "model 'persistence' in the store, 'other-model' now"),
        ({"model_params": {"n_out": 4}}, "model parameter n_out=3 in the store, 4 now"),
        ({"every": "15min"}, "init times: 29 from"),
        ({"chunk_init_times": 5}, "chunk_init_times 4 in the store, 5 now"),
        ({"crop": True}, "grid: ['y', 'x'] [48, 48] in the store"),
    ],
)
def test_refuses_a_store_of_another_job_unless_overwrite(tmp_path, change, message):
    @register_model("other-model", overwrite=True)
    class Other(NowcastModel):
        name = "other-model"

        def predict(self, inputs):
            return np.repeat(inputs[:, -1:] + 1, self.n_out, axis=1)

    cube = _lazy_cube(gap=False)
    out = tmp_path / "fc.zarr"
    base = dict(model="persistence", model_params={"n_out": 3}, chunk_init_times=4, every=None)
    forecast_archive(cube, out=out, **base).run(progress=False)
    kwargs = {**base, **change}
    other_cube = cube.isel(x=slice(0, 40)) if kwargs.pop("crop", False) else cube
    with pytest.raises(StoreMismatchError, match="made by another job") as info:
        forecast_archive(other_cube, out=out, **kwargs)
    assert message in str(info.value) and "overwrite=True" in str(info.value)
    # The refused store is untouched; overwrite=True replaces it.
    assert (_open(out)[STATUS].values == DONE).all()
    job = forecast_archive(other_cube, out=out, overwrite=True, **kwargs)
    assert (_open(out)[STATUS].values == MISSING).all()
    assert job.run(progress=False).done == len(job.init_times)


def test_same_job_resumes_and_foreign_path_is_refused(tmp_path):
    cube = _lazy_cube(gap=False)
    out = tmp_path / "fc.zarr"
    first = forecast_archive(cube, "persistence", out, model_params={"n_out": 2}).run(
        progress=False
    )
    assert (
        forecast_archive(cube, "persistence", out, model_params={"n_out": 2})
        .run(progress=False)
        .skipped
        == 29
    )
    again = forecast_archive(
        cube, "persistence", out, overwrite=True, model_params={"n_out": 2}
    )  # start over
    assert again.run(progress=False).done == first.done == 29
    (tmp_path / "other.zarr").mkdir()
    with pytest.raises(FileExistsError, match="not an xnowcast batch store"):
        forecast_archive(cube, "persistence", tmp_path / "other.zarr")


class _FailOnMarker(NowcastModel):
    """Persistence that raises for windows whose last frame holds the marker value."""

    name = "fail-on-marker"

    def predict(self, inputs):
        if (inputs[:, -1] == -999).any():
            raise RuntimeError("marker frame")
        return np.repeat(inputs[:, -1:], self.n_out, axis=1)


def test_failures_are_recorded_and_the_rest_completes(tmp_path):
    cube = synthetic_radar(n_times=40, size=32, seed=2)
    cube[20:23] = np.nan  # the windows of n_in=3 ending at frame 22: all NaN
    cube[30, 0, 0] = -999  # the model raises on the window ending at frame 30
    src = tmp_path / "radar.zarr"
    cube.to_dataset().to_zarr(
        src, encoding={cube.name: {"chunks": (1, 32, 32)}}, consolidated=False
    )
    (chunk_file,) = glob.glob(str(src / cube.name / "c" / "10" / "*" / "*"))
    Path(chunk_file).write_bytes(b"not zstd at all" * 8)  # frame 10 is corrupt
    archive = xnowcast.open_archive(src)
    times = archive.time.values

    job = forecast_archive(
        archive,
        _FailOnMarker(n_in=3, n_out=2),
        tmp_path / "fc.zarr",
        chunk_init_times=4,
        retries=1,
        retry_delay=0.01,
    )
    summary = job.run(progress=False)
    failed = dict(summary.failed)
    unreadable = {pd.Timestamp(times[i]) for i in (10, 11, 12)}
    all_nan = {pd.Timestamp(times[22])}
    model_error = {pd.Timestamp(times[30])}
    assert set(failed) == unreadable | all_nan | model_error
    when = np.datetime_as_string(times[10], unit="s")
    assert all(
        f"input frame {when} could not be read (RuntimeError" in failed[t] for t in unreadable
    )
    assert "all 3 input frames" in failed[pd.Timestamp(times[22])]
    assert (
        "model 'fail-on-marker' failed (RuntimeError: marker frame)"
        in failed[pd.Timestamp(times[30])]
    )
    assert summary.done == len(job.init_times) - len(failed)

    status = job.status()
    assert status.complete and status.done == summary.done
    assert int((_open(job.store)[STATUS].values == FAILED).sum()) == len(failed)
    assert dict(status.failed.items()) == failed
    # The other forecasts are those of an intact archive.
    got = job.open()
    ok = ~np.isin(got.init_time.values, pd.DatetimeIndex(list(failed)).values)
    assert ok.sum() == summary.done
    ref = xnowcast.forecast(
        cube, _FailOnMarker(n_in=3, n_out=2), init_times=list(got.init_time.values[ok])
    )
    np.testing.assert_array_equal(got.values[ok], ref.values)
    assert np.isnan(got.values[~ok]).all()
    # A rerun skips recorded failures unless asked to retry them.
    assert job.run(progress=False).skipped == len(job.init_times)
    retried = job.run(progress=False, retry_failed=True)
    assert set(dict(retried.failed)) == set(failed)


def test_transient_errors_are_retried(tmp_path, monkeypatch):
    calls = {"n": 0}
    read = batch_tasks.FrameSource.read

    def flaky(self, index=None):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError("NFS hiccup")
        return read(self, index)

    monkeypatch.setattr(batch_tasks.FrameSource, "read", flaky)
    job = forecast_archive(
        _lazy_cube(gap=False),
        "persistence",
        tmp_path / "fc.zarr",
        chunk_init_times=100,
        retries=2,
        retry_delay=0.01,
        client="sync",
        model_params={"n_out": 2},
    )
    summary = job.run(progress=False)
    assert summary.failed == [] and summary.done == 29 and calls["n"] == 3


def test_model_loaded_once_per_process_not_per_task(tmp_path):
    built = []

    @register_model("counted", overwrite=True)
    class Counted(NowcastModel):
        name = "counted"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            built.append(1)

        def predict(self, inputs):
            return np.repeat(inputs[:, -1:], self.n_out, axis=1)

    job = forecast_archive(
        _lazy_cube(gap=False),
        "counted",
        tmp_path / "fc.zarr",
        chunk_init_times=2,
        model_params={"n_out": 2},
    )
    assert job.n_tasks == 15
    assert job.run(progress=False).done == 29
    assert len(built) == 1


def test_local_cluster_and_scheduler_address_give_the_same_store(tmp_path):
    distributed = pytest.importorskip("distributed")
    cube = _lazy_cube()
    kwargs = dict(model="persistence", model_params={"n_out": 2}, chunk_init_times=5)
    forecast_archive(cube, out=tmp_path / "threads.zarr", **kwargs).run(progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            job = forecast_archive(cube, out=tmp_path / "client.zarr", client=client, **kwargs)
            assert job.run(progress=False).done == len(job.init_times)
        job = forecast_archive(
            cube, out=tmp_path / "address.zarr", client=cluster.scheduler_address, **kwargs
        )
        assert job.run(progress=False).done == len(job.init_times)
    _assert_same_store(tmp_path / "threads.zarr", tmp_path / "client.zarr")
    _assert_same_store(tmp_path / "threads.zarr", tmp_path / "address.zarr")


MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys
    import xnowcast
    from xnowcast.batch import forecast_archive

    def status(key):  # kB values of /proc/self/status (VmRSS: now, VmHWM: peak)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

    cube = xnowcast.open_archive(sys.argv[1])
    # One thread, so that the peak does not depend on how two threads interleave.
    kwargs = dict(model_params={"n_in": 3, "n_out": 2}, every="1h", chunk_init_times=4,
              client="sync")
    # Warm up (imports, codecs) on a few init times, then measure the full job.
    warm = forecast_archive(cube, "persistence", sys.argv[2] + "-warm",
                            init_times=cube.time.values[12:60], **kwargs)
    warm.run(progress=False)
    job = forecast_archive(cube, "persistence", sys.argv[2], **kwargs)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident set
    before = status("VmRSS:")
    summary = job.run(progress=False)
    print(json.dumps({"before": before, "peak": status("VmHWM:"), "done": summary.done,
                      "failed": len(summary.failed)}))
""")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_memory_is_bounded_by_the_chunk_not_the_archive(tmp_path):
    import dask.array as dsa

    n, size = 1200, 256
    data = dsa.random.default_rng(0).random(
        (n, size, size), chunks=(8, size, size), dtype=np.float32
    )
    archive = xr.DataArray(
        data,
        dims=("time", "y", "x"),
        name="rain",
        coords={"time": pd.date_range("2024-01-01", periods=n, freq="5min")},
    )
    src = tmp_path / "archive.zarr"
    archive.to_dataset().to_zarr(src, consolidated=False)
    archive_bytes = n * size * size * 4  # 315 MB
    run = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(src), str(tmp_path / "o.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["done"] == len(range(12, n, 12)) and result["failed"] == 0
    growth = result["peak"] - result["before"]
    print(f"archive {archive_bytes / 2**20:.0f} MiB, job peak RSS growth {growth / 2**20:.0f} MiB")
    assert growth < archive_bytes / 4, (growth / 2**20, archive_bytes / 2**20)


def test_cli_batch_runs_resumes_and_reports(tmp_path, capsys):
    src = tmp_path / "radar.nc"
    _lazy_cube(gap=False).to_dataset().to_netcdf(src)
    out = tmp_path / "fc.zarr"
    args = [
        "batch",
        str(src),
        "--model",
        "persistence",
        "--out",
        str(out),
        "--every",
        "10min",
        "--chunk-init-times",
        "4",
        "--param",
        "n_out=2",
        "--no-progress",
    ]
    assert main(args) == 0
    assert "14 done, 0 skipped" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 done, 14 skipped" in capsys.readouterr().out
    assert main([*args[:-1], "--n-in", "6"]) == 2
    err = capsys.readouterr().err.strip()
    assert "model parameter n_in=12 in the store, 6 now" in err and len(err.splitlines()) == 1
    assert main([*args, "--scheduler", "tcp://x:1", "--workers", "2"]) == 2
    assert "not both" in capsys.readouterr().err


def test_bad_arguments_are_clear(tmp_path):
    cube = _lazy_cube(gap=False)
    with pytest.raises(ValueError, match="chunk_init_times must be a positive integer"):
        forecast_archive(cube, "persistence", tmp_path / "a.zarr", chunk_init_times=0)
    with pytest.raises(ValueError, match="local or shared filesystem"):
        forecast_archive(cube, "persistence", "s3://bucket/a.zarr")
    job = forecast_archive(cube, "persistence", tmp_path / "b.zarr", client=42)
    assert isinstance(job, BatchJob)
    with pytest.raises(TypeError, match="scheduler address"):
        job.run(progress=False)


def test_task_with_no_readable_frame_is_recorded_in_the_store(tmp_path):
    """Every frame of the first task corrupt: its init times fail in the store too."""
    cube = synthetic_radar(n_times=12, size=16, seed=4)
    src = tmp_path / "radar.zarr"
    cube.to_dataset().to_zarr(
        src, encoding={cube.name: {"chunks": (1, 16, 16)}}, consolidated=False
    )
    for i in range(4):  # frames 0-3: all the frames of the task of init times 2 and 3
        (chunk_file,) = glob.glob(str(src / cube.name / "c" / str(i) / "*" / "*"))
        Path(chunk_file).write_bytes(b"not zstd at all" * 8)
    archive = xnowcast.open_archive(src)
    job = forecast_archive(
        archive,
        "persistence",
        tmp_path / "fc.zarr",
        chunk_init_times=2,
        retries=0,
        client="sync",
        model_params={"n_in": 3, "n_out": 2},
    )
    summary = job.run(progress=False)
    times = archive.time.values
    failed = dict(summary.failed)
    assert set(failed) == {pd.Timestamp(times[i]) for i in (2, 3, 4, 5)}
    assert all(
        "could not be read" in why and "nothing written" not in why for why in failed.values()
    )
    status = job.status()
    assert status.complete and dict(status.failed.items()) == failed
    assert summary.done == status.done == len(job.init_times) - 4


def test_completion_record_is_written_after_the_data_and_reasons(tmp_path, monkeypatch):
    """A kill between writes leaves a chunk missing, never recorded with partial content."""
    import zarr.storage

    cube = synthetic_radar(n_times=16, size=16, seed=5)
    cube[:12] = np.nan  # the first init time fails, so its reason is written too
    job = forecast_archive(
        cube,
        "persistence",
        tmp_path / "fc.zarr",
        chunk_init_times=5,
        client="sync",
        model_params={"n_out": 2},
    )
    written = []
    original = zarr.storage.LocalStore.set

    metadata = (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json")

    async def spy(self, key, value):
        if "/" in key and not key.endswith(metadata):  # a chunk (zarr format 2 or 3)
            written.append(key.split("/")[0])
        return await original(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", spy)
    summary = job.run(progress=False)
    assert summary.done == 4 and len(summary.failed) == 1
    assert written[-1] == STATUS and written.count(STATUS) == 1
    assert {cube.name, ERROR} <= set(written[:-1])


def test_cli_batch_refuses_a_non_positive_worker_count(tmp_path, capsys):
    src = tmp_path / "radar.nc"
    _lazy_cube(n_times=16, size=16, gap=False).to_dataset().to_netcdf(src)
    for n in ("0", "-1"):
        assert (
            main(
                [
                    "batch",
                    str(src),
                    "--model",
                    "persistence",
                    "--workers",
                    n,
                    "--out",
                    str(tmp_path / "fc.zarr"),
                    "--no-progress",
                ]
            )
            == 2
        )
        err = capsys.readouterr().err.strip()
        assert "--workers must be a positive number" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "fc.zarr").exists()


@pytest.mark.parametrize("progress", [["--no-progress"], []])
def test_cli_batch_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys, progress):
    """One line, also with the progress bar on: no bar is drawn before the cluster answers."""
    pytest.importorskip("distributed")
    import dask

    src = tmp_path / "radar.nc"
    _lazy_cube(n_times=16, size=16, gap=False).to_dataset().to_netcdf(src)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(
            [
                "batch",
                str(src),
                "--model",
                "persistence",
                "--scheduler",
                "tcp://127.0.0.1:1",
                "--out",
                str(tmp_path / "fc.zarr"),
                *progress,
            ]
        )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("xnowcast batch: error:") and "127.0.0.1:1" in err


def test_bad_retry_delay_overwrite_and_scheduler_name_are_clear(tmp_path):
    cube = _lazy_cube(gap=False)
    for delay, error in (("x", TypeError), (-1, ValueError), (float("nan"), ValueError)):
        with pytest.raises(error, match="retry_delay must be a non-negative number"):
            forecast_archive(cube, "persistence", tmp_path / "a.zarr", retry_delay=delay)
    with pytest.raises(TypeError, match="overwrite must be True or False, got 'no'"):
        forecast_archive(cube, "persistence", tmp_path / "b.zarr", overwrite="no")
    job = forecast_archive(cube, "persistence", tmp_path / "c.zarr", client="thread")
    with pytest.raises(ValueError, match="neither a local scheduler .*threads.* nor a scheduler"):
        job.run(progress=False)
