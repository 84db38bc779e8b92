"""Sagas by choreography: named scenarios, the outbox and deduplication, properties under
random faults, determinism, and the views (diagram, console, lab) on a choreography run."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rich.console import Console
from strategies import roles_of

import txlib
from txlib.presets.choreography import CHOREOGRAPHY_SCENARIOS
from txlib.properties.saga import effects, final_stores
from txlib.protocols.choreography import BROKER, ChoreographyConfig, Flow
from txlib.viz.console import show
from txlib.viz.widgets import Lab

P = "saga-choreography"
NODES = ["broker", "orders", "inventory", "payment", "shipping"]
SERVICES = NODES[1:]
ORDER = "ORD-S1"


def applied(run: txlib.Run) -> Counter[tuple[str, str]]:
    """(kind, step) -> how many times it took effect, from the services' logs."""
    return Counter((kind, step) for _, _, kind, step in effects(run.logs))


def events(run: txlib.Run) -> list[str]:
    """The broker's event log, in order."""
    return [r.data["event"] for r in run.logs[BROKER] if r.record == "EVENT"]


def stores(run: txlib.Run) -> dict:
    return final_stores(txlib.sagas.get_saga(run.scenario.options.get("saga", "ecommerce")),
                        run.logs)


# --- the public surface -----------------------------------------------------------------
def test_simulate_runs_the_default_ecommerce_saga():
    run = txlib.simulate(P)
    assert run.outcome == "completed" and run.violations == ()
    assert run.nodes == ("broker", *SERVICES)
    assert run.roles["broker"] == "broker" and run.roles["payment"] == "service"
    assert events(run) == ["saga_started", "create_order_done", "reserve_inventory_done",
                           "process_payment_done", "create_shipment_done", "approve_order_done"]
    assert [r.data["id"] for r in run.logs[BROKER] if r.record == "EVENT"][1] == (
        "S1:create_order_done")
    assert run.decisions["broker"] == "completed" and run.states["broker"] == "COMPLETED"
    assert run.stopped_by == "nothing pending"


def test_services_use_the_orchestrations_local_tx_format():
    run = txlib.simulate(P)
    (tx,) = [r for r in run.logs["payment"] if r.record == "LOCAL_TX"]
    assert tx.forced and tx.data["key"] == "S1:reserve_inventory_done"
    assert tx.data["saga_id"] == "S1"
    assert (tx.data["step"], tx.data["kind"]) == ("process_payment", "do")
    assert tx.data["reply"]["event"] == "process_payment_done"  # the outbox entry
    assert tx.data["store"]["payments"]["PAY-S1"]["status"] == "COMPLETED"
    assert applied(run) == Counter({("do", s.name): 1 for s in Flow(
        txlib.sagas.get_saga("ecommerce")).steps})


def test_any_saga_definition_runs_by_choreography():
    def take(store, ctx):
        if store["balance"] < ctx["amount"]:
            raise txlib.StepFailed("insufficient funds")
        store["balance"] -= ctx["amount"]

    def give_back(store, ctx):
        store["balance"] += ctx["amount"]

    def note(store, ctx):
        store["notes"].append(ctx["amount"])
        return {"noted": True}

    def unnote(store, ctx):
        store["notes"].remove(ctx["amount"])

    saga = txlib.Saga("choreo-transfer", services={"bank": {"balance": 100},
                                                   "ledger": {"notes": []}},
                      context={"amount": 30})
    saga.step("note", service="ledger", action=note, compensation=unnote)
    saga.step("take", service="bank", action=take, compensation=give_back)
    saga.step("confirm", service="ledger", action=note, compensation=unnote)
    ok = saga.simulate(protocol=P)
    assert ok.outcome == "completed" and ok.nodes == ("broker", "bank", "ledger")
    assert stores(ok)["ledger"]["notes"] == [30, 30]
    poor = saga.simulate(protocol=P, context={"amount": 500})
    assert poor.outcome == "compensated" and poor.violations == ()
    assert events(poor)[-2:] == ["take_failed", "note_compensated"]
    assert stores(poor) == {"bank": {"balance": 100}, "ledger": {"notes": []}}
    last = saga.simulate(protocol=P, faults=[txlib.fail_step("confirm")])
    assert last.outcome == "compensated" and stores(last)["bank"] == {"balance": 100}


@pytest.mark.parametrize(("options", "faults", "message"), [
    ({"publish_first": True}, (), "publish_first only applies without the outbox"),
    ({"redeliver_after": 0}, (), "redeliver_after must be at least 1"),
    ({"saga_id": "a b"}, (), "saga_id must be a word"),
    ({"call_timeout": 5}, (), "unknown option 'call_timeout'"),
    ({}, (txlib.vote_no("payment"),), "vote_no is a commit-protocol fault"),
    ({}, (txlib.fail_step("ship"),), "unknown step of saga ecommerce 'ship'"),
])
def test_bad_input_is_refused_with_a_clear_message(options, faults, message):
    with pytest.raises(txlib.TxlibError, match=message):
        txlib.Scenario(P, options=options, faults=faults)


def test_the_services_are_the_sagas():
    with pytest.raises(txlib.TxlibError, match="a saga's nodes are its services"):
        txlib.Scenario(P, participants=("p1", "p2"))


def test_colliding_event_names_are_refused():
    saga = txlib.Saga("choreo-collide", services={"s": {}})
    saga.step("pay", service="s", action=lambda s, c: None, compensation=lambda s, c: None)
    saga.step("pay_compensation", service="s", action=lambda s, c: None,
              compensation=lambda s, c: None)
    with pytest.raises(txlib.TxlibError, match="same event name 'pay_compensation_failed'"):
        saga.simulate(protocol=P)


# --- the named scenarios ----------------------------------------------------------------
EXPECTED = {
    "choreo-happy": "completed",
    "choreo-payment-declined": "compensated",
    "choreo-duplicate-deduplicated": "completed",
    "choreo-duplicate-charged-twice": "inconsistent",
    "choreo-lost-event": "stuck",
    "choreo-lost-event-outbox": "completed",
    "choreo-invented-event": "inconsistent",
    "choreo-service-crash-recovers": "completed",
    "choreo-broker-crash-recovers": "completed",
    "choreo-compensation-stuck": "stuck",
}


def test_every_named_scenario_is_registered_and_described():
    assert txlib.scenarios(P) == [s.name for s in CHOREOGRAPHY_SCENARIOS] == list(EXPECTED)
    for s in CHOREOGRAPHY_SCENARIOS:
        assert s.name.startswith("choreo-") and s.description.endswith(".")
        assert txlib.scenario(s.name) is s


@pytest.mark.parametrize(("name", "outcome"), EXPECTED.items())
def test_named_scenario_outcome(name, outcome):
    run = txlib.scenario(name).run()
    assert run.outcome == outcome, run.summary()
    assert run.unfired_faults == (), run.summary()
    if outcome in ("completed", "compensated"):
        assert run.violations == ()


def test_payment_declined_is_compensated_in_reverse_by_failure_events():
    run = txlib.scenario("choreo-payment-declined").run()
    assert events(run)[3:] == ["process_payment_failed", "reserve_inventory_compensated",
                               "create_order_compensated"]
    undo = [step for _, _, kind, step in effects(run.logs) if kind == "undo"]
    assert undo == ["reserve_inventory", "create_order"]
    final = stores(run)
    assert final["orders"]["orders"][ORDER]["status"] == "CANCELLED"
    assert final["inventory"]["stock"]["ITEM-001"] == 10 and not final["inventory"]["reserved"]
    assert run.decisions["broker"] == "compensated"


def test_a_duplicate_is_deduplicated_by_event_id():
    run = txlib.scenario("choreo-duplicate-deduplicated").run()
    notes = [e.detail for e in run.trace if e.kind == "effect" and e.node == "payment"]
    assert notes == ["do process_payment", "duplicate event reserve_inventory_done: already "
                     "handled (its id is in the log), not applied again"]
    assert applied(run)[("do", "process_payment")] == 1
    assert stores(run)["payment"]["merchant"] == 9999


def test_without_deduplication_the_customer_is_charged_twice():
    run = txlib.scenario("choreo-duplicate-charged-twice").run()
    reasons = {v.invariant: v.reason for v in run.violations}
    assert reasons["idempotency"] == "process_payment was applied 2 times"
    assert "merchant holds 19998 cents" in reasons["domain: every charge is recorded"]
    assert stores(run)["payment"]["wallets"]["CUST-123"] == 50_000 - 2 * 9999


def test_lost_event_without_outbox_stops_the_saga_with_stock_held():
    run = txlib.scenario("choreo-lost-event").run()
    (v,) = run.violations
    assert v.invariant == "lost event"
    assert v.reason.startswith("inventory committed its local transaction for "
                               "reserve_inventory, but its event reserve_inventory_done "
                               "never reached the broker")
    assert "reserve_inventory_done" not in events(run)
    final = stores(run)
    assert final["inventory"]["reserved"] == {ORDER: {"ITEM-001": 2}}
    assert final["orders"]["orders"][ORDER]["status"] == "PENDING"
    assert run.states["broker"] == "RUNNING" and run.decisions["broker"] is None
    assert "inventory" not in run.down  # it came back, and still nobody publishes


def test_the_same_crash_with_the_outbox_is_consistent():
    run = txlib.scenario("choreo-lost-event-outbox").run()
    assert run.violations == () and run.outcome == "completed"
    relayed = [e for e in run.trace if e.kind == "send" and e.node == "inventory"
               and e.message.type == "PUBLISH"]
    recovered = next(e.time for e in run.trace if e.kind == "recover")
    assert relayed and relayed[0].time == recovered  # the relay resumes on restart
    assert applied(run)[("do", "reserve_inventory")] == 1


def test_publish_before_commit_invents_an_event():
    run = txlib.scenario("choreo-invented-event").run()
    reasons = {v.invariant: v.reason for v in run.violations}
    assert reasons["invented event"].startswith(
        "reserve_inventory_done was published, but inventory never committed it")
    assert "payment acted on a change that never happened" in reasons["invented event"]
    assert reasons["semantic atomicity"] == (
        "the saga completed but reserve_inventory never applied")
    final = stores(run)
    assert final["inventory"]["reserved"] == {} and final["payment"]["merchant"] == 9999
    assert final["shipping"]["shipments"]["SHIP-S1"]["status"] == "SCHEDULED"


def test_the_same_crash_cannot_invent_an_event_with_the_outbox():
    invented = txlib.scenario("choreo-invented-event")
    run = invented.replace(options={"outbox": True, "publish_first": False}).run()
    assert "inventory" in run.down  # it crashed as it published, and never came back
    assert run.outcome == "completed" and run.violations == ()
    assert applied(run)[("do", "reserve_inventory")] == 1  # committed before publishing


def test_publish_after_commit_without_outbox_is_fine_when_nothing_crashes():
    run = txlib.simulate(P, outbox=False)
    assert run.outcome == "completed" and run.violations == ()
    assert all(r.data["reply"] is None for log in run.logs.values() for r in log
               if r.record == "LOCAL_TX")


def test_a_service_that_was_down_gets_the_event_redelivered():
    run = txlib.scenario("choreo-service-crash-recovers").run()
    to_payment = [e for e in run.trace if e.kind in ("deliver", "drop")
                  and e.message is not None and e.message.type == "EVENT"
                  and e.message.dst == "payment"]
    assert to_payment[0].kind == "drop" and to_payment[-1].kind == "deliver"
    assert to_payment[-1].time > 250
    assert applied(run)[("do", "process_payment")] == 1


def test_the_broker_recovers_its_event_log_and_redelivers():
    run = txlib.scenario("choreo-broker-crash-recovers").run()
    recover = next(e for e in run.trace if e.kind == "recover")
    resent = [e.message.payload["event"] for e in run.trace if e.kind == "send"
              and e.node == BROKER and e.step == recover.step]
    assert "reserve_inventory_done" in resent  # payment's ACK was lost with the broker
    assert events(run).count("process_payment_done") == 1  # the relay's copies deduped


def test_a_compensation_that_keeps_failing_is_dead_lettered():
    run = txlib.scenario("choreo-compensation-stuck").run()
    assert run.states["payment"] == "STUCK" and run.states["broker"] == "STUCK"
    assert events(run)[-1] == "process_payment_compensation_failed"
    fails = [r for r in run.logs["payment"] if r.record == "UNDO_FAILED"]
    assert [r.data["attempt"] for r in fails] == [1, 2, 3]
    assert [r.record for r in run.logs["payment"]].count("GAVE_UP") == 1
    assert run.decisions["broker"] == "stuck"


def test_compensation_retried_by_redelivery_then_succeeds():
    run = txlib.simulate(P, faults=[txlib.fail_step("create_shipment"),
                                    txlib.fail_step("process_payment", compensation=True,
                                                    times=2)])
    assert run.outcome == "compensated" and run.violations == ()
    nacks = [e for e in run.trace if e.kind == "deliver" and e.message.type == "NACK"]
    assert len(nacks) == 2


def test_after_the_pivot_a_failing_step_is_retried_until_it_succeeds():
    run = txlib.simulate(P, saga="ecommerce-pivot",
                         faults=[txlib.fail_step("create_shipment", times=2)])
    assert run.outcome == "completed" and run.violations == ()
    assert applied(run)[("do", "create_shipment")] == 1
    assert "create_shipment_failed" not in events(run)
    pivot_fails = txlib.simulate(P, saga="ecommerce-pivot",
                                 faults=[txlib.fail_step("process_payment")])
    assert pivot_fails.outcome == "compensated" and pivot_fails.violations == ()


@pytest.mark.parametrize(("idempotent", "times"), [(True, 1), (False, 2)])
def test_redelivery_after_a_crash_is_a_duplicate_too(idempotent, times):
    """Payment commits and crashes before its ACK: the broker re-delivers the event."""
    run = txlib.simulate(P, idempotent=idempotent, faults=[
        txlib.crash("payment", when="payment logs LOCAL_TX"),
        txlib.recover("payment", at_time=200)])
    assert applied(run)[("do", "process_payment")] == times
    assert (run.outcome == "completed") is idempotent


# --- properties under random faults -----------------------------------------------------
RECORDS = {"broker": ["EVENT", "ACKED"]}
RECORDS.update({s: ["LOCAL_TX", "PUBLISHED", "UNDO_FAILED"] for s in SERVICES})
TYPES = ["EVENT", "PUBLISH", "PUBACK", "ACK", "NACK"]
PROPERTY = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def crash_and_recover(draw) -> list[txlib.Fault]:
    """A crash of any node, always followed by its recovery."""
    node = draw(st.sampled_from(NODES))
    if draw(st.booleans()):
        at = draw(st.integers(0, 500))
        return [txlib.crash(node, at_time=at),
                txlib.recover(node, at_time=at + draw(st.integers(1, 300)))]
    who = draw(st.sampled_from(NODES))
    if draw(st.booleans()):
        when = f"{who} logs {draw(st.sampled_from(RECORDS[who]))}"
    elif draw(st.booleans()):
        when = f"{who} sends {draw(st.sampled_from(TYPES))}"
    else:  # a type the node receives (txlib refuses a trigger that could never fire)
        received = roles_of(P, tuple(SERVICES))[who][1]
        when = f"{who} receives {draw(st.sampled_from(received))}"
    return [txlib.crash(node, when=when),
            txlib.recover(node, at_time=draw(st.integers(700, 1000)))]


@st.composite
def message_fault(draw) -> txlib.Fault:
    """Drop, duplicate or delay a few (never all) matching messages."""
    kind = draw(st.sampled_from(["drop", "duplicate", "delay"]))
    pattern = {"src": draw(st.sampled_from([None, *NODES])),
               "dst": draw(st.sampled_from([None, *NODES])),
               "count": draw(st.integers(1, 3))}
    kind_of = draw(st.sampled_from([None, *TYPES]))
    if kind == "delay":
        return txlib.delay(draw(st.integers(1, 300)), kind_of, **pattern)
    return getattr(txlib, kind)(kind_of, **pattern)


@st.composite
def robust_scenarios(draw) -> tuple[txlib.Scenario, str]:
    """Outbox and idempotent consumers (the defaults), random faults; and the outcome the
    saga must reach."""
    saga = draw(st.sampled_from(["ecommerce", "ecommerce-pivot"]))
    steps = txlib.sagas.get_saga(saga).steps
    faults: list[txlib.Fault] = []
    for _ in range(draw(st.integers(0, 3))):
        faults += draw(crash_and_recover())
    faults += draw(st.lists(message_fault(), max_size=4))
    expected = "completed"
    failing = draw(st.sampled_from([None, *steps]))
    if failing is not None:
        times = draw(st.sampled_from([None, 1])) if not failing.after_pivot else (
            draw(st.integers(1, 2)))
        faults.append(txlib.fail_step(failing.name, times=times))
        if not failing.after_pivot:
            expected = "compensated"
            undo = [s for s in steps[: steps.index(failing)] if s.compensation is not None]
            if undo and draw(st.booleans()):  # fewer failures than the retry attempts
                faults.append(txlib.fail_step(draw(st.sampled_from(undo)).name,
                                              compensation=True, times=draw(st.integers(1, 2))))
    options = {"saga": saga, "lose_unforced": draw(st.booleans()),
               "duplicate": draw(st.sampled_from([0.0, 0.2])),
               "delay": draw(st.sampled_from([0.0, 0.2]))}
    scenario = txlib.Scenario(P, seed=draw(st.integers(0, 2**32)), faults=tuple(faults),
                              options=options)
    return scenario, expected


@PROPERTY
@given(robust_scenarios())
def test_with_outbox_and_dedup_the_saga_always_ends_well(case):
    scenario, expected = case
    run = scenario.run()
    assume(not run.down)  # every crash was followed by a recovery (not one that came first)
    assert run.outcome == expected, run.summary()
    assert run.violations == (), run.summary()
    assert run.stopped_by == "nothing pending", run.summary()
    counts = applied(run)
    assert all(n == 1 for n in counts.values()), counts  # delivered at least once, applied once


@PROPERTY
@given(seed=st.integers(0, 2**32), p=st.sampled_from([0.3, 0.6]),
       faults=st.lists(st.builds(txlib.duplicate, st.sampled_from([None, "EVENT"]),
                                 count=st.integers(1, 3)), min_size=1, max_size=3),
       declined=st.booleans())
def test_duplicates_never_apply_an_effect_twice_when_idempotent(seed, p, faults, declined):
    if declined:
        faults = [*faults, txlib.fail_step("process_payment")]
    run = txlib.simulate(P, seed=seed, duplicate=p, faults=faults)
    dups = [e for e in run.trace if e.kind == "duplicate"]
    counts = applied(run)
    assert dups and set(counts.values()) == {1}
    assert run.outcome == ("compensated" if declined else "completed")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(robust_scenarios())
def test_same_scenario_same_trace(case):
    scenario, _ = case
    first = scenario.run().trace.to_jsonl()
    again = txlib.Scenario.from_json(scenario.to_json()).run().trace.to_jsonl()
    assert first == again


@pytest.mark.parametrize("name", list(EXPECTED))
def test_named_scenarios_replay_identically(name):
    s = txlib.scenario(name)
    assert s.run().trace.to_jsonl() == txlib.Scenario.from_json(s.to_json()).run(
    ).trace.to_jsonl()


# --- the views ------------------------------------------------------------------------
def test_the_lab_steps_through_a_choreography_run():
    L = Lab(txlib.scenario("choreo-payment-declined"))
    assert L.cursor == 0 and L.slider.max == L.model.run.steps
    before = L.diagram.value
    L.step_forward()
    assert L.cursor == 1 and L.diagram.value != before
    assert 'data-state="RUNNING"' in L.machines.value  # the broker's machine is drawn
    assert "broker" in L.table.value and "payment" in L.table.value
    L.to_end()
    assert "compensated" in L.status.value
    assert 'data-state="COMPENSATED"' in L.machines.value
    L.go(1)
    L.inject("crash", "inventory")
    assert L.model.scenario.faults[-1] == txlib.crash("inventory", at_step=1)


def test_diagram_and_console_show_the_broker_and_the_services():
    run = txlib.scenario("choreo-lost-event").run()
    svg = txlib.viz.spacetime.spacetime_svg(run.trace, roles=run.roles)
    for node in NODES:
        assert f">{node}<" in svg
    out = io.StringIO()
    show(run, console=Console(file=out, width=140, force_terminal=False))
    text = out.getvalue()
    assert "STUCK" in text and "lost event" in text and "broker" in text


def test_the_config_knows_the_saga():
    config = ChoreographyConfig(saga="ecommerce", context={"amount": 5})
    assert config.input()["amount"] == 5 and config.input()["saga_id"] == "S1"
    assert config.compensation_order == "sequential"


# --- lesson 08's idempotent consumer and "where do you look?" ------------------------------

def test_a_second_order_of_the_same_customer_and_amount_must_be_charged():
    """Deduplicating on the customer and the amount, or guarding on the payment count,
    the wallet or the merchant, passed every plan of saga S1; saga S2, a distinct order
    for the same amount, shows that they never charge it."""
    from txlib.course import l08_sagas_by_choreography as lesson

    _, services, options, faults, expected = lesson.CONSUMER_PLANS[-1]
    assert options["saga_id"] == "S2" and expected == "COMPLETED"
    earlier = services["payment"]["payments"]
    assert any(p["customer"] == lesson.CUSTOMER and p["amount"] == lesson.PRICE
               for p in earlier.values())
    start = services["payment"]["wallets"][lesson.CUSTOMER]
    ex = txlib.exercise("choreo-idempotent-consumer")
    wrong = (lesson.charge_once_per_customer_and_amount, lesson.charge_unless_a_second_payment,
             lesson.charge_unless_the_wallet_is_down, lesson.charge_unless_the_merchant_has_it)
    for action in wrong:
        saga = lesson.consumer_saga(action, services=services)
        run = saga.simulate(protocol=P, faults=faults, idempotent=False, **options)
        assert final_stores(saga, run.logs)["payment"]["wallets"][lesson.CUSTOMER] == start
        verdict = ex.check(action)
        assert not verdict.ok and "charged 0 times" in verdict.message
        assert "PAY-S2" in verdict.message
    right = lesson.consumer_saga(lesson.charge_once, services=services)
    run = right.simulate(protocol=P, faults=faults, idempotent=False, **options)
    pay = final_stores(right, run.logs)["payment"]
    assert pay["wallets"][lesson.CUSTOMER] == start - lesson.PRICE
    assert pay["payments"]["PAY-S2"]["status"] == "COMPLETED" and not run.violations
    assert ex.check(lesson.charge_once).ok


def test_fewest_logs_is_the_smallest_set_that_answers_every_question():
    from txlib.course.l08_sagas_by_choreography import fewest_logs

    assert fewest_logs([["orchestrator", "shipping"], ["orchestrator"], ["orchestrator"]]) \
        == [("orchestrator",)]
    assert fewest_logs([["broker", "shipping"], ["payment"], ["broker", "payment"]]) \
        == [("broker", "payment"), ("payment", "shipping")]
    assert fewest_logs([["a"], []]) == []


def test_where_to_look_counts_the_logs_you_must_read(monkeypatch):
    """The table's last row once counted every log holding an answer (2 and 3), against
    the lesson's prose; it is the fewest logs that answer all: 1 and 2."""
    from txlib.course import l08_sagas_by_choreography as lesson

    shown = []
    monkeypatch.setattr(lesson.show, "display", lambda table: shown.append(table.data))
    lesson.where_to_look(["saga-stuck", "choreo-compensation-stuck"])
    last = shown[0].splitlines()[-1]
    assert last == ("| fewest logs that answer all | 1: orchestrator | "
                    "2: broker + payment, or payment + shipping |")


@pytest.mark.parametrize(("context", "message"), [
    ({"amount": -5}, r"amount \(in cents\) in option context must be a whole number from 0"),
    ({"items": {"ITEM-001": -3}}, "the quantity of 'ITEM-001' in option context"),
    ({"ammount": 10**9}, r"unknown key 'ammount' .*\(did you mean 'amount'\?\); valid "
                         r"choices: 'customer_id', 'items' or 'amount'"),
])
def test_the_built_in_saga_refuses_input_it_cannot_take(context, message):
    """A negative amount or quantity once completed, and a misspelt key was ignored."""
    with pytest.raises(txlib.TxlibError, match=message):
        txlib.simulate(P, context=context)
    with pytest.raises(txlib.TxlibError, match=message):
        ChoreographyConfig(saga="ecommerce", context=context)


def test_a_saga_of_your_own_takes_any_context_and_no_built_in_name():
    """Only the built-in sagas know their input; a built-in name is refused, so the
    choreographed built-in saga is never replaced."""
    with pytest.raises(txlib.TxlibError, match="'ecommerce' is the name of a built-in saga"):
        txlib.Saga("ecommerce", services={"s": {}})
    assert txlib.simulate(P).outcome == "completed"
    saga = txlib.Saga("choreo-any-context", services={"s": {"seen": []}})
    saga.step("see", service="s", action=lambda s, c: s["seen"].append(c["colour"]),
              compensation=lambda s, c: None)
    run = saga.simulate(protocol=P, context={"colour": "red"})
    assert run.outcome == "completed" and stores(run)["s"]["seen"] == ["red"]
