"""Where each event of a trace sits vertically in a space-time diagram.

Rows by event: events are grouped by simulated time; within a group every mark on a
node (a send, a delivery, a log write, a state change, a crash...) takes the next row
of that node's lifeline, so simultaneous events at one node are stacked and every step
gets room, while events at different nodes at the same time share rows. A partition or
a heal takes a row of its own across all lifelines. Between two groups a gap grows
slowly with the time that passed (``mode="events"``), or in proportion to it
(``mode="proportional"``, ``scale`` pixels per millisecond), never less than the rows
need: a dense moment is expanded, never squeezed.

Also here: the spans (down, in doubt, holding locks, partitioned) with the events that
open and close them, so bars start and end exactly on their events' rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..engine.records import TraceEvent

ROW = 18.0  # px between two stacked rows
MIN_GAP = 4.0  # px between two groups of rows, at least
MAX_GAP = 34.0  # px between two groups in "events" mode, at most
MODES = ("events", "proportional")

# Event kinds drawn as a mark on their node's lifeline (each takes a row there).
MARKED = frozenset({"send", "deliver", "drop", "duplicate", "log", "state", "crash",
                    "recover", "decision", "timeout", "effect"})
NETWORK = frozenset({"partition", "heal"})


@dataclass(frozen=True)
class Group:
    """The events at one simulated time: their first row's y and how many rows."""

    time: int
    y: float
    rows: int
    first: int  # position in the events of its first event


@dataclass(frozen=True)
class Rows:
    y: tuple[float, ...]  # per event (by position in the laid-out events)
    groups: tuple[Group, ...]
    height: float  # y just below the last row

    def group_of(self, position: int) -> int:
        """Index of the group holding the event at ``position``."""
        lo, hi = 0, len(self.groups) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.groups[mid].first <= position:
                lo = mid
            else:
                hi = mid - 1
        return lo


def gap(dt: int, mode: str, scale: float, used: float) -> float:
    """Room from one group's first row to the next group's, for ``dt`` ms between them
    and ``used`` px of rows in the first."""
    if mode == "proportional":
        return max(used + MIN_GAP, dt * scale)
    return used + min(MAX_GAP, MIN_GAP + 2.2 * math.sqrt(max(0, dt)))


def lay_out(events: Sequence[TraceEvent], lanes: Sequence[str], *, mode: str = "events",
            scale: float = 4.0, extra: Mapping[int, int] | None = None) -> Rows:
    """The y of every event of ``events`` (a prefix of a trace, in order). ``extra`` adds
    rows to some groups (by index), to make room where labels did not fit."""
    lane_set = set(lanes)
    extra = extra or {}
    ys: list[float] = []
    groups: list[Group] = []
    sent_row: dict[tuple[int, int], tuple[int, int]] = {}  # message -> (group, row)
    y = 0.0
    i = 0
    n = len(events)
    while i < n:
        t = events[i].time
        j = i
        while j < n and events[j].time == t:
            j += 1
        g = len(groups)
        free: dict[str, int] = {}
        used = 0
        rows_of: list[int] = []
        for e in events[i:j]:
            node = e.node
            if e.kind in NETWORK:
                r = used
                free = dict.fromkeys(lane_set, r + 1)
                used = r + 1
            elif e.kind in MARKED and node in lane_set:
                assert node is not None
                r = free.get(node, 0)
                m = e.message
                if m is not None and e.kind in ("deliver", "drop"):
                    at = sent_row.get((m.id, m.copy))
                    if at is not None and at[0] == g:
                        r = max(r, at[1] + 1)
                free[node] = r + 1
                used = max(used, r + 1)
                if m is not None and e.kind in ("send", "duplicate"):
                    sent_row[(m.id, m.copy)] = (g, r)
            else:
                r = free.get(node, 0) if node is not None else 0
            rows_of.append(r)
        rows = max(used, 1) + extra.get(g, 0)
        for r in rows_of:
            ys.append(y + min(r, rows - 1) * ROW)
        groups.append(Group(t, y, rows, i))
        if j < n:
            y += gap(events[j].time - t, mode, scale, rows * ROW)
        else:
            y += rows * ROW
        i = j
    return Rows(tuple(ys), tuple(groups), y)


@dataclass(frozen=True)
class Span:
    """A span on one node (``node`` None: network-wide) between two events, by their
    positions in the laid-out events (``end`` None: still open)."""

    kind: str  # "down", "doubt", "locks" or "partition"
    node: str | None
    start: int
    end: int | None
    label: str = ""


def spans(events: Sequence[TraceEvent]) -> list[Span]:
    """Down, in-doubt, lock-holding and partition spans over ``events``."""
    out: list[Span] = []
    open_: dict[tuple[str, str | None], tuple[int, str]] = {}

    def close(kind: str, node: str | None, at: int) -> None:
        began = open_.pop((kind, node), None)
        if began is not None:
            out.append(Span(kind, node, began[0], at, began[1]))

    for p, e in enumerate(events):
        kind, node = e.kind, e.node
        if kind == "crash" and node is not None:
            open_.setdefault(("down", node), (p, "down"))
        elif kind == "recover" and node is not None:
            close("down", node, p)
        elif kind == "vote" and e.detail == "yes" and node is not None:
            open_.setdefault(("doubt", node), (p, "in doubt"))
        elif kind == "decision" and node is not None:
            close("doubt", node, p)
        elif kind == "lock" and node is not None:
            open_.setdefault(("locks", node), (p, e.detail))
        elif kind == "unlock" and node is not None:
            close("locks", node, p)
        elif kind == "partition":
            close("partition", None, p)
            open_[("partition", None)] = (p, e.detail)
        elif kind == "heal":
            close("partition", None, p)
    for (kind, node), (start, label) in open_.items():
        out.append(Span(kind, node, start, None, label))
    return sorted(out, key=lambda s: (s.start, s.kind, s.node or ""))


_GROUP = re.compile(r"\{([^{}]*)\}")


def partition_sides(detail: str, lanes: Sequence[str]) -> dict[str, int] | None:
    """Which side (0, 1, ...) each lane is on, read from a partition event's detail
    (``partition {a, b} | {c} ...``; unnamed nodes form one more group), or None if the
    detail does not name the lanes plainly."""
    groups = [[n.strip() for n in body.split(",") if n.strip()]
              for body in _GROUP.findall(detail.split(" after ")[0].split(" when ")[0])]
    if not groups:
        return None
    side: dict[str, int] = {}
    for k, group in enumerate(groups):
        for name in group:
            if name not in lanes:
                return None
            side[name] = k
    rest = len(groups)
    return {n: side.get(n, rest) for n in lanes}
