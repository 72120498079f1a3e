"""Motion (optical-flow) estimation on frame sequences.

Array level: :func:`get_method` returns an estimator following the contract
of :mod:`xnowcast.motion.interface` (``(t, y, x)`` frames -> ``(2, y, x)``
flow in pixels per step, ``u`` along +x, ``v`` along +y).
xarray level: :func:`motion` returns the labelled motion field of a cube.

Methods: ``"dis"`` (:mod:`~xnowcast.motion.dis`), ``"farneback"``
(:mod:`~xnowcast.motion.farneback`), ``"lucas-kanade"``
(:mod:`~xnowcast.motion.lucas_kanade`), ``"tvl1"`` (:mod:`~xnowcast.motion.tvl1`,
needs ``opencv-contrib-python-headless``).
"""

from xnowcast.motion.api import estimate_motion, motion
from xnowcast.motion.interface import available_methods, get_method, list_methods

__all__ = ["available_methods", "estimate_motion", "get_method", "list_methods", "motion"]
