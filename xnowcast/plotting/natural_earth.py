"""Coastlines and borders from local Natural Earth shapefiles, never downloaded.

cartopy draws coastlines and borders from Natural Earth shapefiles, which it
downloads on first use. Radar workstations and compute nodes are often
offline, where that download hangs or fails. xnowcast therefore reads the
shapefiles only from local directories and never calls cartopy's downloader.

Every map has coastlines and land borders all the same: xnowcast ships a
small Natural Earth 1:110m set of them (public domain, about 60 kB, derived
from Natural Earth's 110 m country polygons by
``tools/derive_natural_earth.py``), drawn when no local shapefile of the
feature is found (:func:`bundled_lines`). Finer local copies (50 m, 10 m), as
below, take precedence. Other features (lakes, rivers) whose shapefile is not
found are left out, with one warning per process.

Where the shapefiles are looked for, in order:

1. the directory of :func:`set_natural_earth_dir` or of the environment
   variable ``XNOWCAST_NATURAL_EARTH``;
2. cartopy's ``pre_existing_data_dir`` and ``data_dir`` (where cartopy keeps
   what it downloaded when it was online).

In each directory both cartopy's layout,
``shapefiles/natural_earth/<category>/ne_<resolution>_<name>.shp``, and a flat
folder of unzipped Natural Earth downloads, ``ne_<resolution>_<name>.shp``,
are found. To prepare an offline machine, copy ``~/.local/share/cartopy`` from
a machine where cartopy has drawn coastlines, or unzip
``ne_50m_coastline.zip`` and ``ne_50m_admin_0_boundary_lines_land.zip`` from
naturalearthdata.com into one folder, and point xnowcast at it.

Examples
--------
>>> from xnowcast.plotting.natural_earth import natural_earth_path
>>> natural_earth_path("coastline", "50m", search=["/nonexistent"]) is None
True
"""

from __future__ import annotations

import functools
import itertools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xnowcast.checks import choice

__all__ = [
    "BUNDLED",
    "ENV_VAR",
    "FEATURES",
    "RESOLUTIONS",
    "add_features",
    "bundled_lines",
    "natural_earth_dirs",
    "natural_earth_path",
    "set_natural_earth_dir",
]

#: Environment variable naming a directory with Natural Earth shapefiles.
ENV_VAR = "XNOWCAST_NATURAL_EARTH"
#: Features xnowcast can draw: name -> (category, Natural Earth name, style).
FEATURES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "coastline": ("physical", "coastline", {"edgecolor": "0.15", "linewidth": 0.7}),
    "borders": (
        "cultural",
        "admin_0_boundary_lines_land",
        {"edgecolor": "0.25", "linewidth": 0.6, "linestyle": "--"},
    ),
    "lakes": ("physical", "lakes", {"edgecolor": "0.35", "linewidth": 0.4}),
    "rivers": ("physical", "rivers_lake_centerlines", {"edgecolor": "0.45", "linewidth": 0.4}),
}
#: Natural Earth resolutions, finest first.
RESOLUTIONS = ("10m", "50m", "110m")

_state: dict[str, Any] = {"dir": None, "warned": False}

#: The bundled Natural Earth 1:110m coastlines and land borders (package data).
BUNDLED = Path(__file__).resolve().parent / "data" / "ne_110m_lines.npz"


@functools.lru_cache(maxsize=4)
def bundled_lines(feature: str) -> tuple[np.ndarray, ...]:
    """The bundled Natural Earth 1:110m lines of ``feature``: ``(n, 2)`` lon/lat arrays.

    Only ``"coastline"`` and ``"borders"`` (land borders between countries)
    are bundled; other features give an empty tuple. Drawn by
    :func:`add_features` when no local shapefile of the feature is found.

    Examples
    --------
    >>> coast = bundled_lines("coastline")
    >>> len(coast) > 100, coast[0].shape[1]
    (True, 2)
    >>> bundled_lines("rivers")
    ()
    """
    if feature not in ("coastline", "borders"):
        return ()
    with np.load(BUNDLED) as data:
        xy, offsets = data[f"{feature}_lonlat"], data[f"{feature}_offsets"]
    return tuple(xy[a:b].astype(np.float64) for a, b in itertools.pairwise(offsets.tolist()))


def set_natural_earth_dir(path: str | os.PathLike | None) -> Path | None:
    """Point xnowcast (and cartopy) at a local copy of the Natural Earth shapefiles.

    Also sets ``cartopy.config["pre_existing_data_dir"]`` (when cartopy is
    installed), so that cartopy's own feature interface finds the files too.

    Parameters
    ----------
    path : str or path or None
        A directory in cartopy's layout or a flat folder of ``ne_*.shp``
        files; ``None`` forgets a previous setting.

    Returns
    -------
    pathlib.Path or None
        The previous setting.

    Raises
    ------
    ValueError
        When ``path`` is not an existing directory.

    Examples
    --------
    >>> import tempfile
    >>> from xnowcast.plotting import set_natural_earth_dir
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     previous = set_natural_earth_dir(folder)
    ...     _ = set_natural_earth_dir(previous)
    """
    previous = _state["dir"]
    if path is None:
        _state["dir"] = None
        return previous
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(
            f"Natural Earth directory {str(folder)!r} does not exist; give the folder holding "
            "shapefiles/natural_earth/... (cartopy's layout) or the unzipped ne_*.shp files"
        )
    _state["dir"] = folder
    _state["warned"] = False
    try:
        import cartopy
    except ImportError:
        return previous
    cartopy.config["pre_existing_data_dir"] = folder
    return previous


def natural_earth_dirs() -> list[Path]:
    """The directories searched for shapefiles, in order (see the module notes)."""
    dirs: list[Path] = []
    if _state["dir"] is not None:
        dirs.append(Path(_state["dir"]))
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]).expanduser())
    try:
        import cartopy
    except ImportError:
        return dirs
    for key in ("pre_existing_data_dir", "data_dir"):
        value = cartopy.config.get(key)
        if value and str(value) not in ("", "."):
            dirs.append(Path(value))
    return list(dict.fromkeys(dirs))


def natural_earth_path(
    feature: str,
    resolution: str = "50m",
    *,
    search: Sequence[str | os.PathLike] | None = None,
) -> Path | None:
    """The local shapefile of a feature at a resolution, or ``None``; never downloads.

    Parameters
    ----------
    feature : str
        A key of :data:`FEATURES` (``"coastline"``, ``"borders"``, ...).
    resolution : {"10m", "50m", "110m"}
        Natural Earth resolution.
    search : list of paths, optional
        Directories to search (default: :func:`natural_earth_dirs`).
    """
    if feature not in FEATURES:
        raise ValueError(f"unknown map feature {feature!r}; choose from {', '.join(FEATURES)}")
    category, name, _ = FEATURES[feature]
    filename = f"ne_{resolution}_{name}.shp"
    for folder in natural_earth_dirs() if search is None else map(Path, search):
        for candidate in (
            folder / "shapefiles" / "natural_earth" / category / filename,
            folder / filename,
        ):
            if candidate.is_file():
                return candidate
    return None


@functools.lru_cache(maxsize=16)
def _geometries(path: str) -> tuple:
    from cartopy.io import shapereader

    return tuple(shapereader.Reader(path).geometries())


@functools.lru_cache(maxsize=4)
def _bundled(feature: str) -> tuple:
    import shapely

    lines = bundled_lines(feature)
    return (shapely.MultiLineString(list(lines)),) if lines else ()


def _warn_once(missing: list[str]) -> None:
    if _state["warned"]:
        return
    _state["warned"] = True
    warnings.warn(
        f"Natural Earth shapefiles not found locally for: {', '.join(missing)}; the maps are "
        "drawn without them (xnowcast never downloads). Point xnowcast at a local copy with "
        f"xnowcast.plotting.set_natural_earth_dir(path) or the environment variable {ENV_VAR} "
        "(see the plotting docs). This warning is shown once.",
        UserWarning,
        stacklevel=4,
    )


def add_features(
    ax: Any,
    features: Sequence[str] = ("coastline", "borders"),
    resolution: str = "50m",
) -> list[str]:
    """Draw the features on cartopy axes, from local shapefiles or the bundled set.

    A local shapefile at the requested resolution is preferred, then one at
    another resolution; coastlines and borders without any local shapefile
    come from the bundled 1:110m set (:func:`bundled_lines`). Other missing
    features are skipped with a single warning per process.

    Parameters
    ----------
    ax : cartopy.mpl.geoaxes.GeoAxes
        The map.
    features : str or sequence of str
        Keys of :data:`FEATURES` (one name is one feature).
    resolution : {"10m", "50m", "110m"}
        Preferred resolution.

    Returns
    -------
    list of str
        The features drawn.
    """
    resolution = choice(resolution, "resolution", RESOLUTIONS)
    import cartopy.crs as ccrs
    from cartopy.feature import ShapelyFeature

    order = sorted(
        RESOLUTIONS, key=lambda r: abs(RESOLUTIONS.index(r) - RESOLUTIONS.index(resolution))
    )
    drawn, missing = [], []
    for feature in [features] if isinstance(features, str) else features:
        path = next((p for p in (natural_earth_path(feature, r) for r in order) if p), None)
        geometries = _geometries(str(path)) if path is not None else _bundled(feature)
        if not geometries:
            missing.append(f"{feature} ({resolution})")
            continue
        style = dict(FEATURES[feature][2])
        ax.add_feature(
            ShapelyFeature(geometries, ccrs.PlateCarree()),
            facecolor="none",
            zorder=3,
            **style,
        )
        drawn.append(feature)
    if missing:
        _warn_once(missing)
    return drawn
