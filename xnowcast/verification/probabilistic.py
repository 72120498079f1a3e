"""Probabilistic scores of ensemble forecasts, from per-chunk sufficient statistics.

The kernels take an ensemble ``ens`` of shape ``(..., member, y, x)`` and
observed fields ``obs`` of shape ``(..., y, x)``. A pixel counts where the
observation and *every* member are finite (the rule of
:mod:`pysteps.verification.probscores` and ``ensscores``). Every score comes
from statistics that pool by addition, so :func:`xnowcast.verify` adds them
over chunks, init times or any ``dim`` before the score is computed.

==================  ===========================================================
score               definition
==================  ===========================================================
``crps``            continuous ranked probability score of the ensemble's
                    empirical distribution, ``E|X - y| - E|X - X'| / 2``
                    (Hersbach 2000; pysteps ``CRPS``, properscoring
                    ``crps_ensemble``), averaged over the pixels
``crps_fair``       the fair CRPS (Ferro 2014): ``E|X - X'|`` over the
                    ``M (M - 1)`` pairs of distinct members
``brier``           Brier score of the exceedance probability ``p = k / M``
                    (``k`` members above the threshold) at each threshold
``brier_*``         its decomposition ``reliability - resolution +
                    uncertainty`` (Murphy 1973) over the ``M + 1`` values
                    ``p`` can take, so the three add up to the Brier score
``reliability``     reliability diagram: observed frequency in probability
                    bins (``reliability_forecast``: mean forecast probability,
                    ``reliability_count``: pixels per bin), pysteps ``reldiag``
``roc_area``        area under the ROC curve; ``roc_pod``, ``roc_pofd``: the
                    curve at probability thresholds (pysteps ``ROC_curve``)
``rank_histogram``  frequency of the observation's rank among the members
                    (pysteps ``rankhist``); ties are split evenly among the
                    tied ranks (the expected value of pysteps' random choice)
``spread_skill``    ``sqrt((M + 1) / M * mean(var)) / rmse(mean)``: 1 for a
                    reliable ensemble (Fortin et al. 2014); ``var`` is the
                    members' variance (``ddof=1``) and ``mean`` the ensemble mean
==================  ===========================================================

All statistics of the threshold-based scores (Brier score, its decomposition,
the reliability diagram and the ROC curve) come from one histogram per
threshold: how many pixels had ``k`` of the ``M`` members above the threshold,
and in how many of them the event was observed.

Examples
--------
>>> import numpy as np
>>> from xnowcast.verification import probabilistic
>>> ens = np.array([[[0.0, 2.0]], [[1.0, 4.0]]])      # 2 members of a 1 x 2 field
>>> obs = np.array([[0.5, 5.0]])
>>> float(probabilistic.crps(ens, obs))
0.875
>>> float(probabilistic.brier(ens, obs, 1.5)[0])
0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xnowcast.verification._util import as_values, check_compare, exceeds, safe_divide

__all__ = [
    "CRPS_STATS",
    "PROBABILITY_STATS",
    "SPREAD_STATS",
    "brier",
    "brier_from_stats",
    "brier_reliability_from_stats",
    "brier_resolution_from_stats",
    "brier_uncertainty_from_stats",
    "crps",
    "crps_fair_from_stats",
    "crps_from_stats",
    "crps_stats",
    "ensemble_pair",
    "probability_stats",
    "rank_histogram",
    "rank_histogram_from_stats",
    "rank_stats",
    "reliability_count_from_stats",
    "reliability_forecast_from_stats",
    "reliability_from_stats",
    "roc_area_from_stats",
    "roc_pod_from_stats",
    "roc_pofd_from_stats",
    "spread_skill",
    "spread_skill_from_stats",
    "spread_stats",
]

#: Statistics of :func:`crps_stats`.
CRPS_STATS = ("n", "sum_crps", "sum_crps_fair")
#: Statistics of :func:`probability_stats` (per threshold and member count ``k``).
PROBABILITY_STATS = ("count", "events")
#: Statistics of :func:`spread_stats`.
SPREAD_STATS = ("n", "sum_variance", "sum_squared_error_of_mean")


def ensemble_pair(ens: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ens, obs)`` as float arrays ``(n, member, y, x)`` and ``(n, y, x)``, checked.

    Examples
    --------
    >>> import numpy as np
    >>> [a.shape for a in ensemble_pair(np.zeros((3, 4, 5)), np.zeros((4, 5)))]
    [(1, 3, 4, 5), (1, 4, 5)]
    """
    e, o = np.asarray(ens), np.asarray(obs)
    if not (np.issubdtype(e.dtype, np.number) and np.issubdtype(o.dtype, np.number)):
        raise TypeError(
            f"ensemble and observation must be numeric arrays, got {e.dtype} and {o.dtype}"
        )
    if e.ndim < 3 or e.shape[:-3] + e.shape[-2:] != o.shape:
        raise ValueError(
            f"the ensemble must have shape (..., member, y, x) and the observation (..., y, x), "
            f"got {e.shape} and {o.shape}"
        )
    if e.shape[-3] < 1:
        raise ValueError("the ensemble has no member")
    ny, nx = o.shape[-2:]
    return e.reshape(-1, e.shape[-3], ny, nx), o.reshape(-1, ny, nx)


def _at_valid(e: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(members (M, n), observations (n,))`` at the pixels where all are finite.

    Views, not copies, when every pixel is valid.
    """
    valid = np.isfinite(o) & np.isfinite(e.sum(axis=0))
    if valid.all():
        return e.reshape(e.shape[0], -1), o.reshape(-1)
    return e[:, valid], o[valid]


def _count_members(members: np.ndarray, test: Any) -> np.ndarray:
    """Per pixel, how many members pass ``test`` (a function of one member's values)."""
    counts = np.zeros(members.shape[1], dtype=np.int32)
    for member in members:
        counts += test(member)
    return counts


def crps_stats(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Pixel count and sums of the CRPS and the fair CRPS, shape ``(..., 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> crps_stats(np.array([[[0.0]], [[2.0]]]), np.array([[1.0]])).tolist()
    [1.0, 0.5, 0.0]
    """
    e, o = ensemble_pair(ens, obs)
    m = e.shape[1]
    weights = (2.0 * np.arange(1, m + 1) - m - 1).reshape(m, 1)
    out = np.zeros((e.shape[0], 3))
    for i in range(e.shape[0]):
        members, y = _at_valid(e[i], o[i])
        y = y.astype(np.float64)
        abs_err = sum(float(np.abs(member - y).sum()) for member in members)
        x = np.sort(members, axis=0)  # (member, pixels)
        # sum over all ordered member pairs of |x_a - x_b| = 2 sum_i (2i - M - 1) x_(i)
        pair_sum = 2.0 * float((weights * x).sum())
        out[i, 0] = y.size
        out[i, 1] = abs_err / m - pair_sum / (2.0 * m * m)
        out[i, 2] = abs_err / m - (pair_sum / (2.0 * m * (m - 1)) if m > 1 else 0.0)
    return out.reshape(*np.shape(obs)[:-2], 3)


def crps_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean CRPS from :func:`crps_stats` (NaN without valid pixels)."""
    return safe_divide(stats[..., 1], stats[..., 0])


def crps_fair_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean fair CRPS from :func:`crps_stats`."""
    return safe_divide(stats[..., 2], stats[..., 0])


def crps(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """CRPS of an ensemble, averaged over the valid pixels of each field.

    Parameters
    ----------
    ens : numpy.ndarray
        Ensemble ``(..., member, y, x)``.
    obs : numpy.ndarray
        Observations ``(..., y, x)``.

    Examples
    --------
    >>> import numpy as np
    >>> float(crps(np.array([[[1.0]], [[3.0]]]), np.array([[1.0]])))
    0.5
    """
    return crps_from_stats(crps_stats(ens, obs))


def probability_stats(
    ens: np.ndarray,
    obs: np.ndarray,
    thresholds: float | Sequence[float],
    *,
    compare: str = ">=",
) -> np.ndarray:
    """Histogram of member counts above each threshold, shape ``(..., n_thr, M + 1, 2)``.

    ``[..., t, k, 0]`` counts the valid pixels where ``k`` members exceed
    threshold ``t``, ``[..., t, k, 1]`` those of them where the observation
    does too. ``compare=">="`` (default) counts a value that reaches the
    threshold as an event, as pysteps' ``excprob``, ``reldiag`` and ``ROC_curve``.

    Examples
    --------
    >>> import numpy as np
    >>> ens = np.array([[[0.0, 2.0]], [[1.0, 4.0]]])
    >>> probability_stats(ens, np.array([[0.5, 5.0]]), [1.0]).tolist()
    [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]]
    """
    e, o = ensemble_pair(ens, obs)
    compare = check_compare(compare)
    thr = as_values(thresholds, "thresholds")
    m = e.shape[1]
    out = np.zeros((e.shape[0], thr.size, m + 1, 2))
    for i in range(e.shape[0]):
        members, observed = _at_valid(e[i], o[i])
        for j, t in enumerate(thr):
            k = _count_members(members, lambda x, t=t: exceeds(x, t, compare))
            k *= 2
            k += exceeds(observed, t, compare)  # one histogram of (k, event)
            both = np.bincount(k, minlength=2 * (m + 1)).reshape(m + 1, 2)
            out[i, j, :, 0] = both.sum(axis=1)
            out[i, j, :, 1] = both[:, 1]
    return out.reshape(*np.shape(obs)[:-2], thr.size, m + 1, 2)


def _probabilities(stats: np.ndarray) -> np.ndarray:
    """The probability ``k / M`` of each member count (last-but-one axis of the stats)."""
    m = stats.shape[-2] - 1
    return np.arange(m + 1) / m


def brier_from_stats(stats: np.ndarray) -> np.ndarray:
    """Brier score from :func:`probability_stats`, shape ``(..., n_thresholds)``."""
    p = _probabilities(stats)
    count, events = stats[..., 0], stats[..., 1]
    total = (count * p * p - 2.0 * p * events + events).sum(axis=-1)
    return safe_divide(total, count.sum(axis=-1))


def _observed(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(count, observed frequency per member count, climatological frequency)``."""
    count, events = stats[..., 0], stats[..., 1]
    freq = safe_divide(events, count)
    climate = safe_divide(events.sum(axis=-1), count.sum(axis=-1))
    return count, freq, climate


def brier_reliability_from_stats(stats: np.ndarray) -> np.ndarray:
    """Reliability term of the Brier score (0 is perfectly reliable)."""
    count, freq, _ = _observed(stats)
    p = _probabilities(stats)
    terms = np.where(count > 0, count * (p - np.nan_to_num(freq)) ** 2, 0.0)
    return safe_divide(terms.sum(axis=-1), count.sum(axis=-1))


def brier_resolution_from_stats(stats: np.ndarray) -> np.ndarray:
    """Resolution term of the Brier score (larger is better)."""
    count, freq, climate = _observed(stats)
    terms = np.where(count > 0, count * (np.nan_to_num(freq) - climate[..., None]) ** 2, 0.0)
    return safe_divide(terms.sum(axis=-1), count.sum(axis=-1))


def brier_uncertainty_from_stats(stats: np.ndarray) -> np.ndarray:
    """Uncertainty term of the Brier score, ``o (1 - o)`` with ``o`` the event frequency."""
    _, _, climate = _observed(stats)
    return climate * (1.0 - climate)


def brier(
    ens: np.ndarray,
    obs: np.ndarray,
    thresholds: float | Sequence[float],
    *,
    compare: str = ">=",
) -> np.ndarray:
    """Brier score of the exceedance probability per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> ens = np.array([[[0.0, 2.0]], [[1.0, 4.0]]])
    >>> brier(ens, np.array([[3.0, 3.0]]), [1.0, 3.0]).tolist()
    [0.125, 0.625]
    """
    return brier_from_stats(probability_stats(ens, obs, thresholds, compare=compare))


def _bin_of_member_count(m: int, n_bins: int) -> np.ndarray:
    """Reliability bin (0-based) of each probability ``k / M``, as pysteps' ``reldiag``."""
    edges = np.linspace(-1e-6, 1 + 1e-6, int(n_bins + 1))
    return np.digitize(np.arange(m + 1) / m, edges, right=True) - 1


def _binned(stats: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(count, sum of probabilities, events)`` per reliability bin, ``(..., n_bins)``."""
    m = stats.shape[-2] - 1
    onehot = np.eye(n_bins)[_bin_of_member_count(m, n_bins)]  # (M + 1, n_bins)
    count, events = stats[..., 0], stats[..., 1]
    p = _probabilities(stats)
    return count @ onehot, (count * p) @ onehot, events @ onehot


def reliability_from_stats(stats: np.ndarray, prob_bins: int = 10) -> np.ndarray:
    """Observed frequency of the event in each probability bin, ``(..., n_thr, prob_bins)``."""
    count, _, events = _binned(stats, prob_bins)
    return safe_divide(events, count)


def reliability_forecast_from_stats(stats: np.ndarray, prob_bins: int = 10) -> np.ndarray:
    """Mean forecast probability in each probability bin."""
    count, prob, _ = _binned(stats, prob_bins)
    return safe_divide(prob, count)


def reliability_count_from_stats(stats: np.ndarray, prob_bins: int = 10) -> np.ndarray:
    """Number of pixels in each probability bin (mask bins with few, e.g. under 10)."""
    return _binned(stats, prob_bins)[0]


def _roc_tables(stats: np.ndarray, roc_thresholds: int) -> tuple[np.ndarray, ...]:
    """Hits, misses, false alarms, correct negatives per probability threshold."""
    p = _probabilities(stats)
    levels = np.linspace(0.0, 1.0, int(roc_thresholds))
    above = (p[:, None] >= levels[None, :]).astype(np.float64)  # (M + 1, n_levels)
    count, events = stats[..., 0], stats[..., 1]
    hits = events @ above
    false_alarms = (count - events) @ above
    misses = events.sum(axis=-1)[..., None] - hits
    negatives = (count - events).sum(axis=-1)[..., None] - false_alarms
    return hits, misses, false_alarms, negatives


def roc_pod_from_stats(stats: np.ndarray, roc_thresholds: int = 10) -> np.ndarray:
    """Probability of detection at each probability threshold (the ROC curve's y)."""
    hits, misses, _, _ = _roc_tables(stats, roc_thresholds)
    return safe_divide(hits, hits + misses)


def roc_pofd_from_stats(stats: np.ndarray, roc_thresholds: int = 10) -> np.ndarray:
    """Probability of false detection at each probability threshold (the ROC curve's x)."""
    _, _, false_alarms, negatives = _roc_tables(stats, roc_thresholds)
    return safe_divide(false_alarms, false_alarms + negatives)


def roc_area_from_stats(stats: np.ndarray, roc_thresholds: int = 10) -> np.ndarray:
    """Area under the ROC curve (trapezoids through (1, 1) and (0, 0), as pysteps)."""
    pod = roc_pod_from_stats(stats, roc_thresholds)
    pofd = roc_pofd_from_stats(stats, roc_thresholds)
    area = (1.0 - pofd[..., 0]) * (1.0 + pod[..., 0]) / 2.0
    area += ((pofd[..., :-1] - pofd[..., 1:]) * (pod[..., 1:] + pod[..., :-1]) / 2.0).sum(axis=-1)
    return area + pofd[..., -1] * pod[..., -1] / 2.0


def rank_stats(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Counts of the observation's rank among the members, shape ``(..., M + 1)``.

    The rank is the number of members below the observation; when ``e``
    members equal it, each of the ``e + 1`` ranks it could take gets
    ``1 / (e + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> ens = np.array([[[0.0, 2.0, 1.0]], [[1.0, 4.0, 1.0]]])
    >>> rank_stats(ens, np.array([[0.5, 5.0, 1.0]])).tolist()
    [0.3333333333333333, 1.3333333333333333, 1.3333333333333333]
    """
    e, o = ensemble_pair(ens, obs)
    m = e.shape[1]
    out = np.zeros((e.shape[0], m + 1))
    for i in range(e.shape[0]):
        members, observed = _at_valid(e[i], o[i])
        below = _count_members(members, lambda x, y=observed: x < y)
        ties = _count_members(members, lambda x, y=observed: x == y)
        for tied in np.unique(ties):
            at = below[ties == tied]
            for offset in range(int(tied) + 1):
                out[i] += np.bincount(at + offset, minlength=m + 1) / (tied + 1.0)
    return out.reshape(*np.shape(obs)[:-2], m + 1)


def rank_histogram_from_stats(stats: np.ndarray) -> np.ndarray:
    """Relative frequency of each rank (sums to 1), from :func:`rank_stats`."""
    return safe_divide(stats, stats.sum(axis=-1, keepdims=True))


def rank_histogram(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Rank histogram (relative frequencies) of each field pair, shape ``(..., M + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> rank_histogram(np.array([[[0.0, 2.0]], [[1.0, 4.0]]]), np.array([[0.5, 5.0]])).tolist()
    [0.0, 0.5, 0.5]
    """
    return rank_histogram_from_stats(rank_stats(ens, obs))


def spread_stats(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Pixel count, summed member variance and summed squared error of the mean, ``(..., 3)``.

    Examples
    --------
    >>> import numpy as np
    >>> spread_stats(np.array([[[0.0]], [[2.0]]]), np.array([[3.0]])).tolist()
    [1.0, 2.0, 4.0]
    """
    e, o = ensemble_pair(ens, obs)
    out = np.zeros((e.shape[0], 3))
    if e.shape[1] < 2:
        raise ValueError("the spread-skill ratio needs an ensemble of at least 2 members")
    for i in range(e.shape[0]):
        members, observed = _at_valid(e[i], o[i])
        mean = members.mean(axis=0, dtype=np.float64)
        out[i] = (
            mean.size,
            members.var(axis=0, ddof=1, dtype=np.float64).sum(),
            ((mean - observed) ** 2).sum(),
        )
    return out.reshape(*np.shape(obs)[:-2], 3)


def spread_skill_from_stats(stats: np.ndarray, n_members: int) -> np.ndarray:
    """Spread-skill ratio ``sqrt((M + 1) / M * mean var) / rmse(mean)`` from :func:`spread_stats`."""
    spread = (n_members + 1.0) / n_members * stats[..., 1]
    return np.sqrt(safe_divide(spread, stats[..., 2]))


def spread_skill(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Spread-skill ratio of each field pair (1: spread matches the error of the mean).

    Examples
    --------
    >>> import numpy as np
    >>> round(float(spread_skill(np.array([[[0.0]], [[2.0]]]), np.array([[2.5]]))), 4)
    1.1547
    """
    return spread_skill_from_stats(spread_stats(ens, obs), np.shape(ens)[-3])
