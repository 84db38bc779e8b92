"""Lesson 02: real participants lock at their first write, during execution, so 2PC's
round trips and forced writes come on top of an execution phase (issue 13 item 8); and
lesson 03's half-committed exercise accepts a plan that heals the network itself."""

from __future__ import annotations

import pytest

import txlib
from txlib.course.l02_two_phase_commit import lock_spans, with_execution


def test_locking_at_the_first_write_adds_the_execution_round_trip():
    even = txlib.simulate("2pc", participants=3, latency_min=10, latency_max=10)
    working = with_execution(even.scenario)
    assert working.outcome == "committed" and not working.violations
    assert set(even.metrics.lock_time.values()) == {20}
    assert set(working.metrics.lock_time.values()) == {40}
    assert working.metrics.messages_by_type["EXECUTE"] == 3
    for name, locked, freed, ms, forced in lock_spans(working):
        assert (locked, freed, ms) == (10, 50, 40)
        assert forced == f"PREPARED ({name}), COMMIT (coordinator), COMMITTED ({name})"


def test_with_execution_refuses_what_is_not_a_2pc_scenario():
    with pytest.raises(txlib.TxlibError, match="2PC Scenario"):
        with_execution(txlib.Scenario("3pc"))


def test_a_half_committed_plan_may_heal_the_network_itself():
    ex = txlib.exercise("2pc-partition-half-committed")
    cut = txlib.partition(["coordinator", "p1"], when="coordinator sends COMMIT to p1")
    verdict = ex.check([cut, txlib.heal(at_time=400)])
    assert verdict.ok and "With your heal, the same run ends committed" in verdict.message
    assert not ex.check([txlib.heal(at_time=400)]).ok


def test_lock_spans_skip_a_participant_that_never_locked():
    run = txlib.simulate("2pc", participants=2, faults=[txlib.vote_no("p2")])
    assert [row[0] for row in lock_spans(run)] == ["p1"]
