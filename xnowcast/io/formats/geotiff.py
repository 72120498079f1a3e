"""Radar GeoTIFF (FMI composites): reflectivity with the CRS and geotransform of the file.

The georeferencing (CRS, affine geotransform) is read with rasterio; the
physical meaning from the GDAL metadata items that FMI writes: ``Observation
time`` (``YYYYMMDDhhmm``), ``Quantity`` (with its ``unit``), ``Gain``,
``Offset`` and ``Nodata`` (NaN here). Other GeoTIFFs (without those items)
open with ``open_archive(..., engine="rasterio")`` through rioxarray.

Examples
--------
>>> ds = open_geotiff("../shared/data/formats/fmi/geotiff/20160928/201609281445_FINUTM.tif")  # doctest: +SKIP
>>> ds["reflectivity"].attrs["units"]  # doctest: +SKIP
'dBZ'
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from xnowcast.io.formats.grid import Grid, frame_dataset, lazy_field
from xnowcast.optional import import_optional

__all__ = ["geotiff_metadata", "open_geotiff", "read_geotiff"]

_ITEM = re.compile(r'<Item name="([^"]+)"([^>]*)>([^<]*)</Item>')
_UNIT = re.compile(r'unit="([^"]*)"')
_DBZ = {
    "units": "dBZ",
    "standard_name": "equivalent_reflectivity_factor",
}


def geotiff_metadata(xml: str) -> dict[str, tuple[str, str]]:
    """GDAL metadata items: ``name -> (value, unit)``.

    Examples
    --------
    >>> geotiff_metadata('<GDALMetadata><Item name="Gain">0.5</Item></GDALMetadata>')
    {'Gain': ('0.5', '')}
    """
    out = {}
    for name, extra, value in _ITEM.findall(xml):
        unit = _UNIT.search(extra)
        out[name] = (value.strip(), unit.group(1) if unit else "")
    return out


def read_geotiff(path: str, gain: float, offset: float, nodata: float) -> np.ndarray:
    """Physical values of band 1: ``PV * gain + offset``, ``nodata`` -> NaN.

    Examples
    --------
    >>> read_geotiff("../shared/data/formats/fmi/geotiff/20160928/201609281445_FINUTM.tif",
    ...              0.5, -32.0, 255).shape  # doctest: +SKIP
    (7316, 4963)
    """
    rasterio = import_optional("rasterio", "reading GeoTIFF files")
    with rasterio.open(path) as src:
        raw = src.read(1)
    out = (raw * gain + offset).astype("float32")
    out[raw == nodata] = np.nan
    return out


def open_geotiff(path: str | os.PathLike) -> Any:
    """Open a radar GeoTIFF lazily as a one-frame cube.

    Parameters
    ----------
    path : str or path
        The file.

    Returns
    -------
    Dataset
        ``reflectivity`` in dBZ, ``(time: 1, y, x)``, on the file's CRS.

    Raises
    ------
    ValueError
        No CRS, a rotated geotransform, or no radar metadata (time, gain,
        offset, quantity); the message says how to open such files instead.

    Examples
    --------
    >>> ds = open_geotiff("../shared/data/formats/fmi/geotiff/20160928/201609281445_FINUTM.tif")  # doctest: +SKIP
    >>> ds.sizes["y"], ds.sizes["x"]  # doctest: +SKIP
    (7316, 4963)
    """
    rasterio = import_optional("rasterio", "reading GeoTIFF files")
    path = os.fspath(path)
    with rasterio.open(path) as src:
        if src.crs is None:
            raise ValueError(f"{path}: the GeoTIFF has no CRS; xnowcast needs georeferenced files")
        t = src.transform
        if t.b != 0 or t.d != 0:
            raise ValueError(
                f"{path}: rotated geotransforms are not supported; warp the file first"
            )
        grid = Grid(
            pyproj.CRS.from_wkt(src.crs.to_wkt()),
            x0=t.c,
            y0=t.f,
            dx=t.a,
            dy=t.e,
            nx=src.width,
            ny=src.height,
        )
        meta = geotiff_metadata(src.tags().get("GDAL_METADATA", ""))
        nodata_tag = src.nodata
    needed = ("Observation time", "Quantity", "Gain", "Offset")
    missing = [k for k in needed if k not in meta]
    if missing:
        raise ValueError(
            f"{path}: not a radar GeoTIFF xnowcast knows (no {', '.join(missing)} in its GDAL "
            "metadata); open it with open_archive(..., engine='rasterio', time='<strptime "
            "pattern of the file names>') and set its units yourself"
        )
    quantity, unit = meta["Quantity"]
    if unit.lower() != "dbz":
        raise ValueError(
            f"{path}: GeoTIFF quantity {quantity!r} in {unit!r}; xnowcast reads reflectivity "
            "(dBZ) GeoTIFFs; open others with engine='rasterio'"
        )
    nodata = float(meta["Nodata"][0]) if "Nodata" in meta else nodata_tag
    time = pd.Timestamp(pd.to_datetime(meta["Observation time"][0], format="%Y%m%d%H%M"))
    gain, offset = float(meta["Gain"][0]), float(meta["Offset"][0])
    data = lazy_field(
        read_geotiff,
        path,
        (grid.ny, grid.nx),
        gain=gain,
        offset=offset,
        nodata=np.nan if nodata is None else nodata,
    )
    attrs: dict[str, Any] = {**_DBZ, "long_name": quantity}
    if "Undetect" in meta:  # the raw value of "no echo", as a reflectivity
        attrs["undetect"] = float(meta["Undetect"][0]) * gain + offset
    glob = {"Conventions": "CF-1.8", "source": "radar GeoTIFF"}
    return frame_dataset("reflectivity", data, grid, time, attrs, global_attrs=glob)
