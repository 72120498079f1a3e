"""Compiled lookup-table kernel: a piecewise-linear mapping applied to every pixel.

Used by :mod:`xnowcast.probmatching` to carry a quantile mapping to a whole field
in one compiled pass (``numba``, compiled once with ``cache=True``).

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

__all__ = ["lookup"]


@numba.njit(cache=True, nogil=True)
def lookup(
    values: np.ndarray, lo: np.float32, scale: np.float32, table: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """``out[i] = table`` interpolated linearly at ``(values[i] - lo) * scale``, clipped to it.

    ``values`` and ``out`` are 1-D float32; ``table`` holds the mapping on an
    even grid starting at ``lo`` with ``scale`` points per unit.
    """
    last = table.shape[0] - 1
    for i in range(values.shape[0]):
        pos = (values[i] - lo) * scale
        if pos <= 0:
            out[i] = table[0]
        elif pos >= last:
            out[i] = table[last]
        else:
            j = int(pos)
            w = pos - j
            out[i] = table[j] + w * (table[j + 1] - table[j])
