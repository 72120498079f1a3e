"""Peak memory of a batch job over a 2 GB archive (client + scheduler + workers).

    python benchmarks/bench_batch_memory.py [--frames 2000] [--size 512] [--every 1h]
                                            [--chunk-init-times 2]

Writes a synthetic archive of 2,000 frames of 512 x 512 float32 (2 GB in
memory) as zarr under /tmp (reused on later runs), forecasts it with
optical-flow (persistence when optical-flow is not registered) with
:func:`xnowcast.batch.forecast_archive`, and samples the resident memory of
this process and every child process (nannies, workers) every 0.1 s.
Reported: the largest total at one instant, and the sum of each process's own
peak (an upper bound). Two set-ups: the default threaded scheduler (2 threads,
one process) and a LocalCluster of 2 single-threaded worker processes.

Prints a table and writes it into docs/batch.md (between the markers);
exits with status 1 when a peak is over 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from _docs import write_section

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "batch.md"
WORK = Path(os.environ.get("XNOWCAST_BENCH_DIR", "/tmp/xnowcast-bench"))
LIMIT = 1.5e9


class MemorySampler:
    """Sample RSS of a process and its descendants in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.per_process: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                name = " ".join(proc.cmdline()[-2:])[-40:]
            except psutil.Error:
                continue
            total += rss
            self.per_process[proc.pid] = max(self.per_process.get(proc.pid, 0), rss)
            self.names.setdefault(proc.pid, name)
        self.peak_total = max(self.peak_total, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def sum_of_peaks(self) -> int:
        return sum(self.per_process.values())


def run_job(setup: str, archive: Path, model: str, every: str, chunk: int) -> dict:
    """Run one job in a fresh child process tree and measure it from outside."""
    out = WORK / f"forecasts-{setup}.zarr"
    shutil.rmtree(out, ignore_errors=True)
    code = f"""
import sys, time
import xnowcast
from xnowcast.batch import forecast_archive
if __name__ == "__main__":
    client = None
    if {setup!r} == "cluster":
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
    cube = xnowcast.open_archive({str(archive)!r})
    job = forecast_archive(cube, {model!r}, {str(out)!r}, every={every!r},
                           chunk_init_times={chunk}, client=client,
                           task_threads=1 if client is not None else None)
    summary = job.run(progress=False)
    print(summary.done, len(summary.failed), summary.seconds, flush=True)
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=WORK,
    )
    with MemorySampler(proc.pid) as sampler:
        stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{setup} job failed:\n{stderr[-3000:]}")
    done, failed, seconds = stdout.split()[-3:]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "setup": setup,
        "done": int(done),
        "failed": int(failed),
        "seconds": float(seconds),
        "peak_total": sampler.peak_total,
        "sum_of_peaks": sampler.sum_of_peaks,
        "processes": len(sampler.per_process),
        "largest": max(sampler.per_process.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--every", default="1h")
    parser.add_argument("--chunk-init-times", type=int, default=2)
    parser.add_argument("--setups", default="threads,cluster")
    args = parser.parse_args()

    import xnowcast

    model = "optical-flow" if "optical-flow" in xnowcast.list_models() else "persistence"
    WORK.mkdir(parents=True, exist_ok=True)
    archive = WORK / f"archive-{args.frames}x{args.size}.zarr"
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "_batch_archive.py"),
            str(archive),
            str(args.frames),
            str(args.size),
        ],
        check=True,
    )
    gen = time.perf_counter() - t0
    archive_bytes = args.frames * args.size * args.size * 4
    print(
        f"archive: {args.frames} frames of {args.size}x{args.size} float32 = "
        f"{archive_bytes / 1e9:.2f} GB in memory ({gen:.0f} s to generate or find)"
    )

    rows = []
    for setup in args.setups.split(","):
        r = run_job(setup, archive, model, args.every, args.chunk_init_times)
        print(r)
        rows.append(r)

    describe = {
        "threads": "threaded scheduler, 2 threads, 1 process",
        "cluster": "LocalCluster, 2 single-threaded worker processes",
    }
    table = [
        f"{args.frames} frames of {args.size} x {args.size} float32 "
        f"({archive_bytes / 1e9:.2f} GB in memory, zarr on disk), {model}, every {args.every}, "
        f"chunk_init_times={args.chunk_init_times}, n_out=24:",
        "",
        "| set-up | forecasts | seconds | processes | peak total RSS (GB) | sum of per-process "
        "peaks (GB) | under 1.5 GB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    ok = True
    for r in rows:
        under = r["sum_of_peaks"] < LIMIT
        ok &= under
        table.append(
            f"| {describe.get(r['setup'], r['setup'])} | {r['done']} | "
            f"{r['seconds']:.0f} | {r['processes']} | {r['peak_total'] / 1e9:.2f} | "
            f"{r['sum_of_peaks'] / 1e9:.2f} | {'yes' if under else 'NO'} |"
        )
    text = "\n".join(table)
    print(text)
    write_section(DOC, "bench_batch_memory", text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
