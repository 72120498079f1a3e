"""Skill-versus-lead-time plots of :func:`xnowcast.verify` results."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import integer, real
from xnowcast.conventions import INIT_TIME, LEAD_TIME
from xnowcast.plotting.draw import new_figure, save_figure

__all__ = ["plot_skill"]

_REFERENCE_SUFFIXES = ("_persistence", "_reference")


def _base_metrics(scores: xr.Dataset) -> list[str]:
    return [
        str(name)
        for name in scores.data_vars
        if not str(name).endswith((*_REFERENCE_SUFFIXES, "_skill"))
    ]


def _lead_minutes(da: xr.DataArray) -> tuple[np.ndarray, str]:
    if LEAD_TIME in da.coords and np.issubdtype(da[LEAD_TIME].dtype, np.timedelta64):
        return pd.TimedeltaIndex(
            da[LEAD_TIME].values
        ).total_seconds().values / 60.0, "lead time (min)"
    return np.arange(1, da.sizes[LEAD_TIME] + 1), "lead time (steps)"


def _select(da: xr.DataArray, dim: str, values: Any) -> xr.DataArray:
    if values is None or dim not in da.dims:
        return da
    try:
        return da.sel({dim: np.atleast_1d(values)})
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{dim}={values!r} is not in the scores; available: {da[dim].values.tolist()}"
        ) from None


def _event_rule(scores: xr.Dataset, name: str) -> str:
    """The event rule (``">"`` or ``">="``) :func:`xnowcast.verify` used for score ``name``."""
    import json

    from xnowcast.verification.interface import METRICS

    base = name.removesuffix("_skill")
    for suffix in _REFERENCE_SUFFIXES:
        base = base.removesuffix(suffix)
    family = METRICS[base].family if base in METRICS else ""
    try:
        options = json.loads(scores.attrs.get("xnowcast_verification", "{}")).get("options", {})
    except (TypeError, ValueError):
        options = {}
    default = ">" if family == "categorical" else ">="
    return str(options.get(family, {}).get("compare", default))


def _panels(name: str, da: xr.DataArray, threshold: Any, scale: Any, rule: str = ">="):
    """``(title suffix, {line label: 1-D DataArray over lead_time})`` per panel."""
    da = _select(_select(da, "threshold", threshold), "scale", scale)
    units = da["threshold"].attrs.get("units", "") if "threshold" in da.coords else ""
    if "scale" in da.dims:
        for thr in da["threshold"].values if "threshold" in da.dims else [None]:
            sub = da.sel(threshold=thr) if thr is not None else da
            lines = {f"scale {int(s)}": sub.sel(scale=s) for s in sub["scale"].values}
            yield (f" {rule} {thr:g} {units}".rstrip() if thr is not None else ""), lines
    elif "threshold" in da.dims:
        yield (
            "",
            {f"{rule} {t:g} {units}".rstrip(): da.sel(threshold=t) for t in da["threshold"].values},
        )
    else:
        yield "", {"": da}


def plot_skill(
    scores: xr.Dataset,
    metrics: str | Sequence[str] | None = None,
    *,
    threshold: Any = None,
    scale: Any = None,
    ncols: int = 3,
    panel_size: tuple[float, float] = (4.2, 3.0),
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 110,
    overwrite: bool = False,
):
    """Scores against lead time, one panel per metric.

    Scores with an ``init_time`` dimension are averaged over it (NaN
    skipped). Categorical scores get one line per threshold; the FSS one
    panel per threshold and one line per scale. When ``scores`` holds
    reference scores (``verify(..., reference="persistence")``) they are
    drawn dashed in the same colour.

    Parameters
    ----------
    scores : Dataset
        Output of :func:`xnowcast.verify`.
    metrics : str or list of str, optional
        Variables to plot (default: every score except the reference and
        skill variables; name ``"csi_skill"`` etc. to plot those).
    threshold, scale : value or list, optional
        Restrict to these thresholds / FSS scales.
    ncols : int
        Panels per row.
    panel_size : (float, float)
        Size of one panel in inches.
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
    >>> import xnowcast
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=12, size=32)
    >>> fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=4)
    >>> scores = xnowcast.verification.verify(fc, cube, ["mae", "csi", "fss"], mean=True)
    >>> len(plot_skill(scores).axes)  # MAE, CSI and one FSS panel per threshold
    5
    """
    if path is not None:  # fail before drawing, not after
        from xnowcast.io.output import check_output

        check_output(path, overwrite=overwrite)
    if not isinstance(scores, xr.Dataset):
        raise TypeError(
            f"plot_skill takes the Dataset returned by xnowcast.verify, got {type(scores).__name__}"
        )
    if metrics is not None and not isinstance(metrics, (str, Sequence)):
        raise TypeError(f"metrics must be a score name or a list of names, got {metrics!r}")
    ncols = integer(ncols, "ncols", low=1, whole=True)
    dpi = integer(dpi, "dpi", low=1, whole=True)
    if np.ndim(panel_size) != 1 or len(panel_size) != 2:
        raise ValueError(f"panel_size must be (width, height) in inches, got {panel_size!r}")
    width, height = (real(v, "panel_size", low=0, low_inclusive=False) for v in panel_size)
    names = (
        _base_metrics(scores)
        if metrics is None
        else ([metrics] if isinstance(metrics, str) else list(metrics))
    )
    missing = [m for m in names if m not in scores.data_vars]
    if missing:
        raise ValueError(
            f"no score variable {missing} in the Dataset; it has "
            f"{', '.join(map(str, scores.data_vars))}"
        )
    # verify() is lazy: compute the plotted scores in one pass, not once per line drawn
    scores = scores[
        names + [n + s for n in names for s in _REFERENCE_SUFFIXES if n + s in scores.data_vars]
    ].compute()
    panels = []
    for name in names:
        da = scores[name]
        if LEAD_TIME not in da.dims:
            raise ValueError(f"score {name!r} has no lead_time dimension (dims {da.dims})")
        ref_name = next((name + s for s in _REFERENCE_SUFFIXES if name + s in scores), None)
        ref = scores[ref_name] if ref_name else None
        if INIT_TIME in da.dims:
            da = da.mean(INIT_TIME, skipna=True, keep_attrs=True)
            ref = ref.mean(INIT_TIME, skipna=True) if ref is not None else None
        rule = _event_rule(scores, name)
        ref_panels = list(_panels(name, ref, threshold, scale, rule)) if ref is not None else None
        for k, (suffix, lines) in enumerate(_panels(name, da, threshold, scale, rule)):
            panels.append(
                (
                    name,
                    da.attrs,
                    suffix,
                    lines,
                    ref_panels[k][1] if ref_panels else None,
                    ref_name.split("_")[-1] if ref_name else None,
                )
            )
    if not panels:
        raise ValueError("nothing to plot: the Dataset holds no scores")
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = new_figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.remove()
    for ax, (name, attrs, suffix, lines, ref_lines, ref_label) in zip(axes.ravel(), panels):
        for i, (label, line) in enumerate(lines.items()):
            x, xlabel = _lead_minutes(line)
            color = f"C{i}"
            ax.plot(x, line.values, marker="o", ms=3, color=color, label=label or name)
            if ref_lines is not None:
                ax.plot(x, ref_lines[label].values, ls="--", color=color, alpha=0.8)
        long_name = attrs.get("long_name", name)
        units = attrs.get("units", "")
        ax.set_title(f"{name.upper()}{suffix}", fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(
            f"{long_name}" + (f" ({units})" if units and units != "1" else ""), fontsize=8
        )
        if "perfect_score" in attrs:
            ax.axhline(attrs["perfect_score"], color="0.6", lw=0.8, zorder=0)
        ax.grid(alpha=0.3)
        if ref_lines is not None:  # one legend entry for all the dashed reference lines
            ax.plot([], [], ls="--", color="0.4", label=ref_label)
        if len(lines) > 1 or ref_lines is not None:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path, dpi, overwrite=overwrite)
