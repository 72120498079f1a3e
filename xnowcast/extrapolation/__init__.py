"""Extrapolation of observed frames along a motion field.

See :mod:`xnowcast.extrapolation.semilagrangian`.
"""

from xnowcast.extrapolation.semilagrangian import advect, backward_displacement, extrapolate

__all__ = ["advect", "backward_displacement", "extrapolate"]
