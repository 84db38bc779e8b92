"""Lesson 01's auditor: what a reader that takes no locks sees after each step of a run.
2PC gives atomicity, not isolation: between the participants' commits the auditor sees
half a transfer."""

from __future__ import annotations

import pytest

import txlib
from txlib.course.l01_why_distributed_transactions import TRANSFER, TWO_PC, audit, half_transfers
from txlib.protocols.bank import balances_after


def _first_commit_step(run: txlib.Run) -> int:
    return min(e.step for e in run.trace if e.kind == "log" and e.detail.startswith("COMMITTED"))


def test_the_happy_2pc_run_shows_half_a_transfer_between_the_two_commits():
    run = TWO_PC.run()
    rows = audit(run)
    assert [r.step for r in rows] == sorted({e.step for e in run.trace})
    first = _first_commit_step(run)
    assert all(r.total == 1000 for r in rows if r.step < first)
    half = half_transfers(run)
    assert half, "the auditor should catch a step where one account has committed"
    assert half[0].step == first and half[0].total == 1100
    assert half[0].balances == {"alice": 500, "bob": 600}
    assert rows[-1].total == 1000 and rows[-1].balances == {"alice": 400, "bob": 600}


def test_a_partial_decision_shows_the_gap_for_as_long_as_the_coordinator_is_down():
    run = txlib.scenario("2pc-partial-decision").replace(options={"horizon": 300}).run()
    half = half_transfers(run)
    assert half and half[-1].total == 1800 and half[-1].time >= 200


def test_an_aborted_run_never_shows_a_changed_total():
    run = TWO_PC.with_faults(txlib.vote_no("bob")).run()
    assert run.outcome == "aborted"
    assert not half_transfers(run)


def test_the_naive_transfer_shows_the_debit_before_the_credit():
    half = half_transfers(TRANSFER.run())
    assert half and all(r.total == 900 for r in half)


@pytest.mark.parametrize("protocol", ["2pc", "3pc", "paxos-commit", "naive"])
def test_the_auditor_reads_every_commit_protocol(protocol: str) -> None:
    """Its last reading is what the participants' logs committed, and in between it sees
    part of the transfer (every one of these commits one participant at a time)."""
    run = txlib.simulate(protocol, participants=("alice", "bob"))
    rows = audit(run)
    assert rows[-1].balances == balances_after(run.participants, run.scenario.options,
                                               run.logs)
    assert half_transfers(run)
