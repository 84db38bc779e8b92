"""The one error type txlib raises for bad input, and helpers to word it."""

from __future__ import annotations

from collections.abc import Iterable


class TxlibError(ValueError):
    """Bad input to txlib: the message names the bad value and the valid choices."""


class ProtocolError(RuntimeError):
    """A protocol broke its own declared rules (e.g. an undeclared state transition).

    This is a bug in protocol code, not bad user input, so it is not a ValueError.
    """


def choices(values: Iterable[object]) -> str:
    """Format valid choices for an error message: 'a', 'b' or 'c'."""
    items = [repr(v) for v in values]
    if not items:
        return "(none)"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


def bad_choice(what: str, value: object, valid: Iterable[object]) -> TxlibError:
    """An error for a value that is not one of the valid choices."""
    return TxlibError(f"unknown {what} {value!r}; valid choices: {choices(valid)}")
