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

from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["NowcastNet", "output_activation", "check_hidden"]

_ACTIVATIONS = ("none", "sigmoid", "relu", "softplus")


def output_activation(name: str | None) -> nn.Module:
    """The module applied to the frames a network outputs.

    ``"none"`` (linear, the default), ``"sigmoid"`` (outputs in ``(0, 1)``,
    for ``loss="bce"`` on a transform to ``[0, 1]``), ``"relu"`` or
    ``"softplus"`` (non-negative outputs, e.g. for ``transform="log"``).
    """
    key = "none" if name is None else str(name).lower()
    if key not in _ACTIVATIONS:
        raise ValueError(
            f"unknown output_activation {name!r}; choose one of {', '.join(_ACTIVATIONS)}"
        )
    return {
        "none": nn.Identity,
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "softplus": nn.Softplus,
    }[key]()


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

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        for value, label in ((n_in, "n_in"), (n_out, "n_out")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.size_multiple = 1

    @property
    def supports_teacher_forcing(self) -> bool:
        return False

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments other than ``n_in``/``n_out`` (JSON-able)."""
        raise NotImplementedError

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
        if isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 1:
            raise ValueError(f"n_out must be a positive integer, got {n_out!r}")
        return n_out

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
