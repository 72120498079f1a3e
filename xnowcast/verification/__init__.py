"""Verification: skill scores of forecasts per lead time, labelled and lazy.

:func:`verify` scores forecast cubes against observations (aligned on
``valid_time``); the numpy kernels behind it live in :mod:`.continuous`
(MSE, RMSE, MAE, bias, correlation, PSNR), :mod:`.categorical` (CSI, POD, FAR,
ETS, HSS, frequency bias), :mod:`.spatial` (FSS) and :mod:`.image` (SSIM,
MS-SSIM), and are looked up by name with :func:`get_method`.

Examples
--------
>>> from xnowcast.verification import list_metrics
>>> list_metrics()[6:]
['csi', 'pod', 'far', 'ets', 'hss', 'fbias', 'fss', 'ssim', 'ms_ssim']
"""

from xnowcast.verification.api import DEFAULT_METRICS, scores_to_dataframe, verify
from xnowcast.verification.interface import Metric, get_method, get_metric, list_metrics

__all__ = [
    "DEFAULT_METRICS",
    "Metric",
    "get_method",
    "get_metric",
    "list_metrics",
    "scores_to_dataframe",
    "verify",
]
