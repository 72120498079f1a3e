"""Probability matching: give a forecast field the value distribution of an observed one.

A smoothed forecast has the right places but too little rain area above a
high threshold and too low peaks. Matching maps its values, monotonically (the
ranks of the pixels stay as they are), onto the distribution of the last
observed field:

* ``"cdf"``: full quantile mapping: the forecast then has exactly the
  observed distribution, so the rain area above *every* threshold is kept;
* ``"mean"``: the S-PROG way (pysteps ``probmatching_method="mean"``): the
  wet area is kept (pixels below the quantile of the observed wet-area ratio
  become the no-rain value) and the mean over it is shifted to the observed
  one; amplitudes stay smoothed, which lowers the mean absolute error;
* a number ``w`` between 0 and 1: ``w * cdf + (1 - w) * mean``, both
  monotonic, so the blend is too.

The mapping is built from quantiles (a strided sample of at least
``2**16`` pixels of each field, with its minimum and maximum) and applied to every pixel through a lookup
table by a compiled kernel: one pass over the field. All fields are in the
transformed space (e.g. dBR) and must be free of NaN.

Examples
--------
>>> import numpy as np
>>> from xnowcast.probmatching import match
>>> obs = np.linspace(0, 10, 10_000, dtype="float32").reshape(100, 100)
>>> smooth = (obs * 0.5 + 2).T.copy()   # other places, squeezed values
>>> out = match(smooth, obs, "cdf", floor=0.0)
>>> bool(abs(np.sort(out, axis=None) - np.sort(obs, axis=None)).max() < 0.02)
True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from xnowcast.checks import real

__all__ = [
    "MATCHINGS",
    "N_QUANTILES",
    "apply_table",
    "lookup_table",
    "match",
    "match_table",
    "probabilities",
    "quantiles",
]

#: Names of the matching methods (a number between 0 and 1 blends them).
MATCHINGS = ("cdf", "mean", "none")

#: Points of the lookup table that carries a mapping to every pixel.
TABLE_SIZE = 4096

#: Quantiles that define a mapping (before the refinement of the upper tail).
N_QUANTILES = 1024

#: Sample size from which the quantiles of a field are taken.
MIN_SAMPLE = 2**16


def check_matching(matching: Any) -> str | float:
    """Validate ``matching``: one of :data:`MATCHINGS` or a weight in ``[0, 1]``.

    Examples
    --------
    >>> check_matching("CDF"), check_matching(0.5)
    ('cdf', 0.5)
    """
    if isinstance(matching, str):
        key = matching.strip().lower()
        if key not in MATCHINGS:
            raise ValueError(
                f"matching must be one of {', '.join(MATCHINGS)} or a weight between 0 (mean) "
                f"and 1 (cdf), got {matching!r}"
            )
        return key
    return real(matching, "matching (weight of cdf against mean matching)", low=0, high=1)


def probabilities(n: int = 1024) -> np.ndarray:
    """The probabilities at which :func:`quantiles` are taken: even steps from 0 to 1 (the
    minimum and the maximum), refined in the upper tail where the heavy rain is.

    Examples
    --------
    >>> p = probabilities(8)
    >>> float(p[0]), float(p[-1]), len(p)
    (0.0, 1.0, 10)
    """
    even = np.linspace(0.0, 1.0, n)
    tail = 1.0 - np.geomspace(1e-2, 1e-5, max(2, n // 4))
    return np.unique(np.concatenate([even, tail]))


def quantiles(field: np.ndarray, n: int = 1024) -> np.ndarray:
    """Quantiles of ``field`` at :func:`probabilities`, from a strided sample (with its extremes).

    Examples
    --------
    >>> q = quantiles(np.arange(101.0), 5)
    >>> float(q[0]), float(q[-1]), len(q)
    (0.0, 100.0, 7)
    """
    flat = np.ascontiguousarray(field, np.float32).ravel()
    stride = max(1, flat.size // MIN_SAMPLE)
    sample = _sorted_sample(flat, stride)
    positions = np.rint(_probabilities(int(n)) * (sample.size - 1)).astype(np.int64)
    return sample[positions]


def _sorted_sample(flat: np.ndarray, stride: int) -> np.ndarray:
    """The sorted strided sample of ``flat`` with its extremes (numpy's sort where NaN is)."""
    from xnowcast.lookup import sorted_sample

    lo, hi = flat.min(), flat.max()
    if np.isnan(lo) or np.isnan(hi):
        return np.sort(np.concatenate([flat[::stride], [lo, hi]]))
    return sorted_sample(flat, stride, lo, hi)


@functools.lru_cache(maxsize=16)
def _probabilities(n: int) -> np.ndarray:
    """:func:`probabilities`, computed once per ``n`` (read-only)."""
    probs = probabilities(n)
    probs.flags.writeable = False
    return probs


def match_table(
    field_q: np.ndarray,
    reference_q: np.ndarray,
    matching: str | float,
    *,
    floor: float,
    wet: float | None = None,
    probs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The monotonic mapping from ``field`` to ``reference`` values, as knots.

    Parameters
    ----------
    field_q, reference_q : (n,) arrays
        Quantiles of both fields at the same probabilities (:func:`quantiles`).
    matching : "cdf", "mean", "none" or float
        See the module docstring.
    floor : float
        The no-rain value of the transformed space (``"mean"`` sets pixels
        outside the wet area to it).
    wet : float, optional
        Values above it are rain (default ``floor``).
    probs : (n,) array, optional
        The probabilities of the quantiles (default: evenly spaced); weigh
        the quantiles in the wet-area mean of ``"mean"``.

    Returns
    -------
    knots, targets : (n,) float64
        ``field`` values and what they map to (increasing).

    Examples
    --------
    >>> q = np.array([0.0, 0.0, 1.0, 3.0])
    >>> match_table(q, q + 1, "cdf", floor=0.0)[1].tolist()
    [1.0, 1.0, 2.0, 4.0]
    """
    matching = check_matching(matching)
    knots = np.maximum.accumulate(np.asarray(field_q, np.float64))
    ref = np.maximum.accumulate(np.asarray(reference_q, np.float64))
    if matching == "none":
        return knots, knots
    cdf = ref
    weight = {"cdf": 1.0, "mean": 0.0}.get(matching, matching)  # type: ignore[arg-type]
    if weight == 1.0:
        return knots, cdf
    threshold = floor if wet is None else wet
    is_wet = ref > threshold
    if not is_wet.any():
        mean = np.full_like(knots, floor)
    else:
        cut = np.argmax(is_wet)  # the same probability in the forecast: its wet area
        p = np.linspace(0.0, 1.0, len(knots)) if probs is None else np.asarray(probs)
        w = np.gradient(p)[cut:]
        shift = (w @ ref[cut:] - w @ knots[cut:]) / w.sum()
        mean = np.where(np.arange(len(knots)) >= cut, knots + shift, floor)
        # never below no rain, never above the observed peak
        mean = np.maximum.accumulate(np.clip(mean, floor, ref[-1]))
    return knots, weight * cdf + (1.0 - weight) * mean


def apply_table(
    field: np.ndarray,
    knots: np.ndarray,
    targets: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Map every pixel of ``field`` through the piecewise-linear ``knots -> targets``.

    Values outside the knots take the first or last target. One pass over the
    field through a lookup table of :data:`TABLE_SIZE` points.

    Examples
    --------
    >>> apply_table(np.array([[-1.0, 0.5, 2.0]]), np.array([0.0, 1.0]), np.array([10.0, 20.0]))
    array([[10., 15., 20.]], dtype=float32)
    """
    from xnowcast.lookup import lookup

    field = np.ascontiguousarray(field, np.float32)
    lo, scale, table = lookup_table(knots, targets)
    if out is None:
        out = np.empty_like(field)
    lookup(field.reshape(-1), lo, scale, table, out.reshape(-1))
    return out


def lookup_table(
    knots: np.ndarray, targets: np.ndarray
) -> tuple[np.float32, np.float32, np.ndarray]:
    """The piecewise-linear ``knots -> targets`` as an even table: ``(lo, scale, table)``.

    A value ``v`` maps to ``table`` interpolated at ``(v - lo) * scale``, clipped
    to its ends (:func:`xnowcast.lookup.lookup`); :data:`TABLE_SIZE` points.

    Examples
    --------
    >>> lo, scale, table = lookup_table(np.array([0.0, 2.0]), np.array([0.0, 1.0]))
    >>> float(lo), float(scale), len(table), float(table[-1])
    (0.0, 2047.5, 4096, 1.0)
    """
    lo, hi = float(knots[0]), float(knots[-1])
    grid = np.linspace(lo, hi, TABLE_SIZE) if hi > lo else np.full(2, lo)
    table = np.interp(grid, knots, targets).astype(np.float32)
    scale = (len(table) - 1) / (hi - lo) if hi > lo else 0.0
    return np.float32(lo), np.float32(scale), table


def match(
    field: np.ndarray,
    reference: np.ndarray,
    matching: str | float = "cdf",
    *,
    floor: float,
    wet: float | None = None,
) -> np.ndarray:
    """``field`` with the value distribution of ``reference`` (see the module docstring).

    Parameters
    ----------
    field, reference : arrays without NaN
        The forecast and the observed field (any shapes).
    matching : "cdf", "mean", "none" or float
        How much of the distribution to match.
    floor : float
        The no-rain value.
    wet : float, optional
        Values above it are rain (default ``floor``).

    Examples
    --------
    >>> obs = np.repeat(np.array([0, 0, 0, 1, 4], "float32"), 200)   # 40 % wet, mean 2.5
    >>> out = match(np.linspace(0.1, 2, 1000), obs, "mean", floor=0.0)
    >>> round(float((out > 0).mean()), 2), round(float(out[out > 0].mean()), 2)
    (0.4, 2.5)
    """
    field = np.asarray(field, np.float32)
    if not (np.isfinite(field).all() and np.isfinite(reference).all()):
        raise ValueError("probability matching needs fields without NaN; fill them first")
    n = min(N_QUANTILES, field.size, np.size(reference))
    knots, targets = match_table(
        quantiles(field, n),
        quantiles(reference, n),
        matching,
        floor=floor,
        wet=wet,
        probs=probabilities(n),
    )
    return apply_table(field, knots, targets)
