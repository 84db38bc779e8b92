"""Safety invariants of atomic commitment, checked over a whole trace.

- **atomicity** (agreement): no two nodes ever decide differently;
- **stability**: once a node has decided, its decision never changes;
- **validity**: a node decides commit only if every participant has voted YES.

Each violation carries the step where it first became true and a plain-language reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..engine.records import TraceEvent

INVARIANTS: tuple[str, ...] = ("atomicity", "stability", "validity")
_PAST = {"commit": "committed", "abort": "aborted"}


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which, where (step), and why in words."""

    invariant: str
    step: int
    reason: str

    def __str__(self) -> str:
        return f"{self.invariant} violated: {self.reason}"


def _past(decision: str) -> str:
    return _PAST.get(decision, decision)


def atomicity(trace: Sequence[TraceEvent]) -> list[Violation]:
    """The first decision that disagrees with an earlier one, if any."""
    first: dict[str, tuple[str, int]] = {}
    for e in trace:
        if e.kind != "decision" or e.node is None:
            continue
        for other, (value, step) in first.items():
            if other != e.node and value != e.detail:
                return [Violation(
                    "atomicity", e.step,
                    f"{e.node} {_past(e.detail)} at step {e.step} "
                    f"while {other} {_past(value)} at step {step}",
                )]
        first.setdefault(e.node, (e.detail, e.step))
    return []


def stability(trace: Sequence[TraceEvent]) -> list[Violation]:
    """Every node whose decision changed, at the step it changed."""
    seen: dict[str, tuple[str, int]] = {}
    out: list[Violation] = []
    for e in trace:
        if e.kind != "decision" or e.node is None:
            continue
        before = seen.get(e.node)
        if before is None:
            seen[e.node] = (e.detail, e.step)
        elif before[0] != e.detail:
            out.append(Violation(
                "stability", e.step,
                f"{e.node} {_past(before[0])} at step {before[1]}, "
                f"then {_past(e.detail)} at step {e.step}",
            ))
            seen[e.node] = (e.detail, e.step)
    return out


def validity(trace: Sequence[TraceEvent], participants: Sequence[str]) -> list[Violation]:
    """A commit decision taken before every participant voted YES."""
    votes: dict[str, str] = {}
    for e in trace:
        if e.kind == "vote" and e.node is not None:
            votes.setdefault(e.node, e.detail)
        elif e.kind == "decision" and e.detail == "commit":
            missing = [p for p in participants if votes.get(p) != "yes"]
            if missing:
                p = missing[0]
                why = "voted NO" if votes.get(p) == "no" else "had not voted YES"
                return [Violation(
                    "validity", e.step,
                    f"{e.node} committed at step {e.step} but {p} {why}",
                )]
    return []


def check_all(trace: Sequence[TraceEvent], participants: Sequence[str]) -> list[Violation]:
    """Every violation in ``trace``, ordered by step."""
    found = [*atomicity(trace), *stability(trace), *validity(trace, participants)]
    return sorted(found, key=lambda v: (v.step, INVARIANTS.index(v.invariant)))
