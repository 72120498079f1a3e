"""Run settings: *how* a model runs, kept apart from *what* it is.

A model's identity (architecture, weights, transform, ``n_in``/``n_out``,
method options) is what :meth:`NowcastModel.get_params` returns; it is
recorded in forecast attributes and compared when a batch job resumes. How it
runs (device, batch size, precision, tiling, threads) changes neither, and is
given to :func:`xnowcast.forecast`, :func:`xnowcast.batch.forecast_archive`
and the CLI (keywords named like a setting are settings, all others model
parameters), which apply it to a *copy* of the model with
:meth:`NowcastModel.with_settings` (as earth2studio's
``run.deterministic(..., device=)`` and ``model.to(device)`` do).

Examples
--------
>>> from xnowcast.models.settings import RunSettings
>>> RunSettings(device="cpu", batch_size=16)
RunSettings(device='cpu', batch_size=16, precision='auto', tile=None, tile_overlap=None, threads=None)
>>> RunSettings().replace(n_out=6)
Traceback (most recent call last):
...
TypeError: RunSettings.replace() got an unexpected keyword argument 'n_out'. Run settings are device, batch_size, precision, tile, tile_overlap, threads; model parameters go in model_params={'n_out': 6}
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from xnowcast.checks import choice, integer, positive_int

__all__ = ["PRECISIONS", "RunSettings", "set_library_threads", "threads_limited"]

#: Valid values of :attr:`RunSettings.precision`.
PRECISIONS = ("auto", "fp32", "bf16")

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a model runs. None of these change what the model is.

    Parameters
    ----------
    device : str
        ``"auto"`` (a CUDA GPU when there is one, else Apple MPS, else the
        CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``. Models
        without a GPU path run on the CPU whatever it says.
    batch_size : int, optional
        Windows (or tiles) per forward pass of a network, or init times per
        GPU batch of a classical model; ``None``: the model's default.
    precision : {"auto", "fp32", "bf16"}
        ``"auto"``: bfloat16 autocast on CUDA GPUs that support it, float32
        elsewhere.
    tile : int, optional
        Cut grids larger than ``tile`` pixels into overlapping tiles
        (networks only); ``None``: the whole grid at once.
    tile_overlap : int, optional
        Overlap of neighbouring tiles in pixels; ``None``: chosen from the
        network's receptive field.
    threads : int, optional
        CPU threads of one forecast (numba, OpenCV, PyTorch); ``None``: the
        libraries' defaults.
    """

    device: str = "auto"
    batch_size: int | None = None
    precision: str = "auto"
    tile: int | None = None
    tile_overlap: int | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not _DEVICE.match(self.device.strip().lower()):
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}"
            )
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "device", self.device.strip().lower())
        set_(self, "batch_size", positive_int(self.batch_size, "batch_size", allow_none=True))
        set_(self, "precision", choice(self.precision, "precision", PRECISIONS))
        set_(self, "tile", positive_int(self.tile, "tile (pixels)", allow_none=True))
        overlap = integer(self.tile_overlap, "tile_overlap", low=0, allow_none=True)
        set_(self, "tile_overlap", overlap)
        if self.tile is not None and overlap is not None and overlap >= self.tile:
            raise ValueError(f"tile_overlap ({overlap}) must be smaller than tile ({self.tile})")
        set_(self, "threads", positive_int(self.threads, "threads", allow_none=True))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The names of the run settings, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def check_names(cls, kwargs: Mapping[str, Any], where: str) -> None:
        """Raise a TypeError for keywords that are not run settings, pointing to ``model_params``.

        Parameters
        ----------
        kwargs : mapping
            Keyword arguments a function took as ``**settings``.
        where : str
            The function, for the message (``"forecast()"``).
        """
        unknown = {k: v for k, v in kwargs.items() if k not in cls.names()}
        if unknown:
            first = next(iter(unknown))
            raise TypeError(
                f"{where} got an unexpected keyword argument {first!r}. Run settings are "
                f"{', '.join(cls.names())}; model parameters go in model_params={unknown!r}"
            )

    def replace(self, **changes: Any) -> RunSettings:
        """A copy with ``changes`` applied (validated)."""
        self.check_names(changes, "RunSettings.replace()")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for logs and the CLI)."""
        return dataclasses.asdict(self)


def set_library_threads(n: int) -> list[tuple[Any, int]]:
    """Set the thread count of OpenCV, PyTorch and numba (those imported) to ``n``.

    Libraries are touched only once imported (importing them here would cost
    every model that does not use them). numba is capped at its
    ``NUMBA_NUM_THREADS``.

    Returns
    -------
    list
        ``(setter, previous count)`` of each library changed, for restoring.

    Examples
    --------
    >>> from xnowcast.models.settings import set_library_threads
    >>> for setter, previous in set_library_threads(1):
    ...     setter(previous)
    """
    previous = []
    for name, get, set_ in _THREAD_CONTROLS:
        module = sys.modules.get(name)
        if module is None:
            continue
        limit = min(n, module.config.NUMBA_NUM_THREADS) if name == "numba" else n
        setter = getattr(module, set_)
        previous.append((setter, getattr(module, get)()))
        setter(limit)
    return previous


@contextlib.contextmanager
def threads_limited(n: int | None) -> Iterator[None]:
    """Limit OpenCV, PyTorch and numba to ``n`` threads inside the block, then restore.

    ``None`` changes nothing.

    Examples
    --------
    >>> from xnowcast.models.settings import threads_limited
    >>> with threads_limited(1):
    ...     pass
    """
    if n is None:
        yield
        return
    previous = set_library_threads(n)
    try:
        yield
    finally:
        for setter, value in reversed(previous):
            setter(value)


#: ``(module, getter, setter)`` of each library's thread count.
_THREAD_CONTROLS = (
    ("cv2", "getNumThreads", "setNumThreads"),
    ("torch", "get_num_threads", "set_num_threads"),
    ("numba", "get_num_threads", "set_num_threads"),
)
