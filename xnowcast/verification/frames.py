"""What a verification task reads: its forecast chunk, and observed frames shared by tasks.

``verify`` scores a dask forecast with one task per forecast chunk; each task
reads its chunk and the observed frames at its valid times itself (so that a
damaged file or zarr chunk is named in a one-line
:class:`~xnowcast.forecast.UnreadableInputError`).

* :class:`ForecastChunk` reads one block of the forecast's dask array,
  building the labelled frames (to name a damaged chunk) only when reading fails.
* :class:`ObservedFrames` serves the observed frames at given positions from
  a small cache shared by the tasks of one computation: forecasts of
  consecutive init times are valid at mostly the same times, so each frame
  is read about once instead of once per init time. The cache holds at most
  :data:`CACHE_CELLS` cells (64 MB of float64), whatever the archive's length.

Examples
--------
>>> import numpy as np
>>> from xnowcast.datasets import synthetic_radar
>>> from xnowcast.verification.frames import ObservedFrames
>>> frames = ObservedFrames(synthetic_radar(n_times=6, size=8).chunk({"time": 1}), "time")
>>> frames.take(np.array([[1, 2], [2, -1]])).shape   # -1: no frame (NaN)
(2, 2, 8, 8)
>>> frames.reads   # frames 1 and 2, read once
2
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["CACHE_CELLS", "ForecastChunk", "ObservedFrames"]

#: Largest number of observed cells :class:`ObservedFrames` keeps (2**23: 64 MB of float64).
CACHE_CELLS = 2**23


class ObservedFrames:
    """Frames of an observed cube by position along time, read once and shared by tasks.

    Parameters
    ----------
    cube : DataArray
        Observations ``(time, y, x)``, usually lazy (dask).
    time_dim : str
        Its time dimension.
    capacity : int, optional
        Frames to keep (default: :data:`CACHE_CELLS` cells' worth, at least 2).

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=4, size=8)
    >>> frames = ObservedFrames(cube, "time", capacity=2)
    >>> bool(np.array_equal(frames.take(np.array([3, 0])), cube.values[[3, 0]], equal_nan=True))
    True
    """

    def __init__(self, cube: xr.DataArray, time_dim: str, capacity: int | None = None) -> None:
        self.cube = cube
        self.time_dim = time_dim
        cells = int(np.prod([cube.sizes[d] for d in cube.dims if d != time_dim]))
        self.capacity = max(2, CACHE_CELLS // max(cells, 1)) if capacity is None else capacity
        self.reads = 0
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._graph: dict | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # a copy (another process) starts with an empty cache and a lock of its own
        return (type(self), (self.cube, self.time_dim, self.capacity))

    def __dask_tokenize__(self) -> Any:
        data = self.cube.data
        return ("xnowcast-observed-frames", getattr(data, "name", None) or id(data))

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the frames served (floating: missing frames are NaN)."""
        return np.result_type(self.cube.dtype, np.float32)

    def frames(self, positions: np.ndarray) -> dict[int, np.ndarray]:
        """The frames at ``positions`` (any shape; -1 is left out), by position, uncopied.

        Frames not in the cache are read in one go (the range between the
        first and the last of them), with
        :func:`xnowcast.forecast.read_frames`: a damaged frame is named. The
        arrays are shared with the cache and other tasks: read them, never
        write to them.

        Examples
        --------
        >>> import numpy as np
        >>> from xnowcast.datasets import synthetic_radar
        >>> frames = ObservedFrames(synthetic_radar(n_times=4, size=8), "time")
        >>> sorted(frames.frames(np.array([[3, -1], [0, 3]])))
        [0, 3]
        """
        positions = np.asarray(positions, dtype=np.int64)
        wanted = np.unique(positions[positions >= 0])
        found = self._cached(wanted)
        missing = [int(p) for p in wanted if int(p) not in found]
        if missing:
            found.update(self._read(missing[0], missing[-1] + 1))
        return {int(p): np.asarray(found[int(p)], dtype=self.dtype) for p in wanted}

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The frames at ``positions`` (any shape) in one new array, NaN where a position is -1."""
        positions = np.asarray(positions, dtype=np.int64)
        found = self.frames(positions)
        shape = tuple(self.cube.sizes[d] for d in self.cube.dims if d != self.time_dim)
        out = np.empty((positions.size, *shape), dtype=self.dtype)
        for i, p in enumerate(positions.ravel()):
            out[i] = found[int(p)] if p >= 0 else np.nan
        return out.reshape(*positions.shape, *shape)

    def _cached(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        with self._lock:
            hits = {int(p): self._cache[int(p)] for p in wanted if int(p) in self._cache}
            for p in hits:
                self._cache.move_to_end(p)
        return hits

    def _read(self, start: int, stop: int) -> dict[int, np.ndarray]:
        axis = self.cube.dims.index(self.time_dim)
        frames = {}
        for first, block in self._read_range(start, stop):
            block = np.moveaxis(np.asarray(block), axis, 0)  # a view: no frame is copied
            for i in range(max(start - first, 0), min(stop - first, len(block))):
                frames[first + i] = block[i]
        with self._lock:
            self.reads += stop - start
            for p, frame in frames.items():
                self._cache[p] = frame
                self._cache.move_to_end(p)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return frames

    def _read_range(self, start: int, stop: int) -> list[tuple[int, Any]]:
        """Blocks holding frames ``start:stop``, each with the position of its first frame.

        Only the tasks of the chunks that hold them run; a damaged frame is
        named.
        """
        data = self.cube.data
        axis = self.cube.dims.index(self.time_dim)
        if not hasattr(data, "dask") or any(
            len(c) > 1 for i, c in enumerate(data.chunks) if i != axis
        ):
            return [(start, self._read_named(start, stop))]
        bounds = np.cumsum([0, *data.chunks[axis]])
        first = int(np.searchsorted(bounds, start, side="right")) - 1
        last = int(np.searchsorted(bounds, stop, side="left"))
        keys = []
        for c in range(first, last):
            index = [0] * data.ndim
            index[axis] = c
            keys.append((data.name, *index))
        try:
            from dask.local import get_sync
            from dask.optimization import cull

            if self._graph is None:
                self._graph = dict(data.__dask_graph__())
            blocks = get_sync(cull(self._graph, keys)[0], keys)
        except Exception:
            return [(start, self._read_named(start, stop))]
        return [(int(bounds[c]), block) for c, block in zip(range(first, last), blocks)]

    def _read_named(self, start: int, stop: int) -> np.ndarray:
        from xnowcast.forecast import read_frames

        block = self.cube.isel({self.time_dim: slice(start, stop)})
        return read_frames(block, self.time_dim, scheduler="sync")


class ForecastChunk:
    """One chunk of a forecast's dask array, read in the task that scores it.

    Parameters
    ----------
    graph : mapping
        The tasks that compute the chunk, culled from the forecast's graph
        (a few tasks: reading it does not walk the whole forecast's graph).
    key : tuple
        The chunk's key in ``graph``.
    forecast : DataArray
        The forecast it comes from, and ``where`` (dim -> slice) its place:
        used only to name a frame that cannot be read.

    Examples
    --------
    >>> import dask
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=4, size=8).chunk({"time": 2})
    >>> chunks = ForecastChunk.split(cube.data)
    >>> chunk = ForecastChunk(chunks[(1, 0, 0)], (cube.data.name, 1, 0, 0), cube, {"time": slice(2, 4)})
    >>> chunk.read().shape
    (2, 8, 8)
    """

    def __init__(
        self, graph: Any, key: tuple, forecast: xr.DataArray, where: dict[str, slice]
    ) -> None:
        self.graph = graph
        self.key = key
        self.forecast = forecast
        self.where = where

    @staticmethod
    def split(data: Any) -> dict[tuple, dict]:
        """The culled graph of every chunk of dask array ``data``, by block index.

        Examples
        --------
        >>> import dask.array as da
        >>> sorted(ForecastChunk.split(da.zeros((4, 2), chunks=2)))
        [(0, 0), (1, 0)]
        """
        import itertools

        from dask.optimization import cull

        graph = dict(data.__dask_graph__())
        out = {}
        for index in itertools.product(*(range(len(c)) for c in data.chunks)):
            out[index] = cull(graph, [(data.name, *index)])[0]
        return out

    def __dask_tokenize__(self) -> Any:
        return ("xnowcast-forecast-chunk", self.key)

    def read(self) -> np.ndarray:
        """The chunk's values (dask's synchronous scheduler: this runs in a task)."""
        from dask.local import get_sync

        try:
            return np.asarray(get_sync(self.graph, self.key))
        except Exception:
            from xnowcast.forecast import read_frames

            frames = self.forecast.isel(self.where)
            return read_frames(frames, str(frames.dims[0]), scheduler="sync")  # names the frame
