"""The torch path of the extrapolation equals the compiled CPU kernels (torch on the CPU here;
on a machine with CUDA the same comparisons run on the GPU)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("numba")

import torch

from xnowcast.extrapolation import accelerated, extrapolate
from xnowcast.extrapolation.cascade import extrapolate_cascade
from xnowcast.transforms import get_transform

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def rain(shape=(48, 56), seed=0) -> np.ndarray:
    """Three frames of patchy rain (mm/h) with a missing wedge."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(3, *shape))
    k = np.fft.fftfreq(shape[0])[:, None] ** 2 + np.fft.fftfreq(shape[1])[None] ** 2
    smooth = np.fft.ifft2(np.fft.fft2(noise) / (k + 1e-3)).real
    frames = np.where(smooth > 0, np.exp(smooth / smooth.std()), 0.0).astype(np.float32)
    frames[:, :8, :10] = np.nan
    return frames


def swirl(shape=(48, 56)) -> np.ndarray:
    """A rotating flow with a drift (pixels per step)."""
    y, x = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    cy, cx = shape[0] / 2, shape[1] / 2
    return np.stack([0.8 - 0.04 * (y - cy), 0.3 + 0.04 * (x - cx)]).astype(np.float32)


def assert_same(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, atol=atol, rtol=0, equal_nan=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("interpolation", "atol"), [("linear", 1e-5), ("nearest", 0), ("cubic", 1e-4)]
)
def test_advection_equals_the_cpu_kernel(device, interpolation, atol):
    frame = rain()[-1]
    options = dict(interpolation=interpolation, fill=-1.0)
    cpu = extrapolate(frame, swirl(), 6, **options)
    assert np.isnan(cpu).any() and (cpu == -1).any()  # both masks are exercised
    assert_same(extrapolate(frame, swirl(), 6, device=device, **options), cpu, atol)


@pytest.mark.parametrize("device", DEVICES)
def test_one_source_per_lead_and_lead_groups(device, monkeypatch):
    sources = np.nan_to_num(rain()).copy()
    sources[1] += 1.0
    cpu = extrapolate(sources, swirl(), 3)
    monkeypatch.setattr(accelerated, "MAX_PIXELS", 48 * 56)  # one lead time per group
    assert_same(extrapolate(sources, swirl(), 3, device=device), cpu, 1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("matching", ["cdf", 0.8, "mean"])
def test_cascade_equals_the_cpu_path(device, matching):
    frames = rain()
    options = dict(transform=get_transform("dbr"), n_levels=5, matching=matching)
    cpu = extrapolate_cascade(frames, swirl(), 8, **options)
    gpu = extrapolate_cascade(frames, swirl(), 8, device=device, **options)
    np.testing.assert_array_equal(np.isnan(gpu), np.isnan(cpu))
    diff = np.abs(gpu - cpu)[~np.isnan(cpu)]
    # float32 rounding of the filtered field (1e-6 dB) moves the quantile knots of the
    # matching a little; where knots crowd, the table is steep and a pixel moves up to
    # a few 1e-3 mm/h. Almost all pixels agree to float32 precision.
    assert diff.max() < 0.01
    assert np.mean(diff < 1e-4 * np.maximum(np.abs(cpu[~np.isnan(cpu)]), 1)) > 0.995
    assert np.nanmax(cpu) > 1  # rain survives: the comparison is not of empty fields


def test_cascade_writes_into_out():
    frames = rain()
    out = np.full((4, 48, 56), 7.0, np.float32)
    got = extrapolate_cascade(
        frames, swirl(), 4, transform=get_transform("dbr"), out=out, device="cpu"
    )
    assert got is out and not (out == 7.0).all()


def test_accelerator_choice():
    assert accelerated.accelerator("cpu") is None
    assert accelerated.accelerator("mps") is None
    if not torch.cuda.is_available():
        assert accelerated.accelerator("auto") is None
        with pytest.raises(ValueError, match="sees no CUDA GPU.*device='auto' or 'cpu'"):
            accelerated.accelerator("cuda")
    else:
        assert accelerated.accelerator("auto").type == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_optical_flow_model_on_the_gpu_equals_the_cpu():
    from xnowcast import get_model

    frames = np.nan_to_num(rain(shape=(64, 64)))[None].repeat(4, axis=1)[:, :4]
    model = get_model("optical-flow", n_in=4, n_out=6)
    cpu = model.with_settings(device="cpu").predict(frames)
    gpu = model.with_settings(device="cuda").predict(frames)
    assert_same(gpu, cpu, 1e-4)
