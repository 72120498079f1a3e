"""Downscaling through :class:`xnowcast.Trainer` (``task="downscale"``).

``Trainer(task="downscale", ...)`` builds a :class:`DownscaleTrainer`: the same
trainer (optimizer, schedules, early stopping, time limit, logs, resumable
safe checkpoints, bf16 autocast on GPUs and DistributedDataParallel under
``torchrun``), with what downscaling needs in place of forecast windows:

* :class:`PairDataset`: random crops of (coarse, fine) pairs cut from lazy
  cubes, aligned cell for cell, with NaN masks and static predictors;
* one optimisation step per batch: the content loss (masked MAE/MSE/SSIM
  mixes), or a conditional GAN step (the residual discriminator, then the
  generator, with separate learning rates);
* checkpoint metadata recording the scale, the static predictors and the
  fine and coarse grids of the training data (used by
  :func:`xnowcast.downscale.downscale` to label its output).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn
from torch.utils.data import Dataset

from xnowcast.checks import boolean, choice, positive_int, real
from xnowcast.conventions import as_dataarray, normalize_cube
from xnowcast.downscale.constraint import torch_transform
from xnowcast.downscale.grid import spatial_dims
from xnowcast.downscale.networks import ResidualDiscriminator, build_network
from xnowcast.training.losses import Loss
from xnowcast.training.trainer import Trainer
from xnowcast.transforms import Transform, get_transform

__all__ = [
    "LOSS_SPACES",
    "DownscaleTrainer",
    "PairDataset",
    "PairList",
    "PhysicalLoss",
    "as_pairs",
    "grid_record",
    "masked",
    "pack",
    "regrid_static",
    "unpack",
]


def as_pairs(
    low: Any, high: Any = None, pairs: Any = None, what: str = "train"
) -> tuple[list, list]:
    """``(lows, highs)`` lists from ``low, high`` (cubes or lists) or ``pairs``.

    ``pairs`` is one ``(low, high)`` tuple (as :func:`~xnowcast.downscale.coarsened`
    returns) or a list of them.

    Examples
    --------
    >>> as_pairs(None, pairs=("L", "H"))
    (['L'], ['H'])
    """
    if pairs is not None:
        if low is not None or high is not None:
            raise TypeError(f"give {what} data either as (low, high) or as pairs=, not both")
        if isinstance(pairs, tuple) and len(pairs) == 2 and not isinstance(pairs[0], tuple):
            pairs = [pairs]
        try:
            lows_t, highs_t = zip(*pairs)
        except (TypeError, ValueError):
            raise TypeError(
                f"{what} pairs must be a (low, high) tuple or a list of them, e.g. "
                "xnowcast.downscale.coarsened(cube, 4)"
            ) from None
        return list(lows_t), list(highs_t)
    if low is None or high is None:
        raise TypeError(
            f"downscaling needs coarse and fine {what} data: fit(low, high) or "
            "fit(pairs=xnowcast.downscale.coarsened(cube, factor))"
        )
    lows = list(low) if isinstance(low, (list, tuple)) else [low]
    highs = list(high) if isinstance(high, (list, tuple)) else [high]
    if len(lows) != len(highs):
        raise ValueError(f"{len(lows)} coarse but {len(highs)} fine {what} cubes; give pairs")
    return lows, highs


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (str, int, float, bool, list)):
            out[str(key)] = value
    return out


def grid_record(da: xr.DataArray) -> dict[str, Any]:
    """JSON record of a cube's 1-D y/x coordinates (and their attributes).

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> sorted(grid_record(synthetic_radar(n_times=2, size=8)))
    ['dims', 'x', 'x_attrs', 'y', 'y_attrs']
    """
    y, x = spatial_dims(da)
    rec: dict[str, Any] = {"dims": [y, x]}
    for key, dim in (("y", y), ("x", x)):
        coord = da.coords.get(dim)
        if coord is None or coord.ndim != 1:
            rec[key] = list(range(da.sizes[dim]))
            rec[f"{key}_attrs"] = {}
        else:
            rec[key] = np.asarray(coord.values, dtype="float64").tolist()
            rec[f"{key}_attrs"] = _jsonable(dict(coord.attrs))
    return rec


def regrid_static(field: Any, like: xr.DataArray, name: str = "static") -> np.ndarray:
    """A static predictor on the grid of ``like`` (float32 ``(H, W)``).

    A DataArray is interpolated (linearly) to ``like``'s y/x coordinates when
    its grid differs; an array must already have ``like``'s shape.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=1, size=8)
    >>> regrid_static(cube[0].coarsen(y=2, x=2).mean(), cube).shape
    (8, 8)
    """
    y, x = spatial_dims(like)
    shape = (like.sizes[y], like.sizes[x])
    if isinstance(field, xr.DataArray):
        fy, fx = spatial_dims(field)
        field = field.squeeze(drop=True) if field.ndim > 2 else field
        same = field.shape == shape and all(
            d in field.coords and d2 in like.coords and np.array_equal(field[d], like[d2])
            for d, d2 in ((fy, y), (fx, x))
        )
        if not same:
            if fy not in field.coords or y not in like.coords:
                raise ValueError(
                    f"static predictor {name!r} has no y/x coordinates to regrid with; give it "
                    f"on the fine grid, shape {shape}"
                )
            field = field.interp(
                {fy: like[y].values, fx: like[x].values}, kwargs={"fill_value": None}
            )
        values = np.asarray(field.values, dtype=np.float32)
    else:
        values = np.asarray(field, dtype=np.float32)
    if values.shape != shape:
        raise ValueError(
            f"static predictor {name!r} has shape {values.shape}, the fine grid {shape}; give "
            "it as a DataArray with y/x coordinates (it is regridded) or on the fine grid"
        )
    return values


def pack(frames: np.ndarray, static: np.ndarray, scale: int) -> np.ndarray:
    """One coarse-grid array: the frames, then the fine static fields space-to-depth.

    ``(n_in, h, w)`` and ``(S, h*scale, w*scale)`` become
    ``(n_in + S*scale**2, h, w)`` (lossless; :func:`unpack` reverses it), so
    that a batch is one tensor on the coarse grid like a nowcasting input.

    Examples
    --------
    >>> pack(np.zeros((1, 2, 3)), np.zeros((1, 4, 6)), 2).shape
    (5, 2, 3)
    """
    n_static, hgt, wid = static.shape
    h, w = hgt // scale, wid // scale
    blocks = static.reshape(n_static, h, scale, w, scale).transpose(0, 2, 4, 1, 3)
    return np.concatenate([frames, blocks.reshape(n_static * scale * scale, h, w)])


def unpack(x: torch.Tensor, n_in: int, scale: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(frames, static or None)`` of a packed batch ``(B, n_in + S*scale**2, h, w)``.

    Examples
    --------
    >>> x = torch.from_numpy(pack(np.zeros((1, 2, 3)), np.ones((1, 4, 6)), 2))[None]
    >>> [tuple(t.shape) for t in unpack(x, 1, 2)]
    [(1, 1, 2, 3), (1, 1, 4, 6)]
    """
    frames, rest = x[:, :n_in], x[:, n_in:]
    if rest.shape[1] == 0:
        return frames, None
    return frames, F.pixel_shuffle(rest, scale)


class PairList(list):
    """Training pairs as one list of cubes (coarse then fine), with ``lows`` and ``highs``."""

    def __init__(self, lows: list, highs: list) -> None:
        super().__init__([*lows, *highs])
        self.lows, self.highs = list(lows), list(highs)


class PairDataset(Dataset):
    """Aligned (coarse, fine) crops of downscaling pairs.

    Coarse cell ``i`` covers fine cells ``i*scale .. i*scale + scale - 1`` (as
    :func:`~xnowcast.downscale.coarsened` makes them); a fine grid that is not
    a multiple of the scale (``boundary="pad"``) is padded with NaN.

    Parameters
    ----------
    lows, highs : list of DataArray
        Coarse and fine cubes ``(time, y, x)`` with the same times.
    scale : int
        Fine cells per coarse cell.
    n_in : int
        Coarse frames per sample (the last one at the time of the target).
    transform : str, dict or Transform
        Intensity transform of the network.
    crop : int, optional
        Fine crop side (rounded down to a multiple of ``scale``); ``None``:
        whole grids.
    statics : list of numpy.ndarray, optional
        Per pair, normalised static fields ``(n_static, H, W)`` on its fine grid.
    random_crop, flips : bool
        Training (random crops, flips) or validation (centre crops).
    min_wet_fraction, wet_threshold : float
        Redraw (up to 10 times) crops whose fine field has fewer wet cells.
    seed : int
        Seed of crops and flips.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> from xnowcast.downscale import coarsened
    >>> low, high = coarsened(synthetic_radar(n_times=3, size=32), 4)
    >>> x, y, m = PairDataset([low], [high], scale=4, crop=16)[0]
    >>> tuple(x.shape), tuple(y.shape), tuple(m.shape)
    ((1, 4, 4), (1, 16, 16), (1, 16, 16))
    """

    def __init__(
        self,
        lows: list,
        highs: list,
        *,
        scale: int,
        n_in: int = 1,
        transform: str | dict | Transform | None = "log",
        crop: int | None = None,
        statics: list[np.ndarray] | None = None,
        random_crop: bool = True,
        flips: bool = False,
        min_wet_fraction: float = 0.0,
        wet_threshold: float = 0.1,
        seed: int = 0,
        var: str | None = None,
    ) -> None:
        self.scale = positive_int(scale, "scale")
        self.n_in = positive_int(n_in, "n_in")
        self.lows, self.highs, self.steps = [], [], []
        for k, (lo, hi) in enumerate(zip(lows, highs)):
            lo, hi, step = self._check_pair(k, lo, hi, var)
            self.lows.append(lo)
            self.highs.append(hi)
            self.steps.append(step)
        self.index = np.array(
            [(k, t) for k, lo in enumerate(self.lows) for t in range(self.n_in - 1, lo.shape[0])],
            dtype=np.int64,
        ).reshape(-1, 2)
        if not len(self.index):
            raise ValueError(f"no pair has the n_in={self.n_in} coarse frames a sample needs")
        self.transform = get_transform(transform)
        self.fill = float(np.asarray(self.transform.forward(np.zeros(1, np.float32)))[0])
        self.statics = statics
        self.crop = self._check_crop(crop)
        self.random_crop, self.flips = bool(random_crop), bool(flips)
        self.min_wet_fraction = real(min_wet_fraction, "min_wet_fraction", low=0, high=1)
        self.wet_threshold = float(wet_threshold)
        self.seed = int(seed)
        self._cache: OrderedDict[tuple[int, int, bool], np.ndarray] = OrderedDict()

    def _check_pair(self, k: int, low: Any, high: Any, var: str | None):
        low, li = normalize_cube(low, var, min_frames=1)
        high, hi = normalize_cube(high, var, min_frames=1)
        if low.shape[0] != high.shape[0] or not np.array_equal(
            low[li.time_dim].values, high[hi.time_dim].values
        ):
            raise ValueError(f"pair {k}: the coarse and fine cubes must have the same times")
        for n_lo, n_hi, axis in zip(low.shape[1:], high.shape[1:], ("y", "x")):
            if -(-n_hi // self.scale) != n_lo:
                raise ValueError(
                    f"pair {k}: {n_hi} fine cells along {axis} do not make {n_lo} coarse cells "
                    f"at scale {self.scale}; the coarse grid must have ceil(fine / scale) cells "
                    "(xnowcast.downscale.coarsened makes such pairs)"
                )
        return low, high, pd.Timedelta(li.step)

    def _check_crop(self, crop: int | None) -> int | None:
        if crop is None:
            if len({lo.shape[1:] for lo in self.lows}) > 1:
                raise ValueError("the pairs have different grids; set crop= (fine pixels)")
            return None
        crop = positive_int(crop, "crop") // self.scale
        smallest = min(min(lo.shape[1:]) for lo in self.lows)
        if crop < 1 or crop > smallest:
            raise ValueError(
                f"crop must be between scale={self.scale} and {smallest * self.scale} fine "
                f"pixels (the smallest coarse grid times the scale), got {crop * self.scale}"
            )
        return crop

    def __len__(self) -> int:
        return len(self.index)

    def _frame(self, k: int, t: int, fine: bool) -> np.ndarray:
        key = (k, t, fine)
        if key not in self._cache:
            cube = (self.highs if fine else self.lows)[k]
            self._cache[key] = np.asarray(cube[t].values, dtype=np.float32)
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return self._cache[key]

    def _origin(self, rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, int]:
        if self.crop is None:
            return 0, 0
        hgt, wid = shape[-2:]
        if not self.random_crop:
            return (hgt - self.crop) // 2, (wid - self.crop) // 2
        return int(rng.integers(0, hgt - self.crop + 1)), int(rng.integers(0, wid - self.crop + 1))

    def _cut(self, k: int, t: int, rng: np.random.Generator):
        low = np.stack([self._frame(k, u, False) for u in range(t - self.n_in + 1, t + 1)])
        fine = self._frame(k, t, True)
        c = self.crop if self.crop is not None else low.shape[-1]
        ch = self.crop if self.crop is not None else low.shape[-2]
        s = self.scale
        for _ in range(10):
            y0, x0 = self._origin(rng, low.shape)
            target = np.full((ch * s, c * s), np.nan, np.float32)
            part = fine[y0 * s : (y0 + ch) * s, x0 * s : (x0 + c) * s]
            target[: part.shape[0], : part.shape[1]] = part
            if self.min_wet_fraction <= 0 or not self.random_crop:
                break
            with np.errstate(invalid="ignore"):
                if float(np.mean(target >= self.wet_threshold)) >= self.min_wet_fraction:
                    break
        static = np.zeros((0, ch * s, c * s), np.float32)
        if self.statics is not None:
            st = self.statics[k][:, y0 * s : (y0 + ch) * s, x0 * s : (x0 + c) * s]
            static = np.zeros((st.shape[0], ch * s, c * s), np.float32)
            static[:, : st.shape[1], : st.shape[2]] = st
        return low[:, y0 : y0 + ch, x0 : x0 + c], static, target[None]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, ...]:
        epoch, i = key if isinstance(key, tuple) else (0, key)
        k, t = (int(v) for v in self.index[i])
        rng = np.random.default_rng([self.seed, int(epoch), int(i)])
        low, static, target = self._cut(k, t, rng)
        if self.flips:
            for axis in (-2, -1):
                if rng.random() < 0.5:
                    low, static, target = (np.flip(a, axis) for a in (low, static, target))
        xt, yt = (
            np.asarray(self.transform.forward(np.ascontiguousarray(a)), dtype=np.float32)
            for a in (low, target)
        )
        mask = np.isfinite(yt)
        xt[~np.isfinite(xt)] = self.fill
        yt[~mask] = self.fill
        packed = pack(xt, np.ascontiguousarray(static), self.scale)
        return tuple(
            torch.from_numpy(np.ascontiguousarray(a)) for a in (packed, yt, mask.astype(np.float32))
        )

    def summary(self) -> dict[str, Any]:
        """JSON-able description of the pairs (recorded in checkpoints)."""
        return {
            "n_samples": len(self),
            "crop": None if self.crop is None else self.crop * self.scale,
            "flips": self.flips,
            "pairs": [
                {
                    "name": None if hi.name is None else str(hi.name),
                    "units": str(hi.attrs.get("units", "")),
                    "coarse_shape": [int(v) for v in lo.shape],
                    "fine_shape": [int(v) for v in hi.shape],
                }
                for lo, hi in zip(self.lows, self.highs)
            ],
        }

    @property
    def time_step(self) -> str | None:
        """The common time step of the pairs (ISO 8601), ``None`` when they differ."""
        steps = set(self.steps)
        return steps.pop().isoformat() if len(steps) == 1 else None


#: Where :class:`DownscaleTrainer` compares fields (its ``loss_space``).
LOSS_SPACES = ("transform", "physical")


class PhysicalLoss(Loss):
    """A loss that compares fields in physical units: both go through the inverse transform.

    Parameters
    ----------
    loss : Loss
        The terms (``"mse"``, ``"mae+0.2*csi"``, ...).
    transform : str, dict or Transform
        The network's transform (smooth: see
        :func:`~xnowcast.downscale.constraint.torch_transform`).
    thresholds : sequence of float
        Rain rates of the ``csi`` and ``fss`` terms (physical units).

    Examples
    --------
    >>> import torch
    >>> from xnowcast.training.losses import get_loss
    >>> loss = PhysicalLoss(get_loss("mse"), "log", [1.0])
    >>> y = torch.log1p(torch.tensor([[[[3.0]]]]))
    >>> float(loss(torch.zeros_like(y), y))
    9.0
    """

    def __init__(self, loss: Loss, transform: Any, thresholds: Any) -> None:
        tf = get_transform(transform)
        self._inverse = torch_transform(tf)[1]
        lo, hi = (float(v) for v in tf.inverse(np.array(tf.output_range, np.float32)))
        needs = any(name in ("csi", "fss") for name in loss.terms)
        super().__init__(loss.terms, hi - lo, thresholds if needs else None, loss.scale)
        self._lowest = tf.output_range[0]

    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        phys = self._inverse(pred.float().clamp_min(self._lowest))
        return super().__call__(phys, self._inverse(target.float()), mask)


def masked(field: torch.Tensor, mask: torch.Tensor, fill: float) -> torch.Tensor:
    """``field`` where ``mask`` is 1, ``fill`` elsewhere (what the discriminator sees).

    Examples
    --------
    >>> masked(torch.ones(2), torch.tensor([1.0, 0.0]), -1.0).tolist()
    [1.0, -1.0]
    """
    return torch.where(mask > 0, field, torch.full_like(field, fill))


def _check_finite(loss: torch.Tensor, epoch: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"the training loss became {float(loss)} in epoch {epoch + 1}; lower lr, set "
            "grad_clip, or check the transform (values should be of order 1)"
        )


class DownscaleTrainer(Trainer):
    """The :class:`~xnowcast.Trainer` for downscaling (made by ``Trainer(task="downscale")``).

    Parameters
    ----------
    model : str or torch.nn.Module
        A name of :func:`xnowcast.downscale.list_architectures` (``"resnet-spc"``,
        ``"rec-resnet-spc"``, ...) or a module with
        ``forward(x (B, n_in, h, w), static (B, S, H, W) or None) -> (B, 1, H, W)``.
    model_params : dict, optional
        Network parameters (``filters``, ``blocks``, ``attention``, ``dropout``,
        ``normalization``, ...; see :class:`~xnowcast.downscale.SRNet`).
    scale : int
        Fine cells per coarse cell.
    n_in : int
        Coarse frames per sample (more than 1 for the recurrent ``rec-*``).
    static : dict, optional
        Static fine-resolution predictors ``{name: DataArray or array}``
        (elevation, land mask): regridded to the fine grid of the training
        pairs, normalised (mean 0, standard deviation 1) and stored in the
        checkpoint with the network.
    adversarial : bool
        Conditional GAN training with a :class:`~xnowcast.downscale.ResidualDiscriminator`.
    discriminator_kwargs : dict, optional
        Its parameters (``filters``, ``blocks``).
    discriminator_lr : float
        Learning rate of the discriminator (``lr`` is the generator's).
    adversarial_weight : float
        Weight of the adversarial term in the generator's loss.
    loss_space : {"transform", "physical"}
        Where the content loss compares the fields: in the network's
        ``transform`` (default; the MAE of ``log1p`` rain rates with
        ``transform="log"``), or in physical units after the inverse
        transform (the MSE of mm/h, which PSNR scores, while the network
        still sees ``log1p``); ``loss_thresholds`` are rain rates either way.
    transform, loss, crop, epochs, ...
        As for nowcasting (:class:`~xnowcast.Trainer`); ``loss`` defaults to
        ``"mae"``, ``crop`` (fine pixels, rounded down to a multiple of
        ``scale``) to 64. Options of forecast windows (``n_out``,
        ``curriculum``, ``scheduled_sampling``, ``target_crop``, ``stride``)
        do not apply.

    Examples
    --------
    >>> import xnowcast
    >>> from xnowcast.datasets import synthetic_radar
    >>> from xnowcast.downscale import coarsened
    >>> pairs = coarsened(synthetic_radar(n_times=4, size=32), 4)
    >>> tr = xnowcast.Trainer(task="downscale", model="resnet-spc", scale=4,
    ...                       model_params={"filters": 4, "blocks": 1}, epochs=1,
    ...                       crop=16, batch_size=2, progress=False)
    >>> tr.fit(pairs=pairs).history["epoch"].tolist()
    [1]
    """

    def __init__(
        self,
        model: str | nn.Module = "resnet-spc",
        model_params: dict[str, Any] | None = None,
        *,
        task: str = "downscale",
        scale: int = 4,
        n_in: int = 1,
        static: dict[str, Any] | None = None,
        adversarial: bool = False,
        discriminator_kwargs: dict[str, Any] | None = None,
        discriminator_lr: float = 1e-4,
        adversarial_weight: float = 1e-3,
        loss: str | dict = "mae",
        crop: int | None = 64,
        loss_space: str = "transform",
        **kwargs: Any,
    ) -> None:
        if task != "downscale":
            raise ValueError(f"DownscaleTrainer trains task='downscale', got task={task!r}")
        unused = sorted(
            set(kwargs) & {"n_out", "curriculum", "scheduled_sampling", "target_crop", "stride"}
        )
        if unused:
            raise TypeError(f"{', '.join(unused)} are options of forecast windows, not downscaling")
        self.scale = positive_int(scale, "scale")
        if static is not None and not isinstance(static, dict):
            raise TypeError(f"static must be a dict {{name: field}}, got {type(static).__name__}")
        self.static_fields = dict(static or {})
        self.adversarial = boolean(adversarial, "adversarial")
        self.discriminator_kwargs = dict(discriminator_kwargs or {})
        self.discriminator_lr = real(
            discriminator_lr, "discriminator_lr", low=0, low_inclusive=False
        )
        self.adversarial_weight = real(adversarial_weight, "adversarial_weight", low=0)
        self.loss_space = choice(loss_space, "loss_space", LOSS_SPACES)
        super().__init__(model, model_params, n_in=n_in, n_out=1, loss=loss, crop=crop, **kwargs)
        if self.loss_space == "physical":
            self.loss = PhysicalLoss(self.loss, self.transform, self.loss_thresholds)
        self._fill = float(np.asarray(self.transform.forward(np.zeros(1, np.float32)))[0])
        self._static_norm: dict[str, list[float]] = {}
        self._grids: dict[str, Any] = {}
        if self.adversarial:
            torch.manual_seed(self.seed + 1)
            self.discriminator: nn.Module = ResidualDiscriminator(
                self.scale, self.n_in, **self.discriminator_kwargs
            )
            self._d_optimizer = torch.optim.Adam(
                self.discriminator.parameters(), lr=self.discriminator_lr, betas=(0.5, 0.999)
            )
        self._config = self._describe()

    # ------------------------------------------------------------------ building
    def _build(self, model: Any, params: dict[str, Any] | None):
        if params is not None and not isinstance(params, dict):
            raise TypeError(f"model_params must be a dict, got {type(params).__name__}")
        params = dict(params or {})
        if isinstance(model, nn.Module):
            if params:
                raise TypeError("model_params apply to registered architectures, not a module")
            have = getattr(model, "scale", self.scale)
            if have != self.scale:
                raise ValueError(f"the module has scale={have} but the Trainer scale={self.scale}")
            return model, None, None
        if not isinstance(model, str):
            raise TypeError(
                f"model must be a name or a torch.nn.Module, got {type(model).__name__}"
            )
        if "transform" in params:
            raise TypeError("set transform= on the Trainer, not in model_params")
        net = build_network(
            model,
            self.scale,
            n_in=self.n_in,
            n_static=len(self.static_fields),
            transform=self.transform,
            **params,
        )
        return net, model.lower(), params

    def _describe(self) -> dict[str, Any]:
        config = super()._describe()
        for key in ("n_out", "curriculum", "scheduled_sampling", "target_crop", "stride"):
            config.pop(key, None)
        config.update(
            task="downscale",
            scale=getattr(self, "scale", None),
            static=sorted(getattr(self, "static_fields", {})),
            adversarial=getattr(self, "adversarial", False),
            discriminator_kwargs=getattr(self, "discriminator_kwargs", {}),
            discriminator_lr=getattr(self, "discriminator_lr", None),
            adversarial_weight=getattr(self, "adversarial_weight", None),
            loss_space=getattr(self, "loss_space", "transform"),
        )
        return config

    # ------------------------------------------------------------------ public API
    def fit(  # type: ignore[override]
        self, train_low: Any = None, train_high: Any = None, val: Any = None, *, pairs: Any = None
    ) -> DownscaleTrainer:
        """Train on coarse/fine pairs, validating on ``val``.

        Parameters
        ----------
        train_low, train_high : DataArray or list
            Coarse and fine cubes ``(time, y, x)`` with the same times; coarse
            cell ``i`` covers fine cells ``i*scale .. i*scale + scale - 1``.
        val : tuple or list, optional
            ``(val_low, val_high)``, or a list of such pairs.
        pairs : tuple or list, optional
            Training data as ``(low, high)`` pairs instead of ``train_low,
            train_high``, e.g. ``coarsened(cube, 4)``.
        """
        lows, highs = as_pairs(train_low, train_high, pairs)
        val_pairs = None if val is None else as_pairs(None, None, val, "val")
        statics = self._prepare_statics(highs)
        self._train_statics = statics
        self._grids = {"fine": grid_record(as_dataarray(highs[0], self.var))}
        self._grids["coarse"] = grid_record(as_dataarray(lows[0], self.var))
        base = self._bare(self.net)
        attach = getattr(base, "attach_static", None)
        if statics is not None and callable(attach):
            attach(torch.from_numpy(statics[0]))
        super().fit(PairList(lows, highs), None if val_pairs is None else PairList(*val_pairs))
        return self

    def _prepare_statics(self, highs: list) -> list[np.ndarray] | None:
        if not self.static_fields:
            return None
        out = []
        for k, high in enumerate(highs):
            like = as_dataarray(high, self.var)
            fields = np.stack(
                [regrid_static(f, like, name) for name, f in self.static_fields.items()]
            )
            if k == 0 and not self._static_norm:
                for name, field in zip(self.static_fields, fields):
                    mean, std = float(np.nanmean(field)), float(np.nanstd(field))
                    self._static_norm[name] = [mean, std if std > 0 else 1.0]
            norm = np.array(list(self._static_norm.values()), np.float32)
            fields = (fields - norm[:, :1, None]) / norm[:, 1:, None]
            out.append(np.nan_to_num(fields, nan=0.0).astype(np.float32))
        return out

    @property
    def model(self):
        """The trained network as a :class:`~xnowcast.downscale.Downscaler` (on the CPU)."""
        import copy

        from xnowcast.downscale.apply import Downscaler

        net = copy.deepcopy(self._bare(self.net))
        return Downscaler(
            net,
            name=self.architecture or type(net).__name__,
            scale=self.scale,
            n_in=self.n_in,
            transform=self.transform,
            static_names=list(self.static_fields),
            static_norm=self._static_norm,
            grids=self._grids,
            params=self.model_params or {},
        )

    # ------------------------------------------------------------------ internals
    def _dataset(self, cubes: Any, training: bool) -> PairDataset:
        if isinstance(cubes, PairList):
            lows, highs = cubes.lows, cubes.highs
        else:
            lows, highs = as_pairs(None, None, cubes)
        statics = getattr(self, "_train_statics", None) if training else None
        if not training and self.static_fields:
            statics = self._prepare_statics(highs)
        return PairDataset(
            lows,
            highs,
            scale=self.scale,
            n_in=self.n_in,
            transform=self.transform,
            crop=self.crop,
            statics=statics,
            random_crop=training,
            flips=self.flips and training,
            min_wet_fraction=self.min_wet_fraction if training else 0.0,
            wet_threshold=self.wet_threshold,
            seed=self.seed,
            var=self.var,
        )

    def _metadata(self) -> dict[str, Any]:
        meta = super()._metadata()
        base = self._bare(self.net)
        static = getattr(base, "static_fields", None)
        meta.update(
            task="downscale",
            scale=self.scale,
            grids=self._grids,
            static={
                "names": list(self.static_fields),
                "norm": self._static_norm,
                "shape": None if static is None else list(static.shape),
            },
        )
        return meta

    def _training_state(self) -> dict[str, Any]:
        state = super()._training_state()
        if self.adversarial:
            state["discriminator"] = self._bare(self.discriminator).state_dict()
            state["discriminator_optimizer"] = self._d_optimizer.state_dict()
        return state

    def _resume_from(self, path: Any) -> None:
        super()._resume_from(path)
        if self.adversarial:
            from xnowcast.models.neural.checkpoint import read_checkpoint

            st = read_checkpoint(path)["training_state"]
            if "discriminator" not in st:
                raise ValueError(f"{path} was not trained adversarially; set adversarial=False")
            self._bare(self.discriminator).load_state_dict(st["discriminator"])
            self._d_optimizer.load_state_dict(st["discriminator_optimizer"])

    def _forward(self, net: nn.Module, x: torch.Tensor, k: int, y: Any, tf: float):
        frames, static = unpack(x, self.n_in, self.scale)
        out = net(frames, static)
        want = (x.shape[0], 1, x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
            raise RuntimeError(
                f"{type(self._bare(net)).__name__}.forward must return {want} for coarse frames "
                f"{tuple(frames.shape)}, got {getattr(out, 'shape', type(out).__name__)}"
            )
        return out

    def _step(self, net, x, y, m, k: int, tf: float, device, epoch: int) -> tuple[float, float]:
        if not self.adversarial:
            return super()._step(net, x, y, m, k, tf, device, epoch)
        x, y, m = (t.to(device, non_blocking=True) for t in (x, y, m))
        disc = self._discriminator_on(device)
        frames = x[:, : self.n_in]
        with self._autocast_ctx():
            fake = self._forward(net, x, k, y, tf).float()
        self._d_optimizer.zero_grad(set_to_none=True)
        with self._autocast_ctx():
            real_logit = disc(masked(y, m, self._fill), frames).float()
            fake_logit = disc(masked(fake.detach(), m, self._fill), frames).float()
        d_loss = F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
        d_loss = d_loss + F.binary_cross_entropy_with_logits(
            fake_logit, torch.zeros_like(fake_logit)
        )
        d_loss.backward()
        self._d_optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)
        content = self.loss(fake, y, m)
        _check_finite(content, epoch)
        with self._autocast_ctx():
            gen_logit = disc(masked(fake, m, self._fill), frames).float()
        adv = F.binary_cross_entropy_with_logits(gen_logit, torch.ones_like(gen_logit))
        (content + self.adversarial_weight * adv).backward()
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip)
        self._optimizer.step()
        if self.lr_schedule == "onecycle":
            self._scheduler.step()
        return float(content.detach()), float(m.sum())

    def _discriminator_on(self, device) -> nn.Module:
        """The discriminator on ``device`` in training mode (DistributedDataParallel under torchrun)."""
        disc = self._bare(self.discriminator)
        if next(disc.parameters()).device != device:
            disc.to(device)
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if distributed and not isinstance(self.discriminator, nn.parallel.DistributedDataParallel):
            ids = [device.index] if device.type == "cuda" else None
            self.discriminator = nn.parallel.DistributedDataParallel(disc, device_ids=ids)
        self.discriminator.train()
        return self.discriminator
