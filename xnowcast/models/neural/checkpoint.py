"""Safe, self-describing checkpoints of trained networks.

A checkpoint is a file written by :func:`torch.save` holding *only* tensors and
plain data::

    {
        "format": "xnowcast-checkpoint",
        "format_version": 2,
        "metadata": "<JSON text>",        # what the network is and how it was trained
        "state_dict": {name: tensor},     # the weights
        "sha256": "<hex>",                # of the metadata and the weights
        "training_state": {...},          # optional: optimizer, scheduler, epoch (resume)
    }

The metadata names the architecture (a registry name) and its parameters, the
intensity transform and its parameters, ``n_in``/``n_out``, the time step of
the training data, the training configuration and data summary, the final
metrics and the xnowcast and PyTorch versions. No code is stored: loading
rebuilds the network from the registry and fills in the weights.

Files are read with ``torch.load(..., weights_only=True)``: a file that holds
any other Python object (a tampered or foreign file) is refused before
anything in it runs. The SHA-256 digest of the metadata and the weights is
checked on every read: a changed or damaged file is refused (files of format
version 1, written before digests, are read without that check).

This module sits below both the model registry (which loads ``.pt`` paths
through it) and :mod:`xnowcast.training` (which writes checkpoints).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "load_model",
    "read_checkpoint",
    "read_metadata",
    "save_checkpoint",
    "untrained_model",
]

FORMAT = "xnowcast-checkpoint"
FORMAT_VERSION = 2


def weights_digest(metadata_json: str, state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a checkpoint's metadata text and weights (names, dtypes, shapes, bytes).

    Examples
    --------
    >>> import torch
    >>> len(weights_digest("{}", {"w": torch.zeros(2)}))
    64
    """
    digest = hashlib.sha256(metadata_json.encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _check_plain(obj: Any, where: str = "training_state") -> None:
    """Raise unless ``obj`` is tensors and plain containers/scalars (what weights_only reads)."""
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor, torch.Size)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key of type {type(k).__name__}; use str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} holds a {type(obj).__name__}; checkpoints take only tensors, numbers, "
        "strings, lists and dicts"
    )


def save_checkpoint(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    training_state: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint (atomically: a crash never leaves a half-written file).

    Parameters
    ----------
    path : str or path
        Target file (``.pt``); parent folders are created.
    state_dict : dict
        The network's weights (moved to the CPU).
    metadata : dict
        JSON-serialisable description (see the module docstring).
    training_state : dict, optional
        Optimizer/scheduler state and counters, for resuming.
    overwrite : bool
        Replace an existing file at ``path`` (by default it is refused).

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.
    ValueError
        ``path`` is a folder.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
    >>> meta = {"n_in": 2, "n_out": 1}
    >>> _ = save_checkpoint(path, {"w": torch.zeros(2)}, meta)
    >>> save_checkpoint(path, {"w": torch.ones(2)}, meta)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: '...m.pt' exists; pass overwrite=True (--overwrite) to replace it
    >>> read_checkpoint(path)["state_dict"]["w"].tolist()
    [0.0, 0.0]
    """
    from xnowcast.io.output import atomic_output

    path = Path(path)
    try:
        meta_json = json.dumps(metadata, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {err}") from None
    weights = {}
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state_dict entry {name!r} is a {type(tensor).__name__}, not a tensor")
        weights[name] = tensor.detach().to("cpu").clone()
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metadata": meta_json,
        "state_dict": weights,
        "sha256": weights_digest(meta_json, weights),
    }
    if training_state is not None:
        _check_plain(training_state)
        payload["training_state"] = training_state
    if path.is_dir():
        raise ValueError(f"checkpoint path {str(path)!r} is a folder; give a file such as model.pt")
    # A fresh name next to the target (not mkstemp, whose files are private, mode 0600):
    # the checkpoint gets the permissions of any file the user writes (umask).
    with atomic_output(path, overwrite=overwrite) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a checkpoint without running any code in it.

    Returns
    -------
    dict
        ``metadata`` (dict), ``state_dict`` and, when present,
        ``training_state``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file holds Python objects other than tensors and plain data
        (tampered or foreign; refused before they run), is not a PyTorch
        file, is truncated, or is not an xnowcast checkpoint.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"a checkpoint path must be a str or pathlib.Path, got {type(path).__name__}"
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err).strip().splitlines()
        reason = next((line for line in detail if "GLOBAL" in line or "Unsupported" in line), "")
        raise ValueError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain "
            f"data{f' ({reason.strip()})' if reason else ''}, so it was not written by xnowcast "
            "or has been altered. Nothing in it was run. Only load checkpoints you trust, "
            "written by xnowcast.Trainer.save"
        ) from None
    except Exception as err:
        raise ValueError(
            f"cannot read {path} as a PyTorch checkpoint ({type(err).__name__}: {err}); the "
            "file is truncated or not a checkpoint"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        keys: list[str] | str = (
            sorted(map(str, payload))[:8] if isinstance(payload, dict) else type(payload).__name__
        )
        raise ValueError(
            f"{path} is not an xnowcast checkpoint (found {keys}). For plain PyTorch weights, "
            "build the network yourself, call net.load_state_dict(torch.load(path, "
            "weights_only=True)) and forecast with model=net (see docs/neural.md)"
        )
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {version!r}; this xnowcast reads up to "
            f"{FORMAT_VERSION}: upgrade xnowcast"
        )
    try:
        metadata = json.loads(payload["metadata"])
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} has no readable metadata ({err}); the file is damaged") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} has no valid state_dict of tensors; the file is damaged")
    if version >= 2 and payload.get("sha256") != weights_digest(payload["metadata"], state):
        raise ValueError(
            f"{path} fails its SHA-256 check: the file was changed or damaged after it was "
            "written. Nothing in it was used; train again or restore the file from a backup"
        )
    out = {"metadata": metadata, "state_dict": state}
    if "training_state" in payload:
        out["training_state"] = payload["training_state"]
    return out


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata record of a checkpoint (architecture, transform, training, metrics).

    Examples
    --------
    >>> read_metadata("convlstm.pt")["architecture"]  # doctest: +SKIP
    'convlstm'
    """
    return read_checkpoint(path)["metadata"]


def build_network(metadata: dict[str, Any], module: nn.Module | None = None) -> nn.Module:
    """The untrained network a checkpoint's weights belong to.

    Rebuilt from the registry by architecture name and parameters, or
    ``module`` (a user network, which checkpoints cannot rebuild).
    """
    if module is not None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        return module
    arch = metadata.get("architecture")
    if not arch:
        cls = metadata.get("module_class", "a user network")
        raise ValueError(
            f"the checkpoint holds the weights of {cls}, which is not a registered "
            "architecture, and checkpoints store no code: pass module=<a new instance built "
            "with the same parameters> to load_model"
        )
    from xnowcast.models.neural.adapter import TorchModel

    try:
        model = untrained_model(
            arch, n_in=metadata["n_in"], n_out=metadata["n_out"], **metadata.get("model_params", {})
        )
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"cannot rebuild architecture {arch!r} recorded in the checkpoint: {err}"
        ) from None
    if not isinstance(model, TorchModel):
        raise ValueError(f"architecture {arch!r} is not a neural network model")
    return model.module


def untrained_model(architecture: str, **params: Any):
    """The registered ``architecture`` with untrained weights.

    Architectures that ship weights (``advection-unet``) load them by
    default; this asks them for the untrained network (``weights=None``).

    Examples
    --------
    >>> untrained_model("unet", n_in=2, n_out=1, depth=1, filters=4).trained
    False
    """
    from xnowcast.models import get_model

    try:
        return get_model(architecture, weights=None, **params)
    except TypeError as err:
        if "'weights'" not in str(err):
            raise
    return get_model(architecture, **params)


def load_model(
    path: str | os.PathLike,
    *,
    clip: bool = True,
    module: nn.Module | None = None,
    n_in: int | None = None,
    n_out: int | None = None,
):
    """Load a trained network from a checkpoint as a ready-to-forecast model.

    How it runs (device, batch size, precision, tiles) is not part of the
    model: pass run settings to :func:`xnowcast.forecast`, or use
    ``load_model(path).with_settings(device="cuda")``.

    Parameters
    ----------
    path : str or path
        Checkpoint written by :meth:`xnowcast.Trainer.save`.
    clip : bool
        Clip outputs to the transform's physical range, see
        :class:`~xnowcast.models.neural.TorchModel`.
    module : torch.nn.Module, optional
        A fresh instance of the network, for checkpoints of user networks
        (registered architectures are rebuilt automatically).
    n_in, n_out : int, optional
        Only as a check: they must equal the checkpoint's.

    Returns
    -------
    TorchModel
        With the checkpoint's transform, and its metadata in
        :meth:`~TorchModel.get_params` (hence in forecast attributes).

    Examples
    --------
    >>> model = load_model("convlstm.pt")  # doctest: +SKIP
    >>> fc = cube.nowcast.forecast(model=model, device="cuda", batch_size=32)  # doctest: +SKIP
    """
    from xnowcast.models.neural.adapter import TorchModel

    ck = read_checkpoint(path)
    meta = ck["metadata"]
    for key in ("n_in", "n_out"):
        if not isinstance(meta, dict) or not isinstance(meta.get(key), int):
            raise ValueError(
                f"{path} has no integer {key!r} in its metadata; it was not written by "
                "xnowcast.Trainer.save or is damaged"
            )
    for value, key in ((n_in, "n_in"), (n_out, "n_out")):
        if value is not None and value != meta.get(key):
            raise ValueError(
                f"{key}={value} was asked for, but the checkpoint {path} was trained with "
                f"{key}={meta.get(key)}; leave {key} out or train another network"
            )
    net = build_network(meta, module)
    try:
        net.load_state_dict(ck["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(
            f"the weights in {path} do not fit the network {type(net).__name__} ({first}); "
            "the network must be built with the parameters it was trained with"
        ) from None
    net.eval()
    info = {
        "checkpoint": str(path),
        **{
            k: meta[k]
            for k in ("time_step", "leads_trained", "xnowcast_version", "created")
            if k in meta
        },
    }
    if "training" in meta:
        info["training"] = meta["training"]
    if "metrics" in meta:
        info["metrics"] = meta["metrics"]
    wrapper = getattr(net, "model_class", None) or TorchModel
    return wrapper(
        net,
        n_in=meta["n_in"],
        n_out=meta["n_out"],
        transform=meta.get("transform"),
        clip=clip,
        trained=True,
        metadata=info,
    )
