"""Training: losses, the window dataset, the Trainer, checkpoints, configs, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

torch = pytest.importorskip("torch")

import xnowcast  # noqa: E402
from xnowcast.datasets import synthetic_radar  # noqa: E402
from xnowcast.models.neural.checkpoint import read_checkpoint  # noqa: E402
from xnowcast.training import Trainer, WindowDataset, load_model, read_metadata  # noqa: E402
from xnowcast.training.config import (  # noqa: E402
    OPTIONS,
    _trainer_defaults,
    example_config,
    load_config,
)
from xnowcast.training.losses import get_loss, ms_ssim, ssim  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny networks run fastest (and steadiest on a busy machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = dict(n_in=3, n_out=2, batch_size=4, crop=16, progress=False, device="cpu")


@pytest.fixture(scope="module")
def small():
    """A 30-frame 32x32 synthetic cube (NaN outside range) and a validation cube."""
    return (
        synthetic_radar(n_times=30, size=32, seed=1),
        synthetic_radar(n_times=12, size=32, seed=2),
    )


def _params(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- losses
def test_losses_ignore_masked_pixels():
    pred, target = torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4, 4)
    target[..., 0] = 100.0
    mask = torch.ones_like(target)
    mask[..., 0] = 0
    assert float(get_loss("mse")(pred, target, mask)) == 1.0
    assert float(get_loss("mae")(pred, target, mask)) == 1.0
    assert float(get_loss("mse+0.5*mae")(pred, target, mask)) == 1.5
    assert float(get_loss({"mse": 2})(pred, target, mask)) == 2.0


def test_ssim_losses_match_pytorch_msssim():
    msssim = pytest.importorskip("pytorch_msssim")
    torch.manual_seed(0)
    x = torch.rand(1, 2, 168, 168)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    flat = lambda t: t.reshape(2, 1, 168, 168)  # noqa: E731
    torch.testing.assert_close(ssim(x, y), msssim.ssim(flat(x), flat(y), data_range=1.0))
    torch.testing.assert_close(ms_ssim(x, y), msssim.ms_ssim(flat(x), flat(y), data_range=1.0))
    mask = torch.ones_like(x)
    mask[..., 100:] = 0  # a masked SSIM equals the SSIM of the valid part
    ref = msssim.ssim(flat(x)[..., :100], flat(y)[..., :100], data_range=1.0)
    torch.testing.assert_close(ssim(x, y, mask), ref)
    small = torch.rand(1, 1, 24, 24)
    assert float(ms_ssim(small, small)) == pytest.approx(1.0)  # fewer scales on small crops
    assert float(get_loss("ms-ssim")(small, small)) == pytest.approx(0.0, abs=1e-6)


def test_loss_specs_are_checked():
    with pytest.raises(ValueError, match="unknown loss 'mes'"):
        get_loss("mes")
    with pytest.raises(ValueError, match="cannot parse"):
        get_loss("mse+*ssim")
    with pytest.raises(ValueError, match="positive"):
        get_loss({"mse": -1})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        get_loss("bce")(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 3.0))
    loss = get_loss("bce")(torch.full((1, 1, 2, 2), 0.5), torch.ones(1, 1, 2, 2))
    assert float(loss) == pytest.approx(np.log(2), rel=1e-5)


def test_skill_losses_score_areas_and_reach_the_trainer():
    target = torch.zeros(2, 3, 16, 16)
    target[..., 4:10, 4:10] = 3.0
    target[..., 5:9, 5:9] = 6.0
    mask = torch.ones_like(target)
    loss = get_loss("csi+fss", thresholds=[1.0, 5.0], scale=4)
    assert float(loss(target, target, mask)) == pytest.approx(0.0, abs=1e-4)
    # a damped core: equal MSE-wise to a field wrong everywhere else, but CSI at 5 misses it
    damped = target.clamp(max=4.0)
    assert float(get_loss("csi", thresholds=[5.0])(damped, target)) > 0.95
    assert float(get_loss("csi", thresholds=[1.0])(damped, target)) == pytest.approx(0.0, abs=1e-3)
    shifted = torch.roll(target, 3, dims=-1)
    far = torch.roll(target, 8, dims=-1)
    fss = get_loss("fss", thresholds=[1.0], scale=8)
    assert 0 < float(fss(shifted, target)) < float(fss(far, target)) <= 1
    hidden = target.clone()
    hidden[..., 4:10, 4:10] = 0.0  # missing pixels: the miss does not count
    masked = mask.clone()
    masked[..., 4:10, 4:10] = 0
    assert float(get_loss("csi", thresholds=[1.0])(hidden, target, masked)) == pytest.approx(0.0)
    grad = target.clone().requires_grad_()
    get_loss("mse+csi+fss", thresholds=[1.0])(grad * 0.5, target, mask).backward()
    assert grad.grad is not None and float(grad.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="need thresholds"):
        get_loss("mse+csi")
    trainer = Trainer(
        "unet", {"depth": 1, "filters": 4}, loss="mse+csi", loss_thresholds=[1, 10], **TINY
    )
    assert trainer.loss.thresholds == pytest.approx(tuple(np.log1p([1.0, 10.0])))
    assert trainer._config["loss_thresholds"] == [1.0, 10.0]
    default = Trainer("unet", {"depth": 1, "filters": 4}, loss="fss", score_threshold=2, **TINY)
    assert default.loss.thresholds == pytest.approx((np.log1p(2.0),))


# ---------------------------------------------------------------- dataset
def _recording_cube(cube):
    """``cube`` behind a lazy backend array that records every read."""
    from xarray.backends import BackendArray
    from xarray.core import indexing

    class Recorder(BackendArray):
        def __init__(self, data):
            self.data, self.shape, self.dtype, self.reads = data, data.shape, data.dtype, []

        def __getitem__(self, key):
            return indexing.explicit_indexing_adapter(
                key, self.shape, indexing.IndexingSupport.BASIC, self._raw
            )

        def _raw(self, key):
            self.reads.append(key)
            return self.data[key]

    rec = Recorder(cube.values)
    var = xr.Variable(cube.dims, indexing.LazilyIndexedArray(rec), cube.attrs)
    return xr.DataArray(var, coords=cube.coords, name=cube.name), rec


def test_dataset_reads_only_the_frames_of_a_window(small):
    lazy, rec = _recording_cube(small[0])
    ds = WindowDataset(lazy, n_in=3, n_out=2, crop=16, transform="log")
    assert len(ds) == 26
    x, y, m = ds[10]
    frames = sum(len(range(*k[0].indices(30))) for k in rec.reads)
    assert frames == 5  # one window's frames, not the archive
    ds[11]  # the neighbouring window reuses four cached frames
    assert sum(len(range(*k[0].indices(30))) for k in rec.reads) == 6
    assert x.shape == (3, 16, 16) and y.shape == m.shape == (2, 16, 16)
    assert torch.isfinite(x).all() and torch.isfinite(y).all()


def test_dataset_masks_missing_targets_and_is_deterministic(small):
    cube = small[0]
    ds = WindowDataset(
        [cube, cube.isel(time=slice(0, 10))],
        n_in=3,
        n_out=2,
        crop=None,
        transform="log",
        flips=True,
        seed=5,
    )
    assert len(ds) == 26 + 6
    x, y, m = ds[(0, 3)]
    truth = np.log1p(cube.isel(time=slice(6, 8)).values)
    nan = np.isnan(truth)
    assert nan.any() and (m.numpy()[nan] == 0).all() and (m.numpy()[~nan] == 1).all()
    assert (y.numpy()[nan] == 0).all()  # missing -> transformed zero rain
    again = ds[(0, 3)]
    assert all(torch.equal(a, b) for a, b in zip((x, y, m), again))
    crops = WindowDataset(cube, n_in=3, n_out=2, crop=8, seed=5)
    assert not torch.equal(crops[(0, 3)][0], crops[(1, 3)][0])  # new crops every epoch
    centre = WindowDataset(cube, n_in=3, n_out=2, crop=16, target_crop=8)
    assert centre[0][1].shape == (2, 8, 8) and centre[0][0].shape == (3, 16, 16)
    full = WindowDataset(cube, n_in=3, n_out=2, crop=16)  # the same crops, whole targets
    torch.testing.assert_close(centre[0][0], full[0][0])
    for a, b in zip(centre[0][1:], full[0][1:]):  # targets and mask: the central 8 x 8
        torch.testing.assert_close(a, b[:, 4:12, 4:12])


def test_dataset_errors(small):
    cube = small[0]
    with pytest.raises(ValueError, match="larger than the smallest grid"):
        WindowDataset(cube, n_in=3, n_out=2, crop=64)
    with pytest.raises(ValueError, match="no gap-free window"):
        WindowDataset(cube.isel(time=[0, 1, 2, 3, 5, 6, 7, 8]), n_in=3, n_out=2)  # gap at 4
    with pytest.raises(ValueError, match="different grids"):
        WindowDataset([cube, cube.isel(x=slice(0, 20))], n_in=3, n_out=2)
    with pytest.raises(TypeError, match="cube"):
        WindowDataset(np.zeros((5, 4, 4)), n_in=3, n_out=2)


# ---------------------------------------------------------------- training
def test_training_lowers_the_loss_and_forecasts(small):
    train, val = small
    trainer = Trainer("convlstm", {"hidden": [8]}, epochs=4, lr=1e-2, seed=0, **TINY)
    before = trainer.evaluate(val)
    trainer.fit(train, val)
    after = trainer.evaluate(val)
    assert after < 0.7 * before
    assert list(trainer.history.epoch) == [1, 2, 3, 4]
    assert trainer.history.val_loss.iloc[-1] == pytest.approx(after, rel=1e-5)
    fc = val.nowcast.forecast(model=trainer.model)
    assert fc.sizes["lead_time"] == 2 and np.isfinite(fc.values).any()


def test_checkpoint_round_trip_gives_identical_forecasts(small, tmp_path):
    train, val = small
    trainer = Trainer("unet", {"depth": 1, "filters": 4}, epochs=1, transform="dbr", **TINY)
    trainer.fit(train)
    path = trainer.save(tmp_path / "unet.pt")
    loaded = load_model(path).with_settings(device="cpu", batch_size=3)
    frames = val.values[None, :3]
    np.testing.assert_array_equal(loaded.predict(frames), trainer.model.predict(frames))
    meta = read_metadata(path)
    assert meta["architecture"] == "unet" and meta["model_params"]["depth"] == 1
    assert meta["transform"] == {"name": "dbr", "threshold": 0.1, "zerovalue": -15.0, "vmax": 100.0}
    assert (meta["n_in"], meta["n_out"], meta["time_step"]) == (3, 2, "P0DT0H5M0S")
    assert loaded.time_step == np.timedelta64(5, "m")
    assert meta["xnowcast_version"] == xnowcast.__version__
    assert meta["training"]["data"]["train"]["n_windows"] == 26
    fc = xnowcast.forecast(val, model=str(path), device="cpu")  # a path works as a model
    params = eval_json(fc.attrs["xnowcast_model_params"])
    assert params["metadata"]["checkpoint"] == str(path)
    assert fc.attrs["xnowcast_model"] == "unet"
    with pytest.raises(ValueError, match="trained with n_in=3"):
        load_model(path, n_in=4)


def test_checkpoint_file_is_readable_like_any_file_the_user_writes(tmp_path):
    """Not private (mode 0600, as a mkstemp file would be): workers and colleagues read it."""
    from xnowcast.models.neural.checkpoint import save_checkpoint

    mask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "w.pt", {"w": torch.zeros(2)}, {"n_in": 1})
    finally:
        os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["w.pt"]  # no temporary file left
    assert read_checkpoint(path)["metadata"]["n_in"] == 1


def eval_json(text):
    import json

    return json.loads(text)


def test_checkpoints_never_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    torch.save(
        {
            "format": "xnowcast-checkpoint",
            "format_version": 1,
            "metadata": "{}",
            "state_dict": {},
            "payload": Evil(),
        },
        bad,
    )
    with pytest.raises(ValueError, match="refusing to load.*Nothing in it was run"):
        load_model(bad)
    assert not marker.exists()
    foreign = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="not an xnowcast checkpoint"):
        load_model(foreign)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="cannot read"):
        read_checkpoint(broken)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


class TinyNet(torch.nn.Module):
    """A user network: one 3x3 conv from n_in frames to n_out frames."""

    def __init__(self, n_in=3, n_out=2):
        super().__init__()
        self.conv = torch.nn.Conv2d(n_in, n_out, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_user_network_trains_and_checkpoints(small, tmp_path):
    train, val = small
    torch.manual_seed(0)
    trainer = Trainer(TinyNet(), epochs=1, **TINY).fit(train)
    path = trainer.save(tmp_path / "user.pt")
    assert read_metadata(path)["module_class"].endswith("TinyNet")
    with pytest.raises(ValueError, match="pass module="):
        load_model(path)
    model = load_model(path, module=TinyNet()).with_settings(device="cpu")
    np.testing.assert_array_equal(
        model.predict(val.values[None, :3]), trainer.model.predict(val.values[None, :3])
    )
    with pytest.raises(ValueError, match="do not fit"):
        load_model(path, module=TinyNet(n_out=4))


def test_same_seed_same_network(small):
    train = small[0]
    runs = [
        Trainer("conv3d", {"filters": [4]}, epochs=1, seed=s, **TINY).fit(train) for s in (3, 3, 4)
    ]
    a, b, c = (_params(t.net) for t in runs)
    assert _same(a, b) and not _same(a, c)


def test_dataloader_workers_read_dask_cubes_and_change_nothing(small):
    cube = small[0].chunk({"time": 5})
    float(cube.sum())  # the parent has used dask's thread pool before the workers fork
    runs = [
        Trainer("conv3d", {"filters": [4]}, epochs=1, num_workers=n, **TINY).fit(cube)
        for n in (0, 2)
    ]
    assert _same(_params(runs[0].net), _params(runs[1].net))


def test_resume_continues_exactly(small, tmp_path):
    train, val = small
    kw = dict(epochs=3, lr_schedule="step", step_size=1, gamma=0.5, seed=1, **TINY)
    straight = Trainer("convlstm", {"hidden": [4]}, **kw).fit(train, val)
    ck = tmp_path / "last.pt"
    first = Trainer("convlstm", {"hidden": [4]}, checkpoint=ck, **{**kw, "epochs": 1})
    first.fit(train, val)
    resumed = Trainer("convlstm", {"hidden": [4]}, resume=ck, **kw).fit(train, val)
    assert _same(_params(resumed.net), _params(straight.net))
    assert list(resumed.history.lr) == [1e-3, 5e-4, 2.5e-4]
    # epoch 1 was read back from the checkpoint, not trained again (a restart from
    # scratch would give the same weights but its own timing of epoch 1)
    pd.testing.assert_series_equal(resumed.history.iloc[0], first.history.iloc[0])
    assert resumed.history.seconds.iloc[0] != straight.history.seconds.iloc[0]
    # the checkpoint of an epoch knows that epoch's validation result (best weights,
    # patience), so a resumed run picks and stops as the uninterrupted one
    state = read_checkpoint(ck)["training_state"]
    assert state["best_val"] == first.history.val_loss.iloc[0] and state["bad_epochs"] == 0
    assert _same(state["best_state"], _params(first.net))
    resumed.epochs = 4  # fit again: the same run goes on
    assert list(resumed.fit(train, val).history.epoch) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="network differs"):
        Trainer("convlstm", {"hidden": [8]}, resume=ck, **kw).fit(train, val)


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_planned_schedules_refuse_to_be_stretched(small, tmp_path, schedule):
    train = small[0]
    kw = dict(lr_schedule=schedule, steps_per_epoch=2, **TINY)
    ck = tmp_path / "run.pt"
    trainer = Trainer("conv3d", {"filters": [2]}, epochs=1, checkpoint=ck, **kw).fit(train)
    before = _params(trainer.net)
    trainer.epochs = 2  # a second fit() past the end the schedule was planned for
    with pytest.raises(ValueError, match=f"lr_schedule='{schedule}' was planned for"):
        trainer.fit(train)
    assert _same(_params(trainer.net), before) and len(trainer.history) == 1
    with pytest.raises(ValueError, match="Start a new run"):
        Trainer("conv3d", {"filters": [2]}, epochs=2, resume=ck, **kw).fit(train)
    # resuming an interrupted run within its plan still works
    ck2 = tmp_path / "cut.pt"
    Trainer("conv3d", {"filters": [2]}, epochs=2, checkpoint=ck2, time_limit=1e-3, **kw).fit(
        train
    )  # the time budget stops it after epoch 1 of 2
    done = Trainer("conv3d", {"filters": [2]}, epochs=2, resume=ck2, **kw).fit(train)
    assert list(done.history.epoch) == [1, 2]


def test_early_stopping_and_time_limit(small):
    train, val = small
    trainer = Trainer("conv3d", {"filters": [4]}, epochs=6, early_stopping=1, min_delta=1e9, **TINY)
    trainer.fit(train, val)
    # the starting weights are validated first: no epoch beats them by 1e9, patience 1
    assert len(trainer.history) == 1
    assert trainer.evaluate(val) == pytest.approx(trainer.baseline["val_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="validation data"):
        Trainer("conv3d", epochs=2, early_stopping=1, **TINY).fit(train)
    quick = Trainer("conv3d", {"filters": [4]}, epochs=50, time_limit=1e-3, **TINY).fit(train)
    assert len(quick.history) == 1  # the time budget ends the run after the first epoch


def test_curriculum_scheduled_sampling_and_csv(small, tmp_path):
    train = small[0]
    trainer = Trainer(
        "conv-ed-lstm",
        {"hidden": [4, 4]},
        epochs=3,
        curriculum={"start": 1, "epochs": 2},
        scheduled_sampling={"start": 1.0, "end": 0.0},
        log_dir=tmp_path / "logs",
        lr_schedule="onecycle",
        grad_clip=1.0,
        loss="mse+0.1*ssim",
        **{**TINY, "n_out": 3, "steps_per_epoch": 2},
    )
    trainer.fit(train)
    hist = trainer.history
    assert list(hist.n_out_trained) == [1, 2, 3]
    assert list(hist.teacher_forcing) == [1.0, 0.5, 0.0]
    csv = pd.read_csv(tmp_path / "logs" / "metrics.csv")
    assert list(csv.columns) == list(hist.columns) and len(csv) == 3
    np.testing.assert_allclose(csv.train_loss, hist.train_loss)
    with pytest.raises(ValueError, match="scheduled_sampling needs"):
        Trainer("unet", scheduled_sampling=True, **TINY)
    with pytest.raises(ValueError, match="output_activation"):
        Trainer("unet", loss="bce", **TINY)


def test_trainer_takes_a_set_from_split_dataset():
    from xnowcast import sequences

    cube = synthetic_radar(n_times=44, size=24, seed=5).drop_isel(time=[13, 27])
    table = sequences.sequence_table(cube, max_gap="5min", min_length=5, min_mean_category=0)
    train, test = cube.nowcast.split_dataset(table, fractions=(0.67, 0.33), seed=0)
    lengths = pd.Series(train.sequence_id.values).value_counts()
    assert len(lengths) == 2
    ds = WindowDataset(train, n_in=3, n_out=2, crop=16)
    # every window inside one sequence: n - 4 windows of 5 frames per sequence
    assert len(ds) == sum(n - 4 for n in lengths)
    ids = train.sequence_id.values
    assert all(len(set(ids[s : s + 5])) == 1 for _, s in ds.index)
    trainer = Trainer("conv3d", {"filters": [2]}, epochs=1, **TINY).fit(train, test)
    assert trainer.history.val_loss.notna().all()
    assert trainer.model.metadata["training"]["data"]["train"]["n_windows"] == len(ds)


def test_target_crop_and_trainer_errors(small):
    trainer = Trainer("unet", {"depth": 1, "filters": 4}, epochs=1, target_crop=8, **TINY)
    trainer.fit(small[0])
    assert np.isfinite(trainer.history.train_loss).all()
    with pytest.raises(ValueError, match="not a neural network"):
        Trainer("persistence", **TINY)
    with pytest.raises(ValueError, match="set transform on the Trainer"):
        Trainer("unet", {"transform": "dbr"}, **TINY)
    with pytest.raises(ValueError, match="lr_schedule"):
        Trainer("unet", lr_schedule="exp", **TINY)
    with pytest.raises(TypeError, match="hidden"):
        Trainer("convlstm", {"hiden": 3}, **TINY)


# ---------------------------------------------------------------- config and CLI
def test_config_documents_every_trainer_option():
    defaults = _trainer_defaults()
    assert set(defaults) <= set(OPTIONS)
    assert {k: OPTIONS[k][0] for k in defaults} == defaults
    parsed = yaml.safe_load(example_config())
    assert load_config(parsed)["output"].endswith("model.pt")


def test_docs_list_every_config_option():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "neural.md"
    if not doc.exists():
        pytest.skip("docs not in this checkout")
    text = doc.read_text()
    assert [k for k in OPTIONS if f"{k}:" not in text] == []


def test_config_errors_name_the_keys(tmp_path):
    with pytest.raises(ValueError, match=r"'epoch' \(did you mean 'epochs'\?\)\. Valid keys"):
        load_config({"train": "a.nc", "output": "m.pt", "epoch": 3})
    with pytest.raises(ValueError, match="needs train and output"):
        load_config({"epochs": 3})
    with pytest.raises(ValueError, match="unknown key"):
        load_config({"train": [{"path": "a.nc", "slice": 3}], "output": "m.pt"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)


def test_cli_trains_from_a_config(tmp_path):
    cube = synthetic_radar(n_times=20, size=24, seed=3)
    cube.to_dataset(name="rain").to_netcdf(tmp_path / "radar.nc")
    config = {
        "train": [{"path": "radar.nc", "isel": {"time": [0, 14]}}],
        "val": [{"path": "radar.nc", "isel": {"time": [14, None]}}],
        "output": "out/model.pt",
        "model": "conv3d",
        "model_params": {"filters": [2]},
        "n_in": 3,
        "n_out": 2,
        "epochs": 1,
        "crop": 16,
        "progress": False,
        "device": "cpu",
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    from xnowcast.cli import main

    assert main(["train", str(tmp_path / "train.yaml")]) == 0
    meta = read_metadata(tmp_path / "out" / "model.pt")
    assert meta["training"]["data"]["train"]["cubes"][0]["shape"] == [14, 24, 24]
    (tmp_path / "typo.yaml").write_text("train: radar.nc\noutput: m.pt\nepoks: 2\n")
    assert main(["train", str(tmp_path / "typo.yaml")]) == 2


# ---------------------------------------------------------------- distributed
DDP_SCRIPT = textwrap.dedent(
    """
    import gc, json, os, sys, torch
    import torch.distributed as dist
    from xnowcast.datasets import synthetic_radar
    from xnowcast.training import Trainer, WindowDataset

    out = sys.argv[1]
    seen = {"keys": [], "world_sizes": set()}
    read = WindowDataset.__getitem__

    def recording(self, key):  # which training samples this process reads
        if self.random_crop:
            seen["keys"].append(list(key))
            seen["world_sizes"].add(dist.get_world_size() if dist.is_initialized() else 1)
        return read(self, key)

    WindowDataset.__getitem__ = recording
    destroy = dist.destroy_process_group

    def counting_destroy(*args, **kwargs):  # DDP wrappers still alive when the group goes
        seen["ddp_at_destroy"] = sum(
            type(o) is torch.nn.parallel.DistributedDataParallel for o in gc.get_objects())
        return destroy(*args, **kwargs)

    dist.destroy_process_group = counting_destroy
    # no automatic collection, as when one simply has not come yet: a DDP wrapper left in
    # its reference cycles past the group's end aborts the process at exit, at random
    gc.disable()
    cube = synthetic_radar(n_times=14, size=24, seed=1)
    trainer = Trainer("conv3d", {"filters": [4], "batch_norm": False}, n_in=3, n_out=2,
                      epochs=2, batch_size=2, crop=16, progress=False, device="cpu",
                      log_dir=out + "/logs")
    trainer.fit(cube, cube)
    rank = int(os.environ["RANK"])
    torch.save(dict(trainer.net.named_parameters()), f"{out}/rank{rank}.pt")
    with open(f"{out}/rank{rank}.json", "w") as fh:
        json.dump({"keys": seen["keys"], "world_sizes": sorted(seen["world_sizes"]),
                   "ddp_at_destroy": seen["ddp_at_destroy"]}, fh)
    trainer.save(out + "/model.pt")
    """
)


def test_distributed_data_parallel_with_two_gloo_processes(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [s["world_sizes"] for s in seen] == [[2], [2]]  # one process group of two
    assert [s["ddp_at_destroy"] for s in seen] == [0, 0]  # freed while the group lived
    for epoch in (0, 1):  # each process trained on its own half of the 10 windows
        mine = [{i for e, i in s["keys"] if e == epoch} for s in seen]
        assert len(mine[0]) == len(mine[1]) == 5 and not mine[0] & mine[1]
        assert mine[0] | mine[1] == set(range(10))
    # different data, one network: the gradients were averaged across the processes
    assert _same(*ranks)
    assert len(pd.read_csv(tmp_path / "logs" / "metrics.csv")) == 2  # only rank 0 logs
    assert read_metadata(tmp_path / "model.pt")["training"]["epochs_run"] == 2


# ------------------------------------------------------------- bad input (audit)
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"model_params": [1, 2]}, TypeError, "model_params must be a dict"),
        ({"flips": "no"}, TypeError, "flips must be True or False"),  # "no" is truthy
        ({"progress": "no"}, TypeError, "progress must be True or False"),
        ({"min_wet_fraction": 2}, ValueError, "min_wet_fraction must be a number >= 0 and <= 1"),
        ({"min_wet_fraction": "x"}, TypeError, "min_wet_fraction must be a number"),
        ({"wet_threshold": float("nan")}, ValueError, "wet_threshold must be a finite number"),
        ({"crop": 0}, ValueError, "crop must be a positive integer or None"),
        ({"crop": "16"}, TypeError, "crop must be a positive integer or None"),
        ({"target_crop": 32}, ValueError, r"target_crop \(32\) must not exceed crop \(16\)"),
    ],
)
def test_bad_trainer_options_fail_at_once(kwargs, error, match):
    options = {**TINY, **kwargs}
    params = options.pop("model_params", {"depth": 1, "filters": 4})
    with pytest.raises(error, match=match):
        Trainer("unet", params, epochs=1, **options)


def test_validation_on_another_time_step_warns(small):
    train, val = small
    coarse = val.assign_coords(
        time=pd.date_range("2024-01-01", periods=val.sizes["time"], freq="10min")
    )
    trainer = Trainer(
        "unet", {"depth": 1, "filters": 4}, epochs=1, steps_per_epoch=1, val_steps=1, **TINY
    )
    with pytest.warns(UserWarning, match="validation cubes have time step P0DT0H10M0S"):
        trainer.fit(train, coarse)
    with pytest.raises(ValueError, match="max_batches must be a positive integer"):
        trainer.evaluate(val, max_batches=0)


def test_load_model_names_a_bad_path_type():
    with pytest.raises(TypeError, match="checkpoint path must be a str or pathlib.Path"):
        load_model(3)


def test_training_on_missing_data_only_is_an_error(small):
    """All-NaN targets gave a loss of 0 and an untrained network, silently."""
    trainer = Trainer("unet", {"depth": 1, "filters": 4}, epochs=1, steps_per_epoch=1, **TINY)
    with pytest.raises(ValueError, match="no training window of epoch 1 has a valid"):
        trainer.fit(small[0] * np.nan)
