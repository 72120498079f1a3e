"""Never lose a user's data: no overwrite without asking, atomic writes, inputs never replaced."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xnowcast.batch import forecast_archive
from xnowcast.batch import store as batch_store
from xnowcast.cli import main
from xnowcast.datasets import synthetic_radar
from xnowcast.io import open_forecast, save_forecast
from xnowcast.io.output import COMPLETE_ATTR, atomic_output, check_output, move_into_place

THESIS = b"my thesis, four years of work\n"


def _digest(path: Path) -> str:
    """SHA-256 of a file, or of every file (names and bytes) of a folder."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def cube():
    return synthetic_radar(n_times=14, size=16, seed=3)


@pytest.fixture
def inputs(cube, tmp_path):
    """An input netCDF file and zarr store of ``cube``."""
    nc, store = tmp_path / "in.nc", tmp_path / "in.zarr"
    cube.to_dataset(name="rain").to_netcdf(nc)
    cube.to_dataset(name="rain").to_zarr(store, consolidated=False)
    return nc, store


def _failing(fc: xr.DataArray) -> xr.DataArray:
    """``fc`` (lazy) whose second chunk along init_time raises while being written."""

    def boom(block, block_info=None):
        if block_info[None]["chunk-location"][0] == 1:
            raise OSError("No space left on device (simulated)")
        return block

    return fc.copy(data=fc.data.map_blocks(boom, dtype=fc.dtype))


# ------------------------------------------------------------- 1. no overwrite without asking
@pytest.mark.parametrize(
    "command",
    [
        ["demo", "--size", "16", "--frames", "14", "--model", "persistence"],
        ["forecast", "{nc}", "--n-out", "2"],
        ["verify", "{nc}", "{nc}"],
        ["sequences", "{nc}"],
        ["plot", "{nc}"],
    ],
    ids=lambda c: c[0],
)
def test_cli_refuses_an_existing_output_without_overwrite(command, inputs, tmp_path, capsys):
    nc, _ = inputs
    out = tmp_path / ("thesis.png" if command[0] == "plot" else "thesis.nc")
    if command[0] in ("verify", "sequences"):
        out = out.with_suffix(".csv")
    out.write_bytes(THESIS)
    args = [a.format(nc=nc) for a in command] + ["--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert str(out) in err and "--overwrite" in err
    assert out.read_bytes() == THESIS


def test_cli_overwrite_replaces_an_existing_output(inputs, tmp_path):
    nc, _ = inputs
    out = tmp_path / "thesis.nc"
    out.write_bytes(THESIS)
    assert main(["forecast", str(nc), "--n-out", "2", "--out", str(out), "--overwrite"]) == 0
    assert open_forecast(out).sizes["lead_time"] == 2
    assert sorted(os.listdir(tmp_path)) == ["in.nc", "in.zarr", "thesis.nc"]


def test_api_writers_refuse_an_existing_output_by_default(cube, tmp_path):
    out = tmp_path / "fc.zarr"
    out.mkdir()
    (out / "notes.txt").write_bytes(THESIS)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_forecast(cube.nowcast.forecast(n_out=2), out)
    with pytest.raises(FileExistsError, match="not an xnowcast batch store"):
        forecast_archive(cube, "persistence", out, n_out=2)
    assert (out / "notes.txt").read_bytes() == THESIS


# ------------------------------------------------------------- 2. atomic writes
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_failed_overwrite_leaves_the_old_output_bit_identical(cube, tmp_path, suffix):
    fcs = cube.nowcast.forecast(init_times="all", n_out=2, chunk_init_times=1)
    out = tmp_path / f"fc{suffix}"
    save_forecast(fcs, out)
    before = _digest(out)
    with pytest.raises(OSError, match="simulated"):
        save_forecast(_failing(fcs), out, overwrite=True)
    assert _digest(out) == before
    assert os.listdir(tmp_path) == [out.name]  # no fragment behind
    xr.testing.assert_allclose(open_forecast(out).load(), fcs.compute())


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_failed_first_write_leaves_nothing(cube, tmp_path, suffix):
    fcs = cube.nowcast.forecast(init_times="all", n_out=2, chunk_init_times=1)
    with pytest.raises(OSError, match="simulated"):
        save_forecast(_failing(fcs), tmp_path / f"fc{suffix}")
    assert os.listdir(tmp_path) == []


def test_an_overwrite_replaces_a_store_whole(cube, tmp_path):
    out = tmp_path / "fc.zarr"
    save_forecast(cube.nowcast.forecast(init_times="all", n_out=3), out)
    save_forecast(cube.nowcast.forecast(n_out=2), out, overwrite=True)
    back = open_forecast(out)
    assert back.sizes["lead_time"] == 2 and "init_time" not in back.dims
    assert os.listdir(tmp_path) == ["fc.zarr"]


def test_atomic_output_of_a_folder_and_a_race(tmp_path):
    out = tmp_path / "out"
    with atomic_output(out) as tmp:
        tmp.mkdir()
        (tmp / "a").write_text("new")
    assert (out / "a").read_text() == "new"
    # a file made by someone else while we were writing is never replaced without overwrite
    target = tmp_path / "t.csv"
    with (
        pytest.raises(FileExistsError, match="created while writing"),
        atomic_output(target) as tmp,
    ):
        tmp.write_text("ours")
        target.write_bytes(THESIS)
    assert target.read_bytes() == THESIS and sorted(os.listdir(tmp_path)) == ["out", "t.csv"]


def test_move_into_place_puts_the_old_folder_back_when_the_swap_fails(tmp_path, monkeypatch):
    old, new = tmp_path / "fc.zarr", tmp_path / "new"
    old.mkdir()
    (old / "data").write_bytes(THESIS)
    new.mkdir()
    real_rename = os.rename

    def rename(src, dst):
        if Path(src) == new:
            raise OSError("simulated failure of the second rename")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="second rename"):
        move_into_place(new, old, overwrite=True)
    assert (old / "data").read_bytes() == THESIS


# ------------------------------------------------------------- 3. output is never an input
@pytest.mark.parametrize("which", ["nc", "zarr"])
def test_cli_forecast_refuses_its_input_as_output(inputs, which, capsys):
    src = inputs[0] if which == "nc" else inputs[1]
    before = _digest(src)
    assert main(["forecast", str(src), "--out", str(src), "--n-out", "2", "--overwrite"]) == 2
    assert "would destroy the input" in capsys.readouterr().err
    assert _digest(src) == before


def test_the_input_is_found_through_symlinks_relative_paths_and_globs(inputs, monkeypatch):
    nc = inputs[0]
    folder = nc.parent
    link = folder / "link.nc"
    link.symlink_to(nc)
    monkeypatch.chdir(folder)
    for out, given in [
        ("link.nc", "in.nc"),  # a symlink to the input
        ("./sub/../in.nc", str(nc)),  # a relative path to it
        ("in.nc", "*.nc"),  # matched by the input glob
        ("in.zarr/inner.zarr", "in.zarr"),  # inside an input store
        (str(folder), "in.nc"),  # a folder holding the input
    ]:
        with pytest.raises(ValueError, match="would destroy the input"):
            check_output(out, overwrite=True, inputs=given)
    assert check_output("other.nc", inputs="*.nc").name == "other.nc"


def test_batch_refuses_its_input_as_output(inputs, capsys):
    _, store = inputs
    before = _digest(store)
    assert main(["batch", str(store), "--out", str(store), "--n-out", "2", "--overwrite"]) == 2
    assert "would destroy the input" in capsys.readouterr().err
    with pytest.raises(ValueError, match="would destroy the input"):
        forecast_archive(str(store), "persistence", store, n_out=2, overwrite=True)
    assert _digest(store) == before


def test_save_forecast_refuses_its_input(inputs, cube):
    nc, _ = inputs
    before = _digest(nc)
    with pytest.raises(ValueError, match="would destroy the input"):
        save_forecast(cube.nowcast.forecast(n_out=2), nc, overwrite=True, inputs=nc)
    assert _digest(nc) == before


# ------------------------------------------------------------- 4. completion mark
def test_open_forecast_refuses_a_forecast_without_the_completion_mark(cube, tmp_path):
    fc = cube.nowcast.forecast(init_times="all", n_out=2)
    save_forecast(fc, tmp_path / "good.zarr")
    assert COMPLETE_ATTR not in open_forecast(tmp_path / "good.zarr").attrs
    # what an interrupted write of earlier versions left: the data, no mark
    fc.to_dataset(name="rain").to_zarr(tmp_path / "partial.zarr", consolidated=False)
    with pytest.raises(ValueError, match="completion mark"):
        open_forecast(tmp_path / "partial.zarr")
    assert open_forecast(tmp_path / "partial.zarr", check_complete=False).sizes["lead_time"] == 2
    # a forecast made by another program (no xnowcast attributes) opens
    other = fc.copy()
    other.attrs = {"units": "mm/h"}
    other.to_dataset(name="rain").to_netcdf(tmp_path / "other.nc")
    assert open_forecast(tmp_path / "other.nc").sizes["lead_time"] == 2


def test_a_saved_forecast_is_saved_again_with_one_fresh_mark(cube, tmp_path):
    save_forecast(cube.nowcast.forecast(n_out=2), tmp_path / "a.nc")
    back = open_forecast(tmp_path / "a.nc")
    save_forecast(back, tmp_path / "b.nc")
    assert COMPLETE_ATTR in xr.open_dataset(tmp_path / "b.nc").attrs


# ------------------------------------------------------------- 15. concurrent batch creation
def test_a_batch_job_losing_the_creation_race_resumes_the_winners_store(
    cube, tmp_path, monkeypatch
):
    out = tmp_path / "fc.zarr"
    real_move = batch_store.move_into_place

    def winner_first(tmp, target, *, overwrite):
        # another job creates the same store between our check and our rename
        monkeypatch.setattr(batch_store, "move_into_place", real_move)
        forecast_archive(cube, "persistence", out, n_out=2, chunk_init_times=2)
        return real_move(tmp, target, overwrite=overwrite)

    monkeypatch.setattr(batch_store, "move_into_place", winner_first)
    job = forecast_archive(cube, "persistence", out, n_out=2, chunk_init_times=2)
    assert job.run(progress=False).done == len(job.init_times)
    assert os.listdir(tmp_path) == ["fc.zarr"]  # the loser's partial folder is gone


def test_stale_partial_folders_are_removed_but_not_fresh_ones(cube, tmp_path):
    stale, fresh = tmp_path / "fc.zarr.partial-dead0000", tmp_path / "fc.zarr.partial-busy0000"
    stale.mkdir()
    fresh.mkdir()
    old = time.time() - batch_store.STALE_PARTIAL_SECONDS - 60
    os.utime(stale, (old, old))
    forecast_archive(cube, "persistence", tmp_path / "fc.zarr", n_out=2)
    assert sorted(os.listdir(tmp_path)) == ["fc.zarr", fresh.name]


def test_a_batch_overwrite_that_fails_keeps_the_old_store(cube, tmp_path, monkeypatch):
    out = tmp_path / "fc.zarr"
    job = forecast_archive(cube, "persistence", out, n_out=2)
    job.run(progress=False)
    before = _digest(out)

    def fail(*args, **kwargs):
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(xr.Dataset, "to_zarr", fail)
    with pytest.raises(OSError, match="simulated"):
        forecast_archive(cube, "persistence", out, n_out=3, overwrite=True)
    assert _digest(out) == before and os.listdir(tmp_path) == ["fc.zarr"]
    assert np.all(batch_store.read_status(out) == batch_store.DONE)


# ------------------------------------------------------------- 1, 12, 13. training outputs
TINY = dict(n_in=3, n_out=2, batch_size=4, crop=16, progress=False, device="cpu", epochs=1)


@pytest.fixture(scope="module")
def train_cube():
    return synthetic_radar(n_times=12, size=24, seed=1)


def test_trainer_refuses_bad_or_existing_outputs_before_training(tmp_path):
    pytest.importorskip("torch")
    from xnowcast.training import Trainer

    with pytest.raises(ValueError, match="is a folder; give a file"):
        Trainer("conv3d", {"filters": [2]}, checkpoint=tmp_path, **TINY)
    ck = tmp_path / "m.pt"
    ck.write_bytes(THESIS)
    with pytest.raises(FileExistsError, match="m.pt' exists; pass overwrite=True"):
        Trainer("conv3d", {"filters": [2]}, checkpoint=ck, **TINY)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_bytes(THESIS)
    with pytest.raises(FileExistsError, match="metrics.csv' exists"):
        Trainer("conv3d", {"filters": [2]}, log_dir=tmp_path / "logs", **TINY)
    assert ck.read_bytes() == THESIS
    assert (tmp_path / "logs" / "metrics.csv").read_bytes() == THESIS


def test_trainer_save_refuses_untrained_weights_and_existing_files(train_cube, tmp_path):
    pytest.importorskip("torch")
    from xnowcast.training import Trainer

    trainer = Trainer("conv3d", {"filters": [2]}, **TINY)
    with pytest.raises(ValueError, match="nothing is trained yet"):
        trainer.save(tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()
    trainer.fit(train_cube)
    out = tmp_path / "m.pt"
    out.write_bytes(THESIS)
    with pytest.raises(FileExistsError, match="overwrite"):
        trainer.save(out)
    assert out.read_bytes() == THESIS
    assert trainer.save(out, overwrite=True) == out and out.read_bytes() != THESIS
    assert os.listdir(tmp_path) == ["m.pt"]


def test_a_checkpoint_write_that_fails_leaves_the_old_one(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from xnowcast.models.neural.checkpoint import read_checkpoint, save_checkpoint

    path = tmp_path / "m.pt"
    meta = {"n_in": 2, "n_out": 1}
    save_checkpoint(path, {"w": torch.zeros(2)}, meta)
    before = _digest(path)

    def half(payload, f):
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(torch, "save", half)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, {"w": torch.ones(2)}, meta, overwrite=True)
    assert _digest(path) == before and os.listdir(tmp_path) == ["m.pt"]
    assert read_checkpoint(path)["state_dict"]["w"].tolist() == [0.0, 0.0]


def test_cli_train_refuses_an_existing_output_then_overwrites_it(train_cube, tmp_path, capsys):
    pytest.importorskip("torch")
    yaml = pytest.importorskip("yaml")
    train_cube.to_dataset(name="rain").to_netcdf(tmp_path / "radar.nc")
    config = {"train": "radar.nc", "output": "m.pt", "model": "conv3d"}
    config.update(model_params={"filters": [2]}, log_dir="logs", **TINY)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "m.pt").write_bytes(THESIS)
    assert main(["train", str(tmp_path / "train.yaml")]) == 2
    err = capsys.readouterr().err
    assert "m.pt" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "m.pt").read_bytes() == THESIS and not (tmp_path / "logs").exists()
    assert main(["train", str(tmp_path / "train.yaml"), "--overwrite"]) == 0
    assert (tmp_path / "m.pt").read_bytes() != THESIS
    # a second run refuses the metrics of the first
    (tmp_path / "m.pt").unlink()
    assert main(["train", str(tmp_path / "train.yaml")]) == 2
    assert "metrics.csv" in capsys.readouterr().err


def test_a_resumed_run_may_replace_its_own_checkpoint_and_metrics(train_cube, tmp_path):
    pytest.importorskip("torch")
    from xnowcast.training import Trainer

    ck, logs = tmp_path / "last.pt", tmp_path / "logs"
    kw = {**TINY, "log_dir": logs, "checkpoint": ck}
    Trainer("conv3d", {"filters": [2]}, **kw).fit(train_cube)
    resumed = Trainer("conv3d", {"filters": [2]}, resume=ck, **{**kw, "epochs": 2})
    resumed.fit(train_cube)
    assert list(pd.read_csv(logs / "metrics.csv").epoch) == [1, 2]


# ------------------------------------------------------------- 5, 6. missing and damaged chunks
@pytest.fixture
def damaged(tmp_path):
    """A zarr store of one frame per chunk: frame 5's chunk missing, frame 19's corrupt."""
    import glob

    cube = synthetic_radar(n_times=20, size=16, seed=2)
    src = tmp_path / "in.zarr"
    cube.to_dataset().to_zarr(
        src, encoding={cube.name: {"chunks": (1, 16, 16)}}, consolidated=False
    )
    (missing,) = glob.glob(str(src / cube.name / "c" / "5" / "*" / "*"))
    os.remove(missing)
    return src, cube


def test_a_frame_lost_to_a_missing_chunk_is_named(damaged):
    import xnowcast

    src, cube = damaged
    archive = xnowcast.open_archive(src)
    when = str(pd.Timestamp(cube.time.values[5]))
    with pytest.warns(UserWarning, match=f"entirely NaN .*{when}.*missing zarr chunk"):
        xnowcast.forecast(archive, init_times=cube.time.values[12], n_out=2)
    lazy = xnowcast.forecast(archive, init_times="all", n_out=2)
    with pytest.warns(UserWarning, match=f"entirely NaN .*{when}"):
        lazy.compute()
    job = forecast_archive(archive, "persistence", src.parent / "fc.zarr", n_out=2)
    summary = job.run(progress=False)
    # the windows of n_in=12 frames holding frame 5 end at frames 11 to 16
    assert {t for t, _ in summary.missing_data} == set(pd.DatetimeIndex(cube.time.values[11:17]))
    assert "missing data" in str(summary)


def test_a_corrupt_chunk_gives_one_line_naming_the_path_and_time(damaged, capsys):
    import glob

    src, cube = damaged
    (chunk,) = glob.glob(str(src / cube.name / "c" / "19" / "*" / "*"))
    Path(chunk).write_bytes(b"not zstd at all" * 8)
    when = str(pd.Timestamp(cube.time.values[19]))
    for init_times in ("latest", "all"):
        out = src.parent / f"fc-{init_times}.nc"
        args = ["forecast", str(src), "--out", str(out), "--n-out", "2"]
        assert main([*args, "--init-times", init_times]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(src) in err and when in err, err
        assert not out.exists()
    save_forecast(cube.isel(time=slice(0, 19)).nowcast.forecast(n_out=1), src.parent / "f.nc")
    out = src.parent / "s.csv"
    assert (
        main(["verify", str(src.parent / "f.nc"), str(src), "--out", str(out), "--metrics", "mae"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(src) in err and when in err, err


# ------------------------------------------------------------- 7. fill values, Inf, negatives
def test_fill_values_left_in_attrs_are_missing_data(cube):
    raw = cube.fillna(-9999.0)
    raw.attrs["_FillValue"] = -9999.0
    fc = raw.nowcast.forecast(n_out=2, model="optical-flow")
    assert float(fc.min()) >= 0.0  # no (-9999, -1) values blended in
    expected = cube.nowcast.forecast(n_out=2, model="optical-flow")
    xr.testing.assert_allclose(fc, expected.assign_attrs(fc.attrs))
    raw.attrs = {**cube.attrs, "missing_value": -9999.0}
    assert float(raw.nowcast.forecast(n_out=2).min()) >= 0.0


def test_infinite_values_are_masked_with_a_warning(cube):
    bad = cube.copy(deep=True)
    bad[-1, 8, 8] = np.inf
    with pytest.warns(RuntimeWarning, match="1 infinite value"):
        fc = bad.nowcast.forecast(n_out=1)
    assert np.isnan(fc.values[0, 8, 8]) and np.isfinite(fc.values).any()
    with pytest.warns(RuntimeWarning, match="infinite value"):
        bad.chunk({"time": 1}).nowcast.forecast(n_out=1, init_times="all").compute()


def test_negative_values_pass_unchanged(cube):
    shifted = cube - 1.0  # e.g. dBZ: negative values are data
    fc = shifted.nowcast.forecast(n_out=1)
    np.testing.assert_array_equal(fc.values[0], shifted.values[-1])


# ------------------------------------------------------------- 8, 9, 10. grids, every, size
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda c: c.isel(x=[0, 2, 1, *range(3, 16)]), r"'x' is not in order .*sortby\('x'\)"),
        (
            lambda c: c.assign_coords(y=[0.0, 0.0, *np.arange(2, 16.0)]),
            r"'y' repeats values .*drop_duplicates\('y'\)",
        ),
    ],
    ids=["unsorted", "duplicated"],
)
def test_scrambled_grids_are_refused(cube, change, match):
    with pytest.raises(ValueError, match=match):
        change(cube).nowcast.forecast(n_out=1)
    flipped = cube.isel(y=slice(None, None, -1))  # decreasing (north-up) grids are fine
    assert flipped.nowcast.forecast(n_out=1).sizes["y"] == 16


def test_every_must_be_a_multiple_of_the_step(cube):
    with pytest.raises(ValueError, match=r"every='7min' is not a whole multiple .* 5min"):
        cube.nowcast.forecast(init_times="all", every="7min", n_out=1)
    kept = cube.nowcast.forecast(init_times="all", every="10min", n_in=2, n_out=1)
    assert kept.sizes["init_time"] == 6


def test_an_output_larger_than_memory_is_refused_before_allocating(cube):
    with pytest.raises(ValueError, match=r"n_out=1000000000 .* more than this machine's"):
        cube.nowcast.forecast(n_out=10**9)
    with pytest.raises(ValueError, match="more than this machine's"):
        cube.nowcast.forecast(n_out=10**9, init_times="all")


# ------------------------------------------------------------- 14. models returning no data
def test_a_model_returning_nan_or_inf_everywhere_is_flagged(cube):
    from xnowcast.models import NowcastModel, run_model

    class Broken(NowcastModel):
        name = "broken"

        def __init__(self, fill=np.nan, n_in=2, n_out=1):
            super().__init__(n_in=n_in, n_out=n_out)
            self.fill = fill

        def predict(self, inputs):
            return np.full((len(inputs), self.n_out, *inputs.shape[2:]), self.fill, "float32")

    frames = np.ones((1, 2, 4, 4), "float32")
    for fill in (np.nan, np.inf):
        with pytest.raises(RuntimeError, match="returned no finite value"):
            run_model(Broken(fill), frames)
    assert np.isnan(run_model(Broken(), np.full_like(frames, np.nan))).all()  # nothing to say


# ------------------------------------------------------------- 11, 12. checkpoint integrity
def test_a_flipped_byte_in_the_weights_is_caught(tmp_path):
    torch = pytest.importorskip("torch")
    from xnowcast.models.neural.checkpoint import read_checkpoint, save_checkpoint

    path = tmp_path / "m.pt"
    save_checkpoint(path, {"w": torch.full((64,), 1.2345)}, {"n_in": 2, "n_out": 1})
    data = bytearray(path.read_bytes())
    at = bytes(data).find(np.float32(1.2345).tobytes() * 4)
    assert at > 0
    data[at] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="the file was changed or damaged"):
        read_checkpoint(path)


def test_metadata_without_n_in_is_a_clear_error(tmp_path):
    torch = pytest.importorskip("torch")
    from xnowcast.models.neural.checkpoint import load_model, save_checkpoint

    path = save_checkpoint(tmp_path / "m.pt", {"w": torch.zeros(2)}, {"n_out": 1})
    with pytest.raises(ValueError, match="no integer 'n_in' in its metadata"):
        load_model(path)


# ------------------------------------------------------------- 16. bounded-memory verification
@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_forecast_files_are_stored_in_small_chunks(cube, tmp_path, suffix):
    """Reading (verifying) one stored chunk costs a few MiB whatever the forecast's size."""
    fcs = cube.nowcast.forecast(init_times="all", n_in=2, n_out=3)
    assert fcs.data.chunksize[0] > 1  # several init times per computed block
    save_forecast(fcs, tmp_path / f"fc{suffix}")
    back = open_forecast(tmp_path / f"fc{suffix}")
    assert back.data.chunksize == (1, 3, 16, 16)
    xr.testing.assert_allclose(back.load(), fcs.compute())


def test_verify_scores_a_stored_chunk_in_small_pieces(cube, tmp_path):
    import xnowcast

    fcs = cube.nowcast.forecast(init_times="all", n_in=2, n_out=3)
    big = tmp_path / "big.zarr"
    fcs.to_dataset(name="rain").to_zarr(big, consolidated=False)  # one chunk of all
    back = open_forecast(big, check_complete=False)
    assert back.data.npartitions == 1
    scores = xnowcast.verify(back, cube, ["mae"])
    assert scores["mae"].data.npartitions == back.sizes["init_time"]
    xr.testing.assert_allclose(scores.compute(), xnowcast.verify(fcs.compute(), cube, ["mae"]))
