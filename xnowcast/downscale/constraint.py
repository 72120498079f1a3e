"""Conservation constraints: the mean of every coarse cell's fine cells equals the coarse cell.

A coarse field made by area averaging (:func:`~xnowcast.downscale.coarsened`)
holds the mean of the fine field over each ``scale x scale`` block. A
downscaler can keep that exactly, as the constraint layers of Harder et al.
(2023, *Hard-constrained deep learning for climate downscaling*, JMLR 24)
do: the network's output is corrected, in physical units, so that each block
of ``scale x scale`` fine cells averages to its coarse cell.

``"add"``
    ``fine + (coarse - block mean)``: the difference spread evenly over the
    block; fine cells that this takes below the transform's range (below zero
    for rain) are clipped to it, and their block then averages above the
    coarse cell.
``"mul"``
    ``coarse * (fine + d) / (block mean + d)`` with ``d`` = :data:`OFFSET`:
    the network's pattern scaled to the coarse mean; stays non-negative, a dry
    coarse cell gives dry fine cells, and a block the network left dry gets
    the coarse value evenly. For non-negative fields (rain rates).

The network works in an intensity transform (:mod:`xnowcast.transforms`);
the constraint goes through it with :func:`torch_transform` (``log`` with
``base="e"``, ``identity``, ``scale``: transforms without thresholds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from xnowcast.transforms import Transform, get_transform

__all__ = ["CONSTRAINTS", "OFFSET", "check_constraint", "conserve", "torch_transform"]

#: Names of the constraints.
CONSTRAINTS = ("add", "mul")
#: Offset ``d`` (physical units) of the ``"mul"`` constraint: blocks the network
#: leaves dry get the coarse value evenly, and no block divides by zero.
OFFSET = 1e-3

_Pair = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def torch_transform(transform: str | dict | Transform | None) -> _Pair:
    """``(forward, inverse)`` of an intensity transform on tensors (differentiable).

    Parameters
    ----------
    transform : str, dict or Transform
        ``"log"`` (``base="e"``: ``log1p``), ``"identity"`` or ``"scale"``.

    Examples
    --------
    >>> import torch
    >>> forward, inverse = torch_transform("log")
    >>> inverse(forward(torch.tensor([0.0, 3.0]))).tolist()
    [0.0, 3.0]
    """
    tf = get_transform(transform)
    params = tf.get_params()
    if tf.name == "log" and params["base"] == "e":
        return torch.log1p, torch.expm1
    if tf.name == "identity":
        return (lambda x: x), (lambda y: y)
    if tf.name == "scale" and not params["clip"]:
        lo, width = params["vmin"], params["vmax"] - params["vmin"]
        return (lambda x: (x - lo) / width), (lambda y: y * width + lo)
    raise ValueError(
        f"a conservation constraint needs a smooth transform, got {tf!r}; train with "
        "transform='log' (log1p), 'identity' or {'name': 'scale', 'vmax': ...} (clip=False)"
    )


def conserve(
    fine: torch.Tensor,
    coarse: torch.Tensor,
    scale: int,
    kind: str | None,
    transform: str | dict | Transform | None = "log",
) -> torch.Tensor:
    """``fine`` corrected so that every ``scale x scale`` block averages to ``coarse``.

    Parameters
    ----------
    fine : Tensor
        ``(B, 1, h*scale, w*scale)`` in the transform's space.
    coarse : Tensor
        ``(B, 1, h, w)`` in the transform's space.
    scale : int
        Fine cells per coarse cell along each axis.
    kind : {"add", "mul"} or None
        The constraint (module docstring); ``None`` returns ``fine``.
    transform : str, dict or Transform
        The space of ``fine`` and ``coarse`` (see :func:`torch_transform`);
        the blocks average in physical units.

    Returns
    -------
    Tensor
        Like ``fine``, in the transform's space.

    Examples
    --------
    >>> import torch
    >>> fine = torch.rand(1, 1, 4, 4)
    >>> coarse = torch.log1p(torch.tensor([[[[1.0, 0.0], [2.0, 5.0]]]]))
    >>> out = torch.expm1(conserve(fine, coarse, 2, "mul"))
    >>> torch.nn.functional.avg_pool2d(out, 2).flatten().round(decimals=4).tolist()
    [1.0, 0.0, 2.0, 5.0]
    """
    if check_constraint(kind) is None:
        return fine
    tf = get_transform(transform)
    forward, inverse = torch_transform(tf)
    lo = tf.output_range[0]
    phys = inverse(fine.clamp_min(lo))
    target = inverse(coarse)
    if kind == "add":
        gap = target - F.avg_pool2d(phys, scale)
        floor = float(inverse(torch.tensor(lo)))  # the transform's lowest physical value
        return forward((phys + _spread(gap, scale)).clamp_min(floor))
    phys = phys.clamp_min(0.0) + OFFSET
    ratio = target.clamp_min(0.0) / F.avg_pool2d(phys, scale)
    return forward(phys * _spread(ratio, scale))


def _spread(coarse: torch.Tensor, scale: int) -> torch.Tensor:
    """Each coarse cell repeated over its ``scale x scale`` fine cells."""
    return coarse.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def check_constraint(kind: Any) -> str | None:
    """``None`` or a name of :data:`CONSTRAINTS` (else a ValueError naming them).

    Examples
    --------
    >>> check_constraint("mul"), check_constraint(None)
    ('mul', None)
    """
    if kind is None or kind in CONSTRAINTS:
        return kind
    raise ValueError(f"constraint must be None or one of {', '.join(CONSTRAINTS)}, got {kind!r}")
