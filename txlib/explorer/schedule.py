"""A state the explorer expands without its world: its :class:`Schedule`.

Once a search has spent every fault it may make but crashes and restarts (and the
network is whole), a state's successors are deliveries and timeouts, crashes between or
in the middle of them, and restarts, and the explorer has usually met each of them before
(:mod:`txlib.explorer.memo`). Such a state needs no world to be expanded, only what
decides which events are enabled and in what order the search meets them:

- the queue, entry for entry in the heap's storage order: ``(at, order, tag)`` with
  the message's number or the :class:`~txlib.engine.scheduler.TimerDue`, the same due
  times and scheduling order the world's queue holds, so that taking an entry out
  (``list.remove`` and ``heapify``, as :meth:`EventQueue.take` does) and pushing new
  ones leaves the very same storage order the world's heap would have;
- each live timer's token (a timer set again or cancelled leaves a stale entry, as in
  the world), the time and the queue's counter;
- the nodes' part numbers, the ghost (votes, validity, budget used) and the decision
  changes, from which digests and judgements are worked out.

A :class:`Predicted` successor of such a state becomes a schedule when the search
expands it (:func:`advance`: the remembered effect applied to its parent's schedule).
A step not met before is learned without its world
(:meth:`~txlib.explorer.memo.Memo.learn_at`). Its world is rebuilt only when asked
for (to show the state, or by the tests' check): from the snapshot of its nearest
ancestor that had a world (``anchor``), taking the same steps again (``steps``: the
entries by their order, crashes, restarts, and entries taken with a crash in the
middle, as a chain shared with the schedule's ancestors, see :func:`steps_of`).
"""

from __future__ import annotations

from heapq import heapify, heappush
from typing import Any

from ..engine.node import NodeSlot
from ..engine.records import Message
from ..engine.scheduler import TimerDue
from ..engine.snapshot import Frozen
from .actions import Crash, CrashDuring, Recover, Spent, one_more_crash, spent_on
from .judging import ExploredWorld, next_ghost
from .memo import Memo, Predicted

Tag = int | TimerDue  # a message's number, or a timer
Entry = tuple[int, int, Tag]  # (due time, scheduling order, tag), as the world's queue
# One step taken since a schedule's anchor: an entry's order, a crash, a restart, or an
# entry's order with the crash in the middle of it.
ScheduledStep = int | Crash | Recover | tuple[int, CrashDuring]
# The steps taken since a schedule's anchor, last first: (the steps before it, the last
# step), or None for none. A chain, so that a schedule shares the steps of its parent's
# instead of copying them.
Steps = tuple[Any, ScheduledStep] | None


def steps_of(steps: Steps) -> list[ScheduledStep]:
    """The steps of a chain, first first."""
    out: list[ScheduledStep] = []
    while steps is not None:
        steps, step = steps
        out.append(step)
    out.reverse()
    return out


class Schedule:
    """A state without its world (see the module docstring)."""

    __slots__ = ("anchor", "changes", "digest", "ghost", "heap", "ids", "invalid", "rest",
                 "seq", "steps", "time", "timers", "used", "votes")
    started = True  # as its world (a world that has not started is never a schedule)

    def __init__(self, heap: list[Entry], timers: dict[TimerDue, int], time: int, seq: int,
                 ids: list[int], votes: dict[str, str], invalid: str | None, used: Spent,
                 changes: tuple[tuple[str, str, str], ...], ghost: tuple[Any, ...],
                 digest: int, rest: int, anchor: Frozen, steps: Steps) -> None:
        self.heap = heap
        self.timers = timers  # each live timer's token (timers of nodes that are up)
        self.time = time
        self.seq = seq  # the queue's counter: the order of the last entry scheduled
        self.ids = ids  # the nodes' part numbers
        self.votes = votes
        self.invalid = invalid
        self.used = used
        self.changes = changes  # the decision changes (node, from, to)
        self.ghost = ghost  # votes, validity and budget used, as judging.ghost_value
        self.digest = digest
        self.rest = rest  # the hash of the rest of the state (Memo.rest)
        self.anchor = anchor  # the snapshot of the nearest ancestor that had a world
        # the steps taken since, in turn (see ScheduledStep): an entry's order, a crash, a
        # restart, or an entry's order with a crash in the middle of it
        self.steps = steps

    def same(self, other: Schedule) -> str | None:
        """What differs between two schedules of one state (None: nothing); tests."""
        for name in ("heap", "timers", "time", "seq", "ids", "votes", "invalid", "used",
                     "changes", "ghost", "rest"):
            if getattr(self, name) != getattr(other, name):
                return name
        return None


def live_timers(nodes: dict[str, NodeSlot]) -> dict[TimerDue, int]:
    """Each live timer of the nodes that are up, with its token."""
    return {TimerDue(name, timer): token for name, slot in nodes.items() if slot.up
            for timer, (token, _) in slot.timers.items()}


def schedule_of(w: ExploredWorld, memo: Memo, anchor: Frozen, digest: int) -> Schedule:
    """The schedule of world ``w`` (whose snapshot is ``anchor``, its digest
    ``digest``)."""
    message = memo.message
    heap: list[Entry] = [(e[0], e[1], message(e)[2]) if type(e[2]) is Message
                         else e for e in w.queue.heap]  # type: ignore[misc]
    node_id = memo.node_id
    changes = tuple((n, a, b) for n, a, b, _ in w.instability)
    ghost = memo.interned(w.ghost())
    return Schedule(heap, live_timers(w.nodes), w.time, w.queue.seq,
                    [slot.memo if slot.memo is not None else node_id(slot)
                     for slot in w.nodes.values()],
                    w.votes, w.invalid, w.used, changes, ghost, digest,
                    memo.rest(w.started, None, (), changes, ghost), anchor, None)


def advance(p: Predicted, deciders: tuple[str, ...]) -> Schedule:
    """The schedule of predicted successor ``p`` of a schedule: its entry taken out,
    and its remembered effect (if any: none for a message that is lost) applied; for a
    crash in the middle of it, one more crash spent; for a restart (no entry), its
    effect applied and one more restart spent."""
    s: Schedule = p.parent  # type: ignore[assignment]  # a schedule's successor
    if type(p.event) is Crash:  # its node's timers are lost; the queue keeps their entries
        node = p.event.node
        return Schedule(s.heap, {due: token for due, token in s.timers.items()
                                 if due.node != node}, s.time, s.seq, p.ids, s.votes,
                        s.invalid, one_more_crash(s.used), s.changes, p.ghost, p.digest,
                        p.rest, s.anchor, (s.steps, p.event))
    heap = s.heap.copy()
    entry: Entry | None = p.entry
    if entry is None:  # a restart: it takes no entry, and time does not move
        time = s.time
    else:
        heap.remove(entry)  # as EventQueue.take does, so the storage order is the world's
        heapify(heap)
        time = entry[0] if entry[0] > s.time else s.time
    timers, seq, votes = s.timers, s.seq, s.votes
    effect = p.effect
    if effect is not None:
        new = effect.timers
        if effect.dropped or new:  # the node's timers: those it no longer has (the one
            timers = timers.copy()  # that fires, too) out, those it set in
            for due in effect.dropped:
                del timers[due]
            for due, k in new:
                if k:
                    timers[due] = seq + k
        for delay, pushed in effect.pushes:
            seq += 1
            heappush(heap, (time + delay, seq, pushed))
        invalid = s.invalid
        for ghost_event in effect.ghost:
            votes, invalid = next_ghost(votes, invalid, deciders, ghost_event)
    used: Spent = s.used
    step: ScheduledStep
    if entry is None:
        assert isinstance(p.event, Recover)
        used, step = spent_on(used, p.event.spends), p.event
    elif type(p.event) is CrashDuring:
        used, step = one_more_crash(used), (entry[1], p.event)
    else:
        step = entry[1]
    return Schedule(heap, timers, time, seq, p.ids, votes, p.invalid, used, p.changes,
                    p.ghost, p.digest, p.rest, s.anchor, (s.steps, step))


def entry_of(w: ExploredWorld, order: int) -> Any:
    """The entry of ``w``'s queue scheduled ``order``-th."""
    for entry in w.queue.heap:
        if entry[1] == order:
            return entry
    raise AssertionError(f"no queue entry scheduled {order}th")
