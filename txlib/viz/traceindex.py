"""What the pictures of a trace look up at every frame, found once per trace.

The lab redraws its pictures at every step a learner takes. Over a run of 100,000
steps, finding a step's last event, the spans open at the cursor or where a message
ends by reading the trace from its start took seconds a frame; a :class:`TraceIndex`
answers each in a lookup. A :class:`~txlib.engine.trace.Trace` keeps its index for as
long as it lives (it never changes); any other sequence of events gets a fresh one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from ..engine.records import TraceEvent
from ..engine.trace import Trace
from .timeline import Span, spans

# A message whose delivery (or loss) comes more than this many events after its send,
# or never, is "long": a window of a trace looks it up instead of reading that far.
LONG = 200


@dataclass(frozen=True)
class TraceIndex:
    """Lookups over one trace, by event position."""

    steps: tuple[int, ...]  # each event's scheduler step (never decreasing)
    times: tuple[int, ...]  # each event's simulated time (never decreasing)
    spans: tuple[Span, ...]  # every down, in-doubt, lock and partition span
    ends: dict[tuple[int, int], int]  # a message (id, copy) -> where it was delivered or lost
    long: tuple[tuple[int, int | None], ...]  # (send, end or None) of long messages, by send
    saga_ids: frozenset[object]  # the saga instances the messages name
    # (node, what) -> positions of that node's events of one sort: "log" (log writes, and
    # crashes, which may lose lazy ones), "locks" (lock, unlock) and "decision"
    of_node: dict[tuple[str, str], tuple[int, ...]]

    def last_of_step(self, step: int) -> int:
        """Position of the last event whose step is at most ``step`` (-1 if none)."""
        return bisect_right(self.steps, step) - 1

    def first_of_step(self, step: int) -> int:
        """Position of the first event whose step is at least ``step``."""
        return bisect_left(self.steps, step)

    def group_start(self, position: int) -> int:
        """Position of the first event at the same simulated time as ``position``."""
        return bisect_left(self.times, self.times[position])

    def group_end(self, position: int) -> int:
        """Position just after the last event at the same time as ``position``."""
        return bisect_right(self.times, self.times[position])

    def node_events(self, node: str, what: str, upto: int) -> tuple[int, ...]:
        """Positions, up to ``upto``, of ``node``'s events of sort ``what`` (see
        ``of_node``)."""
        positions = self.of_node.get((node, what), ())
        return positions[: bisect_right(positions, upto)]

    def in_flight(self, events: Sequence[TraceEvent], upto: int) -> list[int]:
        """Positions, in order, of the sends (and network duplicates) in ``events`` (the
        trace indexed) up to event ``upto`` whose message was neither delivered nor lost
        by then."""
        ends, out = self.ends, []
        for sent, ended in self.long:  # those that travel far, looked up
            if sent > upto:
                break
            if ended is None or ended > upto:
                out.append(sent)
        for p in range(max(0, upto - LONG), upto + 1):  # the others were sent lately
            m = events[p].message
            if m is not None and events[p].kind in _SENDS:
                ended = ends.get((m.id, m.copy))
                if ended is not None and ended > upto and ended - p <= LONG:
                    out.append(p)
        return sorted(out)


_SENDS = ("send", "duplicate")
_NODE_SORTS = {"log": "log", "crash": "log", "lock": "locks", "unlock": "locks",
               "decision": "decision"}

_KEPT: WeakKeyDictionary[Trace, TraceIndex] = WeakKeyDictionary()


def index_of(trace: Sequence[TraceEvent]) -> TraceIndex:
    """The index of ``trace`` (kept with a :class:`Trace`, made afresh for anything else)."""
    if isinstance(trace, Trace):
        kept = _KEPT.get(trace)
        if kept is None:
            kept = _KEPT[trace] = _build(trace)
        return kept
    return _build(trace)


def _build(events: Sequence[TraceEvent]) -> TraceIndex:
    sends: dict[tuple[int, int], int] = {}
    ends: dict[tuple[int, int], int] = {}
    saga_ids: set[object] = set()
    of_node: dict[tuple[str, str], list[int]] = {}
    for p, e in enumerate(events):
        kind = e.kind
        m = e.message
        if m is None:
            sort = _NODE_SORTS.get(kind)
            if sort is not None and e.node is not None:
                of_node.setdefault((e.node, sort), []).append(p)
            continue
        if kind == "send" or kind == "duplicate":
            sends.setdefault((m.id, m.copy), p)
            if kind == "send":
                saga_ids.add(m.payload.get("saga_id"))
        elif kind == "deliver" or kind == "drop":
            ends.setdefault((m.id, m.copy), p)
    saga_ids.discard(None)
    long = []
    for key, sent in sends.items():
        end = ends.get(key)
        if end is None or end - sent > LONG:
            long.append((sent, end))
    long.sort(key=lambda pair: pair[0])
    return TraceIndex(steps=tuple(e.step for e in events),
                       times=tuple(e.time for e in events), spans=tuple(spans(events)),
                       ends=ends, long=tuple(long), saga_ids=frozenset(saga_ids),
                       of_node={key: tuple(ps) for key, ps in of_node.items()})
