"""xnowcast: xarray-native nowcasting of radar and satellite cubes.

>>> import xnowcast
>>> cube = xnowcast.datasets.synthetic_radar(n_times=14, size=32)
>>> fc = cube.nowcast.forecast(model="persistence")
>>> fc.dims
('lead_time', 'y', 'x')
"""

from xnowcast import accessor as _accessor  # noqa: F401  (registers .nowcast)
from xnowcast import batch, datasets, sequences
from xnowcast._version import __version__
from xnowcast.conventions import normalize_cube
from xnowcast.forecast import forecast
from xnowcast.io import open_archive, open_image_sequence
from xnowcast.models import get_model, list_models, register_model
from xnowcast.units import to_rain_rate
from xnowcast.verification import verify
from xnowcast.windows import windows

__all__ = [
    "Trainer",
    "__version__",
    "batch",
    "datasets",
    "forecast",
    "get_model",
    "list_models",
    "load_model",
    "normalize_cube",
    "open_archive",
    "open_image_sequence",
    "register_model",
    "sequences",
    "to_rain_rate",
    "verify",
    "windows",
]

#: Attributes that import PyTorch, resolved on first use (``import xnowcast`` stays light).
_LAZY = {
    "Trainer": "xnowcast.training.trainer",
    "load_model": "xnowcast.models.neural.checkpoint",
}


#: Subpackages with heavy imports (matplotlib, torch), imported on first attribute access,
#: so that ``xnowcast.plotting.plot_skill`` works right after ``import xnowcast``.
_LAZY_SUBPACKAGES = ("plotting", "training", "motion", "transforms", "downscale")


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _LAZY_SUBPACKAGES:
        return importlib.import_module(f"xnowcast.{name}")
    raise AttributeError(f"module 'xnowcast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_SUBPACKAGES))
