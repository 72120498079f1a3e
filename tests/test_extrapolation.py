"""Tests of semi-Lagrangian extrapolation."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from xnowcast.extrapolation import advect, backward_displacement, extrapolate  # noqa: E402


def smooth_field(n=64, seed=0, sigma=3.0, pad=0):
    rng = np.random.default_rng(seed)
    field = rng.random((n + 2 * pad, n + 2 * pad)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), sigma)
    return (field - field.min()) / (field.max() - field.min()) * 10


def shift(field, dx, dy):
    """``field`` moved by (dx, dy) pixels (value at (r, c) -> (r + dy, c + dx))."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(
        field, m, field.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )


def test_translation_matches_truth():
    pad = 20
    big = smooth_field(64, pad=pad)
    dx, dy = 1.5, -0.75
    flow = np.empty((2, 64, 64), np.float32)
    flow[0], flow[1] = dx, dy
    out = extrapolate(big[pad:-pad, pad:-pad], flow, 6)
    assert out.shape == (6, 64, 64) and out.dtype == np.float32
    for k in range(1, 7):
        truth = shift(big, k * dx, k * dy)[pad:-pad, pad:-pad]
        inner = np.s_[12:-12, 12:-12]
        err = np.abs(out[k - 1][inner] - truth[inner])
        assert np.nanmax(err) < 0.05 * 10


def test_integer_shift_is_exact_and_border_is_nan():
    frame = smooth_field(32)
    flow = np.zeros((2, 32, 32), np.float32)
    flow[0] = 2.0  # 2 px per step towards +x (increasing column)
    flow[1] = -1.0  # 1 px per step towards -y (decreasing row)
    out = extrapolate(frame, flow, 3)
    for k in (1, 2, 3):
        np.testing.assert_allclose(
            out[k - 1][: 32 - k, 2 * k :], frame[k:, : 32 - 2 * k], atol=1e-5
        )
        # came in from outside: left columns and bottom rows
        assert np.isnan(out[k - 1][:, : 2 * k]).all()
        assert np.isnan(out[k - 1][32 - k :, :]).all()
        assert not np.isnan(out[k - 1][: 32 - k, 2 * k :]).any()


def test_fill_value_and_input_untouched():
    frame = smooth_field(24)
    before = frame.copy()
    flow = np.zeros((2, 24, 24), np.float32)
    flow[0] = 3.0
    out = extrapolate(frame, flow, 2, fill=-1.0)
    assert (out[1][:, :6] == -1.0).all()
    np.testing.assert_array_equal(frame, before)


def test_zero_flow_is_persistence():
    frame = smooth_field(16)
    frame[3, 4] = np.nan
    out = extrapolate(frame, np.zeros((2, 16, 16), np.float32), 4)
    for k in range(4):
        np.testing.assert_array_equal(np.isnan(out[k]), np.isnan(frame))
        np.testing.assert_allclose(out[k][~np.isnan(frame)], frame[~np.isnan(frame)], atol=1e-5)


def test_nan_region_moves_without_spreading():
    frame = smooth_field(48)
    frame[20:26, 10:16] = np.nan  # a 6x6 hole
    flow = np.zeros((2, 48, 48), np.float32)
    flow[0] = 1.5
    out = extrapolate(frame, flow, 4)
    cols = np.arange(48)
    for k in range(1, 5):
        src_x = cols - 1.5 * k
        inside = src_x >= -0.5
        holes = np.isnan(out[k - 1][22]) & inside
        # the hole moved 1.5 px per step; it is no wider than its footprint plus the kernel ...
        assert set(cols[holes]) <= set(cols[(src_x > 9) & (src_x < 16)])
        # ... and no narrower than its footprint minus the kernel
        assert set(cols[(src_x >= 10.5) & (src_x <= 14.5)]) <= set(cols[holes])
        # rows away from the hole have no NaN apart from the inflow border
        assert not np.isnan(out[k - 1][:18][:, inside]).any()
        assert not np.isnan(out[k - 1][28:][:, inside]).any()
        # values away from the hole are the exact advected values
        src = shift(np.nan_to_num(frame), 1.5 * k, 0)
        np.testing.assert_allclose(out[k - 1][20:26, 30:40], src[20:26, 30:40], atol=0.1)


def test_rotation_follows_curved_trajectories():
    n = 65
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    omega = np.float32(np.deg2rad(5.0))  # 5 degrees per step, counter-clockwise in (x, y)
    flow = np.stack([-(yy - c) * omega, (xx - c) * omega]).astype(np.float32)
    # a blob at radius 20 right of the centre
    frame = np.exp(-((xx - (c + 20)) ** 2 + (yy - c) ** 2) / (2 * 2.0**2)).astype(np.float32)
    out = extrapolate(frame, flow, 18)  # 90 degrees
    peak = np.unravel_index(np.nanargmax(out[-1]), out[-1].shape)
    # after a quarter turn the blob is 20 px below the centre (row + 20), on the same radius
    assert abs(peak[0] - (c + 20)) <= 1.5 and abs(peak[1] - c) <= 1.5
    assert np.nanmax(out[-1]) > 0.6  # not smeared away


def test_backward_displacement_constant_and_midpoint():
    flow = np.ones((2, 4, 5), np.float32)
    maps = [(mx.copy(), my.copy()) for mx, my in backward_displacement(flow, 3)]
    assert [float(m[0][2, 3]) for m in maps] == [2.0, 1.0, 0.0]
    assert [float(m[1][2, 3]) for m in maps] == [1.0, 0.0, -1.0]


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((4, 4)), np.zeros((2, 4, 5)), 3), "flow must have shape"),
        ((np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), 3), r"frame must have shape \(y, x\)"),
        ((np.zeros((4, 4)), np.zeros((2, 4, 4)), 0), "n_steps"),
        ((np.zeros((4, 4)), np.full((2, 4, 4), np.nan), 2), "flow contains NaN"),
    ],
)
def test_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        extrapolate(*args)


def test_bad_interpolation_lists_valid():
    with pytest.raises(ValueError, match="'nearest', 'linear', 'cubic'"):
        extrapolate(np.zeros((4, 4)), np.zeros((2, 4, 4)), 1, interpolation="spline")


@pytest.mark.parametrize("step", [1, 4])
def test_matches_pysteps_semilagrangian(step):
    """Same trajectories as pysteps (sign convention and midpoint scheme) in the interior."""
    sl = pytest.importorskip("pysteps.extrapolation.semilagrangian")
    n = 65
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    omega = np.deg2rad(3.0)
    flow = np.stack([-(yy - c) * omega + 0.5, (xx - c) * omega]).astype(np.float32)
    frame = smooth_field(n)
    ref = sl.extrapolate(frame.astype("float64"), flow.astype("float64"), 8, interp_order=1)
    ours = extrapolate(frame, flow, 8, step=step)
    np.testing.assert_allclose(ours[:, 12:-12, 12:-12], ref[:, 12:-12, 12:-12], atol=0.02)


# ------------------------------------------- the fused kernel against a plain reference
def _sample(a, x, y, interpolation):
    """``a`` at float64 positions ``(x, y)``, borders replicated (plain numpy)."""
    ny, nx = a.shape
    a = a.astype(np.float64)
    if interpolation == "nearest":
        return a[
            np.clip(np.rint(y), 0, ny - 1).astype(int), np.clip(np.rint(x), 0, nx - 1).astype(int)
        ]
    if interpolation == "linear":
        x, y = np.clip(x, 0, nx - 1), np.clip(y, 0, ny - 1)
        x0 = np.minimum(np.floor(x), nx - 2).astype(int)
        y0 = np.minimum(np.floor(y), ny - 2).astype(int)
        tx, ty = x - x0, y - y0
        top = a[y0, x0] * (1 - tx) + a[y0, x0 + 1] * tx
        bottom = a[y0 + 1, x0] * (1 - tx) + a[y0 + 1, x0 + 1] * tx
        return top * (1 - ty) + bottom * ty

    def keys(d):  # OpenCV's cubic convolution kernel, a = -0.75
        d, k = np.abs(d), -0.75
        near = ((k + 2) * d - (k + 3)) * d * d + 1
        far = ((k * d - 5 * k) * d + 8 * k) * d - 4 * k
        return np.where(d <= 1, near, np.where(d < 2, far, 0.0))

    fx, fy = np.floor(x), np.floor(y)
    total = np.zeros(np.shape(x))
    for r in range(-1, 3):
        for c in range(-1, 3):
            rows = np.clip(fy + r, 0, ny - 1).astype(int)
            cols = np.clip(fx + c, 0, nx - 1).astype(int)
            total += keys(x - (fx + c)) * keys(y - (fy + r)) * a[rows, cols]
    return total


def reference(frame, flow, n_steps, step, interpolation="linear", fill=np.nan):
    """Semi-Lagrangian extrapolation written out plainly: coarse midpoint trajectories in
    float64, ``cv2.resize`` of the displacement, sampling of the nearest-filled source,
    the nearest source pixel's validity, ``fill`` outside."""
    ny, nx = frame.shape
    nodes = [(np.arange(-(-n // step)) + 0.5) * (n / -(-n // step)) - 0.5 for n in (nx, ny)]
    start_x, start_y = np.meshgrid(*nodes)
    x, y = start_x.copy(), start_y.copy()
    missing = np.isnan(frame)
    _, labels = cv2.distanceTransformWithLabels(
        missing.astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    source = np.concatenate([[0.0], frame[~missing]])[labels]
    grid_x, grid_y = np.meshgrid(np.arange(nx), np.arange(ny))
    out = []
    for _ in range(n_steps):
        du, dv = _sample(flow[0], x, y, "linear"), _sample(flow[1], x, y, "linear")
        du, dv = (
            _sample(flow[0], x - du / 2, y - dv / 2, "linear"),
            _sample(flow[1], x - du / 2, y - dv / 2, "linear"),
        )
        x, y = x - du, y - dv
        sx = grid_x + cv2.resize((x - start_x).astype(np.float32), (nx, ny))
        sy = grid_y + cv2.resize((y - start_y).astype(np.float32), (nx, ny))
        lead = _sample(source, sx, sy, interpolation)
        lead[_sample(missing, sx, sy, "nearest") > 0] = np.nan
        lead[(sx < -0.5) | (sx > nx - 0.5) | (sy < -0.5) | (sy > ny - 0.5)] = fill
        out.append(lead)
    return np.stack(out)


def swirl(n=48, omega_deg=4.0):
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    omega = np.deg2rad(omega_deg)
    return np.stack([-(yy - c) * omega + 0.7, (xx - c) * omega - 0.3]).astype(np.float32)


@pytest.mark.parametrize("interpolation", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("step", [1, 4])
def test_fused_kernel_equals_the_plain_reference(step, interpolation):
    frame = smooth_field(48, seed=3)
    frame[10:16, 20:30] = np.nan  # a data gap
    frame[40, 5] = np.nan
    flow = swirl()
    ours = extrapolate(frame, flow, 6, step=step, interpolation=interpolation, fill=-2.0)
    ref = reference(frame, flow, 6, step, interpolation, fill=-2.0)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-4, equal_nan=True)
    assert (ours == -2.0).any() and np.isnan(ours).any()


def test_one_source_frame_per_lead_time():
    flow = swirl()
    leads = np.stack([smooth_field(48, seed=s) for s in range(5)])
    leads[2, 30:35, 30:35] = np.nan  # a gap in one lead only
    out = extrapolate(leads, flow, 5)
    for k in range(5):  # lead k + 1 samples leads[k] at the end of its k + 1 step trajectory
        np.testing.assert_array_equal(out[k], extrapolate(leads[k], flow, k + 1)[k])
    assert np.isnan(out[2][20:45, 20:45]).any() and not np.isnan(out[3][20:45, 20:45]).any()
    # shared gaps: one mask for every lead, still each lead its own values
    leads[:, 30:35, 30:35] = np.nan
    out = extrapolate(leads, flow, 5, interpolation="cubic")
    for k in range(5):
        np.testing.assert_array_equal(
            out[k], extrapolate(leads[k], flow, k + 1, interpolation="cubic")[k]
        )


def test_advect_is_the_last_lead_of_extrapolate():
    frame = smooth_field(48, seed=5)
    frame[5:9, 5:9] = np.nan
    flow = swirl()
    for n in (1, 4):
        np.testing.assert_array_equal(advect(frame, flow, n), extrapolate(frame, flow, n)[-1])
    uniform = np.ones((2, 48, 48), np.float32)
    np.testing.assert_array_equal(advect(frame, uniform, 3), extrapolate(frame, uniform, 3)[-1])
    with pytest.raises(ValueError, match="use extrapolate"):
        advect(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), 2)


def test_out_is_filled_and_checked():
    frame, flow = smooth_field(16), np.ones((2, 16, 16), np.float32)
    out = np.zeros((3, 16, 16), np.float32)
    assert extrapolate(frame, flow, 3, out=out) is out
    np.testing.assert_array_equal(out, extrapolate(frame, flow, 3))
    with pytest.raises(ValueError, match="C-contiguous float32 array of shape \\(3, 16, 16\\)"):
        extrapolate(frame, flow, 3, out=np.zeros((3, 16, 32), np.float32)[:, :, ::2])


def test_without_numba_the_error_names_the_extra():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from xnowcast.extrapolation import extrapolate\n"
        "extrapolate(np.zeros((4, 4)), np.zeros((2, 4, 4)), 1)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert "MissingOptionalDependency" in run.stderr and "xnowcast[flow]" in run.stderr


@pytest.mark.parametrize("interpolation", ["linear", "nearest", "cubic"])
def test_threaded_and_serial_kernels_agree(monkeypatch, interpolation):
    from xnowcast.extrapolation import kernels

    frame = smooth_field(48, seed=5)
    frame[10:16, 20:30] = np.nan
    flow = swirl()
    serial = extrapolate(frame, flow, 5, interpolation=interpolation)
    assert not kernels.threads_pay(serial.size)  # a small forecast runs on the calling thread
    monkeypatch.setattr(kernels, "PARALLEL_PIXELS", 1)
    monkeypatch.setattr(kernels.numba, "get_num_threads", lambda: 2)
    assert kernels.threads_pay(serial.size)
    threaded = extrapolate(frame, flow, 5, interpolation=interpolation)
    np.testing.assert_array_equal(serial, threaded)


def test_threaded_and_serial_trajectories_agree():
    from xnowcast.extrapolation.kernels import trace, trace_serial

    flow = swirl()
    ys, xs = np.mgrid[0:48:4, 0:48:4].astype(np.float32)
    u, v = np.ascontiguousarray(flow[0]), np.ascontiguousarray(flow[1])
    for midpoint in (True, False):
        np.testing.assert_array_equal(
            trace(u, v, xs, ys, 6, midpoint), trace_serial(u, v, xs, ys, 6, midpoint)
        )


@pytest.mark.parametrize("interpolation", ["linear", "nearest", "cubic"])
def test_sources_made_lead_by_lead_equal_the_stacked_sources(interpolation):
    from xnowcast.extrapolation.semilagrangian import missing_mask, sample_each_lead, sample_leads

    flow = swirl()
    sources = np.stack([smooth_field(48, seed=s) for s in range(5)])
    missing = np.zeros((48, 48), bool)
    missing[10:16, 20:30] = True
    made = []

    def source(k, buffer):
        made.append(k)
        buffer[...] = sources[k]

    for mask in (missing_mask(missing), missing_mask(np.zeros_like(missing))):
        options = dict(fill=-3.0, interpolation=interpolation)
        expected = sample_leads(sources, mask, flow, 5, **options)
        made.clear()
        out = sample_each_lead(source, (48, 48), mask, flow, 5, **options)
        assert made == [0, 1, 2, 3, 4]
        np.testing.assert_array_equal(out, expected)
        assert (out == -3.0).any()
    assert np.isnan(out).sum() == 0 and np.isnan(expected).sum() == 0
    with_gap = sample_each_lead(source, (48, 48), missing_mask(missing), flow, 5)
    assert np.isnan(with_gap).any()
    per_lead = np.zeros((5, 48, 48), np.uint8)  # a gap in one lead's source only
    per_lead[2, 30:35, 30:35] = 1
    np.testing.assert_array_equal(
        sample_each_lead(source, (48, 48), per_lead, flow, 5),
        sample_leads(sources, per_lead, flow, 5),
    )


def test_trajectories_traced_beforehand_and_moved_sample_as_a_moved_flow():
    """sample_trajectories on coarse_trajectories is sample_leads; displacements moved by a
    whole pixel per lead sample as a uniform flow one pixel per step faster."""
    from xnowcast.extrapolation.semilagrangian import (
        coarse_trajectories,
        missing_mask,
        sample_leads,
        sample_trajectories,
    )

    sources = np.stack([smooth_field(48, seed=s) for s in range(4)])
    mask = missing_mask(np.zeros((48, 48), bool))
    flow = swirl()
    traced = coarse_trajectories(flow, 4, True, 4)
    np.testing.assert_array_equal(
        sample_trajectories(sources, mask, traced), sample_leads(sources, mask, flow, 4)
    )
    uniform = np.zeros((2, 48, 48), np.float32)
    uniform[0] = 1.0
    disp, rows, cols = coarse_trajectories(uniform, 4, True, 4)
    shift = (
        np.arange(1, 5, dtype=np.float32)[:, None, None, None] * np.float32([1, 0])[:, None, None]
    )
    uniform[0] = 2.0
    np.testing.assert_array_equal(
        sample_trajectories(sources, mask, (disp - shift, rows, cols)),
        sample_leads(sources, mask, uniform, 4),
    )


@pytest.mark.parametrize("interpolation", ["linear", "nearest", "cubic"])
def test_row_windows_of_the_missing_area_change_nothing(interpolation):
    """With the valid columns of each row given (mask_spans) and a NaN fill, the kernel
    skips what can only be NaN: the same result as without them, to the bit."""
    from xnowcast.extrapolation.kernels import (
        ORDERS,
        advect_leads_serial,
        mask_spans,
        resize_weights,
    )
    from xnowcast.extrapolation.semilagrangian import coarse_trajectories

    n = 64
    yy, xx = np.mgrid[0:n, 0:n]
    missing = np.zeros((2, n, n), np.uint8)
    missing[0] = (yy - 30) ** 2 + (xx - 36) ** 2 > 24**2  # a radar disc
    missing[0, 28:34, 10:50] = 1  # and a gap across it
    missing[1, :, 40:] = 1  # another lead's mask
    missing[1, 5] = 1  # a row with nothing valid
    sources = np.stack([smooth_field(n, seed=s) for s in range(2)])
    flow = swirl(n, omega_deg=6.0) * 2.5  # trajectories fan out over many rows
    disp, rows, cols = coarse_trajectories(flow, 4, True, 4)
    spans = mask_spans(missing)
    assert spans[1, 5].tolist() == [n, 0] and spans[0, 0, 0] > 0
    for fill in (np.nan, -7.0):
        args = (sources, missing, disp, rows, cols, ORDERS[interpolation], np.float32(fill))
        plain, windowed = np.empty((2, 4, n, n), np.float32)
        advect_leads_serial(*args, plain)
        advect_leads_serial(*args, windowed, spans)
        np.testing.assert_array_equal(windowed, plain)
        assert np.isnan(plain).mean() > 0.3 and np.isfinite(plain).mean() > 0.3
    uniform = resize_weights(n, 1)
    shifted = np.full((4, 2, 1, 1), 9.5, np.float32)  # the whole valid area moves
    args = (sources, missing, shifted, uniform, uniform, ORDERS[interpolation], np.float32(np.nan))
    plain, windowed = np.empty((2, 4, n, n), np.float32)
    advect_leads_serial(*args, plain)
    advect_leads_serial(*args, windowed, spans)
    np.testing.assert_array_equal(windowed, plain)


@pytest.mark.parametrize("shape", [(40, 52), (33, 20), (1, 8)])
def test_filter_spectrum_equals_numpy_on_odd_and_even_grids(shape):
    from xnowcast.cascade import ar_lead_coefficients, bandpass_filters, lead_filters
    from xnowcast.extrapolation.kernels import filter_spectrum

    filters = bandpass_filters(shape, 3)
    phi = np.array([[0.9, 0.05], [0.6, -0.1], [0.2, 0.0]])
    coefficients = ar_lead_coefficients(phi, 3).astype("float32")
    rng = np.random.default_rng(2)
    last, previous = np.fft.rfft2(rng.normal(size=(2, *shape)).astype("float32"))
    last, previous = last.astype("complex64"), previous.astype("complex64")
    a, b = lead_filters(filters, coefficients)
    out = np.empty_like(last)
    ca, cb = coefficients[2].T.copy()
    filter_spectrum(
        filters.weights, ca, cb, last.view("float32"), previous.view("float32"), out.view("float32")
    )
    expected = a[2] * last + b[2] * previous
    expected[0, 0] = last[0, 0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
