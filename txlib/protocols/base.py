"""What every protocol declares: its nodes and roles, its configuration, how to build its
nodes and how to judge a run. Commit protocols share more: :class:`CommitProtocol`.

A new protocol is one module with a :class:`Protocol` subclass, plus one line in
:data:`txlib.protocols.PROTOCOLS`. Everything else (scenarios, the console, the lab,
the diagrams, the explorer) asks the protocol through this interface.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from ..engine.config import EngineConfig
from ..engine.faults import Fault
from ..engine.node import Role
from ..engine.records import LogRecord
from ..engine.roster import NodeSpec, Roster
from ..engine.statemachine import StateMachine
from ..errors import TxlibError, choices
from ..properties import INVARIANTS, History, Verdict, Violation, check_all, commit_outcome
from ..properties.outcomes import COMMIT_OUTCOMES
from . import bank

COORDINATOR = "coordinator"


class Logged(NamedTuple):
    """One durable log record as a recovery reads it: its name, its data, and the outcome
    writing it decided (``ctx.log(..., decides=...)``; None for a record that decides
    nothing). ``decides`` is what makes a record a decision, whatever its name."""

    record: str
    data: Mapping[str, Any]
    decides: str | None = None


def logged(records: Iterable[tuple[LogRecord, str | None]]) -> list[Logged]:
    """A store's records, ``(LogRecord, decides)`` as a real node keeps them, as a
    recovery reads them."""
    return [Logged(r.record, r.data, decides) for r, decides in records]


Logs = Mapping[str, Sequence[Logged]]
"""Each node's durable log records of one transaction, in order."""


@dataclass(frozen=True)
class Conclusion:
    """What a recovery can conclude about a transaction from the durable logs alone:
    ``outcome`` is ``"commit"``, ``"abort"``, or None when the logs cannot tell it safely
    (then nobody may guess: a node of the protocol must finish it); ``reason`` says why,
    plainly."""

    outcome: str | None
    reason: str


def logged_decision(logs: Logs) -> Conclusion | None:
    """The outcome a decision record of any node gives (a record whose ``decides`` says
    ``"commit"`` or ``"abort"``), None if no node logged one. A record marked
    ``heuristic`` says what happened to a participant's work outside the protocol (see
    :mod:`txlib.real.roles`), not what was decided, so it does not count. Records of both
    kinds mean the nodes already disagree: no outcome can restore atomicity."""
    said: dict[str, list[str]] = {"commit": [], "abort": []}
    for node, records in logs.items():
        for r in records:
            lines = said.get(r.decides or "")
            if lines is None or r.data.get("heuristic"):
                continue
            if f"{node} logged {r.record}" not in lines:
                lines.append(f"{node} logged {r.record}")
    if said["commit"] and said["abort"]:
        return Conclusion(None, f"the logs disagree ({said['commit'][0]}, "
                                f"{said['abort'][0]}): atomicity is already lost, resolve "
                                "it by hand")
    for outcome, found in said.items():
        if found:
            return Conclusion(outcome, found[0])
    return None


class Protocol:
    """A registered protocol: its nodes and roles, how to configure it, build its nodes
    and judge a run.

    ``machines`` are its roles' state machines, driving role first. ``participants`` are
    the nodes a scenario names (a count or names for commit protocols; fixed by the saga
    definition for sagas); :meth:`roster` adds the protocol's other nodes and says which
    role each plays and which must decide.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    config_class: ClassVar[type[EngineConfig]]
    machines: ClassVar[tuple[StateMachine, ...]]
    # Every outcome ``judge`` can give, and its kind (txlib.properties.outcomes).
    outcomes: ClassVar[dict[str, str]]
    # Options the exhaustive explorer uses unless told otherwise: the bounds that make
    # the protocol's state space finite (e.g. how many ballots a leader may start).
    explore_options: ClassVar[dict[str, Any]] = {}
    # True if what :meth:`roster`, :meth:`make_config`, :meth:`build` and the checks give
    # depends only on their arguments (no registry read at run time) and the roles hold
    # no per-node state: then scenarios that differ only in seed share one set-up
    # (checked, configured and built once; txlib.simulation.setup).
    shared_setup: ClassVar[bool] = False
    # Options its configuration class takes (shared with other protocols) that this
    # protocol never reads, each with why: giving one is refused, as it changes nothing.
    unused_options: ClassVar[dict[str, str]] = {}

    # --- nodes --------------------------------------------------------------------
    def default_participants(self, options: dict[str, Any]) -> tuple[str, ...]:
        """The participants when a scenario names none."""
        return ("p1", "p2", "p3")

    def check_participants(self, participants: tuple[str, ...], options: dict[str, Any]) -> None:
        """Reject participant names this protocol cannot use (commit protocols take any)."""

    def roster(self, participants: Sequence[str], options: dict[str, Any]) -> Roster:
        """Every node of a run with these participants, its role, and who must decide."""
        raise NotImplementedError

    # --- configuration and faults -------------------------------------------------
    def make_config(self, participants: Sequence[str], options: dict[str, Any]) -> Any:
        """The run's configuration from the scenario's options (validated)."""
        self.refuse_unused(options)
        return self.config_class.from_options(options)

    def refuse_unused(self, options: dict[str, Any]) -> None:
        """A TxlibError for an option this protocol never reads (see unused_options)."""
        for name in options:
            why = self.unused_options.get(name)
            if why is not None:
                raise TxlibError(f"option {name} changes nothing in {self.name}: {why}")

    def check_faults(self, faults: Sequence[Fault], roster: Roster,
                     options: dict[str, Any]) -> None:
        """Reject faults that make no sense for this protocol (e.g. a coordinator voting)."""

    def message_types(self, roster: Roster, config: Any) -> frozenset[str]:
        """Every message type its nodes handle, so every type they can send (a fault
        naming any other type could never match)."""
        return frozenset().union(*(role.message_types() for _, role in self.build(roster,
                                                                                   config)))

    def steps_at(self, node: str, options: dict[str, Any]) -> tuple[str, ...]:
        """The named steps ``node`` runs, which a ``fail_step`` fault can make fail
        (a saga's services run steps; commit protocols have none)."""
        return ()

    # --- running and judging ------------------------------------------------------
    def build(self, roster: Roster, config: Any) -> list[tuple[str, Role]]:
        """Each node's name and role object, in roster order."""
        raise NotImplementedError

    def judge(self, history: History) -> Verdict:
        """The outcome of a finished run (with its violations when they were needed)."""
        raise NotImplementedError

    def violations(self, history: History) -> list[Violation]:
        """Every broken invariant of a run, each with its step and a plain reason."""
        raise NotImplementedError

    def invariant_names(self, config: Any) -> tuple[str, ...] | None:
        """The name of every invariant :meth:`violations` checks in a run with
        ``config``, so that a misspelt name can be told from one that never broke (None:
        the protocol does not say; then neither is checked)."""
        return None


@dataclass(frozen=True)
class CommitConfig(EngineConfig):
    """Options of a commit protocol run (on top of the engine's network options).

    ``tx`` names the transaction. ``operations`` maps each participant to
    ``(kind, amount)`` (default: the first participant pays ``amount`` to each other
    one); ``balances`` gives initial balances (default 500, and 500 per payee for the
    payer, so the default transfer never overdraws). The timeouts are in
    simulated milliseconds; ``cooperative`` lets in-doubt 2PC participants ask peers.
    """

    AT_LEAST_ONE: ClassVar[frozenset[str]] = frozenset(
        {"vote_timeout", "prepare_timeout", "decision_timeout", "retry_interval", "ack_timeout"})

    tx: str = "T1"
    amount: int = 100
    operations: dict[str, Any] | None = None
    balances: dict[str, Any] | None = None
    vote_timeout: int = 60
    prepare_timeout: int = 200
    decision_timeout: int = 60
    retry_interval: int = 60
    ack_timeout: int = 60
    cooperative: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.tx, str) or not self.tx:
            raise TxlibError(f"option tx must be a non-empty string, got {self.tx!r}")


class CommitCoordinator(Role):
    """What every commit protocol's coordinator knows from the start: the participants, the
    configuration and each participant's operation. Subclasses add the protocol."""

    def __init__(self, participants: Sequence[str], config: CommitConfig,
                 operations: dict[str, bank.Operation]) -> None:
        super().__init__()
        self.participants = tuple(participants)
        self.config = config
        self.operations = operations


class CommitParticipant(Role):
    """What every commit protocol's participant knows from the start: its name, its peers
    (in order), the configuration, its operation and its account's balance.

    ``prepared_record`` names the forced record by which it votes YES: from then on its
    work is *prepared* (held, in doubt) until a ``COMMITTED`` or ``ABORT`` record
    resolves it. A real database turns that record into its prepared transaction
    (:mod:`txlib.real`); None if the participant never prepares (it commits at once)."""

    prepared_record: ClassVar[str | None] = "PREPARED"

    def __init__(self, name: str, participants: Sequence[str], config: CommitConfig,
                 operation: bank.Operation, balance: int) -> None:
        super().__init__()
        self.me = name
        self.order = {p: i for i, p in enumerate(participants)}
        self.peers = tuple(p for p in participants if p != name)
        self.config = config
        self.operation = operation
        self.balance = balance


# A commit protocol's verdict for each outcome (immutable, so made once).
_VERDICTS = {outcome: Verdict(outcome) for outcome in COMMIT_OUTCOMES}


class CommitProtocol(Protocol):
    """A commit protocol over bank accounts: the node ``"coordinator"`` and participants
    that must all decide. A protocol names its role classes; a variant (a teaching bug)
    is a subclass that names another one."""

    config_class: ClassVar[type[CommitConfig]] = CommitConfig
    outcomes: ClassVar[dict[str, str]] = COMMIT_OUTCOMES
    shared_setup: ClassVar[bool] = True
    coordinator_class: ClassVar[type[CommitCoordinator]]
    participant_class: ClassVar[type[CommitParticipant]]

    def roster(self, participants: Sequence[str], options: dict[str, Any]) -> Roster:
        return Roster.of([NodeSpec(COORDINATOR, "coordinator")],
                         [NodeSpec(p, "participant", decides=True) for p in participants])

    def make_config(self, participants: Sequence[str], options: dict[str, Any]) -> Any:
        self.refuse_unused(options)
        config = self.config_class.from_options(options)
        # Validate resource options against the participant names now, not mid-run.
        if config.operations is not None:
            bank.check_operations(config.operations, participants)
        bank.check_balances(config.balances, participants)
        return config

    def check_faults(self, faults: Sequence[Fault], roster: Roster,
                     options: dict[str, Any]) -> None:
        for f in faults:
            if f.kind == "vote_no" and f.node not in roster.deciders:
                raise TxlibError(
                    f"vote_no applies to a participant, got {f.node!r}; "
                    f"valid choices: {choices(roster.deciders)}"
                )
            if f.kind == "fail_step":
                raise TxlibError(f"fail_step makes a saga step fail; {self.name} has no steps "
                                 f"(make a participant vote NO with vote_no instead)")

    def build(self, roster: Roster, config: Any) -> list[tuple[str, Role]]:
        participants = roster.deciders
        ops, balances = self.resources(participants, config)
        nodes: list[tuple[str, Role]] = [
            (COORDINATOR, self.coordinator_class(participants, config, ops))]
        nodes += [(p, self.participant_class(p, participants, config, ops[p], balances[p]))
                  for p in participants]
        return nodes

    def judge(self, history: History) -> Verdict:
        return _VERDICTS[commit_outcome(history.decisions, history.roster.deciders,
                                        history.down)]

    def invariant_names(self, config: Any) -> tuple[str, ...]:
        return INVARIANTS

    def violations(self, history: History) -> list[Violation]:
        if history.events is None:
            raise TxlibError("this run was made with record=False, so it has no trace; "
                             "run it again with record=True")
        return check_all(history.events, history.roster.deciders)

    # --- recovery from the logs ---------------------------------------------------
    def outcome_from_logs(self, logs: Logs, roster: Roster, config: Any,
                          running: Collection[str] = ()) -> Conclusion:
        """What a recovery concludes about one transaction from every node's durable
        log (``logs``; a node missing from it logged nothing), as a transaction
        manager's recovery scan does for prepared work nobody will finish (XA's
        ``xa_recover``). ``running``: the nodes still at work on the transaction (up,
        not finished): they may yet write records, so a conclusion drawn from their
        silence must wait for them.

        2PC's rule, presumed abort: ``COMMIT`` in the coordinator's log means commit;
        otherwise abort, unless the coordinator is still deciding. A protocol that can
        decide without its coordinator's log (3PC, Paxos Commit) overrides this."""
        if any(r.record == "COMMIT" for r in logs.get(COORDINATOR, ())):
            return Conclusion("commit", "the coordinator's log has COMMIT")
        if COORDINATOR in running:
            return Conclusion(None, "the coordinator is still deciding")
        return Conclusion("abort", "presumed abort: no COMMIT in the coordinator's log")

    @staticmethod
    def resources(
        participants: Sequence[str], config: CommitConfig
    ) -> tuple[dict[str, bank.Operation], dict[str, int]]:
        """Each participant's operation and initial balance."""
        if config.operations is None:
            ops = bank.default_operations(participants, config.amount)
        else:
            ops = bank.check_operations(config.operations, participants)
        return ops, bank.check_balances(config.balances, participants)
