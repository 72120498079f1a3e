"""Batch nowcasting over archives with dask: resumable zarr output, bounded memory.

:func:`forecast_archive` plans one forecast per init time of an archive, in
tasks of ``chunk_init_times`` init times, and creates (or checks) a zarr
store; :meth:`BatchJob.run` computes the tasks on any dask scheduler (the
default threads, a ``LocalCluster``, a remote cluster by address), each task
reading only its own frames and writing only its own chunks, then recording
its completion. Re-running a job after a crash computes only what the store is
missing.

>>> import tempfile, os, xnowcast
>>> from xnowcast.batch import forecast_archive
>>> cube = xnowcast.datasets.synthetic_radar(n_times=30, size=32)
>>> job = forecast_archive(cube, "persistence", os.path.join(tempfile.mkdtemp(), "fc.zarr"))
>>> job.run(progress=False).done
19
"""

from xnowcast.batch.job import BatchJob, BatchStatus, BatchSummary, forecast_archive
from xnowcast.batch.store import StoreMismatchError

__all__ = ["BatchJob", "BatchStatus", "BatchSummary", "StoreMismatchError", "forecast_archive"]
