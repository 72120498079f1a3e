"""Spectral cascade decomposition and per-scale autoregressive decay (S-PROG, Seed 2003).

A field is split into ``n_levels`` spatial scales with Gaussian band-pass
filters in the Fourier domain whose weights sum to one at every wavenumber,
so the levels add back up to the field exactly. Each level is then given its
own lag-1 and lag-2 temporal autocorrelation, measured between the last frame
and the earlier frames moved onto it along the motion (the Lagrangian frame);
an AR(2) process per level says how fast that scale loses predictability. The
deterministic forecast of a level after ``k`` steps is a linear combination
``a_k x_t + b_k x_{t-1}`` of its last two values, so the whole cascade forecast
is one spectral filter per lead time (:func:`lead_filters`): small scales that
stop being predictable fade out, large scales persist.

Everything works on a field *without* NaN (fill missing pixels first; see
:func:`xnowcast.models.optical_flow.OpticalFlow`) and in float32 where it
matters for memory. The same decomposition serves deterministic and ensemble
forecasts.

Examples
--------
>>> import numpy as np
>>> from xnowcast.cascade import bandpass_filters, decompose
>>> field = np.random.default_rng(0).normal(size=(64, 80)).astype("float32")
>>> filters = bandpass_filters(field.shape, 6)
>>> levels = decompose(field, filters)
>>> levels.shape, bool(np.allclose(levels.sum(axis=0), field, atol=1e-5))
((6, 64, 80), True)
"""

from __future__ import annotations

import importlib.util
from typing import NamedTuple

import numpy as np

from xnowcast.checks import choice, integer, positive_int, real

__all__ = [
    "LAG2_ADJUSTMENTS",
    "BandpassFilters",
    "ar2_parameters",
    "ar_lead_coefficients",
    "bandpass_filters",
    "decompose",
    "lead_filters",
    "level_correlations",
    "real_roots_lag2",
    "recompose",
    "rfft2",
    "spectral_correlations",
    "split_spectrum",
    "valid_level_correlations",
]


class BandpassFilters(NamedTuple):
    """Gaussian band-pass filters of one grid, for :func:`numpy.fft.rfft2` spectra.

    Attributes
    ----------
    weights : (n_levels, y, x // 2 + 1) float32
        Weight of every level at every wavenumber; they sum to one.
    wavelengths : (n_levels,) float64
        Central wavelength of each level in pixels (the first level holds
        everything larger, including the mean).
    shape : (int, int)
        The grid ``(y, x)``.
    power : (n_levels, y * (x // 2 + 1)) float64
        ``weights**2`` times how often each rfft2 coefficient counts in the
        full spectrum, without the mean: per-level covariances by Parseval
        (:func:`spectral_correlations`).
    """

    weights: np.ndarray
    wavelengths: np.ndarray
    shape: tuple[int, int]
    power: np.ndarray


def _radial_wavenumber(shape: tuple[int, int]) -> np.ndarray:
    """Wavenumber of every rfft2 coefficient in waves per ``max(shape)`` pixels."""
    ny, nx = shape
    size = max(ny, nx)
    ky = np.fft.fftfreq(ny)[:, None] * size
    kx = np.fft.rfftfreq(nx)[None, :] * size
    return np.hypot(ky, kx)


def bandpass_filters(shape: tuple[int, int], n_levels: int = 8, width: float = 1.0):
    """Gaussian band-pass filters in log-wavenumber that sum to one (Seed 2003; pysteps).

    Level ``j`` is centred on ``q**j`` waves across the domain
    (``q = (max(shape) / 2) ** (1 / (n_levels - 1))``), so that the levels
    span from the domain size down to two pixels; its weight is a Gaussian in
    ``log(k)`` of standard deviation ``width * log(q) / 2``, normalised so that
    all levels sum to one at every wavenumber. The mean (``k = 0``) and every
    scale larger than the domain belong to the first level.

    Parameters
    ----------
    shape : (int, int)
        Grid ``(y, x)``.
    n_levels : int
        Number of levels (>= 2).
    width : float
        Width of each Gaussian relative to the spacing of the levels.

    Returns
    -------
    BandpassFilters

    Examples
    --------
    >>> f = bandpass_filters((128, 128), 6)
    >>> f.weights.shape, [round(w) for w in f.wavelengths]
    ((6, 128, 65), [128, 56, 24, 11, 5, 2])
    >>> bool(np.allclose(f.weights.sum(axis=0), 1))
    True
    """
    n_levels = integer(n_levels, "n_levels", low=2, whole=True)
    width = real(width, "width", low=0, low_inclusive=False)
    ny, nx = (positive_int(s, "shape") for s in shape)
    size = max(ny, nx)
    if size < 4:
        raise ValueError(f"a cascade needs a grid of at least 4 pixels, got {shape}")
    q = (size / 2.0) ** (1.0 / (n_levels - 1))
    k = _radial_wavenumber((ny, nx))
    log_k = np.log(np.maximum(k, 1.0))
    centres = np.log(q) * np.arange(n_levels)
    sigma = width * np.log(q) / 2.0
    weights = np.exp(-0.5 * ((log_k[None] - centres[:, None, None]) / sigma) ** 2)
    weights /= weights.sum(axis=0, keepdims=True)
    for level, beyond in ((0, k <= 1.0), (-1, log_k >= centres[-1])):
        weights[:, beyond] = 0.0  # the mean and the domain scale; the finest scales
        weights[level, beyond] = 1.0
    count = np.where((np.arange(nx // 2 + 1) == 0) | (2 * np.arange(nx // 2 + 1) == nx), 1.0, 2.0)
    power = weights**2 * count
    power[:, 0, 0] = 0.0  # correlations of anomalies: without the mean
    return BandpassFilters(
        weights.astype(np.float32),
        size / q ** np.arange(n_levels),
        (ny, nx),
        power.reshape(n_levels, -1),
    )


def rfft2(fields: np.ndarray) -> np.ndarray:
    """:func:`numpy.fft.rfft2` over the last two axes, through :mod:`scipy.fft` when installed.

    SciPy's pocketfft transforms float32 fields in single precision, several
    times faster than numpy's forward real FFT; the result equals numpy's
    within float32 rounding. Without SciPy, numpy's.

    Examples
    --------
    >>> field = np.random.default_rng(0).normal(size=(2, 8, 10)).astype("float32")
    >>> spectrum = rfft2(field)
    >>> spectrum.shape, bool(np.allclose(spectrum, np.fft.rfft2(field), atol=1e-4))
    ((2, 8, 6), True)
    """
    if _HAS_SCIPY:
        import scipy.fft

        return scipy.fft.rfft2(fields)
    return np.fft.rfft2(fields)


_HAS_SCIPY = importlib.util.find_spec("scipy") is not None


def _check_field(field: np.ndarray, filters: BandpassFilters) -> np.ndarray:
    field = np.asarray(field, dtype=np.float32)
    if field.shape[-2:] != filters.shape:
        raise ValueError(
            f"the field's grid {field.shape[-2:]} differs from the filters' {filters.shape}; "
            "build the filters with bandpass_filters(field.shape[-2:])"
        )
    if not np.isfinite(field).all():
        raise ValueError(
            "the field holds NaN or inf, which would spread over the whole spectrum; fill "
            "missing pixels first (e.g. with the no-rain value)"
        )
    return field


def decompose(field: np.ndarray, filters: BandpassFilters) -> np.ndarray:
    """Split a ``(y, x)`` field into its ``(n_levels, y, x)`` cascade; the levels sum to it.

    Examples
    --------
    >>> field = np.ones((16, 16), "float32")
    >>> levels = decompose(field, bandpass_filters(field.shape, 3))
    >>> [round(float(lev.mean()), 6) + 0.0 for lev in levels]   # the mean is in level 0
    [1.0, 0.0, 0.0]
    """
    field = _check_field(field, filters)
    return split_spectrum(np.fft.rfft2(field), filters)


def split_spectrum(spectrum: np.ndarray, filters: BandpassFilters) -> np.ndarray:
    """The ``(n_levels, y, x)`` cascade of a field from its ``rfft2`` (:func:`decompose`
    for a field whose spectrum is already at hand).

    Examples
    --------
    >>> field = np.random.default_rng(0).normal(size=(8, 8)).astype("float32")
    >>> f = bandpass_filters(field.shape, 3)
    >>> bool(np.array_equal(split_spectrum(np.fft.rfft2(field), f), decompose(field, f)))
    True
    """
    return np.fft.irfft2(filters.weights * spectrum[None], s=filters.shape).astype(np.float32)


def recompose(levels: np.ndarray) -> np.ndarray:
    """The field a cascade was decomposed from (the sum of its levels).

    Examples
    --------
    >>> recompose(np.ones((3, 2, 2), "float32")).tolist()
    [[3.0, 3.0], [3.0, 3.0]]
    """
    return np.asarray(levels, dtype=np.float32).sum(axis=0)


def level_correlations(
    field: np.ndarray, earlier: np.ndarray, filters: BandpassFilters
) -> np.ndarray:
    """Correlation of every cascade level of ``field`` with the same level of ``earlier``.

    Computed from the two spectra (Parseval), without forming the levels:
    ``cov_j = sum(w_j^2 Re(F conj(E)))`` over all wavenumbers but the mean.

    Parameters
    ----------
    field, earlier : (y, x) arrays
        Two fields on the same grid without NaN (``earlier`` moved onto
        ``field`` along the motion, for Lagrangian correlations). Missing
        areas filled with one constant value in both add nothing to the
        band-pass levels away from their edges.
    filters : BandpassFilters
        The cascade.

    Returns
    -------
    (n_levels,) float64
        Pearson correlations over the grid; 0 for a level that is flat in
        either field.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(64, 64)).astype("float32")
    >>> level_correlations(a, a, bandpass_filters(a.shape, 4)).round(6).tolist()
    [1.0, 1.0, 1.0, 1.0]
    >>> level_correlations(a, -a, bandpass_filters(a.shape, 4)).round(6).tolist()
    [-1.0, -1.0, -1.0, -1.0]
    """
    f = np.fft.rfft2(_check_field(field, filters)).astype(np.complex128)
    e = np.fft.rfft2(_check_field(earlier, filters)).astype(np.complex128)
    return spectral_correlations(f, e, filters)


def spectral_correlations(
    spectrum: np.ndarray, earlier: np.ndarray, filters: BandpassFilters
) -> np.ndarray:
    """:func:`level_correlations` from the ``rfft2`` spectra of the two fields.

    Examples
    --------
    >>> a = np.random.default_rng(2).normal(size=(32, 33))
    >>> s = np.fft.rfft2(a)
    >>> spectral_correlations(s, 2 * s, bandpass_filters(a.shape, 3)).round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    f, e = spectrum.ravel(), earlier.ravel()
    # the three weighted sums in one product: one pass over the (n_levels, n) weights
    terms = np.stack([(f * e.conj()).real, f.real**2 + f.imag**2, e.real**2 + e.imag**2])
    cov, var_f, var_e = terms @ filters.power.T
    norm = np.sqrt(var_f * var_e)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / norm
    return np.where(norm > 0, np.clip(corr, -1.0, 1.0), 0.0)


def valid_level_correlations(
    levels: np.ndarray, earlier: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Correlation of every level of two cascades over the pixels ``valid`` in both frames.

    :func:`level_correlations` correlates over the whole grid, so a pixel
    missing in a frame counts as whatever it was filled with (no rain): an
    earlier frame moved along the motion misses what came in from beyond the
    edge, and the filled band lowers the correlations by an amount that grows
    with the motion and the lag. Here those pixels are left out.

    Parameters
    ----------
    levels, earlier : (n_levels, y, x) arrays
        The cascades (:func:`decompose`) of the two fields, filled where missing.
    valid : (y, x) bool array
        The pixels observed in both frames.

    Returns
    -------
    (n_levels,) float64
        Pearson correlations over the valid pixels; 0 for a level that is flat
        there in either field, or with fewer than two valid pixels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(32, 32)).astype("float32")
    >>> b = a.copy(); b[:, :8] = 0.0                     # missing, filled with 0
    >>> f = bandpass_filters(a.shape, 3)
    >>> valid = np.ones(a.shape, bool); valid[:, :8] = False
    >>> bool((valid_level_correlations(decompose(a, f), decompose(b, f), valid) > 0.9).all())
    True
    """
    levels = np.asarray(levels)
    earlier = np.asarray(earlier)
    valid = np.asarray(valid, bool)
    if levels.shape != earlier.shape or levels.shape[-2:] != valid.shape:
        raise ValueError(
            f"levels {levels.shape}, earlier {earlier.shape} and valid {valid.shape} must be "
            "two cascades (n_levels, y, x) of one grid and its (y, x) mask"
        )
    # weighted sums over the grid rather than copies of the valid pixels: the several lags of
    # the steps model correlate the same last frame's levels under a mask each
    w = valid.ravel().astype(np.float64)
    n = w.sum()
    out = np.zeros(levels.shape[0])
    if n < 2:
        return out
    a = levels.reshape(levels.shape[0], -1).astype(np.float64)
    b = earlier.reshape(earlier.shape[0], -1).astype(np.float64)
    a -= (a @ w / n)[:, None]  # centred on the valid pixels' means
    b -= (b @ w / n)[:, None]
    saa, sbb, sab = (a * a) @ w, (b * b) @ w, (a * b) @ w
    norm = np.sqrt(saa * sbb)
    good = norm > 0
    out[good] = np.clip(sab[good] / norm[good], -1.0, 1.0)
    return out


#: Valid values of ``lag2`` in :func:`ar2_parameters` (the first is the default).
LAG2_ADJUSTMENTS = ("stationary", "real-roots")


def real_roots_lag2(gamma1: np.ndarray) -> np.ndarray:
    """The smallest lag-2 correlation whose Yule-Walker AR(2) has real characteristic roots.

    ``1 - 2 (1 - g1^2) / (1 + sqrt(1 - g1^2))``, which is pysteps'
    ``adjust_lag2_corrcoef2`` bound ``(3 g1^2 - 2 + 2 (1 - g1^2)^1.5) / g1^2``
    written without the division by ``g1^2`` (0 at ``g1 = 0``). Below it
    ``phi1^2 + 4 phi2 < 0``: the level's AR(2) oscillates, and near the
    edge of the stationary region (``g2 -> 2 g1^2 - 1``, ``phi2 -> -1``) the
    innovation that keeps its variance vanishes.

    Examples
    --------
    >>> real_roots_lag2(np.array([0.0, 0.5, 0.9])).round(4).tolist()
    [0.0, 0.1962, 0.7354]
    """
    g1sq = np.asarray(gamma1, np.float64) ** 2
    rest = np.maximum(1.0 - g1sq, 0.0)
    return 1.0 - 2.0 * rest / (1.0 + np.sqrt(rest))


def ar2_parameters(gamma1: np.ndarray, gamma2: np.ndarray, lag2: str = "stationary") -> np.ndarray:
    """AR(2) coefficients ``(phi1, phi2)`` per level from lag-1 and lag-2 correlations.

    Yule-Walker: ``phi1 = g1 (1 - g2) / (1 - g1^2)``, ``phi2 = (g2 - g1^2) / (1 - g1^2)``.
    Correlations are first moved into the stationary region (``|g1| < 1``,
    ``2 g1^2 - 1 < g2 < 1``), so that the forecast of every level decays
    instead of growing.

    Parameters
    ----------
    gamma1, gamma2 : (n_levels,) arrays
        Lag-1 and lag-2 correlations per level.
    lag2 : {"stationary", "real-roots"}
        ``"stationary"`` (default, the deterministic cascade's): ``g2`` is
        moved only as far as stationarity needs. ``"real-roots"``: ``g2`` is
        first raised to :func:`real_roots_lag2` of ``g1`` (pysteps STEPS'
        ``adjust_lag2_corrcoef2``), so no level oscillates.

    Returns
    -------
    (n_levels, 2) float64

    Examples
    --------
    >>> ar2_parameters(np.array([0.9]), np.array([0.81])).round(6).tolist()   # an AR(1)
    [[0.9, 0.0]]
    >>> ar2_parameters(np.array([0.9]), np.array([0.63]), lag2="real-roots").round(3).tolist()
    [[1.254, -0.393]]
    """
    lag2 = choice(lag2, "lag2", LAG2_ADJUSTMENTS)
    g1 = np.clip(np.asarray(gamma1, np.float64), -0.999, 0.999)
    g2 = np.asarray(gamma2, np.float64)
    if lag2 == "real-roots":
        g2 = np.maximum(g2, real_roots_lag2(g1))
    g2 = np.clip(g2, 2 * g1**2 - 1 + 1e-6, 0.999)
    phi1 = g1 * (1 - g2) / (1 - g1**2)
    phi2 = (g2 - g1**2) / (1 - g1**2)
    return np.stack([phi1, phi2], axis=-1)


def ar_lead_coefficients(phi: np.ndarray, n_steps: int) -> np.ndarray:
    """Coefficients ``(a_k, b_k)``: the AR(2) forecast ``x_{t+k} = a_k x_t + b_k x_{t-1}``.

    Parameters
    ----------
    phi : (n_levels, 2) array
        ``(phi1, phi2)`` per level (:func:`ar2_parameters`); ``phi2 = 0`` is an AR(1).
    n_steps : int
        Lead times ``1 .. n_steps``.

    Returns
    -------
    (n_steps, n_levels, 2) float64

    Examples
    --------
    >>> ar_lead_coefficients(np.array([[0.5, 0.0]]), 3)[:, 0, 0].tolist()
    [0.5, 0.25, 0.125]
    """
    n_steps = positive_int(n_steps, "n_steps")
    phi = np.asarray(phi, np.float64)
    out = np.empty((n_steps, phi.shape[0], 2))
    prev2 = np.stack([np.zeros(len(phi)), np.ones(len(phi))], axis=-1)  # x_{t-1}
    prev1 = np.stack([np.ones(len(phi)), np.zeros(len(phi))], axis=-1)  # x_t
    for k in range(n_steps):
        out[k] = phi[:, :1] * prev1 + phi[:, 1:] * prev2
        prev2, prev1 = prev1, out[k]
    return out


def lead_filters(
    filters: BandpassFilters, coefficients: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Spectral filters ``A_k``, ``B_k``: the cascade forecast is ``irfft2(A_k X_t + B_k X_{t-1})``.

    The mean (wavenumber 0) is kept as it is, so that decaying scales fade
    towards the field's mean and not towards zero.

    Parameters
    ----------
    filters : BandpassFilters
        The cascade.
    coefficients : (n_steps, n_levels, 2) array
        From :func:`ar_lead_coefficients`.

    Returns
    -------
    A, B : (n_steps, y, x // 2 + 1) float32

    Examples
    --------
    >>> f = bandpass_filters((32, 32), 4)
    >>> a, b = lead_filters(f, ar_lead_coefficients(np.full((4, 2), [0.5, 0.0]), 2))
    >>> [round(float(v), 6) for v in (a[0, 0, 0], a[0, 5, 5], a[1, 5, 5])]
    [1.0, 0.5, 0.25]
    """
    coefficients = np.asarray(coefficients, np.float32)
    if coefficients.ndim != 3 or coefficients.shape[1:] != (len(filters.weights), 2):
        raise ValueError(
            f"coefficients must have shape (n_steps, n_levels={len(filters.weights)}, 2), "
            f"got {coefficients.shape}"
        )
    w = filters.weights
    a = np.einsum("kl,lyx->kyx", coefficients[..., 0], w)
    b = np.einsum("kl,lyx->kyx", coefficients[..., 1], w)
    a[:, 0, 0], b[:, 0, 0] = 1.0, 0.0
    return a, b
