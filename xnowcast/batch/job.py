"""Batch jobs: plan the tasks, create or check the store, run on a dask scheduler."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.batch.store import DONE, FAILED, MISSING, prepare_store, read_errors, read_status
from xnowcast.batch.tasks import (
    ChunkTask,
    FrameSource,
    JobContext,
    ModelSpec,
    cache_model,
    run_chunk,
)
from xnowcast.checks import boolean, integer, positive_int, real
from xnowcast.conventions import INIT_TIME
from xnowcast.forecast import check_chunk_members, forecast, model_for_cube, prepare_model
from xnowcast.io.output import ZARR_FORMAT, check_output, source_paths
from xnowcast.models.interface import NowcastModel
from xnowcast.models.settings import RunSettings
from xnowcast.optional import import_optional
from xnowcast.windows import select_init_times, windows

__all__ = ["BatchJob", "BatchStatus", "BatchSummary", "forecast_archive"]

#: Scheduler names that run in this process (``client=`` strings other than these
#: are scheduler addresses).
LOCAL_SCHEDULERS = ("threads", "threading", "sync", "synchronous", "single-threaded", "processes")


@dataclass
class BatchSummary:
    """What one :meth:`BatchJob.run` did.

    Attributes
    ----------
    store : str
        Path of the store.
    total : int
        Init times of the job.
    done : int
        Init times forecast and written by this run.
    skipped : int
        Init times already recorded in the store (done or failed) by an
        earlier run, not recomputed.
    failed : list of (Timestamp, str)
        Init times this run could not forecast, with the reason.
    missing_data : list of (Timestamp, str)
        Init times forecast (done) from windows holding input frames that are
        entirely NaN while the others hold data: missing data, such as a
        missing zarr chunk or scan. Check the input at those times.
    seconds : float
        Wall time of the run.
    """

    store: str
    total: int
    done: int
    skipped: int
    failed: list[tuple[pd.Timestamp, str]] = field(default_factory=list)
    seconds: float = 0.0
    missing_data: list[tuple[pd.Timestamp, str]] = field(default_factory=list)

    @property
    def forecasts_per_second(self) -> float:
        """Forecasts made (done or failed) per second of wall time."""
        return (self.done + len(self.failed)) / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        lines = [
            f"{self.done} done, {self.skipped} skipped (already in the store), "
            f"{len(self.failed)} failed, of {self.total} init times in {self.seconds:.1f} s "
            f"-> {self.store}"
        ]
        for t, why in self.failed[:20]:
            lines.append(f"  failed {t}: {why}")
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more")
        if self.missing_data:
            lines.append(
                f"{len(self.missing_data)} init time(s) forecast from windows with entirely-NaN "
                "input frames (missing data: a missing zarr chunk or scan?), e.g."
            )
            for t, why in self.missing_data[:5]:
                lines.append(f"  {t}: {why}")
        return "\n".join(lines)


@dataclass
class BatchStatus:
    """The completion record of a store (see :meth:`BatchJob.status`).

    Attributes
    ----------
    store : str
    total, done, missing : int
        Init times in all, forecast, and not yet forecast.
    failed : pandas.Series
        Reason of each failed init time, indexed by init time.
    """

    store: str
    total: int
    done: int
    missing: int
    failed: pd.Series

    @property
    def complete(self) -> bool:
        """Whether every init time is recorded (done or failed)."""
        return self.missing == 0

    def __str__(self) -> str:
        return (
            f"{self.store}: {self.done} done, {len(self.failed)} failed, {self.missing} "
            f"missing of {self.total} init times"
        )


class BatchJob:
    """A batch forecast over an archive, written to a resumable zarr store.

    Made by :func:`forecast_archive`; :meth:`run` computes what the store is
    missing, :meth:`status` reads the store's completion record.

    Attributes
    ----------
    store : pathlib.Path
        The zarr store.
    init_times : pandas.DatetimeIndex
        Init times of the job.
    chunk_init_times : int
        Init times per task and per zarr chunk.
    model : NowcastModel
        The model (as built in this process).
    """

    def __init__(
        self,
        *,
        store: Path,
        cube: xr.DataArray,
        model: NowcastModel,
        model_ref: ModelSpec | NowcastModel,
        init_idx: np.ndarray,
        chunk_init_times: int,
        context: JobContext,
        client: Any,
    ) -> None:
        self.store = store
        self.model = model
        self.chunk_init_times = chunk_init_times
        self._cube = cube
        self._model_ref = model_ref
        self._init_idx = init_idx
        self._ctx = context
        self._client = client
        self._times = cube[cube.dims[0]].values
        self._lazy = _flat_graph(cube.data) if cube.chunks is not None else None
        self.init_times = pd.DatetimeIndex(self._times[init_idx], name=INIT_TIME)

    def __repr__(self) -> str:
        return (
            f"<BatchJob {self.model.name or type(self.model).__name__}: "
            f"{len(self.init_times)} init times in {self.n_tasks} tasks of "
            f"{self.chunk_init_times} -> {str(self.store)!r}>"
        )

    @property
    def n_tasks(self) -> int:
        """Number of tasks (chunks of init times)."""
        return -(-len(self._init_idx) // self.chunk_init_times)

    def status(self) -> BatchStatus:
        """Read the store's completion record.

        Examples
        --------
        >>> import tempfile, os, xnowcast
        >>> from xnowcast.batch import forecast_archive
        >>> cube = xnowcast.datasets.synthetic_radar(n_times=16, size=16)
        >>> out = os.path.join(tempfile.mkdtemp(), "fc.zarr")
        >>> job = forecast_archive(cube, "persistence", out, n_out=2, chunk_init_times=2)
        >>> job.status().missing
        5
        >>> _ = job.run(progress=False)
        >>> job.status().complete
        True
        """
        status = read_status(self.store)
        return BatchStatus(
            store=str(self.store),
            total=len(status),
            done=int((status == DONE).sum()),
            missing=int((status == MISSING).sum()),
            failed=read_errors(self.store),
        )

    def open(self) -> xr.DataArray:
        """The forecasts in the store, lazily (:func:`xnowcast.io.open_forecast`)."""
        from xnowcast.io.output import open_forecast

        return open_forecast(self.store)

    def _tasks(self) -> list[ChunkTask]:
        n_in = self.model.n_in
        offsets = np.arange(-n_in + 1, 1)
        tasks = []
        for index, start in enumerate(range(0, len(self._init_idx), self.chunk_init_times)):
            ends = self._init_idx[start : start + self.chunk_init_times]
            needed = np.unique((ends[:, None] + offsets[None, :]).ravel())
            tasks.append(
                ChunkTask(
                    index=index,
                    start=start,
                    ends=np.searchsorted(needed, ends),
                    init_times=self._times[ends],
                    frame_index=needed,
                    frame_times=self._times[needed],
                )
            )
        return tasks

    def _source(self, needed: np.ndarray) -> FrameSource:
        data = self._lazy
        if data is None:  # an in-memory cube
            return FrameSource(index=needed)
        # Contiguous runs of frames, sliced from the lazy cube, graph culled to them.
        breaks = np.nonzero(np.diff(needed) != 1)[0] + 1
        pieces = [data[int(run[0]) : int(run[-1]) + 1] for run in np.split(needed, breaks)]
        lazy = pieces[0] if len(pieces) == 1 else dsa.concatenate(pieces, axis=0)
        (lazy,) = dask.optimize(lazy)
        return FrameSource(lazy)

    def run(self, progress: bool = True, retry_failed: bool = False) -> BatchSummary:
        """Forecast every init time the store does not hold yet.

        Parameters
        ----------
        progress : bool
            Show a progress bar (stderr).
        retry_failed : bool
            Also recompute the chunks holding init times recorded as failed by
            an earlier run (by default they are skipped like done ones).

        Returns
        -------
        BatchSummary
            Done, skipped (already in the store) and failed init times.

        Examples
        --------
        >>> import tempfile, os, xnowcast
        >>> from xnowcast.batch import forecast_archive
        >>> cube = xnowcast.datasets.synthetic_radar(n_times=16, size=16)
        >>> out = os.path.join(tempfile.mkdtemp(), "fc.zarr")
        >>> print(forecast_archive(cube, "persistence", out, n_out=2).run(progress=False))
        ... # doctest: +ELLIPSIS
        5 done, 0 skipped (already in the store), 0 failed, of 5 init times in ...
        >>> forecast_archive(cube, "persistence", out, n_out=2).run(progress=False).skipped
        5
        """
        t0 = time.perf_counter()
        status = read_status(self.store)
        redo = (MISSING, FAILED) if retry_failed else (MISSING,)
        pending = [
            t for t in self._tasks() if np.isin(status[t.start : t.start + len(t)], redo).any()
        ]
        n_pending = sum(len(t) for t in pending)
        summary = BatchSummary(
            store=str(self.store), total=len(status), done=0, skipped=len(status) - n_pending
        )
        if pending:
            for result in self._execute(pending, progress, n_pending):
                summary.done += result["done"]
                summary.failed.extend((pd.Timestamp(t), why) for t, why in result["failed"])
                summary.missing_data.extend(
                    (pd.Timestamp(t), why) for t, why in result.get("missing_data", [])
                )
        summary.failed.sort(key=lambda item: item[0])
        summary.missing_data.sort(key=lambda item: item[0])
        summary.seconds = time.perf_counter() - t0
        return summary

    def _delayed(self, tasks: list[ChunkTask], run_id: str) -> list[Any]:
        model_ref = self._model_ref
        if isinstance(model_ref, NowcastModel):
            model_ref = dask.delayed(model_ref, pure=True)
        shared = None
        if self._cube.chunks is None:
            shared = dask.delayed(np.asarray(self._cube.values), pure=True)
        call = dask.delayed(run_chunk, pure=False)
        return [
            call(
                task,
                self._source(task.frame_index),
                model_ref,
                self._ctx,
                shared,
                dask_key_name=f"xnowcast-batch-{run_id}-{task.index}",
            )
            for task in tasks
        ]

    def _execute(self, tasks: list[ChunkTask], progress: bool, total: int) -> list[dict]:
        from tqdm.auto import tqdm

        run_id = uuid.uuid4().hex[:8]
        delayed = self._delayed(tasks, run_id)
        kind, scheduler, owned = _resolve_scheduler(self._client)  # connect before the bar
        bar = tqdm(
            total=total,
            unit="forecast",
            disable=not progress,
            file=sys.stderr,
            desc="xnowcast batch",
            smoothing=0.1,
        )
        try:
            if kind == "distributed":
                return _run_distributed(scheduler, delayed, tasks, bar)
            return _run_local(scheduler, delayed, run_id, bar)
        finally:
            bar.close()
            if owned:
                scheduler.close()


#: Above this many graph layers (e.g. one per file of a per-scan archive), the cube's graph
#: is flattened once so that culling each task's slice does not walk every layer.
_MAX_LAYERS = 32


def _flat_graph(data: dsa.Array) -> dsa.Array:
    """The same array with its task graph materialized as one layer, when it has many."""
    graph = data.__dask_graph__()
    if len(getattr(graph, "layers", ())) <= _MAX_LAYERS:
        return data
    return dsa.Array(dict(graph), data.name, data.chunks, dtype=data.dtype)


def _resolve_scheduler(client: Any) -> tuple[str, Any, bool]:
    """``(kind, scheduler, owned)``: kind "local" (a dask scheduler name or None for the
    configured default) or "distributed" (a Client, closed after the run when owned)."""
    if client is None:
        if sys.modules.get("distributed") is not None:  # a default Client may exist
            from distributed import default_client

            try:
                return "distributed", default_client(), False
            except ValueError:
                pass
        return "local", None, False
    if isinstance(client, str):
        if client in LOCAL_SCHEDULERS:
            return "local", client, False
        if ":" not in client:
            raise ValueError(
                f"client={client!r} is neither a local scheduler ({', '.join(LOCAL_SCHEDULERS)}) "
                "nor a scheduler address such as 'tcp://10.0.0.1:8786'"
            )
        return "distributed", _distributed().Client(client), True
    # a Client exists only where distributed was imported
    client_type = getattr(sys.modules.get("distributed"), "Client", None)
    if client_type is not None and isinstance(client, client_type):
        return "distributed", client, False
    if hasattr(client, "scheduler_address"):  # a cluster object (LocalCluster, SLURMCluster ...)
        return "distributed", _distributed().Client(client), True
    raise TypeError(
        f"client must be None (dask's default scheduler), a dask.distributed Client or "
        f"cluster, a scheduler address such as 'tcp://10.0.0.1:8786', or one of "
        f"{', '.join(LOCAL_SCHEDULERS)}; got {type(client).__name__}"
    )


def _run_local(scheduler: str | None, delayed: list[Any], run_id: str, bar: Any) -> list[dict]:
    from dask.callbacks import Callback

    prefix = f"xnowcast-batch-{run_id}-"

    def posttask(key, result, dsk, state, worker_id):
        if isinstance(key, str) and key.startswith(prefix):
            bar.update(result["done"] + len(result["failed"]))

    with Callback(posttask=posttask):
        return list(dask.compute(*delayed, scheduler=scheduler))


def _run_distributed(
    client: Any, delayed: list[Any], tasks: list[ChunkTask], bar: Any
) -> list[dict]:
    from distributed import as_completed

    futures = client.compute(delayed)
    by_future = dict(zip(futures, tasks))
    results = []
    for future in as_completed(futures, loop=client.loop):
        task = by_future[future]
        try:
            result = future.result()
        except Exception as err:
            result = {
                "index": task.index,
                "done": 0,
                "failed": [
                    (t, f"task lost, nothing written ({type(err).__name__}: {err})")
                    for t in task.init_times
                ],
                "written": False,
            }
        bar.update(result["done"] + len(result["failed"]))
        results.append(result)
        future.release()
    return results


def _distributed() -> Any:
    """The ``distributed`` package, or the install hint of the ``distributed`` extra."""
    return import_optional("distributed", "batch jobs on a dask.distributed cluster")


def _as_cube(cube: Any, var: str | None) -> Any:
    if isinstance(cube, (str, os.PathLike)) or (
        isinstance(cube, Sequence) and not isinstance(cube, (xr.DataArray, xr.Dataset))
    ):
        from xnowcast.io.archive import open_archive

        return open_archive(cube, var=var)
    return cube


def _paths_of(obj: Any) -> list[str]:
    """The paths (or globs) in ``obj`` when it is a path or a list of them, else none."""
    if isinstance(obj, (str, os.PathLike)):
        return [os.fspath(obj)]
    if isinstance(obj, Sequence) and not isinstance(obj, (xr.DataArray, xr.Dataset)):
        return [os.fspath(p) for p in obj if isinstance(p, (str, os.PathLike))]
    return []


def _model_keywords(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The model parameters among ``kwargs`` (all but the run settings)."""
    return {k: v for k, v in kwargs.items() if k not in RunSettings.names()}


def forecast_archive(
    cube: xr.DataArray | xr.Dataset | str | os.PathLike,
    model: str | os.PathLike | NowcastModel | Any = "optical-flow",
    out: str | os.PathLike = "forecasts.zarr",
    *,
    init_times: Any = "all",
    var: str | None = None,
    every: str | pd.Timedelta | None = None,
    chunk_init_times: int = 8,
    chunk_members: int | None = None,
    overwrite: bool = False,
    zarr_format: int = ZARR_FORMAT,
    inputs: Any = None,
    retries: int = 2,
    retry_delay: float = 1.0,
    client: Any = None,
    model_params: dict[str, Any] | None = None,
    **kwargs: Any,
) -> BatchJob:
    """Prepare a batch forecast of an archive into a resumable zarr store.

    The store is created now (coordinates and attributes only, no forecast
    computed) or, when it exists, checked to belong to this job. Nothing is
    forecast until :meth:`BatchJob.run`. Values are exactly those of
    :func:`xnowcast.forecast` with ``init_times="all"`` (or the same
    selection) and the same ``chunk_init_times``.

    Parameters
    ----------
    cube : DataArray, Dataset, path or glob
        The archive ``(time, y, x)``, ideally lazy (dask-backed, as from
        :func:`xnowcast.open_archive`) so that each task reads only its own
        frames; a path, glob or list of paths is opened with
        :func:`~xnowcast.open_archive`.
    model : str, path, NowcastModel or torch.nn.Module
        Registry name, checkpoint path or instance. Names and paths are
        loaded once per worker process; instances are sent once per worker.
    out : str or path
        The zarr store, on a filesystem every worker can write to.
    init_times : "all", slice, list of times
        Init times to forecast (see :func:`xnowcast.forecast`).
    var : str, optional
        Variable of a Dataset.
    every : str or Timedelta, optional
        Keep only init times on multiples of this interval, e.g. ``"30min"``.
    chunk_init_times : int
        Init times per task, and per zarr chunk along ``init_time``. Memory
        per task is about ``chunk_init_times * n_out`` output frames plus the
        input frames of its windows.
    chunk_members : int, optional
        Ensemble models only: members a task computes at once before writing
        them (default: about 128 MiB of output); memory per task is bounded
        by one member chunk, not by the ensemble size. The store holds one
        member per zarr chunk; a task's completion record is written after
        its last member chunk, so a killed job resumes whole init-time chunks.
    overwrite : bool
        Start over: replace the store at ``out``, whatever job made it, with
        a new, empty one. By default a store made by this same job is resumed
        (only what it is missing is computed) and a store made by another job
        (other model, parameters, input, init times or chunking) is refused.
        ``out`` is never one of the inputs (or inside one), whatever
        ``overwrite`` says.
    zarr_format : {2, 3}
        Format of a new store (2, the default, opens with every zarr reader;
        :data:`xnowcast.io.output.ZARR_FORMAT`); an existing store is resumed
        in its own format.
    inputs : path, glob or list of them, optional
        The files ``cube`` is read from, which ``out`` must not replace, when
        ``cube`` is a DataArray (a path given as ``cube`` counts already).
    retries : int
        Retries of a transient error (``OSError``) when reading frames or
        writing a chunk.
    retry_delay : float
        Seconds before the first retry; doubles at each further one.
    client : None, str, Client or cluster
        Where to run: ``None`` uses the active ``dask.distributed`` client if
        there is one, else dask's default (threaded) scheduler; a scheduler
        address (``"tcp://host:8786"``); a ``Client``; a cluster object
        (``LocalCluster``, dask-jobqueue's ``SLURMCluster``, ...); or a
        local scheduler name (``"threads"``, ``"processes"``, ``"sync"``).
    model_params : dict, optional
        What the model is, e.g. ``{"n_out": 12}`` (see
        :func:`xnowcast.forecast`); part of the job's identity.
    **kwargs
        Model parameters (shorthand for ``model_params``) and run settings
        (:class:`~xnowcast.models.settings.RunSettings`), as in
        :func:`xnowcast.forecast`. Run settings are not part of the job's
        identity: a job resumes with another ``device`` or ``batch_size``.
        ``threads`` limits the threads a task may use inside
        libraries (OpenCV, PyTorch, numba, zarr's codec pool) in each worker
        process: use 1 with single-threaded worker processes, so that N
        workers use N cores. Default: leave the libraries as they are.

    Returns
    -------
    BatchJob
        ``job.run()`` runs it, ``job.status()`` reads the store's record.

    Raises
    ------
    StoreMismatchError
        ``out`` holds a store made by another job (the message lists each
        difference) and ``overwrite`` is false.
    FileExistsError
        ``out`` exists and is not a batch store, and ``overwrite`` is false.
    ValueError, TypeError
        Invalid cube, model, parameters or init time selection; ``out`` is
        (or lies inside, or holds) an input.

    Examples
    --------
    >>> import tempfile, os, xnowcast
    >>> from xnowcast.batch import forecast_archive
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=40, size=32)
    >>> out = os.path.join(tempfile.mkdtemp(), "fc.zarr")
    >>> job = forecast_archive(cube, "persistence", out, every="10min", n_out=6)
    >>> job  # doctest: +ELLIPSIS
    <BatchJob persistence: 14 init times in 2 tasks of 8 -> '...fc.zarr'>
    >>> summary = job.run(progress=False)
    >>> summary.done, summary.skipped, summary.failed
    (14, 0, [])
    >>> job.open().dims
    ('init_time', 'lead_time', 'y', 'x')
    """
    positive_int(chunk_init_times, "chunk_init_times")
    integer(retries, "retries", low=0)
    real(retry_delay, "retry_delay", low=0)
    boolean(overwrite, "overwrite")
    sources = [*_paths_of(cube), *([] if inputs is None else _paths_of(inputs))]
    check_output(out, overwrite=True, inputs=sources)  # an existing store of this job resumes
    opened = _as_cube(cube, var)
    sources += source_paths(opened)
    check_output(out, overwrite=True, inputs=sources)
    nowcaster = prepare_model(model, model_params, kwargs)
    wins = windows(opened, n_in=nowcaster.n_in, n_out=0, var=var)
    nowcaster = model_for_cube(nowcaster, wins.cube, wins.info)  # e.g. satellite defaults
    positions = select_init_times(wins, init_times, every=every)
    init_idx = wins.init_indices[positions]
    source = wins.cube
    if source.chunks is None and not source.variable._in_memory:
        # Lazily indexed file (opened without chunks): let tasks read their own frames.
        source = source.chunk({wins.info.time_dim: 1})
    # The labels (coordinates, attributes) of exactly what forecast() returns, from a stand-in
    # cube with the same coordinates whose one-chunk data is never computed (building the lazy
    # forecast over the real graph would cost time for nothing).
    stand_in = wins.cube.copy(data=dsa.zeros(wins.cube.shape, dtype=wins.cube.dtype, chunks=-1))
    template = forecast(
        stand_in,
        nowcaster,
        init_times=wins.init_times[positions],
        chunk_init_times=int(chunk_init_times),
    )
    if template.name is None:
        template.name = "forecast"
    store, _ = prepare_store(
        out, template, int(chunk_init_times), overwrite=overwrite, zarr_format=zarr_format
    )
    model_ref: ModelSpec | NowcastModel = nowcaster
    if isinstance(model, (str, os.PathLike)):
        ref = os.fspath(model)
        spec = ModelSpec(
            os.path.abspath(ref) if os.path.exists(ref) else ref,
            {
                **(model_params or {}),
                **_model_keywords(kwargs),
                **getattr(nowcaster, "adapted", {}),  # what model_for_cube chose
            },
            nowcaster.settings,
        )
        cache_model(spec, nowcaster)  # tasks in this process reuse it
        model_ref = spec
    context = JobContext(
        store=str(store),
        name=str(template.name),
        dims=tuple(map(str, template.dims)),
        n_in=nowcaster.n_in,
        retries=int(retries),
        retry_delay=float(retry_delay),
        threads=nowcaster.settings.threads,
        chunk_members=check_chunk_members(
            nowcaster,
            chunk_members,
            int(chunk_init_times),
            *wins.cube.shape[1:],
        ),
    )
    return BatchJob(
        store=store,
        cube=source,
        model=nowcaster,
        model_ref=model_ref,
        init_idx=np.asarray(init_idx, dtype=np.int64),
        chunk_init_times=int(chunk_init_times),
        context=context,
        client=client,
    )
