"""FMI PGM composites (``*.pgm`` or ``*.pgm.gz``): 8-bit reflectivity with a text header.

The header's ``#`` comment lines hold the observation time (``obstime``), the
pixel size (``metersperpixel_x``/``_y``) and a polar stereographic projection
(``centrallongitude``, ``centrallatitude``, ``truelatitude``) with the
longitude/latitude of the ``bottomleft`` and ``topright`` corners. The earth
radius and false origin are not in the header; like pysteps, the reader uses
FMI's values (``FMI_EARTH_RADIUS``, ``FMI_FALSE_ORIGIN``). Values are
``dBZ = (PV - 64) / 2``; the PGM maximum value (255) marks missing data.

Examples
--------
>>> ds = open_fmi_pgm("../shared/data/formats/fmi/pgm/20160928/201609281445_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz")  # doctest: +SKIP
>>> ds["reflectivity"].attrs["units"]  # doctest: +SKIP
'dBZ'
"""

from __future__ import annotations

import gzip
import os
from typing import IO, Any, cast

import numpy as np
import pandas as pd
import pyproj

from xnowcast.io.formats.grid import Grid, frame_dataset, lazy_field

__all__ = ["FMI_EARTH_RADIUS", "FMI_FALSE_ORIGIN", "open_fmi_pgm", "read_pgm", "read_pgm_header"]

#: Sphere radius (m) of FMI's stereographic composites (not in the PGM header).
FMI_EARTH_RADIUS = 6371288.0
#: False easting and northing (m) of FMI's stereographic composites.
FMI_FALSE_ORIGIN = (380886.310, 3395677.920)
#: ``dBZ = gain * PV + offset``.
FMI_GAIN, FMI_OFFSET = 0.5, -32.0


def _open(path: str) -> IO[bytes]:  # a GzipFile or a plain file
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        return cast("IO[bytes]", gzip.open(path, "rb"))
    return open(path, "rb")


def _tokens(f: IO[bytes], n: int, meta: dict[str, list[str]]) -> list[str]:
    """The next ``n`` header tokens, collecting ``# key value ...`` comment lines in ``meta``."""
    out: list[str] = []
    while len(out) < n:
        line = f.readline()
        if not line:
            raise ValueError("the PGM header ends early (a truncated file?)")
        text = line.decode("latin-1").strip()
        if text.startswith("#"):
            parts = text[1:].split()
            if len(parts) >= 2:
                meta[parts[0]] = parts[1:]
            continue
        out.extend(text.split())
    return out


def read_pgm_header(path: str | os.PathLike) -> dict[str, Any]:
    """The header of a binary PGM file (``P5``): size, maximum value and ``#`` metadata.

    Returns
    -------
    dict
        ``width``, ``height``, ``maxval``, ``offset`` (bytes before the
        pixels) and ``meta`` (``key -> list of words`` of the comment lines).

    Examples
    --------
    >>> h = read_pgm_header("../shared/data/formats/fmi/pgm/20160928/201609281445_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz")  # doctest: +SKIP
    >>> h["width"], h["height"], h["meta"]["obstime"]  # doctest: +SKIP
    (760, 1226, ['201609281445'])
    """
    meta: dict[str, list[str]] = {}
    with _open(os.fspath(path)) as f:
        first = _tokens(f, 1, meta)
        if first[0] != "P5":
            raise ValueError(f"{path}: not a binary PGM file (magic {first[0]!r}, expected 'P5')")
        tokens = first + (_tokens(f, 4 - len(first), meta) if len(first) < 4 else [])
        width, height, maxval = (int(t) for t in tokens[1:4])
        offset = f.tell()
    return {"width": width, "height": height, "maxval": maxval, "offset": offset, "meta": meta}


def read_pgm(path: str, offset: int, height: int, width: int, missing: int) -> np.ndarray:
    """Reflectivity (dBZ) of an FMI PGM file; the missing value becomes NaN.

    Examples
    --------
    >>> read_pgm("x.pgm.gz", 600, 1226, 760, 255)  # doctest: +SKIP
    """
    shape = (height, width)
    with _open(path) as f:
        f.seek(offset)
        raw = np.frombuffer(f.read(), dtype="uint8")
    if raw.size < shape[0] * shape[1]:
        raise ValueError(f"{path}: truncated PGM file ({raw.size} of {shape[0] * shape[1]} pixels)")
    raw = raw[: shape[0] * shape[1]].reshape(shape)
    out = (raw * FMI_GAIN + FMI_OFFSET).astype("float32")
    out[raw == missing] = np.nan
    return out


def fmi_pgm_grid(meta: dict[str, list[str]], shape: tuple[int, int], path: str = "") -> Grid:
    """The stereographic grid of an FMI PGM header.

    Examples
    --------
    >>> meta = {"type": ["stereographic"], "centrallongitude": ["25"], "centrallatitude": ["90"],
    ...         "truelatitude": ["60"], "bottomleft": ["18.6", "57.93"],
    ...         "topright": ["34.903", "69.005"], "metersperpixel_x": ["999.674053"],
    ...         "metersperpixel_y": ["999.62859"]}
    >>> g = fmi_pgm_grid(meta, (1226, 760))
    >>> round(g.x0), round(g.y0), g.dy
    (0, 1225545, -999.62859)
    """
    if meta.get("type", [""])[0] != "stereographic":
        raise ValueError(
            f"{path}: the PGM header has no stereographic projection (type "
            f"{' '.join(meta.get('type', ['missing']))}); xnowcast reads FMI stereographic "
            "composites"
        )
    crs = pyproj.CRS.from_proj4(
        f"+proj=stere +lon_0={meta['centrallongitude'][0]} +lat_0={meta['centrallatitude'][0]} "
        f"+lat_ts={meta['truelatitude'][0]} +a={FMI_EARTH_RADIUS} +b={FMI_EARTH_RADIUS} "
        f"+x_0={FMI_FALSE_ORIGIN[0]} +y_0={FMI_FALSE_ORIGIN[1]} +units=m +no_defs"
    )
    to_xy = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    left, bottom = (float(v) for v in meta["bottomleft"][:2])
    right, top = (float(v) for v in meta["topright"][:2])
    x1, _ = to_xy.transform(left, bottom)
    _, y2 = to_xy.transform(right, top)
    dx, dy = float(meta["metersperpixel_x"][0]), float(meta["metersperpixel_y"][0])
    return Grid(crs, x0=float(x1), y0=float(y2), dx=dx, dy=-dy, nx=shape[1], ny=shape[0])


def open_fmi_pgm(path: str | os.PathLike) -> Any:
    """Open an FMI PGM (or gzipped PGM) composite lazily as a one-frame cube.

    Parameters
    ----------
    path : str or path
        The file (``.pgm`` or ``.pgm.gz``: gzip is recognised by its content).

    Returns
    -------
    Dataset
        ``reflectivity`` in dBZ, ``(time: 1, y, x)``, NaN where missing.

    Raises
    ------
    ValueError
        Not a binary PGM, no time or projection in the header.

    Examples
    --------
    >>> ds = open_fmi_pgm("../shared/data/formats/fmi/pgm/20160928/201609281445_fmi.radar.composite.lowest_FIN_SUOMI1.pgm.gz")  # doctest: +SKIP
    >>> ds.sizes["y"], ds.sizes["x"]  # doctest: +SKIP
    (1226, 760)
    """
    path = os.fspath(path)
    header = read_pgm_header(path)
    meta = header["meta"]
    if "obstime" not in meta:
        raise ValueError(f"{path}: the PGM header has no 'obstime'; is this an FMI composite?")
    shape = (header["height"], header["width"])
    grid = fmi_pgm_grid(meta, shape, path)
    time = pd.Timestamp(pd.to_datetime(meta["obstime"][0], format="%Y%m%d%H%M"))
    data = lazy_field(
        read_pgm,
        path,
        shape,
        offset=header["offset"],
        height=shape[0],
        width=shape[1],
        missing=header["maxval"],
    )
    attrs = {
        "units": "dBZ",
        "standard_name": "equivalent_reflectivity_factor",
        "long_name": " ".join(meta.get("param", ["reflectivity"])),
        "undetect": FMI_OFFSET,  # PV 0, the lowest class: no echo
    }
    glob = {
        "Conventions": "CF-1.8",
        "institution": "Finnish Meteorological Institute",
        "source": f"FMI PGM composite {' '.join(meta.get('productname', []))}".strip(),
    }
    return frame_dataset("reflectivity", data, grid, time, attrs, global_attrs=glob)
