"""Benchmark of xnowcast.sequences and xnowcast.io.images.

Run ``python benchmarks/bench_sequences.py`` (add ``--no-docs`` to only print).
Measures, on the machine at hand:

* ``split`` of one million 10-minute timestamps (sorted and shuffled);
* ``rain_amount`` over a dask archive held in memory (frames per second);
* ``sequence_table`` + ``split_dataset`` on a year of 10-minute frames;
* ``open_image_sequence`` on a folder of generated colour PNGs.

The table is printed and written into ``docs/sequences.md`` between the
``<!-- bench_sequences:start -->`` and ``<!-- bench_sequences:end -->`` markers.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from xnowcast import sequences
from xnowcast.io.images import ColorLegend, open_image_sequence

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sequences.md"


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_split(rows: list) -> None:
    rng = np.random.default_rng(0)
    t = pd.date_range("2000-01-01", periods=1_100_000, freq="10min")
    t = t.delete(rng.choice(t.size, 100_000, replace=False))
    shuffled = t.values[rng.permutation(t.size)]
    rows.append(
        (
            "split, 1e6 sorted timestamps",
            f"{best_of(lambda: sequences.split(t)):.3f} s",
            f"{int(sequences.split(t)[-1]) + 1} sequences",
        )
    )
    rows.append(
        (
            "split, 1e6 shuffled timestamps",
            f"{best_of(lambda: sequences.split(shuffled)):.3f} s",
            "ids in caller's order",
        )
    )


def archive(n_frames: int, size: int, chunk: int, seed: int = 0) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    data = rng.gamma(0.3, 2.0, (n_frames, size, size)).astype("float32")
    data[:, :5, :5] = np.nan
    times = pd.date_range("2020-01-01", periods=n_frames, freq="10min")
    return xr.DataArray(
        da.from_array(data, chunks=(chunk, size, size)),
        dims=("time", "y", "x"),
        coords={"time": times},
    )


def bench_rain_amount(rows: list) -> None:
    n, size = 4000, 128
    cube = archive(n, size, chunk=100)
    mb = n * size * size * 4 / 1e6
    for method in ("fraction", "mean", "no_rain_count"):
        amount = sequences.rain_amount(cube, method=method)
        secs = best_of(amount.compute, repeat=2)
        rows.append(
            (
                f"rain_amount {method}, {n} x {size}x{size} dask",
                f"{secs:.2f} s",
                f"{n / secs:,.0f} frames/s, {mb / secs:,.0f} MB/s",
            )
        )


def bench_year(rows: list) -> None:
    n = 365 * 144
    rng = np.random.default_rng(1)
    cube = archive(n, 32, chunk=1000)
    keep = rng.random(n) > 0.02  # 2 % missing scans
    night = (cube.time.dt.hour >= 22).values | (cube.time.dt.hour < 5).values
    cube = cube.isel(time=keep & ~night)
    t0 = time.perf_counter()
    table = sequences.sequence_table(cube, max_gap="10min", min_length=10, min_mean_category=0)
    t_table = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = sequences.split_dataset(cube, table, seed=0)
    t_split = time.perf_counter() - t0
    summary = sequences.split_summary(table, parts)
    rows.append(
        (
            f"sequence_table, a year ({cube.sizes['time']:,} frames of 32x32)",
            f"{t_table:.2f} s",
            f"{table['sequence_id'].nunique():,} sequences kept",
        )
    )
    worst_tv = max(
        0.5
        * np.abs(
            summary.loc[
                k, [c for c in summary.columns if c.startswith("category_") and c[-1].isdigit()]
            ]
            - summary.loc[
                "all", [c for c in summary.columns if c.startswith("category_") and c[-1].isdigit()]
            ]
        ).sum()
        for k in ("train", "val", "test")
    )
    share = np.abs(summary["frame_fraction"].values[:3] - [0.7, 0.15, 0.15]).max()
    rows.append(
        (
            "split_dataset, the same year",
            f"{t_split:.2f} s",
            f"frame shares within {share:.3f}, category TV <= {worst_tv:.3f}",
        )
    )


def bench_images(rows: list) -> None:
    from PIL import Image

    colours = [(0, 200, 255), (0, 80, 255), (0, 180, 0), (255, 220, 0), (230, 0, 0)]
    legend = ColorLegend.from_pairs(list(zip(colours, [0.3, 1, 3, 10, 30])), units="mm/h")
    n, size = 200, 512
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        for _i, t in enumerate(pd.date_range("2021-06-01", periods=n, freq="10min")):
            img = np.full((size, size, 3), 190, np.uint8)
            level = rng.integers(0, 6, (size // 16, size // 16)).repeat(16, 0).repeat(16, 1)
            for k in range(1, 6):
                img[level == k] = colours[k - 1]
            Image.fromarray(img).save(os.path.join(folder, f"sri_{t:%Y%m%d%H%M}.png"))
            Image.fromarray(img).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(
                os.path.join(folder, f"pal_{t:%Y%m%d%H%M}.png")
            )
        pattern = os.path.join(folder, "sri_*.png")
        t_open = best_of(lambda: open_image_sequence(pattern), repeat=2)
        rows.append(
            (
                f"open_image_sequence, {n} PNGs {size}x{size} (headers checked)",
                f"{t_open:.2f} s",
                f"{n / t_open:,.0f} files/s",
            )
        )
        grey = open_image_sequence(pattern, size=(128, 128))
        secs = best_of(lambda: grey.compute(), repeat=2)
        rows.append(
            ("  decode + grey + resize to 128x128", f"{secs:.2f} s", f"{n / secs:,.0f} frames/s")
        )
        rain = open_image_sequence(pattern, size=(128, 128), colormap=legend)
        secs = best_of(lambda: rain.compute(), repeat=2)
        rows.append(
            (
                "  decode + colour legend + resize to 128x128 (RGB PNGs)",
                f"{secs:.2f} s",
                f"{n / secs:,.0f} frames/s",
            )
        )
        rain = open_image_sequence(
            os.path.join(folder, "pal_*.png"), size=(128, 128), colormap=legend
        )
        secs = best_of(lambda: rain.compute(), repeat=2)
        rows.append(
            (
                "  decode + colour legend + resize to 128x128 (palette PNGs)",
                f"{secs:.2f} s",
                f"{n / secs:,.0f} frames/s",
            )
        )


def table_markdown(rows: list) -> str:
    lines = ["| task | time | throughput / result |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    cpu = platform.processor() or platform.machine()
    lines.append("")
    lines.append(
        f"Measured with `python benchmarks/bench_sequences.py` on {os.cpu_count()} "
        f"CPU core(s) ({cpu}), dask threaded scheduler, "
        f"{pd.Timestamp.now():%Y-%m-%d}."
    )
    return "\n".join(lines)


def write_docs(text: str) -> None:
    content = DOCS.read_text()
    start, end = "<!-- bench_sequences:start -->", "<!-- bench_sequences:end -->"
    if start not in content or end not in content:
        raise SystemExit(f"markers {start} / {end} not found in {DOCS}")
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    DOCS.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/sequences.md")
    args = parser.parse_args()
    rows: list = []
    with dask.config.set(scheduler="threads"):
        for bench in (bench_split, bench_rain_amount, bench_year, bench_images):
            bench(rows)
            print(f"{rows[-1][0]}: {rows[-1][1]}", flush=True)
    text = table_markdown(rows)
    print()
    print(text)
    if not args.no_docs:
        write_docs(text)
        print(f"\nwritten into {DOCS}")


if __name__ == "__main__":
    main()
