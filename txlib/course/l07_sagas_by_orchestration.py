"""Lesson 07 (sagas by orchestration, ``notebooks/07_sagas_by_orchestration.ipynb``):
the lesson's helpers, and exercises checked by running sagas on the engine.

The helpers show a run in the notebook: :func:`headline`, :func:`saga_log` (a node's
durable log as a table), :func:`story` (the orchestrator's log in one line) and
:func:`stores` (each service's store before and after some runs).

The exercises:

- ``saga-order-around-the-pivot``: order the steps of an engraved-lamp order so that no
  failure ever needs to undo a step that cannot be undone. An order that puts a step
  before the one it needs (:data:`LAMP_NEEDS`: the courier needs the engraved lamp) is
  refused outright; otherwise the checker runs the order as a plain saga with every
  business failure and reads the domain rules, then runs it with the first step that
  cannot be undone declared as the pivot;
- ``saga-write-a-refund``: write the compensation of the order saga's payment step. The
  checker runs the saga with it under four fault plans (a failed shipment, three orders
  of one customer at once, a compensation registered before a call that never arrived, a
  duplicated refund of another customer's cheaper order) and checks the stores against
  the saga's domain rules, plus two: a confirmed order stays paid (a refund of another
  saga's payment breaks it), and each wallet matches its payments (a refund of the
  example's numbers, not the payment's, breaks it);
- ``saga-when-to-register``: for four fault plans, which ``register_compensation``
  settings end consistent. Every wrong entry is answered with the run that shows it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from ..engine.faults import Fault, drop, duplicate, fail_step
from ..errors import TxlibError, bad_choice, choices, shown
from ..properties.saga import effects, final_stores
from ..sagas import ecommerce, get_saga
from ..sagas.definition import Context, SagaDefinition, StepFailed, Store
from ..simulation.run import Run
from ..simulation.saga import Saga
from ..simulation.scenario import simulate
from . import Exercise, Feedback, register, show
from .checking import (
    FaultPlan,
    choices_against_runs,
    chosen_sets,
    domain_violations,
    ending,
    from_judge,
    function,
    listing,
    saga_under_plans,
)

table = show.show_table


# --- showing a run ----------------------------------------------------------------------

def definition(run: Run) -> SagaDefinition:
    """The saga definition a run used."""
    return get_saga(run.scenario.options.get("saga", "ecommerce"))


def headline(run: Run) -> None:
    """One line: the outcome, the messages, the end time and any broken rule."""
    show.headline(run, run.scenario.name or definition(run).name)


def _log_detail(record: str, d: Mapping[str, Any]) -> str:
    """What a saga log record says besides its kind and step."""
    if record == "START":
        return "input: " + ", ".join(sorted(d["ctx"]))
    if "attempt" in d:
        return f"attempt {d['attempt']}"
    if record == "DONE":
        return ", ".join(f"{k}={v}" for k, v in d["updates"].items()) or "-"
    if record in ("FAILED", "RETRY"):
        return str(d["reason"])
    if record == "GAVE_UP":
        return f"no reply to {d['attempts']} calls"
    if record == "END":
        return str(d["outcome"])
    if record == "LOCAL_TX":
        return f"{d['kind']}, key {d['key']}"
    return ""


def saga_log(run: Run, node: str = "orchestrator") -> None:
    """A node's durable log, one row per record (each one forced)."""
    names = definition(run).step_names
    rows = []
    for r in run.logs[node]:
        d = r.data
        step = names[d["step"]] if isinstance(d.get("step"), int) else d.get("step", "")
        rows.append((r.time, f"`{r.record}`", step, _log_detail(r.record, d)))
    table(["time", "record", "step", "detail"], rows)


def story(run: Run) -> str:
    """The orchestrator's log in one line."""
    names = definition(run).step_names
    parts = []
    for r in run.logs["orchestrator"]:
        step = r.data.get("step")
        parts.append(r.record + (f" {names[step]}" if isinstance(step, int) else ""))
    return " · ".join(parts)


def stores(runs: Mapping[str, Run], saga: SagaDefinition | None = None) -> None:
    """Each service's store before and after each run (a dict label -> run); the saga is
    the one the first run used unless given."""
    show.stores(runs, saga or definition(next(iter(runs.values()))))


# --- exercise: order the steps around the pivot -------------------------------------------
# An order for a lamp with a personal engraving. Identifiers derive from the saga's id.

LAMP_INPUT: dict[str, Any] = {"customer": "CUST-7", "price": 4000, "text": "For Ada"}
LAMP_STORES: dict[str, Store] = {
    "shop": {"orders": {}},
    "stock": {"lamps": 3, "reserved": {}},
    "bank": {"wallet": 10_000, "merchant": 0, "charges": {}},
    "workshop": {"engraved": {}},
    "courier": {"parcels": {}},
}


def _order(ctx: Context) -> str:
    return f"ORD-{ctx['saga_id']}"


def place_order(store: Store, ctx: Context) -> None:
    store["orders"][_order(ctx)] = "PLACED"


def cancel_order(store: Store, ctx: Context) -> None:
    if _order(ctx) in store["orders"]:
        store["orders"][_order(ctx)] = "CANCELLED"


def reserve_lamp(store: Store, ctx: Context) -> dict[str, Any]:
    if store["lamps"] < 1:
        raise StepFailed("no lamp left in stock")
    store["lamps"] -= 1
    store["reserved"][_order(ctx)] = 1
    return {"lamp": _order(ctx)}


def release_lamp(store: Store, ctx: Context) -> None:
    store["lamps"] += store["reserved"].pop(_order(ctx), 0)


def charge_card(store: Store, ctx: Context) -> None:
    if store["wallet"] < ctx["price"]:
        raise StepFailed("card declined")
    store["wallet"] -= ctx["price"]
    store["merchant"] += ctx["price"]
    store["charges"][_order(ctx)] = "CHARGED"


def refund_card(store: Store, ctx: Context) -> None:
    if store["charges"].get(_order(ctx)) == "CHARGED":
        store["charges"][_order(ctx)] = "REFUNDED"
        store["wallet"] += ctx["price"]
        store["merchant"] -= ctx["price"]


def engrave_lamp(store: Store, ctx: Context) -> dict[str, Any]:
    if not ctx.get("lamp"):
        raise StepFailed("no reserved lamp to engrave")
    store["engraved"][_order(ctx)] = ctx["text"]
    return {"engraved": ctx["text"]}


def hand_to_courier(store: Store, ctx: Context) -> None:
    if not ctx.get("engraved"):
        raise StepFailed("the courier needs the engraved lamp, and it is not engraved yet")
    store["parcels"][_order(ctx)] = "ON ITS WAY"


def cannot_undo(store: Store, ctx: Context) -> None:
    """What a compensation of a step that cannot be undone amounts to: nothing."""


def _live(stores: Mapping[str, Store], order: str) -> bool:
    return bool(stores["shop"]["orders"].get(order) == "PLACED")


def _dead(stores: Mapping[str, Store], order: str) -> str:
    """Why ``order`` is not live, in words: 'is cancelled', or 'was never placed'
    (place_order may come later in the learner's order, or not run at all)."""
    return "is cancelled" if order in stores["shop"]["orders"] else "was never placed"


def _nothing_engraved_for_a_cancelled_order(stores: Mapping[str, Store],
                                            ctx: Context) -> str | None:
    for order in sorted(stores["workshop"]["engraved"]):
        if not _live(stores, order):
            return (f"a lamp is engraved for {order}, which {_dead(stores, order)}: nobody else "
                    "wants a lamp that says "
                    f"{stores['workshop']['engraved'][order]!r}")
    return None


def _no_parcel_for_a_cancelled_order(stores: Mapping[str, Store], ctx: Context) -> str | None:
    for order in sorted(stores["courier"]["parcels"]):
        if not _live(stores, order):
            return f"a parcel for {order} is on its way, but the order {_dead(stores, order)}"
    return None


def _no_charge_without_an_order(stores: Mapping[str, Store], ctx: Context) -> str | None:
    for order, status in sorted(stores["bank"]["charges"].items()):
        if status == "CHARGED" and not _live(stores, order):
            return f"the customer paid for {order}, which {_dead(stores, order)}"
    return None


def _no_lamp_held_for_a_cancelled_order(stores: Mapping[str, Store],
                                        ctx: Context) -> str | None:
    for order in sorted(stores["stock"]["reserved"]):
        if not _live(stores, order):
            return f"a lamp is still reserved for {order}, which {_dead(stores, order)}"
    return None


LAMP_INVARIANTS = (
    ("nothing engraved for a cancelled order", _nothing_engraved_for_a_cancelled_order),
    ("no parcel for a cancelled order", _no_parcel_for_a_cancelled_order),
    ("no charge without an order", _no_charge_without_an_order),
    ("no lamp held for a cancelled order", _no_lamp_held_for_a_cancelled_order),
)

# step -> (service, action, compensation or None if it cannot be undone, how it can fail)
LAMP_STEPS: dict[str, tuple[str, Callable[..., Any], Callable[..., Any] | None, str]] = {
    "place_order": ("shop", place_order, cancel_order, "can be cancelled, never fails"),
    "reserve_lamp": ("stock", reserve_lamp, release_lamp,
                     "can be released, fails for good when no lamp is left"),
    "charge_card": ("bank", charge_card, refund_card,
                    "can be refunded, fails for good when the card is declined"),
    "engrave_lamp": ("workshop", engrave_lamp, None,
                     "cannot be undone, and the machine may jam, but a retry always works"),
    "hand_to_courier": ("courier", hand_to_courier, None,
                        "cannot be undone once the van has left, and the van may be late, "
                        "but it always comes"),
}
LAMP_CAN_FAIL = ("reserve_lamp", "charge_card")
# step -> (the step it needs done first, why): the lamp's path through the workshop
LAMP_NEEDS: dict[str, tuple[str, str]] = {
    "engrave_lamp": ("reserve_lamp", "the workshop engraves the lamp reserved for the order"),
    "hand_to_courier": ("engrave_lamp", "the courier needs the engraved lamp"),
}
LAMP_ORDER_EXAMPLE = ["place_order", "reserve_lamp", "charge_card", "engrave_lamp",
                      "hand_to_courier"]


def lamp_saga(order: Sequence[str], *, pivot: bool) -> Saga:
    """The lamp order saga with its steps in ``order``.

    ``pivot=False``: a plain saga in which each step that cannot be undone gets a
    compensation that does nothing (all one could write). ``pivot=True``: the first step
    that cannot be undone is declared the pivot, so it and every later step are never
    compensated. The steps after it are retried until they succeed; an unanswered call to
    the pivot is repeated until it is answered, but a business failure of the pivot (a
    jam) sends the saga back, like any failure before it.
    """
    saga = Saga("lamp-order" + ("-pivot" if pivot else ""), services=LAMP_STORES,
                context=LAMP_INPUT, invariants=LAMP_INVARIANTS,
                description="An engraved lamp: order, reserve, charge, engrave, ship.")
    after = False
    for name in order:
        service, action, compensation, _ = LAMP_STEPS[name]
        if not pivot:
            saga.step(name, service=service, action=action,
                      compensation=compensation or cannot_undo)
        elif after:
            saga.step(name, service=service, action=action)
        elif compensation is None:
            saga.step(name, service=service, action=action, pivot=True)
            after = True
        else:
            saga.step(name, service=service, action=action, compensation=compensation)
    return saga


ORDER_FORMAT = "e.g. ['place_order', 'reserve_lamp', ...], all five"


def _step_name(name: str) -> str:
    """A step name as a learner may type it, tidied: ' Place Order' -> 'place_order'."""
    return "_".join(name.strip().lower().split())


def _steps(answer: Any) -> list[str]:
    if isinstance(answer, (AbstractSet, Mapping)):
        kind = "a set" if isinstance(answer, AbstractSet) else "a dict"
        raise TxlibError(f"{kind} has no order of its own (Python may list it in any order): "
                         "answer with a list of the five step names in the order they run, "
                         f"{ORDER_FORMAT}")
    if isinstance(answer, (str, bytes)) or not isinstance(answer, Iterable):
        raise TxlibError("answer with a list of the five step names in the order they run, "
                         f"{ORDER_FORMAT}; got {shown(answer)}")
    names = list(answer)
    for n in names:
        if not isinstance(n, str):
            raise TxlibError(f"each step is a step name (a string), got {shown(n)}; valid "
                             f"choices: {choices(LAMP_STEPS)}")
    names = [_step_name(n) for n in names]
    unknown = [n for n in names if n not in LAMP_STEPS]
    if unknown:
        raise bad_choice("step", unknown[0], LAMP_STEPS)
    if sorted(names) != sorted(LAMP_STEPS):
        missing = sorted(set(LAMP_STEPS) - set(names))
        twice = sorted({n for n in names if names.count(n) > 1})
        raise TxlibError("use each of the five steps exactly once"
                         + (f"; missing: {', '.join(missing)}" if missing else "")
                         + (f"; more than once: {', '.join(twice)}" if twice else ""))
    return names


def unmet_need(order: Sequence[str]) -> str | None:
    """Why ``order`` cannot run at all (a step before the step it needs), or None."""
    for step, (need, why) in LAMP_NEEDS.items():
        if order.index(step) < order.index(need):
            return (f"{step} runs before {need}, but {why}: that order cannot run at all, "
                    "whatever fails.")
    return None


@register("saga-order-around-the-pivot")
def _order_around_the_pivot() -> Exercise:
    def check(answer: Any) -> Feedback:
        order = _steps(answer)
        unmet = unmet_need(order)
        if unmet:
            return Feedback(False, unmet)
        plain = lamp_saga(order, pivot=False)
        for step in LAMP_CAN_FAIL:
            run = plain.simulate(faults=[fail_step(step)])
            broken = domain_violations(run)
            if broken:
                undone = [n for _, _, kind, n in effects(run.logs) if kind == "undo"]
                stuck = [n for n in order[: order.index(step)] if LAMP_STEPS[n][2] is None]
                return Feedback(False, f"when {step} fails, the saga runs the compensations "
                                       f"of {listing(undone)}, but {listing(stuck)} cannot be "
                                       f"undone: {broken[0]}.")
        pivoted = lamp_saga(order, pivot=True)
        pivot = next(s.name for s in pivoted.steps if s.pivot)
        later = [s.name for s in pivoted.steps if s.after_pivot]
        plans = [[fail_step(step)] for step in LAMP_CAN_FAIL]
        plans += [[fail_step(pivot, times=1)]]  # a jam at the pivot: nothing final yet
        plans += [[fail_step(step, times=2)] for step in later]
        for faults in plans:
            run = pivoted.simulate(faults=faults)
            broken = domain_violations(run)
            if run.outcome not in ("completed", "compensated") or broken:
                return Feedback(False, f"with {pivot} as the pivot and "
                                       f"{faults[0].describe()}, the saga ends {run.outcome}"
                                       + (f": {broken[0]}" if broken else "") + ".")
        tail = (f"; after it, {listing(later)} can only go forward, and nothing there can "
                "fail for good: a step that fails there is retried until it works (a late "
                "van always comes)" if later else "")
        return Feedback(True, f"every step that can fail for good ({', '.join(LAMP_CAN_FAIL)}) "
                              f"runs before {pivot}, the first step that cannot be undone. "
                              f"{pivot} is the pivot: a failure before it, or of it (a jam "
                              "leaves the lamp blank), is compensated, and nothing before it "
                              f"is final{tail}. Checked with every failure.")

    rows = "; ".join(f"{n} ({LAMP_STEPS[n][3]})"
                     for n in sorted(LAMP_STEPS))
    needs = " and ".join(f"{why} ({need} before {step})"
                         for step, (need, why) in LAMP_NEEDS.items())
    return Exercise(
        name="saga-order-around-the-pivot",
        prompt="An order for an engraved lamp has five steps: " + rows + ". Two of them "
               "need another step first: " + needs + ". Put them in an order (a list of "
               "names) such that no failure ever needs to undo a step that cannot be undone.",
        checker=check,
        hints=(
            "A step that cannot be undone commits you: after it, the saga may only go "
            "forward. Which steps might still say no?",
            "Both steps that can fail for good must come before the first step that cannot "
            "be undone. place_order never fails, and it can be cancelled.",
        ),
        answer="['place_order', 'reserve_lamp', 'charge_card', 'engrave_lamp', "
               "'hand_to_courier'] (reserve_lamp and charge_card may swap, and place_order "
               "may move): every step that can fail for good runs before engrave_lamp, the "
               "pivot. A failure before it, or a jam of the engraver itself (the lamp stays "
               "blank), is compensated; after it, nothing can fail for good, so a late van is "
               "retried until it comes.",
        example=list(LAMP_ORDER_EXAMPLE),
        wrong=(
            (["place_order", "reserve_lamp", "charge_card", "hand_to_courier", "engrave_lamp"],
             "the courier needs the engraved lamp"),
            (["place_order", "reserve_lamp", "engrave_lamp", "charge_card", "hand_to_courier"],
             "engrave_lamp cannot be undone"),
            (["place_order", "engrave_lamp", "reserve_lamp", "charge_card", "hand_to_courier"],
             "engraves the lamp reserved"),
            (["reserve_lamp", "place_order", "engrave_lamp", "hand_to_courier", "charge_card"],
             "when charge_card fails"),
            # the order is never placed when the card fails: not "cancelled"
            (["reserve_lamp", "engrave_lamp", "charge_card", "place_order", "hand_to_courier"],
             "ORD-S1, which was never placed"),
            # no order at all: a set once passed in one Python process out of eight, by
            # the order its hash happened to list it in
            (set(LAMP_ORDER_EXAMPLE), "a set has no order of its own"),
            ({step: k for k, step in enumerate(LAMP_ORDER_EXAMPLE)}, "a dict has no order"),
        ),
    )


# --- exercise: write the refund --------------------------------------------------------------

NOWHERE = "Atlantis"


def create_shipment(store: Store, ctx: Context) -> dict[str, Any]:
    """The order saga's shipment, except that no courier delivers to Atlantis."""
    if ctx.get("address") == NOWHERE:
        raise StepFailed(f"no courier delivers to {NOWHERE}")
    return ecommerce.create_shipment(store, ctx)


def a_confirmed_order_stays_paid(stores: Mapping[str, Store], ctx: Context) -> str | None:
    """A domain rule of the refund exercise: the payment of a CONFIRMED order is still
    COMPLETED. A saga that confirmed its order was never compensated, so only a refund run
    by another saga can break it."""
    orders = stores["orders"]["orders"]
    for pid, payment in sorted(stores["payment"]["payments"].items()):
        order = orders.get(payment["order"])
        if payment["status"] != "COMPLETED" and order and order["status"] == "CONFIRMED":
            return (f"{pid} is {payment['status']}, but {payment['order']} is CONFIRMED: the "
                    "customer got that order for free (another saga's refund took back its "
                    "payment)")
    return None


# The refund exercise's stores: the seed's, and a second customer, whose cheaper order
# shows a refund that gives back the numbers of the lesson's example, not its own payment's.
OTHER_CUSTOMER, OTHER_PRICE = "CUST-456", 4500
REFUND_STORES: dict[str, Store] = copy.deepcopy(ecommerce.INITIAL_STORES)
REFUND_STORES["payment"]["wallets"][OTHER_CUSTOMER] = 20_000
START_WALLETS: dict[str, int] = dict(REFUND_STORES["payment"]["wallets"])


def money_conserved(stores: Mapping[str, Store], ctx: Context) -> str | None:
    """The seed's rule, from the refund exercise's stores (two customers)."""
    pay = stores["payment"]
    total = sum(pay["wallets"].values()) + pay["merchant"]
    start = sum(START_WALLETS.values())
    return None if total == start else f"money is not conserved: {total} cents instead of {start}"


def each_wallet_matches_its_payments(stores: Mapping[str, Store], ctx: Context) -> str | None:
    """A domain rule of the refund exercise: each customer's wallet holds what it started
    with, less the customer's payments that still stand (COMPLETED)."""
    pay = stores["payment"]
    wrong, stranger = [], False
    for customer, start in sorted(START_WALLETS.items()):
        mine = [p for p in pay["payments"].values() if p["customer"] == customer]
        want = start - sum(p["amount"] for p in mine if p["status"] == "COMPLETED")
        held = pay["wallets"].get(customer, 0)
        if held == want:
            continue
        if mine:
            wrong.append(f"{customer}'s wallet holds {held} cents, not {want} (what it "
                         "started with, less its payments that still stand)")
        else:
            stranger = True
            wrong.append(f"{customer} made no payment here, yet its wallet holds {held} "
                         f"cents, not {start}")
    if not wrong:
        return None
    return "; ".join(wrong) + (": a refund gives back only what a payment on record took, "
                               "to that payment's own customer (payment['amount'], "
                               "payment['customer']), not numbers from elsewhere"
                               if stranger else "")


REFUND_INVARIANTS = (*((name, rule) for name, rule in ecommerce.INVARIANTS
                       if name != "money conserved"),
                     ("money conserved", money_conserved),
                     ("a confirmed order stays paid", a_confirmed_order_stays_paid),
                     ("each wallet matches its payments", each_wallet_matches_its_payments))


def refund_saga(refund: Callable[[Store, Context], None], name: str = "refund-exercise") -> Saga:
    """The seed's order saga with ``refund`` as the payment's compensation, and one more
    domain rule: a confirmed order stays paid."""
    saga = Saga(name, services=REFUND_STORES, context=ecommerce.ORDER_INPUT,
                invariants=REFUND_INVARIANTS,
                description="The order saga with your refund; no courier goes to Atlantis.")
    saga.step("create_order", service="orders", action=ecommerce.create_order,
              compensation=ecommerce.cancel_order)
    saga.step("reserve_inventory", service="inventory", action=ecommerce.reserve_items,
              compensation=ecommerce.release_items)
    saga.step("process_payment", service="payment", action=ecommerce.process_payment,
              compensation=refund)
    saga.step("create_shipment", service="shipping", action=create_shipment,
              compensation=ecommerce.cancel_shipment)
    ecommerce.add_approval(saga)
    return saga


ATLANTIS = {"address": NOWHERE}


def skip_the_refund(store: Store, ctx: Context) -> None:
    """The seed's way with a compensation that fails: log it and carry on with the next
    one. Seen from the stores, the refund simply never happens."""


def log_and_continue() -> Run:
    """The order saga on an order that cannot be shipped, with its failed refund logged
    and skipped as the seed's orchestrator does: the saga ends "compensated"."""
    saga = refund_saga(skip_the_refund, name="refund-logged-and-skipped")
    return saga.simulate(context=ATLANTIS)
REFUND_PLANS: tuple[FaultPlan, ...] = (
    ("the order cannot be shipped, so the payment is refunded", {"context": ATLANTIS}, ()),
    ("three orders of the same customer run at once, and only the second cannot be shipped",
     {"instances": [{"saga_id": "S1"}, {"saga_id": "S2", "context": ATLANTIS, "start": 20},
                    {"saga_id": "S3", "start": 40}]},
     ()),
    ("every payment request is lost and the compensation was registered before the call, "
     "so the refund runs for a payment that never happened",
     {"register_compensation": "before"}, (drop("DO", dst="payment", count=3),)),
    (f"another customer's order ({OTHER_CUSTOMER}, {OTHER_PRICE} cents) cannot be shipped, "
     "and the refund command is delivered twice to a payment service that does not "
     "deduplicate",
     {"context": {**ATLANTIS, "customer_id": OTHER_CUSTOMER, "amount": OTHER_PRICE},
      "idempotent": False}, (duplicate("UNDO", dst="payment"),)),
)
# The plan whose refund runs for a payment that was never taken (a null compensation).
NULL_PLAN = REFUND_PLANS[2][0]


def refund_example(store: Store, ctx: Context) -> None:
    """A correct refund: semantic, idempotent, and a no-op if nothing was charged."""
    payment = store["payments"].get(f"PAY-{ctx['saga_id']}")
    if payment is None or payment["status"] != "COMPLETED":
        return
    payment["status"] = "REFUNDED"
    store["wallets"][payment["customer"]] += payment["amount"]
    store["merchant"] -= payment["amount"]


def give_the_money_back(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: the money moves back, the payment stays COMPLETED."""
    store["wallets"][ctx["customer_id"]] += ctx["amount"]
    store["merchant"] -= ctx["amount"]


def erase_the_payment(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: the payment is deleted, as if it never happened."""
    payment = store["payments"].pop(f"PAY-{ctx['saga_id']}", None)
    if payment is not None:
        store["wallets"][payment["customer"]] += payment["amount"]
        store["merchant"] -= payment["amount"]


def _refund(payment: dict[str, Any], store: Store) -> None:
    """Refund ``payment``, whatever its status, for the wrong refunds below
    (:func:`refund_example` spells the same lines out: the lesson points to it)."""
    payment["status"] = "REFUNDED"
    store["wallets"][payment["customer"]] += payment["amount"]
    store["merchant"] -= payment["amount"]


def refund_every_time(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: it looks the payment up, but refunds it again and again."""
    payment = store["payments"].get(f"PAY-{ctx['saga_id']}")
    if payment is not None:
        _refund(payment, store)


def refund_the_customer(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: every COMPLETED payment of this saga's customer, so
    also those of the customer's other orders."""
    for payment in list(store["payments"].values()):
        if payment["customer"] == ctx["customer_id"] and payment["status"] == "COMPLETED":
            _refund(payment, store)


def refund_everyone(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: every COMPLETED payment, whoever made it."""
    for payment in list(store["payments"].values()):
        if payment["status"] == "COMPLETED":
            _refund(payment, store)


def refund_the_latest(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: the customer's most recent COMPLETED payment, which is
    this saga's only if no other order of the customer paid since."""
    mine = [p for p in store["payments"].values()
            if p["customer"] == ctx["customer_id"] and p["status"] == "COMPLETED"]
    if mine:
        _refund(mine[-1], store)


def refund_the_examples_numbers(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: right in every way but one, it gives back the numbers the
    lesson's payment shows (CUST-123, 9999 cents), not those of the payment it refunds."""
    payment = store["payments"].get(f"PAY-{ctx['saga_id']}")
    if payment is None or payment["status"] != "COMPLETED":
        return
    payment["status"] = "REFUNDED"
    store["wallets"][ecommerce.CUSTOMER] += ecommerce.ORDER_INPUT["amount"]
    store["merchant"] -= ecommerce.ORDER_INPUT["amount"]


def refund_or_fail(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: with no payment to refund, it fails (StepFailed)."""
    payment = store["payments"].get(f"PAY-{ctx['saga_id']}")
    if payment is None:
        raise StepFailed("no payment to refund")
    if payment["status"] == "COMPLETED":
        _refund(payment, store)


def refund_without_looking(store: Store, ctx: Context) -> None:
    """A plausible wrong refund: it reads the payment as if it must be there (KeyError
    when the payment request never arrived)."""
    payment = store["payments"][f"PAY-{ctx['saga_id']}"]
    if payment["status"] == "COMPLETED":
        _refund(payment, store)


def _charged(run: Run) -> list[str]:
    """Saga ids whose payment took effect."""
    return sorted({sid for sid in _ids(run)
                   if ("do", "process_payment") in
                   [(k, s) for _, _, k, s in effects(run.logs, sid)]})


def _ids(run: Run) -> list[str]:
    instances = run.scenario.options.get("instances")
    return [i["saga_id"] for i in instances] if instances else ["S1"]


def _erased(saga: Saga, run: Run) -> str | None:
    """A payment that was taken and is gone from the records, in words."""
    payments = final_stores(saga, run.logs)["payment"]["payments"]
    erased = [sid for sid in _charged(run) if f"PAY-{sid}" not in payments]
    if not erased:
        return None
    return (f"the payment PAY-{erased[0]} was taken and is gone from the payment service's "
            "records. A compensation is a new business transaction (a refund), not an "
            "erasure: keep the payment and mark it refunded.")


def judge_refund(refund: Any) -> tuple[bool, str]:
    """Run the order saga with ``refund`` under every plan; (ok, what happened)."""
    saga = refund_saga(function(refund, "refund(store, ctx), like the actions in this lesson"))
    problem = saga_under_plans(saga, REFUND_PLANS, "refund", lambda run: _erased(saga, run))
    if problem and problem.startswith(NULL_PLAN + ":"):
        # The engine's advice for a crashed action ("raise txlib.StepFailed") and the stuck
        # saga's question ("did it raise txlib.StepFailed?") point the wrong way here.
        for advice in (" (raise txlib.StepFailed for a business failure)",
                       " (did it raise txlib.StepFailed?)"):
            problem = problem.replace(advice, "")
        problem += (" There was no payment to refund: a compensation that finds nothing to "
                    "undo must simply return, neither fail nor raise (a null compensation).")
    if problem:
        return False, problem
    return True, ("kept every domain rule in all four runs: the refund undoes exactly this "
                  "saga's payment (not a snapshot of the wallet), does nothing when no "
                  "payment was taken, and does nothing the second time.")


@register("saga-write-a-refund")
def _write_a_refund() -> Exercise:
    return Exercise(
        name="saga-write-a-refund",
        prompt="Write the compensation of the order saga's payment step: a function "
               "refund(store, ctx) that undoes process_payment. store is the payment "
               "service's store ({'payments': {...}, 'wallets': {...}, 'merchant': ...}); a "
               "payment is store['payments'][f\"PAY-{ctx['saga_id']}\"], a dict with "
               "'customer', 'amount', 'order' and 'status' ('COMPLETED'); ctx holds the saga's "
               "input and what earlier steps returned. The checker runs "
               "the saga four times with failures (one for another customer's cheaper order) "
               "and checks the saga's domain rules, plus two more: a CONFIRMED order's payment "
               "stays COMPLETED, and each wallet holds what it started with less the payments "
               "that still stand.",
        checker=from_judge(judge_refund),
        hints=(
            "Compensations are semantic: do not restore old values (another saga may have "
            "changed them since); undo this saga's payment, no other, and keep a record "
            "that you did.",
            "Your refund may run when no payment was ever taken (it was registered before "
            "a call that never arrived), and it may run twice. Look the payment up first.",
            "Find the payment by its id; if it is missing or not 'COMPLETED', return. "
            "Otherwise mark it 'REFUNDED', give its amount back to its customer's wallet and "
            "take it off the merchant.",
        ),
        answer="Look the payment up by its id, f\"PAY-{ctx['saga_id']}\". If it is missing or "
               "its status is not 'COMPLETED', return: nothing was charged, or it is refunded "
               "already. Otherwise mark it 'REFUNDED', add its amount back to its customer's "
               "wallet and take it off the merchant (refund_example in "
               "txlib/course/l07_sagas_by_orchestration.py). That refund is semantic (this "
               "payment, undone and recorded as such), idempotent (a second run finds it "
               "REFUNDED) and safe as a null compensation (no payment, nothing to do).",
        example=refund_example,
        wrong=((give_the_money_back, "which is cancelled"),
               (erase_the_payment, "not an erasure"),
               (refund_every_time, "delivered twice"),
               (refund_the_customer, "PAY-S1 is REFUNDED, but ORD-S1 is CONFIRMED"),
               (refund_everyone, "another saga's refund took back its payment"),
               (refund_the_latest, "PAY-S3 is REFUNDED, but ORD-S3 is CONFIRMED"),
               (refund_the_examples_numbers, "CUST-123 made no payment here"),
               (refund_or_fail, "must simply return"),
               (refund_without_looking, "no payment to refund")),
    )


# --- exercise: when to register the compensation ------------------------------------------------


def naive_refund(store: Store, ctx: Context) -> None:
    """A refund that trusts that the payment happened: it gives the amount back."""
    store["wallets"][ctx["customer_id"]] += ctx["amount"]
    store["merchant"] -= ctx["amount"]
    payment = store["payments"].get(f"PAY-{ctx['saga_id']}")
    if payment is not None:
        payment["status"] = "REFUNDED"


SETTINGS = ("after", "before")
# name -> (saga: "ecommerce" or the naive refund's, faults, what happens)
REGISTER_PLANS: dict[str, tuple[str, tuple[Fault, ...], str]] = {
    "declined": ("ecommerce", (fail_step("process_payment"),),
                 "the payment is declined (a business failure)"),
    "reply lost": ("ecommerce", (drop("OK", src="inventory", count=3),),
                   "every reply of the inventory is lost, so the reservation's outcome is "
                   "unknown"),
    "request lost": ("ecommerce", (drop("DO", dst="payment", count=3),),
                     "every payment request is lost, so the payment's outcome is unknown"),
    "request lost, naive refund": ("naive", (drop("DO", dst="payment", count=3),),
                                   "as 'request lost', but the refund gives the amount back "
                                   "without looking for the payment"),
}
# The answer the engine gives (the checker runs every plan; a test compares the two).
REGISTER_ANSWER = {"declined": {"after", "before"}, "reply lost": {"before"},
                   "request lost": {"after", "before"}, "request lost, naive refund": {"after"}}


def register_plan_run(plan: str, setting: str) -> Run:
    """The run of fault plan ``plan`` with ``register_compensation=setting``."""
    saga_name, faults, _ = REGISTER_PLANS[plan]
    name = "ecommerce" if saga_name == "ecommerce" else refund_saga(
        naive_refund, name="naive-refund").name
    return simulate("saga", saga=name, faults=faults, register_compensation=setting)


@register("saga-when-to-register")
def _when_to_register() -> Exercise:
    def check(answer: Any) -> Feedback:
        chosen = chosen_sets(answer, REGISTER_PLANS, "plan", SETTINGS, "setting",
                             "settings that end consistent",
                             "{'before'}, {'after', 'before'} or set()")
        said = choices_against_runs(
            chosen, SETTINGS, register_plan_run, "plans",
            lambda plan, setting, run: f"{plan!r}: {setting!r} is missing; that run ends "
                                       f"{run.outcome} and breaks no rule.",
            lambda plan, setting, run: f"{plan!r}: {setting!r} does not survive; that run "
                                       f"ends {ending(run, 'it never finishes')}.")
        if said is not None:
            return said
        return Feedback(True, "a business failure applied nothing, so neither setting undoes "
                              "it; an unknown outcome may have applied, so only 'before' "
                              "undoes a reservation whose reply was lost; and 'before' is "
                              "only safe with a compensation that does nothing when the call "
                              "never arrived (a null compensation).")

    plans = "; ".join(f"{name!r}: {what}" for name, (_, _, what) in REGISTER_PLANS.items())
    return Exercise(
        name="saga-when-to-register",
        prompt="For each fault plan, which register_compensation settings ('after', "
               "'before') end consistent? Plans: " + plans + ". Answer with a dict from "
               "plan to a set, e.g. {'declined': {'after'}, ...}.",
        checker=check,
        hints=(
            "Sort each plan by the three outcomes of a remote call: ok, business failure, "
            "unknown. Only an unknown outcome may have applied without the orchestrator "
            "knowing.",
            "'before' also compensates the step whose outcome is unknown. That is right if "
            "the step did apply, and harmless only if its compensation can tell that it did "
            "not.",
        ),
        answer="{'declined': {'after', 'before'}, 'reply lost': {'before'}, 'request lost': "
               "{'after', 'before'}, 'request lost, naive refund': {'after'}}. A declined "
               "payment applied nothing. A lost reply hides a reservation that did happen: "
               "only 'before' releases it. A lost request means nothing happened: 'after' "
               "leaves it alone and 'before' sends a refund that finds no payment, which is "
               "fine for the real refund and creates money with the naive one.",
        example={plan: set(settings) for plan, settings in REGISTER_ANSWER.items()},
        wrong=(({plan: {"before"} for plan in REGISTER_PLANS},
                "'request lost, naive refund': 'before' does not survive"),
               ({plan: {"after"} for plan in REGISTER_PLANS},
                "'reply lost': 'after' does not survive"),
               ({"declined": set(), "reply lost": {"before"}, "request lost": {"before"},
                 "request lost, naive refund": {"after"}}, "'declined': 'after' is missing")),
    )
