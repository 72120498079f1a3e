"""Forecast maps: panels per lead time in the cube's own projection.

:func:`plot_forecast` puts the frames chosen with :mod:`xnowcast.plotting.frames`
on the map grid of :mod:`xnowcast.plotting.grid` and draws them with
:mod:`xnowcast.plotting.draw` (rain colour scale, local Natural Earth
coastlines and borders, motion arrows). The figure is not registered with
pyplot, so it shows once in a notebook (see :func:`~xnowcast.plotting.draw.new_figure`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.checks import integer
from xnowcast.conventions import LEAD_TIME, VALID_TIME
from xnowcast.plotting.draw import (
    MapStyle,
    add_map_axes,
    colour_scale_for,
    new_figure,
    plot_field,
    plot_motion,
    save_figure,
)
from xnowcast.plotting.frames import (
    ObservedFrames,
    colorbar_label,
    init_label,
    lead_label,
    lead_positions,
    observations_on_grid,
    select_forecast,
)
from xnowcast.plotting.grid import MapGrid, map_grid

__all__ = ["DEFAULT_LEADS", "PANEL_SIZE", "plot_forecast"]

#: Lead-time steps drawn by default (those beyond the forecast are left out).
DEFAULT_LEADS = (1, 6, 12, 24)
#: Default width of one map panel, in inches.
PANEL_SIZE = 3.6


def plot_forecast(
    fc: xr.DataArray | xr.Dataset,
    leads: Sequence[Any] | None = DEFAULT_LEADS,
    *,
    init_time: Any = None,
    obs: xr.DataArray | xr.Dataset | None = None,
    motion: Any = None,
    var: str | None = None,
    ncols: int | None = None,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 110,
    overwrite: bool = False,
    style: MapStyle | Mapping[str, Any] | None = None,
    **style_options: Any,
) -> Any:
    """Map panels of a forecast at chosen lead times.

    Parameters
    ----------
    fc : DataArray or Dataset
        Forecast with dims ``(lead_time, y, x)`` or ``(init_time, lead_time,
        y, x)`` (dask-backed forecasts compute only the panels drawn).
    leads : sequence, optional
        Lead times to draw: integers are steps counted from 1, strings or
        timedeltas are lead times (``"30min"``); leads beyond the forecast
        are left out when given as the default. ``None``: all.
    init_time : time or int, optional
        Which init time of a multi-init forecast (a time or a position).
    obs : DataArray or Dataset, optional
        Observed cube: adds a row with the observation at each valid time.
    motion : Dataset or array, optional
        Motion field to overlay as arrows on the forecast panels (see
        :func:`~xnowcast.plotting.plot_motion`).
    var : str, optional
        Variable of a Dataset.
    ncols : int, optional
        Panels per row (default: all leads in one row, at most 4).
    title : str, optional
        Figure title (default: init time and model).
    path : path, optional
        Save the figure there too (PNG, PDF, SVG, ...), atomically.
    dpi : int
        Resolution when saving.
    overwrite : bool
        Replace an existing ``path`` (otherwise a ``FileExistsError``, raised
        before anything is drawn).
    style : MapStyle or dict, optional
        The look of the maps (:class:`~xnowcast.plotting.MapStyle`): colour
        scale (``levels``, ``colors``), Natural Earth ``features`` (coastline,
        borders, lakes, rivers) at a ``resolution`` ("10m", "50m", "110m"),
        and ``panel_size``, the width of one panel in inches (default 3.6).
    **style_options
        The same fields as keywords (``levels=[1, 5, 10]``); they override ``style``.

    Returns
    -------
    matplotlib.figure.Figure
        Not held by pyplot: a notebook shows it once; in a script, save it
        (``path=`` or ``fig.savefig``) or show it with
        ``plt.figure(fig); plt.show()``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import warnings
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=8, size=32)
    >>> fc = cube.nowcast.forecast(model="persistence", n_in=2, n_out=6)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # no Natural Earth files offline
    ...     fig = plot_forecast(fc, leads=[1, 6], features="coastline")
    >>> len(fig.axes)  # two panels and the colour bar
    3
    """
    if path is not None:  # fail before drawing, not after
        from xnowcast.io.output import check_output

        check_output(path, overwrite=overwrite)
    look = MapStyle.from_options(style, **style_options)
    if ncols is not None:
        ncols = integer(ncols, "ncols", low=1, whole=True)
    dpi = integer(dpi, "dpi", low=1, whole=True)
    da = select_forecast(fc, init_time, var)
    look, da, obs = colour_scale_for(look, da, obs, var)  # rain rates or a continuous field
    positions = lead_positions(da, _fitting_leads(leads, da.sizes[LEAD_TIME]))
    observed = observations_on_grid(obs, da, var) if obs is not None else None
    grid = map_grid(da)
    ncols = ncols or min(len(positions), 4)
    rows = -(-len(positions) // ncols) * (2 if observed is not None else 1)
    panel_size = look.panel_size or PANEL_SIZE
    fig = new_figure(
        figsize=(panel_size * ncols + 1.0, panel_size * grid.aspect() * rows + 0.7),
        layout="constrained",
    )
    mesh = None
    for k, pos in enumerate(positions):
        for label, values, index in _panels(da, pos, k, observed, ncols, rows):
            ax = add_map_axes(fig, rows, ncols, index, grid)
            if values is None:
                ax.set_title(f"{lead_label(da, pos)}\nno observation", fontsize=9)
                continue
            mesh = _draw(ax, values, grid, look, motion if label == "forecast" else None)
            prefix = label if observed is not None or label == "observed" else ""
            ax.set_title(f"{prefix} {lead_label(da, pos)}".strip(), fontsize=9)
    fig.suptitle(title if title is not None else init_label(da), fontsize=11)
    if mesh is not None:
        fig.colorbar(
            mesh,
            ax=fig.axes,
            shrink=0.9,
            extend="max",
            label=colorbar_label(da),
            ticks=mesh.norm.boundaries,
            format="%g",
        )
    return save_figure(fig, path, dpi, overwrite=overwrite)


def _panels(
    da: xr.DataArray, pos: int, k: int, observed: ObservedFrames | None, ncols: int, rows: int
) -> list[tuple[str, np.ndarray | None, int]]:
    """``(label, values, subplot index)`` of the panels of the ``k``-th lead drawn.

    With observations, the observed frames fill the upper rows and the
    forecasts the lower ones.
    """
    frame = da.isel({LEAD_TIME: pos})
    if observed is None:
        return [("forecast", frame.values, k + 1)]
    valid = frame[VALID_TIME].values if VALID_TIME in frame.coords else None
    lower = k + 1 + (rows // 2) * ncols
    return [("observed", observed.frame(valid), k + 1), ("forecast", frame.values, lower)]


def _draw(ax: Any, values: np.ndarray, grid: MapGrid, look: MapStyle, motion: Any) -> Any:
    """One panel: the field in the style's colours and features, and the motion if given."""
    cmap, norm = look.colormap()
    mesh = plot_field(
        ax, values, grid, cmap=cmap, norm=norm, features=look.features, resolution=look.resolution
    )
    if motion is not None:
        plot_motion(ax, motion, grid)
    return mesh


def _fitting_leads(leads: Sequence[Any] | None, n: int) -> Sequence[Any] | None:
    """The default leads ``(1, 6, 12, 24)`` without those beyond ``n`` lead times."""
    is_default = (
        leads is not None
        and np.ndim(leads) == 1
        and not isinstance(leads, str)
        and tuple(leads) == DEFAULT_LEADS
    )
    if not is_default:
        return leads
    return [lead for lead in DEFAULT_LEADS if lead <= n] or [1]
