"""STEPS ensembles against pysteps on the shared radar data: skill and speed, side by side.

    python benchmarks/bench_steps.py                    # every complete 12 -> 24 window
    python benchmarks/bench_steps.py --quick            # documented subset (see --help)

For every complete window (12 input frames, 24 observed lead times) of the
MeteoSwiss, KNMI and BOM cubes (``bench_optical_flow.load``: mm/h), this runs,
one after the other in the same process and with the same number of members
and cascade levels:

* ``xnowcast.forecast(cube, model="steps", members=M, seed=s, init_times=t,
  n_levels=L, motion_perturbation="bps", motion_perturbation_kwargs={grid})``,
  computed through its dask member chunks (``.values``);
* pysteps Lucas-Kanade motion on the last three frames in dBR (threshold
  0.1 mm/h, -15 dBR for no rain and missing data, as in
  ``bench_optical_flow.py``), then ``pysteps.nowcasts.steps.forecast`` with
  ``n_ens_members=M``, ``n_cascade_levels=L``, ``precip_thr=-10`` dBR, its
  defaults otherwise (nonparametric noise, incremental mask, cdf matching,
  ``vel_pert_method="bps"`` with the grid's km per pixel and time step),
  ``num_workers=1``, back to mm/h.

Scores (plain numpy, on the pixels where the observation is valid; a forecast
NaN counts as 0 mm/h there, so both are scored on the same pixels), pooled over
all windows of a dataset per lead time, then averaged over the leads; the
average over datasets gives each event equal weight. Both methods give ``NaN``
where a member's trajectory starts outside the domain (pysteps: bilinear
sampling with ``NaN`` outside; xnowcast: ``fill``), and xnowcast also where
the observation it starts from is missing (pysteps is given those pixels as no
rain), so a missing forecast pixel is scored as the forecast of no rain
that it stands for, in both:

* CRPS (mm/h): the ensemble CRPS ``E|X - y| - E|X - X'| / 2`` over members
  (the "PWM" estimator of pysteps' ``probscores.CRPS``);
* Brier score and ROC area at 1 and 5 mm/h, probability = fraction of members
  at or above the threshold (ROC from the M + 1 probability levels);
* rank histogram (pixels where the observation or a member is at least
  0.1 mm/h, ties broken at random) and its flatness as the reliability index
  ``sum |f_i - 1 / (M + 1)|`` (0: flat);
* ensemble-mean CSI at 1 mm/h and FSS at 1 mm/h over 16 px
  (:mod:`xnowcast.verification`).

Time: CPU seconds per forecast (``time.process_time``, all threads, median
over the windows) and wall seconds. Memory: the peak traced by
``tracemalloc`` during one extra forecast of the first window of each dataset
(numpy and Python allocations), run apart from the timed ones.

Seeds: each window ``n`` (its index among the dataset's complete windows,
whichever windows are selected) is forecast with seed ``n`` by both. The ensembles
are samples, so their CRPS moves with the seed; ``--seeds K`` (default 3) also
runs xnowcast with the seeds ``n + 1000 i``, ``i = 1 .. K - 1`` (CRPS only, a
few CPU seconds each), and the docs give its mean and range over the seeds
beside the one-seed table (pysteps, minutes per forecast, runs one seed).

``--quick`` takes every 6th window of each dataset, a centred 384 x 384 crop and
20 members (the full run, 88 windows of 700 x 700, takes hours for pysteps on
two shared cores). ``--max-windows N`` thins each dataset evenly to at most
``N`` windows instead (every ``ceil(n / N)``-th from the first, by the count
alone): the docs' run, ``--crop 384 --max-windows 10``, takes all 5 windows of
MCH, every 6th of KNMI's 57 and every 3rd of BOM's 26. Writes its tables into
``docs/ensembles.md``.

``--pysteps-cache DIR`` keeps each window's pysteps ensemble in
``DIR/<dataset>_<window>.npz`` (with its inputs, init time, seed, members and
levels) and reads it back in later runs when all of these match, so that
xnowcast can be rerun against the same pysteps ensembles without the hour of
pysteps on two cores. pysteps is then still run (and timed, and its memory
traced) on the first window of each dataset in the same run; its CPU and wall
seconds in the tables are from those runs only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from _docs import write_section
from bench_optical_flow import load, machine_load

import xnowcast
from xnowcast.verification.categorical import contingency_table, csi_from_table
from xnowcast.verification.spatial import fss_from_stats, fss_stats

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ensembles.md"

N_IN, N_OUT = 12, 24
THRESHOLDS = (1.0, 5.0)
#: Grid spacing (km per pixel) of the shared cubes.
KM_PER_PIXEL = {"mch": 1.0, "knmi": 1.0, "bom": 0.5}
XN = "xnowcast steps"
XN_DEFAULT = "xnowcast steps, motion_perturbation='none'"
PS = "pysteps STEPS"
LABELS = [XN, PS]


def crop(cube, size: int | None):
    """A centred ``size`` x ``size`` crop (the whole cube when ``size`` is None)."""
    if size is None:
        return cube
    ny, nx = cube.sizes["y"], cube.sizes["x"]
    y0, x0 = max(0, (ny - size) // 2), max(0, (nx - size) // 2)
    return cube.isel(y=slice(y0, y0 + size), x=slice(x0, x0 + size))


def selected(n_windows: int, every: int, max_windows: int | None) -> np.ndarray:
    """Indices of the windows scored, among a dataset's ``n_windows`` complete ones.

    Every ``every``-th window from the first; with ``max_windows``, every
    ``ceil(n_windows / max_windows)``-th instead (each dataset thinned evenly to at most
    ``max_windows``; a dataset with fewer keeps all). The rule looks at counts only, never
    at scores.

    >>> selected(57, 1, 15).tolist()[:4], len(selected(57, 1, 15)), len(selected(5, 1, 15))
    ([0, 4, 8, 12], 15, 5)
    """
    step = every if max_windows is None else -(-n_windows // max_windows)
    return np.arange(n_windows)[:: max(step, 1)]


def pysteps_steps(frames, members, levels, km, minutes, seed):
    """pysteps LK + STEPS of one window, ``(members, n_out, y, x)`` in mm/h."""
    from pysteps import motion, nowcasts
    from pysteps.utils import transformation

    db, _ = transformation.dB_transform(
        frames[-3:].astype("float64"), threshold=0.1, zerovalue=-15.0
    )
    db[~np.isfinite(db)] = -15.0
    velocity = motion.get_method("LK")(db)
    with contextlib.redirect_stdout(io.StringIO()):  # STEPS prints its settings
        fc = nowcasts.get_method("steps")(
            db,
            velocity,
            N_OUT,
            n_ens_members=members,
            n_cascade_levels=levels,
            precip_thr=-10.0,
            kmperpixel=km,
            timestep=minutes,
            seed=seed,
            num_workers=1,
        )
    return transformation.dB_transform(fc, threshold=-10.0, inverse=True)[0]


def cached_pysteps(cache, key, inputs, init, members, levels, seed):
    """The cached pysteps ensemble of a window, or ``None`` when absent or made otherwise."""
    path = Path(cache) / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            same = (
                "levels" in d.files
                and int(d["levels"]) == levels
                and int(d["seed"]) == seed
                and d["ps"].shape[:2] == (members, N_OUT)
                and np.datetime64(d["init"][()], "ns") == np.datetime64(init, "ns")
                and np.array_equal(d["inputs"], inputs, equal_nan=True)
            )
            return d["ps"].copy() if same else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # unreadable: made again
        return None


def store_pysteps(cache, key, ens, inputs, obs, init, km, minutes, levels, seed) -> None:
    """Keep a window's pysteps ensemble (the format :func:`cached_pysteps` reads)."""
    path = Path(cache)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{key}.{os.getpid()}.npz"  # renamed into place once whole
    np.savez_compressed(  # lossless; zlib turns ~300 MB of mostly dry, NaN-edged members into ~75
        tmp,
        inputs=inputs,
        obs=obs,
        ps=ens.astype(np.float32),
        init=np.datetime64(init, "ns"),
        km=km,
        minutes=minutes,
        seed=seed,
        levels=levels,
    )
    os.replace(tmp, path / f"{key}.npz")


def xnowcast_steps(cube, init, members, levels, km, minutes, seed, bps=True):
    """xnowcast's ensemble; ``bps``: with pysteps' motion perturbations (the default), else
    ``motion_perturbation="none"``."""
    motion = (
        {
            "motion_perturbation": "bps",
            "motion_perturbation_kwargs": {"km_per_pixel": km, "minutes_per_step": minutes},
        }
        if bps
        else {"motion_perturbation": "none"}
    )
    fc = xnowcast.forecast(
        cube,
        "steps",
        init_times=init,
        members=members,
        seed=seed,
        n_levels=levels,
        n_in=N_IN,
        n_out=N_OUT,
        **motion,
    )
    return fc.values


def crps_sums(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """Per lead: (sum of the ensemble CRPS over valid pixels, count)."""
    m = ens.shape[0]
    out = np.zeros((ens.shape[1], 2))
    for k in range(ens.shape[1]):
        valid = np.isfinite(obs[k])
        x = np.sort(ens[:, k][:, valid], axis=0)
        y = obs[k][valid]
        skill = np.abs(x - y).mean(axis=0)
        rank = (2 * np.arange(1, m + 1) - m - 1)[:, None]
        spread = (rank * x).sum(axis=0) / m**2  # = E|X - X'| / 2
        out[k] = (skill - spread).sum(), valid.sum()
    return out


def prob_sums(ens: np.ndarray, obs: np.ndarray) -> dict[str, np.ndarray]:
    """Per threshold and lead: Brier sums and the ROC counts per probability level."""
    m = ens.shape[0]
    valid = np.isfinite(obs)
    brier = np.zeros((len(THRESHOLDS), ens.shape[1], 2))
    roc = np.zeros((len(THRESHOLDS), m + 1, 2))  # events, non-events per probability level
    for i, t in enumerate(THRESHOLDS):
        prob = (ens >= t).sum(axis=0)  # members at or above
        event = obs >= t
        for k in range(ens.shape[1]):
            p, o = prob[k][valid[k]], event[k][valid[k]]
            brier[i, k] = (((p / m) - o) ** 2).sum(), o.size
            roc[i, :, 0] += np.bincount(p[o], minlength=m + 1)
            roc[i, :, 1] += np.bincount(p[~o], minlength=m + 1)
    return {"brier": brier, "roc": roc}


def rank_counts(ens: np.ndarray, obs: np.ndarray, rng) -> np.ndarray:
    m = ens.shape[0]
    valid = np.isfinite(obs) & ((obs >= 0.1) | (ens >= 0.1).any(axis=0))
    x, y = ens[:, valid], obs[valid]
    below = (x < y).sum(axis=0)
    ties = (x == y).sum(axis=0)
    rank = below + np.floor(rng.random(y.size) * (ties + 1)).astype(np.int64)
    return np.bincount(rank, minlength=m + 1).astype(np.float64)


def mean_sums(ens: np.ndarray, obs: np.ndarray) -> dict[str, np.ndarray]:
    mean = ens.mean(axis=0)
    return {
        "table": contingency_table(mean, obs, 1.0),
        "fss": fss_stats(mean, obs, 1.0, [16])[..., 0, 0, :],
    }


def scored(ens: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """``ens`` with its missing pixels at 0 mm/h (no rain) where the observation is valid."""
    return np.where(np.isfinite(obs)[None] & ~np.isfinite(ens), 0.0, ens)


def score(ens: np.ndarray, obs: np.ndarray, rng) -> dict[str, np.ndarray]:
    ens = scored(ens, obs)
    return {
        "crps": crps_sums(ens, obs),
        **prob_sums(ens, obs),
        "rank": rank_counts(ens, obs, rng),
        **mean_sums(ens, obs),
    }


def roc_area(counts: np.ndarray) -> float:
    """Area under the ROC curve from event / non-event counts per probability level."""
    events, non = counts[:, 0], counts[:, 1]
    hit = np.concatenate([np.cumsum(events[::-1])[::-1], [0.0]]) / max(events.sum(), 1)
    false = np.concatenate([np.cumsum(non[::-1])[::-1], [0.0]]) / max(non.sum(), 1)
    return float(np.trapezoid(hit[::-1], false[::-1]))


def summarise(s: dict[str, np.ndarray], members: int) -> dict[str, object]:
    freq = s["rank"] / s["rank"].sum()
    return {
        "crps": s["crps"][:, 0] / s["crps"][:, 1],
        **{
            f"brier{t:g}": s["brier"][i, :, 0] / s["brier"][i, :, 1]
            for i, t in enumerate(THRESHOLDS)
        },
        **{f"roc{t:g}": roc_area(s["roc"][i]) for i, t in enumerate(THRESHOLDS)},
        "flatness": float(np.abs(freq - 1 / (members + 1)).sum()),
        "rank": freq,
        "csi1": csi_from_table(s["table"]),
        "fss16": fss_from_stats(s["fss"]),
    }


def peak_memory(run) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def dataset_windows(name: str, size: int | None, every: int, max_windows: int | None):
    """The cropped cube, its selected windows' indices (see :func:`selected`) and ends."""
    from xnowcast.windows import windows

    cube = crop(load(name), size)
    wins = windows(cube, n_in=N_IN, n_out=N_OUT)
    picks = selected(len(wins.init_indices), every, max_windows)
    minutes = pd.Timedelta(wins.info.step).total_seconds() / 60
    return cube, picks, np.asarray(wins.init_indices)[picks], minutes


def fill_cache(
    name: str,
    every: int,
    max_windows: int | None,
    size: int | None,
    members: int,
    levels: int,
    cache: str,
    reverse: bool = False,
) -> None:
    """Only pysteps: run and keep the ensembles of the selected windows missing from ``cache``.

    ``reverse``: from the last window back (beside a benchmark run that reads the cache
    forwards, so that the two meet once instead of making the same windows).
    """
    cube, picks, ends, minutes = dataset_windows(name, size, every, max_windows)
    values, times = cube.values, cube.time.values
    km = KM_PER_PIXEL[name]
    print(f"{name}: {len(ends)} windows", flush=True)
    order = list(zip(picks.tolist(), ends))
    for index, end in order[::-1] if reverse else order:
        inputs, obs = values[end - N_IN + 1 : end + 1], values[end + 1 : end + 1 + N_OUT]
        key = f"{name}_w{index:03d}"
        if cached_pysteps(cache, key, inputs, times[end], members, levels, index) is not None:
            continue
        c, w = time.process_time(), time.perf_counter()
        ens = pysteps_steps(inputs, members, levels, km, minutes, index)
        took = (time.process_time() - c, time.perf_counter() - w)
        store_pysteps(cache, key, ens, inputs, obs, times[end], km, minutes, levels, index)
        print(f"  {key} {pd.Timestamp(times[end])}: CPU {took[0]:.1f} s, wall {took[1]:.1f} s")


def run_dataset(
    name: str,
    every: int,
    size: int | None,
    members: int,
    levels: int,
    seeds: int = 1,
    cache: str | None = None,
    max_windows: int | None = None,
) -> dict:
    cube, picks, ends, minutes = dataset_windows(name, size, every, max_windows)
    km = KM_PER_PIXEL[name]
    values, times = cube.values, cube.time.values
    print(f"{name}: {cube.sizes['y']} x {cube.sizes['x']}, {len(ends)} windows", flush=True)
    sums: dict[str, dict] = {}
    cpu: dict[str, list[float]] = {lab: [] for lab in LABELS}
    wall: dict[str, list[float]] = {lab: [] for lab in LABELS}
    rng = np.random.default_rng(0)
    other = np.zeros((max(seeds - 1, 0), N_OUT, 2))  # CRPS sums of the other seeds
    n_cached = 0
    for pos, (n, end) in enumerate(zip(picks.tolist(), ends)):
        inputs, obs = values[end - N_IN + 1 : end + 1], values[end + 1 : end + 1 + N_OUT]
        key = f"{name}_w{n:03d}"  # n: the window's index among all complete ones, its seed
        kept = (
            None
            if cache is None or pos == 0
            else cached_pysteps(cache, key, inputs, times[end], members, levels, n)
        )
        runs = {
            XN: lambda t=times[end], s=n: xnowcast_steps(cube, t, members, levels, km, minutes, s),
            PS: lambda f=inputs, s=n: pysteps_steps(f, members, levels, km, minutes, s),
        }
        if XN_DEFAULT in LABELS:
            runs[XN_DEFAULT] = lambda t=times[end], s=n: xnowcast_steps(
                cube, t, members, levels, km, minutes, s, bps=False
            )
        for lab, run in runs.items():
            if lab == PS and kept is not None:
                ens, n_cached = kept, n_cached + 1
            else:
                c, w = time.process_time(), time.perf_counter()
                ens = run()
                cpu[lab].append(time.process_time() - c)
                wall[lab].append(time.perf_counter() - w)
                if lab == PS and cache is not None:
                    store_pysteps(cache, key, ens, inputs, obs, times[end], km, minutes, levels, n)
            s = score(ens, obs, rng)
            sums[lab] = s if lab not in sums else {k: sums[lab][k] + s[k] for k in s}
        for i in range(1, seeds):
            ens = xnowcast_steps(cube, times[end], members, levels, km, minutes, n + 1000 * i)
            other[i - 1] += crps_sums(scored(ens, obs), obs)
        print(
            f"  {pd.Timestamp(times[end])}: CPU s "
            + ", ".join(
                f"{lab} " + ("cached" if lab == PS and kept is not None else f"{cpu[lab][-1]:.1f}")
                for lab in LABELS
            ),
            flush=True,
        )
    first = ends[0]
    memory = {
        **(
            {
                XN_DEFAULT: peak_memory(
                    lambda: xnowcast_steps(
                        cube, times[first], members, levels, km, minutes, 0, bps=False
                    )
                )
            }
            if XN_DEFAULT in LABELS
            else {}
        ),
        XN: peak_memory(
            lambda: xnowcast_steps(cube, times[first], members, levels, km, minutes, 0)
        ),
        PS: peak_memory(
            lambda: pysteps_steps(
                values[first - N_IN + 1 : first + 1], members, levels, km, minutes, 0
            )
        ),
    }
    return {
        "shape": (cube.sizes["y"], cube.sizes["x"]),
        "n_windows": len(ends),
        "n_cached": n_cached,
        "step": minutes,
        "scores": {lab: summarise(s, members) for lab, s in sums.items()},
        "seed_crps": [float(np.mean(sums[XN]["crps"][:, 0] / sums[XN]["crps"][:, 1]))]
        + [float(np.mean(o[:, 0] / o[:, 1])) for o in other],
        "cpu": {lab: float(np.median(v)) for lab, v in cpu.items()},
        "wall": {lab: float(np.median(v)) for lab, v in wall.items()},
        "memory": memory,
    }


METRICS = [
    ("crps", "CRPS (mm/h)"),
    ("brier1", "Brier 1"),
    ("brier5", "Brier 5"),
    ("roc1", "ROC area 1"),
    ("roc5", "ROC area 5"),
    ("flatness", "rank-hist. flatness (0 = flat)"),
    ("csi1", "mean CSI 1"),
    ("fss16", "mean FSS 1 mm/h 16 px"),
]


def value(res: dict, lab: str, key: str) -> float:
    return float(np.nanmean(res["scores"][lab][key]))


def tables(results: dict, load_text: str, members: int, levels: int, mode: str) -> str:
    sizes = ", ".join(
        f"{n.upper()} {r['shape'][0]} x {r['shape'][1]} ({r['n_windows']} windows)"
        for n, r in results.items()
    )
    cached = sum(r.get("n_cached", 0) for r in results.values())
    total = sum(r["n_windows"] for r in results.values())
    lines = [
        f"Run: `{mode}`; {members} members, {levels} cascade levels. Windows: {sizes}. "
        f"Machine: {load_text}."
        + (
            f" pysteps ensembles of {cached} of the {total} windows read from the cache "
            "(`--pysteps-cache`: made by this script with the same windows, seeds, members and "
            "levels); pysteps run, timed and traced on the first window of each dataset."
            if cached
            else ""
        ),
        "",
        "Scores averaged over the 24 lead times (lower is better for CRPS, Brier and flatness):",
        "",
        "| dataset | method | " + " | ".join(t for _, t in METRICS) + " |",
        "| --- | --- |" + " ---: |" * len(METRICS),
    ]
    for name, res in [*results.items(), ("mean", None)]:
        for lab in LABELS:
            cells = [
                np.mean([value(r, lab, k) for r in results.values()])
                if res is None
                else value(res, lab, k)
                for k, _ in METRICS
            ]
            lines.append(
                f"| {name.upper()} | {lab} | " + " | ".join(f"{c:.3f}" for c in cells) + " |"
            )
    lines += [
        "",
        "Time and memory per forecast (median CPU seconds over the windows, peak traced memory "
        "of one forecast):",
        "",
        "| dataset | method | CPU s | wall s | peak MiB | CPU x faster than pysteps |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, res in results.items():
        for lab in LABELS:
            lines.append(
                f"| {name.upper()} | {lab} | {res['cpu'][lab]:.1f} | {res['wall'][lab]:.1f} | "
                f"{res['memory'][lab]:.0f} | {res['cpu'][PS] / res['cpu'][lab]:.1f} |"
            )
    crps = {lab: np.mean([value(r, lab, "crps") for r in results.values()]) for lab in LABELS}
    lines += [
        "",
        "| target | method | xnowcast | bar | met |",
        "| --- | --- | ---: | ---: | :---: |",
    ]
    for lab in [x for x in LABELS if x != PS]:
        speed = float(np.median([r["cpu"][PS] / r["cpu"][lab] for r in results.values()]))
        lines += [
            f"| mean CRPS <= pysteps STEPS | {lab} | {crps[lab]:.4f} | {crps[PS]:.4f} | "
            f"{'yes' if crps[lab] <= crps[PS] else '**no**'} |",
            f"| CPU time >= 10x faster (median over datasets) | {lab} | {speed:.1f}x | 10x | "
            f"{'yes' if speed >= 10 else '**no**'} |",
        ]
    lines += seed_lines(results)
    lines += [
        "",
        "CRPS (mm/h) per lead time:",
        "",
    ]
    leads = [0, 5, 11, 23]
    lines += [
        "| dataset | method | " + " | ".join(f"lead {k + 1}" for k in leads) + " |",
        "| --- | --- |" + " ---: |" * len(leads),
    ]
    for name, res in results.items():
        for lab in LABELS:
            c = res["scores"][lab]["crps"]
            lines.append(
                f"| {name.upper()} | {lab} | " + " | ".join(f"{c[k]:.3f}" for k in leads) + " |"
            )
    return "\n".join(lines)


def seed_lines(results: dict) -> list[str]:
    """Mean and range of xnowcast's CRPS over its seeds, beside pysteps' one seed."""
    runs = np.array([r["seed_crps"] for r in results.values()])  # (datasets, seeds)
    if runs.shape[1] < 2:
        return []
    lines = [
        "",
        f"xnowcast steps over {runs.shape[1]} seeds per window (the table above: the first), "
        "CRPS averaged over the leads:",
        "",
        "| dataset | mean | min | max | pysteps STEPS (one seed) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows = [*zip(results, runs), ("mean", runs.mean(axis=0))]
    for name, crps in rows:
        ps = np.mean([value(r, PS, "crps") for n, r in results.items() if name in (n, "mean")])
        lines.append(
            f"| {name.upper()} | {crps.mean():.3f} | {crps.min():.3f} | {crps.max():.3f} | "
            f"{ps:.3f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mch", "knmi", "bom"])
    parser.add_argument("--every", type=int, default=1, help="use every n-th window")
    parser.add_argument("--crop", type=int, default=None, help="centred crop (pixels)")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--levels", type=int, default=6)
    parser.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="thin each dataset evenly to at most this many windows (replaces --every)",
    )
    parser.add_argument("--quick", action="store_true", help="--every 6 --crop 384")
    parser.add_argument(
        "--pysteps-only",
        action="store_true",
        help="only fill --pysteps-cache with the selected windows' pysteps ensembles",
    )
    parser.add_argument(
        "--reverse", action="store_true", help="--pysteps-only: from the last window back"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument(
        "--with-default",
        action="store_true",
        help="also xnowcast with motion_perturbation='none' in the same run",
    )
    parser.add_argument("--section", default="bench_steps", help="docs section to write")
    parser.add_argument(
        "--seeds", type=int, default=3, help="xnowcast seeds per window (CRPS mean and range)"
    )
    parser.add_argument(
        "--pysteps-cache",
        default=None,
        help="folder that keeps pysteps' ensembles between runs (see the module docstring)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.every, args.crop = 6, 384
    if args.with_default:
        LABELS.insert(1, XN_DEFAULT)
    warnings.filterwarnings("ignore")
    if args.pysteps_only:
        if args.pysteps_cache is None:
            parser.error("--pysteps-only needs --pysteps-cache DIR")
        for name in args.datasets:
            fill_cache(
                name,
                args.every,
                args.max_windows,
                args.crop,
                args.members,
                args.levels,
                args.pysteps_cache,
                args.reverse,
            )
        return
    results = {
        name: run_dataset(
            name,
            args.every,
            args.crop,
            args.members,
            args.levels,
            args.seeds,
            args.pysteps_cache,
            args.max_windows,
        )
        for name in args.datasets
    }
    mode = "python benchmarks/bench_steps.py " + " ".join(
        argv if argv is not None else __import__("sys").argv[1:]
    )
    text = tables(results, machine_load(), args.members, args.levels, mode.strip())
    print(text)
    if not args.no_write:
        write_section(DOC, args.section, text)


if __name__ == "__main__":
    main()
