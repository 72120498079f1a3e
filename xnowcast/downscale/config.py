"""The downscaling section of ``xnowcast train CONFIG.yaml`` (``task: downscale``).

::

    task: downscale
    model: resnet-spc
    model_params: {filters: 32, blocks: 4}
    scale: 4
    train: radar/mch-20150515.nc        # fine cubes, coarsened by `scale` into pairs
    # train_low: radar/mch-4km.nc       # or coarse cubes co-located with `train`
    val: radar/knmi-201008.nc
    static: {elevation: {path: dem.nc, var: elevation}}
    adversarial: false
    loss: mae
    loss_space: physical                # the loss in mm/h (PSNR's space)
    crop: 64
    output: sr.pt

Data entries have the forms of ``train``/``val`` (paths, globs, ``{path,
var, time, isel}``); static entries are a path or ``{path, var}`` of a 2-D
field, regridded to the fine grid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["DATA_KEYS", "OPTIONS", "fit_arguments", "open_static", "prepare", "static_entries"]

#: Config keys of downscaling: ``name -> (default, help)`` (Trainer options, task="downscale").
OPTIONS: dict[str, tuple[Any, str]] = {
    "scale": (4, "downscaling: fine cells per coarse cell"),
    "static": (None, "downscaling: static predictors {name: path or {path, var}}"),
    "adversarial": (False, "downscaling: conditional GAN with a residual discriminator"),
    "discriminator_kwargs": (None, "downscaling: discriminator parameters {filters, blocks}"),
    "discriminator_lr": (1e-4, "downscaling: learning rate of the discriminator"),
    "adversarial_weight": (1e-3, "downscaling: weight of the adversarial loss"),
    "loss_space": ("transform", "downscaling: loss on the network's scale, or 'physical' units"),
    "train_low": (None, "downscaling: coarse cubes co-located with train (default: coarsened)"),
    "val_low": (None, "downscaling: coarse cubes co-located with val (default: coarsened)"),
}

#: Keys that are data, not Trainer options.
DATA_KEYS = ("train_low", "val_low")


def static_entries(static: Any, base: Path) -> dict[str, dict[str, Any]]:
    """Validated static entries ``{name: {"path": ..., "var": ...}}``, paths resolved against ``base``.

    Examples
    --------
    >>> static_entries({"dem": "dem.nc"}, Path("/data"))
    {'dem': {'path': '/data/dem.nc'}}
    """
    if not isinstance(static, dict):
        raise ValueError(f"static must map names to paths or {{path, var}}, got {static!r}")
    out = {}
    for name, spec in static.items():
        entry = dict(spec) if isinstance(spec, dict) else {"path": spec}
        unknown = set(entry) - {"path", "var"}
        if unknown or "path" not in entry:
            raise ValueError(f"static {name!r} must be a path or {{path, var}}, got {spec!r}")
        path = Path(os.path.expanduser(str(entry["path"])))
        entry["path"] = str(path if path.is_absolute() else base / path)
        out[str(name)] = entry
    return out


def open_static(spec: Any) -> Any:
    """A static predictor field from a config entry (a path or ``{path, var}``).

    Examples
    --------
    >>> open_static({"path": "dem.nc", "var": "elevation"})  # doctest: +SKIP
    <xarray.DataArray 'elevation' (y: 640, x: 710)> ...
    """
    import xarray as xr

    if isinstance(spec, dict):
        unknown = set(spec) - {"path", "var"}
        if unknown or "path" not in spec:
            raise ValueError(f"a static entry is a path or {{path, var}}, got {spec!r}")
        path, var = spec["path"], spec.get("var")
    else:
        path, var = spec, None
    ds = xr.open_dataset(path)
    if var is None:
        names = [n for n in ds.data_vars if ds[n].ndim >= 2]
        if len(names) != 1:
            raise ValueError(f"{path} holds {names}; give the static entry as {{path, var}}")
        var = names[0]
    return ds[var].load()


def fit_arguments(config: dict[str, Any], train: list, val: list | None, open_data) -> dict:
    """``Trainer.fit`` keywords for a downscaling config: ``pairs`` and ``val``.

    ``train``/``val`` are the opened fine cubes; coarse ones come from
    ``train_low``/``val_low`` (opened with ``open_data``) or are the fine
    ones coarsened by ``scale`` (:func:`xnowcast.downscale.coarsened`).
    """
    from xnowcast.downscale.coarsen import coarsened

    scale = config.get("scale", OPTIONS["scale"][0])

    def pairs_of(fine: list, key: str) -> list:
        if config.get(key):
            low = open_data(config[key], var=config.get("var"), time=config.get("time"))
            if len(low) != len(fine):
                raise ValueError(f"{key} has {len(low)} cubes but its fine data {len(fine)}")
            return list(zip(low, fine))
        return [coarsened(cube, scale) for cube in fine]

    return {
        "pairs": pairs_of(train, "train_low"),
        "val": None if val is None else pairs_of(val, "val_low"),
    }


def prepare(
    config: dict[str, Any], trainer_kwargs: dict[str, Any], train: list, val: list | None, open_data
) -> dict[str, Any]:
    """Finish a config's Trainer keywords (statics opened) and return the ``fit`` keywords.

    With ``task`` other than ``"downscale"``, downscaling keys are refused.
    """
    if config.get("task", "nowcast") != "downscale":
        given = sorted(k for k in OPTIONS if config.get(k, OPTIONS[k][0]) != OPTIONS[k][0])
        if given:
            raise ValueError(f"{', '.join(given)} apply to task: downscale only")
        return {"train": train, "val": val}
    for key in DATA_KEYS:
        trainer_kwargs.pop(key, None)
    if trainer_kwargs.get("static"):
        trainer_kwargs["static"] = {n: open_static(e) for n, e in trainer_kwargs["static"].items()}
    return fit_arguments(config, train, val, open_data)
