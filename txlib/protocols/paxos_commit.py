"""Paxos Commit (Gray & Lamport, *Consensus on Transaction Commit*, 2006).

2PC blocks because one node, the coordinator, holds the decision. Paxos Commit gives
each participant's vote to a small fault-tolerant register: an *instance* of Paxos run
by ``2F+1`` acceptors ``a1``, ``a2``, ... The transaction commits iff every instance
chose ``prepared``; any node that learns the chosen values can announce the outcome,
so a silent leader is replaced instead of waited for.

Normal case (ballot 0, each participant the proposer of its own instance): the leader
(the node ``"coordinator"``) sends PREPARE; each participant forces its vote and sends
a phase 2a message (P2A) with ``prepared`` or ``aborted`` to the first ``F+1``
acceptors; each of those waits for every participant's vote (``batch_timeout`` at
most; an ``aborted`` vote goes on at once), forces them in one write and answers with
one bundled phase 2b message (P2B) to the leader, which announces COMMIT once a
majority accepted ``prepared`` in every instance, or ABORT once any instance chose
``aborted``. With ``faster=True``
(*Faster Paxos Commit*) the acceptors send their P2B to every participant instead, and
each participant learns the outcome itself: one message delay less.

Failures: a leader that does not learn every instance in time (``vote_timeout``) runs
a higher ballot for the undecided ones: phase 1 (P1A, answered by P1B with what each
acceptor accepted), then phase 2 with the value the majority's answers force, or
``aborted`` where no value can have been chosen. A participant in doubt asks the leader
(DECISION_REQ), then also the acceptors; an asked acceptor that hears no leader takes
over after ``takeover_timeout`` plus ``takeover_gap`` per rank (``a1`` first), with
its own ballot, and announces the outcome to everyone. Ballot ``b > 0`` belongs to
node ``b % (acceptors + 1)`` (0 the coordinator, ``i`` acceptor ``ai``), so two
leaders never share one; a leader forces each ballot before using it
(``max_ballots`` bounds how many each node starts: no bound by default, 1 when
explored). An acceptor
forces its promises and accepted values before answering; a participant forces its
vote. An acceptor that sees a higher ballot answers REJECT, and the lower leader
stands by.

With at most ``F`` acceptors down, every live participant decides whatever happens to
the leader; with a majority of acceptors unreachable it waits, and never decides
differently from anyone else.

Recovery from the logs alone (:meth:`PaxosCommit.outcome_from_logs`, what a recovery
scan of real databases concludes): a decision any node logged (its ``COMMIT``,
``COMMITTED`` or ``ABORT``, each logged as a decision); else the values chosen, read
from the acceptors' forced ``ACCEPTED`` records (chosen: accepted by a majority of
acceptors in one ballot): commit if every instance chose Prepared, abort if one chose
Aborted, or if a participant never voted Prepared (its instance can choose nothing
else). Otherwise the logs cannot tell: a leader must run a ballot. The coordinator's
log alone never can: an acceptor may have committed the transaction in its place.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..engine.config import MAX_NUMBER
from ..engine.node import Context, Role
from ..engine.records import Message
from ..engine.roster import NodeSpec, Roster
from ..engine.statemachine import machine
from ..errors import TxlibError, choices, shown
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

PREPARED, ABORTED, NONE = "prepared", "aborted", "none"  # an instance's values, as in the TLA+
MAX_ACCEPTORS = 15
DEFAULT_ACCEPTORS = 3


def acceptor_count(value: object) -> int:
    """``value`` if it is a valid number of acceptors (odd, 1..MAX_ACCEPTORS)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TxlibError(f"option acceptors must be a whole number, got {shown(value)}")
    if not 1 <= value <= MAX_ACCEPTORS or value % 2 == 0:
        raise TxlibError(
            f"option acceptors must be an odd number from 1 to {MAX_ACCEPTORS} "
            f"(2F+1 acceptors survive F failures), got {shown(value)}")
    return value


@functools.cache  # at most MAX_ACCEPTORS counts; a handler asks for them often
def acceptor_names(count: int) -> tuple[str, ...]:
    """``3 -> ("a1", "a2", "a3")``."""
    return tuple(f"a{i}" for i in range(1, count + 1))


def next_ballot(owner: int, above: int, classes: int) -> int:
    """The smallest ballot of node class ``owner`` greater than ``above`` (ballot ``b``
    belongs to class ``b % classes``; ballot 0 is the participants' own)."""
    b = (above // classes) * classes + owner
    while b <= above or b == 0:
        b += classes
    return b


@dataclass(frozen=True)
class PaxosCommitConfig(CommitConfig):
    """Paxos Commit options, on top of the commit protocols' ones.

    ``acceptors``: how many (odd: ``2F+1`` tolerate ``F`` failures); ``faster``: the
    acceptors tell the participants directly (Faster Paxos Commit). Timeouts:
    ``vote_timeout``, the leader's wait for ballot 0 to decide every instance;
    ``decision_timeout``, a participant's wait after voting before it asks;
    ``retry_interval``, between its later asks; ``batch_timeout``, an acceptor's wait
    to bundle every participant's vote into one write and one message;
    ``takeover_timeout`` and ``takeover_gap``, how long an asked acceptor waits for a
    leader before taking over (plus one gap per rank); ``phase_timeout``, how long a
    leader waits for a majority before sending a phase again.

    ``max_ballots``: the most ballots above 0 any one node starts (its LEAD records);
    a node that has started that many never leads again (it still accepts, learns and
    answers). The default, :data:`~txlib.engine.config.MAX_NUMBER`, is no bound in
    practice. It exists for the explorer: every takeover uses a higher ballot, so with
    a crash the reachable states are infinite; bounding each node's ballots makes them
    finite, and what the explorer then proves holds for every run in which no node
    starts more than ``max_ballots`` ballots. ``max_ballots=0`` turns takeovers off
    (then a leader crash blocks, as in 2PC).
    """

    AT_LEAST_ONE: ClassVar[frozenset[str]] = frozenset(
        {"acceptors", "batch_timeout", "takeover_timeout", "takeover_gap", "phase_timeout"})

    acceptors: int = DEFAULT_ACCEPTORS
    faster: bool = False
    decision_timeout: int = 100
    batch_timeout: int = 30
    takeover_timeout: int = 100
    takeover_gap: int = 60
    phase_timeout: int = 60
    max_ballots: int = MAX_NUMBER

    def __post_init__(self) -> None:
        super().__post_init__()
        acceptor_count(self.acceptors)

    @property
    def acceptor_names(self) -> tuple[str, ...]:
        return acceptor_names(self.acceptors)

    @property
    def majority(self) -> int:
        """``F + 1``: acceptors that must accept a value for it to be chosen."""
        return self.acceptors // 2 + 1

    @property
    def normal_acceptors(self) -> tuple[str, ...]:
        """The ``F + 1`` acceptors the participants send their ballot-0 votes to."""
        return self.acceptor_names[:self.majority]


# --- state machines ------------------------------------------------------------------
COORDINATOR_MACHINE = machine(
    "coordinator",
    "INIT",
    [
        ("INIT", "WAIT", "start: send PREPARE to all"),
        ("INIT", "STANDBY", "start (faster): send PREPARE; acceptors tell participants"),
        ("WAIT", "COMMITTED", "a majority accepted Prepared in every instance: send COMMIT"),
        ("WAIT", "ABORTED", "an instance chose Aborted: send ABORT"),
        ("WAIT", "RECOVERING", "an instance undecided in time: phase 1, higher ballot"),
        ("STANDBY", "RECOVERING", "a participant in doubt asks: phase 1, higher ballot"),
        ("RECOVERING", "COMMITTED", "its ballot chose Prepared everywhere: send COMMIT"),
        ("RECOVERING", "ABORTED", "its ballot chose Aborted somewhere: send ABORT"),
        ("WAIT", "COMMITTED", "told COMMIT by a new leader"),
        ("WAIT", "ABORTED", "told ABORT by a new leader"),
        ("STANDBY", "COMMITTED", "told COMMIT by a new leader"),
        ("STANDBY", "ABORTED", "told ABORT by a new leader"),
    ],
    terminal=("COMMITTED", "ABORTED"),
    describe={
        "INIT": "has not started the protocol",
        "WAIT": "sent PREPARE, learning each instance's value from the acceptors",
        "STANDBY": "sent PREPARE; the acceptors tell the participants (Faster Paxos Commit)",
        "RECOVERING": "runs a higher ballot for the undecided instances",
        "COMMITTED": "learned that every instance chose Prepared",
        "ABORTED": "learned that an instance chose Aborted",
    },
)

PARTICIPANT_MACHINE = machine(
    "participant",
    "INIT",
    [
        ("INIT", "PREPARED", "PREPARE, can commit: lock, force PREPARED, P2A Prepared"),
        ("INIT", "ABORTED", "PREPARE, cannot commit: P2A Aborted"),
        ("INIT", "ABORTED", "no PREPARE in time: abort alone, P2A Aborted"),
        ("INIT", "ABORTED", "ABORT"),
        ("PREPARED", "COMMITTED", "COMMIT, or (faster) every instance chose Prepared"),
        ("PREPARED", "ABORTED", "ABORT, or (faster) an instance chose Aborted: unlock"),
    ],
    terminal=("COMMITTED", "ABORTED"),
    describe={
        "INIT": "working on its part, has not voted",
        "PREPARED": "voted Prepared: in doubt, holding locks, waiting for the outcome",
        "COMMITTED": "applied the transfer",
        "ABORTED": "rolled back",
    },
)

ACCEPTOR_MACHINE = machine(
    "acceptor",
    "IDLE",
    [
        ("IDLE", "ACCEPTED", "P2A: force the value, send P2B"),
        ("IDLE", "LEADING", "asked, no leader heard: take over with a higher ballot"),
        ("ACCEPTED", "LEADING", "asked, no leader heard: take over with a higher ballot"),
        ("LEADING", "IDLE", "outbid by a higher ballot: stand by"),
        ("LEADING", "ACCEPTED", "outbid by a higher ballot: stand by"),
        ("LEADING", "DONE", "its ballot decided every instance: announce the outcome"),
        ("IDLE", "DONE", "told the outcome"),
        ("ACCEPTED", "DONE", "told the outcome"),
    ],
    terminal=("DONE",),
    describe={
        "IDLE": "has accepted no value yet",
        "ACCEPTED": "accepted a value in some instance (forced to its log)",
        "LEADING": "took over from a silent leader: runs a higher ballot",
        "DONE": "knows the outcome",
    },
)


# --- learning --------------------------------------------------------------------------
def learn(ctx: Context, acceptor: str, bal: int, values: dict[str, str], majority: int,
          instances: Sequence[str]) -> str | None:
    """Count one acceptor's phase 2b message; the outcome once it is known: ``"abort"``
    if an instance chose Aborted, ``"commit"`` if every instance chose Prepared."""
    tally = ctx.vars.setdefault("tally", {})
    chosen = ctx.vars.setdefault("chosen", {})
    for ins, val in values.items():
        if ins not in instances or val not in (PREPARED, ABORTED):
            continue
        voters = tally.setdefault(ins, {}).setdefault(f"{bal}:{val}", set())
        voters.add(acceptor)
        if len(voters) >= majority and ins not in chosen:
            chosen[ins] = [bal, val]
    return outcome_of(chosen, instances)


def outcome_of(chosen: dict[str, list[Any]], instances: Sequence[str]) -> str | None:
    """The transaction's outcome from the instances known chosen (None if not yet)."""
    if any(v[1] == ABORTED for v in chosen.values()):
        return "abort"
    if all(ins in chosen for ins in instances):
        return "commit"
    return None


def accepted_in_logs(logs: Logs, acceptors: Sequence[str],
                     instances: Collection[str]) -> dict[tuple[str, int, str], set[str]]:
    """What the acceptors' forced ``ACCEPTED`` records say they accepted:
    ``{(instance, ballot, value): acceptors}``, for ``instances`` and the values Prepared
    and Aborted (a malformed record counts for nothing)."""
    voters: dict[tuple[str, int, str], set[str]] = {}
    for acceptor in acceptors:
        for r in logs.get(acceptor, ()):
            if r.record != "ACCEPTED":
                continue
            values = r.data.get("values", {})
            for ins, val in (values.items() if isinstance(values, dict) else ()):
                if ins in instances and val in (PREPARED, ABORTED):
                    voters.setdefault((ins, int(r.data.get("bal", 0)), val),
                                      set()).add(acceptor)
    return voters


def chosen_values(accepted: Mapping[tuple[str, int, str], set[str]],
                  majority: int) -> dict[str, list[Any]]:
    """The instances whose value ``accepted`` (:func:`accepted_in_logs`) shows chosen:
    ``{instance: [ballot, value]}``, the lowest such ballot. A value is chosen when
    ``majority`` acceptors accepted it in the same ballot; accepted in different
    ballots it may not be (a higher ballot may have replaced it at some of them)."""
    chosen: dict[str, list[Any]] = {}
    for (ins, bal, val), who in sorted(accepted.items(), key=lambda kv: kv[0][1]):
        if len(who) >= majority and ins not in chosen:
            chosen[ins] = [bal, val]
    return chosen


def _payload_values(msg: Message) -> dict[str, str]:
    values = msg.payload.get("values", {})
    return values if isinstance(values, dict) else {}


# --- leading a ballot ----------------------------------------------------------------------
class Leader(Role):
    """What any node leading a ballot does (the coordinator, or an acceptor that took
    over): phase 1 for the undecided instances, phase 2 with the safe values, learning
    from P2B, and standing by when a higher ballot appears. Its state is
    ``ctx.vars["lead"]``: the ballot, the phase, the instances and the answers so far."""

    record_types = frozenset({"LEAD"})

    participants: tuple[str, ...]
    config: PaxosCommitConfig
    owner: int  # the class of ballots this node may use

    @property
    def classes(self) -> int:
        return self.config.acceptors + 1

    # hooks -------------------------------------------------------------------------
    def _outcome(self, ctx: Context, outcome: str) -> None:
        """The outcome is known (announce it)."""
        raise NotImplementedError

    def _outbid(self, ctx: Context) -> None:
        """A higher ballot took over this node's ballot: stand by."""
        raise NotImplementedError

    def _local_promise(self, ctx: Context, bal: int,
                       instances: list[str]) -> dict[str, list[Any]] | None:
        """If this node is an acceptor too: its own phase 1b, without a message."""
        return None

    def _local_accept(self, ctx: Context, bal: int, values: dict[str, str]) -> bool:
        """If this node is an acceptor too: its own phase 2b, without a message."""
        return False

    def _is_acceptor(self) -> bool:
        return False

    def _highest_ballot(self, ctx: Context) -> int:
        logged = [int(r.data.get("bal", 0)) for r in ctx.log_records
                  if r.record in ("LEAD", "PROMISED", "ACCEPTED")]
        return max([int(ctx.vars.get("maxbal", 0)), *logged])

    # phases ------------------------------------------------------------------------
    def _may_lead(self, ctx: Context) -> bool:
        """False once this node has started ``max_ballots`` ballots (LEAD records)."""
        started = sum(1 for r in ctx.log_records if r.record == "LEAD")
        return started < self.config.max_ballots

    def _start_ballot(self, ctx: Context) -> None:
        chosen = ctx.vars.setdefault("chosen", {})
        todo = [p for p in self.participants if p not in chosen]
        if not todo or not self._may_lead(ctx):
            return
        bal = next_ballot(self.owner, self._highest_ballot(ctx), self.classes)
        ctx.vars["maxbal"] = bal
        ctx.vars["asked"] = True  # a recovery: tell the acceptors the outcome too
        ctx.log("LEAD", forced=True, tx=self.config.tx, bal=bal, instances=todo)
        ctx.vars["lead"] = {"bal": bal, "phase": 1, "instances": todo, "p1b": {},
                            "values": {}, "p2b": set()}
        ctx.set_timer("phase", self.config.phase_timeout)
        self._send_phase(ctx)

    def _send_phase(self, ctx: Context) -> None:
        """Send the current phase's message to every acceptor that has not answered
        (this node's own acceptor, if any, answers at once, without a message)."""
        lead = ctx.vars.get("lead")
        if lead is None:
            return
        bal, phase = lead["bal"], lead["phase"]
        answered = lead["p1b"] if phase == 1 else lead["p2b"]
        targets = [a for a in self.config.acceptor_names if a not in answered]
        if self._is_acceptor() and ctx.name in targets:
            if phase == 1:
                votes = self._local_promise(ctx, bal, list(lead["instances"]))
                if votes is not None:
                    self._got_p1b(ctx, ctx.name, bal, votes)
            elif self._local_accept(ctx, bal, dict(lead["values"])):
                self._got_p2b(ctx, ctx.name, bal, dict(lead["values"]))
            lead = ctx.vars.get("lead")
            if lead is None or lead["bal"] != bal or lead["phase"] != phase:
                return  # the local answer moved the ballot on (or finished it)
        for a in targets:
            if a == ctx.name:
                continue
            if phase == 1:
                ctx.send(a, "P1A", tx=self.config.tx, bal=bal,
                         instances=list(lead["instances"]))
            else:
                ctx.send(a, "P2A", tx=self.config.tx, bal=bal, values=dict(lead["values"]))

    def _got_p1b(self, ctx: Context, acceptor: str, bal: int,
                 votes: dict[str, list[Any]]) -> None:
        lead = ctx.vars.get("lead")
        if lead is None or lead["bal"] != bal or lead["phase"] != 1:
            return
        lead["p1b"][acceptor] = votes
        if len(lead["p1b"]) < self.config.majority:
            return
        values: dict[str, str] = {}
        for ins in lead["instances"]:
            reports = [r[ins] for r in lead["p1b"].values() if ins in r]
            top = max((rep[0] for rep in reports), default=-1)
            # The value accepted in the highest ballot may have been chosen: keep it.
            # If no acceptor of this majority accepted anything, nothing was chosen.
            values[ins] = next(rep[1] for rep in reports if rep[0] == top) if top >= 0 \
                else ABORTED
        lead.update(phase=2, values=values, p2b=set())
        ctx.set_timer("phase", self.config.phase_timeout)
        self._send_phase(ctx)

    def _got_p2b(self, ctx: Context, acceptor: str, bal: int, values: dict[str, str]) -> None:
        lead = ctx.vars.get("lead")
        if lead is not None and lead["bal"] == bal and lead["phase"] == 2:
            lead["p2b"].add(acceptor)
        outcome = learn(ctx, acceptor, bal, values, self.config.majority, self.participants)
        if outcome is not None and not self._knows(ctx):
            ctx.cancel_timer("phase")
            ctx.vars.pop("lead", None)
            self._outcome(ctx, outcome)

    def _knows(self, ctx: Context) -> bool:
        return ctx.vars.get("outcome") is not None

    def _leading(self, ctx: Context) -> bool:
        return "lead" in ctx.vars

    def _saw_higher(self, ctx: Context, bal: int) -> bool:
        """Note ballot ``bal`` seen elsewhere; True if it outbids this node's ballot
        (which it then gives up)."""
        ctx.vars["maxbal"] = max(ctx.vars.get("maxbal", 0), bal)
        lead = ctx.vars.get("lead")
        if lead is not None and lead["bal"] < bal:
            ctx.vars.pop("lead")
            ctx.cancel_timer("phase")
            self._outbid(ctx)
            return True
        return False

    # handlers shared by every leader ------------------------------------------------
    def on_P1B(self, ctx: Context, msg: Message) -> None:
        votes = msg.payload.get("votes", {})
        self._got_p1b(ctx, msg.src, msg.payload["bal"], votes)

    def on_P2B(self, ctx: Context, msg: Message) -> None:
        self._got_p2b(ctx, msg.src, msg.payload["bal"], _payload_values(msg))

    def on_REJECT(self, ctx: Context, msg: Message) -> None:
        self._saw_higher(ctx, msg.payload["higher"])

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "phase" and self._leading(ctx):
            self._send_phase(ctx)
            ctx.set_timer("phase", self.config.phase_timeout)


# --- the roles -----------------------------------------------------------------------------
class Coordinator(Leader, CommitCoordinator):
    """The initial leader (the transaction manager): sends PREPARE, learns each
    instance's value, announces the outcome; runs a higher ballot when ballot 0 does
    not finish in time."""

    record_types = frozenset({"LEAD", "COMMIT", "ABORT"})

    machine = COORDINATOR_MACHINE
    owner = 0
    config: PaxosCommitConfig

    def on_start(self, ctx: Context) -> None:
        ctx.vars.update(chosen={}, tally={})
        ctx.set_state("STANDBY" if self.config.faster else "WAIT")
        for p in self.participants:
            kind, amount = self.operations[p]
            ctx.send(p, "PREPARE", tx=self.config.tx, op=kind, amount=amount)
        if not self.config.faster:
            ctx.set_timer("votes", self.config.vote_timeout)

    def on_DECISION_REQ(self, ctx: Context, msg: Message) -> None:
        ctx.vars["asked"] = True
        outcome = ctx.vars.get("outcome")
        if outcome is not None:
            ctx.send(msg.src, "COMMIT" if outcome == "commit" else "ABORT", tx=self.config.tx)
        elif ctx.state == "STANDBY" and self._may_lead(ctx):
            ctx.set_state("RECOVERING")
            self._start_ballot(ctx)
        elif ctx.state == "RECOVERING" and not self._leading(ctx):
            ctx.cancel_timer("retry")
            self._start_ballot(ctx)

    def on_COMMIT(self, ctx: Context, msg: Message) -> None:
        self._told(ctx, "commit")

    def on_ABORT(self, ctx: Context, msg: Message) -> None:
        self._told(ctx, "abort")

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "votes" and ctx.state == "WAIT" and self._may_lead(ctx):
            ctx.set_state("RECOVERING")
            self._start_ballot(ctx)
        elif name == "retry" and ctx.state == "RECOVERING" and not self._leading(ctx):
            self._start_ballot(ctx)
        else:
            super().on_timer(ctx, name)

    def on_recover(self, ctx: Context) -> None:
        logged = [r.record for r in ctx.log_records if r.record in ("COMMIT", "ABORT")]
        ctx.vars.update(chosen={}, tally={})
        if logged:
            outcome = "commit" if logged[-1] == "COMMIT" else "abort"
            ctx.vars["outcome"] = outcome
            ctx.restore_state("COMMITTED" if outcome == "commit" else "ABORTED")
            ctx.decide(outcome)  # the logged decision, if the crash beat the announcement
            ctx.broadcast(self.participants, "COMMIT" if outcome == "commit" else "ABORT",
                          tx=self.config.tx)
        else:
            # Nothing logged: the outcome is with the acceptors; ask them with a new ballot.
            ctx.restore_state("RECOVERING")
            self._start_ballot(ctx)

    # leader hooks --------------------------------------------------------------------
    def _outcome(self, ctx: Context, outcome: str) -> None:
        ctx.cancel_timer("votes")
        ctx.cancel_timer("retry")
        ctx.vars["outcome"] = outcome
        record = "COMMIT" if outcome == "commit" else "ABORT"
        # Not forced: the outcome is already safe with a majority of acceptors.
        ctx.log(record, forced=False, decides=outcome, tx=self.config.tx)
        ctx.set_state("COMMITTED" if outcome == "commit" else "ABORTED")
        chosen = ctx.vars.get("chosen", {})
        # A participant whose own ballot-0 vote was chosen Aborted has aborted already.
        told = [p for p in self.participants if chosen.get(p) != [0, ABORTED]]
        ctx.broadcast(told, record, tx=self.config.tx)
        if ctx.vars.get("asked"):
            ctx.broadcast(self.config.acceptor_names, record, tx=self.config.tx)

    def _outbid(self, ctx: Context) -> None:
        ctx.set_timer("retry", self.config.takeover_timeout)

    def _told(self, ctx: Context, outcome: str) -> None:
        """A new leader announced the outcome: adopt it."""
        if ctx.vars.get("outcome") is not None or ctx.state not in (
                "WAIT", "STANDBY", "RECOVERING"):
            return
        for timer in ("votes", "retry", "phase"):
            ctx.cancel_timer(timer)
        ctx.vars.pop("lead", None)
        ctx.vars["outcome"] = outcome
        record = "COMMIT" if outcome == "commit" else "ABORT"
        ctx.log(record, forced=False, decides=outcome, tx=self.config.tx)
        ctx.set_state("COMMITTED" if outcome == "commit" else "ABORTED")


class Participant(CommitParticipant):
    """A resource manager: the ballot-0 proposer of its own instance. Forces its vote
    before sending it to the acceptors; in doubt, asks the leader, then the acceptors."""

    record_types = frozenset({"PREPARED", "COMMITTED", "ABORT"})

    machine = PARTICIPANT_MACHINE
    config: PaxosCommitConfig

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("prepare", self.config.prepare_timeout)

    def on_PREPARE(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "PREPARED":  # a duplicate: send the same vote again
            ctx.vote("yes")
            self._propose(ctx, PREPARED)
            return
        if ctx.state != "INIT":
            return
        ctx.cancel_timer("prepare")
        if ctx.has_mark("vote_no") or not bank.can_apply(self.balance, self.operation):
            ctx.vote("no")
            self._abort_alone(ctx)
            return
        ctx.lock("balance")
        kind, amount = self.operation
        ctx.log("PREPARED", forced=True, tx=self.config.tx, op=kind, amount=amount)
        ctx.vote("yes")
        ctx.set_state("PREPARED")
        self._propose(ctx, PREPARED)
        ctx.set_timer("decision", self.config.decision_timeout)

    def on_P2B(self, ctx: Context, msg: Message) -> None:
        """Faster Paxos Commit: the acceptors tell the participants directly."""
        outcome = learn(ctx, msg.src, msg.payload["bal"], _payload_values(msg),
                        self.config.majority, tuple(self.order))
        if outcome == "commit":
            self._commit(ctx)
        elif outcome == "abort":
            self._abort(ctx)

    def on_COMMIT(self, ctx: Context, msg: Message) -> None:
        self._commit(ctx)

    def on_ABORT(self, ctx: Context, msg: Message) -> None:
        self._abort(ctx)

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
            ctx.restore_state("PREPARED")  # in doubt: keep the locks, vote again and ask
            if not ctx.locks:
                ctx.lock("balance")
            ctx.vote("yes")  # its forced PREPARED is its vote, even if the crash beat it
            self._propose(ctx, PREPARED)
            self._ask(ctx)
        else:
            ctx.restore_state("INIT")  # never voted: roll back and vote Aborted
            ctx.unlock()
            self._abort_alone(ctx)

    def _propose(self, ctx: Context, value: str) -> None:
        ctx.broadcast(self.config.normal_acceptors, "P2A", tx=self.config.tx, bal=0,
                      values={self.me: value})

    def _abort_alone(self, ctx: Context) -> None:
        """Before voting Prepared a participant may abort; it proposes Aborted in its
        own instance so the others need not wait for it."""
        ctx.log("ABORT", forced=False, decides="abort", tx=self.config.tx)
        ctx.unlock()
        ctx.set_state("ABORTED")
        self._propose(ctx, ABORTED)

    def _commit(self, ctx: Context) -> None:
        if ctx.state != "PREPARED":
            return
        kind, amount = self.operation
        ctx.log("COMMITTED", forced=True, decides="commit", tx=self.config.tx, op=kind,
                amount=amount)
        ctx.unlock()
        ctx.set_state("COMMITTED")
        ctx.cancel_timer("decision")

    def _abort(self, ctx: Context) -> None:
        if ctx.state not in ("INIT", "PREPARED"):
            return
        ctx.cancel_timer("decision")
        ctx.cancel_timer("prepare")
        ctx.log("ABORT", forced=False, decides="abort", tx=self.config.tx)
        ctx.unlock()
        ctx.set_state("ABORTED")

    def _ask(self, ctx: Context) -> None:
        """Ask the leader; from the second time on, the acceptors too (one of them
        takes over if the leader stays silent)."""
        asked = ctx.vars.get("asked", False)
        ctx.vars["asked"] = True  # whether, not how often: a count would grow forever
        targets = [COORDINATOR, *(self.config.acceptor_names if asked else ())]
        ctx.broadcast(targets, "DECISION_REQ", tx=self.config.tx)
        ctx.set_timer("decision", self.config.retry_interval)


class Acceptor(Leader):
    """One acceptor: for every instance it keeps the highest ballot it promised
    (``mbal``) and the ballot and value it last accepted, forced to its log before it
    answers. Asked by a participant in doubt, it takes over as leader if none is heard."""

    record_types = frozenset({"LEAD", "PROMISED", "ACCEPTED", "COMMIT", "ABORT"})

    machine = ACCEPTOR_MACHINE

    def __init__(self, name: str, rank: int, participants: Sequence[str],
                 config: PaxosCommitConfig) -> None:
        super().__init__()
        self.me = name
        self.owner = rank
        self.participants = tuple(participants)
        self.config = config

    def _is_acceptor(self) -> bool:
        return True

    def _state_of(self, ctx: Context, ins: str) -> list[Any]:
        """``[mbal, bal, val]`` of instance ``ins``."""
        acc: dict[str, list[Any]] = ctx.vars.setdefault("acc", {})
        return acc.get(ins, [0, -1, NONE])

    # phase 1 -------------------------------------------------------------------------
    def on_P1A(self, ctx: Context, msg: Message) -> None:
        bal = msg.payload["bal"]
        self._saw_ballot(ctx, bal)
        instances = [i for i in msg.payload.get("instances", []) if i in self.participants]
        votes = self._promise(ctx, bal, instances)
        if votes is None:
            ctx.send(msg.src, "REJECT", tx=self.config.tx, bal=bal,
                     higher=self._higher(ctx, instances))
        else:
            ctx.send(msg.src, "P1B", tx=self.config.tx, bal=bal, votes=votes)

    def _promise(self, ctx: Context, bal: int,
                 instances: list[str]) -> dict[str, list[Any]] | None:
        """Promise ballot ``bal`` in ``instances`` (forced); what it accepted in each,
        or None if it already promised a higher ballot in one of them."""
        states = {i: self._state_of(ctx, i) for i in instances}
        if any(s[0] > bal for s in states.values()):
            return None
        new = [i for i in instances if states[i][0] < bal]
        if new:
            acc = ctx.vars.setdefault("acc", {})
            for i in new:
                acc[i] = [bal, states[i][1], states[i][2]]
            ctx.log("PROMISED", forced=True, tx=self.config.tx, bal=bal, instances=new)
        return {i: [states[i][1], states[i][2]] for i in instances}

    def _higher(self, ctx: Context, instances: list[str]) -> int:
        return max([int(self._state_of(ctx, i)[0]) for i in instances] or [0])

    def _local_promise(self, ctx: Context, bal: int,
                       instances: list[str]) -> dict[str, list[Any]] | None:
        return self._promise(ctx, bal, instances)

    # phase 2 -------------------------------------------------------------------------
    def on_P2A(self, ctx: Context, msg: Message) -> None:
        bal = msg.payload["bal"]
        values = {i: v for i, v in _payload_values(msg).items()
                  if i in self.participants and v in (PREPARED, ABORTED)}
        if bal == 0:
            for ins, val in values.items():
                self._vote(ctx, ins, val)
            return
        self._saw_ballot(ctx, bal)
        if self._accept(ctx, bal, values):
            ctx.send(msg.src, "P2B", tx=self.config.tx, bal=bal, values=values)
        else:
            ctx.send(msg.src, "REJECT", tx=self.config.tx, bal=bal,
                     higher=self._higher(ctx, list(values)))

    def _accept(self, ctx: Context, bal: int, values: dict[str, str]) -> bool:
        """Accept ``values`` in ballot ``bal`` (forced), unless it promised a higher one."""
        states = {i: self._state_of(ctx, i) for i in values}
        if any(s[0] > bal for s in states.values()):
            return False
        if any(states[i] != [bal, bal, v] for i, v in values.items()):
            acc = ctx.vars.setdefault("acc", {})
            for i, v in values.items():
                acc[i] = [bal, bal, v]
            ctx.log("ACCEPTED", forced=True, tx=self.config.tx, bal=bal, values=dict(values))
            if ctx.state == "IDLE":
                ctx.set_state("ACCEPTED")
        return True

    def _local_accept(self, ctx: Context, bal: int, values: dict[str, str]) -> bool:
        return self._accept(ctx, bal, values)

    def _vote(self, ctx: Context, ins: str, val: str) -> None:
        """A participant's ballot-0 vote: bundled with the others' into one write and
        one P2B (sent at once if it is Aborted, or when every vote is in)."""
        state = self._state_of(ctx, ins)
        if state[0] > 0:
            return  # a leader took this instance over with a higher ballot
        if state[1] == 0:  # accepted already: a duplicate, answer again
            self._tell_learners(ctx, {ins: state[2]})
            return
        batch = ctx.vars.setdefault("batch", {})
        first = not batch
        batch[ins] = val
        if (ctx.vars.get("flushed") or val == ABORTED
                or all(p in batch for p in self.participants)):
            self._flush(ctx)
        elif first:
            ctx.set_timer("batch", self.config.batch_timeout)

    def _flush(self, ctx: Context) -> None:
        batch = ctx.vars.pop("batch", {})
        ctx.cancel_timer("batch")
        ctx.vars["flushed"] = True
        values = {p: batch[p] for p in self.participants
                  if p in batch and self._state_of(ctx, p)[0] == 0}
        if values and self._accept(ctx, 0, values):
            self._tell_learners(ctx, values)

    def _tell_learners(self, ctx: Context, values: dict[str, str]) -> None:
        learners = self.participants if self.config.faster else (COORDINATOR,)
        ctx.broadcast(learners, "P2B", tx=self.config.tx, bal=0, values=values)

    # taking over -----------------------------------------------------------------------
    def on_DECISION_REQ(self, ctx: Context, msg: Message) -> None:
        outcome = ctx.vars.get("outcome")
        if outcome is not None:
            ctx.send(msg.src, "COMMIT" if outcome == "commit" else "ABORT", tx=self.config.tx)
        elif not self._leading(ctx) and not ctx.vars.get("armed"):
            self._arm(ctx)

    def _arm(self, ctx: Context) -> None:
        """Wait for a leader; the lower the rank, the sooner this acceptor takes over."""
        ctx.vars["armed"] = True
        delay = self.config.takeover_timeout + (self.owner - 1) * self.config.takeover_gap
        ctx.set_timer("takeover", delay)

    def _saw_ballot(self, ctx: Context, bal: int) -> None:
        """A leader is at work with ballot ``bal``: postpone any takeover."""
        if not self._saw_higher(ctx, bal) and ctx.vars.get("armed"):
            self._arm(ctx)

    def on_COMMIT(self, ctx: Context, msg: Message) -> None:
        self._told(ctx, "commit")

    def on_ABORT(self, ctx: Context, msg: Message) -> None:
        self._told(ctx, "abort")

    def _told(self, ctx: Context, outcome: str) -> None:
        if ctx.vars.get("outcome") is not None:
            return
        ctx.vars["outcome"] = outcome
        ctx.vars.pop("lead", None)
        ctx.vars.pop("armed", None)
        ctx.cancel_timer("phase")
        ctx.cancel_timer("takeover")
        ctx.set_state("DONE")

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "batch":
            self._flush(ctx)
        elif name == "takeover":
            ctx.vars.pop("armed", None)
            if (ctx.vars.get("outcome") is None and not self._leading(ctx)
                    and self._may_lead(ctx)):
                ctx.set_state("LEADING")
                self._start_ballot(ctx)
        else:
            super().on_timer(ctx, name)

    def _outcome(self, ctx: Context, outcome: str) -> None:
        ctx.vars["outcome"] = outcome
        ctx.vars.pop("armed", None)
        ctx.cancel_timer("takeover")
        record = "COMMIT" if outcome == "commit" else "ABORT"
        ctx.log(record, forced=False, decides=outcome, tx=self.config.tx)
        ctx.set_state("DONE")
        others = [a for a in self.config.acceptor_names if a != self.me]
        ctx.broadcast([*self.participants, *others, COORDINATOR], record, tx=self.config.tx)

    def _outbid(self, ctx: Context) -> None:
        if ctx.state == "LEADING":
            accepted = any(s[1] >= 0 for s in ctx.vars.get("acc", {}).values())
            ctx.set_state("ACCEPTED" if accepted else "IDLE")
        self._arm(ctx)

    def on_recover(self, ctx: Context) -> None:
        """Rebuild every instance's promise and accepted value from the forced log."""
        acc: dict[str, list[Any]] = {}
        outcome = None
        for r in ctx.log_records:
            if r.record == "PROMISED":
                for i in r.data["instances"]:
                    old = acc.get(i, [0, -1, NONE])
                    acc[i] = [max(old[0], r.data["bal"]), old[1], old[2]]
            elif r.record == "ACCEPTED":
                for i, v in r.data["values"].items():
                    old = acc.get(i, [0, -1, NONE])
                    acc[i] = [max(old[0], r.data["bal"]), r.data["bal"], v]
            elif r.record in ("COMMIT", "ABORT"):
                outcome = "commit" if r.record == "COMMIT" else "abort"
        ctx.vars["acc"] = acc
        ctx.vars["maxbal"] = self._highest_ballot(ctx)
        if outcome is not None:
            ctx.vars["outcome"] = outcome
            ctx.restore_state("DONE")
            ctx.decide(outcome)
        else:
            ctx.restore_state("ACCEPTED" if any(s[1] >= 0 for s in acc.values()) else "IDLE")


class PaxosCommit(CommitProtocol):
    """Registry entry for ``"paxos-commit"``."""

    name = "paxos-commit"
    title = "Paxos Commit (Gray & Lamport)"
    config_class = PaxosCommitConfig
    machines = (COORDINATOR_MACHINE, PARTICIPANT_MACHINE, ACCEPTOR_MACHINE)
    coordinator_class = Coordinator
    participant_class = Participant
    # Each takeover uses a higher ballot: explored without a bound, the states are
    # infinite. One ballot above 0 per node covers a coordinator's own recovery and a
    # takeover by each acceptor (the figures: benchmarks/explore_paxos_commit.py).
    explore_options: ClassVar[dict[str, Any]] = {"max_ballots": 1}
    unused_options: ClassVar[dict[str, str]] = {
        "cooperative": "an in-doubt participant learns the outcome from the acceptors",
        "ack_timeout": "nobody acknowledges the outcome: it is safe with the acceptors",
    }

    def outcome_from_logs(self, logs: Logs, roster: Roster, config: Any,
                          running: Collection[str] = ()) -> Conclusion:
        """A decision any node logged; else the chosen values in the acceptors' logs
        (every instance Prepared: commit; one Aborted: abort); else abort if a
        participant not at work never voted Prepared (its instance cannot choose it);
        else None: no value is chosen yet in some instance, and only a leader running a
        ballot may choose one (a guess could contradict it). Chosen values never change,
        so nodes still running do not matter to those."""
        decided = logged_decision(logs)
        if decided is not None:
            return decided
        instances = roster.deciders
        accepted = accepted_in_logs(logs, config.acceptor_names, instances)
        chosen = chosen_values(accepted, config.majority)
        aborted = sorted(i for i, (_, val) in chosen.items() if val == ABORTED)
        if aborted:
            return Conclusion("abort", f"{aborted[0]}'s instance chose Aborted (a majority "
                                       "of acceptors accepted it)")
        open_ = [i for i in instances if i not in chosen]
        if not open_:
            return Conclusion("commit", "every instance chose Prepared (a majority of "
                                        "acceptors accepted it in each)")
        # Prepared enters an instance only as its participant's ballot-0 proposal, made
        # after forcing its vote; a later leader proposes it only where an acceptor had
        # accepted it. So an instance whose participant never logged its vote, is not at
        # work and whose Prepared no acceptor accepted can only ever choose Aborted.
        vote = self.participant_class.prepared_record
        prepared = {i for i, _, val in accepted if val == PREPARED}
        unvoted = [i for i in open_ if i not in running and i not in prepared
                   and not any(r.record == vote for r in logs.get(i, ()))]
        if unvoted:
            return Conclusion("abort", f"{unvoted[0]} never voted Prepared (no {vote} in its "
                                       "log) and no acceptor accepted it: its instance can "
                                       "only choose Aborted")
        return Conclusion(None, f"no value chosen yet for {', '.join(open_)}'s instance: "
                                "start the system again so that a leader can finish")

    def check_participants(self, participants: tuple[str, ...], options: dict[str, Any]) -> None:
        names = acceptor_names(acceptor_count(options.get("acceptors", DEFAULT_ACCEPTORS)))
        for p in participants:
            if p in names:
                raise TxlibError(f"participant name {p!r} is an acceptor's; in paxos-commit "
                                 f"the acceptors are {choices(names)}")

    def roster(self, participants: Sequence[str], options: dict[str, Any]) -> Roster:
        names = acceptor_names(acceptor_count(options.get("acceptors", DEFAULT_ACCEPTORS)))
        return Roster.of(super().roster(participants, options).nodes,
                         [NodeSpec(a, "acceptor") for a in names])

    def build(self, roster: Roster, config: Any) -> list[tuple[str, Role]]:
        nodes = super().build(roster, config)
        nodes += [(a, Acceptor(a, rank, roster.deciders, config))
                  for rank, a in enumerate(config.acceptor_names, 1)]
        return nodes
