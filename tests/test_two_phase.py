"""Two-phase commit: the seed's examples, the classic failures, and what they cost."""

from __future__ import annotations

import itertools

import pytest

import txlib
from txlib.protocols.bank import balances_after


def balances(run: txlib.Run) -> dict[str, int]:
    return balances_after(run.participants, run.scenario.options, run.logs)


def sends(run: txlib.Run, type_: str, src: str | None = None) -> list:
    return [e for e in run.trace.of_kind("send")
            if e.message.type == type_ and src in (None, e.message.src)]


def test_seed_transfer_commits_and_moves_the_money():
    run = txlib.scenario("seed-transfer").run()
    assert run.outcome == "committed"
    assert run.decisions == {"coordinator": "commit", "AccountA": "commit", "AccountB": "commit"}
    assert balances(run) == {"AccountA": 400, "AccountB": 600}
    assert {e.message.payload["tx"] for e in run.trace.of_kind("send")} == {"TX-001"}


def test_seed_transfer_with_a_failing_participant_aborts_everywhere():
    run = txlib.scenario("seed-transfer-fails").run()
    assert run.outcome == "aborted"
    assert set(run.decisions.values()) == {"abort"}
    assert balances(run) == {"AccountA": 500, "AccountB": 500}
    assert [e.node for e in run.trace.of_kind("vote") if e.detail == "no"] == ["AccountB"]


@pytest.mark.parametrize("n", range(1, 9))
def test_happy_path_costs_for_n_participants(n):
    """Presumed abort, commit case: 4 messages and 2 forced writes per participant,
    plus the coordinator's forced COMMIT; N+1 forced writes before the decision."""
    m = txlib.simulate("2pc", participants=n).metrics
    assert m.messages_by_type == {"ACK": n, "COMMIT": n, "PREPARE": n, "YES": n}
    assert m.messages == 4 * n
    assert m.forced_writes_before_decision == n + 1
    assert m.forced_writes == 2 * n + 1
    assert (m.decision_delays, m.message_delays) == (2, 3)


def test_commit_is_forced_before_it_is_sent_and_prepared_before_the_vote():
    run = txlib.simulate("2pc")
    events = list(run.trace)
    first_commit_send = next(e.index for e in events
                             if e.kind == "send" and e.message.type == "COMMIT")
    commit_log = next(e.index for e in events
                      if e.kind == "log" and e.detail == "COMMIT (forced)")
    assert commit_log < first_commit_send
    for p in run.participants:
        prepared = next(e.index for e in events if e.node == p and e.detail == "PREPARED (forced)")
        vote = next(e.index for e in events if e.kind == "send" and e.message.type == "YES"
                    and e.message.src == p)
        assert prepared < vote


def test_vote_no_aborts_without_forced_abort_records_or_acks():
    run = txlib.scenario("2pc-vote-no").run()
    assert run.outcome == "aborted"
    assert not sends(run, "ACK"), "presumed abort: aborts are not acknowledged"
    forced = [e for e in run.trace.of_kind("log") if e.detail.startswith("ABORT")]
    assert forced and all(e.detail == "ABORT (lazy)" for e in forced)
    assert not sends(run, "ABORT", "coordinator") or all(
        e.message.dst != "p2" for e in sends(run, "ABORT", "coordinator"))


def test_overdraft_votes_no():
    run = txlib.scenario("2pc-overdraft").run()
    assert run.outcome == "aborted"
    assert [e.node for e in run.trace.of_kind("vote") if e.detail == "no"] == ["p1"]


def test_coordinator_crash_after_deciding_blocks_participants_holding_locks():
    run = txlib.scenario("2pc-coordinator-crash-blocks").run()
    assert run.outcome == "blocked"
    assert run.stopped_by.startswith("horizon")
    assert all(run.states[p] == "PREPARED" for p in run.participants)
    assert all(run.locks[p] == ("balance",) for p in run.participants)
    # In doubt they keep asking, at intervals, until the end.
    asks = sends(run, "DECISION_REQ", "p1")
    assert len(asks) >= 10
    gaps = {b.time - a.time for a, b in itertools.pairwise(asks)}
    assert gaps == {60}
    m = run.metrics
    assert all(m.blocked_time[p] == m.lock_time[p] > 900 for p in run.participants)


def test_coordinator_recovery_resends_its_logged_decision():
    run = txlib.scenario("2pc-coordinator-recovers").run()
    assert run.outcome == "committed"
    recover = run.trace.of_kind("recover")[0]
    assert recover.time == 300
    resent = [e for e in sends(run, "COMMIT", "coordinator") if e.index > recover.index]
    assert {e.message.dst for e in resent} == set(run.participants)
    assert run.violations == ()


def test_recovery_without_a_decision_presumes_abort():
    run = txlib.scenario("2pc-presumed-abort").run()
    assert run.outcome == "aborted"
    assert all(r.record != "COMMIT" for r in run.logs["coordinator"])
    # The participants learn ABORT by asking: the coordinator answers from its presumption.
    answers = [e for e in sends(run, "ABORT", "coordinator")]
    assert {e.message.dst for e in answers} == set(run.participants)


def test_partial_decision_blocks_and_cooperative_termination_unblocks():
    blocked = txlib.scenario("2pc-partial-decision").run()
    assert blocked.outcome == "blocked"
    assert blocked.decisions["p1"] == "commit"
    assert blocked.decisions["p2"] is None and blocked.decisions["p3"] is None
    helped = txlib.scenario("2pc-cooperative-termination").run()
    assert helped.outcome == "committed"
    peer_answers = [e for e in sends(helped, "COMMIT", "p1")]
    assert {e.message.dst for e in peer_answers} == {"p2", "p3"}


def test_cooperative_termination_cannot_help_when_every_peer_is_in_doubt():
    run = txlib.simulate("2pc", cooperative=True,
                         faults=[txlib.crash("coordinator", when="coordinator logs COMMIT")])
    assert run.outcome == "blocked"


def test_participant_crash_while_prepared_keeps_locks_and_recovers():
    run = txlib.scenario("2pc-participant-crash-prepared").run()
    assert run.outcome == "committed"
    crash = run.trace.of_kind("crash")[0]
    unlock = next(e for e in run.trace.of_kind("unlock") if e.node == "p2")
    assert unlock.time >= 200, "the prepared participant's lock survives its crash"
    assert run.metrics.lock_time["p2"] == unlock.time - next(
        e.time for e in run.trace.of_kind("lock") if e.node == "p2")
    assert crash.time < 200


def test_lost_vote_times_out_and_the_in_doubt_voter_learns_abort():
    run = txlib.scenario("2pc-lost-vote").run()
    assert run.outcome == "aborted"
    timeout = run.trace.of_kind("timeout")[0]
    assert (timeout.node, timeout.detail) == ("coordinator", "votes")
    assert run.decisions["p2"] == "abort"


def test_a_participant_that_never_gets_prepare_aborts_alone():
    run = txlib.simulate("2pc", vote_timeout=500, faults=[txlib.drop("PREPARE", dst="p3")])
    assert run.outcome == "aborted"
    alone = [e for e in run.trace.of_kind("timeout") if e.node == "p3"]
    assert alone and alone[0].detail == "prepare" and alone[0].time == 200


def test_partition_after_the_decision_blocks_but_never_splits():
    run = txlib.scenario("2pc-partition-blocks").run()
    assert run.outcome == "blocked" and run.violations == ()


def test_named_participants_and_large_n():
    run = txlib.simulate("2pc", participants=["alice", "bob", "carol"])
    assert run.nodes == ("coordinator", "alice", "bob", "carol")
    assert txlib.simulate("2pc", participants=20).outcome == "committed"


def test_crashing_any_node_after_any_step_never_splits_and_recovery_unblocks():
    base = txlib.simulate("2pc")
    seen = set()
    for node in base.nodes:
        for k in range(base.steps + 1):
            crashed = txlib.simulate("2pc", faults=[txlib.crash(node, at_step=k)])
            assert crashed.outcome in ("committed", "aborted", "blocked"), (node, k)
            assert crashed.violations == ()
            seen.add(crashed.outcome)
            back = txlib.simulate("2pc", faults=[txlib.crash(node, at_step=k),
                                                 txlib.recover(node, at_time=400)])
            assert back.outcome in ("committed", "aborted"), (node, k, back.outcome)
    assert seen == {"committed", "aborted", "blocked"}


@pytest.mark.parametrize("record", ["COMMITTED", "ABORT"])
def test_a_crash_between_forcing_a_decision_and_announcing_it_recovers_decided(record):
    faults = [txlib.crash("p1", when=f"p1 logs {record}"), txlib.recover("p1", at_time=100)]
    if record == "ABORT":
        faults.append(txlib.vote_no("p1"))
    run = txlib.simulate("2pc", participants=1, lose_unforced=False, faults=faults)
    assert run.outcome == ("committed" if record == "COMMITTED" else "aborted")
    assert run.locks["p1"] == ()
    assert run.metrics.forced_writes_before_decision <= 2


@pytest.mark.parametrize(("protocol", "request_type", "record"),
                         [("2pc", "PREPARE", "PREPARED"), ("3pc", "CAN_COMMIT", "READY")])
def test_a_yes_resent_after_a_crash_counts_as_the_vote(protocol, request_type, record):
    """The participant forced its vote record, crashed before the vote was noted, and
    after recovery answered a duplicate request with YES: a correct commit, not a
    validity violation (issue 12's reproducer)."""
    run = txlib.simulate(protocol, participants=1, faults=[
        txlib.duplicate(request_type), txlib.crash("p1", when=f"p1 logs {record}"),
        txlib.recover("p1", at_step=2)])
    assert run.outcome == "committed"
    assert run.violations == ()
    assert [e.detail for e in run.trace.of_kind("vote")] == ["yes"]
