"""Invariants and outcomes of a saga run, computed from the services' durable logs.

- **idempotency**: each step's action (and compensation) takes effect at most once;
- **semantic atomicity**: a completed saga applied T1..Tn; a compensated one applied
  T1..Tj and then Cj..C1 (in reverse order unless compensations run in parallel), and a
  step whose call went unanswered may be compensated without having applied;
- **domain rules** of the saga's definition (e.g. stock never negative, money conserved,
  no charge without an order), checked on the final stores once the saga has finished;
  among them :func:`no_record_left_pending`, the rule that every ending of a saga
  releases its semantic lock (no order is left ``PENDING``).

Each local transaction is one forced ``LOCAL_TX`` record in its service's log, so these
checks need no trace and hold across crashes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..engine.plain import plain_copy
from ..engine.records import LogRecord
from ..errors import TxlibError, shown
from .violation import Violation

TERMINAL = {"COMPLETED": "completed", "COMPENSATED": "compensated", "STUCK": "stuck"}
# The invariants of every saga (its definition's domain rules come on top: see
# saga_invariant_names).
SAGA_INVARIANTS: tuple[str, ...] = ("idempotency", "semantic atomicity")
DOMAIN = "domain: "  # a domain rule's invariant is named DOMAIN + the rule


def saga_invariant_names(rules: Sequence[str]) -> tuple[str, ...]:
    """The name of every invariant :func:`saga_violations` checks for a saga whose
    domain rules are named ``rules``."""
    return (*SAGA_INVARIANTS, *(DOMAIN + rule for rule in rules))


def no_record_left_pending(
    service: str, table: str, status: str = "PENDING"
) -> Callable[[Mapping[str, Any], Mapping[str, Any]], str | None]:
    """A domain rule for a saga that marks its records ``status`` (a semantic lock): once
    the saga has finished, completed or compensated, no record of ``table`` in
    ``service``'s store is still ``status``. A saga that forgot to release its lock
    (no approve step, or a compensation that never ran) breaks it."""

    def check(stores: Mapping[str, Any], ctx: Mapping[str, Any]) -> str | None:
        records = stores.get(service, {}).get(table, {})
        left = sorted(rid for rid, r in records.items() if r.get("status") == status)
        if not left:
            return None
        return (f"{', '.join(left)} {'is' if len(left) == 1 else 'are'} still {status} "
                "although the saga has finished: its semantic lock was never released")

    return check


def effects(
    logs: Mapping[str, Sequence[LogRecord]], saga_id: str | None = None
) -> list[tuple[int, str, str, str]]:
    """Every local transaction that took effect (of one saga instance, if ``saga_id`` is
    given): (time, service, kind, step), in time order (ties in the order services are
    listed)."""
    found = []
    for order, (node, log) in enumerate(logs.items()):
        for r in log:
            if r.record != "LOCAL_TX" or r.data["kind"] not in ("do", "undo"):
                continue
            if saga_id is not None and r.data.get("saga_id", saga_id) != saga_id:
                continue
            found.append((r.time, order, node, r.data["kind"], r.data["step"]))
    found.sort(key=lambda e: (e[0], e[1]))
    return [(t, node, kind, step) for t, _, node, kind, step in found]


def changing_effects(
    saga: Any, logs: Mapping[str, Sequence[LogRecord]], saga_id: str | None = None
) -> Counter[tuple[str, str]]:
    """How many local transactions of each (kind, step) actually changed their service's
    store: a command run twice whose second run changes nothing took effect once."""
    counts: Counter[tuple[str, str]] = Counter()
    for service, log in logs.items():
        before = saga.services.get(service)
        for r in log:
            if r.record != "LOCAL_TX":
                continue
            after = r.data["store"]
            mine = saga_id is None or r.data.get("saga_id", saga_id) == saga_id
            if mine and r.data["kind"] in ("do", "undo") and after != before:
                counts[(r.data["kind"], r.data["step"])] += 1
            before = after
    return counts


def final_stores(saga: Any, logs: Mapping[str, Sequence[LogRecord]]) -> dict[str, Any]:
    """Each service's store at the end: its last local transaction's, or the initial one."""
    stores = {}
    for service, initial in saga.services.items():
        last = [r for r in logs.get(service, ()) if r.record == "LOCAL_TX"]
        stores[service] = plain_copy(last[-1].data["store"] if last else initial)
    return stores


def _instance_violations(config: Any, done: list[tuple[int, str, str, str]], state: str,
                         last_step: int, label: str,
                         changed: Counter[tuple[str, str]]) -> list[Violation]:
    saga = config.definition
    names = [s.name for s in saga.steps]
    out: list[Violation] = []
    applied = Counter(step for _, _, kind, step in done if kind == "do")
    undone = Counter(step for _, _, kind, step in done if kind == "undo")
    for step in names:
        for kind, word in (("do", "applied"), ("undo", "compensated")):
            if changed[(kind, step)] > 1:
                out.append(Violation("idempotency", last_step,
                                     f"{label}{step} was {word} {changed[(kind, step)]} times"))
    if state == "COMPLETED":
        missing = [n for n in names if not applied[n]]
        if missing or undone:
            out.append(Violation(
                "semantic atomicity", last_step,
                f"{label}the saga completed but {', '.join(missing)} never applied"
                if missing else f"{label}the saga completed but compensations ran"))
    elif state == "COMPENSATED":
        prefix = [n for n in names if applied[n]]
        if prefix != names[: len(prefix)]:
            out.append(Violation("semantic atomicity", last_step,
                                 f"{label}the steps applied, {prefix}, are not T1..Tj"))
        for n in prefix:
            if saga.find(n).compensation is not None and not undone[n]:
                out.append(Violation("semantic atomicity", last_step,
                                     f"{label}{n} was applied but never compensated, "
                                     "though the saga says it was compensated"))
        if config.compensation_order == "sequential":
            order = [step for _, _, kind, step in done if kind == "undo"]
            expected = sorted(order, key=names.index, reverse=True)
            if order != expected:
                out.append(Violation("semantic atomicity", last_step,
                                     f"{label}compensations ran as {order}, "
                                     "not in reverse order"))
    return out


def saga_violations(
    config: Any, logs: Mapping[str, Sequence[LogRecord]], state: str, last_step: int = 0,
    states: Mapping[str, str] | None = None,
) -> list[Violation]:
    """Every broken saga invariant, with a plain-language reason.

    ``state`` is the saga's final state (COMPLETED, COMPENSATED, STUCK, or anything else
    for unfinished); with several concurrent instances, ``states`` maps each saga id to
    its own final state. Domain rules are checked once every instance has finished.
    """
    saga = config.definition
    out: list[Violation] = []
    many = states is not None and len(states) > 1
    by_instance: dict[str | None, str] = {None: state}
    if states:
        by_instance = {sid: st for sid, st in states.items()}
    for sid, st in by_instance.items():
        label = f"{sid}: " if many else ""
        out += _instance_violations(config, effects(logs, sid), st, last_step, label,
                                    changing_effects(saga, logs, sid))
    finals = set(by_instance.values())
    if finals <= {"COMPLETED", "COMPENSATED"}:
        stores = final_stores(saga, logs)
        for rule, check in saga.invariants:
            reason = _domain_reason(saga.name, rule, check, stores, config.input())
            if reason:
                out.append(Violation(DOMAIN + rule, last_step, reason))
    return out


def _domain_reason(saga: str, rule: str, check: Callable[..., Any],
                   stores: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    """What the saga's domain rule ``rule`` says of the final ``stores``: a reason (a
    string) when they break it, None (or "") when they keep it. Anything else, or an
    error in the rule's own code, is a TxlibError naming the rule."""
    try:
        reason = check(stores, context)
    except Exception as exc:  # the saga's own code: say which rule, plainly
        raise TxlibError(f"the rule {rule!r} of saga {saga} raised {type(exc).__name__}: "
                         f"{exc} (a rule is a function of (stores, context))") from exc
    if reason is None or reason == "":
        return None
    if not isinstance(reason, str):
        raise TxlibError(
            f"the rule {rule!r} of saga {saga} returned {shown(reason)}: a rule returns a "
            "reason (a string) when the stores break it, and None when they keep it (not "
            "True or False)")
    return reason
