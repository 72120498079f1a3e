"""Readers of raw radar formats: one module per format, one dispatcher, xarray engines.

Every reader opens one file lazily as the standard one-frame cube
``(time: 1, y, x)``: projected ``x``/``y`` from the file's projection
metadata, lazy 2-D ``lat``/``lon``, a CF grid-mapping coordinate ``crs``, the
time from the file's metadata and physical values with CF ``units`` (what
the file holds: nothing is converted to another quantity). See
``docs/formats.md``.

Examples
--------
>>> from xnowcast.io.formats import FORMATS, detect_format, open_radar_file
>>> "odim" in FORMATS
True
"""

from xnowcast.io.formats.detect import FORMATS, detect_format, open_radar_file
from xnowcast.io.formats.fmi_pgm import open_fmi_pgm
from xnowcast.io.formats.geotiff import open_geotiff
from xnowcast.io.formats.knmi import open_knmi
from xnowcast.io.formats.mch_gif import open_mch_gif
from xnowcast.io.formats.mrms import open_mrms
from xnowcast.io.formats.odim import open_odim

__all__ = [
    "FORMATS",
    "detect_format",
    "open_fmi_pgm",
    "open_geotiff",
    "open_knmi",
    "open_mch_gif",
    "open_mrms",
    "open_odim",
    "open_radar_file",
]
