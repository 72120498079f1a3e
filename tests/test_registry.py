"""The model registry: lookup, errors listing names, registration, entry points."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest

import xnowcast
from xnowcast.models import (
    NowcastModel,
    get_model,
    interface,
    list_models,
    register_model,
    run_model,
)


def test_list_and_get_case_insensitive():
    assert "persistence" in xnowcast.list_models()
    model = get_model("  PERSISTENCE ", n_out=3)
    assert model.n_out == 3 and model.name == "persistence"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'nope'; valid names are: .*persistence"):
        get_model("nope")


def test_instance_passthrough_and_params_conflict():
    model = get_model("persistence")
    assert get_model(model) is model
    with pytest.raises(TypeError, match="set the parameters when creating"):
        get_model(model, n_out=2)


def test_wrong_type():
    with pytest.raises(TypeError, match="registered name"):
        get_model(3.14)


def test_register_in_code(cube):
    class Doubling(NowcastModel):
        name = "test-doubling"

        def predict(self, inputs):
            return np.repeat(2 * inputs[:, -1:], self.n_out, axis=1)

    register_model("test-doubling", Doubling, overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        register_model("test-doubling", lambda **kw: None)
    fc = cube.nowcast.forecast(model="test-doubling", model_params={"n_out": 2})
    np.testing.assert_allclose(fc.isel(lead_time=1).values, 2 * cube.isel(time=-1).values)
    assert fc.attrs["xnowcast_model"] == "test-doubling"


def test_entry_point_group(monkeypatch):
    ep = EntryPoint(
        name="ep-persistence",
        value="xnowcast.models.persistence:Persistence",
        group=interface.ENTRY_POINT_GROUP,
    )
    monkeypatch.setattr(interface, "entry_points", lambda group: [ep])
    monkeypatch.setattr(interface, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setattr(interface, "_REGISTRY", dict(interface._BUILTIN_MODELS))
    assert "ep-persistence" in list_models()
    assert type(get_model("ep-persistence")).__name__ == "Persistence"


def test_run_model_checks_input_shape():
    with pytest.raises(ValueError, match="expects inputs of shape"):
        run_model(get_model("persistence", n_in=3), np.zeros((1, 2, 4, 4)))


def test_n_in_below_model_minimum():
    class NeedsTwo(NowcastModel):
        name = "needs-two"
        min_n_in = 2

        def predict(self, inputs):  # pragma: no cover - never reached
            return inputs

    with pytest.raises(ValueError, match="needs n_in >= 2"):
        NeedsTwo(n_in=1)


def test_bad_registrations_are_clear(monkeypatch):
    monkeypatch.setattr(interface, "_REGISTRY", dict(interface._REGISTRY))
    with pytest.raises(TypeError, match="model names are strings, got int"):
        register_model(3, lambda **kw: None)
    with pytest.raises(TypeError, match="the factory must be a NowcastModel subclass"):
        register_model("test-not-callable", 5)
    with pytest.raises(TypeError, match="the factory must be"):
        register_model("test-no-colon", "just_a_module")
    register_model("test-returns-int", lambda **kw: 42)
    with pytest.raises(TypeError, match="its factory returned int, not a NowcastModel"):
        get_model("test-returns-int")
    register_model("test-broken-ref", "no_such_module_xyz:Model")
    with pytest.raises(
        ImportError, match="registered as 'no_such_module_xyz:Model', which cannot be loaded"
    ):
        get_model("test-broken-ref")
