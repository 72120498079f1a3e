"""The cube data model: how xnowcast finds time, space and geography in xarray.

A *cube* is a :class:`xarray.DataArray` of frames with one time dimension and
two spatial dimensions (``time, y, x``), optionally with 2-D ``lat``/``lon``
coordinates and a CF grid-mapping variable. This package is the only place
that knows the conventions; everything else calls :func:`normalize_cube`.
One module per concept, every name importable from here:

* :mod:`~xnowcast.conventions.cf`: CF detection (time, y/x, lat/lon, grid mapping);
* :mod:`~xnowcast.conventions.times`: time arguments (:func:`as_times`,
  :func:`as_interval`) and a cube's time index;
* :mod:`~xnowcast.conventions.crs`: the grid mapping as a CRS, units, lat/lon;
* :mod:`~xnowcast.conventions.cube`: :func:`normalize_cube` and :class:`CubeInfo`;
* :mod:`~xnowcast.conventions.labels`: forecast coordinates and attributes;
* :mod:`~xnowcast.conventions.matching`: observations on a forecast's grid.

Forecast output conventions (shared by every model)
---------------------------------------------------
dims ``(init_time, lead_time, y, x)`` (or ``(lead_time, y, x)`` for one init
time); ``lead_time`` is ``timedelta64`` with ``standard_name=forecast_period``;
``init_time`` is the time of the last input frame with
``standard_name=forecast_reference_time``; ``valid_time = init_time + lead_time``.
"""

from xnowcast.conventions.cf import (
    LAT_UNITS,
    LON_UNITS,
    cf_attr,
    find_grid_mapping,
    find_latlon,
    find_spatial_dims,
    find_time_dim,
    spatial_role,
)
from xnowcast.conventions.crs import add_latlon, grid_crs, metres_per_unit
from xnowcast.conventions.cube import (
    EARTH_RADIUS,
    CubeInfo,
    as_dataarray,
    cell_size,
    check_spatial_index,
    decode_missing,
    grid_spacing,
    normalize_cube,
)
from xnowcast.conventions.labels import (
    INIT_TIME,
    LEAD_TIME,
    MEMBER,
    VALID_TIME,
    forecast_attrs,
    forecast_coords,
    member_coord,
)
from xnowcast.conventions.matching import match_grid
from xnowcast.conventions.times import as_interval, as_times, check_time_index, infer_time_step

__all__ = [
    "EARTH_RADIUS",
    "INIT_TIME",
    "LAT_UNITS",
    "LEAD_TIME",
    "LON_UNITS",
    "MEMBER",
    "VALID_TIME",
    "CubeInfo",
    "add_latlon",
    "as_dataarray",
    "as_interval",
    "as_times",
    "cell_size",
    "cf_attr",
    "check_spatial_index",
    "check_time_index",
    "decode_missing",
    "find_grid_mapping",
    "find_latlon",
    "find_spatial_dims",
    "find_time_dim",
    "forecast_attrs",
    "forecast_coords",
    "grid_crs",
    "grid_spacing",
    "infer_time_step",
    "match_grid",
    "member_coord",
    "metres_per_unit",
    "normalize_cube",
    "spatial_role",
]
