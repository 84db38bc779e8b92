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
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ProtocolError
from .records import LogRecord, Message
from .statemachine import StateMachine

if TYPE_CHECKING:
    from .world import World


class Role:
    """The logic of one role (coordinator, participant, ...). Holds no per-node state.

    Subclasses set ``machine`` and write handlers named ``on_<MESSAGE_TYPE>`` for each
    message type they accept, plus ``on_timer`` and ``on_recover``.
    """

    machine: StateMachine
    _handlers: ClassVar[dict[str, Callable[[Role, Context, Message], None]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Collect the ``on_<TYPE>`` handlers once per class, not once per node."""
        super().__init_subclass__(**kwargs)
        cls._handlers = {
            attr[3:]: getattr(cls, attr)
            for attr in dir(cls)
            if attr.startswith("on_") and attr[3:].isupper()
        }

    @property
    def name(self) -> str:
        return self.machine.role

    def accepts(self) -> tuple[str, ...]:
        """The message types this role handles."""
        return tuple(sorted(self._handlers))

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
    """

    __slots__ = (
        "ctx",
        "decision",
        "durable",
        "hops",
        "incarnation",
        "locks",
        "log",
        "name",
        "role",
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
        self.ctx: Context


class Context:
    """What a node may do. One per node, bound to the world."""

    __slots__ = ("_slot", "_world", "name")

    def __init__(self, world: World, slot: NodeSlot) -> None:
        self._world = world
        self._slot = slot
        self.name = slot.name

    # --- reading -------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Simulated time."""
        return self._world.time

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

    @property
    def config(self) -> Any:
        """The protocol's configuration object."""
        return self._world.config

    @property
    def locks(self) -> tuple[str, ...]:
        return self._slot.locks

    def step_fails(self, step: str, compensation: bool = False) -> bool:
        """True if a ``fail_step`` fault makes this attempt of saga step ``step`` fail."""
        return self._world.faults.step_fails(step, compensation)

    def has_mark(self, kind: str) -> bool:
        """True if a node mark fault (``vote_no``, ``slow``) is active on this node."""
        return self._world.faults.has_mark(self.name, kind)

    # --- acting --------------------------------------------------------------------
    # Every action goes through the world, which refuses it if this node is down (it
    # may have crashed in the middle of a handler, through a triggered fault).
    def send(self, dst: str, type: str, **payload: Any) -> None:
        """Send one message (it may be lost, duplicated, delayed by the network)."""
        self._world.send(self._slot, dst, type, payload)

    def broadcast(self, dsts: Iterable[str], type: str, **payload: Any) -> None:
        """Send the same message to each destination, one after another, in order."""
        for dst in dsts:
            self._world.send(self._slot, dst, type, payload)

    def log(self, record: str, *, forced: bool, decides: str | None = None, **data: Any) -> None:
        """Append to the durable log; ``forced`` writes reach stable storage at once.

        ``decides`` marks a decision record: writing it *is* this node's decision
        (``"commit"`` or ``"abort"``), so a crash right after the write still leaves the
        node decided, as its log says.
        """
        self._world.write_log(self._slot, record, forced, data, decides)

    def set_state(self, target: str) -> None:
        """Move along a declared transition (anything else raises ProtocolError)."""
        slot = self._slot
        if target != slot.state:
            slot.role.machine.check(slot.name, slot.state, target)
            self._world.change_state(slot, target)

    def restore_state(self, target: str) -> None:
        """During recovery: resume in any declared state the durable log justifies."""
        slot = self._slot
        slot.role.machine.check_state(slot.name, target)
        if target != slot.state:
            self._world.change_state(slot, target, "restored from log")

    def set_timer(self, name: str, delay: int) -> None:
        """Fire ``on_timer(name)`` after ``delay``; re-setting a timer replaces it."""
        self._world.set_timer(self._slot, name, delay)

    def cancel_timer(self, name: str) -> None:
        """Forget timer ``name`` (no error if it is not set)."""
        self._world.check_up(self._slot)
        self._slot.timers.pop(name, None)

    def vote(self, value: str) -> None:
        """Record this node's vote (``"yes"`` or ``"no"``) for the invariant checks."""
        self._world.note(self._slot, "vote", value)

    def note(self, kind: str, detail: str) -> None:
        """Record something worth showing (e.g. a service's ``"effect"``) in the trace."""
        self._world.note(self._slot, kind, detail)

    def decide(self, value: str) -> None:
        """Record this node's decision (``"commit"`` or ``"abort"``)."""
        self._world.decide(self._slot, value)

    def lock(self, *resources: str) -> None:
        """Take locks on ``resources`` (held until :meth:`unlock`, across crashes)."""
        self._world.set_locks(self._slot, tuple(sorted(set(self._slot.locks) | set(resources))))

    def unlock(self) -> None:
        """Release every lock this node holds."""
        if self._slot.locks:
            self._world.set_locks(self._slot, ())
