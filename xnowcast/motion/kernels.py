"""Numba kernels of the motion methods: the structure moments of Lucas-Kanade windows.

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

__all__ = ["window_moments"]

numba = import_optional("numba", "Lucas-Kanade motion")


@numba.njit(cache=True, nogil=True)
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
    """
    cv2 = import_optional("cv2", "Lucas-Kanade motion")

    gx = cv2.Scharr(image, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(image, cv2.CV_32F, 0, 1)
    points = np.ascontiguousarray(points, np.float64).reshape(-1, 2)
    out = np.empty((len(points), 3, 3))
    _moments(gx, gy, points, int(win_size), out)
    return out
