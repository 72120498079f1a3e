"""Verification speed: every score against its reference, and ``xnowcast verify`` end to end.

    python benchmarks/bench_verification.py [--pairs 12] [--members 10] [--repeat 3]
                                            [--skip-cli | --cli-only]

1. Kernels. Persistence forecasts of the shared BOM event (512 x 512,
   accumulations per 6 min) paired with the observations: ``--pairs`` field
   pairs, and for the probabilistic scores a synthetic ensemble of
   ``--members`` members (the observation times random factors plus noise).
   Missing pixels are set to 0 in both fields so that every implementation
   sees the same complete fields. Each score is computed by xnowcast and by
   its reference (pysteps, scikit-image, pytorch-msssim, properscoring) on
   the same arrays; the table gives CPU milliseconds per field pair (best of
   2, ``time.process_time``, everything single-threaded: xnowcast's numba
   kernels are serial, torch runs on 1 thread), the speed-up and the largest
   difference.
2. End to end, side by side in one run: ``xnowcast forecast BOM --init-times
   all --out fc.zarr`` (persistence: 50 init times x 24 lead times) and
   ``xnowcast verify fc.zarr BOM --out scores.csv`` with the default metrics
   (MAE, CSI, FSS), each in a child process: wall seconds and CPU seconds
   (the children's user + system time, ``resource.getrusage``). A first
   ``verify`` compiles the numba kernels for the dtypes of these inputs when
   no compiled copy is cached yet (once per installation and dtype pair; a
   run after that loads them from numba's cache); then the two commands run
   in turn ``--repeat`` times, so that a change of the machine's load hits
   both alike, and the table gives the median and the fastest run of each.

``--cli-only`` runs part 2 alone (and leaves the kernel table in the docs as
it is).

Prints the tables and writes them into docs/verification.md (between the
markers), with the machine load (``uptime``) at the start.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _docs import write_section

import xnowcast
from xnowcast.verification import categorical, continuous, image, probabilistic, sal, spatial

ROOT = Path(__file__).resolve().parents[1]
BOM = ROOT.parent / "shared" / "data" / "radar" / "bom-2-20180616"
DOC = ROOT / "docs" / "verification.md"
THRESHOLDS = [0.1, 1.0, 5.0]
SCALES = [1, 4, 16]
CAT = {
    "csi": "CSI", "pod": "POD", "far": "FAR", "ets": "ETS", "hss": "HSS", "fbias": "BIAS",
    "pofd": "FA", "hk": "HK", "sedi": "SEDI", "f1": "F1", "mcc": "MCC", "acc": "ACC",
}  # fmt: skip
CONT = {"mse": "MSE", "mae": "MAE", "bias": "ME", "correlation": "corr_p", "nmse": "NMSE"}


def cpu_timed(func, repeat=2):
    """Best CPU time of this process and the result."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.process_time()
        out = func()
        best = min(best, time.process_time() - t0)
    return best, out


def pairs(n_pairs: int):
    """``(fc, obs)`` float64 arrays ``(n, 512, 512)``: persistence from frame 20 on."""
    cube = xnowcast.open_archive(str(BOM / "*.nc"))
    frames = np.nan_to_num(cube.values.astype(np.float64))
    fc = np.repeat(frames[20:21], n_pairs, axis=0)
    return fc, frames[21 : 21 + n_pairs]


def ensemble(obs: np.ndarray, members: int, seed: int = 0) -> np.ndarray:
    """``(n, member, y, x)``: the observation times random factors plus noise."""
    rng = np.random.default_rng(seed)
    factor = rng.uniform(0.5, 1.5, (obs.shape[0], members, 1, 1))
    noise = rng.gamma(0.3, 0.2, (obs.shape[0], members, *obs.shape[1:]))
    return obs[:, None] * factor + noise


def beta_scores(stats):
    """Both slopes from one pass of statistics, as ``verify`` computes them."""
    return np.stack([continuous.beta_from_stats(stats), continuous.beta2_from_stats(stats)], -1)


def deterministic_cases(f, o):
    from pysteps.verification import det_cat_fct, det_cont_fct, fss
    from pysteps.verification.salscores import sal as pysteps_sal
    from skimage.metrics import structural_similarity

    n = len(f)
    cat_scores = list(CAT.values())

    def ours_cat():
        table = categorical.contingency_table(f, o, THRESHOLDS)
        m = {name: m for name, m in vars(categorical).items() if name.endswith("_from_table")}
        return np.stack([m[f"{name}_from_table"](table) for name in CAT], axis=-1)

    def ours_cont():
        stats = continuous.continuous_stats(f, o)
        funcs = [getattr(continuous, f"{name}_from_stats") for name in CONT]
        return np.stack([fn(stats) for fn in funcs], axis=-1)

    return [
        (
            "MSE, MAE, bias, correlation, NMSE",
            "pysteps det_cont_fct",
            ours_cont,
            lambda: np.array(
                [
                    [det_cont_fct(f[i], o[i], list(CONT.values()))[s] for s in CONT.values()]
                    for i in range(n)
                ]
            ),
            n,
        ),
        (
            "regression beta, beta2",
            "pysteps det_cont_fct",
            lambda: beta_scores(continuous.continuous_stats(f, o)),
            lambda: np.array(
                [
                    [det_cont_fct(f[i], o[i], ["beta1", "beta2"])[s] for s in ("beta1", "beta2")]
                    for i in range(n)
                ]
            ),
            n,
        ),
        (
            "Spearman correlation",
            "pysteps det_cont_fct (corr_s)",
            lambda: continuous.spearman(f, o),
            lambda: np.array([det_cont_fct(f[i], o[i], ["corr_s"])["corr_s"] for i in range(n)]),
            n,
        ),
        (
            "12 categorical scores at 3 thresholds",
            "pysteps det_cat_fct",
            ours_cat,
            lambda: np.array(
                [
                    [
                        [det_cat_fct(f[i], o[i], t, cat_scores)[s] for s in cat_scores]
                        for t in THRESHOLDS
                    ]
                    for i in range(n)
                ]
            ),
            n,
        ),
        (
            "FSS at 3 thresholds x 3 scales",
            "pysteps fss",
            lambda: spatial.fss(f, o, THRESHOLDS, SCALES),
            lambda: np.array(
                [[[fss(f[i], o[i], t, s) for s in SCALES] for t in THRESHOLDS] for i in range(n)]
            ),
            n,
        ),
        (
            "SSIM, window 7, data range 100",
            "skimage structural_similarity",
            lambda: image.ssim(f, o, data_range=100.0),
            lambda: np.array(
                [structural_similarity(f[i], o[i], data_range=100.0) for i in range(n)]
            ),
            n,
        ),
        (
            "SAL",
            "pysteps salscores.sal",
            lambda: np.array([sal.sal(f[i], o[i]) for i in range(min(n, 3))]),
            lambda: np.array([pysteps_sal(f[i], o[i]) for i in range(min(n, 3))]),
            min(n, 3),
        ),
    ]


def msssim_cases(f, o):
    import torch
    from pytorch_msssim import ms_ssim, ssim

    torch.set_num_threads(1)
    n = len(f)

    def tensor(a):
        return torch.tensor(a[:, None])

    return [
        (
            "SSIM, Gaussian window 11, data range 100",
            "pytorch_msssim ssim (CPU, 1 thread)",
            lambda: image.ssim(f, o, data_range=100.0, win_size=11, gaussian=True),
            lambda: ssim(tensor(f), tensor(o), data_range=100.0, size_average=False).numpy(),
            n,
        ),
        (
            "MS-SSIM, window 3, data range 861",
            "pytorch_msssim ms_ssim (CPU, 1 thread)",
            lambda: image.ms_ssim(f, o, win_size=3, data_range=861.0),
            lambda: ms_ssim(
                tensor(f), tensor(o), data_range=861.0, win_size=3, size_average=False
            ).numpy(),
            n,
        ),
    ]


def ensemble_cases(ens, o):
    import properscoring
    from pysteps.verification.ensscores import rankhist
    from pysteps.verification.probscores import CRPS, ROC_curve, reldiag

    n = len(o)
    members = ens.shape[1]

    def hist():
        return probabilistic.probability_stats(ens, o, THRESHOLDS)

    return [
        (
            f"CRPS ({members} members)",
            "pysteps CRPS",
            lambda: probabilistic.crps(ens, o),
            lambda: np.array([CRPS(ens[i], o[i]) for i in range(n)]),
            n,
        ),
        (
            f"CRPS ({members} members)",
            "properscoring crps_ensemble",
            lambda: probabilistic.crps(ens, o),
            lambda: np.array(
                [
                    properscoring.crps_ensemble(o[i], np.moveaxis(ens[i], 0, -1)).mean()
                    for i in range(n)
                ]
            ),
            n,
        ),
        (
            "Brier score at 3 thresholds",
            "properscoring threshold_brier_score",
            lambda: probabilistic.brier(ens, o, THRESHOLDS),
            lambda: np.array(
                [
                    properscoring.threshold_brier_score(
                        o[i], np.moveaxis(ens[i], 0, -1), THRESHOLDS
                    ).mean(axis=(0, 1))
                    for i in range(n)
                ]
            ),
            n,
        ),
        (
            "reliability diagram at 3 thresholds (incl. probabilities)",
            "pysteps excprob + reldiag",
            lambda: probabilistic.reliability_from_stats(hist(), 10),
            lambda: np.array(
                [
                    [
                        reldiag(np.mean(ens[i] >= t, axis=0), o[i], t, min_count=1)[1]
                        for t in THRESHOLDS
                    ]
                    for i in range(n)
                ]
            ),
            n,
        ),
        (
            "ROC curve and area at 3 thresholds (incl. probabilities)",
            "pysteps excprob + ROC_curve",
            lambda: probabilistic.roc_area_from_stats(hist(), 10),
            lambda: np.array(
                [
                    [
                        ROC_curve(np.mean(ens[i] >= t, axis=0), o[i], t, compute_area=True)[2]
                        for t in THRESHOLDS
                    ]
                    for i in range(n)
                ]
            ),
            n,
        ),
        (
            "rank histogram (no ties: obs + 1e-9 noise)",
            "pysteps rankhist",
            lambda: probabilistic.rank_histogram(ens, o),
            lambda: np.array([rankhist(ens[i], o[i]) for i in range(n)]),
            n,
        ),
    ]


def kernel_table(n_pairs: int, members: int) -> str:
    f, o = pairs(n_pairs)
    rng = np.random.default_rng(1)
    ens = ensemble(o, members)
    o_untied = o + rng.uniform(0, 1e-9, o.shape)  # rank histogram: no ties with members
    cases = deterministic_cases(f, o) + msssim_cases(f, o)
    prob_cases = ensemble_cases(ens, o_untied)
    rows = []
    for name, ref_name, ours, ref, n in cases + prob_cases:
        t_ours, a = cpu_timed(ours)
        t_ref, b = cpu_timed(ref)
        a, b = np.asarray(a, float), np.asarray(b, float)
        both = np.isfinite(a) & np.isfinite(b)
        same_nan = bool((np.isnan(a) == np.isnan(b)).all())
        diff = float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0
        rows.append((name, ref_name, 1000 * t_ours / n, 1000 * t_ref / n, diff, same_nan))
        print(rows[-1], flush=True)
    table = [
        f"| score ({n_pairs} pairs of 512 x 512, BOM) | reference | xnowcast CPU ms/pair | "
        "reference CPU ms/pair | speed-up | max difference |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, ref_name, t_a, t_b, diff, same_nan in rows:
        note = "" if same_nan else " (NaN differ)"
        table.append(
            f"| {name} | {ref_name} | {t_a:.1f} | {t_b:.1f} | {t_b / t_a:.1f}x | {diff:.1e}{note} |"
        )
    return "\n".join(table)


def run_child(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of ``python -m xnowcast.cli ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xnowcast.cli", *args], check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cli_runs(repeat: int) -> tuple[dict[str, list[tuple[float, float]]], int, list[str]]:
    """``(wall, CPU)`` of every run of both commands in turn, the rows of the scores and the
    table of what only verify does (:func:`breakdown`)."""
    runs: dict[str, list[tuple[float, float]]] = {"first": [], "forecast": [], "verify": []}
    with tempfile.TemporaryDirectory() as tmp:
        fc, csv = os.path.join(tmp, "fc.zarr"), os.path.join(tmp, "scores.csv")
        obs = str(BOM / "*.nc")
        forecast = ["forecast", obs, "--init-times", "all", "--out", fc, "--overwrite"]
        verify = ["verify", fc, obs, "--out", csv, "--no-progress", "--overwrite"]
        runs["forecast"].append(run_child(forecast))
        runs["first"].append(run_child(verify))
        for _ in range(repeat):
            runs["verify"].append(run_child(verify))
            runs["forecast"].append(run_child(forecast))
            print({k: v[-1] for k, v in runs.items()}, flush=True)
        rows = len(Path(csv).read_text().splitlines()) - 1
        parts = breakdown(fc, 50 * 24, repeat)
    return runs, rows, parts


KERNELS_LOADED = """
import numpy as np, zarr, xnowcast, xnowcast.verification
from xnowcast.verification import kernels as k
f, o, t = np.zeros((1, 8, 8), np.float32), np.zeros((1, 8, 8)), np.array([1.0])
if CALL:
    k.default_sums(f, o, t, True, t, np.array([1, 4]), False)
"""


def numba_startup(repeat: int) -> float:
    """CPU seconds that the first call of the cached kernel of the default metrics adds to a
    fresh process."""

    def cpu(call: bool) -> float:
        code = KERNELS_LOADED.replace("CALL", str(call))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    runs = [(cpu(False), cpu(True)) for _ in range(repeat)]
    return float(np.median([b - a for a, b in runs]))


def store_read(path: str) -> tuple[float, float]:
    """CPU seconds to read every chunk of the store as verify's tasks do: as stored, and in mm/h."""
    import warnings

    import dask

    from xnowcast.io import open_forecast
    from xnowcast.units import rain_rate_pair
    from xnowcast.verification.frames import ForecastChunk

    fc = open_forecast(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate, _ = rain_rate_pair(fc, xnowcast.open_archive(str(BOM / "*.nc")), "the benchmark")
    out = []
    for da in (fc, rate):
        (data,) = dask.optimize(da.data)
        graphs = ForecastChunk.split(data)
        t0 = time.process_time()
        for index, graph in graphs.items():
            ForecastChunk(graph, (data.name, *index), da, {}).read()
        out.append(time.process_time() - t0)
    return out[0], out[1]


def default_kernels(n_pairs: int) -> float:
    """CPU seconds of the default metrics' statistics per pair (float32 forecast, float64 obs),
    from one pass per pair as verify computes them (``kernels.default_sums``)."""
    from xnowcast.verification import kernels

    f, o = pairs(n_pairs)
    f = f.astype(np.float32)
    thr, sizes = np.array(THRESHOLDS), np.array(SCALES)

    def stats():
        for i in range(n_pairs):  # verify scores pair by pair against the cached frames
            kernels.default_sums(f[i : i + 1], o[i : i + 1], thr, True, thr, sizes, False)

    return cpu_timed(stats, repeat=3)[0] / n_pairs


def breakdown(path: str, pairs_scored: int, repeat: int) -> list[str]:
    """What only verify does: numba's start-up, the kernels, reading the forecast store."""
    start = numba_startup(repeat)
    per_pair = default_kernels(24)
    raw, rate = store_read(path)
    return [
        "| what only `verify` does | CPU s |",
        "| --- | ---: |",
        f"| numba: first call of the cached kernel in a fresh process | {start:.2f} |",
        f"| the default metrics' statistics, {pairs_scored} pairs ({1000 * per_pair:.2f} ms "
        f"each, single thread) | {pairs_scored * per_pair:.2f} |",
        f"| reading the forecast store (decoding its zarr chunks) | {raw:.2f} |",
        f"| converting it to mm/h for the default thresholds (units.rain_rate_pair) | "
        f"{rate - raw:.2f} |",
    ]


def cli_table(repeat: int) -> str:
    runs, rows, parts = cli_runs(repeat)
    first = runs["first"][0]
    med = {k: (float(np.median([w for w, _ in v])), float(np.median([c for _, c in v])))
           for k, v in runs.items()}  # fmt: skip
    low = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in runs.items()}
    command = f"`xnowcast verify fc.zarr BOM --out scores.csv` (MAE, CSI, FSS; {rows} rows)"
    fc_name = "`xnowcast forecast BOM --init-times all --out fc.zarr` (persistence)"
    n_fc, n_ver = len(runs["forecast"]), len(runs["verify"])
    lines = [
        "| command (BOM, 512 x 512, 50 init times x 24 lead times) | runs | wall s, median "
        "(fastest) | CPU s, median (fastest) |",
        "| --- | ---: | ---: | ---: |",
        f"| {fc_name} | {n_fc} | {med['forecast'][0]:.1f} ({low['forecast'][0]:.1f}) | "
        f"{med['forecast'][1]:.2f} ({low['forecast'][1]:.2f}) |",
        f"| {command}, first run | 1 | {first[0]:.1f} | {first[1]:.2f} |",
        f"| {command}, again | {n_ver} | {med['verify'][0]:.1f} ({low['verify'][0]:.1f}) | "
        f"{med['verify'][1]:.2f} ({low['verify'][1]:.2f}) |",
        "",
        f"verify / forecast (medians): {med['verify'][0] / med['forecast'][0]:.2f} x the wall "
        f"time, **{med['verify'][1] / med['forecast'][1]:.2f} x the CPU time** (fastest runs: "
        f"{low['verify'][1] / low['forecast'][1]:.2f} x the CPU time).",
        "",
        *parts,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each command, in turn")
    part = parser.add_mutually_exclusive_group()
    part.add_argument("--skip-cli", action="store_true", help="the kernel table only")
    part.add_argument("--cli-only", action="store_true", help="the end-to-end table only")
    args = parser.parse_args()
    parts = [f"Machine load at the start: `{uptime()}`."]
    if args.cli_only:
        parts = [previous_kernel_table(), "", *parts]
    else:
        parts += ["", kernel_table(args.pairs, args.members)]
    if not args.skip_cli:
        parts += ["", cli_table(args.repeat), "", f"Machine load at the end: `{uptime()}`."]
    text = "\n".join(parts)
    print(text)
    write_section(DOC, "bench_verification", text)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def previous_kernel_table() -> str:
    """The kernel table (and its load line) of the last full run, from the docs."""
    text = DOC.read_text()
    start = text.index("<!-- bench_verification:start -->") + len(
        "<!-- bench_verification:start -->"
    )
    block = text[start : text.index("<!-- bench_verification:end -->")].strip()
    kept = block.split("\n\n| command")[0]
    return kept.replace(
        "Machine load at the start:", "Kernel table from an earlier full run; load then:"
    )


if __name__ == "__main__":
    main()
