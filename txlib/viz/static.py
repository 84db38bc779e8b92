"""Static pictures for notebooks and pages where widgets do not run (GitHub, nbviewer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..simulation.run import Run
from ..simulation.scenario import Scenario
from .spacetime import spacetime_svg


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


def diagram(target: Run | Scenario, step: int | None = None, **options: Any) -> Picture:
    """The space-time diagram of a run (or of a scenario, run first) as a picture.

    ``step`` stops the picture after that step; ``options`` go to
    :func:`txlib.viz.spacetime.spacetime_svg` (``window``, ``scale``, ``future``, ...).
    """
    run = target.run() if isinstance(target, Scenario) else target
    options.setdefault("window", None)
    return Picture(spacetime_svg(run.trace, step, roles=run.roles, **options))


def state_diagram(
    target: Run | Scenario | str, role: str = "participant", step: int | None = None
) -> Picture:
    """One role's state machine as a picture: a protocol name (``"2pc"``) draws the bare
    machine; a run or scenario also places its nodes as they are after ``step`` (the
    end if None) and highlights the last transition taken in that step."""
    from ..errors import bad_choice
    from ..protocols import get_protocol
    from .charts import role_charts
    from .statechart import statechart_svg

    if isinstance(target, str):
        machines = {m.role: m for m in get_protocol(target).machines}
        if role not in machines:
            raise bad_choice("role", role, machines)
        return Picture(statechart_svg(machines[role], title=f"{target} {role} state machine"))
    run = target.run() if isinstance(target, Scenario) else target
    if role not in run.machines:
        raise bad_choice("role", role, run.machines)
    return Picture(role_charts(run, run.steps if step is None else step)[role])
