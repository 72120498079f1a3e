"""Numba kernels of the motion methods: Lucas-Kanade window moments, the vector interpolation.

:func:`window_moments` sums, over the tracking window of each point exactly as
``cv2.calcOpticalFlowPyrLK`` samples it at full resolution (``win_size`` x
``win_size`` samples centred on the point, gradients interpolated bilinearly),
the products of the image gradient ``g g^T`` weighted by ``1`` and by the
sample's offset from the point along ``x`` and ``y``. They give the bias of a
tracked vector where the flow is not uniform inside the window
(:func:`xnowcast.motion.lucas_kanade.window_bias`).

Examples
--------
>>> import numpy as np
>>> from xnowcast.motion.kernels import window_moments
>>> image = np.zeros((40, 40), np.uint8); image[:, 20:] = 200  # one vertical edge
>>> m = window_moments(image, np.array([[20.0, 20.0]]), 9)
>>> m.shape, bool(m[0, 0, 0] > 0), float(m[0, 2, 0])  # (xx, xy, yy) x (1, dx, dy); no y-gradient
((1, 3, 3), True, 0.0)
"""

from __future__ import annotations

import numpy as np

from xnowcast.optional import import_optional

__all__ = ["SUM_FEATURES", "heavy_tail_sums", "node_planes", "window_moments"]

numba = import_optional("numba", "Lucas-Kanade motion")


@numba.njit(cache=True, nogil=True, fastmath={"reassoc"})
def _moments(gx, gy, points, win, out):  # pragma: no cover - compiled
    ny, nx = gx.shape
    half = (win - 1) * 0.5
    for n in range(points.shape[0]):
        bx = points[n, 0] - half
        by = points[n, 1] - half
        ix = int(np.floor(bx))
        iy = int(np.floor(by))
        fx = bx - ix
        fy = by - iy
        w00, w01 = (1 - fx) * (1 - fy), fx * (1 - fy)
        w10, w11 = (1 - fx) * fy, fx * fy
        acc = np.zeros(9)
        for a in range(win):
            y0 = iy + a
            if y0 < 0 or y0 + 1 >= ny:
                continue
            rxx = rxy = ryy = cxx = cxy = cyy = 0.0
            for b in range(win):
                x0 = ix + b
                if x0 < 0 or x0 + 1 >= nx:
                    continue
                sx = (
                    w00 * gx[y0, x0]
                    + w01 * gx[y0, x0 + 1]
                    + w10 * gx[y0 + 1, x0]
                    + w11 * gx[y0 + 1, x0 + 1]
                )
                sy = (
                    w00 * gy[y0, x0]
                    + w01 * gy[y0, x0 + 1]
                    + w10 * gy[y0 + 1, x0]
                    + w11 * gy[y0 + 1, x0 + 1]
                )
                dx = b - half
                pxx, pxy, pyy = sx * sx, sx * sy, sy * sy
                rxx += pxx
                rxy += pxy
                ryy += pyy
                cxx += pxx * dx
                cxy += pxy * dx
                cyy += pyy * dx
            dy = a - half
            acc[0] += rxx
            acc[1] += cxx
            acc[2] += rxx * dy
            acc[3] += rxy
            acc[4] += cxy
            acc[5] += rxy * dy
            acc[6] += ryy
            acc[7] += cyy
            acc[8] += ryy * dy
        for k in range(9):
            out[n, k // 3, k % 3] = acc[k]


def window_moments(image: np.ndarray, points: np.ndarray, win_size: int) -> np.ndarray:
    """Gradient structure moments of the Lucas-Kanade window of each point.

    Parameters
    ----------
    image : (y, x) uint8
        The image the points are tracked from (the earlier frame of a pair).
    points : (n, 2) array
        ``(x, y)`` positions.
    win_size : int
        Side of the tracking window in pixels (``cv2.calcOpticalFlowPyrLK``'s ``winSize``).

    Returns
    -------
    (n, 3, 3) float64
        ``m[:, c, k]``: the sum over the window of ``gx*gx``, ``gx*gy``, ``gy*gy``
        (``c`` = 0, 1, 2; Scharr gradients) times ``1``, ``dx``, ``dy`` (``k``),
        where ``(dx, dy)`` is the sample's offset from the point. Samples outside
        the image are left out.

    Notes
    -----
    The sums are compiled with reassociation (vectorised, about 2.5x faster than in
    the order of the samples). At whole-pixel points (the corners of
    ``cv2.goodFeaturesToTrack``) and windows up to 64 pixels, every partial sum is a
    multiple of ``1/64`` below ``2**53 / 64`` (Scharr gradients of 8-bit images are
    integers below 4081, offsets half-integers), so the sums are exact and the same in
    any order; elsewhere they agree to float64 rounding.
    """
    cv2 = import_optional("cv2", "Lucas-Kanade motion")

    gx = cv2.Scharr(image, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(image, cv2.CV_32F, 0, 1)
    points = np.ascontiguousarray(points, np.float64).reshape(-1, 2)
    out = np.empty((len(points), 3, 3))
    _moments(gx, gy, points, int(win_size), out)
    return out


@numba.njit(cache=True, nogil=True)
def _solve3(m, b):  # pragma: no cover - compiled
    """Solve the 3x3 system ``m x = b`` in place (``b`` becomes ``x``; ``m`` is destroyed).

    LU with partial pivoting, as LAPACK's ``dgesv`` does it (the multipliers scaled by
    the reciprocal of the pivot); a zero pivot is skipped (LAPACK would stop there).
    """
    for k in range(3):
        piv = k
        for i in range(k + 1, 3):
            if abs(m[i, k]) > abs(m[piv, k]):
                piv = i
        if piv != k:
            for j in range(3):
                m[k, j], m[piv, j] = m[piv, j], m[k, j]
            for j in range(b.shape[1]):
                b[k, j], b[piv, j] = b[piv, j], b[k, j]
        if m[k, k] == 0.0:
            continue
        r = 1.0 / m[k, k]
        for i in range(k + 1, 3):
            m[i, k] *= r
            for j in range(k + 1, 3):
                m[i, j] -= m[i, k] * m[k, j]
            for j in range(b.shape[1]):
                b[i, j] -= m[i, k] * b[k, j]
    for j in range(b.shape[1]):
        for k in range(2, -1, -1):
            s = b[k, j]
            for i in range(k + 1, 3):
                s -= m[k, i] * b[i, j]
            b[k, j] = s / m[k, k] if m[k, k] != 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def _node_planes(sums, gx, gy, ridge, weight, slope_weight, targets, out):  # pragma: no cover
    ny, nx = sums.shape[0], sums.shape[1]
    m = np.empty((3, 3))
    b = np.empty((3, 2))
    for r in range(ny):
        y = gy[r]
        for c in range(nx):
            x = gx[c]
            s = sums[r, c]
            a, bx, by = s[0], s[1], s[2]
            sx, sy = bx - x * a, by - y * a
            sxx = s[3] - 2 * x * bx + x * x * a
            sxy = s[4] - x * by - y * bx + x * y * a
            syy = s[5] - 2 * y * by + y * y * a
            rid = ridge * a
            m[0, 0], m[0, 1], m[0, 2] = a + weight, sx, sy
            m[1, 0], m[1, 1], m[1, 2] = sx, sxx + rid + slope_weight, sxy
            m[2, 0], m[2, 1], m[2, 2] = sy, sxy, syy + rid + slope_weight
            for k in range(2):
                t0, tx, ty = s[6 + 3 * k], s[7 + 3 * k], s[8 + 3 * k]
                b[0, k] = t0 + weight * targets[k, 0, r, c]
                b[1, k] = tx - x * t0 + slope_weight * targets[k, 1, r, c]
                b[2, k] = ty - y * t0 + slope_weight * targets[k, 2, r, c]
            _solve3(m, b)
            for k in range(2):
                for i in range(3):
                    out[k, i, r, c] = b[i, k]


def node_planes(
    sums: np.ndarray,
    gx: np.ndarray,
    gy: np.ndarray,
    sigma: float,
    weight: float = 0.0,
    targets: np.ndarray | None = None,
) -> np.ndarray:
    """Weighted least-squares planes of ``(u, v)`` at the nodes of a grid, from summed moments.

    The 3x3 normal equations of each node, solved in one compiled pass (numpy's batched
    ``solve`` pays a LAPACK call per node); see
    :func:`xnowcast.motion.lucas_kanade.interpolate_vectors`.

    Parameters
    ----------
    sums : (ny, nx, 12) float64
        Kernel-weighted sums of the 12 moments of the vectors at each node (``w``,
        ``w x``, ``w y``, ``w x x``, ``w x y``, ``w y y``, then ``w u`` times ``1, x, y``
        and ``w v`` times ``1, x, y``), positions relative to any common origin.
    gx : (nx,) float64
        Node positions along ``x`` (same origin).
    gy : (ny,) float64
        Node positions along ``y``.
    sigma : float
        Kernel scale in pixels: a ridge of ``1e-6 sigma^2`` times the summed weight
        decides the slopes where the points do not.
    weight : float
        Weight of a pseudo-observation of the planes ``targets`` at each node, its
        slopes as if seen ``sigma / sqrt(2)`` away on both axes.
    targets : (2, 3, ny, nx) float64, optional
        Value and slopes (``x``, ``y``) of ``u`` and ``v`` that ``weight`` pulls towards.

    Returns
    -------
    (2, 3, ny, nx) float64
        Per component, the plane's value at the node and its slopes along ``x`` and ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> px, py = np.array([0.0, 4.0, 0.0]), np.array([0.0, 0.0, 4.0])
    >>> u, v, w = 1 + 0.5 * px, 2 - 0.25 * py, np.ones(3)
    >>> moments = [w, px, py, px * px, px * py, py * py, u, u * px, u * py, v, v * px, v * py]
    >>> sums = np.stack(moments, 1).sum(0)[None, None]  # one node, every point weight 1
    >>> planes = node_planes(sums, np.array([2.0]), np.array([0.0]), 1.0)  # the node (2, 0)
    >>> (planes[:, :, 0, 0].round(6) + 0.0).tolist()  # u = 1 + 0.5 x, v = 2 - 0.25 y
    [[2.0, 0.5, 0.0], [2.0, 0.0, -0.25]]
    """
    sums = np.ascontiguousarray(sums, np.float64)
    ny, nx = sums.shape[:2]
    if sums.shape != (ny, nx, 12) or np.shape(gx) != (nx,) or np.shape(gy) != (ny,):
        raise ValueError(
            f"sums must be (ny, nx, 12) with gx of length nx and gy of length ny, got "
            f"{sums.shape}, {np.shape(gx)} and {np.shape(gy)}"
        )
    if targets is None:
        targets = np.zeros((2, 3, ny, nx))
    targets = np.ascontiguousarray(np.broadcast_to(targets, (2, 3, ny, nx)), np.float64)
    out = np.empty((2, 3, ny, nx))
    gx = np.ascontiguousarray(gx, np.float64)
    gy = np.ascontiguousarray(gy, np.float64)
    sigma = float(sigma)
    weight = float(weight)
    _node_planes(sums, gx, gy, 1e-6 * sigma**2, weight, weight * sigma**2 / 2, targets, out)
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "nsz", "contract"})
def _heavy_tail_sums(dy2, dx2, features, out):  # pragma: no cover - compiled
    rows, n = dy2.shape
    f0, f1, f2, f3, f4, f5 = (
        features[0],
        features[1],
        features[2],
        features[3],
        features[4],
        features[5],
    )
    f6, f7, f8, f9, f10, f11 = (
        features[6],
        features[7],
        features[8],
        features[9],
        features[10],
        features[11],
    )
    for r in range(rows):
        yr = dy2[r]
        for g in range(dx2.shape[0]):
            xg = dx2[g]
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = 0.0
            for p in range(n):
                d2 = (yr[p] + xg[p]) + 1.0
                k = 1.0 / (d2 * d2)
                s0 += k * f0[p]
                s1 += k * f1[p]
                s2 += k * f2[p]
                s3 += k * f3[p]
                s4 += k * f4[p]
                s5 += k * f5[p]
                s6 += k * f6[p]
                s7 += k * f7[p]
                s8 += k * f8[p]
                s9 += k * f9[p]
                s10 += k * f10[p]
                s11 += k * f11[p]
            o = out[r, g]
            o[0], o[1], o[2], o[3], o[4], o[5] = s0, s1, s2, s3, s4, s5
            o[6], o[7], o[8], o[9], o[10], o[11] = s6, s7, s8, s9, s10, s11


#: Most values per point :func:`heavy_tail_sums` weighs (the moments of a local plane fit).
SUM_FEATURES = 12


def heavy_tail_sums(dy2: np.ndarray, dx2: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``sum_p (1 + dy2[r, p] + dx2[g, p])^-2 * features[:, p]`` at every node ``(r, g)``.

    The kernel regression's sums, in one compiled pass that never forms the
    kernel: the kernel weight of each point is computed and used at once.
    Faster than the kernel array times a BLAS matrix product even on one BLAS
    thread, and free of BLAS threads: from about a thousand points the
    product crossed OpenBLAS's threshold for threads, which on a busy
    machine cost many times the CPU time of one thread. Sums in float64, in a
    reassociated order (the compiler vectorises them): equal to the matrix
    product to rounding.

    Parameters
    ----------
    dy2 : (rows, n) float64
        Squared scaled distances along ``y`` from each grid row to each point.
    dx2 : (nodes, n) float64
        Squared scaled distances along ``x`` from each grid column to each point.
    features : (k, n) float64
        The values of each point to weigh, ``k <= 12`` (:data:`SUM_FEATURES`):
        the 12 moments of a local plane fit, or fewer.

    Returns
    -------
    (rows, nodes, k) float64

    Examples
    --------
    >>> import numpy as np
    >>> features = np.zeros((12, 2)); features[0] = 1.0  # the kernel weights themselves
    >>> sums = heavy_tail_sums(np.array([[0.0, 1.0]]), np.array([[0.0, 0.0], [1.0, 3.0]]), features)
    >>> sums[..., 0].tolist()  # (1 + 0.25), (0.25 + 0.04)
    [[1.25, 0.29]]
    """
    dy2 = np.ascontiguousarray(dy2, np.float64)
    dx2 = np.ascontiguousarray(dx2, np.float64)
    features = np.asarray(features, np.float64)
    n = dy2.shape[1] if dy2.ndim == 2 else -1
    k = features.shape[0] if features.ndim == 2 else 0
    if dx2.ndim != 2 or dx2.shape[1] != n or not 0 < k <= SUM_FEATURES or features.shape[1] != n:
        raise ValueError(
            "dy2 and dx2 must be 2-d with one column per point, and features (k <= "
            f"{SUM_FEATURES}, points); got shapes {dy2.shape}, {dx2.shape} and {features.shape}"
        )
    padded = np.zeros((SUM_FEATURES, n))
    padded[:k] = features
    out = np.empty((dy2.shape[0], dx2.shape[0], SUM_FEATURES))
    _heavy_tail_sums(dy2, dx2, padded, out)
    return out[..., :k]
