"""Categorical scores from the 2x2 contingency table at intensity thresholds.

An *event* is a value at or above the threshold (``value >= threshold``).
Pixels missing (NaN or infinite) in *either* field are left out of the table.
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
==========  ==========================================================  =======

A score whose denominator is 0 (for example POD when nothing was observed) is
NaN. The definitions are those of :mod:`pysteps.verification.detcatscores`,
which counts events as ``value > threshold``; the two agree except for values
exactly equal to a threshold.

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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnowcast.verification._util import as_values, masked_pair, safe_divide

__all__ = [
    "TABLE",
    "contingency_table",
    "csi",
    "csi_from_table",
    "ets",
    "ets_from_table",
    "far",
    "far_from_table",
    "fbias",
    "fbias_from_table",
    "hss",
    "hss_from_table",
    "pod",
    "pod_from_table",
]

#: Order of the counts on the last axis of :func:`contingency_table`.
TABLE = ("hits", "misses", "false_alarms", "correct_negatives")

Thresholds = float | Sequence[float]


def contingency_table(fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Count hits, misses, false alarms and correct negatives.

    Parameters
    ----------
    fc, obs : numpy.ndarray
        Forecast and observed fields, shape ``(..., y, x)``.
    thresholds : float or sequence of float
        Event thresholds (``value >= threshold``), in the units of the data.

    Returns
    -------
    numpy.ndarray
        float64 counts, shape ``(..., n_thresholds, 4)`` in the order of
        :data:`TABLE`, or ``(..., 4)`` for a single (scalar) threshold.
    """
    f, o, valid = masked_pair(fc, obs)
    thr = as_values(thresholds, "thresholds")
    tables = []
    n = np.count_nonzero(valid, axis=(-2, -1))
    for t in thr:
        fy = (f >= t) & valid
        oy = (o >= t) & valid
        hits = np.count_nonzero(fy & oy, axis=(-2, -1))
        n_fc = np.count_nonzero(fy, axis=(-2, -1))
        n_obs = np.count_nonzero(oy, axis=(-2, -1))
        misses = n_obs - hits
        false_alarms = n_fc - hits
        tables.append(
            np.stack([hits, misses, false_alarms, n - hits - misses - false_alarms], axis=-1)
        )
    out = np.stack(tables, axis=-2).astype(np.float64)
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


def csi(fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds) -> np.ndarray:
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
    return csi_from_table(contingency_table(fc, obs, thresholds))


def pod(fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Probability of detection per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(pod(np.array([[2.0, 0.0]]), np.array([[2.0, 2.0]]), 1.0))
    0.5
    """
    return pod_from_table(contingency_table(fc, obs, thresholds))


def far(fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """False alarm ratio per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> float(far(np.array([[2.0, 2.0]]), np.array([[2.0, 0.0]]), 1.0))
    0.5
    """
    return far_from_table(contingency_table(fc, obs, thresholds))


def ets(fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Equitable threat score per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.array([[2.0, 0.0, 0.0, 0.0]])
    >>> float(ets(obs, obs, 1.0))
    1.0
    """
    return ets_from_table(contingency_table(fc, obs, thresholds))


def hss(fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Heidke skill score per field pair and threshold.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.array([[2.0, 0.0, 0.0, 0.0]])
    >>> float(hss(obs, obs, 1.0))
    1.0
    """
    return hss_from_table(contingency_table(fc, obs, thresholds))


def fbias(fc: np.ndarray, obs: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Frequency bias per field pair and threshold (1: as many events as observed).

    Examples
    --------
    >>> import numpy as np
    >>> float(fbias(np.array([[2.0, 2.0]]), np.array([[2.0, 0.0]]), 1.0))
    2.0
    """
    return fbias_from_table(contingency_table(fc, obs, thresholds))
