"""Drawing fields on maps: the rain colour scale, figures, map axes, fields and motion arrows.

Figures are made without pyplot (:func:`new_figure`): pyplot's global figure
manager never holds them, so in a notebook a plot shows once (as the cell's
result), not a second time through the inline backend, and scripts that make
many plots do not accumulate open figures. Show one in a window with
``matplotlib.pyplot.figure(fig); matplotlib.pyplot.show()``, or save it.

Rain rates use a discrete colour scale with the usual logarithmic-ish levels
(:data:`RAIN_LEVELS`, values below the first level are transparent), and
coastlines and borders come from local Natural Earth files
(:mod:`xnowcast.plotting.natural_earth`; nothing is downloaded).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.checks import choice, real
from xnowcast.optional import import_optional
from xnowcast.plotting.grid import MapGrid
from xnowcast.plotting.natural_earth import FEATURES, RESOLUTIONS, add_features

__all__ = [
    "CONTINUOUS_COLORMAP",
    "NO_DATA_COLOR",
    "RAIN_COLORS",
    "RAIN_LEVELS",
    "MapStyle",
    "add_map_axes",
    "colour_scale_for",
    "degree_label",
    "new_figure",
    "plot_field",
    "plot_motion",
    "rain_colormap",
    "save_figure",
    "update_field",
]

#: Colour-scale levels for rain rates (mm/h): below 0.1 is transparent.
RAIN_LEVELS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: Colour of missing data (NaN: outside radar range); dry areas are left white.
NO_DATA_COLOR = "#e4e4e4"
#: One colour per interval between :data:`RAIN_LEVELS` (light blue to purple).
RAIN_COLORS = (
    "#c6e5fa",
    "#7cc1f0",
    "#2e8fe0",
    "#1a5fb4",
    "#2db84c",
    "#f6e31c",
    "#f79a1e",
    "#e3261b",
    "#a3186e",
)


def _matplotlib(module: str) -> Any:
    """``matplotlib.<module>``, or the install hint of the ``plot`` extra."""
    return import_optional(f"matplotlib.{module}", "plotting")


def rain_colormap(
    levels: Sequence[float] | None = None, colors: Sequence[Any] | None = None
) -> tuple[Any, Any]:
    """A discrete colormap and :class:`~matplotlib.colors.BoundaryNorm` for rain rates.

    Parameters
    ----------
    levels : sequence of float, optional
        Increasing boundaries (default :data:`RAIN_LEVELS`); values below the
        first are transparent, values above the last get the last colour,
        missing values (NaN) are light grey (:data:`NO_DATA_COLOR`).
    colors : sequence of colours, optional
        ``len(levels) - 1`` colours (default: :data:`RAIN_COLORS`, resampled
        when the number of levels differs).

    Returns
    -------
    cmap : matplotlib.colors.ListedColormap
    norm : matplotlib.colors.BoundaryNorm

    Examples
    --------
    >>> cmap, norm = rain_colormap()
    >>> cmap.N, int(norm(3.0))
    (9, 4)
    """
    mcolors = _matplotlib("colors")
    try:
        bounds = np.asarray(RAIN_LEVELS if levels is None else levels, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"levels must be at least two increasing numbers, got {levels!r}"
        ) from None
    if bounds.ndim != 1 or bounds.size < 2 or (np.diff(bounds) <= 0).any():
        raise ValueError(f"levels must be at least two increasing numbers, got {bounds.tolist()}")
    n = bounds.size - 1
    if colors is None:
        ramp = mcolors.LinearSegmentedColormap.from_list("rain", RAIN_COLORS)
        colors = (
            RAIN_COLORS if n == len(RAIN_COLORS) else [ramp(i / max(n - 1, 1)) for i in range(n)]
        )
    if len(colors) != n:
        raise ValueError(
            f"give one colour per interval: {n} colours for {n + 1} levels, got {len(colors)}"
        )
    cmap = mcolors.ListedColormap(list(colors), name="xnowcast_rain")
    cmap = cmap.with_extremes(under=(0, 0, 0, 0), over=cmap(n - 1), bad=NO_DATA_COLOR)
    return cmap, mcolors.BoundaryNorm(bounds, n)


@dataclass(frozen=True)
class MapStyle:
    """How forecast maps look: colour scale, map features and panel size, checked once.

    :func:`~xnowcast.plotting.plot_forecast` and :func:`~xnowcast.plotting.animate`
    take it as ``style=`` (a MapStyle or a dict of its fields) or field by field as
    keywords (``levels=[...]``, which override ``style``).

    Attributes
    ----------
    levels, colors : optional
        Colour scale (see :func:`rain_colormap`).
    features : str or sequence of str
        Natural Earth features (``"coastline"``, ``"borders"``, ``"lakes"``,
        ``"rivers"``; one name is one feature), kept as a tuple.
    resolution : {"10m", "50m", "110m"}
        Natural Earth resolution.
    panel_size : float, optional
        Width of one panel in inches (default: the plot's own).

    Examples
    --------
    >>> MapStyle(features="coastline").features
    ('coastline',)
    >>> MapStyle.from_options({"levels": [1, 2, 4]}, panel_size=2).panel_size
    2.0
    >>> MapStyle(resolution="1m")
    Traceback (most recent call last):
    ...
    ValueError: resolution must be one of '10m', '50m', '110m'; got '1m'
    """

    levels: Sequence[float] | None = None
    colors: Sequence[Any] | None = None
    features: Sequence[str] = ("coastline", "borders")
    resolution: str = "50m"
    panel_size: float | None = None

    def __post_init__(self) -> None:
        features = (self.features,) if isinstance(self.features, str) else tuple(self.features)
        unknown = [f for f in features if f not in FEATURES]
        if unknown:
            raise ValueError(
                f"unknown map feature {unknown[0]!r}; choose from {', '.join(FEATURES)}"
            )
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "resolution", choice(self.resolution, "resolution", RESOLUTIONS))
        if self.panel_size is not None:
            size = real(self.panel_size, "panel_size", low=0, low_inclusive=False)
            object.__setattr__(self, "panel_size", size)
        self.colormap()  # levels and colors are checked by building the colour scale

    def colormap(self) -> tuple[Any, Any]:
        """``(cmap, norm)`` of the colour scale (see :func:`rain_colormap`)."""
        return rain_colormap(self.levels, self.colors)

    @classmethod
    def from_options(
        cls, style: MapStyle | Mapping[str, Any] | None = None, **options: Any
    ) -> MapStyle:
        """``style`` (a MapStyle, a dict of its fields, or None) with ``options`` replacing fields.

        Raises
        ------
        TypeError
            An option that is not a field, or a ``style`` of another type.
        """
        names = [f.name for f in fields(cls)]
        if style is None:
            base: dict[str, Any] = {}
        elif isinstance(style, MapStyle):
            base = {name: getattr(style, name) for name in names}
        elif isinstance(style, Mapping):
            base = dict(style)
        else:
            raise TypeError(
                f"style must be a MapStyle or a dict of its fields ({', '.join(names)}), "
                f"got {type(style).__name__}"
            )
        unknown = sorted(set(base) - set(names)) + sorted(set(options) - set(names))
        if unknown:
            raise TypeError(
                f"unexpected keyword(s) {unknown}: the map style options are "
                f"{', '.join(names)} (xnowcast.plotting.MapStyle)"
            )
        return cls(**{**base, **options})


#: Colours of continuous fields (satellite channels): dark to bright.
CONTINUOUS_COLORMAP = "cividis"


def colour_scale_for(
    look: MapStyle, da: xr.DataArray, obs: Any, var: str | None = None
) -> tuple[MapStyle, xr.DataArray, Any]:
    """The style, forecast and observations to draw, with a colour scale that suits the field.

    Levels given in ``look`` are kept. Otherwise a continuous field (a
    satellite channel, :func:`xnowcast.transforms.is_continuous`) gets 16
    levels over its value range (its ``valid_range``, else its first lead
    time's range rounded out, as the optical-flow transform does) in
    :data:`CONTINUOUS_COLORMAP`; precipitation gets the rain-rate levels,
    converted to a rain rate (and said so) or refused with the fix
    (:func:`xnowcast.units.rain_rate_pair`).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> sat = xr.DataArray(np.linspace(12.0, 861.0, 8).reshape(1, 2, 4),
    ...                    dims=("lead_time", "y", "x"), attrs={"units": "1"})
    >>> look, _, _ = colour_scale_for(MapStyle(), sat, None)
    >>> look.levels[0], look.levels[-1], len(look.colors)
    (0.0, 900.0, 16)
    """
    from xnowcast.transforms import continuous_transform, is_continuous
    from xnowcast.units import rain_rate_pair

    if look.levels is not None:
        return look, da, obs
    if not is_continuous(da):
        da, obs = rain_rate_pair(da, obs, "the default colour levels", var=var)
        return look, da, obs
    first = da.isel({da.dims[0]: 0}).values if da.ndim == 3 else da.values
    scale = continuous_transform(da, first)
    ramp = _matplotlib("pyplot").get_cmap(CONTINUOUS_COLORMAP)
    levels = np.linspace(scale["vmin"], scale["vmax"], 17).tolist()
    colors = [ramp(i / 15) for i in range(16)]
    return MapStyle.from_options(look, levels=levels, colors=colors), da, obs


def new_figure(**kwargs: Any) -> Any:
    """A matplotlib Figure that pyplot does not manage.

    Such a figure displays once in a notebook (as the value of the cell, not
    again by the inline backend), is freed when no longer referenced, and
    saves with ``fig.savefig``. To show it in a window, hand it to pyplot
    first: ``plt.figure(fig); plt.show()``.

    Parameters
    ----------
    **kwargs
        Passed to :class:`matplotlib.figure.Figure` (``figsize``, ``layout``...).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = new_figure(figsize=(3, 2))
    >>> fig.get_size_inches().tolist(), plt.get_fignums()
    ([3.0, 2.0], [])
    """
    return _matplotlib("figure").Figure(**kwargs)


def save_figure(
    fig: Any, path: str | os.PathLike | None, dpi: int, *, overwrite: bool = False
) -> Any:
    """Save ``fig`` to ``path`` (format from the suffix) when a path is given; return ``fig``.

    The file is written through a temporary sibling and renamed into place
    (:func:`xnowcast.io.output.atomic_output`): an existing file is replaced
    only with ``overwrite=True``, and never by a half-written one.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> fig = new_figure(figsize=(2, 2))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_figure(fig, Path(tmp) / "empty.png", dpi=50)
    ...     (Path(tmp) / "empty.png").stat().st_size > 0
    True
    """
    if path is not None:
        from xnowcast.io.output import atomic_output

        with atomic_output(path, overwrite=overwrite) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return fig


def add_map_axes(fig: Any, nrows: int, ncols: int, index: int, grid: MapGrid) -> Any:
    """Subplot ``index`` of an ``nrows`` x ``ncols`` layout, in the grid's projection if any.

    Examples
    --------
    >>> import numpy as np
    >>> ax = add_map_axes(new_figure(), 1, 2, 1, MapGrid("plain", np.arange(3), np.arange(3)))
    >>> ax.get_subplotspec().colspan.start
    0
    """
    if grid.is_map:
        return fig.add_subplot(nrows, ncols, index, projection=grid.projection)
    return fig.add_subplot(nrows, ncols, index)


def plot_field(
    ax: Any,
    values: np.ndarray,
    grid: MapGrid,
    *,
    cmap: Any = None,
    norm: Any = None,
    features: Sequence[str] = ("coastline", "borders"),
    resolution: str = "50m",
    gridlines: bool = True,
) -> Any:
    """Draw one 2-D field on ``ax`` (made for ``grid``); return the artist.

    Regular grids are drawn as an image (:meth:`~matplotlib.axes.Axes.imshow`,
    in the grid's own projection, so without resampling), others as a mesh;
    update the returned artist with :func:`update_field`.

    Map axes get coastlines and borders when their shapefiles are available
    locally (see :mod:`xnowcast.plotting.natural_earth`) and, with
    ``gridlines``, dotted meridians and parallels (drawn without any data
    files, so that offline maps still show where they are).

    Parameters
    ----------
    ax : Axes
        A panel made by :func:`add_map_axes` for ``grid``.
    values : numpy.ndarray
        The ``(y, x)`` field; NaN is drawn as missing data.
    grid : MapGrid
        The field's grid (:func:`xnowcast.plotting.map_grid`).
    cmap, norm : optional
        Colour scale (default :func:`rain_colormap`).
    features : str or sequence of str
        Natural Earth features of map axes.
    resolution : {"10m", "50m", "110m"}
        Natural Earth resolution.
    gridlines : bool
        Draw meridians and parallels on map axes.

    Returns
    -------
    matplotlib.image.AxesImage or matplotlib.collections.QuadMesh

    Examples
    --------
    >>> import numpy as np
    >>> grid = MapGrid("plain", np.arange(4.0), np.arange(3.0))
    >>> ax = add_map_axes(new_figure(), 1, 1, 1, grid)
    >>> image = plot_field(ax, np.full((3, 4), 2.0), grid)
    >>> image.get_array().shape, ax.get_xlabel()
    ((3, 4), 'x')
    """
    if cmap is None or norm is None:
        cmap, norm = rain_colormap()
    values = np.ma.masked_invalid(np.asarray(values, dtype=float))
    kwargs: dict[str, Any] = {"cmap": cmap, "norm": norm}
    if grid.is_map:
        kwargs["transform"] = grid.transform
    if grid.is_regular:
        mesh = ax.imshow(
            grid.as_image(values),
            extent=grid.image_extent(),
            origin="upper",
            interpolation="nearest",
            **kwargs,
        )
    else:
        mesh = ax.pcolormesh(grid.x, grid.y, values, shading="auto", **kwargs)
    if grid.is_map and grid.extent is not None:
        ax.set_extent(grid.extent, crs=grid.transform)
        add_features(ax, features, resolution)
        if gridlines:
            _graticule(ax, grid)
    else:
        ax.set_aspect("equal")
        ax.set_xlabel(grid.xlabel)
        ax.set_ylabel(grid.ylabel)
    return mesh


def _nice_step(span: float) -> float:
    for step in (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0):
        if span / step <= 6:
            return step
    return 60.0


def _graticule(ax: Any, grid: MapGrid) -> None:
    """Dotted meridians and parallels labelled in degrees (cheaper than cartopy's gridliner).

    Meridians are labelled below the map where they leave its bottom edge,
    parallels left of it where they cross its left edge.
    """
    import cartopy.crs as ccrs

    geo = ccrs.PlateCarree()
    if grid.extent is None:
        return
    x0, x1, y0, y1 = grid.extent
    if grid.kind == "latlon":
        lon_min, lon_max, lat_min, lat_max = x0, x1, y0, y1
    else:
        t = np.linspace(0.0, 1.0, 50)
        px = np.concatenate(
            [x0 + (x1 - x0) * t, np.full(50, x1), x1 - (x1 - x0) * t, np.full(50, x0)]
        )
        py = np.concatenate(
            [np.full(50, y0), y0 + (y1 - y0) * t, np.full(50, y1), y1 - (y1 - y0) * t]
        )
        ll = geo.transform_points(grid.transform, px, py)
        if not np.isfinite(ll[:, :2]).all():
            return
        lon_min, lon_max = ll[:, 0].min(), ll[:, 0].max()
        lat_min, lat_max = ll[:, 1].min(), ll[:, 1].max()
    step = _nice_step(max(lon_max - lon_min, lat_max - lat_min))
    dense = np.linspace(0.0, 1.0, 100)
    lines = [
        (np.full(100, lon), lat_min + (lat_max - lat_min) * dense)
        for lon in np.arange(np.ceil(lon_min / step) * step, lon_max, step)
    ]
    n_meridians = len(lines)
    lines += [
        (lon_min + (lon_max - lon_min) * dense, np.full(100, lat))
        for lat in np.arange(np.ceil(lat_min / step) * step, lat_max, step)
    ]
    edge = ax.get_extent(crs=ax.projection)
    for k, (lon, lat) in enumerate(lines):
        xy = ax.projection.transform_points(geo, lon, lat)
        ax.plot(xy[:, 0], xy[:, 1], transform=ax.projection, color="0.45", lw=0.4, ls=":", zorder=2)
        meridian = k < n_meridians
        _label_line(ax, xy, edge, meridian, degree_label(lon[0] if meridian else lat[0], meridian))


def degree_label(value: float, is_lon: bool) -> str:
    """A gridline label in degrees: ``5°E``, ``12.5°W``, ``52°N``, ``0°``.

    Examples
    --------
    >>> degree_label(5.0, True), degree_label(-12.5, True), degree_label(52, False)
    ('5°E', '12.5°W', '52°N')
    >>> degree_label(0.0, False)
    '0°'
    """
    value = round(float(value), 4)
    hemisphere = "" if value == 0 else ("E" if value > 0 else "W") if is_lon else "NS"[value < 0]
    return f"{abs(value):g}°{hemisphere}"


def _label_line(
    ax: Any, xy: np.ndarray, edge: tuple[float, ...], meridian: bool, text: str
) -> None:
    """Label a meridian where it crosses the bottom edge, a parallel at the left edge."""
    x0, x1, y0, y1 = edge
    axis, other = (1, 0) if meridian else (0, 1)
    level = y0 if meridian else x0
    lo, hi = (x0, x1) if meridian else (y0, y1)
    along, across = xy[:, axis], xy[:, other]
    ok = np.isfinite(along) & np.isfinite(across)
    along, across = along[ok], across[ok]
    cross = np.flatnonzero(np.diff(np.sign(along - level)) != 0)
    if len(cross) == 0:
        return
    i = int(cross[0])
    t = (level - along[i]) / (along[i + 1] - along[i])
    at = across[i] + t * (across[i + 1] - across[i])
    if not lo <= at <= hi:
        return
    pos = (at, level) if meridian else (level, at)
    ax.annotate(
        text,
        xy=pos,
        xycoords=ax.transData,
        xytext=(0, -3) if meridian else (-3, 0),
        textcoords="offset points",
        ha="center" if meridian else "right",
        va="top" if meridian else "center",
        fontsize=7,
        color="0.3",
        annotation_clip=False,
    )


def update_field(artist: Any, values: np.ndarray, grid: MapGrid) -> None:
    """Replace the field drawn by :func:`plot_field` (for animations).

    Examples
    --------
    >>> import numpy as np
    >>> grid = MapGrid("plain", np.arange(4.0), np.arange(3.0))
    >>> ax = add_map_axes(new_figure(), 1, 1, 1, grid)
    >>> image = plot_field(ax, np.zeros((3, 4)), grid)
    >>> update_field(image, np.full((3, 4), 5.0), grid)
    >>> float(image.get_array().max())
    5.0
    """
    values = np.ma.masked_invalid(np.asarray(values, dtype=float))
    if grid.is_regular:
        artist.set_data(grid.as_image(values))
    else:
        artist.set_array(values)


def _motion_components(motion: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(u, v)`` in pixels per step along the array axes from the supported inputs."""
    if isinstance(motion, xr.Dataset):
        if "u" not in motion or "v" not in motion:
            raise ValueError(
                "a motion Dataset needs variables 'u' and 'v' (pixels per step along the array "
                f"axes, as made by xnowcast.motion.motion); it has {list(motion.data_vars)}"
            )
        u, v = motion["u"], motion["v"]
        if u.ndim != 2:
            raise ValueError(
                f"the motion field has dims {u.dims}; select one time, e.g. motion.isel(time=-1)"
            )
        return np.asarray(u.values, dtype=float), np.asarray(v.values, dtype=float)
    arr = np.asarray(motion.values if isinstance(motion, xr.DataArray) else motion, dtype=float)
    if arr.ndim != 3 or arr.shape[0] != 2:
        raise ValueError(
            f"motion must be a Dataset with u/v or an array of shape (2, y, x) (u, v in pixels "
            f"per step, pysteps' convention); got shape {arr.shape}"
        )
    return arr[0], arr[1]


def plot_motion(
    ax: Any,
    motion: Any,
    grid: MapGrid,
    *,
    every: int | None = None,
    color: str = "0.1",
    **quiver_kwargs: Any,
) -> Any:
    """Overlay motion vectors (quiver) on a map made by :func:`plot_field`.

    Parameters
    ----------
    ax : Axes
        The panel.
    motion : Dataset, DataArray or numpy.ndarray
        The motion field on the panel's grid: a Dataset with ``u``, ``v`` in
        pixels per time step along the array axes (what
        :func:`xnowcast.motion.motion` returns), or a ``(2, y, x)`` array of
        ``(u, v)`` (pysteps' convention).
    grid : MapGrid
        The panel's grid.
    every : int, optional
        Draw every ``every``-th vector in each direction (default: about 20
        arrows across the field).
    color : str
        Arrow colour.
    **quiver_kwargs
        Passed to :meth:`matplotlib.axes.Axes.quiver`.

    Returns
    -------
    matplotlib.quiver.Quiver

    Examples
    --------
    >>> import numpy as np
    >>> grid = MapGrid("plain", np.arange(40.0), np.arange(40.0))
    >>> ax = add_map_axes(new_figure(), 1, 1, 1, grid)
    >>> arrows = plot_motion(ax, np.ones((2, 40, 40)), grid, every=10)
    >>> arrows.U.size  # every 10th vector in each direction
    16
    """
    u, v = _motion_components(motion)
    ny, nx = u.shape
    if grid.x.ndim == 1 and (grid.x.size, grid.y.size) != (nx, ny):
        raise ValueError(
            f"the motion field is {ny} x {nx} cells, the map {grid.y.size} x "
            f"{grid.x.size}; give the motion of the forecast's grid"
        )
    step = every or max(1, max(ny, nx) // 20)
    sl = (slice(step // 2, None, step), slice(step // 2, None, step))
    if grid.x.ndim == 1:
        xx, yy = np.meshgrid(grid.x, grid.y)
        # pixels per step along the array axes -> displacement in coordinate units
        du = u * np.gradient(grid.x)[None, :]
        dv = v * np.gradient(grid.y)[:, None]
    else:
        xx, yy = grid.x, grid.y
        du = u * np.gradient(grid.x, axis=1)
        dv = v * np.gradient(grid.y, axis=0)
    kwargs = {"angles": "xy", "color": color, "width": 0.003, "zorder": 4, **quiver_kwargs}
    if grid.is_map:
        kwargs.setdefault("transform", grid.transform)
    return ax.quiver(xx[sl], yy[sl], du[sl], dv[sl], **kwargs)
