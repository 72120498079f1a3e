"""Motion estimation on physical frames and on xarray cubes.

:func:`estimate_motion` (numpy) transforms physical frames (e.g. rain rate in
mm/h) with a fixed intensity transform, maps them onto 8-bit images with the
transform's fixed range and runs a motion method. :func:`motion` does the
same for a cube and returns a labelled :class:`xarray.Dataset`.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import positive_int, real
from xnowcast.motion.common import check_combine, check_frames, check_range
from xnowcast.motion.interface import get_method, get_validator
from xnowcast.transforms import Transform, get_transform

__all__ = [
    "DEFAULT_COMBINE",
    "DEFAULT_METHOD",
    "DEFAULT_N_FLOWS",
    "DEFAULT_TRANSFORM",
    "MAX_SPEED",
    "MOTION_SPAN",
    "check_options",
    "estimate_motion",
    "method_options",
    "motion",
    "n_flows_for_step",
    "pixel_speed_limit",
    "speed_limit_option",
]

#: Defaults shared by :func:`motion` and the ``"optical-flow"`` model, chosen on
#: the shared radar data (``benchmarks/tune_optical_flow.py``).
DEFAULT_METHOD = "lucas-kanade"
DEFAULT_N_FLOWS = 2
DEFAULT_COMBINE = "weighted"
DEFAULT_TRANSFORM: dict[str, Any] = {
    "name": "dbr",
    "threshold": 0.1,
    "zerovalue": -15.0,
    "vmax": 100.0,
}

#: Time the frame pairs of the ``"optical-flow"`` model's motion span when the
#: user leaves ``n_flows`` (:func:`n_flows_for_step`): two pairs of 5- or 6-minute
#: radar, five of 2-minute radar (whose one-step motion is mostly tracking noise).
MOTION_SPAN = np.timedelta64(10, "m")


def n_flows_for_step(step: Any, n_in: int) -> int:
    """Frame pairs that span about :data:`MOTION_SPAN` at time step ``step``.

    ``round(MOTION_SPAN / step)``, at least :data:`DEFAULT_N_FLOWS` (one pair
    of 15-minute frames tracks too little) and at most ``n_in - 1`` (the pairs
    of the input window). On the shared 5- and 6-minute radar this is the
    default of 2 pairs that the benchmark chose; on 2-minute MRMS frames 2
    pairs track mostly noise (``docs/optical-flow.md``, events the defaults
    never saw).

    Parameters
    ----------
    step : timedelta-like
        The cube's time step.
    n_in : int
        Input frames of the model's windows.

    Examples
    --------
    >>> import numpy as np
    >>> [n_flows_for_step(np.timedelta64(m, "m"), 12) for m in (1, 2, 5, 6, 15)]
    [10, 5, 2, 2, 2]
    >>> n_flows_for_step(np.timedelta64(2, "m"), n_in=4)
    3
    """
    pairs = round(float(MOTION_SPAN / np.timedelta64(step, "ns")))
    return int(min(max(pairs, DEFAULT_N_FLOWS), max(n_in - 1, 1)))


def _method_name(method: Any) -> str:
    return getattr(method, "__name__", str(method))


#: Fastest plausible motion of a precipitation or cloud field, m/s (jet-stream winds). On a
#: cube with a known grid spacing and time step, Lucas-Kanade leaves out faster vectors
#: (:func:`motion` and the optical-flow model pass ``max_speed``) and the optical-flow
#: model warns of a faster motion field.
MAX_SPEED = 100.0


def pixel_speed_limit(cube: Any, info: Any) -> float | None:
    """:data:`MAX_SPEED` in pixels per time step of ``cube``, or ``None`` without a metric grid.

    The cells are those of :func:`xnowcast.conventions.cell_size`: a projected grid's
    spacing, a latitude-longitude grid's cells at its central latitude.

    Examples
    --------
    >>> from xnowcast.conventions import normalize_cube
    >>> from xnowcast.datasets import synthetic_radar
    >>> pixel_speed_limit(*normalize_cube(synthetic_radar(n_times=2, size=8)))  # 1 km, 5 min
    30.0
    """
    from xnowcast.conventions import cell_size

    spacing = cell_size(cube, info)
    if spacing is None or min(abs(spacing[0]), abs(spacing[1])) == 0:
        return None
    seconds = float(np.timedelta64(info.step, "ns").astype(np.int64)) / 1e9
    return MAX_SPEED * seconds / min(abs(spacing[0]), abs(spacing[1]))


def speed_limit_option(method: str, options: dict[str, Any], limit: float | None) -> dict[str, Any]:
    """``{"max_speed": limit}`` when ``method`` takes it and ``options`` set none, else ``{}``.

    Examples
    --------
    >>> speed_limit_option("lucas-kanade", {"sigma": 6.0}, 30.0)
    {'max_speed': 30.0}
    >>> speed_limit_option("lucas-kanade", {"max_speed": 50.0}, 30.0)  # the user's stays
    {}
    >>> speed_limit_option("farneback", {}, 30.0)  # a dense method: nothing to leave out
    {}
    """
    if limit is None or "max_speed" in options:
        return {}
    if "max_speed" not in method_options(get_method(method)):
        return {}
    return {"max_speed": limit}


def estimate_motion(
    frames: np.ndarray,
    *,
    method: str = DEFAULT_METHOD,
    n_flows: int = DEFAULT_N_FLOWS,
    combine: str = DEFAULT_COMBINE,
    transform: str | dict[str, Any] | Transform | None = None,
    **options: Any,
) -> np.ndarray:
    """Motion of the last frames of a ``(t, y, x)`` sequence in physical units.

    Parameters
    ----------
    frames : (t, y, x) array
        Frames in time order, physical units, ``NaN`` = missing.
    method : str
        A name from :func:`xnowcast.motion.list_methods`.
    n_flows : int
        Number of most recent frame pairs combined.
    combine : {"weighted", "median"}
        How the flows of the pairs are combined.
    transform : str, dict or Transform, optional
        Intensity transform applied before estimating motion (default: dBR
        with a 0.1 mm/h threshold, :data:`DEFAULT_TRANSFORM`). Its fixed
        ``output_range`` is mapped onto the 8-bit images OpenCV works on,
        unless ``value_range`` is given.
    **options
        Method-specific options (see each method's documentation).

    Returns
    -------
    (2, y, x) float32
        ``u`` (+x) and ``v`` (+y) in pixels per step. Frames without any
        structure (all missing, all equal) give zero motion.

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast.motion import estimate_motion
    >>> bool(estimate_motion(np.zeros((4, 16, 16))).any())
    False
    """
    tf = get_transform(DEFAULT_TRANSFORM if transform is None else transform)
    estimator = get_method(method)
    frames = check_frames(frames, n_flows)
    check_combine(combine)
    options.setdefault("value_range", tf.output_range)
    check_options(estimator, options)
    z = tf.forward(frames[-(n_flows + 1) :])
    if _constant(z):  # nothing to track
        return np.zeros((2, *frames.shape[1:]), np.float32)
    try:
        return estimator(z, n_flows=n_flows, combine=combine, **options)
    except Exception as err:
        if type(err).__module__.partition(".")[0] != "cv2":
            raise
        lines = str(err).strip().splitlines()
        raise ValueError(
            f"OpenCV rejected motion method {_method_name(estimator)!r} on frames of "
            f"{frames.shape[1]} x {frames.shape[2]} pixels with options "
            f"{ {k: v for k, v in options.items() if k != 'value_range'} }: "
            f"{lines[-1] if lines else err}; change the options or use larger frames"
        ) from None


def _constant(z: np.ndarray) -> bool:
    """Whether ``z`` has no finite value, or one finite value only (NaN and inf left out)."""
    flat = z.reshape(-1)
    lo, hi = np.fmin.reduce(flat), np.fmax.reduce(flat)  # NaN left out, without a copy
    if not (np.isfinite(lo) and np.isfinite(hi)):  # none, or infinite values: the slow way
        finite = flat[np.isfinite(flat)]
        return bool(finite.size == 0 or finite.min() == finite.max())
    return bool(lo == hi)


def method_options(estimator: Any) -> list[str]:
    """Names of the options a motion method takes (besides ``n_flows`` and ``combine``).

    Examples
    --------
    >>> from xnowcast.motion import get_method
    >>> "max_speed" in method_options(get_method("lucas-kanade"))
    True
    >>> "max_speed" in method_options(get_method("farneback"))
    False
    """
    params = inspect.signature(estimator).parameters.values()
    return [
        p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("n_flows", "combine")
    ]


def check_options(estimator: Any, options: dict[str, Any]) -> None:
    """Raise a TypeError naming the valid options when ``options`` has unknown ones.

    A bad option value (``smooth``, ``value_range``, and those the method's registered
    option check, :func:`xnowcast.motion.interface.get_validator`, rejects, such as an
    unknown ``preset``) is a ``ValueError`` naming it, so that a model with bad options
    fails when it is made, not inside OpenCV at its first forecast.

    Examples
    --------
    >>> from xnowcast.motion import get_method
    >>> check_options(get_method("dis"), {"preset": "slow"})
    Traceback (most recent call last):
    ...
    ValueError: unknown DIS preset 'slow'; valid presets are: ultrafast, fast, medium
    """
    valid = method_options(estimator)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for motion method {_method_name(estimator)!r}; "
            f"valid options are: {', '.join(valid)}"
        )
    if "smooth" in options:
        real(options["smooth"], "smooth (sigma in pixels)", low=0)
    if "value_range" in options:
        check_range(options["value_range"])
    validate = get_validator(estimator)
    if validate is not None:  # the method's own checks of its option values
        validate(**options)


def _default_transform(cube: xr.DataArray, time_dim: str, positions: Any) -> dict[str, Any]:
    """dBR for precipitation; a fixed scaling of the value range for continuous fields."""
    from xnowcast.transforms import continuous_transform, is_continuous

    if not is_continuous(cube):
        return DEFAULT_TRANSFORM
    last = cube.isel({time_dim: int(max(positions))}).values
    return continuous_transform(cube, last)


def motion(
    cube: xr.DataArray | xr.Dataset,
    method: str = DEFAULT_METHOD,
    *,
    n_flows: int | None = None,
    combine: str = DEFAULT_COMBINE,
    transform: str | dict[str, Any] | Transform | None = None,
    time: Any = None,
    var: str | None = None,
    **options: Any,
) -> xr.Dataset:
    """The motion field of a cube, labelled.

    Parameters
    ----------
    cube : DataArray or Dataset
        Frames ``(time, y, x)`` (see :func:`xnowcast.conventions.normalize_cube`).
    method : str
        Motion method (:func:`xnowcast.motion.list_methods`).
    n_flows, combine, transform, **options
        See :func:`estimate_motion`. The defaults follow the cube as the
        optical-flow model does: ``n_flows`` the frame pairs of the last 10
        minutes (:func:`n_flows_for_step`: 2 for 5- and 6-minute radar, at
        most the pairs the cube has), ``transform`` its quantity: dBR for
        precipitation, a fixed scaling of the value range for continuous
        fields such as satellite channels
        (:func:`xnowcast.transforms.continuous_transform`); and on a projected
        grid, a method that takes ``max_speed`` (Lucas-Kanade) leaves out
        vectors faster than :data:`MAX_SPEED` (:func:`pixel_speed_limit`).
    time : optional
        Time(s) of the motion: the flow uses the ``n_flows + 1`` frames
        ending at that time. ``None`` (default): the last frame; a timestamp
        or a list of timestamps; ``"all"``: every time with enough frames
        before it (adds a ``time`` dimension for lists and ``"all"``).
    var : str, optional
        Variable of a Dataset holding several.

    Returns
    -------
    xarray.Dataset
        ``u``, ``v``: motion in pixels per time step along the ``x`` and
        ``y`` *array* axes (``u > 0``: towards increasing column index;
        ``v > 0``: towards increasing row index). When the grid is projected
        with spacing in metres, also ``u_ms``, ``v_ms`` in m/s along
        increasing ``x`` and ``y`` *coordinate* values (for the usual
        north-up grid with ``y`` decreasing down the rows, ``v_ms > 0`` is
        northward while ``v > 0`` is southward), and ``speed`` in m/s.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> from xnowcast.motion import motion
    >>> uv = motion(synthetic_radar(n_times=4, size=48), "dis", n_flows=2)
    >>> sorted(uv.data_vars)[:2], uv.u.attrs["units"]
    (['speed', 'u'], 'pixel / time step')
    """
    from xnowcast.conventions import as_times, grid_spacing, normalize_cube

    if n_flows is not None:
        positive_int(n_flows, "n_flows")
    cube, info = normalize_cube(
        cube,
        var,
        min_frames=2 if n_flows is None else n_flows + 1,
        need=f"n_flows={n_flows or 1} frame pairs; give a longer cube or a smaller n_flows",
    )
    if n_flows is None:
        n_flows = n_flows_for_step(info.step, cube.sizes[info.time_dim])
    times = pd.DatetimeIndex(cube[info.time_dim].values)
    if time is None:
        scalar, wanted = True, times[-1:]
    elif isinstance(time, str) and time == "all":
        scalar, wanted = False, times[n_flows:]
    else:
        scalar = np.ndim(time) == 0
        if isinstance(time, slice):
            raise TypeError(
                "time takes a time, a list of times or 'all', not a slice; select "
                "the frames with cube.sel(time=slice(...)) and pass time='all'"
            )
        wanted = as_times(time, "time")
        if len(wanted) == 0:
            raise ValueError("time is an empty list; give at least one time (or 'all')")
    positions = times.get_indexer(wanted)
    for t, i in zip(wanted, positions):
        if i < 0:
            raise ValueError(f"time {t} is not a frame of the cube; choose one of its times")
        if i < n_flows:
            raise ValueError(
                f"time {t} has only {i} earlier frame(s), n_flows={n_flows} needs {n_flows}; "
                "choose a later time or a smaller n_flows"
            )
    tf = get_transform(
        _default_transform(cube, info.time_dim, positions) if transform is None else transform
    )
    options = {**options, **speed_limit_option(method, options, pixel_speed_limit(cube, info))}
    flows = np.stack(
        [
            estimate_motion(
                cube.isel({info.time_dim: slice(i - n_flows, i + 1)}).values,
                method=method,
                n_flows=n_flows,
                combine=combine,
                transform=tf,
                **options,
            )
            for i in positions
        ]
    )
    step_s = pd.Timedelta(info.step).total_seconds()
    spatial = {
        name: c for name, c in cube.coords.items() if set(c.dims) <= {info.y_dim, info.x_dim}
    }
    dims = (info.time_dim, info.y_dim, info.x_dim)
    common = {
        "method": _method_name(get_method(method)),
        "n_flows": int(n_flows),
        "combine": combine,
        "time_step": str(pd.Timedelta(info.step)),
    }
    ds = xr.Dataset(
        {
            "u": (
                dims,
                flows[:, 0],
                {
                    "long_name": "motion along the x array axis (increasing column index)",
                    "units": "pixel / time step",
                    **common,
                },
            ),
            "v": (
                dims,
                flows[:, 1],
                {
                    "long_name": "motion along the y array axis (increasing row index)",
                    "units": "pixel / time step",
                    **common,
                },
            ),
        },
        coords={info.time_dim: wanted.values, **spatial},
    )
    spacing = grid_spacing(cube, info)
    if spacing is not None and step_s > 0:
        dy, dx = spacing
        ds["u_ms"] = ds.u * np.float32(dx / step_s)
        ds["u_ms"].attrs = {
            "long_name": "motion along increasing x coordinate",
            "units": "m s-1",
            **common,
        }
        ds["v_ms"] = ds.v * np.float32(dy / step_s)
        ds["v_ms"].attrs = {
            "long_name": "motion along increasing y coordinate",
            "units": "m s-1",
            **common,
        }
        ds["speed"] = np.hypot(ds.u_ms, ds.v_ms)
        ds["speed"].attrs = {"long_name": "motion speed", "units": "m s-1", **common}
    else:
        ds["speed"] = np.hypot(ds.u, ds.v)
        ds["speed"].attrs = {"long_name": "motion speed", "units": "pixel / time step", **common}
    ds.attrs = {
        "sign_convention": "u > 0 towards increasing column index, v > 0 towards increasing "
        "row index (pixels per step); u_ms/v_ms > 0 towards increasing x/y "
        "coordinate values",
        "transform": str(tf.to_dict()),
        **({"options": str(options)} if options else {}),
    }
    if scalar:
        ds = ds.isel({info.time_dim: 0})
    return ds
