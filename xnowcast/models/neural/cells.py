"""The convolutional LSTM cell shared by every recurrent model.

One implementation serves :mod:`~xnowcast.models.neural.convlstm` and
:mod:`~xnowcast.models.neural.conv_ed_lstm`: a ConvLSTM cell as in Shi et al.
(2015), *Convolutional LSTM Network: A Machine Learning Approach for
Precipitation Nowcasting* (without the peephole terms, as in most modern
implementations), with an optional layer normalisation of the gates.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from xnowcast.models.neural.base import check_kernel_size

__all__ = ["ConvLSTMCell", "lstm_cells"]


class ConvLSTMCell(nn.Module):
    """A ConvLSTM cell: LSTM gates computed by one convolution of ``[x, h]``.

    .. math::

        i, f, o, g &= \\mathrm{split}(W * [x_t, h_{t-1}] + b) \\\\
        c_t &= \\sigma(f) \\odot c_{t-1} + \\sigma(i) \\odot \\tanh(g) \\\\
        h_t &= \\sigma(o) \\odot \\tanh(c_t)

    Parameters
    ----------
    in_channels : int
        Channels of the input ``x_t`` (0 for a cell that runs on its state
        alone, like the forecaster of Shi et al.).
    hidden_channels : int
        Channels of the hidden and cell states.
    kernel_size : int
        Odd side of the square convolution kernel ("same" padding: the state
        keeps the grid of the input).
    layer_norm : bool
        Normalise the gate pre-activations (layer norm over channels and
        space of each sample, one scale and offset per gate channel) and the
        cell state before its ``tanh``. Steadies training of deep stacks.
    forget_bias : float
        Added to the forget gate's pre-activation; 1.0 lets the cell remember
        from the start.

    Examples
    --------
    >>> import torch
    >>> cell = ConvLSTMCell(1, 8, kernel_size=3)
    >>> x = torch.zeros(2, 1, 17, 23)
    >>> h, c = cell(x, cell.init_state(x))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 8, 17, 23), (2, 8, 17, 23))
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        kernel_size: int = 3,
        *,
        layer_norm: bool = False,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        check_kernel_size(kernel_size)
        if in_channels < 0 or hidden_channels < 1:
            raise ValueError(
                f"need in_channels >= 0 and hidden_channels >= 1, got {in_channels}, "
                f"{hidden_channels}"
            )
        self.in_channels = int(in_channels)
        self.hidden_channels = int(hidden_channels)
        self.kernel_size = int(kernel_size)
        self.forget_bias = float(forget_bias)
        self.conv = nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=not layer_norm,
        )
        # GroupNorm with one group is a layer norm over (C, H, W) that works on any grid.
        self.gate_norm = nn.GroupNorm(1, 4 * hidden_channels) if layer_norm else None
        self.cell_norm = nn.GroupNorm(1, hidden_channels) if layer_norm else None

    def init_state(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(h, c)`` for a batch and grid like ``like`` (``B, C, H, W``)."""
        b, _, hgt, wid = like.shape
        zeros = like.new_zeros(b, self.hidden_channels, hgt, wid)
        return zeros, zeros.clone()

    def forward(
        self, x: torch.Tensor | None, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: ``(h, c) = cell(x, (h, c))``.

        ``x`` is ``(B, in_channels, H, W)``, or ``None`` for a cell built with
        ``in_channels=0``.
        """
        h, c = state
        if self.in_channels:
            if x is None:
                raise ValueError("this cell has inputs (in_channels > 0); pass x")
            h_in = torch.cat([x, h], dim=1)
        else:
            h_in = h
        gates = self.conv(h_in)
        if self.gate_norm is not None:
            gates = self.gate_norm(gates)
        i, f, o, g = torch.chunk(gates, 4, dim=1)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        c_out = self.cell_norm(c) if self.cell_norm is not None else c
        h = torch.sigmoid(o) * torch.tanh(c_out)
        return h, c

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, hidden={self.hidden_channels}, kernel={self.kernel_size}, "
            f"layer_norm={self.gate_norm is not None}"
        )


def lstm_cells(stack: nn.ModuleList) -> list[ConvLSTMCell]:
    """The cells of a stack of ConvLSTM layers, typed as cells (a ModuleList holds Modules).

    Examples
    --------
    >>> stack = nn.ModuleList([ConvLSTMCell(1, 4, 3), ConvLSTMCell(4, 4, 3)])
    >>> [cell.hidden_channels for cell in lstm_cells(stack)]
    [4, 4]
    """
    return cast(list[ConvLSTMCell], list(stack))
