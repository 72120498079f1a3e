"""The numba kernels of the verification statistics, against brute-force numpy and scipy.

Each kernel is checked on fields with missing pixels (NaN and infinity), at
edges (windows larger than the field, even window sizes, thin fields), with
values equal to thresholds under both event rules, on float32 and float64
inputs; and the frame reading shared by the tasks of ``verify``.
"""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest
import xarray as xr

import xnowcast
from xnowcast.verification import image, kernels, verify
from xnowcast.verification.frames import ForecastChunk, ObservedFrames

ndimage = pytest.importorskip("scipy.ndimage")
skimage_metrics = pytest.importorskip("skimage.metrics")


def pairs(n=3, shape=(23, 31), seed=0, gaps=True):
    """``(n, y, x)`` rain-like pairs with values on a 0.5 grid (ties with thresholds)."""
    rng = np.random.default_rng(seed)
    obs = np.round(rng.gamma(0.5, 3.0, (n, *shape)) * 2) / 2
    fc = np.round(rng.gamma(0.5, 3.0, (n, *shape)) * 2) / 2
    if gaps:
        fc[rng.random(fc.shape) < 0.05] = np.nan
        obs[rng.random(obs.shape) < 0.05] = np.nan
        obs[0, :4, :6] = np.inf
        fc[-1, -3:, :] = -np.inf
    return fc, obs


def brute_table(f, o, thr, strict):
    valid = np.isfinite(f) & np.isfinite(o)
    ef = (f > thr if strict else f >= thr) & valid
    eo = (o > thr if strict else o >= thr) & valid
    return [
        np.sum(ef & eo),
        np.sum(~ef & eo),
        np.sum(ef & ~eo),
        np.sum(valid & ~ef & ~eo),
    ]


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contingency_counts_equal_brute_force(strict, dtype):
    fc, obs = pairs()
    fc = fc.astype(dtype)
    thr = np.array([0.0, 0.5, 1.0, 3.5])
    got = kernels.contingency_counts(fc, obs, thr, strict)
    for k in range(len(fc)):
        for t, value in enumerate(thr):
            assert got[k, t].tolist() == brute_table(fc[k], obs[k], value, strict), (k, value)


def test_contingency_table_keeps_the_threshold_order():
    from xnowcast.verification import categorical

    fc, obs = pairs()
    given = [3.5, 0.5, 1.0]
    out = categorical.contingency_table(fc, obs, given)
    for t, value in enumerate(given):
        assert out[1, t].tolist() == brute_table(fc[1], obs[1], value, True)


def test_continuous_sums_equal_numpy_over_valid_pixels():
    fc, obs = pairs()
    got = kernels.continuous_sums(fc.astype(np.float32), obs)
    for k in range(len(fc)):
        f, o = fc[k].astype(np.float32).astype(np.float64), obs[k]
        ok = np.isfinite(f) & np.isfinite(o)
        f, o = f[ok], o[ok]
        e = f - o
        want = [ok.sum(), e.sum(), np.abs(e).sum(), (e * e).sum(), f.sum(), o.sum()]
        want += [(f * f).sum(), (o * o).sum(), (f * o).sum()]
        np.testing.assert_allclose(got[k], want, rtol=1e-12, atol=1e-9)


def brute_fss(f, o, thr, size, strict):
    valid = np.isfinite(f) & np.isfinite(o)
    ef = ((f > thr if strict else f >= thr) & valid).astype(float)
    eo = ((o > thr if strict else o >= thr) & valid).astype(float)
    pf = ndimage.uniform_filter(ef, size, mode="constant")
    po = ndimage.uniform_filter(eo, size, mode="constant")
    return [(pf * pf).sum(), (pf * po).sum(), (po * po).sum()]


@pytest.mark.parametrize("shape", [(23, 31), (5, 40), (40, 3)])
@pytest.mark.parametrize("strict", [True, False])
def test_fss_sums_equal_scipy_uniform_filter(shape, strict):
    """Odd and even windows, windows larger than the field, gaps, ties."""
    fc, obs = pairs(n=2, shape=shape)
    thr = np.array([0.5, 1.0, 3.5])
    sizes = np.array([1, 2, 3, 4, 7, 8, 16, 45, 90])
    got = kernels.fss_sums(fc.astype(np.float32), obs, thr, sizes, strict)
    for k in range(len(fc)):
        for t, value in enumerate(thr):
            for s, size in enumerate(sizes):
                want = brute_fss(fc[k].astype(np.float32), obs[k], value, size, strict)
                np.testing.assert_allclose(got[k, t, s], want, rtol=1e-12, atol=1e-12)


def test_count_width_fits_every_count_of_the_field():
    assert kernels.count_width(512, 512) == (19, 3)  # 262144 = 2**18 events at most
    assert kernels.count_width(1, 1) == (1, 63)
    width, per = kernels.count_width(4000, 4000)
    assert 2**width > 4000 * 4000 >= 2 ** (width - 1) and per * width <= 63


def brute_fss_sums(f, o, thr, size, strict):
    """The FSS sums from integer window counts (exact), as ``fss_sums`` returns them."""
    valid = np.isfinite(f) & np.isfinite(o)
    lo = [np.clip(np.arange(n) - size // 2, 0, n) for n in f.shape]
    hi = [np.clip(np.arange(n) + (size - 1) // 2 + 1, 0, n) for n in f.shape]
    out = []
    for field in (f, o):
        event = ((field > thr if strict else field >= thr) & valid).astype(np.int64)
        t = np.pad(event.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        ys, xs = np.ix_(hi[0], hi[1]), np.ix_(lo[0], lo[1])
        out.append(t[ys] - t[lo[0]][:, hi[1]] - t[hi[0]][:, lo[1]] + t[xs])
    cf, co = out
    return [(cf * cf).sum() / size**4, (cf * co).sum() / size**4, (co * co).sum() / size**4]


@pytest.mark.parametrize("strict", [True, False])
def test_fss_sums_exact_when_the_packed_integral_image_wraps(strict):
    """Almost every pixel an event: the packed sums pass 2**63 and wrap.

    Windows up to 16 x 16 take 9 bits per count: the observation's count at
    the third threshold starts at bit 45, and 600 x 1024 events reach 2**64.
    Larger windows take fewer thresholds per pass.
    """
    rng = np.random.default_rng(3)
    fc = np.full((1, 600, 1024), 10.0)
    obs = np.where(rng.random(fc.shape) < 0.95, 10.0, 0.0)
    thr = np.array([0.5, 1.0, 2.0, 5.0])
    for sizes in ([1, 3, 16], [2, 33, 700]):
        got = kernels.fss_sums(fc.astype(np.float32), obs, thr, np.array(sizes), strict)
        for t, value in enumerate(thr):
            for s, size in enumerate(sizes):
                want = brute_fss_sums(fc[0], obs[0], value, size, strict)
                assert got[0, t, s].tolist() == want, (value, size)


def test_fss_stats_keep_the_threshold_order_and_the_batch_shape():
    from xnowcast.verification import spatial

    fc, obs = pairs(n=4)
    fc, obs = fc.reshape(2, 2, *fc.shape[1:]), obs.reshape(2, 2, *obs.shape[1:])
    out = spatial.fss_stats(fc, obs, [3.5, 0.5], [5, 1])
    assert out.shape == (2, 2, 2, 2, 3)
    want = brute_fss(fc[1, 0], obs[1, 0], 3.5, 5, strict=False)
    np.testing.assert_allclose(out[1, 0, 0, 0], want, rtol=1e-12)


def skimage_map_mean(f, o, win, gaussian, data_range):
    """skimage's SSIM map averaged over the windows inside the field without a gap."""
    valid = np.isfinite(f) & np.isfinite(o)
    kw = (
        {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False} if gaussian else {}
    )
    _, smap = skimage_metrics.structural_similarity(
        np.where(valid, f, 0.0),
        np.where(valid, o, 0.0),
        win_size=win,
        data_range=data_range,
        full=True,
        **kw,
    )
    pad = win // 2
    inside = ndimage.uniform_filter(valid.astype(float), win, mode="constant") > 1 - 1e-9
    keep = np.zeros_like(valid)
    keep[pad:-pad, pad:-pad] = inside[pad:-pad, pad:-pad]
    return smap[keep].mean(), keep.sum()


@pytest.mark.parametrize("win, gaussian", [(3, False), (7, False), (11, True)])
def test_ssim_sums_equal_skimage_over_the_windows_without_gaps(win, gaussian):
    fc, obs = pairs(n=2, shape=(30, 37), gaps=False)
    obs[0, 3:6, 20:22] = np.nan  # a gap inside
    fc[1, :, -2:] = np.inf  # and one along the border
    fc[1, 25, 4] = np.nan
    w = image.window_weights(win, gaussian)
    got = kernels.ssim_sums(
        fc, obs, np.array([20.0, 20.0]), w, not gaussian, not gaussian, 0.01, 0.03
    )
    for k in range(len(fc)):
        want, count = skimage_map_mean(fc[k], obs[k], win, gaussian, 20.0)
        assert got[k, 2] == count > 0
        assert got[k, 0] / got[k, 2] == pytest.approx(want, abs=1e-9)


def test_ssim_sums_count_no_window_when_every_one_touches_a_gap():
    fc, obs = pairs(n=1, shape=(9, 9), gaps=False)
    obs[0, 4, 4] = np.nan  # in every 7 x 7 window of a 9 x 9 field
    got = kernels.ssim_sums(fc, obs, np.array([10.0]), np.full(7, 1 / 7), True, True, 0.01, 0.03)
    assert got[0].tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(image.ssim(fc, obs, data_range=10.0))


def test_observed_frames_read_each_frame_once_and_fill_missing_with_nan():
    cube = xnowcast.datasets.synthetic_radar(n_times=10, size=8).chunk({"time": 3})
    frames = ObservedFrames(cube, "time", capacity=6)
    first = frames.take(np.array([[2, 3, 4], [3, 4, 5]]))
    np.testing.assert_array_equal(first[1, 2], cube.values[5])
    assert frames.reads == 4  # frames 2 to 5
    frames.take(np.array([4, 5, 6, -1]))
    assert frames.reads == 5  # only frame 6 is new
    out = frames.take(np.array([-1, 9]))
    assert np.isnan(out[0]).all()
    np.testing.assert_array_equal(out[1], cube.values[9])
    assert len(frames._cache) <= 6  # bounded
    copy = pickle.loads(pickle.dumps(frames))  # another process: empty cache, same frames
    assert copy.reads == 0 and copy.capacity == 6
    np.testing.assert_array_equal(copy.take(np.array([7])), cube.values[[7]])


def test_forecast_chunk_reads_its_block_only():
    cube = xnowcast.datasets.synthetic_radar(n_times=6, size=8).chunk({"time": 2})
    graphs = ForecastChunk.split(cube.data)
    assert len(graphs) == 3
    chunk = ForecastChunk(graphs[(2, 0, 0)], (cube.data.name, 2, 0, 0), cube, {"time": slice(4, 6)})
    np.testing.assert_array_equal(chunk.read(), cube.values[4:6])


def test_verify_in_dask_threads_equals_one_thread_and_memory():
    """Kernels run in parallel dask threads (no GIL, shared frame cache): same scores."""
    cube = xnowcast.datasets.synthetic_radar(n_times=24, size=40, seed=3)
    fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=5)
    lazy = fc.chunk({"init_time": 1, "lead_time": 2})
    metrics = ["mae", "csi", "fss", "ssim"]
    kw = {"thresholds": [0.5, 2.0], "scales": [1, 4], "win_size": 3}
    eager = verify(fc, cube, metrics, **kw)
    with dask.config.set(scheduler="threads", num_workers=4):
        threaded = verify(lazy, cube.chunk({"time": 5}), metrics, **kw).compute()
    with dask.config.set(scheduler="sync"):
        single = verify(lazy, cube.chunk({"time": 5}), metrics, **kw).compute()
    xr.testing.assert_allclose(threaded, single, rtol=1e-12)
    xr.testing.assert_allclose(threaded, eager, rtol=1e-9)


def test_observed_frames_serve_the_cached_frames_without_copies():
    cube = xnowcast.datasets.synthetic_radar(n_times=8, size=8).chunk({"time": 1})
    frames = ObservedFrames(cube, "time")
    first = frames.frames(np.array([[1, 2], [2, -1]]))
    assert sorted(first) == [1, 2] and frames.reads == 2  # -1 (no frame) is left out
    again = frames.frames(np.array([2, 3]))
    assert again[2] is first[2]  # the cached frame itself, shared by the tasks
    assert frames.reads == 3
    np.testing.assert_array_equal(again[3], cube.values[3])


@pytest.mark.parametrize("pair_by_pair", [False, True])
def test_small_forecast_chunks_are_scored_in_groups_with_the_same_scores(pair_by_pair, monkeypatch):
    """Chunks of one lead time: one task per init time reads them one after another.

    Large fields are scored pair by pair against the cached frames (forced here), small ones a
    chunk at a time; valid times after the last observation have no frame (NaN scores).
    """
    from xnowcast.verification import api

    if pair_by_pair:
        monkeypatch.setattr(api, "_PAIR_CELLS", 0)
    cube = xnowcast.datasets.synthetic_radar(n_times=20, size=32, seed=5)
    fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=6)
    lazy = fc.chunk({"init_time": 1, "lead_time": 1})
    kw = {"thresholds": [0.5, 2.0], "scales": [1, 3]}
    scores = verify(lazy, cube.chunk({"time": 1}), ["mae", "csi", "fss"], **kw)
    assert scores["mae"].chunks[scores["mae"].dims.index("lead_time")] == (6,)
    with dask.config.set(scheduler="sync"):
        got = scores.compute()
    assert got["mae"].isnull().any() and got["mae"].notnull().any()
    xr.testing.assert_allclose(got, verify(fc, cube, ["mae", "csi", "fss"], **kw))
