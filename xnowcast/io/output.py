"""Writing forecasts to netCDF or zarr, keeping coordinates and attributes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import xarray as xr

__all__ = ["CF_CONVENTIONS", "coordinate_encoding", "open_forecast", "save_forecast"]

#: The ``Conventions`` attribute of the files xnowcast writes.
CF_CONVENTIONS = "CF-1.8"


def _format(path: Path) -> str:
    if path.suffix == ".zarr":
        return "zarr"
    if path.suffix in (".nc", ".nc4", ".netcdf"):
        return "netcdf"
    raise ValueError(
        f"cannot tell the output format of {str(path)!r}: end the name in .zarr or .nc"
    )


def save_forecast(
    fc: xr.DataArray, path: str | os.PathLike, *, overwrite: bool = False, compute: bool = True
):
    """Write a forecast to ``.zarr`` or ``.nc`` (format from the suffix).

    Lazy (dask) forecasts are computed chunk by chunk while writing.

    Parameters
    ----------
    fc : DataArray
        A forecast from :func:`xnowcast.forecast`.
    path : str or path
        Output path ending in ``.zarr`` or ``.nc``.
    overwrite : bool
        Replace an existing file or store; by default an existing one is
        refused.
    compute : bool
        ``False`` returns a dask delayed object instead of writing now.

    Examples
    --------
    >>> import xnowcast, tempfile, os
    >>> fc = xnowcast.datasets.synthetic_radar(n_times=13, size=16).nowcast.forecast(n_out=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "fc.nc")
    >>> _ = save_forecast(fc, path)
    >>> open_forecast(path).attrs["xnowcast_model"]
    'persistence'
    """
    from xnowcast.conventions import as_dataarray

    fc = as_dataarray(fc)
    path = Path(path)
    fmt = _format(path)
    if path.exists():
        if not overwrite:
            raise FileExistsError(
                f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it"
            )
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    name = fc.name if fc.name is not None else "forecast"
    ds = fc.to_dataset(name=name)
    ds.attrs.setdefault("Conventions", CF_CONVENTIONS)
    encoding = coordinate_encoding(ds)
    if fmt == "zarr":
        return ds.to_zarr(path, mode="w", compute=compute, consolidated=False, encoding=encoding)
    encoding[name] = {"zlib": True, "complevel": 4}
    return ds.to_netcdf(path, encoding=encoding, compute=compute)


def coordinate_encoding(ds: xr.Dataset) -> dict[str, dict]:
    """Encoding that writes the coordinates of ``ds`` without a ``_FillValue``.

    xarray gives every float variable a NaN ``_FillValue`` by default; CF does not allow
    missing values in coordinate variables (``x``, ``y``), and lat/lon have none.

    Examples
    --------
    >>> import xarray as xr
    >>> coordinate_encoding(xr.Dataset(coords={"x": [0.0, 1.0]}))
    {'x': {'_FillValue': None}}
    """
    return {str(k): {"_FillValue": None} for k, v in ds.coords.items() if v.dtype.kind == "f"}


def open_forecast(path: str | os.PathLike, var: str | None = None) -> xr.DataArray:
    """Open a forecast written by :func:`save_forecast` (lazily).

    Parameters
    ----------
    path : str or path
        A ``.zarr`` store or ``.nc`` file.
    var : str, optional
        Variable, when the file holds several.
    """
    from xnowcast.conventions import as_dataarray
    from xnowcast.io.archive import open_zarr_store

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such forecast file: {str(path)!r}")
    if _format(path) == "zarr":
        ds = open_zarr_store(path, decode_coords="all")
    else:
        ds = xr.open_dataset(path, decode_coords="all", chunks={})
    return _coords_chunked_like_data(as_dataarray(ds, var))


def _coords_chunked_like_data(da: xr.DataArray) -> xr.DataArray:
    """Chunk the lazy coordinates like the data along the dims they share.

    zarr stores chunk 2-D ``lat``/``lon`` on their own (e.g. 256 x 256 under a 512 x 512
    data chunk); a DataArray whose coordinates and data disagree has no ``chunksizes``
    and cannot be aligned chunk-wise with observations.
    """
    if da.chunks is None:
        return da
    data_chunks = dict(zip(da.dims, da.chunks))
    fixed = {}
    for name, coord in da.coords.items():
        if name in da.dims or coord.chunks is None:
            continue
        want = {d: data_chunks[d] for d in coord.dims if d in data_chunks}
        if any(coord.chunks[coord.dims.index(d)] != c for d, c in want.items()):
            fixed[name] = coord.variable.chunk(want)
    return da.assign_coords(fixed) if fixed else da
