"""Read-only stores, context and steps for a built-in saga.

Every run of a saga starts from a deep copy of its definition's stores and context, so a
built-in saga's own values are never meant to change; changing one in place
(``get_saga("ecommerce").steps.pop()``) would change every later run of it in the
session, silently. :func:`frozen` makes them lists and dicts that refuse any change
with a :class:`TxlibError`, and whose copies are plain, changeable ones: a run, or a
saga of your own built from them, works as before.
"""

from __future__ import annotations

import copy
from typing import Any, NoReturn, TypeVar

from ..errors import TxlibError

T = TypeVar("T")

_REFUSAL = ("this is part of a built-in saga, which cannot change: define a saga of your "
            "own (txlib.Saga(...)) with a copy of it instead")


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TxlibError(_REFUSAL)


class FrozenDict(dict[str, Any]):
    """A dict that refuses every change; its copies are plain dicts."""

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list[T]):
    """A list that refuses every change; its copies are plain lists."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[T]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[T]:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def frozen(value: T) -> T:
    """``value`` with every dict and list in it (at any depth) made read-only."""
    if isinstance(value, dict):
        return FrozenDict({k: frozen(v) for k, v in value.items()})  # type: ignore[return-value]
    if isinstance(value, list):
        return FrozenList(frozen(v) for v in value)  # type: ignore[return-value]
    return value
