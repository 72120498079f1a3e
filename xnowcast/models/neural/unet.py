"""A 2-D U-Net that takes the input frames as channels.

The architecture of the winner of the satellite nowcasting contest the seed
work comes from: the ``n_in`` frames are the input channels of a U-Net
(Ronneberger et al. 2015) whose ``n_out`` output channels are the lead times.
Cheap and strong: no recurrence, one pass per forecast.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xnowcast.checks import choice, positive_int
from xnowcast.models.neural.base import NowcastNet, check_kernel_size

__all__ = ["UNet", "build", "unet_receptive_field"]

_NORMS = ("batch", "group", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


def unet_receptive_field(depth: int, kernel_size: int = 3) -> int:
    """Width in pixels of the input region one output pixel of a :class:`UNet` depends on.

    Two convolutions per level on the way down and up, 2x2 max pooling,
    2x2 stride-2 transposed convolutions (which add nothing).

    Examples
    --------
    >>> unet_receptive_field(2), unet_receptive_field(4)
    (44, 200)
    """
    field, jump = 1 + 2 * (kernel_size - 1), 1
    for _ in range(depth):
        field += jump  # 2x2 pooling
        jump *= 2
        field += 2 * (kernel_size - 1) * jump
    for _ in range(depth):
        jump //= 2
        field += 2 * (kernel_size - 1) * jump
    return field


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int, norm: str, slope: float, dropout: float):
        layers: list[nn.Module] = []
        for c in (cin, cout):
            layers += [
                nn.Conv2d(c, cout, k, padding=k // 2, bias=norm == "none"),
                _norm(norm, cout),
                nn.LeakyReLU(slope),
            ]
        if dropout:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class UNet(NowcastNet):
    """U-Net with frames as channels.

    Parameters
    ----------
    n_in, n_out : int
        Input frames (channels in) and lead times (channels out).
    depth : int
        Number of 2x downsamplings (``H`` and ``W`` must be multiples of
        ``2**depth``; :class:`TorchModel` pads).
    filters : int
        Channels of the first level; doubled at each level down.
    max_filters : int
        Cap on the channels of the deep levels.
    kernel_size : int
        Odd kernel side of the convolutions.
    norm : {"batch", "group", "none"}
        Normalisation after each convolution.
    upsample : {"transpose", "bilinear"}
        Transposed convolution or bilinear upsampling (+1x1 conv) on the way up.
    leaky_slope : float
        Negative slope of the leaky ReLUs (0 for ReLU).
    dropout : float
        Dropout rate at the bottleneck.
    output_activation : {"none", "sigmoid", "relu", "softplus"}
        Applied to the output frames.
    residual : bool
        Predict the change from the last input frame.
        The output layer starts at zero, so an untrained network is persistence.

    Examples
    --------
    >>> import torch
    >>> net = UNet(n_in=4, n_out=6, depth=2, filters=8)
    >>> tuple(net(torch.zeros(2, 4, 20, 28)).shape)
    (2, 6, 20, 28)
    """

    architecture = "unet"

    def __init__(
        self,
        n_in: int = 12,
        n_out: int = 24,
        *,
        depth: int = 4,
        filters: int = 32,
        max_filters: int = 512,
        kernel_size: int = 3,
        norm: str = "batch",
        upsample: str = "transpose",
        leaky_slope: float = 0.0,
        dropout: float = 0.0,
        output_activation: str | None = "none",
        residual: bool = False,
    ) -> None:
        super().__init__(n_in, n_out)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
        positive_int(filters, "filters")
        positive_int(max_filters, "max_filters")
        check_kernel_size(kernel_size)
        norm = choice(norm, "norm", _NORMS)
        upsample = choice(upsample, "upsample", ("transpose", "bilinear"))
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.depth, self.filters, self.max_filters = depth, filters, max_filters
        self.kernel_size, self.norm, self.upsample = int(kernel_size), norm, upsample
        self.leaky_slope, self.dropout = float(leaky_slope), float(dropout)
        self.size_multiple = 2**depth
        chans = [min(filters * 2**i, max_filters) for i in range(depth + 1)]
        block = lambda cin, cout, drop=0.0: _DoubleConv(  # noqa: E731
            cin, cout, self.kernel_size, norm, self.leaky_slope, drop
        )
        self.inc = block(n_in, chans[0])
        self.downs = nn.ModuleList(
            [
                block(chans[i], chans[i + 1], dropout if i == depth - 1 else 0.0)
                for i in range(depth)
            ]
        )
        self.ups = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(depth, 0, -1):
            if upsample == "transpose":
                self.ups.append(nn.ConvTranspose2d(chans[i], chans[i - 1], 2, stride=2))
            else:
                self.ups.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                        nn.Conv2d(chans[i], chans[i - 1], 1),
                    )
                )
            self.dec.append(block(2 * chans[i - 1], chans[i - 1]))
        self._output_layer(nn.Conv2d(chans[0], n_out, 1), output_activation, residual)

    @property
    def receptive_field(self) -> int:
        """Width in pixels of the input region one output pixel depends on."""
        if self.upsample != "transpose":  # bilinear upsampling reaches one coarse pixel further
            return unet_receptive_field(self.depth, self.kernel_size) + 2 * (2**self.depth - 1)
        return unet_receptive_field(self.depth, self.kernel_size)

    def get_config(self) -> dict[str, Any]:
        return {
            "depth": self.depth,
            "filters": self.filters,
            "max_filters": self.max_filters,
            "kernel_size": self.kernel_size,
            "norm": self.norm,
            "upsample": self.upsample,
            "leaky_slope": self.leaky_slope,
            "dropout": self.dropout,
            "output_activation": self.output_activation_name,
            "residual": self.residual,
        }

    def forward(self, x: torch.Tensor, n_out: int | None = None) -> torch.Tensor:
        self._check_input(x)
        steps = self._steps(n_out)
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(F.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for up, dec in zip(self.ups, self.dec):
            y = dec(torch.cat([up(y), skips.pop()], dim=1))
        return self._finish(self.head(y), x[:, -1:])[:, :steps]


def build(**params: Any):
    """Registry factory: an untrained ``unet`` :class:`~xnowcast.models.neural.TorchModel`."""
    from xnowcast.models.neural.adapter import build_registered

    return build_registered(UNet, **params)
