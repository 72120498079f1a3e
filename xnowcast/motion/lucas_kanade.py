"""Sparse Lucas-Kanade optical flow, interpolated to a dense field.

The method of pysteps' ``dense_lucaskanade``, rebuilt for speed:

1. Shi-Tomasi corners (``cv2.goodFeaturesToTrack``) in the earlier frame of
   each pair;
2. tracked into the later frame with pyramidal Lucas-Kanade
   (``cv2.calcOpticalFlowPyrLK``), optionally keeping only vectors that track
   back to within ``fb_threshold`` pixels of their start;
3. vectors of all pairs pooled (with weights ``1 .. n_flows``, the most
   recent pair weighing most) and *declustered*: averaged in cells of
   ``decluster`` pixels;
4. interpolated onto a coarse grid (every ``grid_step`` pixels) by kernel
   regression with a heavy-tailed kernel ``(1 + (d / sigma)^2)^-2``: the local
   vectors near features, an inverse-distance (power 4) blend of the nearest
   vectors far from any; then resized bilinearly to the full grid.

The defaults (no forward-backward check, a local kernel of ``sigma=6`` px,
two pairs in the model) were chosen on the shared radar data with
``benchmarks/bench_optical_flow.py``: smoother fields (larger ``sigma``, as
pysteps' inverse-distance interpolation of the 20 nearest vectors) and the
forward-backward check both lowered the skill on every dataset.

Without any trackable corners (blank frames) the flow is zero.

Examples
--------
>>> import cv2, numpy as np
>>> from xnowcast.motion.lucas_kanade import lucas_kanade
>>> rng = np.random.default_rng(1)
>>> frame = cv2.GaussianBlur(rng.random((96, 96)).astype("float32"), (0, 0), 2)
>>> frame = (frame - frame.min()) / (frame.max() - frame.min())  # values in [0, 1]
>>> frames = np.stack([frame, np.roll(frame, (1, -2), axis=(0, 1))])  # +1 row, -2 columns
>>> flow = lucas_kanade(frames)
>>> [round(float(m), 1) + 0.0 for m in np.median(flow, axis=(1, 2))]  # u, v
[-2.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xnowcast.checks import integer, real
from xnowcast.motion.common import (
    check_combine,
    check_frames,
    finish_flow,
    frame_pairs,
)
from xnowcast.optional import import_optional

__all__ = ["interpolate_vectors", "lucas_kanade", "sparse_vectors", "validate_options"]


#: Lucas-Kanade option -> check of its value (see :func:`lucas_kanade`).
_OPTION_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "max_corners": lambda v, n: integer(v, n, low=0, whole=True),
    "quality_level": lambda v, n: real(v, n, low=0, high=1.0, low_inclusive=False),
    "min_distance": lambda v, n: real(v, n, low=0),
    "block_size": lambda v, n: integer(v, n, low=1, whole=True),
    "win_size": lambda v, n: integer(v, n, low=3, whole=True),
    "max_level": lambda v, n: integer(v, n, low=0, whole=True),
    "fb_threshold": lambda v, n: real(v, n, low=0, low_inclusive=False, allow_none=True),
    "decluster": lambda v, n: integer(v, n, low=0, whole=True),
    "sigma": lambda v, n: real(v, n, low=0, low_inclusive=False),
    "grid_step": lambda v, n: integer(v, n, low=1, whole=True),
}


def validate_options(**options: Any) -> None:
    """Raise a ValueError naming the first bad Lucas-Kanade option (see :func:`lucas_kanade`).

    Called when an optical-flow model is made, so that bad options fail at once and
    not inside OpenCV at the first forecast. Options of other kinds are ignored.

    Examples
    --------
    >>> validate_options(win_size=2)
    Traceback (most recent call last):
    ...
    ValueError: Lucas-Kanade option win_size must be a whole number >= 3, got 2
    """
    for key, value in options.items():
        check = _OPTION_CHECKS.get(key)
        if check is not None:
            check(value, "Lucas-Kanade option " + key)


def sparse_vectors(
    prev: np.ndarray,
    nxt: np.ndarray,
    *,
    max_corners: int = 1000,
    quality_level: float = 0.01,
    min_distance: float = 10.0,
    block_size: int = 5,
    win_size: int = 50,
    max_level: int = 3,
    fb_threshold: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Track Shi-Tomasi corners of ``prev`` into ``nxt`` (both 8-bit images).

    Returns
    -------
    points : (n, 2) float32
        ``(x, y)`` positions of the tracked corners in ``prev``.
    vectors : (n, 2) float32
        Their ``(u, v)`` displacements in pixels.
    """
    cv2 = import_optional("cv2", "Lucas-Kanade motion")

    empty = np.zeros((0, 2), np.float32)
    corners = cv2.goodFeaturesToTrack(
        prev,
        maxCorners=int(max_corners),
        qualityLevel=float(quality_level),
        minDistance=float(min_distance),
        blockSize=int(block_size),
    )
    if corners is None or len(corners) == 0:
        return empty, empty
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.01)
    lk = dict(winSize=(int(win_size), int(win_size)), maxLevel=int(max_level), criteria=criteria)
    moved, status, _ = cv2.calcOpticalFlowPyrLK(prev, nxt, corners, None, **lk)
    keep = status.ravel() == 1
    if fb_threshold is not None:
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(nxt, prev, moved, None, **lk)
        fb_error = np.linalg.norm((back - corners).reshape(-1, 2), axis=1)
        keep &= (status_back.ravel() == 1) & (fb_error < fb_threshold)
    points = corners.reshape(-1, 2)[keep]
    vectors = (moved - corners).reshape(-1, 2)[keep]
    return points.astype(np.float32), vectors.astype(np.float32)


def _decluster(points, vectors, weights, cell):
    """Weighted mean of the vectors in each ``cell`` x ``cell`` box."""
    if cell <= 1 or len(points) == 0:
        return points, vectors, weights
    keys = np.floor(points / cell).astype(np.int64)
    _, inverse = np.unique(keys[:, 0] * 1_000_003 + keys[:, 1], return_inverse=True)
    inverse = inverse.ravel()
    n = inverse.max() + 1
    wsum = np.bincount(inverse, weights, n)
    out_p = np.stack([np.bincount(inverse, weights * points[:, i], n) for i in (0, 1)], 1)
    out_v = np.stack([np.bincount(inverse, weights * vectors[:, i], n) for i in (0, 1)], 1)
    return (
        (out_p / wsum[:, None]).astype(np.float32),
        (out_v / wsum[:, None]).astype(np.float32),
        wsum.astype(np.float32),
    )


def interpolate_vectors(
    points: np.ndarray,
    vectors: np.ndarray,
    shape: tuple[int, int],
    *,
    weights: np.ndarray | None = None,
    sigma: float = 6.0,
    grid_step: int = 8,
) -> np.ndarray:
    """Sparse vectors to a dense ``(2, y, x)`` field by kernel regression.

    Parameters
    ----------
    points : (n, 2) array
        ``(x, y)`` positions.
    vectors : (n, 2) array
        ``(u, v)`` at those positions.
    shape : (ny, nx)
        Output grid.
    weights : (n,) array, optional
        Weight of each vector.
    sigma : float
        Kernel scale in pixels: the field follows single vectors within about
        ``sigma`` of them.
    grid_step : int
        The regression is evaluated every ``grid_step`` pixels and resized.

    Examples
    --------
    >>> import numpy as np
    >>> f = interpolate_vectors(np.array([[5.0, 5.0]]), np.array([[1.0, -2.0]]), (10, 20))
    >>> f.shape, float(f[0].min()), float(f[1].max())
    ((2, 10, 20), 1.0, -2.0)
    """
    cv2 = import_optional("cv2", "Lucas-Kanade motion")

    ny, nx = shape
    if len(points) == 0:
        return np.zeros((2, ny, nx), np.float32)
    step = max(1, int(grid_step))
    gy = np.arange(0, ny + step - 1, step, dtype=np.float32)[: -(-ny // step) + 1]
    gx = np.arange(0, nx + step - 1, step, dtype=np.float32)[: -(-nx // step) + 1]
    gy = np.minimum(gy, ny - 1)
    gx = np.minimum(gx, nx - 1)
    p = np.asarray(points, np.float32)
    v = np.asarray(vectors, np.float32)
    w = np.ones(len(p), np.float32) if weights is None else np.asarray(weights, np.float32)
    inv_s2 = np.float32(1.0 / float(sigma) ** 2)
    dx2 = (gx[:, None] - p[None, :, 0]) ** 2 * inv_s2  # (gx, n)
    dy2 = (gy[:, None] - p[None, :, 1]) ** 2 * inv_s2  # (gy, n)
    weighted = np.concatenate([v * w[:, None], w[:, None]], axis=1)  # (n, 3): w*u, w*v, w
    sums = np.empty((len(gy), len(gx), 3), np.float32)
    rows = max(1, 2**22 // max(1, len(gx) * len(p)))  # about 16 MiB of kernel at a time
    for r in range(0, len(gy), rows):
        kernel = dy2[r : r + rows, None, :] + dx2[None, :, :]  # (rows, gx, n)
        kernel += np.float32(1.0)
        np.multiply(kernel, kernel, out=kernel)
        np.reciprocal(kernel, out=kernel)
        sums[r : r + rows] = kernel @ weighted
    coarse = np.moveaxis(sums[..., :2] / sums[..., 2:], -1, 0)
    # corner-aligned resize: grid node i sits at pixel i * step (clipped to the last pixel)
    out = np.empty((2, ny, nx), np.float32)
    yy = np.minimum(np.arange(ny, dtype=np.float32) / step, len(gy) - 1)
    xx = np.minimum(np.arange(nx, dtype=np.float32) / step, len(gx) - 1)
    map_x, map_y = np.meshgrid(xx, yy)
    for c in (0, 1):
        out[c] = cv2.remap(
            np.ascontiguousarray(coarse[c], dtype=np.float32),
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


def lucas_kanade(
    frames: np.ndarray,
    *,
    n_flows: int = 1,
    combine: str = "weighted",
    value_range: Sequence[float] = (0.0, 1.0),
    smooth: float = 0.0,
    max_corners: int = 1000,
    quality_level: float = 0.01,
    min_distance: float = 10.0,
    block_size: int = 5,
    win_size: int = 50,
    max_level: int = 3,
    fb_threshold: float | None = None,
    decluster: int = 16,
    sigma: float = 6.0,
    grid_step: int = 8,
) -> np.ndarray:
    """Sparse Lucas-Kanade of the last ``n_flows`` pairs, interpolated to a dense field.

    Parameters
    ----------
    frames : (t, y, x) array
        Frames in time order (see :mod:`xnowcast.motion.interface`).
    n_flows, value_range, smooth
        See :mod:`xnowcast.motion.interface`.
    combine : {"weighted", "median"}
        ``"weighted"`` pools the vectors of all pairs (weights ``1 .. n``)
        before one interpolation; ``"median"`` interpolates each pair and
        takes the pixel-wise median.
    max_corners, quality_level, min_distance, block_size
        ``cv2.goodFeaturesToTrack`` (Shi-Tomasi) parameters.
    win_size, max_level
        ``cv2.calcOpticalFlowPyrLK`` window (pixels) and pyramid levels.
    fb_threshold : float, optional
        When given, track every corner back and keep only vectors that return
        to within this many pixels of their start. Off by default: on radar
        data it discards many good vectors of fast, changing cells and
        lowers the skill (measured on the shared data).
    decluster : int
        Cell size (pixels) in which vectors are averaged before interpolation
        (0 or 1: no averaging).
    sigma, grid_step
        See :func:`interpolate_vectors`.

    Returns
    -------
    (2, y, x) float32
        ``u`` (+x) and ``v`` (+y) in pixels per step.
    """
    frames = check_frames(frames, n_flows)
    combine = check_combine(combine)
    validate_options(
        max_corners=max_corners,
        quality_level=quality_level,
        min_distance=min_distance,
        block_size=block_size,
        win_size=win_size,
        max_level=max_level,
        fb_threshold=fb_threshold,
        decluster=decluster,
        sigma=sigma,
        grid_step=grid_step,
    )
    track: dict[str, Any] = dict(
        max_corners=max_corners,
        quality_level=quality_level,
        min_distance=min_distance,
        block_size=block_size,
        win_size=win_size,
        max_level=max_level,
        fb_threshold=fb_threshold,
    )
    shape = frames.shape[1:]
    interp: dict[str, Any] = dict(sigma=sigma, grid_step=grid_step)
    pairs = frame_pairs(frames, n_flows, value_range)
    tracked = [sparse_vectors(a, b, **track) for a, b in pairs]
    if combine == "median":
        flows = []
        for points, vectors in tracked:
            p, v, w = _decluster(points, vectors, np.ones(len(points)), decluster)
            flows.append(interpolate_vectors(p, v, shape, weights=w, **interp))
        return finish_flow(flows, "median", smooth)
    points = np.concatenate([p for p, _ in tracked])
    vectors = np.concatenate([v for _, v in tracked])
    weights = np.concatenate([np.full(len(p), i + 1.0) for i, (p, _) in enumerate(tracked)])
    p, v, w = _decluster(points, vectors, weights, decluster)
    flow = interpolate_vectors(p, v, shape, weights=w, **interp)
    return finish_flow([flow], "weighted", smooth)
