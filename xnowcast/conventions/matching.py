"""Grid matching: observations on a forecast's grid (shared by verification and plotting)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["match_grid"]


def match_grid(fc: xr.DataArray, obs: xr.DataArray, y: str, x: str) -> xr.DataArray:
    """The observations ``obs`` on the grid of the forecast ``fc`` (a crop of a larger grid).

    Grids are matched by their ``y``/``x`` coordinate values (or, without
    coordinates, by size); shared by verification and plotting.

    Raises
    ------
    ValueError
        When a forecast coordinate value is not on the observations' grid.
    """
    for dim in (y, x):
        if dim not in fc.coords or dim not in obs.coords:
            if fc.sizes[dim] != obs.sizes[dim]:
                raise ValueError(
                    f"forecast and observations differ in size along {dim!r} "
                    f"({fc.sizes[dim]} vs {obs.sizes[dim]}) and have no {dim!r} coordinate to "
                    "match them by; give both the same grid"
                )
            continue
        f_vals, o_vals = fc[dim].values, obs[dim].values
        if f_vals.shape == o_vals.shape and np.array_equal(f_vals, o_vals):
            continue
        index = pd.Index(o_vals)
        pos = index.get_indexer(f_vals) if index.is_unique else np.full(f_vals.shape, -1)
        if (pos < 0).any():
            raise ValueError(
                f"the forecast's {dim!r} coordinate is not on the observations' grid "
                f"(forecast {f_vals[0]}..{f_vals[-1]}, observations {o_vals[0]}..{o_vals[-1]}); "
                "regrid one of them, or crop the observations to the forecast"
            )
        obs = obs.isel({dim: pos})
    return obs
