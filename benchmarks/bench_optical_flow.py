"""Optical flow against pysteps on the shared radar data: skill and speed, side by side.

    python benchmarks/bench_optical_flow.py            # every complete 12 -> 24 window
    python benchmarks/bench_optical_flow.py --every 4  # every 4th window (quicker)

For every complete window (12 input frames, 24 observed lead times) of the
MeteoSwiss, KNMI and BOM cubes (cropped to at most 700 x 700), this runs

* ``xnowcast.forecast(cube, model="optical-flow", init_times=t, ...)`` with the
  default settings and with each motion method,
* persistence,
* pysteps: Lucas-Kanade motion (``pysteps.motion.get_method("LK")``) on the last
  three frames in dBR (threshold 0.1 mm/h, zero value -15 dBR, missing data set
  to -15 dBR, as in the pysteps examples) and 24-step semi-Lagrangian
  extrapolation of the last frame (``pysteps.nowcasts.get_method("extrapolation")``),

times each forecast (wall clock, same process, same machine, one after the
other per window) and scores it against the observations with
:mod:`xnowcast.verification`: CSI at 1 mm/h, FSS at 1 mm/h over 16 px, MAE
(mm/h), each pooled over the windows per lead time (contingency tables and
FSS sums added up, as ``pysteps.verification`` accumulates them), then
averaged over the lead times.

Scoring domain: pixels where the observation is valid. A forecast pixel that
is NaN there (advected in from outside the domain) counts as 0 mm/h, so that
every method is scored on the same pixels.

BOM files hold accumulations (kg m-2 per 6 min); they are converted to mm/h
(x 10). Needs ``pysteps`` (``pip install -e '.[test]'``) and matplotlib for
the plot. Prints the tables and writes them, with a skill-vs-lead plot, into
``docs/optical-flow.md`` and ``docs/img/optical-flow-skill.png``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from _docs import write_section

import xnowcast
from xnowcast.forecast import forecast
from xnowcast.verification.categorical import contingency_table, csi_from_table
from xnowcast.verification.continuous import continuous_stats, mae_from_stats
from xnowcast.verification.spatial import fss_from_stats, fss_stats

ROOT = Path(__file__).resolve().parents[1]
RADAR = ROOT.parent / "shared" / "data" / "radar"
DOC = ROOT / "docs" / "optical-flow.md"
PLOT = ROOT / "docs" / "img" / "optical-flow-skill.png"

N_IN, N_OUT, CROP = 12, 24, 700
THRESHOLD, SCALE = 1.0, 16

#: (label, model, parameters) of the xnowcast forecasts; the first is the default.
XNOWCAST = [
    ("xnowcast optical-flow (default: lucas-kanade)", "optical-flow", {}),
    ("xnowcast default + trend='global'", "optical-flow", {"trend": "global"}),
    ("xnowcast dis (fast, n_flows=1)", "optical-flow", {"method": "dis", "n_flows": 1}),
    ("xnowcast farneback (seed preset)", "optical-flow", {"method": "farneback", "preset": "seed"}),
    ("persistence", "persistence", {}),
]
PYSTEPS = "pysteps LK + extrapolation"


def load(name: str) -> xr.DataArray:
    """One shared cube in mm/h, cropped to at most CROP x CROP, in memory."""
    if name == "mch":
        cube = xr.open_dataset(RADAR / "mch-20150515.nc")["precip_intensity"]
    elif name == "knmi":
        cube = xr.open_dataset(RADAR / "knmi-201008.nc")["precip_intensity"]
    elif name == "bom":
        acc = xnowcast.open_archive(str(RADAR / "bom-2-20180616" / "*.nc"))
        step_h = pd.Timedelta(np.diff(acc.time.values).min()).total_seconds() / 3600
        cube = (acc / step_h).assign_attrs(acc.attrs, units="mm h-1", standard_name="rainfall_rate")
    else:
        raise ValueError(f"unknown dataset {name!r}; valid: mch, knmi, bom")
    cube = cube.isel(y=slice(0, CROP), x=slice(0, CROP)).astype("float32").load()
    return cube


def pysteps_forecast(frames: np.ndarray) -> np.ndarray:
    from pysteps import motion, nowcasts
    from pysteps.utils import transformation

    db, _ = transformation.dB_transform(
        frames[-3:].astype("float64"), threshold=0.1, zerovalue=-15.0
    )
    db[~np.isfinite(db)] = -15.0
    velocity = motion.get_method("LK")(db)
    return nowcasts.get_method("extrapolation")(frames[-1].astype("float64"), velocity, N_OUT)


def score(fc: np.ndarray, obs: np.ndarray) -> dict[str, np.ndarray]:
    """Per-lead sums of one forecast: contingency table, FSS sums, continuous sums."""
    fc = np.where(np.isfinite(obs) & ~np.isfinite(fc), 0.0, fc)
    return {
        "table": contingency_table(fc, obs, THRESHOLD),
        "fss": fss_stats(fc, obs, THRESHOLD, SCALE)[..., 0, 0, :],
        "cont": continuous_stats(fc, obs),
    }


def run_dataset(name: str, every: int) -> dict:
    from xnowcast.windows import windows

    cube = load(name)
    wins = windows(cube, n_in=N_IN, n_out=N_OUT)
    ends = wins.init_indices[::every]
    labels = [lab for lab, _, _ in XNOWCAST] + [PYSTEPS]
    sums = dict.fromkeys(labels)
    seconds = {lab: [] for lab in labels}
    values = cube.values
    times = cube.time.values
    print(f"{name}: {cube.sizes['y']} x {cube.sizes['x']}, {len(ends)} windows", flush=True)
    for end in ends:
        obs = values[end + 1 : end + 1 + N_OUT]
        init, inputs = times[end], values[end - N_IN + 1 : end + 1]
        runs = [
            (
                lab,
                lambda m=m, p=p, t=init: (
                    forecast(
                        cube,
                        model=m,
                        init_times=t,
                        model_params={"n_in": N_IN, "n_out": N_OUT, **p},
                    ).values
                ),
            )
            for lab, m, p in XNOWCAST
        ]
        runs.append((PYSTEPS, lambda x=inputs: pysteps_forecast(x)))
        for lab, run in runs:
            t0 = time.perf_counter()
            fc = run()
            seconds[lab].append(time.perf_counter() - t0)
            s = score(fc, obs)
            sums[lab] = s if sums[lab] is None else {k: sums[lab][k] + s[k] for k in s}
    out = {}
    for lab in labels:
        s = sums[lab]
        out[lab] = {
            "csi": csi_from_table(s["table"]),
            "fss": fss_from_stats(s["fss"]),
            "mae": mae_from_stats(s["cont"]),
            "seconds": float(np.median(seconds[lab])),
        }
    return {
        "shape": (cube.sizes["y"], cube.sizes["x"]),
        "n_windows": len(ends),
        "step": pd.Timedelta(wins.info.step),
        "scores": out,
    }


def tables(results: dict) -> str:
    lines = []
    for name, res in results.items():
        ref = res["scores"][PYSTEPS]
        ny, nx = res["shape"]
        minutes = res["step"].total_seconds() / 60
        title = (
            f"**{name.upper()}** ({ny} x {nx}, {res['n_windows']} windows, {minutes:g}-min steps)"
        )
        header = (
            "| method | CSI 1 mm/h | FSS 1 mm/h 16 px | MAE mm/h | median s | "
            "x faster than pysteps |"
        )
        lines += [title, "", header, "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for lab, sc in res["scores"].items():
            lines.append(
                f"| {lab} | {np.nanmean(sc['csi']):.3f} | {np.nanmean(sc['fss']):.3f} | "
                f"{np.nanmean(sc['mae']):.3f} | {sc['seconds']:.3f} | "
                f"{ref['seconds'] / sc['seconds']:.1f} |"
            )
        lines.append("")
        leads = [0, 5, 11, 23]
        lines += [
            f"CSI / FSS per lead time ({name.upper()}):",
            "",
            "| method | " + " | ".join(f"+{(k + 1) * minutes:g} min" for k in leads) + " |",
            "| --- |" + " ---: |" * len(leads),
        ]
        for lab, sc in res["scores"].items():
            cells = [f"{sc['csi'][k]:.2f} / {sc['fss'][k]:.2f}" for k in leads]
            lines.append(f"| {lab} | " + " | ".join(cells) + " |")
        lines.append("")
    # the summary the issue asks for: the default against pysteps on every dataset
    default = XNOWCAST[0][0]
    lines += [
        "Default against pysteps:",
        "",
        "| dataset | CSI default - pysteps | FSS default - pysteps | speed-up |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, res in results.items():
        d, r = res["scores"][default], res["scores"][PYSTEPS]
        lines.append(
            f"| {name.upper()} | {np.nanmean(d['csi']) - np.nanmean(r['csi']):+.4f} | "
            f"{np.nanmean(d['fss']) - np.nanmean(r['fss']):+.4f} | "
            f"{r['seconds'] / d['seconds']:.1f}x |"
        )
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("csi", "CSI 1 mm/h"), ("fss", "FSS 1 mm/h, 16 px"), ("mae", "MAE (mm/h)")]
    fig, axes = plt.subplots(len(results), 3, figsize=(13, 3.2 * len(results)), squeeze=False)
    for row, (name, res) in zip(axes, results.items()):
        minutes = res["step"].total_seconds() / 60
        leads = np.arange(1, N_OUT + 1) * minutes
        for ax, (key, title) in zip(row, metrics):
            for lab, sc in res["scores"].items():
                style = "--" if lab in (PYSTEPS, "persistence") else "-"
                ax.plot(leads, sc[key], style, label=lab, lw=2.2 if lab == XNOWCAST[0][0] else 1)
            ax.set_title(f"{name.upper()}: {title}")
            ax.set_xlabel("lead time (min)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mch", "knmi", "bom"])
    parser.add_argument("--every", type=int, default=1, help="use every n-th window")
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    args = parser.parse_args(argv)
    if not RADAR.is_dir():
        raise SystemExit(f"the shared radar data is not at {RADAR}")
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    results = {name: run_dataset(name, args.every) for name in args.datasets}
    text = tables(results)
    print(text)
    if args.no_write:
        return
    plot(results, PLOT)
    write_section(DOC, "bench_optical_flow", text)
    print(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
