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


@pytest.mark.parametrize("cat_strict", [True, False])
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_default_sums_equal_the_three_kernels(cat_strict, strict, dtype):
    """One pass for the three families: the same counts, the same sums up to rounding.

    Gaps (NaN, +-inf), values equal to thresholds; more thresholds than one pass packs, and
    scales large enough to take fewer thresholds per pass; no categorical threshold at all.
    """
    fc, obs = pairs(n=3)
    fc = fc.astype(dtype)
    cases = [
        ([0.5, 1.0, 3.5], [0.5, 1.0, 3.5], [1, 4, 16]),
        ([0.0, 0.5, 1.0, 2.0, 3.5], [0.5, 1.5, 2.0, 3.0, 7.0], [1, 2, 45]),
        ([], [1.0], [3]),
    ]
    for cat, thr, sizes in cases:
        cat, thr, sizes = np.array(cat, dtype=float), np.array(thr), np.array(sizes)
        cont, table, fss = kernels.default_sums(fc, obs, cat, cat_strict, thr, sizes, strict)
        np.testing.assert_allclose(cont, kernels.continuous_sums(fc, obs), rtol=1e-12)
        want = kernels.contingency_counts(fc, obs, cat, cat_strict) if cat.size else table
        assert table.shape == (3, cat.size, 4) and (table == want).all()
        assert (fss == kernels.fss_sums(fc, obs, thr, sizes, strict)).all()


def test_verify_fused_statistics_equal_each_family_scored_alone():
    """MAE, CSI and FSS from one pass per pair, as each family's kernel gives them alone."""
    cube = xnowcast.datasets.synthetic_radar(n_times=12, size=40, seed=4)
    fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=3)
    kw = {"thresholds": [2.0, 0.5, 1.0, 4.0], "scales": [1, 5]}  # unsorted, more than 3
    together = verify(fc, cube, ["mae", "bias", "csi", "pod", "fss"], **kw)
    for metric in ("mae", "bias", "csi", "pod", "fss"):
        alone = verify(fc, cube, [metric], **kw)[metric]
        xr.testing.assert_allclose(together[metric], alone, rtol=1e-12)
    for compare in (">", ">="):
        both = verify(fc, cube, ["csi", "fss"], compare=compare, **kw)
        xr.testing.assert_allclose(
            both["csi"], verify(fc, cube, "csi", compare=compare, **kw)["csi"]
        )


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


@pytest.fixture
def stored_forecast(tmp_path):
    """A forecast written by save_forecast (zarr v2, chunks of one init time), its path."""
    from xnowcast.io import save_forecast

    cube = xnowcast.datasets.synthetic_radar(n_times=14, size=20, seed=6)
    fc = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=5)
    path = tmp_path / "fc.zarr"
    save_forecast(fc.chunk({"init_time": 1, "lead_time": 2}), path)
    return cube, fc, path


def _stored(data) -> list:
    """The :class:`StoredChunks` in the graph of dask array ``data``."""
    from xnowcast.io.chunks import StoredChunks

    values = [getattr(n, "value", n) for n in dict(data.__dask_graph__()).values()]
    return [v for v in values if isinstance(v, StoredChunks)]


def test_stored_chunks_read_a_zarr_v2_forecast_as_zarr_does(stored_forecast, tmp_path):
    """Whole chunks from their files, the edge chunk's part, a chunk never written (NaN)."""
    from xnowcast.io import open_forecast

    cube, fc, _ = stored_forecast
    path = tmp_path / "edges.zarr"  # chunks of 2 lead times: the last one is an edge chunk
    fc.to_dataset().to_zarr(path, encoding={fc.name: {"chunks": (1, 2, 20, 20)}}, zarr_format=2)
    (path / str(fc.name) / "3.1.0.0").unlink()  # init time 3, lead times 2-3: never written
    back = open_forecast(path, check_complete=False)
    assert _stored(back.data)  # read by StoredChunks
    assert back.data.chunks[1] == (2, 2, 1)  # the last chunk of lead times is an edge chunk
    expected = xr.open_zarr(path)[fc.name].values  # read by zarr
    assert np.isnan(expected[3, 2:4]).all()
    data = back.data
    for index, graph in ForecastChunk.split(data).items():
        got = ForecastChunk(graph, (data.name, *index), back, {}).read()
        where = tuple(slice(sum(c[:i]), sum(c[: i + 1])) for i, c in zip(index, data.chunks))
        np.testing.assert_array_equal(got, expected[where])
    np.testing.assert_array_equal(back.values, expected)
    xr.testing.assert_allclose(
        verify(back, cube, ["mae", "csi", "fss"]).compute(),
        verify(back.compute(), cube, ["mae", "csi", "fss"]),
    )


def test_stored_chunks_leave_decoded_and_other_arrays_to_xarray(tmp_path):
    """Values xarray decodes (scale factor) are read by xarray; so are zarr v3 arrays and
    variables chunked otherwise than the store."""
    from xnowcast.io.chunks import StoredChunks, direct_chunks

    da = xr.DataArray(np.arange(24.0).reshape(4, 6), dims=("y", "x"), name="v")
    scaled = {"scale_factor": 0.5, "dtype": "int16", "_FillValue": -1}
    for name, kw in (("scaled", scaled), ("v3", {}), ("plain", {})):
        path = tmp_path / f"{name}.zarr"
        fmt = 3 if name == "v3" else 2
        encoding = {"v": {"chunks": (2, 3), **kw}}
        da.to_dataset().to_zarr(path, encoding=encoding, zarr_format=fmt, consolidated=False)
        opened = xr.open_zarr(path, consolidated=False)
        back = direct_chunks(opened, path)
        assert bool(_stored(back.v.data)) == (name == "plain"), name
        xr.testing.assert_identical(back, opened)
        rechunked = opened.chunk({"y": 4})
        assert direct_chunks(rechunked, path) is rechunked
    assert not StoredChunks.readable(np.zeros(3))


def test_a_damaged_stored_forecast_chunk_is_named(stored_forecast, capsys):
    """A chunk that does not decode: verify names the forecast and the frame, in one line."""
    from xnowcast.cli import main

    cube, fc, path = stored_forecast
    (path / str(fc.name) / "4.0.0.0").write_bytes(b"not blosc at all" * 8)
    obs = path.parent / "obs.nc"
    cube.to_netcdf(obs)
    out = path.parent / "s.csv"
    assert main(["verify", str(path), str(obs), "--out", str(out), "--metrics", "mae"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    assert str(np.datetime_as_string(fc.init_time.values[4], "m")).replace("T", " ") in err, err
