"""txlib: a small, exact simulator of distributed-transaction protocols, for teaching.

>>> import txlib
>>> run = txlib.simulate("2pc", participants=2)
>>> run.outcome
'committed'
"""

from .course import exercise, exercises
from .engine.faults import (
    Fault,
    Trigger,
    crash,
    delay,
    drop,
    duplicate,
    fail_step,
    heal,
    partition,
    recover,
    slow,
    vote_no,
)
from .errors import ProtocolError, TxlibError
from .explorer.worlds import explore
from .presets import scenario, scenarios
from .sagas import Retry, StepFailed
from .simulation import Run, Saga, Scenario, simulate
from .viz import console
from .viz.grid import fault_grid

__version__ = "0.1.0"


def lab(target="2pc", **kwargs):  # type: ignore[no-untyped-def]
    """Open the step-by-step lab widget (see :func:`txlib.viz.widgets.lab`)."""
    from .viz.widgets import lab as _lab

    return _lab(target, **kwargs)


def compare(*targets, **kwargs):  # type: ignore[no-untyped-def]
    """Show two runs (or more) side by side (see :func:`txlib.viz.compare.compare`)."""
    from .viz.compare import compare as _compare

    return _compare(*targets, **kwargs)


def diagram(target, step=None, **options):  # type: ignore[no-untyped-def]
    """The space-time diagram of a run as an inline SVG picture."""
    from .viz.static import diagram as _diagram

    return _diagram(target, step, **options)


def state_diagram(target, role="participant", step=None):  # type: ignore[no-untyped-def]
    """A role's state machine as an inline SVG picture (with a run's nodes placed)."""
    from .viz.static import state_diagram as _state_diagram

    return _state_diagram(target, role, step)


__all__ = [
    "Fault",
    "ProtocolError",
    "Retry",
    "Run",
    "Saga",
    "Scenario",
    "StepFailed",
    "Trigger",
    "TxlibError",
    "compare",
    "console",
    "crash",
    "delay",
    "diagram",
    "drop",
    "duplicate",
    "exercise",
    "exercises",
    "explore",
    "fail_step",
    "fault_grid",
    "heal",
    "lab",
    "partition",
    "recover",
    "scenario",
    "scenarios",
    "simulate",
    "slow",
    "state_diagram",
    "vote_no",
]
