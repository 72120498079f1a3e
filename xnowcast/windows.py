"""Input/target windows over a cube that never span a time gap.

One windowing layer serves forecasting (input windows, ``n_out=0``), training
(``n_in + n_out`` frames) and verification. Only the time index is inspected:
windows are lazy slices of the cube and nothing is loaded until a window's
data is used.

A *run* is a stretch of frames spaced exactly one time step apart (and, when
the cube carries a ``sequence_id`` coordinate along time, with one sequence
id). A window lies inside one run; a gap ends a window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from xnowcast.checks import integer, positive_int
from xnowcast.conventions import CubeInfo, as_interval, as_times, normalize_cube

__all__ = ["SEQUENCE_ID", "Window", "Windows", "select_init_times", "windows"]

#: Name of the optional coordinate along time that splits a cube into sequences
#: (written by :func:`xnowcast.sequences.split_dataset`). Windows never cross
#: from one sequence into another.
SEQUENCE_ID = "sequence_id"


class Window(NamedTuple):
    """One window: ``inputs`` (``n_in`` frames) and ``targets`` (``n_out`` frames)."""

    inputs: xr.DataArray
    targets: xr.DataArray


@dataclass(frozen=True, repr=False)
class Windows(Sequence):
    """The windows of a cube; a lazy sequence of :class:`Window`.

    Attributes
    ----------
    cube : DataArray
        The cube, ordered ``(time, y, x)``.
    info : CubeInfo
        Dims and time step of the cube.
    n_in, n_out, stride : int
        Window layout.
    starts : numpy.ndarray
        Index (along time) of the first input frame of each window.
    n_skipped : int
        Windows lost to gaps compared with a gap-free cube of the same length.
    n_gaps : int
        Number of breaks (time gaps or sequence changes) in the cube.
    """

    cube: xr.DataArray
    info: CubeInfo
    n_in: int
    n_out: int
    stride: int
    starts: np.ndarray
    n_skipped: int
    n_gaps: int

    @property
    def init_indices(self) -> np.ndarray:
        """Index of the last input frame (the init time) of each window."""
        return self.starts + self.n_in - 1

    @property
    def init_times(self) -> pd.DatetimeIndex:
        """Init time (time of the last input frame) of each window."""
        times = pd.DatetimeIndex(self.cube[self.info.time_dim].values)
        return times[self.init_indices]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        start = int(self.starts[i])
        mid = start + self.n_in
        t = self.info.time_dim
        return Window(
            inputs=self.cube.isel({t: slice(start, mid)}),
            targets=self.cube.isel({t: slice(mid, mid + self.n_out)}),
        )

    def __iter__(self) -> Iterator[Window]:
        for i in range(len(self)):
            yield self[i]

    def torch(self, **kwargs: Any) -> Any:
        """These windows as a PyTorch ``Dataset`` that a ``DataLoader`` batches.

        Forwards to :meth:`xnowcast.training.WindowDataset.from_windows`: a
        sample is ``(inputs, targets, mask)``, float32 tensors of shapes
        ``(n_in, y, x)``, ``(n_out, y, x)`` and ``(n_out, y, x)`` (1 where the
        target has data), read window by window.

        Parameters
        ----------
        **kwargs
            Options of :class:`xnowcast.training.WindowDataset`: ``transform``
            (default ``"log"``; ``None`` keeps physical values), ``crop``,
            ``flips``, ``seed``, ...

        Returns
        -------
        xnowcast.training.WindowDataset

        Examples
        --------
        >>> from torch.utils.data import DataLoader
        >>> from xnowcast.datasets import synthetic_radar
        >>> wins = synthetic_radar(n_times=12, size=32).nowcast.windows(4, 2)
        >>> inputs, targets, mask = next(iter(DataLoader(wins.torch(transform=None), batch_size=4)))
        >>> tuple(inputs.shape), tuple(targets.shape), tuple(mask.shape)
        ((4, 4, 32, 32), (4, 2, 32, 32), (4, 2, 32, 32))
        """
        from xnowcast.optional import import_optional

        import_optional("torch", "windows as a PyTorch Dataset")
        from xnowcast.training.dataset import WindowDataset

        return WindowDataset.from_windows(self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<Windows: {len(self)} windows of {self.n_in} input + {self.n_out} target frames, "
            f"stride {self.stride}, step {pd.Timedelta(self.info.step)}; "
            f"{self.n_skipped} skipped at {self.n_gaps} gap(s)>"
        )


def _run_ids(cube: xr.DataArray, info: CubeInfo) -> np.ndarray:
    """Integer run id per frame; a new run starts after each gap."""
    times = cube[info.time_dim].values
    breaks = np.zeros(len(times), dtype=bool)
    if len(times) > 1:
        breaks[1:] = np.diff(times) != info.step
    if SEQUENCE_ID in cube.coords and cube[SEQUENCE_ID].dims == (info.time_dim,):
        seq = np.asarray(cube[SEQUENCE_ID].values)
        breaks[1:] |= seq[1:] != seq[:-1]
    return np.cumsum(breaks)


def windows(
    cube: xr.DataArray | xr.Dataset,
    n_in: int = 12,
    n_out: int = 24,
    stride: int = 1,
    *,
    var: str | None = None,
) -> Windows:
    """Cut a cube into input/target windows that never span a time gap.

    Parameters
    ----------
    cube : DataArray or Dataset
        The cube (``time, y, x``); a Dataset needs ``var`` when it holds
        several variables.
    n_in : int
        Input frames per window.
    n_out : int
        Target frames per window (0 for forecasting, where no target exists).
    stride : int
        Step, in frames, between the starts of consecutive windows of a run.
    var : str, optional
        Variable of a Dataset.

    Returns
    -------
    Windows
        A lazy sequence of ``(inputs, targets)`` pairs; ``len()`` is the number
        of windows, ``.init_times`` their init times, ``.n_skipped`` how many
        were lost to gaps.

    Examples
    --------
    >>> from xnowcast.datasets import synthetic_radar
    >>> cube = synthetic_radar(n_times=40, size=32)
    >>> w = windows(cube.drop_isel(time=[20]), n_in=12, n_out=6)
    >>> len(w), w.n_skipped, w.n_gaps
    (5, 17, 1)
    >>> w[0].inputs.sizes["time"], w[0].targets.sizes["time"]
    (12, 6)
    """
    for value, name in ((n_in, "n_in"), (stride, "stride")):
        positive_int(value, name)
    integer(n_out, "n_out", low=0)
    length = n_in + n_out
    need = (
        (
            f"n_in={n_in} input + n_out={n_out} target frames per window; give a longer cube "
            "or smaller n_in/n_out"
        )
        if n_out
        else None
    )
    cube, info = normalize_cube(cube, var, min_frames=length, need=need)
    runs = _run_ids(cube, info)
    # Start of the run each frame belongs to, and the run's length.
    run_start = np.r_[0, np.nonzero(np.diff(runs))[0] + 1]
    run_len = np.diff(np.r_[run_start, len(runs)])
    starts = [
        np.arange(s, s + n - length + 1, stride) for s, n in zip(run_start, run_len) if n >= length
    ]
    starts_arr = np.concatenate(starts) if starts else np.zeros(0, dtype=int)
    gap_free = len(range(0, len(runs) - length + 1, stride))
    return Windows(
        cube=cube,
        info=info,
        n_in=int(n_in),
        n_out=int(n_out),
        stride=int(stride),
        starts=starts_arr.astype(np.int64),
        n_skipped=max(0, gap_free - len(starts_arr)),
        n_gaps=len(run_start) - 1,
    )


def select_init_times(
    wins: Windows,
    init_times: Any = "latest",
    *,
    every: str | pd.Timedelta | None = None,
) -> np.ndarray:
    """Positions (into ``wins``) of the windows for the requested init times.

    Parameters
    ----------
    wins : Windows
        Input windows (usually ``n_out=0``).
    init_times : "latest", "all", slice, time-like or list of time-likes
        ``"latest"``: the last frame of the cube; ``"all"``: every init time
        with a complete window; a ``slice`` of times (label based, inclusive);
        one time; a list of times. Explicitly named times must be frames of the
        cube with a complete, gap-free input window.
    every : str or Timedelta, optional
        Keep only init times that are whole multiples of this interval
        (e.g. ``"30min"``: init times at :00 and :30).

    Returns
    -------
    numpy.ndarray
        Integer positions into ``wins``.

    Raises
    ------
    ValueError
        An init time that is not a frame of the cube or whose input window
        spans a gap (the message names the latest usable one), or a selection
        that is empty.
    """
    available = wins.init_times
    times = pd.DatetimeIndex(wins.cube[wins.info.time_dim].values)
    usable = _describe_usable(available)
    if isinstance(init_times, str) and init_times in ("latest", "all"):
        if init_times == "all":
            positions = np.arange(len(available))
        else:
            positions = _positions_of(wins, times[-1:], times, usable, latest=True)
    elif isinstance(init_times, slice):
        if init_times.step is not None:
            raise ValueError("init_times slices take no step; use every= to thin init times")
        start, stop = (
            None if b is None else as_times(b, "init_times slice bound")[0]
            for b in (init_times.start, init_times.stop)
        )
        sel = pd.Series(np.arange(len(available)), index=available).loc[start:stop]
        positions = sel.to_numpy()
    else:
        requested = _as_times(init_times)
        positions = _positions_of(wins, requested, times, usable)
    if every is not None:
        every_td = as_interval(every, "every")
        _check_every(every, every_td, pd.Timedelta(wins.info.step))
        chosen = available[positions]
        try:
            positions = positions[chosen == chosen.floor(every_td)]
        except ValueError as err:  # an interval finer than the times' resolution
            raise ValueError(f"every={every!r} cannot thin these init times ({err})") from None
    if len(positions) == 0:
        raise ValueError(
            f"no init time selected by init_times={init_times!r}"
            f"{f', every={every!r}' if every is not None else ''}; {usable}"
        )
    return positions


def _check_every(every: Any, every_td: pd.Timedelta, step: pd.Timedelta) -> None:
    """Refuse an ``every`` that is not a whole multiple of the cube's time step.

    ``every="7min"`` on 5-minute frames would keep only the init times where both line
    up (once every 35 minutes, or none).
    """
    if step > pd.Timedelta(0) and every_td % step != pd.Timedelta(0):
        whole = max(1, round(every_td / step)) * step
        raise ValueError(
            f"every={every!r} is not a whole multiple of the cube's time step "
            f"{_interval_text(step)}, so it would keep only the init times where both line "
            f"up; give a multiple of {_interval_text(step)}, e.g. every={_interval_text(whole)!r}"
        )


def _interval_text(td: pd.Timedelta) -> str:
    minutes, seconds = divmod(int(td.total_seconds()), 60)
    return f"{minutes}min" if not seconds else f"{int(td.total_seconds())}s"


def _as_times(value: Any) -> pd.DatetimeIndex:
    try:
        return as_times(value, "init_times")
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"{err}. init_times takes 'latest', 'all', a slice of times or time(s)"
        ) from None


def _describe_usable(available: pd.DatetimeIndex) -> str:
    if len(available) == 0:
        return "the cube has no complete, gap-free input window"
    return f"usable init times run from {available[0]} to {available[-1]} ({len(available)} in all)"


def _positions_of(
    wins: Windows,
    requested: pd.DatetimeIndex,
    times: pd.DatetimeIndex,
    usable: str,
    latest: bool = False,
) -> np.ndarray:
    lookup = pd.Index(wins.init_times)
    positions = lookup.get_indexer(requested)
    missing = requested[positions < 0]
    if len(missing):
        not_frames = [t for t in missing if t not in times]
        gapped = [t for t in missing if t in times]
        parts = []
        if not_frames:
            parts.append(f"{', '.join(map(str, not_frames[:5]))} not a frame of the cube")
        if gapped:
            parts.append(
                f"{', '.join(map(str, gapped[:5]))}: the {wins.n_in} input frames before it "
                "span a time gap or the start of the cube"
            )
        what = "the latest frame" if latest else "init time(s)"
        raise ValueError(f"cannot forecast from {what} {'; '.join(parts)}; {usable}")
    return positions
