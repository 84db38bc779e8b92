"""The real runtime with PostgreSQL participants: PREPARE TRANSACTION, COMMIT PREPARED,
ROLLBACK PREPARED on a throwaway local cluster, with kill -9 and restarts.

Skipped (with the reason) without PostgreSQL or psycopg, except under CI, where they
must run (see conftest.py).
"""

from __future__ import annotations

import json
import os
import random
import socket
from pathlib import Path
from typing import Any

import pytest

from txlib.errors import TxlibError
from txlib.protocols.paxos_commit import PaxosCommit
from txlib.protocols.three_phase import ThreePhaseCommit
from txlib.protocols.two_phase import TwoPhaseCommit
from txlib.real import (
    CRASH_POINTS,
    EXPECTED_OUTCOME,
    Crash,
    PostgresServer,
    RealSystem,
    run_transfer,
)
from txlib.real.chaos import crash_loop
from txlib.real.postgres import free_port, wal_syncs
from txlib.real.system import timing_for

NODE_OF_ROLE = {"coordinator": "coordinator", "participant": "p2"}
ALL_POINTS = [(NODE_OF_ROLE[role], point) for role, points in CRASH_POINTS.items()
              for point in points]


def prepared(pg: PostgresServer) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(pg.conninfo + " dbname=postgres", autocommit=True) as conn:
        return sorted(conn.execute("SELECT database, gid FROM pg_prepared_xacts").fetchall())


def test_a_transfer_commits_over_postgres(pg_server, timeouts):
    before = wal_syncs(pg_server.conninfo)
    run = run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.balances == {"p1": 800, "p2": 600, "p3": 600}
    assert prepared(pg_server) == []
    # PREPARE TRANSACTION and COMMIT PREPARED each wait for a WAL flush...
    assert {p: run.fsyncs[p] for p in run.participants} == {"p1": 2, "p2": 2, "p3": 2}
    # ...and the server really synced: at least once for the votes and once for the
    # commits (group commit may let one fsync carry several participants' records).
    assert wal_syncs(pg_server.conninfo) - before >= 2
    # COMMIT PREPARED is the COMMITTED record: a restarted node reads it back as such.
    assert [r.record for r in run.logs["p1"]] == ["PREPARED", "COMMITTED"]


@pytest.mark.parametrize(("node", "point"), ALL_POINTS, ids=[p for _, p in ALL_POINTS])
def test_kill_9_at_each_protocol_point_then_restart(pg_server, node, point, timeouts):
    run = run_transfer(3, "postgres", postgres=pg_server, crash=(node, point),
                       options=timeouts)
    assert run.problems() == [], run.summary()
    assert run.outcome == EXPECTED_OUTCOME[point], run.summary()
    assert [(c["node"], c["how"]) for c in run.crashes] == [(node, point)]
    assert prepared(pg_server) == []


def test_in_doubt_is_visible_holds_its_row_lock_and_recovery_resolves_it(pg_server,
                                                                       timeouts):
    import psycopg

    with RealSystem(3, "postgres", postgres=pg_server, options=timeouts,
                    restart=False) as system:
        system.begin("T1", crash=("coordinator", "before_decision_logged"))
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
        in_doubt = prepared(pg_server)
        assert [db for db, _ in in_doubt] == ["txlib_p1", "txlib_p2", "txlib_p3"]
        assert all(gid.endswith(":T1") for _, gid in in_doubt)
        # Another session that tries to change the row waits on the in-doubt
        # transaction's lock (bounded here by lock_timeout).
        with psycopg.connect(pg_server.conninfo + " dbname=txlib_p2", autocommit=True) as s2:
            s2.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                s2.execute("UPDATE accounts SET balance = balance + 1 WHERE name = 'p2'")
            # Reading is not blocked, and sees the balance before the transfer.
            assert s2.execute("SELECT balance FROM accounts").fetchone()[0] == 500
            # Killing a participant does not release anything: PostgreSQL keeps it.
            system.kill("p2")
            assert len(prepared(pg_server)) == 3
            system.restart("p2")
            system.wait(lambda s: s.state("p2", "T1") == "PREPARED", 10, "p2 in doubt")
            # The recovering coordinator finds no decision: presumed abort.
            system.restart("coordinator")
            assert system.settle("T1", 20)
            assert prepared(pg_server) == []
            s2.execute("UPDATE accounts SET balance = balance + 0 WHERE name = 'p2'")
        run = system.result("T1")
    assert run.outcome == "aborted" and run.problems() == [], run.summary()
    assert run.balances == run.before


def test_randomized_crash_loop_postgres(pg_server):
    seed = int(os.environ.get("TXLIB_CRASH_SEED", random.randrange(1_000_000)))
    report = crash_loop(40, seed=seed, backend="postgres", postgres=pg_server)
    assert report.problems == [], f"seed {seed}: {report.problems[:5]}"
    assert report.fired >= 40, f"seed {seed}: {report}"
    assert prepared(pg_server) == []


# --- bad configuration --------------------------------------------------------------------
def test_an_unreachable_server_says_so(pg_server):
    port = free_port()
    with pytest.raises(TxlibError, match=rf"cannot connect to PostgreSQL at 127\.0\.0\.1:"
                                         rf"{port} .*Start the server there"):
        run_transfer(3, "postgres", postgres=f"host=127.0.0.1 port={port} user=postgres")


def test_max_prepared_transactions_0_says_what_to_set(pg_server):
    with PostgresServer.start(max_prepared_transactions=0, settings={"fsync": "off"}) as off, \
            pytest.raises(TxlibError, match=r"max_prepared_transactions = 0.*set "
                                            r"max_prepared_transactions to at least 3"):
        run_transfer(3, "postgres", postgres=off)


# --- a participant that cannot prepare votes NO; lost connections -------------------------
def gids_of(pg: PostgresServer, prefix: str = "txlib:") -> list[str]:
    return [gid for _, gid in prepared(pg) if gid.startswith(prefix)]


def test_no_free_prepared_transaction_slot_makes_a_participant_vote_no(pg_server, timeouts):
    """With only two of the server's 20 slots free, one participant's PREPARE
    TRANSACTION fails: it votes NO (its node does not die), and the others roll back."""
    import psycopg

    with psycopg.connect(pg_server.conninfo + " dbname=postgres", autocommit=True) as conn:
        for i in range(18):
            conn.execute("BEGIN")
            conn.execute(f"PREPARE TRANSACTION 'someone-else-{i}'")
        try:
            run = run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
        finally:
            for i in range(18):
                conn.execute(f"ROLLBACK PREPARED 'someone-else-{i}'")
    assert run.outcome == "aborted" and run.problems() == [], run.summary()
    assert run.balances == run.before
    votes = [e.detail for e in run.trace if e.kind == "vote"]
    assert sorted(votes) == ["no", "yes", "yes"]
    refused = [e.detail for e in run.trace if e.kind == "effect"]
    assert len(refused) == 1 and "maximum number of prepared transactions" in refused[0]
    assert gids_of(pg_server) == []


def test_a_transaction_name_is_bounded_before_anything_is_prepared(pg_server, timeouts):
    with RealSystem(3, "postgres", postgres=pg_server, options=timeouts) as system:
        with pytest.raises(TxlibError, match=r"tx must be at most 64 printable characters.*"
                                             r"190 characters"):
            system.begin("T" * 190)
        system.begin("T" * 64)
        assert system.settle("T" * 64, 20)
        assert system.result("T" * 64).outcome == "committed"
    assert gids_of(pg_server) == []


def terminate_backends(pg: PostgresServer, database: str) -> int:
    import psycopg

    with psycopg.connect(pg.conninfo + " dbname=postgres", autocommit=True) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid()",
                                (database,)).fetchall())


def test_a_terminated_connection_is_reopened(pg_server, timeouts):
    with RealSystem(3, "postgres", postgres=pg_server, options=timeouts) as system:
        system.begin("T1")
        assert system.settle("T1", 20)
        assert terminate_backends(pg_server, "txlib_p2") >= 1
        system.begin("T2")
        assert system.settle("T2", 20)
        run = system.result("T2")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert gids_of(pg_server) == []


def test_a_server_restart_while_in_doubt_loses_nothing(pg_server, timeouts):
    """Every participant is prepared when PostgreSQL restarts: their connections die,
    their prepared transactions survive; the nodes reconnect and commit."""
    with RealSystem(3, "postgres", postgres=pg_server, options=timeouts,
                    restart=False) as system:
        system.begin("T1", crash=("coordinator", "after_decision_logged"))
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
        pg_server.restart()
        assert len(gids_of(pg_server)) == 3
        system.restart("coordinator")
        assert system.settle("T1", 30)
        run = system.result("T1")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert gids_of(pg_server) == []


# --- heuristic outcomes ----------------------------------------------------------------------
@pytest.mark.parametrize("p2_restarts", [False, True], ids=["p2-up", "p2-restarted"])
def test_an_operators_rollback_prepared_is_reported_as_a_heuristic_rollback(
        pg_server, timeouts, p2_restarts):
    """The coordinator logged COMMIT and went down; an operator rolls p2's prepared
    transaction back by hand. When COMMIT arrives, p2 reports a heuristic rollback
    instead of dying (or, restarted, instead of staying silent); the coordinator records
    it and finishes; the run says the outcome is mixed and what was lost."""
    import psycopg

    with RealSystem(3, "postgres", postgres=pg_server, options=timeouts,
                    restart=False) as system:
        system.begin("T1", crash=("coordinator", "after_decision_logged"))
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
        if p2_restarts:
            system.kill("p2")
        (gid,) = [g for db, g in prepared(pg_server) if db == "txlib_p2"]
        with psycopg.connect(pg_server.conninfo + " dbname=txlib_p2",
                             autocommit=True) as conn:
            conn.execute(f"ROLLBACK PREPARED '{gid}'")  # the operator's heuristic decision
        if p2_restarts:
            system.restart("p2")
        system.restart("coordinator")
        assert system.settle("T1", 30), system.describe()
        system.stop_nodes()
        run = system.result("T1")
    assert run.outcome == "heuristic mixed", run.summary()
    assert run.heuristics == {"p2": "rollback"}
    assert run.balances == {"p1": 800, "p2": 500, "p3": 600}  # p2's 100 never arrived
    assert any("heuristic rollback at p2" in p for p in run.problems())
    assert [r.record for r in run.logs["coordinator"]] == ["COMMIT", "HEURISTIC", "END"]
    assert gids_of(pg_server) == []


# --- orphans, the recovery scan, and close() ---------------------------------------------------
def test_the_recovery_scan_resolves_a_participant_that_never_returns(pg_server, timeouts):
    """p2 dies after voting YES and never comes back; the coordinator commits. XA's
    recovery scan finds p2's prepared transaction (by this system's gids only) and
    commits it from the coordinator's log."""
    import psycopg

    with psycopg.connect(pg_server.conninfo + " dbname=postgres", autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute("PREPARE TRANSACTION 'txlib:not-ours:p2:credit:1:T1'")  # another's
        try:
            with RealSystem(3, "postgres", postgres=pg_server, options=timeouts,
                            restart=False) as system:
                system.begin("T1", crash=("p2", "after_vote_sent"))
                system.wait(lambda s: s.state("coordinator", "T1") == "COMMITTED" and all(
                    s.state(p, "T1") == "COMMITTED" for p in ("p1", "p3"))
                    and "p2" in s.down, 10, "commit, with p2 known down")
                (found,) = system.recovery_scan()
                assert (found.participant, found.tx, found.where) == ("p2", "T1", "txlib_p2")
                assert found.xid_age is not None and found.xid_age >= 1
                lines = system.recover()
                assert lines == [f"{found.describe()}: committed (the coordinator's log has "
                                 "COMMIT)"]
                assert system.recovery_scan() == []
                assert system.balances() == {"p1": 800, "p2": 600, "p3": 600}
            assert gids_of(pg_server, "txlib:not-ours") == ["txlib:not-ours:p2:credit:1:T1"]
        finally:
            conn.execute("ROLLBACK PREPARED 'txlib:not-ours:p2:credit:1:T1'")


def test_close_resolves_what_is_in_doubt_and_says_so(pg_server, timeouts):
    from txlib.real.system import InDoubtWarning

    system = RealSystem(3, "postgres", postgres=pg_server, options=timeouts,
                        restart=False).start()
    system.begin("T1", crash=("coordinator", "before_decision_logged"))
    system.wait(lambda s: "coordinator" in s.down and all(
        s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
    workdir = system.workdir
    with pytest.warns(InDoubtWarning, match=r"T1 at p1.*rolled back \(presumed abort"):
        report = system.close()
    assert len(report) == 3 and not workdir.exists()
    assert gids_of(pg_server) == []


def test_a_killed_owner_does_not_leave_its_cluster_running(tmp_path):
    """A process that started a throwaway cluster is killed with SIGKILL: its watchdog
    stops the cluster and removes its folder."""
    import signal
    import subprocess
    import sys
    import time

    root = str(Path(__file__).resolve().parents[2])
    code = ("import sys, time; from txlib.real import PostgresServer; "
            "pg = PostgresServer.start(); print(pg.directory, flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert proc.stdout is not None
    directory = Path(proc.stdout.readline().strip())
    pid = int((directory / "data" / "postmaster.pid").read_text().split()[0])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 30
    while (directory.exists() or _alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not directory.exists() and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- XA's purpose: different databases in one transaction --------------------------------------
MIXED = {"p1": "postgres", "p2": "sqlite", "p3": "postgres"}


def test_sqlite_and_postgres_participants_commit_one_transaction(pg_server, timeouts):
    run = run_transfer(3, MIXED, postgres=pg_server, options=timeouts)
    assert run.backend == "sqlite+postgres"
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.balances == {"p1": 800, "p2": 600, "p3": 600}
    assert gids_of(pg_server) == []


@pytest.mark.parametrize("crash", [
    ("coordinator", "before_decision_logged", False),
    ("coordinator", "after_decision_logged", True),
    ("p2", "after_vote_sent", True),
    ("p1", "after_vote_sent", False),
], ids=lambda c: f"{c[0]}-{c[1]}{'-power' if c[2] else ''}")
def test_a_mixed_transaction_survives_kills_and_power_cuts(pg_server, timeouts, crash):
    """One SQLite and two PostgreSQL participants, the coordinator or a participant
    killed or powered off (the SQLite one: PostgreSQL's power is the server's)."""
    node, point, power = crash
    run = run_transfer(3, MIXED, postgres=pg_server, options=timeouts, power_cuts=True,
                       crash=Crash(node, point=point, power=power))
    assert run.problems() == [], run.summary()
    assert run.outcome == EXPECTED_OUTCOME[point]
    assert gids_of(pg_server) == []


def test_a_mixed_system_refuses_what_one_of_its_databases_cannot_do(pg_server, timeouts):
    with pytest.raises(TxlibError, match="needs SQLite participants"):
        RealSystem(3, MIXED, postgres=pg_server, no_fsync=["PREPARED"])
    with pytest.raises(TxlibError, match=r"not for \['p3'\]"):
        RealSystem(3, {"p1": "sqlite", "p2": "postgres"}, postgres=pg_server)
    with RealSystem(3, MIXED, postgres=pg_server, options=timeouts,
                    power_cuts=True) as system, \
            pytest.raises(TxlibError, match="cannot cut the power of p1"):
        system.power_cut(["p1"])


# --- the preflight, and databases scoped to their owner --------------------------------------
def test_the_preflight_refuses_fsync_off_and_warns_about_weaker_settings(pg_server):
    from txlib.real.postgres import judge_settings

    safe = {"max_prepared_transactions": "20", "fsync": "on", "synchronous_commit": "on",
            "full_page_writes": "on"}
    assert judge_settings(safe, 3) == ([], [])
    refusals, warnings_ = judge_settings({**safe, "fsync": "off"}, 3)
    assert len(refusals) == 1 and "fsync = off" in refusals[0] and warnings_ == []
    refusals, warnings_ = judge_settings({**safe, "full_page_writes": "off",
                                          "synchronous_commit": "off"}, 3)
    assert refusals == [] and len(warnings_) == 2
    assert "torn page" in warnings_[0] and "synchronous_commit = off" in warnings_[1]


def test_fsync_off_on_a_real_server_is_refused(pg_server):
    with PostgresServer.start(settings={"fsync": "off"}) as off, \
            pytest.raises(TxlibError, match=r"cannot be used: it has fsync = off"):
        run_transfer(3, "postgres", postgres=off)


def test_setup_resolves_a_dead_systems_leftovers_and_refuses_anything_else(pg_server,
                                                                          timeouts, tmp_path):
    """A prepared transaction in txlib_p2 whose owner process is dead is finished by its
    own coordinator's log; one txlib did not make is left alone, and the setup refused."""
    import psycopg

    from txlib.real.system import InDoubtWarning

    run_transfer(3, "postgres", postgres=pg_server, options=timeouts)  # the databases exist
    log = tmp_path / "coordinator.log"
    log.write_text('{"tx":"T7","record":"COMMIT","data":{},"forced":true,"decides":'
                   '"commit","time":1}\n')
    with psycopg.connect(pg_server.conninfo + " dbname=txlib_p2", autocommit=True) as conn:
        conn.execute("INSERT INTO txlib_owners(token, host, pid, coordinator_log) "
                     "VALUES ('deadbeef', %s, 999999999, %s)", (socket.gethostname(), str(log)))
        conn.execute("BEGIN")
        conn.execute("INSERT INTO txlog(tx, record, data, forced, time) "
                     "VALUES ('T7', 'PREPARED', '{}', true, 1)")
        conn.execute("PREPARE TRANSACTION 'txlib:deadbeef:p2:credit:1:T7'")
        with pytest.warns(InDoubtWarning, match=r"committed txlib:deadbeef:p2:credit:1:T7.*"
                                                r"the coordinator's log has COMMIT"):
            run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
        conn.execute("BEGIN")
        conn.execute("PREPARE TRANSACTION 'somebody-elses'")
        try:
            with pytest.raises(TxlibError, match=r"database 'txlib_p2' .* is in use: "
                                                 r"prepared transactions txlib did not make"):
                run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
        finally:
            conn.execute("ROLLBACK PREPARED 'somebody-elses'")
    assert gids_of(pg_server, "") == []


DEAD_GID = "txlib:deadbeef:p2:credit:1:T7"


@pytest.fixture
def no_dead_gid_left(pg_server):
    """A failed orphan test leaves its prepared DEAD_GID to itself, not to later tests."""
    yield
    if gids_of(pg_server, DEAD_GID):
        from txlib.real.recovery import resolve_prepared

        resolve_prepared(pg_server.conninfo, "txlib_p2", DEAD_GID, commit=False)


def owner_row_of(pg: PostgresServer, protocol: str, timeouts: dict[str, int]) -> tuple[str, str]:
    """The ``(protocol, protocol_setup)`` a started system running ``protocol`` records
    in its owner row (it keeps the row only while open)."""
    import psycopg

    with RealSystem(3, "postgres", postgres=pg, protocol=protocol,
                    options=timing_for(protocol, timeouts)) as system, \
            psycopg.connect(pg.conninfo + " dbname=txlib_p2", autocommit=True) as conn:
        row = conn.execute("SELECT protocol, protocol_setup FROM txlib_owners WHERE token = %s",
                           (system.databases.token,)).fetchone()
    return row[0], row[1]


def leave_orphan(conn: Any, coordinator_log: Path, protocol: str | None,
                 setup: str | None) -> None:
    """A dead process's leftovers in txlib_p2: its owner row (pid 999999999, not alive;
    ``protocol`` None: a row without one) and its prepared transaction DEAD_GID."""
    if protocol is None:
        conn.execute("INSERT INTO txlib_owners(token, host, pid, coordinator_log) "
                     "VALUES ('deadbeef', %s, 999999999, %s)",
                     (socket.gethostname(), str(coordinator_log)))
    else:
        conn.execute("INSERT INTO txlib_owners(token, host, pid, coordinator_log, "
                     "protocol, protocol_setup) VALUES ('deadbeef', %s, 999999999, %s, %s, %s)",
                     (socket.gethostname(), str(coordinator_log), protocol, setup))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO txlog(tx, record, data, forced, time) "
                 "VALUES ('T7', 'PREPARED', '{}', true, 1)")
    conn.execute(f"PREPARE TRANSACTION '{DEAD_GID}'")


def test_an_owner_table_of_an_older_txlib_is_brought_up_to_date_and_read_as_2pc(
        pg_server, timeouts, tmp_path, no_dead_gid_left):
    """A txlib_owners table made before the protocol was recorded (no protocol column),
    holding a dead owner's row: its orphan is resolved by 2PC's rule (no COMMIT in its
    coordinator's log: presumed abort), as before, and the table gains the columns."""
    import psycopg

    from txlib.real.system import InDoubtWarning

    run_transfer(3, "postgres", postgres=pg_server, options=timeouts)  # the databases exist
    with psycopg.connect(pg_server.conninfo + " dbname=txlib_p2", autocommit=True) as conn:
        conn.execute("ALTER TABLE txlib_owners DROP COLUMN protocol, DROP COLUMN protocol_setup")
        leave_orphan(conn, tmp_path / "missing.log", None, None)
        with pytest.warns(InDoubtWarning, match=rf"rolled back {DEAD_GID}, left in doubt by a "
                                                r"dead txlib process \(presumed abort"):
            run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
        columns = {c for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'txlib_owners'")}
    assert {"protocol", "protocol_setup"} <= columns
    assert gids_of(pg_server, "") == []


@pytest.mark.parametrize("protocol", [ThreePhaseCommit.name, PaxosCommit.name])
def test_a_dead_systems_orphan_its_coordinators_log_cannot_decide_is_refused_not_guessed(
        pg_server, timeouts, tmp_path, protocol, no_dead_gid_left):
    """A dead 3PC or Paxos Commit system left T7 prepared, with no COMMIT in its
    coordinator's log. Its participants (3PC's termination protocol) or an acceptor
    (Paxos Commit) may have committed T7 without the coordinator, so a new system's
    setup refuses, naming the gid and the protocol, and leaves T7 prepared and the dead
    owner's row in place, and wipes none of its databases (p1's records may be what
    tells T7's outcome). 2PC's rule, the old behaviour, would have rolled it back."""
    import psycopg

    from txlib.real.system import InDoubtWarning

    recorded, setup = owner_row_of(pg_server, protocol, timeouts)
    assert recorded == protocol
    assert json.loads(setup)["participants"] == ["p1", "p2", "p3"]
    log = tmp_path / "coordinator.log"
    log.write_text("")  # nothing logged: no COMMIT
    with psycopg.connect(pg_server.conninfo + " dbname=txlib_p1", autocommit=True) as p1:
        p1.execute("INSERT INTO txlog(tx, record, data, forced, time) "
                   "VALUES ('T7', 'COMMITTED', '{}', true, 2)")
    with psycopg.connect(pg_server.conninfo + " dbname=txlib_p2", autocommit=True) as conn:
        leave_orphan(conn, log, protocol, setup)
        with pytest.raises(TxlibError) as refused:
            run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
        message = str(refused.value)
        for part in ("'txlib_p2'", DEAD_GID, f"protocol {protocol!r}", str(log),
                     "txlib.real.recovery.resolve_prepared", "database_prefix="):
            assert part in message, (part, message)
        assert gids_of(pg_server, DEAD_GID) == [DEAD_GID]  # still prepared
        assert conn.execute("SELECT protocol FROM txlib_owners WHERE token = 'deadbeef'"
                            ).fetchone() == (protocol,)
        with psycopg.connect(pg_server.conninfo + " dbname=txlib_p1", autocommit=True) as p1:
            assert p1.execute("SELECT record FROM txlog WHERE tx = 'T7'").fetchall() == [
                ("COMMITTED",)]
        # The old rule, 2PC's for every protocol: presumed abort rolls T7 back.
        conn.execute("UPDATE txlib_owners SET protocol = %s, protocol_setup = NULL "
                     "WHERE token = 'deadbeef'", (TwoPhaseCommit.name,))
        with pytest.warns(InDoubtWarning, match=rf"rolled back {DEAD_GID}.*presumed abort"):
            run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
    assert gids_of(pg_server, "") == []



def test_a_dead_paxos_commit_systems_orphan_is_committed_when_its_coordinator_logged_commit(
        pg_server, timeouts, tmp_path, no_dead_gid_left):
    """The protocol decides what its coordinator's log tells: a Paxos Commit coordinator
    logs COMMIT only once commit is chosen, so the orphan is committed."""
    import psycopg

    from txlib.real.system import InDoubtWarning

    recorded, setup = owner_row_of(pg_server, PaxosCommit.name, timeouts)
    log = tmp_path / "coordinator.log"
    log.write_text('{"tx":"T7","record":"COMMIT","data":{},"forced":false,"decides":'
                   '"commit","time":1}\n')
    with psycopg.connect(pg_server.conninfo + " dbname=txlib_p2", autocommit=True) as conn:
        leave_orphan(conn, log, recorded, setup)
        with pytest.warns(InDoubtWarning, match=rf"committed {DEAD_GID}.*coordinator logged "
                                                "COMMIT"):
            run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
    assert gids_of(pg_server, "") == []
