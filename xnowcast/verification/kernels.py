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

__all__ = ["contingency_counts", "continuous_sums", "fss_sums", "ssim_sums"]


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
def contingency_counts(fc, obs, thresholds, strict):  # pragma: no cover - compiled
    """Hits, misses, false alarms and correct negatives, shape ``(n, n_thresholds, 4)``.

    An event is ``value > threshold`` when ``strict``, else ``value >=
    threshold``; ``thresholds`` must be sorted ascending. Pixels missing in
    either field are not counted. One pass per pair finds each pixel's event
    level (thresholds reached) in both fields; per threshold, counts of the
    levels above it (forecast, observation, both) make the table.

    Examples
    --------
    >>> import numpy as np
    >>> fc, obs = np.array([[[1.0, 3.0]]]), np.array([[[2.0, 5.0]]])
    >>> contingency_counts(fc, obs, np.array([1.0]), True)[0].tolist()
    [[1, 1, 0, 0]]
    """
    n_pairs, ny, nx = fc.shape
    n_thr = thresholds.size
    out = np.zeros((n_pairs, n_thr, 4), dtype=np.int64)
    lev_f = np.empty((ny, nx), dtype=np.int16)
    lev_o = np.empty((ny, nx), dtype=np.int16)
    for k in range(n_pairs):
        _levels(fc[k], obs[k], thresholds, strict, lev_f, lev_o, -1)
        n = _level_count(lev_f, lev_f, -1, False)  # valid pixels: level >= 0
        for t in range(n_thr):  # event at threshold t: level > t
            above_f = _level_count(lev_f, lev_f, t, False)
            above_o = _level_count(lev_o, lev_o, t, False)
            hits = _level_count(lev_f, lev_o, t, True)
            out[k, t, 0] = hits
            out[k, t, 1] = above_o - hits
            out[k, t, 2] = above_f - hits
            out[k, t, 3] = n - above_f - above_o + hits
    return out


@numba.njit(cache=True, nogil=True)
def _level_count(lev_a, lev_b, t, both):  # pragma: no cover - compiled
    """Pixels with ``lev_a > t``, or with ``min(lev_a, lev_b) > t`` when ``both``."""
    ny, nx = lev_a.shape
    count = 0
    for i in range(ny):
        a_row, b_row = lev_a[i], lev_b[i]
        if both:
            for j in range(nx):
                count += min(a_row[j], b_row[j]) > t
        else:
            for j in range(nx):
                count += a_row[j] > t
    return count


@numba.njit(cache=True, nogil=True)
def _levels(fc, obs, thresholds, strict, lev_f, lev_o, missing):  # pragma: no cover - compiled
    """Per pixel, the number of thresholds each field reaches; ``missing`` where either is.

    With sorted thresholds, ``level > t`` is the event at threshold ``t``.
    Written without branches (row by row, threshold by threshold), so that
    the loops vectorise.
    """
    ny, nx = fc.shape
    for i in range(ny):
        fr, orow, lf, lo = fc[i], obs[i], lev_f[i], lev_o[i]
        lf[:] = 0
        lo[:] = 0
        for t in range(thresholds.size):
            thr = thresholds[t]
            if strict:
                for j in range(nx):
                    lf[j] += fr[j] > thr
                    lo[j] += orow[j] > thr
            else:
                for j in range(nx):
                    lf[j] += fr[j] >= thr
                    lo[j] += orow[j] >= thr
        for j in range(nx):  # x - x is 0 for finite x, NaN for NaN and infinity
            ok = ((fr[j] - fr[j]) == 0) & ((orow[j] - orow[j]) == 0)
            lf[j] = lf[j] * ok + missing * (1 - ok)
            lo[j] = lo[j] * ok + missing * (1 - ok)


@numba.njit(cache=True, nogil=True)
def _integrals(lev_f, lev_o, t, tf, to):  # pragma: no cover - compiled
    """Integral images of ``lev > t`` of both fields, int32 ``(ny + 1, nx + 1)``."""
    ny, nx = lev_f.shape
    for i in range(ny):
        run_f = 0
        run_o = 0
        for j in range(nx):
            run_f += lev_f[i, j] > t
            run_o += lev_o[i, j] > t
            tf[i + 1, j + 1] = tf[i, j + 1] + run_f
            to[i + 1, j + 1] = to[i, j + 1] + run_o


@numba.njit(cache=True, nogil=True)
def _event_counts(lev_f, lev_o, t):  # pragma: no cover - compiled
    """Events in the forecast, in both fields and in the observation (scale 1)."""
    ny, nx = lev_f.shape
    nf = 0
    nb = 0
    no = 0
    for i in range(ny):
        for j in range(nx):
            ef = lev_f[i, j] > t
            eo = lev_o[i, j] > t
            nf += ef
            nb += ef and eo
            no += eo
    return nf, nb, no


@numba.njit(cache=True, nogil=True)
def _window_bounds(n, size):  # pragma: no cover - compiled
    """Integral-image bounds of the clipped windows (``uniform_filter``'s position)."""
    lo = np.empty(n, dtype=np.int64)
    hi = np.empty(n, dtype=np.int64)
    for i in range(n):
        lo[i] = max(i - size // 2, 0)
        hi[i] = min(i + (size - 1) // 2 + 1, n)
    return lo, hi


@numba.njit(cache=True, nogil=True, fastmath=True)
def _interior_products(f_lo, f_hi, o_lo, o_hi):  # pragma: no cover - compiled
    """Products of the window counts ``hi[j] - lo[j]`` (views of the column sums).

    In float64, exact for integers below 2**53 (``nx * size**4`` is far
    below), so reordering the sums (``fastmath``, which lets the loop
    vectorise) changes nothing. Views rather than offsets: indices that
    cannot be negative keep the loop free of bounds wrap-around.
    """
    rff = 0.0
    rfo = 0.0
    roo = 0.0
    for j in range(f_lo.size):
        wf = np.float64(f_hi[j] - f_lo[j])
        wo = np.float64(o_hi[j] - o_lo[j])
        rff += wf * wf
        rfo += wf * wo
        roo += wo * wo
    return np.int64(rff), np.int64(rfo), np.int64(roo)


@numba.njit(cache=True, nogil=True)
def _border_products(cf, co, lo, hi, j0, j1):  # pragma: no cover - compiled
    """Products of the window counts ``c[hi[j]] - c[lo[j]]`` of columns ``j0 <= j < j1`` (int64)."""
    rff = 0
    rfo = 0
    roo = 0
    for j in range(j0, j1):
        wf = np.int64(cf[hi[j]] - cf[lo[j]])
        wo = np.int64(co[hi[j]] - co[lo[j]])
        rff += wf * wf
        rfo += wf * wo
        roo += wo * wo
    return rff, rfo, roo


@numba.njit(cache=True, nogil=True)
def _window_products(tf, to, size, cf, co):  # pragma: no cover - compiled
    """``sum(cf**2), sum(cf*co), sum(co**2)`` of the ``size x size`` window counts (int64).

    Per output row, the column sums of the window's rows are one difference
    of two integral-image rows; the window counts are differences of those.
    """
    ny, nx = tf.shape[0] - 1, tf.shape[1] - 1
    ylo, yhi = _window_bounds(ny, size)
    xlo, xhi = _window_bounds(nx, size)
    left = min(size // 2, nx)  # columns whose window is clipped on the left
    right = max(nx - (size - 1) // 2, left)  # and on the right from here on
    ff = 0
    fo = 0
    oo = 0
    for i in range(ny):
        a, b = ylo[i], yhi[i]
        if tf[b, nx] == tf[a, nx] and to[b, nx] == to[a, nx]:
            continue  # no event in the window's rows: every count is 0
        for j in range(nx + 1):
            cf[j] = tf[b, j] - tf[a, j]
            co[j] = to[b, j] - to[a, j]
        lff, lfo, loo = _border_products(cf, co, xlo, xhi, 0, left)
        iff, ifo, ioo = 0, 0, 0
        if right > left:  # interior: the window of column left + j is [c0 + j, c1 + j)
            c0, c1, n = xlo[left], xhi[left], right - left
            iff, ifo, ioo = _interior_products(
                cf[c0 : c0 + n], cf[c1 : c1 + n], co[c0 : c0 + n], co[c1 : c1 + n]
            )
        rff, rfo, roo = _border_products(cf, co, xlo, xhi, right, nx)
        ff += lff + iff + rff
        fo += lfo + ifo + rfo
        oo += loo + ioo + roo
    return ff, fo, oo


@numba.njit(cache=True, nogil=True)
def fss_sums(fc, obs, thresholds, sizes, strict):  # pragma: no cover - compiled
    """The FSS sums ``sum(Pf**2), sum(Pf*Po), sum(Po**2)``, shape ``(n, n_thr, n_sizes, 3)``.

    ``thresholds`` must be sorted ascending. A pixel missing in either field
    is a non-event in both. The fractions are window counts over ``size**2``,
    zero outside the field (the window of :func:`scipy.ndimage.uniform_filter`).

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.zeros((1, 4, 4)); obs[0, 1, 1] = 2.0
    >>> fss_sums(obs, obs, np.array([1.0]), np.array([1, 3]), False)[0, 0].tolist()
    [[1.0, 1.0, 1.0], [0.1111111111111111, 0.1111111111111111, 0.1111111111111111]]
    """
    n_pairs, ny, nx = fc.shape
    n_thr, n_sizes = thresholds.size, sizes.size
    out = np.zeros((n_pairs, n_thr, n_sizes, 3))
    lev_f = np.empty((ny, nx), dtype=np.int16)
    lev_o = np.empty((ny, nx), dtype=np.int16)
    tf = np.zeros((ny + 1, nx + 1), dtype=np.int32)
    to = np.zeros((ny + 1, nx + 1), dtype=np.int32)
    cf = np.empty(nx + 1, dtype=np.int32)
    co = np.empty(nx + 1, dtype=np.int32)
    for k in range(n_pairs):
        _levels(fc[k], obs[k], thresholds, strict, lev_f, lev_o, 0)
        for t in range(n_thr):
            if sizes.max() > 1:
                _integrals(lev_f, lev_o, t, tf, to)
            for s in range(n_sizes):
                size = sizes[s]
                if size == 1:
                    ff, fo, oo = _event_counts(lev_f, lev_o, t)
                else:
                    ff, fo, oo = _window_products(tf, to, size, cf, co)
                norm = float(size) ** 4
                out[k, t, s, 0] = ff / norm
                out[k, t, s, 1] = fo / norm
                out[k, t, s, 2] = oo / norm
    return out


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
