"""``verify``: labelled, lazy skill scores of forecasts per lead time.

The xarray layer over the numpy kernels of :mod:`xnowcast.verification`. It
pairs every forecast field with the observation at its ``valid_time``, runs
one kernel over the spatial core dims (``xr.apply_ufunc`` with
``dask="parallelized"``, so dask-backed inputs stay lazy), and turns the
statistics into one variable per metric.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import boolean, choice, real
from xnowcast.conventions import (
    INIT_TIME,
    LEAD_TIME,
    VALID_TIME,
    as_dataarray,
    match_grid,
    normalize_cube,
)
from xnowcast.units import check_same_units, rain_rate_pair
from xnowcast.verification import image
from xnowcast.verification.interface import FAMILIES, METRICS, Family, Metric, get_metric

__all__ = ["DEFAULT_METRICS", "scores_to_dataframe", "verify"]

#: Metrics computed when ``metrics`` is not given: all of them.
DEFAULT_METRICS: tuple[str, ...] = tuple(METRICS)

_STAT = "statistic"
_WINDOWS = ("uniform", "gaussian")
#: Default event thresholds of verify: rain rates in mm h-1.
RAIN_THRESHOLDS = (0.1, 1.0, 5.0)

#: Field pairs handed to the statistics functions at once (bounds memory use).
_MAX_CELLS_PER_BLOCK = 2**22


def verify(
    fc: xr.DataArray | xr.Dataset,
    obs: xr.DataArray | xr.Dataset,
    metrics: str | Sequence[str] | None = None,
    *,
    thresholds: float | Sequence[float] | None = None,
    scales: int | Sequence[int] = (1, 4, 16),
    mean: bool = False,
    reference: str | xr.DataArray | None = None,
    data_range: float | None = None,
    win_size: int | None = None,
    window: str | None = None,
    var: str | None = None,
) -> xr.Dataset:
    """Score forecasts against observations, per lead time.

    Parameters
    ----------
    fc : DataArray or Dataset
        Forecasts with dims ``(init_time, lead_time, y, x)`` or
        ``(lead_time, y, x)`` and a ``valid_time`` coordinate (as made by
        :func:`xnowcast.forecast`); other dims (e.g. ensemble members) are
        kept.
    obs : DataArray or Dataset
        The observed cube ``(time, y, x)`` on the forecast's grid (or a larger
        grid containing it); any CF-recognisable dim names.
    metrics : str or list of str, optional
        Names from :func:`xnowcast.verification.list_metrics` (default: all;
        MS-SSIM is then left out, with a warning, when the grid is too small
        for it).
    thresholds : float or list of float, optional
        Event thresholds (``value >= threshold``, units of the data) of the
        categorical scores and the FSS. Default: the rain rates
        ``RAIN_THRESHOLDS`` (0.1, 1 and 5 mm h-1); a forecast and observations
        holding accumulations or reflectivities are then converted to rain
        rate first, with a warning (:func:`xnowcast.units.rain_rate_pair`),
        and other quantities are refused: give thresholds in their units.
    scales : int or list of int
        FSS window sizes in grid cells.
    mean : bool
        Aggregate over ``init_time``: statistics are pooled (contingency
        tables, FSS sums and error sums are added, as pysteps accumulates
        them) before the scores are computed; SSIM is window-weighted,
        MS-SSIM and PSNR are averaged over the field pairs.
    reference : "persistence" or DataArray, optional
        Also score a reference forecast and add, for each metric ``m``, the
        reference's score ``m_persistence`` (``m_reference`` for a DataArray)
        and the skill score ``m_skill = (m - m_ref) / (m_perfect - m_ref)``,
        which is ``1 - m / m_ref`` for error scores (MSE, MAE, RMSE, FAR)
        whose perfect value is 0. Skill is 1 for a perfect forecast, 0 for
        one as good as the reference, negative when worse; NaN when the
        reference is perfect. Metrics without a perfect value (bias,
        frequency bias, PSNR) get no skill score. ``"persistence"`` is the
        observation at the init time, repeated for every lead time.
    data_range : float, optional
        Data range of SSIM, MS-SSIM and PSNR (the contest used 1023). Default:
        per field pair, the larger ``max - min`` of the two fields.
    win_size : int, optional
        Odd window size of SSIM and MS-SSIM (the contest used 3). Default: 7
        for SSIM (skimage) and 11 for MS-SSIM (pytorch-msssim).
    window : {"uniform", "gaussian"}, optional
        SSIM/MS-SSIM window weights. Default: uniform for SSIM (skimage),
        Gaussian with sigma 1.5 for MS-SSIM (pytorch-msssim).
    var : str, optional
        Variable to use when ``fc`` or ``obs`` is a Dataset with several.

    Returns
    -------
    Dataset
        One variable per metric, with dims ``lead_time`` (and ``init_time``
        unless ``mean=True``) and ``threshold`` (categorical scores, FSS) and
        ``scale`` (FSS). Lazy (dask) when an input is. Pixels missing (NaN) in
        either field are left out; a forecast without an observation at its
        valid time scores NaN.

    Raises
    ------
    ValueError, TypeError
        Unknown metric, forecast without lead time or valid time, grids that
        do not match, forecast and observations in different units, no
        observation at any valid time.

    Examples
    --------
    >>> import xnowcast
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=20, size=48)
    >>> fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=4)
    >>> scores = verify(fc, cube, ["mse", "csi", "fss"], thresholds=[0.5, 2], scales=[1, 5])
    >>> dict(scores["fss"].sizes)
    {'init_time': 19, 'lead_time': 4, 'threshold': 2, 'scale': 2}
    >>> verify(fc, cube, "csi", mean=True)["csi"].dims
    ('lead_time', 'threshold')
    """
    chosen = _choose_metrics(metrics)
    boolean(mean, "mean")
    fc_da = as_dataarray(fc, var)
    obs_var = var if var is not None else _same_name(obs, fc_da)
    obs = as_dataarray(obs, obs_var)
    check_same_units(fc_da, obs)
    if thresholds is None:
        thresholds = RAIN_THRESHOLDS
        if any(m.family in ("categorical", "fss") for m in chosen):
            fc_da, obs_rate = rain_rate_pair(fc_da, obs, "verify's default thresholds")
            obs = obs if obs_rate is None else obs_rate
    obs_cube, info = normalize_cube(obs, obs_var, min_frames=1)
    y, x = info.spatial_dims
    fc_da = _check_forecast(fc_da, y, x)
    obs_cube = match_grid(fc_da, obs_cube, y, x)

    params = _family_params(thresholds, scales, data_range, win_size, window)
    chosen = _drop_unfit_ms_ssim(
        chosen, params, fc_da.sizes[y], fc_da.sizes[x], explicit=metrics is not None
    )
    families = [f for f in FAMILIES.values() if any(m.family == f.name for m in chosen)]
    plan = tuple((f.name, {k: params[f.name][k] for k in f.params}) for f in families)

    lazy = _is_dask(fc_da) or _is_dask(obs_cube)
    if _is_dask(fc_da):
        fc_da = _small_chunks(fc_da, y, x)
    if lazy and not _is_dask(obs_cube):
        obs_cube = obs_cube.chunk({info.time_dim: 1, y: -1, x: -1})
    valid_time = fc_da.coords[VALID_TIME]
    obs_at_valid = _at_times(obs_cube, info.time_dim, valid_time, fc_da, check_overlap=True)

    stats = _score_stats(fc_da, obs_at_valid, plan, y, x)
    ref_stats = None
    suffix = ""
    if reference is not None:
        ref_da, suffix = _reference(reference, fc_da, obs_cube, info.time_dim)
        ref_stats = _score_stats(ref_da, obs_at_valid, plan, y, x)
    if mean and INIT_TIME in stats.dims:
        stats = stats.sum(INIT_TIME)
        ref_stats = ref_stats.sum(INIT_TIME) if ref_stats is not None else None

    coords = _output_coords(params, obs_cube)
    offsets = _offsets(plan)
    out = {}
    for metric in chosen:
        family = FAMILIES[metric.family]
        score = _finalize(stats, metric, family, params, offsets, coords, obs_cube)
        out[metric.name] = score
        if ref_stats is not None:
            ref_score = _finalize(ref_stats, metric, family, params, offsets, coords, obs_cube)
            ref_score.attrs["long_name"] = f"{metric.long_name} of the {suffix}"
            out[f"{metric.name}_{suffix}"] = ref_score
            if metric.perfect is not None:
                out[f"{metric.name}_skill"] = _skill(score, ref_score, metric, suffix)
    ds = xr.Dataset(out)
    ds.attrs.update(_settings(chosen, params, mean, reference, suffix, fc_da))
    return ds


def _small_chunks(fc: xr.DataArray, y: str, x: str) -> xr.DataArray:
    """``fc`` in chunks of one init time and at most ``_MAX_CELLS_PER_BLOCK`` cells.

    Each chunk is scored with the observations at its valid times; a forecast
    store's chunk (often 100+ MB) scored at once would hold that much again of
    observations and intermediate arrays per thread. Small chunks, split from
    each chunk as it is read, keep the peak memory of a verification bounded
    by the store's chunk size, whatever the number of init times.
    """
    frames = max(1, _MAX_CELLS_PER_BLOCK // max(fc.sizes[y] * fc.sizes[x], 1))
    want = {LEAD_TIME: min(frames, fc.sizes[LEAD_TIME])}
    if INIT_TIME in fc.dims:
        want[INIT_TIME] = 1
    current = dict(zip(fc.dims, fc.data.chunksize))
    if all(current[d] <= n for d, n in want.items()):
        return fc
    sizes = {d: min(n, current[d]) for d, n in want.items()}
    out = fc.copy(data=fc.data.rechunk({fc.dims.index(d): n for d, n in sizes.items()}))
    lazy = {  # coordinates in memory stay so (valid_time is read, never computed)
        name: c.variable.chunk({d: n for d, n in sizes.items() if d in c.dims})
        for name, c in out.coords.items()
        if c.chunks is not None and set(c.dims) & set(sizes)
    }
    return out.assign_coords(lazy) if lazy else out


def _choose_metrics(metrics: str | Sequence[str] | None) -> list[Metric]:
    if metrics is not None and not isinstance(metrics, (str, Sequence)):
        raise TypeError(
            f"metrics must be a metric name or a list of names (see list_metrics()), got "
            f"{type(metrics).__name__} {metrics!r}"
        )
    names = (
        DEFAULT_METRICS
        if metrics is None
        else ([metrics] if isinstance(metrics, str) else list(metrics))
    )
    if not names:
        raise ValueError("metrics is empty; name at least one (see list_metrics())")
    chosen: list[Metric] = []
    for name in names:
        metric = get_metric(name)
        if metric not in chosen:
            chosen.append(metric)
    return chosen


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


def _at_times(
    cube: xr.DataArray,
    time_dim: str,
    times: xr.DataArray,
    like: xr.DataArray,
    *,
    check_overlap: bool = False,
) -> xr.DataArray:
    """Frames of ``cube`` at ``times`` (any dims), NaN where there is no frame; lazy."""
    index = pd.DatetimeIndex(cube[time_dim].values)
    wanted = np.asarray(times.values).astype("datetime64[ns]")
    pos = index.get_indexer(wanted.ravel()).reshape(wanted.shape)
    found = pos >= 0
    if check_overlap and not found.any():
        raise ValueError(
            f"no observation at any valid time of the forecast (valid times "
            f"{pd.Timestamp(wanted.min())} to {pd.Timestamp(wanted.max())}, observations "
            f"{index[0]} to {index[-1]}); give observations that cover the forecast period"
        )
    indexer = xr.DataArray(np.where(found, pos, 0), dims=times.dims)
    out = cube.isel({time_dim: indexer})
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
    thresholds: Any, scales: Any, data_range: Any, win_size: Any, window: Any
) -> dict[str, dict[str, Any]]:
    from xnowcast.verification._util import as_values

    thr = as_values(thresholds, "thresholds")
    sc = as_values(scales, "scales", integer=True)
    if window is not None:
        window = choice(window, "window", _WINDOWS)
    data_range = real(data_range, "data_range", low=0, low_inclusive=False, allow_none=True)
    if win_size is not None:
        image.window_weights(win_size, gaussian=False)  # validates
        win_size = int(win_size)
    return {
        "continuous": {},
        "psnr": {"data_range": data_range},
        "categorical": {"thresholds": thr.tolist()},
        "fss": {"thresholds": thr.tolist(), "scales": sc.tolist()},
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
    }


def _drop_unfit_ms_ssim(
    chosen: list[Metric], params: dict, ny: int, nx: int, *, explicit: bool
) -> list[Metric]:
    if not any(m.family == "ms_ssim" for m in chosen):
        return chosen
    need = image.ms_ssim_min_size(params["ms_ssim"]["win_size"])
    if min(ny, nx) >= need:
        return chosen
    message = (
        f"MS-SSIM with win_size={params['ms_ssim']['win_size']} needs a grid of at least "
        f"{need} x {need} cells, this one is {ny} x {nx}; pass win_size=3 (needs 33) or "
        "leave ms_ssim out of metrics"
    )
    if explicit:
        raise ValueError(message)
    warnings.warn(f"{message}. MS-SSIM is left out of the default metrics.", stacklevel=3)
    return [m for m in chosen if m.family != "ms_ssim"]


def _stats_kernel(fc: np.ndarray, obs: np.ndarray, *, plan: tuple) -> np.ndarray:
    """All statistics of all families for ``(..., y, x)`` pairs, flat on the last axis.

    The batch axes of ``fc`` and ``obs`` broadcast (a persistence forecast has
    no lead-time axis); pairs are scored in blocks to bound memory use.
    """
    shape = np.broadcast_shapes(np.shape(fc), np.shape(obs))
    batch, (ny, nx) = shape[:-2], shape[-2:]
    f, o = np.broadcast_to(fc, shape), np.broadcast_to(obs, shape)
    if not batch:  # a single field pair
        f, o = f.reshape(1, ny, nx), o.reshape(1, ny, nx)
    loop = f.shape[:-2]
    n = int(np.prod(loop))
    block = max(1, _MAX_CELLS_PER_BLOCK // max(ny * nx, 1))
    out = np.empty((n, _plan_size(plan)))
    for start in range(0, n, block):
        idx = np.unravel_index(np.arange(start, min(n, start + block)), loop)
        f_blk, o_blk = f[idx], o[idx]  # copies of this block only
        out[start : start + len(f_blk)] = np.concatenate(
            [FAMILIES[name].stats(f_blk, o_blk, **kw).reshape(len(f_blk), -1) for name, kw in plan],
            axis=-1,
        )
    return out.reshape(*batch, -1)


def _family_shape(family: Family, kw: dict[str, Any]) -> tuple[int, ...]:
    sizes = {"threshold": len(kw.get("thresholds", ())), "scale": len(kw.get("scales", ()))}
    return (*(sizes[d] for d in family.dims), len(family.stat_names))


def _plan_size(plan: tuple) -> int:
    return int(sum(np.prod(_family_shape(FAMILIES[name], kw)) for name, kw in plan))


def _score_stats(
    fc: xr.DataArray,
    obs: xr.DataArray,
    plan: tuple,
    y: str,
    x: str,
) -> xr.DataArray:
    """Run the kernel once over the spatial core dims; dims ``(..., statistic)``."""
    keep = {
        name: c.variable
        for name, c in fc.coords.items()
        if (name in fc.dims or name in (VALID_TIME, INIT_TIME)) and not {y, x} & set(c.dims)
    }
    fc, obs = fc.reset_coords(drop=True), obs.reset_coords(drop=True)
    if _is_dask(fc) or _is_dask(obs):
        fc = fc.chunk({y: -1, x: -1})
        obs = obs.chunk({y: -1, x: -1})
    stats = xr.apply_ufunc(
        _stats_kernel,
        fc,
        obs,
        input_core_dims=[[y, x], [y, x]],
        output_core_dims=[[_STAT]],
        kwargs={"plan": plan},
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {_STAT: _plan_size(plan)}},
    )
    return stats.assign_coords({k: v for k, v in keep.items() if k not in stats.coords})


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
    family: Family,
    params: dict,
    offsets: dict[str, slice],
    coords: dict[str, xr.DataArray],
    obs: xr.DataArray,
) -> xr.DataArray:
    """The metric's score from the statistics of its family."""
    part = stats.isel({_STAT: offsets[family.name]})
    shape = _family_shape(family, params[family.name])

    def score(block: np.ndarray) -> np.ndarray:
        return metric.from_stats(block.reshape(*block.shape[:-1], *shape))

    out = xr.apply_ufunc(
        score,
        part,
        input_core_dims=[[_STAT]],
        output_core_dims=[list(family.dims)],
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": dict(zip(family.dims, shape[:-1]))},
    )
    out = out.assign_coords({d: coords[d] for d in family.dims})
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


def _output_coords(params: dict, obs: xr.DataArray) -> dict[str, xr.DataArray]:
    units = str(obs.attrs.get("units", "")).strip()
    thr_attrs = {"long_name": "event threshold (value >= threshold)"}
    if units:
        thr_attrs["units"] = units
    return {
        "threshold": xr.DataArray(
            np.asarray(params["fss"]["thresholds"]), dims="threshold", attrs=thr_attrs
        ),
        "scale": xr.DataArray(
            np.asarray(params["fss"]["scales"]),
            dims="scale",
            attrs={"long_name": "FSS window size", "units": "grid cells"},
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
    mean: bool,
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
                "mean_over_init_time": bool(mean),
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

    Columns: ``metric``, the dims present (``init_time``, ``lead_time``,
    ``threshold``, ``scale``; missing ones are empty) and ``value``. This is
    what ``xnowcast verify --out scores.csv`` writes.

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
    for col in (INIT_TIME, LEAD_TIME, "threshold", "scale"):
        if col not in out.columns:
            out[col] = np.nan
    return out[["metric", INIT_TIME, LEAD_TIME, "threshold", "scale", "value"]]
