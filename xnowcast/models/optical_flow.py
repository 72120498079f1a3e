"""Optical-flow nowcasting: motion from the last frames, scale-aware extrapolation.

The model estimates one motion field from the last ``n_flows`` frame pairs
(:func:`xnowcast.motion.estimate_motion`, on a fixed intensity transform of
the frames) and extrapolates along it for every lead time: by default with the
S-PROG-like cascade (:func:`xnowcast.extrapolation.cascade.extrapolate_cascade`:
small scales fade as they stop being predictable, the observed distribution is
kept), or by advecting the last observed frame as it is
(``extrapolation="advection"``, :func:`xnowcast.extrapolation.extrapolate`).
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from xnowcast.checks import choice, positive_int
from xnowcast.models.interface import NowcastModel
from xnowcast.motion.api import (
    DEFAULT_COMBINE,
    DEFAULT_METHOD,
    DEFAULT_N_FLOWS,
    DEFAULT_TRANSFORM,
    MAX_SPEED,
    estimate_motion,
    n_flows_for_step,
    pixel_speed_limit,
    speed_limit_option,
)
from xnowcast.motion.common import check_combine
from xnowcast.motion.interface import canonical_name, get_method, list_methods
from xnowcast.optional import import_optional
from xnowcast.transforms import continuous_transform, is_continuous

__all__ = [
    "CASCADE_DEFAULTS",
    "EXTRAPOLATIONS",
    "TRENDS",
    "OpticalFlow",
    "warn_implausible_motion",
]

if TYPE_CHECKING:
    from xnowcast.transforms import Transform

#: Valid values of ``trend``.
TRENDS = ("none", "global")

#: Largest growth or decay factor per step of ``trend="global"``.
MAX_TREND = 1.25

#: Valid values of ``extrapolation`` (the first is the default).
EXTRAPOLATIONS = ("cascade", "advection")

#: Options of ``extrapolation="cascade"`` (``extrapolation_kwargs``) and their defaults,
#: chosen on the shared radar data (``benchmarks/bench_optical_flow.py``).
CASCADE_DEFAULTS: dict[str, Any] = {"n_levels": 6, "ar_order": 2, "matching": 0.8}


def check_extrapolation(
    extrapolation: str, kwargs: dict[str, Any] | None, n_in: int
) -> tuple[str, dict[str, Any]]:
    """Validate ``extrapolation`` and its options; return them with the defaults filled in.

    Examples
    --------
    >>> check_extrapolation("cascade", {"n_levels": 4}, 12)
    ('cascade', {'n_levels': 4, 'ar_order': 2, 'matching': 0.8})
    >>> check_extrapolation("advection", {"n_levels": 6}, 12)
    Traceback (most recent call last):
    ...
    TypeError: extrapolation='advection' takes no extrapolation_kwargs, got ['n_levels']
    """
    from xnowcast.extrapolation.cascade import check_cascade_options

    name = choice(extrapolation, "extrapolation", EXTRAPOLATIONS)
    given = {} if kwargs is None else kwargs
    if not isinstance(given, dict):
        raise TypeError(f"extrapolation_kwargs must be a dict, got {type(given).__name__}")
    if name == "advection":
        if given:
            raise TypeError(
                f"extrapolation='advection' takes no extrapolation_kwargs, got {sorted(given)}"
            )
        return name, {}
    unknown = sorted(set(given) - set(CASCADE_DEFAULTS))
    if unknown:
        raise TypeError(
            f"unknown extrapolation_kwargs {unknown} for extrapolation='cascade'; valid "
            f"options are: {', '.join(CASCADE_DEFAULTS)}"
        )
    options = check_cascade_options(**{**CASCADE_DEFAULTS, **given})
    needed = int(options["ar_order"]) + 1
    if needed > n_in:
        raise ValueError(
            f"an AR({needed - 1}) cascade needs n_in >= {needed} input frames, got n_in={n_in}; "
            "lower ar_order or raise n_in"
        )
    return name, dict(options)


def warn_implausible_motion(flow: np.ndarray, limit: float) -> None:
    """Warn when ``flow`` (pixels per step) is faster than ``limit`` anywhere.

    Examples
    --------
    >>> import warnings
    >>> flow = np.zeros((2, 4, 4), "float32"); flow[0, 0, 0] = 50.0
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_implausible_motion(flow, limit=10.0)
    >>> "500 m/s" in str(caught[0].message)
    True
    """
    # no speed exceeds sqrt(2) times the largest component: most flows need no more
    if float(max(flow.max(), -flow.min())) * np.sqrt(2) < 0.999 * limit:
        return
    speed = np.hypot(flow[0], flow[1])
    fastest = float(np.nanmax(speed)) if np.isfinite(speed).any() else 0.0
    if fastest <= limit:
        return
    share = float(np.mean(speed > limit)) * 100
    warnings.warn(
        f"the estimated motion reaches {fastest:.0f} pixels per step, about "
        f"{fastest / limit * MAX_SPEED:.0f} m/s, beyond any physical speed (over "
        f"{MAX_SPEED:.0f} m/s on {share:.1f}% of the pixels): check the input frames (missing "
        "data encoded as values, frames of another scene) and the transform, which must suit "
        "the field's value range (docs/satellite.md)",
        UserWarning,
        stacklevel=4,
    )


class OpticalFlow(NowcastModel):
    """Optical-flow extrapolation nowcast (name ``"optical-flow"``).

    Parameters
    ----------
    method : str
        Motion method: ``"lucas-kanade"`` (``"lk"``, default), ``"dis"``,
        ``"farneback"`` or ``"tvl1"`` (needs ``opencv-contrib-python-headless``);
        see :mod:`xnowcast.motion`.
    n_flows : int, optional
        Number of most recent frame pairs whose flows are combined
        (``n_flows <= n_in - 1``). Default 2, or, when :func:`xnowcast.forecast`
        forecasts a cube (:meth:`for_cube`), the pairs of the last 10 minutes
        (:func:`xnowcast.motion.api.n_flows_for_step`: 2 for 5- and 6-minute
        radar, 5 for 2-minute frames).
    combine : {"weighted", "median"}
        Weighted mean (recent pairs weigh more) or pixel-wise median.
    transform : str or dict
        Intensity transform for motion estimation and for the cascade
        (:func:`xnowcast.transforms.get_transform`); default dBR with a
        0.1 mm/h threshold, or, when :func:`xnowcast.forecast` forecasts a
        continuous field (a satellite channel; :meth:`for_cube`), a fixed
        ``{"name": "scale", "vmin": ..., "vmax": ...}`` of its value range.
        The forecast is in the units of the input.
    trend : {"none", "global"}
        Growth/decay of intensities along the flow. ``"none"`` keeps the
        advected values. ``"global"`` measures one growth factor per step
        ``g``: the total of the last frame over the total of the previous frame
        advected one step (pixels valid in both, rain at or above the
        transform's threshold), limited to ``[1/1.25, 1.25]``, and multiplies
        lead time ``k`` by ``g**k``.
    fill : float
        Value of pixels advected in from outside the domain (default ``NaN``).
    interpolation : {"linear", "nearest", "cubic"}
        Interpolation of the advected frame.
    extrapolation : {"cascade", "advection"}, optional
        ``"cascade"`` (default; ``"advection"`` for continuous fields, see
        :meth:`for_cube`): scale-aware extrapolation
        (:func:`xnowcast.extrapolation.cascade.extrapolate_cascade`): the last
        frames in the ``transform`` space are split into spatial scales, each
        scale decays with lead time as fast as it lost correlation over the
        last frames (S-PROG, Seed 2003), and the result is matched to the
        distribution of the last frame and advected. ``"advection"``: the
        last frame advected as it is.
    extrapolation_kwargs : dict, optional
        Options of ``"cascade"`` (:data:`CASCADE_DEFAULTS`): ``n_levels``
        (cascade levels, default 6), ``ar_order`` (1 or 2, default 2) and
        ``matching`` (``"cdf"``, ``"mean"``, ``"none"`` or a weight between 0,
        mean matching as S-PROG, and 1, full CDF matching; see
        :mod:`xnowcast.probmatching`).
    n_in, n_out : int
        Input frames per window and lead times (see :class:`NowcastModel`).
    **options
        Method-specific options, e.g. ``preset="medium"`` for DIS,
        ``sigma=10`` for Lucas-Kanade, ``smooth=2`` (all methods).

    Notes
    -----
    The defaults (Lucas-Kanade, two frame pairs, dBR, no trend, a 6-level
    AR(2) cascade with matching) were chosen on the shared MeteoSwiss, KNMI
    and BOM radar data against pysteps; see ``docs/optical-flow.md`` and
    ``benchmarks/bench_optical_flow.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast import get_model
    >>> model = get_model("optical-flow", n_flows=2, n_in=3, n_out=4)
    >>> frames = np.zeros((1, 3, 32, 32), "float32"); frames[0, :, 10:20, 10:20] = 5.0
    >>> model.predict(frames).shape
    (1, 4, 32, 32)
    """

    name = "optical-flow"
    min_n_in = 2

    def __init__(
        self,
        method: str = DEFAULT_METHOD,
        n_flows: int | None = None,
        combine: str = DEFAULT_COMBINE,
        transform: str | dict[str, Any] | Transform | None = None,
        trend: str = "none",
        fill: float = float("nan"),
        interpolation: str = "linear",
        extrapolation: str | None = None,
        extrapolation_kwargs: dict[str, Any] | None = None,
        *,
        n_in: int = 12,
        n_out: int = 24,
        **options: Any,
    ) -> None:
        super().__init__(n_in=n_in, n_out=n_out)
        import_optional("cv2", "the optical-flow model")  # fail now, not at the first forecast
        from xnowcast.extrapolation.semilagrangian import INTERPOLATIONS
        from xnowcast.motion.api import check_options
        from xnowcast.transforms import get_transform

        if not isinstance(method, str):
            raise TypeError(f"method must be a name, one of {', '.join(list_methods())}")
        estimator = get_method(method)  # raises listing the valid names
        self.method = canonical_name(method)
        if self.method == "tvl1":
            from xnowcast.motion.tvl1 import require_tvl1

            require_tvl1()  # fail now, not at the first forecast
        pairs = int(positive_int(DEFAULT_N_FLOWS if n_flows is None else n_flows, "n_flows"))
        if pairs > self.n_in - 1:
            raise ValueError(
                f"n_flows={pairs} frame pairs need n_in >= {pairs + 1} input frames, got "
                f"n_in={self.n_in}; lower n_flows or raise n_in"
            )
        self.n_flows = pairs
        self.combine = check_combine(combine)
        tf = get_transform(DEFAULT_TRANSFORM if transform is None else transform)
        self.transform = tf.to_dict()
        self.trend = choice(trend, "trend", TRENDS)
        try:
            self.fill = float(fill)
        except (TypeError, ValueError):
            raise TypeError(f"fill must be a number (or nan), got {fill!r}") from None
        self.interpolation = choice(interpolation, "interpolation", INTERPOLATIONS)
        #: Defaults the user left, which the cube may choose (:meth:`for_cube`).
        self._by_cube = {
            "n_flows": n_flows is None,
            "transform": transform is None,
            "extrapolation": extrapolation is None and extrapolation_kwargs is None,
        }
        self.extrapolation, self.extrapolation_kwargs = check_extrapolation(
            EXTRAPOLATIONS[0] if extrapolation is None else extrapolation,
            extrapolation_kwargs,
            self.n_in,
        )
        #: Largest plausible motion in pixels per step (set by :meth:`for_cube`), or None.
        self.max_speed: float | None = None
        #: Parameters :meth:`for_cube` chose from the cube's quantity.
        self.adapted: dict[str, Any] = {}
        check_options(estimator, options)
        self.options = dict(options)
        self._transform = tf

    def for_cube(self, cube: Any, info: Any) -> OpticalFlow:
        """This model as it forecasts ``cube``: defaults chosen from its step and quantity,
        speed checked.

        ``n_flows``, if the user left it, becomes the number of frame pairs of
        the last 10 minutes (:func:`xnowcast.motion.api.n_flows_for_step`): 2
        on 5- and 6-minute radar (the default), more on faster cadences, whose
        one-step motion is small against the tracking noise.

        For a continuous field (:func:`xnowcast.transforms.is_continuous`: a
        satellite channel, not precipitation), the defaults the user left are
        replaced: ``transform`` by a fixed scaling of the field's value range
        (:func:`xnowcast.transforms.continuous_transform`, from its
        ``valid_range`` or its last frame) instead of dBR, which saturates at
        100 and sees a continuous field as all rain; ``extrapolation`` by
        ``"advection"``, since the cascade's no-rain floor and its smoothing of
        small scales suit rain fields with a dry background (on the SEVIRI
        cube it is worse than persistence at short leads, docs/satellite.md).
        The chosen parameters are the model's (``get_params``, forecast
        attributes). Radar cubes of 5 or 6 minutes keep every other default.

        The cell size and time step of projected and latitude-longitude grids
        (:func:`xnowcast.conventions.cell_size`) also set :attr:`max_speed`,
        :data:`~xnowcast.motion.api.MAX_SPEED` (m/s) in pixels per step: a motion
        field faster than that warns, and Lucas-Kanade, unless given its own
        ``max_speed``, gets it as that option (recorded with the parameters) and
        leaves out faster vectors.

        Parameters
        ----------
        cube : DataArray
            The normalised cube (``time, y, x``).
        info : CubeInfo
            What :func:`xnowcast.conventions.normalize_cube` found.

        Examples
        --------
        >>> import numpy as np, pandas as pd, xarray as xr
        >>> from xnowcast import get_model
        >>> from xnowcast.conventions import normalize_cube
        >>> sat = xr.DataArray(np.random.default_rng(0).uniform(50, 800, (3, 16, 16)),
        ...     dims=("time", "y", "x"), attrs={"units": "1"},
        ...     coords={"time": pd.date_range("2020-04-01", periods=3, freq="5min"),
        ...             "y": ("y", 3000.0 * np.arange(16), {"units": "m"}),
        ...             "x": ("x", 3000.0 * np.arange(16), {"units": "m"})})
        >>> cube, info = normalize_cube(sat)
        >>> model = get_model("optical-flow", n_in=3, n_out=2).for_cube(cube, info)
        >>> model.transform, model.extrapolation, model.max_speed
        ({'name': 'scale', 'vmin': 0.0, 'vmax': 800.0, 'clip': False}, 'advection', 10.0)
        >>> fast, info = normalize_cube(sat.assign_coords(time=pd.date_range(
        ...     "2020-04-01", periods=3, freq="2min")))
        >>> get_model("optical-flow", n_in=12).for_cube(fast, info).n_flows  # 10 minutes
        5
        """
        changes: dict[str, Any] = {}
        pairs = self.n_flows_for(info)
        if pairs != self.n_flows:
            changes["n_flows"] = pairs
        if (self._by_cube["transform"] or self._by_cube["extrapolation"]) and is_continuous(cube):
            if self._by_cube["transform"]:
                last = cube.isel({info.time_dim: -1}).values
                changes["transform"] = continuous_transform(cube, last)
            if self._by_cube["extrapolation"]:
                changes.update(extrapolation="advection", extrapolation_kwargs=None)
        limit = pixel_speed_limit(cube, info)
        changes.update(speed_limit_option(self.method, self.options, limit))
        model = self._with_params(changes) if changes else copy.copy(self)
        model.adapted = {**self.adapted, **changes}
        model.max_speed = limit
        return model

    def n_flows_for(self, info: Any) -> int:
        """The frame pairs this model tracks on a cube: ``n_flows`` as given, or, left to
        the default, the pairs of the last 10 minutes of the cube's step
        (:func:`xnowcast.motion.api.n_flows_for_step`).

        Parameters
        ----------
        info : CubeInfo
            What :func:`xnowcast.conventions.normalize_cube` found (its ``step``).

        Examples
        --------
        >>> from xnowcast import get_model
        >>> from xnowcast.conventions import normalize_cube
        >>> from xnowcast.datasets import synthetic_radar
        >>> import pandas as pd
        >>> cube = synthetic_radar(n_times=4, size=8)
        >>> every_2min = pd.date_range("2024-01-01", periods=4, freq="2min")
        >>> info = normalize_cube(cube.assign_coords(time=every_2min))[1]
        >>> get_model("optical-flow").n_flows_for(info)  # the pairs of 10 minutes
        5
        >>> get_model("optical-flow", n_flows=3).n_flows_for(info)
        3
        """
        if not self._by_cube["n_flows"]:
            return self.n_flows
        return n_flows_for_step(info.step, self.n_in)

    def _with_params(self, changes: dict[str, Any]) -> OpticalFlow:
        new = type(self)(**{**self.get_params(), **changes})
        new.settings = self.settings
        return new

    def get_params(self) -> dict[str, Any]:
        """Parameters that rebuild this model with ``get_model("optical-flow", **params)``."""
        return {
            **super().get_params(),
            "method": self.method,
            "n_flows": self.n_flows,
            "combine": self.combine,
            "transform": copy.deepcopy(self.transform),
            "trend": self.trend,
            "fill": self.fill,
            "interpolation": self.interpolation,
            "extrapolation": self.extrapolation,
            "extrapolation_kwargs": copy.deepcopy(self.extrapolation_kwargs),
            **copy.deepcopy(self.options),
        }

    def motion(self, frames: np.ndarray) -> np.ndarray:
        """The ``(2, y, x)`` motion field (pixels per step) of one ``(t, y, x)`` window."""
        return estimate_motion(
            frames[-(self.n_flows + 1) :],
            method=self.method,
            n_flows=self.n_flows,
            combine=self.combine,
            transform=self._transform,
            **self.options,
        )

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Forecast ``(batch, n_out, y, x)`` from ``(batch, n_in, y, x)``."""
        inputs = np.asarray(inputs, dtype=np.float32)
        if inputs.ndim != 4 or inputs.shape[1] != self.n_in:
            raise ValueError(
                f"inputs must have shape (batch, n_in={self.n_in}, y, x), got {inputs.shape}"
            )
        batch, _, ny, nx = inputs.shape
        out = np.empty((batch, self.n_out, ny, nx), np.float32)
        for b in range(batch):
            flow = self.motion(inputs[b])
            if self.max_speed is not None:
                warn_implausible_motion(flow, self.max_speed)
            self.extrapolate(inputs[b], flow, out=out[b])
            if self.trend == "global":
                growth = self.growth(inputs[b, -2], inputs[b, -1], flow)
                if growth != 1.0:
                    factors = growth ** np.arange(1, self.n_out + 1, dtype=np.float32)
                    out[b] *= factors[:, None, None]
        return out

    def extrapolate(
        self, frames: np.ndarray, flow: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The ``(n_out, y, x)`` forecast of one ``(t, y, x)`` window along ``flow``.

        ``out``: where to write it (a C-contiguous float32 array), as in
        :func:`xnowcast.extrapolation.extrapolate`. On a CUDA GPU (the run
        setting ``device``, :func:`~xnowcast.extrapolation.accelerated.accelerator`)
        the lead times are filtered and advected there.
        """
        from xnowcast.extrapolation import extrapolate
        from xnowcast.extrapolation.accelerated import accelerator
        from xnowcast.extrapolation.cascade import extrapolate_cascade

        common: dict[str, Any] = dict(
            fill=self.fill,
            interpolation=self.interpolation,
            out=out,
            device=accelerator(self.settings.device),
        )
        if self.extrapolation == "advection":
            return extrapolate(frames[-1], flow, self.n_out, **common)
        return extrapolate_cascade(
            frames,
            flow,
            self.n_out,
            transform=self._transform,
            **common,
            **self.extrapolation_kwargs,
        )

    def growth(self, previous: np.ndarray, last: np.ndarray, flow: np.ndarray) -> np.float32:
        """Growth factor per step of ``trend="global"`` (1 without rain)."""
        from xnowcast.extrapolation import extrapolate

        moved = extrapolate(previous, flow, 1)[0]
        both = np.isfinite(moved) & np.isfinite(last)
        threshold = float(self._transform.get_params().get("threshold", 0.0))
        before = np.where(both & (moved >= threshold), moved, 0).sum(dtype=np.float64)
        after = np.where(both & (last >= threshold), last, 0).sum(dtype=np.float64)
        if before <= 0 or after <= 0:
            return np.float32(1.0)
        return np.float32(np.clip(after / before, 1 / MAX_TREND, MAX_TREND))
