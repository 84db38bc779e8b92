"""The seed's e-commerce order saga: create order, reserve inventory, process payment,
create shipment, approve the order, each with its compensation, over four services with
local stores.

The order is created ``PENDING``: a semantic lock that says "a saga is still working on
this order". Every ending releases it: the last step, ``approve_order``, makes it
``CONFIRMED``; the compensation of ``create_order`` (the rejection path) makes it
``CANCELLED``. The domain rule :func:`txlib.properties.saga.no_record_left_pending`
checks that no finished saga leaves an order ``PENDING``.

Identifiers are derived from the saga's id, never drawn at random, so runs replay
exactly. Amounts are whole cents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import TxlibError, shown
from ..properties.saga import no_record_left_pending
from .definition import Context, SagaDefinition, StepFailed, Store, built_ins, whole_number

CUSTOMER = "CUST-123"
ORDER_INPUT: dict[str, Any] = {"customer_id": CUSTOMER, "items": {"ITEM-001": 2},
                               "amount": 9999}
INITIAL_STORES: dict[str, Store] = {
    "orders": {"orders": {}},
    "inventory": {"stock": {"ITEM-001": 10, "ITEM-002": 5}, "reserved": {}},
    "payment": {"payments": {}, "wallets": {CUSTOMER: 50_000}, "merchant": 0},
    "shipping": {"shipments": {}},
}


def check_order_input(ctx: Context, where: str) -> None:
    """Refuse an order the saga cannot mean: a customer that is not a name, an amount
    or a quantity that is not a whole number of 0 or more."""
    if "customer_id" in ctx and not isinstance(ctx["customer_id"], str):
        raise TxlibError(f"customer_id in {where} must be a string, "
                         f"got {shown(ctx['customer_id'])}")
    if "amount" in ctx:
        whole_number(ctx["amount"], f"amount (in cents) in {where}")
    items = ctx.get("items", {})
    if not isinstance(items, Mapping):
        raise TxlibError(f"items in {where} must be a dict of item -> quantity, "
                         f"e.g. {ORDER_INPUT['items']!r}; got {shown(items)}")
    for item, qty in items.items():
        if not isinstance(item, str):
            raise TxlibError(f"the items in {where} must be named by strings, "
                             f"got {shown(item)}")
        whole_number(qty, f"the quantity of {item!r} in {where}")


# --- the services' local transactions ------------------------------------------------
def create_order(store: Store, ctx: Context) -> dict[str, Any]:
    order_id = f"ORD-{ctx['saga_id']}"
    store["orders"][order_id] = {"customer": ctx["customer_id"], "items": dict(ctx["items"]),
                                 "status": "PENDING"}
    return {"order_id": order_id}


def cancel_order(store: Store, ctx: Context) -> None:
    order = store["orders"].get(ctx.get("order_id", f"ORD-{ctx['saga_id']}"))
    if order is not None and order["status"] != "CANCELLED":
        order["status"] = "CANCELLED"


def approve_order(store: Store, ctx: Context) -> dict[str, Any]:
    """The last step: the order is CONFIRMED, which releases its semantic lock."""
    order_id = ctx.get("order_id", f"ORD-{ctx['saga_id']}")
    order = store["orders"].get(order_id)
    if order is None or order["status"] not in ("PENDING", "CONFIRMED"):
        status = "missing" if order is None else order["status"]
        raise StepFailed(f"{order_id} cannot be approved: it is {status}")
    order["status"] = "CONFIRMED"
    return {"approved": True}


def reserve_items(store: Store, ctx: Context) -> dict[str, Any]:
    for item, qty in sorted(ctx["items"].items()):
        if store["stock"].get(item, 0) < qty:
            raise StepFailed(f"insufficient stock for {item}")
    for item, qty in sorted(ctx["items"].items()):
        store["stock"][item] -= qty
    store["reserved"][ctx["order_id"]] = dict(ctx["items"])
    return {"reserved": True}


def release_items(store: Store, ctx: Context) -> None:
    items = store["reserved"].pop(ctx.get("order_id", f"ORD-{ctx['saga_id']}"), None)
    for item, qty in sorted((items or {}).items()):
        store["stock"][item] += qty


def process_payment(store: Store, ctx: Context) -> dict[str, Any]:
    wallet = store["wallets"].get(ctx["customer_id"], 0)
    if wallet < ctx["amount"]:
        raise StepFailed("payment declined: insufficient funds")
    payment_id = f"PAY-{ctx['saga_id']}"
    store["wallets"][ctx["customer_id"]] = wallet - ctx["amount"]
    store["merchant"] += ctx["amount"]
    store["payments"][payment_id] = {"order": ctx["order_id"], "amount": ctx["amount"],
                                     "customer": ctx["customer_id"], "status": "COMPLETED"}
    return {"payment_id": payment_id}


def refund_payment(store: Store, ctx: Context) -> None:
    payment = store["payments"].get(ctx.get("payment_id", f"PAY-{ctx['saga_id']}"))
    if payment is not None and payment["status"] == "COMPLETED":
        payment["status"] = "REFUNDED"
        store["wallets"][payment["customer"]] += payment["amount"]
        store["merchant"] -= payment["amount"]


def create_shipment(store: Store, ctx: Context) -> dict[str, Any]:
    shipment_id = f"SHIP-{ctx['saga_id']}"
    store["shipments"][shipment_id] = {"order": ctx["order_id"], "status": "SCHEDULED"}
    return {"shipment_id": shipment_id}


def cancel_shipment(store: Store, ctx: Context) -> None:
    shipment = store["shipments"].get(ctx.get("shipment_id", f"SHIP-{ctx['saga_id']}"))
    if shipment is not None and shipment["status"] == "SCHEDULED":
        shipment["status"] = "CANCELLED"


# --- the business rules the saga must keep ----------------------------------------------
def _cancelled(stores: Mapping[str, Store], order_id: str) -> bool:
    order = stores["orders"]["orders"].get(order_id)
    return order is None or order["status"] == "CANCELLED"


def stock_never_negative(stores: Mapping[str, Store], ctx: Context) -> str | None:
    bad = {i: q for i, q in stores["inventory"]["stock"].items() if q < 0}
    return f"stock went negative: {bad}" if bad else None


def money_conserved(stores: Mapping[str, Store], ctx: Context) -> str | None:
    pay = stores["payment"]
    total = sum(pay["wallets"].values()) + pay["merchant"]
    start = sum(INITIAL_STORES["payment"]["wallets"].values())
    return None if total == start else f"money is not conserved: {total} cents instead of {start}"


def no_charge_without_an_order(stores: Mapping[str, Store], ctx: Context) -> str | None:
    for pid, p in sorted(stores["payment"]["payments"].items()):
        if p["status"] == "COMPLETED" and _cancelled(stores, p["order"]):
            return f"{pid} charged the customer for {p['order']}, which is cancelled"
    return None


def every_charge_recorded(stores: Mapping[str, Store], ctx: Context) -> str | None:
    charged = sum(p["amount"] for p in stores["payment"]["payments"].values()
                  if p["status"] == "COMPLETED")
    held = stores["payment"]["merchant"]
    return None if charged == held else (
        f"the merchant holds {held} cents but the payments on record add up to {charged}")


def no_stock_held_for_a_cancelled_order(stores: Mapping[str, Store],
                                        ctx: Context) -> str | None:
    for order_id in sorted(stores["inventory"]["reserved"]):
        if _cancelled(stores, order_id):
            return f"stock is still reserved for {order_id}, which is cancelled"
    return None


def no_shipment_for_a_cancelled_order(stores: Mapping[str, Store],
                                      ctx: Context) -> str | None:
    for sid, s in sorted(stores["shipping"]["shipments"].items()):
        if s["status"] == "SCHEDULED" and _cancelled(stores, s["order"]):
            return f"{sid} will ship {s['order']}, which is cancelled"
    return None


INVARIANTS = (
    ("stock never negative", stock_never_negative),
    ("money conserved", money_conserved),
    ("no charge without an order", no_charge_without_an_order),
    ("every charge is recorded", every_charge_recorded),
    ("no stock held for a cancelled order", no_stock_held_for_a_cancelled_order),
    ("no shipment for a cancelled order", no_shipment_for_a_cancelled_order),
    ("no order left PENDING", no_record_left_pending("orders", "orders")),
)


def order_saga(name: str = "ecommerce", *, pivot: bool = False) -> SagaDefinition:
    """The seed's order saga; with ``pivot=True`` the payment is the point of no return
    (it is never refunded) and the shipment and the approval are retried until they
    succeed."""
    saga = SagaDefinition(
        name, services=INITIAL_STORES, context=ORDER_INPUT, invariants=INVARIANTS,
        description=("An order over four services: create the order, reserve stock, take "
                     "the payment, book the shipment, approve the order."
                     + (" The payment is the pivot." if pivot else "")),
    )
    saga.input_check = check_order_input
    saga.step("create_order", service="orders", action=create_order, compensation=cancel_order)
    saga.step("reserve_inventory", service="inventory", action=reserve_items,
              compensation=release_items)
    if pivot:
        saga.step("process_payment", service="payment", action=process_payment, pivot=True)
        saga.step("create_shipment", service="shipping", action=create_shipment)
    else:
        saga.step("process_payment", service="payment", action=process_payment,
                  compensation=refund_payment)
        saga.step("create_shipment", service="shipping", action=create_shipment,
                  compensation=cancel_shipment)
    add_approval(saga)
    return saga


def add_approval(saga: SagaDefinition) -> SagaDefinition:
    """Add the order saga's last step, ``approve_order`` (order CONFIRMED). After a pivot
    it is retried until it succeeds; otherwise its compensation rejects the order
    (CANCELLED), so an approval whose reply was lost is undone like any other step."""
    after = any(s.pivot or s.after_pivot for s in saga.steps)
    return saga.step("approve_order", service="orders", action=approve_order,
                     compensation=None if after else cancel_order)


with built_ins():
    ECOMMERCE = order_saga()
    ECOMMERCE_PIVOT = order_saga("ecommerce-pivot", pivot=True)
