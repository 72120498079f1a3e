"""A progress bar for dask computations, shown only on a terminal.

The command line (``xnowcast forecast``, ``verify``, ``plot``, ...) computes
its lazy results inside :class:`TerminalProgress`: on a terminal a tqdm bar
counts the dask tasks; when stderr is a file or a pipe (a captured log, a
batch job) nothing is written, so logs do not fill with carriage-return
updates.

Examples
--------
>>> import io
>>> import dask.array as da
>>> from xnowcast.progress import TerminalProgress
>>> with TerminalProgress(stream=io.StringIO()) as bar:  # not a terminal: silent
...     total = int(da.ones(10, chunks=2).sum().compute())
>>> total, bar.enabled
(10, False)
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from dask.callbacks import Callback

__all__ = ["TerminalProgress"]


class TerminalProgress(Callback):
    """Dask callback drawing a tqdm bar of finished tasks when ``stream`` is a terminal.

    Parameters
    ----------
    stream : file, optional
        Where the bar goes (default ``sys.stderr``).
    enabled : bool, optional
        Force the bar on or off (default: on only when ``stream`` is a
        terminal and tqdm can be imported).
    desc : str
        What the bar counts.
    """

    def __init__(
        self, stream: TextIO | None = None, enabled: bool | None = None, desc: str = "scoring"
    ) -> None:
        super().__init__()
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = bool(enabled) and self._tqdm() is not None
        self.bar: Any = None

    @staticmethod
    def _tqdm() -> Any:
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is a dependency, but a bar is never worth a failure
            return None
        return tqdm

    def _start_state(self, dsk: Any, state: Any) -> None:
        if not self.enabled:
            return
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        tqdm = self._tqdm()
        self.bar = tqdm(total=total, file=self.stream, unit="task", mininterval=0.5, desc=self.desc)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
