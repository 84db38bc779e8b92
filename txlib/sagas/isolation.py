"""Sagas are not isolated: two sagas running at once over the same stock, the anomalies
that follow, and the countermeasures that fix them.

Every saga here is one *stock move*: change the stock of an item by ``qty`` at the
``inventory`` service (negative: a sale; positive: a restock from a supplier), and
settle its bill at the ``payment`` service, which fails when the context says
``"payment": "declined"``. Two instances (saga ids ``A`` and ``B``) run concurrently with
the orchestrator's ``instances`` option, and their ``start`` times interleave them:

- **lost update**: the compensation *restores the old value* of the stock (not a
  semantic undo). A sells 2 (10 -> 8, remembering 10), B sells 3 (8 -> 5), A's payment is
  declined and its compensation writes back 10: B's sale is gone from the count.
- **dirty read**: the compensation is a semantic, commutative undo (subtract what was
  added), which cures the lost update, but not this: A restocks 5 (10 -> 15), B sells 12
  on the strength of it (15 -> 3), A's supplier bill is declined and the 5 units go back:
  the stock is -2. B acted on a change that was never final.

Countermeasures (each one, alone, fixes both):

- **semantic lock**: a move marks the item ``PENDING`` until its saga ends (compensated,
  or confirmed by a last step); another saga's move sees ``PENDING`` and is refused, so
  it can be retried later. Even the restore-the-old-value compensation is then safe.
- **reordering**: settle the bill first (the step that may fail), then move the stock.
  A declined payment then fails before anything visible changed, so nothing anyone else
  could have read needs compensating.

:func:`stock_saga` builds every variant; the registered names are in :data:`VARIANTS`.
The invariants are functions returning a plain-language reason when broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine.config import MAX_NUMBER
from ..errors import TxlibError, bad_choice, shown
from .definition import Context, SagaDefinition, StepFailed, Store, built_ins, whole_number

ITEM = "ITEM-1"
INITIAL_STOCK = 10
STORES: dict[str, Store] = {
    "inventory": {"stock": {ITEM: INITIAL_STOCK}, "moves": {}, "pending": {}},
    "payment": {"bills": {}},
}
CONTEXT: dict[str, Any] = {"item": ITEM, "qty": -1, "payment": "ok"}
COMPENSATIONS = ("restore", "commutative")
PAYMENTS = ("ok", "declined")


def check_move_input(ctx: Context, where: str) -> None:
    """Refuse a stock move the saga cannot mean: an item that is not a name, a ``qty``
    that is not a whole number (negative: a sale), a ``payment`` not "ok"/"declined"."""
    if "item" in ctx and not isinstance(ctx["item"], str):
        raise TxlibError(f"item in {where} must be a string, got {shown(ctx['item'])}")
    if "qty" in ctx:
        whole_number(ctx["qty"], f"qty in {where}", low=-MAX_NUMBER)
    if "payment" in ctx and ctx["payment"] not in PAYMENTS:
        raise bad_choice(f"payment in {where}", ctx["payment"], PAYMENTS)


# --- the services' local transactions ------------------------------------------------
def _move(store: Store, ctx: Context, lock: bool) -> dict[str, Any]:
    item, qty, sid = ctx["item"], ctx["qty"], ctx["saga_id"]
    holder = store["pending"].get(item)
    if lock and holder not in (None, sid):
        raise StepFailed(f"{item} is PENDING: saga {holder} has not finished its move; "
                         "try again later")
    stock = store["stock"].get(item, 0)
    if stock + qty < 0:
        raise StepFailed(f"insufficient stock: {stock} {item} left, {-qty} wanted")
    store["stock"][item] = stock + qty
    store["moves"][sid] = qty
    if lock:
        store["pending"][item] = sid
    return {"stock_before": stock}


def move_stock(store: Store, ctx: Context) -> dict[str, Any]:
    """Change the stock by ``qty`` (read, add, write) and record the move."""
    return _move(store, ctx, lock=False)


def move_stock_locked(store: Store, ctx: Context) -> dict[str, Any]:
    """As :func:`move_stock`, but refused while another saga's move of the item is
    PENDING, and marking the item PENDING itself (a semantic lock)."""
    return _move(store, ctx, lock=True)


def _unlock(store: Store, ctx: Context) -> None:
    if store["pending"].get(ctx["item"]) == ctx["saga_id"]:
        del store["pending"][ctx["item"]]


def restore_stock(store: Store, ctx: Context) -> None:
    """Not a semantic undo: write back the stock as the move found it."""
    store["stock"][ctx["item"]] = ctx["stock_before"]
    store["moves"].pop(ctx["saga_id"], None)
    _unlock(store, ctx)


def unmove_stock(store: Store, ctx: Context) -> None:
    """A semantic, commutative undo: take the move back (stock minus ``qty``). It does
    not check whether it already ran, so it is not idempotent on its own."""
    store["stock"][ctx["item"]] -= ctx["qty"]
    store["moves"].pop(ctx["saga_id"], None)
    _unlock(store, ctx)


def settle(store: Store, ctx: Context) -> dict[str, Any]:
    """Settle the move's bill (a customer pays, or we pay the supplier)."""
    if ctx["payment"] == "declined":
        raise StepFailed(f"the bill of {ctx['saga_id']} was declined")
    store["bills"][ctx["saga_id"]] = {"item": ctx["item"], "qty": ctx["qty"],
                                      "status": "SETTLED"}
    return {"settled": True}


def refund(store: Store, ctx: Context) -> None:
    """Undo the settlement (only this saga's own bill: nobody else reads it)."""
    bill = store["bills"].get(ctx["saga_id"])
    if bill is not None and bill["status"] == "SETTLED":
        bill["status"] = "REFUNDED"


def confirm_move(store: Store, ctx: Context) -> dict[str, Any]:
    """The move is final: lift the semantic lock."""
    _unlock(store, ctx)
    return {}


# --- the business rules ------------------------------------------------------------------
def stock_never_negative(stores: Mapping[str, Store], ctx: Context) -> str | None:
    for item, n in sorted(stores["inventory"]["stock"].items()):
        if n < 0:
            return f"the stock of {item} is {n}: {-n} units were sold that do not exist"
    return None


def stock_matches_moves(stores: Mapping[str, Store], ctx: Context) -> str | None:
    inv = stores["inventory"]
    for item, n in sorted(inv["stock"].items()):
        start = STORES["inventory"]["stock"].get(item, 0)
        moves = {sid: qty for sid, qty in sorted(inv["moves"].items())}
        expected = start + sum(moves.values())
        if n != expected:
            listed = ", ".join(f"{sid}: {qty:+d}" for sid, qty in moves.items()) or "none"
            return (f"the inventory shows {n} {item}, but {start} at the start plus the moves "
                    f"on record ({listed}) make {expected}: the count is off by "
                    f"{n - expected:+d}, so a change to it was lost or applied twice")
    return None


def every_move_settled(stores: Mapping[str, Store], ctx: Context) -> str | None:
    bills = stores["payment"]["bills"]
    moves = stores["inventory"]["moves"]
    for sid in sorted(moves):
        if bills.get(sid, {}).get("status") != "SETTLED":
            return f"{sid} moved {moves[sid]:+d} {ITEM} but its bill is not settled"
    for sid, bill in sorted(bills.items()):
        if bill["status"] == "SETTLED" and sid not in moves:
            return f"{sid} settled its bill but its stock move is not on record"
    return None


def no_lock_left_behind(stores: Mapping[str, Store], ctx: Context) -> str | None:
    pending = stores["inventory"]["pending"]
    if not pending:
        return None
    item, sid = min(pending.items())
    return f"{item} is still PENDING for saga {sid}, which has finished"


INVARIANTS = (
    ("stock never negative", stock_never_negative),
    ("stock matches the moves on record", stock_matches_moves),
    ("every move is settled", every_move_settled),
    ("no semantic lock left behind", no_lock_left_behind),
)


def stock_saga(name: str, *, compensation: str = "restore", lock: bool = False,
               risky_first: bool = False) -> SagaDefinition:
    """A stock-move saga: ``compensation`` "restore" (write back the old value) or
    "commutative" (take the move back); ``lock`` marks the item PENDING until the saga
    ends; ``risky_first`` settles the bill (the step that may fail) before moving stock."""
    if compensation not in COMPENSATIONS:
        raise bad_choice("compensation", compensation, COMPENSATIONS)
    undo = restore_stock if compensation == "restore" else unmove_stock
    parts = ["A stock move: change the stock of an item, settle its bill"]
    parts.append("the compensation writes back the old stock" if compensation == "restore"
                 else "the compensation takes the move back")
    if lock:
        parts.append("the item stays PENDING until the saga ends (semantic lock)")
    if risky_first:
        parts.append("the bill, which may be declined, is settled first")
    saga = SagaDefinition(name, services=STORES, context=CONTEXT, invariants=INVARIANTS,
                description="; ".join(parts) + ".")
    saga.input_check = check_move_input
    move = move_stock_locked if lock else move_stock
    if risky_first:
        saga.step("settle", service="payment", action=settle, compensation=refund)
        saga.step("move_stock", service="inventory", action=move, compensation=undo)
    else:
        saga.step("move_stock", service="inventory", action=move, compensation=undo)
        saga.step("settle", service="payment", action=settle, compensation=refund)
    if lock:
        saga.step("confirm_move", service="inventory", action=confirm_move, pivot=True)
    return saga


with built_ins():
    VARIANTS: dict[str, SagaDefinition] = {
        s.name: s for s in (
            stock_saga("stock"),
            stock_saga("stock-locked", lock=True),
            stock_saga("stock-reordered", risky_first=True),
            stock_saga("stock-commutative", compensation="commutative"),
            stock_saga("stock-commutative-locked", compensation="commutative", lock=True),
            stock_saga("stock-commutative-reordered", compensation="commutative",
                       risky_first=True),
        )
    }

# The two concurrent instances of each anomaly: A's bill is declined; B starts at time 10.
# With the default latency (5..15 per message) B's move then lands after A's move (at
# most 15) and before A's compensation (at least 25: five messages later), whatever
# the seed; ties go to the message sent first.
LOST_UPDATE = [
    {"saga_id": "A", "context": {"qty": -2, "payment": "declined"}, "start": 0},
    {"saga_id": "B", "context": {"qty": -3}, "start": 10},
]
DIRTY_READ = [
    {"saga_id": "A", "context": {"qty": 5, "payment": "declined"}, "start": 0},
    {"saga_id": "B", "context": {"qty": -12}, "start": 10},
]
