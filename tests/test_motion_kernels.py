"""The compiled kernels of Lucas-Kanade motion give the values of the numpy code they replace."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("numba")

from xnowcast.motion import lucas_kanade  # noqa: E402
from xnowcast.motion.kernels import heavy_tail_sums, node_planes, window_moments  # noqa: E402


@pytest.mark.parametrize("k", [12, 3])
def test_heavy_tail_sums_equal_the_kernel_times_the_features(k):
    """The fused pass equals the kernel array times the features (numpy), to rounding."""
    rng = np.random.default_rng(0)
    dy2, dx2 = rng.random((7, 1033)) * 40, rng.random((11, 1033)) * 40
    features = rng.normal(size=(k, 1033))
    kernel = 1.0 / ((dy2[:, None, :] + dx2[None, :, :]) + 1.0) ** 2
    sums = heavy_tail_sums(dy2, dx2, features)
    assert sums.shape == (7, 11, k)
    np.testing.assert_allclose(sums, kernel @ features.T, rtol=1e-12, atol=1e-12)


def test_heavy_tail_sums_rejects_bad_shapes():
    with pytest.raises(ValueError, match="one column per point"):
        heavy_tail_sums(np.zeros((2, 3)), np.zeros((4, 5)), np.zeros((12, 3)))
    with pytest.raises(ValueError, match="k <= 12"):
        heavy_tail_sums(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros((13, 3)))


def _moment_sums(rng, ny, nx, n=40):
    """Kernel-weighted moment sums of random vectors at an (ny, nx) grid, and the grid."""
    px, py = rng.random(n) * 200 - 100, rng.random(n) * 200 - 100
    vectors = rng.normal(size=(n, 2))
    features = lucas_kanade._moment_features(px, py, vectors, rng.random(n) + 0.5)
    gx, gy = np.linspace(-150, 150, nx), np.linspace(-150, 150, ny)
    kernel = 1.0 / (1.0 + ((gy[:, None, None] - py) ** 2 + (gx[None, :, None] - px) ** 2) / 36) ** 2
    return kernel @ features, features, gx, gy


@pytest.mark.parametrize("prior", [0.0, 1e-3])
def test_node_planes_equal_lapack_solves(prior):
    rng = np.random.default_rng(1)
    sums, features, gx, gy = _moment_sums(rng, 9, 13)
    anchor, targets = None, None
    if prior:
        targets = lucas_kanade._global_plane(features.sum(0), gx[None], gy[:, None], 6.0)
        anchor = (prior, targets)
    expected = lucas_kanade._plane_fits(sums, gx[None], gy[:, None], 6.0, anchor)  # LAPACK
    found = node_planes(sums, gx, gy, 6.0, prior, targets)
    np.testing.assert_allclose(found, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())


def test_node_planes_exact_for_affine_motion():
    px, py = np.array([0.0, 4.0, 0.0, 3.0]), np.array([0.0, 0.0, 4.0, 3.0])
    u, v, w = 1 + 0.5 * px - 0.1 * py, 2 - 0.25 * py, np.ones(4)
    sums = lucas_kanade._moment_features(px, py, np.stack([u, v], 1), w).sum(0)
    planes = node_planes(np.broadcast_to(sums, (2, 3, 12)), np.arange(3.0), np.arange(2.0), 1.0)
    gy, gx = np.mgrid[0:2, 0:3].astype(float)  # exact but for the ridge of 1e-6 sigma^2
    np.testing.assert_allclose(planes[0, 0], 1 + 0.5 * gx - 0.1 * gy, atol=1e-6)
    np.testing.assert_allclose(planes[1, 2], -0.25, atol=1e-6)


def test_node_planes_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(ny, nx, 12\)"):
        node_planes(np.zeros((2, 3, 12)), np.zeros(2), np.zeros(2), 1.0)


def _moments_in_sample_order(image, points, win):
    """The moments of :func:`window_moments`, summed sample by sample in numpy."""
    gx = cv2.Scharr(image, cv2.CV_32F, 1, 0).astype(np.float64)
    gy = cv2.Scharr(image, cv2.CV_32F, 0, 1).astype(np.float64)
    ny, nx = image.shape
    half = (win - 1) * 0.5
    out = np.zeros((len(points), 3, 3))
    for n, (x, y) in enumerate(points):
        ix, iy = int(np.floor(x - half)), int(np.floor(y - half))
        fx, fy = x - half - ix, y - half - iy
        for a in range(win):
            for b in range(win):
                x0, y0 = ix + b, iy + a
                if not (0 <= x0 < nx - 1 and 0 <= y0 < ny - 1):
                    continue
                w = [(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]
                g = [
                    w[0] * f[y0, x0] + w[1] * f[y0, x0 + 1] + w[2] * f[y0 + 1, x0]
                    + w[3] * f[y0 + 1, x0 + 1]
                    for f in (gx, gy)
                ]  # fmt: skip
                products = (g[0] * g[0], g[0] * g[1], g[1] * g[1])
                for c, p in enumerate(products):
                    out[n, c] += (p, p * (b - half), p * (a - half))
    return out


@pytest.mark.parametrize("win", [8, 9])
def test_window_moments_exact_at_whole_pixels(win):
    rng = np.random.default_rng(2)
    image = (rng.random((30, 34)) * 255).astype(np.uint8)
    points = np.array([[15.0, 14.0], [1.0, 2.0], [33.0, 29.0], [20.0, 5.0]])  # edges too
    expected = _moments_in_sample_order(image, points, win)
    np.testing.assert_array_equal(window_moments(image, points, win), expected)
    between = points + np.array([[0.3, 0.71], [0.5, 0.25], [-0.2, -0.6], [0.9, 0.1]])
    found = window_moments(image, between, win)
    expected = _moments_in_sample_order(image, between, win)
    np.testing.assert_allclose(found, expected, rtol=1e-12, atol=1e-9 * np.abs(expected).max())


def test_interpolated_flow_within_float32_rounding_of_lapack(monkeypatch):
    rng = np.random.default_rng(3)
    points = rng.random((150, 2)) * [300, 200]
    angle = 0.02
    vectors = 2.5 + np.stack([-angle * points[:, 1], angle * points[:, 0]], 1)  # a rotation
    vectors += rng.normal(scale=0.3, size=vectors.shape)
    weights = rng.integers(1, 4, len(points)).astype(float)
    flow = lucas_kanade.interpolate_vectors(points, vectors, (200, 300), weights=weights)

    def lapack(sums, gx, gy, sigma, weight=0.0, targets=None):
        anchor = None if targets is None else (weight, targets)
        return lucas_kanade._plane_fits(sums, gx[None], gy[:, None], sigma, anchor)

    monkeypatch.setattr(lucas_kanade, "node_planes", lapack)
    before = lucas_kanade.interpolate_vectors(points, vectors, (200, 300), weights=weights)
    assert np.abs(flow - before).max() <= 1e-5  # float32 rounding of a few px
    assert np.mean(flow == before) > 0.99


@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_frames_with_one_finite_value_give_zero_motion(fill):
    from xnowcast.motion import estimate_motion

    frames = np.zeros((3, 32, 32), np.float32)
    frames[1, 5:9, 5:9] = fill  # NaN and inf are left out: nothing to track
    flow = estimate_motion(frames, n_flows=2, transform="identity", value_range=(0, 1))
    assert flow.shape == (2, 32, 32) and not flow.any()


def test_frame_pairs_of_longer_sequences_use_the_last_frames_only():
    from xnowcast.motion.common import frame_pairs

    rng = np.random.default_rng(4)
    frames = rng.random((6, 8, 9)).astype(np.float32)
    frames[0] = np.nan  # an earlier frame that is not used changes nothing
    frames[4, :2] = np.nan
    for got, expected in zip(frame_pairs(frames, 2), frame_pairs(frames[-3:], 2)):
        np.testing.assert_array_equal(got, expected)
    assert len(frame_pairs(frames, 2)) == 2
