"""Lesson 10's claims, from runs: the orchestrated saga's baseline is the design lesson 09
recommends and the 'after' bug is the only saga that a single crash leaves inconsistent;
Paxos Commit's plans keep its acceptors with the coordinator; every commit protocol lets a
snapshot reader see half a transfer; choose-never-blocks accepts exactly the protocols the
runs support."""

from __future__ import annotations

import pytest

import txlib
from txlib.course import l10_choosing_a_protocol as lesson


def test_the_saga_baseline_registers_before_and_only_the_bug_breaks_under_one_crash():
    assert lesson.scenario("saga").options["register_compensation"] == "before"
    assert lesson.scenario(lesson.BUG).options["register_compensation"] == "after"
    baseline = lesson.outcomes("saga", lesson.single_crashes("saga"))
    bug = lesson.outcomes(lesson.BUG, lesson.single_crashes(lesson.BUG))
    assert "inconsistent" not in baseline
    assert bug.count("inconsistent") > 0


def test_paxos_commit_keeps_its_acceptors_on_the_coordinators_side():
    (cut,) = lesson.plan("partition", "paxos-commit")
    side = next(g for g in cut.groups if "coordinator" in g)
    assert {"a1", "a2", "a3"} <= set(side)
    assert lesson.run_plan("coordinator crash", "paxos-commit").outcome == "committed"
    assert lesson.run_plan("partition", "paxos-commit").outcome == "blocked"


@pytest.mark.parametrize("protocol", lesson.COMMIT_PROTOCOLS)
def test_a_snapshot_reader_sees_half_a_transfer_under_every_commit_protocol(protocol):
    seen = lesson.half_transfer(lesson.simulate(protocol))
    assert seen is not None
    first, last, total, true = seen
    assert first <= last and total != true


def test_choose_never_blocks_accepts_exactly_what_the_runs_support():
    ex = txlib.exercise("choose-never-blocks")
    accepted = {p for p in lesson.PROTOCOLS if ex.check(p).ok}
    assert accepted == set(lesson.NEVER_BLOCKED) == {"3pc", "paxos-commit"}
    message = ex.check("paxos-commit").message
    assert "Paxos Commit splits in 0" in message and "3PC passes this test too" in message


@pytest.mark.parametrize(("call", "named"), [
    (lambda: lesson.plan("partition", "xa"), "'xa'"),
    (lambda: lesson.plan("meteor", "2pc"), "'meteor'"),
    (lambda: lesson.scenario("paxos"), "'paxos-commit'"),
])
def test_bad_names_are_reported_with_the_choices(call, named):
    with pytest.raises(txlib.TxlibError, match="valid choices") as error:
        call()
    assert named in str(error.value)


def test_the_recommended_saga_is_told_as_its_run_ends() -> None:
    """Stuck while payment is cut off for good; refunded once a healed cut lets the
    refund through (the feedback once said 'waiting to refund' for both)."""
    ex = txlib.exercise("saga-inconsistent-2pc-blocks")
    assert "still trying to refund payment" in ex.check("payment cut off").message
    healed = ex.check("payment cut off, healed at 300")
    assert healed.ok and "payment refunded once the network healed" in healed.message


def test_a_huge_guess_is_shown_short() -> None:
    feedback = txlib.exercise("3pc-message-count").check(lambda n: 10**5000)
    assert not feedback.ok and "about 5,001 digits" in feedback.message


def test_only_blocks_means_in_doubt_for_as_long_as_the_fault_lasts() -> None:
    """The exercise once counted 280 ms in doubt as blocking and said 2PC 'only blocks'
    where the matrix shows it ABORTED at 330 ms; now its words follow the run."""
    never = lesson.run_plan("payment cut off", "2pc")
    healed = lesson.run_plan("payment cut off, healed at 300", "2pc")
    assert never.outcome == "blocked" and healed.outcome == "aborted"
    assert "still in doubt when the run ends" in (lesson.only_blocks(never) or "")
    words = lesson.only_blocks(healed) or ""
    assert "through the whole cut" in words and words.endswith("2PC ends aborted")
    since, until = lesson.in_doubt_spans(healed)["payment"]
    assert until is not None and since <= 9 and until >= lesson.HEAL_AT
    for name in ("no fault", "payment fails"):
        assert lesson.only_blocks(lesson.run_plan(name, "2pc")) is None


def test_the_blocking_exercise_says_how_2pc_really_ends() -> None:
    ex = txlib.exercise("saga-inconsistent-2pc-blocks")
    assert "for as long as the fault lasts" in ex.prompt
    accepted = {name for name in lesson.PLANS if ex.check(name).ok}
    assert accepted == {"payment cut off", "payment cut off, healed at 300"}
    for name in accepted:
        outcome = lesson.run_plan(name, "2pc").outcome
        assert f"2PC ends {outcome}." in ex.check(name).message
