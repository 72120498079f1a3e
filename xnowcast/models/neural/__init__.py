"""PyTorch nowcasting networks and the adapter that runs them as xnowcast models.

Importing this package imports PyTorch. The built-in networks are in the model
registry as ``conv3d``, ``convlstm``, ``conv-ed-lstm`` and ``unet``; train them
with :class:`xnowcast.Trainer`.
"""

from xnowcast.optional import import_optional

import_optional("torch", "the neural models")

from xnowcast.models.neural.adapter import TorchModel, resolve_device  # noqa: E402

__all__ = ["TorchModel", "resolve_device"]
