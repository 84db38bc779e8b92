"""Paxos Commit: the normal case, the takeover of a silent leader, safety under any
fault plan, liveness with at most F acceptors down, and Gray & Lamport's cost table."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import fault_timing, roles_of

import txlib
from txlib.protocols.paxos_commit import ABORTED, PREPARED, next_ballot

P = "paxos-commit"
MESSAGE_TYPES = ["PREPARE", "P2A", "P2B", "P1A", "P1B", "REJECT", "COMMIT", "ABORT",
                 "DECISION_REQ"]
LOG_RECORDS = ["PREPARED", "COMMITTED", "ABORT", "COMMIT", "ACCEPTED", "PROMISED", "LEAD"]
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def acceptors(n: int) -> list[str]:
    return [f"a{i}" for i in range(1, n + 1)]


def sends(run: txlib.Run, type_: str, src: str | None = None) -> list:
    return [e for e in run.trace.of_kind("send")
            if e.message.type == type_ and src in (None, e.message.src)]


# --- the normal case ---------------------------------------------------------------------
@pytest.mark.parametrize(("n", "f"), [(1, 0), (3, 1), (4, 2)])
def test_happy_path_uses_f_plus_one_acceptors_and_one_bundled_p2b_each(n, f):
    run = txlib.simulate(P, participants=n, acceptors=2 * f + 1)
    assert run.outcome == "committed" and run.violations == ()
    assert run.stopped_by == "nothing pending", "nothing is left running after the commit"
    assert run.metrics.messages_by_type == {
        "PREPARE": n, "P2A": n * (f + 1), "P2B": f + 1, "COMMIT": n}
    assert {e.message.dst for e in sends(run, "P2A")} == set(acceptors(f + 1))
    assert run.states[f"a{2 * f + 1}"] == ("IDLE" if f else "ACCEPTED")
    assert run.metrics.message_delays == 4


def test_votes_are_forced_before_they_are_sent_and_bundled_into_one_write():
    run = txlib.simulate(P)
    for p in run.participants:
        forced = next(e.index for e in run.trace if e.node == p
                      and e.detail == "PREPARED (forced)")
        assert forced < sends(run, "P2A", p)[0].index
    for a in ("a1", "a2"):
        [accepted] = [r for r in run.logs[a] if r.record == "ACCEPTED"]
        assert accepted.forced and accepted.data["values"] == dict.fromkeys(
            run.participants, PREPARED)
        assert accepted.data["bal"] == 0


def test_a_no_vote_is_chosen_aborted_at_once_and_the_leader_aborts():
    run = txlib.scenario("paxos-commit-vote-no").run()
    assert run.outcome == "aborted" and run.violations == ()
    first = sends(run, "P2B")[0].message.payload["values"]
    assert first["p2"] == ABORTED
    assert len(first) < len(run.participants), "an Aborted vote is not held back to bundle"
    assert {e.message.dst for e in sends(run, "ABORT")} == {"p1", "p3"}


def test_overdraft_votes_aborted():
    run = txlib.simulate(P, balances={"p1": 150})
    assert run.outcome == "aborted" and run.violations == ()


def test_faster_paxos_commit_tells_the_participants_directly():
    run = txlib.scenario("paxos-commit-faster").run()
    assert run.outcome == "committed" and run.violations == ()
    assert run.metrics.messages_by_type == {"PREPARE": 3, "P2A": 6, "P2B": 6}
    assert run.metrics.message_delays == 3
    assert run.decisions["coordinator"] is None and run.states["coordinator"] == "STANDBY"


# --- failures ----------------------------------------------------------------------------
def test_leader_crash_after_the_votes_a1_takes_over_and_commits():
    run = txlib.scenario("paxos-commit-leader-crash").run()
    assert run.outcome == "committed" and run.violations == ()
    assert "coordinator" in run.down and run.stopped_by == "nothing pending"
    [lead] = [e for e in run.trace.of_kind("state") if e.detail == "LEADING"]
    assert lead.node == "a1", "the lowest-numbered live acceptor takes over"
    p1a = sends(run, "P1A")
    assert p1a and {e.message.src for e in p1a} == {"a1"}
    assert p1a[0].message.payload["bal"] == 1
    [p2a] = {tuple(e.message.payload["values"].values()) for e in sends(run, "P2A", "a1")}
    assert set(p2a) == {PREPARED}, "Prepared was accepted, so it may have been chosen"
    assert {e.message.dst for e in sends(run, "COMMIT", "a1")} >= set(run.participants)


def test_leader_crash_before_anyone_voted_aborts_without_blocking():
    run = txlib.scenario("paxos-commit-leader-crash-early").run()
    assert run.outcome == "aborted" and run.violations == ()
    assert run.stopped_by == "nothing pending"


def test_an_acceptor_down_within_f_costs_a_second_ballot_not_the_outcome():
    run = txlib.scenario("paxos-commit-acceptor-crash").run()
    assert run.outcome == "committed" and run.violations == ()
    [lead] = [r for r in run.logs["coordinator"] if r.record == "LEAD"]
    assert lead.data["bal"] == 4, "the coordinator's ballots are 4, 8, ... (4 = 3 acceptors + 1)"
    assert {e.message.src for e in sends(run, "P2B")} == {"a2", "a3"}


def test_a_majority_of_acceptors_cut_off_waits_and_never_decides():
    run = txlib.scenario("paxos-commit-majority-partitioned").run()
    assert run.outcome == "blocked" and run.violations == ()
    assert all(run.decisions[n] is None for n in run.nodes)
    assert all(run.states[p] == "PREPARED" for p in run.participants)
    healed = txlib.scenario("paxos-commit-partition-heals").run()
    assert healed.outcome == "aborted" and healed.violations == ()
    assert healed.stopped_by == "nothing pending"
    assert healed.decisions["coordinator"] == "abort", "the leader's own ballot finishes"
    [p2a] = {tuple(e.message.payload["values"].values())
             for e in sends(healed, "P2A", "coordinator")}
    assert set(p2a) == {ABORTED}, "no vote reached a majority: nothing can have been chosen"


def test_two_acceptors_and_the_leader_down_with_five_acceptors_still_commits():
    run = txlib.scenario("paxos-commit-f2-three-down").run()
    assert run.outcome == "committed" and run.violations == ()
    assert {"coordinator", "a1", "a2"} <= run.down
    assert [e.node for e in run.trace.of_kind("state") if e.detail == "LEADING"] == ["a3"]


def test_a_recovered_leader_learns_the_outcome_from_the_acceptors():
    run = txlib.simulate(P, faults=[
        txlib.crash("coordinator", when="coordinator receives P2B"),
        txlib.recover("coordinator", at_time=150)])
    assert run.outcome == "committed" and run.violations == ()
    assert run.decisions["coordinator"] == "commit"
    assert any(r.record == "LEAD" for r in run.logs["coordinator"])


def test_ballots_belong_to_one_node_each():
    classes = 4  # 3 acceptors + the coordinator
    assert [next_ballot(0, b, classes) for b in (0, 3, 4, 7)] == [4, 4, 8, 8]
    assert [next_ballot(1, b, classes) for b in (0, 1, 4)] == [1, 5, 5]
    owners = {b % classes for owner in range(classes) for b in
              [next_ballot(owner, x, classes) for x in range(20)] if b % classes != owner}
    assert owners == set()


# --- safety under any fault plan (hypothesis) --------------------------------------------
def timing(nodes: list[str]) -> st.SearchStrategy[dict]:
    own = roles_of("paxos-commit", tuple(n for n in nodes if n.startswith("p")),
                   (("acceptors", sum(n.startswith("a") for n in nodes)),))
    return fault_timing(nodes, LOG_RECORDS, MESSAGE_TYPES, 60, 700, own)


@st.composite
def any_faults(draw, nodes: list[str], participants: list[str]) -> list:
    faults = []
    for _ in range(draw(st.integers(0, 5))):
        node = draw(st.sampled_from(nodes))
        maker = draw(st.sampled_from([txlib.crash, txlib.recover]))
        faults.append(maker(node, **draw(timing(nodes))))
    types = [None, *MESSAGE_TYPES]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["drop", "duplicate", "delay", "partition", "heal",
                                     "vote_no", "slow"]))
        pattern = {"src": draw(st.sampled_from([None, *nodes])),
                   "dst": draw(st.sampled_from([None, *nodes])),
                   "count": draw(st.sampled_from([1, 2, None]))}
        if kind == "drop":
            faults.append(txlib.drop(draw(st.sampled_from(types)), **pattern))
        elif kind == "duplicate":
            faults.append(txlib.duplicate(draw(st.sampled_from(types)), **pattern))
        elif kind == "delay":
            faults.append(txlib.delay(draw(st.integers(1, 300)), draw(st.sampled_from(types)),
                                      **pattern))
        elif kind == "partition":
            group = draw(st.lists(st.sampled_from(nodes), min_size=1, unique=True))
            faults.append(txlib.partition(group, **draw(timing(nodes))))
        elif kind == "heal":
            faults.append(txlib.heal(**draw(timing(nodes))))
        elif kind == "vote_no":
            faults.append(txlib.vote_no(draw(st.sampled_from(participants))))
        else:
            faults.append(txlib.slow(draw(st.sampled_from(nodes)), draw(st.integers(1, 200))))
    return faults


@st.composite
def faulty_scenarios(draw) -> txlib.Scenario:
    n = draw(st.integers(1, 4))
    count = draw(st.sampled_from([1, 3, 3, 5]))
    participants = [f"p{i}" for i in range(1, n + 1)]
    nodes = ["coordinator", *participants, *acceptors(count)]
    options = {
        "acceptors": count,
        "faster": draw(st.booleans()),
        "lose_unforced": draw(st.booleans()),
        "loss": draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
        "duplicate": draw(st.sampled_from([0.0, 0.2])),
        "delay": draw(st.sampled_from([0.0, 0.2])),
        "reorder": draw(st.booleans()),
    }
    if draw(st.booleans()):  # short timeouts: leaders and takeovers race each other
        options.update(vote_timeout=draw(st.integers(1, 60)),
                       takeover_timeout=draw(st.integers(1, 60)),
                       takeover_gap=draw(st.integers(1, 30)),
                       phase_timeout=draw(st.integers(1, 60)),
                       batch_timeout=draw(st.integers(1, 30)))
    return txlib.Scenario(P, participants, seed=draw(st.integers(0, 2**32)),
                          faults=tuple(draw(any_faults(nodes, participants))),
                          options=options)


@SETTINGS
@given(faulty_scenarios())
def test_never_inconsistent_whatever_the_faults(scenario):
    run = scenario.run()
    assert run.violations == (), run.summary()
    assert run.outcome != "inconsistent"


# --- liveness: at most F acceptors down, the leader crashes at any moment ------------------
@st.composite
def leader_crashes(draw) -> txlib.Scenario:
    """The leader crashes at any moment and never returns; at most F acceptors crash;
    participants may crash and recover; the network may lose, duplicate and delay."""
    n = draw(st.integers(1, 4))
    count = draw(st.sampled_from([1, 3, 5]))
    f = count // 2
    participants = [f"p{i}" for i in range(1, n + 1)]
    nodes = ["coordinator", *participants, *acceptors(count)]
    down = draw(st.lists(st.sampled_from(acceptors(count)), max_size=f, unique=True))
    faults = [txlib.crash("coordinator", **draw(timing(nodes)))]
    faults += [txlib.crash(a, **draw(timing(nodes))) for a in down]
    for p in draw(st.lists(st.sampled_from(participants), max_size=2, unique=True)):
        faults += [txlib.crash(p, **draw(timing(nodes))),
                   txlib.recover(p, at_time=draw(st.integers(0, 1500)))]
    options = {"acceptors": count, "faster": draw(st.booleans()),
               "lose_unforced": draw(st.booleans()),
               "loss": draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
               "duplicate": draw(st.sampled_from([0.0, 0.2])),
               "delay": draw(st.sampled_from([0.0, 0.2])), "horizon": 5000}
    return txlib.Scenario(P, participants, seed=draw(st.integers(0, 2**32)),
                          faults=tuple(faults), options=options)


@SETTINGS
@given(leader_crashes())
def test_every_live_participant_decides_with_at_most_f_acceptors_down_and_no_leader(scenario):
    run = scenario.run()
    assert run.violations == (), run.summary()
    undecided = [p for p in run.participants if run.decisions[p] is None and p not in run.down]
    assert undecided == [], run.summary()


@pytest.mark.parametrize("count", [1, 3, 5])
def test_the_leader_crashing_after_any_step_never_blocks(count):
    """Exhaustively: the coordinator crashes after step k (and never returns), and the
    last F acceptors are down from the start."""
    f = count // 2
    down = [txlib.crash(a, at_step=0) for a in acceptors(count)[count - f:]]
    base = txlib.simulate(P, acceptors=count, faults=down)
    for k in range(1, base.steps + 1):
        run = txlib.simulate(P, acceptors=count,
                             faults=[*down, txlib.crash("coordinator", at_step=k)])
        assert run.outcome in ("committed", "aborted"), (k, run.outcome)
        assert run.violations == ()


# --- Gray & Lamport's normal-case table ----------------------------------------------------
def remote_messages(run: txlib.Run, machine: dict[str, str]) -> int:
    """Messages between nodes on different machines (a node missing from ``machine``
    has one of its own), ACKs left out."""
    return sum(1 for e in run.trace.of_kind("send") if e.message.type != "ACK"
               and machine.get(e.message.src, e.message.src)
               != machine.get(e.message.dst, e.message.dst))


def stable_writes(run: txlib.Run) -> int:
    """Forced writes until every participant has decided, leaving out a participant's
    own COMMITTED record (G&L count no RM's write of an outcome it learned)."""
    last = max(e.index for e in run.trace.of_kind("decision") if e.node in run.participants)
    return sum(1 for e in run.trace if e.index <= last and e.kind == "log"
               and e.detail.endswith("(forced)")
               and not (e.node in run.participants and e.detail.startswith("COMMITTED")))


def paper_costs(run: txlib.Run, colocated: bool) -> tuple[int, int, int]:
    """(message delays, messages, stable writes) of a committed txlib run, counted as
    Gray & Lamport count (see the test below)."""
    participants: Sequence[str] = run.participants
    if colocated:  # the leader and a1 on p1's machine, acceptor ai on pi's machine
        machine = {"coordinator": participants[0]}
        machine.update({f"a{i}": p for i, p in enumerate(participants, 1)})
    else:  # the leader shares its machine with a1; everything else on its own machine
        machine = {"a1": "coordinator"}
    messages = remote_messages(run, machine)
    if not colocated:
        messages -= 1  # their run starts at p1: no PREPARE goes to it
    assert run.metrics.message_delays is not None
    return run.metrics.message_delays + 1, messages, stable_writes(run)


def gray_lamport(protocol: str, n: int, f: int, colocated: bool) -> tuple[int, int, int]:
    """Their table: (message delays, messages, stable-storage writes)."""
    if protocol == "2pc":
        return 4, 3 * n - 3 if colocated else 3 * n - 1, n + 1
    if protocol == "paxos":
        messages = n * (f + 3) - 3 if colocated else (n + 1) * (f + 3) - 4
        return 5, messages, n + f + 1
    messages = (n - 1) * (2 * f + 3) if colocated else n * (2 * f + 3) - 1
    return 4, messages, n + f + 1


COST_CASES = [("2pc", n, 0) for n in (2, 3, 5, 8)] + [
    (protocol, n, f) for protocol in ("paxos", "faster") for n in (2, 3, 5, 8)
    for f in (0, 1, 2) if n >= f + 1]


@pytest.mark.parametrize(("protocol", "n", "f"), COST_CASES)
def test_normal_case_costs_match_gray_and_lamport(protocol, n, f):
    """Gray & Lamport, *Consensus on Transaction Commit*, Table 1, commit case, rebuilt
    from measured runs.

    Their conventions, and how each measured number is converted:

    - Their run starts with one participant (RM1) announcing it is ready: 2PC's
      Prepared, Paxos Commit's BeginCommit (sent with its phase 2a message to the
      leader's acceptor). txlib's run starts at the coordinator, which sends PREPARE
      to every participant. So their message delays are txlib's ``message_delays``
      (the causal chain up to the last participant learning the outcome) plus one, and
      without co-location their messages leave out the PREPARE to p1 (one fewer).
    - Without co-location, the leader (txlib's coordinator) shares a machine with one
      acceptor (a1), every other node has its own; with co-location, the leader and a1
      run on p1's machine and acceptor ai on pi's machine. A message between two nodes
      of one machine is not a message. Counted from the trace's sends.
    - 2PC has no ACKs in their count; txlib's 2PC sends one per participant.
    - Stable-storage writes: forced log writes until every participant has decided,
      without the participants' own COMMITTED records (their table counts none of
      them). For 2PC and Paxos Commit this is txlib's ``forced_writes_before_decision``.
    - Paxos Commit uses F+1 of its 2F+1 acceptors in the normal case, each bundling
      every instance into one forced write and one phase 2b message; co-location
      assumes a participant's machine for each of them (N >= F+1).
    """
    if protocol == "2pc":
        run = txlib.simulate("2pc", participants=n)
    else:
        run = txlib.simulate(P, participants=n, acceptors=2 * f + 1,
                             faster=protocol == "faster")
    assert run.outcome == "committed" and run.violations == ()
    for colocated in (False, True):
        assert paper_costs(run, colocated) == gray_lamport(protocol, n, f, colocated)
    if protocol != "faster":
        assert stable_writes(run) == run.metrics.forced_writes_before_decision


# --- names (bad option values are in tests/test_bad_inputs.py) -----------------------------
def test_a_participant_named_like_an_acceptor_is_refused():
    with pytest.raises(txlib.TxlibError, match=r"'a2'.*acceptor"):
        txlib.simulate(P, participants=["p1", "a2"])
    assert txlib.simulate(P, participants=["p1", "a4"]).outcome == "committed"


def test_acceptor_faults_are_checked_against_the_roster():
    with pytest.raises(txlib.TxlibError, match="'a4'"):
        txlib.simulate(P, faults=[txlib.crash("a4")])
    assert txlib.simulate(P, acceptors=5, faults=[txlib.crash("a4")]).outcome == "committed"
    with pytest.raises(txlib.TxlibError, match="vote_no applies to a participant"):
        txlib.simulate(P, faults=[txlib.vote_no("a1")])
    with pytest.raises(txlib.TxlibError, match="'YES'"):
        txlib.simulate(P, faults=[txlib.drop("YES")])
