"""The lag-2 adjustment of the steps ensemble's AR(2) levels (``lag2_adjust``)."""

from __future__ import annotations

import numpy as np
import pytest

from xnowcast.cascade import (
    ar2_parameters,
    ar_lead_coefficients,
    bandpass_filters,
    lead_filters,
    real_roots_lag2,
)
from xnowcast.models import get_model
from xnowcast.models.steps import innovation_std
from xnowcast.transforms import get_transform

pytest.importorskip("cv2")

LINEAR = {"name": "scale", "vmin": -10.0, "vmax": 10.0}
PLAIN = dict(matching="none", mask="none", transform=LINEAR, n_levels=5, motion_perturbation="none")
#: the Yule-Walker estimate from lags 1 and 2 alone, where a test is about those two
TWO_LAGS = dict(PLAIN, ar_lags=2)


def test_real_roots_bound_is_pysteps_and_leaves_no_oscillating_level():
    autoregression = pytest.importorskip("pysteps.timeseries.autoregression")
    g1 = np.linspace(-0.99, 0.99, 41)
    g1 = g1[np.abs(g1) > 0.02]  # pysteps divides by g1**2
    low = 2 * g1**2 - 1 + 1e-3  # just inside the stationary region: far below the bound
    expected = np.array([autoregression.adjust_lag2_corrcoef2(a, b) for a, b in zip(g1, low)])
    np.testing.assert_allclose(real_roots_lag2(g1), expected, atol=1e-12)
    phi = ar2_parameters(g1, low, lag2="real-roots")
    np.testing.assert_allclose(phi[:, 0] ** 2 + 4 * phi[:, 1], 0.0, atol=1e-9)  # double root
    stationary = ar2_parameters(g1, low)
    assert (phi[:, 0] ** 2 + 4 * phi[:, 1] < -0.01).sum() == 0
    assert (stationary[:, 0] ** 2 + 4 * stationary[:, 1] < -0.01).all()  # complex roots
    # lag-2 correlations at or above the bound are left as they are, and so is the default
    high = np.minimum(real_roots_lag2(g1) + 0.005, 0.998)
    np.testing.assert_array_equal(
        ar2_parameters(g1, high, lag2="real-roots"), ar2_parameters(g1, high)
    )
    np.testing.assert_array_equal(ar2_parameters(g1, low, lag2="stationary"), stationary)
    with pytest.raises(ValueError, match="lag2 must be one of"):
        ar2_parameters(g1, low, lag2="oscillating")


def _jumpy_frames(size=64, seed=0):
    """The last two frames nearly equal, the one before unrelated: lag-1 correlations near 1,
    lag-2 near 0 (far below ``g1**2``), the case where the stationary bound oscillates."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    k[0, 0] = 1.0

    def red():
        return np.fft.irfft2(np.fft.rfft2(rng.normal(size=(size, size))) * k**-1.5, s=(size, size))

    last = red()
    frames = np.stack([red(), red(), last + 0.2 * red(), last])
    return (3 * frames / frames.std()).astype(np.float32)


def test_default_real_roots_give_every_level_noise_and_the_members_spread(motionless):
    frames = _jumpy_frames()
    opts = dict(members=8, seed=0, n_in=4, n_out=6, **TWO_LAGS)
    default = motionless(get_model("steps", **opts))
    assert (
        default.lag2_adjust == "real-roots" and default.get_params()["lag2_adjust"] == "real-roots"
    )
    old = motionless(get_model("steps", lag2_adjust="stationary", **opts))
    phi_new = default.prepare(frames).phi.astype(np.float64)
    phi_old = old.prepare(frames).phi.astype(np.float64)
    assert (phi_new[:, 0] ** 2 + 4 * phi_new[:, 1] > -1e-4).all(), phi_new
    assert (phi_old[:, 1] < -0.9).any(), phi_old  # the stationary edge: phi2 near -1
    assert innovation_std(phi_old).min() < 0.1 < innovation_std(phi_new).min()
    spread_new = default.predict(frames[None])[0].std(axis=0).mean(axis=(1, 2))
    spread_old = old.predict(frames[None])[0].std(axis=0).mean(axis=(1, 2))
    assert (spread_new > 1.2 * spread_old).all(), (spread_new, spread_old)


def test_lag2_adjust_is_checked_and_ar1_ignores_it():
    with pytest.raises(ValueError, match="lag2_adjust must be one of"):
        get_model("steps", lag2_adjust="complex")
    frames = _jumpy_frames(size=32)
    a = get_model("steps", members=1, n_in=4, n_out=1, ar_order=1, **PLAIN)
    b = get_model(
        "steps", members=1, n_in=4, n_out=1, ar_order=1, lag2_adjust="stationary", **PLAIN
    )
    np.testing.assert_array_equal(a.prepare(frames).phi, b.prepare(frames).phi)


def test_default_ensemble_mean_approaches_the_ar_forecast_with_its_own_parameters(motionless):
    # a synthetic AR(1) in time, whose noisy lag-2 estimates fall below the real-roots bound on
    # some levels: the mean of the members is the cascade forecast with the adjusted parameters
    rng = np.random.default_rng(4)
    k = np.hypot(np.fft.fftfreq(48)[:, None], np.fft.rfftfreq(48)[None, :])
    k[0, 0] = 1.0
    red = [np.fft.irfft2(np.fft.rfft2(rng.normal(size=(48, 48))) * k**-1.2, s=(48, 48))]
    for _ in range(3):
        red.append(
            0.8 * red[-1]
            + 0.6 * np.fft.irfft2(np.fft.rfft2(rng.normal(size=(48, 48))) * k**-1.2, s=(48, 48))
        )
    frames = (3 * np.stack(red) / np.std(red)).astype(np.float32)
    model = motionless(get_model("steps", members=32, n_in=4, n_out=4, **TWO_LAGS))
    ens = model.predict(frames[None])[0]
    prepared = model.prepare(frames)
    filters = bandpass_filters((48, 48), 5)
    tf = get_transform(LINEAR)
    z = np.fft.rfft2(tf.forward(frames[-2:]))
    a, b = lead_filters(filters, ar_lead_coefficients(prepared.phi, 4))
    own = tf.inverse(np.fft.irfft2(a * z[1] + b * z[0], s=(48, 48)).astype(np.float32))
    stationary = motionless(
        get_model("steps", members=1, n_in=4, n_out=4, lag2_adjust="stationary", **TWO_LAGS)
    ).prepare(frames)
    assert not np.allclose(stationary.phi, prepared.phi, atol=1e-3)  # the bound is active
    member_error = np.sqrt(((ens - own) ** 2).mean())
    mean_error = np.sqrt(((ens.mean(axis=0) - own) ** 2).mean())
    assert mean_error < 0.3 * member_error  # 1 / sqrt(32) = 0.18 for independent members


def test_fit_ar_over_two_lags_is_yule_walker_and_recovers_an_ar1():
    from xnowcast.extrapolation.cascade import ar_from_correlations
    from xnowcast.models.steps import fit_ar

    rng = np.random.default_rng(1)
    g1 = rng.uniform(0.3, 0.95, 12)
    g2 = rng.uniform(0.0, 1.0, 12) * g1
    for lag2 in ("real-roots", "stationary"):
        np.testing.assert_allclose(
            fit_ar(np.stack([g1, g2], axis=1), 2, lag2),
            ar_from_correlations([g1, g2], lag2),
            atol=1e-9,
        )
    np.testing.assert_allclose(fit_ar(g1[:, None], 1), ar_from_correlations([g1]), atol=1e-12)
    rho = np.array([0.5, 0.8, 0.95])[:, None] ** np.arange(1, 12)[None, :]
    np.testing.assert_allclose(fit_ar(rho, 2), [[0.5, 0], [0.8, 0], [0.95, 0]], atol=1e-9)
    # a level that is persistent over one step but forgets fast after it: the fit to every
    # lag is less persistent at the long lags than the AR(2) of the first two
    fast = np.array([[0.95, 0.85, 0.6, 0.4, 0.25, 0.15]])
    two, six = fit_ar(fast[:, :2], 2), fit_ar(fast, 2)
    assert ar_lead_coefficients(six, 6)[-1].sum() < ar_lead_coefficients(two, 6)[-1].sum()


def _two_speed_frames(size=48, n=8, seed=2):
    """Frames made of a part that persists (AR(1), 0.97 per step) and one that is new each
    step, so that lags 1 and 2 look alike but the correlation keeps falling at longer lags."""
    rng = np.random.default_rng(seed)
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :])
    k[0, 0] = 1.0

    def red():
        return np.fft.irfft2(np.fft.rfft2(rng.normal(size=(size, size))) * k**-1.2, s=(size, size))

    slow, frames = red(), []
    for _ in range(n):
        slow = 0.97 * slow + np.sqrt(1 - 0.97**2) * red()
        frames.append(slow + (0.6 * red() if len(frames) % 3 else 0.0))
    frames = np.stack(frames)
    return (3 * frames / frames.std()).astype(np.float32)


def test_ar_lags_fits_the_correlations_of_every_lag(motionless):
    from xnowcast.cascade import decompose, valid_level_correlations
    from xnowcast.models.steps import fit_ar

    frames = _two_speed_frames()
    opts = dict(members=2, seed=0, n_in=8, n_out=3, **PLAIN)
    default = motionless(get_model("steps", **opts))
    assert default.ar_lags == 4 and default.get_params()["ar_lags"] == 4  # DEFAULT_AR_LAGS
    assert get_model("steps", n_in=4).ar_lags == 3  # all the lags a shorter window holds
    assert get_model("steps", n_in=3).ar_lags == 2
    same = motionless(get_model("steps", ar_lags=4, **opts))
    np.testing.assert_array_equal(same.predict(frames[None]), default.predict(frames[None]))
    base = motionless(get_model("steps", ar_lags=2, **opts))  # Yule-Walker, lags 1 and 2
    model = motionless(get_model("steps", ar_lags=7, **opts))
    assert get_model("steps", **model.get_params()).ar_lags == 7
    tf = get_transform(LINEAR)
    filters = bandpass_filters(frames.shape[1:], 5)
    levels = [decompose(tf.forward(f), filters) for f in frames]
    everywhere = np.ones(frames.shape[1:], bool)
    gamma = np.stack(
        [valid_level_correlations(levels[-1], levels[-1 - k], everywhere) for k in range(1, 8)],
        axis=1,
    )
    got = model.prepare(frames).phi.astype(np.float64)
    np.testing.assert_allclose(got, fit_ar(gamma, 2), atol=2e-3)
    assert not np.allclose(got, base.prepare(frames).phi, atol=1e-2)  # the option matters
    assert not np.array_equal(model.predict(frames[None]), base.predict(frames[None]))


def test_ar_lags_is_checked():
    with pytest.raises(ValueError, match="ar_lags must be at most n_in - 1 = 11"):
        get_model("steps", ar_lags=12)
    with pytest.raises(ValueError, match="ar_lags"):
        get_model("steps", ar_lags=1)  # below ar_order=2
    with pytest.raises(TypeError, match="ar_lags"):
        get_model("steps", ar_lags=2.5)
    assert get_model("steps", ar_order=1, ar_lags=1).ar_lags == 1


def test_valid_level_correlations_are_pearson_over_the_valid_pixels():
    """From weighted sums over the grid (no copies), as numpy's corrcoef of the valid pixels;
    0 for a flat level or fewer than two valid pixels."""
    from xnowcast.cascade import valid_level_correlations

    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 24, 24)).astype("float32") + 5.0  # far from zero mean
    b = (0.7 * a + rng.normal(size=a.shape)).astype("float32")
    b[2] = 1.0  # a flat level: 0
    valid = rng.random((24, 24)) > 0.4
    got = valid_level_correlations(a, b, valid)
    expected = [np.corrcoef(a[j][valid], b[j][valid])[0, 1] for j in (0, 1, 3)]
    np.testing.assert_allclose(got[[0, 1, 3]], expected, atol=1e-9)
    assert got[2] == 0.0 and got[0] > 0.3
    one = np.zeros((24, 24), bool)
    one[0, 5] = True
    assert (valid_level_correlations(a, b, one) == 0).all()
