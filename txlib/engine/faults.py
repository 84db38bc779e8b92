"""Faults as data: small records that say what goes wrong and when.

A fault plan is a tuple of :class:`Fault` records. Each record either happens once
(crash, recover, partition, heal), or, once active, shapes matching messages (drop,
duplicate, delay), or marks a node (vote_no, slow). *When* a fault happens is one of:

- ``at_step=k``: right after scheduler step ``k`` (``0`` means before the first step);
- ``at_time=t``: at simulated time ``t`` (a crash, recovery, partition or heal is then a
  step of its own; turning on a message fault or a mark is not);
- ``when=...``: the moment a trigger fires, e.g. ``"coordinator logs COMMIT"``,
  ``"coordinator sends COMMIT to p2"`` or ``"p1 receives PREPARE"``.

With no timing, a message fault or a node mark is active from the start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, TypeGuard

from ..errors import TxlibError, bad_choice, choices, shown
from .config import MAX_NUMBER

FAULT_KINDS: tuple[str, ...] = (
    "crash",
    "recover",
    "drop",
    "duplicate",
    "delay",
    "partition",
    "heal",
    "vote_no",
    "slow",
    "fail_step",
)
ONE_SHOT = frozenset({"crash", "recover", "partition", "heal"})
MESSAGE_FAULTS = frozenset({"drop", "duplicate", "delay"})
NODE_MARKS = frozenset({"vote_no", "slow"})
STEP_MARKS = frozenset({"fail_step"})
TRIGGER_ACTIONS: tuple[str, ...] = ("logs", "sends", "receives")
ANY_NODE = "any"
# The most faults one scenario may plan: a plan is written by hand or made by a search,
# and a plan of thousands only makes a run slow (each fault due is looked for at each step).
MAX_FAULTS = 1_000
TIMING_FIELDS = frozenset({"at_step", "at_time", "when"})
# The fields each kind of fault uses, besides its timing.
FIELDS_OF_KIND: dict[str, frozenset[str]] = {
    "crash": frozenset({"node"}),
    "recover": frozenset({"node"}),
    "vote_no": frozenset({"node"}),
    "slow": frozenset({"node", "by"}),
    "drop": frozenset({"type", "src", "dst", "count"}),
    "duplicate": frozenset({"type", "src", "dst", "count"}),
    "delay": frozenset({"type", "src", "dst", "count", "by"}),
    "partition": frozenset({"groups"}),
    "heal": frozenset(),
    "fail_step": frozenset({"step", "count", "compensation"}),
}

_TRIGGER_RE = re.compile(
    r"^\s*(?P<node>\S+)\s+(?P<action>\S+)\s+(?P<what>\S+)"
    r"(?:\s+(?P<prep>to|from)\s+(?P<peer>\S+))?\s*$"
)


def _whole(value: object) -> TypeGuard[int]:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_at_most(kind: str, name: str, value: int | None) -> None:
    """A TxlibError if the time or count ``value`` is above :data:`MAX_NUMBER` (the bound
    of every whole-number option), which no run could reach."""
    if value is not None and value > MAX_NUMBER:
        raise TxlibError(f"{kind}: {name} must be at most {MAX_NUMBER:,}, got {shown(value)}")


def _word(value: object) -> bool:
    """True for a non-empty string without whitespace (a name that survives text form)."""
    return isinstance(value, str) and bool(value) and not any(c.isspace() for c in value)


@dataclass(frozen=True)
class Trigger:
    """A moment in a run: ``node`` ``action`` ``what`` [to/from ``peer``].

    ``action`` is ``logs`` (``what`` is a log record name), ``sends`` or ``receives``
    (``what`` is a message type). ``node`` may be ``"any"``. A trigger fires the first
    time it matches, right after the matching action.
    """

    node: str
    action: str
    what: str
    peer: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or self.action not in TRIGGER_ACTIONS:
            raise bad_choice("trigger action", self.action, TRIGGER_ACTIONS)
        for part in ("node", "what", "peer"):
            value = getattr(self, part)
            if part == "peer" and value is None:
                continue
            if not _word(value):
                raise TxlibError(
                    f"trigger {part} must be one word (a node, record or message type), "
                    f"got {value!r}"
                )
        if self.peer is not None and self.action == "logs":
            raise TxlibError(f"a 'logs' trigger has no peer, got {self.peer!r}")

    @classmethod
    def parse(cls, text: str) -> Trigger:
        """Read ``"p1 logs PREPARED"``, ``"coordinator sends COMMIT to p2"``, ..."""
        if not isinstance(text, str):
            raise TxlibError(f"a trigger must be a string like 'p1 logs PREPARED', got {text!r}")
        m = _TRIGGER_RE.match(text)
        if not m:
            raise TxlibError(
                f"cannot read trigger {text!r}; write 'NODE logs RECORD', "
                "'NODE sends TYPE [to NODE]' or 'NODE receives TYPE [from NODE]'"
            )
        action, prep = m["action"], m["prep"]
        if action not in TRIGGER_ACTIONS:
            raise bad_choice("trigger action", action, TRIGGER_ACTIONS)
        if prep and {"sends": "to", "receives": "from"}.get(action) != prep:
            raise TxlibError(f"in trigger {text!r}, use 'sends ... to' or 'receives ... from'")
        return cls(node=m["node"], action=action, what=m["what"], peer=m["peer"])

    def __str__(self) -> str:
        prep = {"sends": " to ", "receives": " from "}.get(self.action, "")
        tail = f"{prep}{self.peer}" if self.peer else ""
        return f"{self.node} {self.action} {self.what}{tail}"

    def nodes(self) -> tuple[str, ...]:
        """Node names this trigger mentions (for validation)."""
        return tuple(n for n in (self.node, self.peer) if n is not None and n != ANY_NODE)


@dataclass(frozen=True)
class Fault:
    """One fault of a plan. Build them with the constructors below rather than by hand."""

    kind: str
    node: str | None = None
    at_step: int | None = None
    at_time: int | None = None
    when: Trigger | None = None
    type: str | None = None
    src: str | None = None
    dst: str | None = None
    count: int | None = 1
    by: int | None = None
    groups: tuple[tuple[str, ...], ...] = field(default=())
    step: str | None = None
    compensation: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or self.kind not in FAULT_KINDS:
            raise bad_choice("fault kind", self.kind, FAULT_KINDS)
        self._normalise_groups()
        self._refuse_fields_of_other_kinds()
        if self.kind in ("crash", "recover", "vote_no", "slow") and not self.node:
            raise TxlibError(f"{self.kind} needs a node, e.g. {self.kind}('p1')")
        for name in ("node", "type", "src", "dst"):
            value = getattr(self, name)
            if value is not None and not _word(value):
                raise TxlibError(f"{self.kind}: {name} must be one word, got {value!r}")
        if self.when is not None and not isinstance(self.when, Trigger):
            raise TxlibError(f"{self.kind}: when must be a Trigger or a string, got {self.when!r}")
        if self.kind in ("crash", "partition") and self.at_step is None and (
            self.at_time is None and self.when is None
        ):
            object.__setattr__(self, "at_step", 0)  # no timing: from the very start
        timings = [t for t in (self.at_step, self.at_time, self.when) if t is not None]
        if len(timings) > 1:
            raise TxlibError(
                f"{self.kind}: give at most one of at_step, at_time or when "
                f"(got at_step={self.at_step!r}, at_time={self.at_time!r}, when={self.when!r})"
            )
        for name in ("at_step", "at_time"):
            value = getattr(self, name)
            if value is not None and not _whole(value):
                raise TxlibError(f"{self.kind}: {name} must be a whole number, "
                                 f"got {shown(value)}")
            if value is not None and value < 0:
                raise TxlibError(f"{self.kind}: {name} must be 0 or more, got {shown(value)}")
            _check_at_most(self.kind, name, value)
        if self.kind in ("recover", "heal") and not timings:
            raise TxlibError(f"{self.kind} needs a time: give at_step, at_time or when")
        if self.kind == "fail_step":
            if not _word(self.step):
                raise TxlibError(f"fail_step needs a step name, e.g. fail_step('process_payment')"
                                 f"; got {self.step!r}")
            if not isinstance(self.compensation, bool):
                raise TxlibError(f"fail_step: compensation must be True or False, "
                                 f"got {self.compensation!r}")
        if self.kind in (*MESSAGE_FAULTS, "fail_step") and self.count is not None:
            times = "times" if self.kind == "fail_step" else "count"
            if not (_whole(self.count) and self.count >= 1):
                if self.kind == "fail_step":
                    raise TxlibError(f"fail_step: times must be 1 or more (or None for "
                                     f"always), got {shown(self.count)}")
                raise TxlibError(
                    f"{self.kind}: count must be 1 or more (or None for every match), "
                    f"got {shown(self.count)}"
                )
            _check_at_most(self.kind, times, self.count)
        if self.kind not in (*MESSAGE_FAULTS, "fail_step"):
            object.__setattr__(self, "count", 1)  # unused by this kind: one canonical value
        if self.kind in ("delay", "slow"):
            if not (_whole(self.by) and self.by >= 1):
                raise TxlibError(f"{self.kind}: by must be a time of 1 or more, "
                                 f"got {shown(self.by)}")
            _check_at_most(self.kind, "by", self.by)
        if self.kind == "partition":
            if len(self.groups) < 1 or any(not g for g in self.groups):
                raise TxlibError(
                    "partition needs one or more non-empty groups of nodes, "
                    f"e.g. partition(['coordinator', 'p1'], ['p2']); got {self.groups!r}"
                )
            seen: set[str] = set()
            for g in self.groups:
                for n in g:
                    if not _word(n):
                        raise TxlibError(f"partition: {n!r} is not a node name")
                    if n in seen:
                        raise TxlibError(f"partition: node {n!r} is in two groups")
                    seen.add(n)

    def _normalise_groups(self) -> None:
        """Groups as tuples of names (so a fault is hashable), whatever sequences came in."""
        groups = self.groups
        if isinstance(groups, (str, bytes)) or not isinstance(groups, (list, tuple)) or any(
                isinstance(g, (str, bytes)) or not isinstance(g, (list, tuple)) for g in groups):
            raise TxlibError(f"{self.kind}: groups must be a list of lists of node names, "
                             f"e.g. [['coordinator', 'p1'], ['p2']]; got {shown(groups)}")
        object.__setattr__(self, "groups", tuple(tuple(g) for g in groups))

    def _refuse_fields_of_other_kinds(self) -> None:
        """A field this kind of fault does not use must keep its default: a crash has no
        ``by``, a drop no ``groups``. Silently ignoring it would hide a mistake."""
        uses = FIELDS_OF_KIND[self.kind] | TIMING_FIELDS | {"kind"}
        for f in fields(self):
            if f.name not in uses and getattr(self, f.name) != f.default:
                used = ", ".join(sorted(FIELDS_OF_KIND[self.kind] | TIMING_FIELDS))
                raise TxlibError(f"{self.kind}: {f.name}={shown(getattr(self, f.name))} means "
                                 f"nothing for a {self.kind} fault (it uses: {used})")

    def nodes(self) -> tuple[str, ...]:
        """Every node name the fault mentions (for validation)."""
        names = [self.node, self.src, self.dst, *(n for g in self.groups for n in g)]
        if self.when is not None:
            names.extend(self.when.nodes())
        return tuple(n for n in names if n is not None)

    def describe(self) -> str:
        """A short human description, e.g. ``crash coordinator when coordinator logs COMMIT``."""
        what = self.what()
        if self.at_step == 0 and self.kind in ("crash", "partition"):
            what += " from the start"
        elif self.at_step is not None:
            what += f" after step {self.at_step}"
        elif self.at_time is not None:
            what += f" at time {self.at_time}"
        elif self.when is not None:
            what += f" when {self.when}"
        return what

    def what(self) -> str:
        """What the fault does, without when, e.g. ``partition {coordinator, p1} | {p2}``."""
        if self.kind == "partition":
            what = "partition " + " | ".join("{" + ", ".join(g) + "}" for g in self.groups)
        elif self.kind in MESSAGE_FAULTS:
            pattern = " ".join(
                p for p in (
                    self.type or "any message",
                    f"from {self.src}" if self.src else "",
                    f"to {self.dst}" if self.dst else "",
                ) if p
            )
            times = "every" if self.count is None else f"{self.count}x"
            extra = f" by {self.by}" if self.kind == "delay" else ""
            what = f"{self.kind}{extra} {times} {pattern}"
        elif self.kind == "slow":
            what = f"slow {self.node} by {self.by}"
        elif self.kind == "fail_step":
            times = "always" if self.count is None else f"{self.count}x"
            part = "the compensation of " if self.compensation else ""
            what = f"fail {part}step {self.step} {times}"
        else:
            what = f"{self.kind} {self.node}" if self.node else self.kind
        return what

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict holding only the fields that differ from the defaults."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            if f.name == "kind":
                continue
            value = getattr(self, f.name)
            default = f.default
            if f.name == "count" and self.kind not in (*MESSAGE_FAULTS, "fail_step"):
                continue
            keep_count = f.name == "count" and (value is None or self.kind == "fail_step")
            if value == default and not keep_count:
                continue
            if f.name == "when":
                value = str(value)
            elif f.name == "groups":
                value = [list(g) for g in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Fault:
        """Rebuild a fault from :meth:`to_dict` output, checking every key."""
        if not isinstance(data, dict):
            raise TxlibError(f"a fault must be a JSON object, got {data!r}")
        valid = [f.name for f in fields(cls)]
        for key in data:
            if key not in valid:
                raise bad_choice("fault field", key, valid)
        if "kind" not in data:
            raise TxlibError(f"a fault needs a 'kind' (one of {choices(FAULT_KINDS)})")
        kwargs = dict(data)
        if kwargs.get("when") is not None:
            kwargs["when"] = Trigger.parse(kwargs["when"])
        if "groups" in kwargs:
            groups = kwargs["groups"]
            if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
                raise TxlibError(f"partition groups must be lists of node names, got {groups!r}")
            kwargs["groups"] = tuple(tuple(g) for g in groups)
        if isinstance(kwargs["kind"], str) and kwargs["kind"] in MESSAGE_FAULTS and (
            "count" not in kwargs
        ):
            kwargs["count"] = 1
        if kwargs["kind"] == "fail_step" and "count" not in kwargs:
            kwargs["count"] = None
        return cls(**kwargs)


def _when(when: str | Trigger | None) -> Trigger | None:
    if when is None or isinstance(when, Trigger):
        return when
    return Trigger.parse(when)  # raises TxlibError for anything but a readable string


def crash(
    node: str, at_step: int | None = None, *, at_time: int | None = None,
    when: str | Trigger | None = None,
) -> Fault:
    """Crash ``node``: it stops, losing volatile state, timers and unforced log records.

    With no timing the node is down from the start.
    """
    return Fault("crash", node=node, at_step=at_step, at_time=at_time, when=_when(when))


def recover(
    node: str, at_step: int | None = None, *, at_time: int | None = None,
    when: str | Trigger | None = None,
) -> Fault:
    """Restart a crashed ``node``; it rebuilds its state from its durable log."""
    return Fault("recover", node=node, at_step=at_step, at_time=at_time, when=_when(when))


def drop(
    type: str | None = None, *, src: str | None = None, dst: str | None = None,
    count: int | None = 1, at_step: int | None = None, at_time: int | None = None,
    when: str | Trigger | None = None,
) -> Fault:
    """Lose the next ``count`` messages matching type/src/dst (``count=None``: all of them)."""
    return Fault("drop", type=type, src=src, dst=dst, count=count, at_step=at_step,
                 at_time=at_time, when=_when(when))


def duplicate(
    type: str | None = None, *, src: str | None = None, dst: str | None = None,
    count: int | None = 1, at_step: int | None = None, at_time: int | None = None,
    when: str | Trigger | None = None,
) -> Fault:
    """Deliver the next ``count`` matching messages twice."""
    return Fault("duplicate", type=type, src=src, dst=dst, count=count, at_step=at_step,
                 at_time=at_time, when=_when(when))


def delay(
    by: int, type: str | None = None, *, src: str | None = None, dst: str | None = None,
    count: int | None = 1, at_step: int | None = None, at_time: int | None = None,
    when: str | Trigger | None = None,
) -> Fault:
    """Hold the next ``count`` matching messages ``by`` extra time units in the network."""
    return Fault("delay", by=by, type=type, src=src, dst=dst, count=count, at_step=at_step,
                 at_time=at_time, when=_when(when))


def partition(
    *groups: list[str] | tuple[str, ...], at_step: int | None = None,
    at_time: int | None = None, when: str | Trigger | None = None,
) -> Fault:
    """Split the network: nodes in different groups cannot reach each other.

    Nodes named in no group form one more group together, so ``partition(["p3"])``
    cuts ``p3`` off from everyone else.
    """
    for g in groups:
        if isinstance(g, str) or not isinstance(g, (list, tuple)):
            raise TxlibError(f"each partition group must be a list of node names, got {g!r}")
    return Fault("partition", groups=tuple(tuple(g) for g in groups), at_step=at_step,
                 at_time=at_time, when=_when(when))


def heal(
    at_step: int | None = None, *, at_time: int | None = None, when: str | Trigger | None = None
) -> Fault:
    """End any partition: every node can reach every other again."""
    return Fault("heal", at_step=at_step, at_time=at_time, when=_when(when))


def vote_no(
    node: str, at_step: int | None = None, *, at_time: int | None = None,
    when: str | Trigger | None = None,
) -> Fault:
    """Make participant ``node`` vote NO (its local work failed); with a timing, only
    from that moment on."""
    return Fault("vote_no", node=node, at_step=at_step, at_time=at_time, when=_when(when))


def slow(
    node: str, by: int, at_step: int | None = None, *, at_time: int | None = None,
    when: str | Trigger | None = None,
) -> Fault:
    """Make ``node`` slow: every message it sends spends ``by`` extra time in transit."""
    return Fault("slow", node=node, by=by, at_step=at_step, at_time=at_time, when=_when(when))


def fail_step(
    step: str, *, times: int | None = None, compensation: bool = False,
    at_step: int | None = None, at_time: int | None = None, when: str | Trigger | None = None,
) -> Fault:
    """Make saga step ``step`` fail as a business failure (its local transaction does
    nothing): ``times=None`` always (permanent), ``times=n`` the next n attempts.
    ``compensation=True`` fails the step's compensation instead.

    A business failure is a definite "no": before the pivot the saga compensates at once
    (retries are for unanswered calls); after the pivot the step is retried until it
    succeeds; a failing compensation is retried per its policy."""
    return Fault("fail_step", step=step, count=times, compensation=compensation,
                 at_step=at_step, at_time=at_time, when=_when(when))
