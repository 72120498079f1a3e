"""The output store of a batch job: layout, job signature and completion record.

A batch store is a zarr group holding

* the forecast variable (named as the input), dims ``(init_time, lead_time,
  y, x)``, float32, chunked with ``chunk_init_times`` init times per chunk, so
  that every task of the job writes chunks no other task touches;
* ``forecast_status`` ``(init_time)`` int8: 0 missing, 1 done, 2 failed
  (CF ``flag_values``/``flag_meanings``), written by a task only after its
  forecast data and failure reasons are written: a status of 1 or 2
  guarantees both are complete, whatever happened to the process afterwards;
* ``forecast_error`` ``(init_time)`` string: why an init time failed (empty
  otherwise);
* the coordinates and attributes of :func:`xnowcast.forecast`, and the job
  signature in the group attribute ``xnowcast_batch`` (JSON): model, model
  parameters, variable, grid, init times and chunking. A job refuses a store
  whose signature differs from its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.conventions import INIT_TIME, LEAD_TIME
from xnowcast.io.output import (
    ZARR_FORMAT,
    check_zarr_format,
    consolidate_store,
    move_into_place,
    storage_neutral,
)

__all__ = [
    "DONE",
    "ERROR",
    "FAILED",
    "MISSING",
    "SIGNATURE_ATTR",
    "STALE_PARTIAL_SECONDS",
    "STATUS",
    "StoreMismatchError",
    "job_signature",
    "prepare_store",
    "read_errors",
    "read_status",
    "write_chunk",
    "write_data",
]

#: Per-init-time completion record.
STATUS = "forecast_status"
#: Per-init-time failure reason (empty string when none).
ERROR = "forecast_error"
MISSING, DONE, FAILED = 0, 1, 2
#: Group attribute holding the job signature (JSON).
SIGNATURE_ATTR = "xnowcast_batch"
#: Largest zarr chunk of the forecast variable; lead times are split to stay below.
_MAX_CHUNK_BYTES = 4 * 2**20
_FORMAT = 1


class StoreMismatchError(ValueError):
    """An existing store was made by another job (other model, settings or input)."""


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def job_signature(template: xr.DataArray, chunk_init_times: int) -> dict[str, Any]:
    """What identifies a batch job: compared with the store's before writing to it.

    Parameters
    ----------
    template : DataArray
        The (lazy) forecast of the job, labelled by :func:`xnowcast.forecast`.
    chunk_init_times : int
        Init times per task and per zarr chunk.
    """
    y_dim, x_dim = template.dims[-2], template.dims[-1]
    init = pd.DatetimeIndex(template[INIT_TIME].values)
    grid_coords = [np.asarray(template[d].values) for d in (y_dim, x_dim) if d in template.coords]
    return {
        "format": _FORMAT,
        "model": template.attrs.get("xnowcast_model", ""),
        "model_params": json.loads(template.attrs.get("xnowcast_model_params", "{}")),
        "variable": str(template.name),
        "n_out": int(template.sizes[LEAD_TIME]),
        "lead_times": [str(pd.Timedelta(t)) for t in template[LEAD_TIME].values[:1]],
        "grid": {
            "dims": [str(y_dim), str(x_dim)],
            "shape": [int(template.sizes[y_dim]), int(template.sizes[x_dim])],
            "digest": _digest(*grid_coords) if grid_coords else "",
        },
        "init_times": {
            "count": len(init),
            "first": str(init[0]),
            "last": str(init[-1]),
            "digest": _digest(init.values.astype("datetime64[ns]").astype(np.int64)),
        },
        "chunk_init_times": int(chunk_init_times),
    }


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Human-readable differences between two job signatures."""
    out = []
    if stored.get("format") != wanted["format"]:
        return [f"store format {stored.get('format')!r}, this xnowcast writes {wanted['format']!r}"]
    if stored["model"] != wanted["model"]:
        out.append(f"model {stored['model']!r} in the store, {wanted['model']!r} now")
    sp, wp = stored["model_params"], wanted["model_params"]
    for key in sorted(set(sp) | set(wp)):
        # Compared as JSON text: NaN parameters (e.g. fill=nan) equal themselves.
        if _canonical(sp.get(key, "<unset>")) != _canonical(wp.get(key, "<unset>")):
            out.append(
                f"model parameter {key}={sp.get(key, '<unset>')!r} in the store, "
                f"{wp.get(key, '<unset>')!r} now"
            )
    if stored["variable"] != wanted["variable"]:
        out.append(f"variable {stored['variable']!r} in the store, {wanted['variable']!r} now")
    if "n_out" not in sp and stored["n_out"] != wanted["n_out"]:
        out.append(f"n_out {stored['n_out']} in the store, {wanted['n_out']} now")
    if stored["lead_times"] != wanted["lead_times"]:
        out.append(f"time step {stored['lead_times']} in the store, {wanted['lead_times']} now")
    sg, wg = stored["grid"], wanted["grid"]
    if sg != wg:
        what = (
            f"{sg['dims']} {sg['shape']} in the store, {wg['dims']} {wg['shape']} now"
            if sg["shape"] != wg["shape"] or sg["dims"] != wg["dims"]
            else "same shape, other coordinate values"
        )
        out.append(f"grid: {what}")
    si, wi = stored["init_times"], wanted["init_times"]
    if si != wi:
        out.append(
            f"init times: {si['count']} from {si['first']} to {si['last']} in the store, "
            f"{wi['count']} from {wi['first']} to {wi['last']} now"
            + (
                " (same range, other times)"
                if (si["count"], si["first"], si["last"]) == (wi["count"], wi["first"], wi["last"])
                else ""
            )
        )
    if stored["chunk_init_times"] != wanted["chunk_init_times"]:
        out.append(
            f"chunk_init_times {stored['chunk_init_times']} in the store, "
            f"{wanted['chunk_init_times']} now"
        )
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _lead_chunk(chunk_init_times: int, n_out: int, ny: int, nx: int) -> int:
    per_lead = chunk_init_times * ny * nx * 4
    return int(max(1, min(n_out, _MAX_CHUNK_BYTES // max(per_lead, 1))))


def _template_dataset(template: xr.DataArray, chunk_init_times: int) -> tuple[xr.Dataset, dict]:
    import dask.array as dsa

    name = str(template.name)
    n_init, *members, n_out, ny, nx = template.shape  # members: (n,) for an ensemble
    # an ensemble is stored one member per chunk: tasks write it member chunk by member chunk
    lead = _lead_chunk(chunk_init_times, n_out, ny, nx)
    chunks = (chunk_init_times, *[1 for _ in members], lead, ny, nx)
    data = template.copy(data=dsa.empty(template.shape, dtype=np.float32, chunks=chunks))
    data.encoding = {}
    # Coordinates are small and written now; only the forecasts stay lazy (unwritten).
    data = data.assign_coords({k: v.variable.load() for k, v in data.coords.items()})
    ds = storage_neutral(data.to_dataset(name=name))
    ds[STATUS] = xr.Variable(
        (INIT_TIME,),
        np.zeros(n_init, dtype=np.int8),
        {
            "long_name": "batch status of the forecast",
            "flag_values": np.array([0, 1, 2], "int8"),
            "flag_meanings": "missing done failed",
        },
    )
    ds[ERROR] = xr.Variable(
        (INIT_TIME,),
        np.full(n_init, "", dtype=object),
        {"long_name": "why the forecast failed (empty when it did not)"},
    )
    from xnowcast.io.output import CF_CONVENTIONS, coordinate_encoding

    ds.attrs.setdefault("Conventions", CF_CONVENTIONS)
    encoding = {
        **coordinate_encoding(ds),
        name: {"chunks": chunks, "dtype": "float32", "_FillValue": np.float32(np.nan)},
        STATUS: {"chunks": (chunk_init_times,), "_FillValue": None},
        ERROR: {"chunks": (chunk_init_times,)},
    }
    return ds, encoding


def _is_store(path: Path) -> bool:
    return path.exists()


def _read_signature(path: Path) -> dict[str, Any] | None:
    from xnowcast.io.archive import open_zarr_store

    try:
        ds = open_zarr_store(path)
    except Exception:
        return None
    text = ds.attrs.get(SIGNATURE_ATTR)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def prepare_store(
    path: str | os.PathLike,
    template: xr.DataArray,
    chunk_init_times: int,
    *,
    overwrite: bool = False,
    zarr_format: int = ZARR_FORMAT,
) -> tuple[Path, bool]:
    """Create the store of a job, or check that an existing one belongs to it.

    The store is written to a temporary sibling and renamed into place, so a
    store at ``path`` is always complete: a failed creation removes its
    ``<name>.partial-*`` folder, one left by a killed process is removed by a
    later creation once it is an hour old (never one another job is writing
    now). An existing store replaced with ``overwrite`` stays whole until the
    new one is in place. Two jobs creating the same store at once are safe:
    the second finds the first one's store and resumes it (or refuses it,
    when made by another job).

    Parameters
    ----------
    path : str or path
        Local (or shared-filesystem) path of the zarr store.
    template : DataArray
        The labelled lazy forecast of the job (only its coordinates and
        attributes are written; no forecast is computed).
    chunk_init_times : int
        Init times per chunk.
    overwrite : bool
        Replace the store at ``path`` with a new, empty one (whatever job made
        it). By default a store of this same job is kept (and resumed) and one
        of another job is refused.
    zarr_format : {2, 3}
        Zarr format of a new store (2, the default, opens with every zarr
        reader; see :data:`xnowcast.io.output.ZARR_FORMAT`); an existing
        store keeps its own.

    Returns
    -------
    path : Path
    created : bool
        Whether a new store was written.

    Raises
    ------
    StoreMismatchError
        The store at ``path`` was made by another job; the message lists
        every difference.
    FileExistsError
        ``path`` exists and is not an xnowcast batch store.
    """
    text = os.fspath(path)
    if "://" in text:
        raise ValueError(
            f"batch output must be a path on a local or shared filesystem, got {text!r}; "
            "write to a shared filesystem visible to every worker and copy the store afterwards"
        )
    path = Path(text).expanduser().absolute()
    wanted = job_signature(template, chunk_init_times)
    zarr_format = check_zarr_format(zarr_format)
    if _is_store(path) and not _replaceable(path, wanted, overwrite):
        return path, False
    _remove_stale_partials(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        ds, encoding = _template_dataset(template, chunk_init_times)
        ds.attrs[SIGNATURE_ATTR] = json.dumps(wanted, sort_keys=True)
        ds.to_zarr(
            tmp,
            mode="w-",
            compute=False,
            encoding=encoding,
            consolidated=False,
            zarr_format=zarr_format,
        )
        consolidate_store(tmp)
        move_into_place(tmp, path, overwrite=overwrite)
    except FileExistsError:
        # Another job created the store meanwhile: resume it as if it had been there.
        return prepare_store(
            path, template, chunk_init_times, overwrite=False, zarr_format=zarr_format
        )
    finally:
        if tmp.exists():
            _remove(tmp)
    return path, True


def _replaceable(path: Path, wanted: dict[str, Any], overwrite: bool) -> bool:
    """Whether the existing store at ``path`` is to be replaced (else it is resumed).

    Raises when it may not be replaced: made by another job, or not a batch store.
    """
    stored = _read_signature(path)
    if stored is None:
        if not overwrite:
            raise FileExistsError(
                f"{str(path)!r} exists and is not an xnowcast batch store; pass "
                "overwrite=True (--overwrite) to replace it, or choose another out="
            )
        return True
    diffs = _differences(stored, wanted)
    if not overwrite and diffs:
        raise StoreMismatchError(
            f"the store {str(path)!r} was made by another job: "
            + "; ".join(diffs)
            + ". Pass overwrite=True (--overwrite) to replace it, or choose another out="
        )
    return overwrite


#: Age after which a ``.partial-*`` folder is taken as left by a killed process.
STALE_PARTIAL_SECONDS = 3600.0


def _remove_stale_partials(path: Path) -> None:
    """Remove ``<name>.partial-*`` folders old enough that no job is still writing them."""
    now = time.time()
    for stale in path.parent.glob(f"{path.name}.partial-*"):
        try:
            if now - stale.stat().st_mtime > STALE_PARTIAL_SECONDS:
                _remove(stale)
        except OSError:  # removed by another job meanwhile
            continue


def read_status(path: str | os.PathLike) -> np.ndarray:
    """The ``forecast_status`` of every init time (0 missing, 1 done, 2 failed)."""
    from xnowcast.io.archive import open_zarr_store

    return np.asarray(open_zarr_store(path)[STATUS].values, dtype=np.int8)


def read_errors(path: str | os.PathLike) -> pd.Series:
    """Failure reasons of the failed init times, indexed by init time."""
    from xnowcast.io.archive import open_zarr_store

    ds = open_zarr_store(path)
    status = np.asarray(ds[STATUS].values)
    failed = status == FAILED
    return pd.Series(
        [str(v) for v in np.asarray(ds[ERROR].values)[failed]],
        index=pd.DatetimeIndex(ds[INIT_TIME].values[failed], name=INIT_TIME),
        dtype=object,
    )


def write_chunk(
    path: str | os.PathLike,
    name: str,
    dims: tuple[str, ...],
    start: int,
    data: np.ndarray,
    status: np.ndarray,
    errors: list[str],
    member_start: int | None = None,
) -> None:
    """Write one task's forecasts, then (and only then) its completion record.

    For an ensemble store, ``data`` may hold only members ``member_start ..``
    (the last member chunk of the task, the others written before with
    :func:`write_data`).

    The forecasts go straight to zarr (the store's encoding of them is plain
    float32 with NaN fill, so there is nothing to encode and no copy to make),
    then the failure reasons (through xarray), then the status (plain int8),
    each chunk file written atomically: a process killed at any point leaves
    either a complete record or none.
    """
    import zarr

    region = {INIT_TIME: slice(start, start + len(status))}
    write_data(path, name, start, data, member_start)
    # The reasons next, the status last (two separate writes: one to_zarr call does not
    # order its variables), so that a status of done/failed always comes with its reasons.
    reasons = xr.Dataset({ERROR: ((INIT_TIME,), np.asarray(errors, dtype=object))})
    reasons.to_zarr(path, region=region, mode="r+", consolidated=False)
    record = zarr.open_array(store=os.fspath(path), path=STATUS, mode="r+")
    record[start : start + len(status)] = np.asarray(status, dtype=np.int8)


def write_data(
    path: str | os.PathLike,
    name: str,
    start: int,
    data: np.ndarray,
    member_start: int | None = None,
) -> None:
    """Write forecasts of init times ``start ..`` (members ``member_start ..`` of an ensemble).

    Only the data, no completion record (see :func:`write_chunk`).
    """
    import zarr

    target = zarr.open_array(store=os.fspath(path), path=name, mode="r+")
    ensemble = member_start is not None
    fits = (
        target.shape[2:] == data.shape[2:] and member_start + data.shape[1] <= target.shape[1]
        if ensemble
        else target.shape[1:] == data.shape[1:]
    )
    if not fits or target.dtype != data.dtype:
        raise ValueError(
            f"chunk of shape {data.shape} {data.dtype} does not fit the store's "
            f"{name!r} of shape {target.shape} {target.dtype}"
        )
    if ensemble:
        target[start : start + len(data), member_start : member_start + data.shape[1]] = data
    else:
        target[start : start + len(data)] = data
