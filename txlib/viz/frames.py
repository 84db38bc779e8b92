"""What a trace says at a given moment: intervals, node rows and step positions.

Everything here is computed from a trace alone, so a live run, a loaded scenario and a
counterexample from the explorer all render the same way. Diagrams, the console and the
lab widget share these definitions.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..engine.records import TraceEvent
from ..engine.trace import Trace


@dataclass(frozen=True)
class Interval:
    """A span of simulated time on one node (``node`` is None for network-wide spans).
    ``end`` is None while it is still open at the moment looked at."""

    kind: str  # "down", "doubt", "locks" or "partition"
    node: str | None
    start: int
    end: int | None
    label: str = ""


@dataclass(frozen=True)
class LogLine:
    """One record of a node's log as the trace shows it."""

    record: str
    forced: bool
    durable: bool


@dataclass(frozen=True)
class NodeRow:
    """A node as the lab's node table shows it, right after some event."""

    name: str
    role: str
    state: str
    up: bool
    log: tuple[LogLine, ...]
    locks: str
    volatile: str
    decision: str | None


def last_index_of_step(trace: Sequence[TraceEvent], step: int) -> int:
    """Index of the last event whose step is at most ``step`` (-1 if none)."""
    steps = [e.step for e in trace]
    return bisect_right(steps, step) - 1


def intervals(trace: Sequence[TraceEvent], upto: int | None = None) -> list[Interval]:
    """Down, in-doubt, lock-holding and partition spans up to event index ``upto``."""
    events = trace if upto is None else trace[: upto + 1]
    out: list[Interval] = []
    open_: dict[tuple[str, str | None], tuple[int, str]] = {}

    def close(kind: str, node: str | None, time: int) -> None:
        began = open_.pop((kind, node), None)
        if began is not None:
            out.append(Interval(kind, node, began[0], time, began[1]))

    for e in events:
        kind, node = e.kind, e.node
        if kind == "crash" and node is not None:
            open_.setdefault(("down", node), (e.time, "down"))
        elif kind == "recover" and node is not None:
            close("down", node, e.time)
        elif kind == "vote" and e.detail == "yes" and node is not None:
            open_.setdefault(("doubt", node), (e.time, "in doubt"))
        elif kind == "decision" and node is not None:
            close("doubt", node, e.time)
        elif kind == "lock" and node is not None:
            open_.setdefault(("locks", node), (e.time, e.detail))
        elif kind == "unlock" and node is not None:
            close("locks", node, e.time)
        elif kind == "partition":
            close("partition", None, e.time)
            open_[("partition", None)] = (e.time, e.detail)
        elif kind == "heal":
            close("partition", None, e.time)
    for (kind, node), (start, label) in open_.items():
        out.append(Interval(kind, node, start, None, label))
    return sorted(out, key=lambda i: (i.start, i.kind, i.node or ""))


def logs_at(trace: Sequence[TraceEvent], upto: int) -> dict[str, list[LogLine]]:
    """Each node's log right after event ``upto``: what was written, what is durable,
    and with lazy records lost in a crash removed."""
    logs: dict[str, list[LogLine]] = {}
    for e in trace[: upto + 1]:
        if e.node is None:
            continue
        if e.kind == "log":
            record, _, how = e.detail.rpartition(" ")
            forced = how == "(forced)"
            lines = logs.setdefault(e.node, [])
            if forced:
                lines[:] = [LogLine(r.record, r.forced, True) for r in lines]
            lines.append(LogLine(record, forced, forced))
        elif e.kind == "crash" and "unforced log record" in e.detail:
            logs[e.node] = [r for r in logs.get(e.node, []) if r.durable]
    return logs


def node_rows(trace: Trace, upto: int, roles: Mapping[str, str]) -> list[NodeRow]:
    """The node table right after event ``upto`` (use -1 for before anything happened)."""
    if upto < 0:
        return [NodeRow(n, roles.get(n, ""), "", True, (), "", "", None) for n in trace.nodes]
    event = trace[upto]
    logs = logs_at(trace, upto)
    volatile = trace.volatile_at(upto)
    locks: dict[str, str] = {}
    decisions: dict[str, str] = {}
    for e in trace[: upto + 1]:
        if e.node is None:
            continue
        if e.kind == "lock":
            locks[e.node] = e.detail
        elif e.kind == "unlock":
            locks[e.node] = ""
        elif e.kind == "decision":
            decisions[e.node] = e.detail
    return [
        NodeRow(
            name=n,
            role=roles.get(n, ""),
            state=event.states.get(n, ""),
            up=n not in event.down,
            log=tuple(logs.get(n, ())),
            locks=locks.get(n, ""),
            volatile="" if n in event.down else volatile.get(n, ""),
            decision=decisions.get(n),
        )
        for n in trace.nodes
    ]
