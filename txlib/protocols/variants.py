"""Teaching variants: the real protocols with one rule broken on purpose.

A lesson, an exercise or a test that wants to show what a rule is for runs one of
these on the same engine: the counterexample is a real run, not a story. Each variant
is a subclass of the real protocol that names other role classes, and keeps the real
protocol's ``name`` so its runs replay (and open in the lab) as the correct protocol.

- :class:`Impatient2PC`: a participant that voted YES aborts on its own when the
  decision is late (2PC's one forbidden move);
- :class:`Eager2PC`: a coordinator that commits on the first YES;
- :func:`lazy_2pc`: 2PC with some of its forced log records written lazily (a crash then
  loses them), and optionally some impatient participants;
- :class:`LazyPrecommit3PC`: 3PC whose participants write PRECOMMITTED lazily;
- :class:`PreFix3PC`: txlib's 3PC before the bugs its explorer found were fixed (in the
  termination protocol it read the coordinator's PRECOMMIT as "undecided", and a
  participant that restarted terminated once every node answered, though some never
  went down); :class:`RestartLeads3PC` has the second bug only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..engine.node import Context
from ..engine.records import Message
from ..errors import TxlibError, choices
from . import three_phase as three
from . import two_phase as two
from .base import COORDINATOR

LAZY_CHOICES = ("PREPARED", "COMMIT", "COMMITTED")


class LazyContext:
    """A node's context in which some log records are written lazily instead of forced."""

    def __init__(self, ctx: Context, lazy: frozenset[str]) -> None:
        self._ctx = ctx
        self._lazy = lazy

    def log(self, record: str, *, forced: bool, decides: str | None = None, **data: Any) -> None:
        self._ctx.log(record, forced=forced and record not in self._lazy, decides=decides, **data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)


# --- 2PC ----------------------------------------------------------------------------------
class ImpatientParticipant(two.Participant):
    """Broken on purpose: gives up and aborts when the decision is late, after voting YES."""

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "decision" and ctx.state == "PREPARED":
            self._abort_alone(ctx)
        else:
            super().on_timer(ctx, name)


class Impatient2PC(two.TwoPhaseCommit):
    """2PC whose participants are all :class:`ImpatientParticipant`."""

    participant_class = ImpatientParticipant


class EagerCoordinator(two.Coordinator):
    """Broken on purpose: commits as soon as the first YES arrives."""

    def on_YES(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "WAIT":
            return
        ctx.cancel_timer("votes")
        ctx.log("COMMIT", forced=True, decides="commit", tx=self.config.tx)
        ctx.set_state("COMMITTED")
        ctx.vars["acks"] = set()
        ctx.broadcast(self.participants, "COMMIT", tx=self.config.tx)
        ctx.set_timer("acks", self.config.ack_timeout)


class Eager2PC(two.TwoPhaseCommit):
    """2PC whose coordinator is an :class:`EagerCoordinator`."""

    coordinator_class = EagerCoordinator


class _LazyCoordinator(two.Coordinator):
    lazy: frozenset[str] = frozenset()

    def on_message(self, ctx: Context, msg: Message) -> None:
        super().on_message(LazyContext(ctx, self.lazy), msg)  # type: ignore[arg-type]

    def on_timer(self, ctx: Context, name: str) -> None:
        super().on_timer(LazyContext(ctx, self.lazy), name)  # type: ignore[arg-type]


class _LazyParticipant(two.Participant):
    lazy: frozenset[str] = frozenset()
    impatient: frozenset[str] = frozenset()

    def on_message(self, ctx: Context, msg: Message) -> None:
        super().on_message(LazyContext(ctx, self.lazy), msg)  # type: ignore[arg-type]

    def on_timer(self, ctx: Context, name: str) -> None:
        if self.me in self.impatient and name == "decision" and ctx.state == "PREPARED":
            self._abort_alone(ctx)  # the broken rule: abort although it voted YES
            return
        super().on_timer(LazyContext(ctx, self.lazy), name)  # type: ignore[arg-type]


def lazy_2pc(lazy: Iterable[str] = (), impatient: Iterable[str] = ()) -> two.TwoPhaseCommit:
    """2PC with the log records named in ``lazy`` (of :data:`LAZY_CHOICES`) written
    lazily, and the participants named in ``impatient`` aborting on their own."""
    lazy_set = frozenset(lazy)
    for record in sorted(lazy_set):
        if record not in LAZY_CHOICES:
            raise TxlibError(f"lazy: {record!r} is not a record 2PC forces; "
                             f"valid choices: {choices(LAZY_CHOICES)}")
    coordinator = type("LazyCoordinator", (_LazyCoordinator,), {"lazy": lazy_set})
    participant = type("LazyParticipant", (_LazyParticipant,),
                       {"lazy": lazy_set, "impatient": frozenset(impatient)})
    variant = type("Lazy2PC", (two.TwoPhaseCommit,),
                   {"coordinator_class": coordinator, "participant_class": participant})
    return variant()  # type: ignore[no-any-return]


# --- 3PC ----------------------------------------------------------------------------------
class LazyPrecommitParticipant(three.Participant):
    """Broken on purpose: writes PRECOMMITTED lazily, so a crash forgets it."""

    def on_message(self, ctx: Context, msg: Message) -> None:
        super().on_message(LazyContext(ctx, frozenset({"PRECOMMITTED"})),  # type: ignore[arg-type]
                           msg)


class LazyPrecommit3PC(three.ThreePhaseCommit):
    """3PC whose participants are :class:`LazyPrecommitParticipant`."""

    participant_class = LazyPrecommitParticipant


class RestartLeadsParticipant(three.Participant):
    """A 3PC participant with the second bug the explorer found: after its own restart
    it terminates, and may lead, once every node has answered, as if all of them had
    restarted too. A node that never went down may be terminating at the same time
    and decide the other way (two crashes and restarts split it)."""

    def _total_failure_over(self, term: dict[str, str], restarted: set[str]) -> bool:
        return len(term) == len(self.order) + 1  # every node answered

    def _leader(self, term: dict[str, str], restarted: set[str]) -> str:
        return min(term, key=self.order.__getitem__)


class RestartLeads3PC(three.ThreePhaseCommit):
    """txlib's 3PC before its second fix (see :class:`RestartLeadsParticipant`)."""

    participant_class = RestartLeadsParticipant


class PreFixParticipant(RestartLeadsParticipant):
    """A 3PC participant with both bugs the explorer found: in the termination
    protocol it also reads the coordinator's PRECOMMIT as "undecided" (one crash and a
    restart split it)."""

    def on_STATE(self, ctx: Context, msg: Message) -> None:
        term = ctx.vars.get("term")
        if term is not None:
            state = msg.payload["state"]
            if msg.src == COORDINATOR:  # only its decision matters, not how far it got
                state = {"ENDED": "COMMITTED"}.get(state, state)
                state = state if state in ("COMMITTED", "ABORTED") else "UNDECIDED"
            term[msg.src] = state


class PreFix3PC(three.ThreePhaseCommit):
    """txlib's 3PC before both fixes (see :class:`PreFixParticipant`)."""

    participant_class = PreFixParticipant
