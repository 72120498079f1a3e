"""The model array contract and the model registry.

Every nowcasting model in xnowcast, from persistence to optical flow to the
PyTorch networks, is a :class:`NowcastModel`. The xarray layer
(:func:`xnowcast.forecast`) cuts the cube into windows and hands the model
plain arrays; the model never sees xarray.

Array contract
--------------
``model.predict(inputs)``

* ``inputs``: ``float32`` array of shape ``(batch, n_in, y, x)``, the ``n_in``
  most recent frames of each window in time order (the last one is the frame
  at the init time). ``NaN`` marks missing data (outside radar range, blocked
  beams); it is normal data, not an error.
* returns: ``float32`` array of shape ``(batch, n_out, y, x)``, lead times
  ``1 .. n_out`` steps after the last input frame, in the physical units of the
  input. ``NaN`` where the model can say nothing (for example pixels advected in
  from outside the domain). A model must not modify ``inputs``.

Ensembles
---------
An ensemble model (e.g. ``"steps"``) sets :attr:`NowcastModel.members` to its
ensemble size (``None`` for a deterministic model) and takes a second
argument, ``predict(inputs, members=None)``: the indices of the members to
compute (default all). It returns ``(batch, len(members), n_out, y, x)``.
Member ``m`` must be the same whichever other members are computed with it
(one random stream per member, derived from the model's ``seed``), so that an
ensemble can be computed in chunks of members, in parallel, and is the same
under any chunking. ``members`` and ``seed`` are what the model *is*
(:meth:`NowcastModel.get_params`); the xarray layer labels the ensemble
dimension ``member`` (``standard_name=realization``).

What a model *is* (:meth:`NowcastModel.get_params`) is kept apart from how it
*runs* (:class:`~xnowcast.models.settings.RunSettings`: device, batch size,
precision, tiling, threads), which :meth:`NowcastModel.with_settings` applies
to a copy.

Models are looked up by name with :func:`get_model`; third-party packages add
models through the ``xnowcast.models`` entry-point group::

    [project.entry-points."xnowcast.models"]
    my-model = "my_package.models:MyModel"
"""

from __future__ import annotations

import abc
import copy
import importlib
import json
import os
import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from os import PathLike
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

import numpy as np

from xnowcast.checks import check_signature, positive_int
from xnowcast.models.settings import RunSettings, threads_limited
from xnowcast.optional import MissingOptionalDependency

if TYPE_CHECKING:
    import torch

__all__ = [
    "ENTRY_POINT_GROUP",
    "NowcastModel",
    "get_model",
    "list_models",
    "register_model",
    "run_model",
]

ENTRY_POINT_GROUP = "xnowcast.models"

#: Models shipped with xnowcast, as lazy ``"module:attribute"`` references so
#: that ``import xnowcast`` does not import OpenCV or PyTorch.
_BUILTIN_MODELS: dict[str, str] = {
    "persistence": "xnowcast.models.persistence:Persistence",
    "optical-flow": "xnowcast.models.optical_flow:OpticalFlow",
    "steps": "xnowcast.models.steps:Steps",
    "conv3d": "xnowcast.models.neural.conv3d:build",
    "convlstm": "xnowcast.models.neural.convlstm:build",
    "conv-ed-lstm": "xnowcast.models.neural.conv_ed_lstm:build",
    "unet": "xnowcast.models.neural.unet:build",
    "advection-unet": "xnowcast.models.neural.advection:build",
}

#: Loaders of model files by suffix, as lazy ``"module:attribute"`` references.
_LOADERS: dict[tuple[str, ...], str] = {
    (".pt", ".pth", ".ckpt"): "xnowcast.models.neural.checkpoint:load_model",
}

_REGISTRY: dict[str, Callable[..., NowcastModel] | str] = dict(_BUILTIN_MODELS)
_ENTRY_POINTS_LOADED = False


class NowcastModel(abc.ABC):
    """Base class of all nowcasting models (see the module docstring).

    Parameters
    ----------
    n_in : int
        Number of input frames the model reads per forecast.
    n_out : int
        Number of lead times the model produces.

    Notes
    -----
    Subclasses set :attr:`name`, implement :meth:`predict` and, when they take
    parameters of their own, extend :meth:`get_params` so that the parameters
    are recorded in the attributes of every forecast. Run settings (device,
    batch size, ...) are not parameters: :meth:`predict` reads them from
    :attr:`settings`.
    """

    #: Registry name, written into forecast attributes.
    name: str = ""
    #: Smallest ``n_in`` the model can work with.
    min_n_in: ClassVar[int] = 1
    #: How the model runs; change it on a copy with :meth:`with_settings`.
    settings: RunSettings = RunSettings()
    #: Ensemble size of an ensemble model (see the module docstring); ``None``: deterministic.
    members: int | None = None

    def __init__(self, *, n_in: int = 12, n_out: int = 24) -> None:
        self.n_in = positive_int(n_in, "n_in")
        self.n_out = positive_int(n_out, "n_out")
        if self.n_in < self.min_n_in:
            raise ValueError(
                f"model {self.name!r} needs n_in >= {self.min_n_in} input frames, got n_in={n_in}"
            )

    def get_params(self) -> dict[str, Any]:
        """Parameters that reproduce this model (JSON-serialisable)."""
        return {"n_in": self.n_in, "n_out": self.n_out}

    def with_settings(self, settings: RunSettings | None = None, **changes: Any) -> NowcastModel:
        """A copy of this model that runs with other run settings; the model is unchanged.

        Parameters
        ----------
        settings : RunSettings, optional
            Settings to start from (default: this model's).
        **changes
            Run settings to change: ``device``, ``batch_size``, ``precision``,
            ``tile``, ``tile_overlap``, ``threads``.

        Examples
        --------
        >>> from xnowcast.models import get_model
        >>> model = get_model("persistence")
        >>> model.with_settings(threads=1).settings.threads, model.settings.threads
        (1, None)
        """
        base = self.settings if settings is None else settings
        if not isinstance(base, RunSettings):
            raise TypeError(f"settings must be a RunSettings, got {type(base).__name__}")
        new = copy.copy(self)
        new.settings = base.replace(**changes) if changes else base
        return new

    @abc.abstractmethod
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Forecast ``(batch, n_out, y, x)`` from ``(batch, n_in, y, x)`` inputs."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def __dask_tokenize__(self) -> tuple[str, str, str]:
        """Deterministic dask token: the class, its parameters and its run settings.

        Models whose output depends on more than :meth:`get_params` (trained
        weights) must override this.
        """
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            json.dumps(self.get_params(), sort_keys=True, default=str),
            repr(self.settings),
        )


def run_model(model: NowcastModel, inputs: np.ndarray, members: Any = None) -> np.ndarray:
    """Call ``model.predict`` and enforce the array contract on both sides.

    Parameters
    ----------
    model : NowcastModel
        The model to run.
    inputs : numpy.ndarray
        ``(batch, n_in, y, x)`` frames; converted to ``float32``.
    members : sequence of int, optional
        Ensemble models only: the members to compute (default all).

    Returns
    -------
    numpy.ndarray
        ``(batch, n_out, y, x)`` ``float32`` forecast; ``(batch, member, n_out,
        y, x)`` for an ensemble model.

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast.models import get_model, run_model
    >>> model = get_model("persistence", n_in=2, n_out=3)
    >>> run_model(model, np.ones((1, 2, 4, 5))).shape
    (1, 3, 4, 5)
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    if inputs.ndim != 4 or inputs.shape[1] != model.n_in:
        raise ValueError(
            f"model {model.name!r} expects inputs of shape (batch, n_in={model.n_in}, y, x), "
            f"got {inputs.shape}"
        )
    expected: tuple[int, ...] = (inputs.shape[0], model.n_out, *inputs.shape[2:])
    if model.members is None:
        if members is not None:
            raise TypeError(
                f"model {model.name!r} is deterministic; members= is for ensemble models"
            )
        with threads_limited(model.settings.threads):
            out = np.asarray(model.predict(inputs))
    else:
        count = model.members if members is None else len(np.atleast_1d(members))
        expected = (inputs.shape[0], count, *expected[1:])
        with threads_limited(model.settings.threads):
            out = np.asarray(model.predict(inputs, members=members))  # type: ignore[call-arg]
    if out.shape != expected:
        raise RuntimeError(
            f"model {model.name!r} broke the array contract: returned shape {out.shape}, "
            f"expected {expected}"
        )
    out = out.astype(np.float32, copy=False)
    _check_finite(model, inputs, out)
    return out


def _check_finite(model: NowcastModel, inputs: np.ndarray, out: np.ndarray) -> None:
    """Flag a forecast with no finite value from inputs with some, and infinite values."""
    finite = np.isfinite(out)
    if finite.all():
        return
    if not finite.any() and np.isfinite(inputs).any():
        raise RuntimeError(
            f"model {model.name!r} broke the array contract: it returned no finite value "
            f"({'NaN' if np.isnan(out).all() else 'NaN/Inf'} everywhere) for inputs that "
            "hold data; a model returns the forecast in the input's units, NaN only where it "
            "can say nothing"
        )
    n_inf = int(np.isinf(out).sum()) if np.isinf(out).any() else 0
    if n_inf:
        warnings.warn(
            f"model {model.name!r} returned {n_inf} infinite value(s) (of {out.size}); the "
            "array contract asks for finite values or NaN: check the model",
            RuntimeWarning,
            stacklevel=3,
        )


def register_model(
    name: str,
    factory: Callable[..., NowcastModel] | str | None = None,
    *,
    overwrite: bool = False,
):
    """Register a model factory under ``name`` (case-insensitive).

    Usable as a function or as a class decorator.

    Parameters
    ----------
    name : str
        Registry name.
    factory : callable or str, optional
        A :class:`NowcastModel` subclass (or any callable returning one), or a
        lazy ``"module:attribute"`` reference.
    overwrite : bool
        Replace an existing registration instead of raising.

    Examples
    --------
    >>> from xnowcast.models import NowcastModel, register_model
    >>> @register_model("last-frame-doubled", overwrite=True)
    ... class Doubled(NowcastModel):
    ...     name = "last-frame-doubled"
    ...     def predict(self, inputs):
    ...         return np.repeat(2 * inputs[:, -1:], self.n_out, axis=1)
    """
    key = _normalise(name)

    def _register(obj):
        if (isinstance(obj, str) and ":" not in obj) or (
            not isinstance(obj, str) and not callable(obj)
        ):
            raise TypeError(
                f"model {key!r}: the factory must be a NowcastModel subclass, a callable "
                f"returning one, or a 'module:attribute' reference, got {obj!r}"
            )
        if key in _registry() and not overwrite and _REGISTRY[key] is not obj:
            raise ValueError(
                f"a model named {key!r} is already registered; pass overwrite=True to replace it"
            )
        _REGISTRY[key] = obj
        return obj

    if factory is None:
        return _register
    return _register(factory)


def list_models() -> list[str]:
    """Names of all registered models, sorted.

    Examples
    --------
    >>> import xnowcast
    >>> "persistence" in xnowcast.list_models()
    True
    """
    return sorted(_registry())


def get_model(model: str | PathLike | NowcastModel | Any, **params: Any) -> NowcastModel:
    """Return a model instance.

    Parameters
    ----------
    model : str, path, NowcastModel or torch.nn.Module
        A registry name (case-insensitive), a checkpoint path (``.pt``) written
        by :class:`xnowcast.Trainer`, a model instance (returned as is), or a
        ``torch.nn.Module`` following the array contract.
    **params
        Passed to the model's constructor (or checkpoint loader): what the
        model *is*. How it runs is set with :meth:`NowcastModel.with_settings`
        or the run settings of :func:`xnowcast.forecast`.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.

    Examples
    --------
    >>> from xnowcast.models import get_model
    >>> get_model("Persistence", n_out=6)
    Persistence(n_in=12, n_out=6)
    """
    misplaced = sorted(set(params) & set(RunSettings.names()))
    if misplaced:
        raise TypeError(
            f"{', '.join(misplaced)}: run settings, not model parameters; pass them to "
            f"xnowcast.forecast(..., {misplaced[0]}=...) or model.with_settings({misplaced[0]}=...)"
        )
    if isinstance(model, NowcastModel):
        if params:
            raise TypeError(
                f"got a model instance and parameters {sorted(params)}; set the parameters "
                "when creating the instance, or pass the model by name"
            )
        return model
    if _is_torch_module(model):
        from xnowcast.models.neural import TorchModel

        return TorchModel(model, **params)
    loader = _loader(model)
    if loader is not None:
        return _resolve(loader, f"model files {os.fspath(model)!r}")(model, **params)
    if not isinstance(model, str):
        raise TypeError(
            f"model must be a registered name, a checkpoint path or a NowcastModel, got "
            f"{type(model).__name__}"
        )
    key = _normalise(model)
    registry = _registry()
    if key not in registry:
        raise ValueError(f"unknown model {model!r}; valid names are: {', '.join(sorted(registry))}")
    factory = registry[key]
    if isinstance(factory, str):
        factory = _resolve(factory, f"model {key!r}")
    check_signature(factory, params, f"model {key!r}")
    built = factory(**params)
    if not isinstance(built, NowcastModel):
        raise TypeError(
            f"model {key!r}: its factory returned {type(built).__name__}, not a NowcastModel; "
            "register a NowcastModel subclass or a function returning an instance of one"
        )
    return built


def _normalise(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"model names are strings, got {type(name).__name__} {name!r}")
    return name.strip().lower().replace("_", "-")


def _loader(model: Any) -> str | None:
    """The loader reference for a model file path, ``None`` for anything else."""
    if not isinstance(model, (str, PathLike)):
        return None
    name = os.fspath(model)
    for suffixes, ref in _LOADERS.items():
        if str(name).endswith(suffixes):
            return ref
    if isinstance(model, PathLike):
        known = ", ".join(s for suffixes in _LOADERS for s in suffixes)
        raise ValueError(f"cannot load a model from {name!r}: model files end in {known}")
    return None


def _resolve(ref: str, what: str) -> Callable[..., Any]:
    """Import a lazy ``"module:attribute"`` reference."""
    module_name, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except MissingOptionalDependency:
        raise  # names the extra to install
    except (ImportError, AttributeError) as err:
        raise ImportError(
            f"{what} is registered as {ref!r}, which cannot be loaded "
            f"({type(err).__name__}: {err}); install or fix the package that provides it"
        ) from None


def _is_torch_module(obj: Any) -> TypeGuard[torch.nn.Module]:
    """Whether ``obj`` is a ``torch.nn.Module``, without importing torch."""
    return any(cls.__module__ == "torch.nn.modules.module" for cls in type(obj).__mro__)


def _registry() -> dict[str, Callable[..., NowcastModel] | str]:
    global _ENTRY_POINTS_LOADED
    if not _ENTRY_POINTS_LOADED:
        _ENTRY_POINTS_LOADED = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            _REGISTRY.setdefault(_normalise(ep.name), ep.value)
    return _REGISTRY
