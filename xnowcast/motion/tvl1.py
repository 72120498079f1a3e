"""TV-L1 dense optical flow (Zach et al., 2007), when OpenCV's contrib build serves it.

``cv2.optflow.DualTVL1OpticalFlow_create`` lives in the ``optflow`` contrib
module, which ``opencv-python-headless`` (the dependency of xnowcast's
``flow`` extra) does not include. Install ``opencv-contrib-python-headless``
*instead of* ``opencv-python-headless`` (they share the ``cv2`` package and
must not be installed together) to use it.

Examples
--------
>>> from xnowcast.motion.tvl1 import tvl1_available
>>> isinstance(tvl1_available(), bool)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnowcast.motion.common import check_frames, finish_flow, frame_pairs
from xnowcast.optional import import_optional

__all__ = ["require_tvl1", "tvl1", "tvl1_available"]

_MISSING = (
    "motion method 'tvl1' needs OpenCV's contrib module cv2.optflow, which this OpenCV build "
    "({version}) lacks. Replace opencv-python-headless with opencv-contrib-python-headless "
    "(pip uninstall opencv-python-headless && pip install opencv-contrib-python-headless), "
    "or use one of the methods 'dis', 'farneback', 'lucas-kanade'"
)


def tvl1_available() -> bool:
    """Whether the installed OpenCV has ``cv2.optflow.DualTVL1OpticalFlow_create``."""
    try:
        cv2 = import_optional("cv2", "TV-L1 motion")
    except ImportError:
        return False
    return hasattr(getattr(cv2, "optflow", None), "DualTVL1OpticalFlow_create")


def require_tvl1() -> None:
    """Raise the ImportError that says what to install when TV-L1 is unavailable."""
    if not tvl1_available():
        cv2 = import_optional("cv2", "TV-L1 motion")

        raise ImportError(_MISSING.format(version=cv2.__version__))


def tvl1(
    frames: np.ndarray,
    *,
    n_flows: int = 1,
    combine: str = "weighted",
    value_range: Sequence[float] = (0.0, 1.0),
    smooth: float = 0.0,
    tau: float = 0.25,
    lambda_: float = 0.15,
    theta: float = 0.3,
    scales: int = 5,
    warps: int = 5,
) -> np.ndarray:
    """TV-L1 optical flow of the last ``n_flows`` frame pairs.

    Parameters
    ----------
    frames : (t, y, x) array
        Frames in time order (see :mod:`xnowcast.motion.interface`).
    n_flows, combine, value_range, smooth
        As for the other methods.
    tau, lambda_, theta, scales, warps
        ``cv2.optflow.DualTVL1OpticalFlow_create`` parameters.

    Raises
    ------
    ImportError
        When OpenCV lacks the contrib module (the message says what to install).
    """
    cv2 = import_optional("cv2", "TV-L1 motion")

    require_tvl1()
    frames = check_frames(frames, n_flows)
    flows = []
    for prev, nxt in frame_pairs(frames, n_flows, value_range):
        est = cv2.optflow.DualTVL1OpticalFlow_create(
            tau=tau, lambda_=lambda_, theta=theta, nscales=scales, warps=warps
        )
        flows.append(np.moveaxis(est.calc(prev, nxt, None), -1, 0))
    return finish_flow(flows, combine, smooth)
