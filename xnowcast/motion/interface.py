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

This module holds only the registry (as pysteps' ``motion/interface.py``):
names, the estimators and their option checks. The helpers the methods share
are in :mod:`xnowcast.motion.common`.

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
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "available_methods",
    "canonical_name",
    "get_method",
    "get_validator",
    "list_methods",
]

#: Built-in methods as lazy ``"module:function"`` references (OpenCV is only
#: imported when a method is used).
_METHODS: dict[str, str] = {
    "dis": "xnowcast.motion.dis:dis",
    "farneback": "xnowcast.motion.farneback:farneback",
    "lucas-kanade": "xnowcast.motion.lucas_kanade:lucas_kanade",
    "tvl1": "xnowcast.motion.tvl1:tvl1",
}
#: The option checks of the built-in methods (``"module:function"``): each raises a
#: ValueError naming the first bad option value, so that a model fails when it is made.
_VALIDATORS: dict[str, str] = {
    "dis": "xnowcast.motion.dis:validate_options",
    "farneback": "xnowcast.motion.farneback:validate_options",
    "lucas-kanade": "xnowcast.motion.lucas_kanade:validate_options",
}
_ALIASES = {"lk": "lucas-kanade", "lucaskanade": "lucas-kanade", "tv-l1": "tvl1"}


def _load(reference: str) -> Callable[..., Any]:
    module, _, attr = reference.partition(":")
    return getattr(importlib.import_module(module), attr)


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
    """Names of the motion methods usable with the installed OpenCV build.

    Examples
    --------
    >>> {"dis", "farneback", "lucas-kanade"} <= set(available_methods())
    True
    """
    from xnowcast.motion.tvl1 import tvl1_available

    return [m for m in list_methods() if m != "tvl1" or tvl1_available()]


def _registered_name(name: Any) -> str:
    """The registry key of ``name``; a ValueError listing the valid names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"method must be a name, got {type(name).__name__}")
    key = canonical_name(name)
    if key not in _METHODS:
        raise ValueError(
            f"unknown motion method {name!r}; valid names are: {', '.join(list_methods())}"
        )
    return key


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
    return _load(_METHODS[_registered_name(name)])


def get_validator(method: str | Callable[..., Any]) -> Callable[..., None] | None:
    """The option check of a method, given by name or as its registered estimator.

    The check takes the method's options as keywords and raises a ValueError
    (TypeError for a wrong type) naming the first bad value. ``None`` for a
    method without value checks (``"tvl1"``) and for estimators that are not
    in the registry.

    Examples
    --------
    >>> check = get_validator("lk")
    >>> check(win_size=2)
    Traceback (most recent call last):
    ...
    ValueError: Lucas-Kanade option win_size must be a whole number >= 3, got 2
    >>> get_validator(get_method("dis")) is get_validator("dis")
    True
    >>> get_validator("tvl1") is None
    True
    """
    if callable(method):
        reference = f"{getattr(method, '__module__', '')}:{getattr(method, '__name__', '')}"
        key = next((k for k, ref in _METHODS.items() if ref == reference), None)
    else:
        key = _registered_name(method)
    if key is None or key not in _VALIDATORS:
        return None
    return _load(_VALIDATORS[key])
