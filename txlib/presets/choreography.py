"""Named scenarios of the e-commerce saga by choreography, each described for learners."""

from __future__ import annotations

from ..engine.faults import crash, duplicate, fail_step, recover
from ..simulation.scenario import Scenario

P = "saga-choreography"
LOST = crash("inventory", when="inventory logs LOCAL_TX")

CHOREOGRAPHY_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        P, name="choreo-happy",
        description="The order saga by events: each service acts on the previous step's "
                    "done event and publishes its own, through the broker; it completes.",
    ),
    Scenario(
        P, name="choreo-payment-declined", faults=(fail_step("process_payment"),),
        description="The payment is declined: payment publishes process_payment_failed, "
                    "inventory releases the stock and publishes reserve_inventory_compensated, "
                    "orders cancels the order. Compensated, in reverse, by events.",
    ),
    Scenario(
        P, name="choreo-duplicate-deduplicated",
        faults=(duplicate("EVENT", dst="payment"),),
        description="The broker's delivery to payment arrives twice; payment finds the event "
                    "id in its log and acknowledges the copy without charging again.",
    ),
    Scenario(
        P, name="choreo-duplicate-charged-twice", options={"idempotent": False},
        faults=(duplicate("EVENT", dst="payment"),),
        description="The same duplicate, but payment does not deduplicate by event id: the "
                    "customer is charged twice. Inconsistent.",
    ),
    Scenario(
        P, name="choreo-lost-event", options={"outbox": False},
        faults=(LOST, recover("inventory", at_time=300)),
        description="No outbox: inventory commits the reservation, then crashes before "
                    "publishing. On restart the redelivered event is a duplicate, so nobody "
                    "publishes reserve_inventory_done: the saga silently stops, stock held.",
    ),
    Scenario(
        P, name="choreo-lost-event-outbox",
        faults=(LOST, recover("inventory", at_time=300)),
        description="The same crash with the outbox: the event was written in the same local "
                    "transaction, and the relay publishes it after the restart. It completes.",
    ),
    Scenario(
        P, name="choreo-invented-event",
        options={"outbox": False, "publish_first": True, "horizon": 500},
        faults=(crash("inventory", when="inventory sends PUBLISH"),),
        description="Publish before commit: inventory publishes reserve_inventory_done, then "
                    "crashes before committing (and stays down). Payment and shipping act on "
                    "a reservation that never happened. Inconsistent.",
    ),
    Scenario(
        P, name="choreo-service-crash-recovers",
        faults=(crash("payment", when="broker sends EVENT to payment"),
                recover("payment", at_time=250)),
        description="Payment is down when its event arrives; the broker re-delivers until "
                    "payment, restarted at time 250, acknowledges it. It completes.",
    ),
    Scenario(
        P, name="choreo-broker-crash-recovers",
        faults=(crash("broker", when="payment sends PUBLISH"), recover("broker", at_time=250)),
        description="The broker crashes while payment publishes; its event log is durable "
                    "and payment's outbox relay keeps publishing, so after the restart the "
                    "events flow again. It completes.",
    ),
    Scenario(
        P, name="choreo-compensation-stuck",
        faults=(fail_step("create_shipment"), fail_step("process_payment", compensation=True)),
        description="Shipping fails and the refund fails every time: payment NACKs, the "
                    "broker re-delivers, and after three tries the event is dead-lettered. "
                    "Stuck: an operator must step in.",
    ),
)
