"""A convolutional encoder-decoder LSTM for radar rain-rate (SRI) images.

The encoder reads each input frame through a pyramid: a 3x3 convolution, a
ConvLSTM cell at full resolution, then for each further level a downsampling
(stride-2 convolution or 2x2 max pooling) and a ConvLSTM cell. The decoder
mirrors it from the coarsest level up, each decoder cell starting from the
final state of its encoder twin; transposed convolutions upsample between
levels, and a 1x1 convolution of the finest decoder state makes the frame.
Leaky ReLUs follow every (de)convolution.

What the decoder reads (``decoder_input``):

``"output"``
    the LSTM *output* path: the previous frame (the last input frame first,
    then the decoder's own forecast, or the truth under scheduled sampling)
    enters the finest decoder cell next to the upsampled coarser state.
``"hidden"``
    the *hidden state* only: the decoder runs on the states it took over from
    the encoder and on the upsampled states of coarser levels, with no frame
    fed back (the forecaster of Shi et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xnowcast.models.neural.base import RecurrentNet, check_hidden, check_kernel_size
from xnowcast.models.neural.cells import ConvLSTMCell, lstm_cells

__all__ = ["ConvEDLSTM", "build"]


class ConvEDLSTM(RecurrentNet):
    """Convolutional encoder-decoder LSTM (multi-resolution ConvLSTM).

    Parameters
    ----------
    n_in, n_out : int
        Input frames and lead times.
    hidden : list of int
        Hidden channels of the ConvLSTM cell of each level, finest first
        (e.g. ``[64, 32, 32, 16]``: four levels, each half the resolution of
        the one before).
    kernel_size : int
        Odd kernel side of the cells.
    patch_size : int
        Fold ``p x p`` pixel patches into channels before the finest level
        (and unfold the output): every level runs ``p**2`` times fewer
        pixels. ``H`` and ``W`` must be multiples of
        ``patch_size * 2**(levels - 1)`` (:class:`TorchModel` pads).
    downsample : {"stride", "maxpool"}
        Stride-2 3x3 convolution or 2x2 max pooling between levels.
    layer_norm : bool
        Layer normalisation inside the cells.
    decoder_input : {"output", "hidden"}
        See the module docstring.
    leaky_slope : float
        Negative slope of the leaky ReLUs.
    output_activation : {"none", "sigmoid", "relu", "softplus"}
        Applied to the output frames (``"sigmoid"`` with ``loss="bce"``).
    residual : bool
        Each frame is predicted as a change from the previous one.
        The output layer starts at zero, so an untrained network is persistence.

    Examples
    --------
    >>> import torch
    >>> net = ConvEDLSTM(n_in=3, n_out=2, hidden=[8, 4, 4])
    >>> net.size_multiple
    4
    >>> tuple(net(torch.zeros(1, 3, 20, 12)).shape)
    (1, 2, 20, 12)
    """

    architecture = "conv-ed-lstm"

    def __init__(
        self,
        n_in: int = 12,
        n_out: int = 24,
        *,
        hidden: Sequence[int] = (64, 32, 32, 16),
        kernel_size: int = 3,
        patch_size: int = 1,
        downsample: str = "stride",
        layer_norm: bool = True,
        decoder_input: str = "output",
        leaky_slope: float = 0.2,
        output_activation: str | None = "none",
        residual: bool = False,
    ) -> None:
        super().__init__(n_in, n_out, patch_size)
        self.hidden = check_hidden(hidden)
        self.kernel_size = check_kernel_size(kernel_size)
        if downsample not in ("stride", "maxpool"):
            raise ValueError(f"downsample must be 'stride' or 'maxpool', got {downsample!r}")
        self.downsample = downsample
        if decoder_input not in ("output", "hidden"):
            raise ValueError(f"decoder_input must be 'output' or 'hidden', got {decoder_input!r}")
        self.decoder_input = decoder_input
        self.layer_norm = bool(layer_norm)
        self.leaky_slope = float(leaky_slope)
        levels = len(self.hidden)
        self.size_multiple = patch_size * 2 ** (levels - 1)
        frame_ch = patch_size**2
        act = lambda: nn.LeakyReLU(self.leaky_slope)  # noqa: E731
        h = self.hidden
        self.stem = nn.Sequential(nn.Conv2d(frame_ch, h[0], 3, padding=1), act())
        self.down = nn.ModuleList()
        for i in range(1, levels):
            if downsample == "stride":
                self.down.append(nn.Sequential(nn.Conv2d(h[i - 1], h[i - 1], 3, 2, 1), act()))
            else:
                self.down.append(nn.MaxPool2d(2))
        cell = lambda cin, hid: ConvLSTMCell(cin, hid, self.kernel_size, layer_norm=self.layer_norm)  # noqa: E731
        self.encoder = nn.ModuleList(
            [cell(h[0], h[0])] + [cell(h[i - 1], h[i]) for i in range(1, levels)]
        )
        # Decoder: from coarsest (levels-1) to finest (0). Level i (< levels-1) reads the
        # upsampled state of level i+1 (h[i+1] -> h[i] channels) and, at level 0, the frame.
        self.up = nn.ModuleList(
            [
                nn.Sequential(nn.ConvTranspose2d(h[i + 1], h[i], 4, 2, 1), act())
                for i in range(levels - 1)
            ]
        )
        frame_in = frame_ch if decoder_input == "output" else 0
        dec_in = [h[i] if i < levels - 1 else 0 for i in range(levels)]
        dec_in[0] += frame_in
        self.decoder = nn.ModuleList([cell(dec_in[i], h[i]) for i in range(levels)])
        self._output_layer(nn.Conv2d(h[0], frame_ch, kernel_size=1), output_activation, residual)

    @property
    def supports_teacher_forcing(self) -> bool:
        return self.decoder_input == "output"

    def get_config(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "kernel_size": self.kernel_size,
            "patch_size": self.patch_size,
            "downsample": self.downsample,
            "layer_norm": self.layer_norm,
            "decoder_input": self.decoder_input,
            "leaky_slope": self.leaky_slope,
            "output_activation": self.output_activation_name,
            "residual": self.residual,
        }

    def _encode(self, frame: torch.Tensor, states: list) -> None:
        inp = self.stem(self._fold(frame))
        for i, cell in enumerate(self.encoder):
            if i > 0:
                inp = self.down[i - 1](states[i - 1][0])
            states[i] = cell(inp, states[i])

    def _decode(self, previous: torch.Tensor, states: list) -> torch.Tensor:
        levels = len(self.hidden)
        above: torch.Tensor | None = None
        for i in range(levels - 1, -1, -1):
            parts = []
            if above is not None:
                parts.append(self.up[i](above))
            if i == 0 and self.decoder_input == "output":
                parts.append(self._fold(previous))
            inp = torch.cat(parts, dim=1) if parts else None
            states[i] = self.decoder[i](inp, states[i])
            above = states[i][0]
        return self._finish(self._unfold(self.head(above)), previous)

    def _forecast(
        self, x: torch.Tensor, steps: int, targets: torch.Tensor | None, teacher_forcing: float
    ) -> torch.Tensor:
        b, _, hgt, wid = x.shape
        states = []
        for i, cell in enumerate(lstm_cells(self.encoder)):
            scale = self.patch_size * 2**i
            like = x.new_empty(b, 1, hgt // scale, wid // scale)
            states.append(cell.init_state(like))
        for t in range(self.n_in):
            self._encode(x[:, t : t + 1], states)
        return self._rollout(
            lambda previous: self._decode(previous, states),
            x[:, -1:],
            steps,
            targets,
            teacher_forcing,
        )


def build(**params: Any):
    """Registry factory: an untrained ``conv-ed-lstm`` :class:`TorchModel`."""
    from xnowcast.models.neural.adapter import build_registered

    return build_registered(ConvEDLSTM, **params)
