"""Fixtures of the real-runtime suite: timeouts for crash tests and a throwaway
PostgreSQL cluster.

The PostgreSQL tests need the server programs (initdb, pg_ctl; Debian: ``apt-get
install postgresql``) and the psycopg package. Without either they are skipped with the
reason, except under CI (``CI`` set to ``true`` or ``1``), where they fail: CI installs
both. The cluster is made once per test session on a free port of 127.0.0.1 (as the
``postgres`` user when the tests run as root) and removed at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from txlib.real.system import QUICK_TIMEOUTS

# Wall-clock timeouts (ms) for tests that expect one particular outcome.
TIMEOUTS: dict[str, int] = QUICK_TIMEOUTS


@pytest.fixture
def timeouts() -> dict[str, int]:
    return dict(TIMEOUTS)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """Skip the PostgreSQL tests for ``reason``, or fail them loudly under CI."""
    if in_ci():
        pytest.fail(f"CI=true but the PostgreSQL tests cannot run: {reason}. .ci/run must "
                    "install PostgreSQL (apt-get install postgresql) and psycopg",
                    pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def leftovers() -> list[str]:
    """What this process's systems and clusters left: work folders, cluster folders,
    cluster pid files, running postmasters."""
    from txlib.real.cluster import STARTED, pid_alive
    from txlib.real.system import MADE_WORKDIRS

    out = [str(d) for d in MADE_WORKDIRS if d.exists()]
    netns = Path("/run/netns")
    if netns.exists():
        out += [str(p) for p in netns.glob(f"txlib-{os.getpid()}-*")]
    for server in STARTED:
        if server.directory.exists() and server._owned:
            out.append(str(server.directory))
        if server.pidfile.exists():
            out.append(str(server.pidfile))
        pidfile = server.datadir / "postmaster.pid"
        if pidfile.exists() and pid_alive(int(pidfile.read_text().split()[0])):
            out.append(f"a running postmaster in {server.datadir}")
    return out


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """No test may leave a work folder, a cluster folder or a running cluster behind
    (the pg_server cluster is stopped before this check: it is set up after it)."""
    yield
    left = leftovers()
    assert left == [], f"the real-runtime tests left these behind: {left}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A throwaway PostgreSQL cluster with max_prepared_transactions = 20."""
    from txlib.errors import TxlibError
    from txlib.real import PostgresServer

    try:
        import psycopg
    except ImportError:
        unavailable("the psycopg package is not installed (pip install 'psycopg[binary]')")
    try:
        server = PostgresServer.start()
    except TxlibError as exc:
        unavailable(f"no local PostgreSQL server could be started: {exc}")
    try:
        yield server
        with psycopg.connect(server.conninfo + " dbname=postgres", autocommit=True) as c:
            left = c.execute("SELECT database, gid FROM pg_prepared_xacts").fetchall()
        assert left == [], f"the tests left prepared transactions behind: {left}"
    finally:
        server.stop()
