"""Downscale cubes and forecasts: a trained network (checkpoint) or an interpolation baseline."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.checks import boolean, positive_int
from xnowcast.conventions import as_dataarray
from xnowcast.downscale.grid import label_fine, spatial_dims
from xnowcast.downscale.interpolation import BASELINES, interpolate

__all__ = ["SYMMETRIES", "Downscaler", "downscale", "load_downscaler"]

#: The eight symmetries of the square (the dihedral group D4) that self-ensembling
#: averages over: ``(quarter turns, flip)``, a flip of ``x`` first, then ``k``
#: counter-clockwise quarter turns of ``(y, x)``. The first is the identity.
SYMMETRIES: tuple[tuple[int, bool], ...] = tuple(
    (k, flip) for flip in (False, True) for k in range(4)
)


class Downscaler:
    """A trained downscaling network, ready to apply (see :func:`load_downscaler`).

    Attributes
    ----------
    name : str
        Architecture name (``"resnet-spc"``, ...), or the module's class name.
    scale, n_in : int
        Scale factor and coarse frames per output frame.
    transform : Transform
        Intensity transform the network works in.
    static : numpy.ndarray or None
        Normalised static predictors on the recorded fine grid.
    static_names : list of str
    static_norm : dict
        ``{name: [mean, std]}`` used to normalise new static fields.
    grids : dict
        Recorded ``{"fine": ..., "coarse": ...}`` grids of the training data.
    """

    def __init__(
        self,
        net: Any,
        *,
        name: str,
        scale: int,
        n_in: int,
        transform: Any,
        static_names: list[str] | None = None,
        static_norm: dict[str, list[float]] | None = None,
        grids: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        from xnowcast.transforms import get_transform

        self.net = net.cpu().eval()
        self.name, self.scale, self.n_in = name, int(scale), int(n_in)
        self.transform = get_transform(transform)
        self.static_names = list(static_names or [])
        self.static_norm = dict(static_norm or {})
        buffer = getattr(net, "static_fields", None)
        self.static = None if buffer is None else buffer.detach().cpu().numpy()
        self.grids = dict(grids or {})
        self.params = dict(params or {})
        self.source = source

    def get_params(self) -> dict[str, Any]:
        """What the network is: name, scale, n_in, transform, parameters, static names."""
        return {
            "model": self.name,
            "scale": self.scale,
            "n_in": self.n_in,
            "transform": self.transform.to_dict(),
            "model_params": self.params,
            "static": self.static_names,
            **({"checkpoint": self.source} if self.source else {}),
        }

    def predict(
        self,
        frames: np.ndarray,
        static: np.ndarray | None = None,
        *,
        batch_size: int = 8,
        device: str = "auto",
        self_ensemble: bool = False,
    ) -> np.ndarray:
        """Fine frames ``(B, H, W)`` from coarse ``(B, n_in, h, w)`` (physical units).

        ``static`` is ``(n_static, H, W)`` normalised, on the output grid.
        Missing coarse cells give missing fine cells. With ``self_ensemble``
        the network runs on the 8 flips and quarter turns of the frames and
        static fields (:data:`SYMMETRIES`), each output is turned back and the
        8 fine fields (in physical units) are averaged: 8 times the network's cost.

        Examples
        --------
        >>> import numpy as np
        >>> from xnowcast.downscale import build_network
        >>> sr = Downscaler(build_network("resnet-spc", 2, filters=4, blocks=1),
        ...                 name="resnet-spc", scale=2, n_in=1, transform="log")
        >>> frames = np.ones((3, 1, 5, 7), np.float32)
        >>> sr.predict(frames).shape, sr.predict(frames, self_ensemble=True).shape
        ((3, 10, 14), (3, 10, 14))
        """
        import torch

        from xnowcast.models.neural.adapter import resolve_device

        x = np.asarray(frames, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.n_in:
            raise ValueError(f"expected frames (batch, n_in={self.n_in}, y, x), got {x.shape}")
        turns = SYMMETRIES if boolean(self_ensemble, "self_ensemble") else SYMMETRIES[:1]
        dev = resolve_device(device)
        net = self.net.to(dev)
        fill = float(np.asarray(self.transform.forward(np.zeros(1, np.float32)))[0])
        xt = np.asarray(self.transform.forward(x), dtype=np.float32)
        xt[~np.isfinite(xt)] = fill
        st = None if static is None else torch.from_numpy(np.asarray(static, np.float32))
        outs = []
        with torch.inference_mode():
            for i in range(0, len(xt), batch_size):
                chunk = torch.from_numpy(xt[i : i + batch_size]).to(dev)
                s = None if st is None else st[None].expand(len(chunk), -1, -1, -1).to(dev)
                total = np.zeros((len(chunk), *(n * self.scale for n in x.shape[-2:])), np.float32)
                for k, flip in turns:
                    fine = net(_turn(chunk, k, flip), None if s is None else _turn(s, k, flip))
                    total += self._physical(_unturn(fine[:, 0], k, flip).float().cpu().numpy())
                outs.append(total / len(turns))
        out = np.concatenate(outs) if outs else np.zeros((0,), np.float32)
        hole = np.repeat(np.repeat(np.isnan(x[:, -1]), self.scale, -2), self.scale, -1)
        out[hole] = np.nan
        return out

    def _physical(self, out_t: np.ndarray) -> np.ndarray:
        """Network output (transformed) clipped to the transform's range, in physical units."""
        lo, hi = self.transform.output_range
        return np.asarray(self.transform.inverse(np.clip(out_t, lo, hi)), dtype=np.float32)


def _turn(t: Any, k: int, flip: bool) -> Any:
    """Tensor ``t`` with its last two axes (y, x) flipped along x if ``flip``, then turned ``k`` times."""
    t = t.flip(-1) if flip else t
    return t.rot90(k, (-2, -1)) if k else t


def _unturn(t: Any, k: int, flip: bool) -> Any:
    """The inverse of :func:`_turn`."""
    t = t.rot90(-k, (-2, -1)) if k else t
    return t.flip(-1) if flip else t


def load_downscaler(path: str | os.PathLike) -> Downscaler:
    """Load a downscaling checkpoint written by ``Trainer(task="downscale").save``.

    Read safely (``weights_only``, SHA-256 check) by
    :func:`xnowcast.models.neural.checkpoint.read_checkpoint`.

    Examples
    --------
    >>> load_downscaler("sr.pt").scale  # doctest: +SKIP
    4
    """
    import torch

    from xnowcast.downscale.networks import build_network
    from xnowcast.models.neural.checkpoint import read_checkpoint

    ck = read_checkpoint(path)
    meta = ck["metadata"]
    if meta.get("task") != "downscale":
        raise ValueError(
            f"{path} is a nowcasting checkpoint, not a downscaling one; forecast with it "
            "(cube.nowcast.forecast(model=...)) or train a downscaler with "
            "xnowcast.Trainer(task='downscale')"
        )
    arch = meta.get("architecture")
    if not arch:
        raise ValueError(
            f"{path} holds the weights of {meta.get('module_class')}, not a registered "
            "architecture; checkpoints store no code, so load it yourself"
        )
    static = meta.get("static") or {}
    net = build_network(
        arch,
        meta["scale"],
        n_in=meta["n_in"],
        n_static=len(static.get("names", [])),
        transform=meta.get("transform"),
        **meta.get("model_params", {}),
    )
    if static.get("shape"):
        net.attach_static(torch.zeros(static["shape"]))
    try:
        net.load_state_dict(ck["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"the weights in {path} do not fit {arch!r} ({first})") from None
    return Downscaler(
        net,
        name=arch,
        scale=meta["scale"],
        n_in=meta["n_in"],
        transform=meta.get("transform"),
        static_names=static.get("names"),
        static_norm=static.get("norm"),
        grids=meta.get("grids"),
        params=meta.get("model_params"),
        source=str(path),
    )


def _resolve_model(model: Any, scale: int | None) -> tuple[Any, int]:
    if isinstance(model, str) and model.lower() in BASELINES:
        if scale is None:
            raise ValueError(f"model={model!r} needs scale= (fine cells per coarse cell)")
        return model.lower(), positive_int(scale, "scale")
    if isinstance(model, (str, os.PathLike)):
        if not os.path.isfile(model):
            raise ValueError(
                f"model={str(model)!r} is neither a baseline ({', '.join(BASELINES)}) nor a "
                "checkpoint file"
            )
        model = load_downscaler(model)
    if not isinstance(model, Downscaler):
        raise TypeError(
            "model must be a baseline name, a checkpoint path, a Downscaler or "
            f"trainer.model, got {type(model).__name__}"
        )
    if scale is not None and positive_int(scale, "scale") != model.scale:
        raise ValueError(
            f"scale={scale} was asked for, but the network downscales by {model.scale}"
        )
    return model, model.scale


def _recorded_grid(model: Any, coarse: xr.DataArray) -> dict[str, Any] | None:
    """The recorded fine grid, when ``coarse`` lies on the recorded coarse grid."""
    grids = getattr(model, "grids", None) or {}
    rec = grids.get("coarse")
    if not rec or "fine" not in grids:
        return None
    y, x = spatial_dims(coarse)
    for key, dim in (("y", y), ("x", x)):
        if dim not in coarse.coords or coarse.sizes[dim] != len(rec[key]):
            return None
        if not np.allclose(coarse[dim].values.astype("float64"), rec[key], rtol=0, atol=1e-6):
            return None
    return grids["fine"]


def _frames(values: np.ndarray, n_in: int) -> np.ndarray:
    """``(N, n_in, h, w)`` windows over the axis before y/x (the first frames repeated)."""
    lead = values.reshape(-1, *values.shape[-3:]) if values.ndim >= 3 else values[None, None]
    if n_in == 1:
        return values.reshape(-1, 1, *values.shape[-2:])
    wins = []
    for series in lead:
        padded = np.concatenate([np.repeat(series[:1], n_in - 1, axis=0), series])
        idx = np.arange(series.shape[0])[:, None] + np.arange(n_in)
        wins.append(padded[idx])
    return np.concatenate(wins)


def _static_input(model: Any, static: Any, fine: xr.DataArray, recorded: bool) -> np.ndarray | None:
    if not model.static_names:
        return None
    from xnowcast.downscale.training import regrid_static

    if static is None:
        if recorded and model.static is not None:
            return model.static
        raise ValueError(
            f"this network uses static predictors {model.static_names} and the cube is not on "
            "the grid it was trained on; pass static={name: field} (regridded to the fine grid)"
        )
    missing = [n for n in model.static_names if n not in static]
    if missing:
        raise ValueError(f"static= lacks {missing}; the network uses {model.static_names}")
    fields = [regrid_static(static[n], fine, n) for n in model.static_names]
    norm = np.array([model.static_norm[n] for n in model.static_names], np.float32)
    out = (np.stack(fields) - norm[:, :1, None]) / norm[:, 1:, None]
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def _lazily(run: Any, da: xr.DataArray, factor: int) -> Any:
    """``run`` mapped over the dask chunks of ``da`` (whole y/x per chunk): fine values, lazily."""
    data = da.data.rechunk({da.ndim - 2: -1, da.ndim - 1: -1})
    fine = (da.shape[-2] * factor, da.shape[-1] * factor)
    return data.map_blocks(
        run, chunks=(*data.chunks[:-2], (fine[0],), (fine[1],)), dtype=np.float32
    )


def downscale(
    cube: xr.DataArray | xr.Dataset,
    model: Any = "bicubic",
    scale: int | None = None,
    *,
    static: dict[str, Any] | None = None,
    var: str | None = None,
    batch_size: int = 8,
    device: str = "auto",
    self_ensemble: bool = False,
) -> xr.DataArray:
    """Bring a coarse cube or forecast onto a grid ``scale`` times finer.

    Parameters
    ----------
    cube : DataArray or Dataset
        Coarse fields: a cube ``(time, y, x)``, a forecast ``([init_time,]
        lead_time, y, x)`` or one field ``(y, x)``.
    model : str, path or Downscaler
        ``"nearest"``, ``"bilinear"``, ``"bicubic"`` (need ``scale``), a
        checkpoint written by ``Trainer(task="downscale").save``, a
        :class:`Downscaler` or ``trainer.model``.
    scale : int, optional
        Fine cells per coarse cell; a network's own scale when omitted (given,
        it must equal it).
    static : dict, optional
        Static predictors ``{name: field}`` of a network trained with them, on
        (or regridded to) the fine grid; not needed on the grid it was trained on.
    var : str, optional
        Variable of a Dataset.
    batch_size : int
        Frames per network call.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    self_ensemble : bool
        Geometric self-ensembling (as EDSR+ and RCAN+): the network runs on
        the 8 flips and quarter turns of each coarse frame (and of the static
        predictors), every output is turned back onto the grid and the 8 fine
        fields are averaged in physical units, at 8 times the network's cost.
        Recorded in ``downscaling_params``. Networks only: the interpolation
        baselines are exactly symmetric, so it is refused for them.

    Returns
    -------
    xarray.DataArray
        The fine fields, lazily (one dask chunk per chunk of ``cube``, whole
        grids) when ``cube`` is dask-backed and every frame is downscaled on
        its own (baselines and spatial networks; recurrent networks, which
        read the frames before each one, compute at once), with the dims, non-spatial
        coordinates (``time`` or ``init_time``/``lead_time``/``valid_time``),
        name and attributes of ``cube``, plus ``downscaling_model``,
        ``downscaling_scale`` and ``downscaling_params``. ``y``/``x`` are the
        fine grid: the one the network was trained on when ``cube`` lies on
        its coarse grid (so sizes that were not a multiple of the scale come
        back exactly), else ``scale`` fine cells per coarse cell centred in
        it. Lat/lon come from the grid mapping (kept), else are
        interpolated. Recurrent networks (``n_in > 1``) take the frames
        before each one along the axis before y/x, repeating the first.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> from xnowcast.downscale import coarsened
    >>> low, high = coarsened(synthetic_radar(n_times=2, size=32), 4)
    >>> fine = downscale(low, "bicubic", 4)
    >>> fine.shape, bool((fine.x.values == high.x.values).all())
    ((2, 32, 32), True)
    >>> downscale(low, "bicubic", 4, self_ensemble=True)
    Traceback (most recent call last):
    ...
    ValueError: self_ensemble=True would change nothing for model='bicubic': interpolation baselines give the same field for every flip and quarter turn of the grid; drop self_ensemble, or use a trained network
    """
    da = as_dataarray(cube, var)
    method, factor = _resolve_model(model, scale)
    ensemble = boolean(self_ensemble, "self_ensemble")
    if ensemble and isinstance(method, str):
        raise ValueError(
            f"self_ensemble=True would change nothing for model={method!r}: interpolation "
            "baselines give the same field for every flip and quarter turn of the grid; "
            "drop self_ensemble, or use a trained network"
        )
    y, x = spatial_dims(da)
    order = [d for d in da.dims if d not in (y, x)] + [y, x]
    da = da.transpose(*order)
    recorded = None if isinstance(method, str) else _recorded_grid(method, da)
    if isinstance(method, str):
        params: dict[str, Any] = {"model": method, "scale": factor}

        def run(values: np.ndarray) -> np.ndarray:
            return interpolate(np.asarray(values, np.float32), factor, method)
    else:
        shape = (da.sizes[y] * factor, da.sizes[x] * factor)
        if recorded is not None:
            shape = (min(shape[0], len(recorded["y"])), min(shape[1], len(recorded["x"])))
        out_like = label_fine(
            np.zeros(shape, np.float32),
            da.isel(dict.fromkeys(order[:-2], 0), drop=True),
            factor,
            fine_grid=recorded,
        )
        st = _static_input(method, static, out_like, recorded is not None)
        if st is not None:  # the network's grid may be larger (a fine grid cut to the scale)
            full = (da.sizes[y] * factor, da.sizes[x] * factor)
            pad = [(0, 0), (0, full[0] - st.shape[1]), (0, full[1] - st.shape[2])]
            st = np.pad(st[:, : full[0], : full[1]], pad, mode="edge")
        params = method.get_params() | ({"self_ensemble": True} if ensemble else {})

        def run(values: np.ndarray) -> np.ndarray:
            values = np.asarray(values, np.float32)
            frames = _frames(values, method.n_in)
            fine = method.predict(
                frames, st, batch_size=batch_size, device=device, self_ensemble=ensemble
            )
            return fine.reshape(*values.shape[:-2], *fine.shape[-2:])

    n_in = 1 if isinstance(method, str) else method.n_in
    fine = _lazily(run, da, factor) if da.chunks and n_in == 1 else run(da.values)
    if recorded is not None:
        fine = fine[..., : len(recorded["y"]), : len(recorded["x"])]
    attrs = {
        "downscaling_model": str(params["model"]),
        "downscaling_scale": factor,
        "downscaling_params": json.dumps(params, sort_keys=True, default=str),
    }
    return label_fine(fine, da, factor, fine_grid=recorded, attrs=attrs)
