"""The one error type txlib raises for bad input, and helpers to word it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TxlibError(ValueError):
    """Bad input to txlib: the message names the bad value and the valid choices."""


class ProtocolError(RuntimeError):
    """A protocol broke its own declared rules (e.g. an undeclared state transition).

    This is a bug in protocol code, not bad user input, so it is not a ValueError.
    """


MAX_SHOWN_DIGITS = 30


def shown(value: object) -> str:
    """``repr(value)`` for an error message, kept short: a huge number is described by
    its size (Python refuses to print ints of more than 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        bits = abs(value).bit_length()
        if bits > 3.33 * MAX_SHOWN_DIGITS:
            return f"a number of about {int(bits * 0.30103) + 1:,} digits"
        return repr(value)
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def choices(values: Iterable[object]) -> str:
    """Format valid choices for an error message: 'a', 'b' or 'c'."""
    items = [repr(v) for v in values]
    if not items:
        return "(none)"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


def suggestion(value: object, valid: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` when ``value`` looks like a typo of a valid string
    choice, else ``""``."""
    if not isinstance(value, str):
        return ""
    names = [v for v in valid if isinstance(v, str)]
    close = difflib.get_close_matches(value, names, n=1, cutoff=0.75)
    if not close:
        lowered = {n.lower(): n for n in names}
        close = [lowered[value.lower()]] if value.lower() in lowered else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def bad_choice(what: str, value: object, valid: Iterable[object]) -> TxlibError:
    """An error for a value that is not one of the valid choices, suggesting the
    nearest one when ``value`` looks like a typo."""
    valid = list(valid)
    return TxlibError(f"unknown {what} {shown(value)}{suggestion(value, valid)}; "
                      f"valid choices: {choices(valid)}")
