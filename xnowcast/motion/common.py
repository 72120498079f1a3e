"""Helpers shared by the motion methods: frame checks, 8-bit frame pairs, combining flows.

Every method of :mod:`xnowcast.motion` validates its frames with
:func:`check_frames`, turns the last ``n_flows`` pairs into 8-bit images with
:func:`frame_pairs` and ends with :func:`finish_flow` (combine the per-pair
flows, smooth, ``float32``). The registry lives in
:mod:`xnowcast.motion.interface`, which imports nothing from here.

Examples
--------
>>> import numpy as np
>>> from xnowcast.motion.common import check_frames, finish_flow
>>> check_frames(np.zeros((3, 4, 4)), n_flows=2).dtype
dtype('float32')
>>> round(float(finish_flow([np.ones((2, 4, 4)), np.zeros((2, 4, 4))]).mean()), 4)  # weights 1, 2
0.3333
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xnowcast.checks import choice, positive_int, real
from xnowcast.optional import import_optional

__all__ = [
    "COMBINE",
    "check_combine",
    "check_frames",
    "check_range",
    "combine_flows",
    "finish_flow",
    "frame_pairs",
    "smooth_flow",
]

#: Valid values of ``combine``.
COMBINE = ("weighted", "median")


def check_frames(frames: Any, n_flows: int = 1) -> np.ndarray:
    """Validate ``(t, y, x)`` frames and ``n_flows``; return them as ``float32``.

    Raises
    ------
    ValueError
        Wrong shape, fewer than ``n_flows + 1`` frames, or a bad ``n_flows``.

    Examples
    --------
    >>> import numpy as np
    >>> check_frames(np.zeros((2, 8, 8)), n_flows=2)
    Traceback (most recent call last):
    ...
    ValueError: n_flows=2 needs at least 3 frames, got 2; pass more frames or lower n_flows
    """
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(
            f"motion estimation needs frames of shape (t, y, x), got shape {frames.shape}"
        )
    if not np.issubdtype(frames.dtype, np.number):
        raise TypeError(f"frames must be numeric, got dtype {frames.dtype}")
    positive_int(n_flows, "n_flows")
    if frames.shape[0] < n_flows + 1:
        raise ValueError(
            f"n_flows={n_flows} needs at least {n_flows + 1} frames, got {frames.shape[0]}; "
            "pass more frames or lower n_flows"
        )
    if min(frames.shape[1:]) < 2:
        raise ValueError(f"frames must be at least 2x2 pixels, got {frames.shape[1:]}")
    return frames.astype(np.float32, copy=False)


def frame_pairs(
    frames: np.ndarray,
    n_flows: int,
    value_range: Sequence[float] = (0.0, 1.0),
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The last ``n_flows`` consecutive pairs as 8-bit images, oldest first.

    Each frame is mapped onto ``0 .. 255`` with the fixed ``value_range``
    (:func:`xnowcast.transforms.to_uint8`); pixels missing (``NaN``) in either
    frame of a pair get the bottom value in both.

    Examples
    --------
    >>> import numpy as np
    >>> f = np.array([[[0.0, np.nan]], [[1.0, 0.5]]])
    >>> [p.tolist() for p in frame_pairs(f, 1)[0]]
    [[[0, 0]], [[255, 0]]]
    """
    from xnowcast.transforms import to_uint8

    lo, hi = check_range(value_range)
    frames = np.asarray(frames, dtype=np.float32)[-(int(n_flows) + 1) :]  # the frames used
    t = frames.shape[0]
    missing = np.isnan(frames)
    images = to_uint8(frames, (lo, hi))
    pairs = []
    for i in range(t - n_flows - 1, t - 1):
        a, b = images[i], images[i + 1]
        gap = missing[i] | missing[i + 1]
        if gap.any() and not (missing[i] == missing[i + 1]).all():
            a, b = a.copy(), b.copy()
            a[gap] = 0
            b[gap] = 0
        pairs.append((a, b))
    return pairs


def check_range(value_range: Sequence[float]) -> tuple[float, float]:
    """Validate ``value_range``: two finite numbers ``(lo, hi)`` with ``hi > lo``.

    Examples
    --------
    >>> check_range([-15, 20])
    (-15.0, 20.0)
    >>> check_range((1, 1))
    Traceback (most recent call last):
    ...
    ValueError: value_range must be finite with hi > lo, got (1, 1)
    """
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be two numbers (lo, hi), got {value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"value_range must be finite with hi > lo, got {value_range!r}")
    return lo, hi


def combine_flows(flows: Sequence[np.ndarray], combine: str = "weighted") -> np.ndarray:
    """Combine the flows of several frame pairs (oldest first) into one.

    Parameters
    ----------
    flows : sequence of (2, y, x) arrays
        One flow per pair, oldest first.
    combine : {"weighted", "median"}
        ``"weighted"``: mean with weights ``1, 2, ..., n`` (recent pairs weigh
        more); ``"median"``: pixel-wise median of ``u`` and ``v``.

    Examples
    --------
    >>> import numpy as np
    >>> flows = [np.full((2, 1, 1), v, "float32") for v in (0.0, 3.0)]
    >>> float(combine_flows(flows, "weighted")[0, 0, 0])
    2.0
    >>> float(combine_flows(flows + [np.ones((2, 1, 1))], "median")[0, 0, 0])
    1.0
    """
    combine = check_combine(combine)
    if len(flows) == 1:
        return np.asarray(flows[0], dtype=np.float32)
    stack = np.stack(flows).astype(np.float32, copy=False)
    if combine == "median":
        return np.median(stack, axis=0).astype(np.float32)
    weights = np.arange(1, len(flows) + 1, dtype=np.float32)
    weights /= weights.sum()
    return np.tensordot(weights, stack, axes=1).astype(np.float32)


def smooth_flow(flow: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooth both components of a ``(2, y, x)`` flow (``sigma`` in pixels).

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.zeros((2, 9, 9), "float32"); flow[0, 4, 4] = 1.0
    >>> smoothed = smooth_flow(flow, 1.0)
    >>> bool(0 < smoothed[0, 4, 4] < 1), smooth_flow(flow, 0) is flow
    (True, True)
    """
    sigma = real(sigma, "smooth (sigma in pixels)", low=0)
    if sigma == 0:
        return flow
    cv2 = import_optional("cv2", "optical-flow motion")

    return np.stack(
        [cv2.GaussianBlur(c, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE) for c in flow]
    )


def finish_flow(
    flows: Sequence[np.ndarray], combine: str = "weighted", smooth: float = 0.0
) -> np.ndarray:
    """Combine per-pair ``(2, y, x)`` flows (:func:`combine_flows`), smooth, return float32.

    Examples
    --------
    >>> import numpy as np
    >>> finish_flow([np.full((2, 3, 3), 2.0)], smooth=1.0).dtype
    dtype('float32')
    """
    flow = combine_flows(flows, combine)
    flow = smooth_flow(np.ascontiguousarray(flow, dtype=np.float32), smooth)
    return np.ascontiguousarray(flow, dtype=np.float32)


def check_combine(combine: str) -> str:
    """Validate ``combine`` (see :data:`COMBINE`).

    Examples
    --------
    >>> check_combine("median")
    'median'
    """
    return choice(combine, "combine", COMBINE)
