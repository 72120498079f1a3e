"""Neural nowcasting benchmarks: throughput, a learning check and real radar skill.

    python benchmarks/bench_neural.py                      # everything (~30 min on 2 CPU cores)
    python benchmarks/bench_neural.py --only throughput    # or learning, radar, openstl
    python benchmarks/bench_neural.py --budget 120         # training seconds per model (radar)

Sections:

throughput
    Windows per second of inference (12 -> 24 frames, 128x128) and training
    steps per second (batch 8, 64x64 crops) of each model in its benchmark
    configuration, with the device, dtype and (on CUDA) peak GPU memory
    (best of several calls; on a CPU per core: one thread, CPU time).
openstl
    ConvLSTM in the size of OpenSTL's ConvLSTM-S (4 layers x 128 hidden, 5x5
    kernels, patch 4, 64x64, 10 -> 10): sequences per second, fp32 and (on
    CUDA) bf16. OpenSTL reports 113 sequences/s on a V100.
learning
    Moving squares (the Keras ConvLSTM example): next-frame MSE of a ConvLSTM
    per epoch against the persistence MSE on held-out movies.
radar
    Each model trained (same budget each) on crops of the MeteoSwiss and KNMI
    cubes, then 12 -> 24 forecasts of the BOM archive (central 256x256, rain
    rate in mm/h) scored per lead time: MSE, CSI at 1 mm/h and FSS (1 mm/h,
    16 px) against persistence and the optical-flow model.

Results are printed as Markdown tables and written into docs/neural.md
between the ``bench_neural:<section>`` markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

import xnowcast
from xnowcast.datasets import moving_squares
from xnowcast.models import get_model
from xnowcast.training import Trainer
from xnowcast.verification import verify

ROOT = Path(__file__).resolve().parents[1]
RADAR = ROOT.parent / "shared" / "data" / "radar"
DOC = ROOT / "docs" / "neural.md"

#: The benchmark configuration of each model (small enough for CPU training).
CONFIGS = {
    "conv3d": {"filters": [16, 16], "residual": True},
    "convlstm": {"hidden": [32, 32], "patch_size": 4, "residual": True},
    "conv-ed-lstm": {"hidden": [16, 16, 16], "patch_size": 2, "residual": True},
    "unet": {"depth": 3, "filters": 16, "residual": True},
}


def device_info() -> tuple[torch.device, str]:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(0)
    else:
        cpu = platform.processor() or platform.machine()
        n = torch.get_num_threads()
        name = f"CPU ({cpu}, {n} thread{'s' if n != 1 else ''}, {os.cpu_count()} cores)"
    return dev, name


def _one_cpu_thread(dev: torch.device) -> int:
    """Time CPU runs on one thread (per-core numbers); returns the old thread count."""
    before = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    return before


def write_section(name: str, text: str) -> None:
    start, end = f"<!-- bench_neural:{name}:start -->", f"<!-- bench_neural:{name}:end -->"
    doc = DOC.read_text()
    if start not in doc:
        print(f"(no {start} marker in {DOC}; table not written)")
        return
    head, rest = doc.split(start, 1)
    tail = rest.split(end, 1)[1]
    DOC.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def markdown(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in df.iterrows():
        cells = [floatfmt.format(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rate(func, min_seconds: float, sync, clock) -> float:
    """Calls per second of the fastest call (at least 3 calls and ``min_seconds``).

    The best call, not the mean, timed with ``clock``: on a CPU that is shared
    with other jobs, the CPU time of this process (one thread) rather than the
    wall time, which measures the neighbours as much as the code.
    """
    func()  # warm-up
    sync()
    best, n, start = np.inf, 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < min_seconds:
        t0 = clock()
        func()
        sync()
        best = min(best, clock() - t0)
        n += 1
    return 1.0 / best


def measure(
    net: torch.nn.Module,
    dev: torch.device,
    shape_in,
    n_out: int,
    batch: int,
    dtype: torch.dtype | None,
    seconds: float,
) -> dict:
    """Inference samples/s and training steps/s of ``net``."""
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    clock = time.perf_counter if dev.type == "cuda" else time.process_time
    net = net.to(dev)
    x = torch.randn(batch, *shape_in, device=dev)
    y = torch.randn(batch, n_out, *shape_in[1:], device=dev)

    def ctx():
        if dtype is None:
            return torch.autocast(dev.type, enabled=False)
        return torch.autocast(dev.type, dtype=dtype)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    net.eval()

    def infer():
        with torch.inference_mode(), ctx():
            net(x)

    inf = _rate(infer, seconds, sync, clock) * batch
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        with ctx():
            out = net(x)
        ((out.float() - y) ** 2).mean().backward()
        opt.step()

    steps = _rate(step, seconds, sync, clock)
    peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan")
    return {
        "inference samples/s": inf,
        "train steps/s": steps,
        "train samples/s": steps * batch,
        "peak GPU GiB": peak,
    }


#: Throughput rows besides the benchmark configurations: the Trainer's default U-Net and
#: the advection-unet network (its input: 24 extrapolated leads + 4 frames).
THROUGHPUT_EXTRA = {
    "unet (Trainer default)": ("unet", {}),
    "advection-unet (network only)": ("advection-unet", {"weights": None}),
}


def bench_throughput(seconds: float) -> str:
    dev, _ = device_info()
    threads = _one_cpu_thread(dev)
    _, name = device_info()
    dtypes = [("fp32", None)] + ([("bf16", torch.bfloat16)] if dev.type == "cuda" else [])
    rows = []
    runs = {f"{m} (benchmark)": (m, p) for m, p in CONFIGS.items()} | THROUGHPUT_EXTRA
    for label_model, (model, params) in runs.items():
        net = get_model(model, n_in=12, n_out=24, **params).module
        n_par = sum(p.numel() for p in net.parameters())
        channels = getattr(net, "in_channels", 12)
        cfg = net.get_config()
        keys = [k for k in params if k in cfg] or [
            k for k in ("frames", "depth", "filters") if k in cfg
        ]
        config = {k: cfg[k] for k in keys}
        for label, dtype in dtypes:
            inf = measure(net, dev, (channels, 128, 128), 24, 4, dtype, seconds)
            tr = measure(net, dev, (channels, 64, 64), 24, 8, dtype, seconds)
            rows.append(
                {
                    "model": label_model,
                    "configuration": ", ".join(f"{k}={v}" for k, v in config.items()),
                    "parameters": f"{n_par:,}",
                    "dtype": label,
                    "inference windows/s (128 px)": inf["inference samples/s"],
                    "train steps/s (8 x 64 px)": tr["train steps/s"],
                    "peak GPU GiB": max(inf["peak GPU GiB"], tr["peak GPU GiB"]),
                }
            )
    torch.set_num_threads(threads)
    df = pd.DataFrame(rows)
    note = ""
    if dev.type != "cuda":
        df = df.drop(columns="peak GPU GiB")
        note = " Per CPU core: one thread, timed in CPU time of the process (best call)."
    return (
        f"Device: {name}, PyTorch {torch.__version__}; 12 -> 24 frames.{note} Rows marked "
        "(benchmark) are the small `CONFIGS` of this script, trained in the radar section; "
        "`unet (Trainer default)` is `Trainer(model='unet')` as built; advection-unet is its "
        "network alone (the optical-flow extrapolation it needs is not included)."
        "\n\n" + markdown(df)
    )


def bench_openstl(seconds: float) -> str:
    dev, _ = device_info()
    threads = _one_cpu_thread(dev)
    _, name = device_info()
    from xnowcast.models.neural.convlstm import ConvLSTM

    # OpenSTL's ConvLSTM is one stack fed its own frames: the "stacked" variant.
    net = ConvLSTM(10, 10, hidden=[128] * 4, kernel_size=5, patch_size=4, variant="stacked")
    batch = 16 if dev.type == "cuda" else 2
    dtypes = [("fp32", None)] + ([("bf16", torch.bfloat16)] if dev.type == "cuda" else [])
    rows = []
    for label, dtype in dtypes:
        r = measure(net, dev, (10, 64, 64), 10, batch, dtype, seconds)
        rows.append(
            {
                "dtype": label,
                "batch": batch,
                "inference sequences/s": r["inference samples/s"],
                "training sequences/s": r["train samples/s"],
                "peak GPU GiB": r["peak GPU GiB"],
            }
        )
    torch.set_num_threads(threads)
    df = pd.DataFrame(rows)
    if dev.type != "cuda":
        df = df.drop(columns="peak GPU GiB")
    n_par = sum(p.numel() for p in net.parameters())
    note = (
        ""
        if dev.type == "cuda"
        else "\n\nNo GPU was available for this run: the H200 target (1,500 sequences/s in bf16) is "
        "not measured here; rerun this section on a CUDA machine."
    )
    return (
        f"Device: {name}; ConvLSTM-S size ({n_par / 1e6:.1f} M parameters), 64x64, 10 -> 10. "
        "OpenSTL: 113 sequences/s on a V100.\n\n" + markdown(df) + note
    )


def _squares_cube(n_samples: int, seed: int) -> xr.DataArray:
    movies = moving_squares(n_samples=n_samples, n_frames=15, size=40, seed=seed).clean_movies
    n = movies.sizes["sample"] * movies.sizes["time"]
    cube = movies.stack(frame=("sample", "time")).transpose("frame", "y", "x").values
    times = pd.date_range("2000-01-01", periods=n, freq="5min")
    seq = np.repeat(np.arange(movies.sizes["sample"]), movies.sizes["time"])
    return xr.DataArray(
        cube,
        dims=("time", "y", "x"),
        coords={
            "time": times,
            "y": np.arange(40),
            "x": np.arange(40),
            "sequence_id": ("time", seq),
        },
        name="squares",
    )


def bench_learning(budget: float) -> str:
    train, val = _squares_cube(200, 0), _squares_cube(40, 1)
    n_in = 6
    wins = xnowcast.windows(val, n_in=n_in, n_out=1)[:128]  # the windows validation sees
    persist = np.mean(
        [float(((w.targets.values[0] - w.inputs.values[-1]) ** 2).mean()) for w in wins]
    )
    trainer = Trainer(
        "convlstm",
        {"hidden": [16, 16], "patch_size": 2},
        n_in=n_in,
        n_out=1,
        transform="identity",
        loss="mse",
        lr=3e-3,
        epochs=1000,
        batch_size=16,
        crop=None,
        flips=False,
        steps_per_epoch=20,
        val_steps=8,
        time_limit=budget,
        progress=False,
        seed=0,
    )
    start = time.perf_counter()
    trainer.fit(train, val)
    elapsed = time.perf_counter() - start
    hist = trainer.history
    hist["elapsed s"] = hist.seconds.cumsum()
    df = pd.DataFrame(
        {
            "epoch": hist.epoch,
            "elapsed s": hist["elapsed s"].round(0),
            "train MSE": hist.train_loss,
            "val MSE": hist.val_loss,
            "val MSE / persistence": hist.val_loss / persist,
        }
    )
    shown = _curve_rows(len(df))
    note = (
        ""
        if len(shown) == len(df)
        else (
            f"\n\n{len(shown)} of the {len(df)} epochs shown (the first ones, then spaced out, and "
            "the last)."
        )
    )
    return (
        f"ConvLSTM (2 x 16 hidden, patch 2), next frame from {n_in} frames, 200 training "
        f"movies ({len(trainer._dataset(train, True))} windows; an epoch here is 20 batches "
        "of 16), validated on 128 windows of 40 held-out movies; persistence "
        f"MSE {persist:.4f}; {elapsed:.0f} s on {device_info()[1]}.\n\n"
        + markdown(df.iloc[shown])
        + note
    )


def _curve_rows(n: int, first: int = 5, most: int = 16) -> list[int]:
    """Rows of an ``n``-epoch curve to show: the first few, then geometrically spaced, the last."""
    if n <= most:
        return list(range(n))
    rest = np.unique(np.geomspace(first, n - 1, most - first).round().astype(int))
    return sorted(set(range(first)) | set(rest.tolist()) | {n - 1})


def _bom_mmh() -> xr.DataArray:
    cube = xnowcast.open_archive(str(RADAR / "bom-2-20180616" / "*.nc"))
    cube = cube.isel(y=slice(128, 384), x=slice(128, 384)).load()
    # kg m-2 accumulated over each 6-minute scan -> mm/h (1 kg m-2 = 1 mm)
    out = (cube * 10.0).astype("float32")
    out.attrs = {**cube.attrs, "units": "mm h-1"}
    return out.rename("rain_rate")


def _scores(fc: xr.DataArray, obs: xr.DataArray) -> xr.Dataset:
    return verify(
        fc,
        obs,
        ["mse", "csi", "fss"],
        thresholds=[1.0],
        scales=[16],
        mean=True,
        reference="persistence",
    ).compute()


def bench_radar(budget: float, models: list[str]) -> str:
    train = [
        xnowcast.open_archive(str(RADAR / "mch-20150515.nc")),
        xnowcast.open_archive(str(RADAR / "knmi-201008.nc")),
    ]
    obs = _bom_mmh()
    leads = [1, 3, 6, 12, 18, 24]
    results: dict[str, xr.Dataset] = {}
    budget_rows = []
    for name in models:
        params = CONFIGS[name]
        trainer = Trainer(
            name,
            params,
            n_in=12,
            n_out=24,
            transform="log",
            loss="mse",
            lr=1e-3,
            epochs=1000,
            batch_size=8,
            crop=64,
            min_wet_fraction=0.1,
            curriculum={"start": 6, "epochs": 6},
            grad_clip=1.0,
            time_limit=budget,
            progress=False,
            seed=0,
        )
        start = time.perf_counter()
        trainer.fit(train)
        spent = time.perf_counter() - start
        model = trainer.model
        model.batch_size = 4
        start = time.perf_counter()
        fc = xnowcast.forecast(obs, model=model, init_times="all").compute()
        infer = time.perf_counter() - start
        results[name] = _scores(fc, obs)
        h = trainer.history
        budget_rows.append(
            {
                "model": name,
                "epochs": len(h),
                "windows seen": int(len(h) * len(trainer._dataset(train, True))),
                "train s": round(spent),
                "final train loss": float(h.train_loss.iloc[-1]),
                "BOM forecasts": fc.sizes["init_time"],
                "inference s": round(infer),
            }
        )
        print(f"{name}: {len(h)} epochs in {spent:.0f} s")
    start = time.perf_counter()
    fc = xnowcast.forecast(obs, model="optical-flow", init_times="all").compute()
    results["optical-flow"] = _scores(fc, obs)
    budget_rows.append(
        {
            "model": "optical-flow",
            "epochs": 0,
            "windows seen": 0,
            "train s": 0,
            "final train loss": float("nan"),
            "BOM forecasts": fc.sizes["init_time"],
            "inference s": round(time.perf_counter() - start),
        }
    )
    first = next(iter(results.values()))

    def table(metric: str, select) -> pd.DataFrame:
        rows = {"persistence": select(first[f"{metric}_persistence"])}
        rows.update({k: select(v[metric]) for k, v in results.items()})
        df = pd.DataFrame(rows).T
        df.columns = [f"+{int(lt / np.timedelta64(1, 'm'))} min" for lt in first.lead_time.values]
        return df.iloc[:, [lt - 1 for lt in leads]]

    mse = table("mse", lambda da: da.values)
    csi = table("csi", lambda da: da.sel(threshold=1.0).values)
    fss = table("fss", lambda da: da.sel(threshold=1.0, scale=16).values)
    learned = list(models)
    full_mse = table("mse", lambda da: da.values)
    full_mse.columns = range(len(full_mse.columns))
    best = min(learned, key=lambda m: float(np.nanmean(full_mse.loc[m])))
    beats = bool((full_mse.loc[best] < full_mse.loc["persistence"]).all())
    parts = [
        "Trained on MeteoSwiss (5 min) + KNMI (5 min) 64x64 crops, log rain "
        f"rate, MSE loss, {budget:.0f} s per model on {device_info()[1]}; evaluated 12 -> 24 on "
        f"BOM (6 min, central 256x256, mm/h), scores pooled over "
        f"{budget_rows[-1]['BOM forecasts']} init times.",
        "",
        "Training budget:",
        "",
        markdown(pd.DataFrame(budget_rows)),
        "",
        "MSE (mm/h)^2 by lead time (lower is better):",
        "",
        markdown(mse.reset_index(names="model")),
        "",
        "CSI at 1 mm/h:",
        "",
        markdown(csi.reset_index(names="model")),
        "",
        "FSS at 1 mm/h, 16 px (8 km):",
        "",
        markdown(fss.reset_index(names="model")),
        "",
        f"Best learned model by mean MSE: **{best}**; beats persistence on MSE at every one of "
        f"the 24 lead times: **{'yes' if beats else 'no'}**.",
    ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default="throughput,openstl,learning,radar", help="comma-separated sections"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=240.0,
        help="training seconds per model in the radar section (default 240)",
    )
    parser.add_argument(
        "--learning-budget",
        type=float,
        default=150.0,
        help="training seconds of the moving-squares check (default 150)",
    )
    parser.add_argument(
        "--models",
        default=",".join(CONFIGS),
        help="comma-separated models of the radar section (default: all)",
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="seconds per throughput measurement (default 3)"
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    for section in sections:
        start = time.perf_counter()
        if section == "throughput":
            text = bench_throughput(args.seconds)
        elif section == "openstl":
            text = bench_openstl(args.seconds)
        elif section == "learning":
            text = bench_learning(args.learning_budget)
        elif section == "radar":
            if not RADAR.is_dir():
                print(f"skipping radar: no data at {RADAR}")
                continue
            text = bench_radar(args.budget, [m.strip() for m in args.models.split(",")])
        else:
            raise SystemExit(f"unknown section {section!r}")
        command = f"python benchmarks/bench_neural.py --only {section}"
        if section == "radar":
            command += f" --budget {args.budget:g} --models {args.models}"
        if section == "learning":
            command += f" --learning-budget {args.learning_budget:g}"
        took = time.perf_counter() - start
        text += f"\n\n_Command: `{command}`; the section took {took:.0f} s._"
        print(f"\n## {section}\n\n{text}\n", flush=True)
        write_section(section, text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
