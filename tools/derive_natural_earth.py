"""Derive the bundled Natural Earth 110 m coastlines and land borders (run once, offline).

Natural Earth's 1:110m country polygons (public domain) ship inside the pyogrio
wheel, under ``pyogrio/tests/fixtures/naturalearth_lowres/``. This script reads
them, derives

* coastlines: the boundary of the union of all countries;
* land borders: the boundary lines two countries share;

and stores both as compact line strings (float32 lon/lat, one offsets array per
set) in ``xnowcast/plotting/data/ne_110m_lines.npz``.

Usage::

    pip download pyogrio --no-deps -d /tmp/pyogrio   # or: pip install pyogrio
    python tools/derive_natural_earth.py /tmp/pyogrio/pyogrio-*.whl

The argument is the wheel, an unpacked ``naturalearth_lowres.shp`` or a folder
holding it; it needs ``pyshp`` (``shapefile``, installed with cartopy) and shapely.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import shapefile
import shapely
from shapely.geometry import shape

OUT = Path(__file__).resolve().parents[1] / "xnowcast" / "plotting" / "data" / "ne_110m_lines.npz"
MEMBER = "pyogrio/tests/fixtures/naturalearth_lowres/naturalearth_lowres"


def read_countries(source: Path) -> list:
    """The country polygons of the Natural Earth low-resolution shapefile."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            parts = {
                ext: io.BytesIO(wheel.read(f"{MEMBER}.{ext}")) for ext in ("shp", "shx", "dbf")
            }
        reader = shapefile.Reader(**parts)
    else:
        path = source if source.suffix == ".shp" else source / "naturalearth_lowres.shp"
        reader = shapefile.Reader(str(path))
    return [shape(s.__geo_interface__).buffer(0) for s in reader.shapes()]


def _lines(geometry) -> list[np.ndarray]:
    """The line strings of a (multi)line geometry as (n, 2) arrays, merged where they join."""
    merged = shapely.line_merge(geometry) if geometry.geom_type != "LineString" else geometry
    parts = getattr(merged, "geoms", [merged])
    return [np.asarray(p.coords, dtype=np.float64) for p in parts if len(p.coords) > 1]


def land_borders(countries: list) -> list[np.ndarray]:
    """Boundary lines shared by two countries."""
    tree = shapely.STRtree(countries)
    shared = []
    for i, a in enumerate(countries):
        for j in tree.query(a):
            if j <= i:
                continue
            common = a.boundary.intersection(countries[j].boundary)
            common = shapely.line_merge(shapely.union_all(_linear(common)))
            if not common.is_empty:
                shared.append(common)
    return _lines(shapely.line_merge(shapely.union_all(shared)))


def _linear(geometry) -> list:
    """The linear parts of an intersection (points where countries only touch dropped)."""
    parts = getattr(geometry, "geoms", [geometry])
    return [p for p in parts if p.geom_type in ("LineString", "MultiLineString") and p.length > 0]


def pack(lines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated float32 ``(n, 2)`` lon/lat and the start offset of each line (+ end)."""
    offsets = np.cumsum([0, *(len(line) for line in lines)]).astype(np.int32)
    return np.concatenate(lines).astype(np.float32), offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="pyogrio wheel, .shp file or its folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    countries = read_countries(args.source)
    coast = _lines(shapely.union_all(countries).boundary)
    borders = land_borders(countries)
    coast_xy, coast_off = pack(coast)
    border_xy, border_off = pack(borders)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        coastline_lonlat=coast_xy,
        coastline_offsets=coast_off,
        borders_lonlat=border_xy,
        borders_offsets=border_off,
        source=np.array(
            "Natural Earth 1:110m countries (public domain, naturalearthdata.com), from "
            "pyogrio/tests/fixtures/naturalearth_lowres; derived by tools/derive_natural_earth.py"
        ),
    )
    print(
        f"{len(countries)} countries -> {len(coast)} coastlines ({len(coast_xy)} points), "
        f"{len(borders)} land borders ({len(border_xy)} points): {args.out} "
        f"({args.out.stat().st_size / 1024:.0f} kB)"
    )


if __name__ == "__main__":
    main()
