"""Reading cubes: per-scan file archives, zarr stores, image folders.

Every reader returns a lazy, time-sorted cube (``time, y, x``) that the rest
of xnowcast accepts.
"""

from xnowcast.io.archive import open_archive, parse_time_from_name
from xnowcast.io.images import ColorLegend, open_image_sequence
from xnowcast.io.output import open_forecast, save_forecast

__all__ = [
    "ColorLegend",
    "open_archive",
    "open_forecast",
    "open_image_sequence",
    "parse_time_from_name",
    "save_forecast",
]
