"""Numba kernels of semi-Lagrangian advection and of the cascade's spectral filter.

Compiled once (``cache=True``):

* :func:`trace`: the backward trajectories of a set of points (usually a
  coarse grid of nodes) through the full-resolution flow, for every lead time;
* :func:`advect_leads`: the whole work of each lead time in one pass over the
  full grid: interpolate the coarse displacement to the pixel, find its
  trajectory start, mark it ``fill`` when that lies outside the domain,
  ``NaN`` when the nearest source pixel is missing, and otherwise sample the
  lead's source there;
* :func:`filter_spectrum`: one lead time's cascade filter applied to the last
  two spectra in one pass.

:func:`trace` and :func:`advect_leads` run on numba's threads;
:func:`trace_serial` and :func:`advect_leads_serial` do the same on the
calling thread. :func:`threads_pay` chooses: threads only for large work
(:data:`PARALLEL_PIXELS`), where they save more than they cost.

Interpolation (of the flow, of the coarse displacement and of the source) is
``float32`` arithmetic with replicated borders: bilinear as :func:`cv2.remap`
and :func:`cv2.resize` (``INTER_LINEAR``) define it, without their
1/32-pixel quantisation of coordinates; nearest rounds half to even as
:func:`cv2.remap` does; cubic is Keys' kernel with ``a = -0.75`` (OpenCV's).
The inner loops work on whole rows in stages without branches (coordinates,
then samples, then masks), so that the compiler vectorises them.

Examples
--------
>>> import numpy as np
>>> from xnowcast.extrapolation.kernels import ORDERS, resize_weights
>>> ORDERS["linear"]
1
>>> [a.tolist() for a in resize_weights(4, 2)]
[[0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.0]]
"""

from __future__ import annotations

import math

import numpy as np

from xnowcast.optional import import_optional

numba = import_optional("numba", "semi-Lagrangian advection")

__all__ = [
    "ORDERS",
    "PARALLEL_PIXELS",
    "advect_leads",
    "advect_leads_serial",
    "advect_rows",
    "filter_spectrum",
    "mask_spans",
    "resize_weights",
    "task_row",
    "threads_pay",
    "trace",
    "trace_serial",
]

#: Interpolation name -> kernel code of :func:`advect_leads`.
ORDERS = {"nearest": 0, "linear": 1, "cubic": 3}

_CUBIC_A = np.float32(-0.75)

#: Chunks of rows the parallel kernel splits its work into (a few per thread).
_CHUNKS = 64

#: Source rows a row's trajectories may reach beyond which it is advected without a window.
_WINDOW_ROWS = 64

#: ``spans`` of :func:`advect_leads` when none are given.
_NO_SPANS = np.zeros((1, 0, 2), np.int64)

#: Pixels (lead times x grid) from which the kernels run on numba's threads
#: (:func:`threads_pay`); below, waking the threads costs more CPU time than it saves.
PARALLEL_PIXELS = 2**25


def threads_pay(n_pixels: int) -> bool:
    """Whether advecting ``n_pixels`` (lead times x grid) runs on numba's threads.

    Only large work does (:data:`PARALLEL_PIXELS`, about 24 lead times of a
    1200 x 1200 grid), and only when numba has more than one thread (the run
    setting ``threads``, ``NUMBA_NUM_THREADS``). Smaller forecasts run on the
    calling thread: the threads' start and end of each parallel region cost
    more CPU time than they save there, and a batch of forecasts is already
    parallel over its init times (dask).

    Examples
    --------
    >>> threads_pay(24 * 700 * 700)
    False
    """
    return n_pixels >= PARALLEL_PIXELS and numba.get_num_threads() > 1


def resize_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices and weight of a half-pixel-aligned linear resize from ``n_in`` to ``n_out``.

    Output position ``i`` reads ``(1 - w) * a[lo] + w * a[hi]``, exactly as
    :func:`cv2.resize` with ``INTER_LINEAR`` places it (borders replicated).

    Examples
    --------
    >>> lo, hi, w = resize_weights(3, 3)  # same size: the identity
    >>> lo.tolist(), hi.tolist(), w.tolist()
    ([0, 1, 2], [1, 2, 2], [0.0, 0.0, 0.0])
    """
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    lo = np.floor(pos).astype(np.int64)
    w = (pos - lo).astype(np.float32)
    w[lo < 0] = 0.0
    lo = np.clip(lo, 0, n_in - 1)
    w[lo >= n_in - 1] = 0.0
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, w


@numba.njit(cache=True, inline="always")
def _keys(t):  # pragma: no cover - compiled
    """Keys' cubic convolution weights of the 4 neighbours at offset ``t`` in [0, 1)."""
    a = _CUBIC_A
    w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
    w1 = ((a + 2) * t - (a + 3)) * t * t + 1
    s = 1 - t
    w2 = ((a + 2) * s - (a + 3)) * s * s + 1
    return w0, w1, w2, np.float32(1.0) - w0 - w1 - w2


@numba.njit(cache=True, inline="always")
def _bicubic(a, x, y):  # pragma: no cover - compiled
    """``a`` at ``(x, y)``, Keys' cubic (``a = -0.75``), borders replicated."""
    ny, nx = a.shape
    fx = math.floor(x)
    fy = math.floor(y)
    wx = _keys(np.float32(x - fx))
    wy = _keys(np.float32(y - fy))
    ix = int(fx) - 1
    iy = int(fy) - 1
    total = np.float32(0.0)
    for r in range(4):
        row = min(max(iy + r, 0), ny - 1)
        acc = np.float32(0.0)
        for c in range(4):
            col = min(max(ix + c, 0), nx - 1)
            acc += wx[c] * a[row, col]
        total += wy[r] * acc
    return total


@numba.njit(cache=True)
def _cells(xs, ys, nx, ny, index, tx, ty):  # pragma: no cover - compiled
    """Flat index of the top-left neighbour and the offsets of each point (borders replicated).

    Points are clamped into the grid; the neighbour is at most ``(ny - 2, nx - 2)`` so that
    its right and lower neighbours exist (the offset is then 1 at the last row or column).
    """
    x_max, y_max = np.float32(nx - 1), np.float32(ny - 1)
    i_max, j_max = max(nx - 2, 0), max(ny - 2, 0)
    zero = np.float32(0.0)
    for j in range(xs.shape[0]):
        x = min(max(xs[j], zero), x_max)
        y = min(max(ys[j], zero), y_max)
        x0 = min(np.int64(x), i_max)
        y0 = min(np.int64(y), j_max)
        tx[j] = x - np.float32(x0)
        ty[j] = y - np.float32(y0)
        index[j] = np.uint64(y0 * nx + x0)


@numba.njit(cache=True)
def _lerp2(a, index, tx, ty, nx, out):  # pragma: no cover - compiled
    """Bilinear samples of the flat array ``a`` at the cells of :func:`_cells`.

    Indices are unsigned, so that the loads need no negative-index check.
    """
    right = np.uint64(1 if nx > 1 else 0)
    down = np.uint64(nx if a.shape[0] > nx else 0)
    for j in range(index.shape[0]):
        p = index[j]
        top = a[p] + tx[j] * (a[p + right] - a[p])
        bottom = a[p + down] + tx[j] * (a[p + down + right] - a[p + down])
        out[j] = top + ty[j] * (bottom - top)


@numba.njit(cache=True)
def _closest(xs, ys, nx, ny, out):  # pragma: no cover - compiled
    """Flat index of the pixel nearest each point, halves to even (as OpenCV), borders replicated."""
    x_max, y_max = np.float32(nx - 1), np.float32(ny - 1)
    zero = np.float32(0.0)
    for j in range(xs.shape[0]):
        x = np.rint(min(max(xs[j], zero), x_max))
        y = np.rint(min(max(ys[j], zero), y_max))
        out[j] = np.uint64(np.int64(y) * nx + np.int64(x))


@numba.njit(parallel=True, cache=True)
def trace(u, v, start_x, start_y, n_steps, midpoint):  # pragma: no cover - compiled
    """Backward trajectories of the points ``(start_x, start_y)`` through the flow ``(u, v)``.

    Returns the displacements (trajectory start minus point) after ``1 .. n_steps``
    steps, ``(n_steps, 2, rows, cols)``. With ``midpoint`` the flow is read at the
    midpoint of each step.

    Examples
    --------
    >>> import numpy as np
    >>> u, v = np.full((4, 4), 0.5, "float32"), np.zeros((4, 4), "float32")
    >>> start = np.array([[1.0, 2.0]], "float32")
    >>> trace(u, v, start, start, 2, True)[:, 0].tolist()  # x, then y displacement
    [[[-0.5, -0.5]], [[-1.0, -1.0]]]
    """
    disp = np.empty((n_steps, 2, *start_x.shape), np.float32)
    for i in numba.prange(start_x.shape[0]):
        _trace_row(u, v, start_x, start_y, midpoint, disp, i)
    return disp


@numba.njit(cache=True, nogil=True)
def trace_serial(u, v, start_x, start_y, n_steps, midpoint):  # pragma: no cover - compiled
    """:func:`trace` on the calling thread alone.

    Examples
    --------
    >>> import numpy as np
    >>> u, v = np.zeros((4, 4), "float32"), np.full((4, 4), 0.5, "float32")
    >>> start = np.array([[1.0, 2.0]], "float32")
    >>> trace_serial(u, v, start, start, 2, True)[:, 1].tolist()  # y displacement
    [[[-0.5, -0.5]], [[-1.0, -1.0]]]
    """
    disp = np.empty((n_steps, 2, *start_x.shape), np.float32)
    for i in range(start_x.shape[0]):
        _trace_row(u, v, start_x, start_y, midpoint, disp, i)
    return disp


@numba.njit(cache=True, nogil=True)
def _trace_row(u, v, start_x, start_y, midpoint, disp, i):  # pragma: no cover - compiled
    """Row ``i`` of the points of :func:`trace`, every step, into ``disp``."""
    cols = start_x.shape[1]
    ny, nx = u.shape
    flat_u, flat_v = u.ravel(), v.ravel()
    half = np.float32(0.5)
    px, py = start_x[i].copy(), start_y[i].copy()
    qx, qy = np.empty(cols, np.float32), np.empty(cols, np.float32)
    du, dv = np.empty(cols, np.float32), np.empty(cols, np.float32)
    index = np.empty(cols, np.uint64)
    tx, ty = np.empty(cols, np.float32), np.empty(cols, np.float32)
    for k in range(disp.shape[0]):
        _cells(px, py, nx, ny, index, tx, ty)
        _lerp2(flat_u, index, tx, ty, nx, du)
        _lerp2(flat_v, index, tx, ty, nx, dv)
        if midpoint:
            for j in range(cols):
                qx[j] = px[j] - half * du[j]
                qy[j] = py[j] - half * dv[j]
            _cells(qx, qy, nx, ny, index, tx, ty)
            _lerp2(flat_u, index, tx, ty, nx, du)
            _lerp2(flat_v, index, tx, ty, nx, dv)
        for j in range(cols):
            px[j] -= du[j]
            py[j] -= dv[j]
            disp[k, 0, i, j] = px[j] - start_x[i, j]
            disp[k, 1, i, j] = py[j] - start_y[i, j]


@numba.njit(parallel=True, cache=True)
def advect_leads(
    sources, missing, disp, rows, cols, order, fill, out, spans=None
):  # pragma: no cover
    """Every lead time, each in one pass over the grid (see the module docstring), in parallel.

    The rows of all lead times are split into a few chunks per thread, each
    done by :func:`advect_rows`; :func:`advect_leads_serial` does them in one.

    Parameters
    ----------
    sources : (l, y, x) float32
        Frames to sample, without NaN (missing pixels filled); lead ``k`` reads
        ``sources[min(k, l - 1)]``.
    missing : (m, y, x) uint8
        1 where the original frame is missing, likewise per lead; shape ``(1, 0, 0)``
        when nothing is missing.
    disp : (n, 2, my, mx) float32
        Coarse displacement (trajectory start minus node) of each lead, ``x`` then ``y``.
    rows, cols : tuples ``(lo, hi, w)`` of :func:`resize_weights`
        From the coarse grid to the full one, for rows and columns.
    order : int
        0 nearest, 1 linear, 3 cubic.
    fill : float32
        Value of pixels whose trajectory starts outside the domain.
    out : (n, y, x) float32
        Result.
    spans : (m, y, 2) int64, optional
        :func:`mask_spans` of ``missing``. With it and a ``NaN`` fill, each row
        works only on the columns whose trajectory may start next to a valid
        pixel (the rest is ``NaN`` either way): the same result, less work
        where much is missing.

    Examples
    --------
    >>> import numpy as np
    >>> source = np.arange(4, dtype="float32").reshape(1, 1, 4)
    >>> disp = np.full((1, 2, 1, 1), -1.0, "float32"); disp[:, 1] = 0  # from 1 px left
    >>> out = np.empty((1, 1, 4), "float32")
    >>> none = np.zeros((1, 0, 0), "uint8")
    >>> advect_leads(source, none, disp, resize_weights(1, 1), resize_weights(4, 1), 1,
    ...              np.float32(-9), out)
    >>> out.tolist()
    [[[-9.0, 0.0, 1.0, 2.0]]]
    """
    if spans is None:
        spans = _NO_SPANS
    n_tasks = out.shape[0] * out.shape[1]
    n_chunks = min(n_tasks, _CHUNKS)
    for chunk in numba.prange(n_chunks):
        first = chunk * n_tasks // n_chunks
        last = (chunk + 1) * n_tasks // n_chunks
        advect_rows(sources, missing, disp, rows, cols, order, fill, out, first, last, spans)


@numba.njit(cache=True, nogil=True)
def advect_leads_serial(
    sources, missing, disp, rows, cols, order, fill, out, spans=None
):  # pragma: no cover
    """:func:`advect_leads` on the calling thread alone (small grids: no threads to wake).

    Examples
    --------
    >>> import numpy as np
    >>> source = np.arange(4, dtype="float32").reshape(1, 1, 4)
    >>> disp = np.full((1, 2, 1, 1), 1.0, "float32"); disp[:, 1] = 0  # from 1 px right
    >>> out = np.empty((1, 1, 4), "float32")
    >>> advect_leads_serial(source, np.zeros((1, 0, 0), "uint8"), disp, resize_weights(1, 1),
    ...                     resize_weights(4, 1), 1, np.float32(-9), out)
    >>> out.tolist()
    [[[1.0, 2.0, 3.0, -9.0]]]
    """
    n_tasks = out.shape[0] * out.shape[1]
    if spans is None:
        advect_rows(sources, missing, disp, rows, cols, order, fill, out, 0, n_tasks, _NO_SPANS)
    else:
        advect_rows(sources, missing, disp, rows, cols, order, fill, out, 0, n_tasks, spans)


@numba.njit(cache=True, inline="always")
def task_row(task, n_leads, ny, shared):  # pragma: no cover - compiled
    """``(lead, row)`` of task ``task`` of the advection kernels.

    With one source and one mask for every lead (``shared``), the tasks go row by row,
    every lead time of a row in turn: the few source rows that the lead times of
    neighbouring rows read stay in the processor's cache, where lead by lead each
    lead time would read the whole source again (which, on large grids, is from
    memory). Otherwise lead by lead, each lead's own source while it is in cache.

    Examples
    --------
    >>> task_row(5, 3, 4, True), task_row(5, 3, 4, False)
    ((2, 1), (1, 1))
    """
    if shared:
        return task % n_leads, task // n_leads
    return task // ny, task % ny


@numba.njit(cache=True, nogil=True)
def advect_rows(
    sources, missing, disp, rows, cols, order, fill, out, first, last, spans
):  # pragma: no cover
    """Tasks ``first .. last - 1`` of :func:`task_row`: one row of one lead time each.

    The arguments are those of :func:`advect_leads` (``spans`` of shape
    ``(1, 0, 2)``: none); the work of one row is done in stages over the row
    (displacement, domain, mask, cell, samples), each a loop of its own that
    the compiler vectorises where it can.
    """
    ny, nx = out.shape[1:]
    row_lo, row_hi, row_w = rows
    col_lo, col_hi, col_w = cols
    n_src, n_mask = sources.shape[0], missing.shape[0]
    has_missing = missing.shape[1] > 0
    # with a NaN fill, missing and outside look alike: only the window can differ
    windowed = has_missing and fill != fill and spans.shape[1] > 0
    bounds = (np.float32(-0.5), np.float32(nx - 0.5), np.float32(-0.5), np.float32(ny - 0.5))
    nan = np.float32(np.nan)
    mx = disp.shape[3]
    line_x, line_y = np.empty(mx, np.float32), np.empty(mx, np.float32)
    xs, ys = np.empty(nx, np.float32), np.empty(nx, np.float32)
    index, near = np.empty(nx, np.uint64), np.empty(nx, np.uint64)
    tx, ty = np.empty(nx, np.float32), np.empty(nx, np.float32)
    gone = np.zeros(nx, np.uint8)
    outside = np.zeros(nx, np.bool_)
    n_leads = out.shape[0]
    shared = n_src == 1 and n_mask == 1
    if windowed:
        low = 0 if shared else first // ny
        reach = _row_reach(disp[low : n_leads if shared else (last - 1) // ny + 1])
    for task in range(first, last):
        k, i = task_row(task, n_leads, ny, shared)
        src = sources[min(k, n_src - 1)]
        flat = src.ravel()
        m = min(k, n_mask - 1)
        target = out[k, i]
        # the coarse displacement interpolated to this row, then along it to each pixel
        r0, r1 = row_lo[i], row_hi[i]
        _row_line(disp[k], r0, r1, row_w[i], line_x, line_y)
        fi = np.float32(i)
        j0, j1 = 0, nx
        if windowed:
            lead = reach[k - low]
            j0, j1 = _window(spans[m], lead[r0], lead[r1], fi, nx, ny)
            target[:j0] = nan
            target[j1:] = nan
        row = slice(j0, j1)
        _row_coords(line_x, line_y, col_lo[row], col_hi[row], col_w[row], j0, fi, xs[row], ys[row])
        # outside the domain (fill) or missing (NaN): sample only between the first and
        # the last pixel that is neither
        _outside(xs[row], ys[row], bounds, outside[row])
        if has_missing:
            _closest(xs[row], ys[row], nx, ny, near[row])
            _gather(missing[m].ravel(), near[row], gone[row])
        start, stop = j0, j1
        while start < stop and (outside[start] or gone[start] != 0):
            start += 1
        while stop > start and (outside[stop - 1] or gone[stop - 1] != 0):
            stop -= 1
        if order == 1:
            _cells(xs[start:stop], ys[start:stop], nx, ny, index, tx, ty)
            _lerp2(flat, index[: stop - start], tx, ty, nx, target[start:stop])
        elif order == 0:
            if not has_missing:  # else found above, for the mask
                _closest(xs, ys, nx, ny, near)
            for j in range(start, stop):
                target[j] = flat[near[j]]
        else:
            for j in range(start, stop):
                target[j] = _bicubic(src, xs[j], ys[j])
        _mark(target[row], gone[row], outside[row], fill, has_missing)


@numba.njit(cache=True)
def _row_line(disp, r0, r1, wr, line_x, line_y):  # pragma: no cover - compiled
    """The coarse displacement ``disp`` (``(2, my, mx)``) interpolated between its rows
    ``r0`` and ``r1`` into ``line_x`` and ``line_y``."""
    for c in range(line_x.shape[0]):
        a, b = disp[0, r0, c], disp[0, r1, c]
        line_x[c] = a + wr * (b - a)
        a, b = disp[1, r0, c], disp[1, r1, c]
        line_y[c] = a + wr * (b - a)


@numba.njit(cache=True)
def _row_reach(disp):  # pragma: no cover - compiled
    """``(n, my, 4)``: the least and greatest ``x``, then ``y`` displacement of each coarse row."""
    n, _, my, mx = disp.shape
    reach = np.empty((n, my, 4), np.float32)
    for k in range(n):
        for r in range(my):
            for d in range(2):
                lo, hi = disp[k, d, r, 0], disp[k, d, r, 0]
                for c in range(1, mx):
                    lo, hi = min(lo, disp[k, d, r, c]), max(hi, disp[k, d, r, c])
                reach[k, r, 2 * d], reach[k, r, 2 * d + 1] = lo, hi
    return reach


@numba.njit(cache=True)
def _row_coords(line_x, line_y, col_lo, col_hi, col_w, j0, fi, xs, ys):  # pragma: no cover
    """Trajectory starts of the pixels ``j0 ..`` of row ``fi``: the lines interpolated along it."""
    for j in range(xs.shape[0]):
        c0, c1, wc = col_lo[j], col_hi[j], col_w[j]
        xs[j] = np.float32(j0 + j) + (line_x[c0] + wc * (line_x[c1] - line_x[c0]))
        ys[j] = fi + (line_y[c0] + wc * (line_y[c1] - line_y[c0]))


@numba.njit(cache=True)
def _outside(xs, ys, bounds, outside):  # pragma: no cover - compiled
    """Whether each point lies outside ``bounds = (x_lo, x_hi, y_lo, y_hi)``."""
    x_lo, x_hi, y_lo, y_hi = bounds
    for j in range(xs.shape[0]):
        x, y = xs[j], ys[j]
        outside[j] = x < x_lo or x > x_hi or y < y_lo or y > y_hi


@numba.njit(cache=True)
def _gather(mask, near, gone):  # pragma: no cover - compiled
    """``gone[j] = mask[near[j]]``."""
    for j in range(near.shape[0]):
        gone[j] = mask[near[j]]


@numba.njit(cache=True)
def _mark(target, gone, outside, fill, has_missing):  # pragma: no cover - compiled
    """``NaN`` where the nearest source pixel is missing, then ``fill`` outside the domain."""
    nan = np.float32(np.nan)
    if has_missing:
        for j in range(target.shape[0]):
            if gone[j] != 0:
                target[j] = nan
    for j in range(target.shape[0]):
        if outside[j]:
            target[j] = fill


@numba.njit(cache=True)
def _window(spans, above, below, fi, nx, ny):  # pragma: no cover - compiled
    """Columns ``[j0, j1)`` of output row ``fi`` beyond which the nearest source pixel of
    every trajectory start is missing: ``spans`` (``(y, 2)``) bound the valid columns of
    each source row, ``above`` and ``below`` (:func:`_row_reach`) the displacements of
    the coarse rows around the row (it interpolates them); two pixels of margin."""
    x_lo, x_hi = min(above[0], below[0]), max(above[1], below[1])
    y_lo, y_hi = min(above[2], below[2]), max(above[3], below[3])
    r0 = min(max(math.floor(fi + y_lo) - 1, 0), ny - 1)
    r1 = min(max(math.ceil(fi + y_hi) + 1, 0), ny - 1)
    if r1 - r0 > _WINDOW_ROWS:  # a wide fan of rows: not worth the search
        return 0, nx
    c_lo, c_hi = nx, 0
    for r in range(r0, r1 + 1):
        c_lo = min(c_lo, spans[r, 0])
        c_hi = max(c_hi, spans[r, 1])
    if c_lo >= c_hi:
        return 0, 0
    j0 = math.floor(c_lo - x_hi) - 2
    j1 = math.ceil(c_hi - x_lo) + 2
    return min(max(j0, 0), nx), min(max(j1, 0), nx)


@numba.njit(cache=True, nogil=True)
def mask_spans(missing):  # pragma: no cover - compiled
    """``(m, y, 2)``: the first valid column of each row of each ``(m, y, x)`` mask and one
    past its last (``lo >= hi``: none valid), for :func:`advect_leads`.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[[1, 0, 0, 1], [1, 1, 1, 1]]], "uint8")
    >>> mask_spans(mask).tolist()
    [[[1, 3], [4, 0]]]
    """
    m, ny, nx = missing.shape
    spans = np.empty((m, ny, 2), np.int64)
    for k in range(m):
        for r in range(ny):
            lo = 0
            while lo < nx and missing[k, r, lo] != 0:
                lo += 1
            hi = nx
            while hi > lo and missing[k, r, hi - 1] != 0:
                hi -= 1
            spans[k, r, 0], spans[k, r, 1] = (lo, hi) if lo < hi else (nx, 0)
    return spans


@numba.njit(cache=True, nogil=True)
def filter_spectrum(weights, ca, cb, last, previous, out):  # pragma: no cover - compiled
    """One lead time's cascade filter: ``out = A * last + B * previous``, the mean of ``last``.

    ``A = sum_l ca[l] * weights[l]`` and ``B = sum_l cb[l] * weights[l]`` are the
    lead filters of :func:`xnowcast.cascade.lead_filters`, formed here one row at a
    time instead of as whole arrays: one pass over the spectra per lead time.

    Parameters
    ----------
    weights : (n_levels, y, xh) float32
        The cascade's band-pass weights.
    ca, cb : (n_levels,) float32
        The AR forecast coefficients of the lead (:func:`xnowcast.cascade.ar_lead_coefficients`).
    last, previous : (y, 2 * xh) float32
        The two spectra (complex64 viewed as float32: real and imaginary parts interleaved).
    out : (y, 2 * xh) float32
        The filtered spectrum, likewise.

    Examples
    --------
    >>> import numpy as np
    >>> w = np.full((2, 1, 2), 0.5, "float32")
    >>> spec = np.array([[1 + 1j, 2 + 2j]], "complex64")
    >>> out = np.empty_like(spec)
    >>> filter_spectrum(w, np.array([1.0, 0.0], "float32"), np.zeros(2, "float32"),
    ...                 spec.view("float32"), spec.view("float32"), out.view("float32"))
    >>> out.tolist()   # the mean (first coefficient) kept, the rest filtered
    [[(1+1j), (1+1j)]]
    """
    n_levels, ny, nx = weights.shape
    fa = np.empty(nx, np.float32)
    fb = np.empty(nx, np.float32)
    for i in range(ny):
        for j in range(nx):
            fa[j] = ca[0] * weights[0, i, j]
            fb[j] = cb[0] * weights[0, i, j]
        for level in range(1, n_levels):
            a, b = ca[level], cb[level]
            for j in range(nx):
                fa[j] += a * weights[level, i, j]
                fb[j] += b * weights[level, i, j]
        for j in range(nx):
            out[i, 2 * j] = fa[j] * last[i, 2 * j] + fb[j] * previous[i, 2 * j]
            out[i, 2 * j + 1] = fa[j] * last[i, 2 * j + 1] + fb[j] * previous[i, 2 * j + 1]
    out[0, 0] = last[0, 0]
    out[0, 1] = last[0, 1]
