"""advection-unet: identity at start, bounded correction, mask, tiling, checkpoints, shipped weights."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xnowcast  # noqa: E402
from xnowcast.datasets import synthetic_radar  # noqa: E402
from xnowcast.models import get_model  # noqa: E402
from xnowcast.models.neural.advection import (  # noqa: E402
    AdvectionModel,
    AdvectionUNet,
    pretrained_path,
)
from xnowcast.models.neural.unet import UNet  # noqa: E402
from xnowcast.training import Trainer, load_model, read_metadata  # noqa: E402

SMALL = dict(n_in=4, n_out=3, frames=2, depth=1, filters=4)
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def frames():
    """Four 48 x 48 frames of moving cells with heavy cores, NaN outside a radar disc."""
    cube = synthetic_radar(n_times=4, size=48, seed=5)
    x = cube.values[None].astype(np.float32)
    x[:, :, 20:26, 20:26] += 25.0  # a heavy cell in every frame
    return x


def _randomised(model: AdvectionModel, scale: float = 0.5, seed: int = 0) -> AdvectionModel:
    """The same model with a non-zero output layer (a 'trained', non-identity network)."""
    gen = torch.Generator().manual_seed(seed)
    head = model.module.body.head
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * scale)
        head.bias.copy_(torch.randn(head.bias.shape, generator=gen) * scale)
    model.trained = True
    return model


def test_untrained_model_is_the_extrapolation_exactly(frames):
    model = get_model("advection-unet", weights=None, **SMALL)
    assert isinstance(model, AdvectionModel) and not model.trained
    flow = get_model("optical-flow", n_in=4, n_out=3)
    np.testing.assert_array_equal(model.predict(frames), flow.predict(frames))
    # the network itself starts as the identity on the extrapolation, through the whole
    # transform -> network -> inverse path too
    model.trained = True
    out, ref = model.predict(frames), flow.predict(frames)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5, equal_nan=True)


def test_correction_is_bounded_in_log_space_and_keeps_the_mask(frames):
    model = _randomised(get_model("advection-unet", weights=None, bound=0.5, **SMALL), scale=5)
    ref = model.extrapolator.predict(frames)
    out = model.predict(frames)
    assert not np.allclose(out, ref, equal_nan=True)  # the network does change the forecast
    both = np.isfinite(ref)
    change = np.log1p(out[both]) - np.log1p(ref[both])
    assert np.abs(change).max() <= 0.5 + 1e-4  # |correction| < bound in log space
    heavy = both & (ref > 10)
    assert heavy.any()
    assert (out[heavy] >= np.expm1(np.log1p(ref[heavy]) - 0.5) - 1e-3).all()  # damped at most e^0.5
    assert out[heavy].min() > 5.0
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))  # NaN where the extrapolation is
    kept = _randomised(
        get_model("advection-unet", weights=None, bound=0.5, decay_bound=0.1, **SMALL), scale=5
    )
    change = np.log1p(kept.predict(frames)[both]) - np.log1p(ref[both])
    assert change.min() >= -0.1 - 1e-4 and change.max() > 0.2  # damping bounded apart
    assert kept.module.get_config()["decay_bound"] == 0.1


@pytest.mark.parametrize(
    "net",
    [
        AdvectionUNet(n_in=4, n_out=2, frames=2, depth=2, filters=4),
        UNet(n_in=3, n_out=2, depth=2, filters=4),
        UNet(n_in=3, n_out=2, depth=1, filters=4, upsample="bilinear"),
    ],
)
def test_receptive_field_covers_the_measured_one(net):
    torch.manual_seed(0)
    for p in net.parameters():  # no zero layer: every input can reach the output
        torch.nn.init.normal_(p, 0.0, 0.3)
    net.eval()
    x = torch.rand(1, net.in_channels if hasattr(net, "in_channels") else net.n_in, 128, 128)
    x.requires_grad_(True)
    net(x)[0, :, 64, 64].sum().backward()
    reached = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero()
    measured = int(reached[:, 0].max() - reached[:, 0].min()) + 1
    assert measured <= net.receptive_field <= measured + 8


def test_tiles_without_seams_for_a_trained_network(frames):
    big = synthetic_radar(n_times=4, size=(150, 170), seed=2).values[None].astype(np.float32)
    model = _randomised(get_model("advection-unet", weights=None, **SMALL), scale=2)
    model = model.with_settings(device="cpu")
    whole = model.predict(big)
    overlap = model.tile_overlap()
    assert overlap >= model.receptive_field  # chosen from the receptive field
    tiled = model.with_settings(tile=overlap + 32).predict(big)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-4, equal_nan=True)
    # the old fixed 8-pixel overlap leaves seams with this network: the test can fail
    seams = model.with_settings(tile=overlap + 32, tile_overlap=8).predict(big)
    assert np.nanmax(np.abs(seams - whole)) > 1e-3
    with pytest.raises(ValueError, match="receptive field"):
        model.with_settings(tile=overlap - 4).predict(big)


def _small_trainer(**settings) -> Trainer:
    """A Trainer of the SMALL network on 16-pixel crops, on the CPU, quiet."""
    net = {k: v for k, v in SMALL.items() if k not in ("n_in", "n_out")}
    return Trainer(
        "advection-unet",
        net,
        n_in=4,
        n_out=3,
        batch_size=2,
        crop=16,
        progress=False,
        device="cpu",
        **settings,
    )


def test_trains_saves_and_loads_as_the_same_model(tmp_path):
    cube = synthetic_radar(n_times=8, size=32, seed=1)
    trainer = _small_trainer(epochs=2, cache_dir=tmp_path / "cache")
    trainer.fit(cube)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # one stored window each
    path = trainer.save(tmp_path / "adv.pt")
    model = load_model(path)
    assert isinstance(model, AdvectionModel) and model.trained
    frames = cube.values[None, :4]
    np.testing.assert_allclose(
        model.predict(frames), trainer.model.predict(frames), rtol=1e-5, equal_nan=True
    )
    fc = cube.nowcast.forecast(model=str(path), device="cpu")
    assert fc.sizes["lead_time"] == 3
    assert read_metadata(path)["leads_trained"] == 3


def test_training_that_never_beats_the_extrapolation_ends_as_the_identity():
    # validation picks the weights; the starting ones (the extrapolation) are the floor: with
    # min_delta so large that no epoch counts as better, the network must end as it began
    cube = synthetic_radar(n_times=12, size=32, seed=3)
    trainer = _small_trainer(
        epochs=2, lr=0.05, val_split=0.3, monitor="csi", min_delta=1e9, flips=False
    ).fit(cube)
    assert trainer.best_epoch == 0 and len(trainer.history) == 2
    head = trainer.model.module.body.head
    assert not head.weight.any()  # the zero (identity) output layer
    frames = cube.values[None, :4].astype(np.float32)
    flow = get_model("optical-flow", n_in=4, n_out=3).predict(frames)
    np.testing.assert_allclose(trainer.model.predict(frames), flow, rtol=1e-5, atol=1e-5)
    moved = _small_trainer(epochs=2, lr=0.05).fit(cube)  # no validation: the last weights
    assert moved.model.module.body.head.weight.any()  # the same training moves the layer


def test_trainer_recipe_overrides_of_the_benchmark_scripts():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _advection_unet
    finally:
        sys.path.remove(str(BENCHMARKS))
    trainer = _advection_unet.make_trainer(
        5, quick=True, recipe={"lr": 5e-4, "crop": 32}, model={"filters": 2}
    )
    assert trainer.lr == 5e-4 and trainer.crop == 32
    assert trainer.model.module.body.filters == 2
    shipped = _advection_unet.make_trainer(5)
    assert shipped.lr == _advection_unet.RECIPE["lr"]
    assert shipped.model.module.body.filters == _advection_unet.MODEL_PARAMS["filters"]


def test_shipped_weights_load_safely_and_forecast_a_shared_cube(radar_dir):
    path = pretrained_path()
    assert path.is_file() and path.stat().st_size < 5 * 2**20
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and data
    assert raw["format"] == "xnowcast-checkpoint" and len(raw["sha256"]) == 64
    model = get_model("advection-unet")
    assert isinstance(model, AdvectionModel) and model.trained
    meta = read_metadata(path)
    assert meta["leads_trained"] == meta["n_out"] == 24
    sources = " ".join(meta["training"]["data"]["sources"]["train"])
    assert "mch-20150515.nc" in sources and "knmi-201008.nc" in sources
    assert "20180616" in sources  # the BOM per-scan files (or their folder)
    import xarray as xr

    cube = xr.open_dataset(radar_dir / "mch-20150515.nc")["precip_intensity"]
    crop = cube.isel(time=slice(0, 12), y=slice(200, 328), x=slice(300, 428)).load()
    fc = crop.nowcast.forecast(model="advection-unet", device="cpu")
    assert fc.sizes["lead_time"] == 24 and np.isfinite(fc.values).any()
    assert (fc.values[np.isfinite(fc.values)] >= 0).all()
    with pytest.raises(ValueError, match="weights=None"):
        get_model("advection-unet", depth=3)


def _csi(fc, obs, threshold=1.0):
    f, o = np.nan_to_num(fc) >= threshold, np.nan_to_num(obs) >= threshold
    return (f & o).sum() / max((f | o).sum(), 1)


def test_shipped_weights_keep_skill_and_heavy_rain_on_a_shared_window(radar_dir):
    """Wrong weights fail here: they must correct the cascade without losing skill or cores.

    The crop is from an event the weights were trained on (an in-sample sanity check; the
    out-of-sample scores are the leave-one-event-out evaluation in docs/neural.md).
    """
    import xarray as xr

    cube = xr.open_dataset(radar_dir / "mch-20150515.nc")["precip_intensity"]
    crop = cube.isel(time=slice(0, 36), y=slice(346, 474), x=slice(415, 543)).load()  # heavy
    inputs = crop.values[None, :12].astype(np.float32)
    obs = crop.values[12:36]
    model = get_model("advection-unet").with_settings(device="cpu")
    extrapolated = model.extrapolator.predict(inputs)
    fc = model.correct(inputs, extrapolated)[0]
    assert np.array_equal(np.isnan(fc), np.isnan(extrapolated[0]))  # the mask is kept
    assert np.nanmax(np.abs(np.log1p(fc) - np.log1p(extrapolated[0]))) > 0.01  # not the identity
    shipped, cascade = _csi(fc, obs), _csi(extrapolated[0], obs)
    assert shipped >= cascade - 0.01
    heavy = np.nansum(extrapolated[0] > 10.0)
    assert heavy > 0 and np.nansum(fc > 10.0) >= 0.5 * heavy  # heavy rain kept in area
    broken = get_model("advection-unet").with_settings(device="cpu")
    with torch.no_grad():  # a network that damps all rain as far as decay_bound allows
        broken.module.body.head.weight.zero_()
        broken.module.body.head.bias.fill_(-5.0)
    assert _csi(broken.correct(inputs, extrapolated)[0], obs) < cascade - 0.01  # it can fail


def test_leave_one_event_out_script_runs_quick(radar_dir, capsys):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import eval_advection_unet
    finally:
        sys.path.remove(str(BENCHMARKS))
    results = eval_advection_unet.main(["--quick", "--events", "mch", "bom", "--jobs", "2"])
    assert set(results) == {"mch", "bom"}
    text = capsys.readouterr().out
    assert "Targets (issue 17, item 4)" in text and "advection-unet" in text
    assert "| mch |" in text.split("Per held-out event")[1]  # the per-event table
    for res in results.values():
        assert res["training"]["steps"] >= 1
        table = res["sums"][eval_advection_unet.LEARNED]["table"]
        assert table.shape == (24, 4) and table.sum() > 0
    one = eval_advection_unet.main(
        ["--quick", "--events", "mch", "bom", "--held-out", "bom", "--model", '{"bound": 0.2}']
    )
    assert set(one) == {"bom"}  # one fold, trained on mch
    assert one["bom"]["training"]["trained_on"] == ["mch"]


def test_unknown_weights_are_refused():
    with pytest.raises(ValueError, match="pretrained"):
        get_model("advection-unet", weights="latest")
    assert "advection-unet" in xnowcast.list_models()


def test_bf16_path_runs_on_the_cpu(frames):
    """The GPU path (bf16 autocast) checked on the CPU: identity kept, close to fp32."""
    model = get_model("advection-unet", weights=None, **SMALL).with_settings(device="cpu")
    model.trained = True
    fp32 = model.predict(frames)
    bf16 = model.with_settings(precision="bf16").predict(frames)
    np.testing.assert_allclose(bf16, fp32, rtol=1e-5, atol=1e-5, equal_nan=True)  # zero head
    busy = _randomised(get_model("advection-unet", weights=None, **SMALL), scale=1)
    busy = busy.with_settings(device="cpu")
    ref = busy.predict(frames)
    low = busy.with_settings(precision="bf16").predict(frames)
    both = np.isfinite(ref)
    assert np.abs(np.log1p(low[both]) - np.log1p(ref[both])).max() < 0.05
    cube = synthetic_radar(n_times=8, size=32, seed=1)
    trainer = _small_trainer(epochs=1, precision="bf16")
    assert trainer.fit(cube).history.steps.iloc[-1] == 1


def test_stored_windows_are_not_reused_when_the_extrapolation_changes(tmp_path, monkeypatch):
    """The cache key holds the extrapolation's forecast of a probe, not only its parameters:
    a new motion or cascade default (same get_params()) must not reuse stale windows."""
    from xnowcast.training.extrapolated import ExtrapolatedDataset

    cube = synthetic_radar(n_times=8, size=32, seed=1)
    model = get_model("advection-unet", weights=None, **SMALL)
    first = ExtrapolatedDataset(cube, model, cache_dir=tmp_path)
    first.prepare()
    again = ExtrapolatedDataset(cube, model, cache_dir=tmp_path)
    again.prepare()
    assert len(list(tmp_path.glob("*.npy"))) == len(first)  # the same code: reused
    predict = model.extrapolator.predict
    monkeypatch.setattr(model.extrapolator, "predict", lambda x: predict(x) * 1.5)
    changed = ExtrapolatedDataset(cube, model, cache_dir=tmp_path)
    changed.prepare()
    assert len(list(tmp_path.glob("*.npy"))) == 2 * len(first)
    old, new = np.asarray(first.stored(0, 0)), np.asarray(changed.stored(0, 0))
    assert not np.allclose(old[:3], new[:3], equal_nan=True)
