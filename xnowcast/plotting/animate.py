"""Forecast animations: observed and forecast side by side, one frame per lead time."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.checks import integer, real
from xnowcast.conventions import LEAD_TIME, VALID_TIME
from xnowcast.optional import import_optional
from xnowcast.plotting.draw import (
    add_map_axes,
    new_figure,
    plot_field,
    plot_motion,
    rain_colormap,
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
from xnowcast.plotting.grid import map_grid

__all__ = ["animate"]

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
    levels: Sequence[float] | None = None,
    colors: Sequence[str] | None = None,
    features: Sequence[str] = ("coastline", "borders"),
    resolution: str = "50m",
    panel_size: float = 4.0,
    var: str | None = None,
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
    levels, colors : optional
        Colour scale (see :func:`xnowcast.plotting.rain_colormap`).
    features, resolution : optional
        Map features (see :func:`xnowcast.plotting.plot_forecast`).
    panel_size : float
        Width of one panel in inches.
    var : str, optional
        Variable of a Dataset.

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
    animation = import_optional("matplotlib.animation", "animations")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a file path ending in .gif or {', '.join(_VIDEO)}, got "
            f"{type(path).__name__}"
        )
    path = Path(path)
    fps = real(fps, "fps", low=0, low_inclusive=False)
    dpi = integer(dpi, "dpi", low=1, whole=True)
    panel_size = real(panel_size, "panel_size", low=0, low_inclusive=False)
    writer = _writer(path, fps)
    da = select_forecast(fc, init_time, var)
    positions = lead_positions(da, leads)
    frames = np.asarray(da.isel({LEAD_TIME: positions}).values, dtype=float)
    observed: list[np.ndarray | None] = []
    if obs is not None:
        obs_da = observations_on_grid(obs, da, var)
        valid = (
            da[VALID_TIME].values[positions] if VALID_TIME in da.coords else [None] * len(positions)
        )
        observed = [obs_da.frame(t) for t in valid]
    grid = map_grid(da)
    cmap, norm = rain_colormap(levels, colors)

    ncols = 2 if obs is not None else 1
    fig = new_figure(
        figsize=(panel_size * ncols + 1.0, panel_size * grid.aspect() + 0.6), layout="constrained"
    )
    panels = []
    if obs is not None:
        ax_obs = add_map_axes(fig, 1, ncols, 1, grid)
        first = observed[0] if observed[0] is not None else np.full(frames.shape[1:], np.nan)
        panels.append(
            (
                ax_obs,
                plot_field(
                    ax_obs,
                    first,
                    grid,
                    cmap=cmap,
                    norm=norm,
                    features=features,
                    resolution=resolution,
                ),
                "observed",
            )
        )
    ax_fc = add_map_axes(fig, 1, ncols, ncols, grid)
    mesh = plot_field(
        ax_fc, frames[0], grid, cmap=cmap, norm=norm, features=features, resolution=resolution
    )
    panels.append((ax_fc, mesh, "forecast"))
    if motion is not None:
        plot_motion(ax_fc, motion, grid)
    fig.colorbar(
        mesh,
        ax=fig.axes,
        shrink=0.8,
        extend="max",
        label=colorbar_label(da),
        ticks=norm.boundaries,
        format="%g",
    )
    fig.suptitle(init_label(da), fontsize=11)

    def draw(k: int):
        for ax, artist, label in panels:
            if label == "observed":
                values = observed[k]
                text = f"observed {lead_label(da, positions[k])}"
                if values is None:
                    values = np.full(frames.shape[1:], np.nan)
                    text += " (none)"
            else:
                values, text = frames[k], f"forecast {lead_label(da, positions[k])}"
            update_field(artist, values, grid)
            ax.set_title(text, fontsize=9)
        return [artist for _, artist, _ in panels]

    draw(0)
    anim = animation.FuncAnimation(fig, draw, frames=len(positions), blit=False, repeat=False)
    anim.save(path, writer=writer, dpi=dpi)
    return path
