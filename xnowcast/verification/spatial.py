"""The fractions skill score (FSS) at intensity thresholds and spatial scales.

For a threshold ``t`` and a scale ``s`` (grid cells), each field becomes the
fraction of pixels with ``value >= t`` (the rule of pysteps' FSS; ``value > t``
with ``compare=">"``) in the ``s x s`` window around every
pixel (a moving average of the binary field, zero outside the domain, with
the window of :func:`scipy.ndimage.uniform_filter`), and

``FSS = 1 - sum((Pf - Po)**2) / (sum(Pf**2) + sum(Po**2))``

(Roberts and Lean 2008). FSS is 1 for a perfect forecast and NaN when neither
field has an event.

Missing data: a pixel that is missing (NaN or infinite) in *either* field is a
non-event in *both*. This is what :func:`pysteps.verification.spatialscores.fss`
computes when both fields have the same missing pixels, so that data gaps
(outside radar range) never count as events or as misses.

The moving averages come from one integral image (summed-area table) per
field and threshold, shared by all scales, so the cost does not grow with the
scale: the numba kernel :func:`xnowcast.verification.kernels.fss_sums` finds
each pixel's event level once, builds the int32 tables of one threshold at a
time, and accumulates the window counts' products in int64 without
temporaries, so every sum is exact. Field pairs are scored one at a time,
which keeps the tables in the processor's cache. The three sums pool over
many field pairs by addition, as ``pysteps.verification.fss_accum`` does.

Examples
--------
>>> import numpy as np
>>> from xnowcast.verification import spatial
>>> obs = np.zeros((8, 8)); obs[2, 2] = 5.0
>>> fc = np.zeros((8, 8)); fc[2, 3] = 5.0
>>> spatial.fss(fc, obs, thresholds=1.0, scales=[1, 3]).round(3).tolist()
[0.0, 0.667]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnowcast.verification._util import (
    as_values,
    check_compare,
    kernel_pairs,
    safe_divide,
    sorted_thresholds,
)

__all__ = ["FSS_STATS", "box_mean", "fss", "fss_from_stats", "fss_stats"]

#: Order of the sums on the last axis of :func:`fss_stats`.
FSS_STATS = ("sum_fc2", "sum_fc_obs", "sum_obs2")


def _integral_image(a: np.ndarray) -> np.ndarray:
    """Summed-area table of the last two axes with a leading row and column of zeros."""
    out = np.zeros((*a.shape[:-2], a.shape[-2] + 1, a.shape[-1] + 1), dtype=a.dtype)
    np.cumsum(a, axis=-2, out=out[..., 1:, 1:])
    np.cumsum(out[..., 1:, 1:], axis=-1, out=out[..., 1:, 1:])
    return out


def _box_sum(table: np.ndarray, size: int) -> np.ndarray:
    """Sums over ``size x size`` windows from an integral image (zero outside the field).

    The window of output ``i`` spans ``[i - size // 2, i + (size - 1) // 2]``
    (the position of :func:`scipy.ndimage.uniform_filter`). Padding the table
    with its edge values by ``size // 2`` before and ``(size - 1) // 2`` after
    clips the windows at the border, so every sum is four slices.
    """
    ny, nx = table.shape[-2] - 1, table.shape[-1] - 1
    pad = [(0, 0)] * (table.ndim - 2) + [(size // 2, (size - 1) // 2)] * 2
    t = np.pad(table, pad, mode="edge")
    return (
        t[..., size : size + ny, size : size + nx]
        - t[..., :ny, size : size + nx]
        - t[..., size : size + ny, :nx]
        + t[..., :ny, :nx]
    )


def box_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Mean over ``size x size`` windows of the last two axes, zero outside the field.

    Equals ``scipy.ndimage.uniform_filter(a, size, mode="constant")`` applied
    to each 2-D field (the same window position for even sizes), computed with
    cumulative sums.

    Examples
    --------
    >>> import numpy as np
    >>> float(box_mean(np.ones((3, 3)), 3)[1, 1]), float(box_mean(np.ones((3, 3)), 3)[0, 0])
    (1.0, 0.4444444444444444)
    """
    a = np.asarray(a, dtype=np.float64)
    if size == 1:
        return a
    return _box_sum(_integral_image(a), size) / float(size * size)


def fss_stats(
    fc: np.ndarray,
    obs: np.ndarray,
    thresholds: float | Sequence[float],
    scales: int | Sequence[int],
    *,
    compare: str = ">=",
) -> np.ndarray:
    """The sums behind the FSS, shape ``(..., n_thresholds, n_scales, 3)``.

    Parameters
    ----------
    fc, obs : numpy.ndarray
        Forecast and observed fields, shape ``(..., y, x)``.
    thresholds : float or sequence of float
        Event thresholds.
    scales : int or sequence of int
        Window sizes in grid cells.
    compare : {">=", ">"}
        Event rule: ``value >= threshold`` (default, as pysteps' FSS) or
        ``value > threshold``.

    Returns
    -------
    numpy.ndarray
        ``sum(Pf**2), sum(Pf*Po), sum(Po**2)`` over the domain (order of
        :data:`FSS_STATS`).

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((4, 4)); obs[1, 1] = 2.0
    >>> fss_stats(obs, obs, 1.0, [1, 3]).tolist()
    [[[1.0, 1.0, 1.0], [0.1111111111111111, 0.1111111111111111, 0.1111111111111111]]]
    """
    from xnowcast.verification import kernels

    f, o = kernel_pairs(fc, obs)
    compare = check_compare(compare)
    thr = as_values(thresholds, "thresholds")
    sizes = as_values(scales, "scales", integer=True)
    order = sorted_thresholds(thr)
    sums = kernels.fss_sums(f, o, thr[order], sizes, compare == ">")
    out = np.empty(sums.shape)
    out[:, order] = sums  # back to the order the thresholds were given in
    return out.reshape(*np.shape(fc)[:-2], thr.size, sizes.size, 3)


def fss_from_stats(stats: np.ndarray) -> np.ndarray:
    """FSS from the sums of :func:`fss_stats` (NaN when neither field has an event)."""
    ff, fo, oo = stats[..., 0], stats[..., 1], stats[..., 2]
    return 1.0 - safe_divide(ff - 2.0 * fo + oo, ff + oo)


def fss(
    fc: np.ndarray,
    obs: np.ndarray,
    thresholds: float | Sequence[float],
    scales: int | Sequence[int],
    *,
    compare: str = ">=",
) -> np.ndarray:
    """Fractions skill score per field pair, threshold and scale.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., n_thresholds, n_scales)``; the threshold (scale) axis is
        dropped when ``thresholds`` (``scales``) is a scalar.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((16, 16)); obs[4:8, 4:8] = 2.0
    >>> float(fss(obs, obs, 1.0, 5))
    1.0
    """
    out = fss_from_stats(fss_stats(fc, obs, thresholds, scales, compare=compare))
    if np.ndim(scales) == 0:
        out = out[..., 0]
    if np.ndim(thresholds) == 0:
        out = out[..., 0, :] if np.ndim(scales) != 0 else out[..., 0]
    return out
