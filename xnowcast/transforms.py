"""Invertible intensity transforms (rain rate <-> model space).

Motion estimation, neural networks and verification all work better on a
transformed field than on raw rain rates: a logarithm evens out the dynamic
range so that light and heavy rain both carry texture. Every transform here is
a small object with :meth:`~Transform.forward` (physical units to transformed
space), :meth:`~Transform.inverse` and :meth:`~Transform.get_params`, and is
looked up by name with :func:`get_transform`.

All scalings are *fixed*: they depend on parameters only, never on the data
(no per-frame min/max normalisation, which would make a motion estimator chase
intensity changes instead of motion). ``NaN`` (missing data) stays ``NaN``
except in :class:`ToUint8`, which needs an integer value for it.

=============  ===============================================================
name           forward
=============  ===============================================================
``identity``   ``x``
``log``        ``log1p(x)`` (``base="e"``) or ``log10(x)`` above a threshold,
               ``zerovalue`` below (``base=10``)
``dbr``        ``10 * log10(x)`` above ``threshold``, ``zerovalue`` below
``scale``      ``(x - vmin) / (vmax - vmin)``: a fixed physical range to [0, 1]
``uint8``      ``scale`` clipped to [0, 1] and mapped to ``0 .. 255`` ``uint8``
               (the 8-bit images OpenCV motion estimators need)
=============  ===============================================================

Every transform also has :attr:`~Transform.output_range`: the interval of
transformed values that the physical range of interest (``0 .. vmax``) maps
to. :func:`to_uint8` uses it to turn transformed frames into 8-bit images with
a fixed scaling.

Examples
--------
>>> import numpy as np
>>> from xnowcast.transforms import get_transform
>>> t = get_transform("dbr", threshold=0.1, zerovalue=-15.0)
>>> t.forward(np.array([0.0, 1.0, 10.0], dtype="float32"))
array([-15.,   0.,  10.], dtype=float32)
>>> t.inverse(t.forward(np.array([0.0, 1.0, 10.0], dtype="float32")))
array([ 0.,  1., 10.], dtype=float32)
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy as np

from xnowcast.checks import check_signature, integer, real

__all__ = [
    "CONTINUOUS_STANDARD_NAMES",
    "DBR",
    "Identity",
    "Log",
    "Scale",
    "ToUint8",
    "Transform",
    "continuous_transform",
    "get_transform",
    "is_continuous",
    "list_transforms",
    "to_uint8",
]


def _as_float32(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


class Transform(abc.ABC):
    """An invertible, data-independent intensity transform.

    Subclasses set :attr:`name`, implement :meth:`forward`, :meth:`inverse`
    and :meth:`get_params`, and report :attr:`output_range`.
    """

    #: Registry name (:func:`get_transform`).
    name: ClassVar[str] = ""

    @abc.abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Physical units -> transformed space (``float32``; ``NaN`` stays ``NaN``)."""

    @abc.abstractmethod
    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Transformed space -> physical units (``float32``)."""

    @abc.abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Parameters that rebuild this transform with :func:`get_transform`."""

    @property
    @abc.abstractmethod
    def output_range(self) -> tuple[float, float]:
        """``(lo, hi)``: where the physical range of interest lands after :meth:`forward`."""

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., **params}``, accepted back by :func:`get_transform`."""
        return {"name": self.name, **self.get_params()}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transform) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_dict().items())))


class Identity(Transform):
    """No transform.

    Parameters
    ----------
    vmax : float
        Upper end of the physical range of interest (for :attr:`output_range`,
        ``(0, vmax)``); 100 suits rain rates in mm/h.

    Examples
    --------
    >>> import numpy as np
    >>> Identity().forward(np.array([1.5]))
    array([1.5], dtype=float32)
    """

    name = "identity"

    def __init__(self, vmax: float = 100.0) -> None:
        self.vmax = real(vmax, "vmax", low=0, low_inclusive=False)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return _as_float32(x).copy()

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return _as_float32(y).copy()

    def get_params(self) -> dict[str, Any]:
        return {"vmax": self.vmax}

    @property
    def output_range(self) -> tuple[float, float]:
        return (0.0, self.vmax)


class Log(Transform):
    """Logarithm of the rain rate.

    ``base="e"`` (default): ``log1p(x)``, smooth through zero, exactly
    invertible for ``x >= 0``. ``base=10``: ``log10(x)`` for ``x >= threshold``
    and ``zerovalue`` below (the inverse maps values below
    ``log10(threshold)`` back to 0).

    Parameters
    ----------
    base : {"e", 10}
        Which logarithm.
    threshold : float
        Smallest rain rate kept (``base=10`` only).
    zerovalue : float, optional
        Value given to rates below ``threshold`` (``base=10`` only); defaults
        to ``log10(threshold) - 0.5``.
    vmax : float
        Upper end of the physical range of interest.

    Examples
    --------
    >>> import numpy as np
    >>> t = Log()
    >>> np.allclose(t.inverse(t.forward(np.array([0.0, 3.0]))), [0.0, 3.0])
    True
    >>> Log(base=10, threshold=0.1).forward(np.array([0.0, 10.0]))
    array([-1.5,  1. ], dtype=float32)
    """

    name = "log"

    def __init__(
        self,
        base: str | int = "e",
        threshold: float = 0.1,
        zerovalue: float | None = None,
        vmax: float = 100.0,
    ) -> None:
        if base not in ("e", 10, "10"):
            raise ValueError(f"base must be 'e' (log1p) or 10 (log10), got {base!r}")
        self.base: str | int = "e" if base == "e" else 10
        self.threshold = real(threshold, "threshold", low=0, low_inclusive=False)
        self.vmax = real(vmax, "vmax")
        if self.vmax <= self.threshold:
            raise ValueError(f"vmax ({vmax!r}) must be larger than threshold ({threshold!r})")
        if zerovalue is None:
            zerovalue = math.log10(self.threshold) - 0.5
        self.zerovalue = real(zerovalue, "zerovalue")
        if self.base == 10 and self.zerovalue >= math.log10(self.threshold):
            raise ValueError(
                f"zerovalue ({zerovalue!r}) must be below log10(threshold) = "
                f"{math.log10(self.threshold):.3g}, or zero rain could not be told apart"
            )

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float32(x)
        if self.base == "e":
            return np.log1p(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log10(x)
        out[x < self.threshold] = self.zerovalue
        return out

    def inverse(self, y: np.ndarray) -> np.ndarray:
        y = _as_float32(y)
        if self.base == "e":
            return np.expm1(y)
        out = np.power(np.float32(10.0), y)
        out[y < math.log10(self.threshold)] = 0.0
        return out

    def get_params(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "threshold": self.threshold,
            "zerovalue": self.zerovalue,
            "vmax": self.vmax,
        }

    @property
    def output_range(self) -> tuple[float, float]:
        if self.base == "e":
            return (0.0, float(np.log1p(self.vmax)))
        return (self.zerovalue, math.log10(self.vmax))


class DBR(Transform):
    """Rain rate in decibels: ``10 * log10(R)``, the pysteps ``dB_transform``.

    Parameters
    ----------
    threshold : float
        Smallest rain rate kept (mm/h); rates below it become ``zerovalue``.
    zerovalue : float
        dBR value given to "no rain"; a few dB below ``10 log10(threshold)`` so
        that the rain/no-rain edge stays a visible step.
    vmax : float
        Upper end of the physical range of interest (mm/h).

    Examples
    --------
    >>> import numpy as np
    >>> t = DBR(threshold=0.1, zerovalue=-15.0)
    >>> t.forward(np.array([0.05, 0.1, 10.0]))
    array([-15., -10.,  10.], dtype=float32)
    >>> t.inverse(np.array([-15.0, 0.0]))
    array([0., 1.], dtype=float32)
    >>> t.output_range
    (-15.0, 20.0)
    """

    name = "dbr"

    def __init__(
        self, threshold: float = 0.1, zerovalue: float = -15.0, vmax: float = 100.0
    ) -> None:
        self.threshold = real(threshold, "threshold", low=0, low_inclusive=False)
        self.zerovalue = real(zerovalue, "zerovalue")
        if self.zerovalue >= 10 * math.log10(self.threshold):
            raise ValueError(
                f"zerovalue ({zerovalue!r}) must be below 10*log10(threshold) = "
                f"{10 * math.log10(self.threshold):.3g} dBR"
            )
        self.vmax = real(vmax, "vmax")
        if self.vmax <= self.threshold:
            raise ValueError(f"vmax ({vmax!r}) must be larger than threshold ({threshold!r})")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float32(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.log10(x, out=np.empty_like(x))
        out *= np.float32(10.0)
        np.copyto(out, np.float32(self.zerovalue), where=x < self.threshold)
        return out

    def inverse(self, y: np.ndarray) -> np.ndarray:
        y = _as_float32(y)
        out = np.power(np.float32(10.0), y / np.float32(10.0))
        out[y < 10 * math.log10(self.threshold)] = 0.0
        return out

    def get_params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "zerovalue": self.zerovalue, "vmax": self.vmax}

    @property
    def output_range(self) -> tuple[float, float]:
        return (self.zerovalue, 10 * math.log10(self.vmax))


class Scale(Transform):
    """A fixed physical range ``[vmin, vmax]`` linearly onto ``[0, 1]``.

    Values outside the range map outside ``[0, 1]`` (set ``clip=True`` to
    clip them; clipping is not invertible).

    Parameters
    ----------
    vmin, vmax : float
        The physical range (for satellite counts e.g. ``0, 1023``).
    clip : bool
        Clip the output to ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> Scale(0, 50).forward(np.array([0.0, 25.0, 100.0]))
    array([0. , 0.5, 2. ], dtype=float32)
    """

    name = "scale"

    def __init__(self, vmin: float = 0.0, vmax: float = 100.0, clip: bool = False) -> None:
        self.vmin = real(vmin, "vmin")
        self.vmax = real(vmax, "vmax")
        if self.vmax <= self.vmin:
            raise ValueError(f"vmax ({vmax!r}) must be larger than vmin ({vmin!r})")
        self.clip = bool(clip)

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = (_as_float32(x) - np.float32(self.vmin)) / np.float32(self.vmax - self.vmin)
        return np.clip(out, 0.0, 1.0, out=out) if self.clip else out

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return _as_float32(y) * np.float32(self.vmax - self.vmin) + np.float32(self.vmin)

    def get_params(self) -> dict[str, Any]:
        return {"vmin": self.vmin, "vmax": self.vmax, "clip": self.clip}

    @property
    def output_range(self) -> tuple[float, float]:
        return (0.0, 1.0)


class ToUint8(Transform):
    """A fixed physical range ``[vmin, vmax]`` onto ``0 .. 255`` (``uint8``).

    The input of OpenCV's motion estimators. Values are clipped to the range,
    ``NaN`` becomes ``nan_value`` (default 0, the bottom of the range). The
    inverse returns the centre of each 8-bit bin (``NaN`` is not restored).

    Parameters
    ----------
    vmin, vmax : float
        The physical range mapped onto ``0 .. 255``.
    nan_value : int
        8-bit value given to ``NaN``.

    Examples
    --------
    >>> import numpy as np
    >>> ToUint8(0, 1).forward(np.array([-1.0, 0.5, np.nan, 2.0]))
    array([  0, 128,   0, 255], dtype=uint8)
    """

    name = "uint8"

    def __init__(self, vmin: float = 0.0, vmax: float = 1.0, nan_value: int = 0) -> None:
        self.vmin = real(vmin, "vmin")
        self.vmax = real(vmax, "vmax")
        if self.vmax <= self.vmin:
            raise ValueError(f"vmax ({vmax!r}) must be larger than vmin ({vmin!r})")
        self.nan_value = integer(nan_value, "nan_value", low=0, high=255)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _as_float32(x)
        scaled = (x - np.float32(self.vmin)) * np.float32(255.0 / (self.vmax - self.vmin))
        np.clip(scaled, 0.0, 255.0, out=scaled)
        scaled[np.isnan(scaled)] = self.nan_value
        return np.rint(scaled).astype(np.uint8)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return _as_float32(y) * np.float32((self.vmax - self.vmin) / 255.0) + np.float32(self.vmin)

    def get_params(self) -> dict[str, Any]:
        return {"vmin": self.vmin, "vmax": self.vmax, "nan_value": self.nan_value}

    @property
    def output_range(self) -> tuple[float, float]:
        return (0.0, 255.0)


_TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls for cls in (Identity, Log, DBR, Scale, ToUint8)
}


#: CF standard names of continuous fields (no zero background): satellite channels.
CONTINUOUS_STANDARD_NAMES = (
    "toa_bidirectional_reflectance",
    "toa_brightness_temperature",
    "brightness_temperature",
    "toa_outgoing_radiance_per_unit_wavelength",
    "toa_outgoing_radiance_per_unit_wavenumber",
    "surface_albedo",
    "cloud_albedo",
)


def is_continuous(cube: Any) -> bool:
    """Whether ``cube`` holds a continuous field (e.g. a satellite channel), not precipitation.

    Decided from the quantity alone (:func:`xnowcast.units.quantity_of`): a
    CF standard name of :data:`CONTINUOUS_STANDARD_NAMES`, or units that are
    known and are not those of a rain rate, an accumulation or a reflectivity
    (``"1"``, ``"K"``, ``"%"``, ...). Rain rates, accumulations, reflectivities
    and cubes without units are precipitation (the radar defaults).

    Examples
    --------
    >>> import xarray as xr
    >>> is_continuous(xr.DataArray(0.0, attrs={"units": "1", "long_name": "reflectance"}))
    True
    >>> is_continuous(xr.DataArray(0.0, attrs={"units": "mm h-1"}))
    False
    >>> is_continuous(xr.DataArray(0.0))
    False
    """
    from xnowcast.units import quantity_of

    standard_name = str(cube.attrs.get("standard_name", "") or "").strip().lower()
    return standard_name in CONTINUOUS_STANDARD_NAMES or quantity_of(cube).kind == "other"


def _nice_bounds(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi]`` widened to multiples of the power of ten below its span."""
    step = 10.0 ** math.floor(math.log10(hi - lo)) if hi > lo else max(abs(hi), 1.0)
    vmin, vmax = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return (vmin, vmax) if vmax > vmin else (vmin, vmin + step)


def continuous_transform(cube: Any, sample: np.ndarray | None = None) -> dict[str, Any]:
    """The default transform of a continuous field: its value range linearly onto [0, 1].

    A fixed ``"scale"`` transform (no per-frame normalisation). The range is
    the cube's ``valid_range`` (or ``valid_min``/``valid_max``) attribute when
    it has one; otherwise the range of ``sample`` (frames of the cube), widened
    to round numbers (multiples of the power of ten below the span: 0 .. 861
    gives 0 .. 900), so that nearby samples give the same transform.

    Parameters
    ----------
    cube : DataArray
        The cube (its attributes are read).
    sample : numpy.ndarray, optional
        Frames of the cube, when it has no valid range attribute.

    Returns
    -------
    dict
        ``{"name": "scale", "vmin": ..., "vmax": ...}`` for :func:`get_transform`.

    Raises
    ------
    ValueError
        Neither a valid range attribute nor any finite value in ``sample``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> cube = xr.DataArray(np.zeros((1, 2, 2)), attrs={"units": "1"})
    >>> continuous_transform(cube, np.array([12.0, 861.0]))
    {'name': 'scale', 'vmin': 0.0, 'vmax': 900.0}
    >>> continuous_transform(cube.assign_attrs(valid_range=[0, 1023]))
    {'name': 'scale', 'vmin': 0.0, 'vmax': 1023.0}
    """
    attrs = cube.attrs
    valid = attrs.get("valid_range")
    if valid is None and "valid_min" in attrs and "valid_max" in attrs:
        valid = (attrs["valid_min"], attrs["valid_max"])
    if valid is not None:
        vmin, vmax = (float(v) for v in np.asarray(valid, dtype=float).ravel()[:2])
    else:
        values = np.asarray(sample if sample is not None else [], dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise ValueError(
                "cannot choose the value range of this continuous field: it has no "
                "valid_range attribute and the frames read hold no finite value; pass "
                "transform={'name': 'scale', 'vmin': ..., 'vmax': ...}"
            )
        vmin, vmax = _nice_bounds(float(finite.min()), float(finite.max()))
    return {"name": "scale", "vmin": vmin, "vmax": vmax}


def list_transforms() -> list[str]:
    """Names accepted by :func:`get_transform`.

    Examples
    --------
    >>> list_transforms()
    ['dbr', 'identity', 'log', 'scale', 'uint8']
    """
    return sorted(_TRANSFORMS)


def get_transform(
    name: str | dict[str, Any] | Transform | None = "identity", **params: Any
) -> Transform:
    """Return a transform by name.

    Parameters
    ----------
    name : str, dict, Transform or None
        A name from :func:`list_transforms` (case-insensitive); a dict
        ``{"name": ..., **params}`` as written by :meth:`Transform.to_dict`;
        a :class:`Transform` (returned as is); ``None`` means ``"identity"``.
    **params
        Passed to the transform's constructor.

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones) or bad parameters.

    Examples
    --------
    >>> get_transform("dbr", threshold=0.1)
    DBR(threshold=0.1, zerovalue=-15.0, vmax=100.0)
    >>> get_transform({"name": "scale", "vmin": 0, "vmax": 1023})
    Scale(vmin=0.0, vmax=1023.0, clip=False)
    """
    if isinstance(name, Transform):
        if params:
            raise TypeError(
                f"got a Transform instance and parameters {sorted(params)}; pass the transform "
                "by name to set parameters"
            )
        return name
    if name is None:
        name = "identity"
    if isinstance(name, dict):
        spec = dict(name)
        if "name" not in spec:
            raise ValueError(
                f"a transform given as a dict needs a 'name' key (one of {list_transforms()}), "
                f"got keys {sorted(spec)}"
            )
        name = spec.pop("name")
        params = {**spec, **params}
    if not isinstance(name, str):
        raise TypeError(
            f"transform must be a name, a dict or a Transform, got {type(name).__name__}"
        )
    key = name.strip().lower()
    if key not in _TRANSFORMS:
        raise ValueError(
            f"unknown transform {name!r}; valid names are: {', '.join(list_transforms())}"
        )
    check_signature(_TRANSFORMS[key], params, f"transform {key!r}")
    return _TRANSFORMS[key](**params)


def to_uint8(x: np.ndarray, value_range: tuple[float, float], nan_value: int = 0) -> np.ndarray:
    """Map ``value_range`` linearly onto ``0 .. 255`` with a fixed scaling.

    Shorthand for ``ToUint8(*value_range, nan_value).forward(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> to_uint8(np.array([-15.0, 2.5, 20.0]), (-15.0, 20.0))
    array([  0, 128, 255], dtype=uint8)
    """
    lo, hi = value_range
    return ToUint8(lo, hi, nan_value).forward(x)
