"""What the explorer remembers from state to state (see :mod:`txlib.explorer.worlds`).

The numbers a state's digest is made of: each node's part of the fingerprint and each
message in flight, interned (:meth:`Memo.node_id`, :meth:`Memo.message`); and the
*effect* of every delivery and timeout met so far (:class:`Effect`: what the step did
to its node, the messages it sent, its votes and decisions), from which the digest of a
successor is worked out without taking its step (:meth:`Memo.predict`, a
:class:`Predicted` successor). The explorer's docstring says what this assumes and how
the tests check it.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, NamedTuple, final

from ..engine.node import NodeSlot
from ..engine.records import Message
from ..engine.scheduler import PendingEvent, TimerDue
from ..engine.snapshot import Frozen, copy_slot, freeze, node_part, thaw
from ..engine.world import World
from .actions import (
    Crash,
    CrashDuring,
    Deliver,
    Drop,
    Event,
    Heal,
    MessageKey,
    Partition,
    Recover,
    Spent,
    message_key,
    one_more_crash,
)
from .judging import ExploredWorld, GhostEvent, ghost_value, next_ghost

if TYPE_CHECKING:
    from .schedule import Schedule

ENTRIES_KEPT = 1024  # how many queue entries' message numbers are remembered
CHECK_EVERY = 97  # one remembered step in this many is taken again and compared


class Effect(NamedTuple):
    """What a delivery or a timeout did, as the explorer remembers it: the acting
    node's part number after it, the numbers of the messages it sent (sorted), the
    ghost's events, the decision changes (node, from, to), the node's sends and log
    writes as a watch notes them, the numbers of the messages sent in sending order,
    what it scheduled (in order: the delay and the message's number or the timer) and
    the node's timers after it (each with the position of its entry among those
    scheduled, from 1, or 0 if it was set before the step): what a
    :class:`~txlib.explorer.schedule.Schedule` needs."""

    after: int
    sent: tuple[int, ...]
    ghost: tuple[GhostEvent, ...]
    instability: tuple[tuple[str, str, str], ...]
    did: tuple[str, ...]
    order: tuple[int, ...] = ()  # the numbers of the messages sent, in sending order
    pushes: tuple[tuple[int, int | TimerDue], ...] = ()
    timers: tuple[tuple[TimerDue, int], ...] = ()
    sent_hash: int = 0  # the sum of the hashes of the messages sent (Memo.digest)
    # the node's timers before the step that are gone after it, or set again in it
    dropped: tuple[TimerDue, ...] = ()


class Parent:
    """A world being expanded, frozen (:func:`~txlib.engine.snapshot.freeze`) the
    first time one of its successors needs its snapshot, and only then; and its
    schedule (:mod:`txlib.explorer.schedule`), once a successor needs that."""

    __slots__ = ("_frozen", "schedule", "world")

    def __init__(self, world: ExploredWorld) -> None:
        self.world = world
        self._frozen: Frozen | None = None
        self.schedule: Schedule | None = None

    def frozen(self) -> Frozen:
        if self._frozen is None:
            self._frozen = freeze(self.world)
        return self._frozen


# What predicted successors' digests start from: the parent's node part numbers, its
# digest, the hash of the rest of its state (Memo.rest), its decision changes (node,
# from, to), its ghost's value (judging.ghost_value) and the partition's sides (None:
# whole).
Base = tuple[list[int], int, int, tuple[tuple[str, str, str], ...], tuple[Any, ...], Any]


@final
class Predicted:
    """A successor the explorer worked out without taking its step: its digest, and
    the step to take if the state is new: from its parent (a world being expanded,
    or a :class:`~txlib.explorer.schedule.Schedule`), the event, its queue entry
    (the schedule's, for a schedule) and the effect remembered for it (None for a
    message that is lost)."""

    __slots__ = ("changes", "digest", "effect", "entry", "event", "ghost", "ids", "invalid",
                 "parent", "quiet", "rest")

    def __init__(self, digest: int, parent: Parent | Schedule,
                 event: Event | Crash | CrashDuring | Drop | Partition | Heal | Recover,
                 entry: Any,
                 ids: list[int], changes: tuple[tuple[str, str, str], ...],
                 invalid: str | None, quiet: bool, effect: Effect | None,
                 ghost: tuple[Any, ...], rest: int) -> None:
        self.digest = digest
        self.parent = parent
        self.event = event
        self.entry = entry
        self.effect = effect
        self.ghost = ghost  # the ghost's value (judging.ghost_value), part of the digest
        self.rest = rest  # the hash of the rest of the state (Memo.rest)
        self.ids = ids  # the nodes' part numbers
        self.changes = changes  # the decision changes (node, from, to)
        self.invalid = invalid  # the ghost's validity reason
        # True if judged as its parent is (no invariant broken): the step changed no
        # decision, made no decision change and left the validity reason as it was
        self.quiet = quiet


# What a remembered effect is the effect of: a message's number, a timer's name, a
# fault that runs a handler (a restart: ("restart",)), or a crash in the middle of a
# step (("during", the message's number or the timer's name, after which action)).
EffectStep = int | str | tuple[str] | tuple[str, int | str, int]
# A remembered effect's key: the node's part, the step, whether the node had voted, and
# the partition's sides (None: whole).
EffectKey = tuple[int, EffectStep, bool, Any]

_MASK = (1 << 128) - 1  # digests are sums modulo 2**128
# What a step with a remembered effect leaves of a state's ghost (see Memo.predict)
AfterStep = tuple[bool, "str | None", tuple[Any, ...], tuple[tuple[str, str, str], ...], int,
                  tuple[Any, ...], Effect]


def _hash(data: bytes) -> int:
    """A 128-bit hash (an int) of ``data``."""
    return int.from_bytes(blake2b(data, digest_size=16).digest(), "big")


def _sent(w: World, seq: int) -> list[PendingEvent]:
    """The message entries ``w`` queued after its queue's ``seq``, in sending order."""
    return sorted((e for e in w.queue.heap if e[1] > seq and type(e[2]) is Message),
                  key=lambda e: e[1])


class Memo:
    """The explorer's memory of one search: interned node parts (with each part's up
    flag and decision, :attr:`facts`) and messages, and the effects of the deliveries
    and timeouts met so far."""

    def __init__(self, nodes: tuple[str, ...], deciders: tuple[str, ...]) -> None:
        self.deciders = deciders
        self.position = {name: i for i, name in enumerate(nodes)}
        self.parts: dict[bytes, int] = {}  # node parts of fingerprints, interned
        self.facts: list[tuple[bool, str | None]] = []  # part number -> (up, decision)
        # messages in flight, interned: key -> number; and, for the queue entries met
        # lately, id(entry) -> (entry, key, number) (holding the entry keeps its id its own)
        self.message_ids: dict[bytes, int] = {}
        self.keys: list[MessageKey] = []  # message number -> its key
        self.entries: dict[int, tuple[PendingEvent, MessageKey, int]] = {}
        # what a delivery, a timeout, a restart or a crash in the middle of a step did:
        # (node's number, the step (see EffectStep), whether the node's first vote is in the
        # ghost, the partition's sides or None) -> its effect
        self.effects: dict[EffectKey, Effect] = {}
        self.last_sides: tuple[Any, Any] = (None, None)  # (groups, their sides)
        self.checked: set[EffectKey] = set()  # effects used twice
        self.crashed: dict[int, int] = {}  # a node's part -> its part once it crashes
        # the 128-bit hash of each node part and message (by number) and of each rest
        # of a state (Memo.rest) met so far: a digest is their sum (Memo.digest)
        self.part_hashes: list[int] = []
        self.message_hashes: list[int] = []
        self.rests: dict[tuple[Any, ...], int] = {}
        self.ghosts: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # one of each ghost value
        # a node slot with each part (shared: copied before any change) and a message
        # with each key, by number: what a step is learned from without its world
        self.samples: list[NodeSlot] = []
        self.message_samples: list[Message] = []
        self.hits = 0  # how many times a remembered effect was used
        # the state whose crashes were predicted last (see crash), with the ghost's value
        # and the hash of the rest of the state after one more crash
        self.after_crash: tuple[Any, tuple[Any, ...], int] = (None, (), 0)
        # (id of the ghost's value before a step, its validity reason, id of the step's
        # effect, the budget used after it or None, the decision changes before it, the
        # partition's sides) -> (whether the validity reason changed, the reason, the
        # ghost's value, the decision changes and the hash of the rest after it, and the
        # ghost and the effect themselves, so that their ids stay theirs): see predict
        self.after_step: dict[tuple[Any, ...], AfterStep] = {}

    def due_check(self, key: EffectKey, world: bool = True) -> bool:
        """Whether to take a remembered step again and compare: one use in
        :data:`CHECK_EVERY`, and the first use of each effect from a state that has
        its ``world`` (a sampled check of the assumption the memo rests on, see
        :mod:`txlib.explorer.worlds`)."""
        self.hits += 1
        if self.hits % CHECK_EVERY and (key in self.checked or not world):
            return False
        self.checked.add(key)
        return True

    def trim(self) -> None:
        """Forget the queue entries met lately once there are many of them."""
        if len(self.entries) > ENTRIES_KEPT:
            self.entries.clear()

    def sides(self, w: World) -> Any:
        """``w.network.sides()``, remembered for the last partition met (a partition's
        groups are replaced, never changed, and shared by the worlds under it)."""
        groups = w.network.groups
        if groups is None:
            return None
        last = self.last_sides
        if last[0] is not groups:
            last = self.last_sides = (groups, w.network.sides())
        return last[1]

    def node_id(self, slot: NodeSlot) -> int:
        """The number node ``slot``'s part of the fingerprint is interned as."""
        n = slot.memo
        if n is None:
            part = node_part(slot)
            key = marshal.dumps(part, 0)
            parts = self.parts
            n = parts.get(key)
            if n is None:
                n = parts[key] = len(parts)
                self.facts.append((part[1], part[-1]))  # up, decision
                self.part_hashes.append(_hash(b"n" + key))
                slot.shared = True  # its world copies it before changing it (freeze)
                slot.ctx = None  # type: ignore[assignment]  # a shared slot is never called
                self.samples.append(slot)
            slot.memo = n
        return n  # type: ignore[no-any-return]

    def message(self, entry: PendingEvent) -> tuple[PendingEvent, MessageKey, int]:
        """(entry, key, number) of the message of queue ``entry``: its key and the
        number the key is interned as, remembered for the entries met lately."""
        entries = self.entries
        known = entries.get(id(entry))
        if known is not None and known[0] is entry:
            return known
        if len(entries) > 4 * ENTRIES_KEPT:  # a caller that never trims (successors)
            entries.clear()
        key = message_key(entry[2])  # type: ignore[arg-type]  # a message entry
        ids = self.message_ids
        text = marshal.dumps(tuple(key), 0)  # 1, 1.0 and True are told apart
        n = ids.get(text)
        if n is None:
            n = ids[text] = len(ids)
            self.keys.append(key)
            self.message_hashes.append(_hash(b"m" + text))
            self.message_samples.append(entry[2])  # type: ignore[arg-type]  # a message
        known = entries[id(entry)] = (entry, key, n)
        return known

    def interned(self, ghost: tuple[Any, ...]) -> tuple[Any, ...]:
        """One object for each ghost value (judging.ghost_value) that states keep."""
        return self.ghosts.setdefault(ghost, ghost)

    def rest(self, started: bool, sides: Any, progress: tuple[Any, ...],
             changes: tuple[tuple[str, str, str], ...], ghost: tuple[Any, ...],
             channels: Any = None) -> int:
        """The hash of a state's canonical value but its nodes and messages in flight:
        whether it started, the partition's sides, the fault plan's progress, its
        decision changes and its ghost's value (and, for FIFO channels, the messages in
        flight in channel order). Remembered, but for a fault plan's progress or
        channels, which vary from state to state."""
        key = (started, sides, progress, changes, ghost, channels)
        if progress or channels is not None:
            return _hash(b"r" + marshal.dumps(key, 0))
        known = self.rests.get(key)  # each position holds values of one type only
        if known is None:
            known = self.rests[key] = _hash(b"r" + marshal.dumps(key, 0))
        return known

    def digest(self, ids: list[int], numbers: Any, rest: int) -> int:
        """A state's 128-bit digest (an int): the sum modulo 2**128 of the hashes of
        its nodes' parts (numbers ``ids``), of its messages in flight (``numbers``, a
        message in flight twice counting twice) and of the rest of it (``rest``, see
        :meth:`rest`). A sum, so that a successor's digest is its parent's with what
        changed taken out and put in (:meth:`predict`). The hashes are uniformly
        random and independent, so two different states have equal sums with a
        probability of about 2**-128, as for one hash of the whole."""
        parts, messages = self.part_hashes, self.message_hashes
        total = rest
        for i in ids:
            total += parts[i]
        for n in numbers:
            total += messages[n]
        return total & _MASK

    def learn(self, parent: Frozen, w: ExploredWorld, event: Event, entry: PendingEvent,
              node: str) -> tuple[ExploredWorld, Effect]:
        """Take ``event`` from ``w`` (thawed from ``parent``), noting its effect."""
        c: ExploredWorld = thaw(parent)  # type: ignore[assignment]
        return c, self._effect(c, lambda: c.execute(entry), node, w.queue.seq,
                               len(w.instability))

    def learn_fault(self, parent: Frozen, w: ExploredWorld, apply: Callable[[World], None],
                    node: str) -> tuple[ExploredWorld, Effect]:
        """:meth:`learn` for a fault that runs a handler of ``node`` (a restart, whose
        ``on_recover`` reads the node's durable log): ``apply`` makes it happen."""
        c: ExploredWorld = thaw(parent)  # type: ignore[assignment]
        return c, self._effect(c, lambda: apply(c), node, w.queue.seq, len(w.instability))

    def learn_at(self, template: Frozen, s: Schedule, entry: Any, number: int | str,
                 node: str, crash_after: int = 0) -> Effect:
        """The effect of delivery or timeout ``number`` at ``node`` in schedule ``s``
        (its ``entry``), learned without the state's world: in a stand-in world
        (:meth:`_stand_in`) whose queue holds only that entry, the message one met
        with the same key. What the step does depends on nothing else (the assumption
        every remembered step rests on, checked as the search goes). With
        ``crash_after=k`` the node crashes right after its k-th send or log write."""
        c = self._stand_in(template, s, node)
        c.queue.heap = [(entry[0], entry[1], self.message_samples[number])  # type: ignore[index]
                        if type(entry[2]) is int else entry]
        c.stale = 0  # the one entry in its queue is live
        entry = c.queue.heap[0]
        effect = self._effect(c, lambda: c.execute(entry), node, s.seq, 0, crash_after)
        c.release()  # a stand-in is never used again: freed now, not by the collector
        return effect

    def learn_fault_at(self, template: Frozen, s: Schedule, apply: Callable[[World], None],
                       node: str) -> Effect:
        """:meth:`learn_at` for a fault that runs a handler of ``node`` (a restart,
        whose ``on_recover`` reads the node's durable log): ``apply`` makes it happen
        in a stand-in world with an empty queue."""
        c = self._stand_in(template, s, node)
        c.queue.heap = []
        c.stale = 0
        effect = self._effect(c, lambda: apply(c), node, s.seq, 0)
        c.release()
        return effect

    def _stand_in(self, template: Frozen, s: Schedule, node: str) -> ExploredWorld:
        """A world thawed from ``template`` (the schedule's anchor: a world of this
        search) for learning what ``node`` does in schedule ``s``: the node's slot a
        copy of one met with the same part (its timers given the schedule's tokens),
        and the schedule's time, queue counter and ghost."""
        c: ExploredWorld = thaw(template)  # type: ignore[assignment]
        slot = c.nodes[node] = copy_slot(self.samples[s.ids[self.position[node]]], c)
        if slot.timers:
            due_at = {seq: at for at, seq, _ in s.heap}
            tokens = s.timers
            slot.timers = {name: (tokens[TimerDue(node, name)], due_at[tokens[TimerDue(
                node, name)]]) for name in slot.timers}
        c.time = s.time
        c.queue.seq = s.seq
        c.votes, c.invalid, c.used = s.votes, s.invalid, s.used
        c.instability = []
        return c

    def _effect(self, c: ExploredWorld, take: Callable[[], None], node: str, seq: int,
                changes_from: int, crash_after: int = 0) -> Effect:
        """Take a step in ``c`` (``take``; ``c``'s queue counter was ``seq`` and it had
        ``changes_from`` decision changes), noting what it does at ``node`` (which
        crashes right after its ``crash_after``-th send or log write, if not 0)."""
        before = tuple(c.nodes[node].timers)
        ghost: list[GhostEvent] = []
        c.ghost_events = ghost
        watch = c.watch(node, crash_after)
        take()
        c.unwatch()
        c.ghost_events = None
        message = self.message
        new = sorted((e for e in c.queue.heap if e[1] > seq), key=lambda e: e[1])
        order = tuple(message(e)[2] for e in new if type(e[2]) is Message)
        pushes = tuple((e[0] - c.time, message(e)[2] if type(e[2]) is Message else e[2])
                       for e in new)
        timers = tuple(sorted((TimerDue(node, name), token - seq if token > seq else 0)
                              for name, (token, _) in c.nodes[node].timers.items()))
        kept = {due.name for due, k in timers if not k}
        dropped = tuple(sorted(TimerDue(node, name) for name in before if name not in kept))
        changes = tuple((n, a, b) for n, a, b, _ in c.instability[changes_from:])
        hashes = self.message_hashes
        return Effect(self.node_id(c.nodes[node]), tuple(sorted(order)), tuple(ghost),
                      changes, tuple(watch.did), order, pushes,  # type: ignore[arg-type]
                      timers, sum(hashes[n] for n in order), dropped)

    def sent(self, w: World, seq: int, effect: Effect) -> None:
        """Remember the numbers of the messages a step with ``effect`` just sent in
        ``w`` (queued after ``seq``), without reading them again."""
        new = _sent(w, seq)
        if len(new) == len(effect.order):
            entries, keys = self.entries, self.keys
            for e, n in zip(new, effect.order, strict=True):
                entries[id(e)] = (e, keys[n], n)

    def base(self, w: ExploredWorld, numbers: list[int]) -> Base:
        """What the digests of ``w``'s predicted successors start from (a
        :data:`Base`), given the ``numbers`` of its messages in flight (a world with
        no fault plan)."""
        node_id = self.node_id
        ids = [slot.memo if slot.memo is not None else node_id(slot)
               for slot in w.nodes.values()]
        changes = tuple((n, a, b) for n, a, b, _ in w.instability)
        ghost, sides = self.interned(w.ghost()), self.sides(w)
        rest = self.rest(w.started, sides, (), changes, ghost)
        return ids, self.digest(ids, numbers, rest), rest, changes, ghost, sides

    def predict(self, w: ExploredWorld | Schedule, base: Base, parent: Parent | Schedule,
                event: Event | Recover | CrashDuring, entry: Any, node: str,
                number: EffectStep, effect: Effect, used: Spent | None = None) -> Predicted:
        """The state ``event`` (queue ``entry``, at ``node``, message number or timer
        name ``number``) leads to from ``w`` (a world or a schedule, kept as
        ``parent``), worked out from ``effect``: a :class:`Predicted` successor, its
        digest what the model's fingerprint would give its world. ``used``: the
        budget used after it, for a fault (a restart, a crash in the middle of a step)
        that spends some."""
        ids, total, rest, changes, ghost, sides = base
        ids = ids.copy()
        at = self.position[node]
        before, after = ids[at], effect.after
        facts = self.facts
        same_decision = facts[after][1] == facts[before][1]
        ids[at] = after
        parts = self.part_hashes
        total += parts[after] - parts[before] + effect.sent_hash
        if type(event) is Deliver or (type(event) is CrashDuring
                                      and type(event.event) is Deliver):
            total -= self.message_hashes[number]  # type: ignore[index]  # a message
        invalid = w.invalid
        if effect.ghost or effect.instability or used is not None:
            # the ghost, the decision changes and the rest after the step: a function of
            # those before it (the ghost's value, interned, and the validity reason), the
            # effect, the budget used and the partition, worked out once for each
            key = (id(ghost), invalid, id(effect), used, changes, sides)
            known = self.after_step.get(key)
            if known is None:
                ghost_before = ghost
                if effect.ghost or used is not None:
                    votes = w.votes
                    for ghost_event in effect.ghost:
                        votes, invalid = next_ghost(votes, invalid, self.deciders,
                                                    ghost_event)
                    ghost = self.interned(ghost_value(w.used if used is None else used,
                                                      votes, invalid))
                changes += effect.instability
                known = self.after_step[key] = (
                    invalid is not w.invalid, invalid, ghost, changes,
                    self.rest(True, sides, (), changes, ghost), ghost_before, effect)
            if known[0]:  # a new validity reason (else w's own, the same object)
                invalid = known[1]
            _, _, ghost, changes, changed, _, _ = known
            total += changed - rest
            rest = changed
        quiet = same_decision and not effect.instability and invalid is w.invalid
        return Predicted(total & _MASK, parent, event, entry, ids, changes, invalid, quiet,
                         effect, ghost, rest)

    def crash(self, w: ExploredWorld | Schedule, base: Base, parent: Parent | Schedule,
              crash: Crash, after: int) -> Predicted:
        """The successor where ``crash`` (a :class:`~.actions.Crash`) happens to a node
        whose part is then ``after``: nothing else changes but the budget used."""
        ids, total, rest, changes, _, sides = base
        ids = ids.copy()
        at = self.position[crash.node]
        parts = self.part_hashes
        total += parts[after] - parts[ids[at]] - rest
        ids[at] = after
        known = self.after_crash
        if known[0] is not w:  # the same for every crash of w: worked out once
            ghost = self.interned(ghost_value(one_more_crash(w.used), w.votes, w.invalid))
            known = self.after_crash = (w, ghost, self.rest(w.started, sides, (), changes,
                                                            ghost))
        _, ghost, rest = known
        return Predicted((total + rest) & _MASK, parent, crash, None, ids, changes, w.invalid,
                         True, None, ghost, rest)

    def network_fault(self, w: ExploredWorld, base: Base, parent: Parent,
                      fault: Partition | Heal | Drop, used: Spent, sides: Any,
                      lost: int | None) -> Predicted:
        """The successor where ``fault`` happens to the network: its sides become
        ``sides`` (None: whole; a partition or a heal) or a copy of message ``lost``
        in flight is lost (a drop); its budget used is then ``used``. Nothing else
        changes (a message is cut off when it arrives, not when the network splits)."""
        ids, total, rest, changes, _, _ = base
        ghost = self.interned(ghost_value(used, w.votes, w.invalid))
        new_rest = self.rest(w.started, sides, (), changes, ghost)
        if lost is not None:
            total -= self.message_hashes[lost]
        return Predicted((total - rest + new_rest) & _MASK, parent, fault, None, ids,
                         changes, w.invalid, True, None, ghost, new_rest)

    def lost(self, w: ExploredWorld | Schedule, base: Base, parent: Parent | Schedule,
             event: Event, entry: Any,
             number: int) -> Predicted:
        """The successor where message ``number`` reaches a node that is down or cut
        off: it is lost (see :meth:`World._deliver`), and that is all that changes."""
        ids, total, rest, changes, ghost, _ = base
        return Predicted((total - self.message_hashes[number]) & _MASK, parent, event, entry,
                         ids, changes, w.invalid, True, None, ghost, rest)

