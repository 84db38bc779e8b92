"""Durability for real: power cuts that lose every write that was not synced, a torn
coordinator log line, SQLite's lazy writes, and the held-row trigger.

A ``kill -9`` keeps the page cache: it cannot tell a synced write from an unsynced
one. These tests cut the power instead (:mod:`txlib.real.powercut`): the node is
killed, then its files lose every write since their last sync. With the fsyncs, a
power cut at any point loses no decided transaction; without the coordinator's
COMMIT fsync, it does.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from txlib.errors import TxlibError
from txlib.real import CRASH_POINTS, EXPECTED_OUTCOME, Crash, RealSystem, run_transfer
from txlib.real.chaos import crash_loop
from txlib.real.powercut import count_syncs, lose_unsynced
from txlib.real.stores import HELD_MESSAGE, FileLog, SqliteAccount, sqlite_create

NODE_OF_ROLE = {"coordinator": "coordinator", "participant": "p2"}
ALL_POINTS = [(NODE_OF_ROLE[role], point) for role, points in CRASH_POINTS.items()
              for point in points]
ROOT = str(Path(__file__).resolve().parents[2])


# --- the coordinator's log ------------------------------------------------------------------
def test_a_torn_log_line_is_cut_so_the_next_forced_record_survives(tmp_path):
    """T1 COMMIT, then a write torn by a crash, then a restarted coordinator forces T3
    COMMIT: both must read back. (Appended after the torn bytes without a newline, T3
    would be glued to them and unreadable: a committed transaction presumed aborted.)"""
    path = tmp_path / "c.log"
    log = FileLog(path)
    log.append("T1", "COMMIT", {"tx": "T1"}, True, "commit", 1)
    log.close()
    with open(path, "ab") as f:
        f.write(b'{"tx":"T2","record":"COMM')  # a write torn by the crash
    log = FileLog(path)  # the restarted coordinator opens its log
    assert path.read_bytes().endswith(b"\n")  # the torn tail is gone
    log.append("T3", "COMMIT", {"tx": "T3"}, True, "commit", 2)
    log.close()
    back = FileLog(path).read()
    assert {tx: [r.record for r, _ in recs] for tx, recs in back.items()} == \
        {"T1": ["COMMIT"], "T3": ["COMMIT"]}


def test_the_log_loses_unsynced_records_in_a_power_cut_and_keeps_synced_ones(tmp_path):
    path = tmp_path / "c.log"
    log = FileLog(path, track=True)
    log.append("T1", "COMMIT", {"tx": "T1"}, True, "commit", 1)      # forced: synced
    log.append("T1", "END", {"tx": "T1"}, False, None, 2)            # lazy: in memory
    log.flush(sync=False)                                             # written, not synced
    assert set(FileLog(path).read()) == {"T1"} and len(FileLog(path).read()["T1"]) == 2
    lost = lose_unsynced([path])
    assert lost == {"c.log": len(b'{"tx":"T1","record":"END","data":{"tx":"T1"},'
                                 b'"forced":false,"decides":null,"time":2}\n')}
    assert [r.record for r, _ in FileLog(path).read()["T1"]] == ["COMMIT"]
    assert count_syncs(path) == 1


# --- SQLite ----------------------------------------------------------------------------------
LAZY_THEN_FORCED = """
import os, signal, sys
from txlib.real.stores import SqliteAccount
SqliteAccount.LAZY_SYNC = sys.argv[2]
acct = SqliteAccount(sys.argv[1], "p", vfs="txlib-powercut")
acct.conn.execute("PRAGMA wal_autocheckpoint=10")  # pages: reached inside a lazy commit
acct.append("T1", "PREPARED", {"tx": "T1", "op": "debit", "amount": 70}, True, None, 1)
for i in range(2, 6):
    acct.append(f"T{i}", "ABORT", {"tx": f"T{i}"}, False, "abort", i)
acct.append("T9", "COMMITTED", {"tx": "T9"}, True, "commit", 9)  # forced: rewrites the WAL
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("lazy", ["OFF", "NORMAL"])
def test_sqlite_lazy_commits_must_not_use_synchronous_off(tmp_path, lazy):
    """In WAL mode, a checkpoint run inside a synchronous=OFF commit syncs nothing but
    lets the next commit overwrite the WAL: a power cut then loses the earlier forced
    PREPARED (here: the row's reservation). NORMAL syncs at checkpoints."""
    path = tmp_path / "p.sqlite"
    sqlite_create(path, "p", 500)
    proc = subprocess.run([sys.executable, "-c", LAZY_THEN_FORCED, str(path), lazy],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == -9, proc.stderr
    lose_unsynced([path, f"{path}-wal"])
    db = sqlite3.connect(path)
    row = db.execute("SELECT balance, locked_by, pending FROM accounts").fetchone()
    records = [r for (r,) in db.execute("SELECT record FROM txlog WHERE tx = 'T1'")]
    db.close()
    assert records == ["PREPARED"]
    if lazy == "OFF":
        assert row == (500, None, 0)  # the log says PREPARED, the row forgot it
    else:
        assert row == (500, "T1", -70)
    assert SqliteAccount.LAZY_SYNC == "NORMAL"


def test_a_held_sqlite_row_refuses_every_other_write(tmp_path):
    """Balance 100, a prepared debit of 100: a plain UPDATE while in doubt is refused
    (at once: SQLite has no row lock to wait on), so COMMITTED leaves 0, not -100."""
    path = tmp_path / "p.sqlite"
    sqlite_create(path, "p", 100)
    acct = SqliteAccount(path, "p")
    acct.append("T1", "PREPARED", {"tx": "T1", "op": "debit", "amount": 100}, True, None, 1)
    other = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match=re.escape(HELD_MESSAGE)):
        other.execute("UPDATE accounts SET balance = balance - 100 WHERE name = 'p'")
    with pytest.raises(sqlite3.IntegrityError, match=re.escape(HELD_MESSAGE)):
        other.execute("DELETE FROM accounts")
    acct.append("T1", "COMMITTED", {"tx": "T1", "op": "debit", "amount": 100}, True,
                "commit", 2)
    assert other.execute("SELECT balance, locked_by FROM accounts").fetchone() == (0, None)
    other.execute("UPDATE accounts SET balance = balance + 5 WHERE name = 'p'")  # free now
    other.close()
    acct.close()


def test_sqlite_really_syncs_twice_per_participant_and_commit(timeouts):
    """Count the syncs SQLite asks the OS for (seen by the power-cut VFS), not Python's
    counters: on a running system each committed transfer costs each participant two
    WAL syncs (PREPARED, COMMITTED) and the coordinator one (COMMIT)."""
    with RealSystem(3, options=timeouts, power_cuts=True) as system:
        def syncs() -> dict[str, int]:
            return {n: sum(count_syncs(f) for f in system.files(n)) for n in system.nodes}

        system.begin("T1")
        assert system.settle("T1", 20)
        before = syncs()
        system.begin("T2")
        assert system.settle("T2", 20)
        after = syncs()
    assert {n: after[n] - before[n] for n in after} == \
        {"coordinator": 1, "p1": 2, "p2": 2, "p3": 2}


# --- power cuts of real runs -----------------------------------------------------------------
@pytest.mark.parametrize(("node", "point"), ALL_POINTS, ids=[p for _, p in ALL_POINTS])
def test_a_power_cut_at_each_protocol_point_loses_no_decided_transaction(node, point,
                                                                         timeouts):
    run = run_transfer(3, crash=Crash(node, point=point, power=True), options=timeouts)
    assert run.problems() == [], run.summary()
    assert run.outcome == EXPECTED_OUTCOME[point], run.summary()
    assert [(c["node"], c["how"], c["power"]) for c in run.crashes] == [(node, point, True)]
    assert any(e.kind == "crash" and e.detail.startswith("power cut") for e in run.trace)


@pytest.mark.parametrize("fsync", [True, False], ids=["with-fsync", "without-commit-fsync"])
def test_without_the_commit_fsync_a_power_cut_loses_a_decided_commit(fsync, timeouts):
    """The coordinator forces COMMIT, sends COMMIT to everyone, and loses power. With the
    fsync, it restarts, finds COMMIT and finishes. Without it, the record was still in
    the page cache: the participants have committed, and the restarted coordinator,
    finding no decision, presumes abort. The simulator's lose_unforced, made real."""
    run = run_transfer(3, crash=Crash("coordinator", point="after_commits_sent", power=True),
                       no_fsync=() if fsync else ["COMMIT"], options=timeouts)
    if fsync:
        assert run.outcome == "committed" and run.problems() == [], run.summary()
        assert run.crashes[0]["lost"] == {}
        return
    assert run.crashes[0]["lost"]["coordinator.log"] > 0  # the COMMIT record
    assert run.decisions == {"coordinator": "abort", "p1": "commit", "p2": "commit",
                             "p3": "commit"}
    assert run.outcome == "inconsistent"
    assert {v.invariant for v in run.violations} == {"atomicity", "stability"}
    assert run.balances == {"p1": 800, "p2": 600, "p3": 600}  # committed, yet "aborted"


def test_a_kill_9_without_the_commit_fsync_shows_nothing(timeouts):
    """The same unsafe coordinator, killed with kill -9 instead: the page cache keeps the
    unsynced COMMIT, so the run looks fine. kill -9 cannot test an fsync."""
    run = run_transfer(3, crash=("coordinator", "after_commits_sent"), no_fsync=["COMMIT"],
                       options=timeouts)
    assert run.outcome == "committed" and run.problems() == [], run.summary()


def test_randomized_power_cuts_lose_no_decided_transaction():
    """Power cuts of one node, two, or the whole machine at random points and moments:
    every decided transaction survives (stability would catch a decision that changed)."""
    seed = int(os.environ.get("TXLIB_CRASH_SEED", random.randrange(1_000_000)))
    report = crash_loop(40, seed=seed, power=True)
    assert report.problems == [], f"seed {seed}: {report.problems[:5]}"
    assert report.fired >= 40, f"seed {seed}: {report}"


def test_randomized_power_cuts_without_the_commit_fsync_lose_decided_transactions():
    """The same loop with the unsafe coordinator: some decided commit is lost (a fixed
    seed whose runs cut the power right after COMMIT was sent)."""
    report = crash_loop(30, seed=1, power=True, no_fsync=["COMMIT"])
    assert report.outcomes.get("inconsistent", 0) >= 1, report
    assert any("stability violated" in p for p in report.problems), report.problems[:5]


def test_a_power_cut_of_the_whole_machine_while_in_doubt(timeouts):
    """Every node loses power while all participants are prepared and the coordinator
    has decided commit: each restarts from what it had synced, and the commit survives."""
    with RealSystem(3, options=timeouts, power_cuts=True) as system:
        system.begin("T1", crash=("coordinator", "after_decision_logged"))
        system.wait(lambda s: "coordinator" in s.down and all(
            s.state(p, "T1") == "PREPARED" for p in s.participants), 10, "doubt")
        system.power_cut()
        assert system.settle("T1", 30)
        run = system.result("T1")
    assert run.outcome == "committed" and run.problems() == [], run.summary()
    assert [c["power"] for c in run.crashes] == [False, True, True, True]


def test_power_cuts_are_refused_where_nothing_tracks_them(timeouts):
    with RealSystem(3, options=timeouts) as system, \
            pytest.raises(TxlibError, match=r"power_cuts=True"):
        system.power_cut(["p1"])
    with pytest.raises(TxlibError, match="unknown forced record in no_fsync 'END'"):
        RealSystem(3, no_fsync=["END"])
    with pytest.raises(TxlibError, match="needs SQLite participants"):
        RealSystem(3, "postgres", postgres="host=127.0.0.1", no_fsync=["PREPARED"])
    with pytest.raises(TxlibError, match="power_cuts must be True or False"):
        RealSystem(3, power_cuts="yes")
    with pytest.raises(TxlibError, match="power must be True or False"):
        run_transfer(3, crash=Crash("p1", point="after_vote_sent", power="yes"))
