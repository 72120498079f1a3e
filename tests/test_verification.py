"""Scores against independent implementations, and the xarray layer of ``verify``.

Independent references (test-only dependencies): ``pysteps.verification``
(continuous and categorical scores, FSS), ``skimage.metrics`` (SSIM, PSNR) and
``pytorch_msssim`` (SSIM with a Gaussian window, MS-SSIM).
"""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xnowcast
from xnowcast.conventions import forecast_coords
from xnowcast.verification import (
    categorical,
    continuous,
    get_method,
    get_metric,
    image,
    list_metrics,
    scores_to_dataframe,
    spatial,
    verify,
)

pysteps_verification = pytest.importorskip("pysteps.verification")
skimage_metrics = pytest.importorskip("skimage.metrics")
torch = pytest.importorskip("torch")
pytorch_msssim = pytest.importorskip("pytorch_msssim")

THRESHOLDS = [0.1, 1.0, 5.0]
SCALES = [1, 4, 5, 16]


# --------------------------------------------------------------------------- data


def rain_pair(shape=(48, 52), seed=0):
    """An observed rain-like field and an imperfect forecast of it (no exact threshold values)."""
    rng = np.random.default_rng(seed)
    obs = rng.gamma(0.4, 3.0, shape) * (rng.random(shape) > 0.3)
    fc = np.roll(obs, 2, axis=-1) * 0.8 + rng.gamma(0.3, 1.0, shape)
    for thr in THRESHOLDS:
        assert not np.isin([thr], np.concatenate([obs.ravel(), fc.ravel()])).any()
    return fc, obs


def with_gaps(fc, obs, seed=1):
    """Copies with scattered NaN in each field and a NaN block in the observation."""
    rng = np.random.default_rng(seed)
    fc, obs = fc.copy(), obs.copy()
    fc[rng.random(fc.shape) < 0.05] = np.nan
    obs[rng.random(obs.shape) < 0.05] = np.nan
    obs[..., :7, :9] = np.nan
    return fc, obs


def to_tensor(a):
    return torch.tensor(np.ascontiguousarray(a)[None, None], dtype=torch.float64)


# --------------------------------------------------------------------- continuous


@pytest.mark.parametrize("gaps", [False, True])
def test_continuous_scores_match_pysteps(gaps):
    fc, obs = rain_pair()
    if gaps:
        fc, obs = with_gaps(fc, obs)
    valid = np.isfinite(fc) & np.isfinite(obs)
    ref = pysteps_verification.det_cont_fct(
        fc[valid], obs[valid], scores=["MSE", "RMSE", "MAE", "ME", "corr_p"]
    )
    assert continuous.mse(fc, obs) == pytest.approx(ref["MSE"], abs=1e-6, rel=1e-9)
    assert continuous.rmse(fc, obs) == pytest.approx(ref["RMSE"], abs=1e-6, rel=1e-9)
    assert continuous.mae(fc, obs) == pytest.approx(ref["MAE"], abs=1e-6, rel=1e-9)
    assert continuous.bias(fc, obs) == pytest.approx(ref["ME"], abs=1e-6, rel=1e-9)
    assert continuous.correlation(fc, obs) == pytest.approx(ref["corr_p"], abs=1e-6)


@pytest.mark.parametrize("gaps", [False, True])
def test_psnr_matches_skimage(gaps):
    fc, obs = rain_pair()
    if gaps:
        fc, obs = with_gaps(fc, obs)
    valid = np.isfinite(fc) & np.isfinite(obs)
    for data_range in (1023.0, 40.0):
        ref = skimage_metrics.peak_signal_noise_ratio(obs[valid], fc[valid], data_range=data_range)
        assert continuous.psnr(fc, obs, data_range=data_range) == pytest.approx(ref, abs=1e-6)
    # default data range: the larger max - min of the two fields over the valid pixels
    span = max(np.ptp(fc[valid]), np.ptp(obs[valid]))
    ref = skimage_metrics.peak_signal_noise_ratio(obs[valid], fc[valid], data_range=span)
    assert continuous.psnr(fc, obs) == pytest.approx(ref, abs=1e-6)


def test_continuous_batch_axes_and_empty_fields():
    fc, obs = rain_pair(shape=(3, 2, 16, 16))
    out = continuous.mse(fc, obs)
    assert out.shape == (3, 2)
    assert out[1, 0] == pytest.approx(np.mean((fc[1, 0] - obs[1, 0]) ** 2))
    empty = np.full((4, 4), np.nan)
    assert np.isnan(continuous.mse(empty, empty))
    assert np.isnan(continuous.psnr(empty, empty))
    with pytest.raises(ValueError, match="same shape"):
        continuous.mse(np.zeros((4, 4)), np.zeros((4, 5)))


# -------------------------------------------------------------------- categorical


@pytest.mark.parametrize("gaps", [False, True])
def test_categorical_scores_match_pysteps(gaps):
    fc, obs = rain_pair()
    if gaps:
        fc, obs = with_gaps(fc, obs)
    valid = np.isfinite(fc) & np.isfinite(obs)
    names = {"csi": "CSI", "pod": "POD", "far": "FAR", "ets": "ETS", "hss": "HSS", "fbias": "BIAS"}
    ours = {name: get_method(name)(fc, obs, THRESHOLDS) for name in names}
    for i, thr in enumerate(THRESHOLDS):
        ref = pysteps_verification.det_cat_fct(
            fc[valid], obs[valid], thr, scores=list(names.values())
        )
        for name, ref_name in names.items():
            assert ours[name][i] == pytest.approx(ref[ref_name], abs=1e-6), (name, thr)


def test_contingency_table_counts_and_scalar_threshold():
    fc, obs = rain_pair(shape=(2, 20, 20))
    table = categorical.contingency_table(fc, obs, [1.0, 5.0])
    assert table.shape == (2, 2, 4)
    assert (table.sum(axis=-1) == 400).all()
    single = categorical.contingency_table(fc, obs, 1.0)
    np.testing.assert_array_equal(single, table[:, 0])
    assert np.isnan(categorical.pod(np.zeros((3, 3)), np.zeros((3, 3)), 1.0))


# ---------------------------------------------------------------------------- FSS


@pytest.mark.parametrize("gaps", [False, True])
def test_fss_matches_pysteps(gaps):
    fc, obs = rain_pair()
    if gaps:
        fc, obs = with_gaps(fc, obs)
    ours = spatial.fss(fc, obs, THRESHOLDS, SCALES)
    assert ours.shape == (len(THRESHOLDS), len(SCALES))
    # documented equivalent: a pixel missing in either field is missing in both
    missing = ~(np.isfinite(fc) & np.isfinite(obs))
    f_ref, o_ref = np.where(missing, np.nan, fc), np.where(missing, np.nan, obs)
    for i, thr in enumerate(THRESHOLDS):
        for j, scale in enumerate(SCALES):
            ref = pysteps_verification.fss(f_ref, o_ref, thr, scale)
            assert ours[i, j] == pytest.approx(ref, abs=1e-6), (thr, scale)


def test_box_mean_matches_scipy_uniform_filter():
    ndimage = pytest.importorskip("scipy.ndimage")
    a = np.random.default_rng(3).random((2, 9, 13))
    for size in (1, 2, 3, 4, 16):
        ref = np.stack([ndimage.uniform_filter(x, size, mode="constant") for x in a])
        np.testing.assert_allclose(spatial.box_mean(a, size), ref, atol=1e-12)


def test_fss_perfect_and_no_events():
    _, obs = rain_pair()
    assert spatial.fss(obs, obs, 1.0, 4) == pytest.approx(1.0)
    assert np.isnan(spatial.fss(np.zeros((8, 8)), np.zeros((8, 8)), 1.0, 3))
    with pytest.raises(ValueError, match="whole numbers"):
        spatial.fss(obs, obs, 1.0, 2.5)


# --------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("win_size,data_range", [(3, 1023.0), (7, 30.0)])
def test_ssim_uniform_matches_skimage(win_size, data_range):
    fc, obs = rain_pair()
    ref = skimage_metrics.structural_similarity(fc, obs, win_size=win_size, data_range=data_range)
    assert image.ssim(fc, obs, win_size=win_size, data_range=data_range) == pytest.approx(
        ref, abs=1e-6
    )


def test_ssim_gaussian_matches_skimage_and_pytorch_msssim():
    fc, obs = rain_pair()
    ref = skimage_metrics.structural_similarity(
        fc, obs, data_range=30.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert image.ssim(fc, obs, data_range=30.0, win_size=11, gaussian=True) == pytest.approx(
        ref, abs=1e-6
    )
    for win_size in (3, 11):
        ref = pytorch_msssim.ssim(
            to_tensor(fc), to_tensor(obs), data_range=1023, win_size=win_size
        ).item()
        ours = image.ssim(fc, obs, data_range=1023, win_size=win_size, gaussian=True)
        assert ours == pytest.approx(ref, abs=1e-6)


def test_ssim_nan_border_equals_reference_on_the_rest():
    fc, obs = rain_pair()
    gappy = obs.copy()
    gappy[:5] = np.nan
    gappy[:, -3:] = np.nan
    ours = image.ssim(fc, gappy, win_size=3, data_range=1023)
    ref = skimage_metrics.structural_similarity(
        fc[5:, :-3], obs[5:, :-3], win_size=3, data_range=1023
    )
    assert ours == pytest.approx(ref, abs=1e-6)


def test_ssim_nan_hole_averages_the_windows_without_gaps():
    fc, obs = rain_pair()
    fc, obs = with_gaps(fc, obs)
    missing = ~(np.isfinite(fc) & np.isfinite(obs))
    # reference: skimage's SSIM map of the gap-filled fields (a window that does not touch
    # a gap does not see the fill value), averaged over the windows that touch no gap
    _, smap = skimage_metrics.structural_similarity(
        np.where(missing, 0.0, fc),
        np.where(missing, 0.0, obs),
        win_size=3,
        data_range=1023,
        full=True,
    )
    touched = np.zeros_like(missing)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            touched |= np.roll(np.roll(missing, dy, axis=0), dx, axis=1)
    inner = (slice(1, -1), slice(1, -1))
    ref = smap[inner][~touched[inner]].mean()
    assert image.ssim(fc, obs, win_size=3, data_range=1023) == pytest.approx(ref, abs=1e-6)


def test_ssim_options_are_checked():
    fc, obs = rain_pair(shape=(8, 8))
    with pytest.raises(ValueError, match="odd"):
        image.ssim(fc, obs, win_size=4)
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        image.ssim(fc[:5, :5], obs[:5, :5], win_size=7)
    with pytest.raises(ValueError, match="data_range"):
        image.ssim(fc, obs, data_range=0)


# ------------------------------------------------------------------------ MS-SSIM


@pytest.mark.parametrize("shape", [(96, 96), (97, 101)])
def test_ms_ssim_matches_pytorch_msssim(shape):
    """The contest's settings: window 3, data range 1023; odd sides exercise the padding."""
    fc, obs = rain_pair(shape=shape)
    ref = pytorch_msssim.ms_ssim(to_tensor(fc), to_tensor(obs), data_range=1023, win_size=3).item()
    assert image.ms_ssim(fc, obs, data_range=1023, win_size=3) == pytest.approx(ref, abs=1e-4)
    ref = pytorch_msssim.ms_ssim(to_tensor(fc), to_tensor(obs), data_range=30.0, win_size=3).item()
    assert image.ms_ssim(fc, obs, data_range=30.0, win_size=3) == pytest.approx(ref, abs=1e-4)


def test_ms_ssim_default_window_matches_pytorch_msssim():
    fc, obs = rain_pair(shape=(168, 170))
    ref = pytorch_msssim.ms_ssim(to_tensor(fc), to_tensor(obs), data_range=30.0).item()
    assert image.ms_ssim(fc, obs, data_range=30.0) == pytest.approx(ref, abs=1e-4)


def test_ms_ssim_nan_border_equals_reference_on_the_rest():
    fc, obs = rain_pair(shape=(112, 96))
    gappy = fc.copy()
    gappy[:16] = np.nan  # a multiple of 2**4 rows: the pooling grids line up
    ours = image.ms_ssim(gappy, obs, data_range=1023, win_size=3)
    ref = pytorch_msssim.ms_ssim(
        to_tensor(fc[16:]), to_tensor(obs[16:]), data_range=1023, win_size=3
    ).item()
    assert ours == pytest.approx(ref, abs=1e-4)


def test_ms_ssim_needs_a_large_enough_field():
    fc, obs = rain_pair(shape=(32, 40))
    assert image.ms_ssim_min_size(3) == 33
    with pytest.raises(ValueError, match="at least 33 x 33"):
        image.ms_ssim(fc, obs, win_size=3)


# ----------------------------------------------------------------------- registry


def test_registry_names_and_errors():
    names = list_metrics()
    assert names[:3] == ["mse", "rmse", "mae"]
    assert {"csi", "fss", "ssim", "ms_ssim", "psnr", "fbias"} <= set(names)
    assert get_metric("MS-SSIM").name == "ms_ssim"
    assert get_metric("frequency_bias").name == "fbias"
    assert get_method("Rmse") is continuous.rmse
    with pytest.raises(ValueError, match="valid names are: mse, rmse"):
        get_method("nash")


# ---------------------------------------------------------------------- verify()


def fake_forecast(obs: xr.DataArray, init_idx, n_out: int, seed: int = 0) -> xr.DataArray:
    """An imperfect forecast of ``obs``: the observed frame at the valid time, shifted and noisy."""
    rng = np.random.default_rng(seed)
    step = obs.time.values[1] - obs.time.values[0]
    init = pd.DatetimeIndex(obs.time.values[list(init_idx)])
    coords = forecast_coords(init, step, n_out)
    data = np.full((len(init), n_out, *obs.shape[1:]), np.nan, dtype=np.float32)
    for i, k in enumerate(init_idx):
        for j in range(n_out):
            if k + j + 1 < obs.sizes["time"]:
                frame = np.nan_to_num(obs.values[k + j + 1])
                data[i, j] = np.roll(frame, 1 + j % 3, axis=1) + rng.gamma(0.3, 0.5, frame.shape)
    spatial_coords = {c: obs.coords[c] for c in ("y", "x", "crs") if c in obs.coords}
    fc = xr.DataArray(
        data,
        dims=("init_time", "lead_time", "y", "x"),
        coords={**spatial_coords, **coords},
        name=obs.name,
        attrs=obs.attrs,
    )
    return fc


@pytest.fixture
def small_cube():
    return xnowcast.datasets.synthetic_radar(n_times=16, size=40, seed=5)


def test_verify_aligns_many_init_times_on_valid_time(small_cube):
    obs = small_cube
    fc = fake_forecast(obs, init_idx=[3, 5, 9, 13], n_out=4)
    scores = verify(
        fc, obs, ["mse", "csi", "fss", "ssim"], thresholds=[0.5, 2.0], scales=[1, 5], win_size=3
    )
    assert dict(scores["fss"].sizes) == {"init_time": 4, "lead_time": 4, "threshold": 2, "scale": 2}
    assert scores["mse"].dims == ("init_time", "lead_time")
    assert scores["csi"].dims == ("init_time", "lead_time", "threshold")
    np.testing.assert_array_equal(scores["valid_time"].values, fc["valid_time"].values)
    for i in range(4):
        for j in range(4):
            f = fc.values[i, j]
            vt = fc["valid_time"].values[i, j]
            if vt > obs.time.values[-1]:
                assert np.isnan(scores["mse"].values[i, j])  # no observation: NaN
                continue
            o = obs.sel(time=vt).values
            assert scores["mse"].values[i, j] == pytest.approx(continuous.mse(f, o), rel=1e-9)
            np.testing.assert_allclose(
                scores["csi"].values[i, j], categorical.csi(f, o, [0.5, 2.0]), rtol=1e-9
            )
            np.testing.assert_allclose(
                scores["fss"].values[i, j], spatial.fss(f, o, [0.5, 2.0], [1, 5]), rtol=1e-9
            )
            assert scores["ssim"].values[i, j] == pytest.approx(image.ssim(f, o, win_size=3))
    assert scores["threshold"].attrs["units"] == obs.attrs["units"]
    assert scores["mse"].attrs["long_name"] == "mean squared error"


def test_verify_one_init_time_and_dataset_inputs(small_cube):
    fc = small_cube.nowcast.forecast(
        model="persistence",
        init_times=small_cube.time.values[8],
        model_params={"n_in": 2, "n_out": 3},
    )
    scores = verify(fc.to_dataset(), small_cube.to_dataset(), ["mae", "pod"], thresholds=1.0)
    assert scores["mae"].dims == ("lead_time",)
    assert "init_time" in scores.coords and scores["init_time"].ndim == 0
    expected = [continuous.mae(fc.values[j], small_cube.values[9 + j]) for j in range(3)]
    np.testing.assert_allclose(scores["mae"].values, expected, rtol=1e-9)


def test_verify_mean_pools_statistics_over_init_times(small_cube):
    obs = small_cube
    fc = fake_forecast(obs, init_idx=[2, 4, 6], n_out=3)
    per_init = verify(
        fc, obs, ["mse", "csi", "fss", "ssim", "psnr"], thresholds=[1.0], scales=[3], win_size=3
    )
    pooled = verify(
        fc,
        obs,
        ["mse", "csi", "fss", "ssim", "psnr"],
        thresholds=[1.0],
        scales=[3],
        win_size=3,
        mean=True,
    )
    assert "init_time" not in pooled.dims and pooled["csi"].dims == ("lead_time", "threshold")
    for j in range(3):
        f = fc.values[:, j]
        o = np.stack([obs.sel(time=t).values for t in fc.valid_time.values[:, j]])
        table = categorical.contingency_table(f, o, [1.0]).sum(axis=0)
        assert pooled["csi"].values[j, 0] == pytest.approx(
            categorical.csi_from_table(table)[0], rel=1e-9
        )
        cont = continuous.continuous_stats(f, o).sum(axis=0)
        assert pooled["mse"].values[j] == pytest.approx(continuous.mse_from_stats(cont), rel=1e-9)
        sums = spatial.fss_stats(f, o, [1.0], [3]).sum(axis=0)
        assert pooled["fss"].values[j, 0, 0] == pytest.approx(
            spatial.fss_from_stats(sums)[0, 0], rel=1e-9
        )
        ssim_stats = image.ssim_stats(f, o, win_size=3).sum(axis=0)
        assert pooled["ssim"].values[j] == pytest.approx(ssim_stats[0] / ssim_stats[1])
        assert pooled["psnr"].values[j] == pytest.approx(per_init["psnr"].values[:, j].mean())


def test_verify_is_lazy_with_dask(small_cube):
    obs = small_cube.chunk({"time": 4})
    fc = fake_forecast(small_cube, init_idx=[3, 5, 7, 9], n_out=3).chunk({"init_time": 2})

    def refuse(*args, **kwargs):
        raise AssertionError("verify computed something before being asked")

    with dask.config.set(scheduler=refuse):
        scores = verify(
            fc,
            obs,
            ["mse", "far", "fss", "ssim"],
            thresholds=[1.0],
            scales=[3],
            win_size=3,
            reference="persistence",
            mean=False,
        )
        pooled = verify(fc, obs, ["csi"], thresholds=[1.0], mean=True)
    assert isinstance(scores["fss"].data, dsa.Array) and isinstance(pooled["csi"].data, dsa.Array)
    eager = verify(
        fc.compute(),
        small_cube,
        ["mse", "far", "fss", "ssim"],
        thresholds=[1.0],
        scales=[3],
        win_size=3,
        reference="persistence",
    )
    xr.testing.assert_allclose(scores.compute(), eager)
    assert not isinstance(eager["mse"].data, dsa.Array)


def test_verify_persistence_reference_and_skill(small_cube):
    obs = small_cube
    fc = fake_forecast(obs, init_idx=[4, 7], n_out=3)
    scores = verify(fc, obs, ["mse", "csi", "bias"], thresholds=[1.0], reference="persistence")
    assert {
        "mse_persistence",
        "mse_skill",
        "csi_persistence",
        "csi_skill",
        "bias_persistence",
    } <= set(scores.data_vars)
    assert "bias_skill" not in scores  # no perfect value, no skill score
    for i, k in enumerate([4, 7]):
        persisted = obs.values[k]
        for j in range(3):
            o = obs.values[k + j + 1]
            ref_mse = continuous.mse(persisted, o)
            assert scores["mse_persistence"].values[i, j] == pytest.approx(ref_mse, rel=1e-9)
            assert scores["mse_skill"].values[i, j] == pytest.approx(
                1 - continuous.mse(fc.values[i, j], o) / ref_mse, rel=1e-9
            )
            ref_csi = categorical.csi(persisted, o, 1.0)
            assert scores["csi_skill"].values[i, j, 0] == pytest.approx(
                (categorical.csi(fc.values[i, j], o, 1.0) - ref_csi) / (1 - ref_csi), rel=1e-9
            )
    # persistence scored against itself has no skill
    pers = obs.nowcast.forecast(
        model="persistence", init_times="all", model_params={"n_in": 1, "n_out": 2}
    )
    own = verify(pers, obs, ["mae"], reference="persistence", mean=True)
    np.testing.assert_allclose(own["mae_skill"].values, 0.0, atol=1e-12)


def test_verify_masks_nan_in_either_field(small_cube):
    obs = small_cube
    assert np.isnan(obs.values).any()  # NaN outside radar range
    fc = fake_forecast(obs, init_idx=[5], n_out=2)
    fc[0, 0, :10] = np.nan
    scores = verify(fc, obs, ["mae"])
    o = obs.values[6]
    valid = np.isfinite(o) & np.isfinite(fc.values[0, 0])
    assert scores["mae"].values[0, 0] == pytest.approx(
        np.abs(fc.values[0, 0][valid] - o[valid]).mean(), rel=1e-6
    )


def test_verify_crops_larger_observations_and_checks_grids(small_cube):
    obs = small_cube
    fc = fake_forecast(obs, init_idx=[5], n_out=2).isel(y=slice(4, 30), x=slice(2, 38))
    scores = verify(fc, obs, ["mse"])
    o = obs.values[6, 4:30, 2:38]
    assert scores["mse"].values[0, 0] == pytest.approx(continuous.mse(fc.values[0, 0], o))
    shifted = fc.assign_coords(x=fc.x + 123.0)
    with pytest.raises(ValueError, match="not on the observations' grid"):
        verify(shifted, obs, ["mse"])


def test_verify_errors_name_the_problem(small_cube):
    obs = small_cube
    fc = fake_forecast(obs, init_idx=[5], n_out=2)
    with pytest.raises(ValueError, match="unknown metric 'nse'.*valid names"):
        verify(fc, obs, ["nse"])
    with pytest.raises(ValueError, match="no 'lead_time' dimension"):
        verify(obs, obs)
    late = fc.assign_coords(valid_time=fc.valid_time + np.timedelta64(1, "D"))
    with pytest.raises(ValueError, match="no observation at any valid time"):
        verify(late, obs, ["mse"])
    with pytest.raises(ValueError, match="reference"):
        verify(fc, obs, ["mse"], reference="climatology")
    with pytest.raises(ValueError, match="at least 161 x 161"):
        verify(fc, obs, ["ms-ssim"])
    default = verify(fc, obs)  # the cheap default set
    assert list(default.data_vars) == ["mae", "csi", "fss"]
    with pytest.raises(ValueError, match="dim \\['member'\\] is not a dimension"):
        verify(fc, obs, ["mae"], dim="member")


def test_verify_ms_ssim_with_contest_settings():
    cube = xnowcast.datasets.synthetic_radar(n_times=6, size=48, seed=2, radar_range=None)
    fc = fake_forecast(cube, init_idx=[1], n_out=2)
    scores = verify(fc, cube, ["ms-ssim", "ssim"], data_range=1023, win_size=3)
    f, o = fc.values[0, 0], cube.values[2]
    ref = pytorch_msssim.ms_ssim(to_tensor(f), to_tensor(o), data_range=1023, win_size=3).item()
    assert scores["ms_ssim"].values[0, 0] == pytest.approx(ref, abs=1e-4)
    ref = skimage_metrics.structural_similarity(
        f.astype(np.float64), o, win_size=3, data_range=1023
    )
    assert scores["ssim"].values[0, 0] == pytest.approx(ref, abs=1e-6)


def test_scores_to_dataframe_is_tidy(small_cube):
    fc = fake_forecast(small_cube, init_idx=[3, 5], n_out=2)
    scores = verify(fc, small_cube, ["mse", "fss"], thresholds=[1.0], scales=[1, 3])
    table = scores_to_dataframe(scores)
    assert list(table.columns) == [
        "metric",
        "init_time",
        "lead_time",
        "threshold",
        "scale",
        "value",
    ]
    assert len(table) == 2 * 2 + 2 * 2 * 2
    row = table[(table.metric == "fss") & (table.scale == 3)].iloc[0]
    assert row["value"] == pytest.approx(
        scores["fss"]
        .sel(init_time=row["init_time"], lead_time=row["lead_time"], threshold=1.0, scale=3)
        .item()
    )


def test_accessor_top_level_and_cli(small_cube, tmp_path):
    from xnowcast.cli import main

    fc = fake_forecast(small_cube, init_idx=[3, 6], n_out=3)
    via_accessor = fc.nowcast.verify(small_cube, ["mae", "csi"], thresholds=[1.0])
    xr.testing.assert_identical(
        via_accessor, xnowcast.verify(fc, small_cube, ["mae", "csi"], thresholds=[1.0])
    )
    fc_path, obs_path, out = tmp_path / "fc.nc", tmp_path / "obs.nc", tmp_path / "scores.csv"
    fc.to_dataset().to_netcdf(fc_path)
    small_cube.to_dataset().to_netcdf(obs_path)
    assert (
        main(
            [
                "verify",
                str(fc_path),
                str(obs_path),
                "--out",
                str(out),
                "--metrics",
                "mae,csi",
                "--thresholds",
                "1",
                "--mean",
            ]
        )
        == 0
    )
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "metric",
        "init_time",
        "lead_time_min",
        "threshold",
        "scale",
        "value",
    ]
    pooled = verify(fc, small_cube, ["mae", "csi"], thresholds=[1.0], mean=True)
    mae = table[table.metric == "mae"].sort_values("lead_time_min")
    assert mae.lead_time_min.tolist() == [5.0, 10.0, 15.0]
    np.testing.assert_allclose(mae.value, pooled["mae"].values, rtol=1e-6)
    assert main(["verify", str(fc_path), str(obs_path), "--out", str(out), "--metrics", "nse"]) == 2


def test_verify_reference_forecast_and_window_option(small_cube):
    obs = small_cube
    fc = fake_forecast(obs, init_idx=[4, 7], n_out=2, seed=1)
    other = fake_forecast(obs, init_idx=[4, 7], n_out=2, seed=2)
    scores = verify(fc, obs, ["mae", "ssim"], reference=other, window="gaussian", win_size=3)
    alone = verify(other, obs, ["mae", "ssim"], window="gaussian", win_size=3)
    np.testing.assert_allclose(scores["mae_reference"], alone["mae"])
    np.testing.assert_allclose(scores["mae_skill"], 1 - scores["mae"] / alone["mae"])
    f, o = fc.values[1, 0], obs.sel(time=fc.valid_time.values[1, 0]).values
    assert scores["ssim"].values[1, 0] == pytest.approx(image.ssim(f, o, win_size=3, gaussian=True))
    with pytest.raises(ValueError, match="must be the same"):
        verify(fc, obs, ["mae"], reference=other.isel(init_time=0))
    with pytest.raises(ValueError, match="window"):
        verify(fc, obs, ["ssim"], window="box")


def test_verify_as_written_on_shared_radar(radar_dir):
    """The issue's call on the MeteoSwiss cube (lazy, NaN outside radar range), checked against
    pysteps on one forecast/observation pair with missing data in both."""
    cube = xnowcast.open_archive(radar_dir / "mch-20150515.nc")
    obs = cube.isel(y=slice(320, 640), x=slice(390, 710))  # 320 x 320, ~28 % outside range
    fcs = obs.nowcast.forecast(
        model="optical-flow", init_times=obs.time.values[[14, 20]], model_params={"n_out": 6}
    )
    scores = xnowcast.verify(
        fcs,
        obs,
        metrics=["mse", "mae", "csi", "pod", "far", "fss", "ssim", "ms-ssim"],
        thresholds=[0.1, 1, 5],
        scales=[1, 4, 16],
    )
    assert isinstance(scores["ms_ssim"].data, dsa.Array)  # lazy: nothing computed yet
    scores = scores.compute()
    assert dict(scores["fss"].sizes) == {"init_time": 2, "lead_time": 6, "threshold": 3, "scale": 3}
    assert np.isfinite(scores["ms_ssim"]).all() and np.isfinite(scores["csi"]).all()
    f = fcs.isel(init_time=1, lead_time=3).values
    o = obs.sel(time=fcs.valid_time.values[1, 3]).values
    assert np.isnan(f).any() and np.isnan(o).any() and (np.isnan(f) != np.isnan(o)).any()
    valid = np.isfinite(f) & np.isfinite(o)
    at = scores.isel(init_time=1, lead_time=3)
    ref = pysteps_verification.det_cont_fct(f[valid], o[valid], scores=["MSE", "MAE"])
    assert float(at["mse"]) == pytest.approx(ref["MSE"], abs=1e-6)
    assert float(at["mae"]) == pytest.approx(ref["MAE"], abs=1e-6)
    f_ref, o_ref = np.where(valid, f, np.nan), np.where(valid, o, np.nan)
    for thr in (0.1, 1.0, 5.0):
        assert not np.isin([thr], np.concatenate([f[valid], o[valid]])).any()  # > and >= agree
        ref = pysteps_verification.det_cat_fct(
            f[valid], o[valid], thr, scores=["CSI", "POD", "FAR"]
        )
        for name in ("csi", "pod", "far"):
            assert float(at[name].sel(threshold=thr)) == pytest.approx(ref[name.upper()], abs=1e-6)
        for scale in (1, 4, 16):
            assert float(at["fss"].sel(threshold=thr, scale=scale)) == pytest.approx(
                pysteps_verification.fss(f_ref, o_ref, thr, scale), abs=1e-6
            )
    assert float(at["ssim"]) == pytest.approx(float(image.ssim(f, o)), abs=1e-12)
    assert float(at["ms_ssim"]) == pytest.approx(float(image.ms_ssim(f, o)), abs=1e-12)
    defaults = fcs.isel(init_time=[0]).nowcast.verify(obs)  # same thresholds, default metrics
    assert set(defaults.data_vars) == {"mae", "csi", "fss"}
    xr.testing.assert_allclose(defaults["csi"].isel(init_time=0), scores["csi"].isel(init_time=0))


# ------------------------------------------------------------- bad input (audit)
@pytest.fixture
def fc_and_obs():
    from xnowcast.datasets import synthetic_radar

    cube = synthetic_radar(n_times=10, size=32, seed=2)
    return xnowcast.forecast(
        cube, "persistence", init_times="all", model_params={"n_in": 2, "n_out": 3}
    ), cube


def test_bad_verify_arguments_are_clear(fc_and_obs):
    fc, obs = fc_and_obs
    with pytest.raises(TypeError, match="metrics must be a metric name or a list"):
        verify(fc, obs, 3)
    with pytest.raises(TypeError, match="mean must be True or False, got 'no'"):
        verify(fc, obs, "mse", mean="no")  # "no" is truthy: it used to pool silently
    with pytest.raises(ValueError, match="thresholds must be a number or a non-empty list"):
        verify(fc, obs, "csi", thresholds="high")
    with pytest.raises(ValueError, match="thresholds must not repeat a value"):
        verify(fc, obs, "csi", thresholds=[1, 1])
    with pytest.raises(TypeError, match="data_range must be a positive number or None, got 'x'"):
        verify(fc, obs, "psnr", data_range="x")
    with pytest.raises(ValueError, match="win_size must be a positive odd integer"):
        verify(fc, obs, "ssim", win_size="x")


def test_empty_forecast_and_unlabelled_lead_times_are_clear(fc_and_obs):
    fc, obs = fc_and_obs
    with pytest.raises(ValueError, match=r"the forecast is empty along \['init_time'\]"):
        verify(fc.isel(init_time=[]), obs, "mse")
    with pytest.raises(ValueError, match=r"the forecast is empty along \['lead_time'\]"):
        verify(fc.isel(lead_time=[]), obs, "mse")
    steps = fc.drop_vars("valid_time").assign_coords(lead_time=[1, 2, 3])
    with pytest.raises(TypeError, match="'lead_time' coordinate is not timedelta64"):
        verify(steps, obs, "mse")


def test_timezone_aware_observations_are_clear(fc_and_obs):
    fc, obs = fc_and_obs
    aware = obs.assign_coords(time=obs.indexes["time"].tz_localize("UTC"))
    with pytest.raises(TypeError, match="timezone-aware"):
        verify(fc, aware, "mse")


def test_scores_to_dataframe_takes_scores_only(fc_and_obs):
    with pytest.raises(TypeError, match="takes the Dataset of scores"):
        scores_to_dataframe(fc_and_obs[1])
    with pytest.raises(ValueError, match="holds no scores"):
        scores_to_dataframe(xr.Dataset())
