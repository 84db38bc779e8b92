"""Sagas by orchestration: an orchestrator with a durable saga log drives local
transactions at services, and compensates them in reverse order when a step fails.

Every service runs each command as one local transaction: it applies the step's action
(or compensation) to a copy of its store, then forces one log record holding the new
store and the reply, so a crash never leaves half a transaction. Commands carry an
idempotency key; a service that has seen the key replies from its log without applying
the effect again (``idempotent=False`` turns that off, to show why it matters).

The orchestrator forces a record before every call and after every answer, so after a
crash it rebuilds where the saga stood from its log alone and carries on: it re-sends an
unanswered call with the same key (the service deduplicates), or continues compensating.
A call's outcome is *ok*, *business failure*, or *unknown* (no reply in time); unknown
calls are retried per the step's policy, then treated as failed. Whether the step whose
call went unanswered is compensated too depends on ``register_compensation``: "before"
(its compensation is registered before the call, as Temporal's Java sample does) or
"after" (only once the call succeeded, as its Go sample does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from ..engine.config import MAX_NUMBER, EngineConfig
from ..engine.faults import Fault
from ..engine.node import Context, Role
from ..engine.plain import plain_copy
from ..engine.records import LogRecord, Message
from ..engine.roster import NodeSpec, Roster
from ..engine.statemachine import machine
from ..errors import TxlibError, bad_choice, shown
from ..properties import History, Verdict, Violation, outcomes
from ..properties.saga import TERMINAL, saga_invariant_names, saga_violations
from ..sagas.definition import SagaDefinition, Step, StepFailed, get_saga
from .base import Protocol

ORCHESTRATOR = "orchestrator"
REGISTER_CHOICES = ("after", "before")
ORDER_CHOICES = ("sequential", "parallel")
# The most saga instances one run may hold: a few show every isolation anomaly (the
# lessons use two), and a run of this many stays well under a second (every instance
# adds records to the services' stores, which each local transaction copies).
MAX_INSTANCES = 50
INSTANCE_FIELDS = ("saga_id", "context", "start")


@dataclass(frozen=True)
class SagaConfig(EngineConfig):
    """Options of a saga run (on top of the engine's network options).

    ``saga``: the definition's name ("ecommerce", "ecommerce-pivot", or one you defined);
    ``context``: input that replaces keys of the definition's input; ``call_timeout``:
    how long the orchestrator waits for a reply; ``register_compensation``: "after" or
    "before" the call; ``compensation_order``: "sequential" (reverse order, one at a
    time) or "parallel"; ``idempotent``: services deduplicate commands by key;
    ``barrier``: a service that has compensated a step refuses a later command to do it
    (a late or duplicated command would otherwise apply a step after its compensation,
    with a key deduplication cannot match: TCC's "hanging", in a saga). ``horizon``:
    2,000 unless a long saga needs more (:func:`fit_horizon`), or as given.
    """

    AT_LEAST_ONE: ClassVar[frozenset[str]] = frozenset({"call_timeout"})

    saga: str = "ecommerce"
    context: dict[str, Any] | None = None
    call_timeout: int = 60
    register_compensation: str = "after"
    compensation_order: str = "sequential"
    idempotent: bool = True
    barrier: bool = True
    saga_id: str = "S1"
    instances: list[Any] | None = None
    horizon: int = 2000

    def __post_init__(self) -> None:
        super().__post_init__()
        saga = self.definition
        if self.register_compensation not in REGISTER_CHOICES:
            raise bad_choice("register_compensation", self.register_compensation,
                             REGISTER_CHOICES)
        if self.compensation_order not in ORDER_CHOICES:
            raise bad_choice("compensation_order", self.compensation_order, ORDER_CHOICES)
        if self.context is not None and not isinstance(self.context, dict):
            raise TxlibError(f"option context must be a dict, got {self.context!r}")
        if not is_saga_id(self.saga_id):
            raise TxlibError(f"option saga_id must be a word without '|', ':', spaces or "
                             f"control characters, got {shown(self.saga_id)}")
        saga.check_input(self.context or {}, "option context")
        if self.instances is not None:  # each instance has its own id and context
            given = [o for o, dflt in (("context", None), ("saga_id", "S1"))
                     if getattr(self, o) != dflt]
            if given:
                raise TxlibError(f"option {' and '.join(given)} would change nothing with "
                                 "instances: give each instance its own (instances=[{"
                                 "'saga_id': ..., 'context': {...}}, ...])")
        for spec in self.instance_specs():
            saga.check_input(spec["context"], f"the context of saga instance {spec['saga_id']}")

    @cached_property
    def definition(self) -> SagaDefinition:
        """The saga run: the one its name means when the configuration is made (a saga
        of that name defined later changes nothing a scenario made before runs)."""
        return get_saga(self.saga)

    def instance_specs(self) -> list[dict[str, Any]]:
        """The saga instances to run: by default one, ``saga_id`` with ``context``.

        ``instances`` runs several at once over the same services (to show isolation
        anomalies): a list of ``{"saga_id": ..., "context": {...}, "start": time}``, at
        most MAX_INSTANCES of them.
        """
        return list(self._specs.values())

    @cached_property
    def _specs(self) -> dict[str, dict[str, Any]]:
        """saga_id -> instance spec, in order (worked out once: runs ask for it often)."""
        if self.instances is None:
            return {self.saga_id: {"saga_id": self.saga_id, "context": self.context or {},
                                   "start": 0}}
        if not isinstance(self.instances, list) or not self.instances:
            raise TxlibError(f"option instances must be a non-empty list, "
                             f"got {shown(self.instances)}")
        if len(self.instances) > MAX_INSTANCES:
            raise TxlibError(f"option instances holds at most {MAX_INSTANCES} saga instances "
                             f"(a budget, to keep a run short), got {len(self.instances):,}")
        specs: dict[str, dict[str, Any]] = {}
        for n, spec in enumerate(self.instances, start=1):
            item = instance_spec(n, spec)
            if item["saga_id"] in specs:
                raise TxlibError(f"saga instances need distinct saga_id values: "
                                 f"{item['saga_id']!r} is used twice")
            if item["start"] > self.horizon:  # it would never begin, and the run look stuck
                raise TxlibError(f"saga instance {item['saga_id']} starts at "
                                 f"{item['start']:,}, after the horizon ({self.horizon:,}), "
                                 "so it would never begin: start it earlier or raise the "
                                 "option horizon")
            specs[item["saga_id"]] = item
        return specs

    def input(self, saga_id: str | None = None) -> dict[str, Any]:
        """The context a saga instance starts with."""
        spec = self._specs.get(saga_id or "") or self.instance_specs()[0]
        ctx = plain_copy(dict(self.definition.context))
        ctx.update(plain_copy(spec["context"]))
        ctx["saga_id"] = spec["saga_id"]
        return ctx


SagaConfigT = TypeVar("SagaConfigT", bound=EngineConfig)


def fit_horizon(config: SagaConfigT, options: Mapping[str, Any],
                latest_start: int = 0) -> SagaConfigT:
    """``config``, its default horizon raised to fit its saga: the default (2,000) cut a
    long saga off while it was still working through its steps, with no fault at all,
    and the run read as stuck. Room for every step's call and reply, and those of its
    compensation, twice over (a lost message and its retry fit too), at the slowest
    latency, after the latest instance starts (rounded up to a thousand), and at most
    the largest horizon an option takes (:data:`MAX_NUMBER`: a slow network's latency
    is not refused for a horizon nobody gave). A horizon given as an option is kept."""
    if "horizon" in options:
        return config
    hops = 2 * 4 * len(config.definition.steps)  # type: ignore[attr-defined]  # a saga's
    need = min(-(-(latest_start + hops * config.latency_max) // 1000) * 1000, MAX_NUMBER)
    return replace(config, horizon=need) if need > config.horizon else config


def is_saga_id(value: object) -> bool:
    """Whether ``value`` can name a saga instance: a non-empty string without '|' or ':'
    (they separate the parts of timer names and idempotency keys), spaces, or control
    characters (the diagrams of several instances prefix each label with its saga id,
    and a control character makes the picture unreadable)."""
    return (isinstance(value, str) and value != "" and value.isprintable()
            and not any(c in value for c in "|: "))


def instance_spec(n: int, spec: object) -> dict[str, Any]:
    """Saga instance number ``n`` of option ``instances``, checked, with its defaults."""
    if not isinstance(spec, dict):
        raise TxlibError(f"each saga instance must be a dict, got {shown(spec)}")
    unknown = set(spec) - set(INSTANCE_FIELDS)
    if unknown:
        raise bad_choice("saga instance field", min(unknown, key=str), INSTANCE_FIELDS)
    start = spec.get("start", 0)
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise TxlibError(f"instance start must be a time of 0 or more, got {shown(start)}")
    sid = spec.get("saga_id", f"S{n}")
    if not is_saga_id(sid):
        raise TxlibError(f"a saga_id is a word without '|', ':', spaces or control "
                         f"characters, got {shown(sid)}")
    context = spec.get("context") or {}
    if not isinstance(context, dict):
        raise TxlibError(f"the context of saga instance {sid} must be a dict, "
                         f"got {shown(context)}")
    return {"saga_id": sid, "context": dict(context), "start": start}


ORCHESTRATOR_MACHINE = machine(
    "orchestrator",
    "INIT",
    [
        ("INIT", "RUNNING", "start: force START, call the first step"),
        ("RUNNING", "COMPLETED", "every step done: force END"),
        ("RUNNING", "COMPENSATING", "a step failed (or stayed unanswered): undo the done ones"),
        ("COMPENSATING", "COMPENSATED", "every compensation done: force END"),
        ("COMPENSATING", "STUCK", "a compensation keeps failing: an operator must step in"),
    ],
    terminal=("COMPLETED", "COMPENSATED", "STUCK"),
    describe={
        "INIT": "has not started the saga",
        "RUNNING": "calling the steps in order",
        "COMPENSATING": "undoing the completed steps in reverse order",
        "COMPLETED": "every step succeeded",
        "COMPENSATED": "every completed step was undone",
        "STUCK": "a compensation failed for good: needs an operator",
    },
)

SERVICE_MACHINE = machine(
    "service",
    "READY",
    [("READY", "READY", "a command: one local transaction, then the reply")],
    describe={"READY": "serving commands, one local transaction each"},
)


# --- what the orchestrator knows, folded from its durable log ---------------------------
@dataclass
class Progress:
    """The saga as its log tells it."""

    ctx: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    done: set[int] = field(default_factory=set)
    called: dict[int, int] = field(default_factory=dict)  # attempts made
    failed_gen: dict[int, int] = field(default_factory=dict)  # business failures seen
    failed: int | None = None  # the step that sent the saga backwards
    failed_business: bool = False  # ... with a business failure (nothing applied)
    undone: set[int] = field(default_factory=set)
    undo_calls: dict[int, int] = field(default_factory=dict)
    undo_failures: dict[int, int] = field(default_factory=dict)  # business failures
    stuck: int | None = None
    end: str | None = None

    @classmethod
    def of(cls, log: Sequence[LogRecord], saga_id: str) -> Progress:
        p = cls()
        p.fold(log, saga_id)
        return p

    def fold(self, records: Sequence[LogRecord], saga_id: str) -> None:
        """Apply ``records`` (the next ones of the log) to what this progress knows."""
        p = self
        for r in records:
            d = r.data
            if d.get("saga_id") != saga_id:
                continue
            if r.record == "START":
                p.started, p.ctx = True, plain_copy(d["ctx"])
            elif r.record == "CALL":
                p.called[d["step"]] = p.called.get(d["step"], 0) + 1
            elif r.record == "DONE":
                p.done.add(d["step"])
                p.ctx.update(plain_copy(d["updates"]))
            elif r.record == "RETRY":  # a business failure after the pivot: try anew
                p.failed_gen[d["step"]] = p.failed_gen.get(d["step"], 0) + 1
                p.called[d["step"]] = 0
            elif r.record in ("FAILED", "GAVE_UP") and p.failed is None:
                p.failed = d["step"]
                p.failed_business = r.record == "FAILED"
            elif r.record == "UNDO":
                p.undo_calls[d["step"]] = p.undo_calls.get(d["step"], 0) + 1
            elif r.record == "UNDO_FAILED":
                p.undo_failures[d["step"]] = p.undo_failures.get(d["step"], 0) + 1
            elif r.record == "UNDONE":
                p.undone.add(d["step"])
            elif r.record == "STUCK":
                p.stuck = d["step"]
            elif r.record == "END":
                p.end = d["outcome"]


def read_log(ctx: Context, key: Any, start: Any, fold: Any) -> Any:
    """A value folded from ``ctx``'s log, kept in ``ctx.memo`` under ``key`` and brought
    up to date with the records written since (linear in the log over a whole run,
    not quadratic). ``start()`` makes an empty value; ``fold(value, records)`` applies
    records to it. A crash that lost lazy records, or a log that changed under the
    cache, makes it start again from the whole log."""
    cached = ctx.memo.get(key)
    n = ctx.log_length
    if cached is not None and cached[0] <= n:
        seen, last, value = cached
        tail = ctx.log_since(seen - 1) if seen else ctx.log_since(0)
        if seen == 0 or tail[0] is last:
            new = tail[1:] if seen else tail
            fold(value, new)
            ctx.memo[key] = (n, new[-1] if new else last, value)
            return value
    value = start()
    records = ctx.log_since(0)
    fold(value, records)
    ctx.memo[key] = (n, records[-1] if records else None, value)
    return value


class Progresses(dict[str, Progress]):
    """Every saga instance's progress by saga_id, folded in one pass over the log (one
    fold per instance would read each record once per instance: quadratic)."""

    def fold(self, records: Sequence[LogRecord]) -> None:
        """Apply ``records`` (the next ones of the log) to the progress of the saga
        instance each names."""
        for r in records:
            sid = r.data.get("saga_id")
            if isinstance(sid, str):
                self.setdefault(sid, Progress()).fold((r,), sid)


def progresses(ctx: Context) -> Progresses:
    """Every saga instance as the orchestrator's log tells it (kept incrementally)."""
    return read_log(ctx, "progress", Progresses,  # type: ignore[no-any-return]
                    Progresses.fold)


def progress(ctx: Context, sid: str) -> Progress:
    """Saga instance ``sid`` as the orchestrator's log tells it (kept incrementally)."""
    return progresses(ctx).get(sid) or Progress()


class Orchestrator(Role):
    """Drives saga instances from its durable saga log (usually one instance; several run
    concurrently when the ``instances`` option asks for it). Every log record, timer and
    message names its instance's ``saga_id``."""

    record_types = frozenset({"START", "CALL", "RETRY", "DONE", "FAILED", "UNDO", "UNDONE",
                              "UNDO_FAILED", "GAVE_UP", "STUCK", "END"})

    machine = ORCHESTRATOR_MACHINE

    def __init__(self, saga: SagaDefinition, config: SagaConfig) -> None:
        super().__init__()
        self.saga = saga
        self.steps = saga.steps
        self.config = config
        self.ids = [i["saga_id"] for i in config.instance_specs()]

    # --- events -------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        ctx.set_state("RUNNING")
        for spec in self.config.instance_specs():
            if spec["start"] == 0:
                self._begin(ctx, spec["saga_id"])
            else:
                ctx.set_timer(f"start|{spec['saga_id']}", spec["start"])

    def _begin(self, ctx: Context, sid: str) -> None:
        ctx.log("START", forced=True, saga_id=sid, saga=self.saga.name,
                ctx=self.config.input(sid))
        self._drive(ctx, sid)

    def on_recover(self, ctx: Context) -> None:
        ctx.restore_state(self._overall(ctx) or "RUNNING")
        if ctx.state not in ("RUNNING", "COMPENSATING"):
            ctx.decide({"COMPLETED": "completed", "COMPENSATED": "compensated"}
                       .get(ctx.state, "stuck"))
            return
        for spec in self.config.instance_specs():
            sid = spec["saga_id"]
            p = progress(ctx, sid)
            if not p.started:
                if spec["start"] <= ctx.now:
                    self._begin(ctx, sid)
                else:
                    ctx.set_timer(f"start|{sid}", spec["start"] - ctx.now)
            elif p.end is None and p.stuck is None:
                self._drive(ctx, sid, resend=True)

    def on_OK(self, ctx: Context, msg: Message) -> None:
        sid, i = self._expected(ctx, msg, "call")
        if i is None:
            return
        ctx.cancel_timer(f"call|{sid}")
        ctx.log("DONE", forced=True, saga_id=sid, step=i,
                updates=msg.payload.get("updates", {}))
        self._drive(ctx, sid)

    def on_FAIL(self, ctx: Context, msg: Message) -> None:
        sid, i = self._expected(ctx, msg, "call")
        if i is None:
            return
        ctx.cancel_timer(f"call|{sid}")
        step = self.steps[i]
        reason = msg.payload.get("reason", "")
        if step.after_pivot:  # forward recovery only: try again, with a fresh key
            ctx.log("RETRY", forced=True, saga_id=sid, step=i, reason=reason)
            ctx.set_timer(f"resend|{sid}", step.retry.backoff)
            return
        ctx.log("FAILED", forced=True, saga_id=sid, step=i, reason=reason)
        self._drive(ctx, sid)

    def on_UNDONE(self, ctx: Context, msg: Message) -> None:
        sid, j = self._expected(ctx, msg, "undo")
        if j is None:
            return
        ctx.cancel_timer(f"undo|{sid}|{j}")
        ctx.log("UNDONE", forced=True, saga_id=sid, step=j)
        self._drive(ctx, sid)

    def on_UNDO_FAIL(self, ctx: Context, msg: Message) -> None:
        sid, j = self._expected(ctx, msg, "undo")
        if j is None:
            return
        ctx.cancel_timer(f"undo|{sid}|{j}")
        ctx.log("UNDO_FAILED", forced=True, saga_id=sid, step=j,
                reason=msg.payload.get("reason", ""))
        self._retry_undo(ctx, sid, j, progress(ctx, sid))

    def on_timer(self, ctx: Context, name: str) -> None:
        what, sid, *rest = name.split("|")
        if what == "start":
            self._begin(ctx, sid)
            return
        p = progress(ctx, sid)
        if p.end is not None or p.stuck is not None:
            return
        if what in ("call", "resend"):
            self._drive(ctx, sid, resend=True)
        elif what == "undo":
            self._retry_undo(ctx, sid, int(rest[0]), p)
        elif what == "reundo":
            self._send_undo(ctx, sid, int(rest[0]), p)

    # --- the one place that decides what to do next ---------------------------------------
    def _drive(self, ctx: Context, sid: str, resend: bool = False) -> None:
        p = progress(ctx, sid)
        if p.end is None and p.stuck is None:
            if p.failed is None:
                self._forward(ctx, sid, p, resend)
            else:
                self._backward(ctx, sid, p, resend)
        self._settle(ctx)

    def _overall(self, ctx: Context) -> str | None:
        """The node's state from every instance's progress (None: nothing started)."""
        known = progresses(ctx)
        every = [known.get(sid) or Progress() for sid in self.ids]
        if not any(p.started for p in every):
            return None
        if any(p.stuck is not None for p in every):
            return "STUCK"
        if all(p.end is not None for p in every):
            return "COMPLETED" if all(p.end == "completed" for p in every) else "COMPENSATED"
        return "COMPENSATING" if any(p.failed is not None for p in every) else "RUNNING"

    def _settle(self, ctx: Context) -> None:
        """Move the node's state along with its instances; decide when all are over."""
        target = self._overall(ctx)
        if target is None or target == ctx.state:
            return
        if ctx.state == "RUNNING" and target in ("COMPENSATED", "STUCK"):
            ctx.set_state("COMPENSATING")
        ctx.set_state(target)
        if target in ("COMPLETED", "COMPENSATED", "STUCK"):
            ctx.decide({"COMPLETED": "completed", "COMPENSATED": "compensated"}
                       .get(target, "stuck"))

    def _forward(self, ctx: Context, sid: str, p: Progress, resend: bool) -> None:
        i = next((k for k in range(len(self.steps)) if k not in p.done), None)
        if i is None:
            ctx.log("END", forced=True, saga_id=sid, outcome="completed")
            return
        step = self.steps[i]
        attempts = p.called.get(i, 0)
        if attempts and not resend:
            return  # the call is out; wait for its reply or its timeout
        limit = step.retry.attempts
        if attempts and limit is not None and attempts >= limit and not (
            step.pivot or step.after_pivot
        ):
            ctx.log("GAVE_UP", forced=True, saga_id=sid, step=i, attempts=attempts)
            self._drive(ctx, sid)
            return
        ctx.log("CALL", forced=True, saga_id=sid, step=i, attempt=attempts + 1)
        ctx.send(step.service, "DO", saga_id=sid, step=step.name,
                 key=self._key(sid, i, "do", p), ctx=plain_copy(p.ctx))
        ctx.set_timer(f"call|{sid}", self.config.call_timeout)

    def _to_undo(self, p: Progress) -> list[int]:
        """Steps to compensate, newest first."""
        steps = set(p.done)
        if self.config.register_compensation == "before":
            # Registered before the call: an unanswered call may have applied, so it is
            # compensated too (a business failure applied nothing, so it is not).
            steps |= {k for k, n in p.called.items()
                      if n and not (k == p.failed and p.failed_business)}
        return sorted((k for k in steps if self.steps[k].compensation is not None),
                      reverse=True)

    def _backward(self, ctx: Context, sid: str, p: Progress, resend: bool) -> None:
        pending = [j for j in self._to_undo(p) if j not in p.undone]
        if not pending:
            ctx.log("END", forced=True, saga_id=sid, outcome="compensated")
            return
        batch = pending if self.config.compensation_order == "parallel" else pending[:1]
        for j in batch:
            if p.undo_calls.get(j, 0) == 0 or resend:
                self._send_undo(ctx, sid, j, p)

    def _send_undo(self, ctx: Context, sid: str, j: int, p: Progress) -> None:
        step = self.steps[j]
        ctx.log("UNDO", forced=True, saga_id=sid, step=j, attempt=p.undo_calls.get(j, 0) + 1)
        ctx.send(step.service, "UNDO", saga_id=sid, step=step.name,
                 key=self._key(sid, j, "undo", p), ctx=plain_copy(p.ctx))
        ctx.set_timer(f"undo|{sid}|{j}", self.config.call_timeout)

    def _retry_undo(self, ctx: Context, sid: str, j: int, p: Progress) -> None:
        """Try a compensation again after its backoff. An unanswered one is retried for
        as long as it takes (the service may just be down); one that failed is retried
        per its policy, and then the saga is stuck."""
        limit = self.steps[j].compensation_retry.attempts
        if limit is not None and p.undo_failures.get(j, 0) >= limit:
            ctx.log("STUCK", forced=True, saga_id=sid, step=j)
            self._settle(ctx)
            return
        ctx.set_timer(f"reundo|{sid}|{j}", self.steps[j].compensation_retry.backoff)

    def _key(self, sid: str, i: int, kind: str, p: Progress) -> str:
        gen = p.failed_gen.get(i, 0)
        return f"{sid}:{self.steps[i].name}:{kind}" + (f":{gen}" if gen else "")

    def _expected(self, ctx: Context, msg: Message, kind: str) -> tuple[str, int | None]:
        """The instance and step a reply answers, if it is the answer we wait for."""
        sid = str(msg.payload.get("saga_id"))
        name = msg.payload.get("step")
        index = next((k for k, s in enumerate(self.steps) if s.name == name), None)
        if index is None or sid not in self.ids:
            return sid, None
        p = progress(ctx, sid)
        if p.end is not None or p.stuck is not None:
            return sid, None
        if msg.payload.get("key") != self._key(sid, index, "do" if kind == "call" else "undo",
                                                p):
            return sid, None
        if kind == "call":
            current = next((k for k in range(len(self.steps)) if k not in p.done), None)
            return sid, index if p.failed is None and index == current else None
        return sid, index if p.failed is not None and index not in p.undone else None


@dataclass
class ServiceView:
    """What a service's log says: each command key's reply (the first one, for
    deduplication), the committed store, and the (saga, step) pairs it compensated."""

    replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    store: dict[str, Any] | None = None
    compensated: set[tuple[str, str]] = field(default_factory=set)

    def fold(self, records: Sequence[LogRecord]) -> None:
        for r in records:
            if r.record != "LOCAL_TX":
                continue
            d = r.data
            self.replies.setdefault(d["key"], d["reply"])
            self.store = d["store"]
            if d["kind"] == "undo":
                self.compensated.add((d["saga_id"], d["step"]))


class Service(Role):
    """A service: runs each command as one local transaction on its own store."""

    record_types = frozenset({"LOCAL_TX"})

    machine = SERVICE_MACHINE

    def __init__(self, name: str, saga: SagaDefinition, config: SagaConfig) -> None:
        super().__init__()
        self.me = name
        self.saga = saga
        self.config = config
        self.initial = plain_copy(saga.services[name])

    def _view(self, ctx: Context) -> ServiceView:
        return read_log(ctx, "service", ServiceView,  # type: ignore[no-any-return]
                        ServiceView.fold)

    def store(self, ctx: Context) -> dict[str, Any]:
        """The committed store: the last local transaction's result (from the log)."""
        return plain_copy(self._committed(ctx))

    def _committed(self, ctx: Context) -> dict[str, Any]:
        """The committed store itself, not a copy: never change it."""
        last = self._view(ctx).store
        return self.initial if last is None else last

    def _seen(self, ctx: Context, key: str) -> dict[str, Any] | None:
        if not self.config.idempotent:
            return None
        return self._view(ctx).replies.get(key)

    def _compensated(self, ctx: Context, saga_id: str, step: str) -> bool:
        """True if the barrier is on and this service compensated ``step`` of ``saga_id``."""
        return self.config.barrier and (saga_id, step) in self._view(ctx).compensated

    def on_DO(self, ctx: Context, msg: Message) -> None:
        self._run(ctx, msg, undo=False)

    def on_UNDO(self, ctx: Context, msg: Message) -> None:
        self._run(ctx, msg, undo=True)

    def _run(self, ctx: Context, msg: Message, undo: bool) -> None:
        key, name = msg.payload["key"], msg.payload["step"]
        step: Step = self.saga.find(name)
        seen = self._seen(ctx, key)
        if seen is not None:
            ctx.note("effect", f"duplicate {'undo' if undo else 'do'} {name}: "
                               f"answered from the log, not applied again")
            ctx.send(msg.src, seen["type"], saga_id=msg.payload["saga_id"], step=name, key=key,
                     **seen["body"])
            return
        store = self._committed(ctx)  # read only: the transaction works on a copy
        reply: dict[str, Any]
        if not undo and self._compensated(ctx, msg.payload["saga_id"], name):
            # The barrier: this step was compensated here, so the saga gave up on it; a
            # command to do it now is late (delayed or duplicated) and must not apply.
            reply = {"type": "FAIL", "body": {"reason": f"{name} was already compensated "
                                                        "here (barrier)"}}
            ctx.log("LOCAL_TX", forced=True, key=key, saga_id=msg.payload["saga_id"],
                    step=name, kind="refused", store=store, reply=reply)
            ctx.note("effect", f"refused do {name}: already compensated (barrier)")
            ctx.send(msg.src, "FAIL", saga_id=msg.payload["saga_id"], step=name, key=key,
                     **reply["body"])
            return
        work = plain_copy(store)
        saga_ctx = msg.payload["ctx"]
        try:
            if ctx.step_fails(name, compensation=undo):
                raise StepFailed("compensation failed" if undo else f"{name} failed")
            if undo:
                step.undo(work, saga_ctx)
                reply = {"type": "UNDONE", "body": {}}
            else:
                reply = {"type": "OK", "body": {"updates": step.apply(work, saga_ctx)}}
        except StepFailed as exc:
            if undo:  # a failed compensation leaves no trace: it may be retried
                ctx.note("effect", f"undo {name} failed: {exc}")
                ctx.send(msg.src, "UNDO_FAIL", saga_id=msg.payload["saga_id"], step=name,
                         key=key, reason=str(exc))
                return
            work = store  # business failure: the local transaction rolls back
            reply = {"type": "FAIL", "body": {"reason": str(exc)}}
        kind = "undo" if undo else ("do" if reply["type"] == "OK" else "fail")
        ctx.log("LOCAL_TX", forced=True, key=key, saga_id=msg.payload["saga_id"], step=name,
                kind=kind, store=work, reply=reply)
        ctx.note("effect", f"{kind} {name}" + (f": {reply['body']['reason']}"
                                                if kind == "fail" else ""))
        ctx.send(msg.src, reply["type"], saga_id=msg.payload["saga_id"], step=name, key=key,
                 **reply["body"])


class SagaProtocol(Protocol):
    """What both saga styles share: the services come from the saga definition, and a
    ``fail_step`` fault names one of its steps."""

    outcomes: ClassVar[dict[str, str]] = {
        "completed": outcomes.DONE, "compensated": outcomes.UNDONE,
        "stuck": outcomes.WAITING, "inconsistent": outcomes.BROKEN}

    def default_participants(self, options: dict[str, Any]) -> tuple[str, ...]:
        return tuple(get_saga(options.get("saga", "ecommerce")).services)

    def check_participants(self, participants: tuple[str, ...], options: dict[str, Any]) -> None:
        services = self.default_participants(options)
        if participants != services:
            raise TxlibError(
                f"a saga's nodes are its services {list(services)}; got {list(participants)} "
                "(leave participants out)"
            )

    def invariant_names(self, config: Any) -> tuple[str, ...]:
        return saga_invariant_names([rule for rule, _ in config.definition.invariants])

    def steps_at(self, node: str, options: dict[str, Any]) -> tuple[str, ...]:
        saga = get_saga(options.get("saga", "ecommerce"))
        return tuple(s.name for s in saga.steps if s.service == node)

    def check_faults(self, faults: Sequence[Fault], roster: Roster,
                     options: dict[str, Any]) -> None:
        saga = get_saga(options.get("saga", "ecommerce"))
        for f in faults:
            if f.kind == "fail_step" and f.step is not None:
                step = saga.find(f.step)
                if f.compensation and step.compensation is None:
                    raise TxlibError(f"step {f.step} has no compensation to fail")
            elif f.kind == "vote_no":
                raise TxlibError("vote_no is a commit-protocol fault; in a saga use "
                                 "fail_step(step)")


class SagaOrchestration(SagaProtocol):
    """Registry entry for ``"saga"``."""

    name = "saga"
    title = "Saga by orchestration"
    config_class = SagaConfig
    machines = (ORCHESTRATOR_MACHINE, SERVICE_MACHINE)

    def roster(self, participants: Sequence[str], options: dict[str, Any]) -> Roster:
        return Roster.of([NodeSpec(ORCHESTRATOR, "orchestrator")],
                         [NodeSpec(s, "service") for s in participants])

    def make_config(self, participants: Sequence[str], options: dict[str, Any]) -> SagaConfig:
        self.refuse_unused(options)
        config = SagaConfig.from_options(options)
        if not config.definition.steps:
            raise TxlibError(f"saga {config.saga} has no steps")
        latest = max(spec["start"] for spec in config.instance_specs())
        return fit_horizon(config, options, latest)

    def build(self, roster: Roster, config: Any) -> list[tuple[str, Role]]:
        saga = config.definition
        nodes: list[tuple[str, Role]] = [(ORCHESTRATOR, Orchestrator(saga, config))]
        nodes += [(s, Service(s, saga, config)) for s in saga.services]
        return nodes

    def judge(self, history: History) -> Verdict:
        found = self.violations(history)
        state = history.states[ORCHESTRATOR]
        return Verdict("inconsistent" if found else TERMINAL.get(state, "stuck"), tuple(found))

    def violations(self, history: History) -> list[Violation]:
        config = history.config
        logs = history.logs
        return saga_violations(config, logs, history.states[ORCHESTRATOR], history.steps,
                               instance_states(config, logs[ORCHESTRATOR]))


def instance_states(config: SagaConfig, log: Sequence[LogRecord]) -> dict[str, str]:
    """Each saga instance's final state, from the orchestrator's log."""
    states = {}
    every = Progresses()
    every.fold(log)
    for spec in config.instance_specs():
        p = every.get(spec["saga_id"]) or Progress()
        if p.end is not None:
            states[spec["saga_id"]] = p.end.upper()
        elif p.stuck is not None:
            states[spec["saga_id"]] = "STUCK"
        else:
            states[spec["saga_id"]] = "RUNNING"
    return states
