"""What the advection-unet scripts share: the radar events and the training recipe.

``train_advection_unet.py`` (the shipped weights) and ``eval_advection_unet.py``
(leave-one-event-out) train with :func:`make_trainer`, so the evaluated models
are trained exactly as the shipped one, on fewer events.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

import xnowcast
from xnowcast.training import Trainer

ROOT = Path(__file__).resolve().parents[1]
RADAR = ROOT.parent / "shared" / "data" / "radar"
EVENTS = ("mch", "knmi", "bom")
N_IN, N_OUT, GRID = 12, 24, 700

#: The shipped network: the registry defaults of advection-unet, written out, with damping
#: bounded apart (``decay_bound``: MSE in log space learns to damp intense cores whose position
#: is uncertain; a cell keeps at least ``e**-0.3`` of ``1 + rain``).
MODEL_PARAMS = {
    "frames": 4,
    "depth": 2,
    "filters": 16,
    "max_filters": 64,
    "half_resolution": True,
    "bound": 1.0,
    "decay_bound": 0.3,
}
#: A tiny network for ``--quick`` runs (CI).
QUICK_PARAMS = {**MODEL_PARAMS, "depth": 1, "filters": 4}

#: The training recipe (besides data, budget and network).
RECIPE = {
    "transform": "log",
    "loss": "mse",
    "optimizer": "adam",
    "lr": 1e-4,  # a small correction: at 1e-3 what it learned on two events hurt the third
    "batch_size": 8,
    "crop": 128,
    "min_wet_fraction": 0.1,
    "grad_clip": 1.0,
    "val_split": 0.2,
    "monitor": "csi",
    "score_threshold": 1.0,
    "fss_scale": 16,
    "steps_per_epoch": 25,
    "budget_clock": "cpu",
    "epochs": 100_000,  # the CPU budget ends the run
}


def load(name: str, quick: bool = False) -> xr.DataArray:
    """One shared event in mm/h, at most GRID x GRID pixels (as bench_optical_flow.py), in memory.

    ``quick``: 96 x 96 pixels around the rain and 37 frames (two windows).
    """
    source = None
    if name == "mch":
        source = RADAR / "mch-20150515.nc"
        cube = xr.open_dataset(source)["precip_intensity"]
    elif name == "knmi":
        source = RADAR / "knmi-201008.nc"
        cube = xr.open_dataset(source)["precip_intensity"]
    elif name == "bom":
        acc = xnowcast.open_archive(str(RADAR / "bom-2-20180616" / "*.nc"))
        step_h = pd.Timedelta(np.diff(acc.time.values).min()).total_seconds() / 3600
        cube = (acc / step_h).assign_attrs(acc.attrs, units="mm h-1", standard_name="rainfall_rate")
        cube.encoding.update(acc.encoding)  # the file of each frame, recorded in checkpoints
    else:
        raise ValueError(f"unknown event {name!r}; valid: {', '.join(EVENTS)}")
    cube = cube.isel(y=slice(0, GRID), x=slice(0, GRID))
    if quick:
        cube = cube.isel(time=slice(0, N_IN + N_OUT + 1))
        mean = cube.mean("time").fillna(0).values
        y0, x0 = _rainiest(mean >= 1.0, 96)
        cube = cube.isel(y=slice(y0, y0 + 96), x=slice(x0, x0 + 96))
    encoding = dict(cube.encoding)
    cube = cube.astype("float32").load()
    cube.encoding.update(encoding)
    if source is not None:  # the file the cube came from, recorded in checkpoints
        cube.encoding["source"] = str(source)
    return cube


def _rainiest(wet: np.ndarray, size: int) -> tuple[int, int]:
    table = np.pad(wet.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    s = size
    sums = table[s:, s:] - table[:-s, s:] - table[s:, :-s] + table[:-s, :-s]
    y0, x0 = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y0), int(x0)


def make_trainer(
    budget: float,
    *,
    quick: bool = False,
    cache_dir: str | None = None,
    recipe: dict | None = None,
    model: dict | None = None,
    **kwargs,
) -> Trainer:
    """The advection-unet trainer with ``budget`` CPU seconds (one thread).

    ``recipe`` and ``model`` override entries of :data:`RECIPE` and of the
    network's parameters (experiments: ``eval_advection_unet.py --recipe``).
    """
    params = {**(QUICK_PARAMS if quick else MODEL_PARAMS), **(model or {})}
    recipe = {**RECIPE, **({"crop": 48, "steps_per_epoch": 2} if quick else {}), **(recipe or {})}
    return Trainer(
        "advection-unet",
        params,
        n_in=N_IN,
        n_out=N_OUT,
        time_limit=budget,
        device="cpu",
        seed=0,
        cache_dir=cache_dir,
        progress=False,
        **recipe,
        **kwargs,
    )


def machine() -> str:
    """The machine and its load, for the docs."""
    load = os.getloadavg()
    return (
        f"CPU ({platform.machine()}, {os.cpu_count()} cores, torch {torch.get_num_threads()} "
        f"thread(s)), PyTorch {torch.__version__}; load average {load[0]:.1f} (1 min) / "
        f"{load[1]:.1f} (5 min) at {time.strftime('%H:%M UTC', time.gmtime())}"
    )
