"""Tests of motion estimation: sign convention, accuracy, pairs, NaN, errors, xarray API."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

cv2 = pytest.importorskip("cv2")

from xnowcast.motion import (  # noqa: E402
    available_methods,
    estimate_motion,
    get_method,
    list_methods,
    motion,
)
from xnowcast.motion.common import combine_flows, frame_pairs  # noqa: E402

N, PAD, INNER = 96, 24, np.s_[:, 16:-16, 16:-16]
# each method with a setting that resolves sub-pixel motion (DIS "fast"/"ultrafast"
# stop at quarter resolution, ~0.15 px)
ACCURATE = {
    "dis": {"preset": "medium"},
    "farneback": {},
    "lucas-kanade": {},
}


def textured(seed=0, sigma=3.0, n=N, pad=PAD):
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(
        rng.random((n + 2 * pad, n + 2 * pad)).astype(np.float32), (0, 0), sigma
    )
    return (field - field.min()) / (field.max() - field.min())


def warp(field, matrix, pad=PAD):
    out = cv2.warpAffine(
        field,
        np.float32(matrix),
        field.shape[::-1],
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    return out[pad:-pad, pad:-pad]


def translated(dx, dy, n_frames=3, seed=0):
    big = textured(seed)
    return np.stack([warp(big, [[1, 0, k * dx], [0, 1, k * dy]]) for k in range(n_frames)])


@pytest.mark.parametrize("method", sorted(ACCURATE))
def test_known_translation_recovered(method):
    dx, dy = 1.6, -0.8  # +x (columns) and -y (rows) per step
    flow = get_method(method)(translated(dx, dy), n_flows=2, **ACCURATE[method])
    assert flow.shape == (2, N, N) and flow.dtype == np.float32
    err = np.hypot(flow[0] - dx, flow[1] - dy)[INNER[1:]]
    assert err.max() < 0.1, f"{method}: max interior error {err.max():.3f} px"


@pytest.mark.parametrize("method", ["dis", "farneback", "lucas-kanade"])
def test_sign_convention_every_default(method):
    """Default settings: a feature moving +3 columns and +2 rows gives u ~ +3, v ~ +2."""
    flow = get_method(method)(translated(3.0, 2.0), n_flows=1)
    u, v = np.median(flow[INNER], axis=(1, 2))
    assert abs(u - 3.0) < 0.3 and abs(v - 2.0) < 0.3


def test_rotation_recovered():
    c = (N + 2 * PAD - 1) / 2
    big = textured(1, sigma=3.0)
    angle = 2.0  # degrees per step (OpenCV: counter-clockwise on screen)
    frames = np.stack(
        [warp(big, cv2.getRotationMatrix2D((c, c), k * angle, 1.0)) for k in range(2)]
    )
    flow = get_method("dis")(frames, preset="medium")
    yy, xx = np.mgrid[PAD : PAD + N, PAD : PAD + N].astype(np.float32)
    m = cv2.getRotationMatrix2D((c, c), angle, 1.0)
    true_u = m[0, 0] * xx + m[0, 1] * yy + m[0, 2] - xx
    true_v = m[1, 0] * xx + m[1, 1] * yy + m[1, 2] - yy
    err = np.hypot(flow[0] - true_u, flow[1] - true_v)[16:-16, 16:-16]
    assert np.median(err) < 0.1 and err.max() < 0.25
    assert np.abs(true_u).max() > 1.0  # the test really rotates


def test_n_flows_uses_most_recent_pairs_and_combines():
    # pairs: 0->1 moves 4 px, 1->2 and 2->3 move 1 px
    big = textured(2)
    shifts = [0.0, 4.0, 5.0, 6.0]
    frames = np.stack([warp(big, [[1, 0, s], [0, 1, 0]]) for s in shifts])
    est = get_method("dis")
    one = est(frames, n_flows=1, preset="medium")
    median = est(frames, n_flows=3, combine="median", preset="medium")
    weighted = est(frames, n_flows=3, combine="weighted", preset="medium")
    assert abs(np.median(one[0][INNER[1:]]) - 1.0) < 0.1
    assert abs(np.median(median[0][INNER[1:]]) - 1.0) < 0.1  # the outlier pair is ignored
    # weights 1, 2, 3 (oldest first): (4 * 1 + 1 * 2 + 1 * 3) / 6 = 1.5
    assert abs(np.median(weighted[0][INNER[1:]]) - 1.5) < 0.15


def test_combine_flows_exact():
    flows = [np.full((2, 2, 2), v, np.float32) for v in (4.0, 1.0, 1.0)]
    assert combine_flows(flows, "weighted")[0, 0, 0] == pytest.approx(1.5)
    assert combine_flows(flows, "median")[1, 1, 1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'weighted', 'median'"):
        combine_flows(flows, "mean")


def test_lucas_kanade_pools_pairs():
    frames = translated(1.0, 0.5, n_frames=4)
    flow = get_method("lk")(frames, n_flows=3)
    np.testing.assert_allclose(np.median(flow[INNER], axis=(1, 2)), [1.0, 0.5], atol=0.1)
    flow = get_method("lk")(frames, n_flows=3, combine="median")
    np.testing.assert_allclose(np.median(flow[INNER], axis=(1, 2)), [1.0, 0.5], atol=0.1)


def test_pair_missing_data_is_masked_in_both_frames():
    frames = np.ones((2, 2, 3), np.float32) * 0.5
    frames[1, 0, 0] = np.nan
    a, b = frame_pairs(frames, 1)[0]
    assert a[0, 0] == b[0, 0] == 0 and a[1, 1] == b[1, 1] == 128


@pytest.mark.parametrize("method", ["dis", "farneback", "lucas-kanade"])
def test_nan_gaps_do_not_create_motion(method):
    rain = 20 * textured(3)[PAD:-PAD, PAD:-PAD]  # a static field in mm/h
    frames = np.stack([rain] * 4)
    frames[1, 30:60, 30:60] = np.nan  # a data gap that opens and closes again
    frames[3, :, :20] = np.nan  # and one at the edge in the last frame
    flow = estimate_motion(frames, method=method, n_flows=3)
    assert np.abs(flow).max() < 0.1


def test_nan_region_does_not_poison_motion_elsewhere():
    frames = translated(1.0, 0.0) * 20
    frames[:, 10:40, 10:40] = np.nan
    flow = estimate_motion(frames, method="dis", n_flows=2, preset="medium")
    assert np.isfinite(flow).all()
    np.testing.assert_allclose(
        np.median(flow[:, 60:-16, 16:-16], axis=(1, 2)), [1.0, 0.0], atol=0.1
    )


@pytest.mark.parametrize("value", [0.0, np.nan])
@pytest.mark.parametrize("method", ["dis", "farneback", "lucas-kanade"])
def test_blank_frames_give_zero_motion(method, value):
    frames = np.full((4, 32, 32), value, np.float32)
    flow = estimate_motion(frames, method=method, n_flows=3)
    assert flow.shape == (2, 32, 32) and not flow.any()
    # also at the array level
    if not np.isnan(value):
        assert not get_method(method)(frames, n_flows=2).any()


def test_fixed_scaling_ignores_overall_intensity_change():
    """Uniform brightening is not motion (no per-frame min/max normalisation)."""
    big = textured(4)[PAD:-PAD, PAD:-PAD] * 10
    frames = np.stack([big, big * 1.5])
    flow = estimate_motion(frames, method="dis", n_flows=1, preset="medium")
    assert np.abs(np.median(flow, axis=(1, 2))).max() < 0.1


def test_motion_images_use_the_fixed_range_of_the_transform():
    """The 8-bit images come from the transform's fixed range, never from the data."""
    from xnowcast.transforms import get_transform, to_uint8

    seen = []

    def spy(frames, *, n_flows=1, combine="weighted", value_range=(0.0, 1.0)):
        seen.append((tuple(value_range), frame_pairs(frames, n_flows, value_range)))
        return np.zeros((2, *frames.shape[1:]), np.float32)

    rain = 20 * textured(5)[PAD:-PAD, PAD:-PAD]  # 0 .. 20 mm/h
    stronger = rain.copy()
    stronger[:10, :10] = 90.0  # a new intense cell in one corner
    estimate_motion(np.stack([rain, stronger]), method=spy, n_flows=1)
    estimate_motion(np.stack([rain * 0.1, rain * 0.1]), method=spy, n_flows=1)
    assert [value_range for value_range, _ in seen] == [(-15.0, 20.0)] * 2  # dBR, fixed
    ((before, after),) = seen[0][1]
    expected = to_uint8(
        get_transform("dbr", threshold=0.1, zerovalue=-15.0).forward(rain), (-15.0, 20.0)
    )
    np.testing.assert_array_equal(before, expected)
    # away from the new cell nothing changed, so the 8-bit values did not change either
    np.testing.assert_array_equal(after[10:, 10:], before[10:, 10:])


def test_errors_list_valid_values():
    with pytest.raises(ValueError, match="valid names are: dis, farneback, lucas-kanade, tvl1"):
        get_method("horn-schunck")
    with pytest.raises(TypeError, match="valid options are: .*preset"):
        estimate_motion(np.zeros((3, 8, 8)), method="dis", presett="fast")
    with pytest.raises(ValueError, match="valid presets are: ultrafast, fast, medium"):
        get_method("dis")(translated(1, 1), preset="slow")
    with pytest.raises(ValueError, match="valid presets are: seed, smooth"):
        get_method("farneback")(translated(1, 1), preset="fast")
    with pytest.raises(ValueError, match="n_flows=3 needs at least 4 frames"):
        get_method("dis")(translated(1, 1), n_flows=3)
    with pytest.raises(ValueError, match="shape \\(t, y, x\\)"):
        get_method("farneback")(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="value_range"):
        get_method("dis")(translated(1, 1), value_range=(1, 1))


def test_farneback_seed_preset_is_the_seed_call():
    frames = translated(1.0, 0.5)
    a = (frames[-2] * 255).round().astype(np.uint8)
    b = (frames[-1] * 255).round().astype(np.uint8)
    seed = cv2.calcOpticalFlowFarneback(
        a,
        b,
        None,
        pyr_scale=0.5,
        levels=3,
        winsize=15,
        iterations=3,
        poly_n=5,
        poly_sigma=1.2,
        flags=0,
    )
    ours = get_method("farneback")(frames, preset="seed", n_flows=1)
    np.testing.assert_allclose(ours, np.moveaxis(seed, -1, 0), atol=1e-6)


def test_tvl1_availability_is_reported():
    from xnowcast.motion.tvl1 import tvl1_available

    assert "tvl1" in list_methods()
    if tvl1_available():
        assert "tvl1" in available_methods()
        flow = get_method("tvl1")(translated(1.0, 0.0))
        assert abs(np.median(flow[0]) - 1.0) < 0.2
    else:
        assert "tvl1" not in available_methods()
        with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
            get_method("tvl1")(translated(1.0, 0.0))


def _cube(frames, dy=-1000.0, dx=1000.0):
    import xarray as xr

    t, ny, nx = frames.shape
    return xr.DataArray(
        frames,
        dims=("time", "y", "x"),
        name="rain",
        coords={
            "time": pd.date_range("2021-06-01", periods=t, freq="5min"),
            "y": (
                "y",
                np.arange(ny) * dy,
                {"standard_name": "projection_y_coordinate", "units": "m"},
            ),
            "x": (
                "x",
                np.arange(nx) * dx,
                {"standard_name": "projection_x_coordinate", "units": "m"},
            ),
        },
        attrs={"units": "mm h-1"},
    )


def test_motion_dataset_units_and_signs():
    # moving +1 column (east) and +1 row (south on a north-up grid) per 5 min
    cube = _cube(translated(1.0, 1.0, n_frames=4) * 20)
    uv = motion(cube, "dis", n_flows=2, preset="medium")
    assert set(uv.data_vars) == {"u", "v", "u_ms", "v_ms", "speed"}
    assert uv.u.dims == ("y", "x") and uv.u.attrs["units"] == "pixel / time step"
    assert uv.u_ms.attrs["units"] == "m s-1"
    inner = dict(y=slice(16, -16), x=slice(16, -16))
    assert float(uv.u.isel(inner).median()) == pytest.approx(1.0, abs=0.1)
    assert float(uv.v.isel(inner).median()) == pytest.approx(1.0, abs=0.1)
    # 1000 m per 300 s along +x; along +row = -y coordinate
    assert float(uv.u_ms.isel(inner).median()) == pytest.approx(1000 / 300, rel=0.1)
    assert float(uv.v_ms.isel(inner).median()) == pytest.approx(-1000 / 300, rel=0.1)
    assert uv.time.values == cube.time.values[-1]
    assert "sign_convention" in uv.attrs


def test_motion_all_times_and_no_metric_grid():
    cube = _cube(translated(1.0, 0.0, n_frames=4) * 20)
    uv = motion(cube, "farneback", n_flows=1, time="all")
    assert uv.sizes["time"] == 3 and list(uv.time.values) == list(cube.time.values[1:])
    bare = cube.drop_vars(["x", "y"])
    uv = motion(bare, "dis", n_flows=1, time=cube.time.values[2])
    assert "u_ms" not in uv and uv.speed.attrs["units"] == "pixel / time step"
    with pytest.raises(ValueError, match="earlier frame"):
        motion(cube, n_flows=2, time=cube.time.values[1])


def test_motion_pairs_left_to_the_cube_span_ten_minutes():
    """As the optical-flow model: 2 pairs on 5-minute frames, 5 on 2-minute frames, at most
    the pairs the cube has; a given n_flows is kept."""
    cube = _cube(translated(1.0, 0.0, n_frames=7) * 20)
    assert motion(cube, "dis").u.attrs["n_flows"] == 2
    fast = cube.assign_coords(time=pd.date_range("2022-07-01", periods=7, freq="2min"))
    assert motion(fast, "dis").u.attrs["n_flows"] == 5
    assert motion(fast.isel(time=slice(0, 3)), "dis").u.attrs["n_flows"] == 2
    assert motion(fast.isel(time=slice(0, 2)), "dis").u.attrs["n_flows"] == 1
    assert motion(fast, "dis", n_flows=3).u.attrs["n_flows"] == 3


def test_motion_accessor():
    import xnowcast  # noqa: F401  (registers the accessor)

    cube = _cube(translated(1.0, 0.0, n_frames=4) * 20)
    if not hasattr(cube.nowcast, "motion"):
        pytest.skip("the .nowcast accessor has no motion() yet")
    uv = cube.nowcast.motion(method="dis", n_flows=2)
    assert {"u", "v"} <= set(uv.data_vars)


# ------------------------------------------------------------- bad input (audit)
@pytest.mark.parametrize(
    "options, match",
    [
        # OpenCV's DIS divides by zero (SIGFPE) or corrupts the heap on these.
        ({"method": "dis", "patch_size": 0}, "DIS option patch_size must be a whole number >= 1"),
        ({"method": "dis", "patch_stride": 0}, "DIS option patch_stride must be a whole number"),
        ({"method": "dis", "patch_size": 4, "patch_stride": 8}, "must not exceed patch_size"),
        ({"method": "dis", "patch_size": 2}, r"patch_stride \(4\) must not exceed"),
        # OpenCV assertion errors (or silent nonsense) at the first forecast before.
        ({"win_size": 1}, "Lucas-Kanade option win_size must be a whole number >= 3"),
        ({"max_corners": -5}, "max_corners must be a whole number >= 0"),
        ({"quality_level": 0}, "quality_level must be a number > 0 and <= 1"),
        ({"min_distance": -1}, "min_distance must be a non-negative number"),
        ({"block_size": 0}, "block_size must be a whole number >= 1"),
        ({"max_level": -1}, "max_level must be a whole number >= 0"),
        ({"fb_threshold": -1}, "fb_threshold must be a positive number"),
        ({"grid_step": 0}, "grid_step must be a whole number >= 1"),
        ({"sigma": "3"}, "sigma must be a positive number"),
        ({"smooth": "lots"}, r"smooth \(sigma in pixels\) must be a non-negative number"),
        ({"method": "farneback", "pyr_scale": "0.5"}, "pyr_scale must be a number > 0"),
        ({"method": "farneback", "poly_sigma": -1}, "poly_sigma must be a positive number"),
    ],
)
def test_bad_method_options_fail_when_the_model_is_made(options, match):
    from xnowcast import get_model

    # text where a number belongs is a TypeError; a number out of range a ValueError
    values = [v for k, v in options.items() if k not in ("method", "preset")]
    error = TypeError if any(isinstance(v, str) for v in values) else ValueError
    with pytest.raises(error, match=match):
        get_model("optical-flow", n_in=3, n_out=2, **options)
    method = options.pop("method", "lucas-kanade")
    with pytest.raises(error, match=match):  # and when the method is called directly
        get_method(method)(np.zeros((2, 32, 32), np.float32), **options)


def test_opencv_errors_become_value_errors_naming_the_options():
    frames = np.random.default_rng(0).random((2, 24, 24)).astype(np.float32)
    with pytest.raises(
        ValueError,
        match=r"OpenCV rejected motion method 'dis' on frames of 24 x "
        r"24 pixels with options \{'patch_size': 100\}",
    ):
        estimate_motion(frames, method="dis", n_flows=1, transform="identity", patch_size=100)


def test_bad_motion_times_are_clear():
    from xnowcast.datasets import synthetic_radar

    cube = synthetic_radar(n_times=5, size=32)
    with pytest.raises(ValueError, match="time: expected times.*'yesterday'"):
        motion(cube, time="yesterday")
    with pytest.raises(TypeError, match="by position use cube.time.values"):
        motion(cube, time=3)
    with pytest.raises(ValueError, match="time is an empty list"):
        motion(cube, time=[])
    with pytest.raises(TypeError, match="not a slice"):
        motion(cube, time=slice(None, None))
    with pytest.raises(ValueError, match=r"n_flows=9 frame pairs; .*smaller n_flows"):
        motion(cube, n_flows=9)


# ------------------------------------- pysteps' motion-convergence design on real radar
#: pysteps' bars (``pysteps/tests/test_motion.py``, relative RMSE in per cent): 0.1 for
#: Lucas-Kanade, 28 for Farneback.
PYSTEPS_BAR = {"lucas-kanade": 0.1, "farneback": 28.0}


@pytest.fixture(scope="module")
def mch_1630(radar_dir):
    """The MeteoSwiss field of 2015-05-15 16:30 in mm/h (NaN outside radar range)."""
    import xarray as xr

    with xr.open_dataset(radar_dir / "mch-20150515.nc") as ds:
        field = ds["precip_intensity"].sel(time="2015-05-15T16:30").values
    return np.asarray(field, np.float32)


def shifted(field, dx, dy):
    """``field`` moved by whole pixels; what comes in from outside is missing."""
    out = np.full_like(field, np.nan)
    ny, nx = field.shape
    out[max(dy, 0) : ny + min(dy, 0), max(dx, 0) : nx + min(dx, 0)] = field[
        max(-dy, 0) : ny - max(dy, 0), max(-dx, 0) : nx - max(dx, 0)
    ]
    return out


def relative_rmse(frames, truth, flow):
    """pysteps' measure: relative RMSE (per cent) inside the rain area and its 20 px margin."""
    from scipy.ndimage import uniform_filter

    rain = np.nan_to_num(np.fmax.reduce(frames, axis=0))
    inside = (uniform_filter(rain, size=20) > 0.1) & ~np.isnan(frames).any(axis=0)
    mse = ((truth - flow)[:, inside] ** 2).mean()
    return 100 * float(np.sqrt(mse / (truth[:, inside] ** 2).mean()))


@pytest.mark.parametrize("n_frames", [2, 3])
@pytest.mark.parametrize("dx, dy", [(2, 0), (0, 2)])
@pytest.mark.parametrize("method", sorted(PYSTEPS_BAR))
def test_real_radar_shift_within_pysteps_bar(mch_1630, method, dx, dy, n_frames):
    frames = np.stack([shifted(mch_1630, k * dx, k * dy) for k in range(n_frames)])
    truth = np.zeros((2, *mch_1630.shape), np.float32)
    truth[0], truth[1] = dx, dy
    flow = estimate_motion(frames, method=method, n_flows=n_frames - 1)
    assert relative_rmse(frames, truth, flow) < PYSTEPS_BAR[method]


@pytest.mark.parametrize("dx, dy", [(2, 0), (0, 2)])
def test_real_radar_shift_dis_resampled_below_one_per_cent(mch_1630, dx, dy):
    """DIS keeps its flow where it is well determined and interpolates the rest; the
    dense field is wrong near data gaps and outside the rain (3-4 %)."""
    frames = np.stack([shifted(mch_1630, k * dx, k * dy) for k in range(3)])
    truth = np.zeros((2, *mch_1630.shape), np.float32)
    truth[0], truth[1] = dx, dy
    options = dict(method="dis", n_flows=2, preset="medium")
    dense = relative_rmse(frames, truth, estimate_motion(frames, **options))
    resampled = relative_rmse(frames, truth, estimate_motion(frames, resample=True, **options))
    assert resampled < 1.0 < dense


def rotated(field, degrees):
    """``field`` rotated about its centre, and the true displacement of every pixel."""
    ny, nx = field.shape
    m = cv2.getRotationMatrix2D(((nx - 1) / 2, (ny - 1) / 2), degrees, 1.0)
    flags, border = cv2.INTER_CUBIC, cv2.BORDER_CONSTANT
    moved = cv2.warpAffine(np.nan_to_num(field), m, (nx, ny), flags=flags, borderMode=border)
    valid = cv2.warpAffine((~np.isnan(field)).astype(np.float32), m, (nx, ny), borderMode=border)
    moved[valid < 0.999] = np.nan
    yy, xx = np.mgrid[0:ny, 0:nx]
    truth = np.stack([m[0, 0] * xx + m[0, 1] * yy + m[0, 2] - xx, m[1, 0] * xx + m[1, 1] * yy])
    truth[1] += m[1, 2] - yy
    return np.maximum(moved, 0), truth.astype(np.float32)


def test_real_radar_rotation(mch_1630):
    """One degree per step about the centre (up to 8 px at the corners). Lucas-Kanade's
    50-pixel windows see a turning flow: each vector is off by up to 0.3 px (4 % before);
    the default subtracts that bias (``debias``) and leaves under 1 %. The rest is the
    sub-pixel floor of tracking an interpolated frame (``test_subpixel_shift_floor``)."""
    moved, truth = rotated(mch_1630, 1.0)
    frames = np.stack([mch_1630, moved])

    def error(**options):
        return relative_rmse(frames, truth, estimate_motion(frames, n_flows=1, **options))

    default = error()
    assert default < 1.0
    assert error(debias=False) > 3 * default  # the window bias, removed by the default
    assert error(fit="constant") > 5 * default  # the local linear fit follows the turn


def test_real_radar_rotation_over_two_pairs(mch_1630):
    """Pooling the vectors of two pairs (the model's default) lowers the error further."""
    moved, truth = rotated(mch_1630, 1.0)
    twice, _ = rotated(moved, 1.0)
    frames = np.stack([mch_1630, moved, twice])
    assert relative_rmse(frames, truth, estimate_motion(frames, n_flows=2)) < 0.75


@pytest.mark.parametrize(
    "options, bar",
    [
        ({"method": "dis", "preset": "medium", "resample": True}, 3.0),
        ({"method": "farneback"}, PYSTEPS_BAR["farneback"]),
    ],
)
def test_real_radar_rotation_other_methods(mch_1630, options, bar):
    """DIS (resampled at corners) and Farneback on the same rotation: 2.5 % and 10 %."""
    moved, truth = rotated(mch_1630, 1.0)
    frames = np.stack([mch_1630, moved])
    assert relative_rmse(frames, truth, estimate_motion(frames, n_flows=1, **options)) < bar


def test_subpixel_shift_floor(mch_1630):
    """A shift of (2.3, 0.6) px made by spline interpolation: about 1.5 % for Lucas-Kanade
    with or without ``debias``, against 0.01 % for the whole-pixel shifts of pysteps'
    test. The interpolated frame is not the field moved (rain is interpolated, motion is
    tracked in dBR; 8-bit images): the floor of every tracker on such frames."""
    from scipy.ndimage import shift

    moved = shift(np.nan_to_num(mch_1630), (0.6, 2.3), order=3, mode="constant", cval=0.0)
    valid = shift((~np.isnan(mch_1630)).astype(float), (0.6, 2.3), order=1, mode="constant")
    moved[valid < 0.999] = np.nan
    frames = np.stack([mch_1630, np.maximum(moved, 0).astype(np.float32)])
    truth = np.zeros((2, *mch_1630.shape), np.float32)
    truth[0], truth[1] = 2.3, 0.6
    default = relative_rmse(frames, truth, estimate_motion(frames, n_flows=1))
    plain = relative_rmse(frames, truth, estimate_motion(frames, n_flows=1, debias=False))
    assert 0.5 < default < 2.5 and abs(default - plain) < 0.1


def test_window_bias_removes_the_rotation_bias_of_tracked_vectors():
    """On a synthetic rotating texture the corrected vectors are several times closer."""
    from xnowcast.motion.common import frame_pairs
    from xnowcast.motion.lucas_kanade import local_jacobians, track_pair, window_bias

    big = textured(7, sigma=2.0, n=160, pad=0)
    c = (160 - 1) / 2
    m = cv2.getRotationMatrix2D((c, c), 2.0, 1.0)
    frames = np.stack([big, cv2.warpAffine(big, m, (160, 160), flags=cv2.INTER_CUBIC)])
    (a, b) = frame_pairs(frames, 1)[0]
    points, vectors, moments = track_pair(a, b, moments=True, win_size=41)
    keep = np.all((points > 30) & (points < 130), axis=1)
    points, vectors, moments = points[keep], vectors[keep], moments[keep]
    truth = points @ m[:, :2].T + m[:, 2] - points
    corrected = vectors - window_bias(moments, local_jacobians(points, vectors, sigma=20))
    before = np.sqrt(((vectors - truth) ** 2).sum(1).mean())
    after = np.sqrt(((corrected - truth) ** 2).sum(1).mean())
    assert len(points) > 20 and after < before / 3


def test_local_linear_interpolation_is_exact_for_affine_motion():
    from xnowcast.motion.lucas_kanade import interpolate_vectors

    rng = np.random.default_rng(0)
    points = rng.random((60, 2)) * [200, 100]
    a = np.array([[0.01, -0.02], [0.03, 0.005]])
    vectors = (points - [100, 50]) @ a.T + [2.0, -1.0]
    yy, xx = np.mgrid[0:100, 0:200]
    truth = np.stack(
        [
            a[0, 0] * (xx - 100) + a[0, 1] * (yy - 50) + 2,
            a[1, 0] * (xx - 100) + a[1, 1] * (yy - 50) - 1,
        ]
    )
    linear = interpolate_vectors(points, vectors, (100, 200))
    assert np.abs(linear - truth).max() < 1e-4  # everywhere, also far from the points
    constant = interpolate_vectors(points, vectors, (100, 200), fit="constant")
    assert np.abs(constant - truth).max() > 0.1
    # one vector: a uniform field in both fits
    one = interpolate_vectors(points[:1], vectors[:1], (10, 20))
    np.testing.assert_allclose(
        one, np.broadcast_to(vectors[0][:, None, None], one.shape), atol=1e-5
    )


def test_interpolation_far_from_the_vectors_stays_bounded():
    """Vectors in one corner only, with a strong gradient: the plane of those few is not
    extrapolated across the domain (26 px per step at the far corner without the prior,
    against vectors of 1-4); near the vectors the prior changes nothing."""
    from xnowcast.motion.lucas_kanade import interpolate_vectors

    rng = np.random.default_rng(0)
    points = rng.random((40, 2)) * 64
    vectors = np.stack([1 + 0.05 * points[:, 0], -1 + 0.03 * points[:, 1]], axis=1)
    low, high = vectors.min(axis=0)[:, None], vectors.max(axis=0)[:, None]
    width = high - low
    flow = interpolate_vectors(points, vectors, (512, 512))
    before = interpolate_vectors(points, vectors, (512, 512), prior=0.0)
    far = flow[:, 256:, 256:].reshape(2, -1)
    assert (far >= low - width).all() and (far <= high + width).all()
    assert before[0, -1, -1] > 20  # what the prior prevents
    np.testing.assert_allclose(flow[:, 8:56, 8:56], before[:, 8:56, 8:56], atol=2e-3)


def test_real_radar_flow_far_from_the_vectors_stays_near_theirs(bom_cube, monkeypatch):
    """A BOM window (fast, noisy cells; 512 x 512): more than 100 px from every tracked
    vector the flow keeps within 8 px per step of the vectors' median (22 px without the
    prior: the plane of the nearest few vectors, extrapolated)."""
    from scipy.spatial import cKDTree

    from xnowcast.motion import lucas_kanade

    seen = {}
    interpolate = lucas_kanade.interpolate_vectors

    def spy(points, vectors, shape, **options):
        seen.update(points=points, vectors=vectors)
        return interpolate(points, vectors, shape, **options)

    monkeypatch.setattr(lucas_kanade, "interpolate_vectors", spy)
    frames = 10 * bom_cube.isel(time=slice(30, 33)).values  # mm per 6 min -> mm/h
    yy, xx = np.mgrid[0:512, 0:512]

    def deviation(**options):
        flow = estimate_motion(frames, n_flows=2, **options)
        tree = cKDTree(seen["points"])
        far = tree.query(np.stack([xx.ravel(), yy.ravel()], 1))[0].reshape(512, 512) > 100
        centre = np.median(seen["vectors"], axis=0)[:, None]
        return float(np.abs(flow[:, far] - centre).max())

    assert deviation() < 8.0 < deviation(prior=0.0)


def test_outliers_and_gap_buffer():
    from xnowcast.motion.lucas_kanade import feature_mask, find_outliers

    rng = np.random.default_rng(1)
    points = rng.random((80, 2)) * 300
    vectors = np.tile([2.0, 0.0], (80, 1)) + rng.normal(0, 0.02, (80, 2))
    vectors[7] = [1.4, -0.3]  # pulled towards zero by a still edge
    assert np.flatnonzero(find_outliers(points, vectors)).tolist() == [7]
    gap = np.zeros((40, 40), bool)
    gap[:, :5] = True
    allowed = feature_mask(gap, np.zeros_like(gap), 25)  # a gap that closed: keep away
    assert not allowed[:, :30].any() and allowed[:, 30:].all()
    allowed = feature_mask(gap, gap, 25)  # the same gap in both frames: only the gap
    assert not allowed[:, :5].any() and allowed[:, 5:].all()
    assert feature_mask(np.zeros_like(gap), np.zeros_like(gap), 25) is None


def test_warp_image_moves_features_along_the_flow():
    from xnowcast.motion.lucas_kanade import sample_at, warp_image

    image = (255 * textured(6)[PAD:-PAD, PAD:-PAD]).astype(np.uint8)
    flow = np.zeros((2, N, N), np.float32)
    flow[0], flow[1] = 3.0, -2.0
    moved = warp_image(image, flow)
    np.testing.assert_array_equal(moved[:-2, 3:], image[2:, :-3])
    assert (moved[:, :3] == 0).all()
    fields = np.stack([np.arange(N, dtype=np.float32)[None].repeat(N, 0)])
    half = np.full((2, N, N), 0.25, np.float32)
    np.testing.assert_allclose(sample_at(fields, half)[0, :, :-1], fields[0, :, :-1] + 0.25)


def test_lucas_kanade_new_options_are_checked():
    for options, match in [
        ({"refine": -1}, "refine must be a whole number >= 0"),
        ({"fit": "cubic"}, "'linear', 'constant'"),
        ({"buffer": -2}, "buffer must be a whole number >= 0"),
        ({"outliers": 0}, "outliers must be a positive number"),
    ]:
        with pytest.raises(ValueError, match=match):
            get_method("lk")(np.zeros((2, 16, 16), np.float32), **options)
    with pytest.raises(TypeError, match="debias must be True or False"):
        get_method("lk")(np.zeros((2, 16, 16), np.float32), debias="yes")


def test_max_speed_leaves_out_faster_vectors(mch_1630):
    """Lucas-Kanade's ``max_speed``: vectors faster than it are left out before pooling;
    when many are (here all of them), a warning blames the input, not the tracking."""
    frames = np.stack([shifted(mch_1630, 2 * k, 0) for k in range(3)])  # 2 px per step
    plain = estimate_motion(frames, n_flows=2)
    assert np.array_equal(estimate_motion(frames, n_flows=2, max_speed=5.0), plain)
    with pytest.warns(UserWarning, match=r"of \d+ tracked motion vectors were faster than"):
        none_left = estimate_motion(frames, n_flows=2, max_speed=1.0)
    assert not none_left.any()  # no vector left: no motion, as without rain
    with pytest.raises(ValueError, match="max_speed"):
        estimate_motion(frames, n_flows=2, max_speed=0)


def test_a_tracking_failure_is_left_out_quietly():
    """OPERA 2018-08-24 23:45 (2 km, 15 min): one window in a dry patch locked onto another
    patch, 108 px per step (240 m/s) where the rest move 5. On a projected grid the motion
    leaves out vectors faster than 100 m/s; one in a thousand, it says nothing."""
    from pathlib import Path

    files = Path(__file__).resolve().parents[1].parent / "shared/data/formats/OPERA/20180824"
    if not files.is_dir():
        pytest.skip(f"shared raw-format data not found at {files}")
    from xnowcast.io import open_archive

    cube = open_archive(str(files / "*.hdf")).isel(time=slice(-3, None)).load()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        limited = motion(cube)
    unlimited = motion(cube, max_speed=None)  # as before: the failure spreads around it
    assert float(limited.speed.max()) < 100.0 < float(unlimited.speed.max())
    # elsewhere nearly the same field: the failure had also pulled the affine fit of all
    # vectors, towards which the field tends far from every vector
    change = np.abs(limited.speed - unlimited.speed).values
    assert np.median(change) < 0.2 and (change < 1.0).mean() > 0.9


def test_outliers_and_max_speed_work_without_debias():
    """Without ``debias`` no window moments are tracked: dropping vectors must not index them
    (the outlier filter did, an IndexError)."""
    from xnowcast.datasets import synthetic_radar

    frames = synthetic_radar(n_times=3, size=96).values
    for options in ({"outliers": 3.0}, {"max_speed": 30.0}):
        flow = estimate_motion(frames, n_flows=2, debias=False, **options)
        assert flow.shape == (2, 96, 96) and np.isfinite(flow).all()
