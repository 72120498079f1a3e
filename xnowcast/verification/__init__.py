"""Verification: skill scores of forecasts per lead time, labelled and lazy.

:func:`verify` scores forecast cubes against observations (aligned on
``valid_time``); the numpy kernels behind it live in :mod:`.continuous`
(MSE, RMSE, MAE, bias, correlations, NMSE, regression slopes, PSNR),
:mod:`.categorical` (CSI, POD, FAR, POFD, ETS, HSS, HK, SEDI, F1, MCC,
accuracy, frequency bias), :mod:`.spatial` (FSS), :mod:`.image` (SSIM,
MS-SSIM), :mod:`.sal` (SAL) and :mod:`.probabilistic` (CRPS, Brier score,
reliability, ROC, rank histogram, spread-skill of ensembles), and are looked
up by name with :func:`get_method`.

Examples
--------
>>> from xnowcast.verification import DEFAULT_METRICS, list_metrics
>>> DEFAULT_METRICS
('mae', 'csi', 'fss')
>>> {"crps", "brier", "roc_area", "sedi", "sal_location"} <= set(list_metrics())
True
"""

from xnowcast.verification.api import MEMBER, scores_to_dataframe, verify
from xnowcast.verification.interface import (
    DEFAULT_METRICS,
    GROUPS,
    Metric,
    get_method,
    get_metric,
    list_metrics,
)

__all__ = [
    "DEFAULT_METRICS",
    "GROUPS",
    "MEMBER",
    "Metric",
    "get_method",
    "get_metric",
    "list_metrics",
    "scores_to_dataframe",
    "verify",
]
