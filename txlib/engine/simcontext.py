"""What a node's handler does to the simulated world: the :class:`WorldContext`.

A handler acts only through its :class:`~.node.Context`. Over a real process each action
goes to the process's :class:`~.node.Host`; in the simulator the context acts on the
:class:`~.world.World` directly: it is the engine's hot path (a 2PC run takes some
forty actions), so each action is one call, with the network's common case (no
partition, no message fault, nothing lost, delayed or duplicated) and the scheduling of
messages and timers written out in place.

Every action first refuses a node that is down (it may have crashed in the middle of its
handler, through a triggered fault) by raising :class:`NodeCrashed`, which the world
catches where it called the handler.
"""

from __future__ import annotations

from heapq import heappush
from typing import TYPE_CHECKING, Any

from ..errors import ProtocolError
from .network import DUPLICATE
from .node import Context, NodeSlot, undeclared_record
from .records import LogRecord, Message, TraceEvent
from .scheduler import TIMERS, timer_due

if TYPE_CHECKING:
    from .world import World

_new = tuple.__new__  # a NamedTuple without its (slower) constructor, on the hot path


class NodeCrashed(Exception):
    """Raised inside a handler when its own node crashes mid-step (a triggered crash)."""


class WorldContext(Context):
    """A node's :class:`~.node.Context` in a simulated :class:`~.world.World`: the same
    surface, each action applied to the world at once."""

    __slots__ = ("_world",)  # in place of the Host a Context has (it is not set)

    def __init__(self, world: World, slot: NodeSlot) -> None:
        self._world = world
        self._slot = slot
        self.name = slot.name
        self.memo = {}

    # --- reading -------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self._world.time

    @property
    def config(self) -> Any:
        return self._world.config

    def step_fails(self, step: str, compensation: bool = False) -> bool:
        return self._world.faults.step_fails(step, compensation)

    def has_mark(self, kind: str) -> bool:
        faults = self._world.faults
        return bool(faults.marks) and faults.has_mark(self.name, kind)

    # --- acting --------------------------------------------------------------------
    def send(self, dst: str, type: str, **payload: Any) -> None:
        """Send one message; the network decides its fate now (see
        :meth:`~.network.Network.transmit`)."""
        slot = self._slot
        if not slot.up:
            raise NodeCrashed(slot.name)
        w = self._world
        if dst not in w.nodes:
            raise ProtocolError(f"{slot.name} sent {type} to unknown node {dst!r}")
        src = slot.name
        w.msg_seq = seq = w.msg_seq + 1
        now = w.time
        msg = _new(Message, (seq, src, dst, type, payload, now, slot.hops + 1, 0))
        lean = w.lean  # then nothing observes the send, cuts the link or reacts to it
        if not lean and w.observed:
            tr = w.trace
            if tr is not None and w.plain_record:  # World.record, written out
                tr.append(_new(TraceEvent, (len(tr), w.step, w.time, "send", src, msg,
                                            "", w.states, w.down)))
            else:
                w.record("send", src, msg)
        faults = w.faults
        network = w.network
        cfg = w.config
        if cfg.plain_network and (lean or (network.groups is None
                                           and not faults.active_messages
                                           and not faults.marks)):
            # The network's common case, as transmit() has it: one latency draw.
            lo, span = cfg.latencies
            at = now + (lo if span == 1 else lo + int(network.rng.random() * span))
            if not cfg.reorder:
                key = (src, dst)
                last = network.fifo_last.get(key, 0)
                if last > at:
                    at = last
                network.fifo_last[key] = at
            queue = w.queue
            queue.seq = order = queue.seq + 1
            heappush(queue.heap, (at, order, msg))
        else:
            fate = network.transmit(msg, faults, now, w.queue)
            if fate is not None:
                if isinstance(fate, str):
                    w.record("drop", src, msg, fate)
                else:
                    w.record("duplicate", src, fate, DUPLICATE)
        if lean:
            return
        if faults.waiting:
            w._fire_triggers("sends", src, type, dst)
        if w._watches is not None:
            w._watched(src, f"{src} sends {type} to {dst}")

    def log(self, record: str, *, forced: bool, decides: str | None = None, **data: Any) -> None:
        slot = self._slot
        if not slot.up:
            raise NodeCrashed(slot.name)
        declared = slot.role.record_types  # as Context.log checks it
        if declared is not None and record not in declared:
            raise undeclared_record(slot, record)
        w = self._world
        log = slot.log
        log.append(_new(LogRecord, (record, data, forced, w.time)))
        if forced:
            slot.durable = len(log)
        if w.lean:  # nothing observes the write or reacts to it
            if decides is not None:
                if slot.decision is None:
                    slot.decision = decides  # decide(), for a first decision
                else:
                    self.decide(decides)
            return
        if w.observed:
            detail = record + (" (forced)" if forced else " (lazy)")
            tr = w.trace
            if tr is not None and w.plain_record:  # World.record, written out
                tr.append(_new(TraceEvent, (len(tr), w.step, w.time, "log", slot.name, None,
                                            detail, w.states, w.down)))
            else:
                w.record("log", slot.name, None, detail)
        if decides is not None:
            self.decide(decides)
        if w.faults.waiting:
            w._fire_triggers("logs", slot.name, record, None)
        if w._watches is not None:
            w._watched(slot.name, f"{slot.name} logs {record}")

    def set_state(self, target: str) -> None:
        slot = self._slot
        source = slot.state
        if target == source:
            return
        machine = slot.role.machine
        if (source, target) not in machine._edges:
            machine.check(slot.name, source, target)  # raises: not a declared transition
        self._change_state(slot, target, target)

    def restore_state(self, target: str) -> None:
        slot = self._slot
        slot.role.machine.check_state(slot.name, target)
        if target != slot.state:
            self._change_state(slot, target, "restored from log")

    def _change_state(self, slot: NodeSlot, target: str, detail: str) -> None:
        """Move ``slot`` to state ``target``, described as ``detail`` in the trace."""
        if not slot.up:
            raise NodeCrashed(slot.name)
        w = self._world
        slot.state = target
        if w.lean:  # the world's own dict, which nobody sees until the run ends
            w.states[slot.name] = target
            return
        states = w.states.copy()  # trace events hold the old one: replaced, never changed
        states[slot.name] = target
        w.states = states
        if w.observed:
            tr = w.trace
            if tr is not None and w.plain_record:  # World.record, written out
                tr.append(_new(TraceEvent, (len(tr), w.step, w.time, "state", slot.name, None,
                                            detail, w.states, w.down)))
            else:
                w.record("state", slot.name, None, detail)

    def set_timer(self, name: str, delay: int) -> None:
        if delay < 0:
            raise ProtocolError(f"{self.name}: timer {name!r} with negative delay {delay}")
        slot = self._slot
        if not slot.up:
            raise NodeCrashed(slot.name)
        w = self._world
        due = w.time + delay
        node = slot.name
        try:
            timer = TIMERS[node][name]  # timer_due(node, name), when it exists already
        except KeyError:
            timer = timer_due(node, name)
        queue = w.queue
        queue.seq = token = queue.seq + 1
        heappush(queue.heap, (due, token, timer))
        timers = slot.timers
        if name in timers:
            w.stale += 1  # set again: the entry of the timer it replaces never fires
        timers[name] = (token, due)

    def cancel_timer(self, name: str) -> None:
        slot = self._slot
        if not slot.up:
            raise NodeCrashed(slot.name)
        if slot.timers.pop(name, None) is not None:
            self._world.stale += 1  # its queue entry never fires

    def vote(self, value: str) -> None:
        slot = self._slot
        if not slot.up:
            raise NodeCrashed(slot.name)
        if self._world.observed:  # else a note does nothing
            self.note("vote", value)

    def note(self, kind: str, detail: str) -> None:
        slot = self._slot
        if not slot.up:
            raise NodeCrashed(slot.name)
        w = self._world
        if w.observed:
            tr = w.trace
            if tr is not None and w.plain_record:  # World.record, written out
                tr.append(_new(TraceEvent, (len(tr), w.step, w.time, kind, slot.name, None,
                                            detail, w.states, w.down)))
            else:
                w.record(kind, slot.name, None, detail)

    def decide(self, value: str) -> None:
        slot = self._slot
        if not slot.up:
            raise NodeCrashed(slot.name)
        if slot.decision == value:
            return  # e.g. a restart re-reading a decision it had already taken
        w = self._world
        if slot.decision is not None:  # a different decision: stability is broken
            w.instability.append((slot.name, slot.decision, value, w.step))
        slot.decision = value
        if w.observed:
            tr = w.trace
            if tr is not None and w.plain_record:  # World.record, written out
                tr.append(_new(TraceEvent, (len(tr), w.step, w.time, "decision", slot.name,
                                            None, value, w.states, w.down)))
            else:
                w.record("decision", slot.name, None, value)

    def lock(self, *resources: str) -> None:
        slot = self._slot
        held = slot.locks
        locks: tuple[str, ...]
        if not held and len(resources) == 1:
            locks = resources  # what sorting the one resource gives
        else:
            locks = tuple(sorted(set(held) | set(resources)))
        if not slot.up:
            raise NodeCrashed(slot.name)
        slot.locks = locks
        w = self._world
        if w.observed:
            kind, detail = ("lock", ", ".join(locks)) if locks else ("unlock", "")
            tr = w.trace
            if tr is not None and w.plain_record:  # World.record, written out
                tr.append(_new(TraceEvent, (len(tr), w.step, w.time, kind, slot.name, None,
                                            detail, w.states, w.down)))
            else:
                w.record(kind, slot.name, None, detail)

    def unlock(self) -> None:
        slot = self._slot
        if slot.locks:
            if not slot.up:
                raise NodeCrashed(slot.name)
            slot.locks = ()
            w = self._world
            if w.observed:
                tr = w.trace
                if tr is not None and w.plain_record:  # World.record, written out
                    tr.append(_new(TraceEvent, (len(tr), w.step, w.time, "unlock", slot.name,
                                                None, "", w.states, w.down)))
                else:
                    w.record("unlock", slot.name, None, "")
