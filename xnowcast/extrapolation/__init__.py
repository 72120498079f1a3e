"""Extrapolation of observed frames along a motion field.

See :mod:`xnowcast.extrapolation.semilagrangian`.
"""

from xnowcast.extrapolation.semilagrangian import backward_displacement, extrapolate

__all__ = ["backward_displacement", "extrapolate"]
