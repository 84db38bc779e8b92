"""The participants' databases of a real run, seen from the runner: SQLite files in the
run's folder, or one PostgreSQL database per participant; made fresh before a run,
named in each node's spec, and read from outside (balance, doubts, row lock)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import TxlibError, bad_choice
from . import postgres as pg
from .stores import sqlite_create, sqlite_inspect

BACKENDS = ("sqlite", "postgres")


def check_backends(backend: Any, participants: Sequence[str]) -> dict[str, str]:
    """``{participant: "sqlite" | "postgres"}`` from ``backend``: one backend for every
    participant, or a mapping naming each participant's (XA's purpose: different
    databases in one transaction)."""
    if isinstance(backend, Mapping):
        for p, kind in backend.items():
            if p not in participants:
                raise bad_choice("participant in backend", p, participants)
            if kind not in BACKENDS:
                raise bad_choice(f"backend of {p}", kind, BACKENDS)
        missing = [p for p in participants if p not in backend]
        if missing:
            raise TxlibError(f"backend names a database for some participants but not for "
                             f"{missing}; name one of {BACKENDS} for each")
        return {p: str(backend[p]) for p in participants}
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise bad_choice("backend", backend, BACKENDS)
    return dict.fromkeys(participants, backend)


class Databases:
    """One account database per participant: an SQLite file ``data/<participant>.sqlite``
    in the run's folder (``"sqlite"``), or the database ``prefix + participant`` on the
    server ``postgres`` (``"postgres"``; a :class:`~txlib.real.PostgresServer` or a libpq
    connection string). ``backend`` is one of them for everyone, or a mapping
    ``{participant: backend}`` (see :func:`check_backends`)."""

    def __init__(self, backend: Any, participants: Sequence[str], *, postgres: Any = None,
                 prefix: str = "txlib_", vfs: str | None = None) -> None:
        self.participants = tuple(participants)
        self.kinds = check_backends(backend, self.participants)
        kinds = sorted(set(self.kinds.values()), reverse=True)
        self.backend = "+".join(kinds)  # "sqlite", "postgres" or "sqlite+postgres"
        self.prefix = prefix
        self.vfs = vfs  # the SQLite VFS every connection uses (None: the default one)
        self.conninfo = ""
        if "postgres" in kinds:
            if postgres is None:
                raise TxlibError(
                    "PostgreSQL participants need postgres=: a txlib.real.PostgresServer "
                    "(PostgresServer.start() starts a throwaway one) or a libpq connection "
                    "string such as 'host=127.0.0.1 port=5432 user=postgres'")
            self.conninfo = getattr(postgres, "conninfo", postgres)
            if not isinstance(self.conninfo, str):
                raise TxlibError(f"postgres must be a PostgresServer or a connection "
                                 f"string, got {postgres!r}")
        named: dict[str, str] = {}
        for p in self.on_postgres():  # database names are in lower case: may collide
            other = named.setdefault(self.database_name(p), p)
            if other != p:
                raise TxlibError(
                    f"participants {other!r} and {p!r} would share the PostgreSQL database "
                    f"{self.database_name(p)!r} (txlib names databases in lower case): name "
                    "them so that they differ in more than case")
        self.token = os.urandom(4).hex()  # names this run's prepared transactions
        self.folder = Path()
        self.created = False
        self.registered: list[str] = []  # the PostgreSQL participants this system holds

    def sqlite_path(self, participant: str) -> Path:
        return self.folder / "data" / f"{participant}.sqlite"

    def database_name(self, participant: str) -> str:
        return f"{self.prefix}{participant}".lower()

    def on_postgres(self) -> list[str]:
        """The participants whose database is PostgreSQL."""
        return [p for p in self.participants if self.kinds[p] == "postgres"]

    def check_server(self) -> None:
        """Refuse a PostgreSQL server the participants cannot use (see
        :func:`txlib.real.postgres.preflight`)."""
        if self.on_postgres():
            pg.preflight(self.conninfo, len(self.on_postgres()))

    def create(self, folder: Path, balances: Mapping[str, int], coordinator_log: Path,
               protocol: str, options: Mapping[str, Any]) -> list[str]:
        """Give each participant a fresh database holding its balance (``folder``: the
        run's folder). ``protocol`` (a registered name) and its ``options``: what the
        system runs, recorded with it in each PostgreSQL database, so that a later setup
        knows how to resolve what it might leave behind. Returns what was done about
        prepared transactions a dead system left in them (see
        :func:`txlib.real.postgres.setup_database`)."""
        self.folder = folder
        done: list[str] = []
        owner = {"token": self.token, "coordinator_log": str(coordinator_log),
                 "protocol": protocol, "participants": list(self.participants),
                 "options": dict(options)}
        for p in self.on_postgres():  # refuse before wiping any of them
            pg.check_database(self.conninfo, self.database_name(p))
        for p in self.participants:
            if self.kinds[p] == "sqlite":
                sqlite_create(self.sqlite_path(p), p, balances[p])
            else:
                done += pg.setup_database(self.conninfo, self.database_name(p), p,
                                          balances[p], owner)
                self.registered.append(p)
        self.created = True
        return done

    def release(self) -> None:
        """The system is closing: unregister it from the PostgreSQL databases it set up
        (also those set up before a later one was refused)."""
        while self.registered:
            p = self.registered.pop()
            pg.release_database(self.conninfo, self.database_name(p), self.token)

    def store(self, participant: str) -> dict[str, Any]:
        """The store spec of ``participant``'s node (see :func:`txlib.real.stores.open_store`)."""
        if self.kinds[participant] == "sqlite":
            return {"kind": "sqlite", "path": str(self.sqlite_path(participant)),
                    "account": participant, "vfs": self.vfs}
        return {"kind": "postgres", "account": participant, "token": self.token,
                "conninfo": pg.conninfo_for(self.conninfo, self.database_name(participant))}

    def inspect(self) -> dict[str, dict[str, Any]]:
        """Each participant's committed balance, transactions in doubt and row lock,
        read from its database (from outside the node)."""
        return {p: self.inspect_one(p) for p in self.participants}

    def inspect_one(self, p: str) -> dict[str, Any]:
        """:meth:`inspect` of participant ``p``."""
        if self.kinds[p] == "sqlite":
            info = sqlite_inspect(self.sqlite_path(p), self.vfs)
            held = info["held_by"]
            return {"balance": info["balance"], "in_doubt": [held] if held else [],
                    "locked": held is not None}
        return pg.inspect(self.conninfo, self.database_name(p), p)
