"""Training of the PyTorch nowcasting networks (imports PyTorch).

:class:`Trainer` trains, :func:`load_model` loads a checkpoint as a model,
:class:`WindowDataset` feeds cubes to PyTorch, :mod:`~xnowcast.training.losses`
holds the losses and :mod:`~xnowcast.training.config` the YAML configuration of
``xnowcast train``.
"""

from xnowcast.optional import import_optional

import_optional("torch", "training and checkpoints")

from xnowcast.models.neural.checkpoint import load_model, read_metadata  # noqa: E402
from xnowcast.training.dataset import WindowDataset  # noqa: E402
from xnowcast.training.losses import get_loss  # noqa: E402
from xnowcast.training.trainer import Trainer  # noqa: E402

__all__ = ["Trainer", "WindowDataset", "get_loss", "load_model", "read_metadata"]
