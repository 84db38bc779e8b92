"""Two-phase commit with presumed abort.

Phase 1: the coordinator sends PREPARE; each participant either locks its account,
forces a PREPARED record and votes YES, or votes NO. Phase 2: if every vote is YES the
coordinator forces COMMIT and only then sends COMMIT; participants force COMMITTED,
release their locks and ACK; once every ACK is in, the coordinator writes END lazily.
Otherwise the coordinator writes ABORT lazily and sends ABORT (no ACKs: presumed abort).

A participant that has not voted may abort on its own. One that voted YES must wait,
holding its locks, and keeps asking the coordinator (and, with ``cooperative=True``, its
peers) for the outcome. A recovering coordinator re-sends a logged decision; with none
logged it presumes abort.
"""

from __future__ import annotations

from ..engine.node import Context
from ..engine.records import Message
from ..engine.statemachine import machine, recovery
from . import bank
from .base import COORDINATOR, CommitCoordinator, CommitParticipant, CommitProtocol

COORDINATOR_MACHINE = machine(
    "coordinator",
    "INIT",
    [
        ("INIT", "WAIT", "start: send PREPARE to all"),
        ("WAIT", "COMMITTED", "all voted YES: force COMMIT, send COMMIT"),
        ("WAIT", "ABORTED", "a NO vote or vote timeout: send ABORT"),
        ("COMMITTED", "ENDED", "every ACK in: write END"),
        recovery("INIT", "ABORTED", "recovery finds no decision: presume abort"),
    ],
    terminal=("ENDED", "ABORTED"),
    describe={
        "INIT": "has not started the protocol",
        "WAIT": "sent PREPARE, collecting votes",
        "COMMITTED": "decided commit (forced to its log), waiting for ACKs",
        "ABORTED": "decided abort",
        "ENDED": "every participant acknowledged the commit",
    },
)

PARTICIPANT_MACHINE = machine(
    "participant",
    "INIT",
    [
        ("INIT", "PREPARED", "PREPARE, can commit: lock, force PREPARED, vote YES"),
        ("INIT", "ABORTED", "PREPARE, cannot commit: vote NO"),
        ("INIT", "ABORTED", "no PREPARE in time: abort alone"),
        ("INIT", "ABORTED", "ABORT"),
        ("PREPARED", "COMMITTED", "COMMIT: force COMMITTED, unlock, ACK"),
        ("PREPARED", "ABORTED", "ABORT: unlock"),
    ],
    terminal=("COMMITTED", "ABORTED"),
    describe={
        "INIT": "working on its part, has not voted",
        "PREPARED": "voted YES: in doubt, holding locks, must wait for the decision",
        "COMMITTED": "applied the transfer",
        "ABORTED": "rolled back",
    },
)


class Coordinator(CommitCoordinator):
    """The 2PC coordinator (transaction manager)."""

    record_types = frozenset({"COMMIT", "ABORT", "END"})

    machine = COORDINATOR_MACHINE

    def on_start(self, ctx: Context) -> None:
        ctx.vars.update(yes=set(), acks=set())
        ctx.set_state("WAIT")
        for p in self.participants:
            kind, amount = self.operations[p]
            ctx.send(p, "PREPARE", tx=self.config.tx, op=kind, amount=amount)
        ctx.set_timer("votes", self.config.vote_timeout)

    def on_YES(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "WAIT":
            return
        yes = ctx.vars["yes"]
        yes.add(msg.src)
        if len(yes) == len(self.participants):
            ctx.cancel_timer("votes")
            ctx.log("COMMIT", forced=True, decides="commit", tx=self.config.tx,
                    participants=list(self.participants))
            ctx.set_state("COMMITTED")
            ctx.broadcast(self.participants, "COMMIT", tx=self.config.tx)
            ctx.set_timer("acks", self.config.ack_timeout)

    def on_NO(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "WAIT":
            self._abort(ctx, skip=msg.src)

    def on_ACK(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "COMMITTED":
            return
        acks = ctx.vars.setdefault("acks", set())
        acks.add(msg.src)
        if len(acks) == len(self.participants):
            ctx.cancel_timer("acks")
            ctx.log("END", forced=False, tx=self.config.tx)
            ctx.set_state("ENDED")

    def on_DECISION_REQ(self, ctx: Context, msg: Message) -> None:
        if ctx.state in ("COMMITTED", "ENDED"):
            ctx.send(msg.src, "COMMIT", tx=self.config.tx)
        elif ctx.state == "ABORTED":
            ctx.send(msg.src, "ABORT", tx=self.config.tx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "votes" and ctx.state == "WAIT":
            self._abort(ctx, skip=None)
        elif name == "acks" and ctx.state == "COMMITTED":
            acks = ctx.vars.setdefault("acks", set())
            late = [p for p in self.participants if p not in acks]
            ctx.broadcast(late, "COMMIT", tx=self.config.tx)
            ctx.set_timer("acks", self.config.retry_interval)

    def on_recover(self, ctx: Context) -> None:
        logged = {r.record for r in ctx.log_records}
        if "END" in logged:
            ctx.restore_state("ENDED")
            ctx.decide("commit")
        elif "COMMIT" in logged:
            ctx.restore_state("COMMITTED")
            ctx.decide("commit")  # the logged decision, if the crash beat the announcement
            ctx.vars["acks"] = set()
            ctx.broadcast(self.participants, "COMMIT", tx=self.config.tx)
            ctx.set_timer("acks", self.config.ack_timeout)
        elif "ABORT" in logged:
            ctx.restore_state("ABORTED")
            ctx.decide("abort")
        else:
            # Presumed abort: no decision record means the transaction aborted.
            ctx.restore_state("INIT")
            ctx.decide("abort")
            ctx.set_state("ABORTED")

    def _abort(self, ctx: Context, skip: str | None) -> None:
        ctx.cancel_timer("votes")
        ctx.log("ABORT", forced=False, decides="abort", tx=self.config.tx)
        ctx.set_state("ABORTED")
        ctx.broadcast((p for p in self.participants if p != skip), "ABORT", tx=self.config.tx)


class Participant(CommitParticipant):
    """A 2PC participant (resource manager) owning one bank account."""

    record_types = frozenset({"PREPARED", "COMMITTED", "ABORT"})

    machine = PARTICIPANT_MACHINE

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("prepare", self.config.prepare_timeout)

    def on_PREPARE(self, ctx: Context, msg: Message) -> None:
        state = ctx.state
        if state == "ABORTED":
            ctx.send(msg.src, "NO", tx=self.config.tx)
            return
        if state != "INIT":  # a duplicate PREPARE: repeat the YES vote
            if state == "PREPARED":
                # Its forced PREPARED record is its YES: say so again, in case a crash
                # came between that write and the vote (the checks keep the first vote).
                ctx.vote("yes")
            ctx.send(msg.src, "YES", tx=self.config.tx)
            return
        ctx.cancel_timer("prepare")
        if ctx.has_mark("vote_no") or not bank.can_apply(self.balance, self.operation):
            self._abort_alone(ctx)
            ctx.vote("no")
            ctx.send(msg.src, "NO", tx=self.config.tx)
            return
        ctx.lock("balance")
        kind, amount = self.operation
        ctx.log("PREPARED", forced=True, tx=self.config.tx, op=kind, amount=amount)
        ctx.vote("yes")
        ctx.set_state("PREPARED")
        ctx.send(msg.src, "YES", tx=self.config.tx)
        ctx.set_timer("decision", self.config.decision_timeout)

    def on_COMMIT(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "PREPARED":
            kind, amount = self.operation
            ctx.log("COMMITTED", forced=True, decides="commit", tx=self.config.tx, op=kind,
                    amount=amount)
            ctx.unlock()
            ctx.set_state("COMMITTED")
            ctx.cancel_timer("decision")
        if ctx.state == "COMMITTED":
            ctx.send(COORDINATOR, "ACK", tx=self.config.tx)

    def on_ABORT(self, ctx: Context, msg: Message) -> None:
        if ctx.state in ("INIT", "PREPARED"):
            ctx.cancel_timer("decision")
            ctx.cancel_timer("prepare")
            self._abort_alone(ctx)

    def on_DECISION_REQ(self, ctx: Context, msg: Message) -> None:
        """A peer in doubt asks us (cooperative termination)."""
        if ctx.state == "INIT":
            ctx.cancel_timer("prepare")
            self._abort_alone(ctx)  # we never voted, so we may abort, and so may they
        if ctx.state == "COMMITTED":
            ctx.send(msg.src, "COMMIT", tx=self.config.tx)
        elif ctx.state == "ABORTED":
            ctx.send(msg.src, "ABORT", tx=self.config.tx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "prepare" and ctx.state == "INIT":
            self._abort_alone(ctx)
        elif name == "decision" and ctx.state == "PREPARED":
            self._ask(ctx)

    def on_recover(self, ctx: Context) -> None:
        logged = {r.record for r in ctx.log_records}
        if "COMMITTED" in logged:
            ctx.restore_state("COMMITTED")
            ctx.decide("commit")  # the logged decision, if the crash beat the announcement
            ctx.unlock()
        elif "ABORT" in logged:
            ctx.restore_state("ABORTED")
            ctx.decide("abort")
            ctx.unlock()
        elif "PREPARED" in logged:
            ctx.restore_state("PREPARED")  # still in doubt: keep the locks and ask
            if not ctx.locks:
                ctx.lock("balance")
            self._ask(ctx)
        else:
            ctx.restore_state("INIT")  # never voted: the unfinished work is rolled back
            ctx.unlock()
            self._abort_alone(ctx)

    def _abort_alone(self, ctx: Context) -> None:
        ctx.log("ABORT", forced=False, decides="abort", tx=self.config.tx)
        ctx.unlock()
        ctx.set_state("ABORTED")

    def _ask(self, ctx: Context) -> None:
        ctx.send(COORDINATOR, "DECISION_REQ", tx=self.config.tx)
        if self.config.cooperative:
            ctx.broadcast(self.peers, "DECISION_REQ", tx=self.config.tx)
        ctx.set_timer("decision", self.config.retry_interval)


class TwoPhaseCommit(CommitProtocol):
    """Registry entry for ``"2pc"``."""

    name = "2pc"
    title = "Two-phase commit (presumed abort)"
    machines = (COORDINATOR_MACHINE, PARTICIPANT_MACHINE)
    coordinator_class = Coordinator
    participant_class = Participant
