"""Training budgets: a clock that says when to stop, and a curriculum that fits the budget.

:class:`Budget` measures a run in wall seconds or in CPU seconds of the
process (``time.process_time``: all threads; the honest measure on a shared
machine, where wall time depends on the other jobs). The trainer asks it after
every optimizer step, so a ``time_limit`` is kept to within one step (plus the
final validation, whose duration is reserved in advance).

:func:`curriculum_schedule` turns a curriculum over output length into the
number of lead times trained at each epoch. With a budget the growth follows
whichever is further along, the epochs or the budget, so that the full
``n_out`` is reached within the budget; a curriculum that cannot reach
``n_out`` within the run's epochs is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from xnowcast.checks import choice, positive_int, real

__all__ = ["CLOCKS", "Budget", "curriculum_schedule"]

#: Valid clocks of a :class:`Budget`.
CLOCKS = ("wall", "cpu")


class Budget:
    """Wall and CPU seconds spent since :meth:`start`, against an optional limit.

    Parameters
    ----------
    limit : float, optional
        Seconds allowed (``None``: no limit).
    clock : {"wall", "cpu"}
        What ``limit`` counts: wall seconds or CPU seconds of this process.

    Examples
    --------
    >>> budget = Budget(60, clock="cpu").start()
    >>> budget.exhausted(), 0 <= budget.fraction() < 1
    (False, True)
    """

    def __init__(self, limit: float | None = None, clock: str = "wall") -> None:
        self.limit = real(limit, "time_limit", low=0, low_inclusive=False, allow_none=True)
        self.clock = choice(clock, "budget_clock", CLOCKS)
        self.start()

    def start(self) -> Budget:
        """Start (or restart) counting."""
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    @property
    def wall(self) -> float:
        """Wall seconds since :meth:`start`."""
        return time.perf_counter() - self._wall0

    @property
    def cpu(self) -> float:
        """CPU seconds of this process (all threads) since :meth:`start`."""
        return time.process_time() - self._cpu0

    def spent(self) -> float:
        """Seconds spent on the budget's clock."""
        return self.cpu if self.clock == "cpu" else self.wall

    def fraction(self) -> float:
        """Share of the limit spent (0 without a limit)."""
        return 0.0 if self.limit is None else self.spent() / self.limit

    def exhausted(self, reserve: float = 0.0) -> bool:
        """Whether the limit is reached, keeping ``reserve`` seconds for what must follow."""
        return self.limit is not None and self.spent() + reserve >= self.limit


def curriculum_schedule(
    spec: Any, n_out: int, epochs: int, budgeted: bool = False
) -> Callable[[int, float], int]:
    """``(epoch, budget fraction spent) -> number of lead times trained``.

    Parameters
    ----------
    spec : None, True, int, dict or list
        ``None``/``False``: always ``n_out``. ``True``: from 1 to ``n_out``
        over half the epochs; an int: over that many epochs; ``{"start": s,
        "epochs": e}``; a list: the length per epoch (the last one must be
        ``n_out``).
    n_out : int
        Lead times of the network.
    epochs : int
        Epochs of the run.
    budgeted : bool
        The run has a time limit: the growth is also laid out over the
        budget (reaching ``n_out`` at the same share of it as of the
        epochs) and follows whichever of the two is further along, so the
        full length is reached however few epochs the budget allows.

    Raises
    ------
    ValueError
        The curriculum reaches ``n_out`` only after the run's last epoch,
        or a list does not end at ``n_out``.

    Examples
    --------
    >>> grow = curriculum_schedule({"start": 2, "epochs": 4}, 10, epochs=8, budgeted=True)
    >>> grow(0, 0.0), grow(2, 0.0), grow(1, 0.5)
    (2, 6, 10)
    >>> curriculum_schedule(20, 10, epochs=8)
    Traceback (most recent call last):
    ...
    ValueError: the curriculum reaches n_out=10 at epoch 20, after the run's last epoch (8): set curriculum epochs <= 8 or raise epochs
    """
    if spec is None or spec is False:
        return lambda e, f: n_out
    if isinstance(spec, (list, tuple)):
        lengths = [positive_int(v, "curriculum lengths") for v in spec]
        if not lengths or max(lengths) > n_out or lengths[-1] != n_out:
            raise ValueError(
                f"curriculum lengths must be between 1 and n_out={n_out} and end at n_out "
                f"(leads never trained would be forecast), got {spec!r}"
            )
        if len(lengths) > epochs:
            raise ValueError(
                f"the curriculum list has {len(lengths)} entries but the run has {epochs} epochs: "
                "it would never reach n_out; shorten it or raise epochs"
            )
        if budgeted:
            return lambda e, f: max(lengths[min(e, len(lengths) - 1)], _linear(1, n_out, f))
        return lambda e, f: lengths[min(e, len(lengths) - 1)]
    start, span = _start_span(spec, n_out, epochs)
    if span > epochs:
        raise ValueError(
            f"the curriculum reaches n_out={n_out} at epoch {span}, after the run's last epoch "
            f"({epochs}): set curriculum epochs <= {epochs} or raise epochs"
        )
    share = span / epochs  # the curriculum's share of the run, in epochs and in budget

    def grow(epoch: int, fraction: float) -> int:
        progress = epoch / span
        if budgeted:
            progress = max(progress, fraction / share)
        return _linear(start, n_out, progress)

    return grow


def _linear(start: int, stop: int, progress: float) -> int:
    return round(start + (stop - start) * float(np.clip(progress, 0.0, 1.0)))


def _start_span(spec: Any, n_out: int, epochs: int) -> tuple[int, int]:
    """``(first length, epochs to reach n_out)`` of a growing curriculum."""
    if spec is True:
        return 1, max(1, epochs // 2)
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return 1, positive_int(spec, "curriculum")
    if isinstance(spec, dict):
        unknown = set(spec) - {"start", "epochs"}
        if unknown:
            raise ValueError(f"curriculum takes keys 'start' and 'epochs', got {sorted(unknown)}")
        start = positive_int(spec.get("start", 1), "curriculum start")
        if start > n_out:
            raise ValueError(f"curriculum start ({start}) must not exceed n_out ({n_out})")
        return start, positive_int(spec.get("epochs", max(1, epochs // 2)), "curriculum epochs")
    raise TypeError(
        "curriculum must be None, True, an int (epochs to reach n_out), a dict "
        f"{{'start': int, 'epochs': int}} or a list of lengths per epoch, got {spec!r}"
    )
