"""Windows never span a gap and never load the cube."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest

from xnowcast.datasets import synthetic_radar
from xnowcast.windows import SEQUENCE_ID, select_init_times


def test_gap_free_windows(cube):
    w = cube.nowcast.windows(n_in=12, n_out=6, stride=1)
    assert len(w) == 30 - 18 + 1 and w.n_skipped == 0 and w.n_gaps == 0
    inputs, targets = w[0]
    assert inputs.sizes["time"] == 12 and targets.sizes["time"] == 6
    assert targets.time.values[0] - inputs.time.values[-1] == np.timedelta64(5, "m")
    # Windows are views of the cube, not copies with other values.
    np.testing.assert_array_equal(w[3].inputs.values, cube.isel(time=slice(3, 15)).values)


def test_windows_never_span_a_gap(cube):
    gappy = cube.drop_isel(time=[14])  # one missing frame in the middle
    w = gappy.nowcast.windows(n_in=4, n_out=2)
    assert w.n_gaps == 1
    for win in w:
        t = np.concatenate([win.inputs.time.values, win.targets.time.values])
        assert (np.diff(t) == np.timedelta64(5, "m")).all()
    # 14 frames before the gap give 9 windows, 15 after give 10.
    assert len(w) == 9 + 10
    assert w.n_skipped == len(range(29 - 6 + 1)) - len(w) == 5
    assert "5 skipped at 1 gap(s)" in repr(w)


def test_stride_counts_within_each_run(cube):
    w = cube.drop_isel(time=[14]).nowcast.windows(n_in=4, n_out=2, stride=5)
    assert list(w.starts) == [0, 5, 14, 19]


def test_sequence_id_coordinate_breaks_windows(cube):
    seq = np.repeat([0, 1], 15)
    w = cube.assign_coords({SEQUENCE_ID: ("time", seq)}).nowcast.windows(n_in=4, n_out=2)
    assert w.n_gaps == 1 and len(w) == 2 * (15 - 6 + 1)


def test_windows_do_not_load_the_cube(counting_scheduler):
    lazy = synthetic_radar(n_times=30, size=32, chunks={"time": 5})
    counter = counting_scheduler
    with dask.config.set(scheduler=counter):
        w = lazy.nowcast.windows(n_in=12, n_out=12)
        pair = w[2]
        assert pair.inputs.chunks is not None
    assert counter.calls == 0


def test_bad_window_arguments(cube):
    with pytest.raises(ValueError, match="n_in must be a positive integer"):
        cube.nowcast.windows(n_in=0)
    with pytest.raises(TypeError, match="stride must be a positive integer"):
        cube.nowcast.windows(stride=1.5)
    with pytest.raises(ValueError, match="n_out must be a non-negative"):
        cube.nowcast.windows(n_out=-1)
    with pytest.raises(ValueError, match="30 frame.*40 are needed"):
        cube.nowcast.windows(n_in=20, n_out=20)


def test_select_init_times(cube):
    w = cube.nowcast.windows(n_in=12, n_out=0)
    assert list(select_init_times(w, "latest")) == [len(w) - 1]
    assert len(select_init_times(w, "all")) == 19
    t = cube.time.values
    assert list(select_init_times(w, slice(t[12], t[14]))) == [1, 2, 3]
    assert list(select_init_times(w, [t[11], t[20]])) == [0, 9]
    # every=30min keeps init times at :00 and :30 only.
    picked = w.init_times[select_init_times(w, "all", every="30min")]
    assert len(picked) > 0 and all(p.minute in (0, 30) for p in picked)


def test_select_init_times_errors(cube):
    w = cube.nowcast.windows(n_in=12, n_out=0)
    t = cube.time.values
    with pytest.raises(ValueError, match="span a time gap or the start.*usable init times"):
        select_init_times(w, t[3])
    with pytest.raises(ValueError, match="not a frame of the cube"):
        select_init_times(w, "1999-01-01")
    with pytest.raises(ValueError, match="no init time selected"):
        select_init_times(w, slice("1999-01-01", "1999-01-02"))
    gappy = cube.drop_isel(time=[29]).isel(time=slice(None, None))
    gappy = gappy.drop_isel(time=[25])
    w2 = gappy.nowcast.windows(n_in=12, n_out=0)
    with pytest.raises(ValueError, match="latest frame.*span a time gap"):
        select_init_times(w2, "latest")


def test_bad_every_names_the_argument(cube):
    w = cube.nowcast.windows(n_in=12, n_out=0)
    with pytest.raises(ValueError, match="every must be a time interval such as '30min'"):
        select_init_times(w, "all", every="bogus")
    with pytest.raises(ValueError, match="every must be a positive interval, got 'nan'"):
        select_init_times(w, "all", every="nan")
    with pytest.raises(ValueError, match="every must be a positive interval"):
        select_init_times(w, "all", every="-5min")


def test_bad_init_time_selections_are_clear(cube):
    w = cube.nowcast.windows(n_in=12, n_out=0)
    t = cube.time.values
    with pytest.raises(ValueError, match="slice bound: expected times.*'abc'"):
        select_init_times(w, slice("abc", None))
    with pytest.raises(TypeError, match="slice bound: expected times.*by position"):
        select_init_times(w, slice(0, 5))
    with pytest.raises(TypeError, match="timezone-aware"):
        select_init_times(w, slice(pd.Timestamp(t[12]).tz_localize("UTC"), None))
    with pytest.raises(TypeError, match="timezone-aware"):
        select_init_times(w, pd.Timestamp(t[-1]).tz_localize("UTC"))
    # A number is not read as nanoseconds after 1970 (nor None as NaT).
    with pytest.raises(TypeError, match="by position use cube.time.values"):
        select_init_times(w, 5)
    with pytest.raises(TypeError, match="expected times"):
        select_init_times(w, None)


@pytest.mark.parametrize("every", [30, "30"])
def test_every_without_a_unit_is_refused(cube, every):
    """Before, '30' was 30 ns: no init time was thinned away, silently."""
    w = cube.nowcast.windows(n_in=12, n_out=0)
    with pytest.raises(ValueError, match="every must be a time interval with a unit"):
        select_init_times(w, "all", every=every)


def test_too_short_cube_for_windows_names_n_in_and_n_out(cube):
    with pytest.raises(ValueError, match=r"n_in=20 input \+ n_out=20 target.*smaller n_in/n_out"):
        cube.nowcast.windows(n_in=20, n_out=20)
