"""The runner: start real node processes, run transactions, crash and restart nodes,
and collect what happened as a :class:`RealRun`.

Nodes are started from a fork server that has already imported txlib (a fork costs a
few milliseconds; a fresh Python with txlib costs several hundred). Each node connects
back to the runner's control socket; the runner hands out the address book, starts
transactions, kills nodes with SIGKILL (or lets them kill themselves at a named protocol
point), restarts them as new processes on the same port, and waits until every node is
back and every node has finished the transaction.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import selectors
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.records import LogRecord
from ..engine.trace import Trace
from ..errors import TxlibError, bad_choice
from ..properties import check_all, commit_outcome
from ..properties.commit import Violation
from ..protocols import bank
from ..protocols.base import COORDINATOR, CommitConfig
from ..protocols.two_phase import COORDINATOR_MACHINE, PARTICIPANT_MACHINE
from .crashpoints import Crash, as_crashes
from .forkserver import ForkServer
from .merge import merge, read_events
from .postgres import free_port, port_is_free

BACKENDS = ("sqlite", "postgres")

# Wall-clock timeouts (ms) of a real run: far above a loopback round trip with fsyncs,
# short enough that a crash test does not wait long.
REAL_TIMEOUTS: dict[str, int] = {
    "vote_timeout": 1000,
    "prepare_timeout": 2000,
    "decision_timeout": 300,
    "retry_interval": 200,
    "ack_timeout": 300,
}
TERMINAL = {COORDINATOR: ("ENDED", "ABORTED"), "participant": ("COMMITTED", "ABORTED")}
INITIAL = {COORDINATOR: COORDINATOR_MACHINE.initial, "participant": PARTICIPANT_MACHINE.initial}

@dataclass(eq=False)
class NodeHandle:
    """The runner's view of one node."""

    name: str
    port: int
    incarnation: int = 0
    pid: int = 0
    conn: socket.socket | None = None
    buf: bytes = b""
    up: bool = False
    ready: bool = False
    stopping: bool = False
    killing: bool = False
    error: str = ""
    error_kind: str = ""
    said_bye: bool = False
    crash_label: str = ""
    fsyncs: int = 0
    status: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return COORDINATOR if self.name == COORDINATOR else "participant"


@dataclass(frozen=True, eq=False)
class RealRun:
    """One transaction of a real run, once every node is back and has finished it.

    ``balances`` are the committed balances read from the databases, ``before`` those
    when the transaction began; ``in_doubt`` lists prepared transactions still in a
    participant's database, ``locked`` the participants whose row is still locked.
    ``problems()`` checks everything a crash test must hold.
    """

    backend: str
    tx: str
    participants: tuple[str, ...]
    settled: bool
    outcome: str
    decisions: dict[str, str | None]
    states: dict[str, str]
    down: frozenset[str]
    before: dict[str, int]
    balances: dict[str, int]
    operations: dict[str, tuple[str, int]]
    in_doubt: dict[str, tuple[str, ...]]
    locked: tuple[str, ...]
    crashes: tuple[dict[str, Any], ...]
    unfired: tuple[str, ...]
    fsyncs: dict[str, int]
    elapsed: float
    logs: dict[str, tuple[LogRecord, ...]]
    options: dict[str, Any]
    workdir: Path
    trace_or_none: Trace | None = field(repr=False)

    @property
    def nodes(self) -> tuple[str, ...]:
        return (COORDINATOR, *self.participants)

    @property
    def roles(self) -> dict[str, str]:
        return {n: COORDINATOR if n == COORDINATOR else "participant" for n in self.nodes}

    @property
    def trace(self) -> Trace:
        """Every event of the transaction, in the ordinary txlib trace format."""
        if self.trace_or_none is None:
            raise TxlibError("this run was made with record=False, so it has no trace")
        return self.trace_or_none

    @property
    def violations(self) -> tuple[Violation, ...]:
        """txlib's safety invariants (atomicity, stability, validity) over the trace."""
        return tuple(check_all(self.trace, self.participants))

    def expected_balances(self) -> dict[str, int]:
        """What the balances must be, given the outcome."""
        if self.outcome != "committed":
            return dict(self.before)
        return {p: bank.apply(b, self.operations[p]) for p, b in self.before.items()}

    def problems(self) -> list[str]:
        """Everything wrong with the end state (empty when all is well): not settled,
        money created or destroyed, a transaction still in doubt, a lock still held,
        nodes that disagree, data that disagrees with the decision, a broken invariant."""
        out = []
        if not self.settled:
            out.append(f"{self.tx} did not finish in time; states: {self.states}")
        moved = sum(b - a for a, b in zip(self.before.values(),
                                          self.expected_balances().values(), strict=True))
        # A transfer moves money (conserved); a lone debit (one participant) removes it.
        if sum(self.balances.values()) != sum(self.before.values()) + moved:
            out.append(f"money is not conserved: {self.before} became {self.balances}")
        for p, gids in self.in_doubt.items():
            if gids:
                out.append(f"{p} still has transaction(s) in doubt: {list(gids)}")
        if self.locked:
            out.append(f"a lock is still held on {list(self.locked)}")
        values = {self.decisions.get(n) for n in self.nodes}
        if len(values) != 1 or None in values:
            out.append(f"the nodes do not agree: {self.decisions}")
        elif self.balances != self.expected_balances():
            out.append(f"the data disagrees with the {self.outcome} outcome: expected "
                       f"{self.expected_balances()}, found {self.balances}")
        if self.trace_or_none is not None:
            out.extend(str(v) for v in self.violations)
        return out

    def summary(self) -> str:
        crashes = "; ".join(f"{c['node']} at {c['how']}" for c in self.crashes) or "none"
        lines = [f"real 2PC over {self.backend}, {self.tx}: {self.outcome} in "
                 f"{self.elapsed * 1000:.0f} ms; crashes: {crashes}",
                 "decisions: " + ", ".join(f"{n}={d}" for n, d in self.decisions.items()),
                 f"balances: {self.before} -> {self.balances}"]
        lines += [f"  ! {p}" for p in self.problems()]
        lines += [f"  ? {u}" for u in self.unfired]
        return "\n".join(lines)

    def as_run(self) -> Any:
        """This run as a :class:`txlib.Run`, for the console (``txlib.console.show``)
        and ``txlib.diagram``."""
        from ..simulation.run import Run
        from ..simulation.scenario import Scenario

        scenario = Scenario(
            "2pc", participants=self.participants,
            options={**self.options, "tx": self.tx,
                     "operations": {p: list(op) for p, op in self.operations.items()},
                     "balances": dict(self.before)},
            name=f"real 2PC over {self.backend}",
            description="crashes: " + ("; ".join(f"{c['node']} at {c['how']}"
                                                  for c in self.crashes) or "none"),
        )
        trace = self.trace
        return Run(
            scenario=scenario, outcome=self.outcome, decisions=dict(self.decisions),
            participants=self.participants, roles=self.roles, states=dict(self.states),
            down=self.down, logs=dict(self.logs),
            locks={n: ("balance",) if n in self.locked else () for n in self.nodes},
            end_time=trace[-1].time if len(trace) else 0, steps=trace.last_step,
            stopped_by="every node finished" if self.settled else "timed out",
            unfired_faults=(), _trace=trace,
        )


class RealSystem:
    """A coordinator and participants running as real processes.

    >>> with RealSystem(participants=3) as system:            # doctest: +SKIP
    ...     system.begin("T1", crash=("coordinator", "after_decision_logged"))
    ...     system.settle("T1")
    ...     run = system.result("T1")

    ``backend`` is ``"sqlite"`` (one database file per participant, no server) or
    ``"postgres"`` (one database per participant on the server ``postgres``: a
    :class:`~txlib.real.PostgresServer` or a libpq connection string). ``options`` are
    2PC options (timeouts in wall-clock ms; see :data:`REAL_TIMEOUTS`). A crashed node
    is restarted ``restart_delay`` seconds later if ``restart`` is true.
    """

    def __init__(
        self,
        participants: int | Sequence[str] = 3,
        backend: str = "sqlite",
        *,
        postgres: Any = None,
        amount: int = 100,
        operations: Mapping[str, Any] | None = None,
        balances: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        restart: bool = True,
        restart_delay: float = 0.1,
        vote_no: Sequence[str] = (),
        record: bool = True,
        workdir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        database_prefix: str = "txlib_",
        start_timeout: float = 30.0,
    ) -> None:
        from ..simulation.scenario import participant_names

        self.participants = participant_names(participants)
        self.nodes = (COORDINATOR, *self.participants)
        if backend not in BACKENDS:
            raise bad_choice("backend", backend, BACKENDS)
        self.backend = backend
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
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise TxlibError(f"amount must be a whole number >= 0, got {amount!r}")
        self.operations = (bank.check_operations(operations, self.participants)
                           if operations is not None
                           else bank.default_operations(self.participants, amount))
        self.initial_balances = bank.check_balances(balances, self.participants)
        self.options = {**REAL_TIMEOUTS, **dict(options or {})}
        self.options.pop("tx", None)
        CommitConfig.from_options(self.options)  # names any unknown option
        for p in vote_no:
            if p not in self.participants:
                raise bad_choice("participant in vote_no", p, self.participants)
        self.vote_no = tuple(vote_no)
        self.restart_policy = restart
        self.restart_delay = restart_delay
        self.record = record
        self.host = host
        self.database_prefix = database_prefix
        self.start_timeout = start_timeout
        ports = dict(ports or {})
        for name in ports:
            if name not in self.nodes:
                raise bad_choice("node in ports", name, self.nodes)
        self.ports = ports
        self._own_workdir = workdir is None
        # The run's folder (trace files, node logs, SQLite files, the coordinator's log):
        # a new temporary one, made by start() and removed by close(), unless given.
        self.workdir = Path(workdir) if workdir is not None else Path()
        self.token = os.urandom(4).hex()
        self.handles: dict[str, NodeHandle] = {}
        self.sel = selectors.DefaultSelector()
        self.control: socket.socket | None = None
        self.actions: list[tuple[float, int, str, str, Any]] = []
        self._seq = 0
        self.begun: list[str] = []
        self.begun_at: dict[str, float] = {}
        self.tx_operations: dict[str, dict[str, tuple[str, int]]] = {}
        self.before: dict[str, dict[str, int]] = {}
        self.plans: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.armed: dict[str, list[Crash]] = {}
        self.crashes: dict[str, list[dict[str, Any]]] = {}
        self.unfired: dict[str, list[str]] = {}
        self.settled_at: dict[str, float] = {}
        self.started = False
        self._closed = False
        self._booted = False
        self.t0_ns = 0
        self._runner_fd = -1
        self._runner_seq = 0

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> RealSystem:
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> RealSystem:
        """Check the configuration, make fresh databases, start every node."""
        if self._own_workdir:
            self.workdir = Path(tempfile.mkdtemp(prefix="txlib-real-"))
        try:
            self._check_ports()
            if self.backend == "postgres":
                from . import postgres as pg

                pg.preflight(self.conninfo, len(self.participants))
            for sub in ("trace", "logs", "data"):  # ours: start them afresh
                shutil.rmtree(self.workdir / sub, ignore_errors=True)
                (self.workdir / sub).mkdir(parents=True)
            self._make_databases()
        except BaseException:
            self.close()
            raise
        self.control = socket.create_server((self.host, 0))
        self.control.setblocking(False)
        self.sel.register(self.control, selectors.EVENT_READ, None)
        self.t0_ns = time.time_ns()
        self._runner_fd = os.open(self.workdir / "trace" / "_runner.jsonl",
                                  os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.started = True
        try:
            for name in self.nodes:
                self.handles[name] = NodeHandle(name, self.ports.get(name) or 0)
                self._spawn(self.handles[name])
            self.wait(lambda s: all(h.conn for h in s.handles.values()), self.start_timeout,
                      "every node to listen")
            self._send_peers()
            self.wait(lambda s: all(h.ready for h in s.handles.values()), self.start_timeout,
                      "every node to be ready")
        except BaseException:
            self.close()
            raise
        return self

    def _check_ports(self) -> None:
        for name, port in self.ports.items():
            if not isinstance(port, int) or not 0 < port < 65536:
                raise TxlibError(f"port for {name} must be a number 1..65535, got {port!r}")
            if not port_is_free(self.host, port):
                raise TxlibError(
                    f"port {self.host}:{port} (for {name}) is already in use by another "
                    "program; choose a free port in ports=, or leave it out to let txlib "
                    "pick free ones")
        if len(set(self.ports.values())) != len(self.ports):
            raise TxlibError(f"ports must differ from node to node, got {self.ports}")
        taken = set(self.ports.values())
        for name in self.nodes:
            if name not in self.ports:
                port = free_port(self.host)
                while port in taken:
                    port = free_port(self.host)
                self.ports[name] = port
                taken.add(port)

    def _make_databases(self) -> None:
        for p in self.participants:
            balance = self.initial_balances[p]
            if self.backend == "sqlite":
                from .stores import sqlite_create

                sqlite_create(self._sqlite_path(p), p, balance)
            else:
                from . import postgres as pg

                pg.setup_database(self.conninfo, self._dbname(p), p, balance)

    def _sqlite_path(self, p: str) -> Path:
        return self.workdir / "data" / f"{p}.sqlite"

    def _dbname(self, p: str) -> str:
        return f"{self.database_prefix}{p}".lower()

    def _store_spec(self, name: str) -> dict[str, Any]:
        if name == COORDINATOR:
            return {"kind": "file", "path": str(self.workdir / "data" / "coordinator.log")}
        if self.backend == "sqlite":
            return {"kind": "sqlite", "path": str(self._sqlite_path(name)), "account": name}
        from .postgres import conninfo_for

        return {"kind": "postgres", "conninfo": conninfo_for(self.conninfo, self._dbname(name)),
                "account": name, "token": self.token}

    def _spawn(self, h: NodeHandle) -> None:
        assert self.control is not None
        spec = {
            "node": h.name, "incarnation": h.incarnation, "participants": list(self.participants),
            "options": self.options, "operations": {p: list(op) for p, op in
                                                    self.operations.items()},
            "marks": ["vote_no"] if h.name in self.vote_no else [],
            "t0_ns": self.t0_ns, "record": self.record, "host": self.host,
            "port": self.ports[h.name], "control": list(self.control.getsockname()[:2]),
            "trace": str(self.workdir / "trace" / f"{h.name}.jsonl"),
            "stderr": str(self.workdir / "logs" / f"{h.name}.err"),
            "store": self._store_spec(h.name), "txs": list(self.begun),
            "triggers": self.plans.pop((h.name, h.incarnation), []),
        }
        h.up, h.ready, h.stopping, h.killing = True, False, False, False
        h.status = {}
        h.crash_label = ""
        h.said_bye, h.error, h.error_kind, h.buf = False, "", "", b""
        h.pid = ForkServer.get().spawn(spec)

    def _book(self) -> dict[str, list[Any]]:
        return {n: [self.host, self.ports[n]] for n in self.nodes}

    def _send_peers(self) -> None:
        self._booted = True
        for h in self.handles.values():
            self._tell(h, {"t": "peers", "addresses": self._book()})

    def _tell(self, h: NodeHandle, msg: dict[str, Any]) -> None:
        if h.conn is None:
            return
        with contextlib.suppress(OSError):  # if it just died, the pump will see it
            h.conn.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def close(self) -> None:
        """Stop every node (gracefully if it is up), then forget the processes."""
        if self._closed:
            return
        self._closed = True
        if not self.started:
            self.sel.close()
            if self.control is not None:
                self.control.close()
            if self._own_workdir and self.workdir != Path():
                shutil.rmtree(self.workdir, ignore_errors=True)
            return
        try:
            self.stop_nodes()
        finally:
            for h in self.handles.values():
                if h.conn is not None:  # still connected, so still alive: kill it
                    with contextlib.suppress(OSError):
                        os.kill(h.pid, signal.SIGKILL)
        for key in list(self.sel.get_map().values()):
            with contextlib.suppress(Exception):
                self.sel.unregister(key.fileobj)
            with contextlib.suppress(Exception):
                key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()
        if self._runner_fd >= 0:
            os.close(self._runner_fd)
            self._runner_fd = -1
        self.started = False
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_nodes(self, timeout: float = 10.0) -> None:
        """Ask every node that is up to stop (lazy log records are flushed) and wait."""
        self.actions.clear()
        for h in self.handles.values():
            if h.up:
                h.stopping = True
                self._tell(h, {"t": "stop"})
        with contextlib.suppress(TxlibError):
            self.wait(lambda s: not any(h.up for h in s.handles.values()), timeout,
                      "every node to stop")

    # --- the runner's own trace events ----------------------------------------------------
    def _event(self, kind: str, node: str | None, detail: str, tx: str | None = None) -> None:
        if not self.record:
            return
        self._runner_seq += 1
        e = {"n": node, "i": 0, "s": self._runner_seq, "h": self._runner_seq,
             "t": (time.time_ns() - self.t0_ns) // 1000, "k": kind, "d": detail}
        if tx is not None:
            e["x"] = tx
        os.write(self._runner_fd, json.dumps(e, separators=(",", ":")).encode() + b"\n")

    # --- the pump --------------------------------------------------------------------------
    def _schedule(self, delay: float, kind: str, node: str, arg: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self.actions, (time.monotonic() + delay, self._seq, kind, node, arg))

    def pump(self, timeout: float) -> None:
        """Handle what the nodes said and the due kills and restarts, waiting at most
        ``timeout`` seconds for something to happen."""
        if self.actions:
            timeout = min(timeout, max(0.0, self.actions[0][0] - time.monotonic()))
        for key, _ in self.sel.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    conn, _ = self.control.accept()  # type: ignore[union-attr]
                    conn.setblocking(False)
                    self.sel.register(conn, selectors.EVENT_READ, [b""])
                continue
            self._read(key.fileobj, key.data)  # type: ignore[arg-type]
        now = time.monotonic()
        while self.actions and self.actions[0][0] <= now:
            _, _, kind, node, arg = heapq.heappop(self.actions)
            if kind == "kill":
                h = self.handles[node]
                if h.up and h.incarnation == arg[1]:
                    self.kill(node, how=arg[0], tx=arg[2])
                else:
                    self.unfired.setdefault(arg[2], []).append(
                        f"kill -9 {node} at {arg[0]}: {node} was not up then")
            elif kind == "restart" and not self.handles[node].up:
                self.restart(node)

    def _read(self, sock: socket.socket, state: Any) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self._feed(sock, state, data)

    def _feed(self, sock: socket.socket, state: Any, data: bytes) -> None:
        """Handle bytes from a node's control connection (b'': it closed)."""
        h = state if isinstance(state, NodeHandle) else None
        if not data:
            self.sel.unregister(sock)
            sock.close()
            if h is None and len(state) > 1:  # it failed before saying hello
                h = self.handles[state[1]]
            if h is not None:
                h.conn = None
                self._on_exit(h)
            return
        if h is None:
            state[0] += data
            *lines, state[0] = state[0].split(b"\n")
        else:
            h.buf += data
            *lines, h.buf = h.buf.split(b"\n")
        for i, line in enumerate(lines):
            if not line:
                continue
            msg = json.loads(line)
            if msg["t"] == "hello":
                h = self.handles[msg["node"]]
                h.conn = sock
                h.buf = b"\n".join(lines[i + 1:]) + b"\n" + state[0]
                self.sel.modify(sock, selectors.EVENT_READ, h)
                h.port = msg["port"]
                if self._booted:  # a restarted node: it needs the address book now
                    self._tell(h, {"t": "peers", "addresses": self._book()})
                if h.buf.strip():
                    rest, h.buf = h.buf, b""
                    self._feed(sock, h, rest)
                return
            if h is None:
                if msg["t"] == "error" and msg.get("node") in self.handles:
                    failed = self.handles[msg["node"]]
                    failed.error, failed.error_kind = msg["text"], msg.get("kind", "")
                    state[1:] = [msg["node"]]
                continue
            t = msg["t"]
            if t == "ready":
                h.ready = True
            elif t == "status":
                h.status[msg["tx"]] = msg
            elif t == "bye":
                h.fsyncs += msg["fsyncs"]
                h.said_bye = True
            elif t == "error":
                h.error = msg["text"]
                h.error_kind = msg.get("kind", "")

    def _on_exit(self, h: NodeHandle) -> None:
        """The node's control connection closed: the process has ended. Why?"""
        if not h.up:
            return
        h.up = h.ready = False
        if h.stopping and h.said_bye:
            return
        if h.killing:  # the runner's kill -9 (already noted)
            if self.restart_policy and not h.stopping:
                self._schedule(self.restart_delay, "restart", h.name)
            return
        if not h.error:
            label = self._fired_label(h)
            if label:  # it killed itself at an armed protocol point
                tx = self.begun[-1] if self.begun else None
                self._note_crash(h, label, tx)
                if self.restart_policy and not h.stopping:
                    self._schedule(self.restart_delay, "restart", h.name)
                return
        path = self.workdir / "logs" / f"{h.name}.err"
        err = h.error or (path.read_text(errors="replace")[-2000:] if path.exists() else "")
        message = f"node {h.name} stopped unexpectedly: {err.strip() or 'no message'}"
        if h.error_kind == "config":
            raise TxlibError(message)
        raise RuntimeError(message)

    def _fired_label(self, h: NodeHandle) -> str:
        """The protocol point where ``h`` killed itself ('' if none was armed)."""
        path = self.workdir / "trace" / f"{h.name}.jsonl"
        if self.record and path.exists():
            for line in reversed(path.read_bytes().splitlines()[-20:]):
                with contextlib.suppress(ValueError):
                    e = json.loads(line)
                    if e.get("k") == "crash" and e.get("i") == h.incarnation:
                        return str(e.get("point", "a protocol point"))
        for crashes in self.armed.values():
            for c in crashes:
                if c.node == h.name and c.incarnation == h.incarnation and c.point:
                    return c.point
        return ""

    def _note_crash(self, h: NodeHandle, how: str, tx: str | None) -> None:
        at = (time.time_ns() - self.t0_ns) // 1_000_000
        began = self.begun_at.get(tx or "", 0.0)
        record = {"node": h.name, "incarnation": h.incarnation, "how": how,
                  "at_ms": at - int(began * 1000)}
        if tx is not None:
            self.crashes.setdefault(tx, []).append(record)

    # --- acting on nodes ----------------------------------------------------------------------
    def kill(self, node: str, *, how: str = "a time chosen by the runner",
             tx: str | None = None) -> None:
        """SIGKILL ``node`` now (kill -9) and wait until it is gone."""
        h = self.handles[node]
        if not h.up:
            raise TxlibError(f"{node} is not up")
        h.killing = True
        os.kill(h.pid, signal.SIGKILL)
        conn = h.conn
        if conn is not None:  # the kernel closes its sockets once it is dead: wait for that
            conn.settimeout(10)
            while h.conn is not None:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    raise RuntimeError(f"{node} (pid {h.pid}) did not die after SIGKILL") \
                        from None
                except OSError:
                    data = b""
                self._feed(conn, h, data)
        self._event("crash", node, f"killed with SIGKILL by the runner ({how})")
        self._note_crash(h, how, tx if tx is not None else (self.begun[-1] if self.begun
                                                            else None))
        self._on_exit(h)

    def restart(self, node: str) -> None:
        """Start a new process for ``node`` (same port, same storage); it recovers from
        its durable log. Returns at once; :meth:`wait` or :meth:`settle` to see it back."""
        h = self.handles[node]
        if h.up:
            raise TxlibError(f"{node} is up; kill it first")
        h.incarnation += 1
        self._spawn(h)

    def wait(self, predicate: Callable[[RealSystem], bool], timeout: float,
             what: str = "the condition") -> None:
        """Pump until ``predicate(self)`` holds; TxlibError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TxlibError(f"timed out after {timeout:.1f} s waiting for {what}; "
                                 f"nodes: {self.describe()}")
            self.pump(min(left, 0.5))

    def describe(self) -> str:
        parts = []
        for h in self.handles.values():
            states = ", ".join(f"{tx}={s['state']}" for tx, s in h.status.items())
            parts.append(f"{h.name} ({'up' if h.up else 'down'}"
                         f"{'' if h.ready or not h.up else ', starting'}) {states}")
        return "; ".join(parts)

    def state(self, node: str, tx: str) -> str | None:
        """``node``'s latest reported state in ``tx`` (None if down or not reported)."""
        h = self.handles[node]
        s = h.status.get(tx)
        return s["state"] if h.up and s else None

    @property
    def down(self) -> frozenset[str]:
        return frozenset(n for n, h in self.handles.items() if not h.up)

    # --- transactions ---------------------------------------------------------------------------
    def begin(self, tx: str = "T1", *, crash: Any = None,
              operations: Mapping[str, Any] | None = None) -> None:
        """Start transaction ``tx`` on every node (participants first). ``crash``: see
        :func:`txlib.real.crashpoints.as_crashes`; ``operations``: this transaction's
        ``{participant: (kind, amount)}`` (default: the system's). Returns at once."""
        if not self.started:
            raise TxlibError("start the system first (RealSystem.start() or `with`)")
        if not isinstance(tx, str) or not tx or tx in self.begun:
            raise TxlibError(f"tx must be a new, non-empty name, got {tx!r}")
        crashes = as_crashes(crash, self.nodes)
        ops = (bank.check_operations(operations, self.participants) if operations is not None
               else self.operations)
        self.tx_operations[tx] = ops
        if self.record:
            self.before[tx] = self.balances()
        self.begun.append(tx)
        self.begun_at[tx] = (time.time_ns() - self.t0_ns) / 1e9
        self.armed[tx] = list(crashes)
        triggers: dict[str, list[dict[str, Any]]] = {}
        for c in crashes:
            if c.point is not None:
                trig = {**c.trigger(len(self.participants)), "tx": tx}
                h = self.handles[c.node]
                if c.incarnation == h.incarnation and h.up:
                    triggers.setdefault(c.node, []).append(trig)
                elif c.incarnation > h.incarnation:
                    self.plans.setdefault((c.node, c.incarnation), []).append(trig)
                else:
                    self.unfired.setdefault(tx, []).append(
                        f"{c.describe()}: that life of {c.node} is over")
            else:
                self._schedule(c.after or 0.0, "kill", c.node,
                               (f"{(c.after or 0) * 1000:.0f} ms", c.incarnation, tx))
        self._event("start", None, f"{tx} begins", tx)
        for name in (*self.participants, COORDINATOR):
            h = self.handles[name]
            if h.up:
                self._tell(h, {"t": "start", "tx": tx, "triggers": triggers.get(name, []),
                               "operations": {p: list(op) for p, op in ops.items()}})

    def settled(self, tx: str) -> bool:
        """Every node is up and has finished ``tx``, and no kill or restart is pending."""
        if self.actions:
            return False
        for h in self.handles.values():
            if not (h.up and h.ready):
                return False
            s = h.status.get(tx)
            if s is None or s["state"] not in TERMINAL[h.role]:
                return False
        return True

    def settle(self, tx: str = "T1", timeout: float = 30.0) -> bool:
        """Wait until :meth:`settled`; False if ``timeout`` seconds pass first."""
        try:
            self.wait(lambda s: s.settled(tx), timeout, f"{tx} to finish")
        except TxlibError:
            return False
        self.settled_at.setdefault(tx, (time.time_ns() - self.t0_ns) / 1e9)
        return True

    # --- reading the databases ------------------------------------------------------------------
    def inspect(self) -> dict[str, dict[str, Any]]:
        """Each participant's committed balance, transactions in doubt and row lock,
        read from its database (from outside the node)."""
        out = {}
        for p in self.participants:
            if self.backend == "sqlite":
                from .stores import sqlite_inspect

                info = sqlite_inspect(self._sqlite_path(p))
                held = info["held_by"]
                out[p] = {"balance": info["balance"], "in_doubt": [held] if held else [],
                          "locked": held is not None}
            else:
                from . import postgres as pg

                out[p] = pg.inspect(self.conninfo, self._dbname(p), p)
        return out

    def balances(self) -> dict[str, int]:
        return {p: int(i["balance"]) for p, i in self.inspect().items()}

    def read_logs(self, tx: str) -> dict[str, tuple[LogRecord, ...]]:
        """Each node's durable log records of ``tx``, read back from its storage."""
        out = {}
        for name in self.nodes:
            spec = self._store_spec(name)
            if spec["kind"] == "file":
                from .stores import FileLog

                path = Path(spec["path"])
                store: Any = FileLog(path) if path.exists() else None
            elif spec["kind"] == "sqlite":
                from .stores import SqliteAccount

                store = SqliteAccount(spec["path"], spec["account"])
            else:
                from .postgres import PostgresAccount

                store = PostgresAccount(spec["conninfo"], spec["account"], self.token, name)
            if store is None:
                out[name] = ()
                continue
            try:
                out[name] = tuple(r for r, _ in store.read().get(tx, []))
            finally:
                if spec["kind"] == "file":
                    os.close(store._fd)
                else:
                    store.conn.close()
        return out

    def events(self) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """Every recorded event so far, by source (see :func:`txlib.real.merge.merge`)."""
        return read_events(sorted((self.workdir / "trace").glob("*.jsonl")))

    def trace(self, tx: str, events: Any = None) -> Trace:
        """The trace of ``tx`` (``events``: from :meth:`events`, to read the files once)."""
        initial = {n: INITIAL[self.handles[n].role] for n in self.nodes}
        return merge(self.events() if events is None else events, self.nodes, initial, tx)

    def result(self, tx: str = "T1", *, trace: bool = True) -> RealRun:
        """What ``tx`` came to, from the nodes' reports, the databases and (if recorded
        and ``trace``) the merged trace."""
        info = self.inspect()
        decisions = {n: (self.handles[n].status.get(tx) or {}).get("decision")
                     for n in self.nodes}
        states = {n: (self.handles[n].status.get(tx) or {}).get("state", "?")
                  for n in self.nodes}
        settled = self.settled(tx) or tx in self.settled_at
        down = frozenset(n for n, h in self.handles.items() if not h.up and not h.stopping)
        began = self.begun_at.get(tx, 0.0)
        end = self.settled_at.get(tx, (time.time_ns() - self.t0_ns) / 1e9)
        return RealRun(
            backend=self.backend, tx=tx, participants=self.participants, settled=settled,
            outcome=commit_outcome(decisions, self.participants, down) if settled else "blocked",
            decisions=decisions, states=states, down=down,
            before=dict(self.before.get(tx, self.initial_balances)),
            balances={p: int(i["balance"]) for p, i in info.items()},
            operations=dict(self.tx_operations.get(tx, self.operations)),
            in_doubt={p: tuple(i["in_doubt"]) for p, i in info.items()},
            locked=tuple(p for p, i in info.items() if i["locked"]),
            crashes=tuple(self.crashes.get(tx, [])),
            unfired=tuple(self._unfired(tx)),
            fsyncs={n: h.fsyncs for n, h in self.handles.items()},
            elapsed=end - began, logs=self.read_logs(tx), options=dict(self.options),
            workdir=self.workdir,
            trace_or_none=self.trace(tx) if self.record and trace else None,
        )

    def _unfired(self, tx: str) -> list[str]:
        out = list(self.unfired.get(tx, []))
        fired = {(c["node"], c["incarnation"]) for c in self.crashes.get(tx, [])}
        for c in self.armed.get(tx, []):
            if c.point is not None and (c.node, c.incarnation) not in fired:
                out.append(f"{c.describe()}: the node never reached that point")
        return out


def run_transfer(
    participants: int | Sequence[str] = 3,
    backend: str = "sqlite",
    *,
    crash: Any = None,
    tx: str = "T1",
    timeout: float = 30.0,
    **options: Any,
) -> RealRun:
    """Run one 2PC transfer over real processes and storage, with optional crashes.

    The first participant pays ``amount`` (default 100) to each other one. ``crash`` is
    ``(node, point)`` for a named protocol point (see :data:`CRASH_POINTS`),
    ``(node, seconds)`` for a kill -9 that long after the start, a :class:`Crash`, or a
    list of them; a killed node is restarted (``restart_delay``, default 0.1 s) and
    recovers from its log. Other keywords go to :class:`RealSystem` (``postgres=``,
    ``options=`` for 2PC timeouts, ``vote_no=``, ``workdir=``, ...). Returns once every
    node is back and has finished (or after ``timeout`` seconds, unsettled).

    >>> run = txlib.real.run_transfer(crash=("coordinator", "after_decision_logged"))
    ... # doctest: +SKIP
    >>> run.outcome, run.problems()                                  # doctest: +SKIP
    ('committed', [])
    """
    with RealSystem(participants, backend, **options) as system:
        system.begin(tx, crash=crash)
        system.settle(tx, timeout)
        system.stop_nodes()
        return system.result(tx)
