"""How the optical-flow defaults were chosen: parameter sets scored against pysteps.

    python benchmarks/tune_optical_flow.py                       # the grid below
    python benchmarks/tune_optical_flow.py '{"method": "dis"}'   # your own parameter sets

Every complete 12 -> 24 window of the shared MeteoSwiss, KNMI and BOM cubes
(as in ``bench_optical_flow.py``, whose loading, pysteps run and scoring this
reuses) is forecast with each parameter set of the ``"optical-flow"`` model;
the table gives, per dataset, CSI at 1 mm/h and FSS at 1 mm/h / 16 px
(pooled over the windows, averaged over the lead times) minus those of pysteps
LK + extrapolation, and the mean over the datasets. Writes the table into
``docs/optical-flow.md`` unless parameter sets are given on the command line.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
from _docs import write_section
from bench_optical_flow import DOC, FSS_SCALE, N_IN, N_OUT, PS_LK, load, pysteps_forecasts

from xnowcast.models import get_model
from xnowcast.verification.categorical import contingency_table, csi_from_table
from xnowcast.verification.spatial import fss_from_stats, fss_stats

DATASETS = ("mch", "knmi", "bom")
THRESHOLD = 1.0  # mm/h, of CSI and FSS

GRID = [
    {"method": "dis", "n_flows": 3},
    {"method": "dis", "n_flows": 1},
    {"method": "dis", "n_flows": 1, "preset": "medium"},
    {"method": "lucas-kanade", "sigma": 30, "fb_threshold": 1.0},
    {"method": "lucas-kanade", "sigma": 15},
    {"method": "lucas-kanade", "n_flows": 1},
    {},  # the defaults
]


def score(fc, obs):
    """CSI and FSS sums of one forecast (as in ``bench_optical_flow.score``, without MAE)."""
    fc = np.where(np.isfinite(obs) & ~np.isfinite(fc), 0.0, fc)
    return {
        "table": contingency_table(fc, obs, THRESHOLD),
        "fss": fss_stats(fc, obs, THRESHOLD, FSS_SCALE)[..., 0, 0, :],
    }


def summarise(sums):
    return (np.nanmean(csi_from_table(sums["table"])), np.nanmean(fss_from_stats(sums["fss"])))


def main(argv: list[str]) -> None:
    grid = [json.loads(a) for a in argv] or GRID
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    cubes = {name: load(name).values for name in DATASETS}
    deltas = np.zeros((len(grid), len(DATASETS), 2))
    for j, name in enumerate(DATASETS):
        values = cubes[name]
        ends = range(N_IN - 1, values.shape[0] - N_OUT)
        ref, sums = None, [None] * len(grid)
        for end in ends:
            inputs, obs = values[end - N_IN + 1 : end + 1], values[end + 1 : end + 1 + N_OUT]
            s = score(pysteps_forecasts(inputs)[PS_LK][0], obs)
            ref = s if ref is None else {k: ref[k] + s[k] for k in s}
            for i, params in enumerate(grid):
                fc = get_model("optical-flow", n_in=N_IN, n_out=N_OUT, **params).predict(
                    inputs[None]
                )[0]
                s = score(fc, obs)
                sums[i] = s if sums[i] is None else {k: sums[i][k] + s[k] for k in s}
        ref_csi, ref_fss = summarise(ref)
        for i in range(len(grid)):
            csi, fss = summarise(sums[i])
            deltas[i, j] = csi - ref_csi, fss - ref_fss
        print(
            f"{name}: {len(ends)} windows, pysteps CSI {ref_csi:.4f} FSS {ref_fss:.4f}", flush=True
        )
    lines = [
        "| parameters (others: defaults) | "
        + " | ".join(f"{n.upper()} CSI / FSS" for n in DATASETS)
        + " | mean CSI / FSS |",
        "| --- |" + " ---: |" * (len(DATASETS) + 1),
    ]
    for params, d in zip(grid, deltas):
        cells = [f"{c:+.4f} / {f:+.4f}" for c, f in d]
        mean = d.mean(axis=0)
        label = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "**defaults**"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean[0]:+.4f} / {mean[1]:+.4f} |")
    text = "\n".join(lines)
    print(text)
    if argv:
        return
    if write_section(DOC, "tune_optical_flow", text):
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
