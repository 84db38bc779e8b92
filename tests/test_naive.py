"""The "naive" protocol (no protocol: independent local commits), lesson 01's baseline."""

from __future__ import annotations

import txlib
from txlib.protocols.bank import balances_after

TRANSFER = txlib.Scenario("naive", ("alice", "bob"), options={"prepare_timeout": 60})


def money(run: txlib.Run) -> dict[str, int]:
    return balances_after(run.participants, run.scenario.options, run.logs)


def test_the_happy_path_commits_but_never_asked_bob_first():
    run = TRANSFER.run()
    assert run.outcome == "committed"
    assert money(run) == {"alice": 400, "bob": 600}
    assert [v.invariant for v in run.violations] == ["validity"]
    assert run.metrics.messages_by_type == {"CREDIT": 1, "DEBIT": 1, "DONE": 2}
    assert not run.logs["coordinator"], "the naive coordinator keeps no log"


def test_a_crash_between_the_two_local_commits_loses_the_money():
    crash = txlib.crash("coordinator", when="coordinator sends DEBIT to alice")
    run = TRANSFER.with_faults(crash).run()
    assert run.outcome == "inconsistent"
    assert money(run) == {"alice": 400, "bob": 500}
    assert "atomicity" in {v.invariant for v in run.violations}
    again = TRANSFER.with_faults(crash, txlib.recover("coordinator", at_time=100)).run()
    assert again.states["coordinator"] == "INIT" and money(again) == money(run)


def test_a_refusal_after_a_local_commit_cannot_be_undone():
    run = TRANSFER.with_faults(txlib.vote_no("bob")).run()
    assert run.outcome == "inconsistent"
    assert run.decisions == {"coordinator": "abort", "alice": "commit", "bob": "abort"}
    assert money(run) == {"alice": 400, "bob": 500}


def test_a_refusal_before_any_commit_changes_nothing():
    run = TRANSFER.replace(options={"balances": {"alice": 50}}).run()
    assert run.outcome == "aborted" and not run.violations
    assert money(run) == {"alice": 50, "bob": 500}


def test_a_participant_that_crashed_after_committing_keeps_its_commit():
    faults = (txlib.crash("alice", when="alice logs COMMITTED"),
              txlib.recover("alice", at_time=100))
    run = TRANSFER.with_faults(*faults).run()
    assert run.states["alice"] == "COMMITTED" and run.decisions["alice"] == "commit"


def test_runs_are_deterministic():
    crash = txlib.crash("coordinator", at_step=1)
    assert (TRANSFER.with_faults(crash).run().trace.to_jsonl()
            == TRANSFER.with_faults(crash).run().trace.to_jsonl())
