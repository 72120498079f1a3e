"""What runs on a worker: one task forecasts one chunk of init times.

A task reads only the frames its windows need (a small, culled dask graph
computed inside the task), forecasts them with
:func:`xnowcast.forecast.forecast_block` (the kernel of
:func:`xnowcast.forecast`, so values are identical), writes the chunk to the
store and only then its completion record. Everything that goes wrong is
caught and returned as a failure of the init times concerned; transient
errors (``OSError``: network filesystems, object stores) are retried with
exponential backoff first.

Models named by registry name or checkpoint path are loaded once per process
(a dask worker) and cached, not once per task; neural models then pick the
worker's GPU (``device="auto"``).
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from xnowcast.batch.store import DONE, FAILED, write_chunk, write_data
from xnowcast.checks import error_line
from xnowcast.forecast import forecast_block
from xnowcast.models.interface import NowcastModel, get_model
from xnowcast.models.settings import RunSettings, set_library_threads

__all__ = [
    "ChunkTask",
    "FrameSource",
    "JobContext",
    "ModelSpec",
    "cache_model",
    "limit_threads",
    "member_chunks",
    "resolve_model",
    "run_chunk",
]

T = TypeVar("T")

#: Errors worth retrying: I/O on network filesystems and object stores.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError,)

_MODEL_CACHE: OrderedDict[tuple[str, str, str], NowcastModel] = OrderedDict()
_MODEL_CACHE_SIZE = 4
_MODEL_LOCK = threading.Lock()
_THREADS_SET: dict[str, int] = {}


@dataclass(frozen=True)
class ModelSpec:
    """A model by registry name or checkpoint path, loaded where the task runs."""

    ref: str
    params: dict[str, Any] = field(default_factory=dict)
    settings: RunSettings = field(default_factory=RunSettings)

    @property
    def key(self) -> tuple[str, str, str]:
        """Cache key: the reference (with the file's modification time), parameters, settings."""
        ref = self.ref
        if os.path.isfile(ref):
            ref = f"{ref}@{os.path.getmtime(ref)}"
        return ref, json.dumps(self.params, sort_keys=True, default=repr), repr(self.settings)


def resolve_model(model: ModelSpec | NowcastModel) -> NowcastModel:
    """The model instance of a task: from the per-process cache for a :class:`ModelSpec`.

    Examples
    --------
    >>> a = resolve_model(ModelSpec("persistence", {"n_out": 2}))
    >>> a is resolve_model(ModelSpec("persistence", {"n_out": 2}))
    True
    """
    if isinstance(model, NowcastModel):
        return model
    key = model.key
    with _MODEL_LOCK:
        cached = _MODEL_CACHE.get(key)
        if cached is None:
            cached = get_model(model.ref, **model.params).with_settings(model.settings)
            _MODEL_CACHE[key] = cached
            while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
                _MODEL_CACHE.popitem(last=False)
        else:
            _MODEL_CACHE.move_to_end(key)
    return cached


def cache_model(spec: ModelSpec, model: NowcastModel) -> None:
    """Put a model built from ``spec`` in this process's cache (saves a second load)."""
    with _MODEL_LOCK:
        _MODEL_CACHE[spec.key] = model
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)


def limit_threads(n: int | None) -> None:
    """Limit OpenCV, PyTorch, numba and zarr's codec pool to ``n`` threads in this process.

    ``None`` leaves them. Tasks call this before and after forecasting, so a
    library a model imports on its first forecast is limited from then on.
    """
    if n is None:
        return
    n = int(n)
    if _THREADS_SET.get("zarr") != n:
        import zarr

        if hasattr(zarr, "config"):  # zarr 3: the pool that encodes and decodes chunks
            zarr.config.set({"threading.max_workers": n})
        _THREADS_SET["zarr"] = n
    set_library_threads(n)


class FrameSource:
    """The frames one task needs: a culled dask array, or an index into a shared array.

    Kept opaque to dask (no ``__dask_graph__``) so that the frames are read
    inside the task, where a failed read can be caught and attributed to its
    init times, and never pass through the scheduler.

    Parameters
    ----------
    frames : dask or numpy array, optional
        Exactly the task's frames, in time order.
    index : numpy.ndarray, optional
        Instead of ``frames``: positions of the task's frames in an in-memory
        cube that reaches the task as a separate argument (see :meth:`bind`).
    """

    def __init__(self, frames: Any = None, index: np.ndarray | None = None) -> None:
        if (frames is None) == (index is None):
            raise TypeError("give FrameSource either frames or index")
        self.frames = frames
        self.index = index

    def bind(self, shared: np.ndarray | None) -> FrameSource:
        """The frames themselves, cut from the shared in-memory cube when needed."""
        if self.index is None:
            return self
        if shared is None:
            raise TypeError("this FrameSource indexes a shared cube; pass it to bind()")
        return FrameSource(np.asarray(shared[self.index]))

    def __len__(self) -> int:
        return int(len(self.index) if self.index is not None else self.frames.shape[0])

    def read(self, index: int | None = None) -> np.ndarray:
        """Load frames (all, or frame ``index``) as float32."""
        arr = self.frames if index is None else self.frames[index]
        if hasattr(arr, "__dask_graph__"):
            arr = arr.compute(scheduler="sync")
        return np.asarray(arr, dtype=np.float32)

    def __dask_tokenize__(self) -> Any:
        if self.index is not None:
            return ("xnowcast-frames", self.index.tobytes())
        return ("xnowcast-frames", getattr(self.frames, "name", None) or id(self.frames))


@dataclass(frozen=True)
class ChunkTask:
    """One task: init times ``start .. start + len(ends)`` of the store.

    Attributes
    ----------
    index : int
        Chunk number.
    start : int
        Position of the first init time along the store's ``init_time``.
    ends : numpy.ndarray
        Index, into the task's frames, of the init frame of each window.
    init_times : numpy.ndarray
        The init times (datetime64), for failure reports.
    frame_index : numpy.ndarray
        Index, into the cube, of each frame the task reads (sorted).
    frame_times : numpy.ndarray
        Time of each frame the task reads, for failure reports.
    """

    index: int
    start: int
    ends: np.ndarray
    init_times: np.ndarray
    frame_index: np.ndarray
    frame_times: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)


@dataclass(frozen=True)
class JobContext:
    """Settings shared by every task of a job."""

    store: str
    name: str
    dims: tuple[str, ...]
    n_in: int
    retries: int = 2
    retry_delay: float = 1.0
    threads: int | None = None
    chunk_members: int | None = None


def _with_retries(fn: Callable[[], T], retries: int, delay: float) -> T:
    for attempt in range(retries + 1):
        try:
            return fn()
        except TRANSIENT_ERRORS:
            if attempt >= retries:
                raise
            time.sleep(delay * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


#: ``Type: first line of the message`` of an error (one line per failure in reports).
_reason = error_line


def _read_frames(
    source: FrameSource, task: ChunkTask, ctx: JobContext
) -> tuple[np.ndarray, dict[int, str]]:
    """All frames of the task, and the reason for each frame that cannot be read."""
    try:
        return _with_retries(source.read, ctx.retries, ctx.retry_delay), {}
    except Exception:
        pass
    frames: list[np.ndarray | None] = []
    bad: dict[int, str] = {}
    for i in range(len(source)):
        try:
            frames.append(source.read(i))
        except Exception as err:
            frames.append(None)
            bad[i] = (
                f"input frame {np.datetime_as_string(task.frame_times[i], unit='s')} "
                f"could not be read ({_reason(err)})"
            )
    # The frame shape from a readable frame, else from the (lazy) source itself, so that a
    # task none of whose frames can be read still records why in the store.
    shape = next((f.shape for f in frames if f is not None), tuple(source.frames.shape[1:]))
    stack = np.stack([f if f is not None else np.full(shape, np.nan, np.float32) for f in frames])
    return stack, bad


def _output_shape(n: int, model: NowcastModel, members: np.ndarray | None, grid: tuple) -> tuple:
    ensemble = () if members is None else (len(members),)
    return (n, *ensemble, model.n_out, *grid)


def _forecast(
    frames: np.ndarray, ends: np.ndarray, model: NowcastModel, members: np.ndarray | None = None
) -> tuple[np.ndarray, dict[int, str]]:
    """``forecast_block``; when the model raises, window by window to isolate the culprit."""
    try:
        return forecast_block(frames, ends, model, members=members), {}
    except Exception as err:
        out = np.full(
            _output_shape(len(ends), model, members, frames.shape[1:]), np.nan, np.float32
        )
        if len(ends) == 1:
            return out, {0: f"model {model.name!r} failed ({_reason(err)})"}
    bad = {}
    for j, end in enumerate(ends):
        try:
            out[j] = forecast_block(frames, np.asarray([end]), model, members=members)[0]
        except Exception as err:
            bad[j] = f"model {model.name!r} failed ({_reason(err)})"
    return out, bad


def _forecast_usable(
    frames: np.ndarray,
    ends: np.ndarray,
    usable: np.ndarray,
    model: NowcastModel,
    members: np.ndarray | None,
) -> tuple[np.ndarray, dict[int, str]]:
    """:func:`_forecast` of the usable windows; NaN for the others."""
    if usable.all():
        return _forecast(frames, ends, model, members)
    data = np.full(_output_shape(len(ends), model, members, frames.shape[1:]), np.nan, np.float32)
    if not usable.any():
        return data, {}
    data[usable], errors = _forecast(frames, ends[usable], model, members)
    return data, errors


def _write_members(ctx: JobContext, start: int, data: np.ndarray, first: int) -> None:
    """Write one member chunk of a task's forecasts (retried), without a completion record."""
    _with_retries(
        lambda: write_data(ctx.store, ctx.name, start, data, first), ctx.retries, ctx.retry_delay
    )


def member_chunks(model: NowcastModel, chunk_members: int | None) -> list[np.ndarray | None]:
    """The member index of each member chunk of a task: ``[None]`` for a deterministic model.

    Examples
    --------
    >>> from xnowcast.models import get_model
    >>> member_chunks(get_model("steps", members=5), 2)
    [array([0, 1]), array([2, 3]), array([4])]
    """
    if model.members is None:
        return [None]
    size = int(chunk_members or 1)
    return [np.arange(m, min(m + size, model.members)) for m in range(0, model.members, size)]


def empty_frames_note(frames: np.ndarray, times: np.ndarray) -> str | None:
    """Why a window is suspect: frames entirely NaN beside frames with data; else ``None``.

    A frame with no valid pixel while its neighbours have some is missing data
    (a missing zarr chunk or scan), not a radar that saw nothing.

    Examples
    --------
    >>> import numpy as np
    >>> frames = np.ones((3, 2, 2)); frames[1] = np.nan
    >>> empty_frames_note(frames, np.arange(3).astype("datetime64[m]"))
    'input frame(s) 1970-01-01T00:01:00 entirely NaN while the others hold data (missing data)'
    """
    empty = ~np.isfinite(frames).reshape(len(frames), -1).any(axis=1)
    if not empty.any() or empty.all():
        return None
    named = ", ".join(np.datetime_as_string(t, unit="s") for t in np.asarray(times)[empty][:3])
    more = ", ..." if empty.sum() > 3 else ""
    return f"input frame(s) {named}{more} entirely NaN while the others hold data (missing data)"


def run_chunk(
    task: ChunkTask,
    source: FrameSource,
    model: ModelSpec | NowcastModel,
    ctx: JobContext,
    shared: np.ndarray | None = None,
) -> dict[str, Any]:
    """Forecast one chunk, write it and its completion record; never raises.

    Parameters
    ----------
    task : ChunkTask
        Which init times, and where they go in the store.
    source : FrameSource
        The frames the task reads.
    model : ModelSpec or NowcastModel
        The model, or how to load it (once per process).
    ctx : JobContext
        Store and settings of the job.
    shared : numpy.ndarray, optional
        The in-memory cube, when ``source`` indexes into one.

    Returns
    -------
    dict
        ``index``, ``done`` (init times forecast and written), ``failed``
        (list of ``(init_time, reason)``), ``written`` (whether the store
        holds the chunk now), ``seconds``.
    """
    t0 = time.perf_counter()
    n = len(task)
    try:
        nowcaster = resolve_model(model)
        limit_threads(ctx.threads)
        frames, bad_frames = _read_frames(source.bind(shared), task, ctx)
        offsets = np.arange(-ctx.n_in + 1, 1)
        reasons: dict[int, str] = {}
        notes: dict[int, str] = {}
        usable = np.ones(n, dtype=bool)  # windows handed to the model (NaN-only ones too)
        for j, end in enumerate(task.ends):
            window = end + offsets
            broken = [bad_frames[i] for i in window if i in bad_frames]
            if broken:
                reasons[j], usable[j] = broken[0], False
            elif (note := empty_frames_note(frames[window], task.frame_times[window])) is not None:
                notes[j] = note
            elif not np.isfinite(frames[window]).any():
                first = np.datetime_as_string(task.frame_times[window[0]], unit="s")
                last = np.datetime_as_string(task.frame_times[window[-1]], unit="s")
                reasons[j] = (
                    f"all {ctx.n_in} input frames ({first} to {last}) are NaN "
                    "(no valid data); the forecast is NaN"
                )
        positions = np.nonzero(usable)[0]
        chunks = member_chunks(nowcaster, ctx.chunk_members)
        for i, index in enumerate(chunks):
            # All windows of an intact chunk go to the kernel at once, as in forecast().
            data, model_errors = _forecast_usable(frames, task.ends, usable, nowcaster, index)
            reasons.update({int(positions[k]): why for k, why in model_errors.items()})
            if index is not None and i < len(chunks) - 1:
                # an ensemble's member chunk; the completion record comes with the last
                _write_members(ctx, task.start, data, int(index[0]))
        limit_threads(ctx.threads)  # libraries the model imported on first use
        first_member = None if chunks[-1] is None else int(chunks[-1][0])
        del frames
        status = np.full(n, DONE, np.int8)
        errors = [""] * n
        for j, why in reasons.items():
            status[j], errors[j] = FAILED, why
        _with_retries(
            lambda: write_chunk(
                ctx.store, ctx.name, ctx.dims, task.start, data, status, errors, first_member
            ),
            ctx.retries,
            ctx.retry_delay,
        )
        return {
            "index": task.index,
            "done": int((status == DONE).sum()),
            "failed": [(task.init_times[j], reasons[j]) for j in sorted(reasons)],
            "missing_data": [(task.init_times[j], notes[j]) for j in sorted(notes)],
            "written": True,
            "seconds": time.perf_counter() - t0,
        }
    except Exception as err:
        detail = traceback.format_exception_only(type(err), err)[-1].strip()
        return {
            "index": task.index,
            "done": 0,
            "failed": [(t, f"task failed, nothing written ({detail})") for t in task.init_times],
            "written": False,
            "seconds": time.perf_counter() - t0,
        }
