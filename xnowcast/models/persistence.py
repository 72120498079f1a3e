"""Persistence (Eulerian persistence): the last observed frame, repeated."""

from __future__ import annotations

import numpy as np

from xnowcast.models.interface import NowcastModel

__all__ = ["Persistence"]


class Persistence(NowcastModel):
    """Repeat the last input frame for every lead time.

    The baseline every nowcast must beat. ``NaN`` pixels of the last frame stay
    ``NaN``; every other pixel keeps its value.

    Parameters
    ----------
    n_in : int
        Input frames per window (only the last one is used; the default of 12
        keeps the init times the same as those of the other models).
    n_out : int
        Lead times to produce.

    Examples
    --------
    >>> import numpy as np
    >>> from xnowcast.models.persistence import Persistence
    >>> frames = np.arange(2 * 3 * 4, dtype="float32").reshape(1, 2, 3, 4)
    >>> out = Persistence(n_in=2, n_out=5).predict(frames)
    >>> out.shape, bool((out[0, 4] == frames[0, 1]).all())
    ((1, 5, 3, 4), True)
    """

    name = "persistence"

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        last = inputs[:, -1:].astype(np.float32, copy=False)
        return np.repeat(last, self.n_out, axis=1)
