"""Forecast frames for plots: one init time, chosen lead times, observations, panel labels.

Shared by :func:`xnowcast.plotting.plot_forecast` and
:func:`xnowcast.plotting.animate`: they pick the frames to draw with
:func:`select_forecast` and :func:`lead_positions`, the observed frame at each
valid time with :func:`observations_on_grid`, and title their panels with
:func:`lead_label` and :func:`init_label`. Times are UTC (xnowcast's times
are timezone-naive UTC, as in CF files) and labelled so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.conventions import (
    INIT_TIME,
    LEAD_TIME,
    VALID_TIME,
    as_dataarray,
    as_interval,
    as_times,
    find_spatial_dims,
    match_grid,
    normalize_cube,
)

__all__ = [
    "ObservedFrames",
    "colorbar_label",
    "init_label",
    "lead_label",
    "lead_positions",
    "observations_on_grid",
    "select_forecast",
    "select_init",
]


def select_forecast(
    fc: xr.DataArray | xr.Dataset, init_time: Any = None, var: str | None = None
) -> xr.DataArray:
    """The forecast of one init time as ``(lead_time, y, x)``, ready to draw.

    Parameters
    ----------
    fc : DataArray or Dataset
        Forecast ``(lead_time, y, x)`` or ``(init_time, lead_time, y, x)``, in
        any order of dims.
    init_time : time or int, optional
        Which init time of a multi-init forecast (see :func:`select_init`).
    var : str, optional
        Variable of a Dataset (its grid-mapping variable is kept).

    Returns
    -------
    DataArray

    Examples
    --------
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
    >>> fc = xnowcast.forecast(cube, "persistence", n_in=2, n_out=3)
    >>> select_forecast(fc.transpose("x", "y", "lead_time")).dims
    ('lead_time', 'y', 'x')
    """
    da = select_init(_field(fc, var), init_time)
    y_dim, x_dim = find_spatial_dims(da, LEAD_TIME)
    return da.transpose(LEAD_TIME, y_dim, x_dim)


def _field(obj: xr.DataArray | xr.Dataset, var: str | None) -> xr.DataArray:
    """The variable, with its grid-mapping variable kept as a coordinate."""
    if isinstance(obj, xr.Dataset):
        names = [var] if var else [n for n, v in obj.data_vars.items() if v.ndim >= 2]
        gm = {str(obj[n].attrs.get("grid_mapping")) for n in names if n in obj}
        obj = obj.set_coords([g for g in gm if g in obj.data_vars])
    return as_dataarray(obj, var)


def select_init(fc: xr.DataArray, init_time: Any = None) -> xr.DataArray:
    """The ``(lead_time, y, x)`` forecast of one init time.

    ``init_time`` may be a time, a position (int) or ``None`` (the forecast's
    only init time).

    Examples
    --------
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
    >>> fcs = xnowcast.forecast(cube, "persistence", init_times="all", n_in=2, n_out=2)
    >>> str(select_init(fcs, -1).init_time.values)[:16]
    '2024-06-01T12:25'
    """
    if LEAD_TIME not in fc.dims:
        raise ValueError(
            f"expected a forecast with a {LEAD_TIME!r} dimension (as made by xnowcast.forecast), "
            f"got dims {tuple(map(str, fc.dims))}; plot a single frame with .plot()"
        )
    position = isinstance(init_time, (int, np.integer)) and not isinstance(init_time, bool)
    if init_time is not None and not position:
        wanted = as_times(init_time, "init_time")
        if len(wanted) != 1:
            raise ValueError(f"init_time takes one time or position, got {init_time!r}")
        wanted = wanted[0]
    if INIT_TIME not in fc.dims:
        if (
            init_time is not None
            and not position
            and INIT_TIME in fc.coords
            and wanted != pd.Timestamp(fc[INIT_TIME].values)
        ):
            raise ValueError(
                f"this forecast starts at {pd.Timestamp(fc[INIT_TIME].values)}, not {wanted}"
            )
        return fc
    n = fc.sizes[INIT_TIME]
    if init_time is None:
        if n == 1:
            return fc.isel({INIT_TIME: 0})
        first, last = (pd.Timestamp(t) for t in fc[INIT_TIME].values[[0, -1]])
        raise ValueError(
            f"the forecast has {n} init times ({first} to {last}); choose one with "
            "init_time=<time or position> (--init-time on the command line), e.g. "
            "init_time=-1 for the latest"
        )
    if position:
        if not -n <= init_time < n:
            raise ValueError(
                f"init_time position {init_time} is out of range: the forecast has "
                f"{n} init times (positions 0 to {n - 1}, or -1 for the latest)"
            )
        return fc.isel({INIT_TIME: int(init_time)})
    try:
        return fc.sel({INIT_TIME: wanted})
    except KeyError:
        raise ValueError(f"init_time {init_time} is not an init time of the forecast") from None


def lead_positions(fc: xr.DataArray, leads: Sequence[Any] | None) -> list[int]:
    """Positions along ``lead_time`` of ``leads``.

    Integers are lead-time steps counted from 1 (``1`` is the first lead
    time, ``24`` the 24th); strings and timedeltas (``"30min"``) are lead
    times. ``None`` means all.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fc = xr.DataArray(np.zeros((6, 2, 2)), dims=("lead_time", "y", "x"),
    ...                   coords={"lead_time": np.arange(1, 7) * np.timedelta64(5, "m")})
    >>> lead_positions(fc, [1, "30min"])
    [0, 5]
    """
    n = fc.sizes[LEAD_TIME]
    if leads is None:
        return list(range(n))
    lead_values = pd.TimedeltaIndex(fc[LEAD_TIME].values) if LEAD_TIME in fc.coords else None
    out = []
    leads = [leads] if np.ndim(leads) == 0 or isinstance(leads, str) else list(leads)
    if not leads:
        raise ValueError(
            f"leads is empty; give lead steps (1 to {n}) or lead times such as "
            "'30min', or None for all"
        )
    for lead in leads:
        if isinstance(lead, (int, np.integer)) and not isinstance(lead, (bool, np.timedelta64)):
            if not 1 <= lead <= n:
                raise ValueError(
                    f"lead {lead} is out of range: the forecast has lead times "
                    f"1 to {n} (steps counted from 1)"
                )
            out.append(int(lead) - 1)
            continue
        if lead_values is None:
            raise ValueError(
                f"lead {lead!r}: the forecast has no lead_time coordinate; "
                "give steps counted from 1"
            )
        try:
            wanted = as_interval(lead, f"lead {lead!r}")
        except ValueError as err:
            raise ValueError(f"{err}; or give lead steps counted from 1 (1 to {n})") from None
        pos = lead_values.get_indexer([wanted])[0]
        if pos < 0:
            raise ValueError(
                f"lead time {lead!r} is not in the forecast (lead times "
                f"{lead_values[0]} to {lead_values[-1]})"
            )
        out.append(int(pos))
    return out


def lead_label(fc: xr.DataArray, i: int) -> str:
    """Title of the panel at lead position ``i``: lead time in minutes and valid time (UTC).

    Examples
    --------
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
    >>> lead_label(xnowcast.forecast(cube, "persistence", n_in=2, n_out=3), 1)
    '+10 min, valid 12:35 UTC'
    """
    lead = pd.Timedelta(fc[LEAD_TIME].values[i]) if LEAD_TIME in fc.coords else None
    text = f"+{int(lead.total_seconds() // 60)} min" if lead is not None else f"lead {i + 1}"
    if VALID_TIME in fc.coords:
        text += f", valid {pd.Timestamp(fc[VALID_TIME].values[i]):%H:%M} UTC"
    return text


def init_label(fc: xr.DataArray) -> str:
    """Figure title of a forecast of one init time: init time (UTC) and model.

    Examples
    --------
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
    >>> init_label(xnowcast.forecast(cube, "persistence", n_in=2, n_out=3))
    'init 2024-06-01 12:25 UTC, model persistence'
    """
    parts = []
    if INIT_TIME in fc.coords and fc[INIT_TIME].ndim == 0:
        parts.append(f"init {pd.Timestamp(fc[INIT_TIME].values):%Y-%m-%d %H:%M} UTC")
    model = fc.attrs.get("xnowcast_model")
    if model:
        parts.append(f"model {model}")
    return ", ".join(parts)


def colorbar_label(da: xr.DataArray) -> str:
    """``"<long name> (<units>)"`` of a field, for its colour bar.

    Examples
    --------
    >>> import xarray as xr
    >>> colorbar_label(xr.DataArray(0.0, attrs={"long_name": "rain rate", "units": "mm h-1"}))
    'rain rate (mm h-1)'
    """
    name = da.attrs.get("long_name") or da.attrs.get("standard_name") or da.name or "value"
    units = da.attrs.get("units")
    return f"{name} ({units})" if units else str(name)


@dataclass
class ObservedFrames:
    """Observations on a forecast's grid, looked up by valid time.

    Attributes
    ----------
    cube : DataArray
        The observed cube cropped to the forecast's grid.
    time_dim : str
        Its time dimension.

    Examples
    --------
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
    >>> observed = ObservedFrames(cube, "time")
    >>> observed.frame(cube.time.values[0]).shape, observed.frame("2030-01-01")
    ((16, 16), None)
    """

    cube: xr.DataArray
    time_dim: str

    def frame(self, time: Any) -> np.ndarray | None:
        """The observed ``(y, x)`` frame at ``time``, or None when there is none."""
        if time is None:
            return None
        try:
            return np.asarray(self.cube.sel({self.time_dim: time}).values)
        except KeyError:
            return None


def observations_on_grid(
    obs: xr.DataArray | xr.Dataset, fc: xr.DataArray, var: str | None = None
) -> ObservedFrames:
    """The observed cube ``obs`` on the grid of the forecast ``fc`` (``(lead_time, y, x)``).

    Raises
    ------
    ValueError
        When the spatial dims differ or the forecast's grid is not part of
        the observations' grid (see :func:`xnowcast.conventions.match_grid`).

    Examples
    --------
    >>> import xnowcast
    >>> cube = xnowcast.datasets.synthetic_radar(n_times=6, size=16)
    >>> fc = xnowcast.forecast(cube.isel(time=slice(0, 3)), "persistence", n_in=2, n_out=3)
    >>> fc = select_forecast(fc)
    >>> observed = observations_on_grid(cube, fc.isel(x=slice(4, 8)))
    >>> observed.frame(fc.valid_time.values[0]).shape
    (16, 4)
    """
    cube, info = normalize_cube(_field(obs, var), min_frames=1)
    y_dim, x_dim = (str(d) for d in fc.dims[-2:])
    if info.spatial_dims != (y_dim, x_dim):
        raise ValueError(
            f"the observations have spatial dims {info.spatial_dims}, the forecast "
            f"{(y_dim, x_dim)}; rename them to match (.rename)"
        )
    return ObservedFrames(match_grid(fc, cube, y_dim, x_dim), info.time_dim)
