"""Synthetic data: a realistic radar cube and the moving-squares movies.

Both are generated (seeded, any size), so docs, tests and ``xnowcast demo``
run anywhere without downloading anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import integer

__all__ = ["moving_squares", "synthetic_radar"]

#: Lambert azimuthal equal-area grid centred on the synthetic radar.
_RADAR_LAT, _RADAR_LON = 52.0, 5.0


def synthetic_radar(
    n_times: int = 36,
    size: int | tuple[int, int] = 256,
    *,
    step: str = "5min",
    start: str = "2024-06-01T12:00",
    resolution_m: float = 1000.0,
    n_cells: int | None = None,
    wind_ms: tuple[float, float] = (12.0, 5.0),
    radar_range: float | None = 0.48,
    seed: int = 0,
    chunks: dict | None = None,
) -> xr.DataArray:
    """A synthetic radar rain-rate cube: advecting, growing and decaying cells.

    Rain cells are anisotropic Gaussian blobs with log-normal peak intensities
    that drift with a uniform wind (plus a small per-cell deviation) and follow
    a grow-mature-decay life cycle; new cells are born during the sequence. A
    low-amplitude stratiform background drifts with them. Pixels farther from
    the radar than ``radar_range`` (fraction of the grid width) are NaN, as
    outside the coverage of a real radar.

    Parameters
    ----------
    n_times : int
        Number of frames.
    size : int or (ny, nx)
        Grid size in pixels.
    step : str
        Time step (pandas offset string).
    start : str
        Time of the first frame.
    resolution_m : float
        Pixel size in metres.
    n_cells : int, optional
        Number of rain cells over the sequence (default scales with the area).
    wind_ms : (u, v)
        Mean motion in m/s (eastward, northward).
    radar_range : float or None
        Radius of the radar coverage as a fraction of the grid width; ``None``
        for no NaN mask.
    seed : int
        Seed of the random generator: same seed, same cube.
    chunks : dict, optional
        When given, the cube is returned dask-backed with these chunks.

    Returns
    -------
    DataArray
        ``precip_intensity`` in mm/h with dims ``(time, y, x)``, projected
        ``x``/``y`` in metres, 2-D ``lat``/``lon``, a ``crs`` grid-mapping
        coordinate and CF attributes.

    Examples
    --------
    >>> cube = synthetic_radar(n_times=6, size=64, seed=1)
    >>> cube.dims, cube.sizes["time"], cube.attrs["units"]
    (('time', 'y', 'x'), 6, 'mm h-1')
    >>> bool(cube.isnull().any()), float(cube.max()) > 1
    (True, True)
    """
    from xnowcast.conventions import as_interval, as_times

    shape = [size, size] if np.ndim(size) == 0 else list(np.ravel(size))
    n_times = integer(n_times, "n_times")
    sizes = [integer(value, "size") for value in shape]
    if len(sizes) != 2:
        raise ValueError(f"size must be an int or (ny, nx), got {size!r}")
    ny, nx = sizes
    if n_times < 1 or ny < 8 or nx < 8:
        raise ValueError("synthetic_radar needs n_times >= 1 and a grid of at least 8x8 pixels")
    integer(seed, "seed", low=0)
    integer(n_cells, "n_cells", low=0, allow_none=True)
    resolution_m, (wind_u, wind_v) = _resolution_and_wind(resolution_m, wind_ms)
    rng = np.random.default_rng(seed)
    step_td = as_interval(step, "step", example="5min")
    dt_s = step_td.total_seconds()
    times = pd.date_range(as_times(start, "start")[0], periods=n_times, freq=step_td)
    n_cells = n_cells if n_cells is not None else max(4, int(ny * nx / 2500))

    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    # Mean motion in pixels per step; image rows grow southward.
    u_px = wind_u * dt_s / resolution_m
    v_px = -wind_v * dt_s / resolution_m
    # Cells may start upwind of the grid so that rain keeps flowing in.
    span_t = n_times
    x0 = rng.uniform(-0.3 * nx, 1.1 * nx, n_cells) - u_px * span_t * 0.3
    y0 = rng.uniform(-0.3 * ny, 1.1 * ny, n_cells) - v_px * span_t * 0.3
    du = u_px * (1 + rng.normal(0, 0.1, n_cells))
    dv = v_px * (1 + rng.normal(0, 0.1, n_cells)) + rng.normal(0, 0.05, n_cells)
    peak = rng.lognormal(mean=np.log(8.0), sigma=0.7, size=n_cells)
    sig_a = rng.uniform(0.02, 0.06, n_cells) * min(ny, nx) + 3
    sig_b = sig_a * rng.uniform(0.4, 1.0, n_cells)
    theta = rng.uniform(0, np.pi, n_cells)
    birth = rng.uniform(-0.5 * span_t, span_t, n_cells)
    life = rng.uniform(0.8, 2.5, n_cells) * max(span_t, 12)

    # Stratiform background: smooth noise advected with the mean wind.
    bg_k = np.fft.fftfreq(2 * ny)[:, None] ** 2 + np.fft.fftfreq(2 * nx)[None, :] ** 2
    spectrum = rng.normal(size=(2 * ny, 2 * nx)) * np.exp(-bg_k * (min(ny, nx) / 6.0) ** 2)
    background = np.real(np.fft.ifft2(np.fft.fft2(spectrum)))
    background = (background - background.mean()) / (background.std() + 1e-9)

    data = np.zeros((n_times, ny, nx), dtype=np.float32)
    for t in range(n_times):
        frame = np.zeros((ny, nx), dtype=np.float32)
        age = (t - birth) / life
        alive = (age > 0) & (age < 1)
        for i in np.nonzero(alive)[0]:
            amplitude = peak[i] * np.sin(np.pi * age[i]) ** 1.5
            cx, cy = x0[i] + du[i] * (t - birth[i]), y0[i] + dv[i] * (t - birth[i])
            c, s = np.cos(theta[i]), np.sin(theta[i])
            a = ((xx - cx) * c + (yy - cy) * s) / sig_a[i]
            b = (-(xx - cx) * s + (yy - cy) * c) / sig_b[i]
            frame += (amplitude * np.exp(-0.5 * (a * a + b * b))).astype(np.float32)
        shift_y = round(v_px * t) % (2 * ny)
        shift_x = round(u_px * t) % (2 * nx)
        bg = np.roll(background, (shift_y, shift_x), axis=(0, 1))[:ny, :nx]
        frame += np.clip(0.8 * bg - 0.3, 0, None).astype(np.float32)
        frame[frame < 0.05] = 0.0
        data[t] = frame

    if radar_range is not None:
        dist = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2)
        data[:, dist > radar_range * nx] = np.nan

    y = (np.arange(ny)[::-1] - (ny - 1) / 2) * resolution_m
    x = (np.arange(nx) - (nx - 1) / 2) * resolution_m
    crs_attrs = {
        "grid_mapping_name": "lambert_azimuthal_equal_area",
        "latitude_of_projection_origin": _RADAR_LAT,
        "longitude_of_projection_origin": _RADAR_LON,
        "false_easting": 0.0,
        "false_northing": 0.0,
        "semi_major_axis": 6378137.0,
        "inverse_flattening": 298.257223563,
    }
    cube = xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={
            "time": ("time", times, {"standard_name": "time"}),
            "y": ("y", y, {"standard_name": "projection_y_coordinate", "units": "m"}),
            "x": ("x", x, {"standard_name": "projection_x_coordinate", "units": "m"}),
            "crs": ((), np.int32(0), crs_attrs),
        },
        name="precip_intensity",
        attrs={
            "standard_name": "rainfall_rate",
            "long_name": "precipitation intensity (synthetic)",
            "units": "mm h-1",
            "grid_mapping": "crs",
            "source": f"xnowcast.datasets.synthetic_radar(seed={seed})",
        },
    )
    from xnowcast.conventions import add_latlon

    cube = add_latlon(cube)
    return cube.chunk(chunks) if chunks is not None else cube


def _resolution_and_wind(resolution_m: Any, wind_ms: Any) -> tuple[float, tuple[float, float]]:
    """``resolution_m`` as a positive float and ``wind_ms`` as two floats, or a clear error."""
    try:
        resolution = float(resolution_m)
        wind = tuple(float(w) for w in wind_ms)
    except (TypeError, ValueError):
        raise TypeError(
            f"resolution_m must be a number and wind_ms two numbers (u, v), got "
            f"{resolution_m!r} and {wind_ms!r}"
        ) from None
    if not (np.isfinite(resolution) and resolution > 0) or len(wind) != 2:
        raise ValueError(
            f"resolution_m must be a positive number of metres and wind_ms two "
            f"numbers (u, v), got {resolution_m!r} and {wind_ms!r}"
        )
    return resolution, (wind[0], wind[1])


def moving_squares(
    n_samples: int = 16,
    n_frames: int = 15,
    size: int = 40,
    *,
    seed: int = 0,
    step: str = "5min",
) -> xr.Dataset:
    """The moving-squares movies of the classic Keras ConvLSTM example.

    Each movie holds 3 to 7 squares (half-width 2 or 3 pixels) that start at
    random places and move one pixel per frame in a random direction; the
    input movie has +-0.1 noise on the squares, the target is the clean movie
    shifted by one frame (so frame ``t`` of the target is frame ``t + 1`` of
    the input). Values are in [0, 1] (clipped).

    Parameters
    ----------
    n_samples : int
        Number of movies.
    n_frames : int
        Frames per movie.
    size : int
        Side of the (square) frames in pixels; the squares move in a central
        region of ``size`` with margin as in the Keras example (which used 80
        drawn then cropped to 40).
    seed : int
        Seed of the random generator.
    step : str
        Time step used for the ``time`` coordinate.

    Returns
    -------
    Dataset
        ``movies`` (noisy input) and ``shifted_movies`` (target), dims
        ``(sample, time, y, x)``; each ``ds.movies.isel(sample=i)`` is a cube.

    Examples
    --------
    >>> ds = moving_squares(n_samples=2, n_frames=5, size=20)
    >>> ds.movies.dims, ds.movies.shape
    (('sample', 'time', 'y', 'x'), (2, 5, 20, 20))
    >>> bool((ds.shifted_movies.isel(time=slice(0, -1)).values
    ...       == ds.clean_movies.isel(time=slice(1, None)).values).all())
    True
    """
    if size < 12:
        raise ValueError("moving_squares needs size >= 12")
    rng = np.random.default_rng(seed)
    big = 2 * size
    movies = np.zeros((n_samples, n_frames + 1, big, big), dtype=np.float32)
    noisy = np.zeros_like(movies)
    lo, hi = size // 2 + 3, size // 2 + size - 3
    for i in range(n_samples):
        for _ in range(rng.integers(3, 8)):
            xs, ys = rng.integers(lo, hi), rng.integers(lo, hi)
            dx, dy = rng.integers(-1, 2), rng.integers(-1, 2)
            w = int(rng.integers(2, 4))
            for t in range(n_frames + 1):
                xt, yt = xs + dx * t, ys + dy * t
                patch = (slice(yt - w, yt + w), slice(xt - w, xt + w))
                movies[i, t][patch] += 1
                noise = rng.choice([-1, 1]) * 0.1 if rng.integers(0, 2) else 0.0
                noisy[i, t][patch] += 1 + noise
    crop = (
        slice(None),
        slice(None),
        slice(size // 2, size // 2 + size),
        slice(size // 2, size // 2 + size),
    )
    clean = np.clip(movies[crop], 0, 1)
    noisy = np.clip(noisy[crop], 0, 1)
    times = pd.date_range("2000-01-01", periods=n_frames, freq=pd.Timedelta(step))
    dims = ("sample", "time", "y", "x")
    return xr.Dataset(
        {
            "movies": (dims, noisy[:, :n_frames], {"long_name": "noisy moving squares"}),
            "clean_movies": (dims, clean[:, :n_frames], {"long_name": "moving squares"}),
            "shifted_movies": (dims, clean[:, 1:], {"long_name": "moving squares, next frame"}),
        },
        coords={
            "time": times,
            "y": np.arange(size),
            "x": np.arange(size),
            "sample": np.arange(n_samples),
        },
        attrs={"source": f"xnowcast.datasets.moving_squares(seed={seed})"},
    )
