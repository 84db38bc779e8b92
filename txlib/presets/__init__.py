"""Named scenarios: the seed's examples and the classic failures, each described for learners."""

from __future__ import annotations

from ..engine.faults import crash, delay, drop, duplicate, fail_step, partition, recover, vote_no
from ..errors import bad_choice
from ..protocols import get_protocol
from ..simulation.scenario import Scenario
from .choreography import CHOREOGRAPHY_SCENARIOS
from .design import DESIGN_SCENARIOS
from .paxos import PAXOS_SCENARIOS

_SEED_ACCOUNTS = ("AccountA", "AccountB")
_SEED_TRANSFER = {"AccountA": ["debit", 100], "AccountB": ["credit", 100]}

_NAMED: tuple[Scenario, ...] = (
    # --- two-phase commit ------------------------------------------------------------
    Scenario(
        "2pc", name="2pc-happy",
        description="2PC with three participants and no faults: everyone votes YES and commits.",
    ),
    Scenario(
        "2pc", _SEED_ACCOUNTS, name="seed-transfer",
        options={"tx": "TX-001", "operations": _SEED_TRANSFER},
        description="The seed's transfer TX-001: AccountA pays 100 to AccountB, and it commits.",
    ),
    Scenario(
        "2pc", _SEED_ACCOUNTS, name="seed-transfer-fails",
        options={"tx": "TX-002", "operations": _SEED_TRANSFER},
        faults=(vote_no("AccountB"),),
        description="The seed's TX-002: AccountB fails to prepare and votes NO, so all abort.",
    ),
    Scenario(
        "2pc", name="2pc-vote-no", faults=(vote_no("p2"),),
        description="p2 cannot do its part and votes NO: the coordinator aborts everyone.",
    ),
    Scenario(
        "2pc", name="2pc-overdraft",
        options={"balances": {"p1": 150}},
        description="p1 would be overdrawn by the transfer, so it votes NO and all abort.",
    ),
    Scenario(
        "2pc", name="2pc-coordinator-crash-blocks",
        faults=(crash("coordinator", when="coordinator logs COMMIT"),),
        description="The coordinator crashes right after logging COMMIT: every participant "
                    "voted YES and is stuck in doubt, holding its locks.",
    ),
    Scenario(
        "2pc", name="2pc-coordinator-recovers",
        faults=(crash("coordinator", when="coordinator logs COMMIT"),
                recover("coordinator", at_time=300)),
        description="As 2pc-coordinator-crash-blocks, but the coordinator restarts at time 300, "
                    "finds COMMIT in its log and re-sends it: everyone commits.",
    ),
    Scenario(
        "2pc", name="2pc-presumed-abort",
        faults=(crash("coordinator", at_step=1), recover("coordinator", at_time=200)),
        description="The coordinator crashes right after sending PREPARE; on restart it finds no "
                    "decision in its log, presumes abort, and the in-doubt participants abort.",
    ),
    Scenario(
        "2pc", name="2pc-partial-decision",
        faults=(crash("coordinator", when="coordinator sends COMMIT to p1"),),
        description="The coordinator crashes while sending COMMIT: p1 commits, p2 and p3 stay "
                    "in doubt, blocked, although p1 knows the answer.",
    ),
    Scenario(
        "2pc", name="2pc-cooperative-termination",
        options={"cooperative": True},
        faults=(crash("coordinator", when="coordinator sends COMMIT to p1"),),
        description="As 2pc-partial-decision, but in-doubt participants ask their peers: p1 "
                    "tells them COMMIT and nobody stays blocked.",
    ),
    Scenario(
        "2pc", name="2pc-participant-crash-prepared",
        faults=(crash("p2", when="p2 sends YES"), recover("p2", at_time=200)),
        description="p2 crashes just after voting YES; the coordinator commits and keeps "
                    "re-sending COMMIT; p2 restarts in doubt, asks, and commits.",
    ),
    Scenario(
        "2pc", name="2pc-lost-vote",
        faults=(drop("YES", src="p2"),),
        description="p2's YES vote is lost: the coordinator times out and aborts; p2, in doubt, "
                    "asks and learns ABORT.",
    ),
    Scenario(
        "2pc", name="2pc-partition-blocks",
        faults=(partition(["coordinator"], when="coordinator logs COMMIT"),),
        description="The network cuts the coordinator off after it decided: participants "
                    "cannot learn the decision and stay blocked.",
    ),
    # --- three-phase commit ----------------------------------------------------------
    Scenario(
        "3pc", name="3pc-happy",
        description="3PC with three participants and no faults: CanCommit, PreCommit, DoCommit.",
    ),
    Scenario(
        "3pc", name="3pc-vote-no", faults=(vote_no("p3"),),
        description="p3 votes NO in the first phase: the coordinator aborts everyone.",
    ),
    Scenario(
        "3pc", name="3pc-coordinator-crash-wait",
        faults=(crash("coordinator", at_step=1),),
        description="The coordinator crashes while collecting votes: the uncertain "
                    "participants time out, elect p1, find nobody pre-committed, and abort.",
    ),
    Scenario(
        "3pc", name="3pc-coordinator-crash-precommit",
        faults=(crash("coordinator", when="coordinator sends PRE_COMMIT to p1"),),
        description="The coordinator crashes while sending PRE_COMMIT: only p1 is "
                    "pre-committed; the survivors elect p1, which pre-commits the others "
                    "and commits. No blocking.",
    ),
    Scenario(
        "3pc", name="3pc-coordinator-crash-commit",
        faults=(crash("coordinator", when="coordinator sends DO_COMMIT to p1"),),
        description="The coordinator crashes while sending DO_COMMIT: p1 has committed, the "
                    "others are pre-committed; termination commits them all.",
    ),
    Scenario(
        "3pc", name="3pc-coordinator-recovers",
        faults=(crash("coordinator", when="coordinator sends PRE_COMMIT to p1"),
                recover("coordinator", at_time=400)),
        description="As 3pc-coordinator-crash-precommit, and the coordinator later restarts "
                    "in PRECOMMIT: it asks the participants and learns COMMIT.",
    ),
    Scenario(
        "3pc", name="3pc-partition-split",
        faults=(partition(["coordinator", "p1"], ["p2", "p3"],
                          when="coordinator sends PRE_COMMIT to p1"),),
        description="A partition cuts {coordinator, p1} from {p2, p3} during PreCommit: one "
                    "side commits and the other aborts. Atomicity is broken.",
    ),
)

_SAGAS: tuple[Scenario, ...] = (
    Scenario(
        "saga", name="saga-happy",
        description="The seed's order saga: create order, reserve stock, pay, ship, approve "
                    "the order; every step succeeds.",
    ),
    Scenario(
        "saga", name="saga-payment-declined", faults=(fail_step("process_payment"),),
        description="The seed's second example: the payment is declined, so the stock is "
                    "released and the order cancelled, in reverse order.",
    ),
    Scenario(
        "saga", name="saga-compensation-retried",
        faults=(fail_step("create_shipment"),
                fail_step("process_payment", compensation=True, times=2)),
        description="Shipping fails; refunding the payment fails twice, and the third try "
                    "succeeds: compensations are retried per their policy.",
    ),
    Scenario(
        "saga", name="saga-stuck",
        faults=(fail_step("create_shipment"),
                fail_step("process_payment", compensation=True)),
        description="Shipping fails and the refund fails every time: the retries run out and "
                    "the saga is stuck, waiting for an operator.",
    ),
    Scenario(
        "saga", name="saga-orchestrator-crash",
        faults=(crash("orchestrator", when="orchestrator sends DO to payment"),
                recover("orchestrator", at_time=300)),
        description="The orchestrator crashes while calling the payment; on restart its saga "
                    "log tells it where it was, it calls again with the same key, and the "
                    "payment service answers from its log without charging twice.",
    ),
    Scenario(
        "saga", name="saga-reply-lost-compensate-after",
        faults=(drop("OK", src="inventory", count=3),),
        description="The stock is reserved but every reply is lost; the orchestrator gives up "
                    "and compensates only the steps it knows succeeded: the reservation is "
                    "never released. Inconsistent.",
    ),
    Scenario(
        "saga", name="saga-reply-lost-compensate-before",
        options={"register_compensation": "before"},
        faults=(drop("OK", src="inventory", count=3),),
        description="The same lost replies, but each compensation is registered before its "
                    "call: the unanswered reservation is released too. Consistent.",
    ),
    Scenario(
        "saga", name="saga-late-command-no-barrier",
        options={"register_compensation": "before", "barrier": False},
        faults=(delay(300, "DO", dst="payment", count=3),),
        description="Anti-pattern: every payment command is late, so the orchestrator "
                    "gives up and compensates (nothing to refund); then the late command "
                    "arrives and charges the customer for a cancelled order. Inconsistent.",
    ),
    Scenario(
        "saga", name="saga-late-command-barrier",
        options={"register_compensation": "before"},
        faults=(delay(300, "DO", dst="payment", count=3),),
        description="The same late commands with the barrier (the default): payment "
                    "remembers that it compensated the step and refuses the late command. "
                    "Compensated, consistent.",
    ),
    Scenario(
        "saga", name="saga-duplicate-charged-twice",
        options={"idempotent": False}, faults=(duplicate("DO", dst="payment"),),
        description="The network delivers the payment command twice and the payment service "
                    "does not deduplicate: the customer is charged twice.",
    ),
    Scenario(
        "saga", name="saga-duplicate-deduplicated", faults=(duplicate("DO", dst="payment"),),
        description="The same duplicate, but the service remembers the command's idempotency "
                    "key: the second copy is answered from its log, not applied.",
    ),
    Scenario(
        "saga", name="saga-pivot-forward-recovery",
        options={"saga": "ecommerce-pivot"}, faults=(fail_step("create_shipment", times=2),),
        description="The payment is the pivot: once it succeeds the saga can only go forward, "
                    "so the failing shipment is retried until it succeeds.",
    ),
    Scenario(
        "saga", name="saga-pivot-fails",
        options={"saga": "ecommerce-pivot"}, faults=(fail_step("process_payment"),),
        description="The pivot itself fails: nothing is final yet, so the earlier steps are "
                    "compensated.",
    ),
    Scenario(
        "saga", name="saga-parallel-compensation",
        options={"compensation_order": "parallel"}, faults=(fail_step("create_shipment"),),
        description="Shipping fails and the three compensations are sent at once, not in "
                    "reverse order: faster, and only right if they do not depend on each other.",
    ),
)

NAMED_SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (*_NAMED, *_SAGAS, *CHOREOGRAPHY_SCENARIOS, *DESIGN_SCENARIOS, *PAXOS_SCENARIOS)
}


def scenarios(protocol: str | None = None) -> list[str]:
    """Names of the named scenarios (optionally only those of one protocol)."""
    if protocol is not None:
        get_protocol(protocol)  # an unknown protocol is an error, not an empty list
    return [n for n, s in NAMED_SCENARIOS.items() if protocol in (None, s.protocol)]


def scenario(name: str) -> Scenario:
    """The named scenario ``name``; see :func:`scenarios` for the choices."""
    if not isinstance(name, str) or name not in NAMED_SCENARIOS:
        raise bad_choice("scenario", name, NAMED_SCENARIOS)
    return NAMED_SCENARIOS[name]
