"""The cube: a validated ``(time, y, x)`` DataArray and what was found out about it.

:func:`normalize_cube` is what every other module calls: it picks the variable
of a Dataset (:func:`as_dataarray`), finds the dims by CF metadata
(:mod:`~xnowcast.conventions.cf`), checks the times
(:mod:`~xnowcast.conventions.times`) and the grid, decodes missing values and
adds lat/lon from the grid mapping (:mod:`~xnowcast.conventions.crs`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from xnowcast.conventions.cf import (
    LAT_UNITS,
    LON_UNITS,
    cf_attr,
    find_grid_mapping,
    find_latlon,
    find_spatial_dims,
    find_time_dim,
    spatial_role,
)
from xnowcast.conventions.crs import add_latlon, metres_per_unit
from xnowcast.conventions.times import check_time_index, infer_time_step

__all__ = [
    "EARTH_RADIUS",
    "CubeInfo",
    "as_dataarray",
    "cell_size",
    "check_spatial_index",
    "decode_missing",
    "grid_spacing",
    "normalize_cube",
]


@dataclass(frozen=True)
class CubeInfo:
    """What :func:`normalize_cube` found out about a cube.

    Attributes
    ----------
    time_dim, y_dim, x_dim : str
        Names of the dimensions, as the user named them.
    step : numpy.timedelta64
        The regular time step (most common spacing of the frames).
    lat, lon : str or None
        Names of the latitude and longitude coordinates, when there are any.
    grid_mapping : str or None
        Name of the CF grid-mapping coordinate, when there is one.
    """

    time_dim: str
    y_dim: str
    x_dim: str
    step: np.timedelta64
    lat: str | None = None
    lon: str | None = None
    grid_mapping: str | None = None

    @property
    def spatial_dims(self) -> tuple[str, str]:
        """``(y_dim, x_dim)``."""
        return (self.y_dim, self.x_dim)


def as_dataarray(obj: xr.DataArray | xr.Dataset, var: str | None = None) -> xr.DataArray:
    """Pick the data variable of a Dataset (or return a DataArray as is).

    Parameters
    ----------
    obj : DataArray or Dataset
        The cube, or a Dataset holding it.
    var : str, optional
        Name of the variable; needed when the Dataset holds several gridded
        variables.

    Examples
    --------
    >>> import xarray as xr, numpy as np
    >>> ds = xr.Dataset({"rain": (("time", "y", "x"), np.zeros((2, 3, 4)))})
    >>> as_dataarray(ds).name
    'rain'
    """
    if isinstance(obj, xr.DataArray):
        if var is not None and obj.name is not None and var != obj.name:
            raise ValueError(
                f"var={var!r} was given but the DataArray is named {obj.name!r}; "
                "pass the Dataset, or drop var="
            )
        return obj
    if not isinstance(obj, xr.Dataset):
        raise TypeError(
            f"expected an xarray DataArray or Dataset, got {type(obj).__name__}; "
            "wrap numpy arrays with xr.DataArray(data, dims=('time', 'y', 'x'), coords=...)"
        )
    if var is not None:
        if var not in obj.data_vars:
            raise ValueError(
                f"variable {var!r} is not in the Dataset; its data variables are: "
                f"{', '.join(map(str, obj.data_vars)) or '(none)'}"
            )
        return _with_grid_mapping(obj, var)
    gridded = [name for name, v in obj.data_vars.items() if v.ndim >= 2]
    if len(gridded) == 1:
        return _with_grid_mapping(obj, gridded[0])
    if not gridded:
        raise ValueError("the Dataset holds no gridded data variable (none has 2 or more dims)")
    raise ValueError(
        f"the Dataset holds several gridded variables ({', '.join(map(str, gridded))}); "
        "choose one with var=NAME"
    )


def _with_grid_mapping(ds: xr.Dataset, name: Any) -> xr.DataArray:
    """``ds[name]``, keeping its CF grid-mapping variable as a coordinate.

    A Dataset opened without ``decode_coords="all"`` holds the grid mapping as
    a data variable, which ``ds[name]`` would drop.
    """
    da = ds[name]
    gm = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if isinstance(gm, str) and gm in ds.variables and gm not in da.coords:
        da = da.assign_coords({gm: ds[gm]})
    if (
        isinstance(gm, str)
        and gm in da.coords
        and ("grid_mapping" not in da.attrs or "grid_mapping" in da.encoding)
    ):
        # An attribute of the cube, not an encoding (in both, xarray refuses to write the
        # cube back with to_netcdf or to_zarr); on a new object, so that the user's Dataset
        # stays as it is.
        da = da.copy(deep=False)
        da.attrs["grid_mapping"] = gm
        da.encoding = {k: v for k, v in da.encoding.items() if k != "grid_mapping"}
    return da


#: Name prefix of the dask layer :func:`decode_missing` adds (so that it is added once).
_FINITE_LAYER = "xnowcast-finite-"


def decode_missing(da: xr.DataArray) -> xr.DataArray:
    """CF fill values still in the data become NaN; infinite values become NaN with a warning.

    xarray decodes ``_FillValue``/``missing_value`` when it opens a file; a
    cube built by hand or opened with ``mask_and_scale=False`` still holds
    them (``-9999`` would be taken as rain). Those values become NaN and the
    attributes move to ``encoding`` (written back as they were). ``Inf`` is
    not data either: it becomes NaN, with a ``RuntimeWarning`` saying how
    many (lazily, when a dask-backed cube is computed). Negative values are
    kept as they are (reflectivity in dBZ is negative in light echoes).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray([0.5, -9999.0], dims="x", attrs={"_FillValue": -9999.0})
    >>> out = decode_missing(da)
    >>> out.values.tolist(), out.encoding["_FillValue"], "_FillValue" in out.attrs
    ([0.5, nan], -9999.0, False)
    """
    fills = [
        v
        for key in ("_FillValue", "missing_value")
        for v in np.atleast_1d(da.attrs.get(key, [])).tolist()
        if isinstance(v, (int, float)) and not (isinstance(v, float) and np.isnan(v))
    ]
    if fills:
        encoding = {
            **da.encoding,
            **{k: da.attrs[k] for k in ("_FillValue", "missing_value") if k in da.attrs},
        }
        attrs = {k: v for k, v in da.attrs.items() if k not in ("_FillValue", "missing_value")}
        da = da.where(~da.isin(fills))
        da.attrs, da.encoding = attrs, encoding
    if not np.issubdtype(da.dtype, np.floating):
        return da
    if da.chunks is None and not da.variable._in_memory:
        return da  # a lazily indexed file: read frame by frame later, never loaded here
    if isinstance(da.data, np.ndarray):
        # any() first: the count (a slower reduction) only when there is something to count
        n_inf = int(np.isinf(da.data).sum()) if np.isinf(da.data).any() else 0
        if n_inf:
            _warn_infinite(n_inf)
            da = da.copy(data=np.where(np.isinf(da.data), np.nan, da.data).astype(da.dtype))
        return da
    data = da.data
    if hasattr(data, "map_blocks") and not str(getattr(data, "name", "")).startswith(_FINITE_LAYER):
        import dask.base

        token = dask.base.tokenize(data)
        da = da.copy(
            data=data.map_blocks(_finite_block, dtype=da.dtype, name=_FINITE_LAYER + token)
        )
    return da


def _finite_block(block: np.ndarray) -> np.ndarray:
    inf = np.isinf(block)
    if not inf.any():
        return block
    _warn_infinite(int(inf.sum()))
    return np.where(inf, np.nan, block).astype(block.dtype)


def _warn_infinite(n: int) -> None:
    warnings.warn(
        f"the cube holds {n} infinite value(s); they are treated as missing data (NaN). "
        "Replace them in the input (e.g. cube.where(np.isfinite(cube))) to silence this",
        RuntimeWarning,
        stacklevel=2,
    )


def check_spatial_index(da: xr.DataArray, dim: str) -> None:
    """Refuse a grid coordinate with repeated values or out of order.

    Motion and advection take neighbouring columns for neighbouring places: a
    scrambled or repeated ``x``/``y`` gives a scrambled field. Increasing and
    decreasing coordinates (north-up grids) are both fine.

    Examples
    --------
    >>> import xarray as xr
    >>> da = xr.DataArray([[1.0, 2.0, 3.0]], dims=("y", "x"), coords={"x": [0.0, 2.0, 1.0]})
    >>> check_spatial_index(da, "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the grid coordinate 'x' is not in order (...); sort it with cube.sortby('x')
    """
    if dim not in da.coords or da[dim].ndim != 1 or da.sizes[dim] < 2:
        return
    values = np.asarray(da[dim].values)
    if not np.issubdtype(values.dtype, np.number):
        return
    steps = np.diff(values.astype("float64"))
    if np.isnan(values.astype("float64")).any():
        raise ValueError(f"the grid coordinate {dim!r} holds NaN; give every row/column a place")
    if (steps == 0).any():
        dup = values[1:][steps == 0][:3].tolist()
        raise ValueError(
            f"the grid coordinate {dim!r} repeats values (e.g. {dup}); drop the repeated "
            f"rows/columns with cube.drop_duplicates({dim!r})"
        )
    if not ((steps > 0).all() or (steps < 0).all()):
        at = int(np.nonzero(np.sign(steps) != np.sign(steps[0]))[0][0]) + 1
        raise ValueError(
            f"the grid coordinate {dim!r} is not in order ({values[at - 1].item()} then "
            f"{values[at].item()} at position {at}); sort it with cube.sortby({dim!r})"
        )


def normalize_cube(
    obj: xr.DataArray | xr.Dataset,
    var: str | None = None,
    *,
    min_frames: int = 2,
    need: str | None = None,
) -> tuple[xr.DataArray, CubeInfo]:
    """Validate a cube and return it ordered ``(time, y, x)`` with what was found.

    Nothing is computed: only coordinates are inspected. The returned cube is
    the user's data (same values, names and attributes), transposed when
    needed, with 2-D lat/lon added when they can be derived from the grid
    mapping (:func:`add_latlon`).

    Parameters
    ----------
    obj : DataArray or Dataset
        The cube.
    var : str, optional
        Variable to use when ``obj`` is a Dataset with several.
    min_frames : int
        Fewest frames the caller needs (for example ``n_in`` of a model).
    need : str, optional
        Why the caller needs them and how to need fewer, for the error message
        (default: ``"n_in of the model; give a longer cube or a smaller n_in"``).

    Returns
    -------
    cube : DataArray
    info : CubeInfo

    Raises
    ------
    TypeError
        Non-numeric data, non-datetime time.
    ValueError
        Missing or ambiguous dims, duplicate/unsorted times, irregular time
        step, too few frames.

    Examples
    --------
    >>> import pandas as pd
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube, info = normalize_cube(synthetic_radar(n_times=4, size=32))
    >>> info.time_dim, info.spatial_dims, pd.Timedelta(info.step)
    ('time', ('y', 'x'), Timedelta('0 days 00:05:00'))
    """
    da = as_dataarray(obj, var)
    if not (np.issubdtype(da.dtype, np.number)) or np.issubdtype(da.dtype, np.complexfloating):
        raise TypeError(
            f"cube data must be real numbers, got dtype {da.dtype} (variable {da.name!r}); "
            "convert with .astype('float32') or choose another variable with var="
        )
    time_dim = find_time_dim(da)
    y_dim, x_dim = find_spatial_dims(da, time_dim)
    times = check_time_index(da, time_dim)
    for dim in (y_dim, x_dim):
        check_spatial_index(da, dim)
    da = decode_missing(da)
    if len(times) < min_frames:
        raise ValueError(
            f"the cube has {len(times)} frame(s) along {time_dim!r} but {min_frames} are needed "
            f"({need or 'n_in of the model; give a longer cube or a smaller n_in'})"
        )
    step = infer_time_step(times) if len(times) >= 2 else np.timedelta64(0, "ns")
    if da.dims != (time_dim, y_dim, x_dim):
        da = da.transpose(time_dim, y_dim, x_dim)
    da = add_latlon(da, y_dim=y_dim, x_dim=x_dim)
    lat, lon = find_latlon(da)
    return da, CubeInfo(
        time_dim=time_dim,
        y_dim=y_dim,
        x_dim=x_dim,
        step=step,
        lat=lat,
        lon=lon,
        grid_mapping=find_grid_mapping(da),
    )


def grid_spacing(da: xr.DataArray, info: CubeInfo | None = None) -> tuple[float, float] | None:
    """Grid spacing ``(dy, dx)`` in metres, or ``None`` when not a projected grid.

    ``dy`` is negative when ``y`` decreases along its axis (north-up images).
    A latitude-longitude grid has no one spacing in metres: see :func:`cell_size`.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> grid_spacing(synthetic_radar(n_times=1, size=8))  # 1 km, y decreasing down the rows
    (-1000.0, 1000.0)
    """
    if info is None:
        _, info = normalize_cube(da, min_frames=1)
    out = []
    for dim in info.spatial_dims:
        coord = da.coords.get(dim)
        if coord is None or coord.size < 2 or spatial_role(da, dim) is None:
            return None
        if cf_attr(coord, "units") in LAT_UNITS + LON_UNITS:
            return None
        factor = metres_per_unit(coord)
        if factor is None:
            return None
        out.append(float(coord.values[1] - coord.values[0]) * factor)
    return out[0], out[1]


#: Mean radius of the Earth (m): the size of the cells of latitude-longitude grids.
EARTH_RADIUS = 6_371_000.0


def cell_size(da: xr.DataArray, info: CubeInfo | None = None) -> tuple[float, float] | None:
    """Size ``(dy, dx)`` in metres of a grid cell: the spacing of a projected grid
    (:func:`grid_spacing`) or, on a regular latitude-longitude grid, at its central latitude.

    Whatever needs a typical cell size, not an exact one (the fastest plausible motion in
    pixels per step, the scale of STEPS' motion perturbations), takes it from here. On a
    latitude-longitude grid the east-west size of a cell shrinks with the cosine of the
    latitude (MRMS, 0.01 degrees: 1.11 km north-south everywhere, east-west 1.04 km at
    20 N, 0.88 km at the centre of its grid, 0.64 km at 55 N), and a sphere of
    :data:`EARTH_RADIUS` stands for the ellipsoid. ``None`` on any other grid.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> geo = xr.DataArray(np.zeros((2, 3, 4)), dims=("time", "lat", "lon"), coords={
    ...     "time": pd.date_range("2024-01-01", periods=2, freq="2min"),
    ...     "lat": ("lat", [41.01, 41.0, 40.99], {"units": "degrees_north"}),
    ...     "lon": ("lon", [-100.0, -99.99, -99.98, -99.97], {"units": "degrees_east"})})
    >>> [round(v) for v in cell_size(geo)]
    [-1112, 839]
    """
    spacing = grid_spacing(da, info)
    if spacing is not None:
        return spacing
    if info is None:
        _, info = normalize_cube(da, min_frames=1)
    y = da.coords.get(info.y_dim)
    x = da.coords.get(info.x_dim)
    if y is None or x is None or y.size < 2 or x.size < 2:
        return None
    if cf_attr(y, "units") not in LAT_UNITS or cf_attr(x, "units") not in LON_UNITS:
        return None
    metres = np.pi / 180.0 * EARTH_RADIUS
    lat, lon = y.values.astype(float), x.values.astype(float)
    centre = np.deg2rad((lat[0] + lat[-1]) / 2.0)
    return float(lat[1] - lat[0]) * metres, float(lon[1] - lon[0]) * metres * float(np.cos(centre))
