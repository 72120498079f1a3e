"""Semi-Lagrangian advection: the fused kernel against the previous OpenCV implementation.

    python benchmarks/bench_advection.py            # writes docs/benchmarks.md
    python benchmarks/bench_advection.py --no-write

On the MeteoSwiss field of 2015-05-15 16:30 (``precip_intensity``, mm/h, NaN
outside radar range; 640 x 700, padded with NaN rows to 700 x 700) and its
default Lucas-Kanade motion, this times 24 lead times of

* ``old``: the previous implementation, kept below as :func:`opencv_extrapolate`
  (per lead: coarse trajectory step, ``cv2.resize`` of the displacements,
  ``cv2.remap`` of the source, ``cv2.remap`` of a validity mask, outside masking);
* ``new``: :func:`xnowcast.extrapolation.extrapolate` (one numba pass per lead),

in CPU time (``time.process_time``, all threads) and wall time, best of three,
side by side in one process; then the same on the field resized to 1400 ...
3500 pixels square (motion scaled with it) to show how time grows with pixels,
with the default motion (:func:`xnowcast.motion.estimate_motion`) of the three
resized frames beside it (its frame-pair memo cleared before each run);
then the per-lead-source form (24 source frames) and :func:`advect`. The
compiled kernels are warmed up before timing.

Resizing makes the pixels smaller: the motion grows with the grid (15 px per
step at 3500 pixels where it was 3), and so does the reach of each trajectory.
A continental composite is a larger domain at a radar's resolution, with the
motion of a radar's pixels. The second table times that: the three frames and
their motion repeated side by side up to 3500 x 3500 (``numpy.pad``, ``wrap``),
the motion in pixels per step unchanged, with ``extrapolate``, the motion
anew, and the default model's whole forecast (the cascade, 24 lead times).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import xarray as xr
from _docs import write_section

from xnowcast.extrapolation import advect, extrapolate
from xnowcast.models import get_model, run_model
from xnowcast.motion import estimate_motion
from xnowcast.motion.lucas_kanade import TRACKS

ROOT = Path(__file__).resolve().parents[1]
CUBE = ROOT.parent / "shared" / "data" / "radar" / "mch-20150515.nc"
DOC = ROOT / "docs" / "benchmarks.md"
N_STEPS, SIZES = 24, (700, 1400, 2100, 2800, 3500)


# ------------------------------------------------------ the previous implementation
def _fill_nearest(frame, missing):
    _, labels = cv2.distanceTransformWithLabels(
        missing.astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    return np.concatenate([np.zeros(1, np.float32), frame[~missing]])[labels]


def _maps(flow, n_steps, step=4):
    ny, nx = flow.shape[1:]
    grid_x, grid_y = np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32))
    map_x, map_y = grid_x.copy(), grid_y.copy()
    u, v = np.ascontiguousarray(flow[0]), np.ascontiguousarray(flow[1])
    mx, my = -(-nx // step), -(-ny // step)
    node_x = (np.arange(mx, dtype=np.float32) + 0.5) * np.float32(nx / mx) - 0.5
    node_y = (np.arange(my, dtype=np.float32) + 0.5) * np.float32(ny / my) - 0.5
    start_x, start_y = np.meshgrid(node_x, node_y)
    pos_x, pos_y = start_x.copy(), start_y.copy()
    lin, rep = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE
    for _ in range(n_steps):
        du = cv2.remap(u, pos_x, pos_y, lin, borderMode=rep)
        dv = cv2.remap(v, pos_x, pos_y, lin, borderMode=rep)
        hx, hy = pos_x - 0.5 * du, pos_y - 0.5 * dv
        pos_x -= cv2.remap(u, hx, hy, lin, borderMode=rep)
        pos_y -= cv2.remap(v, hx, hy, lin, borderMode=rep)
        np.add(grid_x, cv2.resize(pos_x - start_x, (nx, ny), interpolation=lin), out=map_x)
        np.add(grid_y, cv2.resize(pos_y - start_y, (nx, ny), interpolation=lin), out=map_y)
        yield map_x, map_y


def opencv_extrapolate(frame, flow, n_steps):
    """The implementation before the fused kernel (linear, NaN fill, step 4)."""
    ny, nx = frame.shape
    out = np.empty((n_steps, ny, nx), np.float32)
    missing = np.isnan(frame)
    source, valid = _fill_nearest(frame, missing), (~missing).astype(np.uint8)
    rep = cv2.BORDER_REPLICATE
    for k, (map_x, map_y) in enumerate(_maps(flow, n_steps)):
        cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, dst=out[k], borderMode=rep)
        hit = cv2.remap(valid, map_x, map_y, cv2.INTER_NEAREST, borderMode=rep)
        np.copyto(out[k], np.float32(np.nan), where=hit == 0)
        outside = (map_x < -0.5) | (map_x > nx - 0.5) | (map_y < -0.5) | (map_y > ny - 0.5)
        np.copyto(out[k], np.float32(np.nan), where=outside)
    return out


# ------------------------------------------------------------------------ timing
def timed(fn, repeat=3):
    """Best CPU and wall seconds of ``repeat`` calls, and the last result."""
    cpu, wall, result = [], [], None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall), result


def field_and_flow():
    """The frames of 16:20-16:30 padded to 700 x 700 and their default motion."""
    cube = xr.open_dataset(CUBE)["precip_intensity"]
    end = int(np.argmin(np.abs(cube.time.values - np.datetime64("2015-05-15T16:30"))))
    frames = cube.isel(time=slice(end - 2, end + 1)).values.astype(np.float32)
    pad = 700 - frames.shape[1]
    frames = np.pad(frames, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)), constant_values=np.nan)[
        :, :700, :700
    ]
    flow = estimate_motion(frames)
    return frames, flow, pd.Timestamp(cube.time.values[end])


def scaled(frames, flow, size):
    """The frames (nearest) and the flow (scaled with the grid) resized to ``size``."""
    nx = frames.shape[-1]
    big = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_NEAREST) for f in frames])
    f = np.stack([cv2.resize(c, (size, size)) for c in flow]) * np.float32(size / nx)
    return big, np.ascontiguousarray(f, np.float32)


def tiled(frames, flow, size):
    """The frames and the flow repeated side by side (``wrap``) to ``size`` x ``size``."""
    ny, nx = frames.shape[1:]
    pad = ((0, 0), (0, size - ny), (0, size - nx))
    big = np.pad(frames, pad, mode="wrap")
    return big, np.ascontiguousarray(np.pad(flow, pad, mode="wrap"), np.float32)


def domain_rows(frames, flow, sizes):
    """CPU seconds of ``extrapolate``, the motion and the default forecast per domain size."""
    model = get_model("optical-flow", n_in=len(frames), n_out=N_STEPS)
    one_thread = model.with_settings(threads=1)
    rows = []
    for size in sizes:
        stack, w = tiled(frames, flow, size)
        repeat = 3 if size <= 1400 else 1
        ext_cpu, _, _ = timed(lambda s=stack, w=w: extrapolate(s[-1], w, N_STEPS), repeat)
        motion_cpu, _, _ = timed(lambda s=stack: fresh_motion(s), repeat)
        TRACKS.clear()
        fc_cpu, _, _ = timed(lambda s=stack: run_model(model, s[None]), repeat)
        TRACKS.clear()
        serial_cpu, _, _ = timed(lambda s=stack: run_model(one_thread, s[None]), repeat)
        rows.append((size, ext_cpu, motion_cpu, fc_cpu, serial_cpu))
        print(rows[-1], flush=True)
    return rows


def domain_table(rows):
    """The markdown of :func:`domain_rows`, per pixel (and lead) beside the seconds."""
    lines = [
        "| pixels | extrapolate CPU s | ns / pixel / lead | motion CPU s | ns / pixel | "
        "default forecast CPU s | ns / pixel / lead | the same, `threads=1` | ns / pixel / lead |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, ext, motion, fc, serial in rows:
        px = size * size
        lines.append(
            f"| {size} x {size} | {ext:.3f} | {1e9 * ext / px / N_STEPS:.2f} | {motion:.3f} | "
            f"{1e9 * motion / px:.0f} | {fc:.3f} | {1e9 * fc / px / N_STEPS:.2f} | "
            f"{serial:.3f} | {1e9 * serial / px / N_STEPS:.2f} |"
        )
    return lines


def fresh_motion(frames):
    """The default motion of ``frames``, its frame pairs tracked anew (memo cleared)."""
    TRACKS.clear()
    return estimate_motion(frames)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="do not update the docs")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args(argv)

    frames, flow, when = field_and_flow()
    frame = frames[-1]
    extrapolate(frame[:64, :64], flow[:, :64, :64], 2)  # compile (or load) the kernels
    extrapolate(np.stack([frame[:64, :64]] * 2), flow[:, :64, :64], 2)
    print(
        f"field {when}: {frame.shape}, {np.isnan(frame).mean():.0%} missing, "
        f"median |motion| {np.median(np.hypot(*flow)):.2f} px/step"
    )
    rows = []
    for size in args.sizes:
        stack, w = (frames, flow) if size == 700 else scaled(frames, flow, size)
        f = stack[-1]
        repeat = 3 if size <= 1400 else 1
        motion_cpu, _, _ = timed(lambda s=stack: fresh_motion(s), repeat)
        old_cpu, old_wall, old = timed(lambda f=f, w=w: opencv_extrapolate(f, w, N_STEPS), repeat)
        new_cpu, new_wall, new = timed(lambda f=f, w=w: extrapolate(f, w, N_STEPS), repeat)
        both = np.isfinite(old) & np.isfinite(new)
        diff = float(np.abs(old - new)[both].max())
        nan_diff = float((np.isnan(old) != np.isnan(new)).mean())
        del old, new
        px = size * size * N_STEPS
        per_px = (1e9 * new_cpu / px, diff, nan_diff, motion_cpu, 1e9 * motion_cpu / size**2)
        rows.append((size, old_cpu, new_cpu, old_wall, new_wall, *per_px))
        print(rows[-1], flush=True)
    domains = domain_rows(frames, flow, args.sizes)
    leads = np.stack([frame] * N_STEPS)
    per_lead_cpu, _, _ = timed(lambda: extrapolate(leads, flow, N_STEPS))
    one_cpu, _, _ = timed(lambda: extrapolate(frame, flow, N_STEPS))
    adv_cpu, _, _ = timed(lambda: advect(frame, flow, 12), repeat=5)
    ext12_cpu, _, _ = timed(lambda: extrapolate(frame, flow, 12)[-1], repeat=5)

    lines = [
        f"MeteoSwiss {when:%Y-%m-%d %H:%M} (mm/h, NaN outside range, padded to 700 x 700), "
        f"its default Lucas-Kanade motion, {N_STEPS} lead times, linear interpolation; CPU "
        "seconds (`time.process_time`, all threads) and wall seconds, best of three (one "
        "run above 1400 px), old and new side by side in one process; 1-minute load average "
        f"of the machine at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:",
        "",
        "| pixels | old CPU s | new CPU s | CPU ratio | old wall s | new wall s | "
        "new CPU ns / pixel / lead | max abs diff (mm/h) | NaN mask differs | motion CPU s | "
        "motion CPU ns / pixel |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, oc, nc, ow, nw, ns, diff, nan_diff, mc, mns in rows:
        lines.append(
            f"| {size} x {size} | {oc:.3f} | {nc:.3f} | {oc / nc:.1f}x | {ow:.3f} | {nw:.3f} | "
            f"{ns:.2f} | {diff:.2g} | {nan_diff:.1e} | {mc:.3f} | {mns:.0f} |"
        )
    lines += [
        "",
        f"One source frame per lead time (`frame` of shape (24, 700, 700)): {per_lead_cpu:.3f} "
        f"CPU s, against {one_cpu:.3f} s for one frame. Aligning a frame 12 steps forward: "
        f"`advect(frame, flow, 12)` {1e3 * adv_cpu:.1f} ms, `extrapolate(frame, flow, 12)[-1]` "
        f"{1e3 * ext12_cpu:.1f} ms. The differences to the old implementation come from "
        "OpenCV's 1/32-pixel quantisation of `cv2.remap` coordinates, which the kernel does not "
        "have; it equals a plain float reference to 2e-4 (`tests/test_extrapolation.py`).",
        "",
        "Larger domains at the same resolution (the three frames and their motion repeated "
        "side by side, the motion in pixels per step unchanged; fresh output arrays, default "
        "run settings, the motion's frame-pair memo cleared before each run; best of three "
        "up to 1400 px, one run above):",
        "",
        *domain_table(domains),
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(DOC, "bench_advection", text)


if __name__ == "__main__":
    main()
