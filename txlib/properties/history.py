"""What a run left behind, as plain values: the one thing protocols judge.

A :class:`History` is built by a simulated run, a state the explorer reached, or a run
over real processes alike, so each protocol judges all three the same way, without
knowing about worlds or runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.records import LogRecord, TraceEvent
from ..engine.roster import Roster
from .violation import Violation


@dataclass(frozen=True)
class History:
    """The nodes (``roster``), the protocol's ``config``, and each node's decision, state
    and durable log at the end; who is ``down``; how many ``steps`` were taken; and the
    trace ``events`` (None when the run was not recorded, or for an explored state)."""

    roster: Roster
    config: Any
    decisions: Mapping[str, str | None]
    states: Mapping[str, str]
    logs: Mapping[str, Sequence[LogRecord]]
    down: frozenset[str]
    steps: int
    events: Sequence[TraceEvent] | None = None


@dataclass(frozen=True)
class Verdict:
    """A protocol's judgement of a history: its ``outcome`` and, when judging it needed
    them anyway, its ``violations`` (None: ask the protocol when wanted)."""

    outcome: str
    violations: tuple[Violation, ...] | None = None
