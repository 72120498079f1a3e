"""Sparse Lucas-Kanade optical flow, interpolated to a dense field.

The method of pysteps' ``dense_lucaskanade``, rebuilt for speed:

1. Shi-Tomasi corners (``cv2.goodFeaturesToTrack``) in the earlier frame of
   each pair, at least ``buffer`` pixels (default half the tracking window)
   away from data missing in only one of the frames: such a gap is blanked in
   both frames, and its still edge would pull nearby vectors towards zero;
2. tracked into the later frame with pyramidal Lucas-Kanade
   (``cv2.calcOpticalFlowPyrLK``), optionally keeping only vectors that track
   back to within ``fb_threshold`` pixels of their start;
3. vectors faster than ``max_speed`` dropped (tracking failures: no rain or
   cloud moves that fast; the optical-flow model sets it from the cube, 100 m/s),
   and optionally outliers: vectors more than ``outliers`` robust standard
   deviations away from their 30 nearest neighbours (as pysteps does);
4. vectors of all pairs pooled (with weights ``1 .. n_flows``, the most
   recent pair weighing most) and *debiased* (``debias``): a 50-pixel window
   in a turning, shearing or stretching flow reports the motion of its
   gradient-weighted centre, not of its corner (up to 0.3 px off in a rotation
   of 1 degree per step); that bias is computed from the window's gradient
   moments and the flow's local Jacobian (:func:`window_bias`) and subtracted;
5. *declustered*: averaged in cells of ``decluster`` pixels;
6. interpolated onto a coarse grid (every ``grid_step`` pixels) by local
   linear kernel regression (a weighted least-squares plane per node) with a
   heavy-tailed kernel ``(1 + (d / sigma)^2)^-2``, which reproduces uniform,
   rotating and shearing motion exactly, near the vectors and away from them;
   each plane is pulled, with the weight of a small fraction of one vector
   (``prior``), towards the affine fit of all vectors, held constant beyond
   :data:`PRIOR_REACH` standard deviations of the vectors: where the kernel sees
   vectors they decide, far from every vector the field tends to that bounded
   fit instead of extrapolating the plane of the nearest few; then resized
   bilinearly to the full grid;
7. optionally (``refine``) the earlier frames are moved along the flow, the
   motion that is left is tracked the same way and added.

The tracking of a frame pair (steps 1-2 and the window moments) is memoised
(:data:`TRACKS`, :func:`track_pair`): forecasts of consecutive init times
share pairs, and each pair is tracked once.

On pysteps' motion-convergence test (the MeteoSwiss field of 2015-05-15
16:30 shifted by 2 pixels; ``tests/test_motion.py``) the relative RMSE inside
the rain area is below 0.1 %, pysteps' bar for its Lucas-Kanade. Rotated by
1 degree per step it is 0.8 % (3.9 % without ``debias``), 0.6 % over two
pairs: what is left is the sub-pixel floor of tracking an interpolated frame,
1.5 % for a shift of (2.3, 0.6) px (``benchmarks/bench_motion.py``).

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

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xnowcast.checks import choice, integer, real
from xnowcast.motion.common import (
    check_combine,
    check_frames,
    finish_flow,
    frame_pairs,
)
from xnowcast.motion.kernels import heavy_tail_sums, node_planes, window_moments
from xnowcast.motion.memo import ArrayMemo, digest
from xnowcast.optional import import_optional

__all__ = [
    "FITS",
    "TRACKS",
    "feature_mask",
    "find_outliers",
    "interpolate_vectors",
    "local_jacobians",
    "lucas_kanade",
    "sample_at",
    "sparse_vectors",
    "track_pair",
    "validate_options",
    "warp_image",
    "window_bias",
]


#: Valid values of ``fit`` (:func:`interpolate_vectors`).
FITS = ("linear", "constant")

#: Termination of the sub-pixel search of ``cv2.calcOpticalFlowPyrLK`` at each pyramid
#: level: at most this many iterations, or a step below this many pixels.
LK_ITERATIONS, LK_EPS = 10, 0.01

#: How many times :func:`window_bias` is subtracted with Jacobians fitted anew (``debias``).
DEBIAS_PASSES = 2
#: The scale (``sigma`` of :func:`local_jacobians`) of the Jacobians of ``debias``, in
#: tracking windows.
DEBIAS_SCALE = 0.5
#: How far the affine fit of all vectors that ``prior`` pulls each node towards
#: (:func:`interpolate_vectors`) is extended: up to this many standard deviations of the
#: vectors (Mahalanobis distance from their weighted centroid), held constant beyond. It
#: keeps a rotation exact in the whole rain area (2 gave 4 % on the rotation of
#: ``tests/test_motion.py``), and the field bounded far from vectors in one corner.
PRIOR_REACH = 3.0

#: Largest correction ``debias`` makes (pixels; None: no limit). In a rotation of 1 degree
#: per step the bias stays below it; on real radar pairs the Jacobians fitted to noisy
#: vectors ask for up to 4 px: without the limit the correction lowered CSI and FSS on BOM
#: (``benchmarks/bench_motion.py``).
DEBIAS_LIMIT: float | None = 0.5

#: Share of the tracked vectors above ``max_speed`` beyond which :func:`lucas_kanade` warns
#: (below it they are single tracking failures, left out without a word).
MAX_DROPPED_SHARE = 0.05

#: The sparse vectors of the last frame pairs tracked (:func:`track_pair`): a pair shared
#: by forecasts of consecutive init times is tracked once. ``TRACKS.maxsize = 0`` turns it
#: off; ``TRACKS.info()`` counts hits and misses.
TRACKS = ArrayMemo(maxsize=32)

#: Lucas-Kanade option -> check of its value (see :func:`lucas_kanade`).
_OPTION_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "max_corners": lambda v, n: integer(v, n, low=0, whole=True),
    "quality_level": lambda v, n: real(v, n, low=0, high=1.0, low_inclusive=False),
    "min_distance": lambda v, n: real(v, n, low=0),
    "block_size": lambda v, n: integer(v, n, low=1, whole=True),
    "win_size": lambda v, n: integer(v, n, low=3, whole=True),
    "max_level": lambda v, n: integer(v, n, low=0, whole=True),
    "fb_threshold": lambda v, n: real(v, n, low=0, low_inclusive=False, allow_none=True),
    "buffer": lambda v, n: integer(v, n, low=0, whole=True, allow_none=True),
    "outliers": lambda v, n: real(v, n, low=0, low_inclusive=False, allow_none=True),
    "max_speed": lambda v, n: real(v, n, low=0, low_inclusive=False, allow_none=True),
    "refine": lambda v, n: integer(v, n, low=0, whole=True),
    "decluster": lambda v, n: integer(v, n, low=0, whole=True),
    "sigma": lambda v, n: real(v, n, low=0, low_inclusive=False),
    "grid_step": lambda v, n: integer(v, n, low=1, whole=True),
    "fit": lambda v, n: choice(v, n, FITS),
    "prior": lambda v, n: real(v, n, low=0),
    "debias": lambda v, n: _boolean(v, n),
}


def _boolean(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


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
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Track Shi-Tomasi corners of ``prev`` into ``nxt`` (both 8-bit images).

    ``mask`` (uint8, nonzero where corners may be taken) keeps corners away from
    missing data (see :func:`feature_mask`).

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
        mask=mask,
    )
    if corners is None or len(corners) == 0:
        return empty, empty
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, LK_ITERATIONS, LK_EPS)
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


def feature_mask(
    missing_prev: np.ndarray, missing_next: np.ndarray, buffer: int
) -> np.ndarray | None:
    """Where corners may be taken: outside gaps, and ``buffer`` pixels or more from changed ones.

    :func:`~xnowcast.motion.common.frame_pairs` blanks data missing in either frame in
    both, so a gap that opens, closes or moves between the frames leaves a still edge
    that pulls nearby vectors towards zero: corners keep ``buffer`` pixels away from
    pixels missing in only one of the frames. A gap missing in both (the edge of the
    radar range) changes nothing there and keeps its nearby corners. ``None`` (corners
    anywhere) when nothing is missing.

    Examples
    --------
    >>> import numpy as np
    >>> still = np.zeros((1, 9), bool); still[0, 0] = True
    >>> feature_mask(still, still, 2).tolist()  # the same gap in both frames
    [[0, 1, 1, 1, 1, 1, 1, 1, 1]]
    >>> feature_mask(still, np.zeros_like(still), 2).tolist()  # a gap that closed
    [[0, 0, 0, 1, 1, 1, 1, 1, 1]]
    """
    gap = missing_prev | missing_next
    if not gap.any():
        return None
    changed = missing_prev != missing_next
    if buffer > 0 and changed.any():
        cv2 = import_optional("cv2", "Lucas-Kanade motion")

        kernel = np.ones((2 * buffer + 1, 2 * buffer + 1), np.uint8)
        gap |= cv2.dilate(changed.astype(np.uint8), kernel) > 0
    return (~gap).astype(np.uint8)


def find_outliers(
    points: np.ndarray, vectors: np.ndarray, threshold: float = 3.0, k: int = 30
) -> np.ndarray:
    """Vectors far from the vectors of their ``k`` nearest neighbours (a boolean mask).

    A vector is an outlier when it differs from the median of its neighbours' vectors
    by more than ``threshold`` robust standard deviations of theirs (1.4826 times the
    median absolute deviation, per component) plus 0.05 pixels, as pysteps removes
    vectors beyond 3 standard deviations of their 30 neighbours. With fewer than 4
    vectors none is an outlier.

    Examples
    --------
    >>> import numpy as np
    >>> points = np.array([[0, 0], [10, 0], [0, 10], [10, 10], [5, 5]], float)
    >>> vectors = np.array([[2, 0], [2, 0.01], [2.01, 0], [2, 0], [0.5, 1.0]])
    >>> find_outliers(points, vectors, k=4).tolist()
    [False, False, False, False, True]
    """
    n = len(points)
    if n < 4:
        return np.zeros(n, bool)
    k = min(int(k), n - 1)
    p = np.asarray(points, np.float32)
    v = np.asarray(vectors, np.float32)
    dist = (p[:, None, 0] - p[None, :, 0]) ** 2 + (p[:, None, 1] - p[None, :, 1]) ** 2
    np.fill_diagonal(dist, np.inf)
    near = np.argpartition(dist, k - 1, axis=1)[:, :k]  # (n, k) neighbours, not itself
    neigh = v[near]  # (n, k, 2)
    centre = np.median(neigh, axis=1)
    spread = 1.4826 * np.median(np.abs(neigh - centre[:, None, :]), axis=1)
    return (np.abs(v - centre) > threshold * spread + 0.05).any(axis=1)


def _decluster(points, vectors, weights, cell, *extra):
    """Weighted mean of the vectors (and of each ``extra`` array) in each ``cell`` x ``cell`` box."""
    if cell <= 1 or len(points) == 0:
        return (points, vectors, weights, *extra)
    keys = np.floor(points / cell).astype(np.int64)
    _, inverse = np.unique(keys[:, 0] * 1_000_003 + keys[:, 1], return_inverse=True)
    inverse = inverse.ravel()
    n = inverse.max() + 1
    wsum = np.bincount(inverse, weights, n)

    def mean(values):
        flat = values.reshape(len(values), -1)
        sums = [np.bincount(inverse, weights * flat[:, i], n) for i in range(flat.shape[1])]
        return (np.stack(sums, 1) / wsum[:, None]).reshape(n, *values.shape[1:])

    return (
        mean(points).astype(np.float32),
        mean(vectors).astype(np.float32),
        wsum.astype(np.float32),
        *(mean(e) for e in extra),
    )


def interpolate_vectors(
    points: np.ndarray,
    vectors: np.ndarray,
    shape: tuple[int, int],
    *,
    weights: np.ndarray | None = None,
    sigma: float = 6.0,
    grid_step: int = 8,
    fit: str = "linear",
    prior: float = 1e-3,
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
    fit : {"linear", "constant"}
        ``"linear"``: local linear regression (a weighted least-squares plane
        per node), which reproduces uniform, rotating and shearing (any
        affine) motion exactly, also away from the vectors; ``"constant"``:
        the kernel-weighted mean (Nadaraya-Watson), exact for uniform motion
        only.
    prior : float
        ``"linear"`` only: the weight, relative to the mean weight of the
        vectors, of a pseudo-observation at every node of the weighted
        least-squares plane through *all* vectors (constant beyond
        :data:`PRIOR_REACH` standard deviations of the vectors). A vector at
        distance ``d`` has kernel weight ``(1 + (d / sigma)^2)^-2``, so the
        default 1e-3 decides nothing within about ``5 sigma`` of one vector
        (further from a group) and takes over beyond: far from every vector
        the field tends to that bounded fit, instead of extrapolating the plane
        of the nearest few (on the shared BOM data up to 20 px per step, 200 px
        from any vector, against a mean of -3). Affine motion stays exact.
        0: no prior (the behaviour before).

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
    p = np.asarray(points, np.float32)
    v = np.asarray(vectors, np.float32)
    w = np.ones(len(p), np.float32) if weights is None else np.asarray(weights, np.float32)
    fit = choice(fit, "fit", FITS)
    coarse = _regression(p, v, w, gx, gy, float(sigma), fit, real(prior, "prior", low=0))
    out = np.empty((2, ny, nx), np.float32)
    map_x, map_y = _resize_maps(ny, nx, step, len(gy), len(gx))
    for c in (0, 1):
        out[c] = cv2.remap(
            np.ascontiguousarray(coarse[c], dtype=np.float32),
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out


@functools.lru_cache(maxsize=4)
def _resize_maps(ny: int, nx: int, step: int, nodes_y: int, nodes_x: int):
    """``cv2.remap`` maps of the corner-aligned resize of :func:`interpolate_vectors`: grid
    node ``i`` sits at pixel ``i * step`` (the last one may lie outside). Kept for the
    last few grids (read-only): every forecast on a grid resizes with the same maps."""
    yy = np.minimum(np.arange(ny, dtype=np.float32) / step, nodes_y - 1)
    xx = np.minimum(np.arange(nx, dtype=np.float32) / step, nodes_x - 1)
    maps = np.meshgrid(xx, yy)
    for m in maps:
        m.setflags(write=False)
    return maps


def _regression(p, v, w, gx, gy, sigma: float, fit: str, prior: float) -> np.ndarray:
    """Kernel regression of the vectors ``v`` at ``(x, y)`` points ``p`` on the nodes ``gx, gy``.

    Returns ``(2, len(gy), len(gx))``. Moments are summed in float64 around the
    centre of the points, so that the local linear fit does not lose precision;
    ``prior``: see :func:`interpolate_vectors`.
    """
    centre = p.mean(axis=0)
    px, py = (p[:, 0] - centre[0]).astype(np.float64), (p[:, 1] - centre[1]).astype(np.float64)
    nx_, ny_ = gx.astype(np.float64) - centre[0], gy.astype(np.float64) - centre[1]
    w = w.astype(np.float64)
    if fit == "constant":
        u, vv = v[:, 0].astype(np.float64), v[:, 1].astype(np.float64)
        features = np.stack([w, w * u, w * vv], axis=1)
    else:
        features = _moment_features(px, py, v.astype(np.float64), w)
    inv_s2 = 1.0 / sigma**2
    dx2 = (nx_[:, None] - px[None, :]) ** 2 * inv_s2  # (gx, n)
    dy2 = (ny_[:, None] - py[None, :]) ** 2 * inv_s2  # (gy, n)
    sums = heavy_tail_sums(dy2, dx2, features.T)  # (gy, gx, features)
    if fit == "constant":
        return np.moveaxis(sums[..., 1:] / sums[..., :1], -1, 0).astype(np.float32)
    weight, targets = 0.0, None
    if prior > 0:
        targets = _global_plane(features.sum(axis=0), nx_[None, :], ny_[:, None], sigma)
        weight = prior * float(w.mean())
    # the planes of _plane_fits, each node's 3x3 system solved in one compiled pass
    return node_planes(sums, nx_, ny_, sigma, weight, targets)[:, 0].astype(np.float32)


def _global_plane(total: np.ndarray, gx: np.ndarray, gy: np.ndarray, sigma: float) -> np.ndarray:
    """The weighted least-squares plane through all vectors (``total``: their summed
    :func:`_moment_features`) at the nodes ``(gx, gy)``: ``(2, 3, ...)`` as :func:`_plane_fits`.

    Beyond :data:`PRIOR_REACH` standard deviations of the points (Mahalanobis distance from
    their weighted centroid) the plane is held at its value at that distance, along the
    line from the centroid, so that it stays bounded far from the vectors.
    """
    a = total[0]
    cx, cy = total[1] / a, total[2] / a
    cov = np.array([total[3] / a - cx * cx, total[4] / a - cx * cy, total[5] / a - cy * cy])
    cov[[0, 2]] += 1e-6 * sigma**2  # one point, or points on a line: every direction bounded
    plane = _plane_fits(total, np.asarray(cx), np.asarray(cy), sigma)  # (2, 3) at the centroid
    ox, oy = gx - cx, gy - cy
    distance2 = (cov[2] * ox * ox - 2 * cov[1] * ox * oy + cov[0] * oy * oy) / (
        cov[0] * cov[2] - cov[1] ** 2
    )
    held = np.minimum(1.0, PRIOR_REACH / np.sqrt(np.maximum(distance2, 1e-300)))
    out = np.empty((2, 3, *held.shape))
    for c, (mean, slope_x, slope_y) in enumerate(plane):
        out[c, 0] = mean + held * (slope_x * ox + slope_y * oy)
        out[c, 1], out[c, 2] = held * slope_x, held * slope_y
    return out


def _heavy_tail(d2: np.ndarray) -> np.ndarray:
    """The kernel ``(1 + d2)^-2`` of squared scaled distances ``d2 = (d / sigma)^2``, in place."""
    d2 += 1.0
    np.multiply(d2, d2, out=d2)
    return np.reciprocal(d2, out=d2)


def _moment_features(px, py, v, w) -> np.ndarray:
    """The 12 weighted moments a local plane fit sums: ``(n, 12)``."""
    u, vv = v[:, 0], v[:, 1]
    columns = [w, w * px, w * py, w * px * px, w * px * py, w * py * py]
    columns += [w * u, w * u * px, w * u * py, w * vv, w * vv * px, w * vv * py]
    return np.stack(columns, axis=1)


def _plane_fits(
    sums: np.ndarray,
    gx: np.ndarray,
    gy: np.ndarray,
    sigma: float,
    anchor: tuple[float, np.ndarray] | None = None,
) -> np.ndarray:
    """The weighted least-squares plane through the vectors at each node ``(gx, gy)``:
    ``(2, 3, ...)``, per component its value and slopes along ``x`` and ``y``.

    ``anchor``: ``(weight, targets)``, a pseudo-observation of weight ``weight`` at each
    node of the planes ``targets`` (``(2, 3, ...)``, as returned), its slopes as if seen
    by points ``sigma / sqrt(2)`` away on both axes (a ridge towards them).
    """
    a, bx, by, cxx, cxy, cyy = (sums[..., i] for i in range(6))
    # second moments about the node (gx, gy)
    sx, sy = bx - gx * a, by - gy * a
    sxx = cxx - 2 * gx * bx + gx * gx * a
    sxy = cxy - gx * by - gy * bx + gx * gy * a
    syy = cyy - 2 * gy * by + gy * gy * a
    ridge = 1e-6 * sigma**2 * a  # only decides the slope where the points do not (1-2 points)
    weight, targets = anchor if anchor is not None else (0.0, np.zeros((2, 3)))
    slope_weight = weight * sigma**2 / 2
    matrix = np.stack(
        [
            np.stack([a + weight, sx, sy], -1),
            np.stack([sx, sxx + ridge + slope_weight, sxy], -1),
            np.stack([sy, sxy, syy + ridge + slope_weight], -1),
        ],
        -2,
    )
    out = np.empty((2, 3, *a.shape))
    for c, base in enumerate((6, 9)):
        t0, tx, ty = sums[..., base], sums[..., base + 1], sums[..., base + 2]
        rhs = np.stack(
            np.broadcast_arrays(
                t0 + weight * targets[c, 0],
                tx - gx * t0 + slope_weight * targets[c, 1],
                ty - gy * t0 + slope_weight * targets[c, 2],
            ),
            -1,
        )[..., None]
        out[c] = np.moveaxis(np.linalg.solve(matrix, rhs)[..., 0], -1, 0)
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
    buffer: int | None = None,
    outliers: float | None = None,
    max_speed: float | None = None,
    refine: int = 0,
    decluster: int = 16,
    sigma: float = 6.0,
    grid_step: int = 8,
    fit: str = "linear",
    prior: float = 1e-3,
    debias: bool = True,
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
    buffer : int, optional
        No corners within this many pixels of data missing in only one frame of
        a pair (a gap that opened, closed or moved; :func:`feature_mask`);
        default ``win_size // 2``, so that no tracking window reaches the still
        edge the blanking leaves there.
    outliers : float, optional
        Drop vectors more than this many robust standard deviations away from
        their 30 nearest neighbours (:func:`find_outliers`); ``None`` (default)
        keeps all: on the shared radar data dropping them at 3 lowered CSI at
        1 mm/h by 0.036 on BOM, whose fast cells move unlike their neighbours.
    max_speed : float, optional
        Drop vectors faster than this many pixels per step before they are
        pooled: a window in a dry, featureless patch can lock onto another patch
        far away (on the OPERA composite of 2018-08-24 one vector of 108 pixels
        per step, 240 m/s, among vectors of 5). ``None`` (default) keeps all;
        the optical-flow model passes the speed of 100 m/s on the cube's grid
        and step (:func:`xnowcast.motion.api.pixel_speed_limit`).
        When more than :data:`MAX_DROPPED_SHARE` of a call's vectors are that
        fast, a ``UserWarning`` says so: the input frames, not the tracking,
        are then likely at fault.
    refine : int
        Refinement passes: move the earlier frame of each pair along the flow,
        track the motion that is left and add it (0: none). Corrects what the
        interpolation missed; costs a full tracking per pass, and the 8-bit
        bilinear warp limits it (2.7 % on the rotation without ``debias``).
    decluster : int
        Cell size (pixels) in which vectors are averaged before interpolation
        (0 or 1: no averaging).
    sigma, grid_step, fit, prior
        See :func:`interpolate_vectors`.
    debias : bool
        Subtract from each vector the bias of its tracking window where the
        flow turns, shears or stretches (:func:`window_bias`, with the flow's
        Jacobians fitted on the scale of half the window, :func:`local_jacobians`;
        at most :data:`DEBIAS_LIMIT` pixels). Lowers the error of a rotation of
        1 degree per step from 3.9 % to 0.8 %; on the shared radar data it
        raised every mean score a little (``benchmarks/bench_motion.py``).

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
        buffer=buffer,
        outliers=outliers,
        max_speed=max_speed,
        refine=refine,
        decluster=decluster,
        sigma=sigma,
        grid_step=grid_step,
        fit=fit,
        prior=prior,
        debias=debias,
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
    dense: dict[str, Any] = dict(
        shape=shape,
        track=track,
        outliers=outliers,
        max_speed=max_speed,
        decluster=decluster,
        sigma=sigma,
        grid_step=grid_step,
        fit=fit,
        prior=prior,
        debias=bool(debias),
    )
    pairs = frame_pairs(frames, n_flows, value_range)
    missing = np.isnan(frames[-(n_flows + 1) :])
    margin = int(win_size) // 2 if buffer is None else int(buffer)
    masks = [feature_mask(missing[i], missing[i + 1], margin) for i in range(n_flows)]
    if combine == "median":
        flows = [_refined([pair], [mask], int(refine), dense) for pair, mask in zip(pairs, masks)]
        return finish_flow(flows, "median", smooth)
    return finish_flow([_refined(pairs, masks, int(refine), dense)], "weighted", smooth)


def _dense(
    pairs,
    masks,
    *,
    shape,
    track,
    outliers,
    max_speed,
    decluster,
    sigma,
    grid_step,
    fit,
    prior,
    debias,
) -> np.ndarray:
    """One dense flow from the vectors of all pairs (weights ``1 .. n``, most recent last)."""
    seen: dict[Any, bytes] = {}  # image digests: consecutive pairs share a frame
    tracked = [_tracked(a, b, m, debias, track, seen) for (a, b), m in zip(pairs, masks)]
    if max_speed is not None:
        tracked = _plausible(tracked, float(max_speed))
    if outliers is not None:
        tracked = [_clean(p, v, m, outliers) for p, v, m in tracked]
    points = np.concatenate([p for p, _, _ in tracked])
    vectors = np.concatenate([v for _, v, _ in tracked])
    weights = np.concatenate([np.full(len(p), i + 1.0) for i, (p, _, _) in enumerate(tracked)])
    extra = []
    if debias and len(points):  # the bias, linear in the Jacobian, is declustered as a tensor
        extra.append(_bias_tensors(np.concatenate([m for _, _, m in tracked])))
    p, v, w, *tensors = _decluster(points, vectors, weights, decluster, *extra)
    if tensors:
        v = _debiased(p, v, w, tensors[0], track["win_size"] * DEBIAS_SCALE)
    return interpolate_vectors(
        p, v, shape, weights=w, sigma=sigma, grid_step=grid_step, fit=fit, prior=prior
    )


def _debiased(points, vectors, weights, tensors, scale: float) -> np.ndarray:
    """``vectors`` less the bias of their tracking windows (:func:`window_bias`).

    ``tensors``: :func:`_bias_tensors` of the windows (averaged as the vectors were
    declustered). The flow's local Jacobians are fitted to the vectors on the scale
    of the window (:func:`local_jacobians`), first to the tracked vectors, then
    (``DEBIAS_PASSES`` fits in all) to the corrected ones; a correction is at most
    ``DEBIAS_LIMIT`` pixels.
    """
    fits = _JacobianFits(points, weights, scale)
    corrected = vectors
    for _ in range(DEBIAS_PASSES):
        bias = np.einsum("nijk,njk->ni", tensors, fits(corrected))
        if DEBIAS_LIMIT is not None:
            size = np.hypot(bias[:, 0], bias[:, 1])
            bias *= np.minimum(1.0, DEBIAS_LIMIT / np.maximum(size, 1e-12))[:, None]
        corrected = (vectors - bias).astype(np.float32)
    return corrected


def _refined(pairs, masks, refine: int, dense: dict[str, Any]) -> np.ndarray:
    """:func:`_dense`, then ``refine`` times: move the earlier frames along the flow, track
    what motion is left and add it (corrects the bias of a tracking window in a rotating or
    shearing flow, and what the interpolation missed)."""
    flow = _dense(pairs, masks, **dense)
    for _ in range(refine):
        if not flow.any():
            break
        moved = [(warp_image(a, flow), b) for a, b in pairs]
        residual = _dense(moved, masks, **dense)
        flow = flow + sample_at(residual, flow)
    return flow


def warp_image(image: np.ndarray, flow: np.ndarray, iterations: int = 3) -> np.ndarray:
    """``image`` (8-bit) moved along ``flow``: the value at ``p`` goes to ``p + flow(p)``.

    The source of each pixel ``x`` solves ``s + flow(s) = x`` (fixed-point iteration
    from ``s = x - flow(x)``); sampling is bilinear, in exact float arithmetic.
    Pixels from outside the image get 0.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.arange(5, dtype=np.uint8)[None].repeat(2, 0) * 10
    >>> flow = np.zeros((2, 2, 5), "float32"); flow[0] = 1.0
    >>> warp_image(image, flow)[0].tolist()
    [0, 0, 10, 20, 30]
    """
    flow = np.asarray(flow, np.float32)
    ny, nx = flow.shape[1:]
    grid = np.mgrid[0:ny, 0:nx].astype(np.float32)[::-1]  # x, y
    top = np.array([nx - 1, ny - 1], np.float32)[:, None, None]
    disp = -flow
    for _ in range(iterations):  # the flow is read at the nearest point of the grid
        disp = -sample_at(flow, np.clip(grid + disp, 0, top) - grid)
    moved = sample_at(image.astype(np.float32)[None], disp)[0]
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8)


def sample_at(fields: np.ndarray, disp: np.ndarray) -> np.ndarray:
    """``fields`` (``(l, y, x)``) read at ``x + disp(x)`` (bilinear, exact; 0 outside).

    Examples
    --------
    >>> import numpy as np
    >>> fields = np.arange(4, dtype="float32").reshape(1, 1, 4)
    >>> disp = np.full((2, 1, 4), 0.5, "float32"); disp[1] = 0
    >>> sample_at(fields, disp).tolist()
    [[[0.5, 1.5, 2.5, 3.0]]]
    """
    from xnowcast.extrapolation.kernels import advect_leads, resize_weights

    fields = np.ascontiguousarray(fields, np.float32)
    n, ny, nx = fields.shape
    steps = np.ascontiguousarray(np.broadcast_to(disp, (n, 2, ny, nx)), np.float32)
    out = np.empty((n, ny, nx), np.float32)
    nothing_missing = np.zeros((1, 0, 0), np.uint8)
    rows, cols = resize_weights(ny, ny), resize_weights(nx, nx)
    advect_leads(fields, nothing_missing, steps, rows, cols, 1, np.float32(0.0), out)
    return out


def _plausible(tracked: list, max_speed: float) -> list:
    """The ``(points, vectors, moments)`` of each pair without vectors faster than
    ``max_speed``; a warning when they are more than :data:`MAX_DROPPED_SHARE` of all."""
    kept, dropped, total = [], 0, 0
    for points, vectors, moments in tracked:
        keep = np.hypot(vectors[:, 0], vectors[:, 1]) <= max_speed
        dropped, total = dropped + int((~keep).sum()), total + len(keep)
        kept.append(_kept(points, vectors, moments, keep))
    if dropped > MAX_DROPPED_SHARE * total:
        warnings.warn(
            f"{dropped} of {total} tracked motion vectors were faster than max_speed="
            f"{max_speed:.3g} pixels per step, beyond any physical speed, and were left out: "
            "so many point to a problem in the input frames (missing data encoded as values, "
            "frames of another scene) or a transform that does not suit the field's value "
            "range (docs/satellite.md)",
            UserWarning,
            stacklevel=5,
        )
    return kept


def _clean(points: np.ndarray, vectors: np.ndarray, moments: np.ndarray, threshold: float):
    """``points, vectors, moments`` without the outliers of :func:`find_outliers`."""
    return _kept(points, vectors, moments, ~find_outliers(points, vectors, threshold))


def _kept(points: np.ndarray, vectors: np.ndarray, moments: np.ndarray, keep: np.ndarray):
    """``points, vectors, moments`` where ``keep``; ``moments`` is empty without ``debias``."""
    return points[keep], vectors[keep], moments[keep] if len(moments) else moments


def track_pair(
    prev: np.ndarray,
    nxt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    moments: bool = False,
    **track: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`sparse_vectors` of one pair, with the moments of the tracking windows; memoised.

    The result is kept in :data:`TRACKS` under a digest of both images, the mask
    and every option, so that a frame pair shared by forecasts of consecutive
    init times is tracked once; it is returned as stored (read-only arrays), the
    same bits as a fresh computation.

    Parameters
    ----------
    prev, nxt : (y, x) uint8
        The frames of the pair.
    mask : (y, x) uint8, optional
        Where corners may be taken (:func:`feature_mask`).
    moments : bool
        Also the structure moments of each window
        (:func:`xnowcast.motion.kernels.window_moments`), for :func:`window_bias`.
    **track
        Options of :func:`sparse_vectors`.

    Returns
    -------
    points, vectors : (n, 2) float32
        As :func:`sparse_vectors`.
    moments : (n, 3, 3) float64
        The window moments (``(0, 3, 3)`` when ``moments`` is False).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> image = (rng.random((64, 64)) * 255).astype(np.uint8)
    >>> TRACKS.clear()
    >>> first = track_pair(image, np.roll(image, 1, axis=1), win_size=21)
    >>> again = track_pair(image, np.roll(image, 1, axis=1), win_size=21)
    >>> again[1] is first[1], TRACKS.info().hits
    (True, 1)
    """
    return _tracked(prev, nxt, mask, bool(moments), track, {})


def _tracked(prev, nxt, mask, moments: bool, track: dict[str, Any], seen: dict[Any, bytes]):
    """:func:`track_pair`; ``seen``: digests of the images already digested (the later
    frame of one pair is the earlier frame of the next), by where their bytes lie."""
    images = np.frombuffer(_image_digest(prev, seen) + _image_digest(nxt, seen), np.uint8)
    # only where the mask is nonzero matters: its bits (8x fewer bytes to digest)
    allowed = None if mask is None else np.packbits(np.asarray(mask) != 0, axis=-1)
    key = digest(images, allowed, moments=moments, **track)

    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points, vectors = sparse_vectors(prev, nxt, mask=mask, **track)
        if moments and len(points):
            found = window_moments(prev, points, track.get("win_size", 50))
        else:
            found = np.zeros((len(points) if moments else 0, 3, 3))
        return points, vectors, found

    points, vectors, found = TRACKS.get(key, compute)
    return points, vectors, found


def _image_digest(image: np.ndarray, seen: dict[Any, bytes]) -> bytes:
    """:func:`~xnowcast.motion.memo.digest` of ``image``, once for views of the same bytes
    (``seen``: by address, shape, strides and dtype; only for images alive meanwhile)."""
    where = (image.__array_interface__["data"][0], image.shape, image.strides, image.dtype.str)
    if where not in seen:
        seen[where] = digest(image)
    return seen[where]


def window_bias(moments: np.ndarray, jacobians: np.ndarray) -> np.ndarray:
    """The bias of Lucas-Kanade vectors where the flow is not uniform in their windows.

    Lucas-Kanade finds the displacement ``d`` of a window that solves
    ``sum g g^T (d(x) - d) = 0`` over its samples ``x`` (``g`` the image gradient).
    Where the flow turns, shears or stretches, ``d(x) = d(c) + A (x - c)`` about
    the window's centre ``c``, so ``d = d(c) + G^-1 sum g g^T A (x - c)`` with
    ``G = sum g g^T``: the second term is returned (first order in ``A``). In a
    rotation of 1 degree per step it reaches 0.3 pixels with 50-pixel windows.

    Parameters
    ----------
    moments : (n, 3, 3) array
        :func:`xnowcast.motion.kernels.window_moments` of the windows.
    jacobians : (n, 2, 2) array
        ``A``: ``jacobians[:, i, k]`` is the derivative of ``(u, v)[i]`` along
        ``(x, y)[k]`` at each window (:func:`local_jacobians`).

    Returns
    -------
    (n, 2) float64
        The bias; zero where ``G`` is singular.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 3, 3)); m[0, 0, 0] = m[0, 2, 0] = 10.0  # G = 10 I
    >>> m[0, 2, 1] = 30.0  # the y-gradients lie right of the centre: sum gy^2 dx = 30
    >>> rotation = np.array([[[0.0, -0.1], [0.1, 0.0]]])  # u = -0.1 dy, v = 0.1 dx
    >>> window_bias(m, rotation).round(6).tolist()  # v seen 3 px right: 0.1 * 30 / 10
    [[0.0, 0.3]]
    """
    tensors = _bias_tensors(np.asarray(moments, np.float64))
    return np.einsum("nijk,njk->ni", tensors, np.asarray(jacobians, np.float64))


def _bias_tensors(moments: np.ndarray) -> np.ndarray:
    """``T[n, i, j, k]``: the bias of window ``n`` along ``i`` is ``sum_jk T_ijk A_jk``.

    ``T = G^-1 M`` with ``M_ijk = sum g_i g_j (x - c)_k``; zero where ``G`` is singular.
    """
    m = moments
    gxx, gxy, gyy = m[:, 0, 0], m[:, 1, 0], m[:, 2, 0]
    det = gxx * gyy - gxy * gxy
    ok = det > 1e-9 * np.maximum(gxx + gyy, 1e-300) ** 2
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    mxx, mxy, myy = m[:, 0, 1:], m[:, 1, 1:], m[:, 2, 1:]  # (n, k)
    tensors = np.empty((len(m), 2, 2, 2))
    # G^-1 = [[gyy, -gxy], [-gxy, gxx]] / det, applied to M[:, :, j, k] (i = x, y)
    tensors[:, 0, 0] = (gyy[:, None] * mxx - gxy[:, None] * mxy) * inv[:, None]
    tensors[:, 1, 0] = (gxx[:, None] * mxy - gxy[:, None] * mxx) * inv[:, None]
    tensors[:, 0, 1] = (gyy[:, None] * mxy - gxy[:, None] * myy) * inv[:, None]
    tensors[:, 1, 1] = (gxx[:, None] * myy - gxy[:, None] * mxy) * inv[:, None]
    return tensors


def local_jacobians(
    points: np.ndarray,
    vectors: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    sigma: float = 25.0,
) -> np.ndarray:
    """The flow's Jacobian at each point: local linear regression of the vectors around it.

    The weighted least-squares plane through the vectors with the kernel of
    :func:`interpolate_vectors` (``(1 + (d / sigma)^2)^-2``) centred on each point;
    its slopes. Exact for any affine flow.

    Returns
    -------
    (n, 2, 2) float64
        ``[:, i, k]``: the derivative of ``(u, v)[i]`` along ``(x, y)[k]``.

    Examples
    --------
    >>> import numpy as np
    >>> points = np.random.default_rng(0).random((30, 2)) * 100
    >>> a = np.array([[0.01, -0.02], [0.03, 0.0]])
    >>> jac = local_jacobians(points, points @ a.T + 1.0)
    >>> bool(np.allclose(jac, a, atol=1e-6))
    True
    """
    n = len(points)
    w = np.ones(n) if weights is None else weights
    return _JacobianFits(points, w, sigma)(vectors)


class _JacobianFits:
    """:func:`local_jacobians` of several vector sets at the same points (one kernel).

    The kernel sums are an ``einsum`` (numpy's own loops): a BLAS product of these
    small matrices starts threads that cost far more than the product on a busy machine.
    """

    def __init__(self, points: np.ndarray, weights: np.ndarray, sigma: float) -> None:
        p = np.asarray(points, np.float64).reshape(-1, 2)
        self.weights = np.asarray(weights, np.float64)
        self.sigma = float(sigma)
        self.px, self.py = p[:, 0] - p[:, 0].mean(), p[:, 1] - p[:, 1].mean()
        kernel = (self.px[:, None] - self.px) ** 2 + (self.py[:, None] - self.py) ** 2
        kernel *= 1.0 / self.sigma**2
        self.kernel = _heavy_tail(kernel)

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        if len(self.px) == 0:
            return np.zeros((0, 2, 2))
        v = np.asarray(vectors, np.float64)
        features = _moment_features(self.px, self.py, v, self.weights)
        sums = np.einsum("ts,sf->tf", self.kernel, features)
        planes = _plane_fits(sums, self.px, self.py, self.sigma)
        return np.moveaxis(planes[:, 1:], -1, 0)
