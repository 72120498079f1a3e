"""Reading cubes: per-scan file archives, raw radar formats, zarr stores, image folders.

Every reader returns a lazy, time-sorted cube (``time, y, x``) that the rest
of xnowcast accepts.
"""

from xnowcast.io.archive import open_archive, parse_time_from_name
from xnowcast.io.formats import FORMATS, detect_format, open_radar_file
from xnowcast.io.images import ColorLegend, open_image_sequence
from xnowcast.io.output import open_forecast, save_forecast

__all__ = [
    "FORMATS",
    "ColorLegend",
    "detect_format",
    "open_archive",
    "open_forecast",
    "open_image_sequence",
    "open_radar_file",
    "parse_time_from_name",
    "save_forecast",
]
