"""Plain JSON values: what scenarios, options and saga data may hold.

A scenario must round-trip through JSON and replay byte for byte, so everything it
carries (options, a saga's context and stores) is checked where it enters: nesting no
deeper than :data:`MAX_DEPTH`, whole numbers no bigger than :data:`MAX_INT`, finite
floats, string keys, and nothing else (no sets, no objects).
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

from ..errors import TxlibError, shown

T = TypeVar("T")

MAX_DEPTH = 32
MAX_INT = 2**63 - 1


def check_plain(value: Any, where: str, depth: int = 0) -> None:
    """Raise a TxlibError naming ``where`` (e.g. ``"option context"``) and the bad part
    unless ``value`` is a plain JSON value (tuples count as lists)."""
    if depth == 0 and is_plain(value):
        return  # the common case, without naming every part on the way
    if depth > MAX_DEPTH:
        root = where.split("[", 1)[0]
        raise TxlibError(f"{root} is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise TxlibError(f"{where} is {shown(value)}; numbers must be at most {MAX_INT:,} "
                             "in size")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TxlibError(f"{where} is {value!r}; JSON has no NaN or infinity")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TxlibError(f"{where} has the key {shown(key)}; JSON keys are strings")
            check_plain(item, f"{where}[{key!r}]", depth + 1)
        return
    kind = type(value).__name__
    hint = "; use a list" if isinstance(value, (set, frozenset)) else ""
    raise TxlibError(f"{where} holds {shown(value)}, a {kind}: only plain JSON values "
                     f"(numbers, strings, True/False/None, lists, dicts) can be saved and "
                     f"replayed{hint}")


def is_plain(value: Any, depth: int = 0) -> bool:
    """True if ``value`` is a plain JSON value, as :func:`check_plain` has it (which
    finds and names the bad part when it is not)."""
    if depth > MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, int):
        return abs(value) <= MAX_INT
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(is_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_plain(item, depth + 1)
                   for key, item in value.items())
    return False


def plain_copy(value: T) -> T:
    """A deep copy of a plain JSON value (dicts, lists, tuples and scalars, as
    :func:`check_plain` allows): what ``copy.deepcopy`` makes of one, several times
    faster, and with plain dicts and lists in place of read-only ones."""
    if isinstance(value, dict):
        return {k: plain_copy(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [plain_copy(v) for v in value]  # type: ignore[return-value]
    if isinstance(value, tuple):
        return tuple(plain_copy(v) for v in value)  # type: ignore[return-value]
    return value
