"""TCC (try / confirm / cancel): the happy path, a failing Try, null compensation and
hanging with and without the sub-transaction barrier, recovery, and a property."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import txlib
from txlib.engine.records import TraceEvent
from txlib.protocols import PROTOCOLS, tcc
from txlib.viz import console
from txlib.viz.widgets import Lab

NODES = ["coordinator", "inventory", "payment"]
NULL = ("no null compensation", "payment's Cancel of T1 released 300 cents that no Try had "
        "frozen (null compensation)")
INFLATED = ("conservation", "payment accounts for 800 cents (available 800, frozen 0, used 0) "
            "but started with 500: 300 cents appeared from nowhere")
HANGING = ("no hanging reservation", "payment froze 300 cents for T1 after T1 was already "
           "cancelled there: a hanging reservation nobody will ever confirm or cancel")


def final_stores(run):
    """Each participant's store at the end of ``run``."""
    return tcc.final_stores(run.scenario.options, run.participants, run.logs)


def effects(run: txlib.Run) -> list[str]:
    return [e.detail for e in run.trace.of_kind("effect")]


def sent(run: txlib.Run, type: str, dst: str | None = None) -> list[TraceEvent]:
    return [e for e in run.trace.of_kind("send")
            if e.message.type == type and dst in (None, e.message.dst)]


@pytest.mark.parametrize(("name", "outcome", "violations"), [
    ("tcc-happy", "confirmed", []),
    ("tcc-try-fails", "cancelled", []),
    ("tcc-null-compensation", "inconsistent", [NULL, INFLATED]),
    ("tcc-null-compensation-barrier", "cancelled", []),
    ("tcc-hanging", "inconsistent", [NULL, INFLATED, HANGING]),
    ("tcc-hanging-barrier", "cancelled", []),
])
def test_each_named_scenario_ends_as_described(name, outcome, violations):
    run = txlib.scenario(name).run()
    assert run.outcome == outcome
    assert [(v.invariant, v.reason) for v in run.violations] == violations
    assert run.nodes == tuple(NODES)


def test_the_happy_path_freezes_then_uses_the_amounts():
    run = txlib.scenario("tcc-happy").run()
    stores = final_stores(run)
    assert stores["inventory"] == {"available": 8, "frozen": {}, "used": 2,
                                   "barrier": {"T1": ["try", "confirm"]}}
    assert stores["payment"] == {"available": 200, "frozen": {}, "used": 300,
                                 "barrier": {"T1": ["try", "confirm"]}}
    assert set(run.states.values()) == {"CONFIRMED"}
    assert run.decisions == dict.fromkeys(NODES, "confirm")
    assert run.locks == dict.fromkeys(NODES, ())
    assert run.metrics.messages_by_type == {"TRY": 2, "TRIED": 2, "CONFIRM": 2, "ACK": 2}


def test_a_failing_try_cancels_every_branch_including_its_own():
    run = txlib.scenario("tcc-try-fails").run()
    assert "Try of T1 failed: only 200 cents available, 300 asked; nothing frozen" in effects(run)
    assert {e.message.dst for e in sent(run, "CANCEL")} == {"inventory", "payment"}
    null = [r.data for r in run.logs["payment"] if r.record == "LOCAL_TX"]
    assert [(d["op"], d["null"]) for d in null] == [("cancel", True)]
    stores = final_stores(run)
    assert stores["inventory"]["available"] == 10 and stores["payment"]["available"] == 200


def test_without_the_barrier_the_failed_try_is_a_null_compensation_too():
    run = txlib.scenario("tcc-try-fails").replace(options={"barrier": False}).run()
    assert run.outcome == "inconsistent"
    assert [v.invariant for v in run.violations] == ["no null compensation", "conservation"]
    assert final_stores(run)["payment"]["available"] == 500, "200 plus 300 never frozen"


def test_null_compensation_is_visible_in_the_data_and_the_barrier_fixes_it():
    bad = txlib.scenario("tcc-null-compensation").run()
    good = txlib.scenario("tcc-null-compensation-barrier").run()
    assert not sent(bad, "TRY", "payment")[0].message.copy
    assert final_stores(bad)["payment"] == {"available": 800, "frozen": {}, "used": 0}
    assert final_stores(good)["payment"] == {"available": 500, "frozen": {}, "used": 0,
                                             "barrier": {"T1": ["cancel"]}}
    assert ("Cancel of T1 with no Try before it: null compensation, nothing released"
            in effects(good))
    assert good.states["payment"] == "CANCELLED" and good.decisions["payment"] == "cancel"


def test_hanging_leaves_a_reservation_forever_and_the_barrier_refuses_the_late_try():
    bad = txlib.scenario("tcc-hanging").run()
    good = txlib.scenario("tcc-hanging-barrier").run()
    for run in (bad, good):  # the Try really arrives after the Cancel
        deliveries = [e.message.type for e in run.trace.of_kind("deliver")
                      if e.node == "payment"]
        assert deliveries == ["CANCEL", "TRY"]
        assert run.states["coordinator"] == "CANCELLED"
    assert final_stores(bad)["payment"]["frozen"] == {"T1": 300}
    assert bad.states["payment"] == "TRIED" and bad.locks["payment"] == ("T1 frozen",)
    moves = [e.detail for e in bad.trace.of_kind("state") if e.node == "payment"]
    assert moves == ["CANCELLED", "TRIED"], "the declared hanging edge CANCELLED -> TRIED"
    assert final_stores(good)["payment"]["frozen"] == {}
    assert good.states["payment"] == "CANCELLED" and good.locks["payment"] == ()
    assert ("late Try of T1 refused: the barrier shows T1 was already cancelled here "
            "(no hanging)") in effects(good)
    assert sent(good, "TRY_FAILED", "coordinator")


def test_duplicates_apply_twice_without_the_barrier_and_once_with_it():
    faults = [txlib.duplicate("CONFIRM", dst="payment"), txlib.duplicate("TRY", dst="inventory")]
    bad = txlib.simulate("tcc", barrier=False, faults=faults)
    good = txlib.simulate("tcc", faults=faults)
    assert bad.outcome == "inconsistent"
    reasons = {v.reason for v in bad.violations}
    assert "payment applied the Confirm of T1 2 times" in reasons
    assert "inventory applied the Try of T1 2 times" in reasons
    assert final_stores(bad)["payment"]["used"] == 600
    assert good.outcome == "confirmed" and good.violations == ()
    assert final_stores(good)["payment"]["used"] == 300
    assert "duplicate Confirm of T1: the barrier shows it ran; not applied again" in effects(good)


def test_a_participant_whose_try_is_refused_by_a_fault_makes_everyone_cancel():
    run = txlib.simulate("tcc", faults=[txlib.vote_no("inventory")])
    assert run.outcome == "cancelled"
    assert "Try of T1 failed: cannot reserve (fault); nothing frozen" in effects(run)
    assert final_stores(run)["payment"] == {"available": 500, "frozen": {}, "used": 0,
                                            "barrier": {"T1": ["try", "cancel"]}}


# --- crashes and recovery ---------------------------------------------------------------
def test_a_coordinator_that_crashes_before_deciding_presumes_cancel():
    run = txlib.simulate("tcc", faults=[
        txlib.crash("coordinator", when="coordinator sends TRY to payment"),
        txlib.recover("coordinator", at_time=200)])
    assert run.outcome == "cancelled" and run.violations == ()
    cancel = [r for r in run.logs["coordinator"] if r.record == "CANCEL"]
    assert cancel[0].data["reason"] == "recovery found no decision: presume cancel"


def test_a_coordinator_that_crashes_after_deciding_resends_its_decision():
    run = txlib.simulate("tcc", faults=[
        txlib.crash("coordinator", when="coordinator logs CONFIRM"),
        txlib.recover("coordinator", at_time=200)])
    assert run.outcome == "confirmed" and run.violations == ()
    assert len(sent(run, "CONFIRM")) == 2, "nothing was sent before the crash"


def test_a_coordinator_that_never_comes_back_leaves_the_reservations_blocked():
    crash = txlib.crash("coordinator", when="coordinator logs CONFIRM")
    run = txlib.simulate("tcc", faults=[crash])
    assert run.outcome == "blocked" and run.violations == ()
    assert run.states["inventory"] == run.states["payment"] == "TRIED"
    assert run.locks["payment"] == ("T1 frozen",)


def test_a_coordinator_down_from_the_start_begins_when_it_recovers():
    run = txlib.simulate("tcc", faults=[txlib.crash("coordinator"),
                                        txlib.recover("coordinator", at_time=50)])
    assert run.outcome == "confirmed"
    assert sent(run, "TRY")[0].time == 50


def test_a_participant_recovers_its_reservation_from_its_log():
    run = txlib.simulate("tcc", faults=[
        txlib.crash("payment", when="payment logs LOCAL_TX"),
        txlib.recover("payment", at_time=150)])
    assert run.outcome == "cancelled" and run.violations == ()
    recovered = [e for e in run.trace.of_kind("state") if e.node == "payment"]
    assert recovered[0].detail == "restored from log" and recovered[0].states["payment"] == "TRIED"
    assert final_stores(run)["payment"]["available"] == 500


# --- options, errors, views ----------------------------------------------------------------
def test_any_participants_with_their_own_amounts():
    run = txlib.simulate("tcc", participants=["a", "b", "c"], available={"a": 5},
                         amounts={"a": 5, "b": 3})
    assert run.outcome == "confirmed"
    stores = final_stores(run)
    assert [stores[p]["used"] for p in "abc"] == [5, 3, 1]
    assert stores["a"]["available"] == 0 and stores["c"]["available"] == 9


@pytest.mark.parametrize(("make", "message"), [
    (lambda: txlib.simulate("tcc", faults=[txlib.fail_step("try")]), "vote_no"),
    (lambda: txlib.simulate("tcc", faults=[txlib.vote_no("coordinator")]),
     "valid choices: 'inventory' or 'payment'"),
    (lambda: txlib.simulate("tcc", amounts={"bank": 1}), "'bank'"),
    (lambda: txlib.simulate("tcc", amounts={"payment": 0}), "1 or more"),
    (lambda: txlib.simulate("tcc", available={"payment": -1}), "0 or more"),
    (lambda: txlib.simulate("tcc", available=[1]), "must be a dict"),
    (lambda: txlib.simulate("tcc", try_timeout=0), "try_timeout"),
    (lambda: txlib.simulate("tcc", barrier="yes"), "True or False"),
])
def test_bad_options_and_faults_are_named(make, message):
    with pytest.raises(txlib.TxlibError, match=message):
        make()


@pytest.mark.parametrize("name", txlib.scenarios("tcc"))
def test_every_tcc_scenario_works_in_the_lab_and_the_console(name):
    run = txlib.scenario(name).run()
    lab = Lab(txlib.scenario(name))
    lab.to_end()
    assert lab.cursor == run.steps and run.outcome in lab.status.value
    for v in run.violations:
        assert v.reason.replace("'", "&#x27;") in lab.status.value
    out = io.StringIO()
    console.show(run, console=Console(file=out, width=120, force_terminal=False))
    text = out.getvalue()
    assert name in text and run.outcome.upper() in text
    for v in run.violations:
        assert v.invariant in text
    assert "<svg" in txlib.state_diagram(run, "participant")._repr_svg_()
    assert "<svg" in txlib.diagram(run)._repr_svg_()


def test_the_state_machines_are_declared_and_drawn():
    machines = {m.role: m for m in PROTOCOLS["tcc"].machines}
    assert machines["participant"].allows("CANCELLED", "TRIED")
    assert not machines["participant"].allows("CANCELLED", "CONFIRMED")
    assert machines["coordinator"].terminal == {"CONFIRMED", "CANCELLED"}


def test_runs_are_deterministic():
    for name in txlib.scenarios("tcc"):
        s = txlib.scenario(name)
        assert s.run().trace.to_jsonl() == s.run().trace.to_jsonl()
    noisy = txlib.Scenario("tcc", seed=7, options={"loss": 0.2, "duplicate": 0.2})
    assert noisy.run().trace.to_jsonl() == noisy.run().trace.to_jsonl()
    assert noisy.run().trace.to_jsonl() != noisy.replace(seed=8).run().trace.to_jsonl()


# --- the property --------------------------------------------------------------------------
MESSAGES = [None, "TRY", "TRIED", "TRY_FAILED", "CONFIRM", "CANCEL", "ACK"]


@st.composite
def tcc_faults(draw) -> list:
    faults = []
    for node in draw(st.lists(st.sampled_from(NODES), max_size=2, unique=True)):
        down = draw(st.integers(0, 200))
        faults.append(txlib.crash(node, at_time=down))
        faults.append(txlib.recover(node, at_time=down + draw(st.integers(1, 400))))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from([txlib.drop, txlib.duplicate]))
        faults.append(kind(draw(st.sampled_from(MESSAGES)),
                           dst=draw(st.sampled_from([None, *NODES])),
                           count=draw(st.integers(1, 2))))
    for _ in range(draw(st.integers(0, 2))):
        faults.append(txlib.delay(draw(st.integers(1, 250)), draw(st.sampled_from(MESSAGES)),
                                  dst=draw(st.sampled_from([None, *NODES]))))
    if draw(st.booleans()):
        faults.append(txlib.vote_no(draw(st.sampled_from(NODES[1:]))))
    return faults


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tcc_faults(), st.integers(0, 1000), st.booleans())
def test_with_the_barrier_tcc_never_breaks_its_invariants(faults, seed, poor):
    """Whatever is lost, duplicated, delayed or crashed (every crashed node comes back),
    TCC with the barrier breaks no invariant and ends confirmed or cancelled, with
    nothing left frozen anywhere."""
    options = {"available": {"payment": 100}} if poor else {}
    run = txlib.simulate("tcc", seed=seed, faults=faults, **options)
    assert run.violations == (), run.summary()
    assert run.outcome in ("confirmed", "cancelled"), run.summary()
    stores = final_stores(run)
    assert all(s["frozen"] == {} for s in stores.values()), stores
    if run.outcome == "confirmed":
        assert stores["payment"]["used"] == 300 and stores["inventory"]["used"] == 2
    else:
        assert all(s["used"] == 0 for s in stores.values()), stores
