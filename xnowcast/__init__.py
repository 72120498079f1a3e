"""xnowcast: xarray-native nowcasting of radar and satellite cubes.

>>> import xnowcast
>>> cube = xnowcast.datasets.synthetic_radar(n_times=14, size=32)
>>> fc = cube.nowcast.forecast(model="persistence")
>>> fc.dims
('lead_time', 'y', 'x')
"""

from xnowcast import accessor as _accessor  # noqa: F401  (registers .nowcast)
from xnowcast import datasets
from xnowcast._version import __version__
from xnowcast.conventions import normalize_cube
from xnowcast.forecast import forecast
from xnowcast.io import open_archive
from xnowcast.models import get_model, list_models, register_model
from xnowcast.windows import windows

__all__ = [
    "__version__",
    "datasets",
    "forecast",
    "get_model",
    "list_models",
    "normalize_cube",
    "open_archive",
    "register_model",
    "windows",
]
