"""The trace: every event of a run, in order. Diagrams, metrics and checks read only this."""

from __future__ import annotations

import json
import operator
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from typing import overload

from ..errors import TxlibError, bad_choice, shown
from .records import EVENT_KINDS, TraceEvent
from .volatile import Volatile, volatile_text


class TraceIndexError(TxlibError, IndexError):
    """An event index past either end of a trace: a TxlibError, and an IndexError as
    for any sequence (so iterating by index stops at the end)."""


def _whole(value: object, what: str, kind: str) -> int:
    """``value`` as an int (an int, or anything that is an index, as a sequence takes
    it), or a TxlibError saying ``what`` must be ``kind``."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TxlibError(f"{what} must be {kind}, got {shown(value)}") from None


def check_limit(limit: object) -> None:
    """A TxlibError unless ``limit`` is None or a whole number of 0 or more."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                              or limit < 0):
        raise TxlibError(f"limit must be a whole number of 0 or more (or None for every "
                         f"event), got {shown(limit)}")


class Trace(Sequence[TraceEvent]):
    """An immutable, ordered list of :class:`TraceEvent` with a few conveniences."""

    def __init__(
        self,
        events: Sequence[TraceEvent],
        nodes: Sequence[str],
        volatile: Sequence[tuple[int, str, Volatile]] = (),
    ) -> None:
        self._events = tuple(events)
        self.nodes: tuple[str, ...] = tuple(nodes)
        # The volatile states kept, (event index, node, state) in event order, until
        # either volatile or volatile_at is first called; then _volatile_of holds them.
        self._kept: tuple[tuple[int, str, Volatile], ...] | None = tuple(volatile)
        # node -> the event indexes its volatile states were kept after, and those states,
        # each written out (volatile_text) in place the first time either reader needs it
        self._volatile_of: dict[str, tuple[list[int], list[Volatile | str]]] = {}
        self._volatile_nodes: tuple[str, ...] = ()  # the node of each state, in event order

    def _volatile_store(self) -> dict[str, tuple[list[int], list[Volatile | str]]]:
        """The kept volatile states by node (see __init__; sorted out on first use)."""
        kept = self._kept
        if kept is not None:
            self._kept = None
            of = self._volatile_of
            for at, node, state in kept:
                slot = of.get(node)
                if slot is None:
                    slot = of[node] = ([], [])
                slot[0].append(at)
                slot[1].append(state)
            self._volatile_nodes = tuple(map(operator.itemgetter(1), kept))
        return self._volatile_of

    @property
    def volatile(self) -> tuple[tuple[int, str, str], ...]:
        """(event index, node, text): each node's volatile state right after that
        event, in event order (each written out the first time it is read)."""
        of = self._volatile_store()
        taken = dict.fromkeys(of, 0)  # node -> how many of its states are listed so far
        out = []
        for node in self._volatile_nodes:
            k = taken[node]
            taken[node] = k + 1
            ats, states = of[node]
            state = states[k]
            if not isinstance(state, str):
                state = states[k] = volatile_text(state)
            out.append((ats[k], node, state))
        return tuple(out)

    @overload
    def __getitem__(self, i: int) -> TraceEvent: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[TraceEvent]: ...
    def __getitem__(self, i: int | slice) -> TraceEvent | Sequence[TraceEvent]:
        try:
            return self._events[i]
        except (TypeError, IndexError):
            if isinstance(i, slice):
                raise TxlibError(f"a slice of a trace takes whole numbers (or None), got "
                                 f"{shown(i)}") from None
            index = _whole(i, "a trace index", "a whole number or a slice")
            raise self._out_of_range(index, "a trace index", from_end=True) from None

    def _out_of_range(self, index: int, what: str, from_end: bool) -> TraceIndexError:
        """The error for ``index``, past either end of the trace: it says which indexes
        are valid."""
        n = len(self._events)
        valid = f"0 to {n - 1}" if n else "none"
        if n and from_end:
            valid += f" (or -{n} to -1 from the end)"
        return TraceIndexError(f"{what} of {shown(index)} is out of range: this trace has "
                               f"{n} event{'' if n == 1 else 's'}; valid: {valid}")

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[TraceEvent]:
        return iter(self._events)

    @property
    def last_step(self) -> int:
        return self._events[-1].step if self._events else 0

    def volatile_at(self, index: int) -> dict[str, str]:
        """Each node's volatile state (vars and timers, as text) right after event ``index``."""
        if type(index) is not int:
            index = _whole(index, "an event index", "a whole number")
        if not 0 <= index < len(self._events):
            raise self._out_of_range(index, "an event index", from_end=False)
        out = dict.fromkeys(self.nodes, "")
        for node, (ats, states) in self._volatile_store().items():
            k = bisect_right(ats, index) - 1
            if k >= 0:
                kept = states[k]
                if not isinstance(kept, str):  # written out once, when first shown
                    kept = states[k] = volatile_text(kept)
                out[node] = kept
        return out

    def of_kind(self, *kinds: str) -> list[TraceEvent]:
        """The events of the given kinds (of :data:`EVENT_KINDS`), in order."""
        for kind in kinds:
            if kind not in EVENT_KINDS:
                raise bad_choice("event kind", kind, EVENT_KINDS)
        return [e for e in self._events if e.kind in kinds]

    def at_step(self, step: int) -> list[TraceEvent]:
        """The events that belong to scheduler step ``step`` (0 to :attr:`last_step`)."""
        if type(step) is not int:
            step = _whole(step, "a step", "a whole number")
        if not 0 <= step <= self.last_step:
            raise TxlibError(f"step {shown(step)} is out of range: this run's steps are 0 "
                             f"to {self.last_step}")
        return [e for e in self._events if e.step == step]

    def to_jsonl(self) -> str:
        """One JSON object per line: the canonical, byte-stable form of the trace."""
        return "".join(
            json.dumps(e.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"
            for e in self._events
        )

    def text(self, limit: int | None = None) -> str:
        """A plain table: step, time, node, kind and what happened (the first ``limit``
        events, or all)."""
        check_limit(limit)
        rows = []
        for e in self._events[:limit]:
            what = e.message.describe() if e.message is not None else ""
            if e.detail:
                what = f"{what}  [{e.detail}]" if what else e.detail
            rows.append(f"{e.step:>4} {e.time:>6}  {e.node or '-':<12} {e.kind:<9} {what}")
        return "\n".join(rows)
