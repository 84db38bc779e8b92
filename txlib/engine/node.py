"""Nodes: the protocol logic of a role, the per-node slot in the world, and the context
through which a node acts.

Protocol code never touches the world directly. A :class:`Role` reacts to events
(``on_start``, ``on_message``, ``on_timer``, ``on_recover``) and acts only through its
:class:`Context`: send a message, write its durable log, change state along a declared
transition, set a timer, vote, decide, take or release locks. That narrow surface is what
lets the same protocol code run under the simulator and, later, over real processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from ..errors import ProtocolError, choices, suggestion
from .records import LogRecord, Message
from .statemachine import StateMachine

Handler = Callable[["Role", "Context", Message], None]  # an ``on_<TYPE>`` method


class Role:
    """The logic of one role (coordinator, participant, ...). Holds no per-node state.

    Subclasses set ``machine`` and write handlers named ``on_<MESSAGE_TYPE>`` for each
    message type they accept, plus ``on_timer`` and ``on_recover``. ``record_types``
    names every record the role writes to its log, as ``machine`` declares its states:
    writing any other is a :class:`ProtocolError`, and a fault triggered when a node
    "logs" a record must name one of them (None: the role does not say, and neither is
    checked).
    """

    machine: StateMachine
    record_types: ClassVar[frozenset[str] | None] = None
    _handlers: ClassVar[dict[str, Handler]] = {}
    # How the simulator delivers a message: straight to the ``on_<TYPE>`` handler found
    # in this table, as :meth:`on_message` would; None if the class overrides
    # ``on_message``, which then receives every message itself.
    dispatch: ClassVar[dict[str, Handler] | None] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Collect the ``on_<TYPE>`` handlers once per class, not once per node."""
        super().__init_subclass__(**kwargs)
        cls._handlers = {
            attr[3:]: getattr(cls, attr)
            for attr in dir(cls)
            if attr.startswith("on_") and attr[3:].isupper()
        }
        cls.dispatch = cls._handlers if cls.on_message is Role.on_message else None

    @property
    def name(self) -> str:
        return self.machine.role

    @classmethod
    def message_types(cls) -> frozenset[str]:
        """The message types this role handles (its ``on_<TYPE>`` methods)."""
        return frozenset(cls._handlers)

    def on_start(self, ctx: Context) -> None:
        """Called once, at the first step of a run."""

    def on_message(self, ctx: Context, msg: Message) -> None:
        """Dispatch to ``on_<TYPE>``; an unexpected type is a protocol bug."""
        handler = self._handlers.get(msg.type)
        if handler is None:
            raise ProtocolError(f"{ctx.name} ({self.name}) has no handler for {msg.type}")
        handler(self, ctx, msg)

    def on_timer(self, ctx: Context, name: str) -> None:
        """A timer set with ``ctx.set_timer(name, ...)`` fired."""

    def on_recover(self, ctx: Context) -> None:
        """The node restarted after a crash: rebuild volatile state from ``ctx.log_records``."""


class NodeSlot:
    """Everything the world keeps about one node.

    ``log`` and ``durable`` (how many leading log records are on stable storage) survive
    a crash; ``vars``, ``timers`` and unforced log records do not. ``locks`` models
    resources held by a prepared transaction, which survive a restart too. ``decision``,
    ``hops`` and ``incarnation`` (how many times it restarted) are the engine's
    bookkeeping, invisible to the protocol.

    A slot may be *shared* by several worlds (see :func:`txlib.engine.snapshot.freeze`):
    then no world changes it in place; a world that must change it takes its own copy
    first (copy on write), and ``ctx`` is unset. ``memo`` is a cache its reader may keep
    about the slot's contents (the explorer keeps the slot's interned canonical form);
    the world resets it whenever it changes the slot.
    """

    __slots__ = (
        "ctx",
        "decision",
        "durable",
        "hops",
        "incarnation",
        "locks",
        "log",
        "memo",
        "name",
        "role",
        "shared",
        "state",
        "timers",
        "up",
        "vars",
    )

    def __init__(self, name: str, role: Role) -> None:
        self.name = name
        self.role = role
        self.up = True
        self.state = role.machine.initial
        self.log: list[LogRecord] = []
        self.durable = 0
        self.vars: dict[str, Any] = {}
        self.timers: dict[str, tuple[int, int]] = {}  # name -> (token, due time)
        self.locks: tuple[str, ...] = ()
        self.decision: str | None = None
        self.hops = 0
        self.incarnation = 0
        self.shared = False
        self.memo: Any = None
        self.ctx: Context


class Host(Protocol):
    """What a node's :class:`Context` needs from whatever runs the node, such as a real
    process (:mod:`txlib.real`). Each action takes the node's :class:`NodeSlot` and
    refuses it if the node is down. (The simulator's nodes act through a
    :class:`~txlib.engine.simcontext.WorldContext`, which changes the world itself.)"""

    @property
    def time(self) -> int: ...

    @property
    def config(self) -> Any: ...

    def step_fails(self, step: str, compensation: bool) -> bool: ...

    def has_mark(self, node: str, kind: str) -> bool: ...

    def send(self, slot: NodeSlot, dst: str, type: str, payload: dict[str, Any]) -> None: ...

    def write_log(self, slot: NodeSlot, record: str, forced: bool, data: dict[str, Any],
                  decides: str | None = None) -> None: ...

    def change_state(self, slot: NodeSlot, target: str, detail: str = "") -> None: ...

    def set_timer(self, slot: NodeSlot, name: str, delay: int) -> None: ...

    def cancel_timer(self, slot: NodeSlot, name: str) -> None: ...

    def note(self, slot: NodeSlot, kind: str, detail: str) -> None: ...

    def decide(self, slot: NodeSlot, value: str) -> None: ...

    def set_locks(self, slot: NodeSlot, locks: tuple[str, ...]) -> None: ...


class Context:
    """What a node may do: the only surface protocol code sees. One per node, bound to
    its :class:`Host` (a real process); in the simulated world, the
    :class:`~txlib.engine.simcontext.WorldContext` subclass."""

    __slots__ = ("_host", "_slot", "memo", "name")

    def __init__(self, host: Host, slot: NodeSlot) -> None:
        self._host = host
        self._slot = slot
        self.name = slot.name
        # A role's caches of what its log says (e.g. a fold of the log, kept up to date
        # with log_since), so a handler need not re-read the whole log. Never state: a
        # cloned world gets a fresh Context, and a cache must check it is still valid.
        self.memo: dict[Any, Any] = {}

    # --- reading -------------------------------------------------------------------
    @property
    def now(self) -> int:
        """The host's time (simulated milliseconds, or wall-clock ones on a real host)."""
        return self._host.time

    @property
    def state(self) -> str:
        return self._slot.state

    @property
    def vars(self) -> dict[str, Any]:
        """Volatile state: wiped by a crash."""
        return self._slot.vars

    @property
    def log_records(self) -> tuple[LogRecord, ...]:
        """The node's log as it stands (after a crash: only what was stable)."""
        return tuple(self._slot.log)

    def log_since(self, start: int) -> tuple[LogRecord, ...]:
        """The log records from index ``start`` on (``log_records[start:]``, without
        copying the whole log)."""
        return tuple(self._slot.log[start:])

    @property
    def log_length(self) -> int:
        """How many records the log holds now."""
        return len(self._slot.log)

    @property
    def config(self) -> Any:
        """The protocol's configuration object."""
        return self._host.config

    @property
    def locks(self) -> tuple[str, ...]:
        return self._slot.locks

    def step_fails(self, step: str, compensation: bool = False) -> bool:
        """True if a ``fail_step`` fault makes this attempt of saga step ``step`` fail."""
        return self._host.step_fails(step, compensation)

    def has_mark(self, kind: str) -> bool:
        """True if a node mark fault (``vote_no``, ``slow``) is active on this node."""
        return self._host.has_mark(self.name, kind)

    # --- acting --------------------------------------------------------------------
    # Every action goes through the host, which refuses it if this node is down (it
    # may have crashed in the middle of a handler, through a triggered fault).
    def send(self, dst: str, type: str, **payload: Any) -> None:
        """Send one message (it may be lost, duplicated, delayed by the network)."""
        self._host.send(self._slot, dst, type, payload)

    def broadcast(self, dsts: Iterable[str], type: str, **payload: Any) -> None:
        """Send the same message to each destination, one after another, in order."""
        for dst in dsts:
            self.send(dst, type, **payload)

    def log(self, record: str, *, forced: bool, decides: str | None = None, **data: Any) -> None:
        """Append to the durable log; ``forced`` writes reach stable storage at once.

        ``decides`` marks a decision record: writing it *is* this node's decision
        (``"commit"`` or ``"abort"``), so a crash right after the write still leaves the
        node decided, as its log says.
        """
        slot = self._slot
        declared = slot.role.record_types
        if declared is not None and record not in declared:
            raise undeclared_record(slot, record)
        self._host.write_log(slot, record, forced, data, decides)

    def set_state(self, target: str) -> None:
        """Move along a declared transition (anything else raises ProtocolError)."""
        slot = self._slot
        if target != slot.state:
            slot.role.machine.check(slot.name, slot.state, target)
            self._host.change_state(slot, target)

    def restore_state(self, target: str) -> None:
        """During recovery: resume in any declared state the durable log justifies."""
        slot = self._slot
        slot.role.machine.check_state(slot.name, target)
        if target != slot.state:
            self._host.change_state(slot, target, "restored from log")

    def set_timer(self, name: str, delay: int) -> None:
        """Fire ``on_timer(name)`` after ``delay``; re-setting a timer replaces it."""
        if delay < 0:
            raise ProtocolError(f"{self.name}: timer {name!r} with negative delay {delay}")
        self._host.set_timer(self._slot, name, delay)

    def cancel_timer(self, name: str) -> None:
        """Forget timer ``name`` (no error if it is not set)."""
        self._host.cancel_timer(self._slot, name)

    def vote(self, value: str) -> None:
        """Record this node's vote (``"yes"`` or ``"no"``) for the invariant checks."""
        self._host.note(self._slot, "vote", value)

    def note(self, kind: str, detail: str) -> None:
        """Record something worth showing (e.g. a service's ``"effect"``) in the trace."""
        self._host.note(self._slot, kind, detail)

    def decide(self, value: str) -> None:
        """Record this node's decision (``"commit"`` or ``"abort"``)."""
        self._host.decide(self._slot, value)

    def lock(self, *resources: str) -> None:
        """Take locks on ``resources`` (held until :meth:`unlock`, across crashes)."""
        self._host.set_locks(self._slot, tuple(sorted(set(self._slot.locks) | set(resources))))

    def unlock(self) -> None:
        """Release every lock this node holds."""
        if self._slot.locks:
            self._host.set_locks(self._slot, ())


def undeclared_record(slot: NodeSlot, record: str) -> ProtocolError:
    """The error for a node writing a log record its role does not declare."""
    declared = sorted(slot.role.record_types or ())
    return ProtocolError(
        f"{slot.name} ({slot.role.name}) wrote log record {record!r}"
        f"{suggestion(record, declared)}, which its role does not declare; declared: "
        f"{choices(declared)} (add it to the role's record_types)")


def declared_records(roles: Iterable[Role]) -> frozenset[str] | None:
    """Every log record ``roles`` declare they write (see :attr:`Role.record_types`), or
    None if one of them does not say."""
    found: set[str] = set()
    for role in roles:
        if role.record_types is None:
            return None
        found |= role.record_types
    return frozenset(found)
