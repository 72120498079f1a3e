"""Motion exactness, cost, forecast skill of motion options, and reuse of frame-pair tracking.

    python benchmarks/bench_motion.py                         # every section, docs updated
    python benchmarks/bench_motion.py --section exact         # one section
    python benchmarks/bench_motion.py --section skill --every 2 '{"debias": false}'

Sections (each run in one process, side by side):

``exact``
    pysteps' motion-convergence design on the MeteoSwiss field of 2015-05-15
    16:30 (``tests/test_motion.py``): the field moved by a known motion, the
    motion retrieved from the frames, relative RMSE (per cent) inside the rain
    area and its 20 px margin. Motions: the integer shifts of pysteps' test
    (2 px along x and along y, three frames), a rotation of 1 degree per step
    about the centre (``cv2.warpAffine``, bicubic, as the test), and a
    sub-pixel shift of (2.3, 0.6) px (spline interpolation, the floor any
    tracker meets on an interpolated frame). Per method and option, with the
    CPU time (``time.process_time``) of ``estimate_motion`` on the 640 x 710 field
    (median of 3 runs; the frame-pair memo off).
``skill``
    The default ``"optical-flow"`` model with each set of motion options (the
    defaults and the JSON sets on the command line, or :data:`VARIANTS`) on
    every ``--every``-th complete 12 -> 24 window of the shared MeteoSwiss,
    KNMI and BOM cubes (``bench_optical_flow.load``), scored as
    ``bench_optical_flow.score`` does: CSI at 0.1 / 1 / 5 mm/h, FSS at 1 mm/h
    over 16 px, MAE, averaged over the lead times, then over the datasets
    (equal weight per event), and the median CPU time of the motion.
``reuse``
    ``xnowcast.forecast`` of 10 consecutive init times of the KNMI cube
    (700 x 700, computed with dask's synchronous scheduler), with the memo of
    frame-pair tracking (``xnowcast.motion.lucas_kanade.TRACKS``) on and off
    (one thread; after a warm-up, alternated five times, the least CPU time kept): CPU time
    of the whole forecast and of the motion alone, and whether the forecasts
    are bit-identical.

Writes the tables into ``docs/optical-flow.md`` (section ``bench_motion``)
unless ``--no-write`` or option sets are given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _docs import write_section
from bench_optical_flow import DOC, N_IN, N_OUT, RADAR, load, score

from xnowcast.motion import estimate_motion
from xnowcast.motion.lucas_kanade import TRACKS
from xnowcast.verification.categorical import csi_from_table
from xnowcast.verification.continuous import mae_from_stats
from xnowcast.verification.spatial import fss_from_stats

#: (label, estimate_motion options) of the exactness table.
METHODS = [
    ("lucas-kanade (default)", {}),
    ("lucas-kanade prior=0 (before)", {"prior": 0.0}),
    ("lucas-kanade debias=False", {"debias": False}),
    ("lucas-kanade debias=False, refine=1", {"debias": False, "refine": 1}),
    ("lucas-kanade refine=1", {"refine": 1}),
    ("dis medium, resample", {"method": "dis", "preset": "medium", "resample": True}),
    ("dis fast (default), resample", {"method": "dis", "resample": True}),
    ("dis medium", {"method": "dis", "preset": "medium"}),
    ("farneback (default)", {"method": "farneback"}),
]
#: Motion option sets of the skill table besides the defaults.
VARIANTS = [{"prior": 0.0}, {"debias": False}, {"refine": 1}]
SKILL = [("csi0.1", "CSI 0.1"), ("csi1", "CSI 1"), ("csi5", "CSI 5"), ("fss16", "FSS 16 px")]


def mch_field() -> np.ndarray:
    import xarray as xr

    with xr.open_dataset(RADAR / "mch-20150515.nc") as ds:
        field = ds["precip_intensity"].sel(time="2015-05-15T16:30").values
    return np.asarray(field, np.float32)


def spline_shift(field: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``field`` moved by a sub-pixel shift (cubic spline); missing where it left the domain."""
    from scipy.ndimage import shift

    moved = shift(np.nan_to_num(field), (dy, dx), order=3, mode="constant", cval=0.0)
    valid = shift((~np.isnan(field)).astype(float), (dy, dx), order=1, mode="constant")
    moved[valid < 0.999] = np.nan
    return np.maximum(moved, 0).astype(np.float32)


def motion_cases(field: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (frames, true flow)}`` of the exactness table."""
    from test_motion import rotated, shifted

    cases = {}
    for dx, dy in [(2, 0), (0, 2)]:
        frames = np.stack([shifted(field, k * dx, k * dy) for k in range(3)])
        truth = np.zeros((2, *field.shape), np.float32)
        truth[0], truth[1] = dx, dy
        cases[f"shift ({dx}, {dy}) px, 3 frames"] = (frames, truth)
    moved, truth = rotated(field, 1.0)
    cases["rotation 1 deg, 2 frames"] = (np.stack([field, moved]), truth)
    twice, _ = rotated(moved, 1.0)
    cases["rotation 1 deg, 3 frames"] = (np.stack([field, moved, twice]), truth)
    frames = np.stack([field, spline_shift(field, 2.3, 0.6)])
    truth = np.zeros((2, *field.shape), np.float32)
    truth[0], truth[1] = 2.3, 0.6
    cases["shift (2.3, 0.6) px, 2 frames"] = (frames, truth)
    return cases


def exact_section() -> str:
    from test_motion import relative_rmse

    field = mch_field()
    cases = motion_cases(field)
    names = list(cases)
    lines = [
        "| method, options | " + " | ".join(names) + " | CPU ms (rotation, 2 frames) |",
        "| --- |" + " ---: |" * (len(names) + 1),
    ]
    size = TRACKS.maxsize
    TRACKS.maxsize = 0  # every call computes
    try:
        for label, options in METHODS:
            cells = []
            for name in names:
                frames, truth = cases[name]
                flow = estimate_motion(frames, n_flows=len(frames) - 1, **options)
                cells.append(f"{relative_rmse(frames, truth, flow):.3f}")
            frames = cases["rotation 1 deg, 2 frames"][0]
            cpu = []
            for _ in range(3):
                start = time.process_time()
                estimate_motion(frames, n_flows=1, **options)
                cpu.append(time.process_time() - start)
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {np.median(cpu) * 1e3:.0f} |")
            print(lines[-1], flush=True)
    finally:
        TRACKS.maxsize = size
    return "\n".join(lines)


def skill_section(variants: list[dict], every: int) -> str:
    from xnowcast.models import get_model
    from xnowcast.windows import windows

    sets = [{}, *variants]
    labels = [", ".join(f"{k}={v!r}" for k, v in p.items()) or "**defaults**" for p in sets]
    rows: dict[str, list[list[float]]] = {lab: [] for lab in labels}
    cpu: dict[str, list[float]] = {lab: [] for lab in labels}
    counts = []
    size, TRACKS.maxsize = TRACKS.maxsize, 0  # the cost of each window's motion, not reused
    for name in ("mch", "knmi", "bom"):
        cube = load(name)
        ends = windows(cube, n_in=N_IN, n_out=N_OUT).init_indices[::every]
        counts.append(f"{name.upper()} {len(ends)}")
        values = cube.values
        for lab, params in zip(labels, sets):
            model = get_model("optical-flow", n_in=N_IN, n_out=N_OUT, **params)
            sums = None
            for end in ends:
                inputs = values[end - N_IN + 1 : end + 1]
                start = time.process_time()
                flow = model.motion(inputs)
                cpu[lab].append(time.process_time() - start)
                fc = model.extrapolate(inputs, flow)
                s = score(fc, values[end + 1 : end + 1 + N_OUT])
                sums = s if sums is None else {k: sums[k] + s[k] for k in s}
            assert sums is not None
            csi = [np.nanmean(csi_from_table(sums["table"][i])) for i in range(3)]
            fss = np.nanmean(fss_from_stats(sums["fss"][:, 2]))  # 16 px
            rows[lab].append([*csi, fss, float(np.nanmean(mae_from_stats(sums["cont"])))])
            print(name, lab, np.round(rows[lab][-1], 4), flush=True)
    TRACKS.maxsize = size
    head = [k for _, k in SKILL] + ["MAE"]
    lines = [
        f"Windows: {', '.join(counts)} (every {every}). Scores averaged over the lead times, "
        "then over the datasets; in brackets the change from the defaults.",
        "",
        "| motion options | " + " | ".join(head) + " | median CPU ms of the motion |",
        "| --- |" + " ---: |" * (len(head) + 1),
    ]
    base = np.mean(rows[labels[0]], axis=0)
    for lab in labels:
        mean = np.mean(rows[lab], axis=0)
        cells = [
            f"{m:.4f}" + ("" if lab == labels[0] else f" ({m - b:+.4f})")
            for m, b in zip(mean, base)
        ]
        lines.append(f"| {lab} | " + " | ".join(cells) + f" | {np.median(cpu[lab]) * 1e3:.0f} |")
    return "\n".join(lines)


def reuse_section(n_init: int = 10, repeats: int = 5) -> str:
    import cv2
    import dask

    from xnowcast.forecast import forecast
    from xnowcast.models.settings import threads_limited

    cube = load("knmi")
    init = cube.time.values[N_IN - 1 : N_IN - 1 + n_init]
    values = cube.values
    settings = [("memo on", 32), ("memo off", 0)]

    def run_forecast() -> np.ndarray:
        with dask.config.set(scheduler="synchronous"):
            params = {"n_in": N_IN, "n_out": N_OUT}
            return forecast(
                cube, "optical-flow", init_times=init, model_params=params, threads=1
            ).values

    def run_motion() -> None:
        with threads_limited(1):
            for end in range(N_IN - 1, N_IN - 1 + n_init):
                estimate_motion(values[end - 2 : end + 1], n_flows=2)

    assert cv2 is not None  # imported, so that threads_limited limits it

    run_forecast()  # warm-up: imports and compiled kernels
    results, cpu, motion_cpu = {}, {}, {}
    for _ in range(repeats):  # alternated, so that the load changes both alike
        for label, size in settings:
            TRACKS.maxsize = size
            TRACKS.clear()
            start = time.process_time()
            results[label] = run_forecast()
            cpu.setdefault(label, []).append(time.process_time() - start)
            TRACKS.clear()
            start = time.process_time()
            run_motion()
            motion_cpu.setdefault(label, []).append(time.process_time() - start)
            print(label, cpu[label][-1], motion_cpu[label][-1], TRACKS.info(), flush=True)
    TRACKS.maxsize = 32
    TRACKS.clear()
    same = np.array_equal(results["memo on"], results["memo off"], equal_nan=True)
    best = {k: min(v) for k, v in cpu.items()}
    spread = max(max(v) - min(v) for v in cpu.values())
    best_motion = {k: min(v) for k, v in motion_cpu.items()}
    saved_motion = best_motion["memo off"] - best_motion["memo on"]
    change = best["memo off"] - best["memo on"]
    rows = [
        f"| {k} | {best[k]:.2f} | {best_motion[k]:.3f} | {1e3 * best_motion[k] / n_init:.0f} |"
        for k, _ in settings
    ]
    return "\n".join(
        [
            f"`forecast` of {n_init} consecutive init times of the KNMI cube (700 x 700, "
            f"12 -> 24, the default model; dask's synchronous scheduler, one thread: "
            "numba's and OpenCV's idle threads count as CPU time on a busy machine), and the "
            f"motion of the same {n_init} windows alone; the least CPU time of {repeats} "
            "alternated runs:",
            "",
            "| frame-pair memo | CPU s of the forecast | CPU s of the motion | "
            "CPU ms of the motion per init time |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"The memo saves {100 * saved_motion / best_motion['memo off']:.0f} % of the "
            f"motion's CPU time, {1e3 * saved_motion / n_init:.0f} ms per init time; the "
            f"forecasts are {'bit-identical' if same else '**not** identical'}. The whole "
            f"forecast's CPU time changed by {1e3 * change / n_init:.0f} ms per init time, "
            f"{'within' if abs(change) <= spread else 'beyond'} its spread between runs on "
            f"this machine ({1e3 * spread / n_init:.0f} ms per init time).",
        ]
    )


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {one:.1f} (1 min) / {five:.1f} (5 min) at the end "
        "of the section, shared with other jobs: compare the ratios, not the milliseconds"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="JSON motion option sets (skill section)")
    parser.add_argument("--section", choices=["exact", "skill", "reuse", "all"], default="all")
    parser.add_argument("--every", type=int, default=1, help="skill: use every n-th window")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    if not RADAR.is_dir():
        raise SystemExit(f"the shared radar data is not at {RADAR}")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    variants = [json.loads(v) for v in args.variants] or VARIANTS
    parts = []
    if args.section in ("exact", "all"):
        text = exact_section()
        parts += ["Relative RMSE (%) of the retrieved motion inside the rain area:", "", text]
        parts += ["", f"Machine: {machine_load()}.", ""]
    if args.section in ("skill", "all"):
        parts += ["Forecast skill of motion options:", "", skill_section(variants, args.every)]
        parts += ["", f"Machine: {machine_load()}.", ""]
    if args.section in ("reuse", "all"):
        parts += ["Reuse of frame-pair tracking:", "", reuse_section()]
        parts += ["", f"Machine: {machine_load()}.", ""]
    text = "\n".join(parts).rstrip()
    print(text)
    if args.no_write or args.section != "all" or args.variants:
        return
    if write_section(DOC, "bench_motion", text):
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
