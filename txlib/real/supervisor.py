"""The node processes of a real run: start them, hear them, kill them, restart them.

Nodes are started from a fork server that has already imported txlib (a fork costs a
few milliseconds; a fresh Python with txlib costs several hundred). Each node connects
back to the supervisor's control socket and reports there (hello, ready, each
transaction's status, bye, errors); the supervisor hands out the address book, kills
nodes with SIGKILL, restarts them as new processes on the same port, and runs
scheduled actions (a kill at a given moment, a restart after a crash) from
:meth:`Supervisor.pump`. It knows processes and ports, not transactions: what a node
runs comes from the ``spec`` callback, and whether a node that died on its own was
killed at an armed protocol point from the ``self_killed`` callback.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TxlibError, bad_choice
from .forkserver import ForkServer
from .postgres import free_port, port_is_free


@dataclass(eq=False)
class NodeHandle:
    """The supervisor's view of one node process: its life (``incarnation``), pid,
    control connection, and what it last reported (``status`` by transaction)."""

    name: str
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
    fsyncs: int = 0
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    # told while it was starting (up, not connected yet): told again once it is ready
    unsent: list[dict[str, Any]] = field(default_factory=list)


def send_line(sock: socket.socket, message: Mapping[str, Any]) -> None:
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")


class Supervisor:
    """The processes of ``nodes``, listening on ``host``: ``ports`` where given, free
    ones otherwise. A crashed node is restarted ``restart_delay`` seconds later if
    ``restart`` is true. ``spec(handle)`` gives what a node process runs (its role,
    store, transactions, crash triggers); ``self_killed(handle)`` says (and notes) whether
    a node that ended without a word was killed at an armed protocol point."""

    def __init__(
        self,
        nodes: Sequence[str],
        *,
        host: str,
        ports: Mapping[str, int],
        record: bool,
        restart: bool,
        restart_delay: float,
        start_timeout: float,
        spec: Callable[[NodeHandle], dict[str, Any]],
        self_killed: Callable[[NodeHandle], bool],
    ) -> None:
        for name in ports:
            if name not in nodes:
                raise bad_choice("node in ports", name, nodes)
        self.nodes = tuple(nodes)
        self.host = host
        self.ports = dict(ports)
        self.record = record
        self.restart_policy = restart
        self.restart_delay = restart_delay
        self.start_timeout = start_timeout
        self.spec = spec
        self.self_killed = self_killed
        self.workdir = Path()
        self.handles: dict[str, NodeHandle] = {}
        self.sel = selectors.DefaultSelector()
        self.control: socket.socket | None = None
        self.actions: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self.started = False
        self._booted = False
        self.t0_ns = 0
        self._runner_fd = -1
        self._runner_seq = 0
        self.network: Any = None  # a txlib.real.netns.Network, or None: all on ``host``

    def address(self, node: str) -> str:
        """Where ``node`` listens: its namespace's address, or the common host."""
        return self.network.addresses[node] if self.network is not None else self.host

    # --- ports -------------------------------------------------------------------------------
    def claim_ports(self) -> None:
        """Check the ports given (free, distinct) and pick free ones for the other nodes
        (in a network of namespaces, every node has its own addresses: one port does)."""
        if self.network is not None:
            for name in self.nodes:
                self.ports.setdefault(name, 7000)
            return
        for name, port in self.ports.items():
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
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

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, workdir: Path) -> None:
        """Start every node (trace files, error logs under ``workdir``) and wait until
        each one is ready."""
        self.workdir = workdir
        control_host = self.network.runner_address if self.network is not None else self.host
        self.control = socket.create_server((control_host, 0))
        self.control.setblocking(False)
        self.sel.register(self.control, selectors.EVENT_READ, None)
        self.t0_ns = time.time_ns()
        self._runner_fd = os.open(workdir / "trace" / "_runner.jsonl",
                                  os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.started = True
        for name in self.nodes:
            self.handles[name] = NodeHandle(name)
            self._spawn(self.handles[name])
        self.wait(lambda: all(h.conn for h in self.handles.values()), self.start_timeout,
                  "every node to listen")
        self._booted = True
        for h in self.handles.values():
            self.tell(h, {"t": "peers", "addresses": self._book()})
        self.wait(lambda: all(h.ready for h in self.handles.values()), self.start_timeout,
                  "every node to be ready")

    def _spawn(self, h: NodeHandle) -> None:
        assert self.control is not None
        spec = {
            **self.spec(h),
            "node": h.name, "incarnation": h.incarnation, "t0_ns": self.t0_ns,
            "record": self.record, "host": self.address(h.name), "port": self.ports[h.name],
            "netns": self.network.netns[h.name] if self.network is not None else None,
            "control": list(self.control.getsockname()[:2]),
            "trace": str(self.workdir / "trace" / f"{h.name}.jsonl"),
            "stderr": str(self.workdir / "logs" / f"{h.name}.err"),
        }
        h.up, h.ready, h.stopping, h.killing = True, False, False, False
        h.status = {}
        h.said_bye, h.error, h.error_kind, h.buf, h.unsent = False, "", "", b"", []
        h.pid = ForkServer.get().spawn(spec)

    def _book(self) -> dict[str, list[Any]]:
        return {n: [self.address(n), self.ports[n]] for n in self.nodes}

    def tell(self, h: NodeHandle, msg: dict[str, Any]) -> None:
        """Send ``msg`` on ``h``'s control connection; to a node that is up but not
        connected yet (a restarted one, still starting), once it is ready (see
        :meth:`_catch_up`); nothing to a node that is down."""
        if h.conn is None:
            if h.up:
                h.unsent.append(msg)
            return
        with contextlib.suppress(OSError):  # if it just died, the pump will see it
            send_line(h.conn, msg)

    def stop_nodes(self, timeout: float = 10.0) -> None:
        """Ask every node that is up to stop (lazy log records are flushed) and wait."""
        self.actions.clear()
        for h in self.handles.values():
            if h.up:
                h.stopping = True
                self.tell(h, {"t": "stop"})
        with contextlib.suppress(TxlibError):
            self.wait(lambda: not any(h.up for h in self.handles.values()), timeout,
                      "every node to stop")

    def close(self) -> None:
        """Stop every node (gracefully if it is up), kill any still connected, and close
        every socket."""
        if self.started:
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
            if isinstance(key.fileobj, socket.socket):  # (only sockets are registered)
                with contextlib.suppress(Exception):
                    key.fileobj.close()
        self.sel.close()
        if self.control is not None:
            self.control.close()
        if self._runner_fd >= 0:
            os.close(self._runner_fd)
            self._runner_fd = -1
        self.started = False

    # --- the runner's own trace events -------------------------------------------------------
    def event(self, kind: str, node: str | None, detail: str, tx: str | None = None) -> None:
        """Record an event of the runner's (a transaction's start, a kill) in the trace."""
        if not self.record:
            return
        self._runner_seq += 1
        e: dict[str, Any] = {"n": node, "i": 0, "s": self._runner_seq, "h": self._runner_seq,
                             "t": (time.time_ns() - self.t0_ns) // 1000, "k": kind,
                             "d": detail}
        if tx is not None:
            e["x"] = tx
        os.write(self._runner_fd, json.dumps(e, separators=(",", ":")).encode() + b"\n")

    # --- the pump ----------------------------------------------------------------------------
    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` from :meth:`pump`, ``delay`` seconds from now."""
        self._seq += 1
        heapq.heappush(self.actions, (time.monotonic() + delay, self._seq, action))

    def pump(self, timeout: float) -> None:
        """Handle what the nodes said and the actions due, waiting at most ``timeout``
        seconds for something to happen."""
        if self.actions:
            timeout = min(timeout, max(0.0, self.actions[0][0] - time.monotonic()))
        for key, _ in self.sel.select(timeout):
            if key.data is None:
                assert self.control is not None
                with contextlib.suppress(BlockingIOError):
                    conn, _ = self.control.accept()
                    conn.setblocking(False)
                    self.sel.register(conn, selectors.EVENT_READ, [b""])
                continue
            assert isinstance(key.fileobj, socket.socket)  # only sockets are registered
            self._read(key.fileobj, key.data)
        now = time.monotonic()
        while self.actions and self.actions[0][0] <= now:
            _, _, action = heapq.heappop(self.actions)
            action()

    def wait(self, predicate: Callable[[], bool], timeout: float,
             what: str = "the condition") -> None:
        """Pump until ``predicate()`` holds; TxlibError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TxlibError(f"timed out after {timeout:.1f} s waiting for {what}; "
                                 f"nodes: {self.describe()}")
            self.pump(min(left, 0.5))

    def describe(self) -> str:
        """Each node: up, down or starting, and its state in each transaction."""
        parts = []
        for h in self.handles.values():
            states = ", ".join(f"{tx}={s['state']}" for tx, s in h.status.items())
            parts.append(f"{h.name} ({'up' if h.up else 'down'}"
                         f"{'' if h.ready or not h.up else ', starting'}) {states}")
        return "; ".join(parts)

    @property
    def down(self) -> frozenset[str]:
        return frozenset(n for n, h in self.handles.items() if not h.up)

    # --- the control connections -------------------------------------------------------------
    def _read(self, sock: socket.socket, state: Any) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        self._feed(sock, state, data)

    def _feed(self, sock: socket.socket, state: Any, data: bytes) -> None:
        """Handle bytes from a node's control connection (b'': it closed). ``state`` is
        the node's handle, or ``[buffer, node?]`` before it said hello."""
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
                if h.stopping:  # told to stop before it could hear: tell it now
                    h.unsent = []
                    self.tell(h, {"t": "stop"})
                elif self._booted:  # a restarted node: it needs the address book now
                    self.tell(h, {"t": "peers", "addresses": self._book()})
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
                self._catch_up(h)
            elif t == "status":
                h.status[msg["tx"]] = msg
            elif t == "bye":
                h.fsyncs += msg["fsyncs"]
                h.said_bye = True
            elif t == "error":
                h.error = msg["text"]
                h.error_kind = msg.get("kind", "")

    def _catch_up(self, h: NodeHandle) -> None:
        """``h`` is ready (a restarted node has recovered from its log): tell it what it
        was told while starting, such as a transaction begun meanwhile, which its
        recovery did not know of (unheard, the node would never take part in it, and
        would count as at work on it forever)."""
        unsent, h.unsent = h.unsent, []
        for msg in unsent:
            self.tell(h, msg)

    def _on_exit(self, h: NodeHandle) -> None:
        """The node's control connection closed: the process has ended. Why?"""
        if not h.up:
            return
        h.up = h.ready = False
        if h.stopping and h.said_bye:
            return
        # Killed by the supervisor (already noted), or by itself at an armed point.
        if h.killing or (not h.error and self.self_killed(h)):
            if self.restart_policy and not h.stopping:
                self.schedule(self.restart_delay, lambda: self._restart_if_down(h.name))
            return
        path = self.workdir / "logs" / f"{h.name}.err"
        err = h.error or (path.read_text(errors="replace")[-2000:] if path.exists() else "")
        message = f"node {h.name} stopped unexpectedly: {err.strip() or 'no message'}"
        if h.error_kind == "config":
            raise TxlibError(message)
        raise RuntimeError(message)

    # --- acting on nodes ---------------------------------------------------------------------
    def kill(self, node: str, how: str) -> None:
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
        self.event("crash", node, f"killed with SIGKILL by the runner ({how})")
        self._on_exit(h)

    def restart(self, node: str) -> None:
        """Start a new process for ``node`` (same port, same storage); it recovers from
        its durable log. Returns at once."""
        h = self.handles[node]
        if h.up:
            raise TxlibError(f"{node} is up; kill it first")
        h.incarnation += 1
        self._spawn(h)

    def _restart_if_down(self, node: str) -> None:
        if not self.handles[node].up:
            self.restart(node)
