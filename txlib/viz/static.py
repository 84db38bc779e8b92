"""Static pictures for notebooks and pages where widgets do not run (GitHub, nbviewer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import TxlibError, bad_choice, shown
from ..protocols import get_protocol
from ..simulation.run import Run
from ..simulation.scenario import Scenario
from .charts import role_charts
from .spacetime import spacetime_svg
from .statechart import statechart_svg


@dataclass(frozen=True)
class Picture:
    """An SVG that Jupyter displays inline (``_repr_svg_``) and that saves to a file."""

    svg: str

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        """Short, so a notebook does not store the picture twice (as SVG and as text)."""
        return f"<txlib picture, {len(self.svg):,} bytes of SVG>"

    def save(self, path: str) -> None:
        """Write the SVG to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)


DIAGRAM_OPTIONS = ("nodes", "future", "window", "scale", "width", "title")


def as_run(target: object, what: str) -> Run:
    """``target`` as a Run (a Scenario is run first), or a TxlibError saying what to give."""
    if isinstance(target, Scenario):
        return target.run()
    if isinstance(target, Run):
        return target
    raise TxlibError(f"{what} needs a Run or a Scenario (e.g. txlib.simulate('2pc')), "
                     f"got {shown(target)}")


def check_step(step: object) -> int | None:
    """``step`` if it is None or a whole number of 0 or more, else a TxlibError."""
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 0):
        raise TxlibError(f"step must be a whole number of 0 or more (or None for the "
                         f"whole run), got {shown(step)}")
    return step


def diagram(target: Run | Scenario, step: int | None = None, **options: Any) -> Picture:
    """The space-time diagram of a run (or of a scenario, run first) as a picture.

    ``step`` stops the picture after that step; ``options`` go to
    :func:`txlib.viz.spacetime.spacetime_svg` (``window``, ``scale``, ``future``, ...).
    Without a ``window`` it draws at most :data:`~txlib.viz.spacetime.MAX_DRAWN_EVENTS`
    events (a long run: draw the part around a step with ``window=600``).
    """
    run = as_run(target, "diagram")
    check_step(step)
    for key, value in options.items():
        if key not in DIAGRAM_OPTIONS:
            raise bad_choice("diagram option", key, DIAGRAM_OPTIONS)
        number = key in ("window", "scale", "width")
        if number and value is not None and (isinstance(value, bool) or not isinstance(
                value, (int, float)) or not 0 < value < 1e6):
            raise TxlibError(f"diagram option {key} must be a positive number, "
                             f"got {shown(value)}")
    lanes = options.get("nodes")
    if lanes is not None:
        if isinstance(lanes, str) or not isinstance(lanes, (list, tuple)):
            raise TxlibError(f"diagram option nodes must be a list of node names, "
                             f"got {shown(lanes)}")
        for node in lanes:
            run.roster.check(node)
        if len(set(lanes)) != len(lanes):
            raise TxlibError(f"diagram option nodes names a node twice: {shown(lanes)}")
    title = options.get("title")
    if title is not None and not isinstance(title, str):
        raise TxlibError(f"diagram option title must be a string, got {shown(title)}")
    if title is not None and not all(c.isprintable() or c in "\n\t" for c in title):
        # an SVG (XML) cannot hold most control characters: the picture would not show
        raise TxlibError(f"diagram option title must be text without control characters, "
                         f"got {shown(title)}")
    if options.get("future", "hide") not in ("hide", "fade", "show"):
        raise bad_choice("diagram option future", options["future"], ("hide", "fade", "show"))
    options.setdefault("window", None)
    return Picture(spacetime_svg(run.trace, step, roles=run.roles, **options))


def state_diagram(
    target: Run | Scenario | str, role: str = "participant", step: int | None = None
) -> Picture:
    """One role's state machine as a picture: a protocol name (``"2pc"``) draws the bare
    machine; a run or scenario also places its nodes as they are after ``step`` (the
    end if None) and highlights the last transition taken in that step."""
    if isinstance(target, str):
        machines = {m.role: m for m in get_protocol(target).machines}
        if not isinstance(role, str) or role not in machines:  # a list is not hashable
            raise bad_choice("role", role, machines)
        if step is not None:  # a bare machine has no run to stop at a step
            raise TxlibError(f"state_diagram of a protocol name draws its bare machine, so "
                             f"step={shown(step)} means nothing; give a run or a scenario "
                             "to see its nodes at a step")
        return Picture(statechart_svg(machines[role], title=f"{target} {role} state machine"))
    run = as_run(target, "state_diagram")
    check_step(step)
    if not isinstance(role, str) or role not in run.machines:
        raise bad_choice("role", role, run.machines)
    return Picture(role_charts(run, run.steps if step is None else step)[role])
