"""The recovery scan concludes what each protocol's own rule concludes from the durable
logs: 2PC presumes abort from the coordinator's log; 3PC and Paxos Commit can commit
without the coordinator's log (the termination protocol, an acceptor's takeover), so
presuming abort there would roll back a participant whose peers committed. When the
logs cannot tell (Paxos Commit: no value chosen yet), nothing is guessed."""

from __future__ import annotations

from typing import Any

import pytest

from txlib.protocols import CommitProtocol, get_protocol
from txlib.protocols.base import Conclusion, Logged, logged, logged_decision
from txlib.real import RealSystem
from txlib.real.recovery import decision
from txlib.real.system import InDoubtWarning, timing_for

P = ("p1", "p2", "p3")
COMMITTED = {"p1": 800, "p2": 600, "p3": 600}
# As in test_real_protocols: the acceptors take over, the termination protocol runs, soon.
EXTRA = {"paxos-commit": {"takeover_timeout": 300, "takeover_gap": 200},
         "3pc": {"precommit_timeout": 300, "election_timeout": 150}}
KILL = ("coordinator", "before_decision_logged")  # every vote is in, nothing announced


def rec(record: str, decides: str | None = None, **data: Any) -> Logged:
    """A hand-made log record; ``decides``: the outcome it is a decision for."""
    return Logged(record, data, decides)


def conclude(name: str, logs: dict[str, list[Logged]],
             running: tuple[str, ...] = (), **options: Any) -> tuple[str | None, str]:
    """``name``'s conclusion from hand-made logs of participants p1, p2, p3."""
    proto = get_protocol(name)
    assert isinstance(proto, CommitProtocol)
    roster = proto.roster(P, options)
    c = proto.outcome_from_logs(logs, roster, proto.make_config(P, options), running)
    return c.outcome, c.reason


def presumed(name: str, logs: dict[str, list[Logged]]) -> str | None:
    """What 2PC's rule (presumed abort from the coordinator's log) says for ``name``'s logs."""
    proto = get_protocol(name)
    assert isinstance(proto, CommitProtocol)
    roster = proto.roster(P, {})
    return CommitProtocol.outcome_from_logs(proto, logs, roster,
                                            proto.make_config(P, {})).outcome


def accepted(bal: int, **values: str) -> Logged:
    return rec("ACCEPTED", tx="T1", bal=bal, values=values)


PREPARED_ALL = {p: "prepared" for p in P}


# --- 2PC: unchanged --------------------------------------------------------------------------
def test_2pc_commits_on_the_coordinators_commit_and_otherwise_presumes_abort():
    votes = {p: [rec("PREPARED")] for p in P}
    assert conclude("2pc", {**votes, "coordinator": [rec("COMMIT", "commit")]}) == (
        "commit", "the coordinator's log has COMMIT")
    assert conclude("2pc", votes) == ("abort", "presumed abort: no COMMIT in the "
                                               "coordinator's log")
    # A participant's COMMITTED does not count: only the coordinator decides in 2PC.
    p1_committed = [rec("PREPARED"), rec("COMMITTED", "commit")]
    assert conclude("2pc", {**votes, "p1": p1_committed})[0] == "abort"
    assert conclude("2pc", votes, running=("coordinator",)) == (
        None, "the coordinator is still deciding")
    assert conclude("2pc", votes, running=("p1",))[0] == "abort"


# --- 3PC ----------------------------------------------------------------------------------
def test_3pc_commits_when_a_participant_precommitted_though_the_coordinator_never_logged_commit():
    logs = {"coordinator": [rec("START"), rec("PRECOMMIT")],
            "p1": [rec("READY"), rec("PRECOMMITTED")],
            "p2": [rec("READY")], "p3": [rec("READY")]}
    outcome, reason = conclude("3pc", logs)
    assert outcome == "commit" and "PRECOMMIT" in reason
    assert presumed("3pc", logs) == "abort"  # the old rule: money created or destroyed
    # Only the coordinator's PRECOMMIT (it died before sending PRE_COMMIT): everyone voted
    # YES, and with every node back the termination protocol commits.
    assert conclude("3pc", {**logs, "p1": [rec("READY")]})[0] == "commit"


def test_3pc_follows_a_logged_decision_and_otherwise_aborts_when_nobody_precommitted():
    ready = {p: [rec("READY")] for p in P}
    coordinator = {"coordinator": [rec("START"), rec("PRECOMMIT")]}
    committed = {**ready, **coordinator, "p2": [rec("READY"), rec("PRECOMMITTED"),
                                                  rec("COMMITTED", "commit")]}
    assert conclude("3pc", committed) == ("commit", "p2 logged COMMITTED")
    # The termination protocol aborted while p1 (pre-committed) was down: ABORT wins.
    aborted = {**ready, **coordinator, "p1": [rec("READY"), rec("PRECOMMITTED")],
               "p2": [rec("READY"), rec("ABORT", "abort")]}
    assert conclude("3pc", aborted) == ("abort", "p2 logged ABORT")
    outcome, reason = conclude("3pc", {**ready, "coordinator": [rec("START")]})
    assert outcome == "abort" and "no node pre-committed" in reason
    # Decided both ways (a partition split the termination protocol): no guess.
    split = {**committed, "p3": [rec("READY"), rec("ABORT", "abort")]}
    outcome, reason = conclude("3pc", split)
    assert outcome is None and "disagree" in reason
    # A heuristic record says what happened to the work, not what was decided.
    heuristic = {**ready, "coordinator": [rec("START")],
                 "p2": [rec("READY"), rec("COMMITTED", "commit", heuristic="commit")]}
    assert conclude("3pc", heuristic)[0] == "abort"


def test_3pc_waits_while_a_node_may_still_terminate():
    logs = {"coordinator": [rec("START"), rec("PRECOMMIT")],
            "p1": [rec("READY"), rec("PRECOMMITTED")], "p2": [rec("READY")]}
    outcome, reason = conclude("3pc", logs, running=("p2",))
    assert outcome is None and "p2 still running" in reason
    decided = {**logs, "p2": [rec("READY"), rec("ABORT", "abort")]}
    assert conclude("3pc", decided, running=("p3",)) == ("abort", "p2 logged ABORT")


def test_a_decision_is_a_record_logged_as_one_whatever_its_name():
    """What makes a record a decision is its ``decides``, as the protocol logged it (the
    one place that says so), not its name: 3PC and Paxos Commit read no list of names."""
    ready = {p: [rec("READY")] for p in P}
    undecided = {**ready, "coordinator": [rec("START")],
                 "p1": [rec("READY"), rec("COMMITTED")]}  # named so, not logged as one
    outcome, reason = conclude("3pc", undecided)
    assert outcome == "abort" and "no node pre-committed" in reason
    renamed = {**undecided, "p2": [rec("READY"), rec("SETTLED", "commit")]}
    assert conclude("3pc", renamed) == ("commit", "p2 logged SETTLED")
    assert conclude("paxos-commit", {"a2": [rec("LEARNT", "abort")]}) == (
        "abort", "a2 logged LEARNT")
    # 3PC's END is no decision: it follows the coordinator's forced COMMIT.
    assert conclude("3pc", {**ready, "coordinator": [rec("START"), rec("PRECOMMIT"),
                                                     rec("COMMIT", "commit"), rec("END")]}
                    ) == ("commit", "coordinator logged COMMIT")


def test_the_recovery_reads_a_decision_back_from_the_stores(tmp_path):
    """A store keeps what each record decides, and a recovery reads it back: the
    coordinator's log file (a dead PostgreSQL system's owner row names it) and a
    participant's SQLite database. A line an older txlib wrote without the field is read
    as deciding nothing, and 2PC's rule (the coordinator's COMMIT by name) still holds."""
    from txlib.real.postgres import OwnerRow, dead_owner_conclusion
    from txlib.real.stores import FileLog, SqliteAccount, sqlite_create

    gid = "txlib:deadbeef:p2:credit:1:T7"
    setup = '{"participants": ["p1", "p2", "p3"], "options": {}}'
    path = tmp_path / "coordinator.log"
    log = FileLog(path)
    log.append("T7", "COMMIT", {"tx": "T7"}, True, "commit", 1)
    log.close()
    for name in ("3pc", "paxos-commit"):
        row = OwnerRow("here", 1, str(path), name, setup)
        assert dead_owner_conclusion(row, gid) == Conclusion(
            "commit", "coordinator logged COMMIT"), name
    path.write_text('{"tx":"T7","record":"COMMIT","data":{},"forced":true,"time":1}\n')
    assert dead_owner_conclusion(OwnerRow("here", 1, str(path), "3pc", setup), gid
                                 ).outcome is None
    assert dead_owner_conclusion(OwnerRow("here", 1, str(path), "2pc", setup), gid) == \
        Conclusion("commit", "the coordinator's log has COMMIT")
    sqlite_create(tmp_path / "p2.db", "p2", 500)
    acct = SqliteAccount(tmp_path / "p2.db", "p2")
    try:
        acct.append("T7", "PREPARED", {"tx": "T7", "op": "credit", "amount": 1}, True, None, 1)
        acct.append("T7", "ABORT", {"tx": "T7"}, False, "abort", 2)
        records = acct.read()["T7"]
    finally:
        acct.close()
    assert logged_decision({"p2": logged(records)}) == Conclusion("abort", "p2 logged ABORT")


# --- Paxos Commit -----------------------------------------------------------------------------
def test_paxos_commit_commits_when_a_majority_accepted_prepared_in_every_instance():
    logs = {"coordinator": [], **{p: [rec("PREPARED")] for p in P},
            "a1": [accepted(0, **PREPARED_ALL)], "a2": [accepted(0, **PREPARED_ALL)]}
    outcome, reason = conclude("paxos-commit", logs)
    assert outcome == "commit" and "every instance chose Prepared" in reason
    assert presumed("paxos-commit", logs) == "abort"  # what the old rule did


def test_paxos_commit_cannot_tell_when_only_a_minority_accepted_prepared():
    logs = {**{p: [rec("PREPARED")] for p in P}, "a1": [accepted(0, **PREPARED_ALL)]}
    outcome, reason = conclude("paxos-commit", logs)
    assert outcome is None
    assert reason == ("no value chosen yet for p1, p2, p3's instance: start the system "
                      "again so that a leader can finish")
    # Five acceptors: two of them are not a majority either.
    five = {**logs, "a2": [accepted(0, **PREPARED_ALL)]}
    assert conclude("paxos-commit", five, acceptors=5)[0] is None
    assert conclude("paxos-commit", {**five, "a5": [accepted(0, **PREPARED_ALL)]},
                    acceptors=5)[0] == "commit"


def test_paxos_commit_aborts_when_one_instance_chose_aborted():
    mixed = {"p1": "prepared", "p2": "aborted", "p3": "prepared"}
    logs = {"a1": [accepted(0, **mixed)], "a3": [accepted(0, **mixed)],
            "a2": [accepted(0, **PREPARED_ALL)]}
    assert conclude("paxos-commit", logs) == (
        "abort", "p2's instance chose Aborted (a majority of acceptors accepted it)")
    # Chosen Aborted in a higher ballot, by a leader that found nothing accepted for p3.
    later = {"a1": [accepted(0, p1="prepared", p2="prepared"), accepted(5, p3="aborted")],
             "a2": [accepted(0, p1="prepared", p2="prepared"), accepted(5, p3="aborted")]}
    assert conclude("paxos-commit", later)[0] == "abort"


def test_paxos_commit_counts_a_majority_only_within_one_ballot():
    # p3's Prepared was accepted by a1 in ballot 0 and by a2 in ballot 5: two acceptors,
    # but in different ballots, so it is not known chosen.
    logs = {"a1": [accepted(0, **PREPARED_ALL)],
            "a2": [accepted(0, p1="prepared", p2="prepared"), accepted(5, p3="prepared")]}
    outcome, reason = conclude("paxos-commit", logs)
    assert outcome is None and "p3's instance" in reason
    # Accepted by a majority in ballot 5: chosen.
    logs["a3"] = [accepted(5, p3="prepared")]
    assert conclude("paxos-commit", logs)[0] == "commit"
    # Records of nodes that are not acceptors count for nothing.
    fake = {"a1": [accepted(0, **PREPARED_ALL)], "p1": [accepted(0, **PREPARED_ALL)],
            "coordinator": [accepted(0, **PREPARED_ALL)]}
    assert conclude("paxos-commit", fake)[0] is None


def test_paxos_commit_aborts_when_a_participant_never_voted_prepared():
    two = {"p1": "prepared", "p3": "prepared"}
    logs = {"p1": [rec("PREPARED")], "p3": [rec("PREPARED")],
            "a1": [accepted(0, **two)], "a2": [accepted(0, **two)]}
    assert conclude("paxos-commit", logs) == (
        "abort", "p2 never voted Prepared (no PREPARED in its log) and no acceptor "
                 "accepted it: its instance can only choose Aborted")
    # Still at work, p2 may yet vote; and if an acceptor accepted its Prepared, it voted
    # (its record may be lost), so a leader may still choose Prepared.
    assert conclude("paxos-commit", logs, running=("p2",))[0] is None
    assert conclude("paxos-commit", {**logs, "a3": [accepted(0, p2="prepared")]})[0] is None
    # Both rules read the acceptors' ACCEPTED records alike: another node's, or one whose
    # values are not a mapping, counts for nothing.
    assert conclude("paxos-commit", {**logs, "p1": [rec("PREPARED"),
                                                    accepted(0, p2="prepared")]})[0] == "abort"
    garbled = rec("ACCEPTED", tx="T1", bal=0, values=["p2", "prepared"])
    assert conclude("paxos-commit", {**logs, "a3": [garbled]})[0] == "abort"


def test_paxos_commit_follows_a_decision_any_node_logged():
    # An acceptor that took over logged COMMIT; the coordinator's log has none.
    logs = {"coordinator": [rec("LEAD", bal=4)], "a1": [rec("LEAD", bal=1),
                                                          rec("COMMIT", "commit")],
            "p3": [rec("PREPARED")]}
    assert conclude("paxos-commit", logs) == ("commit", "a1 logged COMMIT")
    assert presumed("paxos-commit", logs) == "abort"
    # A participant that aborted before voting: its instance can never choose Prepared.
    assert conclude("paxos-commit", {"p2": [rec("ABORT", "abort")]}) == (
        "abort", "p2 logged ABORT")
    # Nodes still running do not matter: a chosen value never changes.
    chosen = {"a1": [accepted(0, **PREPARED_ALL)], "a2": [accepted(0, **PREPARED_ALL)]}
    assert conclude("paxos-commit", chosen, running=("coordinator", "p1"))[0] == "commit"


# --- end to end -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("protocol", ["paxos-commit", "3pc"])
def test_close_commits_a_dead_participant_whose_peers_committed_without_the_coordinator(
        protocol, backend, timeouts, tmp_path, request):
    """kill -9 of the coordinator once every vote is in, before it logs COMMIT (and no
    restart); Paxos Commit's acceptor takes over (3PC: the termination protocol) and
    commits p1 and p2. p3 is killed as COMMIT (3PC: DO_COMMIT) reaches it, before it
    forces COMMITTED: nothing of the outcome is on its disk, and its row stays prepared.
    close() must commit it, as the logs of the others say; the coordinator's log has no
    COMMIT, so 2PC's presumed abort would have rolled it back and destroyed p3's 100."""
    pg = request.getfixturevalue("pg_server") if backend == "postgres" else None
    system = RealSystem(3, backend, protocol=protocol, postgres=pg, restart=False,
                        options={**timing_for(protocol, timeouts), **EXTRA[protocol]},
                        workdir=tmp_path)
    try:
        system.start()
        system.begin("T1", crash=[KILL, ("p3", "before_commit_forced")])
        system.wait(lambda s: {"coordinator", "p3"} <= s.down and all(
            s.state(p, "T1") == "COMMITTED" for p in ("p1", "p2")), 20,
            "p1 and p2 to commit without the coordinator, p3 killed")
        assert [(i.participant, i.tx) for i in system.recovery_scan()] == [("p3", "T1")]
        logs = system.read_logs("T1")
        assert "COMMIT" not in {r.record for r in logs["coordinator"]}
        held = {r.record for r in logs["p3"]}  # prepared (3PC: and pre-committed), no more
        assert held == ({"PREPARED"} if protocol == "paxos-commit"
                        else {"READY", "PRECOMMITTED"}), logs["p3"]
        assert system.balances() == {"p1": 800, "p2": 600, "p3": 500}  # 100 in flight

        # The old rule, 2PC's presumed abort, on these very logs: roll p3 back.
        plain = {n: logged(rs) for n, rs in system.read_decisions("T1").items()}
        config = system.protocol.make_config(system.participants, system.options)
        old = CommitProtocol.outcome_from_logs(system.protocol, plain, system.roster, config)
        assert old.outcome == "abort"
        assert decision(system, "T1").outcome == "commit"
        # p1 decided, and its store kept that the record it wrote is its decision.
        assert logged_decision(plain) == Conclusion("commit", "p1 logged COMMITTED")
        if protocol == "paxos-commit":
            # The acceptors' ACCEPTED records alone say so too: every instance chose
            # Prepared (a majority of acceptors in ballot 0).
            votes = {n: [r for r in rs if r.record == "ACCEPTED"]
                     for n, rs in plain.items()}
            new = system.protocol.outcome_from_logs(votes, system.roster, config)
            assert new.outcome == "commit" and "every instance chose Prepared" in new.reason
    finally:
        with pytest.warns(InDoubtWarning, match=r"T1 at p3.*: committed \("):
            report = system.close()
    assert len(report) == 1 and report[0].startswith("T1 at p3, in ")
    assert system.balances() == COMMITTED  # money conserved across the databases
    assert system.recovery_scan() == []


def test_the_scan_leaves_paxos_commit_in_doubt_while_no_value_is_chosen(timeouts, tmp_path):
    """Two of the three acceptors are down: every participant votes Prepared, but only a1
    accepts, so no instance has a value chosen and nobody can decide. The scan must not
    guess (presumed abort would roll all three back); once a2 and a3 are back, a leader
    finds a1's Prepared in every instance and the protocol commits."""
    system = RealSystem(3, protocol="paxos-commit", restart=False, workdir=tmp_path,
                        options={**timing_for("paxos-commit", timeouts),
                                 **EXTRA["paxos-commit"]})
    with system:
        for acceptor in ("a2", "a3"):
            system.kill(acceptor)
        system.begin("T1")
        system.wait(lambda s: all(s.state(p, "T1") == "PREPARED" for p in s.participants)
                    and [r.record for r in s.read_logs("T1")["a1"]][:1] == ["ACCEPTED"],
                    20, "every participant prepared, a1 accepted")
        lines = system.recover(only_down=False)
        assert len(lines) == 3 and all(line.endswith(
            ": left in doubt (no value chosen yet for p1, p2, p3's instance: start the "
            "system again so that a leader can finish)") for line in lines), lines
        assert sorted(i.participant for i in system.recovery_scan()) == list(P)
        for acceptor in ("a2", "a3"):
            system.restart(acceptor)
        assert system.settle("T1", 30), system.describe()
        run = system.result("T1")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.balances == COMMITTED and system.closing_report == []


def test_a_node_that_is_up_and_has_not_reported_the_transaction_counts_as_at_work():
    """Its PREPARE may be on its way: Paxos Commit's "never voted" rule must wait for it,
    or a recovery could roll back work the protocol then commits."""
    from types import SimpleNamespace

    from txlib.real.recovery import running

    machine = SimpleNamespace(terminal=frozenset({"COMMITTED", "ABORTED"}))
    system = SimpleNamespace(
        handles={"p1": SimpleNamespace(up=True, status={}),  # not reported yet
                 "p2": SimpleNamespace(up=True, status={"T1": {"state": "PREPARED"}}),
                 "p3": SimpleNamespace(up=True, status={"T1": {"state": "COMMITTED"}}),
                 "a1": SimpleNamespace(up=False, status={})},
        machines={n: machine for n in ("p1", "p2", "p3", "a1")})
    assert running(system, "T1") == {"p1", "p2"}
    logs = {"p2": [rec("PREPARED")], "p3": [rec("PREPARED")]}
    assert conclude("paxos-commit", logs, running=("p1",))[0] is None
    assert conclude("paxos-commit", logs)[0] == "abort", "the rule it waits for"


def test_a_node_restarted_as_a_transaction_begins_is_told_of_it(timeouts, tmp_path):
    """The coordinator is restarted, and T1 begins before its new process has connected
    to the runner. The runner's start of T1 was dropped, so the coordinator never heard
    of T1 (its log has nothing about it) and yet counted as at work on it forever: the
    recovery judged "the coordinator is still deciding", and the run stayed blocked
    with the nodes disagreeing (every participant aborted alone). A node still starting
    is told once it is ready, and takes part in T1 as it would had it been up."""
    with RealSystem(3, restart=False, options=timeouts, workdir=tmp_path) as system:
        system.kill("coordinator")
        system.restart("coordinator")
        assert system.handles["coordinator"].conn is None, "it is still starting"
        system.begin("T1")
        assert system.settle("T1", 20), system.describe()
        assert decision(system, "T1") == Conclusion("commit",
                                                    "the coordinator's log has COMMIT")
        run = system.result("T1")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.balances == COMMITTED
