"""Three-phase commit (Skeen, 1981) with the termination protocol.

CanCommit: the coordinator forces START and asks CAN_COMMIT; participants vote (a YES
is forced as READY: the participant is now *uncertain*). PreCommit: only if every vote
is YES, the coordinator forces PRECOMMIT and sends PRE_COMMIT; participants force
PRECOMMITTED and ACK. DoCommit: after the ACKs (or the ACK timeout, which under the
synchronous model means the silent participant crashed) the coordinator forces COMMIT
and sends DO_COMMIT.

Every waiting state has a timeout. A participant that times out on the coordinator runs
the termination protocol: it asks every other participant for its state (STATE_REQ); the
first participant, in the configured order, among those that answered becomes the new
coordinator and decides: commit if any is committed; abort if any is aborted or
uncommitted, or if all are uncertain; otherwise (some pre-committed) it pre-commits the
uncertain ones and then commits. A participant that restarted after a crash asks the
coordinator too, and says so in its answers (``restarted=True``): it never leads while a
node that never went down can decide, but waits to learn that decision; only after a
total failure (every node answers, and every one restarted) do the restarted nodes
terminate among themselves. This never blocks when failures are crashes detected
reliably and one participant stays up; under a partition each side terminates alone and
they may disagree.

Recovery from the logs alone (:meth:`ThreePhaseCommit.outcome_from_logs`, what a
recovery scan of real databases concludes once every log can be read): a logged
decision (``COMMIT``, ``COMMITTED``, ``ABORT``) is the outcome; otherwise the
termination protocol's rule with every node answering: commit if the coordinator forced
``PRECOMMIT`` or a participant ``PRECOMMITTED`` (every vote was YES), abort if all are
uncertain (``READY``) or never voted. The coordinator's log alone is not enough: the
participants may have committed without it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, ClassVar

from ..engine.node import Context
from ..engine.records import Message
from ..engine.roster import Roster
from ..engine.statemachine import machine, recovery
from . import bank
from .base import (
    COORDINATOR,
    CommitConfig,
    CommitCoordinator,
    CommitParticipant,
    CommitProtocol,
    Conclusion,
    Logs,
    logged_decision,
)


@dataclass(frozen=True)
class ThreePCConfig(CommitConfig):
    """3PC options: the timeouts follow the synchronous model (all bounds hold).

    ``uncertain_timeout``: how long a READY participant waits for PRE_COMMIT or ABORT
    after voting (must outlast the coordinator's vote timeout plus a message);
    ``precommit_timeout``: how long a PRECOMMITTED participant waits for DO_COMMIT;
    ``election_timeout``: how long a terminating participant collects STATE replies.
    """

    AT_LEAST_ONE: ClassVar[frozenset[str]] = frozenset(
        {"uncertain_timeout", "precommit_timeout", "election_timeout"})

    uncertain_timeout: int = 100
    precommit_timeout: int = 80
    election_timeout: int = 40
    ack_timeout: int = 40

    def __post_init__(self) -> None:
        super().__post_init__()


COORDINATOR_MACHINE = machine(
    "coordinator",
    "INIT",
    [
        ("INIT", "WAIT", "start: force START, send CAN_COMMIT"),
        ("WAIT", "PRECOMMIT", "all voted YES: force PRECOMMIT, send PRE_COMMIT"),
        ("WAIT", "ABORTED", "a NO vote or vote timeout: send ABORT"),
        ("PRECOMMIT", "COMMITTED", "ACKs in (or timeout): force COMMIT, send DO_COMMIT"),
        recovery("PRECOMMIT", "COMMITTED", "after recovery: told COMMIT"),
        recovery("PRECOMMIT", "ABORTED", "after recovery: told ABORT"),
        ("COMMITTED", "ENDED", "every final ACK in: write END"),
        recovery("INIT", "ABORTED", "recovery finds no PRECOMMIT: abort"),
    ],
    terminal=("ENDED", "ABORTED"),
    describe={
        "INIT": "has not started the protocol",
        "WAIT": "sent CAN_COMMIT, collecting votes",
        "PRECOMMIT": "everyone voted YES; sent PRE_COMMIT, collecting ACKs",
        "COMMITTED": "decided commit, waiting for final ACKs",
        "ABORTED": "decided abort",
        "ENDED": "every participant acknowledged the commit",
    },
)

PARTICIPANT_MACHINE = machine(
    "participant",
    "INIT",
    [
        ("INIT", "READY", "CAN_COMMIT, can commit: lock, force READY, vote YES"),
        ("INIT", "ABORTED", "CAN_COMMIT, cannot commit: vote NO"),
        ("INIT", "ABORTED", "no CAN_COMMIT in time, or asked for its state: abort alone"),
        ("INIT", "ABORTED", "ABORT"),
        ("READY", "PRECOMMITTED", "PRE_COMMIT: force PRECOMMITTED, ACK"),
        ("READY", "ABORTED", "ABORT (from the coordinator or the termination protocol)"),
        recovery("READY", "COMMITTED", "told COMMIT after recovery or a partition"),
        ("PRECOMMITTED", "COMMITTED", "DO_COMMIT: force COMMITTED, unlock, ACK"),
        recovery("PRECOMMITTED", "ABORTED",
                 "told ABORT after it was cut off by a crash or partition"),
    ],
    terminal=("COMMITTED", "ABORTED"),
    describe={
        "INIT": "working on its part, has not voted",
        "READY": "voted YES: uncertain, holding locks",
        "PRECOMMITTED": "knows everyone voted YES: committable",
        "COMMITTED": "applied the transfer",
        "ABORTED": "rolled back",
    },
)


class Coordinator(CommitCoordinator):
    """The 3PC coordinator."""

    record_types = frozenset({"START", "PRECOMMIT", "COMMIT", "ABORT", "END"})

    machine = COORDINATOR_MACHINE

    config: ThreePCConfig

    def on_start(self, ctx: Context) -> None:
        ctx.vars.update(yes=set(), acks=set())
        ctx.log("START", forced=True, tx=self.config.tx, participants=list(self.participants))
        ctx.set_state("WAIT")
        for p in self.participants:
            kind, amount = self.operations[p]
            ctx.send(p, "CAN_COMMIT", tx=self.config.tx, op=kind, amount=amount)
        ctx.set_timer("votes", self.config.vote_timeout)

    def on_YES(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "WAIT":
            return
        yes = ctx.vars["yes"]
        yes.add(msg.src)
        if len(yes) == len(self.participants):
            ctx.cancel_timer("votes")
            ctx.log("PRECOMMIT", forced=True, tx=self.config.tx)
            ctx.set_state("PRECOMMIT")
            ctx.broadcast(self.participants, "PRE_COMMIT", tx=self.config.tx)
            ctx.set_timer("acks", self.config.ack_timeout)

    def on_NO(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "WAIT":
            self._abort(ctx, skip=msg.src)

    def on_ACK(self, ctx: Context, msg: Message) -> None:
        acks = ctx.vars.setdefault("acks", set())
        if ctx.state == "PRECOMMIT" and msg.payload.get("phase") == "precommit":
            acks.add(msg.src)
            if len(acks) == len(self.participants):
                self._commit(ctx)
        elif ctx.state == "COMMITTED" and msg.payload.get("phase") == "commit":
            acks.add(msg.src)
            if len(acks) == len(self.participants):
                ctx.cancel_timer("acks")
                ctx.log("END", forced=False, tx=self.config.tx)
                ctx.set_state("ENDED")

    def on_DECISION_REQ(self, ctx: Context, msg: Message) -> None:
        if ctx.state in ("COMMITTED", "ENDED"):
            ctx.send(msg.src, "DO_COMMIT", tx=self.config.tx)
        elif ctx.state == "ABORTED":
            ctx.send(msg.src, "ABORT", tx=self.config.tx)

    def on_STATE_REQ(self, ctx: Context, msg: Message) -> None:
        """A participant recovering from a crash asks everyone, us included."""
        ctx.send(msg.src, "STATE", tx=self.config.tx, state=ctx.state,
                 **_restarted(ctx))

    def on_DO_COMMIT(self, ctx: Context, msg: Message) -> None:
        """After recovery in PRECOMMIT, a participant tells us the outcome."""
        if ctx.state == "PRECOMMIT" and ctx.vars.get("recovering"):
            ctx.cancel_timer("ask")
            self._commit(ctx)

    def on_ABORT(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "PRECOMMIT" and ctx.vars.get("recovering"):
            ctx.cancel_timer("ask")
            ctx.log("ABORT", forced=True, decides="abort", tx=self.config.tx)
            ctx.set_state("ABORTED")

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "votes" and ctx.state == "WAIT":
            self._abort(ctx, skip=None)
        elif name == "acks" and ctx.state == "PRECOMMIT":
            self._commit(ctx)  # silence means crashed (synchronous model): commit anyway
        elif name == "acks" and ctx.state == "COMMITTED":
            acks = ctx.vars.setdefault("acks", set())
            late = [p for p in self.participants if p not in acks]
            ctx.broadcast(late, "DO_COMMIT", tx=self.config.tx)
            ctx.set_timer("acks", self.config.retry_interval)
        elif name == "ask" and ctx.state == "PRECOMMIT":
            ctx.broadcast(self.participants, "DECISION_REQ", tx=self.config.tx)
            ctx.set_timer("ask", self.config.retry_interval)

    def on_recover(self, ctx: Context) -> None:
        logged = {r.record for r in ctx.log_records}
        if "END" in logged:
            ctx.restore_state("ENDED")
            ctx.decide("commit")
        elif "COMMIT" in logged:
            ctx.restore_state("COMMITTED")
            ctx.decide("commit")  # the logged decision, if the crash beat the announcement
            ctx.vars["acks"] = set()
            ctx.broadcast(self.participants, "DO_COMMIT", tx=self.config.tx)
            ctx.set_timer("acks", self.config.ack_timeout)
        elif "ABORT" in logged:
            ctx.restore_state("ABORTED")
            ctx.decide("abort")
        elif "PRECOMMIT" in logged:
            # The participants may have terminated either way: we must ask them.
            ctx.restore_state("PRECOMMIT")
            ctx.vars["recovering"] = True
            ctx.broadcast(self.participants, "DECISION_REQ", tx=self.config.tx)
            ctx.set_timer("ask", self.config.retry_interval)
        else:
            # Never pre-committed, so nobody can have committed: abort.
            ctx.restore_state("INIT")
            ctx.log("ABORT", forced=True, decides="abort", tx=self.config.tx)
            ctx.set_state("ABORTED")
            if "START" in logged:
                ctx.broadcast(self.participants, "ABORT", tx=self.config.tx)

    def _commit(self, ctx: Context) -> None:
        ctx.cancel_timer("acks")
        ctx.log("COMMIT", forced=True, decides="commit", tx=self.config.tx)
        ctx.set_state("COMMITTED")
        ctx.vars["acks"] = set()
        ctx.broadcast(self.participants, "DO_COMMIT", tx=self.config.tx)
        ctx.set_timer("acks", self.config.ack_timeout)

    def _abort(self, ctx: Context, skip: str | None) -> None:
        ctx.cancel_timer("votes")
        ctx.log("ABORT", forced=True, decides="abort", tx=self.config.tx)
        ctx.set_state("ABORTED")
        ctx.broadcast((p for p in self.participants if p != skip), "ABORT", tx=self.config.tx)


class Participant(CommitParticipant):
    """A 3PC participant owning one bank account; it can lead the termination protocol."""

    record_types = frozenset({"READY", "PRECOMMITTED", "COMMITTED", "ABORT"})

    machine = PARTICIPANT_MACHINE
    config: ThreePCConfig
    prepared_record = "READY"  # its YES: uncertain, holding the lock

    # --- the normal protocol ------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("coordinator", self.config.prepare_timeout)

    def on_CAN_COMMIT(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "ABORTED":
            ctx.send(msg.src, "NO", tx=self.config.tx)
            return
        if ctx.state != "INIT":  # a duplicate CAN_COMMIT: repeat the YES vote
            if ctx.state == "READY":
                ctx.vote("yes")  # its forced READY is its YES (see 2PC's on_PREPARE)
            ctx.send(msg.src, "YES", tx=self.config.tx)
            return
        if ctx.has_mark("vote_no") or not bank.can_apply(self.balance, self.operation):
            self._abort(ctx)
            ctx.vote("no")
            ctx.send(msg.src, "NO", tx=self.config.tx)
            return
        ctx.lock("balance")
        kind, amount = self.operation
        ctx.log("READY", forced=True, tx=self.config.tx, op=kind, amount=amount)
        ctx.vote("yes")
        ctx.set_state("READY")
        ctx.send(msg.src, "YES", tx=self.config.tx)
        ctx.set_timer("coordinator", self.config.uncertain_timeout)

    def on_PRE_COMMIT(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "READY":
            ctx.log("PRECOMMITTED", forced=True, tx=self.config.tx)
            ctx.set_state("PRECOMMITTED")
            ctx.vars.pop("term", None)
            ctx.vars.pop("term_restarted", None)
            ctx.cancel_timer("election")
            if msg.src == COORDINATOR:
                # Only a coordinator that never went down sends PRE_COMMIT (a restarted
                # one asks): a participant that restarted has caught up with it, and
                # takes part in the protocol as any other again.
                ctx.vars.pop("recovering", None)
                ctx.cancel_timer("ask")
            ctx.set_timer("coordinator", self.config.precommit_timeout)
        if ctx.state in ("PRECOMMITTED", "COMMITTED"):
            ctx.send(msg.src, "ACK", tx=self.config.tx, phase="precommit")

    def on_DO_COMMIT(self, ctx: Context, msg: Message) -> None:
        if ctx.state in ("READY", "PRECOMMITTED"):
            self._commit(ctx)
        if ctx.state == "COMMITTED" and msg.src == COORDINATOR:
            ctx.send(msg.src, "ACK", tx=self.config.tx, phase="commit")

    def on_ABORT(self, ctx: Context, msg: Message) -> None:
        if ctx.state in ("INIT", "READY", "PRECOMMITTED"):
            self._abort(ctx)

    def on_ACK(self, ctx: Context, msg: Message) -> None:
        """ACKs reach a participant only while it leads the termination protocol."""
        waiting = ctx.vars.get("term_acks")
        if waiting is not None and msg.payload.get("phase") == "precommit":
            waiting.discard(msg.src)
            if not waiting:
                self._finish_termination(ctx)

    def on_DECISION_REQ(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "INIT":
            self._abort(ctx)
        if ctx.state == "COMMITTED":
            ctx.send(msg.src, "DO_COMMIT", tx=self.config.tx)
        elif ctx.state == "ABORTED":
            ctx.send(msg.src, "ABORT", tx=self.config.tx)

    # --- the termination protocol ---------------------------------------------------
    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "coordinator":
            if ctx.state == "INIT":
                self._abort(ctx)
            elif ctx.state in ("READY", "PRECOMMITTED"):
                self._start_termination(ctx)
        elif name == "election" and "term" in ctx.vars:
            self._elect(ctx)
        elif name == "term_acks" and ctx.vars.get("term_acks") is not None:
            self._finish_termination(ctx)
        elif name == "ask" and ctx.state in ("READY", "PRECOMMITTED"):
            self._start_termination(ctx)

    def _start_termination(self, ctx: Context) -> None:
        """Ask for states. After its own crash a participant also asks the coordinator,
        and must hear from everyone before terminating (see ``_elect``)."""
        ctx.vars["term"] = {self.me: ctx.state}
        ctx.vars.pop("term_restarted", None)  # the answers of an earlier round
        targets = (COORDINATOR, *self.peers) if ctx.vars.get("recovering") else self.peers
        ctx.broadcast(targets, "STATE_REQ", tx=self.config.tx)
        ctx.set_timer("election", self.config.election_timeout)

    def on_STATE_REQ(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "INIT":
            self._abort(ctx)  # not voted yet: abort, so the survivors may abort too
        ctx.send(msg.src, "STATE", tx=self.config.tx, state=ctx.state, **_restarted(ctx))

    def on_STATE(self, ctx: Context, msg: Message) -> None:
        term = ctx.vars.get("term")
        if term is not None:
            state = msg.payload["state"]
            if msg.src == COORDINATOR:
                # Its decision counts, and so does a logged PRECOMMIT: everyone voted YES
                # and it will commit, so it is committable like a pre-committed participant.
                state = {"ENDED": "COMMITTED", "PRECOMMIT": "PRECOMMITTED"}.get(state, state)
                if state not in ("COMMITTED", "ABORTED", "PRECOMMITTED"):
                    state = "UNDECIDED"
            term[msg.src] = state
            if msg.payload.get("restarted"):
                ctx.vars.setdefault("term_restarted", set()).add(msg.src)

    def _elect(self, ctx: Context) -> None:
        term = ctx.vars.pop("term")
        restarted = ctx.vars.pop("term_restarted", set())
        if ctx.state not in ("READY", "PRECOMMITTED"):
            return
        if ctx.vars.get("recovering"):
            restarted.add(self.me)
        states = set(term.values())
        if "COMMITTED" in states:  # someone knows the outcome: adopt it
            self._commit(ctx)
            return
        if states & {"ABORTED", "INIT"}:
            self._abort(ctx)
            return
        if self.me in restarted and not self._total_failure_over(term, restarted):
            ctx.set_timer("ask", self.config.retry_interval)  # blocked: ask again later
            return
        coordinator = term.pop(COORDINATOR, None)
        states = set(term.values()) | ({"PRECOMMITTED"} if coordinator == "PRECOMMITTED" else set())
        leader = self._leader(term, restarted)
        if leader != self.me:
            # If the new leader fails too, we time out again and terminate again.
            ctx.set_timer("coordinator", self.config.uncertain_timeout)
            return
        alive = [p for p in self.peers if p in term]
        if states == {"READY"}:
            self._abort(ctx)
            ctx.broadcast(alive, "ABORT", tx=self.config.tx)
        else:  # some pre-committed, none committed: pre-commit the rest, then commit
            if ctx.state == "READY":
                ctx.log("PRECOMMITTED", forced=True, tx=self.config.tx)
                ctx.set_state("PRECOMMITTED")
            uncertain = [p for p in alive if term[p] == "READY"]
            ctx.vars["term_acks"] = set(uncertain)
            ctx.vars["term_alive"] = alive
            ctx.cancel_timer("coordinator")
            if uncertain:
                ctx.broadcast(uncertain, "PRE_COMMIT", tx=self.config.tx)
                ctx.set_timer("term_acks", self.config.ack_timeout)
            else:
                self._finish_termination(ctx)

    def _total_failure_over(self, term: dict[str, str], restarted: set[str]) -> bool:
        """Whether a participant that restarted after a crash may terminate, having
        heard from the nodes in ``term``, none of them decided (``restarted``: those of
        them that restarted after a crash, itself included). It cannot tell what the others
        decided while it was down, nor what a node that never went down is deciding
        now (that node's answer may be out of date when it arrives): a node that never
        went down terminates without it, and it learns that decision. Only when every
        node answers and every one of them restarted too (a total failure: the last to
        fail is back) may it terminate; until then it is blocked."""
        return len(term) == len(self.order) + 1 and len(restarted) == len(term)

    def _leader(self, term: dict[str, str], restarted: set[str]) -> str:
        """Who leads the termination protocol among the undecided participants that
        answered (``term``): the first in order that never went down (a restarted one
        learns the outcome instead), or the first of all after a total failure."""
        return min([n for n in term if n not in restarted] or term,
                   key=self.order.__getitem__)

    def _finish_termination(self, ctx: Context) -> None:
        ctx.vars.pop("term_acks", None)
        ctx.cancel_timer("term_acks")
        alive = ctx.vars.pop("term_alive", list(self.peers))
        if ctx.state == "PRECOMMITTED":
            self._commit(ctx)
            ctx.broadcast(alive, "DO_COMMIT", tx=self.config.tx)

    # --- recovery -----------------------------------------------------------------
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
        elif "PRECOMMITTED" in logged or "READY" in logged:
            # A recovering participant may not decide alone: it asks everyone, and
            # terminates only with a decided node's answer or when all nodes are back.
            ctx.restore_state("PRECOMMITTED" if "PRECOMMITTED" in logged else "READY")
            if not ctx.locks:
                ctx.lock("balance")
            ctx.vars["recovering"] = True
            self._start_termination(ctx)
        else:
            ctx.restore_state("INIT")
            ctx.unlock()
            self._abort(ctx)

    # --- outcomes -----------------------------------------------------------------
    def _commit(self, ctx: Context) -> None:
        kind, amount = self.operation
        ctx.log("COMMITTED", forced=True, decides="commit", tx=self.config.tx, op=kind,
                amount=amount)
        ctx.unlock()
        ctx.set_state("COMMITTED")
        self._stop_timers(ctx)

    def _abort(self, ctx: Context) -> None:
        ctx.log("ABORT", forced=ctx.state != "INIT", decides="abort", tx=self.config.tx)
        ctx.unlock()
        ctx.set_state("ABORTED")
        self._stop_timers(ctx)

    @staticmethod
    def _stop_timers(ctx: Context) -> None:
        for name in ("coordinator", "election", "term_acks", "ask"):
            ctx.cancel_timer(name)
        for key in ("term", "term_restarted", "term_acks", "term_alive"):
            ctx.vars.pop(key, None)


def _restarted(ctx: Context) -> dict[str, bool]:
    """A STATE reply's mark of a node that restarted after a crash (its state is what
    its log says, and while undecided it may not lead the termination protocol; once
    decided, its decision is what counts): ``{"restarted": True}``, and nothing for any
    other node."""
    return {"restarted": True} if ctx.vars.get("recovering") else {}


class ThreePhaseCommit(CommitProtocol):
    """Registry entry for ``"3pc"``."""

    name = "3pc"
    title = "Three-phase commit (Skeen) with the termination protocol"
    config_class = ThreePCConfig
    machines = (COORDINATOR_MACHINE, PARTICIPANT_MACHINE)
    coordinator_class = Coordinator
    participant_class = Participant
    unused_options: ClassVar[dict[str, str]] = {
        "cooperative": "3PC's participants always run the termination protocol together",
        "decision_timeout": "its participants wait with uncertain_timeout (READY) and "
                            "precommit_timeout (PRECOMMITTED)",
    }

    def outcome_from_logs(self, logs: Logs, roster: Roster, config: Any,
                          running: Collection[str] = ()) -> Conclusion:
        """A logged decision of any node (the coordinator's ``END`` is none, and needs
        no reading: it follows its forced ``COMMIT`` in the same log); else what the
        termination protocol decides when every node answers (a recovering participant
        waits for that): commit if some node is committable (the coordinator's
        ``PRECOMMIT``, a participant's ``PRECOMMITTED``), abort if none is (Skeen: nobody
        can have committed). That rule reads silence as "did not happen", so it waits
        while a node still runs."""
        decided = logged_decision(logs)
        if decided is not None:
            return decided
        if running:
            return Conclusion(None, f"{', '.join(sorted(running))} still running the "
                                    "protocol: the termination protocol may yet decide")
        committable = [f"{node} logged {r.record}" for node in roster.names
                       for r in logs.get(node, ())
                       if r.record in ("PRECOMMIT", "PRECOMMITTED")]
        if committable:
            return Conclusion("commit", f"{committable[0]}: every vote was YES, and the "
                                        "termination protocol commits")
        return Conclusion("abort", "no node pre-committed, so none can have committed: "
                                   "the termination protocol aborts")
