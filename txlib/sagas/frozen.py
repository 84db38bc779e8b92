"""Read-only lists and dicts: a built-in saga's steps, stores and context, and the
context a step's action or compensation reads.

Every run of a saga starts from a deep copy of its definition's stores and context, so a
built-in saga's own values are never meant to change; changing one in place
(``get_saga("ecommerce").steps.pop()``) would change every later run of it in the
session, silently. A step's ``ctx`` is its input: an action hands back what it adds
(a dict of updates), and a change made to ``ctx`` in place would be lost, or seen by a
duplicate of the same command, which nothing real shares.

:func:`frozen` makes lists and dicts that refuse any change with :class:`Refused` (a
:class:`TxlibError`) saying why, and whose copies are plain, changeable ones.
"""

from __future__ import annotations

import copy
from typing import Any, NoReturn, TypeVar

from ..errors import TxlibError

T = TypeVar("T")

BUILT_IN = ("this is part of a built-in saga, which cannot change: define a saga of your "
            "own (txlib.Saga(...)) with a copy of it instead")


class Refused(TxlibError):
    """A change to a read-only list or dict."""


def _refuse(self: FrozenDict | FrozenList[Any], *args: object, **kwargs: object) -> NoReturn:
    raise Refused(self.refusal)


class FrozenDict(dict[str, Any]):
    """A dict that refuses every change, saying ``refusal``; its copies are plain dicts."""

    __slots__ = ("refusal",)
    refusal: str
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: copy.deepcopy(value, memo) for key, value in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class FrozenList(list[T]):
    """A list that refuses every change, saying ``refusal``; its copies are plain lists."""

    __slots__ = ("refusal",)
    refusal: str
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> list[T]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> list[T]:
        return [copy.deepcopy(value, memo) for value in self]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))


def frozen(value: T, refusal: str = BUILT_IN) -> T:
    """A copy of ``value`` with every dict and list in it (at any depth) read-only,
    refusing a change with ``refusal``."""
    if isinstance(value, dict):
        d = FrozenDict({k: frozen(v, refusal) for k, v in value.items()})
        d.refusal = refusal
        return d  # type: ignore[return-value]
    if isinstance(value, list):
        items = FrozenList(frozen(v, refusal) for v in value)
        items.refusal = refusal
        return items  # type: ignore[return-value]
    if isinstance(value, tuple):  # plain values may hold tuples (as lists) of dicts
        return tuple(frozen(v, refusal) for v in value)  # type: ignore[return-value]
    return value
