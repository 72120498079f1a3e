"""The ``.nowcast`` accessor on DataArray and Dataset.

A thin forwarder: every method calls the public function of the module that
owns the capability, so the accessor, the CLI and batch jobs share one code
path. ``__init__`` only stores the object; methods return new objects.

Examples
--------
>>> import xnowcast
>>> from xnowcast.datasets import synthetic_radar
>>> cube = synthetic_radar(n_times=16, size=32)
>>> cube.nowcast.forecast(model="persistence", model_params={"n_out": 3}).sizes["lead_time"]
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

    Every method forwards ``*args, **kwargs`` to the public function it names,
    with the object as first argument, so defaults and documentation live in
    one place. ``var=`` picks the variable of a Dataset; for a DataArray it
    must be omitted (or equal the array's name).
    """

    def __init__(self, obj: xr.DataArray | xr.Dataset) -> None:
        self._obj = obj

    def forecast(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        """Forecast this cube; see :func:`xnowcast.forecast.forecast`."""
        from xnowcast.forecast import forecast

        return forecast(self._obj, *args, **kwargs)

    def downscale(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        """This cube or forecast on a finer grid; see :func:`xnowcast.downscale.downscale`."""
        from xnowcast.downscale import downscale

        return downscale(self._obj, *args, **kwargs)

    def windows(self, *args: Any, **kwargs: Any):
        """Gap-free input/target windows; see :func:`xnowcast.windows.windows`."""
        from xnowcast.windows import windows

        return windows(self._obj, *args, **kwargs)

    def motion(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        """The motion field (u, v) of the last frames; see :func:`xnowcast.motion.motion`."""
        from xnowcast.motion import motion

        return motion(self._obj, *args, **kwargs)

    def sequences(self, *args: Any, **kwargs: Any):
        """Per-frame table of the rainy sequences; see :func:`xnowcast.sequences.sequence_table`.

        Returns
        -------
        pandas.DataFrame
            Columns ``time``, ``rain_amount``, ``category``, ``sequence_id``.
        """
        from xnowcast.sequences import sequence_table

        return sequence_table(self._obj, *args, **kwargs)

    def split_dataset(self, *args: Any, **kwargs: Any):
        """Deal whole sequences into balanced sets; see :func:`xnowcast.sequences.split_dataset`.

        Returns
        -------
        tuple of DataArray
            One cube per fraction, with a ``sequence_id`` coordinate along time.
        """
        from xnowcast.sequences import split_dataset

        return split_dataset(self._obj, *args, **kwargs)

    def verify(self, *args: Any, **kwargs: Any) -> xr.Dataset:
        """Score this forecast against observations per lead time; see :func:`xnowcast.verify`."""
        from xnowcast.verification import verify

        return verify(self._obj, *args, **kwargs)

    def plot_reliability(self, *args: Any, **kwargs: Any):
        """Reliability diagram of these scores; see :func:`xnowcast.plotting.plot_reliability`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from xnowcast.plotting.probabilistic import plot_reliability

        return plot_reliability(self._obj, *args, **kwargs)

    def plot_rank_histogram(self, *args: Any, **kwargs: Any):
        """Rank histogram of these scores; see :func:`xnowcast.plotting.plot_rank_histogram`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from xnowcast.plotting.probabilistic import plot_rank_histogram

        return plot_rank_histogram(self._obj, *args, **kwargs)

    def plot(self, *args: Any, **kwargs: Any):
        """Map panels of this forecast; see :func:`xnowcast.plotting.plot_forecast`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from xnowcast.plotting import plot_forecast

        return plot_forecast(self._obj, *args, **kwargs)

    def animate(self, *args: Any, **kwargs: Any):
        """Animate this forecast next to the observations; see :func:`xnowcast.plotting.animate`.

        Returns
        -------
        pathlib.Path
        """
        from xnowcast.plotting import animate

        return animate(self._obj, *args, **kwargs)

    def probability(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        """Exceedance probability of this ensemble per lead time; see :func:`xnowcast.ensemble.probability`."""
        from xnowcast.ensemble import probability

        return probability(self._obj, *args, **kwargs)

    def quantile(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        """Quantiles of this ensemble over its members; see :func:`xnowcast.ensemble.quantile`."""
        from xnowcast.ensemble import quantile

        return quantile(self._obj, *args, **kwargs)

    def plot_probability(self, *args: Any, **kwargs: Any):
        """Probability maps of this ensemble; see :func:`xnowcast.plotting.plot_probability`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from xnowcast.plotting.probability import plot_probability

        return plot_probability(self._obj, *args, **kwargs)

    def to_rain_rate(self, *args: Any, **kwargs: Any) -> xr.DataArray:
        """This cube as a rain rate in mm h-1; see :func:`xnowcast.units.to_rain_rate`."""
        from xnowcast.units import to_rain_rate

        return to_rain_rate(self._obj, *args, **kwargs)

    def validate(self, *args: Any, **kwargs: Any):
        """Check the cube and report what was found; see :func:`xnowcast.conventions.normalize_cube`.

        Returns
        -------
        CubeInfo
        """
        from xnowcast.conventions import normalize_cube

        return normalize_cube(self._obj, *args, **kwargs)[1]


@xr.register_dataarray_accessor("nowcast")
class NowcastDataArrayAccessor(NowcastAccessor):
    """``DataArray.nowcast``: nowcasting methods of a cube."""


@xr.register_dataset_accessor("nowcast")
class NowcastDatasetAccessor(NowcastAccessor):
    """``Dataset.nowcast``: nowcasting methods; ``var=`` picks the variable."""
