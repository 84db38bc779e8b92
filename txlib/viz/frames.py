"""What a trace says at a given moment: node rows (log, locks, decision, volatile
state) and step positions, looked up in the trace's index (:mod:`.traceindex`; the
spans are :func:`.timeline.spans`).

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
from .traceindex import index_of


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
    if isinstance(trace, Trace):  # looked up in its index, made once
        return index_of(trace).last_of_step(step)
    return bisect_right([e.step for e in trace], step) - 1


def log_at(trace: Sequence[TraceEvent], node: str, upto: int) -> list[LogLine]:
    """``node``'s log right after event ``upto``: what was written, what is durable, and
    with lazy records lost in a crash removed."""
    lines: list[LogLine] = []
    for p in index_of(trace).node_events(node, "log", upto):
        e = trace[p]
        if e.kind == "log":
            record, _, how = e.detail.rpartition(" ")
            forced = how == "(forced)"
            if forced:
                lines = [LogLine(r.record, r.forced, True) for r in lines]
            lines.append(LogLine(record, forced, forced))
        elif "unforced log record" in e.detail:  # a crash that lost lazy records
            lines = [r for r in lines if r.durable]
    return lines


def _last(trace: Sequence[TraceEvent], node: str, what: str, upto: int) -> TraceEvent | None:
    """``node``'s last event of sort ``what`` (see
    :attr:`~.traceindex.TraceIndex.of_node`) up to event ``upto``, or None."""
    positions = index_of(trace).node_events(node, what, upto)
    return trace[positions[-1]] if positions else None


def locks_at(trace: Sequence[TraceEvent], node: str, upto: int) -> str:
    """The locks ``node`` holds right after event ``upto`` ("" for none: its last lock
    event is an unlock, whatever that says, e.g. a real run's "no lock survived")."""
    last = _last(trace, node, "locks", upto)
    return last.detail if last is not None and last.kind == "lock" else ""


def decision_at(trace: Sequence[TraceEvent], node: str, upto: int) -> str | None:
    """What ``node`` has decided right after event ``upto`` (None: nothing yet)."""
    last = _last(trace, node, "decision", upto)
    return None if last is None else last.detail


def node_rows(trace: Trace, upto: int, roles: Mapping[str, str]) -> list[NodeRow]:
    """The node table right after event ``upto`` (use -1 for before anything happened)."""
    if upto < 0:
        return [NodeRow(n, roles.get(n, ""), "", True, (), "", "", None) for n in trace.nodes]
    event = trace[upto]
    volatile = trace.volatile_at(upto)
    return [
        NodeRow(
            name=n,
            role=roles.get(n, ""),
            state=event.states.get(n, ""),
            up=n not in event.down,
            log=tuple(log_at(trace, n, upto)),
            locks=locks_at(trace, n, upto),
            volatile="" if n in event.down else volatile.get(n, ""),
            decision=decision_at(trace, n, upto),
        )
        for n in trace.nodes
    ]
