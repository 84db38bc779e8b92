"""Pausing Python's cycle collector while the engine makes many objects it frees itself.

A recorded run keeps every event, and a search keeps a table of states: each a few
objects that the cycle collector would go through again and again as they grow (over
half the time of a long recorded run). Neither makes reference cycles that need the
collector (their objects are freed when their last reference goes, and worlds break
their own cycles when released), so the collector waits until they end.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector off for the block, then on again if it was on before."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
