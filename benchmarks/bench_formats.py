"""Benchmark of the raw radar readers against pysteps' importers.

Run ``python benchmarks/bench_formats.py`` (add ``--no-docs`` to only print);
it needs ``../shared/data/formats`` and pysteps (with pygrib for MRMS; its
GeoTIFF importer needs GDAL, which is skipped when absent). Measures, per
file (best of the first three files of each format):

* xnowcast: opening (headers only: the values stay lazy);
* xnowcast: opening and reading the values (lat/lon stay lazy: they are
  computed, once per grid, only where used);
* pysteps' importer (values and metadata);

and, for the 36-grid MRMS archive (3500 x 7000 each), the time to open it
lazily and the peak memory of one pass over all 36 frames (the mean of each).

The table is printed and written into ``docs/formats.md`` between the
``<!-- bench_formats:start -->`` and ``<!-- bench_formats:end -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from pathlib import Path

import dask
from _docs import write_section

import xnowcast
from xnowcast.io.formats import open_radar_file

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "formats"
DOCS = ROOT / "docs" / "formats.md"

CASES = [
    ("ODIM HDF5, OPERA 2018 (RATE)", "OPERA/20180824/*.hdf", "import_odim_hdf5", {"qty": "RATE"}),
    (
        "ODIM HDF5, OPERA CIRRUS (DBZH)",
        "OPERA/20241126/CIRRUS/*.hdf",
        "import_odim_hdf5",
        {"qty": "DBZH"},
    ),
    ("KNMI HDF5", "KNMI/2010/08/*.h5", "import_knmi_hdf5", {"qty": "ACRR"}),
    (
        "MeteoSwiss GIF",
        "mch/20150515/*.gif",
        "import_mch_gif",
        {"product": "AQC", "unit": "mm", "accutime": 5},
    ),
    ("FMI PGM.gz", "fmi/pgm/20160928/*.pgm.gz", "import_fmi_pgm", {"gzipped": True}),
    ("FMI GeoTIFF", "fmi/geotiff/20160928/*.tif", "import_fmi_geotiff", {}),
    ("MRMS GRIB2", "mrms/2019/06/10/*.grib2", "import_mrms_grib", {"window_size": 1}),
]


def best_of(fn, files) -> float:
    times = []
    for path in files:
        t0 = time.perf_counter()
        fn(path)
        times.append(time.perf_counter() - t0)
    return min(times)


def values(ds):
    """The values of the one data variable (lat/lon stay lazy, as in use)."""
    return next(iter(ds.data_vars.values())).values


def pysteps_time(importer: str, kwargs: dict, files) -> str:
    try:
        from pysteps.io import importers

        fn = getattr(importers, importer)
        return f"{best_of(lambda p: fn(p, **kwargs), files):.2f} s"
    except Exception as err:  # GDAL (no wheel) or pygrib missing
        return f"n/a ({str(err).split(' package')[0]} not installed)"


def format_rows() -> list[str]:
    rows = []
    for label, pattern, importer, kwargs in CASES:
        files = sorted(str(p) for p in DATA.glob(pattern))[:3]
        if not files:
            continue
        ds = open_radar_file(files[0])
        shape = " x ".join(str(n) for n in next(iter(ds.data_vars.values())).shape[1:])
        t_open = best_of(open_radar_file, files)
        t_read = best_of(lambda p: values(open_radar_file(p)), files)
        rows.append(
            f"| {label} | {shape} | {t_open * 1000:.0f} ms | {t_read:.2f} s | "
            f"{pysteps_time(importer, kwargs, files)} |"
        )
        print(rows[-1], flush=True)
    return rows


def peak_rss(fn) -> tuple[float, float]:
    import psutil

    proc = psutil.Process(os.getpid())
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    done.set()
    thread.join()
    return elapsed, (peak[0] - base) / 2**20


def mrms_archive() -> list[str]:
    files = sorted(str(p) for p in DATA.glob("mrms/2019/06/10/*.grib2"))
    t0 = time.perf_counter()
    cube = xnowcast.open_archive(files)
    t_open = time.perf_counter() - t0
    frame_mb = cube.isel(time=0).nbytes / 2**20

    def stream() -> None:
        with dask.config.set(scheduler="threads", num_workers=2):
            cube.mean(("y", "x")).compute()  # one number per frame: a pass over the archive

    t_stream, rss = peak_rss(stream)

    def persistence() -> None:
        fc = xnowcast.forecast(cube, "persistence", n_in=2, n_out=6)
        with dask.config.set(scheduler="threads", num_workers=2):
            fc.compute()

    t_fc, rss_fc = peak_rss(persistence)
    lines = [
        f"MRMS archive: {len(files)} grids of {cube.sizes['y']} x {cube.sizes['x']} "
        f"({frame_mb:.0f} MB per frame as float32, {len(files) * frame_mb / 1024:.1f} GB in all) "
        f"open lazily in {t_open:.1f} s; a pass over all frames (the mean of each) streams in "
        f"{t_stream:.0f} s with a peak of {rss:.0f} MB more memory (2 threads: about "
        f"{rss / frame_mb:.0f} frame sizes, not {len(files)}; decoding a message needs a "
        "float64 copy). A persistence forecast of 6 lead times from the latest frame takes "
        f"{t_fc:.0f} s and {rss_fc:.0f} MB more memory ({rss_fc / frame_mb:.0f} frame sizes, "
        "its 6 output frames and lat/lon included)."
    ]
    print(lines[0], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"no shared data at {DATA}")
    header = [
        f"Measured on {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()} ({time.strftime('%Y-%m-%d')}).",
        "",
        "| format | grid | xnowcast open (lazy) | xnowcast open + read | pysteps importer |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = format_rows()
    text = "\n".join([*header, *rows, "", *mrms_archive()])
    print(text)
    if not args.no_docs:
        write_section(DOCS, "bench_formats", text)


if __name__ == "__main__":
    main()
