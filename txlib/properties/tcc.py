"""TCC's invariants and outcome, from the participants' durable logs.

Each Try, Confirm and Cancel is one forced ``LOCAL_TX`` record (op, tx, amount, the new
store and whether it was a null compensation) in its participant's log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..engine.records import LogRecord, TraceEvent
from .violation import Violation

OUTCOMES = ("confirmed", "cancelled", "blocked", "inconsistent")
# Every invariant tcc_violations checks (see there).
INVARIANTS: tuple[str, ...] = ("conservation", "no null compensation",
                               "no hanging reservation", "idempotency", "atomicity")


@dataclass(frozen=True)
class Resource:
    """What one participant owns and what the transaction asks of it."""

    available: int
    amount: int
    unit: str



def _local_tx_steps(trace: Sequence[TraceEvent] | None) -> dict[str, list[int]]:
    """The scheduler step of each node's LOCAL_TX writes, in order (one pass over the
    trace, whatever the number of participants). Every LOCAL_TX is forced, so a crash
    never loses one: a node's k-th write is the k-th record of its log."""
    steps: dict[str, list[int]] = {}
    for e in trace or ():
        if e.kind == "log" and e.detail == "LOCAL_TX (forced)" and e.node is not None:
            steps.setdefault(e.node, []).append(e.step)
    return steps


def tcc_violations(
    resources: Mapping[str, Resource], logs: Mapping[str, Sequence[LogRecord]],
    trace: Sequence[TraceEvent] | None = None, last_step: int = 0,
) -> list[Violation]:
    """Every broken TCC invariant, each at the step it first broke, with a plain reason.

    - **conservation**: a participant's available + frozen + used equals what it started
      with (nothing created, nothing lost);
    - **no null compensation**: a Cancel never releases an amount its Try did not freeze;
    - **no hanging reservation**: no Try freezes after the transaction was cancelled or
      confirmed at that participant (nobody would ever release it);
    - **idempotency**: each branch operation takes effect at most once per participant;
    - **atomicity**: no participant confirms a transaction another one cancelled.
    """
    found: list[Violation] = []
    finished: dict[str, dict[str, tuple[str, int]]] = {}  # tx -> participant -> (op, step)
    steps_of = _local_tx_steps(trace)
    for p, res in resources.items():
        steps = steps_of.get(p, [])
        applied: Counter[tuple[str, str]] = Counter()
        first_excess: dict[tuple[str, str], int] = {}
        froze: set[str] = set()
        ended: dict[str, str] = {}
        conserved = True
        records = [r for r in logs.get(p, ()) if r.record == "LOCAL_TX"]
        for k, r in enumerate(records):
            d = r.data
            tx, op, amount, store = d["tx"], d["op"], d["amount"], d["store"]
            step = steps[k] if k < len(steps) else last_step
            applied[(tx, op)] += 1
            if applied[(tx, op)] == 2:
                first_excess[(tx, op)] = step
            if op == "try":
                if tx in ended:
                    found.append(Violation(
                        "no hanging reservation", step,
                        f"{p} froze {amount} {res.unit} for {tx} after {tx} was already "
                        f"{ended[tx]} there: a hanging reservation nobody will ever confirm "
                        "or cancel"))
                froze.add(tx)
            else:
                if op == "cancel" and not d["null"] and tx not in froze:
                    found.append(Violation(
                        "no null compensation", step,
                        f"{p}'s Cancel of {tx} released {amount} {res.unit} that no Try had "
                        "frozen (null compensation)"))
                ended.setdefault(tx, "cancelled" if op == "cancel" else "confirmed")
                finished.setdefault(tx, {}).setdefault(p, (op, step))
            total = store["available"] + sum(store["frozen"].values()) + store["used"]
            if conserved and total != res.available:
                conserved = False
                diff = total - res.available
                found.append(Violation(
                    "conservation", step,
                    f"{p} accounts for {total} {res.unit} (available {store['available']}, "
                    f"frozen {sum(store['frozen'].values())}, used {store['used']}) but "
                    f"started with {res.available}: {abs(diff)} {res.unit} "
                    + ("appeared from nowhere" if diff > 0 else "vanished")))
        for (tx, op), n in sorted(applied.items()):
            if n > 1:
                found.append(Violation(
                    "idempotency", first_excess[(tx, op)],
                    f"{p} applied the {op.capitalize()} of {tx} {n} times"))
    for tx, ops in sorted(finished.items()):
        confirmed = [(s, p) for p, (op, s) in ops.items() if op == "confirm"]
        cancelled = [(s, p) for p, (op, s) in ops.items() if op == "cancel"]
        if confirmed and cancelled:
            (s1, a), (s2, b) = min(confirmed), min(cancelled)
            found.append(Violation("atomicity", max(s1, s2),
                                   f"{a} confirmed {tx} while {b} cancelled it"))
    found.sort(key=lambda v: v.step)
    return found


def tcc_outcome(coordinator_state: str, violations: Sequence[Violation]) -> str:
    """``confirmed``, ``cancelled``, ``blocked`` (not every participant was told the
    decision before the run ended) or ``inconsistent`` (an invariant is broken)."""
    if violations:
        return "inconsistent"
    return {"CONFIRMED": "confirmed", "CANCELLED": "cancelled"}.get(coordinator_state,
                                                                   "blocked")
