"""Forecast labels: the coordinates and attributes every forecast carries.

dims ``(init_time, lead_time, y, x)`` (or ``(lead_time, y, x)`` for one init
time); ``lead_time`` is ``timedelta64`` with ``standard_name=forecast_period``;
``init_time`` is the time of the last input frame with
``standard_name=forecast_reference_time``; ``valid_time = init_time + lead_time``.
An ensemble forecast has a ``member`` dimension before ``lead_time``
(``(init_time, member, lead_time, y, x)`` or ``(member, lead_time, y, x)``),
an integer coordinate ``0 .. members - 1`` with ``standard_name=realization``
(the CF name, and the xskillscore and climpred default).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "INIT_TIME",
    "LEAD_TIME",
    "MEMBER",
    "VALID_TIME",
    "forecast_attrs",
    "forecast_coords",
    "member_coord",
]

INIT_TIME = "init_time"
LEAD_TIME = "lead_time"
VALID_TIME = "valid_time"
MEMBER = "member"


def member_coord(members: int) -> tuple[str, np.ndarray, dict[str, str]]:
    """The ``member`` coordinate of an ensemble of ``members`` members.

    Examples
    --------
    >>> dim, values, attrs = member_coord(3)
    >>> dim, values.tolist(), attrs["standard_name"]
    ('member', [0, 1, 2], 'realization')
    """
    return (
        MEMBER,
        np.arange(int(members), dtype=np.int64),
        {"standard_name": "realization", "long_name": "ensemble member"},
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
