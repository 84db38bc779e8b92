"""Plain JSON values: what scenarios, options and saga data may hold.

A scenario must round-trip through JSON and replay byte for byte, so everything it
carries (options, a saga's context and stores) is checked where it enters: nesting no
deeper than :data:`MAX_DEPTH`, whole numbers no bigger than :data:`MAX_INT`, finite
floats, string keys, and nothing else (no sets, no objects).
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import TxlibError, shown

MAX_DEPTH = 32
MAX_INT = 2**63 - 1


def check_plain(value: Any, where: str, depth: int = 0) -> None:
    """Raise a TxlibError naming ``where`` (e.g. ``"option context"``) and the bad part
    unless ``value`` is a plain JSON value (tuples count as lists)."""
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
