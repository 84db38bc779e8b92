"""A node's volatile state (its variables and pending timers) as the trace keeps it.

After every handler a recording world keeps the node's volatile state (the lab shows
it at each step). Writing it out as text there cost more than the rest of the
recording, and most of it is never read; so the world keeps a :func:`volatile_copy`
(a copy of its variables, deep enough that later changes do not reach it, and
its timers as a tuple of items) and the
trace turns it into text with :func:`volatile_text` only when it is read.
"""

from __future__ import annotations

from typing import Any, Protocol

# A kept volatile state: "" (nothing volatile), or (a copy of the variables, the timers'
# items: (name, (token, due time)) pairs). Items take less room than a copied dict.
Timers = tuple[tuple[str, tuple[int, int]], ...]
Volatile = str | tuple[dict[str, Any], Timers]

_NO_VARS: dict[str, Any] = {}  # shared by kept states without variables (never changed)


class HasVolatile(Protocol):
    """Anything with a node's volatile variables and timers (a node slot)."""

    @property
    def vars(self) -> dict[str, Any]: ...

    @property
    def timers(self) -> dict[str, tuple[int, int]]: ...


def copied(value: Any) -> Any:
    """A copy of a volatile variable deep enough that the copy can change on its own:
    sets, dicts and lists are copied (recursively), anything else is shared."""
    t = type(value)
    if t is set:
        return set(value)
    if t is dict:
        return {k: copied(v) for k, v in value.items()}
    if t is list:
        return [copied(v) for v in value]
    return value


def volatile_copy(variables: dict[str, Any], timers: dict[str, tuple[int, int]]) -> Volatile:
    """What a node's ``variables`` and ``timers`` hold now, kept apart from them."""
    if not variables:
        return (_NO_VARS, tuple(timers.items())) if timers else ""
    kept: dict[str, Any] = {}
    for k, v in variables.items():  # copied(v), with its commonest cases written out
        t = type(v)
        kept[k] = set(v) if t is set else copied(v) if t is dict or t is list else v
    return kept, tuple(timers.items())


def volatile_text(kept: Volatile) -> str:
    """A kept volatile state as text (see :func:`summary`)."""
    return kept if isinstance(kept, str) else summary(kept[0], dict(kept[1]))


def volatile_summary(node: HasVolatile) -> str:
    """A node's volatile state and pending timers now, as text (see :func:`summary`)."""
    return summary(node.vars, node.timers)


def summary(variables: dict[str, Any], timers: dict[str, tuple[int, int]]) -> str:
    """A short, deterministic text of volatile ``variables`` and pending ``timers``:
    ``"acks={p1, p2}; timer acks at 71"``."""
    if not variables and not timers:
        return ""
    parts = []
    for key in sorted(variables):
        value = variables[key]
        if isinstance(value, (set, frozenset)):
            text = "{" + ", ".join(sorted(map(str, value))) + "}"
        elif isinstance(value, dict):
            text = "{" + ", ".join(f"{k}: {_str(value[k])}"
                                   for k in sorted(value, key=str)) + "}"
        else:
            text = _str(value)
        parts.append(f"{key}={text}")
    for name in sorted(timers):
        parts.append(f"timer {name} at {timers[name][1]}")
    return "; ".join(parts)


def _str(value: Any) -> str:
    """``str(value)``, but with the elements of every set inside it in sorted order: a
    set of strings iterates in an order that changes with Python's hash seed, and the
    text must be the same in every process."""
    t = type(value)
    if t in (set, frozenset, dict, list, tuple):
        return _repr(value)
    return str(value)


def _repr(value: Any) -> str:
    """``repr(value)`` with sets (at any depth) sorted (see :func:`_str`)."""
    t = type(value)
    if t is set or t is frozenset:
        if not value:
            return "set()" if t is set else "frozenset()"
        try:
            items = sorted(value)
        except TypeError:  # values that do not compare: by their text
            items = sorted(value, key=repr)
        inner = "{" + ", ".join(_repr(v) for v in items) + "}"
        return inner if t is set else f"frozenset({inner})"
    if t is dict:
        return "{" + ", ".join(f"{_repr(k)}: {_repr(v)}" for k, v in value.items()) + "}"
    if t is list:
        return "[" + ", ".join(_repr(v) for v in value) + "]"
    if t is tuple:
        return "(" + ", ".join(_repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)
