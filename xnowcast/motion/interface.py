"""The motion-estimation array contract and the method registry.

Array contract
--------------
``flow = method(frames, **options)``

* ``frames``: ``(t, y, x)`` float array, ``t >= 2`` frames in time order, in
  whatever space motion should be estimated in (usually a transformed rain
  rate, see :mod:`xnowcast.transforms`). ``NaN`` marks missing data.
* ``flow``: ``(2, y, x)`` ``float32``, the motion of the *last* frame pair in
  **pixels per time step**: ``flow[0] = u`` along ``+x`` (column index
  increasing), ``flow[1] = v`` along ``+y`` (row index increasing). A feature
  at ``(row, col)`` in frame ``t`` is at ``(row + v, col + u)`` in frame
  ``t + 1``. Geographic directions depend on the grid (many radar grids have
  ``y`` decreasing northward); :func:`xnowcast.motion.motion` converts to m/s.

Common options of every method:

``n_flows`` (int, default 1)
    How many of the most recent consecutive frame pairs to use
    (``n_flows <= t - 1``).
``combine`` ({"weighted", "median"})
    How the flows of several pairs are combined: a weighted mean with linear
    weights ``1, 2, ..., n_flows`` (the most recent pair weighs most), or the
    pixel-wise median (robust to one bad pair).
``value_range`` ((float, float))
    The fixed range of frame values mapped onto ``0 .. 255`` for OpenCV's
    8-bit estimators (default ``(0, 1)``); never computed from the data.

Missing data: for each pair, pixels missing in *either* frame are set to the
bottom of ``value_range`` in *both*, so that data gaps that open or close
between frames do not look like motion.

Examples
--------
>>> import numpy as np
>>> from xnowcast.motion import get_method, list_methods
>>> "dis" in list_methods()
True
>>> estimate = get_method("dis")
>>> frames = np.zeros((3, 32, 32), dtype="float32")
>>> estimate(frames).shape
(2, 32, 32)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xnowcast.checks import choice, positive_int, real
from xnowcast.optional import import_optional

__all__ = [
    "COMBINE",
    "available_methods",
    "canonical_name",
    "check_combine",
    "check_frames",
    "check_range",
    "combine_flows",
    "finish_flow",
    "frame_pairs",
    "get_method",
    "list_methods",
    "smooth_flow",
]

#: Valid values of ``combine``.
COMBINE = ("weighted", "median")

#: Built-in methods as lazy ``"module:function"`` references (OpenCV is only
#: imported when a method is used).
_METHODS: dict[str, str] = {
    "dis": "xnowcast.motion.dis:dis",
    "farneback": "xnowcast.motion.farneback:farneback",
    "lucas-kanade": "xnowcast.motion.lucas_kanade:lucas_kanade",
    "tvl1": "xnowcast.motion.tvl1:tvl1",
}
_ALIASES = {"lk": "lucas-kanade", "lucaskanade": "lucas-kanade", "tv-l1": "tvl1"}


def canonical_name(name: str) -> str:
    """The registry spelling of a method name (case, ``_`` and aliases such as ``"lk"``).

    Examples
    --------
    >>> canonical_name("LK"), canonical_name("Lucas_Kanade")
    ('lucas-kanade', 'lucas-kanade')
    """
    key = name.strip().lower().replace("_", "-")
    return _ALIASES.get(key, key)


def list_methods() -> list[str]:
    """Names of all motion methods (including ones whose backend is not installed).

    Examples
    --------
    >>> list_methods()
    ['dis', 'farneback', 'lucas-kanade', 'tvl1']
    """
    return sorted(_METHODS)


def available_methods() -> list[str]:
    """Names of the motion methods usable with the installed OpenCV build."""
    from xnowcast.motion.tvl1 import tvl1_available

    return [m for m in list_methods() if m != "tvl1" or tvl1_available()]


def get_method(name: str) -> Callable[..., np.ndarray]:
    """Return a motion estimator by name (case-insensitive; ``"lk"`` = ``"lucas-kanade"``).

    Parameters
    ----------
    name : str
        One of :func:`list_methods`.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.

    Examples
    --------
    >>> get_method("LK").__name__
    'lucas_kanade'
    """
    if callable(name):
        return name
    if not isinstance(name, str):
        raise TypeError(f"method must be a name, got {type(name).__name__}")
    key = canonical_name(name)
    if key not in _METHODS:
        raise ValueError(
            f"unknown motion method {name!r}; valid names are: {', '.join(list_methods())}"
        )
    module, _, attr = _METHODS[key].partition(":")
    return getattr(importlib.import_module(module), attr)


def check_frames(frames: Any, n_flows: int = 1) -> np.ndarray:
    """Validate ``(t, y, x)`` frames and ``n_flows``; return them as ``float32``.

    Raises
    ------
    ValueError
        Wrong shape, fewer than ``n_flows + 1`` frames, or a bad ``n_flows``.
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
    frames = np.asarray(frames, dtype=np.float32)
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
    """Gaussian-smooth both components of a ``(2, y, x)`` flow (``sigma`` in pixels)."""
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
    """Combine per-pair ``(2, y, x)`` flows (:func:`combine_flows`), smooth, return float32."""
    flow = combine_flows(flows, combine)
    flow = smooth_flow(np.ascontiguousarray(flow, dtype=np.float32), smooth)
    return np.ascontiguousarray(flow, dtype=np.float32)


def check_combine(combine: str) -> str:
    """Validate ``combine`` (see :data:`COMBINE`)."""
    return choice(combine, "combine", COMBINE)
