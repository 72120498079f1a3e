"""Downscaling: pairs, networks, training through the Trainer, labelled output, CLI, config."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("torch")

import torch

import xnowcast
from xnowcast.datasets import synthetic_radar
from xnowcast.downscale import (
    DownscaleTrainer,
    ResidualDiscriminator,
    build_network,
    coarsened,
    downscale,
    interpolate,
    list_architectures,
    load_downscaler,
)
from xnowcast.downscale.grid import fine_coordinate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "radar"
TINY = {"filters": 4, "blocks": 1, "growth": 4, "dense_layers": 2}


def _cube(n_times=6, size=34, seed=1):
    return synthetic_radar(n_times=n_times, size=size, seed=seed)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_downscaler):
    low, high = coarsened(_cube(), 4)
    tr = tiny_downscaler(epochs=2)
    tr.fit(pairs=(low, high))
    path = tmp_path_factory.mktemp("sr") / "sr.pt"
    tr.save(path)
    return tr, path, low, high


# ---------------------------------------------------------------------- networks
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_architecture_gives_the_fine_shape_for_odd_sizes(scale):
    for name in list_architectures():
        n_in = 2 if name.startswith("rec-") else 1
        net = build_network(name, scale, n_in=n_in, n_static=1, **TINY)
        x, static = torch.rand(2, n_in, 5, 7), torch.rand(2, 1, 5 * scale, 7 * scale)
        assert tuple(net(x, static).shape) == (2, 1, 5 * scale, 7 * scale), name


def test_untrained_network_is_bicubic_and_options_build():
    x = torch.rand(1, 1, 6, 5)
    net = build_network("resnet-spc", 3, filters=4, blocks=1)
    expected = interpolate(x.numpy()[0, 0], 3, "bicubic", clip=False)
    np.testing.assert_allclose(net(x)[0, 0].detach().numpy(), expected, atol=1e-5)
    options = {"attention": True, "dropout": 0.1, "normalization": "layer"}
    net = build_network("densenet-rc", 2, filters=4, blocks=2, **options)
    assert tuple(net(torch.rand(2, 1, 5, 5)).shape) == (2, 1, 10, 10)
    net = build_network(
        "convnet-dc", 2, filters=4, normalization="batch", dropout=0.2, dropout_variant="standard"
    )
    assert tuple(net(torch.rand(2, 1, 5, 5)).shape) == (2, 1, 10, 10)
    with pytest.raises(ValueError, match="unknown downscaling architecture"):
        build_network("resnet-xyz", 2)
    with pytest.raises(ValueError, match="set by the architecture name"):
        build_network("resnet-spc", 2, upsampling="rc")


@pytest.mark.parametrize("kind", ["add", "mul"])
@pytest.mark.parametrize("transform", ["log", "identity", {"name": "scale", "vmax": 50}])
def test_constraint_keeps_every_block_mean_in_physical_units(kind, transform):
    tf = xnowcast.transforms.get_transform(transform)
    rain = np.random.default_rng(0).gamma(0.5, 2.0, (2, 1, 5, 7)).astype(np.float32)
    rain[0, 0, :2] = 0.0  # dry coarse cells
    if kind == "add":  # rain well above zero: blocks that need no clipping below zero
        rain += 20.0
    x = torch.from_numpy(tf.forward(rain))
    for name in ("resnet-spc", "resnet-rc", "resnet-dc", "resnet-int", "rec-resnet-spc"):
        n_in = 2 if name.startswith("rec-") else 1
        torch.manual_seed(1)
        net = build_network(name, 3, n_in=n_in, constraint=kind, transform=transform, **TINY)
        lo, hi = tf.output_range
        torch.nn.init.normal_(net.tail[-1].weight, std=0.01 * (hi - lo))  # not bicubic
        out = net(x.expand(-1, n_in, -1, -1)).detach().numpy()
        fine = tf.inverse(out)
        blocks = fine.reshape(2, 1, 5, 3, 7, 3)
        means = blocks.mean(axis=(3, 5))
        np.testing.assert_allclose(means, rain, rtol=1e-4, atol=1e-4, err_msg=name)
        if kind == "mul":
            assert fine.min() >= -1e-6 and np.abs(fine[0, 0, :6]).max() < 1e-5, name
    plain = build_network("resnet-rc", 3, transform=transform, **TINY)
    torch.nn.init.normal_(plain.tail[-1].weight, std=0.01 * (hi - lo))
    fine = tf.inverse(plain(x).detach().numpy())
    assert np.abs(fine.reshape(2, 1, 5, 3, 7, 3).mean(axis=(3, 5)) - rain).max() > 1e-2


def test_constraint_refuses_unknown_names_and_thresholded_transforms(tiny_downscaler):
    with pytest.raises(ValueError, match="constraint must be None or one of add, mul"):
        build_network("resnet-spc", 2, constraint="sum", **TINY)
    with pytest.raises(ValueError, match="needs a smooth transform"):
        build_network("resnet-spc", 2, constraint="mul", transform="dbr", **TINY)
    build_network("resnet-spc", 2, transform="dbr", **TINY)  # no constraint: any transform
    with pytest.raises(TypeError, match="not in model_params"):
        tiny_downscaler(model_params={"filters": 4, "transform": "log"})


def test_constrained_checkpoint_keeps_the_block_means(tmp_path, tiny_downscaler):
    low, high = coarsened(_cube(n_times=4, size=32), 4)
    params = {"filters": 4, "blocks": 1, "constraint": "mul"}
    tr = tiny_downscaler(model_params=params, transform="identity", loss="mse")
    tr.fit(pairs=(low, high))
    tr.save(tmp_path / "mul.pt")
    loaded = load_downscaler(tmp_path / "mul.pt")
    assert loaded.net.constraint == "mul" and loaded.params == params
    fine = downscale(low, model=tmp_path / "mul.pt")
    means = fine.coarsen(y=4, x=4).mean().values
    np.testing.assert_allclose(means, low.values, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fine.values, downscale(low, model=tr.model).values, atol=1e-6)


def test_loss_space_physical_compares_rain_rates(tiny_downscaler, tmp_path):
    pred, target = torch.log1p(torch.rand(2, 1, 8, 8) * 9), torch.log1p(torch.rand(2, 1, 8, 8) * 9)
    mask = torch.ones_like(target)
    mask[0, 0, :4] = 0
    tr = tiny_downscaler(loss="mse", loss_space="physical")
    expected = (((torch.expm1(pred) - torch.expm1(target)) ** 2) * mask).sum() / mask.sum()
    assert float(tr.loss(pred, target, mask)) == pytest.approx(float(expected), rel=1e-5)
    plain = tiny_downscaler(loss="mse")
    assert float(plain.loss(pred, target, mask)) < 0.2 * float(expected)  # log1p: smaller
    pairs = coarsened(_cube(n_times=4, size=32), 4)
    assert np.isfinite(tr.fit(pairs=pairs).history["train_loss"]).all()
    tr.save(tmp_path / "phys.pt")
    meta = xnowcast.training.read_metadata(tmp_path / "phys.pt")
    assert meta["training"]["config"]["loss_space"] == "physical"
    with pytest.raises(ValueError, match="loss_space must be one of"):
        tiny_downscaler(loss_space="mm/h")
    with pytest.raises(ValueError, match="needs a smooth transform"):
        tiny_downscaler(loss_space="physical", transform="dbr")


def test_discriminator_scores_any_size():
    disc = ResidualDiscriminator(3, n_in=2, filters=4, blocks=2)
    assert tuple(disc(torch.rand(3, 1, 15, 21), torch.rand(3, 2, 5, 7)).shape) == (3,)


# ---------------------------------------------------------------------- coarsening
def test_coarsening_is_area_preserving_and_nan_aware():
    cube = _cube(n_times=2, size=18)
    values = cube.values.copy()
    values[0, :4, :4] = np.nan  # one whole block missing
    values[0, 4:6, 4:8] = np.nan  # half a block missing
    cube = cube.copy(data=values)
    low, high = coarsened(cube, 4)
    assert low.shape == (2, 4, 4) and high.shape == (2, 16, 16)
    blocks = high.values.reshape(2, 4, 4, 4, 4)
    with pytest.warns(RuntimeWarning):  # the all-NaN block
        expected = np.nanmean(blocks, axis=(2, 4))
    np.testing.assert_allclose(low.values, expected, rtol=1e-5)
    assert np.isnan(low.values[0, 0, 0]) and np.isfinite(low.values[0, 1, 1])
    np.testing.assert_allclose(fine_coordinate(low.x.values, 4), high.x.values)
    np.testing.assert_allclose(fine_coordinate(low.y.values, 4), high.y.values)
    assert low.attrs["coarsening_factor"] == 4 and "crs" in low.coords
    np.testing.assert_allclose(low.lat.values, high.lat.values[1::4, 1::4], atol=0.05)


def test_coarsening_pads_partial_cells_and_stays_lazy():
    cube = _cube(n_times=2, size=18).chunk({"time": 1})
    low, high = coarsened(cube, 4, boundary="pad")
    assert low.chunks is not None and low.shape == (2, 5, 5) and high.shape == (2, 18, 18)
    part = cube.values[:, 16:, :4].mean(axis=(1, 2))
    np.testing.assert_allclose(low.values[:, 4, 0], part, rtol=1e-5)
    np.testing.assert_allclose(fine_coordinate(low.x.values, 4, 18), cube.x.values)
    with pytest.raises(ValueError, match="boundary"):
        coarsened(cube, 4, boundary="wrap")
    with pytest.raises(ValueError, match="fewer than factor"):
        coarsened(cube, 40)


# ---------------------------------------------------------------------- baselines
def test_baselines_label_the_fine_grid_and_keep_missing_data():
    cube = _cube(n_times=2, size=32)
    values = cube.values.copy()
    values[:, :8, :8] = np.nan
    low, high = coarsened(cube.copy(data=values), 4)
    for method in ("nearest", "bilinear", "bicubic"):
        fine = downscale(low, model=method, scale=4)
        assert fine.dims == high.dims and fine.shape == high.shape
        for name in ("x", "y", "time"):
            np.testing.assert_array_equal(fine[name].values, high[name].values)
        np.testing.assert_allclose(fine.lat.values, high.lat.values, atol=1e-4)
        np.testing.assert_allclose(fine.lon.values, high.lon.values, atol=1e-4)
        assert fine.attrs["units"] == high.attrs["units"] and "crs" in fine.coords
        assert fine.attrs["downscaling_model"] == method
        hole = np.repeat(np.repeat(np.isnan(low.values), 4, axis=1), 4, axis=2)
        assert hole[:, :8, :8].all()
        np.testing.assert_array_equal(np.isnan(fine.values), hole)
        assert (fine.values[np.isfinite(fine.values)] >= 0).all()
    same = low.nowcast.downscale(model="bicubic", scale=4)
    xr.testing.assert_identical(same, downscale(low, "bicubic", 4))
    with pytest.raises(ValueError, match="needs scale"):
        downscale(low, "bicubic")
    with pytest.raises(ValueError, match="neither a baseline"):
        downscale(low, "lanczos", 4)


def test_interpolation_matches_torch():
    import torch.nn.functional as F

    a = np.random.default_rng(0).random((2, 5, 7)).astype("float32")
    for method in ("bilinear", "bicubic"):
        ref = F.interpolate(
            torch.from_numpy(a)[None], scale_factor=3, mode=method, align_corners=False
        )[0].numpy()
        np.testing.assert_allclose(interpolate(a, 3, method, clip=False), ref, atol=1e-5)


def test_forecasts_keep_init_and_lead_times():
    low, high = coarsened(_cube(n_times=16, size=32), 4)
    fc = low.nowcast.forecast(model="persistence", init_times="all", n_out=2).compute()
    fine = fc.nowcast.downscale(model="bilinear", scale=4)
    assert fine.dims == fc.dims and fine.sizes["x"] == 32
    for name in ("init_time", "lead_time", "valid_time"):
        np.testing.assert_array_equal(fine[name].values, fc[name].values)
    np.testing.assert_array_equal(fine.x.values, high.x.values)


# ---------------------------------------------------------------------- training
def test_trainer_dispatches_to_the_downscaling_trainer(tiny_downscaler):
    tr = tiny_downscaler()
    assert isinstance(tr, DownscaleTrainer) and isinstance(tr, xnowcast.Trainer)
    with pytest.raises(ValueError, match="task must be"):
        xnowcast.Trainer("unet", n_in=2, n_out=1, task="segment", progress=False)
    with pytest.raises(TypeError, match="forecast windows"):
        tiny_downscaler(n_out=3)
    with pytest.raises(TypeError, match="coarse and fine"):
        tiny_downscaler().fit(_cube())


def test_a_few_steps_lower_the_loss(tiny_downscaler):
    pairs = coarsened(_cube(n_times=8, size=32, seed=3), 4)
    params = {"filters": 8, "blocks": 1, "global_residual": False}  # not bicubic at the start
    tr = tiny_downscaler(epochs=10, lr=3e-3, flips=False, model_params=params)
    before = tr.evaluate(pairs)
    tr.fit(pairs=pairs)
    assert tr.evaluate(pairs) < 0.7 * before
    assert len(tr.history) == 10


def test_output_coordinates_equal_the_recorded_fine_grid(trained):
    tr, path, low, high = trained
    for model in (path, str(path), tr.model):
        fine = downscale(low, model=model)
        assert fine.shape == high.shape
        np.testing.assert_array_equal(fine.x.values, high.x.values)
        np.testing.assert_array_equal(fine.y.values, high.y.values)
        np.testing.assert_allclose(fine.lat.values, high.lat.values, atol=1e-4)
        assert fine.attrs["downscaling_model"] == "resnet-spc"
    with pytest.raises(ValueError, match="downscales by 4"):
        downscale(low, model=path, scale=2)


def test_dask_cubes_are_downscaled_lazily_chunk_by_chunk(trained):
    _, path, low, _ = trained
    lazy_low = low.chunk({"time": 1})
    for model, scale in ((path, None), ("bicubic", 4)):
        lazy = downscale(lazy_low, model=model, scale=scale)
        assert lazy.chunks is not None and lazy.chunks[0] == (1,) * low.sizes["time"]
        eager = downscale(low, model=model, scale=scale)
        np.testing.assert_allclose(lazy.values, eager.values, atol=1e-6)
        np.testing.assert_array_equal(lazy.x.values, eager.x.values)


def test_checkpoint_round_trip_and_safety(trained, tmp_path):
    tr, path, low, _ = trained
    loaded = load_downscaler(path)
    assert (loaded.scale, loaded.n_in, loaded.name) == (4, 1, "resnet-spc")
    frames = low.values[:2, None]
    np.testing.assert_allclose(loaded.predict(frames), tr.model.predict(frames), atol=1e-6)
    meta = xnowcast.training.read_metadata(path)
    assert meta["task"] == "downscale" and meta["scale"] == 4
    assert meta["grids"]["fine"]["x"] == trained[3].x.values.tolist()
    assert meta["grids"]["coarse"]["x"] == low.x.values.tolist()
    (tmp_path / "taken.pt").write_text("someone else's file")
    with pytest.raises(FileExistsError):
        tr.save(tmp_path / "taken.pt")
    bad = tmp_path / "bad.pt"
    data = bytearray(path.read_bytes())
    data[-200] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError):
        load_downscaler(bad)
    nowcaster = xnowcast.Trainer(
        "unet",
        {"depth": 1, "filters": 4},
        n_in=2,
        n_out=1,
        epochs=1,
        crop=16,
        batch_size=4,
        progress=False,
    )
    nowcaster.fit(_cube(n_times=6, size=16))
    nowcaster.save(tmp_path / "nc.pt")
    with pytest.raises(ValueError, match="not a downscaling one"):
        load_downscaler(tmp_path / "nc.pt")


def test_gan_step_runs_and_resumes(tmp_path, tiny_downscaler):
    pairs = coarsened(_cube(n_times=6, size=32), 4)
    tr = tiny_downscaler(
        adversarial=True,
        discriminator_kwargs={"filters": 4, "blocks": 2},
        checkpoint=tmp_path / "last.pt",
    )
    before = [p.detach().clone() for p in tr.discriminator.parameters()]
    tr.fit(pairs=pairs)
    after = list(tr.discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    assert np.isfinite(tr.history["train_loss"]).all()
    resumed = tiny_downscaler(
        adversarial=True,
        discriminator_kwargs={"filters": 4, "blocks": 2},
        epochs=2,
        resume=tmp_path / "last.pt",
        checkpoint=tmp_path / "last.pt",
    )
    resumed.fit(pairs=pairs)
    assert resumed.history["epoch"].tolist() == [1, 2]


def test_static_predictors_are_regridded_and_stored(tmp_path, tiny_downscaler):
    cube = _cube(n_times=6, size=32)
    low, high = coarsened(cube, 4)
    dem = xr.DataArray(
        np.add.outer(np.arange(16.0), np.arange(16.0)),
        dims=("y", "x"),
        coords={"y": cube.y.values[::2], "x": cube.x.values[::2]},
    )
    tr = tiny_downscaler(static={"elevation": dem})
    tr.fit(pairs=(low, high))
    tr.save(tmp_path / "st.pt")
    fine = downscale(low, model=tmp_path / "st.pt")  # the stored fields, on the training grid
    same_holes = np.isnan(downscale(low, "nearest", 4).values)
    assert fine.shape == high.shape
    np.testing.assert_array_equal(np.isnan(fine.values), same_holes)
    other = low.isel(x=slice(0, 6))
    with pytest.raises(ValueError, match="static"):
        downscale(other, model=tmp_path / "st.pt")
    part = downscale(other, model=tmp_path / "st.pt", static={"elevation": dem})
    assert part.sizes["x"] == 24


def test_recurrent_network_downscales_every_frame(tmp_path, tiny_downscaler):
    pairs = coarsened(_cube(n_times=6, size=32), 4)
    tr = tiny_downscaler(model="rec-resnet-spc", n_in=3)
    tr.fit(pairs=pairs)
    fine = downscale(pairs[0], model=tr.model)
    assert fine.shape == pairs[1].shape
    holes = np.isnan(downscale(pairs[0], "nearest", 4).values)
    np.testing.assert_array_equal(np.isnan(fine.values), holes)


def test_padded_pairs_come_back_on_the_whole_fine_grid(tiny_downscaler):
    cube = _cube(n_times=6, size=34)
    low, high = coarsened(cube, 4, boundary="pad")
    tr = tiny_downscaler()
    tr.fit(low, high)
    fine = downscale(low, model=tr.model)
    assert fine.shape == cube.shape
    np.testing.assert_array_equal(fine.x.values, cube.x.values)


# ---------------------------------------------------------------------- CLI and config
def test_cli_downscale_writes_and_refuses_to_overwrite(trained, tmp_path, capsys):
    from xnowcast.cli import main
    from xnowcast.io import open_forecast

    _, path, low, high = trained
    src = tmp_path / "coarse.nc"
    low.to_dataset(name="rain").to_netcdf(src)
    out = tmp_path / "fine.zarr"
    assert main(["downscale", str(src), "--model", str(path), "--out", str(out)]) == 0
    fine = open_forecast(out)
    np.testing.assert_array_equal(fine.x.values, high.x.values)
    assert main(["downscale", str(src), "--model", str(path), "--out", str(out)]) != 0
    assert "exists" in capsys.readouterr().err
    args = ["downscale", str(src), "--model", "bicubic", "--scale", "2", "--out", str(out)]
    assert main([*args, "--overwrite"]) == 0
    assert open_forecast(out).sizes["x"] == low.sizes["x"] * 2


def test_train_config_with_a_downscaling_section(tmp_path):
    from xnowcast.training.config import run_config

    _cube(n_times=6, size=32).to_dataset(name="rain").to_netcdf(tmp_path / "fine.nc")
    config = {
        "task": "downscale",
        "model": "convnet-spc",
        "model_params": {"filters": 4, "blocks": 1},
        "scale": 2,
        "train": str(tmp_path / "fine.nc"),
        "output": str(tmp_path / "sr.pt"),
        "epochs": 1,
        "crop": 16,
        "batch_size": 4,
        "loss_space": "physical",
        "progress": False,
    }
    trainer = run_config(config)
    assert isinstance(trainer, DownscaleTrainer)
    meta = xnowcast.training.read_metadata(tmp_path / "sr.pt")
    assert meta["scale"] == 2 and meta["training"]["config"]["loss_space"] == "physical"
    with pytest.raises(ValueError, match="task: downscale only"):
        run_config({**config, "task": "nowcast", "model": "unet", "overwrite": True})


# ---------------------------------------------------------------------- real radar
@pytest.mark.skipif(not DATA.is_dir(), reason="shared radar data absent")
def test_real_radar_pairs_and_bicubic_grid():
    cube = xr.open_dataset(DATA / "mch-20150515.nc")["precip_intensity"]
    crop = cube.isel(time=slice(0, 2), y=slice(100, 166), x=slice(200, 263))
    low, high = coarsened(crop, 4)
    assert high.shape == (2, 64, 60)
    fine = low.nowcast.downscale(model="bicubic", scale=4)
    np.testing.assert_allclose(fine.x.values, high.x.values)
    np.testing.assert_allclose(fine.lat.values, high.lat.values, atol=1e-3)
    means = high.values.reshape(2, 16, 4, 15, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(means, axis=(2, 4))
    np.testing.assert_allclose(low.values, expected, rtol=1e-5)
