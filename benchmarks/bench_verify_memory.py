"""Peak memory of verifying a large forecast file against a 2 GB archive.

    python benchmarks/bench_verify_memory.py [--frames 2000] [--size 512] [--every 2h,1h]
                                             [--writers save,batch]

Writes (or reuses) the synthetic archive of benchmarks/bench_batch_memory.py
(2,000 frames of 512 x 512 float32, 2 GB in memory, zarr under /tmp), makes
a persistence forecast of every init time on multiples of each ``--every``
interval, written with ``save_forecast`` (``save``: about 128 MiB per stored
chunk, as ``xnowcast forecast --init-times all`` writes) or by a batch job
(``batch``: 4 MiB chunks), then scores it with ``xnowcast.verify`` (MAE, CSI, FSS) in a fresh
process whose resident memory (and its children's) is sampled every 0.1 s.
Verification streams chunk by chunk: the peak should stay bounded by the
stored chunk size, the same for twice the init times.

Prints a table and writes it into docs/verification.md (between the markers);
exits with status 1 when a peak is over 1.5 GB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from _docs import write_section
from bench_batch_memory import WORK, MemorySampler

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "verification.md"
LIMIT = 1.5e9

MAKE = """
import sys, xnowcast
from xnowcast.batch import forecast_archive
from xnowcast.io import save_forecast
archive, out, every, writer = sys.argv[1:5]
cube = xnowcast.open_archive(archive)
if writer == "batch":
    job = forecast_archive(cube, "persistence", out, every=every, n_out=24, chunk_init_times=2)
    job.run(progress=False)
else:
    fc = xnowcast.forecast(cube, "persistence", init_times="all", every=every, n_out=24)
    save_forecast(fc, out, overwrite=True)
"""

VERIFY = """
import sys, time, xnowcast
from xnowcast.io import open_forecast
archive, path = sys.argv[1:3]
fc = open_forecast(path)
obs = xnowcast.open_archive(archive)
t0 = time.perf_counter()
scores = xnowcast.verify(fc, obs, ["mae", "csi", "fss"], thresholds=[1.0], scales=[4]).compute()
chunk = fc.data.nbytes / fc.data.npartitions
print(fc.sizes["init_time"], fc.nbytes, chunk, time.perf_counter() - t0, flush=True)
"""


def forecast_file(archive: Path, every: str, writer: str) -> Path:
    """The persistence forecast of ``archive`` every ``every`` (reused when it exists)."""
    out = WORK / f"fc-{archive.stem}-every{every}-{writer}.zarr"
    if not out.exists():
        args = [str(archive), str(out), every, writer]
        subprocess.run([sys.executable, "-c", MAKE, *args], check=True)
    return out


def measure(archive: Path, path: Path) -> dict:
    """Verify ``path`` against ``archive`` in a child process, sampled from outside."""
    proc = subprocess.Popen(
        [sys.executable, "-c", VERIFY, str(archive), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=WORK,
    )
    with MemorySampler(proc.pid) as sampler:
        stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"verify failed:\n{stderr[-3000:]}")
    n_init, nbytes, chunk, seconds = stdout.split()[-4:]
    return {
        "init_times": int(n_init),
        "forecast_bytes": float(nbytes),
        "chunk_bytes": float(chunk),
        "seconds": float(seconds),
        "peak": sampler.peak_total,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--every", default="2h,1h")
    parser.add_argument("--writers", default="save,batch")
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True)
    archive = WORK / f"archive-{args.frames}x{args.size}.zarr"
    t0 = time.perf_counter()
    script = ROOT / "benchmarks" / "_batch_archive.py"
    subprocess.run(
        [sys.executable, str(script), str(archive), str(args.frames), str(args.size)], check=True
    )
    print(f"archive ready in {time.perf_counter() - t0:.0f} s")
    rows = []
    for writer in args.writers.split(","):
        for every in args.every.split(","):
            path = forecast_file(archive, every, writer)
            row = {"writer": writer, **measure(archive, path)}
            print(row)
            rows.append(row)

    table = [
        f"{args.frames} frames of {args.size} x {args.size} float32 observations (zarr), "
        "persistence forecasts of 24 lead times, scored with MAE, CSI and FSS (threaded "
        "scheduler, 2 threads):",
        "",
        "| written by | init times | forecast (GB) | stored chunk (MB) | seconds "
        "| peak RSS (GB) | under 1.5 GB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    ok = True
    for r in rows:
        under = r["peak"] < LIMIT
        ok &= under
        writer = {"save": "`save_forecast`", "batch": "batch job"}[r["writer"]]
        table.append(
            f"| {writer} | {r['init_times']} | {r['forecast_bytes'] / 1e9:.2f} | "
            f"{r['chunk_bytes'] / 2**20:.0f} | {r['seconds']:.0f} | {r['peak'] / 1e9:.2f} | "
            f"{'yes' if under else 'NO'} |"
        )
    text = "\n".join(table)
    print(text)
    write_section(DOC, "bench_verify_memory", text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
