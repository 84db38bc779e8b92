"""The small immutable records the engine passes around: messages, log records, trace events.

They are NamedTuples rather than frozen dataclasses because the engine creates one per
event on its hot path, and tuple construction is several times cheaper.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Message(NamedTuple):
    """A message on the wire.

    ``hops`` is the message's causal depth: one more than the longest chain of messages
    that led the sender to send it. ``copy`` is 0 for the original and 1 for a copy the
    network duplicated.
    """

    id: int
    src: str
    dst: str
    type: str
    payload: dict[str, Any]
    sent_at: int
    hops: int
    copy: int = 0

    def describe(self) -> str:
        """``src -> dst TYPE {payload}`` for tables and tooltips."""
        body = ", ".join(f"{k}={v!r}" for k, v in sorted(self.payload.items()))
        dup = " (duplicate)" if self.copy else ""
        return f"{self.src} -> {self.dst} {self.type}{dup}" + (f" {{{body}}}" if body else "")


class LogRecord(NamedTuple):
    """One record of a node's durable log. ``forced`` records are on stable storage at once;
    lazy ones become stable with the next forced write and are lost if the node crashes
    first."""

    record: str
    data: dict[str, Any]
    forced: bool
    time: int


class TraceEvent(NamedTuple):
    """One thing that happened, in order.

    ``step`` is the number of the scheduler step it belongs to (several events can share
    a step: a delivery, the log write and sends it caused). ``states`` maps every node to
    its protocol state and ``down`` names the crashed nodes, both as they are right after
    this event.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index; the trace format's name
    step: int
    time: int
    kind: str
    node: str | None
    message: Message | None
    detail: str
    states: dict[str, str]
    down: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (sorted, stable) of this event."""
        out: dict[str, Any] = {
            "index": self.index,
            "step": self.step,
            "time": self.time,
            "kind": self.kind,
            "node": self.node,
            "detail": self.detail,
            "states": dict(sorted(self.states.items())),
            "down": sorted(self.down),
        }
        if self.message is not None:
            m = self.message
            out["message"] = {
                "id": m.id,
                "src": m.src,
                "dst": m.dst,
                "type": m.type,
                "payload": m.payload,
                "sent_at": m.sent_at,
                "hops": m.hops,
                "copy": m.copy,
            }
        return out


# Every trace event kind, in the order a reader meets them.
EVENT_KINDS: tuple[str, ...] = (
    "start",
    "send",
    "deliver",
    "drop",
    "duplicate",
    "timeout",
    "crash",
    "recover",
    "partition",
    "heal",
    "log",
    "state",
    "vote",
    "decision",
    "lock",
    "unlock",
    "effect",
)
