"""A finished run: its scenario, trace, outcome, decisions, metrics and violations."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from ..engine.faults import Fault
from ..engine.records import LogRecord
from ..engine.roster import Roster
from ..engine.statemachine import StateMachine
from ..engine.trace import Trace
from ..engine.world import World
from ..errors import TxlibError
from ..properties import History, Metrics, Verdict, Violation, measure
from ..protocols import Protocol, get_protocol

if TYPE_CHECKING:
    from .scenario import Scenario


NodeValues = tuple[dict[str, str | None], dict[str, str], dict[str, tuple[LogRecord, ...]],
                   dict[str, str], dict[str, tuple[str, ...]]]


def node_values(world: World) -> NodeValues:
    """Each node's decision, state, log, role name and locks in ``world`` now (what a
    protocol judges, then what a :class:`Run` adds; one pass over the nodes)."""
    decisions: dict[str, str | None] = {}
    states: dict[str, str] = {}
    logs: dict[str, tuple[LogRecord, ...]] = {}
    roles: dict[str, str] = {}
    locks: dict[str, tuple[str, ...]] = {}
    for n, s in world.nodes.items():
        decisions[n] = s.decision
        states[n] = s.state
        logs[n] = tuple(s.log)
        roles[n] = s.role.name
        locks[n] = s.locks
    return decisions, states, logs, roles, locks


def history_of_world(world: World, roster: Roster, config: Any,
                     values: NodeValues | None = None) -> History:
    """What ``world`` holds now, as the plain values a protocol judges (``values``: its
    :func:`node_values`, if the caller has them already)."""
    decisions, states, logs, _, _ = node_values(world) if values is None else values
    return made(History, {"roster": roster, "config": config, "decisions": decisions,
                          "states": states, "logs": logs, "down": world.down,
                          "steps": world.step, "events": world.trace})


T = TypeVar("T")


def made(cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of the frozen dataclass ``cls`` (without ``__slots__`` or
    ``__post_init__``) holding ``fields``, every one of its fields: what ``cls(**fields)``
    makes, without the generated ``__init__`` setting each field through
    ``object.__setattr__``, which cost as much as judging a run. ``fields`` becomes the
    instance's own ``__dict__`` (not copied): pass a new dict."""
    obj: T = object.__new__(cls)
    object.__setattr__(obj, "__dict__", fields)
    return obj


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
    _violations: tuple[Violation, ...] | None = field(default=None, repr=False)

    @classmethod
    def of_world(cls, scenario: Scenario, world: World, verdict: Verdict | None = None,
                 values: NodeValues | None = None) -> Run:
        """The Run of a finished ``world`` that simulated ``scenario``, judged by its
        protocol (or by ``verdict``, when the caller judged it already; ``values``:
        the world's :func:`node_values`, if the caller has them already)."""
        if values is None:
            values = node_values(world)
        if verdict is None:
            protocol = get_protocol(scenario.protocol)
            roster = protocol.roster(scenario.participants, scenario.options)
            config = protocol.make_config(scenario.participants, scenario.options)
            verdict = protocol.judge(history_of_world(world, roster, config, values))
        decisions, states, logs, roles, locks = values
        return made(cls, {
            "scenario": scenario,
            "outcome": verdict.outcome,
            "decisions": decisions,
            "participants": scenario.participants,
            "roles": roles,
            "states": states,
            "down": world.down,
            "logs": logs,
            "locks": locks,
            "end_time": world.time,
            "steps": world.step,
            "stopped_by": world.stopped_by,
            "unfired_faults": tuple(world.unfired_faults()),
            "_trace": None if world.trace is None else Trace(world.trace, list(roles),
                                                              world.volatile),
            "_violations": verdict.violations,
        })

    @property
    def protocol(self) -> Protocol:
        """The registered protocol this run simulated."""
        return get_protocol(self.scenario.protocol)

    @property
    def roster(self) -> Roster:
        """Every node of the run, its role, and who must decide."""
        return self.protocol.roster(self.scenario.participants, self.scenario.options)

    def history(self) -> History:
        """The run as the plain values its protocol judges."""
        scenario = self.scenario
        return History(
            roster=self.roster,
            config=self.protocol.make_config(scenario.participants, scenario.options),
            decisions=self.decisions,
            states=self.states,
            logs=self.logs,
            down=self.down,
            steps=self.steps,
            events=self._trace,
        )

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node, coordinator first."""
        return tuple(self.roles)

    @property
    def machines(self) -> dict[str, StateMachine]:
        """Each role's declared state machine, by role name (coordinator first)."""
        declared = {m.role: m for m in self.protocol.machines}
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
        if self._violations is not None:
            return self._violations
        return tuple(self.protocol.violations(self.history()))

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
