"""Sagas by choreography: no orchestrator; services react to events through a broker.

The **broker** forces every published event to its durable event log, acknowledges the
publisher (PUBACK) and delivers the event to its subscribers *at least once*: it
re-delivers until the subscriber ACKs, so a consumer may see an event twice, and events
may arrive in any order. Each event has a deterministic id, ``"<saga_id>:<event>"``.

The **event flow** of steps T1..Tn: the broker starts the saga with ``saga_started``
(the client's request, as an event); the service of step k consumes ``<T(k-1)>_done``
(``saga_started`` for T1), runs the action as one local transaction and publishes
``<Tk>_done`` (with the saga's context so far) or, on a business failure,
``<Tk>_failed``. A failure travels back by events: ``<Tk>_failed`` and
``<Tk>_compensated`` make the service of T(k-1) compensate it and publish
``<T(k-1)>_compensated``. A compensation that keeps failing (per the step's
``compensation_retry``; the service NACKs so the broker re-delivers after the backoff)
is dead-lettered: ``<Tj>_compensation_failed``. A failure after the pivot is NACKed and
retried until it succeeds. Nobody holds the saga's state: the broker's event log is the
only place where it can be read (the broker's state shows it, for learners).

**Services** run each event as one local transaction: one forced ``LOCAL_TX`` record
(``key`` = the consumed event's id, ``saga_id``, ``step``, ``kind`` do/undo/fail, the
new ``store``, and ``reply``: the event to publish, or None), in the format of
:mod:`.saga`, so :mod:`txlib.properties.saga` reads both. They ACK the consumed event
after the commit.

- ``idempotent`` (default True): the event id is recorded in the same record as the
  effect, so a duplicate is recognised atomically and acknowledged without being applied.
- ``outbox`` (default True): the event to publish is written *in* the local transaction
  (the record's ``reply``); a relay publishes unacknowledged entries until the broker
  PUBACKs, and carries on after a crash. Without it the service commits, then publishes
  as a separate action (retrying only while it stays up): a crash in between **loses**
  the event. ``publish_first=True`` (only without the outbox) publishes before
  committing: a crash in between **invents** an event whose change never happened.

The defaults are the correct design, as in :mod:`.saga`: the bugs are options to switch
on, so that a learner can see what each mechanism prevents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from ..engine.config import EngineConfig
from ..engine.node import Context, Role
from ..engine.plain import plain_copy
from ..engine.records import LogRecord, Message
from ..engine.roster import NodeSpec, Roster
from ..engine.statemachine import machine
from ..errors import ProtocolError, TxlibError, shown
from ..properties import History, Verdict
from ..properties.events import EVENT_INVARIANTS, Committed, outbox_violations
from ..properties.saga import TERMINAL, saga_violations
from ..properties.violation import Violation
from ..sagas.definition import SagaDefinition, StepFailed, get_saga
from .saga import SagaProtocol, fit_horizon, is_saga_id

BROKER = "broker"
STARTED = "saga_started"
SUFFIXES = ("done", "failed", "compensated", "compensation_failed")
KIND_SUFFIX = {"do": "done", "fail": "failed", "undo": "compensated"}


@dataclass(frozen=True)
class ChoreographyConfig(EngineConfig):
    """Options of a choreographed saga (on top of the engine's network options).

    ``saga``, ``context``, ``saga_id``: as for "saga"; ``idempotent``: services
    deduplicate events by id; ``outbox``: publish through a transactional outbox;
    ``publish_first``: without the outbox, publish before committing (not after);
    ``redeliver_after``: how long the broker waits for an ACK before re-delivering;
    ``relay_interval``: how often an unacknowledged publish is tried again.
    """

    AT_LEAST_ONE: ClassVar[frozenset[str]] = frozenset({"redeliver_after", "relay_interval"})

    saga: str = "ecommerce"
    context: dict[str, Any] | None = None
    idempotent: bool = True
    outbox: bool = True
    publish_first: bool = False
    redeliver_after: int = 60
    relay_interval: int = 40
    saga_id: str = "S1"
    horizon: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        saga = self.definition
        if self.publish_first and self.outbox:
            raise TxlibError("option publish_first only applies without the outbox: "
                             "give outbox=False too (with the outbox the event is written "
                             "in the local transaction and published after it)")
        if self.context is not None and not isinstance(self.context, dict):
            raise TxlibError(f"option context must be a dict, got {self.context!r}")
        if not is_saga_id(self.saga_id):  # as for "saga" (an event id is "<saga_id>:<event>")
            raise TxlibError(f"option saga_id must be a word without '|', ':', spaces or "
                             f"control characters, got {shown(self.saga_id)}")
        saga.check_input(self.context or {}, "option context")

    @cached_property
    def definition(self) -> SagaDefinition:
        """The saga run: the one its name means when the configuration is made (see
        :attr:`txlib.protocols.saga.SagaConfig.definition`)."""
        return get_saga(self.saga)

    @property
    def compensation_order(self) -> str:
        """Failure events travel back one step at a time: always in reverse order."""
        return "sequential"

    def input(self) -> dict[str, Any]:
        ctx = plain_copy(dict(self.definition.context))
        ctx.update(plain_copy(self.context or {}))
        ctx["saga_id"] = self.saga_id
        return ctx


class Flow:
    """The saga's events: who publishes each one, who consumes it, which ones end it."""

    def __init__(self, saga: SagaDefinition) -> None:
        self.saga = saga
        self.steps = saga.steps
        self.published: dict[str, tuple[str, int]] = {}  # event -> (suffix, step index)
        for k, step in enumerate(self.steps):
            for suffix in SUFFIXES:
                name = f"{step.name}_{suffix}"
                if name in self.published:
                    raise TxlibError(f"saga {saga.name}: step names {step.name!r} and "
                                     f"{self.steps[self.published[name][1]].name!r} give the "
                                     f"same event name {name!r}; rename one of them")
                self.published[name] = (suffix, k)

    def event(self, suffix: str, k: int) -> str:
        return f"{self.steps[k].name}_{suffix}"

    def consumer(self, event: str) -> tuple[str, int] | None:
        """What ``event`` makes its subscriber do: ("do", k), ("undo", k) or nothing."""
        if event == STARTED:
            return ("do", 0)
        suffix, k = self.published[event]
        if suffix == "done" and k + 1 < len(self.steps):
            return ("do", k + 1)
        if suffix in ("failed", "compensated") and k >= 1:
            return ("undo", k - 1)
        return None

    def subscribers(self, event: str) -> tuple[str, ...]:
        target = self.consumer(event)
        return () if target is None else (self.steps[target[1]].service,)

    def status(self, events: Sequence[str]) -> str:
        """Where the saga stands, as the event log tells it (a broker state)."""
        if not events:
            return "INIT"
        seen = {self.published[e] for e in events if e != STARTED}
        if any(s == "compensation_failed" for s, _ in seen):
            return "STUCK"
        if ("failed", 0) in seen or ("compensated", 0) in seen:
            return "COMPENSATED"
        if any(s == "failed" for s, _ in seen):
            return "COMPENSATING"
        if ("done", len(self.steps) - 1) in seen:
            return "COMPLETED"
        return "RUNNING"


BROKER_MACHINE = machine(
    "broker",
    "INIT",
    [
        ("INIT", "RUNNING", "start: force saga_started to the event log, deliver it"),
        ("RUNNING", "COMPLETED", "logs the last step's done event"),
        ("RUNNING", "COMPENSATING", "logs a step's failed event: the failure travels back"),
        ("RUNNING", "COMPENSATED", "logs the first step's failed event: nothing to undo"),
        ("COMPENSATING", "COMPENSATED", "logs the first step's compensated event"),
        ("COMPENSATING", "STUCK", "logs a compensation_failed event (dead-lettered)"),
    ],
    terminal=("COMPLETED", "COMPENSATED", "STUCK"),
    describe={
        "INIT": "has not started the saga",
        "RUNNING": "forward events flow: each step's done event triggers the next step",
        "COMPENSATING": "a step failed: compensated events travel back, step by step",
        "COMPLETED": "the last step's done event is in the event log",
        "COMPENSATED": "the failure travelled back to the first step",
        "STUCK": "a compensation failed for good: needs an operator",
    },
)

SERVICE_MACHINE = machine(
    "service",
    "READY",
    [
        ("READY", "READY", "an event: one local transaction (deduplicated by event id), "
                           "then publish the next event and ACK"),
        ("READY", "STUCK", "its compensation keeps failing: publish compensation_failed"),
    ],
    describe={"READY": "consuming events, one local transaction each",
              "STUCK": "gave up on a compensation: an operator must step in"},
)


def _events(log: Sequence[LogRecord]) -> list[LogRecord]:
    return [r for r in log if r.record == "EVENT"]


class Broker(Role):
    """Keeps the durable event log and delivers each event at least once."""

    record_types = frozenset({"EVENT", "ACKED"})

    machine = BROKER_MACHINE

    def __init__(self, flow: Flow, config: ChoreographyConfig) -> None:
        super().__init__()
        self.flow = flow
        self.config = config

    def on_start(self, ctx: Context) -> None:
        cfg = self.config
        self._accept(ctx, f"{cfg.saga_id}:{STARTED}", STARTED, cfg.input(), BROKER)

    def on_recover(self, ctx: Context) -> None:
        events = _events(ctx.log_records)
        if not events:
            ctx.restore_state("INIT")
            self.on_start(ctx)
            return
        state = self.flow.status([r.data["event"] for r in events])
        ctx.restore_state(state)
        if state in TERMINAL:
            ctx.decide(TERMINAL[state])
        acked = self._acked(ctx)
        for r in events:  # every unacknowledged delivery starts again
            for sub in self.flow.subscribers(r.data["event"]):
                if (r.data["id"], sub) not in acked:
                    self._deliver(ctx, r.data, sub)

    def on_PUBLISH(self, ctx: Context, msg: Message) -> None:
        p = msg.payload
        if p["event"] not in self.flow.published:
            raise ProtocolError(f"{msg.src} published unknown event {p['event']!r}")
        if not any(r.data["id"] == p["id"] for r in _events(ctx.log_records)):
            self._accept(ctx, p["id"], p["event"], p["ctx"], msg.src)
        ctx.send(msg.src, "PUBACK", id=p["id"], event=p["event"])  # also for a duplicate

    def on_ACK(self, ctx: Context, msg: Message) -> None:
        key = msg.payload["id"]
        ctx.cancel_timer(self._timer(key, msg.src))
        if (key, msg.src) not in self._acked(ctx):
            ctx.log("ACKED", forced=False, id=key, subscriber=msg.src)

    def on_NACK(self, ctx: Context, msg: Message) -> None:
        key = msg.payload["id"]
        if (key, msg.src) not in self._acked(ctx):
            ctx.set_timer(self._timer(key, msg.src), msg.payload["retry_in"])

    def on_timer(self, ctx: Context, name: str) -> None:
        _, key, _, sub = name.split(" ")
        for r in _events(ctx.log_records):
            if r.data["id"] == key and (key, sub) not in self._acked(ctx):
                self._deliver(ctx, r.data, sub)

    def _accept(self, ctx: Context, key: str, event: str, saga_ctx: dict[str, Any],
                publisher: str) -> None:
        """Force the event to the event log, then deliver it to its subscribers."""
        names = [r.data["event"] for r in _events(ctx.log_records)]
        state = self.flow.status([*names, event])
        moves = state != ctx.state and ctx.state != "INIT" and self.machine.allows(
            ctx.state, state)
        end = TERMINAL[state] if moves and state in TERMINAL else None
        data = {"id": key, "event": event, "ctx": plain_copy(saga_ctx),
                "publisher": publisher}
        ctx.log("EVENT", forced=True, decides=end, **data)
        if ctx.state == "INIT":
            ctx.set_state("RUNNING")
        if moves:
            ctx.set_state(state)
        for sub in self.flow.subscribers(event):
            self._deliver(ctx, data, sub)

    def _deliver(self, ctx: Context, data: Mapping[str, Any], sub: str) -> None:
        ctx.send(sub, "EVENT", id=data["id"], event=data["event"], ctx=data["ctx"])
        ctx.set_timer(self._timer(data["id"], sub), self.config.redeliver_after)

    @staticmethod
    def _timer(key: str, sub: str) -> str:
        return f"redeliver {key} to {sub}"

    @staticmethod
    def _acked(ctx: Context) -> set[tuple[str, str]]:
        return {(r.data["id"], r.data["subscriber"]) for r in ctx.log_records
                if r.record == "ACKED"}


class Unsent:
    """An event a service must still publish (shown by its name in the volatile state)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return str(self.payload["event"])


class Service(Role):
    """A service: consumes events, one local transaction each, and publishes the next."""

    record_types = frozenset({"LOCAL_TX", "GAVE_UP", "PUBLISHED", "UNDO_FAILED"})

    machine = SERVICE_MACHINE

    def __init__(self, name: str, flow: Flow, config: ChoreographyConfig) -> None:
        super().__init__()
        self.me = name
        self.flow = flow
        self.config = config
        self.initial = plain_copy(flow.saga.services[name])

    # --- reading the durable log --------------------------------------------------------
    def store(self, ctx: Context) -> dict[str, Any]:
        """The committed store: the last local transaction's result (from the log)."""
        for r in reversed(ctx.log_records):
            if r.record == "LOCAL_TX":
                return plain_copy(r.data["store"])
        return plain_copy(self.initial)

    def _handled(self, ctx: Context, key: str) -> bool:
        return self.config.idempotent and any(
            r.record in ("LOCAL_TX", "GAVE_UP") and r.data["key"] == key
            for r in ctx.log_records)

    def _outbox(self, ctx: Context) -> list[dict[str, Any]]:
        """Outbox entries the broker has not acknowledged yet."""
        log = ctx.log_records
        sent = {r.data["id"] for r in log if r.record == "PUBLISHED"}
        entries = [r.data["reply"] for r in log
                   if r.record in ("LOCAL_TX", "GAVE_UP") and r.data["reply"] is not None]
        pending: dict[str, dict[str, Any]] = {}
        for e in entries:
            if e["id"] not in sent:
                pending.setdefault(e["id"], e)
        return list(pending.values())

    # --- events -------------------------------------------------------------------------
    def on_recover(self, ctx: Context) -> None:
        stuck = any(r.record == "GAVE_UP" for r in ctx.log_records)
        ctx.restore_state("STUCK" if stuck else "READY")
        if self.config.outbox:  # the relay carries on where it stopped
            self._relay(ctx)

    def on_EVENT(self, ctx: Context, msg: Message) -> None:
        key, event = msg.payload["id"], msg.payload["event"]
        target = self.flow.consumer(event)
        if target is None or self.flow.steps[target[1]].service != self.me:
            raise ProtocolError(f"{self.me} received {event}, which it does not consume")
        if self._handled(ctx, key):
            ctx.note("effect", f"duplicate event {event}: already handled (its id is in "
                               "the log), not applied again")
            ctx.send(BROKER, "ACK", id=key, event=event)
            return
        if target[0] == "do":
            self._act(ctx, msg, target[1])
        else:
            self._compensate(ctx, msg, target[1])

    def on_PUBACK(self, ctx: Context, msg: Message) -> None:
        key = msg.payload["id"]
        if self.config.outbox:
            if any(e["id"] == key for e in self._outbox(ctx)):
                ctx.log("PUBLISHED", forced=False, id=key)
            if not self._outbox(ctx):
                ctx.cancel_timer("relay")
            return
        unsent = [u for u in ctx.vars.get("unsent", []) if u.payload["id"] != key]
        ctx.vars["unsent"] = unsent
        if not unsent:
            del ctx.vars["unsent"]
            ctx.cancel_timer("republish")

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "relay":
            self._relay(ctx)
        elif name == "republish":
            unsent = ctx.vars.get("unsent", [])
            for u in unsent:
                ctx.send(BROKER, "PUBLISH", **u.payload)
            if unsent:
                ctx.set_timer("republish", self.config.relay_interval)

    # --- local transactions -------------------------------------------------------------
    def _act(self, ctx: Context, msg: Message, k: int) -> None:
        step = self.flow.steps[k]
        store = self.store(ctx)
        work = plain_copy(store)
        saga_ctx = plain_copy(msg.payload["ctx"])
        try:
            if ctx.step_fails(step.name):
                raise StepFailed(f"{step.name} failed")
            updates = step.apply(work, saga_ctx)
        except StepFailed as exc:
            if step.after_pivot:  # forward recovery only: the broker re-delivers later
                ctx.note("effect", f"fail {step.name}: {exc}; after the pivot, so it is "
                                   "retried (NACK)")
                ctx.send(BROKER, "NACK", id=msg.payload["id"], event=msg.payload["event"],
                          retry_in=step.retry.backoff)
                return
            self._finish(ctx, msg, k, "fail", store, saga_ctx, f"fail {step.name}: {exc}")
            return
        self._finish(ctx, msg, k, "do", work, {**saga_ctx, **updates}, f"do {step.name}")

    def _compensate(self, ctx: Context, msg: Message, k: int) -> None:
        step = self.flow.steps[k]
        work = self.store(ctx)
        saga_ctx = plain_copy(msg.payload["ctx"])
        key = msg.payload["id"]
        try:
            if ctx.step_fails(step.name, compensation=True):
                raise StepFailed("compensation failed")
            step.undo(work, saga_ctx)
        except StepFailed as exc:
            attempt = 1 + sum(1 for r in ctx.log_records
                              if r.record == "UNDO_FAILED" and r.data["key"] == key)
            ctx.log("UNDO_FAILED", forced=True, key=key, step=step.name, attempt=attempt)
            ctx.note("effect", f"undo {step.name} failed: {exc}")
            limit = step.compensation_retry.attempts
            if limit is None or attempt < limit:
                ctx.send(BROKER, "NACK", id=key, event=msg.payload["event"],
                          retry_in=step.compensation_retry.backoff)
                return
            self._finish(ctx, msg, k, "gave_up", work, saga_ctx,
                         f"undo {step.name} failed {attempt} times: dead-lettered")
            return
        self._finish(ctx, msg, k, "undo", work, saga_ctx, f"undo {step.name}")

    def _finish(self, ctx: Context, msg: Message, k: int, kind: str, store: dict[str, Any],
                saga_ctx: dict[str, Any], detail: str) -> None:
        """Commit (one forced record) and publish the outgoing event, in the order the
        options say, then ACK the consumed event."""
        suffix = "compensation_failed" if kind == "gave_up" else KIND_SUFFIX[kind]
        name = self.flow.event(suffix, k)
        event = {"id": f"{self.config.saga_id}:{name}", "event": name, "ctx": saga_ctx}
        key, sid = msg.payload["id"], self.config.saga_id
        step = self.flow.steps[k].name
        if kind == "gave_up":
            record = {"record": "GAVE_UP", "key": key, "saga_id": sid, "step": step}
        else:
            record = {"record": "LOCAL_TX", "key": key, "saga_id": sid, "step": step,
                      "kind": kind, "store": store}
        if self.config.outbox:
            self._commit(ctx, record, event, detail)
            ctx.send(BROKER, "PUBLISH", **event)  # the relay's first try, right away
            ctx.set_timer("relay", self.config.relay_interval)
        elif self.config.publish_first:
            self._publish(ctx, event)
            self._commit(ctx, record, None, detail)
        else:
            self._commit(ctx, record, None, detail)
            self._publish(ctx, event)
        if kind == "gave_up":
            ctx.set_state("STUCK")
        ctx.send(BROKER, "ACK", id=key, event=msg.payload["event"])

    @staticmethod
    def _commit(ctx: Context, record: dict[str, Any], reply: dict[str, Any] | None,
                detail: str) -> None:
        data = dict(record)
        ctx.log(data.pop("record"), forced=True, **data, reply=reply)
        ctx.note("effect", detail)

    def _publish(self, ctx: Context, event: dict[str, Any]) -> None:
        """Without the outbox: publish, retrying only while this process stays up."""
        ctx.vars["unsent"] = [*ctx.vars.get("unsent", []), Unsent(event)]
        ctx.send(BROKER, "PUBLISH", **event)
        ctx.set_timer("republish", self.config.relay_interval)

    def _relay(self, ctx: Context) -> None:
        """The outbox relay: publish every unacknowledged entry, and try again later."""
        pending = self._outbox(ctx)
        for e in pending:
            ctx.send(BROKER, "PUBLISH", **e)
        if pending:
            ctx.set_timer("relay", self.config.relay_interval)


# --- outcome and invariants, from the durable logs ---------------------------------------
def saga_state(flow: Flow, logs: Mapping[str, Sequence[LogRecord]]) -> str:
    """The saga's state as the broker's event log tells it (COMPLETED, STUCK, ...)."""
    return flow.status([r.data["event"] for r in _events(logs.get(BROKER, ()))])


def committed_events(flow: Flow, logs: Mapping[str, Sequence[LogRecord]]) -> list[Committed]:
    """Every event a service committed to publish, from its LOCAL_TX and GAVE_UP records
    (each event once, in log order)."""
    out: list[Committed] = []
    seen: set[str] = set()
    for service in flow.saga.services:
        for r in logs.get(service, ()):
            if r.record == "LOCAL_TX":
                k = flow.saga.step_names.index(r.data["step"])
                name = flow.event(KIND_SUFFIX[r.data["kind"]], k)
                what = f"its local transaction for {r.data['step']}"
            elif r.record == "GAVE_UP":
                name = f"{r.data['step']}_compensation_failed"
                what = f"that it gave up compensating {r.data['step']}"
            else:
                continue
            if name not in seen:
                seen.add(name)
                out.append(Committed(service, name, what))
    return out


def event_violations(config: ChoreographyConfig, flow: Flow,
                     logs: Mapping[str, Sequence[LogRecord]], last_step: int = 0
                     ) -> list[Violation]:
    """Lost and invented events (see :mod:`txlib.properties.events`)."""
    published = [r.data["event"] for r in _events(logs.get(BROKER, ()))
                 if r.data["event"] != STARTED]
    return outbox_violations(
        committed_events(flow, logs), published, can_lose=not config.outbox,
        publisher=lambda e: flow.steps[flow.published[e][1]].service,
        subscribers=flow.subscribers, last_step=last_step)


def choreography_violations(config: ChoreographyConfig, logs: Mapping[str, Sequence[LogRecord]],
                            last_step: int = 0) -> list[Violation]:
    """Every broken invariant: those of :func:`saga_violations` (idempotency, semantic
    atomicity, the saga's domain rules) and lost or invented events."""
    flow = Flow(config.definition)
    state = saga_state(flow, logs)
    return [*saga_violations(config, logs, state, last_step),
            *event_violations(config, flow, logs, last_step)]


class SagaChoreography(SagaProtocol):
    """Registry entry for ``"saga-choreography"`` (participants and faults are checked
    as for ``"saga"``)."""

    name = "saga-choreography"
    title = "Saga by choreography"
    config_class = ChoreographyConfig
    machines = (BROKER_MACHINE, SERVICE_MACHINE)

    def roster(self, participants: Sequence[str], options: dict[str, Any]) -> Roster:
        return Roster.of([NodeSpec(BROKER, "broker")],
                         [NodeSpec(s, "service") for s in participants])

    def make_config(self, participants: Sequence[str],
                    options: dict[str, Any]) -> ChoreographyConfig:
        self.refuse_unused(options)
        config = ChoreographyConfig.from_options(options)
        if not config.definition.steps:
            raise TxlibError(f"saga {config.saga} has no steps")
        Flow(config.definition)  # event names must not collide
        return fit_horizon(config, options)

    def build(self, roster: Roster, config: Any) -> list[tuple[str, Role]]:
        flow = Flow(config.definition)
        nodes: list[tuple[str, Role]] = [(BROKER, Broker(flow, config))]
        nodes += [(s, Service(s, flow, config)) for s in flow.saga.services]
        return nodes

    def judge(self, history: History) -> Verdict:
        """``completed``, ``compensated``, ``stuck`` (dead-lettered, or the chain of events
        stopped, e.g. at a lost event) or ``inconsistent`` (the stores break a rule, or a
        service acted on an invented event)."""
        found = self.violations(history)
        if any(v.invariant != "lost event" for v in found):
            return Verdict("inconsistent", tuple(found))
        state = saga_state(Flow(history.config.definition), history.logs)
        return Verdict(TERMINAL.get(state, "stuck"), tuple(found))

    def invariant_names(self, config: Any) -> tuple[str, ...]:
        return (*super().invariant_names(config), *EVENT_INVARIANTS)

    def violations(self, history: History) -> list[Violation]:
        return choreography_violations(history.config, history.logs, history.steps)
