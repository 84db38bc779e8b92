"""From a finding's path to an ordinary Run, and whether the timed scheduler shows it.

:func:`counterexample` replays a finding's path with recording on (for a blocking
finding it goes on with ordinary events in time order, so the run shows the decider
waiting in vain), turns the path's faults into a fault plan (:func:`fault_plan`) and
tries that plan under the timed scheduler with the scenario's seed and the next ones
(:func:`reproduction`): the Run's scenario is the first that shows the same finding, if
any, so running it again (as the lab does) shows it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from ..engine.faults import Fault, drop
from ..engine.world import World
from ..protocols import get_protocol
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from .actions import Action, Crash, CrashDuring, Drop, Heal, Partition, Recover
from .search import Finding

if TYPE_CHECKING:
    from .worlds import WorldModel

REPRODUCE_SEEDS = 50  # seeds a counterexample's fault plan is tried with
EXTEND_STEPS = 300  # ordinary events a blocking replay goes on with, at most


def replay(model: WorldModel, path: Sequence[Action], extend: bool = False) -> World:
    """The world after ``path``, recorded. ``extend`` goes on with ordinary events,
    earliest first, until none is enabled, the horizon or ``EXTEND_STEPS`` more steps."""
    w = model.fresh(record=True)
    for action in path:
        model.apply(w, action)
    if extend:
        for _ in range(EXTEND_STEPS):
            events = model.events(w)
            if not events:
                break
            event, entry = min(events, key=lambda ee: (0, 0) if ee[1] is None else ee[1][:2])
            if entry is not None and entry[0] > model.config.horizon:
                break
            model.take(w, event, entry)
    return w


def fault_plan(model: WorldModel, path: Sequence[Action], world: World) -> tuple[Fault, ...]:
    """The faults of ``path`` (replayed as ``world``) as a fault plan, at the steps where
    they happened; a lost message is dropped as it is sent."""
    faults: list[Fault] = []
    step = 0
    sent_at: dict[int, int] = {}
    for e in world.trace or []:
        if e.kind == "send" and e.message is not None:
            sent_at.setdefault(e.message.id, e.step)
    w = model.fresh(record=False)
    for action in path:
        if isinstance(action, Drop):
            m = model.in_flight(w, action)[2]
            faults.append(drop(m.type, src=m.src, dst=m.dst,
                               at_step=max(sent_at.get(m.id, 1) - 1, 0)))
        elif isinstance(action, (Crash, CrashDuring, Recover, Partition, Heal)):
            faults.append(action.as_fault(at_step=step))
        model.apply(w, action)
        step = w.step
    return tuple(faults)


def counterexample(model: WorldModel, finding: Finding) -> Run:
    """Replay ``finding``'s path with recording on, as an ordinary Run whose scenario
    carries the path's faults (see the module docstring)."""
    path = cast(Sequence[Action], finding.path)  # the model's own actions
    world = replay(model, path, extend=finding.kind == "blocking")
    faults = fault_plan(model, path, replay(model, path))
    scenario = model.scenario
    base = replace(scenario, faults=(*scenario.faults, *faults),
                   name=scenario.name or f"{model.protocol.name}-explored")
    found = reproduction(model, finding, base)
    if found is None:
        note = (f" The timed scheduler does not show it with seeds {base.seed} to "
                f"{base.seed + REPRODUCE_SEEDS - 1}: only this replay does."
                if judged(model, finding) else "")
    else:
        note = f" The timed scheduler shows it too, with seed {found.seed}."
    shown = replace(found or base, description=f"Found by the explorer: {finding}." + note)
    steps = f"{finding.depth} step" + ("" if finding.depth == 1 else "s")
    more = ", then ordinary events in time order" if finding.kind == "blocking" else ""
    return dataclasses.replace(Run.of_world(shown, world),
                               stopped_by=f"explorer counterexample: {steps}{more}")


def judged(model: WorldModel, finding: Finding) -> bool:
    """Can a timed run tell whether it shows ``finding``? Not for a protocol variant (its
    scenario runs the registered protocol) nor for a custom invariant."""
    if type(model.protocol) is not type(get_protocol(model.protocol.name)):
        return False
    return finding.kind == "blocking" or finding.invariant not in dict(model.custom)


def shows(scenario: Scenario, finding: Finding) -> bool:
    """Does the timed run of ``scenario`` show ``finding`` (the same broken invariant, or
    a blocked outcome)?"""
    run = scenario.run()
    if finding.kind == "blocking":
        return run.outcome == "blocked"
    return finding.invariant in {v.invariant for v in run.violations}


def reproduction(model: WorldModel, finding: Finding, base: Scenario) -> Scenario | None:
    """The first of ``base`` with its seed and the next ones whose timed run shows
    ``finding``, or None."""
    if not judged(model, finding):
        return None
    for k in range(REPRODUCE_SEEDS):
        candidate = replace(base, seed=base.seed + k)
        if shows(candidate, finding):
            return candidate
    return None


def reproduces(model: WorldModel, finding: Finding) -> bool | None:
    """Does the counterexample's scenario, run by the timed scheduler, show the same
    violation (or block)? None when a timed run cannot tell (see :func:`judged`)."""
    if not judged(model, finding):
        return None
    return shows(finding.run.scenario, finding)
