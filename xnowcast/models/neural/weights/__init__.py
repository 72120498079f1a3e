"""Weights shipped with xnowcast (package data, read with ``torch.load(weights_only=True)``).

``advection-unet.pt``: the ``advection-unet`` model trained on the shared radar
(model card and training command in docs/neural.md).
"""
