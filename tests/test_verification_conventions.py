"""The pysteps conventions of verify: threshold rule, new scores, ``dim=``, aligned observations.

References (test-only): ``pysteps.verification`` (``det_cat_fct``,
``det_cont_fct``, ``fss``, ``salscores.sal``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xnowcast
from xnowcast.conventions import forecast_coords
from xnowcast.verification import categorical, continuous, get_method, sal, spatial, verify

pysteps_verification = pytest.importorskip("pysteps.verification")
salscores = pytest.importorskip("pysteps.verification.salscores")

NEW_CATEGORICAL = {"pofd": "FA", "hk": "HK", "sedi": "SEDI", "f1": "F1", "mcc": "MCC", "acc": "ACC"}


def quantised_pair(shape=(40, 44), seed=0):
    """Rain on the 0.5 mm/h steps of a quantised radar: many values equal a threshold."""
    rng = np.random.default_rng(seed)
    obs = np.round(rng.gamma(0.5, 3.0, shape) * 2) / 2
    fc = np.round((np.roll(obs, 2, axis=1) + rng.gamma(0.4, 1.0, shape)) * 2) / 2
    return fc, obs


@pytest.mark.parametrize("gaps", [False, True])
def test_categorical_scores_match_pysteps_on_quantised_values(gaps):
    """The default rule is pysteps' value > threshold, also where values equal it."""
    fc, obs = quantised_pair()
    if gaps:
        obs[:5, :6] = np.nan
        fc[10:12] = np.nan
    valid = np.isfinite(fc) & np.isfinite(obs)
    thresholds = [0.5, 1.0, 2.0]
    assert np.isin(thresholds, obs).all()  # values exactly at the thresholds
    names = {"csi": "CSI", "pod": "POD", "far": "FAR", "ets": "ETS", "hss": "HSS"}
    names.update(NEW_CATEGORICAL)
    for name, ref_name in names.items():
        ours = get_method(name)(fc, obs, thresholds)
        for i, thr in enumerate(thresholds):
            ref = pysteps_verification.det_cat_fct(fc[valid], obs[valid], thr, [ref_name])
            assert ours[i] == pytest.approx(ref[ref_name], abs=1e-6), (name, thr)


def test_the_issue_example_and_the_compare_option():
    fc, obs = np.array([[1.0, 3.0]]), np.array([[2.0, 5.0]])
    ref = pysteps_verification.det_cat_fct(fc, obs, 1.0, ["CSI"])["CSI"]
    assert ref == 0.5
    assert float(categorical.csi(fc, obs, 1.0)) == 0.5
    assert float(categorical.csi(fc, obs, 1.0, compare=">=")) == 1.0
    with pytest.raises(ValueError, match='compare must be ">"'):
        categorical.csi(fc, obs, 1.0, compare="gt")


def test_fss_follows_pysteps_rule_on_quantised_values():
    fc, obs = quantised_pair()
    for thr in (0.5, 2.0):
        for scale in (1, 5):
            ref = pysteps_verification.fss(fc, obs, thr, scale)
            assert spatial.fss(fc, obs, thr, scale) == pytest.approx(ref, abs=1e-6)
    strict = spatial.fss(fc, obs, 2.0, 5, compare=">")
    assert strict == pytest.approx(pysteps_verification.fss(fc, obs, 2.0 + 1e-9, 5), abs=1e-6)


@pytest.mark.parametrize("gaps", [False, True])
def test_new_continuous_scores_match_pysteps(gaps):
    fc, obs = quantised_pair(seed=3)
    fc = fc + np.random.default_rng(1).normal(0, 0.3, fc.shape)
    if gaps:
        obs[:3] = np.nan
    valid = np.isfinite(fc) & np.isfinite(obs)
    ref = pysteps_verification.det_cont_fct(
        fc[valid], obs[valid], ["NMSE", "beta1", "beta2", "corr_s"]
    )
    assert continuous.nmse(fc, obs) == pytest.approx(ref["NMSE"], abs=1e-6)
    assert continuous.beta(fc, obs) == pytest.approx(ref["beta1"], abs=1e-6)
    assert continuous.beta2(fc, obs) == pytest.approx(ref["beta2"], abs=1e-6)
    assert continuous.spearman(fc, obs) == pytest.approx(ref["corr_s"], abs=1e-6)  # with ties


def blobs(centres, shape=(80, 90)):
    yy, xx = np.indices(shape)
    field = np.zeros(shape)
    for cy, cx, radius, amp in centres:
        field += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius * radius))
    return field


@pytest.mark.parametrize("gaps", [False, True])
def test_sal_matches_pysteps(gaps):
    obs = blobs([(20, 20, 5, 3.0), (55, 60, 7, 4.0)])
    fc = blobs([(25, 28, 6, 5.0), (50, 65, 4, 2.0)])
    if gaps:
        obs[:3] = np.nan
        fc[:3] = np.nan
    np.testing.assert_allclose(sal.sal(fc, obs), salscores.sal(fc, obs), atol=1e-6)
    # no rain in either field: every component undefined
    assert np.isnan(sal.sal(np.zeros((30, 30)), np.zeros((30, 30)))).all()


# ----------------------------------------------------------------- verify()


@pytest.fixture
def cube():
    """Synthetic radar quantised to 0.5 mm/h steps (values equal to the thresholds)."""
    radar = xnowcast.datasets.synthetic_radar(n_times=12, size=36, seed=7)
    return radar.copy(data=np.round(radar.values * 2) / 2)


def forecast_of(cube, init_idx, n_out, seed=0):
    rng = np.random.default_rng(seed)
    step = cube.time.values[1] - cube.time.values[0]
    init = pd.DatetimeIndex(cube.time.values[list(init_idx)])
    data = np.full((len(init), n_out, *cube.shape[1:]), np.nan, dtype=np.float32)
    for i, k in enumerate(init_idx):
        for j in range(n_out):
            if k + j + 1 < cube.sizes["time"]:
                truth = np.nan_to_num(cube.values[k + j + 1])
                data[i, j] = np.roll(truth, 1, axis=1) + 0.5 * rng.integers(0, 2, truth.shape)
    return xr.DataArray(
        data,
        dims=("init_time", "lead_time", "y", "x"),
        coords={"y": cube.y, "x": cube.x, **forecast_coords(init, step, n_out)},
        name=cube.name,
        attrs=cube.attrs,
    )


def test_verify_new_scores_and_compare(cube):
    fc = forecast_of(cube, [2, 5], 3)
    names = ["pofd", "hk", "sedi", "f1", "mcc", "acc", "nmse", "beta", "spearman", "sal"]
    scores = verify(fc, cube, names, thresholds=[1.0])
    assert {"sal_structure", "sal_amplitude", "sal_location"} <= set(scores.data_vars)
    f, o = fc.values[1, 0], cube.sel(time=fc.valid_time.values[1, 0]).values
    valid = np.isfinite(f) & np.isfinite(o)
    ref = pysteps_verification.det_cat_fct(f[valid], o[valid], 1.0, list(NEW_CATEGORICAL.values()))
    for name, ref_name in NEW_CATEGORICAL.items():
        assert float(scores[name][1, 0, 0]) == pytest.approx(ref[ref_name], abs=1e-6)
    cont = pysteps_verification.det_cont_fct(f[valid], o[valid], ["NMSE", "beta1", "corr_s"])
    assert float(scores["nmse"][1, 0]) == pytest.approx(cont["NMSE"], abs=1e-6)
    assert float(scores["beta"][1, 0]) == pytest.approx(cont["beta1"], abs=1e-6)
    assert float(scores["spearman"][1, 0]) == pytest.approx(cont["corr_s"], abs=1e-6)
    # compare=">=" changes the categorical rule where values equal the threshold
    reached = verify(fc, cube, ["csi", "fss"], thresholds=[1.0], compare=">=")
    default = verify(fc, cube, ["csi", "fss"], thresholds=[1.0])
    assert float(reached["csi"][1, 0, 0]) == pytest.approx(
        float(categorical.csi(f, o, 1.0, compare=">=")), rel=1e-12
    )
    assert not np.allclose(reached["csi"], default["csi"], equal_nan=True)
    xr.testing.assert_allclose(reached["fss"], default["fss"])  # FSS: ">=" either way
    with pytest.raises(ValueError, match="compare must be"):
        verify(fc, cube, ["csi"], thresholds=[1.0], compare="=>")


def test_verify_dim_pools_like_mean(cube):
    fc = forecast_of(cube, [1, 3, 5], 2)
    pooled = verify(fc, cube, ["mae", "csi", "fss"], thresholds=[1.0], dim="init_time")
    xr.testing.assert_identical(
        pooled.drop_attrs(),
        verify(fc, cube, ["mae", "csi", "fss"], thresholds=[1.0], mean=True).drop_attrs(),
    )
    everything = verify(fc, cube, ["csi"], thresholds=[1.0], dim=["init_time", "lead_time"])
    assert everything["csi"].dims == ("threshold",)
    f = fc.values.reshape(-1, *fc.shape[-2:])
    o = np.stack([cube.sel(time=t).values for t in fc.valid_time.values.ravel()])
    table = categorical.contingency_table(f, o, [1.0]).sum(axis=0)
    assert float(everything["csi"][0]) == pytest.approx(categorical.csi_from_table(table)[0])


def test_verify_accepts_aligned_observations(cube):
    fc = forecast_of(cube, [2, 4], 3)
    frames = np.stack(
        [np.stack([cube.sel(time=t).values for t in row]) for row in fc.valid_time.values]
    )
    aligned = fc.copy(data=frames)
    scores = verify(fc, aligned, ["mae", "csi", "fss"], thresholds=[1.0])
    expected = verify(fc, cube, ["mae", "csi", "fss"], thresholds=[1.0])
    xr.testing.assert_allclose(scores, expected)
    lazy = verify(fc.chunk({"init_time": 1}), aligned.chunk({"init_time": 1}), ["mae"])
    xr.testing.assert_allclose(lazy.compute()["mae"], expected["mae"])
    with pytest.raises(ValueError, match="coordinate differs"):
        verify(fc, aligned.assign_coords(lead_time=aligned.lead_time * 2), ["mae"])
    with pytest.raises(ValueError, match="needs the observed cube"):
        verify(fc, aligned, ["mae"], reference="persistence")


def test_a_damaged_observation_chunk_is_named_by_verify(tmp_path):
    """Issue 13 item 6: one line naming the store and the frame, not a codec traceback."""
    import glob
    from pathlib import Path

    from xnowcast.forecast import UnreadableInputError

    radar = xnowcast.datasets.synthetic_radar(n_times=12, size=16, seed=2)
    src = tmp_path / "obs.zarr"
    radar.to_dataset().to_zarr(
        src, encoding={radar.name: {"chunks": (1, 16, 16)}}, consolidated=False
    )
    (chunk,) = glob.glob(str(src / radar.name / "c" / "9" / "*" / "*"))
    Path(chunk).write_bytes(b"not zstd at all" * 8)
    archive = xnowcast.open_archive(src)
    fc = forecast_of(radar, [5, 7], 3).chunk({"init_time": 1})  # frame 9: valid at 7 + 2
    scores = verify(fc, archive, ["mae", "csi"], thresholds=[1.0])  # lazy: nothing read yet
    with pytest.raises(UnreadableInputError) as err:
        scores.compute()
    text = str(err.value)
    assert len(text.splitlines()) == 1
    assert text.startswith(f"{src}: input frame {pd.Timestamp(radar.time.values[9])} ")
    # forecasts whose valid times avoid the damaged frame still score, as from memory
    fine = verify(fc.isel(init_time=[0]), archive, ["mae", "csi"], thresholds=[1.0]).compute()
    expected = verify(fc.isel(init_time=[0]), radar, ["mae", "csi"], thresholds=[1.0])
    xr.testing.assert_allclose(fine, expected)


def test_sal_matches_pysteps_on_shared_radar(bom_glob):
    """Real rain fields: objects with several maxima, split by the watershed as in pysteps."""
    cube = xnowcast.open_archive(bom_glob)
    frames = np.nan_to_num(cube.isel(time=[20, 22, 23]).values.astype(np.float64))
    for fc, obs in ((frames[0], frames[1]), (frames[0], frames[2])):
        np.testing.assert_allclose(sal.sal(fc, obs), salscores.sal(fc, obs), atol=1e-6)


def test_plot_skill_labels_the_event_rule(cube):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from xnowcast.plotting import plot_skill

    fc = forecast_of(cube, [2, 5], 3)
    for compare, csi_rule in ((None, ">"), (">=", ">=")):
        scores = verify(
            fc, cube, ["csi", "fss"], thresholds=[1.0, 2.0], scales=[3], compare=compare
        )
        fig = plot_skill(scores)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert labels == [f"{csi_rule} 1 mm h-1", f"{csi_rule} 2 mm h-1"]
        assert fig.axes[1].get_title() == "FSS >= 1 mm h-1"
