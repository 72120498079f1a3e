"""Tests of the compiled lookup-table pass of probability matching (xnowcast.lookup)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from xnowcast.lookup import lookup
from xnowcast.probmatching import lookup_table


def plain_lookup(values, lo, scale, table):
    """The same mapping written with numpy: interpolation on the table's grid, clipped
    (the position on the grid in float32, as the kernel finds it)."""
    pos = ((values - lo) * scale).astype(np.float64)
    return np.interp(pos, np.arange(len(table)), table.astype(np.float64))


def test_lookup_equals_numpy_interpolation_within_float32_rounding():
    rng = np.random.default_rng(0)
    knots = np.sort(rng.normal(0.0, 10.0, 50))
    targets = np.sort(rng.gamma(0.5, 5.0, 50)) - 15.0
    lo, scale, table = lookup_table(knots, targets)
    values = np.concatenate(
        [rng.normal(0.0, 12.0, 20_000), [-1e30, 1e30, knots[0], knots[-1]]]
    ).astype(np.float32)
    out = np.empty_like(values)
    lookup(values, lo, scale, table, out)
    expected = plain_lookup(values, lo, scale, table)
    np.testing.assert_allclose(out, expected, rtol=2e-6, atol=2e-6)
    # beyond the knots: exactly the end values of the table
    assert out[-4] == table[0] and out[-3] == table[-1]
    assert (out[values <= knots[0]] == table[0]).all()
    assert (out[values >= knots[-1]] == table[-1]).all()


def test_lookup_is_monotonic_and_exact_on_the_grid():
    table = np.array([0.0, 1.0, 4.0, 9.0, 16.0], np.float32)
    values = np.arange(-2.0, 7.0, 0.25, dtype=np.float32)
    out = np.empty_like(values)
    lookup(values, np.float32(0.0), np.float32(1.0), table, out)
    assert (np.diff(out) >= 0).all()
    on_grid = (values >= 0) & (values <= 4) & (values == np.round(values))
    np.testing.assert_array_equal(out[on_grid], table[values[on_grid].astype(int)])
