"""Which protocols real nodes run, and their roles over real databases.

Any registered commit protocol whose participants *prepare* (they vote YES with a
forced record, their ``prepared_record``, and hold their work until ``COMMITTED`` or
``ABORT``) runs over real processes: 2PC, 3PC and Paxos Commit among the built-in ones.
Its roster says which nodes to start (Paxos Commit's acceptors too), its own role
classes run unchanged, and its own ``judge`` judges the run. Only the participant's
resource differs, so its role class gets :class:`RealParticipant` mixed in: the
balance is a database row, a database that cannot prepare makes it vote NO by the
protocol's own NO path, and prepared work resolved outside the protocol is reported as
a heuristic outcome. 2PC adds XA's reporting of heuristic outcomes to the coordinator
(:data:`ADAPTED`, by role class).

A participant's store speaks the database's words: the record that prepares the work
is stored as ``PREPARED`` whatever the protocol calls it (3PC's ``READY``), and read
back under the protocol's name (:func:`store_record`, :func:`protocol_record`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..engine.config import TIMING_SUFFIXES
from ..engine.node import Context, Role
from ..engine.records import LogRecord, Message
from ..errors import TxlibError, bad_choice, choices
from ..protocols import PROTOCOLS, CommitProtocol, is_built_in
from ..protocols import two_phase as _two_phase
from ..protocols.base import COORDINATOR, CommitParticipant
from .stores import HeuristicOutcome, PrepareFailed

STORE_PREPARED = "PREPARED"
"""What a participant's store calls the record that prepares its work."""
REAL_SCALE = 20
"""A protocol's own timing options (``*_timeout``, ``*_interval``, ``*_gap``) not set by
:data:`txlib.real.system.REAL_TIMEOUTS` run this many wall-clock ms per simulated ms."""


def real_protocols() -> tuple[str, ...]:
    """The registered protocols real nodes can run: commit protocols whose participants
    prepare."""
    return tuple(name for name, p in PROTOCOLS.items() if isinstance(p, CommitProtocol)
                 and p.participant_class.prepared_record is not None and is_built_in(name))


def real_protocol(name: object) -> CommitProtocol:
    """The registered protocol ``name`` if real nodes can run it; else a TxlibError
    naming the ones they can."""
    valid = real_protocols()
    if isinstance(name, str) and name in PROTOCOLS and not is_built_in(name):
        raise TxlibError(
            f"protocol {name!r} was registered in this Python session, but real nodes are "
            "fresh processes that know only txlib's own protocols; valid choices: "
            f"{choices(valid)}")
    if isinstance(name, str) and name in PROTOCOLS and name not in valid:
        raise TxlibError(
            f"protocol {name!r} cannot run over real processes: real nodes run a commit "
            "protocol whose participants prepare their work in a database and hold it "
            "until the outcome (sagas, TCC and independent local commits prepare "
            f"nothing); valid choices: {choices(valid)}")
    if not isinstance(name, str) or name not in valid:
        raise bad_choice("protocol for real runs", name, valid)
    protocol = PROTOCOLS[name]
    assert isinstance(protocol, CommitProtocol)  # real_protocols() holds only those
    return protocol


def real_timing(protocol: CommitProtocol) -> dict[str, int]:
    """The protocol's own timing options, its simulated defaults scaled to wall-clock
    ms (:data:`REAL_SCALE`)."""
    return {f.name: f.default * REAL_SCALE
            for f in dataclasses.fields(protocol.config_class)
            if f.name.endswith(TIMING_SUFFIXES) and isinstance(f.default, int)}


def prepared_record(protocol: CommitProtocol) -> str:
    """The protocol's name for the participant's record that prepares its work."""
    return protocol.participant_class.prepared_record or STORE_PREPARED


def store_record(protocol: CommitProtocol, record: str) -> str:
    """A participant's record as its store names it."""
    return STORE_PREPARED if record == prepared_record(protocol) else record


def protocol_record_name(protocol: CommitProtocol, record: str) -> str:
    """A participant's record name in its store, as the protocol names it."""
    return prepared_record(protocol) if record == STORE_PREPARED else record


def protocol_record(protocol: CommitProtocol, record: LogRecord) -> LogRecord:
    """A participant's record read back from its store, as the protocol names it."""
    return record._replace(record=protocol_record_name(protocol, record.record))


# --- the roles ----------------------------------------------------------------------------
class RealParticipant(CommitParticipant):
    """Mixed in before a protocol's participant class: the participant whose account is a
    real database row (``account``, the node's store, set by the host).

    - ``balance`` is read from the database (opening the local transaction where the
      database has one);
    - a :class:`~txlib.real.stores.PrepareFailed` (no free slot, a lost connection, the
      row held by another transaction) makes the participant release what it took and
      handle the same message again as if marked ``vote_no``: it votes NO by its
      protocol's own path, where the simulator's participant never fails to write;
    - a :class:`~txlib.real.stores.HeuristicOutcome` (prepared work resolved outside the
      protocol the other way from the decision) is reported by :meth:`heuristic`.
    """

    account: Any = None
    cannot_prepare = False  # the database refused to prepare: vote NO (see the host)

    @property
    def balance(self) -> int:
        return int(self.account.balance(self.config.tx))

    @balance.setter
    def balance(self, value: int) -> None:
        """The simulator's initial balance is not used: the database holds the real one."""

    def on_message(self, ctx: Context, msg: Message) -> None:
        try:
            super().on_message(ctx, msg)
        except PrepareFailed as exc:
            if self.cannot_prepare:
                raise
            ctx.note("effect", f"cannot prepare: {exc}")
            ctx.unlock()
            self.cannot_prepare = True
            super().on_message(ctx, msg)
        except HeuristicOutcome as h:
            self.heuristic(ctx, h.outcome, str(h), log=True)

    def heuristic(self, ctx: Context, outcome: str, why: str, log: bool) -> None:
        """Report prepared work resolved the other way from the decision (``outcome``:
        ``"rollback"`` or ``"commit"``): note it; with ``log``, log what happened to the
        work (lazily: the database already holds it), release, and end in that state."""
        ctx.note("effect", f"heuristic {outcome}: {why}; the outcome is mixed")
        if log:
            kind, amount = self.operation
            record, decides = (("ABORT", "abort") if outcome == "rollback"
                               else ("COMMITTED", "commit"))
            ctx.log(record, forced=False, decides=decides, tx=self.config.tx, op=kind,
                    amount=amount, heuristic=outcome)
            ctx.unlock()
            ctx.set_state("ABORTED" if outcome == "rollback" else "COMMITTED")


class RealTwoPhaseParticipant(RealParticipant, _two_phase.Participant):
    """The 2PC participant over a real database, with XA's reporting of heuristic
    outcomes: a COMMIT that finds its work rolled back (outside the protocol, or its
    PREPARED record lost) is acknowledged with the news, so the coordinator stops
    resending and learns that the outcome is mixed."""

    def on_COMMIT(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "ABORTED":
            # Commit was decided, so this participant had voted YES; its work is gone.
            self.heuristic(ctx, "rollback", "COMMIT arrived, but this participant's work "
                           "had been rolled back (outside the protocol, or its PREPARED "
                           "record was lost)", log=False)
            return
        super().on_COMMIT(ctx, msg)

    def on_ABORT(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "COMMITTED":  # only a heuristic commit gets here
            ctx.note("effect", "heuristic commit: ABORT arrived, but this participant's "
                               "work had been committed; the outcome is mixed")
            return
        super().on_ABORT(ctx, msg)

    def heuristic(self, ctx: Context, outcome: str, why: str, log: bool) -> None:
        ctx.cancel_timer("decision")
        super().heuristic(ctx, outcome, why, log)
        if outcome == "rollback":
            ctx.send(COORDINATOR, "ACK", tx=self.config.tx, heuristic=outcome)


class RealTwoPhaseCoordinator(_two_phase.Coordinator):
    """The 2PC coordinator, with one addition: an ACK that reports a heuristic outcome
    is forced to the log as a ``HEURISTIC`` record (XA's transaction manager must
    remember it until an operator has seen it), then handled as any ACK."""

    record_types = _two_phase.Coordinator.record_types | {"HEURISTIC"}

    def on_ACK(self, ctx: Context, msg: Message) -> None:
        outcome = msg.payload.get("heuristic")
        if outcome and ctx.state == "COMMITTED":
            ctx.note("effect", f"{msg.src} reports a heuristic {outcome}: the outcome of "
                               f"{self.config.tx} is mixed")
            ctx.log("HEURISTIC", forced=True, tx=self.config.tx, participant=msg.src,
                    outcome=outcome)
        super().on_ACK(ctx, msg)


ADAPTED: dict[type[Role], type[Role]] = {
    _two_phase.Participant: RealTwoPhaseParticipant,
    _two_phase.Coordinator: RealTwoPhaseCoordinator,
}
"""Role classes with more to do over real databases than :class:`RealParticipant`."""


def real_role_class(cls: type[Role]) -> type[Role]:
    """The class a real node runs for a protocol's role class ``cls``."""
    if cls in ADAPTED:
        return ADAPTED[cls]
    if issubclass(cls, CommitParticipant):
        if cls not in _WITH_ACCOUNT:
            _WITH_ACCOUNT[cls] = type(f"Real{cls.__name__}", (RealParticipant, cls), {})
        return _WITH_ACCOUNT[cls]
    return cls


_WITH_ACCOUNT: dict[type[Role], type[Role]] = {}
_VARIANTS: dict[type[CommitProtocol], CommitProtocol] = {}


def real_variant(cls: type[CommitProtocol]) -> CommitProtocol:
    """Protocol ``cls`` building real roles (see :func:`real_role_class`); not registered."""
    if cls not in _VARIANTS:
        attrs = {"participant_class": real_role_class(cls.participant_class),
                 "coordinator_class": real_role_class(cls.coordinator_class)}
        variant: type[CommitProtocol] = type(f"Real{cls.__name__}", (cls,), attrs)
        _VARIANTS[cls] = variant()
    return _VARIANTS[cls]
