"""The floor: the default extrapolation of ``"optical-flow"`` as one plain numpy + OpenCV script.

No xnowcast code: the same method (dBR, earlier frames moved onto the last,
an 8-level Gaussian cascade with spectral AR(2) correlations, one spectral
filter per lead time, CDF matching to the last frame, backward
semi-Lagrangian advection with midpoint steps) written as directly as
numpy and OpenCV allow, to measure how much the library's structure costs.
``bench_optical_flow.py`` times it beside the library on the same motion.

    python benchmarks/floor_cascade.py   # a quick self-check on random data
"""

from __future__ import annotations

import cv2
import numpy as np

ZEROVALUE, THRESHOLD_DB = -15.0, -10.0  # dBR of no rain, of 0.1 mm/h


def filters(shape, n_levels=8):
    ny, nx = shape
    size = max(shape)
    k = np.hypot(np.fft.fftfreq(ny)[:, None] * size, np.fft.rfftfreq(nx)[None] * size)
    q = (size / 2) ** (1 / (n_levels - 1))
    log_k = np.log(np.maximum(k, 1))
    w = np.exp(
        -0.5 * ((log_k - np.log(q) * np.arange(n_levels)[:, None, None]) / (np.log(q) / 2)) ** 2
    )
    w /= w.sum(0)
    w[:, k <= 1] = 0
    w[0, k <= 1] = 1
    w[:, log_k >= np.log(q) * (n_levels - 1)] = 0
    w[-1, log_k >= np.log(q) * (n_levels - 1)] = 1
    return w


def maps(flow, n_steps):
    """Backward trajectory end points (midpoint steps), traced every 4th pixel and resized."""
    ny, nx = flow.shape[1:]
    gx, gy = np.meshgrid(
        np.arange(0, nx, 4, dtype=np.float32), np.arange(0, ny, 4, dtype=np.float32)
    )
    px, py = gx.copy(), gy.copy()
    u, v = flow
    for _ in range(n_steps):
        du = cv2.remap(u, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        dv = cv2.remap(v, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mx, my = px - du / 2, py - dv / 2
        px = px - cv2.remap(u, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        py = py - cv2.remap(v, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        full_x = cv2.resize(px - gx, (nx, ny)) + np.arange(nx, dtype=np.float32)[None]
        full_y = cv2.resize(py - gy, (nx, ny)) + np.arange(ny, dtype=np.float32)[:, None]
        yield full_x, full_y


def correlations(a, b, w2):
    cov = (w2 * (a * b.conj()).real).sum((1, 2))
    return cov / np.sqrt((w2 * np.abs(a) ** 2).sum((1, 2)) * (w2 * np.abs(b) ** 2).sum((1, 2)))


def extrapolate(frames, flow, n_steps, n_levels=8):
    """``(n_steps, y, x)`` forecast in mm/h from ``(t, y, x)`` frames and a ``(2, y, x)`` flow."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(frames[-3:] >= 0.1, 10 * np.log10(frames[-3:]), ZEROVALUE).astype(np.float32)
    missing = np.isnan(frames[-1])
    z[np.isnan(frames[-3:])] = ZEROVALUE
    trajectories = list(maps(flow, max(n_steps, 2)))
    ny, nx = z.shape[1:]
    for lag in (1, 2):  # earlier frames moved onto the last one
        mx, my = trajectories[lag - 1]
        z[-1 - lag] = cv2.remap(z[-1 - lag], mx, my, cv2.INTER_LINEAR, borderValue=ZEROVALUE)
    spectra = np.fft.rfft2(z)
    w = filters(z.shape[1:], n_levels)
    w2 = w**2 * np.where(np.arange(w.shape[-1]) == 0, 1, 2)
    w2[:, 0, 0] = 0
    g1 = np.clip(correlations(spectra[2], spectra[1], w2), -0.999, 0.999)
    g2 = np.clip(correlations(spectra[2], spectra[0], w2), 2 * g1**2 - 1 + 1e-6, 0.999)
    phi1, phi2 = g1 * (1 - g2) / (1 - g1**2), (g2 - g1**2) / (1 - g1**2)
    a, b = np.ones(n_levels), np.zeros(n_levels)
    a_prev, b_prev = np.zeros(n_levels), np.ones(n_levels)
    reference = np.sort(z[-1], axis=None)
    out = np.empty((n_steps, ny, nx), np.float32)
    for k in range(n_steps):
        a, a_prev = phi1 * a + phi2 * a_prev, a
        b, b_prev = phi1 * b + phi2 * b_prev, b
        fa, fb = np.tensordot(a, w, 1), np.tensordot(b, w, 1)
        fa[0, 0], fb[0, 0] = 1, 0
        smooth = np.fft.irfft2(fa * spectra[2] + fb * spectra[1], s=(ny, nx)).astype(np.float32)
        ranks = np.argsort(smooth, axis=None)
        matched = np.empty(smooth.size, np.float32)
        matched[ranks] = reference
        rain = np.where(matched >= THRESHOLD_DB, 10 ** (matched / 10), 0).reshape(ny, nx)
        rain[missing] = np.nan
        mx, my = trajectories[k]
        out[k] = cv2.remap(rain.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderValue=np.nan)
    return out


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    frames = rng.gamma(0.4, 3.0, (3, 128, 128)).astype(np.float32)
    flow = np.ones((2, 128, 128), np.float32)
    print(extrapolate(frames, flow, 6).shape)
