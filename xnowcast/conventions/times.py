"""Time arguments and time coordinates: what users name as times and intervals, and a cube's times.

Times are timezone-naive UTC, as in CF files; a number is never taken for a
time or an interval (pandas would read it as nanoseconds).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["as_interval", "as_times", "check_time_index", "infer_time_step"]


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


def _tz_hint(name: str) -> str:
    return (
        "xnowcast works with timezone-naive times (UTC, as in CF files): convert with "
        f".assign_coords({name}=cube.indexes[{name!r}].tz_convert(None))"
    )


def check_time_index(da: xr.DataArray, time_dim: str) -> pd.DatetimeIndex:
    """The cube's times, refused unless timezone-naive datetimes, unique and increasing.

    Examples
    --------
    >>> import pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2024-06-01 12:05", "2024-06-01 12:00"])
    >>> check_time_index(xr.DataArray([0, 1], dims="time", coords={"time": t}), "time")
    Traceback (most recent call last):
    ...
    ValueError: times are not increasing: 2024-06-01 12:05:00 is followed by 2024-06-01 12:00:00; sort the cube with cube.sortby('time')
    """
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
