"""Interpolation baselines of downscaling (numpy only): ``nearest``, ``bilinear``, ``bicubic``.

Fine cell centres sit where :func:`xnowcast.downscale.grid.fine_coordinate`
puts them (cell-centre alignment, as ``torch.nn.functional.interpolate`` with
``align_corners=False``); the bicubic kernel is Keys' with ``a = -0.75`` and
clamped borders, the same as PyTorch's, so the networks' internal bicubic and
this baseline agree.
"""

from __future__ import annotations

import numpy as np

from xnowcast.checks import choice, positive_int

__all__ = ["BASELINES", "interpolate"]

BASELINES = ("nearest", "bilinear", "bicubic")


def _cubic(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _weights(n: int, scale: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``(n*scale, taps)`` and weights of each fine cell along one axis."""
    pos = (np.arange(n * scale) + 0.5) / scale - 0.5
    if method == "nearest":
        return (np.arange(n * scale) // scale)[:, None], np.ones((n * scale, 1))
    base = np.floor(pos).astype(np.int64)
    if method == "bilinear":
        pos = np.clip(pos, 0, n - 1)
        base = np.minimum(np.floor(pos).astype(np.int64), max(n - 2, 0))
        frac = pos - base
        idx = np.stack([base, base + 1], axis=1)
        w = np.stack([1 - frac, frac], axis=1)
    else:
        offsets = np.arange(-1, 3)
        idx = base[:, None] + offsets
        w = _cubic(pos[:, None] - idx)
    return np.clip(idx, 0, n - 1), w


def _along(a: np.ndarray, axis: int, scale: int, method: str) -> np.ndarray:
    idx, w = _weights(a.shape[axis], scale, method)
    moved = np.moveaxis(a, axis, -1)
    out = (moved[..., idx] * w).sum(axis=-1)
    return np.moveaxis(out, -1, axis)


def interpolate(
    frames: np.ndarray, scale: int, method: str = "bicubic", *, clip: bool = True
) -> np.ndarray:
    """Interpolate the last two axes of ``frames`` onto a grid ``scale`` times finer.

    NaN (missing) stays missing: it is filled with 0 for the interpolation
    and fine cells of a missing coarse cell are NaN again.

    Parameters
    ----------
    frames : numpy.ndarray
        ``(..., h, w)``.
    scale : int
        Fine cells per coarse cell.
    method : {"nearest", "bilinear", "bicubic"}
    clip : bool
        Bicubic overshoots: with ``clip``, fields with no negative values
        (rain) get none (values below 0 become 0).

    Returns
    -------
    numpy.ndarray
        ``(..., h*scale, w*scale)`` float32.

    Examples
    --------
    >>> import numpy as np
    >>> interpolate(np.array([[0.0, 4.0]]), 2, "bilinear").tolist()
    [[0.0, 1.0, 3.0, 4.0], [0.0, 1.0, 3.0, 4.0]]
    """
    scale = positive_int(scale, "scale")
    method = choice(method, "method", BASELINES)
    a = np.asarray(frames, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"frames need two spatial axes (..., y, x), got shape {a.shape}")
    missing = np.isnan(a)
    out = np.where(missing, 0.0, a)
    for axis in (-2, -1):
        out = _along(out, axis, scale, method)
    if missing.any():
        hole = np.repeat(np.repeat(missing, scale, axis=-2), scale, axis=-1)
        out[hole] = np.nan
    if clip and method == "bicubic" and not (a[~missing] < 0).any():
        np.maximum(out, 0.0, out=out, where=~np.isnan(out))
    return out.astype(np.float32)
