"""Radar archives as sequences: splitting, rain categories and balanced splits.

An archive of radar frames is rarely one regular movie: scans go missing, the
radar is off at night or for maintenance, downloads fail. This module turns
such an archive into *sequences* (runs of frames with no gap larger than
``max_gap``), measures how much it rains in every frame, gives every frame a
rain *category*, keeps the sequences that are long and rainy enough, and deals
whole sequences into train/validation/test sets that look alike (same spread
of sequence lengths and of rain categories).

The workflow, in a few lines::

    table = sequence_table(cube, max_gap="10min", min_length=10, min_mean_category=0.5)
    train, val, test = split_dataset(cube, table, fractions=(0.7, 0.15, 0.15), seed=0)
    split_summary(table, (train, val, test))

Each returned cube carries a ``sequence_id`` coordinate along time, so
:func:`xnowcast.windows.windows` (``cube.nowcast.windows``) never cuts a
training window across two sequences.

All functions are vectorised numpy; only :func:`rain_amount` touches the
pixels, lazily over dask.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import choice, integer, positive_int, real
from xnowcast.conventions import as_interval, normalize_cube
from xnowcast.units import rain_rate_for
from xnowcast.windows import SEQUENCE_ID

__all__ = [
    "DEFAULT_QUANTILES",
    "RAIN_THRESHOLD",
    "SEQUENCE_ID",
    "assign_sequences",
    "categorize",
    "category_edges",
    "rain_amount",
    "sequence_table",
    "set_names",
    "split",
    "split_dataset",
    "split_summary",
]

#: Quantiles of the rain amount that separate the categories by default
#: (five categories: 0 = driest quarter of the archive ... 4 = wettest 5 %).
DEFAULT_QUANTILES: tuple[float, ...] = (0.25, 0.5, 0.75, 0.95)

AmountMethod = Literal["fraction", "mean", "no_rain_count"]
_METHODS: tuple[AmountMethod, ...] = ("fraction", "mean", "no_rain_count")


# --------------------------------------------------------------------------- split
def _as_ns(times: Any, what: str = "times") -> np.ndarray:
    """Times as int64 nanoseconds (UTC for tz-aware input)."""
    if isinstance(times, (xr.DataArray, xr.Variable)):
        times = times.values
    elif isinstance(times, pd.Series):
        times = times.to_numpy()
    arr = np.asarray(times)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "iufcb":
        raise TypeError(
            f"{what} must be datetimes, got numbers (dtype {arr.dtype}); convert them with "
            "pd.to_datetime(values, unit='s') (or the unit they are in)"
        )
    try:
        index = pd.DatetimeIndex(arr if isinstance(times, np.ndarray) else times)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be datetimes or date strings ({err})") from None
    if index.hasnans:
        bad = np.flatnonzero(index.isna())[:5].tolist()
        raise ValueError(f"{what} hold NaT at position(s) {bad}; drop those frames first")
    return index.as_unit("ns").asi8


def _as_timedelta(value: Any, name: str) -> pd.Timedelta:
    return as_interval(value, name, example="10min")


def _numbers(values: Any, name: str) -> np.ndarray:
    """A flat float64 array of ``values``, or a ValueError naming ``name``."""
    try:
        return np.asarray(values, dtype="float64").ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {values!r}") from None


def split(times: Any, max_gap: str | pd.Timedelta | np.timedelta64 = "10min") -> np.ndarray:
    """Sequence id of every frame: a new sequence starts after each gap.

    A frame starts a new sequence when it is **more than** ``max_gap`` after
    the frame before it; a spacing exactly equal to ``max_gap`` is contiguous.
    With 10-minute scans and ``max_gap="10min"``, frames 10 minutes apart are
    in one sequence and one missing scan (20 minutes) starts a new one.

    Parameters
    ----------
    times : array-like of datetimes
        A :class:`pandas.DatetimeIndex`, numpy ``datetime64`` array, Series,
        time coordinate or list of date strings. Need not be sorted.
    max_gap : str, Timedelta or timedelta64
        Largest spacing that still counts as contiguous.

    Returns
    -------
    numpy.ndarray
        ``int64`` sequence id per time, **in the caller's order**. Ids count
        up from 0 in time order (the earliest frame is in sequence 0).

    Raises
    ------
    ValueError
        Duplicate times (the message lists them), NaT, or a non-positive
        ``max_gap``.
    TypeError
        Times that are not datetimes.

    Notes
    -----
    Vectorised: one sort (skipped when already sorted), one ``diff`` and one
    ``cumsum``; a million sorted timestamps take about 10 ms, shuffled ones
    about 0.2 s (the sort; see ``docs/sequences.md`` for measured numbers).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.to_datetime(["2021-06-01 10:00", "2021-06-01 10:10", "2021-06-01 10:30",
    ...                     "2021-06-01 10:40", "2021-06-01 12:00"])
    >>> split(t, max_gap="10min")
    array([0, 0, 1, 1, 2])

    Unsorted input keeps its order:

    >>> split(t[[3, 0, 4, 1, 2]], max_gap="10min")
    array([1, 0, 2, 0, 1])
    """
    gap = _as_timedelta(max_gap, "max_gap").value
    ns = _as_ns(times)
    n = ns.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    already_sorted = bool(np.all(ns[1:] >= ns[:-1]))
    order = None if already_sorted else np.argsort(ns, kind="stable")
    s = ns if order is None else ns[order]
    diffs = np.diff(s)
    dup = diffs == 0
    if dup.any():
        _raise_duplicates(s[1:][dup])
    ids_sorted = np.empty(n, dtype=np.int64)
    ids_sorted[0] = 0
    np.cumsum(diffs > gap, out=ids_sorted[1:])
    if order is None:
        return ids_sorted
    ids = np.empty(n, dtype=np.int64)
    ids[order] = ids_sorted
    return ids


def _raise_duplicates(dup_ns: np.ndarray) -> None:
    values, counts = np.unique(dup_ns, return_counts=True)
    shown = ", ".join(f"{pd.Timestamp(v)} ({c + 1}x)" for v, c in zip(values[:10], counts[:10]))
    more = f" and {len(values) - 10} more" if len(values) > 10 else ""
    raise ValueError(
        f"{len(values)} duplicate time(s): {shown}{more}; a time may appear once. Drop the "
        "repeats first (times.drop_duplicates(), or cube.drop_duplicates('time') for a cube)"
    )


# --------------------------------------------------------------------- rain amount
#: Default rain/no-rain threshold of :func:`rain_amount`: a rain rate in mm h-1.
RAIN_THRESHOLD = 0.1


def rain_amount(
    cube: xr.DataArray | xr.Dataset,
    threshold: float | None = None,
    method: AmountMethod = "fraction",
    *,
    var: str | None = None,
) -> xr.DataArray:
    """How much it rains in every frame (lazy over dask, NaN-aware).

    Parameters
    ----------
    cube : DataArray or Dataset
        The archive (``time, y, x``; dims may be named differently).
    threshold : float, optional
        Rain/no-rain threshold in the cube's units (``"fraction"`` and
        ``"no_rain_count"``); a pixel rains when its value is ``> threshold``.
        Default: ``RAIN_THRESHOLD`` (0.1 mm h-1); a cube of accumulations or
        reflectivities is then converted to rain rate first, with a warning
        (:func:`xnowcast.units.rain_rate_for`), and other units are refused.
    method : {"fraction", "mean", "no_rain_count"}
        ``"fraction"``: fraction of the *valid* (non-NaN) pixels above
        ``threshold`` (0..1). ``"mean"``: mean intensity of the valid pixels.
        ``"no_rain_count"``: number of valid pixels ``<= threshold``, as the
        SRI seed project counted grey (no-rain) pixels; larger means *drier*.
    var : str, optional
        Variable of a Dataset.

    Returns
    -------
    DataArray
        Float (``"fraction"``, ``"mean"``) or integer (``"no_rain_count"``)
        values along the cube's time dimension, with its time coordinate.
        Dask-backed when the cube is: nothing is computed until asked.
        A frame with no valid pixel gets NaN (``"fraction"``, ``"mean"``) or 0.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> data = np.array([[[0.0, 2.0], [np.nan, 0.5]], [[0.0, 0.0], [0.0, np.nan]]])
    >>> cube = xr.DataArray(data, dims=("time", "y", "x"),
    ...                     coords={"time": pd.date_range("2021-06-01", periods=2, freq="10min")})
    >>> rain_amount(cube, threshold=0.1).values
    array([0.66666667, 0.        ])
    >>> rain_amount(cube, method="no_rain_count").values
    array([1, 3])
    """
    method = choice(method, "method", _METHODS)
    cube, info = normalize_cube(cube, var, min_frames=1)
    if threshold is None:
        threshold = RAIN_THRESHOLD
        if method != "mean":
            cube = rain_rate_for(cube, "rain_amount's default threshold (0.1 mm h-1)")
    threshold = real(threshold, "threshold")
    space = list(info.spatial_dims)
    units = cube.attrs.get("units")
    valid = cube.notnull()
    if method == "fraction":
        n_valid = valid.sum(space)
        out = (cube > threshold).sum(space) / n_valid.where(n_valid > 0)
        attrs = {"long_name": f"fraction of valid pixels above {threshold:g}", "units": "1"}
    elif method == "mean":
        n_valid = valid.sum(space)
        out = cube.where(valid, 0).sum(space, dtype="float64") / n_valid.where(n_valid > 0)
        attrs = {"long_name": "mean intensity of the valid pixels"}
        if units:
            attrs["units"] = units
    else:
        out = (cube <= threshold).sum(space)
        attrs = {"long_name": f"number of valid pixels at or below {threshold:g}", "units": "1"}
    out = out.reset_coords(drop=True)
    out.name = "rain_amount"
    out.attrs = {**attrs, "rain_amount_method": method, "rain_threshold": threshold}
    return out


# ----------------------------------------------------------------------- categories
def _values_1d(amount: Any) -> np.ndarray:
    if isinstance(amount, (xr.DataArray, pd.Series)):
        amount = amount.to_numpy()
    try:
        values = np.asarray(amount, dtype="float64")
    except (TypeError, ValueError):
        raise ValueError(f"amount must be numbers (one per frame), got {amount!r}") from None
    if values.ndim != 1:
        raise ValueError(f"amount must be one-dimensional, got shape {values.shape}")
    return values


def category_edges(
    amount: Any,
    quantiles: Sequence[float] | None = None,
    bins: Sequence[float] | None = None,
    *,
    reverse: bool = False,
) -> np.ndarray:
    """The category edges :func:`categorize` uses (in units of ``amount``).

    Parameters
    ----------
    amount : array-like or DataArray
        Rain amount per frame of the whole archive (NaN ignored).
    quantiles : sequence of float, optional
        Increasing quantile levels in (0, 1); the edges are the quantiles of
        ``amount`` over the archive. Default :data:`DEFAULT_QUANTILES`.
    bins : sequence of float, optional
        Fixed, strictly increasing edges (instead of ``quantiles``).
    reverse : bool
        ``amount`` grows as rain decreases (``"no_rain_count"``): the edges
        are taken at the levels ``1 - q``, so that a quantile level means the
        same share of the wettest frames either way.

    Returns
    -------
    numpy.ndarray
        ``float64`` edges, non-decreasing (quantile edges can repeat when many
        frames share a value, e.g. dry frames with amount 0).

    Examples
    --------
    >>> category_edges([0, 0, 0, 1, 2, 3, 4, 5], quantiles=[0.5])
    array([1.5])
    """
    if quantiles is not None and bins is not None:
        raise ValueError("give either quantiles= or bins=, not both")
    if bins is not None:
        edges = _numbers(bins, "bins")
        if edges.size == 0 or not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError(
                f"bins must be finite and strictly increasing, got {list(np.ravel(bins))}"
            )
        return edges
    q = _numbers(DEFAULT_QUANTILES if quantiles is None else quantiles, "quantiles")
    if q.size == 0 or np.any((q <= 0) | (q >= 1)) or np.any(np.diff(q) <= 0):
        raise ValueError(
            f"quantiles must be strictly increasing levels between 0 and 1 (exclusive), "
            f"got {q.tolist()}"
        )
    values = _values_1d(amount)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(
            "cannot compute quantile edges: the rain amount has no finite value (every "
            "frame is all-NaN?); pass fixed bins= instead"
        )
    return np.quantile(values, (1 - q[::-1]) if reverse else q)


def categorize(
    amount: Any,
    quantiles: Sequence[float] | None = None,
    bins: Sequence[float] | None = None,
    *,
    reverse: bool | None = None,
) -> np.ndarray | xr.DataArray:
    """Rain category of every frame; a higher category means more rain.

    Categories count the edges the amount lies above. With edges
    ``e_0 <= e_1 <= ... <= e_{K-1}`` (from :func:`category_edges`):

    ========================  ==========
    amount                    category
    ========================  ==========
    ``a <= e_0``              0
    ``e_{k-1} < a <= e_k``    k
    ``a > e_{K-1}``           K
    NaN                       -1
    ========================  ==========

    Intervals are closed on the right, so a value equal to an edge goes to
    the lower category: with quantile edges, fully dry frames (amount 0) are
    category 0 even when most of the archive is dry and several edges are 0
    (repeated edges merge categories; the category numbers then skip).

    Parameters
    ----------
    amount : array-like or DataArray
        Rain amount per frame (usually :func:`rain_amount`).
    quantiles : sequence of float, optional
        Quantile levels; edges are quantiles of ``amount`` over all frames
        given. Default :data:`DEFAULT_QUANTILES` (categories 0..4).
    bins : sequence of float, optional
        Fixed edges in units of ``amount`` instead of quantiles.
    reverse : bool, optional
        ``True`` when a *larger* amount means *less* rain (the
        ``"no_rain_count"`` method); the category then counts the edges
        *above* the amount (a value equal to an edge goes to the drier
        category) and quantile edges are taken at ``1 - q``, so that it
        still grows with rain and category 4 of the default quantiles is
        still the wettest 5 %. Default: ``True``
        exactly when ``amount`` is a DataArray made by :func:`rain_amount`
        with ``method="no_rain_count"``.

    Returns
    -------
    numpy.ndarray or DataArray
        ``int64`` categories (``-1`` for NaN); a DataArray (computed, same
        coordinates, the edges in ``attrs["category_edges"]``) when
        ``amount`` is one.

    Examples
    --------
    >>> categorize([0.0, 0.05, 0.2, 0.6, float("nan")], bins=[0.0, 0.1, 0.5])
    array([ 0,  1,  2,  3, -1])
    >>> categorize([0, 0, 0, 0, 1, 2, 3, 4], quantiles=[0.25, 0.5, 0.75])
    array([0, 0, 0, 0, 2, 2, 3, 3])
    """
    values = _values_1d(amount)
    if reverse is None:
        reverse = (
            isinstance(amount, xr.DataArray)
            and amount.attrs.get("rain_amount_method") == "no_rain_count"
        )
    edges = category_edges(values, quantiles=quantiles, bins=bins, reverse=reverse)
    cats = _apply_edges(values, edges, reverse)
    if isinstance(amount, xr.DataArray):
        return xr.DataArray(
            cats,
            dims=amount.dims,
            coords=amount.coords,
            name="category",
            attrs={
                "long_name": "rain category (higher = more rain; -1 = no valid data)",
                "category_edges": edges.tolist(),
                "category_reverse": int(bool(reverse)),
            },
        )
    return cats


def _apply_edges(values: np.ndarray, edges: np.ndarray, reverse: bool) -> np.ndarray:
    """The categorisation kernel (see :func:`categorize` for the rule)."""
    if reverse:
        cats = edges.size - np.searchsorted(edges, values, side="right")
    else:
        cats = np.searchsorted(edges, values, side="left")
    return np.where(np.isnan(values), -1, cats).astype(np.int64)


# -------------------------------------------------------------------- the table
def _per_sequence(seq_ids: np.ndarray, cats: np.ndarray) -> tuple[np.ndarray, ...]:
    """Unique ids, inverse, length and mean category (ignoring -1) per sequence."""
    uniq, inverse = np.unique(seq_ids, return_inverse=True)
    length = np.bincount(inverse, minlength=uniq.size)
    valid = cats >= 0
    total = np.bincount(inverse, weights=np.where(valid, cats, 0), minlength=uniq.size)
    n_valid = np.bincount(inverse, weights=valid, minlength=uniq.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_cat = np.where(n_valid > 0, total / np.maximum(n_valid, 1), np.nan)
    return uniq, inverse, length, mean_cat


def sequence_table(
    cube: xr.DataArray | xr.Dataset,
    max_gap: str | pd.Timedelta | np.timedelta64 = "10min",
    rain_threshold: float | None = None,
    amount: AmountMethod = "fraction",
    quantiles: Sequence[float] | None = None,
    bins: Sequence[float] | None = None,
    min_length: int = 10,
    min_mean_category: float = 0.5,
    *,
    var: str | None = None,
) -> pd.DataFrame:
    """Per-frame table of the sequences worth keeping in an archive.

    Steps: rain amount per frame (:func:`rain_amount`, the only pass over the
    pixels), categories from quantiles over the *whole* archive or fixed bins
    (:func:`categorize`), sequences (:func:`split`), then selection: a
    sequence is kept when it has at least ``min_length`` frames and its mean
    category (over frames with valid data) is at least ``min_mean_category``.
    Kept sequences are renumbered ``0 .. n-1`` in time order.

    Parameters
    ----------
    cube : DataArray or Dataset
        The archive (``time, y, x``). Its time index must be sorted, unique
        and a whole multiple of one step apart (see
        :func:`xnowcast.conventions.normalize_cube`).
    max_gap : str or Timedelta
        See :func:`split` (a spacing equal to ``max_gap`` is contiguous).
    rain_threshold : float, optional
        Rain/no-rain threshold in the cube's units; default 0.1 mm h-1, with
        the conversion of :func:`rain_amount`.
    amount : {"fraction", "mean", "no_rain_count"}
        Rain amount method (see :func:`rain_amount`); for
        ``"no_rain_count"`` the categories are reversed so that a higher
        category still means more rain.
    quantiles, bins : sequence of float, optional
        Category edges (see :func:`categorize`).
    min_length : int
        Fewest frames a kept sequence has.
    min_mean_category : float
        Lowest mean category a kept sequence has (0 keeps all).
    var : str, optional
        Variable of a Dataset.

    Returns
    -------
    pandas.DataFrame
        One row per kept frame, in time order, columns ``time``,
        ``rain_amount``, ``category`` and ``sequence_id``. ``table.attrs``
        records the settings and the category edges.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2021-06-01", periods=30, freq="10min").delete([12])
    >>> data = np.zeros((29, 4, 4), "float32")
    >>> data[:12, :2] = 1.0        # the first sequence rains on half the image
    >>> cube = xr.DataArray(data, dims=("time", "y", "x"), coords={"time": t})
    >>> table = sequence_table(cube, bins=[0.1], min_length=10, min_mean_category=0.5)
    >>> table.groupby("sequence_id").size().to_dict()
    {0: 12}
    """
    positive_int(min_length, "min_length")
    min_mean_category = real(min_mean_category, "min_mean_category")
    amount = choice(amount, "amount", _METHODS)
    gap = _as_timedelta(max_gap, "max_gap")
    cube, info = normalize_cube(cube, var, min_frames=1)
    times = cube.get_index(info.time_dim)
    values = rain_amount(cube, rain_threshold, amount).values.astype("float64")
    reverse = amount == "no_rain_count"
    edges = category_edges(values, quantiles=quantiles, bins=bins, reverse=reverse)
    cats = _apply_edges(values, edges, reverse)
    seq = split(times, gap)
    _, inverse, length, mean_cat = _per_sequence(seq, cats)
    keep_seq = (length >= min_length) & (np.nan_to_num(mean_cat, nan=-np.inf) >= min_mean_category)
    new_id = np.cumsum(keep_seq) - 1
    keep = keep_seq[inverse]
    table = pd.DataFrame(
        {
            "time": times.values[keep].astype("datetime64[ns]"),
            "rain_amount": values[keep],
            "category": cats[keep],
            "sequence_id": new_id[inverse][keep].astype(np.int64),
        }
    )
    table.attrs.update(
        max_gap=str(gap),
        rain_threshold=float(RAIN_THRESHOLD if rain_threshold is None else rain_threshold),
        amount=amount,
        category_edges=edges.tolist(),
        min_length=int(min_length),
        min_mean_category=min_mean_category,
        n_sequences_found=int(length.size),
        n_sequences_kept=int(keep_seq.sum()),
    )
    return table


# ------------------------------------------------------------------- the splits
def _check_table(table: pd.DataFrame) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"table must be a pandas DataFrame from sequence_table(), got {type(table).__name__}"
        )
    missing = [c for c in ("time", "sequence_id", "category") if c not in table.columns]
    if missing:
        raise ValueError(
            f"the table lacks column(s) {missing}; make it with "
            "xnowcast.sequences.sequence_table(cube) (columns: time, rain_amount, category, "
            "sequence_id)"
        )
    if len(table) == 0:
        raise ValueError(
            "the table holds no frame: no sequence passed the selection; lower min_length or "
            "min_mean_category in sequence_table()"
        )
    for column in ("sequence_id", "category"):
        values = table[column].to_numpy()
        if values.dtype.kind not in "iu":
            whole = (
                values.dtype.kind == "f"
                and bool(np.all(np.isfinite(values)))
                and bool(np.all(values == np.round(values)))
            )
            if not whole:
                raise ValueError(
                    f"the table's {column!r} column must hold whole numbers without gaps (NaN), "
                    f"got dtype {values.dtype}; make it with sequence_table()"
                )


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    f = _numbers(fractions, "fractions")
    if f.size == 0 or np.any(~np.isfinite(f)) or np.any(f < 0) or abs(f.sum() - 1) > 1e-6:
        raise ValueError(
            f"fractions must be non-negative and sum to 1, got {tuple(np.ravel(fractions))}; "
            "e.g. fractions=(0.7, 0.15, 0.15)"
        )
    return f


def _quantile_bins(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index per value by (deduplicated) quantile edges; NaN gets bin -1."""
    finite = np.isfinite(values)
    if n_bins <= 1 or not finite.any():
        return np.where(finite, 0, -1)
    edges = np.unique(np.quantile(values[finite], np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.where(finite, np.searchsorted(edges, values, side="right"), -1)


def _deal(order: np.ndarray, length: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Greedy dealing: each sequence to the set furthest below its frame share."""
    dealt = np.zeros(f.size)
    assignment = np.empty(length.size, dtype=np.int64)
    total = 0.0
    for i in order:
        total += length[i]
        k = int(np.argmax(f * total - dealt))
        assignment[i] = k
        dealt[k] += length[i]
    return assignment


def _imbalance(
    set_cats: np.ndarray,
    set_lens: np.ndarray,
    f: np.ndarray,
    all_cats: np.ndarray,
    all_lens: np.ndarray,
) -> float:
    """How unlike the archive the sets are (0 = alike; see :func:`assign_sequences`).

    ``set_cats[k]``: frames of set ``k`` per category; ``set_lens[k]``:
    sequences of set ``k`` per length bin; ``all_*``: the archive's
    distributions (summing to 1).
    """
    active = f > 0
    frames = set_cats.sum(1)
    nseq = set_lens.sum(1)
    p_cats = set_cats / np.maximum(frames, 1)[:, None]
    p_lens = set_lens / np.maximum(nseq, 1)[:, None]
    score = (
        0.5 * np.abs(p_cats - all_cats).sum(1)
        + 0.5 * np.abs(p_lens - all_lens).sum(1)
        + np.abs(frames / max(frames.sum(), 1) - f) / np.where(active, f, 1)
        + np.abs(nseq / max(nseq.sum(), 1) - f) / np.where(active, f, 1)
    )
    return float(score[active].sum() + 1e3 * frames[~active].sum())


def assign_sequences(
    table: pd.DataFrame,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    *,
    n_length_bins: int = 4,
    n_category_bins: int = 4,
    n_trials: int = 8,
    n_swaps: int = 2000,
) -> pd.Series:
    """Which set every sequence goes to (the pure part of :func:`split_dataset`).

    1. **Strata.** Sequences are binned by length (``n_length_bins``
       quantile bins of the sequence lengths) and, inside each, by mean rain
       category (``n_category_bins`` quantile bins).
    2. **Dealing.** Strata are visited longest first, the sequences of a
       stratum in a random order; each sequence goes to the set furthest
       below its share of the frames dealt so far
       (``fractions[k] * frames_dealt - frames_of_set_k``, largest wins).
       Dealing stratum by stratum gives every set its share of each stratum;
       the running deficit keeps the frame counts within about one sequence
       of ``fractions``. Step 2 is repeated with ``n_trials`` random orders
       and the most balanced result is kept.
    3. **Local search.** ``n_swaps`` random proposals (swap two sequences of
       different sets, or move one) are accepted when they make the sets
       more alike.

    *Alike* is measured per set as the total-variation distance of its
    frames' category distribution from the archive's, plus that of its
    sequences' length-bin distribution, plus its relative errors in frame
    share and in sequence share (the latter keeps the mean sequence length
    alike); the sets' sum is minimised. Every random draw comes from
    ``seed``.

    Parameters
    ----------
    table : DataFrame
        From :func:`sequence_table` (columns ``sequence_id`` and ``category``).
    fractions : sequence of float
        Share of the frames of every set; non-negative, summing to 1.
    seed : int
        Seed of the random orders; the same seed gives the same assignment.
    n_length_bins, n_category_bins : int
        Number of strata along sequence length and mean category.
    n_trials : int
        Random dealings tried.
    n_swaps : int
        Local-search proposals (0: none).

    Returns
    -------
    pandas.Series
        Set index (``0 .. len(fractions)-1``) per sequence id (the index).

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"sequence_id": [0] * 5 + [1] * 5 + [2] * 10,
    ...                       "category": [1] * 20, "time": pd.date_range("2021", periods=20)})
    >>> assign_sequences(table, fractions=(0.5, 0.5)).sort_index().tolist()
    [1, 1, 0]
    """
    _check_table(table)
    f = _check_fractions(fractions)
    for value, name in (
        (n_length_bins, "n_length_bins"),
        (n_category_bins, "n_category_bins"),
        (n_trials, "n_trials"),
    ):
        positive_int(value, name)
    integer(n_swaps, "n_swaps", low=0)
    integer(seed, "seed", low=0)
    seq = table["sequence_id"].to_numpy()
    cats = table["category"].to_numpy().astype(np.int64)
    uniq, inverse, length, mean_cat = _per_sequence(seq, cats)
    n_sets = int((f > 0).sum())
    if uniq.size < n_sets:
        raise ValueError(
            f"only {uniq.size} sequence(s) for {n_sets} non-empty sets; every set needs whole "
            "sequences. Lower min_length/min_mean_category in sequence_table(), use a larger "
            "archive, or fewer fractions"
        )
    rng = np.random.default_rng(seed)
    lbin = _quantile_bins(length.astype("float64"), n_length_bins)
    cbin = _quantile_bins(mean_cat, n_category_bins)
    valid = cats >= 0
    n_cat = int(cats.max()) + 1 if valid.any() else 1
    seq_cats = np.zeros((uniq.size, n_cat))
    np.add.at(seq_cats, (inverse[valid], cats[valid]), 1)
    seq_lens = np.eye(int(lbin.max()) + 1)[lbin]
    all_cats = seq_cats.sum(0) / max(seq_cats.sum(), 1)
    all_lens = seq_lens.mean(0)

    def totals(assignment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        set_cats = np.zeros((f.size, n_cat))
        set_lens = np.zeros((f.size, seq_lens.shape[1]))
        np.add.at(set_cats, assignment, seq_cats)
        np.add.at(set_lens, assignment, seq_lens)
        return set_cats, set_lens

    def trial() -> tuple[float, np.ndarray]:
        # Longest strata first (big items first keeps the frame counts close
        # to the fractions), a seeded random order inside a stratum.
        order = np.lexsort((rng.random(uniq.size), cbin, -lbin))
        assignment = _deal(order, length, f)
        return _imbalance(*totals(assignment), f, all_cats, all_lens), assignment

    # the first of the best trials (n_trials >= 1 was checked)
    best_score, best = min((trial() for _ in range(n_trials)), key=lambda scored: scored[0])

    # Local search: swap two sequences of different sets, or move one, when
    # that makes the sets more alike.
    set_cats, set_lens = totals(best)
    targets = np.flatnonzero(f > 0)
    for _ in range(n_swaps if targets.size > 1 else 0):
        i = int(rng.integers(uniq.size))
        a = best[i]
        b = int(targets[rng.integers(targets.size)])
        if a == b:
            continue
        members = np.flatnonzero(best == b)
        j = int(members[rng.integers(members.size)]) if rng.random() < 0.7 else -1
        delta_c = seq_cats[i] - (seq_cats[j] if j >= 0 else 0)
        delta_l = seq_lens[i] - (seq_lens[j] if j >= 0 else 0)
        set_cats[a] -= delta_c
        set_cats[b] += delta_c
        set_lens[a] -= delta_l
        set_lens[b] += delta_l
        score = _imbalance(set_cats, set_lens, f, all_cats, all_lens)
        if score < best_score and set_lens[a].sum() > 0:
            best_score = score
            best[i] = b
            if j >= 0:
                best[j] = a
        else:
            set_cats[a] += delta_c
            set_cats[b] -= delta_c
            set_lens[a] += delta_l
            set_lens[b] -= delta_l
    return pd.Series(best, index=pd.Index(uniq, name="sequence_id"), name="set")


def split_dataset(
    cube: xr.DataArray | xr.Dataset,
    table: pd.DataFrame,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    *,
    n_length_bins: int = 4,
    n_category_bins: int = 4,
    n_trials: int = 8,
    n_swaps: int = 2000,
    var: str | None = None,
) -> tuple[xr.DataArray, ...]:
    """Deal whole sequences into train/validation/test cubes that look alike.

    Parameters
    ----------
    cube : DataArray or Dataset
        The archive the table was made from.
    table : DataFrame
        From :func:`sequence_table`; only its frames are used.
    fractions : sequence of float
        Share of the frames per set (any number of sets), summing to 1.
    seed : int
        Seed; the same seed gives the same split.
    n_length_bins, n_category_bins, n_trials, n_swaps : int
        Strata and search (see :func:`assign_sequences`).
    var : str, optional
        Variable of a Dataset.

    Returns
    -------
    tuple of DataArray
        One cube per fraction, each holding whole sequences only (lazy
        selections of ``cube``, in time order), with an integer
        ``sequence_id`` coordinate along time (the table's ids) so that
        training windows (:func:`xnowcast.windows.windows`) stay inside a
        sequence.

    Raises
    ------
    ValueError
        A table time that is not a frame of the cube, fewer sequences than
        sets, fractions not summing to 1.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2021-06-01", periods=60, freq="10min").delete([20, 40])
    >>> cube = xr.DataArray(np.ones((58, 4, 4), "float32"), dims=("time", "y", "x"),
    ...                     coords={"time": t})
    >>> table = sequence_table(cube, bins=[0.1], min_length=5)
    >>> train, test = split_dataset(cube, table, fractions=(0.67, 0.33))
    >>> train.sizes["time"], test.sizes["time"], np.unique(test.sequence_id).tolist()
    (39, 19, [2])
    """
    _check_table(table)
    cube, info = normalize_cube(cube, var, min_frames=1)
    assignment = assign_sequences(
        table,
        fractions,
        seed,
        n_length_bins=n_length_bins,
        n_category_bins=n_category_bins,
        n_trials=n_trials,
        n_swaps=n_swaps,
    )
    t = info.time_dim
    index = cube.get_index(t)
    table_times = pd.DatetimeIndex(table["time"])
    if table_times.tz is not None:
        raise ValueError(
            f"the table's times are timezone-aware ({table_times.dtype}) but the cube's are not; "
            "convert them with table['time'] = table['time'].dt.tz_convert(None)"
        )
    if table_times.has_duplicates:
        dup = table_times[table_times.duplicated()].unique()[:5]
        raise ValueError(
            f"the table lists time(s) {', '.join(map(str, dup))} more than once; make it "
            "with sequence_table()"
        )
    positions = index.get_indexer(table_times)
    if (positions < 0).any():
        missing = table_times[positions < 0]
        raise ValueError(
            f"{len(missing)} time(s) of the table are not frames of the cube (first: "
            f"{', '.join(map(str, missing[:5]))}); pass the cube the table was made from"
        )
    seq = table["sequence_id"].to_numpy().astype(np.int64)
    frame_set = assignment.reindex(seq).to_numpy()
    f = _check_fractions(fractions)
    out = []
    for k in range(f.size):
        mask = frame_set == k
        order = np.argsort(positions[mask], kind="stable")
        sel = positions[mask][order]
        part = cube.isel({t: sel}).assign_coords(
            {
                SEQUENCE_ID: (
                    t,
                    seq[mask][order],
                    {"long_name": "sequence id (windows never cross from one id to another)"},
                )
            }
        )
        if sel.size == 0 and f[k] > 0:
            warnings.warn(
                f"set {k} (fraction {f[k]:g}) received no sequence; the table has too few "
                f"sequences ({assignment.size}) for fractions {tuple(f.tolist())}",
                stacklevel=2,
            )
        out.append(part)
    return tuple(out)


def set_names(n: int) -> list[str]:
    """Default names of ``n`` sets: ``train, val, test`` for three, else ``set0 ...``.

    Examples
    --------
    >>> set_names(3), set_names(2)
    (['train', 'val', 'test'], ['set0', 'set1'])
    """
    return ["train", "val", "test"] if n == 3 else [f"set{k}" for k in range(n)]


def split_summary(
    table: pd.DataFrame,
    splits: Sequence[xr.DataArray],
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Compare the sets of :func:`split_dataset`: sizes, lengths, categories.

    Parameters
    ----------
    table : DataFrame
        The table the split was made from.
    splits : sequence of DataArray
        The cubes from :func:`split_dataset` (they carry ``sequence_id``).
    names : sequence of str, optional
        Row labels; default ``train, val, test`` for three sets, else
        ``set0, set1, ...``.

    Returns
    -------
    pandas.DataFrame
        One row per set plus ``all``: ``n_sequences``, ``n_frames``,
        ``frame_fraction``, ``length_mean``, ``length_min``, ``length_median``,
        ``length_max``, ``category_mean`` (mean frame category) and
        ``category_<k>`` (fraction of the set's frames in category ``k``).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2021-06-01", periods=60, freq="10min").delete([20, 40])
    >>> cube = xr.DataArray(np.ones((58, 4, 4), "float32"), dims=("time", "y", "x"),
    ...                     coords={"time": t})
    >>> table = sequence_table(cube, bins=[0.1], min_length=5)
    >>> summary = split_summary(table, split_dataset(cube, table, (0.67, 0.33)))
    >>> summary[["n_sequences", "n_frames"]].to_dict("index")
    {'set0': {'n_sequences': 2, 'n_frames': 39}, 'set1': {'n_sequences': 1, 'n_frames': 19}, \
'all': {'n_sequences': 3, 'n_frames': 58}}
    """
    _check_table(table)
    if names is None:
        names = set_names(len(splits))
    if len(names) != len(splits):
        raise ValueError(f"{len(names)} names for {len(splits)} sets")
    by_seq = table.groupby("sequence_id")
    all_cats = np.sort(table["category"].unique())
    rows = {}
    groups = []
    for part in splits:
        if not isinstance(part, (xr.DataArray, xr.Dataset)) or SEQUENCE_ID not in part.coords:
            raise ValueError(
                f"a set has no {SEQUENCE_ID!r} coordinate; pass the cubes returned by "
                "split_dataset()"
            )
        groups.append(np.unique(np.asarray(part[SEQUENCE_ID].values)))
    groups.append(np.asarray(list(by_seq.groups)))
    n_total = len(table)
    for name, ids in zip([*names, "all"], groups):
        sub = table[table["sequence_id"].isin(ids)]
        lengths = sub.groupby("sequence_id").size()
        row: dict[str, Any] = {
            "n_sequences": int(lengths.size),
            "n_frames": len(sub),
            "frame_fraction": len(sub) / n_total,
            "length_mean": float(lengths.mean()) if lengths.size else np.nan,
            "length_min": int(lengths.min()) if lengths.size else 0,
            "length_median": float(lengths.median()) if lengths.size else np.nan,
            "length_max": int(lengths.max()) if lengths.size else 0,
            "category_mean": float(sub.loc[sub["category"] >= 0, "category"].mean()),
        }
        counts = sub["category"].value_counts(normalize=True)
        for c in all_cats:
            row[f"category_{c}"] = float(counts.get(c, 0.0))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
