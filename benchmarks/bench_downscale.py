"""Downscaling x4 on the shared radar: trained networks against bicubic, on unseen events.

    python benchmarks/bench_downscale.py [--steps 400] [--archs resnet-spc,...] [--out DIR]
                                         [--self-ensemble all|best|none] [--seed 0]

Each event is coarsened x4 (1 km -> 4 km; BOM 500 m -> 2 km) by area averaging
(:func:`xnowcast.downscale.coarsened`). Every architecture trains on the
MeteoSwiss event (2015-05-15) for the same number of steps, through
``xnowcast.Trainer(task="downscale")``, and is tested on the KNMI (2010-08-26)
and BOM (2018-06-16) events it never saw, on whole frames, against the
``bicubic`` baseline:

* PSNR (dB) of the rain rate with a fixed peak of 100 mm/h, per frame, averaged;
* SSIM of ``log1p(rain rate)`` (peak ``log1p(100)``, 7-cell window), averaged;
* MAE (mm/h), CSI and FSS (1-cell window: the fine scale itself) at 1 mm/h, pooled
  over the frames.

Runs named ``+ mul`` / ``+ add`` train with the conservation constraint
(``model_params={"constraint": ...}``: every 4 x 4 block of the output averages
to its coarse cell in mm/h); ``MSE of mm/h`` runs train on the squared error of
rain rates (``transform="identity"``, or ``loss_space="physical"`` with the
network still fed ``log1p``: ``log1p input``); the others on the MAE of
``log1p``. The row ``untrained resnet-rc + mul`` is that network before any
training: bicubic of ``log1p`` with the block means kept. A second table says
where bicubic misses the 1 mm/h area (FSS over 1 to 8 cells, the share of its
wrong cells in coarse cells that straddle 1 mm/h) and what the FSS target asks.

Each trained network (``--self-ensemble all``, default; ``best``: the best by
mean PSNR) is scored a second time with geometric self-ensembling
(``downscale(..., self_ensemble=True)``: the 8 flips and quarter turns,
averaged), with the same weights, no retraining: rows ``NAME + self-ensemble``.
The table gives the CPU seconds of downscaling the test frames of both events.

Then a forecast made at 4 km (the coarsened KNMI cube) and downscaled, against
the same model's forecast at 1 km, both verified on the 1 km observations,
with their CPU seconds. Tables go into docs/downscaling.md (section
``bench_downscale``), with the CPU seconds (``time.process_time``) of each
training and the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import xnowcast  # noqa: E402
from xnowcast.downscale import Downscaler, build_network, coarsened, downscale  # noqa: E402
from xnowcast.verification.image import ssim  # noqa: E402
from xnowcast.verification.spatial import fss_stats  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "radar"
EVENTS = {"knmi": "KNMI 2010-08-26", "bom": "BOM 2018-06-16"}
PEAK = 100.0
THRESHOLD = 1.0
FSS_SCALE = 1  # one fine cell: bicubic already scores 0.99 at 5 cells
#: name (no commas: --archs splits on them) -> (architecture, extra Trainer options)
RUNS = {
    "resnet-spc": ("resnet-spc", {}),
    "resnet-rc": ("resnet-rc", {}),
    "resnet-dc": ("resnet-dc", {}),
    "resnet-int": ("resnet-int", {}),
    "densenet-spc": ("densenet-spc", {}),
    "convnet-spc": ("convnet-spc", {}),
    "rec-resnet-spc (3 frames)": ("rec-resnet-spc", {"n_in": 3}),
    "resnet-spc + GAN": ("resnet-spc", {"adversarial": True}),
    # the conservation constraints (xnowcast.downscale.constraint): every 4 x 4 block of the
    # output averages to its coarse cell, in mm/h
    "resnet-rc + mul": ("resnet-rc", {"model_params": {"constraint": "mul"}}),
    "resnet-rc + add": ("resnet-rc", {"model_params": {"constraint": "add"}}),
    # the squared error of mm/h (what PSNR scores) in place of the MAE of log1p
    "resnet-rc (MSE of mm/h)": ("resnet-rc", {"transform": "identity", "loss": "mse"}),
    "resnet-rc + mul (MSE of mm/h)": (
        "resnet-rc",
        {"model_params": {"constraint": "mul"}, "transform": "identity", "loss": "mse"},
    ),
    # the same squared error of mm/h, the network still fed log1p (loss_space="physical")
    "resnet-rc + mul (MSE of mm/h; log1p input)": (
        "resnet-rc",
        {"model_params": {"constraint": "mul"}, "loss": "mse", "loss_space": "physical"},
    ),
    "resnet-rc (MSE of mm/h; log1p input)": (
        "resnet-rc",
        {"loss": "mse", "loss_space": "physical"},
    ),
    # a differentiable CSI at 1 mm/h added to the loss: rewards the rain area above 1 mm/h
    "resnet-rc + mul + CSI loss": (
        "resnet-rc",
        {"model_params": {"constraint": "mul"}, "loss": "mae+0.3*csi"},
    ),
    "resnet-rc + mul + GAN": (
        "resnet-rc",
        {"model_params": {"constraint": "mul"}, "adversarial": True},
    ),
}
#: Trainer options of every run, unless its RUNS entry sets them
DEFAULTS = {"transform": "log", "loss": "mae"}


def load_events(stride: int) -> dict[str, xr.DataArray]:
    """MeteoSwiss (train, every frame) and KNMI, BOM (test, every ``stride``-th frame)."""
    mch = xr.open_dataset(DATA / "mch-20150515.nc")["precip_intensity"]
    knmi = xr.open_dataset(DATA / "knmi-201008.nc")["precip_intensity"]
    bom = xnowcast.open_archive(str(DATA / "bom-2-20180616" / "*.nc"), time="valid_time")
    bom = (bom * 10.0).assign_attrs(bom.attrs, units="mm h-1")  # mm per 6 min -> mm/h
    return {
        "mch": mch.load(),
        "knmi": knmi.isel(time=slice(None, None, stride)).load(),
        "bom": bom.isel(time=slice(None, None, stride)).load(),
    }


def scores(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM, MAE, CSI and FSS at 1 mm/h of fine fields ``(n, y, x)`` (NaN skipped)."""
    valid = np.isfinite(pred) & np.isfinite(obs)
    p, o = np.where(valid, pred, np.nan), np.where(valid, obs, np.nan)
    mse = np.nanmean((p - o) ** 2, axis=(-2, -1))
    psnr = np.nanmean(10 * np.log10(PEAK**2 / mse[mse > 0]))
    s = np.nanmean(
        ssim(np.log1p(np.maximum(p, 0)), np.log1p(np.maximum(o, 0)), data_range=np.log1p(PEAK))
    )
    mae = float(np.nanmean(np.abs(p - o)))
    f, w = (p >= THRESHOLD) & valid, (o >= THRESHOLD) & valid
    hits, misses, false = (f & w).sum(), (~f & w).sum(), (f & ~w).sum()
    csi = hits / max(hits + misses + false, 1)
    fss = fss_at(p, o, FSS_SCALE)
    return {"psnr": float(psnr), "ssim": float(s), "mae": mae, "csi": float(csi), "fss": fss}


def fss_at(pred: np.ndarray, obs: np.ndarray, scale: int) -> float:
    """FSS at 1 mm/h over ``scale x scale`` fine cells, pooled over the frames (NaN skipped)."""
    valid = np.isfinite(pred) & np.isfinite(obs)
    p, o = np.where(valid, pred, 0.0), np.where(valid, obs, 0.0)
    ff, fo, oo = fss_stats(p, o, THRESHOLD, scale).reshape(-1, 3).sum(axis=0)
    return float(1 - (ff - 2 * fo + oo) / (ff + oo))


def block_count(a: np.ndarray, scale: int = 4) -> np.ndarray:
    """True cells of ``a`` ``(n, y, x)`` in every ``scale x scale`` block."""
    n, hgt, wid = a.shape
    return a.reshape(n, hgt // scale, scale, wid // scale, scale).sum(axis=(2, 4))


def fss_headroom(tests: dict[str, tuple]) -> list[dict]:
    """Where bicubic misses the 1 mm/h area, per test event, and what the FSS target leaves.

    A "mixed" block is a coarse cell whose fine cells lie on both sides of 1 mm/h:
    where the area mean alone cannot tell which fine cells exceed it.
    """
    rows = []
    for event, (low, high) in tests.items():
        obs = high.values
        pred = downscale(low, model="bicubic", scale=4).values
        valid = np.isfinite(pred) & np.isfinite(obs)
        o, f = (obs >= THRESHOLD) & valid, (pred >= THRESHOLD) & valid
        mixed = (block_count(o) > 0) & (block_count(o) < block_count(valid))
        mixed = np.repeat(np.repeat(mixed, 4, axis=-2), 4, axis=-1)
        wrong = (o != f) & valid
        outside_right = np.where(mixed, f, o)  # every error outside the mixed blocks removed
        rows.append(
            {
                "event": event,
                **{f"fss{k}": fss_at(pred, obs, k) for k in (1, 2, 4, 8)},
                "mixed_share": float((wrong & mixed).sum() / max(wrong.sum(), 1)),
                "mixed_cells": float((mixed & valid).sum() / valid.sum()),
                "outside_right": float(
                    2 * (o & outside_right).sum() / (o.sum() + outside_right.sum())
                ),
            }
        )
    return rows


def headroom_table(rows: list[dict]) -> str:
    lines = [
        "| event | FSS 1 cell | 2 cells | 4 cells (one coarse cell) | 8 cells | errors in mixed "
        "blocks | cells in mixed blocks | FSS 1 cell, every error outside mixed blocks removed "
        "| FSS 1 cell the target asks |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {EVENTS[r['event']]} | {r['fss1']:.3f} | {r['fss2']:.3f} | {r['fss4']:.3f} | "
            f"{r['fss8']:.3f} | {100 * r['mixed_share']:.0f} % | {100 * r['mixed_cells']:.1f} % | "
            f"{r['outside_right']:.3f} | {r['fss1'] + 0.03:.3f} |"
        )
    return "\n".join(lines)


def untrained_constrained(args) -> Downscaler:
    """``resnet-rc`` with the ``mul`` constraint, untrained: bicubic of log1p, block means kept.

    Its last layer starts at zero, so its output is the bicubic interpolation of
    ``log1p`` rain rates, corrected so that every 4 x 4 block averages to its
    coarse cell (in mm/h): what the constraint alone does, before any training.
    """
    net = build_network(
        "resnet-rc", 4, filters=args.filters, blocks=args.blocks, constraint="mul", transform="log"
    )
    return Downscaler(net, name="resnet-rc", scale=4, n_in=1, transform="log")


def epochs_for(steps: int, samples: int, args) -> int:
    """Epochs of ``samples`` crops (one per frame) that make about ``steps`` batches."""
    batches = -(-samples // args.batch_size)
    return max(1, round(steps / batches))


def train(name: str, arch: str, extra: dict, pairs, args, out: Path) -> tuple[str, float]:
    """Train one architecture; returns the checkpoint path and its CPU seconds."""
    slug = "".join(c if c.isalnum() or c == "-" else "_" for c in name)
    path = out / f"{slug}.pt"
    extra = {**DEFAULTS, **extra}
    params = {"filters": args.filters, "blocks": args.blocks, **extra.pop("model_params", {})}
    tr = xnowcast.Trainer(
        task="downscale",
        model=arch,
        scale=4,
        model_params=params,
        lr=args.lr,
        lr_schedule="cosine",
        epochs=epochs_for(args.steps, pairs[0].sizes["time"] - extra.get("n_in", 1) + 1, args),
        batch_size=args.batch_size,
        crop=args.crop,
        min_wet_fraction=0.2,
        seed=args.seed,
        progress=False,
        overwrite=True,
        **extra,
    )
    cpu0 = time.process_time()
    tr.fit(pairs=pairs)
    cpu = time.process_time() - cpu0
    tr.save(path, overwrite=True)
    loss = tr.history["train_loss"].tolist()
    print(f"{name}: {len(loss)} epochs in {cpu:.0f} CPU s, loss {loss[0]:.4f} -> {loss[-1]:.4f}")
    return str(path), cpu


def evaluate(
    model: str, tests: dict[str, tuple], scale: int = 4, self_ensemble: bool = False
) -> dict[str, dict]:
    """Scores of ``model`` (checkpoint or baseline) on each test event, and CPU seconds."""
    out = {}
    for event, (low, high) in tests.items():
        cpu0 = time.process_time()
        how = {"self_ensemble": True} if self_ensemble else {}  # refused for baselines
        fine = downscale(low, model=model, scale=scale, batch_size=2, **how)
        cpu = time.process_time() - cpu0
        out[event] = {**scores(fine.values, high.values), "cpu": cpu}
    return out


def forecast_compare(
    knmi: xr.DataArray, model: str, inits: list[int], n_out: int, self_ensemble: bool = False
) -> list:
    """Optical flow at 1 km against at 4 km + downscaling, on the 1 km observations.

    The 4 km forecast is downscaled by bicubic, by ``model`` and, with
    ``self_ensemble``, by ``model`` self-ensembled too.
    """
    low, high = coarsened(knmi, 4)
    downscalers = {"4 km + bicubic": ("bicubic", {})}
    downscalers[f"4 km + {Path(model).stem}"] = (model, {})
    if self_ensemble:
        downscalers[f"4 km + {Path(model).stem} + self-ensemble"] = (model, {"self_ensemble": True})
    rows: dict[str, dict] = {}
    for label in ("1 km forecast", *downscalers):
        rows[label] = {"pred": [], "obs": [], "cpu": 0.0}
    for i in inits:
        obs = high.isel(time=slice(i + 1, i + 1 + n_out)).values
        cpu0 = time.process_time()
        fc1 = xnowcast.forecast(high.isel(time=slice(None, i + 1)), "optical-flow", n_out=n_out)
        rows["1 km forecast"]["cpu"] += time.process_time() - cpu0
        rows["1 km forecast"]["pred"].append(fc1.values)
        cpu0 = time.process_time()
        fc4 = xnowcast.forecast(low.isel(time=slice(None, i + 1)), "optical-flow", n_out=n_out)
        cpu4 = time.process_time() - cpu0
        for label, (how, opts) in downscalers.items():
            cpu0 = time.process_time()
            fine = downscale(fc4, model=how, scale=4, batch_size=2, **opts)
            rows[label]["cpu"] += cpu4 + time.process_time() - cpu0
            rows[label]["pred"].append(fine.values)
        for r in rows.values():
            r["obs"].append(obs)
    return [
        {
            "method": k,
            **scores(np.concatenate(v["pred"]), np.concatenate(v["obs"])),
            "cpu": v["cpu"],
        }
        for k, v in rows.items()
    ]


SE = " + self-ensemble"
UNTRAINED = "untrained resnet-rc + mul (no training)"


def mean_psnr(res: dict) -> float:
    """Mean PSNR over the two test events."""
    return float(np.mean([res[e]["psnr"] for e in ("knmi", "bom")]))


def self_ensembled(results: dict, which: str) -> list[str]:
    """The trained networks to score again with self-ensembling (``all``, ``best``, ``none``)."""
    plain = [n for n in results if not n.endswith(SE)]
    if which == "none" or not plain:
        return []
    return plain if which == "all" else [max(plain, key=lambda n: mean_psnr(results[n]))]


def table(results: dict, baseline: dict, budgets: dict, refs: dict | None = None) -> str:
    lines = [
        "| method | train CPU s | test CPU s | KNMI PSNR | KNMI SSIM | KNMI MAE | KNMI CSI "
        "| KNMI FSS | BOM PSNR | BOM SSIM | BOM MAE | BOM CSI | BOM FSS | mean dPSNR "
        "| mean dFSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: |",
    ]
    plain = [n for n in results if not n.endswith(SE)]
    order = [m for n in plain for m in (n, n + SE) if m in results]  # each network, then its SE
    rows = {"bicubic": baseline, **(refs or {}), **{n: results[n] for n in order}}
    for name, res in rows.items():
        cells = []
        for event in ("knmi", "bom"):
            r = res[event]
            cells += [f"{r['psnr']:.2f}", f"{r['ssim']:.3f}", f"{r['mae']:.3f}"]
            cells += [f"{r['csi']:.3f}", f"{r['fss']:.3f}"]
        dp = np.mean([res[e]["psnr"] - baseline[e]["psnr"] for e in ("knmi", "bom")])
        df = np.mean([res[e]["fss"] - baseline[e]["fss"] for e in ("knmi", "bom")])
        budget = f"{budgets[name]:.0f}" if name in budgets else "-"
        test_cpu = sum(res[e].get("cpu", np.nan) for e in ("knmi", "bom"))
        lines.append(
            f"| {name} | {budget} | {test_cpu:.1f} | {' | '.join(cells)} | {dp:+.2f} | {df:+.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400, help="training steps per architecture")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--filters", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--stride", type=int, default=8, help="test every stride-th frame")
    ap.add_argument("--archs", default=",".join(RUNS), help="comma-separated names of RUNS")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights, crops and flips")
    ap.add_argument(
        "--self-ensemble",
        choices=("all", "best", "none"),
        default="all",
        help="networks also scored with self_ensemble=True (8 flips and turns, no retraining)",
    )
    ap.add_argument("--out", default="/tmp/downscale")
    ap.add_argument("--no-docs", action="store_true", help="print the tables only")
    ap.add_argument(
        "--reuse", action="store_true", help="keep the architectures scored in OUT/results.json"
    )
    args = ap.parse_args()
    names = [n.strip() for n in args.archs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        sys.exit(f"unknown --archs {unknown}; names of RUNS: {', '.join(RUNS)}")
    if not DATA.is_dir():
        sys.exit(f"no shared radar data at {DATA}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    events = load_events(args.stride)
    pairs = coarsened(events["mch"], 4)
    tests = {e: coarsened(events[e], 4) for e in ("knmi", "bom")}
    baseline = evaluate("bicubic", tests)
    print("bicubic", json.dumps(baseline))
    refs = {UNTRAINED: evaluate(untrained_constrained(args), tests)}
    print(UNTRAINED, json.dumps(refs[UNTRAINED]))
    headroom = fss_headroom(tests)
    print(headroom_table(headroom))
    saved = json.loads((out / "results.json").read_text()) if args.reuse else {}
    record: dict = {"bicubic": baseline, "results": {}, "budgets": {}, "checkpoints": {}}
    results, budgets, ckpts = record["results"], record["budgets"], record["checkpoints"]
    for name in names:
        if name in saved.get("results", {}):  # --reuse: trained and scored by an earlier run
            results[name], budgets[name] = saved["results"][name], saved["budgets"][name]
            ckpts[name] = saved["checkpoints"][name]
            continue
        arch, extra = RUNS[name]
        ckpts[name], budgets[name] = train(name, arch, extra, pairs, args, out)
        results[name] = evaluate(ckpts[name], tests)
        print(name, json.dumps(results[name]), flush=True)
        (out / "results.json").write_text(json.dumps(record, indent=1))
    for name in self_ensembled(results, args.self_ensemble):
        label = name + SE
        if label in saved.get("results", {}):
            results[label] = saved["results"][label]
        else:
            results[label] = evaluate(ckpts[name], tests, self_ensemble=True)
            print(label, json.dumps(results[label]), flush=True)
        budgets[label], ckpts[label] = budgets[name], ckpts[name]
        (out / "results.json").write_text(json.dumps(record, indent=1))
    best = max(results, key=lambda n: mean_psnr(results[n]))
    knmi = (
        events["knmi"]
        if args.stride == 1
        else xr.open_dataset(DATA / "knmi-201008.nc")["precip_intensity"].load()
    )
    fc_rows = forecast_compare(
        knmi, ckpts[best], inits=[30, 50, 70], n_out=12, self_ensemble=best.endswith(SE)
    )
    text = report(args, results, baseline, budgets, best, fc_rows, refs, headroom)
    print(text)
    (out / "report.md").write_text(text)
    if not args.no_docs:
        from _docs import write_section

        write_section(ROOT / "docs" / "downscaling.md", "bench_downscale", text)


def report(args, results, baseline, budgets, best, fc_rows, refs, headroom) -> str:
    load = os.getloadavg()[0]
    fc = [
        "| method | CPU s | PSNR | SSIM | MAE | CSI 1 mm/h | FSS 1 mm/h |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in fc_rows:
        fc.append(
            f"| {r['method']} | {r['cpu']:.1f} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
            f"{r['mae']:.3f} | {r['csi']:.3f} | {r['fss']:.3f} |"
        )
    gain = {
        (e, k): results[best][e][k] - baseline[e][k]
        for e in ("knmi", "bom")
        for k in ("psnr", "fss")
    }
    dp = np.mean([gain[e, "psnr"] for e in ("knmi", "bom")])
    df = np.mean([gain[e, "fss"] for e in ("knmi", "bom")])
    verdict = {True: "met", False: "not met"}
    return "\n".join(
        [
            f"Trained on MeteoSwiss 2015-05-15 (40 frames, x4 pairs), {args.steps} steps of "
            f"{args.batch_size} crops of {args.crop} px, filters={args.filters}, "
            f"blocks={args.blocks}, lr {args.lr} cosine, seed {args.seed}, {args.threads} torch "
            "threads; loss: the MAE of log1p rain rates (network in log1p), unless the name says "
            "`MSE of mm/h` (network in mm/h, `transform='identity'`, `loss='mse'`); `+ mul`: "
            "`model_params={'constraint': 'mul'}`, `+ add`: `'add'` (every 4 x 4 block of the "
            f"output averages to its coarse cell in mm/h). `{UNTRAINED}`: that network before "
            "any training (bicubic of log1p, block means kept). Tested on every "
            f"{args.stride}th frame of KNMI 2010-08-26 and BOM 2018-06-16 (unseen), whole "
            "frames. `+ self-ensemble`: the same weights (no retraining; train CPU s is the "
            "network's) with `self_ensemble=True`. Test CPU s: downscaling the test frames of "
            "both events. CPU seconds by `time.process_time`; 1-minute load average at the "
            f"end: {load:.1f} on 2 cores.",
            "",
            table(results, baseline, budgets, refs),
            "",
            f"Best (mean PSNR): **{best}**, {dp:+.2f} dB PSNR ({gain['knmi', 'psnr']:+.2f} KNMI, "
            f"{gain['bom', 'psnr']:+.2f} BOM) and {df:+.3f} FSS ({gain['knmi', 'fss']:+.3f}, "
            f"{gain['bom', 'fss']:+.3f}) over bicubic: PSNR target (+1.5 dB) "
            f"**{verdict[bool(dp >= 1.5)]}**, FSS target (+0.03) **{verdict[bool(df >= 0.03)]}**; "
            f"the target (both) **{verdict[bool(dp >= 1.5 and df >= 0.03)]}**.",
            "",
            "Room left by the FSS target (bicubic, per test event): FSS at 1 mm/h over 1 to 8 "
            "fine cells; the share of bicubic's wrong cells (1 mm/h exceeded or not) that lie in "
            "mixed blocks (coarse cells whose fine cells lie on both sides of 1 mm/h) and the "
            "share of cells in them; the FSS if every wrong cell outside mixed blocks were "
            "right:",
            "",
            headroom_table(headroom),
            "",
            "Optical-flow forecast of KNMI (3 init times, 12 lead times of 5 min), verified on "
            "the 1 km observations; CPU seconds of forecasting (+ downscaling):",
            "",
            "\n".join(fc),
        ]
    )


if __name__ == "__main__":
    main()
