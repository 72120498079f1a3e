"""Forecast maps: panels per lead time in the cube's own projection.

The map projection comes from the cube's CF grid mapping
(:func:`xnowcast.conventions.grid_crs`, a :class:`pyproj.CRS`, handed to
cartopy as ``cartopy.crs.Projection(crs)``), so the fields are drawn on their
native grid without resampling. A cube without a usable grid mapping but with
2-D ``lat``/``lon`` coordinates is drawn on an equal-area map centred on the
data; without either (or without cartopy) on plain ``x``/``y`` axes.

Rain rates use a discrete colour scale with the usual logarithmic-ish levels
(:data:`RAIN_LEVELS`, values below the first level are transparent), and
coastlines and borders come from local Natural Earth files
(:mod:`xnowcast.plotting.natural_earth`; nothing is downloaded).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import integer, real
from xnowcast.conventions import (
    INIT_TIME,
    LEAD_TIME,
    VALID_TIME,
    as_dataarray,
    as_interval,
    as_times,
    find_latlon,
    find_spatial_dims,
    grid_crs,
    match_grid,
    normalize_cube,
)
from xnowcast.optional import import_optional

__all__ = [
    "NO_DATA_COLOR",
    "RAIN_COLORS",
    "RAIN_LEVELS",
    "MapGrid",
    "map_grid",
    "plot_field",
    "plot_forecast",
    "plot_motion",
    "rain_colormap",
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


def _pyplot():
    return import_optional("matplotlib.pyplot", "plotting")


def rain_colormap(levels: Sequence[float] | None = None, colors: Sequence[str] | None = None):
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
    from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, ListedColormap

    try:
        levels = np.asarray(RAIN_LEVELS if levels is None else levels, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"levels must be at least two increasing numbers, got {levels!r}"
        ) from None
    if levels.ndim != 1 or levels.size < 2 or (np.diff(levels) <= 0).any():
        raise ValueError(f"levels must be at least two increasing numbers, got {levels.tolist()}")
    n = levels.size - 1
    if colors is None:
        colors = (
            RAIN_COLORS
            if n == len(RAIN_COLORS)
            else [
                LinearSegmentedColormap.from_list("rain", RAIN_COLORS)(i / max(n - 1, 1))
                for i in range(n)
            ]
        )
    if len(colors) != n:
        raise ValueError(
            f"give one colour per interval: {n} colours for {n + 1} levels, got {len(colors)}"
        )
    cmap = ListedColormap(list(colors), name="xnowcast_rain")
    cmap = cmap.with_extremes(under=(0, 0, 0, 0), over=cmap(n - 1), bad=NO_DATA_COLOR)
    return cmap, BoundaryNorm(levels, n)


# ------------------------------------------------------------------------ map grid


@dataclass
class MapGrid:
    """How a field is put on a map.

    Attributes
    ----------
    kind : {"projected", "latlon", "plain"}
        Native projection from the grid mapping; 2-D lat/lon on an equal-area
        map; or plain axes.
    x, y : numpy.ndarray
        Coordinates for ``pcolormesh`` (1-D in the projection's units, or 2-D
        longitude/latitude).
    projection : cartopy.crs.Projection or None
        The axes' projection.
    transform : cartopy.crs.CRS or None
        The CRS of ``x``/``y``.
    extent : tuple of float or None
        ``(x0, x1, y0, y1)`` in ``transform`` coordinates.
    xlabel, ylabel : str
        Axis labels of plain axes.
    """

    kind: str
    x: np.ndarray
    y: np.ndarray
    projection: Any = None
    transform: Any = None
    extent: tuple[float, float, float, float] | None = None
    xlabel: str = "x"
    ylabel: str = "y"

    @property
    def is_map(self) -> bool:
        """True when drawn on cartopy axes."""
        return self.projection is not None

    @property
    def is_regular(self) -> bool:
        """Evenly spaced 1-D coordinates: drawn as an image (fast) instead of a mesh."""
        if self.x.ndim != 1 or self.y.ndim != 1 or self.x.size < 2 or self.y.size < 2:
            return False
        return all(
            np.allclose(np.diff(c), c[1] - c[0], rtol=1e-6, atol=0) and c[1] != c[0]
            for c in (self.x, self.y)
        )

    def image_extent(self) -> tuple[float, float, float, float]:
        """``(left, right, bottom, top)`` of the cell edges of a regular grid."""
        dx, dy = abs(self.x[1] - self.x[0]), abs(self.y[1] - self.y[0])
        return (
            self.x.min() - dx / 2,
            self.x.max() + dx / 2,
            self.y.min() - dy / 2,
            self.y.max() + dy / 2,
        )

    def as_image(self, values: np.ndarray) -> np.ndarray:
        """A ``(y, x)`` field flipped so that row 0 is the top and column 0 the left."""
        if self.x[1] < self.x[0]:
            values = values[:, ::-1]
        if self.y[1] > self.y[0]:
            values = values[::-1]
        return values


def _cartopy():
    try:
        import cartopy.crs as ccrs
    except ImportError:
        return None
    return ccrs


def _unit_factor(coord: xr.DataArray) -> float | None:
    from xnowcast.conventions import metres_per_unit

    return metres_per_unit(coord)


def _projected_grid(da: xr.DataArray, y_dim: str, x_dim: str, ccrs) -> MapGrid | None:
    crs = grid_crs(da)
    if crs is None or y_dim not in da.coords or x_dim not in da.coords:
        return None
    x = np.asarray(da[x_dim].values, dtype=float)
    y = np.asarray(da[y_dim].values, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.size < 2 or y.size < 2:
        return None
    if crs.is_geographic:
        proj = ccrs.PlateCarree()
        return MapGrid("projected", x, y, proj, proj, (x.min(), x.max(), y.min(), y.max()))
    base = crs.source_crs if crs.is_bound else crs
    axis_factor = base.axis_info[0].unit_conversion_factor if base.axis_info else 1.0
    factors = [_unit_factor(da[d]) for d in (x_dim, y_dim)]
    if None not in factors:
        x, y = x * factors[0] / axis_factor, y * factors[1] / axis_factor
    if not _consistent_with_latlon(da, crs, x, y):
        # a grid mapping written in kilometres (KNMI's composites): rescale it to metres
        crs = _kilometre_crs_in_metres(crs)
        if crs is None or not _consistent_with_latlon(da, crs, x, y):
            return None
    dx, dy = abs(x[1] - x[0]), abs(y[1] - y[0])
    extent = (x.min() - dx / 2, x.max() + dx / 2, y.min() - dy / 2, y.max() + dy / 2)
    try:
        proj = _projection(crs, extent, ccrs)
    except Exception:  # cartopy cannot handle this CRS: use lat/lon instead
        return None
    return MapGrid("projected", x, y, proj, proj, extent)


def _kilometre_crs_in_metres(crs):
    """``crs`` with its Earth ellipsoid (given in km, labelled metres) and offsets in metres.

    Some radar files (the shared KNMI composite) write the ellipsoid's semi-axes
    in kilometres (``a=6378.137``) for a grid in km. PROJ takes that for a body
    1000 times smaller than the Earth and refuses to transform it to WGS84.
    Returns ``None`` for any other CRS.
    """
    from pyproj import CRS

    ellipsoid = crs.ellipsoid
    if ellipsoid is None or not 6.3e3 < ellipsoid.semi_major_metre < 6.4e3:
        return None
    cf = {k: v for k, v in crs.to_cf().items() if k not in ("crs_wkt", "spatial_ref")}
    for key in (
        "semi_major_axis",
        "semi_minor_axis",
        "earth_radius",
        "false_easting",
        "false_northing",
    ):
        if isinstance(cf.get(key), (int, float)):
            cf[key] = float(cf[key]) * 1000.0
    try:
        return CRS.from_cf(cf)
    except Exception:
        return None


def _consistent_with_latlon(da: xr.DataArray, crs, x: np.ndarray, y: np.ndarray) -> bool:
    """The grid mapping can be transformed to WGS84 and agrees with lat/lon coordinates."""
    from pyproj import Transformer

    try:
        to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        iy, ix = y.size // 2, x.size // 2
        lon, lat = to_geo.transform(x[ix], y[iy])
    except Exception:
        return False
    if not (np.isfinite(lon) and np.isfinite(lat)):
        return False
    lat_name, lon_name = find_latlon(da)
    if lat_name is None or lon_name is None or da[lat_name].ndim != 2:
        return True
    ref_lat = float(da[lat_name].isel({da[lat_name].dims[0]: iy, da[lat_name].dims[1]: ix}))
    ref_lon = float(da[lon_name].isel({da[lon_name].dims[0]: iy, da[lon_name].dims[1]: ix}))
    return abs(ref_lat - lat) < 0.05 and abs((ref_lon - lon + 180) % 360 - 180) < 0.05


def _projection(crs, extent, ccrs):
    """A cartopy projection of ``crs`` whose domain is the data extent with a margin."""

    class GridProjection(ccrs.Projection):
        """The cube's grid mapping as a cartopy projection, bounded by the data."""

        def __init__(self, crs, bounds):
            super().__init__(crs)
            self.bounds = bounds
            self.threshold = min(bounds[1] - bounds[0], bounds[3] - bounds[2]) / 1000.0

    x0, x1, y0, y1 = extent
    mx, my = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
    return GridProjection(crs, (x0 - mx, x1 + mx, y0 - my, y1 + my))


def _latlon_grid(da: xr.DataArray, ccrs) -> MapGrid | None:
    lat_name, lon_name = find_latlon(da)
    if lat_name is None or lon_name is None:
        return None
    lat = np.asarray(da[lat_name].values, dtype=float)
    lon = np.asarray(da[lon_name].values, dtype=float)
    if lat.ndim == 1 and lon.ndim == 1:
        lon, lat = np.meshgrid(lon, lat)
    if lat.ndim != 2 or not np.isfinite(lat).any():
        return None
    lat0, lon0 = float(np.nanmean(lat)), float(np.nanmean(lon))
    proj = ccrs.LambertAzimuthalEqualArea(central_longitude=lon0, central_latitude=lat0)
    extent = (np.nanmin(lon), np.nanmax(lon), np.nanmin(lat), np.nanmax(lat))
    return MapGrid("latlon", lon, lat, proj, ccrs.PlateCarree(), extent)


def map_grid(da: xr.DataArray) -> MapGrid:
    """Work out how to map a field ``(..., y, x)`` (see :class:`MapGrid`).

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> map_grid(synthetic_radar(n_times=2, size=16)).kind
    'projected'
    >>> map_grid(synthetic_radar(n_times=2, size=16).drop_vars(["crs", "lat", "lon"])).kind
    'plain'
    """
    y_dim, x_dim = da.dims[-2], da.dims[-1]
    ccrs = _cartopy()
    if ccrs is not None:
        grid = _projected_grid(da, y_dim, x_dim, ccrs) or _latlon_grid(da, ccrs)
        if grid is not None:
            return grid
    x = da[x_dim].values if x_dim in da.coords else np.arange(da.sizes[x_dim])
    y = da[y_dim].values if y_dim in da.coords else np.arange(da.sizes[y_dim])

    def label(dim: str) -> str:
        units = da[dim].attrs.get("units") if dim in da.coords else None
        return f"{dim} ({units})" if units else str(dim)

    return MapGrid("plain", np.asarray(x), np.asarray(y), xlabel=label(x_dim), ylabel=label(y_dim))


# ---------------------------------------------------------------------- drawing


def _add_axes(fig, nrows: int, ncols: int, index: int, grid: MapGrid):
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
):
    """Draw one 2-D field on ``ax`` (made for ``grid``); return the artist.

    Regular grids are drawn as an image (:meth:`~matplotlib.axes.Axes.imshow`,
    in the grid's own projection, so without resampling), others as a mesh;
    update the returned artist with :func:`update_field`.

    Map axes get coastlines and borders when their shapefiles are available
    locally (see :mod:`xnowcast.plotting.natural_earth`) and, with
    ``gridlines``, dotted meridians and parallels (drawn without any data
    files, so that offline maps still show where they are).
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
    if grid.is_map:
        from xnowcast.plotting.natural_earth import add_features

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
    """Dotted meridians and parallels, projected once (cheaper than cartopy's gridliner)."""
    import cartopy.crs as ccrs

    geo = ccrs.PlateCarree()
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
    lines += [
        (lon_min + (lon_max - lon_min) * dense, np.full(100, lat))
        for lat in np.arange(np.ceil(lat_min / step) * step, lat_max, step)
    ]
    for lon, lat in lines:
        xy = ax.projection.transform_points(geo, lon, lat)
        ax.plot(xy[:, 0], xy[:, 1], transform=ax.projection, color="0.45", lw=0.4, ls=":", zorder=2)


def update_field(artist: Any, values: np.ndarray, grid: MapGrid) -> None:
    """Replace the field drawn by :func:`plot_field` (for animations)."""
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
):
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


# ------------------------------------------------------------------- forecasts


def _field(obj: xr.DataArray | xr.Dataset, var: str | None) -> xr.DataArray:
    """The variable, with its grid-mapping variable kept as a coordinate."""
    if isinstance(obj, xr.Dataset):
        names = [var] if var else [n for n, v in obj.data_vars.items() if v.ndim >= 2]
        gm = {str(obj[n].attrs.get("grid_mapping")) for n in names if n in obj}
        obj = obj.set_coords([g for g in gm if g in obj.data_vars])
    return as_dataarray(obj, var)


def select_init(fc: xr.DataArray, init_time: Any = None) -> xr.DataArray:
    """The ``(lead_time, y, x)`` forecast of one init time.

    ``init_time`` may be a time, a position (int) or ``None`` (the forecast's
    only init time).
    """
    if LEAD_TIME not in fc.dims:
        raise ValueError(
            f"expected a forecast with a {LEAD_TIME!r} dimension (as made by xnowcast.forecast), "
            f"got dims {tuple(map(str, fc.dims))}; plot a single frame with .plot()"
        )
    position = isinstance(init_time, (int, np.integer)) and not isinstance(init_time, bool)
    if init_time is not None and not position:
        wanted = as_times(init_time, "init_time")
        if len(wanted) != 1:
            raise ValueError(f"init_time takes one time or position, got {init_time!r}")
        wanted = wanted[0]
    if INIT_TIME not in fc.dims:
        if (
            init_time is not None
            and not position
            and INIT_TIME in fc.coords
            and wanted != pd.Timestamp(fc[INIT_TIME].values)
        ):
            raise ValueError(
                f"this forecast starts at {pd.Timestamp(fc[INIT_TIME].values)}, not {wanted}"
            )
        return fc
    n = fc.sizes[INIT_TIME]
    if init_time is None:
        if n == 1:
            return fc.isel({INIT_TIME: 0})
        first, last = (pd.Timestamp(t) for t in fc[INIT_TIME].values[[0, -1]])
        raise ValueError(
            f"the forecast has {n} init times ({first} to {last}); choose one with "
            "init_time=<time or position> (--init-time on the command line), e.g. "
            "init_time=-1 for the latest"
        )
    if position:
        if not -n <= init_time < n:
            raise ValueError(
                f"init_time position {init_time} is out of range: the forecast has "
                f"{n} init times (positions 0 to {n - 1}, or -1 for the latest)"
            )
        return fc.isel({INIT_TIME: int(init_time)})
    try:
        return fc.sel({INIT_TIME: wanted})
    except KeyError:
        raise ValueError(f"init_time {init_time} is not an init time of the forecast") from None


def lead_positions(fc: xr.DataArray, leads: Sequence[Any] | None) -> list[int]:
    """Positions along ``lead_time`` of ``leads``.

    Integers are lead-time steps counted from 1 (``1`` is the first lead
    time, ``24`` the 24th); strings and timedeltas (``"30min"``) are lead
    times. ``None`` means all.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fc = xr.DataArray(np.zeros((6, 2, 2)), dims=("lead_time", "y", "x"),
    ...                   coords={"lead_time": np.arange(1, 7) * np.timedelta64(5, "m")})
    >>> lead_positions(fc, [1, "30min"])
    [0, 5]
    """
    n = fc.sizes[LEAD_TIME]
    if leads is None:
        return list(range(n))
    lead_values = pd.TimedeltaIndex(fc[LEAD_TIME].values) if LEAD_TIME in fc.coords else None
    out = []
    leads = [leads] if np.ndim(leads) == 0 or isinstance(leads, str) else list(leads)
    if not leads:
        raise ValueError(
            f"leads is empty; give lead steps (1 to {n}) or lead times such as "
            "'30min', or None for all"
        )
    for lead in leads:
        if isinstance(lead, (int, np.integer)) and not isinstance(lead, (bool, np.timedelta64)):
            if not 1 <= lead <= n:
                raise ValueError(
                    f"lead {lead} is out of range: the forecast has lead times "
                    f"1 to {n} (steps counted from 1)"
                )
            out.append(int(lead) - 1)
            continue
        if lead_values is None:
            raise ValueError(
                f"lead {lead!r}: the forecast has no lead_time coordinate; "
                "give steps counted from 1"
            )
        try:
            wanted = as_interval(lead, f"lead {lead!r}")
        except ValueError as err:
            raise ValueError(f"{err}; or give lead steps counted from 1 (1 to {n})") from None
        pos = lead_values.get_indexer([wanted])[0]
        if pos < 0:
            raise ValueError(
                f"lead time {lead!r} is not in the forecast (lead times "
                f"{lead_values[0]} to {lead_values[-1]})"
            )
        out.append(int(pos))
    return out


def _lead_label(fc: xr.DataArray, i: int) -> str:
    lead = pd.Timedelta(fc[LEAD_TIME].values[i]) if LEAD_TIME in fc.coords else None
    text = f"+{int(lead.total_seconds() // 60)} min" if lead is not None else f"lead {i + 1}"
    if VALID_TIME in fc.coords:
        text += f", valid {pd.Timestamp(fc[VALID_TIME].values[i]):%H:%M}"
    return text


def _init_label(fc: xr.DataArray) -> str:
    parts = []
    if INIT_TIME in fc.coords and fc[INIT_TIME].ndim == 0:
        parts.append(f"init {pd.Timestamp(fc[INIT_TIME].values):%Y-%m-%d %H:%M}")
    model = fc.attrs.get("xnowcast_model")
    if model:
        parts.append(f"model {model}")
    return ", ".join(parts)


def _colorbar_label(da: xr.DataArray) -> str:
    name = da.attrs.get("long_name") or da.attrs.get("standard_name") or da.name or "value"
    units = da.attrs.get("units")
    return f"{name} ({units})" if units else str(name)


def _spatial_last(fc: xr.DataArray) -> xr.DataArray:
    y_dim, x_dim = find_spatial_dims(fc, LEAD_TIME)
    return fc.transpose(LEAD_TIME, y_dim, x_dim)


def _observations(obs: xr.DataArray | None, fc: xr.DataArray) -> tuple | None:
    """``(cube, time_dim)``: the observations on the grid of ``fc`` (``(lead_time, y, x)``)."""
    if obs is None:
        return None
    cube, info = normalize_cube(obs, min_frames=1)
    y_dim, x_dim = (str(d) for d in fc.dims[-2:])
    if info.spatial_dims != (y_dim, x_dim):
        raise ValueError(
            f"the observations have spatial dims {info.spatial_dims}, the forecast "
            f"{(y_dim, x_dim)}; rename them to match (.rename)"
        )
    return match_grid(fc, cube, y_dim, x_dim), info.time_dim


def _obs_frame(obs: tuple | None, time: Any) -> np.ndarray | None:
    """The observed frame at ``time`` (``obs`` from :func:`_observations`), or None."""
    if obs is None:
        return None
    cube, time_dim = obs
    try:
        return np.asarray(cube.sel({time_dim: time}).values)
    except KeyError:
        return None


def plot_forecast(
    fc: xr.DataArray | xr.Dataset,
    leads: Sequence[Any] | None = (1, 6, 12, 24),
    *,
    init_time: Any = None,
    obs: xr.DataArray | xr.Dataset | None = None,
    motion: Any = None,
    levels: Sequence[float] | None = None,
    colors: Sequence[str] | None = None,
    ncols: int | None = None,
    features: Sequence[str] = ("coastline", "borders"),
    resolution: str = "50m",
    panel_size: float = 3.6,
    title: str | None = None,
    path: str | os.PathLike | None = None,
    dpi: int = 110,
    var: str | None = None,
):
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
        :func:`plot_motion`).
    levels, colors : optional
        Colour scale (see :func:`rain_colormap`).
    ncols : int, optional
        Panels per row (default: all leads in one row, at most 4).
    features : sequence of str
        Map features from local Natural Earth files (coastline, borders,
        lakes, rivers).
    resolution : {"10m", "50m", "110m"}
        Natural Earth resolution.
    panel_size : float
        Width of one panel in inches.
    title : str, optional
        Figure title (default: init time and model).
    path : path, optional
        Save the figure there (PNG, PDF, SVG, ...) and close it.
    dpi : int
        Resolution when saving.
    var : str, optional
        Variable of a Dataset.

    Returns
    -------
    matplotlib.figure.Figure

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
    ...     fig = plot_forecast(fc, leads=[1, 6])
    >>> len(fig.axes)  # two panels and the colour bar
    3
    """
    plt = _pyplot()
    if ncols is not None:
        ncols = integer(ncols, "ncols", low=1, whole=True)
    panel_size = real(panel_size, "panel_size", low=0, low_inclusive=False)
    dpi = integer(dpi, "dpi", low=1, whole=True)
    da = _spatial_last(select_init(_field(fc, var), init_time))
    default_leads = (
        np.ndim(leads) == 1 and not isinstance(leads, str) and tuple(leads) == (1, 6, 12, 24)
    )
    if default_leads:
        leads = [lead for lead in leads if lead <= da.sizes[LEAD_TIME]] or [1]
    positions = lead_positions(da, leads)
    obs_da = _observations(_field(obs, var), da) if obs is not None else None
    grid = map_grid(da)
    cmap, norm = rain_colormap(levels, colors)

    n = len(positions)
    ncols = ncols or min(n, 4)
    rows_per_set = -(-n // ncols)
    nrows = rows_per_set * (2 if obs_da is not None else 1)
    aspect = _aspect(grid)
    fig = plt.figure(
        figsize=(panel_size * ncols + 1.0, panel_size * aspect * nrows + 0.7), layout="constrained"
    )
    mesh = None
    for k, pos in enumerate(positions):
        frame = da.isel({LEAD_TIME: pos})
        panels = [("forecast", frame.values, k + 1)]
        if obs_da is not None:
            valid = frame[VALID_TIME].values if VALID_TIME in frame.coords else None
            panels.insert(0, ("observed", _obs_frame(obs_da, valid), k + 1))
            panels[1] = ("forecast", frame.values, k + 1 + rows_per_set * ncols)
        for label, values, index in panels:
            ax = _add_axes(fig, nrows, ncols, index, grid)
            if values is None:
                ax.set_title(f"{_lead_label(da, pos)}\nno observation", fontsize=9)
                continue
            mesh = plot_field(
                ax, values, grid, cmap=cmap, norm=norm, features=features, resolution=resolution
            )
            if label == "forecast" and motion is not None:
                plot_motion(ax, motion, grid)
            prefix = (
                "observed" if label == "observed" else ("forecast" if obs_da is not None else "")
            )
            ax.set_title(f"{prefix} {_lead_label(da, pos)}".strip(), fontsize=9)
    fig.suptitle(title if title is not None else _init_label(da), fontsize=11)
    if mesh is not None:
        fig.colorbar(
            mesh,
            ax=fig.axes,
            shrink=0.9,
            extend="max",
            label=_colorbar_label(da),
            ticks=norm.boundaries,
            format="%g",
        )
    return _finish(fig, path, dpi)


def _aspect(grid: MapGrid) -> float:
    if grid.extent is not None and grid.kind == "projected":
        x0, x1, y0, y1 = grid.extent
    else:
        x0, x1, y0, y1 = (
            np.nanmin(grid.x),
            np.nanmax(grid.x),
            np.nanmin(grid.y),
            np.nanmax(grid.y),
        )
    if grid.kind == "latlon":
        return float(
            np.clip((y1 - y0) / max((x1 - x0) * np.cos(np.deg2rad((y0 + y1) / 2)), 1e-9), 0.4, 2.5)
        )
    return float(np.clip(abs(y1 - y0) / max(abs(x1 - x0), 1e-9), 0.4, 2.5))


def _finish(fig, path: str | os.PathLike | None, dpi: int):
    if path is not None:
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        _pyplot().close(fig)
    return fig
