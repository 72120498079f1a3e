"""Downscaling (super-resolution) of radar, satellite and forecast cubes, as in DL4DS.

* :func:`coarsened`: ``(low, high)`` training pairs from one fine cube
  (area-averaged, NaN-aware);
* :func:`downscale`: a coarse cube or forecast on the fine grid, by a trained
  network (checkpoint) or an interpolation baseline (``nearest``,
  ``bilinear``, ``bicubic``); also ``cube.nowcast.downscale(...)`` and
  ``xnowcast downscale INPUT --model sr.pt --out fine.zarr``;
* networks from the four DL4DS axes (:func:`list_architectures`,
  :class:`SRNet`, :class:`ResidualDiscriminator`), trained with
  ``xnowcast.Trainer(task="downscale", ...)`` (:class:`DownscaleTrainer`).

Names that need PyTorch are imported on first use. See docs/downscaling.md.

Examples
--------
>>> from xnowcast import downscale
>>> from xnowcast.datasets import synthetic_radar
>>> low, high = downscale.coarsened(synthetic_radar(n_times=2, size=32), factor=4)
>>> downscale.downscale(low, model="bicubic", scale=4).shape == high.shape
True
"""

from xnowcast.downscale.apply import Downscaler, downscale, load_downscaler
from xnowcast.downscale.coarsen import coarsened
from xnowcast.downscale.interpolation import BASELINES, interpolate

__all__ = [
    "BASELINES",
    "DownscaleTrainer",
    "Downscaler",
    "PairDataset",
    "ResidualDiscriminator",
    "SRNet",
    "build_network",
    "coarsened",
    "downscale",
    "interpolate",
    "list_architectures",
    "load_downscaler",
]

#: Names that import PyTorch, resolved on first use.
_LAZY = {
    "DownscaleTrainer": "xnowcast.downscale.training",
    "PairDataset": "xnowcast.downscale.training",
    "ResidualDiscriminator": "xnowcast.downscale.networks",
    "SRNet": "xnowcast.downscale.networks",
    "build_network": "xnowcast.downscale.networks",
    "list_architectures": "xnowcast.downscale.networks",
}


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xnowcast.downscale' has no attribute {name!r}")
