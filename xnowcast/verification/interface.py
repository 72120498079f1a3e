"""The metric registry: names, numpy kernels and how each score is built.

Every metric is computed from *sufficient statistics* of a field pair (sums,
counts, contingency tables) by a pure function. Metrics that share their
statistics form a *family*, computed once per field pair however many of its
metrics are asked for (CSI, POD and FAR all come from one contingency table).
Statistics pool by addition, which is how :func:`xnowcast.verify` aggregates
over init times (``mean=True``, ``dim=``) the way pysteps accumulates its scores.

*Ensemble* families (:mod:`.probabilistic`) take an ensemble ``(..., member,
y, x)`` instead of a single forecast. A *group* name (``"brier"``, ``"roc"``,
``"reliability"``, ``"crps"``, ``"sal"``) asks :func:`xnowcast.verify` for all
its metrics at once (:data:`GROUPS`).

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
from typing import Any

from xnowcast.verification import categorical, continuous, image, probabilistic, sal, spatial

__all__ = [
    "DEFAULT_METRICS",
    "FAMILIES",
    "GROUPS",
    "METRICS",
    "Family",
    "Metric",
    "expand_metric_names",
    "get_method",
    "get_metric",
    "list_metrics",
]


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
        Extra dimensions of the statistics, among ``"threshold"``, ``"scale"``,
        ``"member_count"`` and ``"rank"`` (``M + 1`` for ``M`` members).
    params : tuple of str
        Keyword arguments ``stats`` takes.
    ensemble : bool
        ``stats(ens, obs, ...)`` takes an ensemble ``(..., member, y, x)``.
    """

    name: str
    stats: Callable
    stat_names: tuple[str, ...]
    dims: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    ensemble: bool = False


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
    dims : tuple of str, optional
        Dimensions of the score (default: those of its family); may add
        ``"probability_bin"``, ``"probability_threshold"``.
    params : tuple of str
        Options of the family ``from_stats`` takes as keywords.
    """

    name: str
    family: str
    from_stats: Callable
    function: Callable
    long_name: str
    units: str = "1"
    perfect: float | None = None
    aliases: tuple[str, ...] = ()
    dims: tuple[str, ...] | None = None
    params: tuple[str, ...] = ()

    def score_dims(self) -> tuple[str, ...]:
        """Dimensions of the score, besides those of the forecast."""
        return FAMILIES[self.family].dims if self.dims is None else self.dims

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
            params=("thresholds", "compare"),
        ),
        Family(
            "fss",
            spatial.fss_stats,
            spatial.FSS_STATS,
            dims=("threshold", "scale"),
            params=("thresholds", "scales", "compare"),
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
        Family("spearman", continuous.spearman_stats, continuous.SPEARMAN_STATS),
        Family("sal", sal.sal_stats, sal.SAL_STATS, params=("thr_factor", "thr_quantile")),
        Family("crps", probabilistic.crps_stats, probabilistic.CRPS_STATS, ensemble=True),
        Family(
            "probability",
            probabilistic.probability_stats,
            probabilistic.PROBABILITY_STATS,
            dims=("threshold", "member_count"),
            params=("thresholds", "compare"),
            ensemble=True,
        ),
        Family(
            "rank",
            probabilistic.rank_stats,
            ("count",),
            dims=("rank",),
            ensemble=True,
        ),
        Family("spread", probabilistic.spread_stats, probabilistic.SPREAD_STATS, ensemble=True),
    )
}


def _kernel(stats: Callable, from_stats: Callable, own: tuple[str, ...] = ()) -> Callable:
    """The numpy kernel ``from_stats(stats(...))`` of a score (``own``: from_stats options)."""

    def kernel(*args: Any, **kwargs: Any) -> Any:
        mine = {k: kwargs.pop(k) for k in own if k in kwargs}
        return from_stats(stats(*args, **kwargs), **mine)

    kernel.__name__ = from_stats.__name__.replace("_from_stats", "")
    kernel.__doc__ = f"``{from_stats.__name__}({stats.__name__}(...))``: {from_stats.__doc__}"
    return kernel


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
            "pofd",
            "categorical",
            categorical.pofd_from_table,
            categorical.pofd,
            "probability of false detection",
            "1",
            0.0,
            ("false_alarm_rate",),
        ),
        Metric(
            "hk",
            "categorical",
            categorical.hk_from_table,
            categorical.hk,
            "Hanssen-Kuipers discriminant (Peirce skill score)",
            "1",
            1.0,
            ("peirce", "pss", "tss"),
        ),
        Metric(
            "sedi",
            "categorical",
            categorical.sedi_from_table,
            categorical.sedi,
            "symmetric extremal dependence index",
            "1",
            1.0,
        ),
        Metric(
            "f1", "categorical", categorical.f1_from_table, categorical.f1, "F1 score", "1", 1.0
        ),
        Metric(
            "mcc",
            "categorical",
            categorical.mcc_from_table,
            categorical.mcc,
            "Matthews correlation coefficient",
            "1",
            1.0,
        ),
        Metric(
            "acc",
            "categorical",
            categorical.acc_from_table,
            categorical.acc,
            "accuracy (fraction correct)",
            "1",
            1.0,
            ("accuracy",),
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
        Metric(
            "nmse",
            "continuous",
            continuous.nmse_from_stats,
            continuous.nmse,
            "normalised mean squared error",
            "1",
            0.0,
        ),
        Metric(
            "beta",
            "continuous",
            continuous.beta_from_stats,
            continuous.beta,
            "regression slope cov(fc, obs) / var(fc) (type 1 conditional bias)",
            "1",
            None,
            ("beta1",),
        ),
        Metric(
            "beta2",
            "continuous",
            continuous.beta2_from_stats,
            continuous.beta2,
            "regression slope cov(fc, obs) / var(obs) (type 2 conditional bias)",
            "1",
            None,
        ),
        Metric(
            "spearman",
            "spearman",
            continuous.mean_from_stats,
            continuous.spearman,
            "Spearman rank correlation",
            "1",
            1.0,
            ("corr_s", "spearmanr"),
        ),
        Metric(
            "sal_structure",
            "sal",
            sal.structure_from_stats,
            sal.sal_structure,
            "SAL structure component",
            "1",
            None,
            ("sal_s",),
        ),
        Metric(
            "sal_amplitude",
            "sal",
            sal.amplitude_from_stats,
            sal.sal_amplitude,
            "SAL amplitude component",
            "1",
            None,
            ("sal_a",),
        ),
        Metric(
            "sal_location",
            "sal",
            sal.location_from_stats,
            sal.sal_location,
            "SAL location component",
            "1",
            0.0,
            ("sal_l",),
        ),
        Metric(
            "crps",
            "crps",
            probabilistic.crps_from_stats,
            probabilistic.crps,
            "continuous ranked probability score",
            "data",
            0.0,
        ),
        Metric(
            "crps_fair",
            "crps",
            probabilistic.crps_fair_from_stats,
            _kernel(probabilistic.crps_stats, probabilistic.crps_fair_from_stats),
            "fair continuous ranked probability score",
            "data",
            0.0,
        ),
        Metric(
            "brier",
            "probability",
            probabilistic.brier_from_stats,
            probabilistic.brier,
            "Brier score of the exceedance probability",
            "1",
            0.0,
            ("bs", "brier_score"),
            dims=("threshold",),
        ),
        Metric(
            "brier_reliability",
            "probability",
            probabilistic.brier_reliability_from_stats,
            _kernel(probabilistic.probability_stats, probabilistic.brier_reliability_from_stats),
            "reliability term of the Brier score",
            "1",
            0.0,
            dims=("threshold",),
        ),
        Metric(
            "brier_resolution",
            "probability",
            probabilistic.brier_resolution_from_stats,
            _kernel(probabilistic.probability_stats, probabilistic.brier_resolution_from_stats),
            "resolution term of the Brier score",
            "1",
            None,
            dims=("threshold",),
        ),
        Metric(
            "brier_uncertainty",
            "probability",
            probabilistic.brier_uncertainty_from_stats,
            _kernel(probabilistic.probability_stats, probabilistic.brier_uncertainty_from_stats),
            "uncertainty term of the Brier score",
            "1",
            None,
            dims=("threshold",),
        ),
        Metric(
            "reliability",
            "probability",
            probabilistic.reliability_from_stats,
            _kernel(
                probabilistic.probability_stats,
                probabilistic.reliability_from_stats,
                ("prob_bins",),
            ),
            "observed relative frequency per forecast probability bin (reliability diagram)",
            "1",
            None,
            ("reliability_diagram",),
            dims=("threshold", "probability_bin"),
            params=("prob_bins",),
        ),
        Metric(
            "reliability_forecast",
            "probability",
            probabilistic.reliability_forecast_from_stats,
            _kernel(
                probabilistic.probability_stats,
                probabilistic.reliability_forecast_from_stats,
                ("prob_bins",),
            ),
            "mean forecast probability per probability bin (reliability diagram)",
            "1",
            None,
            dims=("threshold", "probability_bin"),
            params=("prob_bins",),
        ),
        Metric(
            "reliability_count",
            "probability",
            probabilistic.reliability_count_from_stats,
            _kernel(
                probabilistic.probability_stats,
                probabilistic.reliability_count_from_stats,
                ("prob_bins",),
            ),
            "number of pixels per probability bin (reliability diagram)",
            "1",
            None,
            dims=("threshold", "probability_bin"),
            params=("prob_bins",),
        ),
        Metric(
            "roc_area",
            "probability",
            probabilistic.roc_area_from_stats,
            _kernel(
                probabilistic.probability_stats,
                probabilistic.roc_area_from_stats,
                ("roc_thresholds",),
            ),
            "area under the ROC curve",
            "1",
            1.0,
            ("auc", "roc_auc"),
            dims=("threshold",),
            params=("roc_thresholds",),
        ),
        Metric(
            "roc_pod",
            "probability",
            probabilistic.roc_pod_from_stats,
            _kernel(
                probabilistic.probability_stats,
                probabilistic.roc_pod_from_stats,
                ("roc_thresholds",),
            ),
            "probability of detection per probability threshold (ROC curve)",
            "1",
            None,
            dims=("threshold", "probability_threshold"),
            params=("roc_thresholds",),
        ),
        Metric(
            "roc_pofd",
            "probability",
            probabilistic.roc_pofd_from_stats,
            _kernel(
                probabilistic.probability_stats,
                probabilistic.roc_pofd_from_stats,
                ("roc_thresholds",),
            ),
            "probability of false detection per probability threshold (ROC curve)",
            "1",
            None,
            dims=("threshold", "probability_threshold"),
            params=("roc_thresholds",),
        ),
        Metric(
            "rank_histogram",
            "rank",
            probabilistic.rank_histogram_from_stats,
            probabilistic.rank_histogram,
            "relative frequency of the observation's rank among the members",
            "1",
            None,
            ("rankhist", "talagrand"),
        ),
        Metric(
            "spread_skill",
            "spread",
            probabilistic.spread_skill_from_stats,
            probabilistic.spread_skill,
            "spread-skill ratio sqrt((M + 1) / M * mean variance) / RMSE of the ensemble mean",
            "1",
            1.0,
            ("spread_skill_ratio", "ssr"),
            params=("n_members",),
        ),
    )
}

#: Names that ask :func:`xnowcast.verify` for several metrics at once.
GROUPS: dict[str, tuple[str, ...]] = {
    "crps": ("crps", "crps_fair"),
    "brier": ("brier", "brier_reliability", "brier_resolution", "brier_uncertainty"),
    "reliability": ("reliability", "reliability_forecast", "reliability_count"),
    "roc": ("roc_area", "roc_pod", "roc_pofd"),
    "sal": ("sal_structure", "sal_amplitude", "sal_location"),
}

#: Metrics :func:`xnowcast.verify` computes when none are named: cheap and informative.
DEFAULT_METRICS: tuple[str, ...] = ("mae", "csi", "fss")

_ALIASES = {alias: m.name for m in METRICS.values() for alias in m.aliases}
_ALIASES["roc"] = "roc_area"


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


def expand_metric_names(names: str | list[str] | tuple[str, ...]) -> list[Metric]:
    """The metrics named, group names (:data:`GROUPS`) expanded, without repeats.

    Examples
    --------
    >>> [m.name for m in expand_metric_names(["mae", "roc"])]
    ['mae', 'roc_area', 'roc_pod', 'roc_pofd']
    """
    chosen: list[Metric] = []
    for name in [names] if isinstance(names, str) else names:
        group = GROUPS.get(_normalise(name))
        for metric in [get_metric(n) for n in group] if group else [get_metric(name)]:
            if metric not in chosen:
                chosen.append(metric)
    return chosen


def list_metrics() -> list[str]:
    """Names of all metrics, in the order :func:`xnowcast.verify` reports them.

    Examples
    --------
    >>> list_metrics()[:3]
    ['mse', 'rmse', 'mae']
    """
    return list(METRICS)
