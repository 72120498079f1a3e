"""Forecast animations: observed and forecast side by side, one frame per lead time."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.checks import integer, real
from xnowcast.conventions import LEAD_TIME, VALID_TIME
from xnowcast.optional import import_optional
from xnowcast.plotting.draw import (
    MapStyle,
    add_map_axes,
    colour_scale_for,
    new_figure,
    plot_field,
    plot_motion,
    update_field,
)
from xnowcast.plotting.frames import (
    colorbar_label,
    init_label,
    lead_label,
    lead_positions,
    observations_on_grid,
    select_forecast,
)
from xnowcast.plotting.grid import MapGrid, map_grid

__all__ = ["PANEL_SIZE", "animate"]

#: Default width of one panel of an animation, in inches.
PANEL_SIZE = 4.0

_GIF = (".gif",)
_VIDEO = (".mp4", ".m4v", ".mov", ".mkv")


def _writer(path: Path, fps: float) -> Any:
    animation = import_optional("matplotlib.animation", "animations")
    suffix = path.suffix.lower()
    if suffix in _GIF:
        return animation.PillowWriter(fps=fps)
    if suffix in _VIDEO:
        if not animation.writers.is_available("ffmpeg"):
            raise ValueError(
                f"writing {suffix} needs ffmpeg, which was not found on PATH; install it "
                "(e.g. conda install ffmpeg) or write a .gif instead"
            )
        return animation.FFMpegWriter(fps=fps)
    raise ValueError(
        f"cannot write an animation to {path.name!r}: use a .gif file (Pillow) "
        f"or {', '.join(_VIDEO)} (ffmpeg)"
    )


def animate(
    fc: xr.DataArray | xr.Dataset,
    path: str | os.PathLike,
    obs: xr.DataArray | xr.Dataset | None = None,
    *,
    init_time: Any = None,
    leads: Sequence[Any] | None = None,
    motion: Any = None,
    fps: float = 3.0,
    dpi: int = 90,
    var: str | None = None,
    overwrite: bool = False,
    style: MapStyle | Mapping[str, Any] | None = None,
    **style_options: Any,
) -> Path:
    """Animate a forecast, one frame per lead time, next to the observations.

    Parameters
    ----------
    fc : DataArray or Dataset
        Forecast ``(lead_time, y, x)`` or ``(init_time, lead_time, y, x)``.
    path : path
        Output file: ``.gif`` (Pillow) or ``.mp4``/``.mov``/``.mkv`` (needs
        ffmpeg on PATH).
    obs : DataArray or Dataset, optional
        Observed cube; its frame at each valid time is drawn on the left
        (an empty panel where there is none).
    init_time : time or int, optional
        Which init time of a multi-init forecast.
    leads : sequence, optional
        Lead times to animate (see :func:`xnowcast.plotting.frames.lead_positions`;
        default all).
    motion : Dataset or array, optional
        Motion vectors to overlay on the forecast panel.
    fps : float
        Frames per second.
    dpi : int
        Resolution of the frames.
    overwrite : bool
        Replace an existing ``path`` (otherwise a ``FileExistsError``, raised
        before anything is drawn). The file is written through a temporary
        sibling and renamed into place when complete.
    var : str, optional
        Variable of a Dataset.
    style : MapStyle or dict, optional
        The look of the maps (:class:`~xnowcast.plotting.MapStyle`: ``levels``,
        ``colors``, ``features``, ``resolution``, ``panel_size``, default 4 inches).
    **style_options
        The same fields as keywords; they override ``style``.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import matplotlib, tempfile, warnings
    >>> matplotlib.use("Agg")
    >>> from pathlib import Path
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=10, size=32)
    >>> fc = cube.isel(time=slice(0, 6)).nowcast.forecast(model="persistence", n_in=2, n_out=4)
    >>> with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     out = animate(fc, Path(tmp) / "fc.gif", obs=cube)
    ...     out.stat().st_size > 1000
    True
    """
    from xnowcast.io.output import atomic_output, check_output

    animation = import_optional("matplotlib.animation", "animations")
    look = MapStyle.from_options(style, **style_options)
    path = check_output(_output_path(path), overwrite=overwrite)
    fps = real(fps, "fps", low=0, low_inclusive=False)
    dpi = integer(dpi, "dpi", low=1, whole=True)
    writer = _writer(path, fps)
    da = select_forecast(fc, init_time, var)
    look, da, obs = colour_scale_for(look, da, obs, var)  # rain rates or a continuous field
    positions = lead_positions(da, leads)
    frames = np.asarray(da.isel({LEAD_TIME: positions}).values, dtype=float)
    observed = _observed(obs, da, positions, var)
    grid = map_grid(da)
    fig, panels = _figure(da, grid, look, frames[0], observed is not None, motion)
    missing = np.full(frames.shape[1:], np.nan)

    def draw(k: int) -> list[Any]:
        lead = lead_label(da, positions[k])
        for ax, artist, label in panels:
            if label == "observed" and observed is not None:
                values = observed[k]
                text = f"observed {lead}" + (" (none)" if values is None else "")
                values = missing if values is None else values
            else:
                values, text = frames[k], f"forecast {lead}"
            update_field(artist, values, grid)
            ax.set_title(text, fontsize=9)
        return [artist for _, artist, _ in panels]

    draw(0)
    anim = animation.FuncAnimation(fig, draw, frames=len(positions), blit=False, repeat=False)
    with atomic_output(path, overwrite=overwrite) as tmp:
        anim.save(tmp, writer=writer, dpi=dpi)
    return path


def _output_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a file path ending in .gif or {', '.join(_VIDEO)}, got "
            f"{type(path).__name__}"
        )
    return Path(path)


def _observed(
    obs: xr.DataArray | xr.Dataset | None, da: xr.DataArray, positions: list[int], var: str | None
) -> list[np.ndarray | None] | None:
    """The observed frame at the valid time of each lead drawn (None where there is none)."""
    if obs is None:
        return None
    frames = observations_on_grid(obs, da, var)
    if VALID_TIME not in da.coords:
        return [None] * len(positions)
    return [frames.frame(t) for t in da[VALID_TIME].values[positions]]


def _figure(
    da: xr.DataArray,
    grid: MapGrid,
    look: MapStyle,
    first: np.ndarray,
    with_obs: bool,
    motion: Any,
) -> tuple[Any, list[tuple[Any, Any, str]]]:
    """The figure and its ``(axes, artist, label)`` panels: observed (if any), then forecast."""
    ncols = 2 if with_obs else 1
    size = look.panel_size or PANEL_SIZE
    fig = new_figure(figsize=(size * ncols + 1.0, size * grid.aspect() + 0.6), layout="constrained")
    cmap, norm = look.colormap()
    options = dict(cmap=cmap, norm=norm, features=look.features, resolution=look.resolution)
    labels = ["observed", "forecast"] if with_obs else ["forecast"]
    panels = []
    for index, label in enumerate(labels, start=1):
        ax = add_map_axes(fig, 1, ncols, index, grid)
        panels.append((ax, plot_field(ax, first, grid, **options), label))
    if motion is not None:
        plot_motion(panels[-1][0], motion, grid)
    fig.colorbar(
        panels[-1][1],
        ax=fig.axes,
        shrink=0.8,
        extend="max",
        label=colorbar_label(da),
        ticks=norm.boundaries,
        format="%g",
    )
    fig.suptitle(init_label(da), fontsize=11)
    return fig, panels
