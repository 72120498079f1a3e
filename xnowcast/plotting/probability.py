"""Probability maps of an ensemble forecast: the chance of exceeding a threshold per lead time.

:func:`plot_probability` turns an ensemble (``member`` dimension) into
exceedance probabilities with :func:`xnowcast.ensemble.probability` and draws
one map panel per lead time, with the building blocks of
:func:`~xnowcast.plotting.plot_forecast` (:mod:`.frames` for the init time,
lead times and labels, :mod:`.draw` for figures, map axes and saving).
Probabilities below the first level (:data:`PROBABILITY_LEVELS`) are left
transparent; missing data is grey.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import xarray as xr

from xnowcast.checks import integer
from xnowcast.conventions import LEAD_TIME
from xnowcast.plotting.draw import (
    NO_DATA_COLOR,
    add_map_axes,
    new_figure,
    plot_field,
    save_figure,
)
from xnowcast.plotting.frames import init_label, lead_label, lead_positions, select_forecast
from xnowcast.plotting.grid import map_grid

__all__ = ["PROBABILITY_COLORS", "PROBABILITY_LEVELS", "plot_probability", "probability_colormap"]

#: Colour-scale levels of probabilities: below 0.05 is transparent.
PROBABILITY_LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
#: One colour per interval between :data:`PROBABILITY_LEVELS` (light to dark).
PROBABILITY_COLORS = ("#fde0c5", "#facba6", "#f59e72", "#e8633f", "#c7392e", "#8c1d40")
#: Default width of one map panel, in inches.
PANEL_SIZE = 3.6


def probability_colormap() -> tuple[Any, Any]:
    """The ``(cmap, norm)`` of probability maps (discrete, transparent below 0.05).

    Examples
    --------
    >>> cmap, norm = probability_colormap()
    >>> norm.boundaries.tolist()[:3], cmap.N
    ([0.05, 0.1, 0.25], 6)
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(list(PROBABILITY_COLORS)).with_extremes(
        under=(1, 1, 1, 0), bad=NO_DATA_COLOR
    )
    return cmap, BoundaryNorm(list(PROBABILITY_LEVELS), cmap.N)


def plot_probability(
    fc: xr.DataArray | xr.Dataset,
    threshold: float,
    leads: Sequence[Any] | None = (1, 6, 12),
    *,
    init_time: Any = None,
    compare: str = ">=",
    ncols: int | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 110,
    overwrite: bool = False,
    features: Sequence[str] | str = ("coastline", "borders"),
) -> Any:
    """Maps of the probability of exceeding ``threshold`` at chosen lead times.

    Parameters
    ----------
    fc : DataArray or Dataset
        Ensemble forecast ``(member, lead_time, y, x)`` or ``(init_time,
        member, lead_time, y, x)`` (dask-backed ensembles compute only the
        lead times drawn).
    threshold : float
        In the forecast's units (e.g. 5 mm/h); see
        :func:`xnowcast.ensemble.probability` for the rule (``compare``).
    leads : sequence, optional
        Lead steps counted from 1 or lead times (``"30min"``); ``None``: all.
    init_time : time or int, optional
        Which init time of a multi-init ensemble.
    compare : {">=", ">"}
        Exceedance rule.
    ncols : int, optional
        Panels per row (default: all leads in one row, at most 4).
    title : str, optional
        Figure title (default: init time, threshold and members).
    path : path, optional
        Save the figure there too, atomically.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing ``path`` (otherwise a ``FileExistsError``, raised
        before anything is computed).
    features : str or sequence of str
        Natural Earth features of map axes.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=8, size=32)
    >>> ens = xnowcast.forecast(cube, "steps", members=3, n_in=4, n_out=3)
    >>> fig = plot_probability(ens, 1.0, leads=[1, 3])
    >>> len(fig.axes)  # two panels and the colour bar
    3
    """
    from xnowcast.ensemble import check_ensemble, probability

    if path is not None:  # fail before computing, not after
        from xnowcast.io.output import check_output

        check_output(path, overwrite=overwrite)
    dpi = integer(dpi, "dpi", low=1, whole=True)
    ens = check_ensemble(fc, "plot_probability")
    prob = probability(ens, threshold, compare=compare)
    prob.attrs["xnowcast_model"] = ens.attrs.get("xnowcast_model", "")
    prob = select_forecast(prob, init_time)
    positions = lead_positions(prob, leads)
    ncols = integer(ncols, "ncols", low=1, whole=True) if ncols else min(len(positions), 4)
    rows = -(-len(positions) // ncols)
    grid = map_grid(prob)
    fig = new_figure(
        figsize=(PANEL_SIZE * ncols + 1.0, PANEL_SIZE * grid.aspect() * rows + 0.7),
        layout="constrained",
    )
    cmap, norm = probability_colormap()
    mesh = None
    for k, pos in enumerate(positions):
        ax = add_map_axes(fig, rows, ncols, k + 1, grid)
        values = prob.isel({LEAD_TIME: pos}).values
        mesh = plot_field(ax, values, grid, cmap=cmap, norm=norm, features=features)
        ax.set_title(lead_label(prob, pos), fontsize=9)
    units = ens.attrs.get("units", "")
    members = ens.sizes["member"]
    default = f"{init_label(prob)}\nP(value {compare} {threshold:g} {units}), {members} members"
    fig.suptitle(title if title is not None else default, fontsize=11)
    if mesh is not None:
        fig.colorbar(
            mesh,
            ax=fig.axes,
            shrink=0.9,
            label=f"probability of {compare} {threshold:g} {units}".strip(),
            ticks=list(PROBABILITY_LEVELS),
            format="%g",
        )
    return save_figure(fig, path, dpi, overwrite=overwrite)
