"""One real node: an OS process that runs a txlib role over TCP, the wall clock and disk.

The node runs its role in the run's commit protocol (its ``spec``: the protocol's name
and options, the participants), built by the protocol itself from its roster, with a
real database under a participant (see :mod:`txlib.real.roles`): a coordinator, a
participant, or a helper such as Paxos Commit's acceptor, whose store is a log file.

The host is a ``selectors`` event loop: a TCP server for messages from peers (JSON
lines), one outgoing connection per peer, wall-clock timers, and a control connection
to the runner (start a transaction, stop). It hosts one :class:`Instance` per
transaction (a role object, its state and log), so a long-lived node can serve many
transactions one after another. The host implements the engine's
:class:`~txlib.engine.node.Host`: protocol code acts through the engine's own
:class:`~txlib.engine.node.Context`, over the wall clock, TCP and the node's store.

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
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ..engine.node import Context, NodeSlot, Role
from ..engine.records import LogRecord, Message
from ..engine.volatile import volatile_summary
from ..errors import ProtocolError
from ..protocols.base import CommitConfig, CommitCoordinator, CommitParticipant
from .roles import (
    STORE_PREPARED,
    RealParticipant,
    protocol_record,
    real_protocol,
    real_variant,
    store_record,
)
from .stores import open_store


class Instance(NodeSlot):
    """One transaction on this node: the slot its :class:`~txlib.engine.node.Context`
    acts on (role object, state, volatile variables, timers, locks, decision, log, as
    the simulator keeps them per node), plus the transaction's name, its configuration
    and the status last reported to the runner."""

    __slots__ = ("config", "reported", "tx")

    def __init__(self, name: str, tx: str, role: Role, config: CommitConfig) -> None:
        super().__init__(name, role)
        self.tx = tx
        self.config = config
        self.reported: tuple[Any, ...] = ()


def instance(slot: NodeSlot) -> Instance:
    """``slot`` as one of this host's transaction instances (the only slots its
    contexts are given)."""
    if not isinstance(slot, Instance):
        raise ProtocolError(f"{slot.name}: a real node acts only through a transaction")
    return slot


class NodeHost:
    """The event loop of one node process (see the module docstring)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name: str = spec["node"]
        self.incarnation: int = spec["incarnation"]
        self.participants: tuple[str, ...] = tuple(spec["participants"])
        self.protocol = real_protocol(spec["protocol"])
        self.builder = real_variant(type(self.protocol))
        self.roster = self.protocol.roster(self.participants, spec["options"])
        self.drives = self.roster.first == self.name  # the coordinator
        self.decides = self.name in self.roster.deciders  # a participant, with a database
        self.base_config: CommitConfig = self.protocol.make_config(self.participants,
                                                                   spec["options"])
        self.operations: dict[str, tuple[str, int]] = {
            p: (op[0], int(op[1])) for p, op in spec["operations"].items()}
        self.marks = frozenset(spec.get("marks", ()))
        self.t0_ns: int = spec["t0_ns"]
        self.record_trace: bool = spec.get("record", True)
        self.instances: dict[str, Instance] = {}
        self.acting: Instance | None = None  # whose handler is running
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
        self.store = open_store(spec["store"], self.name)

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
    def make_role(self, config: CommitConfig, ops: dict[str, tuple[str, int]] | None) -> Role:
        """The role object of one transaction: this node's role in the protocol's real
        variant (see :mod:`txlib.real.roles`); ``ops``: its operations (default: the
        spec's)."""
        ops = ops or self.operations
        role = dict(self.builder.build(self.roster, config))[self.name]
        if isinstance(role, CommitCoordinator):
            role.operations = dict(ops)
        if isinstance(role, CommitParticipant):
            role.operation = ops[self.name]
        if isinstance(role, RealParticipant):
            role.account = self.store
        return role

    def new_instance(self, tx: str, ops: dict[str, tuple[str, int]] | None = None) -> Instance:
        config = replace(self.base_config, tx=tx)
        inst = Instance(self.name, tx, self.make_role(config, ops), config)
        inst.ctx = Context(self, inst)
        self.instances[tx] = inst
        return inst

    def handle(self, inst: Instance, fn: Callable[..., None], *args: Any) -> None:
        """Run one handler to completion, then record the volatile state and report."""
        self.acting = inst
        try:
            fn(inst.ctx, *args)
        finally:
            self.acting = None
        if self.record_trace:
            self.record("_volatile", volatile_summary(inst), inst.tx)
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
                how = ("power cut (SIGKILL, unsynced writes lost)" if trig.get("power")
                       else "killed with SIGKILL")
                self.record("crash", f"{how} at {trig['label']}", None, point=trig["label"])
                os.kill(os.getpid(), signal.SIGKILL)
                os._exit(1)  # not reached: a SIGKILL to oneself is delivered before kill returns

    # --- the engine's Host: what a Context does on this node ------------------------------
    @property
    def time(self) -> int:
        """Wall-clock milliseconds since the run began."""
        return self.now_ms()

    @property
    def config(self) -> CommitConfig:
        """The configuration of the transaction whose handler is running."""
        return self.acting.config if self.acting is not None else self.base_config

    def step_fails(self, step: str, compensation: bool) -> bool:
        return False  # saga steps do not run here

    def has_mark(self, node: str, kind: str) -> bool:
        if kind == "vote_no" and self.acting is not None and \
                getattr(self.acting.role, "cannot_prepare", False):
            return True  # its database refused to prepare: it votes NO
        return kind in self.marks

    def send(self, slot: NodeSlot, dst: str, type: str, payload: dict[str, Any]) -> None:
        inst = instance(slot)
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

    def write_log(self, slot: NodeSlot, record: str, forced: bool, data: dict[str, Any],
                  decides: str | None = None) -> None:
        inst = instance(slot)
        self.trigger("before", "log", record, inst.tx)
        now = self.now_ms()
        stored = store_record(self.protocol, record) if self.decides else record
        self.store.append(inst.tx, stored, data, forced, decides, now)
        inst.log.append(LogRecord(record, data, forced, now))
        self.record("log", record + (" (forced)" if forced else " (lazy)"), inst.tx)
        if decides is not None:
            self.decide(inst, decides)
        self.trigger("after", "log", record, inst.tx)

    def change_state(self, slot: NodeSlot, target: str, detail: str = "") -> None:
        inst = instance(slot)
        inst.state = target
        self.record("state", detail or target, inst.tx, to=target)

    def set_timer(self, slot: NodeSlot, name: str, delay: int) -> None:
        inst = instance(slot)
        self.token += 1
        inst.timers[name] = (self.token, self.now_ms() + delay)
        heapq.heappush(self.timer_heap, (time.monotonic() + delay / 1000, self.token,
                                         inst.tx, name))

    def cancel_timer(self, slot: NodeSlot, name: str) -> None:
        slot.timers.pop(name, None)  # its heap entry is skipped when it comes due

    def note(self, slot: NodeSlot, kind: str, detail: str) -> None:
        self.record(kind, detail, instance(slot).tx)

    def decide(self, slot: NodeSlot, value: str) -> None:
        inst = instance(slot)
        if inst.decision == value:
            return
        inst.decision = value
        self.record("decision", value, inst.tx)

    def set_locks(self, slot: NodeSlot, locks: tuple[str, ...]) -> None:
        inst = instance(slot)
        inst.locks = locks
        self.record("lock" if locks else "unlock", ", ".join(locks), inst.tx)

    # --- events ------------------------------------------------------------------------
    def deliver(self, wire: dict[str, Any]) -> None:
        tx = wire["payload"].get("tx", "")
        self.handler += 1
        inst = self.instances.get(tx)
        if inst is None:
            if self.drives:
                # Never heard of it (or forgot it): what its log says (2PC: presumed abort).
                inst = self.new_instance(tx)
                self.handle(inst, inst.role.on_recover)
            else:
                ops = None
                if self.decides and "op" in wire["payload"] and "amount" in wire["payload"]:
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
                if self.decides and r.record == STORE_PREPARED and "op" in r.data:
                    ops = {self.name: (r.data["op"], int(r.data["amount"]))}
            inst = self.new_instance(tx, ops)
            inst.log = [protocol_record(self.protocol, r) if self.decides else r
                        for r, _ in records]
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
                assert isinstance(sock, socket.socket)  # only sockets are registered
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
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if not data:
                        self._drop_out(peer)
                else:
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.sel.unregister(sock)
                        sock.close()
                        buffers.pop(sock, None)
                        continue
                    buf = buffers[sock] + data
                    *lines, buffers[sock] = buf.split(b"\n")
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
        if spec.get("netns"):  # a real network: this node lives in its own namespace
            from .netns import enter

            enter(spec["netns"])
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
