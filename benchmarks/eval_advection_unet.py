"""Leave-one-event-out evaluation of advection-unet on the shared radar.

    python benchmarks/eval_advection_unet.py                  # 3 folds, 200 CPU s of training each
    python benchmarks/eval_advection_unet.py --budget 1200    # CPU seconds per fold
    python benchmarks/eval_advection_unet.py --quick          # CI: 96 px crops, 2 windows, 2 s
    python benchmarks/eval_advection_unet.py --jobs 3         # the folds at once (3 processes)
    python benchmarks/eval_advection_unet.py --held-out knmi --recipe '{"lr": 3e-4}'  # one fold,
                                                              # another recipe (docs not written)

For each shared event (MeteoSwiss, KNMI, BOM) a network is trained (with the
recipe of the shipped weights, ``_advection_unet.make_trainer``) on the *other
two* events only, then every complete 12 -> 24 window of the held-out event
is forecast by

* persistence,
* the old default, ``model="optical-flow", extrapolation="advection"``
  (Lucas-Kanade, the last frame advected),
* the current default, ``model="optical-flow"`` (the scale-aware cascade),
* the network trained without the event,

and scored per lead time: CSI at 1 mm/h, FSS (1 mm/h, 16 px) and MAE (mm/h),
as ``bench_optical_flow.py`` does (forecast NaN over observed data counts as
no rain). Also: the mean forecast where the last frame held more than
10 mm/h, at +30 and +60 min (heavy rain must not collapse). The tables go
into docs/neural.md (not with ``--quick``), with the training budget of each
fold in CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _advection_unet import EVENTS, N_IN, N_OUT, ROOT, load, machine, make_trainer
from _docs import write_section

from xnowcast.models import get_model, run_model
from xnowcast.verification.categorical import contingency_table, csi_from_table
from xnowcast.verification.continuous import continuous_stats, mae_from_stats
from xnowcast.verification.spatial import fss_from_stats, fss_stats
from xnowcast.windows import windows

DOC = ROOT / "docs" / "neural.md"
PERSISTENCE = "persistence"
OLD = "optical-flow, advection (old default)"
DEFAULT = "optical-flow (default: cascade)"
LEARNED = "advection-unet (trained without the event)"
METHODS = (PERSISTENCE, OLD, DEFAULT, LEARNED)
HEAVY = 10.0  # mm/h
HEAVY_LEADS = (6, 12)  # lead steps: +30 and +60 min at 5 min


def score(fc: np.ndarray, obs: np.ndarray, last: np.ndarray) -> dict[str, np.ndarray]:
    """Per-lead sums of one ``(n_out, y, x)`` forecast against the observations."""
    fc = np.where(np.isfinite(obs) & ~np.isfinite(fc), 0.0, fc)
    heavy = np.isfinite(last) & (last > HEAVY)
    values = np.where(heavy & np.isfinite(fc), fc, 0.0)
    counts = (heavy & np.isfinite(fc)).sum(axis=(-2, -1))
    return {
        "table": contingency_table(fc, obs, 1.0),
        "table10": contingency_table(fc, obs, HEAVY),
        "fss": fss_stats(fc, obs, 1.0, [16])[..., 0, 0, :],
        "cont": continuous_stats(fc, obs),
        "heavy": np.stack([values.sum(axis=(-2, -1)), counts], axis=-1),
    }


def classical_models() -> dict:
    common = {"n_in": N_IN, "n_out": N_OUT}
    return {
        PERSISTENCE: get_model("persistence", **common),
        OLD: get_model("optical-flow", extrapolation="advection", **common),
        DEFAULT: get_model("optical-flow", **common),
    }


def evaluate_event(cube, models: dict) -> tuple[dict, dict]:
    """Summed scores per method over every window of ``cube``; CPU seconds per method.

    The network corrects the cascade forecast made for ``DEFAULT`` (its own
    extrapolation, the same forecast): it is made once, and counted in the
    network's CPU seconds too.
    """
    wins = windows(cube, N_IN, N_OUT)
    sums: dict[str, dict[str, np.ndarray]] = {}
    cpu = dict.fromkeys(models, 0.0)
    cpu_default = 0.0
    if (
        LEARNED in models
        and models[LEARNED].extrapolator.get_params() != models[DEFAULT].get_params()
    ):
        raise ValueError("the network must correct the forecast of the default optical-flow model")
    for w in wins:
        inputs = np.asarray(w.inputs.values, np.float32)
        obs = np.asarray(w.targets.values, np.float32)
        made: dict[str, np.ndarray] = {}
        for label, model in models.items():
            start = time.process_time()
            if label == LEARNED:  # the correction of the cascade forecast made above
                fc = model.correct(inputs[None], made[DEFAULT][None])[0]
                cpu[label] += cpu_default
            else:
                fc = made[label] = run_model(model, inputs[None])[0]
            cpu[label] += time.process_time() - start
            if label == DEFAULT:
                cpu_default = time.process_time() - start
            for key, value in score(fc, obs, inputs[-1]).items():
                sums.setdefault(label, {}).setdefault(key, 0.0)
                sums[label][key] = sums[label][key] + value
    return sums, {k: v / max(len(wins), 1) for k, v in cpu.items()}


def run_fold(
    held: str, cubes: dict, budget: float, quick: bool, cache_dir: str | None, changes: dict
) -> dict:
    """Train without ``held``, evaluate every method on it.

    ``changes``: ``{"recipe": {...}, "model": {...}}`` overrides of the shipped recipe.
    """
    torch.set_num_threads(1)  # also in worker processes (--jobs)
    train = [cubes[e] for e in cubes if e != held]
    trainer = make_trainer(budget, quick=quick, cache_dir=cache_dir, **changes)
    trainer.fit(train)
    hist = trainer.history
    models = {**classical_models(), LEARNED: trainer.model.with_settings(device="cpu")}
    sums, cpu = evaluate_event(cubes[held], models)
    last = hist.iloc[-1]
    base = trainer.baseline or {}
    best = trainer.best_epoch
    best_row = base if best == 0 else hist[hist.epoch == best].iloc[0].to_dict()
    training = {
        "held_out": held,
        "trained_on": [e for e in cubes if e != held],
        "steps": int(last.steps),
        "samples": int(last.samples),
        "cpu_s": float(last.cpu_total),
        "wall_s": float(last.wall_total),
        "best_epoch": best,
        "val_csi_start": base.get("val_csi"),
        "val_csi_best": best_row.get("val_csi"),
        "windows": len(windows(cubes[held], N_IN, N_OUT)),
        "forecast_cpu_s": cpu,
    }
    return {"sums": sums, "training": training}


def _fold_job(
    held: str, events: list[str], budget: float, quick: bool, cache_dir: str | None, changes: dict
):
    """:func:`run_fold` in a worker process, which reads the events itself."""
    cubes = {e: load(e, quick=quick) for e in events}
    return run_fold(held, cubes, budget, quick, cache_dir, changes)


def per_lead(results: dict) -> dict[str, pd.DataFrame]:
    """CSI, FSS and MAE per lead and method: the mean over the held-out events."""
    out = {}
    for metric in ("csi", "fss", "mae"):
        frames = []
        for res in results.values():
            cols = {}
            for label in METHODS:
                s = res["sums"][label]
                if metric == "csi":
                    cols[label] = csi_from_table(s["table"])
                elif metric == "fss":
                    cols[label] = fss_from_stats(s["fss"])
                else:
                    cols[label] = mae_from_stats(s["cont"])
            frames.append(pd.DataFrame(cols, index=pd.RangeIndex(1, N_OUT + 1, name="lead")))
        out[metric] = sum(frames) / len(frames)
    return out


def targets(scores: dict[str, pd.DataFrame]) -> list[tuple[str, bool, str]]:
    """The skill targets of issue 17 (item 4): (target, met, numbers)."""
    csi, fss, mae = scores["csi"], scores["fss"], scores["mae"]
    late = csi.index >= 3  # from +15 min on
    d_csi = csi[LEARNED] - csi[DEFAULT]
    d_fss = fss[LEARNED] - fss[DEFAULT]
    rows = [
        (
            "CSI above the old default at every lead from +15 min",
            bool((csi[LEARNED] > csi[OLD])[late].all()),
            f"smallest margin {(csi[LEARNED] - csi[OLD])[late].min():+.4f}",
        ),
        (
            "FSS above the old default at every lead from +15 min",
            bool((fss[LEARNED] > fss[OLD])[late].all()),
            f"smallest margin {(fss[LEARNED] - fss[OLD])[late].min():+.4f}",
        ),
        (
            "MAE below the old default (mean over leads)",
            bool(mae[LEARNED].mean() < mae[OLD].mean()),
            f"{mae[LEARNED].mean():.4f} vs {mae[OLD].mean():.4f}",
        ),
        (
            "mean CSI at least 0.005 above the current default",
            bool(d_csi.mean() >= 0.005),
            f"{d_csi.mean():+.4f}",
        ),
        ("mean FSS not below the current default", bool(d_fss.mean() >= 0), f"{d_fss.mean():+.4f}"),
        (
            "no lead more than 0.01 CSI below the current default",
            bool(d_csi.min() >= -0.01),
            f"worst lead {d_csi.min():+.4f}",
        ),
    ]
    return rows


def per_event(results: dict) -> pd.DataFrame:
    """Per held-out event: the network minus the cascade, mean over leads and worst lead.

    The targets are on the mean over events; this shows whether each event meets them.
    """
    rows = []
    for held, res in results.items():
        scores = per_lead({held: res})
        d = {m: scores[m][LEARNED] - scores[m][DEFAULT] for m in ("csi", "fss", "mae")}
        rows.append(
            {
                "held_out": held,
                "CSI": float(d["csi"].mean()),
                "CSI worst lead": float(d["csi"].min()),
                "FSS": float(d["fss"].mean()),
                "FSS worst lead": float(d["fss"].min()),
                "MAE": float(d["mae"].mean()),
            }
        )
    return pd.DataFrame(rows)


def heavy_table(results: dict) -> pd.DataFrame:
    """Heavy rain kept? Frequency bias and CSI at 10 mm/h, and the mean where it was."""
    rows = []
    for label in METHODS:
        row = {"method": label}
        for lead in HEAVY_LEADS:
            table = sum(r["sums"][label]["table10"][lead - 1] for r in results.values())
            hits, misses, false = table[0], table[1], table[2]
            row[f"bias +{lead}"] = (hits + false) / max(hits + misses, 1)
            row[f"CSI +{lead}"] = hits / max(hits + misses + false, 1)
        for lead in HEAVY_LEADS:
            total = sum(r["sums"][label]["heavy"][lead - 1] for r in results.values())
            row[f"mean at last >10, +{lead}"] = total[0] / max(total[1], 1)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, fmt: str = "{:.3f}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + " --- |" * len(cols)]
    for _, row in df.iterrows():
        cells = [fmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(results: dict, budget: float, command: str, seconds: float) -> str:
    scores = per_lead(results)
    train = pd.DataFrame([r["training"] for r in results.values()])
    train = train.drop(columns=["forecast_cpu_s", "trained_on"])
    lead_rows = []
    for lead in scores["csi"].index:
        row: dict = {"lead": str(lead)}
        for metric in ("csi", "fss", "mae"):
            for label, short in ((OLD, "old"), (DEFAULT, "cascade"), (LEARNED, "learned")):
                row[f"{metric.upper()} {short}"] = float(scores[metric].loc[lead, label])
        row["CSI persistence"] = float(scores["csi"].loc[lead, PERSISTENCE])
        lead_rows.append(row)
    means = pd.DataFrame(
        [
            {
                "method": label,
                "CSI 1 mm/h": float(scores["csi"][label].mean()),
                "FSS 1 mm/h 16 px": float(scores["fss"][label].mean()),
                "MAE mm/h": float(scores["mae"][label].mean()),
            }
            for label in METHODS
        ]
    )
    target_rows = pd.DataFrame(targets(scores), columns=["target", "met", "numbers"])
    return "\n\n".join(
        [
            f"Leave one event out: each fold trains on two events for {budget:g} CPU s "
            f"(`budget_clock='cpu'`) and forecasts every complete 12 -> 24 window of the third. "
            f"Scores are per-event scores (pooled over that event's windows) averaged over the "
            f"{len(results)} held-out event(s). Machine: {machine()}.",
            "Training per fold:\n\n" + markdown(train, "{:.3g}"),
            "Mean over the 24 lead times:\n\n" + markdown(means, "{:.4f}"),
            "Targets (issue 17, item 4):\n\n" + markdown(target_rows),
            "Per held-out event, advection-unet minus the cascade (mean over the 24 leads, "
            "and the worst lead):\n\n" + markdown(per_event(results), "{:+.4f}"),
            "Per lead time (lead in steps of the event: 5 min, BOM 6 min):\n\n"
            + markdown(pd.DataFrame(lead_rows), "{:.3f}"),
            f"Heavy rain (all events pooled; +{HEAVY_LEADS[0]} and +{HEAVY_LEADS[1]} steps): "
            f"frequency bias and CSI at {HEAVY:g} mm/h against the observations at that lead "
            "(bias near 1: heavy rain kept in area; near 0: it collapsed), and the mean forecast "
            f"(mm/h) over the pixels where the last observed frame exceeded {HEAVY:g} mm/h "
            "(Eulerian: moving rain leaves them, so only persistence keeps it):\n\n"
            + markdown(heavy_table(results), "{:.2f}"),
            f"_Command: `{command}`; the run took {seconds:.0f} s._",
        ]
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=200.0, help="CPU seconds per fold")
    parser.add_argument("--quick", action="store_true", help="small crops, 2 s budgets (CI)")
    parser.add_argument("--events", nargs="+", default=list(EVENTS), choices=EVENTS)
    parser.add_argument("--cache-dir", default=None, help="keep the extrapolations here")
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument(
        "--jobs", type=int, default=1, help="folds run at once, in processes (budgets unchanged)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/neural.md")
    parser.add_argument(
        "--held-out", nargs="+", default=None, choices=EVENTS, help="folds to run (default: all)"
    )
    parser.add_argument("--recipe", type=json.loads, default={}, help="JSON, e.g. '{\"lr\": 1e-4}'")
    parser.add_argument("--model", type=json.loads, default={}, help="JSON network parameters")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    budget = 2.0 if args.quick and args.budget == 200.0 else args.budget
    folds = args.held_out or args.events
    changes = {"recipe": args.recipe, "model": args.model}
    started = time.perf_counter()
    results = {}
    if args.jobs > 1:  # folds in parallel processes (one torch thread each; same CPU budgets)
        import multiprocessing
        import site
        from concurrent.futures import ProcessPoolExecutor

        # fresh processes: a fork copies dask's default thread pool without its threads, and
        # a fold that then computes with it waits forever (when its caller has used dask);
        # they import this script from its folder
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            min(args.jobs, len(folds)),
            mp_context=spawn,
            initializer=site.addsitedir,
            initargs=(str(Path(__file__).resolve().parent),),
        ) as pool:
            futures = {
                held: pool.submit(
                    _fold_job, held, args.events, budget, args.quick, args.cache_dir, changes
                )
                for held in folds
            }
            results = {held: future.result() for held, future in futures.items()}
    else:
        cubes = {e: load(e, quick=args.quick) for e in args.events}
        results = {
            h: run_fold(h, cubes, budget, args.quick, args.cache_dir, changes) for h in folds
        }
    for held, res in results.items():
        print(f"{held}: {json.dumps(res['training'], default=str)}", flush=True)
    command = "python benchmarks/eval_advection_unet.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    text = report(results, budget, command.strip(), time.perf_counter() - started)
    print(text)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    k: {"training": v["training"], "sums": _plain(v["sums"])}
                    for k, v in results.items()
                },
                default=str,
            )
        )
    shipped_recipe = not (args.recipe or args.model) and set(folds) == set(EVENTS)
    if not args.quick and not args.no_docs and shipped_recipe:  # the docs show the shipped one
        write_section(DOC, "eval_advection_unet", text)
    return results


def _plain(sums: dict) -> dict:
    return {m: {k: np.asarray(v).tolist() for k, v in d.items()} for m, d in sums.items()}


if __name__ == "__main__":
    main()
