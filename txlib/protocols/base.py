"""What every commit protocol shares: its configuration and its registry entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..check import Violation, check_all, outcome
from ..engine.config import EngineConfig
from ..engine.faults import Fault
from ..engine.node import Role
from ..engine.statemachine import StateMachine
from ..errors import TxlibError, choices
from . import bank

if TYPE_CHECKING:
    from ..engine.world import World
    from ..run import Run

COORDINATOR = "coordinator"


@dataclass(frozen=True)
class CommitConfig(EngineConfig):
    """Options of a commit protocol run (on top of the engine's network options).

    ``tx`` names the transaction. ``operations`` maps each participant to
    ``(kind, amount)`` (default: the first participant pays ``amount`` to each other
    one); ``balances`` gives initial balances (default 500, and 500 per payee for the
    payer, so the default transfer never overdraws). The timeouts are in
    simulated milliseconds; ``cooperative`` lets in-doubt 2PC participants ask peers.
    """

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
        for name in ("vote_timeout", "prepare_timeout", "decision_timeout", "retry_interval",
                     "ack_timeout"):
            if getattr(self, name) < 1:
                raise TxlibError(f"option {name} must be at least 1, got {getattr(self, name)}")


class CommitCoordinator(Role):
    """What every commit protocol's coordinator knows from the start: the participants, the
    configuration and each participant's operation. Subclasses add the protocol."""

    def __init__(self, participants: Sequence[str], config: CommitConfig,
                 operations: dict[str, bank.Operation]) -> None:
        super().__init__()
        self.participants = tuple(participants)
        self.config = config
        self.operations = operations


class Protocol:
    """A registered protocol: how to configure it, build its nodes and judge a run.

    ``coordinator`` names the node that drives the protocol; ``participants`` are the
    other nodes (a count or names for commit protocols; fixed by the saga definition
    for sagas).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    coordinator: ClassVar[str] = COORDINATOR
    config_class: ClassVar[type[EngineConfig]] = CommitConfig
    machines: ClassVar[tuple[StateMachine, ...]]

    def default_participants(self, options: dict[str, Any]) -> tuple[str, ...]:
        """The participants when a scenario names none."""
        return ("p1", "p2", "p3")

    def check_participants(
        self, participants: tuple[str, ...], options: dict[str, Any]
    ) -> None:
        """Reject participant names this protocol cannot use (commit protocols take any)."""

    def outcome(self, world: World) -> str:
        """Classify a finished world (see :func:`txlib.check.outcome`)."""
        decisions = {n: s.decision for n, s in world.nodes.items()}
        participants = [n for n in world.nodes if n != self.coordinator]
        return outcome(decisions, participants, world.down)

    def violations(self, run: Run) -> list[Violation]:
        """Broken safety invariants of ``run`` (atomicity, stability, validity)."""
        return check_all(run.trace, run.participants)

    def make_config(self, participants: Sequence[str], options: dict[str, Any]) -> Any:
        config = self.config_class.from_options(options)
        # Validate resource options against the participant names now, not mid-run.
        if config.operations is not None:
            bank.check_operations(config.operations, participants)
        bank.check_balances(config.balances, participants)
        return config

    def check_faults(
        self, faults: Sequence[Fault], participants: Sequence[str], options: dict[str, Any]
    ) -> None:
        """Reject faults that make no sense for this protocol (e.g. a coordinator voting)."""
        for f in faults:
            if f.kind == "vote_no" and f.node not in participants:
                raise TxlibError(
                    f"vote_no applies to a participant, got {f.node!r}; "
                    f"valid choices: {choices(participants)}"
                )

    def build(self, participants: Sequence[str], config: Any) -> list[tuple[str, Role]]:
        raise NotImplementedError

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
