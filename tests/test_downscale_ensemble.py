"""Geometric self-ensembling of downscaling networks (the 8 flips and quarter turns)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("torch")

import torch
import torch.nn.functional as F

from xnowcast.datasets import synthetic_radar
from xnowcast.downscale import Downscaler, build_network, coarsened, downscale, interpolate
from xnowcast.downscale.apply import SYMMETRIES


def _turn(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """numpy reference of one symmetry on the last two axes: flip x, then k quarter turns."""
    return np.rot90(np.flip(a, -1) if flip else a, k, axes=(-2, -1))


def _unturn(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, -k, axes=(-2, -1))
    return np.flip(a, -1) if flip else a


class Symmetric(torch.nn.Module):
    """Equivariant by construction: a D4-symmetric blur, nearest upsampling, static added."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        self.register_buffer("kernel", kernel[None, None])
        self.scale = scale

    def forward(self, x: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        out = F.interpolate(F.conv2d(x[:, -1:], self.kernel, padding=1), scale_factor=self.scale)
        return out if static is None else out + 0.3 * static[:, :1]


def _random_network(
    scale: int = 3, n_in: int = 2, n_static: int = 1, arch: str = "resnet-rc"
) -> Downscaler:
    """An untrained network whose last layer is random (not zero, so not bicubic)."""
    torch.manual_seed(0)
    net = build_network(arch, scale, n_in=n_in, n_static=n_static, filters=4, blocks=1)
    torch.nn.init.normal_(net.tail[-1].weight, std=0.3)
    names = ["elevation"] if n_static else []
    return Downscaler(
        net,
        name=arch,
        scale=scale,
        n_in=n_in,
        transform="log",
        static_names=names,
        static_norm={name: [0.0, 1.0] for name in names},
    )


def _coarse(shape=(3, 5, 7), seed=0) -> xr.DataArray:
    """A small non-square, odd-sized coarse cube with rain and missing cells."""
    rng = np.random.default_rng(seed)
    values = rng.gamma(0.6, 2.0, shape).astype(np.float32)
    values[:, 1, 2] = np.nan
    values[0, -1, :] = np.nan
    return xr.DataArray(
        values,
        dims=("time", "y", "x"),
        coords={
            "time": np.arange(shape[0]).astype("datetime64[m]"),
            "y": 4000.0 * np.arange(shape[1])[::-1],
            "x": 4000.0 * np.arange(shape[2]),
        },
        name="rain",
    )


def test_the_symmetries_are_the_eight_of_the_square():
    a = np.arange(12.0).reshape(3, 4)
    images = {_turn(a, k, f).tobytes() + bytes(_turn(a, k, f).shape) for k, f in SYMMETRIES}
    assert len(SYMMETRIES) == 8 and len(images) == 8 and SYMMETRIES[0] == (0, False)
    for k, f in SYMMETRIES:
        np.testing.assert_array_equal(_unturn(_turn(a, k, f), k, f), a)


def test_an_equivariant_network_is_unchanged_by_self_ensembling():
    sr = Downscaler(
        Symmetric(3),
        name="symmetric",
        scale=3,
        n_in=1,
        transform="log",
        static_names=["elevation"],
        static_norm={"elevation": [0.0, 1.0]},
    )
    cube = _coarse()
    rng = np.random.default_rng(1)
    elevation = rng.normal(size=(15, 21)).astype(np.float32)  # not symmetric: turned with the input
    plain = downscale(cube, sr, static={"elevation": elevation})
    ens = downscale(cube, sr, static={"elevation": elevation}, self_ensemble=True)
    np.testing.assert_allclose(ens.values, plain.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.isnan(ens.values), np.isnan(plain.values))
    assert np.isfinite(plain.values).sum() > 200


@pytest.mark.parametrize("arch", ["resnet-rc", "rec-convnet-spc"])
def test_self_ensemble_is_the_mean_of_the_eight_turned_runs(arch):
    sr = _random_network(arch=arch)
    rng = np.random.default_rng(2)
    frames = rng.gamma(0.6, 2.0, (3, 2, 5, 7)).astype(np.float32)
    frames[0, -1, 2, 3] = np.nan
    static = rng.normal(size=(1, 15, 21)).astype(np.float32)
    runs = [
        _unturn(sr.predict(_turn(frames, k, f).copy(), _turn(static, k, f).copy()), k, f)
        for k, f in SYMMETRIES
    ]
    ens = sr.predict(frames, static, self_ensemble=True, batch_size=2)
    assert ens.shape == (3, 15, 21)
    np.testing.assert_allclose(ens, np.mean(runs, axis=0), rtol=1e-5, atol=1e-6)
    plain = sr.predict(frames, static)
    np.testing.assert_array_equal(np.isnan(ens), np.isnan(plain))
    assert np.isnan(ens[0, 6:9, 9:12]).all() and np.isfinite(ens[1:]).all()
    assert np.abs(ens - plain)[np.isfinite(plain)].max() > 1e-3  # a random network is not symmetric


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 9, 4)])
def test_shapes_coordinates_and_masks_equal_the_plain_path(shape):
    sr = _random_network(n_in=1, n_static=0)
    cube = _coarse(shape)
    plain = downscale(cube, sr)
    ens = downscale(cube, sr, self_ensemble=True)
    assert ens.dims == plain.dims and ens.shape == plain.shape
    for name in plain.coords:
        np.testing.assert_array_equal(ens[name].values, plain[name].values)
    np.testing.assert_array_equal(np.isnan(ens.values), np.isnan(plain.values))
    assert ens.attrs["downscaling_model"] == plain.attrs["downscaling_model"]
    assert '"self_ensemble": true' in ens.attrs["downscaling_params"]
    assert "self_ensemble" not in plain.attrs["downscaling_params"]
    lazy = downscale(cube.chunk({"time": 1}), sr, self_ensemble=True)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.values, ens.values, rtol=1e-6, atol=1e-6)


def test_the_recorded_fine_grid_of_padded_pairs_is_kept(tiny_downscaler):
    cube = synthetic_radar(n_times=6, size=34, seed=1)
    low, high = coarsened(cube, 4, boundary="pad")
    tr = tiny_downscaler()
    tr.fit(low, high)
    fine = downscale(low, model=tr.model, self_ensemble=True)
    assert fine.shape == cube.shape
    np.testing.assert_array_equal(fine.x.values, cube.x.values)
    np.testing.assert_array_equal(fine.y.values, cube.y.values)


@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic"])
def test_baselines_are_symmetric_so_self_ensembling_is_refused(method):
    values = _coarse().fillna(0.0).values
    plain = interpolate(values, 3, method)
    for k, f in SYMMETRIES:
        turned = _unturn(interpolate(_turn(values, k, f).copy(), 3, method), k, f)
        np.testing.assert_allclose(turned, plain, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="would change nothing for model"):
        downscale(_coarse(), method, 3, self_ensemble=True)


def test_bad_values_are_refused():
    sr = _random_network(n_in=1, n_static=0)
    for bad in ("yes", 8, None):
        with pytest.raises(TypeError, match="self_ensemble must be True or False"):
            downscale(_coarse(), sr, self_ensemble=bad)
        with pytest.raises(TypeError, match="self_ensemble must be True or False"):
            sr.predict(np.zeros((1, 1, 4, 4), np.float32), self_ensemble=bad)
    with pytest.raises(TypeError, match="self_ensemble must be True or False"):
        _coarse().nowcast.downscale(sr, self_ensemble="no")


def test_cli_self_ensemble(tmp_path, capsys, tiny_downscaler):
    from xnowcast.cli import main
    from xnowcast.io import open_forecast

    low, high = coarsened(synthetic_radar(n_times=4, size=32, seed=2), 4)
    tr = tiny_downscaler()
    tr.fit(pairs=(low, high))
    tr.save(tmp_path / "sr.pt")
    src = tmp_path / "coarse.nc"
    low.to_dataset(name="rain").to_netcdf(src)
    out = tmp_path / "fine.zarr"
    args = ["downscale", str(src), "--model", str(tmp_path / "sr.pt"), "--out", str(out)]
    assert main([*args, "--self-ensemble"]) == 0
    fine = open_forecast(out)
    assert '"self_ensemble": true' in fine.attrs["downscaling_params"]
    np.testing.assert_allclose(
        fine.values, downscale(low, tr.model, self_ensemble=True).values, rtol=1e-5, atol=1e-6
    )
    bicubic = ["downscale", str(src), "--model", "bicubic", "--scale", "4", "--out", str(out)]
    assert main([*bicubic, "--self-ensemble", "--overwrite"]) != 0
    assert "would change nothing" in capsys.readouterr().err
