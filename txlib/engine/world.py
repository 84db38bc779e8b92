"""The world and its step functions.

The world is every node's durable and volatile state, the pending events
(:mod:`.scheduler`), the network (:mod:`.network`), which nodes are up, the fault plan's
progress and the trace. Everything that happens is one step: an event taken from the
queue (:meth:`World.execute`), the first step (:meth:`World.start`), a fault
(:meth:`World.apply_fault`) or a message lost in flight (:meth:`World.lose`). The
seeded timed scheduler (:meth:`World.run`) always executes the earliest pending event,
ties broken by the order they were scheduled; a model checker may choose any pending
event, or a fault, instead. Copies and fingerprints for the model checker are in
:mod:`.snapshot`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import TxlibError, bad_choice, choices
from . import snapshot
from .collector import collector_paused
from .config import EngineConfig
from .faultplan import NO_FAULTS, FaultPlanState
from .faults import ONE_SHOT, Fault
from .memory import Ceiling
from .network import Draws, Network, seeded
from .node import NodeSlot, Role
from .records import Message, TraceEvent
from .scheduler import EventQueue, FaultDue, MessageEntry, PendingEvent, TimerDue
from .simcontext import NodeCrashed, WorldContext
from .volatile import Volatile, volatile_copy

_new = tuple.__new__  # a NamedTuple without its (slower) constructor, on the hot path
MEMORY_EVERY = 4096  # a recorded run reads its memory once in this many steps (.memory)


@dataclass
class StepWatch:
    """What a watched node did (see :meth:`World.watch`): each send and log write, as
    the text of the trigger that matches it (``"p1 sends YES to coordinator"``,
    ``"p1 logs PREPARED"``). With ``crash_after=k`` the node crashes right after its
    k-th such action."""

    node: str
    crash_after: int = 0
    did: list[str] = field(default_factory=list)


W = TypeVar("W", bound="World")  # clone() returns the class it is called on


class World:
    """One simulated world. Build it, then :meth:`run` it (or take its steps yourself).

    A subclass may override :meth:`record` to observe every event, recorded or not
    (the explorer keeps what its invariants need that way).
    """

    # The context each node acts through (also for the node slots a copy makes).
    context_class = WorldContext
    # Whether record() is World's own, which the hot paths then write out in place (a
    # class attribute, set for each subclass: a snapshot of a world need not keep it).
    plain_record = True
    # Whether run() takes the steps of a world leanly when it can (see ``lean``); a
    # subclass, or a test, may switch that off.
    lean_runs = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.plain_record = cls.record is World.record

    def __init__(
        self,
        nodes: Sequence[tuple[str, Role]],
        config: EngineConfig,
        seed: int,
        faults: Sequence[Fault] = (),
        record: bool = True,
        *,
        volatile: bool = True,
    ) -> None:
        self.config = config
        self.seed = seed
        self.time = 0
        self.step = 0
        self.msg_seq = 0
        self.nodes: dict[str, NodeSlot] = {}
        slots = self.nodes
        states: dict[str, str] = {}
        context = self.context_class
        for name, role in nodes:
            slot = NodeSlot(name, role)
            slot.ctx = context(self, slot)
            slots[name] = slot
            states[name] = slot.state
        if len(slots) != len(nodes):
            raise TxlibError(f"node names must be unique, got {[n for n, _ in nodes]}")
        for f in faults:
            self._check_nodes(f)
        self.faults = FaultPlanState(tuple(faults)) if faults else NO_FAULTS
        self.queue = EventQueue()
        # How many of the queue's entries are timers that will never fire: cancelled,
        # set again, or their node crashed (see is_stale). The queue keeps them until
        # their time comes; the scheduler stops when nothing else is left.
        self.stale = 0
        self.network = Network(config, seeded(seed))
        self.trace: list[TraceEvent] | None = [] if record else None
        # Whether a recording world keeps each node's volatile state after every handler
        # (the lab's node table; off for searches that only judge their runs).
        self.keeps_volatile = record and volatile
        # Whether anyone sees the events: a trace is recorded, or a subclass observes
        # them through its own record(). If not, the steps skip describing them.
        self.observed = record or not self.plain_record
        # (trace index, node, its volatile state) after each handler, if recording
        self.volatile: list[tuple[int, str, Volatile]] = []
        self.states = states
        self.down: frozenset[str] = frozenset()
        self.stopped_by = "nothing pending"
        self.instability: list[tuple[str, str, str, int]] = []
        self._acting: NodeSlot | None = None
        self.started = False  # True once the first step (start) has happened
        self._watches: dict[str, StepWatch] | None = None
        # True while run() takes the steps of a lean world: nobody observes its events
        # (no trace, no record() of a subclass), and it has no fault plan, no watches and
        # no partition. Nothing a handler does changes any of that, so for that long the
        # scheduler and the nodes' actions skip what only other worlds need.
        self.lean = False
        for index in self.faults.at_time:
            self.queue.add_fault(self.faults.faults[index].at_time or 0, index)

    def _check_nodes(self, f: Fault) -> None:
        for n in f.nodes():
            if n not in self.nodes:
                raise TxlibError(f"fault '{f.describe()}' names unknown node {n!r}; "
                                 f"valid choices: {choices(list(self.nodes))}")

    # --- what anyone may read ----------------------------------------------------------
    @property
    def partition(self) -> dict[str, int] | None:
        """Each node's side of the current partition, or None if the network is whole."""
        return self.network.groups

    @property
    def rng(self) -> Draws:
        """The random generator the network draws latencies, losses and copies from."""
        return self.network.rng

    @rng.setter
    def rng(self, rng: Draws) -> None:
        self.network.rng = rng

    # --- trace -----------------------------------------------------------------------
    def record(self, kind: str, node: str | None, msg: Message | None, detail: str = "") -> None:
        """Append one event to the trace (if recording)."""
        tr = self.trace
        if tr is not None:
            tr.append(_new(TraceEvent, (len(tr), self.step, self.time, kind, node, msg, detail,
                                        self.states, self.down)))

    # --- steps -----------------------------------------------------------------------
    def pending(self) -> list[PendingEvent]:
        """Every pending event that would still do something, earliest first."""
        return sorted(e for e in self.queue if not self.is_stale(e))

    def is_stale(self, entry: PendingEvent) -> bool:
        """True for a timer entry that no longer fires: its node is down, or the timer
        was cancelled or set again since."""
        due = entry[2]
        if type(due) is not TimerDue:
            return False
        slot = self.nodes[due.node]
        timer = slot.timers.get(due.name)
        return not slot.up or timer is None or timer[0] != entry[1]

    def run(self) -> World:
        """Run the seeded timed scheduler until nothing is pending or a limit is reached."""
        if self._may_be_lean():
            self.lean = True
            # Nobody sees the states while the world is lean, so it changes a dict of its
            # own in place instead of replacing it at each change (see set_state).
            self.states = self.states.copy()
            try:
                if not self.started:
                    self.start()
                self._schedule_lean()
            finally:
                self.lean = False
            return self
        if not self.started:
            self.start()
        if self.trace is None:
            self._schedule()
            return self
        with collector_paused():  # a recorded run keeps every event (see collector)
            self._schedule()
        return self

    def _schedule(self) -> None:
        """The timed scheduler's loop (see :meth:`run`). A recorded run also stops once
        it has grown past its memory budget (see :mod:`.memory`)."""
        cfg = self.config
        max_steps, horizon = cfg.max_steps, cfg.horizon
        heap = self.queue.heap
        nodes = self.nodes
        network = self.network
        trace = self.trace
        plain_record = self.plain_record
        pop = heapq.heappop
        memory: Ceiling | None = None  # made at the first look: short runs never make it
        check_at = self.step + MEMORY_EVERY if trace is not None else max_steps
        while True:
            if self.faults.by_step:
                self._apply_step_faults()
            if self.step >= max_steps or len(heap) == self.stale or heap[0][0] > horizon:
                self.stopped_by = self._stop_reason()
                break
            if self.step >= check_at:
                check_at = self.step + MEMORY_EVERY
                if memory is None:
                    memory = Ceiling()
                held = memory.exceeded()
                if held is not None:
                    self.stopped_by = (f"memory={held / 2**20:,.0f} MB (grown by more than "
                                       f"3/4 of what was free at step {MEMORY_EVERY:,})")
                    break
            entry = pop(heap)
            at = entry[0]
            # _execute(entry), with its commonest cases written out in place
            due = entry[2]
            if type(due) is Message:
                if at > self.time:
                    self.time = at
                self.step += 1
                slot = nodes[due.dst]
                if not slot.up or slot.shared or network.groups is not None:
                    self._deliver(due)
                    continue
                # _deliver(due), for a node that is up, owns its slot, and no partition
                if due.hops > slot.hops:
                    slot.hops = due.hops
                if trace is not None and plain_record:
                    trace.append(_new(TraceEvent, (len(trace), self.step, self.time, "deliver",
                                                   due.dst, due, "", self.states, self.down)))
                elif self.observed:
                    self.record("deliver", due.dst, due)
                slot.memo = None
                role = slot.role
                handlers = role.dispatch
                handler = handlers.get(due.type) if handlers is not None else None
                previous = self._acting
                self._acting = slot
                try:
                    if handler is not None:
                        handler(role, slot.ctx, due)
                    else:
                        role.on_message(slot.ctx, due)
                except NodeCrashed:
                    pass
                finally:
                    self._acting = previous
                    if self.keeps_volatile and trace is not None and slot.up:
                        self.volatile.append((len(trace) - 1, due.dst,
                                              volatile_copy(slot.vars, slot.timers)))
                if self.faults.waiting:
                    self._fire_triggers("receives", due.dst, due.type, due.src)
            else:  # a timer or a fault of the plan
                self._execute(entry)

    def _stop_reason(self) -> str:
        """Why the scheduler stops now: the step limit, nothing pending but timers that
        never fire (they would be taken out one by one, up to the horizon), or the
        horizon reached."""
        cfg, heap = self.config, self.queue.heap
        if self.step >= cfg.max_steps:
            return f"max_steps={cfg.max_steps}"
        if len(heap) == self.stale and (not heap or max(heap)[0] <= cfg.horizon):
            return "nothing pending"
        return f"horizon={cfg.horizon}"

    def _may_be_lean(self) -> bool:
        """Whether a run of this world may take its steps leanly (see :attr:`lean`)."""
        return (not self.observed and not self.faults.faults and self._watches is None
                and self.network.groups is None and self.lean_runs)

    def _schedule_lean(self) -> None:
        """:meth:`_schedule` for a lean world (see :attr:`lean`), which has no fault plan
        to follow, no events to describe, no partition to cut messages and no node that
        can crash in the middle of a handler: a message to a node that is up and owns its
        slot goes straight to its handler; everything else takes the general path."""
        cfg = self.config
        max_steps, horizon = cfg.max_steps, cfg.horizon
        heap = self.queue.heap
        nodes = self.nodes
        pop = heapq.heappop
        while True:
            if self.step >= max_steps or len(heap) == self.stale or heap[0][0] > horizon:
                self.stopped_by = self._stop_reason()
                break
            entry = pop(heap)
            at = entry[0]
            due = entry[2]
            if type(due) is not Message:
                self._execute(entry)  # a timer (a lean world has no faults due)
                continue
            if at > self.time:
                self.time = at
            self.step += 1
            slot = nodes[due.dst]
            if not slot.up or slot.shared:
                self._deliver(due)
                continue
            if due.hops > slot.hops:
                slot.hops = due.hops
            slot.memo = None
            role = slot.role
            handlers = role.dispatch
            handler = handlers.get(due.type) if handlers is not None else None
            if handler is not None:
                handler(role, slot.ctx, due)
            else:
                role.on_message(slot.ctx, due)

    def turn(self) -> bool:
        """One turn of :meth:`run`'s scheduler loop, for a world that has started: the
        faults due after the last step, then the next queue entry (by the general path,
        which the loop writes out in place). False, with ``stopped_by`` set, where
        :meth:`run` stops instead. Taking turns until False leaves the world as
        :meth:`run` would, so a copy made between two turns (:func:`snapshot.freeze`)
        can run on from there."""
        if not self.started:
            raise TxlibError("the world has not started: call start() first")
        if self.faults.by_step:
            self._apply_step_faults()
        cfg, heap = self.config, self.queue.heap
        if self.step >= cfg.max_steps or len(heap) == self.stale or heap[0][0] > cfg.horizon:
            self.stopped_by = self._stop_reason()
            return False
        self._execute(heapq.heappop(heap))
        return True

    def start(self) -> None:
        """The first step, after any faults due at step 0: ``on_start`` of every node
        that is up and has never crashed. Then any faults due after it happen."""
        if self.started:
            raise TxlibError("the world has started already")
        if self.faults.by_step:
            self._apply_step_faults()
        self.started = True
        self.step += 1
        if self.observed:
            self.record("start", None, None, "the transaction begins")
        lean = self.lean
        for slot in self.nodes.values():
            # A node that crashed before the start never began; it only ever recovers.
            if slot.up and slot.incarnation == 0:
                if lean and not slot.shared:  # _call, for a lean world (see lean)
                    slot.memo = None
                    slot.role.on_start(slot.ctx)
                else:
                    self._call(slot, slot.role.on_start)
        if self.faults.by_step:
            self._apply_step_faults()

    def execute(self, entry: PendingEvent) -> None:
        """The step function: take pending ``entry`` out of the queue and apply it. Then
        any faults due after this step happen."""
        if self.is_stale(entry):
            raise TxlibError("that timer was cancelled; it is not an event any more")
        try:
            self.queue.take(entry)
        except ValueError:
            raise TxlibError(f"{entry!r} is not pending") from None
        self._execute(entry)
        if self.faults.by_step:
            self._apply_step_faults()

    def apply_fault(self, fault: Fault) -> str | None:
        """Make ``fault`` happen now, whatever its timing says; returns why it changed
        nothing, or None.

        A crash, recovery, partition or heal is one step of its own, with the same
        effect and trace as when a fault plan's fault happens. A message fault or a node
        mark joins the fault plan, active from now on (that is not a step). Then any
        faults of the plan due after this step happen.
        """
        if not isinstance(fault, Fault):
            raise TxlibError(f"apply_fault needs a Fault (e.g. crash('p1')), got {fault!r}")
        self._check_nodes(fault)
        why = None
        if fault.kind in ONE_SHOT:
            self.step += 1
            why = self._strike(fault, planned=False)
        else:
            if not self.faults.faults:  # an empty plan may be shared (snapshot.thaw)
                self.faults = FaultPlanState(())
            self.faults.activate(self.faults.add(fault))
        self._apply_step_faults()
        return why

    def lose(self, entry: MessageEntry) -> None:
        """The network loses the message of pending ``entry`` while it is in flight, as
        one step of its own. Then any faults due after this step happen."""
        m = entry[2]
        if not isinstance(m, Message):
            raise TxlibError(f"only a message in flight can be lost, got {entry!r}")
        try:
            self.queue.take(entry)
        except ValueError:
            raise TxlibError(f"{m.describe()} is not in flight") from None
        self.step += 1
        self.record("drop", m.dst, m, "lost in flight")
        if self.faults.by_step:
            self._apply_step_faults()

    def _execute(self, entry: PendingEvent) -> None:
        """Apply ``entry``, already out of the queue (a stale timer does nothing)."""
        at, seq, due = entry
        if type(due) is Message:
            if at > self.time:
                self.time = at
            self.step += 1
            self._deliver(due)
        elif type(due) is TimerDue:
            node, name = due
            slot = self.nodes[node]
            timer = slot.timers.get(name)
            if not slot.up or timer is None or timer[0] != seq:
                self.stale -= 1
                return  # cancelled, set again, or its node crashed
            if at > self.time:
                self.time = at
            self.step += 1
            if slot.shared:
                slot = self._own(slot)
            del slot.timers[name]
            if self.observed:
                self.record("timeout", node, None, name)
            self._call(slot, slot.role.on_timer, name)
        elif type(due) is FaultDue:
            if at > self.time:
                self.time = at
            if self.faults.faults[due.fault].kind not in ONE_SHOT:
                self.faults.activate(due.fault)  # turning on a message fault is not a step
                return
            self.step += 1
            self._apply_planned(due.fault)

    def _apply_step_faults(self) -> None:
        """Apply the faults of the plan due at or before this step, up to the step
        limit (the run stops there; the rest never happen)."""
        by_step = self.faults.by_step
        max_steps = self.config.max_steps
        while by_step:
            first = min(by_step)
            if first > self.step:
                return
            due = by_step.pop(first)
            for n, index in enumerate(due):
                if self.faults.faults[index].kind in ONE_SHOT:
                    if self.step >= max_steps:  # the run stops here: these never happen
                        by_step[first] = due[n:]
                        return
                    self.step += 1  # a crash, recovery, partition or heal is a step
                self._apply_planned(index)

    # --- watching a step ---------------------------------------------------------------
    def watch(self, node: str, crash_after: int = 0) -> StepWatch:
        """Note what ``node`` does from now on until :meth:`unwatch`: each send and log
        write, as the text of the trigger that matches it. With ``crash_after=k`` the node
        crashes right after its k-th such action, as a crash fault with that trigger
        would, and the rest of its handler never runs."""
        if node not in self.nodes:
            raise bad_choice("node", node, list(self.nodes))
        watch = StepWatch(node, crash_after)
        if self._watches is None:
            self._watches = {}
        self._watches[node] = watch
        return watch

    def unwatch(self) -> None:
        """Stop watching every node."""
        self._watches = None

    def _watched(self, node: str, what: str) -> None:
        watch = self._watches.get(node) if self._watches is not None else None
        if watch is not None:
            watch.did.append(what)
            if len(watch.did) == watch.crash_after:
                self._crash(node)  # raises NodeCrashed: the handler stops here

    # --- nodes -----------------------------------------------------------------------
    def _own(self, slot: NodeSlot) -> NodeSlot:
        """This world's own copy of a slot it shares with other worlds (copy on write,
        see :func:`snapshot.freeze`), in place of the shared one."""
        own = self.nodes[slot.name] = snapshot.copy_slot(slot, self)
        return own

    def _call(self, slot: NodeSlot, fn: Any, *args: Any) -> None:
        if slot.shared:
            slot = self._own(slot)  # the role (and so ``fn``) is the same object
        slot.memo = None  # the handler may change the slot
        previous = self._acting
        self._acting = slot
        try:
            fn(slot.ctx, *args)
        except NodeCrashed:
            pass
        finally:
            self._acting = previous
            if self.keeps_volatile and self.trace is not None and slot.up:
                self.volatile.append((len(self.trace) - 1, slot.name,
                                      volatile_copy(slot.vars, slot.timers)))

    def _deliver(self, msg: Message) -> None:
        """Deliver ``msg`` to its node (a step already counted): its ``on_<TYPE>``
        handler, or the role's own ``on_message`` if it overrides it (see
        :attr:`Role.dispatch`). As :meth:`_call` does for the other handlers, written
        out in place: it is the engine's hot path."""
        dst = msg.dst
        slot = self.nodes[dst]
        if not slot.up:
            if self.observed:
                self.record("drop", dst, msg, dst + " is down")
            return
        if self.network.groups is not None and self.network.cut(msg.src, dst):
            if self.observed:
                self.record("drop", dst, msg, "partition: cut off in flight")
            return
        if slot.shared:
            slot = self._own(slot)
        if msg.hops > slot.hops:
            slot.hops = msg.hops
        trace = self.trace
        if self.observed:
            if trace is not None and self.plain_record:  # record(), written out
                trace.append(_new(TraceEvent, (len(trace), self.step, self.time, "deliver", dst,
                                               msg, "", self.states, self.down)))
            else:
                self.record("deliver", dst, msg)
        slot.memo = None  # the handler may change the slot
        role = slot.role
        handlers = role.dispatch
        handler = handlers.get(msg.type) if handlers is not None else None
        previous = self._acting
        self._acting = slot
        try:
            if handler is not None:
                handler(role, slot.ctx, msg)
            else:
                role.on_message(slot.ctx, msg)
        except NodeCrashed:
            pass
        finally:
            self._acting = previous
            if self.keeps_volatile and trace is not None and slot.up:
                self.volatile.append((len(trace) - 1, dst, volatile_copy(slot.vars, slot.timers)))
        if self.faults.waiting:
            self._fire_triggers("receives", dst, msg.type, msg.src)

    # --- faults ----------------------------------------------------------------------
    def _fire_triggers(self, action: str, node: str, what: str, peer: str | None) -> None:
        crashed: NodeCrashed | None = None
        for index in self.faults.triggered(action, node, what, peer):
            try:
                self._apply_planned(index)
            except NodeCrashed as exc:  # the acting node crashed: finish the others first
                crashed = exc
        if crashed is not None:
            raise crashed

    def _apply_planned(self, index: int) -> None:
        """Carry out fault ``index`` of the plan now (a one-shot happens; a message fault
        or a mark turns on)."""
        faults = self.faults
        f = faults.faults[index]
        faults.fired[index] = True
        if f.kind in ONE_SHOT:
            why = self._strike(f, planned=True)
            if why is not None:
                faults.no_effect[index] = why
        else:
            faults.activate(index)

    def _strike(self, f: Fault, planned: bool) -> str | None:
        """The effect of a one-shot fault; returns why it changed nothing, or None. The
        trace describes a partition with its timing if it came from the plan."""
        kind = f.kind
        if kind == "crash":
            return self._crash(f.node or "")
        if kind == "recover":
            return self._recover(f.node or "")
        if kind == "partition":
            why = self.network.split(f.groups, self.nodes)
            if why is None:
                self.record("partition", None, None, f.describe() if planned else f.what())
            return why
        why = self.network.heal()
        if why is None:
            self.record("heal", None, None, "the network is whole again")
        return why

    def _crash(self, name: str) -> str | None:
        slot = self.nodes[name]
        if not slot.up:
            return f"{name} was already down"
        if slot.shared:
            slot = self._own(slot)
        slot.memo = None
        slot.up = False
        slot.vars = {}
        self.stale += len(slot.timers)  # their queue entries will never fire
        slot.timers.clear()
        lost = len(slot.log) - slot.durable
        if self.config.lose_unforced and lost:
            del slot.log[slot.durable:]
        self.down = self.down | {name}
        detail = "volatile state and timers lost"
        if lost and self.config.lose_unforced:
            detail += f"; {lost} unforced log record(s) lost"
        self.record("crash", name, None, detail)
        if self.keeps_volatile and self.trace is not None:
            self.volatile.append((len(self.trace) - 1, name, ""))
        if self._acting is slot:
            raise NodeCrashed(name)
        return None

    def _recover(self, name: str) -> str | None:
        slot = self.nodes[name]
        if slot.up:
            return f"{name} was not down"
        if slot.shared:
            slot = self._own(slot)
        slot.memo = None
        slot.up = True
        slot.vars = {}
        slot.incarnation += 1
        self.down = self.down - {name}
        self.record("recover", name, None, f"restarts with {len(slot.log)} log record(s)")
        self._call(slot, slot.role.on_recover)
        return None

    # --- copies and canonical states (for the explorer) ------------------------------
    def clone(self: W) -> W:
        """An independent copy of this world, to try one event without changing this one.

        Much cheaper than ``copy.deepcopy``: roles, the config and the immutable records
        (messages, log records, trace events) are shared; node slots, the queue, the
        network, the fault plan's progress and the trace lists are copied. Attributes a
        subclass adds are carried over as they are (share only immutable values, or copy
        them in the subclass's own ``clone``). Watches (:meth:`watch`) are not copied.
        """
        new = snapshot.clone(self)
        new._acting = None
        new._watches = None
        return new

    def fork(self: W) -> W:
        """An independent copy of this world, like :meth:`clone`, that shares the node
        slots with it until either world changes one (copy on write): cheaper when a
        step changes only a node or two. Watches are not copied."""
        return snapshot.fork(self)

    def release(self) -> None:
        """Let go of the nodes' contexts, which point back at this world, so that a world
        nobody holds any more is freed at once instead of by Python's cycle collector
        (over many short runs, that collector took a quarter of a recorded run's time).
        The world stays usable: it copies a node slot, with a new context, before it
        changes it (copy on write, as after :meth:`fork`)."""
        snapshot.share_slots(self)

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
        return snapshot.fingerprint(self)

    # --- results ---------------------------------------------------------------------
    def unfired_faults(self) -> list[tuple[Fault, str]]:
        """Faults that never happened or had no effect, with the reason for each."""
        return self.faults.unfired(self.step, self.time, self.stopped_by)
