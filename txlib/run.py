"""A finished run: its scenario, trace, outcome, decisions, metrics and violations."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from .check import Metrics, Violation, measure
from .engine.faults import Fault
from .engine.records import LogRecord
from .engine.statemachine import StateMachine
from .engine.trace import Trace
from .errors import TxlibError

if TYPE_CHECKING:
    from .engine.world import World
    from .scenario import Scenario


@dataclass(frozen=True, eq=False)
class Run:
    """The result of simulating a :class:`~txlib.Scenario`.

    ``outcome`` is ``"committed"``, ``"aborted"``, ``"blocked"`` or ``"inconsistent"``.
    ``decisions`` maps every node to its decision (``"commit"``, ``"abort"`` or None).
    ``unfired_faults`` lists faults that never happened or had no effect, with why.
    """

    scenario: Scenario
    outcome: str
    decisions: dict[str, str | None]
    participants: tuple[str, ...]
    roles: dict[str, str]
    states: dict[str, str]
    down: frozenset[str]
    logs: dict[str, tuple[LogRecord, ...]]
    locks: dict[str, tuple[str, ...]]
    end_time: int
    steps: int
    stopped_by: str
    unfired_faults: tuple[tuple[Fault, str], ...]
    _trace: Trace | None = field(repr=False)

    @classmethod
    def of_world(cls, scenario: Scenario, world: World, outcome: str) -> Run:
        """The Run of a finished ``world`` that simulated ``scenario``."""
        slots = world.nodes
        return cls(
            scenario=scenario,
            outcome=outcome,
            decisions={n: s.decision for n, s in slots.items()},
            participants=scenario.participants,
            roles={n: s.role.name for n, s in slots.items()},
            states={n: s.state for n, s in slots.items()},
            down=world.down,
            logs={n: tuple(s.log) for n, s in slots.items()},
            locks={n: s.locks for n, s in slots.items()},
            end_time=world.time,
            steps=world.step,
            stopped_by=world.stopped_by,
            unfired_faults=tuple(world.unfired_faults()),
            _trace=None if world.trace is None else Trace(world.trace, list(slots),
                                                          world.volatile),
        )

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node, coordinator first."""
        return tuple(self.roles)

    @property
    def machines(self) -> dict[str, StateMachine]:
        """Each role's declared state machine, by role name (coordinator first)."""
        from .protocols import get_protocol  # local: protocols import run indirectly

        declared = {m.role: m for m in get_protocol(self.scenario.protocol).machines}
        return {role: declared[role] for role in dict.fromkeys(self.roles.values())}

    @property
    def recorded(self) -> bool:
        return self._trace is not None

    @property
    def trace(self) -> Trace:
        """Every event of the run (raises if the run was made with ``record=False``)."""
        if self._trace is None:
            raise TxlibError("this run was made with record=False, so it has no trace; "
                             "run it again with record=True")
        return self._trace

    @cached_property
    def metrics(self) -> Metrics:
        """Messages, delays, forced writes, blocked and lock times (see Metrics)."""
        return measure(self.trace, self.participants, self.end_time)

    @cached_property
    def violations(self) -> tuple[Violation, ...]:
        """Broken safety invariants, each with the step and a plain-language reason."""
        from .protocols import get_protocol  # local: protocols import run indirectly

        return tuple(get_protocol(self.scenario.protocol).violations(self))

    def summary(self) -> str:
        """A few lines for a learner: outcome, decisions, violations, unfired faults."""
        lines = [f"{self.scenario.protocol}: {self.outcome} "
                 f"({self.steps} steps, time {self.end_time}, stopped: {self.stopped_by})"]
        lines.append("decisions: " + ", ".join(
            f"{n}={d or 'undecided'}" + (" (down)" if n in self.down else "")
            for n, d in self.decisions.items()))
        lines.extend(f"  ! {v}" for v in self.violations)
        lines.extend(f"  ? fault '{f.describe()}' had no effect: {why}"
                     for f, why in self.unfired_faults)
        return "\n".join(lines)
