"""Lesson 06's claims, each checked against the engine: Gray & Lamport's cost table
rebuilt from runs, the F = 0 placement, the acceptors' state through a takeover, and the
outcomes of the same faults on 2PC, 3PC and Paxos Commit."""

from __future__ import annotations

import pytest

import txlib
from txlib.course import l06_paxos_commit as lesson
from txlib.properties.costs import local_free_delays, paper_costs

# Co-location needs a participant's machine for each of the F + 1 acceptors: N >= F + 1.
CASES = [(p, n, f) for p in ("paxos", "faster") for n in (2, 3, 4) for f in (1, 2) if n > f]


@pytest.mark.parametrize(("protocol", "n", "f"), CASES)
def test_the_lessons_cost_table_equals_gray_and_lamports_formulas(protocol, n, f):
    assert lesson.measured(protocol, n, f) == lesson.gray_lamport(protocol, n, f)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_2pc_rows_equal_the_formulas_and_the_table_shows_no_mismatch(n):
    assert lesson.measured("2pc", n, 0) == lesson.gray_lamport("2pc", n, 0)
    rows = lesson.cost_rows((2, 3, 4), (1, 2))
    assert len(rows) == 3 + 2 * 5 and all(got == paper for *_, got, paper in rows)
    assert "≠" not in lesson.cost_table().data


def test_f0_is_2pc_only_with_the_acceptor_on_the_coordinators_machine():
    run = lesson.normal_run("paxos", 3, 0)
    two = lesson.normal_run("2pc", 3, 0)
    together = paper_costs(run.trace, run.participants, {"a1": "coordinator"})
    apart = paper_costs(run.trace, run.participants, {})
    two_pc = paper_costs(two.trace, two.participants, {})
    assert together == two_pc and (two_pc.delays, two_pc.messages) == (4, 8)
    assert (apart.delays, apart.messages) == (5, 9) and apart.writes == two_pc.writes


@pytest.mark.parametrize("scenario", ["paxos-commit-happy", "paxos-commit-leader-crash",
                                      "paxos-commit-faster", "2pc-happy",
                                      "2pc-coordinator-recovers", "3pc-happy"])
def test_delays_with_every_node_on_its_own_machine_are_the_engines_hops(scenario):
    run = txlib.scenario(scenario).run()
    assert local_free_delays(run.trace, run.participants, {}) == run.metrics.message_delays


def test_a_message_within_one_machine_costs_no_delay_and_is_not_counted():
    run = txlib.simulate("2pc", participants=2)
    everything_local = dict.fromkeys(run.nodes, "m")
    costs = paper_costs(run.trace, run.participants, everything_local)
    assert costs is not None and (costs.delays, costs.messages) == (1, 0)
    assert paper_costs(txlib.scenario("paxos-commit-majority-partitioned").run().trace,
                       ["p1", "p2", "p3"]) is None, "nobody decided: no costs"


def test_the_acceptors_table_follows_the_takeover_from_ballot_0_to_ballot_1():
    named = txlib.scenario("paxos-commit-leader-crash")
    before = lesson.accepted_at(named, 12)
    assert before["a1"] == before["a2"] == dict.fromkeys(
        ["p1", "p2", "p3"], "prepared (ballot 0)")
    assert set(before["a3"].values()) == {"—"}, "a3 is the spare: no ballot-0 vote"
    after = lesson.accepted_at(named, named.run().steps)
    assert {cell for row in after.values() for cell in row.values()} == {
        "prepared (ballot 1)"}
    down = lesson.accepted_at(txlib.scenario("paxos-commit-acceptor-crash"), 5)
    assert all(cell.startswith("✝") for cell in down["a1"].values())


def test_the_takeover_story_names_a1_and_both_phases_of_ballot_1():
    lines = lesson.takeover(txlib.scenario("paxos-commit-leader-crash").run())
    assert lines[0].endswith("coordinator crashes") and "a1 takes over" in lines[1]
    assert "phase 1 (P1A), ballot 1, to the other acceptors" in lines[2] and "phase 2" in lines[3]
    assert sum("decides commit" in line for line in lines) == 3


def test_same_faults_2pc_blocks_3pc_splits_paxos_commit_never_splits():
    text = lesson.outcomes([
        ("crash", [txlib.crash("coordinator", at_time=20)]),
        ("cut", [txlib.partition(["p2", "p3"], at_time=25)]),
    ]).data
    assert "| crash | blocked | aborted | committed |" in text
    assert "| cut | blocked | inconsistent | blocked |" in text


@pytest.mark.parametrize("acceptors", [3, 5])
def test_any_two_majorities_intersect(acceptors):
    pairs, disjoint = lesson.always_intersect(acceptors)
    assert pairs > 0 and disjoint == 0
    assert len(lesson.majorities(acceptors)) == {3: 3, 5: 10}[acceptors]


def test_the_explorer_line_hides_the_timing_and_names_the_violation():
    found = txlib.explore("3pc", participants=2, max_crashes=0, partitions=True,
                          max_states=3000, progress=False)
    line = lesson.explored(found)
    assert "atomicity broken" in line and " s " not in line
