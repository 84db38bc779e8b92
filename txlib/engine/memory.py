"""How much memory a search or a recorded run may take: it stops before the machine
runs out.

A search keeps every state it has seen, a few hundred bytes each, and a recorded run
every event and each acting node's volatile state after every handler (a few hundred
bytes to several kB a step, more with more nodes): a learner who asks for
``max_states=10**9``, or for a long run of 64 participants, on a laptop or on Binder
(about 2 GB), would otherwise see the kernel die with nothing to show. So each may grow
by at most three quarters of the memory that was free when it started
(:func:`memory_budget`, worked out only once it has grown a little: the explorer's
first 1,024 states, a run's first 4,096 steps; shorter ones never pay for reading it),
and then stops, saying so, as at ``max_states`` or ``max_steps``. Only a search or a
run that would otherwise exhaust the machine ends differently from one machine to
another.

"Free" is the smaller of the machine's memory and its container's limit (cgroup),
less what this process holds already, and of what the machine could still give (other
processes hold memory too). Where the platform does not say (the browser, Windows),
there is no such budget.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# The share of the memory free at the start that a search may take.
SHARE = 0.75
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max",  # cgroup v2
                  "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # cgroup v1


def resident_bytes() -> int | None:
    """This process's resident memory now, or None where the platform does not say."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def memory_limit() -> int | None:
    """The memory this process's machine or container has, or None where unknown."""
    limits = []
    with contextlib.suppress(OSError, ValueError, AttributeError):  # not on every platform
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for path in _CGROUP_LIMITS:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max": no limit of its own
            limits.append(int(text))
    return min(limits) if limits else None


def available_bytes() -> int | None:
    """The memory the machine could still give (Linux: ``MemAvailable``), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_budget() -> int | None:
    """The resident size (bytes) at which a search starting now stops: what it holds
    now, plus :data:`SHARE` of what is free (within the machine's or container's limit,
    and what the machine could still give). None where the platform does not say."""
    now, limit = resident_bytes(), memory_limit()
    if now is None or limit is None:
        return None
    free = limit - now
    available = available_bytes()
    if available is not None:
        free = min(free, available)
    return now + int(SHARE * max(free, 0))


class Ceiling:
    """A budget as the module docstring says, worked out the first time it is asked
    (when the search or the run has grown a little), then compared with what this
    process holds each time after."""

    __slots__ = ("_at", "_set")

    def __init__(self) -> None:
        self._at: int | None = None
        self._set = False

    def exceeded(self) -> int | None:
        """The resident size now (bytes), if past the budget; else None (also the first
        time, which works the budget out, and where the platform does not say)."""
        if not self._set:
            self._set, self._at = True, memory_budget()
            return None
        if self._at is None:
            return None
        held = resident_bytes()
        return held if held is not None and held > self._at else None
