"""PostgreSQL participants, checks of a server's settings, and throwaway local clusters.

Each participant is a database on one PostgreSQL server, holding its account row and
its protocol log (table ``txlog``). Voting YES is ``PREPARE TRANSACTION``: the row
change and the ``PREPARED`` log row go into one local transaction, which PostgreSQL then
keeps on disk, in doubt, holding its row lock, visible in ``pg_prepared_xacts``, until
``COMMIT PREPARED`` or ``ROLLBACK PREPARED`` from any session (such as a restarted
node's). The driver is psycopg 3 (``pip install "psycopg[binary]"``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ..engine.records import LogRecord
from ..errors import TxlibError
from ..protocols import get_protocol
from ..protocols.base import COORDINATOR, CommitProtocol, Conclusion, logged
from ..protocols.two_phase import TwoPhaseCommit
from .cluster import PostgresServer, find_bindir, free_port, pid_alive, port_is_free
from .stores import HeuristicOutcome, PrepareFailed, Records, delta

GID_PREFIX = "txlib:"
__all__ = ["PostgresServer", "find_bindir", "free_port", "port_is_free"]  # re-exported
T = TypeVar("T")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise TxlibError(
            "the PostgreSQL backend needs the psycopg package; install it with "
            "pip install 'psycopg[binary]' (or use backend='sqlite')"
        ) from None
    return psycopg


def conninfo_for(base: str, dbname: str) -> str:
    """``base`` (a libpq conninfo string) pointed at database ``dbname``."""
    return str(_psycopg().conninfo.make_conninfo(base, dbname=dbname))


def describe_server(base: str) -> str:
    """``host:port`` of a conninfo string, for messages."""
    params = _psycopg().conninfo.conninfo_to_dict(base)
    return f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"


def connect(base: str, dbname: str, *, timeout: int = 5) -> Any:
    """An autocommit connection, or a TxlibError that says what to change."""
    psycopg = _psycopg()
    try:
        return psycopg.connect(conninfo_for(base, dbname), autocommit=True,
                               connect_timeout=timeout)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TxlibError(
            f"cannot connect to PostgreSQL at {describe_server(base)} (database {dbname!r}): "
            f"{first}. Start the server there, or pass postgres= with the right host and "
            "port (txlib.real.PostgresServer.start() starts a throwaway local one)"
        ) from None


class DurabilityWarning(UserWarning):
    """A PostgreSQL setting weakens durability without breaking 2PC's forced writes."""


SETTINGS = ("max_prepared_transactions", "fsync", "synchronous_commit", "full_page_writes")


def judge_settings(settings: Mapping[str, str], participants: int) -> tuple[list[str],
                                                                           list[str]]:
    """``(refusals, warnings)`` for a server with these ``SHOW`` values (see
    :func:`preflight`)."""
    refusals, warnings_ = [], []
    value = int(settings["max_prepared_transactions"])
    if value < participants:
        refusals.append(
            f"it has max_prepared_transactions = {value}, so it cannot keep {participants} "
            f"prepared transaction(s) in doubt; set max_prepared_transactions to at least "
            f"{participants} (one per participant; e.g. 20) in postgresql.conf, or start "
            "the server with -c max_prepared_transactions=20, and restart it")
    if settings["fsync"] != "on":
        refusals.append(
            "it has fsync = off, so PREPARE TRANSACTION and COMMIT PREPARED return before "
            "their WAL record is on disk, and a power cut can lose a participant's vote or "
            "commit; set fsync = on")
    if settings["full_page_writes"] != "on":
        warnings_.append(
            "full_page_writes = off: a power cut in the middle of a page write can leave a "
            "torn page that WAL replay cannot repair (safe only on storage that never tears "
            "a page)")
    if settings["synchronous_commit"] in ("off", "local"):
        warnings_.append(
            f"synchronous_commit = {settings['synchronous_commit']}: plain commits may be "
            "lost in a power cut (PREPARE TRANSACTION and COMMIT PREPARED still wait for "
            "their WAL flush; a participant's lazy ABORT record is lazy anyway)")
    return refusals, warnings_


def preflight(base: str, participants: int) -> None:
    """Refuse, with one clear message, a server the 2PC participants cannot use or that
    would not keep their forced writes through a power cut (``fsync``), and warn about
    settings that weaken durability (``full_page_writes``, ``synchronous_commit``).
    PostgreSQL's own durability is PostgreSQL's: txlib only checks that it is on."""
    with connect(base, "postgres") as conn:
        settings = {name: str(conn.execute(f"SHOW {name}").fetchone()[0])
                    for name in SETTINGS}
    refusals, warnings_ = judge_settings(settings, participants)
    if refusals:
        raise TxlibError(f"PostgreSQL at {describe_server(base)} cannot be used: "
                         + "; and ".join(refusals))
    for text in warnings_:
        warnings.warn(f"PostgreSQL at {describe_server(base)}: {text}", DurabilityWarning,
                      stacklevel=3)


OPEN_TOKENS: set[str] = set()  # the systems of this process that have not closed
OWNERS_TABLE = ("CREATE TABLE IF NOT EXISTS txlib_owners(token text PRIMARY KEY, "
                "host text NOT NULL, pid integer NOT NULL, coordinator_log text NOT NULL, "
                "started timestamptz NOT NULL DEFAULT now())")
# Columns added since: the commit protocol the system runs (a row an older txlib wrote is
# 2PC's, the rule that txlib resolved its leftovers by), and the participants and
# options its roster and configuration were made from (JSON; NULL in an older row).
OLDER_PROTOCOL = TwoPhaseCommit.name
OWNERS_COLUMNS = (
    "ALTER TABLE txlib_owners ADD COLUMN IF NOT EXISTS protocol text NOT NULL "
    f"DEFAULT '{OLDER_PROTOCOL}'",
    "ALTER TABLE txlib_owners ADD COLUMN IF NOT EXISTS protocol_setup text",
)


class OwnerRow(NamedTuple):
    """A row of ``txlib_owners``: a txlib system registered as using the database."""

    host: str
    pid: int
    coordinator_log: str
    protocol: str = OLDER_PROTOCOL
    protocol_setup: str | None = None


def owners_table(conn: Any) -> None:
    """Make ``txlib_owners``, or bring one an older txlib made up to date."""
    conn.execute(OWNERS_TABLE)
    for statement in OWNERS_COLUMNS:
        conn.execute(statement)


def gid_token(gid: str) -> str | None:
    """The token of the system that made a txlib gid (None for another program's)."""
    parts = gid.split(":")
    return parts[1] if gid.startswith(GID_PREFIX) and len(parts) > 2 else None


def wal_syncs(base: str, timeout: float = 10.0, quiet: str = "txlib_") -> int:
    """The server's WAL syncs so far (``pg_stat_wal.wal_sync``: real fsyncs; never
    counted with fsync=off), once no backend of a database named ``quiet...`` is left:
    a backend reports its counts when it ends (or when idle, at most once a second)."""
    deadline = time.monotonic() + timeout
    with connect(base, "postgres") as conn:
        while time.monotonic() < deadline and conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE starts_with(datname, %s) "
                "AND pid <> pg_backend_pid()", (quiet,)).fetchone():
            time.sleep(0.02)
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0])


def setup_database(base: str, dbname: str, account: str, balance: int,
                   owner: Mapping[str, Any]) -> list[str]:
    """Create ``dbname`` if needed, register ``owner`` as the system using it, and give it
    fresh tables holding one account. ``owner``: its ``token``, its ``coordinator_log``
    (a path), and the commit ``protocol`` it runs (a registered name) with the
    ``participants`` and ``options`` its roster was made from.

    Prepared transactions left in the database by a txlib system whose process has died
    (on this host) are resolved as that system's protocol concludes from the one log
    this setup can read, its coordinator's (:func:`dead_owner_conclusion`; 2PC: COMMIT
    logged, commit; otherwise presumed abort); the lines returned say what was done.
    Where its protocol cannot conclude from that log (3PC, Paxos Commit: the participants
    or an acceptor may have decided without the coordinator), the setup is refused and
    the work left prepared: a guess could undo a commit. Anything else in use (a running
    system's tables or prepared transactions, another program's prepared transactions)
    is refused too: txlib does not touch what is not its own.
    """
    psycopg = _psycopg()
    sql = psycopg.sql
    with connect(base, "postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (dbname,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    done: list[str] = []
    with connect(base, dbname) as conn:
        conn.execute("SET lock_timeout = '10s'")  # an error, not a hang, if a lock is held
        owners_table(conn)
        found = examine(conn, base, dbname)
        for gid, conclusion in found.concluded.items():
            commit = conclusion.outcome == "commit"
            conn.execute(sql.SQL("COMMIT PREPARED {}" if commit else "ROLLBACK PREPARED {}")
                         .format(sql.Literal(gid)))
            done.append(f"{dbname}: {'committed' if commit else 'rolled back'} {gid}, left "
                        f"in doubt by a dead txlib process ({conclusion.reason})")
        with conn.transaction():
            conn.execute("DELETE FROM txlib_owners WHERE token = ANY(%s)", (found.dead,))
            OPEN_TOKENS.add(owner["token"])
            setup = {"participants": list(owner["participants"]),
                     "options": dict(owner["options"])}
            conn.execute("INSERT INTO txlib_owners(token, host, pid, coordinator_log, "
                         "protocol, protocol_setup) VALUES (%s, %s, %s, %s, %s, %s)",
                         (owner["token"], socket.gethostname(), os.getpid(),
                          str(owner["coordinator_log"]), owner["protocol"],
                          json.dumps(setup, sort_keys=True)))
            conn.execute("DROP TABLE IF EXISTS accounts, txlog")
            conn.execute("CREATE TABLE accounts(name text PRIMARY KEY, balance bigint NOT NULL)")
            conn.execute("CREATE TABLE txlog(id bigserial PRIMARY KEY, tx text NOT NULL, "
                         "record text NOT NULL, data text NOT NULL, forced boolean NOT NULL, "
                         "decides text, time bigint NOT NULL)")
            conn.execute("INSERT INTO accounts VALUES (%s, %s)", (account, balance))
    return done


class Leftovers(NamedTuple):
    """What a setup found in a database that it may clear: the tokens of the systems
    registered there, all dead (``dead``), and what their protocols conclude about each
    prepared transaction they left (``concluded``: gid -> conclusion, never None)."""

    dead: list[str]
    concluded: dict[str, Conclusion]


def examine(conn: Any, base: str, dbname: str) -> Leftovers:
    """The leftovers in the database of ``conn`` (see :func:`setup_database`), or a
    TxlibError if anything in it is in use or cannot be resolved safely."""
    here = socket.gethostname()
    owners = {t: OwnerRow(*rest) for t, *rest in conn.execute(
        "SELECT token, host, pid, coordinator_log, protocol, protocol_setup "
        "FROM txlib_owners")}

    def dead(token: str) -> bool:
        host, pid = owners[token].host, owners[token].pid
        if pid == os.getpid():  # this process: dead unless still open here
            return host == here and token not in OPEN_TOKENS
        return host == here and not pid_alive(pid)

    gids = [g for (g,) in conn.execute(
        "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")]
    foreign = [g for g in gids if gid_token(g) is None]
    alive = sorted({t for g in gids if (t := gid_token(g)) is not None
                    and (t not in owners or not dead(t))})
    alive += sorted(t for t in owners if t not in alive and not dead(t))
    if foreign or alive:
        what = []
        if foreign:
            what.append(f"prepared transactions txlib did not make: {foreign}")
        for t in alive:
            row = owners.get(t, OwnerRow("an unknown host", 0, ""))
            what.append(f"the tables or prepared transactions of another txlib system "
                        f"(token {t}, pid {row.pid} on {row.host}, still running or "
                        "not known here)")
        raise TxlibError(
            f"database {dbname!r} on {describe_server(base)} is in use: "
            + "; ".join(what) + ". Choose another database_prefix=, or resolve them "
            "(txlib.real.recovery.resolve_prepared) once their owner is gone")
    concluded = {}
    for gid in gids:
        token = gid_token(gid)
        assert token is not None  # foreign gids were refused above
        concluded[gid] = dead_owner_conclusion(owners[token], gid)
    undecided = [gid for gid, c in concluded.items() if c.outcome is None]
    if undecided:
        raise TxlibError(_undecided_message(base, dbname, owners, concluded, undecided))
    return Leftovers(list(owners), concluded)


def check_database(base: str, dbname: str) -> None:
    """Refuse now what :func:`setup_database` would refuse in ``dbname`` (if it exists),
    without changing it: a system checks all its databases before it wipes any, so that
    a refusal leaves every database as it was (a dead system's records in one may be
    what tells the outcome of its work left prepared in another)."""
    with connect(base, "postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (dbname,)).fetchone():
            return
    with connect(base, dbname) as conn:
        conn.execute("SET lock_timeout = '10s'")
        owners_table(conn)
        examine(conn, base, dbname)


def dead_owner_conclusion(row: OwnerRow, gid: str) -> Conclusion:
    """What the protocol of a dead system (``row``) concludes about the transaction of
    its prepared ``gid`` from the one log the setup can read: its coordinator's. Its
    other nodes' logs are unread (the participants' are in databases this setup may be
    wiping, the acceptors' in the dead run's folder), so they count as nodes whose
    silence says nothing (``running``): 2PC's presumed abort needs only the
    coordinator's log; 3PC and Paxos Commit conclude only from a decision it logged,
    and otherwise answer None. A row from an older txlib (no participants and options
    recorded) is rebuilt from the gid's participant: 2PC's rule needs no more."""
    tx = gid.split(":", 5)[-1]
    try:
        protocol = get_protocol(row.protocol)
        if not isinstance(protocol, CommitProtocol):
            raise TxlibError(f"{row.protocol!r} is not a commit protocol")
        setup: Mapping[str, Any] = json.loads(row.protocol_setup) \
            if row.protocol_setup is not None else \
            {"participants": [gid.split(":")[2]], "options": {}}
        participants, options = tuple(setup["participants"]), dict(setup["options"])
        roster = protocol.roster(participants, options)
        config = protocol.make_config(participants, options)
    except (ValueError, KeyError, TypeError) as exc:  # TxlibError is a ValueError
        return Conclusion(None, f"its protocol cannot be rebuilt here: {exc}")
    records = read_coordinator_records(row.coordinator_log).get(tx, [])
    logs = {COORDINATOR: logged(records)}
    unread = frozenset(roster.names) - {COORDINATOR}
    conclusion = protocol.outcome_from_logs(logs, roster, config, unread)
    if conclusion.outcome is None:  # its reason would speak of nodes still at work
        return Conclusion(None, f"its coordinator's log alone does not decide it: the "
                                f"logs of {', '.join(sorted(unread))} may")
    return conclusion


def _undecided_message(base: str, dbname: str, owners: Mapping[str, OwnerRow],
                       concluded: Mapping[str, Conclusion], undecided: list[str]) -> str:
    """The refusal of a setup that found a dead system's work its protocol cannot
    resolve from the coordinator's log."""
    items = []
    for gid in undecided:
        token = gid_token(gid)
        assert token is not None
        row = owners[token]
        items.append(f"{gid} (left by a dead txlib process, pid {row.pid}, running protocol "
                     f"{row.protocol!r}, coordinator log {row.coordinator_log}; "
                     f"{concluded[gid].reason})")
    return (
        f"database {dbname!r} on {describe_server(base)} holds prepared work that a dead "
        "txlib system left in doubt and that its coordinator's log cannot resolve: "
        + "; ".join(items) + ". Its outcome may depend on its other nodes' logs, which "
        "this setup does not read (its protocol may have committed without the "
        "coordinator: 3PC's termination protocol, a Paxos Commit acceptor), so txlib "
        "will not guess: rolling it back could undo a commit; it is left prepared. "
        "Find the outcome from that system's logs (the files beside its coordinator log, "
        "the txlog tables of its participants' databases), then finish each with "
        f"txlib.real.recovery.resolve_prepared(conninfo, {dbname!r}, gid, commit=True or "
        "False); or choose another database_prefix=")


def release_database(base: str, dbname: str, token: str) -> None:
    """Unregister the system ``token`` from ``dbname`` (its close)."""
    OPEN_TOKENS.discard(token)
    with connect(base, dbname) as conn:
        conn.execute(OWNERS_TABLE)
        conn.execute("DELETE FROM txlib_owners WHERE token = %s", (token,))


def read_coordinator_records(path: str) -> Records:
    from .stores import read_file_log

    return read_file_log(Path(path))


def inspect(base: str, dbname: str, account: str) -> dict[str, Any]:
    """Balance, transactions in doubt and whether the row is locked, from outside."""
    psycopg = _psycopg()
    with connect(base, dbname) as conn:
        balance = conn.execute("SELECT balance FROM accounts WHERE name = %s",
                               (account,)).fetchone()[0]
        gids = [g for (g,) in conn.execute(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")]
        locked = False
        try:
            with conn.transaction():
                conn.execute("SELECT 1 FROM accounts WHERE name = %s FOR UPDATE NOWAIT",
                             (account,))
        except psycopg.errors.LockNotAvailable:
            locked = True
    return {"account": account, "balance": int(balance), "in_doubt": gids, "locked": locked}


MAX_GID_BYTES = 199  # PostgreSQL's limit on a prepared transaction's identifier (200 - 1)
RECONNECT_SECONDS = 10.0  # how long a node keeps trying to reach its server again


class PostgresAccount:
    """A participant's account row and protocol log in its own PostgreSQL database.

    - reading the balance before voting opens the local transaction and locks the row
      (``SELECT ... FOR UPDATE``);
    - ``PREPARED`` (forced): update the row, insert the ``PREPARED`` log row, then
      ``PREPARE TRANSACTION gid``: durable, in doubt, still holding the row lock. The gid
      carries the operation, so a restarted node can rebuild the record it cannot read.
      If the database cannot prepare (no free prepared-transaction slot, a gid over
      PostgreSQL's limit, the connection lost before the PREPARE completed), it raises
      :class:`~txlib.real.stores.PrepareFailed`: the participant votes NO;
    - ``COMMITTED`` (forced): ``COMMIT PREPARED gid``. That commit *is* the record: a
      committed ``PREPARED`` row with no prepared transaction left means committed. If
      the prepared transaction is gone and its work was rolled back (an operator's
      ``ROLLBACK PREPARED``), it raises :class:`~txlib.real.stores.HeuristicOutcome`;
    - ``ABORT`` (lazy): roll back the open or prepared transaction (an operator's
      ``COMMIT PREPARED`` found here is a heuristic commit), then insert the record with
      ``synchronous_commit = off``.

    A lost connection (a server restart, a terminated backend) is re-opened for up to
    :data:`RECONNECT_SECONDS`, and the step retried where that is safe; after that the
    node stops with :class:`DatabaseLost`, which says so.
    """

    def __init__(self, conninfo: str, account: str, token: str, node: str) -> None:
        psycopg = _psycopg()
        self.psycopg = psycopg
        self.sql = psycopg.sql
        self.conninfo = conninfo
        self.node = node
        self.account = account
        self.prefix = f"{GID_PREFIX}{token}:{node}:"
        self.fsyncs = 0
        self.reconnects = 0
        self.open_tx: str | None = None
        self.gids: dict[str, str] = {}
        self.conn: Any = None
        self.backend_pid = 0
        self._connect()

    # --- the connection ---------------------------------------------------------------
    def _connect(self) -> None:
        self.conn = self.psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
        self.conn.execute("SET lock_timeout = '10s'")
        self.backend_pid = int(self.conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        self.open_tx = None

    def _lost(self, exc: BaseException) -> bool:
        """Is ``exc`` the loss of the connection (not an error the server reported)?"""
        return isinstance(exc, self.psycopg.Error) and bool(
            self.conn is None or self.conn.closed or self.conn.broken)

    def reconnect(self, why: BaseException) -> None:
        """Open a new connection (for up to RECONNECT_SECONDS), then wait until the old
        backend has ended, so that whatever it was doing is settled one way or the other."""
        old_pid = self.backend_pid
        with contextlib.suppress(Exception):
            self.conn.close()
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            try:
                self._connect()
                break
            except self.psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise DatabaseLost(
                        f"{self.node} lost its connection to PostgreSQL "
                        f"({type(why).__name__}: {str(why).strip()[:200]}) and could not "
                        f"reconnect for {RECONNECT_SECONDS:.0f} s: {first}") from None
                time.sleep(0.1)
        self.reconnects += 1
        while time.monotonic() < deadline and self.conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (old_pid,)).fetchone():
            time.sleep(0.02)

    def _retry(self, step: Callable[[], T]) -> T:
        """Run ``step``; if the connection was lost, reconnect and run it once more
        (``step`` must be safe to repeat: it looks before it acts)."""
        try:
            return step()
        except self.psycopg.Error as exc:
            if not self._lost(exc):
                raise
            self.reconnect(exc)
        return step()

    # --- reading ----------------------------------------------------------------------
    def gid(self, tx: str, data: Mapping[str, Any]) -> str:
        return f"{self.prefix}{data.get('op', '')}:{int(data.get('amount', 0))}:{tx}"

    def _lit(self, text: str, value: str) -> Any:
        return self.sql.SQL(text).format(self.sql.Literal(value))

    def balance(self, tx: str) -> int:
        def step() -> int:
            if self.open_tx is None:
                self.conn.execute("BEGIN")
                self.open_tx = tx
            return int(self.conn.execute(
                "SELECT balance FROM accounts WHERE name = %s FOR UPDATE",
                (self.account,)).fetchone()[0])

        return self._retry(step)

    def _prepared(self) -> dict[str, str]:
        out = {}
        for (gid,) in self.conn.execute(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "
                "AND starts_with(gid, %s)", (self.prefix,)):
            out[gid[len(self.prefix):].split(":", 2)[2]] = gid
        return out

    def _visible_prepared(self, tx: str) -> bool:
        """Is the PREPARED log row of ``tx`` committed (its prepared transaction was)?"""
        return self.conn.execute("SELECT 1 FROM txlog WHERE tx = %s AND record = 'PREPARED'",
                                 (tx,)).fetchone() is not None

    def read(self) -> Records:
        return self._retry(self._read)

    def _read(self) -> Records:
        out: Records = {}
        for tx, record, data, forced, decides, time_ in self.conn.execute(
                "SELECT tx, record, data, forced, decides, time FROM txlog ORDER BY id"):
            out.setdefault(tx, []).append(
                (LogRecord(record, json.loads(data), forced, int(time_)), decides))
        self.gids = self._prepared()
        for tx, gid in self.gids.items():
            op, amount, _ = gid[len(self.prefix):].split(":", 2)
            data = {"tx": tx, "op": op, "amount": int(amount)}
            out.setdefault(tx, []).append((LogRecord("PREPARED", data, True, 0), None))
        for tx, records in out.items():
            names = {r.record for r, _ in records}
            if "PREPARED" in names and tx not in self.gids and not names & {"COMMITTED",
                                                                            "ABORT"}:
                # A visible PREPARED row: its prepared transaction was committed.
                prepared = next(r for r, _ in records if r.record == "PREPARED")
                records.append((LogRecord("COMMITTED", dict(prepared.data), True,
                                          prepared.time), "commit"))
        return out

    # --- writing ----------------------------------------------------------------------
    def append(self, tx: str, record: str, data: dict[str, Any], forced: bool,
               decides: str | None, time: int) -> None:
        row = (tx, record, json.dumps(data), forced, decides, time)
        if record == "PREPARED":
            self._prepare(tx, data, row)
        elif record == "COMMITTED":
            self._retry(lambda: self._commit_prepared(tx))
            self.fsyncs += 1
        else:
            if record == "ABORT":
                self._retry(lambda: self._rollback(tx))
            self._retry(lambda: self._insert(row, forced))
            if forced:
                self.fsyncs += 1

    def _prepare(self, tx: str, data: dict[str, Any], row: tuple[Any, ...]) -> None:
        new_gid = self.gid(tx, data)
        if len(new_gid.encode()) > MAX_GID_BYTES:
            self._abandon()
            raise PrepareFailed(
                f"the prepared transaction's id would be {len(new_gid.encode())} bytes, over "
                f"PostgreSQL's limit of {MAX_GID_BYTES}: shorten the transaction or "
                "participant names")
        try:
            if self.open_tx is None:
                self.balance(tx)
            c = self.conn
            c.execute("UPDATE accounts SET balance = balance + %s WHERE name = %s",
                      (delta(data), self.account))
            c.execute(INSERT_LOG, row)
            c.execute(self._lit("PREPARE TRANSACTION {}", new_gid))
        except self.psycopg.Error as exc:
            if self._lost(exc):
                # Did the PREPARE complete before the connection went? Ask a new one.
                self.reconnect(exc)
                if new_gid in self._prepared().values():
                    self.gids[tx] = new_gid
                    self.fsyncs += 1
                    return
                raise PrepareFailed(f"lost the connection to PostgreSQL before PREPARE "
                                    f"TRANSACTION completed ({type(exc).__name__}); the "
                                    "server rolled the local transaction back") from None
            self._abandon()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise PrepareFailed(f"PostgreSQL refused to prepare: {type(exc).__name__}: "
                                f"{first}") from None
        self.open_tx = None
        self.gids[tx] = new_gid
        self.fsyncs += 1

    def _abandon(self) -> None:
        """Roll back the open local transaction, if any (and if the connection lives)."""
        with contextlib.suppress(self.psycopg.Error):
            if self.conn.info.transaction_status != self.psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
        self.open_tx = None

    def _commit_prepared(self, tx: str) -> None:
        gid = self.gids.get(tx) or self._prepared().get(tx)
        if gid is not None:
            try:
                self.conn.execute(self._lit("COMMIT PREPARED {}", gid))
            except self.psycopg.errors.UndefinedObject:
                pass  # gone meanwhile: look below
            else:
                self.gids.pop(tx, None)
                return
        self.gids.pop(tx, None)
        if not self._visible_prepared(tx):
            raise HeuristicOutcome(
                "rollback", f"the prepared transaction of {tx} is gone and its work was "
                "rolled back (a ROLLBACK PREPARED outside the protocol) although the "
                "decision is commit")

    def _rollback(self, tx: str) -> None:
        if self.open_tx is not None:
            self._abandon()
        gid = self.gids.get(tx)
        if gid is None:
            return
        try:
            self.conn.execute(self._lit("ROLLBACK PREPARED {}", gid))
        except self.psycopg.errors.UndefinedObject:
            if self._visible_prepared(tx):
                self.gids.pop(tx, None)
                raise HeuristicOutcome(
                    "commit", f"the prepared transaction of {tx} is gone and its work was "
                    "committed (a COMMIT PREPARED outside the protocol) although the "
                    "decision is abort") from None
        self.gids.pop(tx, None)
        self.fsyncs += 1

    def _insert(self, row: tuple[Any, ...], forced: bool) -> None:
        with self.conn.transaction():
            if not forced:
                self.conn.execute("SET LOCAL synchronous_commit = off")
            self.conn.execute(INSERT_LOG, row)

    def held(self, tx: str) -> bool:
        return tx in self.gids

    def close(self) -> None:
        self.conn.close()


INSERT_LOG = ("INSERT INTO txlog(tx, record, data, forced, decides, time) "
              "VALUES (%s, %s, %s, %s, %s, %s)")


class DatabaseLost(RuntimeError):
    """A node lost its database connection and could not get it back in time."""
