"""Invariants, outcomes and metrics on hand-made traces, so each rule is tested on its own."""

from __future__ import annotations

import pytest

from txlib.engine.records import Message, TraceEvent
from txlib.properties import check_all, measure
from txlib.properties import commit_outcome as outcome
from txlib.properties.commit import atomicity, stability, validity

P = ("p1", "p2")


def ev(step: int, kind: str, node: str | None, detail: str = "", time: int | None = None,
       message: Message | None = None) -> TraceEvent:
    return TraceEvent(0, step, step * 10 if time is None else time, kind, node, message, detail,
                      {}, frozenset())


def test_atomicity_names_both_nodes_and_steps():
    trace = [ev(3, "decision", "p1", "commit"), ev(7, "decision", "p2", "abort")]
    (v,) = atomicity(trace)
    assert (v.invariant, v.step) == ("atomicity", 7)
    assert v.reason == "p2 aborted at step 7 while p1 committed at step 3"


def test_agreeing_decisions_are_fine():
    trace = [ev(1, "vote", "p1", "yes"), ev(1, "vote", "p2", "yes"),
             ev(3, "decision", "p1", "commit"), ev(4, "decision", "p2", "commit")]
    assert check_all(trace, P) == []


def test_stability_catches_a_node_changing_its_mind():
    trace = [ev(2, "decision", "p1", "abort"), ev(5, "decision", "p1", "abort"),
             ev(9, "decision", "p1", "commit")]
    (v,) = stability(trace)
    assert v.step == 9 and v.reason == "p1 aborted at step 2, then committed at step 9"
    assert atomicity(trace) == [], "one node alone cannot disagree with another"


@pytest.mark.parametrize(("votes", "why"), [
    ([("p1", "yes"), ("p2", "no")], "p2 voted NO"),
    ([("p1", "yes")], "p2 had not voted YES"),
])
def test_validity_commit_needs_every_yes(votes, why):
    trace = [ev(1, "vote", n, v) for n, v in votes] + [ev(4, "decision", "coordinator", "commit")]
    (v,) = validity(trace, P)
    assert v.reason == f"coordinator committed at step 4 but {why}"


def test_abort_never_violates_validity():
    assert validity([ev(1, "vote", "p1", "no"), ev(2, "decision", "p1", "abort")], P) == []


@pytest.mark.parametrize(("decisions", "down", "expected"), [
    ({"c": "commit", "p1": "commit", "p2": "commit"}, set(), "committed"),
    ({"c": "abort", "p1": "abort", "p2": None}, {"p2"}, "aborted"),
    ({"c": "commit", "p1": "commit", "p2": None}, set(), "blocked"),
    ({"c": None, "p1": None, "p2": None}, {"p1", "p2"}, "blocked"),
    ({"c": "commit", "p1": "abort", "p2": None}, set(), "inconsistent"),
])
def test_outcome_classification(decisions, down, expected):
    assert outcome(decisions, P, down) == expected


def test_metrics_count_sends_forced_writes_hops_and_intervals():
    m1 = Message(1, "c", "p1", "PREPARE", {}, 0, 1)
    m2 = Message(2, "p1", "c", "YES", {}, 5, 2)
    trace = [
        ev(1, "send", "c", message=m1, time=0),
        ev(2, "deliver", "p1", message=m1, time=5),
        ev(2, "lock", "p1", "balance", time=5),
        ev(2, "log", "p1", "PREPARED (forced)", time=5),
        ev(2, "vote", "p1", "yes", time=5),
        ev(2, "send", "p1", message=m2, time=5),
        ev(3, "deliver", "c", message=m2, time=12),
        ev(3, "log", "c", "COMMIT (forced)", time=12),
        ev(3, "decision", "c", "commit", time=12),
        ev(3, "log", "c", "END (lazy)", time=12),
        ev(4, "log", "p2", "X (forced)", time=20),
    ]
    m = measure(trace, ("p1",), end_time=50)
    assert m.messages == 2 and m.messages_by_type == {"PREPARE": 1, "YES": 1}
    assert (m.forced_writes, m.forced_writes_before_decision) == (3, 2)
    assert m.decision_delays == 2 and m.message_delays is None
    assert m.blocked_time == {"p1": 45} and m.lock_time == {"p1": 45}
