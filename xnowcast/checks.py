"""Checks of scalar arguments shared by the whole package.

Public functions validate the plain options whose wrong values would
otherwise give wrong results or an obscure failure deep inside (counts,
sizes, weights, flags, names from a fixed set) with these helpers, so that
one bad value gives the same kind of error, worded the same way, wherever it
is passed.

Policy
------
* A value of the wrong type (text, a bool where a number is expected, a
  float where a whole number is expected, ...) raises :class:`TypeError`.
* A value of the right type that is out of range (zero, negative, NaN,
  infinite, above a bound) raises :class:`ValueError`.
* Numeric text such as ``"0.5"`` is refused: the command line converts its
  arguments before they reach the API, and a string in a Python call is
  almost always a mistake.
* A name outside a fixed set (:func:`choice`) raises :class:`ValueError`
  listing the valid names.
* Every message names the argument, says what it must be and repeats the
  value given: ``"n_in must be a positive integer, got 0"``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, NoReturn, TypeVar, overload

import numpy as np

__all__ = ["boolean", "check_signature", "choice", "error_line", "integer", "positive_int", "real"]

#: The type of the options of :func:`choice` (``str`` or a ``Literal`` of names).
Option = TypeVar("Option", bound=str)


def _fail(wrong_type: bool, name: str, what: str, value: Any, allow_none: bool) -> NoReturn:
    alt = " or None" if allow_none else ""
    error = TypeError if wrong_type else ValueError
    raise error(f"{name} must be {what}{alt}, got {value!r}")


def choice(value: Any, name: str, options: Iterable[Option]) -> Option:
    """``value`` normalised (stripped, lower case) if it is one of ``options``.

    Parameters
    ----------
    value : Any
        The argument.
    name : str
        Its name, used in the error message.
    options : iterable of str
        The valid values, in lower case.

    Returns
    -------
    str
        The matching option (of the options' type: a ``Literal`` stays one).

    Raises
    ------
    ValueError
        ``value`` is not one of ``options`` (a non-string included); the
        message lists them.

    Examples
    --------
    >>> choice(" Weighted", "combine", ("weighted", "median"))
    'weighted'
    >>> choice("mean", "combine", ("weighted", "median"))
    Traceback (most recent call last):
    ...
    ValueError: combine must be one of 'weighted', 'median'; got 'mean'
    """
    valid = tuple(options)
    key = value.strip().lower() if isinstance(value, str) else None
    if key not in valid:
        listed = ", ".join(repr(v) for v in valid)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return valid[valid.index(key)]  # the option itself, typed as the options are


def boolean(value: Any, name: str) -> bool:
    """``value`` as a bool if it is ``True`` or ``False`` (numpy bools too).

    Truthy stand-ins such as ``"no"`` or ``1`` are refused: ``"no"`` is truthy
    and would silently mean yes.

    Parameters
    ----------
    value : Any
        The argument.
    name : str
        Its name, used in the error message.

    Returns
    -------
    bool

    Raises
    ------
    TypeError
        ``value`` is not a bool.

    Examples
    --------
    >>> boolean(np.True_, "mean")
    True
    >>> boolean("no", "mean")
    Traceback (most recent call last):
    ...
    TypeError: mean must be True or False, got 'no'
    """
    if not isinstance(value, (bool, np.bool_)):
        _fail(True, name, "True or False", value, False)
    return bool(value)


@overload
def integer(
    value: Any,
    name: str,
    *,
    low: int | None = ...,
    high: int | None = ...,
    allow_none: Literal[False] = ...,
    whole: bool = ...,
) -> int: ...
@overload
def integer(
    value: Any,
    name: str,
    *,
    low: int | None = ...,
    high: int | None = ...,
    allow_none: bool,
    whole: bool = ...,
) -> int | None: ...
def integer(
    value: Any,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    allow_none: bool = False,
    whole: bool = False,
) -> int | None:
    """``value`` as an int if it is an integer in ``low .. high``.

    Parameters
    ----------
    value : Any
        The argument: a Python or numpy integer (bools are refused).
    name : str
        Its name, used in the error message.
    low : int, optional
        Smallest value allowed; no lower bound by default.
    high : int, optional
        Largest value allowed; no upper bound by default.
    allow_none : bool
        Let ``None`` through (returned as ``None``).
    whole : bool
        Also accept floats with a whole value (``5.0``), as options read
        from JSON or YAML can be.

    Returns
    -------
    int or None

    Raises
    ------
    TypeError
        ``value`` is not an integer (or, with ``whole``, a whole float).
    ValueError
        ``value`` is below ``low`` or above ``high``.

    Examples
    --------
    >>> integer(np.int64(0), "seed", low=0)
    0
    >>> integer(5.0, "win_size", low=3, whole=True)
    5
    >>> integer(300, "nan_value", low=0, high=255)
    Traceback (most recent call last):
    ...
    ValueError: nan_value must be an integer in 0..255, got 300
    >>> integer(-1, "retries", low=0)
    Traceback (most recent call last):
    ...
    ValueError: retries must be a non-negative integer, got -1
    """
    if value is None and allow_none:
        return None
    if low is not None and high is not None:
        what = f"{'a whole number' if whole else 'an integer'} in {low}..{high}"
    elif high is not None:
        what = f"{'a whole number' if whole else 'an integer'} <= {high}"
    elif whole:
        what = "a whole number" + ("" if low is None else f" >= {low}")
    else:
        what = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            low, f"an integer >= {low}"
        )
    if isinstance(value, (bool, np.bool_)):
        _fail(True, name, what, value, allow_none)
    if not isinstance(value, (int, np.integer)):
        is_whole = (
            whole
            and isinstance(value, (float, np.floating))
            and math.isfinite(value)
            and value == int(value)
        )
        if not is_whole:
            _fail(True, name, what, value, allow_none)
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(False, name, what, value, allow_none)
    return int(value)


@overload
def positive_int(value: Any, name: str, *, allow_none: Literal[False] = ...) -> int: ...
@overload
def positive_int(value: Any, name: str, *, allow_none: bool) -> int | None: ...
def positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """``value`` as an int if it is an integer ``>= 1`` (:func:`integer` with ``low=1``).

    Examples
    --------
    >>> positive_int(3, "n_in")
    3
    >>> positive_int(None, "crop", allow_none=True) is None
    True
    >>> positive_int(0, "n_in")
    Traceback (most recent call last):
    ...
    ValueError: n_in must be a positive integer, got 0
    """
    return integer(value, name, low=1, allow_none=allow_none)


def _bound_text(
    low: float | None, high: float | None, low_inclusive: bool, high_inclusive: bool
) -> str:
    if low == 0 and high is None:
        return "a non-negative number" if low_inclusive else "a positive number"
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {low:g}")
    if high is not None:
        parts.append(f"{'<=' if high_inclusive else '<'} {high:g}")
    return "a number " + " and ".join(parts) if parts else "a finite number"


@overload
def real(
    value: Any,
    name: str,
    *,
    low: float | None = ...,
    high: float | None = ...,
    low_inclusive: bool = ...,
    high_inclusive: bool = ...,
    allow_none: Literal[False] = ...,
) -> float: ...
@overload
def real(
    value: Any,
    name: str,
    *,
    low: float | None = ...,
    high: float | None = ...,
    low_inclusive: bool = ...,
    high_inclusive: bool = ...,
    allow_none: bool,
) -> float | None: ...
def real(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_none: bool = False,
) -> float | None:
    """``value`` as a float if it is a finite number within the bounds.

    Parameters
    ----------
    value : Any
        The argument: anything ``float()`` takes except bools and text
        (Python and numpy numbers, 0-d arrays).
    name : str
        Its name, used in the error message.
    low, high : float, optional
        Bounds; none by default. NaN and infinities are always refused.
    low_inclusive, high_inclusive : bool
        Whether ``value`` may equal ``low`` / ``high``.
    allow_none : bool
        Let ``None`` through (returned as ``None``).

    Returns
    -------
    float or None

    Raises
    ------
    TypeError
        ``value`` is not a number.
    ValueError
        ``value`` is not finite or out of bounds.

    Examples
    --------
    >>> real(np.float32(0.5), "pyr_scale", low=0, high=1, low_inclusive=False)
    0.5
    >>> real(0, "lr", low=0, low_inclusive=False)
    Traceback (most recent call last):
    ...
    ValueError: lr must be a positive number, got 0
    >>> real("0.5", "threshold")
    Traceback (most recent call last):
    ...
    TypeError: threshold must be a finite number, got '0.5'
    """
    if value is None and allow_none:
        return None
    what = _bound_text(low, high, low_inclusive, high_inclusive)
    out = None
    if not isinstance(value, (bool, np.bool_, str, bytes)):
        with contextlib.suppress(TypeError, ValueError):
            out = float(value)
    if out is None:
        _fail(True, name, what, value, allow_none)
    ok = math.isfinite(out)
    if low is not None:
        ok = ok and (out >= low if low_inclusive else out > low)
    if high is not None:
        ok = ok and (out <= high if high_inclusive else out < high)
    if not ok:
        _fail(False, name, what, value, allow_none)
    return out


def check_signature(factory: Callable[..., Any], params: dict[str, Any], what: str) -> None:
    """Raise a TypeError naming ``what`` when ``factory`` does not take ``params``.

    Examples
    --------
    >>> check_signature(lambda n_in=1: None, {"n_out": 3}, "model 'x'")
    Traceback (most recent call last):
    ...
    TypeError: bad parameters for model 'x': got an unexpected keyword argument 'n_out'
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    try:
        signature.bind(**params)
    except TypeError as err:
        raise TypeError(f"bad parameters for {what}: {err}") from None


def error_line(err: BaseException) -> str:
    """``Type: first line of the message``, for one-line reports (backend errors span many lines).

    Examples
    --------
    >>> error_line(OSError("disk full\\nmore detail"))
    'OSError: disk full'
    """
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")
