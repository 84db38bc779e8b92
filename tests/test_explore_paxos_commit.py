"""The explorer on the engine's Paxos Commit: bounded ballots, per-role crash budgets,
and the blocking (liveness) analysis that finds 2PC's blocking and none in Paxos Commit
with at most F acceptors down. Budgets and timings of the larger runs:
benchmarks/explore_paxos_commit.py."""

from __future__ import annotations

import pytest

import txlib
from txlib.explorer.actions import Crash, CrashDuring
from txlib.explorer.worlds import explore


def crashed(path) -> set[str]:
    return {a.node for a in path if isinstance(a, (Crash, CrashDuring))}


def test_2pc_blocks_when_its_coordinator_may_crash_and_not_when_a_participant_does():
    coordinator = explore("2pc", max_crashes={"coordinator": 1}, progress=False)
    assert coordinator.complete and coordinator.violations == ()
    assert coordinator.blocking is not None and crashed(coordinator.blocking.path) == {
        "coordinator"}
    assert coordinator.blocking.run.outcome == "blocked"
    participant = explore("2pc", max_crashes={"participant": 1}, progress=False)
    nothing = explore("2pc", max_crashes=0, progress=False)
    assert participant.ok and participant.blocking_states == 0
    assert participant.states > nothing.states, "participants did crash"


def test_the_explorer_bounds_paxos_commit_ballots_and_says_so():
    result = explore("paxos-commit", participants=1, acceptors=1, max_crashes=0,
                     progress=False)
    assert result.settings["max_ballots"] == 1 and "max_ballots=1" in result.summary()
    scenario = txlib.Scenario("paxos-commit", ("p1",), options={"acceptors": 1})
    assert explore(scenario, max_crashes=0, progress=False).settings["max_ballots"] == 1
    assert explore("paxos-commit", participants=1, acceptors=1, max_crashes=0, max_ballots=3,
                   progress=False).settings["max_ballots"] == 3


def test_paxos_commit_without_takeovers_blocks_like_2pc():
    """max_ballots=0: nobody may take over, so a leader crash blocks. The same budget
    with one ballot per node (below) does not: the check can fail, and here it does."""
    result = explore("paxos-commit", participants=1, acceptors=3, max_ballots=0,
                     max_crashes={"coordinator": 1}, progress=False)
    assert result.complete and result.violations == ()
    assert result.blocking is not None and crashed(result.blocking.path) == {"coordinator"}
    assert result.blocking.run.outcome == "blocked"


def test_paxos_commit_does_not_block_when_the_leader_crashes():
    result = explore("paxos-commit", participants=1, acceptors=3,
                     max_crashes={"coordinator": 1}, progress=False)
    assert result.complete and result.ok, result.summary()
    assert result.blocking_states == 0 and result.states > 1000


def test_paxos_commit_with_two_participants_survives_an_acceptor_crash():
    result = explore("paxos-commit", participants=2, acceptors=3,
                     max_crashes={"acceptor": 1}, progress=False)
    assert result.complete and result.ok, result.summary()
    assert result.states > 5000


def test_one_acceptor_tolerates_no_crash_of_it():
    """F = 0: losing the only acceptor leaves the participant in doubt for good."""
    result = explore("paxos-commit", participants=1, acceptors=1, max_crashes={"acceptor": 1},
                     progress=False)
    assert result.complete and result.violations == ()
    assert result.blocking is not None and crashed(result.blocking.path) == {"a1"}


@pytest.mark.slow
def test_paxos_commit_neither_breaks_nor_blocks_with_the_leader_and_f_acceptors_down():
    """The leader and one acceptor of three may both crash and never return (48,256
    states, about 25 s)."""
    result = explore("paxos-commit", participants=1, acceptors=3,
                     max_crashes={"coordinator": 1, "acceptor": 1}, progress=False)
    assert result.complete and result.ok, result.summary()


@pytest.mark.parametrize(("budget", "match"), [
    ({"leader": 1}, "role"),
    ({"coordinator": -1}, "max_crashes"),
    ({"coordinator": True}, "max_crashes"),
])
def test_bad_per_role_crash_budgets_are_refused(budget, match):
    with pytest.raises(txlib.TxlibError, match=match):
        explore("2pc", max_crashes=budget, progress=False)
