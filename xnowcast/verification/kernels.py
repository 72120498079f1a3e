"""Numba kernels of the verification statistics: one pass per field pair.

Each kernel takes a batch of field pairs ``(n, y, x)`` (float32 or float64,
the two fields may differ) and returns the sufficient statistics of one score
family per pair, skipping pixels missing (NaN or infinite) in either field:

* :func:`continuous_sums`: the nine sums of the continuous scores (float64
  accumulators), in the order of ``continuous.CONTINUOUS_STATS``;
* :func:`contingency_counts`: the contingency table at every threshold, from
  one comparison pass per pixel;
* :func:`fss_sums`: the FSS sums at every threshold and scale. Each pixel's
  event level (the number of sorted thresholds it reaches) is found once;
  per threshold, one int32 integral image per field serves every scale, and
  the window counts of a scale are differences of its rows (vertical) and
  columns (horizontal), accumulated in int64 without a temporary array;
* :func:`ssim_sums`: the sums of the SSIM and contrast-structure maps over
  the windows free of missing pixels, and their number, with the five local
  moments filtered in one fused separable pass (running box sums for a
  uniform window, weighted sums for a Gaussian one).

The kernels are serial and release the GIL (``nogil=True``): dask runs one
per thread, with no nested thread pool to oversubscribe the cores. They are
compiled once per dtype pair and cached on disk (``cache=True``).

Examples
--------
>>> import numpy as np
>>> from xnowcast.verification import kernels
>>> fc = np.array([[[0.0, 2.0], [3.0, np.nan]]])
>>> obs = np.array([[[1.0, 2.0], [0.0, 5.0]]])
>>> kernels.continuous_sums(fc, obs)[0, :3].tolist()  # n, sum(fc - obs), sum(|fc - obs|)
[3.0, 2.0, 4.0]
>>> kernels.contingency_counts(fc, obs, np.array([1.0]), True)[0].tolist()
[[1, 0, 1, 1]]
"""

from __future__ import annotations

import math

import numpy as np

from xnowcast.optional import import_optional

numba = import_optional("numba", "fast verification kernels")

__all__ = [
    "contingency_counts",
    "continuous_sums",
    "count_width",
    "default_sums",
    "fss_sums",
    "ssim_sums",
]


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def continuous_sums(fc, obs):  # pragma: no cover - compiled
    """The nine sums of the continuous scores per pair, shape ``(n, 9)``.

    ``n, sum(e), sum(|e|), sum(e**2), sum(fc), sum(obs), sum(fc**2),
    sum(obs**2), sum(fc*obs)`` with ``e = fc - obs``, over the pixels valid
    in both fields (float64 accumulators). Written without branches and with
    reassociable sums (NaN and infinity keep their meaning), so that the loop
    vectorises; the sums differ from numpy's by rounding only.

    Examples
    --------
    >>> import numpy as np
    >>> continuous_sums(np.ones((1, 2, 2)), np.zeros((1, 2, 2)))[0].tolist()
    [4.0, 4.0, 4.0, 4.0, 4.0, 0.0, 4.0, 0.0, 0.0]
    """
    n_pairs, ny, nx = fc.shape
    out = np.zeros((n_pairs, 9))
    for k in range(n_pairs):
        n = 0.0
        se = 0.0
        sa = 0.0
        s2 = 0.0
        sf = 0.0
        so = 0.0
        sff = 0.0
        soo = 0.0
        sfo = 0.0
        for i in range(ny):
            f_row, o_row = fc[k, i], obs[k, i]
            for j in range(nx):
                f = np.float64(f_row[j])
                o = np.float64(o_row[j])
                ok = ((f - f) == 0.0) & ((o - o) == 0.0)  # both finite
                f = f if ok else 0.0
                o = o if ok else 0.0
                e = f - o
                n += 1.0 if ok else 0.0
                se += e
                sa += abs(e)
                s2 += e * e
                sf += f
                so += o
                sff += f * f
                soo += o * o
                sfo += f * o
        out[k, 0] = n
        out[k, 1] = se
        out[k, 2] = sa
        out[k, 3] = s2
        out[k, 4] = sf
        out[k, 5] = so
        out[k, 6] = sff
        out[k, 7] = soo
        out[k, 8] = sfo
    return out


@numba.njit(cache=True, nogil=True)
def count_width(ny, nx):  # pragma: no cover - compiled
    """Bits per packed count of a ``ny x nx`` field, and how many counts one int64 holds.

    A count of events in a field (or in any window of it) lies between 0 and
    ``ny * nx``, so it fits ``width`` bits; ``63 // width`` such counts share
    one non-negative int64 (at least 2 for fields below 2**31 pixels). Sums
    and differences of packed values whose every count is non-negative are
    the packed sums and differences of the counts: no count carries into the
    next one.

    Examples
    --------
    >>> count_width(512, 512)  # counts up to 262144: 19 bits, three per int64
    (19, 3)
    """
    width = 0
    cells = max(ny * nx, 1)
    while cells > 0:
        width += 1
        cells >>= 1
    return width, max(63 // width, 1)


#: Thresholds whose events one pass over a row packs (the slots of :func:`_row_events`).
SLOTS = 3


@numba.njit(cache=True, nogil=True)
def _slots(thresholds, t0, nt, width):  # pragma: no cover - compiled
    """The :data:`SLOTS` thresholds from ``t0`` and their shifts; unused slots never fire.

    An unused slot gets the threshold +inf (no finite value exceeds or
    reaches it, and infinite values are missing) and shift 0.
    """
    thr = np.full(SLOTS, np.inf)
    shift = np.zeros(SLOTS, dtype=np.int64)
    for k in range(nt):
        thr[k] = thresholds[t0 + k]
        shift[k] = k * width
    return thr, shift


@numba.njit(cache=True, nogil=True)
def _events(x, t0, t1, t2, strict):  # pragma: no cover - compiled
    """Whether ``x`` is an event (1) or not (0) at each of three thresholds: ``x > t``
    when ``strict``, else ``x >= t``."""
    if strict:
        return np.int64(x > t0), np.int64(x > t1), np.int64(x > t2)
    return np.int64(x >= t0), np.int64(x >= t1), np.int64(x >= t2)


@numba.njit(cache=True, nogil=True)
def _row_events(fr, orow, thr, shift, strict):  # pragma: no cover - compiled
    """Counts of one row's events at the :data:`SLOTS` thresholds ``thr``, packed.

    A pixel's event at ``thr[k]`` (:func:`_events`) counts at bit ``shift[k]``;
    pixels missing in either field (NaN or infinite) are not counted. Returns
    the row's valid pixels and the packed counts of the pixels that are an
    event in both fields, in the forecast and in the observation. One pass
    over the row with a fixed number of thresholds and no branch on the data:
    the loop vectorises.
    """
    t0, t1, t2 = thr[0], thr[1], thr[2]
    s0, s1, s2 = shift[0], shift[1], shift[2]
    n = 0
    both = 0
    sum_f = 0
    sum_o = 0
    for j in range(fr.size):
        f = np.float64(fr[j])
        o = np.float64(orow[j])
        ok = ((f - f) == 0.0) & ((o - o) == 0.0)  # x - x: 0 if finite, NaN for NaN and inf
        keep = -np.int64(ok)  # all bits set where valid, none where missing
        ef0, ef1, ef2 = _events(f, t0, t1, t2, strict)
        eo0, eo1, eo2 = _events(o, t0, t1, t2, strict)
        a = ((ef0 << s0) + (ef1 << s1) + (ef2 << s2)) & keep
        b = ((eo0 << s0) + (eo1 << s1) + (eo2 << s2)) & keep
        n += ok
        both += a & b
        sum_f += a
        sum_o += b
    return n, both, sum_f, sum_o


@numba.njit(cache=True, nogil=True)
def _unpack(value, k, width):  # pragma: no cover - compiled
    """Count ``k`` of a packed value."""
    return (value >> (k * width)) & ((np.int64(1) << width) - 1)


@numba.njit(cache=True, nogil=True)
def contingency_counts(fc, obs, thresholds, strict):  # pragma: no cover - compiled
    """Hits, misses, false alarms and correct negatives, shape ``(n, n_thresholds, 4)``.

    An event is ``value > threshold`` when ``strict``, else ``value >=
    threshold``. Pixels missing in either field are not counted. One pass
    over each row per group of thresholds: the event bits of all thresholds
    of a group are packed in one int64 per pixel (:func:`count_width`), so
    the forecast's, the observation's and the joint events are three sums.

    Examples
    --------
    >>> import numpy as np
    >>> fc, obs = np.array([[[1.0, 3.0]]]), np.array([[[2.0, 5.0]]])
    >>> contingency_counts(fc, obs, np.array([1.0]), True)[0].tolist()
    [[1, 1, 0, 0]]
    """
    n_pairs, ny, nx = fc.shape
    n_thr = thresholds.size
    width, per = count_width(ny, nx)
    per = min(per, SLOTS)
    out = np.zeros((n_pairs, n_thr, 4), dtype=np.int64)
    for k in range(n_pairs):
        for t0 in range(0, n_thr, per):
            nt = min(per, n_thr - t0)
            thr, shift = _slots(thresholds, t0, nt, width)
            n = 0
            both = 0
            sum_f = 0
            sum_o = 0
            for i in range(ny):
                row = _row_events(fc[k, i], obs[k, i], thr, shift, strict)
                n += row[0]
                both += row[1]
                sum_f += row[2]
                sum_o += row[3]
            for t in range(nt):
                hits = _unpack(both, t, width)
                above_f = _unpack(sum_f, t, width)
                above_o = _unpack(sum_o, t, width)
                out[k, t0 + t, 0] = hits
                out[k, t0 + t, 1] = above_o - hits
                out[k, t0 + t, 2] = above_f - hits
                out[k, t0 + t, 3] = n - above_f - above_o + hits
    return out


@numba.njit(cache=True, nogil=True)
def _fss_integral(
    fc, obs, thr, strict, narrow, wide, image, row, extent
):  # pragma: no cover - compiled
    """One integral image of the events of both fields at the :data:`SLOTS` thresholds.

    Each pixel's events are packed in one int64: the forecast's at threshold
    ``thr[k]`` at bit ``narrow[2 * k]``, the observation's at bit
    ``narrow[2 * k + 1]``. ``image[i, j]`` sums them over rows ``< i`` and
    columns ``< j`` in wrapping int64 arithmetic: its packed counts overlap
    and wrap, but the difference of its corners over a window is exact (the
    count of every field fits its bits, see :func:`fss_sums`). Returns the
    whole field's forecast, joint and observed event counts packed at the
    ``wide`` shifts (:func:`count_width`), for the scale of one pixel, and
    writes the columns of each row's events into ``extent`` (:func:`_event_extent`).
    """
    ny, nx = fc.shape
    t0, t1, t2 = thr[0], thr[1], thr[2]
    f0, o0, f1, o1, f2, o2 = narrow[0], narrow[1], narrow[2], narrow[3], narrow[4], narrow[5]
    w0, w1, w2 = wide[0], wide[1], wide[2]
    sum_f = 0
    both = 0
    sum_o = 0
    for i in range(ny):
        fr, orow = fc[i], obs[i]
        for j in range(nx):
            f = np.float64(fr[j])
            o = np.float64(orow[j])
            ok = ((f - f) == 0.0) & ((o - o) == 0.0)  # x - x: 0 if finite, NaN for NaN and inf
            ef0, ef1, ef2 = _events(f, t0, t1, t2, strict)
            eo0, eo1, eo2 = _events(o, t0, t1, t2, strict)
            keep = -np.int64(ok)  # all bits set where valid, none where missing
            a = ((ef0 << w0) + (ef1 << w1) + (ef2 << w2)) & keep
            b = ((eo0 << w0) + (eo1 << w1) + (eo2 << w2)) & keep
            sum_f += a
            sum_o += b
            both += a & b
            packed = (ef0 << f0) + (eo0 << o0) + (ef1 << f1) + (eo1 << o1)
            row[j] = (packed + (ef2 << f2) + (eo2 << o2)) & keep
        run = 0
        for j in range(nx):
            run += row[j]
            image[i + 1, j + 1] = image[i, j + 1] + run
        extent[i, 0], extent[i, 1] = _event_extent(row)
    return sum_f, both, sum_o


@numba.njit(cache=True, nogil=True)
def _window_bounds(n, size):  # pragma: no cover - compiled
    """Integral-image bounds of the clipped windows (``uniform_filter``'s position)."""
    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    for i in range(n):
        lo[i] = max(i - size // 2, 0)
        hi[i] = min(i + (size - 1) // 2 + 1, n)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def _add_products(d, shift, mask, acc):  # pragma: no cover - compiled
    """Add the products of the window counts packed in ``d`` to ``acc`` ``(SLOTS, 3)``."""
    for k in range(SLOTS):
        wf = (d >> shift[2 * k]) & mask
        wo = (d >> shift[2 * k + 1]) & mask
        acc[k, 0] += wf * wf
        acc[k, 1] += wf * wo
        acc[k, 2] += wo * wo


@numba.njit(cache=True, nogil=True)
def _interior_products(lo, hi, shift, mask, acc):  # pragma: no cover - compiled
    """Add the products of the packed window counts ``hi[j] - lo[j]``, per slot, to ``acc``.

    Views rather than offsets: indices that cannot be negative keep the loop
    free of bounds wrap-around, and the counts of the :data:`SLOTS`
    thresholds of both fields are unpacked side by side, so that the loop
    vectorises (integer sums: exact in any order).
    """
    sf0, so0, sf1, so1, sf2, so2 = shift[0], shift[1], shift[2], shift[3], shift[4], shift[5]
    ff0 = fo0 = oo0 = ff1 = fo1 = oo1 = ff2 = fo2 = oo2 = 0
    for j in range(lo.size):
        d = hi[j] - lo[j]
        f0, o0 = (d >> sf0) & mask, (d >> so0) & mask
        f1, o1 = (d >> sf1) & mask, (d >> so1) & mask
        f2, o2 = (d >> sf2) & mask, (d >> so2) & mask
        ff0 += f0 * f0
        fo0 += f0 * o0
        oo0 += o0 * o0
        ff1 += f1 * f1
        fo1 += f1 * o1
        oo1 += o1 * o1
        ff2 += f2 * f2
        fo2 += f2 * o2
        oo2 += o2 * o2
    acc[0, 0] += ff0
    acc[0, 1] += fo0
    acc[0, 2] += oo0
    acc[1, 0] += ff1
    acc[1, 1] += fo1
    acc[1, 2] += oo1
    acc[2, 0] += ff2
    acc[2, 1] += fo2
    acc[2, 2] += oo2


@numba.njit(cache=True, nogil=True)
def _window_products(image, extent, size, shift, mask, cols, acc):  # pragma: no cover - compiled
    """Add ``sum(cf**2), sum(cf*co), sum(co**2)`` of the ``size x size`` window counts.

    ``acc`` ``(SLOTS, 3)`` int64 gets one row per threshold. Per output row,
    the packed column sums of the window's rows are one difference of two
    integral-image rows; the window counts are differences of those,
    unpacked per field and threshold. Rows without an event in the window's
    rows are skipped, and of the interior windows only those that reach the
    columns with events in the window's rows (``extent``, per image row: the
    first column with an event and the one after the last, see
    :func:`_event_extent`) are counted: every other count is 0.
    """
    ny, nx = image.shape[0] - 1, image.shape[1] - 1
    ylo, yhi = _window_bounds(ny, size)
    xlo, xhi = _window_bounds(nx, size)
    left = min(size // 2, nx)  # columns whose window is clipped on the left
    right = max(nx - (size - 1) // 2, left)  # and on the right from here on
    for i in range(ny):
        a, b = ylo[i], yhi[i]
        first, stop = nx, 0
        for r in range(a, b):
            first = min(first, extent[r, 0])
            stop = max(stop, extent[r, 1])
        if stop <= first:
            continue  # no event in the window's rows: every count is 0
        for j in range(nx + 1):
            cols[j] = image[b, j] - image[a, j]
        for j in range(left):
            _add_products(cols[xhi[j]] - cols[xlo[j]], shift, mask, acc)
        # interior windows that reach the columns first:stop; the window of column start + j
        # is [c0 + j, c1 + j)
        start = max(left, first - (size - 1) // 2)
        end = min(right, stop + size // 2)
        if end > start:
            c0, c1, n = xlo[start], xhi[start], end - start
            _interior_products(cols[c0 : c0 + n], cols[c1 : c1 + n], shift, mask, acc)
        for j in range(right, nx):
            _add_products(cols[xhi[j]] - cols[xlo[j]], shift, mask, acc)


@numba.njit(cache=True, nogil=True)
def _event_extent(row):  # pragma: no cover - compiled
    """The first column of ``row`` (packed events) with an event and the one after the last.

    ``(nx, 0)`` for a row without events.
    """
    nx = row.size
    first = 0
    while first < nx and row[first] == 0:
        first += 1
    if first == nx:
        return nx, 0
    stop = nx
    while row[stop - 1] == 0:
        stop -= 1
    return first, stop


@numba.njit(cache=True, nogil=True)
def _fss_shifts(thresholds, t0, nt, window_bits, width):  # pragma: no cover - compiled
    """The :data:`SLOTS` thresholds from ``t0``, their narrow and wide shifts.

    Narrow: the forecast's count at threshold ``k`` at ``2 * k *
    window_bits``, the observation's ``window_bits`` above; wide: as
    :func:`_slots`. Unused slots never fire (threshold +inf) and get shift 0.
    """
    thr, wide = _slots(thresholds, t0, nt, width)
    narrow = np.zeros(2 * SLOTS, dtype=np.int64)
    for k in range(nt):
        narrow[2 * k] = 2 * k * window_bits
        narrow[2 * k + 1] = (2 * k + 1) * window_bits
    return thr, narrow, wide


@numba.njit(cache=True, nogil=True)
def fss_sums(fc, obs, thresholds, sizes, strict):  # pragma: no cover - compiled
    """The FSS sums ``sum(Pf**2), sum(Pf*Po), sum(Po**2)``, shape ``(n, n_thr, n_sizes, 3)``.

    A pixel missing in either field is a non-event in both. The fractions are
    window counts over ``size**2``, zero outside the field (the window of
    :func:`scipy.ndimage.uniform_filter`); the sums are exact integers until
    the final division.

    One pass per field pair and group of up to :data:`SLOTS` thresholds makes
    one integral image of the events of both fields at all of them, which
    serves every scale: a window holds at most ``size**2`` events, so its
    count needs only ``window_bits`` bits, and the counts of both fields at
    three thresholds share one int64 (for windows up to 1024 cells: scales up
    to 32; larger scales take fewer thresholds per pass). The image's packed
    sums wrap around, but the difference of its corners over a window, each
    count below ``2**window_bits``, is exact.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((1, 4, 4)); obs[0, 1, 1] = 2.0
    >>> fss_sums(obs, obs, np.array([1.0]), np.array([1, 3]), False)[0, 0].tolist()
    [[1.0, 1.0, 1.0], [0.1111111111111111, 0.1111111111111111, 0.1111111111111111]]
    """
    n_pairs, ny, nx = fc.shape
    n_thr, n_sizes = thresholds.size, sizes.size
    window_bits, width, _, per, mask = _fss_layout(ny, nx, sizes)
    image, row, extent, cols, acc = _fss_buffers(ny, nx)
    out = np.zeros((n_pairs, n_thr, n_sizes, 3))
    for k in range(n_pairs):
        for t0 in range(0, n_thr, per):
            nt = min(per, n_thr - t0)
            thr, narrow, wide = _fss_shifts(thresholds, t0, nt, window_bits, width)
            counts = _fss_integral(fc[k], obs[k], thr, strict, narrow, wide, image, row, extent)
            _fss_scales(
                image, extent, counts, sizes, nt, narrow, mask, width, cols, acc, out[k, t0:]
            )
    return out


@numba.njit(cache=True, nogil=True)
def _fss_layout(ny, nx, sizes):  # pragma: no cover - compiled
    """How the FSS passes pack their counts: bits of a window's count, bits and slots of
    a field's counts, thresholds per pass, and the mask of one window count."""
    largest = min(sizes.max(), ny) * min(sizes.max(), nx)  # the most events in a window
    window_bits = count_width(largest, 1)[0]
    width, wide_per = count_width(ny, nx)
    per = min(max(64 // (2 * window_bits), 1), wide_per, SLOTS)
    mask = (np.int64(1) << window_bits) - 1
    return window_bits, width, wide_per, per, mask


@numba.njit(cache=True, nogil=True)
def _fss_buffers(ny, nx):  # pragma: no cover - compiled
    """The integral image (its first row and column zero; the passes write the rest) and
    the work arrays of the FSS passes over a ``(ny, nx)`` field."""
    image = np.empty((ny + 1, nx + 1), dtype=np.int64)
    image[0, :] = 0
    image[:, 0] = 0
    row = np.empty(nx, dtype=np.int64)
    extent = np.empty((ny, 2), dtype=np.int64)
    cols = np.empty(nx + 1, dtype=np.int64)
    acc = np.zeros((SLOTS, 3), dtype=np.int64)
    return image, row, extent, cols, acc


@numba.njit(cache=True, nogil=True)
def default_sums(
    fc, obs, cat_thresholds, cat_strict, thresholds, sizes, strict
):  # pragma: no cover - compiled
    """:func:`continuous_sums`, :func:`contingency_counts` and :func:`fss_sums` of each pair.

    The same statistics as the three kernels (the integer counts identical,
    the float sums up to rounding), with one pass over the pixels of a pair
    where the three take three: the pass that makes the integral image of
    the first group of FSS thresholds also adds the continuous sums and
    counts the events at the first :data:`SLOTS` categorical thresholds
    (rule ``cat_strict``; sorted ascending, like ``thresholds``). Further
    thresholds take passes of their own. Returns ``(continuous (n, 9),
    table (n, n_cat, 4), fss (n, n_thr, n_sizes, 3))``.

    Examples
    --------
    >>> import numpy as np
    >>> fc, obs = np.array([[[1.0, 3.0]]]), np.array([[[2.0, 5.0]]])
    >>> cont, table, fss = default_sums(fc, obs, np.array([1.0]), True, np.array([1.0]),
    ...                                 np.array([1]), False)
    >>> cont[0, :3].tolist(), table[0].tolist(), fss[0, 0].tolist()
    ([2.0, -3.0, 3.0], [[1, 1, 0, 0]], [[2.0, 2.0, 2.0]])
    """
    n_pairs, ny, nx = fc.shape
    n_thr, n_sizes = thresholds.size, sizes.size
    window_bits, width, wide_per, per, mask = _fss_layout(ny, nx, sizes)
    n_cat = cat_thresholds.size
    fused_cat = min(n_cat, wide_per, SLOTS)  # categorical thresholds of the fused pass
    cat_thr, cat_shift = _slots(cat_thresholds, 0, fused_cat, width)
    cat_thr = _at_or_above(cat_thr, cat_strict)
    cont = np.zeros((n_pairs, 9))
    table = np.zeros((n_pairs, n_cat, 4), dtype=np.int64)
    out = np.zeros((n_pairs, n_thr, n_sizes, 3))
    image, row, extent, cols, acc = _fss_buffers(ny, nx)
    for k in range(n_pairs):
        thr, narrow, wide = _fss_shifts(thresholds, 0, min(per, n_thr), window_bits, width)
        at = _at_or_above(thr, strict)
        r = _fused_integral(
            fc[k], obs[k], at, narrow, wide, image, row, extent, cat_thr, cat_shift, cont[k]
        )
        for t in range(fused_cat):
            hits = _unpack(r[4], t, width)
            above_f = _unpack(r[5], t, width)
            above_o = _unpack(r[6], t, width)
            table[k, t, 0] = hits
            table[k, t, 1] = above_o - hits
            table[k, t, 2] = above_f - hits
            table[k, t, 3] = r[3] - above_f - above_o + hits
        for t0 in range(0, n_thr, per):
            nt = min(per, n_thr - t0)
            thr, narrow, wide = _fss_shifts(thresholds, t0, nt, window_bits, width)
            counts = (r[0], r[1], r[2])
            if t0 > 0:
                counts = _fss_integral(fc[k], obs[k], thr, strict, narrow, wide, image, row, extent)
            _fss_scales(
                image, extent, counts, sizes, nt, narrow, mask, width, cols, acc, out[k, t0:]
            )
    if n_cat > fused_cat:
        table[:, fused_cat:] = contingency_counts(fc, obs, cat_thresholds[fused_cat:], cat_strict)
    return cont, table, out


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "nsz", "contract"})
def _fused_integral(
    fc, obs, thr, narrow, wide, image, row, extent, cat, cat_shift, cont
):  # pragma: no cover - compiled
    """:func:`_fss_integral`, with the continuous sums and the contingency counts of the pair.

    The same pass over the pixels also adds the nine sums of
    :func:`continuous_sums` into ``cont`` and counts the events at the
    :data:`SLOTS` categorical thresholds ``cat`` (packed at the shifts
    ``cat_shift`` as in :func:`_row_events`). Events are values at or above
    the thresholds (:func:`_at_or_above` turns ``>`` into ``>=``), and each
    event adds its bit by a select, not a shift: the loop vectorises. Returns
    the FSS counts of :func:`_fss_integral`, then the valid pixels and the
    packed joint, forecast and observed categorical counts.
    """
    ny, nx = fc.shape
    one, zero = np.int64(1), np.int64(0)
    t0, t1, t2 = thr[0], thr[1], thr[2]
    c0, c1, c2 = cat[0], cat[1], cat[2]
    k0, k1, k2 = one << cat_shift[0], one << cat_shift[1], one << cat_shift[2]
    f0, o0, f1, o1 = one << narrow[0], one << narrow[1], one << narrow[2], one << narrow[3]
    f2, o2 = one << narrow[4], one << narrow[5]
    w0, w1, w2 = one << wide[0], one << wide[1], one << wide[2]
    sum_f = both = sum_o = 0
    n = cat_both = cat_f = cat_o = 0
    se = sa = sq = sf = so = sff = soo = sfo = 0.0
    for i in range(ny):
        fr, orow = fc[i], obs[i]
        first, stop = nx, 0  # the columns of the row's events
        for j in range(nx):
            f = np.float64(fr[j])
            o = np.float64(orow[j])
            ok = ((f - f) == 0.0) & ((o - o) == 0.0)  # x - x: 0 if finite, NaN for NaN and inf
            x = f if ok else -np.inf  # a pixel missing in either field is no event in both
            y = o if ok else -np.inf
            a = (w0 if x >= t0 else zero) + (w1 if x >= t1 else zero) + (w2 if x >= t2 else zero)
            b = (w0 if y >= t0 else zero) + (w1 if y >= t1 else zero) + (w2 if y >= t2 else zero)
            sum_f += a
            sum_o += b
            both += a & b
            packed = (f0 if x >= t0 else zero) + (o0 if y >= t0 else zero)
            packed += (f1 if x >= t1 else zero) + (o1 if y >= t1 else zero)
            packed += (f2 if x >= t2 else zero) + (o2 if y >= t2 else zero)
            row[j] = packed
            first = min(first, j if packed != 0 else nx)
            stop = max(stop, j + 1 if packed != 0 else 0)
            a = (k0 if x >= c0 else zero) + (k1 if x >= c1 else zero) + (k2 if x >= c2 else zero)
            b = (k0 if y >= c0 else zero) + (k1 if y >= c1 else zero) + (k2 if y >= c2 else zero)
            n += ok
            cat_both += a & b
            cat_f += a
            cat_o += b
            f = f if ok else 0.0
            o = o if ok else 0.0
            e = f - o
            se += e
            sa += abs(e)
            sq += e * e
            sf += f
            so += o
            sff += f * f
            soo += o * o
            sfo += f * o
        run = 0
        for j in range(nx):
            run += row[j]
            image[i + 1, j + 1] = image[i, j + 1] + run
        extent[i, 0], extent[i, 1] = first, stop
    cont[0] = n
    cont[1] = se
    cont[2] = sa
    cont[3] = sq
    cont[4] = sf
    cont[5] = so
    cont[6] = sff
    cont[7] = soo
    cont[8] = sfo
    return sum_f, both, sum_o, n, cat_both, cat_f, cat_o


@numba.njit(cache=True, nogil=True)
def _at_or_above(thresholds, strict):  # pragma: no cover - compiled
    """Thresholds ``u`` with ``x >= u`` exactly when ``x > t`` (``strict``), else ``x >= t``.

    The next float64 above ``t``: no float64 (nor float32) lies between the two.
    """
    out = thresholds.copy()
    if strict:
        for k in range(out.size):
            out[k] = np.nextafter(out[k], np.inf)
    return out


@numba.njit(cache=True, nogil=True)
def _fss_scales(
    image, extent, counts, sizes, nt, narrow, mask, width, cols, acc, out
):  # pragma: no cover - compiled
    """The FSS sums of ``nt`` thresholds at every scale from one integral image into ``out``.

    ``out`` ``(nt, n_sizes, 3)``; ``counts`` are the whole field's packed
    counts (the scale of one pixel), see :func:`fss_sums`.
    """
    for s in range(sizes.size):
        size = sizes[s]
        acc[:] = 0
        if size == 1:  # the fractions are the events: the whole field's counts
            for t in range(nt):
                acc[t, 0] = _unpack(counts[0], t, width)
                acc[t, 1] = _unpack(counts[1], t, width)
                acc[t, 2] = _unpack(counts[2], t, width)
        else:
            _window_products(image, extent, size, narrow, mask, cols, acc)
        norm = float(size) ** 4
        for t in range(nt):
            out[t, s, 0] = acc[t, 0] / norm
            out[t, s, 1] = acc[t, 1] / norm
            out[t, s, 2] = acc[t, 2] / norm


@numba.njit(cache=True, nogil=True)
def _moments_row(f_row, o_row, out):  # pragma: no cover - compiled
    """The five moments ``f, o, f*f, o*o, f*o`` of a row and its validity (0 where missing)."""
    for j in range(f_row.size):
        f = np.float64(f_row[j])
        o = np.float64(o_row[j])
        if math.isfinite(f) and math.isfinite(o):
            out[0, j] = f
            out[1, j] = o
            out[2, j] = f * f
            out[3, j] = o * o
            out[4, j] = f * o
            out[5, j] = 1.0
        else:
            for m in range(6):
                out[m, j] = 0.0


@numba.njit(cache=True, nogil=True)
def _filter_rows(f, o, i, weights, uniform, rows, cols):  # pragma: no cover - compiled
    """Vertical window sums of the moments for output row ``i`` into ``cols`` ``(6, nx)``.

    ``rows`` ``(k, 6, nx)`` is a ring of the moment rows; for a uniform
    window ``cols`` is updated from the previous row (add the new row,
    subtract the old one), else recomputed as a weighted sum.
    """
    k = weights.size
    nx = f.shape[1]
    if uniform and i > 0:
        old = rows[(i - 1) % k]
        for m in range(6):
            for j in range(nx):
                cols[m, j] -= old[m, j]
        _moments_row(f[i + k - 1], o[i + k - 1], rows[(i + k - 1) % k])
        new = rows[(i + k - 1) % k]
        for m in range(6):
            for j in range(nx):
                cols[m, j] += new[m, j]
        return
    if i == 0:
        for r in range(k):
            _moments_row(f[r], o[r], rows[r])
    else:
        _moments_row(f[i + k - 1], o[i + k - 1], rows[(i + k - 1) % k])
    for m in range(6):
        weighted = not uniform and m < 5  # validity (m = 5) is always counted
        cols[m] = 0.0
        for r in range(k):
            w = weights[r] if weighted else 1.0
            row = rows[(i + r) % k, m]
            for j in range(nx):
                cols[m, j] += w * row[j]


@numba.njit(cache=True, nogil=True)
def _ssim_row(cols, weights, uniform, win):  # pragma: no cover - compiled
    """Horizontal window sums of ``cols`` into ``win`` ``(6, nx - k + 1)``.

    Row 5 (validity) is a plain count, whatever the window.
    """
    k = weights.size
    n_out = cols.shape[1] - k + 1
    for m in range(6):
        if uniform or m == 5:
            acc = 0.0
            for r in range(k):
                acc += cols[m, r]
            win[m, 0] = acc
            for j in range(1, n_out):
                acc += cols[m, j + k - 1] - cols[m, j - 1]
                win[m, j] = acc
        else:
            win[m] = 0.0
            for r in range(k):
                w = weights[r]
                for j in range(n_out):
                    win[m, j] += w * cols[m, j + r]


@numba.njit(cache=True, nogil=True)
def ssim_sums(
    fc, obs, data_range, weights, uniform, sample_covariance, k1, k2
):  # pragma: no cover - compiled
    """Sums of the SSIM and contrast-structure maps and their number, shape ``(n, 3)``.

    Per pair ``(sum SSIM, sum CS, count)`` over the window positions that lie
    fully inside the field and touch no pixel missing in either field.
    ``weights`` is the normalised 1-D window (the 2-D window is its outer
    product; ``uniform``: all weights equal), ``data_range`` one value per
    pair.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((1, 9, 9))
    >>> ssim_sums(a, a, np.array([1.0]), np.full(3, 1 / 3), True, True, 0.01, 0.03)[0].tolist()
    [49.0, 49.0, 49.0]
    """
    n_pairs, ny, nx = fc.shape
    k = weights.size
    ny_out, nx_out = ny - k + 1, nx - k + 1
    scale = weights[0] * weights[0] if uniform else 1.0  # uniform: box sums, scaled once
    full = float(k * k)
    norm = full / (full - 1.0) if sample_covariance else 1.0
    out = np.zeros((n_pairs, 3))
    rows = np.zeros((k, 6, nx))
    cols = np.zeros((6, nx))
    win = np.zeros((6, nx_out))
    for p in range(n_pairs):
        c1 = (k1 * data_range[p]) ** 2
        c2 = (k2 * data_range[p]) ** 2
        s_sum = 0.0
        cs_sum = 0.0
        count = 0.0
        for i in range(ny_out):
            _filter_rows(fc[p], obs[p], i, weights, uniform, rows, cols)
            _ssim_row(cols, weights, uniform, win)
            for j in range(nx_out):
                if win[5, j] < full - 0.5:  # the window touches a missing pixel
                    continue
                mu_f = win[0, j] * scale
                mu_o = win[1, j] * scale
                var_f = (win[2, j] * scale - mu_f * mu_f) * norm
                var_o = (win[3, j] * scale - mu_o * mu_o) * norm
                cov = (win[4, j] * scale - mu_f * mu_o) * norm
                cs = (2.0 * cov + c2) / (var_f + var_o + c2)
                lum = (2.0 * mu_f * mu_o + c1) / (mu_f * mu_f + mu_o * mu_o + c1)
                s_sum += lum * cs
                cs_sum += cs
                count += 1.0
        out[p, 0] = s_sum
        out[p, 1] = cs_sum
        out[p, 2] = count
    return out
