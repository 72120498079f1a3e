"""Categorical scores from the 2x2 contingency table at intensity thresholds.

An *event* is a value above the threshold: ``value > threshold`` by default
(``compare=">"``, the rule of :mod:`pysteps.verification.detcatscores`), or
``value >= threshold`` with ``compare=">="``. Pixels missing (NaN or infinite) in *either* field are left out of the table.
For each field pair and threshold the table counts

====================  ==========================================
``hits``              event forecast and observed
``misses``            event observed, not forecast
``false_alarms``      event forecast, not observed
``correct_negatives`` neither
====================  ==========================================

and the scores are (with ``H, M, F, R`` the four counts, ``N`` their sum):

==========  ==========================================================  =======
score       definition                                                  perfect
==========  ==========================================================  =======
``csi``     critical success index (threat score) ``H / (H + M + F)``   1
``pod``     probability of detection ``H / (H + M)``                    1
``far``     false alarm ratio ``F / (H + F)``                           0
``ets``     equitable threat score ``(H - Hr) / (H + M + F - Hr)``,     1
            ``Hr = (H + M)(H + F) / N`` (Gilbert skill score)
``hss``     Heidke skill score                                          1
            ``2 (H R - F M) / ((H + M)(M + R) + (H + F)(F + R))``
``fbias``   frequency bias ``(H + F) / (H + M)``                        1
``pofd``    probability of false detection ``F / (F + R)``              0
``hk``      Hanssen-Kuipers (Peirce) skill score ``POD - POFD``         1
``sedi``    symmetric extremal dependence index (Ferro and Stephenson   1
            2011), from ``POD`` and ``POFD``
``f1``      ``2 H / (2 H + F + M)``                                     1
``mcc``     Matthews correlation coefficient                            1
            ``(H R - F M) / sqrt((H + F)(H + M)(R + F)(R + M))``
``acc``     accuracy (fraction correct) ``(H + R) / N``                 1
==========  ==========================================================  =======

A score whose denominator is 0 (for example POD when nothing was observed) is
NaN. The definitions are those of :mod:`pysteps.verification.detcatscores`
(SEDI is NaN where POD or POFD is 0 or 1, where pysteps gives NaN or inf).

Tables of many field pairs pool by addition (:func:`xnowcast.verify` with
``mean=True``), as ``pysteps.verification.det_cat_fct_accum`` does.

Examples
--------
>>> import numpy as np
>>> from xnowcast.verification import categorical
>>> obs = np.array([[0.0, 2.0], [3.0, np.nan]])
>>> fc = np.array([[1.5, 2.0], [0.0, 5.0]])
>>> categorical.contingency_table(fc, obs, 1.0).tolist()
[1.0, 1.0, 1.0, 0.0]
>>> float(categorical.csi(fc, obs, 1.0))
0.3333333333333333
>>> float(categorical.csi(fc, obs, 2.0)), float(categorical.csi(fc, obs, 2.0, compare=">="))
(0.0, 0.5)
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

__all__ = [
    "TABLE",
    "acc",
    "acc_from_table",
    "contingency_table",
    "csi",
    "csi_from_table",
    "ets",
    "ets_from_table",
    "f1",
    "f1_from_table",
    "far",
    "far_from_table",
    "fbias",
    "fbias_from_table",
    "hk",
    "hk_from_table",
    "hss",
    "hss_from_table",
    "mcc",
    "mcc_from_table",
    "pod",
    "pod_from_table",
    "pofd",
    "pofd_from_table",
    "sedi",
    "sedi_from_table",
]

#: Order of the counts on the last axis of :func:`contingency_table`.
TABLE = ("hits", "misses", "false_alarms", "correct_negatives")

Thresholds = float | Sequence[float]


def contingency_table(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Count hits, misses, false alarms and correct negatives.

    Parameters
    ----------
    fc, obs : numpy.ndarray
        Forecast and observed fields, shape ``(..., y, x)``.
    thresholds : float or sequence of float
        Event thresholds, in the units of the data.
    compare : {">", ">="}
        Event rule: ``value > threshold`` (default, as pysteps) or
        ``value >= threshold``.

    Returns
    -------
    numpy.ndarray
        float64 counts, shape ``(..., n_thresholds, 4)`` in the order of
        :data:`TABLE`, or ``(..., 4)`` for a single (scalar) threshold.

    Examples
    --------
    >>> import numpy as np
    >>> contingency_table(np.array([[1.0, 3.0]]), np.array([[2.0, 5.0]]), 1.0).tolist()
    [1.0, 1.0, 0.0, 0.0]
    """
    from xnowcast.verification import kernels

    f, o = kernel_pairs(fc, obs)
    compare = check_compare(compare)
    thr = as_values(thresholds, "thresholds")
    order = sorted_thresholds(thr)
    counts = kernels.contingency_counts(f, o, thr[order], compare == ">")
    out = np.empty(counts.shape)
    out[:, order] = counts  # back to the order the thresholds were given in
    out = out.reshape(*np.shape(fc)[:-2], thr.size, 4)
    return out[..., 0, :] if np.ndim(thresholds) == 0 else out


def _hmfr(table: np.ndarray) -> tuple[np.ndarray, ...]:
    table = np.asarray(table, dtype=np.float64)
    return table[..., 0], table[..., 1], table[..., 2], table[..., 3]


def csi_from_table(table: np.ndarray) -> np.ndarray:
    """Critical success index ``H / (H + M + F)`` of a contingency table."""
    h, m, f, _ = _hmfr(table)
    return safe_divide(h, h + m + f)


def pod_from_table(table: np.ndarray) -> np.ndarray:
    """Probability of detection ``H / (H + M)`` of a contingency table."""
    h, m, _, _ = _hmfr(table)
    return safe_divide(h, h + m)


def far_from_table(table: np.ndarray) -> np.ndarray:
    """False alarm ratio ``F / (H + F)`` of a contingency table."""
    h, _, f, _ = _hmfr(table)
    return safe_divide(f, h + f)


def ets_from_table(table: np.ndarray) -> np.ndarray:
    """Equitable threat score (Gilbert skill score) of a contingency table."""
    h, m, f, r = _hmfr(table)
    hits_random = safe_divide((h + m) * (h + f), h + m + f + r)
    return safe_divide(h - hits_random, h + m + f - hits_random)


def hss_from_table(table: np.ndarray) -> np.ndarray:
    """Heidke skill score of a contingency table."""
    h, m, f, r = _hmfr(table)
    return safe_divide(2.0 * (h * r - f * m), (h + m) * (m + r) + (h + f) * (f + r))


def fbias_from_table(table: np.ndarray) -> np.ndarray:
    """Frequency bias ``(H + F) / (H + M)`` of a contingency table."""
    h, m, f, _ = _hmfr(table)
    return safe_divide(h + f, h + m)


def pofd_from_table(table: np.ndarray) -> np.ndarray:
    """Probability of false detection (false alarm rate) ``F / (F + R)``."""
    _, _, f, r = _hmfr(table)
    return safe_divide(f, f + r)


def hk_from_table(table: np.ndarray) -> np.ndarray:
    """Hanssen-Kuipers discriminant (Peirce skill score) ``POD - POFD``."""
    return pod_from_table(table) - pofd_from_table(table)


def sedi_from_table(table: np.ndarray) -> np.ndarray:
    """Symmetric extremal dependence index (NaN where POD or POFD is 0 or 1)."""
    pod_, pofd_ = pod_from_table(table), pofd_from_table(table)
    inside = (pod_ > 0) & (pod_ < 1) & (pofd_ > 0) & (pofd_ < 1)
    p = np.where(inside, pod_, 0.5)
    q = np.where(inside, pofd_, 0.5)
    num = np.log(q) - np.log(p) + np.log1p(-p) - np.log1p(-q)
    den = np.log(q) + np.log(p) + np.log1p(-p) + np.log1p(-q)
    return np.where(inside, num / den, np.nan)


def f1_from_table(table: np.ndarray) -> np.ndarray:
    """F1 score ``2 H / (2 H + F + M)`` (harmonic mean of POD and success ratio)."""
    h, m, f, _ = _hmfr(table)
    return safe_divide(2.0 * h, 2.0 * h + f + m)


def mcc_from_table(table: np.ndarray) -> np.ndarray:
    """Matthews correlation coefficient of a contingency table."""
    h, m, f, r = _hmfr(table)
    return safe_divide(h * r - f * m, np.sqrt((h + f) * (h + m) * (r + f) * (r + m)))


def acc_from_table(table: np.ndarray) -> np.ndarray:
    """Accuracy (fraction correct) ``(H + R) / N``."""
    h, m, f, r = _hmfr(table)
    return safe_divide(h + r, h + m + f + r)


def csi(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Critical success index per field pair and threshold.

    Returns an array of shape ``(..., n_thresholds)`` (no threshold axis for a
    scalar threshold).

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.array([[0.0, 2.0, 2.0, 0.0]])
    >>> csi(np.array([[2.0, 2.0, 0.0, 0.0]]), obs, [1.0]).tolist()
    [0.3333333333333333]
    """
    return csi_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def pod(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Probability of detection per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(pod(np.array([[2.0, 0.0]]), np.array([[2.0, 2.0]]), 1.0))
    0.5
    """
    return pod_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def far(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """False alarm ratio per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(far(np.array([[2.0, 2.0]]), np.array([[2.0, 0.0]]), 1.0))
    0.5
    """
    return far_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def ets(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Equitable threat score per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.array([[2.0, 0.0, 0.0, 0.0]])
    >>> float(ets(obs, obs, 1.0))
    1.0
    """
    return ets_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def hss(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Heidke skill score per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.array([[2.0, 0.0, 0.0, 0.0]])
    >>> float(hss(obs, obs, 1.0))
    1.0
    """
    return hss_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def fbias(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Frequency bias per field pair and threshold (1: as many events as observed).

    Examples
    --------
    >>> import numpy as np
    >>> float(fbias(np.array([[2.0, 2.0]]), np.array([[2.0, 0.0]]), 1.0))
    2.0
    """
    return fbias_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def pofd(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Probability of false detection per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(pofd(np.array([[2.0, 2.0, 0.0]]), np.array([[2.0, 0.0, 0.0]]), 1.0))
    0.5
    """
    return pofd_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def hk(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Hanssen-Kuipers discriminant (Peirce skill score) per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(hk(np.array([[2.0, 2.0, 0.0]]), np.array([[2.0, 0.0, 0.0]]), 1.0))
    0.5
    """
    return hk_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def sedi(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Symmetric extremal dependence index per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> fc, obs = np.array([[2.0, 2.0, 0.0, 0.0, 0.0, 3.0]]), np.array([[2.0, 0.0, 2.0, 0.0, 0.0, 3.0]])
    >>> round(float(sedi(fc, obs, 1.0)), 4)
    0.4608
    """
    return sedi_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def f1(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """F1 score per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(f1(np.array([[2.0, 2.0, 0.0]]), np.array([[2.0, 0.0, 0.0]]), 1.0))
    0.6666666666666666
    """
    return f1_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def mcc(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Matthews correlation coefficient per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(mcc(np.array([[2.0, 0.0]]), np.array([[2.0, 0.0]]), 1.0))
    1.0
    """
    return mcc_from_table(contingency_table(fc, obs, thresholds, compare=compare))


def acc(
    fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds, *, compare: str = ">"
) -> np.ndarray:
    """Accuracy (fraction correct) per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(acc(np.array([[2.0, 2.0, 0.0]]), np.array([[2.0, 0.0, 0.0]]), 1.0))
    0.6666666666666666
    """
    return acc_from_table(contingency_table(fc, obs, thresholds, compare=compare))
