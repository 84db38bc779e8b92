"""Each role's state machine as it stands after a step of a run: nodes placed in their
states and the transition taken in that step highlighted. The lab and the static
pictures share this."""

from __future__ import annotations

from ..simulation.run import Run
from .frames import last_index_of_step
from .statechart import statechart_svg
from .traceindex import index_of

Last = tuple[str, str, None]


def last_transitions(run: Run, step: int) -> dict[str, Last]:
    """Per role, the last declared transition any of its nodes took during ``step``."""
    trace = run.trace
    lookup = index_of(trace)
    index = lookup.last_of_step(step)
    last: dict[str, Last] = {}
    if index < 0:
        return last
    first = lookup.first_of_step(step)  # the step's first event
    before = dict(trace[max(0, first - 1)].states)
    for e in trace[first: index + 1]:
        if e.kind == "state" and e.node is not None:
            src = before.get(e.node, "")
            role = run.roles[e.node]
            if run.machines[role].allows(src, e.states[e.node]):
                last[role] = (src, e.states[e.node], None)
        before = e.states
    return last


def role_charts(run: Run, step: int) -> dict[str, str]:
    """One SVG per role, for the moment right after scheduler ``step`` (0: the start)."""
    trace = run.trace
    index = last_index_of_step(trace, step)
    event = trace[max(index, 0)]
    last = last_transitions(run, step)
    charts = {}
    for role, machine in run.machines.items():
        occupants: dict[str, list[str]] = {}
        for node, r in run.roles.items():
            if r != role:
                continue
            state = event.states.get(node) if index >= 0 else machine.initial
            occupants.setdefault(state or machine.initial, []).append(node)
        down = set(event.down) if index >= 0 else set()
        charts[role] = statechart_svg(machine, occupants=occupants, down=down,
                                      last=last.get(role), title=f"{role} state machine")
    return charts
