"""The cube data model: how xnowcast finds time, space and geography in xarray.

A *cube* is a :class:`xarray.DataArray` of frames with one time dimension and
two spatial dimensions (``time, y, x``), optionally with 2-D ``lat``/``lon``
coordinates and a CF grid-mapping variable. This module is the only place that
knows the conventions; everything else calls :func:`normalize_cube`.

Coordinates are found by CF metadata first (``standard_name``, ``axis``,
``units``), by name second:

=========  =========================================================================
role       recognised by
=========  =========================================================================
time       datetime64 dimension coordinate, ``standard_name="time"``, ``axis="T"``,
           or a dimension named ``time``/``t``/``valid_time``
y          ``axis="Y"``, ``standard_name`` in {projection_y_coordinate, grid_latitude,
           latitude}, ``units="degrees_north"``, or named y/lat/latitude/rlat/northing
x          as y with X/longitude/east
lat / lon  ``standard_name`` latitude/longitude or units degrees_north/east
=========  =========================================================================

Forecast output conventions (shared by every model)
---------------------------------------------------
dims ``(init_time, lead_time, y, x)`` (or ``(lead_time, y, x)`` for one init
time); ``lead_time`` is ``timedelta64`` with ``standard_name=forecast_period``;
``init_time`` is the time of the last input frame with
``standard_name=forecast_reference_time``; ``valid_time = init_time + lead_time``.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "INIT_TIME",
    "LEAD_TIME",
    "VALID_TIME",
    "CubeInfo",
    "add_latlon",
    "as_dataarray",
    "as_interval",
    "as_times",
    "check_spatial_index",
    "decode_missing",
    "find_latlon",
    "find_spatial_dims",
    "find_time_dim",
    "forecast_attrs",
    "forecast_coords",
    "grid_crs",
    "grid_spacing",
    "infer_time_step",
    "match_grid",
    "metres_per_unit",
    "normalize_cube",
]

INIT_TIME = "init_time"
LEAD_TIME = "lead_time"
VALID_TIME = "valid_time"

_TIME_NAMES = ("time", "t", "valid_time", "datetime")
_Y_NAMES = ("y", "lat", "latitude", "rlat", "northing", "south_north")
_X_NAMES = ("x", "lon", "longitude", "rlon", "easting", "west_east")
_Y_STANDARD = ("projection_y_coordinate", "grid_latitude", "latitude")
_X_STANDARD = ("projection_x_coordinate", "grid_longitude", "longitude")
_LAT_UNITS = ("degrees_north", "degree_north", "degree_n", "degrees_n", "degreen", "degreesn")
_LON_UNITS = ("degrees_east", "degree_east", "degree_e", "degrees_e", "degreee", "degreese")
_LENGTH_UNITS_IN_M = {
    "m": 1.0,
    "metre": 1.0,
    "meter": 1.0,
    "metres": 1.0,
    "meters": 1.0,
    "km": 1000.0,
    "kilometre": 1000.0,
    "kilometer": 1000.0,
    "kilometres": 1000.0,
    "kilometers": 1000.0,
}


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


def _is_datetime(dtype: Any) -> bool:
    """datetime64, timezone-naive or timezone-aware (pandas' ``DatetimeTZDtype``)."""
    return isinstance(dtype, pd.DatetimeTZDtype) or (
        isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.datetime64)
    )


def _tz_hint(name: str) -> str:
    return (
        "xnowcast works with timezone-naive times (UTC, as in CF files): convert with "
        f".assign_coords({name}=cube.indexes[{name!r}].tz_convert(None))"
    )


def _attr(obj: xr.DataArray, key: str) -> str:
    value = obj.attrs.get(key, "")
    return value.strip().lower() if isinstance(value, str) else ""


def find_time_dim(da: xr.DataArray) -> str:
    """Name of the time dimension.

    Raises
    ------
    ValueError
        When no dimension can be identified as time.
    """
    candidates = []
    for dim in da.dims:
        coord = da.coords.get(dim)
        if (
            coord is not None
            and (
                _is_datetime(coord.dtype)
                or _attr(coord, "standard_name") == "time"
                or _attr(coord, "axis") == "t"
            )
        ) or str(dim).lower() in _TIME_NAMES:
            candidates.append(dim)
    if not candidates:
        raise ValueError(
            f"no time dimension found among dims {tuple(map(str, da.dims))}; a cube needs a "
            "'time' dimension with datetime64 values (rename yours with .rename({'<dim>': "
            "'time'}), or add one to a single frame with .expand_dims(time=[timestamp]))"
        )
    if len(candidates) > 1:
        raise ValueError(
            f"several dimensions look like time: {candidates}; keep one "
            "(select the others away with .isel)"
        )
    return str(candidates[0])


def _spatial_role(da: xr.DataArray, dim: str) -> str | None:
    coord = da.coords.get(dim)
    if coord is not None:
        axis = _attr(coord, "axis")
        std = _attr(coord, "standard_name")
        units = _attr(coord, "units")
        if axis == "y" or std in _Y_STANDARD or units in _LAT_UNITS:
            return "y"
        if axis == "x" or std in _X_STANDARD or units in _LON_UNITS:
            return "x"
    name = str(dim).lower()
    if name in _Y_NAMES:
        return "y"
    if name in _X_NAMES:
        return "x"
    return None


def find_spatial_dims(da: xr.DataArray, time_dim: str | None = None) -> tuple[str, str]:
    """Names of the ``(y, x)`` dimensions.

    Raises
    ------
    ValueError
        When the cube does not have exactly two recognisable spatial dims.
    """
    time_dim = time_dim or find_time_dim(da)
    others = [str(d) for d in da.dims if d != time_dim]
    roles = {d: _spatial_role(da, d) for d in others}
    ys = [d for d, r in roles.items() if r == "y"]
    xs = [d for d, r in roles.items() if r == "x"]
    if len(ys) == 1 and len(xs) == 1 and len(others) == 2:
        return ys[0], xs[0]
    if len(others) != 2:
        extra = [d for d in others if d not in ys[:1] + xs[:1]]
        raise ValueError(
            f"a cube has dims (time, y, x); this one has {tuple(map(str, da.dims))}. Select "
            f"the extra dims {extra} away with .isel/.sel (or stack them into time)"
        )
    raise ValueError(
        f"cannot tell which of the dims {others} is y and which is x; name them 'y' and 'x' "
        "(.rename) or give their coordinates CF attributes (axis='Y'/'X' or standard_name)"
    )


def find_latlon(da: xr.DataArray) -> tuple[str | None, str | None]:
    """Names of the latitude and longitude coordinates (``None`` when absent)."""
    lat = lon = None
    for name, coord in da.coords.items():
        std, units = _attr(coord, "standard_name"), _attr(coord, "units")
        if lat is None and (std == "latitude" or units in _LAT_UNITS):
            lat = str(name)
        elif lon is None and (std == "longitude" or units in _LON_UNITS):
            lon = str(name)
    if lat is None:
        lat = next((n for n in ("lat", "latitude") if n in da.coords), None)
    if lon is None:
        lon = next((n for n in ("lon", "longitude") if n in da.coords), None)
    return lat, lon


def _find_grid_mapping(da: xr.DataArray) -> str | None:
    name = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if isinstance(name, str) and name in da.coords:
        return name
    for cname, coord in da.coords.items():
        if coord.ndim == 0 and "grid_mapping_name" in coord.attrs:
            return str(cname)
    return None


def infer_time_step(times: pd.DatetimeIndex | np.ndarray) -> np.timedelta64:
    """The regular step of a time index (its most common spacing).

    Gaps that are whole multiples of the step are allowed (windows skip them);
    any other spacing is an irregular step and raises.

    Raises
    ------
    ValueError
        When a spacing is not a whole multiple of the step; the message names
        the two frames.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.to_datetime(["2020-01-01 00:00", "2020-01-01 00:05", "2020-01-01 00:20"])
    >>> pd.Timedelta(infer_time_step(t))
    Timedelta('0 days 00:05:00')
    """
    values = pd.DatetimeIndex(times).values
    if len(values) < 2:
        raise ValueError("need at least two frames to know the time step")
    diffs = np.diff(values)
    uniq, counts = np.unique(diffs, return_counts=True)
    step = uniq[np.argmax(counts)]  # ties resolve to the smallest spacing
    bad = np.nonzero(diffs % step != np.timedelta64(0, "ns"))[0]
    if bad.size:
        i = int(bad[0])
        t0, t1 = pd.Timestamp(values[i]), pd.Timestamp(values[i + 1])
        raise ValueError(
            f"irregular time step: frames {t0} and {t1} are {pd.Timedelta(diffs[i])} apart, "
            f"not a whole multiple of the cube's step {pd.Timedelta(step)} "
            f"({bad.size} such gap(s)). Round the times (cube.assign_coords(time=cube.time.dt."
            f"round('{pd.Timedelta(step).resolution_string}'))) or resample to a regular step"
        )
    return step.astype("timedelta64[ns]")


def as_times(value: Any, name: str = "time") -> pd.DatetimeIndex:
    """Times a user named (one or several), as a timezone-naive ``DatetimeIndex``.

    Accepts datetimes, ``numpy.datetime64``, date strings and lists or arrays
    of them (a time coordinate too). Numbers are refused (they would be read
    as nanoseconds since 1970), as are timezone-aware times (cube times are
    timezone-naive UTC).

    Raises
    ------
    TypeError
        Numbers, booleans, ``None`` or timezone-aware times.
    ValueError
        Text that is not a date.

    Examples
    --------
    >>> as_times(["2024-06-01 12:05", "2024-06-01T12:10"])[1]
    Timestamp('2024-06-01 12:10:00')
    """
    if isinstance(value, (xr.DataArray, xr.Variable, pd.Series)):
        value = value.values
    if np.ndim(value) == 0:
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif np.asarray(value).dtype.kind == "M":  # datetime64 array, or a DatetimeIndex
        items = list(
            pd.DatetimeIndex(np.ravel(value)) if not isinstance(value, pd.Index) else value
        )
    else:
        items = list(np.ravel(value))
    for item in items:
        if item is None or isinstance(item, (bool, np.bool_, int, float, np.number)):
            raise TypeError(
                f"{name}: expected times (datetimes or date strings such as "
                f"'2024-06-01T12:00'), got {value!r}; to pick frames by position use "
                "cube.time.values[i]"
            )
    try:
        times = pd.DatetimeIndex([pd.Timestamp(item) for item in items])
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name}: expected times (datetimes or date strings such as '2024-06-01T12:00'), "
            f"got {value!r} ({err})"
        ) from None
    if times.tz is not None:
        raise TypeError(
            f"{name} {value!r} is timezone-aware; xnowcast works with timezone-naive times "
            "(UTC, as in CF files): pass pd.Timestamp(t).tz_convert(None)"
        )
    if times.hasnans:
        raise ValueError(f"{name} holds NaT: {value!r}")
    return times


def as_interval(value: Any, name: str, example: str = "30min") -> pd.Timedelta:
    """A positive time interval a user named (``"30min"``, ``pd.Timedelta``, ``timedelta64``).

    Bare numbers (``30``, ``"30"``) are refused: pandas would read them as
    nanoseconds.

    Raises
    ------
    ValueError
        Not an interval, a bare number, or not positive.

    Examples
    --------
    >>> as_interval("10min", "max_gap")
    Timedelta('0 days 00:10:00')
    """
    text = value.strip() if isinstance(value, str) else None
    bare = isinstance(value, (bool, int, float, np.bool_, np.number)) and not isinstance(
        value, np.timedelta64
    )
    if text is not None:
        with contextlib.suppress(ValueError):
            bare = bool(np.isfinite(float(text)))
    if bare:
        raise ValueError(
            f"{name} must be a time interval with a unit, such as {example!r} or '1h', got "
            f"{value!r} (a bare number has no unit)"
        )
    try:
        td = pd.Timedelta(value)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a time interval such as {example!r} or '1h', got {value!r} ({err})"
        ) from None
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise ValueError(f"{name} must be a positive interval, got {value!r}")
    return td


def _check_time_index(da: xr.DataArray, time_dim: str) -> pd.DatetimeIndex:
    if time_dim not in da.coords:
        raise ValueError(
            f"the time dimension {time_dim!r} has no coordinate values; assign them with "
            f".assign_coords({time_dim}=pd.date_range(...))"
        )
    coord = da[time_dim]
    if isinstance(coord.dtype, pd.DatetimeTZDtype):
        raise TypeError(
            f"the time coordinate {time_dim!r} is timezone-aware ({coord.dtype}); "
            + _tz_hint(time_dim)
        )
    if not np.issubdtype(coord.dtype, np.datetime64):
        hint = (
            "convert cftime dates with cube.convert_calendar('standard') or "
            "cube.indexes['time'].to_datetimeindex()"
            if coord.dtype == object
            else "decode them with xr.decode_cf(...) or assign datetimes with "
            ".assign_coords(time=pd.to_datetime(...))"
        )
        raise TypeError(
            f"the time coordinate {time_dim!r} must hold datetime64 values, got {coord.dtype}; "
            f"{hint}"
        )
    times = pd.DatetimeIndex(coord.values)
    if times.hasnans:
        raise ValueError(f"the time coordinate {time_dim!r} holds NaT; drop those frames")
    dup = times[times.duplicated()]
    if len(dup):
        raise ValueError(
            f"duplicate times in {time_dim!r}: {', '.join(str(t) for t in dup[:5].unique())}"
            f"{' ...' if len(dup) > 5 else ''}; drop them, e.g. "
            f"cube.drop_duplicates({time_dim!r})"
        )
    if not times.is_monotonic_increasing:
        i = int(np.nonzero(np.diff(times.values) < np.timedelta64(0, "ns"))[0][0])
        raise ValueError(
            f"times are not increasing: {times[i]} is followed by {times[i + 1]}; sort the "
            f"cube with cube.sortby({time_dim!r})"
        )
    return times


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
        n_inf = int(np.isinf(da.data).sum())
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
    times = _check_time_index(da, time_dim)
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
        grid_mapping=_find_grid_mapping(da),
    )


def grid_crs(da: xr.DataArray):
    """The :class:`pyproj.CRS` of the cube's grid mapping, or ``None``.

    Reads the CF grid-mapping coordinate (``crs_wkt``/``spatial_ref`` first,
    then the CF grid-mapping parameters).
    """
    gm = _find_grid_mapping(da)
    if gm is None:
        return None
    from pyproj import CRS

    attrs = dict(da.coords[gm].attrs)
    for key in ("crs_wkt", "spatial_ref"):
        if isinstance(attrs.get(key), str):
            return CRS.from_wkt(attrs[key])
    cf = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in attrs.items()}
    return CRS.from_cf(cf)


def metres_per_unit(coord: xr.DataArray) -> float | None:
    """Metres per unit of a projected coordinate (``None`` when not a length).

    Examples
    --------
    >>> import xarray as xr
    >>> metres_per_unit(xr.DataArray([0.0, 0.5], dims="x", attrs={"units": "km"}))
    1000.0
    """
    units = _attr(coord, "units")
    if not units:
        return 1.0 if _attr(coord, "standard_name").startswith("projection_") else None
    return _LENGTH_UNITS_IN_M.get(units)


def grid_spacing(da: xr.DataArray, info: CubeInfo | None = None) -> tuple[float, float] | None:
    """Grid spacing ``(dy, dx)`` in metres, or ``None`` when not a projected grid.

    ``dy`` is negative when ``y`` decreases along its axis (north-up images).
    """
    if info is None:
        _, info = normalize_cube(da, min_frames=1)
    out = []
    for dim in info.spatial_dims:
        coord = da.coords.get(dim)
        if coord is None or coord.size < 2 or _spatial_role(da, dim) is None:
            return None
        if _attr(coord, "units") in _LAT_UNITS + _LON_UNITS:
            return None
        factor = metres_per_unit(coord)
        if factor is None:
            return None
        out.append(float(coord.values[1] - coord.values[0]) * factor)
    return out[0], out[1]


def add_latlon(da: xr.DataArray, *, y_dim: str = "y", x_dim: str = "x") -> xr.DataArray:
    """Add 2-D ``lat``/``lon`` coordinates derived from the grid mapping.

    Does nothing when the cube already has lat/lon, or has no CF grid mapping
    and projected x/y. Unit-aware: x/y in km (as in the BOM files) are scaled
    to metres before projecting.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=2, size=16).drop_vars(["lat", "lon"])
    >>> "lat" in add_latlon(cube).coords
    True
    """
    lat, lon = find_latlon(da)
    if lat is not None and lon is not None:
        return da
    try:
        crs = grid_crs(da)
    except Exception as err:
        warnings.warn(
            f"cannot read the grid mapping {_find_grid_mapping(da)!r} ({err}); the cube gets no "
            "lat/lon coordinates. Fix its CF attributes (grid_mapping_name and parameters, or "
            "crs_wkt), or add lat/lon yourself with .assign_coords(lat=..., lon=...)",
            UserWarning,
            stacklevel=2,
        )
        return da
    if crs is None or y_dim not in da.coords or x_dim not in da.coords:
        return da
    scales = [metres_per_unit(da[d]) for d in (y_dim, x_dim)]
    if None in scales:
        return da
    from pyproj import Transformer

    to_geo = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    xx, yy = np.meshgrid(
        da[x_dim].values.astype("float64") * scales[1],
        da[y_dim].values.astype("float64") * scales[0],
    )
    lons, lats = to_geo.transform(xx, yy)
    return da.assign_coords(
        lat=(
            (y_dim, x_dim),
            lats.astype("float32"),
            {"standard_name": "latitude", "units": "degrees_north", "long_name": "latitude"},
        ),
        lon=(
            (y_dim, x_dim),
            lons.astype("float32"),
            {"standard_name": "longitude", "units": "degrees_east", "long_name": "longitude"},
        ),
    )


def forecast_coords(
    init_times: pd.DatetimeIndex | np.ndarray,
    step: np.timedelta64,
    n_out: int,
) -> dict[str, Any]:
    """The ``init_time``, ``lead_time`` and ``valid_time`` coordinates of a forecast.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> c = forecast_coords(pd.to_datetime(["2020-01-01"]), np.timedelta64(5, "m"), 3)
    >>> list(pd.to_timedelta(c["lead_time"][1]).total_seconds())
    [300.0, 600.0, 900.0]
    """
    init = pd.DatetimeIndex(init_times).values.astype("datetime64[ns]")
    lead = (np.arange(1, n_out + 1) * step).astype("timedelta64[ns]")
    valid = init[:, None] + lead[None, :]
    return {
        INIT_TIME: (
            INIT_TIME,
            init,
            {
                "standard_name": "forecast_reference_time",
                "long_name": "forecast initialisation time (time of the last input frame)",
            },
        ),
        LEAD_TIME: (
            LEAD_TIME,
            lead,
            {
                "standard_name": "forecast_period",
                "long_name": "lead time",
            },
        ),
        VALID_TIME: (
            (INIT_TIME, LEAD_TIME),
            valid,
            {
                "standard_name": "time",
                "long_name": "valid time (init_time + lead_time)",
            },
        ),
    }


def forecast_attrs(source: xr.DataArray, model_name: str, model_params: dict[str, Any]) -> dict:
    """Attributes of a forecast: the input's, plus what made the forecast.

    ``xnowcast_model_params`` is JSON text so that it survives netCDF.
    """
    from xnowcast._version import __version__

    attrs = dict(source.attrs)
    attrs.update(
        xnowcast_model=model_name,
        xnowcast_model_params=json.dumps(model_params, sort_keys=True, default=str),
        xnowcast_version=__version__,
    )
    history = attrs.get("history", "")
    note = f"{pd.Timestamp.now('UTC'):%Y-%m-%dT%H:%M:%SZ} xnowcast {__version__}: {model_name} forecast"
    attrs["history"] = f"{history}\n{note}" if history else note
    return attrs


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
