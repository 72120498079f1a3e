"""The standard cube of one raw radar file, shared by every format reader.

A reader works out the file's grid (projection, pixel size, corner), its time
and what it holds; :func:`frame_dataset` turns that into the cube every other
part of xnowcast expects: dims ``(time, y, x)`` with one frame, projected
``x``/``y`` (pixel centres, metres, or degrees on a latitude-longitude grid),
a CF grid-mapping coordinate ``crs``, lazy 2-D ``lat``/``lon`` and the values
as one dask chunk read by a loader function only when they are computed.

Examples
--------
>>> import numpy as np, pandas as pd, pyproj
>>> grid = Grid(pyproj.CRS("EPSG:3067"), x0=0.0, y0=1000.0, dx=250.0, dy=-250.0, nx=3, ny=2)
>>> grid.x.tolist(), grid.y.tolist()
([125.0, 375.0, 625.0], [875.0, 625.0])
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import pyproj
import xarray as xr

__all__ = [
    "Grid",
    "cf_grid_mapping",
    "frame_dataset",
    "lazy_field",
    "lazy_latlon",
]

#: Block size of the lazy lat/lon coordinates (rows, columns).
LATLON_BLOCK = 1024


@dataclass(frozen=True)
class Grid:
    """A regular grid: projection, outer corner of the first pixel, spacing and size.

    Parameters
    ----------
    crs : pyproj.CRS
        The projection of the file.
    x0, y0 : float
        Outer corner of the first pixel (first row, first column), in the
        units of the CRS (metres, or degrees for a latitude-longitude grid).
    dx, dy : float
        Pixel size; ``dy`` is negative for north-up images (first row north).
    nx, ny : int
        Number of columns and rows.

    Examples
    --------
    >>> import pyproj
    >>> g = Grid(pyproj.CRS("EPSG:4326"), x0=-130.0, y0=55.0, dx=0.5, dy=-0.5, nx=2, ny=2)
    >>> g.is_geographic, g.y.tolist()
    (True, [54.75, 54.25])
    """

    crs: pyproj.CRS
    x0: float
    y0: float
    dx: float
    dy: float
    nx: int
    ny: int

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates."""
        return self.x0 + (np.arange(self.nx) + 0.5) * self.dx

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates."""
        return self.y0 + (np.arange(self.ny) + 0.5) * self.dy

    @property
    def is_geographic(self) -> bool:
        """Whether x/y are longitude/latitude in degrees."""
        return bool(self.crs.is_geographic)


def cf_grid_mapping(crs: pyproj.CRS) -> dict[str, Any]:
    """CF grid-mapping attributes of a CRS (``crs_wkt`` and ``proj4`` included).

    Examples
    --------
    >>> import pyproj
    >>> cf_grid_mapping(pyproj.CRS("+proj=stere +lat_0=90 +lon_0=25 +lat_ts=60"))["grid_mapping_name"]
    'polar_stereographic'
    """
    attrs: dict[str, Any] = {}
    with warnings.catch_warnings():
        # pyproj warns of parameters that CF or PROJ strings cannot hold: crs_wkt keeps them
        warnings.simplefilter("ignore", UserWarning)
        try:
            attrs.update(crs.to_cf())
        except Exception:  # not every CRS has CF parameters; crs_wkt is enough
            attrs["crs_wkt"] = crs.to_wkt()
        proj4 = crs.to_proj4()
    attrs.setdefault("crs_wkt", crs.to_wkt())
    if proj4:
        attrs["proj4"] = proj4
    return {k: v for k, v in attrs.items() if v is not None}


@functools.lru_cache(maxsize=16)
def _to_geo(wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(wkt), "EPSG:4326", always_xy=True)


def _latlon_block(y: np.ndarray, x: np.ndarray, wkt: str) -> np.ndarray:
    """``(2, ny, nx)``: lat and lon of one block of pixel centres (``y`` a column, ``x`` a row)."""
    xx, yy = np.broadcast_arrays(x.astype("float64"), y.astype("float64"))
    lon, lat = _to_geo(wkt).transform(xx, yy)
    return np.stack([lat, lon]).astype("float32")


def lazy_latlon(grid: Grid) -> tuple[dsa.Array, dsa.Array]:
    """2-D ``(lat, lon)`` of the pixel centres, as dask arrays computed block by block.

    Lazy so that opening a large grid (OPERA 4400 x 3800, MRMS 3500 x 7000)
    costs nothing until lat/lon are used; lat and lon of a block come from
    one transformation, and the same grid gives the same dask keys, so an
    archive computes them once.

    Examples
    --------
    >>> import pyproj
    >>> g = Grid(pyproj.CRS("EPSG:4326"), x0=10.0, y0=50.0, dx=1.0, dy=-1.0, nx=2, ny=1)
    >>> lat, lon = lazy_latlon(g)
    >>> lat.compute().tolist(), lon.compute().tolist()
    ([[49.5, 49.5]], [[10.5, 11.5]])
    """
    wkt = grid.crs.to_wkt()
    cy, cx = tuple(_sizes(grid.ny, LATLON_BLOCK)), tuple(_sizes(grid.nx, LATLON_BLOCK))
    y = dsa.from_array(grid.y[:, None], chunks=(cy, (1,)))
    x = dsa.from_array(grid.x[None, :], chunks=((1,), cx))
    token = dask.base.tokenize(grid.x, grid.y, wkt)
    both = dsa.map_blocks(
        _latlon_block,
        y,
        x,
        wkt=wkt,
        new_axis=0,
        chunks=((2,), cy, cx),
        dtype="float32",
        name=f"xnowcast-latlon-{token}",
    )
    return both[0], both[1]


def _sizes(n: int, block: int) -> list[int]:
    return [min(block, n - start) for start in range(0, n, block)] or [0]


def lazy_field(
    loader: Callable[..., np.ndarray],
    path: str,
    shape: tuple[int, int],
    dtype: Any = "float32",
    **kwargs: Any,
) -> dsa.Array:
    """One frame read by ``loader(path, **kwargs)`` when computed: a single dask chunk.

    The dask key depends on the path, its modification time and the options,
    so opening the same file twice gives the same graph.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "frame.npy")
    >>> np.save(path, np.ones((2, 3), "float32"))
    >>> arr = lazy_field(np.load, path, (2, 3))
    >>> arr.chunks, float(arr.sum().compute())
    (((2,), (3,)), 6.0)
    """
    token = dask.base.tokenize(
        os.path.abspath(path), os.path.getmtime(path), loader.__module__, loader.__name__, kwargs
    )
    delayed = dask.delayed(loader, pure=True)(path, **kwargs, dask_key_name=f"read-{token}")
    return dsa.from_delayed(delayed, shape=shape, dtype=dtype, name=f"xnowcast-frame-{token}")


def _xy_attrs(grid: Grid) -> tuple[dict[str, str], dict[str, str]]:
    if grid.is_geographic:
        return (
            {"standard_name": "longitude", "units": "degrees_east", "axis": "X"},
            {"standard_name": "latitude", "units": "degrees_north", "axis": "Y"},
        )
    unit = grid.crs.axis_info[0].unit_name if grid.crs.axis_info else "metre"
    units = "m" if unit in ("metre", "meter", "m") else unit
    return (
        {"standard_name": "projection_x_coordinate", "units": units, "axis": "X"},
        {"standard_name": "projection_y_coordinate", "units": units, "axis": "Y"},
    )


def frame_dataset(
    name: str,
    data: dsa.Array,
    grid: Grid,
    time: pd.Timestamp,
    attrs: dict[str, Any],
    *,
    start_time: pd.Timestamp | None = None,
    global_attrs: dict[str, Any] | None = None,
) -> xr.Dataset:
    """The one-frame cube ``(time: 1, y, x)`` of a raw file, as a Dataset.

    Parameters
    ----------
    name : str
        Name of the data variable.
    data : dask array
        The frame ``(y, x)`` (from :func:`lazy_field`).
    grid : Grid
        Its grid.
    time : pandas.Timestamp
        Nominal (valid) time of the frame; for an accumulation, its end.
    attrs : dict
        Attributes of the variable: ``units``, ``standard_name``, ``long_name``...
    start_time : pandas.Timestamp, optional
        Start of the accumulation period, recorded as a ``start_time``
        coordinate along time (as in the BOM files).
    global_attrs : dict, optional
        Attributes of the Dataset.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> import dask.array as dsa, pandas as pd, pyproj
    >>> g = Grid(pyproj.CRS("EPSG:3067"), x0=0.0, y0=1000.0, dx=250.0, dy=-250.0, nx=3, ny=2)
    >>> ds = frame_dataset("dbz", dsa.zeros((2, 3)), g, pd.Timestamp("2016-09-28 14:45"),
    ...                    {"units": "dBZ"})
    >>> ds["dbz"].dims, ds["dbz"].attrs["grid_mapping"], ds["lat"].dims
    (('time', 'y', 'x'), 'crs', ('y', 'x'))
    """
    x_attrs, y_attrs = _xy_attrs(grid)
    lat, lon = lazy_latlon(grid)
    # lat/lon first: on a latitude-longitude grid, x/y are latitude/longitude too, and
    # readers of the cube take the first latitude coordinate they find.
    coords: dict[str, Any] = {
        "lat": (
            ("y", "x"),
            lat,
            {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude"},
        ),
        "lon": (
            ("y", "x"),
            lon,
            {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude"},
        ),
        "time": ("time", [np.datetime64(pd.Timestamp(time), "ns")], {"standard_name": "time"}),
        "y": ("y", grid.y, y_attrs),
        "x": ("x", grid.x, x_attrs),
        "crs": ((), np.int32(0), cf_grid_mapping(grid.crs)),
    }
    if start_time is not None:
        coords["start_time"] = (
            "time",
            [np.datetime64(pd.Timestamp(start_time), "ns")],
            {"long_name": "start of the accumulation period"},
        )
    var_attrs = {**attrs, "grid_mapping": "crs"}
    if start_time is not None:
        var_attrs.setdefault("cell_methods", "time: sum")
    ds = xr.Dataset(
        {name: (("time", "y", "x"), data[None], var_attrs)},
        coords=coords,
        attrs=dict(global_attrs or {}),
    )
    ds[name].encoding["preferred_chunks"] = {"time": 1, "y": grid.ny, "x": grid.nx}
    return ds
