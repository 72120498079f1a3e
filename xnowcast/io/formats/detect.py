"""Which raw radar format a file is in, and one entry point to open any of them.

Formats are recognised by content (magic bytes; for HDF5, the groups that
ODIM and KNMI files have and netCDF-4 files lack), never by suffix alone, so
that renamed or suffix-less files work and netCDF-4 (also HDF5) goes on to
xarray's own engines.

=========  ===============================================  ==========================
format     files                                            recognised by
=========  ===============================================  ==========================
odim       ODIM HDF5 composites (OPERA, national)           HDF5 with what + datasetN
knmi       KNMI HDF5 composites                             HDF5 with geographic/image1
mch_gif    MeteoSwiss AQC/CPC GIF                           ``GIF8``
fmi_pgm    FMI PGM, gzipped or not                          ``P5`` (inside gzip too)
geotiff    radar GeoTIFF (FMI)                              ``II*`` / ``MM*``
mrms       NOAA MRMS GRIB2, gzipped or not                  ``GRIB`` (inside gzip too)
=========  ===============================================  ==========================

Examples
--------
>>> sorted(FORMATS)
['fmi_pgm', 'geotiff', 'knmi', 'mch_gif', 'mrms', 'odim']
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from typing import Any

import xarray as xr

from xnowcast.checks import choice
from xnowcast.io.formats.fmi_pgm import open_fmi_pgm
from xnowcast.io.formats.geotiff import open_geotiff
from xnowcast.io.formats.knmi import open_knmi
from xnowcast.io.formats.mch_gif import open_mch_gif
from xnowcast.io.formats.mrms import open_mrms
from xnowcast.io.formats.odim import open_odim
from xnowcast.optional import import_optional

__all__ = ["FORMATS", "detect_format", "open_radar_file"]

#: Format name -> function opening one file as a one-frame Dataset.
FORMATS: dict[str, Callable[..., xr.Dataset]] = {
    "odim": open_odim,
    "knmi": open_knmi,
    "mch_gif": open_mch_gif,
    "fmi_pgm": open_fmi_pgm,
    "geotiff": open_geotiff,
    "mrms": open_mrms,
}

_HDF5 = b"\x89HDF\r\n\x1a\n"


def _hdf5_flavour(path: str) -> str | None:
    h5py = import_optional("h5py", "reading HDF5 radar files")
    try:
        with h5py.File(path, "r") as h5:
            keys = set(h5.keys())
            conventions = h5.attrs.get("Conventions", b"")
    except OSError as err:
        raise ValueError(f"{path}: a damaged HDF5 file ({err})") from None
    if isinstance(conventions, bytes):
        conventions = conventions.decode("latin-1")
    if {"geographic", "image1"} <= keys:
        return "knmi"
    odim_groups = "what" in keys and any(k.startswith("dataset") for k in keys)
    if odim_groups or str(conventions).startswith("ODIM"):
        return "odim"
    return None


def detect_format(path: str | os.PathLike) -> str | None:
    """The raw radar format of a file, or ``None`` for anything else (netCDF, zarr...).

    Raises
    ------
    ValueError
        An HDF5 file that h5py cannot open (truncated or corrupt).

    Examples
    --------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "frame.pgm")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"P5\\n2 1\\n255\\n\\x00\\x01")
    >>> detect_format(path)
    'fmi_pgm'
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return None
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path, "rb") as f:
                head = f.read(8)
        except (OSError, EOFError):
            return None
        if head.startswith(b"GRIB"):
            return "mrms"
        return "fmi_pgm" if head.startswith(b"P5") else None
    if head.startswith(_HDF5):
        return _hdf5_flavour(path)
    if head.startswith(b"GIF8"):
        return "mch_gif"
    if head.startswith(b"P5"):
        return "fmi_pgm"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "geotiff"
    if head.startswith(b"GRIB"):
        return "mrms"
    return None


def open_radar_file(
    path: str | os.PathLike, format: str | None = None, **kwargs: Any
) -> xr.Dataset:
    """Open one raw radar file lazily as a one-frame cube ``(time: 1, y, x)``.

    Parameters
    ----------
    path : str or path
        The file.
    format : str, optional
        One of :data:`FORMATS`; default: recognised from the content.
    **kwargs
        Options of the format's reader (``quantity="DBZH"`` for ODIM).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Not a format xnowcast reads (the message lists them), or a reader's
        error (unknown quantity, truncated file...).

    Examples
    --------
    >>> ds = open_radar_file("../shared/data/formats/KNMI/2010/08/RAD_NL25_RAP_5min_201008260000.h5")  # doctest: +SKIP
    >>> list(ds.data_vars)  # doctest: +SKIP
    ['precipitation']
    """
    if format is None:
        format = detect_format(path)
        if format is None:
            raise ValueError(
                f"{os.fspath(path)}: not a raw radar format xnowcast recognises "
                f"({', '.join(FORMATS)}); open netCDF/zarr with open_archive, or name an "
                "xarray engine with open_archive(..., engine='...')"
            )
    else:
        format = choice(format, "format", FORMATS)
    return FORMATS[format](path, **kwargs)
