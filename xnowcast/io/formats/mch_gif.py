"""MeteoSwiss GIF composites (AQC "Acquire" and CPC "CombiPrecip" products).

The GIF pixels are palette indices (digital numbers, DN) of rain classes;
MeteoSwiss' look-up table maps them to precipitation with the Z-R relation
Z = 316 R^1.5 (``R = (10^((DN - 71.5) / 20) / 316)^(1 / 1.5)``; DN 0-1 and
251-254 are no rain, 255 is no data), the same table as pysteps. The product
is an accumulation: the GIF comment says over how many minutes (``ACCUm``),
and the values are millimetres over that period, so the reader gives
``precipitation`` in mm with a ``start_time`` coordinate;
:func:`xnowcast.units.to_rain_rate` turns it into mm h-1. The GIF has no
georeferencing: MeteoSwiss composites use the Swiss grid (CH1903 / LV03,
``MCH_GRID``) of 710 x 640 km at 1 km.

Examples
--------
>>> ds = open_mch_gif("../shared/data/formats/mch/20150515/AQC151351545F_00005.801.gif")  # doctest: +SKIP
>>> ds["precipitation"].attrs["units"]  # doctest: +SKIP
'mm'
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

__all__ = ["MCH_PROJ", "mch_grid", "mch_lookup_table", "open_mch_gif", "read_mch_gif"]

#: The Swiss oblique Mercator projection of MeteoSwiss composites (as in pysteps).
MCH_PROJ = (
    "+proj=somerc +lon_0=7.43958333333333 +lat_0=46.9524055555556 +k_0=1 +x_0=600000 "
    "+y_0=200000 +ellps=bessel +towgs84=674.374,15.056,405.346,0,0,0,0 +units=m +no_defs"
)
#: Upper-left corner (m) and pixel size of the Swiss composite grid.
MCH_CORNER = (255000.0, 480000.0)
MCH_PIXEL = 1000.0
_PRODUCTS = ("AQC", "CPC")
_NAME_TIME = re.compile(r"^[A-Z]{3}(\d{9})")


def mch_lookup_table() -> np.ndarray:
    """Precipitation (mm over the product's period) of each digital number 0-255.

    Examples
    --------
    >>> lut = mch_lookup_table()
    >>> float(lut[0]), bool(np.isnan(lut[255])), round(float(lut[100]), 3)
    (0.0, True, 0.192)
    """
    dn = np.arange(256, dtype="float64")
    lut = (10.0 ** ((dn - 71.5) / 20.0) / 316.0) ** (1.0 / 1.5)
    lut[(dn < 2) | ((dn > 250) & (dn < 255))] = 0.0
    lut[255] = np.nan
    return lut


def mch_grid(shape: tuple[int, int] = (640, 710)) -> Grid:
    """The Swiss composite grid (CH1903 / LV03, 1 km).

    Examples
    --------
    >>> g = mch_grid()
    >>> float(g.x[0]), float(g.y[-1])
    (255500.0, -159500.0)
    """
    return Grid(
        pyproj.CRS.from_proj4(MCH_PROJ),
        x0=MCH_CORNER[0],
        y0=MCH_CORNER[1],
        dx=MCH_PIXEL,
        dy=-MCH_PIXEL,
        nx=shape[1],
        ny=shape[0],
    )


def read_mch_gif(path: str) -> np.ndarray:
    """Precipitation of a MeteoSwiss GIF (palette indices through :func:`mch_lookup_table`).

    Examples
    --------
    >>> read_mch_gif("../shared/data/formats/mch/20150515/AQC151351545F_00005.801.gif").shape  # doctest: +SKIP
    (640, 710)
    """
    image = import_optional("PIL.Image", "reading MeteoSwiss GIF files", extra="formats")
    with image.open(path) as img:
        dn = np.asarray(img)
    return mch_lookup_table()[dn].astype("float32")


def _comment(info: dict[str, Any]) -> dict[str, str]:
    text = info.get("comment", b"")
    text = text.decode("latin-1") if isinstance(text, bytes) else str(text)
    return dict(re.findall(r"(\w+)=(\S+)", text))


def open_mch_gif(path: str | os.PathLike) -> Any:
    """Open a MeteoSwiss AQC/CPC GIF lazily as a one-frame cube.

    Parameters
    ----------
    path : str or path
        The file.

    Returns
    -------
    Dataset
        ``precipitation`` in mm accumulated from ``start_time`` to ``time``,
        ``(time: 1, y, x)``, NaN where there is no data.

    Raises
    ------
    ValueError
        Not a palette GIF of a product with digital-number classes (RZC and
        AZC colour tables are not supported), or no time in the comment or
        name.

    Examples
    --------
    >>> ds = open_mch_gif("../shared/data/formats/mch/20150515/AQC151351545F_00005.801.gif")  # doctest: +SKIP
    >>> str(ds.start_time.values[0])[:16]  # doctest: +SKIP
    '2015-05-15T15:40'
    """
    image = import_optional("PIL.Image", "reading MeteoSwiss GIF files", extra="formats")
    path = os.fspath(path)
    with image.open(path) as img:
        mode, size, info = img.mode, img.size, dict(img.info)
    comment = _comment(info)
    stamp = comment.get("PRDT") or os.path.basename(path)
    product = stamp[:3].upper()
    if mode != "P" or product not in _PRODUCTS:
        raise ValueError(
            f"{path}: a MeteoSwiss GIF of product {product!r} (mode {mode}); xnowcast reads the "
            f"digital-number products {', '.join(_PRODUCTS)} (RZC/AZC colour tables are not "
            "supported)"
        )
    match = _NAME_TIME.match(stamp)
    if match is None:
        raise ValueError(f"{path}: no product time (PRDT=AQCyyjjjHHMM) in the GIF comment or name")
    time = pd.Timestamp(pd.to_datetime(match.group(1), format="%y%j%H%M"))
    minutes = int(comment.get("ACCUm", "5"))
    grid = mch_grid((size[1], size[0]))
    data = lazy_field(read_mch_gif, path, (grid.ny, grid.nx))
    attrs = {
        "units": "mm",
        "standard_name": "precipitation_amount",
        "long_name": f"precipitation accumulated over {minutes} min ({product})",
    }
    glob = {
        "Conventions": "CF-1.8",
        "institution": "MeteoSwiss",
        "source": f"MeteoSwiss {product} GIF",
    }
    return frame_dataset(
        "precipitation",
        data,
        grid,
        time,
        attrs,
        start_time=time - pd.Timedelta(minutes=minutes),
        global_attrs=glob,
    )
