"""The ``.nowcast`` accessor on DataArray and Dataset.

A thin forwarder: every method calls the public function of the module that
owns the capability, so the accessor, the CLI and batch jobs share one code
path. ``__init__`` only stores the object; methods return new objects.

Examples
--------
>>> import xnowcast
>>> from xnowcast.datasets import synthetic_radar
>>> cube = synthetic_radar(n_times=16, size=32)
>>> cube.nowcast.forecast(model="persistence", n_out=3).sizes["lead_time"]
3
>>> cube.to_dataset().nowcast.windows(n_in=4, n_out=2)
<Windows: 11 windows of 4 input + 2 target frames, stride 1, step 0 days 00:05:00; 0 skipped at 0 gap(s)>
"""

from __future__ import annotations

from typing import Any

import xarray as xr

__all__ = ["NowcastAccessor", "NowcastDataArrayAccessor", "NowcastDatasetAccessor"]


class NowcastAccessor:
    """Shared base of the DataArray and Dataset accessors.

    Methods take ``var=`` to pick the variable of a Dataset; for a DataArray
    it must be omitted (or equal the array's name).
    """

    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    def forecast(
        self,
        model: Any = "persistence",
        *,
        init_times: Any = "latest",
        var: str | None = None,
        **kwargs: Any,
    ) -> xr.DataArray:
        """Forecast this cube; see :func:`xnowcast.forecast.forecast`."""
        from xnowcast.forecast import forecast

        return forecast(self._obj, model, init_times=init_times, var=var, **kwargs)

    def windows(self, n_in: int = 12, n_out: int = 24, stride: int = 1, *, var: str | None = None):
        """Gap-free input/target windows; see :func:`xnowcast.windows.windows`."""
        from xnowcast.windows import windows

        return windows(self._obj, n_in=n_in, n_out=n_out, stride=stride, var=var)

    def motion(
        self, method: str | None = None, *, var: str | None = None, **kwargs: Any
    ) -> xr.Dataset:
        """The motion field (u, v) of the last frames; see :func:`xnowcast.motion.motion`."""
        from xnowcast.motion import motion

        if method is not None:
            kwargs["method"] = method
        return motion(self._obj, var=var, **kwargs)

    def sequences(
        self,
        max_gap: Any = "10min",
        rain_threshold: float = 0.1,
        *,
        var: str | None = None,
        **kwargs: Any,
    ):
        """Per-frame table of the rainy sequences; see :func:`xnowcast.sequences.sequence_table`.

        Returns
        -------
        pandas.DataFrame
            Columns ``time``, ``rain_amount``, ``category``, ``sequence_id``.
        """
        from xnowcast.sequences import sequence_table

        return sequence_table(
            self._obj, max_gap=max_gap, rain_threshold=rain_threshold, var=var, **kwargs
        )

    def split_dataset(
        self,
        table: Any,
        fractions: Any = (0.7, 0.15, 0.15),
        seed: int = 0,
        *,
        var: str | None = None,
        **kwargs: Any,
    ):
        """Deal whole sequences into balanced sets; see :func:`xnowcast.sequences.split_dataset`.

        Returns
        -------
        tuple of DataArray
            One cube per fraction, with a ``sequence_id`` coordinate along time.
        """
        from xnowcast.sequences import split_dataset

        return split_dataset(self._obj, table, fractions=fractions, seed=seed, var=var, **kwargs)

    def verify(
        self,
        obs: xr.DataArray | xr.Dataset,
        metrics: Any = None,
        *,
        var: str | None = None,
        **kwargs: Any,
    ) -> xr.Dataset:
        """Score this forecast against observations per lead time; see :func:`xnowcast.verify`."""
        from xnowcast.verification import verify

        return verify(self._obj, obs, metrics, var=var, **kwargs)

    def plot(self, leads: Any = (1, 6, 12, 24), *, var: str | None = None, **kwargs: Any):
        """Map panels of this forecast; see :func:`xnowcast.plotting.plot_forecast`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from xnowcast.plotting import plot_forecast

        return plot_forecast(self._obj, leads, var=var, **kwargs)

    def animate(
        self,
        path: Any,
        obs: xr.DataArray | xr.Dataset | None = None,
        *,
        var: str | None = None,
        **kwargs: Any,
    ):
        """Animate this forecast next to the observations; see :func:`xnowcast.plotting.animate`.

        Returns
        -------
        pathlib.Path
        """
        from xnowcast.plotting import animate

        return animate(self._obj, path, obs, var=var, **kwargs)

    def validate(self, *, var: str | None = None):
        """Check the cube and report what was found; see :func:`xnowcast.conventions.normalize_cube`.

        Returns
        -------
        CubeInfo
        """
        from xnowcast.conventions import normalize_cube

        return normalize_cube(self._obj, var)[1]


@xr.register_dataarray_accessor("nowcast")
class NowcastDataArrayAccessor(NowcastAccessor):
    """``DataArray.nowcast``: nowcasting methods of a cube."""


@xr.register_dataset_accessor("nowcast")
class NowcastDatasetAccessor(NowcastAccessor):
    """``Dataset.nowcast``: nowcasting methods; ``var=`` picks the variable."""
