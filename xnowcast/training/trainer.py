"""Train nowcasting networks on xarray cubes.

:class:`Trainer` turns cubes into windows (:class:`~xnowcast.training.dataset.WindowDataset`),
trains a registered architecture or any ``torch.nn.Module`` with the neural
array contract, and writes safe checkpoints
(:mod:`xnowcast.models.neural.checkpoint`) that forecast straight away::

    trainer = xnowcast.Trainer(model="convlstm", epochs=5, crop=128)
    trainer.fit(train_cube, val_cube)
    trainer.save("convlstm.pt")
    fc = cube.nowcast.forecast(model="convlstm.pt")

The same script runs on several GPUs or machines when launched with
``torchrun`` (DistributedDataParallel; see docs/neural.md).
"""

from __future__ import annotations

import copy
import csv
import gc
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import nn

from xnowcast._version import __version__
from xnowcast.checks import boolean, choice, integer, positive_int, real
from xnowcast.io.archive import FRAME_SOURCES
from xnowcast.io.output import atomic_output
from xnowcast.models.neural.adapter import (
    ADAPTER_PARAMS,
    TorchModel,
    resolve_device,
    resolve_precision,
)
from xnowcast.models.neural.advection import AdvectionModel, AdvectionUNet
from xnowcast.models.neural.checkpoint import read_checkpoint, save_checkpoint, untrained_model
from xnowcast.training.budget import Budget, curriculum_schedule
from xnowcast.training.dataset import WindowDataset, centre_crop, make_loader
from xnowcast.training.losses import SKILL_SCORES, SkillCounter, get_loss
from xnowcast.transforms import get_transform

__all__ = ["Trainer"]

_OPTIMIZERS = ("adam", "adamw", "sgd")
_HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "lr",
    "n_out_trained",
    "teacher_forcing",
    "seconds",
    "val_csi",
    "val_fss",
    "steps",
    "samples",
    "cpu_seconds",
    "wall_total",
    "cpu_total",
)
_MONITORS = ("loss", *SKILL_SCORES)
_SCHEDULES = ("constant", "step", "cosine", "onecycle")


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _sampling(spec: Any, epochs: int):
    """``epoch -> teacher-forcing probability`` (scheduled sampling, decays linearly)."""
    if spec is None or spec is False:
        return None
    if spec is True:
        spec = {}
    if not isinstance(spec, dict):
        raise TypeError(
            "scheduled_sampling must be None, True or a dict {'start': 1.0, 'end': 0.0, "
            f"'epochs': N}}, got {spec!r}"
        )
    unknown = set(spec) - {"start", "end", "epochs"}
    if unknown:
        raise ValueError(f"scheduled_sampling takes keys start, end, epochs; got {sorted(unknown)}")
    start = real(spec.get("start", 1.0), "scheduled_sampling start")
    end = real(spec.get("end", 0.0), "scheduled_sampling end")
    if not (0 <= start <= 1 and 0 <= end <= 1):
        raise ValueError(f"scheduled_sampling probabilities must be in [0, 1], got {spec!r}")
    span = positive_int(spec.get("epochs", epochs), "scheduled_sampling epochs")
    return lambda e: start + (end - start) * min(1.0, e / max(span - 1, 1))


def _as_scores(value: dict[str, Any] | float) -> dict[str, Any]:
    """Validation results as ``{val_loss, val_csi, val_fss}`` (a bare loss has no scores)."""
    if isinstance(value, dict):
        return value
    return {"val_loss": float(value), "val_csi": None, "val_fss": None}


class _Distributed:
    """Process group of a ``torchrun`` launch (or a single process)."""

    def __init__(self) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.created = False
        if self.world_size > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                dist.init_process_group(backend)
                self.created = True
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()

    @classmethod
    def single(cls) -> _Distributed:
        """A one-process group, whatever the environment says."""
        self = cls.__new__(cls)
        self.world_size, self.rank, self.local_rank, self.created = 1, 0, 0, False
        return self

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        if not self.active:
            return values
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def close(self) -> None:
        if self.created:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.created = False


class Trainer:
    """Train a nowcasting network on cubes.

    Parameters
    ----------
    model : str or torch.nn.Module
        A registered architecture (``"conv3d"``, ``"convlstm"``,
        ``"conv-ed-lstm"``, ``"unet"``, or one added with
        :func:`xnowcast.register_model`) or your own network with
        ``forward(x: (B, n_in, H, W)) -> (B, n_out, H, W)``.
    model_params : dict, optional
        Parameters of the architecture, e.g. ``{"hidden": [64, 64]}``.
    n_in, n_out : int
        Input frames and lead times.
    transform : str or dict
        Intensity transform the network works in (:mod:`xnowcast.transforms`),
        e.g. ``"log"``, ``"dbr"`` or ``{"name": "scale", "vmax": 50}``;
        stored in the checkpoint and inverted at forecast time.
    loss : str or dict
        ``"mse"``, ``"mae"``, ``"bce"``, ``"ssim"``, ``"ms-ssim"`` or a mix
        like ``"mse+0.5*ssim"`` / ``{"mse": 1, "ssim": 0.5}``
        (:mod:`xnowcast.training.losses`); missing target pixels are masked.
        ``"csi"`` and ``"fss"`` are differentiable CSI and FSS (over
        ``fss_scale`` pixels) at ``loss_thresholds``, e.g. ``"mse+0.5*csi+0.5*fss"``.
    loss_thresholds : sequence of float, optional
        Rain rates (cube units) of the ``csi`` and ``fss`` losses, averaged
        over; default: ``score_threshold``.
    optimizer : {"adam", "adamw", "sgd"}
    lr : float
        (Peak) learning rate.
    weight_decay : float
    lr_schedule : {"constant", "step", "cosine", "onecycle"}
        ``step``: multiply by ``gamma`` every ``step_size`` epochs; ``cosine``:
        cosine decay over ``epochs``; ``onecycle``: warm-up then anneal, per
        batch. ``cosine`` and ``onecycle`` are planned over the run's
        ``epochs`` when it starts (see :meth:`fit`).
    step_size : int
    gamma : float
    epochs : int
        Epochs to train (a resumed run continues up to this number).
    batch_size : int
        Samples per step (per process under ``torchrun``).
    crop : int or None
        Square training crops (pixels); ``None`` trains on whole frames.
    target_crop : int, optional
        Compare only the central ``target_crop`` pixels (e.g. 128 -> 64).
    stride : int
        Frames between consecutive training windows.
    flips : bool
        Random flips as augmentation.
    min_wet_fraction, wet_threshold : float
        Redraw crops with too little rain (see :class:`WindowDataset`).
    curriculum : None, True, int, dict or list
        Curriculum over output length: the number of lead times trained grows
        from ``start`` (default 1) to ``n_out`` over ``epochs`` epochs
        (``True``: half the run; an int: that many epochs; a list: the length
        per epoch). Recurrent networks then also run fewer steps.
    scheduled_sampling : None, True or dict
        Feed the true previous frame instead of the forecast with a
        probability decaying linearly from ``start`` (1.0) to ``end`` (0.0)
        over ``epochs`` epochs. Needs a network that supports it
        (``convlstm`` with ``autoregressive=True`` or ``variant="stacked"``,
        ``conv-ed-lstm`` with ``decoder_input="output"``).
    grad_clip : float, optional
        Clip the gradient norm.
    precision : {"auto", "fp32", "bf16"}
        ``auto``: bfloat16 autocast on CUDA GPUs, float32 elsewhere.
    early_stopping : int, optional
        Stop after this many epochs without a better validation ``monitor``
        (needs validation data). Whenever ``fit`` has validation data, with
        early stopping or not, the network ends with the weights of the best
        validation epoch, or with its starting weights when no epoch beat
        them (the network is validated before training starts; ``trainer.history``
        still lists every epoch).
    min_delta : float
        Improvement that counts as better for early stopping.
    monitor : {"loss", "csi", "fss"}
        What picks the best epoch and stops early: the validation loss, or
        a skill score at ``score_threshold`` (CSI, or FSS over
        ``fss_scale`` pixels) pooled over the validation windows and lead
        times. Both scores are in :attr:`history` whatever the monitor.
    score_threshold : float
        Rain rate (cube units) of the validation scores, default 1 (mm/h).
    fss_scale : int
        FSS neighbourhood in pixels.
    val_split : float, optional
        Without ``val`` data, validate on the last ``val_split`` of the
        windows of each training cube with at least two windows (those
        windows are then not trained on; they share frames with the
        training windows before them, so the score is not independent:
        for that, pass ``val=`` cubes of other events).
    seed : int
        Seeds initial weights, shuffling, crops and flips: the same seed and
        settings give the same network.
    device : str
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda:0"`` ...
    num_workers : int
        DataLoader worker processes reading and cropping windows.
    steps_per_epoch, val_steps : int, optional
        Cap on the batches per epoch (training / validation).
    time_limit : float, optional
        Training budget in seconds of ``budget_clock``: training stops after
        the optimizer step that spends it (keeping the time the final
        validation takes, measured before training). A growing
        ``curriculum`` is then also laid out over the budget, so that all
        ``n_out`` lead times are trained within it.
    budget_clock : {"wall", "cpu"}
        What ``time_limit`` counts: wall seconds, or CPU seconds of the
        process (all threads; the fair measure on a shared machine).
    cache_dir : str, optional
        ``advection-unet`` only: folder that keeps the optical-flow
        extrapolation of each training window between runs (default: a
        temporary folder).
    log_dir : str, optional
        Folder for ``metrics.csv`` (one row per epoch) and TensorBoard logs
        (when ``tensorboard`` is installed).
    checkpoint : str, optional
        Write a resumable checkpoint here after every epoch.
    resume : str, optional
        Continue training from a checkpoint written by ``checkpoint=`` or
        :meth:`save` (weights, optimizer, schedule, epoch, history).
    overwrite : bool
        Replace an existing ``checkpoint`` file, ``log_dir/metrics.csv`` and
        the file of :meth:`save`. By default existing ones are refused when
        the trainer is made (before any training), except those of the run
        it resumes (``resume=``: its checkpoint and metrics) and those it
        wrote itself.
    progress : bool
        Show a progress bar with the running loss.
    var : str, optional
        Variable of Dataset cubes.
    task : {"nowcast", "downscale"}
        ``"downscale"`` makes a :class:`xnowcast.downscale.DownscaleTrainer`
        (super-resolution of coarse cubes, docs/downscaling.md), the same
        trainer with pairs of coarse and fine cubes in place of windows.

    Attributes
    ----------
    history : pandas.DataFrame
        One row per epoch: ``epoch, train_loss, val_loss, lr, n_out_trained,
        teacher_forcing, seconds`` (wall, of the epoch), ``val_csi,
        val_fss, steps, samples`` (optimizer steps and samples so far),
        ``cpu_seconds`` (of the epoch), ``wall_total, cpu_total`` (of the
        run so far).
    baseline : dict or None
        Validation loss and scores of the network before training.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=16, size=32, seed=1)
    >>> trainer = Trainer("unet", {"depth": 1, "filters": 4}, n_in=3, n_out=2, epochs=1,
    ...                   batch_size=4, crop=16, progress=False)
    >>> trainer.fit(cube).history.columns.tolist()[:3]
    ['epoch', 'train_loss', 'val_loss']
    >>> trainer.model.predict(cube.values[None, :3]).shape
    (1, 2, 32, 32)
    """

    def __new__(cls, *args: Any, task: str = "nowcast", **kwargs: Any) -> Trainer:
        # task="downscale": the downscaling trainer of xnowcast.downscale (a subclass)
        if cls is Trainer and task == "downscale":
            from xnowcast.downscale.training import DownscaleTrainer

            return super().__new__(DownscaleTrainer)
        return super().__new__(cls)

    def __init__(
        self,
        model: str | nn.Module = "convlstm",
        model_params: dict[str, Any] | None = None,
        *,
        n_in: int = 12,
        n_out: int = 24,
        transform: str | dict | None = "log",
        loss: str | dict = "mse",
        loss_thresholds: Sequence[float] | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: str | None = "constant",
        step_size: int = 10,
        gamma: float = 0.5,
        epochs: int = 10,
        batch_size: int = 8,
        crop: int | None = 128,
        target_crop: int | None = None,
        stride: int = 1,
        flips: bool = True,
        min_wet_fraction: float = 0.0,
        wet_threshold: float = 0.1,
        curriculum: Any = None,
        scheduled_sampling: Any = None,
        grad_clip: float | None = None,
        precision: str = "auto",
        early_stopping: int | None = None,
        min_delta: float = 0.0,
        monitor: str = "loss",
        score_threshold: float = 1.0,
        fss_scale: int = 16,
        val_split: float | None = None,
        seed: int = 0,
        device: str = "auto",
        num_workers: int = 0,
        steps_per_epoch: int | None = None,
        val_steps: int | None = None,
        time_limit: float | None = None,
        budget_clock: str = "wall",
        cache_dir: str | os.PathLike | None = None,
        log_dir: str | os.PathLike | None = None,
        checkpoint: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None,
        overwrite: bool = False,
        progress: bool = True,
        var: str | None = None,
        task: str = "nowcast",
    ) -> None:
        if task != "nowcast":  # only reached by Trainer subclasses: __new__ dispatches
            raise ValueError(f"task must be 'nowcast' or 'downscale', got {task!r}")
        self.n_in = positive_int(n_in, "n_in")
        self.n_out = positive_int(n_out, "n_out")
        self.epochs = positive_int(epochs, "epochs")
        self.batch_size = positive_int(batch_size, "batch_size")
        self.stride = positive_int(stride, "stride")
        self.step_size = positive_int(step_size, "step_size")
        self.steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
        self.val_steps = positive_int(val_steps, "val_steps", allow_none=True)
        self.early_stopping = positive_int(early_stopping, "early_stopping", allow_none=True)
        self.time_limit = real(
            time_limit, "time_limit", low=0, low_inclusive=False, allow_none=True
        )
        self.budget_clock = Budget(self.time_limit, budget_clock).clock
        self.monitor = choice(monitor, "monitor", _MONITORS)
        self.score_threshold = real(score_threshold, "score_threshold")
        self.fss_scale = positive_int(fss_scale, "fss_scale")
        self.val_split = real(
            val_split,
            "val_split",
            low=0,
            high=1,
            low_inclusive=False,
            high_inclusive=False,
            allow_none=True,
        )
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.num_workers = integer(num_workers, "num_workers", low=0)
        self.seed = integer(seed, "seed")
        self.lr = real(lr, "lr", low=0, low_inclusive=False)
        self.weight_decay = real(weight_decay, "weight_decay", low=0)
        self.gamma = real(gamma, "gamma", low=0, low_inclusive=False)
        self.min_delta = real(min_delta, "min_delta", low=0)
        self.grad_clip = real(grad_clip, "grad_clip", low=0, low_inclusive=False, allow_none=True)
        self.optimizer_name = choice(optimizer, "optimizer", _OPTIMIZERS)
        lr_schedule = "constant" if lr_schedule is None else lr_schedule
        self.lr_schedule = choice(lr_schedule, "lr_schedule", _SCHEDULES)
        self.crop = positive_int(crop, "crop", allow_none=True)
        self.target_crop = positive_int(target_crop, "target_crop", allow_none=True)
        if self.crop is not None and self.target_crop is not None and self.target_crop > self.crop:
            raise ValueError(f"target_crop ({target_crop}) must not exceed crop ({crop})")
        self.flips = boolean(flips, "flips")
        self.progress = boolean(progress, "progress")
        self.min_wet_fraction = real(min_wet_fraction, "min_wet_fraction", low=0, high=1)
        self.wet_threshold = real(wet_threshold, "wet_threshold")
        self.var = var
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.checkpoint_path = None if checkpoint is None else Path(checkpoint)
        self.resume = None if resume is None else Path(resume)
        self.overwrite = boolean(overwrite, "overwrite")
        # Outputs this trainer may replace without overwrite: those of the run it resumes,
        # and those it wrote itself.
        self._own: set[Path] = set()
        if self.resume is not None:
            self._own.add(_resolved(self.resume))
            if self.log_dir is not None:
                self._own.add(_resolved(self.log_dir / "metrics.csv"))
        self.check_outputs()
        self.device = resolve_device(device)
        self.device_request = str(device)
        self.precision = precision
        self._autocast = resolve_precision(precision, self.device)
        self.transform = get_transform(transform)
        lo, hi = self.transform.output_range
        if loss_thresholds is None:
            loss_thresholds = [self.score_threshold]
        elif isinstance(loss_thresholds, (int, float)):
            loss_thresholds = [loss_thresholds]
        self.loss_thresholds = [real(t, "loss_thresholds") for t in loss_thresholds]
        if not self.loss_thresholds:
            raise ValueError("loss_thresholds must hold at least one rain rate, e.g. [1, 5]")
        with np.errstate(invalid="ignore", divide="ignore"):
            cut = np.asarray(self.transform.forward(np.array(self.loss_thresholds, np.float32)))
        self.loss = get_loss(
            loss, data_range=hi - lo, thresholds=cut.tolist(), scale=self.fss_scale
        )
        self.curriculum_spec = curriculum
        self._curriculum = curriculum_schedule(
            curriculum, self.n_out, self.epochs, budgeted=self.time_limit is not None
        )
        self.scheduled_sampling_spec = scheduled_sampling
        self._sampling = _sampling(scheduled_sampling, self.epochs)

        torch.manual_seed(self.seed)
        self.net, self.architecture, self.model_params = self._build(model, model_params)
        if self._sampling is not None and not getattr(self.net, "supports_teacher_forcing", False):
            raise ValueError(
                "scheduled_sampling needs a network that feeds its forecasts back: "
                "model='convlstm' with model_params={'autoregressive': True} or "
                "{'variant': 'stacked'}, or model='conv-ed-lstm' with decoder_input='output'"
            )
        if (
            "bce" in self.loss.terms
            and self.architecture
            and ((self.model_params or {}).get("output_activation") != "sigmoid")
        ):
            raise ValueError(
                "loss 'bce' compares probabilities: set model_params={'output_activation': "
                "'sigmoid'} and a transform to [0, 1], e.g. transform={'name': 'scale', "
                "'vmax': 50, 'clip': True}"
            )
        self._history: list[dict[str, Any]] = []
        self._epoch = 0
        self._best: tuple[float, dict[str, torch.Tensor]] | None = None
        self._bad_epochs = 0
        self.baseline: dict[str, Any] | None = None
        self._val_seconds = 0.0
        self._budget = Budget(self.time_limit, self.budget_clock)
        self._data_summary: dict[str, Any] = {}
        self._time_step: str | None = None
        self._config = self._describe()
        #: Path of the last checkpoint written by :meth:`save`.
        self.saved_path: Path | None = None

    # ------------------------------------------------------------------ building
    def _build(self, model: Any, params: dict[str, Any] | None):
        if params is not None and not isinstance(params, dict):
            raise TypeError(
                f"model_params must be a dict of architecture parameters, e.g. "
                f"{{'hidden': [64, 64]}}, got {type(params).__name__} {params!r}"
            )
        params = dict(params or {})
        if isinstance(model, nn.Module):
            if params:
                raise TypeError(
                    "model_params apply to registered architectures; build your module with its "
                    "parameters and pass the instance"
                )
            for attr, want in (("n_in", self.n_in), ("n_out", self.n_out)):
                have = getattr(model, attr, None)
                if isinstance(have, int) and have != want:
                    raise ValueError(f"the module has {attr}={have} but the Trainer {attr}={want}")
            return model, None, None
        if not isinstance(model, str):
            raise TypeError(
                "model must be an architecture name or a torch.nn.Module, got "
                f"{type(model).__name__}"
            )
        clash = sorted(set(params) & set(ADAPTER_PARAMS))
        if clash:
            raise ValueError(f"set {', '.join(clash)} on the Trainer itself, not in model_params")
        built = untrained_model(model, n_in=self.n_in, n_out=self.n_out, **params)
        if not isinstance(built, TorchModel):
            raise ValueError(
                f"model {model!r} is not a neural network; trainable architectures are "
                "conv3d, convlstm, conv-ed-lstm and unet (or pass a torch.nn.Module)"
            )
        net = built.module
        get_config = getattr(net, "get_config", None)
        config = get_config() if callable(get_config) else params
        return net, built.name, config

    def _describe(self) -> dict[str, Any]:
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "loss": self.loss.spec,
            "loss_thresholds": self.loss_thresholds,
            "optimizer": self.optimizer_name,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "lr_schedule": self.lr_schedule,
            "step_size": self.step_size,
            "gamma": self.gamma,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "crop": self.crop,
            "target_crop": self.target_crop,
            "stride": self.stride,
            "flips": self.flips,
            "min_wet_fraction": self.min_wet_fraction,
            "wet_threshold": self.wet_threshold,
            "curriculum": self.curriculum_spec,
            "scheduled_sampling": self.scheduled_sampling_spec,
            "grad_clip": self.grad_clip,
            "precision": self.precision,
            "early_stopping": self.early_stopping,
            "min_delta": self.min_delta,
            "seed": self.seed,
            "steps_per_epoch": self.steps_per_epoch,
            "val_steps": self.val_steps,
            "time_limit": self.time_limit,
            "budget_clock": self.budget_clock,
            "monitor": self.monitor,
            "score_threshold": self.score_threshold,
            "fss_scale": self.fss_scale,
            "val_split": self.val_split,
        }

    # ------------------------------------------------------------------ public API
    @property
    def history(self) -> pd.DataFrame:
        """Per-epoch metrics (one row per epoch)."""
        return pd.DataFrame(self._history, columns=_HISTORY_COLUMNS)

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights the network has after :meth:`fit` (0: the starting weights).

        ``None`` without validation data (the network then has the last epoch's weights).
        """
        return self._best_epoch()

    @property
    def model(self) -> TorchModel:
        """The trained network as a forecasting model (a snapshot on the CPU).

        It runs on the trainer's ``device``; other run settings go to
        :func:`xnowcast.forecast` or :meth:`~TorchModel.with_settings`.
        """
        net = copy.deepcopy(self._bare(self.net)).cpu().eval()
        wrapper = getattr(net, "model_class", None) or TorchModel
        model = wrapper(
            net,
            n_in=self.n_in,
            n_out=self.n_out,
            transform=self.transform,
            clip=True,
            trained=bool(self._history),
            metadata={
                "training": self._training_record(),
                "time_step": self._time_step,
                "leads_trained": self._leads_trained(),
            },
        )
        return model.with_settings(device=self.device_request)

    def fit(self, train: Any, val: Any = None) -> Trainer:
        """Train on ``train`` (a cube or a list of cubes), validating on ``val``.

        Training runs until :attr:`epochs` epochs have been run in all; calling
        ``fit`` again continues the same run (same optimizer and schedule)
        after raising ``trainer.epochs``. The ``"cosine"`` and ``"onecycle"``
        schedules are planned over the run's length when it starts and cannot
        be stretched: running past their end is a ``ValueError`` (before any
        training), for a second ``fit`` as for ``resume=``.

        Returns
        -------
        Trainer
            ``self``, with :attr:`history` and :attr:`model` filled in.
        """
        dist = _Distributed()
        try:
            return self._fit(train, val, dist)
        finally:
            if dist.active:
                # DistributedDataParallel's reducer sits in reference cycles: left to a
                # later collection (or to interpreter exit, after the process group is
                # gone) it aborts the process ("terminate called without an active
                # exception") in about one run in five. Free it while the group lives.
                self.net = self._bare(self.net)
                gc.collect()
            dist.close()

    def evaluate(self, cubes: Any, *, max_batches: int | None = None) -> float:
        """The loss of the current network on ``cubes`` (all ``n_out`` lead times).

        Windows are cut as in validation: centre crops, no flips, no teacher
        forcing.

        Examples
        --------
        >>> trainer.evaluate(val_cube)  # doctest: +SKIP
        0.0421
        """
        max_batches = positive_int(max_batches, "max_batches", allow_none=True)
        ds = self._dataset(cubes, training=False)
        loader = make_loader(
            ds,
            batch_size=self.batch_size,
            shuffle=False,
            seed=self.seed,
            limit=None if max_batches is None else max_batches * self.batch_size,
        )
        net = self._bare(self.net).to(self.device)
        was_training = net.training
        try:
            scores = _as_scores(self._validate(net, loader, _Distributed.single(), self.device))
            return float(scores["val_loss"])
        finally:
            net.train(was_training)

    def save(
        self,
        path: str | os.PathLike,
        *,
        training_state: bool = True,
        overwrite: bool | None = None,
    ) -> Path | None:
        """Write a checkpoint of the trained network (see :mod:`xnowcast.models.neural.checkpoint`).

        ``training_state=True`` also stores the optimizer and schedule so that
        ``Trainer(..., resume=path)`` can continue. Under ``torchrun`` only the
        first process writes (the others return ``None``).

        Parameters
        ----------
        path : str or path
            The checkpoint file (``.pt``).
        training_state : bool
            Also store what resuming needs.
        overwrite : bool, optional
            Replace an existing file; default: the trainer's ``overwrite``.
            Files this trainer wrote (its ``checkpoint=``) are always replaced.

        Raises
        ------
        ValueError
            Nothing is trained yet (call :meth:`fit` first), or ``path`` is a folder.
        FileExistsError
            ``path`` exists and may not be replaced.

        Examples
        --------
        >>> Trainer("unet", n_in=2, n_out=1, progress=False).save("m.pt")
        Traceback (most recent call last):
        ...
        ValueError: nothing is trained yet: call fit() before save() (a checkpoint of the untrained network's random weights would forecast noise)
        """
        if not self._history:
            raise ValueError(
                "nothing is trained yet: call fit() before save() (a checkpoint of the "
                "untrained network's random weights would forecast noise)"
            )
        if int(os.environ.get("RANK", "0")) != 0:
            return None
        overwrite = self.overwrite if overwrite is None else boolean(overwrite, "overwrite")
        state = self._training_state() if training_state and hasattr(self, "_optimizer") else None
        self.saved_path = save_checkpoint(
            path,
            self._bare(self.net).state_dict(),
            self._metadata(),
            state,
            overwrite=overwrite or _resolved(path) in self._own,
        )
        self._own.add(_resolved(path))
        return self.saved_path

    def check_outputs(self, *paths: str | os.PathLike) -> None:
        """Check, before any training, that the trainer's outputs (and ``paths``) may be written.

        The ``checkpoint`` file and ``log_dir/metrics.csv`` (and each of
        ``paths``, e.g. the file :meth:`save` will write) must not be folders
        and must not exist, unless ``overwrite`` or they belong to this run
        (see ``overwrite``). :meth:`fit` checks again before it trains.

        Raises
        ------
        ValueError
            A checkpoint path is a folder, or ``log_dir`` a file.
        FileExistsError
            An output exists and may not be replaced.

        Examples
        --------
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> Trainer("unet", n_in=2, n_out=1, checkpoint=folder)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: checkpoint path '...' is a folder; give a file such as '...last.pt'
        """
        from xnowcast.io.output import check_output

        files = [Path(p) for p in paths]
        if self.checkpoint_path is not None:
            files.append(self.checkpoint_path)
        if self.log_dir is not None:
            if self.log_dir.exists() and not self.log_dir.is_dir():
                raise ValueError(
                    f"log_dir {str(self.log_dir)!r} is a file; give a folder for metrics.csv"
                )
            files.append(self.log_dir / "metrics.csv")
        for path in files:
            if path.is_dir():
                raise ValueError(
                    f"checkpoint path {str(path)!r} is a folder; give a file such as "
                    f"{str(path / 'last.pt')!r}"
                )
            check_output(path, overwrite=self.overwrite or _resolved(path) in self._own)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _bare(net: nn.Module) -> nn.Module:
        return net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net

    def _training_record(self) -> dict[str, Any]:
        last = self._history[-1] if self._history else {}
        return {
            "config": self._config,
            "data": self._data_summary,
            "epochs_run": len(self._history),
            "best_epoch": self._best_epoch(),
            "leads_trained": self._leads_trained(),
            "baseline": self.baseline,
            "budget": {
                "clock": self.budget_clock,
                "time_limit": self.time_limit,
                "steps": last.get("steps", 0),
                "samples": last.get("samples", 0),
                "wall_seconds": last.get("wall_total", 0.0),
                "cpu_seconds": last.get("cpu_total", 0.0),
            },
        }

    def _leads_trained(self) -> int:
        """The most lead times any epoch trained on (0 before training)."""
        return max((int(r["n_out_trained"]) for r in self._history), default=0)

    def _monitored(self, row: dict[str, Any]) -> float | None:
        """The row's validation value of ``monitor``, lower is better (``None``: none)."""
        value = row.get("val_loss") if self.monitor == "loss" else row.get(f"val_{self.monitor}")
        if value is None or not np.isfinite(value):
            return None
        return float(value) if self.monitor == "loss" else -float(value)

    def _best_epoch(self) -> int | None:
        """Epoch whose weights the network ends with (0: the starting weights)."""
        vals = [(v, r["epoch"]) for r in self._history if (v := self._monitored(r)) is not None]
        if self.baseline is not None and (v := self._monitored(self.baseline)) is not None:
            vals.append((v - self.min_delta, 0))  # ties keep the starting weights
        return min(vals)[1] if vals else None

    def _metadata(self) -> dict[str, Any]:
        net = self._bare(self.net)
        last = self._history[-1] if self._history else {}
        best = self._best_epoch()
        rows = [self.baseline or {}, *self._history]
        best_row = next((r for r in rows if r.get("epoch") == best), {})
        return {
            "architecture": self.architecture,
            "module_class": f"{type(net).__module__}.{type(net).__qualname__}",
            "model_params": self.model_params or {},
            "n_in": self.n_in,
            "n_out": self.n_out,
            "transform": self.transform.to_dict(),
            "time_step": self._time_step,
            "leads_trained": self._leads_trained(),
            "training": self._training_record(),
            "metrics": {
                "train_loss": last.get("train_loss"),
                "val_loss": last.get("val_loss"),
                "best_val_loss": best_row.get("val_loss"),
                "best_val_csi": best_row.get("val_csi"),
                "best_val_fss": best_row.get("val_fss"),
            },
            "xnowcast_version": __version__,
            "torch_version": torch.__version__,
            "created": pd.Timestamp.now("UTC").isoformat(),
        }

    def _training_state(self) -> dict[str, Any]:
        return {
            "epoch": self._epoch,
            "optimizer": self._optimizer.state_dict(),
            "scheduler": self._scheduler.state_dict() if self._scheduler is not None else None,
            "history": [dict(r) for r in self._history],
            "best_val": None if self._best is None else self._best[0],
            "best_state": None if self._best is None else self._best[1],
            "bad_epochs": self._bad_epochs,
            "baseline": self.baseline,
            "torch_rng": torch.get_rng_state(),
        }

    def _make_optimizer(self, params) -> torch.optim.Optimizer:
        if self.optimizer_name == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer_name == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)

    def _make_scheduler(self, steps_per_epoch: int):
        opt = self._optimizer
        if self.lr_schedule == "step":
            return torch.optim.lr_scheduler.StepLR(opt, self.step_size, self.gamma)
        if self.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs)
        if self.lr_schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=self.lr, total_steps=self.epochs * max(steps_per_epoch, 1)
            )
        return None

    def _check_schedule(self, steps_per_epoch: int) -> None:
        """Refuse to run a cosine or one-cycle schedule past the end it was planned for.

        Both are laid out over the run's length when it starts (``epochs``,
        and for one-cycle the batches per epoch): raising ``epochs`` on a
        second :meth:`fit` or on ``resume=`` would train at the final, near-zero
        learning rate (cosine) or fail in the middle of an epoch (one-cycle).
        """
        sch = self._scheduler
        if self.lr_schedule == "cosine" and self.epochs > sch.T_max:
            planned, needed = f"{sch.T_max} epochs", f"epochs={self.epochs}"
        elif self.lr_schedule == "onecycle":
            left = sch.total_steps - sch.last_epoch
            needed_steps = (self.epochs - self._epoch) * steps_per_epoch
            if needed_steps <= left:
                return
            planned = f"{sch.total_steps} batches"
            needed = (
                f"epochs={self.epochs} with {steps_per_epoch} batches per epoch "
                f"({needed_steps} more batches, {left} left in the schedule)"
            )
        else:
            return
        raise ValueError(
            f"lr_schedule={self.lr_schedule!r} was planned for {planned} when this run started "
            f"and cannot be stretched to {needed}. Start a new run (without resume=) to train "
            "longer with it, or use lr_schedule='step' or 'constant', which have no fixed end"
        )

    def _dataset(self, cubes: Any, training: bool) -> Any:
        """Training samples (random crops, flips) or validation samples (centre crops).

        The network decides what a sample is: frames for frame-to-frame
        networks (:class:`WindowDataset`), the optical-flow extrapolation and
        the last frames for ``advection-unet``
        (:class:`~xnowcast.training.extrapolated.ExtrapolatedDataset`).
        """
        common: dict[str, Any] = dict(
            crop=self.crop,
            stride=self.stride,
            seed=self.seed,
            var=self.var,
            random_crop=training,
            flips=self.flips and training,
            min_wet_fraction=self.min_wet_fraction if training else 0.0,
            wet_threshold=self.wet_threshold,
        )
        net = self._bare(self.net)
        if isinstance(net, AdvectionUNet):
            from xnowcast.training.extrapolated import ExtrapolatedDataset

            if self.target_crop is not None:
                raise ValueError("target_crop is not supported by advection-unet; leave it out")
            model = AdvectionModel(net, transform=self.transform, trained=False)
            return ExtrapolatedDataset(cubes, model, cache_dir=self.cache_dir, **common)
        return WindowDataset(
            cubes,
            n_in=self.n_in,
            n_out=self.n_out,
            transform=self.transform,
            target_crop=self.target_crop,
            **common,
        )

    def _datasets(self, train: Any, val: Any) -> tuple[Any, Any]:
        """The training and validation datasets; ``val_split`` cuts the latter from ``train``."""
        train_ds = self._dataset(train, training=True)
        if val is not None:
            return train_ds, self._dataset(val, training=False)
        if self.val_split is None:
            return train_ds, None
        val_ds = self._dataset(train, training=False)
        held = np.zeros(len(train_ds.index), dtype=bool)
        for k in np.unique(train_ds.index[:, 0]):
            rows = np.flatnonzero(train_ds.index[:, 0] == k)
            if len(rows) >= 2:
                n_val = min(len(rows) - 1, max(1, round(self.val_split * len(rows))))
                held[rows[-n_val:]] = True
        if not held.any():
            raise ValueError(
                f"val_split={self.val_split} finds no cube with two or more windows to split; "
                "pass val= cubes instead"
            )
        train_ds.index, val_ds.index = train_ds.index[~held], val_ds.index[held]
        return train_ds, val_ds

    def _sources(self, cubes: Any) -> list[str]:
        """Where each cube came from: its file (xarray's ``source`` encoding) or attributes."""
        if isinstance(cubes, (list, tuple)):
            return [src for part in cubes for src in self._sources(part)]
        if not isinstance(cubes, (xr.DataArray, xr.Dataset)):
            return []
        out = []
        for cube in [cubes]:
            frames = cube.encoding.get(FRAME_SOURCES)
            if isinstance(frames, dict) and frames:  # open_archive: one file per frame
                folders = sorted({os.path.dirname(str(p)) for p in frames.values()})
                out.append(f"{len(set(frames.values()))} files in {', '.join(folders)}")
                continue
            found = (
                cube.encoding.get("source")
                or cube.attrs.get("source_files")
                or cube.attrs.get("source")
                or cube.attrs.get("title")
            )
            out.append(str(found) if found else "in-memory cube (no file)")
        return out

    def _resume_from(self, path: Path) -> None:
        ck = read_checkpoint(path)
        meta = ck["metadata"]
        mine = {
            "architecture": self.architecture,
            "model_params": self.model_params or {},
            "n_in": self.n_in,
            "n_out": self.n_out,
            "transform": self.transform.to_dict(),
        }
        diff = [k for k, v in mine.items() if meta.get(k) != v]
        if diff:
            detail = "; ".join(
                f"{k}: checkpoint {meta.get(k)!r}, trainer {mine[k]!r}" for k in diff
            )
            raise ValueError(f"cannot resume from {path}: the network differs ({detail})")
        if "training_state" not in ck:
            raise ValueError(
                f"{path} has no training state to resume from (saved with training_state=False); "
                "start a new run"
            )
        self._bare(self.net).load_state_dict(ck["state_dict"])
        st = ck["training_state"]
        self._optimizer.load_state_dict(st["optimizer"])
        if self._scheduler is not None and st.get("scheduler") is not None:
            self._scheduler.load_state_dict(st["scheduler"])
        self._history = [dict(r) for r in st["history"]]
        self._epoch = int(st["epoch"])
        if st.get("best_state") is not None:
            self._best = (float(st["best_val"]), st["best_state"])
        self._bad_epochs = int(st.get("bad_epochs", 0))
        self.baseline = st.get("baseline")
        if isinstance(st.get("torch_rng"), torch.Tensor):
            torch.set_rng_state(st["torch_rng"])

    def _forward(self, net: nn.Module, x: torch.Tensor, k: int, y: torch.Tensor | None, tf: float):
        base = self._bare(net)
        kwargs: dict[str, Any] = {}
        if getattr(base, "variable_n_out", False):
            kwargs["n_out"] = k
        if tf > 0 and y is not None:
            kwargs.update(targets=y, teacher_forcing=tf)
        out = net(x, **kwargs)
        good = (
            isinstance(out, torch.Tensor)
            and out.ndim == 4
            and out.shape[1] >= k
            and out.shape[-2:] == x.shape[-2:]
        )
        if not good:
            raise RuntimeError(
                f"{type(base).__name__}.forward must return (batch, n_out={self.n_out}, H, W) for "
                f"input {tuple(x.shape)}, got {getattr(out, 'shape', type(out).__name__)}"
            )
        return out[:, :k]

    def _compare(self, pred: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        if self.target_crop is not None:
            pred = centre_crop(pred, self.target_crop)
        return self.loss(pred, y, m)

    def _autocast_ctx(self):
        if self._autocast is None:
            return torch.autocast(device_type=self.device.type, enabled=False)
        return torch.autocast(device_type=self.device.type, dtype=self._autocast)

    def _fit(self, train: Any, val: Any, dist: _Distributed) -> Trainer:
        if self.early_stopping and val is None:
            raise ValueError("early_stopping needs validation data: call fit(train, val)")
        if not dist.active:  # under torchrun every process checked when it was made
            self.check_outputs()
        device = self.device
        if dist.active and device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
            torch.cuda.set_device(device)
            self.device = device
        train_ds, val_ds = self._datasets(train, val)
        cpu0 = time.process_time()
        for ds in (train_ds, val_ds):
            if hasattr(ds, "prepare"):  # one-off work per window (extrapolations), not budgeted
                ds.prepare()
        self._data_summary = {
            "prepare_cpu_seconds": time.process_time() - cpu0,
            "train": train_ds.summary(),
            "val": None if val_ds is None else val_ds.summary(),
            "sources": {"train": self._sources(train), "val": self._sources(val)},
        }
        self._time_step = train_ds.time_step
        if val_ds is not None and val_ds.time_step != train_ds.time_step:
            warnings.warn(
                f"the validation cubes have time step {val_ds.time_step}, the training cubes "
                f"{train_ds.time_step}: the validation loss scores another task. Resample one "
                "of them to the other's step",
                UserWarning,
                stacklevel=3,
            )
        common: dict[str, Any] = dict(
            seed=self.seed,
            num_workers=self.num_workers,
            pin_memory=device.type == "cuda",
            rank=dist.rank,
            world_size=dist.world_size,
        )
        loader = make_loader(
            train_ds,
            batch_size=self.batch_size,
            shuffle=True,
            **common,
            limit=None if self.steps_per_epoch is None else self.steps_per_epoch * self.batch_size,
        )
        val_loader = None
        if val_ds is not None:
            val_loader = make_loader(
                val_ds,
                batch_size=self.batch_size,
                shuffle=False,
                **common,
                limit=None if self.val_steps is None else self.val_steps * self.batch_size,
            )
        net = self._bare(self.net).to(device)
        if not hasattr(self, "_optimizer"):  # a second fit() continues the same run
            self._optimizer = self._make_optimizer(net.parameters())
            self._scheduler = self._make_scheduler(len(loader))
        if self.resume is not None:
            self._resume_from(self.resume)
            self.resume = None
        self._check_schedule(len(loader))
        if dist.active:
            net = nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.net = net
        tb = self._tensorboard(dist)
        self._budget = Budget(self.time_limit, self.budget_clock).start()
        if val_loader is not None and self._epoch == 0 and self.baseline is None:
            self._validate_start(net, val_loader, dist, device)
        try:
            while self._epoch < self.epochs:
                row = self._run_epoch(net, loader, val_loader, dist, device)
                self._history.append(row)
                self._epoch += 1
                # best weights and patience first, so that the checkpoint of this epoch
                # holds them and a resumed run keeps or stops as the uninterrupted one
                stop = self._should_stop(row)
                if dist.main:
                    self._log(row, tb)
                    if self.checkpoint_path is not None:
                        self.save(self.checkpoint_path, overwrite=True)  # checked before
                if stop or self._out_of_time(dist, device):
                    break
        finally:
            if tb is not None:
                tb.close()
        if self._best is not None:
            self._bare(net).load_state_dict(self._best[1])
        self.net = self._bare(net)
        return self

    def _out_of_time(self, dist: _Distributed, device, reserve: float = 0.0) -> bool:
        """Whether the budget is spent (keeping ``reserve`` seconds); one answer for all processes."""
        if self.time_limit is None:
            return False
        spent = self._budget.spent()
        if dist.active:  # every process takes the same decision, on the mean time
            spent = dist.all_sum([spent], device)[0] / dist.world_size
        return spent + reserve >= self.time_limit

    def _validate_start(self, net, val_loader, dist: _Distributed, device) -> None:
        """Validate the starting weights: the baseline every epoch must beat, and the time
        the final validation will take (kept free in the budget)."""
        started = time.perf_counter(), time.process_time()
        scores = _as_scores(self._validate(net, val_loader, dist, device))
        self._val_seconds = (
            time.process_time() - started[1]
            if self.budget_clock == "cpu"
            else time.perf_counter() - started[0]
        )
        self.baseline = {"epoch": 0, **scores}
        value = self._monitored(self.baseline)
        if value is not None:
            weights = self._bare(net).state_dict()
            self._best = (value, {k: v.detach().cpu().clone() for k, v in weights.items()})

    def _should_stop(self, row: dict[str, Any]) -> bool:
        value = self._monitored(row)
        if value is None:
            return False
        if self._best is None or value < self._best[0] - self.min_delta:
            weights = self._bare(self.net).state_dict()
            state = {k: v.detach().cpu().clone() for k, v in weights.items()}
            self._best = (value, state)
            self._bad_epochs = 0
            return False
        self._bad_epochs += 1
        return self.early_stopping is not None and self._bad_epochs >= self.early_stopping

    def _run_epoch(self, net, loader, val_loader, dist: _Distributed, device) -> dict[str, Any]:
        epoch = self._epoch
        k = self._curriculum(epoch, self._budget.fraction())
        tf = self._sampling(epoch) if self._sampling is not None else 0.0
        loader.sampler.set_epoch(epoch)
        torch.manual_seed(self.seed * 7919 + epoch)  # teacher-forcing draws, dropout
        lr = self._optimizer.param_groups[0]["lr"]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        last = self._history[-1] if self._history else {}
        steps, samples = int(last.get("steps") or 0), int(last.get("samples") or 0)
        net.train()
        total, count, valid = 0.0, 0.0, 0.0
        bar = self._bar(loader, f"epoch {epoch + 1}/{self.epochs}", dist)
        for x, y, m in bar:
            loss, n_valid = self._step(net, x, y, m, k, tf, device, epoch)
            total += loss * x.shape[0]
            count += x.shape[0]
            valid += n_valid
            steps += 1
            samples += int(x.shape[0]) * dist.world_size
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{total / max(count, 1):.4g}", refresh=False)
            if self._out_of_time(dist, device, reserve=self._val_seconds):
                break  # within one optimizer step of the budget
        if self._scheduler is not None and self.lr_schedule != "onecycle":
            self._scheduler.step()
        total, count, valid = dist.all_sum([total, count, valid], device)
        if count and not valid:
            raise ValueError(
                f"no training window of epoch {epoch + 1} has a valid (non-NaN) target pixel: "
                "the loss would be 0 and nothing learned. Check that the training cubes hold "
                "data (not all NaN) where the crops fall"
            )
        scores: dict[str, Any] = {"val_loss": None, "val_csi": None, "val_fss": None}
        if val_loader is not None:
            scores = _as_scores(self._validate(net, val_loader, dist, device))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return {
            "epoch": epoch + 1,
            "train_loss": total / max(count, 1),
            **scores,
            "lr": lr,
            "n_out_trained": k,
            "teacher_forcing": tf,
            "seconds": wall,
            "steps": steps,
            "samples": samples,
            "cpu_seconds": cpu,
            "wall_total": float(last.get("wall_total") or 0.0) + wall,
            "cpu_total": float(last.get("cpu_total") or 0.0) + cpu,
        }

    def _step(self, net, x, y, m, k: int, tf: float, device, epoch: int) -> tuple[float, float]:
        """One optimizer step on a batch; returns its loss and number of valid target pixels."""
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)[:, :k]
        m = m.to(device, non_blocking=True)[:, :k]
        self._optimizer.zero_grad(set_to_none=True)
        with self._autocast_ctx():
            pred = self._forward(net, x, k, y, tf)
        loss = self._compare(pred.float(), y, m)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {float(loss)} in epoch {epoch + 1}; lower lr, set "
                "grad_clip, or check the transform (values should be of order 1)"
            )
        loss.backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip)
        self._optimizer.step()
        if self.lr_schedule == "onecycle":
            self._scheduler.step()
        return float(loss.detach()), float(m.sum())

    def _validate(self, net, loader, dist: _Distributed, device) -> dict[str, float] | float:
        """Validation loss, and CSI and FSS at ``score_threshold``, over all lead times.

        Subclasses for other tasks may return the loss alone (a float).
        """
        net.eval()
        total, count = 0.0, 0.0
        threshold = float(
            np.asarray(self.transform.forward(np.array([self.score_threshold], np.float32)))[0]
        )
        counter = SkillCounter(threshold, self.fss_scale)
        with torch.inference_mode():
            for x, y, m in loader:
                x, y, m = (t.to(device, non_blocking=True) for t in (x, y, m))
                with self._autocast_ctx():
                    pred = self._forward(net, x, self.n_out, None, 0.0)
                pred = pred.float()
                if self.target_crop is not None:
                    pred = centre_crop(pred, self.target_crop)
                total += float(self.loss(pred, y, m)) * x.shape[0]
                count += x.shape[0]
                counter.add(pred, y, m)
        total, count, *counts = dist.all_sum([total, count, *counter.counts], device)
        scores = counter.scores(counts)
        return {
            "val_loss": total / max(count, 1),
            "val_csi": scores["csi"],
            "val_fss": scores["fss"],
        }

    def _bar(self, loader, desc: str, dist: _Distributed):
        if not self.progress or not dist.main:
            return loader
        from tqdm.auto import tqdm

        return tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)

    def _tensorboard(self, dist: _Distributed):
        if self.log_dir is None or not dist.main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: the CSV is enough
            return None
        return SummaryWriter(str(self.log_dir))

    def _log(self, row: dict[str, Any], tb) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            val = "" if row["val_loss"] is None else f", val_loss {row['val_loss']:.4g}"
            tqdm.write(
                f"epoch {row['epoch']}/{self.epochs}: train_loss {row['train_loss']:.4g}{val} "
                f"({row['seconds']:.1f} s)"
            )
        if self.log_dir is None:
            return
        # The whole history (of a resumed run too), replacing the file atomically.
        path = self.log_dir / "metrics.csv"
        with atomic_output(path, overwrite=True) as tmp, open(tmp, "w", newline="") as fh:
            extra = [k for k in row if k not in _HISTORY_COLUMNS]
            writer = csv.DictWriter(fh, fieldnames=[*_HISTORY_COLUMNS, *extra], restval="")
            writer.writeheader()
            writer.writerows(self._history)
        self._own.add(_resolved(path))
        if tb is not None:
            for key, value in row.items():
                if key != "epoch" and value is not None:
                    tb.add_scalar(key, value, row["epoch"])
