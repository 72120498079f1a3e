"""SAL: the structure, amplitude and location components (Wernli et al. 2008).

For a forecast field ``F`` and an observed field ``O`` (rain rates):

``amplitude``
    ``A = (mean F - mean O) / ((mean F + mean O) / 2)``, in ``[-2, 2]``, 0 perfect.
``structure``
    ``S = (V(F) - V(O)) / ((V(F) + V(O)) / 2)``, in ``[-2, 2]``, 0 perfect,
    where ``V = sum_n R_n V_n / sum_n R_n`` over the *objects* ``n`` of the
    field, ``R_n`` their summed rain and ``V_n = R_n / max R_n`` their scaled
    volume. Negative: objects too small or too peaked.
``location``
    ``L = L1 + L2`` in ``[0, 2]``, 0 perfect: ``L1`` the distance between the
    fields' centres of mass and ``L2`` twice the difference of the
    rain-weighted mean distances of the objects' centres from that centre,
    both divided by the diagonal of the domain.

Objects are found as :func:`pysteps.verification.salscores.sal` finds them,
with pysteps' thunderstorm detection (Feldmann et al. 2021) and the options
SAL gives it: the connected areas (4-neighbour) where the field reaches
``thr_factor`` times its ``thr_quantile`` quantile of the values above the
field's minimum (1/15 of the 95th percentile by default, as Wernli et al.
2009), of at least ``min_size`` cells, split among their maxima (at least 10
cells apart) by a watershed.

A pixel missing (NaN) in either field is missing in both. A component is NaN
where it is undefined (no rain, no object). SAL is computed per field pair;
:func:`xnowcast.verify` averages each component over pairs when it pools.
Needs scipy and scikit-image (``pip install 'xnowcast[verify]'``).

Examples
--------
>>> import numpy as np
>>> from xnowcast.verification import sal
>>> obs = np.zeros((40, 40)); obs[5:15, 5:15] = 2.0
>>> fc = np.zeros((40, 40)); fc[5:15, 25:35] = 4.0
>>> [round(float(v), 4) for v in sal.sal(fc, obs)]
[0.0, 0.6667, 0.3536]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnowcast.verification._util import as_pair, safe_divide

__all__ = [
    "SAL_STATS",
    "amplitude_from_stats",
    "location_from_stats",
    "sal",
    "sal_amplitude",
    "sal_location",
    "sal_stats",
    "sal_structure",
    "structure_from_stats",
]

#: Statistics of :func:`sal_stats`: sum and count of each component over field pairs.
SAL_STATS = ("sum_s", "n_s", "sum_a", "n_a", "sum_l", "n_l")


def _ndimage() -> Any:
    from xnowcast.optional import import_optional

    return import_optional("scipy.ndimage", "SAL verification", extra="verify")


def _skimage() -> tuple[Any, Any]:
    from xnowcast.optional import import_optional

    morphology = import_optional("skimage.morphology", "SAL verification", extra="verify")
    segmentation = import_optional("skimage.segmentation", "SAL verification", extra="verify")
    return morphology, segmentation


def _threshold(field: np.ndarray, thr_factor: float, thr_quantile: float) -> float:
    """``thr_factor`` times the ``thr_quantile`` quantile of the values above the minimum."""
    values = field[np.isfinite(field)]
    wet = values[values > values.min()] if values.size else values
    return float(thr_factor * np.quantile(wet, thr_quantile)) if wet.size else np.nan


def _first_pixels(labels: np.ndarray, n: int, min_count: int) -> np.ndarray:
    """Flat index of the first pixel (row-major) of each label with more than ``min_count``."""
    flat = labels.ravel()
    _, first = np.unique(flat, return_index=True)
    counts = np.bincount(flat, minlength=n + 1)
    labelled = np.unique(flat)
    keep = (labelled > 0) & (counts[labelled] > min_count)
    return first[keep]


def _far_apart(
    rows: np.ndarray, cols: np.ndarray, min_distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Maxima in order, each dropped when closer than ``min_distance`` to a kept earlier one."""
    n = 0
    while n < len(rows):
        dist = np.hypot(cols[n] - cols, rows[n] - rows)
        close = np.flatnonzero(dist < min_distance)
        close = close[close > n]
        if close.size:
            rows, cols = np.delete(rows, close), np.delete(cols, close)
        n += 1
    return rows, cols


def _regions(field: np.ndarray, threshold: float, min_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(plateau image, labels)``: areas reaching ``threshold``, of at least ``min_size`` cells.

    Values above ``threshold + 1e-5`` are flattened to that level, and one
    cell of each flat top of more than 3 cells is raised above it (a maximum).
    """
    ndi = _ndimage()
    top = threshold + 1e-5
    filt = np.where(field >= threshold, field, 0.0)
    filt[field > top] = top
    plateaus, n = ndi.label(filt == top)
    raised = np.zeros(filt.size, dtype=bool)
    raised[_first_pixels(plateaus, n, 3)] = True
    filt[raised.reshape(filt.shape)] = top + 1
    labels, n = ndi.label(filt > 0)
    index = np.arange(1, n + 1)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    peaks = np.asarray(ndi.maximum(field, labels, index)) if n else np.zeros(0)
    drop = np.r_[False, (sizes < min_size) | (peaks < threshold)]
    labels[drop[labels]] = 0
    filt[labels == 0] = 0.0
    return filt, labels


def _objects(
    field: np.ndarray,
    thr_factor: float,
    thr_quantile: float,
    min_size: int,
    min_distance: int = 10,
) -> tuple[np.ndarray, int]:
    """``(labels, n)``: the objects of a 2-D field (0: no object).

    The thunderstorm detection of pysteps (Feldmann et al. 2021) with the
    options SAL gives it: areas reaching the threshold, split among their
    maxima (at least ``min_distance`` cells apart) by a watershed.
    """
    threshold = _threshold(field, thr_factor, thr_quantile)
    if not np.isfinite(threshold):
        return np.zeros(field.shape, dtype=np.int32), 0
    morphology, segmentation = _skimage()
    filt, labels = _regions(field, threshold, min_size)
    side = min_distance - 1 if min_distance % 2 == 0 else min_distance
    if filt.max() < threshold:
        return np.zeros(field.shape, dtype=np.int32), 0
    maxima = morphology.h_maxima(filt, 1e-5, footprint=np.ones((side, side)))
    peak_rows, peak_cols = np.nonzero(maxima > 0)
    rows, cols = _far_apart(peak_rows, peak_cols, min_distance)
    keep = np.isin(labels, labels[rows, cols]) & (labels > 0)
    markers = np.zeros(field.shape, dtype=np.int32)
    markers[rows, cols] = 1
    low = np.nanmin(field)
    ground = np.where(field > low, field, low)
    areas = segmentation.watershed(-ground, markers=_ndimage().label(markers)[0])
    cells = np.where(keep, areas, 0)
    out = np.zeros(field.shape, dtype=np.int32)
    for k, cell in enumerate(cells[rows, cols]):
        out[cells == cell] = k + 1
    return out, len(rows)


def _object_sums(field: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Per object: summed rain, maximum and rain-weighted centre ``(y, x)``."""
    rain = np.nan_to_num(field).ravel()
    lab = labels.ravel()
    total = np.bincount(lab, weights=rain, minlength=n + 1)[1:]
    peak = np.full(n + 1, -np.inf)
    np.maximum.at(peak, lab, rain)
    yy, xx = np.indices(field.shape)
    cy = safe_divide(np.bincount(lab, weights=rain * yy.ravel(), minlength=n + 1)[1:], total)
    cx = safe_divide(np.bincount(lab, weights=rain * xx.ravel(), minlength=n + 1)[1:], total)
    return total, peak[1:], cy, cx


def _scaled_volume(field: np.ndarray, labels: np.ndarray, n: int) -> float:
    total, peak, _, _ = _object_sums(field, labels, n)
    if n == 0 or not (total != 0).any():
        return 0.0
    volume = np.where(total != 0, total * total / np.where(peak != 0, peak, 1.0), 0.0)
    return float(volume.sum() / total.sum())


def _centre(field: np.ndarray) -> tuple[float, float]:
    rain = np.nan_to_num(field)
    mass = rain.sum()
    if mass == 0:
        return np.nan, np.nan
    yy, xx = np.indices(field.shape)
    return float((rain * yy).sum() / mass), float((rain * xx).sum() / mass)


def _weighted_distance(field: np.ndarray, labels: np.ndarray, n: int) -> float:
    if n == 0:
        return np.nan
    total, _, cy, cx = _object_sums(field, labels, n)
    y0, x0 = _centre(field)
    return float((total * np.hypot(cy - y0, cx - x0)).sum() / total.sum())


def _pair(fc: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f, o = as_pair(fc, obs)
    if f.ndim != 2:
        raise ValueError(f"SAL scores one 2-D field pair, got arrays of shape {f.shape}")
    missing = ~(np.isfinite(f) & np.isfinite(o))
    return np.where(missing, np.nan, f), np.where(missing, np.nan, o)


def sal_structure(
    fc: np.ndarray,
    obs: np.ndarray,
    thr_factor: float = 0.067,
    thr_quantile: float = 0.95,
    min_size: int = 50,
) -> float:
    """Structure component ``S`` of one 2-D field pair (NaN without objects in either).

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((40, 40)); obs[5:15, 5:15] = 2.0
    >>> float(sal_structure(obs, obs))
    0.0
    """
    f, o = _pair(fc, obs)
    found = _both_objects(f, o, thr_factor, thr_quantile, min_size)
    return _structure(f, o, *found)


def _both_objects(f, o, thr_factor, thr_quantile, min_size) -> tuple[tuple, tuple]:
    """The objects of the forecast and of the observed field (found once, shared by S and L)."""
    return (
        _objects(f, thr_factor, thr_quantile, min_size),
        _objects(o, thr_factor, thr_quantile, min_size),
    )


def _structure(f: np.ndarray, o: np.ndarray, objects_f: tuple, objects_o: tuple) -> float:
    vf, vo = _scaled_volume(f, *objects_f), _scaled_volume(o, *objects_o)
    return (vf - vo) / (0.5 * (vf + vo)) if vf + vo != 0 else np.nan


def sal_amplitude(fc: np.ndarray, obs: np.ndarray) -> float:
    """Amplitude component ``A`` of one 2-D field pair.

    Examples
    --------
    >>> import numpy as np
    >>> float(sal_amplitude(np.full((4, 4), 3.0), np.ones((4, 4))))
    1.0
    """
    f, o = _pair(fc, obs)
    if not np.isfinite(f).any():
        return np.nan
    mf, mo = float(np.nanmean(f)), float(np.nanmean(o))
    return (mf - mo) / (0.5 * (mf + mo)) if mf + mo != 0 else np.nan


def sal_location(
    fc: np.ndarray,
    obs: np.ndarray,
    thr_factor: float = 0.067,
    thr_quantile: float = 0.95,
    min_size: int = 50,
) -> float:
    """Location component ``L = L1 + L2`` of one 2-D field pair.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((40, 40)); obs[5:15, 5:15] = 2.0
    >>> float(sal_location(obs, obs))
    0.0
    """
    f, o = _pair(fc, obs)
    found = _both_objects(f, o, thr_factor, thr_quantile, min_size)
    return _location(f, o, *found)


def _location(f: np.ndarray, o: np.ndarray, objects_f: tuple, objects_o: tuple) -> float:
    diagonal = float(np.hypot(*f.shape))
    (fy, fx), (oy, ox) = _centre(f), _centre(o)
    l1 = np.hypot(fy - oy, fx - ox) / diagonal
    rf, ro = _weighted_distance(f, *objects_f), _weighted_distance(o, *objects_o)
    return float(l1 + 2.0 * abs(ro - rf) / diagonal)


def sal(
    fc: np.ndarray,
    obs: np.ndarray,
    thr_factor: float = 0.067,
    thr_quantile: float = 0.95,
    min_size: int = 50,
) -> tuple[float, float, float]:
    """``(S, A, L)`` of one 2-D field pair, as :func:`pysteps.verification.salscores.sal`.

    Parameters
    ----------
    fc, obs : numpy.ndarray
        2-D fields (rain rates or accumulations).
    thr_factor, thr_quantile : float
        Object threshold: ``thr_factor`` times the ``thr_quantile`` quantile
        of the values above the field's minimum.
    min_size : int
        Fewest cells of an object (pysteps' ``minsize``).

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((40, 40)); obs[5:15, 5:15] = 2.0
    >>> sal(obs, obs)
    (0.0, 0.0, 0.0)
    """
    f, o = _pair(fc, obs)  # objects found once per field, shared by S and L
    found = _both_objects(f, o, thr_factor, thr_quantile, min_size)
    return _structure(f, o, *found), sal_amplitude(f, o), _location(f, o, *found)


def sal_stats(
    fc: np.ndarray,
    obs: np.ndarray,
    *,
    thr_factor: float = 0.067,
    thr_quantile: float = 0.95,
) -> np.ndarray:
    """SAL components of each pair of ``(..., y, x)`` fields as sums and counts, ``(..., 6)``.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((2, 40, 40)); obs[:, 5:15, 5:15] = 2.0
    >>> sal_stats(obs, obs).tolist()[0]
    [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    """
    f, o = as_pair(fc, obs)
    pairs_f = f.reshape(-1, *f.shape[-2:])
    pairs_o = o.reshape(-1, *o.shape[-2:])
    out = np.zeros((pairs_f.shape[0], 6))
    for i in range(pairs_f.shape[0]):
        values = np.array(sal(pairs_f[i], pairs_o[i], thr_factor, thr_quantile))
        ok = np.isfinite(values)
        out[i, 0::2] = np.where(ok, values, 0.0)
        out[i, 1::2] = ok
    return out.reshape(*f.shape[:-2], 6)


def structure_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean structure component from :func:`sal_stats`."""
    return safe_divide(stats[..., 0], stats[..., 1])


def amplitude_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean amplitude component from :func:`sal_stats`."""
    return safe_divide(stats[..., 2], stats[..., 3])


def location_from_stats(stats: np.ndarray) -> np.ndarray:
    """Mean location component from :func:`sal_stats`."""
    return safe_divide(stats[..., 4], stats[..., 5])
