"""Tests of the invertible intensity transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnowcast.transforms import (
    DBR,
    Identity,
    Log,
    Scale,
    ToUint8,
    get_transform,
    list_transforms,
    to_uint8,
)

RATES = np.array([0.0, 0.05, 0.1, 0.5, 1.0, 7.3, 50.0, 120.0, np.nan], dtype=np.float32)


@pytest.mark.parametrize("name", ["identity", "log", "dbr", "scale"])
def test_round_trip_above_threshold(name):
    t = get_transform(name)
    x = RATES[(RATES >= 0.1) | (RATES == 0) | np.isnan(RATES)]
    y = t.forward(x)
    assert y.dtype == np.float32
    back = t.inverse(y)
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-6)
    # NaN stays NaN in both directions
    assert np.isnan(y[-1]) and np.isnan(back[-1])


def test_inputs_not_modified():
    x = RATES.copy()
    for name in list_transforms():
        t = get_transform(name)
        t.inverse(t.forward(x).astype(np.float32))
        np.testing.assert_array_equal(x, RATES)


def test_dbr_matches_pysteps():
    transformation = pytest.importorskip("pysteps.utils.transformation")
    x = RATES[:-1].astype("float64")
    ref, _ = transformation.dB_transform(x.copy(), threshold=0.1, zerovalue=-15.0)
    np.testing.assert_allclose(DBR(threshold=0.1, zerovalue=-15.0).forward(x), ref, rtol=1e-6)


def test_dbr_threshold_and_zero():
    t = DBR(threshold=0.1, zerovalue=-15.0, vmax=100.0)
    np.testing.assert_array_equal(t.forward([0.0, 0.09]), [-15.0, -15.0])
    assert t.forward([10.0])[0] == pytest.approx(10.0)
    assert t.inverse([-15.0, -10.5])[0] == 0.0
    assert t.inverse([-15.0, -10.5])[1] == 0.0
    assert t.output_range == (-15.0, 20.0)


def test_log_variants():
    t = Log()
    np.testing.assert_allclose(t.forward([0.0, math.e - 1]), [0.0, 1.0], rtol=1e-6)
    assert t.output_range == pytest.approx((0.0, math.log1p(100.0)))
    t10 = Log(base=10, threshold=0.1, zerovalue=-2.0)
    np.testing.assert_allclose(t10.forward([0.0, 0.01, 10.0]), [-2.0, -2.0, 1.0])
    np.testing.assert_allclose(t10.inverse([-2.0, 1.0]), [0.0, 10.0], rtol=1e-6)
    assert t10.output_range == (-2.0, 2.0)


def test_scale_and_uint8_are_fixed_not_per_frame():
    s = Scale(0, 50)
    # a weak frame is not stretched to the full range
    weak = np.array([0.0, 1.0, 2.0])
    assert s.forward(weak).max() == pytest.approx(0.04)
    assert ToUint8(0, 50).forward(weak).max() == 10
    np.testing.assert_array_equal(Scale(0, 50, clip=True).forward([-5.0, 100.0]), [0.0, 1.0])


def test_uint8_clip_nan_and_inverse():
    t = ToUint8(-15.0, 20.0, nan_value=0)
    out = t.forward(np.array([-30.0, -15.0, 2.5, 20.0, 99.0, np.nan]))
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 128, 255, 255, 0]
    assert t.inverse(np.array([0, 255], np.uint8)).tolist() == [-15.0, 20.0]
    np.testing.assert_array_equal(to_uint8(np.array([0.5]), (0.0, 1.0)), [128])
    assert ToUint8(nan_value=7).forward([np.nan])[0] == 7


def test_get_transform_forms_and_params_round_trip():
    for name in list_transforms():
        t = get_transform(name)
        assert get_transform(t.to_dict()) == t
        assert get_transform(name.upper(), **t.get_params()) == t
    t = DBR(threshold=0.2)
    assert get_transform(t) is t
    assert isinstance(get_transform(None), Identity)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="valid names are: dbr, identity, log, scale, uint8"):
        get_transform("sqrt")
    with pytest.raises(ValueError, match="'name' key"):
        get_transform({"threshold": 0.1})
    with pytest.raises(TypeError, match="bad parameters for transform 'dbr'"):
        get_transform("dbr", treshold=0.1)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DBR(threshold=0), "threshold must be a positive number"),
        (lambda: DBR(threshold=0.1, zerovalue=-5), "zerovalue"),
        (lambda: Scale(1, 1), "vmax"),
        (lambda: ToUint8(0, 1, nan_value=300), "nan_value"),
        (lambda: Log(base=2), "base"),
        (lambda: Identity(vmax=float("nan")), "vmax must be a positive number, got nan"),
    ],
)
def test_invalid_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()
