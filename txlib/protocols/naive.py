"""No protocol at all: independent local commits, one service after another.

This is what plain code does when a business operation spans services and nobody
coordinates the commit: ``debit(alice); credit(bob)``. The coordinator (the code doing
the transfer) asks the first participant to apply its operation; the participant
applies it, commits it locally (a forced COMMITTED record) and replies DONE; only then
is the next one asked. A participant that cannot apply its operation (it would overdraw,
or a ``vote_no`` fault says so) replies REFUSED, and the coordinator stops there.

Nothing is ever undone, nobody is asked first whether it *can* commit, and the
coordinator keeps no log: after a crash it remembers nothing. So a crash, a refusal or a
lost reply between two local commits leaves the transfer half done, and the invariant
checks say so. A participant that never hears its request gives up after
``prepare_timeout``: its part of the transfer never happens. Lesson 01 uses this as
the baseline that 2PC improves on; it is not a protocol to copy.
"""

from __future__ import annotations

from typing import ClassVar

from ..engine.node import Context
from ..engine.records import Message
from ..engine.statemachine import machine
from . import bank
from .base import CommitCoordinator, CommitParticipant, CommitProtocol

COORDINATOR_MACHINE = machine(
    "coordinator",
    "INIT",
    [
        ("INIT", "RUNNING", "start: ask the first service to apply its part"),
        ("RUNNING", "DONE", "the last service replied DONE"),
        ("RUNNING", "FAILED", "REFUSED, or no reply in time: stop there"),
    ],
    terminal=("DONE", "FAILED"),
    describe={
        "INIT": "has not started (or restarted: with no log, it remembers nothing)",
        "RUNNING": "asks one service at a time, waiting for each reply",
        "DONE": "every service committed its part",
        "FAILED": "gave up; the parts already committed stay committed",
    },
)

PARTICIPANT_MACHINE = machine(
    "participant",
    "INIT",
    [
        ("INIT", "COMMITTED", "request it can apply: commit locally (forced), reply DONE"),
        ("INIT", "ABORTED", "request it cannot apply: reply REFUSED"),
        ("INIT", "ABORTED", "no request in time: its part never happens"),
    ],
    terminal=("COMMITTED", "ABORTED"),
    describe={
        "INIT": "waiting for its request",
        "COMMITTED": "applied its part and committed it locally, for good",
        "ABORTED": "did not apply its part",
    },
)


class Coordinator(CommitCoordinator):
    """The code doing the business operation: one local commit after another."""

    record_types = frozenset[str]()  # it keeps no log

    machine = COORDINATOR_MACHINE

    def on_start(self, ctx: Context) -> None:
        ctx.vars["next"] = 0
        ctx.set_state("RUNNING")
        self._ask_next(ctx)

    def on_DONE(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "RUNNING" or msg.src != self.participants[ctx.vars["next"]]:
            return
        ctx.cancel_timer("reply")
        ctx.vars["next"] += 1
        if ctx.vars["next"] < len(self.participants):
            self._ask_next(ctx)
        else:
            ctx.decide("commit")
            ctx.set_state("DONE")

    def on_REFUSED(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "RUNNING":
            self._give_up(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "reply" and ctx.state == "RUNNING":
            self._give_up(ctx)

    def on_recover(self, ctx: Context) -> None:
        ctx.restore_state("INIT")  # no log: the transfer in progress is forgotten

    def _ask_next(self, ctx: Context) -> None:
        p = self.participants[ctx.vars["next"]]
        kind, amount = self.operations[p]
        ctx.send(p, kind.upper(), tx=self.config.tx, amount=amount)
        ctx.set_timer("reply", self.config.vote_timeout)

    def _give_up(self, ctx: Context) -> None:
        ctx.cancel_timer("reply")
        ctx.decide("abort")
        ctx.set_state("FAILED")


class Participant(CommitParticipant):
    """A service owning one bank account: applies what it is asked, commits at once."""

    record_types = frozenset({"COMMITTED", "ABORT"})

    machine = PARTICIPANT_MACHINE
    prepared_record = None  # it never prepares: nothing is ever held in doubt

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("request", self.config.prepare_timeout)

    def on_DEBIT(self, ctx: Context, msg: Message) -> None:
        self._apply(ctx, msg)

    def on_CREDIT(self, ctx: Context, msg: Message) -> None:
        self._apply(ctx, msg)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "request" and ctx.state == "INIT":
            self._abort(ctx)

    def on_recover(self, ctx: Context) -> None:
        logged = {r.record for r in ctx.log_records}
        if "COMMITTED" in logged:
            ctx.restore_state("COMMITTED")
            ctx.decide("commit")
        elif "ABORT" in logged:
            ctx.restore_state("ABORTED")
            ctx.decide("abort")
        else:
            ctx.restore_state("INIT")  # lost its timer with the crash: give up now
            self._abort(ctx)

    def _apply(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "INIT":
            ctx.cancel_timer("request")
            if ctx.has_mark("vote_no") or not bank.can_apply(self.balance, self.operation):
                ctx.vote("no")
                self._abort(ctx)
            else:
                kind, amount = self.operation
                ctx.vote("yes")  # it agrees for itself only: nobody asked the others
                ctx.log("COMMITTED", forced=True, decides="commit", tx=self.config.tx,
                        op=kind, amount=amount)
                ctx.set_state("COMMITTED")
        reply = "DONE" if ctx.state == "COMMITTED" else "REFUSED"
        ctx.send(msg.src, reply, tx=self.config.tx)

    def _abort(self, ctx: Context) -> None:
        ctx.log("ABORT", forced=False, decides="abort", tx=self.config.tx)
        ctx.set_state("ABORTED")


class NoProtocol(CommitProtocol):
    """Registry entry for ``"naive"``."""

    name = "naive"
    title = "No protocol: independent local commits"
    machines = (COORDINATOR_MACHINE, PARTICIPANT_MACHINE)
    coordinator_class = Coordinator
    participant_class = Participant
    unused_options: ClassVar[dict[str, str]] = {
        "cooperative": "nobody is ever in doubt, so nobody asks a peer",
        "decision_timeout": "nobody waits for a decision: each service commits alone",
        "retry_interval": "nothing is re-sent: the code stops at the first failure",
        "ack_timeout": "nobody acknowledges anything",
    }
