"""Spatially correlated noise with the power spectrum of a rain field (STEPS perturbations).

An ensemble nowcast perturbs the cascade levels of its forecast with noise
that looks like rain at every scale: white noise filtered in the Fourier
domain so that its power spectrum is that of the observed (transformed)
field. Three filters (Seed, Pierce and Norman 2013; pysteps
``pysteps.noise.fftgenerators``):

* ``"nonparametric"`` (default): the amplitude spectrum of the field itself,
  tapered by a Tukey window and with the rain/no-rain step removed (so the
  edge of the rain area does not inject power at every scale);
* ``"parametric"``: a power law with one scale break fitted to the field's
  radially averaged power spectrum (smooth, isotropic);
* ``"local"``: the nonparametric filter estimated in overlapping windows
  (short-space Fourier transform, as pysteps' SSFT), for fields whose
  structure changes across the domain (convection beside stratiform rain);
  windows with too little rain use the parametric filter of the whole field.

Every filter is normalised so that the noise has zero mean and unit variance
(in expectation); :func:`level_noise_std` gives the expected standard
deviation of each cascade level of the noise, with which an ensemble model
standardises the noise per level without decomposing it.

Examples
--------
>>> import numpy as np
>>> from xnowcast.noise import generate_noise, noise_filter
>>> rng = np.random.default_rng(0)
>>> field = rng.gamma(0.5, 2.0, (64, 64)).astype("float32")
>>> filt = noise_filter(field, "nonparametric")
>>> noise = generate_noise(filt, np.random.default_rng(1))
>>> noise.shape, noise.dtype, bool(0.7 < noise.std() < 1.3)
((64, 64), dtype('float32'), True)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from xnowcast.cascade import BandpassFilters
from xnowcast.checks import choice, integer, real

__all__ = [
    "NOISE_METHODS",
    "NoiseFilter",
    "check_noise_options",
    "generate_noise",
    "level_noise_std",
    "noise_filter",
    "noise_spectrum",
    "radial_power_spectrum",
]

#: Names of the noise filters (the first is the default).
NOISE_METHODS = ("nonparametric", "parametric", "local")

#: Options of each filter (``noise_kwargs``) and their defaults.
NOISE_DEFAULTS: dict[str, dict[str, Any]] = {
    "nonparametric": {"taper": 0.2},
    "parametric": {"taper": 0.2, "scale_break": 20.0},
    "local": {"taper": 0.2, "window": 128, "overlap": 0.5, "min_wet": 0.1},
}


class NoiseFilter(NamedTuple):
    """A noise filter of one grid (see :func:`noise_filter`).

    Attributes
    ----------
    method : str
        One of :data:`NOISE_METHODS`.
    shape : (int, int)
        The grid ``(y, x)``.
    amplitude : (y, x // 2 + 1) float32
        Amplitude of the noise at every ``rfft2`` wavenumber (the whole
        field's filter; for ``"local"`` the mean of the local ones).
    local : tuple
        For ``"local"``: ``(corners, amplitudes, taper)``: the window corners
        ``(n, 2)``, their ``(n, w, w // 2 + 1)`` amplitudes and the
        ``(w, w)`` blending weight; empty otherwise.
    """

    method: str
    shape: tuple[int, int]
    amplitude: np.ndarray
    local: tuple = ()


def check_noise_options(method: str, kwargs: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """Validate a noise method and its options; return them with the defaults filled in.

    Examples
    --------
    >>> check_noise_options("Parametric", {"scale_break": 10})
    ('parametric', {'taper': 0.2, 'scale_break': 10.0})
    >>> check_noise_options("local", {"size": 3})
    Traceback (most recent call last):
    ...
    TypeError: unknown noise_kwargs ['size'] for noise='local'; valid options are: taper, window, overlap, min_wet
    """
    name = choice(method, "noise", NOISE_METHODS)
    given = {} if kwargs is None else kwargs
    if not isinstance(given, dict):
        raise TypeError(f"noise_kwargs must be a dict, got {type(given).__name__}")
    defaults = NOISE_DEFAULTS[name]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(
            f"unknown noise_kwargs {unknown} for noise={name!r}; valid options are: "
            f"{', '.join(defaults)}"
        )
    options = {**defaults, **given}
    options["taper"] = real(options["taper"], "taper (Tukey window fraction)", low=0, high=1)
    if "scale_break" in options:
        options["scale_break"] = real(options["scale_break"], "scale_break (pixels)", low=2)
    if name == "local":
        options["window"] = integer(options["window"], "window (pixels)", low=16, whole=True)
        options["overlap"] = real(options["overlap"], "overlap", low=0, high=0.9)
        options["min_wet"] = real(options["min_wet"], "min_wet (wet fraction)", low=0, high=1)
    return name, options


def _wavenumber(shape: tuple[int, int]) -> np.ndarray:
    """Radial wavenumber of every rfft2 coefficient, in waves per ``max(shape)`` pixels."""
    ny, nx = shape
    size = max(ny, nx)
    return np.hypot(np.fft.fftfreq(ny)[:, None] * size, np.fft.rfftfreq(nx)[None, :] * size)


def _counts(shape: tuple[int, int]) -> np.ndarray:
    """How often each rfft2 coefficient counts in the full spectrum (1 or 2)."""
    nx = shape[1]
    cols = np.arange(nx // 2 + 1)
    return np.where((cols == 0) | (2 * cols == nx), 1.0, 2.0)[None, :]


def _tukey(n: int, alpha: float) -> np.ndarray:
    """A 1-D Tukey window: flat in the middle, cosine tapers over ``alpha * n / 2`` at each end."""
    if alpha <= 0 or n < 3:
        return np.ones(n)
    x = np.arange(n) / (n - 1)
    w = np.ones(n)
    edge = alpha / 2
    lo, hi = x < edge, x > 1 - edge
    w[lo] = 0.5 * (1 + np.cos(np.pi * (x[lo] / edge - 1)))
    w[hi] = 0.5 * (1 + np.cos(np.pi * ((x[hi] - 1) / edge + 1)))
    return w


def _window(shape: tuple[int, int], alpha: float) -> np.ndarray:
    return np.outer(_tukey(shape[0], alpha), _tukey(shape[1], alpha))


def _without_step(field: np.ndarray) -> np.ndarray:
    """Anomalies of ``field`` with the rain/no-rain step removed (wet values start at the floor)."""
    floor = field.min()
    wet = field > floor
    out = field.astype(np.float64)
    if wet.any():
        out[wet] -= out[wet].min() - floor
    return out - out.mean()


def _normalised(amplitude: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``amplitude`` scaled so that filtered unit white noise has unit variance."""
    amplitude = np.asarray(amplitude, np.float64).copy()
    amplitude[0, 0] = 0.0
    total = float((_counts(shape) * amplitude**2).sum()) / (shape[0] * shape[1])
    if total <= 0:
        return amplitude.astype(np.float32)
    return (amplitude / np.sqrt(total)).astype(np.float32)


def radial_power_spectrum(
    field: np.ndarray, *, taper: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a ``(y, x)`` field (its mean removed).

    Parameters
    ----------
    field : (y, x) array without NaN
    taper : float
        Tukey window fraction applied before the transform (0: none).

    Returns
    -------
    k : (n,) float64
        Integer radial wavenumbers ``1 .. max(y, x) // 2`` (waves per ``max(y, x)`` pixels).
    power : (n,) float64
        Mean ``|F(k)|**2`` over the coefficients of each ring.

    Examples
    --------
    >>> k, p = radial_power_spectrum(np.random.default_rng(0).normal(size=(64, 64)))
    >>> len(k), bool(0.5 < p.mean() / 4096 < 1.5)   # white noise: flat, |F|^2 ~ n pixels
    (32, True)
    """
    field = np.asarray(field, np.float64)
    if field.ndim != 2 or not np.isfinite(field).all():
        raise ValueError("radial_power_spectrum needs one (y, x) field without NaN; fill it first")
    data = (field - field.mean()) * _window(field.shape, taper)
    power = np.abs(np.fft.rfft2(data)) ** 2
    ring = np.rint(_wavenumber(field.shape)).astype(np.int64)
    top = max(field.shape) // 2
    keep = (ring >= 1) & (ring <= top)
    sums = np.bincount(ring[keep], weights=power[keep], minlength=top + 1)
    counts = np.bincount(ring[keep], minlength=top + 1)
    k = np.arange(1, top + 1)
    return k.astype(np.float64), sums[1:] / np.maximum(counts[1:], 1)


def _nonparametric(fields: np.ndarray, taper: float) -> np.ndarray:
    window = _window(fields.shape[-2:], taper)
    amps = [np.abs(np.fft.rfft2(_without_step(f) * window)) for f in fields]
    return np.mean(amps, axis=0)


def _power_law(fields: np.ndarray, taper: float, scale_break: float, shape=None) -> np.ndarray:
    """Two power laws meeting at ``scale_break`` pixels, fitted to the radial spectrum; its
    amplitude on the grid ``shape`` (default the fields')."""
    size = max(fields.shape[-2:])
    spectra = [radial_power_spectrum(_without_step(f), taper=taper) for f in fields]
    k, power = spectra[0][0], np.mean([p for _, p in spectra], axis=0)
    keep = power > 0
    if keep.sum() < 3:  # a flat field: red noise of slope -3 (typical of rain)
        slopes, offset, k_break = (-3.0, -3.0), 0.0, 1.0
    else:
        log_k = np.log(k[keep] / size)  # waves per pixel
        k_break = np.log(1.0 / scale_break)
        design = np.stack(
            [np.ones_like(log_k), np.minimum(log_k - k_break, 0), np.maximum(log_k - k_break, 0)],
            axis=1,
        )
        coef = np.linalg.lstsq(design, np.log(power[keep]), rcond=None)[0]
        offset, slopes = float(coef[0]), (float(coef[1]), float(coef[2]))
    grid = fields.shape[-2:] if shape is None else shape
    kk = np.maximum(_wavenumber(grid), 1.0) / max(grid)
    lk = np.log(kk) - (np.log(1.0 / scale_break) if keep.sum() >= 3 else 0.0)
    log_power = offset + slopes[0] * np.minimum(lk, 0) + slopes[1] * np.maximum(lk, 0)
    return np.exp(0.5 * (log_power - log_power.max()))


def _local_filters(fields: np.ndarray, options: dict[str, Any]) -> tuple:
    ny, nx = fields.shape[-2:]
    w = int(min(options["window"], ny, nx))
    stride = max(1, round(w * (1 - options["overlap"])))
    rows = sorted({*range(0, max(ny - w, 0) + 1, stride), max(ny - w, 0)})
    cols = sorted({*range(0, max(nx - w, 0) + 1, stride), max(nx - w, 0)})
    fallback = _normalised(
        _power_law(fields, options["taper"], options["scale_break"], (w, w)), (w, w)
    )
    floor = fields[-1].min()
    corners, amps = [], []
    for r in rows:
        for c in cols:
            patch = fields[:, r : r + w, c : c + w]
            wet = float((patch[-1] > floor).mean())
            amp = fallback
            if wet >= options["min_wet"]:
                amp = _normalised(_nonparametric(patch, options["taper"]), (w, w))
            corners.append((r, c))
            amps.append(amp)
    blend = np.outer(np.hanning(w + 2)[1:-1], np.hanning(w + 2)[1:-1]).astype(np.float32)
    return np.asarray(corners, np.int64), np.stack(amps).astype(np.float32), blend


def noise_filter(fields: np.ndarray, method: str = "nonparametric", **options: Any) -> NoiseFilter:
    """The noise filter of a field (or the mean over a stack of fields).

    Parameters
    ----------
    fields : (y, x) or (t, y, x) array without NaN
        The field(s) in the space the noise is added in (e.g. dBR, missing
        and dry pixels set to the no-rain value).
    method : {"nonparametric", "parametric", "local"}
        See the module docstring.
    **options
        ``taper`` (Tukey window fraction, 0.2); ``scale_break`` (pixels, 20,
        ``"parametric"`` and the fallback of ``"local"``); ``window``
        (pixels, 128), ``overlap`` (0.5) and ``min_wet`` (wet fraction below
        which a window uses the parametric filter, 0.1) for ``"local"``.

    Returns
    -------
    NoiseFilter

    Examples
    --------
    >>> f = noise_filter(np.random.default_rng(0).normal(size=(32, 48)), "parametric")
    >>> f.method, f.shape, f.amplitude.shape
    ('parametric', (32, 48), (32, 25))
    """
    method, opts = check_noise_options(method, options)
    fields = np.asarray(fields, np.float64)
    if fields.ndim == 2:
        fields = fields[None]
    if fields.ndim != 3 or not np.isfinite(fields).all():
        raise ValueError(
            f"noise_filter needs (y, x) or (t, y, x) fields without NaN, got shape "
            f"{fields.shape}{'' if np.isfinite(fields).all() else ' with NaN'}; fill missing "
            "pixels with the no-rain value first"
        )
    shape = (int(fields.shape[1]), int(fields.shape[2]))
    scale_break = opts.get("scale_break", NOISE_DEFAULTS["parametric"]["scale_break"])
    if method == "parametric":
        amplitude = _power_law(fields, opts["taper"], scale_break)
    else:
        amplitude = _nonparametric(fields, opts["taper"])
        if not amplitude[1:].any() and not amplitude[0, 1:].any():  # flat: no structure
            amplitude = _power_law(fields, opts["taper"], scale_break)
    local: tuple = ()
    if method == "local":
        local = _local_filters(fields, {**opts, "scale_break": scale_break})
    return NoiseFilter(method, shape, _normalised(amplitude, shape), local)


def _local_noise(filt: NoiseFilter, white: np.ndarray) -> np.ndarray:
    corners, amps, blend = filt.local
    w = blend.shape[0]
    out = np.zeros(filt.shape, np.float64)
    weight = np.zeros(filt.shape, np.float64)
    for (r, c), amp in zip(corners, amps):
        patch = np.fft.irfft2(np.fft.rfft2(white[r : r + w, c : c + w]) * amp, s=(w, w))
        out[r : r + w, c : c + w] += blend * patch
        weight[r : r + w, c : c + w] += blend**2
    out /= np.sqrt(np.maximum(weight, 1e-12))
    out -= out.mean()
    return (out / max(float(out.std()), 1e-12)).astype(np.float32)


def noise_spectrum(filt: NoiseFilter, rng: np.random.Generator) -> np.ndarray:
    """``rfft2`` of one noise field (complex64), drawn from ``rng``.

    For the global filters this is the filter times the spectrum of white
    noise; no field is formed (an ensemble model adds it to its cascade in
    the Fourier domain).

    Examples
    --------
    >>> f = noise_filter(np.random.default_rng(0).normal(size=(16, 16)))
    >>> noise_spectrum(f, np.random.default_rng(1)).shape
    (16, 9)
    """
    white = rng.standard_normal(filt.shape, dtype=np.float32)
    if filt.method == "local":
        return np.fft.rfft2(_local_noise(filt, white)).astype(np.complex64)
    spectrum = np.fft.rfft2(white)
    spectrum *= filt.amplitude
    return spectrum.astype(np.complex64, copy=False)


def generate_noise(filt: NoiseFilter, rng: np.random.Generator) -> np.ndarray:
    """One ``(y, x)`` float32 noise field: zero mean, unit variance, the filter's spectrum.

    Examples
    --------
    >>> f = noise_filter(np.random.default_rng(0).normal(size=(16, 16)))
    >>> a = generate_noise(f, np.random.default_rng(3))
    >>> bool((a == generate_noise(f, np.random.default_rng(3))).all())   # same seed, same noise
    True
    """
    field = np.fft.irfft2(noise_spectrum(filt, rng), s=filt.shape).astype(np.float32)
    return field


def level_noise_std(filt: NoiseFilter, filters: BandpassFilters) -> np.ndarray:
    """Expected standard deviation of each cascade level of the noise (Parseval).

    Dividing level ``j`` of the noise by it gives unit variance per level
    (as pysteps' per-level normalisation) without decomposing the noise. For
    ``"local"`` noise it is measured on one realisation of a fixed stream.

    Examples
    --------
    >>> from xnowcast.cascade import bandpass_filters
    >>> f = noise_filter(np.random.default_rng(0).normal(size=(64, 64)))
    >>> level_noise_std(f, bandpass_filters((64, 64), 4)).shape
    (4,)
    """
    if filters.shape != filt.shape:
        raise ValueError(
            f"the noise filter's grid {filt.shape} differs from the cascade's {filters.shape}"
        )
    n = filt.shape[0] * filt.shape[1]
    if filt.method == "local":
        spectrum = noise_spectrum(filt, np.random.default_rng(0)).astype(np.complex128).ravel()
        return np.sqrt(filters.power @ (spectrum.real**2 + spectrum.imag**2)) / n
    amp2 = filt.amplitude.astype(np.float64).ravel() ** 2
    return np.sqrt(filters.power @ amp2 / n)
