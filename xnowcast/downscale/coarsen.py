"""Training pairs for downscaling: a fine cube and its area-averaged coarse version."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.checks import choice, positive_int
from xnowcast.conventions import as_dataarray, find_grid_mapping, find_latlon
from xnowcast.downscale.grid import spatial_dims

__all__ = ["coarsened"]

_BOUNDARIES = ("trim", "pad")


def coarsened(
    cube: xr.DataArray | xr.Dataset,
    factor: int,
    *,
    boundary: str = "trim",
    var: str | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """``(low, high)`` training pair: ``cube`` area-averaged over ``factor x factor`` blocks.

    Each coarse cell is the mean of the valid (non-NaN) fine cells it covers,
    so the mean of a coarse cell equals the mean of its fine cells and rain is
    neither made nor lost; a coarse cell whose fine cells are all NaN is NaN.
    Lazy (dask) cubes stay lazy.

    Parameters
    ----------
    cube : DataArray or Dataset
        Fine cube, e.g. ``(time, y, x)``; any other dims are kept.
    factor : int
        Fine cells per coarse cell along y and x (the scale to learn).
    boundary : {"trim", "pad"}
        Grid sizes that are not a multiple of ``factor``: ``"trim"`` drops the
        last ``size % factor`` rows/columns, from ``high`` as well, so that
        every coarse cell covers exactly ``factor x factor`` fine cells;
        ``"pad"`` keeps the whole fine grid (``high`` is ``cube``) and averages
        the last, partial coarse cells over the fine cells they have (their
        coordinates are the centres of the whole virtual cells). A network's
        output for the padded grid is cut back to the fine grid.
    var : str, optional
        Variable of a Dataset.

    Returns
    -------
    low, high : xarray.DataArray
        ``low`` on the coarse grid (y/x the block centres, lat/lon from the
        grid mapping when there is one, else block means), attributes of
        ``cube`` plus ``coarsening_factor``; ``high`` the fine cube
        (trimmed with ``boundary="trim"``).

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=2, size=18)
    >>> low, high = coarsened(cube, 4)
    >>> low.shape, high.shape
    ((2, 4, 4), (2, 16, 16))
    >>> import numpy as np
    >>> bool(np.isclose(low[0, 1, 2], high[0, 4:8, 8:12].mean()))  # the mean of its fine cells
    True
    >>> coarsened(cube, 4, boundary="pad")[0].shape
    (2, 5, 5)
    """
    da = as_dataarray(cube, var)
    factor = positive_int(factor, "factor")
    boundary = choice(boundary, "boundary", _BOUNDARIES)
    y, x = spatial_dims(da)
    sizes = {y: da.sizes[y], x: da.sizes[x]}
    for dim, n in sizes.items():
        if n < factor:
            raise ValueError(
                f"the cube has {n} cells along {dim!r}, fewer than factor={factor}; use a "
                "smaller factor or a larger cube"
            )
    high = da
    if boundary == "trim":
        high = da.isel({d: slice(0, n - n % factor) for d, n in sizes.items()})
    window = {y: factor, x: factor}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks: NaN, as meant
        coarse = high.coarsen(window, boundary=boundary, coord_func="mean")  # type: ignore[arg-type]
        low = coarse.mean()  # NaN skipped (float data)
    low = _coarse_coords(low, high, factor, y, x)
    low.attrs = {**da.attrs, "coarsening_factor": factor}
    return low, high


def _coarse_coords(low: xr.DataArray, high: xr.DataArray, factor: int, y: str, x: str):
    """Block-centre y/x (partial blocks included) and lat/lon of the coarse grid."""
    updates: dict[str, Any] = {}
    for dim in (y, x):
        if dim in high.coords and high[dim].ndim == 1 and high.sizes[dim] >= 2:
            centres = _block_centres(high[dim].values, factor, low.sizes[dim])
            updates[dim] = (dim, centres.astype(high[dim].dtype), dict(high[dim].attrs))
    if updates:
        low = low.assign_coords(updates)
    lat, lon = find_latlon(high)
    if lat is not None and lon is not None and find_grid_mapping(high) is not None:
        from xnowcast.conventions import add_latlon

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            derived = add_latlon(low.drop_vars([lat, lon]), y_dim=y, x_dim=x)
        if "lat" in derived.coords and "lon" in derived.coords:
            names = {k: v for k, v in (("lat", lat), ("lon", lon)) if k != v}
            low = derived.rename(names) if names else derived
    return low


def _block_centres(fine: np.ndarray, factor: int, n_coarse: int) -> np.ndarray:
    """Centres of ``n_coarse`` blocks of ``factor`` fine cells (extended past the end)."""
    fine = np.asarray(fine, dtype="float64")
    step = fine[1] - fine[0]
    first = fine[0] + (factor - 1) / 2 * step
    centres = first + np.arange(n_coarse) * factor * step
    whole = min(n_coarse, fine.size // factor)
    if whole:  # whole blocks: the exact mean of their cells (follows irregular grids)
        centres[:whole] = fine[: whole * factor].reshape(whole, factor).mean(axis=1)
    return centres
