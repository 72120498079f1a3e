"""Coarse and fine grids of a downscaling pair: spatial dims, coordinates, lat/lon.

A coarse cell ``i`` covers the fine cells ``i*f .. i*f + f - 1`` (``f`` the
scale factor). On a regular grid the fine centres are then
``c_i + (k + 0.5 - f/2) * d/f`` for coarse centres ``c_i`` and spacing ``d``,
which is what :func:`fine_coordinate` returns (by linear interpolation in
index space, so slightly irregular grids are followed too).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.conventions import add_latlon, find_grid_mapping, find_latlon, spatial_role

__all__ = ["fine_coordinate", "label_fine", "spatial_dims"]


def spatial_dims(da: xr.DataArray) -> tuple[str, str]:
    """Names of the ``(y, x)`` dims of a cube, a forecast or a single field.

    Dims are recognised by their coordinates' CF attributes or names
    (:func:`xnowcast.conventions.spatial_role`); when that finds none, the
    last two dims are taken.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> spatial_dims(synthetic_radar(n_times=2, size=8))
    ('y', 'x')
    """
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"expected an xarray.DataArray, got {type(da).__name__}")
    roles = {str(d): spatial_role(da, str(d)) for d in da.dims}
    ys = [d for d, r in roles.items() if r == "y"]
    xs = [d for d, r in roles.items() if r == "x"]
    if len(ys) == 1 and len(xs) == 1:
        return ys[0], xs[0]
    if da.ndim < 2:
        raise ValueError(f"a field needs two spatial dims (y, x); got dims {da.dims}")
    return str(da.dims[-2]), str(da.dims[-1])


def fine_coordinate(coarse: np.ndarray, factor: int, size: int | None = None) -> np.ndarray:
    """Fine cell centres of a coarse 1-D coordinate (``factor`` fine cells per coarse cell).

    Parameters
    ----------
    coarse : numpy.ndarray
        Coarse cell centres (at least two, monotonic; one cell needs no spacing
        only when ``factor`` is 1).
    factor : int
        Fine cells per coarse cell along the axis.
    size : int, optional
        Number of fine cells to return (default ``len(coarse) * factor``);
        fewer when the fine grid was not a multiple of the factor.

    Examples
    --------
    >>> fine_coordinate(np.array([1.5, 3.5]), 2).tolist()
    [1.0, 2.0, 3.0, 4.0]
    """
    coarse = np.asarray(coarse, dtype="float64")
    n = coarse.size * factor if size is None else int(size)
    if factor == 1:
        return coarse[:n].copy()
    if coarse.size < 2:
        raise ValueError(
            "a coordinate of one coarse cell has no spacing to refine; give a cube with at "
            "least two cells along each spatial dim"
        )
    pos = (np.arange(n) + 0.5) / factor - 0.5  # fine centres in coarse index units
    idx = np.arange(coarse.size)
    inside = np.interp(pos, idx, coarse)
    lo = coarse[0] + (pos - 0) * (coarse[1] - coarse[0])
    hi = coarse[-1] + (pos - idx[-1]) * (coarse[-1] - coarse[-2])
    return np.where(pos < 0, lo, np.where(pos > idx[-1], hi, inside))


def _interp_2d(field: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D coordinate (lat/lon) at fine cell centres, bilinear with linear extrapolation."""
    rows = np.stack([fine_coordinate(row, factor, shape[1]) for row in field])
    return np.stack([fine_coordinate(col, factor, shape[0]) for col in rows.T]).T


def label_fine(
    values: np.ndarray,
    coarse: xr.DataArray,
    factor: int,
    *,
    fine_grid: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.DataArray:
    """Label fine-grid values like ``coarse``: same dims and non-spatial coordinates.

    Parameters
    ----------
    values : numpy.ndarray
        Fine values, shaped like ``coarse`` with the two spatial dims refined.
    coarse : xarray.DataArray
        The coarse input (its dims, name, attributes and non-spatial coords
        are kept; the grid mapping coordinate too).
    factor : int
        Fine cells per coarse cell.
    fine_grid : dict, optional
        A recorded fine grid ``{"y": [...], "x": [...], "y_attrs": {...},
        "x_attrs": {...}}`` whose coordinates are used as they are; otherwise
        ``factor`` times the coarse grid (:func:`fine_coordinate`).
    attrs : dict, optional
        Attributes added to the result's.

    Returns
    -------
    xarray.DataArray
        With fine ``y``/``x``; 2-D lat/lon derived from the grid mapping when
        there is one, else interpolated from the coarse lat/lon.
    """
    y, x = spatial_dims(coarse)
    hgt, wid = values.shape[-2:]
    coords: dict[str, Any] = {
        str(name): c for name, c in coarse.coords.items() if y not in c.dims and x not in c.dims
    }
    for dim, size in ((y, hgt), (x, wid)):
        key = "y" if dim == y else "x"
        if fine_grid is not None:
            vals = np.asarray(fine_grid[key])[:size]
            dim_attrs = fine_grid.get(f"{key}_attrs", {})
        elif dim in coarse.coords:
            vals = fine_coordinate(coarse[dim].values, factor, size)
            dim_attrs = dict(coarse[dim].attrs)
        else:
            continue
        dtype = coarse[dim].dtype if dim in coarse.coords else vals.dtype
        coords[dim] = (dim, vals.astype(dtype), dim_attrs)
    out = xr.DataArray(values, dims=coarse.dims, coords=coords, name=coarse.name)
    out.attrs = {**coarse.attrs, **(attrs or {})}
    return _fine_latlon(out, coarse, factor, y, x)


def _fine_latlon(out: xr.DataArray, coarse: xr.DataArray, factor: int, y: str, x: str):
    lat, lon = find_latlon(coarse)
    if lat is None or lon is None or coarse[lat].dims != (y, x):
        return out
    if find_grid_mapping(out) is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            derived = add_latlon(out, y_dim=y, x_dim=x)
        if "lat" in derived.coords and "lon" in derived.coords:
            names = {k: v for k, v in (("lat", lat), ("lon", lon)) if k != v}
            return derived.rename(names) if names else derived
    shape = (out.sizes[y], out.sizes[x])
    return out.assign_coords(
        {
            name: (
                (y, x),
                _interp_2d(coarse[name].values, factor, shape).astype(coarse[name].dtype),
                dict(coarse[name].attrs),
            )
            for name in (lat, lon)
        }
    )
