"""The steps ensemble model: AR(2) levels, ensemble mean, determinism, batch resume, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xnowcast
from xnowcast.batch import forecast_archive
from xnowcast.batch.store import MISSING, STATUS
from xnowcast.cascade import bandpass_filters, decompose, valid_level_correlations
from xnowcast.cli import main
from xnowcast.conventions import normalize_cube
from xnowcast.datasets import synthetic_radar
from xnowcast.extrapolation.cascade import extrapolate_cascade
from xnowcast.io.archive import open_zarr_store
from xnowcast.models import get_model, run_model
from xnowcast.models.steps import mask_grow
from xnowcast.transforms import get_transform

pytest.importorskip("cv2")

LINEAR = {"name": "scale", "vmin": -10.0, "vmax": 10.0}
NO_BPS = {"motion_perturbation": "none"}
PLAIN = dict(matching="none", mask="none", transform=LINEAR, n_levels=5, **NO_BPS)


def _correlated_frames(n=4, size=64, a=0.8, seed=0):
    """Red-noise frames that lose correlation with time (an AR(1) in time), values ~ 0 +- 3."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    k[0, 0] = 1.0

    def red():
        return np.fft.irfft2(np.fft.rfft2(rng.normal(size=(size, size))) * k**-1.2, s=(size, size))

    frames = [red()]
    for _ in range(n - 1):
        frames.append(a * frames[-1] + np.sqrt(1 - a**2) * red())
    frames = np.stack(frames)
    return (3 * frames / frames.std()).astype(np.float32)


def test_ar2_evolution_keeps_each_levels_variance(motionless):
    frames = _correlated_frames()
    model = motionless(get_model("steps", members=6, n_in=4, n_out=12, **PLAIN))
    ens = model.predict(frames[None])[0]
    filters = bandpass_filters(frames.shape[1:], 5)
    last = decompose(frames[-1], filters).std(axis=(1, 2))
    for lead in (0, 5, 11):
        got = np.mean([decompose(m[lead], filters).std(axis=(1, 2)) for m in ens], axis=0)
        np.testing.assert_allclose(got[1:], last[1:], rtol=0.2)
    # the small scales have decorrelated from the last frame by the last lead time
    fine = [decompose(m[-1], filters)[-1] for m in ens]
    obs_fine = decompose(frames[-1], filters)[-1]
    corr = np.mean([np.corrcoef(f.ravel(), obs_fine.ravel())[0, 1] for f in fine])
    assert corr < 0.5


def test_ensemble_mean_approaches_the_deterministic_cascade(motionless):
    frames = _correlated_frames(size=48, seed=4)
    # the deterministic cascade's AR(2): its bound and its lags 1 and 2 (the defaults':
    # test_steps_lag2.py)
    model = motionless(
        get_model(
            "steps", members=32, n_in=4, n_out=4, lag2_adjust="stationary", ar_lags=2, **PLAIN
        )
    )
    ens = model.predict(frames[None])[0]
    det = extrapolate_cascade(
        frames,
        np.zeros((2, 48, 48), "float32"),
        4,
        transform=get_transform(LINEAR),
        n_levels=5,
        matching="none",
    )
    member_error = np.sqrt(((ens - det) ** 2).mean())
    mean_error = np.sqrt(((ens.mean(axis=0) - det) ** 2).mean())
    assert mean_error < 0.3 * member_error  # 1 / sqrt(32) = 0.18 for independent members
    first8 = np.sqrt(((ens[:8].mean(axis=0) - det) ** 2).mean())
    assert mean_error < first8  # more members, closer


def test_members_are_the_same_under_any_chunking_and_differ_with_the_seed():
    cube = synthetic_radar(n_times=10, size=40)
    kw = dict(members=4, seed=3, n_in=4, n_out=3)
    one = xnowcast.forecast(cube, "steps", chunk_members=1, **kw)
    assert one.chunks is not None and one.chunks[0] == (1, 1, 1, 1)
    a = one.values
    b = xnowcast.forecast(cube, "steps", chunk_members=3, **kw).values
    model = get_model("steps", **kw).for_cube(*normalize_cube(cube))  # the cube's grid
    c = run_model(model, cube.values[-4:][None])[0]
    assert np.array_equal(a, b, equal_nan=True) and np.array_equal(a, c, equal_nan=True)
    part = run_model(model, cube.values[-4:][None], members=[3, 1])[0]
    assert np.array_equal(part, a[[3, 1]], equal_nan=True)
    other = xnowcast.forecast(cube, "steps", **{**kw, "seed": 4}).values
    assert not np.array_equal(a, other, equal_nan=True)
    assert not np.array_equal(a[0], a[1], equal_nan=True)  # members differ


def test_ensemble_labels_dims_and_attributes():
    cube = synthetic_radar(n_times=12, size=32)
    one = xnowcast.forecast(cube, "steps", members=2, seed=5, n_in=4, n_out=2)
    assert one.dims == ("member", "lead_time", "y", "x")
    assert one["member"].values.tolist() == [0, 1]
    assert one["member"].attrs["standard_name"] == "realization"
    params = xnowcast.forecast(cube, "persistence", n_in=4, n_out=2).attrs
    assert "members" not in params["xnowcast_model_params"]  # deterministic: unchanged
    recorded = __import__("json").loads(one.attrs["xnowcast_model_params"])
    assert recorded["members"] == 2 and recorded["seed"] == 5
    every = xnowcast.forecast(
        cube, "steps", members=2, seed=5, n_in=4, n_out=2, init_times="all", chunk_init_times=3
    )
    assert every.dims == ("init_time", "member", "lead_time", "y", "x")
    assert every.sizes["init_time"] == 9
    np.testing.assert_array_equal(every.isel(init_time=-1).values, one.values)


def test_options_run_and_motion_perturbations_spread_the_members():
    cube = synthetic_radar(n_times=8, size=48, seed=2)
    frames = cube.values[-4:][None]
    base = dict(members=3, seed=0, n_in=4, n_out=6)
    for extra in (
        {"noise": "parametric"},
        {"noise": "local", "noise_kwargs": {"window": 24}},
        {"mask": "threshold", "matching": "mean"},
        {"ar_order": 1, "n_levels": 4},
    ):
        out = get_model("steps", **base, **NO_BPS, **extra).predict(frames)
        assert out.shape == (1, 3, 6, 48, 48) and np.isfinite(out).any()
    still = get_model("steps", **base, **NO_BPS).predict(frames)
    moved = get_model(
        "steps",
        **base,
        motion_perturbation="bps",
        motion_perturbation_kwargs={"km_per_pixel": 0.2, "minutes_per_step": 10},
    ).predict(frames)
    assert not np.array_equal(still, moved, equal_nan=True)


def test_missing_data_stays_missing_and_no_rain_gives_no_rain():
    cube = synthetic_radar(n_times=8, size=40, seed=1)
    frames = cube.values[-4:].copy()
    frames[:, :10, :10] = np.nan
    out = get_model("steps", members=2, n_in=4, n_out=2, **NO_BPS).predict(frames[None])
    assert np.isnan(out[0, :, :, :8, :8]).all()
    dry = get_model("steps", members=2, n_in=4, n_out=2, **NO_BPS)
    assert np.nanmax(dry.predict(np.zeros((1, 4, 32, 32), "f4"))) == 0.0


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="members must be an integer >= 1"):
        get_model("steps", members=0)
    with pytest.raises(TypeError, match="members must be an integer"):
        get_model("steps", members=2.5)
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        get_model("steps", seed=1.5)
    with pytest.raises(TypeError, match="seed must be a non-negative integer"):
        get_model("steps", seed="0")
    with pytest.raises(ValueError, match="mask must be one of"):
        get_model("steps", mask="sometimes")
    with pytest.raises(TypeError, match="motion_perturbation='bps'"):
        get_model("steps", motion_perturbation_kwargs={"km_per_pixel": 1}, **NO_BPS)
    with pytest.raises(ValueError, match="member indices must lie in 0 .. 1"):
        get_model("steps", members=2, n_in=4, n_out=1).predict(np.zeros((1, 4, 8, 8)), [2])
    with pytest.raises(TypeError, match="deterministic; members= is for ensemble"):
        run_model(get_model("persistence", n_in=2, n_out=1), np.zeros((1, 2, 4, 4)), [0])
    cube = synthetic_radar(n_times=6, size=16)
    with pytest.raises(TypeError, match="chunk_members is for ensemble models"):
        xnowcast.forecast(cube, "persistence", n_in=2, n_out=1, chunk_members=2)


SLOW_STEPS = '''
import os, time
from xnowcast.models import register_model
from xnowcast.models.steps import Steps


@register_model("slow-steps", overwrite=True)
class SlowSteps(Steps):
    """Steps, sleeping $XN_SLOW_SECONDS per call (crash tests)."""

    name = "slow-steps"

    def predict(self, inputs, members=None):
        time.sleep(float(os.environ.get("XN_SLOW_SECONDS", "0")))
        return super().predict(inputs, members)
'''


def _open(path) -> xr.Dataset:
    return open_zarr_store(path, decode_coords="all")


def test_two_member_batch_job_survives_a_kill_and_resumes_bit_identical(tmp_path, monkeypatch):
    (tmp_path / "slowsteps.py").write_text(SLOW_STEPS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import slowsteps  # noqa: F401  (registers "slow-steps" here too)

    src = tmp_path / "radar.nc"
    synthetic_radar(n_times=24, size=32, seed=1).to_dataset().to_netcdf(src)
    out, clean = tmp_path / "killed.zarr", tmp_path / "clean.zarr"
    args = ["batch", str(src), "--model", "slow-steps", "--members", "2", "--seed", "7"]
    args += ["--n-in", "4", "--n-out", "2", "--chunk-init-times", "3", "--no-progress"]
    code = "import sys, slowsteps; from xnowcast.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {
        **os.environ,
        "XN_SLOW_SECONDS": "0.5",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args, "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    total = 21
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and int((_open(out)[STATUS].values != MISSING).sum()) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    recorded = int((_open(out)[STATUS].values != MISSING).sum())
    assert 3 <= recorded < total
    monkeypatch.setenv("XN_SLOW_SECONDS", "0")
    cube = xnowcast.open_archive(src)
    params = {"members": 2, "seed": 7, "n_in": 4, "n_out": 2}
    resumed = forecast_archive(
        cube, "slow-steps", out, chunk_init_times=3, model_params=params
    ).run(progress=False)
    assert resumed.skipped == recorded and resumed.done == total - recorded
    forecast_archive(
        cube, "slow-steps", clean, chunk_init_times=3, chunk_members=2, model_params=params
    ).run(progress=False)
    a, b = _open(out), _open(clean)
    name = "precip_intensity"
    assert a[name].dims == ("init_time", "member", "lead_time", "y", "x")
    assert a[name].encoding["chunks"][1] == 1  # one member per zarr chunk
    np.testing.assert_array_equal(a[name].values, b[name].values)
    np.testing.assert_array_equal(a[STATUS].values, b[STATUS].values)


def test_cli_forecast_members_and_seed(tmp_path, capsys):
    src = tmp_path / "radar.nc"
    synthetic_radar(n_times=10, size=32).to_dataset().to_netcdf(src)
    out = tmp_path / "ens.zarr"
    args = ["forecast", str(src), "--model", "steps", "--members", "3", "--seed", "4"]
    assert main([*args, "--n-in", "4", "--n-out", "2", "--out", str(out)]) == 0
    assert "member=3" in capsys.readouterr().out
    ens = _open(out)["precip_intensity"]
    assert ens.dims == ("member", "lead_time", "y", "x")
    assert ens["member"].attrs["standard_name"] == "realization"
    same = xnowcast.forecast(
        xnowcast.open_archive(src), "steps", members=3, seed=4, n_in=4, n_out=2
    )
    np.testing.assert_array_equal(ens.values, same.values)


BPS = {
    "motion_perturbation": "bps",
    "motion_perturbation_kwargs": {"km_per_pixel": 0.5, "minutes_per_step": 5},
}


@pytest.mark.parametrize("options", [{"mask": "none", **NO_BPS}, BPS])
def test_torch_path_on_the_cpu_equals_the_cpu_kernels(options):
    pytest.importorskip("torch")
    frames = synthetic_radar(n_times=8, size=48, seed=2).values[-4:]
    model = get_model("steps", members=2, n_in=4, n_out=5, **options)
    prepared = model.prepare(frames)
    cpu = model.member(prepared, 1)
    torch_cpu = model.member(prepared, 1, device="cpu")
    np.testing.assert_array_equal(np.isnan(cpu), np.isnan(torch_cpu))
    np.testing.assert_allclose(torch_cpu, cpu, atol=1e-3, rtol=1e-4)
    assert model.with_settings(device="cpu").accelerator() is None


def test_gpu_equals_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    frames = synthetic_radar(n_times=8, size=48, seed=2).values[-4:]
    model = get_model("steps", members=3, n_in=4, n_out=5, **BPS)
    cpu = model.with_settings(device="cpu").predict(frames[None])
    gpu = model.with_settings(device="cuda").predict(frames[None])
    np.testing.assert_allclose(gpu, cpu, atol=1e-3, rtol=1e-4)


def test_bps_takes_the_grid_of_the_cube_and_asks_for_it_without_one():
    cube = synthetic_radar(n_times=8, size=32)
    ens = xnowcast.forecast(cube, "steps", members=2, n_in=4, n_out=2, motion_perturbation="bps")
    recorded = __import__("json").loads(ens.attrs["xnowcast_model_params"])
    grid = recorded["motion_perturbation_kwargs"]
    assert grid["minutes_per_step"] == 5.0 and grid["km_per_pixel"] > 0
    explicit = xnowcast.forecast(
        cube,
        "steps",
        members=2,
        n_in=4,
        n_out=2,
        motion_perturbation="bps",
        motion_perturbation_kwargs={k: grid[k] for k in ("km_per_pixel", "minutes_per_step")},
    )
    np.testing.assert_array_equal(ens.values, explicit.values)
    frames = cube.values[-4:][None]
    model = get_model("steps", members=1, n_in=4, n_out=2, motion_perturbation="bps")
    with pytest.raises(ValueError, match="km_per_pixel"):
        model.predict(frames)
    default = get_model("steps", members=1, n_in=4, n_out=2)  # bps is the default
    assert default.motion_perturbation == "bps"
    with pytest.raises(ValueError, match="or set motion_perturbation='none'"):
        default.predict(frames)
    still = get_model("steps", members=1, n_in=4, n_out=2, motion_perturbation="none")
    assert np.isfinite(still.predict(frames)).any()


def test_bps_and_the_speed_limit_take_a_latitude_longitude_grid():
    """A latitude-longitude cube (MRMS's kind of grid): its cells at the central latitude give
    bps its km per pixel (it used to ask for them) and the motion its speed limit."""
    cube = synthetic_radar(n_times=8, size=32).drop_vars(["lat", "lon", "crs"])
    geo = cube.rename(y="lat", x="lon").assign_coords(
        lat=("lat", 45.0 - 0.01 * np.arange(32), {"units": "degrees_north"}),
        lon=("lon", -90.0 + 0.01 * np.arange(32), {"units": "degrees_east"}),
    )
    ens = xnowcast.forecast(geo, "steps", members=2, n_in=4, n_out=2)
    recorded = json.loads(ens.attrs["xnowcast_model_params"])
    dy, dx = 1111.95, 1111.95 * np.cos(np.deg2rad(45.0 - 0.155))  # at the central latitude
    km = recorded["motion_perturbation_kwargs"]["km_per_pixel"]
    assert km == pytest.approx((dy + dx) / 2000, rel=1e-4)
    assert recorded["max_speed"] == pytest.approx(100 * 300 / dx, rel=1e-4)  # m/s x s / m
    assert np.isfinite(ens.values).any()


def test_motion_pairs_left_to_the_cube_span_ten_minutes():
    """As the optical-flow model: 2 pairs of 5-minute frames, 5 of 2-minute frames."""
    cube = synthetic_radar(n_times=8, size=32)
    fast = cube.assign_coords(time=pd.date_range("2022-07-01", periods=8, freq="2min"))

    def pairs(c, **kw):
        ens = xnowcast.forecast(c, "steps", members=1, n_in=7, n_out=1, **kw)
        return json.loads(ens.attrs["xnowcast_model_params"])["n_flows"]

    assert (pairs(cube), pairs(fast), pairs(fast, n_flows=2)) == (2, 5, 2)


def test_missing_pixels_of_older_frames_do_not_correlate_the_small_scales(motionless):
    # rain everywhere, independent from frame to frame: the cascade levels are uncorrelated;
    # a strip missing in the older frames (advected in from outside) must not correlate them
    frames = np.random.default_rng(0).uniform(1, 20, (4, 64, 64)).astype("float32")
    frames[1:3, :, :24] = np.nan
    model = motionless(get_model("steps", members=1, n_in=4, n_out=1, n_levels=4, **NO_BPS))
    phi = model.prepare(frames).phi.astype(np.float64)
    gamma1 = phi[:, 0] / (1 - phi[:, 1])
    assert np.abs(gamma1[1:]).max() < 0.2, gamma1


def _persistent_frames_with_inflow():
    """Rain that does not change in time; the older frames miss a strip (advected in from
    beyond the edge), where the last frame has rain."""
    rng = np.random.default_rng(3)
    field = rng.gamma(0.6, 4.0, (64, 64)).astype("float32") + 0.5
    frames = np.repeat(field[None], 4, axis=0)
    frames[:3, :, :20] = np.nan
    return frames


def test_valid_level_correlations_leave_the_missing_band_out():
    frames = _persistent_frames_with_inflow()
    filters = bandpass_filters((64, 64), 4)
    filled = np.where(np.isfinite(frames), frames, 0.0).astype("float32")
    valid = np.isfinite(frames[-1]) & np.isfinite(frames[0])
    last, earlier = decompose(filled[-1], filters), decompose(filled[0], filters)
    same = valid_level_correlations(last, earlier, valid)
    whole = valid_level_correlations(last, earlier, np.ones((64, 64), bool))
    # the same rain where both are observed: the small scales correlate fully, the large ones
    # feel the filled band's edge through their wide kernels; over the whole grid all are lower
    assert (same[2:] > 0.95).all() and (whole < same - 0.1).all(), (same, whole)
    assert valid_level_correlations(last, earlier, np.zeros((64, 64), bool)).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="two cascades"):
        valid_level_correlations(last, earlier[:2], valid)


def test_ar_correlations_valid_is_the_default_and_filled_is_pysteps(motionless):
    frames = _persistent_frames_with_inflow()

    def gamma1(**options):
        model = get_model("steps", members=1, n_in=4, n_out=1, n_levels=4, **NO_BPS, **options)
        phi = motionless(model).prepare(frames).phi.astype(np.float64)
        return phi[:, 0] / (1 - phi[:, 1])

    valid, filled = gamma1(), gamma1(ar_correlations="filled")
    assert get_model("steps").get_params()["ar_correlations"] == "valid"
    # the rain persists: where both frames see it, the small scales keep their correlation;
    # counting the missing strip as no rain made them look less persistent than they are (the
    # large scales of a 64-pixel grid see the strip's filled edge either way)
    assert valid[-1] > 0.9 and (valid[2:] > filled[2:] + 0.1).all(), (valid, filled)
    assert (gamma1(ar_correlations="valid") == valid).all()
    with pytest.raises(ValueError, match="ar_correlations"):
        get_model("steps", ar_correlations="masked")


def _band_model(monkeypatch, columns):
    """8 bps members of a still band (motion 0.01 px per step along +x: the perturbations'
    direction), shifted several pixels per step, beyond a mask of one pixel."""
    frames = np.zeros((4, 64, 64), "float32")
    frames[:, 16:48, columns] = 8.0
    grid = {"km_per_pixel": 0.5, "minutes_per_step": 5}
    model = get_model(
        "steps",
        members=8,
        seed=1,
        n_in=4,
        n_out=8,
        n_levels=4,
        motion_perturbation="bps",
        motion_perturbation_kwargs=grid,
        mask_kwargs={"grow": 0, "rim": 1},
    )
    flow = np.zeros((2, 64, 64), "float32")
    flow[0] = 0.01
    monkeypatch.setattr(model._motion, "motion", lambda frames: flow)
    prepared = model.prepare(frames)
    shifts = np.stack([model._motion_shifts(prepared, m)[-1] for m in range(8)])
    return model, frames, shifts


def test_bps_members_keep_their_rain_area_under_the_incremental_mask(monkeypatch):
    model, frames, shifts = _band_model(monkeypatch, slice(24, 40))
    inside = (np.abs(shifts[:, 0]) < 20) & (np.abs(shifts[:, 1]) < 12)  # the band stays in
    assert inside.sum() >= 4 and np.abs(shifts[inside]).max() > 6
    ens = np.nan_to_num(model.predict(frames[None])[0])
    wet = (ens[inside] > 0).sum(axis=(2, 3))
    # the mask follows each member's own shifted rain: its area stays the observed one
    np.testing.assert_allclose(wet, np.repeat(wet[:, :1], wet.shape[1], axis=1), rtol=0.02)


def test_bps_members_get_no_rain_from_the_far_side_of_the_domain(monkeypatch):
    model, frames, shifts = _band_model(monkeypatch, slice(44, 60))
    assert shifts[:, 0].max() > 8  # a member moved beyond the right edge
    ens = np.nan_to_num(model.predict(frames[None])[0])
    assert not (ens[:, :, :, :4] > 0).any()


def test_bps_members_move_their_rain_and_their_inflow_edge_with_their_own_trajectories(
    monkeypatch,
):
    # as pysteps, where each member's perturbed trajectories leave the domain in their own
    # places: a pixel whose shifted trajectory starts outside is missing (fill), one whose
    # shifted trajectory starts inside has the member's rain, even where the motion alone
    # would start outside
    model, frames, shifts = _band_model(monkeypatch, slice(24, 40))
    ens = model.predict(frames[None])[0][:, -1]  # (members, y, x) at the last lead
    x = np.arange(64)
    distinct = set()
    for member, (sx, sy) in zip(ens, shifts):
        column = x - sx  # where each column's trajectory starts
        inside, outside = (column >= 1) & (column <= 62), (column < -1) | (column > 64)
        row = np.arange(64) - sy
        rows = (row >= 1) & (row <= 62)
        assert np.isfinite(member[np.ix_(rows, inside)]).all()
        assert np.isnan(member[:, outside]).all()
        wet = np.flatnonzero((np.nan_to_num(member[rows]) > 0).any(axis=0))
        if wet.size:  # the band, moved with the member
            assert abs(wet.mean() - (31.5 + sx)) < 2.5, (wet.mean(), sx)
        distinct.add(int(outside.sum()))
    assert len(distinct) > 2  # the members' inflow edges differ


def test_mask_grows_with_the_grid_as_pysteps():
    assert mask_grow(1.0, 5.0) == 2 and mask_grow(0.5, 6.0) == 5
    cube = synthetic_radar(n_times=8, size=32)
    fine = cube.assign_coords(x=cube.x / 2, y=cube.y / 2)  # 500 m
    fine = fine.assign_coords(time=fine.time.values[0] + np.arange(8) * np.timedelta64(6, "m"))
    ens = xnowcast.forecast(fine, "steps", members=1, n_in=4, n_out=1)
    recorded = __import__("json").loads(ens.attrs["xnowcast_model_params"])
    assert recorded["mask_kwargs"]["grow"] == 5
    assert recorded["motion_perturbation_kwargs"]["km_per_pixel"] == 0.5
    given = xnowcast.forecast(fine, "steps", members=1, n_in=4, n_out=1, mask_kwargs={"grow": 1})
    assert __import__("json").loads(given.attrs["xnowcast_model_params"])["mask_kwargs"] == {
        "grow": 1,
        "rim": 10,
    }
