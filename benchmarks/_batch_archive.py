"""A large synthetic radar archive on disk, for the batch benchmarks.

    python benchmarks/_batch_archive.py PATH [N_FRAMES] [SIZE]

Smooth rain fields (cubic upsampling of coarse random fields) drifting 4 px
per 5-minute frame, float32 mm/h with about half the domain dry, written as
zarr chunked by 4 frames, generated chunk by chunk with dask (about 2 GB for
2,000 frames of 512 x 512 in well under a minute). An existing store with the
same shape is reused.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

COARSE = 16  # fine pixels per coarse pixel
DRIFT = 4  # fine pixels per frame


def _block(n_times: int, size: int, t0: int, seed: int) -> np.ndarray:
    import cv2

    n_coarse = size // COARSE + 2
    out = np.empty((n_times, size, size), np.float32)
    for k in range(n_times):
        t = t0 + k
        shift = t * DRIFT
        col, sub = divmod(shift, COARSE)
        # A coarse field that is a fixed function of (row, absolute column): frames drift.
        rows = np.arange(n_coarse)[:, None]
        cols = col + np.arange(n_coarse)[None, :]
        rng_field = np.sin(rows * 12.9898 + cols * 78.233 + seed) * 43758.5453
        coarse = (rng_field - np.floor(rng_field)).astype(np.float32)
        fine = cv2.resize(
            coarse, (n_coarse * COARSE, n_coarse * COARSE), interpolation=cv2.INTER_CUBIC
        )
        frame = fine[COARSE : COARSE + size, sub + COARSE : sub + COARSE + size]
        out[k] = np.maximum(frame - 0.5, 0.0) * 20.0
    return out


def make_archive(path: str | Path, n_frames: int = 2000, size: int = 512, seed: int = 0) -> Path:
    """Write (or reuse) the archive at ``path``; returns the path."""
    import dask.array as dsa
    import pandas as pd
    import xarray as xr

    path = Path(path)
    if path.exists():
        ds = xr.open_zarr(path, consolidated=False)
        if dict(ds.sizes) == {"time": n_frames, "y": size, "x": size}:
            return path
        raise FileExistsError(f"{path} exists with another shape; remove it")
    chunk = 4
    blocks = [
        dsa.from_delayed(
            __import__("dask").delayed(_block)(min(chunk, n_frames - t0), size, t0, seed),
            shape=(min(chunk, n_frames - t0), size, size),
            dtype=np.float32,
        )
        for t0 in range(0, n_frames, chunk)
    ]
    data = dsa.concatenate(blocks, axis=0)
    coord = (np.arange(size) - size / 2 + 0.5) * 1000.0
    cube = xr.DataArray(
        data,
        dims=("time", "y", "x"),
        name="precip_intensity",
        coords={
            "time": pd.date_range("2024-06-01", periods=n_frames, freq="5min"),
            "y": ("y", coord[::-1], {"units": "m", "axis": "Y"}),
            "x": ("x", coord, {"units": "m", "axis": "X"}),
        },
        attrs={"units": "mm h-1", "long_name": "synthetic rain rate"},
    )
    tmp = path.with_name(path.name + ".tmp")
    cube.to_dataset().to_zarr(
        tmp, mode="w", consolidated=False, encoding={cube.name: {"chunks": (chunk, size, size)}}
    )
    tmp.rename(path)
    return path


if __name__ == "__main__":
    args = sys.argv[1:]
    make_archive(args[0], *(int(a) for a in args[1:]))
