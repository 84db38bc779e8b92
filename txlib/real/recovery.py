"""The coordinator's recovery scan, XA's ``xa_recover``: find a system's prepared work
left in the participants' databases and resolve it from the coordinator's log.

A participant that voted YES keeps its work prepared (PostgreSQL: a prepared
transaction in ``pg_prepared_xacts``; SQLite: the row held by ``locked_by``) until it
hears the decision. If its process never comes back, nobody would ever finish it: it
holds its row lock, keeps VACUUM from removing dead rows, and its transaction id ages
towards wraparound. The transaction manager of XA therefore asks every resource manager
for its prepared branches when it recovers (``xa_recover``) and commits or rolls back
each from its own log. :func:`scan` and :func:`resolve` do that for a
:class:`~txlib.real.RealSystem`: only this system's work (its gids carry its token),
decided the coordinator's way: ``COMMIT`` logged means commit, anything else is
presumed abort. A transaction the running coordinator is still deciding is left alone.

An operator finds orphans the same way, in SQL::

    SELECT gid, database, prepared, owner, age(transaction) FROM pg_prepared_xacts
    ORDER BY prepared;
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocols.base import COORDINATOR
from .stores import SqliteAccount, read_records

if TYPE_CHECKING:
    from .system import RealSystem


@dataclass(frozen=True)
class Prepared:
    """One participant's prepared work of transaction ``tx``: in database ``where``,
    under ``gid`` (PostgreSQL) or in the held row (SQLite); PostgreSQL also says since
    when and how many transaction ids old it is."""

    participant: str
    tx: str
    where: str
    gid: str | None = None
    prepared_at: str | None = None
    xid_age: int | None = None

    def describe(self) -> str:
        extra = "" if self.gid is None else (f" (gid {self.gid}, prepared {self.prepared_at},"
                                             f" {self.xid_age} transaction ids old)")
        return f"{self.tx} at {self.participant}, in {self.where}{extra}"


def scan(system: RealSystem, participants: Sequence[str] | None = None) -> list[Prepared]:
    """This system's prepared work in the databases of ``participants`` (default: all)."""
    out: list[Prepared] = []
    dbs = system.databases
    for p in system.participants if participants is None else participants:
        if dbs.kinds[p] == "sqlite":
            holder = dbs.inspect_one(p)["in_doubt"]
            out += [Prepared(p, tx, str(dbs.sqlite_path(p))) for tx in holder]
            continue
        from .postgres import GID_PREFIX, connect

        prefix = f"{GID_PREFIX}{dbs.token}:{p}:"
        with connect(dbs.conninfo, dbs.database_name(p)) as conn:
            for gid, when, age in conn.execute(
                    "SELECT gid, prepared::text, age(transaction) FROM pg_prepared_xacts "
                    "WHERE database = current_database() AND starts_with(gid, %s) "
                    "ORDER BY prepared", (prefix,)):
                tx = gid[len(prefix):].split(":", 2)[2]
                out.append(Prepared(p, tx, dbs.database_name(p), gid, when, int(age)))
    return out


def decision(system: RealSystem, tx: str) -> str | None:
    """What the coordinator decided for ``tx``: ``"commit"`` if its log holds COMMIT,
    ``"abort"`` otherwise (presumed abort), or None while a running coordinator has not
    finished (it will decide, and tell). Presumed abort is 2PC's rule; in 3PC and Paxos
    Commit the outcome can be decided without the coordinator's log, so run the scan
    there only once their participants had every chance to finish."""
    logged = {r.record for r, _ in read_records(system.store_spec(COORDINATOR),
                                                COORDINATOR).get(tx, [])}
    if "COMMIT" in logged:
        return "commit"
    h = system.handles.get(COORDINATOR)
    state = (h.status.get(tx) or {}).get("state") if h is not None and h.up else None
    if state is not None and state not in system.machines[COORDINATOR].terminal:
        return None
    return "abort"


def resolve(system: RealSystem, items: Sequence[Prepared]) -> list[str]:
    """Commit or roll back each prepared item as the coordinator decided (see
    :func:`decision`); one line per item saying what was done and why."""
    lines = []
    for item in items:
        verdict = decision(system, item.tx)
        if verdict is None:
            lines.append(f"{item.describe()}: left alone, the coordinator is still deciding")
            continue
        why = ("the coordinator's log has COMMIT" if verdict == "commit"
               else "presumed abort: no COMMIT in the coordinator's log")
        if item.gid is not None:
            resolve_prepared(system.databases.conninfo, item.where, item.gid,
                             commit=verdict == "commit")
        else:
            _resolve_sqlite(system, item, verdict)
        lines.append(f"{item.describe()}: {'committed' if verdict == 'commit' else 'rolled back'}"
                     f" ({why})")
    return lines


def resolve_prepared(conninfo: str, dbname: str, gid: str, *, commit: bool) -> None:
    """``COMMIT PREPARED`` or ``ROLLBACK PREPARED`` one prepared transaction, as an
    operator would (only once its coordinator's decision is known)."""
    from .postgres import _psycopg, connect

    sql = _psycopg().sql
    with connect(conninfo, dbname) as conn:
        conn.execute(sql.SQL("COMMIT PREPARED {}" if commit else "ROLLBACK PREPARED {}")
                     .format(sql.Literal(gid)))


def _resolve_sqlite(system: RealSystem, item: Prepared, verdict: str) -> None:
    """Finish a held SQLite row as its node would: the record, and the row, together."""
    acct = SqliteAccount(item.where, item.participant, vfs=system.databases.vfs)
    try:
        data: dict[str, Any] = {"tx": item.tx}
        row = acct.conn.execute("SELECT data FROM txlog WHERE tx = ? AND record = 'PREPARED'",
                                (item.tx,)).fetchone()
        if row is not None:
            data = json.loads(row[0])
        record = "COMMITTED" if verdict == "commit" else "ABORT"
        acct.append(item.tx, record, {**data, "resolved_by": "recovery scan"},
                    record == "COMMITTED", verdict, 0)
    finally:
        acct.close()
