"""Mask-aware training losses and their weighted mixes.

Every loss takes ``(prediction, target, mask)`` with tensors of shape
``(batch, time, H, W)`` and an optional ``mask`` of the same shape (1 where
the target is valid, 0 where it is missing, e.g. outside radar range) and
returns a scalar to minimise. Missing pixels never contribute.

=============  ==================================================================
name           loss
=============  ==================================================================
``mse``        mean squared error
``mae``        mean absolute error
``bce``        binary cross-entropy; predictions and targets in ``[0, 1]``
               (a ``scale`` transform and ``output_activation="sigmoid"``)
``ssim``       ``1 - SSIM`` (Gaussian window 11, sigma 1.5), per frame
``ms-ssim``    ``1 - MS-SSIM`` (5 scales, fewer on small crops), per frame
``csi``        ``1 - CSI`` of soft exceedances of ``thresholds``, per lead time
``fss``        ``1 - FSS`` of soft exceedances of ``thresholds`` over ``scale`` pixels
=============  ==================================================================

Mixes are written ``"mse+0.5*ssim"`` or ``{"mse": 1.0, "ssim": 0.5}``.

``csi`` and ``fss`` score areas, as the verification does: a pixel exceeds a
threshold through a sigmoid of width ``softness`` (differentiable), and the
scores are pooled over the batch and the pixels of each lead time, then
averaged over lead times and thresholds. Mixed with ``mse`` they reward rain
in the right place above each threshold, where ``mse`` alone rewards damping
intense cores whose position is uncertain. :class:`~xnowcast.Trainer` gives
them its ``loss_thresholds`` (rain rates) in the network's space and its
``fss_scale``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "SKILL_SCORES",
    "Loss",
    "SkillCounter",
    "get_loss",
    "list_losses",
    "ms_ssim",
    "soft_csi",
    "soft_fss",
    "ssim",
]

_MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked mean squared error."""
    return _masked_mean((pred - target) ** 2, mask)


def mae(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked mean absolute error."""
    return _masked_mean((pred - target).abs(), mask)


def bce(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked binary cross-entropy of probabilities ``pred`` against ``target`` in ``[0, 1]``."""
    lo, hi = float(target.min()), float(target.max())
    if lo < 0 or hi > 1:
        raise ValueError(
            f"loss 'bce' needs targets in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; use "
            "transform={'name': 'scale', 'vmin': 0, 'vmax': ..., 'clip': True} and "
            "model_params={'output_activation': 'sigmoid'}, or another loss"
        )
    eps = 1e-6
    values = F.binary_cross_entropy(pred.clamp(eps, 1 - eps), target, reduction="none")
    return _masked_mean(values, mask)


def _gauss(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of ``(N, 1, H, W)``."""
    k = win.numel()
    x = F.conv2d(x, win.view(1, 1, k, 1))
    return F.conv2d(x, win.view(1, 1, 1, k))


def _ssim_maps(
    x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, data_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_y = _blur(x, win), _blur(y, win)
    sxx = _blur(x * x, win) - mu_x**2
    syy = _blur(y * y, win) - mu_y**2
    sxy = _blur(x * y, win) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return lum * cs, cs


def _window_valid(mask: torch.Tensor | None, win: torch.Tensor) -> torch.Tensor | None:
    """1 where a whole filter window lies on valid pixels."""
    if mask is None:
        return None
    k = win.numel()
    box = F.avg_pool2d(mask, k, stride=1)
    return (box > 1 - 1e-4).to(mask.dtype)


def _per_image_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean over (H, W) of each image ``(N, 1, H, W)`` -> ``(N,)``, ``NaN`` when no weight."""
    if weight is None:
        return values.flatten(1).mean(1)
    total = weight.flatten(1).sum(1)
    out = (values * weight).flatten(1).sum(1) / total.clamp_min(1.0)
    return torch.where(total > 0, out, torch.full_like(out, float("nan")))


def _frames(pred, target, mask):
    n = pred.shape[0] * pred.shape[1]
    x = pred.reshape(n, 1, *pred.shape[-2:]).float()
    y = target.reshape(n, 1, *target.shape[-2:]).float()
    m = None if mask is None else mask.reshape(n, 1, *mask.shape[-2:]).float()
    return x, y, m


def _window(side: int, win_size: int) -> int:
    size = min(win_size, side if side % 2 else side - 1)
    if size < 1:
        raise ValueError(f"frames of {side} pixels are too small for SSIM")
    return size


def _nanmean(v: torch.Tensor) -> torch.Tensor:
    ok = ~torch.isnan(v)
    if not bool(ok.any()):
        return v.new_zeros(())
    return v[ok].mean()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    data_range: float = 1.0,
    win_size: int = 11,
    win_sigma: float = 1.5,
) -> torch.Tensor:
    """Mean SSIM of every frame (Wang et al. 2004), counting only windows on valid pixels.

    Parameters
    ----------
    pred, target : Tensor
        ``(batch, time, H, W)``; each ``(H, W)`` frame is one image.
    mask : Tensor, optional
        1 on valid pixels; a window that touches a missing pixel is skipped.
    data_range : float
        Value range of the frames (sets the stabilising constants).
    win_size, win_sigma : int, float
        Gaussian window (shrunk to fit frames smaller than it).

    Returns
    -------
    Tensor
        Scalar SSIM, 1 for identical frames.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 3, 32, 32)
    >>> float(ssim(x, x))
    1.0
    """
    x, y, m = _frames(pred, target, mask)
    win = _gauss(_window(min(x.shape[-2:]), win_size), win_sigma, x)
    smap, _ = _ssim_maps(x, y, win, data_range)
    return _nanmean(_per_image_mean(smap, _window_valid(m, win)))


def ms_ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    data_range: float = 1.0,
    win_size: int = 11,
    win_sigma: float = 1.5,
    weights: tuple[float, ...] = _MS_SSIM_WEIGHTS,
) -> torch.Tensor:
    """Mean multi-scale SSIM of every frame (Wang et al. 2003), mask-aware.

    As :func:`ssim`, over scales halved by 2x2 average pooling, with the
    standard weights ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``. Frames too
    small for five scales (at most ``(win_size - 1) * 16`` pixels) use as
    many scales as fit, with the weights of those scales renormalised.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 2, 64, 64)
    >>> round(float(ms_ssim(x, x)), 6)
    1.0
    """
    x, y, m = _frames(pred, target, mask)
    side = min(x.shape[-2:])
    win = _gauss(_window(side, win_size), win_sigma, x)
    k = win.numel()
    levels = 1  # as many scales as keep a whole window at the coarsest (pytorch-msssim's rule)
    while levels < len(weights) and side > (k - 1) * 2**levels:
        levels += 1
    w = torch.tensor(weights[:levels], dtype=x.dtype, device=x.device)
    if levels < len(weights):
        w = w / w.sum() * sum(weights)
    factors = []
    for level in range(levels):
        smap, csmap = _ssim_maps(x, y, win, data_range)
        valid = _window_valid(m, win)
        if level < levels - 1:
            factors.append(torch.relu(_per_image_mean(csmap, valid)))
            pad = [s % 2 for s in x.shape[-2:]]
            x = F.avg_pool2d(x, 2, padding=pad)
            y = F.avg_pool2d(y, 2, padding=pad)
            if m is not None:
                m = F.avg_pool2d(m, 2, padding=pad)
                m = (m > 1 - 1e-4).to(x.dtype)
        else:
            factors.append(torch.relu(_per_image_mean(smap, valid)))
    stacked = torch.stack(factors, dim=0)  # (levels, N)
    per_image = torch.prod(stacked ** w[:, None], dim=0)
    return _nanmean(per_image)


def _exceedance(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None,
    threshold: float,
    softness: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft forecast and hard observed exceedances of ``threshold``, zero where masked."""
    f = torch.sigmoid((pred.float() - threshold) / softness)
    o = (target >= threshold).float()
    if mask is not None:
        f, o = f * mask, o * mask
    return f, o


def _check_thresholds(thresholds: Any) -> tuple[float, ...]:
    values = tuple(float(t) for t in thresholds) if thresholds is not None else ()
    if not values:
        raise ValueError(
            "losses 'csi' and 'fss' need thresholds in the network's space, e.g. "
            "get_loss('mse+csi', thresholds=transform.forward([1.0, 5.0])); Trainer passes its "
            "loss_thresholds"
        )
    return values


def soft_csi(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    thresholds: Any = (0.5,),
    softness: float = 0.1,
) -> torch.Tensor:
    """Differentiable CSI: mean over thresholds and lead times, pooled over batch and pixels.

    Parameters
    ----------
    pred, target : Tensor
        ``(batch, time, H, W)`` in the same space as ``thresholds``.
    mask : Tensor, optional
        1 on valid pixels.
    thresholds : sequence of float
        Event thresholds (``target >= threshold`` is an event).
    softness : float
        Width of the sigmoid that makes the forecast's exceedance soft.

    Examples
    --------
    >>> import torch
    >>> y = torch.zeros(1, 2, 8, 8); y[..., :4, :4] = 2.0
    >>> round(float(soft_csi(y, y, thresholds=[1.0], softness=0.01)), 4)
    1.0
    >>> float(soft_csi(torch.zeros_like(y), y, thresholds=[1.0], softness=0.01)) < 0.1
    True
    """
    scores = []
    for t in _check_thresholds(thresholds):
        f, o = _exceedance(pred, target, mask, t, softness)
        hits = (f * o).sum((0, 2, 3))
        union = f.sum((0, 2, 3)) + o.sum((0, 2, 3)) - hits
        scores.append(((hits + 1.0) / (union + 1.0)).mean())  # 1 when neither has an event
    return torch.stack(scores).mean()


def soft_fss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    thresholds: Any = (0.5,),
    softness: float = 0.1,
    scale: int = 16,
) -> torch.Tensor:
    """Differentiable FSS over ``scale``-pixel squares: mean over thresholds and lead times.

    As :func:`soft_csi`, with the fractions of (soft) exceedance in every
    ``scale x scale`` square (crops smaller than it use their whole side).

    Examples
    --------
    >>> import torch
    >>> y = torch.zeros(1, 1, 8, 8); y[..., :4, :4] = 2.0
    >>> round(float(soft_fss(y, y, thresholds=[1.0], softness=0.01, scale=4)), 4)
    1.0
    >>> shifted = torch.roll(y, 2, dims=-1)
    >>> 0 < float(soft_fss(shifted, y, thresholds=[1.0], softness=0.01, scale=4)) < 1
    True
    """
    scores = []
    side = min(int(scale), pred.shape[-2], pred.shape[-1])
    for t in _check_thresholds(thresholds):
        f, o = _exceedance(pred, target, mask, t, softness)
        pf = F.avg_pool2d(f.transpose(0, 1), side, stride=1)  # (time, batch, ...)
        po = F.avg_pool2d(o.transpose(0, 1), side, stride=1)
        diff = ((pf - po) ** 2).flatten(1).sum(1)
        ref = (pf**2).flatten(1).sum(1) + (po**2).flatten(1).sum(1)
        scores.append((1.0 - diff / ref.clamp_min(1e-6)).mean())
    return torch.stack(scores).mean()


_BASE: dict[str, Callable[..., torch.Tensor]] = {
    "mse": mse,
    "mae": mae,
    "bce": bce,
    "ssim": lambda p, t, m, data_range=1.0: 1.0 - ssim(p, t, m, data_range=data_range),
    "ms-ssim": lambda p, t, m, data_range=1.0: 1.0 - ms_ssim(p, t, m, data_range=data_range),
    "csi": lambda p, t, m, **kw: 1.0 - soft_csi(p, t, m, **kw),
    "fss": lambda p, t, m, scale=16, **kw: 1.0 - soft_fss(p, t, m, scale=scale, **kw),
}
_NEEDS_RANGE = ("ssim", "ms-ssim")
_SKILL = ("csi", "fss")


def list_losses() -> list[str]:
    """Names of the base losses.

    Examples
    --------
    >>> list_losses()
    ['bce', 'csi', 'fss', 'mae', 'ms-ssim', 'mse', 'ssim']
    """
    return sorted(_BASE)


class Loss:
    """A weighted sum of base losses, called as ``loss(pred, target, mask)``.

    Parameters
    ----------
    terms : dict
        ``{name: weight}`` of base losses (see :func:`list_losses`).
    data_range : float
        Value range of the frames in the space the loss sees, for SSIM; the
        sigmoid of ``csi`` and ``fss`` is ``data_range / 50`` wide.
    thresholds : sequence of float, optional
        Event thresholds of ``csi`` and ``fss``, in the space the loss sees
        (required by them).
    scale : int
        Neighbourhood of ``fss`` in pixels.
    """

    def __init__(
        self,
        terms: dict[str, float],
        data_range: float = 1.0,
        thresholds: Any = None,
        scale: int = 16,
    ) -> None:
        if not terms:
            raise ValueError("a loss needs at least one term")
        self.terms = dict(terms)
        self.data_range = float(data_range)
        self.scale = int(scale)
        self.thresholds: tuple[float, ...] | None = None
        if any(name in _SKILL for name in self.terms):
            self.thresholds = _check_thresholds(thresholds)
        self.softness = self.data_range / 50

    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        pred = pred.float()
        target = target.float()
        total = pred.new_zeros(())
        for name, weight in self.terms.items():
            fn = _BASE[name]
            if name in _NEEDS_RANGE:
                value = fn(pred, target, mask, data_range=self.data_range)
            elif name in _SKILL:
                skill = {"thresholds": self.thresholds, "softness": self.softness}
                if name == "fss":
                    skill["scale"] = self.scale
                value = fn(pred, target, mask, **skill)
            else:
                value = fn(pred, target, mask)
            total = total + weight * value
        return total

    @property
    def spec(self) -> str:
        """The loss written as a mix string, e.g. ``"mse+0.5*ssim"``."""
        return "+".join(n if w == 1 else f"{w:g}*{n}" for n, w in self.terms.items())

    def __repr__(self) -> str:
        return f"Loss({self.spec!r})"


_TERM = re.compile(
    r"^\s*(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<n>[a-zA-Z_-]+)\s*$"
)


def get_loss(
    spec: str | dict[str, float] | Loss,
    *,
    data_range: float = 1.0,
    thresholds: Any = None,
    scale: int = 16,
) -> Loss:
    """Parse a loss: a name, a mix like ``"mse+0.5*ssim"``, or a ``{name: weight}`` dict.

    Parameters
    ----------
    spec : str, dict or Loss
        The loss.
    data_range : float
        Value range of the frames (the width of the transform's output range).
    thresholds : sequence of float, optional
        Event thresholds of ``csi`` and ``fss`` in the space the loss sees.
    scale : int
        Neighbourhood of ``fss`` in pixels.

    Examples
    --------
    >>> get_loss("mse + 0.5*ssim").terms
    {'mse': 1.0, 'ssim': 0.5}
    >>> get_loss({"mae": 2})
    Loss('2*mae')
    >>> get_loss("mse+0.5*csi", thresholds=[0.69, 1.79]).thresholds
    (0.69, 1.79)
    """
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, str):
        items = []
        for part in spec.split("+"):
            match = _TERM.match(part)
            if not match:
                raise ValueError(
                    f"cannot parse loss term {part.strip()!r} in {spec!r}; write terms like "
                    f"'mse' or '0.5*ssim' joined by '+', from {', '.join(list_losses())}"
                )
            items.append((match["n"], float(match["w"]) if match["w"] else 1.0))
    else:
        raise TypeError(f"loss must be a name, a mix string or a dict, got {type(spec).__name__}")
    terms: dict[str, float] = {}
    for name, weight in items:
        key = str(name).strip().lower().replace("_", "-")
        if key == "msssim":
            key = "ms-ssim"
        if key not in _BASE:
            raise ValueError(f"unknown loss {name!r}; valid names are: {', '.join(list_losses())}")
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise TypeError(
                f"the weight of loss {key!r} must be a number, got {weight!r}"
            ) from None
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"the weight of loss {key!r} must be positive, got {weight!r}")
        terms[key] = terms.get(key, 0.0) + weight
    return Loss(terms, data_range=data_range, thresholds=thresholds, scale=scale)


def describe(loss: Loss) -> dict[str, Any]:
    """JSON-able description of a loss (for checkpoints)."""
    out: dict[str, Any] = {"terms": loss.terms, "data_range": loss.data_range}
    if loss.thresholds is not None:
        out.update(thresholds=list(loss.thresholds), softness=loss.softness, scale=loss.scale)
    return out


#: Skill scores a :class:`~xnowcast.Trainer` can select its best epoch and stop early on.
SKILL_SCORES = ("csi", "fss")


class SkillCounter:
    """CSI and FSS at one threshold, pooled over validation batches.

    Counts are summed over batches and lead times (and processes, with
    :meth:`totals`), so the scores are those of the whole validation set, not
    a mean of per-batch scores.

    Parameters
    ----------
    threshold : float
        Threshold in the network's (transformed) space, e.g. the transform
        of 1 mm/h.
    scale : int
        FSS neighbourhood side in pixels (crops smaller than it use their
        whole side).

    Examples
    --------
    >>> import torch
    >>> counter = SkillCounter(0.5, scale=2)
    >>> truth = torch.zeros(1, 1, 4, 4); truth[..., :2, :2] = 1.0
    >>> counter.add(truth, truth, torch.ones_like(truth))
    >>> counter.scores()
    {'csi': 1.0, 'fss': 1.0}
    """

    def __init__(self, threshold: float, scale: int = 16) -> None:
        self.threshold = float(threshold)
        self.scale = int(scale)
        self.counts = [0.0] * 6  # hits, misses, false alarms, FSS: sum (f-o)^2, f^2, o^2

    def add(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
        """Count one batch ``(batch, time, H, W)``; ``mask`` is 1 where the target is valid."""
        valid = mask > 0
        f = (pred >= self.threshold) & valid
        o = (target >= self.threshold) & valid
        side = min(self.scale, pred.shape[-2], pred.shape[-1])
        pf = F.avg_pool2d(f.float().flatten(0, 1)[:, None], side, stride=1)
        po = F.avg_pool2d(o.float().flatten(0, 1)[:, None], side, stride=1)
        new = (
            float((f & o).sum()),
            float((~f & o).sum()),
            float((f & ~o).sum()),
            float(((pf - po) ** 2).sum()),
            float((pf**2).sum()),
            float((po**2).sum()),
        )
        self.counts = [a + b for a, b in zip(self.counts, new)]

    def scores(self, counts: list[float] | None = None) -> dict[str, float]:
        """``{"csi": ..., "fss": ...}`` of the counts (NaN where undefined: no rain at all)."""
        hits, misses, false, diff, ff, oo = self.counts if counts is None else counts
        csi = hits / (hits + misses + false) if hits + misses + false else float("nan")
        fss = 1 - diff / (ff + oo) if ff + oo else float("nan")
        return {"csi": csi, "fss": fss}
