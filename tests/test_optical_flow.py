"""Tests of the "optical-flow" nowcasting model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

cv2 = pytest.importorskip("cv2")

import xnowcast  # noqa: E402
from xnowcast.models import get_model, list_models, run_model  # noqa: E402
from xnowcast.models.optical_flow import OpticalFlow  # noqa: E402

PAD = 32


def rain_field(n=64, seed=0, pad=PAD):
    """A smooth, textured rain field (mm/h) with rain and no-rain areas."""
    rng = np.random.default_rng(seed)
    f = cv2.GaussianBlur(rng.random((n + 2 * pad, n + 2 * pad)).astype(np.float32), (0, 0), 3)
    f = (f - f.mean()) / f.std()
    return np.maximum(np.exp(1.2 * f) - 1.0, 0).astype(np.float32) * 4


def moving(dx, dy, n_frames, n=64, seed=0):
    big = rain_field(n, seed)
    out = []
    for k in range(n_frames):
        m = np.float32([[1, 0, k * dx], [0, 1, k * dy]])
        out.append(
            cv2.warpAffine(big, m, big.shape[::-1], flags=cv2.INTER_LINEAR)[PAD:-PAD, PAD:-PAD]
        )
    return np.stack(out)


def test_registered_and_params_round_trip():
    assert "optical-flow" in list_models()
    model = get_model("optical-flow", method="lk", n_flows=2, sigma=20.0, n_in=4, n_out=3)
    assert isinstance(model, OpticalFlow)
    params = model.get_params()
    json.dumps(params)  # JSON-able
    assert params["method"] == "lucas-kanade" and params["sigma"] == 20.0
    again = get_model("optical-flow", **params)
    assert again.get_params() == params
    default = get_model("optical-flow")
    assert default.n_in == 12 and default.n_out == 24


@pytest.mark.parametrize(
    "params, tolerance",
    [
        # a dense method that recovers this translation exactly: the pipeline adds no error
        ({"method": "farneback", "extrapolation": "advection"}, 0.01),
        # the default follows single tracked features, each good to a few tenths of a pixel
        ({"extrapolation": "advection"}, 0.08),
    ],
)
def test_translation_forecast_matches_truth(params, tolerance):
    # whole-pixel steps, so that the truth is exact (no interpolation smoothing)
    frames = moving(2.0, -1.0, 4 + 6)
    model = get_model("optical-flow", n_in=4, n_out=6, **params)
    out = run_model(model, frames[None, :4])[0]
    truth = frames[4:]
    inner = np.s_[16:-16, 16:-16]
    for k in range(6):
        err = np.abs(out[k][inner] - truth[k][inner])
        assert np.nanmean(err) < tolerance * truth[k][inner].mean(), k
    # better than persistence by far at the last lead time
    persistence = np.abs(frames[3][inner] - truth[-1][inner]).mean()
    assert np.abs(out[-1][inner] - truth[-1][inner]).mean() < 0.2 * persistence


@pytest.mark.parametrize("method", ["dis", "farneback", "lucas-kanade"])
def test_every_method_forecasts(method):
    frames = moving(1.0, 1.0, 6)
    model = get_model("optical-flow", method=method, n_in=4, n_out=2, n_flows=2)
    out = model.predict(frames[None, :4])
    inner = np.s_[16:-16, 16:-16]
    assert (
        np.abs(out[0, 1][inner] - frames[5][inner]).mean()
        < 0.25 * np.abs(frames[3][inner] - frames[5][inner]).mean()
    )


def test_inflow_border_is_nan_or_fill():
    frames = moving(2.0, 0.0, 4)
    out = get_model("optical-flow", n_in=4, n_out=5, n_flows=1).predict(frames[None])
    # rain moves +x: the left columns come from outside the domain
    assert np.isnan(out[0, -1][:, :6]).all()
    # everything else comes from inside (up to a few pixels at the edges parallel to the motion,
    # where the estimated flow is least certain)
    assert np.isnan(out[0, -1][:, 14:]).mean() < 0.02
    assert not np.isnan(out[0, -1][8:-8, 14:-8]).any()
    filled = get_model("optical-flow", n_in=4, n_out=5, n_flows=1, fill=0.0).predict(frames[None])
    assert (filled[0, -1][:, :6] == 0).all()


def test_missing_data_stays_local():
    frames = moving(1.0, 0.0, 4, n=96)
    frames[:, 10:40, 10:40] = np.nan  # a static blind sector
    out = get_model("optical-flow", n_in=4, n_out=3, n_flows=2).predict(frames[None])[0]
    for k in range(3):
        holes = np.isnan(out[k])
        # the blind sector is advected but does not grow beyond a pixel per step
        assert not holes[45:, 8:].any()
        assert not holes[:, 45:].any()
        assert holes[12:38, 14:38].all()


@pytest.mark.parametrize("rate, expected", [(1.1, 1.1), (0.9, 0.9), (2.0, 1.25)])
def test_global_trend_grows_and_decays(rate, expected):
    base = rain_field(48)[PAD:-PAD, PAD:-PAD] + 0.5
    frames = np.stack([base * rate**k for k in range(4)])
    plain = get_model("optical-flow", n_in=4, n_out=3, n_flows=1).predict(frames[None])[0]
    trend = get_model("optical-flow", n_in=4, n_out=3, n_flows=1, trend="global").predict(
        frames[None]
    )[0]
    for k in range(3):
        ratio = np.nanmedian(trend[k] / plain[k])
        assert ratio == pytest.approx(expected ** (k + 1), rel=0.02)


@pytest.mark.parametrize("value", [0.0, np.nan])
def test_blank_window_gives_persistence(value):
    frames = np.full((1, 4, 32, 32), value, np.float32)
    out = get_model("optical-flow", n_in=4, n_out=3).predict(frames)
    np.testing.assert_array_equal(out, np.repeat(frames[:, -1:], 3, axis=1))


def test_batch_equals_single_and_inputs_untouched():
    a = moving(1.0, 0.5, 4)
    b = moving(-0.5, 1.0, 4, seed=1)
    batch = np.stack([a, b])
    before = batch.copy()
    model = get_model("optical-flow", n_in=4, n_out=3)
    out = model.predict(batch)
    np.testing.assert_array_equal(batch, before)
    np.testing.assert_array_equal(out[1], model.predict(b[None])[0])


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"method": "horn"}, ValueError, "dis, farneback, lucas-kanade, tvl1"),
        ({"n_flows": 12}, ValueError, "n_in >= 13"),
        ({"n_flows": 0}, ValueError, "n_flows"),
        ({"combine": "mean"}, ValueError, "'weighted', 'median'"),
        ({"trend": "decay"}, ValueError, "'none', 'global'"),
        ({"interpolation": "spline"}, ValueError, "linear"),
        ({"transform": "sqrt"}, ValueError, "dbr, identity, log, scale, uint8"),
        ({"method": "dis", "sigma": 3}, TypeError, "valid options are: .*preset"),
        ({"method": "dis", "preset": "slow"}, ValueError, "ultrafast, fast, medium"),
        ({"method": "farneback", "preset": "fast"}, ValueError, "seed, smooth"),
    ],
)
def test_bad_parameters(params, error, match):
    with pytest.raises(error, match=match):
        get_model("optical-flow", **params)


def test_tvl1_fails_early_without_contrib():
    from xnowcast.motion.tvl1 import tvl1_available

    if tvl1_available():
        assert get_model("optical-flow", method="tvl1").method == "tvl1"
    else:
        with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
            get_model("optical-flow", method="tvl1")


def _cube(frames):
    t = frames.shape[0]
    return xr.DataArray(
        frames,
        dims=("time", "y", "x"),
        name="rain",
        coords={"time": pd.date_range("2022-07-01", periods=t, freq="5min")},
        attrs={"units": "mm h-1"},
    )


def test_forecast_through_xarray_and_dask_equals_eager():
    cube = _cube(moving(1.0, 0.5, 8))
    params = dict(model="optical-flow", n_in=4, n_out=3, n_flows=2)
    latest = xnowcast.forecast(cube, **params) if hasattr(xnowcast, "forecast") else None
    from xnowcast.forecast import forecast

    latest = forecast(cube, **params)
    assert latest.dims == ("lead_time", "y", "x")
    assert latest.attrs["xnowcast_model"] == "optical-flow"
    lazy = forecast(cube, init_times="all", chunk_init_times=2, **params)
    assert lazy.chunks is not None
    computed = lazy.compute()
    np.testing.assert_array_equal(computed.isel(init_time=-1).values, latest.values)
    frames = cube.values
    for i, end in enumerate(range(3, 8)):
        eager = get_model("optical-flow", n_in=4, n_out=3, n_flows=2).predict(
            frames[None, end - 3 : end + 1]
        )[0]
        np.testing.assert_array_equal(computed.isel(init_time=i).values, eager)


def test_motion_pairs_left_to_the_cube_span_ten_minutes():
    """A 2-minute cube: the default model tracks the 5 pairs of the last 10 minutes (its
    one-step motion is mostly tracking noise); a 5-minute cube keeps the 2 pairs the
    benchmark chose; n_flows given by the user is never changed."""
    from xnowcast.forecast import forecast
    from xnowcast.motion.api import n_flows_for_step

    frames = moving(0.4, 0.2, 8)
    fast = _cube(frames).assign_coords(time=pd.date_range("2022-07-01", periods=8, freq="2min"))
    fc = forecast(fast, "optical-flow", n_in=7, n_out=2)
    assert json.loads(fc.attrs["xnowcast_model_params"])["n_flows"] == 5
    chosen = get_model("optical-flow", n_in=7, n_out=2, n_flows=5).predict(frames[None, 1:])[0]
    np.testing.assert_array_equal(fc.values, chosen)
    given = forecast(fast, "optical-flow", n_in=7, n_out=2, n_flows=2)
    assert json.loads(given.attrs["xnowcast_model_params"])["n_flows"] == 2
    slow = forecast(_cube(frames), "optical-flow", n_in=7, n_out=2)  # 5 minutes
    assert json.loads(slow.attrs["xnowcast_model_params"])["n_flows"] == 2
    np.testing.assert_array_equal(slow.values, given.values)
    short = forecast(fast, "optical-flow", n_in=3, n_out=2)  # at most the window's pairs
    assert json.loads(short.attrs["xnowcast_model_params"])["n_flows"] == 2
    two = np.timedelta64(2, "m")
    assert [n_flows_for_step(two * k, 12) for k in (1, 5, 30)] == [5, 2, 2]
    assert n_flows_for_step(np.timedelta64(30, "s"), 12) == 11


def test_accessor_forecast_with_options():
    cube = _cube(moving(1.0, 0.5, 6))
    fc = cube.nowcast.forecast(
        model="optical-flow",
        model_params={"method": "farneback", "n_flows": 2, "trend": "none", "n_in": 4, "n_out": 2},
    )
    assert fc.sizes["lead_time"] == 2
    assert json.loads(fc.attrs["xnowcast_model_params"])["method"] == "farneback"


def test_against_pysteps_on_a_small_crop():
    """Same window, same flow type: motion + advection at least as good as pysteps' (the cascade
    is compared with S-PROG on real radar below)."""
    pytest.importorskip("pysteps")
    from pysteps import motion, nowcasts
    from pysteps.utils import transformation

    frames = moving(1.5, 1.0, 12 + 6, n=96)
    obs = frames[12:]
    ours = get_model("optical-flow", n_out=6, extrapolation="advection").predict(frames[None, :12])[
        0
    ]
    db, _ = transformation.dB_transform(
        frames[9:12].astype("float64"), threshold=0.1, zerovalue=-15.0
    )
    velocity = motion.get_method("LK")(db)
    ref = nowcasts.get_method("extrapolation")(frames[11].astype("float64"), velocity, 6)
    inner = np.s_[:, 24:-24, 24:-24]
    err_ours = np.nanmean(np.abs(ours - obs)[inner])
    err_ref = np.nanmean(np.abs(ref - obs)[inner])
    assert err_ours <= err_ref * 1.1


#: 192 x 192 crops of the shared radar with the most rain (rows, columns of the top-left corner).
RADAR_CROPS = {"mch-20150515.nc": (320, 384), "knmi-201008.nc": (320, 320), "bom": (256, 192)}


@pytest.mark.parametrize("name", sorted(RADAR_CROPS))
def test_default_against_pysteps_on_shared_radar_crops(name, radar_dir, request):
    """Real radar (NaN outside coverage), four 12 -> 12 windows: CSI and FSS at 1 mm/h, MAE.

    The CI-sized companion of ``benchmarks/bench_optical_flow.py`` (every window, 24 leads,
    700 x 700, where the targets are measured), scored as there. The optical-flow motion
    with ``extrapolation="advection"`` may not fall more than 0.005 below pysteps'
    Lucas-Kanade + extrapolation on CSI and FSS. The default (the cascade) must stay near
    pysteps' S-PROG (8 levels, AR(2), mean matching): on these small crops of the rainiest
    areas S-PROG's stronger smoothing scores best (measured: 0.013-0.030 higher CSI, 0.003-0.026
    higher FSS, MAE 1.10-1.29x lower), while over the whole grids the default is ahead on CSI
    (see the benchmark); a cascade that stopped decaying or matching would lose far more.
    """
    pytest.importorskip("pysteps")
    from xnowcast.verification.categorical import contingency_table, csi_from_table
    from xnowcast.verification.continuous import continuous_stats, mae_from_stats
    from xnowcast.verification.spatial import fss_from_stats, fss_stats

    if name == "bom":  # kg m-2 per 6 min -> mm/h
        cube = request.getfixturevalue("bom_cube") * 10.0
    else:
        cube = xnowcast.open_archive(radar_dir / name)
    y0, x0 = RADAR_CROPS[name]
    frames = cube.isel(y=slice(y0, y0 + 192), x=slice(x0, x0 + 192)).values.astype("float32")
    n_out = 12
    models = {
        "default": get_model("optical-flow", n_out=n_out),
        "advection": get_model("optical-flow", n_out=n_out, extrapolation="advection"),
    }
    totals: dict[str, tuple] = {}
    for end in np.linspace(12, frames.shape[0] - n_out - 1, 4).astype(int):
        inputs, obs = frames[end - 11 : end + 1], frames[end + 1 : end + 1 + n_out]
        forecasts = {k: m.predict(inputs[None])[0] for k, m in models.items()}
        forecasts.update(_pysteps(inputs, n_out))
        for label, fc in forecasts.items():
            fc = np.where(np.isfinite(obs) & ~np.isfinite(fc), 0.0, fc)  # inflow: no rain
            sums = (
                contingency_table(fc, obs, 1.0).sum(axis=0),
                fss_stats(fc, obs, 1.0, 16).sum(axis=0),
                continuous_stats(fc, obs).sum(axis=0),
            )
            old = totals.get(label)
            totals[label] = sums if old is None else tuple(a + b for a, b in zip(old, sums))
    scores = {
        label: (
            float(csi_from_table(t)),
            float(fss_from_stats(f).item()),
            float(mae_from_stats(c)),
        )
        for label, (t, f, c) in totals.items()
    }
    (csi_lk, fss_lk, _), (csi_adv, fss_adv, _) = scores["lk"], scores["advection"]
    (csi, fss, mae), (csi_sprog, fss_sprog, mae_sprog) = scores["default"], scores["sprog"]
    assert 0.2 < csi_lk < 0.8 and 0.4 < fss_lk < 0.95  # a real test: skill, not blank crops
    assert csi_adv >= csi_lk - 0.005, scores
    assert fss_adv >= fss_lk - 0.005, scores
    assert csi >= csi_sprog - 0.04, scores
    assert fss >= fss_sprog - 0.04, scores
    assert mae <= 1.35 * mae_sprog, scores


def _pysteps(inputs: np.ndarray, n_out: int) -> dict[str, np.ndarray]:
    """pysteps' LK + extrapolation and S-PROG of one window, as in the benchmark."""
    import contextlib
    import io

    from pysteps import motion, nowcasts
    from pysteps.utils import transformation

    db, _ = transformation.dB_transform(
        inputs[-3:].astype("float64"), threshold=0.1, zerovalue=-15.0
    )
    db[~np.isfinite(db)] = -15.0
    velocity = motion.get_method("LK")(db)
    lk = nowcasts.get_method("extrapolation")(inputs[-1].astype("float64"), velocity, n_out)
    with contextlib.redirect_stdout(io.StringIO()):
        sprog = nowcasts.get_method("sprog")(
            db, velocity, n_out, precip_thr=-10.0, n_cascade_levels=8, probmatching_method="mean"
        )
    return {"lk": lk, "sprog": transformation.dB_transform(sprog, threshold=-10.0, inverse=True)[0]}


def test_implausible_motion_warns_on_the_speed_not_the_components():
    import warnings

    from xnowcast.models.optical_flow import warn_implausible_motion

    flow = np.zeros((2, 8, 8), np.float32)
    flow[:, 2, 3] = 8.0  # each component below 10 px per step, the speed (11.3 px) above
    with pytest.warns(UserWarning, match="reaches 11 pixels per step"):
        warn_implausible_motion(flow, 10.0)
    flow[0, 0, 0] = np.nan  # NaN elsewhere does not hide it
    with pytest.warns(UserWarning, match="beyond any physical speed"):
        warn_implausible_motion(flow, 10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_implausible_motion(np.full((2, 8, 8), 7.0, np.float32), 10.0)  # 9.9 px: plausible
