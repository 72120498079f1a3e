"""Ensemble forecasts: exceedance probabilities and quantiles over the ``member`` dimension.

An ensemble forecast (``xnowcast.forecast(cube, "steps", members=20)``) has
dims ``(member, lead_time, y, x)`` or ``(init_time, member, lead_time, y,
x)``. The functions here reduce it over ``member``, lazily for dask-backed
ensembles (member chunks are combined chunk by chunk), and NaN-aware: a member
that is NaN at a pixel (advected in from outside the domain, missing data) is
left out there, and a pixel where every member is NaN gives NaN.

Threshold rule: a member *exceeds* a threshold when its value is **at or
above** it (``value >= threshold``, as pysteps'
``postprocessing.ensemblestats.excprob``); ``compare=">"`` counts strictly
above.

Examples
--------
>>> import xnowcast
>>> from xnowcast.datasets import synthetic_radar
>>> cube = synthetic_radar(n_times=16, size=32)
>>> ens = xnowcast.forecast(cube, "steps", members=4, seed=0, n_in=4, n_out=2)
>>> p = probability(ens, 1.0)
>>> p.dims, bool(((p >= 0) & (p <= 1)).where(p.notnull(), True).all())
(('lead_time', 'y', 'x'), True)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import xarray as xr

from xnowcast.checks import choice, real
from xnowcast.conventions import LEAD_TIME, MEMBER

__all__ = ["COMPARES", "check_ensemble", "probability", "quantile"]

#: Exceedance rules of :func:`probability`.
COMPARES = (">=", ">")


def check_ensemble(fc: Any, what: str = "this") -> xr.DataArray:
    """``fc`` as a DataArray with a ``member`` dimension; a clear error otherwise.

    Parameters
    ----------
    fc : DataArray or one-variable Dataset
        An ensemble forecast.
    what : str
        The operation, for the message.

    Examples
    --------
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
    >>> check_ensemble(xnowcast.forecast(cube, "persistence", n_in=2, n_out=2), "probability")
    Traceback (most recent call last):
    ...
    ValueError: probability needs an ensemble forecast with a 'member' dimension, got dims ('lead_time', 'y', 'x'): a deterministic forecast has no probabilities. Make an ensemble, e.g. forecast(cube, model='steps', members=20)
    """
    if isinstance(fc, xr.Dataset):
        names = [n for n, v in fc.data_vars.items() if MEMBER in v.dims]
        if len(names) != 1:
            raise ValueError(
                f"{what} needs one ensemble variable with a {MEMBER!r} dimension; the "
                f"Dataset holds {sorted(map(str, fc.data_vars))}: pass ds[name]"
            )
        fc = fc[names[0]]
    if not isinstance(fc, xr.DataArray):
        raise TypeError(f"{what} needs an xarray DataArray, got {type(fc).__name__}")
    if MEMBER not in fc.dims:
        raise ValueError(
            f"{what} needs an ensemble forecast with a {MEMBER!r} dimension, got dims "
            f"{tuple(map(str, fc.dims))}: a deterministic forecast has no probabilities. Make "
            "an ensemble, e.g. forecast(cube, model='steps', members=20)"
        )
    return fc


def _by_lead(fc: xr.DataArray) -> xr.DataArray:
    """A dask ensemble with all members in one chunk (and one lead time per chunk)."""
    if fc.chunks is None:
        return fc
    chunks: dict[str, Any] = {MEMBER: -1}
    if LEAD_TIME in fc.dims:
        chunks[LEAD_TIME] = 1
    return fc.chunk(chunks)


def probability(
    fc: xr.DataArray | xr.Dataset, threshold: float, *, compare: str = ">="
) -> xr.DataArray:
    """Probability that the value is at or above ``threshold``: the fraction of members.

    Parameters
    ----------
    fc : DataArray or Dataset
        Ensemble forecast with a ``member`` dimension.
    threshold : float
        In the forecast's units (e.g. mm/h).
    compare : {">=", ">"}
        Exceedance rule (see the module docstring).

    Returns
    -------
    DataArray
        Values in 0..1 with the forecast's other dims (lazy for a dask
        ensemble); NaN where every member is NaN. Attributes say the
        threshold and the rule; ``units`` is ``"1"``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ens = xr.DataArray([[0.0, 5.0], [6.0, np.nan], [5.0, np.nan]], dims=("member", "x"))
    >>> [round(float(v), 3) for v in probability(ens, 5)]
    [0.667, 1.0]
    """
    fc = check_ensemble(fc, "probability")
    threshold = real(threshold, "threshold")
    compare = choice(compare, "compare", COMPARES)
    exceeds = fc >= threshold if compare == ">=" else fc > threshold
    out = exceeds.where(fc.notnull()).astype("float32").mean(MEMBER, skipna=True)
    units = fc.attrs.get("units")
    out.attrs = {
        "long_name": f"probability of {fc.name or 'the value'} {compare} {threshold:g}"
        + (f" {units}" if units else ""),
        "units": "1",
        "threshold": threshold,
        "threshold_rule": f"value {compare} threshold",
        "members": int(fc.sizes[MEMBER]),
    }
    out.name = "probability"
    return out


def quantile(
    fc: xr.DataArray | xr.Dataset, q: float | Sequence[float], *, method: str = "linear"
) -> xr.DataArray:
    """Quantiles of the ensemble over ``member`` (NaN members left out).

    Parameters
    ----------
    fc : DataArray or Dataset
        Ensemble forecast with a ``member`` dimension.
    q : float or sequence of float
        Quantiles in 0..1.
    method : str
        Interpolation of :meth:`xarray.DataArray.quantile` (``"linear"``,
        ``"nearest"``, ...).

    Returns
    -------
    DataArray
        The forecast's other dims, with a ``quantile`` dimension first for a
        sequence ``q``; lazy for a dask ensemble (computed one lead time at a
        time, with all members together).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ens = xr.DataArray([[0.0, 1.0], [2.0, np.nan], [4.0, 3.0]], dims=("member", "x"))
    >>> quantile(ens, [0.5, 1.0]).values.tolist()
    [[2.0, 2.0], [4.0, 3.0]]
    """
    fc = check_ensemble(fc, "quantile")
    values = np.atleast_1d(np.asarray(q, dtype=float))
    if values.ndim != 1 or not ((values >= 0) & (values <= 1)).all():
        raise ValueError(f"quantiles q must lie in 0..1, got {q!r}")
    with warnings.catch_warnings():  # pixels where every member is NaN give NaN, quietly
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        out = _by_lead(fc).quantile(
            q, dim=MEMBER, method=cast(Any, method), skipna=True, keep_attrs=True
        )
        return out.astype(fc.dtype)
