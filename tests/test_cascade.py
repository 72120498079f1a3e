"""Cascade decomposition, per-scale AR decay, probability matching and the cascade forecast."""

from __future__ import annotations

import numpy as np
import pytest

from xnowcast.cascade import (
    ar2_parameters,
    ar_lead_coefficients,
    bandpass_filters,
    decompose,
    lead_filters,
    level_correlations,
    recompose,
)
from xnowcast.probmatching import match, probabilities, quantiles

pytest.importorskip("numba")


def _smooth_noise(rng, shape, sigma=3.0):
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.normal(size=shape), sigma).astype("float32")


@pytest.mark.parametrize("shape", [(64, 64), (100, 73), (31, 128)])
@pytest.mark.parametrize("n_levels", [2, 6, 8])
def test_decomposition_recomposes_to_its_input(shape, n_levels):
    rng = np.random.default_rng(0)
    field = (rng.gamma(0.5, 3.0, shape) - 10).astype("float32")
    levels = decompose(field, bandpass_filters(shape, n_levels))
    assert levels.shape == (n_levels, *shape)
    np.testing.assert_allclose(recompose(levels), field, atol=1e-5, rtol=0)


def test_levels_hold_their_own_scales():
    shape = (128, 128)
    x = np.mgrid[: shape[0], : shape[1]][1]
    coarse = np.sin(2 * np.pi * x / 64).astype("float32")  # 2 waves across
    fine = np.sin(2 * np.pi * x / 4).astype("float32")  # 32 waves across
    filters = bandpass_filters(shape, 6)
    energy_coarse = (decompose(coarse, filters) ** 2).sum(axis=(1, 2))
    energy_fine = (decompose(fine, filters) ** 2).sum(axis=(1, 2))
    assert energy_coarse.argmax() < energy_fine.argmax()
    assert energy_coarse[:2].sum() > 0.9 * energy_coarse.sum()
    assert energy_fine[-3:].sum() > 0.9 * energy_fine.sum()


def test_filters_refuse_bad_arguments():
    with pytest.raises(ValueError, match="n_levels"):
        bandpass_filters((32, 32), 1)
    with pytest.raises(ValueError, match="NaN"):
        decompose(np.full((8, 8), np.nan, "float32"), bandpass_filters((8, 8), 2))
    with pytest.raises(ValueError, match="grid"):
        decompose(np.zeros((8, 9), "float32"), bandpass_filters((8, 8), 2))


def test_ar2_parameters_of_a_synthetic_ar2_field_are_recovered():
    """Fields that follow one AR(2) process at every pixel: every level has its phi."""
    phi1, phi2 = 1.2, -0.35
    rng = np.random.default_rng(3)
    shape = (192, 192)
    prev2 = rng.normal(size=shape)
    prev1 = rng.normal(size=shape)
    frames = []
    for _ in range(60):  # burn in to the stationary distribution
        new = phi1 * prev1 + phi2 * prev2 + rng.normal(size=shape)
        prev2, prev1 = prev1, new
        frames.append(new)
    a, b, c = (f.astype("float32") for f in frames[-3:])
    filters = bandpass_filters(shape, 6)
    g1 = level_correlations(c, b, filters)
    g2 = level_correlations(c, a, filters)
    phi = ar2_parameters(g1, g2)
    # small-scale levels hold many independent samples: close estimates
    np.testing.assert_allclose(phi[3:, 0], phi1, atol=0.06)
    np.testing.assert_allclose(phi[3:, 1], phi2, atol=0.06)


def test_ar2_parameters_are_made_stationary():
    phi = ar2_parameters(np.array([0.9, 0.5]), np.array([0.2, 0.99]))
    roots_ok = [np.all(np.abs(np.roots([1, -p1, -p2])) < 1) for p1, p2 in phi]
    assert all(roots_ok)


def test_lead_coefficients_decay_and_follow_the_recursion():
    phi = np.array([[1.3, -0.4], [0.5, 0.0]])
    c = ar_lead_coefficients(phi, 30)
    # x_{t+2} = phi1 x_{t+1} + phi2 x_t  ->  a_2 = phi1 a_1 + phi2, b_2 = phi1 b_1
    np.testing.assert_allclose(c[1, 0, 0], 1.3 * c[0, 0, 0] - 0.4)
    np.testing.assert_allclose(c[1, 0, 1], 1.3 * c[0, 0, 1])
    assert abs(c[-1]).max() < abs(c[0]).max()
    np.testing.assert_allclose(c[:, 1, 0], 0.5 ** np.arange(1, 31))


def test_lead_filters_keep_the_mean():
    filters = bandpass_filters((32, 32), 4)
    a, b = lead_filters(filters, ar_lead_coefficients(np.full((4, 2), [0.1, 0.0]), 5))
    field = np.random.default_rng(0).normal(size=(32, 32)).astype("float32") + 7
    spectrum = np.fft.rfft2(field)
    out = np.fft.irfft2(a[-1] * spectrum + b[-1] * spectrum, s=field.shape)
    assert out.mean() == pytest.approx(field.mean(), abs=1e-4)
    assert out.std() < 0.01 * field.std()


def test_cdf_matching_gives_the_reference_distribution():
    rng = np.random.default_rng(1)
    reference = np.where(rng.random((200, 200)) < 0.7, -15, rng.gamma(2, 5, (200, 200)) - 10)
    reference = reference.astype("float32")
    field = _smooth_noise(rng, (200, 200))
    out = match(field, reference, "cdf", floor=-15.0)
    for threshold in (-10, 0, 10, 20, 30, 40):  # the area above every threshold is kept
        assert (out >= threshold).mean() == pytest.approx((reference >= threshold).mean(), abs=2e-3)
    assert out.max() == pytest.approx(reference.max(), rel=1e-5)
    assert out.min() == pytest.approx(reference.min())
    # ranks are kept: the wettest forecast pixels stay the wettest
    assert (np.argsort(out, axis=None)[-100:] == np.argsort(field, axis=None)[-100:]).all()


def test_mean_matching_keeps_the_wet_area_and_its_mean():
    rng = np.random.default_rng(2)
    reference = np.where(rng.random((150, 150)) < 0.8, -15.0, rng.normal(5, 3, (150, 150)))
    field = _smooth_noise(rng, (150, 150))
    out = match(field, reference.astype("float32"), "mean", floor=-15.0)
    wet = out > -15
    assert wet.mean() == pytest.approx((reference > -15).mean(), abs=0.003)
    # the mapping is built from about a thousand quantiles: the mean within 3 %
    assert out[wet].mean() == pytest.approx(reference[reference > -15].mean(), rel=0.03)


def test_matching_refuses_nan_and_bad_names():
    with pytest.raises(ValueError, match="NaN"):
        match(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), floor=0.0)
    with pytest.raises(ValueError, match="matching must be one of"):
        match(np.zeros(4), np.zeros(4), "quantile", floor=0.0)
    with pytest.raises(ValueError, match="matching"):
        match(np.zeros(4), np.zeros(4), 1.5, floor=0.0)


def _rain(rng, shape):
    field = _smooth_noise(rng, shape, 4.0)
    return np.where(field > 0.02, 40 * field, 0.0).astype("float32")


def test_cascade_forecast_of_a_frozen_field_is_persistence():
    from xnowcast.extrapolation.cascade import extrapolate_cascade
    from xnowcast.transforms import get_transform

    rain = _rain(np.random.default_rng(4), (96, 96))
    frames = np.stack([rain] * 3)
    out = extrapolate_cascade(
        frames, np.zeros((2, 96, 96), "float32"), 6, transform=get_transform("dbr")
    )
    np.testing.assert_allclose(out[0], rain, atol=0.02 * rain.max())
    assert ((out[-1] >= 1) == (rain >= 1)).mean() > 0.98


def test_a_gap_in_an_earlier_frame_does_not_decorrelate_the_scales():
    """Correlations are measured where every frame has data: a frozen field with a gap in
    its previous frame only is forecast as without the gap (AR(1): persistence). Filling
    each frame only where it is missing would see the rain of the gap vanish and appear,
    decorrelate the small scales and smooth the forecast (75 % of the peak off here)."""
    from xnowcast.extrapolation.cascade import extrapolate_cascade
    from xnowcast.transforms import get_transform

    rain = _rain(np.random.default_rng(4), (96, 96))
    frames = np.stack([rain] * 3)
    gap = frames.copy()
    gap[1, 16:80, 16:80] = np.nan
    flow = np.zeros((2, 96, 96), "float32")
    options = dict(transform=get_transform("dbr"), ar_order=1)
    plain = extrapolate_cascade(frames, flow, 6, **options)
    gapped = extrapolate_cascade(gap, flow, 6, **options)
    assert np.nansum(frames[1]) > 1.5 * np.nansum(gap[1])  # the gap holds rain
    np.testing.assert_allclose(gapped, plain, atol=1e-4 * rain.max())


def test_cascade_forecast_moves_with_the_flow_and_keeps_the_missing_area():
    from xnowcast.extrapolation.cascade import extrapolate_cascade
    from xnowcast.transforms import get_transform

    rng = np.random.default_rng(5)
    rain = _rain(rng, (80, 120))
    frames = np.stack([np.roll(rain, s, axis=1) for s in (-4, -2, 0)])
    frames[:, :, 100:] = np.nan  # outside radar range
    flow = np.zeros((2, 80, 120), "float32")
    flow[0] = 2.0
    out = extrapolate_cascade(frames, flow, 5, transform=get_transform("dbr"))
    for k in range(5):
        shift = 2 * (k + 1)
        expected_nan = np.zeros((80, 120), bool)
        expected_nan[:, 100 + shift :] = True  # the missing area moved, not grown
        expected_nan[:, :shift] = True  # came in from outside the domain
        assert (np.isnan(out[k]) == expected_nan).all()
    # the rain moved with the flow: best overlap with the last frame shifted by 2 per step
    last = np.nan_to_num(frames[-1])
    lead3 = np.nan_to_num(out[2])
    overlaps = [(np.roll(last, s, axis=1)[:, 10:90] * lead3[:, 10:90]).sum() for s in range(12)]
    assert int(np.argmax(overlaps)) == 6


def test_cascade_forecast_smooths_small_scales_that_decorrelate():
    """Noise that changes every frame fades; the matched forecast keeps the rain area."""
    from xnowcast.extrapolation.cascade import extrapolate_cascade
    from xnowcast.transforms import get_transform

    rng = np.random.default_rng(6)
    base = _rain(rng, (128, 128))
    frames = np.stack([base * rng.uniform(0.3, 1.7, base.shape) for _ in range(3)]).astype("f4")
    out = extrapolate_cascade(
        frames, np.zeros((2, 128, 128), "float32"), 12, transform=get_transform("dbr")
    )
    roughness = [np.abs(np.diff(o, axis=1)).mean() for o in (frames[-1], out[0], out[-1])]
    assert roughness[0] > roughness[1] > roughness[2]
    assert (out[-1] >= 0.1).mean() == pytest.approx((frames[-1] >= 0.1).mean(), abs=0.01)


def test_extrapolate_with_the_missing_mask_given_apart():
    from xnowcast.extrapolation import extrapolate

    rng = np.random.default_rng(7)
    frames = rng.random((4, 40, 50)).astype("float32")
    mask = np.zeros((40, 50), bool)
    mask[10:20, 30:45] = True
    flow = np.zeros((2, 40, 50), "float32")
    flow[1] = 1.5
    with_nan = np.where(mask, np.nan, frames).astype("float32")
    expected = extrapolate(with_nan, flow, 4)
    got = extrapolate(frames, flow, 4, missing=mask)
    assert (np.isnan(got) == np.isnan(expected)).all()
    near_mask = np.zeros_like(mask)
    near_mask[7:23, 27:48] = True
    far = ~np.isnan(expected) & ~np.roll(near_mask, 6, axis=0)[None]
    np.testing.assert_allclose(got[far], expected[far], rtol=1e-6)
    with pytest.raises(ValueError, match="finite"):
        extrapolate(with_nan, flow, 4, missing=mask)
    with pytest.raises(ValueError, match="shape"):
        extrapolate(frames, flow, 4, missing=mask[:10])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ar_order": 3}, "ar_order must be 1 or 2"),
        ({"ar_order": "2"}, "ar_order must be 1 or 2"),
        ({"n_levels": 1}, "n_levels"),
        ({"matching": "quantile"}, "matching must be one of"),
    ],
)
def test_cascade_forecast_refuses_bad_options(kwargs, match):
    from xnowcast.extrapolation.cascade import extrapolate_cascade
    from xnowcast.transforms import get_transform

    frames = np.ones((3, 16, 16), "float32")
    with pytest.raises(ValueError, match=match):
        extrapolate_cascade(
            frames, np.zeros((2, 16, 16), "float32"), 2, transform=get_transform("dbr"), **kwargs
        )


def test_cascade_forecast_needs_enough_frames():
    from xnowcast.extrapolation.cascade import extrapolate_cascade
    from xnowcast.transforms import get_transform

    with pytest.raises(ValueError, match="pass more frames or lower ar_order"):
        extrapolate_cascade(
            np.ones((2, 16, 16), "float32"),
            np.zeros((2, 16, 16), "float32"),
            2,
            transform=get_transform("dbr"),
        )


def test_optical_flow_model_checks_its_extrapolation_options():
    from xnowcast.models import get_model

    model = get_model("optical-flow", extrapolation_kwargs={"n_levels": 4})
    assert model.get_params()["extrapolation_kwargs"]["n_levels"] == 4
    assert get_model("optical-flow", **model.get_params()).get_params() == model.get_params()
    with pytest.raises(TypeError, match="valid options are: n_levels, ar_order, matching"):
        get_model("optical-flow", extrapolation_kwargs={"levels": 4})
    with pytest.raises(TypeError, match="takes no extrapolation_kwargs"):
        get_model("optical-flow", extrapolation="advection", extrapolation_kwargs={"n_levels": 4})
    with pytest.raises(ValueError, match="needs n_in >= 3"):
        get_model("optical-flow", n_in=2, n_flows=1)
    with pytest.raises(ValueError, match="extrapolation"):
        get_model("optical-flow", extrapolation="steps")


@pytest.mark.parametrize("stride", [1, 3, 7])
def test_sorted_sample_equals_numpy_sort(stride):
    from xnowcast.lookup import sorted_sample

    rng = np.random.default_rng(4)
    values = (rng.normal(size=5001) * rng.choice([1e-3, 1.0, 1e6], 5001)).astype("float32")
    values[::7], values[::11], values[::13] = 0.0, -0.0, -15.0  # ties and both zeros
    values[5], values[9] = np.inf, -np.inf
    lo, hi = values.min(), values.max()
    expected = np.sort(np.concatenate([values[::stride], [lo, hi]]))
    np.testing.assert_array_equal(sorted_sample(values, stride, lo, hi), expected)


def test_quantiles_are_those_of_the_sorted_strided_sample():
    rng = np.random.default_rng(5)
    field = _smooth_noise(rng, (300, 250))  # 75 000 pixels: a strided sample
    flat = field.ravel()
    stride = flat.size // 2**16
    sample = np.sort(np.concatenate([flat[::stride], [flat.min(), flat.max()]]))
    positions = np.rint(probabilities(9) * (sample.size - 1)).astype(int)
    q = quantiles(field, 9)
    assert q[0] == flat.min() and q[-1] == flat.max()
    np.testing.assert_array_equal(q, sample[positions])
    # NaN: numpy's order (NaN last), as before the compiled sort
    with_nan = np.array([2.0, np.nan, 1.0], "float32")
    assert np.isnan(quantiles(with_nan, 3)[-1])


def test_filter_spectrum_equals_the_lead_filters():
    from xnowcast.extrapolation.kernels import filter_spectrum

    rng = np.random.default_rng(6)
    filters = bandpass_filters((40, 52), 5)
    phi = np.stack([np.linspace(0.95, 0.3, 5), np.linspace(0.02, -0.1, 5)], axis=-1)
    coefficients = ar_lead_coefficients(phi, 4).astype("float32")
    last, previous = np.fft.rfft2(rng.normal(size=(2, 40, 52)).astype("float32"))
    a, b = lead_filters(filters, coefficients)
    out = np.empty_like(last)
    for k in range(4):
        filter_spectrum(
            filters.weights,
            coefficients[k, :, 0].copy(),
            coefficients[k, :, 1].copy(),
            last.view("float32"),
            previous.view("float32"),
            out.view("float32"),
        )
        np.testing.assert_allclose(out, a[k] * last + b[k] * previous, rtol=1e-5, atol=1e-4)
        assert out[0, 0] == last[0, 0]  # the mean is kept


def test_rfft2_equals_numpy():
    from xnowcast.cascade import rfft2

    field = np.random.default_rng(7).normal(size=(3, 30, 41)).astype("float32")
    np.testing.assert_allclose(rfft2(field), np.fft.rfft2(field), rtol=0, atol=1e-4)


def test_cascade_forecast_equals_the_plain_formulation():
    """The fused per-lead loop against the cascade written out with whole filter arrays."""
    from xnowcast.extrapolation import extrapolate
    from xnowcast.extrapolation.cascade import ar_parameters, extrapolate_cascade
    from xnowcast.probmatching import apply_table, match_table
    from xnowcast.transforms import get_transform

    rng = np.random.default_rng(8)
    frames = np.exp(np.stack([_smooth_noise(rng, (64, 72)) * 3 for _ in range(3)]) - 1)
    frames = frames.astype("float32")
    frames[:, :5, :9] = np.nan  # outside the radar
    flow = np.zeros((2, 64, 72), "float32")  # no motion: nothing to align
    tf = get_transform("dbr")
    ours = extrapolate_cascade(frames, flow, 5, transform=tf, n_levels=4, matching=0.5)
    floor = -15.0
    z = np.where(np.isnan(frames), floor, tf.forward(frames))
    filters = bandpass_filters(z.shape[1:], 4)
    spectra = np.fft.rfft2(z)
    a, b = lead_filters(filters, ar_lead_coefficients(ar_parameters(spectra, filters, 2), 5))
    probs = probabilities(1024)
    reference_q = quantiles(z[-1], 1024)
    expected = np.empty_like(ours)
    for k in range(5):
        smooth = np.fft.irfft2(a[k] * spectra[-1] + b[k] * spectra[-2], s=z.shape[1:])
        knots, targets = match_table(
            quantiles(smooth, 1024), reference_q, 0.5, floor=floor, probs=probs
        )
        physical = tf.inverse(targets.astype("float32")).astype("float64")
        expected[k] = apply_table(smooth.astype("float32"), knots, physical)
    expected = extrapolate(expected, flow, 5, missing=np.isnan(frames[-1]))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
