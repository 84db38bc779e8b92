"""Copies of a world and its canonical fingerprint, for the explorer.

:func:`clone` gives an independent copy of a world, to try one event without changing
the original; :func:`fingerprint` a canonical value of everything that decides what can
happen next, so two worlds reached in different orders count as one state (made of
:func:`node_part`, :func:`pending_part` and :func:`progress_part`);
:func:`canonical` the hashable, order-independent form of a payload or log data.

:func:`freeze` keeps a world compactly while it waits (the explorer's frontier) and
:func:`thaw` makes a world of it again, as many times as needed: the node slots are
shared between the snapshot and every world thawed from it, and a world copies a slot
only when it changes it (copy on write, :meth:`World._own`), so a snapshot costs about
what its own world-level values cost, plus the slots that changed since its parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .faultplan import FaultPlanState
from .network import Network
from .node import NodeSlot
from .records import Message
from .scheduler import EventQueue, FaultDue
from .volatile import copied

if TYPE_CHECKING:
    from .world import World

W = TypeVar("W", bound="World")


def copy_slot(old: NodeSlot, world: World) -> NodeSlot:
    """A copy of node slot ``old`` that ``world`` owns and may change."""
    slot = object.__new__(NodeSlot)
    slot.name = old.name
    slot.role = old.role
    slot.up = old.up
    slot.state = old.state
    slot.log = old.log.copy()
    slot.durable = old.durable
    slot.vars = {k: copied(v) for k, v in old.vars.items()} if old.vars else {}
    slot.timers = old.timers.copy()
    slot.locks = old.locks
    slot.decision = old.decision
    slot.hops = old.hops
    slot.incarnation = old.incarnation
    slot.shared = False
    slot.memo = old.memo
    slot.ctx = world.context_class(world, slot)
    return slot


def clone(world: W) -> W:
    """An independent copy of ``world`` (see :meth:`World.clone`); the caller resets
    what only lasts during a step."""
    new = object.__new__(type(world))
    new.__dict__.update(world.__dict__)
    new.nodes = {name: copy_slot(old, new) for name, old in world.nodes.items()}
    new.faults = world.faults.copy()
    new.queue = world.queue.copy()
    new.network = world.network.copy()
    new.trace = None if world.trace is None else world.trace.copy()
    new.volatile = world.volatile.copy()
    new.instability = world.instability.copy()
    return new


# The world's attributes a snapshot keeps in a form of its own (the rest it keeps as
# they are: values a world replaces and never changes in place).
_CONTAINERS = frozenset({"nodes", "queue", "network", "faults", "instability", "trace",
                         "volatile", "_acting", "_watches"})
_EMPTY_VARS: dict[str, Any] = {}  # shared by frozen slots with no variables (never changed)
_EMPTY_TIMERS: dict[str, tuple[int, int]] = {}


class Layout:
    """What the snapshots of one kind of world have in common: the class, the number of
    nodes, the names of the plain attributes and the random generator's type."""

    __slots__ = ("cls", "keys", "nodes", "rng")

    def __init__(self, cls: type, keys: tuple[str, ...], nodes: int, rng: Any) -> None:
        self.cls = cls
        self.keys = keys
        self.nodes = nodes
        self.rng = rng


# A snapshot: (layout, queue seq, heap entries, partition groups, FIFO times, rng state
# (or the generator itself if it has no state),
# fault plan, instability, trace, volatile, *node slots, *plain attribute values).
Frozen = tuple[Any, ...]
_SLOTS_AT = 10
_LAYOUTS: dict[tuple[Any, ...], Layout] = {}
_STATES: dict[Any, Any] = {}  # node states and down sets shared by snapshots (a few hundred)


def freeze(world: World) -> Frozen:
    """Keep ``world`` compactly as a snapshot (a tuple), from which :func:`thaw` goes
    on. The world itself may go on too.

    Its node slots become shared (copy on write, without a Context, which also breaks
    the world's reference cycles), so a snapshot holds only the slots that changed
    since the snapshot it was thawed from, the world-level values and the queue's
    entries (shared too: they are immutable).
    """
    nodes = world.nodes
    for slot in nodes.values():
        if not slot.shared:
            slot.shared = True
            slot.ctx = None  # type: ignore[assignment]  # a shared slot is never called
            if not slot.vars:
                slot.vars = _EMPTY_VARS
            if not slot.timers:
                slot.timers = _EMPTY_TIMERS
    d = world.__dict__
    # Node states and the set of nodes down recur across many snapshots: keep one each.
    states = world.states
    d["states"] = _STATES.setdefault(tuple(states.items()), states)
    d["down"] = _STATES.setdefault(world.down, world.down)
    network = world.network
    rng = network.rng
    shape = (type(world), tuple(d), len(nodes), type(rng))
    layout = _LAYOUTS.get(shape)
    if layout is None:
        keys = tuple(k for k in d if k not in _CONTAINERS)
        layout = _LAYOUTS[shape] = Layout(type(world), keys, len(nodes), type(rng))
    queue = world.queue
    trace = world.trace
    frozen = (layout, queue.seq, tuple(queue.heap), network.groups,
              tuple(network.fifo_last.items()) if network.fifo_last else (),
              _rng_state(rng), world.faults.copy() if world.faults.faults else world.faults,
              tuple(world.instability) if world.instability else (),
              None if trace is None else tuple(trace),
              tuple(world.volatile) if world.volatile else (),
              *nodes.values(), *(d[k] for k in layout.keys))
    return frozen


def _rng_state(rng: Any) -> Any:
    """What a snapshot keeps of the random generator: its state, or the generator
    itself if it has none (``getstate()`` is None: the explorer's), to share."""
    state = rng.getstate()
    return rng if state is None else state


def thaw(frozen: Frozen) -> World:
    """A world in the state ``frozen`` holds, that may run on without changing it;
    thaw it as often as needed (each world is independent)."""
    layout: Layout = frozen[0]
    world: World = object.__new__(layout.cls)
    d = world.__dict__
    end = _SLOTS_AT + layout.nodes
    d.update(zip(layout.keys, frozen[end:], strict=True))
    world.nodes = {slot.name: slot for slot in frozen[_SLOTS_AT:end]}
    queue = object.__new__(EventQueue)
    queue.seq = frozen[1]
    queue.heap = list(frozen[2])
    world.queue = queue
    network = object.__new__(Network)
    network.config = world.config
    network.groups = frozen[3]
    network.fifo_last = dict(frozen[4])
    rng = frozen[5]
    if type(rng) is not layout.rng:  # the generator's state, to copy
        rng = layout.rng.__new__(layout.rng)  # setstate sets every field
        rng.setstate(frozen[5])
    network.rng = rng
    world.network = network
    plan: FaultPlanState = frozen[6]
    world.faults = plan.copy() if plan.faults else plan  # an empty plan never
    # changes (World.apply_fault replaces it before adding to it), so it is shared
    world.instability = list(frozen[7])
    world.trace = None if frozen[8] is None else list(frozen[8])
    world.volatile = list(frozen[9])
    world._acting = None
    world._watches = None
    return world


def fork(world: W) -> W:
    """An independent copy of ``world`` that shares its node slots (copy on write):
    like :func:`clone`, but a slot is copied only when one of the two worlds changes
    it."""
    share_slots(world)
    new = object.__new__(type(world))
    new.__dict__.update(world.__dict__)
    new.nodes = world.nodes.copy()
    return _own_containers(new)


def share_slots(world: World) -> None:
    """Mark every node slot of ``world`` shared (copy on write), without its Context:
    the world copies a slot, with a new Context, before it changes it."""
    for slot in world.nodes.values():
        slot.shared = True
        slot.ctx = None  # type: ignore[assignment]  # the world that changes it copies it


def _own_containers(new: W) -> W:
    """Give ``new`` its own copies of the world-level containers it shares."""
    plan = new.faults
    if plan.faults:  # an empty plan never changes (apply_fault replaces it), so share it
        new.faults = plan.copy()
    new.queue = new.queue.copy()
    new.network = new.network.copy()
    if new.trace is not None:
        new.trace = new.trace.copy()
    new.volatile = new.volatile.copy()
    new.instability = new.instability.copy()
    new._acting = None
    new._watches = None
    return new


def node_part(slot: NodeSlot) -> tuple[Any, ...]:
    """A node's share of the fingerprint: up or down, its state (if up), its log and how
    much of it is stable, its volatile variables, timer names, locks and decision."""
    log = tuple((r.record, canonical(r.data), r.forced) for r in slot.log)
    if slot.up:
        return (slot.name, True, slot.state, log, slot.durable,
                canonical(slot.vars) if slot.vars else (),
                tuple(sorted(slot.timers)), slot.locks, slot.decision)
    return (slot.name, False, log, slot.durable, slot.locks, slot.decision)


def fingerprint(world: World) -> tuple[Any, ...]:
    """A canonical value of everything that decides what can happen next (see
    :meth:`World.fingerprint`)."""
    nodes = tuple(node_part(slot) for slot in world.nodes.values())
    messages, timed_faults = pending_part(world)
    network = world.network
    sides = None if network.groups is None else network.sides()
    return (world.started, nodes, messages, sides, progress_part(world, timed_faults),
            tuple((n, a, b) for n, a, b, _ in world.instability))


def pending_part(world: World) -> tuple[tuple[Any, ...], list[int]]:
    """The messages in flight as a multiset (see :meth:`World.fingerprint`), and the
    pending timed faults."""
    in_flight = []
    timed_faults = []
    for _, _, due in world.queue:
        if type(due) is Message:
            in_flight.append((due.src, due.dst, due.type, canonical(due.payload), due.id))
        elif type(due) is FaultDue:
            timed_faults.append(due.fault)
    if world.config.reorder:
        messages: tuple[Any, ...] = _sorted(m[:4] for m in in_flight)
    else:  # each channel delivers in sending order: the order is part of the state
        channels: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        for m in in_flight:
            channels.setdefault((m[0], m[1]), []).append((m[4], m[2:4]))
        messages = tuple(sorted((ch, tuple(x for _, x in sorted(ms, key=lambda m: m[0])))
                                for ch, ms in channels.items()))
    return messages, timed_faults


def progress_part(world: World, timed_faults: list[int]) -> tuple[Any, ...]:
    """The fault plan's progress (empty without a plan)."""
    plan = world.faults
    progress: tuple[Any, ...] = ()
    if plan.faults:
        progress = (
            tuple(plan.fired), tuple(plan.remaining), tuple(i for i, _ in plan.waiting),
            tuple(plan.active_messages), tuple(sorted(plan.marks)),
            tuple(plan.step_failures), tuple(sorted(timed_faults)),
            # faults due at a step make the step count part of the state
            (world.step, tuple(sorted((k, tuple(v)) for k, v in plan.by_step.items())))
            if plan.by_step else (),
        )
    return progress


_ATOMS = frozenset({str, int, bool, float, type(None)})


def canonical(value: Any) -> Any:
    """A hashable, order-independent form of a payload, log data or variables value,
    made of plain values only: dicts become sorted (key, value) tuples, sets sorted
    tuples tagged "set", lists tuples; a NamedTuple or any other object becomes its
    class name and its fields."""
    t = type(value)
    if t in _ATOMS:
        return value
    atoms = _ATOMS
    if t is dict:
        try:
            items = sorted(value.items())  # keys are unique: only they are compared
        except TypeError:
            items = sorted(value.items(), key=repr)
        for _, v in items:
            if type(v) not in atoms:
                return tuple((k, v if type(v) in atoms else canonical(v)) for k, v in items)
        return tuple(items)
    if t is set or t is frozenset:
        return ("set", _sorted(v if type(v) in atoms else canonical(v) for v in value))
    if t is list or t is tuple:
        return tuple(v if type(v) in atoms else canonical(v) for v in value)
    if isinstance(value, tuple):
        return (t.__qualname__, tuple(canonical(v) for v in value))
    if hasattr(value, "__dict__"):
        return (t.__qualname__, canonical(vars(value)))
    return value


def _sorted(items: Any) -> tuple[Any, ...]:
    """Sorted by value, or by text form if the values cannot be compared (mixed types)."""
    items = list(items)
    try:
        return tuple(sorted(items))
    except TypeError:
        return tuple(sorted(items, key=repr))
