"""Lesson 08 (sagas by choreography, ``notebooks/08_sagas_by_choreography.ipynb``): the
lesson's helpers, and exercises checked by running the order saga by events.

The helpers show a run in the notebook: :func:`headline`, :func:`events` and
:func:`event_log` (the broker's durable event log), :func:`story` (that log in one line),
:func:`charges`, :func:`delivered` and :func:`stores` (each service's store before and
after some runs). Section 9's comparisons of the two styles are here too:
:func:`side_by_side`, :func:`decision_times`, :func:`with_fraud_check` and
:func:`subscription_changes`, :func:`nodes_down`, :func:`where_to_look`.

The exercises:

- ``choreo-lose-an-event``: find a crash that makes a service lose the event it should
  publish. The checker runs the plan without the transactional outbox (it must lose an
  event), then the same plan with the outbox (the relay must publish it after the restart);
- ``choreo-idempotent-consumer``: write the payment service's action so that it charges
  once however often the event arrives, with the service's own deduplication switched
  off (``idempotent=False``). The checker runs it under a duplicated delivery, a crash
  before the ACK, a declined payment and a second order of the same customer for the
  same amount (which must be charged too), and reads the wallet;
- ``choreo-no-invented-event``: choose the publishing options under which neither the
  crash of ``choreo-invented-event`` nor that of ``choreo-lost-event`` breaks the saga.
  The answer must say ``outbox``: left to its default (True) it passes for a learner who
  thought ``publish_first=False`` was the fix.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from itertools import combinations
from typing import Any

from ..engine.faults import Fault, crash, duplicate, recover
from ..engine.records import LogRecord
from ..errors import TxlibError, choices
from ..presets import scenario
from ..properties.saga import effects, final_stores
from ..protocols.choreography import BROKER, STARTED, Flow
from ..sagas import ecommerce, get_saga
from ..sagas.definition import Context, SagaDefinition, StepFailed, Store
from ..simulation.run import Run
from ..simulation.saga import Saga
from ..simulation.scenario import Scenario, simulate
from . import Exercise, Feedback, register, show
from .checking import (
    domain_violations,
    fault_plan,
    from_judge,
    function,
    listing,
    rules_broken,
)
from .show import headline as headline  # re-exported for the notebook

P = "saga-choreography"
SERVICES = tuple(ecommerce.INITIAL_STORES)
NODES = (BROKER, *SERVICES)
RESTART_AFTER = 200  # a crashed service the learner did not restart comes back this later
ORDER_SAGA = get_saga("ecommerce")
LANES = ["orders", "broker", "inventory", "payment", "shipping"]  # diagram columns

table = show.show_table


# --- showing a run ----------------------------------------------------------------------

def events(run: Run) -> list[LogRecord]:
    """The broker's durable event log: every event that was published, in order."""
    return [r for r in run.logs[BROKER] if r.record == "EVENT"]


def broker_events(run: Run) -> list[str]:
    """The names of the events in the broker's event log, in order."""
    return [r.data["event"] for r in events(run)]


def story(run: Run) -> str:
    """The broker's event log in one line."""
    return " · ".join(broker_events(run))


def event_log(run: Run) -> None:
    """The broker's event log as a table."""
    table(["time", "event", "published by", "delivered to"],
          [(r.time, f"`{r.data['event']}`", r.data["publisher"],
            ", ".join(Flow(ORDER_SAGA).subscribers(r.data["event"])) or "nobody")
           for r in events(run)])


def charges(run: Run) -> int:
    """How many times the payment step took effect (its local transactions)."""
    return sum(1 for _, _, kind, step in effects(run.logs)
               if (kind, step) == ("do", "process_payment"))


def delivered(run: Run, node: str, kind: str = "EVENT") -> int:
    """How many messages of one kind reached ``node``."""
    return sum(1 for e in run.trace.of_kind("deliver")
               if e.message is not None and e.message.type == kind and e.message.dst == node)


def stores(runs: Mapping[str, Run], saga: SagaDefinition = ORDER_SAGA) -> None:
    """Each service's store before and after each run (a dict label -> run)."""
    show.stores(runs, saga)


# --- comparing the two styles (section 9) ---------------------------------------------

def decided_at(run: Run) -> int:
    """The simulated time at which the saga's outcome was known."""
    return next(e.time for e in run.trace.of_kind("decision"))


def who_starts_steps(run: Run) -> str:
    """The nodes that send the messages that make a service act."""
    kinds = {"DO", "UNDO", "PUBLISH"}
    senders = {e.message.src for e in run.trace.of_kind("send")
               if e.message is not None and e.message.type in kinds}
    return ", ".join(n for n in run.nodes if n in senders)


def who_records_the_end(run: Run) -> str:
    """The nodes whose durable log holds a record of the saga's end."""
    return ", ".join(n for n, log in run.logs.items()
                     if any(r.record in ("END", "STUCK") for r in log)) or "none"


FIGURES: dict[str, Callable[[Run], Any]] = {
    "outcome": lambda r: r.outcome,
    "messages": lambda r: r.metrics.messages,
    "scheduler steps": lambda r: r.steps,
    "outcome known at (ms)": decided_at,
    "last message at (ms)": lambda r: r.end_time,
    "forced log writes": lambda r: r.metrics.forced_writes,
    "who makes the next service act": who_starts_steps,
    "a log record of the saga's end": who_records_the_end,
}


def side_by_side(names: Iterable[str]) -> None:
    """The named scenarios' figures, one column each."""
    runs = {name: scenario(name).run() for name in names}
    table(["", *runs], [(label, *(f(run) for run in runs.values()))
                        for label, f in FIGURES.items()])


def decision_times(seeds: Iterable[int]) -> None:
    """When the order saga's outcome is known, in each style, over many seeds."""
    seeds = list(seeds)
    for protocol in ("saga", P):
        times = [decided_at(simulate(protocol, seed=s)) for s in seeds]
        print(f"{protocol}: outcome known at {sum(times) / len(times):.1f} ms on average "
              f"over {len(times)} seeds (from {min(times)} to {max(times)})")


def check_fraud(store: Store, ctx: Context) -> None:
    """Refuse customers on the block list."""
    if ctx["customer_id"] in store["blocked"]:
        raise StepFailed("customer blocked for fraud")
    store["checked"][ctx["order_id"]] = "OK"


def forget_check(store: Store, ctx: Context) -> None:
    store["checked"].pop(ctx.get("order_id", f"ORD-{ctx['saga_id']}"), None)


def with_fraud_check(saga: SagaDefinition, name: str = "ecommerce-fraud") -> Saga:
    """``saga`` with a new step, ``check_fraud`` at a new ``fraud`` service, before the
    payment."""
    fraud = Saga(name, services={**saga.services, "fraud": {"blocked": [], "checked": {}}},
                 context=saga.context, invariants=saga.invariants)
    for step in saga.steps:
        if step.name == "process_payment":
            fraud.step("check_fraud", service="fraud", action=check_fraud,
                       compensation=forget_check)
        fraud.step(step.name, service=step.service, action=step.action,
                   compensation=step.compensation)
    return fraud


def subscribed(saga: SagaDefinition) -> dict[str, list[str]]:
    """service -> the events it subscribes to, in this saga's choreography."""
    flow = Flow(saga)
    out: dict[str, list[str]] = {}
    for event in [STARTED, *flow.published]:
        for service in flow.subscribers(event):
            out.setdefault(service, []).append(event)
    return out


def subscription_changes(before_saga: SagaDefinition, after_saga: SagaDefinition) -> None:
    """Each service's subscriptions in two sagas, and whether they changed."""
    before, after = subscribed(before_saga), subscribed(after_saga)
    table(["service", "subscribes to, before", "subscribes to, with the fraud check",
           "changed"],
          [(s, ", ".join(before.get(s, ["—"])), ", ".join(after[s]),
            "**yes**" if before.get(s) != after[s] else "no") for s in after])


def _down(node: str, back: bool) -> list[Fault]:
    """A crash at time 30, and a recovery at 250 if ``back``."""
    return [crash(node, at_time=30), *([recover(node, at_time=250)] if back else [])]


def _verdict(run: Run) -> str:
    when = next((e.time for e in run.trace.of_kind("decision")), None)
    return f"{run.outcome} at {when}" if when is not None else (
        f"{run.outcome}: still {run.states[run.nodes[0]]} when the run stops")


DOWN_PLANS = (
    ("the central node is down from 30 to 250", "orchestrator", "broker", True),
    ("the central node crashes at 30 for good", "orchestrator", "broker", False),
    ("inventory is down from 30 to 250", "inventory", "inventory", True),
    ("inventory crashes at 30 for good", "inventory", "inventory", False),
)


def nodes_down() -> None:
    """The central node, then a service, down for a while or for good, in both styles."""
    table(["fault", "orchestration", "choreography"],
          [(label, _verdict(simulate("saga", faults=_down(o, back))),
            _verdict(simulate(P, faults=_down(c, back))))
           for label, o, c, back in DOWN_PLANS])


def _suffix(record: LogRecord) -> str:
    """The suffix of an event record (done, failed, compensation_failed, ...), if any."""
    event = str(record.data.get("event", ""))
    return "compensation_failed" if event.endswith("_compensation_failed") else (
        event.rsplit("_", 1)[-1] if record.record == "EVENT" else "")


QUESTIONS: dict[str, Callable[[LogRecord], bool]] = {
    "which step failed?": lambda r: r.record == "FAILED" or r.data.get("kind") == "fail"
    or _suffix(r) == "failed",
    "how many times did the refund fail?": lambda r: r.record == "UNDO_FAILED",
    "has the saga given up?": lambda r: r.record in ("STUCK", "GAVE_UP")
    or _suffix(r) == "compensation_failed",
}


def fewest_logs(answers: Iterable[Iterable[str]]) -> list[tuple[str, ...]]:
    """The smallest sets of logs that answer every question, given, for each question,
    the logs that answer it (each set sorted; all sets of the smallest size, sorted)."""
    holders = [set(a) for a in answers]
    logs = sorted(set().union(*holders))
    for size in range(len(logs) + 1):
        found = [c for c in combinations(logs, size) if all(h & set(c) for h in holders)]
        if found:
            return found
    return []  # some question has no answer in any log


def where_to_look(names: Iterable[str]) -> None:
    """For each question about a stuck saga, whose durable logs answer it, per run; then
    the fewest logs you must read to answer them all."""
    runs = {name: scenario(name).run() for name in names}

    def holders(run: Run, found: Callable[[LogRecord], bool]) -> list[str]:
        return [n for n, log in run.logs.items() if any(found(r) for r in log)]

    def fewest(run: Run) -> str:
        covers = fewest_logs(holders(run, found) for found in QUESTIONS.values())
        if not covers:
            return "none answers them all"
        return f"{len(covers[0])}: " + ", or ".join(" + ".join(c) for c in covers)

    rows: list[tuple[Any, ...]] = [
        (q, *(", ".join(holders(run, found)) for run in runs.values()))
        for q, found in QUESTIONS.items()]
    rows.append(("fewest logs that answer all", *(fewest(run) for run in runs.values())))
    table(["question", *runs], rows)


# --- checking ------------------------------------------------------------------------------

CRASH_EXAMPLE = ("[txlib.crash('orders', when='orders receives EVENT'), "
                 "txlib.recover('orders', at_time=300)]")


def _names(events: Iterable[str]) -> str:
    names = list(events)
    return ", ".join(names) if names else "none"


# --- exercise: lose an event -------------------------------------------------------------

def lost_event_runs(answer: Any) -> tuple[Run, Run]:
    """The learner's crash plan run without the outbox and with it (in that order).

    The plan is one crash and at most one recovery of the same node; a crashed node that
    the plan does not restart is restarted ``RESTART_AFTER`` ms after its crash, so that
    the difference between the two runs is the outbox, not the downtime.
    """
    faults = fault_plan(answer, CRASH_EXAMPLE)
    crashes = [f for f in faults if f.kind == "crash"]
    others = [f for f in faults if f.kind != "crash"]
    if len(crashes) != 1:
        raise TxlibError(f"use exactly one crash (this plan has {len(crashes)})")
    node = crashes[0].node
    assert node is not None  # a crash always names its node
    if any(f.kind != "recover" or f.node != node for f in others) or len(others) > 1:
        raise TxlibError(f"besides the crash, only one recovery of {node} is allowed "
                         "(txlib.recover(...)); no other faults")
    plan = Scenario(P, faults=faults, options={"outbox": False})
    first = plan.run()
    if not others:
        crashed = [e.time for e in first.trace.of_kind("crash") if e.node == node]
        if crashed:
            plan = plan.replace(faults=(*faults, recover(node,
                                                         at_time=crashed[0] + RESTART_AFTER)))
            first = plan.run()
    with_outbox = plan.replace(options={"outbox": True}).run()
    return first, with_outbox


@register("choreo-lose-an-event")
def _lose_an_event() -> Exercise:
    def check(answer: Any) -> Feedback:
        plain, outbox = lost_event_runs(answer)
        crash_fault = next(f for f in plain.scenario.faults if f.kind == "crash")
        node = crash_fault.node
        if plain.unfired_faults:
            fault, why = plain.unfired_faults[0]
            return Feedback(False, f"'{fault.describe()}' never happened: {why}.")
        lost = [v for v in plain.violations if v.invariant == "lost event"]
        if not lost:
            if node == BROKER:
                return Feedback(False, "without the outbox the saga ended "
                                       f"{plain.outcome}: the broker forces every event to its "
                                       "log before it delivers it, and after a restart it "
                                       "re-delivers every event nobody acknowledged. The dual "
                                       "write is in the services: which one writes twice?")
            if crash_fault.when is None:
                return Feedback(False, f"without the outbox the saga ended {plain.outcome} and "
                                       "no event was lost. A crash at a step boundary (at_step, "
                                       "at_time) never falls between a commit and its publish: "
                                       "a service does both in the same step. A trigger "
                                       "(when=...) fires in the middle of a step.")
            return Feedback(False, f"without the outbox the saga ended {plain.outcome} and no "
                                   f"event was lost: when {node} crashed, it had no committed "
                                   "change whose event was still unsent. A crash before the "
                                   "commit loses nothing (the broker re-delivers the event "
                                   "after the restart); a crash after the publish loses "
                                   "nothing either. Find the moment in between.")
        if outbox.outcome != "completed" or outbox.violations:
            why = rules_broken(outbox)
            return Feedback(False, f"without the outbox: {lost[0].reason}. But with the outbox "
                                   f"the same plan ends {outbox.outcome} ({why}): restart "
                                   f"{node} after the crash, so that its relay can publish.")
        held = broker_events(plain)
        return Feedback(True, f"{lost[0].reason}. The broker's event log ends at {held[-1]} "
                              f"and the broker still says {plain.states[BROKER]}: nobody "
                              "noticed. With the outbox the same plan completed at time "
                              f"{outbox.end_time}: the event was written in the same forced "
                              f"record as the change, and the relay at {node} published it "
                              "after the restart.")

    return Exercise(
        name="choreo-lose-an-event",
        prompt="Without the transactional outbox (outbox=False), a service commits its "
               "local transaction and then publishes its event as a second, separate "
               "action. Give one crash (txlib.crash(...), and if you like a "
               "txlib.recover(...) of the same node) that makes the order saga lose an "
               "event. The checker runs your plan with outbox=False, then with the outbox; "
               f"a node you do not restart comes back {RESTART_AFTER} ms after its crash.",
        checker=check,
        hints=(
            "The gap is between two actions of one service in one step: the commit (a "
            "forced LOCAL_TX record) and the publish (a PUBLISH message). A crash at a step "
            "boundary cannot fall into it; a trigger can.",
            "Crash a service right after it writes its LOCAL_TX record: "
            "txlib.crash(NODE, when='NODE logs LOCAL_TX').",
        ),
        answer="txlib.crash('inventory', when='inventory logs LOCAL_TX') (any service "
               "works): the reservation is committed, the event reserve_inventory_done "
               "exists only in memory, and the crash wipes it. After the restart the broker "
               "re-delivers create_order_done, inventory finds it handled (a duplicate) and "
               "publishes nothing: the saga silently stops with the stock held. With the "
               "outbox the event is part of the committed record, and the relay publishes "
               "it when inventory comes back.",
        example=crash("inventory", when="inventory logs LOCAL_TX"),
        wrong=((crash("inventory", when="inventory receives EVENT"), "no event was lost"),
               (crash("inventory", at_step=6), "a step boundary"),
               (crash("broker", when="broker logs EVENT"), "the dual write is in the services")),
    )


# --- exercise: an idempotent consumer ----------------------------------------------------

CUSTOMER = ecommerce.CUSTOMER
EARLIER: dict[str, Any] = {"order": "ORD-S0", "amount": 2500, "customer": CUSTOMER,
                           "status": "COMPLETED"}
CONSUMER_STORES: dict[str, Store] = copy.deepcopy(ecommerce.INITIAL_STORES)
CONSUMER_STORES["orders"]["orders"]["ORD-S0"] = {"customer": CUSTOMER,
                                                 "items": {"ITEM-002": 1},
                                                 "status": "CONFIRMED"}
CONSUMER_STORES["payment"] = {"payments": {"PAY-S0": dict(EARLIER)},
                              "wallets": {CUSTOMER: 50_000 - EARLIER["amount"]},
                              "merchant": EARLIER["amount"]}
WALLET = CONSUMER_STORES["payment"]["wallets"][CUSTOMER]
PRICE = ecommerce.ORDER_INPUT["amount"]
TOO_DEAR = 60_000
NOT_DEDUPLICATED = {"idempotent": False}
# The same customer ordered the same items for the same amount before, in saga S1, which
# completed; this saga is S2, a new order that must be charged too.
SECOND_ORDER = "S2"
TWIN: dict[str, Any] = {"order": "ORD-S1", "amount": PRICE, "customer": CUSTOMER,
                        "status": "COMPLETED"}
SECOND_ORDER_STORES: dict[str, Store] = copy.deepcopy(CONSUMER_STORES)
SECOND_ORDER_STORES["orders"]["orders"]["ORD-S1"] = {
    "customer": CUSTOMER, "items": dict(ecommerce.ORDER_INPUT["items"]), "status": "CONFIRMED"}
SECOND_ORDER_STORES["inventory"]["stock"]["ITEM-001"] -= 2
SECOND_ORDER_STORES["inventory"]["reserved"]["ORD-S1"] = dict(ecommerce.ORDER_INPUT["items"])
SECOND_ORDER_STORES["payment"]["payments"]["PAY-S1"] = dict(TWIN)
SECOND_ORDER_STORES["payment"]["wallets"][CUSTOMER] -= PRICE
SECOND_ORDER_STORES["payment"]["merchant"] += PRICE
SECOND_ORDER_STORES["shipping"]["shipments"]["SHIP-S1"] = {"order": "ORD-S1",
                                                           "status": "SCHEDULED"}
# (what happens, the stores it starts from, options, faults, the broker's final state)
CONSUMER_PLANS: tuple[tuple[str, dict[str, Store], dict[str, Any], tuple[Fault, ...], str],
                      ...] = (
    ("the broker's delivery of reserve_inventory_done to payment arrives twice",
     CONSUMER_STORES, {}, (duplicate("EVENT", dst="payment"),), "COMPLETED"),
    ("payment commits, crashes before its ACK, and the broker re-delivers the event after "
     "the restart", CONSUMER_STORES, {}, (crash("payment", when="payment logs LOCAL_TX"),
                                          recover("payment", at_time=200)), "COMPLETED"),
    (f"the order costs {TOO_DEAR} cents, more than the wallet holds, and the delivery "
     "arrives twice", CONSUMER_STORES, {"context": {"amount": TOO_DEAR}},
     (duplicate("EVENT", dst="payment"),), "COMPENSATED"),
    (f"saga {SECOND_ORDER} is a new order by the same customer for the same {PRICE} cents "
     "as PAY-S1 (saga S1, completed), and the delivery arrives twice",
     SECOND_ORDER_STORES, {"saga_id": SECOND_ORDER}, (duplicate("EVENT", dst="payment"),),
     "COMPLETED"),
)


def charge_once(store: Store, ctx: Context) -> dict[str, Any]:
    """A correct answer: this saga's payment id is the deduplication key, checked and
    written in the same local transaction as the charge."""
    payment_id = f"PAY-{ctx['saga_id']}"
    if payment_id in store["payments"]:
        return {"payment_id": payment_id}  # already charged: the same reply, no effect
    return ecommerce.process_payment(store, ctx)


def _skip(ctx: Context) -> dict[str, Any]:
    """What the wrong answers below return when they take an event for a duplicate."""
    return {"payment_id": f"PAY-{ctx['saga_id']}"}


def charge_once_per_customer(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: the customer is the key, so an earlier order's payment
    makes this one look like a duplicate."""
    if any(p["customer"] == ctx["customer_id"] for p in store["payments"].values()):
        return _skip(ctx)
    return ecommerce.process_payment(store, ctx)


def charge_once_per_customer_and_amount(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: a payment of the same customer for the same amount is
    taken for this one, so a second order for the same amount is never charged."""
    if any(p["customer"] == ctx["customer_id"] and p["amount"] == ctx["amount"]
           for p in store["payments"].values()):
        return _skip(ctx)
    return ecommerce.process_payment(store, ctx)


def charge_unless_a_second_payment(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: the store held one payment (PAY-S0), so a second one
    means this saga has paid already."""
    if len(store["payments"]) > 1:
        return _skip(ctx)
    return ecommerce.process_payment(store, ctx)


def charge_unless_the_wallet_is_down(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: the wallet held 47500 cents, so a wallet down by the
    amount means this saga has paid already."""
    if store["wallets"][ctx["customer_id"]] <= WALLET - ctx["amount"]:
        return _skip(ctx)
    return ecommerce.process_payment(store, ctx)


def charge_unless_the_merchant_has_it(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: the merchant held 2500 cents, so a merchant up by the
    amount means this saga has paid already."""
    if store["merchant"] >= EARLIER["amount"] + ctx["amount"]:
        return _skip(ctx)
    return ecommerce.process_payment(store, ctx)


def charge_unless_the_event_says_paid(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: it looks for the payment id in the event, but every copy
    of the event carries the same context, without one."""
    if ctx.get("payment_id"):
        return {"payment_id": ctx["payment_id"]}
    return ecommerce.process_payment(store, ctx)


def charge_or_refuse_a_duplicate(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: it finds the duplicate by this saga's payment id, but
    refuses it as a business failure (StepFailed) instead of answering it."""
    if f"PAY-{ctx['saga_id']}" in store["payments"]:
        raise StepFailed("already charged")
    return ecommerce.process_payment(store, ctx)


def charge_once_never_decline(store: Store, ctx: Context) -> dict[str, Any]:
    """A plausible wrong answer: idempotent, but a declined card is swallowed (the saga
    goes on, and the customer gets the order for free)."""
    payment_id = f"PAY-{ctx['saga_id']}"
    if payment_id in store["payments"]:
        return {"payment_id": payment_id}
    try:
        return ecommerce.process_payment(store, ctx)
    except StepFailed:
        return {"payment_id": payment_id}


def consumer_saga(action: Callable[[Store, Context], Any],
                  name: str = "choreo-consumer-exercise",
                  services: Mapping[str, Store] = CONSUMER_STORES) -> Saga:
    """The order saga with ``action`` as the payment step, starting from ``services``: by
    default the customer paid an earlier order, PAY-S0, so the payment store already
    holds one payment (:data:`SECOND_ORDER_STORES` holds PAY-S1 too)."""
    saga = Saga(name, services=dict(services), context=ecommerce.ORDER_INPUT,
                invariants=ecommerce.INVARIANTS,
                description="The order saga with your payment action; the customer has "
                            "paid earlier orders: "
                            + ", ".join(sorted(services["payment"]["payments"])) + ".")
    saga.step("create_order", service="orders", action=ecommerce.create_order,
              compensation=ecommerce.cancel_order)
    saga.step("reserve_inventory", service="inventory", action=ecommerce.reserve_items,
              compensation=ecommerce.release_items)
    saga.step("process_payment", service="payment", action=action,
              compensation=ecommerce.refund_payment)
    saga.step("create_shipment", service="shipping", action=ecommerce.create_shipment,
              compensation=ecommerce.cancel_shipment)
    ecommerce.add_approval(saga)
    return saga


def _probe(action: Callable[[Store, Context], Any]) -> str | None:
    """Call ``action`` directly on two fresh stores: each must be charged. A function
    that remembers what it did outside the store charges only the first."""
    ctx = {**ecommerce.ORDER_INPUT, "saga_id": "S1", "order_id": "ORD-S1", "reserved": True}
    for first in (True, False):
        store = copy.deepcopy(CONSUMER_STORES["payment"])
        try:
            action(store, dict(ctx))
        except StepFailed as exc:
            return (f"with {WALLET} cents in the wallet, your function declined a payment of "
                    f"{PRICE} ({exc}).")
        wallet = store["wallets"][CUSTOMER]
        if wallet == WALLET - PRICE:
            continue
        if first:
            return (f"called once on the payment store, which holds no payment for saga S1 "
                    f"(only PAY-S0, of an earlier order), your function left the wallet at "
                    f"{wallet} cents instead of {WALLET - PRICE}: one charge of {PRICE}.")
        return ("called on a fresh payment store, your function charged; called on a second "
                f"fresh store, it left the wallet at {wallet} cents. It remembers something "
                "outside the store. That memory is not part of the local transaction: a "
                "crash wipes it, and a rolled-back transaction leaves it behind. Keep what "
                "you know in the store.")
    return None


def _wrong_charge(what: str, wallet: int, want: int, start: int, sid: str,
                  others: Iterable[str], broken: list[str]) -> str:
    """Why the wallet of a plan's run is not what it should be, in words."""
    times = (start - wallet) / PRICE
    if times == 0 and want != start:
        return (f"{what}: the wallet holds {wallet} cents, not {want}: the customer was "
                f"charged 0 times, so this order is free. Your function took saga {sid}'s "
                f"event for a duplicate, but when it first arrived the store held no payment "
                f"PAY-{sid}: the payments already there, {listing(sorted(others))}, are for "
                "other orders. Only this saga's own payment id tells a duplicate from a new "
                "order.")
    count = f"{times:g} times" if times == int(times) else "by a wrong amount"
    return (f"{what}: the wallet holds {wallet} cents, not {want}: the customer was charged "
            f"{count}" + (f" ({'; '.join(broken)})" if broken else "") + ".")


def judge_consumer(action: Any) -> tuple[bool, str]:
    """Run the order saga by events with ``action`` as the payment step under every plan;
    (ok, what happened)."""
    action = function(action, "process_payment(store, ctx), like the actions of lesson 07")
    problem = _probe(action)
    if problem:
        return False, problem
    calls: list[str] = []
    refused: list[str] = []  # sagas whose event your function refused as a business failure
    # when this saga's payment was already in the store (a duplicate)

    def counted(store: Store, ctx: Context) -> Any:
        sid = str(ctx.get("saga_id"))
        calls.append(sid)
        paid = f"PAY-{sid}" in store["payments"]
        try:
            return action(store, ctx)
        except StepFailed:
            if paid:
                refused.append(sid)
            raise

    first_calls = 0
    for index, (what, services, options, faults, expected) in enumerate(CONSUMER_PLANS):
        saga = consumer_saga(counted, services=services)
        calls.clear()
        refused.clear()
        run = saga.simulate(protocol=P, faults=faults, **NOT_DEDUPLICATED, **options)
        if index == 0:
            first_calls = len(calls)
        pay = final_stores(saga, run.logs)["payment"]
        wallet = pay["wallets"][CUSTOMER]
        start = services["payment"]["wallets"][CUSTOMER]
        earlier = services["payment"]["payments"]
        want = start - PRICE if expected == "COMPLETED" else start
        broken = domain_violations(run)
        state = run.states[BROKER]
        if state != expected and refused:
            return False, (f"{what}: your function raised txlib.StepFailed for a copy of the "
                           f"event that came after PAY-{refused[0]} was in the store, so "
                           "payment published process_payment_failed after "
                           f"process_payment_done, and the saga ended {state}, not {expected}. "
                           "A duplicate is not a business failure: answer it as the first "
                           "time (the same reply), without charging again.")
        if state != expected and expected == "COMPENSATED":
            return False, (f"{what}: the saga ended {state}, not {expected}: the wallet holds "
                           f"{start} cents, less than the order's {TOO_DEAR}, so your function "
                           "must decline the payment by raising txlib.StepFailed, as the "
                           "original does (the broker's events: "
                           f"{_names(broker_events(run))}).")
        if state != expected:
            return False, (f"{what}: the saga ended {state}, not {expected} "
                           f"(the broker's events: {_names(broker_events(run))}).")
        if wallet != want:
            sid = options.get("saga_id", "S1")
            return False, _wrong_charge(what, wallet, want, start, sid, earlier, broken)
        changed = sorted(pid for pid, payment in earlier.items()
                         if pay["payments"].get(pid) != payment)
        if changed:
            return False, (f"{what}: the earlier payment {changed[0]} changed; leave it "
                           "alone.")
        if broken:
            return False, f"{what}: {'; '.join(broken)}."
    return True, (f"the wallet was charged exactly once in the {len(CONSUMER_PLANS) - 1} runs "
                  "that completed (a second order for the same amount too), and not at all "
                  f"when the payment was declined. Note: in the first run your function ran "
                  f"{first_calls} times. The charge is observed once, but the code executed "
                  "twice: anything it did outside the store (an e-mail, a call to a card "
                  "provider) would have happened twice.")


@register("choreo-idempotent-consumer")
def _idempotent_consumer() -> Exercise:
    return Exercise(
        name="choreo-idempotent-consumer",
        prompt="The payment service no longer deduplicates events by id (idempotent=False), "
               "and the broker delivers at least once. Write its action, a function "
               "process_payment(store, ctx), so that the customer is charged once however "
               "often reserve_inventory_done arrives. store is the payment store: "
               "{'payments': {...}, 'wallets': {...}, 'merchant': ...}; it already holds "
               "PAY-S0, the customer's payment for an earlier order. ctx holds 'saga_id', "
               "'customer_id', 'amount' and 'order_id'. Raise txlib.StepFailed when the wallet "
               "holds less than the amount. You may call "
               "txlib.sagas.ecommerce.process_payment(store, ctx), the original. The checker "
               "runs four plans and reads the wallet; in the last one the customer orders "
               "again, in saga S2, for the same amount as an earlier order.",
        checker=from_judge(judge_consumer),
        hints=(
            "A duplicate must be recognised inside the same local transaction as the "
            "charge: look in the store, the only state that is committed with the effect.",
            "Which key identifies this saga's charge, and not the customer's earlier ones "
            "(one of them may be for the same amount)? The original action stores it as "
            "f\"PAY-{ctx['saga_id']}\".",
            "If f\"PAY-{ctx['saga_id']}\" is already in store['payments'], return "
            "{'payment_id': that id} without charging; otherwise call the original.",
        ),
        answer="def process_payment(store, ctx):\n"
               "    payment_id = f\"PAY-{ctx['saga_id']}\"\n"
               "    if payment_id in store['payments']:\n"
               "        return {'payment_id': payment_id}  # a duplicate: same reply, no charge\n"
               "    return txlib.sagas.ecommerce.process_payment(store, ctx)\n"
               "The key is this saga's payment id, not the customer (who has paid before) nor "
               "the amount (a second order may cost the same), and it is checked and written "
               "in the same local transaction as the charge, so a crash can never separate "
               "the two.",
        example=charge_once,
        wrong=((ecommerce.process_payment, "charged 2 times"),
               (charge_once_per_customer, "only PAY-S0"),
               (charge_unless_the_event_says_paid, "charged 2 times"),
               (charge_once_per_customer_and_amount, "charged 0 times, so this order is free"),
               (charge_unless_a_second_payment, "took saga S2's event for a duplicate"),
               (charge_unless_the_wallet_is_down, "the store held no payment PAY-S2"),
               (charge_unless_the_merchant_has_it, "only this saga's own payment id"),
               (charge_or_refuse_a_duplicate, "a duplicate is not a business failure"),
               (charge_once_never_decline, "must decline the payment")),
    )


# --- exercise: the options that invent nothing and lose nothing --------------------------

PUBLISH_OPTIONS = ("outbox", "publish_first")
INVENTED_PLAN = "choreo-invented-event"
LOST_PLAN = "choreo-lost-event"


def publish_runs(options: Any) -> dict[str, Run]:
    """The fault plans of ``choreo-invented-event`` and ``choreo-lost-event`` run with
    the publishing ``options`` (only ``outbox`` and ``publish_first``; the others as in
    the scenarios)."""
    if not isinstance(options, Mapping):
        raise TxlibError("answer with a dict of options, e.g. {'outbox': False, "
                         "'publish_first': True}")
    unknown = sorted(str(k) for k in options if k not in PUBLISH_OPTIONS)
    if unknown:
        raise TxlibError(f"{unknown[0]!r} is not a publishing option here; valid choices: "
                         f"{choices(PUBLISH_OPTIONS)}")
    for key, value in options.items():
        if not isinstance(value, bool):
            raise TxlibError(f"option {key} is True or False, got {value!r}")
    runs = {}
    for name in (INVENTED_PLAN, LOST_PLAN):
        base = scenario(name)
        kept = {k: v for k, v in base.options.items() if k not in PUBLISH_OPTIONS}
        runs[name] = Scenario(P, faults=base.faults, options={**kept, **options}).run()
    return runs


def _describe(options: Mapping[str, Any]) -> str:
    if options.get("outbox", True):
        return "with the outbox"
    return "publish, then commit" if options.get("publish_first") else "commit, then publish"


@register("choreo-no-invented-event")
def _no_invented_event() -> Exercise:
    def check(answer: Any) -> Feedback:
        runs = publish_runs(answer)
        if "outbox" not in answer:
            # The default (outbox=True) would pass for a learner who thinks that
            # publish_first=False, or nothing at all, is the fix.
            plain = {**answer, "outbox": False}
            name, run = next((n, r) for n, r in publish_runs(plain).items()
                             if r.outcome != "completed" or r.violations)
            said = (f"; publish_first={answer['publish_first']} did not"
                    if "publish_first" in answer else "")
            return Feedback(False, "your answer does not say 'outbox', so both crashes ran "
                                   "with its default, outbox=True, and that alone kept them "
                                   f"whole{said}. Without the outbox ({_describe(plain)}), "
                                   f"{name}'s crash ends {run.outcome} ({rules_broken(run)}). "
                                   "Say explicitly which options you choose.")
        notes = []
        for name, run in runs.items():
            crash_fault = next(f for f in run.scenario.faults if f.kind == "crash")
            what = rules_broken(run)
            notes.append(f"{name}'s crash ({crash_fault.describe()}): {run.outcome} ({what})")
        design = _describe(answer)
        if all(r.outcome == "completed" and not r.violations for r in runs.values()):
            return Feedback(True, f"{design}: " + "; ".join(notes) + ". The change and its "
                                  "event are committed in one local transaction, so no crash "
                                  "can separate them: nothing is invented, nothing is lost.")
        failed = [note for note, r in zip(notes, runs.values(), strict=True)
                  if r.outcome != "completed" or r.violations]
        return Feedback(False, f"{design}: {failed[0]}. Each order of two separate writes "
                               "has a crash that falls between them.")

    return Exercise(
        name="choreo-no-invented-event",
        prompt="In choreo-invented-event, inventory publishes before it commits and crashes in "
               "between; in choreo-lost-event it commits, then crashes before it publishes. "
               "Which publishing options prevent the invented event without opening the door "
               "to the lost one? Answer with a dict of the options 'outbox' and "
               "'publish_first' (True or False), giving 'outbox' explicitly. The checker runs "
               "both crashes with them.",
        checker=check,
        hints=(
            "Swapping the order of two separate writes only moves the gap: each order has "
            "one crash that falls between them.",
            "The gap closes only when the event is written in the same local transaction as "
            "the change. Which option does that?",
        ),
        answer="{'outbox': True} (the default; publish_first must then be False): the event "
               "is part of the forced LOCAL_TX record, and a relay publishes it after the "
               "commit, again after a restart, until the broker acknowledges it. 'Publish, "
               "then commit' invents an event when it crashes in between; 'commit, then "
               "publish' loses one.",
        example={"outbox": True},
        wrong=(({"outbox": False, "publish_first": False}, "lost event"),
               ({"outbox": False, "publish_first": True}, "invented event"),
               ({"outbox": True, "publish_first": True}, "only applies without the outbox"),
               # right only by the default (outbox=True), for the wrong reason
               ({"publish_first": False}, "publish_first=False did not"),
               ({}, "does not say 'outbox'")),
    )
