"""A 3-D convolutional network: space-time convolutions, then a time-to-lead head.

The seed's Conv3D idea (3-D convolutions over the input movie) with shapes that
work for any grid and any ``n_in``/``n_out``: every 3-D convolution keeps time
and space ("same" padding), and a last convolution spanning all ``n_in`` input
times (kernel ``(n_in, 1, 1)``) maps them to ``n_out`` lead times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xnowcast.models.neural.base import NowcastNet, check_hidden, check_kernel_size

__all__ = ["Conv3D", "build"]


class Conv3D(NowcastNet):
    """Stacked 3-D convolutions over ``(time, y, x)`` and a lead-time head.

    Parameters
    ----------
    n_in, n_out : int
        Input frames and lead times.
    filters : list of int
        Channels of each 3-D convolution block (conv, optional batch norm,
        leaky ReLU).
    kernel_size : int
        Odd side of the cubic kernels.
    batch_norm : bool
        Batch normalisation after each convolution.
    leaky_slope : float
        Negative slope of the leaky ReLUs (0 for plain ReLU).
    output_activation : {"none", "sigmoid", "relu", "softplus"}
        Applied to the output frames.
    residual : bool
        Predict the change from the last input frame instead of the frames.
        The output layer starts at zero, so an untrained network is persistence.

    Examples
    --------
    >>> import torch
    >>> net = Conv3D(n_in=4, n_out=3, filters=[8, 8])
    >>> tuple(net(torch.zeros(2, 4, 17, 29)).shape)
    (2, 3, 17, 29)
    """

    architecture = "conv3d"

    def __init__(
        self,
        n_in: int = 12,
        n_out: int = 24,
        *,
        filters: Sequence[int] = (32, 32, 32),
        kernel_size: int = 3,
        batch_norm: bool = True,
        leaky_slope: float = 0.0,
        output_activation: str | None = "none",
        residual: bool = False,
    ) -> None:
        super().__init__(n_in, n_out)
        self.filters = check_hidden(filters, "filters")
        self.kernel_size = check_kernel_size(kernel_size)
        self.batch_norm = bool(batch_norm)
        self.leaky_slope = float(leaky_slope)
        layers: list[nn.Module] = []
        channels = 1
        for f in self.filters:
            layers.append(
                nn.Conv3d(channels, f, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
            )
            if batch_norm:
                layers.append(nn.BatchNorm3d(f))
            layers.append(nn.LeakyReLU(self.leaky_slope))
            channels = f
        self.body = nn.Sequential(*layers)
        head = nn.Conv3d(channels, n_out, kernel_size=(n_in, 1, 1))
        self._output_layer(head, output_activation, residual)

    def get_config(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "batch_norm": self.batch_norm,
            "leaky_slope": self.leaky_slope,
            "output_activation": self.output_activation_name,
            "residual": self.residual,
        }

    def forward(self, x: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        self._check_input(x)
        steps = self._steps(n_out)
        out = self.head(self.body(x[:, None]))[:, :, 0]  # (B, n_out, H, W)
        return self._finish(out, x[:, -1:])[:, :steps]


def build(**params: Any):
    """Registry factory: an untrained ``conv3d`` :class:`~xnowcast.models.neural.TorchModel`."""
    from xnowcast.models.neural.adapter import build_registered

    return build_registered(Conv3D, **params)
