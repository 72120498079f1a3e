"""Reading cubes: per-scan file archives, zarr stores, image folders.

Every reader returns a lazy, time-sorted cube (``time, y, x``) that the rest
of xnowcast accepts.
"""

from xnowcast.io.archive import open_archive, parse_time_from_name
from xnowcast.io.output import open_forecast, save_forecast

__all__ = ["open_archive", "open_forecast", "parse_time_from_name", "save_forecast"]
