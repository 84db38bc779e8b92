"""The coordinator's recovery scan, XA's ``xa_recover``: find a system's prepared work
left in the participants' databases and resolve it as its protocol concludes from the
durable logs.

A participant that voted YES keeps its work prepared (PostgreSQL: a prepared
transaction in ``pg_prepared_xacts``; SQLite: the row held by ``locked_by``) until it
hears the decision. If its process never comes back, nobody would ever finish it: it
holds its row lock, keeps VACUUM from removing dead rows, and its transaction id ages
towards wraparound. The transaction manager of XA therefore asks every resource manager
for its prepared branches when it recovers (``xa_recover``) and commits or rolls back
each from its own log. :func:`scan` and :func:`resolve` do that for a
:class:`~txlib.real.RealSystem`: only this system's work (its gids carry its token),
decided by the rule of the system's protocol over every node's durable log
(:meth:`~txlib.protocols.base.CommitProtocol.outcome_from_logs`):

- 2PC: ``COMMIT`` in the coordinator's log means commit, anything else is presumed
  abort; a transaction the running coordinator is still deciding is left alone.
- 3PC: a decision any node logged; else the termination protocol's rule with every
  node answering: commit if a node pre-committed, abort if none did.
- Paxos Commit: a decision any node logged; else the values a majority of acceptors
  accepted in one ballot: commit if every instance chose Prepared, abort if one chose
  Aborted (or if a participant never voted Prepared: its instance can choose nothing
  else).

In 3PC and Paxos Commit the coordinator's log alone cannot tell: the participants (the
termination protocol) or an acceptor (a takeover) may have committed without it. When
the logs cannot tell (no value chosen yet in Paxos Commit; 3PC nodes still at work),
the work is left in doubt, and the report line says why: a guess could contradict what
the protocol decides.

An operator finds orphans the same way, in SQL::

    SELECT gid, database, prepared, owner, age(transaction) FROM pg_prepared_xacts
    ORDER BY prepared;
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..protocols.base import Conclusion, logged
from .stores import SqliteAccount

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


def running(system: RealSystem, tx: str) -> frozenset[str]:
    """The nodes still at work on ``tx``: up, and in a state of their role that is not
    final. A node that is up and has not reported ``tx`` yet counts as at work: its
    PREPARE, or its own report, may still be on its way, and it may yet vote."""
    out = set()
    for node, h in system.handles.items():
        if not h.up:
            continue
        state = (h.status.get(tx) or {}).get("state")
        if state is None or state not in system.machines[node].terminal:
            out.add(node)
    return frozenset(out)


def decision(system: RealSystem, tx: str) -> Conclusion:
    """What ``tx``'s durable logs say about its outcome, by the rule of the system's
    protocol (:meth:`~txlib.protocols.base.CommitProtocol.outcome_from_logs`): every
    node's log (the coordinator's, the participants' databases, Paxos Commit's
    acceptors'), and the nodes still at work on it. Its ``outcome`` is None when the
    logs cannot tell yet: 2PC's coordinator is still deciding, 3PC's nodes may still
    terminate, no value is chosen yet in one of Paxos Commit's instances."""
    logs = {node: logged(records) for node, records in system.read_decisions(tx).items()}
    return system.protocol.outcome_from_logs(logs, system.roster, system.config,
                                             running(system, tx))


def resolve(system: RealSystem, items: Sequence[Prepared]) -> list[str]:
    """Commit or roll back each prepared item as the logs say (see :func:`decision`),
    or leave it in doubt when they cannot tell; one line per item saying what was done
    and why."""
    lines = []
    concluded: dict[str, Conclusion] = {}
    for item in items:
        if item.tx not in concluded:
            concluded[item.tx] = decision(system, item.tx)
        verdict = concluded[item.tx]
        if verdict.outcome is None:
            lines.append(f"{item.describe()}: left in doubt ({verdict.reason})")
            continue
        commit = verdict.outcome == "commit"
        if item.gid is not None:
            resolve_prepared(system.databases.conninfo, item.where, item.gid, commit=commit)
        else:
            _resolve_sqlite(system, item, verdict.outcome)
        lines.append(f"{item.describe()}: {'committed' if commit else 'rolled back'}"
                     f" ({verdict.reason})")
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
