"""NOAA MRMS GRIB2 grids (e.g. ``PrecipRate``), read with ecCodes.

MRMS products are GRIB2 messages in NOAA's local discipline 209 (not in the
WMO tables, so generic GRIB readers call them ``unknown``): the reader knows
them by ``(discipline, parameterCategory, parameterNumber)`` from
``MRMS_PARAMETERS``. The grid is a regular latitude-longitude grid (CONUS:
3500 x 7000 at 0.01 degrees); ``x``/``y`` are longitude (converted from
0-360 to -180-180 degrees east) and latitude, the grid mapping a
``latitude_longitude`` CRS on the message's earth shape. ``-3`` marks no
coverage (NaN here, as in pysteps), as do bitmap-missing points.

Opening reads only the header; the values (one message, about 100 MB as
float32) are decoded when computed, one file per dask chunk, so an archive
of many grids holds only the frames being computed.

Examples
--------
>>> ds = open_mrms("../shared/data/formats/mrms/2019/06/10/PrecipRate_00.00_20190610-000000.grib2")  # doctest: +SKIP
>>> ds["PrecipRate"].shape, ds["PrecipRate"].attrs["units"]  # doctest: +SKIP
((1, 3500, 7000), 'mm h-1')
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from xnowcast.io.formats.grid import Grid, frame_dataset, lazy_field
from xnowcast.optional import import_optional

__all__ = [
    "MRMS_NO_COVERAGE",
    "MRMS_PARAMETERS",
    "first_message",
    "grib_earth",
    "open_mrms",
    "read_mrms",
]

#: ``(discipline, category, number)`` -> (variable name, attributes).
MRMS_PARAMETERS: dict[tuple[int, int, int], tuple[str, dict[str, str]]] = {
    (209, 6, 1): (
        "PrecipRate",
        {
            "units": "mm h-1",
            "standard_name": "rainfall_rate",
            "long_name": "MRMS radar precipitation rate",
        },
    ),
}
#: MRMS value for "no coverage".
MRMS_NO_COVERAGE = -3.0

# GRIB2 code table 3.2 (shape of the earth) as PROJ parameters, as in pysteps.
_EARTH = {
    0: "+R=6367470",
    1: "+R=6367470",
    2: "+ellps=IAU76",
    4: "+ellps=GRS80",
    5: "+ellps=WGS84",
    6: "+R=6371229",
    8: "+R=6371200",
}


def grib_earth(shape_of_the_earth: int) -> pyproj.CRS:
    """The geographic CRS of a GRIB2 earth shape (code table 3.2).

    Examples
    --------
    >>> grib_earth(6).ellipsoid.semi_major_metre
    6371229.0
    """
    if shape_of_the_earth not in _EARTH:
        raise ValueError(
            f"GRIB shapeOfTheEarth {shape_of_the_earth} is not supported; known: "
            f"{', '.join(map(str, _EARTH))}"
        )
    return pyproj.CRS.from_proj4(f"+proj=longlat {_EARTH[shape_of_the_earth]} +no_defs")


def _keys(handle: Any, names: tuple[str, ...]) -> dict[str, Any]:
    eccodes = import_optional("eccodes", "reading GRIB2 files")
    return {name: eccodes.codes_get(handle, name) for name in names}


def read_mrms(path: str, missing: float) -> np.ndarray:
    """Values of the first GRIB message of ``path`` (float32); -3 and ``missing`` -> NaN.

    Examples
    --------
    >>> read_mrms("../shared/data/formats/mrms/2019/06/10/PrecipRate_00.00_20190610-000000.grib2",
    ...           9999.0).shape  # doctest: +SKIP
    (3500, 7000)
    """
    eccodes = import_optional("eccodes", "reading GRIB2 files")
    handle = first_message(path)
    try:
        ny, nx = eccodes.codes_get(handle, "Nj"), eccodes.codes_get(handle, "Ni")
        values = eccodes.codes_get_values(handle)  # float64: png packing has no float path
    finally:
        eccodes.codes_release(handle)
    out = np.asarray(values, dtype="float32").reshape(ny, nx)
    out[(out == MRMS_NO_COVERAGE) | (out == missing)] = np.nan
    return out


_HEADER = (
    "discipline",
    "parameterCategory",
    "parameterNumber",
    "gridType",
    "Ni",
    "Nj",
    "latitudeOfFirstGridPointInDegrees",
    "longitudeOfFirstGridPointInDegrees",
    "iDirectionIncrementInDegrees",
    "jDirectionIncrementInDegrees",
    "jScansPositively",
    "iScansNegatively",
    "shapeOfTheEarth",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "missingValue",
    "centre",
)


def first_message(path: str, headers_only: bool = False) -> Any:
    """An ecCodes handle on the first GRIB message of a file, gzipped (``.grib2.gz``) or not.

    The caller releases it (``eccodes.codes_release``).

    Raises
    ------
    ValueError
        Not a readable GRIB file (truncated, corrupt), or no message in it.

    Examples
    --------
    >>> handle = first_message("../shared/data/formats/mrms/2019/06/10/PrecipRate_00.00_20190610-000000.grib2")  # doctest: +SKIP
    """
    eccodes = import_optional("eccodes", "reading GRIB2 files")
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    try:
        if gzipped:
            with gzip.open(path, "rb") as f:
                handle = eccodes.codes_new_from_message(f.read())
        else:
            with open(path, "rb") as f:
                handle = eccodes.codes_grib_new_from_file(f, headers_only=headers_only)
    except Exception as err:
        raise ValueError(f"{path}: not a readable GRIB file ({err})") from None
    if handle is None:
        raise ValueError(f"{path}: no GRIB message in the file")
    return handle


def _header(path: str) -> dict[str, Any]:
    eccodes = import_optional("eccodes", "reading GRIB2 files")
    handle = first_message(path, headers_only=True)
    try:
        return _keys(handle, _HEADER)
    finally:
        eccodes.codes_release(handle)


def _grid(h: dict[str, Any], path: str) -> Grid:
    if h["gridType"] != "regular_ll" or h["iScansNegatively"]:
        raise ValueError(
            f"{path}: GRIB grid {h['gridType']!r} is not supported (MRMS grids are regular_ll); "
            "open other GRIB files with open_archive(..., engine='cfgrib')"
        )
    dx = float(h["iDirectionIncrementInDegrees"])
    dy = float(h["jDirectionIncrementInDegrees"]) * (1 if h["jScansPositively"] else -1)
    lon0 = (float(h["longitudeOfFirstGridPointInDegrees"]) + 180.0) % 360.0 - 180.0
    lat0 = float(h["latitudeOfFirstGridPointInDegrees"])
    return Grid(
        grib_earth(int(h["shapeOfTheEarth"])),
        x0=lon0 - dx / 2,
        y0=lat0 - dy / 2,
        dx=dx,
        dy=dy,
        nx=int(h["Ni"]),
        ny=int(h["Nj"]),
    )


def open_mrms(path: str | os.PathLike) -> Any:
    """Open an MRMS GRIB2 file lazily as a one-frame cube (only the header is read).

    Parameters
    ----------
    path : str or path
        The file (``.grib2``, or gzipped ``.grib2.gz`` as NOAA distributes
        them: unpacked in memory when read).

    Returns
    -------
    Dataset
        One variable named after the product (``PrecipRate`` in mm h-1),
        ``(time: 1, y, x)``.

    Raises
    ------
    ValueError
        Not GRIB, a parameter or grid that is not MRMS; the message says how
        to open other GRIB files (``engine="cfgrib"``).

    Examples
    --------
    >>> ds = open_mrms("../shared/data/formats/mrms/2019/06/10/PrecipRate_00.00_20190610-000200.grib2")  # doctest: +SKIP
    >>> float(ds.x[0]), float(ds.y[0])  # doctest: +SKIP
    (-129.995, 54.995)
    """
    path = os.fspath(path)
    h = _header(path)
    key = (int(h["discipline"]), int(h["parameterCategory"]), int(h["parameterNumber"]))
    if key not in MRMS_PARAMETERS:
        raise ValueError(
            f"{path}: GRIB parameter (discipline, category, number) = {key} is not an MRMS "
            f"product xnowcast knows ({', '.join(n for n, _ in MRMS_PARAMETERS.values())}); "
            "open other GRIB files with open_archive(..., engine='cfgrib')"
        )
    name, attrs = MRMS_PARAMETERS[key]
    grid = _grid(h, path)
    time = pd.Timestamp(
        year=h["year"],
        month=h["month"],
        day=h["day"],
        hour=h["hour"],
        minute=h["minute"],
        second=h["second"],
    )
    data = lazy_field(read_mrms, path, (grid.ny, grid.nx), missing=float(h["missingValue"]))
    glob = {
        "Conventions": "CF-1.8",
        "institution": "NOAA National Severe Storms Laboratory",
        "source": f"MRMS GRIB2 {name}",
    }
    return frame_dataset(name, data, grid, time, dict(attrs), global_attrs=glob)
