"""Every map has coastlines offline (bundled Natural Earth 110 m), gridlines labelled in degrees."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

cartopy = pytest.importorskip("cartopy")
pytest.importorskip("matplotlib")
from cartopy.mpl.feature_artist import FeatureArtist  # noqa: E402

from xnowcast.datasets import synthetic_radar  # noqa: E402
from xnowcast.plotting import natural_earth, plot_forecast  # noqa: E402
from xnowcast.plotting.draw import degree_label  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """No Natural Earth shapefiles anywhere, and no downloads."""
    empty = tmp_path_factory.mktemp("no_natural_earth")
    monkeypatch.setitem(cartopy.config, "pre_existing_data_dir", empty)
    monkeypatch.setitem(cartopy.config, "data_dir", empty)
    monkeypatch.delenv(natural_earth.ENV_VAR, raising=False)
    monkeypatch.setitem(natural_earth._state, "dir", None)
    monkeypatch.setitem(natural_earth._state, "warned", False)

    def no_download(*args, **kwargs):
        raise AssertionError("cartopy tried to download Natural Earth data")

    monkeypatch.setattr(cartopy.io.Downloader, "acquire_resource", no_download)


@pytest.fixture(scope="module")
def fc():
    cube = synthetic_radar(n_times=8, size=32, seed=1)  # around 52 N, 5 E: the Dutch coast
    return cube.nowcast.forecast(model="persistence", model_params={"n_in": 2, "n_out": 2})


def test_the_bundled_set_is_small_and_in_place():
    assert natural_earth.BUNDLED.stat().st_size < 400 * 1024
    coast, borders = (
        natural_earth.bundled_lines("coastline"),
        natural_earth.bundled_lines("borders"),
    )
    assert len(coast) > 100 and len(borders) > 100
    points = np.concatenate(coast)
    assert points[:, 0].min() >= -180 and points[:, 0].max() <= 180
    assert points[:, 1].min() >= -90 and points[:, 1].max() <= 90
    # the Dutch coast near 52.0 N runs near 4.2 E; the German-Dutch border near 6-7 E
    near = points[(abs(points[:, 1] - 52.0) < 0.6) & (abs(points[:, 0] - 4.5) < 1.0)]
    assert len(near) > 0
    border = np.concatenate(borders)
    assert ((abs(border[:, 1] - 52.0) < 0.8) & (abs(border[:, 0] - 6.8) < 0.6)).any()
    # derived by a kept script, and installed as package data
    assert (ROOT / "tools" / "derive_natural_earth.py").exists()
    assert '"data/*.npz"' in (ROOT / "pyproject.toml").read_text()


def test_an_offline_map_has_coastlines_and_borders_without_a_warning(fc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_forecast(fc, leads=[1])
    features = [a for a in fig.axes[0].get_children() if isinstance(a, FeatureArtist)]
    assert len(features) == 2  # coastline and borders


def test_features_without_a_bundled_copy_still_warn_once(fc):
    with pytest.warns(UserWarning, match="lakes"):
        fig = plot_forecast(fc, leads=[1], features=["coastline", "lakes"])
    assert any(isinstance(a, FeatureArtist) for a in fig.axes[0].get_children())


def test_gridlines_are_labelled_in_degrees(fc):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig = plot_forecast(fc, leads=[1])
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.endswith("°E") for t in labels) and any(t.endswith("°N") for t in labels)
    lat = float(fc.lat.mean())
    assert any(abs(float(t[:-2]) - lat) < 0.3 for t in labels if t.endswith("°N"))
    assert "UTC" in fig.axes[0].get_title() and "UTC" in fig.get_suptitle()
    assert degree_label(-0.5, False) == "0.5°S" and degree_label(180, True) == "180°E"
