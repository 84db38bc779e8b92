"""Sagas by orchestration: the seed's order saga, failures, recovery, and the definition API."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import txlib
from txlib.properties.saga import effects, final_stores
from txlib.sagas import get_saga

SERVICES = ["orchestrator", "orders", "inventory", "payment", "shipping"]
STEPS = ["create_order", "reserve_inventory", "process_payment", "create_shipment",
         "approve_order"]


def applied(run: txlib.Run) -> list[tuple[str, str]]:
    return [(kind, step) for _, _, kind, step in effects(run.logs)]


def stores(run: txlib.Run) -> dict:
    return final_stores(get_saga(run.scenario.options.get("saga", "ecommerce")), run.logs)


def test_the_seed_order_saga_completes():
    run = txlib.scenario("saga-happy").run()
    assert run.outcome == "completed" and run.violations == ()
    assert run.nodes == tuple(SERVICES)
    assert applied(run) == [("do", s) for s in STEPS]
    s = stores(run)
    assert s["inventory"]["stock"]["ITEM-001"] == 8
    assert s["payment"]["payments"]["PAY-S1"]["status"] == "COMPLETED"
    assert s["shipping"]["shipments"]["SHIP-S1"]["order"] == "ORD-S1"
    assert s["orders"]["orders"]["ORD-S1"]["status"] == "CONFIRMED", "the lock is released"


def _without_approval(name: str, pivot: bool = False) -> txlib.Saga:
    """The order saga as it was before it had its approve step."""
    from txlib.sagas import ecommerce

    saga = txlib.Saga(name, services=ecommerce.INITIAL_STORES, context=ecommerce.ORDER_INPUT,
                      invariants=ecommerce.INVARIANTS)
    for step in get_saga("ecommerce").steps[:-1]:
        saga.step(step.name, service=step.service, action=step.action,
                  compensation=step.compensation)
    return saga


@pytest.mark.parametrize("protocol", ["saga", "saga-choreography"])
def test_an_order_saga_without_its_approve_step_leaves_the_order_pending(protocol):
    """The semantic lock (order PENDING) must be released on every ending: without the
    approve step, a saga that completes leaves the order PENDING, and the domain rule
    says so; the built-in saga confirms the order."""
    _without_approval("order-without-approval")
    run = txlib.simulate(protocol, saga="order-without-approval")
    assert run.outcome == "inconsistent"
    (v,) = run.violations
    assert v.invariant == "domain: no order left PENDING"
    assert "ORD-S1 is still PENDING" in v.reason
    ok = txlib.simulate(protocol)
    assert ok.outcome == "completed" and stores(ok)["orders"]["orders"]["ORD-S1"] == {
        **ecommerce_order(), "status": "CONFIRMED"}


def ecommerce_order() -> dict:
    return {"customer": "CUST-123", "items": {"ITEM-001": 2}}


@pytest.mark.parametrize("protocol", ["saga", "saga-choreography"])
@pytest.mark.parametrize("step", STEPS[1:])
def test_every_compensated_ending_rejects_the_order(protocol, step):
    """The rejection path: whichever later step fails, the order ends CANCELLED."""
    run = txlib.simulate(protocol, faults=[txlib.fail_step(step)])
    assert run.outcome == "compensated" and run.violations == ()
    assert stores(run)["orders"]["orders"]["ORD-S1"]["status"] == "CANCELLED"


def test_the_pivot_saga_approves_the_order_after_the_pivot_and_retries_it():
    saga = get_saga("ecommerce-pivot")
    approve = saga.find("approve_order")
    assert approve.after_pivot and approve.compensation is None
    run = txlib.simulate("saga", saga="ecommerce-pivot",
                         faults=[txlib.fail_step("approve_order", times=2)])
    assert run.outcome == "completed" and run.violations == ()
    assert stores(run)["orders"]["orders"]["ORD-S1"]["status"] == "CONFIRMED"


def test_a_lost_reply_to_create_order_with_compensations_registered_after_leaves_it_pending():
    """Registering compensations only after the reply: the order was created but its
    reply lost, so nobody cancels it, and the rule that no order is left PENDING sees it."""
    run = txlib.simulate("saga", faults=[txlib.drop("OK", src="orders", count=3)])
    assert run.outcome == "inconsistent"
    assert [v.invariant for v in run.violations] == ["semantic atomicity",
                                                     "domain: no order left PENDING"]
    before = txlib.simulate("saga", register_compensation="before",
                            faults=[txlib.drop("OK", src="orders", count=3)])
    assert before.outcome == "compensated" and before.violations == ()


def test_a_declined_payment_compensates_in_reverse_and_restores_the_stock():
    run = txlib.scenario("saga-payment-declined").run()
    assert run.outcome == "compensated" and run.violations == ()
    assert applied(run) == [("do", "create_order"), ("do", "reserve_inventory"),
                            ("undo", "reserve_inventory"), ("undo", "create_order")]
    s = stores(run)
    assert s["inventory"]["stock"] == {"ITEM-001": 10, "ITEM-002": 5}
    assert s["orders"]["orders"]["ORD-S1"]["status"] == "CANCELLED"
    assert s["payment"]["payments"] == {}


def test_a_compensation_that_keeps_failing_leaves_the_saga_stuck():
    run = txlib.scenario("saga-stuck").run()
    assert run.outcome == "stuck" and run.states["orchestrator"] == "STUCK"
    refunds = [e for e in run.trace.of_kind("send")
               if e.message.type == "UNDO" and e.message.payload["step"] == "process_payment"]
    assert len(refunds) == 3, "retried per its policy (3 attempts), then given up"
    retried = txlib.scenario("saga-compensation-retried").run()
    assert retried.outcome == "compensated"


def test_orchestrator_resumes_from_its_saga_log_without_charging_twice():
    run = txlib.scenario("saga-orchestrator-crash").run()
    assert run.outcome == "completed" and run.violations == ()
    calls = [e for e in run.trace.of_kind("send")
             if e.message.type == "DO" and e.message.payload["step"] == "process_payment"]
    assert len(calls) == 2 and calls[0].message.payload["key"] == calls[1].message.payload["key"]
    assert applied(run).count(("do", "process_payment")) == 1


def test_an_orchestrator_crash_after_any_step_always_finishes():
    base = txlib.simulate("saga")
    for k in range(base.steps + 1):
        run = txlib.simulate("saga", faults=[txlib.crash("orchestrator", at_step=k),
                                             txlib.recover("orchestrator", at_time=300)])
        assert run.outcome == "completed", (k, run.summary())


@pytest.mark.parametrize("node", SERVICES[1:])
def test_a_service_crash_after_any_step_never_leaves_a_mess(node):
    """A service down for 300 ms outlasts the orchestrator's retries, so the saga may
    give up and compensate; with compensations registered before each call, whatever
    the service did before it crashed is undone."""
    base = txlib.simulate("saga")
    seen = set()
    for k in range(base.steps + 1):
        run = txlib.simulate("saga", register_compensation="before", faults=[
            txlib.crash(node, at_step=k), txlib.recover(node, at_time=300)])
        assert run.outcome in ("completed", "compensated"), (node, k, run.summary())
        assert run.violations == ()
        seen.add(run.outcome)
    assert seen == {"completed", "compensated"}


def test_when_the_compensation_is_registered_matters_when_replies_are_lost():
    after = txlib.scenario("saga-reply-lost-compensate-after").run()
    before = txlib.scenario("saga-reply-lost-compensate-before").run()
    assert after.outcome == "inconsistent"
    assert any("reserve_inventory was applied but never compensated" in v.reason
               for v in after.violations)
    assert before.outcome == "compensated" and before.violations == ()
    assert stores(before)["inventory"]["reserved"] == {}


def test_idempotency_keys_stop_a_duplicate_from_charging_twice():
    twice = txlib.scenario("saga-duplicate-charged-twice").run()
    once = txlib.scenario("saga-duplicate-deduplicated").run()
    assert twice.outcome == "inconsistent"
    assert "process_payment was applied 2 times" in str(twice.violations)
    assert stores(twice)["payment"]["wallets"]["CUST-123"] == 50_000 - 2 * 9999
    assert once.outcome == "completed"
    assert stores(once)["payment"]["wallets"]["CUST-123"] == 50_000 - 9999
    assert any("answered from the log" in e.detail for e in once.trace.of_kind("effect"))


def test_after_the_pivot_only_forward_recovery():
    run = txlib.scenario("saga-pivot-forward-recovery").run()
    assert run.outcome == "completed"
    ships = [e for e in run.trace.of_kind("send")
             if e.message.type == "DO" and e.message.payload["step"] == "create_shipment"]
    assert len(ships) == 3, "two business failures, retried with fresh keys, then success"
    assert not [e for e in run.trace.of_kind("send") if e.message.type == "UNDO"]
    failed = txlib.scenario("saga-pivot-fails").run()
    assert failed.outcome == "compensated"


def test_parallel_compensation_sends_every_undo_at_once():
    run = txlib.scenario("saga-parallel-compensation").run()
    assert run.outcome == "compensated"
    undo_steps = {e.step for e in run.trace.of_kind("send") if e.message.type == "UNDO"}
    assert len(undo_steps) == 1, "all three compensations go out in the same step"


def test_concurrent_instances_each_keep_their_own_log():
    run = txlib.simulate("saga", instances=[{"saga_id": "A"}, {"saga_id": "B", "start": 10}])
    assert run.outcome == "completed"
    assert set(stores(run)["payment"]["payments"]) == {"PAY-A", "PAY-B"}
    assert stores(run)["inventory"]["stock"]["ITEM-001"] == 6


# --- the definition API ------------------------------------------------------------------
def noop(store, ctx):
    return None


def make(name="t"):
    return txlib.Saga(name, services={"a": {}, "b": {}})


def test_a_custom_saga_runs_like_any_protocol():
    def put(store, ctx):
        store["x"] = ctx["value"]
        return {"put": True}

    def take(store, ctx):
        store.pop("x", None)

    saga = make("custom").step("one", service="a", action=put, compensation=take)
    saga.step("two", service="b", action=put, compensation=take)
    run = saga.simulate(context={"value": 7})
    assert run.outcome == "completed" and run.nodes == ("orchestrator", "a", "b")
    failed = saga.simulate(context={"value": 7}, faults=[txlib.fail_step("two")])
    assert failed.outcome == "compensated"
    assert final_stores(saga, failed.logs) == {"a": {}, "b": {}}


@pytest.mark.parametrize(("build", "message"), [
    (lambda s: s.step("x", service="a", action=noop, compensation=noop)
     .step("x", service="b", action=noop, compensation=noop), "already has a step 'x'"),
    (lambda s: s.step("x", service="a", action=noop), "needs a compensation"),
    (lambda s: s.step("x", service="nowhere", action=noop, compensation=noop),
     "unknown service for step x 'nowhere'; valid choices: 'a' or 'b'"),
    (lambda s: s.step("x", service="a", action=noop, pivot=True)
     .step("y", service="b", action=noop, compensation=noop), "after the pivot"),
    (lambda s: s.step("x", service="a", action=noop, pivot=True)
     .step("y", service="b", action=noop, pivot=True), "at most one"),
    (lambda s: s.step("two words", service="a", action=noop, compensation=noop),
     "'two words'"),
    (lambda s: s.step("x", service="a", action="noop", compensation=noop), "function"),
])
def test_definition_errors_name_the_problem(build, message):
    with pytest.raises(txlib.TxlibError, match=message):
        build(make())


def test_a_bug_in_an_action_is_named_not_a_deep_traceback():
    def broken(store, ctx):
        return {"x": ctx["missing"]}

    saga = make("buggy").step("one", service="a", action=broken, compensation=noop)
    with pytest.raises(txlib.TxlibError, match="the action of step one raised KeyError"):
        saga.simulate()


def test_scenario_errors():
    with pytest.raises(txlib.TxlibError, match="unknown step of saga ecommerce 'ship'"):
        txlib.simulate("saga", faults=[txlib.fail_step("ship")])
    with pytest.raises(txlib.TxlibError, match=r"'sideways'.*'after' or 'before'"):
        txlib.simulate("saga", register_compensation="sideways")
    with pytest.raises(txlib.TxlibError, match="unknown saga 'nope'"):
        txlib.simulate("saga", saga="nope")
    with pytest.raises(txlib.TxlibError, match="services"):
        txlib.simulate("saga", participants=["p1"])
    with pytest.raises(txlib.TxlibError, match="fail_step"):
        txlib.simulate("saga", faults=[txlib.vote_no("payment")])


# --- properties ------------------------------------------------------------------------
MESSAGES = [None, "DO", "OK", "FAIL", "UNDO", "UNDONE"]


@st.composite
def saga_faults(draw) -> list:
    faults = []
    for node in draw(st.lists(st.sampled_from(SERVICES), max_size=3, unique=True)):
        down = draw(st.integers(0, 200))
        faults.append(txlib.crash(node, at_time=down))
        faults.append(txlib.recover(node, at_time=down + draw(st.integers(1, 400))))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from([txlib.drop, txlib.duplicate]))
        faults.append(kind(draw(st.sampled_from(MESSAGES)),
                           dst=draw(st.sampled_from([None, *SERVICES])),
                           count=draw(st.integers(1, 2))))
    for _ in range(draw(st.integers(0, 2))):  # late commands and replies, to any service
        faults.append(txlib.delay(draw(st.integers(1, 400)), draw(st.sampled_from(MESSAGES)),
                                  dst=draw(st.sampled_from([None, *SERVICES])),
                                  count=draw(st.integers(1, 3))))
    if draw(st.booleans()):
        faults.append(txlib.fail_step(draw(st.sampled_from(STEPS)), times=draw(
            st.sampled_from([None, 1]))))
    return faults


network = st.fixed_dictionaries({}, optional={
    "delay": st.sampled_from([0.1, 0.3]), "duplicate": st.sampled_from([0.2, 0.5]),
    "loss": st.sampled_from([0.1, 0.2])})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(saga_faults(), network, st.integers(0, 2**32))
def test_orchestrated_sagas_always_end_consistent_once_everything_is_back(faults, net, seed):
    """Registering compensations before each call, with idempotent services and the
    barrier: whatever crashes, losses, duplicates and delays happen (to any service, as
    faults or as network probabilities), the saga ends completed or compensated (or
    stuck, if losses exhausted a compensation's retries) and breaks no rule."""
    run = txlib.simulate("saga", seed=seed, faults=faults, register_compensation="before",
                         **net)
    assert run.violations == (), run.summary()
    assert run.outcome in ("completed", "compensated", "stuck"), run.summary()
    if not any(f.kind in ("drop", "fail_step") for f in faults) and "loss" not in net:
        assert run.outcome in ("completed", "compensated"), run.summary()
    counts = [(k, s) for k, s in applied(run)]
    assert all(counts.count(e) == 1 for e in counts), "no effect applied twice"


def test_a_second_run_that_changes_nothing_is_not_a_second_effect():
    """Idempotency is about effects: an action that checks before it acts may run twice."""
    def reserve_once(store, ctx):
        if ctx["order_id"] not in store["reserved"]:
            for item, qty in ctx["items"].items():
                store["stock"][item] -= qty
            store["reserved"][ctx["order_id"]] = dict(ctx["items"])
        return {}

    saga = txlib.Saga("careful", services={"orders": {"orders": {}},
                                           "inventory": {"stock": {"ITEM-001": 10},
                                                         "reserved": {}}},
                      context={"customer_id": "C", "items": {"ITEM-001": 2}})
    from txlib.sagas.ecommerce import cancel_order, create_order, release_items

    saga.step("create_order", service="orders", action=create_order, compensation=cancel_order)
    saga.step("reserve", service="inventory", action=reserve_once, compensation=release_items)
    run = saga.simulate(idempotent=False, faults=[txlib.duplicate("DO", dst="inventory")])
    assert run.outcome == "completed" and run.violations == ()
    assert final_stores(saga, run.logs)["inventory"]["stock"] == {"ITEM-001": 8}


LATE_PAYMENT = [txlib.delay(300, "DO", dst="payment", count=3)]


@pytest.mark.parametrize("options", [
    {"faults": LATE_PAYMENT},
    {"seed": 37291923, "delay": 0.2, "duplicate": 0.5, "loss": 0.2},
], ids=["delayed DO", "network options"])
def test_a_late_command_is_refused_after_its_compensation(options):
    """The orchestrator gave up on process_payment and compensated it (nothing to
    refund); then the delayed command arrives. Without the barrier it charges the
    customer for a cancelled order; with it (the default) the service refuses it."""
    broken = txlib.simulate("saga", register_compensation="before", barrier=False, **options)
    assert broken.outcome == "inconsistent"
    assert any("domain" in v.invariant or "semantic" in v.invariant
               for v in broken.violations), broken.summary()
    fixed = txlib.simulate("saga", register_compensation="before", **options)
    assert fixed.outcome == "compensated" and fixed.violations == (), fixed.summary()
    refused = [e for e in fixed.trace.of_kind("effect") if e.detail.startswith("refused do")]
    assert refused, "the barrier refused the late command"


def test_the_barrier_lets_forward_recovery_retry_after_the_pivot():
    """After the pivot a business failure is retried with a fresh command: nothing was
    compensated, so the barrier must not refuse it."""
    run = txlib.scenario("saga-pivot-forward-recovery").run()
    assert run.outcome == "completed" and run.violations == ()
    assert not [e for e in run.trace.of_kind("effect") if e.detail.startswith("refused")]


def test_the_late_command_scenarios_are_named():
    assert txlib.scenario("saga-late-command-no-barrier").run().outcome == "inconsistent"
    assert txlib.scenario("saga-late-command-barrier").run().outcome == "compensated"


def test_a_long_saga_reads_its_logs_in_linear_time(monkeypatch):
    """A step retried forward for a long time (horizon 60,000: thousands of attempts)
    must not re-read whole logs on every event: each record is read a bounded number of
    times (before, the orchestrator re-folded its whole log per event: quadratic)."""
    from txlib.engine.node import Context

    reads = {"records": 0, "whole": 0}
    since, whole = Context.log_since, Context.log_records

    def counted_since(self, start):
        out = since(self, start)
        reads["records"] += len(out)
        return out

    def counted_whole(self):
        reads["whole"] += 1
        return whole.fget(self)

    monkeypatch.setattr(Context, "log_since", counted_since)
    monkeypatch.setattr(Context, "log_records", property(counted_whole))
    last = txlib.sagas.get_saga("ecommerce-pivot").steps[-1].name
    run = txlib.simulate("saga", saga="ecommerce-pivot", record=False, horizon=60_000,
                         faults=[txlib.fail_step(last, times=None)])
    assert run.outcome == "stuck" and run.steps > 2_500
    logged = sum(len(log) for log in run.logs.values())
    assert reads["whole"] < 50, "whole-log reads happen only at start and recovery"
    assert reads["records"] < 8 * run.steps, (reads, logged, run.steps)


# --- lesson 07's refund exercise ---------------------------------------------------------

def test_a_refund_of_another_sagas_payment_is_caught_by_a_domain_rule():
    """Refunding every COMPLETED payment of the customer (or of anyone) once gave S1's
    order for free, with no rule objecting; the exercise's saga now has the rule."""
    from txlib.course import l07_sagas_by_orchestration as lesson

    what, options, faults = lesson.REFUND_PLANS[1]
    assert "three orders" in what
    for refund in (lesson.refund_the_customer, lesson.refund_everyone):
        saga = lesson.refund_saga(refund)
        run = saga.simulate(faults=faults, **options)
        s = final_stores(saga, run.logs)
        assert s["orders"]["orders"]["ORD-S1"]["status"] == "CONFIRMED"
        assert s["payment"]["payments"]["PAY-S1"]["status"] == "REFUNDED"
        assert run.outcome == "inconsistent"
        assert any("ORD-S1 is CONFIRMED" in v.reason for v in run.violations)
    right = lesson.refund_saga(lesson.refund_example)
    for _, options, faults in lesson.REFUND_PLANS:
        run = right.simulate(faults=faults, **options)
        assert run.outcome in ("completed", "compensated") and not run.violations


def test_the_refund_exercise_names_the_order_given_away():
    ex = txlib.exercise("saga-write-a-refund")
    from txlib.course import l07_sagas_by_orchestration as lesson

    for refund in (lesson.refund_the_customer, lesson.refund_everyone,
                   lesson.refund_the_latest):
        verdict = ex.check(refund)
        assert not verdict.ok and "the customer got that order for free" in verdict.message
    assert ex.check(lesson.refund_example).ok


# --- the saga registry: built-in names are not yours to replace ---------------------------
BUILT_IN = ["ecommerce", "ecommerce-pivot", "stock", "stock-locked",
            "stock-commutative-reordered"]


def take(store, ctx):
    if store["balance"] < ctx["amount"]:
        raise txlib.StepFailed("insufficient funds")
    store["balance"] -= ctx["amount"]


def give(store, ctx):
    store["balance"] += ctx["amount"]


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_saga_of_your_own_cannot_take_a_built_in_name(name):
    """Saga("ecommerce", ...) once replaced the built-in saga for the whole session: the
    presets then ran the learner's saga and gave wrong outcomes, with no error."""
    steps = get_saga(name).step_names
    with pytest.raises(txlib.TxlibError,
                       match=f"'{name}' is the name of a built-in saga: choose another name"):
        txlib.Saga(name, services={"bank": {"balance": 100}})
    assert get_saga(name).step_names == steps
    assert txlib.scenario("saga-payment-declined").run().outcome == "compensated"
    assert txlib.simulate("saga").outcome == "completed"


def test_the_steps_of_a_built_in_saga_cannot_change():
    with pytest.raises(txlib.TxlibError, match="saga ecommerce is built in: its steps cannot "
                                               "change"):
        get_saga("ecommerce").step("pay_again", service="payment", action=noop,
                                   compensation=noop)
    assert get_saga("ecommerce").step_names == tuple(STEPS)


@pytest.mark.parametrize("name", BUILT_IN)
def test_a_built_in_saga_cannot_be_changed_in_place(name):
    """get_saga("ecommerce").steps.pop() once dropped a step of the built-in saga for the
    rest of the session, and so did changing its stores or context: every later run and
    preset ran the changed saga, with no error."""
    saga = get_saga(name)
    steps, services, context = saga.step_names, copy.deepcopy(saga.services), dict(saga.context)
    store = next(iter(saga.services.values()))
    changes = [lambda: saga.steps.pop(), lambda: saga.steps.append(saga.steps[0]),
               lambda: saga.steps.__setitem__(0, saga.steps[-1]), lambda: saga.steps.clear(),
               lambda: saga.services.pop(next(iter(saga.services))),
               lambda: store.__setitem__("extra", 1), lambda: store.clear(),
               lambda: saga.context.update(amount=1)]
    changes += [lambda t=t: t.clear() for t in store.values() if isinstance(t, (dict, list))]
    for change in changes:
        with pytest.raises(txlib.TxlibError, match="part of a built-in saga, which cannot "
                                                   "change"):
            change()
    assert (saga.step_names, saga.services, dict(saga.context)) == (steps, services, context)


def test_copies_of_a_built_in_saga_are_yours_to_change():
    """A run, and a saga of your own made from a built-in one, get plain copies."""
    saga = get_saga("ecommerce")
    mine = txlib.Saga("ecommerce-mine", services=copy.deepcopy(saga.services),
                      context=saga.context, invariants=saga.invariants)
    for step in saga.steps:
        mine.steps.append(step)
    mine.services["payment"]["merchant"] = 5  # its own copy
    mine.context["note"] = "mine"
    assert saga.services["payment"]["merchant"] == 0 and "note" not in saga.context
    mine.services["payment"]["merchant"] = 0
    assert mine.simulate().outcome == txlib.simulate("saga").outcome == "completed"


def test_redefining_your_own_saga_replaces_only_that_name():
    """Re-running a notebook cell that defines a saga works; it changes no other name, and
    an earlier saga object of the same name still runs itself, not its successor."""
    def bank(name, amount):
        saga = txlib.Saga(name, services={"bank": {"balance": 100}}, context={"amount": amount})
        return saga.step("pay", service="bank", action=take, compensation=give)

    other = bank("rerun-other", 30)
    first = bank("rerun-cell", 30)
    second = bank("rerun-cell", 500)
    assert txlib.simulate("saga", saga="rerun-cell").outcome == "compensated"
    assert get_saga("rerun-other") is other and get_saga("rerun-cell") is second
    assert first.simulate().outcome == "completed"
    assert txlib.scenario("saga-payment-declined").run().outcome == "compensated"



def test_a_scenario_runs_the_saga_it_was_made_from_whatever_takes_its_name_later():
    """Saga.scenario() registered its saga again. A scenario made before another saga
    took the name ran that other saga; and running the earlier saga object gave the
    name back to it, so a scenario of the newer saga, and simulate() by name, ran the
    earlier one. A scenario runs its own saga now (and so do those made from it), and
    the name stays with the saga defined last; a scenario's JSON names the saga only."""
    def bank(amount):
        saga = txlib.Saga("same-name", services={"bank": {"balance": 100}},
                          context={"amount": amount})
        return saga.step("pay", service="bank", action=take, compensation=give)

    fits = bank(30)
    early = fits.scenario()
    early_choreography = fits.scenario(protocol="saga-choreography")
    too_big = bank(500)
    assert early.run().outcome == "completed"
    assert early.replace(seed=1).with_faults().run().outcome == "completed"
    assert early_choreography.run().outcome == "completed"
    late = too_big.scenario()
    assert fits.simulate().outcome == "completed"
    assert get_saga("same-name") is too_big
    assert late.run().outcome == "compensated"
    assert txlib.simulate("saga", saga="same-name").outcome == "compensated"
    assert txlib.Scenario.from_json(early.to_json()).run().outcome == "compensated"

# --- the instances budget ---------------------------------------------------------------
def test_saga_instances_have_a_budget():
    """instances was unbounded and [{}] * 100_000 never finished."""
    from txlib.protocols.saga import MAX_INSTANCES

    with pytest.raises(txlib.TxlibError, match=f"option instances holds at most "
                                               f"{MAX_INSTANCES} saga instances"):
        txlib.simulate("saga", instances=[{}] * (MAX_INSTANCES + 1))
    with pytest.raises(txlib.TxlibError, match="got 100,000"):
        txlib.simulate("saga", instances=[{}] * 100_000)
    run = txlib.simulate("saga", instances=[{}] * MAX_INSTANCES, record=False)
    assert run.outcome == "compensated" and run.violations == ()
    assert len(stores(run)["orders"]["orders"]) == MAX_INSTANCES


def test_many_instances_fold_each_orchestrator_record_once(monkeypatch):
    """Each instance once re-read every record of the orchestrator's log (quadratic in
    the number of instances); now each record is folded into its own instance only."""
    from txlib.protocols.saga import Progress

    folded = {"records": 0}
    fold = Progress.fold

    def counted(self, records, saga_id):
        folded["records"] += len(records)
        fold(self, records, saga_id)

    monkeypatch.setattr(Progress, "fold", counted)
    run = txlib.simulate("saga", instances=[{}] * 40, record=False)
    logged = len(run.logs["orchestrator"])
    assert run.outcome == "compensated" and logged > 300
    assert folded["records"] <= 2 * logged, (folded, logged)


# --- the built-in sagas' input ----------------------------------------------------------
@pytest.mark.parametrize(("saga", "context", "message"), [
    ("ecommerce", {"amount": -5},
     r"amount \(in cents\) in option context must be a whole number from 0 to "
     r"1,000,000,000, got -5"),
    ("ecommerce", {"amount": 10**10}, "got 10000000000"),
    ("ecommerce", {"amount": "5"}, "got '5'"),
    ("ecommerce", {"items": {"ITEM-001": -3}},
     "the quantity of 'ITEM-001' in option context must be a whole number from 0"),
    ("ecommerce", {"items": ["ITEM-001"]}, "items in option context must be a dict"),
    ("ecommerce", {"customer_id": 5}, "customer_id in option context must be a string"),
    ("ecommerce-pivot", {"amount": -1}, "got -1"),
    ("ecommerce", {"ammount": 10**9},
     r"unknown key 'ammount' in option context of saga ecommerce \(did you mean 'amount'\?\);"
     r" valid choices: 'customer_id', 'items' or 'amount'"),
    ("ecommerce", {"saga_id": "X"}, "unknown key 'saga_id'"),
    ("stock", {"qtty": 1}, r"did you mean 'qty'\?"),
    ("stock", {"qty": 1.5}, "qty in option context must be a whole number"),
    ("stock", {"payment": "Declined"}, r"did you mean 'declined'\?"),
])
def test_the_built_in_sagas_refuse_input_they_cannot_take(saga, context, message):
    """A negative amount or quantity once completed, and a misspelt key was ignored."""
    with pytest.raises(txlib.TxlibError, match=message):
        txlib.simulate("saga", saga=saga, context=context)


def test_each_instance_context_is_checked_too():
    with pytest.raises(txlib.TxlibError, match=r"amount \(in cents\) in the context of saga "
                                               r"instance B must be a whole number from 0"):
        txlib.simulate("saga", instances=[{"saga_id": "A"},
                                          {"saga_id": "B", "context": {"amount": -1}}])


def test_the_built_in_sagas_still_take_good_input():
    assert txlib.simulate("saga", context={"amount": 1, "items": {"ITEM-002": 5},
                                           "customer_id": "CUST-9"}).outcome == "compensated"
    assert txlib.simulate("saga", context={"amount": 0}).outcome == "completed"
    restock = txlib.simulate("saga", saga="stock", context={"qty": 5, "payment": "ok"})
    assert restock.outcome == "completed" and restock.violations == ()


# --- a step's ctx is read-only input ------------------------------------------------------
def test_a_step_that_changes_its_ctx_is_told_it_is_read_only():
    """An action once got the command's own payload as ctx: a change to it was lost to
    the next step, rewrote the recorded message, and was seen by a duplicate copy."""
    def count(store, ctx):
        ctx["x"] = ctx.get("x", 0) + 1
        store["n"] = ctx["x"]

    saga = txlib.Saga("ctx-writer", services={"a": {}, "b": {}})
    saga.step("one", service="a", action=count, compensation=noop)
    saga.step("two", service="b", action=noop, compensation=noop)
    for protocol in ("saga", "saga-choreography"):
        with pytest.raises(txlib.TxlibError, match="the action of step one changed its ctx: "
                                                   "a step's ctx is read-only input"):
            txlib.simulate(protocol, saga="ctx-writer", idempotent=False,
                           faults=[txlib.duplicate(None, dst="a")])


def test_a_step_reads_its_ctx_as_a_dict_and_returns_its_updates():
    seen = []

    def first(store, ctx):
        assert isinstance(ctx, dict) and dict(ctx) == {**ctx}
        return {"made": ctx["amount"] + 1}

    def second(store, ctx):
        seen.append(ctx["made"])

    saga = txlib.Saga("ctx-reader", services={"a": {}, "b": {}}, context={"amount": 1})
    saga.step("one", service="a", action=first, compensation=noop)
    saga.step("two", service="b", action=second, compensation=noop)
    run = saga.simulate()
    assert run.outcome == "completed" and seen == [2]
    sent = [e.message.payload["ctx"] for e in run.trace.of_kind("send")
            if e.message.type == "DO" and e.message.dst == "a"]
    assert sent == [{"amount": 1, "saga_id": "S1"}]


# --- a domain rule returns a reason or None ------------------------------------------------
def _overdraft_saga(name, rule):
    def pay(store, ctx):
        store["balance"] -= 150

    def refund(store, ctx):
        store["balance"] += 150

    saga = txlib.Saga(name, services={"bank": {"balance": 100}},
                      invariants=[("no overdraft", rule)])
    return saga.step("pay", service="bank", action=pay, compensation=refund)


@pytest.mark.parametrize(("rule", "message"), [
    (lambda st, c: st["bank"]["balance"] >= 0, "the rule 'no overdraft' of saga rules-f "
                                               "returned False: a rule returns a reason"),
    (lambda st, c: st["bank"]["balance"] < 0, "returned True"),
    (lambda st, c: {"broken": True}, "returned {'broken': True}"),
    (lambda st, c: st["bnk"], "the rule 'no overdraft' of saga rules-f raised KeyError: 'bnk'"),
    (lambda st: None, "raised TypeError: .* \\(a rule is a function of \\(stores, context\\)"),
])
def test_a_domain_rule_that_is_not_a_reason_or_none_is_an_error(rule, message):
    """A rule written as a yes/no test (False when broken) once reported nothing on a
    balance of -50, and one that raised gave a traceback from deep in the judging."""
    with pytest.raises(txlib.TxlibError, match=message):
        _overdraft_saga("rules-f", rule).simulate()


def test_a_domain_rule_giving_a_reason_is_a_violation():
    rule = lambda st, c: (f"balance {st['bank']['balance']}"  # noqa: E731
                          if st["bank"]["balance"] < 0 else None)
    run = _overdraft_saga("rules-ok", rule).simulate()
    assert run.outcome == "inconsistent"
    assert [(v.invariant, v.reason) for v in run.violations] == [
        ("domain: no overdraft", "balance -50")]


def test_a_saga_instance_starting_after_the_horizon_is_refused():
    """It never began, and the run only said 'stuck', as if the saga had hung."""
    late = [{"saga_id": "A"}, {"saga_id": "B", "start": 5000}]
    with pytest.raises(txlib.TxlibError, match="saga instance B starts at 5,000, after the "
                                               "horizon \\(2,000\\), so it would never begin"):
        txlib.simulate("saga", instances=late)
    assert txlib.simulate("saga", instances=late, horizon=10_000).outcome == "completed"


def test_switching_the_saga_of_a_scenario_takes_its_services(capsys):
    """replace(options={'saga': ...}) kept the old saga's services as participants and
    blamed participants the learner never gave; so did the command line."""
    from txlib.cli import main

    switched = txlib.scenario("saga-happy").replace(options={"saga": "stock"})
    assert switched.participants == tuple(get_saga("stock").services)
    assert switched.run().outcome == "completed"
    assert (txlib.Scenario("2pc").replace(protocol="saga").participants
            == tuple(get_saga("ecommerce").services))
    named = txlib.Scenario("2pc", participants=("a", "b"))
    assert named.replace(protocol="3pc").participants == ("a", "b")  # named: kept
    assert main(["run", "saga", "--option", "saga=stock"]) == 0
    assert "inventory" in capsys.readouterr().out


def test_a_saga_with_more_services_than_a_run_takes_is_refused_when_defined():
    """It was accepted, then every run failed with 'give between 1 and 64 participant
    names, got 1000', about participants the learner never gave."""
    from txlib.engine.roster import MAX_PARTICIPANTS

    services = {f"s{i}": {} for i in range(MAX_PARTICIPANTS + 1)}
    with pytest.raises(txlib.TxlibError, match=f"a saga has at most {MAX_PARTICIPANTS} "
                                               f"services .*, got {MAX_PARTICIPANTS + 1}"):
        txlib.Saga("too-many-services", services=services)
    services.pop("s0")
    assert len(txlib.Saga("many-services", services=services).services) == MAX_PARTICIPANTS


def test_context_and_saga_id_beside_instances_are_refused():
    """With instances, each instance has its own id and context: the options were
    silently dropped (the run was the same as without them; found by an attacker)."""
    with pytest.raises(txlib.TxlibError, match="option context and saga_id would change "
                                               "nothing with instances"):
        txlib.simulate("saga", instances=[{}], context={"amount": 10**8}, saga_id="ZZ")
    with pytest.raises(txlib.TxlibError, match="option context would change nothing"):
        txlib.simulate("saga", instances=[{}], context={"amount": 1})
    own = txlib.simulate("saga", instances=[{"saga_id": "ZZ", "context": {"amount": 10**8}}])
    assert own.outcome == "compensated"


def test_a_built_in_saga_cannot_be_changed_by_reassigning_a_field():
    """get_saga('ecommerce').context = {...} turned every later run of the built-in
    saga compensated (found by a reviewer)."""
    saga = get_saga("ecommerce")
    for field_name, value in (("context", {}), ("steps", saga.steps[:1]), ("services", {}),
                              ("invariants", ())):
        with pytest.raises(txlib.TxlibError, match=f"saga ecommerce is built in: its "
                                                   f"{field_name} cannot change"):
            setattr(saga, field_name, value)
    assert txlib.simulate("saga").outcome == "completed"


def test_a_tuple_in_a_steps_ctx_is_read_only_too():
    """A context holding a tuple of dicts let an action change them in place, and the
    recorded DO message with them (found by a reviewer)."""
    def change(store, ctx):
        ctx["items"][0]["qty"] = 99

    saga = txlib.Saga("ctx-tuple", services={"a": {}}, context={"items": ({"qty": 1},)})
    saga.step("one", service="a", action=change, compensation=noop)
    with pytest.raises(txlib.TxlibError, match="the action of step one changed its ctx"):
        saga.simulate()


def test_the_pivot_and_the_steps_after_it_keep_no_number_of_attempts():
    """The pivot's definition said 3 attempts, which the orchestrator never applies to it
    (an unanswered call to it is made again until answered), and retry=Retry(attempts=2)
    on a step after the pivot was silently replaced by 'forever'."""
    pivot = get_saga("ecommerce-pivot")
    assert [s.retry.attempts for s in pivot.steps if s.pivot or s.after_pivot] == [None] * 3
    assert all(s.retry.attempts == 3 for s in pivot.steps if not (s.pivot or s.after_pivot))
    saga = txlib.Saga("attempts-after-pivot", services={"bank": {"balance": 100}},
                      context={"amount": 30})
    saga.step("pay", service="bank", action=take, compensation=give)
    for pivot_flag in (True, False):  # the pivot, then a step after it
        with pytest.raises(txlib.TxlibError, match=r"retry attempts=2 would mean nothing"):
            saga.step("ship" if pivot_flag else "deliver", service="bank", action=take,
                      pivot=pivot_flag, retry=txlib.Retry(attempts=2))
        saga.step("ship" if pivot_flag else "deliver", service="bank", action=take,
                  pivot=pivot_flag, retry=txlib.Retry(backoff=7))  # a backoff only
    assert [s.retry.backoff for s in saga.steps[1:]] == [7, 7]
    lost = txlib.simulate("saga", saga="ecommerce-pivot",
                          faults=[txlib.drop("DO", dst="payment", count=5)])
    assert lost.outcome == "completed"  # six calls to the pivot, then it was answered


def test_attempts_3_given_to_the_pivot_is_refused_as_any_other_number():
    """Retry(attempts=3) could not be told from the default attempts (3): the pivot, or a
    step after it, took it silently while refusing attempts=2. Left out, attempts still
    reads 3, and a step before the pivot runs the same with attempts=3 given."""
    assert txlib.Retry().attempts == 3 and txlib.Retry() == txlib.Retry(attempts=3)
    assert hash(txlib.Retry()) == hash(txlib.Retry(attempts=3))
    assert repr(txlib.Retry(backoff=60)) == "Retry(attempts=3, backoff=60)"
    saga = txlib.Saga("attempts-3-at-pivot", services={"bank": {"balance": 100}},
                      context={"amount": 30})
    saga.step("pay", service="bank", action=take, compensation=give)
    for pivot_flag in (True, False):  # the pivot, then a step after it
        name = "ship" if pivot_flag else "deliver"
        with pytest.raises(txlib.TxlibError, match=(
                rf"step {name} is {'the' if pivot_flag else 'after the'} pivot: a call to it is "
                r"made again until it is answered, so retry attempts=3 would mean nothing")):
            saga.step(name, service="bank", action=take, pivot=pivot_flag,
                      retry=txlib.Retry(attempts=3))
        saga.step(name, service="bank", action=take, pivot=pivot_flag,
                  retry=txlib.Retry(backoff=60))
    assert [s.retry for s in saga.steps[1:]] == [txlib.Retry(attempts=None, backoff=60)] * 2

    traces = []
    for retry in (txlib.Retry(attempts=3), None):  # given, then left out
        same = txlib.Saga("attempts-3-before-pivot", context={"amount": 30},
                          services={"bank": {"balance": 100}, "post": {"balance": 0}})
        same.step("pay", service="bank", action=take, compensation=give, retry=retry)
        same.step("ship", service="post", action=give, pivot=True)
        assert same.steps[0].retry == txlib.Retry() and same.steps[0].retry.attempts == 3
        given_up = same.simulate(faults=[txlib.drop("DO", dst="bank", count=3)])
        answered = same.simulate(faults=[txlib.drop("DO", dst="bank", count=2)])
        assert (given_up.outcome, answered.outcome) == ("compensated", "completed")
        traces.append((given_up.trace.to_jsonl(), answered.trace.to_jsonl()))
    assert traces[0] == traces[1]


def test_the_explorer_and_the_lab_use_the_saga_a_scenario_was_made_from():
    """explore() and the lab's fail-step menu looked the saga up by name: once another
    saga took the name, they explored, or offered the steps of, that other saga."""
    from txlib.viz.lab import LabModel

    def trip(steps):
        saga = txlib.Saga("same-trip", services={"bank": {"balance": 100},
                                                 "post": {"parcels": 0}},
                          context={"amount": 30})
        for name, service in steps:
            saga.step(name, service=service, action=take, compensation=give)
        return saga

    early = trip([("pay", "bank")]).scenario()
    before = txlib.explore(early, max_states=5000)
    trip([("charge", "bank"), ("ship", "post")])  # takes the name
    after = txlib.explore(early, max_states=5000)
    assert (after.states, after.transitions) == (before.states, before.transitions)
    assert [v.invariant for v in after.violations] == [v.invariant for v in before.violations]
    model = LabModel.of(early)
    model.move(2)
    model.inject("fail-step", "bank")
    assert [f.step for f in model.scenario.faults] == ["pay"]
    assert early.replace(seed=1).participants == early.participants


def _long_saga(name: str, steps: int) -> txlib.Saga:
    saga = txlib.Saga(name, services={"svc": {}})
    for i in range(steps):
        last = i == steps - 1
        saga.step(f"s{i}", service="svc", action=lambda ctx, state: {},
                  **({"pivot": True} if last else {"compensation": lambda ctx, state: None}))
    return saga


@pytest.mark.parametrize("protocol", ["saga", "saga-choreography"])
def test_a_long_saga_without_faults_finishes_instead_of_reading_as_stuck(protocol):
    """A saga of 100 steps took longer than the default horizon (2,000) and was cut off
    working, with no fault at all: 'stuck'. Its default horizon now fits its steps, and
    their compensations too; a horizon given as an option is kept as it is."""
    saga = _long_saga(f"long-{protocol.replace('-', '_')}", 100)
    done = saga.simulate(protocol=protocol)
    assert done.outcome == "completed" and done.stopped_by == "nothing pending", done.summary()
    assert done.end_time > 2000  # it did need more than the old default
    if protocol == "saga":
        undone = saga.simulate(faults=[txlib.fail_step("s99")])
        assert undone.outcome == "compensated", undone.summary()
    cut = saga.simulate(protocol=protocol, horizon=2000)
    assert cut.outcome == "stuck" and cut.stopped_by == "horizon=2000"


def test_a_short_saga_keeps_the_default_horizon():
    short = _long_saga("short_saga", 5).scenario()
    assert short.config_of().horizon == 2000


@pytest.mark.parametrize("protocol", ["saga", "saga-choreography"])
def test_a_slow_network_is_not_refused_for_a_horizon_nobody_gave(protocol):
    """The fitted horizon of a slow network (latency_max=10**8, an option taken) came to
    2,000,000,000, above what option horizon takes, and the run was refused with
    'option horizon must be at most 1,000,000,000', an option never given."""
    from txlib.engine.config import MAX_NUMBER

    run = txlib.simulate(protocol, latency_max=10**8)
    assert run.scenario.config_of().horizon == MAX_NUMBER


def test_a_long_saga_has_room_for_a_lost_message_and_its_retry():
    """At the slowest latency, a 100-step saga that fails at its last step and loses one
    compensation command still compensates within its fitted horizon (it was cut off
    5 ms short, 'stuck', with room for the fault-free run only)."""
    saga = _long_saga("long_retried", 100)
    run = saga.simulate(latency_min=15, faults=[txlib.fail_step("s99"),
                                                txlib.drop("UNDO", dst="svc", count=1)])
    assert run.outcome == "compensated" and run.stopped_by == "nothing pending", run.summary()
