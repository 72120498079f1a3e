"""Honest training budgets: time_limit per step, the curriculum rule, leads trained, metrics, skill."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from xnowcast.datasets import synthetic_radar  # noqa: E402
from xnowcast.training import Trainer, load_model, read_metadata  # noqa: E402
from xnowcast.training.budget import Budget, curriculum_schedule  # noqa: E402

TINY = dict(n_in=3, n_out=4, batch_size=2, crop=16, progress=False, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cube():
    return synthetic_radar(n_times=40, size=32, seed=4)


class Slow(torch.nn.Module):
    """A network whose every step takes at least ``pause`` wall seconds."""

    def __init__(self, n_in: int = 3, n_out: int = 4, pause: float = 0.05) -> None:
        super().__init__()
        self.n_in, self.n_out, self.pause = n_in, n_out, pause
        self.conv = torch.nn.Conv2d(n_in, n_out, 3, padding=1)

    def forward(self, x):
        time.sleep(self.pause)
        return self.conv(x)


def test_time_limit_stops_within_one_step(cube):
    limit, pause = 0.6, 0.1
    trainer = Trainer(
        Slow(pause=pause), epochs=1000, steps_per_epoch=1000, time_limit=limit, **TINY
    )
    trainer.fit(cube)
    hist = trainer.history
    assert len(hist) == 1  # the first (long) epoch was cut, not finished
    assert hist.steps.iloc[-1] >= limit / (2 * pause)
    step = hist.wall_total.iloc[-1] / hist.steps.iloc[-1]
    assert limit <= hist.wall_total.iloc[-1] <= limit + step + 0.05
    # the CPU clock counts this process's CPU time only: sleeping steps barely spend it
    cpu = Trainer(
        Slow(pause=pause), epochs=3, steps_per_epoch=3, time_limit=limit, budget_clock="cpu", **TINY
    ).fit(cube)
    assert cpu.history.steps.iloc[-1] == 9  # all 3 x 3 steps: 0.9 s of wall time, little CPU


def test_validation_time_is_kept_in_the_budget(cube):
    trainer = Trainer(Slow(pause=0.05), epochs=1000, steps_per_epoch=1000, time_limit=0.6, **TINY)
    trainer.fit(cube, synthetic_radar(n_times=12, size=32, seed=8))
    # the final validation (3 windows of 0.05 s) is inside the limit, plus at most one step
    assert trainer.history.wall_total.iloc[-1] <= 0.6 + 0.05 + 0.1
    assert trainer.baseline is not None and trainer.baseline["epoch"] == 0


def test_curriculum_must_fit_the_run():
    with pytest.raises(ValueError, match="after the run's last epoch"):
        Trainer("conv3d", {"filters": [2]}, epochs=4, curriculum={"start": 1, "epochs": 8}, **TINY)
    with pytest.raises(ValueError, match="end at n_out"):
        Trainer("conv3d", {"filters": [2]}, epochs=4, curriculum=[1, 2, 3], **TINY)
    grow = curriculum_schedule({"start": 1, "epochs": 50}, 24, epochs=100, budgeted=True)
    assert grow(0, 0.0) == 1 and grow(0, 0.5) == 24  # half the budget spent: all leads
    assert curriculum_schedule({"start": 1, "epochs": 50}, 24, epochs=100)(0, 0.9) == 1


def test_curriculum_is_rescaled_to_the_budget(cube):
    # 2000 epochs planned, curriculum over the first 1000: the budget (steps of at least
    # 0.01 s) ends the run long before, yet the curriculum reaches all lead times once half
    # the budget is spent
    trainer = Trainer(
        Slow(pause=0.01),
        epochs=2000,
        steps_per_epoch=1,
        curriculum={"start": 1, "epochs": 1000},
        time_limit=1.0,
        **TINY,
    )
    trainer.fit(cube)
    hist = trainer.history
    assert len(hist) < 1000 and hist.n_out_trained.iloc[0] == 1
    assert hist.n_out_trained.iloc[-1] == 4
    assert trainer.model.metadata["leads_trained"] == 4


def test_untrained_leads_are_recorded_and_warned(cube, tmp_path):
    trainer = Trainer(
        "conv3d",
        {"filters": [2]},
        epochs=4,
        curriculum={"start": 1, "epochs": 2},
        time_limit=1e-3,
        **TINY,
    )
    trainer.fit(cube)  # the budget ends the run in epoch 1, which trains 1 lead time
    path = trainer.save(tmp_path / "short.pt")
    assert read_metadata(path)["leads_trained"] == 1
    model = load_model(path)
    with pytest.warns(UserWarning, match="lead times 2..4 were never trained"):
        model.predict(cube.values[None, :3])


def test_metrics_record_steps_samples_and_seconds(cube, tmp_path):
    path = tmp_path / "radar.nc"
    cube.to_netcdf(path)
    import xarray as xr

    opened = xr.open_dataarray(path)
    trainer = Trainer(
        "conv3d", {"filters": [2]}, epochs=2, steps_per_epoch=3, log_dir=tmp_path / "log", **TINY
    )
    trainer.fit(opened)
    csv = pd.read_csv(tmp_path / "log" / "metrics.csv")
    assert list(csv.steps) == [3, 6] and list(csv.samples) == [6, 12]
    assert (csv.cpu_seconds > 0).all() and (csv.wall_total >= csv.seconds).all()
    np.testing.assert_allclose(csv.cpu_total, csv.cpu_seconds.cumsum(), rtol=1e-6)
    saved = trainer.save(tmp_path / "m.pt")
    training = read_metadata(saved)["training"]
    assert training["data"]["sources"]["train"] == [str(path)]
    assert training["budget"]["steps"] == 6 and training["budget"]["samples"] == 12
    # a cube of per-scan files (open_archive records each frame's file): the folder is named
    from xnowcast.io.archive import FRAME_SOURCES

    scans = cube.copy()
    scans.encoding[FRAME_SOURCES] = {
        t: f"/radar/scans/{i}.nc" for i, t in enumerate(cube.time.values)
    }
    again = Trainer("conv3d", {"filters": [2]}, epochs=1, steps_per_epoch=1, **TINY).fit(scans)
    assert again._data_summary["sources"]["train"] == ["40 files in /radar/scans"]


def test_validation_split_and_skill_monitor(cube):
    trainer = Trainer(
        "conv3d",
        {"filters": [2]},
        epochs=3,
        steps_per_epoch=2,
        val_split=0.25,
        monitor="csi",
        score_threshold=1.0,
        fss_scale=4,
        **TINY,
    )
    trainer.fit(cube)
    summary = trainer._data_summary
    assert summary["val"]["n_windows"] == 8 and summary["train"]["n_windows"] == 26
    hist = trainer.history
    assert hist.val_csi.between(0, 1).all() and hist.val_fss.between(0, 1).all()
    best = trainer.best_epoch
    scores = [trainer.baseline["val_csi"], *hist.val_csi]
    assert scores[best] == max(scores)  # the best epoch by CSI, 0 = the starting weights
    with pytest.raises(ValueError, match="monitor"):
        Trainer("conv3d", monitor="mse", **TINY)


def test_budget_clocks():
    budget = Budget(10, clock="cpu").start()
    sum(i * i for i in range(200_000))  # CPU work
    assert budget.cpu > 0 and 0 < budget.fraction() < 1 and not budget.exhausted()
    assert budget.exhausted(reserve=10)
    with pytest.raises(ValueError, match="budget_clock"):
        Budget(1, clock="gpu")
