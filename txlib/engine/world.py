"""The world and its one step function.

The world is every node's durable and volatile state, the messages in flight, the timers,
which nodes are up, the partition, the fault plan's progress and the trace. Everything
that happens is one call of :meth:`World.execute` on one pending event. The seeded timed
scheduler (:meth:`World.run`) always picks the earliest pending event, ties broken by the
order they were scheduled; a model checker may pick any pending event instead.
"""

from __future__ import annotations

import heapq
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..errors import ProtocolError, TxlibError, choices
from .config import EngineConfig
from .faultplan import FaultPlanState
from .faults import ONE_SHOT, Fault
from .node import Context, NodeSlot, Role
from .records import LogRecord, Message, TraceEvent

# Kinds of pending event (the third item of a queue entry).
DELIVER, TIMER, FAULT = 0, 1, 2

QueueEntry = tuple[int, int, int, Any, Any, Any]


def volatile_summary(slot: NodeSlot) -> str:
    """A short, deterministic text of a node's volatile state and pending timers."""
    parts = []
    for key in sorted(slot.vars):
        value = slot.vars[key]
        if isinstance(value, (set, frozenset)):
            text = "{" + ", ".join(sorted(map(str, value))) + "}"
        elif isinstance(value, dict):
            text = "{" + ", ".join(f"{k}: {value[k]}" for k in sorted(value, key=str)) + "}"
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    for name in sorted(slot.timers):
        parts.append(f"timer {name} at {slot.timers[name][1]}")
    return "; ".join(parts)


class NodeCrashed(Exception):
    """Raised inside a handler when its own node crashes mid-step (a triggered crash)."""


class World:
    """One simulated world. Build it, then :meth:`run` it (or :meth:`execute` events)."""

    def __init__(
        self,
        nodes: Sequence[tuple[str, Role]],
        config: EngineConfig,
        seed: int,
        faults: Sequence[Fault] = (),
        record: bool = True,
    ) -> None:
        names = [n for n, _ in nodes]
        if len(set(names)) != len(names):
            raise TxlibError(f"node names must be unique, got {names}")
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.time = 0
        self.step = 0
        self.seq = 0
        self.msg_seq = 0
        self.nodes: dict[str, NodeSlot] = {}
        for name, role in nodes:
            slot = NodeSlot(name, role)
            slot.ctx = Context(self, slot)
            self.nodes[name] = slot
        for f in faults:
            for n in f.nodes():
                if n not in self.nodes:
                    raise TxlibError(
                        f"fault '{f.describe()}' names unknown node {n!r}; "
                        f"valid choices: {choices(names)}"
                    )
        self.faults = FaultPlanState(tuple(faults))
        self.queue: list[QueueEntry] = []
        self.partition: dict[str, int] | None = None
        self.fifo_last: dict[tuple[str, str], int] = {}
        self.trace: list[TraceEvent] | None = [] if record else None
        # (trace index, node, summary of its volatile state) after each handler, if recording
        self.volatile: list[tuple[int, str, str]] = []
        self.states: dict[str, str] = {n: s.state for n, s in self.nodes.items()}
        self.down: frozenset[str] = frozenset()
        self.stopped_by = "nothing pending"
        self.instability: list[tuple[str, str, str, int]] = []
        self.messages_sent = 0
        self._acting: NodeSlot | None = None
        self._started = False
        for index in self.faults.at_time:
            self._push(self.faults.faults[index].at_time or 0, FAULT, index, None, None)

    # --- trace -----------------------------------------------------------------------
    def record(self, kind: str, node: str | None, msg: Message | None, detail: str = "") -> None:
        """Append one event to the trace (if recording)."""
        tr = self.trace
        if tr is not None:
            tr.append(TraceEvent(len(tr), self.step, self.time, kind, node, msg, detail,
                                 self.states, self.down))

    # --- scheduling ------------------------------------------------------------------
    def _push(self, at: int, kind: int, a: Any, b: Any, c: Any) -> int:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, a, b, c))
        return self.seq

    def pending(self) -> list[QueueEntry]:
        """Every pending event that would still do something, earliest first."""
        return sorted(e for e in self.queue if not self._stale(e))

    def _stale(self, entry: QueueEntry) -> bool:
        if entry[2] != TIMER:
            return False
        slot = self.nodes[entry[3]]
        timer = slot.timers.get(entry[4])
        return not slot.up or timer is None or timer[0] != entry[5]

    def run(self) -> World:
        """Run the seeded timed scheduler until nothing is pending or a limit is reached."""
        cfg = self.config
        if not self._started:
            self._apply_step_faults()
            self.start()
        queue = self.queue
        pop = heapq.heappop
        while True:
            self._apply_step_faults()
            if self.step >= cfg.max_steps:
                self.stopped_by = f"max_steps={cfg.max_steps}"
                break
            if not queue:
                self.stopped_by = "nothing pending"
                break
            entry = queue[0]
            if entry[0] > cfg.horizon:
                self.stopped_by = f"horizon={cfg.horizon}"
                break
            pop(queue)
            if entry[2] == TIMER and self._stale(entry):
                continue
            self._execute(entry)
        return self

    def start(self) -> None:
        """The first step after any step-0 faults: ``on_start`` of every node that is up
        and has never crashed."""
        self._started = True
        self.step += 1
        self.record("start", None, None, "the transaction begins")
        for slot in self.nodes.values():
            # A node that crashed before the start never began; it only ever recovers.
            if slot.up and slot.incarnation == 0:
                self._call(slot, slot.role.on_start)

    def execute(self, entry: QueueEntry) -> None:
        """The step function: take pending ``entry`` out of the queue and apply it."""
        if entry[2] == TIMER and self._stale(entry):
            raise TxlibError("that timer was cancelled; it is not an event any more")
        self.queue.remove(entry)
        heapq.heapify(self.queue)
        self._execute(entry)

    def _execute(self, entry: QueueEntry) -> None:
        at, _, kind, a, b, _c = entry
        if at > self.time:
            self.time = at
        if kind == FAULT and self.faults.faults[a].kind not in ONE_SHOT:
            self.faults.activate(a)  # turning on a message fault or mark is not a step
            return
        self.step += 1
        if kind == DELIVER:
            self._deliver(a)
        elif kind == TIMER:
            slot = self.nodes[a]
            del slot.timers[b]
            self.record("timeout", a, None, b)
            self._call(slot, slot.role.on_timer, b)
        else:
            self._apply_fault(a)

    def _apply_step_faults(self) -> None:
        by_step = self.faults.by_step
        while by_step:
            first = min(by_step)
            if first > self.step:
                return
            for index in by_step.pop(first):
                if self.faults.faults[index].kind in ONE_SHOT:
                    self.step += 1  # a crash, recovery, partition or heal is a step
                self._apply_fault(index)

    # --- nodes -----------------------------------------------------------------------
    def _call(self, slot: NodeSlot, fn: Any, *args: Any) -> None:
        previous = self._acting
        self._acting = slot
        try:
            fn(slot.ctx, *args)
        except NodeCrashed:
            pass
        finally:
            self._acting = previous
            if self.trace is not None and slot.up:
                self.volatile.append((len(self.trace) - 1, slot.name, volatile_summary(slot)))

    @staticmethod
    def check_up(slot: NodeSlot) -> None:
        """Stop a handler whose node crashed under it (a crash triggered mid-step)."""
        if not slot.up:
            raise NodeCrashed(slot.name)

    def change_state(self, slot: NodeSlot, target: str, detail: str = "") -> None:
        if not slot.up:
            raise NodeCrashed(slot.name)
        slot.state = target
        states = dict(self.states)
        states[slot.name] = target
        self.states = states
        self.record("state", slot.name, None, detail or target)

    def write_log(
        self, slot: NodeSlot, record: str, forced: bool, data: dict[str, Any],
        decides: str | None = None,
    ) -> None:
        if not slot.up:
            raise NodeCrashed(slot.name)
        slot.log.append(LogRecord(record, data, forced, self.time))
        if forced:
            slot.durable = len(slot.log)
        self.record("log", slot.name, None, record + (" (forced)" if forced else " (lazy)"))
        if decides is not None:
            self.decide(slot, decides)
        if self.faults.waiting:
            self._fire_triggers("logs", slot.name, record, None)

    def set_timer(self, slot: NodeSlot, name: str, delay: int) -> None:
        if not slot.up:
            raise NodeCrashed(slot.name)
        self.seq += 1
        due = self.time + delay
        slot.timers[name] = (self.seq, due)
        heapq.heappush(self.queue, (due, self.seq, TIMER, slot.name, name, self.seq))

    def cancel_timer(self, slot: NodeSlot, name: str) -> None:
        if not slot.up:
            raise NodeCrashed(slot.name)
        slot.timers.pop(name, None)

    def step_fails(self, step: str, compensation: bool) -> bool:
        return self.faults.step_fails(step, compensation)

    def has_mark(self, node: str, kind: str) -> bool:
        return self.faults.has_mark(node, kind)

    def note(self, slot: NodeSlot, kind: str, detail: str) -> None:
        if not slot.up:
            raise NodeCrashed(slot.name)
        self.record(kind, slot.name, None, detail)

    def decide(self, slot: NodeSlot, value: str) -> None:
        if not slot.up:
            raise NodeCrashed(slot.name)
        if slot.decision == value:
            return  # e.g. a restart re-reading a decision it had already taken
        if slot.decision is None:
            slot.decision = value
        else:  # a different decision: stability is broken
            self.instability.append((slot.name, slot.decision, value, self.step))
            slot.decision = value
        self.record("decision", slot.name, None, value)

    def set_locks(self, slot: NodeSlot, locks: tuple[str, ...]) -> None:
        if not slot.up:
            raise NodeCrashed(slot.name)
        slot.locks = locks
        if locks:
            self.record("lock", slot.name, None, ", ".join(locks))
        else:
            self.record("unlock", slot.name, None, "")

    # --- network ---------------------------------------------------------------------
    def send(self, slot: NodeSlot, dst: str, type: str, payload: dict[str, Any]) -> None:
        """A node sends a message; the network decides its fate now."""
        if not slot.up:
            raise NodeCrashed(slot.name)
        if dst not in self.nodes:
            raise ProtocolError(f"{slot.name} sent {type} to unknown node {dst!r}")
        src = slot.name
        self.msg_seq += 1
        self.messages_sent += 1
        msg = Message(self.msg_seq, src, dst, type, payload, self.time, slot.hops + 1, 0)
        self.record("send", src, msg)
        faults = self.faults
        cfg = self.config
        rng = self.rng
        part = self.partition
        hit = None
        if part is not None and part[src] != part[dst]:
            self.record("drop", src, msg, "partition: the network cannot reach " + dst)
        elif faults.active_messages and (hit := faults.match("drop", msg)) is not None:
            self.record("drop", src, msg, "lost (fault: " + hit.describe() + ")")
        elif cfg.loss and rng.random() < cfg.loss:
            self.record("drop", src, msg, "lost by the network")
        else:
            self._schedule(msg, faults.active_messages and faults.match("delay", msg))
            if (faults.active_messages and faults.match("duplicate", msg)) or (
                cfg.duplicate and rng.random() < cfg.duplicate
            ):
                copy = msg._replace(copy=1)
                self.record("duplicate", src, copy, "the network will deliver it twice")
                self._schedule(copy, None)
        if faults.waiting:
            self._fire_triggers("sends", src, type, dst)

    def _schedule(self, msg: Message, delayed: Any) -> None:
        cfg = self.config
        rng = self.rng
        lo, hi = cfg.latency_min, cfg.latency_max
        latency = lo if lo == hi else lo + int(rng.random() * (hi - lo + 1))
        if delayed:
            latency += delayed.by
        marks = self.faults.marks
        if marks and (msg.src, "slow") in marks:
            latency += self.faults.mark_value(msg.src, "slow")
        if cfg.delay and rng.random() < cfg.delay:
            latency += cfg.delay_by
        at = self.time + latency
        if not cfg.reorder:
            key = (msg.src, msg.dst)
            at = max(at, self.fifo_last.get(key, 0))
            self.fifo_last[key] = at
        self._push(at, DELIVER, msg, None, None)

    def _deliver(self, msg: Message) -> None:
        slot = self.nodes[msg.dst]
        if not slot.up:
            self.record("drop", msg.dst, msg, msg.dst + " is down")
            return
        part = self.partition
        if part is not None and part[msg.src] != part[msg.dst]:
            self.record("drop", msg.dst, msg, "partition: cut off in flight")
            return
        if msg.hops > slot.hops:
            slot.hops = msg.hops
        self.record("deliver", msg.dst, msg)
        self._call(slot, slot.role.on_message, msg)
        if self.faults.waiting:
            self._fire_triggers("receives", msg.dst, msg.type, msg.src)

    # --- faults ----------------------------------------------------------------------
    def _fire_triggers(self, action: str, node: str, what: str, peer: str | None) -> None:
        crashed: NodeCrashed | None = None
        for index in self.faults.triggered(action, node, what, peer):
            try:
                self._apply_fault(index)
            except NodeCrashed as exc:  # the acting node crashed: finish the others first
                crashed = exc
        if crashed is not None:
            raise crashed

    def _apply_fault(self, index: int) -> None:
        """Carry out fault ``index`` now (a one-shot happens; a message fault turns on)."""
        faults = self.faults
        f = faults.faults[index]
        faults.fired[index] = True
        kind = f.kind
        if kind == "crash":
            self._crash(index, f.node or "")
        elif kind == "recover":
            self._recover(index, f.node or "")
        elif kind == "partition":
            groups: dict[str, int] = {}
            for gid, group in enumerate(f.groups):
                for n in group:
                    groups[n] = gid
            rest = len(f.groups)
            split = {n: groups.get(n, rest) for n in self.nodes}
            if len(set(split.values())) < 2:
                faults.no_effect[index] = "its groups put every node on the same side"
                return
            self.partition = split
            self.record("partition", None, None, f.describe())
        elif kind == "heal":
            if self.partition is None:
                faults.no_effect[index] = "the network was not partitioned"
                return
            self.partition = None
            self.record("heal", None, None, "the network is whole again")
        else:
            faults.activate(index)

    def _crash(self, index: int, name: str) -> None:
        slot = self.nodes[name]
        if not slot.up:
            self.faults.no_effect[index] = f"{name} was already down"
            return
        slot.up = False
        slot.vars = {}
        slot.timers.clear()
        lost = len(slot.log) - slot.durable
        if self.config.lose_unforced and lost:
            del slot.log[slot.durable:]
        self.down = self.down | {name}
        detail = "volatile state and timers lost"
        if lost and self.config.lose_unforced:
            detail += f"; {lost} unforced log record(s) lost"
        self.record("crash", name, None, detail)
        if self.trace is not None:
            self.volatile.append((len(self.trace) - 1, name, ""))
        if self._acting is slot:
            raise NodeCrashed(name)

    def _recover(self, index: int, name: str) -> None:
        slot = self.nodes[name]
        if slot.up:
            self.faults.no_effect[index] = f"{name} was not down"
            return
        slot.up = True
        slot.vars = {}
        slot.incarnation += 1
        self.down = self.down - {name}
        self.record("recover", name, None, f"restarts with {len(slot.log)} log record(s)")
        self._call(slot, slot.role.on_recover)

    # --- copies and canonical states (for the explorer) ------------------------------
    def clone(self) -> World:
        """An independent copy of this world, to try one event without changing this one.

        Much cheaper than ``copy.deepcopy``: roles, the config and the immutable records
        (messages, log records, trace events) are shared; node slots, the queue, the
        fault plan's progress, the random generator and the trace lists are copied.
        Attributes a subclass adds are carried over as they are (share only immutable
        values, or copy them in the subclass's own ``clone``).
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        rng = type(self.rng).__new__(type(self.rng))  # setstate sets every field
        rng.setstate(self.rng.getstate())
        new.rng = rng
        nodes: dict[str, NodeSlot] = {}
        for name, old in self.nodes.items():
            slot = object.__new__(NodeSlot)
            slot.name = name
            slot.role = old.role
            slot.up = old.up
            slot.state = old.state
            slot.log = old.log.copy()
            slot.durable = old.durable
            slot.vars = {k: _copied(v) for k, v in old.vars.items()} if old.vars else {}
            slot.timers = old.timers.copy()
            slot.locks = old.locks
            slot.decision = old.decision
            slot.hops = old.hops
            slot.incarnation = old.incarnation
            slot.ctx = Context(new, slot)
            nodes[name] = slot
        new.nodes = nodes
        new.faults = _copied_plan(self.faults)
        new.queue = self.queue.copy()
        new.fifo_last = self.fifo_last.copy()
        new.trace = None if self.trace is None else self.trace.copy()
        new.volatile = self.volatile.copy()
        new.instability = self.instability.copy()
        new._acting = None
        return new

    def fingerprint(self) -> tuple[Any, ...]:
        """A canonical value of everything that decides what can happen next.

        Two worlds with equal fingerprints behave the same from here on (up to times).
        It holds, per node in build order: up or down, its state (if up), its log
        (record names, data and forced flags) and how much of it is stable, its volatile
        variables (sets sorted), its pending timers by name, its locks and decision; the
        messages in flight as a multiset (sorted, without ids, times, hops or copy
        marks; per channel in order if the network keeps FIFO order); pending timed
        faults; the partition; the fault plan's progress; any decision changes. Left
        out: time, step and sequence counters, message ids, causal depths, restart
        counts and the trace, which only describe how the world got here.
        """
        nodes = []
        for slot in self.nodes.values():
            log = tuple((r.record, _canonical(r.data), r.forced) for r in slot.log)
            if slot.up:
                nodes.append((slot.name, True, slot.state, log, slot.durable,
                              _canonical(slot.vars) if slot.vars else (),
                              tuple(sorted(slot.timers)), slot.locks, slot.decision))
            else:
                nodes.append((slot.name, False, log, slot.durable, slot.locks, slot.decision))
        in_flight = []
        timed_faults = []
        for entry in self.queue:
            kind = entry[2]
            if kind == DELIVER:
                m = entry[3]
                in_flight.append((m.src, m.dst, m.type, _canonical(m.payload), m.id))
            elif kind == FAULT:
                timed_faults.append(entry[3])
        if self.config.reorder:
            messages: tuple[Any, ...] = _sorted(m[:4] for m in in_flight)
        else:  # each channel delivers in sending order: the order is part of the state
            channels: dict[tuple[str, str], list[tuple[int, Any]]] = {}
            for m in in_flight:
                channels.setdefault((m[0], m[1]), []).append((m[4], m[2:4]))
            messages = tuple(sorted((ch, tuple(x for _, x in sorted(ms, key=lambda m: m[0])))
                                    for ch, ms in channels.items()))
        part = self.partition
        groups = None
        if part is not None:
            by_group: dict[int, list[str]] = {}
            for n, g in part.items():
                by_group.setdefault(g, []).append(n)
            groups = tuple(sorted(tuple(sorted(ns)) for ns in by_group.values()))
        plan = self.faults
        progress: tuple[Any, ...] = ()
        if plan.faults:
            progress = (
                tuple(plan.fired), tuple(plan.remaining), tuple(i for i, _ in plan.waiting),
                tuple(plan.active_messages), tuple(sorted(plan.marks)),
                tuple(plan.step_failures), tuple(sorted(timed_faults)),
                # faults due at a step make the step count part of the state
                (self.step, tuple(sorted((k, tuple(v)) for k, v in plan.by_step.items())))
                if plan.by_step else (),
            )
        changes = tuple((n, a, b) for n, a, b, _ in self.instability)
        return (self._started, tuple(nodes), messages, groups, progress, changes)

    # --- results ---------------------------------------------------------------------
    def unfired_faults(self) -> list[tuple[Fault, str]]:
        """Faults that never happened or had no effect, with the reason for each."""
        return self.faults.unfired(self.step, self.time, self.stopped_by)


def _copied(value: Any) -> Any:
    """A copy of a volatile variable deep enough that the copy can change on its own:
    sets, dicts and lists are copied (recursively), anything else is shared."""
    t = type(value)
    if t is set:
        return set(value)
    if t is dict:
        return {k: _copied(v) for k, v in value.items()}
    if t is list:
        return [_copied(v) for v in value]
    return value


_ATOMS = frozenset({str, int, bool, float, type(None)})


def _canonical(value: Any) -> Any:
    """A hashable, order-independent form of a payload, log data or variables value:
    dicts become sorted (key, value) tuples, sets sorted tuples tagged "set", lists
    tuples."""
    t = type(value)
    if t in _ATOMS:
        return value
    atoms = _ATOMS
    if t is dict:
        return tuple((k, v if type(v) in atoms else _canonical(v))
                     for k, v in _sorted(value.items()))
    if t is set or t is frozenset:
        return ("set", _sorted(v if type(v) in atoms else _canonical(v) for v in value))
    if t is list or t is tuple:
        return tuple(v if type(v) in atoms else _canonical(v) for v in value)
    return value


def _sorted(items: Any) -> tuple[Any, ...]:
    """Sorted by value, or by text form if the values cannot be compared (mixed types)."""
    items = list(items)
    try:
        return tuple(sorted(items))
    except TypeError:
        return tuple(sorted(items, key=repr))


def _copied_plan(plan: FaultPlanState) -> FaultPlanState:
    """An independent copy of a fault plan's progress (the faults themselves are shared)."""
    new = object.__new__(FaultPlanState)
    new.__dict__.update(plan.__dict__)
    new.fired = plan.fired.copy()
    new.used = plan.used.copy()
    new.no_effect = plan.no_effect.copy()
    new.remaining = plan.remaining.copy()
    new.by_step = defaultdict(list, {k: v.copy() for k, v in plan.by_step.items()})
    new.waiting = plan.waiting.copy()
    new.active_messages = plan.active_messages.copy()
    new.marks = plan.marks.copy()
    new.step_failures = plan.step_failures.copy()
    new.at_time = plan.at_time.copy()
    return new
