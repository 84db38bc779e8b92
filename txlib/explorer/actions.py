"""What the explorer may do in a state: one small frozen dataclass per kind of action.

Ordinary events: :class:`Start` (the first step), :class:`Deliver` (a message in flight
arrives) and :class:`Timeout` (a pending timer fires). Faults: :class:`Crash` (between
two steps), :class:`CrashDuring` (in the middle of an event, right after the node's k-th
send or log write), :class:`Recover`, :class:`Drop` (the network loses a message in
flight), :class:`Partition` and :class:`Heal`. Each action is hashable (it is a key of
the search's paths) and says what it is in words (``describe()``); a fault says which
budget it spends (``spends``) and, but for a drop, gives the fault record a timed plan
would need to do the same (``as_fault``).

Messages are named by :func:`message_key`: sender, receiver, type and payload, without
ids or times, so identical copies in flight are one choice.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from ..engine.faults import Fault, crash, heal, partition, recover
from ..engine.records import Message
from ..engine.snapshot import canonical


class MessageKey(NamedTuple):
    """A message without its id, times, depth or copy mark: what the explorer tells
    apart. ``payload`` is in canonical form (see :func:`txlib.engine.snapshot.canonical`)."""

    src: str
    dst: str
    type: str
    payload: Any


def message_key(m: Message) -> MessageKey:
    """The key of message ``m``."""
    return _new(MessageKey, (m.src, m.dst, m.type, canonical(m.payload)))


_new = tuple.__new__  # a NamedTuple without its (slower) constructor, on the hot path
# Fault records are immutable and checked when made: make each one once.
_crash = functools.cache(crash)
_recover = functools.cache(recover)
_partition = functools.cache(partition)
_heal = functools.cache(heal)


class Spent(NamedTuple):
    """The fault budget a state has used."""

    crashes: int = 0
    drops: int = 0
    partitions: int = 0
    heals: int = 0
    restarts: int = 0


_SPENT_AT = {name: i for i, name in enumerate(Spent._fields)}


def spent_on(used: Spent, spends: str) -> Spent:
    """``used`` with one more of the budget ``spends`` names (a fault action's
    ``spends``: "crashes", "drops", "partitions", "heals" or "restarts")."""
    values = list(used)
    values[_SPENT_AT[spends]] += 1
    return _new(Spent, values)


def one_more_crash(used: Spent) -> Spent:
    """``used`` with one more crash (without NamedTuple._replace: on the explorer's hot
    path)."""
    return _new(Spent, (used.crashes + 1, *used[1:]))


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


# --- ordinary events ----------------------------------------------------------------------
@dataclass(frozen=True)
class Start:
    """The first step: every node's ``on_start``."""


    def describe(self) -> str:
        return "start: every node begins"


@dataclass(frozen=True)
class Deliver:
    """The message ``message`` (the earliest such, if several are in flight) arrives."""

    message: MessageKey

    def describe(self) -> str:
        m = self.message
        return f"{m.dst} receives {m.type} from {m.src}"


@dataclass(frozen=True)
class Timeout:
    """Timer ``timer`` of node ``node`` fires."""

    node: str
    timer: str

    def describe(self) -> str:
        return f"{self.node}: timer {self.timer!r} fires"


Event = Start | Deliver | Timeout


# --- faults --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crash:
    """Node ``node`` crashes between two steps."""

    node: str
    spends: ClassVar[str] = "crashes"

    def describe(self) -> str:
        return f"{self.node} crashes"

    def as_fault(self, at_step: int = 0) -> Fault:
        """The same crash as a fault record of a plan."""
        return _crash(self.node, at_step)


@dataclass(frozen=True)
class CrashDuring:
    """``event`` happens, and node ``node`` crashes right after its ``after``-th send or
    log write of it (``what``: that action, as a trigger text)."""

    event: Event
    node: str
    after: int
    what: str
    spends: ClassVar[str] = "crashes"

    def describe(self) -> str:
        return (f"{self.event.describe()}; {self.node} crashes right after its "
                f"{_ordinal(self.after)} action ({self.what.split(' ', 1)[1]})")

    def as_fault(self, at_step: int = 0) -> Fault:
        """The same crash as a fault record: triggered by the action (not by a step)."""
        return crash(self.node, when=self.what)


@dataclass(frozen=True)
class Recover:
    """Crashed node ``node`` restarts from its log."""

    node: str
    spends: ClassVar[str] = "restarts"

    def describe(self) -> str:
        return f"{self.node} restarts"

    def as_fault(self, at_step: int = 0) -> Fault:
        return _recover(self.node, at_step)


@dataclass(frozen=True)
class Drop:
    """The network loses message ``message`` (the earliest such) in flight."""

    message: MessageKey
    spends: ClassVar[str] = "drops"

    def describe(self) -> str:
        m = self.message
        return f"the network loses {m.type} from {m.src} to {m.dst}"


@dataclass(frozen=True)
class Partition:
    """The network splits into two groups."""

    groups: tuple[tuple[str, ...], tuple[str, ...]]
    spends: ClassVar[str] = "partitions"

    def describe(self) -> str:
        a, b = self.groups
        return f"the network splits: {{{', '.join(a)}}} | {{{', '.join(b)}}}"

    def as_fault(self, at_step: int = 0) -> Fault:
        return _partition(*self.groups, at_step=at_step)


@dataclass(frozen=True)
class Heal:
    """The partition heals."""

    spends: ClassVar[str] = "heals"

    def describe(self) -> str:
        return "the partition heals"

    def as_fault(self, at_step: int = 0) -> Fault:
        return _heal(at_step)


FaultAction = Crash | CrashDuring | Recover | Drop | Partition | Heal
Action = Event | FaultAction
EVENTS = (Start, Deliver, Timeout)
FAULTS = (Crash, CrashDuring, Recover, Drop, Partition, Heal)
ACTIONS = EVENTS + FAULTS
FAULT_TYPES: frozenset[type] = frozenset(FAULTS)  # for a quick ``type(action) in``
