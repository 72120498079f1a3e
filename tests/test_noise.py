"""Correlated noise: the estimated power spectrum, unit variance, per-level std, localisation."""

from __future__ import annotations

import numpy as np
import pytest

from xnowcast.cascade import bandpass_filters, decompose
from xnowcast.noise import (
    generate_noise,
    level_noise_std,
    noise_filter,
    noise_spectrum,
    radial_power_spectrum,
)


def _power_law_field(size=128, beta=3.0, seed=0):
    """A Gaussian random field with radially averaged power ~ k^-beta."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    k[0, 0] = 1.0
    spectrum = np.fft.rfft2(rng.normal(size=(size, size))) * k ** (-beta / 2)
    return np.fft.irfft2(spectrum, s=(size, size))


def _slope(k, power, lo=3, hi=40):
    keep = (k >= lo) & (k <= hi)
    return np.polyfit(np.log(k[keep]), np.log(power[keep]), 1)[0]


def _mean_spectrum(filt, n=12):
    return np.mean(
        [
            radial_power_spectrum(generate_noise(filt, np.random.default_rng(s)))[1]
            for s in range(n)
        ],
        axis=0,
    )


def test_nonparametric_noise_has_the_fields_radially_averaged_spectrum():
    field = _power_law_field(beta=3.0)
    k, target = radial_power_spectrum(field, taper=0.2)
    got = _mean_spectrum(noise_filter(field, "nonparametric"))
    ratio = np.log(got / got.sum()) - np.log(target / target.sum())
    ratio -= np.median(ratio)  # the shapes are compared, not the total power
    assert np.abs(ratio[1:48]).mean() < 0.2
    assert abs(_slope(k, got) - _slope(k, target)) < 0.25


def test_parametric_noise_follows_the_fitted_power_law():
    for beta in (2.0, 3.5):
        field = _power_law_field(beta=beta, seed=3)
        k, _ = radial_power_spectrum(field)
        got = _mean_spectrum(noise_filter(field, "parametric", scale_break=4))
        assert _slope(k, got, 6, 50) == pytest.approx(-beta, abs=0.35)


@pytest.mark.parametrize("method", ["nonparametric", "parametric", "local"])
def test_noise_has_zero_mean_and_unit_variance(method):
    field = _power_law_field(size=96)
    options = {"window": 48} if method == "local" else {}
    filt = noise_filter(field, method, **options)
    noise = np.stack([generate_noise(filt, np.random.default_rng(s)) for s in range(8)])
    assert noise.dtype == np.float32 and noise.shape == (8, 96, 96)
    assert abs(noise.mean()) < 0.05
    assert noise.std(axis=(1, 2)).mean() == pytest.approx(1.0, abs=0.1)


def test_level_noise_std_is_the_std_of_each_level_of_the_noise():
    field = _power_law_field(size=96, beta=2.5)
    filters = bandpass_filters((96, 96), 6)
    filt = noise_filter(field)
    expected = level_noise_std(filt, filters)
    levels = [decompose(generate_noise(filt, np.random.default_rng(s)), filters) for s in range(16)]
    measured = np.mean([lev.std(axis=(1, 2)) for lev in levels], axis=0)
    np.testing.assert_allclose(measured[1:], expected[1:], rtol=0.1)


def test_local_noise_follows_the_local_structure():
    """Smooth rain on the left, rough on the right: the local noise is rougher on the right."""
    smooth = _power_law_field(size=128, beta=4.0, seed=1)
    rough = np.random.default_rng(2).normal(size=(128, 128))
    field = np.concatenate([smooth[:, :64] / smooth.std(), rough[:, 64:]], axis=1)

    def roughness(noise):  # share of the variance in the finest scales, per half
        fine = noise - np.fft.irfft2(
            np.fft.rfft2(noise)
            * (np.hypot(*np.meshgrid(np.fft.rfftfreq(128), np.fft.fftfreq(128))) < 0.1),
            s=noise.shape,
        )
        return [
            float((fine[:, s] ** 2).sum() / (noise[:, s] ** 2).sum())
            for s in (slice(8, 56), slice(72, 120))
        ]

    local = noise_filter(field, "local", window=32, overlap=0.5, min_wet=0.0)
    left, right = np.mean(
        [roughness(generate_noise(local, np.random.default_rng(s))) for s in range(6)], axis=0
    )
    assert right > 2 * left
    glob = noise_filter(field, "nonparametric")
    g_left, g_right = np.mean(
        [roughness(generate_noise(glob, np.random.default_rng(s))) for s in range(6)], axis=0
    )
    assert g_right < 1.5 * g_left  # the global filter is the same everywhere


def test_same_stream_same_noise_and_spectrum_matches_the_field():
    filt = noise_filter(_power_law_field(size=32))
    a = noise_spectrum(filt, np.random.default_rng(5))
    b = noise_spectrum(filt, np.random.default_rng(5))
    assert a.dtype == np.complex64 and np.array_equal(a, b)
    assert not np.array_equal(a, noise_spectrum(filt, np.random.default_rng(6)))


def test_a_flat_field_gives_power_law_noise_not_zeros():
    filt = noise_filter(np.full((32, 32), -15.0))
    assert generate_noise(filt, np.random.default_rng(0)).std() > 0.5


def test_bad_input_names_the_fix():
    with pytest.raises(ValueError, match="fill missing pixels"):
        noise_filter(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="noise must be one of"):
        noise_filter(np.zeros((8, 8)), "pink")
    with pytest.raises(TypeError, match="valid options are: taper"):
        noise_filter(np.zeros((8, 8)), "nonparametric", window=3)
    with pytest.raises(ValueError, match="grid"):
        level_noise_std(noise_filter(np.zeros((8, 8))), bandpass_filters((16, 16), 3))
