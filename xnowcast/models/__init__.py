"""Nowcasting models behind one registry and one array contract.

See :mod:`xnowcast.models.interface` for the contract.
"""

from xnowcast.models.interface import (
    ENTRY_POINT_GROUP,
    NowcastModel,
    get_model,
    list_models,
    register_model,
    run_model,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "NowcastModel",
    "get_model",
    "list_models",
    "register_model",
    "run_model",
]
