"""The optical-flow default on a torch device against the compiled CPU path, same windows.

For every window of the MeteoSwiss cube (640 x 710, 12 -> 24) the default
``model="optical-flow"`` forecast (scale-aware cascade) is made twice from the
same motion: the extrapolation on the CPU kernels (numba) and on ``--device``
(:mod:`xnowcast.extrapolation.accelerated`). Reported: extrapolations per second
(wall; the GPU is synchronised before each clock reading), CPU seconds of the
process, the largest difference between the two paths and the share of pixels
equal to float32 precision, and the device's peak memory.

    python benchmarks/bench_gpu_extrapolation.py                 # CUDA when torch sees it
    python benchmarks/bench_gpu_extrapolation.py --device cpu    # the torch path on the CPU

Writes the table into docs/optical-flow.md (section ``gpu``) unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from xnowcast import get_model

ROOT = Path(__file__).resolve().parents[1]
CUBE = ROOT.parent / "shared" / "data" / "radar" / "mch-20150515.nc"


def windows(n_windows: int) -> np.ndarray:
    """``(n, 12, y, x)`` float32 windows of the MeteoSwiss cube, one per frame step."""
    cube = xr.open_dataset(CUBE)["precip_intensity"].astype("float32").values
    return np.stack([cube[i : i + 12] for i in range(n_windows)])


def clock(device: torch.device | None) -> float:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed(model, frames, flow, device) -> tuple[np.ndarray, float, float]:
    """One extrapolation of ``frames`` along ``flow``; wall and CPU seconds."""
    from xnowcast.extrapolation.cascade import extrapolate_cascade
    from xnowcast.transforms import get_transform

    cpu, wall = time.process_time(), clock(device)
    out = extrapolate_cascade(
        frames,
        flow,
        model.n_out,
        transform=get_transform(model.transform),
        fill=model.fill,
        interpolation=model.interpolation,
        device=device,
        **model.extrapolation_kwargs,
    )
    return out, clock(device) - wall, time.process_time() - cpu


def run(device: torch.device, n_windows: int) -> dict:
    model = get_model("optical-flow")
    data = windows(n_windows)
    flows = [model.motion(w) for w in data]
    for path in (None, device):  # compile the kernels, warm the device
        timed(model, data[0], flows[0], path)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rows: dict[str, list] = {"cpu": [], "device": [], "diff": [], "equal": []}
    for frames, flow in zip(data, flows):
        ref, wall_c, cpu_c = timed(model, frames, flow, None)
        got, wall_d, cpu_d = timed(model, frames, flow, device)
        rows["cpu"].append((wall_c, cpu_c))
        rows["device"].append((wall_d, cpu_d))
        ok = ~np.isnan(ref)
        diff = np.abs(got - ref)[ok]
        rows["diff"].append(float(diff.max()))
        rows["equal"].append(float(np.mean(diff <= 1e-4 * np.maximum(np.abs(ref[ok]), 1))))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"rows": rows, "peak_gib": peak, "shape": data.shape}


def table(result: dict, device: torch.device) -> str:
    rows = result["rows"]
    wall_c, cpu_c = np.median(rows["cpu"], axis=0)
    wall_d, cpu_d = np.median(rows["device"], axis=0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (torch)"
    peak = "n/a" if result["peak_gib"] is None else f"{result['peak_gib']:.2f} GiB"
    n, _, ny, nx = result["shape"]
    return "\n".join(
        [
            f"{n} windows of {ny} x {nx}, 24 lead times, default cascade, median per window; "
            f"device: {name}; machine load {os.getloadavg()[0]:.1f} (1-min average).",
            "",
            "| path | extrapolations/s (wall) | CPU s per window |",
            "| --- | --- | --- |",
            f"| compiled CPU kernels (numba) | {1 / wall_c:.2f} | {cpu_c:.3f} |",
            f"| torch on {device} | {1 / wall_d:.2f} | {cpu_d:.3f} |",
            "",
            f"Largest difference between the paths: {max(rows['diff']):.2g} mm/h; pixels equal "
            f"to float32 precision: {100 * min(rows['equal']):.2f} % (worst window). Peak "
            f"device memory: {peak}.",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="torch device (auto: CUDA if present)")
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    text = table(run(device, args.windows), device)
    print(text)
    if not args.no_docs:
        from _docs import write_section

        write_section(ROOT / "docs" / "optical-flow.md", f"gpu-{device.type}", text)


if __name__ == "__main__":
    main()
