"""Two jobs timed in turns, so that both see the same load on a shared machine."""

from __future__ import annotations

import time
from collections.abc import Callable


def take_turns(work: Callable[[], int], base: Callable[[], int], seconds: float,
               rounds: int = 6) -> tuple[float, float]:
    """(work's units per second, base's units per second): each job returns how many
    units it did; after one warm-up call each, they alternate in ``2 * rounds`` short
    slices of ``seconds`` in all."""
    work()
    base()
    spent = [0.0, 0.0]
    done = [0, 0]
    for _ in range(rounds):
        for i, job in enumerate((base, work)):
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds / (2 * rounds):
                done[i] += job()
            spent[i] += elapsed
    return done[1] / spent[1], done[0] / spent[0]
