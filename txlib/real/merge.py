"""Merge the event files of a real run into one ordinary txlib :class:`Trace`.

Every node process (and the runner) appends JSON events to its own file, each with the
wall-clock microseconds since the run began, its incarnation (restart count), a sequence
number and the number of the handler it belongs to. The merge keeps each handler's
events together (one handler is one step, as in the simulator), orders handlers by
when they began (ties: node, then sequence), and never puts a delivery before its send,
even if two hosts' clocks disagree. Times become whole milliseconds from the first event,
never decreasing.

A message that was sent but never read is shown as lost where it was lost: right after
its destination's crash if it died unread in a killed process, right after the send if
the destination was already down, or at the end of the trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine.records import Message, TraceEvent
from ..engine.trace import Trace

Raw = dict[str, Any]


def read_events(paths: Iterable[Path]) -> dict[tuple[str, int], list[Raw]]:
    """Every event, by source (file, incarnation), in the order it was written."""
    sources: dict[tuple[str, int], list[Raw]] = {}
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_bytes().split(b"\n"):
            try:
                e = json.loads(line)
            except ValueError:
                continue  # empty, or torn by a kill in the middle of a write
            sources.setdefault((path.name, e.get("i", 0)), []).append(e)
    for events in sources.values():
        events.sort(key=lambda e: e["s"])
    return sources


def _groups(events: list[Raw]) -> list[list[Raw]]:
    out: list[list[Raw]] = []
    for e in events:
        if out and out[-1][0]["h"] == e["h"]:
            out[-1].append(e)
        else:
            out.append([e])
    return out


def _key(e: Raw) -> tuple[Any, ...]:
    return tuple(e["m"]["key"])


def order_groups(sources: Mapping[tuple[str, int], list[Raw]]) -> list[list[Raw]]:
    """Handlers in a causal order: by start time, a delivery never before its send."""
    queues = {src: _groups(events) for src, events in sources.items()}
    sends = {_key(e) for events in sources.values() for e in events if e["k"] == "send"}
    heads = dict.fromkeys(queues, 0)
    emitted: set[tuple[Any, ...]] = set()
    out: list[list[Raw]] = []
    while True:
        ready = [(q[heads[src]][0]["t"], q[heads[src]][0]["n"] or "", q[heads[src]][0]["s"],
                  src) for src, q in queues.items() if heads[src] < len(q)]
        if not ready:
            return out
        ready.sort()
        choice = ready[0][3]
        for *_, src in ready:
            group = queues[src][heads[src]]
            if all(e["k"] != "deliver" or _key(e) in emitted or _key(e) not in sends
                   for e in group):
                choice = src
                break
        group = queues[choice][heads[choice]]
        heads[choice] += 1
        emitted.update(_key(e) for e in group if e["k"] == "send")
        out.append(group)


def for_tx(sources: Mapping[tuple[str, int], list[Raw]], tx: str
           ) -> dict[tuple[str, int], list[Raw]]:
    """The events of transaction ``tx``, with the crashes and restarts between its first
    and its last event."""
    times = [e["t"] for es in sources.values() for e in es if e.get("x") == tx]
    if not times:
        return {}
    lo, hi = min(times), max(times)
    return {s: [e for e in es if e.get("x") == tx or ("x" not in e and lo <= e["t"] <= hi)]
            for s, es in sources.items()}


def merge(paths: Iterable[Path] | Mapping[tuple[str, int], list[Raw]], nodes: Sequence[str],
          initial: Mapping[str, str], tx: str | None = None) -> Trace:
    """One txlib trace from the event files ``paths`` (or events already read with
    :func:`read_events`); of transaction ``tx`` only, if given (see :func:`for_tx`)."""
    sources = paths if isinstance(paths, Mapping) else read_events(paths)
    if tx is not None:
        sources = for_tx(sources, tx)
    groups = order_groups(sources)
    finished = {_key(e) for g in groups for e in g if e["k"] in ("deliver", "drop")}
    events: list[TraceEvent] = []
    volatile: list[tuple[int, str, str]] = []
    states = dict(initial)
    down: frozenset[str] = frozenset()
    messages: dict[tuple[Any, ...], Message] = {}
    unread: dict[str, list[tuple[Any, ...]]] = {}
    locked: dict[str, bool] = {}
    base = groups[0][0]["t"] // 1000 if groups else 0
    clock = 0
    step = 0
    stepped = False

    def emit(kind: str, node: str | None, msg: Message | None, detail: str) -> None:
        nonlocal step, stepped
        if not stepped:  # a handler that showed nothing (e.g. only set a timer) is no step
            step += 1
            stepped = True
        events.append(TraceEvent(len(events), step, clock, kind, node, msg, detail, states,
                                 down))

    for group in groups:
        stepped = False
        for e in group:
            clock = max(clock, e["t"] // 1000 - base)
            kind, node = e["k"], e["n"]
            if kind == "_volatile":
                volatile.append((len(events) - 1, node, e["d"]))
            elif kind == "send":
                m = e["m"]
                msg = Message(len(messages) + 1, m["src"], m["dst"], m["type"], m["payload"],
                              clock, m["hops"], 0)
                messages[_key(e)] = msg
                emit("send", node, msg, "")
                if _key(e) not in finished:
                    if m["dst"] in down:
                        emit("drop", node, msg, f"{m['dst']} is down")
                    else:
                        unread.setdefault(m["dst"], []).append(_key(e))
            elif kind in ("deliver", "drop"):
                m = e["m"]
                msg = messages.get(_key(e)) or Message(
                    len(messages) + 1, m["src"], m["dst"], m["type"], m["payload"],
                    clock, m["hops"], 0)
                emit(kind, node, msg, e["d"])
            elif kind == "crash":
                down = down | {node}
                emit("crash", node, None, e["d"])
                volatile.append((len(events) - 1, node, ""))
                for key in unread.pop(node, []):
                    emit("drop", node, messages[key], f"lost: {node} was killed before "
                                                      "reading it")
            elif kind == "recover":
                down = down - {node}
                states = {**states, node: initial[node]}
                emit("recover", node, None, e["d"])
                held = e.get("held", [])
                if locked.get(node) and not (tx in held if tx is not None else held):
                    locked[node] = False
                    emit("unlock", node, None, "no lock survived the crash")
            elif kind == "state":
                states = {**states, node: e["to"]}
                emit("state", node, None, e["d"])
            else:
                if kind in ("lock", "unlock"):
                    locked[node] = kind == "lock"
                emit(kind, node, None, e["d"])
    leftover = [key for keys in unread.values() for key in keys]
    stepped = False
    if leftover:
        for key in leftover:
            msg = messages[key]
            emit("drop", msg.dst, msg, "not delivered before the run stopped")
    return Trace(events, list(nodes), volatile)
