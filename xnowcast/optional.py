"""Optional dependencies: one import helper that names the extra to install.

xnowcast's core needs only numpy, xarray, dask and friends. OpenCV, PyTorch,
matplotlib, cartopy and the file-format libraries come with *extras*
(``pip install 'xnowcast[flow]'``). Every module that needs one imports it
with :func:`import_optional`, so that a missing package gives one message
naming the feature and the extra, never a bare ``ModuleNotFoundError``.

Examples
--------
>>> from xnowcast.optional import import_optional
>>> np = import_optional("numpy", "arrays")
>>> import_optional("not_a_real_module", "this feature", extra="flow")
Traceback (most recent call last):
...
xnowcast.optional.MissingOptionalDependency: the Python package 'not_a_real_module' is not installed, and this feature cannot run without it; install it with: pip install 'xnowcast[flow]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingOptionalDependency", "import_optional"]

#: The extra of ``pyproject.toml`` that brings each optional top-level package.
EXTRAS: dict[str, str] = {
    "cv2": "flow",
    "numba": "flow",
    "torch": "torch",
    "matplotlib": "plot",
    "cartopy": "plot",
    "PIL": "plot",
    "distributed": "distributed",
    "h5py": "formats",
    "rasterio": "formats",
    "rioxarray": "formats",
    "cfgrib": "formats",
    "eccodes": "formats",
}


class MissingOptionalDependency(ImportError):
    """An optional package that a feature needs is not installed.

    A subclass of :class:`ImportError`, so ``except ImportError`` still works.
    """


def import_optional(name: str, feature: str, *, extra: str | None = None) -> ModuleType:
    """Import module ``name`` (e.g. ``"cv2"``, ``"torch.nn"``) or explain how to get it.

    Parameters
    ----------
    name : str
        Module to import; its top-level package decides the extra.
    feature : str
        What needs it, for the message (``"optical-flow motion"``).
    extra : str, optional
        The xnowcast extra to install; default from :data:`EXTRAS`.

    Returns
    -------
    module

    Raises
    ------
    MissingOptionalDependency
        The package is not installed; the message names the extra.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        top = name.partition(".")[0]
        if err.name is not None and err.name.partition(".")[0] != top:
            raise  # the package is there but one of *its* dependencies is missing
        extra = extra or EXTRAS.get(top)
        how = f"pip install 'xnowcast[{extra}]'" if extra else f"pip install {top}"
        raise MissingOptionalDependency(
            f"the Python package {top!r} is not installed, and {feature} cannot run without "
            f"it; install it with: {how}"
        ) from None
