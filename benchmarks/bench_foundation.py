"""Foundation timings on the shared BOM archive: open_archive and persistence forecasts.

    python benchmarks/bench_foundation.py

Prints a table and writes it into docs/benchmarks.md (between the markers).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _docs import write_section

import xnowcast
from xnowcast.io import save_forecast

ROOT = Path(__file__).resolve().parents[1]
BOM = ROOT.parent / "shared" / "data" / "radar" / "bom-2-20180616" / "*.nc"
DOC = ROOT / "docs" / "benchmarks.md"


def timed(func, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    rows = []
    t, cube = timed(lambda: xnowcast.open_archive(str(BOM)))
    rows.append(("open_archive, 61 BOM per-scan files (lazy)", t))
    t, _ = timed(lambda: cube.nowcast.forecast(model="persistence"))
    rows.append(("persistence, latest init time (reads 12 frames)", t))
    t, fcs = timed(lambda: cube.nowcast.forecast(model="persistence", init_times="all"))
    rows.append((f"persistence, init_times='all' graph ({fcs.sizes['init_time']} inits)", t))
    t, _ = timed(
        lambda: cube.nowcast.forecast(model="persistence", init_times="all").compute(), repeat=1
    )
    rows.append(("persistence, init_times='all' computed (50 x 24 x 512 x 512)", t))
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t, _ = timed(lambda: save_forecast(fcs, Path(tmp) / "fc.zarr", overwrite=True), repeat=1)
    rows.append(("persistence, init_times='all' written to zarr", t))

    table = ["| step | seconds |", "| --- | ---: |"]
    table += [f"| {name} | {sec:.2f} |" for name, sec in rows]
    text = "\n".join(table)
    print(text)
    write_section(DOC, "bench_foundation", text)


if __name__ == "__main__":
    main()
