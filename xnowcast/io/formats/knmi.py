"""KNMI HDF5 radar composites (the KNMI Data Centre format, e.g. ``RAD_NL25_RAP_5min``).

The values are raw integers in ``image1/image_data``, calibrated with the
formula of ``image1/calibration`` (``GEO=0.01*PV+0.0``); the quantity and its
unit are in ``image_geo_parameter`` (``ACCUMULATED_PRECIPITATION_[MM]``,
``REFLECTIVITY_[DBZ]``). The ``geographic`` group gives the polar
stereographic projection (proj4, in km when ``geo_dim_pixel`` is ``KM``: it
is rescaled to metres here), the pixel size and the offsets of the first
pixel; ``overview`` the start and end of the product.

Examples
--------
>>> ds = open_knmi("../shared/data/formats/KNMI/2010/08/RAD_NL25_RAP_5min_201008260000.h5")  # doctest: +SKIP
>>> ds["precipitation"].attrs["units"], ds.sizes["y"], ds.sizes["x"]  # doctest: +SKIP
('mm', 765, 700)
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from xnowcast.io.formats.grid import Grid, frame_dataset, lazy_field
from xnowcast.optional import import_optional

__all__ = ["KNMI_QUANTITIES", "knmi_calibration", "open_knmi", "read_knmi_image"]

#: ``image_geo_parameter`` -> (variable name, attributes, accumulation?).
KNMI_QUANTITIES: dict[str, tuple[str, dict[str, str], bool]] = {
    "ACCUMULATED_PRECIPITATION_[MM]": (
        "precipitation",
        {
            "units": "mm",
            "standard_name": "precipitation_amount",
            "long_name": "accumulated precipitation",
        },
        True,
    ),
    "REFLECTIVITY_[DBZ]": (
        "reflectivity",
        {
            "units": "dBZ",
            "standard_name": "equivalent_reflectivity_factor",
            "long_name": "radar reflectivity",
        },
        False,
    ),
}

# Files with this (broken) projection string exist; pysteps replaces the grid as below.
_BROKEN_PROJ = "+proj=stere +lat_0=90 +lon_0=0 +lat_ts=60 +a=6378.14 +b=6356.75 +x_0=0 y_0=0"
_FIXED_PROJ = "+proj=stere +lat_0=90 +lon_0=0.0 +lat_ts=60.0 +a=6378137 +b=6356752 +x_0=0 +y_0=0"
_CALIBRATION = re.compile(
    r"GEO\s*=\s*([-+\d.eE]+)\s*\*\s*PV\s*(?:([-+])\s*([\d.eE]+))?", re.IGNORECASE
)


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    return value.decode() if isinstance(value, (bytes, np.bytes_)) else str(value)


def _number(value: Any) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def knmi_calibration(formula: str) -> tuple[float, float]:
    """``(gain, offset)`` of a KNMI calibration formula.

    Examples
    --------
    >>> knmi_calibration("GEO=0.5*PV-32.0")
    (0.5, -32.0)
    """
    match = _CALIBRATION.search(formula)
    if match is None:
        raise ValueError(
            f"cannot read the KNMI calibration formula {formula!r} (expected 'GEO=a*PV+b')"
        )
    gain = float(match.group(1))
    offset = float(match.group(3) or 0.0) * (-1.0 if match.group(2) == "-" else 1.0)
    return gain, offset


def read_knmi_image(path: str, gain: float, offset: float, missing: tuple[int, ...]) -> np.ndarray:
    """Calibrated values of ``image1/image_data``; missing-data values become NaN.

    Examples
    --------
    >>> read_knmi_image("../shared/data/formats/KNMI/2010/08/RAD_NL25_RAP_5min_201008260000.h5",
    ...                 0.01, 0.0, (65535,)).shape  # doctest: +SKIP
    (765, 700)
    """
    h5py = import_optional("h5py", "reading KNMI HDF5 files")
    with h5py.File(path, "r") as h5:
        raw = h5["image1"]["image_data"][...]
    out = (raw * gain + offset).astype("float32")
    out[np.isin(raw, missing)] = np.nan
    return out


def _grid(geo: Any, shape: tuple[int, int]) -> Grid:
    proj = _text(geo["map_projection"].attrs["projection_proj4_params"]).strip()
    ny, nx = shape
    if proj == _BROKEN_PROJ:
        crs = pyproj.CRS.from_proj4(_FIXED_PROJ)
        return Grid(crs, x0=0.0, y0=-3650000.0, dx=1000.0, dy=-1000.0, nx=nx, ny=ny)
    scale = 1000.0 if _text(geo.attrs.get("geo_dim_pixel", "KM")).upper().startswith("KM") else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # to_dict: "you will likely lose ..."
        params = pyproj.CRS.from_proj4(proj).to_dict()
    for key in ("a", "b", "R", "x_0", "y_0"):
        if key in params:
            params[key] = float(params[key]) * scale
    crs = pyproj.CRS.from_dict(params)
    dx = _number(geo.attrs["geo_pixel_size_x"]) * scale
    dy = _number(geo.attrs["geo_pixel_size_y"]) * scale
    x0 = _number(geo.attrs["geo_column_offset"]) * dx
    y0 = _number(geo.attrs["geo_row_offset"]) * dy
    return Grid(crs, x0=x0, y0=y0, dx=dx, dy=dy, nx=nx, ny=ny)


def _time(text: Any) -> pd.Timestamp:
    return pd.Timestamp(pd.to_datetime(_text(text)[:20], format="%d-%b-%Y;%H:%M:%S"))


def open_knmi(path: str | os.PathLike) -> Any:
    """Open a KNMI HDF5 composite lazily as a one-frame cube.

    Parameters
    ----------
    path : str or path
        The file.

    Returns
    -------
    Dataset
        ``precipitation`` (mm accumulated from ``start_time`` to ``time``) or
        ``reflectivity`` (dBZ), ``(time: 1, y, x)``, NaN outside coverage.

    Raises
    ------
    ValueError
        A quantity xnowcast does not know, or an unreadable calibration.

    Examples
    --------
    >>> ds = open_knmi("../shared/data/formats/KNMI/2010/08/RAD_NL25_RAP_5min_201008260005.h5")  # doctest: +SKIP
    >>> str(ds.time.values[0])[:16], str(ds.start_time.values[0])[:16]  # doctest: +SKIP
    ('2010-08-26T00:05', '2010-08-26T00:00')
    """
    h5py = import_optional("h5py", "reading KNMI HDF5 files")
    path = os.fspath(path)
    with h5py.File(path, "r") as h5:
        image = h5["image1"]
        parameter = _text(image.attrs.get("image_geo_parameter", "")).strip().upper()
        if parameter not in KNMI_QUANTITIES:
            raise ValueError(
                f"{path}: unknown KNMI quantity {parameter!r}; xnowcast reads "
                f"{', '.join(KNMI_QUANTITIES)}"
            )
        cal = image["calibration"].attrs
        gain, offset = knmi_calibration(_text(cal["calibration_formulas"]))
        missing = tuple(
            int(_number(cal[k]))
            for k in ("calibration_missing_data", "calibration_out_of_image")
            if k in cal
        )
        shape = (int(image["image_data"].shape[0]), int(image["image_data"].shape[1]))
        grid = _grid(h5["geographic"], shape)
        overview = h5["overview"].attrs
        end = _time(overview["product_datetime_end"])
        start = _time(overview["product_datetime_start"])
        product = _text(image.attrs.get("image_product_name", ""))
    name, attrs, accumulated = KNMI_QUANTITIES[parameter]
    data = lazy_field(read_knmi_image, path, shape, gain=gain, offset=offset, missing=missing)
    glob = {
        "Conventions": "CF-1.8",
        "institution": "KNMI - Royal Netherlands Meteorological Institute",
        "source": f"KNMI HDF5 product {product}",
    }
    return frame_dataset(
        name,
        data,
        grid,
        end,
        dict(attrs),
        start_time=start if accumulated else None,
        global_attrs=glob,
    )
