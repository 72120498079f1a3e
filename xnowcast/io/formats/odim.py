"""ODIM HDF5 composites (OPERA, national services): ``what/quantity`` DBZH, TH, RATE, ACRR.

The ODIM_H5 information model (EUMETNET OPERA) stores each quantity in a
``datasetN/dataM/data`` array of raw numbers; ``what`` groups give the
quantity, ``gain``/``offset`` (physical = raw * gain + offset), the ``nodata``
value (outside coverage: NaN here) and the ``undetect`` value (measured, but
below detection: 0 mm h-1 / 0 mm for rates and accumulations, and
``UNDETECT_DBZ`` = -30 dBZ for reflectivities, as in pysteps). The top-level
``where`` group gives the projection (``projdef``), corners and pixel size;
``what/date``/``what/time`` the nominal time; ``startdate``/``starttime`` the
start of an accumulation.

Examples
--------
>>> ds = open_odim("../shared/data/formats/OPERA/20180824/T_PAAH21_C_EUOC_20180824180000.hdf")  # doctest: +SKIP
>>> ds["RATE"].attrs["units"]  # doctest: +SKIP
'mm h-1'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from xnowcast.io.formats.grid import Grid, frame_dataset, lazy_field
from xnowcast.optional import import_optional

__all__ = ["ODIM_QUANTITIES", "UNDETECT_DBZ", "OdimField", "find_odim_field", "open_odim"]

#: Reflectivity given to ``undetect`` pixels of DBZH/TH (pysteps uses the same).
UNDETECT_DBZ = -30.0

#: What xnowcast knows of each ODIM quantity: variable attributes and the undetect value.
ODIM_QUANTITIES: dict[str, dict[str, Any]] = {
    "DBZH": {
        "attrs": {
            "units": "dBZ",
            "standard_name": "equivalent_reflectivity_factor",
            "long_name": "horizontal reflectivity (DBZH)",
        },
        "undetect": UNDETECT_DBZ,
    },
    "TH": {
        "attrs": {
            "units": "dBZ",
            "standard_name": "equivalent_reflectivity_factor",
            "long_name": "total horizontal reflectivity, uncorrected (TH)",
        },
        "undetect": UNDETECT_DBZ,
    },
    "RATE": {
        "attrs": {
            "units": "mm h-1",
            "standard_name": "rainfall_rate",
            "long_name": "rain rate (RATE)",
        },
        "undetect": 0.0,
    },
    "ACRR": {
        "attrs": {
            "units": "mm",
            "standard_name": "precipitation_amount",
            "long_name": "accumulated precipitation (ACRR)",
        },
        "undetect": 0.0,
    },
}


@dataclass(frozen=True)
class OdimField:
    """Where a quantity is in an ODIM file and how to scale it."""

    path: str
    quantity: str
    gain: float
    offset: float
    nodata: float
    undetect: float
    shape: tuple[int, int]
    what: dict[str, Any]


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    return value.decode() if isinstance(value, bytes) else str(value)


def _what(group: Any) -> dict[str, Any]:
    return {
        k: (_text(v) if isinstance(v, (bytes, np.bytes_)) else v) for k, v in group.attrs.items()
    }


def _fields(h5: Any) -> list[OdimField]:
    """Every ``datasetN/dataM`` array with its ``what`` (data level overrides dataset level)."""
    out = []
    for dname in sorted(k for k in h5 if k.startswith("dataset")):
        dset = h5[dname]
        top = _what(dset["what"]) if "what" in dset else {}
        for name in sorted(k for k in dset if k.startswith("data") and "data" in dset[k]):
            what = {**top, **(_what(dset[name]["what"]) if "what" in dset[name] else {})}
            if "quantity" not in what:
                continue
            arr = dset[name]["data"]
            out.append(
                OdimField(
                    path=f"{dname}/{name}/data",
                    quantity=_text(what["quantity"]),
                    gain=float(what.get("gain", 1.0)),
                    offset=float(what.get("offset", 0.0)),
                    nodata=float(what.get("nodata", np.nan)),
                    undetect=float(what.get("undetect", 0.0)),
                    shape=(int(arr.shape[0]), int(arr.shape[1])),
                    what=what,
                )
            )
    return out


def find_odim_field(h5: Any, quantity: str | None, path: str = "") -> OdimField:
    """The field of an open ODIM file holding ``quantity`` (default: the one known quantity).

    Raises
    ------
    ValueError
        The quantity is not in the file, or it is not one xnowcast knows, or
        the file holds several known quantities and none was chosen; the
        message lists what the file holds.

    Examples
    --------
    >>> import h5py  # doctest: +SKIP
    >>> with h5py.File("../shared/data/formats/OPERA/20180824/T_PAAH21_C_EUOC_20180824180000.hdf") as h5:  # doctest: +SKIP
    ...     find_odim_field(h5, None).quantity
    'RATE'
    """
    fields = _fields(h5)
    held = sorted({f.quantity for f in fields})
    if quantity is None:
        known = [f for f in fields if f.quantity in ODIM_QUANTITIES]
        if len({f.quantity for f in known}) == 1:
            return known[0]
        if not known:
            raise ValueError(
                f"{path}: no ODIM quantity that xnowcast reads ({', '.join(ODIM_QUANTITIES)}); "
                f"the file holds {', '.join(held) or 'no what/quantity at all'}"
            )
        raise ValueError(
            f"{path}: the file holds several quantities ({', '.join(held)}); choose one with "
            "quantity='DBZH' (open_archive(..., backend_kwargs={'quantity': 'DBZH'}))"
        )
    if quantity not in ODIM_QUANTITIES:
        raise ValueError(
            f"{path}: unknown ODIM quantity {quantity!r}; xnowcast reads "
            f"{', '.join(ODIM_QUANTITIES)}"
        )
    for f in fields:
        if f.quantity == quantity:
            return f
    raise ValueError(
        f"{path}: no {quantity} in the file; it holds {', '.join(held) or 'no what/quantity'}"
    )


def read_odim_field(
    path: str,
    field: str,
    gain: float,
    offset: float,
    nodata: float,
    undetect: float,
    undetect_value: float,
) -> np.ndarray:
    """Physical values of one ODIM array: raw * gain + offset, nodata -> NaN, undetect -> value.

    Examples
    --------
    >>> read_odim_field("../shared/data/formats/KNMI/x.h5", "dataset1/data1/data",
    ...                 1.0, 0.0, -1.0, 0.0, 0.0)  # doctest: +SKIP
    """
    h5py = import_optional("h5py", "reading ODIM HDF5 files")
    with h5py.File(path, "r") as h5:
        raw = h5[field][...]
    out = (raw * gain + offset).astype("float32")
    out[raw == undetect] = undetect_value
    out[raw == nodata] = np.nan
    return out


def _timestamp(date: Any, time: Any) -> pd.Timestamp:
    return pd.Timestamp(pd.to_datetime(_text(date) + _text(time)[:6], format="%Y%m%d%H%M%S"))


def odim_grid(h5: Any, shape: tuple[int, int], path: str = "") -> Grid:
    """The grid of an ODIM composite from its ``where`` group (projdef, corners, scale).

    The upper-left corner (``UL_lon``/``UL_lat``, else the lower-left one and
    the image height) is projected with ``projdef``; pixels are ``xscale`` by
    ``yscale`` metres, first row north.

    Examples
    --------
    >>> import h5py  # doctest: +SKIP
    >>> with h5py.File("../shared/data/formats/OPERA/20180824/T_PAAH21_C_EUOC_20180824180000.hdf") as h5:  # doctest: +SKIP
    ...     odim_grid(h5, (2200, 1900)).dx
    2000.0
    """
    where = dict(h5["where"].attrs) if "where" in h5 else {}
    if "where" in h5.get("dataset1", {}):
        where = {**dict(h5["dataset1"]["where"].attrs), **where}
    missing = [k for k in ("projdef", "LL_lon", "LL_lat", "xscale", "yscale") if k not in where]
    if missing:
        raise ValueError(
            f"{path}: the ODIM 'where' group lacks {', '.join(missing)}; xnowcast reads "
            "composites (Cartesian products), not polar volumes"
        )
    crs = pyproj.CRS.from_proj4(_text(where["projdef"]))
    to_xy = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    ny, nx = shape
    dx, dy = float(where["xscale"]), float(where["yscale"])
    if "UL_lon" in where and "UL_lat" in where:
        x0, y0 = to_xy.transform(float(where["UL_lon"]), float(where["UL_lat"]))
    else:
        x0, y_ll = to_xy.transform(float(where["LL_lon"]), float(where["LL_lat"]))
        y0 = y_ll + ny * dy
    return Grid(crs, x0=float(x0), y0=float(y0), dx=dx, dy=-dy, nx=nx, ny=ny)


def open_odim(path: str | os.PathLike, quantity: str | None = None) -> Any:
    """Open an ODIM HDF5 composite lazily as a one-frame cube.

    Parameters
    ----------
    path : str or path
        The file.
    quantity : str, optional
        ``"DBZH"``, ``"TH"``, ``"RATE"`` or ``"ACRR"``; default: the one
        known quantity of the file.

    Returns
    -------
    Dataset
        One variable named after the quantity, ``(time: 1, y, x)``, in
        physical units (dBZ, mm h-1, mm); an ACRR field has a ``start_time``
        coordinate (start of the accumulation).

    Raises
    ------
    ValueError
        Unknown or missing quantity, or not a composite.

    Examples
    --------
    >>> ds = open_odim("../shared/data/formats/OPERA/20241126/CIRRUS/T_PABV21_C_EUOC_20241126010000.hdf")  # doctest: +SKIP
    >>> ds["DBZH"].shape  # doctest: +SKIP
    (1, 4400, 3800)
    """
    h5py = import_optional("h5py", "reading ODIM HDF5 files")
    path = os.fspath(path)
    with h5py.File(path, "r") as h5:
        field = find_odim_field(h5, quantity, path)
        grid = odim_grid(h5, field.shape, path)
        top = _what(h5["what"]) if "what" in h5 else {}
        time = _timestamp(
            top.get("date", field.what.get("enddate")), top.get("time", field.what.get("endtime"))
        )
        conventions = _text(h5.attrs.get("Conventions", "ODIM_H5"))
    known = ODIM_QUANTITIES[field.quantity]
    start = None
    if field.quantity == "ACRR" and "startdate" in field.what and "starttime" in field.what:
        start = _timestamp(field.what["startdate"], field.what["starttime"])
    data = lazy_field(
        read_odim_field,
        path,
        field.shape,
        field=field.path,
        gain=field.gain,
        offset=field.offset,
        nodata=field.nodata,
        undetect=field.undetect,
        undetect_value=known["undetect"],
    )
    attrs = {**known["attrs"], "odim_quantity": field.quantity}
    if attrs["units"] == "dBZ":
        attrs["undetect"] = known["undetect"]  # "no echo": to_rain_rate gives 0 mm h-1 there
    glob = {
        "Conventions": "CF-1.8",
        "source": f"{conventions} composite",
        "odim_source": _text(top.get("source", "")),
        "odim_product": _text(field.what.get("product", "")),
    }
    return frame_dataset(
        field.quantity, data, grid, time, attrs, start_time=start, global_attrs=glob
    )
