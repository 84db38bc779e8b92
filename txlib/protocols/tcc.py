"""TCC (try / confirm / cancel): a coordinator reserves resources at every participant
with Try, then uses them with Confirm if every Try succeeded, or releases them with
Cancel otherwise.

The coordinator forces BEGIN, sends TRY to every participant and waits ``try_timeout``
for the answers. If every Try succeeded it forces CONFIRM and sends CONFIRM to all; if a
Try failed or stayed unanswered it forces CANCEL and sends CANCEL to *all* of them,
including the ones whose Try failed or never arrived (it cannot know which Trys ran).
It re-sends CONFIRM or CANCEL every ``retry_interval`` until every participant has
acknowledged, then writes END. A coordinator that restarts re-sends a logged decision;
with BEGIN but no decision in its log it presumes cancel.

Each participant owns an amount of one resource (units of stock, cents in a wallet) and
runs every command as one local transaction: one forced ``LOCAL_TX`` record holding the
new store. Its business code is the naive one: Try moves the requested amount from
*available* to *frozen*; Confirm drops the frozen entry and adds the amount to *used*;
Cancel drops the frozen entry and adds the amount back to *available*.

Two classic bugs follow from the network (Gray & Lamport's failure model: messages are
lost, duplicated, delayed):

- **null compensation**: a Cancel arrives for a Try that never ran (it was lost, or it
  failed), and "releases" an amount that was never frozen;
- **hanging**: a delayed Try arrives after the Cancel and freezes an amount that nobody
  will ever confirm or cancel.

``barrier=True`` (the default) adds DTM's sub-transaction barrier (Seata calls it the
fence): in the *same* local transaction as the business change, the participant records
which branch operations (try / confirm / cancel) of which transaction it has executed.
A repeated operation is answered without running again; a Cancel with no Try before it
is recorded and does nothing (a safe null compensation); a Try after a Cancel is refused
(no hanging). ``barrier=False`` shows both bugs, and duplicates applied twice.

Outcomes: ``confirmed`` (every participant confirmed), ``cancelled`` (every participant
cancelled), ``blocked`` (the run ended before every participant was told, e.g. the
coordinator is down: reservations are still held), ``inconsistent`` (an invariant is
broken; see :func:`tcc_violations`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..engine.config import EngineConfig
from ..engine.faults import Fault
from ..engine.node import Context, Role
from ..engine.plain import plain_copy
from ..engine.records import LogRecord, Message
from ..engine.roster import NodeSpec, Roster
from ..engine.statemachine import machine
from ..errors import TxlibError, bad_choice, choices
from ..properties import History, Verdict, Violation
from ..properties import outcomes as kinds
from ..properties.tcc import INVARIANTS, OUTCOMES, Resource, tcc_outcome, tcc_violations
from .base import COORDINATOR, Protocol

DEFAULT_PARTICIPANTS = ("inventory", "payment")
# participant -> (initially available, amount the transaction reserves, unit)
KNOWN_RESOURCES: dict[str, tuple[int, int, str]] = {
    "inventory": (10, 2, "units"),
    "payment": (500, 300, "cents"),
}
OTHER_RESOURCE = (10, 1, "units")
OP_MESSAGES = {"confirm": "CONFIRM", "cancel": "CANCEL"}


@dataclass(frozen=True)
class TccConfig(EngineConfig):
    """Options of a TCC run (on top of the engine's network options).

    ``tx`` names the global transaction; ``barrier`` turns the sub-transaction barrier
    on (default) or off; ``available`` maps participants to what they own at the start
    and ``amounts`` to what the Try reserves (defaults: inventory 10 units, reserve 2;
    payment 500 cents, reserve 300; any other participant 10 units, reserve 1).
    ``try_timeout``: how long the coordinator waits for the Try answers;
    ``retry_interval``: how often it re-sends Confirm or Cancel until acknowledged.
    """

    AT_LEAST_ONE: ClassVar[frozenset[str]] = frozenset({"try_timeout", "retry_interval"})

    tx: str = "T1"
    barrier: bool = True
    available: dict[str, Any] | None = None
    amounts: dict[str, Any] | None = None
    try_timeout: int = 60
    retry_interval: int = 60
    horizon: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.tx, str) or not self.tx:
            raise TxlibError(f"option tx must be a non-empty string, got {self.tx!r}")
        for name in ("available", "amounts"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TxlibError(f"option {name} must be a dict of participant -> whole "
                                 f"number, got {value!r}")

    def resources(self, participants: Sequence[str]) -> dict[str, Resource]:
        """Each participant's resource, checking ``available`` and ``amounts``."""
        for name, least in (("available", 0), ("amounts", 1)):
            given = getattr(self, name) or {}
            for p, value in given.items():
                if p not in participants:
                    raise bad_choice(f"participant in option {name}", p, participants)
                if not isinstance(value, int) or isinstance(value, bool) or value < least:
                    raise TxlibError(f"option {name}: {p} needs a whole number of {least} "
                                     f"or more, got {value!r}")
        out = {}
        for p in participants:
            available, amount, unit = KNOWN_RESOURCES.get(p, OTHER_RESOURCE)
            out[p] = Resource((self.available or {}).get(p, available),
                              (self.amounts or {}).get(p, amount), unit)
        return out


COORDINATOR_MACHINE = machine(
    "coordinator",
    "INIT",
    [
        ("INIT", "TRYING", "start: force BEGIN, send TRY to every participant"),
        ("TRYING", "CONFIRMING", "every Try succeeded: force CONFIRM, send it to all"),
        ("TRYING", "CANCELLING",
         "a Try failed or timed out (or recovery finds no decision): force CANCEL, "
         "send it to all"),
        ("CONFIRMING", "CONFIRMED", "every participant acknowledged: write END"),
        ("CANCELLING", "CANCELLED", "every participant acknowledged: write END"),
    ],
    terminal=("CONFIRMED", "CANCELLED"),
    describe={
        "INIT": "has not started the transaction",
        "TRYING": "sent TRY to every participant, collecting the answers",
        "CONFIRMING": "decided confirm (forced), re-sending CONFIRM until all acknowledge",
        "CANCELLING": "decided cancel (forced), re-sending CANCEL until all acknowledge",
        "CONFIRMED": "every participant confirmed",
        "CANCELLED": "every participant cancelled",
    },
)

PARTICIPANT_MACHINE = machine(
    "participant",
    "READY",
    [
        ("READY", "TRIED", "TRY: freeze the amount (one forced local transaction)"),
        ("TRIED", "CONFIRMED", "CONFIRM: use what was frozen"),
        ("TRIED", "CANCELLED", "CANCEL: release what was frozen"),
        ("READY", "CANCELLED",
         "CANCEL with no Try before it: null compensation (a barrier records it and "
         "releases nothing)"),
        ("CANCELLED", "TRIED", "no barrier: a late TRY freezes after the Cancel (hanging)"),
        ("CONFIRMED", "TRIED", "no barrier: a duplicate TRY freezes again after the Confirm"),
    ],
    terminal=("CONFIRMED", "CANCELLED"),
    describe={
        "READY": "owns its resource; nothing frozen for the transaction",
        "TRIED": "froze the amount: holds it until Confirm or Cancel",
        "CONFIRMED": "used the frozen amount",
        "CANCELLED": "released the frozen amount, or recorded a Cancel that had nothing "
                     "to release",
    },
)

_STATE_AFTER = {"try": "TRIED", "confirm": "CONFIRMED", "cancel": "CANCELLED"}


class TccCoordinator(Role):
    """The transaction manager: Try everywhere, then Confirm or Cancel everywhere."""

    record_types = frozenset({"BEGIN", "CONFIRM", "CANCEL", "ACKED", "END"})

    machine = COORDINATOR_MACHINE

    def __init__(self, participants: Sequence[str], config: TccConfig,
                 resources: Mapping[str, Resource]) -> None:
        super().__init__()
        self.participants = tuple(participants)
        self.config = config
        self.resources = dict(resources)

    # --- phase 1: Try ---------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self._begin(ctx)

    def _begin(self, ctx: Context) -> None:
        tx = self.config.tx
        ctx.log("BEGIN", forced=True, tx=tx, participants=list(self.participants))
        ctx.vars["tried"] = set()
        ctx.set_state("TRYING")
        for p in self.participants:
            ctx.send(p, "TRY", tx=tx, amount=self.resources[p].amount)
        ctx.set_timer("try", self.config.try_timeout)

    def on_TRIED(self, ctx: Context, msg: Message) -> None:
        if ctx.state != "TRYING" or msg.payload.get("tx") != self.config.tx:
            return  # a late or duplicate answer: the decision is taken
        tried = ctx.vars.setdefault("tried", set())
        tried.add(msg.src)
        if len(tried) == len(self.participants):
            self._decide(ctx, "confirm", "every Try succeeded")

    def on_TRY_FAILED(self, ctx: Context, msg: Message) -> None:
        if ctx.state == "TRYING" and msg.payload.get("tx") == self.config.tx:
            self._decide(ctx, "cancel", f"the Try at {msg.src} failed: "
                                        f"{msg.payload.get('reason', '')}")

    # --- phase 2: Confirm or Cancel, until everyone acknowledged ----------------------
    def _decide(self, ctx: Context, op: str, reason: str) -> None:
        ctx.cancel_timer("try")
        ctx.log(op.upper(), forced=True, decides=op, tx=self.config.tx, reason=reason)
        ctx.set_state("CONFIRMING" if op == "confirm" else "CANCELLING")
        ctx.vars["acked"] = set()
        self._send(ctx, op, self.participants)

    def _send(self, ctx: Context, op: str, to: Sequence[str]) -> None:
        for p in to:
            ctx.send(p, OP_MESSAGES[op], tx=self.config.tx, amount=self.resources[p].amount)
        ctx.set_timer("retry", self.config.retry_interval)

    def _op(self, ctx: Context) -> str | None:
        return {"CONFIRMING": "confirm", "CANCELLING": "cancel"}.get(ctx.state)

    def on_ACK(self, ctx: Context, msg: Message) -> None:
        op = self._op(ctx)
        if op is None or msg.payload.get("op") != op or msg.payload.get("tx") != self.config.tx:
            return
        acked = ctx.vars.setdefault("acked", set())
        if msg.src in acked:
            return
        acked.add(msg.src)
        ctx.log("ACKED", forced=False, tx=self.config.tx, participant=msg.src)
        if len(acked) == len(self.participants):
            ctx.cancel_timer("retry")
            ctx.log("END", forced=False, tx=self.config.tx, outcome=op)
            ctx.set_state("CONFIRMED" if op == "confirm" else "CANCELLED")

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "try" and ctx.state == "TRYING":
            tried = ctx.vars.get("tried", set())
            silent = [p for p in self.participants if p not in tried]
            self._decide(ctx, "cancel", "no answer to Try in time from " + ", ".join(silent))
        elif name == "retry":
            op = self._op(ctx)
            if op is not None:
                acked = ctx.vars.setdefault("acked", set())
                self._send(ctx, op, [p for p in self.participants if p not in acked])

    def on_recover(self, ctx: Context) -> None:
        records = ctx.log_records
        names = {r.record for r in records}
        if "BEGIN" not in names:  # crashed before it began: begin now
            ctx.restore_state("INIT")
            self._begin(ctx)
            return
        decision = next((r.record.lower() for r in records if r.record in ("CONFIRM", "CANCEL")),
                        None)
        if decision is None:  # Trys may be out, nothing decided: presume cancel
            ctx.restore_state("TRYING")
            self._decide(ctx, "cancel", "recovery found no decision: presume cancel")
            return
        ctx.decide(decision)
        if "END" in names:
            ctx.restore_state("CONFIRMED" if decision == "confirm" else "CANCELLED")
            return
        ctx.restore_state("CONFIRMING" if decision == "confirm" else "CANCELLING")
        acked = {r.data["participant"] for r in records if r.record == "ACKED"}
        ctx.vars["acked"] = acked
        self._send(ctx, decision, [p for p in self.participants if p not in acked])


class TccParticipant(Role):
    """A participant: one local transaction per command, optionally behind a barrier."""

    record_types = frozenset({"LOCAL_TX"})

    machine = PARTICIPANT_MACHINE

    def __init__(self, name: str, config: TccConfig, resource: Resource) -> None:
        super().__init__()
        self.me = name
        self.config = config
        self.resource = resource

    def initial(self) -> dict[str, Any]:
        """The store before any local transaction."""
        store: dict[str, Any] = {"available": self.resource.available, "frozen": {},
                                 "used": 0}
        if self.config.barrier:
            store["barrier"] = {}
        return store

    def store(self, ctx: Context) -> dict[str, Any]:
        """The committed store: the last local transaction's (from the log)."""
        for r in reversed(ctx.log_records):
            if r.record == "LOCAL_TX":
                return plain_copy(r.data["store"])
        return self.initial()

    # --- the business code (naive: it trusts the request) ------------------------------
    def _business(self, store: dict[str, Any], op: str, tx: str, amount: int) -> None:
        if op == "try":
            store["available"] -= amount
            store["frozen"][tx] = store["frozen"].get(tx, 0) + amount
        elif op == "confirm":
            store["frozen"].pop(tx, None)
            store["used"] += amount
        else:
            store["frozen"].pop(tx, None)
            store["available"] += amount

    # --- commands ---------------------------------------------------------------------
    def on_TRY(self, ctx: Context, msg: Message) -> None:
        tx, amount = msg.payload["tx"], msg.payload["amount"]
        unit = self.resource.unit
        store = self.store(ctx)
        if self.config.barrier:
            done = store["barrier"].get(tx, [])
            if "cancel" in done:
                ctx.note("effect", f"late Try of {tx} refused: the barrier shows {tx} was "
                                   "already cancelled here (no hanging)")
                ctx.send(msg.src, "TRY_FAILED", tx=tx, reason=f"{tx} was already cancelled")
                return
            if "try" in done:
                ctx.note("effect", f"duplicate Try of {tx}: the barrier shows it ran; "
                                   "nothing frozen again")
                ctx.send(msg.src, "TRIED", tx=tx)
                return
        if ctx.has_mark("vote_no") or store["available"] < amount:
            reason = ("cannot reserve (fault)" if ctx.has_mark("vote_no") else
                      f"only {store['available']} {unit} available, {amount} asked")
            ctx.note("effect", f"Try of {tx} failed: {reason}; nothing frozen")
            ctx.send(msg.src, "TRY_FAILED", tx=tx, reason=reason)
            return
        self._business(store, "try", tx, amount)
        effect = f"Try of {tx}: froze {amount} {unit}"
        if ctx.state in ("CANCELLED", "CONFIRMED"):
            effect += f" although {tx} is already {ctx.state.lower()} here"
        self._commit(ctx, store, "try", tx, amount, effect)
        ctx.lock(f"{tx} frozen")
        ctx.send(msg.src, "TRIED", tx=tx)

    def on_CONFIRM(self, ctx: Context, msg: Message) -> None:
        self._finish(ctx, msg, "confirm")

    def on_CANCEL(self, ctx: Context, msg: Message) -> None:
        self._finish(ctx, msg, "cancel")

    def _finish(self, ctx: Context, msg: Message, op: str) -> None:
        tx, amount = msg.payload["tx"], msg.payload["amount"]
        unit = self.resource.unit
        name = op.capitalize()
        store = self.store(ctx)
        null = False
        if self.config.barrier:
            done = store["barrier"].get(tx, [])
            if op in done:
                ctx.note("effect", f"duplicate {name} of {tx}: the barrier shows it ran; "
                                   "not applied again")
                ctx.send(msg.src, "ACK", tx=tx, op=op)
                return
            null = op == "cancel" and "try" not in done
        if null:
            effect = f"{name} of {tx} with no Try before it: null compensation, nothing released"
        else:
            self._business(store, op, tx, amount)
            verb = "used" if op == "confirm" else "released"
            effect = f"{name} of {tx}: {verb} {amount} {unit}"
        self._commit(ctx, store, op, tx, amount, effect, null=null)
        if not store["frozen"]:
            ctx.unlock()
        ctx.decide(op)
        ctx.send(msg.src, "ACK", tx=tx, op=op)

    def _commit(self, ctx: Context, store: dict[str, Any], op: str, tx: str, amount: int,
                effect: str, null: bool = False) -> None:
        """One local transaction: the business change and the barrier entry, in one
        forced record."""
        if self.config.barrier:
            store["barrier"].setdefault(tx, []).append(op)
        ctx.log("LOCAL_TX", forced=True, tx=tx, op=op, amount=amount, null=null, store=store)
        ctx.note("effect", effect)
        ctx.set_state(_STATE_AFTER[op])

    def on_recover(self, ctx: Context) -> None:
        last = next((r for r in reversed(ctx.log_records) if r.record == "LOCAL_TX"), None)
        if last is None:
            ctx.restore_state("READY")
            ctx.unlock()
            return
        ctx.restore_state(_STATE_AFTER[last.data["op"]])
        if last.data["op"] != "try":
            ctx.decide(last.data["op"])
        if last.data["store"]["frozen"]:
            ctx.lock(*(f"{tx} frozen" for tx in sorted(last.data["store"]["frozen"])))
        else:
            ctx.unlock()


class TryConfirmCancel(Protocol):
    """Registry entry for ``"tcc"``."""

    name = "tcc"
    title = "TCC: try / confirm / cancel"
    config_class = TccConfig
    machines = (COORDINATOR_MACHINE, PARTICIPANT_MACHINE)
    outcomes: ClassVar[dict[str, str]] = dict(zip(
        OUTCOMES, (kinds.DONE, kinds.UNDONE, kinds.WAITING, kinds.BROKEN), strict=True))

    def default_participants(self, options: dict[str, Any]) -> tuple[str, ...]:
        return DEFAULT_PARTICIPANTS

    def roster(self, participants: Sequence[str], options: dict[str, Any]) -> Roster:
        return Roster.of([NodeSpec(COORDINATOR, "coordinator")],
                         [NodeSpec(p, "participant", decides=True) for p in participants])

    def make_config(self, participants: Sequence[str], options: dict[str, Any]) -> TccConfig:
        self.refuse_unused(options)
        config = TccConfig.from_options(options)
        config.resources(participants)  # validate now, not mid-run
        return config

    def check_faults(self, faults: Sequence[Fault], roster: Roster,
                     options: dict[str, Any]) -> None:
        for f in faults:
            if f.kind == "fail_step":
                raise TxlibError("fail_step is a saga fault; in TCC make a participant's Try "
                                 "fail with vote_no(participant)")
            if f.kind == "vote_no" and f.node not in roster.deciders:
                raise TxlibError(f"vote_no makes a participant's Try fail; got {f.node!r}, "
                                 f"valid choices: {choices(roster.deciders)}")

    def build(self, roster: Roster, config: TccConfig) -> list[tuple[str, Role]]:
        participants = roster.deciders
        resources = config.resources(participants)
        nodes: list[tuple[str, Role]] = [
            (COORDINATOR, TccCoordinator(participants, config, resources))]
        nodes += [(p, TccParticipant(p, config, resources[p])) for p in participants]
        return nodes

    def judge(self, history: History) -> Verdict:
        found = self.violations(history)
        return Verdict(tcc_outcome(history.states[COORDINATOR], found), tuple(found))

    def invariant_names(self, config: Any) -> tuple[str, ...]:
        return INVARIANTS

    def violations(self, history: History) -> list[Violation]:
        resources = history.config.resources(history.roster.deciders)
        return tcc_violations(resources, history.logs, history.events, history.steps)


def final_stores(options: Mapping[str, Any], participants: Sequence[str],
                 logs: Mapping[str, Sequence[LogRecord]]) -> dict[str, dict[str, Any]]:
    """Each participant's store at the end of a TCC run with these scenario ``options``
    (its last local transaction's, or its initial store)."""
    config = TccConfig.from_options(dict(options))
    resources = config.resources(participants)
    out = {}
    for p in participants:
        last = [r for r in logs[p] if r.record == "LOCAL_TX"]
        if last:
            out[p] = plain_copy(last[-1].data["store"])
        else:
            out[p] = TccParticipant(p, config, resources[p]).initial()
    return out
