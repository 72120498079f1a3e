"""Training of the PyTorch nowcasting networks (imports PyTorch).

:class:`Trainer` trains, :func:`load_model` loads a checkpoint as a model,
:class:`WindowDataset` feeds cubes to PyTorch, :mod:`~xnowcast.training.losses`
holds the losses and :mod:`~xnowcast.training.config` the YAML configuration of
``xnowcast train``.
"""

from xnowcast.training.checkpoint import load_model, read_metadata
from xnowcast.training.dataset import WindowDataset
from xnowcast.training.losses import get_loss
from xnowcast.training.trainer import Trainer

__all__ = ["Trainer", "load_model", "read_metadata", "WindowDataset", "get_loss"]
