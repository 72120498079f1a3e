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

One pass over the full grid per lead time: trajectories are traced on a
coarse grid of nodes (every ``step``-th pixel), and a compiled kernel
(:mod:`xnowcast.extrapolation.kernels`, numba) interpolates the coarse
displacement to each pixel, applies ``fill`` and the missing-data mask and
samples the source, all at once. All arithmetic is ``float32``.

``frame`` may also hold one source frame per lead time (``(n_steps, y, x)``):
lead ``k`` samples its own frame at the end of the ``k``-step trajectory, so a
forecast made in the Lagrangian frame is advected in the same single pass.
:func:`advect` moves one frame ``n`` steps forward with one full-grid pass.

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

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from xnowcast.checks import choice, positive_int
from xnowcast.optional import import_optional

__all__ = [
    "INTERPOLATIONS",
    "advect",
    "backward_displacement",
    "coarse_trajectories",
    "extrapolate",
    "missing_mask",
    "sample_each_lead",
    "sample_leads",
]

#: ``interpolation`` names and their OpenCV flags' names (the kernels follow OpenCV's
#: definitions, see :mod:`xnowcast.extrapolation.kernels`).
INTERPOLATIONS = {"nearest": "INTER_NEAREST", "linear": "INTER_LINEAR", "cubic": "INTER_CUBIC"}

#: Coarse displacements and how they map onto the full grid (see :func:`coarse_trajectories`).
Coarse = tuple[np.ndarray, tuple, tuple]


def _check_inputs(frame: np.ndarray, flow: np.ndarray, n_steps: int):
    positive_int(n_steps, "n_steps")
    frame = np.ascontiguousarray(frame, dtype=np.float32)
    flow = np.asarray(flow, dtype=np.float32)
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[0] != n_steps):
        raise ValueError(
            f"frame must have shape (y, x) (one source frame) or (n_steps={n_steps}, y, x) "
            f"(one source frame per lead time), got shape {frame.shape}"
        )
    if flow.shape != (2, *frame.shape[-2:]):
        raise ValueError(
            f"flow must have shape (2, y, x) = {(2, *frame.shape[-2:])} to match the frame, got "
            f"{flow.shape}"
        )
    if not np.isfinite(flow).all():
        raise ValueError(
            "flow contains NaN or inf; fill it first (e.g. np.nan_to_num(flow)), since a "
            "trajectory cannot pass through an unknown motion"
        )
    return frame, flow


def _nearest_labels(missing: np.ndarray) -> np.ndarray:
    """For every pixel, 1 + the raster index among the valid pixels of the nearest valid one."""
    cv2 = import_optional("cv2", "semi-Lagrangian advection")

    _, labels = cv2.distanceTransformWithLabels(
        missing.astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    return labels


def _fill_nearest(frame: np.ndarray, missing: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``frame`` with every missing pixel set to the value of the nearest valid one."""
    # labels number the valid (zero) pixels in raster order, starting at 1
    values = np.concatenate([np.zeros(1, np.float32), frame[~missing]])
    return values[labels]


def _sources(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(l, y, x)`` frames without NaN, and ``(l or 1, y, x)`` uint8 masks of the missing pixels.

    The masks are an empty ``(1, 0, 0)`` array when nothing is missing; frames that share
    one missing area share one mask and one nearest-neighbour search.
    """
    missing = np.isnan(frames)
    if not missing.any():
        return frames, np.zeros((1, 0, 0), np.uint8)
    if (missing == missing[:1]).all():
        labels = _nearest_labels(missing[0])
        filled = np.stack([_fill_nearest(f, missing[0], labels) for f in frames])
        return filled, missing[:1].view(np.uint8)
    filled = np.stack([_fill_nearest(f, m, _nearest_labels(m)) for f, m in zip(frames, missing)])
    return filled, missing.view(np.uint8)


def _node_coords(n: int, step: int) -> tuple[np.ndarray, int]:
    """Pixel positions of ``ceil(n / step)`` coarse nodes, aligned as :func:`cv2.resize` expects."""
    m = -(-n // step)
    return ((np.arange(m, dtype=np.float32) + 0.5) * np.float32(n / m) - 0.5), m


def coarse_trajectories(flow: np.ndarray, n_steps: int, midpoint: bool, step: int) -> Coarse:
    """The coarse trajectory displacements of lead times ``1 .. n_steps``.

    Returns ``(disp, rows, cols)``: the displacement (trajectory start minus node) on the
    coarse nodes, ``(n_steps, 2, my, mx)``, and the
    :func:`~xnowcast.extrapolation.kernels.resize_weights` that interpolate it to the full grid.

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.zeros((2, 8, 8), "float32"); flow[0] = 1.0  # uniform: nothing to trace
    >>> disp, rows, cols = coarse_trajectories(flow, 2, midpoint=True, step=4)
    >>> disp[:, 0].ravel().tolist()
    [-1.0, -2.0]
    """
    from xnowcast.extrapolation.kernels import resize_weights, threads_pay, trace, trace_serial

    positive_int(step, "step")
    ny, nx = flow.shape[1:]
    if bool((flow == flow[:, :1, :1]).all()):  # uniform motion: no trajectories to trace
        k = np.arange(1, n_steps + 1, dtype=np.float32)[:, None]
        disp = (-k * flow[:, 0, 0]).astype(np.float32).reshape(n_steps, 2, 1, 1)
        return disp, resize_weights(ny, 1), resize_weights(nx, 1)
    node_x, mx = _node_coords(nx, int(step))
    node_y, my = _node_coords(ny, int(step))
    start_x, start_y = np.meshgrid(node_x, node_y)
    u, v = np.ascontiguousarray(flow[0]), np.ascontiguousarray(flow[1])
    kernel = trace if threads_pay(n_steps * ny * nx) else trace_serial
    disp = kernel(u, v, start_x, start_y, n_steps, bool(midpoint))
    return disp, resize_weights(ny, my), resize_weights(nx, mx)


def _expand(disp: np.ndarray, rows: tuple, cols: tuple) -> np.ndarray:
    """The coarse ``disp`` interpolated to the full grid (as the kernel does it)."""
    (r0, r1, wr), (c0, c1, wc) = rows, cols
    across = disp[:, c0] + wc * (disp[:, c1] - disp[:, c0])
    return across[r0] + wr[:, None] * (across[r1] - across[r0])


def backward_displacement(
    flow: np.ndarray, n_steps: int, *, midpoint: bool = True, step: int = 1
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield the backward trajectory end points for lead times ``1 .. n_steps``.

    :func:`extrapolate` never forms these maps (it interpolates the coarse
    displacement inside its one pass per lead time); they are for inspection.

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
    flow = np.asarray(flow, dtype=np.float32)
    ny, nx = flow.shape[1:]
    grid_x, grid_y = np.meshgrid(np.arange(nx, dtype=np.float32), np.arange(ny, dtype=np.float32))
    map_x, map_y = np.empty_like(grid_x), np.empty_like(grid_y)
    disp, rows, cols = coarse_trajectories(flow, n_steps, midpoint, step)
    for disp_x, disp_y in disp:
        np.add(grid_x, _expand(disp_x, rows, cols), out=map_x)
        np.add(grid_y, _expand(disp_y, rows, cols), out=map_y)
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
    missing: np.ndarray | None = None,
    device: Any = None,
) -> np.ndarray:
    """Advect ``frame`` along ``flow`` for ``n_steps`` lead times.

    Parameters
    ----------
    frame : (y, x) or (n_steps, y, x) array
        The last observed frame (``NaN`` = missing); or one source frame per
        lead time: lead ``k`` (``k = 1 .. n_steps``) samples ``frame[k - 1]``
        at the end of its ``k``-step trajectory (e.g. a forecast made in the
        Lagrangian frame, advected in the same pass).
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
    out : (n_steps, y, x) float32 C-contiguous array, optional
        Where to write the result.
    missing : (y, x) bool array, optional
        The missing pixels of every source frame, given apart: the frames are
        then finite everywhere (what they hold at missing pixels is what the
        interpolation sees next to them) and are used as they are, which
        saves filling each one. Output pixels whose nearest source pixel is
        missing are ``NaN``, as for ``NaN`` in ``frame``.
    device : str or torch.device, optional
        Sample on this torch device (:mod:`xnowcast.extrapolation.accelerated`,
        e.g. ``"cuda"``) instead of the compiled CPU kernel; equal within
        float32 rounding.

    Returns
    -------
    (n_steps, y, x) float32

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.zeros((2, 4, 6), "float32"); flow[0] = 1.0
    >>> leads = np.stack([np.full((4, 6), k, "float32") for k in (1.0, 2.0)])
    >>> out = extrapolate(leads, flow, 2)  # lead k samples leads[k - 1]
    >>> out[:, 0].tolist()
    [[nan, 1.0, 1.0, 1.0, 1.0, 1.0], [nan, nan, 2.0, 2.0, 2.0, 2.0]]
    """
    frame, flow = _check_inputs(frame, flow, n_steps)
    grid = frame.shape[-2:]
    if missing is None:
        sources, mask = _sources(frame.reshape(-1, *grid))
    else:
        sources, mask = frame.reshape(-1, *grid), _given_mask(missing, sources_of=frame)
    return sample_leads(
        sources,
        mask,
        flow,
        n_steps,
        fill=fill,
        interpolation=interpolation,
        midpoint=midpoint,
        step=step,
        out=out,
        device=device,
    )


def sample_leads(
    sources: Any,
    mask: np.ndarray,
    flow: np.ndarray,
    n_steps: int,
    *,
    fill: float = np.nan,
    interpolation: str = "linear",
    midpoint: bool = True,
    step: int = 4,
    out: np.ndarray | None = None,
    device: Any = None,
) -> np.ndarray:
    """The work of every lead time of :func:`extrapolate` on prepared sources.

    Traces the coarse trajectories and samples each lead's source at their
    starts, in the compiled CPU kernel or, with ``device``, through torch
    (:mod:`xnowcast.extrapolation.accelerated`).

    Parameters
    ----------
    sources : (l, y, x) float32 array, or a torch tensor with ``device``
        Finite frames; lead ``k`` samples ``sources[min(k, l - 1)]``.
    mask : (m, y, x) uint8 array
        1 where a source is missing (:func:`missing_mask`; ``(1, 0, 0)``: nothing is).
    flow, n_steps, fill, interpolation, midpoint, step, out, device
        As for :func:`extrapolate`.

    Returns
    -------
    (n_steps, y, x) float32

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.zeros((2, 1, 4), "float32"); flow[0] = 1.0
    >>> source = np.arange(4, dtype="float32").reshape(1, 1, 4)
    >>> sample_leads(source, missing_mask(np.zeros((1, 4), bool)), flow, 1).tolist()
    [[[nan, 0.0, 1.0, 2.0]]]
    """
    trajectories = coarse_trajectories(flow, positive_int(n_steps, "n_steps"), midpoint, step)
    return sample_trajectories(
        sources, mask, trajectories, fill=fill, interpolation=interpolation, out=out, device=device
    )


def sample_trajectories(
    sources: Any,
    mask: np.ndarray,
    trajectories: Coarse,
    *,
    fill: float = np.nan,
    interpolation: str = "linear",
    out: np.ndarray | None = None,
    device: Any = None,
) -> np.ndarray:
    """Each lead's source sampled where the traced trajectories start.

    :func:`sample_leads` on trajectories traced beforehand, e.g. once for
    several forecasts that move them (an ensemble member's motion perturbation
    shifts the displacements of :func:`coarse_trajectories`).

    Parameters
    ----------
    sources, mask
        As for :func:`sample_leads`.
    trajectories : (disp, rows, cols)
        :func:`coarse_trajectories`; ``disp`` is ``(n_steps, 2, my, mx)``.
    fill, interpolation, out, device
        As for :func:`extrapolate`.

    Returns
    -------
    (n_steps, y, x) float32

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.zeros((2, 1, 4), "float32"); flow[0] = 1.0
    >>> disp, rows, cols = coarse_trajectories(flow, 1, midpoint=True, step=4)
    >>> source = np.arange(4, dtype="float32").reshape(1, 1, 4)
    >>> no_mask = missing_mask(np.zeros((1, 4), bool))
    >>> farther = disp - np.array([1, 0], "float32")[:, None, None]  # 1 px farther along x
    >>> sample_trajectories(source, no_mask, (farther, rows, cols)).tolist()
    [[[nan, nan, 0.0, 1.0]]]
    """
    disp, rows, cols = trajectories
    order = _order(interpolation)
    out = _check_out(out, (len(disp), *sources.shape[-2:]))
    if device is None:
        spans = _spans(mask)
        _kernel(out.size)(sources, mask, disp, rows, cols, order, np.float32(fill), out, spans)
        return out
    from xnowcast.extrapolation import accelerated

    given = None if mask.shape[1] == 0 else mask.view(bool)
    moved = accelerated.advect_leads(sources, given, disp, rows, cols, order, fill, device)
    out[...] = moved.cpu().numpy()
    return out


def sample_each_lead(
    make_source: Callable[[int, np.ndarray], None],
    shape: tuple[int, int],
    mask: np.ndarray,
    flow: np.ndarray,
    n_steps: int,
    *,
    fill: float = np.nan,
    interpolation: str = "linear",
    midpoint: bool = True,
    step: int = 4,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`sample_leads` with each lead's source made just before it is sampled.

    ``make_source(k, buffer)`` writes the finite source of lead ``k + 1`` into the
    ``(y, x)`` float32 ``buffer``; the compiled kernel samples it at once, while it is
    still in the processor's cache, and the next lead reuses the buffer. Equal to
    :func:`sample_leads` of the stacked sources, without forming them.

    Parameters
    ----------
    make_source : callable ``(k, buffer) -> None``
        Writes lead ``k``'s source (``k = 0 .. n_steps - 1``) into ``buffer``.
    shape : (y, x)
        The grid.
    mask, flow, n_steps, fill, interpolation, midpoint, step, out
        As for :func:`sample_leads`.

    Returns
    -------
    (n_steps, y, x) float32

    Examples
    --------
    >>> import numpy as np
    >>> flow = np.zeros((2, 1, 4), "float32"); flow[0] = 1.0
    >>> def source(k, buffer):
    ...     buffer[...] = 10 * (k + 1) + np.arange(4)
    >>> sample_each_lead(source, (1, 4), missing_mask(np.zeros((1, 4), bool)), flow, 2).tolist()
    [[[nan, 10.0, 11.0, 12.0]], [[nan, nan, 20.0, 21.0]]]
    """
    order = _order(interpolation)
    out = _check_out(out, (n_steps, *shape))
    disp, rows, cols = coarse_trajectories(flow, n_steps, midpoint, step)
    kernel = _kernel(out.size)
    buffer = np.empty((1, *shape), np.float32)
    spans = _spans(mask)
    for k in range(n_steps):
        make_source(k, buffer[0])
        j = min(k, len(mask) - 1)
        own = slice(j, j + 1)  # the lead's mask
        lead = slice(k, k + 1)
        options = (order, np.float32(fill), out[lead], spans[own])
        kernel(buffer, mask[own], disp[lead], rows, cols, *options)
    return out


def _order(interpolation: str) -> int:
    """The kernels' code of ``interpolation`` (checked)."""
    from xnowcast.extrapolation.kernels import ORDERS

    return ORDERS[choice(interpolation, "interpolation", INTERPOLATIONS)]


def _check_out(out: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """``out``, checked, or a new array of ``shape``."""
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    return out


def _spans(mask: np.ndarray) -> np.ndarray:
    """The kernels' :func:`~xnowcast.extrapolation.kernels.mask_spans` of a uint8 ``mask``."""
    from xnowcast.extrapolation.kernels import mask_spans

    return mask_spans(mask)


def _kernel(n_pixels: int) -> Any:
    """The advection kernel for ``n_pixels`` (lead times x grid): threaded only where it pays."""
    from xnowcast.extrapolation import kernels

    return kernels.advect_leads if kernels.threads_pay(n_pixels) else kernels.advect_leads_serial


def missing_mask(missing: np.ndarray) -> np.ndarray:
    """The ``(1, y, x)`` uint8 mask of the kernels for a ``(y, x)`` bool mask (``(1, 0, 0)``: none).

    Examples
    --------
    >>> import numpy as np
    >>> missing_mask(np.zeros((2, 3), bool)).shape, missing_mask(np.eye(2, dtype=bool)).shape
    ((1, 0, 0), (1, 2, 2))
    """
    missing = np.asarray(missing, bool)
    if not missing.any():
        return np.zeros((1, 0, 0), np.uint8)
    return np.ascontiguousarray(missing[None]).view(np.uint8)


def _given_mask(missing: np.ndarray, sources_of: np.ndarray) -> np.ndarray:
    """The ``(1, y, x)`` uint8 mask of ``missing`` for the kernel (``(1, 0, 0)``: none)."""
    missing = np.asarray(missing, bool)
    if missing.shape != sources_of.shape[-2:]:
        raise ValueError(
            f"missing must be a (y, x) mask of shape {sources_of.shape[-2:]}, got {missing.shape}"
        )
    if not np.isfinite(sources_of).all():
        raise ValueError(
            "with missing= given, the frames must be finite (fill their missing pixels); "
            "or leave missing=None and mark them NaN"
        )
    return missing_mask(missing)


def advect(
    frame: np.ndarray,
    flow: np.ndarray,
    n_steps: int,
    *,
    fill: float = np.nan,
    interpolation: str = "linear",
    midpoint: bool = True,
    step: int = 4,
) -> np.ndarray:
    """``frame`` moved ``n_steps`` forward along ``flow``: ``extrapolate(...)[-1]``, cheaply.

    Aligns an earlier frame with a later one (e.g. frame ``t - j`` onto the
    grid of frame ``t`` with ``n_steps=j``) in a single pass over the full
    grid: only the coarse trajectory is traced through the intermediate steps.

    Parameters
    ----------
    frame : (y, x) array
        The frame to move (``NaN`` = missing).
    flow, n_steps, fill, interpolation, midpoint, step
        As for :func:`extrapolate`.

    Returns
    -------
    (y, x) float32
        Equal to ``extrapolate(frame, flow, n_steps, ...)[-1]``.

    Examples
    --------
    >>> import numpy as np
    >>> frame = np.arange(6, dtype="float32").reshape(1, 6)
    >>> flow = np.zeros((2, 1, 6), "float32"); flow[0] = 1.0
    >>> advect(frame, flow, 2, fill=-1).tolist()
    [[-1.0, -1.0, 0.0, 1.0, 2.0, 3.0]]
    """
    from xnowcast.extrapolation.kernels import ORDERS

    if np.ndim(frame) != 2:
        raise ValueError(
            f"advect moves one (y, x) frame, got shape {np.shape(frame)}; use extrapolate "
            "for one source frame per lead time"
        )
    frame, flow = _check_inputs(frame, flow, n_steps)
    interpolation = choice(interpolation, "interpolation", INTERPOLATIONS)
    sources, missing = _sources(frame[None])
    disp, rows, cols = coarse_trajectories(flow, n_steps, midpoint, step)
    out = np.empty((1, *frame.shape), np.float32)
    options = (ORDERS[interpolation], np.float32(fill), out, _spans(missing))
    _kernel(out.size)(sources, missing, disp[-1:], rows, cols, *options)
    return out[0]
