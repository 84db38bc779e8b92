"""The cost of distribution: real 2PC against one local transaction. Prints a table;
never part of the test pass/fail.

Run: ``.venv/bin/python benchmarks/real.py`` (``--quick`` for short windows,
``--no-postgres`` to skip PostgreSQL).

For each backend, in the same run:

- *2PC*: transactions per second of txlib.real's 2PC (coordinator and 3 participants,
  each its own process, TCP on 127.0.0.1, one transaction at a time, each one finished
  (every ACK in) before the next begins, trace recording off); every transaction moves
  money between the participants' accounts;
- *local*: one local transaction doing the same three account updates in one database
  (SQLite: one file, WAL, synchronous=FULL; PostgreSQL: one database, synchronous_commit
  on), one after another;
- *ratio*: local tx/s divided by 2PC tx/s: what distribution costs;
- *fsyncs/tx*: syncs to stable storage per transaction. SQLite: the coordinator's
  fsyncs plus one WAL fsync per commit made with synchronous=FULL (counted where they
  happen). PostgreSQL: the server's WAL syncs (``pg_stat_wal.wal_sync``, all backends
  and the WAL writer) plus the coordinator's fsyncs.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from txlib.errors import TxlibError
from txlib.real import PostgresServer, RealSystem

PARTICIPANTS = ("p1", "p2", "p3")
BALANCE = 10**9
# 2PC timeouts far above any latency seen here: no timer fires in a benchmark.
OPTIONS = {"vote_timeout": 10_000, "prepare_timeout": 60_000, "decision_timeout": 10_000,
           "retry_interval": 10_000, "ack_timeout": 10_000}


def operations(i: int) -> dict[str, tuple[str, int]]:
    """Transaction ``i``: the payer rotates and pays 1 to each other participant."""
    payer = PARTICIPANTS[i % len(PARTICIPANTS)]
    ops = {p: ("credit", 1) for p in PARTICIPANTS}
    ops[payer] = ("debit", len(PARTICIPANTS) - 1)
    return ops


def bench_2pc(backend: str, seconds: float, postgres: Any = None) -> dict[str, float]:
    """(tx/s, fsyncs per tx, mean latency ms) of sequential real 2PC transactions."""
    system = RealSystem(PARTICIPANTS, backend, postgres=postgres, record=False,
                        options=OPTIONS, balances=dict.fromkeys(PARTICIPANTS, BALANCE))
    with system:
        wal_before = wal_syncs(postgres) if postgres is not None else 0

        def one(i: int) -> None:
            tx = f"T{i}"
            system.begin(tx, operations=operations(i))
            if not system.settle(tx, 30):
                raise RuntimeError(f"{tx} did not finish: {system.describe()}")

        for i in range(20):  # warm up: connections, caches
            one(i)
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            one(20 + done)
            done += 1
        system.stop_nodes()
        total = 20 + done
        node_fsyncs = {n: h.fsyncs for n, h in system.handles.items()}
        balances = system.balances()
    if sum(balances.values()) != BALANCE * len(PARTICIPANTS):
        raise RuntimeError(f"money not conserved: {balances}")
    coordinator = node_fsyncs["coordinator"] - 1  # minus the sync of the new log's folder
    if postgres is not None:
        syncs = (wal_syncs(postgres) - wal_before + coordinator) / total
    else:
        syncs = sum(node_fsyncs.values(), -1) / total
    return {"tps": done / elapsed, "fsyncs": syncs, "latency": elapsed / done * 1000}


def bench_local_sqlite(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="txlib-bench-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "local.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE accounts(name TEXT PRIMARY KEY, balance INTEGER NOT NULL)")
        conn.executemany("INSERT INTO accounts VALUES (?, ?)",
                         [(p, BALANCE) for p in PARTICIPANTS])

        def one(i: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            for p, (kind, amount) in operations(i).items():
                conn.execute("UPDATE accounts SET balance = balance + ? WHERE name = ?",
                             (amount if kind == "credit" else -amount, p))
            conn.execute("COMMIT")

        result = timed(one, seconds)
        total = conn.execute("SELECT sum(balance) FROM accounts").fetchone()[0]
        conn.close()
    assert total == BALANCE * len(PARTICIPANTS)
    return {**result, "fsyncs": 1.0}  # one WAL fsync per commit with synchronous=FULL


def bench_local_postgres(pg: PostgresServer, seconds: float) -> dict[str, float]:
    import psycopg

    from txlib.real.postgres import connect

    with connect(pg.conninfo, "postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS txlib_local")
        admin.execute("CREATE DATABASE txlib_local")
    before = wal_syncs(pg)
    with psycopg.connect(pg.conninfo + " dbname=txlib_local", autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts(name text PRIMARY KEY, balance bigint NOT NULL)")
        for p in PARTICIPANTS:
            conn.execute("INSERT INTO accounts VALUES (%s, %s)", (p, BALANCE))

        def one(i: int) -> None:
            with conn.transaction():
                for p, (kind, amount) in operations(i).items():
                    conn.execute("UPDATE accounts SET balance = balance + %s WHERE name = %s",
                                 (amount if kind == "credit" else -amount, p))

        result = timed(one, seconds)
    return {**result, "fsyncs": (wal_syncs(pg) - before) / result["count"]}


def timed(one: Any, seconds: float) -> dict[str, float]:
    for i in range(20):
        one(i)
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        one(20 + done)
        done += 1
    return {"tps": done / elapsed, "latency": elapsed / done * 1000, "count": done + 20}


def wal_syncs(pg: PostgresServer) -> int:
    """The server's WAL syncs so far (backends report theirs when they end or idle)."""
    from txlib.real.postgres import connect

    time.sleep(1.2)  # let every backend's statistics reach shared memory
    with connect(pg.conninfo, "postgres") as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0])


def fsync_ms(samples: int = 200) -> float:
    """Mean latency of appending 100 bytes and fsyncing, in a temporary file: the
    disk's figure, which bounds everything above (it varies a lot on shared VMs)."""
    import os

    with tempfile.NamedTemporaryFile(prefix="txlib-fsync-") as f:
        start = time.perf_counter()
        for _ in range(samples):
            os.write(f.fileno(), b"x" * 100)
            os.fsync(f.fileno())
        return (time.perf_counter() - start) / samples * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1-second timing windows")
    parser.add_argument("--seconds", type=float, default=None, help="timing window")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    window = args.seconds or (1.0 if args.quick else 5.0)

    rows = []
    disk = fsync_ms()
    two = bench_2pc("sqlite", window)
    local = bench_local_sqlite(window)
    rows.append(("SQLite", two, local))
    note = ""
    if not args.no_postgres:
        try:
            pg = PostgresServer.start()
        except TxlibError as exc:
            note = f"PostgreSQL skipped: {exc}"
        else:
            with pg:
                two = bench_2pc("postgres", window, postgres=pg)
                local = bench_local_postgres(pg, window)
            rows.append(("PostgreSQL", two, local))

    print(f"txlib.real benchmark: 3 participants, sequential transactions, "
          f"{window:.0f} s windows (Python {sys.version.split()[0]}); one append+fsync "
          f"takes {disk:.2f} ms here")
    head = ("backend", "2PC tx/s", "local tx/s", "local/2PC", "2PC ms/tx",
            "2PC fsyncs/tx", "local fsyncs/tx")
    print("  ".join(f"{h:>15}" for h in head))
    for name, two, local in rows:
        cells = (name, f"{two['tps']:,.0f}", f"{local['tps']:,.0f}",
                 f"{local['tps'] / two['tps']:.1f}x", f"{two['latency']:.2f}",
                 f"{two['fsyncs']:.1f}", f"{local['fsyncs']:.1f}")
        print("  ".join(f"{c:>15}" for c in cells))
    if note:
        print(note)


if __name__ == "__main__":
    main()
