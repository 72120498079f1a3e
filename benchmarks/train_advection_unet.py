"""Train the advection-unet weights shipped with xnowcast, on all the shared radar.

    python benchmarks/train_advection_unet.py --budget 900 --overwrite

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

import torch
from _advection_unet import EVENTS, ROOT, load, machine, make_trainer

from xnowcast.models.neural.advection import PRETRAINED

OUT = ROOT / "xnowcast" / "models" / "neural" / "weights" / PRETRAINED


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=900.0, help="CPU seconds of training")
    parser.add_argument("--out", default=str(OUT), help="checkpoint to write")
    parser.add_argument("--cache-dir", default=None, help="keep the extrapolations here")
    parser.add_argument("--log-dir", default=None, help="metrics.csv here")
    parser.add_argument("--overwrite", action="store_true", help="replace --out")
    args = parser.parse_args(argv)
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
