"""The PyTorch networks and the adapter that runs them behind the model contract."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xnowcast  # noqa: E402
from xnowcast.datasets import synthetic_radar  # noqa: E402
from xnowcast.models import get_model, run_model  # noqa: E402
from xnowcast.models.neural import TorchModel, resolve_device  # noqa: E402
from xnowcast.models.neural.cells import ConvLSTMCell  # noqa: E402
from xnowcast.models.neural.conv3d import Conv3D  # noqa: E402
from xnowcast.models.neural.conv_ed_lstm import ConvEDLSTM  # noqa: E402
from xnowcast.models.neural.convlstm import ConvLSTM  # noqa: E402
from xnowcast.models.neural.unet import UNet  # noqa: E402
from xnowcast.models.settings import RunSettings  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny networks run fastest (and steadiest on a busy machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = {
    "conv3d": {"filters": [4, 4]},
    "convlstm": {"hidden": [4, 4]},
    "convlstm-stacked": {"hidden": [4], "variant": "stacked", "patch_size": 2},
    "convlstm-ar": {"hidden": [4], "autoregressive": True, "layer_norm": True},
    "conv-ed-lstm": {"hidden": [4, 4, 4]},
    "conv-ed-lstm-patch": {"hidden": [4, 4], "patch_size": 2, "layer_norm": False},
    "conv-ed-lstm-pool": {"hidden": [4, 4], "downsample": "maxpool", "decoder_input": "hidden"},
    "unet": {"depth": 2, "filters": 4},
    "unet-bilinear": {"depth": 1, "filters": 4, "upsample": "bilinear", "norm": "group"},
}


def _build(key: str, n_in: int = 3, n_out: int = 2, **extra) -> TorchModel:
    name = key.split("-stacked")[0].split("-ar")[0]
    for suffix in ("-pool", "-bilinear", "-patch"):
        name = name.replace(suffix, "")
    model = get_model(name, n_in=n_in, n_out=n_out, **TINY[key], **extra).with_settings(
        device="cpu"
    )
    assert isinstance(model, TorchModel)
    model.trained = True  # random weights are fine for shape checks
    return model


#: Input shapes seen by LastFrame networks (the adapter runs copies of the module).
CALLS: list[tuple[int, ...]] = []


class LastFrame(torch.nn.Module):
    """Repeats the last input frame: an identity forecaster with a learnable no-op."""

    def __init__(self, n_out: int = 3, size_multiple: int = 1):
        super().__init__()
        self.n_out = n_out
        self.size_multiple = size_multiple
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        assert torch.isfinite(x).all(), "the adapter must fill NaN before the network"
        CALLS.append(tuple(x.shape))
        return (self.scale * x[:, -1:]).repeat(1, self.n_out, 1, 1)


@pytest.mark.parametrize("key", sorted(TINY))
def test_every_model_keeps_odd_grids(key):
    model = _build(key)
    frames = np.random.default_rng(0).random((2, 3, 23, 17), dtype=np.float32) * 5
    out = run_model(model, frames)
    assert out.shape == (2, 2, 23, 17)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("key", sorted(TINY))
def test_gradients_reach_every_parameter(key):
    net = _build(key).module
    m = net.size_multiple
    x = torch.randn(2, 3, 4 * m, 2 * m)
    net(x).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("key", ["conv3d", "convlstm", "conv-ed-lstm", "unet"])
def test_residual_networks_start_as_persistence(key):
    model = _build(key, residual=True)
    frames = np.random.default_rng(5).random((2, 3, 16, 16), dtype=np.float32) * 10
    np.testing.assert_allclose(
        model.predict(frames), np.repeat(frames[:, -1:], 2, axis=1), rtol=1e-5
    )


def test_clip_keeps_forecasts_in_the_transform_range():
    class Wild(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x[:, -1] * 0 - 3.0, x[:, -1] * 0 + 50.0], dim=1)

    frames = np.ones((1, 2, 4, 4), np.float32)
    free = (
        TorchModel(Wild(), n_in=2, n_out=2, transform="log")
        .with_settings(device="cpu")
        .predict(frames)
    )
    assert free[0, 0].max() < 0 and free[0, 1].max() > 1e20  # expm1 of runaway values
    clipped = (
        TorchModel(Wild(), n_in=2, n_out=2, transform="log", clip=True)
        .with_settings(device="cpu")
        .predict(frames)
    )
    np.testing.assert_allclose(clipped[0, 0], 0.0)
    np.testing.assert_allclose(clipped[0, 1], 100.0, rtol=1e-5)  # the transform's vmax


def test_networks_reject_bad_shapes_and_params():
    net = ConvEDLSTM(n_in=3, n_out=2, hidden=[4, 4, 4])
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 3, 10, 8))
    with pytest.raises(ValueError, match="n_in=3"):
        net(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="variant"):
        ConvLSTM(variant="deep")
    with pytest.raises(ValueError, match="kernel_size"):
        ConvLSTM(hidden=[4, 4], kernel_size=[3])
    with pytest.raises(ValueError, match="downsample"):
        ConvEDLSTM(downsample="avg")
    with pytest.raises(ValueError, match="output_activation"):
        UNet(output_activation="tanh")


def test_recurrent_networks_run_any_number_of_steps():
    for net in (ConvLSTM(3, 2, hidden=[4]), ConvEDLSTM(3, 2, hidden=[4, 4])):
        assert net(torch.zeros(1, 3, 8, 8), n_out=5).shape == (1, 5, 8, 8)
    with pytest.raises(ValueError, match="always produces"):
        Conv3D(3, 2, filters=[2])(torch.zeros(1, 3, 8, 8), n_out=5)


@pytest.mark.parametrize(
    "net",
    [
        ConvLSTM(3, 4, hidden=[4], autoregressive=True),
        ConvLSTM(3, 4, hidden=[4], variant="stacked"),
        ConvEDLSTM(3, 4, hidden=[4, 4], decoder_input="output"),
    ],
)
def test_teacher_forcing_feeds_the_truth(net):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    t1, t2 = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    assert net.supports_teacher_forcing
    a = net(x, targets=t1, teacher_forcing=1.0)
    b = net(x, targets=t2, teacher_forcing=1.0)
    c = net(x, targets=t1, teacher_forcing=0.0)
    torch.testing.assert_close(a[:, 0], b[:, 0])  # the first step sees only the inputs
    assert not torch.allclose(a[:, 1:], b[:, 1:])  # later steps read the given truth
    torch.testing.assert_close(c, net(x))  # no forcing: the plain forecast


def test_one_convlstm_cell_serves_both_recurrent_models():
    for net in (ConvLSTM(3, 2, hidden=[4, 4]), ConvEDLSTM(3, 2, hidden=[4, 4])):
        cells = [m for m in net.modules() if "LSTM" in type(m).__name__ and m is not net]
        assert cells and all(type(c) is ConvLSTMCell for c in cells)
    cell = ConvLSTMCell(2, 5, kernel_size=5, layer_norm=True)
    x = torch.randn(3, 2, 9, 11)
    h, c = cell(x, cell.init_state(x))
    assert h.shape == c.shape == (3, 5, 9, 11)
    assert h.abs().max() <= 1  # h = o * tanh(c)
    stateless = ConvLSTMCell(0, 4)
    h2, _ = stateless(None, (h[:, :4], c[:, :4]))
    assert h2.shape == (3, 4, 9, 11)
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(1, 4, kernel_size=4)


def test_registry_builds_untrained_models_that_refuse_to_forecast():
    for name in ("conv3d", "convlstm", "conv-ed-lstm", "unet"):
        assert name in xnowcast.list_models()
    model = get_model("convlstm", n_in=2, n_out=3, hidden=[4], transform="dbr").with_settings(
        batch_size=4
    )
    assert (model.n_in, model.n_out, model.name, model.settings.batch_size) == (2, 3, "convlstm", 4)
    assert model.module.hidden == [4]
    assert model.get_params()["transform"]["name"] == "dbr"
    with pytest.raises(RuntimeError, match="untrained.*Trainer"):
        model.predict(np.zeros((1, 2, 8, 8), np.float32))
    with pytest.raises(TypeError, match="hidden"):
        get_model("convlstm", hiden=[4])
    with pytest.raises(ValueError, match="n_in=5 does not match"):
        TorchModel(ConvLSTM(3, 2, hidden=[4]), n_in=5)
    with pytest.raises(ValueError, match="pass n_in="):
        TorchModel(torch.nn.Identity())


def test_user_module_forecasts_like_persistence_and_keeps_nan():
    cube = synthetic_radar(n_times=8, size=40, seed=2)
    net = LastFrame(n_out=3)
    fc = xnowcast.forecast(
        cube, model=net, device="cpu", model_params={"n_in": 4, "n_out": 3, "transform": "log"}
    )
    last = cube.isel(time=-1).values
    assert fc.dims == ("lead_time", "y", "x") and fc.sizes["lead_time"] == 3
    assert fc.attrs["xnowcast_model"] == "torch"
    for k in range(3):
        np.testing.assert_allclose(fc.values[k], last, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isnan(last).any()  # outside radar range stays NaN


def test_nan_inputs_become_transformed_zero_rain():
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen["x"] = x.clone()
            return x[:, -1:]

    model = TorchModel(Spy(), n_in=2, n_out=1, transform="dbr").with_settings(device="cpu")
    frames = np.ones((1, 2, 4, 4), np.float32)
    frames[0, 0, 0, 0] = np.nan  # an earlier frame: filled, output stays defined
    frames[0, 1, 1, 1] = np.nan  # the last frame: output NaN there
    out = model.predict(frames)
    assert float(seen["x"][0, 0, 0, 0]) == -15.0  # dBR of zero rain
    assert np.isnan(out[0, 0, 1, 1]) and np.isfinite(out[0, 0, 0, 0])
    assert np.isnan(frames[0, 0, 0, 0])  # inputs untouched


def test_tiles_blend_without_seams():
    net = LastFrame(n_out=2, size_multiple=8)
    model = TorchModel(net, n_in=3, n_out=2).with_settings(
        tile=32, tile_overlap=8, device="cpu", batch_size=5
    )
    frames = np.random.default_rng(1).random((2, 3, 70, 90), dtype=np.float32) * 20
    CALLS.clear()
    out = model.predict(frames)
    np.testing.assert_allclose(out[:, 0], frames[:, -1], rtol=1e-5)
    np.testing.assert_allclose(out[:, 1], frames[:, -1], rtol=1e-5)
    assert {s[-2:] for s in CALLS} == {(32, 32)}  # the network only ever saw tiles
    assert max(s[0] for s in CALLS) <= 5  # batched by batch_size
    with pytest.raises(ValueError, match="tile_overlap"):
        TorchModel(net, n_in=3, n_out=2).with_settings(tile=16, tile_overlap=16)
    # a whole cube through forecast(): tiles of 20 (not a multiple of 8: each is padded),
    # log transform and NaN outside radar range, still the last frame everywhere
    cube = synthetic_radar(n_times=5, size=(61, 83), seed=6)
    tiled = TorchModel(net, n_in=3, n_out=2, transform="log").with_settings(
        tile=20, tile_overlap=6, device="cpu"
    )
    CALLS.clear()
    fc = xnowcast.forecast(cube, model=tiled)
    assert len(CALLS) > 1 and {s[-2:] for s in CALLS} == {(24, 24)}  # 20 padded to 24
    last = cube.isel(time=-1).values
    for k in range(2):
        np.testing.assert_allclose(fc.values[k], last, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_padding_to_the_network_multiple_is_cropped_back():
    net = LastFrame(n_out=1, size_multiple=8)
    model = TorchModel(net, n_in=2, n_out=1, transform="identity").with_settings(device="cpu")
    frames = np.arange(2 * 13 * 19, dtype=np.float32).reshape(1, 2, 13, 19)
    out = model.predict(frames)
    np.testing.assert_array_equal(out[0, 0], frames[0, 1])
    assert CALLS[-1][-2:] == (16, 24)


def test_the_wrapped_module_is_left_alone_but_retraining_is_seen():
    net = LastFrame(n_out=1)
    model = TorchModel(net, n_in=2, n_out=1).with_settings(device="cpu")
    frames = np.ones((1, 2, 4, 4), np.float32)
    assert model.predict(frames)[0, 0, 0, 0] == 1.0
    assert net.training  # not switched to eval mode
    with torch.no_grad():
        net.scale.mul_(3.0)  # weights changed in place, e.g. by an optimizer step
    assert model.predict(frames)[0, 0, 0, 0] == 3.0


def test_contract_violations_are_reported():
    class Wrong(torch.nn.Module):
        def forward(self, x):
            return x  # n_in frames instead of n_out

    with pytest.raises(RuntimeError, match="broke the contract"):
        model = TorchModel(Wrong(), n_in=2, n_out=3).with_settings(device="cpu")
        model.predict(np.ones((1, 2, 4, 4), np.float32))


def test_pickles_for_dask_and_lazy_forecasts_match():
    torch.manual_seed(0)
    model = _build("unet", n_in=3, n_out=2)
    frames = np.random.default_rng(2).random((3, 3, 16, 16), dtype=np.float32)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(frames), model.predict(frames))
    cube = synthetic_radar(n_times=8, size=16, seed=4).chunk({"time": 4})
    lazy = xnowcast.forecast(cube, model=model, init_times="all")
    assert lazy.chunks is not None
    eager = xnowcast.forecast(cube, model=model, init_times=cube.time.values[-1])
    np.testing.assert_allclose(
        lazy.isel(init_time=-1).values, eager.values, rtol=1e-6, equal_nan=True
    )


def test_device_and_precision():
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="precision"):
        TorchModel(LastFrame(), n_in=2).with_settings(precision="fp8")
    torch.manual_seed(0)
    net = UNet(2, 2, depth=1, filters=4)
    frames = np.random.default_rng(3).random((1, 2, 16, 16), dtype=np.float32)
    fp32 = (
        TorchModel(net, transform="identity")
        .with_settings(device="cpu", precision="fp32")
        .predict(frames)
    )
    bf16 = (
        TorchModel(net, transform="identity")
        .with_settings(device="cpu", precision="bf16")
        .predict(frames)
    )
    np.testing.assert_allclose(bf16, fp32, atol=0.1)


def test_import_xnowcast_does_not_import_torch():
    code = (
        "import sys, xnowcast; assert 'torch' not in sys.modules; "
        "xnowcast.Trainer; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_run_settings_apply_to_a_model_instance_and_stay_out_of_its_identity(tmp_path):
    """Issue 14: a loaded model takes device=; attrs and params hold no run settings."""
    from xnowcast.models.neural.checkpoint import save_checkpoint

    net = get_model("unet", n_in=3, n_out=2, depth=1, filters=4)
    meta = {"architecture": "unet", "model_params": {"depth": 1, "filters": 4}, "n_in": 3}
    path = save_checkpoint(tmp_path / "u.pt", net.module.state_dict(), {**meta, "n_out": 2})
    model = xnowcast.load_model(path)
    cube = synthetic_radar(n_times=8, size=32)
    fc = cube.nowcast.forecast(model=model, device="cpu", batch_size=2, tile=24)
    assert model.settings == RunSettings()  # the caller's instance is unchanged
    params = json.loads(fc.attrs["xnowcast_model_params"])
    assert not set(params) & set(RunSettings.names())
    by_path = cube.nowcast.forecast(model=str(path), device="cpu", batch_size=2, tile=24)
    np.testing.assert_array_equal(fc.values, by_path.values)
    with pytest.raises(TypeError, match="run settings, not model parameters"):
        get_model("unet", n_in=3, n_out=2, depth=1, filters=4, device="cpu")
