"""CF detection: which dimension is time, which are y and x, where lat/lon and the grid mapping are.

Coordinates are found by CF metadata first (``standard_name``, ``axis``,
``units``), by name second:

=========  =========================================================================
role       recognised by
=========  =========================================================================
time       datetime64 dimension coordinate, ``standard_name="time"``, ``axis="T"``,
           or a dimension named ``time``/``t``/``valid_time``
y          ``axis="Y"``, ``standard_name`` in {projection_y_coordinate, grid_latitude,
           latitude}, ``units="degrees_north"``, or named y/lat/latitude/rlat/northing
x          as y with X/longitude/east
lat / lon  ``standard_name`` latitude/longitude or units degrees_north/east
=========  =========================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "LAT_UNITS",
    "LON_UNITS",
    "cf_attr",
    "find_grid_mapping",
    "find_latlon",
    "find_spatial_dims",
    "find_time_dim",
    "spatial_role",
]

_TIME_NAMES = ("time", "t", "valid_time", "datetime")
_Y_NAMES = ("y", "lat", "latitude", "rlat", "northing", "south_north")
_X_NAMES = ("x", "lon", "longitude", "rlon", "easting", "west_east")
_Y_STANDARD = ("projection_y_coordinate", "grid_latitude", "latitude")
_X_STANDARD = ("projection_x_coordinate", "grid_longitude", "longitude")
LAT_UNITS = ("degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn")
LON_UNITS = ("degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese")


def _is_datetime(dtype: Any) -> bool:
    """datetime64, timezone-naive or timezone-aware (pandas' ``DatetimeTZDtype``)."""
    return isinstance(dtype, pd.DatetimeTZDtype) or (
        isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.datetime64)
    )


def cf_attr(obj: xr.DataArray, key: str) -> str:
    """A string attribute of ``obj``, stripped and in lower case (``""`` when absent).

    Examples
    --------
    >>> import xarray as xr
    >>> cf_attr(xr.DataArray(0, attrs={"units": " Degrees_North"}), "units")
    'degrees_north'
    """
    value = obj.attrs.get(key, "")
    return value.strip().lower() if isinstance(value, str) else ""


def find_time_dim(da: xr.DataArray) -> str:
    """Name of the time dimension.

    Raises
    ------
    ValueError
        When no dimension can be identified as time.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> find_time_dim(synthetic_radar(n_times=2, size=16))
    'time'
    """
    candidates = []
    for dim in da.dims:
        coord = da.coords.get(dim)
        if (
            coord is not None
            and (
                _is_datetime(coord.dtype)
                or cf_attr(coord, "standard_name") == "time"
                or cf_attr(coord, "axis") == "t"
            )
        ) or str(dim).lower() in _TIME_NAMES:
            candidates.append(dim)
    if not candidates:
        raise ValueError(
            f"no time dimension found among dims {tuple(map(str, da.dims))}; a cube needs a "
            "'time' dimension with datetime64 values (rename yours with .rename({'<dim>': "
            "'time'}), or add one to a single frame with .expand_dims(time=[timestamp]))"
        )
    if len(candidates) > 1:
        raise ValueError(
            f"several dimensions look like time: {candidates}; keep one "
            "(select the others away with .isel)"
        )
    return str(candidates[0])


def spatial_role(da: xr.DataArray, dim: str) -> str | None:
    """``"y"``, ``"x"`` or ``None``: the role of ``dim`` by CF attributes first, name second.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3)), dims=("row", "col"),
    ...                   coords={"row": ("row", [0, 1], {"axis": "Y"})})
    >>> spatial_role(da, "row"), spatial_role(da, "col")
    ('y', None)
    """
    coord = da.coords.get(dim)
    if coord is not None:
        axis = cf_attr(coord, "axis")
        std = cf_attr(coord, "standard_name")
        units = cf_attr(coord, "units")
        if axis == "y" or std in _Y_STANDARD or units in LAT_UNITS:
            return "y"
        if axis == "x" or std in _X_STANDARD or units in LON_UNITS:
            return "x"
    name = str(dim).lower()
    if name in _Y_NAMES:
        return "y"
    if name in _X_NAMES:
        return "x"
    return None


def find_spatial_dims(da: xr.DataArray, time_dim: str | None = None) -> tuple[str, str]:
    """Names of the ``(y, x)`` dimensions.

    Raises
    ------
    ValueError
        When the cube does not have exactly two recognisable spatial dims.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> find_spatial_dims(synthetic_radar(n_times=2, size=16).rename(y="north", x="east"))
    ('north', 'east')
    """
    time_dim = time_dim or find_time_dim(da)
    others = [str(d) for d in da.dims if d != time_dim]
    roles = {d: spatial_role(da, d) for d in others}
    ys = [d for d, r in roles.items() if r == "y"]
    xs = [d for d, r in roles.items() if r == "x"]
    if len(ys) == 1 and len(xs) == 1 and len(others) == 2:
        return ys[0], xs[0]
    if len(others) != 2:
        extra = [d for d in others if d not in ys[:1] + xs[:1]]
        raise ValueError(
            f"a cube has dims (time, y, x); this one has {tuple(map(str, da.dims))}. Select "
            f"the extra dims {extra} away with .isel/.sel (or stack them into time)"
        )
    raise ValueError(
        f"cannot tell which of the dims {others} is y and which is x; name them 'y' and 'x' "
        "(.rename) or give their coordinates CF attributes (axis='Y'/'X' or standard_name)"
    )


def find_latlon(da: xr.DataArray) -> tuple[str | None, str | None]:
    """Names of the latitude and longitude coordinates (``None`` when absent).

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> find_latlon(synthetic_radar(n_times=2, size=16))
    ('lat', 'lon')
    """
    lat = lon = None
    for name, coord in da.coords.items():
        std, units = cf_attr(coord, "standard_name"), cf_attr(coord, "units")
        if lat is None and (std == "latitude" or units in LAT_UNITS):
            lat = str(name)
        elif lon is None and (std == "longitude" or units in LON_UNITS):
            lon = str(name)
    if lat is None:
        lat = next((n for n in ("lat", "latitude") if n in da.coords), None)
    if lon is None:
        lon = next((n for n in ("lon", "longitude") if n in da.coords), None)
    return lat, lon


def find_grid_mapping(da: xr.DataArray) -> str | None:
    """Name of the CF grid-mapping coordinate of ``da`` (``None`` when there is none).

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> find_grid_mapping(synthetic_radar(n_times=2, size=16))
    'crs'
    """
    name = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if isinstance(name, str) and name in da.coords:
        return name
    for cname, coord in da.coords.items():
        if coord.ndim == 0 and "grid_mapping_name" in coord.attrs:
            return str(cname)
    return None
