"""Farneback dense optical flow (polynomial expansion), via OpenCV.

The ``"seed"`` preset reproduces the motion estimate of the Climate Hack.AI
2022 seed project this package grew from::

    cv2.calcOpticalFlowFarneback(prev, next, None, pyr_scale=0.5, levels=3,
                                 winsize=15, iterations=3, poly_n=5,
                                 poly_sigma=1.2, flags=0)

on consecutive frame pairs, averaged. Preset ``"smooth"`` uses more pyramid
levels and a larger window (smoother fields, larger displacements), closer to
what suits radar rain fields.

Examples
--------
>>> import cv2, numpy as np
>>> from xnowcast.motion.farneback import farneback
>>> rng = np.random.default_rng(0)
>>> frame = cv2.GaussianBlur(rng.random((64, 64)).astype("float32"), (0, 0), 2)
>>> frame = (frame - frame.min()) / (frame.max() - frame.min())  # values in [0, 1]
>>> frames = np.stack([frame, np.roll(frame, 1, axis=0)])  # one row down (+y)
>>> flow = farneback(frames)
>>> [round(float(m), 1) + 0.0 for m in np.median(flow, axis=(1, 2))]  # u, v
[0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xnowcast.checks import integer, real
from xnowcast.motion.common import (
    check_frames,
    finish_flow,
    frame_pairs,
)
from xnowcast.optional import import_optional

__all__ = ["PRESETS", "farneback", "validate_options"]

#: Named parameter sets of ``cv2.calcOpticalFlowFarneback``.
PRESETS: dict[str, dict[str, float]] = {
    "seed": dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2),
    "smooth": dict(pyr_scale=0.5, levels=5, winsize=31, iterations=3, poly_n=7, poly_sigma=1.5),
}


def farneback(
    frames: np.ndarray,
    *,
    preset: str = "seed",
    n_flows: int = 1,
    combine: str = "weighted",
    value_range: Sequence[float] = (0.0, 1.0),
    smooth: float = 0.0,
    pyr_scale: float | None = None,
    levels: int | None = None,
    winsize: int | None = None,
    iterations: int | None = None,
    poly_n: int | None = None,
    poly_sigma: float | None = None,
    gaussian_window: bool = False,
) -> np.ndarray:
    """Farneback optical flow of the last ``n_flows`` frame pairs.

    Parameters
    ----------
    frames : (t, y, x) array
        Frames in time order (see :mod:`xnowcast.motion.interface`).
    preset : {"seed", "smooth"}
        Parameter set (see :data:`PRESETS`); the options below override it.
    n_flows, combine, value_range
        See :mod:`xnowcast.motion.interface`.
    smooth : float
        Gaussian smoothing of the result (sigma in pixels; 0 = none).
    pyr_scale, levels, winsize, iterations, poly_n, poly_sigma
        ``cv2.calcOpticalFlowFarneback`` parameters.
    gaussian_window : bool
        Use a Gaussian instead of a box window (``OPTFLOW_FARNEBACK_GAUSSIAN``).

    Returns
    -------
    (2, y, x) float32
        ``u`` (+x) and ``v`` (+y) in pixels per step.
    """
    cv2 = import_optional("cv2", "Farneback motion")

    frames = check_frames(frames, n_flows)
    params = _params(
        preset,
        dict(
            pyr_scale=pyr_scale,
            levels=levels,
            winsize=winsize,
            iterations=iterations,
            poly_n=poly_n,
            poly_sigma=poly_sigma,
        ),
    )
    flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if gaussian_window else 0
    flows = []
    for prev, nxt in frame_pairs(frames, n_flows, value_range):
        flow = cv2.calcOpticalFlowFarneback(
            prev,
            nxt,
            None,
            float(params["pyr_scale"]),
            int(params["levels"]),
            int(params["winsize"]),
            int(params["iterations"]),
            int(params["poly_n"]),
            float(params["poly_sigma"]),
            flags,
        )
        flows.append(np.moveaxis(flow, -1, 0))
    return finish_flow(flows, combine, smooth)


def _params(preset: Any, overrides: dict[str, Any]) -> dict[str, float]:
    """The preset's parameters with the given overrides, validated."""
    key = preset.strip().lower() if isinstance(preset, str) else preset
    if key not in PRESETS:
        raise ValueError(
            f"unknown Farneback preset {preset!r}; valid presets are: {', '.join(PRESETS)}"
        )
    params = dict(PRESETS[key])
    params.update({k: v for k, v in overrides.items() if v is not None})
    real(
        params["pyr_scale"],
        "Farneback option pyr_scale",
        low=0,
        high=1,
        low_inclusive=False,
        high_inclusive=False,
    )
    for name in ("levels", "winsize", "iterations", "poly_n"):
        params[name] = integer(params[name], f"Farneback option {name}", low=1, whole=True)
    params["poly_sigma"] = real(
        params["poly_sigma"], "Farneback option poly_sigma", low=0, low_inclusive=False
    )
    return params


def validate_options(*, preset: str = "seed", **options: Any) -> None:
    """Raise a ValueError naming the first bad Farneback option (see :func:`farneback`).

    Called when an optical-flow model is made; options of other kinds are ignored.
    """
    names = ("pyr_scale", "levels", "winsize", "iterations", "poly_n", "poly_sigma")
    _params(preset, {k: options.get(k) for k in names})
