"""One transaction of a real run, once it is over: what happened and how it is judged.

A :class:`RealRun` is judged like any other run: its values become a
:class:`txlib.properties.History`, and its protocol's own ``judge`` and ``violations``
(2PC's, 3PC's, Paxos Commit's) give its outcome and broken invariants. On top of that it checks what
only real databases can get wrong (:meth:`RealRun.problems`): money created or
destroyed, prepared transactions or row locks left behind, data that disagrees with
the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..engine.records import LogRecord
from ..engine.roster import Roster
from ..engine.trace import Trace
from ..errors import TxlibError
from ..properties import History, Verdict, Violation
from ..protocols import Protocol, bank, get_protocol
from ..protocols.base import COORDINATOR
from ..protocols.two_phase import TwoPhaseCommit

PROTOCOL = TwoPhaseCommit.name
"""The registered protocol whose roles the real nodes run when none is named."""
HEURISTIC_MIXED = "heuristic mixed"
NO_TRACE = "this run was made with record=False, so it has no trace"


def protocol(name: str = PROTOCOL) -> Protocol:
    """The registered protocol ``name`` of a real run: it names its nodes and judges it."""
    return get_protocol(name)


@dataclass(frozen=True, eq=False)
class RealRun:
    """One transaction of a real run, once every node is back and has finished it.

    ``balances`` are the committed balances read from the databases, ``before`` those
    when the transaction began; ``in_doubt`` lists prepared transactions still in a
    participant's database, ``locked`` the participants whose row is still locked.
    ``outcome`` and ``violations`` are the protocol's judgement of :meth:`history`;
    ``problems()`` checks everything a crash test must hold. ``protocol_name`` names
    the registered protocol the nodes ran; ``finishers`` are the nodes that must finish
    and agree (the coordinator and the participants; not Paxos Commit's acceptors).
    """

    backend: str
    tx: str
    participants: tuple[str, ...]
    settled: bool
    decisions: dict[str, str | None]
    states: dict[str, str]
    down: frozenset[str]
    before: dict[str, int]
    balances: dict[str, int]
    operations: dict[str, tuple[str, int]]
    in_doubt: dict[str, tuple[str, ...]]
    locked: tuple[str, ...]
    crashes: tuple[dict[str, Any], ...]
    unfired: tuple[str, ...]
    fsyncs: dict[str, int]
    elapsed: float
    logs: dict[str, tuple[LogRecord, ...]]
    options: dict[str, Any]
    workdir: Path
    trace_or_none: Trace | None = field(repr=False)
    protocol_name: str = PROTOCOL
    finishers: tuple[str, ...] = ()

    # --- the run as its protocol sees it ----------------------------------------------------
    @property
    def protocol(self) -> Protocol:
        return protocol(self.protocol_name)

    @property
    def label(self) -> str:
        """The protocol as a summary names it (``2PC``, ``3PC``, ``PAXOS-COMMIT``)."""
        return self.protocol_name.upper()

    @property
    def roster(self) -> Roster:
        """Every node of the run, its role, and who must decide."""
        return self.protocol.roster(self.participants, self.options)

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.roster.names

    @property
    def roles(self) -> dict[str, str]:
        return self.roster.roles

    @property
    def scenario_options(self) -> dict[str, Any]:
        """The protocol options of this transaction, as a simulated scenario takes them."""
        return {**self.options, "tx": self.tx,
                "operations": {p: list(op) for p, op in self.operations.items()},
                "balances": dict(self.before)}

    @property
    def trace(self) -> Trace:
        """Every event of the transaction, in the ordinary txlib trace format."""
        if self.trace_or_none is None:
            raise TxlibError(NO_TRACE)
        return self.trace_or_none

    def history(self) -> History:
        """The run as the plain values its protocol judges."""
        trace = self.trace_or_none
        return History(
            roster=self.roster,
            config=self.protocol.make_config(self.participants, self.scenario_options),
            decisions=self.decisions, states=self.states, logs=self.logs, down=self.down,
            steps=trace.last_step if trace is not None else 0, events=trace,
        )

    @cached_property
    def verdict(self) -> Verdict:
        return self.protocol.judge(self.history())

    @property
    def outcome(self) -> str:
        """The protocol's outcome; ``"blocked"`` if the nodes had not all finished;
        ``"heuristic mixed"`` if some participant's prepared work was resolved outside
        the protocol against the decision (see :attr:`heuristics`)."""
        if not self.settled:
            return "blocked"
        return HEURISTIC_MIXED if self.heuristics else self.verdict.outcome

    @property
    def heuristics(self) -> dict[str, str]:
        """Participants whose prepared work was resolved the other way from the
        decision (XA's heuristic outcomes): ``{participant: "rollback" | "commit"}``, as
        the coordinator's ``HEURISTIC`` records and the participants' logs report them."""
        out: dict[str, str] = {}
        for r in self.logs.get(COORDINATOR, ()):
            if r.record == "HEURISTIC":
                out[str(r.data.get("participant"))] = str(r.data.get("outcome"))
        for p in self.participants:
            for r in self.logs.get(p, ()):
                if r.data.get("heuristic"):
                    out[p] = str(r.data["heuristic"])
        return out

    @cached_property
    def violations(self) -> tuple[Violation, ...]:
        """The protocol's safety invariants (atomicity, stability, validity) over the trace."""
        if self.trace_or_none is None:
            raise TxlibError(NO_TRACE)
        if self.verdict.violations is not None:
            return self.verdict.violations
        return tuple(self.protocol.violations(self.history()))

    # --- what real databases must hold ----------------------------------------------------
    def expected_balances(self) -> dict[str, int]:
        """What the balances must be, given the outcome."""
        if self.outcome != "committed":
            return dict(self.before)
        return {p: bank.apply(b, self.operations[p]) for p, b in self.before.items()}

    def problems(self) -> list[str]:
        """Everything wrong with the end state (empty when all is well): not settled,
        money created or destroyed, a transaction still in doubt, a lock still held,
        nodes that disagree, data that disagrees with the decision, a broken invariant."""
        out = []
        if not self.settled:
            out.append(f"{self.tx} did not finish in time; states: {self.states}")
        for p, what in self.heuristics.items():
            out.append(f"heuristic {what} at {p}: its prepared work was resolved outside "
                       "the protocol, against the decision; the outcome is mixed. An "
                       "operator must repair the data by hand (e.g. a compensating "
                       "transfer), then tell the coordinator to forget it")
        moved = sum(b - a for a, b in zip(self.before.values(),
                                          self.expected_balances().values(), strict=True))
        # A transfer moves money (conserved); a lone debit (one participant) removes it.
        if sum(self.balances.values()) != sum(self.before.values()) + moved:
            out.append(f"money is not conserved: {self.before} became {self.balances}")
        for p, gids in self.in_doubt.items():
            if gids:
                out.append(f"{p} still has transaction(s) in doubt: {list(gids)}")
        if self.locked:
            out.append(f"a lock is still held on {list(self.locked)}")
        finishers = self.finishers or self.nodes
        values = {self.decisions.get(n) for n in finishers}
        helpers = {self.decisions.get(n) for n in self.nodes if n not in finishers}
        if len(values) != 1 or None in values or not helpers <= values | {None}:
            out.append(f"the nodes do not agree: {self.decisions}")
        elif self.balances != self.expected_balances():
            out.append(f"the data disagrees with the {self.outcome} outcome: expected "
                       f"{self.expected_balances()}, found {self.balances}")
        if self.trace_or_none is not None:
            out.extend(str(v) for v in self.violations)
        return out

    # --- showing it -------------------------------------------------------------------------
    def _crashes(self) -> str:
        return "; ".join(f"{c['node']} at {c['how']}" + (" (power cut)" if c.get("power")
                                                          else "")
                         for c in self.crashes) or "none"

    def summary(self) -> str:
        lines = [f"real {self.label} over {self.backend}, {self.tx}: {self.outcome} in "
                 f"{self.elapsed * 1000:.0f} ms; crashes: {self._crashes()}",
                 "decisions: " + ", ".join(f"{n}={d}" for n, d in self.decisions.items()),
                 f"balances: {self.before} -> {self.balances}"]
        lines += [f"  ! {p}" for p in self.problems()]
        lines += [f"  ? {u}" for u in self.unfired]
        return "\n".join(lines)

    def as_run(self) -> Any:
        """This run as a :class:`txlib.Run`, for the console (``txlib.console.show``)
        and ``txlib.diagram``."""
        from ..simulation.run import Run
        from ..simulation.scenario import Scenario

        scenario = Scenario(
            self.protocol_name, participants=self.participants,
            options=self.scenario_options, name=f"real {self.label} over {self.backend}",
            description="crashes: " + self._crashes(),
        )
        trace = self.trace
        return Run(
            scenario=scenario, outcome=self.outcome, decisions=dict(self.decisions),
            participants=self.participants, roles=self.roles, states=dict(self.states),
            down=self.down, logs=dict(self.logs),
            locks={n: ("balance",) if n in self.locked else () for n in self.nodes},
            end_time=trace[-1].time if len(trace) else 0, steps=trace.last_step,
            stopped_by="every node finished" if self.settled else "timed out",
            unfired_faults=(), _trace=trace,
        )
