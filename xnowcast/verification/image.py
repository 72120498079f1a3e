"""Image similarity scores: SSIM and MS-SSIM, NaN-aware.

SSIM (Wang et al. 2004) compares local means, variances and the covariance of
the two fields in a sliding window and averages the SSIM map over the window
positions that lie fully inside the field. Two windows are available:

``gaussian=False`` (default of :func:`ssim`)
    a uniform ``win_size x win_size`` window with the sample covariance: the
    definition of :func:`skimage.metrics.structural_similarity` (default
    options, ``win_size`` and ``data_range`` given).
``gaussian=True`` (default of :func:`ms_ssim`)
    a Gaussian window of ``win_size`` taps and standard deviation ``sigma``
    with the population covariance: the definition of ``pytorch_msssim.ssim``
    (and of skimage with ``gaussian_weights=True, use_sample_covariance=False``
    for the 11-tap window of ``sigma=1.5``).

MS-SSIM (Wang et al. 2003) follows ``pytorch_msssim.ms_ssim`` exactly: the
contrast-structure term at the first four scales and the SSIM at the fifth,
each clipped at 0, combined with the weights
``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``; between scales the fields are
halved by 2x2 average pooling (zero-padded by one cell on each side when a
side is odd). The smaller side of the field must exceed
``(win_size - 1) * 2**4`` cells: 32 for ``win_size=3``, 160 for 11.

Missing data: a pixel missing (NaN or infinite) in either field is missing in
both, and only windows without a missing pixel are averaged (in MS-SSIM, a
pooled cell is missing when any of its pixels is). Without missing data the
scores equal the reference implementations; with missing data they equal the
reference's SSIM map averaged over the windows that do not touch a gap, and
for a gap along the border of the field, the reference applied to the rest of
the field.

``data_range`` (the ``L`` of the stability constants ``(K1 L)**2`` and
``(K2 L)**2``) defaults per field pair to the larger ``max - min`` of the two
fields; give a fixed value (e.g. 1023 for 10-bit satellite counts) to make
scores comparable across frames.

Examples
--------
>>> import numpy as np
>>> from xnowcast.verification import image
>>> rng = np.random.default_rng(0)
>>> obs = rng.random((40, 40))
>>> float(image.ssim(obs, obs, data_range=1.0))
1.0
>>> round(float(image.ms_ssim(obs, 0.5 * obs, data_range=1.0, win_size=3)), 4)
0.8156
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xnowcast.verification._util import as_pair, frame_data_range, kernel_pairs, safe_divide

__all__ = [
    "MS_SSIM_WEIGHTS",
    "SSIM_STATS",
    "ms_ssim",
    "ms_ssim_min_size",
    "ms_ssim_stats",
    "ssim",
    "ssim_stats",
    "window_weights",
]

#: Statistics of :func:`ssim_stats` and :func:`ms_ssim_stats`: sum and count.
SSIM_STATS = ("sum", "count")
#: The five scale weights of MS-SSIM (Wang et al. 2003, pytorch-msssim).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def window_weights(win_size: int, gaussian: bool, sigma: float = 1.5) -> np.ndarray:
    """The 1-D window (normalised to sum 1); the 2-D window is its outer product.

    Examples
    --------
    >>> window_weights(3, gaussian=False).tolist()
    [0.3333333333333333, 0.3333333333333333, 0.3333333333333333]
    """
    try:
        odd = (
            not isinstance(win_size, (bool, str))
            and int(win_size) == win_size
            and (win_size >= 1 and win_size % 2 == 1)
        )
    except (TypeError, ValueError, OverflowError):
        odd = False
    if not odd:
        raise ValueError(f"win_size must be a positive odd integer (3, 7, 11), got {win_size!r}")
    win_size = int(win_size)
    if not gaussian:
        return np.full(win_size, 1.0 / win_size)
    if not sigma > 0:
        raise ValueError(f"sigma of the Gaussian window must be positive, got {sigma!r}")
    x = np.arange(win_size, dtype=np.float64) - win_size // 2
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _ssim_sums(
    f: np.ndarray,
    o: np.ndarray,
    r: np.ndarray,
    w: np.ndarray,
    sample_covariance: bool,
    k1: float,
    k2: float,
) -> np.ndarray:
    """``(sum SSIM, sum CS, count)`` of the valid windows of each pair ``(n, y, x)``.

    One fused pass of :func:`xnowcast.verification.kernels.ssim_sums`: the
    five local moments are filtered together, separably (running box sums
    for a uniform window).
    """
    from xnowcast.verification import kernels

    uniform = bool(np.all(w == w[0]))
    return kernels.ssim_sums(
        f, o, np.ascontiguousarray(r, dtype=np.float64), w, uniform, sample_covariance, k1, k2
    )


def _prepare(
    fc: np.ndarray,
    obs: np.ndarray,
    data_range: float | None,
    win_size: int,
    gaussian: bool,
    sigma: float,
    sample_covariance: bool | None,
    n_scales: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """``(f, o, data range, window, sample_covariance)`` for the SSIM kernels.

    ``f`` and ``o`` are ``(n_pairs, y, x)`` (float64 for MS-SSIM, whose
    pyramid is pooled here); the kernels skip pixels missing in either. The
    data range has one value per pair. The fields must fit the window, or with
    ``n_scales`` (MS-SSIM) be at least :func:`ms_ssim_min_size` cells.
    """
    if n_scales is None:
        f, o = kernel_pairs(fc, obs)  # float32 stays float32: the kernel reads it as float64
        _check_window_fits(f.shape, win_size)
    else:
        f, o = as_pair(fc, obs)  # pooled in float64
        f, o = f.reshape(-1, *f.shape[-2:]), o.reshape(-1, *o.shape[-2:])
        if min(f.shape[-2:]) < (need := ms_ssim_min_size(win_size, n_scales)):
            raise ValueError(
                f"MS-SSIM with win_size={win_size} and {n_scales} scales needs fields of at "
                f"least {need} x {need} cells, got {f.shape[-2]} x {f.shape[-1]}; use a smaller "
                "win_size (3 needs 33 cells), fewer weights, or SSIM"
            )
    w = window_weights(win_size, gaussian, sigma)
    if sample_covariance is None:
        sample_covariance = not gaussian
    if data_range is not None:
        r = frame_data_range(f[:, :1, :1], o[:, :1, :1], np.ones((1, 1, 1), bool), data_range)
    else:
        valid = np.isfinite(f) & np.isfinite(o)
        fill = (np.where(valid, f, 0.0), np.where(valid, o, 0.0))
        r = frame_data_range(*fill, valid, None)
    return f, o, r.reshape(-1), w, sample_covariance


def _check_window_fits(shape: tuple[int, ...], win_size: int) -> None:
    if min(shape[-2:]) < win_size:
        raise ValueError(
            f"the fields ({shape[-2]} x {shape[-1]}) are smaller than the SSIM window "
            f"win_size={win_size}; use a smaller odd win_size"
        )


def ssim_stats(
    fc: np.ndarray,
    obs: np.ndarray,
    *,
    data_range: float | None = None,
    win_size: int = 7,
    gaussian: bool = False,
    sigma: float = 1.5,
    sample_covariance: bool | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """Sum and number of the valid windows of the SSIM map, shape ``(..., 2)``.

    ``sum / count`` is the SSIM of the pair; sums and counts of many pairs
    pool by addition (a window-weighted mean). See :func:`ssim` for the
    parameters.
    """
    f, o, r, w, sample_covariance = _prepare(
        fc, obs, data_range, win_size, gaussian, sigma, sample_covariance
    )
    sums = _ssim_sums(f, o, r, w, sample_covariance, k1, k2)
    return sums[:, [0, 2]].reshape(*np.shape(fc)[:-2], 2)


def ssim(
    fc: np.ndarray,
    obs: np.ndarray,
    *,
    data_range: float | None = None,
    win_size: int = 7,
    gaussian: bool = False,
    sigma: float = 1.5,
    sample_covariance: bool | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """Structural similarity index of each field pair.

    Parameters
    ----------
    fc, obs : numpy.ndarray
        Fields ``(..., y, x)``.
    data_range : float, optional
        Span of possible values (default: per pair, see the module notes).
    win_size : int
        Odd window size in cells (skimage's default 7; the satellite
        nowcasting contest used 3).
    gaussian : bool
        Gaussian instead of uniform window weights.
    sigma : float
        Standard deviation of the Gaussian window, in cells.
    sample_covariance : bool, optional
        Normalise (co)variances by ``N - 1`` instead of ``N``
        (default: True for the uniform window as in skimage, False for the
        Gaussian window as in Wang et al. and pytorch-msssim).
    k1, k2 : float
        Stability constants.

    Returns
    -------
    numpy.ndarray
        Shape ``fc.shape[:-2]``; NaN where no window is free of missing data.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.tile(np.arange(8.0), (8, 1))
    >>> round(float(ssim(obs + 1.0, obs, data_range=8.0, win_size=3)), 4)
    0.9385
    """
    stats = ssim_stats(
        fc,
        obs,
        data_range=data_range,
        win_size=win_size,
        gaussian=gaussian,
        sigma=sigma,
        sample_covariance=sample_covariance,
        k1=k1,
        k2=k2,
    )
    return safe_divide(stats[..., 0], stats[..., 1])


def ms_ssim_min_size(win_size: int, n_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Smallest side (cells) a field needs for MS-SSIM: ``(win_size - 1) * 2**(n - 1) + 1``.

    Examples
    --------
    >>> ms_ssim_min_size(3), ms_ssim_min_size(11)
    (33, 161)
    """
    return (int(win_size) - 1) * 2 ** (n_scales - 1) + 1


def _avg_pool2(a: np.ndarray) -> np.ndarray:
    """2x2 average pooling as ``torch.nn.functional.avg_pool2d(a, 2, padding=side % 2)``."""
    for axis in (-2, -1):
        if a.shape[axis] % 2:
            pad = [(0, 0)] * a.ndim
            pad[axis] = (1, 1)
            a = np.pad(a, pad)
        even = [slice(None)] * a.ndim
        odd = [slice(None)] * a.ndim
        pairs = 2 * (a.shape[axis] // 2)
        even[axis], odd[axis] = slice(0, pairs, 2), slice(1, pairs, 2)
        a = a[tuple(even)] + a[tuple(odd)]
        a *= 0.5
    return a


def ms_ssim_stats(
    fc: np.ndarray,
    obs: np.ndarray,
    *,
    data_range: float | None = None,
    win_size: int = 11,
    gaussian: bool = True,
    sigma: float = 1.5,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    sample_covariance: bool | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """MS-SSIM of each pair as ``(value, 1)`` statistics, ``(0, 0)`` when undefined.

    See :func:`ms_ssim` for the parameters.
    """
    scale_weights = np.asarray(weights, dtype=np.float64)
    if scale_weights.ndim != 1 or scale_weights.size < 1:
        raise ValueError(f"weights must be a non-empty list of numbers, got {scale_weights!r}")
    n_scales = scale_weights.size
    f, o, r, w, sample_covariance = _prepare(
        fc, obs, data_range, win_size, gaussian, sigma, sample_covariance, n_scales=n_scales
    )
    value = np.ones(f.shape[0])
    for level, weight in enumerate(scale_weights):
        last = level == n_scales - 1
        sums = _ssim_sums(f, o, r, w, sample_covariance, k1, k2)
        # NaN (no window free of gaps at this scale) propagates into the value
        term = safe_divide(sums[:, 0 if last else 1], sums[:, 2])
        value *= np.maximum(term, 0.0) ** weight
        if not last:
            f, o = _avg_pool2(f), _avg_pool2(o)
    ok = np.isfinite(value)
    out = np.stack([np.where(ok, value, 0.0), ok.astype(np.float64)], axis=-1)
    return out.reshape(*np.shape(fc)[:-2], 2)


def ms_ssim(
    fc: np.ndarray,
    obs: np.ndarray,
    *,
    data_range: float | None = None,
    win_size: int = 11,
    gaussian: bool = True,
    sigma: float = 1.5,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    sample_covariance: bool | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
) -> np.ndarray:
    """Multi-scale structural similarity of each field pair (pytorch-msssim's definition).

    Parameters
    ----------
    fc, obs : numpy.ndarray
        Fields ``(..., y, x)`` whose smaller side is at least
        :func:`ms_ssim_min_size` cells.
    data_range : float, optional
        Span of possible values (the contest used 1023); default per pair.
    win_size : int
        Odd window size (pytorch-msssim's default 11; the contest used 3).
    gaussian : bool
        Gaussian window (default, as pytorch-msssim) or uniform window.
    sigma : float
        Standard deviation of the Gaussian window.
    weights : sequence of float
        Weight of each scale; its length is the number of scales.
    sample_covariance : bool, optional
        See :func:`ssim`.
    k1, k2 : float
        Stability constants.

    Returns
    -------
    numpy.ndarray
        Shape ``fc.shape[:-2]``; NaN where some scale has no window free of
        missing data.

    Examples
    --------
    >>> import numpy as np
    >>> obs = np.random.default_rng(1).random((48, 48))
    >>> float(ms_ssim(obs, obs, data_range=1.0, win_size=3))
    1.0
    """
    stats = ms_ssim_stats(
        fc,
        obs,
        data_range=data_range,
        win_size=win_size,
        gaussian=gaussian,
        sigma=sigma,
        weights=weights,
        sample_covariance=sample_covariance,
        k1=k1,
        k2=k2,
    )
    return safe_divide(stats[..., 0], stats[..., 1])
