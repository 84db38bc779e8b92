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


class Databases:
    """One account database per participant: an SQLite file ``data/<participant>.sqlite``
    in the run's folder (``backend="sqlite"``), or the database ``prefix + participant``
    on the server ``postgres`` (a :class:`~txlib.real.PostgresServer` or a libpq
    connection string)."""

    def __init__(self, backend: str, participants: Sequence[str], *, postgres: Any = None,
                 prefix: str = "txlib_", vfs: str | None = None) -> None:
        if backend not in BACKENDS:
            raise bad_choice("backend", backend, BACKENDS)
        self.backend = backend
        self.participants = tuple(participants)
        self.prefix = prefix
        self.vfs = vfs  # the SQLite VFS every connection uses (None: the default one)
        self.conninfo = ""
        if backend == "postgres":
            if postgres is None:
                raise TxlibError(
                    "backend='postgres' needs postgres=: a txlib.real.PostgresServer "
                    "(PostgresServer.start() starts a throwaway one) or a libpq connection "
                    "string such as 'host=127.0.0.1 port=5432 user=postgres'")
            self.conninfo = getattr(postgres, "conninfo", postgres)
            if not isinstance(self.conninfo, str):
                raise TxlibError(f"postgres must be a PostgresServer or a connection "
                                 f"string, got {postgres!r}")
        self.token = os.urandom(4).hex()  # names this run's prepared transactions
        self.folder = Path()

    def sqlite_path(self, participant: str) -> Path:
        return self.folder / "data" / f"{participant}.sqlite"

    def database_name(self, participant: str) -> str:
        return f"{self.prefix}{participant}".lower()

    def check_server(self) -> None:
        """Refuse a PostgreSQL server the participants cannot use (see
        :func:`txlib.real.postgres.preflight`)."""
        if self.backend == "postgres":
            pg.preflight(self.conninfo, len(self.participants))

    def create(self, folder: Path, balances: Mapping[str, int]) -> None:
        """Give each participant a fresh database holding its balance (``folder``: the
        run's folder)."""
        self.folder = folder
        for p in self.participants:
            if self.backend == "sqlite":
                sqlite_create(self.sqlite_path(p), p, balances[p])
            else:
                pg.setup_database(self.conninfo, self.database_name(p), p, balances[p])

    def store(self, participant: str) -> dict[str, Any]:
        """The store spec of ``participant``'s node (see :func:`txlib.real.stores.open_store`)."""
        if self.backend == "sqlite":
            return {"kind": "sqlite", "path": str(self.sqlite_path(participant)),
                    "account": participant, "vfs": self.vfs}
        return {"kind": "postgres", "account": participant, "token": self.token,
                "conninfo": pg.conninfo_for(self.conninfo, self.database_name(participant))}

    def inspect(self) -> dict[str, dict[str, Any]]:
        """Each participant's committed balance, transactions in doubt and row lock,
        read from its database (from outside the node)."""
        out = {}
        for p in self.participants:
            if self.backend == "sqlite":
                info = sqlite_inspect(self.sqlite_path(p), self.vfs)
                held = info["held_by"]
                out[p] = {"balance": info["balance"], "in_doubt": [held] if held else [],
                          "locked": held is not None}
            else:
                out[p] = pg.inspect(self.conninfo, self.database_name(p), p)
        return out
