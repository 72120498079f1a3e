"""CRS and lat/lon: the cube's grid mapping as a :class:`pyproj.CRS`, units, 2-D lat/lon."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from xnowcast.conventions.cf import cf_attr, find_grid_mapping, find_latlon

__all__ = ["add_latlon", "grid_crs", "metres_per_unit"]

_LENGTH_UNITS_IN_M = {
    "m": 1.0,
    "metre": 1.0,
    "meter": 1.0,
    "metres": 1.0,
    "meters": 1.0,
    "km": 1000.0,
    "kilometre": 1000.0,
    "kilometer": 1000.0,
    "kilometres": 1000.0,
    "kilometers": 1000.0,
}


def grid_crs(da: xr.DataArray):
    """The :class:`pyproj.CRS` of the cube's grid mapping, or ``None``.

    Reads the CF grid-mapping coordinate (``crs_wkt``/``spatial_ref`` first,
    then the CF grid-mapping parameters).
    """
    gm = find_grid_mapping(da)
    if gm is None:
        return None
    from pyproj import CRS

    attrs = dict(da.coords[gm].attrs)
    for key in ("crs_wkt", "spatial_ref"):
        if isinstance(attrs.get(key), str):
            return CRS.from_wkt(attrs[key])
    cf = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in attrs.items()}
    return CRS.from_cf(cf)


def metres_per_unit(coord: xr.DataArray) -> float | None:
    """Metres per unit of a projected coordinate (``None`` when not a length).

    Examples
    --------
    >>> import xarray as xr
    >>> metres_per_unit(xr.DataArray([0.0, 0.5], dims="x", attrs={"units": "km"}))
    1000.0
    """
    units = cf_attr(coord, "units")
    if not units:
        return 1.0 if cf_attr(coord, "standard_name").startswith("projection_") else None
    return _LENGTH_UNITS_IN_M.get(units)


def add_latlon(da: xr.DataArray, *, y_dim: str = "y", x_dim: str = "x") -> xr.DataArray:
    """Add 2-D ``lat``/``lon`` coordinates derived from the grid mapping.

    Does nothing when the cube already has lat/lon, or has no CF grid mapping
    and projected x/y. Unit-aware: x/y in km (as in the BOM files) are scaled
    to metres before projecting.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=2, size=16).drop_vars(["lat", "lon"])
    >>> "lat" in add_latlon(cube).coords
    True
    """
    lat, lon = find_latlon(da)
    if lat is not None and lon is not None:
        return da
    try:
        crs = grid_crs(da)
    except Exception as err:
        warnings.warn(
            f"cannot read the grid mapping {find_grid_mapping(da)!r} ({err}); the cube gets no "
            "lat/lon coordinates. Fix its CF attributes (grid_mapping_name and parameters, or "
            "crs_wkt), or add lat/lon yourself with .assign_coords(lat=..., lon=...)",
            UserWarning,
            stacklevel=2,
        )
        return da
    if crs is None or y_dim not in da.coords or x_dim not in da.coords:
        return da
    scales = [metres_per_unit(da[d]) for d in (y_dim, x_dim)]
    if None in scales:
        return da
    from pyproj import Transformer

    to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    xx, yy = np.meshgrid(
        da[x_dim].values.astype("float64") * scales[1],
        da[y_dim].values.astype("float64") * scales[0],
    )
    lons, lats = to_geo.transform(xx, yy)
    return da.assign_coords(
        lat=(
            (y_dim, x_dim),
            lats.astype("float32"),
            {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude"},
        ),
        lon=(
            (y_dim, x_dim),
            lons.astype("float32"),
            {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude"},
        ),
    )
