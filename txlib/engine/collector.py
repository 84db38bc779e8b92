"""Pausing Python's cycle collector while the engine makes many objects it frees itself.

A recorded run keeps every event, and a search keeps a table of states: each a few
objects that the cycle collector would go through again and again as they grow (over
half the time of a long recorded run). Neither makes reference cycles that need the
collector (their objects are freed when their last reference goes, and worlds break
their own cycles when released), so the collector waits until they end.
"""

from __future__ import annotations

import gc
from types import TracebackType


class collector_paused:  # lower case: used as a function, ``with collector_paused():``
    """The cycle collector off for the block, then on again if it was on before. (A
    class rather than a generator: a recorded run enters it once, and a generator's
    context manager cost about 1% of a short run.)"""

    __slots__ = ("_was_on",)

    def __enter__(self) -> None:
        self._was_on = gc.isenabled()
        if self._was_on:
            gc.disable()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._was_on:
            gc.enable()
