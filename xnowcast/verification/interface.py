"""The metric registry: names, numpy kernels and how each score is built.

Every metric is computed from *sufficient statistics* of a field pair (sums,
counts, contingency tables) by a pure function. Metrics that share their
statistics form a *family*, computed once per field pair however many of its
metrics are asked for (CSI, POD and FAR all come from one contingency table).
Statistics pool by addition, which is how :func:`xnowcast.verify` aggregates
over init times (``mean=True``) the way pysteps accumulates its scores.

Examples
--------
>>> from xnowcast.verification import get_method, list_metrics
>>> "fss" in list_metrics()
True
>>> import numpy as np
>>> csi = get_method("CSI")
>>> float(csi(np.array([[2.0, 0.0]]), np.array([[2.0, 2.0]]), 1.0))
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xnowcast.verification import categorical, continuous, image, spatial

__all__ = ["FAMILIES", "METRICS", "Family", "Metric", "get_method", "get_metric", "list_metrics"]


@dataclass(frozen=True)
class Family:
    """Statistics shared by several metrics.

    Attributes
    ----------
    name : str
        Family name.
    stats : callable
        ``stats(fc, obs, **params)`` on ``(..., y, x)`` arrays returning
        ``(..., *dims sizes, n_stats)``.
    stat_names : tuple of str
        Names of the statistics on the last axis.
    dims : tuple of str
        Extra output dimensions, among ``"threshold"`` and ``"scale"``.
    params : tuple of str
        Keyword arguments ``stats`` takes.
    """

    name: str
    stats: Callable
    stat_names: tuple[str, ...]
    dims: tuple[str, ...] = ()
    params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Metric:
    """One score.

    Attributes
    ----------
    name : str
        Registry name, also the variable name in :func:`xnowcast.verify` output.
    family : str
        Name of the :class:`Family` it is computed from.
    from_stats : callable
        ``from_stats(stats) -> score`` on the family's statistics (last axis).
    function : callable
        The numpy kernel ``function(fc, obs, ...)`` that computes the score of
        ``(..., y, x)`` field pairs directly.
    long_name : str
        Description, written into the output attributes.
    units : str
        ``"1"`` (dimensionless), ``"dB"``, ``"data"`` (units of the data) or
        ``"data2"`` (their square).
    perfect : float or None
        Score of a perfect forecast; ``None`` when there is no skill score
        relative to a reference (bias, frequency bias, PSNR).
    aliases : tuple of str
        Other accepted names.
    """

    name: str
    family: str
    from_stats: Callable
    function: Callable
    long_name: str
    units: str = "1"
    perfect: float | None = None
    aliases: tuple[str, ...] = ()

    @property
    def higher_is_better(self) -> bool | None:
        """Orientation: True when larger scores are better, None when undefined."""
        if self.perfect is None:
            return None
        return self.perfect > 0


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("continuous", continuous.continuous_stats, continuous.CONTINUOUS_STATS),
        Family("psnr", continuous.psnr_stats, continuous.PSNR_STATS, params=("data_range",)),
        Family(
            "categorical",
            categorical.contingency_table,
            categorical.TABLE,
            dims=("threshold",),
            params=("thresholds",),
        ),
        Family(
            "fss",
            spatial.fss_stats,
            spatial.FSS_STATS,
            dims=("threshold", "scale"),
            params=("thresholds", "scales"),
        ),
        Family(
            "ssim",
            image.ssim_stats,
            image.SSIM_STATS,
            params=("data_range", "win_size", "gaussian"),
        ),
        Family(
            "ms_ssim",
            image.ms_ssim_stats,
            image.SSIM_STATS,
            params=("data_range", "win_size", "gaussian"),
        ),
    )
}

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "mse",
            "continuous",
            continuous.mse_from_stats,
            continuous.mse,
            "mean squared error",
            "data2",
            0.0,
        ),
        Metric(
            "rmse",
            "continuous",
            continuous.rmse_from_stats,
            continuous.rmse,
            "root mean squared error",
            "data",
            0.0,
        ),
        Metric(
            "mae",
            "continuous",
            continuous.mae_from_stats,
            continuous.mae,
            "mean absolute error",
            "data",
            0.0,
        ),
        Metric(
            "bias",
            "continuous",
            continuous.bias_from_stats,
            continuous.bias,
            "mean error (forecast - observation)",
            "data",
            None,
            ("me", "mean_error"),
        ),
        Metric(
            "correlation",
            "continuous",
            continuous.correlation_from_stats,
            continuous.correlation,
            "Pearson correlation",
            "1",
            1.0,
            ("corr", "pearson", "corr_p"),
        ),
        Metric(
            "psnr",
            "psnr",
            continuous.mean_from_stats,
            continuous.psnr,
            "peak signal-to-noise ratio",
            "dB",
            None,
        ),
        Metric(
            "csi",
            "categorical",
            categorical.csi_from_table,
            categorical.csi,
            "critical success index",
            "1",
            1.0,
            ("ts", "threat_score"),
        ),
        Metric(
            "pod",
            "categorical",
            categorical.pod_from_table,
            categorical.pod,
            "probability of detection",
            "1",
            1.0,
        ),
        Metric(
            "far",
            "categorical",
            categorical.far_from_table,
            categorical.far,
            "false alarm ratio",
            "1",
            0.0,
        ),
        Metric(
            "ets",
            "categorical",
            categorical.ets_from_table,
            categorical.ets,
            "equitable threat score",
            "1",
            1.0,
            ("gss",),
        ),
        Metric(
            "hss",
            "categorical",
            categorical.hss_from_table,
            categorical.hss,
            "Heidke skill score",
            "1",
            1.0,
        ),
        Metric(
            "fbias",
            "categorical",
            categorical.fbias_from_table,
            categorical.fbias,
            "frequency bias",
            "1",
            None,
            ("frequency_bias",),
        ),
        Metric(
            "fss", "fss", spatial.fss_from_stats, spatial.fss, "fractions skill score", "1", 1.0
        ),
        Metric(
            "ssim",
            "ssim",
            continuous.mean_from_stats,
            image.ssim,
            "structural similarity index",
            "1",
            1.0,
        ),
        Metric(
            "ms_ssim",
            "ms_ssim",
            continuous.mean_from_stats,
            image.ms_ssim,
            "multi-scale structural similarity index",
            "1",
            1.0,
            ("msssim",),
        ),
    )
}

_ALIASES = {alias: m.name for m in METRICS.values() for alias in m.aliases}


def _normalise(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"metric names are strings, got {type(name).__name__} {name!r}")
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def get_metric(name: str) -> Metric:
    """The :class:`Metric` registered under ``name`` (case-insensitive, ``-`` = ``_``).

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.

    Examples
    --------
    >>> get_metric("MS-SSIM").name
    'ms_ssim'
    """
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid names are: {', '.join(list_metrics())}")
    return METRICS[key]


def get_method(name: str) -> Callable:
    """The numpy kernel of a metric, as in ``pysteps.verification.get_method``.

    Kernels take ``(fc, obs, ...)`` arrays of shape ``(..., y, x)`` and return
    one score per field pair (categorical scores take ``thresholds``, FSS
    ``thresholds, scales``, image scores keyword options). An unknown name
    raises the ``ValueError`` of :func:`get_metric`.

    Examples
    --------
    >>> import numpy as np
    >>> float(get_method("rmse")(np.full((2, 2), 2.0), np.zeros((2, 2))))
    2.0
    """
    return get_metric(name).function


def list_metrics() -> list[str]:
    """Names of all metrics, in the order :func:`xnowcast.verify` reports them.

    Examples
    --------
    >>> list_metrics()[:3]
    ['mse', 'rmse', 'mae']
    """
    return list(METRICS)
