"""Train the advection-unet weights shipped with xnowcast, on all the shared radar.

    python benchmarks/train_advection_unet.py --budget 200 --overwrite
    python benchmarks/train_advection_unet.py --card    # model card from the checkpoint into the docs

Trains ``advection-unet`` (the network and recipe of ``_advection_unet.py``)
on every window of the shared MeteoSwiss, KNMI and BOM events (the last 20 %
of each event's windows validate: the weights kept are those of the epoch
with the best validation CSI at 1 mm/h, or the starting weights, which
return the optical-flow forecast, if no epoch beat them), for ``--budget``
CPU seconds on one thread, and writes the checkpoint (weights only, SHA-256
checked) to ``xnowcast/models/neural/weights/advection-unet.pt``. Deterministic
for a given budget on one machine: the seed is fixed, but where a CPU budget
ends depends on the machine's speed. The model card is in docs/neural.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch
from _advection_unet import EVENTS, ROOT, load, machine, make_trainer
from _docs import write_section

from xnowcast.models.neural.advection import PRETRAINED
from xnowcast.training import read_metadata

OUT = ROOT / "xnowcast" / "models" / "neural" / "weights" / PRETRAINED
DOC = ROOT / "docs" / "neural.md"


def card(path: Path) -> str:
    """The model card of a checkpoint, from its metadata (Markdown)."""
    meta = read_metadata(path)
    tr = meta["training"]
    cfg, budget, base = tr["config"], tr["budget"], tr.get("baseline") or {}
    metrics = meta["metrics"]
    cubes = tr["data"]["train"]["cubes"]
    sources = tr["data"]["sources"]["train"]
    data = "; ".join(
        f"{Path(src).name if '/' in src else src}: {c['shape'][1]} x {c['shape'][2]} px, "
        f"{c['time_start'][:16]} to {c['time_end'][11:16]}, "
        f"{pd.Timedelta(c['time_step']).total_seconds() / 60:g} min steps, "
        f"{c['n_windows']} training windows"
        for c, src in zip(cubes, sources)
    )
    best = tr["best_epoch"]
    lines = [
        f"- **Network**: `advection-unet` {json.dumps(meta['model_params'])}, "
        f"{meta['n_in']} -> {meta['n_out']} frames, transform `{meta['transform']['name']}`; "
        f"{Path(path).stat().st_size / 2**20:.2f} MiB, SHA-256 checked on load, read with "
        "`torch.load(weights_only=True)`.",
        f"- **Data**: {data}. The last {cfg['val_split']:.0%} of each event's windows validate "
        f"({tr['data']['val']['n_windows']} windows, not trained on). Time step of the training "
        f"data: {meta['time_step'] or 'mixed (5 and 6 min)'}.",
        f"- **Budget**: {budget['cpu_seconds']:.0f} CPU seconds of the training process "
        "(all threads, `time.process_time`) "
        f"(`time_limit={cfg['time_limit']:g}`, `budget_clock='{budget['clock']}'`; "
        f"{budget['wall_seconds']:.0f} wall seconds on a shared, loaded 2-core machine), "
        f"{budget['steps']} optimizer steps, {budget['samples']} samples of "
        f"{cfg['crop']} x {cfg['crop']} px (batch {cfg['batch_size']}, Adam {cfg['lr']:g}, "
        f"loss {cfg['loss']}"
        + (
            f" at {', '.join(f'{t:g}' for t in cfg['loss_thresholds'])} mm/h"
            if any(k in cfg["loss"] for k in ("csi", "fss")) and cfg.get("loss_thresholds")
            else ""
        )
        + f"), plus {tr['data'].get('prepare_cpu_seconds', 0):.0f} CPU s "
        "to prepare the extrapolations (not budgeted; less when `--cache-dir` holds them "
        "from an earlier run). All lead times trained "
        f"(`leads_trained={meta['leads_trained']}`).",
        f"- **Validation** (CSI at {cfg['score_threshold']:g} mm/h, pooled over windows and "
        f"leads, rainiest {cfg['crop']} px crop of each window): the starting weights (the "
        f"optical-flow forecast) score {base.get('val_csi', float('nan')):.4f} (FSS "
        f"{base.get('val_fss', float('nan')):.4f}); the weights kept are those of epoch "
        f"{best}"
        + (
            " (the starting weights: no epoch beat the optical-flow forecast)"
            if best == 0
            else f", CSI {metrics.get('best_val_csi', float('nan')):.4f} "
            f"(FSS {metrics.get('best_val_fss', float('nan')):.4f})"
        )
        + f" of {tr['epochs_run']} epochs.",
        "- **Command**: `python benchmarks/train_advection_unet.py "
        f"--budget {cfg['time_limit']:g} --overwrite`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=200.0, help="CPU seconds of training")
    parser.add_argument("--out", default=str(OUT), help="checkpoint to write")
    parser.add_argument("--cache-dir", default=None, help="keep the extrapolations here")
    parser.add_argument("--log-dir", default=None, help="metrics.csv here")
    parser.add_argument("--overwrite", action="store_true", help="replace --out")
    parser.add_argument("--card", action="store_true", help="write the model card of --out")
    args = parser.parse_args(argv)
    if args.card:
        text = card(Path(args.out))
        print(text)
        write_section(DOC, "advection_unet_card", text)
        return
    torch.set_num_threads(1)
    cubes = [load(e) for e in EVENTS]
    trainer = make_trainer(
        args.budget, cache_dir=args.cache_dir, log_dir=args.log_dir, overwrite=args.overwrite
    )
    trainer.check_outputs(args.out)
    trainer.fit(cubes)
    trainer.save(args.out, training_state=False, overwrite=args.overwrite)
    last = trainer.history.iloc[-1]
    print(
        json.dumps(
            {
                "out": args.out,
                "steps": int(last.steps),
                "samples": int(last.samples),
                "cpu_s": float(last.cpu_total),
                "wall_s": float(last.wall_total),
                "baseline": trainer.baseline,
                "best_epoch": trainer.best_epoch,
                "machine": machine(),
            },
            default=str,
        )
    )
    print(trainer.history.to_string())


if __name__ == "__main__":
    main()
