"""Writing outputs safely, and forecasts to netCDF or zarr with their coordinates and attributes.

Every file or store xnowcast writes goes through :func:`atomic_output`: it is
written to a temporary sibling and renamed into place only once complete, so
that a failed write (a corrupt input chunk, a full disk, an interrupt) leaves
an existing output as it was and no fragment behind. An existing output is
replaced only when asked (``overwrite=True``, ``--overwrite``), and never
when it is one of the inputs (:func:`check_output`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "CF_CONVENTIONS",
    "COMPLETE_ATTR",
    "STORAGE_CHUNK_BYTES",
    "ZARR_FORMAT",
    "atomic_output",
    "check_output",
    "check_zarr_format",
    "consolidate_store",
    "coordinate_encoding",
    "move_into_place",
    "open_forecast",
    "save_forecast",
    "source_paths",
    "storage_chunks",
    "storage_neutral",
]

#: The ``Conventions`` attribute of the files xnowcast writes.
CF_CONVENTIONS = "CF-1.8"
#: Zarr format of the stores xnowcast writes unless told otherwise: format 2, which
#: zarr-python 2 and 3, netCDF-C (NCZarr), zarr.js and most other readers open;
#: format 3 (``zarr_format=3``) only zarr-python 3 and a few newer readers.
ZARR_FORMAT = 2
#: Global attribute :func:`save_forecast` writes last (UTC time of completion);
#: :func:`open_forecast` refuses forecasts without it.
COMPLETE_ATTR = "xnowcast_complete"
#: Attribute of every forecast xnowcast makes (:func:`xnowcast.forecast`).
_MODEL_ATTR = "xnowcast_model"
#: Group attribute of batch stores (:mod:`xnowcast.batch.store`), complete per init time.
_BATCH_ATTR = "xnowcast_batch"


def _format(path: Path) -> str:
    if path.suffix == ".zarr":
        return "zarr"
    if path.suffix in (".nc", ".nc4", ".netcdf"):
        return "netcdf"
    raise ValueError(
        f"cannot tell the output format of {str(path)!r}: end the name in .zarr or .nc"
    )


def _resolved(path: str | os.PathLike) -> Path:
    """``path`` absolute, ``~`` expanded, symlinks (of it and its parents) followed."""
    return Path(os.path.expanduser(os.fspath(path))).resolve()


def _input_paths(inputs: Any) -> list[Path]:
    """The resolved paths named by ``inputs``: paths, glob patterns or a list of them."""
    if inputs is None:
        return []
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found: list[Path] = []
    for item in inputs:
        text = os.path.expanduser(os.fspath(item))
        if "://" in text:
            continue  # remote inputs are never local outputs
        matches = glob.glob(text, recursive=True) if glob.has_magic(text) else [text]
        found.extend(_resolved(m) for m in matches)
    return found


def source_paths(obj: Any) -> list[str]:
    """The files a lazily opened DataArray or Dataset reads, as far as xarray records them.

    xarray records the file of a netCDF variable in ``encoding["source"]``; zarr
    stores and in-memory data record none. The command line passes its input
    paths explicitly (``inputs=``) instead.

    Examples
    --------
    >>> import xarray as xr
    >>> source_paths(xr.DataArray([1.0]))
    []
    """
    found = []
    variables = [getattr(obj, "variable", None), *getattr(obj, "variables", {}).values()]
    variables += [c.variable for c in getattr(obj, "coords", {}).values()]
    for var in variables:
        src = getattr(var, "encoding", {}).get("source")
        if isinstance(src, str) and src not in found:
            found.append(src)
    return found


def check_output(path: str | os.PathLike, *, overwrite: bool = False, inputs: Any = None) -> Path:
    """Check that ``path`` may be written: refuse an existing one and any input.

    Call it before computing anything, so that a refused output costs nothing.

    Parameters
    ----------
    path : str or path
        The output file or store.
    overwrite : bool
        Whether an existing ``path`` may be replaced (``--overwrite``).
    inputs : path, glob or list of them, optional
        What the output is computed from: ``path`` must not be one of them,
        inside one (a zarr store) or hold one, whatever ``overwrite`` says,
        after following symlinks and relative paths.

    Returns
    -------
    pathlib.Path
        Where to write: ``path`` with symlinks followed.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    ValueError
        ``path`` is, holds or lies inside an input.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> src = os.path.join(folder, "in.nc")
    >>> open(src, "w").close()
    >>> check_output(os.path.join(folder, "out.nc"), inputs=src).name
    'out.nc'
    >>> check_output(src, overwrite=True, inputs=src)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the output '...in.nc' is the input '...in.nc': writing it would destroy ...
    """
    target = _resolved(path)
    for src in _input_paths(inputs):
        how = (
            "is"
            if target == src
            else "lies inside"
            if src in target.parents
            else "holds"
            if target in src.parents
            else None
        )
        if how is not None:
            raise ValueError(
                f"the output {os.fspath(path)!r} {how} the input {str(src)!r}: writing it would "
                "destroy the input; choose another output path"
            )
    exists = os.path.lexists(target) or os.path.lexists(os.path.expanduser(os.fspath(path)))
    if exists and not overwrite:
        raise FileExistsError(
            f"{os.fspath(path)!r} exists; pass overwrite=True (--overwrite) to replace it"
        )
    return target


def _sibling(target: Path, tag: str) -> Path:
    """A fresh hidden name next to ``target`` keeping its suffix (writers pick formats by it)."""
    return target.with_name(f".{target.stem}.{tag}-{uuid.uuid4().hex[:8]}{target.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


def _rename_new(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target`` without replacing anything (``FileExistsError`` then)."""
    try:
        if tmp.is_dir():
            os.rename(tmp, target)  # fails on a non-empty folder
        else:
            os.link(tmp, target)  # fails on any file
            tmp.unlink()
    except OSError as err:
        if os.path.lexists(target) and not isinstance(err, FileExistsError):
            raise FileExistsError(str(target)) from err
        if os.path.lexists(target) or tmp.is_dir():
            raise
        os.replace(tmp, target)  # no hard links on this filesystem (some network shares)


def move_into_place(tmp: str | os.PathLike, target: str | os.PathLike, *, overwrite: bool) -> None:
    """Rename the finished ``tmp`` to ``target``; an existing target stays whole until then.

    Files replace files in one atomic step; a folder (a zarr store) replaces
    an existing output in two renames (the old one aside, the new one in),
    the old one put back if the second fails. Without ``overwrite``, a
    ``target`` made meanwhile (by another process) is never replaced.

    Raises
    ------
    FileExistsError
        ``target`` exists (or was made meanwhile) and ``overwrite`` is false.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> tmp, target = os.path.join(folder, "new"), os.path.join(folder, "out")
    >>> os.mkdir(tmp); os.mkdir(target); open(os.path.join(target, "old"), "w").close()
    >>> move_into_place(tmp, target, overwrite=True)
    >>> os.listdir(target), sorted(os.listdir(folder))
    ([], ['out'])
    """
    tmp, target = Path(tmp), Path(target)
    if not os.path.lexists(target):
        try:
            _rename_new(tmp, target)
            return
        except FileExistsError:
            pass  # made meanwhile
    if not overwrite:
        raise FileExistsError(
            f"{str(target)!r} exists (or was created while writing); pass overwrite=True "
            "(--overwrite) to replace it"
        )
    if not tmp.is_dir() and not target.is_dir():
        os.replace(tmp, target)
        return
    old = _sibling(target, "old")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(old, target)
        raise
    _remove(old)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, *, overwrite: bool = False, inputs: Any = None
) -> Iterator[Path]:
    """Write an output file or store through a temporary sibling, renamed into place at the end.

    The block writes to the path it is given (a hidden sibling of ``path`` with
    the same suffix). Only when the block succeeds is it renamed to ``path``,
    replacing an existing output in one step (files) or two renames
    (folders); when the block fails, the temporary is removed and an existing
    output is left exactly as it was. ``path`` and ``inputs`` are first
    checked by :func:`check_output`.

    Parameters
    ----------
    path : str or path
        The output file or folder (e.g. a ``.zarr`` store).
    overwrite : bool
        Replace an existing ``path``.
    inputs : path, glob or list of them, optional
        Inputs ``path`` must not replace.

    Yields
    ------
    pathlib.Path
        Where the block writes.

    Examples
    --------
    >>> import os, tempfile
    >>> out = os.path.join(tempfile.mkdtemp(), "table.csv")
    >>> with atomic_output(out) as tmp:
    ...     _ = tmp.write_text("a,b")
    >>> open(out).read()
    'a,b'
    >>> with atomic_output(out, overwrite=True) as tmp:
    ...     _ = tmp.write_text("half")
    ...     raise OSError("disk full")
    Traceback (most recent call last):
    ...
    OSError: disk full
    >>> open(out).read(), os.listdir(os.path.dirname(out))
    ('a,b', ['table.csv'])
    """
    target = check_output(path, overwrite=overwrite, inputs=inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, "partial")
    try:
        yield tmp
        if not os.path.lexists(tmp):
            raise FileNotFoundError(f"nothing was written for {os.fspath(path)!r}")
        move_into_place(tmp, target, overwrite=overwrite)
    finally:
        _remove(tmp)


def save_forecast(
    fc: xr.DataArray,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    compute: bool = True,
    inputs: Any = None,
    zarr_format: int = ZARR_FORMAT,
) -> Any:
    """Write a forecast to ``.zarr`` or ``.nc`` (format from the suffix), atomically.

    Lazy (dask) forecasts are computed chunk by chunk while writing, into a
    temporary sibling of ``path`` that is renamed into place once complete
    (:func:`atomic_output`) and marked complete (:data:`COMPLETE_ATTR`): a
    failed write leaves an existing output untouched and no fragment. The
    forecast is stored in chunks of one init time and at most 4 MiB of lead
    times (:func:`storage_chunks`), like batch stores. Zarr stores are
    written in zarr format 2 by default, with consolidated metadata, so that
    plain ``xr.open_zarr(path)`` opens them without a warning, decoded
    (``lead_time`` as timedelta, ``init_time``/``valid_time`` as datetimes,
    ``lat``/``lon`` and the grid mapping as coordinates), and zarr-python 2
    reads them too.

    Parameters
    ----------
    fc : DataArray
        A forecast from :func:`xnowcast.forecast`.
    path : str or path
        Output path ending in ``.zarr`` or ``.nc``.
    overwrite : bool
        Replace an existing file or store; by default an existing one is
        refused (``FileExistsError``), before anything is computed.
    compute : bool
        ``False`` returns a dask delayed object that writes when computed.
    inputs : path, glob or list of them, optional
        The files the forecast is read from, which ``path`` must not replace
        (besides those xarray records, :func:`source_paths`).
    zarr_format : {2, 3}
        Zarr format of a ``.zarr`` output (ignored for netCDF): 2 (default,
        :data:`ZARR_FORMAT`) opens with every zarr reader, 3 needs
        zarr-python 3.

    Returns
    -------
    pathlib.Path or dask.delayed.Delayed
        The path written (symlinks followed), or the delayed write.

    Examples
    --------
    >>> import xnowcast, tempfile, os
    >>> fc = xnowcast.datasets.synthetic_radar(n_times=13, size=16).nowcast.forecast(n_out=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "fc.nc")
    >>> _ = save_forecast(fc, path)
    >>> open_forecast(path).attrs["xnowcast_model"]
    'persistence'
    >>> save_forecast(fc, path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: '...fc.nc' exists; pass overwrite=True (--overwrite) to replace it
    """
    from xnowcast.checks import boolean
    from xnowcast.conventions import as_dataarray

    boolean(overwrite, "overwrite")
    zarr_format = check_zarr_format(zarr_format)
    fc = as_dataarray(fc)
    fmt = _format(Path(path))
    sources = [*source_paths(fc), *_input_paths(inputs)]
    check_output(path, overwrite=overwrite, inputs=sources)
    if not compute:
        import dask

        write = dask.delayed(save_forecast, pure=False)
        return write(fc, path, overwrite=overwrite, inputs=sources, zarr_format=zarr_format)
    name = str(fc.name) if fc.name is not None else "forecast"
    ds = storage_neutral(fc.to_dataset(name=name))
    ds.attrs.pop(COMPLETE_ATTR, None)
    ds.attrs.setdefault("Conventions", CF_CONVENTIONS)
    encoding = coordinate_encoding(ds)
    chunks = storage_chunks(ds[name])
    if ds[name].chunks is not None:  # dask chunks made of whole stored chunks
        ds[name] = ds[name].chunk(dict(zip(ds[name].dims, chunks)))
    with atomic_output(path, overwrite=overwrite, inputs=sources) as tmp:
        if fmt == "zarr":
            encoding[name] = {"chunks": chunks}
            ds.to_zarr(
                tmp, mode="w-", consolidated=False, encoding=encoding, zarr_format=zarr_format
            )
        else:
            encoding[name] = {"zlib": True, "complevel": 4, "chunksizes": chunks}
            ds.to_netcdf(tmp, encoding=encoding)
        _mark_complete(tmp, fmt)
    return _resolved(path)


#: Largest stored chunk of a forecast file: small chunks keep reading it (verify) light.
STORAGE_CHUNK_BYTES = 4 * 2**20


def storage_chunks(fc: xr.DataArray) -> tuple[int, ...]:
    """Stored chunks of a forecast: one init time, whole frames, lead times up to 4 MiB.

    The chunks of the files :func:`save_forecast` writes, as batch stores are
    chunked: reading one chunk (e.g. to verify it) costs a few MiB whatever
    the size of the forecast.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fc = xr.DataArray(np.zeros((3, 24, 512, 512), "float32"),
    ...                   dims=("init_time", "lead_time", "y", "x"))
    >>> storage_chunks(fc)
    (1, 4, 512, 512)
    """
    frame = int(np.prod(fc.shape[-2:])) * fc.dtype.itemsize
    leads = max(1, STORAGE_CHUNK_BYTES // max(frame, 1))
    return tuple(
        size if i >= fc.ndim - 2 else min(leads, size) if dim == "lead_time" else 1
        for i, (dim, size) in enumerate(fc.sizes.items())
    )


def _mark_complete(path: Path, fmt: str) -> None:
    """Write :data:`COMPLETE_ATTR`, after everything else."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "zarr":
        import zarr

        zarr.open_group(os.fspath(path), mode="r+").attrs[COMPLETE_ATTR] = stamp
        consolidate_store(path)
    else:
        xr.Dataset(attrs={COMPLETE_ATTR: stamp}).to_netcdf(path, mode="a")


def check_zarr_format(zarr_format: Any) -> int:
    """``zarr_format`` checked: 2 or 3, and 3 only with zarr-python 3 installed.

    Examples
    --------
    >>> check_zarr_format(2)
    2
    >>> check_zarr_format("v2")
    Traceback (most recent call last):
    ...
    ValueError: zarr_format must be 2 or 3, got 'v2'
    """
    if isinstance(zarr_format, bool) or zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    if zarr_format == 3:
        import zarr

        if int(zarr.__version__.split(".")[0]) < 3:
            raise ValueError(
                f"zarr_format=3 needs zarr-python 3, this is zarr {zarr.__version__}: "
                "pass zarr_format=2 or upgrade zarr (pip install 'zarr>=3')"
            )
    return int(zarr_format)


def consolidate_store(path: str | os.PathLike) -> None:
    """Write the consolidated metadata of the zarr store at ``path`` (of format 2 or 3).

    ``xr.open_zarr`` then reads one metadata document instead of one per
    array, and does not warn. Call it again after changing any metadata
    (attributes, arrays); writing chunk data changes none.

    Examples
    --------
    >>> import os, tempfile, xarray as xr
    >>> path = os.path.join(tempfile.mkdtemp(), "a.zarr")
    >>> _ = xr.Dataset({"a": ("x", [1.0])}).to_zarr(path, consolidated=False, zarr_format=2)
    >>> consolidate_store(path)
    >>> os.path.exists(os.path.join(path, ".zmetadata"))
    True
    """
    import warnings

    import zarr

    with warnings.catch_warnings():
        # zarr 3 notes that format 3 does not yet specify consolidated metadata; xarray
        # and zarr-python read it all the same.
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        zarr.consolidate_metadata(os.fspath(path))


#: Encoding kept from the inputs when writing: how values are stored (CF), not where.
_CF_ENCODING = (
    "units",
    "calendar",
    "dtype",
    "_FillValue",
    "missing_value",
    "scale_factor",
    "add_offset",
)


def storage_neutral(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with only the CF part of each variable's encoding (units, dtype, fill, packing).

    Encodings read from an input store (its chunks, codecs, zarr format 3
    ``serializer``/``compressors`` or format 2 ``compressor``) would make the
    output copy the input's storage, or fail in another zarr format.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"a": ("x", [1.0])})
    >>> ds["a"].encoding = {"chunks": (1,), "serializer": None, "dtype": "float32"}
    >>> storage_neutral(ds)["a"].encoding
    {'dtype': 'float32'}
    """
    out = ds.copy()
    for var in out.variables.values():
        var.encoding = {k: v for k, v in var.encoding.items() if k in _CF_ENCODING}
    return out


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


def open_forecast(
    path: str | os.PathLike, var: str | None = None, *, check_complete: bool = True
) -> xr.DataArray:
    """Open a forecast written by :func:`save_forecast` (lazily).

    The chunks of a local zarr v2 store are read straight from their files
    (:func:`xnowcast.io.chunks.direct_chunks`; the same values as zarr's).

    Parameters
    ----------
    path : str or path
        A ``.zarr`` store or ``.nc`` file.
    var : str, optional
        Variable, when the file holds several.
    check_complete : bool
        Refuse an xnowcast forecast (one with an ``xnowcast_model``
        attribute) without the completion mark :data:`COMPLETE_ATTR` that
        :func:`save_forecast` writes last: one whose writing did not end.
        Forecasts written by other programs carry neither and are opened;
        batch stores (:func:`xnowcast.batch.forecast_archive`) record
        completion per init time in ``forecast_status`` instead and are
        always opened.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The forecast lacks the completion mark (and ``check_complete``).

    Examples
    --------
    >>> import xnowcast, tempfile, os
    >>> fc = xnowcast.datasets.synthetic_radar(n_times=13, size=16).nowcast.forecast(n_out=2)
    >>> path = os.path.join(tempfile.mkdtemp(), "fc.zarr")
    >>> _ = save_forecast(fc, path)
    >>> open_forecast(path).sizes["lead_time"]
    2
    """
    from xnowcast.checks import boolean
    from xnowcast.conventions import as_dataarray
    from xnowcast.io.archive import open_zarr_store
    from xnowcast.io.chunks import direct_chunks

    boolean(check_complete, "check_complete")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such forecast file: {str(path)!r}")
    if _format(path) == "zarr":
        ds = direct_chunks(open_zarr_store(path, decode_coords="all"), path)
    else:
        ds = xr.open_dataset(path, decode_coords="all", chunks={})
    marked = ds.attrs.pop(COMPLETE_ATTR, None) is not None or _BATCH_ATTR in ds.attrs
    da = as_dataarray(ds, var)
    da.attrs.pop(COMPLETE_ATTR, None)
    if check_complete and not marked and _MODEL_ATTR in {**ds.attrs, **da.attrs}:
        raise ValueError(
            f"{str(path)!r} is an xnowcast forecast without the completion mark "
            f"{COMPLETE_ATTR!r} that save_forecast writes last: its writing did not end, so it "
            "may hold only part of a forecast. Write it again (xnowcast forecast, "
            "save_forecast), or pass check_complete=False to open it anyway"
        )
    return _coords_chunked_like_data(da)


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
