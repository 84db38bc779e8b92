"""What a real 2PC transaction costs, and where the time goes.

- :func:`bench_2pc`: sequential real 2PC transactions (coordinator and 3 participants,
  each its own process, TCP on 127.0.0.1, each transaction finished, every ACK in,
  before the next begins, trace recording off);
- :func:`bench_local_sqlite`, :func:`bench_local_postgres`: one local transaction doing
  the same three account updates in one database;
- :func:`fsync_ms`, :func:`sqlite_commit_ms`, :func:`round_trip_ms`: the parts, each
  measured alone: an append + ``fsync``, an SQLite commit with ``synchronous=FULL``, a
  JSON line to another process over TCP and back;
- :func:`benchmark`: all of it, as the rows of a table (``benchmarks/real.py`` prints
  it; lesson 12 shows it).

Syncs per transaction are real: for SQLite, the syncs SQLite asks the OS for, seen by
the power-cut VFS (:func:`txlib.real.powercut.count_syncs`) plus the coordinator's; for
PostgreSQL, the server's ``pg_stat_wal.wal_sync`` plus the coordinator's.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .powercut import count_syncs
from .system import RealSystem

PARTICIPANTS = ("p1", "p2", "p3")
BALANCE = 10**9
# 2PC timeouts far above any latency seen here: no timer fires in a benchmark.
OPTIONS = {"vote_timeout": 10_000, "prepare_timeout": 60_000, "decision_timeout": 10_000,
           "retry_interval": 10_000, "ack_timeout": 10_000}
WARM_UP = 20


def operations(i: int) -> dict[str, tuple[str, int]]:
    """Transaction ``i``: the payer rotates and pays 1 to each other participant."""
    payer = PARTICIPANTS[i % len(PARTICIPANTS)]
    ops = {p: ("credit", 1) for p in PARTICIPANTS}
    ops[payer] = ("debit", len(PARTICIPANTS) - 1)
    return ops


def timed(one: Callable[[int], None], seconds: float) -> dict[str, float]:
    """Run ``one(i)`` for ``seconds`` after a warm-up: tx/s, mean ms, count."""
    for i in range(WARM_UP):
        one(i)
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        one(WARM_UP + done)
        done += 1
    return {"tps": done / elapsed, "latency": elapsed / done * 1000, "count": done}


def _system(backend: str, postgres: Any, track: bool) -> RealSystem:
    return RealSystem(PARTICIPANTS, backend, postgres=postgres, record=False,
                      options=OPTIONS, balances=dict.fromkeys(PARTICIPANTS, BALANCE),
                      power_cuts=track)


def _one(system: RealSystem, i: int) -> None:
    tx = f"T{i}"
    system.begin(tx, operations=operations(i))
    if not system.settle(tx, 30):
        raise RuntimeError(f"{tx} did not finish: {system.describe()}")


def bench_2pc(backend: str, seconds: float, postgres: Any = None) -> dict[str, float]:
    """Sequential real 2PC transactions: tx/s, mean ms, and real syncs per transaction
    (counted in a separate short run: counting slows SQLite's writes down)."""
    with _system(backend, postgres, False) as system:
        result = timed(lambda i: _one(system, i), seconds)
        balances = system.balances()
    if sum(balances.values()) != BALANCE * len(PARTICIPANTS):
        raise RuntimeError(f"money not conserved: {balances}")
    return {**result, "syncs": syncs_per_tx(backend, postgres)}


def syncs_per_tx(backend: str, postgres: Any = None, transactions: int = 20) -> float:
    """Real syncs per committed transaction on a running system: the syncs SQLite and
    the coordinator ask the OS for (seen by the power-cut layer), plus, for PostgreSQL,
    the server's WAL syncs (``pg_stat_wal.wal_sync``)."""
    from .postgres import wal_syncs

    with _system(backend, postgres, True) as system:
        def files() -> int:
            return sum(count_syncs(f) for n in system.nodes for f in system.files(n))

        _one(system, 0)  # the first transaction creates the files
        before = files()
        wal = wal_syncs(postgres.conninfo) if postgres is not None else 0
        for i in range(1, transactions + 1):
            _one(system, i)
        after = files()
        system.stop_nodes()
        if postgres is not None:
            wal = wal_syncs(postgres.conninfo) - wal
    return (after - before + wal) / transactions


def bench_local_sqlite(seconds: float) -> dict[str, float]:
    """One local transaction (three updates) per commit, synchronous=FULL, WAL."""
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
    if total != BALANCE * len(PARTICIPANTS):
        raise RuntimeError(f"money not conserved: {total}")
    return {**result, "syncs": 1.0}  # one WAL fsync per commit with synchronous=FULL


def bench_local_postgres(pg: Any, seconds: float) -> dict[str, float]:
    """One local transaction (three updates) per commit, synchronous_commit on."""
    import psycopg

    from .postgres import connect, wal_syncs

    with connect(pg.conninfo, "postgres") as admin:
        admin.execute("DROP DATABASE IF EXISTS txlib_local")
        admin.execute("CREATE DATABASE txlib_local")
    with psycopg.connect(pg.conninfo + " dbname=txlib_local", autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts(name text PRIMARY KEY, balance bigint NOT NULL)")
        for p in PARTICIPANTS:
            conn.execute("INSERT INTO accounts VALUES (%s, %s)", (p, BALANCE))
    before = wal_syncs(pg.conninfo, quiet="txlib_local")
    with psycopg.connect(pg.conninfo + " dbname=txlib_local", autocommit=True) as conn:
        def one(i: int) -> None:
            with conn.transaction():
                for p, (kind, amount) in operations(i).items():
                    conn.execute("UPDATE accounts SET balance = balance + %s WHERE name = %s",
                                 (amount if kind == "credit" else -amount, p))

        result = timed(one, seconds)
    runs = result["count"] + WARM_UP
    return {**result, "syncs": (wal_syncs(pg.conninfo, quiet="txlib_local") - before) / runs}


def fsync_ms(samples: int = 300) -> float:
    """Mean latency of appending 100 bytes to a file and fsyncing it, in ms."""
    with tempfile.NamedTemporaryFile(prefix="txlib-fsync-") as f:
        start = time.perf_counter()
        for _ in range(samples):
            os.write(f.fileno(), b"x" * 100)
            os.fsync(f.fileno())
        return (time.perf_counter() - start) / samples * 1000


def sqlite_commit_ms(samples: int = 300) -> float:
    """Mean latency of a one-row SQLite commit with synchronous=FULL in WAL mode, in ms."""
    with tempfile.TemporaryDirectory(prefix="txlib-bench-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "c.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t(x INTEGER)")
        start = time.perf_counter()
        for i in range(samples):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - start
        conn.close()
    return elapsed / samples * 1000


ECHO = """
import socket, sys
srv = socket.create_server(("127.0.0.1", 0))
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = conn.makefile("rb")
for line in f:
    conn.sendall(line)
"""


def round_trip_ms(samples: int = 500) -> float:
    """Mean latency of a JSON line to another process over loopback TCP and back, in ms
    (what one message and its answer cost, without any protocol work)."""
    proc = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
            line = b'{"type":"PREPARE","payload":{"tx":"T1","op":"credit","amount":1}}\n'
            for _ in range(20):
                sock.sendall(line)
                reader.readline()
            start = time.perf_counter()
            for _ in range(samples):
                sock.sendall(line)
                reader.readline()
            elapsed = time.perf_counter() - start
            reader.close()
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return elapsed / samples * 1000


def breakdown(two_pc_ms: float) -> list[tuple[str, float, str]]:
    """Where a 2PC transaction of ``two_pc_ms`` (3 SQLite participants) spends its time,
    estimated from the parts measured alone: ``(what, ms, share)`` rows. Its critical
    path holds three forced writes one after the other (the participants' PREPARED in
    parallel, the coordinator's COMMIT, the participants' COMMITTED in parallel) and two
    message round trips (PREPARE/YES, COMMIT/ACK)."""
    commit = sqlite_commit_ms()
    sync = fsync_ms()
    trip = round_trip_ms()
    disk = 2 * commit + sync
    net = 2 * trip
    rest = max(0.0, two_pc_ms - disk - net)
    return [
        ("one append + fsync", sync, ""),
        ("one SQLite commit (synchronous=FULL, WAL)", commit, ""),
        ("one JSON line to another process and back (loopback TCP)", trip, ""),
        ("one 2PC transaction, end to end (3 participants)", two_pc_ms, "100%"),
        ("  its 3 forced writes in sequence (2 SQLite commits + 1 fsync)", disk,
         f"{disk / two_pc_ms:.0%}"),
        ("  its 2 message round trips", net, f"{net / two_pc_ms:.0%}"),
        ("  the rest: Python handlers, JSON, the runner's control messages, scheduling",
         rest, f"{rest / two_pc_ms:.0%}"),
    ]


def benchmark(seconds: float = 5.0, postgres: Any = None) -> list[dict[str, Any]]:
    """The benchmark table's rows: for SQLite (and PostgreSQL, given a server), 2PC and
    local tx/s, their ratio, 2PC ms per transaction, real syncs per transaction."""
    rows = []
    backends: list[tuple[str, Callable[[], dict[str, float]], Callable[[], dict[str, float]]]]
    backends = [("SQLite", lambda: bench_2pc("sqlite", seconds),
                 lambda: bench_local_sqlite(seconds))]
    if postgres is not None:
        backends.append(("PostgreSQL", lambda: bench_2pc("postgres", seconds, postgres),
                         lambda: bench_local_postgres(postgres, seconds)))
    for name, two_pc, local in backends:
        two, one = two_pc(), local()
        rows.append({"backend": name, "2PC tx/s": two["tps"], "local tx/s": one["tps"],
                     "local/2PC": one["tps"] / two["tps"], "2PC ms/tx": two["latency"],
                     "2PC syncs/tx": two["syncs"], "local syncs/tx": one["syncs"]})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`benchmark` as aligned text."""
    head = list(rows[0]) if rows else []
    fmt = {"2PC tx/s": "{:,.0f}", "local tx/s": "{:,.0f}", "local/2PC": "{:.1f}x",
           "2PC ms/tx": "{:.2f}", "2PC syncs/tx": "{:.1f}", "local syncs/tx": "{:.1f}"}
    lines = ["  ".join(f"{h:>14}" for h in head)]
    for row in rows:
        lines.append("  ".join(f"{fmt.get(h, '{}').format(row[h]):>14}" for h in head))
    return "\n".join(lines)
