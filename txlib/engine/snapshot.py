"""Copies of a world and its canonical fingerprint, for the explorer.

:func:`clone` gives an independent copy of a world, to try one event without changing
the original; :func:`fingerprint` a canonical value of everything that decides what can
happen next, so two worlds reached in different orders count as one state;
:func:`canonical` the hashable, order-independent form of a payload or log data.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, TypeVar

from .faultplan import FaultPlanState
from .node import Context, NodeSlot
from .records import Message
from .scheduler import FaultDue

if TYPE_CHECKING:
    from .world import World

W = TypeVar("W", bound="World")


def clone(world: W) -> W:
    """An independent copy of ``world`` (see :meth:`World.clone`); the caller resets
    what only lasts during a step."""
    new = object.__new__(type(world))
    new.__dict__.update(world.__dict__)
    nodes: dict[str, NodeSlot] = {}
    for name, old in world.nodes.items():
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
    new.faults = _copied_plan(world.faults)
    new.queue = world.queue.copy()
    new.network = world.network.copy()
    new.trace = None if world.trace is None else world.trace.copy()
    new.volatile = world.volatile.copy()
    new.instability = world.instability.copy()
    return new


def fingerprint(world: World) -> tuple[Any, ...]:
    """A canonical value of everything that decides what can happen next (see
    :meth:`World.fingerprint`)."""
    nodes: list[tuple[Any, ...]] = []
    for slot in world.nodes.values():
        log = tuple((r.record, canonical(r.data), r.forced) for r in slot.log)
        if slot.up:
            nodes.append((slot.name, True, slot.state, log, slot.durable,
                          canonical(slot.vars) if slot.vars else (),
                          tuple(sorted(slot.timers)), slot.locks, slot.decision))
        else:
            nodes.append((slot.name, False, log, slot.durable, slot.locks, slot.decision))
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
    changes = tuple((n, a, b) for n, a, b, _ in world.instability)
    network = world.network
    sides = None if network.groups is None else network.sides()
    return (world.started, tuple(nodes), messages, sides, progress, changes)


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
        return tuple((k, v if type(v) in atoms else canonical(v))
                     for k, v in _sorted(value.items()))
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
