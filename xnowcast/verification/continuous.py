"""Continuous scores: MSE, RMSE, MAE, bias, correlations, NMSE, regression slopes, PSNR.

Plain numpy kernels over fields of shape ``(..., y, x)``: every leading axis is
a batch axis and each score is computed per field pair. Pixels that are
missing (NaN or infinite) in *either* field are left out.

Each score is the ratio of sums that :func:`continuous_stats` returns, so that
scores of many field pairs can be pooled by adding the sums (this is what
:func:`xnowcast.verify` does with ``mean=True``):

=============  ==========================================================
score          definition (sums over the valid pixels, ``e = fc - obs``)
=============  ==========================================================
``mse``        ``sum(e**2) / n``
``rmse``       ``sqrt(mse)``
``mae``        ``sum(|e|) / n``
``bias``       ``sum(e) / n``, the mean error (positive: forecast too high)
``correlation``  Pearson correlation of ``fc`` and ``obs``
``nmse``       ``sum(e**2) / sum((fc + obs)**2)``, the normalised MSE
``beta``       ``cov(fc, obs) / var(fc)``, the slope of the regression of
               ``obs`` on ``fc`` (type 1 conditional bias; pysteps' beta1)
``beta2``      ``cov(fc, obs) / var(obs)`` (type 2 conditional bias)
``spearman``   Spearman rank correlation (ties get their average rank);
               computed per field pair and pooled by averaging
``psnr``       ``10 log10(R**2 / mse)`` in dB, ``R`` the data range; PSNR
               is computed per field pair and pooled by averaging
=============  ==========================================================

The definitions are those of :func:`pysteps.verification.detcontscores.det_cont_fct`
(``MSE``, ``RMSE``, ``MAE``, ``ME``, ``corr_p``, ``NMSE``, ``beta1``,
``beta2``, ``corr_s``).

Examples
--------
>>> import numpy as np
>>> from xnowcast.verification import continuous
>>> obs = np.array([[0.0, 1.0], [2.0, np.nan]])
>>> fc = np.array([[1.0, 1.0], [4.0, 3.0]])
>>> float(continuous.mse(fc, obs)), float(continuous.bias(fc, obs))
(1.6666666666666667, 1.0)
"""

from __future__ import annotations

import numpy as np

from xnowcast.verification._util import (
    as_pair,
    frame_data_range,
    kernel_pairs,
    masked_pair,
    safe_divide,
)

__all__ = [
    "CONTINUOUS_STATS",
    "PSNR_STATS",
    "SPEARMAN_STATS",
    "beta",
    "beta2",
    "beta2_from_stats",
    "beta_from_stats",
    "bias",
    "bias_from_stats",
    "continuous_stats",
    "correlation",
    "correlation_from_stats",
    "mae",
    "mae_from_stats",
    "mean_from_stats",
    "mse",
    "mse_from_stats",
    "nmse",
    "nmse_from_stats",
    "psnr",
    "psnr_stats",
    "rmse",
    "rmse_from_stats",
    "spearman",
    "spearman_stats",
]

#: Names of the sufficient statistics of :func:`continuous_stats` (last axis).
CONTINUOUS_STATS = (
    "n",
    "sum_err",
    "sum_abs_err",
    "sum_sq_err",
    "sum_fc",
    "sum_obs",
    "sum_fc2",
    "sum_obs2",
    "sum_fc_obs",
)
#: Statistics of :func:`psnr_stats`: the sum of per-pair PSNR and the number of pairs.
PSNR_STATS = ("sum", "count")
#: Statistics of :func:`spearman_stats`: the sum of per-pair correlations and their number.
SPEARMAN_STATS = ("sum", "count")

_SPACE = (-2, -1)


def continuous_stats(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Sufficient statistics of the continuous scores.

    Parameters
    ----------
    fc, obs : numpy.ndarray
        Forecast and observed fields, shape ``(..., y, x)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., 9)``: the sums named by :data:`CONTINUOUS_STATS` over the
        pixels valid in both fields (one pass of
        :func:`xnowcast.verification.kernels.continuous_sums`).

    Examples
    --------
    >>> import numpy as np
    >>> continuous_stats(np.array([[1.0, np.nan]]), np.array([[0.5, 2.0]]))[:4].tolist()
    [1.0, 0.5, 0.5, 0.25]
    """
    from xnowcast.verification import kernels

    f, o = kernel_pairs(fc, obs)
    return kernels.continuous_sums(f, o).reshape(*np.shape(fc)[:-2], len(CONTINUOUS_STATS))


def mse_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean squared error from :func:`continuous_stats` (NaN without valid pixels)."""
    return safe_divide(stats[..., 3], stats[..., 0])


def rmse_from_stats(stats: np.ndarray) -> np.ndarray:
    """Root mean squared error from :func:`continuous_stats`."""
    return np.sqrt(mse_from_stats(stats))


def mae_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean absolute error from :func:`continuous_stats`."""
    return safe_divide(stats[..., 2], stats[..., 0])


def bias_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean error ``fc - obs`` from :func:`continuous_stats`."""
    return safe_divide(stats[..., 1], stats[..., 0])


def correlation_from_stats(stats: np.ndarray) -> np.ndarray:
    """Pearson correlation from :func:`continuous_stats` (NaN for a constant field)."""
    n, sf, so, sff, soo, sfo = (stats[..., i] for i in (0, 4, 5, 6, 7, 8))
    cov = n * sfo - sf * so
    var_f = np.maximum(n * sff - sf * sf, 0.0)
    var_o = np.maximum(n * soo - so * so, 0.0)
    return np.clip(safe_divide(cov, np.sqrt(var_f * var_o)), -1.0, 1.0)


def _moments(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n**2`` times the covariance and the two variances, from :func:`continuous_stats`."""
    n, sf, so, sff, soo, sfo = (stats[..., i] for i in (0, 4, 5, 6, 7, 8))
    return n * sfo - sf * so, np.maximum(n * sff - sf * sf, 0.0), np.maximum(n * soo - so * so, 0.0)


def nmse_from_stats(stats: np.ndarray) -> np.ndarray:
    """Normalised MSE ``sum(e**2) / sum((fc + obs)**2)`` from :func:`continuous_stats`."""
    return safe_divide(stats[..., 3], stats[..., 6] + 2.0 * stats[..., 8] + stats[..., 7])


def beta_from_stats(stats: np.ndarray) -> np.ndarray:
    """Regression slope ``cov(fc, obs) / var(fc)`` from :func:`continuous_stats`."""
    cov, var_f, _ = _moments(stats)
    return safe_divide(cov, var_f)


def beta2_from_stats(stats: np.ndarray) -> np.ndarray:
    """Regression slope ``cov(fc, obs) / var(obs)`` from :func:`continuous_stats`."""
    cov, _, var_o = _moments(stats)
    return safe_divide(cov, var_o)


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties sharing their average rank (scipy's ``rankdata``).

    The values equal to the minimum (no rain: most of a radar field) form one
    tie group ranked without sorting; only the others are sorted.
    """
    low = a == a.min()
    n_low = int(np.count_nonzero(low))
    ranks = np.full(a.size, (n_low + 1) / 2.0)
    rest = a[~low]
    order = np.argsort(rest, kind="stable")
    ordered = rest[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.r_[np.flatnonzero(first), rest.size]
    mean_rank = (starts[:-1] + starts[1:] + 1) / 2.0 + n_low
    rest_ranks = np.empty(rest.size)
    rest_ranks[order] = mean_rank[np.cumsum(first) - 1]
    ranks[~low] = rest_ranks
    return ranks


def spearman_stats(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Per-pair Spearman correlation as ``(sum, count)`` statistics, shape ``(..., 2)``.

    A pair with fewer than two valid pixels or a constant field gives ``(0, 0)``.
    """
    f, o = as_pair(fc, obs)
    batch = f.shape[:-2]
    f2, o2 = f.reshape(-1, f.shape[-2] * f.shape[-1]), o.reshape(-1, o.shape[-2] * o.shape[-1])
    out = np.zeros((f2.shape[0], 2))
    for i, (a, b) in enumerate(zip(f2, o2)):
        valid = np.isfinite(a) & np.isfinite(b)
        if valid.sum() < 2:
            continue
        ra, rb = _average_ranks(a[valid]), _average_ranks(b[valid])
        ra -= ra.mean()
        rb -= rb.mean()
        den = np.sqrt(np.einsum("i,i->", ra, ra) * np.einsum("i,i->", rb, rb))
        if den > 0:
            out[i] = (np.einsum("i,i->", ra, rb) / den, 1.0)
    return out.reshape(*batch, 2)


def psnr_stats(fc: np.ndarray, obs: np.ndarray, *, data_range: float | None = None) -> np.ndarray:
    """Per-pair PSNR as ``(sum, count)`` statistics, shape ``(..., 2)``.

    A pair without valid pixels gives ``(0, 0)`` so that it drops out of means.
    """
    f, o, valid = masked_pair(fc, obs)
    n = valid.sum(axis=_SPACE)
    mse_ = safe_divide(((f - o) ** 2).sum(axis=_SPACE), n)
    r = frame_data_range(f, o, valid, data_range)
    with np.errstate(divide="ignore"):
        value = 10.0 * np.log10(r * r / mse_)
    has = n > 0
    return np.stack([np.where(has, value, 0.0), has.astype(np.float64)], axis=-1)


def mean_from_stats(stats: np.ndarray) -> np.ndarray:
    """``sum / count`` of ``(sum, count)`` statistics (NaN when the count is 0)."""
    return safe_divide(stats[..., 0], stats[..., 1])


def mse(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Mean squared error of each field pair over the pixels valid in both.

    Examples
    --------
    >>> import numpy as np
    >>> float(mse(np.ones((2, 2)), np.zeros((2, 2))))
    1.0
    """
    return mse_from_stats(continuous_stats(fc, obs))


def rmse(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Root mean squared error of each field pair.

    Examples
    --------
    >>> import numpy as np
    >>> float(rmse(np.full((2, 2), 3.0), np.ones((2, 2))))
    2.0
    """
    return rmse_from_stats(continuous_stats(fc, obs))


def mae(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Mean absolute error of each field pair.

    Examples
    --------
    >>> import numpy as np
    >>> float(mae(np.array([[1.0, -1.0]]), np.zeros((1, 2))))
    1.0
    """
    return mae_from_stats(continuous_stats(fc, obs))


def bias(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Mean error ``mean(fc - obs)`` of each field pair (additive bias).

    Examples
    --------
    >>> import numpy as np
    >>> float(bias(np.array([[1.0, -1.0]]), np.array([[0.0, -3.0]])))
    1.5
    """
    return bias_from_stats(continuous_stats(fc, obs))


def correlation(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Pearson correlation of each field pair.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> float(correlation(2 * a + 1, a))
    1.0
    """
    return correlation_from_stats(continuous_stats(fc, obs))


def psnr(fc: np.ndarray, obs: np.ndarray, *, data_range: float | None = None) -> np.ndarray:
    """Peak signal-to-noise ratio ``10 log10(R**2 / mse)`` in dB of each field pair.

    Parameters
    ----------
    fc, obs : numpy.ndarray
        Fields ``(..., y, x)``.
    data_range : float, optional
        ``R``, the span of possible values (e.g. 1023 for 10-bit images).
        Default: per pair, the larger ``max - min`` of the two fields over
        the valid pixels.

    Examples
    --------
    >>> import numpy as np
    >>> float(psnr(np.full((2, 2), 1.0), np.zeros((2, 2)), data_range=10))
    20.0
    """
    return mean_from_stats(psnr_stats(fc, obs, data_range=data_range))


def nmse(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Normalised mean squared error ``sum((fc - obs)**2) / sum((fc + obs)**2)`` per pair.

    Examples
    --------
    >>> import numpy as np
    >>> float(nmse(np.array([[1.0, 3.0]]), np.array([[1.0, 1.0]])))
    0.2
    """
    return nmse_from_stats(continuous_stats(fc, obs))


def beta(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Slope ``cov(fc, obs) / var(fc)`` of the regression of ``obs`` on ``fc``, per pair.

    1 when the forecast has no conditional bias; below 1 when its large values
    are too large.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> float(beta(2 * a, a))
    0.5
    """
    return beta_from_stats(continuous_stats(fc, obs))


def beta2(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Slope ``cov(fc, obs) / var(obs)`` of the regression of ``fc`` on ``obs``, per pair.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> float(beta2(2 * a, a))
    2.0
    """
    return beta2_from_stats(continuous_stats(fc, obs))


def spearman(fc: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each field pair over the pixels valid in both.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> float(spearman(a**3, a))
    1.0
    """
    return mean_from_stats(spearman_stats(fc, obs))
