"""The network between the nodes: where a partition cuts it, and the fate of each message.

When a node sends a message, :meth:`Network.transmit` decides at once what becomes of
it: lost (a partition, a drop fault or the configured loss probability), or queued for
delivery at a due time (the latency bounds, a delay fault, a slow sender, the
configured delay probability, and FIFO order per channel unless ``reorder``), and
perhaps delivered twice (a duplicate fault or the configured probability). The world
records what was decided.
"""

from __future__ import annotations

import _random
import random
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from .faultplan import FaultPlanState
from .records import Message
from .scheduler import EventQueue

DUPLICATE = "the network will deliver it twice"


class Draws(Protocol):
    """Where the network's random numbers come from: a :class:`random.Random`, or
    anything that draws, saves and restores the same way."""

    def random(self) -> float: ...

    def getstate(self) -> Any: ...

    def setstate(self, state: Any) -> None: ...


_c_seed = _random.Random.seed  # the C generator's own seed, which random.Random extends


def seeded(seed: int) -> random.Random:
    """``random.Random(seed)``, made faster for a whole-number seed: that seeds through
    ``random.Random.seed``, which for an ``int`` only calls the C generator's own
    ``seed`` and clears ``gauss_next``; here those two are done directly: the same
    generator state, without the Python-level calls around it (a world makes one per
    run). Any other seed goes through ``random.Random`` itself."""
    if type(seed) is not int:
        return random.Random(seed)
    rng = random.Random.__new__(random.Random)  # allocated, not seeded yet
    _c_seed(rng, seed)
    rng.__dict__["gauss_next"] = None  # as random.Random.seed does (typeshed omits it)
    return rng


class Network:
    """The links between nodes. ``groups`` maps each node to its side of a partition
    (None: the network is whole); ``fifo_last`` is the last due time per channel, to
    keep FIFO order when the configuration does not ``reorder``."""

    __slots__ = ("config", "fifo_last", "groups", "rng")

    def __init__(self, config: Any, rng: Draws) -> None:
        self.config = config
        self.rng = rng
        self.groups: dict[str, int] | None = None
        self.fifo_last: dict[tuple[str, str], int] = {}

    # --- partitions ------------------------------------------------------------------
    def cut(self, src: str, dst: str) -> bool:
        """True if a partition separates ``src`` from ``dst``."""
        groups = self.groups
        return groups is not None and groups[src] != groups[dst]

    def split(self, groups: Sequence[Sequence[str]], nodes: Iterable[str]) -> str | None:
        """Partition the network into ``groups`` (nodes named in none form one more
        group); returns why nothing changed, or None."""
        side: dict[str, int] = {}
        for gid, group in enumerate(groups):
            for n in group:
                side[n] = gid
        rest = len(groups)
        split = {n: side.get(n, rest) for n in nodes}
        if len(set(split.values())) < 2:
            return "its groups put every node on the same side"
        self.groups = split
        return None

    def heal(self) -> str | None:
        """End the partition; returns why nothing changed, or None."""
        if self.groups is None:
            return "the network was not partitioned"
        self.groups = None
        return None

    def sides(self) -> tuple[tuple[str, ...], ...] | None:
        """The partition's groups, each sorted, in sorted order (None: whole)."""
        if self.groups is None:
            return None
        by_group: dict[int, list[str]] = {}
        for n, g in self.groups.items():
            by_group.setdefault(g, []).append(n)
        return tuple(sorted(tuple(sorted(ns)) for ns in by_group.values()))

    # --- messages --------------------------------------------------------------------
    def transmit(self, msg: Message, faults: FaultPlanState, now: int,
                 queue: EventQueue) -> str | Message | None:
        """Decide the fate of ``msg``, sent at time ``now``: returns why it is lost (a
        string), or queues its delivery and returns the duplicate the network also
        delivers (None if there is none).

        Message faults are matched (and used up) in the order drop, delay, duplicate,
        and random numbers drawn in the order loss, latency, delay, duplicate, then the
        duplicate's latency and delay: a seed always gives the same run.
        """
        groups = self.groups
        if groups is not None and groups[msg.src] != groups[msg.dst]:
            return "partition: the network cannot reach " + msg.dst
        active = faults.active_messages  # the plan's own list: matching may empty it
        if active and (hit := faults.match("drop", msg)) is not None:
            return "lost (fault: " + hit.describe() + ")"
        cfg = self.config
        rng = self.rng
        if cfg.loss and rng.random() < cfg.loss:
            return "lost by the network"
        delayed = faults.match("delay", msg) if active else None
        extra = delayed.by or 0 if delayed is not None else 0
        marks = faults.marks
        lo, hi = cfg.latency_min, cfg.latency_max
        copy = None
        while True:  # once, or twice for a duplicate
            latency = lo if lo == hi else lo + int(rng.random() * (hi - lo + 1))
            latency += extra
            if marks and (msg.src, "slow") in marks:
                latency += faults.mark_value(msg.src, "slow")
            if cfg.delay and rng.random() < cfg.delay:
                latency += cfg.delay_by
            at = now + latency
            if not cfg.reorder:
                key = (msg.src, msg.dst)
                at = max(at, self.fifo_last.get(key, 0))
                self.fifo_last[key] = at
            if copy is not None:
                queue.add_message(at, copy)
                return copy
            queue.add_message(at, msg)
            if not ((active and faults.match("duplicate", msg))
                    or (cfg.duplicate and rng.random() < cfg.duplicate)):
                return None
            copy = msg._replace(copy=1)
            extra = 0

    def copy(self) -> Network:
        """An independent copy: the random generator and FIFO times are copied (the
        partition map is replaced, never changed, so it is shared, and so is a generator
        whose ``getstate()`` is None: it has no state)."""
        new = Network.__new__(Network)
        new.config = self.config
        rng = self.rng
        state = rng.getstate()
        if state is not None:  # a generator without state (the explorer's) is shared
            rng = type(rng).__new__(type(rng))  # setstate sets every field
            rng.setstate(state)
        new.rng = rng
        new.groups = self.groups
        new.fifo_last = self.fifo_last.copy()
        return new
