"""Every commit protocol over real processes: 3PC and Paxos Commit run their own roles,
unchanged, with real databases, fsynced logs and wall-clock timers, and are judged by
their own ``judge``. A kill -9 of the coordinator after the votes blocks 2PC until it
returns; Paxos Commit's acceptors and 3PC's termination protocol decide without it."""

from __future__ import annotations

import os
import select
import time
from typing import Any

import pytest

import txlib
from txlib.errors import TxlibError
from txlib.protocols import get_protocol
from txlib.real import RealSystem
from txlib.real.roles import real_protocols
from txlib.real.system import timing_for

PROTOCOLS = ("3pc", "paxos-commit")
COMMITTED = {"p1": 800, "p2": 600, "p3": 600}
# Paxos Commit: an asked acceptor takes over 300 ms after the leader went silent.
PAXOS = {"takeover_timeout": 300, "takeover_gap": 200}
# 3PC: a pre-committed participant runs the termination protocol after 300 ms.
THREE_PC = {"precommit_timeout": 300, "election_timeout": 150}
EXTRA = {"3pc": THREE_PC, "paxos-commit": PAXOS, "2pc": {}}
KILL = ("coordinator", "before_decision_logged")  # every vote is in, nothing announced


def per_node(trace: Any) -> dict[str, list[tuple[str, str]]]:
    """Each node's own states, log writes, votes, decisions and locks, in order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for e in trace:
        if e.kind in ("state", "log", "decision", "vote", "lock", "unlock") and e.node:
            out.setdefault(e.node, []).append((e.kind, e.detail))
    return out


def gone(pids: list[int], timeout: float = 10.0) -> bool:
    """Every process of ``pids`` has ended (waits for each, at most ``timeout`` s)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            if not select.select([fd], [], [], timeout)[0]:
                return False
        finally:
            os.close(fd)
    return True


def prepared_gids(pg: Any) -> list[str]:
    import psycopg

    with psycopg.connect(pg.conninfo + " dbname=postgres", autocommit=True) as conn:
        return [g for (g,) in conn.execute("SELECT gid FROM pg_prepared_xacts")]


def sends(system: RealSystem, kind: str) -> dict[str, int]:
    """How many messages of type ``kind`` each node has sent so far."""
    out: dict[str, int] = {}
    for events in system.events().values():
        for e in events:
            if e.get("k") == "send" and e["m"]["type"] == kind:
                out[e["n"]] = out.get(e["n"], 0) + 1
    return out


def test_the_real_protocols_are_the_registered_commit_protocols_that_prepare():
    assert set(real_protocols()) >= {"2pc", "3pc", "paxos-commit"}
    assert not {"saga", "tcc", "naive"} & set(real_protocols())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_transfer_commits_over_real_processes(protocol, backend, timeouts, request):
    """One process per node of the protocol's roster (Paxos Commit's acceptors too, each
    with a log file it fsyncs); the run is judged by the protocol's own judge; nothing
    is left behind: no process, no prepared transaction, no work folder."""
    pg = request.getfixturevalue("pg_server") if backend == "postgres" else None
    system = RealSystem(3, backend, protocol=protocol, postgres=pg,
                        options={**timing_for(protocol, timeouts), **EXTRA[protocol]})
    with system:
        assert system.nodes == get_protocol(protocol).roster(system.participants,
                                                             system.options).names
        pids = [h.pid for h in system.handles.values()]
        system.begin("T1")
        assert system.settle("T1", 30), system.describe()
        system.stop_nodes()
        run = system.result("T1")
    assert run.protocol is get_protocol(protocol)
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.protocol.judge(run.history()).outcome == "committed"
    assert run.balances == COMMITTED
    assert run.in_doubt == {"p1": (), "p2": (), "p3": ()} and run.locked == ()
    assert all(run.fsyncs[p] >= 2 for p in run.participants)
    if protocol == "3pc":  # its own records, under its own names
        assert [r.record for r in run.logs["p2"]] == ["READY", "PRECOMMITTED", "COMMITTED"]
        assert [r.record for r in run.logs["coordinator"]][:3] == ["START", "PRECOMMIT",
                                                                   "COMMIT"]
    else:  # the votes are accepted, forced, by a majority of acceptors
        accepted = [a for a in ("a1", "a2", "a3")
                    if [r.record for r in run.logs[a]] == ["ACCEPTED"]]
        assert len(accepted) >= 2 and all(run.fsyncs[a] >= 2 for a in accepted)
    assert run.summary().startswith(f"real {protocol.upper()} over {backend}")
    # The protocol's own code: every node's sequence is the simulator's.
    assert per_node(run.trace) == per_node(txlib.simulate(protocol, participants=3).trace)
    assert gone(pids), "a node process outlived its system"
    assert not system.workdir.exists()
    if pg is not None:
        assert prepared_gids(pg) == []


def test_a_dead_coordinator_blocks_2pc_but_not_paxos_commit(timeouts):
    """kill -9 of the coordinator once every vote is in and before it announces the
    outcome, and no restart. 2PC's participants stay in doubt, their rows held, asking
    again and again, until the coordinator returns. Paxos Commit's participants ask the
    acceptors; one takes over with a higher ballot, learns that every instance chose
    Prepared, and every live participant commits without the coordinator."""
    # 2PC: blocked.
    with RealSystem(3, options=timeouts, restart=False) as system:
        system.begin("T1", crash=KILL)
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
        system.wait(lambda s: all(sends(s, "DECISION_REQ").get(p, 0) >= 3
                                  for p in s.participants), 10, "three asks each")
        assert {p: system.state(p, "T1") for p in system.participants} == dict.fromkeys(
            system.participants, "PREPARED")
        assert all(i["locked"] and i["in_doubt"] == ["T1"]
                   for i in system.inspect().values())
        system.restart("coordinator")  # only its return ends the doubt: presumed abort
        assert system.settle("T1", 20), system.describe()
        blocked = system.result("T1")
    assert blocked.outcome == "aborted" and blocked.problems() == [], blocked.summary()

    # Paxos Commit: the live participants decide while the coordinator is dead.
    with RealSystem(3, protocol="paxos-commit",
                    options={**timing_for("paxos-commit", timeouts), **PAXOS},
                    restart=False) as system:
        system.begin("T1", crash=KILL)
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "COMMITTED" for p in s.participants), 20,
            "the participants to commit without the coordinator")
        assert "coordinator" in system.down
        assert system.balances() == COMMITTED
        assert not any(i["locked"] for i in system.inspect().values())
        leaders = {e.node for e in system.trace("T1")
                   if e.kind == "state" and e.detail == "LEADING"}
        assert leaders and leaders <= {"a1", "a2", "a3"}
        system.restart("coordinator")  # it learns the outcome from the acceptors
        assert system.settle("T1", 20), system.describe()
        run = system.result("T1")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.crashes[0]["node"] == "coordinator"


def test_a_dead_3pc_coordinator_is_replaced_by_the_termination_protocol(timeouts):
    """kill -9 of the 3PC coordinator after PRECOMMIT, before COMMIT, and no restart:
    the pre-committed participants time out, ask each other for their states, and the
    first of them leads them to commit."""
    with RealSystem(3, protocol="3pc", options={**timing_for("3pc", timeouts), **THREE_PC},
                    restart=False) as system:
        system.begin("T1", crash=KILL)
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "COMMITTED" for p in s.participants), 20,
            "the termination protocol to commit")
        assert system.balances() == COMMITTED
        assert set(sends(system, "STATE_REQ")) & {"p1", "p2", "p3"}  # termination ran
        system.restart("coordinator")  # it asks, and learns the outcome
        assert system.settle("T1", 20), system.describe()
        run = system.result("T1")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert [(c["node"], c["how"]) for c in run.crashes] == [KILL]


def test_lesson_12s_kill_after_the_votes_comes_after_3pcs_pre_commit_round():
    """Lesson 12's experiment 3b said each coordinator is killed 'once every vote is in,
    before it announces the outcome'. Under 3PC that named point comes after the
    pre-commit round, which is why its participants commit (none pre-committed, lesson
    04's rule aborts). The lesson's table now shows what each coordinator had sent."""
    from txlib.course.l12_real_databases import coordinator_dies_after_the_votes

    two_pc = coordinator_dies_after_the_votes("2pc")
    three_pc = coordinator_dies_after_the_votes("3pc")
    assert two_pc[:2] == ("2pc", "PREPARE") and two_pc[5] == "aborted", two_pc
    assert three_pc[:2] == ("3pc", "CAN_COMMIT, PRE_COMMIT"), three_pc
    assert three_pc[5] == "committed", three_pc


@pytest.mark.parametrize("point, after", [("between_prepares", "ABORTED"),
                                          ("between_commits", "COMMITTED"),
                                          ("before_decision_logged", "PREPARED")])
def test_cooperative_termination_frees_the_in_doubt_when_a_peer_knows(point, after, timeouts):
    """Lesson 12's first exercise said that, with the coordinator kept down, only the
    coordinator can release an in-doubt participant's row. With lesson 03's cooperative
    termination a peer that knows the outcome does: at between_prepares p2 and p3 never
    voted, at between_commits p1 committed. Only the points around the decision block."""
    with RealSystem(3, options={**timeouts, "cooperative": True}, restart=False) as system:
        system.begin("T1", crash=("coordinator", point))
        if after == "PREPARED":
            system.wait(lambda s: "coordinator" in s.down and all(
                s.state(p, "T1") == "PREPARED" for p in s.participants), 20, "in doubt")
            end = time.monotonic() + 1.0
            while time.monotonic() < end:  # they keep asking each other: nobody knows
                system.pump(end - time.monotonic())
        else:
            system.wait(lambda s: all(s.state(p, "T1") == after for p in s.participants),
                        20, f"every participant {after} without the coordinator")
        assert "coordinator" in system.down
        assert {p: system.state(p, "T1") for p in system.participants} == dict.fromkeys(
            system.participants, after)
        held = [p for p, info in system.inspect().items() if info["locked"]]
        assert held == (list(system.participants) if after == "PREPARED" else [])
        system.stop_nodes()
        system.recover(only_down=False)


def test_bad_protocol_choices_are_refused_before_anything_starts():
    with pytest.raises(TxlibError, match=r"cannot run over real processes.*valid choices"):
        RealSystem(3, protocol="saga")
    with pytest.raises(TxlibError, match="unknown protocol for real runs '3PC'"):
        RealSystem(3, protocol="3PC")
    with pytest.raises(TxlibError, match="acceptors"):
        RealSystem(3, protocol="paxos-commit", options={"acceptors": 2})
    with RealSystem(3, protocol="paxos-commit") as system, \
            pytest.raises(TxlibError, match="a1 is an acceptor: it has no named crash"):
        system.begin("T1", crash=("a1", "after_vote_sent"))


# --- the crash loop on every protocol ------------------------------------------------------
def test_random_crashes_fit_every_role_and_the_life_each_node_is_in():
    """The crash loop's crashes: a named point only for a role that has named points
    (an acceptor is killed at a moment), and every crash aimed at the life its node is
    living now or a later one, never at a life that is over (such a crash never fires)."""
    import random
    from types import SimpleNamespace

    from txlib.real.chaos import random_crashes
    from txlib.real.crashpoints import as_crashes

    roster = get_protocol("paxos-commit").roster(("p1", "p2"), {})
    lives = {n: 2 + i for i, n in enumerate(roster.names)}  # every node restarted before
    system = SimpleNamespace(nodes=roster.names, roster=roster,
                             handles={n: SimpleNamespace(incarnation=k) for n, k in lives.items()})
    acceptors = [n for n, role in roster.roles.items() if role == "acceptor"]
    assert acceptors
    hit: set[str] = set()
    for seed in range(300):
        for power in (False, True):
            crashes = random_crashes(random.Random(seed), system, power)  # type: ignore[arg-type]
            as_crashes(crashes, roster.names, roster.roles)  # each one valid for its role
            for c in crashes:
                assert c.incarnation >= lives[c.node], c
                if c.node in acceptors:
                    assert c.point is None and c.after is not None, c
                    hit.add(c.node)
    assert hit == set(acceptors)


def test_a_crash_loop_runs_paxos_commit_with_its_acceptors_killed_too():
    from txlib.real.chaos import crash_loop

    report = crash_loop(12, protocol="paxos-commit", seed=1)
    assert report.problems == [], report.problems[:5]
    assert report.fired >= 12, report
    roles = get_protocol("paxos-commit").roster(("p1", "p2", "p3"), {}).roles
    killed = {c["node"] for run in report.runs for c in run.crashes}
    assert any(roles[node] == "acceptor" for node in killed), killed
