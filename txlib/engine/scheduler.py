"""Pending events and the order they happen in.

A pending event is a :data:`PendingEvent` ``(at, seq, what)``: its due time, the order
it was scheduled in, and what is due, one of three typed values: a :class:`Message` to
deliver, a :class:`TimerDue` to fire or a :class:`FaultDue` (a fault of the plan timed
``at_time``). Entries compare as tuples, so the earliest comes first and ties go to
whichever was scheduled first (``seq`` is unique, so ``what`` is never compared).
:class:`EventQueue` keeps them in a binary heap.

Why a plain triple around a typed value, rather than one NamedTuple per kind of entry:
the engine queues one entry per message on its hot path, and a message entry is then a
single small tuple around the message itself; a NamedTuple entry costs a second
allocation, which made whole runs about 5% slower. For the same reason a
:class:`TimerDue` is made once per node and timer name, and shared from then on by
every queue.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import NamedTuple, cast

from .records import Message


class TimerDue(NamedTuple):
    """Timer ``name`` of node ``node`` is due. The entry's ``seq`` is the timer's token:
    re-setting or cancelling the timer makes the entry stale."""

    node: str
    name: str


class FaultDue(NamedTuple):
    """Fault number ``fault`` of the fault plan (an ``at_time`` fault) is due."""

    fault: int


Due = Message | TimerDue | FaultDue
PendingEvent = tuple[int, int, Due]  # (due time, scheduling order, what is due)
MessageEntry = tuple[int, int, Message]  # a message in flight

# Every TimerDue made so far, by node and name. They are immutable, so one of each serves
# every queue; there are as many as distinct node and timer names a process ever uses.
TIMERS: dict[str, dict[str, TimerDue]] = {}


def timer_due(node: str, name: str) -> TimerDue:
    """The one :class:`TimerDue` of timer ``name`` of ``node`` (see :data:`TIMERS`)."""
    return TIMERS.setdefault(node, {}).setdefault(name, TimerDue(node, name))


class EventQueue:
    """The pending events as a heap, earliest first (ties: first scheduled first).

    Iterating gives the entries in the heap's storage order, which is deterministic but
    not time order; :meth:`in_order` sorts them.
    """

    __slots__ = ("heap", "seq")

    def __init__(self) -> None:
        self.heap: list[PendingEvent] = []
        self.seq = 0  # how many entries were ever scheduled

    def add_message(self, at: int, message: Message) -> None:
        """Schedule the delivery of ``message`` at ``at``."""
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, message))

    def add_fault(self, at: int, fault: int) -> None:
        """Schedule fault number ``fault`` of the plan at ``at``."""
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, FaultDue(fault)))

    def take(self, entry: PendingEvent) -> None:
        """Take ``entry`` out, wherever it is (a ValueError if it is not pending)."""
        heap = self.heap
        heap.remove(entry)
        heapq.heapify(heap)

    def copy(self) -> EventQueue:
        """An independent queue with the same entries (the entries are shared)."""
        new = EventQueue.__new__(EventQueue)
        new.heap = self.heap.copy()
        new.seq = self.seq
        return new

    def in_order(self) -> list[PendingEvent]:
        """Every entry, earliest first."""
        return sorted(self.heap)

    def messages(self) -> Iterator[MessageEntry]:
        """The entries of messages in flight, in storage order."""
        for entry in self.heap:
            if type(entry[2]) is Message:
                yield cast(MessageEntry, entry)

    def __iter__(self) -> Iterator[PendingEvent]:
        return iter(self.heap)

    def __len__(self) -> int:
        return len(self.heap)

    def __bool__(self) -> bool:
        return bool(self.heap)
