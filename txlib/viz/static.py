"""Static pictures for notebooks and pages where widgets do not run (GitHub, nbviewer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..run import Run
from ..scenario import Scenario
from .spacetime import spacetime_svg


@dataclass(frozen=True)
class Picture:
    """An SVG that Jupyter displays inline (``_repr_svg_``) and that saves to a file."""

    svg: str

    def _repr_svg_(self) -> str:
        return self.svg

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
