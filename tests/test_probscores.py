"""Probabilistic scores against pysteps, properscoring and xskillscore (test-only references).

Synthetic ensembles: members are the observation plus noise, so every score
has a non-trivial value, and the values are continuous (no ties) unless a
test makes ties on purpose.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xnowcast
from xnowcast.conventions import forecast_coords
from xnowcast.verification import probabilistic, verify

probscores = pytest.importorskip("pysteps.verification.probscores")
ensscores = pytest.importorskip("pysteps.verification.ensscores")
properscoring = pytest.importorskip("properscoring")
xskillscore = pytest.importorskip("xskillscore")

THRESHOLDS = [0.5, 2.0]


def ensemble_pair(n_members=6, shape=(30, 34), seed=0, gaps=False):
    """An observed rain-like field and an ensemble of noisy copies ``(member, y, x)``."""
    rng = np.random.default_rng(seed)
    obs = rng.gamma(0.6, 2.0, shape)
    ens = obs * rng.uniform(0.5, 1.5, (n_members, *shape)) + rng.normal(0, 0.5, (n_members, *shape))
    if gaps:
        obs[:4, :5] = np.nan
        ens[1, rng.random(shape) < 0.05] = np.nan
    return ens, obs


def valid_flat(ens, obs):
    valid = np.isfinite(obs) & np.isfinite(ens).all(axis=0)
    return ens[:, valid], obs[valid]


@pytest.mark.parametrize("gaps", [False, True])
def test_crps_matches_pysteps_properscoring_and_xskillscore(gaps):
    ens, obs = ensemble_pair(gaps=gaps)
    ours = probabilistic.crps(ens, obs)
    assert ours == pytest.approx(probscores.CRPS(ens, obs), abs=1e-6)
    e, o = valid_flat(ens, obs)
    assert ours == pytest.approx(properscoring.crps_ensemble(o, e.T).mean(), abs=1e-6)
    # fair CRPS (Ferro 2014) by its definition: member pairs i != j
    m = e.shape[0]
    pairs = np.abs(e[:, None] - e[None, :]).sum(axis=(0, 1)) / (2 * m * (m - 1))
    fair = (np.abs(e - o).mean(axis=0) - pairs).mean()
    stats = probabilistic.crps_stats(ens, obs)
    assert probabilistic.crps_fair_from_stats(stats) == pytest.approx(fair, abs=1e-9)
    plain = xskillscore.crps_ensemble(
        xr.DataArray(o, dims="p"), xr.DataArray(e, dims=("member", "p"))
    )
    assert ours == pytest.approx(float(plain), abs=1e-6)


def test_brier_score_and_decomposition():
    ens, obs = ensemble_pair(n_members=8, gaps=True)
    e, o = valid_flat(ens, obs)
    stats = probabilistic.probability_stats(ens, obs, THRESHOLDS)
    bs = probabilistic.brier_from_stats(stats)
    for j, t in enumerate(THRESHOLDS):
        ref = xskillscore.brier_score(
            xr.DataArray(o >= t, dims="p"), xr.DataArray(e >= t, dims=("member", "p"))
        )
        assert bs[j] == pytest.approx(float(ref), abs=1e-6)
        ref = properscoring.threshold_brier_score(o, e.T, t).mean()
        # properscoring counts x > t; no value equals a threshold here
        assert bs[j] == pytest.approx(ref, abs=1e-6)
    rel = probabilistic.brier_reliability_from_stats(stats)
    res = probabilistic.brier_resolution_from_stats(stats)
    unc = probabilistic.brier_uncertainty_from_stats(stats)
    np.testing.assert_allclose(rel - res + unc, bs, atol=1e-12)
    # the decomposition by hand, over the distinct probabilities
    p = (e >= THRESHOLDS[0]).mean(axis=0)
    event = (o >= THRESHOLDS[0]).astype(float)
    climate = event.mean()
    levels = np.unique(p)
    rel_ref = sum((p == v).sum() * (v - event[p == v].mean()) ** 2 for v in levels) / p.size
    res_ref = sum((p == v).sum() * (event[p == v].mean() - climate) ** 2 for v in levels) / p.size
    assert rel[0] == pytest.approx(rel_ref, abs=1e-12)
    assert res[0] == pytest.approx(res_ref, abs=1e-12)
    assert unc[0] == pytest.approx(climate * (1 - climate), abs=1e-12)


def test_reliability_diagram_matches_pysteps():
    ens, obs = ensemble_pair(n_members=12, shape=(60, 60), gaps=True)
    stats = probabilistic.probability_stats(ens, obs, THRESHOLDS)
    for j, t in enumerate(THRESHOLDS):
        prob = np.mean(ens >= t, axis=0)
        prob[~np.isfinite(ens).all(axis=0)] = np.nan
        r, f = probscores.reldiag(prob, obs, t, n_bins=10, min_count=1)
        np.testing.assert_allclose(
            probabilistic.reliability_forecast_from_stats(stats, 10)[j], r, atol=1e-12
        )
        np.testing.assert_allclose(
            probabilistic.reliability_from_stats(stats, 10)[j], f, atol=1e-12
        )


@pytest.mark.parametrize("n_members", [5, 9, 20])
def test_roc_curve_and_area_match_pysteps(n_members):
    ens, obs = ensemble_pair(n_members=n_members, shape=(40, 40))
    stats = probabilistic.probability_stats(ens, obs, THRESHOLDS)
    for j, t in enumerate(THRESHOLDS):
        prob = np.mean(ens >= t, axis=0)
        pofd, pod, area = probscores.ROC_curve(prob, obs, t, n_prob_thrs=10, compute_area=True)
        np.testing.assert_allclose(probabilistic.roc_pod_from_stats(stats, 10)[j], pod, atol=1e-12)
        np.testing.assert_allclose(
            probabilistic.roc_pofd_from_stats(stats, 10)[j], pofd, atol=1e-12
        )
        assert probabilistic.roc_area_from_stats(stats, 10)[j] == pytest.approx(area, abs=1e-12)


def test_rank_histogram_matches_pysteps_and_xskillscore():
    ens, obs = ensemble_pair(n_members=7, gaps=True)
    ours = probabilistic.rank_histogram(ens, obs)
    np.testing.assert_allclose(ours, ensscores.rankhist(ens, obs), atol=1e-12)
    e, o = valid_flat(ens, obs)
    ref = xskillscore.rank_histogram(
        xr.DataArray(o, dims="p"), xr.DataArray(e, dims=("member", "p")), dim="p"
    )
    np.testing.assert_allclose(ours * o.size, ref.values, atol=1e-9)


def test_rank_histogram_splits_ties_evenly():
    obs = np.zeros((1, 3))
    ens = np.zeros((3, 1, 3))
    ens[:, 0, 2] = [1.0, 2.0, 3.0]  # rank 0; the other pixels tie with all 3 members
    counts = probabilistic.rank_stats(ens, obs)
    np.testing.assert_allclose(counts, [1 + 2 / 4, 2 / 4, 2 / 4, 2 / 4])


def test_spread_skill_ratio():
    ens, obs = ensemble_pair(n_members=10, gaps=True)
    e, o = valid_flat(ens, obs)
    spread = np.sqrt(11 / 10 * e.var(axis=0, ddof=1).mean())
    rmse = np.sqrt(((e.mean(axis=0) - o) ** 2).mean())
    assert probabilistic.spread_skill(ens, obs) == pytest.approx(spread / rmse, rel=1e-12)
    # a reliable ensemble (observation drawn like a member) scores about 1
    rng = np.random.default_rng(3)
    members = rng.normal(size=(10, 200, 200))
    assert probabilistic.spread_skill(members, rng.normal(size=(200, 200))) == pytest.approx(
        1.0, abs=0.05
    )
    with pytest.raises(ValueError, match="at least 2 members"):
        probabilistic.spread_skill(ens[:1], obs)


def test_kernels_check_shapes():
    with pytest.raises(ValueError, match=r"\(..., member, y, x\)"):
        probabilistic.crps(np.zeros((4, 5)), np.zeros((4, 5)))
    with pytest.raises(TypeError, match="numeric"):
        probabilistic.crps(np.zeros((2, 4, 5)), np.full((4, 5), "a"))


# ----------------------------------------------------------------- verify()


def ensemble_forecast(obs: xr.DataArray, init_idx, n_out: int, n_members: int = 5, seed: int = 0):
    """A labelled ensemble ``(init_time, member, lead_time, y, x)``: noisy copies of the truth."""
    rng = np.random.default_rng(seed)
    step = obs.time.values[1] - obs.time.values[0]
    init = pd.DatetimeIndex(obs.time.values[list(init_idx)])
    data = np.full((len(init), n_members, n_out, *obs.shape[1:]), np.nan, dtype=np.float32)
    for i, k in enumerate(init_idx):
        for j in range(n_out):
            if k + j + 1 < obs.sizes["time"]:
                truth = obs.values[k + j + 1]
                noise = rng.gamma(0.5, 0.6, (n_members, *truth.shape))
                data[i, :, j] = truth * rng.uniform(0.6, 1.4, (n_members, 1, 1)) + noise
    coords = {
        **forecast_coords(init, step, n_out),
        "member": xr.DataArray(
            np.arange(n_members), dims="member", attrs={"standard_name": "realization"}
        ),
        **{c: obs.coords[c] for c in ("y", "x") if c in obs.coords},
    }
    return xr.DataArray(
        data,
        dims=("init_time", "member", "lead_time", "y", "x"),
        coords=coords,
        name=obs.name,
        attrs=obs.attrs,
    )


@pytest.fixture
def cube():
    return xnowcast.datasets.synthetic_radar(n_times=14, size=32, seed=4)


PROB_METRICS = ["crps", "brier", "reliability", "roc", "rank_histogram", "spread_skill"]


def test_verify_ensemble_as_the_issue_writes_it(cube):
    ens = ensemble_forecast(cube, init_idx=[3, 6], n_out=3)
    scores = verify(ens, cube, metrics=PROB_METRICS, thresholds=[1, 5])
    assert scores["crps"].dims == ("init_time", "lead_time")
    assert scores["brier"].dims == ("init_time", "lead_time", "threshold")
    assert scores["reliability"].dims == ("init_time", "lead_time", "threshold", "probability_bin")
    assert scores["roc_pod"].dims[-1] == "probability_threshold"
    assert scores["rank_histogram"].dims == ("init_time", "lead_time", "rank")
    assert {"crps_fair", "brier_reliability", "brier_resolution", "brier_uncertainty"} <= set(
        scores.data_vars
    )
    assert {"reliability_forecast", "reliability_count", "roc_area", "spread_skill"} <= set(
        scores.data_vars
    )
    for i in range(2):
        for j in range(3):
            e = ens.values[i, :, j].astype(np.float64)
            o = cube.sel(time=ens.valid_time.values[i, j]).values
            at = scores.isel(init_time=i, lead_time=j)
            assert float(at["crps"]) == pytest.approx(probscores.CRPS(e, o), abs=1e-6)
            np.testing.assert_allclose(at["rank_histogram"], ensscores.rankhist(e, o), atol=1e-9)
            for t in (1, 5):
                prob = np.mean(e >= t, axis=0)
                prob[~np.isfinite(e).all(axis=0)] = np.nan
                _, _, area = probscores.ROC_curve(prob, o, t, compute_area=True)
                assert float(at["roc_area"].sel(threshold=t)) == pytest.approx(
                    area, abs=1e-6, nan_ok=True
                )


def test_verify_ensemble_pools_with_dim_and_is_lazy(cube):
    ens = ensemble_forecast(cube, init_idx=[2, 4, 6], n_out=2)
    lazy = verify(
        ens.chunk({"init_time": 1}),
        cube.chunk({"time": 3}),
        ["crps", "brier"],
        thresholds=[1.0],
        dim="init_time",
    )
    assert lazy["crps"].chunks is not None
    pooled = lazy.compute()
    assert pooled["crps"].dims == ("lead_time",)
    for j in range(2):
        e = np.concatenate([ens.values[i, :, j] for i in range(3)], axis=-1).astype(float)
        o = np.concatenate(
            [cube.sel(time=ens.valid_time.values[i, j]).values for i in range(3)], -1
        )
        assert float(pooled["crps"][j]) == pytest.approx(probscores.CRPS(e, o), abs=1e-6)


def test_verify_ensemble_errors_name_the_fix(cube):
    ens = ensemble_forecast(cube, init_idx=[3], n_out=2)
    fc = ens.isel(member=0, drop=True)
    with pytest.raises(ValueError, match="probabilistic.*no member dimension"):
        verify(fc, cube, ["crps"])
    obs_ens = ens.rename(init_time="i").isel(i=0, lead_time=0, drop=True)
    with pytest.raises(ValueError, match="ensemble against an ensemble"):
        verify(ens, obs_ens.expand_dims(time=cube.time.values[:1]), ["crps"])
    # deterministic scores of an ensemble: one per member
    per_member = verify(ens, cube, ["mae"])
    assert per_member["mae"].dims == ("init_time", "member", "lead_time")


def test_reliability_and_rank_histogram_plots(cube, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from xnowcast.plotting import plot_rank_histogram, plot_reliability

    ens = ensemble_forecast(cube, init_idx=[3, 6], n_out=2)
    scores = verify(ens, cube, ["reliability", "rank_histogram"], thresholds=[0.5, 1.0])
    fig = scores.nowcast.plot_reliability(lead_time=2)
    top = fig.axes[0]
    assert len(top.lines) == 3  # diagonal + one line per threshold
    # pooled with counts: the plotted points are the summed events over the summed counts
    at = scores.isel(lead_time=1).sel(threshold=0.5)
    count = at["reliability_count"].sum("init_time")
    expected = (at["reliability"] * at["reliability_count"]).fillna(0).sum("init_time") / count
    np.testing.assert_allclose(top.lines[1].get_ydata(), expected.values, equal_nan=True)
    fig = plot_rank_histogram(scores)
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(
        heights, scores["rank_histogram"].mean(["init_time", "lead_time"]).values
    )
    out = tmp_path / "rel.png"
    plot_reliability(scores, path=out)
    assert out.stat().st_size > 0
    with pytest.raises(FileExistsError):
        plot_reliability(scores, path=out)
    plot_rank_histogram(scores, path=out, overwrite=True)
    with pytest.raises(ValueError, match="needs the score variables"):
        plot_rank_histogram(scores[["reliability"]])
    with pytest.raises(ValueError, match="lead_time=9"):
        plot_reliability(scores, lead_time=9)


def test_cli_verifies_an_ensemble_file(cube, tmp_path):
    from xnowcast.cli import main

    ens = ensemble_forecast(cube, init_idx=[3, 6], n_out=2)
    fc_path, obs_path, out = tmp_path / "ens.nc", tmp_path / "obs.nc", tmp_path / "s.csv"
    ens.to_dataset().to_netcdf(fc_path)
    cube.to_dataset().to_netcdf(obs_path)
    args = ["verify", str(fc_path), str(obs_path), "--out", str(out), "--no-progress"]
    args += ["--metrics", "crps,rank_histogram", "--thresholds", "1", "--dim", "init_time"]
    assert main(args) == 0
    table = pd.read_csv(out)
    pooled = verify(ens, cube, ["crps", "rank_histogram"], thresholds=[1.0], dim="init_time")
    crps = table[table.metric == "crps"].sort_values("lead_time_min")
    np.testing.assert_allclose(crps.value, pooled["crps"].values, rtol=1e-6)
    hist = table[table.metric == "rank_histogram"]
    assert len(hist) == 2 * 6 and "rank" in table.columns


def test_progress_bar_only_on_a_terminal():
    import io

    import dask.array as dsa

    from xnowcast.progress import TerminalProgress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log, tty = io.StringIO(), Terminal()
    for stream in (log, tty):
        with TerminalProgress(stream=stream):
            dsa.ones(40, chunks=4).sum().compute()
    assert log.getvalue() == ""
    assert "scoring" in tty.getvalue() and "task" in tty.getvalue()
