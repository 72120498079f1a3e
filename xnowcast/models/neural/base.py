"""What the built-in networks have in common.

Every built-in architecture is a :class:`NowcastNet`: a ``torch.nn.Module``
with the neural array contract

``forward(x)``: ``x`` float ``(batch, n_in, H, W)`` in transformed space (no
``NaN``) -> ``(batch, n_out, H, W)`` in the same space,

plus the class attributes and :meth:`NowcastNet.get_config` that
:class:`~xnowcast.models.neural.TorchModel`, the trainer and checkpoints use.
Any other module with the same ``forward`` contract works too; the extras are
optional.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from xnowcast.checks import choice, positive_int

__all__ = ["NowcastNet", "check_hidden", "output_activation"]

_ACTIVATIONS = ("none", "sigmoid", "relu", "softplus")


def output_activation(name: str | None) -> nn.Module:
    """The module applied to the frames a network outputs.

    ``"none"`` (linear, the default), ``"sigmoid"`` (outputs in ``(0, 1)``,
    for ``loss="bce"`` on a transform to ``[0, 1]``), ``"relu"`` or
    ``"softplus"`` (non-negative outputs, e.g. for ``transform="log"``).
    """
    key = choice("none" if name is None else name, "output_activation", _ACTIVATIONS)
    return {
        "none": nn.Identity,
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "softplus": nn.Softplus,
    }[key]()


_activation = output_activation  # the name ``output_activation`` is also a constructor argument


def check_hidden(hidden: Any, name: str = "hidden") -> list[int]:
    """A non-empty list of positive ints (one per layer); a single int is one layer."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = [hidden]
    try:
        out = [int(h) for h in hidden]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a list of positive integers, got {hidden!r}") from None
    if not out or any(h < 1 for h in out) or any(h != v for h, v in zip(out, hidden)):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {hidden!r}")
    return out


def check_kernel_size(kernel_size: Any) -> int:
    """``kernel_size`` as an int if it is a positive odd integer, else a ``ValueError``."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    return int(kernel_size)


def per_layer(value: Any, n: int, name: str) -> list[int]:
    """An int for every layer, or a list with one odd int per layer."""
    values = [value] * n if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        values = [int(v) for v in values]
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an odd integer or a list of them, got {value!r}") from None
    if len(values) != n:
        raise ValueError(f"{name} needs one value per layer ({n}), got {value!r}")
    if any(v < 1 or v % 2 == 0 for v in values):
        raise ValueError(f"{name} values must be positive odd integers, got {value!r}")
    return values


class NowcastNet(nn.Module):
    """Base class of the built-in networks.

    Attributes
    ----------
    n_in, n_out : int
        Input frames and output frames.
    size_multiple : int
        ``H`` and ``W`` must be multiples of this (the adapter pads and crops
        back); 1 for networks that take any grid.
    variable_n_out : bool
        ``forward(x, n_out=k)`` produces ``k`` frames (recurrent networks):
        curriculum learning then trains on shorter outputs at lower cost.
    supports_teacher_forcing : bool
        ``forward(x, targets=..., teacher_forcing=p)`` feeds the true previous
        frame instead of the forecast with probability ``p`` (scheduled
        sampling).
    """

    #: Name in the model registry.
    architecture: ClassVar[str] = ""
    variable_n_out: ClassVar[bool] = False
    #: The output convolution (set by :meth:`_output_layer`).
    head: nn.Conv2d | nn.Conv3d

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.n_in = positive_int(n_in, "n_in")
        self.n_out = positive_int(n_out, "n_out")
        self.size_multiple = 1

    @property
    def supports_teacher_forcing(self) -> bool:
        return False

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments other than ``n_in``/``n_out`` (JSON-able)."""
        raise NotImplementedError

    def _output_layer(
        self, head: nn.Conv2d | nn.Conv3d, output_activation: str | None, residual: bool
    ) -> None:
        """Set the output convolution ``head`` and what follows it (see :meth:`_finish`).

        Stores ``residual`` and the activation's name (for :meth:`get_config`);
        with ``residual`` the head starts at zero, so that an untrained
        network is persistence.
        """
        self.output_activation_name = output_activation or "none"
        self.residual = bool(residual)
        self.head = head
        if self.residual:  # start as persistence: the network learns the change
            nn.init.zeros_(head.weight)
            if head.bias is not None:
                nn.init.zeros_(head.bias)
        self.activation = _activation(output_activation)

    def _finish(self, out: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """The output frames from the head's ``out``: plus ``previous`` if residual, activated."""
        if self.residual:
            out = out + previous
        return self.activation(out)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.n_in:
            raise ValueError(
                f"{type(self).__name__} expects input of shape (batch, n_in={self.n_in}, H, W), "
                f"got {tuple(x.shape)}"
            )
        m = self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(
                f"{type(self).__name__} needs H and W to be multiples of {m}, got "
                f"{tuple(x.shape[-2:])}; pad the input (TorchModel does this for you)"
            )

    def _steps(self, n_out: int | None) -> int:
        if n_out is None:
            return self.n_out
        if not self.variable_n_out:
            if n_out != self.n_out:
                raise ValueError(f"{type(self).__name__} always produces n_out={self.n_out} frames")
            return n_out
        return positive_int(n_out, "n_out")

    def extra_repr(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"n_in={self.n_in}, n_out={self.n_out}, {cfg}"


def next_input(
    prediction: torch.Tensor,
    targets: torch.Tensor | None,
    step: int,
    teacher_forcing: float,
) -> torch.Tensor:
    """The frame fed to the next recurrent step (scheduled sampling).

    With probability ``teacher_forcing`` (drawn per sample) the true frame
    ``targets[:, step]`` replaces the forecast ``prediction``.
    """
    if targets is None or teacher_forcing <= 0 or step >= targets.shape[1]:
        return prediction
    truth = targets[:, step : step + 1]
    if teacher_forcing >= 1:
        return truth
    keep = torch.rand(prediction.shape[0], 1, 1, 1, device=prediction.device) < teacher_forcing
    return torch.where(keep, truth.to(prediction.dtype), prediction)


class RecurrentNet(NowcastNet):
    """Base class of the recurrent networks (ConvLSTM, ConvEDLSTM).

    Adds pixel-patch folding (``patch_size``) and the decoding loop with
    scheduled sampling; produces any number of frames (``variable_n_out``).
    """

    variable_n_out: ClassVar[bool] = True

    def __init__(self, n_in: int, n_out: int, patch_size: int = 1) -> None:
        super().__init__(n_in, n_out)
        self.patch_size = positive_int(patch_size, "patch_size")

    def _fold(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C * p**2, H / p, W / p)`` (``p = patch_size``)."""
        return F.pixel_unshuffle(x, self.patch_size) if self.patch_size > 1 else x

    def _unfold(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`_fold`."""
        return F.pixel_shuffle(x, self.patch_size) if self.patch_size > 1 else x

    def forward(
        self,
        x: torch.Tensor,
        n_out: int | None = None,
        targets: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
    ) -> torch.Tensor:
        """Forecast ``n_out`` (default ``self.n_out``) frames from ``x``.

        ``targets`` ``(B, >=n_out - 1, H, W)`` and ``teacher_forcing`` (a
        probability) switch on scheduled sampling during training.
        """
        self._check_input(x)
        return self._forecast(x, self._steps(n_out), targets, teacher_forcing)

    def _forecast(
        self, x: torch.Tensor, steps: int, targets: torch.Tensor | None, teacher_forcing: float
    ) -> torch.Tensor:
        """``steps`` frames from the checked input ``x`` (see :meth:`forward`)."""
        raise NotImplementedError

    @staticmethod
    def _rollout(
        step: Callable[[torch.Tensor], torch.Tensor],
        previous: torch.Tensor,
        steps: int,
        targets: torch.Tensor | None,
        teacher_forcing: float,
    ) -> torch.Tensor:
        """``steps`` frames ``(B, steps, H, W)``, each ``step(previous)``.

        ``previous`` starts as the given frame, then is each forecast frame
        in turn, or the truth under scheduled sampling (:func:`next_input`).
        """
        frames = []
        for k in range(steps):
            frame = step(previous)
            frames.append(frame)
            previous = next_input(frame, targets, k, teacher_forcing)
        return torch.cat(frames, dim=1)
