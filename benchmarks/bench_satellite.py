"""Benchmark: optical flow on the SEVIRI satellite cube against persistence.

Run ``python benchmarks/bench_satellite.py`` (add ``--no-docs`` to only print).
On ``../shared/data/satellite/seviri-ir016-20200401.nc`` (298 x 615, 5 min, 25
frames) it forecasts 12 lead times (60 min) from every init time whose 12 lead
times are observed (init times 3 .. 12 with ``n_in=4``: the model uses the last
three frames only) and scores each model against the observations with MAE and
MS-SSIM (``data_range=1023``, the range of the counts as distributed), on

* the cube with its missing data masked (the file writes missing scan areas as
  0: ``cube.where(cube > 0)``, as docs/satellite.md recommends), and
* the cube as distributed (zeros taken as values).

Models: persistence; ``optical-flow`` with its defaults, which for this
continuous field are a fixed scaling of its range and plain advection
(``OpticalFlow.for_cube``); the same motion with the cascade
(``extrapolation="cascade"``); and the radar defaults forced on it (dBR and the
cascade), as every cube got before. CPU time is ``time.process_time``.

The table is printed and written into ``docs/satellite.md`` between the
``<!-- bench_satellite:start -->`` and ``<!-- bench_satellite:end -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

import xnowcast
from xnowcast.motion.api import DEFAULT_TRANSFORM

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "satellite" / "seviri-ir016-20200401.nc"
DOCS = ROOT / "docs" / "satellite.md"
N_OUT = 12
DATA_RANGE = 1023.0
MODELS = {
    "persistence": ("persistence", {}),
    "optical-flow (defaults: scale + advection)": ("optical-flow", {}),
    "optical-flow, scale + cascade": ("optical-flow", {"extrapolation": "cascade"}),
    "optical-flow, radar defaults (dBR + cascade)": (
        "optical-flow",
        {"transform": DEFAULT_TRANSFORM, "extrapolation": "cascade"},
    ),
}


def run(cube, name: str, params: dict) -> tuple[dict, float, int]:
    """Scores per lead time, CPU seconds and the number of implausible-motion warnings."""
    last_init = cube.time.values[-1 - N_OUT]
    t0 = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fc = xnowcast.forecast(
            cube, name, init_times=slice(None, last_init), n_in=4, n_out=N_OUT, **params
        ).compute()
    seconds = time.process_time() - t0
    fast = sum("beyond any physical speed" in str(w.message) for w in caught)
    scores = xnowcast.verification.verify(
        fc, cube, ["mae", "ms_ssim"], data_range=DATA_RANGE, mean=True
    ).compute()
    nan = float(np.isnan(fc.values).mean())
    return {"mae": scores.mae.values, "ms_ssim": scores.ms_ssim.values, "nan": nan}, seconds, fast


def table(rows: list[tuple]) -> str:
    lines = [
        "| cube | model | MAE +5 / +30 / +60 min | mean MAE | MS-SSIM +5 / +30 / +60 min "
        "| mean MS-SSIM | NaN | warnings | CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for cube_name, model, s, seconds, fast in rows:
        mae, ssim = s["mae"], s["ms_ssim"]
        lines.append(
            f"| {cube_name} | {model} | {mae[0]:.1f} / {mae[5]:.1f} / {mae[11]:.1f} "
            f"| {np.nanmean(mae):.1f} | {ssim[0]:.3f} / {ssim[5]:.3f} / {ssim[11]:.3f} "
            f"| {np.nanmean(ssim):.3f} | {s['nan'] * 100:.1f}% | {fast} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-docs", action="store_true", help="print only")
    args = parser.parse_args()
    raw = xnowcast.open_archive(DATA).load()
    cubes = {"zeros masked": raw.where(raw > 0), "as distributed": raw}
    rows = []
    for cube_name, cube in cubes.items():
        for label, (name, params) in MODELS.items():
            scores, seconds, fast = run(cube, name, params)
            rows.append((cube_name, label, scores, seconds, fast))
            print(rows[-1][:2], np.round(scores["mae"][[0, 5, 11]], 1), f"{seconds:.1f}s")
    load = os.getloadavg()
    text = (
        f"{table(rows)}\n\n"
        f"10 init times x {N_OUT} lead times of 298 x 615; MS-SSIM with data_range "
        f"{DATA_RANGE:g}; NaN: share of forecast pixels without a value; warnings: "
        "implausible-motion warnings (Lucas-Kanade leaving out many vectors faster than "
        "100 m/s, or a motion field faster than that; one forecast may give both). Measured by `python benchmarks/bench_satellite.py` on "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} "
        "(shared machine)."
    )
    print(text)
    if not args.no_docs:
        from _docs import write_section

        write_section(DOCS, "bench_satellite", text)


if __name__ == "__main__":
    main()
