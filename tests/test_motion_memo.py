"""Tests of the reuse of frame-pair tracking: consecutive init times track a shared pair once."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from xnowcast.motion import estimate_motion  # noqa: E402
from xnowcast.motion.lucas_kanade import TRACKS  # noqa: E402
from xnowcast.motion.memo import ArrayMemo, MemoInfo  # noqa: E402


@pytest.fixture
def tracks():
    """The memo of frame-pair tracking, emptied, with its size restored afterwards."""
    size = TRACKS.maxsize
    TRACKS.maxsize = 32
    TRACKS.clear()
    yield TRACKS
    TRACKS.maxsize = size
    TRACKS.clear()


def moving_rain(n_frames=6, size=96, seed=0):
    """Rain (mm/h) moving 1.5 px right and 0.5 px down per frame."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur(rng.random((size + 40, size + 40)).astype(np.float32), (0, 0), 3)
    big = 30 * (big - big.min()) / (big.max() - big.min())
    frames = [
        cv2.warpAffine(big, np.float32([[1, 0, 1.5 * k], [0, 1, 0.5 * k]]), big.shape[::-1])
        for k in range(n_frames)
    ]
    return np.stack(frames)[:, 20:-20, 20:-20]


def windows_motion(frames, n_flows=2):
    """The motion of every window of ``n_flows + 1`` consecutive frames, oldest first."""
    return [
        estimate_motion(frames[end - n_flows : end + 1], n_flows=n_flows)
        for end in range(n_flows, len(frames))
    ]


def test_consecutive_windows_track_a_shared_pair_once_with_the_same_bits(tracks):
    frames = moving_rain()
    reused = windows_motion(frames)
    # 4 windows of 2 pairs, 5 distinct pairs: every pair after the first window is shared
    assert tracks.info()[:2] == (3, 5)
    tracks.maxsize = 0  # off: every pair tracked again
    fresh = windows_motion(frames)
    assert tracks.info().size == 0
    for a, b in zip(reused, fresh):
        np.testing.assert_array_equal(a, b)
    assert abs(float(np.median(fresh[-1][0])) - 1.5) < 0.05  # and the motion is right


def test_memo_tells_pairs_options_and_gaps_apart(tracks):
    frames = moving_rain(n_frames=3)
    estimate_motion(frames, n_flows=1)
    estimate_motion(frames, n_flows=1, win_size=31)  # another option: tracked anew
    gap = frames.copy()
    gap[1, :10, :10] = np.nan  # a gap that opens: another feature mask
    estimate_motion(gap, n_flows=1)
    estimate_motion(frames[::-1].copy(), n_flows=1)  # the pair the other way round
    assert tracks.info()[:2] == (0, 4)
    estimate_motion(frames, n_flows=1)
    assert tracks.info()[:2] == (1, 4)


def test_reuse_from_threads_is_identical(tracks):
    frames = moving_rain(n_frames=9)
    tracks.maxsize = 0
    serial = windows_motion(frames)
    tracks.maxsize = 32
    ends = list(range(2, len(frames))) * 3
    with ThreadPoolExecutor(4) as pool:
        parallel = list(
            pool.map(lambda end: estimate_motion(frames[end - 2 : end + 1], n_flows=2), ends)
        )
    for end, flow in zip(ends, parallel):
        np.testing.assert_array_equal(flow, serial[end - 2])
    assert tracks.info().hits > 0


def test_forecast_of_consecutive_init_times_reuses_pairs(tracks):
    import dask

    from xnowcast import forecast
    from xnowcast.datasets import synthetic_radar

    cube = synthetic_radar(n_times=10, size=64)
    params = {"n_in": 3, "n_out": 2, "extrapolation": "advection"}
    init = cube.time.values[2:8]
    with dask.config.set(scheduler="synchronous"):
        reused = forecast(cube, "optical-flow", init_times=init, model_params=params).values
        hits = tracks.info().hits
        tracks.maxsize = 0
        fresh = forecast(cube, "optical-flow", init_times=init, model_params=params).values
    assert hits >= len(init) - 1  # every init time after the first reuses a pair
    np.testing.assert_array_equal(reused, fresh)


def test_array_memo_bounds_and_freezes_results():
    memo = ArrayMemo(maxsize=2)
    for k in range(3):
        memo.get(bytes([k]), lambda k=k: (np.full(2, k),))
    assert memo.info() == MemoInfo(hits=0, misses=3, size=2, maxsize=2)
    memo.get(bytes([1]), lambda: pytest.fail("computed again"))  # still held
    assert memo.get(bytes([0]), lambda: (np.zeros(1),))[0].tolist() == [0.0]  # dropped
    (stored,) = memo.get(bytes([0]), lambda: pytest.fail("computed again"))
    with pytest.raises(ValueError, match="read-only"):
        stored[0] = 1
    memo.maxsize = 0
    assert memo.info().size == 0
    memo.get(b"x", lambda: (1,))
    assert memo.info().size == 0
    with pytest.raises(ValueError, match="maxsize must be a whole number >= 0"):
        memo.maxsize = -1


def _get_or_fail(memo):
    memo.get(b"k", lambda: (1,))


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs fork")
def test_a_forked_process_gets_a_fresh_lock():
    import multiprocessing

    memo = ArrayMemo(maxsize=2)
    with memo._lock:  # held by this thread while the child is forked
        child = multiprocessing.get_context("fork").Process(target=_get_or_fail, args=(memo,))
        child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0  # the child did not wait for a lock no thread of it holds


def test_track_pair_shares_the_memo_of_the_motion(tracks):
    from xnowcast.motion.common import frame_pairs
    from xnowcast.motion.lucas_kanade import feature_mask, track_pair
    from xnowcast.transforms import get_transform

    frames = moving_rain(n_frames=3)
    flow = estimate_motion(frames, n_flows=2)
    assert flow.any() and tracks.info()[:2] == (0, 2)  # the shared frame digested once
    tf = get_transform("dbr")
    z = tf.forward(frames)
    missing = np.isnan(z)
    for i, (a, b) in enumerate(frame_pairs(z, 2, tf.output_range)):
        mask = feature_mask(missing[i], missing[i + 1], 25)
        track_pair(a.copy(), b.copy(), mask, moments=True, **_track_defaults())
    assert tracks.info()[:2] == (2, 2)  # the same keys from copies of the images


def _track_defaults() -> dict:
    """The tracking options of ``lucas_kanade`` at their defaults (as the motion passes them)."""
    import inspect

    from xnowcast.motion.lucas_kanade import lucas_kanade

    names = ("max_corners", "quality_level", "min_distance", "block_size", "win_size")
    names += ("max_level", "fb_threshold")
    params = inspect.signature(lucas_kanade).parameters
    return {name: params[name].default for name in names}
