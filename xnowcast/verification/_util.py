"""Helpers shared by the numpy score kernels (input checks, NaN masks, data range)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "COMPARE",
    "as_pair",
    "as_values",
    "check_compare",
    "check_shapes",
    "exceeds",
    "frame_data_range",
    "kernel_pairs",
    "masked_pair",
    "safe_divide",
    "sorted_thresholds",
]

#: Most thresholds the kernels take at once (event levels are int16).
MAX_THRESHOLDS = 32767

#: The two event rules: ``">"`` (value exceeds the threshold, pysteps' categorical
#: scores) and ``">="`` (value reaches it, pysteps' FSS and probabilistic scores).
COMPARE = (">", ">=")


def check_shapes(fc: np.ndarray, obs: np.ndarray) -> None:
    """Both fields of the same shape with at least two dims, or a ``ValueError``."""
    if fc.shape != obs.shape:
        raise ValueError(
            f"forecast and observation must have the same shape, got {fc.shape} and {obs.shape}; "
            "the kernels compare fields pixel by pixel (use xnowcast.verify to align cubes)"
        )
    if fc.ndim < 2:
        raise ValueError(
            f"the kernels score fields of shape (..., y, x); got {fc.ndim}-d arrays of shape "
            f"{fc.shape}"
        )


def as_pair(fc: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both fields as float64 arrays of the same shape with at least two dims."""
    try:
        fc = np.asarray(fc, dtype=np.float64)
        obs = np.asarray(obs, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"forecast and observation must be numeric arrays ({err})") from None
    check_shapes(fc, obs)
    return fc, obs


def kernel_pairs(fc: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both fields as C-contiguous ``(n_pairs, y, x)`` arrays for the numba kernels.

    float32 and float64 fields keep their dtype (no copy when already
    contiguous; the kernels compute in float64); other numbers become float64.
    """
    f, o = np.asarray(fc), np.asarray(obs)
    if f.dtype not in (np.float32, np.float64) or o.dtype not in (np.float32, np.float64):
        f, o = as_pair(f, o)
    check_shapes(f, o)
    shape = (-1, *f.shape[-2:])
    return np.ascontiguousarray(f.reshape(shape)), np.ascontiguousarray(o.reshape(shape))


def masked_pair(fc: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fc, obs, valid)`` with pixels missing (non-finite) in either field set to 0."""
    fc, obs = as_pair(fc, obs)
    valid = np.isfinite(fc) & np.isfinite(obs)
    if valid.all():  # nothing to fill: no copies
        return fc, obs, valid
    return np.where(valid, fc, 0.0), np.where(valid, obs, 0.0), valid


def frame_data_range(
    fc: np.ndarray, obs: np.ndarray, valid: np.ndarray, data_range: float | None
) -> np.ndarray:
    """The data range ``R`` of each field pair, shape ``fc.shape[:-2]``.

    A fixed ``data_range`` is used as is. ``None`` gives, per pair, the larger
    of the forecast's and the observation's ``max - min`` over the valid pixels
    (the torchmetrics convention), and 1 where both are constant (so that two
    identical constant fields score SSIM 1 and PSNR infinity).
    """
    batch = fc.shape[:-2]
    if data_range is not None:
        value = float(data_range)
        if not np.isfinite(value) or value <= 0:
            raise ValueError(
                f"data_range must be a positive number, got {data_range!r}; it is the span of "
                "possible values (e.g. 1023 for 10-bit images, or the largest rain rate)"
            )
        return np.full(batch, value)
    out = np.zeros(batch)
    if valid.any():
        flat = valid.reshape(*batch, -1)
        has = flat.any(axis=-1)
        for field in (fc, obs):
            f = field.reshape(*batch, -1)
            hi = np.where(flat, f, -np.inf).max(axis=-1)
            lo = np.where(flat, f, np.inf).min(axis=-1)
            out = np.maximum(out, np.where(has, hi - lo, 0.0))
    return np.where(out > 0, out, 1.0)


def as_values(values: float | Sequence[float], name: str, *, integer: bool = False) -> np.ndarray:
    """A 1-D array of thresholds or scales, checked."""
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a number or a non-empty list of numbers, got {values!r}"
        ) from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a number or a non-empty list of numbers, got {values!r}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite numbers, got {values!r}")
    if integer:
        if (arr < 1).any() or (arr != np.round(arr)).any():
            raise ValueError(f"{name} must be positive whole numbers of grid cells, got {values!r}")
        arr = arr.astype(np.int64)
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{name} must not repeat a value, got {values!r}")
    return arr


def sorted_thresholds(thr: np.ndarray) -> np.ndarray:
    """The order that sorts ``thr`` ascending (as the kernels need), checked for size."""
    if thr.size > MAX_THRESHOLDS:
        raise ValueError(
            f"at most {MAX_THRESHOLDS} thresholds can be scored at once, got {thr.size}; "
            "score them in groups"
        )
    return np.argsort(thr, kind="stable")


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN (and no warning) where ``den`` is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)


def check_compare(compare: str) -> str:
    """``compare`` checked: ``">"`` or ``">="``."""
    if not isinstance(compare, str) or compare.strip() not in COMPARE:
        raise ValueError(
            f'compare must be ">" (an event exceeds the threshold) or ">=" (an event reaches '
            f"it), got {compare!r}"
        )
    return compare.strip()


def exceeds(values: np.ndarray, threshold: float, compare: str) -> np.ndarray:
    """The events ``values > threshold`` or ``values >= threshold`` (NaN is no event)."""
    if compare == ">":
        return np.greater(values, threshold)
    return np.greater_equal(values, threshold)
