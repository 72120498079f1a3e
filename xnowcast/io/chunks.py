"""Reading the chunks of local zarr v2 stores straight from their files.

``xnowcast forecast`` writes zarr format 2 stores (:mod:`xnowcast.io.output`).
zarr-python 3 reads each chunk through an asynchronous pipeline that costs more
than decompressing a chunk of a few MB; :func:`direct_chunks` gives the plain
variables of such a store, opened by xarray, dask arrays whose chunks
:class:`StoredChunks` reads and decodes itself (numcodecs, the compressor
zarr would use). The values are the same: only variables that xarray reads
without decoding them (no scale, offset or numeric fill value) are replaced.

Examples
--------
>>> import os, tempfile, numpy as np, xarray as xr
>>> from xnowcast.io.chunks import direct_chunks
>>> path = os.path.join(tempfile.mkdtemp(), "a.zarr")
>>> xr.DataArray(np.ones((4, 6), "f4"), dims=("y", "x"), name="v").to_dataset().to_zarr(
...     path, encoding={"v": {"chunks": (2, 3)}}, zarr_format=2)  # doctest: +ELLIPSIS
<xarray.backends.zarr.ZarrStore object at ...>
>>> ds = direct_chunks(xr.open_zarr(path), path)
>>> float(ds.v.sum()), ds.v.chunks
(24.0, ((2, 2), (3, 3)))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["StoredChunks", "direct_chunks"]

#: Encoding keys of values that xarray decodes (then the stored values are not the data).
_DECODED = ("scale_factor", "add_offset")


def direct_chunks(ds: xr.Dataset, path: str | os.PathLike) -> xr.Dataset:
    """``ds`` (opened lazily from the zarr store ``path``) with its plain variables read by
    :class:`StoredChunks`.

    A variable is replaced when its dask chunks are the store's, its dtype the stored one,
    and xarray decodes nothing in it (no ``scale_factor``/``add_offset``, no fill value but
    NaN); any other variable, and any store that is not a local zarr v2 store, is left as
    xarray opened it. Names, attributes, encoding and coordinates are kept.

    Parameters
    ----------
    ds : Dataset
        The store as :func:`xarray.open_zarr` opened it (dask-backed).
    path : str or path
        Its location.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"v": ("x", np.arange(3.0))}).chunk()
    >>> direct_chunks(ds, "no/such/store.zarr") is ds   # not a zarr store: as it was
    True
    """
    import dask.array
    import zarr
    from dask.base import tokenize

    try:
        group = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, ValueError, TypeError, KeyError, OSError):
        return ds
    replaced = {}
    for name, var in ds.data_vars.items():
        array = group.get(str(name)) if var.chunks is not None else None
        if array is None or not StoredChunks.readable(array):
            continue
        stored = StoredChunks(array)
        if not _plain(var, stored):
            continue
        data = dask.array.from_array(
            stored,
            chunks=var.data.chunks,
            name="xnowcast-zarr-" + tokenize(stored),
            meta=np.empty((0,) * stored.ndim, stored.dtype),
        )
        replaced[name] = var.copy(data=data)
    return ds.assign(replaced) if replaced else ds


def _plain(var: xr.DataArray, stored: StoredChunks) -> bool:
    """Whether ``var`` holds the values of ``stored`` as they are stored, chunk for chunk."""
    import dask.array

    if any(key in var.encoding for key in _DECODED):
        return False
    fill = var.encoding.get("_FillValue")
    if fill is not None and not (isinstance(fill, (float, np.floating)) and np.isnan(fill)):
        return False
    chunks = dask.array.core.normalize_chunks(stored.chunks, stored.shape)
    return var.dtype == stored.dtype and var.shape == stored.shape and var.data.chunks == chunks


class StoredChunks:
    """A local zarr v2 array whose whole chunks are read straight from their files.

    Indexed with one chunk's slices (as dask's ``getter`` indexes the array
    behind a chunk), it reads the chunk's file and decodes it with the
    array's compressor (numcodecs) into a new array: what zarr-python does,
    without its asynchronous pipeline, which costs more than the
    decompression itself for chunks of a few MB (0.88 -> 0.40 CPU s for the
    300 chunks of ``benchmarks/bench_verification.py``). A chunk never
    written (the fill value) and any selection other than one whole chunk
    are read by zarr. Zarr format 2 is a fixed specification; only arrays
    that :meth:`readable` accepts (no filters, C order, native byte order, a
    local store) are read this way.

    Parameters
    ----------
    array : zarr.Array
        A zarr format 2 array in a local store, without filters, in C order.

    Examples
    --------
    >>> import os, tempfile, numpy as np, zarr
    >>> path = os.path.join(tempfile.mkdtemp(), "a.zarr")
    >>> z = zarr.create_array(path, shape=(4, 6), chunks=(2, 3), dtype="f4", zarr_format=2)
    >>> z[:] = np.arange(24, dtype="f4").reshape(4, 6)
    >>> StoredChunks(z)[slice(2, 4), slice(3, 6)].tolist()
    [[15.0, 16.0, 17.0], [21.0, 22.0, 23.0]]
    """

    def __init__(self, array: Any) -> None:
        meta = array.metadata
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = np.dtype(meta.dtype.to_native_dtype())
        self.ndim = len(self.shape)
        self.chunks = tuple(meta.chunks)
        self.compressor = meta.compressor
        self.separator = meta.dimension_separator or "."
        self.path = Path(array.store_path.store.root) / array.store_path.path

    def __dask_tokenize__(self) -> tuple:
        return ("xnowcast-stored-chunks", str(self.path), self.shape, self.chunks, str(self.dtype))

    @classmethod
    def readable(cls, array: Any) -> bool:
        """Whether ``array`` is a zarr v2 array that :class:`StoredChunks` reads (else zarr).

        Examples
        --------
        >>> import numpy as np
        >>> StoredChunks.readable(np.zeros(3))
        False
        """
        try:
            from zarr.storage import LocalStore

            meta = array.metadata
            dtype = np.dtype(meta.dtype.to_native_dtype())
            return (
                meta.zarr_format == 2
                and not meta.filters
                and meta.order == "C"
                and dtype.isnative
                and dtype.kind in "biuf"
                and (meta.compressor is None or hasattr(meta.compressor, "decode"))
                and isinstance(array.store_path.store, LocalStore)
            )
        except (AttributeError, ImportError, TypeError):
            return False

    def __getitem__(self, key: Any) -> np.ndarray:
        found = self._chunk(key)
        if found is None:  # not one whole chunk
            return np.asarray(self.array[key])
        index, sizes = found
        try:
            raw = (self.path / self.separator.join(str(i) for i in index)).read_bytes()
        except FileNotFoundError:  # never written: zarr gives the fill value
            return np.asarray(self.array[key])
        out = np.empty(self.chunks, dtype=self.dtype)
        decoded = self.compressor.decode(raw, out=out) if self.compressor else raw
        if decoded is not out:
            out[...] = np.frombuffer(decoded, dtype=self.dtype).reshape(self.chunks)
        return out[tuple(slice(0, n) for n in sizes)]  # an edge chunk: its part in the array

    def _chunk(self, key: Any) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """The index of the chunk that ``key`` (slices) selects whole and its sizes, or None."""
        if not isinstance(key, tuple) or len(key) != self.ndim:
            return None
        index, sizes = [], []
        for k, size, n in zip(key, self.chunks, self.shape):
            if not isinstance(k, slice) or k.step not in (None, 1):
                return None
            start, stop = k.start or 0, n if k.stop is None else k.stop
            if start % size or stop != min(start + size, n):
                return None
            index.append(start // size)
            sizes.append(stop - start)
        return tuple(index), tuple(sizes)
