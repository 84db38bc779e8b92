"""The real runtime with PostgreSQL participants: PREPARE TRANSACTION, COMMIT PREPARED,
ROLLBACK PREPARED on a throwaway local cluster, with kill -9 and restarts.

Skipped (with the reason) without PostgreSQL or psycopg, except under CI, where they
must run (see conftest.py).
"""

from __future__ import annotations

import os
import random

import pytest

from txlib.errors import TxlibError
from txlib.real import CRASH_POINTS, EXPECTED_OUTCOME, PostgresServer, RealSystem, run_transfer
from txlib.real.chaos import crash_loop
from txlib.real.postgres import free_port

NODE_OF_ROLE = {"coordinator": "coordinator", "participant": "p2"}
ALL_POINTS = [(NODE_OF_ROLE[role], point) for role, points in CRASH_POINTS.items()
              for point in points]


def prepared(pg: PostgresServer) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(pg.conninfo + " dbname=postgres", autocommit=True) as conn:
        return sorted(conn.execute("SELECT database, gid FROM pg_prepared_xacts").fetchall())


def test_a_transfer_commits_over_postgres(pg_server, timeouts):
    run = run_transfer(3, "postgres", postgres=pg_server, options=timeouts)
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert run.balances == {"p1": 800, "p2": 600, "p3": 600}
    assert prepared(pg_server) == []
    # PREPARE TRANSACTION and COMMIT PREPARED each sync the WAL once.
    assert {p: run.fsyncs[p] for p in run.participants} == {"p1": 2, "p2": 2, "p3": 2}
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
