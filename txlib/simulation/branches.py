"""Many runs that each add one fault to the same scenario, sharing the steps before it.

"Can it get worse?" runs a scenario again with each of a few thousand single faults
added (a crash after step k, a lost message, a partition). Each such run is the same as
the scenario's own run until its fault can first make a difference, so
:func:`branch_runs` takes the scenario's run one scheduler turn at a time
(:meth:`World.turn`) and starts each fault's run from a copy of the world made just
before that point (:func:`~txlib.engine.snapshot.freeze`), with the fault added to the
copy's plan as if it had been there from the start (:meth:`FaultPlanState.plus`).

A fault's run cannot differ from the scenario's before:

- a fault due after step ``k`` (``at_step=k``): the first turn that reaches step ``k``
  (before it, the fault is only waiting in the plan, which changes nothing);
- a fault triggered by a node's action (``when="p1 sends COMMIT"``): the first turn in
  which that node does anything at all (a trigger fires only on its node's action, and
  every action of a recorded run is in its trace). That is earlier than needed when
  the node's first actions do not match, which only costs time;
- anything else (a fault due at a time, a trigger on any node, a fault at the start):
  it runs from the start, as :meth:`Scenario.run` runs it.

Each run is then the one :meth:`Scenario.run` gives with ``volatile=False``, event for
event (``tests/test_branches.py`` compares them on every preset).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence

from ..engine.collector import collector_paused
from ..engine.faults import ANY_NODE, Fault
from ..engine.snapshot import Frozen, freeze, thaw
from ..errors import TxlibError
from .run import Run
from .scenario import Scenario


def branch_runs(parent: Scenario, children: Sequence[Scenario],
                deadline: float | None = None) -> Iterator[tuple[int, Run | TxlibError]]:
    """For each of ``children`` (``parent`` with one more fault at the end of its
    plan), its index and ``child.run(volatile=False)``, or the :class:`TxlibError`
    that raises; in the order they are run (the parent's run is taken once, turn by
    turn, and each child runs on from it as soon as its fault can make a difference).
    A child that is not ``parent`` plus one fault runs from the start. With a
    ``deadline`` (a :func:`time.perf_counter` value), no child starts after it."""
    if not children:
        return
    at_step: dict[int, list[int]] = defaultdict(list)  # step -> children due after it
    on_node: dict[str, list[int]] = defaultdict(list)  # node -> children it triggers
    alone: list[int] = []
    for i, child in enumerate(children):
        fault = _added(parent, child)
        if fault is not None and fault.at_step is not None and fault.at_step > 1:
            at_step[fault.at_step].append(i)
        elif fault is not None and fault.when is not None and fault.when.node != ANY_NODE:
            on_node[fault.when.node].append(i)
        else:
            alone.append(i)

    def late() -> bool:
        return deadline is not None and time.perf_counter() > deadline

    with collector_paused():  # each run is freed when the next starts (no cycles)
        world = parent.world(record=True, volatile=False)
        try:
            world.start()
            trace = world.trace
            assert trace is not None
            # A child whose fault may have fired by the end of the start runs from it.
            for node in {e.node for e in trace if e.node is not None}:
                alone += on_node.pop(node, [])
            for step in [s for s in at_step if s <= world.step]:
                alone += at_step.pop(step)
            for i in sorted(alone):
                if late():
                    return
                yield i, _outcome(children[i], None)
            going = True
            while (at_step or on_node) and going:
                before = freeze(world)  # the world as the next turn finds it
                seen = len(trace)
                going = world.turn()
                ready: list[int] = []
                if not going:  # the run ends here: every fault left can only come now
                    ready = [i for group in (*at_step.values(), *on_node.values())
                             for i in group]
                    at_step.clear()
                    on_node.clear()
                for step in [s for s in at_step if s <= world.step]:
                    ready += at_step.pop(step)
                for node in {e.node for e in trace[seen:] if e.node is not None}:
                    ready += on_node.pop(node, [])
                for i in sorted(ready):
                    if late():
                        return
                    yield i, _outcome(children[i], before)
        finally:
            world.release()


def _added(parent: Scenario, child: Scenario) -> Fault | None:
    """The one fault ``child`` adds at the end of ``parent``'s plan, if that is the
    only difference that changes a run (its name and description do not)."""
    if (child.protocol, child.participants, child.seed, child.options) != (
            parent.protocol, parent.participants, parent.seed, parent.options):
        return None
    if len(child.faults) != len(parent.faults) + 1 or child.faults[:-1] != parent.faults:
        return None
    return child.faults[-1]


def _outcome(child: Scenario, frozen: Frozen | None) -> Run | TxlibError:
    """``child``'s run: from the start, or on from ``frozen`` (its parent's world before
    its added fault can make a difference), that fault added to the plan."""
    try:
        if frozen is None:
            return child.run(volatile=False)
        world = thaw(frozen)
        world.faults = world.faults.plus(child.faults[-1])
        return child.run_of(world.run())
    except TxlibError as exc:
        return exc
