"""``verify``: labelled, lazy skill scores of forecasts per lead time.

The xarray layer over the numpy kernels of :mod:`xnowcast.verification`. It
pairs every forecast field with the observation at its ``valid_time``, runs
one kernel over the spatial core dims (``xr.apply_ufunc`` with
``dask="parallelized"``, so dask-backed inputs stay lazy), and turns the
statistics into one variable per metric.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import boolean, choice, integer, real
from xnowcast.conventions import (
    INIT_TIME,
    LEAD_TIME,
    VALID_TIME,
    as_dataarray,
    match_grid,
    normalize_cube,
    spatial_role,
)
from xnowcast.units import check_same_units, rain_rate_pair
from xnowcast.verification import image
from xnowcast.verification._util import check_compare, kernel_pairs, sorted_thresholds
from xnowcast.verification.interface import (
    DEFAULT_METRICS,
    FAMILIES,
    Family,
    Metric,
    expand_metric_names,
)

__all__ = ["DEFAULT_METRICS", "MEMBER", "scores_to_dataframe", "verify"]

#: Name of the ensemble dimension (CF ``standard_name = "realization"``).
MEMBER = "member"
#: Event rule of each family when ``compare`` is not given: pysteps' conventions.
_PYSTEPS_COMPARE = {"categorical": ">", "fss": ">=", "probability": ">="}

_STAT = "statistic"
_WINDOWS = ("uniform", "gaussian")
#: Default event thresholds of verify: rain rates in mm h-1.
RAIN_THRESHOLDS = (0.1, 1.0, 5.0)

#: Field pairs handed to the statistics functions at once (bounds memory use).
_MAX_CELLS_PER_BLOCK = 2**22
#: Cells of a field pair (all members) from which a task scores pair by pair against the
#: shared observed frames (no copy); smaller pairs are scored a chunk at a time.
_PAIR_CELLS = 2**16


def verify(
    fc: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    metrics: str | Sequence[str] | None = None,
    *,
    thresholds: float | Sequence[float] | None = None,
    scales: int | Sequence[int] = (1, 4, 16),
    mean: bool = False,
    dim: str | Sequence[str] | None = None,
    compare: str | None = None,
    reference: str | xr.DataArray | None = None,
    data_range: float | None = None,
    win_size: int | None = None,
    window: str | None = None,
    prob_bins: int = 10,
    roc_thresholds: int = 10,
    var: str | None = None,
) -> xr.Dataset:
    """Score forecasts against observations, per lead time.

    Parameters
    ----------
    fc : DataArray or Dataset
        Forecasts with dims ``(init_time, lead_time, y, x)`` or
        ``(lead_time, y, x)`` and a ``valid_time`` coordinate (as made by
        :func:`xnowcast.forecast`). An ensemble has a ``member`` dim (or one
        whose coordinate has ``standard_name="realization"``); deterministic
        scores of an ensemble are computed per member, probabilistic scores
        from all members. Other dims are kept.
    obs : DataArray or Dataset
        The observed cube ``(time, y, x)`` on the forecast's grid (or a larger
        grid containing it), any CF-recognisable dim names; or observations
        already aligned to the forecast, with its ``init_time`` and
        ``lead_time`` dims and coordinates.
    metrics : str or list of str, optional
        Names from :func:`xnowcast.verification.list_metrics`, or groups
        (``"crps"``, ``"brier"``, ``"reliability"``, ``"roc"``, ``"sal"``;
        :data:`xnowcast.verification.interface.GROUPS`). Default:
        ``DEFAULT_METRICS``, the cheap set MAE, CSI and FSS.
    thresholds : float or list of float, optional
        Event thresholds (units of the data) of the categorical,
        FSS and probabilistic scores. Default: the rain rates
        ``RAIN_THRESHOLDS`` (0.1, 1 and 5 mm h-1); a forecast and observations
        holding accumulations or reflectivities are then converted to rain
        rate first, with a warning (:func:`xnowcast.units.rain_rate_pair`),
        and other quantities are refused: give thresholds in their units.
    scales : int or list of int
        FSS window sizes in grid cells.
    mean : bool
        Aggregate over ``init_time``: the same as ``dim="init_time"``.
    dim : str or list of str, optional
        Dimensions to aggregate over besides the spatial ones (which every
        score reduces), as xskillscore's ``dim``: statistics are pooled
        (contingency tables, FSS sums, error sums and histograms are added,
        as pysteps accumulates them) before the scores are computed; SSIM is
        window-weighted, MS-SSIM, PSNR, Spearman and SAL are averaged over
        the field pairs.
    compare : {">", ">="}, optional
        Event rule: ``">"`` counts values above the threshold, ``">="``
        values at or above it. Default: pysteps' rules, ``">"`` for the
        categorical scores (``det_cat_fct``) and ``">="`` for the FSS and the
        probabilistic scores (``fss``, ``reldiag``, ``ROC_curve``).
    reference : "persistence" or DataArray, optional
        Also score a reference forecast and add, for each deterministic
        metric ``m``, the reference's score ``m_persistence``
        (``m_reference`` for a DataArray) and the skill score
        ``m_skill = (m - m_ref) / (m_perfect - m_ref)``, which is
        ``1 - m / m_ref`` for error scores (MSE, MAE, RMSE, FAR) whose
        perfect value is 0. Skill is 1 for a perfect forecast, 0 for one as
        good as the reference, negative when worse; NaN when the reference is
        perfect. Metrics without a perfect value (bias, frequency bias, PSNR)
        get no skill score. ``"persistence"`` is the observation at the init
        time, repeated for every lead time (it needs an observed cube, not
        aligned observations).
    data_range : float, optional
        Data range of SSIM, MS-SSIM and PSNR: the span of possible values,
        e.g. 1023 for 10-bit counts or about 861 for satellite reflectance
        in the units of the contest data. Default: per field pair, the larger
        ``max - min`` of the two fields.
    win_size : int, optional
        Odd window size of SSIM and MS-SSIM (the contest used 3). Default: 7
        for SSIM (skimage) and 11 for MS-SSIM (pytorch-msssim).
    window : {"uniform", "gaussian"}, optional
        SSIM/MS-SSIM window weights. Default: uniform for SSIM (skimage),
        Gaussian with sigma 1.5 for MS-SSIM (pytorch-msssim).
    prob_bins : int
        Forecast-probability bins of the reliability diagram (pysteps'
        ``n_bins``).
    roc_thresholds : int
        Probability thresholds of the ROC curve, evenly spaced from 0 to 1
        (pysteps' ``n_prob_thrs``).
    var : str, optional
        Variable to use when ``fc`` or ``obs`` is a Dataset with several.

    Returns
    -------
    Dataset
        One variable per metric, with dims ``lead_time`` (and ``init_time``
        unless aggregated) and ``threshold`` (categorical, FSS, Brier and ROC
        scores), ``scale`` (FSS), ``probability_bin`` (reliability diagram),
        ``probability_threshold`` (ROC curve) and ``rank`` (rank histogram).
        Lazy (dask) when an input is. Pixels missing (NaN) in either field
        (in any member) are left out; a forecast without an observation at
        its valid time scores NaN.

    Raises
    ------
    ValueError, TypeError
        Unknown metric, forecast without lead time or valid time, grids that
        do not match, forecast and observations in different units, no
        observation at any valid time, a probabilistic metric of a
        deterministic forecast, an ensemble of observations.

    Examples
    --------
    >>> import xnowcast
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=20, size=48)
    >>> fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=4)
    >>> scores = verify(fc, cube, ["mse", "csi", "fss"], thresholds=[0.5, 2], scales=[1, 5])
    >>> dict(scores["fss"].sizes)
    {'init_time': 19, 'lead_time': 4, 'threshold': 2, 'scale': 2}
    >>> verify(fc, cube, "csi", dim="init_time")["csi"].dims
    ('lead_time', 'threshold')
    """
    chosen = _choose_metrics(metrics)
    boolean(mean, "mean")
    fc_da = as_dataarray(fc, var)
    obs_var = var if var is not None else _same_name(obs, fc_da)
    obs = as_dataarray(obs, obs_var)
    check_same_units(fc_da, obs)
    member = _member_dim(fc_da, obs, chosen)
    if thresholds is None:
        thresholds = RAIN_THRESHOLDS
        if any(FAMILIES[m.family].dims[:1] == ("threshold",) for m in chosen):
            fc_da, obs_rate = rain_rate_pair(fc_da, obs, "verify's default thresholds")
            obs = obs if obs_rate is None else obs_rate
    aligned = LEAD_TIME in obs.dims
    if aligned:
        y, x = _spatial_dims(fc_da)
        fc_da = _check_forecast(fc_da, y, x)
        obs_at_valid = _aligned_observations(fc_da, match_grid(fc_da, obs, y, x), y, x)
        obs_cube, time_dim = obs, ""  # no time dim: the observations are aligned
    else:
        obs_cube, info = normalize_cube(obs, obs_var, min_frames=1)
        y, x = info.spatial_dims
        time_dim = info.time_dim
        fc_da = _check_forecast(fc_da, y, x)
        obs_cube = match_grid(fc_da, obs_cube, y, x)

    n_members = fc_da.sizes[member] if member else 0
    params = _family_params(
        thresholds, scales, data_range, win_size, window, compare, prob_bins, roc_thresholds
    )
    params["spread"]["n_members"] = n_members
    _check_ms_ssim_fits(chosen, params, fc_da.sizes[y], fc_da.sizes[x])
    reduce = _reduce_dims(dim, mean, fc_da, y, x)

    lazy = _is_dask(fc_da) or _is_dask(obs_cube)
    in_tasks = not aligned and _is_dask(fc_da)
    if _is_dask(fc_da):  # the tasks group small chunks themselves
        fc_da = _small_chunks(fc_da, y, x, member, merge=not in_tasks)
    if not aligned:
        if lazy and not _is_dask(obs_cube):
            obs_cube = obs_cube.chunk({time_dim: 1, y: -1, x: -1})
        valid_time = fc_da.coords[VALID_TIME]
        if in_tasks and reference is None:  # the tasks read their observations themselves
            _frame_positions(obs_cube, time_dim, valid_time, check_overlap=True)
        else:
            obs_at_valid = _at_times(obs_cube, time_dim, valid_time, fc_da, check_overlap=True)
    elif lazy:
        obs_at_valid = _chunk_like(obs_at_valid, fc_da)

    plans = _plans(chosen, params, n_members)
    stats = {
        ensemble: (
            _score_stats_in_tasks(
                fc_da, obs_cube, time_dim, plan, y, x, member if ensemble else None
            )
            if in_tasks
            else _score_stats(fc_da, obs_at_valid, plan, y, x, member if ensemble else None)
        )
        for ensemble, plan in plans.items()
    }
    ref_stats = None
    suffix = ""
    if reference is not None and False in plans:
        if aligned:
            raise ValueError(
                "reference='persistence' needs the observed cube (time, y, x) to find the "
                "observation at each init time; pass that instead of aligned observations"
            )
        ref_da, suffix = _reference(reference, fc_da, obs_cube, time_dim)
        ref_stats = _score_stats(ref_da, obs_at_valid, plans[False], y, x, None)
    stats = {k: _pool(v, reduce) for k, v in stats.items()}
    ref_stats = _pool(ref_stats, reduce) if ref_stats is not None else None

    coords = _output_coords(params, obs_cube, n_members)
    out = {}
    for metric in chosen:
        ensemble = FAMILIES[metric.family].ensemble
        plan = plans[ensemble]
        score = _finalize(stats[ensemble], metric, plan, params, coords, obs_cube)
        out[metric.name] = score
        if ref_stats is not None and not ensemble:
            ref_score = _finalize(ref_stats, metric, plan, params, coords, obs_cube)
            ref_score.attrs["long_name"] = f"{metric.long_name} of the {suffix}"
            out[f"{metric.name}_{suffix}"] = ref_score
            if metric.perfect is not None:
                out[f"{metric.name}_skill"] = _skill(score, ref_score, metric, suffix)
    ds = xr.Dataset(out)
    if any(v.chunks is not None for v in out.values()):
        ds = ds.unify_chunks()  # the reference is scored in chunks of its own
    ds.attrs.update(_settings(chosen, params, reduce, reference, suffix, fc_da))
    return ds


def _member_dim(fc: xr.DataArray, obs: xr.DataArray, chosen: list[Metric]) -> str | None:
    """The forecast's ensemble dim (or None), with the errors of a wrong pairing."""
    found = _realization_dims(fc)
    if _realization_dims(obs):
        raise ValueError(
            f"the observations have an ensemble dimension {_realization_dims(obs)}; verify "
            "scores an ensemble against observations, not an ensemble against an ensemble: "
            "select one realization of the observations (obs.isel(member=0)) or pass the "
            "ensemble as the forecast"
        )
    probabilistic = [m.name for m in chosen if FAMILIES[m.family].ensemble]
    if probabilistic and not found:
        raise ValueError(
            f"the probabilistic metrics {probabilistic} need an ensemble forecast, but the "
            f"forecast (dims {tuple(map(str, fc.dims))}) has no member dimension; pass an "
            "ensemble with a 'member' dim (e.g. forecast(model='steps', members=20)), or "
            "choose deterministic metrics such as mae, csi, fss"
        )
    if len(found) > 1:
        raise ValueError(f"the forecast has several ensemble dimensions {found}; keep one")
    return found[0] if found else None


def _realization_dims(da: xr.DataArray) -> list[str]:
    return [
        str(d)
        for d in da.dims
        if d == MEMBER
        or (d in da.coords and da.coords[d].attrs.get("standard_name") == "realization")
    ]


def _spatial_dims(fc: xr.DataArray) -> tuple[str, str]:
    """``(y, x)`` of a forecast by CF attributes and names."""
    roles = {str(d): spatial_role(fc, str(d)) for d in fc.dims}
    ys = [d for d, r in roles.items() if r == "y"]
    xs = [d for d, r in roles.items() if r == "x"]
    if len(ys) != 1 or len(xs) != 1:
        raise ValueError(
            f"cannot tell the forecast's y and x dims apart (dims {tuple(roles)}); name them "
            "y and x or give their coordinates axis='Y' / axis='X'"
        )
    return ys[0], xs[0]


def _aligned_observations(fc: xr.DataArray, obs: xr.DataArray, y: str, x: str) -> xr.DataArray:
    """Observations with the forecast's ``init_time``/``lead_time`` dims, checked and ordered."""
    extra = [str(d) for d in obs.dims if d not in fc.dims]
    if extra:
        raise ValueError(
            f"the aligned observations have dims {extra} that the forecast lacks; give "
            f"observations with dims among {tuple(map(str, fc.dims))}"
        )
    for d in obs.dims:
        if d in (y, x) or d not in fc.coords or d not in obs.coords:
            continue
        if not np.array_equal(fc[d].values, obs[d].values):
            raise ValueError(
                f"the aligned observations' {d!r} coordinate differs from the forecast's; "
                f"select the forecast's, e.g. obs.sel({d}=fc.{d})"
            )
    obs = obs.reset_coords(drop=True)
    return obs.transpose(*[d for d in fc.dims if d in obs.dims])


def _chunk_like(obs: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    return obs.chunk({d: like.chunksizes[d] for d in obs.dims if d in like.chunksizes})


def _reduce_dims(
    dim: str | Sequence[str] | None, mean: bool, fc: xr.DataArray, y: str, x: str
) -> list[str]:
    """Dims to pool the statistics over (the spatial ones are always reduced)."""
    if dim is not None and not isinstance(dim, (str, Sequence)):
        raise TypeError(f"dim must be a dimension name or a list of names, got {dim!r}")
    names = [] if dim is None else ([dim] if isinstance(dim, str) else list(dim))
    if mean and INIT_TIME in fc.dims:
        names.append(INIT_TIME)
    unknown = [d for d in names if d not in fc.dims]
    if unknown:
        raise ValueError(
            f"dim {unknown} is not a dimension of the forecast {tuple(map(str, fc.dims))}"
        )
    return list(dict.fromkeys(d for d in names if d not in (y, x)))


def _pool(stats: xr.DataArray, reduce: list[str]) -> xr.DataArray:
    present = [d for d in reduce if d in stats.dims]
    return stats.sum(present) if present else stats


def _task_frames(fc: xr.DataArray, y: str, x: str, member: str | None) -> int:
    """Lead times one task scores at most: ``_MAX_CELLS_PER_BLOCK`` cells (all members)."""
    members = fc.sizes[member] if member else 1
    return max(1, _MAX_CELLS_PER_BLOCK // max(fc.sizes[y] * fc.sizes[x] * members, 1))


def _small_chunks(
    fc: xr.DataArray, y: str, x: str, member: str | None, *, merge: bool = True
) -> xr.DataArray:
    """``fc`` in chunks of one init time and ``_MAX_CELLS_PER_BLOCK`` cells of lead times.

    Each chunk is scored with the observations at its valid times; a forecast
    store's chunk (often 100+ MB) scored at once would hold that much again of
    observations and intermediate arrays per thread. Chunks of a bounded size,
    split from larger stored chunks as they are read (or merged from smaller
    ones, so that per-task overheads stay small), keep the peak memory of a
    verification bounded, whatever the number of init times. With ``merge=False``
    smaller chunks stay as they are (the tasks of :func:`_score_stats_in_tasks`
    group them without copying them into one array). An ensemble keeps all
    its members in one chunk (probabilistic scores need them together) and
    fewer lead times per chunk.
    """
    members = fc.sizes[member] if member else 1
    want = {LEAD_TIME: min(_task_frames(fc, y, x, member), fc.sizes[LEAD_TIME])}
    if INIT_TIME in fc.dims:
        want[INIT_TIME] = 1
    current = dict(zip(fc.dims, fc.data.chunksize))
    whole_members = member is None or current[member] == members
    uniform = all(len(set(fc.chunksizes[d][:-1])) <= 1 for d in want)
    if merge:  # already in chunks of the wanted size
        fits = uniform and all(current[d] == n for d, n in want.items())
    else:  # no chunk larger than wanted
        fits = all(current[d] <= n for d, n in want.items())
    if whole_members and fits:
        return fc
    sizes: dict[str, Any] = dict(want)  # smaller chunks are merged: fewer, larger tasks
    if not merge:  # only larger chunks are split, at their own boundaries
        sizes = {d: _split(fc.chunksizes[d], n) for d, n in want.items()}
    if member:
        sizes[member] = members
    out = fc.copy(data=fc.data.rechunk({fc.dims.index(d): n for d, n in sizes.items()}))
    lazy = {  # coordinates in memory stay so (valid_time is read, never computed)
        name: c.variable.chunk({d: n for d, n in sizes.items() if d in c.dims})
        for name, c in out.coords.items()
        if c.chunks is not None and set(c.dims) & set(sizes)
    }
    return out.assign_coords(lazy) if lazy else out


def _split(chunks: tuple[int, ...], most: int) -> tuple[int, ...]:
    """``chunks`` with every chunk above ``most`` cut into pieces of ``most`` (and the rest)."""
    out: list[int] = []
    for c in chunks:
        out += [most] * (c // most) + ([c % most] if c % most else [])
    return tuple(out)


def _groups(chunks: tuple[int, ...], most: int) -> list[range]:
    """Consecutive chunks (by index) in groups of at most ``most`` cells, one chunk at least."""
    groups, start, total = [], 0, 0
    for i, c in enumerate(chunks):
        if i > start and total + c > most:
            groups.append(range(start, i))
            start, total = i, 0
        total += c
    return [*groups, range(start, len(chunks))]


def _choose_metrics(metrics: str | Sequence[str] | None) -> list[Metric]:
    if metrics is not None and not isinstance(metrics, (str, Sequence)):
        raise TypeError(
            f"metrics must be a metric name or a list of names (see list_metrics()), got "
            f"{type(metrics).__name__} {metrics!r}"
        )
    names = DEFAULT_METRICS if metrics is None else metrics
    if not names:
        raise ValueError("metrics is empty; name at least one (see list_metrics())")
    return expand_metric_names(names if isinstance(names, str) else list(names))


def _same_name(obs: Any, fc: xr.DataArray) -> str | None:
    if isinstance(obs, xr.Dataset) and fc.name is not None and fc.name in obs.data_vars:
        return str(fc.name)
    return None


def _is_dask(da: xr.DataArray) -> bool:
    return da.chunks is not None


def _check_forecast(fc: xr.DataArray, y: str, x: str) -> xr.DataArray:
    if LEAD_TIME not in fc.dims:
        raise ValueError(
            f"the forecast has dims {tuple(map(str, fc.dims))} but no {LEAD_TIME!r} dimension; "
            "verify takes forecasts with dims (init_time, lead_time, y, x) or (lead_time, y, x) "
            "as made by xnowcast.forecast"
        )
    empty = [str(d) for d in fc.dims if fc.sizes[d] == 0]
    if empty:
        raise ValueError(
            f"the forecast is empty along {empty} (sizes {dict(fc.sizes)}); check the selection "
            "that made it (.isel/.sel)"
        )
    missing = [d for d in (y, x) if d not in fc.dims]
    if missing:
        raise ValueError(
            f"the forecast lacks the spatial dims {missing} of the observations (forecast dims "
            f"{tuple(map(str, fc.dims))}); rename them to match, e.g. fc.rename(...)"
        )
    if VALID_TIME not in fc.coords:
        if INIT_TIME not in fc.coords:
            raise ValueError(
                f"the forecast has neither a {VALID_TIME!r} nor an {INIT_TIME!r} coordinate, so "
                "its valid times are unknown; assign one, e.g. "
                "fc.assign_coords(valid_time=fc.init_time + fc.lead_time)"
            )
        lead = fc.coords.get(LEAD_TIME)
        if lead is None or not np.issubdtype(lead.dtype, np.timedelta64):
            raise TypeError(
                f"the forecast has no {VALID_TIME!r} coordinate and its {LEAD_TIME!r} "
                f"coordinate is not timedelta64 (got "
                f"{'none' if lead is None else lead.dtype}), so its valid times are unknown; "
                "assign lead times, e.g. fc.assign_coords(lead_time=pd.to_timedelta(minutes, "
                "unit='min'))"
            )
        fc = fc.assign_coords({VALID_TIME: fc[INIT_TIME] + fc[LEAD_TIME]})
    vt = fc.coords[VALID_TIME]
    if vt.chunks is not None:
        # a chunked forecast may carry a dask valid_time; derive it from the index
        # coordinates (valid_time = init_time + lead_time) instead of computing it
        if INIT_TIME in fc.coords and fc.coords[INIT_TIME].chunks is None:
            derived = fc.coords[INIT_TIME].variable + fc.coords[LEAD_TIME].variable
            vt = xr.Variable(
                vt.dims, derived.set_dims(vt.dims).transpose(*vt.dims).values, vt.attrs
            )
        else:
            vt = vt.variable.compute()
        fc = fc.assign_coords({VALID_TIME: vt})
        vt = fc.coords[VALID_TIME]
    if not np.issubdtype(vt.dtype, np.datetime64):
        raise TypeError(
            f"the forecast's {VALID_TIME!r} must hold datetime64 values, got {vt.dtype}"
        )
    if not np.issubdtype(fc.dtype, np.number):
        raise TypeError(f"forecast values must be numbers, got dtype {fc.dtype}")
    return fc


def _frame_positions(
    cube: xr.DataArray, time_dim: str, times: xr.DataArray, *, check_overlap: bool = False
) -> np.ndarray:
    """Positions of ``times`` (any shape) along the cube's time, -1 where there is no frame."""
    index = pd.DatetimeIndex(cube[time_dim].values)
    wanted = np.asarray(times.values).astype("datetime64[ns]")
    pos = index.get_indexer(wanted.ravel()).reshape(wanted.shape)
    if check_overlap and not (pos >= 0).any():
        raise ValueError(
            f"no observation at any valid time of the forecast (valid times "
            f"{pd.Timestamp(wanted.min())} to {pd.Timestamp(wanted.max())}, observations "
            f"{index[0]} to {index[-1]}); give observations that cover the forecast period"
        )
    return pos


def _at_times(
    cube: xr.DataArray,
    time_dim: str,
    times: xr.DataArray,
    like: xr.DataArray,
    *,
    check_overlap: bool = False,
) -> xr.DataArray:
    """Frames of ``cube`` at ``times`` (any dims), NaN where there is no frame; lazy."""
    pos = _frame_positions(cube, time_dim, times, check_overlap=check_overlap)
    found = pos >= 0
    take = np.where(found, pos, 0)
    if times.ndim == 2 and _is_dask(cube):
        # one plain take per init time: cheaper than dask's vectorised (vindex) indexing
        first, second = map(str, times.dims)
        out = xr.concat(
            [cube.isel({time_dim: row}).rename({time_dim: second}) for row in take],
            dim=first,
            coords="minimal",
            compat="override",
            join="override",
        )
    else:
        out = cube.isel({time_dim: xr.DataArray(take, dims=times.dims)})
    if not found.all():
        out = out.where(xr.DataArray(found, dims=times.dims))
    out = out.drop_vars([c for c in out.coords if c not in out.dims])
    out = out.assign_coords({d: like.coords[d].variable for d in out.dims if d in like.coords})
    if _is_dask(like):
        out = out.chunk({d: like.chunksizes[d] for d in out.dims if d in like.chunksizes})
    return out


def _reference(
    reference: str | xr.DataArray,
    fc: xr.DataArray,
    obs: xr.DataArray,
    time_dim: str,
) -> tuple[xr.DataArray, str]:
    if isinstance(reference, str):
        if reference.strip().lower() != "persistence":
            raise ValueError(
                f"unknown reference {reference!r}; use 'persistence' or pass a reference "
                "forecast DataArray"
            )
        if INIT_TIME not in fc.coords:
            raise ValueError(
                f"persistence needs the forecast's {INIT_TIME!r} coordinate (the time of the "
                "last observed frame)"
            )
        # dims (init_time, y, x): broadcast over lead_time inside the kernel
        persisted = _at_times(obs, time_dim, fc.coords[INIT_TIME].reset_coords(drop=True), fc)
        return persisted, "persistence"
    ref = as_dataarray(reference)
    try:
        ref = xr.align(ref, fc, join="exact")[0]
    except ValueError:
        raise ValueError(
            "the reference forecast must have the dims and coordinates of the forecast "
            f"(reference dims {tuple(map(str, ref.dims))}, forecast dims "
            f"{tuple(map(str, fc.dims))}); make it with the same init times and lead times"
        ) from None
    if set(ref.dims) != set(fc.dims):
        raise ValueError(
            f"the reference forecast has dims {tuple(map(str, ref.dims))}, the forecast "
            f"{tuple(map(str, fc.dims))}; they must be the same"
        )
    return ref.transpose(*fc.dims), "reference"


def _family_params(
    thresholds: Any,
    scales: Any,
    data_range: Any,
    win_size: Any,
    window: Any,
    compare: Any,
    prob_bins: Any,
    roc_thresholds: Any,
) -> dict[str, dict[str, Any]]:
    from xnowcast.verification._util import as_values

    thr = as_values(thresholds, "thresholds").tolist()
    sc = as_values(scales, "scales", integer=True)
    if window is not None:
        window = choice(window, "window", _WINDOWS)
    data_range = real(data_range, "data_range", low=0, low_inclusive=False, allow_none=True)
    if win_size is not None:
        image.window_weights(win_size, gaussian=False)  # validates
        win_size = int(win_size)
    rules = {
        k: check_compare(compare) if compare is not None else v for k, v in _PYSTEPS_COMPARE.items()
    }
    return {
        "continuous": {},
        "psnr": {"data_range": data_range},
        "categorical": {"thresholds": thr, "compare": rules["categorical"]},
        "fss": {"thresholds": thr, "scales": sc.tolist(), "compare": rules["fss"]},
        "ssim": {
            "data_range": data_range,
            "win_size": win_size or 7,
            "gaussian": window == "gaussian",
        },
        "ms_ssim": {
            "data_range": data_range,
            "win_size": win_size or 11,
            "gaussian": window != "uniform",
        },
        "spearman": {},
        "sal": {"thr_factor": 0.067, "thr_quantile": 0.95},
        "crps": {},
        "probability": {
            "thresholds": thr,
            "compare": rules["probability"],
            "prob_bins": integer(prob_bins, "prob_bins", low=1),
            "roc_thresholds": integer(roc_thresholds, "roc_thresholds", low=2),
        },
        "rank": {},
        "spread": {},
    }


def _check_ms_ssim_fits(chosen: list[Metric], params: dict, ny: int, nx: int) -> None:
    if not any(m.family == "ms_ssim" for m in chosen):
        return
    need = image.ms_ssim_min_size(params["ms_ssim"]["win_size"])
    if min(ny, nx) < need:
        raise ValueError(
            f"MS-SSIM with win_size={params['ms_ssim']['win_size']} needs a grid of at least "
            f"{need} x {need} cells, this one is {ny} x {nx}; pass win_size=3 (needs 33) or "
            "leave ms_ssim out of metrics"
        )


def _stats_kernel(fc: np.ndarray, obs: np.ndarray, *, plan: tuple, ensemble: bool) -> np.ndarray:
    """All statistics of all families for ``(..., y, x)`` pairs, flat on the last axis.

    The batch axes of ``fc`` and ``obs`` broadcast (a persistence forecast has
    no lead-time axis); pairs are scored in blocks to bound memory use. An
    ensemble ``fc`` has the member axis before ``(y, x)``.
    """
    core = 3 if ensemble else 2
    fc_batch, obs_batch = np.shape(fc)[:-core], np.shape(obs)[:-2]
    batch = np.broadcast_shapes(fc_batch, obs_batch)
    f = np.broadcast_to(fc, batch + np.shape(fc)[-core:]).reshape(-1, *np.shape(fc)[-core:])
    o = np.broadcast_to(obs, batch + np.shape(obs)[-2:]).reshape(-1, *np.shape(obs)[-2:])
    n = f.shape[0]
    block = max(1, _MAX_CELLS_PER_BLOCK // max(math.prod(f.shape[1:]), 1))
    out = np.empty((n, _plan_size(plan)))
    for start in range(0, n, block):
        f_blk, o_blk = f[start : start + block], o[start : start + block]
        fused = {} if ensemble else _fused_stats(plan, f_blk, o_blk)
        out[start : start + len(f_blk)] = np.concatenate(
            [
                (fused[name] if name in fused else _family_stats(name, kw, f_blk, o_blk)).reshape(
                    len(f_blk), -1
                )
                for name, kw in plan
            ],
            axis=-1,
        )
    return out.reshape(*batch, -1)


def _fused_stats(plan: tuple, fc: np.ndarray, obs: np.ndarray) -> dict[str, np.ndarray]:
    """The continuous, categorical and FSS statistics of ``plan``, from one pass per pair.

    :func:`~xnowcast.verification.kernels.default_sums` computes the three
    families' statistics together (the default metrics); returned by family,
    each flat per pair as its family's ``stats`` gives it. ``{}`` (each
    family on its own) unless ``plan`` has the FSS and one of the others.
    """
    kw = dict(plan)
    if "fss" not in kw or not {"continuous", "categorical"} & kw.keys():
        return {}
    from xnowcast.verification import kernels

    f, o = kernel_pairs(fc, obs)
    fss, cat = kw["fss"], kw.get("categorical")
    thr = np.asarray(fss["thresholds"], dtype=np.float64)
    cat_thr = np.asarray(cat["thresholds"] if cat else [], dtype=np.float64)
    order, cat_order = sorted_thresholds(thr), sorted_thresholds(cat_thr)
    cont, table, sums = kernels.default_sums(
        f,
        o,
        cat_thr[cat_order],
        cat is not None and cat["compare"] == ">",
        thr[order],
        np.asarray(fss["scales"], dtype=np.int64),
        fss["compare"] == ">",
    )
    out = {
        "fss": _in_order(sums, order),
        "continuous": cont,
        "categorical": _in_order(table, cat_order),
    }
    return {name: out[name].reshape(len(f), -1) for name in kw if name in out}


def _in_order(sorted_stats: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Statistics of thresholds sorted by ``order`` (axis 1) back in their given order, float64."""
    out = np.empty(sorted_stats.shape)
    out[:, order] = sorted_stats
    return out


def _family_stats(name: str, kw: dict, f: np.ndarray, o: np.ndarray) -> np.ndarray:
    """The statistics of family ``name`` (plan entries starting with ``_`` are not options)."""
    return FAMILIES[name].stats(f, o, **{k: v for k, v in kw.items() if not k.startswith("_")})


def _family_shape(family: Family, kw: dict[str, Any]) -> tuple[int, ...]:
    sizes = {
        "threshold": len(kw.get("thresholds", ())),
        "scale": len(kw.get("scales", ())),
        "member_count": kw.get("_n_members", 0) + 1,
        "rank": kw.get("_n_members", 0) + 1,
    }
    stats = len(family.stat_names)  # one statistic per cell (rank counts): no statistics axis
    return (*(sizes[d] for d in family.dims), *((stats,) if stats > 1 else ()))


def _plan_size(plan: tuple) -> int:
    return sum(math.prod(_family_shape(FAMILIES[name], kw)) for name, kw in plan)


def _plans(chosen: list[Metric], params: dict, n_members: int) -> dict[bool, tuple]:
    """Families to compute, ``{ensemble: ((family, stats keywords), ...)}``."""
    plans: dict[bool, list] = {}
    for family in FAMILIES.values():
        if any(m.family == family.name for m in chosen):
            kw = {k: params[family.name][k] for k in family.params}
            plans.setdefault(family.ensemble, []).append((family.name, kw))
    return {
        ensemble: tuple(
            (name, {**kw, "_n_members": n_members} if ensemble else kw) for name, kw in plan
        )
        for ensemble, plan in plans.items()
    }


def _score_stats(
    fc: xr.DataArray,
    obs: xr.DataArray,
    plan: tuple,
    y: str,
    x: str,
    member: str | None,
) -> xr.DataArray:
    """Run the kernel once over the core dims (``member`` too for ensembles); ``(..., statistic)``."""
    keep = _statistic_coords(fc, y, x, member)
    fc, obs = fc.reset_coords(drop=True), obs.reset_coords(drop=True)
    core = [member, y, x] if member else [y, x]
    if _is_dask(fc) or _is_dask(obs):
        fc = fc.chunk(dict.fromkeys(core, -1))
        obs = obs.chunk({y: -1, x: -1})
    stats = xr.apply_ufunc(
        _stats_kernel,
        fc,
        obs,
        input_core_dims=[core, [y, x]],
        output_core_dims=[[_STAT]],
        kwargs={"plan": plan, "ensemble": member is not None},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {_STAT: _plan_size(plan)}},
    )
    return stats.assign_coords({k: v for k, v in keep.items() if k not in stats.coords})


def _score_stats_in_tasks(
    fc: xr.DataArray,
    obs: xr.DataArray,
    time_dim: str,
    plan: tuple,
    y: str,
    x: str,
    member: str | None,
) -> xr.DataArray:
    """:func:`_score_stats` of a dask forecast, one task per forecast chunk.

    Each task reads its forecast chunk (:class:`~.frames.ForecastChunk`) and
    the observed frames at its valid times
    (:class:`~.frames.ObservedFrames`, a cache shared by the tasks) itself,
    so a damaged file or zarr chunk is named (time and path) in a one-line
    :class:`~xnowcast.forecast.UnreadableInputError`, no array of
    observations at the valid times is ever assembled outside the tasks, and
    each observed frame is read about once.
    """
    import functools
    import itertools

    import dask
    from dask.highlevelgraph import HighLevelGraph

    from xnowcast.verification.frames import ForecastChunk, ObservedFrames

    data = fc.data.rechunk({fc.dims.index(y): -1, fc.dims.index(x): -1})
    chunks = {str(d): c for d, c in zip(fc.dims, data.chunks)}
    (data,) = dask.optimize(data)  # one flat layer: cheap to cut per chunk
    (obs_data,) = dask.optimize(
        obs.data.rechunk({obs.dims.index(y): -1, obs.dims.index(x): -1})
    )  # whole frames: read by time chunk
    frames = ObservedFrames(obs.copy(data=obs_data), time_dim)
    graphs = ForecastChunk.split(data)
    batch = [str(d) for d in fc.dims if d not in (y, x)]
    out_dims = [d for d in batch if d != member]
    valid_time = fc.coords[VALID_TIME].reset_coords(drop=True)
    positions = _frame_positions(obs, time_dim, valid_time)  # -1: no frame
    bounds = {d: np.cumsum([0, *chunks[d]]) for d in batch}
    groups = {d: [range(i, i + 1) for i in range(len(chunks[d]))] for d in batch}
    if LEAD_TIME in batch:  # small chunks of lead times: several per task, not copied together
        groups[LEAD_TIME] = _groups(chunks[LEAD_TIME], _task_frames(fc, y, x, member))
    size = _plan_size(plan)
    name = "verify-stats-" + dask.base.tokenize(data.name, frames, plan, y, x, member)
    axis = out_dims.index(LEAD_TIME) if LEAD_TIME in out_dims else 0
    tasks: dict[Any, Any] = {}
    for ids in itertools.product(*(range(len(groups[d])) for d in batch)):
        parts = []
        for sub in itertools.product(*(groups[d][i] for d, i in zip(batch, ids))):
            where = {d: slice(int(bounds[d][i]), int(bounds[d][i + 1])) for d, i in zip(batch, sub)}
            at = dict(zip(batch, sub))
            index = tuple(at.get(str(d), 0) for d in fc.dims)
            rows = positions[tuple(where.get(str(d), slice(None)) for d in valid_time.dims)]
            chunk = ForecastChunk(graphs[index], (data.name, *index), fc, where)
            parts.append(
                functools.partial(
                    _score_chunk,
                    chunk,
                    fc.dims,
                    frames,
                    (rows, valid_time.dims),
                    plan,
                    y,
                    x,
                    member,
                )
            )
        key = (name, *(i for d, i in zip(batch, ids) if d != member), 0)
        # an opaque callable: one task per group of chunks, no arguments to walk
        tasks[key] = (functools.partial(_score_parts, parts, axis),)
    graph = HighLevelGraph.from_collections(name, tasks, dependencies=())
    out_chunks = (
        *(tuple(sum(chunks[d][i] for i in g) for g in groups[d]) for d in out_dims),
        (size,),
    )
    keep = _statistic_coords(fc, y, x, member)
    data_out = dsa.Array(graph, name, chunks=out_chunks, dtype=np.float64)
    return xr.DataArray(data_out, dims=(*out_dims, _STAT), coords=keep)


def _score_parts(parts: list, axis: int) -> np.ndarray:
    """The statistics of a group of chunks (each scored in turn), joined along ``axis``."""
    return np.concatenate([part() for part in parts], axis=axis)


def _statistic_coords(fc: xr.DataArray, y: str, x: str, member: str | None) -> dict[Any, Any]:
    """The coordinates of ``fc`` that label its statistics: neither spatial nor per member."""
    return {
        name: c.variable
        for name, c in fc.coords.items()
        if (name in fc.dims or name in (VALID_TIME, INIT_TIME))
        and not {y, x} & set(c.dims)
        and (member is None or member not in c.dims)
    }


def _score_chunk(
    fc: Any,
    dims: tuple,
    obs: Any,
    rows: tuple[np.ndarray, tuple],
    plan: tuple,
    y: str,
    x: str,
    member: str | None,
) -> np.ndarray:
    """The statistics of one forecast chunk, read here (a task), as a numpy array.

    ``fc`` is a :class:`~.frames.ForecastChunk` with dims ``dims``, ``obs``
    the :class:`~.frames.ObservedFrames` and ``rows`` the positions of the
    chunk's valid times among them (-1: no observation) with their dims.
    Each field pair is scored by every family in turn while it is in the
    processor's cache, against the shared observed frame itself (no array of
    observations at the valid times is assembled).
    """
    positions, row_dims = rows
    core = [member, y, x] if member else [y, x]
    values = np.moveaxis(fc.read(), [dims.index(d) for d in core], range(-len(core), 0))
    batch = [str(d) for d in dims if d not in core]
    sizes = dict(zip(batch, values.shape[: len(batch)]))
    ordered = [d for d in batch if d in row_dims]  # the rows' dims in the batch's order
    pos = np.transpose(positions, [row_dims.index(d) for d in ordered])
    pos = pos.reshape([sizes[d] if d in row_dims else 1 for d in batch])
    pos = np.broadcast_to(pos, tuple(sizes.values())).ravel()
    pairs = values.reshape(-1, *values.shape[len(batch) :])
    ensemble = member is not None
    if values[0].size < _PAIR_CELLS:  # small fields: one call for the chunk, frames copied
        out = _stats_kernel(pairs, obs.take(pos), plan=plan, ensemble=ensemble)
        return out.reshape(*sizes.values(), -1)
    frames = obs.frames(pos)
    if (pos < 0).any():  # no observation at some valid times: an all-NaN frame (made once)
        frames[-1] = np.full(pairs.shape[-2:], np.nan, dtype=obs.dtype)
    out = np.empty((len(pairs), _plan_size(plan)))
    for i, p in enumerate(pos):
        out[i] = _stats_kernel(pairs[i], frames[int(p)], plan=plan, ensemble=ensemble)
    return out.reshape(*sizes.values(), -1)


def _offsets(plan: tuple) -> dict[str, slice]:
    """Where each family's statistics lie on the flat statistic axis."""
    offsets, start = {}, 0
    for name, kw in plan:
        size = int(np.prod(_family_shape(FAMILIES[name], kw)))
        offsets[name] = slice(start, start + size)
        start += size
    return offsets


def _finalize(
    stats: xr.DataArray,
    metric: Metric,
    plan: tuple,
    params: dict,
    coords: dict[str, xr.DataArray],
    obs: xr.DataArray,
) -> xr.DataArray:
    """The metric's score from the statistics of its family."""
    family = FAMILIES[metric.family]
    kw = dict(plan)[family.name]
    part = stats.isel({_STAT: _offsets(plan)[family.name]})
    shape = _family_shape(family, kw)
    options = {k: params[family.name][k] for k in metric.params}
    dims = metric.score_dims()

    def score(block: np.ndarray) -> np.ndarray:
        return metric.from_stats(block.reshape(*block.shape[:-1], *shape), **options)

    out = xr.apply_ufunc(
        score,
        part,
        input_core_dims=[[_STAT]],
        output_core_dims=[list(dims)],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {d: coords[d].size for d in dims}},
    )
    out = out.assign_coords({d: coords[d] for d in dims})
    out.attrs = {"long_name": metric.long_name, "units": _units(metric.units, obs)}
    if metric.perfect is not None:
        out.attrs["perfect_score"] = metric.perfect
    return out


def _units(kind: str, obs: xr.DataArray) -> str:
    data_units = str(obs.attrs.get("units", "")).strip()
    if kind == "data":
        return data_units or "1"
    if kind == "data2":
        return f"({data_units})2" if data_units else "1"
    return kind


def _output_coords(params: dict, obs: xr.DataArray, n_members: int) -> dict[str, xr.DataArray]:
    units = str(obs.attrs.get("units", "")).strip()
    thr_attrs = {"long_name": "event threshold"}
    if units:
        thr_attrs["units"] = units
    n_bins = params["probability"]["prob_bins"]
    return {
        "threshold": xr.DataArray(
            np.asarray(params["fss"]["thresholds"]), dims="threshold", attrs=thr_attrs
        ),
        "scale": xr.DataArray(
            np.asarray(params["fss"]["scales"]),
            dims="scale",
            attrs={"long_name": "FSS window size", "units": "grid cells"},
        ),
        "probability_bin": xr.DataArray(
            (np.arange(n_bins) + 0.5) / n_bins,
            dims="probability_bin",
            attrs={"long_name": "centre of the forecast probability bin", "units": "1"},
        ),
        "probability_threshold": xr.DataArray(
            np.linspace(0.0, 1.0, params["probability"]["roc_thresholds"]),
            dims="probability_threshold",
            attrs={"long_name": "probability threshold of the ROC curve", "units": "1"},
        ),
        "rank": xr.DataArray(
            np.arange(n_members + 1),
            dims="rank",
            attrs={"long_name": "number of members below the observation"},
        ),
    }


def _skill(score: xr.DataArray, ref: xr.DataArray, metric: Metric, suffix: str) -> xr.DataArray:
    if metric.perfect is None:
        raise ValueError(f"{metric.name} has no perfect score, so no skill score")
    denom = metric.perfect - ref
    skill = (score - ref) / denom.where(denom != 0)
    skill.attrs = {
        "long_name": f"{metric.long_name} skill score relative to the {suffix}",
        "units": "1",
        "definition": f"({metric.name} - {metric.name}_{suffix}) / "
        f"({metric.perfect:g} - {metric.name}_{suffix})",
        "perfect_score": 1.0,
    }
    return skill


def _settings(
    chosen: list[Metric],
    params: dict,
    reduce: list[str],
    reference: Any,
    suffix: str,
    fc: xr.DataArray,
) -> dict[str, Any]:
    from xnowcast._version import __version__

    used = {m.family for m in chosen}
    options = {k: v for k, v in params.items() if k in used and v}
    attrs = {
        "title": "forecast verification scores",
        "xnowcast_verification": json.dumps(
            {
                "metrics": [m.name for m in chosen],
                "mean_over_init_time": INIT_TIME in reduce,
                "reduced_dims": reduce,
                "reference": suffix or None,
                "options": options,
            },
            sort_keys=True,
            default=str,
        ),
        "xnowcast_version": __version__,
    }
    if "xnowcast_model" in fc.attrs:
        attrs["xnowcast_model"] = fc.attrs["xnowcast_model"]
    return attrs


def scores_to_dataframe(scores: xr.Dataset) -> pd.DataFrame:
    """A tidy table of a :func:`verify` Dataset: one row per score value.

    Columns: ``metric``, ``init_time``, ``lead_time``, ``threshold``,
    ``scale`` (empty where a score lacks the dim), then any other dims of the
    scores (``member``, ``probability_bin``, ``probability_threshold``,
    ``rank``), and ``value``. This is what ``xnowcast verify --out scores.csv``
    writes.

    Examples
    --------
    >>> import xnowcast
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=8, size=32)
    >>> fc = xnowcast.forecast(cube.isel(time=slice(0, 4)), "persistence", n_in=2, n_out=3)
    >>> table = scores_to_dataframe(verify(fc, cube, ["mae", "csi"], thresholds=[1]))
    >>> list(table.columns), len(table)
    (['metric', 'init_time', 'lead_time', 'threshold', 'scale', 'value'], 6)
    """
    if not isinstance(scores, xr.Dataset):
        raise TypeError(
            "scores_to_dataframe takes the Dataset of scores returned by "
            f"xnowcast.verify, got {type(scores).__name__}"
        )
    if not scores.data_vars:
        raise ValueError("the Dataset holds no scores (no data variable)")
    frames = []
    for name, da in scores.data_vars.items():
        extra = [c for c in da.coords if c not in da.dims]
        table = da.reset_coords(extra, drop=True).to_dataframe(name="value").reset_index()
        if INIT_TIME in da.coords and da.coords[INIT_TIME].ndim == 0:
            table[INIT_TIME] = da.coords[INIT_TIME].values
        table.insert(0, "metric", name)
        frames.append(table)
    out = pd.concat(frames, ignore_index=True)
    fixed = [INIT_TIME, LEAD_TIME, "threshold", "scale"]
    for col in fixed:
        if col not in out.columns:
            out[col] = np.nan
    extra = [c for c in out.columns if c not in ("metric", "value", *fixed)]
    return out[["metric", *fixed, *extra, "value"]]
