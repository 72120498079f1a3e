"""YAML configuration of ``xnowcast train CONFIG.yaml``.

A config file holds the data to train on, where to write the checkpoint, and
any :class:`~xnowcast.training.Trainer` option (same names, same defaults)::

    model: convlstm
    model_params: {hidden: [64, 64], kernel_size: 3}
    train:
      - path: radar/knmi-201008.nc
        isel: {time: [0, 70]}          # frames 0..69
    val:
      - path: radar/knmi-201008.nc
        isel: {time: [70, null]}
    output: convlstm.pt
    epochs: 20
    crop: 128
    loss: mse+0.5*ssim

``xnowcast train --example`` prints a config with every option and its
default, commented. Unknown keys are an error naming them and the valid ones.

Data entries (``train``, ``val``) are a path or glob (``"radar/*.nc"``), a
list of them, or mappings with ``path`` and optionally ``var`` (variable),
``time`` (where per-scan files keep their time, see
:func:`xnowcast.open_archive`) and ``isel`` (``{dim: [start, stop]}`` index
ranges, ``null`` for open ends).
"""

from __future__ import annotations

import difflib
import inspect
import os
from pathlib import Path
from typing import Any

import yaml

from xnowcast.downscale import config as downscale_config

__all__ = ["OPTIONS", "example_config", "load_config", "open_data", "run_config"]

#: Every config key: ``name -> (default, help)``. Trainer options take their
#: defaults from :class:`~xnowcast.training.Trainer` (checked by the tests).
OPTIONS: dict[str, tuple[Any, str]] = {
    # -- data and output (config only)
    "train": (None, "training data: path/glob, list, or {path, var, time, isel} (required)"),
    "val": (None, "validation data, same forms as train (optional)"),
    "output": (None, "checkpoint file written at the end, e.g. convlstm.pt (required)"),
    "time": (None, "time of per-scan files: scalar variable name or strptime file-name pattern"),
    # -- network
    "model": ("convlstm", "architecture: conv3d, convlstm, conv-ed-lstm, unet, advection-unet"),
    "model_params": (None, "architecture parameters, e.g. {hidden: [64, 64]} (docs/neural.md)"),
    "n_in": (12, "input frames"),
    "n_out": (24, "lead times"),
    "transform": ("log", "intensity transform: log, dbr, scale, identity or {name: ..., ...}"),
    # -- optimisation
    "loss": ("mse", "mse, mae, bce, ssim, ms-ssim, csi, fss, or a mix like 'mse+0.5*ssim'"),
    "loss_thresholds": (None, "rain rates of the csi and fss losses (default: score_threshold)"),
    "optimizer": ("adam", "adam, adamw or sgd"),
    "lr": (1e-3, "(peak) learning rate"),
    "weight_decay": (0.0, "weight decay"),
    "lr_schedule": ("constant", "constant, step, cosine or onecycle"),
    "step_size": (10, "epochs between decays of the step schedule"),
    "gamma": (0.5, "decay factor of the step schedule"),
    "epochs": (10, "epochs to train"),
    "batch_size": (8, "samples per step (per process under torchrun)"),
    "grad_clip": (None, "clip the gradient norm to this value"),
    "precision": ("auto", "auto (bf16 on CUDA), fp32 or bf16"),
    "curriculum": (None, "grow the trained lead times: true, epochs, {start, epochs} or a list"),
    "scheduled_sampling": (None, "decaying teacher forcing: true or {start, end, epochs}"),
    "early_stopping": (None, "stop after this many epochs without a better val monitor"),
    "min_delta": (0.0, "improvement that counts for early stopping"),
    "monitor": ("loss", "what picks the best epoch: loss, csi or fss (validation)"),
    "score_threshold": (1.0, "rain rate of the validation CSI and FSS (cube units)"),
    "fss_scale": (16, "FSS neighbourhood of the validation score (pixels)"),
    "val_split": (None, "without val: validate on this last fraction of the windows"),
    "seed": (0, "seed of weights, shuffling, crops and flips"),
    # -- samples
    "crop": (128, "square training crops in pixels (null: whole frames)"),
    "target_crop": (None, "train on the central target_crop pixels of the targets"),
    "stride": (1, "frames between training windows"),
    "flips": (True, "random flips as augmentation"),
    "min_wet_fraction": (0.0, "redraw crops with less than this fraction of wet pixels"),
    "wet_threshold": (0.1, "rain rate counted as wet (cube units)"),
    "var": (None, "variable to read from the files"),
    # -- running
    "device": ("auto", "auto, cpu, cuda, cuda:N or mps"),
    "num_workers": (0, "DataLoader worker processes"),
    "steps_per_epoch": (None, "cap on training batches per epoch"),
    "val_steps": (None, "cap on validation batches"),
    "time_limit": (None, "training budget in seconds (stops within one step of it)"),
    "budget_clock": ("wall", "what time_limit counts: wall or cpu (seconds of this process)"),
    "cache_dir": (None, "advection-unet: keep the extrapolation of each window here"),
    "log_dir": (None, "folder for metrics.csv and TensorBoard logs"),
    "checkpoint": (None, "resumable checkpoint written after every epoch"),
    "resume": (None, "checkpoint to continue training from"),
    "overwrite": (False, "replace an existing output, checkpoint or log_dir/metrics.csv"),
    "progress": (True, "progress bar"),
    # -- downscaling (docs/downscaling.md; xnowcast.downscale.config)
    "task": ("nowcast", "nowcast, or downscale (super-resolution of coarse cubes)"),
    **downscale_config.OPTIONS,
}

_DATA_KEYS = ("train", "val", "output", "time", *downscale_config.DATA_KEYS)
_REQUIRED = ("train", "output")
_ENTRY_KEYS = ("path", "var", "time", "isel")


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, OPTIONS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_config(source: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """Read and validate a config (a YAML file or an equivalent dict).

    Returns
    -------
    dict
        The options given (defaults are not filled in), with relative data
        and output paths resolved against the config file's folder.

    Raises
    ------
    ValueError
        Unknown keys (the message names them and lists the valid ones),
        missing ``train``/``output``, or a file that is not a YAML mapping.

    Examples
    --------
    >>> load_config({"train": "radar.nc", "output": "m.pt", "epoch": 3})
    Traceback (most recent call last):
    ...
    ValueError: unknown config key(s): 'epoch' (did you mean 'epochs'?). Valid keys: ...
    """
    base = Path(".")
    if isinstance(source, dict):
        config = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ValueError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(config, dict):
            raise ValueError(
                f"{path} must hold a YAML mapping of options, got {type(config).__name__}"
            )
        base = path.parent
    unknown = [k for k in config if k not in OPTIONS]
    if unknown:
        named = ", ".join(f"{k!r}{_suggest(str(k))}" for k in unknown)
        raise ValueError(f"unknown config key(s): {named}. Valid keys: {', '.join(OPTIONS)}")
    missing = [k for k in _REQUIRED if config.get(k) is None]
    if missing:
        raise ValueError(
            f"the config needs {' and '.join(missing)} (see `xnowcast train --example`)"
        )
    if config.get("static") is not None:
        config["static"] = downscale_config.static_entries(config["static"], base)
    for key in ("train", "val", *downscale_config.DATA_KEYS):
        if config.get(key) is not None:
            config[key] = [_entry(e, base, key) for e in _as_list(config[key])]
    config["output"] = str(_resolve(config["output"], base))
    for key in ("log_dir", "checkpoint", "resume", "cache_dir"):
        if config.get(key) is not None:
            config[key] = str(_resolve(config[key], base))
    return config


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _resolve(path: Any, base: Path) -> Path:
    p = Path(os.path.expanduser(str(path)))
    return p if p.is_absolute() else base / p


def _entry(entry: Any, base: Path, key: str) -> dict[str, Any]:
    if isinstance(entry, (str, os.PathLike)):
        entry = {"path": entry}
    if not isinstance(entry, dict):
        raise ValueError(f"{key} entries are paths or mappings with 'path', got {entry!r}")
    unknown = [k for k in entry if k not in _ENTRY_KEYS]
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} in a {key} entry; valid keys: {', '.join(_ENTRY_KEYS)}"
        )
    if "path" not in entry:
        raise ValueError(f"a {key} entry needs a 'path', got {entry!r}")
    out = dict(entry)
    out["path"] = str(_resolve(entry["path"], base))
    isel = out.get("isel") or {}
    if not isinstance(isel, dict):
        raise ValueError(f"isel must map dims to [start, stop], got {isel!r}")
    for dim, rng in isel.items():
        if not (isinstance(rng, (list, tuple)) and len(rng) == 2):
            raise ValueError(
                f"isel {dim!r} must be [start, stop] (null for open ends), got {rng!r}"
            )
    return out


def open_data(
    entries: list[dict[str, Any]], *, var: str | None = None, time: str | None = None
) -> list:
    """Open the cubes of validated data entries (lazily, with :func:`xnowcast.open_archive`)."""
    from xnowcast.io import open_archive

    cubes = []
    for e in entries:
        cube = open_archive(e["path"], var=e.get("var", var), time=e.get("time", time))
        isel = {d: slice(*r) for d, r in (e.get("isel") or {}).items()}
        cubes.append(cube.isel(isel) if isel else cube)
    return cubes


def run_config(source: str | os.PathLike | dict[str, Any], *, overwrite: bool | None = None):
    """Train as a config says and write the checkpoint; returns the :class:`Trainer`.

    This is what ``xnowcast train CONFIG.yaml [--overwrite]`` runs. Every
    output (``output``, ``checkpoint``, ``log_dir/metrics.csv``) is checked
    before training: an existing one is refused unless ``overwrite`` (the
    argument, else the config's key) or it belongs to the run being resumed.
    """
    from xnowcast.training.trainer import Trainer

    config = load_config(source)
    if overwrite is not None:
        config["overwrite"] = bool(overwrite)
    trainer_kwargs = {k: v for k, v in config.items() if k not in _DATA_KEYS}
    train = open_data(config["train"], var=config.get("var"), time=config.get("time"))
    val = None
    if config.get("val"):
        val = open_data(config["val"], var=config.get("var"), time=config.get("time"))
    fit_kwargs = downscale_config.prepare(config, trainer_kwargs, train, val, open_data)
    trainer = Trainer(**trainer_kwargs)
    trainer.check_outputs(config["output"])
    trainer.fit(**fit_kwargs)
    trainer.save(config["output"])
    return trainer


def example_config() -> str:
    """A YAML config with every option, its default and what it does.

    Examples
    --------
    >>> text = example_config()
    >>> "epochs: 10" in text and "# early_stopping:" in text
    True
    """
    lines = ["# xnowcast train config: every option with its default (see docs/neural.md).", ""]
    for key, (default, text) in OPTIONS.items():
        value = yaml.safe_dump(default, default_flow_style=True).strip()
        if value.endswith("..."):
            value = value[:-3].strip()
        if key in _REQUIRED:
            example = {"train": "radar/*.nc", "output": "model.pt"}[key]
            lines.append(f"{key}: {example}  # {text}")
        elif default is None:
            lines.append(f"# {key}: null  # {text}")
        else:
            lines.append(f"{key}: {value}  # {text}")
    return "\n".join(lines) + "\n"


def _trainer_defaults() -> dict[str, Any]:
    """Trainer parameters and defaults (the tests check OPTIONS against them)."""
    from xnowcast.training.trainer import Trainer

    sig = inspect.signature(Trainer.__init__)
    return {n: p.default for n, p in sig.parameters.items() if n != "self"}
