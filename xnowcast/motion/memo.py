"""A small, bounded, thread-safe memo of results computed from arrays.

Forecasts of consecutive init times share frame pairs: with ``n_flows=2`` the
pair ``(t-1, t)`` is the last pair of the forecast from ``t`` and the first of
the one from ``t+1``. :class:`ArrayMemo` keeps the last few results (here the
sparse Lucas-Kanade vectors of a pair, :func:`xnowcast.motion.lucas_kanade.track_pair`)
under a digest of the arrays they were computed from and of every parameter,
so that such a pair is tracked once. A result is returned as it was stored
(read-only arrays), so that reuse cannot change a forecast.

Examples
--------
>>> import numpy as np
>>> from xnowcast.motion.memo import ArrayMemo, digest
>>> memo = ArrayMemo(maxsize=2)
>>> a = np.arange(6.0)
>>> key = digest(a, scale=2)
>>> memo.get(key, lambda: (a * 2,))[0].tolist()
[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
>>> memo.get(key, lambda: (a * 0,))[0].tolist()  # computed once: the stored result
[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
>>> memo.info()
MemoInfo(hits=1, misses=1, size=1, maxsize=2)
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from xnowcast.checks import integer

__all__ = ["ArrayMemo", "MemoInfo", "digest"]


class MemoInfo(NamedTuple):
    """Counters of an :class:`ArrayMemo` (as ``functools.lru_cache``'s ``cache_info``)."""

    hits: int
    misses: int
    size: int
    maxsize: int


def digest(*arrays: np.ndarray | None, **params: Any) -> bytes:
    """A 128-bit BLAKE2 digest of arrays (their dtype, shape and bytes) and parameters.

    ``None`` stands for an absent array; parameters are taken by their ``repr``,
    sorted by name.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((2, 3), np.uint8)
    >>> digest(a) == digest(a.copy()), digest(a) == digest(a.reshape(3, 2))
    (True, False)
    >>> digest(a, None) == digest(a), digest(a, k=1) == digest(a, k=2)
    (False, False)
    """
    h = hashlib.blake2b(digest_size=16)
    for array in arrays:
        if array is None:
            h.update(b"none;")
            continue
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape};".encode())
        h.update(array.reshape(-1).view(np.uint8).data)
    h.update(repr(sorted(params.items())).encode())
    return h.digest()


class ArrayMemo:
    """The last ``maxsize`` results, by key (least recently used dropped first).

    Thread-safe: the table is locked while it is read or changed, never while a
    result is computed (two threads computing the same key both compute it and
    get equal results); a forked process starts with a fresh lock. Arrays in a
    stored result are made read-only.
    ``maxsize=0`` turns the memo off (every call computes).

    Parameters
    ----------
    maxsize : int
        Most results kept.
    """

    def __init__(self, maxsize: int = 16) -> None:
        self._lock = threading.Lock()
        self._table: OrderedDict[bytes, tuple[Any, ...]] = OrderedDict()
        self._hits = self._misses = 0
        self.maxsize = maxsize
        if hasattr(os, "register_at_fork"):  # a lock held by another thread at fork
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _new_lock(ref()))

    @property
    def maxsize(self) -> int:
        """Most results kept (0: off); setting it drops the oldest results beyond it."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        size = integer(value, "maxsize", low=0, whole=True)
        with self._lock:
            self._maxsize = size
            while len(self._table) > size:
                self._table.popitem(last=False)

    def get(self, key: bytes, compute: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        """The result stored under ``key``, else ``compute()`` (stored when the memo is on)."""
        with self._lock:
            found = self._table.get(key)
            if found is not None:
                self._table.move_to_end(key)
                self._hits += 1
                return found
            self._misses += 1
        result = tuple(_frozen(item) for item in compute())
        with self._lock:
            if self._maxsize > 0:
                self._table[key] = result
                self._table.move_to_end(key)
                while len(self._table) > self._maxsize:
                    self._table.popitem(last=False)
        return result

    def clear(self) -> None:
        """Drop every result and reset the counters."""
        with self._lock:
            self._table.clear()
            self._hits = self._misses = 0

    def info(self) -> MemoInfo:
        """Hits, misses, results held and ``maxsize``."""
        with self._lock:
            return MemoInfo(self._hits, self._misses, len(self._table), self._maxsize)


def _new_lock(memo: ArrayMemo | None) -> None:
    if memo is not None:
        memo._lock = threading.Lock()


def _frozen(item: Any) -> Any:
    if isinstance(item, np.ndarray):
        item.setflags(write=False)
    return item
