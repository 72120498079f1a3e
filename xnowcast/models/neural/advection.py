"""An advection-informed network: a bounded, learned correction of the optical-flow forecast.

``advection-unet`` does not forecast rain from scratch. For every window it
first makes the classical extrapolation (the default ``model="optical-flow"``
forecast: Lucas-Kanade motion and the scale-aware cascade) for all ``n_out``
lead times, then a small U-Net, fed that extrapolation and the last
``frames`` observed frames (in the log space of the rain rate, at half
resolution), predicts a correction that is added to the extrapolation:

``forecast_t = extrapolation_t + bound * tanh(unet(...))``

The correction models what advection cannot (growth, decay, lead-dependent
smoothing); it is bounded by ``bound`` in log space, so a cell can lose at
most a factor ``e**bound`` of ``1 + rain``, and heavy rain never collapses.
The U-Net's last layer starts at zero: an untrained network returns the
extrapolation exactly, and training can only move away from it where the
data ask for it (NowcastNet's evolution-plus-correction split, Zhang et al.
2023, with advection as the evolution).

The package ships weights trained on the shared MeteoSwiss, KNMI and BOM
radar (``xnowcast/models/neural/weights/``; model card in docs/neural.md):
``get_model("advection-unet")`` loads them; ``weights=None`` builds the
untrained network (the identity on the extrapolation), which is what
:class:`xnowcast.Trainer` trains.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xnowcast.checks import boolean, positive_int, real
from xnowcast.models.neural.adapter import TorchModel
from xnowcast.models.neural.base import NowcastNet
from xnowcast.models.neural.unet import UNet, unet_receptive_field

__all__ = ["PRETRAINED", "AdvectionModel", "AdvectionUNet", "build", "pretrained_path"]

#: File name of the shipped weights inside ``xnowcast.models.neural.weights``.
PRETRAINED = "advection-unet.pt"


class AdvectionUNet(NowcastNet):
    """A residual U-Net on top of the optical-flow extrapolation.

    Parameters
    ----------
    n_in : int
        Frames the model reads per window (the optical flow uses them all;
        the network sees the last ``frames``).
    n_out : int
        Lead times.
    frames : int
        Last observed frames fed to the network with the extrapolation.
    depth, filters, max_filters, kernel_size, norm
        The U-Net (see :class:`~xnowcast.models.neural.unet.UNet`).
    half_resolution : bool
        Run the U-Net on 2x2-averaged fields and upsample its correction
        bilinearly (4x cheaper; the correction is smooth anyway).
    bound : float
        Largest correction in log space (``|correction| < bound``).
    decay_bound : float, optional
        Largest damping in log space (``correction > -decay_bound``), when
        smaller than ``bound``: intense cells can lose at most a factor
        ``e**decay_bound`` of ``1 + rain`` whatever the network learned.
        Default: ``bound`` (symmetric).
    extrapolation : dict, optional
        Parameters of the ``optical-flow`` model that makes the
        extrapolation (default: its defaults, the scale-aware cascade).

    Notes
    -----
    ``forward(x)`` takes ``(batch, n_out + frames, H, W)``: the transformed
    extrapolation of every lead time, then the last ``frames`` transformed
    frames (what :meth:`AdvectionModel.network_inputs` makes), and returns
    ``(batch, n_out, H, W)``.

    Examples
    --------
    >>> import torch
    >>> net = AdvectionUNet(n_in=4, n_out=3, frames=2, depth=1, filters=4)
    >>> x = torch.rand(1, 5, 16, 16)
    >>> bool(torch.equal(net(x), x[:, :3]))  # starts as the identity on the extrapolation
    True
    """

    architecture: ClassVar[str] = "advection-unet"

    def __init__(
        self,
        n_in: int = 12,
        n_out: int = 24,
        *,
        frames: int = 4,
        depth: int = 2,
        filters: int = 16,
        max_filters: int = 64,
        kernel_size: int = 3,
        norm: str = "batch",
        half_resolution: bool = True,
        bound: float = 1.0,
        decay_bound: float | None = None,
        extrapolation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(n_in, n_out)
        self.frames = positive_int(frames, "frames")
        if self.frames > self.n_in:
            raise ValueError(f"frames ({frames}) must not exceed n_in ({n_in})")
        self.half_resolution = boolean(half_resolution, "half_resolution")
        self.bound = real(bound, "bound", low=0, low_inclusive=False)
        self.decay_bound = real(
            self.bound if decay_bound is None else decay_bound,
            "decay_bound",
            low=0,
            low_inclusive=False,
        )
        if extrapolation is not None and not isinstance(extrapolation, dict):
            raise TypeError(
                "extrapolation must be a dict of optical-flow parameters, e.g. "
                f"{{'method': 'dis'}}, got {type(extrapolation).__name__}"
            )
        self.extrapolation = dict(extrapolation or {})
        self.in_channels = self.n_out + self.frames
        self.body = UNet(
            self.in_channels,
            self.n_out,
            depth=depth,
            filters=filters,
            max_filters=max_filters,
            kernel_size=kernel_size,
            norm=norm,
        )
        nn.init.zeros_(self.body.head.weight)  # the identity on the extrapolation at start
        if self.body.head.bias is not None:
            nn.init.zeros_(self.body.head.bias)
        self.size_multiple = self.body.size_multiple * (2 if self.half_resolution else 1)

    @property
    def model_class(self) -> type[TorchModel]:
        """The model that runs this network (checkpoints are loaded as one)."""
        return AdvectionModel

    @property
    def receptive_field(self) -> int:
        """Width in pixels of the input region one output pixel depends on."""
        field = unet_receptive_field(self.body.depth, self.body.kernel_size)
        # 2x2 averaging and the bilinear upsampling add one coarse pixel on each side
        return 2 * (field + 2) if self.half_resolution else field

    def get_config(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "depth": self.body.depth,
            "filters": self.body.filters,
            "max_filters": self.body.max_filters,
            "kernel_size": self.body.kernel_size,
            "norm": self.body.norm,
            "half_resolution": self.half_resolution,
            "bound": self.bound,
            "decay_bound": self.decay_bound,
            "extrapolation": dict(self.extrapolation),
        }

    def forward(self, x: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"AdvectionUNet expects (batch, n_out + frames = {self.in_channels}, H, W): the "
                f"extrapolation then the last frames, got {tuple(x.shape)}"
            )
        steps = self._steps(n_out)
        extrapolated = x[:, : self.n_out]
        h = F.avg_pool2d(x, 2) if self.half_resolution else x
        r = self.body(h)
        if self.half_resolution:
            r = F.interpolate(r, size=x.shape[-2:], mode="bilinear", align_corners=False)
        t = torch.tanh(r.float())
        if self.decay_bound == self.bound:
            return (extrapolated + self.bound * t)[:, :steps]
        return (extrapolated + torch.where(t > 0, self.bound * t, self.decay_bound * t))[:, :steps]


class AdvectionModel(TorchModel):
    """The model of ``advection-unet``: optical-flow extrapolation, then the network.

    Same contract, run settings (device, batch size, precision, tiles) and
    checkpoints as every :class:`~xnowcast.models.neural.TorchModel`; the
    extrapolation runs on the whole grid on the CPU, the network on the
    device (tiled with ``tile=``; the overlap follows its receptive field).
    An untrained network (``trained=False``) returns the extrapolation
    exactly. The forecast is NaN where the extrapolation is NaN (outside
    radar coverage, or advected in from outside the grid).

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast import get_model
    >>> model = get_model("advection-unet", weights=None, n_in=4, n_out=3,
    ...                   frames=2, depth=1, filters=4)
    >>> frames = np.zeros((1, 4, 32, 32), "float32"); frames[0, :, 8:20, 8:20] = 5.0
    >>> flow = get_model("optical-flow", n_in=4, n_out=3)
    >>> bool(np.allclose(model.predict(frames), flow.predict(frames), equal_nan=True))
    True
    """

    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        if not isinstance(module, AdvectionUNet):
            raise TypeError(f"module must be an AdvectionUNet, got {type(module).__name__}")
        kwargs.setdefault("transform", "log")
        super().__init__(module, **kwargs)
        self.frames = module.frames
        from xnowcast.models import get_model

        self.extrapolator = get_model(
            "optical-flow", n_in=self.n_in, n_out=self.n_out, **module.extrapolation
        )

    def network_inputs(self, inputs: np.ndarray, extrapolated: np.ndarray) -> np.ndarray:
        """``(batch, n_out + frames, y, x)`` transformed, NaN-free network inputs.

        Parameters
        ----------
        inputs : numpy.ndarray
            ``(batch, n_in, y, x)`` observed frames (physical units).
        extrapolated : numpy.ndarray
            ``(batch, n_out, y, x)`` optical-flow forecast (physical units).
        """
        both = np.concatenate([extrapolated, inputs[:, -self.frames :]], axis=1)
        x = np.asarray(self.transform.forward(both), dtype=np.float32)
        x[~np.isfinite(x)] = self._fill
        return x

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Forecast ``(batch, n_out, y, x)`` rain in physical units from ``(batch, n_in, y, x)``."""
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.n_in:
            raise ValueError(
                f"expected inputs of shape (batch, n_in={self.n_in}, y, x), got {x.shape}"
            )
        return self.correct(x, self.extrapolator.predict(x))

    def correct(self, inputs: np.ndarray, extrapolated: np.ndarray) -> np.ndarray:
        """The network's correction of a given extrapolation (what :meth:`predict` returns).

        For callers that already hold the ``optical-flow`` forecast of the
        windows (made by :attr:`extrapolator`), e.g. to compare both without
        making it twice.

        Parameters
        ----------
        inputs : numpy.ndarray
            ``(batch, n_in, y, x)`` observed frames (physical units).
        extrapolated : numpy.ndarray
            ``(batch, n_out, y, x)`` the extrapolator's forecast of them.

        Returns
        -------
        numpy.ndarray
            ``(batch, n_out, y, x)`` the forecast, NaN where ``extrapolated`` is.

        Examples
        --------
        >>> import numpy as np
        >>> from xnowcast import get_model
        >>> model = get_model("advection-unet", weights=None, n_in=4, n_out=3,
        ...                   frames=2, depth=1, filters=4)
        >>> frames = np.zeros((1, 4, 32, 32), "float32"); frames[0, :, 8:20, 8:20] = 5.0
        >>> extrapolated = model.extrapolator.predict(frames)
        >>> bool(np.array_equal(model.correct(frames, extrapolated), model.predict(frames),
        ...                     equal_nan=True))
        True
        """
        x = np.asarray(inputs, dtype=np.float32)
        extrapolated = np.asarray(extrapolated, dtype=np.float32)
        want = (x.shape[0], self.n_out, *x.shape[2:])
        if x.ndim != 4 or x.shape[1] != self.n_in or extrapolated.shape != want:
            raise ValueError(
                f"expected inputs (batch, n_in={self.n_in}, y, x) and their extrapolation "
                f"{want}, got {x.shape} and {extrapolated.shape}"
            )
        if not self.trained:  # zero correction: the extrapolation itself
            return extrapolated
        self.warn_untrained_leads()
        out_t = self.predict_transformed(self.network_inputs(x, extrapolated))
        if self.clip:
            lo, hi = self.transform.output_range
            np.clip(out_t, lo, hi, out=out_t)
        out = np.asarray(self.transform.inverse(out_t), dtype=np.float32)
        out[np.isnan(extrapolated)] = np.nan
        return out


def pretrained_path() -> Path:
    """Path of the weights shipped with xnowcast (inside the installed package).

    Examples
    --------
    >>> pretrained_path().name
    'advection-unet.pt'
    """
    return Path(str(resources.files("xnowcast.models.neural.weights").joinpath(PRETRAINED)))


def build(weights: str | None = "pretrained", **params: Any) -> TorchModel:
    """Registry factory of ``advection-unet``.

    Parameters
    ----------
    weights : {"pretrained"} or None
        ``"pretrained"``: the weights shipped with xnowcast (trained on the
        shared radar, see docs/neural.md); every other parameter must then
        match them. ``None``: an untrained network, which forecasts the
        extrapolation until trained.
    **params
        ``n_in``, ``n_out``, ``transform``, ``clip`` and the parameters of
        :class:`AdvectionUNet`.
    """
    if weights is None:
        adapter = {k: params.pop(k) for k in ("n_in", "n_out", "transform", "clip") if k in params}
        n_in, n_out = adapter.pop("n_in", 12), adapter.pop("n_out", 24)
        module = AdvectionUNet(n_in=n_in, n_out=n_out, **params)
        return AdvectionModel(module, trained=False, clip=adapter.pop("clip", True), **adapter)
    if weights != "pretrained":
        raise ValueError(
            f"weights must be 'pretrained' (shipped with xnowcast) or None (untrained), got "
            f"{weights!r}; to load your own training, pass the checkpoint: model='model.pt'"
        )
    from xnowcast.models.neural.checkpoint import load_model, read_metadata

    path = pretrained_path()
    meta = read_metadata(path)
    shipped = {"n_in": meta["n_in"], "n_out": meta["n_out"], **meta["model_params"]}
    differ = {k: v for k, v in params.items() if k in shipped and shipped[k] != v}
    unknown = sorted(set(params) - set(shipped))
    if differ or unknown:
        raise ValueError(
            f"the shipped advection-unet weights were trained with {shipped}; got "
            f"{ {**differ, **{k: params[k] for k in unknown}} }. Pass weights=None for an "
            "untrained network with other parameters (train it with xnowcast.Trainer)"
        )
    model = load_model(path)
    model.metadata["weights"] = "pretrained"
    return model
