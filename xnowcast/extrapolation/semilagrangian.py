"""Semi-Lagrangian (backward) extrapolation of a frame along a motion field.

For every output pixel ``x`` and lead time ``k`` the backward trajectory
``x_0 = x``, ``x_{j+1} = x_j - flow(x_j - flow(x_j) / 2)`` (a midpoint step
through the field, so curved and rotating flows are followed) gives the point
``x_k`` where the air now at ``x`` was ``k`` steps earlier; the forecast is the
*last observed* frame interpolated at ``x_k``. The source frame is
interpolated once per lead time, never the previous forecast again (which
would blur it more with every step).

* ``flow`` follows :mod:`xnowcast.motion.interface`: ``(2, y, x)`` pixels per
  step, ``u`` along ``+x`` (columns), ``v`` along ``+y`` (rows).
* Pixels whose trajectory starts outside the domain get ``fill`` (``NaN`` by
  default): rain that would come in from beyond the edge is unknown.
* ``NaN`` in the source frame does not spread: missing pixels are filled with
  the nearest valid value for the interpolation, and an output pixel is
  ``NaN`` exactly when the source pixel nearest to its trajectory start is
  missing (the missing area is advected, neither grown nor smeared).

All arithmetic is ``float32`` with :func:`cv2.remap`.

Examples
--------
>>> import numpy as np
>>> from xnowcast.extrapolation import extrapolate
>>> frame = np.zeros((5, 6), "float32"); frame[2, 1] = 1.0
>>> flow = np.zeros((2, 5, 6), "float32"); flow[0] = 1.0   # one pixel per step to +x
>>> out = extrapolate(frame, flow, 3)
>>> [int(np.nanargmax(out[k, 2])) for k in range(3)]
[2, 3, 4]
>>> bool(np.isnan(out[2, :, :3]).all())   # came in from outside the left edge
True
"""

from __future__ import annotations

import numpy as np

from xnowcast.checks import choice, positive_int
from xnowcast.optional import import_optional

__all__ = ["INTERPOLATIONS", "backward_displacement", "extrapolate"]

#: ``interpolation`` names and their OpenCV flags' names.
INTERPOLATIONS = {"nearest": "INTER_NEAREST", "linear": "INTER_LINEAR", "cubic": "INTER_CUBIC"}


def _check_inputs(frame: np.ndarray, flow: np.ndarray, n_steps: int):
    frame = np.asarray(frame, dtype=np.float32)
    flow = np.asarray(flow, dtype=np.float32)
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D (y, x), got shape {frame.shape}")
    if flow.shape != (2, *frame.shape):
        raise ValueError(
            f"flow must have shape (2, y, x) = {(2, *frame.shape)} to match the frame, got "
            f"{flow.shape}"
        )
    positive_int(n_steps, "n_steps")
    if not np.isfinite(flow).all():
        raise ValueError(
            "flow contains NaN or inf; fill it first (e.g. np.nan_to_num(flow)), since a "
            "trajectory cannot pass through an unknown motion"
        )
    return frame, flow


def _fill_nearest(frame: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``frame`` with every missing pixel set to the value of the nearest valid one."""
    cv2 = import_optional("cv2", "semi-Lagrangian advection")

    _, labels = cv2.distanceTransformWithLabels(
        missing.astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    # labels number the valid (zero) pixels in raster order, starting at 1
    values = np.concatenate([np.zeros(1, np.float32), frame[~missing]])
    return values[labels]


def _node_coords(n: int, step: int) -> tuple[np.ndarray, int]:
    """Pixel positions of ``ceil(n / step)`` coarse nodes, aligned as :func:`cv2.resize` expects."""
    m = -(-n // step)
    return ((np.arange(m, dtype=np.float32) + 0.5) * np.float32(n / m) - 0.5), m


def backward_displacement(flow: np.ndarray, n_steps: int, *, midpoint: bool = True, step: int = 1):
    """Yield the backward trajectory end points for lead times ``1 .. n_steps``.

    Parameters
    ----------
    flow : (2, y, x) float32
        Motion in pixels per step (``u`` +x, ``v`` +y).
    n_steps : int
        Number of steps.
    midpoint : bool
        Evaluate the flow at the midpoint of each step (second order, follows
        curved flows) instead of at its start.
    step : int
        Trace trajectories from every ``step``-th pixel only (through the
        full-resolution flow) and interpolate the displacements bilinearly to
        the other pixels: ``step**2`` times less work for the same result
        wherever the displacement is smooth on that scale.

    Yields
    ------
    map_x, map_y : (y, x) float32
        Source coordinates (column, row) of every output pixel. The same two
        arrays are updated in place at every step; copy them to keep them.

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.ones((2, 3, 4), "float32")
    >>> [float(mx[1, 2]) for mx, my in backward_displacement(flow, 3)]
    [1.0, 0.0, -1.0]
    """
    cv2 = import_optional("cv2", "semi-Lagrangian advection")

    positive_int(step, "step")
    ny, nx = flow.shape[1:]
    grid_x, grid_y = np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32))
    map_x, map_y = grid_x.copy(), grid_y.copy()
    if bool((flow == flow[:, :1, :1]).all()):  # uniform motion: no trajectories to trace
        for _ in range(n_steps):
            map_x -= flow[0, 0, 0]
            map_y -= flow[1, 0, 0]
            yield map_x, map_y
        return
    u = np.ascontiguousarray(flow[0], dtype=np.float32)
    v = np.ascontiguousarray(flow[1], dtype=np.float32)
    node_x, mx = _node_coords(nx, int(step))
    node_y, my = _node_coords(ny, int(step))
    start_x, start_y = np.meshgrid(node_x, node_y)
    pos_x, pos_y = start_x.copy(), start_y.copy()
    linear, border = cv2.INTER_LINEAR, cv2.BORDER_REPLICATE

    def sample(px, py):
        return (
            cv2.remap(u, px, py, linear, borderMode=border),
            cv2.remap(v, px, py, linear, borderMode=border),
        )

    for _ in range(n_steps):
        du, dv = sample(pos_x, pos_y)
        if midpoint:
            du, dv = sample(pos_x - 0.5 * du, pos_y - 0.5 * dv)
        pos_x -= du
        pos_y -= dv
        if (mx, my) == (nx, ny):
            np.copyto(map_x, pos_x)
            np.copyto(map_y, pos_y)
        else:
            np.add(grid_x, cv2.resize(pos_x - start_x, (nx, ny), interpolation=linear), out=map_x)
            np.add(grid_y, cv2.resize(pos_y - start_y, (nx, ny), interpolation=linear), out=map_y)
        yield map_x, map_y


def extrapolate(
    frame: np.ndarray,
    flow: np.ndarray,
    n_steps: int,
    *,
    fill: float = np.nan,
    interpolation: str = "linear",
    midpoint: bool = True,
    step: int = 4,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Advect ``frame`` along ``flow`` for ``n_steps`` lead times.

    Parameters
    ----------
    frame : (y, x) array
        The last observed frame (``NaN`` = missing).
    flow : (2, y, x) array
        Motion in pixels per step, ``u`` along +x, ``v`` along +y.
    n_steps : int
        Number of lead times.
    fill : float
        Value of pixels whose trajectory starts outside the domain.
    interpolation : {"linear", "nearest", "cubic"}
        Interpolation of the source frame.
    midpoint : bool
        Second-order (midpoint) trajectory steps; see :func:`backward_displacement`.
    step : int
        Trace trajectories from every ``step``-th pixel and interpolate the
        displacement in between (see :func:`backward_displacement`); 1 traces
        every pixel.
    out : (n_steps, y, x) float32 array, optional
        Where to write the result.

    Returns
    -------
    (n_steps, y, x) float32
    """
    cv2 = import_optional("cv2", "semi-Lagrangian advection")

    frame, flow = _check_inputs(frame, flow, n_steps)
    interpolation = choice(interpolation, "interpolation", INTERPOLATIONS)
    fill = np.float32(fill)
    inter = getattr(cv2, INTERPOLATIONS[interpolation])
    ny, nx = frame.shape
    if out is None:
        out = np.empty((n_steps, ny, nx), np.float32)
    elif out.shape != (n_steps, ny, nx) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 of shape {(n_steps, ny, nx)}")
    missing = np.isnan(frame)
    has_missing = bool(missing.any())
    if has_missing:
        source = _fill_nearest(frame, missing)
        valid = (~missing).astype(np.uint8)
    else:
        source = frame
    lo_x, hi_x, lo_y, hi_y = -0.5, nx - 0.5, -0.5, ny - 0.5
    border = cv2.BORDER_REPLICATE
    trajectories = backward_displacement(flow, n_steps, midpoint=midpoint, step=step)
    for k, (map_x, map_y) in enumerate(trajectories):
        cv2.remap(source, map_x, map_y, inter, dst=out[k], borderMode=border)
        if has_missing:
            hit = cv2.remap(valid, map_x, map_y, cv2.INTER_NEAREST, borderMode=border)
            np.copyto(out[k], np.float32(np.nan), where=hit == 0)
        outside = (map_x < lo_x) | (map_x > hi_x) | (map_y < lo_y) | (map_y > hi_y)
        np.copyto(out[k], fill, where=outside)
    return out
