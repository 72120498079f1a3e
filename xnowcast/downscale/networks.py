"""Super-resolution networks from the four DL4DS axes, and the residual discriminator.

A network maps ``n_in`` coarse frames ``(B, n_in, h, w)`` (and optional static
high-resolution predictors ``(B, n_static, h*s, w*s)``) to one fine frame
``(B, 1, h*s, w*s)`` for any integer scale ``s`` and any grid size. It is built
from

* a **backbone** of blocks: ``convnet`` (two plain convolutions), ``resnet``
  (residual: ``x + f(x)``) or ``densenet`` (dense: every layer sees all the
  previous ones, then a 1x1 transition), each with optional channel attention
  (squeeze-and-excitation), dropout (``"standard"`` or ``"spatial"``) and
  normalisation (``"batch"`` or ``"layer"``);
* an **upsampling** strategy: ``int`` (pre-upsampling: bicubic interpolation
  first, the backbone works on the fine grid) or, after the backbone on the
  coarse grid, ``spc`` (sub-pixel convolution), ``rc`` (nearest resize then
  convolution) or ``dc`` (transposed convolution);
* a **sample type**: spatial (the ``n_in`` frames as channels) or
  spatio-temporal (``recurrent=True``: a ConvLSTM runs over the frames and
  its last state feeds the backbone);
* **training** (supervised, or conditional adversarial with
  :class:`ResidualDiscriminator`) is chosen in the :class:`~xnowcast.Trainer`.

Static predictors join on the fine grid: after the upsampling (post) or with
the interpolated input (pre). With ``global_residual=True`` (default) the
network adds its output to the bicubic interpolation of the last frame, so
it starts from bicubic and learns the correction.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xnowcast.checks import choice, positive_int, real
from xnowcast.downscale.constraint import check_constraint, conserve, torch_transform
from xnowcast.models.neural.cells import ConvLSTMCell

__all__ = [
    "BACKBONES",
    "UPSAMPLINGS",
    "ResidualDiscriminator",
    "SRNet",
    "build_network",
    "list_architectures",
    "parse_architecture",
]

BACKBONES = ("convnet", "resnet", "densenet")
UPSAMPLINGS = ("spc", "rc", "dc", "int")
_NORMS = ("batch", "layer")
_DROPOUTS = ("standard", "spatial")


def _norm(kind: str | None, channels: int) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(1, channels)  # layer norm over (C, H, W), any grid


def _dropout(rate: float, variant: str) -> nn.Module:
    if rate == 0:
        return nn.Identity()
    return nn.Dropout2d(rate) if variant == "spatial" else nn.Dropout(rate)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: channels reweighted by a gate on their global means."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, mid, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class Block(nn.Module):
    """One backbone block (``convnet``, ``resnet`` or ``densenet``)."""

    def __init__(
        self,
        kind: str,
        channels: int,
        *,
        kernel_size: int = 3,
        attention: bool = False,
        dropout: float = 0.0,
        dropout_variant: str = "spatial",
        normalization: str | None = None,
        growth: int = 16,
        dense_layers: int = 3,
    ) -> None:
        super().__init__()
        self.kind = kind
        pad = kernel_size // 2

        def conv_unit(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size, padding=pad),
                _norm(normalization, cout),
                nn.ReLU(inplace=True),
            )

        if kind == "densenet":
            self.layers = nn.ModuleList(
                conv_unit(channels + i * growth, growth) for i in range(dense_layers)
            )
            self.body: nn.Module = nn.Conv2d(channels + dense_layers * growth, channels, 1)
        else:
            self.layers = nn.ModuleList()
            last: list[nn.Module] = [nn.Conv2d(channels, channels, kernel_size, padding=pad)]
            last.append(_norm(normalization, channels))
            if kind == "convnet":
                last.append(nn.ReLU(inplace=True))
            self.body = nn.Sequential(conv_unit(channels, channels), *last)
        self.attention = ChannelAttention(channels) if attention else nn.Identity()
        self.dropout = _dropout(dropout, dropout_variant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x
        for layer in self.layers:  # dense: each layer sees all the previous outputs
            feats = torch.cat([feats, layer(feats)], dim=1)
        out = self.dropout(self.attention(self.body(feats)))
        return out if self.kind == "convnet" else x + out


def _upsampler(kind: str, channels: int, scale: int) -> nn.Module:
    if kind == "spc":
        return nn.Sequential(
            nn.Conv2d(channels, channels * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
            nn.ReLU(inplace=True),
        )
    if kind == "rc":
        return nn.Sequential(
            nn.Upsample(scale_factor=scale, mode="nearest"),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
        )
    return nn.Sequential(  # "dc": kernel = stride = scale, exactly h*s x w*s, no overlap
        nn.ConvTranspose2d(channels, channels, scale, stride=scale),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


def bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic interpolation by ``scale`` (cell-centre aligned, ``align_corners=False``)."""
    if scale == 1:
        return x
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class SRNet(nn.Module):
    """A super-resolution network (see the module docstring for the axes).

    Parameters
    ----------
    scale : int
        Fine cells per coarse cell along each axis.
    n_in : int
        Coarse input frames (the last one is the time of the output).
    n_static : int
        Static fine-grid predictor channels.
    backbone : {"convnet", "resnet", "densenet"}
    upsampling : {"spc", "rc", "dc", "int"}
    recurrent : bool
        Spatio-temporal: a ConvLSTM over the ``n_in`` frames.
    filters : int
        Feature channels.
    blocks : int
        Backbone blocks.
    kernel_size : int
        Odd convolution size.
    attention : bool
        Channel attention in each block.
    dropout : float
        Dropout rate in each block (0: none).
    dropout_variant : {"spatial", "standard"}
        Whole channels (``Dropout2d``) or single values.
    normalization : {None, "batch", "layer"}
    growth, dense_layers : int
        Dense blocks: channels added per layer, layers per block.
    global_residual : bool
        Add the output to the bicubic interpolation of the last frame.
    constraint : {None, "add", "mul"}
        Correct the output so that every ``scale x scale`` block of fine
        cells averages, in physical units, to its coarse cell (the last
        frame), as area averaging made it
        (:mod:`xnowcast.downscale.constraint`); ``"mul"`` keeps rain
        non-negative and dry cells dry.
    transform : str, dict or Transform
        Intensity transform of the frames (the Trainer's), through which the
        constraint averages in physical units; not used without it.

    Examples
    --------
    >>> import torch
    >>> net = SRNet(3, filters=8, blocks=1)
    >>> tuple(net(torch.zeros(2, 1, 5, 7)).shape)
    (2, 1, 15, 21)
    """

    def __init__(
        self,
        scale: int,
        n_in: int = 1,
        n_static: int = 0,
        *,
        backbone: str = "resnet",
        upsampling: str = "spc",
        recurrent: bool = False,
        filters: int = 32,
        blocks: int = 4,
        kernel_size: int = 3,
        attention: bool = False,
        dropout: float = 0.0,
        dropout_variant: str = "spatial",
        normalization: str | None = None,
        growth: int = 16,
        dense_layers: int = 3,
        global_residual: bool = True,
        constraint: str | None = None,
        transform: Any = "log",
    ) -> None:
        super().__init__()
        self.constraint = check_constraint(constraint)
        self.transform = transform
        if self.constraint is not None:
            torch_transform(transform)  # a smooth transform, or a ValueError now
        self.scale = positive_int(scale, "scale")
        self.n_in = positive_int(n_in, "n_in")
        self.n_static = int(n_static)
        self.backbone_kind = choice(backbone, "backbone", BACKBONES)
        self.upsampling = choice(upsampling, "upsampling", UPSAMPLINGS)
        self.recurrent = bool(recurrent)
        self.global_residual = bool(global_residual)
        filters = positive_int(filters, "filters")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if normalization is not None:
            choice(normalization, "normalization", _NORMS)
        choice(dropout_variant, "dropout_variant", _DROPOUTS)
        real(dropout, "dropout", low=0, high=1, high_inclusive=False)
        pre = self.upsampling == "int"
        head_in = 1 if self.recurrent else self.n_in
        head_in += self.n_static if pre else 0
        self.head = nn.Conv2d(head_in, filters, kernel_size, padding=kernel_size // 2)
        self.lstm = ConvLSTMCell(filters, filters, kernel_size) if self.recurrent else None
        self.blocks = nn.Sequential(
            *(
                Block(
                    self.backbone_kind,
                    filters,
                    kernel_size=kernel_size,
                    attention=attention,
                    dropout=dropout,
                    dropout_variant=dropout_variant,
                    normalization=normalization,
                    growth=positive_int(growth, "growth"),
                    dense_layers=positive_int(dense_layers, "dense_layers"),
                )
                for _ in range(positive_int(blocks, "blocks"))
            )
        )
        self.up = nn.Identity() if pre else _upsampler(self.upsampling, filters, self.scale)
        fuse_in = filters + (0 if pre else self.n_static)
        self.tail = nn.Sequential(
            nn.Conv2d(fuse_in, filters, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(filters, 1, 3, padding=1),
        )
        if self.global_residual:  # start as bicubic interpolation, learn the correction
            last = self.tail[-1]
            assert isinstance(last, nn.Conv2d)
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)

    def attach_static(self, fields: torch.Tensor) -> None:
        """Keep the static predictors of the training grid with the weights.

        ``fields`` (``n_static, H, W``, normalised) becomes the buffer
        ``static_fields``, saved in checkpoints, so that a checkpoint downscales
        its training grid without the predictors being given again.
        """
        if fields.ndim != 3 or fields.shape[0] != self.n_static:
            raise ValueError(f"static fields must be ({self.n_static}, H, W), got {fields.shape}")
        self.register_buffer("static_fields", fields.detach().float().clone())

    def forward(self, x: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, n_in, h, w)`` coarse frames (+ ``(B, n_static, H, W)``) -> ``(B, 1, H, W)``."""
        t, hgt, wid = x.shape[1:]
        if t != self.n_in:
            raise ValueError(f"expected {self.n_in} input frame(s), got {t}")
        if self.n_static and (static is None or static.shape[1] != self.n_static):
            raise ValueError(f"this network needs {self.n_static} static channel(s)")
        size = (hgt * self.scale, wid * self.scale)
        if self.n_static and static is not None and tuple(static.shape[-2:]) != size:
            raise ValueError(f"static predictors must be {size} cells, got {static.shape[-2:]}")
        pre = self.upsampling == "int"
        frames = bicubic(x, self.scale) if pre else x
        feats = self._encode(frames, static if pre else None)
        feats = self.up(self.blocks(feats) + (0 if self.backbone_kind == "convnet" else feats))
        if not pre and self.n_static and static is not None:
            feats = torch.cat([feats, static.to(feats.dtype)], dim=1)
        out = self.tail(feats)
        if self.global_residual:
            out = out + bicubic(x[:, -1:], self.scale)
        return conserve(out, x[:, -1:], self.scale, self.constraint, self.transform)

    def _encode(self, frames: torch.Tensor, static: torch.Tensor | None) -> torch.Tensor:
        if self.lstm is None:
            inp = frames if static is None else torch.cat([frames, static.to(frames.dtype)], 1)
            return self.head(inp)
        state = None
        for k in range(frames.shape[1]):
            inp = frames[:, k : k + 1]
            if static is not None:
                inp = torch.cat([inp, static.to(frames.dtype)], dim=1)
            f = self.head(inp)
            state = self.lstm(f, state if state is not None else self.lstm.init_state(f))
        assert state is not None
        return state[0]


class ResidualDiscriminator(nn.Module):
    """Conditional residual discriminator: is a fine field real, given its coarse input?

    The candidate fine field is stacked with the bicubic interpolation of the
    coarse frames and goes through strided residual blocks, a global mean and
    a linear layer to one logit per sample (any grid size).

    Examples
    --------
    >>> import torch
    >>> d = ResidualDiscriminator(4, n_in=1, filters=8, blocks=2)
    >>> tuple(d(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 4, 4)).shape)
    (2,)
    """

    def __init__(self, scale: int, n_in: int = 1, *, filters: int = 32, blocks: int = 3) -> None:
        super().__init__()
        self.scale = positive_int(scale, "scale")
        filters = positive_int(filters, "filters")
        layers: list[nn.Module] = [nn.Conv2d(1 + n_in, filters, 3, padding=1)]
        for _ in range(positive_int(blocks, "blocks")):
            layers.append(_DownBlock(filters))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(filters, 1)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        cond = bicubic(coarse, self.scale)[..., : fine.shape[-2], : fine.shape[-1]]
        feats = self.body(torch.cat([fine, cond.to(fine.dtype)], dim=1))
        return self.head(feats.mean(dim=(-2, -1)))[:, 0]


class _DownBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        self.skip = nn.Conv2d(channels, channels, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


def list_architectures() -> list[str]:
    """Registered names: ``{backbone}-{upsampling}`` and ``rec-{backbone}-{upsampling}``.

    Examples
    --------
    >>> names = list_architectures()
    >>> "resnet-spc" in names and "rec-resnet-spc" in names, len(names)
    (True, 24)
    """
    spatial = [f"{b}-{u}" for b in BACKBONES for u in UPSAMPLINGS]
    return spatial + [f"rec-{name}" for name in spatial]


def parse_architecture(name: str) -> dict[str, Any]:
    """The axes of a registered name, e.g. ``{"backbone": "resnet", "upsampling": "spc", ...}``.

    Examples
    --------
    >>> parse_architecture("rec-densenet-rc")
    {'backbone': 'densenet', 'upsampling': 'rc', 'recurrent': True}
    """
    if not isinstance(name, str) or name.lower() not in list_architectures():
        raise ValueError(
            f"unknown downscaling architecture {name!r}; choose from "
            f"{', '.join(list_architectures())}"
        )
    parts = name.lower().split("-")
    recurrent = parts[0] == "rec"
    backbone, upsampling = parts[-2], parts[-1]
    return {"backbone": backbone, "upsampling": upsampling, "recurrent": recurrent}


def build_network(
    name: str,
    scale: int,
    *,
    n_in: int = 1,
    n_static: int = 0,
    transform: Any = "log",
    **params: Any,
) -> SRNet:
    """Build a registered architecture.

    Parameters
    ----------
    name : str
        A name of :func:`list_architectures`.
    scale : int
        Scale factor.
    n_in : int
        Coarse frames per sample (more than 1 for ``rec-*``; spatial networks
        take them as channels).
    n_static : int
        Static predictor channels.
    transform : str, dict or Transform
        Intensity transform of the frames (used by ``constraint``).
    **params
        Other :class:`SRNet` parameters (``filters``, ``blocks``, ...).

    Examples
    --------
    >>> build_network("densenet-dc", 2, filters=8, blocks=1).upsampling
    'dc'
    """
    axes = parse_architecture(name)
    clash = sorted(set(params) & set(axes))
    if clash:
        raise ValueError(
            f"{', '.join(clash)} are set by the architecture name {name!r}; choose another name"
        )
    try:
        return SRNet(scale, n_in, n_static, **axes, transform=transform, **params)
    except TypeError as err:
        raise TypeError(f"bad parameter for downscaling network {name!r}: {err}") from None
