"""Durable storage of real nodes: the coordinator's log file and the participants'
databases.

Every store has the same small surface, used by the node host:

- ``read()``: the durable log, ``{tx: [(LogRecord, decides), ...]}``, as a restarted
  process finds it;
- ``append(tx, record, data, forced, decides, time)``: write one protocol record;
  ``forced`` returns only once the record (and everything before it) is on stable
  storage;
- ``held(tx)``: does the node's resource still hold locks for ``tx``;
- ``close()``: a graceful stop (lazy records are flushed);
- ``fsyncs``: how many syncs to stable storage this process asked for.

:func:`open_store` opens the store a node's spec names; :func:`read_records` reads one
back from outside the node. A participant's store *is* its database: the protocol log
is a table in the same database as the account row, and writing ``PREPARED``,
``COMMITTED`` or ``ABORT`` does the row's local transaction in the same atomic step, so a
SIGKILL at any instant leaves the log and the data agreeing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..engine.records import LogRecord
from .powercut import Unsynced

if TYPE_CHECKING:
    from .postgres import PostgresAccount

Records = dict[str, list[tuple[LogRecord, str | None]]]


class Store(Protocol):
    """What the node host needs from its durable store (see the module docstring)."""

    fsyncs: int

    def read(self) -> Records: ...

    def append(self, tx: str, record: str, data: dict[str, Any], forced: bool,
               decides: str | None, time: int) -> None: ...

    def held(self, tx: str) -> bool: ...

    def close(self) -> None: ...


def open_store(spec: Mapping[str, Any], node: str) -> Store:
    """The durable store of ``node`` that ``spec`` names: ``{"kind": "file", "path"}``
    (the coordinator's log; optional ``track`` and ``no_fsync``, see :class:`FileLog`),
    or an account (see :func:`open_account`)."""
    if spec["kind"] == "file":
        return FileLog(spec["path"], track=bool(spec.get("track")),
                       no_fsync=spec.get("no_fsync", ()))
    return open_account(spec, node)


def open_account(spec: Mapping[str, Any], node: str) -> SqliteAccount | PostgresAccount:
    """A participant's database: ``{"kind": "sqlite", "path", "account"}`` (optional
    ``vfs`` and ``no_fsync``, see :class:`SqliteAccount`) or ``{"kind": "postgres",
    "conninfo", "account", "token"}``."""
    kind = spec["kind"]
    if kind == "sqlite":
        return SqliteAccount(spec["path"], spec["account"], vfs=spec.get("vfs"),
                             no_fsync=spec.get("no_fsync", ()))
    if kind == "postgres":
        from .postgres import PostgresAccount

        return PostgresAccount(spec["conninfo"], spec["account"], spec["token"], node)
    raise ValueError(f"unknown store kind {kind!r}")


def read_records(spec: Mapping[str, Any], node: str) -> Records:
    """The durable log of ``node``'s store, read from outside (the node may be running,
    so nothing is written or flushed; a coordinator log not created yet is empty)."""
    if spec["kind"] == "file":
        return read_file_log(Path(spec["path"]))
    account = open_account(spec, node)
    try:
        return account.read()
    finally:
        account.conn.close()


def delta(data: Mapping[str, Any]) -> int:
    """The balance change of a ``PREPARED`` record's operation."""
    amount = int(data.get("amount", 0))
    return amount if data.get("op") == "credit" else -amount


class FileLog:
    """The coordinator's log: JSON lines in one file.

    Lazy records wait in the process's memory (a SIGKILL loses them); a forced record
    writes every waiting record, then itself, then fsyncs the file, so a forced write
    flushes everything before it. A torn last line (a kill in the middle of ``write``)
    is cut off when the log is opened, before anything is appended: otherwise the next
    record would be glued to it and both would be unreadable.

    ``track``: record what was not synced yet, so that :mod:`txlib.real.powercut` can
    lose it in a simulated power cut. ``no_fsync``: record names whose forced writes are
    *not* synced (an unsafe variant, to show what the fsync is for).
    """

    def __init__(self, path: str | os.PathLike[str], *, track: bool = False,
                 no_fsync: Collection[str] = ()) -> None:
        self.path = Path(path)
        self.fsyncs = 0
        self.no_fsync = frozenset(no_fsync)
        self._pending: list[bytes] = []
        self._unsafe_pending = False
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self.tracker = Unsynced(self.path, created) if track else None
        self.cut_torn_tail()
        if created:  # make the file's directory entry durable too
            self._sync_dir()

    def cut_torn_tail(self) -> None:
        """Truncate the file to its last complete (newline-ended) record, and make that
        durable, so that the next append starts on a line of its own."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        end = size
        while end > 0:
            chunk = os.pread(self._fd, min(4096, end), end - min(4096, end))
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                end = end - len(chunk) + cut + 1
                break
            end -= len(chunk)
        if end == size:
            return
        if self.tracker is not None:
            self.tracker.before_truncate(end)
        os.ftruncate(self._fd, end)
        self._fsync()

    def _sync_dir(self) -> None:
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
            self.fsyncs += 1
        finally:
            os.close(fd)

    def read(self) -> Records:
        return read_file_log(self.path)

    def append(self, tx: str, record: str, data: dict[str, Any], forced: bool,
               decides: str | None, time: int) -> None:
        line = json.dumps({"tx": tx, "record": record, "data": data, "forced": forced,
                           "decides": decides, "time": time}, separators=(",", ":"))
        self._pending.append(line.encode() + b"\n")
        if forced:
            self.flush(sync=record not in self.no_fsync)

    def flush(self, *, sync: bool = True) -> None:
        """Write every waiting record; then fsync, unless ``sync`` is false."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if self.tracker is not None:
                self.tracker.before_write(os.fstat(self._fd).st_size, len(data))
            os.write(self._fd, data)
        if sync:
            self._fsync()

    def _fsync(self) -> None:
        os.fsync(self._fd)
        self.fsyncs += 1
        if self.tracker is not None:
            self.tracker.synced()

    def held(self, tx: str) -> bool:
        return False

    def close(self) -> None:
        self.flush()
        os.close(self._fd)
        if self.tracker is not None:
            self.tracker.close()


def read_file_log(path: Path) -> Records:
    """The records that reached a coordinator log file (none if it does not exist)."""
    out: Records = {}
    if not path.exists():
        return out
    *lines, _torn = path.read_bytes().split(b"\n")  # the last piece: '' or a torn record
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue  # an empty line, or a line a torn write left behind in an old file
        rec = LogRecord(r["record"], r["data"], r["forced"], r["time"])
        out.setdefault(r["tx"], []).append((rec, r.get("decides")))
    return out


# --- SQLite ------------------------------------------------------------------------------
HELD_MESSAGE = "txlib: the row is held by an in-doubt transaction (see locked_by)"
SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS accounts(
    name TEXT PRIMARY KEY,
    balance INTEGER NOT NULL,
    locked_by TEXT,                      -- the in-doubt transaction holding the row
    pending INTEGER NOT NULL DEFAULT 0   -- its change, applied when it commits
);
CREATE TABLE IF NOT EXISTS txlog(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tx TEXT NOT NULL, record TEXT NOT NULL, data TEXT NOT NULL,
    forced INTEGER NOT NULL, decides TEXT, time INTEGER NOT NULL
);
-- A held row may change only by the resolution of its reservation, once a record that
-- resolves it (COMMITTED or ABORT) is in the log: released with its change applied
-- (commit) or dropped (abort). Any other write is refused, by anyone; and whoever
-- resolves it, the participant or an operator, leaves that record behind.
CREATE TRIGGER IF NOT EXISTS held_row_update BEFORE UPDATE ON accounts
WHEN OLD.locked_by IS NOT NULL AND NOT (
    NEW.name IS OLD.name AND NEW.locked_by IS NULL AND NEW.pending = 0 AND (
        (NEW.balance = OLD.balance + OLD.pending AND EXISTS (SELECT 1 FROM txlog
            WHERE tx = OLD.locked_by AND record = 'COMMITTED'))
        OR (NEW.balance = OLD.balance AND EXISTS (SELECT 1 FROM txlog
            WHERE tx = OLD.locked_by AND record = 'ABORT'))))
BEGIN SELECT RAISE(ABORT, '{HELD_MESSAGE}'); END;
CREATE TRIGGER IF NOT EXISTS held_row_delete BEFORE DELETE ON accounts
WHEN OLD.locked_by IS NOT NULL
BEGIN SELECT RAISE(ABORT, '{HELD_MESSAGE}'); END;
"""


class PrepareFailed(Exception):
    """The participant's database could not prepare the transaction: it votes NO."""


class HeuristicOutcome(Exception):
    """The participant's prepared work was resolved outside the protocol (an operator's
    *heuristic decision*) the other way from the decision: ``outcome`` is what happened
    to the work (``"rollback"`` or ``"commit"``). The transaction's outcome is mixed."""

    def __init__(self, outcome: str, text: str) -> None:
        super().__init__(text)
        self.outcome = outcome


def sqlite_connect(path: str | os.PathLike[str], vfs: str | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal. ``vfs``:
    ``"txlib-powercut"`` to track unsynced writes (see :mod:`txlib.real.powercut`)."""
    if vfs is None:
        conn = sqlite3.connect(os.fspath(path), isolation_level=None, timeout=10.0)
    else:
        from .powercut import sqlite_vfs

        uri = f"{Path(path).resolve().as_uri()}?vfs={sqlite_vfs()}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def sqlite_create(path: str | os.PathLike[str], account: str, balance: int) -> None:
    """A fresh participant database holding one account.

    It is built without syncing each step (fast), then the file is fsynced once.
    """
    from .powercut import forget

    path = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
        forget(f"{path}{suffix}")
    conn = sqlite3.connect(os.fspath(path), isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SQLITE_SCHEMA)
        conn.execute("BEGIN")
        conn.execute("INSERT INTO accounts(name, balance) VALUES (?, ?)", (account, balance))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for target in (path, path.parent):
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sqlite_inspect(path: str | os.PathLike[str], vfs: str | None = None) -> dict[str, Any]:
    """The committed balance and who holds the row, read from outside the node."""
    conn = sqlite_connect(path, vfs)
    try:
        name, balance, locked_by, pending = conn.execute(
            "SELECT name, balance, locked_by, pending FROM accounts").fetchone()
        return {"account": name, "balance": balance, "held_by": locked_by, "pending": pending}
    finally:
        conn.close()


class SqliteAccount:
    """A participant's account row and protocol log in one SQLite database.

    - ``PREPARED`` (forced): mark the row as held by the transaction and store its
      change, and insert the record, in one SQLite transaction committed with
      ``synchronous=FULL`` (the WAL is fsynced: one fsync);
    - ``COMMITTED`` (forced): apply the stored change, release the row, insert the
      record, in one transaction (one fsync);
    - ``ABORT`` (lazy): drop the stored change, release the row, insert the record, in
      one transaction committed with ``synchronous=NORMAL`` (no fsync at commit; the
      next forced commit makes it durable with everything before it). Not ``OFF``: in
      WAL mode a checkpoint run by an ``OFF`` commit syncs nothing yet lets the WAL be
      overwritten, so a power cut could lose earlier forced records.

    While the row is held, it is locked: a trigger refuses every other change to it
    (SQLite has no row locks, so a writer is refused at once instead of waiting), and
    no other transaction may prepare a change to it (that one votes NO).

    ``vfs``: see :func:`sqlite_connect`. ``no_fsync``: records whose forced commits are
    made with ``synchronous=OFF`` (an unsafe variant, to show what the fsync is for).
    """

    FORCED_SYNC = "FULL"
    LAZY_SYNC = "NORMAL"

    def __init__(self, path: str | os.PathLike[str], account: str, *, vfs: str | None = None,
                 no_fsync: Collection[str] = ()) -> None:
        self.path = path
        self.account = account
        self.fsyncs = 0
        self.no_fsync = frozenset(no_fsync)
        self.conn = sqlite_connect(path, vfs)
        self.conn.executescript(SQLITE_SCHEMA)
        self._sync: str | None = None

    def _begin(self, sync: str) -> None:
        if sync != self._sync:
            self.conn.execute(f"PRAGMA synchronous={sync}")
            self._sync = sync
        self.conn.execute("BEGIN IMMEDIATE")

    def balance(self, tx: str) -> int:
        """The committed balance (what the protocol checks before voting)."""
        row = self.conn.execute("SELECT balance, locked_by FROM accounts WHERE name = ?",
                                (self.account,)).fetchone()
        if row[1] is not None and row[1] != tx:
            raise PrepareFailed(f"account {self.account} is held by in-doubt transaction "
                                f"{row[1]}; txlib runs one transaction at a time per account")
        return int(row[0])

    def read(self) -> Records:
        out: Records = {}
        for tx, record, data, forced, decides, time in self.conn.execute(
                "SELECT tx, record, data, forced, decides, time FROM txlog ORDER BY id"):
            rec = LogRecord(record, json.loads(data), bool(forced), time)
            out.setdefault(tx, []).append((rec, decides))
        return out

    def append(self, tx: str, record: str, data: dict[str, Any], forced: bool,
               decides: str | None, time: int) -> None:
        c = self.conn
        synced = forced and record not in self.no_fsync
        self._begin(self.FORCED_SYNC if synced else "OFF" if forced else self.LAZY_SYNC)
        try:
            resolved = self._resolved_elsewhere(tx, record)
            if resolved == record:
                c.execute("ROLLBACK")  # someone else already did exactly this
                return
            if resolved is not None:
                raise HeuristicOutcome(
                    "rollback" if resolved == "ABORT" else "commit",
                    f"the reservation of {tx} was resolved outside the protocol with "
                    f"{resolved} although the decision is "
                    f"{'commit' if record == 'COMMITTED' else 'abort'}")
            c.execute("INSERT INTO txlog(tx, record, data, forced, decides, time) "
                      "VALUES (?, ?, ?, ?, ?, ?)",
                      (tx, record, json.dumps(data), int(forced), decides, time))
            if record == "PREPARED":
                cur = c.execute(
                    "UPDATE accounts SET locked_by = ?, pending = ? "
                    "WHERE name = ? AND locked_by IS NULL", (tx, delta(data), self.account))
                if cur.rowcount != 1:
                    raise PrepareFailed(f"account {self.account} is already held; "
                                        f"cannot prepare {tx}")
            elif record == "COMMITTED":
                c.execute("UPDATE accounts SET balance = balance + pending, pending = 0, "
                          "locked_by = NULL WHERE name = ? AND locked_by = ?",
                          (self.account, tx))
            elif record == "ABORT":
                c.execute("UPDATE accounts SET pending = 0, locked_by = NULL "
                          "WHERE name = ? AND locked_by = ?", (self.account, tx))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        if synced:
            self.fsyncs += 1  # WAL mode, synchronous=FULL: the WAL is fsynced at commit

    def _resolved_elsewhere(self, tx: str, record: str) -> str | None:
        """For COMMITTED or ABORT of a transaction this node reserved the row for: the
        resolving record someone else wrote while the row was held (None if none)."""
        if record not in ("COMMITTED", "ABORT"):
            return None
        rows = self.conn.execute("SELECT record FROM txlog WHERE tx = ? ORDER BY id",
                                 (tx,)).fetchall()
        names = [r for (r,) in rows]
        if "PREPARED" not in names or self.held(tx):
            return None
        done = [r for r in names if r in ("COMMITTED", "ABORT")]
        return done[-1] if done else None

    def held(self, tx: str) -> bool:
        return self.conn.execute("SELECT 1 FROM accounts WHERE locked_by = ?",
                                 (tx,)).fetchone() is not None

    def close(self) -> None:
        # A graceful stop makes lazy commits durable too (a FULL checkpoint of the WAL).
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA wal_checkpoint(FULL)")
        self.conn.close()
