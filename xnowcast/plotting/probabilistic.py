"""Reliability diagrams and rank histograms of :func:`xnowcast.verify` ensemble scores."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import integer
from xnowcast.conventions import LEAD_TIME
from xnowcast.plotting.draw import new_figure, save_figure

__all__ = ["plot_rank_histogram", "plot_reliability"]


def _need(scores: Any, names: list[str], what: str) -> None:
    if not isinstance(scores, xr.Dataset):
        raise TypeError(
            f"{what} takes the Dataset returned by xnowcast.verify, got {type(scores).__name__}"
        )
    missing = [n for n in names if n not in scores.data_vars]
    if missing:
        raise ValueError(
            f"{what} needs the score variables {missing}; compute them with "
            f"xnowcast.verify(ens, obs, metrics={names[:1]!r}, ...) on an ensemble forecast"
        )


def _at_lead(da: Any, lead_time: Any) -> Any:
    if lead_time is None or LEAD_TIME not in da.dims:
        return da
    try:
        if isinstance(lead_time, (int, np.integer)):
            return da.isel({LEAD_TIME: [int(lead_time) - 1]})
        return da.sel({LEAD_TIME: [pd.Timedelta(lead_time)]})
    except (IndexError, KeyError, ValueError):
        raise ValueError(
            f"lead_time={lead_time!r} is not in the scores; give a step 1..{da.sizes[LEAD_TIME]} "
            f"or one of {da[LEAD_TIME].values.tolist()}"
        ) from None


def _lead_label(da: Any, lead_time: Any) -> str:
    if lead_time is None or LEAD_TIME not in da.coords:
        return ""
    minutes = pd.to_timedelta(da[LEAD_TIME].values).total_seconds() / 60.0
    return f", lead {minutes[0]:g} min"


def plot_reliability(
    scores: xr.Dataset | xr.DataArray,
    *,
    threshold: Any = None,
    lead_time: Any = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 110,
    overwrite: bool = False,
):
    """Reliability diagram: observed frequency against forecast probability, per threshold.

    The bins of all the other dims (init times, lead times unless one is
    chosen) are pooled with their pixel counts, which is exact: the pooled
    frequency is the ratio of the summed events to the summed counts. A
    lower panel shows the counts per bin (sharpness).

    Parameters
    ----------
    scores : Dataset
        :func:`xnowcast.verify` output holding ``reliability``,
        ``reliability_forecast`` and ``reliability_count``
        (``metrics=["reliability"]`` on an ensemble).
    threshold : value or list, optional
        Thresholds to draw (default: all).
    lead_time : int or timedelta-like, optional
        One lead time (a step from 1, or e.g. ``"30min"``); default: all pooled.
    title : str, optional
        Figure title.
    path : path, optional
        Save the figure there too, atomically.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing ``path`` (otherwise a ``FileExistsError``, raised
        before anything is drawn).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, xarray as xr
    >>> freq = xr.DataArray([[0.1, 0.5, 0.8]], dims=("threshold", "probability_bin"),
    ...                     coords={"threshold": [1.0], "probability_bin": [1/6, 1/2, 5/6]})
    >>> scores = xr.Dataset({"reliability": freq, "reliability_forecast": freq * 0 + [0.2, 0.5, 0.9],
    ...                      "reliability_count": freq * 0 + 10})
    >>> len(plot_reliability(scores).axes)
    2
    """
    if path is not None:
        from xnowcast.io.output import check_output

        check_output(path, overwrite=overwrite)
    names = ["reliability", "reliability_forecast", "reliability_count"]
    _need(scores, names, "plot_reliability")
    dpi = integer(dpi, "dpi", low=1, whole=True)
    assert isinstance(scores, xr.Dataset)  # checked by _need
    data = scores[names].compute()
    if threshold is not None:
        data = data.sel(threshold=np.atleast_1d(threshold))
    data = _at_lead(data, lead_time)
    keep = {"threshold", "probability_bin"}
    pooled = [d for d in data.dims if d not in keep]
    count = data["reliability_count"].fillna(0)
    events = (data["reliability"] * count).fillna(0).sum(pooled)
    prob = (data["reliability_forecast"] * count).fillna(0).sum(pooled)
    total = count.sum(pooled)
    fig = new_figure(figsize=(4.8, 6.0))
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], color="0.6", lw=0.8, label="perfect reliability")
    units = scores["threshold"].attrs.get("units", "") if "threshold" in scores.coords else ""
    thresholds = total["threshold"].values if "threshold" in total.dims else [None]
    width = 0.8 / max(total.sizes.get("probability_bin", 1), 1) / max(len(thresholds), 1)
    for i, thr in enumerate(thresholds):
        sel = {"threshold": thr} if thr is not None else {}
        n = total.sel(sel).values
        with np.errstate(invalid="ignore", divide="ignore"):
            x, y = prob.sel(sel).values / n, events.sel(sel).values / n
        label = f">= {thr:g} {units}".rstrip() if thr is not None else "event"
        top.plot(x, y, marker="o", ms=4, color=f"C{i}", label=label)
        centres = total["probability_bin"].values + (i - (len(thresholds) - 1) / 2) * width
        bottom.bar(centres, n, width=width, color=f"C{i}")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed relative frequency")
    top.set_title(title or f"Reliability diagram{_lead_label(data, lead_time)}", fontsize=10)
    top.grid(alpha=0.3)
    top.legend(fontsize=7)
    bottom.set(xlabel="forecast probability", ylabel="pixels", yscale="log")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi, overwrite=overwrite)


def plot_rank_histogram(
    scores: xr.Dataset | xr.DataArray,
    *,
    lead_time: Any = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 110,
    overwrite: bool = False,
):
    """Rank histogram: how often the observation takes each rank among the members.

    The relative frequencies of all other dims (init times, lead times unless
    one is chosen) are averaged. A flat histogram at ``1 / (M + 1)`` (the
    dashed line) is a reliable ensemble; U-shaped is under-dispersive,
    dome-shaped over-dispersive, sloped biased.

    Parameters
    ----------
    scores : Dataset
        :func:`xnowcast.verify` output holding ``rank_histogram``.
    lead_time : int or timedelta-like, optional
        One lead time (a step from 1, or e.g. ``"30min"``); default: all averaged.
    title : str, optional
        Figure title.
    path : path, optional
        Save the figure there too, atomically.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import xarray as xr
    >>> hist = xr.DataArray([0.3, 0.2, 0.2, 0.3], dims="rank", coords={"rank": range(4)})
    >>> len(plot_rank_histogram(xr.Dataset({"rank_histogram": hist})).axes)
    1
    """
    if path is not None:
        from xnowcast.io.output import check_output

        check_output(path, overwrite=overwrite)
    _need(scores, ["rank_histogram"], "plot_rank_histogram")
    dpi = integer(dpi, "dpi", low=1, whole=True)
    assert isinstance(scores, xr.Dataset)  # checked by _need
    hist = _at_lead(scores["rank_histogram"].compute(), lead_time)
    hist = hist.mean([d for d in hist.dims if d != "rank"], skipna=True)
    ranks = hist["rank"].values if "rank" in hist.coords else np.arange(hist.size)
    fig = new_figure(figsize=(5.0, 3.4))
    ax = fig.subplots()
    ax.bar(ranks, hist.values, width=0.85, color="C0")
    ax.axhline(1.0 / hist.size, color="0.3", ls="--", lw=1, label="flat (reliable)")
    ax.set(xlabel="rank of the observation (members below it)", ylabel="relative frequency")
    ax.set_title(title or f"Rank histogram{_lead_label(hist, lead_time)}", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_figure(fig, path, dpi, overwrite=overwrite)
