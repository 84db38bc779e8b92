"""PostgreSQL participants, checks of a server's settings, and throwaway local clusters.

Each participant is a database on one PostgreSQL server, holding its account row and
its protocol log (table ``txlog``). Voting YES is ``PREPARE TRANSACTION``: the row
change and the ``PREPARED`` log row go into one local transaction, which PostgreSQL then
keeps on disk, in doubt, holding its row lock, visible in ``pg_prepared_xacts``, until
``COMMIT PREPARED`` or ``ROLLBACK PREPARED`` from any session (such as a restarted
node's). The driver is psycopg 3 (``pip install "psycopg[binary]"``).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..engine.records import LogRecord
from ..errors import TxlibError
from .stores import Records, delta

GID_PREFIX = "txlib:"


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
    return _psycopg().conninfo.make_conninfo(base, dbname=dbname)


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


def preflight(base: str, participants: int) -> None:
    """Refuse, with one clear message, a server the 2PC participants cannot use."""
    with connect(base, "postgres") as conn:
        value = int(conn.execute("SHOW max_prepared_transactions").fetchone()[0])
    if value < participants:
        raise TxlibError(
            f"PostgreSQL at {describe_server(base)} has max_prepared_transactions = {value}, "
            f"so it cannot keep {participants} prepared transaction(s) in doubt; set "
            f"max_prepared_transactions to at least {participants} (one per participant; "
            "e.g. 20) in postgresql.conf, or start the server with -c "
            "max_prepared_transactions=20, and restart it"
        )


def setup_database(base: str, dbname: str, account: str, balance: int) -> None:
    """Create ``dbname`` if needed and give it fresh tables holding one account.

    Transactions a previous run left prepared in it are rolled back first (they would
    hold locks on the tables).
    """
    psycopg = _psycopg()
    sql = psycopg.sql
    with connect(base, "postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (dbname,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    with connect(base, dbname) as conn:
        conn.execute("SET lock_timeout = '10s'")  # an error, not a hang, if a lock is held
        for (gid,) in conn.execute(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "
                "AND starts_with(gid, %s)", (GID_PREFIX,)).fetchall():
            conn.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))
        with conn.transaction():
            conn.execute("DROP TABLE IF EXISTS accounts, txlog")
            conn.execute("CREATE TABLE accounts(name text PRIMARY KEY, balance bigint NOT NULL)")
            conn.execute("CREATE TABLE txlog(id bigserial PRIMARY KEY, tx text NOT NULL, "
                         "record text NOT NULL, data text NOT NULL, forced boolean NOT NULL, "
                         "decides text, time bigint NOT NULL)")
            conn.execute("INSERT INTO accounts VALUES (%s, %s)", (account, balance))


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


class PostgresAccount:
    """A participant's account row and protocol log in its own PostgreSQL database.

    - reading the balance before voting opens the local transaction and locks the row
      (``SELECT ... FOR UPDATE``);
    - ``PREPARED`` (forced): update the row, insert the ``PREPARED`` log row, then
      ``PREPARE TRANSACTION gid``: durable, in doubt, still holding the row lock. The gid
      carries the operation, so a restarted node can rebuild the record it cannot read;
    - ``COMMITTED`` (forced): ``COMMIT PREPARED gid``. That commit *is* the record: a
      committed ``PREPARED`` row with no prepared transaction left means committed;
    - ``ABORT`` (lazy): roll back the open or prepared transaction, then insert the
      record with ``synchronous_commit = off``.
    """

    def __init__(self, conninfo: str, account: str, token: str, node: str) -> None:
        psycopg = _psycopg()
        self.sql = psycopg.sql
        self.conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
        self.conn.execute("SET lock_timeout = '10s'")
        self.account = account
        self.prefix = f"{GID_PREFIX}{token}:{node}:"
        self.fsyncs = 0
        self.open_tx: str | None = None
        self.gids: dict[str, str] = {}

    def gid(self, tx: str, data: Mapping[str, Any]) -> str:
        return f"{self.prefix}{data.get('op', '')}:{int(data.get('amount', 0))}:{tx}"

    def _lit(self, text: str, value: str) -> Any:
        return self.sql.SQL(text).format(self.sql.Literal(value))

    def balance(self, tx: str) -> int:
        if self.open_tx is None:
            self.conn.execute("BEGIN")
            self.open_tx = tx
        return int(self.conn.execute("SELECT balance FROM accounts WHERE name = %s FOR UPDATE",
                                     (self.account,)).fetchone()[0])

    def _prepared(self) -> dict[str, str]:
        out = {}
        for (gid,) in self.conn.execute(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() "
                "AND starts_with(gid, %s)", (self.prefix,)):
            out[gid[len(self.prefix):].split(":", 2)[2]] = gid
        return out

    def read(self) -> Records:
        out: Records = {}
        for tx, record, data, forced, decides, time in self.conn.execute(
                "SELECT tx, record, data, forced, decides, time FROM txlog ORDER BY id"):
            out.setdefault(tx, []).append(
                (LogRecord(record, json.loads(data), forced, int(time)), decides))
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

    def append(self, tx: str, record: str, data: dict[str, Any], forced: bool,
               decides: str | None, time: int) -> None:
        c = self.conn
        row = (tx, record, json.dumps(data), forced, decides, time)
        insert = ("INSERT INTO txlog(tx, record, data, forced, decides, time) "
                  "VALUES (%s, %s, %s, %s, %s, %s)")
        if record == "PREPARED":
            if self.open_tx is None:
                self.balance(tx)
            c.execute("UPDATE accounts SET balance = balance + %s WHERE name = %s",
                      (delta(data), self.account))
            c.execute(insert, row)
            new_gid = self.gid(tx, data)
            c.execute(self._lit("PREPARE TRANSACTION {}", new_gid))
            self.open_tx = None
            self.gids[tx] = new_gid
            self.fsyncs += 1
            return
        if record == "COMMITTED":
            gid = self.gids.pop(tx, None) or self._prepared().get(tx)
            if gid is None:
                raise RuntimeError(f"{tx} has no prepared transaction to commit")
            c.execute(self._lit("COMMIT PREPARED {}", gid))
            self.fsyncs += 1
            return
        if record == "ABORT":
            if self.open_tx is not None:
                c.execute("ROLLBACK")
                self.open_tx = None
            gid = self.gids.pop(tx, None)
            if gid is not None:
                c.execute(self._lit("ROLLBACK PREPARED {}", gid))
                self.fsyncs += 1
        with c.transaction():
            if not forced:
                c.execute("SET LOCAL synchronous_commit = off")
            c.execute(insert, row)
        if forced:
            self.fsyncs += 1

    def held(self, tx: str) -> bool:
        return tx in self.gids

    def close(self) -> None:
        self.conn.close()


# --- throwaway local clusters ----------------------------------------------------------
def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``$TXLIB_PG_BIN``, Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest), or ``PATH``."""
    env = os.environ.get("TXLIB_PG_BIN")
    if env:
        if (Path(env) / "initdb").exists():
            return Path(env)
        raise TxlibError(f"TXLIB_PG_BIN={env} holds no initdb; point it at the folder "
                         "with PostgreSQL's initdb and pg_ctl")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    raise TxlibError(
        "no PostgreSQL server programs (initdb, pg_ctl) found: install them "
        "(Debian: apt-get install postgresql), or set TXLIB_PG_BIN to their folder"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, outside the usual ephemeral range (so a connection's
    own port will not take it between this check and its use)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port_is_free(host, port):
            return port
    raise TxlibError(f"found no free TCP port on {host} between 20000 and 32000")


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PostgresServer:
    """A throwaway PostgreSQL cluster on a local port: ``initdb`` + ``pg_ctl``.

    It listens on 127.0.0.1 only (no Unix socket), trusts local connections, keeps
    ``fsync`` on, and allows ``max_prepared_transactions`` prepared transactions. As
    root (initdb refuses root) it runs the server programs as the ``postgres`` user,
    which Debian's package creates, in a folder that user owns.

    >>> with PostgresServer.start() as pg:      # doctest: +SKIP
    ...     txlib.real.run_transfer(backend="postgres", postgres=pg)
    """

    def __init__(self, directory: Path, bindir: Path, port: int, host: str,
                 runas: tuple[int, int] | None, owned: bool) -> None:
        self.directory = directory
        self.bindir = bindir
        self.port = port
        self.host = host
        self.user = "postgres"
        self._runas = runas
        self._owned = owned
        self.running = False

    @property
    def conninfo(self) -> str:
        """A libpq connection string (without a database name)."""
        return f"host={self.host} port={self.port} user={self.user}"

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    def __str__(self) -> str:
        return self.conninfo

    @classmethod
    def start(cls, *, port: int | None = None, max_prepared_transactions: int = 20,
              directory: str | os.PathLike[str] | None = None,
              settings: Mapping[str, Any] | None = None) -> PostgresServer:
        """initdb a new cluster and start it; ``settings`` are extra server settings."""
        bindir = find_bindir()
        host = "127.0.0.1"
        if port is None:
            port = free_port(host)
        elif not port_is_free(host, port):
            raise TxlibError(f"port {host}:{port} is already in use; pass another port= "
                             "or leave it out to pick a free one")
        runas = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise TxlibError(
                    "running as root, and initdb refuses to run as root: create a "
                    "'postgres' user (apt-get install postgresql creates one) or run as "
                    "a normal user"
                ) from None
            runas = (pw.pw_uid, pw.pw_gid)
        owned = directory is None
        base = Path(tempfile.mkdtemp(prefix="txlib-pg-") if directory is None else directory)
        base.mkdir(parents=True, exist_ok=True)
        if runas is not None:
            os.chown(base, *runas)
        os.chmod(base, 0o755)
        server = cls(base, bindir, port, host, runas, owned)
        try:
            server._run([str(bindir / "initdb"), "-D", str(server.datadir), "-U", "postgres",
                         "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"])
            conf = {
                "port": port, "listen_addresses": f"'{host}'",
                "unix_socket_directories": "''",
                "max_prepared_transactions": max_prepared_transactions,
                "max_connections": 60, "shared_buffers": "'32MB'", "fsync": "on",
                "synchronous_commit": "on", "logging_collector": "off",
            }
            for k, v in (settings or {}).items():
                conf[k] = v if isinstance(v, (int, float)) else f"'{v}'"
            with open(server.datadir / "postgresql.conf", "a") as f:
                f.write("\n# txlib throwaway cluster\n")
                f.writelines(f"{k} = {v}\n" for k, v in conf.items())
            server._run([str(bindir / "pg_ctl"), "-D", str(server.datadir), "-l",
                         str(base / "server.log"), "-w", "-t", "60", "start"])
            server.running = True
            atexit.register(server.stop)  # a forgotten throwaway server dies with us
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, cmd: list[str]) -> None:
        kwargs: dict[str, Any] = {}
        if self._runas is not None:
            kwargs.update(user=self._runas[0], group=self._runas[1], extra_groups=[])
        proc = subprocess.run(cmd, cwd=self.directory, capture_output=True, text=True,
                              check=False, **kwargs)
        if proc.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise TxlibError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout).strip()[-1500:]}\n{tail}".strip())

    def stop(self) -> None:
        """Stop the server (immediately) and remove its folder if it made one."""
        atexit.unregister(self.stop)
        if self.running:
            self.running = False
            with contextlib.suppress(TxlibError):
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m",
                           "immediate", "-w", "stop"])
        if self._owned:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
