"""Forecasts from cubes: the xarray layer over the model array contract.

:func:`forecast` is the one function behind ``cube.nowcast.forecast``, the
``xnowcast forecast`` command and batch jobs. It cuts the cube into gap-free
input windows (:mod:`xnowcast.windows`), feeds them to a model as plain arrays
(:func:`xnowcast.models.run_model`) and labels the result with the forecast
conventions of :mod:`xnowcast.conventions`.
"""

from __future__ import annotations

import itertools
import os
import warnings
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr
from dask.highlevelgraph import HighLevelGraph

from xnowcast.checks import error_line, positive_int
from xnowcast.conventions import (
    INIT_TIME,
    LEAD_TIME,
    MEMBER,
    CubeInfo,
    forecast_attrs,
    forecast_coords,
    member_coord,
)
from xnowcast.models.interface import NowcastModel, get_model, run_model
from xnowcast.models.settings import RunSettings
from xnowcast.windows import select_init_times, windows

__all__ = [
    "FramesToRead",
    "UnreadableInputError",
    "check_chunk_members",
    "check_output_size",
    "default_chunk_init_times",
    "default_chunk_members",
    "first_unreadable_frame",
    "forecast",
    "forecast_block",
    "model_for_cube",
    "physical_memory",
    "prepare_model",
    "read_frames",
]

#: Target size of one output chunk of a multi-init-time forecast.
_TARGET_CHUNK_BYTES = 128 * 2**20


def forecast(
    cube: xr.DataArray | xr.Dataset,
    model: str | NowcastModel | Any = "persistence",
    *,
    init_times: Any = "latest",
    var: str | None = None,
    every: str | pd.Timedelta | None = None,
    chunk_init_times: int | None = None,
    chunk_members: int | None = None,
    model_params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> xr.DataArray:
    """Forecast a cube with a nowcasting model.

    Parameters
    ----------
    cube : DataArray or Dataset
        Frames with dims ``(time, y, x)`` (any CF-recognisable names); NaN
        marks missing data and flows through.
    model : str, path, NowcastModel or torch.nn.Module
        Registry name (see :func:`xnowcast.list_models`), checkpoint path,
        or model instance.
    init_times : "latest", "all", slice, time or list of times
        Which forecasts to make. ``"latest"`` (default) or one time gives one
        forecast, computed now, with dims ``(lead_time, y, x)``. ``"all"``, a
        slice or a list give dims ``(init_time, lead_time, y, x)``, dask-backed
        and computed chunk by chunk only when asked (``.compute()``,
        ``.to_zarr()``, plotting).
    var : str, optional
        Variable to forecast when ``cube`` is a Dataset with several.
    every : str or Timedelta, optional
        Keep only init times on multiples of this interval (e.g. ``"30min"``).
    chunk_init_times : int, optional
        Init times per dask chunk of a multi-init forecast (default: about
        128 MiB of output per chunk).
    chunk_members : int, optional
        Ensemble models only: members per dask chunk (default: about 128 MiB
        of output per chunk). An ensemble is computed chunk by chunk when
        asked, also for one init time, so memory is bounded by one chunk; the
        members are the same under any chunking.
    model_params : dict, optional
        What the model is: parameters of a registry model or checkpoint
        loader, e.g. ``{"n_out": 6}``. Not allowed with a model instance
        (set them when creating it).
    **kwargs
        Run settings (:class:`~xnowcast.models.settings.RunSettings`:
        ``device``, ``batch_size``, ``precision``, ``tile``,
        ``tile_overlap``, ``threads``) say how the model runs; they change
        neither the model's parameters nor the forecast's attributes. Any
        other keyword is a model parameter, shorthand for ``model_params``
        (``n_out=6`` is ``model_params={"n_out": 6}``).

    Returns
    -------
    DataArray
        The forecast, named and with units as the input, with coordinates
        ``init_time`` (time of the last input frame,
        ``standard_name=forecast_reference_time``), ``lead_time`` (timedelta64,
        ``standard_name=forecast_period``), ``valid_time``, the input's spatial
        coordinates (x/y, lat/lon, grid mapping), and attributes naming the
        model, its parameters and the xnowcast version.

    Raises
    ------
    ValueError, TypeError
        A model parameter the model does not take (the message lists the
        ones it takes), invalid cube (see
        :func:`xnowcast.conventions.normalize_cube`), an
        init time without a complete gap-free input window, or a one-init-time
        forecast whose input frames are all NaN.

    Notes
    -----
    In a multi-init forecast, a window whose input frames are all NaN gives an
    all-NaN forecast instead of an error, so that one radar outage does not
    stop a job over an archive.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=20, size=48)
    >>> fc = forecast(cube, "persistence", n_out=6)
    >>> fc.dims, fc.sizes["lead_time"], str(fc.init_time.values)[:16]
    (('lead_time', 'y', 'x'), 6, '2024-06-01T13:35')
    >>> fcs = forecast(cube, "persistence", init_times="all", model_params={"n_out": 6}, threads=1)
    >>> fcs.attrs["xnowcast_model_params"]  # what the model is; threads=1 is how it ran
    '{"n_in": 12, "n_out": 6}'
    >>> fcs.dims, fcs.sizes["init_time"], fcs.chunks is not None
    (('init_time', 'lead_time', 'y', 'x'), 9, True)
    """
    nowcaster = prepare_model(model, model_params, kwargs)
    wins = windows(cube, n_in=nowcaster.n_in, n_out=0, var=var)
    cube, info = wins.cube, wins.info
    _check_time_step(nowcaster, info)
    nowcaster = model_for_cube(nowcaster, cube, info)
    positions = select_init_times(wins, init_times, every=every)
    init_idx = wins.init_indices[positions]
    single = _is_single(init_times)

    ny, nx = cube.shape[1:]
    per_block = 1 if single else (chunk_init_times or default_chunk_init_times(nowcaster, ny, nx))
    per_block = min(per_block, len(init_idx))
    members = check_chunk_members(nowcaster, chunk_members, per_block, ny, nx)
    check_output_size(nowcaster.n_out * members, ny, nx, per_block)
    data: np.ndarray | dsa.Array
    if single:
        data = _forecast_now(cube, info, nowcaster, int(init_idx[0]), members)
    else:
        data = _forecast_lazy(cube, nowcaster, init_idx, chunk_init_times, members)
    return _label(cube, info, nowcaster, init_idx, data, single)


def prepare_model(
    model: Any, model_params: dict[str, Any] | None, kwargs: dict[str, Any]
) -> NowcastModel:
    """The model of a forecast, from the one keyword rule of every forecasting entry point.

    Keywords named like a run setting (:meth:`RunSettings.names`) say how
    the model runs; every other keyword is a model parameter, shorthand for
    ``model_params={...}``. :func:`forecast`,
    :func:`xnowcast.batch.forecast_archive` and the CLI all read their
    keywords here.

    Examples
    --------
    >>> model = prepare_model("persistence", None, {"n_out": 3, "threads": 1})
    >>> model, model.settings.threads
    (Persistence(n_in=12, n_out=3), 1)
    """
    if model_params is not None and not isinstance(model_params, dict):
        raise TypeError(
            f"model_params must be a dict of model parameters, e.g. {{'n_out': 6}}, got "
            f"{type(model_params).__name__}"
        )
    settings = {k: v for k, v in kwargs.items() if k in RunSettings.names()}
    params = {k: v for k, v in kwargs.items() if k not in settings}
    twice = sorted(set(params) & set(model_params or {}))
    if twice:
        raise TypeError(
            f"model parameter {twice[0]!r} given twice, as a keyword and in model_params; "
            "give it once"
        )
    nowcaster = get_model(model, **(model_params or {}), **params)
    return nowcaster.with_settings(**settings) if settings else nowcaster


def model_for_cube(model: NowcastModel, cube: xr.DataArray, info: CubeInfo) -> NowcastModel:
    """``model`` as it forecasts ``cube``: its ``for_cube(cube, info)``, when it has one.

    A model may choose defaults the user left from the cube's quantity (the
    optical-flow model's transform for satellite channels,
    :meth:`xnowcast.models.optical_flow.OpticalFlow.for_cube`) and learn its
    grid spacing and time step; :func:`forecast` and
    :func:`xnowcast.batch.forecast_archive` call it once per cube.

    Examples
    --------
    >>> from xnowcast.conventions import normalize_cube
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube, info = normalize_cube(synthetic_radar(n_times=3, size=8))
    >>> model_for_cube(get_model("persistence"), cube, info)
    Persistence(n_in=12, n_out=24)
    """
    adapt = getattr(model, "for_cube", None)
    return adapt(cube, info) if callable(adapt) else model


def _check_time_step(model: NowcastModel, info: CubeInfo) -> None:
    """Warn when a trained model learned another time step than the cube's."""
    trained = getattr(model, "time_step", None)
    if trained is not None and np.timedelta64(trained, "ns") != info.step:
        warnings.warn(
            f"model {model.name!r} was trained on a {pd.Timedelta(trained)} time step but the "
            f"cube's step is {pd.Timedelta(info.step)}: its lead times are labelled with the "
            "cube's step. Resample the cube, or train on data with this step",
            UserWarning,
            stacklevel=3,
        )


def _is_single(init_times: Any) -> bool:
    if isinstance(init_times, str):
        return init_times != "all"
    if isinstance(init_times, (pd.Timestamp, np.datetime64)):
        return True
    return not isinstance(init_times, slice) and np.ndim(init_times) == 0


class UnreadableInputError(ValueError):
    """An input frame could not be read (a damaged file or zarr chunk); names the frame."""


def read_frames(
    cube: xr.DataArray, time_dim: str = "time", *, scheduler: str | None = None
) -> np.ndarray:
    """The values of ``cube``; when reading fails, an error naming the first unreadable frame.

    Parameters
    ----------
    cube : DataArray
        Frames, possibly lazy (dask).
    time_dim : str
        Its time dimension.
    scheduler : str, optional
        Dask scheduler to read with (``"sync"`` inside a dask task).

    Raises
    ------
    UnreadableInputError
        A frame could not be read; the message names its time, the file or
        zarr store holding it (when :func:`xnowcast.io.open_archive`
        recorded it) and the library's one-line reason.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> read_frames(synthetic_radar(n_times=3, size=8)).shape
    (3, 8, 8)
    """
    try:
        if scheduler is not None and cube.chunks is not None:
            return np.asarray(cube.data.compute(scheduler=scheduler))
        return np.asarray(cube.values)
    except Exception as err:
        found = first_unreadable_frame(cube, time_dim)
        if found is None:
            raise UnreadableInputError(f"the input could not be read ({error_line(err)})") from None
        raise UnreadableInputError(_unreadable_message(cube, *found)) from None


def _unreadable_message(cube: xr.DataArray, when: Any, why: str) -> str:
    from xnowcast.io.archive import frame_source

    path = frame_source(cube, when)
    where = f"{path}: " if path is not None else ""
    return (
        f"{where}input frame {when} could not be read ({why}); the file or zarr chunk "
        "holding it is damaged: replace it, or choose init times whose windows avoid it"
    )


def first_unreadable_frame(cube: xr.DataArray, time_dim: str = "time") -> tuple[Any, str] | None:
    """``(time, reason)`` of the first frame of ``cube`` that cannot be read, or ``None``.

    Reads chunk by chunk along time (frame by frame inside a failing chunk):
    meant for explaining a failed read, not for checking a whole archive
    up front.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> first_unreadable_frame(synthetic_radar(n_times=3, size=8)) is None
    True
    """
    sizes = cube.chunksizes.get(time_dim, (cube.sizes[time_dim],)) if cube.chunks else None
    bounds = np.cumsum([0, *(sizes or [cube.sizes[time_dim]])])
    for start, stop in itertools.pairwise(bounds):
        try:
            np.asarray(cube.isel({time_dim: slice(int(start), int(stop))}).values)
            continue
        except Exception:
            pass
        for i in range(int(start), int(stop)):
            try:
                np.asarray(cube.isel({time_dim: i}).values)
            except Exception as err:
                return pd.Timestamp(cube[time_dim].values[i]), error_line(err)
    return None


def _warn_empty_frames(frames: np.ndarray, times: Any, what: str) -> np.ndarray:
    """Warn about frames entirely NaN beside frames with data (a missing chunk or scan);
    return which frames are empty."""
    empty = ~np.isfinite(frames).reshape(len(frames), -1).any(axis=1)
    if empty.any() and not empty.all():
        named = ", ".join(str(pd.Timestamp(t)) for t in np.asarray(times)[empty][:5])
        warnings.warn(
            f"{int(empty.sum())} input frame(s) of {what} are entirely NaN while the others hold "
            f"data ({named}{', ...' if empty.sum() > 5 else ''}): missing data, such as a "
            "missing zarr chunk or scan; the forecast is made from what is left",
            UserWarning,
            stacklevel=4,
        )
    return empty


def _forecast_now(
    cube: xr.DataArray, info: CubeInfo, model: NowcastModel, end: int, chunk_members: int = 1
) -> np.ndarray | dsa.Array:
    window = cube.isel({info.time_dim: slice(end - model.n_in + 1, end + 1)})
    frames = read_frames(window, info.time_dim)
    t_init = pd.Timestamp(cube[info.time_dim].values[end])
    empty = _warn_empty_frames(frames, window[info.time_dim].values, f"the forecast from {t_init}")
    if empty.all():
        raise ValueError(
            f"the {model.n_in} input frames ending at {t_init} are all NaN (no valid data); "
            "choose another init time (init_times=...) or check the input files"
        )
    if model.members is not None:
        return _members_lazy(frames, model, chunk_members)
    return run_model(model, frames[None])[0]


def _members_lazy(frames: np.ndarray, model: NowcastModel, chunk_members: int) -> dsa.Array:
    """The ``(member, n_out, y, x)`` ensemble of one window, one dask chunk per member chunk."""
    model_ref = dask.delayed(model, pure=True)
    inputs = dask.delayed(frames[None], pure=True)
    kernel = dask.delayed(run_model, pure=True)
    count = int(model.members or 1)
    chunks = []
    for start in range(0, count, chunk_members):
        index = np.arange(start, min(start + chunk_members, count))
        block = kernel(model_ref, inputs, index)[0]
        shape = (len(index), model.n_out, *frames.shape[1:])
        chunks.append(dsa.from_delayed(block, shape=shape, dtype=np.float32))
    return dsa.concatenate(chunks, axis=0)


def default_chunk_members(model: NowcastModel, ny: int, nx: int, n_init: int = 1) -> int:
    """Members per chunk so that one output chunk of ``n_init`` init times is about 128 MiB.

    Examples
    --------
    >>> from xnowcast.models import get_model
    >>> default_chunk_members(get_model("steps", members=20, n_out=24), 700, 700)
    2
    """
    per_member = model.n_out * ny * nx * 4 * max(int(n_init), 1)
    return int(max(1, min(model.members or 1, _TARGET_CHUNK_BYTES // max(per_member, 1))))


def check_chunk_members(
    model: NowcastModel, chunk_members: int | None, n_init: int, ny: int, nx: int
) -> int:
    """Members per chunk of ``model``'s forecast: 1 for a deterministic model.

    Examples
    --------
    >>> from xnowcast.models import get_model
    >>> check_chunk_members(get_model("persistence"), 2, 1, 8, 8)
    Traceback (most recent call last):
    ...
    TypeError: chunk_members is for ensemble models; model 'persistence' is deterministic
    """
    if model.members is None:
        if chunk_members is not None:
            raise TypeError(
                f"chunk_members is for ensemble models; model {model.name!r} is deterministic"
            )
        return 1
    if chunk_members is None:
        return default_chunk_members(model, ny, nx, n_init)
    return min(positive_int(chunk_members, "chunk_members"), int(model.members))


def physical_memory() -> int | None:
    """Bytes of memory of this machine, or ``None`` when the system does not say.

    Examples
    --------
    >>> physical_memory() is None or physical_memory() > 0
    True
    """
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_output_size(n_out: int, ny: int, nx: int, n_init: int = 1) -> None:
    """Refuse a forecast block that cannot fit in memory, before allocating anything.

    One block of a forecast (``n_init`` init times of ``n_out`` lead times of
    ``ny x nx`` float32 values) is computed at once; more than this machine's
    memory would end in a ``MemoryError`` (or the system killing the process)
    after a long wait.

    Examples
    --------
    >>> check_output_size(10**9, 512, 512)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: n_out=1000000000 lead times of 512x512 need ... for one forecast, ...
    """
    need = 4 * int(n_out) * int(ny) * int(nx) * int(n_init)
    have = physical_memory()
    if have is not None and need > have:
        what = "one forecast" if n_init == 1 else f"a block of {n_init} init times"
        raise ValueError(
            f"n_out={n_out} lead times of {ny}x{nx} need {_gib(need)} for {what}, more than "
            f"this machine's {_gib(have)} of memory; ask for fewer lead times (n_out), a "
            "smaller grid or fewer init times per chunk (chunk_init_times)"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def default_chunk_init_times(model: NowcastModel, ny: int, nx: int) -> int:
    """Init times per chunk so that one output chunk is about 128 MiB."""
    per_init = model.n_out * ny * nx * 4
    return int(max(1, min(64, _TARGET_CHUNK_BYTES // max(per_init, 1))))


def forecast_block(
    frames: np.ndarray,
    ends: np.ndarray,
    model: NowcastModel,
    times: np.ndarray | None = None,
    members: np.ndarray | None = None,
) -> np.ndarray:
    """Forecast every window of a block of consecutive frames.

    This is the kernel of lazy forecasts and batch jobs.

    Parameters
    ----------
    frames : numpy.ndarray or FramesToRead
        ``(time, y, x)`` frames covering all the windows, or lazy frames read
        here (a damaged one named in an :class:`UnreadableInputError`).
    ends : numpy.ndarray
        Index into ``frames`` of the last input frame of each window.
    model : NowcastModel
        The model.
    times : numpy.ndarray, optional
        Times of ``frames``: a window with entirely-NaN frames beside frames
        with data (missing data) is then named in a ``UserWarning``.
    members : numpy.ndarray, optional
        Ensemble models only: the members to compute (default all).

    Returns
    -------
    numpy.ndarray
        ``(len(ends), n_out, y, x)`` float32 (``(len(ends), member, n_out, y,
        x)`` for an ensemble model); all-NaN windows give NaN.
    """
    if isinstance(frames, FramesToRead):
        frames = frames.read()
    frames = np.asarray(frames, dtype=np.float32)
    idx = np.asarray(ends)[:, None] + np.arange(-model.n_in + 1, 1)[None, :]
    inputs = frames[idx]
    if times is not None:
        for j, end in enumerate(np.asarray(ends)):
            what = f"the forecast from {pd.Timestamp(times[end])}"
            _warn_empty_frames(inputs[j], np.asarray(times)[idx[j]], what)
    valid = np.isfinite(inputs).reshape(len(ends), -1).any(axis=1)
    if valid.all():
        return run_model(model, inputs, members)
    ensemble = (
        () if model.members is None else (model.members if members is None else len(members),)
    )
    out = np.full((len(ends), *ensemble, model.n_out, *frames.shape[1:]), np.nan, dtype=np.float32)
    if valid.any():
        out[valid] = run_model(model, inputs[valid], members)
    return out


class FramesToRead:
    """Lazy input frames, opaque to dask: read inside the task that forecasts from them.

    A frame that cannot be read (a damaged file or zarr chunk) is then named,
    with its time and file, in an :class:`UnreadableInputError`, where dask
    would raise the library's bare error from a task of its own.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> FramesToRead(synthetic_radar(n_times=3, size=8).chunk()).read().shape
    (3, 8, 8)
    """

    def __init__(self, frames: xr.DataArray) -> None:
        self.frames = frames

    def read(self) -> np.ndarray:
        """The frames, read with dask's synchronous scheduler (this runs in a task)."""
        return read_frames(self.frames, str(self.frames.dims[0]), scheduler="sync")

    def __dask_tokenize__(self) -> Any:
        data = self.frames.data
        return ("xnowcast-frames", getattr(data, "name", None) or id(data))


def _graph_layers(array: dsa.Array) -> int:
    """Layers of a dask array's graph (1 for a plain, materialized graph)."""
    graph = array.__dask_graph__()
    return len(graph.layers) if isinstance(graph, HighLevelGraph) else 1


def _forecast_lazy(
    cube: xr.DataArray,
    model: NowcastModel,
    init_idx: np.ndarray,
    chunk_init_times: int | None,
    chunk_members: int = 1,
) -> dsa.Array:
    _, ny, nx = cube.shape
    size = default_chunk_init_times(model, ny, nx) if chunk_init_times is None else chunk_init_times
    size = positive_int(size, "chunk_init_times")
    source = cube.data
    if not isinstance(source, dsa.Array):
        source = dsa.from_array(source, chunks=(min(64, cube.shape[0]), -1, -1))
    elif _graph_layers(source) > 1:
        # A per-scan archive has one graph layer per file; merging all of them into
        # every block's graph would make planning quadratic in the number of files.
        (source,) = dask.optimize(source)
    model_ref = dask.delayed(model, pure=True)
    kernel = dask.delayed(forecast_block, pure=True)
    read_in_task = isinstance(cube.data, dsa.Array)  # read from files: name damaged frames
    times = cube[cube.dims[0]].values
    blocks = []
    for start in range(0, len(init_idx), size):
        ends = init_idx[start : start + size]
        first = int(ends[0]) - model.n_in + 1
        frames: Any = source[first : int(ends[-1]) + 1]
        if read_in_task:
            window = cube.isel({cube.dims[0]: slice(first, int(ends[-1]) + 1)})
            frames = FramesToRead(window.copy(data=frames))
        frame_times = times[first : int(ends[-1]) + 1]
        if model.members is None:
            block = kernel(frames, ends - first, model_ref, frame_times)
            blocks.append(
                dsa.from_delayed(block, shape=(len(ends), model.n_out, ny, nx), dtype=np.float32)
            )
            continue
        row = []
        for m0 in range(0, model.members, chunk_members):
            index = np.arange(m0, min(m0 + chunk_members, model.members))
            block = kernel(frames, ends - first, model_ref, frame_times, index)
            shape = (len(ends), len(index), model.n_out, ny, nx)
            row.append(dsa.from_delayed(block, shape=shape, dtype=np.float32))
        blocks.append(dsa.concatenate(row, axis=1))
    return dsa.concatenate(blocks, axis=0)


def _label(
    cube: xr.DataArray,
    info: CubeInfo,
    model: NowcastModel,
    init_idx: np.ndarray,
    data: np.ndarray | dsa.Array,
    single: bool,
) -> xr.DataArray:
    init = pd.DatetimeIndex(cube[info.time_dim].values[init_idx])
    coords = forecast_coords(init, info.step, model.n_out)
    spatial = {
        name: coord.variable
        for name, coord in cube.coords.items()
        if info.time_dim not in coord.dims
    }
    if single:
        data = data[None]
    members = () if model.members is None else (MEMBER,)
    if members:
        coords[MEMBER] = member_coord(int(model.members or 1))
    out = xr.DataArray(
        data,
        dims=(INIT_TIME, *members, LEAD_TIME, info.y_dim, info.x_dim),
        coords={**spatial, **coords},
        name=cube.name,
        attrs=forecast_attrs(cube, model.name or type(model).__name__, model.get_params()),
    )
    if single:
        out = out.isel({INIT_TIME: 0})
    if info.grid_mapping is not None:
        out.attrs["grid_mapping"] = info.grid_mapping
    return out
