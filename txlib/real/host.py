"""One real node: an OS process that runs a txlib role over TCP, the wall clock and disk.

The host is a ``selectors`` event loop: a TCP server for messages from peers (JSON
lines), one outgoing connection per peer, wall-clock timers, and a control connection
to the runner (start a transaction, stop). It hosts one protocol instance per
transaction (a role object and a :class:`RealContext`), so a long-lived node can serve
many transactions one after another.

Each handler (a delivery, a timer, a start, a recovery) runs to completion, as in the
simulator. Every event the node records is appended at once (``os.write``, so it
survives the process's own SIGKILL) to its trace file, with wall-clock microseconds
since the run's start; the runner merges the files into one txlib trace.

Start a node with :func:`node_main` (the runner does, from a fork server) or from a
shell with ``python -m txlib.real.host SPEC.json``.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ..engine.node import Role
from ..engine.records import LogRecord, Message
from ..engine.world import volatile_summary
from ..errors import ProtocolError
from ..protocols.base import COORDINATOR, CommitConfig
from ..protocols.two_phase import Coordinator, Participant


class RealParticipant(Participant):
    """The 2PC participant of :mod:`txlib.protocols.two_phase`, unchanged, whose account
    is a real database row.

    Only the resource differs: ``balance`` is read from the database (opening the local
    transaction where the database has one), and the node's store turns the protocol's
    own log writes (``PREPARED``, ``COMMITTED``, ``ABORT``) into the row's local
    transactions. Every handler is the simulator's.
    """

    account: Any = None  # the node's store (set by the host)

    @property  # type: ignore[override]
    def balance(self) -> int:
        return int(self.account.balance(self.config.tx))

    @balance.setter
    def balance(self, value: int) -> None:
        """The simulator's initial balance is not used: the database holds the real one."""


class Instance:
    """One transaction on this node: its role object, state, volatile variables, timers,
    locks, decision and log (as the simulator's NodeSlot keeps them)."""

    __slots__ = ("ctx", "decision", "locks", "log", "reported", "role", "state", "timers",
                 "tx", "vars")

    def __init__(self, tx: str, role: Role) -> None:
        self.tx = tx
        self.role = role
        self.state = role.machine.initial
        self.vars: dict[str, Any] = {}
        self.timers: dict[str, tuple[int, int]] = {}  # name -> (token, due in run ms)
        self.locks: tuple[str, ...] = ()
        self.decision: str | None = None
        self.log: list[LogRecord] = []
        self.reported: tuple[Any, ...] = ()
        self.ctx: RealContext


class RealContext:
    """What a node may do, on a real process: the same surface as
    :class:`txlib.engine.node.Context`, so the same role code runs unchanged."""

    __slots__ = ("_host", "_inst", "name")

    def __init__(self, host: NodeHost, inst: Instance) -> None:
        self._host = host
        self._inst = inst
        self.name = host.name

    # --- reading -------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Wall-clock milliseconds since the run began."""
        return self._host.now_ms()

    @property
    def state(self) -> str:
        return self._inst.state

    @property
    def vars(self) -> dict[str, Any]:
        """Volatile state: a crash (a killed process) loses it."""
        return self._inst.vars

    @property
    def log_records(self) -> tuple[LogRecord, ...]:
        """This transaction's log (after a restart: what the store read back)."""
        return tuple(self._inst.log)

    @property
    def config(self) -> Any:
        return self._inst.role.config  # type: ignore[attr-defined]

    @property
    def locks(self) -> tuple[str, ...]:
        return self._inst.locks

    def step_fails(self, step: str, compensation: bool = False) -> bool:
        return False

    def has_mark(self, kind: str) -> bool:
        return kind in self._host.marks

    # --- acting --------------------------------------------------------------------
    def send(self, dst: str, type: str, **payload: Any) -> None:
        self._host.send(self._inst, dst, type, payload)

    def broadcast(self, dsts: Iterable[str], type: str, **payload: Any) -> None:
        for dst in dsts:
            self._host.send(self._inst, dst, type, payload)

    def log(self, record: str, *, forced: bool, decides: str | None = None, **data: Any) -> None:
        self._host.write_log(self._inst, record, forced, data, decides)

    def set_state(self, target: str) -> None:
        inst = self._inst
        if target != inst.state:
            inst.role.machine.check(self.name, inst.state, target)
            self._host.change_state(inst, target, "")

    def restore_state(self, target: str) -> None:
        inst = self._inst
        inst.role.machine.check_state(self.name, target)
        if target != inst.state:
            self._host.change_state(inst, target, "restored from log")

    def set_timer(self, name: str, delay: int) -> None:
        if delay < 0:
            raise ProtocolError(f"{self.name}: timer {name!r} with negative delay {delay}")
        self._host.set_timer(self._inst, name, delay)

    def cancel_timer(self, name: str) -> None:
        self._inst.timers.pop(name, None)

    def vote(self, value: str) -> None:
        self._host.record("vote", value, self._inst.tx)

    def note(self, kind: str, detail: str) -> None:
        self._host.record(kind, detail, self._inst.tx)

    def decide(self, value: str) -> None:
        self._host.decide(self._inst, value)

    def lock(self, *resources: str) -> None:
        inst = self._inst
        inst.locks = tuple(sorted(set(inst.locks) | set(resources)))
        self._host.record("lock", ", ".join(inst.locks), inst.tx)

    def unlock(self) -> None:
        inst = self._inst
        if inst.locks:
            inst.locks = ()
            self._host.record("unlock", "", inst.tx)


def make_store(spec: dict[str, Any]) -> Any:
    """The node's durable store, from its spec."""
    store = spec["store"]
    kind = store["kind"]
    if kind == "file":
        from .stores import FileLog

        return FileLog(store["path"])
    if kind == "sqlite":
        from .stores import SqliteAccount

        return SqliteAccount(store["path"], store["account"])
    if kind == "postgres":
        from .postgres import PostgresAccount

        return PostgresAccount(store["conninfo"], store["account"], store["token"],
                               spec["node"])
    raise ValueError(f"unknown store kind {kind!r}")


class NodeCrash(BaseException):
    """Never caught: the process is gone (only raised if SIGKILL somehow returns)."""


class NodeHost:
    """The event loop of one node process (see the module docstring)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name: str = spec["node"]
        self.incarnation: int = spec["incarnation"]
        self.participants: tuple[str, ...] = tuple(spec["participants"])
        self.is_coordinator = self.name == COORDINATOR
        self.base_config = CommitConfig(**spec["options"])
        self.operations: dict[str, tuple[str, int]] = {
            p: (op[0], int(op[1])) for p, op in spec["operations"].items()}
        self.marks = frozenset(spec.get("marks", ()))
        self.t0_ns: int = spec["t0_ns"]
        self.record_trace: bool = spec.get("record", True)
        self.instances: dict[str, Instance] = {}
        self.timer_heap: list[tuple[float, int, str, str]] = []
        self.token = 0
        self.seq = 0
        self.handler = 0
        self.msg_seq = 0
        self.hops = 0
        self.triggers: list[dict[str, Any]] = list(spec.get("triggers", ()))
        self.counts: dict[tuple[str, str, str, str], int] = {}
        self.addresses: dict[str, tuple[str, int]] = {}
        self.out: dict[str, socket.socket] = {}
        self.running = True
        self.sel = selectors.DefaultSelector()
        self.trace_fd = os.open(spec["trace"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.control = socket.create_connection(tuple(spec["control"]), timeout=30)
        self.control.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.control_buf = b""
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((spec["host"], spec["port"]))
        except OSError as exc:
            self.tell({"t": "error", "kind": "config", "node": self.name,
                       "text": f"{self.name} cannot listen on {spec['host']}:{spec['port']} "
                       f"({exc.strerror}): that port is in use; choose another port"})
            raise SystemExit(2) from None
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.store = make_store(spec)

    # --- clock and trace -------------------------------------------------------------
    def now_ms(self) -> int:
        return (time.time_ns() - self.t0_ns) // 1_000_000

    def record(self, kind: str, detail: str, tx: str | None, **extra: Any) -> None:
        if not self.record_trace:
            return
        self.seq += 1
        event = {"n": self.name, "i": self.incarnation, "s": self.seq, "h": self.handler,
                 "t": (time.time_ns() - self.t0_ns) // 1000, "k": kind, "d": detail}
        if tx is not None:
            event["x"] = tx
        event.update(extra)
        os.write(self.trace_fd, json.dumps(event, separators=(",", ":")).encode() + b"\n")

    # --- control channel ---------------------------------------------------------------
    def tell(self, message: dict[str, Any]) -> None:
        self.control.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def _control_lines(self) -> list[dict[str, Any]]:
        """Read what the runner sent (call when the socket is readable, or to wait)."""
        try:
            data = self.control.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        if not data:
            raise SystemExit(0)  # the runner is gone: stop
        self.control_buf += data
        *lines, self.control_buf = self.control_buf.split(b"\n")
        return [json.loads(line) for line in lines if line]

    def on_control(self, msg: dict[str, Any]) -> None:
        t = msg["t"]
        if t == "peers":
            self.addresses = {n: (a[0], a[1]) for n, a in msg["addresses"].items()}
        elif t == "start":
            self.triggers.extend(msg.get("triggers", ()))
            tx = msg["tx"]
            ops = {p: (op[0], int(op[1])) for p, op in msg.get("operations", {}).items()}
            if tx not in self.instances:
                inst = self.new_instance(tx, ops or None)
                self.handler += 1
                self.handle(inst, inst.role.on_start)
        elif t == "stop":
            self.running = False

    # --- instances ---------------------------------------------------------------------
    def make_role(self, tx: str, ops: dict[str, tuple[str, int]] | None) -> Role:
        """The role object for ``tx``; ``ops``: its operations (default: the spec's)."""
        ops = ops or self.operations
        config = replace(self.base_config, tx=tx)
        if self.is_coordinator:
            return Coordinator(self.participants, config, dict(ops))
        role = RealParticipant(self.name, self.participants, config, ops[self.name], 0)
        role.account = self.store
        return role

    def new_instance(self, tx: str, ops: dict[str, tuple[str, int]] | None = None) -> Instance:
        inst = Instance(tx, self.make_role(tx, ops))
        inst.ctx = RealContext(self, inst)
        self.instances[tx] = inst
        return inst

    def handle(self, inst: Instance, fn: Any, *args: Any) -> None:
        """Run one handler to completion, then record the volatile state and report."""
        fn(inst.ctx, *args)
        if self.record_trace:
            self.record("_volatile", volatile_summary(inst), inst.tx)  # type: ignore[arg-type]
        status = (inst.state, inst.decision, bool(inst.locks))
        if status != inst.reported:
            inst.reported = status
            self.tell({"t": "status", "tx": inst.tx, "state": inst.state,
                       "decision": inst.decision, "locks": bool(inst.locks)})

    # --- crash triggers ----------------------------------------------------------------
    def trigger(self, when: str, action: str, what: str, tx: str) -> None:
        if not self.triggers:
            return
        key = (when, action, what, tx)
        count = self.counts[key] = self.counts.get(key, 0) + 1
        for trig in self.triggers:
            if (trig["when"], trig["action"], trig["what"]) == (when, action, what) and \
                    trig.get("tx", tx) == tx and trig["nth"] == count:
                self.handler += 1
                self.record("crash", f"killed with SIGKILL at {trig['label']}", None,
                            point=trig["label"])
                os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(60)
                raise NodeCrash(self.name)

    # --- what the context does ------------------------------------------------------------
    def send(self, inst: Instance, dst: str, type: str, payload: dict[str, Any]) -> None:
        if dst not in self.addresses and dst != self.name:
            raise ProtocolError(f"{self.name} sent {type} to unknown node {dst!r}")
        self.msg_seq += 1
        wire = {"src": self.name, "dst": dst, "type": type, "payload": payload,
                "key": [self.name, self.incarnation, self.msg_seq], "hops": self.hops + 1,
                "at": self.now_ms()}
        self.record("send", "", inst.tx, m=wire)
        problem = self._write(dst, json.dumps(wire, separators=(",", ":")).encode() + b"\n")
        if problem:
            self.record("drop", problem, inst.tx, m=wire)
        self.trigger("after", "send", type, inst.tx)

    def _connect(self, dst: str) -> socket.socket:
        sock = socket.create_connection(self.addresses[dst], timeout=2.0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.out[dst] = sock
        # Peers never write on this connection: readable means closed (the peer died).
        self.sel.register(sock, selectors.EVENT_READ, ("out", dst))
        return sock

    def _drop_out(self, dst: str) -> None:
        sock = self.out.pop(dst, None)
        if sock is not None:
            self.sel.unregister(sock)
            sock.close()

    def _write(self, dst: str, data: bytes) -> str:
        """Hand ``data`` to the kernel for ``dst``; '' or why it could not."""
        for attempt in (0, 1):
            try:
                sock = self.out.get(dst) or self._connect(dst)
                sock.sendall(data)
                return ""
            except ConnectionRefusedError:
                self._drop_out(dst)
                return f"{dst} is down: connection refused"
            except OSError as exc:
                self._drop_out(dst)
                if attempt:
                    return f"{dst} is unreachable: {exc.strerror or exc}"
        return f"{dst} is unreachable"

    def write_log(self, inst: Instance, record: str, forced: bool, data: dict[str, Any],
                  decides: str | None) -> None:
        self.trigger("before", "log", record, inst.tx)
        now = self.now_ms()
        self.store.append(inst.tx, record, data, forced, decides, now)
        inst.log.append(LogRecord(record, data, forced, now))
        self.record("log", record + (" (forced)" if forced else " (lazy)"), inst.tx)
        if decides is not None:
            self.decide(inst, decides)
        self.trigger("after", "log", record, inst.tx)

    def change_state(self, inst: Instance, target: str, detail: str) -> None:
        inst.state = target
        self.record("state", detail or target, inst.tx, to=target)

    def decide(self, inst: Instance, value: str) -> None:
        if inst.decision == value:
            return
        inst.decision = value
        self.record("decision", value, inst.tx)

    def set_timer(self, inst: Instance, name: str, delay: int) -> None:
        self.token += 1
        inst.timers[name] = (self.token, self.now_ms() + delay)
        heapq.heappush(self.timer_heap, (time.monotonic() + delay / 1000, self.token,
                                         inst.tx, name))

    # --- events ------------------------------------------------------------------------
    def deliver(self, wire: dict[str, Any]) -> None:
        tx = wire["payload"].get("tx", "")
        self.handler += 1
        inst = self.instances.get(tx)
        if inst is None:
            if self.is_coordinator:
                # Never heard of it (or forgot it): presumed abort.
                inst = self.new_instance(tx)
                self.handle(inst, inst.role.on_recover)
            else:
                ops = None
                if wire["type"] == "PREPARE" and "op" in wire["payload"]:
                    ops = {self.name: (wire["payload"]["op"], int(wire["payload"]["amount"]))}
                inst = self.new_instance(tx, ops)
                self.handle(inst, inst.role.on_start)
            self.handler += 1
        self.hops = max(self.hops, wire["hops"])
        self.record("deliver", "", tx, m=wire)
        msg = Message(wire["key"][2], wire["src"], wire["dst"], wire["type"], wire["payload"],
                      wire["at"], wire["hops"], 0)
        self.handle(inst, inst.role.on_message, msg)

    def fire_timers(self) -> None:
        now = time.monotonic()
        heap = self.timer_heap
        while heap and heap[0][0] <= now:
            _, token, tx, name = heapq.heappop(heap)
            inst = self.instances.get(tx)
            if inst is None or inst.timers.get(name, (None,))[0] != token:
                continue  # cancelled or replaced
            del inst.timers[name]
            self.handler += 1
            self.record("timeout", name, tx)
            self.handle(inst, inst.role.on_timer, name)

    def recover(self) -> None:
        """A restarted process: read the durable log back, then ``on_recover`` for each
        transaction it names and each the runner says had begun."""
        logged = self.store.read()
        txs = list(dict.fromkeys([*logged, *self.spec.get("txs", ())]))
        total = sum(len(v) for v in logged.values())
        held = [tx for tx in txs if self.store.held(tx)]
        self.handler += 1
        self.record("recover", f"restarts with {total} log record(s)", None, held=held)
        for tx in txs:
            records = logged.get(tx, [])
            ops = None
            for r, _ in records:
                if r.record == "PREPARED" and "op" in r.data and not self.is_coordinator:
                    ops = {self.name: (r.data["op"], int(r.data["amount"]))}
            inst = self.new_instance(tx, ops)
            inst.log = [r for r, _ in records]
            for _, decides in records:
                if decides is not None:
                    inst.decision = decides
            if tx in held:
                inst.locks = ("balance",)
            self.handler += 1
            self.handle(inst, inst.role.on_recover)

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        port = self.listener.getsockname()[1]
        self.tell({"t": "hello", "node": self.name, "incarnation": self.incarnation,
                   "pid": os.getpid(), "port": port})
        while not self.addresses and self.running:  # wait (up to 30 s) for the peers
            for msg in self._control_lines():
                self.on_control(msg)
        self.control.settimeout(None)  # from now on: read when readable, write blocking
        if self.running:
            if self.incarnation > 0:
                self.recover()
            self.tell({"t": "ready"})
        self.sel.register(self.listener, selectors.EVENT_READ, ("listen", None))
        self.sel.register(self.control, selectors.EVENT_READ, ("control", None))
        buffers: dict[socket.socket, bytes] = {}
        while self.running:
            timeout = None
            if self.timer_heap:
                timeout = max(0.0, self.timer_heap[0][0] - time.monotonic())
            for key, _ in self.sel.select(timeout):
                kind, peer = key.data
                sock = key.fileobj
                if kind == "listen":
                    conn, _addr = self.listener.accept()
                    conn.setblocking(False)
                    buffers[conn] = b""
                    self.sel.register(conn, selectors.EVENT_READ, ("in", None))
                elif kind == "control":
                    for msg in self._control_lines():
                        self.on_control(msg)
                elif kind == "out":
                    try:
                        data = sock.recv(4096)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if not data:
                        self._drop_out(peer)
                else:
                    try:
                        data = sock.recv(65536)  # type: ignore[union-attr]
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.sel.unregister(sock)
                        sock.close()  # type: ignore[union-attr]
                        buffers.pop(sock, None)  # type: ignore[arg-type]
                        continue
                    buf = buffers[sock] + data  # type: ignore[index]
                    *lines, buffers[sock] = buf.split(b"\n")  # type: ignore[index]
                    for line in lines:
                        if line:
                            self.deliver(json.loads(line))
            self.fire_timers()
        self.shutdown()

    def shutdown(self) -> None:
        fsyncs = self.store.fsyncs
        self.store.close()
        self.tell({"t": "bye", "fsyncs": fsyncs})
        for dst in list(self.out):
            self._drop_out(dst)
        self.listener.close()
        self.control.close()
        os.close(self.trace_fd)


def node_main(spec: dict[str, Any]) -> None:
    """Run one node until the runner stops it. Errors go to ``spec['stderr']`` and to the
    runner, and end the process with status 1."""
    if spec.get("stderr"):
        fd = os.open(spec["stderr"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    host = None
    try:
        host = NodeHost(spec)
        host.run()
    except SystemExit as exc:
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 0)
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        sys.stderr.write(text)
        sys.stderr.flush()
        if host is not None:
            with contextlib.suppress(OSError):
                host.tell({"t": "error", "text": f"{type(exc).__name__}: {exc}"})
        os._exit(1)
    os._exit(0)


if __name__ == "__main__":  # python -m txlib.real.host SPEC.json
    with open(sys.argv[1]) as f:
        node_main(json.load(f))
