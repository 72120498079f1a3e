"""Maps, skill plots and animations of forecasts (matplotlib, cartopy, Pillow).

* :func:`plot_forecast`: map panels per lead time in the cube's own
  projection, rain-rate colour scale, coastlines and borders, optional
  observed row and motion vectors;
* :func:`plot_skill`: scores of :func:`xnowcast.verify` against lead time;
* :func:`plot_reliability`, :func:`plot_rank_histogram`: reliability diagram
  and rank histogram of ensemble scores;
* :func:`animate`: observed and forecast fields side by side, one frame per
  lead time, as GIF (Pillow) or MP4 (ffmpeg);
* :func:`set_natural_earth_dir`: where the offline Natural Earth shapefiles
  are (nothing is ever downloaded; see :mod:`.natural_earth`).

The building blocks, one module each: :mod:`.grid` (how a cube's grid goes
on a map, from its CF grid mapping), :mod:`.draw` (colour scale, figures, map
axes, fields, motion arrows), :mod:`.frames` (init time, lead times,
observations and labels of the frames drawn). Figures are made without
pyplot, so a notebook shows each plot once.

Nothing here is imported by ``import xnowcast``.
"""

from xnowcast.plotting.animate import animate
from xnowcast.plotting.draw import (
    RAIN_LEVELS,
    MapStyle,
    plot_field,
    plot_motion,
    rain_colormap,
)
from xnowcast.plotting.grid import map_grid
from xnowcast.plotting.maps import plot_forecast
from xnowcast.plotting.natural_earth import set_natural_earth_dir
from xnowcast.plotting.probabilistic import plot_rank_histogram, plot_reliability
from xnowcast.plotting.probability import plot_probability
from xnowcast.plotting.skill import plot_skill

__all__ = [
    "RAIN_LEVELS",
    "MapStyle",
    "animate",
    "map_grid",
    "plot_field",
    "plot_forecast",
    "plot_motion",
    "plot_probability",
    "plot_rank_histogram",
    "plot_reliability",
    "plot_skill",
    "rain_colormap",
    "set_natural_earth_dir",
]
