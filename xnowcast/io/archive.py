"""Open radar/satellite archives as one lazy cube.

An archive is a single multi-time file (netCDF or zarr), or many files each
holding one scan (or a few frames), named by a glob pattern or a list. Files
are opened lazily (dask-backed), checked to share one grid and one quantity,
stacked along time and sorted. Time comes from the file's CF time coordinate,
from a scalar time variable (the BOM files keep it in ``valid_time``), or from
the file name.

Raw radar formats (ODIM and KNMI HDF5, MeteoSwiss GIF, FMI PGM and GeoTIFF,
MRMS GRIB2) are recognised by their content and read by
:mod:`xnowcast.io.formats`; ``engine=`` names a format or any xarray engine
(``"cfgrib"``, ``"rasterio"``, ``"h5netcdf"``...), with ``backend_kwargs=``
passed to it.
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import error_line
from xnowcast.conventions import add_latlon, as_dataarray, find_spatial_dims, find_time_dim
from xnowcast.io.formats.backends import ENGINES
from xnowcast.io.formats.detect import FORMATS, detect_format, open_radar_file

__all__ = [
    "FRAME_SOURCES",
    "check_unique_times",
    "expand_paths",
    "frame_source",
    "label_raster_xy",
    "open_archive",
    "open_zarr_store",
    "parse_time_from_name",
]

#: Encoding key of a cube read from several files: ``{time (datetime64[ns]): path}``.
FRAME_SOURCES = "xnowcast_frame_sources"

_GLOB_CHARS = re.compile(r"[*?\[]")
_STRPTIME_REGEX = {
    "%Y": r"\d{4}",
    "%y": r"\d{2}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%j": r"\d{3}",
    "%f": r"\d{1,6}",
    "%%": "%",
}
_TIME_VAR_NAMES = ("time", "valid_time", "datetime", "t")


def expand_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Files named by a path, a glob pattern or a list of paths (globs sorted).

    Raises
    ------
    FileNotFoundError
        Nothing matches, or listed files do not exist (they are named).
    """
    if isinstance(paths, (str, os.PathLike)):
        text = os.fspath(paths)
        if _GLOB_CHARS.search(text):
            found = sorted(glob.glob(os.path.expanduser(text)))
            if not found:
                raise FileNotFoundError(
                    f"no files match {text!r}; check the pattern and quote it "
                    "in a shell so that xnowcast expands it"
                )
            return found
        items = [text]
    else:
        if isinstance(paths, (bytes, xr.DataArray, xr.Dataset)) or not isinstance(paths, Sequence):
            raise TypeError(
                f"paths must be a file, a zarr store, a glob pattern or a list of them, got "
                f"{type(paths).__name__}"
                + (
                    "; pass the cube itself to functions that take cubes"
                    if isinstance(paths, (xr.DataArray, xr.Dataset))
                    else ""
                )
            )
        try:
            items = [os.fspath(p) for p in paths]
        except TypeError:
            raise TypeError(
                f"paths must be file paths (str or pathlib.Path), got {paths!r}"
            ) from None
        if not items:
            raise ValueError("got an empty list of paths")
    missing = [p for p in items if not os.path.exists(os.path.expanduser(p))]
    if missing:
        raise FileNotFoundError(
            f"no such file(s): {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )
    return [os.path.expanduser(p) for p in items]


def _is_zarr(path: str) -> bool:
    p = Path(path)
    return p.suffix == ".zarr" or (
        p.is_dir() and any((p / marker).exists() for marker in (".zgroup", ".zarray", "zarr.json"))
    )


def open_zarr_store(path: str | os.PathLike, **kwargs: Any) -> xr.Dataset:
    """Open a zarr store lazily, with or without consolidated metadata."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
        return xr.open_zarr(path, **kwargs)


#: Suffixes of the raw radar formats, to name what a file that is not one seemed to be.
_SUFFIXES = {
    ".hdf": "ODIM HDF5",
    ".h5": "HDF5 (ODIM or KNMI)",
    ".gif": "MeteoSwiss GIF",
    ".pgm": "FMI PGM",
    ".gz": "gzipped (FMI PGM or MRMS GRIB2)",
    ".tif": "GeoTIFF",
    ".tiff": "GeoTIFF",
    ".grib2": "GRIB2",
    ".grb2": "GRIB2",
}


def reader_format(path: str, engine: str | None = None) -> str | None:
    """The :mod:`xnowcast.io.formats` reader for a file, or ``None`` for xarray's engines.

    ``engine`` names a format (``"odim"``) or its xarray engine
    (``"xnowcast_odim"``; ``"xnowcast"``: by content); any other engine is
    xarray's. Without ``engine``, the file's content decides; a file whose
    suffix names a raw format that its content is not is refused.

    Raises
    ------
    ValueError
        The suffix names a raw format but the content is not one (truncated,
        corrupt or misnamed), or an HDF5 file cannot be opened.

    Examples
    --------
    >>> reader_format("frames/a.nc", engine="xnowcast_odim")
    'odim'
    >>> reader_format("frames/a.nc", engine="h5netcdf") is None
    True
    """
    if engine is not None:
        if engine in FORMATS:
            return engine
        if engine in ENGINES:
            fmt = ENGINES[engine].format
            return fmt if fmt is not None else _detected(path)
        return None
    if _is_zarr(path):
        return None
    return _detected(path, by_suffix=True)


def _detected(path: str, by_suffix: bool = False) -> str | None:
    fmt = detect_format(path)
    if fmt is None and by_suffix:
        name = path.lower()
        suffix = next((s for s in _SUFFIXES if name.endswith(s)), None)
        if suffix is not None and not name.endswith((".nc.gz", ".tar.gz")):
            raise ValueError(
                f"named like a {_SUFFIXES[suffix]} file but its content is not one xnowcast "
                "reads (truncated, corrupt or misnamed?); name the reader with engine='...'"
            )
    if fmt is None and not by_suffix:
        raise ValueError(f"not a raw radar file xnowcast reads ({', '.join(FORMATS)})")
    return fmt


def _open_one(
    path: str, chunks: Any, engine: str | None = None, backend_kwargs: dict | None = None
) -> xr.Dataset:
    options = dict(backend_kwargs or {})
    fmt = reader_format(path, engine)
    if fmt is not None:
        ds = open_radar_file(path, fmt, **options)
        return ds.chunk(chunks) if chunks else ds
    kwargs = {"chunks": chunks, "decode_coords": "all"}
    if engine is None and _is_zarr(path):
        return open_zarr_store(path, **kwargs)
    if engine == "cfgrib":
        options.setdefault("indexpath", "")  # no .idx files written next to the data
    ds = xr.open_dataset(path, engine=engine, backend_kwargs=options or None, **kwargs)
    return label_raster_xy(ds) if engine == "rasterio" else ds


def label_raster_xy(ds: xr.Dataset) -> xr.Dataset:
    """CF attributes for the bare ``x``/``y`` of a projected raster (rioxarray leaves them bare).

    Without them the cube's x/y are not known to be metres, so no lat/lon can
    be derived. Only coordinates without ``units`` are labelled, from the
    units of the raster's CRS (``spatial_ref``).

    Examples
    --------
    >>> import numpy as np, pyproj, xarray as xr
    >>> crs = pyproj.CRS("EPSG:3067")
    >>> ds = xr.Dataset({"a": (("y", "x"), np.zeros((1, 2)))}, coords={"x": [0.0, 1.0],
    ...     "y": [0.0], "spatial_ref": ((), 0, {"crs_wkt": crs.to_wkt()})})
    >>> label_raster_xy(ds)["x"].attrs["units"]
    'm'
    """
    ref = ds.coords.get("spatial_ref")
    wkt = ref.attrs.get("crs_wkt") if ref is not None else None
    if not isinstance(wkt, str):
        return ds
    from pyproj import CRS

    crs = CRS.from_wkt(wkt)
    if not crs.is_projected or not crs.axis_info:
        return ds
    units = "m" if crs.axis_info[0].unit_name in ("metre", "meter") else crs.axis_info[0].unit_name
    for dim, axis in (("x", "X"), ("y", "Y")):
        if dim in ds.coords and "units" not in ds[dim].attrs:
            ds[dim].attrs.update(
                standard_name=f"projection_{dim}_coordinate", units=units, axis=axis
            )
    return ds


def parse_time_from_name(path: str | os.PathLike, time_format: str) -> pd.Timestamp:
    """Parse a time from a file name with a ``strptime`` format.

    The first part of the file's base name that matches the format is used.

    Examples
    --------
    >>> parse_time_from_name("radar/2_20180616_100600.prcp-cscn.nc", "%Y%m%d_%H%M%S")
    Timestamp('2018-06-16 10:06:00')
    """
    name = os.path.basename(os.fspath(path).rstrip("/"))
    pattern = "".join(
        _STRPTIME_REGEX.get(tok, re.escape(tok)) if tok.startswith("%") or tok else ""
        for tok in re.split(r"(%.)", time_format)
    )
    match = re.search(pattern, name)
    if match is None:
        raise ValueError(f"file name {name!r} has no part matching the time format {time_format!r}")
    try:
        return pd.Timestamp(datetime.strptime(match.group(0), time_format))
    except ValueError as err:
        raise ValueError(f"cannot parse a time from {name!r} with {time_format!r}: {err}") from None


def _scan_time(ds: xr.Dataset, path: str, time: str | None) -> pd.Timestamp:
    """Time of a single-scan file (no time dimension)."""
    if time is not None and "%" in time:
        return parse_time_from_name(path, time)
    if time is not None:
        if time not in ds.variables:
            raise ValueError(
                f"{path}: no variable {time!r} to read the time from; its variables "
                f"are {', '.join(map(str, ds.variables))}"
            )
        candidates = [time]
    else:
        candidates = [
            str(name)
            for name, v in ds.variables.items()
            if v.ndim == 0
            and np.issubdtype(v.dtype, np.datetime64)
            and (v.attrs.get("standard_name") == "time" or str(name) in _TIME_VAR_NAMES)
        ]
    if not candidates:
        raise ValueError(
            f"{path}: no time found (no time dimension and no scalar CF time variable); pass "
            "time='<variable name>' or a file-name pattern such as time='%Y%m%d_%H%M%S'"
        )
    value = ds[candidates[0]].values
    if not np.issubdtype(np.asarray(value).dtype, np.datetime64):
        raise TypeError(
            f"{path}: time variable {candidates[0]!r} is not a decoded datetime "
            f"(dtype {np.asarray(value).dtype}); check its CF units attribute"
        )
    return pd.Timestamp(value)


def _as_frames(ds: xr.Dataset, path: str, var: str | None, time: str | None) -> xr.DataArray:
    try:
        da = as_dataarray(ds, var)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if "band" in da.dims and da.sizes["band"] == 1:  # a one-band raster (engine="rasterio")
        da = da.squeeze("band", drop=True)
    try:
        time_dim = find_time_dim(da)
    except ValueError:
        time_dim = None
    if time_dim is None or time_dim not in da.dims:
        stamp = _scan_time(ds, path, time)
        scalars = {
            name: ((), v.values, v.attrs)
            for name, v in ds.variables.items()
            if v.ndim == 0
            and name != var
            and name not in da.coords
            and np.issubdtype(v.dtype, np.datetime64)
            and name != (time or "")
            and v.attrs.get("standard_name") != "time"
        }
        da = da.expand_dims(time=[stamp]).assign_coords(
            {
                name: ("time", np.atleast_1d(values), attrs)
                for name, (_, values, attrs) in scalars.items()
            }
        )
        da["time"].attrs.update(standard_name="time", long_name="time")
    elif time_dim != "time":
        da = da.rename({time_dim: "time"})
    return da


def open_archive(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    var: str | None = None,
    time: str | None = None,
    chunks: Any = None,
    engine: str | None = None,
    backend_kwargs: dict[str, Any] | None = None,
) -> xr.DataArray:
    """Open per-scan files, a zarr store or a multi-time file as one lazy cube.

    Parameters
    ----------
    paths : str, path or list of paths
        A file, a zarr store, a glob pattern (``"radar/*.nc"``) or a list.
    var : str, optional
        Variable to read when the files hold several gridded variables.
    time : str, optional
        Where the time of a single-scan file is: the name of a scalar time
        variable, or a ``strptime`` pattern applied to the file name (any text
        with ``%``, e.g. ``"%Y%m%d_%H%M%S"``). Default: the CF time coordinate,
        else a scalar datetime variable named ``time``/``valid_time`` or with
        ``standard_name="time"``.
    chunks : dict, optional
        Dask chunks; default: one chunk per file for per-scan archives and the
        on-disk chunking of multi-time files.
    engine : str, optional
        How to read the files: a raw radar format of :mod:`xnowcast.io.formats`
        (``"odim"``, ``"knmi"``, ``"mch_gif"``, ``"fmi_pgm"``, ``"geotiff"``,
        ``"mrms"``) or any xarray engine (``"cfgrib"``, ``"rasterio"``,
        ``"h5netcdf"``...). Default: raw radar formats are recognised by their
        content, anything else goes to xarray (netCDF, zarr).
    backend_kwargs : dict, optional
        Options of the reader (``{"quantity": "DBZH"}`` for ODIM files holding
        several quantities) or of the xarray engine.

    Returns
    -------
    DataArray
        Lazy cube ``(time, y, x)`` sorted by time, with the files' attributes,
        the grid-mapping coordinate and 2-D lat/lon (derived from the grid
        mapping when the files have none). Nothing is converted: units and
        values are those of the files (for raw formats, the physical values
        the file encodes; see :mod:`xnowcast.units` to get rain rates).

    Raises
    ------
    FileNotFoundError
        Nothing matches ``paths``.
    ValueError
        Unreadable (truncated, corrupt) files, files on different grids or
        holding different quantities, or duplicate times; the message lists
        the offending files.

    Examples
    --------
    >>> cube = open_archive("../shared/data/radar/bom-2-20180616/*.nc")  # doctest: +SKIP
    >>> cube.sizes  # doctest: +SKIP
    Frozen({'time': 61, 'y': 512, 'x': 512})
    >>> opera = open_archive("../shared/data/formats/OPERA/20180824/*.hdf")  # doctest: +SKIP
    >>> opera.name, opera.attrs["units"], opera.sizes["time"]  # doctest: +SKIP
    ('RATE', 'mm h-1', 24)
    """
    files = expand_paths(paths)
    chunks = {} if chunks is None else chunks
    frames: list[xr.DataArray] = []
    sources: list[str] = []
    failures: list[str] = []
    for path in files:
        if os.path.isdir(path) and not _is_zarr(path):
            failures.append(
                f"{path} (a folder, not a zarr store; give a glob of the files in "
                "it, e.g. 'folder/*.nc')"
            )
            continue
        try:
            ds = _open_one(path, chunks, engine, backend_kwargs)
        except Exception as err:
            failures.append(f"{path} ({error_line(err)})")
            continue
        frames.append(_as_frames(ds, path, var, time))
        sources.append(path)
    if failures:
        raise ValueError(
            f"{len(failures)} of {len(files)} file(s) could not be read: "
            + "; ".join(failures[:10])
            + (" ..." if len(failures) > 10 else "")
        )
    _check_same_grid(frames, sources)
    _check_same_quantity(frames, sources)
    if len(frames) == 1:
        cube = frames[0]
    else:
        cube = xr.concat(
            frames,
            dim="time",
            coords="minimal",
            compat="override",
            join="override",
            combine_attrs="drop_conflicts",
        )
    per_frame = np.concatenate([[s] * f.sizes["time"] for s, f in zip(sources, frames)])
    check_unique_times(cube, per_frame)
    order = np.argsort(cube["time"].values, kind="stable")
    if (np.diff(order) != 1).any():
        cube = cube.isel(time=order)
    _record_sources(cube, per_frame)
    if len(files) > 1:
        cube.attrs.setdefault(
            "source_files", f"{len(files)} files, e.g. {os.path.basename(files[0])}"
        )
    y_dim, x_dim = find_spatial_dims(cube, "time")
    return add_latlon(cube, y_dim=y_dim, x_dim=x_dim)


def _record_sources(cube: xr.DataArray, per_frame: np.ndarray) -> None:
    """Record the file (or store) of every frame in the encoding of ``cube``, for error messages.

    One source: ``encoding["source"]``, as xarray records a netCDF file's (and
    does not for zarr stores); several: :data:`FRAME_SOURCES`, by time, which
    survives selections along time.
    """
    if len(set(per_frame)) == 1:
        cube.encoding["source"] = str(per_frame[0])
        return
    cube.encoding.pop("source", None)  # xarray kept the first file's: wrong for the others
    times = np.asarray(cube["time"].values).astype("datetime64[ns]")
    by_time = dict(zip(np.asarray(cube["time"].values).astype("datetime64[ns]"), per_frame))
    cube.encoding[FRAME_SOURCES] = {t: str(by_time[t]) for t in times}


def frame_source(cube: xr.DataArray, time: Any) -> str | None:
    """The file or zarr store holding the frame of ``cube`` at ``time``, when recorded.

    :func:`open_archive` records it (in the cube's encoding), as xarray does
    for a single netCDF file; in-memory cubes and most computed ones record
    none (``None``).

    Examples
    --------
    >>> import os, tempfile
    >>> from xnowcast.datasets import synthetic_radar
    >>> path = os.path.join(tempfile.mkdtemp(), "radar.zarr")
    >>> _ = synthetic_radar(n_times=3, size=8).to_dataset().to_zarr(path, consolidated=False)
    >>> cube = open_archive(path)
    >>> frame_source(cube, cube.time.values[1]) == path
    True
    >>> frame_source(synthetic_radar(n_times=3, size=8), "2024-06-01T12:00") is None
    True
    """
    sources = cube.encoding.get(FRAME_SOURCES)
    if isinstance(sources, dict):
        found = sources.get(np.datetime64(pd.Timestamp(time).to_datetime64(), "ns"))
        if found is not None:
            return str(found)
    source = cube.encoding.get("source")
    return source if isinstance(source, str) else None


def _grid_key(da: xr.DataArray) -> tuple:
    time_dim = "time"
    parts = []
    for dim in da.dims:
        if dim == time_dim:
            continue
        coord = da.coords.get(dim)
        values = np.asarray(coord.values) if coord is not None else np.arange(da.sizes[dim])
        parts.append((str(dim), values.shape, values.tobytes()))
    return tuple(parts)


def _check_same_grid(frames: list[xr.DataArray], sources: list[str]) -> None:
    groups: dict[tuple, list[str]] = defaultdict(list)
    for da, src in zip(frames, sources):
        groups[_grid_key(da)].append(src)
    if len(groups) > 1:
        described = []
        for key, files in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            shape = " x ".join(f"{name}={shape[0]}" for name, shape, _ in key)
            described.append(f"[{shape}: {len(files)} file(s), e.g. {', '.join(files[:3])}]")
        raise ValueError(
            "the files are on different grids: "
            + " ".join(described)
            + "; open each grid separately or regrid first"
        )


def _check_same_quantity(frames: list[xr.DataArray], sources: list[str]) -> None:
    groups: dict[tuple, list[str]] = defaultdict(list)
    for da, src in zip(frames, sources):
        groups[(da.name, da.attrs.get("units"), da.attrs.get("standard_name"))].append(src)
    if len(groups) > 1:
        described = [
            f"[{name} ({units or 'no units'}): {len(files)} file(s), e.g. {', '.join(files[:3])}]"
            for (name, units, _), files in sorted(groups.items(), key=lambda kv: -len(kv[1]))
        ]
        raise ValueError(
            "the files hold different quantities or products: "
            + " ".join(described)
            + "; open each product separately (a glob per product, or var=/backend_kwargs= "
            "to pick one quantity)"
        )


def check_unique_times(cube: xr.DataArray, per_frame_source: np.ndarray) -> None:
    """Raise a ``ValueError`` listing the files of any time that occurs twice."""
    times = pd.DatetimeIndex(cube["time"].values)
    dup = times.duplicated(keep=False)
    if dup.any():
        listing = defaultdict(list)
        for t, src in zip(times[dup], per_frame_source[dup]):
            listing[t].append(os.path.basename(src))
        shown = "; ".join(f"{t}: {', '.join(s)}" for t, s in list(listing.items())[:5])
        raise ValueError(
            f"{len(listing)} time(s) occur more than once: {shown}; remove the "
            "duplicate files or select them explicitly"
        )
