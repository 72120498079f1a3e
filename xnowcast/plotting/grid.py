"""Map grids: how a field's ``(y, x)`` grid is put on a map, from its CF metadata.

:func:`map_grid` reads the cube's grid mapping
(:func:`xnowcast.conventions.grid_crs`, a :class:`pyproj.CRS`, handed to
cartopy as a ``cartopy.crs.Projection``) so that fields are drawn on their
native grid without resampling. A cube without a usable grid mapping but with
2-D ``lat``/``lon`` coordinates goes on an equal-area map centred on the
data; without either (or without cartopy) on plain ``x``/``y`` axes. The
result, a :class:`MapGrid`, is what the drawing functions of
:mod:`xnowcast.plotting.draw` take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.conventions import find_latlon, grid_crs, metres_per_unit

__all__ = ["MapGrid", "map_grid"]


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

    Examples
    --------
    >>> import numpy as np
    >>> grid = MapGrid("plain", np.arange(4.0), np.arange(2.0))
    >>> grid.is_map, grid.is_regular, grid.aspect()
    (False, True, 0.4)
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
            float(self.x.min() - dx / 2),
            float(self.x.max() + dx / 2),
            float(self.y.min() - dy / 2),
            float(self.y.max() + dy / 2),
        )

    def as_image(self, values: np.ndarray) -> np.ndarray:
        """A ``(y, x)`` field flipped so that row 0 is the top and column 0 the left."""
        if self.x[1] < self.x[0]:
            values = values[:, ::-1]
        if self.y[1] > self.y[0]:
            values = values[::-1]
        return values

    def aspect(self) -> float:
        """Height over width of a panel of this grid, clipped to ``[0.4, 2.5]``."""
        if self.extent is not None and self.kind == "projected":
            x0, x1, y0, y1 = self.extent
        else:
            x0, x1 = float(np.nanmin(self.x)), float(np.nanmax(self.x))
            y0, y1 = float(np.nanmin(self.y)), float(np.nanmax(self.y))
        width = abs(x1 - x0)
        if self.kind == "latlon":  # degrees of longitude shrink towards the poles
            width *= np.cos(np.deg2rad((y0 + y1) / 2))
        return float(np.clip(abs(y1 - y0) / max(width, 1e-9), 0.4, 2.5))


def map_grid(da: xr.DataArray) -> MapGrid:
    """Work out how to map a field ``(..., y, x)`` (see :class:`MapGrid`).

    Parameters
    ----------
    da : DataArray
        A field whose last two dims are ``(y, x)``.

    Returns
    -------
    MapGrid

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> map_grid(synthetic_radar(n_times=2, size=16)).kind
    'projected'
    >>> map_grid(synthetic_radar(n_times=2, size=16).drop_vars(["crs", "lat", "lon"])).kind
    'plain'
    """
    y_dim, x_dim = str(da.dims[-2]), str(da.dims[-1])
    ccrs = _cartopy()
    if ccrs is not None:
        grid = _projected_grid(da, y_dim, x_dim, ccrs) or _latlon_grid(da, ccrs)
        if grid is not None:
            return grid
    x = da[x_dim].values if x_dim in da.coords else np.arange(da.sizes[x_dim])
    y = da[y_dim].values if y_dim in da.coords else np.arange(da.sizes[y_dim])

    def label(dim: str) -> str:
        units = da[dim].attrs.get("units") if dim in da.coords else None
        return f"{dim} ({units})" if units else dim

    return MapGrid("plain", np.asarray(x), np.asarray(y), xlabel=label(x_dim), ylabel=label(y_dim))


def _cartopy() -> Any:
    """``cartopy.crs``, or None without cartopy (maps then fall back to plain axes)."""
    try:
        import cartopy.crs as ccrs
    except ImportError:
        return None
    return ccrs


def _projected_grid(da: xr.DataArray, y_dim: str, x_dim: str, ccrs: Any) -> MapGrid | None:
    crs = grid_crs(da)
    if crs is None or y_dim not in da.coords or x_dim not in da.coords:
        return None
    x = np.asarray(da[x_dim].values, dtype=float)
    y = np.asarray(da[y_dim].values, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or x.size < 2 or y.size < 2:
        return None
    if crs.is_geographic:
        proj = ccrs.PlateCarree()
        extent = (float(x.min()), float(x.max()), float(y.min()), float(y.max()))
        return MapGrid("projected", x, y, proj, proj, extent)
    base = crs.source_crs if crs.is_bound and crs.source_crs is not None else crs
    axis_factor = base.axis_info[0].unit_conversion_factor if base.axis_info else 1.0
    x_factor, y_factor = metres_per_unit(da[x_dim]), metres_per_unit(da[y_dim])
    if x_factor is not None and y_factor is not None:
        x, y = x * x_factor / axis_factor, y * y_factor / axis_factor
    if not _consistent_with_latlon(da, crs, x, y):
        # a grid mapping written in kilometres (KNMI's composites): rescale it to metres
        crs = _kilometre_crs_in_metres(crs)
        if crs is None or not _consistent_with_latlon(da, crs, x, y):
            return None
    dx, dy = abs(x[1] - x[0]), abs(y[1] - y[0])
    extent = (
        float(x.min() - dx / 2),
        float(x.max() + dx / 2),
        float(y.min() - dy / 2),
        float(y.max() + dy / 2),
    )
    try:
        proj = _projection(crs, extent, ccrs)
    except Exception:  # cartopy cannot handle this CRS: use lat/lon instead
        return None
    return MapGrid("projected", x, y, proj, proj, extent)


def _kilometre_crs_in_metres(crs: Any) -> Any:
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


def _consistent_with_latlon(da: xr.DataArray, crs: Any, x: np.ndarray, y: np.ndarray) -> bool:
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


def _projection(crs: Any, extent: tuple[float, float, float, float], ccrs: Any) -> Any:
    """A cartopy projection of ``crs`` whose domain is the data extent with a margin."""

    class GridProjection(ccrs.Projection):
        """The cube's grid mapping as a cartopy projection, bounded by the data."""

        def __init__(self, crs: Any, bounds: tuple[float, float, float, float]) -> None:
            super().__init__(crs)
            self.bounds = bounds
            self.threshold = min(bounds[1] - bounds[0], bounds[3] - bounds[2]) / 1000.0

    x0, x1, y0, y1 = extent
    mx, my = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
    return GridProjection(crs, (x0 - mx, x1 + mx, y0 - my, y1 + my))


def _latlon_grid(da: xr.DataArray, ccrs: Any) -> MapGrid | None:
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
    extent = (
        float(np.nanmin(lon)),
        float(np.nanmax(lon)),
        float(np.nanmin(lat)),
        float(np.nanmax(lat)),
    )
    return MapGrid("latlon", lon, lat, proj, ccrs.PlateCarree(), extent)
