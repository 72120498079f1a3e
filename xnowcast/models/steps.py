"""STEPS-like ensemble nowcasts: the cascade forecast, perturbed scale by scale.

Each member of :class:`Steps` (Bowler, Pierce and Seed 2006; Seed, Pierce and
Norman 2013; pysteps ``pysteps.nowcasts.steps``) is made from the same
motion and cascade as the deterministic forecast
(:func:`xnowcast.extrapolation.cascade.extrapolate_cascade`):

1. the last ``ar_order + 1`` frames, transformed (dBR) and moved onto the last
   one along the motion (the Lagrangian frame), are split into ``n_levels``
   scales (:mod:`xnowcast.cascade`); each level is standardised by the last
   frame's standard deviation of that level, and gets AR(2) (or AR(1))
   parameters fitted to its correlations with the earlier frames (also moved
   onto the last) at lags ``1 .. ar_lags`` (4 by default), taken over the
   pixels observed in both frames (``ar_correlations``), the lag-2
   correlation of the fit raised where needed so that the AR(2) has real
   roots (``lag2_adjust``, as pysteps);
2. per lead time, each level evolves as
   ``x_t = phi1 x_{t-1} + phi2 x_{t-2} + sigma * e_t``, where ``e_t`` is the
   same level of spatially correlated noise (:mod:`xnowcast.noise`, its
   power spectrum estimated from the input) standardised per level and
   ``sigma = sqrt((1 + phi2)((1 - phi2)^2 - phi1^2) / (1 - phi2))`` keeps the
   level's variance; everything runs in the Fourier domain, where each
   level is the field's spectrum times its band-pass weight, so a lead time
   costs one noise transform and one inverse transform whatever the number of
   levels;
3. the recomposed field is masked (``mask``: rain only near the member's
   rain of the previous lead time, as pysteps' incremental mask), matched to
   the distribution of the last observed frame (:mod:`xnowcast.probmatching`)
   and transformed back, and
4. advected along the motion with every lead time in one pass: each pixel
   takes the member's field where its backward trajectory starts, the
   trajectories of the motion (traced once per window,
   :func:`xnowcast.extrapolation.semilagrangian.coarse_trajectories`) moved by
   the member's motion perturbation, if any; a pixel whose trajectory starts
   outside the domain gets ``fill`` (``NaN``), as in pysteps, where each
   member's perturbed trajectories leave the domain in their own places.

Member ``m`` draws its noise and its motion perturbation from its own random
stream ``numpy.random.SeedSequence([seed, m])``: a member is the same
whichever members are computed with it, so an ensemble is reproducible with
``seed`` under any chunking over members.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np

from xnowcast.cascade import (
    LAG2_ADJUSTMENTS,
    BandpassFilters,
    bandpass_filters,
    split_spectrum,
    valid_level_correlations,
)
from xnowcast.checks import choice, integer, real
from xnowcast.extrapolation.cascade import (
    ar_from_correlations,
    ar_parameters,
    check_cascade_options,
)
from xnowcast.models.interface import NowcastModel
from xnowcast.motion.api import DEFAULT_COMBINE, DEFAULT_METHOD
from xnowcast.noise import NoiseFilter, check_noise_options, level_noise_std, noise_spectrum
from xnowcast.noise import noise_filter as make_noise_filter
from xnowcast.optional import import_optional
from xnowcast.probmatching import N_QUANTILES, apply_table, match_table, probabilities, quantiles

__all__ = [
    "AR_CORRELATIONS",
    "DEFAULT_AR_LAGS",
    "MASKS",
    "MOTION_PERTURBATIONS",
    "Steps",
    "check_ar_lags",
    "check_members",
    "check_seed",
    "fit_ar",
    "innovation_std",
    "mask_grow",
    "member_rng",
]

numba = import_optional("numba", "the steps ensemble model")

#: Valid values of ``ar_correlations`` (the first is the default).
AR_CORRELATIONS = ("valid", "filled")

#: Lags the AR parameters are fitted to by default (``ar_lags=None``; fewer when the window
#: holds fewer): 4 steps, 20 minutes on a 5 minute grid.
DEFAULT_AR_LAGS = 4

#: Valid values of ``mask`` (the first is the default).
MASKS = ("incremental", "threshold", "none")

#: Valid values of ``motion_perturbation`` (the first is the default).
MOTION_PERTURBATIONS = ("bps", "none")

#: Options of ``mask`` (``mask_kwargs``): rain may grow ``grow`` pixels around the
#: member's rain per lead time, then fades over a rim of ``rim`` pixels. ``grow=None``:
#: pysteps' buffer, :func:`mask_grow` of the grid (:meth:`Steps.for_cube`), or
#: :data:`DEFAULT_GROW` when the grid is unknown.
MASK_DEFAULTS: dict[str, Any] = {"grow": None, "rim": 10}

#: ``grow`` of a model that knows no grid: :func:`mask_grow` of a 1 km, 5 minute grid.
DEFAULT_GROW = 2

#: Options of ``motion_perturbation="bps"`` (pysteps' defaults, Bowler et al. 2006): the
#: standard deviation of the perturbation along and across the motion is
#: ``a * t**b + c`` km/h at lead time ``t`` minutes; the grid spacing and time step turn
#: it into pixels per step (``None``: the forecast cube's, see :meth:`Steps.for_cube`).
BPS_DEFAULTS: dict[str, Any] = {
    "p_par": (10.88, 0.23, -7.68),
    "p_perp": (5.76, 0.31, -2.72),
    "km_per_pixel": None,
    "minutes_per_step": None,
}


def check_members(members: Any) -> int:
    """``members`` as an int ``>= 1``.

    Examples
    --------
    >>> check_members(20)
    20
    >>> check_members(0)
    Traceback (most recent call last):
    ...
    ValueError: members must be an integer >= 1 (the ensemble size, e.g. members=20), got 0
    """
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
        raise (ValueError if isinstance(members, (int, np.integer)) else TypeError)(
            f"members must be an integer >= 1 (the ensemble size, e.g. members=20), got {members!r}"
        )
    return int(members)


def check_seed(seed: Any) -> int:
    """``seed`` as a non-negative int.

    Examples
    --------
    >>> check_seed(7)
    7
    >>> check_seed(1.5)
    Traceback (most recent call last):
    ...
    TypeError: seed must be a non-negative integer (e.g. seed=0), got 1.5; the same seed gives the same ensemble
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(
            f"seed must be a non-negative integer (e.g. seed=0), got {seed!r}; the same seed "
            "gives the same ensemble"
        )
    return int(seed)


def member_rng(seed: int, member: int, stream: int = 0) -> np.random.Generator:
    """The random stream ``stream`` (0 noise, 1 motion) of member ``member``.

    Examples
    --------
    >>> a = member_rng(0, 3).standard_normal(2)
    >>> bool((a == member_rng(0, 3).standard_normal(2)).all())
    True
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(member), int(stream)]))


@numba.njit(cache=True, nogil=True)
def _ar_step(
    state: np.ndarray,
    normals: np.ndarray,
    amplitude: np.ndarray,
    weights: np.ndarray,
    phi: np.ndarray,
    gain: np.ndarray,
    sigma: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """One AR step of every level in the Fourier domain and the recomposed spectrum.

    ``state``: (2, levels, k) complex64, previous and last standardised levels (updated);
    the noise spectrum is ``amplitude * (normals[0] + 1j * normals[1])``, (2, k) and (k,);
    ``weights``: (levels, k) band-pass weights; ``phi``: (levels, 2); ``gain``:
    innovation std over the noise level's std; ``sigma``: the last frame's std per
    level; ``out``: (k,) recomposed spectrum.
    """
    n_levels, n = weights.shape
    noise = np.empty(n, np.complex64)
    for i in range(n):
        out[i] = 0.0
        noise[i] = amplitude[i] * (normals[0, i] + 1j * normals[1, i])
    for j in range(n_levels):
        p1, p2, g, s = phi[j, 0], phi[j, 1], gain[j], sigma[j]
        for i in range(n):
            w = weights[j, i]
            if w < 1e-6:  # outside the level's band: stays zero
                continue
            new = p1 * state[1, j, i] + p2 * state[0, j, i] + g * w * noise[i]
            state[0, j, i] = state[1, j, i]
            state[1, j, i] = new
            out[i] += s * new


class _CpuStepper:
    """The AR steps of one member on the CPU (compiled kernel, numpy FFT)."""

    def __init__(self, prepared: _Prepared, weights: np.ndarray, shape: tuple[int, int]):
        self.prepared, self.weights, self.shape = prepared, weights, shape
        self.state = prepared.state.copy()
        self.spectrum = np.empty(weights.shape[1], np.complex64)

    def step(self, normals: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
        p = self.prepared
        _ar_step(
            self.state, normals, amplitude, self.weights, p.phi, p.gain, p.sigma, self.spectrum
        )
        self.spectrum[0] = p.mean
        half = self.spectrum.reshape(self.shape[0], -1)
        return np.fft.irfft2(half, s=self.shape).astype(np.float32)


class _TorchStepper:
    """The AR steps of one member on a torch device (``torch.fft``), same arithmetic."""

    def __init__(
        self, prepared: _Prepared, weights: np.ndarray, shape: tuple[int, int], device: Any
    ):
        import torch

        self.torch, self.device, self.shape = torch, device, shape
        self.mean = prepared.mean
        keep = weights >= 1e-6  # as the CPU kernel: outside a level's band it stays zero
        self.weights = torch.as_tensor(np.where(keep, weights, 0), device=device)
        self.state = torch.as_tensor(prepared.state * keep, device=device)
        self.phi = torch.as_tensor(prepared.phi, device=device)[:, :, None]
        self.gain = torch.as_tensor(prepared.gain, device=device)[:, None]
        self.sigma = torch.as_tensor(prepared.sigma, device=device)[:, None]

    def step(self, normals: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
        torch = self.torch
        z = torch.as_tensor(normals, device=self.device)
        noise = torch.as_tensor(amplitude, device=self.device) * torch.complex(z[0], z[1])
        s0, s1 = self.state[0], self.state[1]
        new = self.phi[:, 0] * s1 + self.phi[:, 1] * s0 + (self.gain * self.weights) * noise
        self.state = torch.stack([s1, new])
        spectrum = (self.sigma * new).sum(dim=0)
        spectrum[0] = self.mean
        half = spectrum.reshape(self.shape[0], -1)
        field = torch.fft.irfft2(half, s=self.shape)
        return field.cpu().numpy().astype(np.float32)


class _Prepared(NamedTuple):
    """What every member of one window shares."""

    flow: np.ndarray
    missing: np.ndarray
    state: np.ndarray  # (2, levels, k) complex64
    mean: complex  # the last frame's spectrum at k = 0
    phi: np.ndarray  # (levels, 2) float32
    gain: np.ndarray  # (levels,) float32
    sigma: np.ndarray  # (levels,) float32
    reference: np.ndarray  # quantiles of the last transformed frame
    wet: np.ndarray  # the last frame's rain, (y, x) bool
    noise: NoiseFilter
    direction: np.ndarray  # unit vector of the mean motion (u, v), or zeros
    trajectories: tuple  # coarse_trajectories of the flow: (displacements, rows, cols)


def mask_grow(km_per_pixel: float, minutes_per_step: float) -> int:
    """Pixels the incremental mask lets rain spread per lead time (pysteps' buffer).

    pysteps' ``mask_method="incremental"`` dilates the rain of the previous
    lead time by a diamond of radius ``int((n - 1) / 2)``, with
    ``n = minutes_per_step / km_per_pixel`` (``mask_f=1``): 2 pixels on a
    1 km, 5 minute grid, 5 on a 0.5 km, 6 minute grid.

    Examples
    --------
    >>> mask_grow(1.0, 5.0), mask_grow(0.5, 6.0), mask_grow(2.0, 5.0)
    (2, 5, 0)
    """
    n = real(minutes_per_step, "minutes_per_step", low=0, low_inclusive=False) / real(
        km_per_pixel, "km_per_pixel", low=0, low_inclusive=False
    )
    return max(0, int((n - 1) / 2))


def innovation_std(phi: np.ndarray) -> np.ndarray:
    """Standard deviation of the AR noise that keeps a unit-variance level at unit variance.

    AR(2): ``sqrt((1 + phi2)((1 - phi2)^2 - phi1^2) / (1 - phi2))``, AR(1)
    (``phi2 = 0``): ``sqrt(1 - phi1^2)``.

    Examples
    --------
    >>> innovation_std(np.array([[0.6, 0.0], [0.5, 0.3]])).round(4).tolist()
    [0.8, 0.6676]
    """
    phi = np.asarray(phi, np.float64)
    p1, p2 = phi[:, 0], phi[:, 1]
    var = (1 + p2) * ((1 - p2) ** 2 - p1**2) / (1 - p2)
    return np.sqrt(np.maximum(var, 0.0))


def check_ar_lags(ar_lags: Any, ar_order: int, n_in: int) -> int:
    """``ar_lags`` as an int in ``ar_order .. n_in - 1``.

    ``None`` (the default): :data:`DEFAULT_AR_LAGS`, or every lag the window
    holds when it holds fewer (``n_in - 1``), but at least ``ar_order``.

    Examples
    --------
    >>> check_ar_lags(None, 2, 12), check_ar_lags(None, 2, 4), check_ar_lags(6, 2, 12)
    (4, 3, 6)
    >>> check_ar_lags(12, 2, 12)
    Traceback (most recent call last):
    ...
    ValueError: ar_lags must be at most n_in - 1 = 11 (lag k needs the frame k steps before the last), got 12; lower ar_lags or raise n_in
    """
    if ar_lags is None:
        return max(int(ar_order), min(DEFAULT_AR_LAGS, int(n_in) - 1))
    lags = integer(ar_lags, "ar_lags", low=ar_order)
    if lags > n_in - 1:
        raise ValueError(
            f"ar_lags must be at most n_in - 1 = {n_in - 1} (lag k needs the frame k steps "
            f"before the last), got {lags}; lower ar_lags or raise n_in"
        )
    return lags


def fit_ar(gamma: np.ndarray, ar_order: int, lag2: str = "real-roots") -> np.ndarray:
    """``(n_levels, 2)`` AR parameters fitted to each level's correlations at lags ``1 .. L``.

    Least squares on the Yule-Walker equations of every lag,
    ``g_k = phi1 g_(k-1) + phi2 g_(k-2)`` (``g_0 = 1``, ``g_(-1) = g_1``;
    AR(1): ``phi2 = 0``), which for ``L = ar_order`` is the exact
    Yule-Walker solution. The fitted process's own lag-1 and lag-2
    correlations then go through the same bounds as two measured ones
    (:func:`xnowcast.extrapolation.cascade.ar_from_correlations`: AR(1)
    clipped to ``[0, 0.999]``, AR(2) with the lag-2 bound ``lag2``).

    Parameters
    ----------
    gamma : (n_levels, L) array
        Correlations of each level at lags ``1 .. L`` (``L >= ar_order``).
    ar_order : {1, 2}
    lag2 : {"real-roots", "stationary"}

    Examples
    --------
    >>> g = 0.9 ** np.arange(1, 7)[None, :]          # an AR(1) with phi = 0.9
    >>> fit_ar(g, 2).round(6).tolist()
    [[0.9, 0.0]]
    >>> fit_ar(np.array([[0.9, 0.7, 0.5, 0.3]]), 1).round(4).tolist()
    [[0.7961, 0.0]]
    """
    gamma = np.asarray(gamma, np.float64)
    rows = np.concatenate([np.ones((gamma.shape[0], 1)), gamma], axis=1)  # g_0 .. g_L
    out = []
    for g in rows:
        lags = np.arange(1, g.size)
        design = np.stack([g[lags - 1], g[np.abs(lags - 2)]], axis=1)[:, :ar_order]
        phi = np.linalg.lstsq(design, g[1:], rcond=None)[0]
        if ar_order == 1:
            out.append([float(phi[0])])
            continue
        g1 = phi[0] / (1.0 - phi[1]) if abs(1.0 - phi[1]) > 1e-9 else np.sign(phi[0])
        g1 = float(np.clip(g1, -0.999, 0.999))
        out.append([g1, float(phi[0] * g1 + phi[1])])
    implied = np.asarray(out, np.float64)
    return ar_from_correlations([implied[:, j] for j in range(ar_order)], lag2)


@functools.lru_cache(maxsize=4)
def _filters(shape: tuple[int, int], n_levels: int) -> BandpassFilters:
    return bandpass_filters(shape, n_levels)


class Steps(NowcastModel):
    """STEPS-like ensemble nowcast (name ``"steps"``); see the module docstring.

    Parameters
    ----------
    members : int
        Ensemble size (>= 1).
    seed : int
        Seed of the ensemble: the same seed gives the same members, however
        they are computed (in chunks, in parallel).
    n_levels : int
        Cascade levels (pysteps STEPS uses 6 to 8).
    ar_order : {1, 2}
        Order of each level's autoregressive process.
    lag2_adjust : {"real-roots", "stationary"}
        How an AR(2) level's lag-2 correlation ``g2`` is bounded before the
        Yule-Walker estimate (:func:`xnowcast.cascade.ar2_parameters`).
        ``"real-roots"`` (default, pysteps STEPS' ``adjust_lag2_corrcoef2``):
        ``g2`` is raised to the smallest value whose AR(2) has real roots
        (:func:`xnowcast.cascade.real_roots_lag2`), so no level oscillates
        and every level gets noise. ``"stationary"`` (the deterministic
        cascade's): only as far as stationarity needs; where the large
        scales' ``g2`` is far below ``g1**2`` this gives ``phi2`` near -1 and
        almost no noise on them, and the members spread too little.
    ar_correlations : {"valid", "filled"}
        Over which pixels a level's lag-1 and lag-2 correlations are taken.
        ``"valid"`` (default): those observed in both frames
        (:func:`xnowcast.cascade.valid_level_correlations`); an earlier frame
        moved along the motion misses the band that came in from beyond the
        edge, and that band is left out. ``"filled"`` (pysteps, and the
        deterministic cascade): the whole grid, missing pixels as no rain,
        which lowers the correlations where rain comes in across the edge.
    ar_lags : int, optional
        The AR parameters of each level are fitted to its correlations at lags
        ``1 .. ar_lags`` (:func:`fit_ar`: least squares on the Yule-Walker
        equations of every lag), each earlier frame moved onto the last along
        the motion. ``None`` (default): :data:`DEFAULT_AR_LAGS` (4), fewer if
        the window holds fewer (at most ``n_in - 1``). ``ar_lags=ar_order``:
        the Yule-Walker estimate from lags 1 and 2 alone (pysteps, and this
        model before), which on the shared radar events keeps the large and
        middle scales too persistent over the forecast (see the docs'
        ensembles page).
    noise : {"nonparametric", "parametric", "local"}
        The noise filter (:mod:`xnowcast.noise`), estimated from the last
        frames in the Lagrangian frame.
    noise_kwargs : dict, optional
        Options of the noise filter (:func:`xnowcast.noise.noise_filter`).
    matching : "cdf", "mean", "none" or float
        Probability matching of every member to the last observed frame
        (:mod:`xnowcast.probmatching`; pysteps STEPS uses ``"cdf"``).
    mask : {"incremental", "threshold", "none"}
        Rain/no-rain treatment before matching. ``"incremental"`` (pysteps'
        default): rain only near the member's rain at the previous lead time,
        tapered linearly over a rim; ``"threshold"``: near the last observed
        rain (pysteps ``"obs"``);
        ``"none"``.
    mask_kwargs : dict, optional
        :data:`MASK_DEFAULTS`: ``grow`` (pixels the rain may spread per lead
        time at full strength; default :func:`mask_grow` of the cube's grid,
        as pysteps, or 2 without one) and ``rim`` (pixels over which it fades
        beyond, 10).
    motion_perturbation : {"bps", "none"}
        ``"bps"`` (default, as pysteps STEPS): each member moves with the
        motion plus a perturbation along and across the mean motion whose size
        grows with lead time (Bowler, Pierce and Seed 2006, pysteps'
        ``vel_pert_method="bps"``); it needs the grid (a projected cube, or
        ``motion_perturbation_kwargs``). ``"none"``: every member moves with
        the estimated motion.
    motion_perturbation_kwargs : dict, optional
        For ``"bps"`` (:data:`BPS_DEFAULTS`): ``p_par``, ``p_perp`` (km/h
        parameters), ``km_per_pixel`` and ``minutes_per_step`` of the grid
        (default: those of the cube forecast, :meth:`for_cube`).
    method, n_flows, combine, transform, fill, interpolation, **options
        Motion and advection, as for :class:`~xnowcast.models.optical_flow.OpticalFlow`.
    n_in, n_out : int
        Input frames per window and lead times.

    Notes
    -----
    ``predict(inputs)`` returns ``(batch, members, n_out, y, x)``;
    ``predict(inputs, members=[...])`` only the members asked for (the
    ensemble contract of :mod:`xnowcast.models.interface`).

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast import get_model
    >>> grid = {"km_per_pixel": 1.0, "minutes_per_step": 5.0}   # xnowcast.forecast: the cube's
    >>> model = get_model("steps", members=3, seed=1, n_in=3, n_out=2,
    ...                   motion_perturbation_kwargs=grid)
    >>> frames = np.zeros((1, 3, 32, 32), "float32"); frames[0, :, 8:20, 8:24] = 5.0
    >>> model.predict(frames).shape
    (1, 3, 2, 32, 32)
    >>> bool((model.predict(frames, members=[2])[:, 0] == model.predict(frames)[:, 2]).all())
    True
    """

    name = "steps"
    min_n_in = 3
    members: int

    def __init__(
        self,
        members: int = 20,
        seed: int = 0,
        n_levels: int = 6,
        ar_order: int = 2,
        lag2_adjust: str = "real-roots",
        ar_correlations: str = "valid",
        ar_lags: int | None = None,
        noise: str = "nonparametric",
        noise_kwargs: dict[str, Any] | None = None,
        matching: str | float = "cdf",
        mask: str = "incremental",
        mask_kwargs: dict[str, Any] | None = None,
        motion_perturbation: str = "bps",
        motion_perturbation_kwargs: dict[str, Any] | None = None,
        method: str = DEFAULT_METHOD,
        n_flows: int | None = None,
        combine: str = DEFAULT_COMBINE,
        transform: Any = None,
        fill: float = float("nan"),
        interpolation: str = "linear",
        *,
        n_in: int = 12,
        n_out: int = 24,
        **options: Any,
    ) -> None:
        from xnowcast.models.optical_flow import OpticalFlow
        from xnowcast.transforms import get_transform

        super().__init__(n_in=n_in, n_out=n_out)
        self.members = check_members(members)
        self.seed = check_seed(seed)
        cascade = check_cascade_options(n_levels, ar_order, matching)
        self.n_levels, self.ar_order = int(cascade["n_levels"]), int(cascade["ar_order"])
        self.matching = cascade["matching"]
        self.lag2_adjust = choice(lag2_adjust, "lag2_adjust", LAG2_ADJUSTMENTS)
        self.ar_correlations = choice(ar_correlations, "ar_correlations", AR_CORRELATIONS)
        self.ar_lags = check_ar_lags(ar_lags, self.ar_order, n_in)
        self.noise, self.noise_kwargs = check_noise_options(noise, noise_kwargs)
        self.mask = choice(mask, "mask", MASKS)
        self.mask_kwargs = _options(mask_kwargs, MASK_DEFAULTS, "mask_kwargs", "mask")
        for key in ("grow", "rim"):
            if key == "rim" or self.mask_kwargs[key] is not None:
                self.mask_kwargs[key] = integer(self.mask_kwargs[key], f"{key} (pixels)", low=0)
        self.motion_perturbation = choice(
            motion_perturbation, "motion_perturbation", MOTION_PERTURBATIONS
        )
        self.motion_perturbation_kwargs = _bps_options(
            motion_perturbation_kwargs, self.motion_perturbation
        )
        self._motion = OpticalFlow(
            method,
            n_flows,
            combine,
            transform,
            fill=fill,
            interpolation=interpolation,
            extrapolation="advection",
            n_in=n_in,
            n_out=n_out,
            **options,
        )
        self._transform = get_transform(self._motion.transform)
        #: Parameters chosen from the cube by :meth:`for_cube` (for batch workers).
        self.adapted: dict[str, Any] = {}
        self._cache: OrderedDict[str, _Prepared] = OrderedDict()
        self._lock = threading.Lock()

    def get_params(self) -> dict[str, Any]:
        """Parameters that rebuild this model with ``get_model("steps", **params)``."""
        motion = self._motion.get_params()
        for key in ("extrapolation", "extrapolation_kwargs", "trend"):
            motion.pop(key)
        return {
            **motion,
            "members": self.members,
            "seed": self.seed,
            "n_levels": self.n_levels,
            "ar_order": self.ar_order,
            "lag2_adjust": self.lag2_adjust,
            "ar_correlations": self.ar_correlations,
            "ar_lags": self.ar_lags,
            "noise": self.noise,
            "noise_kwargs": copy.deepcopy(self.noise_kwargs),
            "matching": self.matching,
            "mask": self.mask,
            "mask_kwargs": copy.deepcopy(self.mask_kwargs),
            "motion_perturbation": self.motion_perturbation,
            "motion_perturbation_kwargs": copy.deepcopy(self.motion_perturbation_kwargs),
        }

    def for_cube(self, cube: Any, info: Any) -> Steps:
        """This model as it forecasts ``cube``: what depends on its grid, from the cube.

        With ``motion_perturbation="bps"``, a ``km_per_pixel`` or
        ``minutes_per_step`` left out is the cube's cell size (the mean of
        ``|dy|`` and ``|dx|`` of :func:`xnowcast.conventions.cell_size`:
        projected grids, and latitude-longitude grids at their central latitude)
        or time step; with ``mask="incremental"``, a ``grow`` left out is
        :func:`mask_grow` of them; an ``n_flows`` left out is the frame pairs of
        the last 10 minutes
        (:meth:`~xnowcast.models.optical_flow.OpticalFlow.n_flows_for`), and a
        Lucas-Kanade ``max_speed`` left out the speed of 100 m/s in pixels per
        step, as the optical-flow model's. The values are the model's parameters
        (recorded in the forecast's attributes).

        Examples
        --------
        >>> from xnowcast import get_model
        >>> from xnowcast.conventions import normalize_cube
        >>> from xnowcast.datasets import synthetic_radar
        >>> cube, info = normalize_cube(synthetic_radar(n_times=4, size=8))
        >>> model = get_model("steps", motion_perturbation="bps").for_cube(cube, info)
        >>> model.motion_perturbation_kwargs["minutes_per_step"], model.mask_kwargs["grow"]
        (5.0, 2)
        >>> model.get_params()["max_speed"]  # 100 m/s on 1 km cells, 5 min
        30.0
        """
        from xnowcast.conventions import cell_size
        from xnowcast.motion.api import pixel_speed_limit, speed_limit_option

        minutes = float(np.timedelta64(info.step, "ns").astype(np.int64) / 60e9)
        spacing = cell_size(cube, info)
        km = None if spacing is None else (abs(spacing[0]) + abs(spacing[1])) / 2000.0
        changes: dict[str, Any] = {}
        opts = self.motion_perturbation_kwargs
        if self.motion_perturbation == "bps" and None in (
            opts["km_per_pixel"],
            opts["minutes_per_step"],
        ):
            filled = dict(opts)
            filled["minutes_per_step"] = filled["minutes_per_step"] or minutes
            if filled["km_per_pixel"] is None:
                filled["km_per_pixel"] = km
            changes["motion_perturbation_kwargs"] = filled
        if self.mask == "incremental" and self.mask_kwargs["grow"] is None and km is not None:
            changes["mask_kwargs"] = {**self.mask_kwargs, "grow": mask_grow(km, minutes)}
        pairs = self._motion.n_flows_for(info)
        if pairs != self._motion.n_flows:
            changes["n_flows"] = pairs
        limit = pixel_speed_limit(cube, info)
        changes.update(speed_limit_option(self._motion.method, self._motion.options, limit))
        if not changes:
            return self
        model = type(self)(**{**self.get_params(), **changes})
        model.settings = self.settings
        model.adapted = changes
        return model

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"], state["_lock"] = OrderedDict(), None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __copy__(self) -> Steps:
        new = object.__new__(type(self))
        new.__setstate__(self.__getstate__())
        return new

    def predict(self, inputs: np.ndarray, members: Any = None) -> np.ndarray:
        """Forecast ``(batch, members, n_out, y, x)`` from ``(batch, n_in, y, x)``.

        ``members``: indices of the members to compute (default all).
        """
        inputs = np.asarray(inputs, dtype=np.float32)
        if inputs.ndim != 4 or inputs.shape[1] != self.n_in:
            raise ValueError(
                f"inputs must have shape (batch, n_in={self.n_in}, y, x), got {inputs.shape}"
            )
        index = self.member_index(members)
        batch, _, ny, nx = inputs.shape
        out = np.empty((batch, len(index), self.n_out, ny, nx), np.float32)
        device = self.accelerator()
        for b in range(batch):
            prepared = self.prepare(inputs[b])
            for i, member in enumerate(index):
                self.member(prepared, int(member), out=out[b, i], device=device)
        return out

    def accelerator(self) -> Any:
        """The torch device of the spectral steps (run setting ``device``), ``None``: CPU kernels.

        Examples
        --------
        >>> from xnowcast import get_model
        >>> get_model("steps").with_settings(device="cpu").accelerator() is None
        True
        """
        from xnowcast.extrapolation.accelerated import accelerator

        return accelerator(self.settings.device)

    def member_index(self, members: Any) -> np.ndarray:
        """``members`` (default all) as an index array, checked against the ensemble size."""
        if members is None:
            return np.arange(self.members)
        index = np.atleast_1d(np.asarray(members))
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise TypeError(f"members must be integer indices, got {members!r}")
        if index.size and (index.min() < 0 or index.max() >= self.members):
            raise ValueError(
                f"member indices must lie in 0 .. {self.members - 1} (members={self.members}), "
                f"got {index.tolist()}"
            )
        return index.astype(np.int64)

    def prepare(self, frames: np.ndarray) -> _Prepared:
        """What every member of one ``(n_in, y, x)`` window shares (cached per window)."""
        key = hashlib.blake2b(np.ascontiguousarray(frames).tobytes(), digest_size=16)
        digest = key.hexdigest()
        with self._lock:
            if digest in self._cache:
                self._cache.move_to_end(digest)
                return self._cache[digest]
        prepared = self._prepare(frames)
        with self._lock:
            self._cache[digest] = prepared
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
        return prepared

    def _prepare(self, frames: np.ndarray) -> _Prepared:
        from xnowcast.extrapolation.semilagrangian import advect, coarse_trajectories

        tf = self._transform
        flow = self._motion.motion(frames)
        floor = np.float32(tf.forward(np.zeros(1, np.float32))[0])
        z = tf.forward(frames[-(max(self.ar_lags, self.ar_order) + 1) :])
        aligned = [z[-1]] + [advect(z[-1 - lag], flow, lag) for lag in range(1, self.ar_order + 1)]
        stack = np.stack(aligned[::-1])
        valid = np.isfinite(stack)
        fields = np.where(valid, stack, floor).astype(np.float32)
        shape = (int(fields.shape[1]), int(fields.shape[2]))
        filters = _filters(shape, self.n_levels)
        spectra = np.fft.rfft2(fields)
        if self.ar_lags > self.ar_order:
            phi = self._ar_phi_lags(z, flow, valid, spectra, filters, floor)
        else:
            phi = self._ar_phi(valid, spectra, filters)
        n = shape[0] * shape[1]
        last = spectra[-1].astype(np.complex128).ravel()
        sigma = np.sqrt(filters.power @ (last.real**2 + last.imag**2)) / n
        scale = np.where(sigma > 0, 1.0 / np.maximum(sigma, 1e-30), 0.0)
        weights = filters.weights.reshape(self.n_levels, -1)
        state = np.empty((2, self.n_levels, weights.shape[1]), np.complex64)
        for i, spec in enumerate((spectra[-2], spectra[-1])):
            flat = spec.ravel().copy()
            flat[0] = 0.0
            state[i] = weights * flat[None, :] * scale[:, None]
        noise = make_noise_filter(fields, self.noise, **self.noise_kwargs)
        noise_std = level_noise_std(noise, filters)
        gain = np.where(noise_std > 0, innovation_std(phi) / np.maximum(noise_std, 1e-30), 0.0)
        mean = flow.reshape(2, -1).mean(axis=1)
        norm = float(np.hypot(*mean))
        return _Prepared(
            flow=flow,
            missing=np.isnan(frames[-1]),
            state=state,
            mean=complex(spectra[-1][0, 0]),
            phi=phi.astype(np.float32),
            gain=gain.astype(np.float32),
            sigma=sigma.astype(np.float32),
            reference=quantiles(fields[-1], N_QUANTILES),
            wet=fields[-1] > floor,
            noise=noise,
            direction=(mean / norm if norm > 1e-6 else np.zeros(2)).astype(np.float32),
            # traced once for every member (extrapolate's defaults: midpoint steps from every
            # 4th pixel); a member moves their starts by its motion perturbation
            trajectories=coarse_trajectories(flow, self.n_out, True, 4),
        )

    def _ar_phi(
        self, valid: np.ndarray, spectra: np.ndarray, filters: BandpassFilters
    ) -> np.ndarray:
        """``(n_levels, 2)`` AR parameters from the spectra of the Lagrangian fields, oldest first.

        Each field is filled on its own where it is missing, as in pysteps:
        filling all where any is missing would put one sharp edge into every
        field and raise the correlations of the small scales.
        ``ar_correlations="valid"`` then correlates each level over the pixels
        observed in both frames only.
        """
        if self.ar_correlations == "filled":
            return ar_parameters(spectra, filters, self.ar_order, lag2=self.lag2_adjust)
        levels = [split_spectrum(spectrum, filters) for spectrum in spectra]
        gamma = [
            valid_level_correlations(levels[-1], levels[-1 - lag], valid[-1] & valid[-1 - lag])
            for lag in range(1, self.ar_order + 1)
        ]
        return ar_from_correlations(gamma, self.lag2_adjust)

    def _ar_phi_lags(
        self,
        z: np.ndarray,
        flow: np.ndarray,
        valid: np.ndarray,
        spectra: np.ndarray,
        filters: BandpassFilters,
        floor: np.float32,
    ) -> np.ndarray:
        """AR parameters fitted to the correlations at lags ``1 .. ar_lags`` (:func:`fit_ar`).

        ``z``: the last ``ar_lags + 1`` transformed frames; each earlier one is
        moved onto the last along the motion (as the frames of :meth:`_ar_phi`)
        and correlated with it level by level
        (:func:`~xnowcast.cascade.valid_level_correlations`),
        over the pixels observed in both (``ar_correlations="valid"``) or over
        the whole grid (``"filled"``).
        """
        from xnowcast.extrapolation.semilagrangian import advect

        last = split_spectrum(spectra[-1], filters)
        gamma = []
        for lag in range(1, self.ar_lags + 1):
            if lag <= self.ar_order:
                ok, spectrum = valid[-1 - lag], spectra[-1 - lag]
            else:
                field = advect(z[-1 - lag], flow, lag)
                ok = np.isfinite(field)
                spectrum = np.fft.rfft2(np.where(ok, field, floor))
            both = valid[-1] & ok if self.ar_correlations == "valid" else np.ones_like(ok)
            earlier = split_spectrum(spectrum, filters)
            gamma.append(valid_level_correlations(last, earlier, both))
        return fit_ar(np.stack(gamma, axis=1), self.ar_order, self.lag2_adjust)

    def member(
        self,
        prepared: _Prepared,
        member: int,
        out: np.ndarray | None = None,
        device: Any = None,
    ) -> np.ndarray:
        """The ``(n_out, y, x)`` forecast of member ``member`` of a prepared window.

        ``device``: a torch device for the AR steps and inverse transforms
        (equal to the CPU kernels within float32 rounding); ``None``: the CPU.
        """
        tf = self._transform
        floor = np.float32(tf.forward(np.zeros(1, np.float32))[0])
        shape = prepared.missing.shape
        rng = member_rng(self.seed, member, 0)
        weights = _filters(shape, self.n_levels).weights.reshape(self.n_levels, -1)
        stepper = (
            _CpuStepper(prepared, weights, shape)
            if device is None
            else _TorchStepper(prepared, weights, shape, device)
        )
        probs = probabilities(N_QUANTILES)
        sources = np.empty((self.n_out, *shape), np.float32)
        wet = prepared.wet  # the member's rain at the previous lead (Lagrangian frame)
        amplitude, local = self._noise_amplitude(prepared.noise)
        for k in range(self.n_out):
            if local:
                noise = noise_spectrum(prepared.noise, rng).ravel()
                normals = np.stack([noise.real, noise.imag])
            else:
                normals = rng.standard_normal((2, amplitude.size), dtype=np.float32)
            field = stepper.step(normals, amplitude)
            if self.mask != "none":
                field = self._masked(field, prepared.wet if self.mask == "threshold" else wet)
            knots, targets = match_table(
                quantiles(field, N_QUANTILES),
                prepared.reference,
                self.matching,
                floor=float(floor),
                probs=probs,
            )
            # pixels the mask left at the field's minimum stay dry, also where the member has
            # less room for rain than the observation has rain (as pysteps' cdf matching)
            targets = np.where(knots <= knots[0], floor, targets)
            physical = tf.inverse(targets.astype(np.float32)).astype(np.float64)
            apply_table(field, knots, physical, out=sources[k])
            wet = sources[k] > 0
        return self._advect(sources, prepared, self._motion_shifts(prepared, member), out)

    def _advect(
        self,
        sources: np.ndarray,
        prepared: _Prepared,
        shifts: np.ndarray | None,
        out: np.ndarray | None,
    ) -> np.ndarray:
        """Lead ``k`` of ``sources`` where each pixel's trajectory, moved by ``shifts[k]``, starts.

        A member with a motion perturbation moves ``shifts[k] = (u, v)`` pixels
        farther than the motion by lead ``k``: its trajectories start that much
        farther back, so what leaves or enters the domain is the member's own.
        """
        from xnowcast.extrapolation.semilagrangian import missing_mask, sample_trajectories

        disp, rows, cols = prepared.trajectories
        if shifts is not None:
            disp = np.ascontiguousarray(disp - shifts[:, :, None, None], dtype=np.float32)
        m = self._motion
        return sample_trajectories(
            sources,
            missing_mask(prepared.missing),
            (disp, rows, cols),
            fill=m.fill,
            interpolation=m.interpolation,
            out=out,
        )

    def _noise_amplitude(self, noise: NoiseFilter) -> tuple[np.ndarray, bool]:
        """The filter that turns complex normals into the noise spectrum; whether it is local."""
        if noise.method == "local":
            return np.ones(noise.amplitude.size, np.float32), True
        n = noise.shape[0] * noise.shape[1]
        # white noise of unit variance has E|W(k)|^2 = n: real and imaginary parts n / 2 each
        return (noise.amplitude.ravel() * np.float32(np.sqrt(n / 2))).astype(np.float32), False

    def _masked(self, field: np.ndarray, wet: np.ndarray) -> np.ndarray:
        """Rain only within ``rim`` pixels of ``wet``, tapered linearly over the rim."""
        cv2 = import_optional("cv2", "the steps ensemble model")
        grow = self.mask_kwargs["grow"]
        rim, grow = int(self.mask_kwargs["rim"]), DEFAULT_GROW if grow is None else int(grow)
        if not wet.any():
            weight = np.zeros(field.shape, np.float32)
        else:
            dist = cv2.distanceTransform((~wet).astype(np.uint8), cv2.DIST_L1, 3)
            weight = np.clip(1.0 - (dist - grow) / (rim + 1.0), 0.0, 1.0).astype(np.float32)
        low = np.float32(field.min())
        return low + (field - low) * weight

    def _motion_shifts(self, prepared: _Prepared, member: int) -> np.ndarray | None:
        """Cumulative displacement (u, v) in pixels of the member's perturbation per lead."""
        if self.motion_perturbation == "none" or not prepared.direction.any():
            return None
        opts = self.motion_perturbation_kwargs
        if opts["km_per_pixel"] is None or opts["minutes_per_step"] is None:
            raise ValueError(
                "motion_perturbation='bps' (the default) needs the grid spacing and time step: "
                "forecast a cube with a projected grid (xnowcast.forecast reads them), give "
                "motion_perturbation_kwargs={'km_per_pixel': ..., 'minutes_per_step': ...}, "
                "or set motion_perturbation='none'"
            )
        rng = member_rng(self.seed, member, 1)
        eps_par, eps_perp = rng.laplace(scale=1.0 / np.sqrt(2), size=2)
        minutes = opts["minutes_per_step"] * np.arange(1, self.n_out + 1)
        a, b, c = opts["p_par"]
        g_par = a * minutes**b + c
        a, b, c = opts["p_perp"]
        g_perp = a * minutes**b + c
        per_step = opts["minutes_per_step"] / 60.0 / opts["km_per_pixel"]  # km/h -> px/step
        u, v = prepared.direction
        par, perp = np.array([u, v]), np.array([-v, u])
        velocity = (g_par * eps_par)[:, None] * par + (g_perp * eps_perp)[:, None] * perp
        return np.cumsum(velocity * per_step, axis=0).astype(np.float32)


def _options(given: Any, defaults: dict[str, Any], what: str, owner: str) -> dict[str, Any]:
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise TypeError(f"{what} must be a dict, got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(
            f"unknown {what} {unknown} for {owner}; valid options are: {', '.join(defaults)}"
        )
    return {**defaults, **given}


def _bps_options(given: Any, name: str) -> dict[str, Any]:
    if name == "none":
        if given:
            raise TypeError(
                "motion_perturbation='none' takes no motion_perturbation_kwargs; set "
                "motion_perturbation='bps'"
            )
        return {}
    opts = _options(given, BPS_DEFAULTS, "motion_perturbation_kwargs", "motion_perturbation")
    for key in ("p_par", "p_perp"):
        values = opts[key]
        if np.shape(values) != (3,):
            raise ValueError(f"{key} must be three numbers (a, b, c), got {values!r}")
        opts[key] = [real(v, key) for v in values]
    for key in ("km_per_pixel", "minutes_per_step"):
        if opts[key] is not None:
            opts[key] = real(opts[key], key, low=0, low_inclusive=False)
    return opts
