"""xarray backend engines for the raw radar formats, for users who never call xnowcast.

Registered as ``xarray.backends`` entry points in ``pyproject.toml``:
``engine="xnowcast"`` recognises the format from the content, and
``engine="xnowcast_<format>"`` (``xnowcast_odim``, ``xnowcast_knmi``,
``xnowcast_mch_gif``, ``xnowcast_fmi_pgm``, ``xnowcast_geotiff``,
``xnowcast_mrms``) names it. Each file gives a one-frame Dataset
``(time: 1, y, x)`` whose values are one dask chunk, so
``xr.open_mfdataset(files, engine="xnowcast")`` stacks an archive along time.
The engines never claim files on their own (``guess_can_open`` is false):
``xr.open_dataset`` without ``engine=`` behaves as before.
On large grids, pass ``coords="minimal", compat="override"`` to
``open_mfdataset``: its default compares the lat/lon of every file, which
computes them.

Examples
--------
>>> import xarray as xr
>>> files = "../shared/data/formats/KNMI/2010/08/*.h5"
>>> ds = xr.open_mfdataset(files, engine="xnowcast", combine="by_coords")  # doctest: +SKIP
>>> ds.sizes["time"]  # doctest: +SKIP
3
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, ClassVar

import xarray as xr
from xarray.backends import BackendEntrypoint

from xnowcast.io.formats.detect import FORMATS, open_radar_file

__all__ = ["ENGINES", "RadarBackend", "engine_backend"]


class RadarBackend(BackendEntrypoint):
    """xarray engine ``xnowcast``: any raw radar format xnowcast reads, by content.

    Backend keywords (``backend_kwargs=`` or plain keywords of
    ``xr.open_dataset``) go to the format's reader, e.g. ``quantity="DBZH"``
    for ODIM.
    """

    format: ClassVar[str | None] = None
    description = (
        "Raw radar composites (ODIM/KNMI HDF5, GIF, PGM, GeoTIFF, MRMS GRIB2) via xnowcast"
    )
    url = "https://github.com/xnowcast/xnowcast/tree/main/docs/formats.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables")

    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        """Open one file; see :func:`xnowcast.io.formats.open_radar_file`."""
        if not isinstance(filename_or_obj, (str, os.PathLike)):
            raise TypeError(
                f"engine 'xnowcast' opens files by path, got {type(filename_or_obj).__name__}"
            )
        ds = open_radar_file(filename_or_obj, self.format, **kwargs)
        if drop_variables is not None:
            names = [drop_variables] if isinstance(drop_variables, str) else list(drop_variables)
            ds = ds.drop_vars(names, errors="ignore")
        return ds

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Never: the engines are chosen explicitly, so other files keep their engines."""
        return False


def engine_backend(format: str) -> type[RadarBackend]:
    """The backend class of one format (engine ``xnowcast_<format>``).

    Examples
    --------
    >>> engine_backend("odim").format
    'odim'
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; xnowcast reads {', '.join(FORMATS)}")
    return type(
        f"{format.title().replace('_', '')}Backend",
        (RadarBackend,),
        {
            "format": format,
            "description": f"{format} radar files via xnowcast",
            "__module__": __name__,
        },
    )


#: Engine name -> backend class (what pyproject.toml registers).
ENGINES: dict[str, type[RadarBackend]] = {
    "xnowcast": RadarBackend,
    **{f"xnowcast_{name}": engine_backend(name) for name in FORMATS},
}

OdimBackend = ENGINES["xnowcast_odim"]
KnmiBackend = ENGINES["xnowcast_knmi"]
MchGifBackend = ENGINES["xnowcast_mch_gif"]
FmiPgmBackend = ENGINES["xnowcast_fmi_pgm"]
GeotiffBackend = ENGINES["xnowcast_geotiff"]
MrmsBackend = ENGINES["xnowcast_mrms"]
