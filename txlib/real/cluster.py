"""Throwaway local PostgreSQL clusters (``initdb`` + ``pg_ctl``) that do not outlive
their owner.

A cluster is stopped and its folder removed by :meth:`PostgresServer.stop` (also the
end of a ``with`` block, and ``atexit``). If the owning process dies without that (a
Jupyter kernel killed, ``kill -9``), two things still clean up:

- a **watchdog**, a small process started with the cluster, which holds the other end
  of a pipe from its owner: when the owner dies, the pipe closes and the watchdog stops
  the cluster and removes its folder;
- a **pid file** in ``<tmp>/txlib-pg-clusters/``: the next :meth:`PostgresServer.start`
  (in any process) stops every cluster listed there whose owner is dead.
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
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import TxlibError

REGISTRY = Path(tempfile.gettempdir()) / "txlib-pg-clusters"
STARTED: list[PostgresServer] = []  # every cluster this process started

# The watchdog: waits for end of file on stdin; "stopped" means its owner stopped the
# cluster itself; anything else (the owner died) means: stop it and remove its folder.
WATCHDOG = """
import json, sys
from txlib.real.cluster import stop_cluster
spec = json.loads(sys.argv[1])
said = sys.stdin.buffer.read()
if b"stopped" not in said:
    stop_cluster(spec)
"""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_cluster(spec: Mapping[str, Any]) -> None:
    """Stop a cluster described by its pid file (``datadir``, ``bindir``, ``runas``,
    ``directory``, ``owned``), whatever state it is in, and remove what it owns."""
    runas = spec.get("runas")
    kwargs: dict[str, Any] = {}
    if runas:
        kwargs.update(user=runas[0], group=runas[1], extra_groups=[])
    datadir = Path(spec["datadir"])
    if (datadir / "postmaster.pid").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([str(Path(spec["bindir"]) / "pg_ctl"), "-D", str(datadir), "-m",
                            "immediate", "-w", "-t", "20", "stop"], capture_output=True,
                           check=False, timeout=30, **kwargs)
        with contextlib.suppress(OSError, ValueError, IndexError):  # still there? kill it
            pid = int((datadir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
    if spec.get("owned"):
        shutil.rmtree(spec["directory"], ignore_errors=True)
    if spec.get("pidfile"):
        Path(spec["pidfile"]).unlink(missing_ok=True)


def sweep() -> list[str]:
    """Stop every registered cluster whose owner process is dead; their folders."""
    swept = []
    for path in sorted(REGISTRY.glob("*.json")):
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(int(spec.get("owner", 0))):
            stop_cluster({**spec, "pidfile": str(path)})
            swept.append(str(spec.get("directory")))
    return swept


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
    which Debian's package creates, in a folder that user owns. It does not outlive its
    owner (see the module docstring).

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
        self.pidfile = REGISTRY / f"{port}.json"
        self._watchdog: subprocess.Popen[bytes] | None = None

    def _spec(self) -> dict[str, Any]:
        """What a watchdog or a later sweep needs to stop this cluster."""
        return {"owner": os.getpid(), "datadir": str(self.datadir), "bindir": str(self.bindir),
                "runas": list(self._runas) if self._runas else None,
                "directory": str(self.directory), "owned": self._owned,
                "pidfile": str(self.pidfile)}

    def _guard(self) -> None:
        """Write the pid file and start the watchdog (see the module docstring)."""
        REGISTRY.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            REGISTRY.chmod(0o1777)
        spec = self._spec()
        self.pidfile.write_text(json.dumps(spec))
        root = str(Path(__file__).resolve().parent.parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, json.dumps(spec)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=root,
            start_new_session=True)

    def restart(self) -> None:
        """Restart the server (``pg_ctl restart -m fast``): every session is cut off;
        prepared transactions survive, as they survive a crash."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                   str(self.directory / "server.log"), "-m", "fast", "-w", "-t", "60",
                   "restart"])

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
        """initdb a new cluster and start it; ``settings`` are extra server settings.
        Clusters whose owner died without stopping them are stopped first."""
        sweep()
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
        STARTED.append(server)
        try:
            server._guard()
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
        self.pidfile.unlink(missing_ok=True)
        dog, self._watchdog = self._watchdog, None
        if dog is not None and dog.stdin is not None:
            with contextlib.suppress(OSError):
                dog.stdin.write(b"stopped")
                dog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                dog.wait(10)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
