"""Compiled kernels of probability matching (``numba``, compiled once with ``cache=True``).

Used by :mod:`xnowcast.probmatching`:

* :func:`lookup`: a piecewise-linear mapping (a quantile mapping as a lookup
  table) applied to every pixel in one pass;
* :func:`sorted_sample`: the sorted strided sample of a field, with its
  minimum and maximum, from which its quantiles are read: one pass over the
  field and a radix sort of the sample (several times faster than
  :func:`numpy.sort`, and the same values).

Examples
--------
>>> import numpy as np
>>> from xnowcast.lookup import lookup
>>> out = np.empty(3, "float32")
>>> table = np.array([0.0, 10.0, 20.0], "float32")   # values 0, 1, 2 -> 0, 10, 20
>>> lookup(np.array([-1.0, 0.5, 7.0], "float32"), np.float32(0), np.float32(1), table, out)
>>> out.tolist()
[0.0, 5.0, 20.0]
"""

from __future__ import annotations

import numpy as np

from xnowcast.optional import import_optional

numba = import_optional("numba", "probability matching")

__all__ = ["lookup", "sorted_sample"]


@numba.njit(cache=True, nogil=True)
def lookup(
    values: np.ndarray, lo: np.float32, scale: np.float32, table: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """``out[i] = table`` interpolated linearly at ``(values[i] - lo) * scale``, clipped to it.

    ``values`` and ``out`` are 1-D float32; ``table`` holds the mapping on an
    even grid starting at ``lo`` with ``scale`` points per unit. Branch-free
    float32 arithmetic: the position is clipped to the table, whose last value
    is repeated once so that the top end needs no case of its own.
    """
    last = table.shape[0] - 1
    padded = np.empty(last + 2, np.float32)
    padded[: last + 1] = table
    padded[last + 1] = table[last]
    zero, top = np.float32(0.0), np.float32(last)
    for i in range(values.shape[0]):
        pos = min(max((values[i] - lo) * scale, zero), top)
        j = np.int64(pos)
        w = pos - np.float32(j)
        out[i] = padded[j] + w * (padded[j + 1] - padded[j])


_SIGN = np.uint32(0x80000000)


@numba.njit(cache=True, nogil=True)
def _key(bits):  # pragma: no cover - compiled
    """The float32 ``bits`` as an unsigned key in the order of the floats."""
    return ~bits if bits & _SIGN else bits | _SIGN


@numba.njit(cache=True, nogil=True)
def sorted_sample(
    values: np.ndarray, stride: int, lo: float, hi: float
) -> np.ndarray:  # pragma: no cover
    """``sort(concatenate([values[::stride], [lo, hi]]))`` of a 1-D float32 array.

    ``lo`` and ``hi`` are the field's minimum and maximum (from numpy's
    vectorised reductions); the sample is sorted by a least-significant-digit
    radix sort on the float bits (three passes of 11, 11 and 10 bits): the
    result equals :func:`numpy.sort` of the same sample. No NaN: its order
    would differ from numpy's.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([3.0, -1.0, 2.0, 0.5, -0.0], "float32")
    >>> sorted_sample(x, 2, np.float32(-1.0), np.float32(3.0)).tolist()
    [-1.0, -0.0, 2.0, 3.0, 3.0]
    """
    m = (values.shape[0] + stride - 1) // stride
    size = m + 2
    bits = values.view(np.uint32)
    ends = np.array([lo, hi], np.float32).view(np.uint32)
    keys = np.empty(size, np.uint32)
    counts = np.zeros((3, 2048), np.int64)
    for i in range(size):
        key = _key(bits[i * stride] if i < m else ends[i - m])
        keys[i] = key
        counts[0, key & np.uint32(2047)] += 1
        counts[1, (key >> np.uint32(11)) & np.uint32(2047)] += 1
        counts[2, key >> np.uint32(22)] += 1
    spare = np.empty_like(keys)
    for digit in range(3):
        total = 0
        for d in range(2048):
            c = counts[digit, d]
            counts[digit, d] = total
            total += c
        src, dst = (keys, spare) if digit != 1 else (spare, keys)
        shift = np.uint32(11 * digit)
        for i in range(size):
            key = src[i]
            d = (key >> shift) & np.uint32(2047)
            dst[counts[digit, d]] = key
            counts[digit, d] += 1
    out = np.empty(size, np.uint32)
    for i in range(size):
        key = spare[i]
        out[i] = key ^ _SIGN if key & _SIGN else ~key
    return out.view(np.float32)
