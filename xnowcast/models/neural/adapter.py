"""Run a PyTorch network as an xnowcast model (the model array contract).

:class:`TorchModel` wraps any ``torch.nn.Module`` that maps ``(batch, n_in,
H, W)`` frames in *transformed* space to ``(batch, n_out, H, W)`` frames and
makes it a :class:`~xnowcast.models.NowcastModel`: it applies the intensity
transform and its inverse, fills missing data, pads the grid to what the
network needs and, following its run settings (:attr:`~TorchModel.settings`:
device, batch size, precision, tiles), cuts large grids into overlapping
tiles, batches, picks the device and runs under :func:`torch.inference_mode`.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
import warnings
from collections import OrderedDict
from typing import Any, TypeGuard

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xnowcast.checks import choice
from xnowcast.models.interface import NowcastModel
from xnowcast.models.settings import PRECISIONS
from xnowcast.transforms import Transform, get_transform

__all__ = ["ADAPTER_PARAMS", "TorchModel", "build_registered", "resolve_device"]

#: Parameters of :class:`TorchModel` (as opposed to parameters of the network);
#: registry factories split a flat ``**params`` along these.
ADAPTER_PARAMS = ("n_in", "n_out", "transform", "clip")

#: Defaults of the run settings a network uses when they are ``None``.
DEFAULT_BATCH_SIZE = 8
DEFAULT_TILE_OVERLAP = 32

#: Per-process inference copies of networks, keyed by (model token, device, weight
#: versions): a dask worker that unpickles the same model for many tasks moves it to
#: its device once.
_DEVICE_CACHE: OrderedDict[tuple, nn.Module] = OrderedDict()
_DEVICE_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``device``: ``"auto"`` is CUDA, else Apple MPS, else CPU.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r} ({err})"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but this PyTorch ({torch.__version__}) sees no CUDA GPU; use "
            "device='auto' or 'cpu', or install a CUDA build of PyTorch (docs/neural.md, 'GPU')"
        )
    return dev


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``precision`` on ``device`` (``None``: plain float32)."""
    precision = choice(precision, "precision", PRECISIONS)
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return torch.bfloat16


def _is_int(value: Any) -> TypeGuard[int | np.integer]:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int_attr(module: nn.Module, name: str) -> int | None:
    value = getattr(module, name, None)
    return int(value) if _is_int(value) else None


class TorchModel(NowcastModel):
    """A ``torch.nn.Module`` behind the model array contract.

    Parameters
    ----------
    module : torch.nn.Module
        The network: ``forward(x)`` with ``x`` float ``(batch, n_in, H, W)``
        in transformed space returns ``(batch, n_out, H, W)``. Kept on the
        CPU; a copy goes to the device on the first :meth:`predict`.
    n_in, n_out : int, optional
        Frames in and out; default to the module's ``n_in``/``n_out``
        attributes (the built-in networks have them), required otherwise.
    transform : str, dict or Transform, optional
        Intensity transform the network works in (see
        :func:`xnowcast.transforms.get_transform`), e.g. ``"log"`` or
        ``{"name": "dbr", "threshold": 0.1}``. Default: ``"identity"``.
    clip : bool
        Clip the network's output to the transform's ``output_range`` (the
        physical range ``0 .. vmax``) before inverting it: no negative rain,
        and no ``expm1`` of a runaway value. On for models trained by
        xnowcast (:func:`~xnowcast.training.load_model`, ``Trainer.model``).
    trained : bool
        ``False`` for a freshly initialised network: :meth:`predict` then
        refuses to forecast.
    metadata : dict, optional
        What made the network (architecture, training, checkpoint); recorded
        in :meth:`get_params` and hence in forecast attributes.

    Notes
    -----
    Run settings (:class:`~xnowcast.models.settings.RunSettings`, applied with
    :meth:`with_settings` or by :func:`xnowcast.forecast`): ``device``
    (``"auto"``: CUDA, else MPS, else CPU), ``batch_size`` (windows or tiles
    per forward pass, default 8), ``precision`` (``"auto"``: bfloat16 autocast
    on CUDA GPUs that support it), ``tile`` (cut grids larger than ``tile``
    pixels into overlapping tiles, forecast each and blend them back with
    weights that fall off linearly over the overlap; bounds the memory of
    large grids) and ``tile_overlap`` (default 32 pixels).

    ``NaN`` inputs (outside radar coverage) are replaced by the transformed
    value of zero rain before the network sees them; the forecast is ``NaN``
    wherever the last input frame is ``NaN``.

    A ``TorchModel`` pickles with its weights on the CPU (for dask workers);
    each process makes one inference copy of the network on its device (eval
    mode) and caches it; the wrapped module is never moved or put in eval
    mode. Weights changed in place (further training) are picked up.

    Examples
    --------
    >>> import numpy as np, torch
    >>> class LastFrame(torch.nn.Module):
    ...     def forward(self, x):
    ...         return x[:, -1:].repeat(1, 3, 1, 1)
    >>> model = TorchModel(LastFrame(), n_in=2, n_out=3).with_settings(device="cpu")
    >>> frames = np.random.default_rng(0).random((1, 2, 5, 7), dtype="float32")
    >>> out = model.predict(frames)
    >>> out.shape, bool(np.allclose(out[0, 2], frames[0, 1]))
    ((1, 3, 5, 7), True)
    """

    name = "torch"

    def __init__(
        self,
        module: nn.Module,
        *,
        n_in: int | None = None,
        n_out: int | None = None,
        transform: str | dict | Transform | None = None,
        clip: bool = False,
        trained: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        n_in = self._frames(module, n_in, "n_in")
        n_out = self._frames(module, n_out, "n_out")
        super().__init__(n_in=n_in, n_out=n_out)
        self._module = module
        self.transform = get_transform(transform)
        self._fill = float(np.asarray(self.transform.forward(np.zeros(1, np.float32)))[0])
        self.clip = bool(clip)
        self.trained = bool(trained)
        self.metadata = dict(metadata or {})
        self.size_multiple = max(1, _int_attr(module, "size_multiple") or 1)
        self._warned_leads = False
        arch = getattr(module, "architecture", "") or ""
        self.name = arch or "torch"
        self._token = uuid.uuid4().hex

    @staticmethod
    def _frames(module: nn.Module, value: int | None, label: str) -> int:
        own = _int_attr(module, label)
        if value is None:
            if own is None:
                raise ValueError(
                    f"cannot tell {label} of {type(module).__name__}: pass {label}= (frames "
                    f"{'in' if label == 'n_in' else 'out'}) or give the module an {label} attribute"
                )
            return own
        if own is not None and own != value:
            raise ValueError(
                f"{label}={value} does not match the network, which was built with {label}={own}"
            )
        return value

    # ------------------------------------------------------------------ properties
    @property
    def module(self) -> nn.Module:
        """The wrapped network (on the CPU)."""
        return self._module

    @property
    def time_step(self) -> np.timedelta64 | None:
        """Time step of the data the network was trained on (``None`` when unknown).

        A network forecasts ``n_out`` steps of this length; a cube with another
        step gets lead times of its own step from a network that learned
        another one.
        """
        step = self.metadata.get("time_step")
        if not step:
            return None
        import pandas as pd

        return pd.Timedelta(step).to_timedelta64()

    def get_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            **super().get_params(),
            "architecture": self.name if self.name != "torch" else type(self._module).__name__,
        }
        get_config = getattr(self._module, "get_config", None)
        if callable(get_config):
            params["model_params"] = get_config()
        params.update(transform=self.transform.to_dict(), clip=self.clip)
        if self.metadata:
            params["metadata"] = self.metadata
        return params

    def with_settings(self, settings=None, **changes: Any) -> TorchModel:
        new = super().with_settings(settings, **changes)
        resolve_device(new.settings.device)  # refuse a missing GPU now, not at the first forecast
        return new  # type: ignore[return-value]

    def __dask_tokenize__(self):
        return (
            "xnowcast.TorchModel",
            self._token,
            json.dumps(self.get_params(), default=str),
            repr(self.settings),
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if next(self._module.parameters(), torch.empty(0)).device.type != "cpu":
            state["_module"] = copy.deepcopy(self._module).cpu()
        return state

    # ------------------------------------------------------------------ running
    def _network(self, device: torch.device) -> nn.Module:
        """An inference copy of the network on ``device`` (eval mode), cached per process.

        The wrapped module itself is never moved or switched to eval mode, so
        threads can forecast at once and the caller's module stays as it was.
        The cache key includes the parameters' in-place version counters: a
        module trained further after wrapping is copied again.
        """
        versions = tuple(t._version for t in self._module.state_dict(keep_vars=True).values())
        key = (self._token, str(device), versions)
        with _CACHE_LOCK:
            net = _DEVICE_CACHE.get(key)
            if net is not None:
                _DEVICE_CACHE.move_to_end(key)
                return net
        net = copy.deepcopy(self._module).to(device).eval()
        with _CACHE_LOCK:
            _DEVICE_CACHE[key] = net
            while len(_DEVICE_CACHE) > _DEVICE_CACHE_SIZE:
                _DEVICE_CACHE.popitem(last=False)
        return net

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Forecast ``(batch, n_out, y, x)`` rain in physical units from ``(batch, n_in, y, x)``."""
        if not self.trained:
            raise RuntimeError(
                f"the {self.name!r} network has random, untrained weights and cannot forecast. "
                f"Train it first: trainer = xnowcast.Trainer(model={self.name!r}, ...); "
                "trainer.fit(cube); trainer.save('model.pt'); then forecast with "
                "model='model.pt' (or model=xnowcast.load_model('model.pt'), or "
                "model=trainer.model)"
            )
        x = np.asarray(inputs, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.n_in:
            raise ValueError(
                f"expected inputs of shape (batch, n_in={self.n_in}, y, x), got {x.shape}"
            )
        self.warn_untrained_leads()
        missing = np.isnan(x[:, -1])
        xt = np.asarray(self.transform.forward(x), dtype=np.float32)
        xt[~np.isfinite(xt)] = self._fill
        out_t = self.predict_transformed(xt)
        if self.clip:
            lo, hi = self.transform.output_range
            np.clip(out_t, lo, hi, out=out_t)
        out = np.asarray(self.transform.inverse(out_t), dtype=np.float32)
        if missing.any():
            out[np.broadcast_to(missing[:, None], out.shape)] = np.nan
        return out

    def warn_untrained_leads(self) -> None:
        """Warn (once per model) when the network was never trained on some of its lead times.

        The checkpoint records ``leads_trained`` (a curriculum that did not
        reach ``n_out`` within the budget trains only the first lead times).
        """
        trained = self.metadata.get("leads_trained")
        if not _is_int(trained) or trained >= self.n_out or self._warned_leads:
            return
        self._warned_leads = True
        warnings.warn(
            f"the {self.name!r} network was trained on its first {trained} of {self.n_out} lead "
            f"times only: lead times {trained + 1}..{self.n_out} were never trained and are not "
            "to be trusted (train longer, or with a curriculum that reaches n_out)",
            UserWarning,
            stacklevel=3,
        )

    @property
    def receptive_field(self) -> int | None:
        """Width in pixels of the input region one output pixel depends on (``None``: unknown)."""
        return _int_attr(self._module, "receptive_field")

    def tile_overlap(self) -> int:
        """The tile overlap used: the run setting, else twice the receptive field's half-width.

        With that overlap every tile drops the pixels its borders reach (the
        half-width of the receptive field, where zero padding replaces the
        neighbouring tile's data) and blends the rest: tiled forecasts equal
        the whole-grid forecast, without seams. Networks without a known
        receptive field get :data:`DEFAULT_TILE_OVERLAP`.
        """
        if self.settings.tile_overlap is not None:
            return self.settings.tile_overlap
        field = self.receptive_field
        if field is None:
            return DEFAULT_TILE_OVERLAP
        m = self.size_multiple
        return -(-(2 * (field // 2 + 1) + m) // m) * m

    def predict_transformed(self, x: np.ndarray) -> np.ndarray:
        """Run the network on transformed, NaN-free frames (tiling, padding, batching).

        Parameters
        ----------
        x : numpy.ndarray
            ``(batch, channels, H, W)`` float32 in transformed space.

        Returns
        -------
        numpy.ndarray
            ``(batch, n_out, H, W)`` float32 in transformed space.
        """
        run = self.settings
        device = resolve_device(run.device)
        autocast = resolve_precision(run.precision, device)
        batch_size = run.batch_size or DEFAULT_BATCH_SIZE
        net = self._network(device)
        b, _, hgt, wid = x.shape
        if run.tile is None or (run.tile >= hgt and run.tile >= wid):
            out = np.empty((b, self.n_out, hgt, wid), dtype=np.float32)
            with torch.inference_mode():
                for start in range(0, b, batch_size):
                    out[start : start + batch_size] = self._forward(
                        net, x[start : start + batch_size], device, autocast
                    )
            return out
        return self._tiled(net, x, device, autocast, batch_size)

    def _tiled(
        self,
        net: nn.Module,
        x: np.ndarray,
        device: torch.device,
        autocast: torch.dtype | None,
        batch_size: int,
    ) -> np.ndarray:
        """The forecast of overlapping tiles, blended (see :meth:`tile_overlap`).

        The grid is padded (replicated edges, as a whole-grid forecast is) to
        a multiple of the network's ``size_multiple``, and tiles start on
        that multiple, so that pooling sees the same pixel blocks as on the
        whole grid.
        """
        m = self.size_multiple
        b, _, hgt, wid = x.shape
        pad_y, pad_x = (-hgt) % m, (-wid) % m
        if pad_y or pad_x:
            x = np.pad(x, ((0, 0), (0, 0), (0, pad_y), (0, pad_x)), mode="edge")
        big_y, big_x = x.shape[-2:]
        tile = -(-(self.settings.tile or m) // m) * m  # rounded up to the multiple
        overlap = self.tile_overlap()
        if overlap >= tile:
            raise ValueError(
                f"tile={self.settings.tile} must be larger than the tile overlap ({overlap} "
                f"pixels, from the network's receptive field of {self.receptive_field}); use "
                f"tile >= {overlap + 4 * m}, or tile=None for the whole grid"
            )
        halo = min(overlap // 2, (self.receptive_field or 0) // 2 + 1)
        ty, tx = min(tile, big_y), min(tile, big_x)
        ys, xs = _tile_starts(big_y, ty, overlap, m), _tile_starts(big_x, tx, overlap, m)
        tiles = [(i, y0, x0) for i in range(b) for y0 in ys for x0 in xs]
        out = np.zeros((b, self.n_out, big_y, big_x), dtype=np.float32)
        wsum = np.zeros((b, big_y, big_x), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(tiles), batch_size):
                chunk = tiles[start : start + batch_size]
                batch = np.stack([x[i, :, y0 : y0 + ty, x0 : x0 + tx] for i, y0, x0 in chunk])
                pred = self._forward(net, batch, device, autocast)
                for (i, y0, x0), p in zip(chunk, pred):
                    weight = np.outer(
                        _edge_weights(ty, overlap, halo, y0 > 0, y0 + ty < big_y),
                        _edge_weights(tx, overlap, halo, x0 > 0, x0 + tx < big_x),
                    )
                    out[i, :, y0 : y0 + ty, x0 : x0 + tx] += p * weight
                    wsum[i, y0 : y0 + ty, x0 : x0 + tx] += weight
        out /= wsum[:, None]
        return out[..., :hgt, :wid]

    def _forward(
        self, net: nn.Module, batch: np.ndarray, device: torch.device, autocast: torch.dtype | None
    ) -> np.ndarray:
        hgt, wid = batch.shape[-2:]
        m = self.size_multiple
        pad_y, pad_x = (-hgt) % m, (-wid) % m
        t = torch.from_numpy(np.ascontiguousarray(batch)).to(device, non_blocking=True)
        if pad_y or pad_x:
            t = F.pad(t, (0, pad_x, 0, pad_y), mode="replicate")
        if autocast is not None:
            with torch.autocast(device_type=device.type, dtype=autocast):
                y = net(t)
        else:
            y = net(t)
        if not isinstance(y, torch.Tensor) or y.ndim != 4:
            raise RuntimeError(
                f"{type(net).__name__}.forward must return a (batch, n_out, H, W) tensor, got "
                f"{getattr(y, 'shape', type(y).__name__)}"
            )
        expected = (t.shape[0], self.n_out, *t.shape[-2:])
        if tuple(y.shape) != expected:
            raise RuntimeError(
                f"{type(net).__name__} broke the contract: returned shape {tuple(y.shape)} for "
                f"input {tuple(t.shape)}, expected {expected}"
            )
        return y[..., :hgt, :wid].float().cpu().numpy()


def _tile_starts(size: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Starts of tiles of ``tile`` pixels covering ``size`` with at least ``overlap``.

    Starts are multiples of ``multiple`` (``size`` and ``tile`` must be too).

    Examples
    --------
    >>> _tile_starts(100, 40, 10)
    [0, 30, 60]
    """
    if tile >= size:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    starts = [*list(range(0, size - tile, step)), size - tile]
    return sorted(set(starts))


def _edge_weights(
    n: int, overlap: int, halo: int, inner_start: bool, inner_end: bool
) -> np.ndarray:
    """Blending weight along one tile axis.

    At a tile side that borders another tile (``inner_*``), the first ``halo``
    pixels get weight 0 (the network's padding reaches them) and the weight
    then rises linearly to 1 at ``overlap - halo`` pixels; at a side on the
    grid's border the weight is 1.

    Examples
    --------
    >>> [round(float(w), 2) for w in _edge_weights(8, 4, 1, True, False)]
    [0.0, 0.33, 0.67, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    i = np.arange(n, dtype=np.float32)
    ramp = np.float32(max(overlap - 2 * halo, 0) + 1)
    weight = np.ones(n, dtype=np.float32)
    if inner_start:
        weight = np.minimum(weight, np.clip((i - halo + 1) / ramp, 0, 1))
    if inner_end:
        weight = np.minimum(weight, np.clip((n - i - halo) / ramp, 0, 1))
    return weight


def build_registered(cls: type, **params: Any) -> TorchModel:
    """Registry factory body: an untrained :class:`TorchModel` around ``cls``.

    ``params`` named in :data:`ADAPTER_PARAMS` go to :class:`TorchModel`
    (``transform`` defaults to ``"log"``); all others to the network.
    """
    adapter = {k: params.pop(k) for k in ADAPTER_PARAMS if k in params}
    n_in = adapter.pop("n_in", 12)
    n_out = adapter.pop("n_out", 24)
    adapter.setdefault("transform", "log")
    try:
        module = cls(n_in=n_in, n_out=n_out, **params)
    except TypeError as err:
        import inspect

        names = [p for p in inspect.signature(cls).parameters if p not in ("n_in", "n_out")]
        raise TypeError(
            f"{err}; the network takes {', '.join(names)} and the model wrapper takes "
            f"{', '.join(ADAPTER_PARAMS)}"
        ) from None
    return TorchModel(module, trained=False, **adapter)
