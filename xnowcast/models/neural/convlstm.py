"""The ConvLSTM encoder-forecaster of Shi et al. (2015), and the plain stacked ConvLSTM.

``variant="encoder-forecaster"`` (default), after Shi et al., *Convolutional
LSTM Network: A Machine Learning Approach for Precipitation Nowcasting*
(NeurIPS 2015): a stack of ConvLSTM layers reads the input frames; a second
stack (the forecaster), whose states start from the encoder's final states
layer by layer, runs ``n_out`` more steps; at each step the hidden states of
all forecaster layers are concatenated and a 1x1 convolution makes the frame.
The forecaster runs on its state alone (as in the paper) or, with
``autoregressive=True``, also reads the previous frame (the last input frame,
then its own forecast, or the truth under scheduled sampling).

``variant="stacked"``: the Keras next-frame example. One stack of ConvLSTM
layers reads the inputs and keeps going, fed its own forecasts; a 3x3
convolution of the top layer's hidden state makes each frame.

``patch_size`` folds ``p x p`` pixel patches into channels before the
recurrent layers (as OpenSTL's ConvLSTM does), which makes large grids
``p**2`` times cheaper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from xnowcast.checks import choice
from xnowcast.models.neural.base import RecurrentNet, check_hidden, next_input, per_layer
from xnowcast.models.neural.cells import ConvLSTMCell, lstm_cells

__all__ = ["ConvLSTM", "build"]

_VARIANTS = ("encoder-forecaster", "stacked")


class ConvLSTM(RecurrentNet):
    """ConvLSTM nowcasting network (encoder-forecaster or stacked).

    Parameters
    ----------
    n_in, n_out : int
        Input frames and lead times.
    hidden : list of int
        Hidden channels of each ConvLSTM layer (the forecaster mirrors the
        encoder).
    kernel_size : int or list of int
        Odd kernel side, for all layers or one per layer.
    variant : {"encoder-forecaster", "stacked"}
        See the module docstring.
    patch_size : int
        Side of the pixel patches folded into channels (1: none). ``H`` and
        ``W`` must be multiples of it (:class:`TorchModel` pads).
    layer_norm : bool
        Layer normalisation inside the cells.
    autoregressive : bool
        Encoder-forecaster only: feed the previous frame to the forecaster
        (enables scheduled sampling). The stacked variant always does.
    output_activation : {"none", "sigmoid", "relu", "softplus"}
        Applied to the output frames.
    residual : bool
        Each frame is predicted as a change from the previous one.
        The output layer starts at zero, so an untrained network is persistence.

    Examples
    --------
    >>> import torch
    >>> net = ConvLSTM(n_in=3, n_out=2, hidden=[8, 8])
    >>> tuple(net(torch.zeros(1, 3, 19, 13)).shape)
    (1, 2, 19, 13)
    >>> tuple(net(torch.zeros(1, 3, 19, 13), n_out=5).shape)  # any number of steps
    (1, 5, 19, 13)
    """

    architecture = "convlstm"

    def __init__(
        self,
        n_in: int = 12,
        n_out: int = 24,
        *,
        hidden: Sequence[int] = (64, 64),
        kernel_size: int | list[int] = 3,
        variant: str = "encoder-forecaster",
        patch_size: int = 1,
        layer_norm: bool = False,
        autoregressive: bool = False,
        output_activation: str | None = "none",
        residual: bool = False,
    ) -> None:
        super().__init__(n_in, n_out, patch_size)
        self.hidden = check_hidden(hidden)
        self.kernel_size = per_layer(kernel_size, len(self.hidden), "kernel_size")
        self.variant = choice(variant, "variant", _VARIANTS)
        self.size_multiple = patch_size
        self.layer_norm = bool(layer_norm)
        self.autoregressive = bool(autoregressive) or variant == "stacked"
        frame_ch = patch_size**2

        def stack(first_in: int) -> nn.ModuleList:
            cells, ch = [], first_in
            for h, k in zip(self.hidden, self.kernel_size):
                cells.append(ConvLSTMCell(ch, h, k, layer_norm=self.layer_norm))
                ch = h
            return nn.ModuleList(cells)

        self.encoder = stack(frame_ch)
        if variant == "encoder-forecaster":
            self.forecaster: nn.ModuleList | None = stack(frame_ch if self.autoregressive else 0)
            head = nn.Conv2d(sum(self.hidden), frame_ch, kernel_size=1)
        else:
            self.forecaster = None
            head = nn.Conv2d(self.hidden[-1], frame_ch, kernel_size=3, padding=1)
        self._output_layer(head, output_activation, residual)

    @property
    def supports_teacher_forcing(self) -> bool:
        return self.autoregressive

    def get_config(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "kernel_size": self.kernel_size,
            "variant": self.variant,
            "patch_size": self.patch_size,
            "layer_norm": self.layer_norm,
            "autoregressive": self.autoregressive,
            "output_activation": self.output_activation_name,
            "residual": self.residual,
        }

    @staticmethod
    def _run(cells: nn.ModuleList, x: torch.Tensor | None, states: list) -> torch.Tensor | None:
        inp = x
        for i, cell in enumerate(cells):
            states[i] = cell(inp, states[i])
            inp = states[i][0]
        return inp

    def _frame(self, states: list, previous: torch.Tensor) -> torch.Tensor:
        if self.variant == "encoder-forecaster":
            feat = torch.cat([h for h, _ in states], dim=1)
        else:
            feat = states[-1][0]
        return self._finish(self._unfold(self.head(feat)), previous)

    def _forecast(
        self, x: torch.Tensor, steps: int, targets: torch.Tensor | None, teacher_forcing: float
    ) -> torch.Tensor:
        folded = self._fold(x[:, :1])
        states = [cell.init_state(folded) for cell in lstm_cells(self.encoder)]
        for t in range(self.n_in):
            self._run(self.encoder, self._fold(x[:, t : t + 1]), states)
        previous = x[:, -1:]
        forecaster = self.forecaster
        if forecaster is not None:  # the encoder-forecaster variant

            def step(previous: torch.Tensor) -> torch.Tensor:
                inp = self._fold(previous) if self.autoregressive else None
                self._run(forecaster, inp, states)
                return self._frame(states, previous)

            return self._rollout(step, previous, steps, targets, teacher_forcing)
        # stacked: the encoder keeps going, fed its own forecasts
        frame = self._frame(states, previous)
        frames = [frame]
        for k in range(1, steps):
            previous = next_input(frame, targets, k - 1, teacher_forcing)
            self._run(self.encoder, self._fold(previous), states)
            frame = self._frame(states, previous)
            frames.append(frame)
        return torch.cat(frames, dim=1)


def build(**params: Any):
    """Registry factory: an untrained ``convlstm`` :class:`~xnowcast.models.neural.TorchModel`."""
    from xnowcast.models.neural.adapter import build_registered

    return build_registered(ConvLSTM, **params)
