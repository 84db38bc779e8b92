"""Named scenarios of saga design: isolation anomalies and their countermeasures,
idempotent compensations, and TCC's null compensation and hanging, each described in one
line for learners. They are listed in :data:`txlib.presets.NAMED_SCENARIOS`.
"""

from __future__ import annotations

from ..engine.faults import delay, drop, duplicate
from ..sagas.isolation import DIRTY_READ, LOST_UPDATE
from ..simulation.scenario import Scenario

_DECLINED_SALE = {"qty": -2, "payment": "declined"}

_ISOLATION: tuple[Scenario, ...] = (
    Scenario(
        "saga", name="isolation-lost-update",
        options={"saga": "stock", "instances": LOST_UPDATE},
        description="Sagas A and B each sell ITEM-1; A's payment is declined and its "
                    "compensation writes back the stock it first read, erasing B's sale: "
                    "a lost update.",
    ),
    Scenario(
        "saga", name="isolation-lost-update-commutative",
        options={"saga": "stock-commutative", "instances": LOST_UPDATE},
        description="The same two sales, but the compensation adds A's 2 units back instead "
                    "of writing back an old value (a commutative update): B's sale counts.",
    ),
    Scenario(
        "saga", name="isolation-lost-update-semantic-lock",
        options={"saga": "stock-locked", "instances": LOST_UPDATE},
        description="The same two sales, but A's move holds ITEM-1 PENDING until A ends: "
                    "B's move sees PENDING and is refused (to retry later), so nothing is lost.",
    ),
    Scenario(
        "saga", name="isolation-lost-update-reordered",
        options={"saga": "stock-reordered", "instances": LOST_UPDATE},
        description="The same two sales, with the bill (the step that may fail) first: A "
                    "fails before it touches the stock, so there is nothing to compensate.",
    ),
    Scenario(
        "saga", name="isolation-dirty-read",
        options={"saga": "stock-commutative", "instances": DIRTY_READ},
        description="A restocks 5 units, B sells 12 counting on them, then A's supplier bill "
                    "is declined and the 5 go back: stock -2. B read unfinished work: a "
                    "dirty read.",
    ),
    Scenario(
        "saga", name="isolation-dirty-read-semantic-lock",
        options={"saga": "stock-commutative-locked", "instances": DIRTY_READ},
        description="The same restock and sale, but the restock holds ITEM-1 PENDING until A "
                    "ends: B is refused instead of selling units that may vanish.",
    ),
    Scenario(
        "saga", name="isolation-dirty-read-reordered",
        options={"saga": "stock-commutative-reordered", "instances": DIRTY_READ},
        description="The same restock and sale, with the bill first: A fails before its 5 "
                    "units appear, and B, seeing the real 10, cannot sell 12 and is refunded.",
    ),
)

_COMPENSATION: tuple[Scenario, ...] = (
    Scenario(
        "saga", name="compensation-not-idempotent",
        options={"saga": "stock-commutative", "context": _DECLINED_SALE, "idempotent": False},
        faults=(duplicate("UNDO", dst="inventory"),),
        description="A declined sale is compensated, the network delivers the compensation "
                    "twice and the service does not deduplicate: the stock shows 12 of 10.",
    ),
    Scenario(
        "saga", name="compensation-idempotent",
        options={"saga": "stock-commutative", "context": _DECLINED_SALE},
        faults=(duplicate("UNDO", dst="inventory"),),
        description="The same duplicate, but the service first looks up the command's "
                    "idempotency key in its log: the copy is not applied, the stock is 10.",
    ),
)

_TCC: tuple[Scenario, ...] = (
    Scenario(
        "tcc", name="tcc-happy",
        description="TCC: Try freezes 2 units at inventory and 300 cents at payment; both "
                    "succeed, so the coordinator confirms both.",
    ),
    Scenario(
        "tcc", name="tcc-try-fails",
        options={"available": {"payment": 200}},
        description="The payment participant has only 200 cents, so its Try fails; the "
                    "coordinator cancels every branch, and payment's barrier makes its Cancel "
                    "a no-op.",
    ),
    Scenario(
        "tcc", name="tcc-null-compensation",
        options={"barrier": False}, faults=(drop("TRY", dst="payment"),),
        description="The Try to payment is lost; the coordinator times out and cancels "
                    "everywhere, and payment releases 300 cents it never froze.",
    ),
    Scenario(
        "tcc", name="tcc-null-compensation-barrier",
        options={"barrier": True}, faults=(drop("TRY", dst="payment"),),
        description="The same lost Try behind a barrier: payment finds no Try for T1, "
                    "records the Cancel and releases nothing (a safe null compensation).",
    ),
    Scenario(
        "tcc", name="tcc-hanging",
        options={"barrier": False}, faults=(delay(200, "TRY", dst="payment"),),
        description="The Try to payment arrives after the Cancel: the Cancel releases what "
                    "was never frozen, then the Try freezes 300 cents for good (hanging).",
    ),
    Scenario(
        "tcc", name="tcc-hanging-barrier",
        options={"barrier": True}, faults=(delay(200, "TRY", dst="payment"),),
        description="The same late Try behind a barrier: the Cancel is recorded first, so "
                    "the late Try is refused and nothing is left frozen.",
    ),
)

DESIGN_SCENARIOS: tuple[Scenario, ...] = (*_ISOLATION, *_COMPENSATION, *_TCC)
