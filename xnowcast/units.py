"""Physical quantities of a cube: rain rate, accumulation, reflectivity, and conversions.

xnowcast's readers report what a file holds (nothing is converted silently);
this module says what that is and turns it into a rain rate when asked.

============  ===========================================  ==========================
quantity      recognised by                                to rain rate (mm h-1)
============  ===========================================  ==========================
rain rate     units mm h-1 (mm/h, kg m-2 h-1, kg m-2 s-1,  unit factor
              mm s-1, m s-1) or standard_name
              ``rainfall_rate``/``lwe_precipitation_rate``
accumulation  units mm, kg m-2 (or m) or standard_name     divided by the period, from
              ``precipitation_amount``                     a ``start_time`` coordinate,
                                                           ``cell_methods`` ``(interval:
                                                           N min)`` or ``period=``
reflectivity  units dBZ or standard_name                   Z-R relation Z = a R^b
              ``equivalent_reflectivity_factor``           (``zr=(a, b)``, default
                                                           Marshall-Palmer 200, 1.6)
============  ===========================================  ==========================

Functions that apply rain-rate defaults (thresholds, colour levels, rain
amounts) call :func:`rain_rate_for`: it passes rain rates (and cubes without
units) through, converts a known quantity with a warning that says so, and
refuses what it cannot convert with the fix in the message.

Examples
--------
>>> import numpy as np, pandas as pd, xarray as xr
>>> acc = xr.DataArray(
...     np.full((1, 2, 2), 0.5), dims=("time", "y", "x"),
...     coords={"time": pd.to_datetime(["2018-06-16 10:06"]),
...             "start_time": ("time", pd.to_datetime(["2018-06-16 10:00"]))},
...     attrs={"units": "kg m-2", "standard_name": "precipitation_amount"})
>>> rate = to_rain_rate(acc)
>>> float(rate[0, 0, 0]), rate.attrs["units"]
(5.0, 'mm h-1')
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import real
from xnowcast.conventions import as_dataarray, as_interval

__all__ = [
    "RAIN_RATE_UNITS",
    "Quantity",
    "accumulation_period",
    "check_same_units",
    "describe_quantity",
    "quantity_of",
    "rain_rate_for",
    "rain_rate_pair",
    "to_rain_rate",
]

#: Units of rain rates and their factor to mm h-1 (keys normalised by :func:`_norm`).
RAIN_RATE_UNITS: dict[str, float] = {
    "mm h-1": 1.0,
    "mm/h": 1.0,
    "mm hr-1": 1.0,
    "mm/hr": 1.0,
    "mm h**-1": 1.0,
    "mm h^-1": 1.0,
    "kg m-2 h-1": 1.0,
    "kg m-2 s-1": 3600.0,
    "mm s-1": 3600.0,
    "mm/s": 3600.0,
    "m s-1": 3.6e6,
    "m/s": 3.6e6,
}
#: Units of accumulations and their factor to mm.
AMOUNT_UNITS: dict[str, float] = {
    "mm": 1.0,
    "kg m-2": 1.0,
    "kg/m2": 1.0,
    "kg m**-2": 1.0,
    "kg m^-2": 1.0,
    "m": 1000.0,
}
REFLECTIVITY_UNITS = ("dbz",)
_RATE_NAMES = ("rainfall_rate", "lwe_precipitation_rate", "precipitation_flux")
_AMOUNT_NAMES = ("precipitation_amount", "lwe_thickness_of_precipitation_amount")
_DBZ_NAMES = ("equivalent_reflectivity_factor",)
_INTERVAL = re.compile(r"time\s*:\s*sum[^()]*\(\s*interval\s*:\s*([^)]+)\)", re.IGNORECASE)
RATE_ATTRS = {"units": "mm h-1", "standard_name": "rainfall_rate", "long_name": "rain rate"}


@dataclass(frozen=True)
class Quantity:
    """What a cube holds.

    Attributes
    ----------
    kind : str
        ``"rain_rate"``, ``"accumulation"``, ``"reflectivity"``, ``"other"``
        (units xnowcast does not convert) or ``"unknown"`` (no units).
    units : str
        The cube's units attribute (``""`` when absent).
    factor : float
        To mm h-1 (rain rates) or mm (accumulations); 1 otherwise.
    """

    kind: str
    units: str
    factor: float = 1.0


def _norm(units: Any) -> str:
    return " ".join(str(units).strip().lower().split()) if units is not None else ""


def quantity_of(cube: xr.DataArray) -> Quantity:
    """What the cube holds, from its ``units`` and ``standard_name``.

    Examples
    --------
    >>> import xarray as xr
    >>> quantity_of(xr.DataArray(0.0, attrs={"units": "kg m-2"})).kind
    'accumulation'
    >>> quantity_of(xr.DataArray(0.0, attrs={"units": "dBZ"})).kind
    'reflectivity'
    >>> quantity_of(xr.DataArray(0.0)).kind
    'unknown'
    """
    units = str(cube.attrs.get("units", "") or "").strip()
    key = _norm(units)
    std = _norm(cube.attrs.get("standard_name", ""))
    if key in RAIN_RATE_UNITS:
        return Quantity("rain_rate", units, RAIN_RATE_UNITS[key])
    if key in AMOUNT_UNITS and std not in _RATE_NAMES:
        return Quantity("accumulation", units, AMOUNT_UNITS[key])
    if key in REFLECTIVITY_UNITS or (not key and std in _DBZ_NAMES):
        return Quantity("reflectivity", units)
    if not key:
        if std in _RATE_NAMES:
            return Quantity("rain_rate", units)
        if std in _AMOUNT_NAMES:
            return Quantity("accumulation", units)
        return Quantity("unknown", units)
    return Quantity("other", units)


def accumulation_period(cube: xr.DataArray, period: Any = None) -> xr.DataArray | pd.Timedelta:
    """The accumulation period of each frame (a ``timedelta64`` DataArray along time) or one period.

    Found, in order, from ``period`` (``"6min"``), a ``start_time``
    coordinate along time (``time - start_time``, as in the BOM files and
    xnowcast's readers), or ``cell_methods`` ``"time: sum (interval: 6
    minutes)"``.

    Raises
    ------
    ValueError
        No period can be found (the message says how to give one), or a
        period is not positive.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> acc = xr.DataArray(np.zeros((1, 1)), dims=("y", "x"),
    ...                    attrs={"cell_methods": "time: sum (interval: 5 minutes)"})
    >>> accumulation_period(acc)
    Timedelta('0 days 00:05:00')
    """
    if period is not None:
        return as_interval(period, "period", "6min")
    if "start_time" in cube.coords and "time" in cube.coords:
        span = cube["time"] - cube["start_time"]
        if np.issubdtype(span.dtype, np.timedelta64):
            if bool((span <= np.timedelta64(0, "ns")).any()):
                raise ValueError(
                    "the cube's start_time is not before its time for some frames; fix "
                    "start_time or pass period='...'"
                )
            return span.reset_coords(drop=True)
    match = _INTERVAL.search(str(cube.attrs.get("cell_methods", "")))
    if match is not None:
        text = match.group(1).strip()
        number, _, unit = text.partition(" ")
        try:
            return pd.Timedelta(float(number), unit=_TIME_UNITS.get(unit.strip().lower(), unit))
        except (ValueError, TypeError):
            pass
    raise ValueError(
        f"the cube holds accumulations ({describe_quantity(cube)}) but their period is not "
        "known (no start_time coordinate, no 'time: sum (interval: ...)' cell_methods); "
        "pass it: to_rain_rate(cube, period='6min')"
    )


_TIME_UNITS = {
    "minutes": "min",
    "minute": "min",
    "mins": "min",
    "min": "min",
    "hours": "h",
    "hour": "h",
    "h": "h",
    "seconds": "s",
    "second": "s",
    "s": "s",
}


def describe_quantity(cube: xr.DataArray) -> str:
    """A short description of what the cube holds, for messages.

    Examples
    --------
    >>> import xarray as xr
    >>> describe_quantity(xr.DataArray(0.0, attrs={"units": "kg m-2",
    ...                   "standard_name": "precipitation_amount"}))
    'precipitation_amount in kg m-2'
    """
    std = cube.attrs.get("standard_name") or cube.name or "values"
    units = cube.attrs.get("units")
    return f"{std} in {units}" if units else f"{std} without units"


def _hours(period: xr.DataArray | pd.Timedelta) -> Any:
    if isinstance(period, pd.Timedelta):
        return period / pd.Timedelta(hours=1)
    return period / np.timedelta64(1, "h")


def _zr(zr: Any) -> tuple[float, float]:
    if not isinstance(zr, (tuple, list)) or len(zr) != 2:
        raise TypeError(f"zr must be a pair (a, b) of the Z-R relation Z = a R^b, got {zr!r}")
    a = real(zr[0], "zr[0] (a)", low=0.0, low_inclusive=False)
    b = real(zr[1], "zr[1] (b)", low=0.0, low_inclusive=False)
    return a, b


def to_rain_rate(
    cube: xr.DataArray | xr.Dataset,
    zr: tuple[float, float] = (200.0, 1.6),
    *,
    period: Any = None,
    undetect: float | None = None,
    var: str | None = None,
) -> xr.DataArray:
    """The cube as a rain rate in mm h-1 (lazy with dask; NaN stays NaN).

    Parameters
    ----------
    cube : DataArray or Dataset
        Rain rates in any unit of :data:`RAIN_RATE_UNITS`, accumulations (mm,
        kg m-2) or reflectivities (dBZ).
    zr : (a, b)
        The Z-R relation ``Z = a R^b`` for reflectivities (Z in mm6 m-3);
        default Marshall-Palmer (200, 1.6).
    period : str or Timedelta, optional
        Accumulation period, when the cube does not say
        (:func:`accumulation_period`).
    undetect : float, optional
        Reflectivity (dBZ) at or below which there is no echo: 0 mm h-1
        there. Default: the cube's ``undetect`` attribute (xnowcast's readers
        set it from the file: ODIM ``undetect``, FMI's lowest class), else
        none.
    var : str, optional
        Variable of a Dataset.

    Returns
    -------
    DataArray
        ``units="mm h-1"``, ``standard_name="rainfall_rate"``; the attribute
        ``xnowcast_converted_from`` says from what (absent when the cube was
        already in mm h-1: it is returned unchanged).

    Raises
    ------
    ValueError
        Units that are not a precipitation quantity, no units at all, or an
        accumulation without a known period.

    Examples
    --------
    >>> import xarray as xr
    >>> dbz = xr.DataArray([[23.0, float("nan"), -32.0]], dims=("y", "x"),
    ...                    attrs={"units": "dBZ", "undetect": -32.0})
    >>> to_rain_rate(dbz).round(2).values.tolist()
    [[1.0, nan, 0.0]]
    """
    da = as_dataarray(cube, var)
    q = quantity_of(da)
    if q.kind == "rain_rate":
        if q.factor == 1.0 and _norm(q.units) in ("mm h-1", "mm/h"):
            return da
        out = da * q.factor
        note = f"{describe_quantity(da)} (x {q.factor:g})"
    elif q.kind == "accumulation":
        span = accumulation_period(da, period)
        # one pass, not two, when the unit is already mm (bit-identical: x * 1.0 == x)
        out = (da if q.factor == 1.0 else da * q.factor) / _hours(span)
        shown = span if isinstance(span, pd.Timedelta) else _period_text(span)
        note = f"{describe_quantity(da)} over {shown}"
    elif q.kind == "reflectivity":
        a, b = _zr(zr)
        out = (10.0 ** (da / 10.0) / a) ** (1.0 / b)
        floor = da.attrs.get("undetect") if undetect is None else undetect
        if floor is not None:
            out = out.where(~(da <= real(floor, "undetect")), 0.0)
        note = f"{describe_quantity(da)} with Z = {a:g} R^{b:g}"
    else:
        raise ValueError(
            f"cannot convert {describe_quantity(da)} to a rain rate: xnowcast converts rain "
            "rates (mm h-1, kg m-2 s-1, ...), accumulations (mm, kg m-2) and reflectivities "
            "(dBZ); set the cube's units attribute (cube.attrs['units'] = 'mm h-1')"
        )
    dropped = ("cell_methods", "valid_min", "valid_max", "undetect")
    attrs = {k: v for k, v in da.attrs.items() if k not in dropped}
    attrs.update(RATE_ATTRS, xnowcast_converted_from=note)
    out = out.astype(da.dtype if np.issubdtype(da.dtype, np.floating) else "float32")
    out.attrs = attrs  # replaced, not merged: no attribute of the input quantity survives
    return out.rename(da.name)


def _period_text(span: xr.DataArray) -> str:
    values = pd.to_timedelta(np.unique(np.asarray(span.values).ravel()))
    return str(values[0]) if len(values) == 1 else f"{values.min()} to {values.max()}"


def rain_rate_for(cube: xr.DataArray, purpose: str, **kwargs: Any) -> xr.DataArray:
    """The cube as rain rate where rain-rate defaults (thresholds, colour levels) apply.

    Rain rates in mm h-1 and cubes without units pass through unchanged; a
    known quantity (another rate unit, an accumulation with a known period, a
    reflectivity) is converted with :func:`to_rain_rate` and a
    ``UserWarning`` that says so; anything else is refused.

    Parameters
    ----------
    cube : DataArray
        The cube.
    purpose : str
        What needs the rain rate, for the messages (``"verify's default
        thresholds"``).
    **kwargs
        Passed to :func:`to_rain_rate` (``zr=``, ``period=``).

    Raises
    ------
    ValueError
        Units that cannot be converted, or an accumulation without a period;
        the message names the fix.

    Examples
    --------
    >>> import warnings, xarray as xr
    >>> acc = xr.DataArray([[0.6]], dims=("y", "x"),
    ...                    attrs={"units": "mm", "cell_methods": "time: sum (interval: 6 min)"})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     rate = rain_rate_for(acc, "the default thresholds")
    >>> round(float(rate[0, 0]), 6), "converted" in str(caught[0].message)
    (6.0, True)
    """
    q = quantity_of(cube)
    if q.kind == "unknown" or (q.kind == "rain_rate" and q.factor == 1.0):
        return cube
    expected = f"{purpose}: rain rates in mm h-1 are expected, but the cube holds "
    if q.kind == "other":
        raise ValueError(
            f"{expected}{describe_quantity(cube)}, not a precipitation quantity (rain rate, "
            "accumulation or reflectivity in dBZ); give the values in the cube's units "
            "explicitly (thresholds=[...], levels=[...]), or set cube.attrs['units'] if the "
            "data are rain rates"
        )
    try:
        out = to_rain_rate(cube, **kwargs)
    except ValueError as err:
        raise ValueError(
            f"{expected}{describe_quantity(cube)}: {err}; or give the values in the cube's "
            "units explicitly"
        ) from None
    warnings.warn(
        f"{purpose}: rain rates in mm h-1 are expected; the cube holds {describe_quantity(cube)}, "
        f"converted to mm h-1 ({out.attrs['xnowcast_converted_from']}). Convert it yourself "
        "with xnowcast.to_rain_rate(cube) to silence this",
        UserWarning,
        stacklevel=2,
    )
    return out


def check_same_units(forecast: xr.DataArray, obs: xr.DataArray) -> None:
    """Refuse a forecast and observations in different units (or quantities).

    Units that differ only in spelling (``mm/h`` and ``mm h-1``) are the same.

    Raises
    ------
    ValueError
        The units differ; the message says how to convert.

    Examples
    --------
    >>> import xarray as xr
    >>> check_same_units(xr.DataArray(0.0, attrs={"units": "mm/h"}),
    ...                  xr.DataArray(0.0, attrs={"units": "mm h-1"}))
    >>> check_same_units(xr.DataArray(0.0, attrs={"units": "mm h-1"}),
    ...                  xr.DataArray(0.0, attrs={"units": "kg m-2"}))
    Traceback (most recent call last):
    ...
    ValueError: the forecast is in 'mm h-1' but the observations in 'kg m-2'; convert both to rain rate with xnowcast.to_rain_rate(...) first
    """
    qf, qo = quantity_of(forecast), quantity_of(obs)
    if "unknown" in (qf.kind, qo.kind):
        return
    same = (qf.kind, qf.factor) == (qo.kind, qo.factor) and (
        qf.kind in ("rain_rate", "accumulation") or _norm(qf.units) == _norm(qo.units)
    )
    if not same:
        raise ValueError(
            f"the forecast is in {qf.units!r} but the observations in {qo.units!r}; convert "
            "both to rain rate with xnowcast.to_rain_rate(...) first"
        )


def _single_period(obs: xr.DataArray) -> pd.Timedelta | None:
    try:
        span = accumulation_period(obs)
    except ValueError:
        return None
    if isinstance(span, pd.Timedelta):
        return span
    values = np.unique(np.asarray(span.values).ravel())
    return pd.Timedelta(values[0]) if len(values) == 1 else None


def rain_rate_pair(
    forecast: xr.DataArray,
    obs: xr.DataArray | xr.Dataset | None,
    purpose: str,
    *,
    var: str | None = None,
    **kwargs: Any,
) -> tuple[xr.DataArray, xr.DataArray | None]:
    """A forecast and its observations, both as rain rates where rain-rate defaults apply.

    Checks that both are in the same units (:func:`check_same_units`), then
    converts both with :func:`rain_rate_for` (one warning). A forecast of
    accumulations rarely says its period (it has no ``start_time``): it takes
    the observations' period when that is one period.

    Parameters
    ----------
    forecast : DataArray
        The forecast (or any cube).
    obs : DataArray or Dataset, optional
        The observations; ``None`` converts the forecast alone.
    purpose : str
        What needs rain rates, for the messages.
    var : str, optional
        Variable of an observations Dataset (default: the forecast's name).
    **kwargs
        Passed to :func:`to_rain_rate` (``zr=``, ``period=``).

    Raises
    ------
    ValueError
        Different units, or a quantity that cannot be converted.

    Examples
    --------
    >>> import warnings, numpy as np, pandas as pd, xarray as xr
    >>> t = pd.to_datetime(["2018-06-16 10:06"])
    >>> obs = xr.DataArray([[[0.6]]], dims=("time", "y", "x"), attrs={"units": "mm"},
    ...     coords={"time": t, "start_time": ("time", t - pd.Timedelta("6min"))})
    >>> fc = xr.DataArray([[[1.2]]], dims=("lead_time", "y", "x"), attrs={"units": "mm"})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     fc_rate, obs_rate = rain_rate_pair(fc, obs, "the default thresholds")
    >>> round(float(fc_rate.max()), 6), round(float(obs_rate.max()), 6)
    (12.0, 6.0)
    """
    if obs is None:
        return rain_rate_for(forecast, purpose, **kwargs), None
    if isinstance(obs, xr.Dataset):
        name = var if var is not None else str(forecast.name)
        obs = as_dataarray(obs, name if name in obs.data_vars else None)
    check_same_units(forecast, obs)
    obs_rate = rain_rate_for(obs, purpose, **kwargs)
    if obs_rate is obs:
        return rain_rate_for(forecast, purpose, **kwargs), obs
    fc_kwargs = dict(kwargs)
    if quantity_of(obs).kind == "accumulation" and "period" not in fc_kwargs:
        try:
            accumulation_period(forecast)
        except ValueError:
            fc_kwargs["period"] = _single_period(obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # said once, for the observations
        fc_rate = rain_rate_for(forecast, purpose, **fc_kwargs)
    return fc_rate, obs_rate
