"""Optical flow against pysteps on the shared radar data: skill and speed, side by side.

    python benchmarks/bench_optical_flow.py            # every complete 12 -> 24 window
    python benchmarks/bench_optical_flow.py --every 4  # every 4th window (quicker)
    python benchmarks/bench_optical_flow.py --held-out # the events the defaults never saw
    python benchmarks/bench_optical_flow.py --held-out --variant '{"sigma": 15}'

For every complete window (12 input frames, 24 observed lead times) of the
MeteoSwiss, KNMI and BOM cubes (cropped to at most 700 x 700), this runs, one
after the other in the same process:

* ``xnowcast.forecast(cube, model="optical-flow", init_times=t, ...)`` with the
  default settings (scale-aware cascade extrapolation) and with
  ``extrapolation="advection"`` (the last frame advected as it is);
* persistence;
* pysteps Lucas-Kanade motion (``pysteps.motion.get_method("LK")``) on the last
  three frames in dBR (threshold 0.1 mm/h, zero value -15 dBR, missing data set
  to -15 dBR, as in the pysteps examples), then
  - 24-step semi-Lagrangian extrapolation of the last frame
    (``pysteps.nowcasts.get_method("extrapolation")``), and
  - S-PROG (``pysteps.nowcasts.get_method("sprog")``: 8 cascade levels, AR(2),
    ``precip_thr=-10`` dBR, mean probability matching), back to mm/h;
* the floor: ``floor_cascade.py``, a plain numpy + OpenCV script of the same
  extrapolation as the default (same motion), for the speed comparison.

Each forecast is timed in CPU time (``time.process_time``, all threads) and
wall time, and scored against the observations with
:mod:`xnowcast.verification`: CSI at 0.1, 1 and 5 mm/h, FSS at 1 mm/h over 1,
4, 16 and 32 px, MAE (mm/h), pooled over the windows per lead time
(contingency tables and FSS sums added up, as ``pysteps.verification``
accumulates them), then averaged over the lead times; the average over the
datasets gives each event equal weight.

Scoring domain: pixels where the observation is valid. A forecast pixel that
is NaN there (advected in from outside the domain) counts as 0 mm/h, so that
every method is scored on the same pixels.

BOM files hold accumulations (kg m-2 per 6 min); they are converted to mm/h
(x 10).

``--held-out`` runs the same comparison on two events of ``../shared/data/formats``
that no default was tuned on, read from their raw files with
:func:`xnowcast.open_archive`: NOAA MRMS 2019-06-10 (GRIB2, 2 min, 36 frames; the
700 x 700 crop of the CONUS grid around the largest rain area) and the OPERA
composite of 2018-08-24 (ODIM HDF5, 15 min, 24 frames; likewise). They are too
short for 12 -> 24 windows: the methods get the last 6 frames of MRMS (the default
tracks the 5 frame pairs of the last 10 minutes; pysteps, as in its examples, the
last 3 frames) and the last 4 of OPERA (2 pairs each), and forecast 24 (MRMS,
48 min) and 12 (OPERA, 3 hours) lead times. The tables go into their own docs
section, ``bench_optical_flow_heldout``, and plot, ``docs/img/optical-flow-heldout.png``.

Needs ``pysteps`` (``pip install -e '.[bench]'``) and matplotlib for the plot.
Prints the tables and writes them, with a skill-vs-lead plot, into
``docs/optical-flow.md`` and ``docs/img/optical-flow-skill.png``.

``--variant JSON`` (repeatable) adds a row of the optical-flow model with those
parameters (e.g. ``'{"sigma": 15}'``, a candidate default) beside the others, on
the same windows; its rows are written into the docs with the rest. They are not
timed: run after the default on each window, they find its frame-pair tracking in
the motion memo.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
import warnings
from pathlib import Path

import floor_cascade
import numpy as np
import pandas as pd
import xarray as xr
from _docs import write_section

import xnowcast
from xnowcast.forecast import forecast
from xnowcast.models.optical_flow import OpticalFlow
from xnowcast.verification.categorical import contingency_table, csi_from_table
from xnowcast.verification.continuous import continuous_stats, mae_from_stats
from xnowcast.verification.spatial import fss_from_stats, fss_stats

ROOT = Path(__file__).resolve().parents[1]
RADAR = ROOT.parent / "shared" / "data" / "radar"
DOC = ROOT / "docs" / "optical-flow.md"
PLOT = ROOT / "docs" / "img" / "optical-flow-skill.png"

N_IN, N_OUT, CROP = 12, 24, 700
FORMATS = ROOT.parent / "shared" / "data" / "formats"
#: Events of the raw formats, never used to tune a default: files, crop corner (y, x)
#: around the largest rain area of the middle frame, input frames, lead times.
HELD_OUT = {
    "mrms": ("mrms/2019/06/10/*.grib2", (700, 4200), 6, 24),
    "opera": ("OPERA/20180824/*.hdf", (1050, 700), 4, 12),
}
THRESHOLDS = (0.1, 1.0, 5.0)
SCALES = (1, 4, 16, 32)
FSS_SCALE = 16  # the scale of the summary tables and targets

DEFAULT = "xnowcast optical-flow (default: cascade)"
ADVECTION = "xnowcast extrapolation='advection'"
PERSISTENCE = "persistence"
PS_LK = "pysteps LK + extrapolation"
PS_SPROG = "pysteps S-PROG (8 levels, AR(2), mean matching)"
FLOOR = "floor: plain numpy + OpenCV script of the default"

#: (label, model, parameters) of the xnowcast forecasts.
XNOWCAST = [
    (DEFAULT, "optical-flow", {}),
    (ADVECTION, "optical-flow", {"extrapolation": "advection"}),
    (PERSISTENCE, "persistence", {}),
]
LABELS = [DEFAULT, ADVECTION, PERSISTENCE, PS_LK, PS_SPROG]
#: Labels of the ``--variant`` rows: scored, not timed (they reuse the default's tracking).
VARIANTS: list[str] = []


def add_variant(params: dict) -> str:
    """Score the optical-flow model with ``params`` too (a row after the default's)."""
    if not isinstance(params, dict) or not params:
        raise SystemExit(f"--variant takes a JSON object of model parameters, got {params!r}")
    label = "xnowcast optical-flow " + ", ".join(f"{k}={v!r}" for k, v in params.items())
    XNOWCAST.append((label, "optical-flow", params))
    LABELS.insert(LABELS.index(DEFAULT) + 1, label)
    VARIANTS.append(label)
    return label


def windows_of(name: str) -> tuple[int, int]:
    """Input frames and lead times of a dataset's windows."""
    return HELD_OUT[name][2:] if name in HELD_OUT else (N_IN, N_OUT)


def load(name: str) -> xr.DataArray:
    """One shared cube in mm/h, cropped to at most CROP x CROP, in memory."""
    if name in HELD_OUT:
        files, (y0, x0), _, _ = HELD_OUT[name]
        cube = xnowcast.open_archive(str(FORMATS / files))
        crop = {"y": slice(y0, y0 + CROP), "x": slice(x0, x0 + CROP)}
        return cube.isel(crop).astype("float32").load()
    if name == "mch":
        cube = xr.open_dataset(RADAR / "mch-20150515.nc")["precip_intensity"]
    elif name == "knmi":
        cube = xr.open_dataset(RADAR / "knmi-201008.nc")["precip_intensity"]
    elif name == "bom":
        acc = xnowcast.open_archive(str(RADAR / "bom-2-20180616" / "*.nc"))
        step_h = pd.Timedelta(np.diff(acc.time.values).min()).total_seconds() / 3600
        cube = (acc / step_h).assign_attrs(acc.attrs, units="mm h-1", standard_name="rainfall_rate")
    else:
        raise ValueError(f"unknown dataset {name!r}; valid: mch, knmi, bom, {', '.join(HELD_OUT)}")
    cube = cube.isel(y=slice(0, CROP), x=slice(0, CROP)).astype("float32").load()
    return cube


def pysteps_forecasts(
    frames: np.ndarray, n_out: int = N_OUT
) -> dict[str, tuple[np.ndarray, float, float]]:
    """LK + extrapolation and S-PROG of one window: ``{label: (forecast, cpu s, wall s)}``."""
    from pysteps import motion, nowcasts
    from pysteps.utils import transformation

    cpu, wall = time.process_time(), time.perf_counter()
    db, _ = transformation.dB_transform(
        frames[-3:].astype("float64"), threshold=0.1, zerovalue=-15.0
    )
    db[~np.isfinite(db)] = -15.0
    velocity = motion.get_method("LK")(db)
    motion_cpu, motion_wall = time.process_time() - cpu, time.perf_counter() - wall
    out = {}
    cpu, wall = time.process_time(), time.perf_counter()
    fc = nowcasts.get_method("extrapolation")(frames[-1].astype("float64"), velocity, n_out)
    out[PS_LK] = (
        fc,
        time.process_time() - cpu + motion_cpu,
        time.perf_counter() - wall + motion_wall,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # S-PROG prints its settings
        fc = nowcasts.get_method("sprog")(
            db,
            velocity,
            n_out,
            precip_thr=-10.0,
            n_cascade_levels=8,
            ar_order=2,
            probmatching_method="mean",
        )
    fc = transformation.dB_transform(fc, threshold=-10.0, inverse=True)[0]
    out[PS_SPROG] = (
        fc,
        time.process_time() - cpu + motion_cpu,
        time.perf_counter() - wall + motion_wall,
    )
    return out


def score(fc: np.ndarray, obs: np.ndarray) -> dict[str, np.ndarray]:
    """Per-lead sums of one forecast: contingency tables, FSS sums, continuous sums."""
    fc = np.where(np.isfinite(obs) & ~np.isfinite(fc), 0.0, fc)
    return {
        "table": np.stack([contingency_table(fc, obs, t) for t in THRESHOLDS]),
        "fss": fss_stats(fc, obs, 1.0, list(SCALES))[..., 0, :, :],
        "cont": continuous_stats(fc, obs),
    }


def timed(run) -> tuple[np.ndarray, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    fc = run()
    return fc, time.process_time() - cpu, time.perf_counter() - wall


def window_forecasts(
    cube, init, inputs, model, n_out
) -> dict[str, tuple[np.ndarray, float, float]]:
    runs = {
        lab: timed(
            lambda m=m, p=p: (
                forecast(
                    cube,
                    model=m,
                    init_times=init,
                    model_params={"n_in": len(inputs), "n_out": n_out, **p},
                ).values
            )
        )
        for lab, m, p in XNOWCAST
    }
    flow = model.motion(inputs)  # the same motion, so that only the extrapolation differs
    runs[FLOOR] = timed(lambda: floor_cascade.extrapolate(inputs, flow, n_out))
    runs.update(pysteps_forecasts(inputs, n_out))
    return runs


def run_dataset(name: str, every: int) -> dict:
    from xnowcast.windows import windows

    cube = load(name)
    n_in, n_out = windows_of(name)
    wins = windows(cube, n_in=n_in, n_out=n_out)
    ends = wins.init_indices[::every]
    sums: dict[str, dict] = {}
    cpu: dict[str, list[float]] = {}
    wall: dict[str, list[float]] = {}
    values, times = cube.values, cube.time.values
    model = OpticalFlow(n_in=n_in, n_out=n_out)
    print(f"{name}: {cube.sizes['y']} x {cube.sizes['x']}, {len(ends)} windows", flush=True)
    for end in ends:
        obs = values[end + 1 : end + 1 + n_out]
        inputs = values[end - n_in + 1 : end + 1]
        for lab, (fc, c, w) in window_forecasts(cube, times[end], inputs, model, n_out).items():
            cpu.setdefault(lab, []).append(c)
            wall.setdefault(lab, []).append(w)
            if lab == FLOOR:
                continue
            s = score(fc, obs)
            sums[lab] = s if lab not in sums else {k: sums[lab][k] + s[k] for k in s}
    scores = {
        lab: {
            **{f"csi{t:g}": csi_from_table(s["table"][i]) for i, t in enumerate(THRESHOLDS)},
            **{f"fss{p}": fss_from_stats(s["fss"][:, i]) for i, p in enumerate(SCALES)},
            "mae": mae_from_stats(s["cont"]),
        }
        for lab, s in sums.items()
    }
    return {
        "shape": (cube.sizes["y"], cube.sizes["x"]),
        "n_windows": len(ends),
        "n_in": n_in,
        "n_out": n_out,
        "step": pd.Timedelta(wins.info.step),
        "scores": scores,
        "cpu": {lab: float(np.median(v)) for lab, v in cpu.items()},
        "wall": {lab: float(np.median(v)) for lab, v in wall.items()},
    }


METRICS = [
    ("csi0.1", "CSI 0.1"),
    ("csi1", "CSI 1"),
    ("csi5", "CSI 5"),
    *[(f"fss{p}", f"FSS {p} px") for p in SCALES],
    ("mae", "MAE"),
]


def averaged(res: dict, lab: str, key: str) -> float:
    return float(np.nanmean(res["scores"][lab][key]))


def skill_table(results: dict) -> list[str]:
    lines = [
        "| dataset | method | " + " | ".join(t for _, t in METRICS) + " |",
        "| --- | --- |" + " ---: |" * len(METRICS),
    ]
    for name, res in [*results.items(), ("mean", None)]:
        for lab in LABELS:
            if res is None:
                cells = [
                    np.mean([averaged(r, lab, k) for r in results.values()]) for k, _ in METRICS
                ]
            else:
                cells = [averaged(res, lab, k) for k, _ in METRICS]
            bold = "**" if lab == DEFAULT else ""
            lines.append(
                f"| {name.upper()} | {bold}{lab}{bold} | "
                + " | ".join(f"{c:.3f}" for c in cells)
                + " |"
            )
    return lines


def targets_table(results: dict) -> list[str]:
    def mean(lab, key):
        return float(np.mean([averaged(r, lab, key) for r in results.values()]))

    def ratio(num, den, kind):
        return float(np.median([r[kind][den] / r[kind][num] for r in results.values()]))

    rows = [
        ("CSI 1 mm/h >= S-PROG + 0.01", mean(DEFAULT, "csi1"), mean(PS_SPROG, "csi1") + 0.01, ">="),
        (
            f"FSS 1 mm/h {FSS_SCALE} px >= LK + 0.01",
            mean(DEFAULT, f"fss{FSS_SCALE}"),
            mean(PS_LK, f"fss{FSS_SCALE}") + 0.01,
            ">=",
        ),
        ("CSI 5 mm/h >= LK", mean(DEFAULT, "csi5"), mean(PS_LK, "csi5"), ">="),
        ("MAE <= 1.10 x S-PROG", mean(DEFAULT, "mae"), 1.10 * mean(PS_SPROG, "mae"), "<="),
        ("CPU time: x faster than pysteps LK >= 20", ratio(DEFAULT, PS_LK, "cpu"), 20.0, ">="),
        ("CPU time: x faster than S-PROG >= 50", ratio(DEFAULT, PS_SPROG, "cpu"), 50.0, ">="),
        ("CPU time: x the floor script <= 1.3", 1 / ratio(DEFAULT, FLOOR, "cpu"), 1.3, "<="),
    ]
    lines = ["| target | default | bar | met |", "| --- | ---: | ---: | :---: |"]
    for text, value, bar, op in rows:
        met = value >= bar if op == ">=" else value <= bar
        lines.append(f"| {text} | {value:.3f} | {bar:.3f} | {'yes' if met else '**no**'} |")
    return lines


def speed_table(results: dict) -> list[str]:
    lines = [
        "| dataset | method | median CPU s | median wall s | CPU x faster than pysteps LK | "
        "CPU x faster than S-PROG |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, res in results.items():
        for lab in [*(lab for lab in LABELS if lab not in VARIANTS), FLOOR]:
            c, w = res["cpu"][lab], res["wall"][lab]
            lines.append(
                f"| {name.upper()} | {lab} | {c:.3f} | {w:.3f} | {res['cpu'][PS_LK] / c:.1f} | "
                f"{res['cpu'][PS_SPROG] / c:.1f} |"
            )
    return lines


def lead_table(results: dict) -> list[str]:
    lines = []
    for name, res in results.items():
        leads = [k for k in (0, 5, 11, 23) if k < res["n_out"]]
        minutes = res["step"].total_seconds() / 60
        lines += [
            f"CSI 1 mm/h / FSS {FSS_SCALE} px / MAE per lead time ({name.upper()}, "
            f"{res['n_windows']} windows):",
            "",
            "| method | " + " | ".join(f"+{(k + 1) * minutes:g} min" for k in leads) + " |",
            "| --- |" + " ---: |" * len(leads),
        ]
        for lab in LABELS:
            sc = res["scores"][lab]
            cells = [
                f"{sc['csi1'][k]:.2f} / {sc[f'fss{FSS_SCALE}'][k]:.2f} / {sc['mae'][k]:.2f}"
                for k in leads
            ]
            lines.append(f"| {lab} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def tables(results: dict, load: str) -> str:
    sizes = ", ".join(
        f"{n.upper()} {r['shape'][0]} x {r['shape'][1]} ({r['n_windows']} windows of "
        f"{r['n_in']} -> {r['n_out']})"
        for n, r in results.items()
    )
    return "\n".join(
        [
            f"Windows: {sizes}. Machine: {load}.",
            "",
            "Targets (averages over the datasets, equal weight per event; speed ratios are the "
            "median over the datasets of the per-dataset median CPU times):",
            "",
            *targets_table(results),
            "",
            "Skill averaged over the lead times (FSS at 1 mm/h, MAE in mm/h):",
            "",
            *skill_table(results),
            "",
            "Time per forecast:",
            "",
            *speed_table(results),
            "",
            *lead_table(results),
        ]
    )


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [
        ("csi1", "CSI 1 mm/h"),
        ("csi5", "CSI 5 mm/h"),
        (f"fss{FSS_SCALE}", f"FSS 1 mm/h, {FSS_SCALE} px"),
        ("mae", "MAE (mm/h)"),
    ]
    fig, axes = plt.subplots(
        len(results), len(metrics), figsize=(16, 3.2 * len(results)), squeeze=False
    )
    for row, (name, res) in zip(axes, results.items()):
        minutes = res["step"].total_seconds() / 60
        leads = np.arange(1, res["n_out"] + 1) * minutes
        for ax, (key, title) in zip(row, metrics):
            for lab in LABELS:
                style = "--" if lab.startswith("pysteps") or lab == PERSISTENCE else "-"
                ax.plot(
                    leads,
                    res["scores"][lab][key],
                    style,
                    label=lab,
                    lw=2.2 if lab == DEFAULT else 1,
                )
            ax.set_title(f"{name.upper()}: {title}")
            ax.set_xlabel("lead time (min)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def machine_load() -> str:
    one, five, _ = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {one:.1f} (1 min) / {five:.1f} (5 min) at the end "
        "of the run, shared with other jobs: compare the ratios, not the seconds"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mch", "knmi", "bom"])
    parser.add_argument("--every", type=int, default=1, help="use every n-th window")
    parser.add_argument(
        "--held-out",
        action="store_true",
        help=f"the events no default was tuned on ({', '.join(HELD_OUT)}), in their own section",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        type=json.loads,
        help="optical-flow parameters (JSON) scored as one more row, e.g. '{\"sigma\": 15}'",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    if not RADAR.is_dir():
        raise SystemExit(f"the shared radar data is not at {RADAR}")
    for params in args.variant:
        add_variant(params)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    datasets = list(HELD_OUT) if args.held_out else args.datasets
    results = {name: run_dataset(name, args.every) for name in datasets}
    text = tables(results, machine_load())
    print(text)
    if args.no_write:
        return
    section, plot_path = "bench_optical_flow", PLOT
    if args.held_out:
        section, plot_path = section + "_heldout", PLOT.with_name("optical-flow-heldout.png")
    plot(results, plot_path)
    write_section(DOC, section, text)
    print(f"wrote {DOC.relative_to(ROOT)} and {plot_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
